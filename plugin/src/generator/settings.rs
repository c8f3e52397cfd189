//! The parameter values that shape generation. A bar made under other values is stale.

use crate::music::vocab::{Key, Mood};
/// Generation settings as the generator uses them; the saved form is `persist::SettingsV2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenSettings {
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u32,
    /// Bumped by Regenerate.
    pub variation: u32,
    /// 0 = off, 1–12 = C..B major, 13–24 = C..B minor.
    pub key_lock: i32,
    /// Mood index, None = Auto.
    pub mood: Option<u8>,
    pub parts_on: [bool; 3],
    pub registers: [(u8, u8); 3],
}

impl Default for GenSettings {
    /// The values a new instance's parameters have.
    fn default() -> Self {
        GenSettings {
            temperature: 1.0,
            top_p: 1.0,
            seed: 1,
            variation: 0,
            key_lock: 0,
            mood: None,
            parts_on: [true; 3],
            registers: crate::music::Part::ALL.map(crate::music::Part::default_register),
        }
    }
}

impl GenSettings {
    pub fn key(&self) -> Option<Key> {
        (1..=24).contains(&self.key_lock).then(|| Key::from_index((self.key_lock - 1) as usize))
    }

    pub fn mood(&self) -> Option<Mood> {
        self.mood.map(|m| Mood::ALL[m as usize % 4])
    }
}

#[cfg(feature = "plugin")]
pub use plugin_side::*;

#[cfg(feature = "plugin")]
mod plugin_side {
    use super::GenSettings;
    use crate::music::Part;
    use crate::params::{Mode, TrioParams};

    impl GenSettings {
        /// Reads the parameters (atomics only: safe on any thread, the audio thread included).
        pub fn from_params(params: &TrioParams, variation: u32) -> Self {
            GenSettings {
                temperature: params.temperature.value(),
                top_p: params.top_p.value(),
                seed: params.seed.value().max(0) as u32,
                variation,
                key_lock: params.key_lock.value(),
                mood: params.mood.value().mood().map(|m| m as u8),
                // A part the player plays (Follow) is not the model's to write.
                parts_on: Part::ALL.map(|p| params.part(p).on.value() && params.follow.value().part() != Some(p)),
                registers: Part::ALL.map(|p| params.part(p).register()),
            }
        }
    }

    /// How phrase bars map onto host bars.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Structure {
        pub mode: Mode,
        pub loop_bars: u32,
    }

    impl Structure {
        pub fn from_params(params: &TrioParams) -> Self {
            Structure { mode: params.mode.value(), loop_bars: params.loop_bars.value().clamp(1, 16) as u32 }
        }

        /// Phrase length for Loop and Hold; None for Endless.
        pub fn loop_length(&self) -> Option<u32> {
            (self.mode != Mode::Endless).then_some(self.loop_bars)
        }

        /// The phrase bar a host bar plays.
        pub fn phrase_bar(&self, host_bar: i64) -> i64 {
            crate::music::phrase::phrase_bar(host_bar, self.loop_length())
        }
    }
}

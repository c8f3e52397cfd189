//! The parameter values that shape generation. A bar made under other values is stale. A leaf:
//! `params` reads the parameters into it.

use crate::music::controls::{ControlChoice, Style};
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
    pub style: Style,
    /// Per-bar controls (density, arp motion, bass drive); Auto lets the model pick.
    pub controls: ControlChoice,
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
            style: Style::Pop,
            controls: ControlChoice::AUTO,
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

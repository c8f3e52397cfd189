//! Every automatable parameter and persisted field, and every conversion of them into the plain
//! values the threads use (`values`, the generator's `GenSettings`, the audio thread's
//! `BlockSettings`). The generator and the audio thread read them through their atomics; nothing
//! here locks on the audio thread.

pub mod values;

pub use values::*;

use crate::generator::compute::ComputeChoice;
use crate::generator::settings::GenSettings;
use crate::music::vocab::Key;
use crate::music::Part;
use crate::persist::{ModelStore, SessionStore};
use crate::playback::input::Listen;
use crate::playback::{BlockSettings, PartSettings};
use crossbeam::atomic::AtomicCell;
use nice_plug::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

/// Input Channel's text: "Any" for 0, else the channel number.
fn input_channel_name(value: i32) -> String {
    if value == 0 {
        "Any".into()
    } else {
        value.to_string()
    }
}

fn input_channel_value(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("any") || text.eq_ignore_ascii_case("omni") {
        return Some(0);
    }
    text.parse::<i32>().ok().filter(|c| (0..=16).contains(c))
}

/// Linked instances: the instances of one process in the same group play one trio (Ableton Live
/// takes one part per track). Off: this instance plays its own.
/// The controls of one part.
#[derive(Params)]
pub struct PartParams {
    /// Off silences the part at once and leaves it out of generation.
    #[id = "on"]
    pub on: BoolParam,
    /// Lowest note the part may play; the hard lower edge of its register.
    #[id = "low"]
    pub low: IntParam,
    /// Highest note the part may play.
    #[id = "high"]
    pub high: IntParam,
    /// MIDI channel (1–16) the part is sent on.
    #[id = "channel"]
    pub channel: IntParam,
    /// Onsets per bar asked of the model (a bin), or Auto: the model picks, bar by bar.
    #[id = "density"]
    pub density: IntParam,
}

fn note_formatter() -> Arc<dyn Fn(i32) -> String + Send + Sync> {
    Arc::new(|v| crate::music::phrase::note_name(v.clamp(0, 127) as u8))
}

/// How nice-plug takes a parameter's text parser.
type TextParser = Arc<dyn Fn(&str) -> Option<i32> + Send + Sync>;

fn note_parser() -> TextParser {
    Arc::new(|s| {
        let s = s.trim();
        if let Ok(v) = s.parse::<i32>() {
            return Some(v.clamp(0, 127));
        }
        let split = s.find(|c: char| c == '-' || c.is_ascii_digit())?;
        let (name, octave) = s.split_at(split);
        let pc = crate::music::phrase::NOTE_NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))? as i32;
        Some(((octave.parse::<i32>().ok()? + 1) * 12 + pc).clamp(0, 127))
    })
}

impl PartParams {
    fn new(part: Part) -> Self {
        let title = match part {
            Part::Lead => "Lead",
            Part::Arp => "Arp",
            Part::Bass => "Bass",
        };
        let (low, high) = part.default_register();
        let note_range = IntRange::Linear { min: 0, max: 127 };
        PartParams {
            on: BoolParam::new(format!("{title} On"), true),
            low: IntParam::new(format!("{title} Low"), low as i32, note_range)
                .with_value_to_string(note_formatter())
                .with_string_to_value(note_parser()),
            high: IntParam::new(format!("{title} High"), high as i32, note_range)
                .with_value_to_string(note_formatter())
                .with_string_to_value(note_parser()),
            channel: IntParam::new(
                format!("{title} Channel"),
                part.index() as i32 + 1,
                IntRange::Linear { min: 1, max: 16 },
            ),
            density: IntParam::new(
                format!("{title} Density"),
                0,
                IntRange::Linear { min: 0, max: crate::music::controls::DENSITY_BINS as i32 },
            )
            .with_value_to_string(Arc::new(density_name))
            .with_string_to_value(Arc::new(density_value)),
        }
    }

    /// The register as an ordered pair, whatever order the two knobs are in.
    pub fn register(&self) -> (u8, u8) {
        let (a, b) = (self.low.value().clamp(0, 127) as u8, self.high.value().clamp(0, 127) as u8);
        (a.min(b), a.max(b))
    }
}

/// Key lock values: 0 = off, 1–12 = C..B major, 13–24 = C..B minor.
pub fn key_lock_key(value: i32) -> Option<Key> {
    (1..=24).contains(&value).then(|| Key::from_index((value - 1) as usize))
}

/// Key Lock's text: "Off", "C" … "B", "Cm" … "Bm".
fn key_lock_name(value: i32) -> String {
    key_lock_key(value).map(|k| k.name()).unwrap_or_else(|| "Off".into())
}

/// Reads Key Lock's own text back (case-insensitive; "min"/"minor" and "maj"/"major" accepted too),
/// or a plain value 0–24.
fn key_lock_value(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(value) = text.parse::<i32>() {
        return (0..=24).contains(&value).then_some(value);
    }
    let lower = text.to_ascii_lowercase().replace(' ', "");
    if lower == "off" {
        return Some(0);
    }
    let (tonic, mode) = ["c#", "d#", "f#", "g#", "a#", "c", "d", "e", "f", "g", "a", "b"]
        .iter()
        .find_map(|name| lower.strip_prefix(name).map(|rest| (*name, rest)))?;
    let minor = match mode {
        "" | "maj" | "major" => false,
        "m" | "min" | "minor" => true,
        _ => return None,
    };
    let pc = crate::music::phrase::NOTE_NAMES.iter().position(|n| n.eq_ignore_ascii_case(tonic))?;
    Some(1 + pc as i32 + if minor { 12 } else { 0 })
}

#[derive(Params)]
pub struct TrioParams {
    /// Sampling temperature: low is safe and repetitive, high is adventurous.
    #[id = "temperature"]
    pub temperature: FloatParam,
    /// Nucleus sampling: only the most likely tokens that together hold this much probability.
    #[id = "top_p"]
    pub top_p: FloatParam,
    /// Same seed, same parameters, same notes.
    #[id = "seed"]
    pub seed: IntParam,
    #[id = "mode"]
    pub mode: EnumParam<Mode>,
    /// Bars in the repeated phrase of Loop mode.
    #[id = "loop_bars"]
    pub loop_bars: IntParam,
    /// Forces every pitch into a key's scale (and conditions the model on that key).
    #[id = "key_lock"]
    pub key_lock: IntParam,
    #[id = "mood"]
    pub mood: EnumParam<MoodChoice>,
    /// Pop (what POP909 is) or Dance (a lead hook on top, a driving arp and bass).
    #[id = "style"]
    pub style: EnumParam<StyleChoice>,
    /// The arp's motion per bar: block chords, broken chords or an arpeggio; Auto lets the model pick.
    #[id = "arp_motion"]
    pub arp_motion: EnumParam<ArpMotionChoice>,
    /// The bass's drive per bar: held roots, a pulse, offbeats or 16ths; Auto lets the model pick.
    #[id = "bass_drive"]
    pub bass_drive: EnumParam<BassDriveChoice>,
    #[id = "part_output"]
    pub part_output: EnumParam<PartOutput>,
    /// Jamming: what the notes played into the plugin do (chords, or one of the parts).
    #[id = "follow"]
    pub follow: EnumParam<Follow>,
    /// The MIDI channel Follow listens to (0 = any), so a controller can be told from the host's other MIDI.
    #[id = "input_channel"]
    pub input_channel: IntParam,
    /// Switching it on arms Capture: the chords played during the loop's next whole pass become its
    /// progression. Off cancels a capture not yet finished.
    #[id = "capture"]
    pub capture: BoolParam,
    /// Switching it on makes a new phrase of the parts that are not locked, as the Regenerate button
    /// does: automate it for a new phrase at a chosen bar.
    #[id = "regenerate"]
    pub regenerate: BoolParam,
    /// The group of linked instances this one belongs to (not automatable: it changes which trio plays).
    #[id = "link"]
    pub link: EnumParam<LinkGroup>,
    /// Where the model runs: Auto, CPU or GPU (CUDA, with the `--gpu` bundle).
    #[id = "compute"]
    pub compute: EnumParam<Compute>,
    #[nested(id_prefix = "lead", group = "Lead")]
    pub lead: PartParams,
    #[nested(id_prefix = "arp", group = "Arp")]
    pub arp: PartParams,
    #[nested(id_prefix = "bass", group = "Bass")]
    pub bass: PartParams,
    /// The generated phrase, variation counter and model identity: what reopening a project restores.
    /// Written by the generator and by the host's state load, never touched by `process()`.
    #[persist = "session"]
    pub session: SessionStore,
    /// The editor window's size, so a project reopens its editor as the producer left it.
    #[persist = "editor-state"]
    pub editor_state: Arc<AtomicCell<EditorSize>>,
    /// The chord progression forced on the trio (typed, or captured from one pass of played chords), as
    /// text (`| Am | F | C G |`); empty when the trio (or the player, with Follow) chooses the chords.
    #[persist = "progression"]
    pub progression: Arc<RwLock<String>>,
    /// Where the editor's Export button writes MIDI files; kept with the project like a bounce folder.
    #[persist = "export-folder"]
    pub export_folder: Arc<RwLock<String>>,
    /// Linked: this instance's knobs are the ones its group played when the project was saved (the
    /// others' may be older), so a reloaded group plays by them again.
    #[persist = "link-leads"]
    pub link_leads: Arc<RwLock<bool>>,
    /// Which model plays: the shipped one (the default, and what a project saved before there was a
    /// choice plays), one of the user's own models, or a file opened from elsewhere. Not a parameter:
    /// switching models is not automation.
    #[persist = "model"]
    pub model: ModelStore,
}

/// The editor's size in logical pixels. nice-plug-egui's `EguiEditorState` cannot be persisted
/// directly (it does not implement `PersistentField`), so the editor builds one from this each time
/// it opens and writes every resize back here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EditorSize {
    /// Width in logical pixels.
    pub width: u32,
    /// Height in logical pixels.
    pub height: u32,
}

impl EditorSize {
    /// What a new instance opens at: room for three parts' notes and the controls beside them.
    pub const DEFAULT: EditorSize = EditorSize { width: 1040, height: 640 };
    /// Below this the controls no longer fit.
    pub const MIN: EditorSize = EditorSize { width: 760, height: 480 };
}

impl Default for EditorSize {
    fn default() -> Self {
        EditorSize::DEFAULT
    }
}

impl TrioParams {
    pub fn part(&self, part: Part) -> &PartParams {
        match part {
            Part::Lead => &self.lead,
            Part::Arp => &self.arp,
            Part::Bass => &self.bass,
        }
    }

    /// What shapes generation (atomics only: safe on any thread, the audio thread included).
    pub fn gen_settings(&self, variation: u32) -> GenSettings {
        let followed = self.follow.value().part();
        GenSettings {
            temperature: self.temperature.value(),
            top_p: self.top_p.value(),
            seed: self.seed.value().max(0) as u32,
            variation,
            key_lock: self.key_lock.value(),
            mood: self.mood.value().mood().map(|m| m as u8),
            // A part the player plays (Follow) is not the model's to write.
            parts_on: Part::ALL.map(|p| self.part(p).on.value() && followed != Some(p)),
            registers: Part::ALL.map(|p| self.part(p).register()),
            style: self.style.value().style(),
            controls: crate::music::controls::ControlChoice {
                density: Part::ALL.map(|p| density_bin_of(self.part(p).density.value())),
                arp_motion: self.arp_motion.value().motion(),
                bass_drive: self.bass_drive.value().drive(),
            },
        }
    }

    /// How phrase bars map onto host bars.
    pub fn structure(&self) -> Structure {
        Structure { mode: self.mode.value(), loop_bars: self.loop_bars.value().clamp(1, 16) as u32 }
    }

    pub fn compute_choice(&self) -> ComputeChoice {
        match self.compute.value() {
            Compute::Auto => ComputeChoice::Auto,
            Compute::Cpu => ComputeChoice::Cpu,
            Compute::Gpu => ComputeChoice::Gpu,
        }
    }

    /// One block's settings for the audio thread. `capture_armed`: the generator's word on Capture.
    /// (Linked, playback takes the group's structure and parts instead: see `playback::with_group`.)
    pub fn block_settings(&self, capture_armed: bool) -> BlockSettings {
        let only = self.part_output.value().only();
        let follow = self.follow.value();
        let followed = follow.part();
        let parts = Part::ALL.map(|part| {
            let p = self.part(part);
            let (low, high) = p.register();
            PartSettings {
                // A part the player plays is not ours to sound.
                on: p.on.value() && followed != Some(part),
                low,
                high,
                channel: match only {
                    Some(_) => 0,
                    None => (p.channel.value().clamp(1, 16) - 1) as u8,
                },
                routed: only.is_none_or(|o| o == part),
            }
        });
        let listen = Listen {
            on: follow != Follow::Off,
            channel: match self.input_channel.value() {
                0 => None,
                c => Some((c.clamp(1, 16) - 1) as u8),
            },
        };
        BlockSettings {
            parts,
            loop_bars: self.structure().loop_length(),
            listen,
            followed,
            capture: capture_armed,
            link_group: self.link.value().code(),
        }
    }

    /// The knobs a linked group shares, as this instance has them.
    pub fn knobs(&self) -> GroupKnobs {
        GroupKnobs {
            temperature: self.temperature.value(),
            top_p: self.top_p.value(),
            seed: self.seed.value(),
            mode: self.mode.value(),
            loop_bars: self.loop_bars.value(),
            key_lock: self.key_lock.value(),
            mood: self.mood.value(),
            follow: self.follow.value(),
            compute: self.compute.value(),
            parts: Part::ALL.map(|p| {
                let part = self.part(p);
                (part.on.value(), part.low.value(), part.high.value())
            }),
            style: self.style.value(),
            density: Part::ALL.map(|p| self.part(p).density.value()),
            arp_motion: self.arp_motion.value(),
            bass_drive: self.bass_drive.value(),
        }
    }
}

impl Default for TrioParams {
    fn default() -> Self {
        TrioParams {
            temperature: FloatParam::new("Temperature", 1.0, FloatRange::Linear { min: 0.1, max: 2.0 })
                .with_step_size(0.01),
            top_p: FloatParam::new("Top-p", 1.0, FloatRange::Linear { min: 0.5, max: 1.0 }).with_step_size(0.01),
            seed: IntParam::new("Seed", 1, IntRange::Linear { min: 1, max: 9999 }),
            mode: EnumParam::new("Mode", Mode::Loop),
            loop_bars: IntParam::new("Loop Length", 4, IntRange::Linear { min: 1, max: 16 }).with_unit(" bars"),
            key_lock: IntParam::new("Key Lock", 0, IntRange::Linear { min: 0, max: 24 })
                .with_value_to_string(Arc::new(key_lock_name))
                .with_string_to_value(Arc::new(key_lock_value)),
            mood: EnumParam::new("Mood", MoodChoice::Auto),
            // Pop is what every project saved before styles existed played: it stays the default.
            style: EnumParam::new("Style", StyleChoice::Pop),
            arp_motion: EnumParam::new("Arp Motion", ArpMotionChoice::Auto),
            bass_drive: EnumParam::new("Bass Drive", BassDriveChoice::Auto),
            part_output: EnumParam::new("Part Output", PartOutput::All),
            compute: EnumParam::new("Compute", Compute::Auto).non_automatable(),
            follow: EnumParam::new("Follow", Follow::Off),
            capture: BoolParam::new("Capture", false),
            regenerate: BoolParam::new("Regenerate", false),
            link: EnumParam::new("Link", LinkGroup::Off).non_automatable(),
            input_channel: IntParam::new("Input Channel", 0, IntRange::Linear { min: 0, max: 16 })
                .with_value_to_string(Arc::new(input_channel_name))
                .with_string_to_value(Arc::new(input_channel_value)),
            lead: PartParams::new(Part::Lead),
            arp: PartParams::new(Part::Arp),
            bass: PartParams::new(Part::Bass),
            session: SessionStore::default(),
            editor_state: Arc::new(AtomicCell::new(EditorSize::DEFAULT)),
            progression: Arc::new(RwLock::new(String::new())),
            export_folder: Arc::new(RwLock::new(String::new())),
            link_leads: Arc::new(RwLock::new(false)),
            model: ModelStore::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lock_reads_its_own_text() {
        for value in 0..=24 {
            assert_eq!(key_lock_value(&key_lock_name(value)), Some(value), "{}", key_lock_name(value));
        }
        assert_eq!(key_lock_value("a minor"), Some(1 + 9 + 12));
        assert_eq!(key_lock_value("Cx"), None);
    }

    #[test]
    fn density_reads_its_own_text() {
        for value in 0..=crate::music::controls::DENSITY_BINS as i32 {
            assert_eq!(density_value(&density_name(value)), Some(value), "{}", density_name(value));
        }
        assert_eq!(density_name(4), "5–6 notes");
        assert_eq!(density_value("6"), Some(4), "6 notes a bar is in the 5–6 bin");
        assert_eq!(density_value("5-6"), Some(4));
        assert_eq!(density_value("lots"), None);
    }

    #[test]
    fn input_channel_reads_its_own_text() {
        for value in 0..=16 {
            assert_eq!(input_channel_value(&input_channel_name(value)), Some(value));
        }
        assert_eq!(input_channel_value("17"), None);
    }
}

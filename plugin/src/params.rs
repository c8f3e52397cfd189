//! Every automatable parameter and persisted field. The generator and the audio thread read these
//! through their atomics; nothing here locks on the audio thread.

use crate::music::vocab::{Key, Mood};
use crate::music::Part;
use crate::persist::SessionStore;
use crossbeam::atomic::AtomicCell;
use nice_plug::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

/// What the generator does with the bars ahead of the playhead.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A phrase of `Loop Length` bars, repeated; parameter changes regenerate it from the playhead on.
    #[id = "loop"]
    Loop,
    /// New bars forever, each conditioned on the ones before.
    #[id = "endless"]
    Endless,
    /// The current phrase, frozen: nothing is regenerated.
    #[id = "hold"]
    Hold,
}

/// Which parts leave the plugin, for hosts that flatten MIDI channels (Ableton: one instance per track).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartOutput {
    #[id = "all"]
    #[name = "All Parts"]
    All,
    #[id = "lead"]
    #[name = "Lead Only"]
    LeadOnly,
    #[id = "arp"]
    #[name = "Arp Only"]
    ArpOnly,
    #[id = "bass"]
    #[name = "Bass Only"]
    BassOnly,
}

impl PartOutput {
    /// The single part this setting isolates, if any.
    pub fn only(self) -> Option<Part> {
        match self {
            PartOutput::All => None,
            PartOutput::LeadOnly => Some(Part::Lead),
            PartOutput::ArpOnly => Some(Part::Arp),
            PartOutput::BassOnly => Some(Part::Bass),
        }
    }
}

/// What the notes played into the plugin do.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// They pass through; the trio plays its own harmony.
    #[id = "off"]
    Off,
    /// They set the harmony: the trio plays over the chords they make.
    #[id = "chords"]
    Chords,
    /// They are the lead: the plugin writes the arp and the bass around them.
    #[id = "lead"]
    #[name = "Part: Lead"]
    Lead,
    /// They are the arp; their chords set the harmony of the lead and the bass.
    #[id = "arp"]
    #[name = "Part: Arp"]
    Arp,
    /// They are the bass; the lead and the arp follow its roots.
    #[id = "bass"]
    #[name = "Part: Bass"]
    Bass,
}

impl Follow {
    /// The part the player plays instead of the model, if any.
    pub fn part(self) -> Option<Part> {
        match self {
            Follow::Off | Follow::Chords => None,
            Follow::Lead => Some(Part::Lead),
            Follow::Arp => Some(Part::Arp),
            Follow::Bass => Some(Part::Bass),
        }
    }
}

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
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkGroup {
    #[id = "off"]
    Off,
    #[id = "a"]
    A,
    #[id = "b"]
    B,
    #[id = "c"]
    C,
    #[id = "d"]
    D,
    #[id = "e"]
    E,
    #[id = "f"]
    F,
    #[id = "g"]
    G,
    #[id = "h"]
    H,
}

impl LinkGroup {
    /// 0 for Off, 1–8 for A–H: what an atomic holds.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Where the model runs (not automatable: it reopens the model).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compute {
    /// The faster of CPU and GPU for each kind of work, as measured on this machine.
    #[id = "auto"]
    Auto,
    #[id = "cpu"]
    #[name = "CPU"]
    Cpu,
    #[id = "gpu"]
    #[name = "GPU"]
    Gpu,
}

impl Compute {
    pub fn choice(self) -> crate::generator::compute::ComputeChoice {
        use crate::generator::compute::ComputeChoice;
        match self {
            Compute::Auto => ComputeChoice::Auto,
            Compute::Cpu => ComputeChoice::Cpu,
            Compute::Gpu => ComputeChoice::Gpu,
        }
    }
}

/// Mood conditioning; `Auto` lets the model pick.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoodChoice {
    #[id = "auto"]
    Auto,
    #[id = "happy"]
    Happy,
    #[id = "sad"]
    Sad,
    #[id = "calm"]
    Calm,
    #[id = "tense"]
    Tense,
}

impl MoodChoice {
    pub fn mood(self) -> Option<Mood> {
        match self {
            MoodChoice::Auto => None,
            MoodChoice::Happy => Some(Mood::Happy),
            MoodChoice::Sad => Some(Mood::Sad),
            MoodChoice::Calm => Some(Mood::Calm),
            MoodChoice::Tense => Some(Mood::Tense),
        }
    }
}

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
}

/// The generation knobs a linked group shares, as the member whose settings changed last has them:
/// the editors of the other members turn their knobs to these, so every member shows what plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupKnobs {
    pub temperature: f32,
    pub top_p: f32,
    pub seed: i32,
    pub mode: Mode,
    pub loop_bars: i32,
    pub key_lock: i32,
    pub mood: MoodChoice,
    pub follow: Follow,
    pub compute: Compute,
    /// (on, low, high) of each part.
    pub parts: [(bool, i32, i32); 3],
}

impl GroupKnobs {
    pub fn of(params: &TrioParams) -> Self {
        GroupKnobs {
            temperature: params.temperature.value(),
            top_p: params.top_p.value(),
            seed: params.seed.value(),
            mode: params.mode.value(),
            loop_bars: params.loop_bars.value(),
            key_lock: params.key_lock.value(),
            mood: params.mood.value(),
            follow: params.follow.value(),
            compute: params.compute.value(),
            parts: Part::ALL.map(|p| {
                let part = params.part(p);
                (part.on.value(), part.low.value(), part.high.value())
            }),
        }
    }

    /// Every knob as a number, in a fixed order, so two sets compare knob by knob.
    pub fn values(&self) -> [f64; 18] {
        let [lead, arp, bass] = self.parts.map(|(on, low, high)| [on as i32 as f64, low as f64, high as f64]);
        [
            self.temperature as f64,
            self.top_p as f64,
            self.seed as f64,
            self.mode as i32 as f64,
            self.loop_bars as f64,
            self.key_lock as f64,
            self.mood as i32 as f64,
            self.follow as i32 as f64,
            self.compute as i32 as f64,
            lead[0],
            lead[1],
            lead[2],
            arp[0],
            arp[1],
            arp[2],
            bass[0],
            bass[1],
            bass[2],
        ]
    }
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
    fn input_channel_reads_its_own_text() {
        for value in 0..=16 {
            assert_eq!(input_channel_value(&input_channel_name(value)), Some(value));
        }
        assert_eq!(input_channel_value("17"), None);
    }
}

//! The plain values the parameters read into: choices, the knobs a linked group shares, and how
//! phrase bars map onto host bars. Depends on `music/` only, so every thread's types may name them.

use crate::music::controls::{density_bin, density_bin_label, ArpMotion, BassDrive, Style, DENSITY_BINS};
use crate::music::vocab::Mood;
use crate::music::Part;
use nice_plug::prelude::Enum;

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

/// The style the model plays in (conditioning in every phrase's header).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StyleChoice {
    #[id = "pop"]
    Pop,
    #[id = "dance"]
    Dance,
}

impl StyleChoice {
    pub fn style(self) -> Style {
        match self {
            StyleChoice::Pop => Style::Pop,
            StyleChoice::Dance => Style::Dance,
        }
    }
}

/// Arp Motion: block chords ↔ broken chords ↔ arpeggio; `Auto` lets the model pick per bar.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpMotionChoice {
    #[id = "auto"]
    Auto,
    #[id = "block"]
    Block,
    #[id = "broken"]
    Broken,
    #[id = "arpeggio"]
    Arpeggio,
}

impl ArpMotionChoice {
    pub fn motion(self) -> Option<ArpMotion> {
        match self {
            ArpMotionChoice::Auto => None,
            ArpMotionChoice::Block => Some(ArpMotion::Block),
            ArpMotionChoice::Broken => Some(ArpMotion::Broken),
            ArpMotionChoice::Arpeggio => Some(ArpMotion::Arpeggio),
        }
    }
}

/// Bass Drive: held roots ↔ a pulse ↔ offbeats ↔ 16ths; `Auto` lets the model pick per bar.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BassDriveChoice {
    #[id = "auto"]
    Auto,
    #[id = "held"]
    Held,
    #[id = "pulse"]
    Pulse,
    #[id = "offbeat"]
    Offbeat,
    #[id = "sixteenths"]
    Sixteenths,
}

impl BassDriveChoice {
    pub fn drive(self) -> Option<BassDrive> {
        match self {
            BassDriveChoice::Auto => None,
            BassDriveChoice::Held => Some(BassDrive::Held),
            BassDriveChoice::Pulse => Some(BassDrive::Pulse),
            BassDriveChoice::Offbeat => Some(BassDrive::Offbeat),
            BassDriveChoice::Sixteenths => Some(BassDrive::Sixteenths),
        }
    }
}

/// A part's Density value: 0 is Auto, `1 + bin` asks for that density bin (onsets per bar).
pub fn density_bin_of(value: i32) -> Option<u8> {
    (1..=DENSITY_BINS as i32).contains(&value).then(|| (value - 1) as u8)
}

/// Density's text: "Auto", or the onsets per bar the bin stands for ("5–6 notes").
pub fn density_name(value: i32) -> String {
    density_bin_of(value).map_or_else(|| "Auto".into(), |bin| format!("{} notes", density_bin_label(bin)))
}

/// Reads Density's own text back ("auto", "5–6 notes", "5-6", "16+"), or a number of notes per
/// bar ("6"), which picks the bin holding it.
pub fn density_value(text: &str) -> Option<i32> {
    let text = text.trim().trim_end_matches("notes").trim().replace('-', "–");
    if text.eq_ignore_ascii_case("auto") {
        return Some(0);
    }
    if let Some(bin) = (0..DENSITY_BINS).find(|&bin| density_bin_label(bin) == text) {
        return Some(1 + bin as i32);
    }
    text.parse::<u32>().ok().map(|notes| 1 + density_bin(notes) as i32)
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
    pub style: StyleChoice,
    /// Each part's Density value (0 = Auto).
    pub density: [i32; 3],
    pub arp_motion: ArpMotionChoice,
    pub bass_drive: BassDriveChoice,
}

impl GroupKnobs {
    /// Every knob as a number, in a fixed order, so two sets compare knob by knob.
    pub fn values(&self) -> [f64; 24] {
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
            self.style as i32 as f64,
            self.density[0] as f64,
            self.density[1] as f64,
            self.density[2] as f64,
            self.arp_motion as i32 as f64,
            self.bass_drive as i32 as f64,
        ]
    }
}

/// How phrase bars map onto host bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Structure {
    pub mode: Mode,
    pub loop_bars: u32,
}

impl Structure {
    /// Phrase length for Loop and Hold; None for Endless.
    pub fn loop_length(&self) -> Option<u32> {
        (self.mode != Mode::Endless).then_some(self.loop_bars)
    }

    /// The phrase bar a host bar plays.
    pub fn phrase_bar(&self, host_bar: i64) -> i64 {
        crate::music::phrase::phrase_bar(host_bar, self.loop_length())
    }
}

//! The token vocabulary: the one definition shared by the dataset builder, the Python training code
//! (through `models/vocab.json`, written by `cargo xtask vocab`) and the plugin's sampler.
//!
//! A phrase is a bar-based event stream in the REMI family:
//!
//! ```text
//! BOS TEMPO_<bin> KEY_<key> MOOD_<mood> STYLE_<style>   conditioning, once per phrase
//! BAR                                                   every bar, empty ones included
//!   DENSITY_lead_<bin> DENSITY_arp_<bin> DENSITY_bass_<bin> ARP_<motion> BASS_<drive>
//!                                                       what the bar does (see `controls`)
//!   POS_<tick> [CHORD_<chord>] [PART_<p> (PITCH DUR VEL)+]*   onsets at one grid tick
//! ...
//! EOS
//! ```
//!
//! Inside a position the parts come in the order lead, arp, bass, each at most once, and a part's
//! pitches come from high to low. Positions inside a bar rise strictly. `POS` is in grid ticks
//! (12 per beat, so 16ths and 16th-triplets both fit); `DUR` is a grid-tick length from a fixed
//! list; `VEL` is one of 8 velocity bins. The bar's control tokens are measured from its notes in
//! the data, so the model learns what they mean and the plugin can force them.

use super::controls::{ArpMotion, BassDrive, Style, DENSITY_BINS};
use super::phrase::{ChordQuality, Part, TICKS_PER_BAR};
use sha2::{Digest, Sha256};

/// Tempo-bin lower edges in BPM (the effective tempo, after the dataset's half-time rule).
pub const TEMPO_BIN_EDGES_BPM: [f32; 8] = [0.0, 90.0, 105.0, 115.0, 125.0, 135.0, 145.0, 160.0];
/// Note lengths the vocabulary can say, in grid ticks (12 per beat): from a 16th-triplet to 4 bars.
pub const DURATIONS_TICKS: [u32; 20] = [2, 3, 4, 6, 8, 9, 12, 15, 18, 24, 30, 36, 42, 48, 60, 72, 96, 120, 144, 192];
/// Velocity bins: bin `b` covers MIDI velocities `VELOCITY_BIN_WIDTH*b + 1 ..= VELOCITY_BIN_WIDTH*(b+1)`.
pub const VELOCITY_BINS: u8 = 8;
pub const VELOCITY_BIN_WIDTH: u8 = 16;
pub const PITCHES: usize = 128;
pub const KEYS: usize = 24;

/// Mood as the BrainMusic project defined it, from mode and tempo feel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mood {
    Happy = 0,
    Sad = 1,
    Calm = 2,
    Tense = 3,
}

impl Mood {
    pub const ALL: [Mood; 4] = [Mood::Happy, Mood::Sad, Mood::Calm, Mood::Tense];

    /// major + fast = happy, minor + slow = sad, major + slow = calm, minor + fast = tense.
    pub fn from_mode_and_tempo(minor: bool, fast: bool) -> Mood {
        match (minor, fast) {
            (false, true) => Mood::Happy,
            (true, false) => Mood::Sad,
            (false, false) => Mood::Calm,
            (true, true) => Mood::Tense,
        }
    }

    /// The mode the label was derived from: sad and tense are minor, happy and calm major.
    pub fn is_minor(self) -> bool {
        matches!(self, Mood::Sad | Mood::Tense)
    }

    pub fn name(self) -> &'static str {
        match self {
            Mood::Happy => "happy",
            Mood::Sad => "sad",
            Mood::Calm => "calm",
            Mood::Tense => "tense",
        }
    }
}

/// A musical key: tonic pitch class and mode. Token index is `tonic + 12 * minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub tonic: u8,
    pub minor: bool,
}

impl Key {
    pub fn index(self) -> usize {
        self.tonic as usize % 12 + if self.minor { 12 } else { 0 }
    }

    pub fn from_index(index: usize) -> Key {
        Key { tonic: (index % 12) as u8, minor: index >= 12 }
    }

    /// Pitch classes of the key's scale (natural minor for minor keys), as a 12-bit mask.
    pub fn scale_mask(self) -> u16 {
        let steps: [u8; 7] = if self.minor { [0, 2, 3, 5, 7, 8, 10] } else { [0, 2, 4, 5, 7, 9, 11] };
        steps.iter().fold(0u16, |m, s| m | 1 << ((self.tonic + s) % 12))
    }

    pub fn transposed(self, semitones: i32) -> Key {
        Key { tonic: (self.tonic as i32 + semitones).rem_euclid(12) as u8, minor: self.minor }
    }

    pub fn name(self) -> String {
        format!("{}{}", super::phrase::NOTE_NAMES[self.tonic as usize], if self.minor { "m" } else { "" })
    }
}

/// One vocabulary entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    Pad,
    Bos,
    Eos,
    Tempo(u8),
    Key(Key),
    Mood(Mood),
    Bar,
    /// Grid tick inside the bar, 0..TICKS_PER_BAR.
    Position(u8),
    /// None is "no chord".
    Chord(Option<(u8, ChordQuality)>),
    Part(Part),
    Pitch(u8),
    /// Index into `DURATIONS_TICKS`.
    Duration(u8),
    /// Velocity bin, 0..VELOCITY_BINS.
    Velocity(u8),
    Style(Style),
    /// A part's onsets per bar, as a bin of `controls::DENSITY_BIN_EDGES`.
    Density(Part, u8),
    ArpMotion(ArpMotion),
    BassDrive(BassDrive),
}

/// First id of each token group; ids are contiguous in this order.
pub mod ids {
    use super::*;
    pub const PAD: u32 = 0;
    pub const BOS: u32 = 1;
    pub const EOS: u32 = 2;
    pub const TEMPO: u32 = 3;
    pub const KEY: u32 = TEMPO + TEMPO_BIN_EDGES_BPM.len() as u32;
    pub const MOOD: u32 = KEY + KEYS as u32;
    pub const BAR: u32 = MOOD + 4;
    pub const POSITION: u32 = BAR + 1;
    pub const CHORD: u32 = POSITION + TICKS_PER_BAR;
    /// 12 roots × 9 qualities, then one "no chord".
    pub const CHORD_COUNT: u32 = 12 * 9 + 1;
    pub const PART: u32 = CHORD + CHORD_COUNT;
    pub const PITCH: u32 = PART + 3;
    pub const DURATION: u32 = PITCH + PITCHES as u32;
    pub const VELOCITY: u32 = DURATION + DURATIONS_TICKS.len() as u32;
    pub const STYLE: u32 = VELOCITY + VELOCITY_BINS as u32;
    pub const DENSITY: u32 = STYLE + Style::ALL.len() as u32;
    pub const ARP_MOTION: u32 = DENSITY + 3 * DENSITY_BINS as u32;
    pub const BASS_DRIVE: u32 = ARP_MOTION + ArpMotion::ALL.len() as u32;
    pub const VOCAB_SIZE: u32 = BASS_DRIVE + BassDrive::ALL.len() as u32;
}

pub const VOCAB_SIZE: usize = ids::VOCAB_SIZE as usize;

impl Token {
    pub fn id(self) -> u32 {
        use ids::*;
        match self {
            Token::Pad => PAD,
            Token::Bos => BOS,
            Token::Eos => EOS,
            Token::Tempo(b) => TEMPO + b as u32,
            Token::Key(k) => KEY + k.index() as u32,
            Token::Mood(m) => MOOD + m as u32,
            Token::Bar => BAR,
            Token::Position(t) => POSITION + t as u32,
            Token::Chord(None) => CHORD + CHORD_COUNT - 1,
            Token::Chord(Some((root, q))) => CHORD + (q as u32) * 12 + root as u32 % 12,
            Token::Part(p) => PART + p as u32,
            Token::Pitch(p) => PITCH + p as u32,
            Token::Duration(d) => DURATION + d as u32,
            Token::Velocity(v) => VELOCITY + v as u32,
            Token::Style(s) => STYLE + s as u32,
            Token::Density(p, b) => DENSITY + p as u32 * DENSITY_BINS as u32 + b as u32,
            Token::ArpMotion(m) => ARP_MOTION + m as u32,
            Token::BassDrive(d) => BASS_DRIVE + d as u32,
        }
    }

    pub fn from_id(id: u32) -> Option<Token> {
        use ids::*;
        let token = match id {
            PAD => Token::Pad,
            BOS => Token::Bos,
            EOS => Token::Eos,
            i if i < KEY => Token::Tempo((i - TEMPO) as u8),
            i if i < MOOD => Token::Key(Key::from_index((i - KEY) as usize)),
            i if i < BAR => Token::Mood(Mood::ALL[(i - MOOD) as usize]),
            BAR => Token::Bar,
            i if i < CHORD => Token::Position((i - POSITION) as u8),
            i if i < PART => {
                let c = i - CHORD;
                if c == CHORD_COUNT - 1 {
                    Token::Chord(None)
                } else {
                    Token::Chord(Some(((c % 12) as u8, ChordQuality::ALL[(c / 12) as usize])))
                }
            }
            i if i < PITCH => Token::Part(Part::from_index((i - PART) as usize)?),
            i if i < DURATION => Token::Pitch((i - PITCH) as u8),
            i if i < VELOCITY => Token::Duration((i - DURATION) as u8),
            i if i < STYLE => Token::Velocity((i - VELOCITY) as u8),
            i if i < DENSITY => Token::Style(Style::ALL[(i - STYLE) as usize]),
            i if i < ARP_MOTION => {
                let d = i - DENSITY;
                Token::Density(Part::from_index((d / DENSITY_BINS as u32) as usize)?, (d % DENSITY_BINS as u32) as u8)
            }
            i if i < BASS_DRIVE => Token::ArpMotion(ArpMotion::ALL[(i - ARP_MOTION) as usize]),
            i if i < VOCAB_SIZE => Token::BassDrive(BassDrive::ALL[(i - BASS_DRIVE) as usize]),
            _ => return None,
        };
        Some(token)
    }

    /// Stable, human-readable name; `vocab.json` and the vocabulary hash are built from these.
    pub fn name(self) -> String {
        match self {
            Token::Pad => "PAD".into(),
            Token::Bos => "BOS".into(),
            Token::Eos => "EOS".into(),
            Token::Tempo(b) => format!("TEMPO_{}", TEMPO_BIN_EDGES_BPM[b as usize] as u32),
            Token::Key(k) => format!("KEY_{}", k.name()),
            Token::Mood(m) => format!("MOOD_{}", m.name()),
            Token::Bar => "BAR".into(),
            Token::Position(t) => format!("POS_{t}"),
            Token::Chord(None) => "CHORD_N".into(),
            Token::Chord(Some((r, q))) => {
                format!("CHORD_{}:{}", super::phrase::NOTE_NAMES[r as usize], q.suffix())
            }
            Token::Part(p) => format!("PART_{}", p.name()),
            Token::Pitch(p) => format!("PITCH_{p}"),
            Token::Duration(d) => format!("DUR_{}", DURATIONS_TICKS[d as usize]),
            Token::Velocity(v) => format!("VEL_{v}"),
            Token::Style(s) => format!("STYLE_{}", s.name()),
            Token::Density(p, b) => format!("DENSITY_{}_{b}", p.name()),
            Token::ArpMotion(m) => format!("ARP_{}", m.name()),
            Token::BassDrive(d) => format!("BASS_{}", d.name()),
        }
    }
}

/// Tempo bin for a tempo in BPM.
pub fn tempo_bin(bpm: f32) -> u8 {
    TEMPO_BIN_EDGES_BPM.iter().rposition(|&edge| bpm >= edge).unwrap_or(0) as u8
}

/// Index of the vocabulary duration closest to `ticks` (ties go to the shorter).
pub fn duration_index(ticks: u32) -> u8 {
    let mut best = 0;
    for (i, &d) in DURATIONS_TICKS.iter().enumerate() {
        if d.abs_diff(ticks) < DURATIONS_TICKS[best].abs_diff(ticks) {
            best = i;
        }
    }
    best as u8
}

pub fn velocity_bin(velocity: u8) -> u8 {
    (velocity.clamp(1, 127) - 1) / VELOCITY_BIN_WIDTH
}

/// The velocity a bin plays back at: its middle.
pub fn velocity_of_bin(bin: u8) -> u8 {
    (bin.min(VELOCITY_BINS - 1) * VELOCITY_BIN_WIDTH + VELOCITY_BIN_WIDTH / 2).min(127)
}

/// All token names in id order.
pub fn token_names() -> Vec<String> {
    (0..ids::VOCAB_SIZE).map(|id| Token::from_id(id).expect("contiguous ids").name()).collect()
}

/// First 16 hex digits of SHA-256 over the newline-joined token names: the model ⇄ plugin handshake.
pub fn vocab_hash() -> String {
    let mut hasher = Sha256::new();
    hasher.update(token_names().join("\n").as_bytes());
    hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The `models/vocab.json` document the Python code reads.
pub fn vocab_json() -> serde_json::Value {
    use ids::*;
    let group = |start: u32, end: u32| serde_json::json!([start, end]);
    serde_json::json!({
        "hash": vocab_hash(),
        "size": VOCAB_SIZE,
        "tokens": token_names(),
        "groups": {
            "pad": group(PAD, PAD + 1),
            "bos": group(BOS, BOS + 1),
            "eos": group(EOS, EOS + 1),
            "tempo": group(TEMPO, KEY),
            "key": group(KEY, MOOD),
            "mood": group(MOOD, BAR),
            "bar": group(BAR, BAR + 1),
            "position": group(POSITION, CHORD),
            "chord": group(CHORD, PART),
            "part": group(PART, PITCH),
            "pitch": group(PITCH, DURATION),
            "duration": group(DURATION, VELOCITY),
            "velocity": group(VELOCITY, STYLE),
            "style": group(STYLE, DENSITY),
            "density": group(DENSITY, ARP_MOTION),
            "arp_motion": group(ARP_MOTION, BASS_DRIVE),
            "bass_drive": group(BASS_DRIVE, VOCAB_SIZE),
        },
        "ticks_per_beat": super::phrase::TICKS_PER_BEAT,
        "ticks_per_bar": TICKS_PER_BAR,
        "durations_ticks": DURATIONS_TICKS,
        "velocity_bin_width": VELOCITY_BIN_WIDTH,
        "tempo_bin_edges_bpm": TEMPO_BIN_EDGES_BPM,
        "moods": Mood::ALL.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "parts": Part::ALL.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "styles": Style::ALL.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "header_length": super::tokens::HEADER_LENGTH,
        "controls_per_bar": super::controls::CONTROLS_PER_BAR,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_names_are_unique() {
        let names = token_names();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        for id in 0..ids::VOCAB_SIZE {
            assert_eq!(Token::from_id(id).unwrap().id(), id);
        }
        assert!(Token::from_id(ids::VOCAB_SIZE).is_none());
    }

    #[test]
    fn bins() {
        assert_eq!(tempo_bin(128.0), 4);
        assert_eq!(tempo_bin(60.0), 0);
        assert_eq!(tempo_bin(200.0), 7);
        assert_eq!(DURATIONS_TICKS[duration_index(3) as usize], 3);
        assert_eq!(DURATIONS_TICKS[duration_index(500) as usize], 192);
        assert_eq!(velocity_bin(1), 0);
        assert_eq!(velocity_bin(127), 7);
        assert_eq!(velocity_bin(velocity_of_bin(5)), 5);
    }

    #[test]
    fn scale_masks() {
        let c_major = Key { tonic: 0, minor: false }.scale_mask();
        assert_eq!(c_major, 0b1010_1011_0101);
        assert_eq!(Key { tonic: 9, minor: true }.scale_mask(), c_major);
    }
}

#[cfg(test)]
mod contract_tests {
    /// `models/vocab.json` (what Python trains on) says exactly what this build's vocabulary says.
    #[test]
    fn vocab_json_matches_the_rust_vocabulary() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/vocab.json");
        let text = std::fs::read_to_string(&path).expect("models/vocab.json exists (cargo xtask vocab writes it)");
        let on_disk: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(on_disk, super::vocab_json(), "run `cargo xtask vocab` and retrain: the vocabulary changed");
    }
}

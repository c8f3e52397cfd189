//! Parts, notes, chords and phrases. Positions are integer grid ticks (12 per beat), so a phrase is
//! exact and comparable; beats are `ticks / TICKS_PER_BEAT` and samples are computed only at playback.

use serde::{Deserialize, Serialize};

/// Grid ticks per beat: 12 holds both 16ths (3 ticks) and 16th-triplets (2 ticks).
pub const TICKS_PER_BEAT: u32 = 12;
/// Only 4/4 bars are modelled; other meters are skipped by the dataset builder.
pub const BEATS_PER_BAR: u32 = 4;
/// Grid ticks per bar.
pub const TICKS_PER_BAR: u32 = TICKS_PER_BEAT * BEATS_PER_BAR;
/// Bars the generator keeps ready ahead of the playhead in Endless mode (more when a host's blocks
/// are wider), and the editor shows.
pub const LOOKAHEAD_BARS: i64 = 2;

/// The phrase bar a host bar plays: Loop and Hold repeat `loop_bars` bars, Endless plays host bars.
pub fn phrase_bar(host_bar: i64, loop_bars: Option<u32>) -> i64 {
    match loop_bars {
        Some(length) => host_bar.rem_euclid(length.max(1) as i64),
        None => host_bar,
    }
}

/// One of the three streamed voices. The order is the order notes take inside a grid position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Part {
    Lead = 0,
    Arp = 1,
    Bass = 2,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Lead, Part::Arp, Part::Bass];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(index: usize) -> Option<Part> {
        Part::ALL.get(index).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Part::Lead => "lead",
            Part::Arp => "arp",
            Part::Bass => "bass",
        }
    }

    /// Default register as MIDI notes, inclusive (C4 = 60): where POP909's lead, arp and bass live.
    pub fn default_register(self) -> (u8, u8) {
        match self {
            Part::Lead => (60, 96),
            Part::Arp => (45, 81),
            Part::Bass => (24, 55),
        }
    }

    /// Lead and bass are single lines (POP909's melody, and its bass trimmed at the next bass
    /// onset): one note at a time, each ending where the next begins.
    pub fn is_monophonic(self) -> bool {
        matches!(self, Part::Lead | Part::Bass)
    }
}

/// Ends each lead and bass note no later than the next onset of its part, as the plugin plays
/// them. `notes` must be sorted by start tick.
pub fn trim_monophonic(notes: &mut [Note]) {
    for part in Part::ALL.into_iter().filter(|p| p.is_monophonic()) {
        let mut next_onset = u32::MAX;
        for note in notes.iter_mut().rev().filter(|n| n.part == part) {
            if next_onset > note.start_tick {
                note.duration_ticks = note.duration_ticks.min(next_onset - note.start_tick);
                next_onset = note.start_tick;
            }
        }
    }
}

/// A note on the grid. `start_tick` counts from the start of the phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Note {
    /// First so that sorting a phrase's notes gives time order.
    pub start_tick: u32,
    pub part: Part,
    pub pitch: u8,
    pub duration_ticks: u32,
    pub velocity: u8,
}

impl Note {
    pub fn end_tick(&self) -> u32 {
        self.start_tick + self.duration_ticks
    }
}

/// Chord qualities the vocabulary knows; POP909 labels are folded onto these (inversions dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChordQuality {
    Major = 0,
    Minor = 1,
    Diminished = 2,
    Augmented = 3,
    Sus2 = 4,
    Sus4 = 5,
    Major7 = 6,
    Minor7 = 7,
    Dominant7 = 8,
}

impl ChordQuality {
    pub const ALL: [ChordQuality; 9] = [
        ChordQuality::Major,
        ChordQuality::Minor,
        ChordQuality::Diminished,
        ChordQuality::Augmented,
        ChordQuality::Sus2,
        ChordQuality::Sus4,
        ChordQuality::Major7,
        ChordQuality::Minor7,
        ChordQuality::Dominant7,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            ChordQuality::Major => "maj",
            ChordQuality::Minor => "min",
            ChordQuality::Diminished => "dim",
            ChordQuality::Augmented => "aug",
            ChordQuality::Sus2 => "sus2",
            ChordQuality::Sus4 => "sus4",
            ChordQuality::Major7 => "maj7",
            ChordQuality::Minor7 => "min7",
            ChordQuality::Dominant7 => "7",
        }
    }

    /// Semitones above the root, used for chord-tone masks and display.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            ChordQuality::Major => &[0, 4, 7],
            ChordQuality::Minor => &[0, 3, 7],
            ChordQuality::Diminished => &[0, 3, 6],
            ChordQuality::Augmented => &[0, 4, 8],
            ChordQuality::Sus2 => &[0, 2, 7],
            ChordQuality::Sus4 => &[0, 5, 7],
            ChordQuality::Major7 => &[0, 4, 7, 11],
            ChordQuality::Minor7 => &[0, 3, 7, 10],
            ChordQuality::Dominant7 => &[0, 4, 7, 10],
        }
    }
}

/// A chord change at a grid position. `None` in `chord` is "no chord" (POP909's `N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Chord {
    pub start_tick: u32,
    /// (root pitch class 0–11, quality), or None for no chord.
    pub chord: Option<(u8, ChordQuality)>,
}

/// A run of bars of the three parts plus the chord changes under them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phrase {
    /// Sorted by (start_tick, part, pitch) — the order the tokenizer emits.
    pub notes: Vec<Note>,
    /// Sorted by start_tick, at most one per tick.
    pub chords: Vec<Chord>,
    /// Length in bars; notes may ring past the end.
    pub bars: u32,
}

impl Phrase {
    /// Puts notes and chords in canonical order and drops exact duplicates.
    pub fn normalize(&mut self) {
        self.notes.sort_by_key(|n| (n.start_tick, n.part, std::cmp::Reverse(n.pitch), n.duration_ticks, n.velocity));
        self.notes.dedup_by_key(|n| (n.start_tick, n.part, n.pitch));
        self.chords.sort_by_key(|c| c.start_tick);
        self.chords.dedup_by_key(|c| c.start_tick);
    }

    pub fn notes_of(&self, part: Part) -> impl Iterator<Item = &Note> {
        self.notes.iter().filter(move |n| n.part == part)
    }
}

pub const NOTE_NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

/// "C4" is MIDI 60 (the Yamaha/Bitwig/Ableton-style octave numbering differs; we state ours in the UI).
pub fn note_name(pitch: u8) -> String {
    format!("{}{}", NOTE_NAMES[(pitch % 12) as usize], pitch as i32 / 12 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_parts_end_at_their_next_onset() {
        let note =
            |start_tick, part, pitch, duration_ticks| Note { start_tick, part, pitch, duration_ticks, velocity: 90 };
        let mut notes = vec![
            note(0, Part::Lead, 72, 48),
            note(0, Part::Arp, 60, 48),
            note(0, Part::Bass, 36, 96),
            note(12, Part::Arp, 64, 48),
            note(24, Part::Lead, 74, 6),
            note(48, Part::Bass, 38, 12),
        ];
        trim_monophonic(&mut notes);
        let durations: Vec<u32> = notes.iter().map(|n| n.duration_ticks).collect();
        // Lead 48 → 24 (next lead at 24), arp untouched, bass 96 → 48, the rest already end in time.
        assert_eq!(durations, vec![24, 48, 48, 48, 6, 12]);
    }
}

//! Grid notes into a phrase: PIANO split into bass and arp, bass lengths trimmed, lengths and
//! velocities onto the vocabulary, duplicates dropped, empty edge bars trimmed; and transposition.

use super::beats::{GridNote, MIN_DURATION_TICKS};
use neural_trio::music::tokens::Header;
use neural_trio::music::vocab::{self, duration_index, DURATIONS_TICKS};
use neural_trio::music::{Chord, ChordQuality, Note, Part, Phrase, TICKS_PER_BAR};

/// Bass notes are PIANO onset-group lows below this pitch (G3).
pub(crate) const BASS_BELOW_PITCH: u8 = 55;

/// The song moved by `semitones`: pitches, key tonic and chord roots. Notes that leave 0..=127 are
/// dropped. Mood and tempo are unchanged.
pub fn transpose(header: &Header, phrase: &Phrase, semitones: i32) -> (Header, Phrase) {
    let header = Header { key: header.key.transposed(semitones), ..*header };
    let notes = phrase
        .notes
        .iter()
        .filter_map(|n| {
            let pitch = n.pitch as i32 + semitones;
            (0..=127).contains(&pitch).then_some(Note { pitch: pitch as u8, ..*n })
        })
        .collect();
    let chords = phrase
        .chords
        .iter()
        .map(|c| Chord {
            start_tick: c.start_tick,
            chord: c.chord.map(|(root, q)| ((root as i32 + semitones).rem_euclid(12) as u8, q)),
        })
        .collect();
    let mut phrase = Phrase { notes, chords, bars: phrase.bars };
    phrase.normalize();
    (header, phrase)
}

/// The vocabulary duration for a quantized length: the nearest one, at least [`MIN_DURATION_TICKS`].
fn vocab_duration(length: u32) -> u32 {
    DURATIONS_TICKS[duration_index(length.max(MIN_DURATION_TICKS)) as usize]
}

/// The vocabulary duration for a length that must not exceed `limit` (when `limit` allows any):
/// the nearest one, or else the longest that fits.
fn vocab_duration_within(length: u32, limit: u32) -> u32 {
    let nearest = vocab_duration(length.min(limit));
    if nearest <= limit {
        return nearest;
    }
    DURATIONS_TICKS.iter().copied().filter(|&d| d <= limit).max().unwrap_or(DURATIONS_TICKS[0])
}

/// A grid note as a `part` note, `length` ticks rounded onto the vocabulary, velocity onto its bin.
pub(crate) fn to_note(n: &GridNote, part: Part, length: u32) -> Note {
    Note {
        start_tick: n.tick,
        part,
        pitch: n.pitch,
        duration_ticks: vocab_duration(length),
        velocity: vocab::velocity_of_bin(vocab::velocity_bin(n.velocity)),
    }
}

/// Splits quantized PIANO notes into (bass, arp): in each onset group (same tick) the lowest note
/// is bass if it is below G3; every other note is arp. Both come back sorted by (tick, pitch).
pub(crate) fn split_piano(piano: &[GridNote]) -> (Vec<GridNote>, Vec<GridNote>) {
    let mut sorted = piano.to_vec();
    sorted.sort_by_key(|n| (n.tick, n.pitch, std::cmp::Reverse(n.length)));
    let (mut bass, mut arp) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < sorted.len() {
        let tick = sorted[i].tick;
        let lowest = sorted[i];
        let start = if lowest.pitch < BASS_BELOW_PITCH {
            bass.push(lowest);
            i + 1
        } else {
            i
        };
        let mut j = start;
        while j < sorted.len() && sorted[j].tick == tick {
            // A duplicate of the bass note at the same tick is the same key struck twice: drop it.
            if !(start > i && sorted[j].pitch == lowest.pitch) {
                arp.push(sorted[j]);
            }
            j += 1;
        }
        i = j;
    }
    (bass, arp)
}

/// Bass notes with the length each keeps: shortened so a note ends no later than the next bass
/// onset (a vocabulary duration that fits, where the gap allows one).
pub(crate) fn trim_bass(bass: &[GridNote]) -> Vec<(GridNote, u32)> {
    bass.iter()
        .enumerate()
        .map(|(i, n)| {
            let next = bass[i + 1..].iter().find(|m| m.tick > n.tick).map(|m| m.tick - n.tick);
            let length = match next {
                Some(gap) => vocab_duration_within(n.length, gap.max(MIN_DURATION_TICKS)),
                None => vocab_duration(n.length),
            };
            (*n, length)
        })
        .collect()
}

/// Drops exact duplicates (same part, tick and pitch), keeping the longest (then loudest).
pub(crate) fn dedup_notes(notes: &mut Vec<Note>) {
    notes.sort_by_key(|n| {
        (n.start_tick, n.part, n.pitch, std::cmp::Reverse(n.duration_ticks), std::cmp::Reverse(n.velocity))
    });
    notes.dedup_by_key(|n| (n.start_tick, n.part, n.pitch));
}

/// (root pitch class, quality), or None for "no chord".
type ChordValue = Option<(u8, ChordQuality)>;

/// Trims empty leading/trailing bars, restates the sounding chord at the new start, keeps chord
/// changes only, and returns the normalized phrase with the number of leading bars cut.
pub(crate) fn assemble_phrase(mut notes: Vec<Note>, chord_events: &[(i64, ChordValue)]) -> (Phrase, u32) {
    let first_bar = notes.iter().map(|n| n.start_tick / TICKS_PER_BAR).min().unwrap_or(0);
    let last_bar = notes.iter().map(|n| n.start_tick / TICKS_PER_BAR).max().unwrap_or(0);
    let origin = (first_bar * TICKS_PER_BAR) as i64;
    let end = ((last_bar + 1) * TICKS_PER_BAR) as i64;
    for n in &mut notes {
        n.start_tick -= origin as u32;
    }

    // Chord events in time order; at one tick the last label wins (the one that sounds after it).
    let mut events: Vec<(i64, usize, ChordValue)> =
        chord_events.iter().enumerate().map(|(i, &(t, c))| (t, i, c)).collect();
    events.sort_by_key(|&(t, i, _)| (t, i));
    let mut chords: Vec<Chord> = Vec::new();
    let mut sounding: Option<ChordValue> = None;
    let push = |tick: i64, chord: ChordValue, chords: &mut Vec<Chord>| {
        let tick = (tick - origin) as u32;
        if let Some(last) = chords.last_mut() {
            if last.start_tick == tick {
                last.chord = chord;
                return;
            }
        }
        chords.push(Chord { start_tick: tick, chord });
    };
    for &(tick, _, chord) in &events {
        if tick <= origin {
            sounding = Some(chord);
        } else if tick < end {
            if let Some(state) = sounding.take() {
                push(origin, state, &mut chords);
            }
            push(tick, chord, &mut chords);
        }
    }
    if let Some(state) = sounding {
        push(origin, state, &mut chords);
    }
    // Keep changes only (same-tick overwrites above can leave neighbours equal).
    chords.dedup_by(|later, earlier| later.chord == earlier.chord);

    let mut phrase = Phrase { notes, chords, bars: last_bar - first_bar + 1 };
    phrase.normalize();
    (phrase, first_bar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChordQuality::*;

    #[test]
    fn lengths_go_to_the_nearest_vocabulary_duration() {
        assert_eq!(vocab_duration(1), 2);
        assert_eq!(vocab_duration(5), 4);
        assert_eq!(vocab_duration(500), 192);
    }

    fn gn(tick: u32, length: u32, pitch: u8) -> GridNote {
        GridNote { tick, length, pitch, velocity: 80 }
    }

    #[test]
    fn piano_splits_into_bass_and_arp() {
        let piano = [
            gn(0, 48, 36),
            gn(0, 12, 60),
            gn(0, 12, 64),
            gn(0, 48, 36), // duplicate bass key
            gn(6, 6, 67),  // a lone high note: arp
            gn(12, 30, 43),
            gn(12, 6, 55), // lowest below G3: bass
            gn(24, 6, 55),
            gn(24, 6, 59), // lowest is G3: all arp
            gn(36, 12, 38),
        ];
        let (bass, arp) = split_piano(&piano);
        assert_eq!(bass.iter().map(|n| (n.tick, n.pitch)).collect::<Vec<_>>(), [(0, 36), (12, 43), (36, 38)]);
        let arp: Vec<(u32, u8)> = arp.iter().map(|n| (n.tick, n.pitch)).collect();
        assert_eq!(arp, [(0, 60), (0, 64), (6, 67), (12, 55), (24, 55), (24, 59)]);

        // Each bass note ends no later than the next bass onset.
        let trimmed = trim_bass(&bass);
        let lengths: Vec<u32> = trimmed.iter().map(|&(_, l)| l).collect();
        assert_eq!(lengths, [12, 24, 12]); // 48→12 (gap 12), 30→24 (gap 24, 30 does not fit), last kept
                                           // A gap of 17 ticks: nearest vocabulary length 18 would overrun, so 15.
        let trimmed = trim_bass(&[gn(0, 40, 40), gn(17, 6, 40)]);
        assert_eq!(trimmed[0].1, 15);
    }

    #[test]
    fn trimming_restates_the_sounding_chord() {
        let note = |tick, pitch| Note { start_tick: tick, part: Part::Lead, pitch, duration_ticks: 12, velocity: 72 };
        let notes = vec![note(96 + 12, 72), note(192, 74)];
        let c = Some((0, Major));
        let g = Some((7, Major));
        let events = [(0, None), (48, c), (96, c), (150, g), (150, g), (200, c), (300, g)];
        let (phrase, cut) = assemble_phrase(notes, &events);
        assert_eq!(cut, 2);
        assert_eq!(phrase.bars, 3);
        let chords: Vec<(u32, _)> = phrase.chords.iter().map(|c| (c.start_tick, c.chord)).collect();
        assert_eq!(chords, [(0, c), (54, g), (104, c)]);
        assert_eq!(phrase.notes[0].start_tick, 12);
    }
}

//! Collected output events, the notes they make, and the invariants every output must satisfy.

use crate::timeline::{ParamChange, TransportState};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// How the plugin sent a note event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `CLAP_EVENT_NOTE_ON` / `CLAP_EVENT_NOTE_OFF`.
    Clap,
    /// `CLAP_EVENT_MIDI` with a note on/off status byte.
    Midi,
}

/// What two renders are compared by: (block within run, offset, channel, key, velocity, on).
pub type Signature = (usize, u32, i16, i16, u64, bool);

/// One output note on/off event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteEvent {
    /// Absolute sample time since the instance's first processed block.
    pub time: u64,
    /// Global block index (since activation).
    pub block: u64,
    /// Block index within the run that produced it.
    pub run_block: usize,
    /// Sample offset within the block (the CLAP event time).
    pub offset: u32,
    /// CLAP channel (0 = MIDI channel 1); raw, so a wildcard (-1) shows up as a violation.
    pub channel: i16,
    pub key: i16,
    pub velocity: f64,
    pub on: bool,
    pub dialect: Dialect,
}

impl NoteEvent {
    /// What two renders are compared by: (block within run, offset, channel, key, velocity, on).
    pub fn signature(&self) -> Signature {
        (self.run_block, self.offset, self.channel, self.key, self.velocity.to_bits(), self.on)
    }
}

/// One processed block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRecord {
    pub index: u64,
    pub run_index: usize,
    pub start_sample: u64,
    pub frames: u32,
    pub transport: Option<TransportState>,
    pub params: Vec<ParamChange>,
}

/// A note reconstructed from an on and its off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Note {
    pub channel: i16,
    pub key: i16,
    pub velocity: f64,
    pub start: u64,
    /// `None` while still sounding at the end of the events.
    pub end: Option<u64>,
    pub start_block: u64,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Broken invariants, one line each.
    pub violations: Vec<String>,
    /// Every note, in note-on order.
    pub notes: Vec<Note>,
    /// (channel, key) still sounding after the last event.
    pub hanging: Vec<(i16, i16)>,
    /// Notes whose on and off have the same sample time.
    pub zero_length: usize,
}

impl Analysis {
    pub fn notes_on(&self, channel: i16) -> Vec<Note> {
        self.notes.iter().copied().filter(|n| n.channel == channel).collect()
    }

    pub fn channels(&self) -> BTreeSet<i16> {
        self.notes.iter().map(|n| n.channel).collect()
    }

    /// Violations plus hanging notes, as one message (empty when clean).
    pub fn problems(&self, require_closed: bool) -> String {
        let mut s = String::new();
        for v in self.violations.iter().take(20) {
            let _ = writeln!(s, "  {v}");
        }
        if self.violations.len() > 20 {
            let _ = writeln!(s, "  … and {} more", self.violations.len() - 20);
        }
        if require_closed && !self.hanging.is_empty() {
            let _ = writeln!(s, "  notes never released (channel, key): {:?}", self.hanging);
        }
        s
    }
}

/// Checks the invariants every output stream must satisfy:
/// - within a block, events are sorted by time and lie inside the block;
/// - channel 0..=15, key 0..=127, note-on velocity in (0, 1];
/// - no note-on for a (channel, key) that is already sounding, no note-off for one that is not.
pub fn check(events: &[NoteEvent], blocks: &[BlockRecord]) -> Analysis {
    let mut a = Analysis::default();
    let frames: BTreeMap<u64, u32> = blocks.iter().map(|b| (b.index, b.frames)).collect();
    let mut last: Option<&NoteEvent> = None;
    let mut sounding: BTreeMap<(i16, i16), usize> = BTreeMap::new();
    for e in events {
        if let Some(p) = last {
            if p.block == e.block && e.offset < p.offset {
                a.violations.push(format!(
                    "block {}: event at offset {} after one at offset {} (not sorted)",
                    e.block, e.offset, p.offset
                ));
            }
            if e.block < p.block {
                a.violations.push(format!("event of block {} after one of block {}", e.block, p.block));
            }
        }
        last = Some(e);
        if let Some(&f) = frames.get(&e.block) {
            if e.offset >= f {
                a.violations.push(format!("block {}: event offset {} outside a {f}-frame block", e.block, e.offset));
            }
        }
        if !(0..=15).contains(&e.channel) || !(0..=127).contains(&e.key) {
            a.violations.push(format!(
                "block {} offset {}: invalid channel/key {}/{} ({})",
                e.block,
                e.offset,
                e.channel,
                e.key,
                if e.on { "on" } else { "off" }
            ));
            continue;
        }
        let k = (e.channel, e.key);
        if e.on {
            if !(e.velocity > 0.0 && e.velocity <= 1.0) {
                a.violations.push(format!(
                    "block {} offset {}: note-on ch{} key {} with velocity {}",
                    e.block, e.offset, e.channel, e.key, e.velocity
                ));
            }
            if sounding.contains_key(&k) {
                a.violations.push(format!(
                    "block {} offset {}: note-on ch{} key {} while it is already sounding",
                    e.block, e.offset, e.channel, e.key
                ));
                continue;
            }
            sounding.insert(k, a.notes.len());
            a.notes.push(Note {
                channel: e.channel,
                key: e.key,
                velocity: e.velocity,
                start: e.time,
                end: None,
                start_block: e.block,
            });
        } else {
            match sounding.remove(&k) {
                Some(i) => {
                    a.notes[i].end = Some(e.time);
                    if e.time == a.notes[i].start {
                        a.zero_length += 1;
                    }
                }
                None => a.violations.push(format!(
                    "block {} offset {}: note-off ch{} key {} that is not sounding",
                    e.block, e.offset, e.channel, e.key
                )),
            }
        }
    }
    a.hanging = sounding.keys().copied().collect();
    a
}

/// (channel, key) pairs sounding just before block `block` starts.
pub fn sounding_before_block(events: &[NoteEvent], block: u64) -> BTreeSet<(i16, i16)> {
    let mut s = BTreeSet::new();
    for e in events.iter().filter(|e| e.block < block) {
        if e.on {
            s.insert((e.channel, e.key));
        } else {
            s.remove(&(e.channel, e.key));
        }
    }
    s
}

/// (channel, key) pairs sounding after every event with time <= `time`.
pub fn sounding_at(events: &[NoteEvent], time: u64) -> BTreeSet<(i16, i16)> {
    let mut s = BTreeSet::new();
    for e in events.iter().filter(|e| e.time <= time) {
        if e.on {
            s.insert((e.channel, e.key));
        } else {
            s.remove(&(e.channel, e.key));
        }
    }
    s
}

/// Checks that every note sounding before block `block` is released in that block at offset 0,
/// before any other event for the same (channel, key). Returns the problems (empty when fine) and
/// the number of notes that had to be released.
pub fn released_at_block_start(events: &[NoteEvent], block: u64) -> (Vec<String>, usize) {
    let before = sounding_before_block(events, block);
    let mut problems = Vec::new();
    for &(ch, key) in &before {
        let first = events.iter().find(|e| e.block == block && e.channel == ch && e.key == key);
        match first {
            Some(e) if !e.on && e.offset == 0 => {}
            Some(e) => problems.push(format!(
                "ch{ch} key {key}: sounding before block {block}, first event in that block is {} at offset {} \
                 (expected a note-off at offset 0)",
                if e.on { "a note-on" } else { "a note-off" },
                e.offset
            )),
            None => {
                problems.push(format!("ch{ch} key {key}: sounding before block {block}, not released in that block"))
            }
        }
    }
    (problems, before.len())
}

/// Note-ons in the given block range.
pub fn note_ons_in_blocks(events: &[NoteEvent], blocks: std::ops::Range<u64>) -> Vec<NoteEvent> {
    events.iter().copied().filter(|e| e.on && blocks.contains(&e.block)).collect()
}

/// Song position (beats) of an event, from its block's transport.
pub fn event_beat(e: &NoteEvent, blocks: &[BlockRecord], sample_rate: f64) -> Option<f64> {
    let b = blocks.iter().find(|b| b.index == e.block)?;
    let t = b.transport?;
    Some(t.beats + e.offset as f64 / sample_rate * t.tempo / 60.0)
}

/// Distance in samples from the event to the nearest point of a grid of `ticks_per_beat`,
/// measured at the block's tempo.
pub fn grid_error_samples(e: &NoteEvent, blocks: &[BlockRecord], sample_rate: f64, ticks_per_beat: f64) -> Option<f64> {
    let b = blocks.iter().find(|b| b.index == e.block)?;
    let t = b.transport?;
    let beat = t.beats + e.offset as f64 / sample_rate * t.tempo / 60.0;
    let ticks = beat * ticks_per_beat;
    let err_ticks = (ticks - ticks.round()).abs();
    Some(err_ticks / ticks_per_beat * 60.0 / t.tempo * sample_rate)
}

/// MIDI note name with C4 = 60.
pub fn note_name(key: i16) -> String {
    const NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
    if !(0..=127).contains(&key) {
        return format!("?{key}");
    }
    format!("{}{}", NAMES[(key % 12) as usize], key / 12 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(block: u64, offset: u32, channel: i16, key: i16, on: bool) -> NoteEvent {
        NoteEvent {
            time: block * 100 + offset as u64,
            block,
            run_block: block as usize,
            offset,
            channel,
            key,
            velocity: if on { 0.5 } else { 0.0 },
            on,
            dialect: Dialect::Clap,
        }
    }

    fn blocks(n: u64) -> Vec<BlockRecord> {
        (0..n)
            .map(|i| BlockRecord {
                index: i,
                run_index: i as usize,
                start_sample: i * 100,
                frames: 100,
                transport: None,
                params: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn clean_stream_passes() {
        let e = [ev(0, 10, 0, 60, true), ev(0, 50, 0, 60, false), ev(1, 0, 1, 48, true), ev(2, 0, 1, 48, false)];
        let a = check(&e, &blocks(3));
        assert!(a.violations.is_empty(), "{:?}", a.violations);
        assert!(a.hanging.is_empty());
        assert_eq!(a.notes.len(), 2);
        assert_eq!(a.notes[1].end, Some(200));
    }

    #[test]
    fn finds_each_kind_of_violation() {
        let e = [
            ev(0, 50, 0, 60, true),
            ev(0, 10, 0, 61, true),  // unsorted
            ev(0, 60, 0, 60, true),  // double on
            ev(0, 70, 0, 62, false), // stray off
            ev(0, 120, 0, 63, true), // outside the block
            ev(1, 0, 16, 60, true),  // bad channel
        ];
        let a = check(&e, &blocks(2));
        assert_eq!(a.violations.len(), 5, "{:#?}", a.violations);
        assert_eq!(a.hanging, vec![(0, 60), (0, 61), (0, 63)]);
    }

    #[test]
    fn release_at_block_start() {
        let e = [ev(0, 10, 0, 60, true), ev(0, 20, 2, 40, true), ev(1, 0, 0, 60, false), ev(1, 5, 2, 40, false)];
        let (problems, n) = released_at_block_start(&e, 1);
        assert_eq!(n, 2);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("ch2 key 40"));
        assert_eq!(sounding_at(&e, 100), [(2, 40)].into_iter().collect());
    }

    #[test]
    fn names_and_grid() {
        assert_eq!(note_name(60), "C4");
        assert_eq!(note_name(24), "C1");
        assert_eq!(note_name(61), "C#4");
        let mut b = blocks(1);
        b[0].transport = Some(TransportState {
            playing: true,
            tempo: 120.0,
            beats: 1.0,
            seconds: 0.5,
            loop_range: None,
            tsig: (4, 4),
        });
        // 120 BPM at 48 kHz: 1/12 beat = 2000 samples.
        let on_grid = ev(0, 2000 % 100, 0, 60, true);
        let mut e = on_grid;
        e.offset = 2000;
        assert!(grid_error_samples(&e, &b, 48_000.0, 12.0).unwrap() < 1e-9);
        e.offset = 2003;
        assert!((grid_error_samples(&e, &b, 48_000.0, 12.0).unwrap() - 3.0).abs() < 1e-6);
    }
}

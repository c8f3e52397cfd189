//! Jamming, on the generator thread: what the notes played into the plugin mean (chords, a key, a
//! part), the chord progression a producer typed or captured, and the chords each bar is made under.

use crate::link::PlayedNote;
use crate::music::harmony::{chord_symbol, estimate_key, recognize, triad_on, BarHarmony, ChordValue, Progression};
use crate::music::phrase::{note_name, Chord, BEATS_PER_BAR, TICKS_PER_BAR, TICKS_PER_BEAT};
use crate::music::vocab::Key;
use crate::params::Follow;
use std::collections::BTreeMap;

/// Notes started within this many beats of each other make one (broken) chord.
const BROKEN_CHORD_BEATS: f64 = 1.0;
/// Live chord changes kept: far more than the bars the generator keeps.
const MAX_CHANGES: usize = 256;
/// How fast the key histogram forgets: each new note scales the old weights by this.
const KEY_MEMORY: f32 = 0.97;
/// Bars of a played part kept for the model's context.
const MAX_PLAYED_BARS: usize = 64;
/// A played part's bar is in the context of bars this many bars later and on: by the time those are
/// made (the lookahead is two bars), the played bar has been over for two bars, so what the model hears
/// does not depend on when it made them (unless a note is held across two bar lines).
pub const PLAYED_PART_DELAY_BARS: i64 = 4;

/// A chord change heard from the player, on the host's timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LiveChange {
    /// The grid tick it takes effect from: the first 16th at or after the note that made it (never
    /// earlier, so an offline bounce changes at the same tick whatever its block size).
    tick: i64,
    chord: ChordValue,
    /// The key of what was played, when it was played (the scale the lead keeps to).
    key: Option<Key>,
}

/// Capture: the chords of one whole pass of the loop become its progression.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Capture {
    Off,
    /// Recording the pass of `bars` bars from host bar `first_bar` (the loop's next first bar);
    /// `in_last_bar`: the playhead has reached its last bar (a host loop that wraps then ends the pass).
    Armed {
        first_bar: i64,
        bars: u32,
        in_last_bar: bool,
    },
}

/// The settings jamming needs, read once per generator step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JamSettings {
    pub follow: Follow,
    /// Key Lock, when set: it wins over the key of what is played.
    pub key_lock: Option<Key>,
    /// Loop length, or None in Endless mode.
    pub loop_bars: Option<u32>,
}

pub struct Jam {
    /// Keys held now, with the beat they were pressed.
    held: BTreeMap<u8, f64>,
    /// Notes released lately: (pitch, pressed at), for broken chords.
    released: Vec<(u8, f64)>,
    /// The audio thread's pass (discontinuity count) of the notes heard last.
    pass: u32,
    /// The playhead's host bar at the last look, to tell a jump back from playing on.
    last_bar: i64,
    key_weights: [f32; 12],
    changes: Vec<LiveChange>,
    /// The progression text last read, and what it parsed to.
    progression_text: String,
    progression: Progression,
    progression_error: Option<String>,
    capture: Capture,
    /// What the plugin understood of the last played notes.
    understood: Option<String>,
    /// A captured progression for the editor's text field and the project (taken by the worker).
    captured: Option<String>,
    /// Keys of the played part held now: pitch → (grid tick pressed, velocity).
    part_held: BTreeMap<u8, (i64, u8)>,
    /// The played part's notes by host bar (ticks relative to the bar), for the model's context.
    played_part: BTreeMap<i64, Vec<crate::music::Note>>,
}

impl Default for Jam {
    fn default() -> Self {
        Jam {
            held: BTreeMap::new(),
            released: Vec::new(),
            pass: 0,
            last_bar: i64::MIN,
            key_weights: [0.0; 12],
            changes: Vec::new(),
            progression_text: String::new(),
            progression: Progression::default(),
            progression_error: None,
            capture: Capture::Off,
            understood: None,
            captured: None,
            part_held: BTreeMap::new(),
            played_part: BTreeMap::new(),
        }
    }
}

impl Jam {
    /// Reads the progression text (typed in the editor, or loaded with a project); a change of text
    /// is a change of harmony.
    pub fn set_progression_text(&mut self, text: &str) {
        if text == self.progression_text {
            return;
        }
        self.progression_text = text.to_string();
        match Progression::parse(text) {
            Ok(progression) => {
                self.progression = progression;
                self.progression_error = None;
            }
            Err(e) => {
                self.progression = Progression::default();
                self.progression_error = Some(format!("progression not used: {e}"));
            }
        }
    }

    /// Arms Capture (Loop mode): the next whole pass of the loop is recorded (from its first bar,
    /// or from the playhead's bar when the transport is parked at the loop's start).
    pub fn arm_capture(&mut self, settings: &JamSettings, playhead_beats: f64, playing: bool) {
        let host_bar = (playhead_beats / BEATS_PER_BAR as f64).floor() as i64;
        let after_bar = if playing { host_bar } else { host_bar - 1 };
        self.capture = match (settings.loop_bars, settings.follow) {
            (Some(bars), Follow::Chords | Follow::Arp | Follow::Bass) => {
                let first_bar = (after_bar.div_euclid(bars as i64) + 1) * bars as i64;
                Capture::Armed { first_bar, bars, in_last_bar: false }
            }
            _ => {
                self.understood = Some("Capture needs Loop mode and Follow set to Chords, Arp or Bass".into());
                Capture::Off
            }
        };
    }

    pub fn cancel_capture(&mut self) {
        self.capture = Capture::Off;
    }

    pub fn capturing(&self) -> bool {
        self.capture != Capture::Off
    }

    /// A progression Capture finished, as text, once.
    pub fn take_captured(&mut self) -> Option<String> {
        self.captured.take()
    }

    /// Follow was switched off (or to the lead): what was played no longer sets chords.
    fn forget_live_chords(&mut self) {
        self.changes.clear();
        self.held.clear();
        self.released.clear();
        self.part_held.clear();
    }

    /// Hears one played note.
    pub fn hear(&mut self, note: PlayedNote, settings: &JamSettings) {
        if note.pass != self.pass {
            self.new_pass(note.pass, note.beats);
        }
        if let Some(part) = settings.follow.part() {
            self.record_part(note, part);
        }
        if note.on {
            self.held.insert(note.pitch, note.beats);
            for w in self.key_weights.iter_mut() {
                *w *= KEY_MEMORY;
            }
            self.key_weights[note.pitch as usize % 12] += 1.0;
        } else if let Some(pressed) = self.held.remove(&note.pitch) {
            self.released.push((note.pitch, pressed));
        }
        self.released.retain(|&(_, pressed)| pressed >= note.beats - BROKEN_CHORD_BEATS);
        if !note.on {
            // Lifting the hands keeps the chord.
            return;
        }
        let key = self.key(settings);
        let heard: Vec<u8> = match settings.follow {
            // A bass note sets the root; the key gives the chord on it.
            Follow::Bass => {
                let chord = Some(triad_on(note.pitch % 12, key));
                self.understood = Some(format!("bass {}: {}", note_name(note.pitch), chord_symbol(chord)));
                self.change(note.tick, chord, key);
                return;
            }
            Follow::Lead => {
                self.understood = Some(format!("lead {}", note_name(note.pitch)));
                return;
            }
            Follow::Off => return,
            Follow::Chords | Follow::Arp => {
                // The notes pressed within the last beat, held or already let go, make the chord (a
                // broken chord; keys of the chord before still held in a legato change do not count)...
                let recent = |pressed: f64| pressed >= note.beats - BROKEN_CHORD_BEATS;
                let mut pitches: Vec<u8> = self
                    .held
                    .iter()
                    .filter(|(_, &pressed)| recent(pressed))
                    .map(|(&p, _)| p)
                    .chain(self.released.iter().filter(|r| recent(r.1)).map(|r| r.0))
                    .collect();
                // ...unless that is one note alone: then everything held (a new note over a held chord).
                if pitches.len() < 2 {
                    pitches.extend(self.held.keys().copied());
                }
                pitches.sort_unstable();
                pitches.dedup();
                pitches
            }
        };
        let names = heard.iter().map(|&p| note_name(p)).collect::<Vec<_>>().join(" ");
        let keeping = self.current_chord().map(|c| format!(", keeping {}", chord_symbol(c))).unwrap_or_default();
        match recognize(&heard, key) {
            Some(chord) => {
                self.understood = Some(format!("{} ({names})", chord_symbol(Some(chord))));
                self.change(note.tick, Some(chord), key);
            }
            None if heard.len() == 1 => self.understood = Some(format!("one note ({names}): not a chord{keeping}")),
            None => {
                let count = heard.len();
                self.understood = Some(format!("{count} notes ({names}): no clear chord{keeping}"));
            }
        }
    }

    /// Writes down a played part's notes as the model hears a part: on the grid, by bar.
    fn record_part(&mut self, note: PlayedNote, part: crate::music::Part) {
        let tick = (note.beats * TICKS_PER_BEAT as f64).round() as i64;
        if note.on && note.playing {
            self.part_held.insert(note.pitch, (tick, note.velocity));
            return;
        }
        let Some((start, velocity)) = self.part_held.remove(&note.pitch) else { return };
        let bar = start.div_euclid(TICKS_PER_BAR as i64);
        let start_tick = start.rem_euclid(TICKS_PER_BAR as i64) as u32;
        let duration_ticks = (tick - start).clamp(1, 4 * TICKS_PER_BAR as i64) as u32;
        let played = crate::music::Note { start_tick, part, pitch: note.pitch, duration_ticks, velocity };
        self.played_part.entry(bar).or_default().push(played);
        while self.played_part.len() > MAX_PLAYED_BARS {
            self.played_part.pop_first();
        }
    }

    /// The played part's notes in host bar `bar`, if it was played there.
    pub fn played_part(&self, bar: i64) -> Option<&[crate::music::Note]> {
        self.played_part.get(&bar).map(Vec::as_slice)
    }

    fn current_chord(&self) -> Option<ChordValue> {
        self.changes.last().map(|c| c.chord)
    }

    /// A chord heard at grid tick `at`: it takes effect from the first 16th there or after, replacing
    /// whatever was heard from that tick on (a chord refined by a late note; a jump back in the song).
    fn change(&mut self, at: i64, chord: ChordValue, key: Option<Key>) {
        let sixteenth = (TICKS_PER_BEAT / 4) as i64;
        let tick = at.div_euclid(sixteenth) * sixteenth + if at.rem_euclid(sixteenth) == 0 { 0 } else { sixteenth };
        self.changes.retain(|c| c.tick < tick);
        if self.changes.last().is_some_and(|last| last.chord == chord) {
            return;
        }
        self.changes.push(LiveChange { tick, chord, key });
        if self.changes.len() > MAX_CHANGES {
            self.changes.remove(0);
        }
    }

    /// The song jumped (a seek, a host loop wrap): notes of the last pass no longer make chords with
    /// new ones, and a capture whose last bar was reached is complete.
    fn new_pass(&mut self, pass: u32, playhead_beats: f64) {
        self.pass = pass;
        // Keys held across the jump were pressed on the old timeline: they no longer make chords.
        self.held.clear();
        self.released.clear();
        self.part_held.clear();
        let host_bar = (playhead_beats / BEATS_PER_BAR as f64).floor() as i64;
        let jumped_back = host_bar < self.last_bar;
        self.last_bar = host_bar;
        if let Capture::Armed { first_bar, bars, in_last_bar } = self.capture {
            // A jump back from the pass's last bar (a host loop wrap) ends it; a tempo step or a jump
            // forward is left to `follow`, which finishes it when the playhead is past the pass.
            if in_last_bar && jumped_back {
                self.finish_capture(first_bar, bars);
            } else if jumped_back && host_bar < first_bar {
                // Back before the pass began (a host loop shorter than the way to it): it begins at the
                // loop's next first bar from here.
                let first_bar = host_bar.div_euclid(bars as i64) * bars as i64
                    + if host_bar.rem_euclid(bars as i64) == 0 { 0 } else { bars as i64 };
                self.capture = Capture::Armed { first_bar, bars, in_last_bar: false };
            }
        }
    }

    /// The chords of the recorded pass become the progression.
    fn finish_capture(&mut self, first_bar: i64, bars: u32) {
        self.capture = Capture::Off;
        let progression = Progression {
            bars: (first_bar..first_bar + bars as i64)
                .map(|bar| self.played_bar(bar).map(|h| on_the_beat(&h.changes)).unwrap_or_default())
                .collect(),
        };
        if progression.bars.iter().any(|b| !b.is_empty()) {
            // A bar with nothing played holds the chord before it.
            let text = fill_held_bars(progression).text();
            self.set_progression_text(&text);
            self.captured = Some(text);
        }
    }

    /// The key: Key Lock when set, else the key of what was played.
    pub fn key(&self, settings: &JamSettings) -> Option<Key> {
        settings.key_lock.or_else(|| estimate_key(&self.key_weights))
    }

    /// Once per generator step: follows the settings and the audio thread's pass, and finishes a capture
    /// once the audio thread is about to play past its pass (`block_end_beats`: the end of the block it
    /// is playing, so the progression is in place before the next pass's first tick, whatever the block
    /// size) or a host loop wraps from its last bar.
    pub fn follow(&mut self, settings: &JamSettings, block_end_beats: f64, pass: u32, playhead_beats: f64) {
        if settings.follow == Follow::Off {
            self.forget_live_chords();
        }
        if !matches!(settings.follow, Follow::Chords | Follow::Arp | Follow::Bass) {
            self.changes.clear();
            self.capture = Capture::Off;
        }
        if settings.loop_bars.is_none() {
            self.capture = Capture::Off;
        }
        if pass != self.pass {
            self.new_pass(pass, playhead_beats);
        }
        self.last_bar = (playhead_beats / BEATS_PER_BAR as f64).floor() as i64;
        let end_bar = ((block_end_beats - 1e-9) / BEATS_PER_BAR as f64).floor() as i64;
        if let Capture::Armed { first_bar, bars, in_last_bar } = self.capture {
            if end_bar >= first_bar + bars as i64 {
                self.finish_capture(first_bar, bars);
            } else if !in_last_bar && end_bar == first_bar + bars as i64 - 1 {
                self.capture = Capture::Armed { first_bar, bars, in_last_bar: true };
            }
        }
    }

    /// The chords forced on phrase bar `index` (host bar in Endless mode), or None where the model
    /// chooses: a progression when one is set, else the chords played (each holds until the next).
    pub fn harmony(&self, index: i64, settings: &JamSettings) -> Option<BarHarmony> {
        let scale = settings.key_lock.map(|k| k.scale_mask());
        if !self.progression.is_empty() {
            let key = scale.is_none().then(|| self.progression_key()).flatten();
            let mut changes = self.progression.bar(index).to_vec();
            if changes.first().is_none_or(|c| c.start_tick > 0) {
                // The chord held over from the bar before (a held bar holds it throughout).
                changes.insert(0, Chord { start_tick: 0, chord: self.progression.chord_at_end_of(index - 1) });
            }
            return Some(BarHarmony { from_tick: 0, changes, scale: scale.or(key.map(|k| k.scale_mask())) });
        }
        let latest = self.changes.last()?;
        let mut harmony = match settings.loop_bars {
            None => self.played_bar(index)?,
            Some(length) => {
                // The loop repeats: the bar where the chord last changed keeps what came before it;
                // every other bar holds the new chord.
                let change_bar = latest.tick.div_euclid(TICKS_PER_BAR as i64);
                if index == change_bar.rem_euclid(length as i64) {
                    self.played_bar(change_bar)?
                } else {
                    let changes = vec![Chord { start_tick: 0, chord: latest.chord }];
                    BarHarmony { from_tick: 0, changes, scale: latest.key.map(|k| k.scale_mask()) }
                }
            }
        };
        if let Some(lock) = scale {
            harmony.scale = Some(lock);
        }
        Some(harmony)
    }

    /// The harmony of host bar `bar` as played: the chord sounding at its start, and its changes. The
    /// lead's scale is the key at the bar's first change (a later change in the bar does not move it,
    /// so a change never alters the part of the bar before it).
    fn played_bar(&self, bar: i64) -> Option<BarHarmony> {
        let start = bar * TICKS_PER_BAR as i64;
        let end = start + TICKS_PER_BAR as i64;
        let mut changes: Vec<Chord> = Vec::new();
        let mut scale = None;
        if let Some(c) = self.changes.iter().rev().find(|c| c.tick <= start) {
            changes.push(Chord { start_tick: 0, chord: c.chord });
            scale = c.key.map(|k| k.scale_mask());
        }
        for c in self.changes.iter().filter(|c| c.tick > start && c.tick < end) {
            if changes.is_empty() {
                scale = c.key.map(|k| k.scale_mask());
            }
            changes.push(Chord { start_tick: (c.tick - start) as u32, chord: c.chord });
        }
        let from_tick = changes.first()?.start_tick;
        Some(BarHarmony { from_tick, changes, scale })
    }

    /// The key a typed progression is in, from its chords' tones.
    fn progression_key(&self) -> Option<Key> {
        let mut weights = [0f32; 12];
        for chord in self.progression.bars.iter().flatten() {
            if let Some((root, quality)) = chord.chord {
                weights[root as usize] += 1.0;
                for i in quality.intervals() {
                    weights[(root + i) as usize % 12] += 1.0;
                }
            }
        }
        estimate_key(&weights)
    }

    /// What the status line says about jamming, or None when there is nothing to say.
    pub fn status(&self, settings: &JamSettings, playing: bool) -> Option<String> {
        if let Some(error) = &self.progression_error {
            return Some(error.clone());
        }
        let capture = match self.capture {
            Capture::Off => None,
            Capture::Armed { first_bar, bars, .. } => {
                Some(format!("Capture: play {bars} bars of chords from bar {} (the loop's first bar)", first_bar + 1))
            }
        };
        if !self.progression.is_empty() {
            let following = if settings.follow == Follow::Off {
                String::new()
            } else {
                " (played chords are not followed while a progression is set)".into()
            };
            return Some(capture.unwrap_or_else(|| format!("Progression {}{following}", self.progression.text())));
        }
        if settings.follow == Follow::Off {
            return None;
        }
        let understood = self.understood.clone().unwrap_or_else(|| "waiting for notes".into());
        let stopped = if playing { "" } else { " (transport stopped: the trio follows when the song plays)" };
        let what = match settings.follow {
            Follow::Chords => "Following chords",
            Follow::Lead => "You play the lead",
            Follow::Arp => "You play the arp",
            Follow::Bass => "You play the bass",
            Follow::Off => unreachable!("returned above"),
        };
        Some(match capture {
            Some(capture) => format!("{capture}; {understood}"),
            None => format!("{what}: {understood}{stopped}"),
        })
    }

    /// The key the status line shows.
    pub fn key_text(&self, settings: &JamSettings) -> Option<String> {
        if let Some(lock) = settings.key_lock {
            return Some(format!("{} (Key Lock)", lock.name()));
        }
        if settings.follow == Follow::Off && self.progression.is_empty() {
            return None;
        }
        let key = if self.progression.is_empty() { estimate_key(&self.key_weights) } else { self.progression_key() };
        key.map(|k| {
            format!(
                "{} (from {})",
                k.name(),
                if self.progression.is_empty() { "what you play" } else { "the progression" }
            )
        })
    }
}

/// Captured changes to the nearest beat (players are a little early or late), so the progression
/// reads as a chord chart.
fn on_the_beat(changes: &[Chord]) -> Vec<Chord> {
    let mut out: Vec<Chord> = Vec::new();
    for c in changes {
        let beat = ((c.start_tick as f64 / TICKS_PER_BEAT as f64).round() as u32).min(BEATS_PER_BAR - 1);
        let tick = beat * TICKS_PER_BEAT;
        if out.last().is_some_and(|l| l.start_tick == tick) {
            out.pop();
        }
        if out.last().is_none_or(|l| l.chord != c.chord) {
            out.push(Chord { start_tick: tick, chord: c.chord });
        }
    }
    out
}

/// Bars of a capture where nothing was played hold the chord before them (wrapping around the loop).
fn fill_held_bars(mut progression: Progression) -> Progression {
    let count = progression.bars.len();
    for i in 0..count {
        if progression.bars[i].is_empty() {
            let held = (1..count).find_map(|back| progression.bars[(i + count - back) % count].last().map(|c| c.chord));
            progression.bars[i] = vec![Chord { start_tick: 0, chord: held.flatten() }];
        }
    }
    progression
}

/// The first tick at which two bars' forced harmonies differ (TICKS_PER_BAR when they never do).
pub fn first_difference(made: Option<&BarHarmony>, wanted: Option<&BarHarmony>) -> u32 {
    let chord_at = |h: Option<&BarHarmony>, tick: u32| h.and_then(|h| h.chord_at(tick).map(|c| (c, h.scale)));
    (0..TICKS_PER_BAR).find(|&tick| chord_at(made, tick) != chord_at(wanted, tick)).unwrap_or(TICKS_PER_BAR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::ChordQuality::*;

    fn settings(follow: Follow, loop_bars: Option<u32>) -> JamSettings {
        JamSettings { follow, key_lock: None, loop_bars }
    }

    /// The first grid tick at or after `beats`, as the audio thread reports it.
    fn tick_of(beats: f64) -> i64 {
        (beats * TICKS_PER_BEAT as f64 - 1e-9).ceil() as i64
    }

    fn press(jam: &mut Jam, s: &JamSettings, beats: f64, pitches: &[u8]) {
        for &pitch in pitches {
            jam.hear(
                PlayedNote { beats, tick: tick_of(beats), pass: 1, pitch, velocity: 100, on: true, playing: true },
                s,
            );
        }
    }

    fn release(jam: &mut Jam, s: &JamSettings, beats: f64, pitches: &[u8]) {
        for &pitch in pitches {
            jam.hear(
                PlayedNote { beats, tick: tick_of(beats), pass: 1, pitch, velocity: 0, on: false, playing: true },
                s,
            );
        }
    }

    #[test]
    fn played_chords_hold_until_the_next_and_a_released_chord_stays() {
        let s = settings(Follow::Chords, None);
        let mut jam = Jam::default();
        assert_eq!(jam.harmony(0, &s), None, "nothing played: the model chooses");
        press(&mut jam, &s, 4.0, &[53, 56, 60]);
        release(&mut jam, &s, 7.5, &[53, 56, 60]);
        let bar1 = jam.harmony(1, &s).expect("bar 1 follows Fm");
        assert_eq!(bar1.changes, vec![Chord { start_tick: 0, chord: Some((5, Minor)) }]);
        assert_eq!(jam.harmony(0, &s), None, "the bar before the change stays the model's");
        assert_eq!(jam.harmony(5, &s).unwrap().chord_at(0), Some(Some((5, Minor))), "lifting the hands keeps Fm");
        // Db on beat 3 of bar 2.
        press(&mut jam, &s, 10.0, &[49, 53, 56]);
        let bar2 = jam.harmony(2, &s).unwrap();
        assert_eq!(
            bar2.changes,
            vec![Chord { start_tick: 0, chord: Some((5, Minor)) }, Chord { start_tick: 24, chord: Some((1, Major)) }]
        );
        assert_eq!(first_difference(Some(&bar1), Some(&bar2)), 24);
        assert!(jam.status(&s, true).unwrap().contains("C#"), "{:?}", jam.status(&s, true));
    }

    #[test]
    fn broken_chords_single_notes_and_clusters() {
        let s = settings(Follow::Chords, None);
        let mut jam = Jam::default();
        for (i, pitch) in [41u8, 44, 48].into_iter().enumerate() {
            let beats = i as f64 * 0.25;
            press(&mut jam, &s, beats, &[pitch]);
            release(&mut jam, &s, beats + 0.2, &[pitch]);
        }
        let bar0 = jam.harmony(0, &s).expect("bar 0");
        assert_eq!(bar0.chord_at(6), Some(Some((5, Minor))), "F Ab C broken in a beat, from its last note");
        assert_eq!(bar0.chord_at(0), None, "a change never reaches back before the note that made it");
        press(&mut jam, &s, 8.0, &[62]);
        assert!(jam.status(&s, true).unwrap().contains("not a chord, keeping Fm"));
        release(&mut jam, &s, 8.5, &[62]);
        press(&mut jam, &s, 12.0, &(40..60).collect::<Vec<u8>>());
        assert!(jam.status(&s, true).unwrap().contains("no clear chord"));
        assert_eq!(jam.harmony(3, &s).unwrap().chord_at(0), Some(Some((5, Minor))));
    }

    #[test]
    fn loop_bars_take_the_latest_chord_and_capture_makes_a_progression() {
        let s = settings(Follow::Chords, Some(4));
        let mut jam = Jam::default();
        jam.arm_capture(&s, 2.0, true);
        jam.follow(&s, 2.5, 1, 2.0);
        assert!(jam.capturing());
        let chords: [&[u8]; 4] = [&[53, 56, 60], &[49, 53, 56], &[56, 60, 63], &[51, 55, 58]];
        for (bar, pitches) in chords.iter().enumerate() {
            let beats = 16.0 + bar as f64 * 4.0;
            jam.follow(&s, beats + 0.1, 1, beats);
            press(&mut jam, &s, beats, pitches);
            release(&mut jam, &s, beats + 3.0, pitches);
        }
        assert_eq!(jam.harmony(1, &s).unwrap().chord_at(0), Some(Some((3, Major))), "every other bar holds Eb");
        jam.follow(&s, 32.0, 1, 31.9);
        assert!(jam.capturing(), "the block ending at the pass's end has not played past it");
        jam.follow(&s, 32.01, 1, 32.0);
        assert!(!jam.capturing());
        let text = jam.take_captured().expect("captured");
        assert_eq!(text, "| Fm | C# | G# | D# |");
        // Hands off: the progression plays on.
        jam.follow(&s, 40.0, 1, 39.9);
        assert_eq!(jam.harmony(1, &s).unwrap().chord_at(0), Some(Some((1, Major))));
        assert_eq!(jam.harmony(6, &s).unwrap().chord_at(0), Some(Some((8, Major))));
    }

    #[test]
    fn a_host_loop_ends_a_capture_and_a_jump_back_replaces_later_chords() {
        let s = settings(Follow::Chords, Some(4));
        let mut jam = Jam::default();
        // Armed in bar 1 of a host loop over bars 0-3: the pass to record begins when the loop wraps.
        jam.arm_capture(&s, 4.5, true);
        jam.follow(&s, 5.0, 1, 4.5);
        jam.follow(&s, 16.0, 2, 0.0);
        assert!(jam.capturing());
        let chords: [&[u8]; 4] = [&[53, 56, 60], &[49, 53, 56], &[44, 48, 51], &[51, 55, 58]];
        for (bar, pitches) in chords.iter().enumerate() {
            let beats = bar as f64 * 4.0;
            jam.follow(&s, beats + 0.1, 2, beats);
            for &pitch in pitches.iter() {
                jam.hear(
                    PlayedNote { beats, tick: tick_of(beats), pass: 2, pitch, velocity: 90, on: true, playing: true },
                    &s,
                );
            }
            for &pitch in pitches.iter() {
                let end = beats + 3.0;
                jam.hear(
                    PlayedNote {
                        beats: end,
                        tick: tick_of(end),
                        pass: 2,
                        pitch,
                        velocity: 0,
                        on: false,
                        playing: true,
                    },
                    &s,
                );
            }
        }
        jam.follow(&s, 15.9, 2, 15.8);
        assert!(jam.capturing(), "still in the last bar");
        // The host wraps back to bar 0.
        jam.follow(&s, 0.1, 3, 0.0);
        assert!(!jam.capturing());
        assert_eq!(jam.take_captured().as_deref(), Some("| Fm | C# | G# | D# |"));

        // Endless, chords up to bar 5, then a jump back to bar 1 and a new chord there.
        let e = settings(Follow::Chords, None);
        let mut jam = Jam::default();
        press(&mut jam, &e, 4.0, &[53, 56, 60]);
        press(&mut jam, &e, 20.0, &[49, 53, 56]);
        jam.hear(PlayedNote { beats: 6.0, tick: 72, pass: 2, pitch: 55, velocity: 90, on: true, playing: true }, &e);
        jam.hear(PlayedNote { beats: 6.0, tick: 72, pass: 2, pitch: 59, velocity: 90, on: true, playing: true }, &e);
        jam.hear(PlayedNote { beats: 6.0, tick: 72, pass: 2, pitch: 62, velocity: 90, on: true, playing: true }, &e);
        assert_eq!(
            jam.harmony(5, &e).unwrap().chord_at(0),
            Some(Some((7, Major))),
            "the chord after the jump holds on"
        );
    }

    #[test]
    fn a_bass_line_sets_roots_in_the_key() {
        let s = JamSettings { follow: Follow::Bass, key_lock: Some(Key { tonic: 9, minor: true }), loop_bars: None };
        let mut jam = Jam::default();
        press(&mut jam, &s, 0.0, &[33]);
        release(&mut jam, &s, 3.0, &[33]);
        press(&mut jam, &s, 4.0, &[41]);
        assert_eq!(jam.harmony(0, &s).unwrap().chord_at(0), Some(Some((9, Minor))));
        assert_eq!(jam.harmony(1, &s).unwrap().chord_at(0), Some(Some((5, Major))));
        assert_eq!(jam.harmony(1, &s).unwrap().scale, Some(Key { tonic: 9, minor: true }.scale_mask()));
        jam.follow(&settings(Follow::Off, None), 8.0, 1, 7.9);
        assert_eq!(jam.harmony(1, &settings(Follow::Off, None)), None, "Follow off forgets played chords");
    }

    #[test]
    fn a_played_part_is_written_down_by_bar_on_the_grid() {
        let s = settings(Follow::Lead, None);
        let mut jam = Jam::default();
        press(&mut jam, &s, 4.02, &[72]);
        release(&mut jam, &s, 4.5, &[72]);
        press(&mut jam, &s, 7.5, &[74]);
        release(&mut jam, &s, 9.0, &[74]);
        let bar = jam.played_part(1).expect("bar 1");
        assert_eq!(bar.len(), 2);
        assert_eq!((bar[0].start_tick, bar[0].duration_ticks, bar[0].pitch), (0, 6, 72));
        assert_eq!((bar[1].start_tick, bar[1].duration_ticks, bar[1].part), (42, 18, crate::music::Part::Lead));
        assert!(jam.played_part(2).is_none(), "a note belongs to the bar it starts in");
        assert_eq!(jam.harmony(1, &s), None, "a played lead sets no chords");
    }

    #[test]
    fn a_typed_progression_wins_and_a_bad_one_says_why() {
        let s = settings(Follow::Off, Some(4));
        let mut jam = Jam::default();
        jam.set_progression_text("| Am | F | C G |");
        let bar2 = jam.harmony(2, &s).unwrap();
        assert_eq!(bar2.changes.len(), 2);
        assert_eq!(bar2.chord_at(30), Some(Some((7, Major))));
        assert_eq!(jam.harmony(3, &s).unwrap().chord_at(0), Some(Some((9, Minor))), "it repeats");
        jam.set_progression_text("Am Hm");
        assert_eq!(jam.harmony(0, &s), None);
        assert!(jam.status(&s, true).unwrap().contains("Hm"));
    }
}

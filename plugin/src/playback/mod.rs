//! The audio-thread side: turns published bars into sample-accurate note events. Nothing in this
//! module allocates, locks, logs or touches ONNX Runtime; every buffer is sized at construction.

pub mod bars;
pub mod events;
pub mod input;
pub mod pace;
pub mod sounding;
pub mod timeline;

pub use events::{EventKind, OutEvent};

use crate::link::{AudioEnd, PlayedNote};
use crate::music::phrase::phrase_bar;
use crate::music::{Part, TICKS_PER_BAR, TICKS_PER_BEAT};
use bars::BarTable;
use events::EventList;
use input::{InputNote, Listen};
use pace::RenderPace;
use sounding::SoundingNotes;
use std::time::{Duration, Instant};
use timeline::{HostPosition, Timeline};

/// The most one Offline block may wait for the generator, a last resort: the wait normally ends when
/// the bar arrives or the generator has nothing left to do.
pub const OFFLINE_WAIT_LIMIT: Duration = Duration::from_secs(20);
/// Tempos outside this range are not a usable timeline (a host's garbage would make a block hold
/// billions of ticks).
const MIN_TEMPO_BPM: f64 = 1.0;
const MAX_TEMPO_BPM: f64 = 2000.0;
/// Positions beyond this (a host's garbage) are not a usable timeline: ticks counted from them would
/// overflow.
const MAX_POSITION_BEATS: f64 = 1e12;
/// How often a waiting block looks for its bar.
const WAIT_POLL: Duration = Duration::from_micros(200);
/// Polls (of `WAIT_POLL`) the generator may be seen idle before a wait gives up: 40 ms, far longer
/// than its 2 ms idle sleep.
const IDLE_POLLS_BEFORE_GIVING_UP: u32 = 200;

/// Everything about a part that playback needs this block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartSettings {
    pub on: bool,
    pub low: u8,
    pub high: u8,
    /// 0-based MIDI channel the part's notes go out on (after the part-output selector).
    pub channel: u8,
    /// False when the part-output selector hides this part.
    pub routed: bool,
}

/// A snapshot of the parameters, taken once per block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockSettings {
    pub parts: [PartSettings; 3],
    /// Phrase length in bars for Loop and Hold; None in Endless mode (phrase bars are host bars).
    pub loop_bars: Option<u32>,
    /// Which played notes Follow hears.
    pub listen: Listen,
    /// The part the player plays (Follow: Part …), read once per block.
    pub followed: Option<Part>,
    /// Capture is on: a capture may finish at any bar line, so an offline block that holds one waits
    /// for the bars made after the generator looked.
    pub capture: bool,
    /// The Link group asked for (`LinkGroup::code`): offline, bars count once its generator serves us.
    pub link_group: u8,
}

/// What the host told us about this block.
#[derive(Debug, Clone, Copy)]
pub struct BlockInput {
    pub playing: bool,
    pub tempo_bpm: Option<f64>,
    pub pos_beats: Option<f64>,
    pub samples: u32,
    pub sample_rate: f32,
    /// The host says it renders offline.
    pub offline: bool,
    /// The host's active loop, in beats.
    pub loop_range_beats: Option<(f64, f64)>,
}

/// Folds a pitch into [low, high] by octaves; None when no octave of it fits.
pub fn fit_to_register(pitch: u8, low: u8, high: u8) -> Option<u8> {
    let mut p = pitch as i32;
    while p < low as i32 {
        p += 12;
    }
    while p > high as i32 {
        p -= 12;
    }
    (p >= low as i32 && p <= high as i32).then_some(p as u8)
}

#[derive(Default)]
pub struct Playback {
    bars: BarTable,
    sounding: SoundingNotes,
    timeline: Timeline,
    pace: RenderPace,
    events: EventList,
    /// First absolute grid tick not yet played, so each tick is played once per pass.
    next_tick: i64,
    /// Last block's part settings, to release a part the moment it is switched off.
    last_parts: Option<[PartSettings; 3]>,
}

impl Playback {
    /// The next block is treated as discontinuous (after `reset()` or re-activation).
    pub fn reset(&mut self) {
        self.timeline.reset();
    }

    /// Produces this block's events, sorted by time. `played` are the notes played into the plugin this
    /// block: Follow hears them before the block's ticks play, so an offline bounce waits for the bars
    /// they change.
    pub fn process(
        &mut self,
        link: &AudioEnd,
        input: &BlockInput,
        settings: &BlockSettings,
        played: &[InputNote],
    ) -> &[OutEvent] {
        self.events.clear();
        let epoch = link.epoch();
        self.bars.drain(link, epoch);
        let mut settings = &with_group(*settings, link);

        // Parts switched off, re-routed or re-registered since the last block.
        if let Some(last) = self.last_parts {
            for part in Part::ALL {
                let (was, now) = (last[part.index()], settings.parts[part.index()]);
                if was.on && !now.on || was.routed && !now.routed || was.channel != now.channel {
                    self.sounding.release_part(part, 0, &mut self.events);
                }
            }
        }
        self.last_parts = Some(settings.parts);

        let position = match (input.tempo_bpm, input.pos_beats) {
            (Some(tempo), Some(pos))
                if (MIN_TEMPO_BPM..=MAX_TEMPO_BPM).contains(&tempo)
                    && input.sample_rate > 0.0
                    && pos.is_finite()
                    && pos.abs() <= MAX_POSITION_BEATS =>
            {
                link.set_transport(Some(tempo));
                Some(HostPosition {
                    beats: pos,
                    tempo_bpm: tempo,
                    samples: input.samples,
                    sample_rate: input.sample_rate,
                    loop_range_beats: input.loop_range_beats,
                })
            }
            _ => {
                link.set_transport(None);
                None
            }
        };
        link.set_playing(input.playing && position.is_some());

        let Some(position) = position.filter(|_| input.playing) else {
            // The generator still hears what is played (it shows the chord), where the transport is parked.
            let parked_beats = input.pos_beats.filter(|b| b.is_finite()).unwrap_or(link.playhead_beats());
            let parked_tick = (parked_beats * TICKS_PER_BEAT as f64 - 1e-6).ceil() as i64;
            hear(link, settings.listen, played, |_| (parked_beats, parked_tick), false);
            // Stopped, or no timeline to follow: silence, nothing left sounding.
            self.sounding.release_all(0, &mut self.events);
            self.timeline.reset();
            self.pace.restart();
            return self.events.sorted();
        };

        let (span, continues) = self.timeline.place(&position);
        if !continues {
            self.sounding.release_all(0, &mut self.events);
            // The first tick whose sample is in this block (a host may start a hair after a tick).
            let first_beats = span.start_beats() - 0.5 * span.beats_per_sample;
            self.next_tick = (first_beats * TICKS_PER_BEAT as f64 - 1e-6).ceil() as i64;
            // A host that wraps its loop inside a block (without splitting it there) lands past the
            // loop start: the loop's first ticks are played at once rather than lost.
            if let Some((start, end)) = input.loop_range_beats {
                let block_beats = span.end_beats() - span.start_beats();
                if end > start && span.start_beats() > start && span.start_beats() - start <= block_beats {
                    self.next_tick = (start * TICKS_PER_BEAT as f64 - 1e-6).ceil() as i64;
                }
            }
            link.bump_discontinuities();
        }
        link.set_block_beats(span.start_beats(), span.end_beats());
        let at =
            |offset: u32| (span.start_beats() + offset as f64 * span.beats_per_sample, span.first_tick_from(offset));
        hear(link, settings.listen, played, at, true);

        let block_seconds = input.samples as f64 / input.sample_rate as f64;
        let offline = input.offline || self.pace.observe(Instant::now(), block_seconds);
        link.set_offline(offline);

        // The ticks this block plays: those whose sample falls inside it. A loop's end belongs to the
        // next pass (a host wraps there), however the host rounds its loop points.
        let loop_end_tick = input
            .loop_range_beats
            .filter(|&(start, end)| end > start && span.start_beats() < end)
            .map(|(_, end)| (end * TICKS_PER_BEAT as f64 - 1e-6).ceil() as i64)
            .unwrap_or(i64::MAX);
        let tick_beats = |tick: i64| tick as f64 / TICKS_PER_BEAT as f64;
        let first_tick = self.next_tick.max(0);
        let mut end_tick = first_tick;
        while end_tick < loop_end_tick && span.offset_of_beats(tick_beats(end_tick)).is_some() {
            end_tick += 1;
        }

        link.set_first_unplayed_tick(first_tick);
        // A capture may finish at a bar line, and a jump starts a new pass of what is played: an
        // offline block waits for bars made after the generator saw either.
        let capture_line = settings.capture && (first_tick..end_tick).any(|t| t.rem_euclid(TICKS_PER_BAR as i64) == 0);
        if capture_line || settings.listen.on && !continues {
            link.bump_settings_rev();
        }
        let mut epoch = epoch;
        let after_wait;
        if offline && first_tick < end_tick {
            epoch = self.wait_for_bars(link, settings, first_tick, end_tick);
            // A linked group's structure as the bars just waited for were made under.
            after_wait = with_group(*settings, link);
            settings = &after_wait;
        }
        // What this block plays is now fixed: a regeneration (for any member) keeps up to its end.
        link.set_first_unplayed_tick(end_tick.max(first_tick));

        for tick in first_tick..end_tick {
            let bar = tick.div_euclid(TICKS_PER_BAR as i64);
            let tick_in_bar = tick.rem_euclid(TICKS_PER_BAR as i64) as u32;
            let Some(slot) = self.bars.get(phrase_bar(bar, settings.loop_bars), epoch) else { continue };
            let Some(offset) = span.offset_of_beats(tick_beats(tick)) else { continue };
            // Notes that end by now end first: a wide block is played in time order.
            self.sounding.release_ending_by(&span, offset, &mut self.events);
            for note in slot.notes().iter().filter(|n| n.start_tick == tick_in_bar) {
                let part = settings.parts[note.part.index()];
                if !part.on || !part.routed {
                    continue;
                }
                let Some(pitch) = fit_to_register(note.pitch, part.low, part.high) else { continue };
                let beats = (tick_beats(tick), tick_beats(tick + note.duration_ticks.max(1) as i64));
                self.sounding.start(note.part, part.channel, pitch, note.velocity, beats, offset, &mut self.events);
            }
        }
        self.sounding.release_ending_in(&span, &mut self.events);
        self.next_tick = self.next_tick.max(end_tick);
        self.events.sorted()
    }
}

/// A linked member plays by its group's loop length, part switches and registers (those of the member
/// edited last); channels and routing stay its own.
fn with_group(mut settings: BlockSettings, link: &AudioEnd) -> BlockSettings {
    if let Some(group) = link.group_playback() {
        settings.loop_bars = group.loop_bars;
        for part in Part::ALL {
            let (on, low, high) = group.parts[part.index()];
            let mine = &mut settings.parts[part.index()];
            // A part the player plays is not ours to sound.
            (mine.on, mine.low, mine.high) = (on && settings.followed != Some(part), low, high);
        }
    }
    settings
}

/// Hands the notes Follow hears to the generator, then bumps the settings revision: bars published
/// from then on were made after the generator read them (an offline block waits for those).
fn hear(link: &AudioEnd, listen: Listen, played: &[InputNote], at: impl Fn(u32) -> (f64, i64), playing: bool) {
    let mut heard = false;
    let pass = link.pass();
    for note in played.iter().filter(|n| listen.hears(n.channel)) {
        let (beats, tick) = at(note.offset);
        let played = PlayedNote { beats, tick, pass, pitch: note.pitch, velocity: note.velocity, on: note.on, playing };
        // A full queue (the generator stalled) loses the note, never the audio thread's time.
        heard |= link.hear(played);
    }
    if heard {
        link.bump_settings_rev();
    }
}

impl Playback {
    /// Offline (or faster than real time) only: waits until every bar this block touches is
    /// published under the current settings, so a bounce never drops or delays a note. It waits only
    /// while that bar is coming: the generator is told which bar is awaited, and the wait ends when
    /// the generator has nothing more to do or has failed. Returns the epoch to play from (the
    /// generator may start a new one while we wait, e.g. when it adopts a loaded project).
    fn wait_for_bars(&mut self, link: &AudioEnd, settings: &BlockSettings, from_tick: i64, to_tick: i64) -> u32 {
        let mut epoch = link.epoch();
        let started = Instant::now();
        let first_bar = from_tick.max(0).div_euclid(TICKS_PER_BAR as i64);
        let last_bar = (to_tick - 1).max(0).div_euclid(TICKS_PER_BAR as i64);
        for bar in first_bar..=last_bar {
            let index = phrase_bar(bar, settings.loop_bars);
            let mut idle_polls = 0;
            loop {
                // Served first: a generator taking us in starts our new epoch before it says so.
                let served = link.serving_group() == settings.link_group;
                let revs = (link.settings_rev(), link.group_rev());
                epoch = link.epoch();
                self.bars.drain(link, epoch);
                if served && self.bars.get_current(index, epoch, revs).is_some() || link.generator_failed() {
                    break;
                }
                // The generator idles between requests for a few ms at most: idle for longer while
                // we wait means the bar is not coming (it cannot be made), so stop waiting.
                idle_polls = if link.generator_idle() { idle_polls + 1 } else { 0 };
                if idle_polls > IDLE_POLLS_BEFORE_GIVING_UP || started.elapsed() > OFFLINE_WAIT_LIMIT {
                    break;
                }
                link.set_waiting_for_bar(Some(bar));
                std::thread::sleep(WAIT_POLL);
            }
        }
        link.set_waiting_for_bar(None);
        epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::Note;

    const SAMPLE_RATE: f32 = 48_000.0;

    fn part(channel: u8) -> PartSettings {
        PartSettings { on: true, low: 0, high: 127, channel, routed: true }
    }

    fn settings() -> BlockSettings {
        BlockSettings {
            parts: [part(0), part(1), part(2)],
            loop_bars: Some(2),
            listen: Listen::OFF,
            followed: None,
            capture: false,
            link_group: 0,
        }
    }

    /// A link holding a 2-bar phrase: a lead line on every beat, a held arp chord, a bass note per bar.
    fn link() -> AudioEnd {
        let (link, generator, _) = crate::link::channel();
        // Nothing else will come: a block that waits gives up at once.
        generator.set_failed(true);
        for index in 0..2 {
            let mut notes: Vec<Note> = (0..4)
                .map(|beat| Note {
                    start_tick: beat * 12,
                    part: Part::Lead,
                    pitch: 72 + beat as u8,
                    duration_ticks: 12,
                    velocity: 100,
                })
                .collect();
            notes.push(Note { start_tick: 0, part: Part::Arp, pitch: 64, duration_ticks: 48, velocity: 80 });
            notes.push(Note { start_tick: 0, part: Part::Arp, pitch: 60, duration_ticks: 48, velocity: 80 });
            notes.push(Note {
                start_tick: 6,
                part: Part::Bass,
                pitch: 36 + index as u8,
                duration_ticks: 30,
                velocity: 90,
            });
            assert!(generator.publish_bar((0, 0), index, &notes), "queue has room");
        }
        link
    }

    /// (absolute sample, on, channel, pitch) of every event over `blocks` blocks of `block` frames, the
    /// transport at `tempo` from `start_beats`, looping `loop_beats` if given (blocks split at its end).
    fn play(
        block: u32,
        samples: u64,
        tempo: f64,
        loop_beats: Option<f64>,
        link: &AudioEnd,
    ) -> Vec<(u64, bool, u8, u8)> {
        let mut playback = Playback::default();
        let beats_per_sample = tempo / 60.0 / SAMPLE_RATE as f64;
        let (mut sample, mut beats, mut out) = (0u64, 0.0f64, Vec::new());
        while sample < samples {
            let mut frames = block.min((samples - sample) as u32);
            if let Some(end) = loop_beats {
                frames = frames.min(((end - beats) / beats_per_sample - 1e-6).ceil() as u32);
            }
            let input = BlockInput {
                playing: true,
                tempo_bpm: Some(tempo),
                pos_beats: Some((beats * 1920.0).round() / 1920.0),
                samples: frames,
                sample_rate: SAMPLE_RATE,
                offline: false,
                loop_range_beats: loop_beats.map(|end| (0.0, end)),
            };
            for e in playback.process(link, &input, &settings(), &[]) {
                out.push((sample + e.offset as u64, e.kind == EventKind::NoteOn, e.channel, e.pitch));
            }
            sample += frames as u64;
            beats += frames as f64 * beats_per_sample;
            if loop_beats.is_some_and(|end| beats >= end - 1e-9) {
                beats = 0.0;
            }
        }
        out
    }

    /// Every note-on has its note-off, nothing is left sounding, and events are in time order.
    fn assert_balanced(events: &[(u64, bool, u8, u8)]) {
        let mut sounding = std::collections::BTreeSet::new();
        for (i, &(time, on, channel, pitch)) in events.iter().enumerate() {
            if i > 0 {
                assert!(events[i - 1].0 <= time, "events out of order at {i}");
            }
            if on {
                assert!(sounding.insert((channel, pitch)), "{pitch} on channel {channel} started twice");
            } else {
                assert!(sounding.remove(&(channel, pitch)), "{pitch} on channel {channel} ended without starting");
            }
        }
        assert!(sounding.is_empty(), "left sounding: {sounding:?}");
    }

    #[test]
    fn the_same_notes_at_every_block_size_with_a_rounding_host() {
        let link_for = |_| link();
        let two_bars = 2 * 4 * 22_500; // at 128 BPM
        let reference = play(4096, 3 * two_bars, 128.0, None, &link_for(0));
        assert_eq!(reference.iter().filter(|e| e.1).count(), 3 * 2 * 7, "three passes of the loop");
        for block in [1, 64, 1000] {
            assert_eq!(play(block, 3 * two_bars, 128.0, None, &link_for(block)), reference, "block {block}");
        }
    }

    #[test]
    fn a_host_loop_plays_each_note_once_per_pass_and_ends_every_note() {
        let loop_samples = 2 * 4 * 22_500;
        for block in [64, 1000, 4096] {
            let events = play(block, 3 * loop_samples, 128.0, Some(8.0), &link());
            let ons: Vec<_> = events.iter().filter(|e| e.1).collect();
            assert_eq!(ons.len(), 3 * 14, "block {block}");
            for pass in 1..3 {
                let of_pass = |p: u64| {
                    ons.iter()
                        .filter(|e| e.0 / loop_samples == p)
                        .map(|e| (e.0 % loop_samples, e.2, e.3))
                        .collect::<Vec<_>>()
                };
                assert_eq!(of_pass(pass), of_pass(0), "block {block}, pass {pass}");
            }
            // The last pass's notes end when the transport stops; close them for the balance check.
            let mut closed = events.clone();
            let mut sounding = std::collections::BTreeSet::new();
            for &(_, on, channel, pitch) in &events {
                if on {
                    sounding.insert((channel, pitch));
                } else {
                    sounding.remove(&(channel, pitch));
                }
            }
            closed.extend(sounding.into_iter().map(|(channel, pitch)| (3 * loop_samples, false, channel, pitch)));
            assert_balanced(&closed);
        }
    }

    #[test]
    fn a_start_a_fraction_of_a_sample_after_a_tick_plays_it_and_a_wide_loop_block_loses_nothing() {
        let link = link();
        let mut playback = Playback::default();
        let start = |beats: f64, loop_range_beats| BlockInput {
            playing: true,
            tempo_bpm: Some(120.0),
            pos_beats: Some(beats),
            samples: 480,
            sample_rate: SAMPLE_RATE,
            offline: false,
            loop_range_beats,
        };
        // 0.48 of a sample (1/24000 beat) after the downbeat: the downbeat's sample is this block's first.
        let events = playback.process(&link, &start(0.48 / 24_000.0, None), &settings(), &[]).to_vec();
        assert_eq!(events.iter().filter(|e| e.kind == EventKind::NoteOn && e.offset == 0).count(), 3);
        // A host that wraps its loop inside a block lands 100 samples past the loop start: the loop's
        // downbeat plays at once instead of being lost.
        let events = playback.process(&link, &start(100.0 / 24_000.0, Some((0.0, 8.0))), &settings(), &[]).to_vec();
        assert_eq!(events.iter().filter(|e| e.kind == EventKind::NoteOn && e.offset == 0).count(), 3);
    }

    #[test]
    fn a_tempo_jump_a_seek_a_stop_and_a_disabled_part_release_at_once() {
        let link = link();
        let mut playback = Playback::default();
        let input = |beats: f64, tempo: f64, playing: bool| BlockInput {
            playing,
            tempo_bpm: Some(tempo),
            pos_beats: Some(beats),
            samples: 480,
            sample_rate: SAMPLE_RATE,
            offline: false,
            loop_range_beats: None,
        };
        let sounding_after = |playback: &mut Playback, input: BlockInput, settings: BlockSettings| {
            playback.process(&link, &input, &settings, &[]).to_vec();
            playback.sounding.count()
        };
        assert_eq!(sounding_after(&mut playback, input(0.0, 120.0, true), settings()), 3, "lead and two arp notes");
        let released = playback.process(&link, &input(0.02, 150.0, true), &settings(), &[]).to_vec();
        assert_eq!(released.iter().filter(|e| e.kind == EventKind::NoteOff && e.offset == 0).count(), 3, "tempo jump");
        assert_eq!(sounding_after(&mut playback, input(0.0, 150.0, true), settings()), 3, "seek back to the start");
        let mut arp_off = settings();
        arp_off.parts[1].on = false;
        let events = playback.process(&link, &input(0.025, 150.0, true), &arp_off, &[]).to_vec();
        let arp_offs =
            events.iter().filter(|e| e.kind == EventKind::NoteOff && e.channel == 1 && e.offset == 0).count();
        assert_eq!(arp_offs, 2, "arp switched off mid-note");
        assert!(events.iter().all(|e| !(e.kind == EventKind::NoteOn && e.channel == 1)));
        playback.process(&link, &input(6.0, 150.0, true), &settings(), &[]);
        assert!(playback.sounding.count() > 0);
        let stopped = playback.process(&link, &input(6.0, 150.0, false), &settings(), &[]).to_vec();
        assert!(stopped.iter().all(|e| e.kind == EventKind::NoteOff && e.offset == 0));
        assert_eq!(playback.sounding.count(), 0, "stop leaves nothing sounding");
    }
}

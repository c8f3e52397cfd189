//! The audio-thread side: turns published bars into sample-accurate note events. Nothing in this
//! module allocates, locks, logs or touches ONNX Runtime; every buffer is sized at construction.

pub mod bars;
pub mod events;
pub mod sounding;
pub mod timeline;

pub use events::{EventKind, OutEvent};

use crate::link::Link;
use crate::music::{Part, TICKS_PER_BAR, TICKS_PER_BEAT};
use bars::BarTable;
use events::EventList;
use sounding::SoundingNotes;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use timeline::{BlockSpan, Timeline};

/// How long one Offline block may wait for the generator before it gives up on a bar.
pub const OFFLINE_WAIT_LIMIT: Duration = Duration::from_secs(20);

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
}

/// What the host told us about this block.
#[derive(Debug, Clone, Copy)]
pub struct BlockInput {
    pub playing: bool,
    pub tempo_bpm: Option<f64>,
    pub pos_beats: Option<f64>,
    pub samples: u32,
    pub sample_rate: f32,
    pub offline: bool,
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

pub struct Playback {
    bars: BarTable,
    sounding: SoundingNotes,
    timeline: Timeline,
    events: EventList,
    /// First absolute grid tick not yet played; remembered so rounded host positions neither
    /// repeat nor skip a tick.
    next_tick: i64,
    /// Last block's part settings, to release a part the moment it is switched off.
    last_parts: Option<[PartSettings; 3]>,
}

impl Default for Playback {
    fn default() -> Self {
        Playback {
            bars: BarTable::default(),
            sounding: SoundingNotes::default(),
            timeline: Timeline::default(),
            events: EventList::default(),
            next_tick: 0,
            last_parts: None,
        }
    }
}

impl Playback {
    /// The next block is treated as discontinuous (after `reset()` or re-activation).
    pub fn reset(&mut self) {
        self.timeline.reset();
    }

    /// Produces this block's events, sorted by time, in `self.events()`.
    pub fn process(&mut self, link: &Link, input: &BlockInput, settings: &BlockSettings) -> &[OutEvent] {
        self.events.clear();
        let epoch = link.epoch.load(Ordering::Acquire);
        self.bars.drain(link, epoch);

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

        let span = match (input.tempo_bpm, input.pos_beats) {
            (Some(tempo), Some(pos)) if tempo > 0.0 && input.sample_rate > 0.0 => {
                link.has_transport.store(true, Ordering::Relaxed);
                link.tempo_bpm.store(tempo, Ordering::Relaxed);
                link.playhead_beats.store(pos, Ordering::Relaxed);
                Some(BlockSpan::new(pos, tempo, input.samples, input.sample_rate))
            }
            _ => {
                link.has_transport.store(false, Ordering::Relaxed);
                None
            }
        };
        link.playing.store(input.playing && span.is_some(), Ordering::Relaxed);

        let Some(span) = span.filter(|_| input.playing) else {
            // Stopped, or no timeline to follow: silence, nothing left sounding.
            self.sounding.release_all(0, &mut self.events);
            self.timeline.reset();
            return self.events.sorted();
        };

        if !self.timeline.continues(&span) {
            self.sounding.release_all(0, &mut self.events);
            self.next_tick = (span.start_beats * TICKS_PER_BEAT as f64 - 1e-6).ceil() as i64;
            link.discontinuities.fetch_add(1, Ordering::AcqRel);
        }
        self.timeline.advance(&span);

        let end_tick_exclusive = (span.end_beats() * TICKS_PER_BEAT as f64 - 1e-9).ceil() as i64;
        let mut epoch = epoch;
        if input.offline && self.next_tick < end_tick_exclusive {
            epoch = self.wait_for_bars(link, settings, self.next_tick, end_tick_exclusive);
        }

        // Note-offs that fall inside this block come first, so a retriggered key is released before it restarts.
        self.sounding.release_ending_before(span.end_beats(), &span, &mut self.events);

        for tick in self.next_tick.max(0)..end_tick_exclusive {
            let bar = tick.div_euclid(TICKS_PER_BAR as i64);
            let tick_in_bar = tick.rem_euclid(TICKS_PER_BAR as i64) as u32;
            let phrase_bar = match settings.loop_bars {
                Some(length) => bar.rem_euclid(length.max(1) as i64),
                None => bar,
            };
            let Some(slot) = self.bars.get(phrase_bar, epoch) else { continue };
            let offset = span.offset_of_beats(tick as f64 / TICKS_PER_BEAT as f64);
            for note in slot.notes().iter().filter(|n| n.start_tick == tick_in_bar) {
                let part = settings.parts[note.part.index()];
                if !part.on || !part.routed {
                    continue;
                }
                let Some(pitch) = fit_to_register(note.pitch, part.low, part.high) else { continue };
                let start_beats = tick as f64 / TICKS_PER_BEAT as f64;
                let end_beats = (tick as f64 + note.duration_ticks.max(1) as f64) / TICKS_PER_BEAT as f64;
                let beats = (start_beats, end_beats);
                self.sounding.start(note.part, part.channel, pitch, note.velocity, beats, offset, &mut self.events);
            }
        }
        self.next_tick = self.next_tick.max(end_tick_exclusive);
        link.blocks_processed.fetch_add(1, Ordering::Relaxed);
        self.events.sorted()
    }

    /// Offline only: blocks (bounded) until every bar this block touches is published under the
    /// current settings, so a bounce never drops or delays a note. Returns the epoch to play from
    /// (the generator may start a new one while we wait, e.g. when it adopts a loaded project).
    fn wait_for_bars(&mut self, link: &Link, settings: &BlockSettings, from_tick: i64, to_tick: i64) -> u32 {
        let mut epoch = link.epoch.load(Ordering::Acquire);
        if link.status_has_problem() {
            return epoch;
        }
        let started = Instant::now();
        let first_bar = from_tick.max(0).div_euclid(TICKS_PER_BAR as i64);
        let last_bar = (to_tick - 1).max(0).div_euclid(TICKS_PER_BAR as i64);
        for bar in first_bar..=last_bar {
            let phrase_bar = match settings.loop_bars {
                Some(length) => bar.rem_euclid(length.max(1) as i64),
                None => bar,
            };
            loop {
                let rev = link.settings_rev.load(Ordering::Acquire);
                epoch = link.epoch.load(Ordering::Acquire);
                self.bars.drain(link, epoch);
                if self.bars.get_current(phrase_bar, epoch, rev).is_some() {
                    break;
                }
                if started.elapsed() > OFFLINE_WAIT_LIMIT || link.status_has_problem() {
                    break;
                }
                link.waiting_for_bar.store(phrase_bar, Ordering::Release);
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        link.waiting_for_bar.store(i64::MIN, Ordering::Release);
        epoch
    }
}

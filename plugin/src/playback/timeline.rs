//! Where a block sits on the beat timeline. Positions are counted in samples from an anchor (the
//! host's beat position at the last discontinuity), so a host that rounds its beat position, or
//! splits the same song into other block sizes, changes nothing: every beat maps to the same sample.

/// One block, placed on the timeline by samples counted since the anchor.
#[derive(Debug, Clone, Copy)]
pub struct BlockSpan {
    /// Beat position of the anchor.
    anchor_beats: f64,
    /// Samples from the anchor to the first sample of this block.
    start_sample: i64,
    pub samples: u32,
    pub beats_per_sample: f64,
}

impl BlockSpan {
    /// A block that starts a new anchor at `start_beats`.
    pub fn new(start_beats: f64, tempo_bpm: f64, samples: u32, sample_rate: f32) -> Self {
        BlockSpan {
            anchor_beats: start_beats,
            start_sample: 0,
            samples,
            beats_per_sample: tempo_bpm / 60.0 / sample_rate as f64,
        }
    }

    pub fn start_beats(&self) -> f64 {
        self.anchor_beats + self.start_sample as f64 * self.beats_per_sample
    }

    pub fn end_beats(&self) -> f64 {
        self.anchor_beats + (self.start_sample + self.samples as i64) as f64 * self.beats_per_sample
    }

    /// The sample (counted from the anchor) a beat position falls on.
    fn sample_of_beats(&self, beats: f64) -> i64 {
        ((beats - self.anchor_beats) / self.beats_per_sample).round() as i64
    }

    /// The first grid tick (12 per beat) whose sample is at or after the block's sample `offset`: the
    /// tick from which something played at that sample can be heard, at any block size.
    pub fn first_tick_from(&self, offset: u32) -> i64 {
        let ticks_per_beat = crate::music::TICKS_PER_BEAT as f64;
        let target = self.start_sample + offset as i64;
        let beats = self.anchor_beats + target as f64 * self.beats_per_sample;
        let mut tick = (beats * ticks_per_beat).floor() as i64 - 1;
        while self.sample_of_beats(tick as f64 / ticks_per_beat) < target {
            tick += 1;
        }
        tick
    }

    /// Offset inside this block of a beat position, or None when it falls at or after the block's end
    /// (positions before the block clamp to its first sample).
    pub fn offset_of_beats(&self, beats: f64) -> Option<u32> {
        let offset = self.sample_of_beats(beats) - self.start_sample;
        (offset < self.samples as i64).then_some(offset.max(0) as u32)
    }
}

/// Continuity between blocks, and the sample count that places each block.
#[derive(Debug, Default)]
pub struct Timeline {
    anchor: Option<Anchor>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    beats: f64,
    tempo_bpm: f64,
    beats_per_sample: f64,
    /// Samples from the anchor to the start of the next block.
    next_sample: i64,
}

/// What the host says about one block.
#[derive(Debug, Clone, Copy)]
pub struct HostPosition {
    pub beats: f64,
    pub tempo_bpm: f64,
    pub samples: u32,
    pub sample_rate: f32,
    /// The active loop range in beats, if the host loops.
    pub loop_range_beats: Option<(f64, f64)>,
}

/// A host may round its beat position (Ardour: to 1/1920 beat); anything within this is "the same place".
const POSITION_TOLERANCE_BEATS: f64 = 1.0 / 256.0;
/// A tempo change bigger than this between two blocks is a jump, not a ramp.
const TEMPO_JUMP_RATIO: f64 = 0.02;
/// Our count may drift from the host's (a tempo ramp, varispeed); past this it follows the host again.
/// Twice Ardour's rounding of 1/1920 beat, so rounding alone never moves it.
const DRIFT_LIMIT_BEATS: f64 = 1.0 / 960.0;

impl Timeline {
    pub fn reset(&mut self) {
        self.anchor = None;
    }

    /// Places the block; the bool is false for the first block after a reset or stop, a seek, a
    /// loop wrap or a tempo jump (a new anchor at the host's position).
    pub fn place(&mut self, host: &HostPosition) -> (BlockSpan, bool) {
        let beats_per_sample = host.tempo_bpm / 60.0 / host.sample_rate as f64;
        if let Some(anchor) = self.anchor {
            let counted_beats = anchor.beats + anchor.next_sample as f64 * anchor.beats_per_sample;
            let tolerance = POSITION_TOLERANCE_BEATS.max(2.0 * beats_per_sample);
            let drift = host.beats - counted_beats;
            let tempo_jump = (host.tempo_bpm - anchor.tempo_bpm).abs() > TEMPO_JUMP_RATIO * anchor.tempo_bpm;
            if drift.abs() <= tolerance && !tempo_jump {
                let mut anchor = anchor;
                if host.tempo_bpm != anchor.tempo_bpm || drift.abs() > DRIFT_LIMIT_BEATS {
                    // A ramp, or a count that drifted from the host's beyond its rounding: count on from
                    // here (from the host's position past the limit) at the block's tempo.
                    let beats = if drift.abs() > DRIFT_LIMIT_BEATS { host.beats } else { counted_beats };
                    anchor = Anchor { beats, tempo_bpm: host.tempo_bpm, beats_per_sample, next_sample: 0 };
                }
                let span = BlockSpan {
                    anchor_beats: anchor.beats,
                    start_sample: anchor.next_sample,
                    samples: host.samples,
                    beats_per_sample: anchor.beats_per_sample,
                };
                anchor.next_sample += host.samples as i64;
                self.anchor = Some(anchor);
                return (span, true);
            }
        }
        // A loop wrap lands on the loop start, however the host rounded it.
        let beats = match host.loop_range_beats {
            Some((start, end)) if end > start && (host.beats - start).abs() <= POSITION_TOLERANCE_BEATS => start,
            _ => host.beats,
        };
        self.anchor =
            Some(Anchor { beats, tempo_bpm: host.tempo_bpm, beats_per_sample, next_sample: host.samples as i64 });
        (BlockSpan::new(beats, host.tempo_bpm, host.samples, host.sample_rate), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(beats: f64, tempo_bpm: f64, samples: u32) -> HostPosition {
        HostPosition { beats, tempo_bpm, samples, sample_rate: 48_000.0, loop_range_beats: None }
    }

    #[test]
    fn continuity() {
        let mut t = Timeline::default();
        let (a, continues) = t.place(&at(0.0, 120.0, 256));
        assert!(!continues, "first block is a discontinuity");
        let rounded = (a.end_beats() * 1920.0).round() / 1920.0;
        let (b, continues) = t.place(&at(rounded, 120.0, 256));
        assert!(continues, "host rounding is not a seek");
        assert_eq!(b.start_beats(), a.end_beats(), "the position comes from the sample count, not the rounded beat");
        assert!(!t.place(&at(0.0, 120.0, 256)).1, "loop wrap");
        let (c, _) = t.place(&at(256.0 / 24_000.0, 120.0, 256));
        assert!(!t.place(&at(c.end_beats(), 174.0, 256)).1, "tempo jump");
        let (d, _) = t.place(&at(1.0, 120.0, 256));
        assert!(t.place(&at(d.end_beats(), 120.5, 256)).1, "tempo ramp");
    }

    #[test]
    fn the_same_beat_lands_on_the_same_sample_at_any_block_size() {
        // 1/12 beat grid at 117 BPM, 44.1 kHz: ticks fall between samples.
        let tick_samples = |block: u32| -> Vec<i64> {
            let mut t = Timeline::default();
            let mut out = Vec::new();
            let (mut sample, mut tick) = (0i64, 0i64);
            while tick < 200 {
                let beats_per_sample = 117.0 / 60.0 / 44_100.0;
                let host_beats = ((sample as f64 * beats_per_sample) * 1920.0).round() / 1920.0;
                let (span, _) = t.place(&HostPosition {
                    beats: host_beats,
                    tempo_bpm: 117.0,
                    samples: block,
                    sample_rate: 44_100.0,
                    loop_range_beats: None,
                });
                while let Some(offset) = span.offset_of_beats(tick as f64 / 12.0) {
                    out.push(sample + offset as i64);
                    tick += 1;
                }
                sample += block as i64;
            }
            out
        };
        let reference = tick_samples(4096);
        for block in [1, 7, 64, 1000] {
            assert_eq!(tick_samples(block), reference, "block size {block}");
        }
    }

    #[test]
    fn a_loop_wrap_anchors_on_the_loop_start() {
        let mut t = Timeline::default();
        t.place(&at(15.99, 120.0, 480));
        let wrap = HostPosition { loop_range_beats: Some((4.0, 16.0)), ..at(4.0 + 1.0 / 1920.0, 120.0, 480) };
        let (span, continues) = t.place(&wrap);
        assert!(!continues);
        assert_eq!(span.start_beats(), 4.0);
    }
}

//! Where a block sits on the host's beat timeline, and whether it continues the previous block.

/// One block on the beat timeline.
#[derive(Debug, Clone, Copy)]
pub struct BlockSpan {
    pub start_beats: f64,
    pub tempo_bpm: f64,
    pub samples: u32,
    pub beats_per_sample: f64,
}

impl BlockSpan {
    pub fn new(start_beats: f64, tempo_bpm: f64, samples: u32, sample_rate: f32) -> Self {
        BlockSpan { start_beats, tempo_bpm, samples, beats_per_sample: tempo_bpm / 60.0 / sample_rate as f64 }
    }

    pub fn end_beats(&self) -> f64 {
        self.start_beats + self.samples as f64 * self.beats_per_sample
    }

    /// Sample offset of a beat position inside this block, clamped to the block.
    pub fn offset_of_beats(&self, beats: f64) -> u32 {
        let offset = ((beats - self.start_beats) / self.beats_per_sample).round();
        (offset.max(0.0) as u32).min(self.samples.saturating_sub(1))
    }
}

/// Continuity between blocks.
#[derive(Debug, Default)]
pub struct Timeline {
    /// Where the next block should start if the host just keeps playing.
    expected_start_beats: Option<f64>,
    last_tempo_bpm: f64,
}

/// A host may round its beat position (Ardour: to 1/1920 beat); anything within this is "the same place".
const POSITION_TOLERANCE_BEATS: f64 = 1.0 / 256.0;
/// A tempo change bigger than this between two blocks is a jump, not a ramp.
const TEMPO_JUMP_RATIO: f64 = 0.02;

impl Timeline {
    pub fn reset(&mut self) {
        self.expected_start_beats = None;
    }

    /// False for the first block after a reset or stop, a seek, a loop wrap or a tempo jump.
    pub fn continues(&self, span: &BlockSpan) -> bool {
        let Some(expected) = self.expected_start_beats else { return false };
        let tolerance = POSITION_TOLERANCE_BEATS.max(2.0 * span.beats_per_sample);
        let tempo_jump = (span.tempo_bpm - self.last_tempo_bpm).abs() > TEMPO_JUMP_RATIO * self.last_tempo_bpm;
        (span.start_beats - expected).abs() <= tolerance && !tempo_jump
    }

    pub fn advance(&mut self, span: &BlockSpan) {
        self.expected_start_beats = Some(span.end_beats());
        self.last_tempo_bpm = span.tempo_bpm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuity() {
        let mut t = Timeline::default();
        let a = BlockSpan::new(0.0, 120.0, 256, 48_000.0);
        assert!(!t.continues(&a), "first block is a discontinuity");
        t.advance(&a);
        let rounded = BlockSpan::new((a.end_beats() * 1920.0).round() / 1920.0, 120.0, 256, 48_000.0);
        assert!(t.continues(&rounded), "host rounding is not a seek");
        t.advance(&rounded);
        assert!(!t.continues(&BlockSpan::new(0.0, 120.0, 256, 48_000.0)), "loop wrap");
        assert!(!t.continues(&BlockSpan::new(rounded.end_beats(), 174.0, 256, 48_000.0)), "tempo jump");
        assert!(t.continues(&BlockSpan::new(rounded.end_beats(), 120.5, 256, 48_000.0)), "tempo ramp");
    }
}

//! Builds the list of blocks a host run processes: a transport that plays, stops, seeks, loops and
//! changes tempo, plus parameter changes attached to blocks.

/// The transport of one block (4/4 unless changed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransportState {
    pub playing: bool,
    pub tempo: f64,
    /// Song position at the block start, in beats (quarter notes).
    pub beats: f64,
    /// Song position at the block start, in seconds.
    pub seconds: f64,
    /// Active loop range in beats.
    pub loop_range: Option<(f64, f64)>,
    pub tsig: (u16, u16),
}

/// A parameter value event (CLAP value) at a sample offset of a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamChange {
    pub offset: u32,
    pub param_id: u32,
    pub value: f64,
}

/// A note played into the plugin at a sample offset of a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayedNote {
    pub offset: u32,
    /// 0-based MIDI channel (u16::MAX: any, for a wildcard note-off).
    pub channel: u16,
    /// u16::MAX: any key, for a wildcard note-off.
    pub key: u16,
    pub velocity: f64,
    pub on: bool,
}

/// One `process()` call.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockSpec {
    pub frames: u32,
    /// `None`: no `clap_event_transport` at all (as clap-validator does).
    pub transport: Option<TransportState>,
    pub params: Vec<ParamChange>,
    /// Notes played into the plugin in this block.
    pub notes: Vec<PlayedNote>,
    /// Call `reset()` on the processor before this block.
    pub reset_before: bool,
}

/// Accumulates blocks while keeping the song position.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub sample_rate: f64,
    pub block: u32,
    pub tempo: f64,
    pub beats: f64,
    pub seconds: f64,
    pub playing: bool,
    pub loop_range: Option<(f64, f64)>,
    /// No transport at all in the following blocks.
    pub no_transport: bool,
    /// Report the beat position rounded to 1/n beat, as Ardour does (n = 1920).
    pub round_beats_to: Option<f64>,
    blocks: Vec<BlockSpec>,
    pending: Vec<ParamChange>,
    pending_reset: bool,
}

impl Timeline {
    /// Playing from beat 0 at `tempo`.
    pub fn new(sample_rate: f64, block: u32, tempo: f64) -> Self {
        Self {
            sample_rate,
            block,
            tempo,
            beats: 0.0,
            seconds: 0.0,
            playing: true,
            loop_range: None,
            no_transport: false,
            round_beats_to: None,
            blocks: Vec::new(),
            pending: Vec::new(),
            pending_reset: false,
        }
    }

    /// Index (within this timeline) of the next block to be added.
    pub fn next_index(&self) -> usize {
        self.blocks.len()
    }

    pub fn blocks(&self) -> &[BlockSpec] {
        &self.blocks
    }

    /// Takes the blocks built so far (the position is kept, so building can continue).
    pub fn take(&mut self) -> Vec<BlockSpec> {
        std::mem::take(&mut self.blocks)
    }

    /// Attaches a parameter change to the next block.
    pub fn param(&mut self, change: ParamChange) -> &mut Self {
        self.pending.push(change);
        self
    }

    /// Calls `reset()` before the next block.
    pub fn reset_before_next(&mut self) -> &mut Self {
        self.pending_reset = true;
        self
    }

    pub fn current_transport(&self) -> Option<TransportState> {
        (!self.no_transport).then_some(TransportState {
            playing: self.playing,
            tempo: self.tempo,
            beats: match self.round_beats_to {
                Some(n) => (self.beats * n).round() / n,
                None => self.beats,
            },
            seconds: self.seconds,
            loop_range: self.loop_range,
            tsig: (4, 4),
        })
    }

    /// Adds one block at the current position and advances (if playing); returns its index. Like
    /// real hosts, a block that would cross the loop end is cut there, and the next starts at the
    /// loop start.
    pub fn push_block(&mut self) -> usize {
        let index = self.blocks.len();
        let beats_per_sample = self.tempo / 60.0 / self.sample_rate;
        let mut frames = self.block;
        let mut wraps = false;
        if let Some((_, end)) = self.loop_range.filter(|&(start, end)| end > start && self.playing) {
            if self.beats < end {
                let to_end = ((end - self.beats) / beats_per_sample - 1e-6).ceil().max(1.0) as u32;
                if to_end <= frames {
                    frames = to_end;
                    wraps = true;
                }
            }
        }
        self.blocks.push(BlockSpec {
            frames,
            transport: self.current_transport(),
            params: std::mem::take(&mut self.pending),
            notes: Vec::new(),
            reset_before: std::mem::take(&mut self.pending_reset),
        });
        if self.playing && !self.no_transport {
            let dt = frames as f64 / self.sample_rate;
            self.seconds += dt;
            self.beats += dt * self.tempo / 60.0;
            if let (true, Some((start, end))) = (wraps, self.loop_range) {
                self.beats = start;
                self.seconds -= (end - start) * 60.0 / self.tempo;
            }
        } else if self.no_transport {
            self.seconds += self.block as f64 / self.sample_rate;
        }
        index
    }

    /// Plays until the position has advanced by `beats` (whole blocks; the last may overshoot).
    /// Returns the range of block indices added.
    pub fn play_beats(&mut self, beats: f64) -> std::ops::Range<usize> {
        let first = self.blocks.len();
        self.playing = true;
        let per_sample = self.tempo / 60.0 / self.sample_rate;
        let mut left = beats;
        while left > 1e-9 {
            let before = self.blocks.len();
            self.push_block();
            left -= self.blocks[before].frames as f64 * per_sample;
        }
        first..self.blocks.len()
    }

    /// Plays exactly `beats` (to the nearest sample): the last block is cut short where the range
    /// ends, as a host's export range ends. Returns the range of block indices added.
    pub fn play_beats_exactly(&mut self, beats: f64) -> std::ops::Range<usize> {
        let first = self.blocks.len();
        self.playing = true;
        let mut samples_left = (beats * 60.0 / self.tempo * self.sample_rate).round() as u64;
        let block = self.block;
        while samples_left > 0 {
            self.block = block.min(samples_left.min(u32::MAX as u64) as u32);
            let index = self.push_block();
            samples_left -= self.blocks[index].frames as u64;
        }
        self.block = block;
        first..self.blocks.len()
    }

    pub fn play_bars(&mut self, bars: f64) -> std::ops::Range<usize> {
        self.play_beats(bars * 4.0)
    }

    /// Plays until the song position reaches `beat` (no loop active).
    pub fn play_until_beat(&mut self, beat: f64) -> std::ops::Range<usize> {
        let first = self.blocks.len();
        self.playing = true;
        while self.beats < beat - 1e-9 {
            self.push_block();
        }
        first..self.blocks.len()
    }

    /// `n` blocks with the transport stopped at the current position.
    pub fn stop_blocks(&mut self, n: usize) -> std::ops::Range<usize> {
        let first = self.blocks.len();
        self.playing = false;
        for _ in 0..n {
            self.push_block();
        }
        first..self.blocks.len()
    }

    /// `n` blocks without any transport information.
    pub fn blocks_without_transport(&mut self, n: usize) -> std::ops::Range<usize> {
        let first = self.blocks.len();
        let was = self.no_transport;
        self.no_transport = true;
        for _ in 0..n {
            self.push_block();
        }
        self.no_transport = was;
        first..self.blocks.len()
    }

    /// Jumps the song position (takes effect at the next block).
    pub fn seek(&mut self, beats: f64) -> &mut Self {
        self.beats = beats;
        self.seconds = beats * 60.0 / self.tempo;
        self
    }

    /// Changes the tempo from the next block on; the position stays continuous.
    pub fn set_tempo(&mut self, tempo: f64) -> &mut Self {
        self.tempo = tempo;
        self
    }

    /// Places notes played into the plugin on the blocks built so far, by song position in beats:
    /// (beats, channel 0-based, key, velocity 0–1 or 0 for a note-off). A note falls in the block whose
    /// samples hold its position; one past the last block is dropped. Returns how many were placed.
    pub fn place_notes(&mut self, notes: &[(f64, u16, u16, f64)]) -> usize {
        let mut placed = 0;
        for &(beats, channel, key, velocity) in notes {
            for block in self.blocks.iter_mut() {
                let Some(t) = block.transport.filter(|t| t.playing) else { continue };
                let per_sample = t.tempo / 60.0 / self.sample_rate;
                let end = t.beats + block.frames as f64 * per_sample;
                if beats >= t.beats - 1e-9 && beats < end - 1e-9 {
                    let offset = (((beats - t.beats) / per_sample).round() as u32).min(block.frames - 1);
                    block.notes.push(PlayedNote { offset, channel, key, velocity, on: velocity > 0.0 });
                    block.notes.sort_by_key(|n| n.offset);
                    placed += 1;
                    break;
                }
            }
        }
        placed
    }

    /// The played notes of the last block built, to add to.
    pub fn last_block_notes(&mut self) -> Option<&mut Vec<PlayedNote>> {
        self.blocks.last_mut().map(|b| &mut b.notes)
    }

    /// Number of blocks that `bars` bars take at the current tempo.
    pub fn blocks_per_bars(&self, bars: f64) -> usize {
        let per_block = self.block as f64 / self.sample_rate * self.tempo / 60.0;
        (bars * 4.0 / per_block).ceil() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_stops_seeks_and_loops() {
        let mut tl = Timeline::new(48_000.0, 256, 120.0);
        // 120 BPM: one beat = 24000 samples; one block = 256/24000 beats.
        let r = tl.play_beats(1.0);
        assert_eq!(r.len(), 94); // ceil(24000 / 256)
        let b = tl.blocks();
        assert_eq!(b[0].transport.unwrap().beats, 0.0);
        assert!((b[1].transport.unwrap().beats - 256.0 / 24000.0).abs() < 1e-12);
        assert!((b[1].transport.unwrap().seconds - 256.0 / 48000.0).abs() < 1e-12);
        let pos = tl.beats;
        tl.stop_blocks(3);
        assert_eq!(tl.beats, pos);
        assert!(tl.blocks()[95].transport.map(|t| !t.playing).unwrap());
        tl.seek(10.0).play_beats(0.01);
        assert_eq!(tl.blocks()[97].transport.unwrap().beats, 10.0);
        tl.loop_range = Some((10.0, 10.5));
        tl.play_beats(1.0);
        let wrapped = tl.blocks().windows(2).any(|w| w[1].transport.unwrap().beats < w[0].transport.unwrap().beats);
        assert!(wrapped);
        assert!(tl
            .blocks()
            .iter()
            .all(|b| b.transport.unwrap().beats < 10.5 + 1e-9 || b.transport.unwrap().beats < 10.0));
        let n = tl.blocks().len();
        tl.blocks_without_transport(2);
        assert!(tl.blocks()[n].transport.is_none());
        assert_eq!(tl.take().len(), n + 2);
        assert!(tl.blocks().is_empty());
    }

    #[test]
    fn tempo_change_keeps_position_continuous() {
        let mut tl = Timeline::new(48_000.0, 480, 120.0);
        tl.play_beats(1.0);
        let before = tl.beats;
        tl.set_tempo(60.0);
        let i = tl.push_block();
        assert_eq!(tl.blocks()[i].transport.unwrap().beats, before);
        assert!((tl.beats - before - 0.01).abs() < 1e-12, "480 samples at 60 BPM = 0.01 s = 1/100 beat");
    }
}

//! Tells a render that runs faster than real time from live play, whatever the host flags: some
//! hosts export (freewheel) without ever saying "offline" (Ardour flags it per VST3 block, and the
//! framework does not read that flag). Nobody listens to such a render, so the audio thread may
//! wait for the generator there, as it does offline.

use std::time::{Duration, Instant};

/// Audio this far ahead of the wall clock is not being heard live (REAPER's anticipative processing
/// renders up to 200 ms ahead by default; a real-time host stays within a block or two).
const AHEAD_LIMIT: Duration = Duration::from_millis(300);
/// The verdict is made anew over windows of this much wall time.
const WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct RenderPace {
    window_start: Option<Instant>,
    /// Audio time processed since `window_start`, before the current block.
    audio_in_window: Duration,
    faster_than_real_time: bool,
}

impl RenderPace {
    /// Records one block of `block_seconds` starting at `now`; true while the audio runs faster than
    /// real time.
    pub fn observe(&mut self, now: Instant, block_seconds: f64) -> bool {
        let start = *self.window_start.get_or_insert(now);
        let wall = now.saturating_duration_since(start);
        let ahead = self.audio_in_window.saturating_sub(wall);
        if ahead > AHEAD_LIMIT {
            self.faster_than_real_time = true;
        }
        if wall >= WINDOW {
            self.faster_than_real_time = ahead > AHEAD_LIMIT;
            self.window_start = Some(now);
            self.audio_in_window = Duration::ZERO;
        }
        self.audio_in_window += Duration::try_from_secs_f64(block_seconds).unwrap_or(Duration::ZERO);
        self.faster_than_real_time
    }

    /// Transport stopped: the next play starts a new measurement, as live play until shown otherwise
    /// (after an export, the producer's next play must not wait on the audio thread).
    pub fn restart(&mut self) {
        *self = RenderPace::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_blocks_are_live() {
        let mut pace = RenderPace::default();
        let t0 = Instant::now();
        let block = 512.0 / 48_000.0;
        for i in 0..1000 {
            // Each block arrives on time, give or take a block of jitter.
            let jitter = if i % 3 == 0 { block } else { 0.0 };
            let now = t0 + Duration::from_secs_f64(i as f64 * block + jitter);
            assert!(!pace.observe(now, block), "block {i} judged faster than real time");
        }
    }

    #[test]
    fn a_fast_render_is_seen_within_half_a_second_of_audio_and_a_return_to_live_play_too() {
        let mut pace = RenderPace::default();
        let t0 = Instant::now();
        let block = 256.0 / 48_000.0;
        // 20× real time.
        let fast_at = (0..2000).find(|&i| pace.observe(t0 + Duration::from_secs_f64(i as f64 * block / 20.0), block));
        let fast_at = fast_at.expect("never judged fast");
        assert!(fast_at as f64 * block < 0.5, "judged fast only after {:.2} s of audio", fast_at as f64 * block);
        let resume = t0 + Duration::from_secs_f64(2000.0 * block / 20.0);
        let live_again = (0..2000).find(|&i| !pace.observe(resume + Duration::from_secs_f64(i as f64 * block), block));
        let live_again = live_again.expect("never live again");
        assert!(live_again as f64 * block <= 2.1, "live again only after {:.2} s", live_again as f64 * block);
    }
}

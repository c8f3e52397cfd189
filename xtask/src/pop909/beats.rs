//! Beats, meter and the grid: `beat_midi.txt` read, annotated beats mapped onto grid beats (the
//! half-time factor, pickup bars, irregular bars cut out), and positions snapped to the grid.

use super::midi::RawNote;
use neural_trio::music::{TICKS_PER_BAR, TICKS_PER_BEAT};
use std::collections::HashMap;

/// A song needs at least this share of its beats (first to last downbeat) in 4-beat bars.
pub const MIN_FOUR_BEAT_SHARE: f64 = 0.75;
/// Shortest note length on the grid, in ticks.
pub(super) const MIN_DURATION_TICKS: u32 = 2;
/// An onset this close (in annotated beats) to either edge of a cut-out stretch is kept and lands
/// on the grid at the cut, instead of being dropped.
const CUT_TOLERANCE_BEATS: f64 = 0.125;

/// A note quantized to grid ticks, before role assignment and duration rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GridNote {
    pub(crate) tick: u32,
    /// Quantized length in ticks (at least [`MIN_DURATION_TICKS`]), not yet a vocabulary duration.
    pub(crate) length: u32,
    pub(crate) pitch: u8,
    pub(crate) velocity: u8,
}

/// Snaps a position in grid ticks to the 16th grid (multiples of 3) or, when its error is less than
/// half the 16th error, to the 16th-triplet grid (multiples of 2).
pub(crate) fn quantize_tick(x: f64) -> i64 {
    let sixteenth = (x / 3.0).round() * 3.0;
    let triplet = (x / 2.0).round() * 2.0;
    if (x - triplet).abs() < 0.5 * (x - sixteenth).abs() {
        triplet as i64
    } else {
        sixteenth as i64
    }
}

/// `beat_midi.txt`: annotated beat times and which of them are downbeats.
#[derive(Debug, Clone)]
pub(super) struct Beats {
    times: Vec<f64>,
    /// Indices into `times` of the downbeats.
    downbeats: Vec<usize>,
}

/// Parses `beat_midi.txt` (seconds, beat flag, downbeat flag per line).
pub(super) fn parse_beats(text: &str) -> Result<Beats, String> {
    let mut times = Vec::new();
    let mut downbeats = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        let bad = || format!("beat_midi.txt line {}: cannot read '{}'", line_no + 1, line.trim());
        if cols.len() < 3 {
            return Err(bad());
        }
        let time: f64 = cols[0].parse().map_err(|_| bad())?;
        let downbeat: f64 = cols[2].parse().map_err(|_| bad())?;
        if !time.is_finite() {
            return Err(bad());
        }
        if let Some(&last) = times.last() {
            if time <= last {
                return Err(format!("beat_midi.txt line {}: beat times do not rise", line_no + 1));
            }
        }
        if downbeat == 1.0 {
            downbeats.push(times.len());
        }
        times.push(time);
    }
    if times.len() < 2 {
        return Err("beat_midi.txt has fewer than 2 beats".into());
    }
    if downbeats.is_empty() {
        return Err("beat_midi.txt has no downbeats".into());
    }
    Ok(Beats { times, downbeats })
}

impl Beats {
    /// 60 / median inter-beat interval.
    pub(super) fn annotated_bpm(&self) -> f64 {
        let mut ibis: Vec<f64> = self.times.windows(2).map(|w| w[1] - w[0]).collect();
        ibis.sort_by(|a, b| a.total_cmp(b));
        let n = ibis.len();
        let median = if n % 2 == 1 { ibis[n / 2] } else { 0.5 * (ibis[n / 2 - 1] + ibis[n / 2]) };
        60.0 / median
    }

    /// Ok for a 4/4 song: the most common downbeat-to-downbeat bar is 4 beats and at least
    /// [`MIN_FOUR_BEAT_SHARE`] of the beats lie in 4-beat bars.
    pub(super) fn check_four_four(&self) -> Result<(), String> {
        let bars: Vec<usize> = self.downbeats.windows(2).map(|w| w[1] - w[0]).collect();
        if bars.is_empty() {
            return Err("only one downbeat".into());
        }
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for &b in &bars {
            *counts.entry(b).or_default() += 1;
        }
        let (&common, _) = counts.iter().max_by_key(|&(&len, &count)| (count, std::cmp::Reverse(len))).unwrap();
        if common != 4 {
            return Err(format!("{common} beats per bar (downbeats)"));
        }
        let total: usize = bars.iter().sum();
        let four: usize = bars.iter().filter(|&&b| b == 4).sum();
        let share = four as f64 / total as f64;
        if share < MIN_FOUR_BEAT_SHARE {
            return Err(format!("only {:.0}% of beats in 4-beat bars", share * 100.0));
        }
        Ok(())
    }

    /// Annotated beat position of a time: piecewise-linear between annotated beats, extrapolated
    /// with the nearest interval at the edges.
    pub(super) fn beat_at(&self, t: f64) -> f64 {
        let ts = &self.times;
        let n = ts.len();
        // Index of the interval [ts[i], ts[i+1]] used, clamped to the first and last one.
        let i = ts.partition_point(|&x| x <= t).saturating_sub(1).min(n - 2);
        i as f64 + (t - ts[i]) / (ts[i + 1] - ts[i])
    }
}

/// A stretch of annotated beats and where it lands on the grid.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// First annotated beat (may be fractional/negative for the pickup).
    a0: f64,
    /// Annotated beats kept (mapped with slope `factor`).
    kept: f64,
    /// Annotated beats in the stretch; beats past `kept` are cut. Infinite for the tail.
    total: f64,
    /// Grid beat of `a0`.
    g0: f64,
}

/// Annotated beats → grid beats, with the half-time factor and irregular bars cut out.
#[derive(Debug, Clone)]
pub(super) struct BeatGrid {
    segments: Vec<Segment>,
    factor: f64,
    /// Annotated beats cut out of irregular bars.
    pub(super) beats_cut: u32,
}

/// What quantizing a song's notes dropped and moved, summed over its parts.
#[derive(Debug, Default)]
pub(super) struct QuantStats {
    pub(super) dropped: u32,
    pub(super) triplet: u32,
    pub(super) error_sum: f64,
}

impl BeatGrid {
    /// `factor` grid beats per annotated beat (2 for half-time). `earliest` is the annotated beat of
    /// the earliest onset: enough pickup bars go before the first downbeat to hold it.
    pub(super) fn new(beats: &Beats, factor: f64, earliest: f64) -> Result<BeatGrid, String> {
        let per_bar = (TICKS_PER_BAR / TICKS_PER_BEAT) as f64;
        let d0 = beats.downbeats[0] as f64;
        let mut segments = Vec::new();
        // Grid beats before the first downbeat that hold notes. A note less than a tick early
        // still rounds onto the downbeat, so it needs no pickup bar.
        let lead_in = (d0 - earliest.min(d0)) * factor;
        let pickup = if lead_in > 0.1 { (lead_in / per_bar).ceil() * per_bar } else { 0.0 };
        let mut g = 0.0;
        if pickup > 0.0 {
            let a = pickup / factor;
            segments.push(Segment { a0: d0 - a, kept: a, total: a, g0: 0.0 });
            g = pickup;
        }
        let mut beats_cut = 0;
        for w in beats.downbeats.windows(2) {
            let n = (w[1] - w[0]) as f64;
            let kept_grid = ((n * factor) / per_bar).floor() * per_bar;
            let kept = kept_grid / factor;
            beats_cut += (n - kept).round() as u32;
            segments.push(Segment { a0: w[0] as f64, kept, total: n, g0: g });
            g += kept_grid;
        }
        let last = *beats.downbeats.last().unwrap() as f64;
        segments.push(Segment { a0: last, kept: f64::INFINITY, total: f64::INFINITY, g0: g });
        if !segments.iter().all(|s| s.a0.is_finite() && s.g0.is_finite()) {
            return Err("beat grid is not finite".into());
        }
        Ok(BeatGrid { segments, factor, beats_cut })
    }

    fn segment(&self, a: f64) -> &Segment {
        let i = self.segments.partition_point(|s| s.a0 <= a).saturating_sub(1);
        &self.segments[i]
    }

    /// Grid ticks of an onset at annotated beat `a`, or None if it falls in cut-out beats.
    fn onset_ticks(&self, a: f64) -> Option<f64> {
        let s = self.segment(a);
        let offset = a - s.a0;
        if offset > s.kept + CUT_TOLERANCE_BEATS && offset < s.total - CUT_TOLERANCE_BEATS {
            return None;
        }
        Some(self.grid_ticks_clamped(a))
    }

    /// Grid ticks of annotated beat `a`; inside cut-out beats the grid stands still at the cut.
    pub(super) fn grid_ticks_clamped(&self, a: f64) -> f64 {
        let s = self.segment(a);
        let offset = (a - s.a0).min(s.kept);
        (s.g0 + offset * self.factor) * TICKS_PER_BEAT as f64
    }

    /// Quantizes notes (seconds) onto the grid; onsets in cut-out beats or before the grid are
    /// dropped. Lengths are quantized end minus quantized start, at least [`MIN_DURATION_TICKS`].
    pub(super) fn quantize_notes(&self, beats: &Beats, notes: &[RawNote], stats: &mut QuantStats) -> Vec<GridNote> {
        let mut out = Vec::with_capacity(notes.len());
        for n in notes {
            let Some(x) = self.onset_ticks(beats.beat_at(n.start_s)) else {
                stats.dropped += 1;
                continue;
            };
            let tick = quantize_tick(x);
            if tick < 0 {
                stats.dropped += 1;
                continue;
            }
            let end = quantize_tick(self.grid_ticks_clamped(beats.beat_at(n.end_s)));
            let length = (end - tick).max(MIN_DURATION_TICKS as i64) as u32;
            stats.error_sum += (x - tick as f64).abs();
            if tick % 3 != 0 {
                stats.triplet += 1;
            }
            out.push(GridNote { tick: tick as u32, length, pitch: n.pitch, velocity: n.velocity });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::HALF_TIME_BELOW_BPM;
    use super::*;

    #[test]
    fn quantization_prefers_16ths_unless_the_triplet_is_clearly_closer() {
        assert_eq!(quantize_tick(0.1), 0);
        assert_eq!(quantize_tick(2.9), 3);
        assert_eq!(quantize_tick(2.0), 2); // exact triplet
        assert_eq!(quantize_tick(4.2), 4); // triplet error 0.2 < 16th error 1.2 / 2
        assert_eq!(quantize_tick(3.6), 3); // triplet error 0.4, 16th error 0.6: not clearly closer
        assert_eq!(quantize_tick(5.0), 6); // equally far: 16th
        assert_eq!(quantize_tick(7.6), 8); // 0.4 < 1.4 / 2
        assert_eq!(quantize_tick(47.8), 48);
        assert_eq!(quantize_tick(-1.0), 0); // just before the origin rounds onto it
                                            // Every result lies on one of the two grids.
        for i in 0..2000 {
            let q = quantize_tick(i as f64 * 0.037);
            assert!(q % 3 == 0 || q % 2 == 0);
        }
    }

    fn synthetic_beats(ibi: f64, count: usize, downbeats: &[usize]) -> Beats {
        Beats { times: (0..count).map(|i| 1.0 + i as f64 * ibi).collect(), downbeats: downbeats.to_vec() }
    }

    #[test]
    fn half_time_maps_each_annotated_beat_to_two_grid_beats() {
        // 75 BPM, a downbeat every 4 beats.
        let beats = synthetic_beats(0.8, 17, &[0, 4, 8, 12, 16]);
        assert!((beats.annotated_bpm() - 75.0).abs() < 1e-6);
        assert!(beats.annotated_bpm() < HALF_TIME_BELOW_BPM);
        beats.check_four_four().unwrap();
        let grid = BeatGrid::new(&beats, 2.0, beats.beat_at(1.0)).unwrap();
        let ticks = |t: f64| quantize_tick(grid.onset_ticks(beats.beat_at(t)).unwrap());
        assert_eq!(ticks(1.0), 0);
        assert_eq!(ticks(1.8), 24); // annotated beat 1 = grid beat 2
        assert_eq!(ticks(1.2), 6); // an annotated 16th is a grid 8th
        assert_eq!(ticks(1.0 + 4.0 * 0.8), 96); // an annotated bar is two grid bars
        assert_eq!(ticks(1.0 + 20.0 * 0.8), 20 * 24); // extrapolated past the last beat
                                                      // Before the first beat the first interval extrapolates.
        assert!((beats.beat_at(0.6) + 0.5).abs() < 1e-9);
        // With a note half an annotated beat before the first downbeat, a pickup bar opens the grid.
        let grid = BeatGrid::new(&beats, 2.0, -0.5).unwrap();
        assert_eq!(quantize_tick(grid.onset_ticks(-0.5).unwrap()), 36);
        assert_eq!(quantize_tick(grid.onset_ticks(0.0).unwrap()), 48);
    }

    #[test]
    fn irregular_bars_are_cut_out_of_the_grid() {
        // Bars of 4, 2, 4 beats (then the tail), at 120 BPM: not half-time.
        let beats = synthetic_beats(0.5, 16, &[0, 4, 6, 10]);
        assert!(beats.annotated_bpm() >= HALF_TIME_BELOW_BPM);
        beats.check_four_four().unwrap();
        let grid = BeatGrid::new(&beats, 1.0, 0.0).unwrap();
        assert_eq!(grid.beats_cut, 2);
        assert_eq!(grid.onset_ticks(5.0), None); // inside the cut 2-beat bar
        assert_eq!(quantize_tick(grid.onset_ticks(4.05).unwrap()), 48); // at the cut's edge: kept
        assert_eq!(quantize_tick(grid.onset_ticks(6.0).unwrap()), 48);
        assert_eq!(quantize_tick(grid.onset_ticks(10.0).unwrap()), 96);
        assert_eq!(quantize_tick(grid.grid_ticks_clamped(5.0)), 48); // ends stop at the cut
                                                                     // Half-time keeps the 2-beat bar whole: it is one 4/4 grid bar.
        let grid = BeatGrid::new(&beats, 2.0, 0.0).unwrap();
        assert_eq!(grid.beats_cut, 0);
        assert_eq!(quantize_tick(grid.onset_ticks(5.0).unwrap()), 96 + 24);
        // A 6/8-style song is refused.
        let six = synthetic_beats(0.5, 25, &[0, 6, 12, 18, 24]);
        assert!(six.check_four_four().unwrap_err().contains("6 beats per bar"));
        let ragged = synthetic_beats(0.5, 30, &[0, 4, 7, 10, 13, 16, 20]);
        assert!(ragged.check_four_four().is_err());
    }

    #[test]
    fn beat_file_errors_are_reported() {
        assert!(parse_beats("").is_err());
        assert!(parse_beats("0.5 1.0 0.0\n1.0 0.0 0.0\n").unwrap_err().contains("no downbeats"));
        assert!(parse_beats("0.5 1.0 1.0\n0.4 0.0 0.0\n").unwrap_err().contains("do not rise"));
        assert!(parse_beats("0.5 1.0 1.0\nabc 0.0 0.0\n").is_err());
        let b = parse_beats("0.5 1.0 1.0\n1.0 0.0 0.0\n1.5 1.0 0.0\n").unwrap();
        assert_eq!(b.downbeats, [0]);
    }
}

//! One POP909 song → one [`Phrase`] on the 12-ticks-per-beat grid, with its conditioning [`Header`].
//!
//! [`load_song`] is what `cargo xtask dataset` runs for every song folder, and what `cargo xtask eval`
//! reuses for the held-out songs. Every rule that turns the recording into grid events lives here:
//!
//! - **Time.** `NNN.mid` is read with midly; ticks become seconds through the whole tempo map (every
//!   tempo event of every track, PPQ from the header). MIDI key and time signatures are ignored (they
//!   are unreliable in POP909). The sustain pedal is ignored: durations are key-down lengths.
//! - **Beats.** `beat_midi.txt` (seconds, beat flag, downbeat flag) is the beat grid: a time maps to
//!   an annotated beat position by piecewise-linear interpolation between annotated beats, and by the
//!   nearest interval beyond the first and last beat.
//! - **Meter.** Bars come from the downbeat flags. Only 4/4 is modelled: a song whose most common bar
//!   (downbeat to downbeat) is not 4 beats, or whose beats lie less than [`MIN_FOUR_BEAT_SHARE`] in
//!   4-beat bars, is skipped with a reason. Inside a 4/4 song an irregular bar of `n` annotated beats
//!   (`n × f` grid beats, `f` below) keeps its first whole 4-beat grid bars and the left-over beats
//!   are cut out of the grid: onsets there are dropped (counted), and the grid stands still across
//!   them, so a note sounding over a cut simply ends at it. Beats before the first downbeat become
//!   pickup bars, padded at their start.
//! - **Half-time rule.** The annotated tempo is `60 / median inter-beat interval`. Below
//!   [`HALF_TIME_BELOW_BPM`] (90 BPM) the song is read as half-time: every annotated beat becomes two
//!   grid beats (`f = 2`; 16ths become 8ths), so an annotated 4-beat bar becomes two 4/4 bars and the
//!   effective tempo doubles. At or above 90 BPM, `f = 1`. The effective tempo picks the tempo bin.
//! - **Quantization** ([`quantize_tick`]). A position in grid ticks (12 per beat) snaps either to the
//!   16th grid (multiples of 3) or to the 16th-triplet grid (multiples of 2): the triplet position is
//!   taken only when its error is less than half the 16th error, so straight material stays
//!   straight. Note ends are quantized the same way; the length (at least 2 ticks) then goes to the
//!   nearest vocabulary duration, and the Note stores that vocabulary duration and its velocity-bin
//!   velocity, so the phrase survives a token round trip exactly.
//! - **Roles.** lead = `MELODY`. From `PIANO`, grouped by quantized onset tick: the lowest note of a
//!   group is **bass** if it is below G3 (55), shortened so it ends no later than the next bass onset;
//!   every other PIANO note is **arp**. `BRIDGE` (a counter-melody) is dropped. Exact duplicates
//!   (same part, tick and pitch) are dropped, keeping the longest.
//! - **Key** from `key_audio.txt`: the key that covers the most time. **Mood** (BrainMusic rule):
//!   fast = annotated tempo (before the half-time rule) ≥ 90 BPM, i.e. not half-time; then
//!   [`Mood::from_mode_and_tempo`].
//! - **Chords** from `chord_midi.txt`, folded onto [`ChordQuality`] by [`parse_chord_label`]; starts
//!   are quantized like onsets, and a chord is emitted only when it changes.
//! - **Trim.** Leading and trailing bars with no note onset are cut; the chord sounding at the new
//!   first bar is restated at its tick 0.

use neural_trio::music::tokens::Header;
use neural_trio::music::vocab::{self, duration_index, tempo_bin, Key, Mood, DURATIONS_TICKS};
use neural_trio::music::{Chord, ChordQuality, Note, Part, Phrase, TICKS_PER_BAR, TICKS_PER_BEAT};
use std::collections::HashMap;
use std::path::Path;

/// Annotated tempos below this are read as half-time.
pub const HALF_TIME_BELOW_BPM: f64 = 90.0;
/// Bass notes are PIANO onset-group lows below this pitch (G3).
pub const BASS_BELOW_PITCH: u8 = 55;
/// A song needs at least this share of its beats (first to last downbeat) in 4-beat bars.
pub const MIN_FOUR_BEAT_SHARE: f64 = 0.75;
/// Shortest note length on the grid, in ticks.
pub const MIN_DURATION_TICKS: u32 = 2;
/// An onset this close (in annotated beats) to either edge of a cut-out stretch is kept and lands
/// on the grid at the cut, instead of being dropped.
const CUT_TOLERANCE_BEATS: f64 = 0.125;

/// A song ready for the model: its conditioning header, its whole phrase, and how it was read.
#[derive(Debug, Clone)]
pub struct Song {
    /// The folder number, 1..=909.
    pub id: u32,
    pub header: Header,
    pub phrase: Phrase,
    pub meta: SongMeta,
}

/// How a song was read; for the manifest, and for eval's reports.
#[derive(Debug, Clone)]
pub struct SongMeta {
    /// 60 / median inter-beat interval of `beat_midi.txt`.
    pub annotated_bpm: f64,
    /// The half-time rule applied (annotated tempo below 90 BPM).
    pub half_time: bool,
    /// Tempo on the grid: annotated tempo, doubled for half-time.
    pub effective_bpm: f64,
    pub key: Key,
    pub mood: Mood,
    /// Empty bars cut from the start.
    pub leading_bars_trimmed: u32,
    /// Annotated beats cut out of irregular (non-4-beat) bars.
    pub beats_cut: u32,
    /// Note onsets that fell into cut-out beats (or before the grid) and were dropped.
    pub notes_dropped: u32,
    /// Onsets (all parts) placed on the 16th-triplet grid only (tick not a multiple of 3).
    pub triplet_onsets: u32,
    /// Mean absolute onset quantization error, in grid ticks.
    pub mean_onset_error_ticks: f64,
    /// Chord labels this parser did not know; folded by their third (or to "no chord").
    pub unknown_chord_labels: Vec<String>,
}

/// A note as the MIDI file has it, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawNote {
    pub start_s: f64,
    pub end_s: f64,
    pub pitch: u8,
    pub velocity: u8,
}

/// A note quantized to grid ticks, before role assignment and duration rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridNote {
    pub tick: u32,
    /// Quantized length in ticks (at least [`MIN_DURATION_TICKS`]), not yet a vocabulary duration.
    pub length: u32,
    pub pitch: u8,
    pub velocity: u8,
}

/// Loads song folder `dir` (`.../POP909/NNN`) into a phrase. Any problem is an `Err` with the reason.
pub fn load_song(dir: &Path) -> Result<Song, String> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let id: u32 = name.parse().map_err(|_| format!("folder name '{name}' is not a song number"))?;
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| format!("cannot read {file}: {e}"));

    let beats = parse_beats(&read("beat_midi.txt")?)?;
    let key = majority_key(&read("key_audio.txt")?)?;
    let chord_segments = parse_chord_file(&read("chord_midi.txt")?)?;
    let midi_name = format!("{name}.mid");
    let bytes = std::fs::read(dir.join(&midi_name)).map_err(|e| format!("cannot read {midi_name}: {e}"))?;
    let tracks = read_midi_tracks(&bytes).map_err(|e| format!("{midi_name}: {e}"))?;

    let melody = tracks.get("MELODY").ok_or("no MELODY track")?;
    let piano = tracks.get("PIANO").ok_or("no PIANO track")?;
    if melody.is_empty() {
        return Err("empty melody".into());
    }

    let annotated_bpm = beats.annotated_bpm();
    let half_time = annotated_bpm < HALF_TIME_BELOW_BPM;
    let factor = if half_time { 2.0 } else { 1.0 };
    let effective_bpm = annotated_bpm * factor;
    beats.check_four_four()?;

    let earliest = melody.iter().chain(piano.iter()).map(|n| n.start_s).fold(f64::INFINITY, f64::min);
    let grid = BeatGrid::new(&beats, factor, beats.beat_at(earliest))?;

    let mut stats = QuantStats::default();
    let lead = grid.quantize_notes(&beats, melody, &mut stats);
    let piano = grid.quantize_notes(&beats, piano, &mut stats);
    if lead.is_empty() {
        return Err("empty melody after quantization".into());
    }
    let (bass, arp) = split_piano(&piano);

    let mut notes: Vec<Note> = Vec::with_capacity(lead.len() + piano.len());
    notes.extend(lead.iter().map(|n| to_note(n, Part::Lead, n.length)));
    notes.extend(arp.iter().map(|n| to_note(n, Part::Arp, n.length)));
    notes.extend(trim_bass(&bass).into_iter().map(|(n, len)| to_note(&n, Part::Bass, len)));
    dedup_notes(&mut notes);

    let mut unknown_chord_labels = Vec::new();
    let mut chord_events = Vec::with_capacity(chord_segments.len());
    for (start_s, label) in &chord_segments {
        let parsed = parse_chord_label(label)?;
        if !parsed.known && !unknown_chord_labels.contains(label) {
            unknown_chord_labels.push(label.clone());
        }
        let tick = quantize_tick(grid.grid_ticks_clamped(beats.beat_at(*start_s)));
        chord_events.push((tick, parsed.chord));
    }

    let (phrase, leading_bars_trimmed) = assemble_phrase(notes, &chord_events);
    let mood = Mood::from_mode_and_tempo(key.minor, !half_time);
    let header = Header { tempo_bin: tempo_bin(effective_bpm as f32), key, mood };
    let onsets = (lead.len() + piano.len()).max(1) as f64;
    Ok(Song {
        id,
        header,
        phrase,
        meta: SongMeta {
            annotated_bpm,
            half_time,
            effective_bpm,
            key,
            mood,
            leading_bars_trimmed,
            beats_cut: grid.beats_cut,
            notes_dropped: stats.dropped,
            triplet_onsets: stats.triplet,
            mean_onset_error_ticks: stats.error_sum / onsets,
            unknown_chord_labels,
        },
    })
}

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

// ---------------------------------------------------------------------------------------------
// Quantization and roles

/// Snaps a position in grid ticks to the 16th grid (multiples of 3) or, when its error is less than
/// half the 16th error, to the 16th-triplet grid (multiples of 2).
pub fn quantize_tick(x: f64) -> i64 {
    let sixteenth = (x / 3.0).round() * 3.0;
    let triplet = (x / 2.0).round() * 2.0;
    if (x - triplet).abs() < 0.5 * (x - sixteenth).abs() {
        triplet as i64
    } else {
        sixteenth as i64
    }
}

/// The vocabulary duration for a quantized length: the nearest one, at least [`MIN_DURATION_TICKS`].
pub fn vocab_duration(length: u32) -> u32 {
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

fn to_note(n: &GridNote, part: Part, length: u32) -> Note {
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
pub fn split_piano(piano: &[GridNote]) -> (Vec<GridNote>, Vec<GridNote>) {
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
pub fn trim_bass(bass: &[GridNote]) -> Vec<(GridNote, u32)> {
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
fn dedup_notes(notes: &mut Vec<Note>) {
    notes.sort_by_key(|n| {
        (n.start_tick, n.part, n.pitch, std::cmp::Reverse(n.duration_ticks), std::cmp::Reverse(n.velocity))
    });
    notes.dedup_by_key(|n| (n.start_tick, n.part, n.pitch));
}

/// (root pitch class, quality), or None for "no chord".
type ChordValue = Option<(u8, ChordQuality)>;

/// Trims empty leading/trailing bars, restates the sounding chord at the new start, keeps chord
/// changes only, and returns the normalized phrase with the number of leading bars cut.
fn assemble_phrase(mut notes: Vec<Note>, chord_events: &[(i64, ChordValue)]) -> (Phrase, u32) {
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

// ---------------------------------------------------------------------------------------------
// Beats, meter and the grid

/// `beat_midi.txt`: annotated beat times and which of them are downbeats.
#[derive(Debug, Clone)]
pub struct Beats {
    pub times: Vec<f64>,
    /// Indices into `times` of the downbeats.
    pub downbeats: Vec<usize>,
}

/// Parses `beat_midi.txt` (seconds, beat flag, downbeat flag per line).
pub fn parse_beats(text: &str) -> Result<Beats, String> {
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
    pub fn annotated_bpm(&self) -> f64 {
        let mut ibis: Vec<f64> = self.times.windows(2).map(|w| w[1] - w[0]).collect();
        ibis.sort_by(|a, b| a.total_cmp(b));
        let n = ibis.len();
        let median = if n % 2 == 1 { ibis[n / 2] } else { 0.5 * (ibis[n / 2 - 1] + ibis[n / 2]) };
        60.0 / median
    }

    /// Ok for a 4/4 song: the most common downbeat-to-downbeat bar is 4 beats and at least
    /// [`MIN_FOUR_BEAT_SHARE`] of the beats lie in 4-beat bars.
    pub fn check_four_four(&self) -> Result<(), String> {
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
    pub fn beat_at(&self, t: f64) -> f64 {
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
pub struct BeatGrid {
    segments: Vec<Segment>,
    factor: f64,
    /// Annotated beats cut out of irregular bars.
    pub beats_cut: u32,
}

#[derive(Debug, Default)]
struct QuantStats {
    dropped: u32,
    triplet: u32,
    error_sum: f64,
}

impl BeatGrid {
    /// `factor` grid beats per annotated beat (2 for half-time). `earliest` is the annotated beat of
    /// the earliest onset: enough pickup bars go before the first downbeat to hold it.
    pub fn new(beats: &Beats, factor: f64, earliest: f64) -> Result<BeatGrid, String> {
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
    pub fn onset_ticks(&self, a: f64) -> Option<f64> {
        let s = self.segment(a);
        let offset = a - s.a0;
        if offset > s.kept + CUT_TOLERANCE_BEATS && offset < s.total - CUT_TOLERANCE_BEATS {
            return None;
        }
        Some(self.grid_ticks_clamped(a))
    }

    /// Grid ticks of annotated beat `a`; inside cut-out beats the grid stands still at the cut.
    pub fn grid_ticks_clamped(&self, a: f64) -> f64 {
        let s = self.segment(a);
        let offset = (a - s.a0).min(s.kept);
        (s.g0 + offset * self.factor) * TICKS_PER_BEAT as f64
    }

    /// Quantizes notes (seconds) onto the grid; onsets in cut-out beats or before the grid are
    /// dropped. Lengths are quantized end minus quantized start, at least [`MIN_DURATION_TICKS`].
    fn quantize_notes(&self, beats: &Beats, notes: &[RawNote], stats: &mut QuantStats) -> Vec<GridNote> {
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

// ---------------------------------------------------------------------------------------------
// Annotations: keys and chords

/// Pitch class of a note name: a letter A–G followed by any number of `#` or `b`.
pub fn parse_pitch_class(name: &str) -> Result<u8, String> {
    let mut chars = name.chars();
    let base: i32 = match chars.next() {
        Some('C') => 0,
        Some('D') => 2,
        Some('E') => 4,
        Some('F') => 5,
        Some('G') => 7,
        Some('A') => 9,
        Some('B') => 11,
        _ => return Err(format!("bad note name '{name}'")),
    };
    let mut pc = base;
    for c in chars {
        match c {
            '#' => pc += 1,
            'b' => pc -= 1,
            _ => return Err(format!("bad note name '{name}'")),
        }
    }
    Ok(pc.rem_euclid(12) as u8)
}

/// A key label like `Gb:maj` or `C#:min`.
pub fn parse_key(label: &str) -> Result<Key, String> {
    let (tonic, mode) = label.split_once(':').ok_or_else(|| format!("bad key '{label}'"))?;
    let minor = match mode {
        "maj" | "major" => false,
        "min" | "minor" => true,
        _ => return Err(format!("unknown key mode in '{label}'")),
    };
    Ok(Key { tonic: parse_pitch_class(tonic)?, minor })
}

/// The key of `key_audio.txt` (start, end, key per line) that covers the most time; ties go to
/// the earlier one.
pub fn majority_key(text: &str) -> Result<Key, String> {
    let mut totals: Vec<(Key, f64)> = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        if cols.len() < 3 {
            return Err(format!("key_audio.txt: cannot read '{}'", line.trim()));
        }
        let start: f64 = cols[0].parse().map_err(|_| format!("key_audio.txt: bad time in '{line}'"))?;
        let end: f64 = cols[1].parse().map_err(|_| format!("key_audio.txt: bad time in '{line}'"))?;
        let key = parse_key(cols[2]).map_err(|e| format!("key_audio.txt: {e}"))?;
        let length = (end - start).max(0.0);
        match totals.iter_mut().find(|(k, _)| *k == key) {
            Some((_, total)) => *total += length,
            None => totals.push((key, length)),
        }
    }
    let mut best: Option<(Key, f64)> = None;
    for &(key, total) in &totals {
        if best.is_none_or(|(_, b)| total > b) {
            best = Some((key, total));
        }
    }
    best.map(|(k, _)| k).ok_or_else(|| "key_audio.txt has no key".into())
}

/// A chord label read onto the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedChord {
    /// (root pitch class, quality), or None for "no chord".
    pub chord: Option<(u8, ChordQuality)>,
    /// False when the quality was not in the table and was folded by its third (or to no chord).
    pub known: bool,
}

/// Folds a Harte-style label (`B:maj`, `E:min7`, `Db:maj/3`, `C:sus4(b7)`, `N`) onto the vocabulary.
/// Inversions (`/3`, `/5`, ...) drop the bass. 6ths fold to their triad, 9ths to their 7th,
/// `hdim7`/`dim7` to dim, `minmaj7` to min, `sus4(b7)` to sus4. An unknown quality folds to the triad
/// its third implies (`min…` minor, `maj…` or a bare number major-ish, a `(3)`/`(b3)` extension),
/// or to "no chord" when it has no third; it is then flagged `known: false`.
pub fn parse_chord_label(label: &str) -> Result<ParsedChord, String> {
    use ChordQuality::*;
    if label == "N" || label == "X" {
        return Ok(ParsedChord { chord: None, known: true });
    }
    let (root, rest) = match label.split_once(':') {
        Some((root, rest)) => (root, rest),
        None => (label, "maj"),
    };
    let root = parse_pitch_class(root).map_err(|e| format!("chord '{label}': {e}"))?;
    let quality = rest.split('/').next().unwrap_or_default();
    let known = match quality {
        "" | "maj" | "maj6" | "6" => Some(Major),
        "min" | "min6" | "minmaj7" => Some(Minor),
        "dim" | "dim7" | "hdim7" => Some(Diminished),
        "aug" => Some(Augmented),
        "sus2" => Some(Sus2),
        "sus4" | "sus4(b7)" | "7sus4" => Some(Sus4),
        "maj7" | "maj9" => Some(Major7),
        "min7" | "min9" | "min11" => Some(Minor7),
        "7" | "9" | "11" | "13" => Some(Dominant7),
        _ => None,
    };
    if let Some(q) = known {
        return Ok(ParsedChord { chord: Some((root, q)), known: true });
    }
    let (shorthand, extensions) = match quality.split_once('(') {
        Some((s, e)) => (s, e.trim_end_matches(')')),
        None => (quality, ""),
    };
    let ext: Vec<&str> = extensions.split(',').map(str::trim).collect();
    let folded = if shorthand.starts_with("hdim") || shorthand.starts_with("dim") {
        Some(Diminished)
    } else if shorthand.starts_with("min") || ext.contains(&"b3") {
        Some(Minor)
    } else if shorthand.starts_with("aug") {
        Some(Augmented)
    } else if shorthand.starts_with("maj") || ext.contains(&"3") {
        Some(Major)
    } else if shorthand.starts_with("sus4") {
        Some(Sus4)
    } else if shorthand.starts_with("sus2") {
        Some(Sus2)
    } else if shorthand.chars().next().is_some_and(|c| c.is_ascii_digit()) && shorthand != "5" && shorthand != "1" {
        Some(Dominant7)
    } else {
        None
    };
    Ok(ParsedChord { chord: folded.map(|q| (root, q)), known: false })
}

/// `chord_midi.txt`: (start seconds, label) per segment, in file order.
pub fn parse_chord_file(text: &str) -> Result<Vec<(f64, String)>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        if cols.len() < 3 {
            return Err(format!("chord_midi.txt: cannot read '{}'", line.trim()));
        }
        let start: f64 = cols[0].parse().map_err(|_| format!("chord_midi.txt: bad time in '{line}'"))?;
        out.push((start, cols[2].to_string()));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// MIDI

/// Notes of every named track (name upper-cased and trimmed), in seconds through the tempo map.
pub fn read_midi_tracks(bytes: &[u8]) -> Result<HashMap<String, Vec<RawNote>>, String> {
    use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};
    let smf = Smf::parse(bytes).map_err(|e| format!("unparsable MIDI: {e}"))?;

    // Tempo map: (tick, seconds at tick, seconds per tick from there).
    let seconds_per_tick_at = |micros_per_beat: f64| -> Result<f64, String> {
        match smf.header.timing {
            Timing::Metrical(ppq) if ppq.as_int() > 0 => Ok(micros_per_beat * 1e-6 / ppq.as_int() as f64),
            Timing::Metrical(_) => Err("PPQ is 0".into()),
            Timing::Timecode(fps, sub) => Ok(1.0 / (fps.as_f32() as f64 * sub.max(1) as f64)),
        }
    };
    let mut tempos: Vec<(u64, u32)> = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for event in track {
            tick += event.delta.as_int() as u64;
            if let TrackEventKind::Meta(MetaMessage::Tempo(t)) = event.kind {
                tempos.push((tick, t.as_int()));
            }
        }
    }
    tempos.sort_by_key(|&(t, _)| t);
    let mut map: Vec<(u64, f64, f64)> = vec![(0, 0.0, seconds_per_tick_at(500_000.0)?)];
    for (tick, micros) in tempos {
        if micros == 0 {
            continue;
        }
        let &(t0, s0, spt) = map.last().unwrap();
        let seconds = s0 + (tick - t0) as f64 * spt;
        let spt = seconds_per_tick_at(micros as f64)?;
        if tick == t0 {
            *map.last_mut().unwrap() = (tick, seconds, spt);
        } else {
            map.push((tick, seconds, spt));
        }
    }
    let to_seconds = |tick: u64| {
        let i = map.partition_point(|&(t, _, _)| t <= tick).saturating_sub(1);
        let (t0, s0, spt) = map[i];
        s0 + (tick - t0) as f64 * spt
    };

    let mut out: HashMap<String, Vec<RawNote>> = HashMap::new();
    for track in &smf.tracks {
        let mut name: Option<String> = None;
        let mut tick = 0u64;
        // Sounding notes per (channel, pitch): (onset tick, velocity), first in first out.
        let mut open: Vec<Vec<(u64, u8)>> = vec![Vec::new(); 16 * 128];
        let mut notes: Vec<(u64, u64, u8, u8)> = Vec::new();
        for event in track {
            tick += event.delta.as_int() as u64;
            match event.kind {
                TrackEventKind::Meta(MetaMessage::TrackName(raw)) if name.is_none() => {
                    name = Some(String::from_utf8_lossy(raw).trim().to_uppercase());
                }
                TrackEventKind::Midi { channel, message } => {
                    let (key, on, vel) = match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => (key.as_int(), true, vel.as_int()),
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => (key.as_int(), false, 0),
                        _ => continue,
                    };
                    let slot = &mut open[channel.as_int() as usize * 128 + key as usize];
                    if on {
                        slot.push((tick, vel));
                    } else if !slot.is_empty() {
                        let (start, velocity) = slot.remove(0);
                        notes.push((start, tick, key, velocity));
                    }
                }
                _ => {}
            }
        }
        // Notes never released end with the track.
        for (i, slot) in open.iter().enumerate() {
            for &(start, velocity) in slot {
                notes.push((start, tick, (i % 128) as u8, velocity));
            }
        }
        let Some(name) = name else { continue };
        let entry = out.entry(name).or_default();
        for (start, end, pitch, velocity) in notes {
            if end > start {
                entry.push(RawNote { start_s: to_seconds(start), end_s: to_seconds(end), pitch, velocity });
            }
        }
        entry.sort_by(|a, b| a.start_s.total_cmp(&b.start_s).then(a.pitch.cmp(&b.pitch)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use neural_trio::music::tokens::{decode_phrase, encode_phrase};
    use ChordQuality::*;

    fn chord(label: &str) -> Option<(u8, ChordQuality)> {
        parse_chord_label(label).unwrap().chord
    }

    #[test]
    fn chord_labels_fold_onto_the_vocabulary() {
        assert_eq!(chord("B:maj"), Some((11, Major)));
        assert_eq!(chord("E:min7"), Some((4, Minor7)));
        assert_eq!(chord("Db:maj/3"), Some((1, Major)));
        assert_eq!(chord("C#:min/b3"), Some((1, Minor)));
        assert_eq!(chord("F#:maj7/7"), Some((6, Major7)));
        assert_eq!(chord("Ab:7/b7"), Some((8, Dominant7)));
        assert_eq!(chord("G:9"), Some((7, Dominant7)));
        assert_eq!(chord("A:min9"), Some((9, Minor7)));
        assert_eq!(chord("Bb:maj9"), Some((10, Major7)));
        assert_eq!(chord("Bb:maj6"), Some((10, Major)));
        assert_eq!(chord("E:min6"), Some((4, Minor)));
        assert_eq!(chord("B:hdim7"), Some((11, Diminished)));
        assert_eq!(chord("B:dim7"), Some((11, Diminished)));
        assert_eq!(chord("C:aug"), Some((0, Augmented)));
        assert_eq!(chord("D:sus2"), Some((2, Sus2)));
        assert_eq!(chord("D:sus4(b7)"), Some((2, Sus4)));
        assert_eq!(chord("A:minmaj7"), Some((9, Minor)));
        assert_eq!(chord("N"), None);
        assert!(parse_chord_label("N").unwrap().known);
        assert!(parse_chord_label("C:maj/5").unwrap().known);
        // Unknown qualities fold by their third and are flagged.
        let odd = parse_chord_label("C:min11(b13)").unwrap();
        assert_eq!((odd.chord, odd.known), (Some((0, Minor)), false));
        let odd = parse_chord_label("F:(1,3,5)").unwrap();
        assert_eq!((odd.chord, odd.known), (Some((5, Major)), false));
        let power = parse_chord_label("G:5").unwrap();
        assert_eq!((power.chord, power.known), (None, false));
        assert!(parse_chord_label("H:maj").is_err());
    }

    #[test]
    fn keys_parse_and_the_longest_wins() {
        assert_eq!(parse_key("Gb:maj").unwrap(), Key { tonic: 6, minor: false });
        assert_eq!(parse_key("C#:min").unwrap(), Key { tonic: 1, minor: true });
        assert_eq!(parse_key("B#:maj").unwrap(), Key { tonic: 0, minor: false });
        assert_eq!(parse_key("Cb:min").unwrap(), Key { tonic: 11, minor: true });
        assert!(parse_key("C:dorian").is_err());
        let text = "0.0\t10.0\tA:min\n10.0\t45.0\tC:maj\n45.0\t60.0\tA:min\n70.0\t85.0\tE:maj\n";
        assert_eq!(majority_key(text).unwrap(), Key { tonic: 0, minor: false });
        assert!(majority_key("").is_err());
    }

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

    #[test]
    fn midi_seconds_follow_the_tempo_map() {
        use midly::num::{u15, u24, u28, u4, u7};
        use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
        let ev = |delta: u32, kind| TrackEvent { delta: u28::new(delta), kind };
        let note = |key: u8, vel: u8| TrackEventKind::Midi {
            channel: u4::new(0),
            message: MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) },
        };
        let tempo_track = vec![
            ev(0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000)))),
            ev(960, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(1_000_000)))),
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let melody = vec![
            ev(0, TrackEventKind::Meta(MetaMessage::TrackName(b"MELODY"))),
            ev(480, note(72, 90)), // beat 1: 0.5 s
            ev(960, note(72, 0)),  // beat 3: 1.0 + 1.0 s
            ev(0, note(74, 100)),
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)), // never released
        ];
        let smf = Smf {
            header: Header::new(Format::Parallel, Timing::Metrical(u15::new(480))),
            tracks: vec![tempo_track, melody],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        let tracks = read_midi_tracks(&bytes).unwrap();
        let m = &tracks["MELODY"];
        assert_eq!(m.len(), 1, "a note with no length is dropped");
        assert!((m[0].start_s - 0.5).abs() < 1e-9 && (m[0].end_s - 2.0).abs() < 1e-9);
        assert_eq!((m[0].pitch, m[0].velocity), (72, 90));
        assert!(read_midi_tracks(b"not a midi file").is_err());
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

    /// The POP909 folder, when this workspace has it.
    fn pop909_dir() -> Option<std::path::PathBuf> {
        let dir = crate::dataset::default_source();
        dir.join("001").is_dir().then_some(dir)
    }

    #[test]
    fn a_real_song_round_trips_and_stays_in_its_bars() {
        let Some(root) = pop909_dir() else {
            eprintln!("POP909 not found; skipping");
            return;
        };
        for id in ["001", "010", "386", "850"] {
            let song = load_song(&root.join(id)).unwrap();
            let phrase = &song.phrase;
            assert!(phrase.bars > 16, "song {id}: {} bars", phrase.bars);
            assert!(phrase.notes_of(Part::Lead).count() > 50);
            assert!(phrase.notes_of(Part::Bass).all(|n| n.pitch < BASS_BELOW_PITCH));
            for n in &phrase.notes {
                assert!(n.start_tick < phrase.bars * TICKS_PER_BAR, "song {id}: note past the last bar");
                assert!(DURATIONS_TICKS.contains(&n.duration_ticks));
                assert!(n.start_tick % 2 == 0 || n.start_tick % 3 == 0);
            }
            assert!(phrase.notes.iter().any(|n| n.start_tick < TICKS_PER_BAR), "song {id}: leading empty bar");
            assert!(phrase.chords.iter().all(|c| c.start_tick < phrase.bars * TICKS_PER_BAR));
            // Bass notes end by the next bass onset (or are the shortest length).
            let bass: Vec<&Note> = phrase.notes_of(Part::Bass).collect();
            for w in bass.windows(2) {
                let gap = w[1].start_tick - w[0].start_tick;
                assert!(w[0].end_tick() <= w[1].start_tick || w[0].duration_ticks == MIN_DURATION_TICKS.max(gap));
            }
            let tokens = encode_phrase(&song.header, phrase, true);
            let (header, decoded) = decode_phrase(&tokens).unwrap();
            assert_eq!(header, song.header);
            assert_eq!(&decoded, phrase, "song {id}: round trip");
            let (th, tp) = transpose(&song.header, phrase, -6);
            assert_eq!(decode_phrase(&encode_phrase(&th, &tp, true)).unwrap(), (th, tp));
        }
        // Song 001: 90 BPM annotated (just fast), Gb major → happy, not half-time.
        let song = load_song(&root.join("001")).unwrap();
        assert!(!song.meta.half_time && (song.meta.annotated_bpm - 90.0).abs() < 0.01);
        assert_eq!(song.header.key, Key { tonic: 6, minor: false });
        assert_eq!(song.header.mood, Mood::Happy);
        // Song 012: 56 BPM, so half-time (112 effective); mostly Eb major → calm.
        let song = load_song(&root.join("012")).unwrap();
        assert!(song.meta.half_time && (song.meta.effective_bpm - 112.0).abs() < 0.01);
        assert_eq!(song.header.tempo_bin, tempo_bin(112.0));
        assert_eq!(song.header.key, Key { tonic: 3, minor: false });
        assert_eq!(song.header.mood, Mood::Calm);
        // A 6-beats-per-bar song is refused with its reason.
        let six = load_song(&root.join("034")).unwrap_err();
        assert!(six.contains("6 beats per bar"), "{six}");
        assert!(load_song(&root.join("no-such-song")).is_err());
    }
}

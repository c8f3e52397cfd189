//! `cargo xtask dataset [--source DIR] [--out DIR] [--limit N]`: POP909 → token arrays.
//!
//! Every song folder `NNN` under the source (default `../shared/datasets/pop909/POP909` next to the
//! workspace; relative paths are taken from the workspace root) goes through
//! [`crate::pop909::load_song`], whose module doc states every reading rule (beat grid, half-time,
//! quantization, roles, key, mood, chords, trimming). Here:
//!
//! - **Split by song**: 819–909 are held out (`valid`), never trained on; 001–818 are `train`.
//! - **Pop**: each train song is written 12 times, transposed by -6..=+5 semitones (pitches, key
//!   tonic and chord roots; notes leaving 0..=127 dropped), header style Pop. Valid is untransposed.
//! - **Versions**: each aligned alternative arrangement of a train song
//!   ([`crate::pop909::load_versions`]) at 4 of those transpositions, style Pop.
//! - **Dance**: each song rearranged by rule (`pop909/dance.rs`) under style Dance, a dance
//!   tempo and its mode's fast mood: train songs at 6 transpositions, each with training rule
//!   variants; held-out songs untransposed under the held-out variants (rules are held out too).
//! - **Check**: every token stream written is decoded again and must give back the same header and
//!   phrase; a mismatch is counted (and is a bug).
//! - **Output** in `--out` (default `target/dataset/`): `train.bin` and `valid.bin` (little-endian
//!   u16 token ids, songs concatenated, each = 5 header tokens + bars + EOS) and `manifest.json`.
//! - Bad input never stops the run: a song that cannot be read is reported with its reason and
//!   skipped.

use crate::pool;
use crate::pop909::{self, dance_phrase, load_song, load_versions, rule_descriptions, song_dirs, DanceRules, Song};
use anyhow::{bail, Context, Result};
use neural_trio::music::controls::Style;
use neural_trio::music::tokens::{decode_phrase, encode_phrase, Header};
use neural_trio::music::vocab::{self, Mood};
use neural_trio::music::{Part, Phrase};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Songs with a number at or above this are held out.
pub const FIRST_VALID_SONG: u32 = 819;
/// Transpositions applied to train songs.
pub const TRANSPOSITIONS: std::ops::RangeInclusive<i32> = -6..=5;

/// The default POP909 folder: `shared/datasets/pop909/POP909` beside the workspace.
pub fn default_source() -> PathBuf {
    crate::workspace_root()
        .parent()
        .map(|p| p.join("shared/datasets/pop909/POP909"))
        .unwrap_or_else(|| PathBuf::from("../shared/datasets/pop909/POP909"))
}

/// Train or valid, by song number.
pub fn is_valid_song(id: u32) -> bool {
    id >= FIRST_VALID_SONG
}

struct Args {
    source: PathBuf,
    out: PathBuf,
    limit: Option<usize>,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut parsed = Args { source: default_source(), out: PathBuf::from("target/dataset"), limit: None };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().cloned().with_context(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--source" => parsed.source = PathBuf::from(value("--source")?),
            "--out" => parsed.out = PathBuf::from(value("--out")?),
            "--limit" => parsed.limit = Some(value("--limit")?.parse().context("--limit takes a number")?),
            "-h" | "--help" => {
                println!("usage: cargo xtask dataset [--source DIR] [--out DIR] [--limit N]");
                std::process::exit(0);
            }
            other => {
                bail!("unknown argument '{other}' (usage: cargo xtask dataset [--source DIR] [--out DIR] [--limit N])")
            }
        }
    }
    Ok(parsed)
}

/// What one song folder gave.
struct SongResult {
    id: u32,
    valid: bool,
    outcome: std::result::Result<Encoded, String>,
}

struct Encoded {
    song: Song,
    /// One token stream per sequence written: the song, its aligned versions and its Dance
    /// arrangements, each at its transpositions.
    streams: Vec<Vec<u16>>,
    /// Sequences per source: the song itself, other arrangers' versions, Dance by rule.
    sequences: Sequences,
    /// Versions read and skipped, with the reason.
    versions_used: u32,
    versions_skipped: Vec<String>,
    /// Notes per part over all streams written.
    notes: [u64; 3],
    /// Notes lost to transposition out of 0..=127.
    transposition_drops: u64,
    round_trip_failures: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Sequences {
    pop: u64,
    versions: u64,
    dance: u64,
}

/// Transpositions an aligned version is written at (train only): 4 of the 12, varying by song and
/// version, so versions add other arrangers' textures without outweighing the songs themselves.
const VERSION_TRANSPOSITIONS: usize = 4;
/// Transpositions a train song's Dance arrangement is written at, each with its own rule variants.
pub(crate) const DANCE_TRANSPOSITIONS: usize = 6;
/// Dance tempos (BPM) the Dance arrangements are tagged with, picked by song: the tempo bins of
/// house, trance and EDM pop.
const DANCE_TEMPOS_BPM: [f32; 5] = [120.0, 124.0, 126.0, 128.0, 138.0];

/// `count` distinct transpositions of -6..=5 for (song, stream), deterministic.
fn picked_shifts(song_id: u32, stream: u32, count: usize) -> Vec<i32> {
    let all: Vec<i32> = TRANSPOSITIONS.collect();
    let start = (song_id.wrapping_mul(7) + stream.wrapping_mul(5)) as usize;
    (0..count).map(|k| all[(start + k * 5) % all.len()]).collect()
}

/// The Dance header of a song: its key, a dance tempo, the fast mood of its mode, style Dance.
fn dance_header(song: &Song) -> Header {
    let bpm = DANCE_TEMPOS_BPM[song.id as usize % DANCE_TEMPOS_BPM.len()];
    Header {
        tempo_bin: vocab::tempo_bin(bpm),
        key: song.header.key,
        mood: Mood::from_mode_and_tempo(song.header.key.minor, true),
        style: Style::Dance,
    }
}

fn encode_song(song: Song, versions: Vec<(String, Result<Song, String>)>, valid: bool) -> Encoded {
    let mut enc = Encoded {
        song: song.clone(),
        streams: Vec::new(),
        sequences: Sequences::default(),
        versions_used: 0,
        versions_skipped: Vec::new(),
        notes: [0; 3],
        transposition_drops: 0,
        round_trip_failures: Vec::new(),
    };
    let pop_shifts: Vec<i32> = if valid { vec![0] } else { TRANSPOSITIONS.collect() };
    for &shift in &pop_shifts {
        enc.write(&song.header, &song.phrase, shift, &format!("song {:03}", song.id));
        enc.sequences.pop += 1;
    }
    // Held-out songs keep only their own file, so held-out loss compares across data changes.
    if !valid {
        for (index, (name, version)) in versions.into_iter().enumerate() {
            match version {
                Ok(v) => {
                    enc.versions_used += 1;
                    for shift in picked_shifts(song.id, 1 + index as u32, VERSION_TRANSPOSITIONS) {
                        enc.write(&v.header, &v.phrase, shift, &format!("song {:03} {name}", song.id));
                        enc.sequences.versions += 1;
                    }
                }
                Err(reason) => enc.versions_skipped.push(format!("{name}: {reason}")),
            }
        }
    }
    // Dance by rule: train songs under training rules, held-out songs under the held-out rules.
    let header = dance_header(&song);
    if valid {
        let phrase = dance_phrase(&song, DanceRules::held_out());
        enc.write(&header, &phrase, 0, &format!("song {:03} dance", song.id));
        enc.sequences.dance += 1;
    } else {
        for (index, shift) in picked_shifts(song.id, 0, DANCE_TRANSPOSITIONS).into_iter().enumerate() {
            let rules = DanceRules::pick_for_training(song.id, index as u32);
            let phrase = dance_phrase(&song, rules);
            enc.write(&header, &phrase, shift, &format!("song {:03} dance {}", song.id, rules.name()));
            enc.sequences.dance += 1;
        }
    }
    enc
}

impl Encoded {
    /// Writes `phrase` under `header`, transposed by `shift`, checking that it decodes back.
    fn write(&mut self, header: &Header, phrase: &Phrase, shift: i32, label: &str) {
        let (header, transposed) =
            if shift == 0 { (*header, phrase.clone()) } else { pop909::transpose(header, phrase, shift) };
        self.transposition_drops += (phrase.notes.len() - transposed.notes.len()) as u64;
        let tokens = encode_phrase(&header, &transposed, true);
        match decode_phrase(&tokens) {
            Ok((h, p)) if h == header && p == transposed => {}
            Ok((h, p)) => self.round_trip_failures.push(format!(
                "{label} shift {shift:+}: decoded {} notes/{} chords/{} bars, expected {}/{}/{}{}",
                p.notes.len(),
                p.chords.len(),
                p.bars,
                transposed.notes.len(),
                transposed.chords.len(),
                transposed.bars,
                if h == header { "" } else { "; header differs" },
            )),
            Err(e) => self.round_trip_failures.push(format!("{label} shift {shift:+}: {e}")),
        }
        for n in &transposed.notes {
            self.notes[n.part.index()] += 1;
        }
        self.streams.push(tokens.into_iter().map(|t| u16::try_from(t).expect("vocabulary fits u16")).collect());
    }
}

#[derive(Default)]
struct SplitStats {
    used: Vec<u32>,
    skipped: Vec<(u32, String)>,
    tokens: Vec<u16>,
    /// Sequences written (songs × transpositions).
    sequences: u64,
    by_source: Sequences,
    versions_used: u64,
    versions_skipped: Vec<String>,
    /// Bars of the untransposed songs.
    bars: u64,
    /// Notes per part over everything written.
    notes: [u64; 3],
    moods: BTreeMap<&'static str, u64>,
    keys: BTreeMap<String, u64>,
    half_time: u64,
    tempo_bins: BTreeMap<String, u64>,
    transposition_drops: u64,
    beats_cut: u64,
    notes_dropped: u64,
    triplet_onsets: u64,
    onsets: u64,
    onset_error_sum: f64,
    leading_bars_trimmed: u64,
    annotated_bpm: Vec<f64>,
    effective_bpm: Vec<f64>,
}

impl SplitStats {
    fn json(&self, name: &str) -> serde_json::Value {
        let skipped: Vec<_> =
            self.skipped.iter().map(|(id, reason)| json!({"song": format!("{id:03}"), "reason": reason})).collect();
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        for (_, r) in &self.skipped {
            *reasons.entry(reason_kind(r)).or_default() += 1;
        }
        json!({
            "file": format!("{name}.bin"),
            "songs_used": self.used.len(),
            "songs_skipped": self.skipped.len(),
            "skip_reasons": reasons,
            "skipped": skipped,
            "used": self.used.iter().map(|id| format!("{id:03}")).collect::<Vec<_>>(),
            "sequences": self.sequences,
            "sequences_by_source": {
                "pop909_songs": self.by_source.pop,
                "pop909_versions": self.by_source.versions,
                "dance_by_rule": self.by_source.dance,
            },
            "versions_used": self.versions_used,
            "versions_skipped": self.versions_skipped.len(),
            "tokens": self.tokens.len(),
            "bars_untransposed": self.bars,
            "notes": {
                "lead": self.notes[Part::Lead.index()],
                "arp": self.notes[Part::Arp.index()],
                "bass": self.notes[Part::Bass.index()],
            },
            "moods": self.moods,
            "keys": self.keys,
            "tempo_bins": self.tempo_bins,
            "half_time_songs": self.half_time,
            "notes_dropped_by_transposition": self.transposition_drops,
            "beats_cut_from_irregular_bars": self.beats_cut,
            "onsets_dropped_in_cut_beats": self.notes_dropped,
            "triplet_onset_share": self.triplet_onsets as f64 / self.onsets.max(1) as f64,
            "mean_onset_error_ticks": self.onset_error_sum / self.onsets.max(1) as f64,
            "leading_empty_bars_trimmed": self.leading_bars_trimmed,
            "median_annotated_bpm": median(&self.annotated_bpm),
            "median_effective_bpm": median(&self.effective_bpm),
        })
    }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).map(|m| (m * 10.0).round() / 10.0)
}

/// A reason without its numbers, for counting ("6 beats per bar (downbeats)" stays as is).
fn reason_kind(reason: &str) -> String {
    if reason.starts_with("only ") && reason.ends_with("in 4-beat bars") {
        "too few 4-beat bars".into()
    } else {
        reason.to_string()
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let args = parse_args(args)?;
    let mut dirs = song_dirs(&args.source)?;
    if dirs.is_empty() {
        bail!("no song folders (NNN/) in {}", args.source.display());
    }
    if let Some(limit) = args.limit {
        dirs.truncate(limit);
    }
    println!("reading {} songs from {}", dirs.len(), args.source.display());

    // Load and encode across the cores; results land in song order.
    let done = AtomicUsize::new(0);
    let results = pool::map(&dirs, pool::default_threads(), |(id, dir)| {
        let valid = is_valid_song(*id);
        // A panic on one odd file is a bug, but must not stop the run either.
        let outcome = std::panic::catch_unwind(|| load_song(dir))
            .unwrap_or_else(|_| Err("panicked while loading (a bug: please report)".into()))
            .map(|song| encode_song(song, if valid { Vec::new() } else { load_versions(dir) }, valid));
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(50) || n == dirs.len() {
            eprint!("\r  {n}/{} songs", dirs.len());
        }
        SongResult { id: *id, valid, outcome }
    });
    eprintln!();

    let mut train = SplitStats::default();
    let mut valid = SplitStats::default();
    let mut round_trip_failures: Vec<String> = Vec::new();
    let mut unknown_labels: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for result in results {
        let split = if result.valid { &mut valid } else { &mut train };
        match result.outcome {
            Err(reason) => split.skipped.push((result.id, reason)),
            Ok(enc) => {
                let meta = &enc.song.meta;
                split.used.push(result.id);
                split.sequences += enc.streams.len() as u64;
                split.by_source.pop += enc.sequences.pop;
                split.by_source.versions += enc.sequences.versions;
                split.by_source.dance += enc.sequences.dance;
                split.versions_used += enc.versions_used as u64;
                split.versions_skipped.extend(enc.versions_skipped.iter().cloned());
                for s in &enc.streams {
                    split.tokens.extend_from_slice(s);
                }
                split.bars += enc.song.phrase.bars as u64;
                for p in 0..3 {
                    split.notes[p] += enc.notes[p];
                }
                *split.moods.entry(meta.mood.name()).or_default() += 1;
                *split.keys.entry(meta.key.name()).or_default() += 1;
                let bin = vocab::Token::Tempo(enc.song.header.tempo_bin).name();
                *split.tempo_bins.entry(bin).or_default() += 1;
                split.half_time += meta.half_time as u64;
                split.annotated_bpm.push(meta.annotated_bpm);
                split.effective_bpm.push(meta.effective_bpm);
                split.transposition_drops += enc.transposition_drops;
                split.beats_cut += meta.beats_cut as u64;
                split.notes_dropped += meta.notes_dropped as u64;
                split.triplet_onsets += meta.triplet_onsets as u64;
                let onsets = enc.song.phrase.notes.len() as u64;
                split.onsets += onsets;
                split.onset_error_sum += meta.mean_onset_error_ticks * onsets as f64;
                split.leading_bars_trimmed += meta.leading_bars_trimmed as u64;
                for label in &meta.unknown_chord_labels {
                    unknown_labels.entry(label.clone()).or_default().push(result.id);
                }
                round_trip_failures.extend(enc.round_trip_failures);
            }
        }
    }

    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    for (name, split) in [("train", &train), ("valid", &valid)] {
        write_tokens(&args.out.join(format!("{name}.bin")), &split.tokens)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let manifest = json!({
        "vocab_hash": vocab::vocab_hash(),
        "vocab_size": vocab::VOCAB_SIZE,
        "source": std::fs::canonicalize(&args.source).unwrap_or(args.source.clone()).display().to_string(),
        "dataset": "POP909 (MIT) with its aligned alternative arrangements (versions/), MELODY → lead, PIANO → arp + bass, \
             BRIDGE dropped; style Pop; and each song rearranged as Dance by rule (pop909::dance), style Dance",
        "format": "little-endian u16 token ids; songs concatenated; each = BOS TEMPO KEY MOOD STYLE, then BAR (+ 5 control tokens)…, then EOS",
        "split_rule": format!("by song number: {FIRST_VALID_SONG:03}–909 valid (held out, never trained on), the rest train"),
        "half_time_rule": format!(
            "annotated tempo = 60 / median inter-beat interval of beat_midi.txt; below {} BPM the song is half-time: \
             each annotated beat = 2 grid beats, an annotated 4-beat bar = two 4/4 bars, effective tempo doubled; \
             the effective tempo gives the tempo bin; mood fast = not half-time",
            pop909::HALF_TIME_BELOW_BPM
        ),
        "quantization_rule": "onsets and ends snap to multiples of 3 ticks (16ths, 12 ticks/beat) or to multiples of 2 \
             (16th-triplets) when the triplet error is less than half the 16th error; lengths to the nearest \
             vocabulary duration, at least 2 ticks",
        "meter_rule": format!(
            "4/4 only: songs whose common downbeat bar is not 4 beats or with < {:.0}% of beats in 4-beat bars are skipped; \
             irregular bars keep their whole 4-beat grid bars and the left-over beats are cut",
            pop909::MIN_FOUR_BEAT_SHARE * 100.0
        ),
        "transpositions": {
            "train": TRANSPOSITIONS.collect::<Vec<_>>(),
            "train_versions": format!("{VERSION_TRANSPOSITIONS} of them per version, picked by song and version"),
            "train_dance": format!("{DANCE_TRANSPOSITIONS} of them per song, each with its own rule variants"),
            "valid": [0],
        },
        "versions_rule": "POP909/NNN/versions/*.mid of train songs whose melody is aligned with the song's \
             (see pop909::load_versions); read with the song's annotations by the same rules; held-out songs' versions are not used",
        "dance_rule": format!(
            "every song also as a Dance arrangement made by rule from its melody, chords and key (pop909::dance), \
             header style dance, fast mood of its mode, tempo bin of one of {DANCE_TEMPOS_BPM:?} BPM by song; \
             train songs under training variants (pick_for_training), held-out songs under the held-out variants {}",
            DanceRules::held_out().name()
        ),
        "dance_rules": rule_descriptions().into_iter().map(|(name, text)| json!({"rule": name, "says": text})).collect::<Vec<_>>(),
        "splits": {
            "train": train.json("train"),
            "valid": valid.json("valid"),
        },
        "unknown_chord_labels": unknown_labels,
        "round_trip_failures": round_trip_failures.len(),
        "elapsed_seconds": (elapsed * 100.0).round() / 100.0,
    });
    let manifest_path = args.out.join("manifest.json");
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest)? + "\n")
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;

    print_summary(&train, &valid, &unknown_labels, &round_trip_failures, elapsed, &args.out);
    if !round_trip_failures.is_empty() {
        bail!("{} token streams did not decode to their phrase (a bug)", round_trip_failures.len());
    }
    Ok(())
}

fn write_tokens(path: &Path, tokens: &[u16]) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for t in tokens {
        w.write_all(&t.to_le_bytes())?;
    }
    w.flush()?;
    Ok(())
}

fn print_summary(
    train: &SplitStats,
    valid: &SplitStats,
    unknown_labels: &BTreeMap<String, Vec<u32>>,
    round_trip_failures: &[String],
    elapsed: f64,
    out: &Path,
) {
    for (name, s) in [("train", train), ("valid", valid)] {
        println!(
            "{name}: {} songs used, {} skipped; {} sequences, {} tokens, {} bars (untransposed); notes lead {} arp {} bass {}",
            s.used.len(),
            s.skipped.len(),
            s.sequences,
            s.tokens.len(),
            s.bars,
            s.notes[0],
            s.notes[1],
            s.notes[2]
        );
        let moods: Vec<String> =
            Mood::ALL.iter().map(|m| format!("{} {}", m.name(), s.moods.get(m.name()).unwrap_or(&0))).collect();
        println!("  moods: {}; half-time songs: {}", moods.join(", "), s.half_time);
        let mut keys: Vec<(&String, &u64)> = s.keys.iter().collect();
        keys.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let keys: Vec<String> = keys.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("  keys: {}", keys.join(", "));
        let mut reasons: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (id, r) in &s.skipped {
            reasons.entry(reason_kind(r)).or_default().push(*id);
        }
        for (reason, ids) in reasons {
            let list: Vec<String> = ids.iter().map(|id| format!("{id:03}")).collect();
            println!("  skipped ({reason}): {} — {}", ids.len(), list.join(" "));
        }
    }
    if !unknown_labels.is_empty() {
        let labels: Vec<String> = unknown_labels.iter().map(|(l, ids)| format!("{l} ({} songs)", ids.len())).collect();
        println!("unknown chord labels (folded by their third): {}", labels.join(", "));
    }
    if round_trip_failures.is_empty() {
        println!("round trip: every token stream decodes to its phrase");
    } else {
        println!("round trip FAILURES: {}", round_trip_failures.len());
        for f in round_trip_failures.iter().take(10) {
            println!("  {f}");
        }
    }
    println!("wrote {}/{{train.bin,valid.bin,manifest.json}} in {elapsed:.1} s", out.display());
}

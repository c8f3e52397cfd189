//! `cargo xtask eval [--quick] [options]`: how the model's phrases compare with real music.
//!
//! Rust does what must match the plugin exactly, and what is heavy:
//!
//! 1. **Generated phrases** through the plugin's own engine and sampler ([`generate`]): for every
//!    setting (style Pop: a temperature sweep with key lock off and mood Auto; key lock on; each
//!    mood; held-out chords forced. Style Dance at T = 1: every control on Auto, and the adherence
//!    settings, each forcing one bar control), phrases of `--bars` bars with top-p 1.0, the default
//!    registers and all parts on. Phrase `i` of every setting uses seed `--seed + i` and the tempo
//!    bin (and, under key lock, the key) of a held-out song drawn for `i` (Dance: the bin of 128
//!    BPM), so settings differ only in what they set. Each phrase carries its style, the controls
//!    asked, the control tokens written per bar and its chords (forced, or the model's own).
//! 2. **Real phrases**: the held-out POP909 songs (819–909) read by `pop909::load_song`, cut into
//!    non-overlapping windows of `--bars` bars starting on bar boundaries, and run through the
//!    tokenizer (`encode_phrase` → `decode_phrase`), so they are exactly what the model could say.
//! 3. **Baselines** ([`baseline`]): the n-gram (fitted on `target/dataset/train.bin`) and the LSTM
//!    (`models/checkpoints/lstm/best.pt`) at T = 1, through the same sampler and masks, their logits
//!    served by `models/eval.py serve`; a baseline that cannot be had is reported as not measured.
//! 4. **Copy detection** ([`copies`]): each phrase's longest transposition-invariant run of notes
//!    shared with any training song (001–818) or with the Dance arrangements of them the data set
//!    trained on (the rule variants `dataset` picked for each song).
//!
//! All of it goes to `<out>/phrases.json`; then `models/eval.py` (in models/.venv) computes the
//! metrics and writes `<out>/report.md`, its plots and `<out>/results-section.md`.

mod baseline;
pub(crate) mod copies;
pub(crate) mod generate;

use crate::dataset::{default_source, is_valid_song};
use crate::pool;
use crate::pop909::{dance_phrase, load_song, song_dirs, DanceRules, Song};
use anyhow::{bail, Context, Result};
use generate::{Job, Setting, DEFAULT_TOP_P};
use neural_trio::generator::sampler::Rng;
use neural_trio::music::controls::{ArpMotion, BassDrive, ControlChoice, Style};
use neural_trio::music::harmony::{chord_mask, BarHarmony};
use neural_trio::music::tokens::{decode_phrase, encode_phrase};
use neural_trio::music::vocab::{tempo_bin, Key, Mood, TEMPO_BIN_EDGES_BPM};
use neural_trio::music::{Chord, Note, Part, Phrase, TICKS_PER_BAR};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: cargo xtask eval [--quick] [options]

  --quick              CI size: 8 phrases x temperatures 0.8, 1.0 and Dance (+ 4 key lock, 4 per mood, 4 per
                       Dance adherence setting), 6 held-out songs
  --phrases N          phrases per temperature and for Dance T=1 (default 200; key lock and forced
                       chords get N/2, each mood N/4, each Dance adherence setting N/5; at least 4)
  --temperatures LIST  comma-separated (default 0.5,0.8,1.0,1.2,1.5)
  --bars N             bars per phrase and per real window (default 8)
  --top-p P            nucleus for every setting (default 1.0, the plugin's default)
  --seed N             first phrase seed; also seeds every draw in models/eval.py (default 1)
  --held-out N         use only the first N held-out songs (default all)
  --threads N          generator threads, one model each (default: all cores)
  --model PATH         default models/trio-base.onnx
  --source DIR         POP909 folder (default ../shared/datasets/pop909/POP909)
  --out DIR            default target/eval (target/eval-quick with --quick)
  --report-only        reuse <out>/phrases.json; only rerun models/eval.py
";

struct Args {
    quick: bool,
    phrases: usize,
    temperatures: Vec<f32>,
    bars: u32,
    seed: u32,
    held_out: Option<usize>,
    threads: usize,
    model: PathBuf,
    source: PathBuf,
    out: PathBuf,
    top_p: f32,
    report_only: bool,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut parsed = Args {
        quick,
        phrases: if quick { 8 } else { 200 },
        temperatures: if quick { vec![0.8, 1.0] } else { vec![0.5, 0.8, 1.0, 1.2, 1.5] },
        bars: 8,
        seed: 1,
        held_out: if quick { Some(6) } else { None },
        threads: pool::default_threads(),
        model: PathBuf::from(crate::bundle::MODEL),
        source: default_source(),
        top_p: DEFAULT_TOP_P,
        out: PathBuf::from(if quick { "target/eval-quick" } else { "target/eval" }),
        report_only: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().cloned().with_context(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--quick" => {}
            "--phrases" => parsed.phrases = value("--phrases")?.parse().context("--phrases takes a number")?,
            "--temperatures" => {
                parsed.temperatures = value("--temperatures")?
                    .split(',')
                    .map(|t| t.trim().parse::<f32>())
                    .collect::<std::result::Result<_, _>>()
                    .context("--temperatures takes numbers separated by commas")?
            }
            "--bars" => parsed.bars = value("--bars")?.parse().context("--bars takes a number")?,
            "--seed" => parsed.seed = value("--seed")?.parse().context("--seed takes a number")?,
            "--held-out" => parsed.held_out = Some(value("--held-out")?.parse().context("--held-out takes a number")?),
            "--threads" => parsed.threads = value("--threads")?.parse().context("--threads takes a number")?,
            "--model" => parsed.model = PathBuf::from(value("--model")?),
            "--source" => parsed.source = PathBuf::from(value("--source")?),
            "--out" => parsed.out = PathBuf::from(value("--out")?),
            "--top-p" => parsed.top_p = value("--top-p")?.parse().context("--top-p takes a number")?,
            "--report-only" => parsed.report_only = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument '{other}'\n\n{USAGE}"),
        }
    }
    if parsed.bars == 0 || parsed.phrases == 0 || parsed.temperatures.is_empty() {
        bail!("--bars, --phrases and --temperatures must not be empty or zero");
    }
    Ok(parsed)
}

pub fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let args = parse_args(args)?;
    let command_line = format!("cargo xtask eval {}", std::env::args().skip(2).collect::<Vec<_>>().join(" "));
    std::fs::create_dir_all(&args.out)?;
    let data_path = args.out.join("phrases.json");
    let python = crate::python::ensure_venv()?;
    if !args.report_only {
        let mut document = collect(&args, command_line.trim_end(), &python)?;
        document["timing"]["collect_s"] = started.elapsed().as_secs_f64().into();
        document["generated_unix"] = started_unix.into();
        std::fs::write(&data_path, serde_json::to_string(&document)? + "\n")?;
        println!("wrote {} ({:.0} s so far)", data_path.display(), started.elapsed().as_secs_f64());
    } else if !data_path.exists() {
        bail!("{} does not exist: run cargo xtask eval without --report-only first", data_path.display());
    }
    crate::run(
        Command::new(&python)
            .arg("models/eval.py")
            .arg("--data")
            .arg(&data_path)
            .arg("--out")
            .arg(&args.out)
            .args(["--seed", &args.seed.to_string()]),
    )?;
    println!("eval done in {:.0} s: {}", started.elapsed().as_secs_f64(), args.out.join("report.md").display());
    // Only the default full report speaks for the project in docs/RESULTS.md.
    if !args.quick && args.out == std::path::Path::new("target/eval") {
        crate::assemble_results()?;
    }
    Ok(())
}

/// Loads songs (numbered folders) on `threads` threads; unreadable songs are skipped (and counted).
fn load_songs(dirs: &[(u32, PathBuf)], threads: usize) -> (Vec<Song>, Vec<(String, String)>) {
    let loaded = pool::map(dirs, threads, |(_, dir)| load_song(dir));
    let mut songs = Vec::new();
    let mut skipped = Vec::new();
    for ((_, dir), result) in dirs.iter().zip(loaded) {
        match result {
            Ok(song) => songs.push(song),
            Err(reason) => skipped.push((dir.file_name().unwrap_or_default().to_string_lossy().to_string(), reason)),
        }
    }
    (songs, skipped)
}

/// A real window: bars `start_bar..start_bar + bars` of a held-out song, through the tokenizer, and
/// its annotated chords (the one sounding at its start at tick 0).
struct Window {
    song: u32,
    start_bar: u32,
    notes: Vec<Note>,
    chords: Vec<Chord>,
}

/// The chords over ticks `start..end`, relative to `start`: the one sounding at `start` restated at 0,
/// then every change inside.
pub(crate) fn chords_of_span(chords: &[Chord], start: u32, end: u32) -> Vec<Chord> {
    let at_start = chords.iter().rev().find(|c| c.start_tick <= start).map(|c| c.chord);
    let mut changes: Vec<Chord> = at_start.map(|chord| Chord { start_tick: 0, chord }).into_iter().collect();
    changes.extend(
        chords
            .iter()
            .filter(|c| c.start_tick > start && c.start_tick < end)
            .map(|c| Chord { start_tick: c.start_tick - start, chord: c.chord }),
    );
    changes
}

/// A window's chords bar by bar, as the plugin forces them (each bar restating the chord it starts
/// under), with the song's key as the lead's scale between the beats.
fn forced_plan(window: &Window, bars: u32, key: Key) -> Vec<BarHarmony> {
    (0..bars)
        .map(|bar| {
            let changes = chords_of_span(&window.chords, bar * TICKS_PER_BAR, (bar + 1) * TICKS_PER_BAR);
            let from_tick = changes.first().map_or(0, |c| c.start_tick);
            BarHarmony { from_tick, changes, scale: Some(key.scale_mask()) }
        })
        .collect()
}

/// Chords as JSON rows for models/eval.py: [start tick, root, tone mask (0: no chord)].
fn chords_json(
    chords: impl Iterator<Item = (u32, Option<(u8, neural_trio::music::ChordQuality)>)>,
) -> serde_json::Value {
    chords
        .map(|(tick, chord)| match chord {
            Some((root, quality)) => json!([tick, root, chord_mask(root, quality)]),
            None => json!([tick, -1, 0]),
        })
        .collect()
}

fn windows(song: &Song, bars: u32) -> Result<Vec<Window>> {
    let mut out = Vec::new();
    let mut start_bar = 0;
    while start_bar + bars <= song.phrase.bars {
        let (lo, hi) = (start_bar * TICKS_PER_BAR, (start_bar + bars) * TICKS_PER_BAR);
        let at_start = song.phrase.chords.iter().rev().find(|c| c.start_tick <= lo).map(|c| c.chord);
        let mut chords: Vec<Chord> = at_start.map(|chord| Chord { start_tick: 0, chord }).into_iter().collect();
        chords.extend(
            song.phrase
                .chords
                .iter()
                .filter(|c| c.start_tick > lo && c.start_tick < hi)
                .map(|c| Chord { start_tick: c.start_tick - lo, chord: c.chord }),
        );
        let mut phrase = Phrase {
            notes: song
                .phrase
                .notes
                .iter()
                .filter(|n| n.start_tick >= lo && n.start_tick < hi)
                .map(|n| Note { start_tick: n.start_tick - lo, ..*n })
                .collect(),
            chords: Vec::new(),
            bars,
        };
        phrase.normalize();
        let tokens = encode_phrase(&song.header, &phrase, true);
        let (_, decoded) = decode_phrase(&tokens).map_err(|e| anyhow::anyhow!("song {:03}: {e}", song.id))?;
        if decoded.notes != phrase.notes {
            bail!("song {:03} bar {start_bar}: the tokenizer changed the window's notes", song.id);
        }
        out.push(Window { song: song.id, start_bar, notes: decoded.notes, chords });
        start_bar += bars;
    }
    Ok(out)
}

/// The two copy indexes (exact, pitch-only) over every line of every training song, and of every
/// Dance arrangement of it the data set trained on (rule-made music is training music too).
struct CopyIndex {
    exact: copies::Index,
    pitch: copies::Index,
}

fn build_copy_index(train: &[Song]) -> CopyIndex {
    let build = |exact: bool| {
        let mut index = copies::Index::default();
        for song in train {
            let mut rules: Vec<DanceRules> = Vec::new();
            for i in 0..crate::dataset::DANCE_TRANSPOSITIONS as u32 {
                let picked = DanceRules::pick_for_training(song.id, i);
                if !rules.contains(&picked) {
                    rules.push(picked);
                }
            }
            let dance = rules.into_iter().map(|r| dance_phrase(song, r));
            for phrase in std::iter::once(song.phrase.clone()).chain(dance) {
                for part in Part::ALL {
                    let line = copies::symbols(&phrase.notes, part, exact);
                    if !line.is_empty() {
                        index.add_line(&line);
                    }
                }
            }
        }
        index
    };
    std::thread::scope(|scope| {
        let exact = scope.spawn(|| build(true));
        let pitch = build(false);
        CopyIndex { exact: exact.join().expect("index thread"), pitch }
    })
}

/// Longest shared runs in notes, per part, for both symbol kinds.
fn copy_runs(index: &CopyIndex, notes: &[Note]) -> serde_json::Value {
    let mut exact = Vec::new();
    let mut pitch = Vec::new();
    for part in Part::ALL {
        let count = notes.iter().filter(|n| n.part == part).count();
        exact.push(copies::run_in_notes(index.exact.longest_match(&copies::symbols(notes, part, true)), count));
        pitch.push(copies::run_in_notes(index.pitch.longest_match(&copies::symbols(notes, part, false)), count));
    }
    json!({"exact": exact, "pitch": pitch})
}

fn settings(args: &Args) -> Vec<Setting> {
    let mut settings: Vec<Setting> = args
        .temperatures
        .iter()
        .map(|&t| Setting {
            name: format!("T={t}"),
            group: "temperature",
            temperature: t,
            top_p: args.top_p,
            key_lock: false,
            mood: None,
            phrases: args.phrases,
            baseline: None,
            forced_chords: false,
            style: Style::Pop,
            controls: ControlChoice::AUTO,
        })
        .collect();
    // Key lock and each mood are compared with T=1 at fewer phrases: N/2 and N/4, at least 4.
    let small = |share: usize| (args.phrases / share).max(4);
    settings.push(Setting {
        name: "T=1 key lock".into(),
        group: "key_lock",
        temperature: 1.0,
        top_p: args.top_p,
        key_lock: true,
        mood: None,
        phrases: small(2),
        baseline: None,
        forced_chords: false,
        style: Style::Pop,
        controls: ControlChoice::AUTO,
    });
    // Jamming: the chords of held-out windows forced on the model (issue 12).
    settings.push(Setting {
        name: "T=1 held-out chords".into(),
        group: "chords",
        temperature: 1.0,
        top_p: args.top_p,
        key_lock: false,
        mood: None,
        phrases: small(2),
        baseline: None,
        forced_chords: true,
        style: Style::Pop,
        controls: ControlChoice::AUTO,
    });
    for mood in Mood::ALL {
        settings.push(Setting {
            name: format!("T=1 mood {}", mood.name()),
            group: "mood",
            temperature: 1.0,
            top_p: args.top_p,
            key_lock: false,
            mood: Some(mood),
            phrases: small(4),
            baseline: None,
            forced_chords: false,
            style: Style::Pop,
            controls: ControlChoice::AUTO,
        });
    }
    settings.extend(dance_settings(args));
    settings
}

/// Dance: style Dance at T = 1 with every control on Auto (`args.phrases` phrases), and the
/// adherence settings (N/5 phrases, at least 4), each forcing one control: each arp motion, each
/// bass drive, and density bins 1, 3, 5 per part (and 7 for the arp). They take the tempo bin of
/// `DANCE_BPM`, as a producer at dance tempo would.
fn dance_settings(args: &Args) -> Vec<Setting> {
    let setting = |name: String, group: &'static str, phrases: usize, controls: ControlChoice| Setting {
        name,
        group,
        temperature: 1.0,
        top_p: args.top_p,
        key_lock: false,
        mood: None,
        phrases,
        baseline: None,
        forced_chords: false,
        style: Style::Dance,
        controls,
    };
    let mut out = vec![setting("Dance T=1".into(), "dance", args.phrases, ControlChoice::AUTO)];
    let few = (args.phrases / 5).max(4);
    for motion in [ArpMotion::Block, ArpMotion::Broken, ArpMotion::Arpeggio] {
        let controls = ControlChoice { arp_motion: Some(motion), ..ControlChoice::AUTO };
        out.push(setting(format!("Dance arp motion {}", motion.name()), "adherence", few, controls));
    }
    for drive in [BassDrive::Held, BassDrive::Pulse, BassDrive::Offbeat, BassDrive::Sixteenths] {
        let controls = ControlChoice { bass_drive: Some(drive), ..ControlChoice::AUTO };
        out.push(setting(format!("Dance bass drive {}", drive.name()), "adherence", few, controls));
    }
    for part in Part::ALL {
        let bins: &[u8] = if part == Part::Arp { &[1, 3, 5, 7] } else { &[1, 3, 5] };
        for &bin in bins {
            let mut controls = ControlChoice::AUTO;
            controls.density[part.index()] = Some(bin);
            out.push(setting(format!("Dance {} density {bin}", part.name()), "adherence", few, controls));
        }
    }
    out
}

/// The tempo the Dance settings are made at.
const DANCE_BPM: f32 = 128.0;

/// The baselines: (report name, short name, `models/eval.py serve` arguments).
fn baseline_specs(args: &Args) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let ngram_tokens = if args.quick { "2000000" } else { "0" };
    vec![
        (
            "n-gram (Kneser-Ney, order 6)",
            "n-gram",
            [
                "ngram",
                "--order",
                "6",
                "--data-dir",
                "target/dataset",
                "--max-train-tokens",
                ngram_tokens,
                "--seed",
                "1337",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "LSTM (2 x 256)",
            "LSTM",
            ["lstm", "--checkpoint", "models/checkpoints/lstm/best.pt"].map(String::from).to_vec(),
        ),
    ]
}

/// Phrases from each baseline at T = 1 (key lock off, mood Auto), or why not.
fn run_baselines(
    args: &Args,
    python: &Path,
    picks: &[&Song],
    settings: &mut Vec<Setting>,
    generated: &mut Vec<generate::Generated>,
) -> Vec<serde_json::Value> {
    let phrases = (args.phrases / 2).max(4).min(picks.len());
    let mut rows = Vec::new();
    for (name, short, server_args) in baseline_specs(args) {
        let started = Instant::now();
        println!("baseline {name}: starting models/eval.py serve {}", server_args.join(" "));
        let mut bridge = match baseline::Bridge::start(python, &server_args) {
            Ok(b) => b,
            Err(why) => {
                println!("baseline {name}: not measured ({why})");
                rows.push(json!({"name": name, "measured": false, "why": why}));
                continue;
            }
        };
        let s = settings.len();
        let setting = Setting {
            name: format!("{short} T=1"),
            group: "baseline",
            temperature: 1.0,
            top_p: args.top_p,
            key_lock: false,
            mood: None,
            phrases,
            baseline: Some(short),
            forced_chords: false,
            style: Style::Pop,
            controls: ControlChoice::AUTO,
        };
        let mut made = Vec::new();
        let mut failure = None;
        for (i, song) in picks.iter().enumerate().take(phrases) {
            let job = Job {
                setting: s,
                index: i,
                seed: args.seed + i as u32,
                tempo_bin: song.header.tempo_bin,
                key: None,
                mood: None,
                temperature: setting.temperature,
                top_p: setting.top_p,
                harmony: None,
                style: setting.style,
                controls: setting.controls,
            };
            match generate::phrase(&mut bridge, &job, args.bars, &[]) {
                Ok(g) => made.push(g),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            if (i + 1) % (phrases / 5).max(1) == 0 {
                println!("  {short}: {}/{phrases} phrases, {:.0} s", i + 1, started.elapsed().as_secs_f64());
            }
        }
        match failure {
            Some(why) => {
                println!("baseline {name}: failed ({why})");
                rows.push(json!({"name": name, "measured": false, "why": format!("sampling failed: {why}")}));
            }
            None => {
                rows.push(json!({
                    "name": name, "measured": true, "setting": s, "info": bridge.info,
                    "seconds": started.elapsed().as_secs_f64(),
                }));
                settings.push(setting);
                generated.extend(made);
            }
        }
    }
    rows
}

fn collect(args: &Args, command_line: &str, python: &Path) -> Result<serde_json::Value> {
    let mut timing = serde_json::Map::new();
    let t = Instant::now();
    let library = crate::bundle::fetch_onnxruntime(crate::bundle::Runtime::Cpu)?.remove(0);
    if !args.model.exists() {
        bail!(
            "{} is missing: train and export a model first (cargo xtask train; cargo xtask export)",
            args.model.display()
        );
    }

    // Real music: held-out windows, and the training songs for copy detection.
    let (mut held_dirs, train_dirs): (Vec<_>, Vec<_>) =
        song_dirs(&args.source)?.into_iter().partition(|&(id, _)| is_valid_song(id));
    if let Some(n) = args.held_out {
        held_dirs.truncate(n);
    }
    if held_dirs.is_empty() || train_dirs.is_empty() {
        bail!(
            "no POP909 songs under {} (held-out {}, training {})",
            args.source.display(),
            held_dirs.len(),
            train_dirs.len()
        );
    }
    let (held, held_skipped) = load_songs(&held_dirs, args.threads);
    let mut real: Vec<Window> = Vec::new();
    for song in &held {
        real.extend(windows(song, args.bars)?);
    }
    println!(
        "held-out: {} songs ({} skipped), {} windows of {} bars",
        held.len(),
        held_skipped.len(),
        real.len(),
        args.bars
    );
    timing.insert("load_held_out_s".into(), t.elapsed().as_secs_f64().into());

    // Generated phrases.
    let t = Instant::now();
    let mut settings = settings(args);
    let most = settings.iter().map(|s| s.phrases).max().unwrap_or(0);
    // Phrase i of every setting takes the tempo bin (and key, under key lock) of held-out song picks[i].
    let mut pick_rng = Rng::new(args.seed as u64 ^ 0x00E7_A1ED);
    let picks: Vec<&Song> = (0..most).map(|_| &held[(pick_rng.next_u64() % held.len() as u64) as usize]).collect();
    let mut jobs = Vec::new();
    // Forced chords: phrase i takes the chords (and the tempo bin) of a held-out window spread over
    // the windows by a fixed stride.
    let mut forced: Vec<Vec<BarHarmony>> = Vec::new();
    for (s, setting) in settings.iter().enumerate() {
        for (i, song) in picks.iter().enumerate().take(setting.phrases) {
            let (tempo_bin, harmony) = if setting.forced_chords {
                let w = (i * 7919) % real.len();
                let window_song = held.iter().find(|h| h.id == real[w].song).expect("window of a loaded song");
                forced.push(forced_plan(&real[w], args.bars, window_song.header.key));
                (window_song.header.tempo_bin, Some(forced.len() - 1))
            } else if setting.style == Style::Dance {
                (tempo_bin(DANCE_BPM), None)
            } else {
                (song.header.tempo_bin, None)
            };
            jobs.push(Job {
                setting: s,
                index: i,
                seed: args.seed + i as u32,
                tempo_bin,
                key: setting.key_lock.then_some(song.header.key),
                mood: setting.mood,
                temperature: setting.temperature,
                top_p: setting.top_p,
                harmony,
                style: setting.style,
                controls: setting.controls,
            });
        }
    }
    println!(
        "generating {} phrases of {} bars ({} settings) with {} on {} thread(s)",
        jobs.len(),
        args.bars,
        settings.len(),
        args.model.display(),
        args.threads
    );
    let mut generated = generate::run_all(&library, &args.model, &jobs, args.bars, &forced, args.threads)
        .map_err(|e| anyhow::anyhow!("generation failed: {e}"))?;
    let generation_s = t.elapsed().as_secs_f64();
    timing.insert("generate_s".into(), generation_s.into());
    let tokens: usize = generated.iter().map(|g| g.tokens).sum();
    println!("generated {} phrases, {tokens} tokens in {generation_s:.1} s", generated.len());

    let t = Instant::now();
    let baselines = run_baselines(args, python, &picks, &mut settings, &mut generated);
    timing.insert("baselines_s".into(), t.elapsed().as_secs_f64().into());

    // Copy detection.
    let t = Instant::now();
    let (train, train_skipped) = load_songs(&train_dirs, args.threads);
    let index = build_copy_index(&train);
    println!(
        "copy index: {} training songs ({} skipped), {} symbols, {} + {} automaton states, {:.1} s",
        train.len(),
        train_skipped.len(),
        index.exact.symbols,
        index.exact.states(),
        index.pitch.states(),
        t.elapsed().as_secs_f64()
    );
    let generated_copies = pool::map(&generated, args.threads, |g| copy_runs(&index, &g.notes));
    let real_copies = pool::map(&real, args.threads, |w| copy_runs(&index, &w.notes));
    timing.insert("copy_detection_s".into(), t.elapsed().as_secs_f64().into());

    let model_info = {
        // One more load, to record what the model says about itself.
        let model = neural_trio::generator::onnx::OnnxModel::load(
            &library,
            &args.model,
            1,
            neural_trio::generator::onnx::Provider::Cpu,
        )
        .map_err(|e| anyhow::anyhow!("model: {e}"))?;
        json!({
            "path": args.model.display().to_string(),
            "version": model.info.version,
            "vocab_hash": model.info.vocab_hash,
            "context_length": model.info.context_length,
            "n_layer": model.info.n_layer,
            "training_data": model.info.training_data,
            "licence": model.info.licence,
        })
    };

    let song_by_id = |id: u32| held.iter().find(|s| s.id == id).expect("window of a loaded song");
    let real_json: Vec<_> = real
        .iter()
        .zip(&real_copies)
        .map(|(w, copy)| {
            let song = song_by_id(w.song);
            json!({
                "song": w.song,
                "start_bar": w.start_bar,
                "key": song.header.key.index(),
                "mood": song.header.mood.name(),
                "tempo_bin": song.header.tempo_bin,
                "effective_bpm": song.meta.effective_bpm,
                "half_time": song.meta.half_time,
                "notes": generate::notes_json(&w.notes),
                "chords": chords_json(w.chords.iter().map(|c| (c.start_tick, c.chord))),
                "copy": copy,
            })
        })
        .collect();
    let generated_json: Vec<_> = generated
        .iter()
        .zip(&generated_copies)
        .map(|(g, copy)| {
            json!({
                "setting": g.job.setting,
                "index": g.job.index,
                "seed": g.job.seed,
                "tempo_bin": g.job.tempo_bin,
                "key": g.key.index(),
                "key_locked": g.job.key.is_some(),
                "mood": g.mood.name(),
                "mood_asked": g.job.mood.map(|m| m.name()),
                "style": g.job.style.name(),
                "controls_asked": generate::choice_json(&g.job.controls),
                "bar_controls": g.bar_controls.iter().map(generate::written_json).collect::<Vec<_>>(),
                "notes": generate::notes_json(&g.notes),
                // Forced chords where they were forced, else the model's own CHORD tokens.
                "chords": match g.job.harmony {
                    Some(h) => chords_json(forced[h].iter().enumerate().flat_map(|(bar, plan)| {
                        plan.changes.iter().map(move |c| (bar as u32 * TICKS_PER_BAR + c.start_tick, c.chord))
                    })),
                    None => chords_json(g.chords.iter().map(|c| (c.start_tick, c.chord))),
                },
                "chords_forced": g.job.harmony.is_some(),
                "tokens": g.tokens,
                "seconds": g.seconds,
                "copy": copy,
            })
        })
        .collect();
    let settings_json: Vec<_> = settings
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "group": s.group,
                "temperature": s.temperature,
                "top_p": s.top_p,
                "key_lock": s.key_lock,
                "mood": s.mood.map(|m| m.name()),
                "phrases": s.phrases,
                "baseline": s.baseline,
                "style": s.style.name(),
                "controls": generate::choice_json(&s.controls),
                "tempo_bpm": (s.style == Style::Dance).then_some(DANCE_BPM),
            })
        })
        .collect();
    Ok(json!({
        "format": 1,
        "command": command_line,
        "quick": args.quick,
        "seed": args.seed,
        "bars": args.bars,
        "threads": args.threads,
        "ticks_per_bar": TICKS_PER_BAR,
        "ticks_per_beat": neural_trio::music::TICKS_PER_BEAT,
        "parts": generate::part_names(),
        "registers": neural_trio::music::Part::ALL.map(|part| { let (lo, hi) = part.default_register(); [lo, hi] }),
        "tempo_bin_edges_bpm": TEMPO_BIN_EDGES_BPM,
        "density_bin_edges": neural_trio::music::controls::DENSITY_BIN_EDGES,
        "keys": (0..24).map(|i| Key::from_index(i).name()).collect::<Vec<_>>(),
        "model": model_info,
        "onnxruntime": library.display().to_string(),
        "source": args.source.display().to_string(),
        "held_out_songs": held.iter().map(|s| s.id).collect::<Vec<_>>(),
        "held_out_skipped": held_skipped.iter().map(|(id, r)| json!({"song": id, "reason": r})).collect::<Vec<_>>(),
        "train_songs": train.len(),
        "train_skipped": train_skipped.len(),
        "copy_index_symbols": index.exact.symbols,
        "settings": settings_json,
        "generated": generated_json,
        "real": real_json,
        "baselines": baselines,
        "timing": timing,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dance_and_adherence_settings_sit_beside_the_pop_ones() {
        let args = parse_args(&["--quick".to_string()]).unwrap();
        let all = settings(&args);
        assert!(all
            .iter()
            .filter(|s| s.group != "dance" && s.group != "adherence")
            .all(|s| s.style == Style::Pop && s.controls == ControlChoice::AUTO));
        let dance: Vec<_> = all.iter().filter(|s| s.group == "dance").collect();
        assert_eq!(dance.len(), 1);
        assert_eq!((dance[0].style, dance[0].controls, dance[0].phrases), (Style::Dance, ControlChoice::AUTO, 8));
        let adherence: Vec<_> = all.iter().filter(|s| s.group == "adherence").collect();
        // 3 arp motions, 4 bass drives, density bins 1, 3, 5 per part and 7 for the arp.
        assert_eq!(adherence.len(), 3 + 4 + 3 * 3 + 1);
        assert!(adherence.iter().all(|s| s.style == Style::Dance && s.phrases == 4 && s.temperature == 1.0));
        assert!(adherence.iter().all(|s| s.controls != ControlChoice::AUTO));
        let full = parse_args(&[]).unwrap();
        assert!(settings(&full).iter().filter(|s| s.group == "adherence").all(|s| s.phrases == 40));
        assert_eq!(tempo_bin(DANCE_BPM), tempo_bin(128.0));
    }
}

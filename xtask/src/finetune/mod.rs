//! `cargo xtask finetune --midi DIR --name NAME`: teaches the trio a producer's own music. Reads
//! every MIDI file under DIR (`import`; audio under `--audio DIR` is transcribed first,
//! `transcribe`), completes the parts a file lacks with the base model
//! (`complete`), fine-tunes the base model on them (`models/finetune.py`), measures how often the
//! result copies the user's files (`copies`) and how close it sounds to files it did not learn
//! (`style`), and writes `NAME.onnx` with its model card `NAME.md` into the user's models folder,
//! where the plugin's Model selector finds it.

mod complete;
mod copies;
mod import;
mod roles;
mod style;
mod transcribe;

pub use transcribe::check as transcription_check;

use crate::pool;
use anyhow::{bail, Context, Result};
use import::Imported;
use neural_trio::generator::onnx::{OnnxModel, Provider};
use neural_trio::music::tokens::decode_phrase;
use neural_trio::music::vocab::vocab_hash;
use neural_trio::music::Part;
use roles::RolesFile;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask finetune --midi DIR --name NAME [options]
       cargo xtask finetune --audio DIR --name NAME [options]

  --midi DIR        every .mid/.midi file under DIR (format 0 and 1, any resolution)
  --audio DIR       every .wav/.mp3/.flac/.ogg/.aiff file under DIR, transcribed to MIDI with Basic Pitch
                    (written to target/finetune/NAME/transcribed/); with --midi, both are used
  --name NAME       the model's name in the plugin's Model selector (letters, digits, space, - _ .)
  --minutes M       training budget (default 10); it stops earlier when held-out loss stops improving
  --epochs E        or at most E passes over the data
  --device D        cpu, cuda or auto (default auto: a GPU when there is one)
  --from MODEL      the model to start from: a .onnx path or a name in the models folder
                    (default: the shipped trio-base)
  --roles FILE      which track plays what, per file (see the README: Your own music)
  --compare DIR     MIDI files of the same style not trained on, to measure how close the result sounds
                    (default: the held-out fifth of your files)
  --models-dir DIR  where the model goes (default: the plugin's user models folder)
  --force           replace a model of the same name
  --seed N          (default 1)
  --quick           a smoke run for tests: files cut to 8 bars, 4 two-bar phrases per measurement
";

/// Files larger than this are skipped: a 16 MB MIDI file is hours of dense music, not a song.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Semitone shifts each training song is learned in (as the base model's data).
const TRANSPOSITIONS: std::ops::RangeInclusive<i32> = -6..=5;
/// Every fifth usable file is held out to measure the fine-tune (at least one, with two or more).
const HELD_OUT_EVERY: usize = 5;
/// Temperatures of the copy measurement, and phrases and bars per temperature.
const COPY_TEMPERATURES: [f32; 3] = [0.7, 1.0, 1.3];
const COPY_PHRASES: usize = 32;
const COPY_BARS: u32 = 8;
/// `--quick`: bars kept of each file.
const QUICK_BARS: u32 = 8;
/// The temperature of the phrases compared with the user's style.
const STYLE_TEMPERATURE: f32 = 1.0;
/// A generated phrase "copies" when it shares this many notes in a row with a user's file.
const COPY_RUN_NOTES: usize = 16;

struct Args {
    midi: Option<PathBuf>,
    audio: Option<PathBuf>,
    name: String,
    minutes: f64,
    epochs: Option<f64>,
    device: String,
    from: Option<String>,
    roles: Option<PathBuf>,
    compare: Option<PathBuf>,
    models_dir: Option<PathBuf>,
    force: bool,
    seed: u32,
    quick: bool,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut parsed = Args {
        midi: None,
        audio: None,
        name: String::new(),
        minutes: 10.0,
        epochs: None,
        device: "auto".into(),
        from: None,
        roles: None,
        compare: None,
        models_dir: None,
        force: false,
        seed: 1,
        quick: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().cloned().with_context(|| format!("{flag} needs a value\n\n{USAGE}"));
        match flag.as_str() {
            "--midi" => parsed.midi = Some(value()?.into()),
            "--audio" => parsed.audio = Some(value()?.into()),
            "--name" => parsed.name = value()?,
            "--minutes" => parsed.minutes = value()?.parse().context("--minutes takes a number")?,
            "--epochs" => parsed.epochs = Some(value()?.parse().context("--epochs takes a number")?),
            "--device" => parsed.device = value()?,
            "--from" => parsed.from = Some(value()?),
            "--roles" => parsed.roles = Some(value()?.into()),
            "--compare" => parsed.compare = Some(value()?.into()),
            "--models-dir" => parsed.models_dir = Some(value()?.into()),
            "--force" => parsed.force = true,
            "--quick" => parsed.quick = true,
            "--seed" => parsed.seed = value()?.parse().context("--seed takes a whole number")?,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option '{other}'\n\n{USAGE}"),
        }
    }
    if (parsed.midi.is_none() && parsed.audio.is_none()) || parsed.name.is_empty() {
        bail!("--name and a folder (--midi or --audio) are required\n\n{USAGE}");
    }
    check_name(&parsed.name)?;
    if !["cpu", "cuda", "auto"].contains(&parsed.device.as_str()) {
        bail!("--device is cpu, cuda or auto, not '{}'", parsed.device);
    }
    if parsed.minutes <= 0.0 || parsed.epochs.is_some_and(|e| e <= 0.0) {
        bail!("--minutes and --epochs must be above 0");
    }
    Ok(parsed)
}

/// A name the Model selector shows and the file system takes on every platform.
fn check_name(name: &str) -> Result<()> {
    let fine = |c: char| c.is_alphanumeric() || " -_.".contains(c);
    if name.len() > 64 || !name.chars().all(fine) || name.starts_with('.') || name.trim() != name {
        bail!("--name '{name}': use letters, digits, spaces, '-', '_' or '.' (at most 64, not starting with '.')");
    }
    Ok(())
}

/// One file of the folder, as read.
struct FileResult {
    relative: String,
    song: std::result::Result<Imported, String>,
}

pub fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let args = parse_args(args)?;
    let models_dir = match &args.models_dir {
        Some(dir) => dir.clone(),
        None => neural_trio::generator::resources::user_models_dir()
            .context("cannot tell where the user's models folder is: pass --models-dir")?,
    };
    let out_model = models_dir.join(format!("{}.onnx", args.name));
    if out_model.exists() && !args.force {
        bail!("a model named '{}' exists ({}): pass --force to replace it", args.name, out_model.display());
    }
    let base = base_model(&args, &models_dir)?;
    let roles = match &args.roles {
        Some(path) => RolesFile::read(path).map_err(anyhow::Error::msg)?,
        None => RolesFile::default(),
    };
    let library = crate::bundle::fetch_onnxruntime(crate::bundle::Runtime::Cpu)?
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == neural_trio::generator::resources::ORT_LIBRARY))
        .context("the ONNX Runtime library is missing after fetching it")?;
    let threads = pool::default_threads();

    let work_dir = PathBuf::from("target/finetune").join(&args.name);
    std::fs::create_dir_all(&work_dir)?;

    // 1. Read the folders (audio transcribed first).
    let mut sources = match &args.midi {
        Some(dir) => midi_sources(dir)?,
        None => Sources::default(),
    };
    let mut transcription = Vec::new();
    if let Some(dir) = &args.audio {
        let transcribed = transcribe::transcribe_folder(dir, &work_dir.join("transcribed"))?;
        sources.files.extend(transcribed.inputs);
        sources.skipped.extend(transcribed.skipped);
        sources.others += transcribed.others;
        sources.folders.push(dir.clone());
        transcription = transcribed.report;
    }
    let bars_kept = if args.quick { QUICK_BARS } else { import::MAX_BARS };
    let folder = read_folder(sources, &roles, bars_kept, threads)?;
    let (usable, skipped, others) = (folder.usable(), folder.skipped(), folder.others);

    // 2. Hold some files out, complete the missing parts, encode.
    let held_out: Vec<bool> = (0..usable.len()).map(|i| is_held_out(i, usable.len())).collect();
    let completed = complete_all(&usable, &library, &base, args.seed, threads)?;
    let mut train: Vec<u16> = Vec::new();
    let mut valid: Vec<u16> = Vec::new();
    for ((stream, _), &held) in completed.iter().zip(&held_out) {
        if held {
            valid.extend(to_u16(stream));
        } else {
            train.extend(transposed_streams(stream)?);
        }
    }
    if usable.len() == 1 {
        // One file: its last fifth is held out (counted once, untransposed).
        let (head, tail) = split_single(&completed[0].0);
        train = transposed_streams(&head)?;
        valid = to_u16(&tail);
    }
    let tokens = (train.len(), valid.len());
    let data = data_summary(&usable, &held_out, &completed, (&skipped, others), &transcription, tokens);
    write_tokens(&work_dir.join("train.bin"), &train)?;
    write_tokens(&work_dir.join("valid.bin"), &valid)?;
    std::fs::write(work_dir.join("data.json"), serde_json::to_string_pretty(&data)? + "\n")?;
    println!("  {} training tokens (12 transpositions), {} held-out tokens", train.len(), valid.len());

    // 3. Fine-tune (Python, in the models venv).
    println!("== fine-tuning {} from {}", args.name, base.display());
    let trained = work_dir.join(format!("{}.onnx", args.name));
    let figures_path = work_dir.join("finetune.json");
    let mut command = Command::new(crate::python::ensure_venv()?);
    command
        .arg("models/finetune.py")
        .arg("--data")
        .arg(&work_dir)
        .arg("--from")
        .arg(&base)
        .arg("--out")
        .arg(&trained)
        .args(["--name", &args.name, "--minutes", &args.minutes.to_string(), "--device", &args.device])
        .args(["--seed", &args.seed.to_string(), "--threads", &threads.to_string()])
        .arg("--card-json")
        .arg(&figures_path);
    if let Some(epochs) = args.epochs {
        command.args(["--epochs", &epochs.to_string()]);
    }
    crate::run(&mut command)?;
    let figures: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&figures_path)?)?;

    // 4. How often it copies the user's files, against the base model.
    println!("== measuring copies of your files ({COPY_RUN_NOTES}+ notes in a row)");
    let index = copies::UserIndex::new(usable.iter().map(|(_, s)| &s.phrase));
    let tempo_bin = usable[0].1.header.tempo_bin;
    let plan = copies::Plan {
        temperatures: &COPY_TEMPERATURES,
        phrases: if args.quick { 4 } else { COPY_PHRASES },
        bars: if args.quick { 2 } else { COPY_BARS },
        run_notes: COPY_RUN_NOTES,
        tempo_bin,
        seed: args.seed,
    };
    let models = [("fine-tuned", trained.as_path()), ("base", base.as_path())];
    let (copy_rates, phrases) = copies::measure(&index, &library, models, &plan, threads)?;

    // 5. How close to the user's style, against files not trained on.
    let compare_folder = match &args.compare {
        Some(dir) => Some(read_folder(midi_sources(dir)?, &roles, bars_kept, threads)?),
        None => None,
    };
    let reference: Vec<(&str, &Imported)> = match &compare_folder {
        Some(folder) => folder.usable(),
        None => usable.iter().zip(&held_out).filter(|(_, &held)| held).map(|(file, _)| *file).collect(),
    };
    println!("== comparing phrases at T = {STYLE_TEMPERATURE} with {} files not trained on", reference.len());
    let style = style::compare(&reference, &phrases, STYLE_TEMPERATURE, plan.bars, &work_dir)?;

    // 6. Into the models folder, with its card.
    std::fs::create_dir_all(&models_dir)
        .with_context(|| format!("cannot make the models folder {}", models_dir.display()))?;
    std::fs::copy(&trained, &out_model).with_context(|| format!("cannot write {}", out_model.display()))?;
    let measured = Measured { copies: (&plan, &copy_rates), style: style.as_ref(), compare: args.compare.as_deref() };
    let card = card(&args, &base, &data, &figures, &measured, started.elapsed().as_secs_f64());
    let card_path = out_model.with_extension("md");
    std::fs::write(&card_path, card)?;
    println!(
        "wrote {} and its model card {} in {:.0} s: pick '{}' in the plugin's Model selector",
        out_model.display(),
        card_path.display(),
        started.elapsed().as_secs_f64(),
        args.name
    );
    Ok(())
}

/// The MIDI files to read (by the name the card shows), and what was already left out.
#[derive(Default)]
struct Sources {
    files: Vec<(String, PathBuf)>,
    skipped: Vec<(String, String)>,
    /// Files that are neither MIDI nor (with --audio) audio.
    others: usize,
    folders: Vec<PathBuf>,
}

/// Every MIDI file under `dir`.
fn midi_sources(dir: &Path) -> Result<Sources> {
    let (paths, others) = list_files(dir, &["mid", "midi"])?;
    let relative = |path: &Path| path.strip_prefix(dir).unwrap_or(path).to_string_lossy().replace('\\', "/");
    let files = paths.iter().map(|path| (relative(path), path.clone())).collect();
    Ok(Sources { files, skipped: Vec::new(), others, folders: vec![dir.to_path_buf()] })
}

/// The files of the user's folders, read: at least one usable.
struct Folder {
    files: Vec<FileResult>,
    others: usize,
}

impl Folder {
    fn usable(&self) -> Vec<(&str, &Imported)> {
        self.files.iter().filter_map(|r| r.song.as_ref().ok().map(|s| (r.relative.as_str(), s))).collect()
    }

    fn skipped(&self) -> Vec<(&str, &str)> {
        self.files.iter().filter_map(|r| r.song.as_ref().err().map(|e| (r.relative.as_str(), e.as_str()))).collect()
    }
}

/// Reads every source file, listing what it skips and why; an error only when nothing is usable.
fn read_folder(sources: Sources, roles: &RolesFile, bars_kept: u32, threads: usize) -> Result<Folder> {
    println!("== reading {} MIDI files", sources.files.len());
    let mut files: Vec<FileResult> =
        pool::map(&sources.files, threads, |(relative, path)| read_file(relative, path, roles, bars_kept));
    files.extend(sources.skipped.into_iter().map(|(relative, reason)| FileResult { relative, song: Err(reason) }));
    let others = sources.others;
    let folder = Folder { files, others };
    let skipped = folder.skipped();
    for (file, reason) in &skipped {
        println!("  skipped {file}: {reason}");
    }
    if others > 0 {
        println!("  skipped {others} files that are neither MIDI (.mid, .midi) nor, with --audio, audio");
    }
    let usable = folder.usable().len();
    if usable == 0 {
        let folders: Vec<String> = sources.folders.iter().map(|d| d.display().to_string()).collect();
        bail!(
            "no usable MIDI or audio file under {} ({} skipped, {others} other files): nothing to learn from",
            folders.join(" and "),
            skipped.len()
        );
    }
    println!("  {usable} usable, {} skipped", skipped.len());
    Ok(folder)
}

/// The model to start from: `--from` as a path or a name in the models folder, else the shipped one.
fn base_model(args: &Args, models_dir: &Path) -> Result<PathBuf> {
    let path = match &args.from {
        None => PathBuf::from(crate::bundle::MODEL),
        Some(from) if Path::new(from).is_file() => PathBuf::from(from),
        Some(name) => models_dir.join(format!("{name}.onnx")),
    };
    if !path.is_file() {
        bail!("the model to start from, {}, does not exist", path.display());
    }
    Ok(path)
}

/// Every file under `dir` (recursively, sorted) whose extension is one of `extensions` (lower
/// case), and how many others there were.
fn list_files(dir: &Path, extensions: &[&str]) -> Result<(Vec<PathBuf>, usize)> {
    if !dir.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let (mut midi, mut others) = (Vec::new(), 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).with_context(|| format!("cannot list {}", folder.display()))? {
            let path = entry?.path();
            let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if path.is_dir() {
                pending.push(path);
            } else if extension.is_some_and(|e| extensions.contains(&e.as_str())) {
                midi.push(path);
            } else {
                others += 1;
            }
        }
    }
    midi.sort();
    Ok((midi, others))
}

fn read_file(relative: &str, path: &Path, roles: &RolesFile, bars_kept: u32) -> FileResult {
    let song = (|| {
        let size = std::fs::metadata(path).map_err(|e| format!("cannot read it ({e})"))?.len();
        if size > MAX_FILE_BYTES {
            return Err(format!("too large ({:.1} MB; at most {} MB)", size as f64 / 1e6, MAX_FILE_BYTES >> 20));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it ({e})"))?;
        import::import(&bytes, relative, roles).map(|song| song.first_bars(bars_kept))
    })();
    FileResult { relative: relative.to_string(), song }
}

/// Whether usable file `i` of `count` is held out.
fn is_held_out(i: usize, count: usize) -> bool {
    count >= 2 && (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 || (count < HELD_OUT_EVERY && i == count - 1))
}

/// Every song's token stream with its missing parts written by the base model, and which parts
/// were written, with progress and the time left.
fn complete_all(
    usable: &[(&str, &Imported)],
    library: &Path,
    base: &Path,
    seed: u32,
    threads: usize,
) -> Result<Vec<(Vec<u32>, [bool; 3])>> {
    let bars_to_write: usize =
        usable.iter().filter(|(_, s)| s.found.iter().any(|f| !f)).map(|(_, s)| s.phrase.bars as usize).sum();
    if bars_to_write > 0 {
        println!("== completing the missing parts with the base model ({bars_to_write} bars)");
    }
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let results = pool::map_with(
        usable,
        threads,
        || OnnxModel::load(library, base, 1, Provider::Cpu),
        |model, (file, song)| {
            let stream = complete::complete(model, song, seed).map_err(|e| format!("{file}: {e}"))?;
            if song.found.iter().any(|f| !f) {
                let finished = done.fetch_add(song.phrase.bars as usize, Ordering::Relaxed) + song.phrase.bars as usize;
                let elapsed = started.elapsed().as_secs_f64();
                let left = elapsed / finished as f64 * (bars_to_write - finished) as f64;
                println!("  {finished}/{bars_to_write} bars, {elapsed:.0} s, about {left:.0} s left");
            }
            Ok::<_, String>((stream, song.found.map(|f| !f)))
        },
    )
    .map_err(anyhow::Error::msg)?;
    results.into_iter().collect::<std::result::Result<_, _>>().map_err(anyhow::Error::msg)
}

fn to_u16(stream: &[u32]) -> Vec<u16> {
    stream.iter().map(|&t| u16::try_from(t).expect("the vocabulary fits u16")).collect()
}

/// The stream in every transposition (notes that would leave the MIDI range dropped).
fn transposed_streams(stream: &[u32]) -> Result<Vec<u16>> {
    let (header, phrase) =
        decode_phrase(stream).map_err(|e| anyhow::anyhow!("a completed song does not decode: {e}"))?;
    let mut out = Vec::new();
    for shift in TRANSPOSITIONS {
        let (header, phrase) = crate::pop909::transpose(&header, &phrase, shift);
        out.extend(to_u16(&neural_trio::music::tokens::encode_phrase(&header, &phrase, true)));
    }
    Ok(out)
}

/// A single song split into (its first four fifths, its last fifth), each a whole token stream.
fn split_single(stream: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let Ok((header, phrase)) = decode_phrase(stream) else { return (stream.to_vec(), Vec::new()) };
    let cut_bar = (phrase.bars * 4 / 5).max(1);
    let cut = cut_bar * neural_trio::music::TICKS_PER_BAR;
    let part = |keep: &dyn Fn(u32) -> bool, shift: u32, bars: u32| {
        let mut p = neural_trio::music::Phrase {
            notes: phrase
                .notes
                .iter()
                .filter(|n| keep(n.start_tick))
                .map(|n| neural_trio::music::Note { start_tick: n.start_tick - shift, ..*n })
                .collect(),
            chords: phrase
                .chords
                .iter()
                .filter(|c| keep(c.start_tick))
                .map(|c| neural_trio::music::Chord { start_tick: c.start_tick - shift, ..*c })
                .collect(),
            bars,
        };
        p.normalize();
        neural_trio::music::tokens::encode_phrase(&header, &p, true)
    };
    let head = part(&|t| t < cut, 0, cut_bar);
    let tail = part(&|t| t >= cut, cut, phrase.bars.saturating_sub(cut_bar).max(1));
    (head, tail)
}

fn write_tokens(path: &Path, tokens: &[u16]) -> Result<()> {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// What the fine-tune learned from, for `models/finetune.py`'s metadata and the model card.
fn data_summary(
    usable: &[(&str, &Imported)],
    held_out: &[bool],
    completed: &[(Vec<u32>, [bool; 3])],
    (skipped, others): (&[(&str, &str)], usize),
    transcription: &[serde_json::Value],
    (train_tokens, valid_tokens): (usize, usize),
) -> serde_json::Value {
    let files: Vec<_> = usable
        .iter()
        .zip(held_out)
        .zip(completed)
        .map(|(((file, song), &held), (_, written))| {
            let notes = Part::ALL.map(|p| song.phrase.notes.iter().filter(|n| n.part == p).count());
            json!({
                "file": file,
                "held_out": held,
                "bars": song.phrase.bars,
                "bpm": (song.bpm * 10.0).round() / 10.0,
                "key": if song.key_found { song.header.key.name() } else { "C (no clear key)".to_string() },
                "notes": {"lead": notes[0], "arp": notes[1], "bass": notes[2]},
                "completed_by_base_model": Part::ALL.iter().filter(|p| written[p.index()]).map(|p| p.name()).collect::<Vec<_>>(),
                "voices": song.voices,
            })
        })
        .collect();
    let completed_files = completed.iter().filter(|(_, written)| written.iter().any(|&w| w)).count();
    json!({
        "summary": format!(
            "the user's own music: {} files ({} held out), {} bars; parts completed by the base model in {} of them",
            usable.len(),
            held_out.iter().filter(|&&h| h).count(),
            usable.iter().map(|(_, s)| s.phrase.bars).sum::<u32>(),
            completed_files
        ),
        "files": files,
        "skipped": skipped.iter().map(|(file, reason)| json!({"file": file, "reason": reason})).collect::<Vec<_>>(),
        "other_files": others,
        "transcription": transcription,
        "train_tokens": train_tokens,
        "valid_tokens": valid_tokens,
        "vocab_hash": vocab_hash(),
    })
}

/// What was measured on the result, for the card.
struct Measured<'a> {
    copies: (&'a copies::Plan<'a>, &'a [copies::Rate]),
    style: Option<&'a serde_json::Value>,
    compare: Option<&'a Path>,
}

/// The model card: what it learned from, how, and what it does.
fn card(
    args: &Args,
    base: &Path,
    data: &serde_json::Value,
    figures: &serde_json::Value,
    measured: &Measured,
    seconds: f64,
) -> String {
    let (plan, copy_rates) = measured.copies;
    use std::fmt::Write;
    let mut md = String::new();
    let _ = writeln!(md, "# {} — model card\n", args.name);
    let _ = writeln!(
        md,
        "A fine-tune of `{}` on the user's own MIDI files, made by `cargo xtask finetune` in {:.1} minutes. \
         **Licence: the user's own data** (this model is the user's; it was trained on nothing else beyond the \
         base model).\n",
        base.display(),
        seconds / 60.0
    );
    let _ =
        writeln!(md, "Command: `cargo xtask finetune {}`\n", std::env::args().skip(2).collect::<Vec<_>>().join(" "));
    let _ = writeln!(md, "## Data\n\n{}.\n", data["summary"].as_str().unwrap_or_default());
    let _ =
        writeln!(md, "| file | held out | bars | BPM | key | lead / arp / bass notes | written by the base model |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for file in data["files"].as_array().into_iter().flatten() {
        let notes = &file["notes"];
        let written: Vec<&str> =
            file["completed_by_base_model"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} / {} / {} | {} |",
            file["file"].as_str().unwrap_or_default(),
            if file["held_out"].as_bool() == Some(true) { "yes" } else { "" },
            file["bars"],
            file["bpm"],
            file["key"].as_str().unwrap_or_default(),
            notes["lead"],
            notes["arp"],
            notes["bass"],
            if written.is_empty() { "—".to_string() } else { written.join(", ") },
        );
    }
    let _ = writeln!(md, "\nRoles found (voice: name, program, notes → part, and why):\n");
    for file in data["files"].as_array().into_iter().flatten() {
        let _ = writeln!(md, "- `{}`", file["file"].as_str().unwrap_or_default());
        for voice in file["voices"].as_array().into_iter().flatten() {
            let _ = writeln!(md, "  - {}", voice.as_str().unwrap_or_default());
        }
    }
    let skipped = data["skipped"].as_array().cloned().unwrap_or_default();
    if !skipped.is_empty() || data["other_files"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(md, "\nSkipped:\n");
        for s in &skipped {
            let _ = writeln!(
                md,
                "- `{}`: {}",
                s["file"].as_str().unwrap_or_default(),
                s["reason"].as_str().unwrap_or_default()
            );
        }
        if let Some(n) = data["other_files"].as_u64().filter(|&n| n > 0) {
            let _ = writeln!(md, "- {n} files that are neither MIDI nor (with `--audio`) audio");
        }
    }
    let _ = writeln!(
        md,
        "\nParts a file lacks were written by the base model around the file's own parts (its notes and, where it \
         has an accompaniment, its chords forced), so the fine-tuned model still writes all three; every training \
         file is learned in 12 transpositions, held-out files as they are. How a file was read (voices, skyline, \
         key and chord estimates) is in the README, *Your own music*.\n"
    );
    transcription_section(&mut md, data);
    let _ = writeln!(md, "## Training\n");
    let number = |key: &str| figures.get(key).and_then(|v| v.as_f64());
    let text = |key: &str| figures.get(key).and_then(|v| v.as_str()).unwrap_or("—").to_string();
    let fixed = |key: &str, places: usize| number(key).map_or("—".into(), |v| format!("{v:.places$}"));
    let _ = writeln!(
        md,
        "Held-out bits per token: **{} before, {} after** ({} tokens of the held-out files above, never trained \
         on). {} ({} of {} parameters), {} iterations, {} tokens seen ({} epochs) on {}, {} s; stopped: {}.\n",
        fixed("held_out_bits_per_token_before", 4),
        fixed("held_out_bits_per_token_after", 4),
        fixed("held_out_tokens_scored", 0),
        text("method"),
        fixed("parameters_trained", 0),
        fixed("parameters_total", 0),
        fixed("iterations", 0),
        fixed("tokens_seen", 0),
        fixed("epochs", 2),
        text("device"),
        fixed("seconds", 0),
        text("stop_reason"),
    );
    let _ = writeln!(md, "## Copying\n");
    let _ = writeln!(
        md,
        "Phrases of {} bars ({} per temperature, the same seeds for both models) that repeat {} or more notes in a \
         row (same intervals and rhythm, any key) of any of the user's files:\n",
        plan.bars, plan.phrases, plan.run_notes
    );
    let _ = writeln!(md, "| temperature | fine-tuned | base model | longest run (fine-tuned, median) |");
    let _ = writeln!(md, "|---|---|---|---|");
    for &t in plan.temperatures {
        let of = |model: &str| copy_rates.iter().find(|r| r.model == model && r.temperature == t);
        if let (Some(tuned), Some(base)) = (of("fine-tuned"), of("base")) {
            let _ = writeln!(
                md,
                "| {t} | {}/{} | {}/{} | {} notes |",
                tuned.copies, tuned.phrases, base.copies, base.phrases, tuned.median_run
            );
        }
    }
    style_section(&mut md, measured);
    let _ = writeln!(
        md,
        "\nVocabulary hash `{}` (the shipped vocabulary).",
        data["vocab_hash"].as_str().unwrap_or_default()
    );
    md
}

/// How close each model's phrases come to the user's style.
fn style_section(md: &mut String, measured: &Measured) {
    use std::fmt::Write;
    let _ = writeln!(md, "\n## Style\n");
    let Some(style) = measured.style else {
        let _ = writeln!(md, "Not measured: no file was held out (one file only) and no `--compare` folder was given.");
        return;
    };
    let against = match measured.compare {
        Some(dir) => format!("files in `{}` (`--compare`)", dir.display()),
        None => "held-out files (marked in the table above)".to_string(),
    };
    let parts: Vec<&str> = style["parts"].as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
    let _ = writeln!(
        md,
        "Phrases at T = {STYLE_TEMPERATURE} against {} windows of {} bars from {} {against}, judged on the parts \
         the files have ({}). A classifier that cannot tell a model's phrases from the real windows scores 0.5; \
         cross-validated, grouped by file and phrase (`models/eval_style.py`, the eval's classifier test).\n",
        style["real_windows"],
        measured.copies.0.bars,
        style["real_files"],
        parts.join(", ")
    );
    let _ = writeln!(md, "| model | phrases | logistic regression | gradient boosting |");
    let _ = writeln!(md, "|---|---|---|---|");
    let models = style["models"].as_object().cloned().unwrap_or_default();
    for (name, model) in &models {
        let accuracy = |kind: &str| {
            let c = &model["classifier"][kind];
            match (c["accuracy"].as_f64(), c["ci"][0].as_f64(), c["ci"][1].as_f64()) {
                (Some(a), Some(low), Some(high)) => format!("{a:.2} ({low:.2}–{high:.2}, n = {})", c["n"]),
                _ => "too few phrases".to_string(),
            }
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} |",
            model["phrases"],
            accuracy("logistic regression"),
            accuracy("gradient boosting")
        );
    }
    for (name, model) in &models {
        let telling: Vec<String> = model["telling_features"]
            .as_array()
            .into_iter()
            .flatten()
            .take(4)
            .filter_map(|f| Some(format!("{} ({:+.2})", f[0].as_str()?, f[1].as_f64()?)))
            .collect();
        if !telling.is_empty() {
            let _ = writeln!(md, "\nWhat gives the {name} phrases away (logistic regression's largest standardized coefficients; positive = more typical of your files): {}.", telling.join(", "));
        }
    }
    let _ = writeln!(md, "\nPer-part metrics (means; the eval's definitions):\n");
    let names: Vec<&String> = models.keys().collect();
    let header: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let _ = writeln!(md, "| part | metric | your files | {} |", header.join(" | "));
    let _ = writeln!(md, "|---|---|---|{}", "---|".repeat(names.len()));
    let value = |v: &serde_json::Value| v.as_f64().map_or("—".to_string(), |x| format!("{x:.2}"));
    for part in &parts {
        for (metric, title) in style["metric_titles"].as_object().into_iter().flatten() {
            let cells: Vec<String> = names.iter().map(|n| value(&models[*n]["metrics"][part][metric])).collect();
            let _ = writeln!(
                md,
                "| {part} | {} | {} | {} |",
                title.as_str().unwrap_or(metric),
                value(&style["real_metrics"][part][metric]),
                cells.join(" | ")
            );
        }
    }
}

/// How the audio files became MIDI, when there were any.
fn transcription_section(md: &mut String, data: &serde_json::Value) {
    use std::fmt::Write;
    let report = data["transcription"].as_array().cloned().unwrap_or_default();
    if report.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Audio\n\nTranscribed with Spotify's Basic Pitch (its ONNX model, Apache-2.0) by `models/transcribe.py`; \
         the MIDI files are in `target/finetune/<name>/transcribed/`. The beat comes from librosa's beat tracker: \
         each file is written on the tracked beats, the first beat taken as a downbeat.\n\n**How the parts were \
         separated:** Basic Pitch hears a mix as one polyphonic line and does not tell instruments apart, so the \
         parts are split by pitch alone: the highest note sounding (at or above G3) is the lead, the lowest below \
         G3 the bass, the rest the arp; a file named for its part (`bass.wav`) is that part, and a folder of \
         such files is the stems of one song (one track each, on the beats of their sum). A lead that sits below a pad, or a bass above G3, ends up in the wrong part; on synthesized \
         songs whose parts are known, `cargo xtask transcription-check` measures how often (figures in \
         docs/RESULTS.md, *Your own music*). Notes per onset above 1.5 say the file is a mix, below it a single \
         line.\n"
    );
    let _ =
        writeln!(md, "| audio file | seconds | BPM found | notes heard | lowest–highest | notes per onset | result |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let files = data["files"].as_array().cloned().unwrap_or_default();
    for entry in &report {
        let t = &entry["transcription"];
        let file = entry["file"].as_str().unwrap_or_default();
        let result = match files.iter().find(|f| f["file"] == file) {
            Some(f) => {
                format!("lead / arp / bass {} / {} / {}", f["notes"]["lead"], f["notes"]["arp"], f["notes"]["bass"])
            }
            None if t["status"] == "ok" => "not usable after import (see Skipped)".to_string(),
            None => format!("skipped: {}", t["reason"].as_str().unwrap_or_default()),
        };
        let stems: Vec<String> = t["stems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(stem, notes)| format!("{stem} {notes}"))
            .chain(t["stems_left_out"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).map(String::from))
            .collect();
        let result = if stems.is_empty() { result } else { format!("{result}; stems: {}", stems.join(", ")) };
        if t["status"] == "ok" {
            let _ = writeln!(
                md,
                "| {file} | {} | {} | {} | {}–{} | {} | {result} |",
                t["seconds"], t["bpm"], t["notes"], t["lowest"], t["highest"], t["notes_per_onset"]
            );
        } else {
            let _ = writeln!(md, "| {file} | — | — | — | — | — | {result} |");
        }
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_files_are_held_out_by_position() {
        assert!(check_name("My Style 2").is_ok());
        assert!(check_name("../evil").is_err());
        assert!(check_name(".hidden").is_err());
        let held = |n: usize| (0..n).filter(|&i| is_held_out(i, n)).count();
        assert_eq!((held(1), held(2), held(4), held(5), held(21)), (0, 1, 1, 1, 4));
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trio-finetune-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bad_folders_and_files_are_listed_and_only_nothing_usable_stops() {
        let roles = RolesFile::default();
        let empty = temp_dir("empty");
        let error = read_folder(midi_sources(&empty).unwrap(), &roles, 8, 2).err().unwrap().to_string();
        assert!(error.contains("no usable MIDI or audio file"), "{error}");
        assert!(midi_sources(&empty.join("missing")).err().unwrap().to_string().contains("not a folder"));

        let mixed = temp_dir("mixed");
        let melody: Vec<(f64, f64, u8)> = (0..8).map(|i| (i as f64, 1.0, 60 + i as u8)).collect();
        std::fs::write(mixed.join("good.mid"), import::tests::midi_file(96, None, &[("Lead", None, 0, &melody)]))
            .unwrap();
        std::fs::write(mixed.join("silence.wav"), [0u8; 64]).unwrap();
        // A 50 MB file is refused by its size before it is read.
        std::fs::File::create(mixed.join("huge.mid")).unwrap().set_len(50 << 20).unwrap();
        std::fs::create_dir_all(mixed.join("sub")).unwrap();
        std::fs::write(mixed.join("sub/broken.MID"), b"MThd garbage").unwrap();
        let folder = read_folder(midi_sources(&mixed).unwrap(), &roles, 8, 2).unwrap();
        assert_eq!(folder.usable().iter().map(|u| u.0).collect::<Vec<_>>(), ["good.mid"]);
        let skipped = folder.skipped();
        assert!(skipped.iter().any(|(f, r)| *f == "huge.mid" && r.contains("too large (52.4 MB")), "{skipped:?}");
        assert!(skipped.iter().any(|(f, r)| *f == "sub/broken.MID" && r.contains("not a readable")), "{skipped:?}");
        assert_eq!(folder.others, 1);
    }

    #[test]
    fn a_folder_of_ten_thousand_files_is_read() {
        let many = temp_dir("many");
        let melody: Vec<(f64, f64, u8)> = (0..4).map(|i| (i as f64, 1.0, 67 + i as u8)).collect();
        let file = import::tests::midi_file(96, None, &[("Lead", None, 0, &melody)]);
        for i in 0..10_000 {
            std::fs::write(many.join(format!("{i:05}.mid")), &file).unwrap();
        }
        let started = Instant::now();
        let folder = read_folder(midi_sources(&many).unwrap(), &RolesFile::default(), 8, 2).unwrap();
        assert_eq!(folder.usable().len(), 10_000);
        assert!(started.elapsed().as_secs_f64() < 30.0, "reading took {:?}", started.elapsed());
        std::fs::remove_dir_all(&many).unwrap();
    }
}

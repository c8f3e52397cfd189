//! `cargo xtask finetune --midi DIR --name NAME`: teaches the trio a producer's own music. Reads
//! every MIDI file under DIR (`import`), completes the parts a file lacks with the base model
//! (`complete`), fine-tunes the base model on them (`models/finetune.py`), measures how often the
//! result copies the user's files (`copies`), and writes `NAME.onnx` with its model card `NAME.md`
//! into the user's models folder, where the plugin's Model selector finds it.

mod complete;
mod copies;
mod import;
mod roles;

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

  --midi DIR        every .mid/.midi file under DIR (format 0 and 1, any resolution)
  --name NAME       the model's name in the plugin's Model selector (letters, digits, space, - _ .)
  --minutes M       training budget (default 10); it stops earlier when held-out loss stops improving
  --epochs E        or at most E passes over the data
  --device D        cpu, cuda or auto (default auto: a GPU when there is one)
  --from MODEL      the model to start from: a .onnx path or a name in the models folder
                    (default: the shipped trio-base)
  --roles FILE      which track plays what, per file (see the README: Your own music)
  --models-dir DIR  where the model goes (default: the plugin's user models folder)
  --force           replace a model of the same name
  --seed N          (default 1)
  --quick           a smoke run for tests: files cut to 8 bars, 2 short phrases per copy measurement
";

/// Files larger than this are skipped: a 16 MB MIDI file is hours of dense music, not a song.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Semitone shifts each training song is learned in (as the base model's data).
const TRANSPOSITIONS: std::ops::RangeInclusive<i32> = -6..=5;
/// Every fifth usable file is held out to measure the fine-tune (at least one, with two or more).
const HELD_OUT_EVERY: usize = 5;
/// Temperatures of the copy measurement, and phrases and bars per temperature.
const COPY_TEMPERATURES: [f32; 3] = [0.7, 1.0, 1.3];
const COPY_PHRASES: usize = 12;
const COPY_BARS: u32 = 8;
/// `--quick`: bars kept of each file.
const QUICK_BARS: u32 = 8;
/// A generated phrase "copies" when it shares this many notes in a row with a user's file.
const COPY_RUN_NOTES: usize = 16;

struct Args {
    midi: PathBuf,
    name: String,
    minutes: f64,
    epochs: Option<f64>,
    device: String,
    from: Option<String>,
    roles: Option<PathBuf>,
    models_dir: Option<PathBuf>,
    force: bool,
    seed: u32,
    quick: bool,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut parsed = Args {
        midi: PathBuf::new(),
        name: String::new(),
        minutes: 10.0,
        epochs: None,
        device: "auto".into(),
        from: None,
        roles: None,
        models_dir: None,
        force: false,
        seed: 1,
        quick: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().cloned().with_context(|| format!("{flag} needs a value\n\n{USAGE}"));
        match flag.as_str() {
            "--midi" => parsed.midi = value()?.into(),
            "--name" => parsed.name = value()?,
            "--minutes" => parsed.minutes = value()?.parse().context("--minutes takes a number")?,
            "--epochs" => parsed.epochs = Some(value()?.parse().context("--epochs takes a number")?),
            "--device" => parsed.device = value()?,
            "--from" => parsed.from = Some(value()?),
            "--roles" => parsed.roles = Some(value()?.into()),
            "--models-dir" => parsed.models_dir = Some(value()?.into()),
            "--force" => parsed.force = true,
            "--quick" => parsed.quick = true,
            "--seed" => parsed.seed = value()?.parse().context("--seed takes a whole number")?,
            "--audio" => bail!(
                "--audio is not available in this release: transcribe your audio to MIDI first (for example with \
                 Spotify's Basic Pitch) and pass the folder with --midi"
            ),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option '{other}'\n\n{USAGE}"),
        }
    }
    if parsed.midi.as_os_str().is_empty() || parsed.name.is_empty() {
        bail!("--midi and --name are required\n\n{USAGE}");
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

    // 1. Read the folder.
    println!("== reading MIDI files under {}", args.midi.display());
    let bars_kept = if args.quick { QUICK_BARS } else { import::MAX_BARS };
    let folder = read_folder(&args.midi, &roles, bars_kept, threads)?;
    let (usable, skipped, not_midi) = (folder.usable(), folder.skipped(), folder.not_midi);

    // 2. Hold some files out, complete the missing parts, encode.
    let held_out: Vec<bool> = (0..usable.len()).map(|i| is_held_out(i, usable.len())).collect();
    let work_dir = PathBuf::from("target/finetune").join(&args.name);
    std::fs::create_dir_all(&work_dir)?;
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
    let data = data_summary(&usable, &held_out, &completed, &skipped, not_midi, train.len(), valid.len());
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
        phrases: if args.quick { 2 } else { COPY_PHRASES },
        bars: if args.quick { 2 } else { COPY_BARS },
        run_notes: COPY_RUN_NOTES,
        tempo_bin,
        seed: args.seed,
    };
    let models = [("fine-tuned", trained.as_path()), ("base", base.as_path())];
    let copy_rates = copies::measure(&index, &library, models, &plan, threads)?;

    // 5. Into the models folder, with its card.
    std::fs::create_dir_all(&models_dir)
        .with_context(|| format!("cannot make the models folder {}", models_dir.display()))?;
    std::fs::copy(&trained, &out_model).with_context(|| format!("cannot write {}", out_model.display()))?;
    let card = card(&args, &base, &data, &figures, (&plan, &copy_rates), started.elapsed().as_secs_f64());
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

/// The files of the user's folder, read: at least one usable.
struct Folder {
    files: Vec<FileResult>,
    not_midi: usize,
}

impl Folder {
    fn usable(&self) -> Vec<(&str, &Imported)> {
        self.files.iter().filter_map(|r| r.song.as_ref().ok().map(|s| (r.relative.as_str(), s))).collect()
    }

    fn skipped(&self) -> Vec<(&str, &str)> {
        self.files.iter().filter_map(|r| r.song.as_ref().err().map(|e| (r.relative.as_str(), e.as_str()))).collect()
    }
}

/// Reads every MIDI file under `dir`, listing what it skips and why; an error only when nothing is
/// usable.
fn read_folder(dir: &Path, roles: &RolesFile, bars_kept: u32, threads: usize) -> Result<Folder> {
    let (paths, not_midi) = list_files(dir)?;
    let files: Vec<FileResult> = pool::map(&paths, threads, |path| read_file(dir, path, roles, bars_kept));
    let folder = Folder { files, not_midi };
    let skipped = folder.skipped();
    for (file, reason) in &skipped {
        println!("  skipped {file}: {reason}");
    }
    if not_midi > 0 {
        println!("  skipped {not_midi} files that are not MIDI (.mid, .midi)");
    }
    let usable = folder.usable().len();
    if usable == 0 {
        bail!(
            "no usable MIDI file under {} ({} MIDI files skipped, {not_midi} other files): nothing to learn from",
            dir.display(),
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

/// Every file under `dir` (recursively, sorted): the MIDI files, and how many others there were.
fn list_files(dir: &Path) -> Result<(Vec<PathBuf>, usize)> {
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
            } else if matches!(extension.as_deref(), Some("mid" | "midi")) {
                midi.push(path);
            } else {
                others += 1;
            }
        }
    }
    midi.sort();
    Ok((midi, others))
}

fn read_file(root: &Path, path: &Path, roles: &RolesFile, bars_kept: u32) -> FileResult {
    let relative = path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
    let song = (|| {
        let size = std::fs::metadata(path).map_err(|e| format!("cannot read it ({e})"))?.len();
        if size > MAX_FILE_BYTES {
            return Err(format!("too large ({:.1} MB; at most {} MB)", size as f64 / 1e6, MAX_FILE_BYTES >> 20));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it ({e})"))?;
        import::import(&bytes, &relative, roles).map(|song| song.first_bars(bars_kept))
    })();
    FileResult { relative, song }
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
    skipped: &[(&str, &str)],
    not_midi: usize,
    train_tokens: usize,
    valid_tokens: usize,
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
            "the user's own MIDI: {} files ({} held out), {} bars; parts completed by the base model in {} of them",
            usable.len(),
            held_out.iter().filter(|&&h| h).count(),
            usable.iter().map(|(_, s)| s.phrase.bars).sum::<u32>(),
            completed_files
        ),
        "files": files,
        "skipped": skipped.iter().map(|(file, reason)| json!({"file": file, "reason": reason})).collect::<Vec<_>>(),
        "other_files": not_midi,
        "train_tokens": train_tokens,
        "valid_tokens": valid_tokens,
        "vocab_hash": vocab_hash(),
    })
}

/// The model card: what it learned from, how, and what it does.
fn card(
    args: &Args,
    base: &Path,
    data: &serde_json::Value,
    figures: &serde_json::Value,
    (plan, copy_rates): (&copies::Plan, &[copies::Rate]),
    seconds: f64,
) -> String {
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
            let _ = writeln!(md, "- {n} files that are not MIDI");
        }
    }
    let _ = writeln!(
        md,
        "\nParts a file lacks were written by the base model around the file's own parts (its notes and, where it \
         has an accompaniment, its chords forced), so the fine-tuned model still writes all three; every training \
         file is learned in 12 transpositions, held-out files as they are. How a file was read (voices, skyline, \
         key and chord estimates) is in the README, *Your own music*.\n"
    );
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
    let _ = writeln!(
        md,
        "\nVocabulary hash `{}` (the shipped vocabulary).",
        data["vocab_hash"].as_str().unwrap_or_default()
    );
    md
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
        let error = read_folder(&empty, &roles, 8, 2).err().unwrap().to_string();
        assert!(error.contains("no usable MIDI file"), "{error}");
        assert!(read_folder(&empty.join("missing"), &roles, 8, 2).err().unwrap().to_string().contains("not a folder"));

        let mixed = temp_dir("mixed");
        let melody: Vec<(f64, f64, u8)> = (0..8).map(|i| (i as f64, 1.0, 60 + i as u8)).collect();
        std::fs::write(mixed.join("good.mid"), import::tests::midi_file(96, None, &[("Lead", None, 0, &melody)]))
            .unwrap();
        std::fs::write(mixed.join("silence.wav"), [0u8; 64]).unwrap();
        // A 50 MB file is refused by its size before it is read.
        std::fs::File::create(mixed.join("huge.mid")).unwrap().set_len(50 << 20).unwrap();
        std::fs::create_dir_all(mixed.join("sub")).unwrap();
        std::fs::write(mixed.join("sub/broken.MID"), b"MThd garbage").unwrap();
        let folder = read_folder(&mixed, &roles, 8, 2).unwrap();
        assert_eq!(folder.usable().iter().map(|u| u.0).collect::<Vec<_>>(), ["good.mid"]);
        let skipped = folder.skipped();
        assert!(skipped.iter().any(|(f, r)| *f == "huge.mid" && r.contains("too large (52.4 MB")), "{skipped:?}");
        assert!(skipped.iter().any(|(f, r)| *f == "sub/broken.MID" && r.contains("not a readable")), "{skipped:?}");
        assert_eq!(folder.not_midi, 1);
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
        let folder = read_folder(&many, &RolesFile::default(), 8, 2).unwrap();
        assert_eq!(folder.usable().len(), 10_000);
        assert!(started.elapsed().as_secs_f64() < 30.0, "reading took {:?}", started.elapsed());
        std::fs::remove_dir_all(&many).unwrap();
    }
}

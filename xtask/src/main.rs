//! `cargo xtask <command>`: every build, data, training and measuring job of Neural Trio.

mod bench;
mod bundle;
mod dataset;
mod display;
mod eval;
mod finetune;
mod pool;
mod pop909;
mod python;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask <command>

  demo                 bundle, then render 16 bars at 128 BPM through the .clap into target/demo/ (Pop) and target/demo/dance/
  test                 every test: Rust units, Python model tests, headless-host plugin tests
  bundle neural_trio [--release] [--gpu]
                       build target/bundled/neural_trio.{clap,vst3} with ONNX Runtime and the model
                       (--gpu: the onnxruntime-gpu build with its CUDA provider, about 300 MB)
  install              copy the bundles to ~/.clap and ~/.vst3
  onnxruntime          fetch libonnxruntime from the onnxruntime PyPI wheel into target/onnxruntime/
  bench                performance figures through the built plugin: target/bench/report.md, docs/RESULTS.md
  eval [--quick]       musical evaluation against held-out POP909: target/eval/report.md, docs/RESULTS.md
  vocab                write models/vocab.json from the Rust vocabulary
  dataset              build target/dataset/ from ../shared/datasets/pop909
  venv                 create models/.venv from models/requirements.txt
  train [args]         train a model (models/train.py; --help for its options)
  export [args]        export a checkpoint to models/trio-base.onnx (models/export.py)
  finetune --midi DIR --name NAME [options]
                       teach the trio your own music: a fine-tuned model in the plugin's models folder
                       (--help for the options; --audio DIR for wav/mp3/flac, transcribed with Basic Pitch)
  transcription-check [--songs N]
                       how well --audio's transcription separates parts, on POP909 songs rendered to audio
";

fn main() -> Result<()> {
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match command.as_str() {
        "bundle" => bundle::bundle(&rest),
        "install" => bundle::install(),
        "onnxruntime" => bundle::fetch_onnxruntime(bundle::Runtime::Cpu).map(|_| ()),
        "vocab" => write_vocab(),
        "dataset" => dataset::run(&rest),
        "venv" => python::ensure_venv().map(|_| ()),
        "demo" => demo(&rest),
        "bench" => bench::run(&rest),
        "eval" => eval::run(&rest),
        "test" => test(&rest),
        "train" => python::run_script("train.py", &rest),
        "export" => python::run_script("export.py", &rest),
        "finetune" => finetune::run(&rest),
        "transcription-check" => finetune::transcription_check(&rest),
        "" | "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command '{other}'\n\n{USAGE}"),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Runs a command and fails with its name if it fails.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("could not start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

const RELEASE_BUNDLE: &str = "target/bundled/neural_trio.clap";
const ALLOC_CHECK_DIR: &str = "target/alloc-check";

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn bundle_release() -> Result<()> {
    bundle::bundle(&["neural_trio".into(), "--release".into()])
}

/// `cargo xtask demo`: bundle, then render 16 bars at 128 BPM through the .clap in the headless host, in Pop and in Dance.
fn demo(args: &[String]) -> Result<()> {
    if !Path::new(bundle::MODEL).exists() {
        bail!("{} is missing: train and export a model first (cargo xtask train; cargo xtask export)", bundle::MODEL);
    }
    bundle_release()?;
    let render = |out: &str, extra: &[String]| {
        run(cargo()
            .args(["run", "--release", "-q", "-p", "trio_tests", "--bin", "trio-render", "--"])
            .args(["--plugin", RELEASE_BUNDLE, "--bars", "16", "--bpm", "128", "--out", out])
            .args(extra))
    };
    // The default settings (Pop), then the same seed in the Dance style; arguments go to both.
    render("target/demo", args)?;
    let dance: Vec<String> =
        ["--param", "Style=Dance"].iter().map(|a| a.to_string()).chain(args.iter().cloned()).collect();
    render("target/demo/dance", &dance)
}

/// A debug build with `assert_process_allocs`, bundled under `target/alloc-check/` with its resources.
fn build_alloc_check_bundle() -> Result<()> {
    run(cargo().args(["build", "-p", "neural_trio", "--features", "assert_process_allocs"]))?;
    let dir = Path::new(ALLOC_CHECK_DIR);
    std::fs::create_dir_all(dir.join("neural_trio"))?;
    std::fs::copy("target/debug/libneural_trio.so", dir.join("neural_trio.clap"))?;
    for file in std::fs::read_dir("target/bundled/neural_trio")? {
        let file = file?;
        std::fs::copy(file.path(), dir.join("neural_trio").join(file.file_name()))?;
    }
    Ok(())
}

/// `cargo xtask test`: every test. Rust unit tests, the Python model tests, then the headless-host
/// tests against the release bundle and the allocation-checking debug bundle.
fn test(_args: &[String]) -> Result<()> {
    write_vocab()?;
    bundle_release()?;
    build_alloc_check_bundle()?;
    let python = python::ensure_venv()?;
    // Habits made mechanical: each check counts as one test.
    println!("== Checks: cargo fmt --check, cargo clippy -D warnings, ruff check models/");
    let mut counts = (0, 0);
    let checks: [(&str, Command); 3] = [
        ("cargo fmt --check", {
            let mut c = cargo();
            c.args(["fmt", "--all", "--check"]);
            c
        }),
        ("cargo clippy -D warnings", {
            let mut c = cargo();
            c.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
            c
        }),
        ("ruff check models/", {
            let mut c = Command::new(&python);
            c.args(["-m", "ruff", "check", "models/"]);
            c
        }),
    ];
    for (name, mut command) in checks {
        match run(&mut command) {
            Ok(()) => {
                println!("check {name}: ok");
                counts.0 += 1;
            }
            Err(e) => {
                println!("check {name}: FAILED: {e:#}");
                counts.1 += 1;
            }
        }
    }
    println!("== Python model tests");
    let pytest = run_counting(Command::new(&python).args(["-m", "pytest", "-q", "models/tests"]))?;
    counts.0 += pytest.0;
    counts.1 += pytest.1;
    println!("== Fine-tune smoke runs (cargo xtask finetune --quick on POP909 files: all parts, and lead only)");
    let finetuned = finetune_smoke(&mut counts);
    // Without a display only the editor test can fail: say why and run every other test.
    let display = match display::virtual_display() {
        Ok(display) => {
            println!("== Rust unit and headless-host tests (editor on DISPLAY {})", display.display);
            Some(display)
        }
        Err(e) => {
            println!("check X display for the editor test: FAILED: {e:#}");
            counts.1 += 1;
            println!("== Rust unit and headless-host tests (no display)");
            None
        }
    };
    let rust = run_counting(
        cargo()
            // The end-to-end tests are #[ignore]d for a plain `cargo test` (they need the bundle and
            // ONNX Runtime, which this command has just built): run them too.
            // Every test binary runs even when one fails, so one failure hides no other.
            .args(["test", "--release", "--workspace", "--no-fail-fast", "--", "--include-ignored"])
            .env("DISPLAY", display.as_ref().map_or("", |d| d.display.as_str()))
            .env("TRIO_CLAP", RELEASE_BUNDLE)
            .env("TRIO_ALLOC_CLAP", Path::new(ALLOC_CHECK_DIR).join("neural_trio.clap"))
            .envs(finetuned.map(|dir| ("TRIO_FINETUNED_MODELS", dir))),
    )?;
    drop(display);
    counts.0 += rust.0;
    counts.1 += rust.1;

    // The two measuring commands at CI size: each counts as one test that passes when it runs
    // through and writes its report (the figures are reported, never asserted).
    println!("== Measuring commands, quick (cargo xtask bench --quick, cargo xtask eval --quick)");
    let quick = ["--quick".to_string()];
    let mut measures: Vec<(&str, Result<()>, &str, &str)> =
        vec![("bench --quick", bench::run(&quick), "target/bench-quick/report.md", "process(), 64-frame blocks")];
    // The evaluation compares with held-out POP909 songs: without the data set there is nothing to
    // compare with, which is said, not counted as a pass.
    let pop909 = dataset::default_source();
    if pop909.is_dir() {
        measures.push(("eval --quick", quick_eval(), "target/eval-quick/report.md", "## Turing-test proxy"));
    } else {
        println!("measure eval --quick: SKIPPED: no POP909 at {} (see ../shared/datasets/README.md)", pop909.display());
    }
    for (name, result, report, expected) in measures {
        let report_ok = std::fs::read_to_string(report).is_ok_and(|text| text.contains(expected));
        match result {
            Ok(()) if report_ok => {
                println!("measure {name}: ok ({report})");
                counts.0 += 1;
            }
            Ok(()) => {
                println!("measure {name}: FAILED ({report} lacks \"{expected}\")");
                counts.1 += 1;
            }
            Err(e) => {
                println!("measure {name}: FAILED: {e:#}");
                counts.1 += 1;
            }
        }
    }
    println!("all tests: {} passed, {} failed", counts.0, counts.1);
    if counts.1 > 0 {
        bail!("{} test(s) failed", counts.1);
    }
    Ok(())
}

/// Where the smoke runs put their models, for the headless-host tests that play them.
const FINETUNED_MODELS: &str = "target/test-models";

/// Three tiny fine-tunes on four POP909 files, each counted as a test that passes when it writes its
/// model and card: all parts, lead only (a roles file leaves the piano out, so the base model
/// writes arp and bass), and from audio (two songs rendered to audio, and a silent file that must be
/// skipped). Returns the models' folder when all were made.
fn finetune_smoke(counts: &mut (u64, u64)) -> Option<PathBuf> {
    let songs = dataset::default_source();
    if !songs.is_dir() {
        println!("finetune smoke: SKIPPED: no POP909 at {} (see ../shared/datasets/README.md)", songs.display());
        return None;
    }
    let fixture = Path::new("target/finetune-fixture");
    let mut ok = true;
    for (name, roles) in [("tiny-all", None), ("tiny-lead", Some("BRIDGE=skip PIANO=skip")), ("tiny-audio", None)] {
        let result = (|| -> Result<()> {
            let dir = fixture.join(name);
            std::fs::create_dir_all(&dir)?;
            if name == "tiny-audio" {
                return audio_smoke(&songs, &dir, name);
            }
            let mut roles_text = String::new();
            for song in ["001", "002", "003", "004"] {
                std::fs::copy(songs.join(song).join(format!("{song}.mid")), dir.join(format!("{song}.mid")))?;
                roles_text += &format!("{song}.mid {}\n", roles.unwrap_or_default());
            }
            let mut args: Vec<String> =
                ["--midi", &dir.to_string_lossy(), "--name", name, "--models-dir", FINETUNED_MODELS]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            args.extend(["--minutes", "0.2", "--device", "cpu", "--quick", "--force"].map(String::from));
            if roles.is_some() {
                let roles_file = fixture.join(format!("{name}-roles.txt"));
                std::fs::write(&roles_file, roles_text)?;
                args.extend(["--roles".to_string(), roles_file.to_string_lossy().to_string()]);
            }
            finetune::run(&args)?;
            let card = std::fs::read_to_string(Path::new(FINETUNED_MODELS).join(format!("{name}.md")))?;
            if !card.contains("Held-out bits per token") {
                bail!("the model card lacks its training figures");
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                println!("finetune {name}: ok");
                counts.0 += 1;
            }
            Err(e) => {
                println!("finetune {name}: FAILED: {e:#}");
                counts.1 += 1;
                ok = false;
            }
        }
    }
    ok.then(|| std::fs::canonicalize(FINETUNED_MODELS).ok()).flatten()
}

/// `cargo xtask finetune --audio` on two POP909 songs rendered to 20 s of audio and a silent file.
fn audio_smoke(songs: &Path, dir: &Path, name: &str) -> Result<()> {
    let python = python::ensure_venv()?;
    for song in ["001", "002"] {
        run(Command::new(&python)
            .args(["models/transcribe.py", "synthesize", "--seconds", "20", "--midi"])
            .arg(songs.join(song).join(format!("{song}.mid")))
            .arg("--wav")
            .arg(dir.join(format!("{song}.wav"))))?;
    }
    // A second of digital silence: 16-bit mono PCM at 44.1 kHz, all zero.
    let (rate, samples) = (44_100u32, 44_100u32);
    let header: [&[u8]; 12] = [
        b"RIFF",
        &(36 + 2 * samples).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
        &rate.to_le_bytes(),
        &(2 * rate).to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &(2 * samples).to_le_bytes(),
    ];
    let mut silence = header.concat();
    silence.resize(silence.len() + 2 * samples as usize, 0);
    std::fs::write(dir.join("silence.wav"), silence)?;
    let dir = dir.to_string_lossy().to_string();
    let args = ["--audio", &dir, "--name", name, "--models-dir", FINETUNED_MODELS, "--minutes", "0.2"];
    let args: Vec<String> =
        args.iter().chain(&["--device", "cpu", "--quick", "--force"]).map(|s| s.to_string()).collect();
    finetune::run(&args)?;
    let card = std::fs::read_to_string(Path::new(FINETUNED_MODELS).join(format!("{name}.md")))?;
    for expected in ["## Audio", "| 001.wav |", "silence.wav | — | — | — | — | — | skipped: silence", "Held-out bits"]
    {
        if !card.contains(expected) {
            bail!("the model card lacks \"{expected}\"");
        }
    }
    Ok(())
}

/// `cargo xtask eval --quick`, building the token data set first if this checkout has none.
fn quick_eval() -> Result<()> {
    if !Path::new("target/dataset/manifest.json").exists() {
        dataset::run(&[])?;
    }
    eval::run(&["--quick".to_string()])
}

/// Runs a test command, echoing its output, and adds up the passed/failed counts its summary
/// lines report (cargo's "test result: … N passed; M failed", pytest's "N passed, M failed").
fn run_counting(command: &mut Command) -> Result<(u64, u64)> {
    use std::io::BufRead;
    let mut child =
        command.stdout(std::process::Stdio::piped()).spawn().with_context(|| format!("could not start {command:?}"))?;
    let mut counts = (0, 0);
    let number_before = |line: &str, word: &str| -> u64 {
        line.split([';', ','])
            .filter_map(|part| part.trim().strip_suffix(word))
            .filter_map(|n| n.trim().rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if line.starts_with("test result:") || line.contains(" passed") && line.contains(" in ") {
            let cleaned: String = line.split(" in ").next().unwrap_or("").replace('=', "");
            counts.0 += number_before(&cleaned, "passed");
            counts.1 += number_before(&cleaned, "failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(counts)
}

/// "Measured on <date> on <cpu>, <n> cores" for reports.
pub fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("Measured {date} on {cpu}, {cores} cores.")
}

/// Writes docs/RESULTS.md from the latest bench and eval sections (never typed by hand).
pub fn assemble_results() -> Result<()> {
    let mut doc = String::from(
        "# Results\n\nGenerated by `cargo xtask bench` and `cargo xtask eval`; do not edit by hand. Full reports:\n\
         `target/bench/report.md`, `target/eval/report.md`.\n\n",
    );
    let sections = [
        bench::section(),
        std::fs::read_to_string("target/eval/results-section.md").ok(),
        // A local experiment (its data may not ship), written up by hand.
        std::fs::read_to_string("docs/finetune-experiment.md").ok(),
    ];
    for section in sections {
        match section {
            Some(text) => doc.push_str(&text),
            None => doc.push_str("(not run yet on this checkout)\n"),
        }
        doc.push('\n');
    }
    std::fs::create_dir_all("docs")?;
    std::fs::write("docs/RESULTS.md", doc)?;
    println!("wrote docs/RESULTS.md");
    Ok(())
}

fn write_vocab() -> Result<()> {
    let path = Path::new("models/vocab.json");
    let text = serde_json::to_string_pretty(&neural_trio::music::vocab::vocab_json())? + "\n";
    std::fs::write(path, text)?;
    println!(
        "wrote {} ({} tokens, hash {})",
        path.display(),
        neural_trio::music::vocab::VOCAB_SIZE,
        neural_trio::music::vocab::vocab_hash()
    );
    Ok(())
}

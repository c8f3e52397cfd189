//! `cargo xtask <command>`: every build, data, training and measuring job of Neural Trio.

mod bundle;
mod dataset;
mod pop909;
mod python;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo xtask <command>

  demo                 bundle, then render 16 bars at 128 BPM through the .clap into target/demo/
  test                 every test: Rust units, Python model tests, headless-host plugin tests
  bundle neural_trio [--release]   build target/bundled/neural_trio.{clap,vst3} with ONNX Runtime and the model
  install              copy the bundles to ~/.clap and ~/.vst3
  onnxruntime          fetch libonnxruntime from the onnxruntime PyPI wheel into target/onnxruntime/
  vocab                write models/vocab.json from the Rust vocabulary
  dataset              build target/dataset/ from ../shared/datasets/pop909
  venv                 create models/.venv from models/requirements.txt
  train [args]         train a model (models/train.py; --help for its options)
  export [args]        export a checkpoint to models/trio-base.onnx (models/export.py)
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
        "onnxruntime" => bundle::fetch_onnxruntime().map(|_| ()),
        "vocab" => write_vocab(),
        "dataset" => dataset::run(&rest),
        "venv" => python::ensure_venv().map(|_| ()),
        "train" => python::run_script("train.py", &rest),
        "export" => python::run_script("export.py", &rest),
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

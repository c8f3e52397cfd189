//! Bundling: nice-plug-xtask builds `target/bundled/neural_trio.{clap,vst3}`; we then put ONNX
//! Runtime's library and the model where the plugin looks for them (see `plugin/src/generator/resources.rs`):
//! `target/bundled/neural_trio/` beside the .clap file, and `Contents/Resources/` inside the .vst3.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const ORT_VERSION: &str = "1.31.1";
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";
pub const MODEL: &str = "models/trio-base.onnx";
const BUNDLED: &str = "target/bundled";

/// `libonnxruntime.so.<version>` from the `onnxruntime` wheel, fetched once with pip and cached in
/// `target/onnxruntime/`.
pub fn fetch_onnxruntime() -> Result<PathBuf> {
    let dir = PathBuf::from("target/onnxruntime");
    let library = dir.join(ORT_LIBRARY);
    if library.exists() {
        return Ok(library);
    }
    std::fs::create_dir_all(&dir)?;
    println!("fetching onnxruntime=={ORT_VERSION} from PyPI");
    let python = if Command::new("python3").arg("--version").output().is_ok() { "python3" } else { "python" };
    crate::run(Command::new(python).args([
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        "target/onnxruntime/wheel",
        &format!("onnxruntime=={ORT_VERSION}"),
    ]))?;
    // A wheel is a zip file; Python's zipfile is always there, unlike `unzip`.
    let extract = format!(
        "import glob, zipfile, shutil\n\
         wheel = sorted(glob.glob('target/onnxruntime/wheel/onnxruntime-{ORT_VERSION}-*.whl'))[0]\n\
         with zipfile.ZipFile(wheel) as z:\n\
         \x20   name = [n for n in z.namelist() if n.endswith('/{ORT_LIBRARY}')][0]\n\
         \x20   with z.open(name) as src, open('{}', 'wb') as dst: shutil.copyfileobj(src, dst)\n",
        library.display()
    );
    crate::run(Command::new(python).args(["-c", &extract]))?;
    if !library.exists() {
        bail!("the onnxruntime wheel did not contain {ORT_LIBRARY}");
    }
    Ok(library)
}

/// `cargo xtask bundle neural_trio [--release] [cargo args]`.
pub fn bundle(args: &[String]) -> Result<()> {
    let library = fetch_onnxruntime()?;
    let mut bundle_args = vec!["bundle".to_string()];
    bundle_args.extend(args.iter().cloned());
    nice_plug_xtask::main_with_args("cargo xtask", bundle_args)?;
    std::env::set_current_dir(crate::workspace_root())?;
    place_resources(&library)
}

fn resource_dirs() -> [PathBuf; 2] {
    [
        Path::new(BUNDLED).join("neural_trio"),
        Path::new(BUNDLED).join("neural_trio.vst3/Contents/Resources"),
    ]
}

fn place_resources(library: &Path) -> Result<()> {
    for dir in resource_dirs() {
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(library, dir.join(ORT_LIBRARY)).with_context(|| format!("copying into {}", dir.display()))?;
        if Path::new(MODEL).exists() {
            std::fs::copy(MODEL, dir.join("trio-base.onnx"))?;
        } else {
            println!("warning: {MODEL} does not exist; the plugin will load but stay silent");
        }
    }
    println!("placed {ORT_LIBRARY} and the model beside the bundles in {BUNDLED}/");
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// `cargo xtask install`: copies the bundles (and their resources) to `~/.clap` and `~/.vst3`.
pub fn install() -> Result<()> {
    let bundled = Path::new(BUNDLED);
    if !bundled.join("neural_trio.clap").exists() {
        bail!("nothing to install: run `cargo xtask bundle neural_trio --release` first");
    }
    let home = PathBuf::from(std::env::var("HOME").context("HOME is not set")?);
    let clap_dir = home.join(".clap");
    std::fs::create_dir_all(&clap_dir)?;
    std::fs::copy(bundled.join("neural_trio.clap"), clap_dir.join("neural_trio.clap"))?;
    copy_dir(&bundled.join("neural_trio"), &clap_dir.join("neural_trio"))?;
    copy_dir(&bundled.join("neural_trio.vst3"), &home.join(".vst3/neural_trio.vst3"))?;
    println!("installed to {} and {}", clap_dir.display(), home.join(".vst3").display());
    Ok(())
}

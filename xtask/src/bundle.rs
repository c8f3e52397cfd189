//! Bundling: nice-plug-xtask builds `target/bundled/neural_trio.{clap,vst3}`; we then put ONNX
//! Runtime's library and the model where the plugin looks for them (see `plugin/src/generator/resources.rs`):
//! `target/bundled/neural_trio/` beside the .clap file, and `Contents/Resources/` inside the .vst3.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use neural_trio::generator::resources::{ORT_LIBRARY, ORT_VERSION};
pub const MODEL: &str = "models/trio-base.onnx";
const BUNDLED: &str = "target/bundled";

/// Which ONNX Runtime build a bundle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The `onnxruntime` wheel's CPU library (about 20 MB): the default.
    Cpu,
    /// The `onnxruntime-gpu` wheel's library with its CUDA provider (about 300 MB): `--gpu`.
    Gpu,
}

/// What the GPU build needs beside its main library: the provider bridge and the CUDA provider.
const GPU_PROVIDER_LIBRARIES: [&str; 2] = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"];

impl Runtime {
    fn package(self) -> &'static str {
        match self {
            Runtime::Cpu => "onnxruntime",
            Runtime::Gpu => "onnxruntime-gpu",
        }
    }

    fn dir(self) -> PathBuf {
        PathBuf::from("target").join(self.package())
    }

    fn libraries(self) -> Vec<&'static str> {
        match self {
            Runtime::Cpu => vec![ORT_LIBRARY],
            Runtime::Gpu => std::iter::once(ORT_LIBRARY).chain(GPU_PROVIDER_LIBRARIES).collect(),
        }
    }
}

/// The runtime's libraries, taken from its PyPI wheel (pinned to `ORT_VERSION`), fetched once with
/// pip and cached in `target/onnxruntime/` or `target/onnxruntime-gpu/`.
pub fn fetch_onnxruntime(runtime: Runtime) -> Result<Vec<PathBuf>> {
    let dir = runtime.dir();
    let libraries: Vec<PathBuf> = runtime.libraries().iter().map(|name| dir.join(name)).collect();
    if libraries.iter().all(|l| l.exists()) {
        return Ok(libraries);
    }
    std::fs::create_dir_all(&dir)?;
    let package = runtime.package();
    println!("fetching {package}=={ORT_VERSION} from PyPI");
    let python = if Command::new("python3").arg("--version").output().is_ok() { "python3" } else { "python" };
    let wheel_dir = dir.join("wheel");
    crate::run(
        Command::new(python)
            .args(["-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d"])
            .arg(&wheel_dir)
            .arg(format!("{package}=={ORT_VERSION}")),
    )?;
    // A wheel is a zip file; Python's zipfile is always there, unlike `unzip`.
    let names: Vec<String> = runtime.libraries().iter().map(|n| format!("'{n}'")).collect();
    let extract = format!(
        "import glob, os, zipfile, shutil\n\
         wheel = sorted(glob.glob('{wheels}/*-{ORT_VERSION}-*.whl'))[0]\n\
         with zipfile.ZipFile(wheel) as z:\n\
         \x20   for library in [{names}]:\n\
         \x20       name = [n for n in z.namelist() if n.endswith('/' + library)][0]\n\
         \x20       with z.open(name) as src, open(os.path.join('{dir}', library), 'wb') as dst: shutil.copyfileobj(src, dst)\n",
        wheels = wheel_dir.display(),
        names = names.join(", "),
        dir = dir.display(),
    );
    crate::run(Command::new(python).args(["-c", &extract]))?;
    if let Some(missing) = libraries.iter().find(|l| !l.exists()) {
        bail!("the {package} wheel did not contain {}", missing.display());
    }
    Ok(libraries)
}

/// `cargo xtask bundle neural_trio [--release] [--gpu] [cargo args]`.
pub fn bundle(args: &[String]) -> Result<()> {
    let runtime = if args.iter().any(|a| a == "--gpu") { Runtime::Gpu } else { Runtime::Cpu };
    let libraries = fetch_onnxruntime(runtime)?;
    let mut bundle_args = vec!["bundle".to_string()];
    bundle_args.extend(args.iter().filter(|a| *a != "--gpu").cloned());
    nice_plug_xtask::main_with_args("cargo xtask", bundle_args)?;
    std::env::set_current_dir(crate::workspace_root())?;
    place_resources(&libraries)
}

fn resource_dirs() -> [PathBuf; 2] {
    [Path::new(BUNDLED).join("neural_trio"), Path::new(BUNDLED).join("neural_trio.vst3/Contents/Resources")]
}

fn place_resources(libraries: &[PathBuf]) -> Result<()> {
    for dir in resource_dirs() {
        std::fs::create_dir_all(&dir)?;
        // A CPU bundle made after a GPU one must not keep the CUDA provider.
        for stale in GPU_PROVIDER_LIBRARIES {
            let _ = std::fs::remove_file(dir.join(stale));
        }
        for library in libraries {
            let name = library.file_name().context("a library has a file name")?;
            std::fs::copy(library, dir.join(name)).with_context(|| format!("copying into {}", dir.display()))?;
        }
        if Path::new(MODEL).exists() {
            std::fs::copy(MODEL, dir.join("trio-base.onnx"))?;
        } else {
            println!("warning: {MODEL} does not exist; the plugin will load but stay silent");
        }
    }
    let names: Vec<String> =
        libraries.iter().filter_map(|l| l.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    println!("placed {} and the model beside the bundles in {BUNDLED}/", names.join(", "));
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

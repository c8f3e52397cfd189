//! The Python side: a virtualenv made from the pinned `models/requirements.txt` (and
//! `models/requirements-nodeps.txt`, installed without dependencies), and the scripts in `models/`
//! run inside it.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Command;

pub const VENV: &str = "models/.venv";
/// Packages whose declared dependencies we replace with our own pins.
const NO_DEPS: &str = "models/requirements-nodeps.txt";

/// Path of the venv's python, creating the venv and installing the pinned requirements when the
/// requirements changed since the last install.
pub fn ensure_venv() -> Result<PathBuf> {
    let python = PathBuf::from(VENV).join("bin/python");
    let read = |path: &str| std::fs::read_to_string(path).with_context(|| format!("reading {path}"));
    let requirements = read("models/requirements.txt")? + &read(NO_DEPS)?;
    let stamp = PathBuf::from(VENV).join("requirements.installed");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(requirements.as_str()) {
        return Ok(python);
    }
    if !python.exists() {
        let system_python = if which("python3") { "python3" } else { "python" };
        println!("creating {VENV} with {system_python}");
        crate::run(Command::new(system_python).args(["-m", "venv", VENV]))?;
    }
    println!("installing models/requirements.txt into {VENV} (torch is about 3 GB the first time)");
    crate::run(Command::new(&python).args(["-m", "pip", "install", "-q", "--upgrade", "pip"]))?;
    crate::run(Command::new(&python).args(["-m", "pip", "install", "-q", "-r", "models/requirements.txt"]))?;
    crate::run(Command::new(&python).args(["-m", "pip", "install", "-q", "--no-deps", "-r", NO_DEPS]))?;
    std::fs::write(&stamp, requirements)?;
    Ok(python)
}

fn which(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}

/// Runs `models/<script>` with the venv's python from the workspace root.
pub fn run_script(script: &str, args: &[String]) -> Result<()> {
    let python = ensure_venv()?;
    crate::run(Command::new(python).arg(PathBuf::from("models").join(script)).args(args))
}

//! The editor test needs an X display. `cargo xtask test` provides one: it installs the Debian
//! packages in `.ci/apt-packages.txt` that are missing (when it can: root with apt-get), and starts
//! Xvfb for the duration of the tests unless a DISPLAY is already set.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn missing_packages() -> Result<Vec<String>> {
    let list = std::fs::read_to_string(".ci/apt-packages.txt").context("reading .ci/apt-packages.txt")?;
    let mut missing = Vec::new();
    for package in list.split_whitespace().filter(|p| !p.starts_with('#')) {
        let installed = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
            .unwrap_or(false);
        if !installed {
            missing.push(package.to_string());
        }
    }
    Ok(missing)
}

/// Installs the editor test's system packages if any are missing.
pub fn ensure_packages() -> Result<()> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    if !is_root {
        bail!("the editor test needs these Debian packages: sudo apt-get install {}", missing.join(" "));
    }
    println!("installing {} for the editor test", missing.join(" "));
    crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// A virtual display that lives as long as this value.
pub struct VirtualDisplay {
    child: Option<Child>,
    pub display: String,
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM, not SIGKILL: Xvfb then removes its socket and lock file, which a killed one
            // leaves behind in /tmp for the next run to step around.
            let terminated = Command::new("kill").arg(child.id().to_string()).status().is_ok_and(|s| s.success());
            if !terminated {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// The DISPLAY to test on: the caller's, or a fresh Xvfb (depth 24, which egui's GL needs).
/// Xvfb picks a free display number itself (`-displayfd`) and writes it once it accepts clients,
/// so stale sockets and locks left in /tmp by earlier runs are not in the way.
pub fn virtual_display() -> Result<VirtualDisplay> {
    if let Ok(display) = std::env::var("DISPLAY") {
        if !display.is_empty() {
            return Ok(VirtualDisplay { child: None, display });
        }
    }
    ensure_packages()?;
    std::fs::create_dir_all("target").context("creating target/")?;
    let log_path = "target/xvfb.log";
    let log = std::fs::File::create(log_path).with_context(|| format!("creating {log_path}"))?;
    let mut child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("starting Xvfb")?;
    let mut number = String::new();
    let stdout = child.stdout.take().context("Xvfb's stdout")?;
    // Blocks until Xvfb is ready (it writes the number) or exits (end of file).
    BufReader::new(stdout).read_line(&mut number).context("reading Xvfb's display number")?;
    let number = number.trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        let _ = child.kill();
        let _ = child.wait();
        let said = std::fs::read_to_string(log_path).unwrap_or_default();
        bail!("could not start Xvfb; it said:\n{}", said.trim());
    }
    Ok(VirtualDisplay { display: format!(":{number}"), child: Some(child) })
}

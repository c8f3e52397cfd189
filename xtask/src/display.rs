//! The editor test needs an X display. `cargo xtask test` provides one: it installs the Debian
//! packages in `.ci/apt-packages.txt` that are missing (when it can: root with apt-get), and starts
//! Xvfb for the duration of the tests unless a DISPLAY is already set.

use anyhow::{bail, Context, Result};
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
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The DISPLAY to test on: the caller's, or a fresh Xvfb (depth 24, which egui's GL needs).
pub fn virtual_display() -> Result<VirtualDisplay> {
    if let Ok(display) = std::env::var("DISPLAY") {
        if !display.is_empty() {
            return Ok(VirtualDisplay { child: None, display });
        }
    }
    ensure_packages()?;
    for number in 90..110 {
        if std::path::Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
            continue;
        }
        let display = format!(":{number}");
        let child = Command::new("Xvfb")
            .args([display.as_str(), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Xvfb")?;
        let socket = format!("/tmp/.X11-unix/X{number}");
        for _ in 0..100 {
            if std::path::Path::new(&socket).exists() {
                return Ok(VirtualDisplay { child: Some(child), display });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let mut child = child;
        let _ = child.kill();
    }
    bail!("could not start Xvfb")
}

//! `cargo xtask dataset`: POP909 → token arrays. (Being written.)

use anyhow::{bail, Result};

pub fn run(_args: &[String]) -> Result<()> {
    bail!("the dataset builder is not written yet")
}

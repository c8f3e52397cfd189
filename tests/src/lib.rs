//! Headless CLAP host and test helpers for Neural Trio.
//!
//! - [`host`]: load a `.clap`, create the plugin, choose layout and render mode, activate, process
//!   blocks with a controlled transport and parameter events, save/load state, list parameters.
//! - [`timeline`]: builds the block list (play, stop, seek, loop, tempo changes, param changes).
//! - [`events`]: collected note events, notes, and the invariant checks.
//! - [`render`]: the `trio-render` tool as a library (render N bars, write MIDI files, report).
//!
//! Running the integration tests (tests/tests/*.rs) against the built bundle:
//!
//! ```text
//! cargo xtask bundle neural_trio --release          # target/bundled/neural_trio.clap + resources
//! cargo test --release -p trio_tests                # TRIO_CLAP overrides the bundle path
//! TRIO_ALLOC_CLAP=... cargo test --release -p trio_tests --test alloc_check
//! ```
//!
//! A missing bundle fails the tests with these instructions; nothing is skipped silently.
//! `TRIO_HOST_LOG=1` echoes what the plugin sends through the host's log extension.

pub mod events;
pub mod gui;
pub mod host;
pub mod render;
pub mod timeline;

pub use events::{check, Analysis, BlockRecord, Note, NoteEvent};
pub use host::{HostOptions, InitialParam, InputSignal, Layout, RenderMode, RunResult, TrioHost};
pub use timeline::{BlockSpec, ParamChange, Timeline, TransportState};

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests crate lives inside the workspace").to_path_buf()
}

fn resolve(env_var: &str, default_rel: &str) -> PathBuf {
    match std::env::var_os(env_var) {
        Some(p) => {
            let p = PathBuf::from(p);
            if p.is_relative() && !p.exists() {
                // `cargo test` runs in the crate directory; accept paths relative to the workspace.
                let w = workspace_root().join(&p);
                if w.exists() {
                    return w;
                }
            }
            p
        }
        None => workspace_root().join(default_rel),
    }
}

/// The release bundle under test: `$TRIO_CLAP`, default `<workspace>/target/bundled/neural_trio.clap`.
pub fn trio_clap_path() -> PathBuf {
    resolve("TRIO_CLAP", "target/bundled/neural_trio.clap")
}

/// The `assert_process_allocs` debug bundle: `$TRIO_ALLOC_CLAP`, default
/// `<workspace>/target/alloc-check/neural_trio.clap`.
pub fn alloc_clap_path() -> PathBuf {
    resolve("TRIO_ALLOC_CLAP", "target/alloc-check/neural_trio.clap")
}

/// The bundle under test; panics (fails the test) with instructions when it is missing.
pub fn require_trio_clap() -> PathBuf {
    let p = trio_clap_path();
    assert!(
        p.is_file(),
        "Neural Trio bundle not found at {} (set TRIO_CLAP to override).\n\
         Build it first: `cargo xtask bundle neural_trio --release` (run in {}).",
        p.display(),
        workspace_root().display()
    );
    p
}

/// The alloc-check bundle; panics with instructions when it is missing.
pub fn require_alloc_clap() -> PathBuf {
    let p = alloc_clap_path();
    assert!(
        p.is_file(),
        "assert_process_allocs bundle not found at {} (set TRIO_ALLOC_CLAP to override).\n\
         It is a debug build of the plugin with the `assert_process_allocs` feature, bundled to \
         target/alloc-check/neural_trio.clap with its resources in target/alloc-check/neural_trio/ \
         (the lead's xtask produces it; see xtask --help).",
        p.display()
    );
    p
}

/// The resource folder that sits beside a bundle (`neural_trio.clap` → `neural_trio/`).
pub fn resource_dir_of(bundle: &Path) -> PathBuf {
    let stem = bundle.file_stem().map(|s| s.to_os_string()).unwrap_or_default();
    bundle.with_file_name(stem)
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies a directory tree (files and subdirectories; symlinks are followed).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

//! A small headless CLAP host built on clack-host: load a bundle, create its plugin, pick the audio
//! layout and render mode, activate, and drive `process()` block by block with a transport the
//! caller controls. Processing happens on a separate "audio" thread while the calling thread plays
//! the CLAP main thread (it answers `request_callback` with `on_main_thread`, as a real host does).

mod audio;
mod handlers;
mod instance;
mod options;
mod params;
mod run;

// The shared and main-thread handlers are `TrioHandlers`' associated types, so they are public too.
pub use handlers::{TrioHandlers, TrioMainThread, TrioShared};
pub use instance::{PortConfig, TrioHost};
pub use options::{HostOptions, InitialParam, InputSignal, Layout, RenderMode};
pub use params::{IntParam, ParamDesc};
pub use run::{run_together, MainThreadCalls, RunResult};

use std::fmt;

/// Everything that can go wrong while hosting, as a message for the test output.
#[derive(Debug, Clone)]
pub struct HostError(pub String);

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

pub type Result<T> = std::result::Result<T, HostError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(HostError(msg.into()))
}

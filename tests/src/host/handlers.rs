//! The host side that clack-host calls into: requests from any plugin thread ([`TrioShared`]) and
//! notifications on the main thread ([`TrioMainThread`]), and the extensions the host declares.

use clack_extensions::audio_ports::{AudioPortRescanFlags, HostAudioPorts, HostAudioPortsImpl};
use clack_extensions::audio_ports_config::{HostAudioPortsConfig, HostAudioPortsConfigImpl};
use clack_extensions::gui::{GuiSize, HostGui, HostGuiImpl};
use clack_extensions::latency::{HostLatency, HostLatencyImpl};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::note_ports::{HostNotePorts, HostNotePortsImpl, NoteDialects, NotePortRescanFlags};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamRescanFlags,
};
use clack_extensions::state::{HostState, HostStateImpl};
use clack_host::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

/// Thread-safe side of the host: requests from any plugin thread.
pub struct TrioShared {
    pub(super) callback_requested: AtomicBool,
    pub(super) restart_requested: AtomicBool,
    process_requested: AtomicBool,
    flush_requested: AtomicBool,
    callback_count: AtomicU32,
    pub(super) log: Mutex<Vec<(String, String)>>,
    echo_log: bool,
}

impl TrioShared {
    pub(super) fn new() -> Self {
        Self {
            callback_requested: AtomicBool::new(false),
            restart_requested: AtomicBool::new(false),
            process_requested: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
            callback_count: AtomicU32::new(0),
            log: Mutex::new(Vec::new()),
            echo_log: std::env::var_os("TRIO_HOST_LOG").is_some(),
        }
    }
}

impl<'a> SharedHandler<'a> for TrioShared {
    fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {
        self.process_requested.store(true, Ordering::SeqCst);
    }
    fn request_callback(&self) {
        self.callback_count.fetch_add(1, Ordering::Relaxed);
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

impl HostLogImpl for TrioShared {
    fn log(&self, severity: LogSeverity, message: &str) {
        if self.echo_log {
            eprintln!("[plugin {severity}] {message}");
        }
        if let Ok(mut log) = self.log.lock() {
            log.push((format!("{severity}"), message.to_string()));
        }
    }
}

impl HostGuiImpl for TrioShared {
    fn resize_hints_changed(&self) {}
    fn request_resize(&self, _new_size: GuiSize) -> std::result::Result<(), clack_host::prelude::HostError> {
        Ok(())
    }
    fn request_show(&self) -> std::result::Result<(), clack_host::prelude::HostError> {
        Ok(())
    }
    fn request_hide(&self) -> std::result::Result<(), clack_host::prelude::HostError> {
        Ok(())
    }
    fn closed(&self, _was_destroyed: bool) {}
}

impl HostParamsImplShared for TrioShared {
    fn request_flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
    }
}

/// Main-thread side of the host: counts what the plugin told us.
#[derive(Default)]
pub struct TrioMainThread {
    pub(super) param_rescans: Cell<u32>,
    pub(super) state_dirty: Cell<u32>,
    pub(super) latency_changes: Cell<u32>,
    pub(super) port_rescans: Cell<u32>,
}

impl<'a> MainThreadHandler<'a> for TrioMainThread {}

impl HostParamsImplMainThread for TrioMainThread {
    fn rescan(&self, _flags: ParamRescanFlags) {
        self.param_rescans.set(self.param_rescans.get() + 1);
    }
    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl HostStateImpl for TrioMainThread {
    fn mark_dirty(&self) {
        self.state_dirty.set(self.state_dirty.get() + 1);
    }
}

impl HostLatencyImpl for TrioMainThread {
    fn changed(&self) {
        self.latency_changes.set(self.latency_changes.get() + 1);
    }
}

impl HostNotePortsImpl for TrioMainThread {
    fn supported_dialects(&self) -> NoteDialects {
        NoteDialects::CLAP | NoteDialects::MIDI
    }
    fn rescan(&self, _flags: NotePortRescanFlags) {
        self.port_rescans.set(self.port_rescans.get() + 1);
    }
}

impl HostAudioPortsImpl for TrioMainThread {
    fn is_rescan_flag_supported(&self, _flag: AudioPortRescanFlags) -> bool {
        true
    }
    fn rescan(&self, _flags: AudioPortRescanFlags) {
        self.port_rescans.set(self.port_rescans.get() + 1);
    }
}

impl HostAudioPortsConfigImpl for TrioMainThread {
    fn rescan(&self) {
        self.port_rescans.set(self.port_rescans.get() + 1);
    }
}

/// The host handler type handed to clack-host.
pub struct TrioHandlers;

impl HostHandlers for TrioHandlers {
    type Shared<'a> = TrioShared;
    type MainThread<'a> = TrioMainThread;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostLog>()
            // Without the host gui extension nice-plug's editor aborts when opened.
            .register::<HostGui>()
            .register::<HostParams>()
            .register::<HostState>()
            .register::<HostLatency>()
            .register::<HostNotePorts>()
            .register::<HostAudioPorts>()
            .register::<HostAudioPortsConfig>();
    }
}

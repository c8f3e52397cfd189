//! A small headless CLAP host built on clack-host: load a bundle, create its plugin, pick the audio
//! layout and render mode, activate, and drive `process()` block by block with a transport the
//! caller controls. Processing happens on a separate "audio" thread while the calling thread plays
//! the CLAP main thread (it answers `request_callback` with `on_main_thread`, as a real host does).

use crate::events::{BlockRecord, Dialect, NoteEvent};
use crate::timeline::{BlockSpec, ParamChange, TransportState};
use clack_extensions::audio_ports::{AudioPortRescanFlags, HostAudioPorts, HostAudioPortsImpl, PluginAudioPorts};
use clack_extensions::audio_ports_config::{
    AudioPortsConfigBuffer, HostAudioPortsConfig, HostAudioPortsConfigImpl, PluginAudioPortsConfig,
};
use clack_extensions::gui::{GuiSize, HostGui, HostGuiImpl};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::note_ports::{
    HostNotePorts, HostNotePortsImpl, NoteDialects, NotePortRescanFlags, PluginNotePorts,
};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer, ParamInfoFlags,
    ParamRescanFlags, PluginParams,
};
use clack_extensions::render::{PluginRender, RenderMode as ClapRenderMode};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent, ParamValueEvent, TransportEvent, TransportFlags};
use clack_host::events::spaces::CoreEventSpace;
use clack_host::events::{EventFlags, EventHeader, Match};
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};
use std::cell::Cell;
use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

// ------------------------------------------------------------------------------------------------
// Host callbacks
// ------------------------------------------------------------------------------------------------

/// Thread-safe side of the host: requests from any plugin thread.
pub struct TrioShared {
    callback_requested: AtomicBool,
    restart_requested: AtomicBool,
    process_requested: AtomicBool,
    flush_requested: AtomicBool,
    callback_count: AtomicU32,
    log: Mutex<Vec<(String, String)>>,
    echo_log: bool,
}

impl TrioShared {
    fn new() -> Self {
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
    pub param_rescans: Cell<u32>,
    pub state_dirty: Cell<u32>,
    pub latency_changes: Cell<u32>,
    pub port_rescans: Cell<u32>,
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

// ------------------------------------------------------------------------------------------------
// Options and parameter descriptions
// ------------------------------------------------------------------------------------------------

/// Which audio-ports configuration to select before activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Whatever the plugin offers by default (for Neural Trio: no audio ports).
    Default,
    /// The configuration with a stereo main input and a stereo main output.
    StereoPassThrough,
}

/// CLAP render mode (`clap.render`): nice-plug maps offline to `ProcessMode::Offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderMode {
    Realtime,
    Offline,
}

/// A parameter value set before activation through `clap_plugin_params.flush()`.
#[derive(Debug, Clone)]
pub enum InitialParam {
    /// A raw CLAP value (what `ParamValueEvent` carries).
    Clap(String, f64),
    /// Text parsed by the plugin's own `text_to_value` (what a user typing a value does).
    Text(String, String),
}

#[derive(Debug, Clone)]
pub struct HostOptions {
    pub sample_rate: f64,
    pub max_block: u32,
    pub layout: Layout,
    pub render: RenderMode,
    /// Applied with `params.flush()` before activation.
    pub initial_params: Vec<InitialParam>,
    /// Loaded with `state.load()` before activation; a refusal is an error.
    pub initial_state: Option<Vec<u8>>,
    /// What the stereo layout feeds in.
    pub input_signal: InputSignal,
}

/// The audio fed into the stereo layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputSignal {
    /// `test_signal`: two tones, never silent.
    #[default]
    Tones,
    /// Subnormal floats on every other sample, the rest the tones (what a decaying reverb tail gives).
    Subnormals,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            sample_rate: 48_000.0,
            max_block: 256,
            layout: Layout::Default,
            render: RenderMode::Offline,
            initial_params: Vec::new(),
            initial_state: None,
            input_signal: InputSignal::Tones,
        }
    }
}

/// One parameter as the CLAP params extension describes it. Values are CLAP values: for nice-plug
/// that is the normalized value times the step count, so an int parameter `min..=max` goes from 0 to
/// `max - min`, an enum from 0 to `variants - 1`, a bool 0/1 and a float parameter 0..1.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDesc {
    pub id: u32,
    pub name: String,
    pub module: String,
    pub min: f64,
    pub max: f64,
    pub default: f64,
    pub stepped: bool,
    pub hidden: bool,
    pub automatable: bool,
}

/// What one `run()` produced.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Every note event the plugin output, in output order.
    pub events: Vec<NoteEvent>,
    /// One record per processed block.
    pub blocks: Vec<BlockRecord>,
    /// Output audio per channel (only with the stereo layout), concatenated over the run.
    pub audio_out: Vec<Vec<f32>>,
    /// The input audio that was fed (only with the stereo layout).
    pub audio_in: Vec<Vec<f32>>,
    /// Other output events (param values, gestures, note-end hints…) by kind.
    pub other_events: Vec<String>,
    /// Wall time of the run.
    pub wall: Duration,
    /// Audio time covered by the run.
    pub audio_seconds: f64,
    /// Blocks where process() returned an error.
    pub process_errors: Vec<u64>,
    /// Wall time of each process() call, in block order (the stereo layout includes copying its buffers).
    pub process_ns: Vec<u64>,
}

impl RunResult {
    pub fn speed(&self) -> f64 {
        self.audio_seconds / self.wall.as_secs_f64().max(1e-9)
    }

    /// Appends another run (for building up a long render from several `run()` calls).
    pub fn extend(&mut self, other: RunResult) {
        self.events.extend(other.events);
        self.blocks.extend(other.blocks);
        for (i, ch) in other.audio_out.into_iter().enumerate() {
            if self.audio_out.len() <= i {
                self.audio_out.push(Vec::new());
            }
            self.audio_out[i].extend(ch);
        }
        for (i, ch) in other.audio_in.into_iter().enumerate() {
            if self.audio_in.len() <= i {
                self.audio_in.push(Vec::new());
            }
            self.audio_in[i].extend(ch);
        }
        self.other_events.extend(other.other_events);
        self.wall += other.wall;
        self.audio_seconds += other.audio_seconds;
        self.process_errors.extend(other.process_errors);
        self.process_ns.extend(other.process_ns);
    }
}

/// The test signal fed into a stereo layout: deterministic, different on each channel, never silent.
pub fn test_signal(abs_sample: u64, channel: usize) -> f32 {
    let t = abs_sample as f64 / 48_000.0;
    let f = if channel == 0 { 440.0 } else { 659.25 };
    let amp = if channel == 0 { 0.5 } else { -0.25 };
    (amp * (2.0 * std::f64::consts::PI * f * t).sin() + 0.01 * ((abs_sample % 97) as f64 / 97.0)) as f32
}

// ------------------------------------------------------------------------------------------------
// The host
// ------------------------------------------------------------------------------------------------

/// A loaded, activated plugin instance, ready to process.
pub struct TrioHost {
    // Field order is drop order: the processor goes before the instance, the instance before the
    // library entry. `Drop` below also stops and deactivates explicitly.
    processor: Option<StartedPluginAudioProcessor<TrioHandlers>>,
    instance: PluginInstance<TrioHandlers>,
    entry: PluginEntry,
    bundle: PathBuf,
    plugin_id: String,
    opts: HostOptions,
    params: Vec<ParamDesc>,
    stereo: bool,
    next_sample: u64,
    next_block: u64,
    out_buffer: EventBuffer,
    in_buffer: EventBuffer,
}

impl Drop for TrioHost {
    fn drop(&mut self) {
        if let Some(p) = self.processor.take() {
            let stopped = p.stop_processing();
            self.instance.deactivate(stopped);
        }
    }
}

/// Loads a `.clap` file and lists the ids of the plugins its factory offers.
pub fn load_entry(bundle: &Path) -> Result<PluginEntry> {
    if !bundle.exists() {
        return err(format!("bundle {} does not exist", bundle.display()));
    }
    // SAFETY: loading a plugin library runs its initialisers; that is what a host does.
    unsafe { PluginEntry::load(bundle) }.map_err(|e| HostError(format!("loading {} failed: {e:?}", bundle.display())))
}

fn plugin_ids(entry: &PluginEntry) -> Vec<String> {
    let Some(factory) = entry.get_plugin_factory() else { return Vec::new() };
    factory.plugin_descriptors().filter_map(|d| d.id().map(|id| id.to_string_lossy().into_owned())).collect()
}

impl TrioHost {
    /// Loads the bundle, creates its single plugin, applies the options and activates it.
    pub fn new(bundle: impl AsRef<Path>, opts: HostOptions) -> Result<Self> {
        let mut host = Self::new_inactive(bundle, opts)?;
        host.activate()?;
        Ok(host)
    }

    /// Like [`TrioHost::new`] but stops before activation (layout, render mode, initial params and
    /// state are applied by [`TrioHost::activate`]).
    pub fn new_inactive(bundle: impl AsRef<Path>, opts: HostOptions) -> Result<Self> {
        let bundle = bundle.as_ref().to_path_buf();
        let entry = load_entry(&bundle)?;
        let ids = plugin_ids(&entry);
        if ids.len() != 1 {
            return err(format!("expected exactly one plugin in {}, found {:?}", bundle.display(), ids));
        }
        let plugin_id = ids[0].clone();
        let host_info = HostInfo::new("trio-tests", "Neural Trio", "https://example.invalid", "0.1.0")
            .map_err(|e| HostError(format!("host info: {e:?}")))?;
        let c_id = CString::new(plugin_id.clone()).unwrap();
        let instance = PluginInstance::<TrioHandlers>::new(
            |_| TrioShared::new(),
            |_| TrioMainThread::default(),
            &entry,
            &c_id,
            &host_info,
        )
        .map_err(|e| HostError(format!("creating plugin {plugin_id}: {e:?}")))?;

        let mut host = TrioHost {
            processor: None,
            instance,
            entry,
            bundle,
            plugin_id,
            opts,
            params: Vec::new(),
            stereo: false,
            next_sample: 0,
            next_block: 0,
            out_buffer: EventBuffer::with_capacity(4096),
            in_buffer: EventBuffer::with_capacity(256),
        };
        host.params = host.scan_params()?;
        Ok(host)
    }

    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    pub fn plugin_id(&self) -> &str {
        &self.plugin_id
    }

    pub fn options(&self) -> &HostOptions {
        &self.opts
    }

    pub fn is_active(&self) -> bool {
        self.processor.is_some()
    }

    /// The library entry this instance came from (kept alive as long as the host).
    pub fn entry(&self) -> &PluginEntry {
        &self.entry
    }

    /// The plugin instance itself, for extensions this host does not wrap (the GUI test opens the
    /// editor through `clap.gui` with it). Main thread only, like every other call here.
    pub fn instance_mut(&mut self) -> &mut PluginInstance<TrioHandlers> {
        &mut self.instance
    }

    /// Applies layout, render mode, initial params and state, then activates and starts processing.
    pub fn activate(&mut self) -> Result<()> {
        if self.processor.is_some() {
            return err("already active");
        }
        self.apply_layout()?;
        self.set_render_mode_inactive(self.opts.render)?;
        let initial = std::mem::take(&mut self.opts.initial_params);
        if !initial.is_empty() {
            let mut changes = Vec::new();
            for p in &initial {
                let (name, value) = match p {
                    InitialParam::Clap(name, v) => (name.clone(), *v),
                    InitialParam::Text(name, text) => (name.clone(), self.text_to_value(name, text)?),
                };
                changes.push((self.param(&name)?.id, value));
            }
            self.flush_params_inactive(&changes)?;
        }
        self.opts.initial_params = initial;
        if let Some(state) = self.opts.initial_state.clone() {
            self.load_state(&state)?;
        }
        self.service_main_thread();

        let config = PluginAudioConfiguration {
            sample_rate: self.opts.sample_rate,
            min_frames_count: 1,
            max_frames_count: self.opts.max_block,
        };
        let stopped = self.instance.activate(|_, _| (), config).map_err(|e| HostError(format!("activate: {e:?}")))?;
        let started = stopped.start_processing().map_err(|e| HostError(format!("start_processing: {e:?}")))?;
        self.processor = Some(started);
        self.service_main_thread();
        Ok(())
    }

    /// Stops processing and deactivates (state save/load and flush work inactive too).
    pub fn deactivate(&mut self) {
        if let Some(p) = self.processor.take() {
            let stopped = p.stop_processing();
            self.instance.deactivate(stopped);
        }
        self.service_main_thread();
    }

    fn apply_layout(&mut self) -> Result<()> {
        self.stereo = false;
        if self.opts.layout == Layout::Default {
            return Ok(());
        }
        let configs = self.audio_port_configs();
        let Some(found) = configs.iter().find(|c| c.main_in == Some(2) && c.main_out == Some(2)) else {
            return err(format!("no stereo in/out audio-ports-config; the plugin offers {configs:?}"));
        };
        let ext: PluginAudioPortsConfig = self
            .instance
            .plugin_handle()
            .get_extension()
            .ok_or_else(|| HostError("plugin has no audio-ports-config extension".into()))?;
        ext.select(&self.instance.plugin_handle(), ClapId::new(found.id))
            .map_err(|_| HostError(format!("selecting audio-ports-config {found:?} was refused")))?;
        self.stereo = true;
        Ok(())
    }

    /// The audio-ports configurations the plugin offers.
    pub fn audio_port_configs(&mut self) -> Vec<PortConfig> {
        let handle = self.instance.plugin_handle();
        let Some(ext) = handle.get_extension::<PluginAudioPortsConfig>() else { return Vec::new() };
        let mut out = Vec::new();
        let mut buf = AudioPortsConfigBuffer::new();
        for i in 0..ext.count(&handle) {
            if let Some(c) = ext.get(&handle, i, &mut buf) {
                out.push(PortConfig {
                    id: c.id.get(),
                    name: String::from_utf8_lossy(c.name).into_owned(),
                    inputs: c.input_port_count,
                    outputs: c.output_port_count,
                    main_in: c.main_input.as_ref().map(|m| m.channel_count),
                    main_out: c.main_output.as_ref().map(|m| m.channel_count),
                });
            }
        }
        out
    }

    /// (audio input ports, audio output ports) as the audio-ports extension reports them now.
    pub fn audio_port_counts(&mut self) -> Option<(u32, u32)> {
        let handle = self.instance.plugin_handle();
        let ext = handle.get_extension::<PluginAudioPorts>()?;
        Some((ext.count(&handle, true), ext.count(&handle, false)))
    }

    /// (note input ports, note output ports).
    pub fn note_port_counts(&mut self) -> Option<(u32, u32)> {
        let handle = self.instance.plugin_handle();
        let ext = handle.get_extension::<PluginNotePorts>()?;
        Some((ext.count(&handle, true), ext.count(&handle, false)))
    }

    pub fn latency(&mut self) -> Option<u32> {
        let handle = self.instance.plugin_handle();
        let ext = handle.get_extension::<PluginLatency>()?;
        Some(ext.get(&handle))
    }

    fn set_render_mode_inactive(&mut self, mode: RenderMode) -> Result<()> {
        let handle = self.instance.plugin_handle();
        let Some(ext) = handle.get_extension::<PluginRender>() else {
            return match mode {
                RenderMode::Realtime => Ok(()),
                RenderMode::Offline => err("plugin has no clap.render extension; cannot render offline"),
            };
        };
        let raw = match mode {
            RenderMode::Realtime => ClapRenderMode::Realtime,
            RenderMode::Offline => ClapRenderMode::Offline,
        };
        ext.set(&handle, raw).map_err(|_| HostError(format!("render mode {mode:?} refused")))
    }

    // ---------------------------------------------------------------------------------------------
    // Parameters
    // ---------------------------------------------------------------------------------------------

    fn scan_params(&mut self) -> Result<Vec<ParamDesc>> {
        let handle = self.instance.plugin_handle();
        let Some(ext) = handle.get_extension::<PluginParams>() else {
            return err("plugin has no clap.params extension");
        };
        let mut out = Vec::new();
        let mut buf = ParamInfoBuffer::new();
        for i in 0..ext.count(&handle) {
            let Some(info) = ext.get_info(&handle, i, &mut buf) else {
                return err(format!("params.get_info({i}) failed"));
            };
            out.push(ParamDesc {
                id: info.id.get(),
                name: String::from_utf8_lossy(info.name).into_owned(),
                module: String::from_utf8_lossy(info.module).into_owned(),
                min: info.min_value,
                max: info.max_value,
                default: info.default_value,
                stepped: info.flags.contains(ParamInfoFlags::IS_STEPPED),
                hidden: info.flags.contains(ParamInfoFlags::IS_HIDDEN),
                automatable: info.flags.contains(ParamInfoFlags::IS_AUTOMATABLE),
            });
        }
        Ok(out)
    }

    /// Every parameter, in the plugin's order.
    pub fn params(&self) -> &[ParamDesc] {
        &self.params
    }

    /// A parameter by its display name ("Loop Length"; any case, `_` for a space: "loop_length").
    pub fn param(&self, name: &str) -> Result<&ParamDesc> {
        let loose = |p: &&ParamDesc| p.name.eq_ignore_ascii_case(&name.replace('_', " "));
        self.params.iter().find(|p| p.name == name).or_else(|| self.params.iter().find(loose)).ok_or_else(|| {
            let names: Vec<&str> = self.params.iter().filter(|p| !p.hidden).map(|p| p.name.as_str()).collect();
            HostError(format!("no parameter named {name:?}; visible parameters: {names:?}"))
        })
    }

    /// The current CLAP value of a parameter.
    pub fn param_value(&mut self, name: &str) -> Result<f64> {
        let id = self.param(name)?.id;
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().ok_or_else(|| HostError("no params ext".into()))?;
        ext.get_value(&handle, ClapId::new(id)).ok_or_else(|| HostError(format!("params.get_value({name}) failed")))
    }

    /// The plugin's text for a CLAP value of a parameter.
    pub fn value_to_text(&mut self, name: &str, value: f64) -> Result<String> {
        let id = self.param(name)?.id;
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().ok_or_else(|| HostError("no params ext".into()))?;
        let mut buf = [0u8; 256];
        let text = ext
            .value_to_text(&handle, ClapId::new(id), value, &mut buf)
            .map_err(|_| HostError(format!("params.value_to_text({name}, {value}) failed")))?;
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    /// The CLAP value the plugin parses from `text` for a parameter.
    pub fn text_to_value(&mut self, name: &str, text: &str) -> Result<f64> {
        let id = self.param(name)?.id;
        let handle = self.instance.plugin_handle();
        let ext: PluginParams = handle.get_extension().ok_or_else(|| HostError("no params ext".into()))?;
        let c = CString::new(text).map_err(|_| HostError("text has a NUL".into()))?;
        ext.text_to_value(&handle, ClapId::new(id), &c)
            .ok_or_else(|| HostError(format!("params.text_to_value({name}, {text:?}) failed")))
    }

    /// An int parameter whose plain range the spec fixes as `min..=max`: checks that the plugin's
    /// CLAP range has exactly `max - min` steps and returns a converter.
    pub fn int_param(&self, name: &str, min: i32, max: i32) -> Result<IntParam> {
        let p = self.param(name)?;
        if !p.stepped || p.min != 0.0 || p.max != (max - min) as f64 {
            return err(format!(
                "parameter {name:?}: expected a stepped int range {min}..={max} (CLAP 0..={}), plugin reports {p:?}",
                max - min
            ));
        }
        Ok(IntParam { id: p.id, min, max, default: min + p.default.round() as i32 })
    }

    /// The CLAP value (variant index) of an enum parameter's variant, found by its display text.
    pub fn enum_value(&mut self, name: &str, variant: &str) -> Result<f64> {
        let p = self.param(name)?.clone();
        let mut seen = Vec::new();
        for i in 0..=(p.max.round() as i64) {
            let text = self.value_to_text(name, i as f64)?;
            if text == variant {
                return Ok(i as f64);
            }
            seen.push(text);
        }
        err(format!("enum parameter {name:?} has no variant {variant:?}; variants: {seen:?}"))
    }

    /// Applies parameter values while inactive, through `params.flush()`.
    pub fn flush_params_inactive(&mut self, changes: &[(u32, f64)]) -> Result<()> {
        let mut input = EventBuffer::new();
        for (id, value) in changes {
            input.push(&ParamValueEvent::new(0, ClapId::new(*id), Pckn::match_all(), *value));
        }
        let mut output = EventBuffer::new();
        let ext: PluginParams =
            self.instance.plugin_handle().get_extension().ok_or_else(|| HostError("no params ext".into()))?;
        let Some(mut inactive) = self.instance.inactive_plugin_handle() else {
            return err("flush_params_inactive needs an inactive plugin");
        };
        ext.flush(&mut inactive, &InputEvents::from_buffer(&input), &mut OutputEvents::from_buffer(&mut output));
        self.service_main_thread();
        Ok(())
    }

    // ---------------------------------------------------------------------------------------------
    // State
    // ---------------------------------------------------------------------------------------------

    /// `clap.state` save.
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().ok_or_else(|| HostError("plugin has no clap.state".into()))?;
        let mut out = Vec::new();
        ext.save(&handle, &mut out).map_err(|e| HostError(format!("state save failed: {e}")))?;
        self.service_main_thread();
        Ok(out)
    }

    /// `clap.state` load; `Err` when the plugin refuses the bytes.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().ok_or_else(|| HostError("plugin has no clap.state".into()))?;
        let mut reader = std::io::Cursor::new(bytes);
        let r = ext.load(&handle, &mut reader).map_err(|e| HostError(format!("state load refused: {e}")));
        self.service_main_thread();
        r
    }

    // ---------------------------------------------------------------------------------------------
    // Main thread
    // ---------------------------------------------------------------------------------------------

    /// Answers pending `request_callback`s with `on_main_thread` (a host's main loop does this).
    /// Sets a persisted field (`#[persist]`, e.g. the chord progression) the way a host restores it:
    /// the state is saved, the field's JSON replaced, and the state loaded again.
    pub fn set_persisted_field(&mut self, name: &str, json: &str) -> Result<()> {
        // nice-plug's CLAP state: the JSON's length (u64, little-endian), then the JSON.
        let state = self.save_state()?;
        let body = state.get(8..).ok_or_else(|| HostError("state shorter than its length prefix".into()))?;
        let mut value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| HostError(format!("state is not JSON: {e}")))?;
        value["fields"][name] = serde_json::Value::String(json.to_string());
        let json = serde_json::to_vec(&value).map_err(|e| HostError(e.to_string()))?;
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&json);
        self.load_state(&bytes)
    }

    pub fn service_main_thread(&mut self) {
        let requested = self.instance.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst));
        if requested {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// Whether the plugin asked for a restart (e.g. latency change) since the last call.
    pub fn take_restart_request(&mut self) -> bool {
        self.instance.access_shared_handler(|s| s.restart_requested.swap(false, Ordering::SeqCst))
    }

    /// Messages the plugin sent through the host's log extension.
    pub fn plugin_log(&self) -> Vec<(String, String)> {
        self.instance.access_shared_handler(|s| s.log.lock().map(|l| l.clone()).unwrap_or_default())
    }

    /// How often the main-thread handlers were called: (param rescans, state dirty, latency).
    pub fn main_thread_counters(&self) -> (u32, u32, u32) {
        self.instance.access_handler(|m| (m.param_rescans.get(), m.state_dirty.get(), m.latency_changes.get()))
    }

    /// Calls `reset()` on the audio processor (done on the calling thread; nothing else processes).
    pub fn reset(&mut self) -> Result<()> {
        let p = self.processor.as_mut().ok_or_else(|| HostError("not active".into()))?;
        p.reset();
        Ok(())
    }

    /// The absolute sample position the next block starts at.
    pub fn sample_position(&self) -> u64 {
        self.next_sample
    }

    // ---------------------------------------------------------------------------------------------
    // Processing
    // ---------------------------------------------------------------------------------------------

    /// What the audio thread needs for one run (its event buffers move there and back).
    fn take_job(&mut self) -> AudioJob {
        AudioJob {
            sample_rate: self.opts.sample_rate,
            stereo: self.stereo,
            input_signal: self.opts.input_signal,
            first_sample: self.next_sample,
            first_block: self.next_block,
            out_buffer: std::mem::take(&mut self.out_buffer),
            in_buffer: std::mem::take(&mut self.in_buffer),
        }
    }

    /// Processes the given blocks on an audio thread, collecting every output event, while this
    /// thread answers main-thread callbacks. `pace`: `Some(x)` keeps the run at most `x` times
    /// faster than real time (for realtime-mode tests that need the generator to keep up).
    pub fn run(&mut self, blocks: &[BlockSpec], pace: Option<f64>) -> Result<RunResult> {
        self.run_with_main_thread(blocks, pace, &mut |_| {})
    }

    /// Like [`TrioHost::run`], and calls `main_thread` over and over on this (main) thread while the
    /// audio thread processes, as a host does its own work (state saves and loads) meanwhile.
    pub fn run_with_main_thread(
        &mut self,
        blocks: &[BlockSpec],
        pace: Option<f64>,
        main_thread: &mut dyn FnMut(&mut MainThreadCalls),
    ) -> Result<RunResult> {
        let mut processor = self.processor.take().ok_or_else(|| HostError("plugin is not active".into()))?;
        for b in blocks {
            if b.frames == 0 || b.frames > self.opts.max_block {
                self.processor = Some(processor);
                return err(format!("block of {} frames (max {})", b.frames, self.opts.max_block));
            }
        }
        let mut job = self.take_job();
        let shared_flag = |inst: &PluginInstance<TrioHandlers>| {
            inst.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst))
        };
        let started = Instant::now();
        let (processor_back, job_back, result) = std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("trio-audio".into())
                .spawn_scoped(scope, move || {
                    let result = job.process_all(&mut processor, blocks, pace);
                    (processor, job, result)
                })
                .expect("spawn audio thread");
            while !handle.is_finished() {
                if shared_flag(&self.instance) {
                    self.instance.call_on_main_thread_callback();
                }
                main_thread(&mut MainThreadCalls { instance: &mut self.instance });
                std::thread::sleep(Duration::from_millis(2));
            }
            match handle.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        self.service_main_thread();
        self.processor = Some(processor_back);
        self.out_buffer = job_back.out_buffer;
        self.in_buffer = job_back.in_buffer;
        let mut result = result?;
        result.wall = started.elapsed();
        self.next_sample += blocks.iter().map(|b| b.frames as u64).sum::<u64>();
        self.next_block += blocks.len() as u64;
        Ok(result)
    }
}

/// Processes several instances of one process together, as a host does tracks: block after block,
/// each instance in turn on one audio thread (`blocks[i]` is what `hosts[i]` gets; every list has
/// the same frames at each index), while this thread answers their main-thread callbacks. `pace`
/// as in [`TrioHost::run`].
pub fn run_together(hosts: &mut [TrioHost], blocks: &[Vec<BlockSpec>], pace: Option<f64>) -> Result<Vec<RunResult>> {
    if blocks.len() != hosts.len() {
        return err(format!("{} block lists for {} instances", blocks.len(), hosts.len()));
    }
    let length = blocks.first().map_or(0, Vec::len);
    for (list, host) in blocks.iter().zip(hosts.iter()) {
        let frames_differ = list.iter().zip(&blocks[0]).any(|(a, b)| a.frames != b.frames);
        if list.len() != length || frames_differ {
            return err("every instance must get blocks of the same frames");
        }
        if list.iter().any(|b| b.frames == 0 || b.frames > host.opts.max_block) {
            return err(format!("a block of 0 or more than {} frames", host.opts.max_block));
        }
        if host.processor.is_none() {
            return err("an instance is not active");
        }
    }
    let mut members: Vec<(StartedPluginAudioProcessor<TrioHandlers>, AudioJob)> = hosts
        .iter_mut()
        .map(|host| {
            let job = host.take_job();
            (host.processor.take().expect("checked active"), job)
        })
        .collect();
    let started = Instant::now();
    let (members, results) = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("trio-audio".into())
            .spawn_scoped(scope, move || {
                let mut runs: Vec<RunState> =
                    members.iter().zip(blocks).map(|((_, job), list)| job.start_run(list)).collect();
                let start = Instant::now();
                for run_index in 0..length {
                    for (((processor, job), run), list) in members.iter_mut().zip(&mut runs).zip(blocks) {
                        job.process_block(processor, run, run_index, &list[run_index]);
                    }
                    if let (Some(factor), Some(run)) = (pace, runs.first()) {
                        let target = Duration::from_secs_f64(run.audio_time / factor);
                        std::thread::sleep(target.saturating_sub(start.elapsed()));
                    }
                }
                let results: Vec<RunResult> = runs
                    .into_iter()
                    .map(|mut run| {
                        run.result.audio_seconds = run.audio_time;
                        run.result
                    })
                    .collect();
                (members, results)
            })
            .expect("spawn audio thread");
        while !handle.is_finished() {
            for host in hosts.iter_mut() {
                if host.instance.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst)) {
                    host.instance.call_on_main_thread_callback();
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let wall = started.elapsed();
    let frames: u64 = blocks.first().map_or(0, |list| list.iter().map(|b| b.frames as u64).sum());
    let mut out = Vec::new();
    for ((host, (processor, job)), mut result) in hosts.iter_mut().zip(members).zip(results) {
        host.service_main_thread();
        host.processor = Some(processor);
        host.out_buffer = job.out_buffer;
        host.in_buffer = job.in_buffer;
        host.next_sample += frames;
        host.next_block += length as u64;
        result.wall = wall;
        out.push(result);
    }
    Ok(out)
}

/// An audio-ports configuration as offered by the plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PortConfig {
    pub id: u32,
    pub name: String,
    pub inputs: u32,
    pub outputs: u32,
    pub main_in: Option<u32>,
    pub main_out: Option<u32>,
}

/// Converts plain int values of a parameter with a known `min..=max` range to CLAP values.
#[derive(Debug, Clone, Copy)]
pub struct IntParam {
    pub id: u32,
    pub min: i32,
    pub max: i32,
    /// The plugin's default, as a plain value.
    pub default: i32,
}

impl IntParam {
    pub fn clap(&self, plain: i32) -> f64 {
        assert!((self.min..=self.max).contains(&plain), "{plain} outside {}..={}", self.min, self.max);
        (plain - self.min) as f64
    }

    pub fn plain(&self, clap: f64) -> i32 {
        self.min + clap.round() as i32
    }

    /// A param change event at `offset` in a block.
    pub fn change(&self, plain: i32, offset: u32) -> ParamChange {
        ParamChange { offset, param_id: self.id, value: self.clap(plain) }
    }
}

/// What the main thread may call while the audio thread processes.
pub struct MainThreadCalls<'a> {
    instance: &'a mut PluginInstance<TrioHandlers>,
}

impl MainThreadCalls<'_> {
    /// `clap.state` save.
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().ok_or_else(|| HostError("plugin has no clap.state".into()))?;
        let mut out = Vec::new();
        ext.save(&handle, &mut out).map_err(|e| HostError(format!("state save failed: {e}")))?;
        Ok(out)
    }

    /// `clap.state` load.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().ok_or_else(|| HostError("plugin has no clap.state".into()))?;
        ext.load(&handle, &mut std::io::Cursor::new(bytes)).map_err(|e| HostError(format!("state load refused: {e}")))
    }
}

/// State moved to the audio thread for one run.
struct AudioJob {
    sample_rate: f64,
    stereo: bool,
    input_signal: InputSignal,
    first_sample: u64,
    first_block: u64,
    out_buffer: EventBuffer,
    in_buffer: EventBuffer,
}

fn push_note(buffer: &mut EventBuffer, note: &crate::timeline::PlayedNote, frames: u32) {
    // u16::MAX is a wildcard ("release all" on a channel, or a key on every channel).
    let wild = |v: u16| if v == u16::MAX { Match::All } else { Match::Specific(v) };
    let pckn = Pckn::new(0u16, wild(note.channel), wild(note.key), Match::All);
    let time = note.offset.min(frames.saturating_sub(1));
    if note.on {
        buffer.push(&NoteOnEvent::new(time, pckn, note.velocity));
    } else {
        buffer.push(&NoteOffEvent::new(time, pckn, 0.0));
    }
}

pub(crate) fn make_transport(t: &TransportState) -> TransportEvent {
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_SECONDS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if t.playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    let (loop_start, loop_end) = t.loop_range.unwrap_or((0.0, 0.0));
    if t.loop_range.is_some() {
        flags |= TransportFlags::IS_LOOP_ACTIVE;
    }
    let beats_per_bar = t.tsig.0 as f64 * 4.0 / t.tsig.1 as f64;
    let bar_number = (t.beats / beats_per_bar).floor();
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(t.beats),
        song_pos_seconds: SecondsTime::from_float(t.seconds),
        tempo: t.tempo,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_float(loop_start),
        loop_end_beats: BeatTime::from_float(loop_end),
        loop_start_seconds: SecondsTime::from_float(loop_start * 60.0 / t.tempo),
        loop_end_seconds: SecondsTime::from_float(loop_end * 60.0 / t.tempo),
        bar_start: BeatTime::from_float(bar_number * beats_per_bar),
        bar_number: bar_number as i32,
        time_signature_numerator: t.tsig.0,
        time_signature_denominator: t.tsig.1,
    }
}

/// One run's buffers and counters, block after block.
struct RunState {
    result: RunResult,
    in_l: Vec<f32>,
    in_r: Vec<f32>,
    out_l: Vec<f32>,
    out_r: Vec<f32>,
    in_ports: AudioPorts,
    out_ports: AudioPorts,
    sample: u64,
    audio_time: f64,
}

impl AudioJob {
    fn start_run(&self, blocks: &[BlockSpec]) -> RunState {
        let mut result = RunResult::default();
        let channels = if self.stereo { 2 } else { 0 };
        result.audio_out = vec![Vec::new(); channels];
        result.audio_in = vec![Vec::new(); channels];
        let max_frames = blocks.iter().map(|b| b.frames).max().unwrap_or(0) as usize;
        RunState {
            result,
            in_l: vec![0f32; max_frames],
            in_r: vec![0f32; max_frames],
            out_l: vec![0f32; max_frames],
            out_r: vec![0f32; max_frames],
            in_ports: AudioPorts::with_capacity(2, 1),
            out_ports: AudioPorts::with_capacity(2, 1),
            sample: self.first_sample,
            audio_time: 0.0,
        }
    }

    fn process_all(
        &mut self,
        processor: &mut StartedPluginAudioProcessor<TrioHandlers>,
        blocks: &[BlockSpec],
        pace: Option<f64>,
    ) -> Result<RunResult> {
        let mut run = self.start_run(blocks);
        let start = Instant::now();
        for (run_index, spec) in blocks.iter().enumerate() {
            self.process_block(processor, &mut run, run_index, spec);
            if let Some(factor) = pace {
                let target = Duration::from_secs_f64(run.audio_time / factor);
                let elapsed = start.elapsed();
                if target > elapsed {
                    std::thread::sleep(target - elapsed);
                }
            }
        }
        run.result.audio_seconds = run.audio_time;
        Ok(run.result)
    }

    fn process_block(
        &mut self,
        processor: &mut StartedPluginAudioProcessor<TrioHandlers>,
        run: &mut RunState,
        run_index: usize,
        spec: &BlockSpec,
    ) {
        let RunState { result, in_l, in_r, out_l, out_r, in_ports, out_ports, sample, audio_time } = run;
        let sample = &mut *sample;
        {
            let frames = spec.frames as usize;
            let block_index = self.first_block + run_index as u64;
            if spec.reset_before {
                processor.reset();
            }

            self.in_buffer.clear();
            let mut params: Vec<&ParamChange> = spec.params.iter().collect();
            params.sort_by_key(|p| p.offset);
            // Parameter changes and played notes, in time order (changes first at one offset).
            let mut notes = spec.notes.iter().peekable();
            for p in params {
                let offset = p.offset.min(spec.frames - 1);
                while let Some(n) = notes.next_if(|n| n.offset < offset) {
                    push_note(&mut self.in_buffer, n, spec.frames);
                }
                self.in_buffer.push(&ParamValueEvent::new(offset, ClapId::new(p.param_id), Pckn::match_all(), p.value));
            }
            for n in notes {
                push_note(&mut self.in_buffer, n, spec.frames);
            }
            self.out_buffer.clear();
            let transport = spec.transport.as_ref().map(make_transport);

            // Only the plugin's process() call is timed, not the host's buffer filling and copying.
            let process_ns;
            let status = if self.stereo {
                for i in 0..frames {
                    let at = *sample + i as u64;
                    let subnormal = self.input_signal == InputSignal::Subnormals && at.is_multiple_of(2);
                    in_l[i] = if subnormal { f32::MIN_POSITIVE / 4.0 } else { test_signal(at, 0) };
                    in_r[i] = if subnormal { -f32::MIN_POSITIVE / 8.0 } else { test_signal(at, 1) };
                    out_l[i] = f32::NAN;
                    out_r[i] = f32::NAN;
                }
                result.audio_in[0].extend_from_slice(&in_l[..frames]);
                result.audio_in[1].extend_from_slice(&in_r[..frames]);
                let inputs = in_ports.with_input_buffers([AudioPortBuffer {
                    latency: 0,
                    channels: AudioPortBufferType::f32_input_only(
                        [InputChannel::variable(&mut in_l[..frames]), InputChannel::variable(&mut in_r[..frames])]
                            .into_iter(),
                    ),
                }]);
                let mut outputs = out_ports.with_output_buffers([AudioPortBuffer {
                    latency: 0,
                    channels: AudioPortBufferType::f32_output_only(
                        [&mut out_l[..frames], &mut out_r[..frames]].into_iter(),
                    ),
                }]);
                let process_started = Instant::now();
                let s = processor.process(
                    &inputs,
                    &mut outputs,
                    &InputEvents::from_buffer(&self.in_buffer),
                    &mut OutputEvents::from_buffer(&mut self.out_buffer),
                    Some(*sample),
                    transport.as_ref(),
                );
                process_ns = process_started.elapsed().as_nanos() as u64;
                result.audio_out[0].extend_from_slice(&out_l[..frames]);
                result.audio_out[1].extend_from_slice(&out_r[..frames]);
                s
            } else {
                // No audio ports: the block length travels in an input buffer list with no ports.
                // SAFETY: an empty port list holds no pointers.
                let inputs = unsafe { InputAudioBuffers::from_raw_buffers(&[], spec.frames) };
                let mut outputs = OutputAudioBuffers::empty();
                let process_started = Instant::now();
                let s = processor.process(
                    &inputs,
                    &mut outputs,
                    &InputEvents::from_buffer(&self.in_buffer),
                    &mut OutputEvents::from_buffer(&mut self.out_buffer),
                    Some(*sample),
                    transport.as_ref(),
                );
                process_ns = process_started.elapsed().as_nanos() as u64;
                s
            };
            result.process_ns.push(process_ns);
            if status.is_err() {
                result.process_errors.push(block_index);
            }

            for event in self.out_buffer.iter() {
                let time = event.header().time();
                let mk = |channel: i16, key: i16, velocity: f64, on: bool, dialect: Dialect| NoteEvent {
                    time: *sample + time as u64,
                    block: block_index,
                    run_block: run_index,
                    offset: time,
                    channel,
                    key,
                    velocity,
                    on,
                    dialect,
                };
                match event.as_core_event() {
                    Some(CoreEventSpace::NoteOn(e)) => {
                        let r = e.as_raw();
                        result.events.push(mk(r.channel, r.key, r.velocity, true, Dialect::Clap));
                    }
                    Some(CoreEventSpace::NoteOff(e)) => {
                        let r = e.as_raw();
                        result.events.push(mk(r.channel, r.key, r.velocity, false, Dialect::Clap));
                    }
                    Some(CoreEventSpace::Midi(e)) => {
                        let d = e.data();
                        let status = d[0] & 0xF0;
                        let ch = (d[0] & 0x0F) as i16;
                        match status {
                            0x90 if d[2] > 0 => {
                                result.events.push(mk(ch, d[1] as i16, d[2] as f64 / 127.0, true, Dialect::Midi))
                            }
                            0x80 | 0x90 => {
                                result.events.push(mk(ch, d[1] as i16, d[2] as f64 / 127.0, false, Dialect::Midi))
                            }
                            _ => result.other_events.push(format!("midi {d:02x?} at block {block_index}+{time}")),
                        }
                    }
                    Some(CoreEventSpace::NoteChoke(_)) => {
                        result.other_events.push(format!("note choke at block {block_index}+{time}"))
                    }
                    Some(CoreEventSpace::NoteEnd(_)) => {}
                    Some(CoreEventSpace::ParamValue(_))
                    | Some(CoreEventSpace::ParamGestureBegin(_))
                    | Some(CoreEventSpace::ParamGestureEnd(_)) => {}
                    Some(other) => result.other_events.push(format!("{other:?}")),
                    None => result.other_events.push(format!("non-core event type {}", event.header().type_id())),
                }
            }

            result.blocks.push(BlockRecord {
                index: block_index,
                run_index,
                start_sample: *sample,
                frames: spec.frames,
                transport: spec.transport,
                params: spec.params.clone(),
            });
            *sample += spec.frames as u64;
            *audio_time += spec.frames as f64 / self.sample_rate;
        }
    }
}

//! [`TrioHost`]: loads a bundle, creates and activates its plugin with the chosen layout and render
//! mode, queries ports and latency, saves and loads state, and answers main-thread callbacks.

use super::handlers::{TrioHandlers, TrioMainThread, TrioShared};
use super::options::{HostOptions, InitialParam, Layout, RenderMode};
use super::params::ParamDesc;
use super::{err, HostError, Result};
use clack_extensions::audio_ports::PluginAudioPorts;
use clack_extensions::audio_ports_config::{AudioPortsConfigBuffer, PluginAudioPortsConfig};
use clack_extensions::latency::PluginLatency;
use clack_extensions::note_ports::PluginNotePorts;
use clack_extensions::render::{PluginRender, RenderMode as ClapRenderMode};
use clack_extensions::state::PluginState;
use clack_host::prelude::*;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// A loaded, activated plugin instance, ready to process.
pub struct TrioHost {
    // Field order is drop order: the processor goes before the instance, the instance before the
    // library entry. `Drop` below also stops and deactivates explicitly.
    pub(super) processor: Option<StartedPluginAudioProcessor<TrioHandlers>>,
    pub(super) instance: PluginInstance<TrioHandlers>,
    entry: PluginEntry,
    bundle: PathBuf,
    plugin_id: String,
    pub(super) opts: HostOptions,
    pub(super) params: Vec<ParamDesc>,
    pub(super) stereo: bool,
    pub(super) next_sample: u64,
    pub(super) next_block: u64,
    pub(super) out_buffer: EventBuffer,
    pub(super) in_buffer: EventBuffer,
}

impl Drop for TrioHost {
    fn drop(&mut self) {
        if let Some(p) = self.processor.take() {
            let stopped = p.stop_processing();
            self.instance.deactivate(stopped);
        }
    }
}

/// Loads a `.clap` file.
fn load_entry(bundle: &Path) -> Result<PluginEntry> {
    if !bundle.exists() {
        return err(format!("bundle {} does not exist", bundle.display()));
    }
    // SAFETY: loading a plugin library runs its initialisers; that is what a host does.
    unsafe { PluginEntry::load(bundle) }.map_err(|e| HostError(format!("loading {} failed: {e:?}", bundle.display())))
}

/// The ids of the plugins the entry's factory offers.
fn plugin_ids(entry: &PluginEntry) -> Vec<String> {
    let Some(factory) = entry.get_plugin_factory() else { return Vec::new() };
    factory.plugin_descriptors().filter_map(|d| d.id().map(|id| id.to_string_lossy().into_owned())).collect()
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

    // ---------------------------------------------------------------------------------------------
    // Main thread
    // ---------------------------------------------------------------------------------------------

    /// Answers pending `request_callback`s with `on_main_thread` (a host's main loop does this).
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
}

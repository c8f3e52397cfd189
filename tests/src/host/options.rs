//! What the caller chooses for an instance: audio-ports layout, render mode, sample rate and block
//! size, parameter values and state to apply before activation, and the audio fed in.

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

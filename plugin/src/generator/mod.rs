//! The generator: the ONNX model and its KV cache, the Rust sampler with every mask, bar-by-bar
//! composition, and (in the plugin) the background thread that keeps bars ahead of the playhead.

pub mod composer;
#[cfg(feature = "plugin")]
pub(crate) mod compute;
#[cfg(feature = "plugin")]
pub mod group;
#[cfg(feature = "plugin")]
pub(crate) mod jam;
#[cfg(feature = "plugin")]
pub(crate) mod members;
pub mod model;
pub mod onnx;
pub mod resources;
pub mod sampler;
#[cfg(feature = "plugin")]
pub(crate) mod settings;
#[cfg(feature = "plugin")]
pub mod worker;

//! Where the plugin finds ONNX Runtime and its model: beside its own binary. The CLAP bundle
//! looks in `<dir of neural_trio.clap>/neural_trio/`; the VST3 bundle in `Contents/Resources/`.

use std::path::{Path, PathBuf};

/// The ONNX Runtime release the plugin is built against (`ort`'s `api-31`), fetched from PyPI by xtask.
pub const ORT_VERSION: &str = "1.31.1";
/// Its library's file name: the one name for it, in the plugin and in xtask.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";
pub const MODEL_FILE: &str = "trio-base.onnx";

/// The path of the shared object this code lives in.
fn own_binary() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let address = own_binary as *const () as *const libc::c_void;
    if unsafe { libc::dladdr(address, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    Some(PathBuf::from(name.to_string_lossy().into_owned()))
}

/// Folders to search, most specific first.
pub fn resource_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("NEURAL_TRIO_RESOURCES") {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(binary) = own_binary() {
        if let Some(parent) = binary.parent() {
            let stem = binary.file_stem().and_then(|s| s.to_str()).unwrap_or("neural_trio");
            dirs.push(parent.join(stem));
            dirs.push(parent.join("neural_trio"));
            // VST3: Contents/x86_64-linux/neural_trio.so → Contents/Resources
            if let Some(contents) = parent.parent() {
                dirs.push(contents.join("Resources"));
            }
        }
    }
    dirs
}

/// The first folder holding `file`, or the first candidate (for the error message).
pub fn find(file: &str) -> PathBuf {
    let dirs = resource_dirs();
    dirs.iter()
        .map(|d| d.join(file))
        .find(|p| p.exists())
        .or_else(|| dirs.first().map(|d| d.join(file)))
        .unwrap_or_else(|| Path::new(file).to_path_buf())
}

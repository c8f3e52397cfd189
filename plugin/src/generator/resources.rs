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

// ------------------------------------------------------------------------------------------------
// The user's own models (`cargo xtask finetune` writes them there)
// ------------------------------------------------------------------------------------------------

/// Overrides the user's models folder (tests and CI set it).
pub const MODELS_ENV: &str = "NEURAL_TRIO_MODELS";

/// The folder of the user's own models: `$NEURAL_TRIO_MODELS` if set; else on Linux
/// `$XDG_DATA_HOME/Neural Trio/models` (default `~/.local/share/Neural Trio/models`), on macOS
/// `~/Library/Application Support/Neural Trio/models`, on Windows `%APPDATA%\Neural Trio\models`.
/// None when the environment names no home. The folder may not exist yet.
pub fn user_models_dir() -> Option<PathBuf> {
    user_models_dir_from(|name| std::env::var_os(name))
}

/// `user_models_dir` with the environment given (for tests).
pub fn user_models_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var(MODELS_ENV) {
        return Some(dir);
    }
    let app = Path::new("Neural Trio").join("models");
    if cfg!(windows) {
        return var("APPDATA").map(|d| d.join(app));
    }
    if cfg!(target_os = "macos") {
        return var("HOME").map(|home| home.join("Library").join("Application Support").join(app));
    }
    // XDG: a relative XDG_DATA_HOME is invalid and ignored.
    let data = var("XDG_DATA_HOME")
        .filter(|d| d.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".local").join("share")))?;
    Some(data.join(app))
}

/// A model file in the user's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserModel {
    /// The file name without `.onnx`: what the selector shows and a project saves.
    pub name: String,
    pub path: PathBuf,
}

/// The `*.onnx` files in `dir`, by name; none when it does not exist.
pub fn list_models(dir: &Path) -> Vec<UserModel> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut models: Vec<UserModel> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && is_onnx(path))
        .filter_map(|path| Some(UserModel { name: path.file_stem()?.to_str()?.to_string(), path }))
        .collect();
    models.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.name.cmp(&b.name)));
    models
}

/// The models in the user's folder.
pub fn user_models() -> Vec<UserModel> {
    user_models_dir().map(|dir| list_models(&dir)).unwrap_or_default()
}

fn is_onnx(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// A model file's content hash: SHA-256, in hex. Saved with a project, so a model file that changed
/// under the same name is told apart.
pub fn model_hash(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A hash as messages show it: its first 12 hex digits.
pub fn short_hash(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Which model plays, as a project saves it (its persisted field "model"). Absent, or unreadable,
/// it is the shipped model, so projects made before there was a choice play as they did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ModelChoice {
    /// `trio-base.onnx`, shipped beside the plugin.
    #[default]
    Shipped,
    /// A model in the user's folder, by file name (without `.onnx`) and content hash.
    User { name: String, hash: String },
    /// A model file opened from elsewhere: its path, and its name and hash (so a copy of it moved
    /// into the user's folder is found too).
    File { path: PathBuf, name: String, hash: String },
}

impl ModelChoice {
    /// The choice of a model file: by name when it lies in the user's folder, else by path. The hash
    /// is left empty: the generator fills it in when it opens the file.
    pub fn of_file(path: &Path) -> ModelChoice {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let in_folder = |dir: PathBuf| {
            let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            path.parent().is_some_and(|parent| canonical(parent) == canonical(&dir))
        };
        if user_models_dir().is_some_and(in_folder) {
            ModelChoice::User { name, hash: String::new() }
        } else {
            ModelChoice::File { path: path.to_path_buf(), name, hash: String::new() }
        }
    }

    /// The name the selector and the status line show.
    pub fn name(&self) -> String {
        match self {
            ModelChoice::Shipped => MODEL_FILE.trim_end_matches(".onnx").to_string(),
            ModelChoice::User { name, .. } | ModelChoice::File { name, .. } => name.clone(),
        }
    }

    /// The content hash saved with the choice ("" for the shipped model, or not known yet).
    pub fn hash(&self) -> &str {
        match self {
            ModelChoice::Shipped => "",
            ModelChoice::User { hash, .. } | ModelChoice::File { hash, .. } => hash,
        }
    }

    /// The same choice with its content hash.
    pub fn with_hash(&self, hash: String) -> ModelChoice {
        match self.clone() {
            ModelChoice::Shipped => ModelChoice::Shipped,
            ModelChoice::User { name, .. } => ModelChoice::User { name, hash },
            ModelChoice::File { path, name, .. } => ModelChoice::File { path, name, hash },
        }
    }

    /// Finds the file this choice names, checking its content hash (when one is saved): the file at
    /// its path (File) or in `user_dir` by name, else any model in `user_dir` with that hash (a
    /// renamed or moved copy). Returns the path and the choice with its hash filled in; the error
    /// says which model is missing, or which file has other content, in plain words.
    pub fn locate(&self, user_dir: Option<&Path>, shipped: &Path) -> Result<(PathBuf, ModelChoice), String> {
        let (name, saved) = match self {
            ModelChoice::Shipped => return Ok((shipped.to_path_buf(), ModelChoice::Shipped)),
            ModelChoice::User { name, hash } | ModelChoice::File { name, hash, .. } => (name, hash),
        };
        let mut candidates = Vec::new();
        if let ModelChoice::File { path, .. } = self {
            candidates.push(path.clone());
        }
        if let Some(in_folder) = user_dir.map(|dir| dir.join(format!("{name}.onnx"))) {
            if !candidates.contains(&in_folder) {
                candidates.push(in_folder);
            }
        }
        let mut changed = None;
        for path in candidates.iter().filter(|p| p.is_file()) {
            let hash = model_hash(path).map_err(|e| format!("could not read the model {}: {e}", path.display()))?;
            if saved.is_empty() || *saved == hash {
                return Ok((path.clone(), self.with_hash(hash)));
            }
            changed.get_or_insert((path.clone(), hash));
        }
        // A copy under another name, in the user's folder.
        if !saved.is_empty() {
            for model in user_dir.map(list_models).unwrap_or_default() {
                if !candidates.contains(&model.path) && model_hash(&model.path).is_ok_and(|h| h == *saved) {
                    return Ok((model.path, self.clone()));
                }
            }
        }
        let short = short_hash(saved);
        Err(match changed {
            Some((path, hash)) => format!(
                "{} is not the model \"{name}\" the project was made with: its content hash is {}, the project's \
                 {short}",
                path.display(),
                short_hash(&hash)
            ),
            None => {
                let hash = if short.is_empty() { String::new() } else { format!(" (hash {short})") };
                let places: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
                match places.is_empty() {
                    true => format!(
                        "the model \"{name}\"{hash} is missing: there is no user models folder (set {MODELS_ENV})"
                    ),
                    false => format!("the model \"{name}\"{hash} is missing: not found at {}", places.join(" or ")),
                }
            }
        })
    }
}

impl serde::Serialize for ModelChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = match self {
            ModelChoice::Shipped => serde_json::json!({ "kind": "shipped" }),
            ModelChoice::User { name, hash } => serde_json::json!({ "kind": "user", "name": name, "hash": hash }),
            ModelChoice::File { path, name, hash } => {
                serde_json::json!({ "kind": "file", "path": path.to_string_lossy(), "name": name, "hash": hash })
            }
        };
        value.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for ModelChoice {
    /// Never fails: anything it cannot read is the shipped model (a project is never refused for it).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer).unwrap_or_default();
        Ok(ModelChoice::from_json(&value))
    }
}

impl ModelChoice {
    fn from_json(value: &serde_json::Value) -> ModelChoice {
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let path = text("path");
        let mut name = text("name");
        if name.is_empty() {
            name = Path::new(&path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        }
        let hash = text("hash");
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or(match path.is_empty() {
            true => "user",
            false => "file",
        });
        match kind {
            "file" if !path.is_empty() => ModelChoice::File { path: PathBuf::from(path), name, hash },
            "user" if !name.is_empty() => ModelChoice::User { name, hash },
            _ => ModelChoice::Shipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn the_user_models_folder_follows_the_override_then_the_platform() {
        let folder = |vars: &[(&str, &str)]| user_models_dir_from(env(vars));
        assert_eq!(folder(&[(MODELS_ENV, "/ci/models"), ("HOME", "/home/u")]), Some("/ci/models".into()));
        if cfg!(all(unix, not(target_os = "macos"))) {
            let data = "/home/u/.local/share/Neural Trio/models";
            assert_eq!(folder(&[("HOME", "/home/u")]), Some(data.into()));
            assert_eq!(folder(&[(MODELS_ENV, ""), ("HOME", "/home/u")]), Some(data.into()), "empty is unset");
            let xdg = [("XDG_DATA_HOME", "/data"), ("HOME", "/home/u")];
            assert_eq!(folder(&xdg), Some("/data/Neural Trio/models".into()));
            let relative = [("XDG_DATA_HOME", "data"), ("HOME", "/home/u")];
            assert_eq!(folder(&relative), Some(data.into()), "a relative XDG_DATA_HOME is ignored");
            assert_eq!(folder(&[]), None);
        }
    }

    #[test]
    fn the_listing_holds_the_onnx_files_by_name() {
        let dir = std::env::temp_dir().join(format!("trio-list-models-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub.onnx")).unwrap();
        for name in ["b.onnx", "A.ONNX", "notes.txt", "c.onnx.part"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        let names: Vec<String> = list_models(&dir).into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["A", "b"]);
        assert!(list_models(&dir.join("nowhere")).is_empty());
        assert_eq!(model_hash(&dir.join("b.onnx")).unwrap().len(), 64);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

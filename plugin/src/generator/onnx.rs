//! The model through ONNX Runtime (`ort`, loaded at run time from the library shipped beside the
//! plugin): one "step" graph with a per-layer KV cache, checked against our vocabulary on load.
//! Runs on the generator thread only.

use super::model::{OpenError, TokenModel};
use crate::music::vocab::{vocab_hash, VOCAB_SIZE};
use ort::ep::{ExecutionProvider, CUDA};
use ort::session::Session;
use ort::value::{Tensor, TensorRef};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

/// ONNX Runtime allows one environment per process; every plugin instance shares it.
static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<ort::environment::Environment, String> {
    ENVIRONMENT
        .get_or_init(|| {
            if !library.exists() {
                return Err(format!("ONNX Runtime library not found at {}", library.display()));
            }
            ort::init_from(library)
                .map_err(|e| format!("could not load ONNX Runtime from {}: {e}", library.display()))?
                .with_name("neural_trio")
                .build()
                .map_err(|e| format!("could not start ONNX Runtime: {e}"))
        })
        .clone()
}

/// What the model file says about itself (ONNX metadata).
#[derive(Debug, Clone, Default)]
pub struct ModelInfo {
    pub version: String,
    pub vocab_hash: String,
    pub context_length: usize,
    pub n_layer: usize,
    pub training_data: String,
    pub licence: String,
}

impl ModelInfo {
    /// Identity stored with a saved phrase.
    pub fn id(&self) -> String {
        format!("{}/{}", self.version, self.vocab_hash)
    }
}

/// Which execution provider runs the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "CPU",
            Provider::Cuda => "CUDA",
        }
    }
}

/// A loaded model plus its KV cache for a batch of sequences that share a prefix length.
pub struct OnnxModel {
    session: Session,
    pub info: ModelInfo,
    pub load_ms: f64,
    kv_heads: usize,
    head_dim: usize,
    /// Per layer: keys then values, each [batch, kv_heads, past, head_dim] row-major.
    cache: Vec<Vec<f32>>,
    batch: usize,
    past: usize,
    /// The tokens the cache holds (batch row 0; all rows share them unless they diverged).
    cached_tokens: Vec<Vec<u32>>,
}

fn meta(session: &Session, key: &str) -> Option<String> {
    session.metadata().ok().and_then(|m| m.custom(key))
}

impl OnnxModel {
    /// Loads the library (once per process) and the model on `provider`, and checks the vocabulary
    /// hash. CUDA that cannot run is an error that says why; the caller decides what to do instead.
    pub fn load(library: &Path, model: &Path, intra_threads: usize, provider: Provider) -> Result<OnnxModel, String> {
        OnnxModel::open(library, model, intra_threads, provider).map_err(|e| e.to_string())
    }

    /// `load`, with the reason it failed by kind (the plugin tells a model of another vocabulary
    /// from a missing file or a missing ONNX Runtime).
    pub fn open(
        library: &Path,
        model: &Path,
        intra_threads: usize,
        provider: Provider,
    ) -> Result<OnnxModel, OpenError> {
        let started = Instant::now();
        let environment = environment(library).map_err(OpenError::Runtime)?;
        if !model.exists() {
            return Err(OpenError::NotFound(format!("model not found at {}", model.display())));
        }
        let other = |e: &dyn std::fmt::Display| OpenError::Other(e.to_string());
        let mut builder = Session::builder(&environment)
            .map_err(|e| other(&e))?
            .with_intra_threads(intra_threads.max(1))
            .map_err(|e| other(&e))?;
        if provider == Provider::Cuda {
            if !CUDA::is_available().unwrap_or(false) {
                return Err(OpenError::Other(
                    "this ONNX Runtime has no CUDA provider (bundle it with `cargo xtask bundle neural_trio --release \
                     --gpu`)"
                        .into(),
                ));
            }
            CUDA::default().register(&mut builder).map_err(|e| {
                OpenError::Other(format!("CUDA could not start ({e}): check the NVIDIA driver, CUDA 13 and cuDNN 9"))
            })?;
        }
        let session = builder
            .commit_from_file(model)
            .map_err(|e| OpenError::Other(format!("could not open model {}: {e}", model.display())))?;

        let info = ModelInfo {
            version: meta(&session, "model_version").unwrap_or_else(|| "unknown".into()),
            vocab_hash: meta(&session, "vocab_hash").unwrap_or_default(),
            context_length: meta(&session, "context_length").and_then(|v| v.parse().ok()).unwrap_or(512),
            n_layer: meta(&session, "n_layer").and_then(|v| v.parse().ok()).unwrap_or(0),
            training_data: meta(&session, "training_data").unwrap_or_default(),
            licence: meta(&session, "licence").unwrap_or_default(),
        };
        if info.vocab_hash != vocab_hash() {
            return Err(OpenError::Vocabulary {
                model: model.display().to_string(),
                model_hash: if info.vocab_hash.is_empty() { "(none stated)".into() } else { info.vocab_hash.clone() },
                plugin_hash: vocab_hash(),
            });
        }
        let kv_heads: usize = meta(&session, "n_kv_head").and_then(|v| v.parse().ok()).unwrap_or(1);
        let head_dim: usize = meta(&session, "head_dim").and_then(|v| v.parse().ok()).unwrap_or(0);
        let n_layer = session.inputs().iter().filter(|i| i.name().starts_with("past_key_")).count();
        if n_layer == 0 || head_dim == 0 {
            return Err(OpenError::Other(format!("model {} is not a Neural Trio step graph", model.display())));
        }
        let mut loaded = OnnxModel {
            session,
            info: ModelInfo { n_layer, ..info },
            load_ms: 0.0,
            kv_heads,
            head_dim,
            cache: vec![Vec::new(); n_layer * 2],
            batch: 1,
            past: 0,
            cached_tokens: vec![Vec::new()],
        };
        // One warm-up step so the first real request is not the slow one.
        loaded.reset(1);
        loaded.feed_rows(&[vec![crate::music::vocab::Token::Bos.id()]]).map_err(OpenError::Other)?;
        loaded.reset(1);
        loaded.load_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(loaded)
    }

    /// Empties the cache for `batch` sequences.
    pub fn reset(&mut self, batch: usize) {
        for c in &mut self.cache {
            c.clear();
        }
        self.batch = batch.max(1);
        self.past = 0;
        self.cached_tokens = vec![Vec::new(); self.batch];
    }

    /// Turns a batch-1 cache into `rows` identical rows, so several continuations of one context
    /// can be sampled side by side.
    fn fork_rows(&mut self, rows: usize) {
        if self.batch != 1 || rows <= 1 {
            return;
        }
        for c in &mut self.cache {
            *c = c.repeat(rows);
        }
        self.batch = rows;
        self.cached_tokens = vec![self.cached_tokens[0].clone(); rows];
    }

    /// Keeps only the first `keep` cached positions.
    pub fn truncate(&mut self, keep: usize) {
        if keep >= self.past {
            return;
        }
        let row = self.head_dim;
        for c in &mut self.cache {
            let mut out = Vec::with_capacity(self.batch * self.kv_heads * keep * row);
            for bh in 0..self.batch * self.kv_heads {
                let start = bh * self.past * row;
                out.extend_from_slice(&c[start..start + keep * row]);
            }
            *c = out;
        }
        self.past = keep;
        for t in &mut self.cached_tokens {
            t.truncate(keep);
        }
    }

    /// Feeds the same number of new tokens for every batch row; returns the logits of each row's
    /// last new token, `batch × VOCAB_SIZE`.
    fn feed_rows(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        let batch = self.batch;
        if tokens.len() != batch || tokens.iter().any(|t| t.len() != tokens[0].len()) || tokens[0].is_empty() {
            return Err("feed needs one equally long, non-empty token list per batch row".into());
        }
        let new = tokens[0].len();
        let ids: Vec<i64> = tokens.iter().flatten().map(|&t| t as i64).collect();
        let err = |e: ort::Error| format!("model step failed: {e}");
        let input_ids = Tensor::from_array(([batch, new], ids)).map_err(err)?;
        let pos_offset = Tensor::from_array(([1usize], vec![self.past as i64])).map_err(err)?;
        let shape = [batch, self.kv_heads, self.past, self.head_dim];
        let mut inputs: Vec<(std::borrow::Cow<'_, str>, ort::session::SessionInputValue<'_>)> =
            vec![("input_ids".into(), input_ids.into()), ("pos_offset".into(), pos_offset.into())];
        let n_layer = self.cache.len() / 2;
        for layer in 0..n_layer {
            let keys = TensorRef::from_array_view((shape, self.cache[2 * layer].as_slice())).map_err(err)?;
            let values = TensorRef::from_array_view((shape, self.cache[2 * layer + 1].as_slice())).map_err(err)?;
            inputs.push((format!("past_key_{layer}").into(), keys.into()));
            inputs.push((format!("past_value_{layer}").into(), values.into()));
        }
        let outputs = self.session.run(inputs).map_err(err)?;
        let (logit_shape, logits) = outputs["logits"].try_extract_tensor::<f32>().map_err(err)?;
        let vocab = logit_shape[2] as usize;
        if vocab != VOCAB_SIZE {
            return Err(format!("model outputs {vocab} logits, the vocabulary has {VOCAB_SIZE}"));
        }
        let mut last = Vec::with_capacity(batch * vocab);
        for b in 0..batch {
            let start = (b * new + new - 1) * vocab;
            last.extend_from_slice(&logits[start..start + vocab]);
        }
        let mut new_cache = Vec::with_capacity(self.cache.len());
        for layer in 0..n_layer {
            for kind in ["present_key", "present_value"] {
                let (_, data) = outputs[format!("{kind}_{layer}").as_str()].try_extract_tensor::<f32>().map_err(err)?;
                new_cache.push(data.to_vec());
            }
        }
        drop(outputs);
        self.cache = new_cache;
        self.past += new;
        for (cached, fed) in self.cached_tokens.iter_mut().zip(tokens) {
            cached.extend_from_slice(fed);
        }
        Ok(last)
    }

    /// Makes the cache hold exactly `context` (batch 1), reusing the longest common prefix, and
    /// returns the logits after its last token.
    fn set_context_cached(&mut self, context: &[u32]) -> Result<Vec<f32>, String> {
        if self.batch != 1 {
            self.reset(1);
        }
        let common = self.cached_tokens[0].iter().zip(context).take_while(|(a, b)| a == b).count();
        // Re-feed at least the last token to get its logits.
        let keep = common.min(context.len().saturating_sub(1));
        self.truncate(keep);
        if keep < self.past {
            self.reset(1);
        }
        let rest = context[self.past..].to_vec();
        self.feed_rows(&[rest])
    }
}

impl TokenModel for OnnxModel {
    fn context_length(&self) -> usize {
        self.info.context_length
    }

    fn context(&self) -> &[u32] {
        &self.cached_tokens[0]
    }

    fn set_context(&mut self, context: &[u32]) -> Result<Vec<f32>, String> {
        self.set_context_cached(context)
    }

    fn feed(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        self.feed_rows(tokens)
    }

    fn fork(&mut self, rows: usize) {
        self.fork_rows(rows)
    }

    fn identity(&self) -> Option<(String, String)> {
        Some((self.info.id(), self.info.version.clone()))
    }
}

//! The one interface the composer needs from a model: context in, next-token logits out, and a
//! fork into several rows for batched variations. ONNX Runtime implements it (`onnx::OnnxModel`),
//! so do the eval's baselines (`cargo xtask eval`) and the deterministic fake the tests use.

pub trait TokenModel {
    /// The longest context the model takes, in tokens.
    fn context_length(&self) -> usize;

    /// The tokens the model has seen so far in row 0 (every row shares them until they diverge).
    fn context(&self) -> &[u32];

    /// Makes `context` the whole context of a single row, reusing what it shares with the current
    /// one; returns the logits after its last token (`VOCAB_SIZE` of them).
    fn set_context(&mut self, context: &[u32]) -> Result<Vec<f32>, String>;

    /// Appends the same number of tokens to every row; returns each row's logits after its last new
    /// token, row after row.
    fn feed(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<f32>, String>;

    /// Turns a single row into `rows` identical rows, so several continuations of one context can be
    /// sampled side by side.
    fn fork(&mut self, rows: usize);

    /// ("<version>/<vocab hash>", the version), saved with a phrase and shown to the producer; None
    /// for a stand-in.
    fn identity(&self) -> Option<(String, String)> {
        None
    }
}

/// Why a model file could not be opened, by kind: the generator tells the producer what to do about
/// each (no ONNX Runtime at all, a file that is not there, a model of another vocabulary).
#[derive(Debug, Clone, PartialEq)]
pub enum OpenError {
    /// ONNX Runtime itself is missing or does not start.
    Runtime(String),
    /// There is no file at the path.
    NotFound(String),
    /// The model was trained on another vocabulary than the plugin speaks.
    Vocabulary { model: String, model_hash: String, plugin_hash: String },
    /// Anything else: not a Neural Trio step graph, a damaged file, CUDA that does not start.
    Other(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Runtime(why) | OpenError::NotFound(why) | OpenError::Other(why) => f.write_str(why),
            OpenError::Vocabulary { model, model_hash, plugin_hash } => write!(
                f,
                "model {model} was trained on vocabulary {model_hash}, this plugin speaks {plugin_hash}: they do not match"
            ),
        }
    }
}

/// A deterministic stand-in for the neural model, for fast tests of everything around it: its logits
/// depend only on the context, as a trained model's do, and favour ending a bar after a few notes.
#[cfg(any(test, feature = "fake-model"))]
pub mod fake {
    use super::TokenModel;
    use crate::music::vocab::{Token, VOCAB_SIZE};

    #[derive(Default)]
    pub struct FakeModel {
        rows: Vec<Vec<u32>>,
        /// Model steps taken, to check the composer reuses its context.
        pub steps: usize,
        /// Another "model": other logits for the same context (0 is the plain fake).
        salt: u64,
    }

    impl FakeModel {
        pub fn new() -> Self {
            FakeModel { rows: vec![Vec::new()], steps: 0, salt: 0 }
        }

        /// Another deterministic model: other notes from the same context, and an identity of its
        /// own ("fake-SALT").
        pub fn with_salt(salt: u64) -> Self {
            FakeModel { salt, ..FakeModel::new() }
        }

        /// Random-looking but fixed by the last tokens; positions a 16th or an 8th after the last one
        /// and the end of the bar once its last beat is reached are favoured, as in real music.
        fn logits(salt: u64, context: &[u32]) -> Vec<f32> {
            let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for &id in context.iter().rev().take(8) {
                hash = (hash ^ id as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
            let this_bar = context.iter().rev().take_while(|&&id| id != Token::Bar.id());
            let last_position = this_bar
                .filter_map(|&id| match Token::from_id(id) {
                    Some(Token::Position(tick)) => Some(tick as i32),
                    _ => None,
                })
                .next()
                .unwrap_or(-3);
            (0..VOCAB_SIZE as u64)
                .map(|id| {
                    let noise = ((hash ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
                        >> 40) as f32
                        / (1u64 << 24) as f32;
                    let bias = match Token::from_id(id as u32) {
                        Some(Token::Position(tick)) => -((tick as i32 - last_position - 4).abs() as f32) / 2.0,
                        Some(Token::Bar) if last_position >= 36 => 4.0,
                        Some(Token::Bar) => -8.0,
                        _ => 0.0,
                    };
                    noise * 3.0 + bias
                })
                .collect()
        }
    }

    impl TokenModel for FakeModel {
        fn context_length(&self) -> usize {
            512
        }

        fn context(&self) -> &[u32] {
            &self.rows[0]
        }

        fn set_context(&mut self, context: &[u32]) -> Result<Vec<f32>, String> {
            self.steps += 1;
            self.rows = vec![context.to_vec()];
            Ok(Self::logits(self.salt, context))
        }

        fn feed(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<f32>, String> {
            if tokens.len() != self.rows.len() {
                return Err(format!("{} rows fed to a model of {}", tokens.len(), self.rows.len()));
            }
            self.steps += 1;
            let mut out = Vec::with_capacity(tokens.len() * VOCAB_SIZE);
            for (row, fed) in self.rows.iter_mut().zip(tokens) {
                row.extend_from_slice(fed);
                out.extend(Self::logits(self.salt, row));
            }
            Ok(out)
        }

        fn fork(&mut self, rows: usize) {
            if self.rows.len() == 1 && rows > 1 {
                self.rows = vec![self.rows[0].clone(); rows];
            }
        }

        fn identity(&self) -> Option<(String, String)> {
            let version = format!("fake-{}", self.salt);
            (self.salt != 0).then(|| (format!("{version}/{}", crate::music::vocab::vocab_hash()), version))
        }
    }
}

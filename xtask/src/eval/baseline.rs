//! Baselines (n-gram, LSTM) through the same sampler as the plugin.
//!
//! The grammar, the masks and the draw stay in Rust (`sampler::sample`, `Constraints`, `Decoder`);
//! only the next-token logits come from the baseline, served by `models/eval.py serve` over a pipe:
//! the request is a little-endian u32 count and that many u32 token ids (the whole context), the
//! answer VOCAB_SIZE little-endian f32 logits; a count of 0 ends the server. Its first stdout line
//! is a JSON description of the model.
//!
//! The bar loop is the plugin's own (`composer`), through the `TokenModel` the bridge implements.

use neural_trio::generator::model::TokenModel;
use neural_trio::music::vocab::VOCAB_SIZE;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub struct Bridge {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub info: serde_json::Value,
    pub context_length: usize,
    /// What the composer has sent so far, per row.
    rows: Vec<Vec<u32>>,
}

impl Bridge {
    /// Starts `models/eval.py serve <args>` and waits for its description line.
    pub fn start(python: &Path, args: &[String]) -> Result<Bridge, String> {
        let mut child = Command::new(python)
            .arg("models/eval.py")
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not start the baseline server: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(|e| format!("baseline server: {e}"))?;
        if line.trim().is_empty() {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(format!("the baseline server ended before it was ready ({status})"));
        }
        let info: serde_json::Value =
            serde_json::from_str(line.trim()).map_err(|e| format!("baseline server said '{}': {e}", line.trim()))?;
        if !info["ok"].as_bool().unwrap_or(false) {
            let why = info["why"].as_str().unwrap_or("unknown reason").to_string();
            let _ = child.wait();
            return Err(why);
        }
        if info["vocab_size"].as_u64() != Some(VOCAB_SIZE as u64) {
            return Err(format!("baseline vocabulary size {} is not {VOCAB_SIZE}", info["vocab_size"]));
        }
        let context_length = info["context_length"].as_u64().unwrap_or(1 << 20) as usize;
        Ok(Bridge { child, stdin, stdout, info, context_length, rows: vec![Vec::new()] })
    }

    pub fn logits(&mut self, context: &[u32]) -> Result<Vec<f32>, String> {
        let mut request = Vec::with_capacity(4 * (context.len() + 1));
        request.extend_from_slice(&(context.len() as u32).to_le_bytes());
        for &id in context {
            request.extend_from_slice(&id.to_le_bytes());
        }
        self.stdin.write_all(&request).and_then(|_| self.stdin.flush()).map_err(|e| format!("baseline server: {e}"))?;
        let mut answer = vec![0u8; 4 * VOCAB_SIZE];
        self.stdout.read_exact(&mut answer).map_err(|e| format!("baseline server: {e}"))?;
        Ok(answer.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.stdin.write_all(&0u32.to_le_bytes()).and_then(|_| self.stdin.flush());
        let _ = self.child.wait();
    }
}

/// The baseline as a model for the composer: it keeps no cache, so every step sends the whole context
/// of each row.
impl TokenModel for Bridge {
    fn context_length(&self) -> usize {
        self.context_length
    }

    fn context(&self) -> &[u32] {
        &self.rows[0]
    }

    fn set_context(&mut self, context: &[u32]) -> Result<Vec<f32>, String> {
        self.rows = vec![context.to_vec()];
        self.logits(context)
    }

    fn feed(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        if tokens.len() != self.rows.len() {
            return Err(format!("{} rows fed to {} contexts", tokens.len(), self.rows.len()));
        }
        let mut out = Vec::with_capacity(tokens.len() * VOCAB_SIZE);
        for (row, fed) in tokens.iter().enumerate() {
            self.rows[row].extend_from_slice(fed);
            let context = self.rows[row].clone();
            out.extend(self.logits(&context)?);
        }
        Ok(out)
    }

    fn fork(&mut self, rows: usize) {
        if self.rows.len() == 1 && rows > 1 {
            self.rows = vec![self.rows[0].clone(); rows];
        }
    }
}

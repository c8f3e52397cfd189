//! Baselines (n-gram, LSTM) through the same sampler as the plugin.
//!
//! The grammar, the masks and the draw stay in Rust (`sampler::sample`, `Constraints`, `Decoder`);
//! only the next-token logits come from the baseline, served by `models/eval.py serve` over a pipe:
//! the request is a little-endian u32 count and that many u32 token ids (the whole context), the
//! answer VOCAB_SIZE little-endian f32 logits; a count of 0 ends the server. Its first stdout line
//! is a JSON description of the model.
//!
//! The bar loop is `composer::generate_bar`'s without locked parts (which the eval never uses):
//! context = header + the most recent earlier bars that fit + this bar's tokens; sample until the
//! model ends the bar (BAR) or the bar is full; trim a bar cut mid-note back to its last boundary.

use super::generate::{constraints, Generated, Job};
use neural_trio::generator::composer::{bar_notes, MAX_NOTES_PER_GENERATED_BAR, MAX_TOKENS_PER_BAR};
use neural_trio::generator::sampler::{sample, sample_from, Rng};
use neural_trio::music::tokens::{Decoded, Decoder};
use neural_trio::music::vocab::{ids, Token, VOCAB_SIZE};
use neural_trio::music::{Note, TICKS_PER_BAR};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

pub struct Bridge {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub info: serde_json::Value,
    pub context_length: usize,
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
        Ok(Bridge { child, stdin, stdout, info, context_length })
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

/// `composer::make_header` with the baseline's logits.
fn header(bridge: &mut Bridge, job: &Job, rng: &mut Rng) -> Result<[u32; 4], String> {
    let mut tokens = vec![Token::Bos.id(), Token::Tempo(job.tempo_bin).id()];
    let key = match job.key {
        Some(k) => Token::Key(k).id(),
        None => {
            let logits = bridge.logits(&tokens)?;
            sample_from((ids::KEY..ids::MOOD).map(|id| (id, logits[id as usize])).collect(), 1.0, rng)
                .ok_or("no key")?
        }
    };
    tokens.push(key);
    let mood = match job.mood {
        Some(m) => Token::Mood(m).id(),
        None => {
            let logits = bridge.logits(&tokens)?;
            sample_from((ids::MOOD..ids::BAR).map(|id| (id, logits[id as usize])).collect(), 1.0, rng)
                .ok_or("no mood")?
        }
    };
    Ok([tokens[0], tokens[1], key, mood])
}

fn at_boundary(tokens: &[u32]) -> bool {
    let mut decoder = Decoder::at_bar_start(0);
    tokens.iter().all(|&id| decoder.push(id).is_ok()) && decoder.at_boundary()
}

fn bar(
    bridge: &mut Bridge,
    header: &[u32; 4],
    history: &[Vec<u32>],
    job: &Job,
    rng: &mut Rng,
) -> Result<Vec<u32>, String> {
    let budget = bridge.context_length.saturating_sub(MAX_TOKENS_PER_BAR + 1 + header.len());
    let mut used = 0;
    let mut first = history.len();
    while first > 0 && used + history[first - 1].len() <= budget {
        used += history[first - 1].len();
        first -= 1;
    }
    let mut context: Vec<u32> = header.to_vec();
    for b in &history[first..] {
        context.extend_from_slice(b);
    }
    let constraints = constraints(job);
    let mut decoder = Decoder::at_bar_start(0);
    let mut tokens = vec![Token::Bar.id()];
    decoder.push(Token::Bar.id())?;
    let mut notes = 0;
    loop {
        let full = tokens.len() >= MAX_TOKENS_PER_BAR || notes >= MAX_NOTES_PER_GENERATED_BAR;
        if full && decoder.at_boundary() {
            break;
        }
        let mut request = context.clone();
        request.extend_from_slice(&tokens);
        let logits = bridge.logits(&request)?;
        match sample(&logits, &decoder, &constraints, None, rng) {
            Some(id) if id == Token::Bar.id() => break,
            Some(id) => {
                if let Decoded::Note(_) = decoder.push(id)? {
                    notes += 1;
                }
                tokens.push(id);
            }
            None => break,
        }
    }
    while !at_boundary(&tokens) {
        tokens.pop();
    }
    Ok(tokens)
}

/// One phrase from the baseline, seeded exactly as the model's phrases are.
pub fn phrase(bridge: &mut Bridge, job: &Job, bars: u32) -> Result<Generated, String> {
    let started = Instant::now();
    let mut rng = Rng::for_bar(job.seed, -1, 0);
    let header = header(bridge, job, &mut rng)?;
    let (Some(Token::Key(key)), Some(Token::Mood(mood))) = (Token::from_id(header[2]), Token::from_id(header[3]))
    else {
        return Err("bad header".into());
    };
    let mut history: Vec<Vec<u32>> = Vec::new();
    let mut notes: Vec<Note> = Vec::new();
    for b in 0..bars {
        let mut rng = Rng::for_bar(job.seed, b as i64, 0);
        let tokens = bar(bridge, &header, &history, job, &mut rng)?;
        notes
            .extend(bar_notes(&tokens).into_iter().map(|n| Note { start_tick: n.start_tick + b * TICKS_PER_BAR, ..n }));
        history.push(tokens);
    }
    notes.sort_by_key(|n| (n.start_tick, n.part, std::cmp::Reverse(n.pitch)));
    neural_trio::music::trim_monophonic(&mut notes); // as the plugin plays them
    let tokens = 4 + history.iter().map(|b| b.len()).sum::<usize>();
    Ok(Generated { job: *job, key, mood, notes, tokens, seconds: started.elapsed().as_secs_f64() })
}

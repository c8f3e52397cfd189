//! Composing one bar at a time with the model: context assembly, forced prefixes and the sampling
//! loop. Shared by the generator thread and `cargo xtask eval`.

use super::onnx::OnnxModel;
use super::sampler::{sample, sample_from, Constraints, Rng};
use crate::music::tokens::{Decoded, Decoder};
use crate::music::vocab::{ids, Key, Mood, Token};
use crate::music::Note;

/// A bar's sampling stops at the first boundary after this many tokens.
pub const MAX_TOKENS_PER_BAR: usize = 240;
/// And after this many notes (well inside `link::MAX_NOTES_PER_BAR`).
pub const MAX_NOTES_PER_GENERATED_BAR: usize = 96;

/// The conditioning tokens: tempo from the host; key and mood from the controls, or drawn from the
/// model when left open.
pub fn make_header(
    model: &mut OnnxModel,
    tempo_bin: u8,
    key: Option<Key>,
    mood: Option<Mood>,
    rng: &mut Rng,
) -> Result<[u32; 4], String> {
    let mut tokens = vec![Token::Bos.id(), Token::Tempo(tempo_bin).id()];
    let key_id = match key {
        Some(k) => Token::Key(k).id(),
        None => {
            let logits = model.set_context(&tokens)?;
            let candidates = (ids::KEY..ids::MOOD).map(|id| (id, logits[id as usize])).collect();
            sample_from(candidates, 1.0, rng).ok_or("no key")?
        }
    };
    tokens.push(key_id);
    let mood_id = match mood {
        Some(m) => Token::Mood(m).id(),
        None => {
            let logits = model.set_context(&tokens)?;
            let candidates = (ids::MOOD..ids::BAR).map(|id| (id, logits[id as usize])).collect();
            sample_from(candidates, 1.0, rng).ok_or("no mood")?
        }
    };
    Ok([tokens[0], tokens[1], key_id, mood_id])
}

/// Everything one bar's generation depends on.
pub struct BarRequest<'a> {
    pub header: [u32; 4],
    /// Earlier bars' tokens, oldest first, each starting with BAR; only the most recent that fit are used.
    pub history: &'a [&'a [u32]],
    /// Tokens of this bar to keep (starting with BAR): what was already heard before a regeneration.
    pub forced_prefix: &'a [u32],
    /// Notes of kept (locked) parts after the prefix, ticks relative to the bar: the bar is sampled
    /// around them, and the model hears them where they fall.
    pub forced_notes: &'a [Note],
    pub constraints: Constraints,
    pub rng: Rng,
}

/// The tokens before the first position at or after `cut_tick`: the part of a bar already heard.
pub fn prefix_before_tick(bar_tokens: &[u32], cut_tick: u32) -> Vec<u32> {
    let mut end = bar_tokens.len();
    for (i, &id) in bar_tokens.iter().enumerate() {
        if let Some(Token::Position(t)) = Token::from_id(id) {
            if t as u32 >= cut_tick {
                end = i;
                break;
            }
        }
    }
    let mut prefix = bar_tokens[..end].to_vec();
    if prefix.is_empty() {
        prefix.push(Token::Bar.id());
    }
    prefix
}

/// Samples one bar. Returns its tokens (starting with BAR, without the next bar's BAR).
pub fn generate_bar(model: &mut OnnxModel, request: BarRequest) -> Result<Vec<u32>, String> {
    let BarRequest { header, history, forced_prefix, forced_notes, constraints, mut rng } = request;
    // History that fits beside the header, this bar's prefix and room for the bar itself.
    let budget = model.context_length().saturating_sub(MAX_TOKENS_PER_BAR + forced_prefix.len() + header.len());
    let history_len = |first: usize| history[first..].iter().map(|b| b.len()).sum::<usize>();
    let fitting = |limit: usize| (0..=history.len()).find(|&f| history_len(f) <= limit).unwrap_or(history.len());
    let context_from = |first: usize| -> Vec<u32> {
        let mut context: Vec<u32> = header.to_vec();
        for bar in &history[first..] {
            context.extend_from_slice(bar);
        }
        context
    };
    // Prefer a window that extends what the cache already holds (no re-prefill); when the window
    // must slide, drop to half the budget so the next bars can extend it again.
    let cached = model.cached_tokens.first().cloned().unwrap_or_default();
    let reusable = (fitting(budget)..=history.len())
        .find(|&f| cached.len() > header.len() && context_from(f).starts_with(&cached));
    let first = reusable.unwrap_or_else(|| fitting(budget / 2).max(fitting(budget)));
    let mut context = context_from(first);
    context.extend_from_slice(forced_prefix);

    let mut decoder = Decoder::at_bar_start(0);
    let mut notes = 0;
    for &id in forced_prefix {
        if let Decoded::Note(_) = decoder.push(id)? {
            notes += 1;
        }
    }
    let mut tokens = forced_prefix.to_vec();
    // Kept notes still to come, in stream order.
    let prefix_end_tick = decoder.position.max(-1);
    let mut pending: Vec<Note> = forced_notes.iter().filter(|n| n.start_tick as i32 > prefix_end_tick).copied().collect();
    pending.sort_by_key(|n| (n.start_tick, n.part, std::cmp::Reverse(n.pitch)));
    pending.dedup_by_key(|n| (n.start_tick, n.part, n.pitch));
    pending.reverse();
    let mut logits = model.set_context(&context)?;
    loop {
        let next_forced = pending.last().map(|n| (n.start_tick, n.part));
        let full = tokens.len() >= MAX_TOKENS_PER_BAR || notes >= MAX_NOTES_PER_GENERATED_BAR;
        if full && decoder.at_boundary() && next_forced.is_none() {
            break;
        }
        let mut fed = match sample(&logits, &decoder, &constraints, next_forced, &mut rng) {
            Some(id) if id == Token::Bar.id() => break,
            Some(id) => vec![id],
            // Out of sampling room (e.g. a full bar) but kept notes remain: jump straight to them.
            None => match next_forced {
                Some((tick, _)) if decoder.allows(Token::Position(tick as u8).id()) => vec![Token::Position(tick as u8).id()],
                _ => break,
            },
        };
        // Reaching a kept note group's part: inject that group's notes as they were.
        if let (Some(Token::Part(part)), Some((tick, forced_part))) = (Token::from_id(fed[0]), next_forced) {
            if part == forced_part && decoder.position == tick as i32 {
                while pending.last().is_some_and(|n| n.start_tick == tick && n.part == part) {
                    let note = pending.pop().expect("checked");
                    fed.push(Token::Pitch(note.pitch).id());
                    fed.push(Token::Duration(crate::music::vocab::duration_index(note.duration_ticks)).id());
                    fed.push(Token::Velocity(crate::music::vocab::velocity_bin(note.velocity)).id());
                }
            }
        }
        for &id in &fed {
            if let Decoded::Note(_) = decoder.push(id)? {
                notes += 1;
            }
        }
        tokens.extend_from_slice(&fed);
        logits = model.feed(&[fed])?;
    }
    // A bar cut off mid-note (nothing allowed) is trimmed back to its last boundary.
    while !decoder_at_boundary_after(&tokens) {
        tokens.pop();
    }
    Ok(tokens)
}

fn decoder_at_boundary_after(tokens: &[u32]) -> bool {
    let mut decoder = Decoder::at_bar_start(0);
    tokens.iter().all(|&id| decoder.push(id).is_ok()) && decoder.at_boundary()
}

/// The notes of one bar's tokens, with ticks relative to the bar.
pub fn bar_notes(tokens: &[u32]) -> Vec<Note> {
    let mut decoder = Decoder::at_bar_start(0);
    let mut notes = Vec::new();
    for &id in tokens {
        match decoder.push(id) {
            Ok(Decoded::Note(n)) => notes.push(n),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    notes.sort_by_key(|n| (n.start_tick, n.part, std::cmp::Reverse(n.pitch)));
    notes
}

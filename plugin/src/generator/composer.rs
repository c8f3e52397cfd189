//! Composing one bar at a time with the model: context assembly, forced prefixes and the sampling
//! loop. Shared by the generator thread and `cargo xtask eval`.

use super::model::TokenModel;
use super::sampler::{sample, sample_from, Constraints, Rng};
use crate::music::controls::{ArpMotion, BarControls, BassDrive, Style, DENSITY_BIN_EDGES};
use crate::music::harmony::{chord_mask, BarHarmony};
use crate::music::tokens::{Decoded, Decoder, HEADER_LENGTH};
use crate::music::vocab::{ids, Key, Mood, Token, VOCAB_SIZE};
use crate::music::{Note, Part, TICKS_PER_BAR};

/// A bar's sampling stops at the first boundary after this many tokens.
pub const MAX_TOKENS_PER_BAR: usize = 240;
/// And after this many notes (well inside `link::MAX_NOTES_PER_BAR`).
pub const MAX_NOTES_PER_GENERATED_BAR: usize = 96;

/// The conditioning tokens: tempo from the host; key and mood from the controls, or drawn from the
/// model when left open; the style as chosen. The key comes before the mood in the stream, so an
/// open key under a chosen mood is drawn among the keys of the mood's mode (the labels were derived
/// from mode and tempo). In Dance the mood is the fast one of the mode: Happy or Tense.
pub fn make_header(
    model: &mut dyn TokenModel,
    tempo_bin: u8,
    key: Option<Key>,
    mood: Option<Mood>,
    style: Style,
    rng: &mut Rng,
) -> Result<[u32; HEADER_LENGTH], String> {
    let mut tokens = vec![Token::Bos.id(), Token::Tempo(tempo_bin).id()];
    let key_id = match key {
        Some(k) => Token::Key(k).id(),
        None => {
            let logits = model.set_context(&tokens)?;
            let mode_fits =
                |id: u32| mood.is_none_or(|m| Key::from_index((id - ids::KEY) as usize).minor == m.is_minor());
            let candidates =
                (ids::KEY..ids::MOOD).filter(|&id| mode_fits(id)).map(|id| (id, logits[id as usize])).collect();
            sample_from(candidates, 1.0, rng).ok_or("no key")?
        }
    };
    tokens.push(key_id);
    let mood_id = match mood {
        // Every Dance phrase the model learned is fast, so its mood is the fast one of its mode: a
        // slow mood (the style comes after the mood in the stream) would ask for what it never heard.
        _ if style == Style::Dance => {
            let minor = mood.map_or_else(|| key_is_minor(key_id), Mood::is_minor);
            Token::Mood(Mood::from_mode_and_tempo(minor, true)).id()
        }
        Some(m) => Token::Mood(m).id(),
        None => {
            let logits = model.set_context(&tokens)?;
            let candidates = (ids::MOOD..ids::BAR).map(|id| (id, logits[id as usize])).collect();
            sample_from(candidates, 1.0, rng).ok_or("no mood")?
        }
    };
    Ok([tokens[0], tokens[1], key_id, mood_id, Token::Style(style).id()])
}

fn key_is_minor(key_id: u32) -> bool {
    matches!(Token::from_id(key_id), Some(Token::Key(k)) if k.minor)
}

/// Everything one bar's generation depends on.
pub struct BarRequest<'a> {
    pub header: [u32; HEADER_LENGTH],
    /// Earlier bars' tokens, oldest first, each starting with BAR; only the most recent that fit are used.
    pub history: &'a [&'a [u32]],
    /// The bar index of `history[0]` (it sets where the context window may start).
    pub history_first_bar: i64,
    /// Tokens of this bar to keep (starting with BAR): what was already heard before a regeneration.
    pub forced_prefix: &'a [u32],
    /// The first tick the new tokens may place a note at (the playhead when the prefix was cut), so
    /// the part of the bar already heard stays as it was for the next pass too.
    pub resume_tick: u32,
    /// Notes of kept (locked) parts after the prefix, ticks relative to the bar: the bar is sampled
    /// around them, and the model hears them where they fall.
    pub forced_notes: &'a [Note],
    /// Chords forced on the bar (followed or typed): written as chord tokens where they change, and
    /// the parts' notes kept to their tones.
    pub harmony: Option<&'a BarHarmony>,
    pub constraints: Constraints,
    /// Parts the bar must give a note before it ends: in a loop's last bar, the enabled parts the
    /// loop has not played yet (`parts_owed`).
    pub owed_parts: [bool; 3],
    pub rng: Rng,
}

/// What a loop's last bar owes: every part the constraints let play that none of the loop's other
/// bars has a note of, so an enabled part plays in every loop.
pub fn parts_owed<'a>(constraints: &Constraints, other_bars: impl IntoIterator<Item = &'a Note>) -> [bool; 3] {
    let mut owed = constraints.parts_allowed;
    for note in other_bars {
        owed[note.part.index()] = false;
    }
    owed
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

/// One bar's sampling, one token at a time, so several bars can be sampled side by side in a batch.
/// Kept (locked) note groups are injected where they fall, one token per step.
struct BarSampler {
    decoder: Decoder,
    /// The bar so far, starting with BAR.
    tokens: Vec<u32>,
    notes: usize,
    /// Kept notes still to come, last first.
    pending: Vec<Note>,
    /// Tokens of a kept note group still to feed.
    queued: std::collections::VecDeque<u32>,
    constraints: Constraints,
    rng: Rng,
    /// No new position before this tick.
    resume_tick: i32,
    /// Forced chords: the bar's harmony, and the changes still to write, last first.
    harmony: Option<BarHarmony>,
    pending_chords: Vec<crate::music::Chord>,
    /// A part that must start a note at this tick (a forced chord change) before the position ends.
    articulate: Option<(u32, Part)>,
    /// Parts that must start a note before the bar ends, until they have: those a loop owes and those
    /// asked to play.
    owed: [bool; 3],
    /// What the kept (locked) and disabled parts do in this bar: their control tokens say it.
    kept_controls: BarControls,
    /// The bar's notes so far (ticks from the bar start): what sounds against the next pitch.
    heard: Vec<Note>,
}

impl BarSampler {
    /// `prefix` (starting with BAR) has already been fed to the model.
    fn new(
        prefix: &[u32],
        forced_notes: &[Note],
        harmony: Option<&BarHarmony>,
        resume_tick: u32,
        constraints: Constraints,
        owed: [bool; 3],
        rng: Rng,
    ) -> Result<Self, String> {
        let mut decoder = Decoder::at_bar_start(0);
        let mut notes = 0;
        // A part asked to play owes the bar a note.
        let mut owed = Part::ALL
            .map(|p| owed[p.index()] || constraints.controls.asks_to_play(p) && constraints.parts_allowed[p.index()]);
        let mut heard = Vec::new();
        for &id in prefix {
            if let Decoded::Note(note) = decoder.push(id)? {
                notes += 1;
                owed[note.part.index()] = false;
                heard.push(note);
            }
        }
        let prefix_end_tick = decoder.position.max(-1);
        let kept_controls = BarControls::measure(forced_notes);
        let mut pending: Vec<Note> =
            forced_notes.iter().filter(|n| n.start_tick as i32 > prefix_end_tick).copied().collect();
        pending.sort_by_key(|n| (n.start_tick, n.part, std::cmp::Reverse(n.pitch)));
        pending.dedup_by_key(|n| (n.start_tick, n.part, n.pitch));
        pending.reverse();
        // A change the playhead has passed is written at the first tick still to come, and every change
        // on a position the sampler can place (the 16th/16th-triplet grid).
        let first_open = (prefix_end_tick + 1).max(resume_tick as i32).max(0) as u32;
        let on_grid_from = |tick: u32| (tick..TICKS_PER_BAR).find(|&t| super::sampler::on_grid(t as u8));
        let mut pending_chords: Vec<crate::music::Chord> = harmony
            .map(|h| h.changes.iter())
            .into_iter()
            .flatten()
            .filter_map(|c| Some(crate::music::Chord { start_tick: on_grid_from(c.start_tick.max(first_open))?, ..*c }))
            .collect();
        pending_chords.reverse();
        pending_chords.dedup_by_key(|c| c.start_tick);
        Ok(BarSampler {
            decoder,
            tokens: prefix.to_vec(),
            notes,
            pending,
            queued: Default::default(),
            constraints,
            rng,
            resume_tick: resume_tick as i32,
            harmony: harmony.cloned(),
            pending_chords,
            articulate: None,
            owed,
            kept_controls,
            heard,
        })
    }

    /// The constraints at the decoder's position: under a forced chord, its tones; against the
    /// notes sounding there, no semitone clash between parts and (Dance) the lead above the arp;
    /// straight lengths on straight onsets; and what an asked density, motion or drive allows.
    fn constraints_here(&self) -> Constraints {
        let tick = self.decoder.position.max(0) as u32;
        let mut here = self.constraints;
        if let Some(harmony) = self.harmony.as_ref().filter(|h| tick >= h.from_tick) {
            let chord = harmony.chord_at(tick).flatten();
            here.chord_tones = chord.map_or(0, |(root, quality)| chord_mask(root, quality));
            here.scale_mask = harmony.scale.unwrap_or(self.constraints.scale_mask);
        }
        let sounding = |part: Part| {
            self.heard.iter().filter(move |n| n.part == part && n.start_tick <= tick && tick < n.end_tick())
        };
        for part in Part::ALL {
            here.clash_classes[part.index()] = Part::ALL
                .into_iter()
                .filter(|&other| other != part)
                .flat_map(sounding)
                .fold(0, |mask, n| mask | semitone_neighbours(n.pitch));
        }
        if here.lead_on_top {
            if let Some(lowest_lead) = sounding(Part::Lead).map(|n| n.pitch).min() {
                here.windows[Part::Arp.index()].1 = lowest_lead.saturating_sub(1);
            }
            if let Some(highest_arp) = sounding(Part::Arp).map(|n| n.pitch).max() {
                here.windows[Part::Lead.index()].0 = highest_arp.saturating_add(1).min(127);
            }
        }
        here.triplet_lengths = !tick.is_multiple_of(3) || self.heard.iter().any(|n| !n.start_tick.is_multiple_of(3));
        // An asked density is a ceiling too: a part that has had its bin's most onsets starts no more.
        for part in Part::ALL {
            let Some(bin) = self.constraints.controls.density[part.index()] else { continue };
            let Some(&next_edge) = DENSITY_BIN_EDGES.get(bin as usize + 1) else { continue };
            if self.onsets_before(part, tick) as u32 >= next_edge - 1 {
                here.parts_allowed[part.index()] = false;
            }
        }
        // An asked motion or drive is kept where one token decides it: an arpeggio's single notes, an
        // offbeat bass only on the offbeat 8ths, a held bass's one or two onsets.
        let asked = self.constraints.controls;
        here.arp_single_notes = asked.arp_motion == Some(ArpMotion::Arpeggio);
        let bass_may_start = match asked.bass_drive {
            Some(BassDrive::Offbeat) => tick % 12 == 6,
            Some(BassDrive::Held) => self.onsets_before(Part::Bass, tick) < 2,
            _ => true,
        };
        here.parts_allowed[Part::Bass.index()] &= bass_may_start;
        here
    }

    /// How many distinct ticks before `tick` the bar's notes of `part` start on.
    fn onsets_before(&self, part: Part, tick: u32) -> usize {
        let mut ticks: Vec<u32> =
            self.heard.iter().filter(|n| n.part == part && n.start_tick < tick).map(|n| n.start_tick).collect();
        ticks.dedup();
        ticks.len()
    }

    /// The next token to feed, given the logits after the last one; None when the bar is complete.
    fn next_token(&mut self, logits: &[f32]) -> Result<Option<u32>, String> {
        let id = match self.queued.pop_front() {
            Some(id) => id,
            None => match self.choose(logits) {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        if let Decoded::Note(note) = self.decoder.push(id)? {
            self.notes += 1;
            self.owed[note.part.index()] = false;
            self.heard.push(note);
        }
        self.tokens.push(id);
        Ok(Some(id))
    }

    /// Whether control token `id` fits: a part the model may not start (kept or off) says what its
    /// kept notes do; an asked control is the only one; an open density fits an asked motion or
    /// drive; an owed part is not silent.
    fn control_allowed(&self, token: Token) -> bool {
        let allowed = |part: Part| self.constraints.parts_allowed[part.index()];
        let owed = |part: Part| self.owed[part.index()];
        let asked = &self.constraints.controls;
        let kept = &self.kept_controls;
        match token {
            Token::Density(part, bin) if !allowed(part) => bin == kept.density[part.index()],
            Token::Density(part, bin) => {
                // An asked motion or drive comes after the density: an open density is kept to its bins.
                let fits_asked = match part {
                    Part::Lead => true,
                    Part::Arp => asked.arp_motion.is_none_or(|m| m.density_bins().contains(&bin)),
                    Part::Bass => asked.bass_drive.is_none_or(|d| d.density_bins().contains(&bin)),
                };
                match asked.density[part.index()] {
                    Some(asked_bin) => bin == asked_bin,
                    None => fits_asked && !(owed(part) && bin == 0),
                }
            }
            Token::ArpMotion(motion) if !allowed(Part::Arp) => motion == kept.arp_motion,
            Token::ArpMotion(motion) => {
                asked.arp_motion.is_none_or(|m| m == motion) && !(owed(Part::Arp) && motion == ArpMotion::Rest)
            }
            Token::BassDrive(drive) if !allowed(Part::Bass) => drive == kept.bass_drive,
            Token::BassDrive(drive) => {
                asked.bass_drive.is_none_or(|d| d == drive) && !(owed(Part::Bass) && drive == BassDrive::Rest)
            }
            _ => false,
        }
    }

    /// The next of the bar's control tokens: what is asked or kept, or the model's pick among the rest.
    fn choose_control(&mut self, logits: &[f32]) -> Option<u32> {
        let temperature = self.constraints.temperature.max(0.05);
        let fits = |id: u32| self.decoder.allows(id) && Token::from_id(id).is_some_and(|t| self.control_allowed(t));
        let candidates: Vec<(u32, f32)> = (ids::DENSITY..ids::VOCAB_SIZE)
            .filter(|&id| fits(id))
            .map(|id| (id, logits[id as usize] / temperature))
            .filter(|c| c.1.is_finite())
            .collect();
        // The controls must be complete for the bar to decode: with nothing left, the grammar's first.
        let fallback = (ids::DENSITY..ids::VOCAB_SIZE)
            .find(|&id| fits(id))
            .or_else(|| (ids::DENSITY..ids::VOCAB_SIZE).find(|&id| self.decoder.allows(id)));
        sample_from(candidates, self.constraints.top_p, &mut self.rng).or(fallback)
    }

    fn choose(&mut self, logits: &[f32]) -> Option<u32> {
        if self.decoder.expects_controls() {
            return self.choose_control(logits);
        }
        let next_forced = self.pending.last().map(|n| (n.start_tick, n.part));
        let next_chord = self.pending_chords.last().map(|c| c.start_tick);
        // At a forced chord's position, its chord token comes first.
        if let (Some(tick), true) = (next_chord, self.decoder.expects_chord()) {
            if self.decoder.position == tick as i32 {
                let chord = self.pending_chords.pop().expect("checked");
                // The bass (or, without one, the arp) plays the new chord where it changes.
                self.articulate = [Part::Bass, Part::Arp]
                    .into_iter()
                    .find(|&p| self.constraints_here().part_may_start(p, tick as i32))
                    .filter(|_| chord.chord.is_some())
                    .map(|part| (tick, part));
                return Some(Token::Chord(chord.chord).id());
            }
        }
        let full = self.tokens.len() >= MAX_TOKENS_PER_BAR || self.notes >= MAX_NOTES_PER_GENERATED_BAR;
        if full && self.decoder.at_boundary() && next_forced.is_none() && next_chord.is_none() {
            return None;
        }
        // Still inside the part already heard, only a position from the resume tick on (or the bar's
        // end) may follow, so nothing is added where the playhead has been. Under forced chords the
        // model writes no chord of its own, and no position skips a forced change.
        let forced_harmony = self.harmony.is_some();
        let restricted = self.decoder.position < self.resume_tick || forced_harmony;
        // Until the part that must sound the change has started its note, nothing moves on.
        let waiting_for = self
            .articulate
            .filter(|&(tick, part)| self.decoder.position == tick as i32 && self.decoder.part.is_none_or(|p| p < part))
            .map(|a| a.1);
        let masked;
        let logits = if restricted {
            let resumed = self.decoder.position >= self.resume_tick;
            let may_follow = |id: u32| match Token::from_id(id) {
                Some(Token::Bar) => next_chord.is_none() && waiting_for.is_none(),
                Some(Token::Position(tick)) => {
                    tick as i32 >= self.resume_tick
                        && next_chord.is_none_or(|c| tick as u32 <= c)
                        && waiting_for.is_none()
                }
                Some(Token::Chord(_)) => resumed && !forced_harmony,
                Some(Token::Part(p)) => resumed && waiting_for.is_none_or(|w| p <= w),
                _ => resumed,
            };
            masked = mask_logits(logits, may_follow);
            &masked[..]
        } else {
            logits
        };
        let constraints = self.constraints_here();
        // A part still owed: the bar may not end, and no part after it in a position's order may start,
        // until it has a note (a kept group or a chord's articulation at this position comes first).
        let position = self.decoder.position.max(0);
        let owing = Part::ALL.map(|p| self.owed[p.index()] && constraints.part_may_start(p, position));
        let forced_here = next_forced.is_some_and(|(tick, _)| self.decoder.position == tick as i32);
        let owed_masked;
        let logits = if owing.contains(&true) && waiting_for.is_none() && !forced_here {
            let may_follow = |id: u32| match Token::from_id(id) {
                Some(Token::Bar) => false,
                // Parts written before the first owed one at a position leave it its place.
                Some(Token::Part(p)) => {
                    owing[p.index()] || Part::ALL.iter().take_while(|q| !owing[q.index()]).any(|&q| q == p)
                }
                _ => true,
            };
            owed_masked = mask_logits(logits, may_follow);
            &owed_masked[..]
        } else {
            logits
        };
        // Out of sampling room (e.g. a full bar) but kept notes or chords remain: jump straight to them.
        let jump = next_forced.map(|f| f.0).into_iter().chain(next_chord).min();
        let id = match sample(logits, &self.decoder, &constraints, next_forced, &mut self.rng) {
            Some(id) if id == Token::Bar.id() => return None,
            Some(id) => id,
            None => match jump {
                Some(tick) if self.decoder.allows(Token::Position(tick as u8).id()) => Token::Position(tick as u8).id(),
                _ => return None,
            },
        };
        // Reaching a kept note group's part: queue that group's notes as they were.
        if let (Some(Token::Part(part)), Some((tick, forced_part))) = (Token::from_id(id), next_forced) {
            if part == forced_part && self.decoder.position == tick as i32 {
                while self.pending.last().is_some_and(|n| n.start_tick == tick && n.part == part) {
                    let note = self.pending.pop().expect("checked");
                    self.queued.push_back(Token::Pitch(note.pitch).id());
                    self.queued
                        .push_back(Token::Duration(crate::music::vocab::duration_index(note.duration_ticks)).id());
                    self.queued.push_back(Token::Velocity(crate::music::vocab::velocity_bin(note.velocity)).id());
                }
            }
        }
        Some(id)
    }

    /// The bar's tokens; a bar cut off mid-note is trimmed back to its last boundary.
    fn finish(mut self) -> Vec<u32> {
        while !decoder_at_boundary_after(&self.tokens) {
            self.tokens.pop();
        }
        self.tokens
    }
}

/// Bars the context window's start moves by: the cache is reused while the start stays.
const WINDOW_STRIDE_BARS: i64 = 4;

/// The context for a bar: the header and as much of `history` as fits with room for the bar. The
/// window starts on a bar whose index is a multiple of the stride, so it depends on the bars alone
/// (never on what the cache happened to hold: a bounce is the same whatever order bars were made in),
/// and consecutive bars extend the same window, reusing the cache.
fn bar_context(
    model: &dyn TokenModel,
    header: [u32; HEADER_LENGTH],
    history: &[&[u32]],
    history_first_bar: i64,
    forced_prefix: &[u32],
) -> Vec<u32> {
    let budget = model.context_length().saturating_sub(MAX_TOKENS_PER_BAR + forced_prefix.len() + header.len());
    let history_len = |first: usize| history[first..].iter().map(|b| b.len()).sum::<usize>();
    let fits = |first: usize| history_len(first) <= budget;
    let on_stride = |first: usize| (history_first_bar + first as i64).rem_euclid(WINDOW_STRIDE_BARS) == 0;
    let first = (0..=history.len())
        .find(|&f| fits(f) && (f == 0 || on_stride(f)))
        .or_else(|| (0..=history.len()).find(|&f| fits(f)))
        .unwrap_or(history.len());
    let mut context: Vec<u32> = header.to_vec();
    for bar in &history[first..] {
        context.extend_from_slice(bar);
    }
    context.extend_from_slice(forced_prefix);
    context
}

/// Samples one bar. Returns its tokens (starting with BAR, without the next bar's BAR).
pub fn generate_bar(model: &mut dyn TokenModel, request: BarRequest) -> Result<Vec<u32>, String> {
    let BarRequest {
        header,
        history,
        history_first_bar,
        forced_prefix,
        resume_tick,
        forced_notes,
        harmony,
        constraints,
        owed_parts,
        rng,
    } = request;
    let context = bar_context(model, header, history, history_first_bar, forced_prefix);
    let mut sampler = BarSampler::new(forced_prefix, forced_notes, harmony, resume_tick, constraints, owed_parts, rng)?;
    let mut logits = model.set_context(&context)?;
    while let Some(id) = sampler.next_token(&logits)? {
        logits = model.feed(&[vec![id]])?;
    }
    Ok(sampler.finish())
}

/// One bar of a candidate phrase.
pub struct BarPlan {
    /// Notes of kept (locked) parts, ticks relative to the bar.
    pub forced_notes: Vec<Note>,
    pub harmony: Option<BarHarmony>,
    pub rng: Rng,
}

/// One candidate phrase: its bars, in order, sampled under `constraints`.
pub struct PhrasePlan {
    pub bars: Vec<BarPlan>,
    pub constraints: Constraints,
}

/// Samples several whole phrases at once, one per plan, as one batch: every model step advances
/// every candidate by one token (a candidate that has finished feeds PAD, which only it would see).
/// Candidates that run into the context length finish bar by bar on their own. Returns each
/// candidate's bars' tokens.
pub fn generate_phrases(
    model: &mut dyn TokenModel,
    header: [u32; HEADER_LENGTH],
    plans: &[PhrasePlan],
) -> Result<Vec<Vec<Vec<u32>>>, String> {
    let rows = plans.len();
    let mut done: Vec<Vec<Vec<u32>>> = vec![Vec::new(); rows];
    if rows == 0 {
        return Ok(done);
    }
    let bar = Token::Bar.id();
    // The phrase is a loop: its last bar owes the parts the others did not play.
    let owed = |plan: &PhrasePlan, earlier: &[Vec<u32>]| {
        let last = earlier.len() + 1 == plan.bars.len();
        let played: Vec<Note> = earlier.iter().flat_map(|tokens| bar_notes(tokens)).collect();
        if last {
            parts_owed(&plan.constraints, &played)
        } else {
            [false; 3]
        }
    };
    let start = |plan: &PhrasePlan, earlier: &[Vec<u32>]| {
        let b = &plan.bars[earlier.len()];
        let owed = owed(plan, earlier);
        BarSampler::new(&[bar], &b.forced_notes, b.harmony.as_ref(), 0, plan.constraints, owed, b.rng.clone())
    };
    let mut samplers: Vec<Option<BarSampler>> = Vec::with_capacity(rows);
    for plan in plans {
        samplers.push(if plan.bars.is_empty() { None } else { Some(start(plan, &[])?) });
    }
    let mut context = header.to_vec();
    context.push(bar);
    let first = model.set_context(&context)?;
    model.fork(rows);
    let mut logits: Vec<f32> = first.iter().copied().cycle().take(rows * VOCAB_SIZE).collect();
    // Leave one step of room; what does not fit is finished below, bar by bar.
    while samplers.iter().any(Option::is_some) && model.context().len() + 1 < model.context_length() {
        let mut feed = Vec::with_capacity(rows);
        for (row, plan) in plans.iter().enumerate() {
            let row_logits = &logits[row * VOCAB_SIZE..(row + 1) * VOCAB_SIZE];
            let token = match samplers[row].as_mut() {
                None => Token::Pad.id(),
                Some(sampler) => match sampler.next_token(row_logits)? {
                    Some(id) => id,
                    None => {
                        done[row].push(samplers[row].take().expect("some").finish());
                        if done[row].len() < plan.bars.len() {
                            samplers[row] = Some(start(plan, &done[row])?);
                            bar
                        } else {
                            Token::Pad.id()
                        }
                    }
                },
            };
            feed.push(vec![token]);
        }
        if samplers.iter().all(Option::is_none) {
            break;
        }
        logits = model.feed(&feed)?;
    }
    // Out of context: the unfinished bars (from their start) and the rest, one bar at a time.
    for (row, plan) in plans.iter().enumerate() {
        if samplers[row].is_none() {
            continue;
        }
        while done[row].len() < plan.bars.len() {
            let index = done[row].len();
            let history: Vec<&[u32]> = done[row].iter().map(Vec::as_slice).collect();
            let b = &plan.bars[index];
            let request = BarRequest {
                header,
                history: &history,
                history_first_bar: 0,
                forced_prefix: &[bar],
                resume_tick: 0,
                forced_notes: &b.forced_notes,
                harmony: b.harmony.as_ref(),
                constraints: plan.constraints,
                owed_parts: owed(plan, &done[row]),
                rng: b.rng.clone(),
            };
            let tokens = generate_bar(model, request)?;
            done[row].push(tokens);
        }
    }
    Ok(done)
}

/// The pitch classes a semitone above and below `pitch`'s (12-bit).
fn semitone_neighbours(pitch: u8) -> u16 {
    let class = pitch % 12;
    1 << ((class + 1) % 12) | 1 << ((class + 11) % 12)
}

/// `logits` with every token `may_follow` refuses set to minus infinity.
fn mask_logits(logits: &[f32], may_follow: impl Fn(u32) -> bool) -> Vec<f32> {
    (0..logits.len() as u32).map(|id| if may_follow(id) { logits[id as usize] } else { f32::NEG_INFINITY }).collect()
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

/// The chord changes of one bar's tokens, with ticks relative to the bar.
pub fn bar_chords(tokens: &[u32]) -> Vec<crate::music::Chord> {
    let mut decoder = Decoder::at_bar_start(0);
    let mut chords = Vec::new();
    for &id in tokens {
        match decoder.push(id) {
            Ok(Decoded::Chord(c)) => chords.push(c),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    chords
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::model::fake::FakeModel;
    use crate::music::controls::ControlChoice;
    use crate::music::vocab::Key;
    use crate::music::{Part, TICKS_PER_BAR};

    fn header() -> [u32; HEADER_LENGTH] {
        [
            Token::Bos.id(),
            Token::Tempo(4).id(),
            Token::Key(Key { tonic: 9, minor: true }).id(),
            Token::Mood(Mood::Sad).id(),
            Token::Style(Style::Pop).id(),
        ]
    }

    fn bar(model: &mut FakeModel, forced_notes: &[Note], constraints: Constraints, seed: u32) -> Vec<u32> {
        owing_bar(model, forced_notes, constraints, [false; 3], Rng::for_bar(seed, 0, 0))
    }

    /// A bar from its start with no history, owing `owed_parts`.
    fn owing_bar(
        model: &mut dyn TokenModel,
        forced_notes: &[Note],
        constraints: Constraints,
        owed_parts: [bool; 3],
        rng: Rng,
    ) -> Vec<u32> {
        let request = BarRequest {
            header: header(),
            history: &[],
            history_first_bar: 0,
            forced_prefix: &[Token::Bar.id()],
            resume_tick: 0,
            forced_notes,
            harmony: None,
            constraints,
            owed_parts,
            rng,
        };
        generate_bar(model, request).expect("a bar")
    }

    /// The fake model, but one that all but never starts `shy` (its part token 30 nats down).
    struct Shy {
        inner: FakeModel,
        shy: Part,
    }

    impl Shy {
        fn damp(&self, mut logits: Vec<f32>) -> Vec<f32> {
            for row in logits.chunks_mut(VOCAB_SIZE) {
                row[Token::Part(self.shy).id() as usize] -= 30.0;
            }
            logits
        }
    }

    impl TokenModel for Shy {
        fn context_length(&self) -> usize {
            self.inner.context_length()
        }
        fn context(&self) -> &[u32] {
            self.inner.context()
        }
        fn set_context(&mut self, context: &[u32]) -> Result<Vec<f32>, String> {
            let logits = self.inner.set_context(context)?;
            Ok(self.damp(logits))
        }
        fn feed(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<f32>, String> {
            let logits = self.inner.feed(tokens)?;
            Ok(self.damp(logits))
        }
        fn fork(&mut self, rows: usize) {
            self.inner.fork(rows)
        }
    }

    #[test]
    fn a_loops_last_bar_gives_every_enabled_part_it_lacks_a_note() {
        let plans = |bars: i64| -> Vec<PhrasePlan> {
            (1..9)
                .map(|seed| PhrasePlan {
                    bars: (0..bars)
                        .map(|i| BarPlan { forced_notes: Vec::new(), harmony: None, rng: Rng::for_bar(seed, i, 0) })
                        .collect(),
                    constraints: Constraints::default(),
                })
                .collect()
        };
        let parts_of =
            |bars: &[Vec<u32>]| Part::ALL.map(|p| bars.iter().flat_map(|b| bar_notes(b)).any(|n| n.part == p));
        // Four-bar loops: the shy model leaves the lead out of the first three bars; the last bar owes
        // it, and every part plays in the loop. A one-bar loop's only bar owes every part.
        for length in [4, 1] {
            let mut shy = Shy { inner: FakeModel::new(), shy: Part::Lead };
            let loops = generate_phrases(&mut shy, header(), &plans(length)).expect("phrases");
            for (seed, bars) in loops.iter().enumerate() {
                let (before, last) = bars.split_at(bars.len() - 1);
                assert!(!parts_of(before)[0], "seed {seed}: the shy model played a lead unasked");
                assert!(parts_of(last)[0], "seed {seed}, {length} bars: no lead in the loop's last bar");
                assert!(parts_of(bars).iter().all(|&p| p), "seed {seed}: a part is missing from the loop");
                assert!(bars.iter().all(|b| decoder_at_boundary_after(b)));
            }
        }
        // The bar-by-bar path owes the same: a disabled part is never owed.
        let constraints = Constraints { parts_allowed: [true, true, false], ..Constraints::default() };
        let earlier = bar_notes(&bar(&mut FakeModel::new(), &[], constraints, 3));
        let owed = parts_owed(&constraints, earlier.iter().filter(|n| n.part != Part::Lead));
        assert_eq!(owed, [true, false, false]);
        let mut shy = Shy { inner: FakeModel::new(), shy: Part::Lead };
        let last = bar_notes(&owing_bar(&mut shy, &[], constraints, owed, Rng::for_bar(5, 3, 0)));
        assert!(last.iter().any(|n| n.part == Part::Lead), "{last:?}");
        assert!(last.iter().all(|n| n.part != Part::Bass));
    }

    /// The control tokens right after a bar's BAR.
    fn controls_of(tokens: &[u32]) -> Vec<Token> {
        tokens[1..=crate::music::controls::CONTROLS_PER_BAR].iter().map(|&id| Token::from_id(id).unwrap()).collect()
    }

    #[test]
    fn asked_controls_are_written_and_kept_or_silent_parts_say_what_they_do() {
        let asked = ControlChoice {
            density: [Some(3), None, None],
            arp_motion: Some(ArpMotion::Arpeggio),
            bass_drive: Some(BassDrive::Offbeat),
        };
        let kept_bass = vec![
            Note { start_tick: 0, part: Part::Bass, pitch: 33, duration_ticks: 12, velocity: 88 },
            Note { start_tick: 24, part: Part::Bass, pitch: 40, duration_ticks: 12, velocity: 88 },
        ];
        // The lead is off, the bass kept (locked): the lead's density is 0 and the bass's says its two
        // held notes, whatever was asked; the arp's motion is the one asked.
        let constraints =
            Constraints { parts_allowed: [false, true, false], controls: asked, ..Constraints::default() };
        let mut model = FakeModel::new();
        for seed in 1..12 {
            let tokens = bar(&mut model, &kept_bass, constraints, seed);
            let controls = controls_of(&tokens);
            assert_eq!(controls[0], Token::Density(Part::Lead, 0), "seed {seed}");
            assert!(matches!(controls[1], Token::Density(Part::Arp, _)), "seed {seed}");
            assert_eq!(controls[2], Token::Density(Part::Bass, 1), "seed {seed}: two kept onsets");
            assert_eq!(controls[3], Token::ArpMotion(ArpMotion::Arpeggio), "seed {seed}");
            assert_eq!(controls[4], Token::BassDrive(BassDrive::Held), "seed {seed}: the kept bass is held");
            assert!(decoder_at_boundary_after(&tokens));
        }
        // Every part on: the asked lead density and bass drive are written; Auto leaves the model free
        // (it picks more than one arp density over the seeds).
        let constraints = Constraints { controls: asked, ..Constraints::default() };
        let mut arp_densities = std::collections::BTreeSet::new();
        for seed in 1..12 {
            let controls = controls_of(&bar(&mut model, &[], constraints, seed));
            assert_eq!(controls[0], Token::Density(Part::Lead, 3));
            assert_eq!(controls[4], Token::BassDrive(BassDrive::Offbeat));
            // An open density agrees with the motion and drive asked after it.
            let (Token::Density(_, arp_bin), Token::Density(_, bass_bin)) = (controls[1], controls[2]) else {
                panic!("{controls:?}")
            };
            assert!(ArpMotion::Arpeggio.density_bins().contains(&arp_bin), "seed {seed}: arp bin {arp_bin}");
            assert!(BassDrive::Offbeat.density_bins().contains(&bass_bin), "seed {seed}: bass bin {bass_bin}");
            arp_densities.insert(arp_bin);
        }
        assert!(arp_densities.len() > 1, "Auto always gave {arp_densities:?}");
        // An asked density is a ceiling: 1–2 lead onsets, whatever the model would add.
        let sparse = ControlChoice { density: [Some(1), None, None], ..ControlChoice::AUTO };
        let mut leads = 0;
        for seed in 1..30 {
            let notes =
                bar_notes(&bar(&mut model, &[], Constraints { controls: sparse, ..Constraints::default() }, seed));
            let mut onsets: Vec<u32> = notes.iter().filter(|n| n.part == Part::Lead).map(|n| n.start_tick).collect();
            onsets.dedup();
            assert!(onsets.len() <= 2, "seed {seed}: {} lead onsets asked 1–2", onsets.len());
            leads += onsets.len();
        }
        assert!(leads > 10, "the lead hardly played ({leads} onsets in 29 bars): the ceiling was not tested");
        // A part the loop owes is not told to rest.
        let owed = owing_bar(&mut model, &[], Constraints::default(), [false, true, true], Rng::for_bar(2, 3, 0));
        let controls = controls_of(&owed);
        assert_ne!(controls[1], Token::Density(Part::Arp, 0));
        assert_ne!(controls[2], Token::Density(Part::Bass, 0));
        assert_ne!(controls[3], Token::ArpMotion(ArpMotion::Rest));
        assert_ne!(controls[4], Token::BassDrive(BassDrive::Rest));
    }

    #[test]
    fn an_asked_arpeggio_plays_single_notes_and_an_asked_bass_drive_keeps_its_onsets() {
        let mut model = FakeModel::new();
        let (mut arp_onsets, mut bass_onsets) = (0, 0);
        for (drive, onset_ok) in [
            (BassDrive::Offbeat, (|t: u32, _: usize| t % 12 == 6) as fn(u32, usize) -> bool),
            (BassDrive::Held, |_, index| index < 2),
        ] {
            let asked =
                ControlChoice { arp_motion: Some(ArpMotion::Arpeggio), bass_drive: Some(drive), ..ControlChoice::AUTO };
            for seed in 1..25 {
                let notes =
                    bar_notes(&bar(&mut model, &[], Constraints { controls: asked, ..Default::default() }, seed));
                let onsets = |part: Part| {
                    let mut ticks: Vec<u32> = notes.iter().filter(|n| n.part == part).map(|n| n.start_tick).collect();
                    let all = ticks.len();
                    ticks.dedup();
                    (ticks, all)
                };
                let (arp, arp_notes) = onsets(Part::Arp);
                assert_eq!(arp.len(), arp_notes, "seed {seed}: an arpeggio chorded at {arp:?}");
                let (bass, _) = onsets(Part::Bass);
                for (index, &tick) in bass.iter().enumerate() {
                    assert!(onset_ok(tick, index), "seed {seed}, {drive:?}: a bass onset at {tick} ({bass:?})");
                }
                arp_onsets += arp.len();
                bass_onsets += bass.len();
            }
        }
        assert!(arp_onsets > 40 && bass_onsets > 20, "too few notes to test: {arp_onsets} arp, {bass_onsets} bass");
    }

    #[test]
    fn a_dance_header_has_the_fast_mood_of_its_mode() {
        let mood_of = |header: [u32; HEADER_LENGTH]| match Token::from_id(header[3]) {
            Some(Token::Mood(m)) => m,
            other => panic!("{other:?}"),
        };
        let minor = |header: [u32; HEADER_LENGTH]| matches!(Token::from_id(header[2]), Some(Token::Key(k)) if k.minor);
        let mut model = FakeModel::new();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let mut rng = Rng::new(seed);
            let header = make_header(&mut model, 4, None, None, Style::Dance, &mut rng).unwrap();
            let expected = if minor(header) { Mood::Tense } else { Mood::Happy };
            assert_eq!(mood_of(header), expected, "seed {seed}");
            seen.insert(expected as u8);
            assert_eq!(Token::from_id(header[4]), Some(Token::Style(Style::Dance)));
        }
        assert_eq!(seen.len(), 2, "the fake model drew keys of one mode only");
        // An asked slow mood keeps its mode, at dance speed; in Pop it stays as asked.
        let mut asked =
            |mood, style| mood_of(make_header(&mut model, 4, None, Some(mood), style, &mut Rng::new(1)).unwrap());
        assert_eq!(asked(Mood::Calm, Style::Dance), Mood::Happy);
        assert_eq!(asked(Mood::Sad, Style::Dance), Mood::Tense);
        assert_eq!(asked(Mood::Sad, Style::Pop), Mood::Sad);
        assert_eq!(asked(Mood::Calm, Style::Pop), Mood::Calm);
    }

    #[test]
    fn parts_do_not_clash_the_dance_lead_stays_on_top_and_straight_onsets_get_straight_lengths() {
        let overlapping = |a: &Note, b: &Note| a.start_tick < b.end_tick() && b.start_tick < a.end_tick();
        let mut model = FakeModel::new();
        let mut pairs = 0;
        for lead_on_top in [false, true] {
            let constraints = Constraints { lead_on_top, ..Constraints::default() };
            for seed in 1..30 {
                let notes = bar_notes(&bar(&mut model, &[], constraints, seed));
                for a in &notes {
                    for b in notes.iter().filter(|b| b.part > a.part && overlapping(a, b)) {
                        pairs += 1;
                        let interval = (a.pitch as i32 - b.pitch as i32).rem_euclid(12);
                        assert!(interval != 1 && interval != 11, "seed {seed}: {a:?} clashes with {b:?}");
                        if lead_on_top && a.part == Part::Lead && b.part == Part::Arp {
                            assert!(a.pitch > b.pitch, "seed {seed}: the Dance lead {a:?} under the arp {b:?}");
                        }
                    }
                }
                if notes.iter().all(|n| n.start_tick % 3 == 0) {
                    assert!(notes.iter().all(|n| n.duration_ticks % 3 == 0), "seed {seed}: {notes:?}");
                }
            }
        }
        assert!(pairs > 50, "only {pairs} overlapping pairs: the test saw too little");
    }

    #[test]
    fn bars_follow_the_grammar_and_repeat_for_the_same_seed() {
        let mut model = FakeModel::new();
        let mut notes = 0;
        for seed in 1..20 {
            let tokens = bar(&mut model, &[], Constraints::default(), seed);
            assert!(decoder_at_boundary_after(&tokens), "seed {seed}: bar ends mid-note: {tokens:?}");
            assert_eq!(tokens[0], Token::Bar.id());
            assert_eq!(tokens, bar(&mut FakeModel::new(), &[], Constraints::default(), seed), "seed {seed}");
            notes += bar_notes(&tokens).len();
        }
        assert!(notes > 20, "only {notes} notes in 19 bars");
    }

    #[test]
    fn masks_hold_parts_registers_and_the_scale() {
        let a_minor = Key { tonic: 9, minor: true }.scale_mask();
        let constraints = Constraints {
            parts_allowed: [false, true, true],
            registers: [(60, 96), (57, 69), (28, 40)],
            scale_mask: a_minor,
            ..Constraints::default()
        };
        let mut model = FakeModel::new();
        let mut notes = Vec::new();
        for seed in 1..20 {
            notes.extend(bar_notes(&bar(&mut model, &[], constraints, seed)));
        }
        assert!(notes.len() > 20);
        for n in &notes {
            assert_ne!(n.part, Part::Lead, "a disabled part played: {n:?}");
            let (low, high) = constraints.registers[n.part.index()];
            assert!((low..=high).contains(&n.pitch), "{n:?} outside {low}–{high}");
            assert!(a_minor & (1 << (n.pitch % 12)) != 0, "{n:?} outside A minor");
        }
    }

    #[test]
    fn forced_notes_are_kept_exactly_and_batched_takes_keep_them_too() {
        let forced = vec![
            Note { start_tick: 0, part: Part::Bass, pitch: 33, duration_ticks: 12, velocity: 88 },
            Note { start_tick: 24, part: Part::Bass, pitch: 40, duration_ticks: 12, velocity: 88 },
        ];
        let constraints = Constraints { parts_allowed: [true, true, false], ..Constraints::default() };
        let tokens = bar(&mut FakeModel::new(), &forced, constraints, 7);
        let bass: Vec<Note> = bar_notes(&tokens).into_iter().filter(|n| n.part == Part::Bass).collect();
        assert_eq!(bass, forced);

        let plans: Vec<PhrasePlan> = (0..3)
            .map(|take| PhrasePlan {
                bars: (0..2)
                    .map(|b| BarPlan { forced_notes: forced.clone(), harmony: None, rng: Rng::for_bar(1, b, take) })
                    .collect(),
                constraints,
            })
            .collect();
        let phrases = generate_phrases(&mut FakeModel::new(), header(), &plans).expect("takes");
        assert_eq!(phrases.len(), 3);
        for phrase in &phrases {
            assert_eq!(phrase.len(), 2);
            for tokens in phrase {
                let bass: Vec<Note> = bar_notes(tokens).into_iter().filter(|n| n.part == Part::Bass).collect();
                assert_eq!(bass, forced);
                assert!(bar_notes(tokens).iter().all(|n| n.start_tick < TICKS_PER_BAR));
            }
        }
        assert_ne!(phrases[0], phrases[1], "two takes with their own dice came out the same");
    }

    #[test]
    fn the_heard_prefix_is_kept_when_a_bar_is_regenerated() {
        let mut model = FakeModel::new();
        let first = bar(&mut model, &[], Constraints::default(), 3);
        let prefix = prefix_before_tick(&first, 24);
        let request = BarRequest {
            header: header(),
            history: &[],
            history_first_bar: 0,
            forced_prefix: &prefix,
            resume_tick: 24,
            forced_notes: &[],
            harmony: None,
            constraints: Constraints { temperature: 1.5, ..Constraints::default() },
            owed_parts: [false; 3],
            rng: Rng::for_bar(3, 0, 1),
        };
        let again = generate_bar(&mut model, request).expect("bar");
        assert!(again.starts_with(&prefix));
        let heard = |tokens: &[u32]| bar_notes(tokens).into_iter().filter(|n| n.start_tick < 24).collect::<Vec<_>>();
        assert_eq!(heard(&again), heard(&first));
    }

    #[test]
    fn forced_chords_are_written_where_they_change_and_the_parts_keep_to_them() {
        use crate::music::harmony::chord_mask;
        use crate::music::{Chord, ChordQuality};
        let mut model = FakeModel::new();
        let first = bar(&mut model, &[], Constraints::default(), 5);
        let (f_minor, d_flat) = ((5, ChordQuality::Minor), (1, ChordQuality::Major));
        let harmony = BarHarmony {
            from_tick: 12,
            changes: vec![
                Chord { start_tick: 12, chord: Some(f_minor) },
                Chord { start_tick: 30, chord: Some(d_flat) },
            ],
            scale: None,
        };
        let mut checked = 0;
        for seed in 1..12 {
            let request = BarRequest {
                header: header(),
                history: &[],
                history_first_bar: 0,
                forced_prefix: &prefix_before_tick(&first, 12),
                resume_tick: 12,
                forced_notes: &[],
                harmony: Some(&harmony),
                constraints: Constraints::default(),
                owed_parts: [false; 3],
                rng: Rng::for_bar(seed, 0, 1),
            };
            let tokens = generate_bar(&mut model, request).expect("bar");
            let chords: Vec<Chord> = bar_chords(&tokens).into_iter().filter(|c| c.start_tick >= 12).collect();
            assert_eq!(
                chords,
                vec![Chord { start_tick: 12, chord: Some(f_minor) }, Chord { start_tick: 30, chord: Some(d_flat) }],
                "seed {seed}"
            );
            for n in bar_notes(&tokens).iter().filter(|n| n.start_tick >= 12 && n.part != Part::Lead) {
                let (root, quality) = if n.start_tick >= 30 { d_flat } else { f_minor };
                assert!(chord_mask(root, quality) & 1 << (n.pitch % 12) != 0, "seed {seed}: {n:?} is no chord tone");
                checked += 1;
            }
            let bass_at = |tick| bar_notes(&tokens).iter().any(|n| n.part == Part::Bass && n.start_tick == tick);
            assert!(bass_at(12) && bass_at(30), "seed {seed}: the bass does not play the changes");
            let heard = |t: &[u32]| bar_notes(t).into_iter().filter(|n| n.start_tick < 12).collect::<Vec<_>>();
            assert_eq!(heard(&tokens), heard(&first), "seed {seed}: the heard part changed");
        }
        assert!(checked > 20, "only {checked} arp and bass notes");

        // A change at a tick off the grid (a live cut lands anywhere) is written at the next grid tick,
        // and the bar still ends properly.
        let late =
            BarHarmony { from_tick: 29, changes: vec![Chord { start_tick: 29, chord: Some(d_flat) }], scale: None };
        for seed in 1..12 {
            let request = BarRequest {
                header: header(),
                history: &[],
                history_first_bar: 0,
                forced_prefix: &prefix_before_tick(&first, 29),
                resume_tick: 29,
                forced_notes: &[],
                harmony: Some(&late),
                constraints: Constraints::default(),
                owed_parts: [false; 3],
                rng: Rng::for_bar(seed, 0, 2),
            };
            let tokens = generate_bar(&mut model, request).expect("bar");
            let chords: Vec<Chord> = bar_chords(&tokens).into_iter().filter(|c| c.start_tick >= 29).collect();
            assert_eq!(chords, vec![Chord { start_tick: 30, chord: Some(d_flat) }], "seed {seed}");
            assert!(decoder_at_boundary_after(&tokens));
            assert!(bar_notes(&tokens).iter().any(|n| n.part == Part::Bass && n.start_tick == 30), "seed {seed}");
        }
    }
}

//! Phrases from the model through the plugin's own engine: `composer::make_header` and
//! `composer::generate_bar` with the sampler's `Constraints`, seeded per (seed, bar) with
//! `Rng::for_bar` exactly as the generator thread does (header from bar -1, bar `i` from bar `i`,
//! variation 0), each bar hearing every earlier bar of its phrase.

use crate::pool;
use neural_trio::generator::composer::{bar_chords, bar_notes, generate_bar, make_header, parts_owed, BarRequest};
use neural_trio::generator::model::TokenModel;
use neural_trio::generator::onnx::{OnnxModel, Provider};
use neural_trio::generator::sampler::{Constraints, Rng};
use neural_trio::music::controls::{ArpMotion, BassDrive, ControlChoice, Style};
use neural_trio::music::harmony::BarHarmony;
use neural_trio::music::tokens::HEADER_LENGTH;
use neural_trio::music::vocab::{Key, Mood, Token};
use neural_trio::music::{Chord, Note, Part, TICKS_PER_BAR};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The plugin's default top-p.
pub const DEFAULT_TOP_P: f32 = 1.0;

/// One generation setting (a row of the report).
#[derive(Debug, Clone)]
pub struct Setting {
    pub name: String,
    /// "temperature", "key_lock", "chords", "mood", "baseline", "dance" or "adherence".
    pub group: &'static str,
    pub temperature: f32,
    pub top_p: f32,
    pub key_lock: bool,
    pub mood: Option<Mood>,
    pub phrases: usize,
    /// None: the model under test; else the baseline's short name.
    pub baseline: Option<&'static str>,
    /// The phrases are made under the chords of held-out windows (as the plugin forces chords).
    pub forced_chords: bool,
    pub style: Style,
    /// The bar controls asked for (Auto: the model picks).
    pub controls: ControlChoice,
}

/// One phrase to make.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub setting: usize,
    pub index: usize,
    pub seed: u32,
    pub tempo_bin: u8,
    /// Key lock: the key is forced in the header and the scale mask is on.
    pub key: Option<Key>,
    pub mood: Option<Mood>,
    pub temperature: f32,
    pub top_p: f32,
    /// Index into the forced chord plans: each bar's chords, as the plugin forces them.
    pub harmony: Option<usize>,
    pub style: Style,
    pub controls: ControlChoice,
}

#[derive(Debug, Clone)]
pub struct Generated {
    pub job: Job,
    /// The header the phrase was made under (key and mood as chosen by the model when open).
    pub key: Key,
    pub mood: Mood,
    /// Notes with ticks from the phrase start, in tokenizer order.
    pub notes: Vec<Note>,
    /// The chord changes the model wrote (its CHORD tokens), ticks from the phrase start.
    pub chords: Vec<Chord>,
    /// The control tokens written after each BAR (asked, or the model's pick under Auto).
    pub bar_controls: Vec<WrittenControls>,
    pub tokens: usize,
    pub seconds: f64,
}

/// The control tokens of one bar as written: density bin per part, arp motion, bass drive (None where
/// a token is missing or not a control).
#[derive(Debug, Clone, Copy, Default)]
pub struct WrittenControls {
    pub density: [Option<u8>; 3],
    pub arp_motion: Option<ArpMotion>,
    pub bass_drive: Option<BassDrive>,
}

impl WrittenControls {
    /// From a bar's tokens (BAR, then the control tokens).
    pub fn of_bar(tokens: &[u32]) -> WrittenControls {
        let mut out = WrittenControls::default();
        for token in tokens
            .iter()
            .skip(1)
            .take(neural_trio::music::controls::CONTROLS_PER_BAR)
            .filter_map(|&id| Token::from_id(id))
        {
            match token {
                Token::Density(part, bin) => out.density[part.index()] = Some(bin),
                Token::ArpMotion(m) => out.arp_motion = Some(m),
                Token::BassDrive(d) => out.bass_drive = Some(d),
                _ => {}
            }
        }
        out
    }
}

pub fn constraints(job: &Job) -> Constraints {
    Constraints {
        temperature: job.temperature,
        top_p: job.top_p,
        parts_allowed: [true; 3],
        registers: Part::ALL.map(Part::default_register),
        scale_mask: job.key.map(|k| k.scale_mask()).unwrap_or(0x0fff),
        chord_tones: 0,
        controls: job.controls,
        lead_on_top: job.style == Style::Dance,
        ..Constraints::default()
    }
}

/// One phrase of `bars` bars.
pub fn phrase(
    model: &mut dyn TokenModel,
    job: &Job,
    bars: u32,
    forced: &[Vec<BarHarmony>],
) -> Result<Generated, String> {
    let started = Instant::now();
    let mut rng = Rng::for_bar(job.seed, -1, 0);
    let header = make_header(model, job.tempo_bin, job.key, job.mood, job.style, &mut rng)?;
    let key = match Token::from_id(header[2]) {
        Some(Token::Key(k)) => k,
        _ => return Err("header without a key".into()),
    };
    let mood = match Token::from_id(header[3]) {
        Some(Token::Mood(m)) => m,
        _ => return Err("header without a mood".into()),
    };
    let mut history: Vec<Vec<u32>> = Vec::with_capacity(bars as usize);
    let mut notes = Vec::new();
    let mut chords = Vec::new();
    let mut bar_controls = Vec::with_capacity(bars as usize);
    for bar in 0..bars {
        let refs: Vec<&[u32]> = history.iter().map(|b| b.as_slice()).collect();
        let tokens = generate_bar(
            model,
            BarRequest {
                header,
                history: &refs,
                history_first_bar: 0,
                forced_prefix: &[Token::Bar.id()],
                resume_tick: 0,
                forced_notes: &[],
                harmony: job.harmony.and_then(|h| forced.get(h)).and_then(|plan| plan.get(bar as usize)),
                constraints: constraints(job),
                // The phrase is a loop, as the plugin plays it: its last bar owes the parts not heard.
                owed_parts: if bar + 1 == bars { parts_owed(&constraints(job), &notes) } else { [false; 3] },
                rng: Rng::for_bar(job.seed, bar as i64, 0),
            },
        )?;
        notes.extend(
            bar_notes(&tokens).into_iter().map(|n| Note { start_tick: n.start_tick + bar * TICKS_PER_BAR, ..n }),
        );
        chords.extend(
            bar_chords(&tokens).into_iter().map(|c| Chord { start_tick: c.start_tick + bar * TICKS_PER_BAR, ..c }),
        );
        bar_controls.push(WrittenControls::of_bar(&tokens));
        history.push(tokens);
    }
    let tokens = HEADER_LENGTH + history.iter().map(|b| b.len()).sum::<usize>();
    notes.sort_by_key(|n| (n.start_tick, n.part, std::cmp::Reverse(n.pitch)));
    neural_trio::music::trim_monophonic(&mut notes); // as the plugin plays them
    Ok(Generated {
        job: *job,
        key,
        mood,
        notes,
        chords,
        bar_controls,
        tokens,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Runs every job on `threads` worker threads, each with its own model (one ONNX Runtime thread).
/// Results come back in job order.
pub fn run_all(
    library: &Path,
    model_path: &Path,
    jobs: &[Job],
    bars: u32,
    forced: &[Vec<BarHarmony>],
    threads: usize,
) -> Result<Vec<Generated>, String> {
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    // A progress line at every tenth of the jobs, and at the last.
    let step = (jobs.len() / 10).max(1);
    let results = pool::map_with(
        jobs,
        threads,
        || OnnxModel::load(library, model_path, 1, Provider::Cpu),
        |model, job| {
            let result = phrase(model, job, bars, forced);
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            if finished.is_multiple_of(step) || finished == jobs.len() {
                let elapsed = started.elapsed().as_secs_f64();
                let eta = elapsed / finished as f64 * (jobs.len() - finished) as f64;
                println!("  generated {finished}/{} phrases, {elapsed:.0} s, about {eta:.0} s left", jobs.len());
            }
            result
        },
    )?;
    results.into_iter().collect()
}

/// Notes as compact JSON rows: [start_tick, part, pitch, duration_ticks, velocity].
pub fn notes_json(notes: &[Note]) -> serde_json::Value {
    serde_json::Value::Array(
        notes
            .iter()
            .map(|n| serde_json::json!([n.start_tick, n.part.index(), n.pitch, n.duration_ticks, n.velocity]))
            .collect(),
    )
}

/// Asked controls as JSON for models/eval.py: {"density": [bin or null per part], "arp_motion": name
/// or null, "bass_drive": name or null} (null: Auto).
pub fn controls_json(
    density: [Option<u8>; 3],
    arp_motion: Option<ArpMotion>,
    bass_drive: Option<BassDrive>,
) -> serde_json::Value {
    serde_json::json!({
        "density": density,
        "arp_motion": arp_motion.map(ArpMotion::name),
        "bass_drive": bass_drive.map(BassDrive::name),
    })
}

pub fn choice_json(choice: &ControlChoice) -> serde_json::Value {
    controls_json(choice.density, choice.arp_motion, choice.bass_drive)
}

pub fn written_json(written: &WrittenControls) -> serde_json::Value {
    controls_json(written.density, written.arp_motion, written.bass_drive)
}

pub fn part_names() -> [&'static str; 3] {
    Part::ALL.map(|p| p.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_controls_are_read_from_the_tokens_after_bar() {
        let tokens: Vec<u32> = [
            Token::Bar,
            Token::Density(Part::Lead, 2),
            Token::Density(Part::Arp, 7),
            Token::Density(Part::Bass, 1),
            Token::ArpMotion(ArpMotion::Arpeggio),
            Token::BassDrive(BassDrive::Offbeat),
            Token::Position(0),
        ]
        .map(Token::id)
        .to_vec();
        let written = WrittenControls::of_bar(&tokens);
        assert_eq!(written.density, [Some(2), Some(7), Some(1)]);
        assert_eq!(written.arp_motion, Some(ArpMotion::Arpeggio));
        assert_eq!(written.bass_drive, Some(BassDrive::Offbeat));
        let json = written_json(&written);
        assert_eq!(json["arp_motion"], "arpeggio");
        assert_eq!(json["density"], serde_json::json!([2, 7, 1]));
        assert_eq!(choice_json(&ControlChoice::AUTO)["bass_drive"], serde_json::Value::Null);
        // A bar cut short says nothing of the controls it lacks.
        assert_eq!(WrittenControls::of_bar(&tokens[..2]).density, [Some(2), None, None]);
    }
}

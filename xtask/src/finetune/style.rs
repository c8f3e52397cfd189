//! Does the fine-tune sound more like the user's music than the base model? Windows of the user's
//! files it never trained on against each model's phrases at temperature 1, judged on the parts the
//! files have: the eval's classifier two-sample test and per-part metrics (`models/eval_style.py`).

use super::copies::ModelPhrase;
use super::import::Imported;
use crate::eval::generate::notes_json;
use anyhow::{Context, Result};
use neural_trio::music::{Note, Part, TICKS_PER_BAR};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// A window with fewer notes than this is a rest, not music to compare.
const MIN_WINDOW_NOTES: usize = 4;

/// The figures of `models/eval_style.py`, or None when there is nothing to compare (no file held
/// out). `reference`: files not trained on; `generated`: (model name, phrase) of `bars` bars.
pub fn compare(
    reference: &[(&str, &Imported)],
    generated: &[ModelPhrase],
    temperature: f32,
    bars: u32,
    work_dir: &Path,
) -> Result<Option<serde_json::Value>> {
    let parts: Vec<Part> =
        Part::ALL.into_iter().filter(|p| reference.iter().any(|(_, s)| s.found[p.index()])).collect();
    let keep = |notes: &[Note]| -> Vec<Note> { notes.iter().filter(|n| parts.contains(&n.part)).copied().collect() };
    let window_ticks = bars * TICKS_PER_BAR;
    let mut real = Vec::new();
    for (file, (_, song)) in reference.iter().enumerate() {
        for start in (0..song.phrase.bars.saturating_sub(bars) + 1).step_by(bars as usize).map(|b| b * TICKS_PER_BAR) {
            let notes: Vec<Note> = keep(&song.phrase.notes)
                .into_iter()
                .filter(|n| (start..start + window_ticks).contains(&n.start_tick))
                .map(|n| Note { start_tick: n.start_tick - start, ..n })
                .collect();
            if notes.len() >= MIN_WINDOW_NOTES {
                real.push(json!({"notes": notes_json(&notes), "key": song.header.key.index(), "song": file}));
            }
        }
    }
    if real.is_empty() {
        return Ok(None);
    }
    let mut models = serde_json::Map::new();
    for (name, phrase) in generated.iter().filter(|(_, g)| g.job.temperature == temperature) {
        let item =
            json!({"notes": notes_json(&keep(&phrase.notes)), "key": phrase.key.index(), "index": phrase.job.index});
        models.entry(name.to_string()).or_insert_with(|| json!([])).as_array_mut().expect("an array").push(item);
    }
    let registers = Part::ALL.map(|part| {
        let (low, high) = part.default_register();
        [low, high]
    });
    let data = json!({"bars": bars, "registers": registers, "parts": parts.iter().map(|p| p.name()).collect::<Vec<_>>(),
                      "real": real, "models": models});
    let data_path = work_dir.join("style.json");
    let figures_path = work_dir.join("style-figures.json");
    std::fs::write(&data_path, serde_json::to_string(&data)?)?;
    crate::run(
        Command::new(crate::python::ensure_venv()?)
            .arg("models/eval_style.py")
            .arg("--data")
            .arg(&data_path)
            .arg("--out")
            .arg(&figures_path),
    )?;
    let figures = std::fs::read_to_string(&figures_path).context("reading models/eval_style.py's figures")?;
    Ok(Some(serde_json::from_str(&figures)?))
}

//! How often a model's phrases copy the user's files: phrases made through the plugin's engine
//! (`eval::generate`) at a few temperatures, each part's longest run of notes shared with any line
//! of any of the user's files (`eval::copies`: same intervals and rhythm, in any key).

use crate::eval::copies::{run_in_notes, symbols, Index};
use crate::eval::generate::{run_all, Generated, Job};
use neural_trio::music::controls::{ControlChoice, Style};
use neural_trio::music::{Part, Phrase};
use std::path::Path;

/// Every line of the user's files, untransposed (intervals do not change under transposition).
pub struct UserIndex {
    exact: Index,
}

impl UserIndex {
    pub fn new<'a>(phrases: impl Iterator<Item = &'a Phrase>) -> UserIndex {
        let mut exact = Index::default();
        for phrase in phrases {
            for part in Part::ALL {
                exact.add_line(&symbols(&phrase.notes, part, true));
            }
        }
        UserIndex { exact }
    }

    /// The longest run of notes any part of `phrase_notes` shares with the user's files.
    fn longest_run(&self, notes: &[neural_trio::music::Note]) -> usize {
        Part::ALL
            .map(|part| {
                let line = symbols(notes, part, true);
                let count = notes.iter().filter(|n| n.part == part).count();
                run_in_notes(self.exact.longest_match(&line), count)
            })
            .into_iter()
            .max()
            .unwrap_or(0)
    }
}

/// What to make.
pub struct Plan<'a> {
    pub temperatures: &'a [f32],
    pub phrases: usize,
    pub bars: u32,
    /// A phrase copies when its longest shared run reaches this many notes.
    pub run_notes: usize,
    pub tempo_bin: u8,
    pub seed: u32,
}

/// One row: a model at a temperature.
#[derive(Debug, Clone)]
pub struct Rate {
    pub model: &'static str,
    pub temperature: f32,
    pub phrases: usize,
    pub copies: usize,
    pub median_run: usize,
}

/// A phrase measured, with the name of the model that made it.
pub type ModelPhrase = (&'static str, Generated);

/// Copy rates of each named model at each temperature (the same seeds for every model), and the
/// phrases measured (model name, phrase).
pub fn measure<const N: usize>(
    index: &UserIndex,
    library: &Path,
    models: [(&'static str, &Path); N],
    plan: &Plan,
    threads: usize,
) -> anyhow::Result<(Vec<Rate>, Vec<ModelPhrase>)> {
    let jobs: Vec<Job> = plan
        .temperatures
        .iter()
        .enumerate()
        .flat_map(|(setting, &temperature)| {
            (0..plan.phrases).map(move |i| Job {
                setting,
                index: i,
                seed: plan.seed.wrapping_mul(1000).wrapping_add(i as u32),
                tempo_bin: plan.tempo_bin,
                key: None,
                mood: None,
                temperature,
                top_p: 1.0,
                harmony: None,
                style: Style::Pop,
                controls: ControlChoice::AUTO,
            })
        })
        .collect();
    let mut rates = Vec::new();
    let mut phrases = Vec::new();
    for (name, model) in models {
        println!("  {name}: {}", model.display());
        let generated = run_all(library, model, &jobs, plan.bars, &[], threads).map_err(anyhow::Error::msg)?;
        for (setting, &temperature) in plan.temperatures.iter().enumerate() {
            let mut runs: Vec<usize> =
                generated.iter().filter(|g| g.job.setting == setting).map(|g| index.longest_run(&g.notes)).collect();
            runs.sort_unstable();
            rates.push(Rate {
                model: name,
                temperature,
                phrases: runs.len(),
                copies: runs.iter().filter(|&&r| r >= plan.run_notes).count(),
                median_run: runs.get(runs.len() / 2).copied().unwrap_or(0),
            });
        }
        phrases.extend(generated.into_iter().map(|g| (name, g)));
    }
    Ok((rates, phrases))
}

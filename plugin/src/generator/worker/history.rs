//! Commands from the editors: Regenerate, locks, Variations to flip through, Undo and Redo.

use super::*;

/// A whole phrase, as undo/redo and the variations keep it.
#[derive(Clone)]
pub(super) struct Snapshot {
    bars: BTreeMap<i64, BarContent>,
    header: Option<([u32; HEADER_LENGTH], HeaderInputs)>,
    variation: u32,
}

/// Undo depth.
const UNDO_LIMIT: usize = 32;
impl Generator {
    pub(super) fn handle(&mut self, command: Command) {
        if self.held && matches!(command, Command::Regenerate { .. } | Command::Variations { .. }) {
            // No model to make anything new with: the status line says why.
            return;
        }
        match command {
            Command::Regenerate { part } => {
                self.push_undo();
                self.variation = self.next_variation();
                let keep = match part {
                    Some(only) => Part::ALL.map(|p| p != only),
                    None => [false; 3],
                };
                self.keep_for_variation = Some((self.variation, keep));
            }
            Command::Variations { part, count } => match self.make_variations(part, count.clamp(1, MAX_VARIATIONS)) {
                Ok(()) => self.members.clear_problem(|p| matches!(p, Problem::Variations(_))),
                Err(e) => {
                    self.show_problem(Problem::Variations(e));
                }
            },
            Command::ShowVariation { index } => {
                if let Some(candidate) = self.candidates.get(index).cloned() {
                    self.restore(candidate);
                    self.candidate_shown = index;
                }
            }
            Command::SetLock { part, locked } => {
                self.locked[part.index()] = locked;
                self.store_session(self.params.gen_settings(self.variation));
            }
            Command::Undo => {
                if let Some(previous) = self.undo.pop() {
                    self.candidates.clear();
                    let current = self.snapshot();
                    self.redo.push(current);
                    self.restore(previous);
                }
            }
            Command::Redo => {
                if let Some(next) = self.redo.pop() {
                    self.candidates.clear();
                    let current = self.snapshot();
                    self.undo.push(current);
                    self.restore(next);
                }
            }
        }
        self.report_history();
    }

    pub(super) fn report_history(&mut self) {
        let (can_undo, can_redo) = (!self.undo.is_empty(), !self.redo.is_empty());
        let (variations, shown) = (self.candidates.len(), self.candidate_shown);
        self.members.update_status(|s| {
            s.can_undo = can_undo;
            s.can_redo = can_redo;
            s.variations = variations;
            s.variation_shown = shown;
        });
    }

    /// Keeps the phrase as it is now for Undo; a new change forgets what was undone and the old
    /// candidates.
    pub(super) fn push_undo(&mut self) {
        let snapshot = self.snapshot();
        self.undo.push(snapshot);
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
        self.candidates.clear();
    }

    pub(super) fn next_variation(&mut self) -> u32 {
        self.highest_variation = self.highest_variation.max(self.variation).wrapping_add(1);
        self.highest_variation
    }

    /// `count` new takes of the loop, sampled as one batch, each with its own dice; kept parts
    /// (locked, or all but `part`) stay as they are. The first new take plays.
    pub(super) fn make_variations(&mut self, part: Option<Part>, count: usize) -> Result<(), String> {
        let started = Instant::now();
        // Endless has no phrase to take again (the editor offers no button there); no header yet
        // means no phrase yet.
        let (Some(length), Some(header)) = (self.structure.and_then(|s| s.loop_length()), self.header.map(|h| h.0))
        else {
            return Ok(());
        };
        let settings = self.params.gen_settings(self.variation);
        let kept = Part::ALL.map(|p| self.locked[p.index()] || part.is_some_and(|only| only != p));
        let constraints = constraints_for(&settings, kept);
        let jam_settings = self.jam_settings();
        let forced: Vec<Vec<crate::music::Note>> =
            (0..length as i64).map(|index| self.kept_notes(index, kept)).collect();
        let variations: Vec<u32> = (0..count).map(|_| self.next_variation()).collect();
        let plans: Vec<PhrasePlan> = variations
            .iter()
            .map(|&variation| PhrasePlan {
                bars: (0..length as i64)
                    .map(|index| BarPlan {
                        forced_notes: forced[index as usize].clone(),
                        harmony: self.jam.harmony(index, &jam_settings),
                        rng: Rng::for_bar(settings.seed, index, variation),
                    })
                    .collect(),
                constraints,
            })
            .collect();
        let models = self.model.as_mut().ok_or("no model")?;
        let phrases = match generate_phrases(models.get(Workload::Batch), header, &plans) {
            Ok(phrases) => phrases,
            Err(e) => {
                // The takes are made again on whatever the recovery leaves (the CPU after a GPU failure).
                models.recover(Workload::Batch, &e)?;
                self.report_compute();
                let models = self.model.as_mut().ok_or("no model")?;
                generate_phrases(models.get(Workload::Batch), header, &plans)?
            }
        };

        self.push_undo();
        let original = self.snapshot();
        self.candidates = std::iter::once(original)
            .chain(variations.iter().zip(phrases).map(|(&variation, bars)| {
                Snapshot {
                    bars: bars
                        .into_iter()
                        .enumerate()
                        .map(|(i, tokens)| (i as i64, BarContent::from_tokens(tokens)))
                        .collect(),
                    // The takes share the phrase's header (key, mood): it counts as made for their variation.
                    header: self.header.map(|(tokens, inputs)| (tokens, HeaderInputs { variation, ..inputs })),
                    variation,
                }
            }))
            .collect();
        let first = self.candidates[1].clone();
        self.restore(first);
        self.candidate_shown = 1;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.members.update_status(|s| s.variations_ms = ms);
        Ok(())
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            bars: self.bars.iter().map(|(&i, b)| (i, b.content.clone())).collect(),
            header: self.header,
            variation: self.variation,
        }
    }

    /// Puts a phrase back as it was; its bars count as made under the current parameters.
    pub(super) fn restore(&mut self, snapshot: Snapshot) {
        self.variation = snapshot.variation;
        self.keep_for_variation = None;
        self.header = snapshot.header;
        let settings = self.params.gen_settings(self.variation);
        // The phrase plays as it was, under the chords forced now (nothing is made again for them).
        let jam_settings = self.jam_settings();
        let model = self.model_serial;
        self.bars = snapshot
            .bars
            .into_iter()
            .map(|(i, content)| {
                let harmony = self.jam.harmony(i, &jam_settings);
                (i, GeneratedBar { content, settings, harmony, model })
            })
            .collect();
        self.new_epoch();
        self.store_session(settings);
    }
}

//! The model the project chose: opened when the generator starts, switched when the choice changes
//! (the new model takes over at the next bar), refused when it cannot play.
//!
//! - The editor's choice that opens: the bar being heard stays, every other bar is made again by the
//!   new model, as a settings change does. One that does not open (missing, another vocabulary) is
//!   refused: the model before it plays on and the choice goes back to it.
//! - A project's choice (a host's state load): the loaded phrase is adopted as made by it, never made
//!   again. One that cannot play holds the phrase: its saved bars play note for note, nothing new is
//!   made (no other model writes into the project) and the status line says which model is missing
//!   or why it was refused, until another is chosen.

use super::*;

impl Generator {
    /// Follows the group's model choice (read after the settings revisions). `adopted`: a loaded
    /// phrase was just adopted, as made by the model that comes with it.
    pub(super) fn follow_model_choice(&mut self, adopted: bool) {
        let (choice, by_load) = self.members.follow_model_choice();
        if self.choice.as_ref() == Some(&choice) {
            return;
        }
        self.busy();
        let first = self.choice.is_none();
        match self.open_choice(&choice) {
            Ok((models, located, info)) => {
                let shown = match &located {
                    ModelChoice::Shipped => info.1.clone(),
                    chosen if chosen.name() == info.1 => info.1.clone(),
                    chosen => format!("{} ({})", chosen.name(), info.1),
                };
                nice_plug::nice_log!("Neural Trio plays model {shown} ({})", info.0);
                self.install(models, info, shown);
                if self.held {
                    self.held = false;
                    self.members.set_nothing_coming(false);
                }
                if located != choice {
                    // The content hash, filled in: what a project saves from now on.
                    self.members.replace_model_choice(&choice, located.clone());
                }
                self.choice = Some(located);
                if !first && !adopted {
                    self.remake_from_next_bar();
                }
            }
            Err(error) => self.refuse(choice, error, by_load),
        }
    }

    /// Finds and opens the chosen model: (the models, the choice with its content hash, identity).
    fn open_choice(&mut self, choice: &ModelChoice) -> Result<(Models, ModelChoice, (String, String)), OpenError> {
        let shipped = resources::find(resources::MODEL_FILE);
        let (path, located) = choice.locate(self.user_models.as_deref(), &shipped).map_err(OpenError::NotFound)?;
        let cpu = (self.opener)(&path, Provider::Cpu)?;
        let info = status::onnx_info(cpu.as_ref());
        let opener = self.opener.clone();
        let open: OpenModel = Box::new(move |provider| opener(&path, provider).map_err(|e| e.to_string()));
        let models = self.open_on_compute(open, cpu, &info).map_err(OpenError::Other)?;
        Ok((models, located, info))
    }

    /// A choice that cannot play: see the module's notes.
    fn refuse(&mut self, choice: ModelChoice, error: OpenError, by_load: bool) {
        let name = choice.name();
        let problem = match error {
            OpenError::Vocabulary { model_hash, plugin_hash, .. } => {
                Problem::VocabularyMismatch { model: name, model_hash, plugin_hash }
            }
            // No ONNX Runtime, or no shipped model: silent, as ever.
            OpenError::Runtime(why) => Problem::NoModel(why),
            OpenError::NotFound(why) | OpenError::Other(why) if choice == ModelChoice::Shipped => Problem::NoModel(why),
            OpenError::NotFound(why) | OpenError::Other(why) => Problem::ModelMissing(why),
        };
        if !by_load && self.model.is_some() && !self.held {
            // The producer's choice, refused: the model before it plays on, and the selector shows it.
            nice_plug::nice_log!("Neural Trio: {problem}; the model before it plays on");
            let previous = self.choice.clone().unwrap_or_default();
            self.members.replace_model_choice(&choice, previous);
        } else if matches!(problem, Problem::NoModel(_)) {
            nice_plug::nice_log!("Neural Trio stays silent: {problem}");
            self.choice = Some(choice);
            self.model = None;
        } else {
            // A project's model: its phrase plays on as saved; nothing new is made by another model.
            nice_plug::nice_log!("Neural Trio: {problem}; the project's saved phrase plays on, nothing new is made");
            self.choice = Some(choice);
            self.held = true;
            self.model = None;
            self.members.update_status(|s| s.model = None);
            self.members.set_ready(false);
        }
        self.members.set_problem(Some(problem));
    }

    /// A new model plays from the next bar line: the bars heard so far, and the one being heard, stay
    /// as they are (they count as made by the new model); the new model makes every other bar again,
    /// from its start, beginning with the bar at that line (`next_stale_bar`).
    fn remake_from_next_bar(&mut self) {
        self.model_serial = self.model_serial.wrapping_add(1);
        let structure = self.params.structure();
        let bar_ticks = TICKS_PER_BAR as i64;
        let (from, partly_heard) = if self.host.playing && self.host.has_transport {
            let tick = self.heard_tick();
            (tick.div_euclid(bar_ticks) + (tick.rem_euclid(bar_ticks) != 0) as i64, tick.rem_euclid(bar_ticks) != 0)
        } else {
            ((self.host.playhead_beats.max(0.0) / 4.0).floor() as i64, false)
        };
        self.remake_from = from;
        let kept: Vec<i64> = match structure.loop_length() {
            // A loop plays every bar again: only the bar being heard stays.
            Some(_) => partly_heard.then(|| structure.phrase_bar(from - 1)).into_iter().collect(),
            None => self.bars.range(..from).map(|(&index, _)| index).collect(),
        };
        for index in kept {
            if let Some(bar) = self.bars.get_mut(&index) {
                bar.model = self.model_serial;
            }
        }
    }

    /// The next bar the model chosen last has to make again: in a loop, the first in playing order
    /// from the bar it took over at; in Endless, the earliest.
    pub(super) fn next_stale_bar(&self, structure: Structure) -> Option<i64> {
        let stale = |index: &i64| self.bars.get(index).is_some_and(|bar| bar.model != self.model_serial);
        match structure.loop_length() {
            Some(length) => (0..length as i64).map(|k| structure.phrase_bar(self.remake_from + k)).find(stale),
            None => self.bars.keys().copied().find(stale),
        }
    }
}

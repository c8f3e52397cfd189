//! The models (opened, switched by Compute, recovered after a failure) and what the status line says.

use super::*;

/// Failures in a row the generator recovers from before it gives up and says so.
const MAX_RECOVERIES: u32 = 3;

impl Generator {
    pub(super) fn report_speed(&mut self, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        self.bar_ms = if self.bar_ms == 0.0 { seconds * 1e3 } else { 0.8 * self.bar_ms + 0.2 * seconds * 1e3 };
        let tempo = self.host.tempo_bpm.max(1.0);
        let bar_seconds = 4.0 * 60.0 / tempo;
        let lookahead = self.bars.len() as f64;
        self.members.update_status(|s| {
            s.speed_x_realtime = bar_seconds / seconds.max(1e-6);
            s.lookahead_bars = lookahead;
        });
    }

    /// Opens the shipped model through `open` (tests: a stand-in), as `follow_model_choice` does.
    #[cfg(test)]
    pub(super) fn open_models(&mut self, mut open: OpenModel) -> Result<(), String> {
        let cpu = open(Provider::Cpu)?;
        let info = onnx_info(cpu.as_ref());
        let models = self.open_on_compute(open, cpu, &info)?;
        self.install(models, info.clone(), info.1);
        self.choice = Some(ModelChoice::Shipped);
        Ok(())
    }

    /// The model opened on the CPU (`cpu`, where its identity and load time come from), and on
    /// whatever else the Compute setting asks for.
    pub(super) fn open_on_compute(
        &mut self,
        open: OpenModel,
        cpu: Box<dyn TokenModel + Send>,
        info: &(String, String),
    ) -> Result<Models, String> {
        self.compute = self.params.compute_choice();
        let mut calibrations = Calibrations::load();
        Models::open(open, cpu, self.compute, &info.0, &mut calibrations)
    }

    /// Makes `models` the ones that play: `info` is their identity, `shown` their name in the status line.
    pub(super) fn install(&mut self, models: Models, info: (String, String), shown: String) {
        self.model_id = info.0;
        self.members.update_status(|s| s.model = Some(shown.clone()));
        self.members.set_problem(None);
        self.model = Some(models);
        self.report_compute();
        self.members.set_ready(true);
    }

    /// The Compute setting changed: the GPU model is opened or dropped (the CPU model stays).
    pub(super) fn follow_compute_setting(&mut self) {
        let choice = self.params.compute_choice();
        if choice == self.compute {
            return;
        }
        self.compute = choice;
        let key = self.model_id.clone();
        if let Some(models) = self.model.as_mut() {
            if let Err(e) = models.choose_compute(choice, &key, &mut Calibrations::load()) {
                models.note = Some(e);
            }
        }
        self.report_compute();
    }

    pub(super) fn report_compute(&mut self) {
        let Some(models) = &self.model else { return };
        let (provider, note) = (models.describe(), models.note.clone());
        self.members.update_status(|s| {
            s.provider = Some(provider.clone());
            s.compute_note = note.clone();
        });
    }

    /// A model step failed: the GPU hands over to the CPU, or the CPU session is opened anew, and the
    /// next step makes the same bar again (same dice, same notes). Repeated failures stop generation.
    pub(super) fn model_failed(&mut self, workload: Workload, error: String) -> bool {
        self.recoveries += 1;
        let recovered = self.recoveries <= MAX_RECOVERIES
            && self.model.as_mut().is_some_and(|models| models.recover(workload, &error).is_ok());
        if !recovered {
            // Given up: an offline block must not wait for bars that will not come.
            return self.show_problem(Problem::ModelFailing(error));
        }
        nice_plug::nice_log!("Neural Trio: {error}; recovered");
        self.report_compute();
        true
    }

    /// Tells a waiting audio thread that a bar is being made (the idle flag is otherwise only updated
    /// after a step, which may take 100 ms).
    pub(super) fn busy(&self) {
        self.members.set_idle(false);
    }

    /// Says what went wrong (until it goes away); false: the step did nothing.
    pub(super) fn show_problem(&mut self, problem: Problem) -> bool {
        nice_plug::nice_log!("Neural Trio generator error: {problem}");
        self.members.set_problem(Some(problem));
        std::thread::sleep(Duration::from_millis(50));
        false
    }
}

/// The model's identity for saved phrases and its name for the status line ("unnamed" for a stand-in).
pub(super) fn onnx_info(model: &dyn TokenModel) -> (String, String) {
    model.identity().unwrap_or_else(|| ("unnamed".into(), "unnamed".into()))
}

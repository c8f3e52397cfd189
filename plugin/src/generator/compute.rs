//! Which execution provider runs the model. The Compute setting asks for Auto, CPU or GPU. The GPU
//! (ONNX Runtime's CUDA provider, in the `--gpu` bundle) is used only where it loads, and Auto uses it
//! only for the workloads where a short measurement on this machine found it faster: a small model at
//! batch 1 is usually faster on one CPU core, a batch of Variations may not be. A model that fails
//! mid-session hands its work to the CPU (a GPU) or is opened anew (the CPU); the bar that failed is
//! made again with the same dice, so no bar goes missing.

use super::model::TokenModel;
use super::onnx::Provider;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// The Compute setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComputeChoice {
    /// The faster provider for each workload, as measured on this machine.
    Auto,
    Cpu,
    /// CUDA for everything, or the CPU with the reason when CUDA cannot run.
    Gpu,
}

/// The generator's two kinds of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One bar after another (batch 1).
    Stream,
    /// Several takes side by side (Variations).
    Batch,
}

/// Rows in a measured batch step: the editor's 4 Variations.
pub const CALIBRATION_ROWS: usize = 4;
/// Context the steps are measured at: about a phrase of four bars.
const CALIBRATION_PAST: usize = 300;
/// The GPU must be this much faster to be chosen: never slower for having it.
const GPU_MARGIN: f64 = 0.9;

/// Median milliseconds of one model step on one provider.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepTimes {
    /// Batch 1, one new token.
    pub stream_ms: f64,
    /// `CALIBRATION_ROWS` rows, one new token each.
    pub batch_ms: f64,
}

/// Opens the model on a provider: a fresh session each call.
pub type OpenModel = Box<dyn FnMut(Provider) -> Result<Box<dyn TokenModel + Send>, String> + Send>;

/// The model, opened on each provider the choice uses, and which provider serves each workload.
pub struct Models {
    open: OpenModel,
    cpu: Box<dyn TokenModel + Send>,
    gpu: Option<Box<dyn TokenModel + Send>>,
    stream: Provider,
    batch: Provider,
    /// What the status line says about the choice: why not the GPU, what Auto measured, a recovery.
    pub note: Option<String>,
}

/// Picks the provider for each workload from measured step times.
pub fn choose(cpu: StepTimes, gpu: StepTimes) -> (Provider, Provider) {
    let pick = |cpu_ms: f64, gpu_ms: f64| if gpu_ms < cpu_ms * GPU_MARGIN { Provider::Cuda } else { Provider::Cpu };
    (pick(cpu.stream_ms, gpu.stream_ms), pick(cpu.batch_ms, gpu.batch_ms))
}

/// Times one step of each workload on a model.
pub fn measure(model: &mut dyn TokenModel) -> Result<StepTimes, String> {
    let vocab = crate::music::vocab::VOCAB_SIZE as u32;
    let context: Vec<u32> = (0..CALIBRATION_PAST as u32).map(|i| 1 + (i * 7) % (vocab - 1)).collect();
    let mut time_steps = |rows: usize| -> Result<f64, String> {
        model.set_context(&context)?;
        model.fork(rows);
        let mut times = Vec::new();
        for step in 0..7u32 {
            let started = Instant::now();
            model.feed(&vec![vec![1 + step]; rows])?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    };
    let stream_ms = time_steps(1)?;
    let batch_ms = time_steps(CALIBRATION_ROWS)?;
    Ok(StepTimes { stream_ms, batch_ms })
}

/// Measurements kept between sessions, per model and ONNX Runtime build, on this machine.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Calibrations(BTreeMap<String, (StepTimes, StepTimes)>);

impl Calibrations {
    /// `$XDG_CACHE_HOME/neural-trio/compute.json` (or `~/.cache/...`).
    pub fn path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("neural-trio").join("compute.json"))
    }

    pub fn load() -> Calibrations {
        Calibrations::path()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    pub fn save(&self) {
        if let (Some(path), Ok(text)) = (Calibrations::path(), serde_json::to_string_pretty(self)) {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(path, text);
        }
    }

    pub fn get(&self, key: &str) -> Option<(StepTimes, StepTimes)> {
        self.0.get(key).copied()
    }

    pub fn insert(&mut self, key: String, cpu: StepTimes, gpu: StepTimes) {
        self.0.insert(key, (cpu, gpu));
    }
}

impl Models {
    /// Starts from the CPU model; adds the GPU model when the choice allows and CUDA loads. Auto
    /// measures both (or reuses the measurement stored under `calibration_key`).
    pub fn open(
        open: OpenModel,
        cpu: Box<dyn TokenModel + Send>,
        choice: ComputeChoice,
        calibration_key: &str,
        calibrations: &mut Calibrations,
    ) -> Result<Models, String> {
        let mut models = Models { open, cpu, gpu: None, stream: Provider::Cpu, batch: Provider::Cpu, note: None };
        models.choose_compute(choice, calibration_key, calibrations)?;
        Ok(models)
    }

    /// Applies a Compute setting: the CPU model stays; the GPU model is opened or dropped.
    pub fn choose_compute(
        &mut self,
        choice: ComputeChoice,
        calibration_key: &str,
        calibrations: &mut Calibrations,
    ) -> Result<(), String> {
        (self.gpu, self.stream, self.batch, self.note) = (None, Provider::Cpu, Provider::Cpu, None);
        if choice == ComputeChoice::Cpu {
            return Ok(());
        }
        match (self.open)(Provider::Cuda) {
            Err(why) => {
                if choice == ComputeChoice::Gpu {
                    self.note = Some(format!("GPU asked for, but {why}: running on the CPU"));
                }
            }
            Ok(gpu) if choice == ComputeChoice::Gpu => {
                self.gpu = Some(gpu);
                (self.stream, self.batch) = (Provider::Cuda, Provider::Cuda);
            }
            Ok(mut gpu) => {
                let measured = match calibrations.get(calibration_key) {
                    Some(times) => Ok(times),
                    None => measure(self.cpu.as_mut()).and_then(|cpu| Ok((cpu, measure(gpu.as_mut())?))),
                };
                let (cpu_times, gpu_times) = match measured {
                    Ok(times) => times,
                    Err(why) => {
                        // A GPU that loads but cannot run a step is no GPU: the CPU does everything.
                        self.note = Some(format!("the GPU could not run the model ({why}): running on the CPU"));
                        return Ok(());
                    }
                };
                if calibrations.get(calibration_key).is_none() {
                    calibrations.insert(calibration_key.to_string(), cpu_times, gpu_times);
                    calibrations.save();
                }
                (self.stream, self.batch) = choose(cpu_times, gpu_times);
                self.note = Some(format!(
                    "Auto measured a step at {:.2} ms on the CPU, {:.2} ms on the GPU ({:.2} and {:.2} ms for {} rows)",
                    cpu_times.stream_ms, gpu_times.stream_ms, cpu_times.batch_ms, gpu_times.batch_ms, CALIBRATION_ROWS
                ));
                if self.stream == Provider::Cuda || self.batch == Provider::Cuda {
                    self.gpu = Some(gpu);
                }
            }
        }
        Ok(())
    }

    pub fn provider(&self, workload: Workload) -> Provider {
        match workload {
            Workload::Stream => self.stream,
            Workload::Batch => self.batch,
        }
    }

    /// The model that serves a workload.
    pub fn get(&mut self, workload: Workload) -> &mut dyn TokenModel {
        match (self.provider(workload), self.gpu.as_mut()) {
            (Provider::Cuda, Some(gpu)) => gpu.as_mut(),
            _ => self.cpu.as_mut(),
        }
    }

    /// "CPU", "CUDA", or both with their workloads, for the status line.
    pub fn describe(&self) -> String {
        if self.stream == self.batch {
            self.stream.name().to_string()
        } else {
            format!("{} for bars, {} for Variations", self.stream.name(), self.batch.name())
        }
    }

    /// After a failed step: the GPU hands every workload to the CPU; a failed CPU session is opened
    /// anew. The caller then makes the same bar again.
    pub fn recover(&mut self, workload: Workload, error: &str) -> Result<(), String> {
        if self.provider(workload) == Provider::Cuda {
            self.gpu = None;
            (self.stream, self.batch) = (Provider::Cpu, Provider::Cpu);
            self.note = Some(format!("the GPU failed ({error}): running on the CPU"));
        } else {
            self.cpu = (self.open)(Provider::Cpu)?;
            self.note = Some(format!("the model failed ({error}) and was opened again"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::model::fake::FakeModel;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Opens fake models; CUDA "loads" only when `cuda` is true. Counts the opens per provider.
    fn opener(cuda: bool, opens: Arc<[AtomicUsize; 2]>) -> OpenModel {
        Box::new(move |provider| {
            opens[(provider == Provider::Cuda) as usize].fetch_add(1, Ordering::Relaxed);
            match provider {
                Provider::Cuda if !cuda => Err("this ONNX Runtime has no CUDA provider".into()),
                _ => Ok(Box::new(FakeModel::new()) as Box<dyn TokenModel + Send>),
            }
        })
    }

    fn open_with(
        mut open: OpenModel,
        choice: ComputeChoice,
        calibrations: &mut Calibrations,
    ) -> Result<Models, String> {
        let cpu = open(Provider::Cpu)?;
        Models::open(open, cpu, choice, "m", calibrations)
    }

    fn opens() -> Arc<[AtomicUsize; 2]> {
        Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)])
    }

    #[test]
    fn gpu_without_cuda_runs_on_the_cpu_and_says_why() {
        let models = open_with(opener(false, opens()), ComputeChoice::Gpu, &mut Calibrations::default()).unwrap();
        assert_eq!(
            (models.provider(Workload::Stream), models.provider(Workload::Batch)),
            (Provider::Cpu, Provider::Cpu)
        );
        let note = models.note.expect("a reason");
        assert!(note.contains("no CUDA provider") && note.contains("CPU"), "{note}");
    }

    #[test]
    fn auto_with_only_a_cpu_picks_the_cpu_quietly() {
        let models = open_with(opener(false, opens()), ComputeChoice::Auto, &mut Calibrations::default()).unwrap();
        assert_eq!(models.describe(), "CPU");
        assert_eq!(models.note, None);
    }

    #[test]
    fn auto_follows_the_measurement_per_workload_and_reuses_it() {
        let slow_batch_on_cpu = StepTimes { stream_ms: 0.9, batch_ms: 3.2 };
        let gpu = StepTimes { stream_ms: 1.4, batch_ms: 1.5 };
        assert_eq!(choose(slow_batch_on_cpu, gpu), (Provider::Cpu, Provider::Cuda));
        assert_eq!(choose(gpu, gpu), (Provider::Cpu, Provider::Cpu), "a tie keeps the CPU");
        let mut calibrations = Calibrations::default();
        calibrations.insert("m".into(), slow_batch_on_cpu, gpu);
        let count = opens();
        let models = open_with(opener(true, count.clone()), ComputeChoice::Auto, &mut calibrations).unwrap();
        assert_eq!(models.describe(), "CPU for bars, CUDA for Variations");
        assert_eq!(
            count[1].load(Ordering::Relaxed),
            1,
            "the GPU model was opened once, and nothing was measured again"
        );
    }

    #[test]
    fn a_failed_gpu_hands_over_to_the_cpu_and_a_failed_cpu_is_reopened() {
        let count = opens();
        let mut models =
            open_with(opener(true, count.clone()), ComputeChoice::Gpu, &mut Calibrations::default()).unwrap();
        assert_eq!(models.describe(), "CUDA");
        models.recover(Workload::Stream, "device reset").unwrap();
        assert_eq!(models.describe(), "CPU");
        assert!(models.note.as_deref().unwrap().contains("device reset"));
        models.recover(Workload::Stream, "out of memory").unwrap();
        assert_eq!(count[0].load(Ordering::Relaxed), 2, "the CPU session was opened again");
        assert!(models.note.as_deref().unwrap().contains("out of memory"));
    }
}

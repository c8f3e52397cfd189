//! Running blocks: [`TrioHost::run`] processes them on an audio thread while the calling thread
//! plays the CLAP main thread, [`run_together`] does that for several instances, and [`RunResult`]
//! is what a run gives back.

use super::audio::{AudioJob, RunState};
use super::handlers::TrioHandlers;
use super::{err, HostError, Result, TrioHost};
use crate::events::{BlockRecord, NoteEvent};
use crate::timeline::BlockSpec;
use clack_extensions::state::PluginState;
use clack_host::prelude::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What one `run()` produced.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Every note event the plugin output, in output order.
    pub events: Vec<NoteEvent>,
    /// One record per processed block.
    pub blocks: Vec<BlockRecord>,
    /// Output audio per channel (only with the stereo layout), concatenated over the run.
    pub audio_out: Vec<Vec<f32>>,
    /// The input audio that was fed (only with the stereo layout).
    pub audio_in: Vec<Vec<f32>>,
    /// Other output events (param values, gestures, note-end hints…) by kind.
    pub other_events: Vec<String>,
    /// Wall time of the run.
    pub wall: Duration,
    /// Audio time covered by the run.
    pub audio_seconds: f64,
    /// Blocks where process() returned an error.
    pub process_errors: Vec<u64>,
    /// Wall time of each process() call, in block order (the stereo layout includes copying its buffers).
    pub process_ns: Vec<u64>,
}

impl RunResult {
    pub fn speed(&self) -> f64 {
        self.audio_seconds / self.wall.as_secs_f64().max(1e-9)
    }

    /// Appends another run (for building up a long render from several `run()` calls).
    pub fn extend(&mut self, other: RunResult) {
        self.events.extend(other.events);
        self.blocks.extend(other.blocks);
        for (i, ch) in other.audio_out.into_iter().enumerate() {
            if self.audio_out.len() <= i {
                self.audio_out.push(Vec::new());
            }
            self.audio_out[i].extend(ch);
        }
        for (i, ch) in other.audio_in.into_iter().enumerate() {
            if self.audio_in.len() <= i {
                self.audio_in.push(Vec::new());
            }
            self.audio_in[i].extend(ch);
        }
        self.other_events.extend(other.other_events);
        self.wall += other.wall;
        self.audio_seconds += other.audio_seconds;
        self.process_errors.extend(other.process_errors);
        self.process_ns.extend(other.process_ns);
    }
}

/// What the main thread may call while the audio thread processes.
pub struct MainThreadCalls<'a> {
    instance: &'a mut PluginInstance<TrioHandlers>,
}

impl MainThreadCalls<'_> {
    /// `clap.state` save.
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().ok_or_else(|| HostError("plugin has no clap.state".into()))?;
        let mut out = Vec::new();
        ext.save(&handle, &mut out).map_err(|e| HostError(format!("state save failed: {e}")))?;
        Ok(out)
    }

    /// `clap.state` load.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let handle = self.instance.plugin_handle();
        let ext: PluginState = handle.get_extension().ok_or_else(|| HostError("plugin has no clap.state".into()))?;
        ext.load(&handle, &mut std::io::Cursor::new(bytes)).map_err(|e| HostError(format!("state load refused: {e}")))
    }
}

impl TrioHost {
    /// What the audio thread needs for one run (its event buffers move there and back).
    fn take_job(&mut self) -> AudioJob {
        AudioJob {
            sample_rate: self.opts.sample_rate,
            stereo: self.stereo,
            input_signal: self.opts.input_signal,
            first_sample: self.next_sample,
            first_block: self.next_block,
            out_buffer: std::mem::take(&mut self.out_buffer),
            in_buffer: std::mem::take(&mut self.in_buffer),
        }
    }

    /// Processes the given blocks on an audio thread, collecting every output event, while this
    /// thread answers main-thread callbacks. `pace`: `Some(x)` keeps the run at most `x` times
    /// faster than real time (for realtime-mode tests that need the generator to keep up).
    pub fn run(&mut self, blocks: &[BlockSpec], pace: Option<f64>) -> Result<RunResult> {
        self.run_with_main_thread(blocks, pace, &mut |_| {})
    }

    /// Like [`TrioHost::run`], and calls `main_thread` over and over on this (main) thread while the
    /// audio thread processes, as a host does its own work (state saves and loads) meanwhile.
    pub fn run_with_main_thread(
        &mut self,
        blocks: &[BlockSpec],
        pace: Option<f64>,
        main_thread: &mut dyn FnMut(&mut MainThreadCalls),
    ) -> Result<RunResult> {
        let mut processor = self.processor.take().ok_or_else(|| HostError("plugin is not active".into()))?;
        for b in blocks {
            if b.frames == 0 || b.frames > self.opts.max_block {
                self.processor = Some(processor);
                return err(format!("block of {} frames (max {})", b.frames, self.opts.max_block));
            }
        }
        let mut job = self.take_job();
        let shared_flag = |inst: &PluginInstance<TrioHandlers>| {
            inst.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst))
        };
        let started = Instant::now();
        let (processor_back, job_back, result) = std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("trio-audio".into())
                .spawn_scoped(scope, move || {
                    let result = job.process_all(&mut processor, blocks, pace);
                    (processor, job, result)
                })
                .expect("spawn audio thread");
            while !handle.is_finished() {
                if shared_flag(&self.instance) {
                    self.instance.call_on_main_thread_callback();
                }
                main_thread(&mut MainThreadCalls { instance: &mut self.instance });
                std::thread::sleep(Duration::from_millis(2));
            }
            match handle.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        self.service_main_thread();
        self.processor = Some(processor_back);
        self.out_buffer = job_back.out_buffer;
        self.in_buffer = job_back.in_buffer;
        let mut result = result?;
        result.wall = started.elapsed();
        self.next_sample += blocks.iter().map(|b| b.frames as u64).sum::<u64>();
        self.next_block += blocks.len() as u64;
        Ok(result)
    }
}

/// Processes several instances of one process together, as a host does tracks: block after block,
/// each instance in turn on one audio thread (`blocks[i]` is what `hosts[i]` gets; every list has
/// the same frames at each index), while this thread answers their main-thread callbacks. `pace`
/// as in [`TrioHost::run`].
pub fn run_together(hosts: &mut [TrioHost], blocks: &[Vec<BlockSpec>], pace: Option<f64>) -> Result<Vec<RunResult>> {
    if blocks.len() != hosts.len() {
        return err(format!("{} block lists for {} instances", blocks.len(), hosts.len()));
    }
    let length = blocks.first().map_or(0, Vec::len);
    for (list, host) in blocks.iter().zip(hosts.iter()) {
        let frames_differ = list.iter().zip(&blocks[0]).any(|(a, b)| a.frames != b.frames);
        if list.len() != length || frames_differ {
            return err("every instance must get blocks of the same frames");
        }
        if list.iter().any(|b| b.frames == 0 || b.frames > host.opts.max_block) {
            return err(format!("a block of 0 or more than {} frames", host.opts.max_block));
        }
        if host.processor.is_none() {
            return err("an instance is not active");
        }
    }
    let mut members: Vec<(StartedPluginAudioProcessor<TrioHandlers>, AudioJob)> = hosts
        .iter_mut()
        .map(|host| {
            let job = host.take_job();
            (host.processor.take().expect("checked active"), job)
        })
        .collect();
    let started = Instant::now();
    let (members, results) = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("trio-audio".into())
            .spawn_scoped(scope, move || {
                let mut runs: Vec<RunState> =
                    members.iter().zip(blocks).map(|((_, job), list)| job.start_run(list)).collect();
                let start = Instant::now();
                for run_index in 0..length {
                    for (((processor, job), run), list) in members.iter_mut().zip(&mut runs).zip(blocks) {
                        job.process_block(processor, run, run_index, &list[run_index]);
                    }
                    if let (Some(factor), Some(run)) = (pace, runs.first()) {
                        let target = Duration::from_secs_f64(run.audio_time / factor);
                        std::thread::sleep(target.saturating_sub(start.elapsed()));
                    }
                }
                let results: Vec<RunResult> = runs
                    .into_iter()
                    .map(|mut run| {
                        run.result.audio_seconds = run.audio_time;
                        run.result
                    })
                    .collect();
                (members, results)
            })
            .expect("spawn audio thread");
        while !handle.is_finished() {
            for host in hosts.iter_mut() {
                if host.instance.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst)) {
                    host.instance.call_on_main_thread_callback();
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let wall = started.elapsed();
    let frames: u64 = blocks.first().map_or(0, |list| list.iter().map(|b| b.frames as u64).sum());
    let mut out = Vec::new();
    for ((host, (processor, job)), mut result) in hosts.iter_mut().zip(members).zip(results) {
        host.service_main_thread();
        host.processor = Some(processor);
        host.out_buffer = job.out_buffer;
        host.in_buffer = job.in_buffer;
        host.next_sample += frames;
        host.next_block += length as u64;
        result.wall = wall;
        out.push(result);
    }
    Ok(out)
}

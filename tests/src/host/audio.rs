//! What the audio thread does for one run: block by block, it builds the input events (notes,
//! parameter changes, transport) and audio, calls `process()`, and collects what the plugin output.

use super::handlers::TrioHandlers;
use super::options::InputSignal;
use super::run::RunResult;
use super::Result;
use crate::events::{BlockRecord, Dialect, NoteEvent};
use crate::timeline::{BlockSpec, ParamChange, TransportState};
use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent, ParamValueEvent, TransportEvent, TransportFlags};
use clack_host::events::spaces::CoreEventSpace;
use clack_host::events::{EventFlags, EventHeader, Match};
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};
use std::time::{Duration, Instant};

/// State moved to the audio thread for one run.
pub(super) struct AudioJob {
    pub(super) sample_rate: f64,
    pub(super) stereo: bool,
    pub(super) input_signal: InputSignal,
    pub(super) first_sample: u64,
    pub(super) first_block: u64,
    pub(super) out_buffer: EventBuffer,
    pub(super) in_buffer: EventBuffer,
}

fn push_note(buffer: &mut EventBuffer, note: &crate::timeline::PlayedNote, frames: u32) {
    // u16::MAX is a wildcard ("release all" on a channel, or a key on every channel).
    let wild = |v: u16| if v == u16::MAX { Match::All } else { Match::Specific(v) };
    let pckn = Pckn::new(0u16, wild(note.channel), wild(note.key), Match::All);
    let time = note.offset.min(frames.saturating_sub(1));
    if note.on {
        buffer.push(&NoteOnEvent::new(time, pckn, note.velocity));
    } else {
        buffer.push(&NoteOffEvent::new(time, pckn, 0.0));
    }
}

fn make_transport(t: &TransportState) -> TransportEvent {
    let mut flags = TransportFlags::HAS_TEMPO
        | TransportFlags::HAS_BEATS_TIMELINE
        | TransportFlags::HAS_SECONDS_TIMELINE
        | TransportFlags::HAS_TIME_SIGNATURE;
    if t.playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    let (loop_start, loop_end) = t.loop_range.unwrap_or((0.0, 0.0));
    if t.loop_range.is_some() {
        flags |= TransportFlags::IS_LOOP_ACTIVE;
    }
    let beats_per_bar = t.tsig.0 as f64 * 4.0 / t.tsig.1 as f64;
    let bar_number = (t.beats / beats_per_bar).floor();
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(t.beats),
        song_pos_seconds: SecondsTime::from_float(t.seconds),
        tempo: t.tempo,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_float(loop_start),
        loop_end_beats: BeatTime::from_float(loop_end),
        loop_start_seconds: SecondsTime::from_float(loop_start * 60.0 / t.tempo),
        loop_end_seconds: SecondsTime::from_float(loop_end * 60.0 / t.tempo),
        bar_start: BeatTime::from_float(bar_number * beats_per_bar),
        bar_number: bar_number as i32,
        time_signature_numerator: t.tsig.0,
        time_signature_denominator: t.tsig.1,
    }
}

/// One run's buffers and counters, block after block.
pub(super) struct RunState {
    pub(super) result: RunResult,
    in_l: Vec<f32>,
    in_r: Vec<f32>,
    out_l: Vec<f32>,
    out_r: Vec<f32>,
    in_ports: AudioPorts,
    out_ports: AudioPorts,
    sample: u64,
    pub(super) audio_time: f64,
}

impl AudioJob {
    pub(super) fn start_run(&self, blocks: &[BlockSpec]) -> RunState {
        let mut result = RunResult::default();
        let channels = if self.stereo { 2 } else { 0 };
        result.audio_out = vec![Vec::new(); channels];
        result.audio_in = vec![Vec::new(); channels];
        let max_frames = blocks.iter().map(|b| b.frames).max().unwrap_or(0) as usize;
        RunState {
            result,
            in_l: vec![0f32; max_frames],
            in_r: vec![0f32; max_frames],
            out_l: vec![0f32; max_frames],
            out_r: vec![0f32; max_frames],
            in_ports: AudioPorts::with_capacity(2, 1),
            out_ports: AudioPorts::with_capacity(2, 1),
            sample: self.first_sample,
            audio_time: 0.0,
        }
    }

    pub(super) fn process_all(
        &mut self,
        processor: &mut StartedPluginAudioProcessor<TrioHandlers>,
        blocks: &[BlockSpec],
        pace: Option<f64>,
    ) -> Result<RunResult> {
        let mut run = self.start_run(blocks);
        let start = Instant::now();
        for (run_index, spec) in blocks.iter().enumerate() {
            self.process_block(processor, &mut run, run_index, spec);
            if let Some(factor) = pace {
                let target = Duration::from_secs_f64(run.audio_time / factor);
                let elapsed = start.elapsed();
                if target > elapsed {
                    std::thread::sleep(target - elapsed);
                }
            }
        }
        run.result.audio_seconds = run.audio_time;
        Ok(run.result)
    }

    pub(super) fn process_block(
        &mut self,
        processor: &mut StartedPluginAudioProcessor<TrioHandlers>,
        run: &mut RunState,
        run_index: usize,
        spec: &BlockSpec,
    ) {
        let RunState { result, in_l, in_r, out_l, out_r, in_ports, out_ports, sample, audio_time } = run;
        let sample = &mut *sample;
        {
            let frames = spec.frames as usize;
            let block_index = self.first_block + run_index as u64;
            if spec.reset_before {
                processor.reset();
            }

            self.in_buffer.clear();
            let mut params: Vec<&ParamChange> = spec.params.iter().collect();
            params.sort_by_key(|p| p.offset);
            // Parameter changes and played notes, in time order (changes first at one offset).
            let mut notes = spec.notes.iter().peekable();
            for p in params {
                let offset = p.offset.min(spec.frames - 1);
                while let Some(n) = notes.next_if(|n| n.offset < offset) {
                    push_note(&mut self.in_buffer, n, spec.frames);
                }
                self.in_buffer.push(&ParamValueEvent::new(offset, ClapId::new(p.param_id), Pckn::match_all(), p.value));
            }
            for n in notes {
                push_note(&mut self.in_buffer, n, spec.frames);
            }
            self.out_buffer.clear();
            let transport = spec.transport.as_ref().map(make_transport);

            // Only the plugin's process() call is timed, not the host's buffer filling and copying.
            let process_ns;
            let status = if self.stereo {
                for i in 0..frames {
                    let at = *sample + i as u64;
                    let subnormal = self.input_signal == InputSignal::Subnormals && at.is_multiple_of(2);
                    in_l[i] = if subnormal { f32::MIN_POSITIVE / 4.0 } else { test_signal(at, 0) };
                    in_r[i] = if subnormal { -f32::MIN_POSITIVE / 8.0 } else { test_signal(at, 1) };
                    out_l[i] = f32::NAN;
                    out_r[i] = f32::NAN;
                }
                result.audio_in[0].extend_from_slice(&in_l[..frames]);
                result.audio_in[1].extend_from_slice(&in_r[..frames]);
                let inputs = in_ports.with_input_buffers([AudioPortBuffer {
                    latency: 0,
                    channels: AudioPortBufferType::f32_input_only(
                        [InputChannel::variable(&mut in_l[..frames]), InputChannel::variable(&mut in_r[..frames])]
                            .into_iter(),
                    ),
                }]);
                let mut outputs = out_ports.with_output_buffers([AudioPortBuffer {
                    latency: 0,
                    channels: AudioPortBufferType::f32_output_only(
                        [&mut out_l[..frames], &mut out_r[..frames]].into_iter(),
                    ),
                }]);
                let process_started = Instant::now();
                let s = processor.process(
                    &inputs,
                    &mut outputs,
                    &InputEvents::from_buffer(&self.in_buffer),
                    &mut OutputEvents::from_buffer(&mut self.out_buffer),
                    Some(*sample),
                    transport.as_ref(),
                );
                process_ns = process_started.elapsed().as_nanos() as u64;
                result.audio_out[0].extend_from_slice(&out_l[..frames]);
                result.audio_out[1].extend_from_slice(&out_r[..frames]);
                s
            } else {
                // No audio ports: the block length travels in an input buffer list with no ports.
                // SAFETY: an empty port list holds no pointers.
                let inputs = unsafe { InputAudioBuffers::from_raw_buffers(&[], spec.frames) };
                let mut outputs = OutputAudioBuffers::empty();
                let process_started = Instant::now();
                let s = processor.process(
                    &inputs,
                    &mut outputs,
                    &InputEvents::from_buffer(&self.in_buffer),
                    &mut OutputEvents::from_buffer(&mut self.out_buffer),
                    Some(*sample),
                    transport.as_ref(),
                );
                process_ns = process_started.elapsed().as_nanos() as u64;
                s
            };
            result.process_ns.push(process_ns);
            if status.is_err() {
                result.process_errors.push(block_index);
            }

            for event in self.out_buffer.iter() {
                let time = event.header().time();
                let mk = |channel: i16, key: i16, velocity: f64, on: bool, dialect: Dialect| NoteEvent {
                    time: *sample + time as u64,
                    block: block_index,
                    run_block: run_index,
                    offset: time,
                    channel,
                    key,
                    velocity,
                    on,
                    dialect,
                };
                match event.as_core_event() {
                    Some(CoreEventSpace::NoteOn(e)) => {
                        let r = e.as_raw();
                        result.events.push(mk(r.channel, r.key, r.velocity, true, Dialect::Clap));
                    }
                    Some(CoreEventSpace::NoteOff(e)) => {
                        let r = e.as_raw();
                        result.events.push(mk(r.channel, r.key, r.velocity, false, Dialect::Clap));
                    }
                    Some(CoreEventSpace::Midi(e)) => {
                        let d = e.data();
                        let status = d[0] & 0xF0;
                        let ch = (d[0] & 0x0F) as i16;
                        match status {
                            0x90 if d[2] > 0 => {
                                result.events.push(mk(ch, d[1] as i16, d[2] as f64 / 127.0, true, Dialect::Midi))
                            }
                            0x80 | 0x90 => {
                                result.events.push(mk(ch, d[1] as i16, d[2] as f64 / 127.0, false, Dialect::Midi))
                            }
                            _ => result.other_events.push(format!("midi {d:02x?} at block {block_index}+{time}")),
                        }
                    }
                    Some(CoreEventSpace::NoteChoke(_)) => {
                        result.other_events.push(format!("note choke at block {block_index}+{time}"))
                    }
                    Some(CoreEventSpace::NoteEnd(_)) => {}
                    Some(CoreEventSpace::ParamValue(_))
                    | Some(CoreEventSpace::ParamGestureBegin(_))
                    | Some(CoreEventSpace::ParamGestureEnd(_)) => {}
                    Some(other) => result.other_events.push(format!("{other:?}")),
                    None => result.other_events.push(format!("non-core event type {}", event.header().type_id())),
                }
            }

            result.blocks.push(BlockRecord {
                index: block_index,
                run_index,
                start_sample: *sample,
                frames: spec.frames,
                transport: spec.transport,
                params: spec.params.clone(),
            });
            *sample += spec.frames as u64;
            *audio_time += spec.frames as f64 / self.sample_rate;
        }
    }
}

/// The test signal fed into a stereo layout: deterministic, different on each channel, never silent.
fn test_signal(abs_sample: u64, channel: usize) -> f32 {
    let t = abs_sample as f64 / 48_000.0;
    let f = if channel == 0 { 440.0 } else { 659.25 };
    let amp = if channel == 0 { 0.5 } else { -0.25 };
    (amp * (2.0 * std::f64::consts::PI * f * t).sin() + 0.01 * ((abs_sample % 97) as f64 / 97.0)) as f32
}

//! `trio-render` as a library: render N bars from bar 0 with a playing transport, check the output,
//! and write the trio and the single parts as standard MIDI files.

use crate::events::{check, note_name, released_at_block_start, Analysis, NoteEvent};
use crate::host::{HostError, HostOptions, InitialParam, RenderMode, RunResult, TrioHost};
use crate::timeline::Timeline;
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// MIDI file resolution.
pub const TICKS_PER_BEAT: u16 = 480;

/// The three parts, in the plugin's order, with their parameter name prefixes.
pub const PARTS: [&str; 3] = ["Lead", "Arp", "Bass"];

#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub plugin: PathBuf,
    pub bars: f64,
    pub bpm: f64,
    pub block: u32,
    pub rate: f64,
    pub seed: Option<i32>,
    pub mode: RenderMode,
    /// Realtime mode only: keep the run at most this many times faster than real time.
    pub pace: Option<f64>,
    pub out: Option<PathBuf>,
    /// Do not count a render without any note as a failure.
    pub allow_silence: bool,
    /// (parameter name, text) pairs set before playing, parsed by the plugin as a typed value is.
    pub params: Vec<(String, String)>,
    /// A MIDI file played into the plugin's input while rendering, from bar 0 (its beats, its channels).
    pub input: Option<PathBuf>,
    /// A chord progression to force (`Am F C G`, `| Am | F | C G |`), as the editor's field takes it.
    pub progression: Option<String>,
    /// Automation: (bar, parameter name, text) — the parameter takes the value at that bar (a bar may
    /// be fractional: 4.5 is beat 3 of bar 5), as a host's automation lane sends it.
    pub automation: Vec<(f64, String, String)>,
    /// A model file to render with: the plugin's persisted model choice, set before activation.
    pub model: Option<PathBuf>,
    /// (bar, model file): the model choice changes before the block that holds that bar (the plugin
    /// takes the new model from the next bar line on). `--at BAR model=PATH`.
    pub model_switches: Vec<(f64, PathBuf)>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            plugin: crate::trio_clap_path(),
            bars: 16.0,
            bpm: 128.0,
            block: 256,
            rate: 48_000.0,
            seed: None,
            mode: RenderMode::Offline,
            pace: None,
            out: None,
            allow_silence: false,
            params: Vec::new(),
            input: None,
            progression: None,
            automation: Vec::new(),
            model: None,
            model_switches: Vec::new(),
        }
    }
}

/// A part as the plugin's parameters describe it at render time.
#[derive(Debug, Clone, PartialEq)]
pub struct PartInfo {
    /// "lead", "arp", "bass".
    pub name: String,
    pub enabled: bool,
    /// CLAP channel (0-based).
    pub channel: i16,
    pub low: i32,
    pub high: i32,
}

impl PartInfo {
    /// The register as an ordered pair.
    pub fn register(&self) -> (i32, i32) {
        (self.low.min(self.high), self.low.max(self.high))
    }
}

/// Reads each part's on/low/high/channel from the plugin's current parameter values.
pub fn read_parts(host: &mut TrioHost) -> Result<Vec<PartInfo>, HostError> {
    let mut parts = Vec::new();
    for p in PARTS {
        let on = host.param_value(&format!("{p} On"))? >= 0.5;
        let low = host.int_param(&format!("{p} Low"), 0, 127)?;
        let high = host.int_param(&format!("{p} High"), 0, 127)?;
        let ch = host.int_param(&format!("{p} Channel"), 1, 16)?;
        let low = low.plain(host.param_value(&format!("{p} Low"))?);
        let high = high.plain(host.param_value(&format!("{p} High"))?);
        let channel = ch.plain(host.param_value(&format!("{p} Channel"))?) as i16 - 1;
        parts.push(PartInfo { name: p.to_lowercase(), enabled: on, channel, low, high });
    }
    // "Part Output" may send one part alone, on channel 1; the others do not leave the plugin.
    let output = host.param_value("Part Output")?;
    let only = host.value_to_text("Part Output", output)?;
    if let Some(only) = only.strip_suffix(" Only") {
        for part in &mut parts {
            if part.name.eq_ignore_ascii_case(only) {
                part.channel = 0;
            } else {
                (part.channel, part.enabled) = (-1, false);
            }
        }
    }
    Ok(parts)
}

/// The render and everything learnt from it.
#[derive(Debug, Clone)]
pub struct RenderReport {
    pub options: RenderOptions,
    pub parts: Vec<PartInfo>,
    pub run: RunResult,
    pub analysis: Analysis,
    /// Invariant failures (empty when the render is clean).
    pub failures: Vec<String>,
    pub files: Vec<PathBuf>,
}

impl RenderReport {
    /// Note events that belong to a part (by its channel).
    pub fn part_events(&self, part: &PartInfo) -> Vec<NoteEvent> {
        self.run.events.iter().copied().filter(|e| e.channel == part.channel).collect()
    }

    pub fn summary(&self) -> String {
        let o = &self.options;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Neural Trio render: {} bars at {} BPM, {} Hz, {}-frame blocks, {} mode",
            o.bars,
            o.bpm,
            o.rate,
            o.block,
            match o.mode {
                RenderMode::Offline => "offline",
                RenderMode::Realtime => "realtime",
            }
        );
        for p in &self.parts {
            let notes = self.analysis.notes_on(p.channel);
            let (lo, hi) = p.register();
            let range = match (notes.iter().map(|n| n.key).min(), notes.iter().map(|n| n.key).max()) {
                (Some(a), Some(b)) => format!("{}–{} ({a}–{b})", note_name(a), note_name(b)),
                _ => "-".to_string(),
            };
            let _ = writeln!(
                s,
                "  {:<5} ch {:>2}{}: {:>5} notes, pitch range {:<20} register {}–{} ({lo}–{hi})",
                p.name,
                p.channel + 1,
                if p.enabled { "" } else { " (off)" },
                notes.len(),
                range,
                note_name(lo as i16),
                note_name(hi as i16),
            );
        }
        let _ = writeln!(
            s,
            "  rendered {:.1} s of audio in {:.2} s: {:.1}x real time",
            self.run.audio_seconds,
            self.run.wall.as_secs_f64(),
            self.run.speed()
        );
        for f in &self.files {
            let _ = writeln!(s, "  wrote {}", f.display());
        }
        if self.failures.is_empty() {
            let _ = writeln!(s, "invariants: OK");
        } else {
            let _ = writeln!(s, "invariants: {} FAILED", self.failures.len());
            for f in self.failures.iter().take(40) {
                let _ = writeln!(s, "  {f}");
            }
        }
        s
    }
}

/// Renders `bars` bars from bar 0, then one stopped block (which must release everything), checks
/// the invariants and writes the MIDI files when `out` is set.
pub fn render(opts: &RenderOptions) -> Result<RenderReport, HostError> {
    let mut host = open_instance(opts, &[])?;
    let parts = read_parts(&mut host)?;
    let plan = plan_blocks(opts, &mut host, true)?;
    let pace = match opts.mode {
        RenderMode::Realtime => opts.pace,
        RenderMode::Offline => None,
    };
    // Runs up to each model switch, sets the choice (as a host restores a field), and goes on.
    let mut run = RunResult::default();
    let mut from = 0;
    for (at, json) in model_switch_blocks(opts, &plan.blocks)? {
        run.extend(host.run(&plan.blocks[from..at], pace)?);
        host.set_persisted_field(MODEL_FIELD, &json)?;
        from = at;
    }
    run.extend(host.run(&plan.blocks[from..], pace)?);
    drop(host);
    let mut report = check_render(opts, parts, run, &plan);
    if let Some(out) = &opts.out {
        report.files = write_midi_files(&report, out)
            .map_err(|e| HostError(format!("writing MIDI files to {}: {e}", out.display())))?;
    }
    Ok(report)
}

/// `trio-render --linked`: three linked instances in one process and what they played together.
#[derive(Debug, Clone)]
pub struct LinkedRender {
    /// Lead Only, Arp Only and Bass Only, each checked on its own.
    pub members: Vec<RenderReport>,
    /// Their notes together, each part on the channel its knob names: what one instance with All
    /// Parts would have played.
    pub union: RenderReport,
}

/// The group the linked render uses.
pub const LINKED_GROUP: &str = "A";

/// Renders with three instances in one host process, all in Link group A, one with Part Output
/// Lead Only, one Arp Only, one Bass Only (the settings of `opts` in each), processed block by block
/// as a host does three tracks. The input file, if any, is played into the first member.
pub fn render_linked(opts: &RenderOptions) -> Result<LinkedRender, HostError> {
    if !opts.model_switches.is_empty() {
        return Err(HostError("--at BAR model=PATH is not supported with --linked".into()));
    }
    let mut hosts = Vec::new();
    let mut channels = Vec::new();
    for part in PARTS {
        let only = format!("{part} Only");
        let mut host = open_instance(opts, &[("Link", LINKED_GROUP), ("Part Output", &only)])?;
        let channel = host.int_param(&format!("{part} Channel"), 1, 16)?;
        channels.push(channel.plain(host.param_value(&format!("{part} Channel"))?) as i16 - 1);
        hosts.push(host);
    }
    let mut plans = Vec::new();
    for (i, host) in hosts.iter_mut().enumerate() {
        plans.push(plan_blocks(opts, host, i == 0)?);
    }
    let parts: Vec<Vec<PartInfo>> = hosts.iter_mut().map(read_parts).collect::<Result<_, _>>()?;
    let blocks: Vec<Vec<crate::BlockSpec>> = plans.iter().map(|p| p.blocks.clone()).collect();
    let pace = match opts.mode {
        RenderMode::Realtime => opts.pace,
        RenderMode::Offline => None,
    };
    let runs = crate::host::run_together(&mut hosts, &blocks, pace)?;
    drop(hosts);

    // The union: each member's part moved to the channel its knob names, in time order.
    let mut union_run = runs[0].clone();
    union_run.events = runs
        .iter()
        .zip(&channels)
        .flat_map(|(run, &channel)| {
            run.events
                .iter()
                .map(move |e| NoteEvent { channel: if e.channel == 0 { channel } else { e.channel }, ..*e })
        })
        .collect();
    union_run.events.sort_by_key(|e| e.time);
    union_run.other_events = runs.iter().flat_map(|r| r.other_events.clone()).collect();
    let union_parts: Vec<PartInfo> = parts
        .iter()
        .zip(&channels)
        .enumerate()
        .map(|(i, (member_parts, &channel))| PartInfo { channel, ..member_parts[i].clone() })
        .collect();
    let union = check_render(opts, union_parts, union_run, &plans[0]);
    let members: Vec<RenderReport> = parts
        .into_iter()
        .zip(runs)
        .zip(&plans)
        .map(|((parts, run), plan)| check_render(opts, parts, run, plan))
        .collect();
    let mut linked = LinkedRender { members, union };
    if let Some(out) = &opts.out {
        linked.union.files = write_midi_files(&linked.union, out)
            .map_err(|e| HostError(format!("writing MIDI files to {}: {e}", out.display())))?;
    }
    Ok(linked)
}

impl LinkedRender {
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (part, member) in PARTS.iter().zip(&self.members) {
            let _ = writeln!(s, "-- member {part} Only (Link {LINKED_GROUP})");
            s.push_str(&member.summary());
        }
        let _ = writeln!(s, "-- the three members together");
        s.push_str(&self.union.summary());
        s
    }

    /// Every member and the union kept every invariant.
    pub fn failures(&self) -> Vec<String> {
        self.members.iter().chain([&self.union]).flat_map(|r| r.failures.clone()).collect()
    }
}

/// A new instance with the render's settings (and `extra` parameters, as text), activated.
fn open_instance(opts: &RenderOptions, extra: &[(&str, &str)]) -> Result<TrioHost, HostError> {
    let mut initial_params: Vec<InitialParam> =
        opts.params.iter().map(|(name, value)| InitialParam::Text(name.clone(), value.clone())).collect();
    initial_params.extend(extra.iter().map(|(name, value)| InitialParam::Text(name.to_string(), value.to_string())));
    if let Some(seed) = opts.seed {
        initial_params.push(InitialParam::Text("Seed".into(), seed.to_string()));
    }
    let mut host = TrioHost::new_inactive(
        &opts.plugin,
        HostOptions {
            sample_rate: opts.rate,
            max_block: opts.block,
            render: opts.mode,
            initial_params,
            ..HostOptions::default()
        },
    )?;
    // The model is chosen before activation, as a project that holds the choice opens.
    if let Some(model) = &opts.model {
        host.set_persisted_field(MODEL_FIELD, &model_choice_json(model)?)?;
    }
    host.activate()?;
    if let Some(seed) = opts.seed {
        let seed_param = host.int_param("Seed", 1, 9999)?;
        let now = seed_param.plain(host.param_value("Seed")?);
        if now != seed {
            return Err(HostError(format!("Seed is {now} after setting it to {seed}")));
        }
    }
    if let Some(progression) = &opts.progression {
        let json = serde_json::to_string(progression).map_err(|e| HostError(e.to_string()))?;
        host.set_persisted_field("progression", &json)?;
    }
    Ok(host)
}

/// The plugin's persisted field that holds the model choice.
pub const MODEL_FIELD: &str = "model";

/// The model choice of a file, as the plugin reads it: by its path (absolute). The plugin fills in the
/// content hash when it opens the file.
pub fn model_choice_json(path: &Path) -> Result<String, HostError> {
    if !path.is_file() {
        return Err(HostError(format!("model file {} does not exist", path.display())));
    }
    let path = std::path::absolute(path).map_err(|e| HostError(format!("{}: {e}", path.display())))?;
    let choice = serde_json::json!({ "kind": "file", "path": path.to_string_lossy() });
    Ok(choice.to_string())
}

/// (index of the block before which the choice changes, the choice's JSON), in order.
fn model_switch_blocks(opts: &RenderOptions, blocks: &[crate::BlockSpec]) -> Result<Vec<(usize, String)>, HostError> {
    let beats_per_sample = opts.bpm / 60.0 / opts.rate;
    let mut switches = Vec::new();
    for (bar, path) in &opts.model_switches {
        let at_beats = bar * 4.0;
        let index = blocks.iter().position(|b| {
            b.transport.is_some_and(|t| t.playing && at_beats < t.beats + b.frames as f64 * beats_per_sample - 1e-9)
        });
        let Some(index) = index else {
            return Err(HostError(format!("--at {bar} model=…: past the end of the render")));
        };
        switches.push((index, model_choice_json(path)?));
    }
    switches.sort_by_key(|s| s.0);
    Ok(switches)
}

/// The blocks of a render and what checking it needs to know.
struct BlockPlan {
    blocks: Vec<crate::BlockSpec>,
    stop_block: u64,
    /// Channels the input file plays on (its notes pass through there).
    played_channels: Vec<i16>,
    /// The part the player plays (Follow: Part …): it leaves with the played notes.
    followed: Option<String>,
}

/// Plays `bars` bars from bar 0, then stops; with `input`, the input file's notes are played in and
/// the automation sent.
fn plan_blocks(opts: &RenderOptions, host: &mut TrioHost, input: bool) -> Result<BlockPlan, HostError> {
    let mut played = match (&opts.input, input) {
        (Some(path), true) => read_played_notes(path).map_err(HostError)?,
        _ => Vec::new(),
    };
    played.retain(|n| n.0 < opts.bars * 4.0);
    let played_channels: Vec<i16> = played.iter().map(|n| n.1 as i16).collect();
    let follow = host.param_value("Follow")?;
    let follow = host.value_to_text("Follow", follow)?;
    let followed = follow.strip_prefix("Part: ").map(str::to_lowercase);

    let mut tl = Timeline::new(opts.rate, opts.block, opts.bpm);
    tl.play_bars(opts.bars);
    tl.place_notes(&played);
    let stop_block = tl.stop_blocks(1).start as u64;
    // Keys still held when the render ends are released with the transport stopped, as a player lifts them.
    let held = still_held(&played);
    if let Some(last) = tl.last_block_notes() {
        last.extend(held.iter().map(|&(channel, key)| crate::timeline::PlayedNote {
            offset: 0,
            channel,
            key,
            velocity: 0.0,
            on: false,
        }));
    }
    let mut blocks = tl.take();
    if input {
        automate(opts, host, &mut blocks)?;
    }
    Ok(BlockPlan { blocks, stop_block, played_channels, followed })
}

/// Puts each automation point on the block (and sample) where its bar falls.
fn automate(opts: &RenderOptions, host: &mut TrioHost, blocks: &mut [crate::BlockSpec]) -> Result<(), HostError> {
    let beats_per_sample = opts.bpm / 60.0 / opts.rate;
    for (bar, name, text) in &opts.automation {
        let param_id = host.param(name)?.id;
        let value = host.text_to_value(name, text)?;
        let at_beats = bar * 4.0;
        let block = blocks.iter_mut().find(|b| {
            b.transport.is_some_and(|t| t.playing && at_beats < t.beats + b.frames as f64 * beats_per_sample - 1e-9)
        });
        let Some(block) = block else {
            return Err(HostError(format!("--at {bar}: past the end of the render")));
        };
        let start = block.transport.map_or(0.0, |t| t.beats);
        let offset = (((at_beats - start) / beats_per_sample).round().max(0.0) as u32).min(block.frames - 1);
        block.params.push(crate::ParamChange { offset, param_id, value });
    }
    Ok(())
}

/// Checks a render's invariants: sorted and balanced notes, silence once stopped, every note on a
/// part's channel and in its register.
fn check_render(opts: &RenderOptions, parts: Vec<PartInfo>, run: RunResult, plan: &BlockPlan) -> RenderReport {
    let analysis = check(&run.events, &run.blocks);
    let mut failures = analysis.violations.clone();
    if !analysis.hanging.is_empty() {
        failures.push(format!("notes never released (channel, key): {:?}", analysis.hanging));
    }
    let (stop_problems, _) = released_at_block_start(&run.events, plan.stop_block);
    failures.extend(stop_problems.into_iter().map(|p| format!("transport stop: {p}")));
    for e in run.events.iter().filter(|e| e.on && e.block >= plan.stop_block) {
        failures.push(format!("note-on ch{} key {} while the transport is stopped", e.channel, e.key));
    }
    for b in &run.process_errors {
        failures.push(format!("process() returned an error at block {b}"));
    }
    for other in run.other_events.iter().take(5) {
        failures.push(format!("unexpected output event: {other}"));
    }
    let channels: Vec<i16> = parts.iter().map(|p| p.channel).collect();
    for n in &analysis.notes {
        match parts.iter().find(|p| p.channel == n.channel) {
            // Played notes pass through on their own channel.
            None if plan.played_channels.contains(&n.channel) => {}
            Some(p) if plan.followed.as_deref() == Some(p.name.as_str()) => {}
            None => failures.push(format!(
                "note {} on channel {} which no part uses (parts on {:?})",
                n.key,
                n.channel + 1,
                channels.iter().map(|c| c + 1).collect::<Vec<_>>()
            )),
            Some(p) => {
                let (lo, hi) = p.register();
                if (n.key as i32) < lo || (n.key as i32) > hi {
                    failures.push(format!(
                        "{} note {} ({}) outside its register {}–{}",
                        p.name,
                        n.key,
                        note_name(n.key),
                        lo,
                        hi
                    ));
                }
                if !p.enabled {
                    failures.push(format!("{} is off but played note {}", p.name, n.key));
                }
            }
        }
    }
    if analysis.notes.is_empty() && !opts.allow_silence {
        failures.push("no notes at all".to_string());
    }
    RenderReport { options: opts.clone(), parts, run, analysis, failures, files: Vec::new() }
}

/// The notes of a MIDI file as (beats, channel, key, velocity 0–1, 0 for a release), in time order.
/// Positions are read in beats (the file's resolution), so the file plays at the render's tempo.
pub fn read_played_notes(path: &Path) -> Result<Vec<(f64, u16, u16, f64)>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let smf = Smf::parse(&bytes).map_err(|e| format!("{}: not a MIDI file: {e}", path.display()))?;
    let Timing::Metrical(ticks_per_beat) = smf.header.timing else {
        return Err(format!("{}: SMPTE timing; a file in beats (metrical) is needed", path.display()));
    };
    let ticks_per_beat = ticks_per_beat.as_int().max(1) as f64;
    let mut notes = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for ev in track {
            tick += ev.delta.as_int() as u64;
            if let TrackEventKind::Midi { channel, message } = ev.kind {
                let beats = tick as f64 / ticks_per_beat;
                let ch = channel.as_int() as u16;
                match message {
                    MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                        notes.push((beats, ch, key.as_int() as u16, vel.as_int() as f64 / 127.0))
                    }
                    MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                        notes.push((beats, ch, key.as_int() as u16, 0.0))
                    }
                    _ => {}
                }
            }
        }
    }
    // Releases before presses at one position, so a repeated key is let go first.
    notes.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.3 > 0.0).cmp(&(b.3 > 0.0))));
    Ok(notes)
}

/// Writes played notes (beats, channel, key, velocity 0–1 or 0 for a release) as a format-0 MIDI
/// file at 120 BPM: what `--input` reads.
pub fn write_input_midi(path: &Path, notes: &[(f64, u16, u16, f64)]) -> std::io::Result<()> {
    let events: Vec<(u64, TrackEventKind<'static>)> = notes
        .iter()
        .map(|&(beats, channel, key, velocity)| {
            let tick = (beats * TICKS_PER_BEAT as f64).round() as u64;
            let key = u7::new(key.min(127) as u8);
            let message = if velocity > 0.0 {
                MidiMessage::NoteOn { key, vel: u7::new((velocity * 127.0).round().clamp(1.0, 127.0) as u8) }
            } else {
                MidiMessage::NoteOff { key, vel: u7::new(0) }
            };
            (tick, TrackEventKind::Midi { channel: u4::new(channel.min(15) as u8), message })
        })
        .collect();
    let mut track = tempo_meta(120.0);
    track.extend(events);
    let smf = Smf {
        header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(TICKS_PER_BEAT))),
        tracks: vec![to_track(track)],
    };
    smf.save(path)
}

/// Keys a list of played notes leaves held at its end: (channel, key).
fn still_held(played: &[(f64, u16, u16, f64)]) -> Vec<(u16, u16)> {
    let mut held = std::collections::BTreeSet::new();
    for &(_, channel, key, velocity) in played {
        if velocity > 0.0 {
            held.insert((channel, key));
        } else {
            held.remove(&(channel, key));
        }
    }
    held.into_iter().collect()
}

fn sample_to_tick(sample: u64, rate: f64, bpm: f64) -> u64 {
    (sample as f64 / rate * bpm / 60.0 * TICKS_PER_BEAT as f64).round() as u64
}

/// (tick, event) for a part's note events; the order of the plugin's output is kept.
fn part_midi_events(events: &[NoteEvent], channel: i16, rate: f64, bpm: f64) -> Vec<(u64, TrackEventKind<'static>)> {
    events
        .iter()
        .filter(|e| e.channel == channel && (0..=127).contains(&e.key))
        .map(|e| {
            let key = u7::new(e.key as u8);
            let message = if e.on {
                let vel = (e.velocity * 127.0).round().clamp(1.0, 127.0) as u8;
                MidiMessage::NoteOn { key, vel: u7::new(vel) }
            } else {
                MidiMessage::NoteOff { key, vel: u7::new(0) }
            };
            (
                sample_to_tick(e.time, rate, bpm),
                TrackEventKind::Midi { channel: u4::new(channel.clamp(0, 15) as u8), message },
            )
        })
        .collect()
}

fn to_track(mut events: Vec<(u64, TrackEventKind<'_>)>) -> Vec<TrackEvent<'_>> {
    events.sort_by_key(|(t, _)| *t); // stable: keeps the output order within a tick
    let mut last = 0;
    let mut track: Vec<TrackEvent> = events
        .into_iter()
        .map(|(t, kind)| {
            let delta = u28::new((t - last) as u32);
            last = t;
            TrackEvent { delta, kind }
        })
        .collect();
    track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
    track
}

fn tempo_meta(bpm: f64) -> Vec<(u64, TrackEventKind<'static>)> {
    vec![
        (0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new((60_000_000.0 / bpm).round() as u32)))),
        (0, TrackEventKind::Meta(MetaMessage::TimeSignature(4, 2, 24, 8))),
    ]
}

/// Writes `trio.mid` (format 1: a tempo track, then one named track per part) and `<part>.mid`
/// (format 0) into `out`; returns the paths written.
pub fn write_midi_files(report: &RenderReport, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let (rate, bpm) = (report.options.rate, report.options.bpm);
    let timing = Timing::Metrical(u15::new(TICKS_PER_BEAT));
    let mut written = Vec::new();

    let mut tempo_track = vec![(0, TrackEventKind::Meta(MetaMessage::TrackName(b"Neural Trio")))];
    tempo_track.extend(tempo_meta(bpm));
    let mut tracks = vec![to_track(tempo_track)];
    for p in &report.parts {
        let mut ev = vec![(0, TrackEventKind::Meta(MetaMessage::TrackName(p.name.as_bytes())))];
        ev.extend(part_midi_events(&report.run.events, p.channel, rate, bpm));
        tracks.push(to_track(ev));
    }
    let smf = Smf { header: Header::new(Format::Parallel, timing), tracks };
    let path = out.join("trio.mid");
    smf.save(&path)?;
    written.push(path);

    for p in &report.parts {
        let mut ev = vec![(0, TrackEventKind::Meta(MetaMessage::TrackName(p.name.as_bytes())))];
        ev.extend(tempo_meta(bpm));
        ev.extend(part_midi_events(&report.run.events, p.channel, rate, bpm));
        let smf = Smf { header: Header::new(Format::SingleTrack, timing), tracks: vec![to_track(ev)] };
        let path = out.join(format!("{}.mid", p.name));
        smf.save(&path)?;
        written.push(path);
    }
    Ok(written)
}

/// A note read back from a MIDI file: (channel, key, start tick, end tick).
pub type MidiNote = (u8, u8, u64, u64);

/// Reads a MIDI file back: its format, track names and the notes per track.
/// A file's tracks: name and notes.
pub type MidiTracks = Vec<(String, Vec<MidiNote>)>;

pub fn read_midi(path: &Path) -> Result<(Format, MidiTracks), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let smf = Smf::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tracks = Vec::new();
    for track in &smf.tracks {
        let mut name = String::new();
        let mut tick = 0u64;
        let mut open: std::collections::BTreeMap<(u8, u8), u64> = Default::default();
        let mut notes = Vec::new();
        for ev in track {
            tick += ev.delta.as_int() as u64;
            match ev.kind {
                TrackEventKind::Meta(MetaMessage::TrackName(n)) => name = String::from_utf8_lossy(n).into_owned(),
                TrackEventKind::Midi { channel, message } => {
                    let ch = channel.as_int();
                    match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                            open.insert((ch, key.as_int()), tick);
                        }
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            if let Some(start) = open.remove(&(ch, key.as_int())) {
                                notes.push((ch, key.as_int(), start, tick));
                            } else {
                                return Err(format!(
                                    "{}: note-off without note-on (ch {ch} key {key})",
                                    path.display()
                                ));
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if !open.is_empty() {
            return Err(format!("{}: track {name:?} leaves notes open: {:?}", path.display(), open.keys()));
        }
        tracks.push((name, notes));
    }
    Ok((smf.header.format, tracks))
}

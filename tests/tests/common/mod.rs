//! Shared helpers for the integration tests (each tests/*.rs file is its own process).
#![allow(dead_code)]

use trio_tests::events::{check, note_name, Analysis, NoteEvent};
use trio_tests::host::{HostOptions, InitialParam, RenderMode, RunResult, TrioHost};
use trio_tests::render::{read_parts, PartInfo};
use trio_tests::timeline::{BlockSpec, Timeline};

pub const SR: f64 = 48_000.0;
pub const BLOCK: u32 = 256;
pub const BPM: f64 = 128.0;
/// The plugin's grid: 12 ticks per beat (16ths and 16th-triplets).
pub const TICKS_PER_BEAT: f64 = 12.0;

/// A fresh instance of the bundle under test, activated with the given render mode and initial
/// parameters (set through `params.flush()` before activation).
pub fn host(render: RenderMode, initial: Vec<InitialParam>) -> TrioHost {
    let bundle = trio_tests::require_trio_clap();
    TrioHost::new(
        &bundle,
        HostOptions { sample_rate: SR, max_block: BLOCK, render, initial_params: initial, ..HostOptions::default() },
    )
    .unwrap_or_else(|e| panic!("hosting {}: {e}", bundle.display()))
}

/// A fresh offline instance that opens a saved project (the state set before activation, as a host does).
pub fn reopened(state: &[u8]) -> TrioHost {
    let bundle = trio_tests::require_trio_clap();
    TrioHost::new(
        &bundle,
        HostOptions {
            sample_rate: SR,
            max_block: BLOCK,
            render: RenderMode::Offline,
            initial_state: Some(state.to_vec()),
            ..HostOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("reopening the project: {e}"))
}

pub fn offline_host() -> TrioHost {
    host(RenderMode::Offline, Vec::new())
}

pub fn text(name: &str, value: &str) -> InitialParam {
    InitialParam::Text(name.to_string(), value.to_string())
}

pub fn parts(host: &mut TrioHost) -> Vec<PartInfo> {
    read_parts(host).unwrap_or_else(|e| panic!("reading part parameters: {e}"))
}

pub fn run(host: &mut TrioHost, blocks: &[BlockSpec]) -> RunResult {
    host.run(blocks, None).unwrap_or_else(|e| panic!("processing failed: {e}"))
}

/// Checks the generic invariants; `closed`: every note must also have been released.
#[track_caller]
pub fn assert_clean(what: &str, r: &RunResult, closed: bool) -> Analysis {
    let a = check(&r.events, &r.blocks);
    let problems = a.problems(closed);
    assert!(problems.is_empty(), "{what}: output invariants broken:\n{problems}");
    assert!(r.process_errors.is_empty(), "{what}: process() failed at blocks {:?}", r.process_errors);
    a
}

/// Every note of every part lies inside that part's register.
#[track_caller]
pub fn assert_in_registers(what: &str, events: &[NoteEvent], parts: &[PartInfo]) {
    let mut bad = Vec::new();
    for e in events.iter().filter(|e| e.on) {
        if let Some(p) = parts.iter().find(|p| p.channel == e.channel) {
            let (lo, hi) = p.register();
            if (e.key as i32) < lo || (e.key as i32) > hi {
                bad.push(format!(
                    "{} note-on {} ({}) at block {} outside {}–{}",
                    p.name,
                    e.key,
                    note_name(e.key),
                    e.block,
                    lo,
                    hi
                ));
            }
        } else {
            bad.push(format!("note-on key {} on channel {} which no part uses", e.key, e.channel + 1));
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: {} notes outside their register:\n  {}",
        bad.len(),
        bad[..bad.len().min(20)].join("\n  ")
    );
}

/// Note-ons of the given CLAP channel.
pub fn ons(events: &[NoteEvent], channel: i16) -> Vec<NoteEvent> {
    events.iter().copied().filter(|e| e.on && e.channel == channel).collect()
}

/// The plugin's default part layout, asserted against the spec (lead/arp/bass on channels 1/2/3).
pub fn default_parts(host: &mut TrioHost) -> Vec<PartInfo> {
    let p = parts(host);
    let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["lead", "arp", "bass"]);
    for (i, part) in p.iter().enumerate() {
        assert_eq!(part.channel, i as i16, "{} should default to MIDI channel {}", part.name, i + 1);
        assert!(part.enabled, "{} should be on by default", part.name);
        assert!(part.low <= part.high, "{} default register {}..{} is inverted", part.name, part.low, part.high);
    }
    p
}

/// A timeline at 128 BPM, 48 kHz, 256-frame blocks, playing from bar 0.
pub fn timeline() -> Timeline {
    Timeline::new(SR, BLOCK, BPM)
}

/// Note-on events that are off the 1/12-beat grid by more than a sample, measured at their block's
/// tempo and position.
pub fn off_grid(r: &RunResult, events: impl Iterator<Item = NoteEvent>) -> Vec<String> {
    events
        .filter_map(|e| {
            let err = trio_tests::events::grid_error_samples(&e, &r.blocks, SR, TICKS_PER_BEAT)?;
            (err > 1.0 + 1e-6).then(|| {
                let beat = trio_tests::events::event_beat(&e, &r.blocks, SR).unwrap_or(f64::NAN);
                format!(
                    "{} ch{} key {} at block {}+{} = beat {beat:.4}: {err:.1} samples off the grid",
                    if e.on { "on" } else { "off" },
                    e.channel + 1,
                    e.key,
                    e.block,
                    e.offset
                )
            })
        })
        .collect()
}

pub fn short(list: &[String]) -> String {
    let mut s = list[..list.len().min(15)].join("\n  ");
    if list.len() > 15 {
        s.push_str(&format!("\n  … and {} more", list.len() - 15));
    }
    s
}

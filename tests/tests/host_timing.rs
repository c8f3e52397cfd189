//! The plugin driven the way real hosts drive it: beat positions rounded to 1/1920 beat (Ardour),
//! loop wraps at several block sizes, far seeks, blocks several bars wide, renders faster than real
//! time without the offline flag (a freewheeling export), state saved and loaded from another
//! thread while rendering, every parameter's text, and subnormal audio passed through.

mod common;

use common::*;
use std::time::Duration;
use trio_tests::host::{HostOptions, InitialParam, InputSignal, Layout, RenderMode, TrioHost};
use trio_tests::timeline::Timeline;
use trio_tests::RunResult;

/// (absolute sample, channel, key, on): what a bounce records.
type Event = (u64, i16, i16, bool);

fn events(r: &RunResult) -> Vec<Event> {
    r.events.iter().map(|e| (e.time, e.channel, e.key, e.on)).collect()
}

fn instance(render: RenderMode, max_block: u32, params: Vec<InitialParam>) -> TrioHost {
    let bundle = trio_tests::require_trio_clap();
    TrioHost::new(
        &bundle,
        HostOptions { sample_rate: SR, max_block, render, initial_params: params, ..HostOptions::default() },
    )
    .unwrap_or_else(|e| panic!("hosting {}: {e}", bundle.display()))
}

fn endless() -> Vec<InitialParam> {
    vec![text("Mode", "Endless"), text("Seed", "31")]
}

#[track_caller]
fn assert_same(what: &str, a: &[Event], b: &[Event]) {
    if a != b {
        let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        panic!(
            "{what}: {} vs {} events, first difference at {first}: {:?} vs {:?}",
            a.len(),
            b.len(),
            a.get(first),
            b.get(first)
        );
    }
}

/// Host bars that have at least one note-on.
fn bars_with_notes(r: &RunResult) -> std::collections::BTreeSet<i64> {
    r.events
        .iter()
        .filter(|e| e.on)
        .filter_map(|e| trio_tests::events::event_beat(e, &r.blocks, SR))
        .map(|beat| (beat / 4.0 + 1e-9).floor() as i64)
        .collect()
}

fn slowest_process(r: &RunResult) -> Duration {
    Duration::from_nanos(r.process_ns.iter().copied().max().unwrap_or(0))
}

/// Renders `bars` from bar 0 offline at `block` frames, positions rounded as the timeline says.
fn render(params: Vec<InitialParam>, block: u32, bars: f64, round: bool) -> RunResult {
    let mut h = instance(RenderMode::Offline, block, params);
    let mut tl = Timeline::new(SR, block, BPM);
    tl.round_beats_to = round.then_some(1920.0);
    tl.play_beats_exactly(bars * 4.0);
    tl.stop_blocks(1);
    let r = run(&mut h, &tl.take());
    assert_clean(&format!("render at {block} frames"), &r, true);
    r
}

/// A host that rounds its beat position to 1/1920 beat changes nothing, and a bounce at 64 frames
/// equals one at 2048 sample for sample.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn rounded_positions_and_block_sizes_change_nothing() {
    let exact = events(&render(endless(), 256, 6.0, false));
    assert!(exact.iter().filter(|e| e.3).count() > 20, "too few notes to compare");
    assert_same("rounded to 1/1920 beat", &exact, &events(&render(endless(), 256, 6.0, true)));
    assert_same("64 vs 256 frames", &exact, &events(&render(endless(), 64, 6.0, true)));
    assert_same("2048 vs 256 frames", &exact, &events(&render(endless(), 2048, 6.0, true)));
}

/// The host loops bars 1–4 (rounding its positions): every pass plays the same notes, each exactly
/// once (no downbeat sent before the loop end and again after it), at every block size.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn loop_wraps_play_each_note_once_per_pass_at_any_block_size() {
    const PASS_SAMPLES: u64 = 16 * 22_500; // 16 beats at 128 BPM, 48 kHz
    let mut reference: Option<Vec<Event>> = None;
    for (block, passes) in [(4096, 3), (1024, 3), (1000, 3), (128, 3), (64, 2), (1, 1)] {
        let mut h = instance(RenderMode::Offline, block, Vec::new());
        let mut tl = Timeline::new(SR, block, BPM);
        tl.round_beats_to = Some(1920.0);
        tl.loop_range = Some((0.0, 16.0));
        tl.play_beats(16.0 * passes as f64);
        tl.stop_blocks(1);
        let r = run(&mut h, &tl.take());
        assert_clean(&format!("loop at {block} frames"), &r, true);
        let ons: Vec<Event> = events(&r).into_iter().filter(|e| e.3).collect();
        let pass_of = |pass: u64| -> Vec<Event> {
            ons.iter()
                .filter(|e| e.0 / PASS_SAMPLES == pass)
                .map(|&(t, c, k, on)| (t % PASS_SAMPLES, c, k, on))
                .collect()
        };
        let first = pass_of(0);
        assert!(first.len() > 10, "block {block}: only {} notes in the first pass", first.len());
        for pass in 1..passes {
            assert_same(&format!("block {block}: pass {pass} vs pass 0"), &first, &pass_of(pass));
        }
        let near_the_end = ons.iter().filter(|e| e.0 % PASS_SAMPLES > PASS_SAMPLES - 64).count();
        assert_eq!(near_the_end, 0, "block {block}: note-ons in the last 64 samples before the loop end");
        match &reference {
            None => reference = Some(first),
            Some(reference) => assert_same(&format!("block {block} vs 4096 frames"), reference, &first),
        }
    }
}

/// Endless: bar 70, then bar 6 (which shares a slot of the audio thread's 64-bar table with bar 70),
/// then bar 70 again. Every bar played has notes, offline and in real time, and no block waits long.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn far_seeks_and_back_lose_no_bar() {
    for (mode, pace) in [(RenderMode::Offline, None), (RenderMode::Realtime, Some(1.0))] {
        let bpm = 174.0;
        let mut h = instance(mode, 256, endless());
        let mut tl = Timeline::new(SR, 256, bpm);
        let mut slowest = Duration::ZERO;
        for (bar, bars) in [(70, 2), (6, 2), (70, 3)] {
            tl.seek(bar as f64 * 4.0);
            tl.play_bars(bars as f64);
            let r = h.run(&tl.take(), pace).unwrap_or_else(|e| panic!("{e}"));
            // In real time a jump may miss the first notes while the bar is sent again: judge whole bars.
            let found = bars_with_notes(&r);
            for b in bar..bar + bars {
                assert!(
                    found.contains(&b),
                    "{mode:?}: bar {b} has no notes after seeking to bar {bar} (bars with notes: {found:?})"
                );
            }
            slowest = slowest.max(slowest_process(&r));
        }
        assert!(slowest < Duration::from_secs(3), "{mode:?}: a process() call took {slowest:?}");
    }
}

/// Blocks several bars wide (Endless, offline): the generator looks as far ahead as the block
/// reaches, so nothing is missing and no block waits out a time limit; the notes equal a 256-frame
/// render's.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn blocks_several_bars_wide_miss_nothing() {
    let four_bars = 4 * 4 * 22_500;
    let wide = render(endless(), four_bars, 12.0, false);
    let slowest = slowest_process(&wide);
    assert!(slowest < Duration::from_secs(5), "a 4-bar block took {slowest:?}");
    let narrow = render(endless(), 256, 12.0, false);
    assert_same("4-bar blocks vs 256-frame blocks", &events(&narrow), &events(&wide));
    assert_eq!(bars_with_notes(&wide).len(), 12, "bars with notes: {:?}", bars_with_notes(&wide));
}

/// A render in real-time mode that runs as fast as it can (a freewheeling export that never says
/// "offline"): the plugin sees it runs faster than real time and waits for its bars, so the export
/// has notes in every bar and equals the offline bounce and a real-time play.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn faster_than_real_time_export_equals_offline_and_real_time_play() {
    let bpm = 174.0;
    let bars = 8.0;
    let play = |mode: RenderMode, pace: Option<f64>| -> RunResult {
        let mut h = instance(mode, 256, endless());
        let mut tl = Timeline::new(SR, 256, bpm);
        // The project sits open at bar 1 for a moment before the export starts, as in a DAW.
        tl.stop_blocks(tl.blocks_per_bars(1.0));
        h.run(&tl.take(), Some(1.0)).unwrap_or_else(|e| panic!("{e}"));
        tl.play_beats_exactly(bars * 4.0);
        tl.stop_blocks(1);
        let r = h.run(&tl.take(), pace).unwrap_or_else(|e| panic!("{e}"));
        assert_clean(&format!("{mode:?} {pace:?}"), &r, true);
        r
    };
    let offline = play(RenderMode::Offline, None);
    let fast = play(RenderMode::Realtime, None);
    assert!(fast.speed() > 2.0, "the fast render ran at only {:.1}× real time", fast.speed());
    let found = bars_with_notes(&fast);
    assert_eq!(found.len(), bars as usize, "fast export: bars with notes {found:?}");
    assert_same("fast real-time export vs offline", &events(&offline), &events(&fast));
    let live = play(RenderMode::Realtime, Some(1.0));
    assert_same("real-time play vs offline", &events(&offline), &events(&live));
}

/// The host saves and loads state from its main thread while the audio thread renders offline (as
/// clap-validator's fuzzer does: it loads what it just saved, and once a state saved earlier): no block
/// stalls, and the notes are those of an undisturbed render.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn state_calls_from_another_thread_neither_stall_nor_tear() {
    let params = || vec![text("Seed", "5"), text("Loop Length", "4")];
    let undisturbed = render(params(), 256, 12.0, false);
    let mut h = instance(RenderMode::Offline, 256, params());
    let mut tl = timeline();
    tl.play_beats_exactly(4.0);
    run(&mut h, &tl.take());
    let state = h.save_state().expect("save");
    tl.play_beats_exactly(44.0);
    tl.stop_blocks(1);
    let mut calls = 0;
    let r = h
        .run_with_main_thread(&tl.take(), None, &mut |main| {
            let saved = main.save_state().expect("save while rendering");
            assert!(!saved.is_empty());
            let load = if calls == 0 { &state } else { &saved };
            main.load_state(load).expect("load while rendering");
            calls += 1;
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(calls >= 3, "only {calls} state calls happened during the render");
    let slowest = slowest_process(&r);
    assert!(slowest < Duration::from_secs(2), "a process() call took {slowest:?} with state calls in parallel");
    // The first bar was rendered before; compare the rest.
    let first_bar_samples = 4 * 22_500;
    let rest = |r: &RunResult| -> Vec<Event> { events(r).into_iter().filter(|e| e.0 >= first_bar_samples).collect() };
    assert_same("with state calls vs undisturbed", &rest(&undisturbed), &rest(&r));
}

/// Every parameter's displayed text parses back to its value (clap-validator's param-conversions).
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn every_parameter_reads_its_own_text() {
    let mut h = offline_host();
    let params = h.params().to_vec();
    let mut checked = 0;
    for p in params.iter().filter(|p| !p.hidden) {
        let values: Vec<f64> = if p.stepped {
            (p.min.round() as i64..=p.max.round() as i64).map(|v| v as f64).collect()
        } else {
            (0..=50).map(|i| p.min + (p.max - p.min) * i as f64 / 50.0).collect()
        };
        for value in values {
            let text = h.value_to_text(&p.name, value).unwrap_or_else(|e| panic!("{e}"));
            let back =
                h.text_to_value(&p.name, &text).unwrap_or_else(|e| panic!("{}: {text:?} does not parse: {e}", p.name));
            let again = h.value_to_text(&p.name, back).unwrap();
            assert_eq!(again, text, "{}: {value} → {text:?} → {back} → {again:?}", p.name);
            if p.stepped {
                // Stepped values travel as floats (nice-plug normalizes in f32): the step is what counts.
                assert_eq!(back.round(), value, "{}: {text:?} parsed to {back}, not {value}", p.name);
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "only {checked} values checked");
}

/// Audio passes through the stereo layout unchanged, except that subnormals are flushed to zero.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn pass_through_flushes_subnormals() {
    let bundle = trio_tests::require_trio_clap();
    let mut h = TrioHost::new(
        &bundle,
        HostOptions {
            sample_rate: SR,
            max_block: BLOCK,
            layout: Layout::StereoPassThrough,
            input_signal: InputSignal::Subnormals,
            ..HostOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut tl = timeline();
    tl.play_bars(1.0);
    let r = run(&mut h, &tl.take());
    let mut flushed = 0;
    for (input, output) in r.audio_in.iter().zip(&r.audio_out) {
        for (i, o) in input.iter().zip(output) {
            assert!(!o.is_subnormal(), "a subnormal sample left the plugin");
            if i.is_subnormal() {
                assert_eq!(*o, 0.0);
                flushed += 1;
            } else {
                assert_eq!(i.to_bits(), o.to_bits(), "a normal sample changed on the way through");
            }
        }
    }
    assert!(flushed > 1000, "the input had only {flushed} subnormal samples");
}

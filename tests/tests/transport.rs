//! Transport handling: no transport, stop, seek, loop wrap, tempo change, reset, and parameters that
//! act mid-stream (part disable, register automation).

mod common;

use common::*;
use std::time::Instant;
use trio_tests::events::{released_at_block_start, sounding_at, sounding_before_block};
use trio_tests::RenderMode;

/// Asserts a discontinuity at `block`: everything sounding before it is released at offset 0.
/// Returns how many notes were sounding (so tests can make sure the case was exercised).
#[track_caller]
fn assert_released(what: &str, events: &[trio_tests::NoteEvent], block: u64) -> usize {
    let (problems, n) = released_at_block_start(events, block);
    assert!(problems.is_empty(), "{what} at block {block}: notes left sounding:\n  {}", short(&problems));
    n
}

/// Note-ons in blocks `from..to`.
fn count_ons(events: &[trio_tests::NoteEvent], from: usize, to: usize) -> usize {
    events.iter().filter(|e| e.on && (from as u64..to as u64).contains(&e.block)).count()
}

/// Plays until something is sounding at a block boundary (within `max_bars`) so that the
/// discontinuity that follows has notes to release. Returns false if nothing ever sounded.
fn play_until_sounding(
    h: &mut trio_tests::TrioHost,
    tl: &mut trio_tests::Timeline,
    all: &mut trio_tests::RunResult,
    max_bars: f64,
) -> bool {
    let start_beats = tl.beats;
    while tl.beats - start_beats < max_bars * 4.0 {
        tl.play_beats(0.5);
        all.extend(run(h, &tl.take()));
        let next = all.blocks.last().unwrap().index + 1;
        if !sounding_before_block(&all.events, next).is_empty() {
            return true;
        }
    }
    false
}

/// No `clap_event_transport` at all (clap-validator does this): silent, in realtime and offline,
/// and offline does not stall waiting for a timeline that never comes.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn no_transport_is_silent() {
    for mode in [RenderMode::Realtime, RenderMode::Offline] {
        let mut h = host(mode, Vec::new());
        let mut tl = timeline();
        let n = tl.blocks_per_bars(8.0);
        tl.blocks_without_transport(n);
        let started = Instant::now();
        let r = run(&mut h, &tl.take());
        assert!(
            r.events.is_empty(),
            "{mode:?}: {} note events without a transport, first: {:?}",
            r.events.len(),
            r.events.first()
        );
        assert!(r.process_errors.is_empty(), "{mode:?}: process() errors {:?}", r.process_errors);
        assert!(
            started.elapsed().as_secs_f64() < 30.0,
            "{mode:?}: 8 bars without a transport took {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Stop: everything released at offset 0 of the first stopped block, nothing while stopped, notes
/// come back when playing resumes.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn stop_releases_everything_then_resumes() {
    let mut h = offline_host();
    let mut all = trio_tests::RunResult::default();
    let mut tl = timeline();
    assert!(play_until_sounding(&mut h, &mut tl, &mut all, 8.0), "nothing ever sounded in 8 bars");
    let stopped = tl.stop_blocks(40);
    all.extend(run(&mut h, &tl.take()));
    let stop_block = (all.blocks.len() - stopped.len()) as u64;
    let released = assert_released("stop", &all.events, stop_block);
    assert!(released > 0);
    let during: Vec<_> = all.events.iter().filter(|e| e.block > stop_block && e.block < stop_block + 40).collect();
    assert!(during.is_empty(), "events while stopped: {during:?}");
    let sounding = sounding_before_block(&all.events, stop_block + 40);
    assert!(sounding.is_empty(), "still sounding while stopped: {sounding:?}");

    // Resume from where it stopped.
    let resume = all.blocks.len();
    tl.play_bars(4.0);
    tl.stop_blocks(1);
    all.extend(run(&mut h, &tl.take()));
    assert!(count_ons(&all.events, resume, all.blocks.len()) > 0, "no notes after playing resumed");
    assert_clean("stop/resume", &all, true);
}

/// Seek: the position jumps forward while playing; all released at offset 0, notes resume.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn seek_releases_everything() {
    let mut h = offline_host();
    let mut all = trio_tests::RunResult::default();
    let mut tl = timeline();
    assert!(play_until_sounding(&mut h, &mut tl, &mut all, 8.0), "nothing ever sounded in 8 bars");
    let seek_block = all.blocks.len() as u64;
    tl.seek(70.5); // bar 17, beat 3, between grid steps
    tl.play_bars(4.0);
    tl.stop_blocks(1);
    all.extend(run(&mut h, &tl.take()));
    assert!(assert_released("seek", &all.events, seek_block) > 0);
    assert!(count_ons(&all.events, seek_block as usize, all.blocks.len()) > 0, "no notes after the seek");
    let after_seek = all.events.iter().copied().filter(|e| e.block >= seek_block && e.on);
    let bad = off_grid(&all, after_seek);
    assert!(bad.is_empty(), "notes off the grid after the seek:\n  {}", short(&bad));
    assert_clean("seek", &all, true);

    // Backwards too.
    let mut all2 = trio_tests::RunResult::default();
    let mut h2 = offline_host();
    let mut tl2 = timeline();
    tl2.seek(40.0);
    assert!(play_until_sounding(&mut h2, &mut tl2, &mut all2, 8.0), "nothing sounded from bar 10");
    let back = all2.blocks.len() as u64;
    tl2.seek(6.25);
    tl2.play_bars(3.0);
    tl2.stop_blocks(1);
    all2.extend(run(&mut h2, &tl2.take()));
    assert!(assert_released("backward seek", &all2.events, back) > 0);
    assert!(count_ons(&all2.events, back as usize, all2.blocks.len()) > 0, "no notes after the backward seek");
    assert_clean("backward seek", &all2, true);
}

/// Loop wrap: the host loops bars 4–8; at each wrap the position jumps back while playing.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn loop_wrap_releases_everything() {
    let mut h = offline_host();
    let mut tl = timeline();
    tl.loop_range = Some((16.0, 32.0));
    tl.play_bars(4.0 + 4.0 * 3.0); // into the loop, then around it three times
    tl.stop_blocks(1);
    let r = run(&mut h, &tl.take());
    let wraps: Vec<u64> = r
        .blocks
        .windows(2)
        .filter(|w| match (w[0].transport, w[1].transport) {
            (Some(a), Some(b)) => b.playing && b.beats < a.beats,
            _ => false,
        })
        .map(|w| w[1].index)
        .collect();
    assert!(wraps.len() >= 2, "expected loop wraps, got {wraps:?}");
    let mut released = 0;
    for &w in &wraps {
        released += assert_released("loop wrap", &r.events, w);
        let next_bar = w as usize + tl.blocks_per_bars(2.0);
        assert!(count_ons(&r.events, w as usize, next_bar) > 0, "no notes within 2 bars after the wrap at block {w}");
    }
    assert!(released > 0, "no note was sounding at any wrap; the case was not exercised");
    assert_clean("loop", &r, true);
}

/// Tempo jump 128 → 174 with a continuous position: a discontinuity (released at offset 0), then
/// notes on the grid at the new tempo.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn tempo_change_releases_and_follows_new_tempo() {
    let mut h = offline_host();
    let mut all = trio_tests::RunResult::default();
    let mut tl = timeline();
    assert!(play_until_sounding(&mut h, &mut tl, &mut all, 8.0), "nothing ever sounded in 8 bars");
    let change = all.blocks.len() as u64;
    tl.set_tempo(174.0);
    tl.play_bars(6.0);
    tl.stop_blocks(1);
    all.extend(run(&mut h, &tl.take()));
    assert!(assert_released("tempo change", &all.events, change) > 0);
    assert!(count_ons(&all.events, change as usize, all.blocks.len()) > 0, "no notes after the tempo change");
    let bad = off_grid(&all, all.events.iter().copied().filter(|e| e.on));
    assert!(bad.is_empty(), "note-ons off the grid (tempo not followed):\n  {}", short(&bad));
    assert_clean("tempo change", &all, true);
}

/// reset() while notes sound: the next block is discontinuous and releases everything at offset 0.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn reset_releases_everything() {
    let mut h = offline_host();
    let mut all = trio_tests::RunResult::default();
    let mut tl = timeline();
    assert!(play_until_sounding(&mut h, &mut tl, &mut all, 8.0), "nothing ever sounded in 8 bars");
    let after_reset = all.blocks.len() as u64;
    tl.reset_before_next();
    tl.play_bars(2.0);
    tl.stop_blocks(1);
    all.extend(run(&mut h, &tl.take()));
    assert!(assert_released("reset", &all.events, after_reset) > 0);
    assert_clean("reset", &all, true);
}

/// `Arp On` off mid-block: the arp's notes are released no later than the change, no arp note
/// while off; back on, the arp plays again.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn part_disable_releases_part() {
    let mut h = offline_host();
    let parts = default_parts(&mut h);
    let arp_ch = parts[1].channel;
    let arp_on = h.param("Arp On").unwrap().id;
    let mut all = trio_tests::RunResult::default();
    let mut tl = timeline();
    // Play until an arp note sounds across a block boundary.
    let mut found = false;
    for _ in 0..64 {
        tl.play_beats(0.5);
        all.extend(run(&mut h, &tl.take()));
        let next = all.blocks.last().unwrap().index + 1;
        if sounding_before_block(&all.events, next).iter().any(|(c, _)| *c == arp_ch) {
            found = true;
            break;
        }
    }
    assert!(found, "the arp never sounded across a block boundary in 8 bars");
    let off_block = all.blocks.len() as u64;
    let offset = 100;
    tl.param(trio_tests::ParamChange { offset, param_id: arp_on, value: 0.0 });
    let off_range = tl.play_bars(4.0);
    let on_block = all.blocks.len() as u64 + off_range.len() as u64;
    tl.param(trio_tests::ParamChange { offset: 0, param_id: arp_on, value: 1.0 });
    tl.play_bars(4.0);
    tl.stop_blocks(1);
    all.extend(run(&mut h, &tl.take()));

    let change_time = all.blocks[off_block as usize].start_sample + offset as u64;
    let still: Vec<_> = sounding_at(&all.events, change_time).into_iter().filter(|(c, _)| *c == arp_ch).collect();
    assert!(still.is_empty(), "arp notes still sounding after Arp On = off: {still:?}");
    let arp_while_off: Vec<_> = all
        .events
        .iter()
        .filter(|e| e.on && e.channel == arp_ch && e.block >= off_block && e.block < on_block)
        .collect();
    assert!(arp_while_off.is_empty(), "arp note-ons while Arp On = off: {arp_while_off:?}");
    let others_while_off =
        all.events.iter().filter(|e| e.on && e.channel != arp_ch && e.block >= off_block && e.block < on_block).count();
    assert!(others_while_off > 0, "lead and bass went silent too when only the arp was switched off");
    let arp_after = all.events.iter().filter(|e| e.on && e.channel == arp_ch && e.block >= on_block).count();
    assert!(arp_after > 0, "the arp did not come back after Arp On = on");
    assert_clean("arp off/on", &all, true);
}

/// Register automation mid-stream: every later note-on of lead and bass lies in the new range.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn register_automation() {
    let mut h = offline_host();
    let parts = default_parts(&mut h);
    let lead_low = h.int_param("Lead Low", 0, 127).unwrap();
    let lead_high = h.int_param("Lead High", 0, 127).unwrap();
    let bass_low = h.int_param("Bass Low", 0, 127).unwrap();
    let bass_high = h.int_param("Bass High", 0, 127).unwrap();
    let mut tl = timeline();
    tl.play_bars(5.3);
    let change = tl.next_index() as u64;
    let (new_lead, new_bass) = ((67, 79), (36, 47));
    tl.param(lead_low.change(new_lead.0, 0));
    tl.param(lead_high.change(new_lead.1, 0));
    tl.param(bass_low.change(new_bass.0, 0));
    tl.param(bass_high.change(new_bass.1, 0));
    tl.play_bars(8.0);
    // A second change, inverted knobs and mid-block: the register is the ordered pair.
    let change2 = tl.next_index() as u64;
    tl.param(lead_low.change(84, 37));
    tl.param(lead_high.change(72, 37));
    tl.play_bars(4.0);
    tl.stop_blocks(1);
    let r = run(&mut h, &tl.take());
    assert_clean("register automation", &r, true);
    assert_in_registers(
        "before the change",
        &r.events.iter().copied().filter(|e| e.block < change).collect::<Vec<_>>(),
        &parts,
    );

    let mut bad = Vec::new();
    let change2_time = r.blocks[change2 as usize].start_sample + 37;
    for e in r.events.iter().filter(|e| e.on && e.block >= change) {
        let range = if e.channel == parts[0].channel {
            if e.time >= change2_time {
                (72, 84)
            } else {
                new_lead
            }
        } else if e.channel == parts[2].channel {
            new_bass
        } else {
            continue;
        };
        if (e.key as i32) < range.0 || (e.key as i32) > range.1 {
            bad.push(format!("ch{} key {} at block {} outside {range:?}", e.channel + 1, e.key, e.block));
        }
    }
    assert!(bad.is_empty(), "note-ons outside the automated register:\n  {}", short(&bad));
    assert!(ons(&r.events, parts[0].channel).iter().any(|e| e.block >= change), "no lead notes after the change");
    assert!(ons(&r.events, parts[2].channel).iter().any(|e| e.block >= change), "no bass notes after the change");
    assert_eq!(lead_low.plain(h.param_value("Lead Low").unwrap()), 84, "the host's value was applied");
}

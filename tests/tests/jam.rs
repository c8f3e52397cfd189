//! Jamming through the built plugin: chords played into it set the trio's harmony within a beat, a
//! played part replaces the model's, Capture keeps a progression, a typed progression is saved with
//! the project, and no played or generated note is ever left hanging.

mod common;

use common::*;
use trio_tests::events::event_beat;
use trio_tests::host::{HostOptions, InitialParam, RenderMode, TrioHost};
use trio_tests::render::{render, RenderOptions};
use trio_tests::timeline::Timeline;
use trio_tests::RunResult;

/// The tests here run one at a time: the live one measures response in real time, and the others
/// would take its cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The channel (0-based) the chords are played on; Input Channel 16 listens to it alone.
const INPUT_CHANNEL: u16 = 15;
const ARP: i16 = 1;
const BASS: i16 = 2;

/// A chord as played: its beat, its keys and its tones (pitch-class mask).
#[derive(Debug, Clone)]
struct Played {
    beats: f64,
    keys: Vec<u16>,
    tones: u16,
}

fn mask(pcs: &[u16]) -> u16 {
    pcs.iter().fold(0, |m, pc| m | 1 << (pc % 12))
}

/// Fm Db Ab Eb one per bar from bar 2, then two per bar in bars 6 and 7 (changes on beat 3).
fn progression() -> Vec<Played> {
    let fm = (vec![53, 56, 60], mask(&[5, 8, 0]));
    let db = (vec![49, 53, 56], mask(&[1, 5, 8]));
    let ab = (vec![44, 48, 51], mask(&[8, 0, 3]));
    let eb = (vec![51, 55, 58], mask(&[3, 7, 10]));
    let mut chords = Vec::new();
    for (bar, chord) in [&fm, &db, &ab, &eb].into_iter().enumerate() {
        chords.push(Played { beats: (2 + bar) as f64 * 4.0, keys: chord.0.clone(), tones: chord.1 });
    }
    for (i, chord) in [&fm, &db, &ab, &eb].into_iter().enumerate() {
        chords.push(Played { beats: 24.0 + i as f64 * 2.0, keys: chord.0.clone(), tones: chord.1 });
    }
    chords
}

/// Key presses and releases (a hair before the next chord) for the timeline.
fn notes_of(chords: &[Played], end_beats: f64) -> Vec<(f64, u16, u16, f64)> {
    let mut notes = Vec::new();
    for (i, c) in chords.iter().enumerate() {
        let release = chords.get(i + 1).map_or(end_beats, |n| n.beats) - 0.05;
        for &key in &c.keys {
            notes.push((c.beats, INPUT_CHANNEL, key, 0.8));
            notes.push((release, INPUT_CHANNEL, key, 0.0));
        }
    }
    notes
}

fn jam_host(block: u32, params: Vec<InitialParam>) -> TrioHost {
    let bundle = trio_tests::require_trio_clap();
    let mut initial = vec![text("Follow", "Chords"), text("Input Channel", "16"), text("Seed", "5")];
    initial.extend(params);
    let opts = HostOptions {
        sample_rate: SR,
        max_block: block,
        render: RenderMode::Offline,
        initial_params: initial,
        ..HostOptions::default()
    };
    TrioHost::new(&bundle, opts).unwrap_or_else(|e| panic!("hosting {}: {e}", bundle.display()))
}

/// Plays `bars` bars at `bpm` with `notes` played in, then stops.
fn play(host: &mut TrioHost, block: u32, bpm: f64, bars: f64, notes: &[(f64, u16, u16, f64)]) -> RunResult {
    let mut tl = Timeline::new(SR, block, bpm);
    tl.play_beats_exactly(bars * 4.0);
    assert_eq!(tl.place_notes(notes), notes.len(), "every played note lands in a block");
    tl.stop_blocks(2);
    run(host, &tl.take())
}

/// (beat, channel, key) of every note-on.
fn onsets(r: &RunResult) -> Vec<(f64, i16, i16)> {
    r.events.iter().filter(|e| e.on).filter_map(|e| Some((event_beat(e, &r.blocks, SR)?, e.channel, e.key))).collect()
}

/// Beats an event read back from its sample may sit before its beat: a note on a beat that falls
/// between samples starts on the sample before it (a sample is 6e-5 beats at 174 BPM).
const EPS: f64 = 1e-3;

/// For each change: the arp's and bass's notes starting in the two beats after it (before the next
/// change) and whether one starts within a beat. Returns (chord tones, notes, changes answered late).
fn follow_figures(r: &RunResult, chords: &[Played]) -> (usize, usize, Vec<String>) {
    let all = onsets(r);
    let (mut fitting, mut total, mut late) = (0, 0, Vec::new());
    for (i, c) in chords.iter().enumerate() {
        let until = chords.get(i + 1).map_or(c.beats + 2.0, |n| n.beats).min(c.beats + 2.0);
        let answer: Vec<&(f64, i16, i16)> = all
            .iter()
            .filter(|(beat, ch, _)| (*ch == ARP || *ch == BASS) && *beat >= c.beats - EPS && *beat < until - EPS)
            .collect();
        total += answer.len();
        fitting += answer.iter().filter(|(_, _, key)| c.tones & 1 << (key % 12) != 0).count();
        if answer.first().is_none_or(|(beat, _, _)| *beat >= c.beats + 1.0) {
            late.push(format!("change at beat {}: first arp/bass note at {:?}", c.beats, answer.first()));
        }
    }
    (fitting, total, late)
}

/// The arp and the bass follow a progression played on the beat and mid-bar, in Loop and Endless
/// mode, at 128 and 174 BPM: ≥ 90 % of their notes in the two beats after a change are tones of the
/// played chord, and one starts within a beat of every change.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn played_chords_are_followed_within_a_beat() {
    let _serial = one_at_a_time();
    let chords = progression();
    let notes = notes_of(&chords, 32.0);
    for mode in ["Loop", "Endless"] {
        for bpm in [128.0, 174.0] {
            let mut host = jam_host(BLOCK, vec![text("Mode", mode)]);
            let r = play(&mut host, BLOCK, bpm, 8.0, &notes);
            let what = format!("{mode} at {bpm} BPM");
            assert_clean(&what, &r, true);
            let (fitting, total, late) = follow_figures(&r, &chords);
            println!("{what}: {fitting} of {total} arp/bass notes after a change are chord tones");
            assert!(total >= chords.len(), "{what}: only {total} arp/bass notes after {} changes", chords.len());
            assert!(fitting as f64 >= 0.9 * total as f64, "{what}: {fitting} of {total} notes fit the played chord");
            assert!(late.is_empty(), "{what}: changes answered later than a beat:\n  {}", late.join("\n  "));
            // The played chords pass through on their own channel, every one released.
            let through = r.events.iter().filter(|e| e.channel == INPUT_CHANNEL as i16).count();
            assert_eq!(through, notes.len(), "{what}: the played notes do not all pass through");
        }
    }
}

/// Live, in real time at 174 BPM: after every chord change the first arp or bass note that fits the
/// new chord starts within a beat (345 ms) of the change.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_chord_change_is_heard_within_a_beat_live() {
    let _serial = one_at_a_time();
    let bpm = 174.0;
    let chords = progression();
    let notes = notes_of(&chords, 32.0);
    let bundle = trio_tests::require_trio_clap();
    let initial = vec![text("Follow", "Chords"), text("Input Channel", "16"), text("Mode", "Endless")];
    let opts = HostOptions {
        sample_rate: SR,
        max_block: BLOCK,
        render: RenderMode::Realtime,
        initial_params: initial,
        ..HostOptions::default()
    };
    let mut host = TrioHost::new(&bundle, opts).expect("host");
    let mut tl = Timeline::new(SR, BLOCK, bpm);
    tl.play_beats_exactly(32.0);
    tl.place_notes(&notes);
    tl.stop_blocks(2);
    let r = host.run(&tl.take(), Some(1.0)).expect("real-time run");
    assert_clean("live", &r, true);
    let all = onsets(&r);
    let mut latencies_ms = Vec::new();
    for (i, c) in chords.iter().enumerate() {
        let until = chords.get(i + 1).map_or(c.beats + 4.0, |n| n.beats);
        let first_fitting = all.iter().find(|(beat, ch, key)| {
            (*ch == ARP || *ch == BASS) && *beat >= c.beats - EPS && *beat < until && c.tones & 1 << (key % 12) != 0
        });
        let beats = first_fitting.map_or(f64::INFINITY, |f| f.0 - c.beats);
        latencies_ms.push(beats * 60_000.0 / bpm);
    }
    let mut sorted = latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "live at 174 BPM: chord change -> first fitting note median {:.0} ms, slowest {:.0} ms (a beat is 345 ms)",
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
    println!("  per change (ms): {:?}", latencies_ms.iter().map(|ms| ms.round()).collect::<Vec<_>>());
    let beat_ms = 60_000.0 / bpm;
    assert!(latencies_ms.iter().all(|&ms| ms < beat_ms), "changes heard later than a beat: {latencies_ms:?} ms");
}

/// An offline bounce with played chords is the same at any block size.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_jam_bounces_the_same_at_any_block_size() {
    let _serial = one_at_a_time();
    // The progression as written, then played late and broken: Ab's keys one by one off the grid, Eb
    // a little late.
    let mut chords = progression();
    chords[6].beats += 0.37;
    chords[7].beats += 0.11;
    let mut notes = notes_of(&chords, 32.0);
    for (i, n) in notes.iter_mut().enumerate().filter(|(_, n)| n.3 > 0.0 && (n.0 - 28.37).abs() < 1e-9) {
        n.0 += 0.13 * (i % 3) as f64;
    }
    notes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let events = |block: u32| {
        let mut host = jam_host(block, vec![text("Mode", "Endless")]);
        let r = play(&mut host, block, 128.0, 8.0, &notes);
        assert_clean(&format!("{block} frames"), &r, true);
        r.events.iter().map(|e| (e.time, e.channel, e.key, e.on)).collect::<Vec<_>>()
    };
    let small = events(64);
    assert_eq!(small, events(1024), "64-frame and 1024-frame bounces differ");
    assert_eq!(small, events(333), "64-frame and 333-frame bounces differ");
}

/// Part: Bass: the plugin writes no bass of its own, the played bass leaves on the bass channel, and
/// the arp plays chords on the played roots.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_played_bass_is_the_bass_and_the_arp_follows_its_roots() {
    let _serial = one_at_a_time();
    let roots: [(u16, u16); 4] = [(41, 5), (37, 1), (44, 8), (39, 3)];
    let mut notes = Vec::new();
    for bar in 0..8 {
        let (key, _) = roots[bar % 4];
        notes.push((bar as f64 * 4.0, INPUT_CHANNEL, key, 0.9));
        notes.push((bar as f64 * 4.0 + 3.5, INPUT_CHANNEL, key, 0.0));
    }
    let mut host = jam_host(BLOCK, vec![text("Follow", "Part: Bass"), text("Mode", "Endless")]);
    let r = play(&mut host, BLOCK, 128.0, 8.0, &notes);
    assert_clean("Part: Bass", &r, true);
    let bass: Vec<(f64, i16)> = onsets(&r).into_iter().filter(|o| o.1 == BASS).map(|o| (o.0, o.2)).collect();
    let played: Vec<(f64, i16)> = notes.iter().filter(|n| n.3 > 0.0).map(|n| (n.0, n.2 as i16)).collect();
    assert_eq!(bass.len(), played.len(), "the bass channel holds other notes than the played ones: {bass:?}");
    for ((beat, key), (played_beat, played_key)) in bass.iter().zip(&played) {
        assert!((beat - played_beat).abs() < 1e-3 && key == played_key, "bass {key} at {beat}");
    }
    assert!(r.events.iter().all(|e| e.channel != INPUT_CHANNEL as i16), "the played bass also left on its own channel");
    // The arp plays a triad on each played root (its third from the key).
    let (mut fitting, mut total) = (0, 0);
    for (beat, arp_key) in onsets(&r).into_iter().filter(|o| o.1 == ARP).map(|o| (o.0, o.2)) {
        let bar = (beat / 4.0 + EPS).floor() as usize;
        let root = roots[bar % 4].1;
        let triads = mask(&[root, root + 3, root + 4, root + 7]);
        total += 1;
        let fits = triads & 1 << (arp_key % 12) != 0;
        fitting += usize::from(fits);
        if !fits {
            println!("  arp {arp_key} at beat {beat:.3} over root {root}");
        }
    }
    println!("Part: Bass: {fitting} of {total} arp notes are tones of a triad on the played root");
    assert!(total >= 8 && fitting as f64 >= 0.9 * total as f64, "{fitting} of {total} arp notes on the roots");
}

/// Capture in Loop mode: the chords of one pass become the loop's progression, and with hands off the
/// trio keeps playing over them; the captured progression is saved with the project.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_captured_progression_keeps_playing_hands_off() {
    let _serial = one_at_a_time();
    let mut host = jam_host(BLOCK, vec![text("Mode", "Loop"), text("Capture", "On")]);
    // The four chords, one a bar, played twice (bars 0–7): whichever pass Capture records (the loop's
    // next first bar after it was armed), it holds them bar for bar.
    let four: Vec<Played> = progression().into_iter().take(4).collect();
    let chords: Vec<Played> = (0..2)
        .flat_map(|pass| four.iter().map(move |c| Played { beats: c.beats - 8.0 + pass as f64 * 16.0, ..c.clone() }))
        .collect();
    let mut tl = Timeline::new(SR, BLOCK, BPM);
    tl.play_beats_exactly(48.0);
    let played = notes_of(&chords, 32.0);
    tl.place_notes(&played);
    tl.stop_blocks(2);
    let r = run(&mut host, &tl.take());
    assert_clean("capture", &r, true);
    let state = host.save_state().expect("state");
    let json = String::from_utf8_lossy(&state);
    assert!(json.contains("| Fm | C# | G# | D# |"), "the captured progression is not in the project: {json}");
    // Bars 8–11: hands off, the loop keeps the four chords bar for bar (progression() starts at bar 2).
    let hands_off: Vec<Played> = four.iter().map(|c| Played { beats: c.beats + 24.0, ..c.clone() }).collect();
    let (fitting, total, late) = follow_figures(&r, &hands_off);
    println!("captured, hands off: {fitting} of {total} arp/bass notes fit");
    assert!(total >= 4 && fitting as f64 >= 0.9 * total as f64, "{fitting} of {total} notes fit hands off");
    assert!(late.is_empty(), "{late:?}");
}

/// `trio-render --input` plays a chord file into the plugin: the trio follows it, and the file's notes
/// pass through.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn trio_render_plays_a_midi_file_into_the_plugin() {
    let _serial = one_at_a_time();
    let dir = trio_tests::TempDir::new("jam-input").expect("temp dir");
    let chords = progression();
    let file = dir.path().join("chords.mid");
    trio_tests::render::write_input_midi(&file, &notes_of(&chords, 32.0)).expect("chord file");
    let report = render(&RenderOptions {
        bars: 8.0,
        params: vec![("Follow".into(), "Chords".into()), ("Input Channel".into(), "16".into())],
        input: Some(file),
        ..RenderOptions::default()
    })
    .expect("render");
    assert!(report.failures.is_empty(), "{}", report.summary());
    let (fitting, total, _) = follow_figures(&report.run, &chords);
    assert!(total >= 8 && fitting as f64 >= 0.9 * total as f64, "{fitting} of {total} notes fit the file's chords");
    let through = report.run.events.iter().filter(|e| e.channel == INPUT_CHANNEL as i16).count();
    assert_eq!(through, 2 * 3 * chords.len(), "the file's notes do not all pass through");
}

/// A typed progression forces the trio's chords, is saved with the project, and a project reloaded
/// with it plays the same notes.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_typed_progression_is_followed_saved_and_reloaded() {
    let _serial = one_at_a_time();
    let options = |out: Option<std::path::PathBuf>| RenderOptions {
        bars: 8.0,
        seed: Some(3),
        progression: Some("| Am | F | C G | Em |".into()),
        params: vec![("Mode".into(), "Loop".into())],
        out,
        ..RenderOptions::default()
    };
    let dir = trio_tests::TempDir::new("jam-typed").expect("temp dir");
    let report = render(&options(Some(dir.path().to_path_buf()))).expect("render");
    assert!(report.failures.is_empty(), "{}", report.summary());
    let tones = |root: u16, minor: bool| mask(&[root, root + if minor { 3 } else { 4 }, root + 7]);
    let chart = [
        (0.0, tones(9, true)),
        (4.0, tones(5, false)),
        (8.0, tones(0, false)),
        (10.0, tones(7, false)),
        (12.0, tones(4, true)),
    ];
    let (mut fitting, mut total) = (0, 0);
    for (beat, channel, key) in onsets(&report.run) {
        if channel != ARP && channel != BASS {
            continue;
        }
        let in_loop = beat % 16.0;
        let (_, chord) = chart.iter().rev().find(|(start, _)| *start <= in_loop + EPS).expect("chart from 0");
        total += 1;
        fitting += usize::from(chord & 1 << (key % 12) != 0);
    }
    println!("typed progression: {fitting} of {total} arp/bass notes are tones of the chart's chord");
    assert!(fitting as f64 >= 0.9 * total as f64 && total > 16, "{fitting} of {total}");

    // Saved with the project; a new instance given that state plays the same notes.
    let mut first = jam_host(BLOCK, vec![text("Follow", "Off"), text("Mode", "Loop"), text("Seed", "3")]);
    first.set_persisted_field("progression", "\"| Am | F | C G | Em |\"").expect("progression set");
    let a = play(&mut first, BLOCK, BPM, 4.0, &[]);
    let state = first.save_state().expect("state");
    let mut second = reopened(&state);
    let b = play(&mut second, BLOCK, BPM, 4.0, &[]);
    let notes = |r: &RunResult| r.events.iter().map(|e| (e.time, e.channel, e.key, e.on)).collect::<Vec<_>>();
    assert_eq!(notes(&a), notes(&b), "the reloaded project plays other notes");
}

/// No note hangs: keys held while the transport stops, Follow switched from Part: Bass to Off while a
/// bass key is held (its release still reaches the bass channel), a 20-note cluster, note-offs without
/// note-ons, and notes played while stopped.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn odd_input_never_leaves_a_note_hanging() {
    let _serial = one_at_a_time();
    let mut host = jam_host(BLOCK, vec![text("Follow", "Part: Bass"), text("Mode", "Endless")]);
    let follow = host.param("Follow").expect("Follow").id;
    let off = host.enum_value("Follow", "Off").expect("Off");
    let mut tl = Timeline::new(SR, BLOCK, BPM);
    tl.play_beats_exactly(8.0);
    let mut notes = vec![(1.0, INPUT_CHANNEL, 36, 0.9), (2.0, INPUT_CHANNEL, 99, 0.0), (3.0, INPUT_CHANNEL, 40, 0.0)];
    notes.extend((40..60).map(|k| (4.5, INPUT_CHANNEL, k, 0.7)));

    tl.place_notes(&notes);
    // Follow off mid-bar with the bass key (36) held.
    tl.param(trio_tests::timeline::ParamChange { offset: 0, param_id: follow, value: off });
    tl.play_beats_exactly(2.0);
    // Two keys (Follow now Off: they pass through) that only a wildcard note-off ("all notes of
    // channel 16") will end.
    assert_eq!(tl.place_notes(&[(9.0, INPUT_CHANNEL, 70, 0.6), (9.0, INPUT_CHANNEL, 71, 0.6)]), 2);
    // The transport stops with keys held; they are released (and more played) while stopped.
    tl.stop_blocks(4);
    let first = run(&mut host, &tl.take());
    let mut released = Timeline::new(SR, BLOCK, BPM);
    released.seek(10.0);
    released.stop_blocks(2);
    let mut blocks = released.take();
    let key = |offset, key, on| trio_tests::timeline::PlayedNote {
        offset,
        channel: INPUT_CHANNEL,
        key,
        velocity: if on { 0.5 } else { 0.0 },
        on,
    };
    blocks[0].notes.push(key(3, 36, false));
    blocks[0].notes.extend((40..60).map(|k| key(5, k, false)));
    blocks[1].notes.extend([key(0, 60, true), key(9, 60, false), key(20, u16::MAX, false)]);
    let second = run(&mut host, &blocks);
    // The bass key held when Follow went off is released on the bass channel right then (the model's
    // bass takes the channel back); the player's own release later stays in.
    let switch_block =
        first.blocks.iter().find(|b| b.transport.is_some_and(|t| t.beats >= 8.0 - 1e-6)).expect("beat 8").index;
    assert!(
        first.events.iter().any(|e| e.channel == BASS && e.key == 36 && !e.on && e.block == switch_block),
        "the held bass key was not released on the bass channel when Follow went off (block {switch_block}): {:?}",
        first.events.iter().filter(|e| e.key == 36).collect::<Vec<_>>()
    );
    assert!(second.events.iter().all(|e| e.key != 36), "a second release of the bass key left the plugin");
    assert!(
        second.events.iter().any(|e| e.key == 70 && !e.on) && second.events.iter().any(|e| e.key == 71 && !e.on),
        "the wildcard note-off did not end the held keys"
    );
    let mut all = first;
    all.extend(second);
    let a = assert_clean("odd input", &all, true);
    assert!(a.hanging.is_empty(), "{:?}", a.hanging);
    // The note-off without a note-on (key 99) is not passed on.
    assert!(all.events.iter().all(|e| e.key != 99), "an unmatched note-off left the plugin");
}

//! Long renders, MIDI files, determinism, the part-output selector and realtime mode.

mod common;

use common::*;
use trio_tests::events::check;
use trio_tests::render::{read_midi, render, RenderOptions};
use trio_tests::{RenderMode, TempDir};

/// `trio-render --at`: Regenerate automated at bar 4 leaves bars 0–3 as they were and makes bars 4–7
/// anew (the parameter as a host's automation lane sends it).
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn automation_at_a_bar_regenerates_from_there() {
    let opts = |automation: Vec<(f64, String, String)>| RenderOptions {
        plugin: trio_tests::require_trio_clap(),
        bars: 8.0,
        params: vec![("Mode".into(), "Endless".into()), ("Seed".into(), "77".into())],
        automation,
        ..RenderOptions::default()
    };
    let plain = render(&opts(Vec::new())).unwrap_or_else(|e| panic!("render: {e}"));
    let press =
        vec![(4.0, "Regenerate".to_string(), "On".to_string()), (4.25, "regenerate".to_string(), "Off".to_string())];
    let pressed = render(&opts(press)).unwrap_or_else(|e| panic!("render with --at: {e}"));
    assert!(pressed.failures.is_empty(), "{}", pressed.summary());
    let bar_samples = 48_000.0 * 60.0 / 128.0 * 4.0;
    let ons = |r: &trio_tests::render::RenderReport, bars: std::ops::Range<f64>| -> Vec<(u64, i16, i16)> {
        let (from, to) = (bars.start * bar_samples, bars.end * bar_samples);
        r.run
            .events
            .iter()
            .filter(|e| e.on && (from..to).contains(&(e.time as f64)))
            .map(|e| (e.time, e.channel, e.key))
            .collect()
    };
    assert_eq!(ons(&pressed, 0.0..4.0), ons(&plain, 0.0..4.0), "bars before the automation changed");
    assert_ne!(ons(&pressed, 4.0..8.0), ons(&plain, 4.0..8.0), "Regenerate at bar 4 changed nothing");
    let late = render(&opts(vec![(9.0, "Seed".into(), "3".into())]));
    assert!(late.is_err_and(|e| e.to_string().contains("past the end")), "automation past the render is not refused");
}

/// 32 bars at 128 BPM: three parts on channels 1–3, every note inside its register, balanced and
/// sorted, on the beat grid, and the MIDI files trio-render writes read back with the same notes.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn long_render_three_parts_midi_files() {
    let dir = TempDir::new("trio-long").unwrap();
    let opts = RenderOptions {
        plugin: trio_tests::require_trio_clap(),
        bars: 32.0,
        bpm: 128.0,
        block: 256,
        rate: 48_000.0,
        mode: RenderMode::Offline,
        out: Some(dir.path().to_path_buf()),
        ..RenderOptions::default()
    };
    let report = render(&opts).unwrap_or_else(|e| panic!("render failed: {e}"));
    println!("{}", report.summary());
    assert!(report.failures.is_empty(), "render invariants failed:\n{}", report.summary());

    // The defaults from the params: lead/arp/bass on channels 1/2/3, all on.
    let names: Vec<&str> = report.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["lead", "arp", "bass"]);
    for (i, p) in report.parts.iter().enumerate() {
        assert_eq!(p.channel, i as i16, "{} default channel", p.name);
        assert!(p.enabled, "{} is on by default", p.name);
        let n = report.analysis.notes_on(p.channel).len();
        assert!(n >= 8, "{} played only {n} notes in 32 bars", p.name);
    }
    assert_eq!(
        report.analysis.channels().into_iter().collect::<Vec<_>>(),
        vec![0, 1, 2],
        "notes on exactly three channels"
    );
    // Lead and bass are single lines: on their channels a note ends no later than the next begins.
    for p in report.parts.iter().filter(|p| p.name != "arp") {
        let notes = report.analysis.notes_on(p.channel);
        let overlaps = notes.windows(2).filter(|w| w[0].end.is_none_or(|end| end > w[1].start)).count();
        assert_eq!(overlaps, 0, "{}: {overlaps} notes still sounding when the next began", p.name);
    }
    assert_in_registers("32-bar render", &report.run.events, &report.parts);

    // Timing: every note starts on the 1/12-beat grid (16ths and triplets) at the host's tempo.
    let stop_block = report.run.blocks.last().unwrap().index;
    let bad = off_grid(&report.run, report.run.events.iter().copied().filter(|e| e.on || e.block != stop_block));
    assert!(bad.is_empty(), "{} note events off the beat grid:\n  {}", bad.len(), short(&bad));

    // The MIDI files.
    let (format, tracks) = read_midi(&dir.path().join("trio.mid")).unwrap();
    assert_eq!(format, midly::Format::Parallel, "trio.mid is format 1");
    let track_names: Vec<&str> = tracks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&track_names[1..], ["lead", "arp", "bass"], "trio.mid tracks: {track_names:?}");
    assert!(tracks[0].1.is_empty(), "the tempo track holds no notes");
    for (i, p) in report.parts.iter().enumerate() {
        let notes = &tracks[i + 1].1;
        let expected = report.analysis.notes_on(p.channel);
        assert_eq!(notes.len(), expected.len(), "trio.mid track {} note count", p.name);
        assert!(notes.iter().all(|n| n.0 as i16 == p.channel), "trio.mid track {} channels", p.name);
        let keys: Vec<u8> = notes.iter().map(|n| n.1).collect();
        let expected_keys: Vec<u8> = expected.iter().map(|n| n.key as u8).collect();
        let mut a = keys.clone();
        let mut b = expected_keys.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b, "trio.mid track {} pitches", p.name);

        let (format, single) = read_midi(&dir.path().join(format!("{}.mid", p.name))).unwrap();
        assert_eq!(format, midly::Format::SingleTrack);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].0, p.name);
        assert_eq!(&single[0].1, notes, "{}.mid equals its track in trio.mid", p.name);
    }
}

/// The trio-render binary as `cargo xtask demo` calls it (shorter), exit code 0 and the four files.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn trio_render_cli() {
    let bundle = trio_tests::require_trio_clap();
    let dir = TempDir::new("trio-cli").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trio-render"))
        .args(["--plugin", bundle.to_str().unwrap(), "--bars", "4", "--bpm", "128", "--out"])
        .arg(dir.path())
        .output()
        .expect("run trio-render");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "trio-render failed ({}):\n{stdout}\n{stderr}", out.status);
    for part in ["lead", "arp", "bass"] {
        assert!(stdout.contains(part), "summary names {part}:\n{stdout}");
        read_midi(&dir.path().join(format!("{part}.mid"))).unwrap();
    }
    assert!(stdout.contains("real time"), "summary reports the render speed:\n{stdout}");
    read_midi(&dir.path().join("trio.mid")).unwrap();

    // Usage errors exit with 2.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_trio-render")).arg("--bogus").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

fn render_signature(seed: &str, bars: f64) -> (Vec<trio_tests::events::Signature>, usize) {
    let mut h = host(RenderMode::Offline, vec![text("Seed", seed)]);
    let mut tl = timeline();
    tl.play_bars(bars);
    tl.stop_blocks(1);
    let r = run(&mut h, &tl.take());
    let a = assert_clean(&format!("seed {seed}"), &r, true);
    (r.events.iter().map(|e| e.signature()).collect(), a.notes.len())
}

/// Offline, two fresh instances with the same seed and parameters give identical event lists; a
/// different seed gives different notes.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn deterministic_offline_render() {
    let (a, notes) = render_signature("77", 8.0);
    assert!(notes > 0, "no notes with seed 77");
    let (b, _) = render_signature("77", 8.0);
    if a != b {
        let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        panic!(
            "same seed, different output: {} vs {} events, first difference at event {first}: {:?} vs {:?}",
            a.len(),
            b.len(),
            a.get(first),
            b.get(first)
        );
    }
    let (c, _) = render_signature("78", 8.0);
    assert_ne!(a, c, "seeds 77 and 78 rendered identical notes");
}

/// `Part Output` = Bass Only: only the bass, all on channel 1, and the same bass line the trio has
/// (one instance per part must give stems that fit together).
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn part_output_bass_only() {
    let seed = "31";
    let mut all = host(RenderMode::Offline, vec![text("Seed", seed)]);
    let parts = default_parts(&mut all);
    let mut tl = timeline();
    tl.play_bars(8.0);
    tl.stop_blocks(1);
    let blocks = tl.take();
    let r_all = run(&mut all, &blocks);
    drop(all);
    assert_clean("all parts", &r_all, true);

    let mut only = host(RenderMode::Offline, vec![text("Seed", seed)]);
    let bass_only = only.enum_value("Part Output", "Bass Only").unwrap();
    drop(only);
    let mut only = host(
        RenderMode::Offline,
        vec![text("Seed", seed), trio_tests::InitialParam::Clap("Part Output".into(), bass_only)],
    );
    assert_eq!(only.param_value("Part Output").unwrap(), bass_only);
    let r_only = run(&mut only, &blocks);
    assert_clean("bass only", &r_only, true);

    let channels: std::collections::BTreeSet<i16> = r_only.events.iter().map(|e| e.channel).collect();
    assert_eq!(channels.into_iter().collect::<Vec<_>>(), vec![0], "Bass Only sends on channel 1 only");
    let (lo, hi) = parts[2].register();
    for e in r_only.events.iter().filter(|e| e.on) {
        assert!((lo..=hi).contains(&(e.key as i32)), "Bass Only: note {} outside the bass register {lo}–{hi}", e.key);
    }
    let bass_in_trio: Vec<_> = r_all
        .events
        .iter()
        .filter(|e| e.channel == parts[2].channel)
        .map(|e| (e.run_block, e.offset, e.key, e.velocity.to_bits(), e.on))
        .collect();
    let bass_alone: Vec<_> =
        r_only.events.iter().map(|e| (e.run_block, e.offset, e.key, e.velocity.to_bits(), e.on)).collect();
    assert!(!bass_alone.is_empty(), "Bass Only rendered no notes");
    assert_eq!(
        bass_alone,
        bass_in_trio,
        "Bass Only must play the trio's bass line ({} vs {} events)",
        bass_alone.len(),
        bass_in_trio.len()
    );
}

/// Realtime mode (no waiting for the generator), paced at 8x real time: the generator keeps up
/// after its start-up and the output is clean.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn realtime_paced_render() {
    let mut h = host(RenderMode::Realtime, Vec::new());
    let parts = default_parts(&mut h);
    let mut tl = timeline();
    let first_half = tl.play_bars(8.0);
    let second_half = tl.play_bars(8.0);
    tl.stop_blocks(1);
    let r = h.run(&tl.take(), Some(8.0)).unwrap();
    println!("realtime: {} events, {:.1}x real time", r.events.len(), r.speed());
    assert_clean("realtime", &r, true);
    assert_in_registers("realtime", &r.events, &parts);
    let late = r
        .events
        .iter()
        .filter(|e| e.on && (second_half.start as u64..second_half.end as u64).contains(&e.block))
        .count();
    let early =
        r.events.iter().filter(|e| e.on && (first_half.start as u64..first_half.end as u64).contains(&e.block)).count();
    println!("note-ons: bars 0-8: {early}, bars 8-16: {late}");
    assert!(late > 0, "realtime mode at 8x real time: no notes in bars 8-16 (generator never caught up)");
    let _ = check(&r.events, &r.blocks);
}

/// `Key Lock`: 1–12 = C..B major, 13–24 = C..B minor (natural); every note-on of every part is in
/// the scale.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn key_lock_forces_the_scale() {
    // (Key Lock value, tonic, minor)
    for (value, tonic, minor) in [(3, 2, false), (17, 4, true)] {
        let mut h = host(RenderMode::Offline, vec![text("Seed", "5"), text("Key Lock", &value.to_string())]);
        assert_eq!(h.int_param("Key Lock", 0, 24).unwrap().plain(h.param_value("Key Lock").unwrap()), value);
        let steps: [i16; 7] = if minor { [0, 2, 3, 5, 7, 8, 10] } else { [0, 2, 4, 5, 7, 9, 11] };
        let scale: Vec<i16> = steps.iter().map(|s| (tonic + s) % 12).collect();
        let mut tl = timeline();
        tl.play_bars(8.0);
        tl.stop_blocks(1);
        let r = run(&mut h, &tl.take());
        let a = assert_clean(&format!("key lock {value}"), &r, true);
        assert!(!a.notes.is_empty(), "key lock {value}: no notes");
        let outside: Vec<_> =
            a.notes.iter().filter(|n| !scale.contains(&(n.key % 12))).map(|n| (n.channel + 1, n.key)).collect();
        assert!(
            outside.is_empty(),
            "key lock {value} (scale {scale:?}): notes outside the scale (channel, key): {outside:?}"
        );
    }
}

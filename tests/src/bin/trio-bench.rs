//! Plugin-side figures through the real .clap in the headless host: instantiate time, process()
//! cost per block with three parts streaming, offline bounce speed and resident memory.
//! `cargo xtask bench` runs it; or `trio-bench --plugin PATH [--json OUT]`.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use trio_tests::{HostOptions, RenderMode, Timeline, TrioHost};

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let plugin = PathBuf::from(arg("--plugin").unwrap_or_else(|| trio_tests::trio_clap_path().display().to_string()));
    // --quick (CI): one bar per block size and an 8-bar bounce; the same figures, less settled.
    let quick = args.iter().any(|a| a == "--quick");
    let (measure_bars, bounce_bars) = if quick { (1.0, 8.0) } else { (4.0, 64.0) };
    let bpm = 128.0;
    let rate = 48_000.0;
    let mut report = serde_json::Map::new();

    // Instantiate: load the bundle, create and initialise the plugin (what a host scan does).
    let rss_before = resident_mb();
    let mut instantiate = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let host = TrioHost::new_inactive(&plugin, HostOptions::default()).expect("plugin loads");
        instantiate.push(started.elapsed().as_secs_f64() * 1e3);
        drop(host);
    }
    let first_instantiate = instantiate[0];
    let instantiate_ms = percentile(&mut instantiate, 0.5);
    println!(
        "instantiate: {instantiate_ms:.1} ms median ({first_instantiate:.1} ms the first time, loading the library)"
    );
    report.insert("instantiate_ms".into(), instantiate_ms.into());
    report.insert("instantiate_first_ms".into(), first_instantiate.into());

    // process() cost with three parts streaming, real-time mode at real-time pace after a pre-roll.
    for block in [64u32, 256, 512, 1024] {
        let mut host = TrioHost::new(
            &plugin,
            HostOptions { sample_rate: rate, max_block: block, render: RenderMode::Realtime, ..HostOptions::default() },
        )
        .unwrap();
        let mut timeline = Timeline::new(rate, block, bpm);
        timeline.play_bars(1.0);
        host.run(&timeline.take(), Some(1.0)).unwrap();
        timeline.play_bars(measure_bars);
        let run = host.run(&timeline.take(), Some(1.0)).unwrap();
        let notes = run.events.iter().filter(|e| e.on).count();
        let mut micros: Vec<f64> = run.process_ns.iter().map(|&ns| ns as f64 / 1e3).collect();
        let budget_us = block as f64 / rate * 1e6;
        let (median, p99, max) =
            (percentile(&mut micros, 0.5), percentile(&mut micros, 0.99), percentile(&mut micros, 1.0));
        println!(
            "process(), {block:4}-frame blocks: median {median:.1} µs ({:.3} % of the block), p99 {p99:.1} µs ({:.3} %), max {max:.1} µs; {notes} note-ons over {} blocks",
            100.0 * median / budget_us,
            100.0 * p99 / budget_us,
            micros.len()
        );
        report.insert(format!("process_{block}_median_us"), median.into());
        report.insert(format!("process_{block}_p99_us"), p99.into());
        report.insert(format!("process_{block}_median_share"), (median / budget_us).into());
        report.insert(format!("process_{block}_p99_share"), (p99 / budget_us).into());
        report.insert(format!("process_{block}_note_ons"), notes.into());
    }

    // Offline bounce of 64 bars in Endless mode (every bar newly generated).
    let mut host =
        TrioHost::new(&plugin, HostOptions { render: RenderMode::Offline, ..HostOptions::default() }).unwrap();
    let endless = host.enum_value("Mode", "Endless").unwrap();
    let mode_id = host.param("Mode").unwrap().id;
    let mut timeline = Timeline::new(rate, 256, bpm);
    timeline.param(trio_tests::ParamChange { param_id: mode_id, value: endless, offset: 0 });
    timeline.play_bars(bounce_bars);
    let run = host.run(&timeline.take(), None).unwrap();
    let notes = run.events.iter().filter(|e| e.on).count();
    println!("offline bounce, {bounce_bars} bars Endless at 128 BPM: {:.1}x real time ({notes} note-ons)", run.speed());
    report.insert("offline_bounce_bars".into(), bounce_bars.into());
    report.insert("offline_bounce_x_realtime".into(), run.speed().into());
    drop(host);

    // Resident memory: one, then four active instances with their models loaded.
    let mut hosts = Vec::new();
    let mut resident = Vec::new();
    for _ in 0..4 {
        let mut host = TrioHost::new(&plugin, HostOptions::default()).unwrap();
        let mut timeline = Timeline::new(rate, 256, bpm);
        timeline.play_bars(1.0);
        host.run(&timeline.take(), None).unwrap();
        hosts.push(host);
        std::thread::sleep(Duration::from_millis(200));
        resident.push(resident_mb() - rss_before);
    }
    println!(
        "resident memory above the host: {:.0} MB with one instance, {:.0} MB with four",
        resident[0], resident[3]
    );
    report.insert("resident_mb_one".into(), resident[0].into());
    report.insert("resident_mb_four".into(), resident[3].into());

    if let Some(path) = arg("--json") {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
}

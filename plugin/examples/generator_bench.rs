//! Generator figures on this machine: model load, generation speed (multiple of real time at
//! 128 BPM), step latency, and regenerate → first new bar. Run through `cargo xtask bench`, or:
//!
//! `cargo run --release -p neural_trio --example generator_bench -- [--bars 32] [--runs 15] [--json out.json]
//!  [--provider cpu|cuda] [--model PATH] [--library PATH] [--style pop|dance]` (`--provider cuda` with the `--gpu` bundle's
//! library, `target/onnxruntime-gpu/libonnxruntime.so.1.31.1`, measures the CUDA provider).

use neural_trio::generator::composer::{generate_bar, generate_phrases, make_header, BarPlan, BarRequest, PhrasePlan};
use neural_trio::generator::group::{self, Member};
use neural_trio::generator::model::TokenModel;
use neural_trio::generator::onnx::{OnnxModel, Provider};
use neural_trio::generator::sampler::{Constraints, Rng};
use neural_trio::link::{AudioEnd, Command};
use neural_trio::music::{Part, TICKS_PER_BEAT};
use neural_trio::params::TrioParams;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The next publication of bar `index` in `epoch`, within 20 s.
/// Plays the audio thread until bar `index` of epoch `epoch` (or a later one: the generator starts
/// a new epoch when it takes the instance in) arrives.
fn next_bar(link: &AudioEnd, index: i64, epoch: u32) -> Option<neural_trio::link::BarNotes> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        // A block processed: the generator keeps serving an instance that plays.
        link.count_block();
        while let Some(bar) = link.next_bar() {
            if bar.index == index && bar.epoch.wrapping_sub(epoch) as i32 >= 0 {
                return Some(bar);
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    None
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let bars: i64 = arg("--bars").and_then(|v| v.parse().ok()).unwrap_or(32);
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(15);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let library = arg("--library")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/onnxruntime").join(neural_trio::generator::resources::ORT_LIBRARY));
    let model_path = arg("--model").map(PathBuf::from).unwrap_or_else(|| root.join("models/trio-base.onnx"));
    let provider = match arg("--provider").as_deref() {
        Some("cuda") => Provider::Cuda,
        _ => Provider::Cpu,
    };
    // Dance bars are denser (16th arps): more tokens per bar than Pop.
    let style = match arg("--style").as_deref() {
        Some("dance") => neural_trio::music::controls::Style::Dance,
        _ => neural_trio::music::controls::Style::Pop,
    };
    println!("provider: {}, style: {}", provider.name(), style.name());
    let tempo_bpm = 128.0;
    let bar_seconds = 4.0 * 60.0 / tempo_bpm;
    let mut report = serde_json::Map::new();

    // Model load: the first includes loading ONNX Runtime itself.
    let started = Instant::now();
    let first = OnnxModel::load(&library, &model_path, 1, provider).expect("model loads");
    let first_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(first);
    let mut loads = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let m = OnnxModel::load(&library, &model_path, 1, provider).unwrap();
        loads.push(started.elapsed().as_secs_f64() * 1e3);
        drop(m);
    }
    let load_ms = percentile(&mut loads, 0.5);
    println!("model load: {first_ms:.0} ms first in process (ONNX Runtime included), {load_ms:.0} ms median after");
    report.insert("model_load_first_ms".into(), first_ms.into());
    report.insert("model_load_ms".into(), load_ms.into());

    for threads in [1usize, 2] {
        let mut model = OnnxModel::load(&library, &model_path, threads, provider).unwrap();
        let mut rng = Rng::new(1);
        let header = make_header(&mut model, 4, None, None, style, &mut rng).unwrap();
        let mut history: Vec<Vec<u32>> = Vec::new();
        let mut tokens = 0usize;
        let started = Instant::now();
        for bar in 0..bars {
            let refs: Vec<&[u32]> = history.iter().map(|b| b.as_slice()).collect();
            let bar_tokens = generate_bar(
                &mut model,
                BarRequest {
                    header,
                    history: &refs,
                    history_first_bar: 0,
                    forced_prefix: &[neural_trio::music::vocab::Token::Bar.id()],
                    resume_tick: 0,
                    forced_notes: &[],
                    harmony: None,
                    constraints: Constraints {
                        top_p: 0.95,
                        lead_on_top: style == neural_trio::music::controls::Style::Dance,
                        ..Constraints::default()
                    },
                    // Endless generation, as the speed figure is quoted for: no loop, nothing owed.
                    owed_parts: [false; 3],
                    rng: Rng::for_bar(1, bar, 0),
                },
            )
            .unwrap();
            tokens += bar_tokens.len();
            history.push(bar_tokens);
        }
        let seconds = started.elapsed().as_secs_f64();
        let x_realtime = bars as f64 * bar_seconds / seconds;
        println!(
            "generation, {threads} thread(s), batch 1: {bars} bars, {tokens} tokens in {seconds:.2} s = {:.0} tokens/s, {x_realtime:.1}x real time at 128 BPM",
            tokens as f64 / seconds
        );
        report.insert(format!("generation_x_realtime_{threads}t"), x_realtime.into());
        report.insert(format!("tokens_per_s_{threads}t_batch1"), (tokens as f64 / seconds).into());

        // Raw step throughput at batch 8 (variations): one token per row per step, past ~300.
        let stream: Vec<u32> = history.concat().into_iter().cycle().take(400).collect();
        model.reset(8);
        model.feed(&vec![stream[..300].to_vec(); 8]).unwrap();
        let steps = 100;
        let started = Instant::now();
        for &token in &stream[300..300 + steps] {
            model.feed(&vec![vec![token]; 8]).unwrap();
        }
        let per_s = (steps * 8) as f64 / started.elapsed().as_secs_f64();
        println!("step throughput, {threads} thread(s), batch 8, past 300: {per_s:.0} tokens/s");
        report.insert(format!("tokens_per_s_{threads}t_batch8"), per_s.into());

        // One step's latency by batch and context length: the table the Compute choice rests on.
        if threads == 1 {
            for batch in [1usize, 4, 8] {
                for past in [0usize, 300, 1000] {
                    let context: Vec<u32> = history.concat().into_iter().cycle().take(past + 20).collect();
                    model.reset(batch);
                    if past > 0 {
                        model.feed(&vec![context[..past].to_vec(); batch]).unwrap();
                    }
                    let mut times = Vec::new();
                    for &token in &context[past..past + 20] {
                        let started = Instant::now();
                        model.feed(&vec![vec![token]; batch]).unwrap();
                        times.push(started.elapsed().as_secs_f64() * 1e3);
                    }
                    let median = percentile(&mut times, 0.5);
                    println!("step latency, {}, batch {batch}, past {past}: {median:.2} ms", provider.name());
                    report.insert(format!("step_ms_batch{batch}_past{past}"), median.into());
                }
            }
        }

        // Variations: four takes of a 4-bar loop as one batch, and the same four one at a time.
        if threads == 1 {
            let plans: Vec<PhrasePlan> = (1..=4)
                .map(|variation| PhrasePlan {
                    bars: (0..4)
                        .map(|bar| BarPlan {
                            forced_notes: Vec::new(),
                            harmony: None,
                            rng: Rng::for_bar(1, bar, variation),
                        })
                        .collect(),
                    constraints: Constraints { top_p: 0.95, ..Constraints::default() },
                })
                .collect();
            let mut batched = Vec::new();
            let mut alone = Vec::new();
            for _ in 0..3 {
                let started = Instant::now();
                generate_phrases(&mut model, header, &plans).unwrap();
                batched.push(started.elapsed().as_secs_f64() * 1e3);
                let started = Instant::now();
                for plan in &plans {
                    generate_phrases(&mut model, header, std::slice::from_ref(plan)).unwrap();
                }
                alone.push(started.elapsed().as_secs_f64() * 1e3);
            }
            let (batched, alone) = (percentile(&mut batched, 0.5), percentile(&mut alone, 0.5));
            println!("4 variations of a 4-bar loop, 1 thread: {batched:.0} ms batched, {alone:.0} ms one at a time");
            report.insert("variations_4x4_batched_ms".into(), batched.into());
            report.insert("variations_4x4_sequential_ms".into(), alone.into());
        }
    }

    // Regenerate → first new bar, through the real generator thread (this program plays the audio thread).
    let (link, generator_link, editor_link) = neural_trio::link::channel();
    std::env::set_var("NEURAL_TRIO_RESOURCES", root.join("target/bundled/neural_trio"));
    let member = Member::new(generator_link, Arc::new(TrioParams::default()));
    let (params, member_id) = (member.params.clone(), member.id);
    group::join(member, neural_trio::generator::worker::spawn);
    link.set_transport(Some(tempo_bpm));
    link.set_playing(true);
    link.set_block_beats(0.5, 0.5);
    let wait_for_bar = |link: &AudioEnd, index: i64, epoch: u32| next_bar(link, index, epoch).is_some();
    assert!(wait_for_bar(&link, 0, link.epoch()), "the generator produced nothing");
    std::thread::sleep(Duration::from_millis(2000));
    while link.next_bar().is_some() {}
    let mut response = Vec::new();
    for _ in 0..runs.max(1) {
        let epoch = link.epoch();
        let started = Instant::now();
        editor_link.send(Command::Regenerate { part: None });
        if wait_for_bar(&link, 0, epoch) {
            response.push(started.elapsed().as_secs_f64() * 1e3);
        }
        std::thread::sleep(Duration::from_millis(1500));
        while link.next_bar().is_some() {}
    }
    let median = percentile(&mut response, 0.5);
    let p95 = percentile(&mut response, 0.95);
    println!(
        "regenerate -> first new bar under the playhead: median {median:.0} ms, p95 {p95:.0} ms ({} runs)",
        response.len()
    );
    report.insert("regenerate_to_first_bar_ms_median".into(), median.into());
    report.insert("regenerate_to_first_bar_ms_p95".into(), p95.into());

    // Chord change → first fitting note: a chord typed in (as the editor's field or a played chord sets
    // it) changes the bar under the playhead from just after the playhead on; timed until that bar is
    // published, and its first new arp or bass note (one the bar before the change did not have) checked
    // against the chord's tones.
    let chords: [(&str, [u8; 3]); 4] = [("Am", [9, 0, 4]), ("F", [5, 9, 0]), ("C", [0, 4, 7]), ("G", [7, 11, 2])];
    let playhead_tick = (0.5 * TICKS_PER_BEAT as f64) as u32;
    let (mut chord_response, mut fitting, mut checked) = (Vec::new(), 0, 0);
    let mut before: Option<neural_trio::link::BarNotes> = None;
    for run in 0..runs.max(1) * 2 {
        let (symbol, tones) = chords[run % chords.len()];
        let epoch = link.epoch();
        let started = Instant::now();
        *params.progression.write().unwrap() = symbol.to_string();
        let Some(bar) = next_bar(&link, 0, epoch) else { continue };
        chord_response.push(started.elapsed().as_secs_f64() * 1e3);
        if let Some(old) = &before {
            let new = |n: &&neural_trio::music::Note| !old.notes().contains(n);
            let first = bar.notes().iter().filter(new).find(|n| n.start_tick > playhead_tick && n.part != Part::Lead);
            checked += 1;
            fitting += usize::from(first.is_some_and(|n| tones.contains(&(n.pitch % 12))));
        }
        std::thread::sleep(Duration::from_millis(1000));
        before = Some(bar);
        while let Some(b) = link.next_bar() {
            if b.index == 0 {
                before = Some(b);
            }
        }
    }
    let answered = chord_response.len();
    let median = percentile(&mut chord_response, 0.5);
    let p95 = percentile(&mut chord_response, 0.95);
    println!(
        "chord change -> first fitting note: median {median:.0} ms, p95 {p95:.0} ms ({answered} changes; the first new \
         arp/bass note a chord tone in {fitting} of {checked})"
    );
    report.insert("chord_change_to_fitting_note_ms_median".into(), median.into());
    report.insert("chord_change_to_fitting_note_ms_p95".into(), p95.into());
    report.insert("chord_change_first_note_fits".into(), (fitting as f64 / checked.max(1) as f64).into());
    group::leave(member_id);

    if let Some(path) = arg("--json") {
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }
}

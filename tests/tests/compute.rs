//! The Compute setting on a machine without CUDA (CI's): GPU and Auto run on the CPU and play the
//! same notes as CPU, and trio-render reaches the setting (and any other) with `--param`.

mod common;

use common::*;
use trio_tests::RenderMode;

fn notes_with(compute: &str) -> Vec<(u64, i16, i16, bool)> {
    let mut h = host(RenderMode::Offline, vec![text("Compute", compute), text("Seed", "12")]);
    let mut tl = timeline();
    tl.play_beats_exactly(16.0);
    tl.stop_blocks(1);
    let r = run(&mut h, &tl.take());
    assert_clean(compute, &r, true);
    r.events.iter().map(|e| (e.time, e.channel, e.key, e.on)).collect()
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn gpu_and_auto_without_cuda_play_the_cpu_s_notes() {
    let cpu = notes_with("CPU");
    assert!(cpu.iter().filter(|e| e.3).count() > 10, "too few notes to compare");
    assert_eq!(notes_with("GPU"), cpu, "GPU without CUDA");
    assert_eq!(notes_with("Auto"), cpu, "Auto without CUDA");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn trio_render_sets_parameters_by_name() {
    let out = trio_tests::workspace_root().join("target/test-out/render-params");
    let _ = std::fs::remove_dir_all(&out);
    let run = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_trio-render"))
            .arg("--plugin")
            .arg(trio_tests::require_trio_clap())
            .args(["--bars", "2", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .expect("run trio-render");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, text) = run(&["--param", "compute=GPU", "--param", "Part Output=Bass Only", "--param", "key_lock=Am"]);
    assert_eq!(code, Some(0), "{text}");
    let bass_only = trio_tests::render::read_midi(&out.join("trio.mid")).expect("trio.mid reads back").1;
    let with_notes: Vec<&str> =
        bass_only.iter().filter(|(_, notes)| !notes.is_empty()).map(|(name, _)| name.as_str()).collect();
    assert_eq!(with_notes.len(), 1, "Part Output=Bass Only should leave one part with notes, found {with_notes:?}");
    let (code, text) = run(&["--param", "Nonsense=1"]);
    assert_eq!(code, Some(2), "an unknown parameter is a usage error: {text}");
    assert!(text.contains("Nonsense"), "{text}");
}

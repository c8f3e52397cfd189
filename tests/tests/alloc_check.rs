//! The `assert_process_allocs` debug bundle aborts the process on any allocation inside process().
//! The host runs in a child process (trio-render), which must exit cleanly; with
//! NEURAL_TRIO_TEST_ALLOCATE_IN_PROCESS=1 the plugin allocates on purpose and the child must die
//! abnormally, proving the check is armed.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use trio_tests::TempDir;

fn trio_render(bundle: &std::path::Path, args: &[&str], allocate: bool) -> Output {
    let dir = TempDir::new("trio-alloc").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trio-render"));
    cmd.arg("--plugin").arg(bundle).args(args).arg("--out").arg(dir.path());
    if allocate {
        cmd.env("NEURAL_TRIO_TEST_ALLOCATE_IN_PROCESS", "1");
    } else {
        cmd.env_remove("NEURAL_TRIO_TEST_ALLOCATE_IN_PROCESS");
    }
    cmd.output().expect("run trio-render")
}

fn describe(out: &Output) -> String {
    let tail = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    format!(
        "status: {} (signal {:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        out.status.signal(),
        tail(&out.stdout),
        tail(&out.stderr)
    )
}

/// Offline (notes flow through process(), with the bounded wait) and realtime: no allocation.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn process_does_not_allocate() {
    let bundle = trio_tests::require_alloc_clap();
    let offline = trio_render(&bundle, &["--bars", "4", "--offline"], false);
    assert!(offline.status.success(), "offline render with the alloc-check bundle failed:\n{}", describe(&offline));
    let stdout = String::from_utf8_lossy(&offline.stdout);
    assert!(!stdout.contains("no notes at all"), "offline alloc-check render produced no notes:\n{stdout}");

    let realtime = trio_render(&bundle, &["--bars", "4", "--realtime", "--pace", "8", "--allow-silence"], false);
    assert!(realtime.status.success(), "realtime render with the alloc-check bundle failed:\n{}", describe(&realtime));
}

/// Notes played into the plugin (Follow on chords, and a played bass routed to the bass channel): no
/// allocation either, offline and in real time.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn played_notes_do_not_allocate() {
    let bundle = trio_tests::require_alloc_clap();
    let dir = TempDir::new("trio-alloc-input").unwrap();
    let input = dir.path().join("chords.mid");
    let mut notes = Vec::new();
    for (bar, keys) in [[53u16, 56, 60], [49, 53, 56], [44, 48, 51], [51, 55, 58]].iter().enumerate() {
        for &key in keys {
            notes.push((bar as f64 * 4.0, 15, key, 0.8));
            notes.push((bar as f64 * 4.0 + 3.9, 15, key, 0.0));
        }
    }
    trio_tests::render::write_input_midi(&input, &notes).unwrap();
    let input = input.to_str().unwrap();
    for (follow, mode) in [("Follow=Chords", "--offline"), ("Follow=Part: Bass", "--realtime")] {
        let args = ["--bars", "4", mode, "--pace", "8", "--param", follow, "--input", input, "--allow-silence"];
        let out = trio_render(&bundle, &args, false);
        assert!(out.status.success(), "{follow} {mode} with the alloc-check bundle failed:\n{}", describe(&out));
    }
}

/// Three linked instances in one process (one generator, three audio threads' worth of process()
/// calls): no allocation in any member, offline and in real time.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn linked_members_do_not_allocate() {
    let bundle = trio_tests::require_alloc_clap();
    for mode in ["--offline", "--realtime"] {
        let out = trio_render(&bundle, &["--bars", "4", mode, "--pace", "8", "--linked", "--allow-silence"], false);
        assert!(out.status.success(), "--linked {mode} with the alloc-check bundle failed:\n{}", describe(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("the three members together"), "not a linked render:\n{stdout}");
    }
}

/// Negative control: the deliberate allocation must kill the child with a signal (abort).
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn negative_control_allocation_aborts() {
    let bundle = trio_tests::require_alloc_clap();
    let out = trio_render(&bundle, &["--bars", "1", "--realtime", "--allow-silence"], true);
    assert!(
        !out.status.success() && out.status.signal().is_some(),
        "with NEURAL_TRIO_TEST_ALLOCATE_IN_PROCESS=1 the child should die from the allocation check \
         (abort signal), but it did not:\n{}",
        describe(&out)
    );
}

//! The bundle without its resources (no ONNX Runtime, no model) or without the model file: it must
//! load, process silently, never stall an offline render, and save/load its state.
//!
//! This file is its own test process, so the copies loaded here never share a process with the
//! complete bundle.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Instant;
use trio_tests::host::{HostOptions, RenderMode, TrioHost};
use trio_tests::TempDir;

/// Copies the bundle into `dir`; with `resources`, also its resource folder minus the model.
fn copy_bundle(dir: &Path, resources: bool) -> PathBuf {
    let bundle = trio_tests::require_trio_clap();
    let target = dir.join(bundle.file_name().unwrap());
    std::fs::copy(&bundle, &target).unwrap();
    if resources {
        let src = trio_tests::resource_dir_of(&bundle);
        assert!(src.is_dir(), "the bundle's resource folder {} is missing", src.display());
        let dst = trio_tests::resource_dir_of(&target);
        trio_tests::copy_dir(&src, &dst).unwrap();
        let model = dst.join("trio-base.onnx");
        assert!(model.is_file(), "expected the model at {} in the copied resources", model.display());
        std::fs::remove_file(&model).unwrap();
    }
    target
}

fn check_silent_bundle(bundle: &Path, what: &str) {
    for mode in [RenderMode::Realtime, RenderMode::Offline] {
        let mut h = TrioHost::new(
            bundle,
            HostOptions { sample_rate: SR, max_block: BLOCK, render: mode, ..HostOptions::default() },
        )
        .unwrap_or_else(|e| panic!("{what}: the bundle must still load and activate: {e}"));
        let mut tl = timeline();
        tl.play_bars(8.0);
        tl.stop_blocks(1);
        let started = Instant::now();
        let r = run(&mut h, &tl.take());
        let secs = started.elapsed().as_secs_f64();
        println!("{what}, {mode:?}: 8 bars in {secs:.2} s");
        assert!(
            r.events.is_empty(),
            "{what}, {mode:?}: {} note events without a model, first {:?}",
            r.events.len(),
            r.events.first()
        );
        assert!(r.process_errors.is_empty(), "{what}, {mode:?}: process() errors at {:?}", r.process_errors);
        // 8 bars are 15 s of audio; an offline bounce must not wait for a model that will never come.
        assert!(secs < 15.0, "{what}, {mode:?}: 8 bars took {secs:.1} s (waiting for a missing model?)");

        let state = h.save_state().unwrap_or_else(|e| panic!("{what}, {mode:?}: {e}"));
        assert!(!state.is_empty());
        let again = h.save_state().unwrap();
        assert!(state == again, "{what}: two saves differ");
        h.load_state(&state).unwrap_or_else(|e| panic!("{what}, {mode:?}: loading its own state: {e}"));
        drop(h);
        let fresh =
            TrioHost::new(bundle, HostOptions { render: mode, initial_state: Some(state), ..HostOptions::default() });
        assert!(fresh.is_ok(), "{what}: a fresh instance refused the state: {:?}", fresh.err());
    }
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn without_resource_folder() {
    let dir = TempDir::new("trio-nores").unwrap();
    let bundle = copy_bundle(dir.path(), false);
    check_silent_bundle(&bundle, "no resource folder");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn without_model_file() {
    let dir = TempDir::new("trio-nomodel").unwrap();
    let bundle = copy_bundle(dir.path(), true);
    check_silent_bundle(&bundle, "no trio-base.onnx");
}

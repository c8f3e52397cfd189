//! Models made by `cargo xtask finetune` play in the plugin: the smoke runs of `cargo xtask test`
//! (four POP909 files with all their parts, the same files lead only, the base model writing arp
//! and bass, and two of them rendered to audio and transcribed) are rendered through the built bundle with `--model`, and every part plays.
//!
//! `cargo xtask test` makes the models first and names their folder in `TRIO_FINETUNED_MODELS`.

use std::path::PathBuf;
use trio_tests::host::RenderMode;
use trio_tests::render::{render, RenderOptions};

fn finetuned(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRIO_FINETUNED_MODELS")
        .map(PathBuf::from)
        .expect("TRIO_FINETUNED_MODELS is not set: `cargo xtask test` makes the fine-tuned models and sets it");
    let model = dir.join(format!("{name}.onnx"));
    assert!(model.is_file(), "{} is missing: the fine-tune smoke run did not write it", model.display());
    model
}

fn assert_plays_every_part(name: &str) {
    let model = finetuned(name);
    let opts = RenderOptions {
        plugin: trio_tests::require_trio_clap(),
        bars: 8.0,
        bpm: 124.0,
        mode: RenderMode::Offline,
        model: Some(model.clone()),
        ..RenderOptions::default()
    };
    let report = render(&opts).unwrap_or_else(|e| panic!("{name}: render failed: {e}"));
    assert!(report.failures.is_empty(), "{name}: render invariants failed:\n{}", report.summary());
    for part in &report.parts {
        let notes = report.analysis.notes_on(part.channel).len();
        assert!(notes > 0, "{name} ({}): the {} part played nothing in 8 bars", model.display(), part.name);
        println!("{name}: {} {notes} notes", part.name);
    }
    assert_eq!(report.parts.len(), 3);
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_model_fine_tuned_on_full_arrangements_plays_all_three_parts() {
    assert_plays_every_part("tiny-all");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_model_fine_tuned_on_leads_alone_still_plays_all_three_parts() {
    assert_plays_every_part("tiny-lead");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_model_fine_tuned_on_audio_plays_all_three_parts() {
    assert_plays_every_part("tiny-audio");
}

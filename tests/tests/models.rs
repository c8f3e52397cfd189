//! Your own models: the model choice (the persisted field "model") through the built bundle.
//!
//! - `trio-render --model` with a copy of the shipped model in a models folder plays all three parts
//!   (the same notes as the shipped model: it is the same model);
//! - the choice is saved with the project, with the file's content hash, and reopens;
//! - a project saved before there was a choice plays the shipped model, whatever was chosen before;
//! - a project whose model is missing plays its saved phrase note for note, and says which is missing;
//! - a model trained on another vocabulary is refused with both hashes named;
//! - a switch mid-render (`--at BAR model=FILE`) takes over at the next bar.
//!
//! One process, one models folder (`NEURAL_TRIO_MODELS`) and one plugin log (`NICE_LOG`) for every
//! test here, set before the first instance: each test uses model files of its own names.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use trio_tests::host::{HostOptions, RenderMode, TrioHost};
use trio_tests::render::{model_choice_json, read_midi, MODEL_FIELD};

/// The vocabulary the shipped model was trained on, as its metadata says.
const VOCAB_HASH: &str = "28e7e2f8ef8fb6c2";
/// The shipped model's version, as its metadata says.
const SHIPPED_VERSION: &str = "trio-base-0.3";
/// Another vocabulary, of the same length (the metadata string keeps its length and the file stays valid).
const OTHER_VOCAB_HASH: &str = "0123456789abcdef";

struct Setup {
    models: PathBuf,
    log: PathBuf,
}

/// The models folder and the plugin's log, set in the environment once, before any instance.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let root = trio_tests::workspace_root().join("target/test-out/models");
        let _ = std::fs::remove_dir_all(&root);
        let models = root.join("models");
        std::fs::create_dir_all(&models).unwrap();
        let log = root.join("plugin.log");
        std::env::set_var("NEURAL_TRIO_MODELS", &models);
        std::env::set_var("NICE_LOG", &log);
        Setup { models, log }
    })
}

/// The model the bundle ships.
fn shipped_model() -> PathBuf {
    let model = trio_tests::resource_dir_of(&trio_tests::require_trio_clap()).join("trio-base.onnx");
    assert!(model.is_file(), "the bundle's model is missing at {}", model.display());
    model
}

/// The shipped model with one metadata string replaced by another of the same length (the protobuf
/// stays valid), written to the models folder as `NAME.onnx`.
fn edited_model(name: &str, from: &str, to: &str) -> PathBuf {
    assert_eq!(from.len(), to.len(), "{to:?} must have the length of {from:?}");
    let mut bytes = std::fs::read(shipped_model()).unwrap();
    let at = bytes.windows(from.len()).position(|w| w == from.as_bytes());
    let at = at.unwrap_or_else(|| panic!("the shipped model's metadata has no {from:?}"));
    bytes[at..at + from.len()].copy_from_slice(to.as_bytes());
    let path = setup().models.join(format!("{name}.onnx"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The shipped model's weights as a model of the user's, `NAME.onnx`, with a version of its own (so
/// each test's copy has a content hash of its own, as fine-tuned models do).
fn copy_model(name: &str) -> PathBuf {
    let version: String = name.chars().chain(std::iter::repeat('.')).take(SHIPPED_VERSION.len()).collect();
    edited_model(name, SHIPPED_VERSION, &version)
}

/// A copy of the shipped model whose metadata says it was trained on another vocabulary.
fn other_vocabulary_model(name: &str) -> PathBuf {
    edited_model(name, VOCAB_HASH, OTHER_VOCAB_HASH)
}

/// A new offline instance with `model` chosen before activation (as a project that holds it opens).
fn with_model(model: &Path) -> TrioHost {
    setup();
    let bundle = trio_tests::require_trio_clap();
    let options =
        HostOptions { sample_rate: SR, max_block: BLOCK, render: RenderMode::Offline, ..HostOptions::default() };
    let mut host = TrioHost::new_inactive(&bundle, options).unwrap_or_else(|e| panic!("hosting: {e}"));
    host.set_persisted_field(MODEL_FIELD, &model_choice_json(model).unwrap()).expect("the model field is set");
    host.activate().expect("activate");
    host
}

fn play(host: &mut TrioHost, bars: f64) -> Vec<(u64, i16, i16, bool)> {
    let mut tl = timeline();
    tl.play_bars(bars);
    tl.stop_blocks(1);
    let r = run(host, &tl.take());
    assert_clean("render", &r, true);
    r.events.iter().map(|e| (e.time, e.channel, e.key, e.on)).collect()
}

/// The persisted model field of a saved state, as JSON.
fn saved_choice(state: &[u8]) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_slice(&state[8..]).expect("the state is JSON after its length");
    let field = json["fields"][MODEL_FIELD].as_str().expect("the state holds the model field");
    serde_json::from_str(field).expect("the model field is JSON")
}

/// Waits (the log is written by a background thread) until the plugin's log holds a line with every
/// one of `words`; returns that line.
#[track_caller]
fn logged(words: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(&setup().log).unwrap_or_default();
        if let Some(line) = log.lines().find(|line| words.iter().all(|w| line.contains(w))) {
            return line.to_string();
        }
        if started.elapsed() > Duration::from_secs(10) {
            panic!("the plugin's log has no line with {words:?}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `trio-render` in its own process with the models folder set; (exit code, stdout + stderr).
fn trio_render(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_trio-render"))
        .arg("--plugin")
        .arg(trio_tests::require_trio_clap())
        .args(args)
        .env("NEURAL_TRIO_MODELS", &setup().models)
        .env("NICE_LOG", "stderr")
        .output()
        .expect("run trio-render");
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text)
}

fn out_dir(name: &str) -> PathBuf {
    let dir = trio_tests::workspace_root().join("target/test-out").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The notes of trio.mid, per part track (the tempo track left out).
fn midi_parts(dir: &Path) -> Vec<(String, Vec<trio_tests::render::MidiNote>)> {
    read_midi(&dir.join("trio.mid")).expect("trio.mid reads back").1.into_iter().skip(1).collect()
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn trio_render_with_a_model_of_the_folder_plays_all_three_parts() {
    let mine = copy_model("mine");
    let (with_model, shipped) = (out_dir("models-mine"), out_dir("models-shipped"));
    let (code, text) =
        trio_render(&["--bars", "4", "--model", mine.to_str().unwrap(), "--out", with_model.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("plays model mine"), "the log does not say which model plays:\n{text}");
    let parts = midi_parts(&with_model);
    let names: Vec<&str> = parts.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["lead", "arp", "bass"]);
    for (name, notes) in &parts {
        assert!(!notes.is_empty(), "{name} played nothing with --model");
    }
    let (code, text) = trio_render(&["--bars", "4", "--out", shipped.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(parts, midi_parts(&shipped), "a copy of the shipped model plays other notes than the shipped model");

    let (code, text) = trio_render(&["--bars", "1", "--model", "/nowhere/at/all.onnx"]);
    assert_eq!(code, Some(2), "a model file that does not exist is a usage error: {text}");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn the_model_choice_is_saved_with_its_content_hash_and_reopens() {
    let model = copy_model("round-trip");
    let mut first = with_model(&model);
    let played = play(&mut first, 4.0);
    assert!(played.iter().filter(|e| e.3).count() > 10, "too few notes");
    let state = first.save_state().expect("save");
    drop(first);
    let choice = saved_choice(&state);
    assert_eq!(choice["kind"], "file", "{choice}");
    assert_eq!(choice["name"], "round-trip", "{choice}");
    assert_eq!(Path::new(choice["path"].as_str().unwrap()), std::path::absolute(&model).unwrap(), "{choice}");
    let hash = choice["hash"].as_str().unwrap_or_default();
    assert!(hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()), "no content hash saved: {choice}");

    let mut again = reopened(&state);
    assert_eq!(play(&mut again, 4.0), played, "the reopened project plays other notes");
    assert_eq!(saved_choice(&again.save_state().unwrap()), choice, "the choice changed on reopening");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_project_saved_before_there_was_a_choice_plays_the_shipped_model() {
    let fixture = trio_tests::workspace_root().join("tests/fixtures");
    let state = std::fs::read(fixture.join("state-format1.bin")).expect("fixture state");
    let expected: Vec<String> =
        std::fs::read_to_string(fixture.join("state-format1-notes.txt")).unwrap().lines().map(str::to_string).collect();
    // An instance that played another model opens the old project.
    let mut host = with_model(&copy_model("before-the-old-project"));
    host.load_state(&state).expect("the old project loads");
    let mut tl = timeline();
    tl.play_bars(8.0);
    tl.stop_blocks(1);
    let r = run(&mut host, &tl.take());
    let played: Vec<String> = r
        .events
        .iter()
        .map(|e| {
            let on = if e.on { "on" } else { "off" };
            format!("{} {} {} {on} {}", e.time, e.channel, e.key, (e.velocity * 127.0).round())
        })
        .collect();
    assert!(
        played == expected,
        "the old project plays other notes ({} events, {} saved)",
        played.len(),
        expected.len()
    );
    assert_eq!(saved_choice(&host.save_state().unwrap())["kind"], "shipped");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_project_whose_model_is_missing_plays_its_saved_phrase_note_for_note() {
    let model = copy_model("gone-missing");
    let mut first = with_model(&model);
    let played = play(&mut first, 8.0);
    let state = first.save_state().expect("save");
    drop(first);
    std::fs::remove_file(&model).unwrap();

    let mut missing = reopened(&state);
    assert_eq!(play(&mut missing, 8.0), played, "the saved phrase does not play note for note");
    logged(&["\"gone-missing\"", "missing", "saved phrase plays on"]);
    // The project keeps its choice: the model may come back.
    assert_eq!(saved_choice(&missing.save_state().unwrap()), saved_choice(&state));

    // Another file under its name is not the project's model: said so, and the phrase plays on.
    std::fs::write(&model, b"not the model").unwrap();
    let mut changed = reopened(&state);
    assert_eq!(play(&mut changed, 8.0), played, "the saved phrase does not play note for note");
    logged(&["gone-missing.onnx", "content hash", "saved phrase plays on"]);
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_model_of_another_vocabulary_is_refused_with_both_hashes_named() {
    let alien = other_vocabulary_model("other-vocabulary");
    // A project (or render) that asks for it: refused, nothing of another model's is played.
    let out = out_dir("models-other-vocabulary");
    let args = ["--bars", "2", "--allow-silence", "--model", alien.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let (code, text) = trio_render(&args);
    assert_eq!(code, Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("other-vocabulary") && l.contains("refused"))
        .unwrap_or_else(|| panic!("no refusal in the log:\n{text}"));
    assert!(line.contains(OTHER_VOCAB_HASH) && line.contains(VOCAB_HASH), "both hashes are not named: {line}");
    assert!(!text.contains("plays model"), "another model played:\n{text}");
    assert!(midi_parts(&out).iter().all(|(_, notes)| notes.is_empty()), "notes were played without a model");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn switching_models_mid_render_takes_over_at_the_next_bar() {
    let copy = copy_model("switched-to");
    let alien = other_vocabulary_model("switched-to-other-vocabulary");
    let render = |extra: &[&str], out: &Path| {
        let mut args = vec!["--bars", "8", "--param", "Mode=Endless", "--seed", "41", "--out", out.to_str().unwrap()];
        args.extend(extra);
        let (code, text) = trio_render(&args);
        assert_eq!(code, Some(0), "{text}");
        (midi_parts(out), text)
    };
    let (plain, _) = render(&[], &out_dir("models-switch-plain"));
    // The same model under another name: the bars from bar 4 are made again by it, note for note the same.
    let at_copy = format!("model={}", copy.display());
    let (switched, text) = render(&["--at", "4", &at_copy], &out_dir("models-switch-copy"));
    assert!(text.contains("plays model switched-to"), "the switch is not in the log:\n{text}");
    assert_eq!(switched, plain, "a switch to the same model changed the notes");
    // Refused mid-render: what was made plays on, and the log names both vocabularies.
    let at_alien = format!("model={}", alien.display());
    let (refused, text) = render(&["--at", "4", &at_alien, "--allow-silence"], &out_dir("models-switch-alien"));
    assert!(text.contains(OTHER_VOCAB_HASH) && text.contains(VOCAB_HASH), "{text}");
    let until = |parts: &[(String, Vec<trio_tests::render::MidiNote>)], bars: u64| -> Vec<Vec<(u8, u8, u64)>> {
        let ticks = bars * 4 * trio_tests::render::TICKS_PER_BEAT as u64;
        parts.iter().map(|(_, notes)| notes.iter().filter(|n| n.2 < ticks).map(|n| (n.0, n.1, n.2)).collect()).collect()
    };
    assert_eq!(until(&refused, 4), until(&plain, 4), "the bars before the switch changed");
}

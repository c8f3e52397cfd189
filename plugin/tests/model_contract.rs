//! The shipped model through the plugin's own ONNX Runtime path: logits match the PyTorch reference
//! stored by `models/export.py`, and the composer produces bars that obey every mask.
//!
//! Needs ONNX Runtime's library (`cargo xtask onnxruntime` fetches it; `cargo xtask test` does this first).

use neural_trio::generator::composer::{bar_notes, generate_bar, make_header, BarRequest};
use neural_trio::generator::model::TokenModel;
use neural_trio::generator::onnx::{OnnxModel, Provider};
use neural_trio::generator::sampler::{Constraints, Rng};
use neural_trio::music::controls::Style;
use neural_trio::music::vocab::Key;
use neural_trio::music::Part;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(threads: usize) -> OnnxModel {
    let library = root().join("target/onnxruntime/libonnxruntime.so.1.31.1");
    assert!(library.exists(), "{} is missing: run `cargo xtask onnxruntime`", library.display());
    OnnxModel::load(&library, &root().join("models/trio-base.onnx"), threads, Provider::Cpu)
        .expect("the shipped model loads")
}

#[test]
#[ignore = "needs ONNX Runtime from target/onnxruntime: run by cargo xtask test"]
fn ort_logits_match_the_pytorch_reference() {
    let text =
        std::fs::read_to_string(root().join("models/fixtures/parity.json")).expect("models/fixtures/parity.json");
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let model_bytes = std::fs::read(root().join("models/trio-base.onnx")).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&model_bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(fixture["model_sha256"].as_str(), Some(sha.as_str()), "fixture belongs to another model: re-export");

    let tokens: Vec<u32> = fixture["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
    let prefill = fixture["prefill_length"].as_u64().unwrap() as usize;
    let tolerance = fixture["tolerance"].as_f64().unwrap() as f32;
    let expect = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
    };

    let mut model = load(1);
    model.reset(1);
    let logits = model.feed(&[tokens[..prefill].to_vec()]).unwrap();
    let mut worst = max_diff(&logits, &expect(&fixture["prefill_last_logits"]));
    for (i, reference) in fixture["step_logits"].as_array().unwrap().iter().enumerate() {
        let logits = model.feed(&[vec![tokens[prefill + i]]]).unwrap();
        worst = worst.max(max_diff(&logits, &expect(reference)));
    }
    assert!(worst <= tolerance, "max abs logit difference {worst} > {tolerance}");
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
#[ignore = "needs ONNX Runtime from target/onnxruntime: run by cargo xtask test"]
fn composed_bars_obey_register_key_and_part_masks() {
    let mut model = load(1);
    let mut rng = Rng::new(5);
    let header = make_header(&mut model, 4, Some(Key { tonic: 9, minor: true }), None, Style::Pop, &mut rng).unwrap();
    let registers = [(72, 84), (50, 64), (30, 40)];
    let scale = Key { tonic: 9, minor: true }.scale_mask();
    let mut history: Vec<Vec<u32>> = Vec::new();
    let mut total = 0;
    for bar in 0..4 {
        let refs: Vec<&[u32]> = history.iter().map(|b| b.as_slice()).collect();
        let tokens = generate_bar(
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
                    temperature: 1.2,
                    top_p: 0.98,
                    parts_allowed: [true, false, true],
                    registers,
                    scale_mask: scale,
                    chord_tones: 0,
                    ..Constraints::default()
                },
                owed_parts: [false; 3],
                rng: Rng::for_bar(1, bar, 0),
            },
        )
        .unwrap();
        for note in bar_notes(&tokens) {
            assert_ne!(note.part, Part::Arp, "a disabled part was generated");
            let (low, high) = registers[note.part.index()];
            assert!(note.pitch >= low && note.pitch <= high, "{note:?} outside its register");
            assert!(scale & (1 << (note.pitch % 12)) != 0, "{note:?} outside A minor");
            assert!(note.start_tick < 48);
            total += 1;
        }
        history.push(tokens);
    }
    assert!(total > 0, "four bars without a single note");
}

#[test]
#[ignore = "needs ONNX Runtime from target/onnxruntime: run by cargo xtask test"]
fn locked_part_notes_are_kept_and_others_sampled_around_them() {
    use neural_trio::music::Note;
    let mut model = load(1);
    let mut rng = Rng::new(9);
    let header = make_header(&mut model, 4, None, None, Style::Pop, &mut rng).unwrap();
    let bass = [
        Note { start_tick: 0, part: Part::Bass, pitch: 36, duration_ticks: 12, velocity: 104 },
        Note { start_tick: 12, part: Part::Bass, pitch: 43, duration_ticks: 12, velocity: 88 },
        Note { start_tick: 24, part: Part::Bass, pitch: 41, duration_ticks: 24, velocity: 88 },
    ];
    for seed in 0..4 {
        let tokens = generate_bar(
            &mut model,
            BarRequest {
                header,
                history: &[],
                history_first_bar: 0,
                forced_prefix: &[neural_trio::music::vocab::Token::Bar.id()],
                resume_tick: 0,
                forced_notes: &bass,
                harmony: None,
                constraints: Constraints { parts_allowed: [true, true, false], ..Constraints::default() },
                owed_parts: [false; 3],
                rng: Rng::for_bar(seed, 0, 0),
            },
        )
        .unwrap();
        let notes = bar_notes(&tokens);
        let kept: Vec<Note> = notes.iter().filter(|n| n.part == Part::Bass).copied().collect();
        assert_eq!(kept, bass.to_vec(), "the locked bass changed");
    }
}

#[test]
#[ignore = "needs ONNX Runtime from target/onnxruntime: run by cargo xtask test"]
fn an_open_key_follows_the_chosen_mood_s_mode() {
    use neural_trio::music::vocab::{Mood, Token};
    let mut model = load(1);
    for mood in Mood::ALL {
        for seed in 0..12 {
            let header = make_header(&mut model, 4, None, Some(mood), Style::Pop, &mut Rng::new(seed)).unwrap();
            let Some(Token::Key(key)) = Token::from_id(header[2]) else { panic!("no key token in {header:?}") };
            assert_eq!(key.minor, mood.is_minor(), "{mood:?} drew {key:?} (seed {seed})");
            assert_eq!(Token::from_id(header[3]), Some(Token::Mood(mood)));
        }
    }
}

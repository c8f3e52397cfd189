//! The editor's commands, sent to a real generator thread with the shipped model: Variations make
//! several different takes at once and keep locked parts note for note, flipping through them plays
//! each exactly, "Before" and Undo bring the old phrase back, and a part Regenerate leaves the others.
//! Batched takes are checked against the same takes made one at a time.
//!
//! Needs ONNX Runtime's library (`cargo xtask onnxruntime`; `cargo xtask test` fetches it first).

use neural_trio::generator::composer::{generate_phrases, make_header, BarPlan, PhrasePlan};
use neural_trio::generator::group::{self, Member};
use neural_trio::generator::onnx::{OnnxModel, Provider};
use neural_trio::generator::sampler::{Constraints, Rng};
use neural_trio::generator::worker;
use neural_trio::link::{AudioEnd, Command, EditorEnd, EngineStatus};
use neural_trio::music::{Note, Part};
use neural_trio::params::TrioParams;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn library() -> PathBuf {
    let library = root().join("target/onnxruntime/libonnxruntime.so.1.31.1");
    assert!(library.exists(), "{} is missing: run `cargo xtask onnxruntime`", library.display());
    library
}

/// The phrase as the editor sees it: (bar, notes) for the loop's bars.
type Phrase = Vec<(i64, Vec<Note>)>;

struct Running {
    /// The test plays the audio thread and the editor.
    audio: AudioEnd,
    editor: EditorEnd,
    params: Arc<TrioParams>,
    /// The instance in the registry of groups (alone: Link Off), whose generator thread runs.
    member_id: u64,
}

impl Running {
    /// A generator thread with default parameters (Loop, 4 bars), fed the shipped model and library
    /// through the resource folder the plugin would search.
    fn start() -> Running {
        let dir = std::env::temp_dir().join(format!("neural-trio-commands-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, target) in [
            (neural_trio::generator::resources::ORT_LIBRARY, library()),
            ("trio-base.onnx", root().join("models/trio-base.onnx")),
        ] {
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, &link).unwrap();
        }
        std::env::set_var("NEURAL_TRIO_RESOURCES", &dir);
        let (audio, generator, editor) = neural_trio::link::channel();
        audio.set_transport(Some(120.0));
        let member = Member::new(generator, Arc::new(TrioParams::default()));
        let (params, member_id) = (member.params.clone(), member.id);
        group::join(member, worker::spawn);
        Running { audio, editor, params, member_id }
    }

    /// Waits (draining the bars as the audio thread would) until `done` holds for status and phrase.
    fn wait(&self, what: &str, done: impl Fn(&EngineStatus, &Phrase) -> bool) -> (EngineStatus, Phrase) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Played as the audio thread would: a block processed, its bars drained.
            self.audio.count_block();
            while self.audio.next_bar().is_some() {}
            let status = self.editor.status();
            assert!(status.problem.is_none(), "generator problem while waiting for {what}: {:?}", status.problem);
            let phrase = self.editor.phrase().bars;
            if done(&status, &phrase) {
                return (status, phrase);
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The header (tempo, key, mood, style tokens) the project would save.
    fn saved_header(&self) -> Option<[u32; neural_trio::music::tokens::HEADER_LENGTH]> {
        self.params.session.read().header
    }

    fn send(&self, command: Command) {
        self.editor.send(command);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The group's last member leaves: its generator thread ends and is joined.
        group::leave(self.member_id);
    }
}

fn full(phrase: &Phrase) -> bool {
    phrase.len() == 4
}

fn part_notes(phrase: &Phrase, part: Part) -> Vec<(i64, u32, u8, u32)> {
    phrase
        .iter()
        .flat_map(|(bar, notes)| {
            notes.iter().filter(|n| n.part == part).map(move |n| (*bar, n.start_tick, n.pitch, n.duration_ticks))
        })
        .collect()
}

#[test]
#[ignore = "needs ONNX Runtime from target/onnxruntime: run by cargo xtask test"]
fn variations_keep_locked_parts_flip_exactly_and_undo() {
    let running = Running::start();
    let (_, original) = running.wait("the first phrase", |_, p| full(p));
    let header = running.saved_header();
    assert!(header.is_some(), "no header saved with the first phrase");
    assert!(Part::ALL.iter().any(|&part| !part_notes(&original, part).is_empty()), "the phrase is empty");

    running.send(Command::SetLock { part: Part::Bass, locked: true });
    running.send(Command::Variations { part: None, count: 3 });
    let (status, take1) =
        running.wait("three variations", |s, p| s.variations == 4 && s.variation_shown == 1 && full(p));
    println!("3 variations of a 4-bar loop in {:.0} ms", status.variations_ms);
    assert!(status.can_undo, "Variations can be undone");
    assert_eq!(part_notes(&take1, Part::Bass), part_notes(&original, Part::Bass), "the locked bass changed");
    assert_ne!(take1, original, "take 1 is the phrase it started from");

    let mut takes = vec![take1];
    for index in [2, 3] {
        running.send(Command::ShowVariation { index });
        let (_, take) = running.wait("flipping", |s, p| s.variation_shown == index && full(p) && p != &takes[0]);
        assert_eq!(part_notes(&take, Part::Bass), part_notes(&original, Part::Bass), "take {index}: the bass changed");
        takes.push(take);
    }
    assert!(takes[1] != takes[2] && takes[0] != takes[2], "the takes are not all different");
    // Give the generator time to act on a stale header, if it thought one was.
    std::thread::sleep(Duration::from_millis(100));
    running.wait("settling", |_, p| p == &takes[2]);
    assert_eq!(running.saved_header(), header, "the takes keep the phrase's key and mood");

    // Flipping back plays a take exactly as it was, and "Before" is the phrase they started from.
    running.send(Command::ShowVariation { index: 1 });
    running.wait("take 1 again", |s, p| s.variation_shown == 1 && p == &takes[0]);
    running.send(Command::ShowVariation { index: 0 });
    running.wait("the phrase before", |s, p| s.variation_shown == 0 && p == &original);

    // Undo returns to the phrase before the Variations and forgets the takes; Redo brings back the
    // one that was playing.
    running.send(Command::ShowVariation { index: 2 });
    running.wait("take 2 again", |_, p| p == &takes[1]);
    running.send(Command::Undo);
    running.wait("undo", |s, p| s.variations == 0 && s.can_redo && p == &original);
    running.send(Command::Redo);
    running.wait("redo", |_, p| p == &takes[1]);

    // A part Regenerate replaces that part only.
    running.send(Command::SetLock { part: Part::Bass, locked: false });
    running.send(Command::Regenerate { part: Some(Part::Lead) });
    let (_, regenerated) =
        running.wait("a new lead", |_, p| full(p) && part_notes(p, Part::Lead) != part_notes(&takes[1], Part::Lead));
    for part in [Part::Arp, Part::Bass] {
        assert_eq!(
            part_notes(&regenerated, part),
            part_notes(&takes[1], part),
            "{part:?} changed on a lead Regenerate"
        );
    }
}

#[test]
#[ignore = "needs ONNX Runtime from target/onnxruntime: run by cargo xtask test"]
fn batched_takes_match_takes_made_one_at_a_time() {
    let mut model =
        OnnxModel::load(&library(), &root().join("models/trio-base.onnx"), 1, Provider::Cpu).expect("model loads");
    let header =
        make_header(&mut model, 4, None, None, neural_trio::music::controls::Style::Pop, &mut Rng::new(3)).unwrap();
    let constraints = Constraints { registers: [(60, 84), (48, 72), (28, 52)], ..Constraints::default() };
    let plan = |variation: u32| PhrasePlan {
        bars: (0..4)
            .map(|bar| BarPlan { forced_notes: Vec::new(), harmony: None, rng: Rng::for_bar(7, bar, variation) })
            .collect(),
        constraints,
    };
    let plans: Vec<PhrasePlan> = (1..=4).map(plan).collect();
    let batched = generate_phrases(&mut model, header, &plans).unwrap();
    assert_eq!(batched.len(), 4);
    let mut same = 0;
    for (variation, take) in (1..=4).zip(&batched) {
        assert_eq!(take.len(), 4, "a take has every bar");
        let alone = generate_phrases(&mut model, header, &[plan(variation)]).unwrap().remove(0);
        // Batch rows run through other matrix kernels than batch 1, so a near-tie in sampling may
        // rarely tip the other way; most takes must come out token for token.
        same += usize::from(&alone == take);
    }
    assert!(same >= 3, "only {same} of 4 batched takes equal the same take made alone");
    assert!(batched.windows(2).all(|w| w[0] != w[1]), "neighbouring takes are identical");
}

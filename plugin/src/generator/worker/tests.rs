//! The generator driven by hand with a deterministic fake model: no ONNX Runtime, no thread.

use super::*;
use crate::generator::group::{GroupKey, Member};
use crate::generator::model::fake::FakeModel;
use crate::link::{AudioEnd, EditorEnd};
use crate::music::Note;
use nice_plug::params::persist::PersistentField;
use std::path::PathBuf;

/// A generator with the fake model, a host at 128 BPM parked at bar 1, default parameters
/// (Loop mode, 4 bars).
fn generator() -> (Generator, Peers) {
    let (mut generator, peers) = solo();
    generator.open_models(fake_models(None)).expect("fake models open");
    (generator, peers)
}

/// The audio thread's and the editor's ends of the instance's link, played by the test.
struct Peers {
    audio: AudioEnd,
    editor: EditorEnd,
}

/// A generator serving one instance, driven by hand; its host at 128 BPM, parked at bar 1.
fn solo() -> (Generator, Peers) {
    let (audio, generator, editor) = crate::link::channel();
    audio.set_transport(Some(128.0));
    let member = Member::new(generator, Arc::new(TrioParams::default()));
    (Generator::new(Group::unregistered(GroupKey::Solo(member.id), vec![member])), Peers { audio, editor })
}

/// Opens fake models on the CPU (there is no CUDA here); the first one fails at step `fail_at`.
fn fake_models(fail_at: Option<usize>) -> OpenModel {
    let mut first = true;
    Box::new(move |provider| {
        if provider == Provider::Cuda {
            return Err("no CUDA in tests".into());
        }
        let fails = std::mem::take(&mut first).then_some(fail_at).flatten();
        Ok(Box::new(Failing { model: FakeModel::new(), steps_left: fails }) as Box<dyn TokenModel + Send>)
    })
}

/// A model whose session dies after some steps, as a GPU does on a driver reset.
struct Failing {
    model: FakeModel,
    steps_left: Option<usize>,
}

impl Failing {
    fn step(&mut self) -> Result<(), String> {
        match &mut self.steps_left {
            Some(0) => Err("device reset (injected)".into()),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl TokenModel for Failing {
    fn context_length(&self) -> usize {
        self.model.context_length()
    }
    fn context(&self) -> &[u32] {
        self.model.context()
    }
    fn set_context(&mut self, context: &[u32]) -> Result<Vec<f32>, String> {
        self.step()?;
        self.model.set_context(context)
    }
    fn feed(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        self.step()?;
        self.model.feed(tokens)
    }
    fn fork(&mut self, rows: usize) {
        self.model.fork(rows)
    }
}

#[test]
fn a_model_that_fails_mid_phrase_is_reopened_and_no_bar_is_lost() {
    let (mut healthy, _peers) = generator();
    settle(&mut healthy);
    let (mut failing, failing_peers) = solo();
    failing.open_models(fake_models(Some(100))).expect("fake models open");
    settle(&mut failing);
    assert_eq!(notes(&failing), notes(&healthy), "the bars made after the failure differ, or one is missing");
    let note = failing_peers.editor.status().compute_note.expect("the recovery is reported");
    assert!(note.contains("device reset"), "{note}");
    assert_eq!(failing_peers.editor.status().problem, None);
}

/// Steps until there is nothing left to do.
fn settle(generator: &mut Generator) {
    for _ in 0..500 {
        if !generator.step() {
            return;
        }
    }
    panic!("the generator never settled");
}

fn notes(generator: &Generator) -> BTreeMap<i64, Vec<Note>> {
    generator.bars.iter().map(|(&i, bar)| (i, bar.content.notes.clone())).collect()
}

fn published(link: &AudioEnd) -> Vec<i64> {
    std::iter::from_fn(|| link.next_bar()).map(|bar| bar.index).collect()
}

#[test]
fn the_loop_is_generated_published_and_saved() {
    let (mut g, peers) = generator();
    settle(&mut g);
    let bars = notes(&g);
    assert_eq!(bars.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(bars.values().map(Vec::len).sum::<usize>() > 8, "too few notes: {bars:?}");
    let mut sent = published(&peers.audio);
    sent.sort();
    assert_eq!(sent, [0, 1, 2, 3]);
    let saved = g.params.session.read();
    assert_eq!(saved.bars.iter().map(|b| (b.index, b.notes.clone())).collect::<BTreeMap<_, _>>(), bars);
    assert_eq!(saved.model_id, "unnamed");
}

#[test]
fn regenerate_keeps_what_was_heard_and_undo_redo_walk_the_history() {
    let (mut g, peers) = generator();
    settle(&mut g);
    let before = notes(&g);
    // The host plays bar 1 at its third beat, offline (no margin for what is about to be heard).
    peers.audio.set_playing(true);
    peers.audio.set_offline(true);
    peers.audio.set_block_beats(2.0, 2.0);
    peers.audio.set_first_unplayed_tick(24);
    g.handle(Command::Regenerate { part: None });
    settle(&mut g);
    let after = notes(&g);
    assert_ne!(after, before, "Regenerate changed nothing");
    let heard =
        |bars: &BTreeMap<i64, Vec<Note>>| bars[&0].iter().filter(|n| n.start_tick < 24).copied().collect::<Vec<_>>();
    assert_eq!(heard(&after), heard(&before), "the part of bar 1 already heard changed");

    g.handle(Command::Undo);
    settle(&mut g);
    assert_eq!(notes(&g), before, "Undo");
    g.handle(Command::Redo);
    settle(&mut g);
    assert_eq!(notes(&g), after, "Redo");
}

#[test]
fn a_locked_part_keeps_its_notes_and_the_lock_is_saved() {
    let (mut g, _peers) = generator();
    settle(&mut g);
    let arp = |bars: &BTreeMap<i64, Vec<Note>>| -> Vec<Note> {
        bars.values().flatten().filter(|n| n.part == Part::Arp).copied().collect()
    };
    let before = notes(&g);
    g.handle(Command::SetLock { part: Part::Arp, locked: true });
    assert!(g.params.session.locked(Part::Arp), "the lock is not in the saved session");
    g.handle(Command::Regenerate { part: None });
    settle(&mut g);
    let after = notes(&g);
    assert_ne!(after, before);
    assert_eq!(arp(&after), arp(&before), "the locked arp changed");
}

#[test]
fn variations_make_takes_to_flip_through_and_keep_the_start() {
    let (mut g, peers) = generator();
    settle(&mut g);
    let before = notes(&g);
    g.handle(Command::Variations { part: None, count: 4 });
    let status = peers.editor.status();
    assert_eq!((status.variations, status.variation_shown), (5, 1));
    settle(&mut g);
    let first = notes(&g);
    assert_ne!(first, before);
    g.handle(Command::ShowVariation { index: 2 });
    settle(&mut g);
    assert_ne!(notes(&g), first, "takes 1 and 2 are the same");
    g.handle(Command::ShowVariation { index: 0 });
    settle(&mut g);
    assert_eq!(notes(&g), before, "take 0 is the phrase they started from");
}

#[test]
fn a_project_the_host_loads_is_adopted_without_regenerating() {
    let (mut a, _a_peers) = generator();
    a.handle(Command::Regenerate { part: None });
    settle(&mut a);
    let saved = a.params.session.read();

    let (mut b, b_peers) = generator();
    settle(&mut b);
    assert_ne!(notes(&b), notes(&a), "the two generators start from different phrases");
    published(&b_peers.audio);
    let epoch = b_peers.audio.epoch();
    PersistentField::set(&b.params.session, saved);
    settle(&mut b);
    assert_eq!(notes(&b), notes(&a), "the loaded phrase was not adopted as it is");
    assert!(b_peers.audio.epoch() > epoch, "the audio thread was not told to drop the old bars");
    let mut sent = published(&b_peers.audio);
    sent.sort();
    assert_eq!(sent, [0, 1, 2, 3]);
}

#[test]
fn a_loops_last_bar_ends_at_the_seam_unless_the_project_predates_the_rule() {
    let ends = |bar: &crate::link::BarNotes| bar.notes[..bar.len as usize].iter().map(Note::end_tick).max();
    let last_sent = |link: &AudioEnd| std::iter::from_fn(|| link.next_bar()).filter(|b| b.index == 3).last();
    let (mut a, a_peers) = generator();
    settle(&mut a);
    let rings = a.bars[&3].content.notes.iter().any(|n| n.end_tick() > TICKS_PER_BAR);
    assert!(rings, "the fake model's last bar has no note ringing past it: the test sees nothing");
    let sent = last_sent(&a_peers.audio).expect("bar 3 sent");
    assert!(ends(&sent).unwrap() <= TICKS_PER_BAR, "a note of the loop's last bar rings across the seam");
    assert_eq!(a.bars[&3].content.notes.len(), sent.len as usize, "no note is dropped");

    // The same phrase in a project saved before the rule plays as it did: ringing across.
    let mut old = a.params.session.read();
    old.ends_at_seam = false;
    let (mut b, b_peers) = generator();
    settle(&mut b);
    published(&b_peers.audio);
    PersistentField::set(&b.params.session, old);
    settle(&mut b);
    let sent = last_sent(&b_peers.audio).expect("bar 3 sent again");
    assert!(ends(&sent).unwrap() > TICKS_PER_BAR, "an old project's loop lost its ringing notes");
    assert!(!b.params.session.read().ends_at_seam, "the old project's rule is saved again as it was");
}

// ------------------------------------------------------------------------------------------------
// The model choice
// ------------------------------------------------------------------------------------------------

/// A folder of "model files" for the fake opener: a file holding a number is a fake model salted with
/// it; one holding `vocab:HASH` was trained on vocabulary HASH. Removed on drop.
struct ModelFiles(PathBuf);

impl ModelFiles {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "trio-unit-models-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        ModelFiles(dir)
    }

    fn add(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for ModelFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens the files of `ModelFiles` as fake models; the shipped `trio-base.onnx` is the plain fake.
fn fake_opener() -> ModelOpener {
    Arc::new(|path, provider| {
        if provider == Provider::Cuda {
            return Err(OpenError::Other("no CUDA in tests".into()));
        }
        if path.file_name().is_some_and(|n| n == resources::MODEL_FILE) {
            return Ok(Box::new(FakeModel::new()) as Box<dyn TokenModel + Send>);
        }
        let content = std::fs::read_to_string(path).map_err(|e| OpenError::NotFound(e.to_string()))?;
        if let Some(hash) = content.strip_prefix("vocab:") {
            return Err(OpenError::Vocabulary {
                model: path.display().to_string(),
                model_hash: hash.to_string(),
                plugin_hash: crate::music::vocab::vocab_hash(),
            });
        }
        let salt = content.trim().parse().map_err(|_| OpenError::Other("not a model".into()))?;
        Ok(Box::new(FakeModel::with_salt(salt)) as Box<dyn TokenModel + Send>)
    })
}

/// A generator that opens models through the fake opener, its user folder `files`; it starts with
/// the choice its parameters hold (the shipped model unless a test set another).
fn chooser(files: &ModelFiles, params: Arc<TrioParams>) -> (Generator, Peers) {
    let (audio, generator, editor) = crate::link::channel();
    audio.set_transport(Some(128.0));
    let member = Member::new(generator, params);
    let mut g = Generator::new(Group::unregistered(GroupKey::Solo(member.id), vec![member]));
    (g.opener, g.user_models) = (fake_opener(), Some(files.0.clone()));
    g.follow_model_choice(false);
    (g, Peers { audio, editor })
}

/// The saved session with bar 2 emptied: a phrase no model would make again as it is.
fn edited(mut session: PersistedSession) -> PersistedSession {
    let bar = session.bars.iter_mut().find(|b| b.index == 2).expect("bar 2 saved");
    (bar.notes, bar.tokens) = (Vec::new(), None);
    session
}

fn stored_notes(session: &PersistedSession) -> BTreeMap<i64, Vec<Note>> {
    session.bars.iter().map(|b| (b.index, b.notes.clone())).collect()
}

#[test]
fn a_chosen_model_takes_over_from_the_next_bar_and_the_bar_being_heard_stays() {
    let files = ModelFiles::new();
    let (mut g, peers) = chooser(&files, Arc::new(TrioParams::default()));
    settle(&mut g);
    let before = notes(&g);
    // The host plays bar 1 at its second beat, offline.
    peers.audio.set_playing(true);
    peers.audio.set_offline(true);
    peers.audio.set_block_beats(5.0, 5.0);
    peers.audio.set_first_unplayed_tick(TICKS_PER_BAR as i64 + 12);
    let mine = files.add("mine.onnx", "7");
    g.params.model.choose(ModelChoice::of_file(&mine));
    settle(&mut g);
    let after = notes(&g);
    assert_eq!(after[&1], before[&1], "the bar being heard changed");
    for bar in [0, 2, 3] {
        assert_ne!(after[&bar], before[&bar], "bar {bar} was not made again by the new model");
    }
    assert_eq!(peers.editor.status().model.as_deref(), Some("mine (fake-7)"));
    let saved = g.params.model.get();
    assert_eq!(saved.hash(), resources::model_hash(&mine).unwrap(), "the choice is saved with its content hash");
    assert!(g.params.session.read().model_id.starts_with("fake-7/"));
}

#[test]
fn a_model_of_another_vocabulary_is_refused_and_the_model_before_it_plays_on() {
    let files = ModelFiles::new();
    let (mut g, peers) = chooser(&files, Arc::new(TrioParams::default()));
    settle(&mut g);
    let before = notes(&g);
    let alien = files.add("alien.onnx", "vocab:0123456789abcdef");
    g.params.model.choose(ModelChoice::of_file(&alien));
    settle(&mut g);
    assert_eq!(notes(&g), before, "a refused model changed the phrase");
    let status = peers.editor.status();
    let Some(Problem::VocabularyMismatch { model, model_hash, plugin_hash }) = status.problem.clone() else {
        panic!("no vocabulary problem: {:?}", status.problem);
    };
    assert_eq!((model.as_str(), model_hash.as_str()), ("alien", "0123456789abcdef"));
    assert_eq!(plugin_hash, crate::music::vocab::vocab_hash());
    let text = status.problem.unwrap().to_string();
    assert!(text.contains("0123456789abcdef") && text.contains(&plugin_hash), "{text}");
    assert_eq!(g.params.model.get(), ModelChoice::Shipped, "the selector went back to the model that plays");
    assert_eq!(status.model.as_deref(), Some("unnamed"));
    g.handle(Command::Regenerate { part: None });
    settle(&mut g);
    assert_ne!(notes(&g), before, "the model before it no longer makes anything");
}

#[test]
fn a_project_is_adopted_with_its_model_and_its_bars_are_not_made_again() {
    let files = ModelFiles::new();
    let mine = files.add("mine.onnx", "7");
    let params = Arc::new(TrioParams::default());
    params.model.choose(ModelChoice::of_file(&mine));
    let (mut a, a_peers) = chooser(&files, params);
    settle(&mut a);
    assert_eq!(a_peers.editor.status().model.as_deref(), Some("mine (fake-7)"));
    let (choice, session) = (a.params.model.get(), edited(a.params.session.read()));

    let (mut b, b_peers) = chooser(&files, Arc::new(TrioParams::default()));
    settle(&mut b);
    // A host loads the project: the fields in the order nice-plug sets them ("model" before "session").
    PersistentField::set(&b.params.model, choice.clone());
    PersistentField::set(&b.params.session, session.clone());
    settle(&mut b);
    assert_eq!(notes(&b), stored_notes(&session), "the loaded phrase was made again");
    assert_eq!(b.params.model.get(), choice);
    assert_eq!(b_peers.editor.status().model.as_deref(), Some("mine (fake-7)"));
    assert_eq!(b_peers.editor.status().problem, None);
}

#[test]
fn a_project_whose_model_is_missing_plays_its_saved_phrase_and_says_so() {
    let files = ModelFiles::new();
    let mine = files.add("gone.onnx", "7");
    let params = Arc::new(TrioParams::default());
    params.model.choose(ModelChoice::of_file(&mine));
    let (mut a, _) = chooser(&files, params);
    settle(&mut a);
    let (choice, session) = (a.params.model.get(), edited(a.params.session.read()));
    std::fs::remove_file(&mine).unwrap();

    // Reopened: the project's state is there before the generator starts.
    let params = Arc::new(TrioParams::default());
    PersistentField::set(&params.model, choice.clone());
    PersistentField::set(&params.session, session.clone());
    let (mut b, peers) = chooser(&files, params);
    settle(&mut b);
    assert_eq!(notes(&b), stored_notes(&session), "the saved phrase does not play as saved");
    let mut sent = published(&peers.audio);
    sent.sort();
    assert_eq!(sent, [0, 1, 2, 3], "the saved bars were not all sent");
    let problem = peers.editor.status().problem.expect("the status says the model is missing");
    assert!(matches!(problem, Problem::ModelMissing(_)), "{problem:?}");
    let text = problem.to_string();
    assert!(text.contains("\"gone\"") && text.contains("missing"), "{text}");
    assert_eq!(b.params.model.get(), choice, "the project keeps its choice (the model may come back)");

    // Nothing new is made: not for a knob, not for Regenerate.
    crate::generator::group::tests::set_param(&b.params, "temperature", 0.1);
    b.handle(Command::Regenerate { part: None });
    settle(&mut b);
    assert_eq!(notes(&b), stored_notes(&session), "a missing model's phrase was made again");
    assert!(peers.audio.generator_failed(), "an offline block would wait for bars that never come");

    // Another model chosen: it plays, from the bar after the one being heard.
    b.params.model.choose(ModelChoice::Shipped);
    settle(&mut b);
    assert_ne!(notes(&b), stored_notes(&session));
    assert_eq!(peers.editor.status().problem, None);
    assert!(!peers.audio.generator_failed());
}

#[test]
fn a_model_file_that_changed_is_named_and_a_renamed_copy_is_found() {
    let files = ModelFiles::new();
    let mine = files.add("mine.onnx", "7");
    let params = Arc::new(TrioParams::default());
    params.model.choose(ModelChoice::of_file(&mine));
    let (mut a, _) = chooser(&files, params);
    settle(&mut a);
    let (choice, session) = (a.params.model.get(), a.params.session.read());
    let reopen = || {
        let params = Arc::new(TrioParams::default());
        PersistentField::set(&params.model, choice.clone());
        PersistentField::set(&params.session, session.clone());
        let (mut b, peers) = chooser(&files, params);
        settle(&mut b);
        peers.editor.status()
    };
    files.add("mine.onnx", "8");
    let problem = reopen().problem.expect("a changed file is not the project's model").to_string();
    assert!(problem.contains("mine.onnx") && problem.contains("content hash"), "{problem}");
    assert!(problem.contains(resources::short_hash(choice.hash())), "{problem}");
    files.add("mine-copy.onnx", "7");
    let status = reopen();
    assert_eq!((status.problem, status.model.as_deref()), (None, Some("mine (fake-7)")), "the copy was not found");
}

#[test]
fn the_model_choice_reads_any_saved_form_and_never_refuses_a_project() {
    let choices = [
        ModelChoice::Shipped,
        ModelChoice::User { name: "mine".into(), hash: "ab".repeat(32) },
        ModelChoice::File { path: "/somewhere/else.onnx".into(), name: "else".into(), hash: String::new() },
    ];
    for choice in choices {
        let json = serde_json::to_string(&choice).unwrap();
        assert_eq!(serde_json::from_str::<ModelChoice>(&json).unwrap(), choice, "{json}");
    }
    for garbage in ["[1,2]", "17", "null", "{\"kind\":\"cloud\"}", "{\"kind\":\"user\"}", "\"trio\""] {
        assert_eq!(serde_json::from_str::<ModelChoice>(garbage).unwrap(), ModelChoice::Shipped, "{garbage}");
    }
    // What `trio-render --model` writes: a path alone.
    let path_only: ModelChoice = serde_json::from_str("{\"path\":\"/m/mine.onnx\"}").unwrap();
    assert_eq!(path_only, ModelChoice::File { path: "/m/mine.onnx".into(), name: "mine".into(), hash: String::new() });
    // A state saved before there was a choice plays the shipped model.
    let mut fields = std::collections::BTreeMap::from([("session".to_string(), "{}".to_string())]);
    crate::persist::add_missing_model_field(&mut fields);
    assert_eq!(serde_json::from_str::<ModelChoice>(&fields["model"]).unwrap(), ModelChoice::Shipped);
    let store = crate::persist::ModelStore::default();
    let revision = store.revision();
    PersistentField::set(&store, ModelChoice::Shipped);
    assert_eq!(store.revision(), revision, "the same choice again is no change");
    PersistentField::set(&store, ModelChoice::User { name: "x".into(), hash: String::new() });
    assert_eq!((store.revision(), store.read().1), (revision + 1, true), "a load is a change, and says so");
}

#[test]
fn a_switch_at_a_bar_line_makes_the_same_bars_whichever_block_the_generator_saw_last() {
    let files = ModelFiles::new();
    let mine = files.add("mine.onnx", "9");
    let mut results = Vec::new();
    // Offline, the switch lands at bar 5's line; the generator may still see the block before it.
    for (start, end) in [(19.9, 20.0), (20.0, 20.1)] {
        let (mut g, peers) = chooser(&files, Arc::new(TrioParams::default()));
        settle(&mut g);
        peers.audio.set_playing(true);
        peers.audio.set_offline(true);
        peers.audio.set_block_beats(start, end);
        peers.audio.set_first_unplayed_tick(5 * TICKS_PER_BAR as i64);
        g.params.model.choose(ModelChoice::of_file(&mine));
        settle(&mut g);
        results.push(notes(&g));
    }
    assert_eq!(results[0], results[1], "the bars the new model made depend on the block the generator saw");
}

//! The generator driven by hand with a deterministic fake model: no ONNX Runtime, no thread.

use super::*;
use crate::generator::group::{GroupKey, Member};
use crate::generator::model::fake::FakeModel;
use crate::link::{AudioEnd, EditorEnd};
use crate::music::Note;
use nice_plug::params::persist::PersistentField;

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
    failing.open_models(fake_models(Some(150))).expect("fake models open");
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

//! The generator thread: owns the ONNX Runtime session and the sampler, keeps the bars ahead of
//! the playhead generated under the current parameters, and publishes them to the audio thread of
//! every member of its group (linked instances share one; an instance with Link Off has its own).

use super::compute::{Calibrations, ComputeChoice, Models, OpenModel, Workload};
use super::group::Group;
use super::jam::{first_difference, Jam, JamSettings, PLAYED_PART_DELAY_BARS};
use super::members::{HostView, Members};
use super::model::TokenModel;
use super::onnx::Provider;
use super::{composer, onnx, resources, sampler, settings};
use crate::link::{Command, PhraseSnapshot};
use crate::music::harmony::BarHarmony;
use crate::music::phrase::LOOKAHEAD_BARS;
use crate::music::vocab::{tempo_bin, Key, Mood};
use crate::music::Part;
use crate::music::{TICKS_PER_BAR, TICKS_PER_BEAT};
use crate::params::{Mode, TrioParams};
use crate::persist::{PersistedSession, StoredBar, MAX_STORED_BARS};
use composer::{
    bar_notes, generate_bar, generate_phrases, make_header, prefix_before_tick, BarPlan, BarRequest, PhrasePlan,
};
use onnx::OnnxModel;
use sampler::{Constraints, Rng};
use crate::params::Structure;
use settings::GenSettings;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most candidates one Variations request makes.
pub const MAX_VARIATIONS: usize = 8;
/// In real time, a regeneration keeps what will already have been heard by the time it lands: at
/// least this, and more when bars take longer to make (a slow machine, a busy core).
const REGENERATE_MARGIN_MS: f64 = 60.0;
const MAX_REGENERATE_MARGIN_MS: f64 = 400.0;

/// One bar: what plays, and the tokens that condition what follows.
#[derive(Clone)]
struct BarContent {
    tokens: Vec<u32>,
    /// Decoded from `tokens`, or as saved by a project made under another vocabulary.
    notes: Vec<crate::music::Note>,
}

impl BarContent {
    fn from_tokens(tokens: Vec<u32>) -> Self {
        let notes = bar_notes(&tokens);
        BarContent { tokens, notes }
    }

    /// A saved bar: its notes play as saved; its tokens are re-encoded when they were in another vocabulary.
    fn from_stored(bar: StoredBar) -> Self {
        let tokens = bar.tokens.unwrap_or_else(|| {
            let mut tokens = Vec::new();
            crate::music::tokens::encode_bar(&bar.notes, &[], &mut tokens);
            tokens
        });
        BarContent { tokens, notes: bar.notes }
    }
}

/// One generated bar and the parameter values it was made under.
struct GeneratedBar {
    content: BarContent,
    settings: GenSettings,
    /// The chords forced on it when it was made (None: the model's own).
    harmony: Option<BarHarmony>,
}

/// What the header was made from; a change re-makes it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HeaderInputs {
    tempo_bin: u8,
    key: Option<Key>,
    mood: Option<Mood>,
    seed: u32,
    variation: u32,
}

pub struct Generator {
    /// The audio threads served (one per member of the group) and the host as they hear it.
    members: Members,
    /// The parameters the group plays: those of the member whose settings changed last.
    params: Arc<TrioParams>,
    /// The host as the members heard it at the start of this step.
    host: HostView,
    model: Option<Models>,
    /// The Compute setting the models were opened under.
    compute: ComputeChoice,
    /// Model failures recovered from since the last bar that worked.
    recoveries: u32,
    /// "<model_version>/<vocab hash>", saved with the phrase.
    model_id: String,
    bars: BTreeMap<i64, GeneratedBar>,
    header: Option<([u32; 4], HeaderInputs)>,
    structure: Option<Structure>,
    variation: u32,
    locked: [bool; 3],
    /// Parts a Regenerate keeps (beside the locked ones), valid while `variation` is the one it made.
    keep_for_variation: Option<(u32, [bool; 3])>,
    /// Phrases before each Regenerate, for undo; and the ones undone, for redo.
    undo: Vec<Snapshot>,
    redo: Vec<Snapshot>,
    /// The last Variations' candidates (index 0: the phrase they started from), and the one playing.
    candidates: Vec<Snapshot>,
    candidate_shown: usize,
    /// Highest variation number handed out, so a Regenerate never repeats a candidate's dice.
    highest_variation: u32,
    /// What the player plays, and the chords each bar is made under.
    jam: Jam,
    /// The jam status last shown, so the editor's status is written only on a change.
    jam_shown: (Option<String>, Option<String>, bool),
    /// How long a bar takes to make lately (ms, a moving average): the margin a live regeneration leaves.
    bar_ms: f64,
    /// The phrase a new group's first member brought (a Link switched on mid-song), adopted like a load.
    inherited: Option<PersistedSession>,
}

/// A whole phrase, as undo/redo and the variations keep it.
#[derive(Clone)]
struct Snapshot {
    bars: BTreeMap<i64, BarContent>,
    header: Option<([u32; 4], HeaderInputs)>,
    variation: u32,
}

/// Undo depth.
const UNDO_LIMIT: usize = 32;
/// Failures in a row the generator recovers from before it gives up and says so.
const MAX_RECOVERIES: u32 = 3;

/// Starts a group's generator thread; it ends when the group's last member leaves.
pub fn spawn(group: Arc<Group>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("neural-trio-generator".into()).spawn(move || {
        let run = std::panic::AssertUnwindSafe(|| Generator::new(group.clone()).run());
        if let Err(panic) = std::panic::catch_unwind(run) {
            // A bug, not bad input: the members go silent (offline blocks stop waiting) and say so.
            let what =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            let problem = format!(
                "The generator stopped unexpectedly ({}); reopen the project to restart it.",
                what.unwrap_or_default()
            );
            nice_plug::nice_log!("Neural Trio: {problem}");
            for member in group.members() {
                member.link.update_status(|s| s.problem = Some(problem.clone()));
                member.link.set_failed(true);
            }
        }
    })
}

impl Generator {
    pub fn new(group: Arc<Group>) -> Self {
        let mut members = Members::new(group);
        members.sync(spawn, false);
        let params = members.source_params();
        let host = members.host();
        let inherited = members.first_phrase();
        Generator {
            members,
            params,
            host,
            model: None,
            compute: ComputeChoice::Cpu,
            recoveries: 0,
            model_id: String::new(),
            bars: BTreeMap::new(),
            header: None,
            structure: None,
            variation: 0,
            locked: [false; 3],
            keep_for_variation: None,
            undo: Vec::new(),
            redo: Vec::new(),
            candidates: Vec::new(),
            candidate_shown: 0,
            highest_variation: 0,
            jam: Jam::default(),
            jam_shown: (None, None, false),
            bar_ms: 0.0,
            inherited,
        }
    }

    fn run(&mut self) {
        let library = resources::find(resources::ORT_LIBRARY);
        let model_path = resources::find(resources::MODEL_FILE);
        let open: OpenModel = Box::new(move |provider| {
            OnnxModel::load(&library, &model_path, 1, provider).map(|m| Box::new(m) as Box<dyn TokenModel + Send>)
        });
        match self.open_models(open) {
            Ok(()) => self.members.set_ready(true),
            Err(problem) => {
                nice_plug::nice_log!("Neural Trio stays silent: {problem}");
                self.members.update_status(|s| s.problem = Some(problem.clone()));
                self.members.set_failed();
            }
        }
        while !self.members.is_closed() {
            if let Some(command) = self.members.next_command() {
                self.handle(command);
            }
            let worked = match self.model {
                Some(_) => self.step(),
                None => {
                    // No model: newcomers still hear why.
                    self.members.sync(spawn, false);
                    false
                }
            };
            self.members.set_idle(!worked);
            if !worked {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Regenerate { part } => {
                self.push_undo();
                self.variation = self.next_variation();
                let keep = match part {
                    Some(only) => Part::ALL.map(|p| p != only),
                    None => [false; 3],
                };
                self.keep_for_variation = Some((self.variation, keep));
            }
            Command::Variations { part, count } => {
                if let Err(e) = self.make_variations(part, count.clamp(1, MAX_VARIATIONS)) {
                    self.fail(e);
                }
            }
            Command::ShowVariation { index } => {
                if let Some(candidate) = self.candidates.get(index).cloned() {
                    self.restore(candidate);
                    self.candidate_shown = index;
                }
            }
            Command::SetLock { part, locked } => {
                self.locked[part.index()] = locked;
                self.store_session(self.params.gen_settings(self.variation));
            }
            Command::Undo => {
                if let Some(previous) = self.undo.pop() {
                    self.candidates.clear();
                    let current = self.snapshot();
                    self.redo.push(current);
                    self.restore(previous);
                }
            }
            Command::Redo => {
                if let Some(next) = self.redo.pop() {
                    self.candidates.clear();
                    let current = self.snapshot();
                    self.undo.push(current);
                    self.restore(next);
                }
            }
        }
        self.report_history();
    }

    fn report_history(&mut self) {
        let (can_undo, can_redo) = (!self.undo.is_empty(), !self.redo.is_empty());
        let (variations, shown) = (self.candidates.len(), self.candidate_shown);
        self.members.update_status(|s| {
            s.can_undo = can_undo;
            s.can_redo = can_redo;
            s.variations = variations;
            s.variation_shown = shown;
        });
    }

    /// Keeps the phrase as it is now for Undo; a new change forgets what was undone and the old
    /// candidates.
    fn push_undo(&mut self) {
        let snapshot = self.snapshot();
        self.undo.push(snapshot);
        if self.undo.len() > UNDO_LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
        self.candidates.clear();
    }

    fn next_variation(&mut self) -> u32 {
        self.highest_variation = self.highest_variation.max(self.variation).wrapping_add(1);
        self.highest_variation
    }

    /// `count` new takes of the loop, sampled as one batch, each with its own dice; kept parts
    /// (locked, or all but `part`) stay as they are. The first new take plays.
    fn make_variations(&mut self, part: Option<Part>, count: usize) -> Result<(), String> {
        let started = Instant::now();
        // Endless has no phrase to take again (the editor offers no button there); no header yet
        // means no phrase yet.
        let (Some(length), Some(header)) = (self.structure.and_then(|s| s.loop_length()), self.header.map(|h| h.0))
        else {
            return Ok(());
        };
        let settings = self.params.gen_settings(self.variation);
        let kept = Part::ALL.map(|p| self.locked[p.index()] || part.is_some_and(|only| only != p));
        let constraints = constraints_for(&settings, kept);
        let jam_settings = self.jam_settings();
        let forced: Vec<Vec<crate::music::Note>> =
            (0..length as i64).map(|index| self.kept_notes(index, kept)).collect();
        let variations: Vec<u32> = (0..count).map(|_| self.next_variation()).collect();
        let plans: Vec<PhrasePlan> = variations
            .iter()
            .map(|&variation| PhrasePlan {
                bars: (0..length as i64)
                    .map(|index| BarPlan {
                        forced_notes: forced[index as usize].clone(),
                        harmony: self.jam.harmony(index, &jam_settings),
                        rng: Rng::for_bar(settings.seed, index, variation),
                    })
                    .collect(),
                constraints,
            })
            .collect();
        let models = self.model.as_mut().ok_or("no model")?;
        let phrases = match generate_phrases(models.get(Workload::Batch), header, &plans) {
            Ok(phrases) => phrases,
            Err(e) => {
                // The takes are made again on whatever the recovery leaves (the CPU after a GPU failure).
                models.recover(Workload::Batch, &e)?;
                self.report_compute();
                let models = self.model.as_mut().ok_or("no model")?;
                generate_phrases(models.get(Workload::Batch), header, &plans)?
            }
        };

        self.push_undo();
        let original = self.snapshot();
        self.candidates = std::iter::once(original)
            .chain(variations.iter().zip(phrases).map(|(&variation, bars)| {
                Snapshot {
                    bars: bars
                        .into_iter()
                        .enumerate()
                        .map(|(i, tokens)| (i as i64, BarContent::from_tokens(tokens)))
                        .collect(),
                    // The takes share the phrase's header (key, mood): it counts as made for their variation.
                    header: self.header.map(|(tokens, inputs)| (tokens, HeaderInputs { variation, ..inputs })),
                    variation,
                }
            }))
            .collect();
        let first = self.candidates[1].clone();
        self.restore(first);
        self.candidate_shown = 1;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.members.update_status(|s| s.variations_ms = ms);
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            bars: self.bars.iter().map(|(&i, b)| (i, b.content.clone())).collect(),
            header: self.header,
            variation: self.variation,
        }
    }

    /// Puts a phrase back as it was; its bars count as made under the current parameters.
    fn restore(&mut self, snapshot: Snapshot) {
        self.variation = snapshot.variation;
        self.keep_for_variation = None;
        self.header = snapshot.header;
        let settings = self.params.gen_settings(self.variation);
        // The phrase plays as it was, under the chords forced now (nothing is made again for them).
        let jam_settings = self.jam_settings();
        self.bars = snapshot
            .bars
            .into_iter()
            .map(|(i, content)| {
                let harmony = self.jam.harmony(i, &jam_settings);
                (i, GeneratedBar { content, settings, harmony })
            })
            .collect();
        self.new_epoch();
        self.store_session(settings);
    }

    /// Parts whose notes a regeneration keeps: the locked ones, plus those a part-Regenerate spares.
    fn kept_parts(&self, settings: &GenSettings) -> [bool; 3] {
        let spared = match self.keep_for_variation {
            Some((variation, keep)) if variation == settings.variation => keep,
            _ => [false; 3],
        };
        Part::ALL.map(|p| self.locked[p.index()] || spared[p.index()])
    }

    /// The notes of the `kept` parts in bar `index` as it stands: what a new take must keep.
    fn kept_notes(&self, index: i64, kept: [bool; 3]) -> Vec<crate::music::Note> {
        match self.bars.get(&index) {
            Some(bar) => bar.content.notes.iter().copied().filter(|n| kept[n.part.index()]).collect(),
            None => Vec::new(),
        }
    }

    /// Adopts a session the host just loaded (into any member).
    fn adopt_loaded_session(&mut self) {
        let (loaded, inherited) = (self.members.take_loaded(), self.inherited.take());
        let Some(session) = loaded.or(inherited) else { return };
        // A host that applies the state the generator already plays, or an earlier snapshot of it (some
        // save and load again and again while bars are being made), changes nothing: the bars it has
        // are ours, and the ones it lacks would be made again note for note. No new epoch, nothing for
        // the audio thread to wait for.
        let playing = self.session(self.params.gen_settings(self.variation));
        let ours = (session.variation, session.locked, session.header)
            == (playing.variation, playing.locked, playing.header)
            && session.bars.iter().all(|bar| playing.bars.iter().any(|b| b == bar));
        if ours {
            return;
        }
        // What a save returns from now on (in every member), byte for byte what was loaded.
        self.members.store_session(&session);
        // Linked members' knobs may differ: the one whose knobs made the loaded phrase leads.
        let made_it = |p: &TrioParams| session.settings == Some(p.gen_settings(session.variation));
        self.members.lead_after_load(made_it);
        self.params = self.members.source_params();
        self.variation = session.variation;
        self.highest_variation = self.highest_variation.max(session.variation);
        self.candidates.clear();
        self.locked = session.locked;
        self.bars.clear();
        let settings = session.settings.unwrap_or_else(|| self.params.gen_settings(self.variation));
        // The loaded project's progression is its bars' harmony: they play as saved.
        self.jam.set_progression_text(self.members.progression());
        let jam_settings = self.jam_settings();
        for bar in session.bars {
            let harmony = self.jam.harmony(bar.index, &jam_settings);
            self.bars.insert(bar.index, GeneratedBar { content: BarContent::from_stored(bar), settings, harmony });
        }
        if let Some(header) = session.header {
            let inputs = self.header_inputs(&settings);
            self.header = Some((header, inputs));
        }
        self.new_epoch();
        self.share_phrase();
    }

    fn new_epoch(&mut self) {
        self.members.new_epoch();
    }

    fn header_inputs(&self, settings: &GenSettings) -> HeaderInputs {
        HeaderInputs {
            tempo_bin: tempo_bin(self.host.tempo_bpm as f32),
            key: settings.key(),
            mood: settings.mood(),
            seed: settings.seed,
            variation: settings.variation,
        }
    }

    /// One unit of work; false when there was nothing to do.
    fn step(&mut self) -> bool {
        if self.members.sync(spawn, self.header.is_some()) {
            // A newcomer starts with a new epoch of its own and gets every bar; the editor, the phrase.
            self.share_phrase();
        }
        self.params = self.members.source_params();
        // The revisions first, then what was played and where: bars published under them have heard
        // it all, and a member that plays on meanwhile waits for them.
        self.members.read_revisions();
        self.host = self.members.host();
        self.adopt_loaded_session();
        self.follow_compute_setting();
        let switches = self.members.switches();
        for _ in 0..switches.regenerate_presses {
            self.handle(Command::Regenerate { part: None });
        }
        let jam_settings = self.follow_jam(switches.capture);
        if !self.host.has_transport {
            // The phrase is conditioned on the host's tempo: wait until a block has told us what it is,
            // or the same project would render differently depending on how soon the host processes.
            return false;
        }
        let settings = self.params.gen_settings(self.variation);
        let structure = self.params.structure();

        if let Some(old) = self.structure {
            let endless_changed = (old.mode == Mode::Endless) != (structure.mode == Mode::Endless);
            if endless_changed {
                self.bars.clear();
                self.candidates.clear();
                self.report_history();
                self.new_epoch();
            } else if let Some(length) = structure.loop_length() {
                self.bars.retain(|&index, _| index < length as i64);
            }
        }
        self.structure = Some(structure);

        let inputs = self.header_inputs(&settings);
        let header_stale = match &self.header {
            Some((_, made)) => HeaderInputs { tempo_bin: inputs.tempo_bin, ..*made } != inputs,
            None => true,
        };
        if header_stale && (structure.mode != Mode::Hold || self.header.is_none()) {
            self.busy();
            let model = self.model.as_mut().expect("step runs with a model").get(Workload::Stream);
            let mut rng = Rng::for_bar(settings.seed, -1, settings.variation);
            match make_header(model, inputs.tempo_bin, inputs.key, inputs.mood, &mut rng) {
                Ok(header) => self.header = Some((header, inputs)),
                Err(e) => return self.model_failed(Workload::Stream, e),
            }
            return true;
        }

        let playhead_beats = self.host.playhead_beats.max(0.0);
        let host_bar = (playhead_beats / 4.0).floor() as i64;
        // After a jump an audio thread's table may hold other bars in these bars' slots (Endless).
        self.members.follow_discontinuities(structure.mode == Mode::Endless);
        let targets: Vec<i64> = match structure.loop_length() {
            Some(length) => (0..length as i64).map(|i| structure.phrase_bar(host_bar + i)).collect(),
            None => {
                // Far enough for the widest block the host sends, and for the bar an offline block awaits.
                let block_end_bar = (self.host.block_end_beats / 4.0).floor() as i64;
                let awaited_bar = self.host.waiting_for_bar;
                let last = (host_bar + LOOKAHEAD_BARS).max(block_end_bar + 1).max(awaited_bar);
                (host_bar..=last.min(host_bar + MAX_STORED_BARS as i64 / 2)).collect()
            }
        };
        if structure.mode == Mode::Endless {
            self.bars.retain(|&index, _| index >= host_bar - MAX_STORED_BARS as i64 / 2);
        }

        for (order, &index) in targets.iter().enumerate() {
            let harmony = self.jam.harmony(index, &jam_settings);
            let action = match self.bars.get(&index) {
                None => Some(None),
                Some(bar) if (bar.settings != settings || bar.harmony != harmony) && structure.mode != Mode::Hold => {
                    // Under new chords the bar changes from where they differ; under new settings from
                    // its start. The bar under the playhead keeps what has been (or is about to be) heard.
                    let harmony_cut = match bar.settings == settings {
                        true => first_difference(bar.harmony.as_ref(), harmony.as_ref()),
                        false => 0,
                    };
                    let heard_cut = if order == 0 && self.host.playing {
                        // Offline, the block at the playhead waits for this bar and has not played; live,
                        // the last block has played to its end, and a margin more is about to be heard.
                        let tick = if self.host.offline {
                            // The first tick some member has not played, as its audio thread counts it.
                            self.host.first_unplayed_tick
                        } else {
                            let margin_ms =
                                (1.5 * self.bar_ms + 10.0).clamp(REGENERATE_MARGIN_MS, MAX_REGENERATE_MARGIN_MS);
                            let margin_beats = margin_ms / 1000.0 * self.host.tempo_bpm / 60.0;
                            let heard = self.host.block_end_beats.max(playhead_beats + margin_beats);
                            (heard * TICKS_PER_BEAT as f64 - 1e-6).ceil() as i64
                        };
                        (tick - host_bar * TICKS_PER_BAR as i64).clamp(0, TICKS_PER_BAR as i64) as u32
                    } else {
                        0
                    };
                    let cut = harmony_cut.max(heard_cut);
                    Some(Some((prefix_before_tick(&bar.content.tokens, cut), cut)))
                }
                Some(_) if self.members.needs(index) => {
                    self.busy();
                    self.publish(index);
                    return true;
                }
                Some(_) => None,
            };
            if let Some(prefix) = action {
                self.busy();
                let started = Instant::now();
                if let Err(e) = self.generate(index, prefix, &settings, harmony, structure) {
                    return self.model_failed(Workload::Stream, e);
                }
                self.recoveries = 0;
                self.publish(index);
                self.report_speed(started);
                self.store_session(settings);
                return true;
            }
        }
        false
    }

    fn generate(
        &mut self,
        index: i64,
        heard: Option<(Vec<u32>, u32)>,
        settings: &GenSettings,
        harmony: Option<BarHarmony>,
        structure: Structure,
    ) -> Result<(), String> {
        let header = self.header.as_ref().map(|h| h.0).ok_or("no header")?;
        let history_range = match structure.loop_length() {
            Some(_) => 0..index,
            None => (index - 16)..index,
        };
        // In Endless mode the model hears a part the player plays in the bars it was played in (those
        // far enough back to be over: what it hears never depends on when a bar was made).
        let followed = self.params.follow.value().part().filter(|_| structure.loop_length().is_none());
        let heard_played: BTreeMap<i64, Vec<u32>> = match followed {
            Some(part) => history_range
                .clone()
                .filter(|&i| i <= index - PLAYED_PART_DELAY_BARS)
                .filter_map(|i| Some((i, self.bars.get(&i)?, self.jam.played_part(i)?)))
                .map(|(i, bar, played)| (i, with_played_part(&bar.content, part, played)))
                .collect(),
            None => BTreeMap::new(),
        };
        // Only the unbroken run of bars right before this one is context.
        let mut history: Vec<&[u32]> = Vec::new();
        for i in history_range.rev() {
            match self.bars.get(&i) {
                Some(bar) => history.push(heard_played.get(&i).map_or(&bar.content.tokens, |t| t)),
                None => break,
            }
        }
        history.reverse();
        let kept = self.kept_parts(settings);
        let constraints = constraints_for(settings, kept);
        let forced_notes = self.kept_notes(index, kept);
        let (prefix, resume_tick) = heard.unwrap_or_else(|| (vec![crate::music::vocab::Token::Bar.id()], 0));
        let request = BarRequest {
            header,
            history_first_bar: index - history.len() as i64,
            history: &history,
            forced_prefix: &prefix,
            resume_tick,
            forced_notes: &forced_notes,
            harmony: harmony.as_ref(),
            constraints,
            rng: Rng::for_bar(settings.seed, index, settings.variation),
        };
        let model = self.model.as_mut().ok_or("no model")?.get(Workload::Stream);
        let tokens = generate_bar(model, request)?;
        let content = BarContent::from_tokens(tokens);
        self.bars.insert(index, GeneratedBar { content, settings: *settings, harmony });
        self.members.unpublish(index);
        Ok(())
    }

    fn publish(&mut self, index: i64) {
        let Some(bar) = self.bars.get(&index) else { return };
        if !self.members.publish(index, &bar.content.notes) {
            // An audio thread is not draining (not processing): try again shortly.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn report_speed(&mut self, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        self.bar_ms = if self.bar_ms == 0.0 { seconds * 1e3 } else { 0.8 * self.bar_ms + 0.2 * seconds * 1e3 };
        let tempo = self.host.tempo_bpm.max(1.0);
        let bar_seconds = 4.0 * 60.0 / tempo;
        let lookahead = self.bars.len() as f64;
        self.members.update_status(|s| {
            s.speed_x_realtime = bar_seconds / seconds.max(1e-6);
            s.lookahead_bars = lookahead;
        });
    }

    /// Writes the bars to the persisted session (what a project save of any member will hold).
    fn store_session(&mut self, settings: GenSettings) {
        let session = self.session(settings);
        self.members.store_session(&session);
        self.share_phrase();
    }

    /// The phrase as a project saves it.
    fn session(&self, settings: GenSettings) -> PersistedSession {
        let model_id = self.model_id.clone();
        let first = self.bars.keys().rev().nth(MAX_STORED_BARS - 1).copied().unwrap_or(i64::MIN);
        let bars = self
            .bars
            .iter()
            .filter(|(&i, _)| i >= first)
            .map(|(&index, bar)| StoredBar {
                index,
                notes: bar.content.notes.clone(),
                tokens: Some(bar.content.tokens.clone()),
            })
            .collect();
        PersistedSession {
            model_id,
            variation: self.variation,
            locked: self.locked,
            header: self.header.map(|h| h.0),
            settings: Some(settings),
            bars,
        }
    }

    /// Hands the editors a copy of the bars.
    fn share_phrase(&mut self) {
        let bars = self.bars.iter().map(|(&i, bar)| (i, bar.content.notes.clone())).collect();
        let chords = self
            .bars
            .iter()
            .flat_map(|(&i, bar)| {
                let forced_from = bar.harmony.as_ref().map_or(u32::MAX, |h| h.from_tick);
                composer::bar_chords(&bar.content.tokens).into_iter().map(move |c| {
                    (i, c.start_tick, crate::music::harmony::chord_symbol(c.chord), c.start_tick >= forced_from)
                })
            })
            .collect();
        self.members.share_phrase(PhraseSnapshot { bars, chords });
    }

    fn jam_settings(&self) -> JamSettings {
        JamSettings {
            follow: self.params.follow.value(),
            key_lock: self.params.gen_settings(self.variation).key(),
            loop_bars: self.params.structure().loop_length(),
        }
    }

    /// Hears what was played since the last step, follows Capture (switched in any member) and the
    /// typed progression, and tells the editors what was understood.
    fn follow_jam(&mut self, capture: Option<bool>) -> JamSettings {
        let settings = self.jam_settings();
        self.jam.set_progression_text(self.members.progression());
        let jam = &mut self.jam;
        self.members.played_notes(|note| jam.hear(note, &settings));
        let HostView { playing, pass, playhead_beats, block_end_beats, .. } = self.host;
        match capture {
            Some(true) => self.jam.arm_capture(&settings, playhead_beats, playing),
            Some(false) => self.jam.cancel_capture(),
            None => {}
        }
        self.jam.follow(&settings, block_end_beats, pass, playhead_beats);
        if let Some(captured) = self.jam.take_captured() {
            self.members.set_progression(captured);
        }
        self.members.set_capture_armed(self.jam.capturing());
        let shown = (self.jam.status(&settings, playing), self.jam.key_text(&settings), self.jam.capturing());
        if shown != self.jam_shown {
            self.jam_shown = shown.clone();
            self.members.update_status(|s| (s.follow, s.key, s.capturing) = shown.clone());
        }
        settings
    }

    /// Opens the model on the CPU (the model's identity and the load time come from there), then on
    /// whatever else the Compute setting asks for.
    fn open_models(&mut self, mut open: OpenModel) -> Result<(), String> {
        let cpu = open(Provider::Cpu)?;
        let info = onnx_info(cpu.as_ref());
        self.compute = self.params.compute_choice();
        let mut calibrations = Calibrations::load();
        let models = Models::open(open, cpu, self.compute, &info.0, &mut calibrations)?;
        self.model_id = info.0;
        self.members.update_status(|s| {
            s.model = Some(info.1.clone());
            s.problem = None;
        });
        self.model = Some(models);
        self.report_compute();
        Ok(())
    }

    /// The Compute setting changed: the GPU model is opened or dropped (the CPU model stays).
    fn follow_compute_setting(&mut self) {
        let choice = self.params.compute_choice();
        if choice == self.compute {
            return;
        }
        self.compute = choice;
        let key = self.model_id.clone();
        if let Some(models) = self.model.as_mut() {
            if let Err(e) = models.choose_compute(choice, &key, &mut Calibrations::load()) {
                models.note = Some(e);
            }
        }
        self.report_compute();
    }

    fn report_compute(&mut self) {
        let Some(models) = &self.model else { return };
        let (provider, note) = (models.describe(), models.note.clone());
        self.members.update_status(|s| {
            s.provider = Some(provider.clone());
            s.compute_note = note.clone();
        });
    }

    /// A model step failed: the GPU hands over to the CPU, or the CPU session is opened anew, and the
    /// next step makes the same bar again (same dice, same notes). Repeated failures stop generation.
    fn model_failed(&mut self, workload: Workload, error: String) -> bool {
        self.recoveries += 1;
        let recovered = self.recoveries <= MAX_RECOVERIES
            && self.model.as_mut().is_some_and(|models| models.recover(workload, &error).is_ok());
        if !recovered {
            // Given up: an offline block must not wait for bars that will not come.
            self.members.set_failed();
            return self.fail(error);
        }
        nice_plug::nice_log!("Neural Trio: {error}; recovered");
        self.report_compute();
        true
    }

    /// Tells a waiting audio thread that a bar is being made (the idle flag is otherwise only updated
    /// after a step, which may take 100 ms).
    fn busy(&self) {
        self.members.set_idle(false);
    }

    fn fail(&mut self, problem: String) -> bool {
        nice_plug::nice_log!("Neural Trio generator error: {problem}");
        self.members.update_status(|s| s.problem = Some(problem.clone()));
        std::thread::sleep(Duration::from_millis(50));
        false
    }
}

/// A bar's tokens with `part` replaced by what the player played.
fn with_played_part(content: &BarContent, part: Part, played: &[crate::music::Note]) -> Vec<u32> {
    let mut notes: Vec<crate::music::Note> = content.notes.iter().filter(|n| n.part != part).copied().collect();
    notes.extend(played.iter().filter(|n| n.start_tick < TICKS_PER_BAR));
    let chords = composer::bar_chords(&content.tokens);
    let mut tokens = Vec::new();
    crate::music::tokens::encode_bar(&notes, &chords, &mut tokens);
    tokens
}

/// The model's identity for saved phrases and its name for the status line ("unnamed" for a stand-in).
fn onnx_info(model: &dyn TokenModel) -> (String, String) {
    model.identity().unwrap_or_else(|| ("unnamed".into(), "unnamed".into()))
}

/// What the controls allow a new bar, with the `kept` parts written by no one but themselves.
fn constraints_for(settings: &GenSettings, kept: [bool; 3]) -> Constraints {
    Constraints {
        temperature: settings.temperature,
        top_p: settings.top_p,
        parts_allowed: Part::ALL.map(|p| settings.parts_on[p.index()] && !kept[p.index()]),
        registers: settings.registers,
        scale_mask: settings.key().map(|k| k.scale_mask()).unwrap_or(0x0fff),
        chord_tones: 0,
    }
}

#[cfg(test)]
mod tests {
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
        let heard = |bars: &BTreeMap<i64, Vec<Note>>| {
            bars[&0].iter().filter(|n| n.start_tick < 24).copied().collect::<Vec<_>>()
        };
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
}

//! The generator thread: owns the ONNX Runtime session and the sampler, keeps the bars ahead of
//! the playhead generated under the current parameters, and publishes them to the audio thread of
//! every member of its group (linked instances share one; an instance with Link Off has its own).

use super::compute::{Calibrations, ComputeChoice, Models, OpenModel, Workload};
use super::group::Group;
use super::jam::{first_difference, Jam, JamSettings, PLAYED_PART_DELAY_BARS};
use super::members::{HostView, Members};
use super::model::{OpenError, TokenModel};
use super::onnx::Provider;
use super::resources::ModelChoice;
use super::{composer, onnx, resources, sampler, settings};
use crate::link::{Command, PhraseSnapshot, Problem};
use crate::music::controls::Style;
use crate::music::harmony::BarHarmony;
use crate::music::phrase::LOOKAHEAD_BARS;
use crate::music::tokens::HEADER_LENGTH;
use crate::music::vocab::{tempo_bin, Key, Mood};
use crate::music::Part;
use crate::music::{TICKS_PER_BAR, TICKS_PER_BEAT};
use crate::params::Structure;
use crate::params::{Mode, TrioParams};
use crate::persist::{PersistedSession, StoredBar, MAX_STORED_BARS};
use composer::{
    bar_notes, generate_bar, generate_phrases, make_header, parts_owed, prefix_before_tick, BarPlan, BarRequest,
    PhrasePlan,
};
use onnx::OnnxModel;
use sampler::{Constraints, Rng};
use settings::GenSettings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod choice;
mod history;
use history::Snapshot;
mod session;
mod status;
#[cfg(test)]
mod tests;

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
    /// The model it counts as made by (`Generator::model_serial`): a bar of an older one is made
    /// again by the model chosen since.
    model: u32,
    /// The chords forced on it when it was made (None: the model's own).
    harmony: Option<BarHarmony>,
}

/// What the header was made from; a change re-makes it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HeaderInputs {
    tempo_bin: u8,
    key: Option<Key>,
    mood: Option<Mood>,
    style: Style,
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
    /// Opens a model file on a provider (ONNX Runtime; a fake in tests).
    opener: ModelOpener,
    /// The user's models folder, where a project's model is looked for by name.
    user_models: Option<PathBuf>,
    /// The model choice that plays (or, `held`, that a project asked for and cannot play); None
    /// before the first was opened.
    choice: Option<ModelChoice>,
    /// Counts the models that played: bars made by an older one are made again.
    model_serial: u32,
    /// The host bar from which the model chosen last took over.
    remake_from: i64,
    /// The project's model cannot play (missing, changed, another vocabulary): its bars play on, and
    /// nothing new is made until another model is chosen.
    held: bool,
    /// The last step found every bar around the playhead made and sent.
    everything_sent: bool,
    /// The Compute setting the models were opened under.
    compute: ComputeChoice,
    /// Model failures recovered from since the last bar that worked.
    recoveries: u32,
    /// "<model_version>/<vocab hash>", saved with the phrase.
    model_id: String,
    bars: BTreeMap<i64, GeneratedBar>,
    header: Option<([u32; HEADER_LENGTH], HeaderInputs)>,
    structure: Option<Structure>,
    variation: u32,
    locked: [bool; 3],
    /// A loop's last bar ends its notes at the loop's end, so every pass sounds the same. A project
    /// saved before this rule keeps its ringing seam (the saved session says which).
    ends_at_seam: bool,
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

/// Opens a model file on a provider, with the reason by kind when it cannot.
pub type ModelOpener = Arc<dyn Fn(&Path, Provider) -> Result<Box<dyn TokenModel + Send>, OpenError> + Send + Sync>;

/// Models through ONNX Runtime, loaded from beside the plugin.
fn onnx_opener() -> ModelOpener {
    let library = resources::find(resources::ORT_LIBRARY);
    Arc::new(move |path, provider| {
        OnnxModel::open(&library, path, 1, provider).map(|m| Box::new(m) as Box<dyn TokenModel + Send>)
    })
}

/// Starts a group's generator thread; it ends when the group's last member leaves.
pub fn spawn(group: Arc<Group>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("neural-trio-generator".into()).spawn(move || {
        let run = std::panic::AssertUnwindSafe(|| Generator::new(group.clone()).run());
        if let Err(panic) = std::panic::catch_unwind(run) {
            // A bug, not bad input: the members go silent (offline blocks stop waiting) and say so.
            let what =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            let problem = Problem::GeneratorStopped(what.unwrap_or_default());
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
            opener: onnx_opener(),
            user_models: resources::user_models_dir(),
            choice: None,
            model_serial: 0,
            remake_from: 0,
            held: false,
            everything_sent: false,
            compute: ComputeChoice::Cpu,
            recoveries: 0,
            model_id: String::new(),
            bars: BTreeMap::new(),
            header: None,
            structure: None,
            variation: 0,
            locked: [false; 3],
            ends_at_seam: true,
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
        // The model the project (or the first member) chose; the shipped one by default.
        self.follow_model_choice(false);
        while !self.members.is_closed() {
            if let Some(command) = self.members.next_command() {
                self.handle(command);
            }
            let worked = match self.model.is_some() || self.held {
                true => self.step(),
                false => {
                    // No model: newcomers still hear why, and another choice is tried.
                    self.members.sync(spawn, false);
                    self.members.read_revisions();
                    self.follow_model_choice(false);
                    false
                }
            };
            self.members.set_idle(!worked);
            if !worked {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
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

    fn new_epoch(&mut self) {
        self.members.new_epoch();
    }

    fn header_inputs(&self, settings: &GenSettings) -> HeaderInputs {
        HeaderInputs {
            tempo_bin: tempo_bin(self.host.tempo_bpm as f32),
            key: settings.key(),
            mood: settings.mood(),
            style: settings.style,
            seed: settings.seed,
            variation: settings.variation,
        }
    }

    /// One unit of work; false when there was nothing to do.
    fn step(&mut self) -> bool {
        self.everything_sent = false;
        let worked = self.work();
        // Held on a missing model with every bar sent: an Offline block has nothing to wait for.
        self.members.set_nothing_coming(self.held && self.everything_sent);
        worked
    }

    fn work(&mut self) -> bool {
        if self.members.sync(spawn, self.header.is_some()) {
            // A newcomer starts with a new epoch of its own and gets every bar; the editor, the phrase.
            self.share_phrase();
        }
        self.params = self.members.source_params();
        // The revisions first, then what was played and where: bars published under them have heard
        // it all, and a member that plays on meanwhile waits for them.
        self.members.read_revisions();
        self.host = self.members.host();
        let adopted = self.adopt_loaded_session();
        // After the revisions: bars published under them are made by the model chosen by then.
        self.follow_model_choice(adopted);
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
        // Held on a project's missing model, the bars there are sent and nothing new is made.
        let making = self.model.is_some() && !self.held;

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
        if making && header_stale && (structure.mode != Mode::Hold || self.header.is_none()) {
            self.busy();
            let model = self.model.as_mut().expect("step runs with a model").get(Workload::Stream);
            let mut rng = Rng::for_bar(settings.seed, -1, settings.variation);
            match make_header(model, inputs.tempo_bin, inputs.key, inputs.mood, inputs.style, &mut rng) {
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
        // Bars of the model before the one chosen are made again by it, from their start, in the
        // order they will be heard from the bar where it took over: the same order however the host's
        // blocks fall, so a bounce with a switch is the same every time.
        if making && structure.mode != Mode::Hold {
            if let Some(index) = self.next_stale_bar(structure) {
                let harmony = self.jam.harmony(index, &jam_settings);
                return self.make_bar(index, None, &settings, harmony, structure);
            }
        }

        for (order, &index) in targets.iter().enumerate() {
            let harmony = self.jam.harmony(index, &jam_settings);
            let action = match self.bars.get(&index) {
                None if making => Some(None),
                Some(bar)
                    if making
                        && (bar.settings != settings || bar.harmony != harmony)
                        && structure.mode != Mode::Hold =>
                {
                    // Under new chords the bar changes from where they differ; under new settings from
                    // its start. The bar under the playhead keeps what has been (or is about to be) heard.
                    let harmony_cut = match bar.settings == settings {
                        true => first_difference(bar.harmony.as_ref(), harmony.as_ref()),
                        false => 0,
                    };
                    let heard_cut = if order == 0 && self.host.playing {
                        let tick = self.heard_tick();
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
                _ => None,
            };
            if let Some(prefix) = action {
                return self.make_bar(index, prefix, &settings, harmony, structure);
            }
        }
        self.everything_sent = true;
        false
    }

    /// Makes bar `index` (after `heard`, the part of it kept, or from its start), then publishes and
    /// saves it. False when the model failed for good.
    fn make_bar(
        &mut self,
        index: i64,
        heard: Option<(Vec<u32>, u32)>,
        settings: &GenSettings,
        harmony: Option<BarHarmony>,
        structure: Structure,
    ) -> bool {
        self.busy();
        let started = Instant::now();
        if let Err(e) = self.generate(index, heard, settings, harmony, structure) {
            return self.model_failed(Workload::Stream, e);
        }
        self.recoveries = 0;
        self.members.clear_problem(|p| matches!(p, Problem::ModelFailing(_)));
        self.publish(index);
        self.report_speed(started);
        self.store_session(*settings);
        true
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
        // A loop's last bar owes a note to every enabled part its other bars did not play.
        let owed_parts = match structure.loop_length() {
            Some(length) if index == length as i64 - 1 => {
                let others: Option<Vec<&GeneratedBar>> = (0..index).map(|i| self.bars.get(&i)).collect();
                others.map_or([false; 3], |bars| {
                    parts_owed(&constraints, bars.iter().flat_map(|bar| bar.content.notes.iter()))
                })
            }
            _ => [false; 3],
        };
        let request = BarRequest {
            header,
            history_first_bar: index - history.len() as i64,
            history: &history,
            forced_prefix: &prefix,
            resume_tick,
            forced_notes: &forced_notes,
            harmony: harmony.as_ref(),
            constraints,
            owed_parts,
            rng: Rng::for_bar(settings.seed, index, settings.variation),
        };
        let model = self.model.as_mut().ok_or("no model")?.get(Workload::Stream);
        let tokens = generate_bar(model, request)?;
        let content = BarContent::from_tokens(tokens);
        let model = self.model_serial;
        self.bars.insert(index, GeneratedBar { content, settings: *settings, harmony, model });
        self.members.unpublish(index);
        Ok(())
    }

    /// The first tick not heard yet, nor about to be. Offline, the block at the playhead waits and has
    /// not played: the first tick some member has not played, as its audio thread counts it. Live, the
    /// last block has played to its end, and a margin more is about to be heard.
    fn heard_tick(&self) -> i64 {
        if self.host.offline {
            return self.host.first_unplayed_tick;
        }
        let playhead_beats = self.host.playhead_beats.max(0.0);
        let margin_ms = (1.5 * self.bar_ms + 10.0).clamp(REGENERATE_MARGIN_MS, MAX_REGENERATE_MARGIN_MS);
        let margin_beats = margin_ms / 1000.0 * self.host.tempo_bpm / 60.0;
        let heard = self.host.block_end_beats.max(playhead_beats + margin_beats);
        (heard * TICKS_PER_BEAT as f64 - 1e-6).ceil() as i64
    }

    fn publish(&mut self, index: i64) {
        let Some(bar) = self.bars.get(&index) else { return };
        let last_of_loop = self.params.structure().loop_length().is_some_and(|length| index == length as i64 - 1);
        let notes = if self.ends_at_seam && last_of_loop {
            end_at_bar_end(&bar.content.notes)
        } else {
            bar.content.notes.clone()
        };
        if !self.members.publish(index, &notes) {
            // An audio thread is not draining (not processing): try again shortly.
            std::thread::sleep(Duration::from_millis(1));
        }
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

/// `notes` (ticks from their bar's start) with every note that would ring past the bar's end ending there.
fn end_at_bar_end(notes: &[crate::music::Note]) -> Vec<crate::music::Note> {
    notes
        .iter()
        .map(|n| crate::music::Note { duration_ticks: n.duration_ticks.min(TICKS_PER_BAR - n.start_tick), ..*n })
        .collect()
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
        controls: settings.controls,
        lead_on_top: settings.style == Style::Dance,
        ..Constraints::default()
    }
}

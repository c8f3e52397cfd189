//! The one place where the audio thread, the generator thread and the editor meet: lock-free
//! queues and atomics behind one end per thread. The direction of every datum is in the types.

use crate::music::Note;
use atomic_float::AtomicF64;
use crossbeam::channel::{Receiver, Sender};
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// Notes one bar can hold; the generator stops a bar's sampling well before this.
pub const MAX_NOTES_PER_BAR: usize = 128;
/// Bars in flight from the generator to the audio thread.
pub const BAR_QUEUE_CAPACITY: usize = 64;

/// A finished bar on its way to the audio thread. Fixed size, so pushing and popping never allocate.
#[derive(Clone, Copy)]
pub struct BarNotes {
    /// Bars from an older epoch (before a mode change or re-anchor) are ignored.
    pub epoch: u32,
    /// The audio thread's settings revision the bar was generated under (Offline waits for a match).
    pub settings_rev: u32,
    /// The group's revision it was published under: a change made in a linked member makes the
    /// bars of every member stale (Offline waits for a match with `Link::group_rev`).
    pub group_rev: u32,
    /// Phrase bar index: Loop and Hold count 0..length, Endless counts host bars.
    pub index: i64,
    pub len: u16,
    /// Ticks relative to the bar start, sorted by start tick.
    pub notes: [Note; MAX_NOTES_PER_BAR],
}

impl BarNotes {
    pub fn new(epoch: u32, (settings_rev, group_rev): (u32, u32), index: i64, notes: &[Note]) -> Self {
        let blank = Note { start_tick: 0, part: crate::music::Part::Lead, pitch: 0, duration_ticks: 0, velocity: 0 };
        let mut bar = BarNotes { epoch, settings_rev, group_rev, index, len: 0, notes: [blank; MAX_NOTES_PER_BAR] };
        for (slot, note) in bar.notes.iter_mut().zip(notes) {
            *slot = *note;
        }
        bar.len = notes.len().min(MAX_NOTES_PER_BAR) as u16;
        bar
    }

    pub fn notes(&self) -> &[Note] {
        &self.notes[..self.len as usize]
    }
}

/// `Link::serving_group` before any generator has taken the instance in.
pub const NO_GROUP: u8 = u8::MAX;

/// Notes played into the plugin in flight to the generator: far more than a player sends in 2 ms.
pub const PLAYED_QUEUE_CAPACITY: usize = 1024;

/// A note played into the plugin (Follow on, on the listened channel), as the generator hears it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayedNote {
    /// Where it was played, on the host's beat timeline (the playhead, when the transport is stopped).
    pub beats: f64,
    /// The first grid tick (12 per beat) at or after the sample it was played at: where it can take
    /// effect, the same at any block size.
    pub tick: i64,
    /// The audio thread's discontinuity count when it was played: a new count is a new pass (a seek,
    /// a host loop wrap).
    pub pass: u32,
    pub pitch: u8,
    pub velocity: u8,
    pub on: bool,
    /// The transport was playing.
    pub playing: bool,
}

/// Requests from the editor (or tests) to the generator.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// New material for all parts, or for one part while the others stay.
    Regenerate {
        part: Option<crate::music::Part>,
    },
    /// Locked parts keep their notes when others are regenerated.
    SetLock {
        part: crate::music::Part,
        locked: bool,
    },
    /// Several candidate phrases at once (batched) for the loop, for all parts that are not locked
    /// or only for one part; the first new one plays, the others wait to be flipped to.
    Variations {
        part: Option<crate::music::Part>,
        count: usize,
    },
    /// Play candidate `index` of the last Variations (0 is the phrase they started from).
    ShowVariation {
        index: usize,
    },
    /// Back to the phrase before the last Regenerate or Variations (and forward again).
    Undo,
    Redo,
}

/// What a linked member's audio thread plays by instead of its own knobs: the phrase structure and
/// the parts' settings of the group (those of the member whose settings changed last).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupPlayback {
    /// Phrase length in bars, None in Endless mode.
    pub loop_bars: Option<u32>,
    /// (on, low, high) of each part.
    pub parts: [(bool, u8, u8); 3],
}

impl GroupPlayback {
    const PRESENT: u64 = 1 << 63;

    /// One word, so the audio thread reads it with a single atomic load.
    pub fn pack(self) -> u64 {
        let mut word = Self::PRESENT | self.loop_bars.map_or(0, |b| b.clamp(1, 31) as u64);
        for (i, (on, low, high)) in self.parts.into_iter().enumerate() {
            let part = (on as u64) << 14 | ((low & 0x7f) as u64) << 7 | (high & 0x7f) as u64;
            word |= part << (5 + 15 * i);
        }
        word
    }

    /// None for 0: not linked, the member plays by its own knobs.
    pub fn unpack(word: u64) -> Option<Self> {
        if word & Self::PRESENT == 0 {
            return None;
        }
        let loop_bars = match (word & 0x1f) as u32 {
            0 => None,
            bars => Some(bars),
        };
        let parts = [0, 1, 2].map(|i| {
            let part = word >> (5 + 15 * i);
            (part >> 14 & 1 == 1, (part >> 7 & 0x7f) as u8, (part & 0x7f) as u8)
        });
        Some(GroupPlayback { loop_bars, parts })
    }
}

/// A problem the producer is shown, in plain words; the generator clears it when it goes away.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// No usable ONNX Runtime or model: the plugin stays silent.
    NoModel(String),
    /// The model kept failing after every recovery: no new bars until a step works again.
    ModelFailing(String),
    /// A Variations request failed; the phrase playing is unchanged.
    Variations(String),
    /// A bug stopped the generator thread.
    GeneratorStopped(String),
    /// The chosen model is not there, is not the file the project was saved with, or does not open.
    /// A project's model: its saved phrase plays on and nothing new is made until another model is
    /// chosen. The editor's choice: refused, and the model before it plays on.
    ModelMissing(String),
    /// A model trained on another vocabulary was refused (a project's: its saved phrase plays on; the
    /// editor's: the model before it plays on).
    VocabularyMismatch {
        /// The model's name.
        model: String,
        /// The vocabulary the model was trained on.
        model_hash: String,
        /// The vocabulary this plugin speaks.
        plugin_hash: String,
    },
}

impl Problem {
    /// No new bars come while it lasts (an Offline block must not wait for them).
    pub fn stops_generation(&self) -> bool {
        // A refused model leaves bars coming: the saved phrase, or the model before it.
        !matches!(self, Problem::Variations(_) | Problem::ModelMissing(_) | Problem::VocabularyMismatch { .. })
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NoModel(why) | Problem::ModelFailing(why) => f.write_str(why),
            Problem::Variations(why) => write!(f, "Variations failed: {why}"),
            Problem::GeneratorStopped(what) => {
                write!(f, "The generator stopped unexpectedly ({what}); reopen the project to restart it.")
            }
            Problem::ModelMissing(why) => write!(f, "Model not playing: {why}"),
            Problem::VocabularyMismatch { model, model_hash, plugin_hash } => write!(
                f,
                "Model {model} refused: it was trained on vocabulary {model_hash}, this plugin speaks {plugin_hash}"
            ),
        }
    }
}

/// What the editor shows about the engine, written by the generator thread only.
#[derive(Debug, Clone, Default)]
pub struct EngineStatus {
    /// Model name and version, once loaded.
    pub model: Option<String>,
    /// "CPU", "CUDA", or which runs what ("CPU for bars, CUDA for Variations").
    pub provider: Option<String>,
    /// About the Compute choice: why the GPU is not used, what Auto measured, a recovery.
    pub compute_note: Option<String>,
    /// What is wrong, until it goes away.
    pub problem: Option<Problem>,
    /// Bars ready ahead of the playhead.
    pub lookahead_bars: f64,
    /// Generated music time per wall-clock time, at the current tempo.
    pub speed_x_realtime: f64,
    pub can_undo: bool,
    pub can_redo: bool,
    /// Candidates of the last Variations, the starting phrase included (0 = none to flip through).
    pub variations: usize,
    /// The candidate playing now.
    pub variation_shown: usize,
    /// Wall time the last Variations took, all candidates together.
    pub variations_ms: f64,
    /// What the plugin understood of the notes played into it (Follow), in plain words.
    pub follow: Option<String>,
    /// The key of what is played (Key Lock off), or Key Lock's.
    pub key: Option<String>,
    /// Capture is armed or recording.
    pub capturing: bool,
    /// Linked instances: the group, its members and what each plays, or why no other member is here.
    pub linked: Option<String>,
    /// Linked with other members: the knobs the group plays by (an editor turns its own to them).
    pub group_knobs: Option<crate::params::values::GroupKnobs>,
}

/// The generator's current bars, for the editor's piano roll and MIDI export.
#[derive(Debug, Clone, Default)]
pub struct PhraseSnapshot {
    /// (phrase bar index, notes with ticks relative to that bar), sorted by index.
    pub bars: Vec<(i64, Vec<Note>)>,
    /// The chord lane: (phrase bar index, tick in the bar, chord symbol, forced), sorted.
    pub chords: Vec<(i64, u32, String, bool)>,
}

/// What the three threads share. Private: each thread holds its own end (`AudioEnd`, `GeneratorEnd`,
/// `EditorEnd`), whose methods are the only way in, so each field has the writer its end names.
struct Shared {
    // --- audio thread → generator, editor ---
    /// Position at the start of the latest block, in beats (counted in samples from the host's anchor).
    playhead_beats: AtomicF64,
    /// Position at the end of the latest block: the lookahead must reach past it (hosts may send
    /// blocks several bars wide).
    block_end_beats: AtomicF64,
    tempo_bpm: AtomicF64,
    playing: AtomicBool,
    /// The host gives a usable timeline (tempo and position).
    has_transport: AtomicBool,
    /// Offline, or rendering faster than real time: the audio thread waits for bars instead of
    /// skipping them, and a regeneration needs no margin for what is about to be heard.
    offline: AtomicBool,
    /// Bumped whenever a parameter that shapes generation changed, or a note was played.
    settings_rev: AtomicU32,
    /// Bumped on every transport discontinuity (seek, loop wrap, tempo jump, reset): the audio
    /// thread's bar table may have lost bars to other ones, so the generator sends them again.
    discontinuities: AtomicU32,
    /// Host bar an Offline block is waiting for, or `i64::MIN`: the generator makes it next.
    waiting_for_bar: AtomicI64,
    /// The first grid tick not yet played (during a block, that block's first): offline, what a
    /// regeneration keeps ends there.
    first_unplayed_tick: AtomicI64,
    /// Times the Regenerate parameter was switched on (a linked group hears every member's).
    regenerate_presses: AtomicU32,
    /// Blocks processed: a linked member that stopped processing no longer leads the group's timing.
    processed_blocks: AtomicU32,
    /// Notes played into the plugin, for Follow.
    played: ArrayQueue<PlayedNote>,

    // --- generator → audio thread, editor ---
    bars: ArrayQueue<BarNotes>,
    /// Bars tagged with an older epoch are stale.
    epoch: AtomicU32,
    /// Bumped (for every member of a group) when the generator sees a settings revision change in
    /// any member: bars published under an older one are stale for an Offline wait.
    group_rev: AtomicU32,
    /// A linked member's group settings (`GroupPlayback::pack`), 0 when not linked.
    group_playback: AtomicU64,
    /// The Link group whose generator serves this instance (`LinkGroup::code`), written when it takes
    /// the instance in: an Offline block waits until it is the group the Link parameter asks for.
    serving_group: AtomicU8,
    /// The model is loaded and generating.
    ready: AtomicBool,
    /// A capture is armed: it may finish at any bar line, so an offline block that holds one waits for
    /// bars made after the generator looked.
    capture_armed: AtomicBool,
    /// The generator cannot run (no ONNX Runtime, no usable model): Offline blocks must not wait.
    failed: AtomicBool,
    /// The generator found nothing to do on its last look: a bar still missing is not coming.
    generator_idle: AtomicBool,
    /// Editor-facing status. Never locked by the audio thread.
    status: Mutex<EngineStatus>,
    /// The generated bars as the editor shows and exports them. Never locked by the audio thread.
    phrase: Mutex<PhraseSnapshot>,

    // --- editor → generator ---
    commands: Sender<Command>,
    command_receiver: Receiver<Command>,
}

/// A new link between one instance's audio thread, its group's generator and its editors.
pub fn channel() -> (AudioEnd, GeneratorEnd, EditorEnd) {
    let (commands, command_receiver) = crossbeam::channel::unbounded();
    let shared = Arc::new(Shared {
        playhead_beats: AtomicF64::new(0.0),
        block_end_beats: AtomicF64::new(0.0),
        tempo_bpm: AtomicF64::new(120.0),
        playing: AtomicBool::new(false),
        has_transport: AtomicBool::new(false),
        offline: AtomicBool::new(false),
        settings_rev: AtomicU32::new(0),
        discontinuities: AtomicU32::new(0),
        waiting_for_bar: AtomicI64::new(i64::MIN),
        first_unplayed_tick: AtomicI64::new(0),
        regenerate_presses: AtomicU32::new(0),
        processed_blocks: AtomicU32::new(0),
        played: ArrayQueue::new(PLAYED_QUEUE_CAPACITY),
        bars: ArrayQueue::new(BAR_QUEUE_CAPACITY),
        epoch: AtomicU32::new(1),
        group_rev: AtomicU32::new(0),
        group_playback: AtomicU64::new(0),
        serving_group: AtomicU8::new(NO_GROUP),
        ready: AtomicBool::new(false),
        capture_armed: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        generator_idle: AtomicBool::new(false),
        status: Mutex::new(EngineStatus::default()),
        phrase: Mutex::new(PhraseSnapshot::default()),
        commands,
        command_receiver,
    });
    (AudioEnd(shared.clone()), GeneratorEnd(shared.clone()), EditorEnd(shared))
}

/// The audio thread's end (one per instance): publishes the playhead and what it heard, consumes
/// bars. Every method is wait-free and never allocates.
pub struct AudioEnd(Arc<Shared>);

impl AudioEnd {
    pub fn count_block(&self) {
        self.0.processed_blocks.fetch_add(1, Ordering::Relaxed);
    }

    pub fn press_regenerate(&self) {
        self.0.regenerate_presses.fetch_add(1, Ordering::AcqRel);
    }

    /// What shapes generation changed (a knob, a press, a played note): bars made before are stale
    /// for an Offline wait.
    pub fn bump_settings_rev(&self) {
        self.0.settings_rev.fetch_add(1, Ordering::AcqRel);
    }

    pub fn settings_rev(&self) -> u32 {
        self.0.settings_rev.load(Ordering::Acquire)
    }

    /// The host's tempo, None when it gives no usable timeline.
    pub fn set_transport(&self, tempo_bpm: Option<f64>) {
        if let Some(tempo_bpm) = tempo_bpm {
            self.0.tempo_bpm.store(tempo_bpm, Ordering::Relaxed);
        }
        self.0.has_transport.store(tempo_bpm.is_some(), Ordering::Relaxed);
    }

    pub fn set_playing(&self, playing: bool) {
        self.0.playing.store(playing, Ordering::Relaxed);
    }

    /// The block start last published.
    pub fn playhead_beats(&self) -> f64 {
        self.0.playhead_beats.load(Ordering::Relaxed)
    }

    pub fn set_block_beats(&self, start_beats: f64, end_beats: f64) {
        self.0.playhead_beats.store(start_beats, Ordering::Relaxed);
        self.0.block_end_beats.store(end_beats, Ordering::Relaxed);
    }

    pub fn set_offline(&self, offline: bool) {
        self.0.offline.store(offline, Ordering::Relaxed);
    }

    /// A seek, loop wrap, tempo jump or reset: a new pass.
    pub fn bump_discontinuities(&self) {
        self.0.discontinuities.fetch_add(1, Ordering::AcqRel);
    }

    /// The current pass (count of discontinuities).
    pub fn pass(&self) -> u32 {
        self.0.discontinuities.load(Ordering::Relaxed)
    }

    pub fn set_first_unplayed_tick(&self, tick: i64) {
        self.0.first_unplayed_tick.store(tick, Ordering::Relaxed);
    }

    /// The host bar an Offline block waits for (None: not waiting).
    pub fn set_waiting_for_bar(&self, bar: Option<i64>) {
        self.0.waiting_for_bar.store(bar.unwrap_or(i64::MIN), Ordering::Release);
    }

    /// False when the queue is full (the note is lost).
    pub fn hear(&self, note: PlayedNote) -> bool {
        self.0.played.push(note).is_ok()
    }

    pub fn next_bar(&self) -> Option<BarNotes> {
        self.0.bars.pop()
    }

    pub fn epoch(&self) -> u32 {
        self.0.epoch.load(Ordering::Acquire)
    }

    pub fn group_rev(&self) -> u32 {
        self.0.group_rev.load(Ordering::Acquire)
    }

    /// The group's structure and parts, None when not linked.
    pub fn group_playback(&self) -> Option<GroupPlayback> {
        GroupPlayback::unpack(self.0.group_playback.load(Ordering::Acquire))
    }

    pub fn serving_group(&self) -> u8 {
        self.0.serving_group.load(Ordering::Acquire)
    }

    pub fn capture_armed(&self) -> bool {
        self.0.capture_armed.load(Ordering::Relaxed)
    }

    /// The generator has given up (no library, no model): nothing will arrive.
    pub fn generator_failed(&self) -> bool {
        self.0.failed.load(Ordering::Acquire)
    }

    /// The generator found nothing to do on its last look.
    pub fn generator_idle(&self) -> bool {
        self.0.generator_idle.load(Ordering::Acquire)
    }
}

/// The generator's end of one instance's link: reads what the audio thread published, takes
/// commands and played notes, publishes bars, status and the phrase snapshot.
#[derive(Clone)]
pub struct GeneratorEnd(Arc<Shared>);

/// Where the host was at the latest block of one instance, as the generator reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playhead {
    pub playing: bool,
    pub offline: bool,
    pub has_transport: bool,
    pub tempo_bpm: f64,
    pub start_beats: f64,
    pub end_beats: f64,
    /// The host bar an Offline block waits for.
    pub waiting_for_bar: Option<i64>,
    pub first_unplayed_tick: i64,
    pub pass: u32,
}

impl GeneratorEnd {
    pub fn playhead(&self) -> Playhead {
        let s = &self.0;
        Playhead {
            playing: s.playing.load(Ordering::Relaxed),
            offline: s.offline.load(Ordering::Relaxed),
            has_transport: s.has_transport.load(Ordering::Acquire),
            tempo_bpm: s.tempo_bpm.load(Ordering::Relaxed),
            start_beats: s.playhead_beats.load(Ordering::Relaxed),
            end_beats: s.block_end_beats.load(Ordering::Relaxed),
            waiting_for_bar: Some(s.waiting_for_bar.load(Ordering::Acquire)).filter(|&b| b != i64::MIN),
            first_unplayed_tick: s.first_unplayed_tick.load(Ordering::Relaxed),
            pass: s.discontinuities.load(Ordering::Acquire),
        }
    }

    pub fn settings_rev(&self) -> u32 {
        self.0.settings_rev.load(Ordering::Acquire)
    }

    pub fn regenerate_presses(&self) -> u32 {
        self.0.regenerate_presses.load(Ordering::Acquire)
    }

    pub fn processed_blocks(&self) -> u32 {
        self.0.processed_blocks.load(Ordering::Acquire)
    }

    pub fn next_played(&self) -> Option<PlayedNote> {
        self.0.played.pop()
    }

    pub fn next_command(&self) -> Option<Command> {
        self.0.command_receiver.try_recv().ok()
    }

    /// Tags the bar with the current epoch; false when the queue is full (the audio thread is not
    /// draining).
    pub fn publish_bar(&self, (settings_rev, group_rev): (u32, u32), index: i64, notes: &[Note]) -> bool {
        let epoch = self.0.epoch.load(Ordering::Acquire);
        self.0.bars.push(BarNotes::new(epoch, (settings_rev, group_rev), index, notes)).is_ok()
    }

    /// Every bar published so far is stale.
    pub fn new_epoch(&self) {
        self.0.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn set_group_rev(&self, group_rev: u32) {
        self.0.group_rev.store(group_rev, Ordering::Release);
    }

    /// `GroupPlayback::pack`, 0 when not linked.
    pub fn set_group_playback(&self, word: u64) {
        self.0.group_playback.store(word, Ordering::Release);
    }

    pub fn set_serving_group(&self, code: u8) {
        self.0.serving_group.store(code, Ordering::Release);
    }

    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::Release);
    }

    pub fn set_capture_armed(&self, armed: bool) {
        self.0.capture_armed.store(armed, Ordering::Release);
    }

    pub fn set_failed(&self, failed: bool) {
        self.0.failed.store(failed, Ordering::Release);
    }

    pub fn set_idle(&self, idle: bool) {
        self.0.generator_idle.store(idle, Ordering::Release);
    }

    pub fn update_status(&self, f: impl FnOnce(&mut EngineStatus)) {
        if let Ok(mut status) = self.0.status.lock() {
            f(&mut status);
        }
    }

    pub fn set_phrase(&self, phrase: &PhraseSnapshot) {
        if let Ok(mut shared) = self.0.phrase.lock() {
            shared.clone_from(phrase);
        }
    }
}

/// An editor's end (any number, one per open window): reads what the engine shows, sends commands.
#[derive(Clone)]
pub struct EditorEnd(Arc<Shared>);

impl EditorEnd {
    pub fn status(&self) -> EngineStatus {
        self.0.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn phrase(&self) -> PhraseSnapshot {
        self.0.phrase.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn send(&self, command: Command) {
        // The receiver lives as long as this end (it is in the same `Shared`).
        let _ = self.0.commands.send(command);
    }

    /// The playhead, when the host gives a usable timeline.
    pub fn playhead_beats(&self) -> Option<f64> {
        self.0.has_transport.load(Ordering::Relaxed).then(|| self.0.playhead_beats.load(Ordering::Relaxed))
    }

    pub fn tempo_bpm(&self) -> f64 {
        self.0.tempo_bpm.load(Ordering::Relaxed)
    }

    pub fn playing(&self) -> bool {
        self.0.playing.load(Ordering::Relaxed)
    }

    pub fn has_transport(&self) -> bool {
        self.0.has_transport.load(Ordering::Relaxed)
    }

    /// The model is loaded and generating.
    pub fn ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::GroupPlayback;

    #[test]
    fn group_playback_survives_its_word() {
        for loop_bars in [None, Some(1), Some(16)] {
            let playback = GroupPlayback { loop_bars, parts: [(true, 60, 96), (false, 0, 127), (true, 28, 52)] };
            assert_eq!(GroupPlayback::unpack(playback.pack()), Some(playback));
        }
        assert_eq!(GroupPlayback::unpack(0), None, "0 is a member playing by its own knobs");
    }
}

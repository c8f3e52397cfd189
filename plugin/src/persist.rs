//! What a project saves besides parameter values: the generated phrase, locks, the variation counter
//! and the model that made it.
//!
//! A producer's project must play the same notes after any later release, whatever model ships then:
//! - the on-disk shape has types of its own (`FileV2`), never an internal struct;
//! - every field has a default, so a field added later reads older files;
//! - each older format is migrated (`FileV1` → today's session), never refused; only a format from a
//!   newer release, or garbage, is refused, with a message;
//! - the phrase is saved as notes, which play as they are; the tokens beside them are reused to
//!   condition further generation only when the vocabulary they were written in is today's.

use crate::generator::resources::ModelChoice;
use crate::generator::settings::GenSettings;
use crate::music::controls::{ArpMotion, BassDrive, ControlChoice, Style, DENSITY_BINS};
use crate::music::tokens::HEADER_LENGTH;
use crate::music::vocab::{vocab_hash, DURATIONS_TICKS, VOCAB_SIZE};
use crate::music::{Note, Part, TICKS_PER_BAR};
use nice_plug::params::persist::PersistentField;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, RwLock};

/// The format this build writes. Bump it when the layout changes, and add a migration.
pub const SESSION_FORMAT: u32 = 2;
/// At most this many stored bars (Loop mode needs 16; Endless keeps a recent window).
pub const MAX_STORED_BARS: usize = 64;
/// The longest note a saved bar may hold, in ticks (16 bars).
const MAX_DURATION_TICKS: u32 = 16 * TICKS_PER_BAR;

/// One saved bar: its notes (what plays) and, when they are in today's vocabulary, its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBar {
    /// Phrase bar index (Loop: 0..length; Endless: the host bar).
    pub index: i64,
    /// Ticks relative to the bar start, in the order they play.
    pub notes: Vec<Note>,
    /// The bar's tokens (starting with BAR) in today's vocabulary, or None when it was written in
    /// another one: then it is re-encoded for conditioning, and still plays its saved notes.
    pub tokens: Option<Vec<u32>>,
}

/// The session as the plugin uses it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistedSession {
    /// "<model_version>/<vocab hash>" of the model that generated the bars; empty if none.
    pub model_id: String,
    /// Bumped by every Regenerate, so the same seed can give new material and still reload exactly.
    pub variation: u32,
    /// Locked parts keep their notes when the others are regenerated.
    pub locked: [bool; 3],
    /// A loop's last bar ends its notes at the loop's end. False in projects saved before that rule
    /// (release 0.3), which keep the notes that rang across the seam.
    pub ends_at_seam: bool,
    /// The conditioning tokens the bars were generated under (BOS TEMPO KEY MOOD STYLE), in today's
    /// vocabulary; None when there were none or they were in another vocabulary.
    pub header: Option<[u32; HEADER_LENGTH]>,
    /// The parameter values the bars were generated under, so a reload does not regenerate them.
    pub settings: Option<GenSettings>,
    pub bars: Vec<StoredBar>,
}

/// The saved session, shared by the generator (which writes it), the host's state save and load, and
/// the editor. A host's load waits in `loaded` until the generator takes it, so neither can overwrite
/// the other: a save in between saves what was loaded.
#[derive(Default)]
pub struct SessionStore {
    session: RwLock<PersistedSession>,
    loaded: Mutex<Option<PersistedSession>>,
}

impl SessionStore {
    /// What a project save holds now.
    pub fn read(&self) -> PersistedSession {
        if let Some(loaded) = self.loaded.lock().ok().and_then(|l| l.clone()) {
            return loaded;
        }
        self.session.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// What the generator writes after every change; not a load.
    pub fn store(&self, session: PersistedSession) {
        if let Ok(mut stored) = self.session.write() {
            *stored = session;
        }
    }

    /// The session the host loaded since the last call, if any (for the generator to adopt).
    pub fn take_loaded(&self) -> Option<PersistedSession> {
        self.loaded.lock().ok().and_then(|mut l| l.take())
    }

    pub fn locked(&self, part: Part) -> bool {
        self.read().locked[part.index()]
    }
}

impl<'a> PersistentField<'a, PersistedSession> for SessionStore {
    fn set(&self, new_value: PersistedSession) {
        if let Ok(mut loaded) = self.loaded.lock() {
            *loaded = Some(new_value);
        }
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&PersistedSession) -> R,
    {
        f(&self.read())
    }
}

/// The model choice as a project saves it (persisted field "model"), shared by the editor (which
/// chooses), the host's state save and load, the generator (which reads it, and puts it back when it
/// refuses a model) and the audio thread, which reads only `revision` (one atomic load) to tell its
/// generator's bars stale when the choice changes.
#[derive(Default)]
pub struct ModelStore {
    choice: RwLock<ModelChoice>,
    /// Bumped after every change of the choice.
    revision: AtomicU32,
    /// The last change came from a project load (the host's state), not from the editor.
    by_load: AtomicBool,
}

impl ModelStore {
    pub fn get(&self) -> ModelChoice {
        self.choice.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The choice, and whether it came with a project load.
    pub fn read(&self) -> (ModelChoice, bool) {
        let choice = self.get();
        (choice, self.by_load.load(Ordering::Acquire))
    }

    /// Changes since the instance started: the audio thread compares it block by block (lock-free).
    pub fn revision(&self) -> u32 {
        self.revision.load(Ordering::Acquire)
    }

    /// The producer's choice (the editor), or the group's choice handed to a member.
    pub fn choose(&self, choice: ModelChoice) {
        self.write(choice, false);
    }

    /// Writes a choice; the revision moves only when it changed. `by_load`: it came with a project.
    pub fn write(&self, choice: ModelChoice, by_load: bool) {
        self.write_if(|_| true, choice, by_load);
    }

    /// Writes a choice only while the field holds `expected` (the generator's corrections never
    /// overwrite a choice made meanwhile).
    pub fn replace(&self, expected: &ModelChoice, choice: ModelChoice, by_load: bool) {
        self.write_if(|current| current == expected, choice, by_load);
    }

    fn write_if(&self, allowed: impl Fn(&ModelChoice) -> bool, choice: ModelChoice, by_load: bool) {
        let Ok(mut current) = self.choice.write() else { return };
        if *current != choice && allowed(&current) {
            *current = choice;
            self.by_load.store(by_load, Ordering::Release);
            self.revision.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl<'a> PersistentField<'a, ModelChoice> for ModelStore {
    fn set(&self, new_value: ModelChoice) {
        self.write(new_value, true);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&ModelChoice) -> R,
    {
        f(&self.get())
    }
}

/// The persisted field's key.
pub const MODEL_FIELD: &str = "model";

/// A state saved before there was a model choice holds no "model" field: it plays the shipped
/// model, whatever this instance played before the load.
pub fn add_missing_model_field(fields: &mut std::collections::BTreeMap<String, String>) {
    if !fields.contains_key(MODEL_FIELD) {
        if let Ok(json) = serde_json::to_string(&ModelChoice::Shipped) {
            fields.insert(MODEL_FIELD.to_string(), json);
        }
    }
}

impl Serialize for PersistedSession {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FileV2::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PersistedSession {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        from_json(value).map_err(serde::de::Error::custom)
    }
}

/// Reads any format this or an earlier release wrote.
fn from_json(value: serde_json::Value) -> Result<PersistedSession, String> {
    let format = value.get("format").and_then(|f| f.as_u64()).ok_or("the saved phrase has no format number")?;
    let session = match format {
        1 => serde_json::from_value::<FileV1>(value).map_err(|e| format!("saved phrase (format 1): {e}"))?.migrate()?,
        2 => serde_json::from_value::<FileV2>(value).map_err(|e| format!("saved phrase (format 2): {e}"))?.read()?,
        0 => return Err("the saved phrase has format 0, which no Neural Trio writes".into()),
        newer => {
            return Err(format!(
                "the saved phrase was written by a newer Neural Trio (format {newer}; this build reads formats 1 to \
                 {SESSION_FORMAT}): update the plugin to play it"
            ))
        }
    };
    if session.bars.len() > MAX_STORED_BARS {
        return Err(format!("saved phrase has {} bars, at most {MAX_STORED_BARS}", session.bars.len()));
    }
    Ok(session)
}

// ------------------------------------------------------------------------------------------------
// Format 2 (this build)
// ------------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct FileV2 {
    format: u32,
    #[serde(default)]
    model_id: String,
    /// The vocabulary `header` and the bars' tokens are written in.
    #[serde(default)]
    vocab_hash: String,
    #[serde(default)]
    variation: u32,
    #[serde(default)]
    locked: [bool; 3],
    /// Absent (false) in files written before the rule: those loops keep their ringing seam.
    #[serde(default)]
    ends_at_seam: bool,
    /// A list, not an array: its length changed with the vocabulary (4 tokens before styles).
    #[serde(default)]
    header: Option<Vec<u32>>,
    #[serde(default)]
    settings: Option<SettingsV2>,
    #[serde(default)]
    bars: Vec<BarV2>,
}

#[derive(Serialize, Deserialize)]
struct BarV2 {
    index: i64,
    #[serde(default)]
    notes: Vec<NoteV2>,
    #[serde(default)]
    tokens: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
struct NoteV2 {
    part: Part,
    start_tick: u32,
    duration_ticks: u32,
    pitch: u8,
    velocity: u8,
}

/// The generation settings as saved. A field added later must take the value that plays as before.
#[derive(Serialize, Deserialize)]
#[serde(default)]
struct SettingsV2 {
    temperature: f32,
    top_p: f32,
    seed: u32,
    variation: u32,
    key_lock: i32,
    mood: Option<u8>,
    parts_on: [bool; 3],
    registers: [(u8, u8); 3],
    /// Added with the Dance model; older projects read "pop" and every control on Auto.
    style: String,
    density: [Option<u8>; 3],
    arp_motion: Option<String>,
    bass_drive: Option<String>,
}

impl Default for SettingsV2 {
    fn default() -> Self {
        SettingsV2::from(&GenSettings::default())
    }
}

impl From<&GenSettings> for SettingsV2 {
    fn from(s: &GenSettings) -> Self {
        SettingsV2 {
            temperature: s.temperature,
            top_p: s.top_p,
            seed: s.seed,
            variation: s.variation,
            key_lock: s.key_lock,
            mood: s.mood,
            parts_on: s.parts_on,
            registers: s.registers,
            style: s.style.name().to_string(),
            density: s.controls.density,
            arp_motion: s.controls.arp_motion.map(|m| m.name().to_string()),
            bass_drive: s.controls.bass_drive.map(|d| d.name().to_string()),
        }
    }
}

/// A saved name this build does not know reads as the default (Pop, Auto): it never refuses a file.
impl From<SettingsV2> for GenSettings {
    fn from(s: SettingsV2) -> Self {
        GenSettings {
            temperature: s.temperature,
            top_p: s.top_p,
            seed: s.seed,
            variation: s.variation,
            key_lock: s.key_lock,
            mood: s.mood,
            parts_on: s.parts_on,
            registers: s.registers,
            style: Style::ALL.into_iter().find(|st| st.name() == s.style).unwrap_or_default(),
            controls: ControlChoice {
                density: s.density.map(|bin| bin.filter(|&b| b < DENSITY_BINS)),
                arp_motion: s.arp_motion.and_then(|name| ArpMotion::ALL.into_iter().find(|m| m.name() == name)),
                bass_drive: s.bass_drive.and_then(|name| BassDrive::ALL.into_iter().find(|d| d.name() == name)),
            },
        }
    }
}

impl From<&PersistedSession> for FileV2 {
    fn from(s: &PersistedSession) -> Self {
        FileV2 {
            format: SESSION_FORMAT,
            model_id: s.model_id.clone(),
            vocab_hash: vocab_hash(),
            variation: s.variation,
            locked: s.locked,
            ends_at_seam: s.ends_at_seam,
            header: s.header.map(|h| h.to_vec()),
            settings: s.settings.as_ref().map(SettingsV2::from),
            bars: s
                .bars
                .iter()
                .map(|bar| BarV2 {
                    index: bar.index,
                    notes: bar
                        .notes
                        .iter()
                        .map(|n| NoteV2 {
                            part: n.part,
                            start_tick: n.start_tick,
                            duration_ticks: n.duration_ticks,
                            pitch: n.pitch,
                            velocity: n.velocity,
                        })
                        .collect(),
                    tokens: bar.tokens.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl FileV2 {
    fn read(self) -> Result<PersistedSession, String> {
        let same_vocabulary = self.vocab_hash == vocab_hash();
        let mut bars = Vec::with_capacity(self.bars.len());
        for bar in self.bars {
            let notes: Vec<Note> = bar
                .notes
                .into_iter()
                .map(|n| Note {
                    start_tick: n.start_tick,
                    part: n.part,
                    pitch: n.pitch,
                    duration_ticks: n.duration_ticks,
                    velocity: n.velocity,
                })
                .collect();
            validate_notes(&notes).map_err(|e| format!("saved bar {} is invalid: {e}", bar.index))?;
            // Tokens in today's vocabulary must be valid (else the file is damaged); tokens that disagree
            // with the notes are not trusted, and the notes are what plays.
            if same_vocabulary && !bar.tokens.is_empty() {
                validate_bar_tokens(&bar.tokens).map_err(|e| format!("saved bar {} is invalid: {e}", bar.index))?;
            }
            let tokens = (same_vocabulary && !bar.tokens.is_empty())
                .then_some(bar.tokens)
                .filter(|tokens| decoded_notes(tokens) == notes);
            bars.push(StoredBar { index: bar.index, notes, tokens });
        }
        let header = self
            .header
            .filter(|_| same_vocabulary)
            .and_then(|h| <[u32; HEADER_LENGTH]>::try_from(h).ok())
            .filter(header_is_valid);
        Ok(PersistedSession {
            model_id: self.model_id,
            variation: self.variation,
            locked: self.locked,
            ends_at_seam: self.ends_at_seam,
            header,
            settings: self.settings.map(GenSettings::from),
            bars,
        })
    }
}

fn validate_notes(notes: &[Note]) -> Result<(), String> {
    if notes.len() > crate::link::MAX_NOTES_PER_BAR {
        return Err(format!("{} notes, at most {}", notes.len(), crate::link::MAX_NOTES_PER_BAR));
    }
    for n in notes {
        if n.start_tick >= TICKS_PER_BAR
            || n.pitch > 127
            || !(1..=127).contains(&n.velocity)
            || !(1..=MAX_DURATION_TICKS).contains(&n.duration_ticks)
        {
            return Err(format!("note {n:?} is out of range"));
        }
    }
    Ok(())
}

/// The notes a bar's tokens say, in playing order.
fn decoded_notes(tokens: &[u32]) -> Vec<Note> {
    crate::generator::composer::bar_notes(tokens)
}

fn header_is_valid(header: &[u32; HEADER_LENGTH]) -> bool {
    let mut decoder = crate::music::tokens::Decoder::new();
    header.iter().all(|&id| decoder.push(id).is_ok())
}

/// A bar's tokens must start with BAR and follow the grammar of today's vocabulary.
pub fn validate_bar_tokens(tokens: &[u32]) -> Result<(), String> {
    if tokens.len() > 4096 {
        return Err("too many tokens".into());
    }
    let mut decoder = crate::music::tokens::Decoder::at_bar_start(0);
    if tokens.first() != Some(&crate::music::vocab::Token::Bar.id()) {
        return Err("does not start with BAR".into());
    }
    for (i, &id) in tokens.iter().enumerate() {
        if id as usize >= VOCAB_SIZE {
            return Err(format!("token {id} is outside the vocabulary"));
        }
        if i > 0 && id == crate::music::vocab::Token::Bar.id() {
            return Err("holds more than one bar".into());
        }
        decoder.push(id)?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Format 1 (release 0.1, trio-base-0.2): tokens only, in vocabulary 2e87dead809d1575
// ------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    #[allow(dead_code)]
    format: u32,
    model_id: String,
    variation: u32,
    locked: [bool; 3],
    header: Option<[u32; 4]>,
    settings: Option<SettingsV1>,
    bars: Vec<BarV1>,
    #[allow(dead_code)]
    stamp: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsV1 {
    temperature: f32,
    top_p: f32,
    seed: u32,
    variation: u32,
    key_lock: i32,
    mood: Option<u8>,
    parts_on: [bool; 3],
    registers: [(u8, u8); 3],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BarV1 {
    index: i64,
    tokens: Vec<u32>,
}

/// Format 1's vocabulary, frozen here so its projects decode whatever today's vocabulary is.
mod vocab_v1 {
    pub const HASH: &str = "2e87dead809d1575";
    pub const SIZE: u32 = 356;
    pub const BAR: u32 = 39;
    pub const POSITION: u32 = 40;
    pub const CHORD: u32 = 88;
    pub const PART: u32 = 197;
    pub const PITCH: u32 = 200;
    pub const DURATION: u32 = 328;
    pub const VELOCITY: u32 = 348;
    pub const VELOCITY_BIN_WIDTH: u8 = 16;
    pub const HEADER_END: u32 = 39;
}

/// A format-1 bar's notes, decoded with format 1's vocabulary.
fn notes_v1(tokens: &[u32]) -> Result<Vec<Note>, String> {
    use vocab_v1::*;
    if tokens.len() > 4096 {
        return Err("too many tokens".into());
    }
    if tokens.first() != Some(&BAR) {
        return Err("does not start with BAR".into());
    }
    let (mut position, mut part, mut pitch, mut duration): (Option<u32>, Option<Part>, Option<u8>, Option<u32>) =
        (None, None, None, None);
    let mut notes = Vec::new();
    for &id in &tokens[1..] {
        match id {
            id if id >= SIZE => return Err(format!("token {id} is outside the vocabulary")),
            id if (POSITION..CHORD).contains(&id) => {
                let tick = id - POSITION;
                if position.is_some_and(|p| tick <= p) {
                    return Err("positions do not rise".into());
                }
                (position, part) = (Some(tick), None);
            }
            id if (CHORD..PART).contains(&id) => {}
            id if (PART..PITCH).contains(&id) => {
                position.ok_or("a part before any position")?;
                part = Part::from_index((id - PART) as usize);
            }
            id if (PITCH..DURATION).contains(&id) => {
                part.ok_or("a pitch before any part")?;
                pitch = Some((id - PITCH) as u8);
            }
            id if (DURATION..VELOCITY).contains(&id) => {
                pitch.ok_or("a duration before its pitch")?;
                duration = Some(DURATIONS_V1[(id - DURATION) as usize]);
            }
            id if id >= VELOCITY => {
                let (Some(start_tick), Some(part), Some(p), Some(d)) = (position, part, pitch, duration) else {
                    return Err("a velocity before its note".into());
                };
                let bin = (id - VELOCITY) as u8;
                let velocity = (bin * VELOCITY_BIN_WIDTH + VELOCITY_BIN_WIDTH / 2).min(127);
                notes.push(Note { start_tick, part, pitch: p, duration_ticks: d, velocity });
                (pitch, duration) = (None, None);
            }
            _ => return Err(format!("token {id} does not belong inside a bar")),
        }
    }
    if pitch.is_some() {
        return Err("ends inside a note".into());
    }
    notes.sort_by_key(|n| (n.start_tick, n.part, std::cmp::Reverse(n.pitch)));
    Ok(notes)
}

/// Note lengths of format 1's vocabulary, in ticks.
const DURATIONS_V1: [u32; 20] = [2, 3, 4, 6, 8, 9, 12, 15, 18, 24, 30, 36, 42, 48, 60, 72, 96, 120, 144, 192];

impl FileV1 {
    fn migrate(self) -> Result<PersistedSession, String> {
        // Tokens stay usable for conditioning only while today's vocabulary is format 1's.
        let same_vocabulary = vocab_hash() == vocab_v1::HASH && DURATIONS_TICKS == DURATIONS_V1;
        let mut bars = Vec::with_capacity(self.bars.len());
        for bar in self.bars {
            let notes = notes_v1(&bar.tokens).map_err(|e| format!("saved bar {} is invalid: {e}", bar.index))?;
            // Tokens condition generation only when today's grammar reads them as the same notes.
            let tokens = same_vocabulary
                .then_some(bar.tokens)
                .filter(|tokens| validate_bar_tokens(tokens).is_ok() && decoded_notes(tokens) == notes);
            bars.push(StoredBar { index: bar.index, notes, tokens });
        }
        if let Some(header) = self.header {
            if header.iter().any(|&id| id >= vocab_v1::HEADER_END) {
                return Err("saved phrase header is invalid".into());
            }
        }
        Ok(PersistedSession {
            model_id: self.model_id,
            variation: self.variation,
            locked: self.locked,
            ends_at_seam: false,
            // Format 1's header has no style: it is never today's.
            header: None,
            settings: self.settings.map(|s| GenSettings {
                temperature: s.temperature,
                top_p: s.top_p,
                seed: s.seed,
                variation: s.variation,
                key_lock: s.key_lock,
                mood: s.mood,
                parts_on: s.parts_on,
                registers: s.registers,
                ..GenSettings::default()
            }),
            bars,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::vocab::Token;

    /// One bass note at the downbeat, in format 1's vocabulary (no control tokens).
    fn bar_tokens_v1() -> Vec<u32> {
        vec![
            Token::Bar.id(),
            Token::Position(0).id(),
            Token::Part(Part::Bass).id(),
            Token::Pitch(36).id(),
            Token::Duration(3).id(),
            Token::Velocity(5).id(),
        ]
    }

    /// The same bar in today's vocabulary.
    fn bar_tokens() -> Vec<u32> {
        let note = Note { start_tick: 0, part: Part::Bass, pitch: 36, duration_ticks: 6, velocity: 88 };
        let mut tokens = Vec::new();
        crate::music::tokens::encode_bar(&[note], &[], &mut tokens);
        tokens
    }

    fn session() -> PersistedSession {
        let tokens = bar_tokens();
        PersistedSession {
            model_id: "m/h".into(),
            variation: 2,
            locked: [false, true, false],
            ends_at_seam: true,
            header: None,
            settings: Some(GenSettings::default()),
            bars: vec![StoredBar { index: 0, notes: decoded_notes(&tokens), tokens: Some(tokens) }],
        }
    }

    #[test]
    fn round_trips_and_serializes_identically() {
        let a = serde_json::to_string(&session()).unwrap();
        assert_eq!(a, serde_json::to_string(&session()).unwrap());
        assert_eq!(serde_json::from_str::<PersistedSession>(&a).unwrap(), session());
    }

    #[test]
    fn another_vocabulary_keeps_the_notes_and_drops_the_tokens() {
        let json = serde_json::to_string(&session()).unwrap().replace(&vocab_hash(), "0000000000000000");
        let loaded = serde_json::from_str::<PersistedSession>(&json).unwrap();
        assert_eq!(loaded.bars[0].notes, session().bars[0].notes);
        assert_eq!(loaded.bars[0].tokens, None);
    }

    #[test]
    fn a_field_added_later_is_ignored_and_a_missing_one_takes_its_default() {
        let mut value = serde_json::to_value(session()).unwrap();
        value["settings"].as_object_mut().unwrap().remove("top_p");
        value["settings"]["swing"] = serde_json::json!(0.6);
        let loaded: PersistedSession = serde_json::from_value(value).unwrap();
        assert_eq!(loaded.settings.unwrap().top_p, GenSettings::default().top_p);
    }

    #[test]
    fn a_project_saved_before_styles_plays_pop_with_every_control_on_auto() {
        let mut value = serde_json::to_value(session()).unwrap();
        let settings = value["settings"].as_object_mut().unwrap();
        for field in ["style", "density", "arp_motion", "bass_drive"] {
            assert!(settings.remove(field).is_some(), "{field} is saved");
        }
        // That release's header had four tokens, in its own vocabulary.
        value["header"] = serde_json::json!([1, 7, 20, 35]);
        value["vocab_hash"] = serde_json::json!("2e87dead809d1575");
        let loaded: PersistedSession = serde_json::from_value(value).unwrap();
        let settings = loaded.settings.unwrap();
        assert_eq!(settings.style, Style::Pop);
        assert_eq!(settings.controls, ControlChoice::AUTO);
        assert_eq!(loaded.header, None);
        assert_eq!(loaded.bars[0].notes, session().bars[0].notes, "the saved notes play as they are");
        value_without_seam_rule_keeps_ringing(session());
        // And what this build saves comes back as it was.
        let chosen = GenSettings {
            style: Style::Dance,
            controls: ControlChoice {
                density: [Some(4), None, Some(7)],
                arp_motion: Some(ArpMotion::Arpeggio),
                bass_drive: Some(BassDrive::Offbeat),
            },
            ..GenSettings::default()
        };
        let saved = PersistedSession { settings: Some(chosen), ..session() };
        let json = serde_json::to_string(&saved).unwrap();
        assert_eq!(serde_json::from_str::<PersistedSession>(&json).unwrap().settings, Some(chosen));
    }

    /// A file written before the seam rule has no `ends_at_seam`: its loop keeps ringing across.
    fn value_without_seam_rule_keeps_ringing(session: PersistedSession) {
        let mut value = serde_json::to_value(session).unwrap();
        value.as_object_mut().unwrap().remove("ends_at_seam").expect("saved");
        assert!(!serde_json::from_value::<PersistedSession>(value).unwrap().ends_at_seam);
    }

    #[test]
    fn format_1_migrates_with_its_own_vocabulary() {
        let tokens = bar_tokens_v1();
        let json = format!(
            "{{\"format\":1,\"model_id\":\"trio-base-0.2/{}\",\"variation\":3,\"locked\":[true,false,false],\
             \"header\":null,\"settings\":null,\"bars\":[{{\"index\":0,\"tokens\":{tokens:?}}}],\"stamp\":9}}",
            vocab_v1::HASH
        );
        let loaded = serde_json::from_str::<PersistedSession>(&json).unwrap();
        assert_eq!(loaded.variation, 3);
        assert_eq!(
            loaded.bars[0].notes,
            vec![Note { start_tick: 0, part: Part::Bass, pitch: 36, duration_ticks: 6, velocity: 88 }]
        );
        assert_eq!(loaded.bars[0].tokens, None, "format 1's tokens are not today's vocabulary: the notes play");
        assert_eq!(loaded.settings, None);
    }

    #[test]
    fn refuses_garbage_and_newer_formats_with_a_message() {
        assert!(serde_json::from_str::<PersistedSession>("[1,2,3]").is_err());
        assert!(serde_json::from_str::<PersistedSession>("{\"format\":1}").is_err());
        let mut bad = bar_tokens_v1();
        bad.swap(1, 2);
        let json = format!(
            "{{\"format\":1,\"model_id\":\"\",\"variation\":0,\"locked\":[false,false,false],\"header\":null,\
             \"settings\":null,\"bars\":[{{\"index\":0,\"tokens\":{bad:?}}}],\"stamp\":0}}"
        );
        let err = serde_json::from_str::<PersistedSession>(&json).unwrap_err().to_string();
        assert!(err.contains("invalid"), "{err}");
        let newer = serde_json::to_string(&session()).unwrap().replace("\"format\":2", "\"format\":9");
        let err = serde_json::from_str::<PersistedSession>(&newer).unwrap_err().to_string();
        assert!(err.contains("newer Neural Trio"), "{err}");
        let out_of_range = serde_json::to_string(&session()).unwrap().replace("\"pitch\":36", "\"pitch\":200");
        assert!(serde_json::from_str::<PersistedSession>(&out_of_range).is_err());
    }
}

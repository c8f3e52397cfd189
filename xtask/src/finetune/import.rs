//! One of the user's MIDI files → a phrase on our grid with its conditioning header, estimating what
//! the file does not say. The rules (the model card repeats them):
//!
//! - **Time**: a quarter note is a beat; bars are 4 beats from the file's start. A file whose meter
//!   is not 2, 4 or 8 beats a bar (3/4, 6/8, 5/4, …), or changes to such a meter, is skipped with the
//!   reason (2/4 is common in POP909's files: two of its bars make one of ours).
//!   SMPTE-timed files are skipped. The tempo is the file's first tempo (120 BPM when it has none).
//! - **Voices**: each track, or each channel of a track that holds several; drums (channel 10) are
//!   left out. A voice's part comes from the roles file, else its track or instrument name, else its
//!   General MIDI program (`roles.rs`).
//! - **Skyline**: when no voice is the lead, the highest note of each onset among the voices with
//!   no role (or, failing those, the accompaniment) becomes the lead.
//! - **Bass**: the bass voices' lowest note of each onset; with no bass voice, the accompaniment's
//!   lowest note of each onset below G3 (as POP909's piano is split). Lead and bass notes end no
//!   later than their part's next onset.
//! - **Grid**: onsets and ends snap to 16ths, or to 16th triplets where that is much closer (as for
//!   POP909); lengths and velocities go onto the vocabulary's.
//! - **Key**: the Krumhansl–Kessler profile that fits the notes' duration-weighted pitch classes
//!   best (C major when none stands out). **Mood** from the key's mode and the tempo (fast ≥ 90 BPM).
//! - **Chords**: every half bar, the chord that the accompaniment's sounding notes spell (none when
//!   the file has no accompaniment: the model writes its own when it completes the parts).
//! - Empty bars at the start are cut; at most [`MAX_BARS`] bars are kept.

use super::roles::{role_by_name, role_by_program, Role, RolesFile};
use crate::pop909::{
    assemble_phrase, dedup_notes, quantize_tick, split_piano, to_note, trim_bass, GridNote, BASS_BELOW_PITCH,
};
use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};
use neural_trio::music::controls::Style;
use neural_trio::music::harmony::{estimate_key, recognize, ChordValue};
use neural_trio::music::tokens::Header;
use neural_trio::music::vocab::{tempo_bin, Key, Mood};
use neural_trio::music::{Note, Part, Phrase, TICKS_PER_BAR, TICKS_PER_BEAT};
use std::collections::BTreeMap;

/// Bars kept from one file (longer files are cut): about 13 minutes at 120 BPM.
pub const MAX_BARS: u32 = 400;
/// Tempo at or above which a song counts as fast for its mood.
const FAST_BPM: f64 = 90.0;
/// The General MIDI drum channel (10, 0-based 9).
const DRUM_CHANNEL: u8 = 9;
/// Chords are read every half bar.
const CHORD_WINDOW_TICKS: u32 = TICKS_PER_BAR / 2;

/// A file as the model will learn it.
#[derive(Debug, Clone)]
pub struct Imported {
    pub header: Header,
    pub phrase: Phrase,
    /// One line per voice: its number, name, program, notes and the part it became (and why).
    pub voices: Vec<String>,
    /// The parts the file itself has (the others are completed by the base model).
    pub found: [bool; 3],
    pub bpm: f64,
    /// False when no key stood out (C major assumed).
    pub key_found: bool,
}

impl Imported {
    /// The song cut after `bars` bars.
    pub fn first_bars(mut self, bars: u32) -> Imported {
        if self.phrase.bars > bars {
            let end = bars * TICKS_PER_BAR;
            self.phrase.notes.retain(|n| n.start_tick < end);
            self.phrase.chords.retain(|c| c.start_tick < end);
            self.phrase.bars = bars;
            self.found = Part::ALL.map(|p| self.phrase.notes.iter().any(|n| n.part == p));
        }
        self
    }
}

/// One voice of the file, in MIDI ticks.
struct Voice {
    name: String,
    program: Option<u8>,
    notes: Vec<RawNote>,
}

#[derive(Debug, Clone, Copy)]
struct RawNote {
    start: u64,
    end: u64,
    pitch: u8,
    velocity: u8,
}

/// Reads `bytes` (the file at `relative_path` in the user's folder). Every reason to skip it is an
/// `Err` in plain words.
pub fn import(bytes: &[u8], relative_path: &str, roles: &RolesFile) -> Result<Imported, String> {
    let smf = Smf::parse(bytes).map_err(|e| format!("not a readable MIDI file ({e})"))?;
    // midly reads what it can of a damaged file: a missing track or end marker is a cut-off file.
    let declared_tracks = bytes.get(10..12).map_or(0, |n| u16::from_be_bytes([n[0], n[1]]) as usize);
    let ended = |track: &Vec<midly::TrackEvent>| {
        matches!(track.last().map(|e| e.kind), Some(TrackEventKind::Meta(MetaMessage::EndOfTrack)))
    };
    if smf.tracks.len() < declared_tracks || !smf.tracks.iter().all(ended) {
        return Err("not a readable MIDI file (truncated: it ends in the middle of a track)".into());
    }
    let ppq = match smf.header.timing {
        Timing::Metrical(t) if t.as_int() > 0 => t.as_int() as u64,
        Timing::Metrical(_) => return Err("a MIDI file with 0 ticks per beat".into()),
        Timing::Timecode(..) => return Err("SMPTE-timed (no beats to follow)".into()),
    };
    let (voices, bpm, drum_notes) = read_voices(&smf, ppq)?;
    if voices.is_empty() {
        return Err(if drum_notes > 0 { "drums only (channel 10)".into() } else { "no notes".into() });
    }

    let mut descriptions = Vec::new();
    let (mut lead, mut accompaniment, mut bass, mut unassigned) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (index, voice) in voices.iter().enumerate() {
        let (role, why) = match roles.role(relative_path, index, &voice.name) {
            Some(role) => (Some(role), "roles file"),
            None => match role_by_name(&voice.name) {
                Some(role) => (Some(role), "name"),
                None => (voice.program.and_then(role_by_program), "program"),
            },
        };
        let bucket = match role {
            Some(Role::Lead) => &mut lead,
            Some(Role::Arp) => &mut accompaniment,
            Some(Role::Bass) => &mut bass,
            None => &mut unassigned,
            Some(Role::Skip) => {
                let name = display_name(&voice.name);
                descriptions.push(format!("{index}: {name}, {} notes → left out (roles file)", voice.notes.len()));
                continue;
            }
        };
        bucket.extend(quantize(&voice.notes, ppq));
        let program = voice.program.map(|p| format!(", program {p}")).unwrap_or_default();
        let became = match role {
            Some(role) => format!("{} (by {why})", role.name()),
            None => "no role: skyline split".to_string(),
        };
        descriptions.push(format!(
            "{index}: {}{program}, {} notes → {became}",
            display_name(&voice.name),
            voice.notes.len()
        ));
    }
    let lead_from_accompaniment = lead.is_empty() && unassigned.is_empty();
    if lead.is_empty() {
        let pool = if lead_from_accompaniment { &mut accompaniment } else { &mut unassigned };
        let (top, rest) = top_voice(pool);
        lead = top;
        *pool = rest;
        if lead_from_accompaniment && !lead.is_empty() {
            descriptions
                .push("no lead voice: the accompaniment's top voice (highest note sounding, G3 up) is the lead".into());
        }
    }
    accompaniment.append(&mut unassigned);
    let (bass, arp) = if bass.is_empty() {
        split_piano(&accompaniment)
    } else {
        let (low, _) = skyline_by(&bass, |a, b| a.pitch < b.pitch);
        (low, accompaniment)
    };
    let (lead, _) = skyline(&lead);

    let key_weights = pitch_class_weights(lead.iter().chain(&arp).chain(&bass));
    let key_found = estimate_key(&key_weights);
    let key = key_found.unwrap_or(Key { tonic: 0, minor: false });
    let chords = chord_events(&arp, &bass, key);

    let mut notes: Vec<Note> = Vec::new();
    notes.extend(trim_bass(&lead).into_iter().map(|(n, length)| to_note(&n, Part::Lead, length)));
    notes.extend(arp.iter().map(|n| to_note(n, Part::Arp, n.length)));
    notes.extend(trim_bass(&bass).into_iter().map(|(n, length)| to_note(&n, Part::Bass, length)));
    dedup_notes(&mut notes);
    let (phrase, _) = assemble_phrase(notes, &chords);
    if phrase.notes.is_empty() {
        return Err("no notes on the grid".into());
    }
    let found = Part::ALL.map(|p| phrase.notes.iter().any(|n| n.part == p));
    let mood = Mood::from_mode_and_tempo(key.minor, bpm >= FAST_BPM);
    // Your own music is taught under the Pop style's tag (the one the plugin starts in).
    let header = Header { tempo_bin: tempo_bin(bpm as f32), key, mood, style: Style::Pop };
    Ok(Imported { header, phrase, voices: descriptions, found, bpm, key_found: key_found.is_some() }
        .first_bars(MAX_BARS))
}

fn display_name(name: &str) -> String {
    if name.is_empty() {
        "(unnamed)".into()
    } else {
        format!("\"{name}\"")
    }
}

/// Every voice with notes (drums left out, counted), the first tempo in BPM, and the drum notes.
fn read_voices(smf: &Smf, ppq: u64) -> Result<(Vec<Voice>, f64, usize), String> {
    let mut voices = Vec::new();
    let mut first_tempo: Option<(u64, f64)> = None;
    let mut drum_notes = 0;
    for track in &smf.tracks {
        let mut tick: u64 = 0;
        let mut track_name = String::new();
        let mut instrument = String::new();
        // Per channel: its program, its notes, and the notes sounding (pitch → starts, oldest first).
        let mut channels: BTreeMap<u8, (Option<u8>, Vec<RawNote>)> = BTreeMap::new();
        let mut open: BTreeMap<(u8, u8), Vec<(u64, u8)>> = BTreeMap::new();
        for event in track {
            tick += event.delta.as_int() as u64;
            match event.kind {
                TrackEventKind::Meta(MetaMessage::TrackName(name)) => track_name = text(name),
                TrackEventKind::Meta(MetaMessage::InstrumentName(name)) => instrument = text(name),
                TrackEventKind::Meta(MetaMessage::Tempo(us_per_beat)) => {
                    let bpm = 60e6 / us_per_beat.as_int().max(1) as f64;
                    if first_tempo.is_none_or(|(at, _)| tick < at) {
                        first_tempo = Some((tick, bpm));
                    }
                }
                TrackEventKind::Meta(MetaMessage::TimeSignature(numerator, denominator_power, _, _)) => {
                    // Quarter beats in a bar: 4 for 4/4 and 2/2, 2 for 2/4 (two make one of ours), 3
                    // for 3/4 and 6/8.
                    let quarters = numerator as f64 * 4.0 / 2f64.powi(denominator_power as i32);
                    if ![2.0, 4.0, 8.0].contains(&quarters) {
                        let meter = format!("{numerator}/{}", 1u32 << denominator_power.min(6));
                        return Err(match tick {
                            0 => format!("in {meter} (only 4 beats a bar is modelled)"),
                            _ => format!(
                                "changes to {meter} at beat {} (only 4 beats a bar is modelled)",
                                tick / ppq + 1
                            ),
                        });
                    }
                }
                TrackEventKind::Midi { channel, message } => {
                    let channel = channel.as_int();
                    match message {
                        MidiMessage::ProgramChange { program } => {
                            channels.entry(channel).or_default().0.get_or_insert(program.as_int());
                        }
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                            open.entry((channel, key.as_int())).or_default().push((tick, vel.as_int()));
                        }
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            let starts = open.entry((channel, key.as_int())).or_default();
                            if !starts.is_empty() {
                                let (start, velocity) = starts.remove(0);
                                let note = RawNote { start, end: tick.max(start + 1), pitch: key.as_int(), velocity };
                                channels.entry(channel).or_default().1.push(note);
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // Notes never released end with their track.
        for ((channel, pitch), starts) in open {
            for (start, velocity) in starts {
                let note = RawNote { start, end: tick.max(start + ppq / 4), pitch, velocity };
                channels.entry(channel).or_default().1.push(note);
            }
        }
        let name =
            if track_name.trim().is_empty() { instrument.trim().to_string() } else { track_name.trim().to_string() };
        let several = channels.values().filter(|(_, notes)| !notes.is_empty()).count() > 1;
        for (channel, (program, mut notes)) in channels {
            if channel == DRUM_CHANNEL {
                drum_notes += notes.len();
                continue;
            }
            if notes.is_empty() {
                continue;
            }
            notes.sort_by_key(|n| (n.start, n.pitch));
            let name = if several { format!("{name} ch {}", channel + 1).trim().to_string() } else { name.clone() };
            voices.push(Voice { name, program, notes });
        }
    }
    Ok((voices, first_tempo.map_or(120.0, |(_, bpm)| bpm), drum_notes))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().filter(|c| !c.is_control()).collect()
}

/// MIDI ticks → grid notes (12 ticks a beat), ends snapped like onsets, at least 2 ticks long.
fn quantize(notes: &[RawNote], ppq: u64) -> Vec<GridNote> {
    let grid = |midi_ticks: u64| quantize_tick(midi_ticks as f64 * TICKS_PER_BEAT as f64 / ppq as f64);
    notes
        .iter()
        .filter_map(|n| {
            let start = grid(n.start);
            let limit = (MAX_BARS as i64 + 64) * TICKS_PER_BAR as i64;
            (start < limit).then(|| GridNote {
                tick: start as u32,
                length: (grid(n.end) - start).max(2) as u32,
                pitch: n.pitch,
                velocity: n.velocity,
            })
        })
        .collect()
}

/// (the lead within one voice that plays everything, the rest): a note at or above the bass register
/// under which no higher note starts or still sounds (a note still sounding for less than a 16th is
/// a legato overlap, not a note above). Onsets alone are not enough: in a broken chord under a held
/// melody note, and in a transcription where a chord's notes land a tick apart, each note starts
/// alone.
fn top_voice(notes: &[GridNote]) -> (Vec<GridNote>, Vec<GridNote>) {
    let legato_ticks = TICKS_PER_BEAT / 4;
    let mut sorted = notes.to_vec();
    sorted.sort_by_key(|n| (n.tick, n.pitch));
    let (mut top, mut rest) = (Vec::new(), Vec::new());
    let mut sounding: Vec<GridNote> = Vec::new();
    for (i, note) in sorted.iter().enumerate() {
        sounding.retain(|m| m.tick + m.length > note.tick + legato_ticks);
        let higher_now = sorted[i + 1..].iter().take_while(|m| m.tick == note.tick).any(|m| m.pitch > note.pitch);
        let higher_held = sounding.iter().any(|m| m.pitch > note.pitch);
        if note.pitch >= BASS_BELOW_PITCH && !higher_now && !higher_held {
            top.push(*note);
        } else {
            rest.push(*note);
        }
        sounding.push(*note);
    }
    (top, rest)
}

/// (the highest note of each onset, the rest).
fn skyline(notes: &[GridNote]) -> (Vec<GridNote>, Vec<GridNote>) {
    skyline_by(notes, |a, b| a.pitch > b.pitch)
}

/// (the note of each onset that `better` prefers, the rest), both sorted by (tick, pitch).
fn skyline_by(notes: &[GridNote], better: impl Fn(&GridNote, &GridNote) -> bool) -> (Vec<GridNote>, Vec<GridNote>) {
    let mut by_tick: BTreeMap<u32, GridNote> = BTreeMap::new();
    let mut rest = Vec::new();
    for note in notes {
        match by_tick.get_mut(&note.tick) {
            Some(best) if better(note, best) => rest.push(std::mem::replace(best, *note)),
            Some(_) => rest.push(*note),
            None => {
                by_tick.insert(note.tick, *note);
            }
        }
    }
    rest.sort_by_key(|n| (n.tick, n.pitch));
    (by_tick.into_values().collect(), rest)
}

fn pitch_class_weights<'a>(notes: impl Iterator<Item = &'a GridNote>) -> [f32; 12] {
    let mut weights = [0.0; 12];
    for n in notes {
        weights[(n.pitch % 12) as usize] += n.length as f32;
    }
    weights
}

/// A chord event (grid tick, chord) wherever the accompaniment's chord changes, read every half bar.
fn chord_events(arp: &[GridNote], bass: &[GridNote], key: Key) -> Vec<(i64, ChordValue)> {
    let accompaniment: Vec<&GridNote> = arp.iter().chain(bass).collect();
    let Some(end) = accompaniment.iter().map(|n| n.tick + n.length).max() else { return Vec::new() };
    let mut events: Vec<(i64, ChordValue)> = Vec::new();
    for window in (0..end).step_by(CHORD_WINDOW_TICKS as usize) {
        let pitches: Vec<u8> = accompaniment
            .iter()
            .filter(|n| n.tick < window + CHORD_WINDOW_TICKS && n.tick + n.length > window)
            .map(|n| n.pitch)
            .collect();
        if pitches.is_empty() {
            continue;
        }
        let chord = recognize(&pitches, Some(key));
        if events.last().is_none_or(|&(_, last)| last != chord) {
            events.push((window as i64, chord));
        }
    }
    events
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use midly::num::{u15, u24, u28, u4, u7};
    use midly::{Format, Header as SmfHeader, TrackEvent};

    /// Notes as (beat, beats long, pitch).
    pub type TestNotes<'a> = &'a [(f64, f64, u8)];

    /// A format-1 file: one track per (name, program, channel, notes).
    pub fn midi_file(ppq: u16, meter: Option<(u8, u8)>, tracks: &[(&str, Option<u8>, u8, TestNotes)]) -> Vec<u8> {
        let mut smf = Smf::new(SmfHeader::new(Format::Parallel, Timing::Metrical(u15::new(ppq))));
        let mut conductor =
            vec![TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000))) }];
        if let Some((numerator, power)) = meter {
            conductor.push(TrackEvent {
                delta: u28::new(0),
                kind: TrackEventKind::Meta(MetaMessage::TimeSignature(numerator, power, 24, 8)),
            });
        }
        conductor.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
        smf.tracks.push(conductor);
        for &(name, program, channel, notes) in tracks {
            let mut events: Vec<(u64, TrackEventKind)> =
                vec![(0, TrackEventKind::Meta(MetaMessage::TrackName(name.as_bytes())))];
            let channel = u4::new(channel);
            if let Some(program) = program {
                events.push((
                    0,
                    TrackEventKind::Midi { channel, message: MidiMessage::ProgramChange { program: u7::new(program) } },
                ));
            }
            for &(beat, beats, pitch) in notes {
                let (on, off) = ((beat * ppq as f64) as u64, ((beat + beats) * ppq as f64) as u64);
                let key = u7::new(pitch);
                events.push((
                    on,
                    TrackEventKind::Midi { channel, message: MidiMessage::NoteOn { key, vel: u7::new(100) } },
                ));
                events.push((
                    off,
                    TrackEventKind::Midi { channel, message: MidiMessage::NoteOff { key, vel: u7::new(0) } },
                ));
            }
            events.sort_by_key(|(t, kind)| {
                (*t, matches!(kind, TrackEventKind::Midi { message: MidiMessage::NoteOn { .. }, .. }))
            });
            let mut track = Vec::new();
            let mut last = 0;
            for (t, kind) in events {
                track.push(TrackEvent { delta: u28::new((t - last) as u32), kind });
                last = t;
            }
            track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
            smf.tracks.push(track);
        }
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        bytes
    }

    const MELODY: &[(f64, f64, u8)] = &[(0.0, 1.0, 72), (1.0, 0.5, 74), (1.5, 0.5, 76), (2.0, 2.0, 79), (4.0, 1.0, 77)];
    const CHORDS: &[(f64, f64, u8)] =
        &[(0.0, 4.0, 60), (0.0, 4.0, 64), (0.0, 4.0, 67), (4.0, 4.0, 57), (4.0, 4.0, 60), (4.0, 4.0, 65)];
    const BASS: &[(f64, f64, u8)] = &[(0.0, 2.0, 36), (2.0, 2.0, 36), (4.0, 4.0, 41)];

    fn parts(imported: &Imported, part: Part) -> Vec<(u32, u8, u32)> {
        imported
            .phrase
            .notes
            .iter()
            .filter(|n| n.part == part)
            .map(|n| (n.start_tick, n.pitch, n.duration_ticks))
            .collect()
    }

    #[test]
    fn named_tracks_become_their_parts_with_key_and_chords_estimated() {
        let file = midi_file(
            480,
            Some((4, 2)),
            &[("Melody", None, 0, MELODY), ("Keys", Some(4), 1, CHORDS), ("Bass", Some(33), 2, BASS)],
        );
        let imported = import(&file, "a.mid", &RolesFile::default()).unwrap();
        assert_eq!(parts(&imported, Part::Lead), [(0, 72, 12), (12, 74, 6), (18, 76, 6), (24, 79, 24), (48, 77, 12)]);
        assert_eq!(parts(&imported, Part::Bass).iter().map(|n| n.1).collect::<Vec<_>>(), [36, 36, 41]);
        assert_eq!(parts(&imported, Part::Arp).len(), 6);
        assert_eq!(imported.found, [true; 3]);
        assert_eq!((imported.header.key, imported.bpm), (Key { tonic: 0, minor: false }, 120.0));
        let chords: Vec<_> = imported.phrase.chords.iter().map(|c| (c.start_tick, c.chord)).collect();
        assert_eq!(chords[0], (0, recognize(&[36, 60, 64, 67], None)), "C major on bar 1");
        assert!(chords.iter().any(|&(t, c)| t == 48 && c == recognize(&[41, 57, 60, 65], None)), "{chords:?}");
        assert!(imported.voices[0].contains("lead (by name)"), "{:?}", imported.voices);
    }

    #[test]
    fn an_unnamed_piano_is_split_by_the_skyline_and_a_roles_file_overrides() {
        let piano: Vec<(f64, f64, u8)> = MELODY.iter().chain(CHORDS).chain(BASS).copied().collect();
        let file = midi_file(96, None, &[("", None, 0, &piano)]);
        let imported = import(&file, "b.mid", &RolesFile::default()).unwrap();
        assert_eq!(parts(&imported, Part::Lead).iter().map(|n| n.1).collect::<Vec<_>>(), [72, 74, 76, 79, 77]);
        assert_eq!(parts(&imported, Part::Bass).iter().map(|n| n.1).collect::<Vec<_>>(), [36, 36, 41]);
        let roles = RolesFile::parse("b.mid 0=bass").unwrap();
        let as_bass = import(&file, "b.mid", &roles).unwrap();
        assert_eq!(as_bass.found, [false, false, true], "one voice, all bass: nothing left for lead or arp");
    }

    #[test]
    fn one_voice_playing_everything_keeps_broken_chords_and_lone_bass_notes_out_of_the_lead() {
        // A held melody note over a broken chord, a bass note a tick before its chord (as a
        // transcription writes it), a legato overlap of a 16th.
        let melody: TestNotes = &[(0.0, 1.9, 79), (2.0, 2.0, 77)];
        let broken: TestNotes = &[(0.5, 0.25, 60), (1.0, 0.25, 64), (1.5, 0.25, 67)];
        let bass_and_chord: TestNotes = &[(3.9, 0.1, 40), (4.0, 2.0, 64), (4.0, 2.0, 68)];
        let legato: TestNotes = &[(6.0, 1.25, 72), (7.0, 1.0, 71)];
        let voice: Vec<_> = [melody, broken, bass_and_chord, legato].concat();
        let file = midi_file(96, None, &[("", None, 0, &voice)]);
        let imported = import(&file, "d.mid", &RolesFile::default()).unwrap();
        assert_eq!(parts(&imported, Part::Lead).iter().map(|n| n.1).collect::<Vec<_>>(), [79, 77, 68, 72, 71]);
        assert_eq!(parts(&imported, Part::Bass).iter().map(|n| n.1).collect::<Vec<_>>(), [40]);
    }

    #[test]
    fn a_lead_only_file_says_which_parts_are_missing() {
        let file = midi_file(480, None, &[("Vocal", None, 0, MELODY)]);
        let imported = import(&file, "c.mid", &RolesFile::default()).unwrap();
        assert_eq!(imported.found, [true, false, false]);
        assert!(imported.phrase.chords.is_empty(), "no accompaniment, no chords read");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let roles = RolesFile::default();
        let reason = |bytes: &[u8]| import(bytes, "x.mid", &roles).unwrap_err();
        assert!(reason(b"not midi at all").contains("not a readable MIDI file"));
        let full = midi_file(480, None, &[("Melody", None, 0, MELODY)]);
        assert!(reason(&full[..full.len() / 2]).contains("not a readable MIDI file"), "truncated");
        assert!(reason(&midi_file(480, Some((3, 2)), &[("Melody", None, 0, MELODY)])).contains("in 3/4"));
        assert!(reason(&midi_file(480, Some((6, 3)), &[("Melody", None, 0, MELODY)])).contains("in 6/8"));
        assert!(reason(&midi_file(480, None, &[("Drums", None, 9, BASS)])).contains("drums only"));
        assert!(reason(&midi_file(480, None, &[("Empty", None, 0, &[])])).contains("no notes"));
    }
}

//! Standard MIDI files of phrases (midly): one file with a track per part, or one part alone.

use super::phrase::{Note, Part, Phrase, TICKS_PER_BEAT};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

/// MIDI file resolution: a multiple of the grid's 12 ticks per beat.
pub const PPQ: u16 = 480;
const MIDI_TICKS_PER_GRID_TICK: u32 = PPQ as u32 / TICKS_PER_BEAT;

/// What a file should hold.
#[derive(Debug, Clone)]
pub struct MidiExport<'a> {
    pub phrase: &'a Phrase,
    pub tempo_bpm: f64,
    /// MIDI channel (0-based) of each part, indexed by `Part::index()`.
    pub channels: [u8; 3],
    /// Parts to write; each gets its own named track.
    pub parts: &'a [Part],
}

fn track_events(notes: &[&Note], channel: u8) -> Vec<TrackEvent<'static>> {
    // (absolute MIDI tick, is_note_on, pitch, velocity); offs sort before ons at the same tick.
    let mut raw: Vec<(u32, bool, u8, u8)> = Vec::with_capacity(notes.len() * 2);
    for note in notes {
        let on = note.start_tick * MIDI_TICKS_PER_GRID_TICK;
        let off = note.end_tick() * MIDI_TICKS_PER_GRID_TICK;
        raw.push((on, true, note.pitch, note.velocity.max(1)));
        raw.push((off, false, note.pitch, 0));
    }
    raw.sort_by_key(|&(t, on, p, _)| (t, on, p));
    let mut events = Vec::with_capacity(raw.len() + 1);
    let mut last = 0;
    for (tick, on, pitch, velocity) in raw {
        let message = if on {
            MidiMessage::NoteOn { key: u7::new(pitch & 0x7f), vel: u7::new(velocity & 0x7f) }
        } else {
            MidiMessage::NoteOff { key: u7::new(pitch & 0x7f), vel: u7::new(64) }
        };
        events.push(TrackEvent {
            delta: u28::new(tick - last),
            kind: TrackEventKind::Midi { channel: u4::new(channel & 0x0f), message },
        });
        last = tick;
    }
    events
}

/// Encodes a format-1 file: a tempo track, then one track per requested part.
pub fn phrase_to_smf_bytes(export: &MidiExport) -> Vec<u8> {
    let micros_per_beat = (60_000_000.0 / export.tempo_bpm.max(1.0)).round() as u32;
    let mut tracks: Vec<Vec<TrackEvent>> = Vec::new();
    tracks.push(vec![
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::TrackName(b"Neural Trio")) },
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros_per_beat))) },
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::TimeSignature(4, 2, 24, 8)) },
        TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) },
    ]);
    for &part in export.parts {
        let notes: Vec<&Note> = export.phrase.notes_of(part).collect();
        let mut track = vec![TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TrackName(part.name().as_bytes())),
        }];
        track.extend(track_events(&notes, export.channels[part.index()]));
        track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
        tracks.push(track);
    }
    let smf = Smf { header: Header::new(Format::Parallel, Timing::Metrical(u15::new(PPQ))), tracks };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).expect("writing to a Vec cannot fail");
    bytes
}

/// A note read back from a file, in beats (tests read exports back).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileNote {
    pub track: usize,
    pub channel: u8,
    pub pitch: u8,
    pub velocity: u8,
    pub start_beats: f64,
    pub end_beats: f64,
}

/// Reads every note of a metrical file. Unmatched note-ons are closed at the end of their track.
#[cfg(test)]
pub fn read_notes(bytes: &[u8]) -> Result<(Vec<FileNote>, Option<f64>), String> {
    let smf = Smf::parse(bytes).map_err(|e| format!("not a valid MIDI file: {e}"))?;
    let ppq = match smf.header.timing {
        Timing::Metrical(t) => t.as_int() as f64,
        Timing::Timecode(..) => return Err("SMPTE-timed MIDI files are not supported".into()),
    };
    let mut notes = Vec::new();
    let mut tempo_bpm = None;
    for (track_index, track) in smf.tracks.iter().enumerate() {
        let mut tick: u64 = 0;
        let mut open: Vec<(u8, u8, u8, u64)> = Vec::new();
        for event in track {
            tick += event.delta.as_int() as u64;
            match event.kind {
                TrackEventKind::Meta(MetaMessage::Tempo(t)) if tempo_bpm.is_none() => {
                    tempo_bpm = Some(60_000_000.0 / t.as_int().max(1) as f64);
                }
                TrackEventKind::Midi { channel, message } => {
                    let (key, vel, on) = match message {
                        MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int(), vel.as_int() > 0),
                        MidiMessage::NoteOff { key, vel } => (key.as_int(), vel.as_int(), false),
                        _ => continue,
                    };
                    let ch = channel.as_int();
                    if on {
                        open.push((ch, key, vel, tick));
                    } else if let Some(i) = open.iter().position(|o| o.0 == ch && o.1 == key) {
                        let (_, _, v, start) = open.remove(i);
                        notes.push(FileNote {
                            track: track_index,
                            channel: ch,
                            pitch: key,
                            velocity: v,
                            start_beats: start as f64 / ppq,
                            end_beats: tick as f64 / ppq,
                        });
                    }
                }
                _ => {}
            }
        }
        for (ch, key, v, start) in open {
            notes.push(FileNote {
                track: track_index,
                channel: ch,
                pitch: key,
                velocity: v,
                start_beats: start as f64 / ppq,
                end_beats: tick as f64 / ppq,
            });
        }
    }
    notes.sort_by(|a, b| a.start_beats.total_cmp(&b.start_beats).then(a.pitch.cmp(&b.pitch)));
    Ok((notes, tempo_bpm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_file_reads_back_note_for_note() {
        let phrase = Phrase {
            bars: 1,
            notes: vec![
                Note { start_tick: 0, part: Part::Lead, pitch: 72, duration_ticks: 6, velocity: 88 },
                Note { start_tick: 3, part: Part::Bass, pitch: 36, duration_ticks: 45, velocity: 100 },
            ],
            chords: vec![],
        };
        let bytes = phrase_to_smf_bytes(&MidiExport {
            phrase: &phrase,
            tempo_bpm: 128.0,
            channels: [0, 1, 2],
            parts: &Part::ALL,
        });
        let (notes, tempo) = read_notes(&bytes).unwrap();
        assert!((tempo.unwrap() - 128.0).abs() < 0.01);
        assert_eq!(notes.len(), 2);
        assert_eq!((notes[0].channel, notes[0].pitch, notes[0].start_beats, notes[0].end_beats), (0, 72, 0.0, 0.5));
        assert_eq!((notes[1].track, notes[1].channel, notes[1].start_beats, notes[1].end_beats), (3, 2, 0.25, 4.0));
        assert!(read_notes(b"MThd garbage").is_err());
    }
}

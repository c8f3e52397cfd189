//! The MIDI file: notes of every named track, in seconds through the whole tempo map.

use std::collections::HashMap;

/// A note as the MIDI file has it, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RawNote {
    pub(super) start_s: f64,
    pub(super) end_s: f64,
    pub(super) pitch: u8,
    pub(super) velocity: u8,
}

/// Notes of every named track (name upper-cased and trimmed), in seconds through the tempo map.
/// Tracks of the same name are merged.
pub(super) fn read_midi_tracks(bytes: &[u8]) -> Result<HashMap<String, Vec<RawNote>>, String> {
    let mut out: HashMap<String, Vec<RawNote>> = HashMap::new();
    for (name, notes) in read_midi_track_list(bytes)? {
        let entry = out.entry(name).or_default();
        entry.extend(notes);
        entry.sort_by(note_order);
    }
    Ok(out)
}

/// Notes in (onset, pitch) order.
fn note_order(a: &RawNote, b: &RawNote) -> std::cmp::Ordering {
    a.start_s.total_cmp(&b.start_s).then(a.pitch.cmp(&b.pitch))
}

/// Every named track in file order, (name upper-cased and trimmed, its notes in seconds through the
/// tempo map, in onset order); tracks of the same name stay apart. Unnamed tracks are left out.
pub(super) fn read_midi_track_list(bytes: &[u8]) -> Result<Vec<(String, Vec<RawNote>)>, String> {
    use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};
    let smf = Smf::parse(bytes).map_err(|e| format!("unparsable MIDI: {e}"))?;

    // Tempo map: (tick, seconds at tick, seconds per tick from there).
    let seconds_per_tick_at = |micros_per_beat: f64| -> Result<f64, String> {
        match smf.header.timing {
            Timing::Metrical(ppq) if ppq.as_int() > 0 => Ok(micros_per_beat * 1e-6 / ppq.as_int() as f64),
            Timing::Metrical(_) => Err("PPQ is 0".into()),
            Timing::Timecode(fps, sub) => Ok(1.0 / (fps.as_f32() as f64 * sub.max(1) as f64)),
        }
    };
    let mut tempos: Vec<(u64, u32)> = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for event in track {
            tick += event.delta.as_int() as u64;
            if let TrackEventKind::Meta(MetaMessage::Tempo(t)) = event.kind {
                tempos.push((tick, t.as_int()));
            }
        }
    }
    tempos.sort_by_key(|&(t, _)| t);
    let mut map: Vec<(u64, f64, f64)> = vec![(0, 0.0, seconds_per_tick_at(500_000.0)?)];
    for (tick, micros) in tempos {
        if micros == 0 {
            continue;
        }
        let &(t0, s0, spt) = map.last().unwrap();
        let seconds = s0 + (tick - t0) as f64 * spt;
        let spt = seconds_per_tick_at(micros as f64)?;
        if tick == t0 {
            *map.last_mut().unwrap() = (tick, seconds, spt);
        } else {
            map.push((tick, seconds, spt));
        }
    }
    let to_seconds = |tick: u64| {
        let i = map.partition_point(|&(t, _, _)| t <= tick).saturating_sub(1);
        let (t0, s0, spt) = map[i];
        s0 + (tick - t0) as f64 * spt
    };

    let mut out: Vec<(String, Vec<RawNote>)> = Vec::new();
    for track in &smf.tracks {
        let mut name: Option<String> = None;
        let mut tick = 0u64;
        // Sounding notes per (channel, pitch): (onset tick, velocity), first in first out.
        let mut open: Vec<Vec<(u64, u8)>> = vec![Vec::new(); 16 * 128];
        let mut notes: Vec<(u64, u64, u8, u8)> = Vec::new();
        for event in track {
            tick += event.delta.as_int() as u64;
            match event.kind {
                TrackEventKind::Meta(MetaMessage::TrackName(raw)) if name.is_none() => {
                    name = Some(String::from_utf8_lossy(raw).trim().to_uppercase());
                }
                TrackEventKind::Midi { channel, message } => {
                    let (key, on, vel) = match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => (key.as_int(), true, vel.as_int()),
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => (key.as_int(), false, 0),
                        _ => continue,
                    };
                    let slot = &mut open[channel.as_int() as usize * 128 + key as usize];
                    if on {
                        slot.push((tick, vel));
                    } else if !slot.is_empty() {
                        let (start, velocity) = slot.remove(0);
                        notes.push((start, tick, key, velocity));
                    }
                }
                _ => {}
            }
        }
        // Notes never released end with the track.
        for (i, slot) in open.iter().enumerate() {
            for &(start, velocity) in slot {
                notes.push((start, tick, (i % 128) as u8, velocity));
            }
        }
        let Some(name) = name else { continue };
        let mut entry: Vec<RawNote> = notes
            .into_iter()
            .filter(|&(start, end, _, _)| end > start)
            .map(|(start, end, pitch, velocity)| RawNote {
                start_s: to_seconds(start),
                end_s: to_seconds(end),
                pitch,
                velocity,
            })
            .collect();
        entry.sort_by(note_order);
        out.push((name, entry));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midi_seconds_follow_the_tempo_map() {
        use midly::num::{u15, u24, u28, u4, u7};
        use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
        let ev = |delta: u32, kind| TrackEvent { delta: u28::new(delta), kind };
        let note = |key: u8, vel: u8| TrackEventKind::Midi {
            channel: u4::new(0),
            message: MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) },
        };
        let tempo_track = vec![
            ev(0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000)))),
            ev(960, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(1_000_000)))),
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
        ];
        let melody = vec![
            ev(0, TrackEventKind::Meta(MetaMessage::TrackName(b"MELODY"))),
            ev(480, note(72, 90)), // beat 1: 0.5 s
            ev(960, note(72, 0)),  // beat 3: 1.0 + 1.0 s
            ev(0, note(74, 100)),
            ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)), // never released
        ];
        let smf = Smf {
            header: Header::new(Format::Parallel, Timing::Metrical(u15::new(480))),
            tracks: vec![tempo_track, melody],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        let tracks = read_midi_tracks(&bytes).unwrap();
        let m = &tracks["MELODY"];
        assert_eq!(m.len(), 1, "a note with no length is dropped");
        assert!((m[0].start_s - 0.5).abs() < 1e-9 && (m[0].end_s - 2.0).abs() < 1e-9);
        assert_eq!((m[0].pitch, m[0].velocity), (72, 90));
        assert!(read_midi_tracks(b"not a midi file").is_err());
    }
}

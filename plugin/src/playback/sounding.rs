//! The table of notes we have started and not yet ended: the guarantee that every note-on gets
//! its note-off, whatever the transport or the parameters do.

use super::events::{EventKind, EventList, OutEvent};
use super::timeline::BlockSpan;
use crate::music::Part;

/// Far more than three parts can hold at once.
pub const MAX_SOUNDING: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Sounding {
    part: Part,
    channel: u8,
    pitch: u8,
    /// When it started: a single-line part releases only notes that began before the new one.
    start_beats: f64,
    end_beats: f64,
}

pub struct SoundingNotes {
    notes: [Option<Sounding>; MAX_SOUNDING],
}

impl Default for SoundingNotes {
    fn default() -> Self {
        SoundingNotes { notes: [None; MAX_SOUNDING] }
    }
}

fn off(offset: u32, channel: u8, pitch: u8) -> OutEvent {
    OutEvent { offset, kind: EventKind::NoteOff, channel, pitch, velocity: 0 }
}

impl SoundingNotes {
    pub fn count(&self) -> usize {
        self.notes.iter().filter(|n| n.is_some()).count()
    }

    pub fn release_all(&mut self, offset: u32, events: &mut EventList) {
        for slot in self.notes.iter_mut() {
            if let Some(n) = slot.take() {
                events.push(off(offset, n.channel, n.pitch));
            }
        }
    }

    pub fn release_part(&mut self, part: Part, offset: u32, events: &mut EventList) {
        for slot in self.notes.iter_mut() {
            if slot.is_some_and(|n| n.part == part) {
                let n = slot.take().expect("checked");
                events.push(off(offset, n.channel, n.pitch));
            }
        }
    }

    /// Ends every note whose end falls before `until_beats`, at its exact offset in the block.
    pub fn release_ending_before(&mut self, until_beats: f64, span: &BlockSpan, events: &mut EventList) {
        for slot in self.notes.iter_mut() {
            if slot.is_some_and(|n| n.end_beats < until_beats) {
                let n = slot.take().expect("checked");
                events.push(off(span.offset_of_beats(n.end_beats), n.channel, n.pitch));
            }
        }
    }

    /// Starts a note; a key already sounding on that channel is released at the same offset first,
    /// and so is the note before it in a single-line part (lead, bass).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        part: Part,
        channel: u8,
        pitch: u8,
        velocity: u8,
        (start_beats, end_beats): (f64, f64),
        offset: u32,
        events: &mut EventList,
    ) {
        if !events.has_room_for_note_on() {
            events.dropped += 1;
            return;
        }
        if part.is_monophonic() {
            for slot in self.notes.iter_mut() {
                if slot.is_some_and(|n| n.part == part && n.start_beats < start_beats) {
                    let n = slot.take().expect("checked");
                    events.push(off(offset, n.channel, n.pitch));
                }
            }
        }
        if let Some(slot) = self.notes.iter_mut().find(|s| s.is_some_and(|n| n.channel == channel && n.pitch == pitch)) {
            *slot = None;
            events.push(off(offset, channel, pitch));
        }
        let Some(free) = self.notes.iter_mut().find(|s| s.is_none()) else {
            events.dropped += 1;
            return;
        };
        *free = Some(Sounding { part, channel, pitch, start_beats, end_beats });
        events.push(OutEvent { offset, kind: EventKind::NoteOn, channel, pitch, velocity: velocity.clamp(1, 127) });
    }
}

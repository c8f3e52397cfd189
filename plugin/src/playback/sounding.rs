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

/// Sounding notes packed at the front of a fixed array: every block walks only the few that sound,
/// not the whole capacity.
pub struct SoundingNotes {
    notes: [Sounding; MAX_SOUNDING],
    len: usize,
}

impl Default for SoundingNotes {
    fn default() -> Self {
        let blank = Sounding { part: Part::Lead, channel: 0, pitch: 0, start_beats: 0.0, end_beats: 0.0 };
        SoundingNotes { notes: [blank; MAX_SOUNDING], len: 0 }
    }
}

fn off(offset: u32, channel: u8, pitch: u8) -> OutEvent {
    OutEvent { offset, kind: EventKind::NoteOff, channel, pitch, velocity: 0 }
}

impl SoundingNotes {
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.len
    }

    /// Ends every note for which `release_at` gives an offset, at that offset.
    fn release_where(&mut self, events: &mut EventList, release_at: impl Fn(&Sounding) -> Option<u32>) {
        let mut i = 0;
        while i < self.len {
            let n = self.notes[i];
            // A note whose off does not fit this block stays, and ends in the next.
            match release_at(&n).filter(|&offset| events.push(off(offset, n.channel, n.pitch))) {
                Some(_) => {
                    self.len -= 1;
                    self.notes[i] = self.notes[self.len];
                }
                None => i += 1,
            }
        }
    }

    pub fn release_all(&mut self, offset: u32, events: &mut EventList) {
        self.release_where(events, |_| Some(offset));
    }

    pub fn release_part(&mut self, part: Part, offset: u32, events: &mut EventList) {
        self.release_where(events, |n| (n.part == part).then_some(offset));
    }

    /// Ends every note whose end falls inside this block (or before it), at its exact offset.
    pub fn release_ending_in(&mut self, span: &BlockSpan, events: &mut EventList) {
        self.release_where(events, |n| span.offset_of_beats(n.end_beats));
    }

    /// Ends every note whose end falls at or before `offset` in this block, at its exact offset.
    pub fn release_ending_by(&mut self, span: &BlockSpan, offset: u32, events: &mut EventList) {
        self.release_where(events, |n| span.offset_of_beats(n.end_beats).filter(|&end| end <= offset));
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
            return;
        }
        let single_line = part.is_monophonic();
        self.release_where(events, |n| {
            let same_key = n.channel == channel && n.pitch == pitch;
            let line_moves_on = single_line && n.part == part && n.start_beats < start_beats;
            (same_key || line_moves_on).then_some(offset)
        });
        if self.len == MAX_SOUNDING {
            return;
        }
        self.notes[self.len] = Sounding { part, channel, pitch, start_beats, end_beats };
        self.len += 1;
        let _ =
            events.push(OutEvent { offset, kind: EventKind::NoteOn, channel, pitch, velocity: velocity.clamp(1, 127) });
    }
}

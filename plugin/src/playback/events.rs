//! A fixed-capacity list of output events for one block, sorted in place before it is sent.

/// More events than this in one block are dropped (note-ons first); the wrapper's queue holds more.
pub const MAX_EVENTS_PER_BLOCK: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventKind {
    /// Offs sort before ons at the same offset, so a retriggered key is released first.
    NoteOff = 0,
    NoteOn = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutEvent {
    pub offset: u32,
    pub kind: EventKind,
    pub channel: u8,
    pub pitch: u8,
    pub velocity: u8,
}

pub struct EventList {
    events: [OutEvent; MAX_EVENTS_PER_BLOCK],
    len: usize,
}

impl Default for EventList {
    fn default() -> Self {
        let blank = OutEvent { offset: 0, kind: EventKind::NoteOff, channel: 0, pitch: 0, velocity: 0 };
        EventList { events: [blank; MAX_EVENTS_PER_BLOCK], len: 0 }
    }
}

impl EventList {
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Room for a note-on and, if needed, the off that precedes it; note-offs keep a reserve.
    pub fn has_room_for_note_on(&self) -> bool {
        self.len + 2 <= MAX_EVENTS_PER_BLOCK - 64
    }

    /// False when the list is full.
    pub fn push(&mut self, event: OutEvent) -> bool {
        if self.len < MAX_EVENTS_PER_BLOCK {
            self.events[self.len] = event;
            self.len += 1;
            return true;
        }
        false
    }

    /// The events in time order (stable: pushes at the same offset and kind keep their order).
    pub fn sorted(&mut self) -> &[OutEvent] {
        let events = &mut self.events[..self.len];
        // Insertion sort: no allocation, and blocks hold few, mostly ordered events.
        for i in 1..events.len() {
            let mut j = i;
            while j > 0 && (events[j].offset, events[j].kind) < (events[j - 1].offset, events[j - 1].kind) {
                events.swap(j, j - 1);
                j -= 1;
            }
        }
        &self.events[..self.len]
    }
}

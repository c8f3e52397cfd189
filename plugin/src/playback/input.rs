//! Notes played into the plugin: what Follow hears, and where the played notes leave the plugin.

/// A note event played into the plugin this block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputNote {
    pub offset: u32,
    /// 0-based MIDI channel.
    pub channel: u8,
    pub pitch: u8,
    pub velocity: u8,
    pub on: bool,
    /// The channel it leaves the plugin on (routed as it arrives), or None when it stays in.
    pub out_channel: Option<u8>,
}

/// Played note events one block may hold (far more than a host sends).
pub const MAX_PLAYED_PER_BLOCK: usize = 2048;

/// Which played notes Follow hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub on: bool,
    /// 0-based channel, or None for any.
    pub channel: Option<u8>,
}

impl Listen {
    #[cfg(test)]
    pub const OFF: Listen = Listen { on: false, channel: None };

    pub fn hears(&self, channel: u8) -> bool {
        self.on && self.channel.is_none_or(|c| c == channel)
    }
}

/// Where a played note-on goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Out as it came in.
    Through,
    /// Out on this 0-based channel (a followed part's channel).
    Channel(u8),
    /// Not out of this instance (its part is routed elsewhere, or switched off).
    Drop,
}

const NOT_SOUNDING: u8 = 0;
const DROPPED: u8 = 255;

/// Remembers where each played note went, so its note-off follows it there even when Follow or the
/// routing changed while the key was held: no note is left hanging on another channel.
pub struct InputRouter {
    /// Per input channel and key: NOT_SOUNDING, DROPPED, or the output channel + 1.
    routes: [[u8; 128]; 16],
    /// Note-ons of that key not yet ended (a clip may stack the same key): each gets its own off.
    held: [[u8; 128]; 16],
}

impl Default for InputRouter {
    fn default() -> Self {
        InputRouter { routes: [[NOT_SOUNDING; 128]; 16], held: [[0; 128]; 16] }
    }
}

impl InputRouter {
    /// The channel a played note leaves on, or None when it stays in. A note-off takes the route of its
    /// note-on (a key pressed again while held keeps its first route); one with no note-on held stays
    /// in: nothing we sent is sounding for it to end.
    pub fn route(&mut self, note: &InputNote, route: Route) -> Option<u8> {
        let (c, k) = (note.channel as usize % 16, note.pitch as usize % 128);
        let (slot, held) = (&mut self.routes[c][k], &mut self.held[c][k]);
        if note.on {
            if *held == u8::MAX {
                // No count left to pair an off with: this one stays in.
                return None;
            }
            if *held == 0 {
                *slot = match route {
                    Route::Through => note.channel + 1,
                    Route::Channel(channel) => channel + 1,
                    Route::Drop => DROPPED,
                };
            }
            *held = held.saturating_add(1);
            return (*slot != DROPPED).then(|| *slot - 1);
        }
        if *held == 0 {
            return None;
        }
        *held -= 1;
        let sent = *slot;
        if *held == 0 {
            *slot = NOT_SOUNDING;
        }
        (sent != DROPPED).then(|| sent - 1)
    }

    /// Ends every held played note that went out on a part's channel (Follow moved away from that
    /// part: its channel now belongs to the model again); their later note-offs stay in. Calls
    /// `release(channel, pitch)` once per note-on held.
    pub fn release_rerouted(&mut self, mut release: impl FnMut(u8, u8)) {
        for (input_channel, (routes, held)) in self.routes.iter_mut().zip(self.held.iter()).enumerate() {
            for (pitch, (slot, &count)) in routes.iter_mut().zip(held.iter()).enumerate() {
                if count > 0 && *slot != DROPPED && *slot - 1 != input_channel as u8 {
                    for _ in 0..count {
                        release(*slot - 1, pitch as u8);
                    }
                    *slot = DROPPED;
                }
            }
        }
    }

    /// Reads a block's note events into `played` (cleared first; its capacity is never exceeded, so
    /// nothing allocates), each routed as it arrives so the router always knows what is held. A
    /// wildcard note-off ("release all" on a channel, or a key on every channel) becomes a note-off for
    /// each held note it matches, wherever that note was sent. Other events (CCs) are not passed on.
    pub fn read_block<S>(
        &mut self,
        events: impl Iterator<Item = nice_plug::midi::NoteEvent<S>>,
        played: &mut Vec<InputNote>,
        route: impl Fn(&InputNote) -> Route,
    ) {
        use nice_plug::midi::{Channel, Key, NoteEvent};
        let limit = MAX_PLAYED_PER_BLOCK.min(played.capacity());
        played.clear();
        for event in events {
            let (offset, channel, key, velocity, on) = match event {
                NoteEvent::NoteOn { timing, channel, key, velocity, .. } => (timing, channel, key, velocity, true),
                NoteEvent::NoteOff { timing, channel, key, .. } => (timing, channel, key, 0.0, false),
                _ => continue,
            };
            let first = played.len();
            match (channel, key) {
                (Channel::Number(channel), Key::Number(pitch)) if played.len() < limit => {
                    let velocity = (velocity * 127.0).round().clamp(1.0, 127.0) as u8;
                    played.push(InputNote { offset, channel, pitch, velocity, on, out_channel: None });
                }
                (channel, key) if !on => {
                    let channel = match channel {
                        Channel::Number(c) => Some(c),
                        Channel::Wildcard => None,
                    };
                    let key = match key {
                        Key::Number(k) => Some(k),
                        Key::Wildcard => None,
                    };
                    self.for_each_held(channel, key, |channel, pitch| {
                        if played.len() < limit {
                            played.push(InputNote {
                                offset,
                                channel,
                                pitch,
                                velocity: 0,
                                on: false,
                                out_channel: None,
                            });
                        }
                    });
                }
                _ => {}
            }
            for note in &mut played[first..] {
                note.out_channel = self.route(note, route(note));
            }
        }
    }

    /// Every held played note a wildcard note-off matches (channel and key None for any): calls
    /// `f(input channel, pitch)` once per note-on held, so each can be ended like a plain note-off.
    pub fn for_each_held(&self, channel: Option<u8>, key: Option<u8>, mut f: impl FnMut(u8, u8)) {
        for (c, held) in self.held.iter().enumerate().filter(|(c, _)| channel.is_none_or(|x| x as usize == *c)) {
            for (k, &count) in held.iter().enumerate().filter(|(k, _)| key.is_none_or(|x| x as usize == *k)) {
                for _ in 0..count {
                    f(c as u8, k as u8);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(channel: u8, pitch: u8, on: bool) -> InputNote {
        InputNote { offset: 0, channel, pitch, velocity: 100, on, out_channel: None }
    }

    #[test]
    fn a_note_off_follows_its_note_on_whatever_changed_in_between() {
        let mut router = InputRouter::default();
        assert_eq!(router.route(&note(0, 40, true), Route::Channel(2)), Some(2));
        // Follow switched off while the key is held: the release still goes to channel 3.
        assert_eq!(router.route(&note(0, 40, false), Route::Through), Some(2));
        assert_eq!(router.route(&note(0, 40, false), Route::Through), None, "an unmatched off stays in");
        assert_eq!(router.route(&note(4, 41, true), Route::Drop), None);
        assert_eq!(router.route(&note(4, 41, false), Route::Through), None, "a dropped note's off is dropped");
        assert_eq!(router.route(&note(9, 42, true), Route::Through), Some(9));
        assert_eq!(router.route(&note(9, 42, false), Route::Channel(1)), Some(9));
    }

    #[test]
    fn a_key_stacked_in_a_clip_gets_both_its_offs() {
        let mut router = InputRouter::default();
        assert_eq!(router.route(&note(0, 50, true), Route::Through), Some(0));
        assert_eq!(router.route(&note(0, 50, true), Route::Channel(2)), Some(0), "the second keeps the first's route");
        assert_eq!(router.route(&note(0, 50, false), Route::Through), Some(0));
        assert_eq!(router.route(&note(0, 50, false), Route::Through), Some(0));
        assert_eq!(router.route(&note(0, 50, false), Route::Through), None);
        let mut held = Vec::new();
        router.route(&note(3, 60, true), Route::Through);
        router.route(&note(4, 61, true), Route::Through);
        router.for_each_held(None, None, |c, k| held.push((c, k)));
        assert_eq!(held, vec![(3, 60), (4, 61)]);
        held.clear();
        router.for_each_held(Some(4), None, |c, k| held.push((c, k)));
        assert_eq!(held, vec![(4, 61)]);
    }

    #[test]
    fn a_block_is_read_routed_and_a_wildcard_off_ends_what_it_pressed() {
        use nice_plug::midi::{Channel, Key, NoteEvent, VoiceID};
        let on = |timing, key| NoteEvent::<()>::NoteOn {
            timing,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(15),
            key: Key::Number(key),
            velocity: 0.5,
        };
        let all_off = NoteEvent::<()>::NoteOff {
            timing: 9,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(15),
            key: Key::Wildcard,
            velocity: 0.0,
        };
        let mut router = InputRouter::default();
        let mut played = Vec::with_capacity(MAX_PLAYED_PER_BLOCK);
        router.read_block([on(1, 60), on(2, 64), all_off].into_iter(), &mut played, |_| Route::Channel(2));
        let out: Vec<(u32, u8, bool, Option<u8>)> =
            played.iter().map(|n| (n.offset, n.pitch, n.on, n.out_channel)).collect();
        assert_eq!(
            out,
            vec![(1, 60, true, Some(2)), (2, 64, true, Some(2)), (9, 60, false, Some(2)), (9, 64, false, Some(2))]
        );
        assert_eq!(played.capacity(), MAX_PLAYED_PER_BLOCK, "reading a block never grows the buffer");
    }

    #[test]
    fn notes_sent_to_a_part_are_released_when_follow_leaves_it() {
        let mut router = InputRouter::default();
        router.route(&note(15, 36, true), Route::Channel(2));
        router.route(&note(15, 60, true), Route::Through);
        let mut released = Vec::new();
        router.release_rerouted(|channel, pitch| released.push((channel, pitch)));
        assert_eq!(released, vec![(2, 36)]);
        assert_eq!(router.route(&note(15, 36, false), Route::Through), None, "its own off stays in");
        assert_eq!(router.route(&note(15, 60, false), Route::Through), Some(15));
    }

    #[test]
    fn listen_filters_channels() {
        assert!(Listen { on: true, channel: None }.hears(5));
        assert!(Listen { on: true, channel: Some(5) }.hears(5));
        assert!(!Listen { on: true, channel: Some(5) }.hears(4));
        assert!(!Listen::OFF.hears(0));
    }
}

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
}

/// Which played notes Follow hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub on: bool,
    /// 0-based channel, or None for any.
    pub channel: Option<u8>,
}

impl Listen {
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
}

impl Default for InputRouter {
    fn default() -> Self {
        InputRouter { routes: [[NOT_SOUNDING; 128]; 16] }
    }
}

impl InputRouter {
    /// The channel a played note leaves on, or None when it stays in. A note-off takes the route of its
    /// note-on; one without a note-on stays in (nothing of ours is sounding for it to end).
    pub fn route(&mut self, note: &InputNote, route: Route) -> Option<u8> {
        let slot = &mut self.routes[note.channel as usize % 16][note.pitch as usize % 128];
        if note.on {
            *slot = match route {
                Route::Through => note.channel + 1,
                Route::Channel(c) => c + 1,
                Route::Drop => DROPPED,
            };
            return (*slot != DROPPED).then(|| *slot - 1);
        }
        let sent = std::mem::replace(slot, NOT_SOUNDING);
        match sent {
            NOT_SOUNDING | DROPPED => None,
            channel => Some(channel - 1),
        }
    }
}

impl InputRouter {
    /// Ends every held played note that went out on a part's channel (Follow moved away from that
    /// part: its channel now belongs to the model again); their later note-offs stay in. Calls
    /// `release(channel, pitch)` for each.
    pub fn release_rerouted(&mut self, mut release: impl FnMut(u8, u8)) {
        for (input_channel, keys) in self.routes.iter_mut().enumerate() {
            for (pitch, slot) in keys.iter_mut().enumerate() {
                if *slot != NOT_SOUNDING && *slot != DROPPED && *slot - 1 != input_channel as u8 {
                    release(*slot - 1, pitch as u8);
                    *slot = DROPPED;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(channel: u8, pitch: u8, on: bool) -> InputNote {
        InputNote { offset: 0, channel, pitch, velocity: 100, on }
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

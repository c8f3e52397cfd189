//! The phrase as a project saves it, a project the host loads, and the copy the editors show.

use super::*;

impl Generator {
    /// Adopts a session the host just loaded (into any member); true when its phrase replaced ours
    /// (its bars count as made by the model chosen with it).
    pub(super) fn adopt_loaded_session(&mut self) -> bool {
        let (loaded, inherited) = (self.members.take_loaded(), self.inherited.take());
        let Some(session) = loaded.or(inherited) else { return false };
        // A host that applies the state the generator already plays, or an earlier snapshot of it (some
        // save and load again and again while bars are being made), changes nothing: the bars it has
        // are ours, and the ones it lacks would be made again note for note. No new epoch, nothing for
        // the audio thread to wait for.
        let playing = self.session(self.params.gen_settings(self.variation));
        let ours = (session.variation, session.locked, session.header, session.ends_at_seam)
            == (playing.variation, playing.locked, playing.header, playing.ends_at_seam)
            && session.bars.iter().all(|bar| playing.bars.iter().any(|b| b == bar));
        if ours {
            return false;
        }
        // What a save returns from now on (in every member), byte for byte what was loaded.
        self.members.store_session(&session);
        // Linked members' knobs may differ: the one whose knobs made the loaded phrase leads.
        let made_it = |p: &TrioParams| session.settings == Some(p.gen_settings(session.variation));
        self.members.lead_after_load(made_it);
        self.params = self.members.source_params();
        self.variation = session.variation;
        self.highest_variation = self.highest_variation.max(session.variation);
        self.candidates.clear();
        self.locked = session.locked;
        self.ends_at_seam = session.ends_at_seam;
        self.bars.clear();
        let settings = session.settings.unwrap_or_else(|| self.params.gen_settings(self.variation));
        // The loaded project's progression is its bars' harmony: they play as saved.
        self.jam.set_progression_text(self.members.progression());
        let jam_settings = self.jam_settings();
        for bar in session.bars {
            let harmony = self.jam.harmony(bar.index, &jam_settings);
            let (index, model) = (bar.index, self.model_serial);
            self.bars.insert(index, GeneratedBar { content: BarContent::from_stored(bar), settings, harmony, model });
        }
        if let Some(header) = session.header {
            let inputs = self.header_inputs(&settings);
            self.header = Some((header, inputs));
        }
        self.new_epoch();
        self.share_phrase();
        true
    }

    /// Writes the bars to the persisted session (what a project save of any member will hold).
    pub(super) fn store_session(&mut self, settings: GenSettings) {
        let session = self.session(settings);
        self.members.store_session(&session);
        self.share_phrase();
    }

    /// The phrase as a project saves it.
    pub(super) fn session(&self, settings: GenSettings) -> PersistedSession {
        let model_id = self.model_id.clone();
        let first = self.bars.keys().rev().nth(MAX_STORED_BARS - 1).copied().unwrap_or(i64::MIN);
        let bars = self
            .bars
            .iter()
            .filter(|(&i, _)| i >= first)
            .map(|(&index, bar)| StoredBar {
                index,
                notes: bar.content.notes.clone(),
                tokens: Some(bar.content.tokens.clone()),
            })
            .collect();
        PersistedSession {
            model_id,
            variation: self.variation,
            locked: self.locked,
            ends_at_seam: self.ends_at_seam,
            header: self.header.map(|h| h.0),
            settings: Some(settings),
            bars,
        }
    }

    /// Hands the editors a copy of the bars.
    pub(super) fn share_phrase(&mut self) {
        let bars = self.bars.iter().map(|(&i, bar)| (i, bar.content.notes.clone())).collect();
        let chords = self
            .bars
            .iter()
            .flat_map(|(&i, bar)| {
                let forced_from = bar.harmony.as_ref().map_or(u32::MAX, |h| h.from_tick);
                composer::bar_chords(&bar.content.tokens).into_iter().map(move |c| {
                    (i, c.start_tick, crate::music::harmony::chord_symbol(c.chord), c.start_tick >= forced_from)
                })
            })
            .collect();
        self.members.share_phrase(PhraseSnapshot { bars, chords });
    }
}

//! Sampling in Rust, so every control acts on the very next token: the grammar mask, part and
//! register masks, key lock, temperature and top-p.

use crate::music::controls::ControlChoice;
use crate::music::tokens::Decoder;
use crate::music::vocab::{Token, VOCAB_SIZE};
use crate::music::Part;

/// SplitMix64: tiny, fast and identical on every platform, so a seed means the same notes everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator for one (seed, bar, variation) triple.
    pub fn for_bar(seed: u32, bar: i64, variation: u32) -> Self {
        let mut rng = Rng((seed as u64) << 32 ^ variation as u64);
        let mixed = rng.next_u64() ^ (bar as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Rng(mixed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the producer's controls allow right now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constraints {
    pub temperature: f32,
    pub top_p: f32,
    /// Parts the model may start (on, and not locked).
    pub parts_allowed: [bool; 3],
    /// Inclusive [low, high] per part.
    pub registers: [(u8, u8); 3],
    /// Pitch classes allowed by key lock (12-bit), or all.
    pub scale_mask: u16,
    /// Tones of a forced chord at the current position (12-bit), or 0: the arp and the bass play
    /// them, and the lead on beats 1 and 3.
    pub chord_tones: u16,
    /// The bar controls asked for (density, arp motion, bass drive), or Auto.
    pub controls: ControlChoice,
    /// Dance: the lead stays above the arp (the composer sets `windows` from it).
    pub lead_on_top: bool,
    /// At the current position, per part: pitch classes a semitone from another part's sounding
    /// note (minor 2nds and major 7ths between parts), avoided; 0 = none.
    pub clash_classes: [u16; 3],
    /// At the current position, per part: the lowest and highest pitch it keeps to (the lead above
    /// the arp in Dance); (0, 127) = no limit beyond the register.
    pub windows: [(u8, u8); 3],
    /// A 16th-triplet length (2, 4 or 8 ticks) may be written here: on the triplet grid, or in a bar
    /// that already has a triplet onset. Straight onsets get straight lengths.
    pub triplet_lengths: bool,
    /// One note per onset for the arp too (an asked arpeggio), as for the lead and the bass.
    pub arp_single_notes: bool,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            temperature: 1.0,
            top_p: 1.0,
            parts_allowed: [true; 3],
            registers: [(0, 127); 3],
            scale_mask: 0x0fff,
            chord_tones: 0,
            controls: ControlChoice::AUTO,
            lead_on_top: false,
            clash_classes: [0; 3],
            windows: [(0, 127); 3],
            triplet_lengths: true,
            arp_single_notes: false,
        }
    }
}

/// Grid ticks inside a beat (of 12) that are 16ths or 16th-triplets: the positions the sampler places.
pub fn on_grid(tick: u8) -> bool {
    matches!(tick % 12, 0 | 2 | 3 | 4 | 6 | 8 | 9 | 10)
}

impl Constraints {
    /// Pitch classes `part` may play at grid tick `tick`: the key's, narrowed to a forced chord's
    /// tones (for the lead only on beats 1 and 3: real melodies lean on passing tones elsewhere, 40 %
    /// of POP909's lead notes on a beat are none of the chord's); the chord wins where the two share
    /// nothing.
    fn pitch_classes(&self, part: Part, tick: i32) -> u16 {
        let follows_chord = self.chord_tones != 0 && (part != Part::Lead || tick.rem_euclid(24) == 0);
        if !follows_chord {
            return self.scale_mask;
        }
        match self.scale_mask & self.chord_tones {
            0 => self.chord_tones,
            both => both,
        }
    }

    /// The producer's masks alone: register, key, forced chord.
    fn pitch_in_masks(&self, part: Part, pitch: u8, tick: i32) -> bool {
        let (low, high) = self.registers[part.index()];
        pitch >= low && pitch <= high && self.pitch_classes(part, tick) & (1 << (pitch % 12)) != 0
    }

    /// The masks, and then the parts' rules (no clash, the lead on top) where they leave a pitch.
    fn pitch_allowed(&self, part: Part, pitch: u8, tick: i32) -> bool {
        self.pitch_in_masks(part, pitch, tick)
            && (self.keeps_part_rules(part, pitch)
                || !(0..=127).any(|p| self.pitch_in_masks(part, p, tick) && self.keeps_part_rules(part, p)))
    }

    fn keeps_part_rules(&self, part: Part, pitch: u8) -> bool {
        let i = part.index();
        let (low, high) = self.windows[i];
        self.clash_classes[i] & (1 << (pitch % 12)) == 0 && pitch >= low && pitch <= high
    }

    /// Whether a length of `ticks` may start at the current position.
    fn length_allowed(&self, ticks: u32) -> bool {
        self.triplet_lengths || ticks.is_multiple_of(3)
    }

    fn part_has_pitches(&self, part: Part, tick: i32) -> bool {
        let (low, high) = self.registers[part.index()];
        (low..=high).any(|p| self.pitch_allowed(part, p, tick))
    }

    pub fn part_may_start(&self, part: Part, tick: i32) -> bool {
        self.parts_allowed[part.index()] && self.part_has_pitches(part, tick)
    }

    /// The grammar plus the producer's masks. `next_forced` is the (tick, part) of the next kept
    /// (locked) note group still to come: positions may not skip past it, the bar may not end
    /// before it, and at its tick its part may be chosen (the caller then injects its notes).
    pub fn allows(&self, decoder: &Decoder, id: u32, next_forced: Option<(u32, Part)>) -> bool {
        if !decoder.allows(id) {
            return false;
        }
        match Token::from_id(id) {
            Some(Token::Position(t)) => on_grid(t) && next_forced.is_none_or(|(q, _)| t as u32 <= q),
            Some(Token::Bar) => next_forced.is_none(),
            Some(Token::Part(p)) => match next_forced {
                Some((q, forced)) if decoder.position == q as i32 => {
                    p == forced || p < forced && self.part_may_start(p, decoder.position)
                }
                _ => self.part_may_start(p, decoder.position),
            },
            // Kept parts get only their injected notes, never a sampled extra one; lead and bass
            // one note per position.
            Some(Token::Pitch(p)) => decoder.part.is_some_and(|part| {
                self.parts_allowed[part.index()]
                    && self.pitch_allowed(part, p, decoder.position)
                    && !((part.is_monophonic() || part == Part::Arp && self.arp_single_notes)
                        && decoder.group_has_note())
            }),
            Some(Token::Duration(d)) => self.length_allowed(crate::music::vocab::DURATIONS_TICKS[d as usize]),
            Some(Token::Eos) => false,
            _ => true,
        }
    }
}

/// Draws the next token from `logits` under the constraints; None if nothing is allowed.
pub fn sample(
    logits: &[f32],
    decoder: &Decoder,
    constraints: &Constraints,
    next_forced: Option<(u32, Part)>,
    rng: &mut Rng,
) -> Option<u32> {
    debug_assert_eq!(logits.len(), VOCAB_SIZE);
    let temperature = constraints.temperature.max(0.05);
    // A token the caller masked out (-inf) is no candidate: when nothing else is left, there is no draw.
    let candidates: Vec<(u32, f32)> = (0..VOCAB_SIZE as u32)
        .filter(|&id| constraints.allows(decoder, id, next_forced))
        .map(|id| (id, logits[id as usize] / temperature))
        .filter(|c| c.1.is_finite())
        .collect();
    sample_from(candidates, constraints.top_p, rng)
}

/// Softmax, nucleus cut and a draw over (id, scaled logit) pairs.
pub fn sample_from(mut candidates: Vec<(u32, f32)>, top_p: f32, rng: &mut Rng) -> Option<u32> {
    if candidates.is_empty() {
        return None;
    }
    let max = candidates.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0f64;
    for c in candidates.iter_mut() {
        c.1 = ((c.1 - max) as f64).exp() as f32;
        total += c.1 as f64;
    }
    // Highest probability first; ties broken by id so the order never depends on the sort.
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0.0f64;
    let mut cut = candidates.len();
    for (i, c) in candidates.iter().enumerate() {
        kept += c.1 as f64 / total;
        if kept >= top_p as f64 {
            cut = i + 1;
            break;
        }
    }
    candidates.truncate(cut);
    let mass: f64 = candidates.iter().map(|c| c.1 as f64).sum();
    let mut draw = rng.next_f64() * mass;
    for c in &candidates {
        draw -= c.1 as f64;
        if draw < 0.0 {
            return Some(c.0);
        }
    }
    candidates.last().map(|c| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder just past a bar's BAR and its control tokens.
    fn in_bar() -> Decoder {
        let mut decoder = Decoder::at_bar_start(0);
        decoder.push(Token::Bar.id()).unwrap();
        for id in crate::music::controls::BarControls::measure(&[]).tokens() {
            decoder.push(id).unwrap();
        }
        decoder
    }

    #[test]
    fn masks_hold_whatever_the_logits_say() {
        let mut decoder = in_bar();
        decoder.push(Token::Position(0).id()).unwrap();
        decoder.push(Token::Part(Part::Bass).id()).unwrap();
        let constraints =
            Constraints { registers: [(0, 127), (0, 127), (40, 47)], scale_mask: Key::C_MAJOR, ..Default::default() };
        // Logits that love pitch 30 (out of range) and 42 (F#, out of key).
        let mut logits = vec![0.0f32; VOCAB_SIZE];
        logits[Token::Pitch(30).id() as usize] = 50.0;
        logits[Token::Pitch(42).id() as usize] = 50.0;
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let id = sample(&logits, &decoder, &constraints, None, &mut rng).unwrap();
            let Some(Token::Pitch(p)) = Token::from_id(id) else { panic!("not a pitch") };
            assert!((40..=47).contains(&p) && p != 42 && p != 44 && p != 46, "{p}");
        }
    }

    #[test]
    fn lead_and_bass_write_one_note_per_position_and_the_arp_chords() {
        for (part, chords) in [(Part::Lead, false), (Part::Arp, true), (Part::Bass, false)] {
            let mut decoder = in_bar();
            for token in
                [Token::Position(0), Token::Part(part), Token::Pitch(64), Token::Duration(3), Token::Velocity(4)]
            {
                decoder.push(token.id()).unwrap();
            }
            let constraints = Constraints::default();
            let lower_pitch_allowed = (0..64).any(|p| constraints.allows(&decoder, Token::Pitch(p).id(), None));
            assert_eq!(lower_pitch_allowed, chords, "{part:?}");
            assert!(constraints.allows(&decoder, Token::Position(6).id(), None), "{part:?} may move on");
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus_and_seeds_repeat() {
        let candidates = vec![(1, 5.0), (2, 0.0), (3, 0.0)];
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            assert_eq!(sample_from(candidates.clone(), 0.9, &mut rng), Some(1));
        }
        let a: Vec<u64> = (0..4).map(|_| Rng::for_bar(7, 3, 0).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::for_bar(7, 3, 0).next_u64(), Rng::for_bar(7, 4, 0).next_u64());
    }

    struct Key;
    impl Key {
        const C_MAJOR: u16 = 0b1010_1011_0101;
    }
}

//! Phrase ⇄ token stream, and the grammar that says which token may come next. The grammar is what
//! the sampler masks with, so a generated stream always decodes.

use super::controls::{BarControls, Style};
use super::phrase::{Chord, Note, Part, Phrase, TICKS_PER_BAR};
use super::vocab::{self, Key, Mood, Token, DURATIONS_TICKS};

/// Tokens in a phrase's header: BOS TEMPO KEY MOOD STYLE.
pub const HEADER_LENGTH: usize = 5;

/// The conditioning that opens every phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub tempo_bin: u8,
    pub key: Key,
    pub mood: Mood,
    pub style: Style,
}

impl Header {
    pub fn tokens(&self) -> [u32; HEADER_LENGTH] {
        [
            Token::Bos.id(),
            Token::Tempo(self.tempo_bin).id(),
            Token::Key(self.key).id(),
            Token::Mood(self.mood).id(),
            Token::Style(self.style).id(),
        ]
    }
}

impl BarControls {
    /// The control tokens, in the order they follow BAR.
    pub fn tokens(&self) -> [u32; super::controls::CONTROLS_PER_BAR] {
        [
            Token::Density(Part::Lead, self.density[0]).id(),
            Token::Density(Part::Arp, self.density[1]).id(),
            Token::Density(Part::Bass, self.density[2]).id(),
            Token::ArpMotion(self.arp_motion).id(),
            Token::BassDrive(self.bass_drive).id(),
        ]
    }
}

/// Tokens of one bar (`BAR` first, then the controls its notes measure). `notes` and `chords` carry
/// ticks relative to the bar start and must lie inside it; durations must already be vocabulary
/// durations, or they are rounded to one.
pub fn encode_bar(notes: &[Note], chords: &[Chord], out: &mut Vec<u32>) {
    out.push(Token::Bar.id());
    out.extend(BarControls::measure(notes).tokens());
    let mut ticks: Vec<u32> = notes.iter().map(|n| n.start_tick).chain(chords.iter().map(|c| c.start_tick)).collect();
    ticks.sort_unstable();
    ticks.dedup();
    for tick in ticks {
        debug_assert!(tick < TICKS_PER_BAR);
        out.push(Token::Position(tick as u8).id());
        if let Some(chord) = chords.iter().find(|c| c.start_tick == tick) {
            out.push(Token::Chord(chord.chord).id());
        }
        for part in Part::ALL {
            let mut at: Vec<&Note> = notes.iter().filter(|n| n.start_tick == tick && n.part == part).collect();
            if at.is_empty() {
                continue;
            }
            at.sort_by_key(|n| std::cmp::Reverse(n.pitch));
            at.dedup_by_key(|n| n.pitch);
            out.push(Token::Part(part).id());
            for note in at {
                out.push(Token::Pitch(note.pitch.min(127)).id());
                out.push(Token::Duration(vocab::duration_index(note.duration_ticks)).id());
                out.push(Token::Velocity(vocab::velocity_bin(note.velocity)).id());
            }
        }
    }
}

/// The whole phrase: header, every bar (empty bars too), and EOS if `close`.
pub fn encode_phrase(header: &Header, phrase: &Phrase, close: bool) -> Vec<u32> {
    let mut out = header.tokens().to_vec();
    for bar in 0..phrase.bars {
        let (lo, hi) = (bar * TICKS_PER_BAR, (bar + 1) * TICKS_PER_BAR);
        let notes: Vec<Note> = phrase
            .notes
            .iter()
            .filter(|n| n.start_tick >= lo && n.start_tick < hi)
            .map(|n| Note { start_tick: n.start_tick - lo, ..*n })
            .collect();
        let chords: Vec<Chord> = phrase
            .chords
            .iter()
            .filter(|c| c.start_tick >= lo && c.start_tick < hi)
            .map(|c| Chord { start_tick: c.start_tick - lo, ..*c })
            .collect();
        encode_bar(&notes, &chords, &mut out);
    }
    if close {
        out.push(Token::Eos.id());
    }
    out
}

/// What the grammar expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Bos,
    Tempo,
    Key,
    Mood,
    Style,
    /// After the header, BAR or EOS.
    FirstBar,
    /// After BAR: the lead, arp and bass densities.
    Density(Part),
    ArpMotion,
    BassDrive,
    /// After the bar's controls: POS, BAR or EOS.
    InBar,
    /// After POS: CHORD or PART.
    AfterPosition,
    /// After CHORD: PART, a later POS, BAR or EOS.
    AfterChord,
    Pitch,
    Duration,
    Velocity,
    /// After a complete note: a lower PITCH, a later PART, a later POS, BAR or EOS.
    AfterNote,
    Done,
}

/// Streaming decoder and grammar in one: feed it tokens, it tracks where the stream is and emits
/// notes and chords, and tells which tokens may follow.
#[derive(Debug, Clone)]
pub struct Decoder {
    expect: Expect,
    /// Index of the current bar, counting from 0 at the first BAR.
    pub bar: i64,
    /// Current grid tick inside the bar, or -1 before the first POS of a bar.
    pub position: i32,
    /// Current part inside the position, if a PART was seen there.
    pub part: Option<Part>,
    /// Last pitch of the current part at this position, for the high-to-low rule.
    last_pitch: Option<u8>,
    pending_pitch: u8,
    pending_duration_ticks: u32,
    pub header_tempo_bin: Option<u8>,
    pub header_key: Option<Key>,
    pub header_mood: Option<Mood>,
    pub header_style: Option<Style>,
}

/// What one token completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    Nothing,
    /// A note; `start_tick` counts from the start of bar 0.
    Note(Note),
    Chord(Chord),
    /// A new bar began; the value is its index.
    Bar(i64),
    End,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A note of the current part at this position has been written (single-line parts stop there).
    pub fn group_has_note(&self) -> bool {
        self.last_pitch.is_some()
    }

    pub fn new() -> Self {
        Decoder {
            expect: Expect::Bos,
            bar: -1,
            position: -1,
            part: None,
            last_pitch: None,
            pending_pitch: 0,
            pending_duration_ticks: 0,
            header_tempo_bin: None,
            header_key: None,
            header_mood: None,
            header_style: None,
        }
    }

    /// A decoder that is past the header and about to read the BAR of `bar`.
    pub fn at_bar_start(bar: i64) -> Self {
        Decoder { expect: Expect::FirstBar, bar: bar - 1, ..Decoder::new() }
    }

    /// Right after BAR, where the bar's control tokens come.
    pub fn expects_controls(&self) -> bool {
        matches!(self.expect, Expect::Density(_) | Expect::ArpMotion | Expect::BassDrive)
    }

    /// True between notes, where a bar may end.
    pub fn at_boundary(&self) -> bool {
        matches!(self.expect, Expect::FirstBar | Expect::InBar | Expect::AfterChord | Expect::AfterNote)
    }

    /// Right after a POS, where a chord token may be written.
    pub fn expects_chord(&self) -> bool {
        self.expect == Expect::AfterPosition
    }

    /// Whether `id` may come next.
    pub fn allows(&self, id: u32) -> bool {
        let Some(token) = Token::from_id(id) else { return false };
        let later_position = |t: u8| (t as i32) > self.position;
        match (self.expect, token) {
            (Expect::Bos, Token::Bos) => true,
            (Expect::Tempo, Token::Tempo(_)) => true,
            (Expect::Key, Token::Key(_)) => true,
            (Expect::Mood, Token::Mood(_)) => true,
            (Expect::Style, Token::Style(_)) => true,
            (Expect::Density(expected), Token::Density(part, _)) => part == expected,
            (Expect::ArpMotion, Token::ArpMotion(_)) => true,
            (Expect::BassDrive, Token::BassDrive(_)) => true,
            (Expect::FirstBar, Token::Bar | Token::Eos) => true,
            (Expect::InBar, Token::Bar | Token::Eos) => true,
            (Expect::InBar, Token::Position(t)) => later_position(t),
            (Expect::AfterPosition, Token::Chord(_) | Token::Part(_)) => true,
            (Expect::AfterChord, Token::Part(_) | Token::Bar | Token::Eos) => true,
            (Expect::AfterChord, Token::Position(t)) => later_position(t),
            (Expect::Pitch, Token::Pitch(_)) => true,
            (Expect::Duration, Token::Duration(_)) => true,
            (Expect::Velocity, Token::Velocity(_)) => true,
            (Expect::AfterNote, Token::Pitch(p)) => self.last_pitch.is_some_and(|last| p < last),
            (Expect::AfterNote, Token::Part(p)) => self.part.is_some_and(|cur| p > cur),
            (Expect::AfterNote, Token::Position(t)) => later_position(t),
            (Expect::AfterNote, Token::Bar | Token::Eos) => true,
            _ => false,
        }
    }

    /// Advances over `id`. Returns an error for a token the grammar does not allow.
    pub fn push(&mut self, id: u32) -> Result<Decoded, String> {
        if !self.allows(id) {
            return Err(format!(
                "token {} not allowed here ({:?})",
                Token::from_id(id).map(|t| t.name()).unwrap_or_else(|| id.to_string()),
                self.expect
            ));
        }
        let token = Token::from_id(id).expect("allowed ids are valid");
        let bar_tick = |bar: i64| (bar.max(0) as u32) * TICKS_PER_BAR;
        let decoded = match token {
            Token::Bos => {
                self.expect = Expect::Tempo;
                Decoded::Nothing
            }
            Token::Tempo(b) => {
                self.header_tempo_bin = Some(b);
                self.expect = Expect::Key;
                Decoded::Nothing
            }
            Token::Key(k) => {
                self.header_key = Some(k);
                self.expect = Expect::Mood;
                Decoded::Nothing
            }
            Token::Mood(m) => {
                self.header_mood = Some(m);
                self.expect = Expect::Style;
                Decoded::Nothing
            }
            Token::Style(style) => {
                self.header_style = Some(style);
                self.expect = Expect::FirstBar;
                Decoded::Nothing
            }
            Token::Density(part, _) => {
                self.expect = match part {
                    Part::Lead => Expect::Density(Part::Arp),
                    Part::Arp => Expect::Density(Part::Bass),
                    Part::Bass => Expect::ArpMotion,
                };
                Decoded::Nothing
            }
            Token::ArpMotion(_) => {
                self.expect = Expect::BassDrive;
                Decoded::Nothing
            }
            Token::BassDrive(_) => {
                self.expect = Expect::InBar;
                Decoded::Nothing
            }
            Token::Bar => {
                self.bar += 1;
                self.position = -1;
                self.part = None;
                self.last_pitch = None;
                self.expect = Expect::Density(Part::Lead);
                Decoded::Bar(self.bar)
            }
            Token::Eos | Token::Pad => {
                self.expect = Expect::Done;
                Decoded::End
            }
            Token::Position(t) => {
                self.position = t as i32;
                self.part = None;
                self.last_pitch = None;
                self.expect = Expect::AfterPosition;
                Decoded::Nothing
            }
            Token::Chord(chord) => {
                self.expect = Expect::AfterChord;
                Decoded::Chord(Chord { start_tick: bar_tick(self.bar) + self.position as u32, chord })
            }
            Token::Part(p) => {
                self.part = Some(p);
                self.last_pitch = None;
                self.expect = Expect::Pitch;
                Decoded::Nothing
            }
            Token::Pitch(p) => {
                self.pending_pitch = p;
                self.last_pitch = Some(p);
                self.expect = Expect::Duration;
                Decoded::Nothing
            }
            Token::Duration(d) => {
                self.pending_duration_ticks = DURATIONS_TICKS[d as usize];
                self.expect = Expect::Velocity;
                Decoded::Nothing
            }
            Token::Velocity(v) => {
                self.expect = Expect::AfterNote;
                Decoded::Note(Note {
                    start_tick: bar_tick(self.bar) + self.position as u32,
                    part: self.part.expect("grammar puts PART before PITCH"),
                    pitch: self.pending_pitch,
                    duration_ticks: self.pending_duration_ticks,
                    velocity: vocab::velocity_of_bin(v),
                })
            }
        };
        Ok(decoded)
    }
}

/// Decodes a whole stream (header included) into a phrase; stops at EOS.
pub fn decode_phrase(tokens: &[u32]) -> Result<(Header, Phrase), String> {
    let mut decoder = Decoder::new();
    let mut phrase = Phrase::default();
    for &id in tokens {
        match decoder.push(id)? {
            Decoded::Note(n) => phrase.notes.push(n),
            Decoded::Chord(c) => phrase.chords.push(c),
            Decoded::Bar(b) => phrase.bars = b as u32 + 1,
            Decoded::End => break,
            Decoded::Nothing => {}
        }
    }
    let header = Header {
        tempo_bin: decoder.header_tempo_bin.ok_or("no header")?,
        key: decoder.header_key.ok_or("no header")?,
        mood: decoder.header_mood.ok_or("no header")?,
        style: decoder.header_style.ok_or("no header")?,
    };
    phrase.normalize();
    Ok((header, phrase))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::phrase::ChordQuality;

    fn sample_phrase() -> Phrase {
        let mut phrase = Phrase {
            bars: 3,
            notes: vec![
                Note { start_tick: 0, part: Part::Lead, pitch: 72, duration_ticks: 6, velocity: 88 },
                Note { start_tick: 0, part: Part::Arp, pitch: 64, duration_ticks: 3, velocity: 72 },
                Note { start_tick: 0, part: Part::Arp, pitch: 60, duration_ticks: 3, velocity: 72 },
                Note { start_tick: 0, part: Part::Bass, pitch: 36, duration_ticks: 48, velocity: 104 },
                Note { start_tick: 2, part: Part::Arp, pitch: 67, duration_ticks: 2, velocity: 56 },
                Note { start_tick: 47, part: Part::Lead, pitch: 74, duration_ticks: 192, velocity: 120 },
                Note { start_tick: 96 + 9, part: Part::Bass, pitch: 31, duration_ticks: 9, velocity: 8 },
            ],
            chords: vec![
                Chord { start_tick: 0, chord: Some((0, ChordQuality::Major)) },
                Chord { start_tick: 24, chord: Some((9, ChordQuality::Minor7)) },
                Chord { start_tick: 96, chord: None },
            ],
        };
        phrase.normalize();
        phrase
    }

    #[test]
    fn phrase_round_trips_through_tokens() {
        let header =
            Header { tempo_bin: 4, key: Key { tonic: 0, minor: false }, mood: Mood::Happy, style: Style::Dance };
        let phrase = sample_phrase();
        let tokens = encode_phrase(&header, &phrase, true);
        let (decoded_header, decoded) = decode_phrase(&tokens).unwrap();
        assert_eq!(decoded_header, header);
        assert_eq!(decoded, phrase);
    }

    #[test]
    fn grammar_rejects_out_of_order_tokens() {
        let mut d = Decoder::at_bar_start(0);
        d.push(Token::Bar.id()).unwrap();
        assert!(!d.allows(Token::Position(12).id()), "the bar's controls come first");
        assert!(!d.allows(Token::Density(Part::Arp, 2).id()), "the lead's density comes first");
        for id in BarControls::measure(&[]).tokens() {
            d.push(id).unwrap();
        }
        d.push(Token::Position(12).id()).unwrap();
        assert!(!d.allows(Token::Pitch(60).id()), "PART must come before PITCH");
        d.push(Token::Part(Part::Arp).id()).unwrap();
        for t in [Token::Pitch(60), Token::Duration(0), Token::Velocity(3)] {
            d.push(t.id()).unwrap();
        }
        assert!(!d.allows(Token::Pitch(61).id()), "pitches fall inside a part");
        assert!(!d.allows(Token::Part(Part::Lead).id()), "parts come in order");
        assert!(!d.allows(Token::Position(12).id()), "positions rise");
        assert!(d.allows(Token::Position(13).id()));
        assert!(d.allows(Token::Part(Part::Bass).id()));
    }
}

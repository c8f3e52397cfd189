//! A *Dance* (EDM) arrangement of a POP909 song, made by rules from its annotated melody, chords and
//! key. There is no licence-clean EDM data, so the model learns a Dance style from these rule-made
//! trios. [`dance_phrase`] keeps the song's bars and chord changes and writes new lead, arp and bass
//! notes; [`DanceRules`] picks one rule variant per part ([`LeadRule`], [`ArpRule`], [`BassRule`]).
//! The variants of [`DanceRules::held_out`] are never used for training (eval only).
//!
//! Common rules (every variant):
//!
//! - **Grid.** Onsets only on the 16th grid (multiples of 3 ticks, never triplets): a melody onset on
//!   the 16th-triplet grid moves to the nearest 16th. Every duration is a vocabulary duration
//!   ([`DURATIONS_TICKS`]), at most the time to the part's next onset (the longest vocabulary length
//!   that fits), so lead and bass are single lines; no note ends past `bars × TICKS_PER_BAR`.
//! - **Harmony.** The chord at a tick is the last chord change at or before it; "no chord" (`None`),
//!   or a tick before the first chord, holds the previous chord, or, when there is none, takes the
//!   key's tonic triad (major or minor). The output restates the song's chord changes unchanged.
//! - **Octave lift.** The melody (one note per onset, the highest) is moved by whole octaves: the
//!   smallest shift that puts its duration-weighted median pitch at or above 76 (so the median lands
//!   in 76..=84, or 85..=87 for the pitch classes C#–D# that have no octave in 76..=84); a note that
//!   would then lie above 96 drops by octaves. If, after the rhythm rules, the lead's median onset
//!   pitch is still below 76 and an octave more keeps every note at or below 96, the lead rises an
//!   octave.
//! - **Legato fill.** Each melody note becomes a *segment* that lasts to the next melody onset when the
//!   rest after it is at most a half bar (24 ticks); after a longer rest it rings to the next beat and
//!   the rest is filled by *fill segments*, one per half bar (and chord change), whose pitches cycle
//!   through the chord's in-key tones near the last lead pitch (offsets 0, +1, +2, +1 chord tones).
//!   The time before the first melody note and after the last is filled the same way, so a lead note
//!   sounds on every beat. The rhythm rule of the lead then splits segments into onsets.
//! - **Lead pitches** are the melody's (chromatic melody notes stay), or in-key chord tones (fills,
//!   cell-repeat re-pitches). The lead is never re-pitched for the other parts.
//! - **Arp register.** The arp's chord ladder starts at the root in 48..=59. A note that would lie
//!   less than 3 semitones below the lowest lead note sounding during it drops by octaves (not
//!   below 48); if no octave fits, the nearest chord tone in 48..=(lowest lead − 3), else in
//!   48..=(lowest lead − 1), replaces it. Every arp onset is a single note.
//! - **Bass register.** The root lies in 29..=40 (F1–E2), its octave and fifth above it, all in 28..=52.
//! - **No semitone clashes.** A bass note whose pitch class is a semitone (minor 2nd / major 7th) from
//!   a lead note sounding during it takes the first clash-free of root, octave, fifth, the other
//!   chord tones, then the in-key tones; an arp note clashing with the lead or bass takes the nearest
//!   clash-free chord tone, then in-key tone, under its register ceiling.
//! - **Velocities** (accents, stored as velocity-bin centres): downbeat / beat / 8th offbeat / odd 16th
//!   = bins 6/5/5/4 in the lead, 5/4/3/3 in the arp, 6/5/5/4 in the bass.
//!
//! Lead rules ([`LeadRule`]); all re-strike only segments at least a beat (12 ticks) long, and never
//! less than an 8th after the segment's own onset:
//!
//! - `pulse8`: re-strike the segment's pitch on every 8th (the octave lift + legato fill lead).
//! - `cell-repeat`: re-strike in each half bar at 0, 6 and 15 ticks (x.x..x.. in 16ths); then in every
//!   4-bar group bars 3–4 replay the onsets of bars 1–2, pitches kept where the chord is the same
//!   and otherwise kept if a tone of the new chord, else moved to the nearest in-key tone of it.
//! - `tresillo16`: re-strike in each half bar at 0, 9 and 18 ticks (the 3-3-2 tresillo in 16ths).
//! - `anticipate16` (held out): a pitch change that lands on a beat comes a 16th early (the
//!   previous segment, if at least an 8th long, gives up the 16th), and segments re-strike on 8ths.
//!
//! Arp rules ([`ArpRule`]), chord tones from [`ChordQuality::intervals`] over the root:
//!
//! - `up16`: 16ths up the chord: 1-3-5-8 (1-3-5-7 for 7th chords), restarting each beat.
//! - `down16` (held out): the same, downwards.
//! - `updown16`: 16ths up and down two octaves of the ladder: 1-3-5-8-10-8-5-3 each half bar.
//! - `broken-1-5-8-10`: root, fifth, octave, tenth as an 8th and two 16ths per beat (x.xx).
//!
//! Bass rules ([`BassRule`]):
//!
//! - `pulse8`: the root on every 8th.
//! - `offbeat8`: the root on the offbeat 8ths (ticks 6, 18, 30, 42), an 8th long.
//! - `octave8` (held out): 8ths alternating root and its octave.
//! - `gallop16`: per beat an 8th and two 16ths on the root (x.xx).
//! - `tresillo-root`: the root in 3-3-2 16ths per half bar (ticks 0, 9, 18).

use super::Song;
use neural_trio::music::vocab::{self, Key, DURATIONS_TICKS};
use neural_trio::music::{Chord, ChordQuality, Note, Part, Phrase, TICKS_PER_BAR, TICKS_PER_BEAT};

/// The smallest lead median after the octave lift.
const LEAD_MEDIAN_MIN: u8 = 76;
/// The highest lead pitch.
const LEAD_MAX: u8 = 96;
/// A rest after a melody note up to this long is bridged by extending the note.
const LEGATO_GAP: u32 = 24;
/// The arp's lowest pitch, and the bottom of its chord ladder's root.
const ARP_FLOOR: u8 = 48;
/// The arp's top note stays this far below the lowest sounding lead note when it can.
const ARP_GAP_PREFERRED: u8 = 3;
/// The bass root's lowest pitch (F1); roots lie in `BASS_ROOT_LOW..BASS_ROOT_LOW + 12`.
const BASS_ROOT_LOW: u8 = 29;
const BASS_RANGE: (u8, u8) = (28, 52);
const HALF_BAR: u32 = TICKS_PER_BAR / 2;
const EIGHTH: u32 = TICKS_PER_BEAT / 2;
const SIXTEENTH: u32 = TICKS_PER_BEAT / 4;

/// How the lead is made from the melody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeadRule {
    /// Octave lift + legato fill; long notes re-struck on every 8th.
    Pulse8,
    /// Long notes re-struck x.x..x.. per half bar; bars 3–4 of each 4 replay bars 1–2.
    CellRepeat,
    /// Long notes re-struck 3-3-2 in 16ths per half bar.
    Tresillo,
    /// Pitch changes on beats anticipated by a 16th; long notes re-struck on 8ths. Held out.
    Anticipate,
}

/// How the arp breaks the chord (single-note onsets only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpRule {
    Up16,
    /// Held out.
    Down16,
    UpDown16,
    /// Root, fifth, octave, tenth as 8th + two 16ths per beat.
    Broken,
}

/// How the bass pulses on the chord root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BassRule {
    Pulse8,
    Offbeat8,
    /// Held out.
    Octave8,
    Gallop16,
    Tresillo,
}

impl LeadRule {
    pub const ALL: [LeadRule; 4] = [LeadRule::Pulse8, LeadRule::CellRepeat, LeadRule::Tresillo, LeadRule::Anticipate];
    pub const TRAIN: [LeadRule; 3] = [LeadRule::Pulse8, LeadRule::CellRepeat, LeadRule::Tresillo];
    pub const HELD_OUT: LeadRule = LeadRule::Anticipate;

    pub fn name(self) -> &'static str {
        match self {
            LeadRule::Pulse8 => "pulse8",
            LeadRule::CellRepeat => "cell-repeat",
            LeadRule::Tresillo => "tresillo16",
            LeadRule::Anticipate => "anticipate16",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            LeadRule::Pulse8 => "melody lifted and made legato; notes of a beat or longer re-struck on every 8th",
            LeadRule::CellRepeat => {
                "notes of a beat or longer re-struck at 0, 6, 15 ticks of each half bar (x.x..x..); in every \
                 4-bar group bars 3-4 replay bars 1-2 (pitches moved to the new chord's in-key tones where \
                 the chord differs)"
            }
            LeadRule::Tresillo => {
                "notes of a beat or longer re-struck 3-3-2 in 16ths (ticks 0, 9, 18 of each half bar)"
            }
            LeadRule::Anticipate => {
                "pitch changes on a beat come a 16th early; notes of a beat or longer re-struck on 8ths (held out)"
            }
        }
    }

    /// Re-strike positions inside each half bar, for segments at least a beat long.
    fn half_bar_cell(self) -> &'static [u32] {
        match self {
            LeadRule::Pulse8 | LeadRule::Anticipate => &[0, 6, 12, 18],
            LeadRule::CellRepeat => &[0, 6, 15],
            LeadRule::Tresillo => &[0, 9, 18],
        }
    }
}

impl ArpRule {
    pub const ALL: [ArpRule; 4] = [ArpRule::Up16, ArpRule::Down16, ArpRule::UpDown16, ArpRule::Broken];
    pub const TRAIN: [ArpRule; 3] = [ArpRule::Up16, ArpRule::UpDown16, ArpRule::Broken];
    pub const HELD_OUT: ArpRule = ArpRule::Down16;

    pub fn name(self) -> &'static str {
        match self {
            ArpRule::Up16 => "up16",
            ArpRule::Down16 => "down16",
            ArpRule::UpDown16 => "updown16",
            ArpRule::Broken => "broken-1-5-8-10",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ArpRule::Up16 => "16ths up the chord, 1-3-5-8 (1-3-5-7 for 7th chords), restarting each beat",
            ArpRule::Down16 => {
                "16ths down the chord, 8-5-3-1 (7-5-3-1 for 7th chords), restarting each beat (held out)"
            }
            ArpRule::UpDown16 => "16ths up and down the chord ladder, 1-3-5-8-10-8-5-3 each half bar",
            ArpRule::Broken => "root, fifth, octave, tenth as an 8th and two 16ths per beat (x.xx)",
        }
    }

    /// (tick in the beat, length, ladder step) of the steps of one beat, for beat `beat` of the bar.
    fn beat_steps(self, beat: u32) -> Vec<(u32, u32, Step)> {
        let sixteenths = |steps: [Step; 4]| (0..4).map(|i| (i * SIXTEENTH, SIXTEENTH, steps[i as usize])).collect();
        match self {
            ArpRule::Up16 => sixteenths([Step::Ladder(0), Step::Ladder(1), Step::Ladder(2), Step::Ladder(3)]),
            ArpRule::Down16 => sixteenths([Step::Ladder(3), Step::Ladder(2), Step::Ladder(1), Step::Ladder(0)]),
            ArpRule::UpDown16 => {
                if beat.is_multiple_of(2) {
                    sixteenths([Step::Ladder(0), Step::Ladder(1), Step::Ladder(2), Step::Ladder(3)])
                } else {
                    sixteenths([Step::Ladder(4), Step::Ladder(3), Step::Ladder(2), Step::Ladder(1)])
                }
            }
            ArpRule::Broken => {
                // 1-5-8-10 cycles over the 3 onsets of each beat (12 onsets = 3 cycles per bar).
                let tones = [Step::Root, Step::Fifth, Step::Octave, Step::Tenth];
                [(0, EIGHTH), (EIGHTH, SIXTEENTH), (EIGHTH + SIXTEENTH, SIXTEENTH)]
                    .iter()
                    .enumerate()
                    .map(|(i, &(tick, len))| (tick, len, tones[(beat as usize * 3 + i) % 4]))
                    .collect()
            }
        }
    }
}

impl BassRule {
    pub const ALL: [BassRule; 5] =
        [BassRule::Pulse8, BassRule::Offbeat8, BassRule::Octave8, BassRule::Gallop16, BassRule::Tresillo];
    pub const TRAIN: [BassRule; 4] = [BassRule::Pulse8, BassRule::Offbeat8, BassRule::Gallop16, BassRule::Tresillo];
    pub const HELD_OUT: BassRule = BassRule::Octave8;

    pub fn name(self) -> &'static str {
        match self {
            BassRule::Pulse8 => "pulse8",
            BassRule::Offbeat8 => "offbeat8",
            BassRule::Octave8 => "octave8",
            BassRule::Gallop16 => "gallop16",
            BassRule::Tresillo => "tresillo-root",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            BassRule::Pulse8 => "the chord root on every 8th",
            BassRule::Offbeat8 => "the chord root on the offbeat 8ths (ticks 6, 18, 30, 42), an 8th long",
            BassRule::Octave8 => "8ths alternating the chord root and its octave (held out)",
            BassRule::Gallop16 => "per beat an 8th and two 16ths on the root (x.xx)",
            BassRule::Tresillo => "the root in 3-3-2 16ths per half bar (ticks 0, 9, 18)",
        }
    }

    /// (tick in the bar, length, octave above the root) of one bar.
    fn bar_pattern(self) -> Vec<(u32, u32, bool)> {
        let per_beat = |cell: &[(u32, u32, bool)]| -> Vec<(u32, u32, bool)> {
            (0..TICKS_PER_BAR / TICKS_PER_BEAT)
                .flat_map(|b| cell.iter().map(move |&(t, l, o)| (b * TICKS_PER_BEAT + t, l, o)))
                .collect()
        };
        match self {
            BassRule::Pulse8 => per_beat(&[(0, EIGHTH, false), (EIGHTH, EIGHTH, false)]),
            BassRule::Offbeat8 => per_beat(&[(EIGHTH, EIGHTH, false)]),
            BassRule::Octave8 => per_beat(&[(0, EIGHTH, false), (EIGHTH, EIGHTH, true)]),
            BassRule::Gallop16 => {
                per_beat(&[(0, EIGHTH, false), (EIGHTH, SIXTEENTH, false), (EIGHTH + SIXTEENTH, SIXTEENTH, false)])
            }
            BassRule::Tresillo => {
                [0, HALF_BAR].iter().flat_map(|&h| [(h, 9, false), (h + 9, 9, false), (h + 18, 6, false)]).collect()
            }
        }
    }
}

/// One rule family variant per part; `held_out()` variants are never used for training (eval only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DanceRules {
    pub lead: LeadRule,
    pub arp: ArpRule,
    pub bass: BassRule,
}

const TRAIN_COUNT: usize = LeadRule::TRAIN.len() * ArpRule::TRAIN.len() * BassRule::TRAIN.len();

impl DanceRules {
    /// Every combination of training variants (lead major, then arp, then bass).
    pub const TRAIN: [DanceRules; TRAIN_COUNT] = {
        let mut out =
            [DanceRules { lead: LeadRule::HELD_OUT, arp: ArpRule::HELD_OUT, bass: BassRule::HELD_OUT }; TRAIN_COUNT];
        let (arps, basses) = (ArpRule::TRAIN.len(), BassRule::TRAIN.len());
        let mut i = 0;
        while i < TRAIN_COUNT {
            out[i] = DanceRules {
                lead: LeadRule::TRAIN[i / (arps * basses)],
                arp: ArpRule::TRAIN[(i / basses) % arps],
                bass: BassRule::TRAIN[i % basses],
            };
            i += 1;
        }
        out
    };

    /// The held-out variant of each family: eval only.
    pub fn held_out() -> DanceRules {
        DanceRules { lead: LeadRule::HELD_OUT, arp: ArpRule::HELD_OUT, bass: BassRule::HELD_OUT }
    }

    /// Deterministic choice among the training variants for (song id, stream index).
    pub fn pick_for_training(song_id: u32, index: u32) -> DanceRules {
        let hash = mix64(((song_id as u64) << 32 | index as u64) ^ 0x00da_11ce_5eed);
        Self::TRAIN[(hash % TRAIN_COUNT as u64) as usize]
    }

    /// e.g. "lead=cell-repeat arp=up16 bass=offbeat8".
    pub fn name(&self) -> String {
        format!("lead={} arp={} bass={}", self.lead.name(), self.arp.name(), self.bass.name())
    }
}

/// splitmix64's finalizer: a small, well-mixed hash.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Every rule as one line, for the model card: (rule, what it does).
pub fn rule_descriptions() -> Vec<(String, String)> {
    let common = [
        ("grid", "onsets on the 16th grid only (melody triplet onsets to the nearest 16th); vocabulary durations, each ending by the part's next onset and inside the phrase"),
        ("harmony", "chord = last change at or before the tick; no chord holds the previous chord, else the key's tonic triad; the song's chord changes are kept"),
        ("lead lift", "melody (highest note per onset) moved by whole octaves so its duration-weighted median is the first at or above 76; notes above 96 drop an octave; another octave if the lead's median is still below 76 and it fits under 96"),
        ("lead fill", "a melody note lasts to the next onset across rests up to a half bar; longer rests (and before the first / after the last note) are filled per half bar with in-key chord tones near the last lead pitch"),
        ("lead pitch", "melody pitches (chromatic ones kept) or in-key chord tones; the lead is never re-pitched for the other parts"),
        ("arp register", "chord ladder from the root in 48..=59; a note drops by octaves to lie at least 3 semitones below the lowest sounding lead note, else the nearest chord tone that fits (at least 1 below); never below 48; single-note onsets"),
        ("bass register", "root in 29..=40, octave and fifth above it, all within 28..=52"),
        ("no clashes", "bass then arp notes a minor 2nd / major 7th from any sounding note of another part take the nearest clash-free chord tone, then in-key tone"),
        ("velocity", "accents as velocity-bin centres: downbeat/beat/8th/odd 16th = bins 6/5/5/4 lead, 5/4/3/3 arp, 6/5/5/4 bass"),
        ("held out", "lead=anticipate16, arp=down16, bass=octave8 are never trained on"),
    ];
    let mut out: Vec<(String, String)> = common.iter().map(|&(k, v)| (k.to_string(), v.to_string())).collect();
    out.extend(LeadRule::ALL.iter().map(|r| (format!("lead={}", r.name()), r.description().to_string())));
    out.extend(ArpRule::ALL.iter().map(|r| (format!("arp={}", r.name()), r.description().to_string())));
    out.extend(BassRule::ALL.iter().map(|r| (format!("bass={}", r.name()), r.description().to_string())));
    out
}

/// The Dance arrangement of `song` under `rules`: same bars and chords; new lead/arp/bass notes.
pub fn dance_phrase(song: &Song, rules: DanceRules) -> Phrase {
    let bars = song.phrase.bars;
    let total = bars * TICKS_PER_BAR;
    let chords: Vec<Chord> = song.phrase.chords.iter().copied().filter(|c| c.start_tick < total).collect();
    let harmony = Harmony::new(&chords, song.header.key);
    let lead = if total == 0 { Vec::new() } else { make_lead(song, &harmony, rules.lead, total) };
    let bass = make_bass(&harmony, rules.bass, bars, &lead);
    let arp = make_arp(&harmony, rules.arp, bars, &lead, &bass);
    let mut phrase = Phrase { notes: lead.into_iter().chain(arp).chain(bass).collect(), chords, bars };
    phrase.normalize();
    phrase
}

// ---------------------------------------------------------------------------------------------
// Harmony

/// (root pitch class, quality).
type ChordValue = (u8, ChordQuality);

/// The song's chords with "no chord" resolved, and its key.
struct Harmony {
    /// (start tick, chord), sorted; the first starts at 0.
    spans: Vec<(u32, ChordValue)>,
    key: Key,
}

impl Harmony {
    fn new(chords: &[Chord], key: Key) -> Harmony {
        let tonic = (key.tonic % 12, if key.minor { ChordQuality::Minor } else { ChordQuality::Major });
        let mut spans: Vec<(u32, ChordValue)> = vec![(0, tonic)];
        let mut held: Option<ChordValue> = None;
        for c in chords {
            let value = match c.chord {
                Some(v) => {
                    held = Some(v);
                    v
                }
                None => held.unwrap_or(tonic),
            };
            if c.start_tick == 0 {
                spans[0].1 = value;
            } else {
                spans.push((c.start_tick, value));
            }
        }
        Harmony { spans, key }
    }

    fn at(&self, tick: u32) -> ChordValue {
        let i = self.spans.partition_point(|&(s, _)| s <= tick);
        self.spans[i.saturating_sub(1)].1
    }

    /// The tick of the next chord change after `tick`, if any.
    fn next_change(&self, tick: u32) -> Option<u32> {
        let i = self.spans.partition_point(|&(s, _)| s <= tick);
        self.spans.get(i).map(|&(s, _)| s)
    }

    fn in_key(&self, pitch: u8) -> bool {
        self.key.scale_mask() & (1 << (pitch % 12)) != 0
    }
}

/// Pitch-class mask of a chord's tones.
fn chord_mask((root, quality): ChordValue) -> u16 {
    quality.intervals().iter().fold(0u16, |m, &i| m | 1 << ((root + i) % 12))
}

fn has_pc(mask: u16, pitch: u8) -> bool {
    mask & (1 << (pitch % 12)) != 0
}

/// The pitch in `lo..=hi` whose class is in `mask` nearest to `target` (ties to the higher).
fn nearest_in_mask(mask: u16, target: u8, lo: u8, hi: u8) -> Option<u8> {
    (lo..=hi).filter(|&p| has_pc(mask, p)).min_by_key(|&p| (p.abs_diff(target), std::cmp::Reverse(p)))
}

/// A minor 2nd or major 7th (in any octave) between two pitches.
fn clashes(a: u8, b: u8) -> bool {
    matches!(a.abs_diff(b) % 12, 1 | 11)
}

// ---------------------------------------------------------------------------------------------
// Lead

/// A stretch of time one lead pitch covers before the rhythm rule splits it.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u32,
    end: u32,
    pitch: u8,
}

/// A lead onset; its note lasts to the next onset, but not past `limit`.
#[derive(Debug, Clone, Copy)]
struct Onset {
    tick: u32,
    pitch: u8,
    limit: u32,
}

/// The nearest 16th-grid tick (a triplet tick is one tick from exactly one 16th).
fn snap16(tick: u32) -> u32 {
    match tick % SIXTEENTH {
        0 => tick,
        1 => tick - 1,
        _ => tick + 1,
    }
}

fn make_lead(song: &Song, harmony: &Harmony, rule: LeadRule, total: u32) -> Vec<Note> {
    // The melody on the 16th grid, one note (the highest) per onset.
    let mut melody: Vec<(u32, u32, u8)> = song
        .phrase
        .notes_of(Part::Lead)
        .map(|n| (snap16(n.start_tick), snap16(n.end_tick()), n.pitch))
        .filter(|&(s, _, _)| s < total)
        .collect();
    melody.sort_by_key(|&(s, _, p)| (s, std::cmp::Reverse(p)));
    melody.dedup_by_key(|m| m.0);

    // Octave lift: the smallest shift putting the duration-weighted median at or above 76.
    let shift = octave_lift(&melody);
    for m in &mut melody {
        let mut p = m.2 as i32 + shift;
        while p > LEAD_MAX as i32 {
            p -= 12;
        }
        m.2 = p.clamp(0, LEAD_MAX as i32) as u8;
    }

    let segments = lead_segments(&melody, harmony, total);
    let mut onsets = split_segments(&segments, rule);
    if rule == LeadRule::CellRepeat {
        onsets = repeat_cells(&onsets, harmony, total);
    }
    let mut notes = onsets_to_notes(&onsets, Part::Lead, total);

    // Safety net: still low after the rules, and an octave more fits.
    let median = median_pitch(&notes);
    let top = notes.iter().map(|n| n.pitch).max().unwrap_or(0);
    if median.is_some_and(|m| m < LEAD_MEDIAN_MIN) && top + 12 <= LEAD_MAX {
        for n in &mut notes {
            n.pitch += 12;
        }
    }
    notes
}

/// Octaves (in semitones) that lift the melody's duration-weighted median to at least 76.
fn octave_lift(melody: &[(u32, u32, u8)]) -> i32 {
    let mut weighted: Vec<(u8, u32)> = melody.iter().map(|&(s, e, p)| (p, e.saturating_sub(s).max(1))).collect();
    if weighted.is_empty() {
        return 0;
    }
    weighted.sort_unstable();
    let half = weighted.iter().map(|w| w.1).sum::<u32>().div_ceil(2);
    let mut acc = 0;
    let median = weighted
        .iter()
        .find(|w| {
            acc += w.1;
            acc >= half
        })
        .map(|w| w.0)
        .unwrap_or(weighted[0].0) as i32;
    let mut shift = -48;
    while median + shift < LEAD_MEDIAN_MIN as i32 {
        shift += 12;
    }
    shift
}

fn median_pitch(notes: &[Note]) -> Option<u8> {
    let mut pitches: Vec<u8> = notes.iter().map(|n| n.pitch).collect();
    pitches.sort_unstable();
    pitches.get(pitches.len() / 2).copied()
}

/// Melody notes made legato, and rests filled, so segments cover `0..total` without gaps.
fn lead_segments(melody: &[(u32, u32, u8)], harmony: &Harmony, total: u32) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut fill_index = 0usize;
    let anchor0 = melody.first().map(|m| m.2).unwrap_or(79);
    let mut fill = |from: u32, to: u32, anchor: u8, segments: &mut Vec<Segment>| {
        let mut t = from;
        while t < to {
            let next_half = (t / HALF_BAR + 1) * HALF_BAR;
            let end = next_half.min(to).min(harmony.next_change(t).unwrap_or(u32::MAX));
            let pitch = fill_pitch(harmony, t, anchor, fill_index);
            fill_index += 1;
            segments.push(Segment { start: t, end, pitch });
            t = end;
        }
    };
    let first = melody.first().map(|m| m.0).unwrap_or(total);
    fill(0, first, anchor0, &mut segments);
    for (i, &(start, end, pitch)) in melody.iter().enumerate() {
        let next = melody.get(i + 1).map(|m| m.0).unwrap_or(total);
        let end = end.clamp(start + SIXTEENTH, next);
        let end = if next - end <= LEGATO_GAP { next } else { end.next_multiple_of(TICKS_PER_BEAT).min(next) };
        segments.push(Segment { start, end, pitch });
        fill(end, next, pitch, &mut segments);
    }
    segments
}

/// A fill pitch: in-key chord tones near `anchor`, stepping 0, +1, +2, +1 tones along the fill.
fn fill_pitch(harmony: &Harmony, tick: u32, anchor: u8, index: usize) -> u8 {
    let chord = chord_mask(harmony.at(tick));
    let scale = harmony.key.scale_mask();
    let mask = if chord & scale != 0 { chord & scale } else { scale };
    let lo = anchor.saturating_sub(9).max(60);
    let hi = (anchor + 9).min(LEAD_MAX);
    let tones: Vec<u8> = (lo..=hi).filter(|&p| has_pc(mask, p)).collect();
    if tones.is_empty() {
        return anchor;
    }
    let nearest = (0..tones.len()).min_by_key(|&i| (tones[i].abs_diff(anchor), i)).unwrap_or(0);
    let step = [0, 1, 2, 1][index % 4];
    tones[(nearest + step).min(tones.len() - 1)]
}

/// Segments into onsets by the rule's re-strike cell.
fn split_segments(segments: &[Segment], rule: LeadRule) -> Vec<Onset> {
    let mut segments = segments.to_vec();
    if rule == LeadRule::Anticipate {
        for i in 1..segments.len() {
            let (prev, cur) = (segments[i - 1], segments[i]);
            if cur.start.is_multiple_of(TICKS_PER_BEAT) && prev.pitch != cur.pitch && cur.start - prev.start >= EIGHTH {
                segments[i - 1].end -= SIXTEENTH;
                segments[i].start -= SIXTEENTH;
            }
        }
    }
    let cell = rule.half_bar_cell();
    let mut onsets = Vec::new();
    for seg in &segments {
        onsets.push(Onset { tick: seg.start, pitch: seg.pitch, limit: seg.end });
        if seg.end - seg.start < TICKS_PER_BEAT {
            continue;
        }
        let first_half = seg.start / HALF_BAR * HALF_BAR;
        let mut h = first_half;
        while h < seg.end {
            for &c in cell {
                let t = h + c;
                if t >= seg.start + EIGHTH && t + SIXTEENTH <= seg.end {
                    onsets.push(Onset { tick: t, pitch: seg.pitch, limit: seg.end });
                }
            }
            h += HALF_BAR;
        }
    }
    onsets.sort_by_key(|o| o.tick);
    onsets.dedup_by_key(|o| o.tick);
    onsets
}

/// In every 4-bar group, bars 3–4 replay the onsets of bars 1–2; a pitch is kept where the chord is
/// the same or the pitch is a tone of the new chord, else it moves to the nearest in-key tone of it.
fn repeat_cells(onsets: &[Onset], harmony: &Harmony, total: u32) -> Vec<Onset> {
    let two_bars = 2 * TICKS_PER_BAR;
    let mut out: Vec<Onset> = Vec::new();
    let mut group_start = 0;
    while group_start < total {
        let (src, dst) = (group_start, group_start + two_bars);
        let group_end = (group_start + 2 * two_bars).min(total);
        out.extend(onsets.iter().filter(|o| o.tick >= src && o.tick < dst.min(total)));
        if dst < total {
            let mut cell: Vec<Onset> = onsets.iter().filter(|o| o.tick >= src && o.tick < dst).copied().collect();
            // A note held into the source window restarts at its start.
            if cell.first().is_none_or(|o| o.tick > src) {
                if let Some(held) = onsets.iter().rev().find(|o| o.tick < src).filter(|o| o.limit > src) {
                    cell.insert(0, Onset { tick: src, ..*held });
                }
            }
            for o in cell {
                let tick = o.tick + two_bars;
                if tick >= group_end {
                    continue;
                }
                let (from, to) = (harmony.at(o.tick), harmony.at(tick));
                let pitch = if from == to || has_pc(chord_mask(to), o.pitch) {
                    o.pitch
                } else {
                    let in_key = chord_mask(to) & harmony.key.scale_mask();
                    let mask = if in_key != 0 { in_key } else { harmony.key.scale_mask() };
                    nearest_in_mask(mask, o.pitch, 55, LEAD_MAX).unwrap_or(o.pitch)
                };
                out.push(Onset { tick, pitch, limit: (o.limit + two_bars).min(group_end) });
            }
        }
        group_start += 2 * two_bars;
    }
    out
}

/// The largest vocabulary duration at most `ticks` (at least the shortest).
fn duration_within(ticks: u32) -> u32 {
    let nearest = DURATIONS_TICKS[vocab::duration_index(ticks) as usize];
    if nearest <= ticks {
        return nearest;
    }
    DURATIONS_TICKS.iter().copied().filter(|&d| d <= ticks).max().unwrap_or(DURATIONS_TICKS[0])
}

/// The accent bin of an onset: downbeat / beat / 8th / other, from `bins`.
fn velocity(tick: u32, bins: [u8; 4]) -> u8 {
    let bin = if tick.is_multiple_of(TICKS_PER_BAR) {
        bins[0]
    } else if tick.is_multiple_of(TICKS_PER_BEAT) {
        bins[1]
    } else if tick.is_multiple_of(EIGHTH) {
        bins[2]
    } else {
        bins[3]
    };
    vocab::velocity_of_bin(bin)
}

const LEAD_BINS: [u8; 4] = [6, 5, 5, 4];
const ARP_BINS: [u8; 4] = [5, 4, 3, 3];
const BASS_BINS: [u8; 4] = [6, 5, 5, 4];

/// Onsets (sorted, distinct ticks) into single-line notes lasting to the next onset or the limit.
fn onsets_to_notes(onsets: &[Onset], part: Part, total: u32) -> Vec<Note> {
    let mut sorted = onsets.to_vec();
    sorted.sort_by_key(|o| o.tick);
    sorted.dedup_by_key(|o| o.tick);
    sorted
        .iter()
        .enumerate()
        .filter(|(_, o)| o.tick < total)
        .map(|(i, o)| {
            let next = sorted.get(i + 1).map(|n| n.tick).unwrap_or(total);
            let end = next.min(o.limit).min(total).max(o.tick + SIXTEENTH);
            Note {
                start_tick: o.tick,
                part,
                pitch: o.pitch,
                duration_ticks: duration_within(end - o.tick),
                velocity: velocity(o.tick, LEAD_BINS),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Bass and arp

/// Notes of a single line (sorted, non-overlapping) sounding during `from..to`.
fn sounding(line: &[Note], from: u32, to: u32) -> impl Iterator<Item = &Note> {
    let end = line.partition_point(|n| n.start_tick < to);
    line[..end].iter().rev().take_while(move |n| n.end_tick() > from)
}

fn make_bass(harmony: &Harmony, rule: BassRule, bars: u32, lead: &[Note]) -> Vec<Note> {
    let pattern = rule.bar_pattern();
    let mut notes = Vec::new();
    for bar in 0..bars {
        for &(offset, length, octave) in &pattern {
            let tick = bar * TICKS_PER_BAR + offset;
            let (root_pc, quality) = harmony.at(tick);
            let root = BASS_ROOT_LOW + (root_pc + 12 - BASS_ROOT_LOW % 12) % 12;
            let wanted = if octave { root + 12 } else { root };
            let above: Vec<u8> = sounding(lead, tick, tick + length).map(|n| n.pitch).collect();
            let ok = |p: u8| above.iter().all(|&q| !clashes(p, q));
            let chord_tones = quality.intervals().iter().map(|&i| root + i);
            let scale = (BASS_RANGE.0..=BASS_RANGE.1).filter(|&p| harmony.in_key(p));
            let pitch = [wanted, root, root + 12, root + 7]
                .into_iter()
                .chain(chord_tones)
                .chain(scale)
                .find(|&p| ok(p) && (BASS_RANGE.0..=BASS_RANGE.1).contains(&p))
                .unwrap_or(wanted);
            notes.push(Note {
                start_tick: tick,
                part: Part::Bass,
                pitch,
                duration_ticks: length,
                velocity: velocity(tick, BASS_BINS),
            });
        }
    }
    notes
}

/// Where an arp step reaches on the chord.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The n-th tone of the chord ladder (chord tones from the root upwards, octave after octave;
    /// triads add the octave root as their 4th tone).
    Ladder(usize),
    Root,
    Fifth,
    Octave,
    Tenth,
}

/// Semitones above the root of a step.
fn step_offset(step: Step, quality: ChordQuality) -> u8 {
    let iv = quality.intervals();
    match step {
        Step::Ladder(n) => {
            let ladder: Vec<u8> = (0..3u8).flat_map(|o| iv.iter().map(move |&i| i + 12 * o)).collect();
            ladder[n.min(ladder.len() - 1)]
        }
        Step::Root => 0,
        Step::Fifth => iv[2],
        Step::Octave => 12,
        Step::Tenth => 12 + iv[1],
    }
}

fn make_arp(harmony: &Harmony, rule: ArpRule, bars: u32, lead: &[Note], bass: &[Note]) -> Vec<Note> {
    let mut notes = Vec::new();
    for bar in 0..bars {
        for beat in 0..TICKS_PER_BAR / TICKS_PER_BEAT {
            for (offset, length, step) in rule.beat_steps(beat) {
                let tick = bar * TICKS_PER_BAR + beat * TICKS_PER_BEAT + offset;
                let chord = harmony.at(tick);
                let root = ARP_FLOOR + (chord.0 + 12 - ARP_FLOOR % 12) % 12;
                let wanted = root + step_offset(step, chord.1);
                let lowest_lead = sounding(lead, tick, tick + length).map(|n| n.pitch).min();
                let others: Vec<u8> = sounding(lead, tick, tick + length)
                    .chain(sounding(bass, tick, tick + length))
                    .map(|n| n.pitch)
                    .collect();
                let pitch = arp_pitch(harmony, chord, wanted, lowest_lead, &others);
                notes.push(Note {
                    start_tick: tick,
                    part: Part::Arp,
                    pitch,
                    duration_ticks: length,
                    velocity: velocity(tick, ARP_BINS),
                });
            }
        }
    }
    notes
}

/// The arp pitch for `wanted`: under the lead (by 3 semitones if it can, else 1), not below 48,
/// clashing with none of `others`.
fn arp_pitch(harmony: &Harmony, chord: ChordValue, wanted: u8, lowest_lead: Option<u8>, others: &[u8]) -> u8 {
    let ok = |p: u8| others.iter().all(|&q| !clashes(p, q));
    let ceilings = match lowest_lead {
        Some(l) => [l.saturating_sub(ARP_GAP_PREFERRED), l.saturating_sub(1)],
        None => [wanted.max(ARP_FLOOR), wanted.max(ARP_FLOOR)],
    };
    let mut fallback = None;
    for ceiling in ceilings {
        if ceiling < ARP_FLOOR {
            continue;
        }
        let mut p = wanted;
        while p > ceiling && p - 12 >= ARP_FLOOR {
            p -= 12;
        }
        if p <= ceiling && ok(p) {
            return p;
        }
        let chord_tones = chord_mask(chord);
        let candidates = |mask: u16| {
            let mut ps: Vec<u8> = (ARP_FLOOR..=ceiling).filter(|&q| has_pc(mask, q)).collect();
            ps.sort_by_key(|&q| (q.abs_diff(p), std::cmp::Reverse(q)));
            ps
        };
        if let Some(q) =
            candidates(chord_tones).into_iter().chain(candidates(harmony.key.scale_mask())).find(|&q| ok(q))
        {
            return q;
        }
        fallback = fallback.or(candidates(chord_tones).first().copied());
    }
    fallback.unwrap_or(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pop909::SongMeta;
    use neural_trio::music::controls::Style;
    use neural_trio::music::tokens::{decode_phrase, encode_phrase, Header};
    use neural_trio::music::vocab::Mood;

    fn lead_note(start_tick: u32, duration_ticks: u32, pitch: u8) -> Note {
        Note { start_tick, part: Part::Lead, pitch, duration_ticks, velocity: vocab::velocity_of_bin(5) }
    }

    /// Eight bars in C major: I–V–vi–IV each bar, a melody of long notes, rests and one triplet onset.
    fn test_song() -> Song {
        let notes = vec![
            // Bar 0: E half, G quarter, rest.
            lead_note(0, 24, 64),
            lead_note(24, 12, 67),
            // Bar 1: D whole note (over G).
            lead_note(48, 48, 62),
            // Bar 2: C dotted half, A 8th at beat 4 and a half (over Am).
            lead_note(96, 36, 60),
            lead_note(138, 6, 69),
            // Bar 3: rest a half, F half (over F).
            lead_note(168, 24, 65),
            // Bar 4: E dotted quarter, D 8th, C half.
            lead_note(192, 18, 64),
            lead_note(210, 6, 62),
            lead_note(216, 24, 60),
            // Bar 5: B half over G, then nothing.
            lead_note(240, 24, 59),
            // Bar 6: rest, a triplet-grid onset (tick 8 of the bar), A long.
            lead_note(288 + 8, 36, 69),
            // Bar 7: G whole (ends the song), with a 2-bar rest before... none: 7 is held.
            lead_note(336, 48, 67),
        ];
        let chords = (0..8)
            .map(|bar| Chord {
                start_tick: bar * TICKS_PER_BAR,
                chord: Some(
                    [
                        (0, ChordQuality::Major),
                        (7, ChordQuality::Major),
                        (9, ChordQuality::Minor),
                        (5, ChordQuality::Major),
                    ][bar as usize % 4],
                ),
            })
            .collect();
        let mut phrase = Phrase { notes, chords, bars: 8 };
        phrase.normalize();
        let key = Key { tonic: 0, minor: false };
        Song {
            id: 1,
            header: Header { tempo_bin: 4, key, mood: Mood::Happy, style: Style::Pop },
            phrase,
            meta: SongMeta {
                annotated_bpm: 124.0,
                half_time: false,
                effective_bpm: 124.0,
                key,
                mood: Mood::Happy,
                leading_bars_trimmed: 0,
                beats_cut: 0,
                notes_dropped: 0,
                triplet_onsets: 1,
                mean_onset_error_ticks: 0.0,
                unknown_chord_labels: Vec::new(),
            },
        }
    }

    /// What the targets measure, over a whole phrase.
    #[derive(Debug)]
    struct Figures {
        lead_per_bar: f64,
        silent_beats: f64,
        /// Share of 8-bar phrases in which at least half the bars have the rhythm of two bars later.
        repeat_phrases: f64,
        lead_median: u8,
        /// Share of lead onsets above every arp note sounding then.
        lead_above_arp: f64,
        odd_lead: f64,
        odd_arp: f64,
        odd_bass: f64,
        arp_min_per_bar: usize,
        arp_single: bool,
        bass_min_per_bar: usize,
        clashes: usize,
        lead_in_key: f64,
        max_lead: u8,
    }

    fn figures(key: Key, phrase: &Phrase) -> Figures {
        let bars = phrase.bars as usize;
        let lead: Vec<&Note> = phrase.notes_of(Part::Lead).collect();
        let arp: Vec<&Note> = phrase.notes_of(Part::Arp).collect();
        let bass: Vec<&Note> = phrase.notes_of(Part::Bass).collect();
        let beats = phrase.bars * 4;
        let silent = (0..beats)
            .filter(|b| {
                let (lo, hi) = (b * TICKS_PER_BEAT, (b + 1) * TICKS_PER_BEAT);
                !lead.iter().any(|n| n.start_tick < hi && n.end_tick() > lo)
            })
            .count();
        let rhythm = |bar: usize| -> Vec<u32> {
            lead.iter()
                .filter(|n| n.start_tick as usize / TICKS_PER_BAR as usize == bar)
                .map(|n| n.start_tick % TICKS_PER_BAR)
                .collect()
        };
        let phrases = bars.div_ceil(8);
        let repeating = (0..phrases)
            .filter(|p| {
                let first = p * 8;
                let last = (first + 8).min(bars);
                let pairs: Vec<bool> = (first..last.saturating_sub(2)).map(|b| rhythm(b) == rhythm(b + 2)).collect();
                !pairs.is_empty() && pairs.iter().filter(|&&x| x).count() * 2 >= pairs.len()
            })
            .count();
        let mut pitches: Vec<u8> = lead.iter().map(|n| n.pitch).collect();
        pitches.sort_unstable();
        let above = lead
            .iter()
            .filter(|l| {
                arp.iter()
                    .filter(|a| a.start_tick <= l.start_tick && a.end_tick() > l.start_tick)
                    .all(|a| a.pitch < l.pitch)
            })
            .count();
        let odd =
            |notes: &[&Note]| notes.iter().filter(|n| n.start_tick % 6 == 3).count() as f64 / notes.len().max(1) as f64;
        let per_bar_min = |notes: &[&Note]| {
            (0..bars)
                .map(|b| notes.iter().filter(|n| n.start_tick as usize / TICKS_PER_BAR as usize == b).count())
                .min()
                .unwrap_or(0)
        };
        let mut onsets: Vec<u32> = phrase.notes.iter().map(|n| n.start_tick).collect();
        onsets.dedup();
        let mut clash_count = 0;
        for t in onsets {
            let on: Vec<&Note> = phrase.notes.iter().filter(|n| n.start_tick <= t && n.end_tick() > t).collect();
            for (i, a) in on.iter().enumerate() {
                for b in &on[i + 1..] {
                    if a.part != b.part && clashes(a.pitch, b.pitch) {
                        clash_count += 1;
                    }
                }
            }
        }
        let mask = key.scale_mask();
        Figures {
            lead_per_bar: lead.len() as f64 / bars as f64,
            silent_beats: silent as f64 / beats as f64,
            repeat_phrases: repeating as f64 / phrases as f64,
            lead_median: pitches[pitches.len() / 2],
            lead_above_arp: above as f64 / lead.len() as f64,
            odd_lead: odd(&lead),
            odd_arp: odd(&arp),
            odd_bass: odd(&bass),
            arp_min_per_bar: per_bar_min(&arp),
            arp_single: arp.windows(2).all(|w| w[0].start_tick != w[1].start_tick),
            bass_min_per_bar: per_bar_min(&bass),
            clashes: clash_count,
            lead_in_key: lead.iter().filter(|n| has_pc(mask, n.pitch)).count() as f64 / lead.len() as f64,
            max_lead: pitches.last().copied().unwrap_or(0),
        }
    }

    /// What holds by construction for any song: grid, vocabulary, bounds, single lines, round trip.
    fn check_form(song: &Song, phrase: &Phrase, rules: DanceRules) {
        let what = rules.name();
        let total = phrase.bars * TICKS_PER_BAR;
        assert_eq!(phrase.bars, song.phrase.bars);
        let mut normalized = phrase.clone();
        normalized.normalize();
        assert_eq!(&normalized, phrase, "{what}: not normalized");
        for n in &phrase.notes {
            assert_eq!(n.start_tick % 3, 0, "{what}: {n:?} off the 16th grid");
            assert!(DURATIONS_TICKS.contains(&n.duration_ticks), "{what}: {n:?}");
            assert!(n.end_tick() <= total, "{what}: {n:?} past the end");
            assert_eq!(n.velocity, vocab::velocity_of_bin(vocab::velocity_bin(n.velocity)));
        }
        for part in [Part::Lead, Part::Bass, Part::Arp] {
            let line: Vec<&Note> = phrase.notes_of(part).collect();
            for w in line.windows(2) {
                assert!(w[0].end_tick() <= w[1].start_tick, "{what}: {part:?} overlaps at {}", w[1].start_tick);
            }
        }
        assert!(phrase.notes_of(Part::Lead).all(|n| n.pitch <= LEAD_MAX));
        assert!(phrase.notes_of(Part::Arp).all(|n| n.pitch >= ARP_FLOOR));
        assert!(phrase.notes_of(Part::Bass).all(|n| (BASS_RANGE.0..=BASS_RANGE.1).contains(&n.pitch)));
        let expected_chords: Vec<Chord> = song.phrase.chords.iter().copied().filter(|c| c.start_tick < total).collect();
        assert_eq!(phrase.chords, expected_chords);
        let tokens = encode_phrase(&song.header, phrase, true);
        let (header, decoded) = decode_phrase(&tokens).unwrap();
        assert_eq!(header, song.header);
        assert_eq!(&decoded, phrase, "{what}: round trip");
    }

    fn every_combination() -> Vec<DanceRules> {
        let mut all = DanceRules::TRAIN.to_vec();
        all.push(DanceRules::held_out());
        all
    }

    fn print_figures(label: &str, f: &Figures) {
        println!(
            "{label:<58} lead/bar {:4.1} silent {:4.1}% rep {:3.0}% median {} above {:5.1}% odd16 lead {:4.1}% arp \
             {:4.1}% bass {:4.1}% arp/bar>={} bass/bar>={} clashes {} in-key {:5.1}%",
            f.lead_per_bar,
            f.silent_beats * 100.0,
            f.repeat_phrases * 100.0,
            f.lead_median,
            f.lead_above_arp * 100.0,
            f.odd_lead * 100.0,
            f.odd_arp * 100.0,
            f.odd_bass * 100.0,
            f.arp_min_per_bar,
            f.bass_min_per_bar,
            f.clashes,
            f.lead_in_key * 100.0,
        );
    }

    #[test]
    fn dance_rules_meet_the_targets_on_a_small_song() {
        let song = test_song();
        let mut odd_by_lead: Vec<(LeadRule, f64)> = Vec::new();
        for rules in every_combination() {
            let phrase = dance_phrase(&song, rules);
            check_form(&song, &phrase, rules);
            let f = figures(song.header.key, &phrase);
            print_figures(&rules.name(), &f);
            let what = rules.name();
            assert!(f.lead_per_bar >= 4.5, "{what}: {f:?}");
            assert!(f.silent_beats <= 0.03, "{what}: {f:?}");
            assert!(f.lead_median >= 76, "{what}: {f:?}");
            assert!(f.max_lead <= 96, "{what}: {f:?}");
            assert!(f.lead_above_arp >= 0.95, "{what}: {f:?}");
            assert!(f.arp_min_per_bar >= 8 && f.arp_single, "{what}: {f:?}");
            assert!(f.bass_min_per_bar >= 4, "{what}: {f:?}");
            assert!(f.odd_arp.max(f.odd_bass) >= 0.15, "{what}: {f:?}");
            assert_eq!(f.clashes, 0, "{what}: {f:?}");
            assert_eq!(f.lead_in_key, 1.0, "{what}: {f:?}");
            if rules.lead != LeadRule::Pulse8 {
                assert!(f.odd_lead >= 0.12, "{what}: {f:?}");
            }
            if rules.lead == LeadRule::CellRepeat {
                assert_eq!(f.repeat_phrases, 1.0, "{what}: {f:?}");
            }
            odd_by_lead.push((rules.lead, f.odd_lead));
        }
        let train: Vec<f64> =
            odd_by_lead.iter().filter(|(l, _)| LeadRule::TRAIN.contains(l)).map(|&(_, o)| o).collect();
        let mean = train.iter().sum::<f64>() / train.len() as f64;
        println!("mean odd-16th lead share over training lead rules: {:.1}%", mean * 100.0);
        assert!(mean >= 0.12);
    }

    #[test]
    fn rules_are_listed_named_and_picked_deterministically() {
        assert_eq!(DanceRules::TRAIN.len(), 36);
        let held = DanceRules::held_out();
        assert!(DanceRules::TRAIN
            .to_vec()
            .iter()
            .all(|r| r.lead != held.lead && r.arp != held.arp && r.bass != held.bass));
        let unique: std::collections::HashSet<_> = DanceRules::TRAIN.iter().collect();
        assert_eq!(unique.len(), DanceRules::TRAIN.len());
        assert_eq!(
            DanceRules { lead: LeadRule::CellRepeat, arp: ArpRule::Up16, bass: BassRule::Offbeat8 }.name(),
            "lead=cell-repeat arp=up16 bass=offbeat8"
        );
        let picks: Vec<DanceRules> = (0..200).map(|i| DanceRules::pick_for_training(7, i)).collect();
        assert_eq!(picks, (0..200).map(|i| DanceRules::pick_for_training(7, i)).collect::<Vec<_>>());
        let distinct: std::collections::HashSet<_> = picks.iter().collect();
        assert!(distinct.len() > 30, "picks cover the combinations: {}", distinct.len());
        assert!(picks.iter().all(|p| DanceRules::TRAIN.contains(p)));
        let lines = rule_descriptions();
        for rule in LeadRule::ALL
            .map(|r| format!("lead={}", r.name()))
            .into_iter()
            .chain(ArpRule::ALL.map(|r| format!("arp={}", r.name())))
            .chain(BassRule::ALL.map(|r| format!("bass={}", r.name())))
        {
            assert!(lines.iter().any(|(k, v)| *k == rule && !v.is_empty()), "{rule}");
        }
    }

    #[test]
    fn no_chord_holds_the_previous_chord_or_takes_the_tonic_triad() {
        let key = Key { tonic: 9, minor: true };
        let chords = [
            Chord { start_tick: 0, chord: None },
            Chord { start_tick: 48, chord: Some((5, ChordQuality::Major)) },
            Chord { start_tick: 96, chord: None },
        ];
        let h = Harmony::new(&chords, key);
        assert_eq!(h.at(10), (9, ChordQuality::Minor));
        assert_eq!(h.at(50), (5, ChordQuality::Major));
        assert_eq!(h.at(500), (5, ChordQuality::Major));
        assert_eq!(Harmony::new(&[], key).at(0), (9, ChordQuality::Minor));
        assert_eq!(snap16(8), 9);
        assert_eq!(snap16(4), 3);
        assert_eq!(duration_within(21), 18);
        assert_eq!(duration_within(3), 3);
    }

    #[test]
    fn real_songs_arrange_cleanly() {
        let root = crate::dataset::default_source();
        if !root.join("001").is_dir() {
            eprintln!("POP909 not found; skipping");
            return;
        }
        let ids = ["001", "002", "010", "100", "386", "500", "850"];
        let mut odd_sum = 0.0;
        let mut odd_n = 0;
        let mut repeat = Vec::new();
        for id in ids {
            let Ok(song) = crate::pop909::load_song(&root.join(id)) else { continue };
            for rules in every_combination() {
                let phrase = dance_phrase(&song, rules);
                check_form(&song, &phrase, rules);
                let f = figures(song.header.key, &phrase);
                let first = rules.arp == ArpRule::TRAIN[0] && rules.bass == BassRule::TRAIN[0];
                if first || rules == DanceRules::held_out() {
                    // Arp and bass rules leave the lead's figures unchanged: one line per lead rule.
                    print_figures(&format!("{id} {}", rules.name()), &f);
                }
                let what = format!("{id} {}", rules.name());
                assert!(f.lead_per_bar >= 4.5, "{what}: {f:?}");
                assert!(f.silent_beats <= 0.03, "{what}: {f:?}");
                assert!(f.lead_median >= 76, "{what}: {f:?}");
                assert!(f.lead_above_arp >= 0.95, "{what}: {f:?}");
                assert!(f.arp_min_per_bar >= 8 && f.arp_single, "{what}: {f:?}");
                assert!(f.bass_min_per_bar >= 4, "{what}: {f:?}");
                assert!(f.clashes == 0, "{what}: {f:?}");
                if LeadRule::TRAIN.contains(&rules.lead) {
                    odd_sum += f.odd_lead;
                    odd_n += 1;
                    repeat.push(f.repeat_phrases);
                }
            }
        }
        let odd = odd_sum / odd_n.max(1) as f64;
        let rep = repeat.iter().sum::<f64>() / repeat.len().max(1) as f64;
        println!(
            "real songs, training lead rules: odd-16th lead share {:.1}%, repeating phrases {:.0}%",
            odd * 100.0,
            rep * 100.0
        );
        assert!(odd >= 0.12);
        assert!(rep >= 0.5);
    }
}

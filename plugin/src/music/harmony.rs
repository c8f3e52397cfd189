//! Harmony from what a player plays: chord recognition over held (or just played) notes, the key
//! of recent input, and chord progressions as a producer types them (`Am F C G`, `| Am | F | C G |`).

use super::phrase::{Chord, ChordQuality, NOTE_NAMES, TICKS_PER_BAR};
use super::vocab::Key;

/// A chord as the vocabulary says it: (root pitch class, quality), or None for "no chord".
pub type ChordValue = Option<(u8, ChordQuality)>;

/// Pitch classes of a chord as a 12-bit mask.
pub fn chord_mask(root: u8, quality: ChordQuality) -> u16 {
    quality.intervals().iter().fold(0u16, |mask, i| mask | 1 << ((root + i) % 12))
}

/// The chord that best explains `pitches` (held together, or broken within a beat), with the lowest
/// note favoured as the root. None when it is unclear: fewer than two pitch classes, or more notes
/// outside any chord than one colour tone.
pub fn recognize(pitches: &[u8], key: Option<Key>) -> ChordValue {
    let present = pitches.iter().fold(0u16, |m, p| m | 1 << (p % 12));
    let classes = present.count_ones();
    if classes < 2 {
        return None;
    }
    let bass = pitches.iter().min().map(|p| p % 12)?;
    let scale = key.map(|k| k.scale_mask());
    let mut best: Option<(f32, u8, ChordQuality)> = None;
    for root in 0..12u8 {
        for quality in ChordQuality::ALL {
            let tones = chord_mask(root, quality);
            let matched = (present & tones).count_ones() as f32;
            let extra = (present & !tones).count_ones();
            let missing = (tones & !present).count_ones() as f32;
            // A colour tone (an added 9th) is allowed once the chord has four notes or more; at most one
            // chord tone may be missing (a third or a fifth alone says which chord it is).
            if matched < 2.0
                || missing > 1.0
                || extra > u32::from(classes >= 4)
                || present & 1 << root == 0 && root != bass
            {
                continue;
            }
            let mut score = 3.0 * matched - 4.0 * extra as f32 - 2.0 * missing;
            if root == bass {
                score += 2.0;
            }
            score += match quality {
                ChordQuality::Major => 0.6,
                ChordQuality::Minor => 0.5,
                _ => 0.0,
            };
            if scale.is_some_and(|s| s & tones == tones) {
                score += 0.7;
            }
            if best.is_none_or(|(s, _, _)| score > s) {
                best = Some((score, root, quality));
            }
        }
    }
    best.map(|(_, root, quality)| (root, quality))
}

/// The diatonic triad on `root` in `key` (major when the key does not say): what a bass note implies.
pub fn triad_on(root: u8, key: Option<Key>) -> (u8, ChordQuality) {
    let Some(scale) = key.map(|k| k.scale_mask()) else { return (root % 12, ChordQuality::Major) };
    let has = |semitones: u8| scale & 1 << ((root + semitones) % 12) != 0;
    let quality = match (has(4), has(3), has(7), has(6)) {
        (true, _, _, _) => ChordQuality::Major,
        (false, true, true, _) => ChordQuality::Minor,
        (false, true, false, true) => ChordQuality::Diminished,
        _ => ChordQuality::Major,
    };
    (root % 12, quality)
}

/// Krumhansl–Kessler key profiles (major, minor), tonic first.
const MAJOR_PROFILE: [f32; 12] = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88];
const MINOR_PROFILE: [f32; 12] = [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17];

/// The key whose profile correlates best with a pitch-class weight histogram (recent notes, weighted
/// by how long they sounded). None until there is enough to go on, or when no key stands out.
pub fn estimate_key(weights: &[f32; 12]) -> Option<Key> {
    let total: f32 = weights.iter().sum();
    if total <= 0.0 || weights.iter().filter(|&&w| w > 0.0).count() < 3 {
        return None;
    }
    let correlation = |profile: &[f32; 12], tonic: usize| {
        let mean_w = total / 12.0;
        let mean_p = profile.iter().sum::<f32>() / 12.0;
        let (mut num, mut dw, mut dp) = (0.0, 0.0, 0.0);
        for pc in 0..12 {
            let w = weights[(tonic + pc) % 12] - mean_w;
            let p = profile[pc] - mean_p;
            num += w * p;
            dw += w * w;
            dp += p * p;
        }
        num / (dw * dp).sqrt().max(1e-9)
    };
    let mut best = (f32::MIN, Key { tonic: 0, minor: false });
    for tonic in 0..12 {
        for (minor, profile) in [(false, &MAJOR_PROFILE), (true, &MINOR_PROFILE)] {
            let r = correlation(profile, tonic);
            if r > best.0 {
                best = (r, Key { tonic: tonic as u8, minor });
            }
        }
    }
    (best.0 > 0.5).then_some(best.1)
}

/// A chord's symbol as players write it: `C`, `Am`, `Bdim`, `Caug`, `Dsus2`, `Gsus4`, `Fmaj7`, `Em7`, `G7`;
/// `N` for no chord.
pub fn chord_symbol(chord: ChordValue) -> String {
    let Some((root, quality)) = chord else { return "N".into() };
    let suffix = match quality {
        ChordQuality::Major => "",
        ChordQuality::Minor => "m",
        ChordQuality::Diminished => "dim",
        ChordQuality::Augmented => "aug",
        ChordQuality::Sus2 => "sus2",
        ChordQuality::Sus4 => "sus4",
        ChordQuality::Major7 => "maj7",
        ChordQuality::Minor7 => "m7",
        ChordQuality::Dominant7 => "7",
    };
    format!("{}{suffix}", NOTE_NAMES[root as usize % 12])
}

/// Reads a chord symbol (`Am`, `F#m7`, `Bb`, `Cmaj7`, `C/E` — the bass after a slash is dropped, `N`
/// for no chord).
pub fn parse_chord_symbol(symbol: &str) -> Result<ChordValue, String> {
    let symbol = symbol.trim();
    if symbol.eq_ignore_ascii_case("n") || symbol.eq_ignore_ascii_case("n.c.") {
        return Ok(None);
    }
    let body = symbol.split('/').next().unwrap_or(symbol);
    let mut chars = body.chars();
    let letter = chars.next().ok_or("an empty chord")?.to_ascii_uppercase();
    let natural = match letter {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return Err(format!("{symbol:?} does not start with a note name A–G")),
    };
    let rest = chars.as_str();
    let (root, rest) = match rest.chars().next() {
        Some('#') | Some('♯') => ((natural + 1) % 12, &rest[rest.chars().next().map_or(0, char::len_utf8)..]),
        Some('b') | Some('♭') => ((natural + 11) % 12, &rest[rest.chars().next().map_or(0, char::len_utf8)..]),
        _ => (natural, rest),
    };
    use ChordQuality::*;
    let quality = match rest {
        "" | "maj" | "M" => Major,
        "m" | "min" | "-" => Minor,
        "dim" | "°" | "o" => Diminished,
        "aug" | "+" => Augmented,
        "sus2" => Sus2,
        "sus4" | "sus" => Sus4,
        "maj7" | "M7" | "Δ7" | "Δ" => Major7,
        "m7" | "min7" | "-7" => Minor7,
        "7" | "dom7" => Dominant7,
        other => return Err(format!("{symbol:?}: unknown chord quality {other:?}")),
    };
    Ok(Some((root, quality)))
}

/// A chord progression over bars: each bar's changes, ticks relative to the bar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progression {
    pub bars: Vec<Vec<Chord>>,
}

/// Most chord slots one bar may hold: one per 16th.
const MAX_SLOTS_PER_BAR: usize = 16;
/// Slot counts a bar is written with, fewest first (each puts its slots on the 16th grid).
const SLOT_COUNTS: [usize; 8] = [1, 2, 3, 4, 6, 8, 12, 16];

/// Grid tick of slot `i` of `n` in a bar: spread evenly, on the nearest 16th (so on beats for 1, 2
/// and 4 slots), where the sampler can place a position.
fn slot_tick(i: usize, n: usize) -> u32 {
    let sixteenths = (i as f64 * 16.0 / n as f64).round() as u32;
    sixteenths * TICKS_PER_BAR / 16
}

/// A hold: the chord before goes on.
fn is_hold(symbol: &str) -> bool {
    matches!(symbol, "." | "/" | "%" | "-")
}

impl Progression {
    /// `Am F C G` (one chord a bar) or `| Am | F | C G |` (bars between bar lines; a bar's chords
    /// spread evenly over it). In a bar, `.` (or `/`) holds the chord before for one slot, so
    /// `| C . . G |` changes on beat 4; `%` (or an empty bar) holds the chord for the whole bar. An
    /// empty text is no progression.
    pub fn parse(text: &str) -> Result<Progression, String> {
        let text = text.trim();
        let bar_texts: Vec<&str> = if text.contains('|') {
            let inner = text.strip_prefix('|').unwrap_or(text);
            let inner = inner.strip_suffix('|').unwrap_or(inner);
            inner.split('|').map(str::trim).collect()
        } else {
            text.split_whitespace().collect()
        };
        let mut bars = Vec::new();
        for (b, bar_text) in bar_texts.iter().enumerate() {
            let symbols: Vec<&str> = bar_text.split_whitespace().collect();
            if symbols.len() > MAX_SLOTS_PER_BAR {
                return Err(format!("bar {}: {} chords, at most {MAX_SLOTS_PER_BAR} a bar", b + 1, symbols.len()));
            }
            let mut changes: Vec<Chord> = Vec::new();
            for (i, symbol) in symbols.iter().enumerate() {
                if !is_hold(symbol) {
                    let chord = parse_chord_symbol(symbol)?;
                    changes.push(Chord { start_tick: slot_tick(i, symbols.len()), chord });
                }
            }
            bars.push(changes);
        }
        if bars.len() > 64 {
            return Err(format!("{} bars: a progression holds at most 64", bars.len()));
        }
        if !bars.is_empty() && bars.iter().all(Vec::is_empty) {
            return Err("no chord in the progression".into());
        }
        Ok(Progression { bars })
    }

    pub fn is_empty(&self) -> bool {
        self.bars.is_empty()
    }

    /// The text that parses back to this progression: `| Am | F | C G |`, `| C . . G |`, `| % |`.
    pub fn text(&self) -> String {
        if self.bars.is_empty() {
            return String::new();
        }
        let bars: Vec<String> = self.bars.iter().map(|bar| bar_text(bar)).collect();
        format!("| {} |", bars.join(" | "))
    }

    /// The changes of the progression's bar that phrase bar `index` plays (it repeats).
    pub fn bar(&self, index: i64) -> &[Chord] {
        if self.bars.is_empty() {
            return &[];
        }
        &self.bars[index.rem_euclid(self.bars.len() as i64) as usize]
    }

    /// The chord sounding at the end of bar `index`.
    pub fn chord_at_end_of(&self, index: i64) -> ChordValue {
        (0..self.bars.len() as i64).find_map(|back| self.bar(index - back).last().map(|c| c.chord)).flatten()
    }
}

/// One bar of a progression as text: the fewest slots that put every change where it is.
fn bar_text(changes: &[Chord]) -> String {
    if changes.is_empty() {
        return "%".into();
    }
    let fits = |n: usize| changes.iter().all(|c| (0..n).any(|i| slot_tick(i, n) == c.start_tick));
    let n = SLOT_COUNTS.into_iter().find(|&n| fits(n)).unwrap_or(MAX_SLOTS_PER_BAR);
    (0..n)
        .map(|i| match changes.iter().find(|c| c.start_tick == slot_tick(i, n)) {
            Some(c) => chord_symbol(c.chord),
            None => ".".into(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chords forced on one bar from `from_tick` on (what came before was heard under other chords
/// and stays). `changes` is sorted; the first is at `from_tick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarHarmony {
    pub from_tick: u32,
    pub changes: Vec<Chord>,
    /// The scale (12-bit pitch-class mask) the lead keeps to between the beats: the key of what is
    /// played, or Key Lock's; None for any pitch.
    pub scale: Option<u16>,
}

impl BarHarmony {
    /// The forced chord at `tick`, or None before `from_tick` (the model's own harmony there).
    pub fn chord_at(&self, tick: u32) -> Option<ChordValue> {
        self.changes.iter().rev().find(|c| c.start_tick <= tick).map(|c| c.chord)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChordQuality::*;

    #[test]
    fn chords_are_recognized_with_their_bass_and_unclear_input_is_none() {
        let f_minor = Some((5, Minor));
        assert_eq!(recognize(&[53, 56, 60], None), f_minor);
        assert_eq!(recognize(&[60, 65, 68], None), f_minor, "first inversion still F minor");
        assert_eq!(recognize(&[49, 53, 56], None), Some((1, Major)), "Db");
        assert_eq!(recognize(&[43, 47, 50, 53], None), Some((7, Dominant7)));
        assert_eq!(recognize(&[48, 52, 55, 62], None), Some((0, Major)), "C add9 is C");
        assert_eq!(recognize(&[60], None), None, "one note is not a chord");
        assert_eq!(recognize(&[], None), None);
        assert_eq!(recognize(&(40..60).collect::<Vec<u8>>(), None), None, "20 notes are a cluster");
        // A power chord takes its third from the key.
        assert_eq!(recognize(&[48, 55], Some(Key { tonic: 0, minor: true })), Some((0, Minor)));
        assert_eq!(recognize(&[48, 55], Some(Key { tonic: 0, minor: false })), Some((0, Major)));
    }

    #[test]
    fn the_key_of_a_progression_and_triads_on_bass_notes() {
        let mut weights = [0f32; 12];
        // Fm Db Ab Eb: F Ab C / Db F Ab / Ab C Eb / Eb G Bb, the roots a little longer.
        for (root, third, fifth) in [(5, 8, 0), (1, 5, 8), (8, 0, 3), (3, 7, 10)] {
            weights[root] += 2.0;
            weights[third] += 1.0;
            weights[fifth] += 1.0;
        }
        let key = estimate_key(&weights).expect("a key");
        assert!(key == Key { tonic: 5, minor: true } || key == Key { tonic: 8, minor: false }, "{key:?}");
        assert_eq!(estimate_key(&[0.0; 12]), None);
        let a_minor = Some(Key { tonic: 9, minor: true });
        assert_eq!(triad_on(9, a_minor), (9, Minor));
        assert_eq!(triad_on(5, a_minor), (5, Major));
        assert_eq!(triad_on(11, a_minor), (11, Diminished));
        assert_eq!(triad_on(2, None), (2, Major));
    }

    #[test]
    fn progressions_parse_and_print_back() {
        let p = Progression::parse("Am F C G").unwrap();
        assert_eq!(p.bars.len(), 4);
        assert_eq!(p.bars[1], vec![Chord { start_tick: 0, chord: Some((5, Major)) }]);
        let q = Progression::parse("| Fm | Db | Ab Eb/G |").unwrap();
        assert_eq!(q.bars[2][1], Chord { start_tick: 24, chord: Some((3, Major)) });
        assert_eq!(q.text(), "| Fm | C# | G# D# |");
        assert_eq!(Progression::parse(&q.text()).unwrap(), q);
        // Holds: a change on beat 4, a bar that holds the chord before, three chords on 16ths.
        let r = Progression::parse("| C . . G | % | Am F G |").unwrap();
        assert_eq!(r.bars[0][1].start_tick, 36);
        assert!(r.bars[1].is_empty());
        assert_eq!(r.bars[2].iter().map(|c| c.start_tick).collect::<Vec<_>>(), vec![0, 15, 33]);
        assert_eq!(r.text(), "| C . . G | % | Am F G |");
        assert_eq!(Progression::parse(&r.text()).unwrap(), r);
        assert_eq!(r.chord_at_end_of(1), Some((7, Major)), "the held bar ends on G");
        assert!(Progression::parse("| . | % |").is_err(), "no chord at all");
        assert!(Progression::parse(&format!("| {} |", vec!["C"; 17].join(" "))).is_err(), "17 chords in a bar");
        for symbol in ["C", "C#m", "Ebmaj7", "Bdim", "Gsus4", "F#m7", "A7", "Dsus2", "Caug", "N"] {
            let chord = parse_chord_symbol(symbol).unwrap();
            assert_eq!(parse_chord_symbol(&chord_symbol(chord)).unwrap(), chord, "{symbol}");
        }
        assert!(Progression::parse("Am H7").unwrap_err().contains("H7"));
        assert!(Progression::parse("Cx").is_err());
        assert!(Progression::parse("").unwrap().is_empty());
        assert_eq!(q.bar(4), q.bars[1].as_slice(), "the progression repeats");
        assert_eq!(q.chord_at_end_of(0), Some((5, Minor)));
    }
}

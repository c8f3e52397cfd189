//! Annotations: the key of `key_audio.txt` and the chords of `chord_midi.txt`, read onto the vocabulary.

use neural_trio::music::vocab::Key;
use neural_trio::music::ChordQuality;

/// Pitch class of a note name: a letter A–G followed by any number of `#` or `b`.
fn parse_pitch_class(name: &str) -> Result<u8, String> {
    let mut chars = name.chars();
    let base: i32 = match chars.next() {
        Some('C') => 0,
        Some('D') => 2,
        Some('E') => 4,
        Some('F') => 5,
        Some('G') => 7,
        Some('A') => 9,
        Some('B') => 11,
        _ => return Err(format!("bad note name '{name}'")),
    };
    let mut pc = base;
    for c in chars {
        match c {
            '#' => pc += 1,
            'b' => pc -= 1,
            _ => return Err(format!("bad note name '{name}'")),
        }
    }
    Ok(pc.rem_euclid(12) as u8)
}

/// A key label like `Gb:maj` or `C#:min`.
fn parse_key(label: &str) -> Result<Key, String> {
    let (tonic, mode) = label.split_once(':').ok_or_else(|| format!("bad key '{label}'"))?;
    let minor = match mode {
        "maj" | "major" => false,
        "min" | "minor" => true,
        _ => return Err(format!("unknown key mode in '{label}'")),
    };
    Ok(Key { tonic: parse_pitch_class(tonic)?, minor })
}

/// The key of `key_audio.txt` (start, end, key per line) that covers the most time; ties go to
/// the earlier one.
pub(super) fn majority_key(text: &str) -> Result<Key, String> {
    let mut totals: Vec<(Key, f64)> = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        if cols.len() < 3 {
            return Err(format!("key_audio.txt: cannot read '{}'", line.trim()));
        }
        let start: f64 = cols[0].parse().map_err(|_| format!("key_audio.txt: bad time in '{line}'"))?;
        let end: f64 = cols[1].parse().map_err(|_| format!("key_audio.txt: bad time in '{line}'"))?;
        let key = parse_key(cols[2]).map_err(|e| format!("key_audio.txt: {e}"))?;
        let length = (end - start).max(0.0);
        match totals.iter_mut().find(|(k, _)| *k == key) {
            Some((_, total)) => *total += length,
            None => totals.push((key, length)),
        }
    }
    let mut best: Option<(Key, f64)> = None;
    for &(key, total) in &totals {
        if best.is_none_or(|(_, b)| total > b) {
            best = Some((key, total));
        }
    }
    best.map(|(k, _)| k).ok_or_else(|| "key_audio.txt has no key".into())
}

/// A chord label read onto the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ParsedChord {
    /// (root pitch class, quality), or None for "no chord".
    pub(super) chord: Option<(u8, ChordQuality)>,
    /// False when the quality was not in the table and was folded by its third (or to no chord).
    pub(super) known: bool,
}

/// Folds a Harte-style label (`B:maj`, `E:min7`, `Db:maj/3`, `C:sus4(b7)`, `N`) onto the vocabulary.
/// Inversions (`/3`, `/5`, ...) drop the bass. 6ths fold to their triad, 9ths to their 7th,
/// `hdim7`/`dim7` to dim, `minmaj7` to min, `sus4(b7)` to sus4. An unknown quality folds to the triad
/// its third implies (`min…` minor, `maj…` or a bare number major-ish, a `(3)`/`(b3)` extension),
/// or to "no chord" when it has no third; it is then flagged `known: false`.
pub(super) fn parse_chord_label(label: &str) -> Result<ParsedChord, String> {
    use ChordQuality::*;
    if label == "N" || label == "X" {
        return Ok(ParsedChord { chord: None, known: true });
    }
    let (root, rest) = match label.split_once(':') {
        Some((root, rest)) => (root, rest),
        None => (label, "maj"),
    };
    let root = parse_pitch_class(root).map_err(|e| format!("chord '{label}': {e}"))?;
    let quality = rest.split('/').next().unwrap_or_default();
    let known = match quality {
        "" | "maj" | "maj6" | "6" => Some(Major),
        "min" | "min6" | "minmaj7" => Some(Minor),
        "dim" | "dim7" | "hdim7" => Some(Diminished),
        "aug" => Some(Augmented),
        "sus2" => Some(Sus2),
        "sus4" | "sus4(b7)" | "7sus4" => Some(Sus4),
        "maj7" | "maj9" => Some(Major7),
        "min7" | "min9" | "min11" => Some(Minor7),
        "7" | "9" | "11" | "13" => Some(Dominant7),
        _ => None,
    };
    if let Some(q) = known {
        return Ok(ParsedChord { chord: Some((root, q)), known: true });
    }
    let (shorthand, extensions) = match quality.split_once('(') {
        Some((s, e)) => (s, e.trim_end_matches(')')),
        None => (quality, ""),
    };
    let ext: Vec<&str> = extensions.split(',').map(str::trim).collect();
    let folded = if shorthand.starts_with("hdim") || shorthand.starts_with("dim") {
        Some(Diminished)
    } else if shorthand.starts_with("min") || ext.contains(&"b3") {
        Some(Minor)
    } else if shorthand.starts_with("aug") {
        Some(Augmented)
    } else if shorthand.starts_with("maj") || ext.contains(&"3") {
        Some(Major)
    } else if shorthand.starts_with("sus4") {
        Some(Sus4)
    } else if shorthand.starts_with("sus2") {
        Some(Sus2)
    } else if shorthand.chars().next().is_some_and(|c| c.is_ascii_digit()) && shorthand != "5" && shorthand != "1" {
        Some(Dominant7)
    } else {
        None
    };
    Ok(ParsedChord { chord: folded.map(|q| (root, q)), known: false })
}

/// `chord_midi.txt`: (start seconds, label) per segment, in file order.
pub(super) fn parse_chord_file(text: &str) -> Result<Vec<(f64, String)>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        if cols.len() < 3 {
            return Err(format!("chord_midi.txt: cannot read '{}'", line.trim()));
        }
        let start: f64 = cols[0].parse().map_err(|_| format!("chord_midi.txt: bad time in '{line}'"))?;
        out.push((start, cols[2].to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChordQuality::*;

    fn chord(label: &str) -> Option<(u8, ChordQuality)> {
        parse_chord_label(label).unwrap().chord
    }

    #[test]
    fn chord_labels_fold_onto_the_vocabulary() {
        assert_eq!(chord("B:maj"), Some((11, Major)));
        assert_eq!(chord("E:min7"), Some((4, Minor7)));
        assert_eq!(chord("Db:maj/3"), Some((1, Major)));
        assert_eq!(chord("C#:min/b3"), Some((1, Minor)));
        assert_eq!(chord("F#:maj7/7"), Some((6, Major7)));
        assert_eq!(chord("Ab:7/b7"), Some((8, Dominant7)));
        assert_eq!(chord("G:9"), Some((7, Dominant7)));
        assert_eq!(chord("A:min9"), Some((9, Minor7)));
        assert_eq!(chord("Bb:maj9"), Some((10, Major7)));
        assert_eq!(chord("Bb:maj6"), Some((10, Major)));
        assert_eq!(chord("E:min6"), Some((4, Minor)));
        assert_eq!(chord("B:hdim7"), Some((11, Diminished)));
        assert_eq!(chord("B:dim7"), Some((11, Diminished)));
        assert_eq!(chord("C:aug"), Some((0, Augmented)));
        assert_eq!(chord("D:sus2"), Some((2, Sus2)));
        assert_eq!(chord("D:sus4(b7)"), Some((2, Sus4)));
        assert_eq!(chord("A:minmaj7"), Some((9, Minor)));
        assert_eq!(chord("N"), None);
        assert!(parse_chord_label("N").unwrap().known);
        assert!(parse_chord_label("C:maj/5").unwrap().known);
        // Unknown qualities fold by their third and are flagged.
        let odd = parse_chord_label("C:min11(b13)").unwrap();
        assert_eq!((odd.chord, odd.known), (Some((0, Minor)), false));
        let odd = parse_chord_label("F:(1,3,5)").unwrap();
        assert_eq!((odd.chord, odd.known), (Some((5, Major)), false));
        let power = parse_chord_label("G:5").unwrap();
        assert_eq!((power.chord, power.known), (None, false));
        assert!(parse_chord_label("H:maj").is_err());
    }

    #[test]
    fn keys_parse_and_the_longest_wins() {
        assert_eq!(parse_key("Gb:maj").unwrap(), Key { tonic: 6, minor: false });
        assert_eq!(parse_key("C#:min").unwrap(), Key { tonic: 1, minor: true });
        assert_eq!(parse_key("B#:maj").unwrap(), Key { tonic: 0, minor: false });
        assert_eq!(parse_key("Cb:min").unwrap(), Key { tonic: 11, minor: true });
        assert!(parse_key("C:dorian").is_err());
        let text = "0.0\t10.0\tA:min\n10.0\t45.0\tC:maj\n45.0\t60.0\tA:min\n70.0\t85.0\tE:maj\n";
        assert_eq!(majority_key(text).unwrap(), Key { tonic: 0, minor: false });
        assert!(majority_key("").is_err());
    }
}

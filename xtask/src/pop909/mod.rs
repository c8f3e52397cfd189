//! One POP909 song → one [`Phrase`] on the 12-ticks-per-beat grid, with its conditioning [`Header`].
//!
//! [`load_song`] is what `cargo xtask dataset` runs for every song folder, and what `cargo xtask eval`
//! reuses for the held-out songs. Every rule that turns the recording into grid events lives here:
//!
//! - **Time.** `NNN.mid` is read with midly; ticks become seconds through the whole tempo map (every
//!   tempo event of every track, PPQ from the header). MIDI key and time signatures are ignored (they
//!   are unreliable in POP909). The sustain pedal is ignored: durations are key-down lengths.
//! - **Beats.** `beat_midi.txt` (seconds, beat flag, downbeat flag) is the beat grid: a time maps to
//!   an annotated beat position by piecewise-linear interpolation between annotated beats, and by the
//!   nearest interval beyond the first and last beat.
//! - **Meter.** Bars come from the downbeat flags. Only 4/4 is modelled: a song whose most common bar
//!   (downbeat to downbeat) is not 4 beats, or whose beats lie less than [`MIN_FOUR_BEAT_SHARE`] in
//!   4-beat bars, is skipped with a reason. Inside a 4/4 song an irregular bar of `n` annotated beats
//!   (`n × f` grid beats, `f` below) keeps its first whole 4-beat grid bars and the left-over beats
//!   are cut out of the grid: onsets there are dropped (counted), and the grid stands still across
//!   them, so a note sounding over a cut simply ends at it. Beats before the first downbeat become
//!   pickup bars, padded at their start.
//! - **Half-time rule.** The annotated tempo is `60 / median inter-beat interval`. Below
//!   [`HALF_TIME_BELOW_BPM`] (90 BPM) the song is read as half-time: every annotated beat becomes two
//!   grid beats (`f = 2`; 16ths become 8ths), so an annotated 4-beat bar becomes two 4/4 bars and the
//!   effective tempo doubles. At or above 90 BPM, `f = 1`. The effective tempo picks the tempo bin.
//! - **Quantization** ([`quantize_tick`]). A position in grid ticks (12 per beat) snaps either to the
//!   16th grid (multiples of 3) or to the 16th-triplet grid (multiples of 2): the triplet position is
//!   taken only when its error is less than half the 16th error, so straight material stays
//!   straight. Note ends are quantized the same way; the length (at least 2 ticks) then goes to the
//!   nearest vocabulary duration, and the Note stores that vocabulary duration and its velocity-bin
//!   velocity, so the phrase survives a token round trip exactly.
//! - **Roles.** lead = `MELODY`. From `PIANO`, grouped by quantized onset tick: the lowest note of a
//!   group is **bass** if it is below G3 (55), shortened so it ends no later than the next bass onset;
//!   every other PIANO note is **arp**. `BRIDGE` (a counter-melody) is dropped. Exact duplicates
//!   (same part, tick and pitch) are dropped, keeping the longest.
//! - **Key** from `key_audio.txt`: the key that covers the most time. **Mood** (BrainMusic rule):
//!   fast = annotated tempo (before the half-time rule) ≥ 90 BPM, i.e. not half-time; then
//!   [`Mood::from_mode_and_tempo`].
//! - **Chords** from `chord_midi.txt`, folded onto [`ChordQuality`](neural_trio::music::ChordQuality)
//!   by [`parse_chord_label`]; starts are quantized like onsets, and a chord is emitted only when it
//!   changes.
//! - **Trim.** Leading and trailing bars with no note onset are cut; the chord sounding at the new
//!   first bar is restated at its tick 0.
//! - **Versions** ([`load_versions`]). `versions/NNN-vK.mid` are other arrangers' versions of the
//!   song. Their tracks are found by name (trimmed, case-insensitive): melody = a name starting with
//!   `MEL` (`MELODY`, `Melody`, typos `MELDOY`, `MELOPY`); piano = a name containing `PIAN` (`PIANO`,
//!   `Pianio`, `PIANO4`, `Steinway Grand Piano`) or `GRANDEUR`, or the name `DEM` (Vietnamese
//!   *đệm*, accompaniment); every other track (the bridge `CAU`/`Cau`/`CAU CHEN`/`BRIDGE`, unnamed
//!   or generic names) is dropped like `BRIDGE`. With several melody tracks the one matching the
//!   main melody best is taken; with several piano tracks the one with the most notes (the others
//!   are a counter-melody under a piano name, e.g. `Grandeur 1` beside `Grandeur 2`). A version
//!   without both is skipped. The song's annotation files fit a version only if it is aligned with
//!   the main file: its melody must have within ±[`MAX_VERSION_NOTE_COUNT_DIFF`] (20 %) of the main
//!   `MELODY`'s note count, and at least [`MIN_VERSION_MELODY_MATCH`] (80 %) of the main melody
//!   notes must have a version melody note of the same pitch starting within
//!   [`VERSION_ONSET_TOLERANCE_S`] (50 ms); otherwise it is skipped with the reason. A version
//!   whose piano matches, by the same test, at least [`MAX_VERSION_PIANO_MATCH`] (90 %) of the
//!   main `PIANO`'s notes or of an earlier used version's piano is a copy of that arrangement
//!   (most versions are the main file again) and is skipped. A used version is read by every rule
//!   above, with the song's annotations, into a `Song` with the song's number.
//!
//! Each concern has its module: [`beats`] (beat file, meter, grid, quantization), [`labels`] (key and
//! chord files), [`midi`] (the MIDI file in seconds) and [`arrange`] (roles, trimming, transposition).

mod arrange;
mod beats;
mod dance;
mod labels;
mod midi;

pub use arrange::transpose;
pub use beats::MIN_FOUR_BEAT_SHARE;
pub use dance::{dance_phrase, rule_descriptions, DanceRules};

use anyhow::Context;
/// What `cargo xtask finetune` reuses to read a user's files the way POP909 is read.
pub(crate) use arrange::{assemble_phrase, dedup_notes, split_piano, to_note, trim_bass, BASS_BELOW_PITCH};
use beats::{parse_beats, BeatGrid, QuantStats};
pub(crate) use beats::{quantize_tick, GridNote};
use labels::{majority_key, parse_chord_file, parse_chord_label};
use midi::read_midi_tracks;
use neural_trio::music::controls::Style;
use neural_trio::music::tokens::Header;
use neural_trio::music::vocab::{tempo_bin, Key, Mood};
use neural_trio::music::{Note, Part, Phrase};
use std::path::{Path, PathBuf};

/// Annotated tempos below this are read as half-time.
pub const HALF_TIME_BELOW_BPM: f64 = 90.0;

/// A song ready for the model: its conditioning header, its whole phrase, and how it was read.
#[derive(Debug, Clone)]
pub struct Song {
    /// The folder number, 1..=909.
    pub id: u32,
    pub header: Header,
    pub phrase: Phrase,
    pub meta: SongMeta,
}

/// How a song was read; for the manifest, and for eval's reports.
#[derive(Debug, Clone)]
pub struct SongMeta {
    /// 60 / median inter-beat interval of `beat_midi.txt`.
    pub annotated_bpm: f64,
    /// The half-time rule applied (annotated tempo below 90 BPM).
    pub half_time: bool,
    /// Tempo on the grid: annotated tempo, doubled for half-time.
    pub effective_bpm: f64,
    pub key: Key,
    pub mood: Mood,
    /// Empty bars cut from the start.
    pub leading_bars_trimmed: u32,
    /// Annotated beats cut out of irregular (non-4-beat) bars.
    pub beats_cut: u32,
    /// Note onsets that fell into cut-out beats (or before the grid) and were dropped.
    pub notes_dropped: u32,
    /// Onsets (all parts) placed on the 16th-triplet grid only (tick not a multiple of 3).
    pub triplet_onsets: u32,
    /// Mean absolute onset quantization error, in grid ticks.
    pub mean_onset_error_ticks: f64,
    /// Chord labels this parser did not know; folded by their third (or to "no chord").
    pub unknown_chord_labels: Vec<String>,
}

/// Loads song folder `dir` (`.../POP909/NNN`) into a phrase. Any problem is an `Err` with the reason.
pub fn load_song(dir: &Path) -> Result<Song, String> {
    let annotations = read_annotations(dir)?;
    let (melody, piano) = main_melody_and_piano(dir)?;
    song_from_tracks(&annotations, &melody, &piano)
}

/// A song folder's number and annotation files, which fit the main file and its aligned versions.
struct Annotations {
    id: u32,
    beats: beats::Beats,
    key: Key,
    chord_segments: Vec<(f64, String)>,
}

/// The folder number and the beat, key and chord files of song folder `dir`.
fn read_annotations(dir: &Path) -> Result<Annotations, String> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let id: u32 = name.parse().map_err(|_| format!("folder name '{name}' is not a song number"))?;
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).map_err(|e| format!("cannot read {file}: {e}"));

    let beats = parse_beats(&read("beat_midi.txt")?)?;
    let key = majority_key(&read("key_audio.txt")?)?;
    let chord_segments = parse_chord_file(&read("chord_midi.txt")?)?;
    Ok(Annotations { id, beats, key, chord_segments })
}

/// The `MELODY` and `PIANO` notes of the main file `NNN.mid` of song folder `dir`.
fn main_melody_and_piano(dir: &Path) -> Result<(Vec<midi::RawNote>, Vec<midi::RawNote>), String> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let midi_name = format!("{name}.mid");
    let bytes = std::fs::read(dir.join(&midi_name)).map_err(|e| format!("cannot read {midi_name}: {e}"))?;
    let mut tracks = read_midi_tracks(&bytes).map_err(|e| format!("{midi_name}: {e}"))?;
    let melody = tracks.remove("MELODY").ok_or("no MELODY track")?;
    let piano = tracks.remove("PIANO").ok_or("no PIANO track")?;
    Ok((melody, piano))
}

/// The song from one file's melody and piano notes, read against the song's annotations by the rules
/// of the module doc.
fn song_from_tracks(
    annotations: &Annotations,
    melody: &[midi::RawNote],
    piano: &[midi::RawNote],
) -> Result<Song, String> {
    let Annotations { id, ref beats, key, ref chord_segments } = *annotations;
    if melody.is_empty() {
        return Err("empty melody".into());
    }

    let annotated_bpm = beats.annotated_bpm();
    let half_time = annotated_bpm < HALF_TIME_BELOW_BPM;
    let factor = if half_time { 2.0 } else { 1.0 };
    let effective_bpm = annotated_bpm * factor;
    beats.check_four_four()?;

    let earliest = melody.iter().chain(piano.iter()).map(|n| n.start_s).fold(f64::INFINITY, f64::min);
    let grid = BeatGrid::new(beats, factor, beats.beat_at(earliest))?;

    let mut stats = QuantStats::default();
    let lead = grid.quantize_notes(beats, melody, &mut stats);
    let piano = grid.quantize_notes(beats, piano, &mut stats);
    if lead.is_empty() {
        return Err("empty melody after quantization".into());
    }
    let (bass, arp) = split_piano(&piano);

    let mut notes: Vec<Note> = Vec::with_capacity(lead.len() + piano.len());
    notes.extend(lead.iter().map(|n| to_note(n, Part::Lead, n.length)));
    notes.extend(arp.iter().map(|n| to_note(n, Part::Arp, n.length)));
    notes.extend(trim_bass(&bass).into_iter().map(|(n, len)| to_note(&n, Part::Bass, len)));
    dedup_notes(&mut notes);

    let mut unknown_chord_labels = Vec::new();
    let mut chord_events = Vec::with_capacity(chord_segments.len());
    for (start_s, label) in chord_segments {
        let parsed = parse_chord_label(label)?;
        if !parsed.known && !unknown_chord_labels.contains(label) {
            unknown_chord_labels.push(label.clone());
        }
        let tick = quantize_tick(grid.grid_ticks_clamped(beats.beat_at(*start_s)));
        chord_events.push((tick, parsed.chord));
    }

    let (phrase, leading_bars_trimmed) = assemble_phrase(notes, &chord_events);
    let mood = Mood::from_mode_and_tempo(key.minor, !half_time);
    let header = Header { tempo_bin: tempo_bin(effective_bpm as f32), key, mood, style: Style::Pop };
    let onsets = (lead.len() + piano.len()).max(1) as f64;
    Ok(Song {
        id,
        header,
        phrase,
        meta: SongMeta {
            annotated_bpm,
            half_time,
            effective_bpm,
            key,
            mood,
            leading_bars_trimmed,
            beats_cut: grid.beats_cut,
            notes_dropped: stats.dropped,
            triplet_onsets: stats.triplet,
            mean_onset_error_ticks: stats.error_sum / onsets,
            unknown_chord_labels,
        },
    })
}

/// A version's melody must match at least this share of the main melody's notes (**Versions**).
pub const MIN_VERSION_MELODY_MATCH: f64 = 0.8;
/// A main melody note is matched by a version melody note of its pitch starting within this many
/// seconds of it.
pub const VERSION_ONSET_TOLERANCE_S: f64 = 0.05;
/// A version's melody note count must lie within this share of the main melody's.
pub const MAX_VERSION_NOTE_COUNT_DIFF: f64 = 0.2;
/// A version whose piano matches this share of the main file's (or an earlier version's) piano
/// notes, by the melody test, is a copy of that arrangement.
pub const MAX_VERSION_PIANO_MATCH: f64 = 0.9;

/// The other arrangements of song folder `dir` (`versions/*.mid`, in file-name order), each as (file
/// name, the song read from it, or the reason it was skipped), by the **Versions** rule of the module
/// doc. Empty when the folder has no `versions`.
pub fn load_versions(dir: &Path) -> Vec<(String, Result<Song, String>)> {
    let Ok(entries) = std::fs::read_dir(dir.join("versions")) else { return Vec::new() };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, path)| name.to_ascii_lowercase().ends_with(".mid") && path.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Vec::new();
    }
    let song = read_annotations(dir).and_then(|a| Ok((a, main_melody_and_piano(dir)?)));
    // The piano parts read so far, the main file's first: a version repeating one is skipped.
    let mut pianos: Vec<(String, Vec<midi::RawNote>)> = Vec::new();
    if let Ok((_, (_, main_piano))) = &song {
        pianos.push(("the main file".into(), main_piano.clone()));
    }
    files
        .into_iter()
        .map(|(name, path)| {
            let result = match &song {
                Err(e) => Err(format!("song not readable: {e}")),
                Ok((annotations, (main_melody, _))) => {
                    load_version(&path, annotations, main_melody, &pianos).map(|(song, piano)| {
                        pianos.push((name.clone(), piano));
                        song
                    })
                }
            };
            (name, result)
        })
        .collect()
}

/// What a version's track is, by its (upper-cased, trimmed) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionRole {
    Melody,
    Piano,
    Other,
}

/// The **Versions** name rule: melody = name starts with `MEL`; piano = name contains `PIAN`
/// or `GRANDEUR`, or is `DEM`; anything else (the bridge `CAU`/`BRIDGE`, unnamed tracks, …) is other.
fn version_role(name: &str) -> VersionRole {
    if name.starts_with("MEL") {
        VersionRole::Melody
    } else if name.contains("PIAN") || name.contains("GRANDEUR") || name == "DEM" {
        VersionRole::Piano
    } else {
        VersionRole::Other
    }
}

/// Share of `main` notes that have a `version` note of the same pitch starting within
/// [`VERSION_ONSET_TOLERANCE_S`]. Both in onset order.
fn onset_match(main: &[midi::RawNote], version: &[midi::RawNote]) -> f64 {
    let matched = main
        .iter()
        .filter(|m| {
            let from = version.partition_point(|v| v.start_s < m.start_s - VERSION_ONSET_TOLERANCE_S);
            version[from..]
                .iter()
                .take_while(|v| v.start_s <= m.start_s + VERSION_ONSET_TOLERANCE_S)
                .any(|v| v.pitch == m.pitch)
        })
        .count();
    matched as f64 / main.len().max(1) as f64
}

/// One version file read against the song's annotations, if its melody is aligned with `main_melody`
/// and its piano repeats none of `pianos` (name, notes); with its piano notes.
fn load_version(
    path: &Path,
    annotations: &Annotations,
    main_melody: &[midi::RawNote],
    pianos: &[(String, Vec<midi::RawNote>)],
) -> Result<(Song, Vec<midi::RawNote>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let tracks = midi::read_midi_track_list(&bytes)?;
    let names = || tracks.iter().map(|(name, _)| format!("'{name}'")).collect::<Vec<_>>().join(", ");
    let of_role = |role| tracks.iter().filter(move |(name, _)| version_role(name) == role).map(|(_, notes)| notes);
    let Some((share, melody)) = of_role(VersionRole::Melody)
        .map(|notes| (onset_match(main_melody, notes), notes))
        .max_by(|a, b| a.0.total_cmp(&b.0))
    else {
        return Err(format!("no melody track (tracks {})", names()));
    };
    let Some(piano) = of_role(VersionRole::Piano).max_by_key(|notes| notes.len()) else {
        return Err(format!("no piano track (tracks {})", names()));
    };
    let (count, main_count) = (melody.len(), main_melody.len());
    if (count as f64 - main_count as f64).abs() > MAX_VERSION_NOTE_COUNT_DIFF * main_count as f64 {
        return Err(format!("melody note count off: {count} notes, {main_count} in the main file"));
    }
    if share < MIN_VERSION_MELODY_MATCH {
        return Err(format!("melody not aligned: {:.0} % of main onsets matched", share * 100.0));
    }
    for (name, earlier) in pianos {
        let share = onset_match(earlier, piano);
        if share >= MAX_VERSION_PIANO_MATCH {
            return Err(format!("same piano as {name}: {:.0} % of its onsets matched", share * 100.0));
        }
    }
    Ok((song_from_tracks(annotations, melody, piano)?, piano.clone()))
}

/// The song folders under `source` (names all digits, a song number), with their numbers, in
/// number order.
pub fn song_dirs(source: &Path) -> anyhow::Result<Vec<(u32, PathBuf)>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(source).with_context(|| format!("cannot list {}", source.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Ok(id) = name.parse::<u32>() {
            if name.chars().all(|c| c.is_ascii_digit()) && entry.path().is_dir() {
                dirs.push((id, entry.path()));
            }
        }
    }
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::beats::MIN_DURATION_TICKS;
    use super::BASS_BELOW_PITCH;
    use super::*;
    use neural_trio::music::tokens::{decode_phrase, encode_phrase};
    use neural_trio::music::vocab::DURATIONS_TICKS;
    use neural_trio::music::TICKS_PER_BAR;

    #[test]
    fn song_folders_are_listed_in_number_order() {
        let root = std::env::temp_dir().join(format!("xtask-song-dirs-{}", std::process::id()));
        for dir in ["010", "002", "abc", "+3", "99999999999"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("004"), "a file, not a song").unwrap();
        let listed = song_dirs(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(listed, [(2, root.join("002")), (10, root.join("010"))]);
        assert!(song_dirs(&root).is_err());
    }

    /// The POP909 folder, when this workspace has it.
    fn pop909_dir() -> Option<std::path::PathBuf> {
        let dir = crate::dataset::default_source();
        dir.join("001").is_dir().then_some(dir)
    }

    #[test]
    fn a_real_song_round_trips_and_stays_in_its_bars() {
        let Some(root) = pop909_dir() else {
            eprintln!("POP909 not found; skipping");
            return;
        };
        for id in ["001", "010", "386", "850"] {
            let song = load_song(&root.join(id)).unwrap();
            let phrase = &song.phrase;
            assert!(phrase.bars > 16, "song {id}: {} bars", phrase.bars);
            assert!(phrase.notes_of(Part::Lead).count() > 50);
            assert!(phrase.notes_of(Part::Bass).all(|n| n.pitch < BASS_BELOW_PITCH));
            for n in &phrase.notes {
                assert!(n.start_tick < phrase.bars * TICKS_PER_BAR, "song {id}: note past the last bar");
                assert!(DURATIONS_TICKS.contains(&n.duration_ticks));
                assert!(n.start_tick % 2 == 0 || n.start_tick % 3 == 0);
            }
            assert!(phrase.notes.iter().any(|n| n.start_tick < TICKS_PER_BAR), "song {id}: leading empty bar");
            assert!(phrase.chords.iter().all(|c| c.start_tick < phrase.bars * TICKS_PER_BAR));
            // Bass notes end by the next bass onset (or are the shortest length).
            let bass: Vec<&Note> = phrase.notes_of(Part::Bass).collect();
            for w in bass.windows(2) {
                let gap = w[1].start_tick - w[0].start_tick;
                assert!(w[0].end_tick() <= w[1].start_tick || w[0].duration_ticks == MIN_DURATION_TICKS.max(gap));
            }
            let tokens = encode_phrase(&song.header, phrase, true);
            let (header, decoded) = decode_phrase(&tokens).unwrap();
            assert_eq!(header, song.header);
            assert_eq!(&decoded, phrase, "song {id}: round trip");
            let (th, tp) = transpose(&song.header, phrase, -6);
            assert_eq!(decode_phrase(&encode_phrase(&th, &tp, true)).unwrap(), (th, tp));
        }
        // Song 001: 90 BPM annotated (just fast), Gb major → happy, not half-time.
        let song = load_song(&root.join("001")).unwrap();
        assert!(!song.meta.half_time && (song.meta.annotated_bpm - 90.0).abs() < 0.01);
        assert_eq!(song.header.key, Key { tonic: 6, minor: false });
        assert_eq!(song.header.mood, Mood::Happy);
        // Song 012: 56 BPM, so half-time (112 effective); mostly Eb major → calm.
        let song = load_song(&root.join("012")).unwrap();
        assert!(song.meta.half_time && (song.meta.effective_bpm - 112.0).abs() < 0.01);
        assert_eq!(song.header.tempo_bin, tempo_bin(112.0));
        assert_eq!(song.header.key, Key { tonic: 3, minor: false });
        assert_eq!(song.header.mood, Mood::Calm);
        // A 6-beats-per-bar song is refused with its reason.
        let six = load_song(&root.join("034")).unwrap_err();
        assert!(six.contains("6 beats per bar"), "{six}");
        assert!(load_song(&root.join("no-such-song")).is_err());
    }

    #[test]
    fn version_tracks_are_found_by_name_and_melodies_matched_by_onset() {
        use VersionRole::*;
        for (name, role) in [
            ("MELODY", Melody),
            ("MELDOY", Melody),
            ("MELOPY", Melody),
            ("PIANO", Piano),
            ("PIANIO", Piano),
            ("PIANO4", Piano),
            ("STEINWAY GRAND PIANO", Piano),
            ("GRANDEUR 2", Piano),
            ("DEM", Piano),
            ("CAU", Other),
            ("CAU CHEN", Other),
            ("BRIDGE", Other),
            ("", Other),
            ("INSTRUMENT TRACK 01", Other),
        ] {
            assert_eq!(version_role(name), role, "{name}");
        }
        let note = |start_s: f64, pitch: u8| midi::RawNote { start_s, end_s: start_s + 0.2, pitch, velocity: 80 };
        let main: Vec<_> = (0..10).map(|i| note(i as f64 * 0.5, 60 + i as u8)).collect();
        let late: Vec<_> = main.iter().map(|n| note(n.start_s + 0.04, n.pitch)).collect();
        assert_eq!(onset_match(&main, &late), 1.0);
        let shifted: Vec<_> = main.iter().map(|n| note(n.start_s + 0.06, n.pitch)).collect();
        assert_eq!(onset_match(&main, &shifted), 0.0);
        let mut wrong_pitch = main.clone();
        wrong_pitch[3].pitch += 1;
        assert_eq!(onset_match(&main, &wrong_pitch), 0.9);
        assert_eq!(onset_match(&main, &[]), 0.0);
    }

    #[test]
    fn an_aligned_version_shares_the_annotations_and_shifted_or_copied_ones_are_skipped() {
        let Some(root) = pop909_dir() else {
            eprintln!("POP909 not found; skipping");
            return;
        };
        if !root.join("001/versions").is_dir() {
            eprintln!("POP909 versions not found; skipping");
            return;
        }
        let versions = load_versions(&root.join("001"));
        let names: Vec<&str> = versions.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["001-v1.mid", "001-v2.mid", "001-v3.mid"]);
        // v1 has the same melody notes, offset in time: the annotations do not fit it.
        let shifted = versions[0].1.as_ref().unwrap_err();
        assert!(shifted.starts_with("melody not aligned: 0 % of main onsets matched"), "{shifted}");
        // v3 is the main file again (tracks MELODY, CAU, PIANO).
        let copy = versions[2].1.as_ref().unwrap_err();
        assert!(copy.starts_with("same piano as the main file: 100 %"), "{copy}");

        // Song 011, v1: aligned, another accompaniment under the same melody, key and chords.
        let main = load_song(&root.join("011")).unwrap();
        let versions = load_versions(&root.join("011"));
        assert_eq!(versions[0].0, "011-v1.mid");
        let version = versions[0].1.as_ref().unwrap();
        assert_eq!(version.id, 11);
        assert_eq!(version.header, main.header);
        let progression = |song: &Song| song.phrase.chords.iter().map(|c| c.chord).collect::<Vec<_>>();
        assert_eq!(progression(version), progression(&main));
        let part = |song: &Song, part| song.phrase.notes_of(part).map(|n| (n.start_tick, n.pitch)).collect::<Vec<_>>();
        let lead = (part(version, Part::Lead).len() as f64, part(&main, Part::Lead).len() as f64);
        assert!((lead.0 - lead.1).abs() <= 0.2 * lead.1, "lead notes {lead:?}");
        assert_ne!(part(version, Part::Arp), part(&main, Part::Arp));
        assert_ne!(part(version, Part::Bass), part(&main, Part::Bass));
        assert!(version.phrase.notes_of(Part::Arp).count() > 100);
        assert!(version.phrase.notes_of(Part::Bass).all(|n| n.pitch < BASS_BELOW_PITCH));
        let tokens = encode_phrase(&version.header, &version.phrase, true);
        assert_eq!(decode_phrase(&tokens).unwrap(), (version.header, version.phrase.clone()));
        // A folder without versions has none.
        assert!(load_versions(&root.join("no-such-song")).is_empty());
    }
}

//! `--audio DIR`: every audio file under DIR transcribed to MIDI by `models/transcribe.py` (Basic
//! Pitch's ONNX model; the beat from librosa), written under the fine-tune's work folder where the
//! user can inspect them, then read like any MIDI file: one polyphonic voice, split into parts by
//! the importer's skyline.

use anyhow::{Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Audio the decoder (libsndfile through librosa) reads.
pub const AUDIO_EXTENSIONS: [&str; 6] = ["wav", "mp3", "flac", "ogg", "aif", "aiff"];

/// What came out of an audio folder.
pub struct Transcribed {
    /// (the audio file's path under DIR, the MIDI file written for it)
    pub inputs: Vec<(String, PathBuf)>,
    /// (the audio file's path under DIR, why it was not used)
    pub skipped: Vec<(String, String)>,
    /// Other files in the folder.
    pub others: usize,
    /// models/transcribe.py's report, one entry per audio file.
    pub report: Vec<serde_json::Value>,
}

/// One song to transcribe: a mix, or the stems of one song.
#[derive(Debug, PartialEq)]
struct Song {
    /// As the card and the roles file name it: the file's path under DIR, or the stems' folder
    /// with a trailing `/`.
    name: String,
    audio: Vec<PathBuf>,
    /// Under the output folder.
    midi: PathBuf,
}

/// The songs among `audio` (files under `dir`): a folder whose audio files (two or more) all say
/// their part by name (`bass.wav`, `lead synth.flac`, as MIDI track names do) holds the stems of one
/// song; every other file is a song of its own.
fn songs(dir: &Path, audio: &[PathBuf]) -> Vec<Song> {
    let relative = |path: &Path| path.strip_prefix(dir).unwrap_or(path).to_string_lossy().replace('\\', "/");
    let mut by_folder: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
    for path in audio {
        by_folder.entry(path.parent().unwrap_or(dir).to_path_buf()).or_default().push(path.clone());
    }
    let says_part =
        |path: &PathBuf| path.file_stem().and_then(|s| s.to_str()).and_then(super::roles::role_by_name).is_some();
    let mut songs = Vec::new();
    for (folder, files) in by_folder {
        if files.len() >= 2 && files.iter().all(says_part) {
            let folder_name = match relative(&folder) {
                name if name.is_empty() => dir.file_name().map_or("stems".into(), |n| n.to_string_lossy().to_string()),
                name => name,
            };
            let midi = PathBuf::from(format!("{folder_name}.stems.mid"));
            songs.push(Song { name: format!("{folder_name}/"), audio: files, midi });
        } else {
            for file in files {
                let midi = PathBuf::from(relative(&file)).with_extension("mid");
                songs.push(Song { name: relative(&file), audio: vec![file], midi });
            }
        }
    }
    songs
}

/// Transcribes every audio file under `dir` into `out_dir` (the same relative paths, `.mid`; the
/// stems of a song into one file).
pub fn transcribe_folder(dir: &Path, out_dir: &Path) -> Result<Transcribed> {
    let (audio, others) = super::list_files(dir, &AUDIO_EXTENSIONS)?;
    let jobs: Vec<_> = songs(dir, &audio).into_iter().map(|s| (s.name, s.audio, out_dir.join(s.midi))).collect();
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot make {}", out_dir.display()))?;
    let list_path = out_dir.join("files.json");
    let report_path = out_dir.join("report.json");
    let list: Vec<_> = jobs.iter().map(|(_, audio, midi)| json!({"audio": audio, "midi": midi})).collect();
    std::fs::write(&list_path, serde_json::to_string(&list)?)?;
    if !jobs.is_empty() {
        println!(
            "== transcribing {} audio files ({} songs) with Basic Pitch into {}",
            audio.len(),
            jobs.len(),
            out_dir.display()
        );
    }
    crate::run(
        Command::new(crate::python::ensure_venv()?)
            .arg("models/transcribe.py")
            .arg("run")
            .arg("--list")
            .arg(&list_path)
            .arg("--report")
            .arg(&report_path),
    )?;
    let report: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&report_path)?)
        .context("reading models/transcribe.py's report")?;
    let mut transcribed = Transcribed { inputs: Vec::new(), skipped: Vec::new(), others, report: Vec::new() };
    for ((relative, _, midi), entry) in jobs.into_iter().zip(report) {
        if entry["status"] == "ok" {
            transcribed.inputs.push((relative.clone(), midi));
        } else {
            let reason = entry["reason"].as_str().unwrap_or("not transcribed").to_string();
            transcribed.skipped.push((relative.clone(), reason));
        }
        transcribed.report.push(json!({"file": relative, "transcription": entry}));
    }
    Ok(transcribed)
}

const CHECK_USAGE: &str = "usage: cargo xtask transcription-check [--songs N] [--seconds S] [--first ID]

How well --audio separates parts: POP909 songs (ID, ID+1, ...) rendered to audio with one plain
waveform per track, transcribed, split into parts, and compared with the parts of the original MIDI
file read the same way. Writes target/transcription-check/result.json.
";

/// A grid note of one part: (start tick, pitch, part).
type PartNote = (i64, u8, usize);

/// Per part of the original: notes, notes heard (right pitch, onset within a 16th, any part),
/// notes heard in the right part.
#[derive(Default, Clone, Copy)]
struct PartCount {
    original: usize,
    heard: usize,
    right_part: usize,
}

/// `cargo xtask transcription-check`.
pub fn check(args: &[String]) -> Result<()> {
    let (mut songs, mut seconds, mut first) = (8u32, 60.0f64, 1u32);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().cloned().with_context(|| format!("{flag} needs a value\n\n{CHECK_USAGE}"));
        match flag.as_str() {
            "--songs" => songs = value()?.parse().context("--songs takes a whole number")?,
            "--seconds" => seconds = value()?.parse().context("--seconds takes a number")?,
            "--first" => first = value()?.parse().context("--first takes a song number")?,
            _ => anyhow::bail!("unknown option '{flag}'\n\n{CHECK_USAGE}"),
        }
    }
    let source = crate::dataset::default_source();
    let work = PathBuf::from("target/transcription-check");
    let audio_dir = work.join("audio");
    std::fs::create_dir_all(&audio_dir)?;
    let python = crate::python::ensure_venv()?;
    let ids: Vec<String> = (first..first + songs).map(|id| format!("{id:03}")).collect();
    println!("== rendering {songs} POP909 songs ({seconds} s each) to audio");
    for id in &ids {
        let midi = source.join(id).join(format!("{id}.mid"));
        crate::run(
            Command::new(&python)
                .args(["models/transcribe.py", "synthesize", "--seconds", &seconds.to_string(), "--midi"])
                .arg(&midi)
                .arg("--wav")
                .arg(audio_dir.join(format!("{id}.wav"))),
        )?;
    }
    let transcribed = transcribe_folder(&audio_dir, &work.join("transcribed"))?;
    let roles = super::roles::RolesFile::default();
    let mut rows = Vec::new();
    let mut totals = [PartCount::default(); 3];
    for (relative, midi) in &transcribed.inputs {
        let id = relative.trim_end_matches(".wav");
        let read = |path: &Path| -> Result<Vec<PartNote>> {
            let bytes = std::fs::read(path)?;
            let song = super::import::import(&bytes, relative, &roles).map_err(anyhow::Error::msg)?;
            Ok(song.phrase.notes.iter().map(|n| (n.start_tick as i64, n.pitch, n.part.index())).collect())
        };
        let heard = read(midi)?;
        let original = read(&source.join(id).join(format!("{id}.mid")))?;
        let bpm =
            transcribed.report.iter().find(|r| r["file"] == relative.as_str()).map(|r| &r["transcription"]["bpm"]);
        let (scale, offset, counts) = compare(&original, &heard);
        for (total, count) in totals.iter_mut().zip(counts) {
            total.original += count.original;
            total.heard += count.heard;
            total.right_part += count.right_part;
        }
        println!("  {id}: {scale} beats per written beat, offset {offset} ticks, {}", describe(&counts));
        let row = json!({"song": id, "bpm_found": bpm, "beats_per_written_beat": scale, "offset_ticks": offset});
        rows.push(json!({"parts": as_json(&counts), "alignment": row}));
    }
    println!("all {} songs: {}", rows.len(), describe(&totals));
    let result = json!({"songs": rows, "total": as_json(&totals), "seconds": seconds,
                        "skipped": transcribed.skipped.iter().map(|(f, r)| json!({"file": f, "reason": r})).collect::<Vec<_>>()});
    std::fs::write(work.join("result.json"), serde_json::to_string_pretty(&result)? + "\n")?;
    println!("wrote {}", work.join("result.json").display());
    Ok(())
}

/// The original's notes within the transcription's span, matched to the transcription at the
/// metrical level (the beat tracker may count half or double time: 1, 2 or 1/2 transcribed beats
/// per written beat) and grid offset that match most (the tracked first beat need not be the
/// file's first beat): (beats per written beat, offset in ticks, counts per part).
fn compare(original: &[PartNote], heard: &[PartNote]) -> (f64, i64, [PartCount; 3]) {
    use neural_trio::music::{TICKS_PER_BAR, TICKS_PER_BEAT};
    let sixteenth = i64::from(TICKS_PER_BEAT / 4);
    let span = heard.iter().map(|n| n.0).max().unwrap_or(0) + sixteenth;
    let count = |scale: f64, offset: i64| {
        let mut counts = [PartCount::default(); 3];
        for &(tick, pitch, part) in original {
            let tick = (tick as f64 * scale).round() as i64 - offset;
            if !(0..span).contains(&tick) {
                continue;
            }
            counts[part].original += 1;
            let near = |n: &&PartNote| n.1 == pitch && (n.0 - tick).abs() <= sixteenth;
            let matches: Vec<&PartNote> = heard.iter().filter(near).collect();
            if !matches.is_empty() {
                counts[part].heard += 1;
                counts[part].right_part += usize::from(matches.iter().any(|n| n.2 == part));
            }
        }
        counts
    };
    let bars = 2 * i64::from(TICKS_PER_BAR);
    let tries = [1.0, 2.0, 0.5]
        .into_iter()
        .flat_map(|scale| (-bars..=bars).step_by(sixteenth as usize).map(move |o| (scale, o)));
    tries
        .map(|(scale, offset)| (scale, offset, count(scale, offset)))
        .max_by_key(|(_, offset, counts)| (counts.iter().map(|c| c.heard).sum::<usize>(), -offset.abs()))
        .expect("the offset range is not empty")
}

fn describe(counts: &[PartCount; 3]) -> String {
    let share = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    neural_trio::music::Part::ALL
        .iter()
        .zip(counts)
        .map(|(part, c)| {
            format!(
                "{} {} notes, {:.0} % heard, {:.0} % of those in the right part",
                part.name(),
                c.original,
                share(c.heard, c.original),
                share(c.right_part, c.heard)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn as_json(counts: &[PartCount; 3]) -> serde_json::Value {
    let parts = neural_trio::music::Part::ALL.iter().zip(counts).map(|(part, c)| {
        (part.name().to_string(), json!({"original": c.original, "heard": c.heard, "right_part": c.right_part}))
    });
    serde_json::Value::Object(parts.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_named_stems_is_one_song_and_everything_else_a_song_each() {
        let dir = Path::new("/music");
        let audio: Vec<PathBuf> =
            ["mix one.wav", "song2/Bass.wav", "song2/lead synth.flac", "song3/bass.wav", "song3/take 2.wav"]
                .iter()
                .map(|f| dir.join(f))
                .collect();
        let found = songs(dir, &audio);
        let names: Vec<(&str, usize, &Path)> =
            found.iter().map(|s| (s.name.as_str(), s.audio.len(), s.midi.as_path())).collect();
        assert_eq!(
            names,
            [
                ("mix one.wav", 1, Path::new("mix one.mid")),
                ("song2/", 2, Path::new("song2.stems.mid")),
                ("song3/bass.wav", 1, Path::new("song3/bass.mid")),
                ("song3/take 2.wav", 1, Path::new("song3/take 2.mid")),
            ]
        );
        // Stems at the top of the folder take the folder's name.
        let top = songs(dir, &[dir.join("bass.wav"), dir.join("lead.wav")]);
        assert_eq!((top[0].name.as_str(), top[0].midi.as_path()), ("music/", Path::new("music.stems.mid")));
    }
}

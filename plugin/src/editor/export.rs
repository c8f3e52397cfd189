//! MIDI export: the current phrase as `trio.mid` (every part, one track each) plus `lead.mid`,
//! `arp.mid` and `bass.mid`, written into a new dated folder inside a folder the producer picks.
//!
//! The file logic ([`phrase_from_snapshot`], [`write_midi_files`]) is plain code with no GUI, tested
//! below; [`export_group`] only draws the section and reports where the files went.

use super::piano_roll::RollView;
use crate::link::{EditorEnd, PhraseSnapshot};
use crate::music::midi_file::{phrase_to_smf_bytes, MidiExport};
use crate::music::{Part, Phrase, TICKS_PER_BAR};
use crate::params::TrioParams;
use egui::{Color32, RichText, Ui};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the export section remembers between frames and window openings.
#[derive(Debug, Default)]
pub struct ExportMemory {
    /// The outcome of the last export, shown under the button until the next one.
    pub last: Option<Result<ExportReport, String>>,
}

/// Where an export went.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The folder the files were written to (the dated folder).
    pub folder: PathBuf,
    /// The files written, all-parts file first.
    pub files: Vec<PathBuf>,
    /// Notes in the all-parts file.
    pub notes: usize,
    /// Parts left out because they are switched off.
    pub skipped: Vec<Part>,
}

/// Name of the file that holds every part.
pub const ALL_PARTS_FILE: &str = "trio.mid";

/// Builds a phrase from the generator's bars: `bars` in the order given (Loop: 0..length; Endless: the
/// bars on screen), each placed one bar after the previous; only the parts in `parts`.
pub fn phrase_from_snapshot(snapshot: &PhraseSnapshot, bars: &[i64], parts: &[Part]) -> Phrase {
    let mut phrase = Phrase { bars: bars.len() as u32, ..Default::default() };
    for (column, index) in bars.iter().enumerate() {
        let Some((_, notes)) = snapshot.bars.iter().find(|(i, _)| i == index) else { continue };
        for note in notes.iter().filter(|n| parts.contains(&n.part)) {
            let mut note = *note;
            note.start_tick += column as u32 * TICKS_PER_BAR;
            phrase.notes.push(note);
        }
    }
    phrase.normalize();
    crate::music::trim_monophonic(&mut phrase.notes);
    phrase
}

/// Writes `trio.mid` with every part in `parts` (one track each) and one `<part>.mid` per part into
/// `folder`, creating it. `channels` are 0-based MIDI channels indexed by [`Part::index`].
pub fn write_midi_files(
    folder: &Path,
    phrase: &Phrase,
    parts: &[Part],
    tempo_bpm: f64,
    channels: [u8; 3],
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("Could not create the folder {}: {e}", folder.display()))?;
    let mut files = Vec::new();
    let mut write = |name: &str, parts: &[Part]| -> Result<(), String> {
        let bytes = phrase_to_smf_bytes(&MidiExport { phrase, tempo_bpm, channels, parts });
        let path = folder.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("Could not write {}: {e}", path.display()))?;
        files.push(path);
        Ok(())
    };
    write(ALL_PARTS_FILE, parts)?;
    for &part in parts {
        write(&format!("{}.mid", part.name()), &[part])?;
    }
    Ok(files)
}

/// The user's home folder, if the environment names one.
fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// The folder shown when the project has not chosen one: `~/Music/Neural Trio`.
pub const DEFAULT_FOLDER_TEXT: &str = "~/Music/Neural Trio";

/// Turns the text field into a path: `~` is the home folder, empty is the default.
pub fn folder_from_text(text: &str) -> PathBuf {
    let text = text.trim();
    let text = if text.is_empty() { DEFAULT_FOLDER_TEXT } else { text };
    match (text.strip_prefix('~'), home()) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') || rest.starts_with('\\') => {
            home.join(rest.trim_start_matches(['/', '\\']))
        }
        _ => PathBuf::from(text),
    }
}

/// A folder name for one export, from the local time: `2026-11-22 10-53-07` (no colons, which
/// Windows refuses in file names).
pub fn timestamp_name(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (year, month, day, hour, minute, second) = local_time(secs);
    format!("{year:04}-{month:02}-{day:02} {hour:02}-{minute:02}-{second:02}")
}

#[cfg(unix)]
fn local_time(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into the `tm` we pass and is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return utc_time(secs);
    }
    (
        tm.tm_year as i64 + 1900,
        tm.tm_mon as u32 + 1,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
    )
}

#[cfg(not(unix))]
fn local_time(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    utc_time(secs)
}

/// Civil date and time (UTC) from Unix seconds (Howard Hinnant's days-to-civil).
fn utc_time(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32)
}

/// A folder inside `base` that does not exist yet, named after the time.
pub fn new_export_folder(base: &Path, now: SystemTime) -> PathBuf {
    let name = timestamp_name(now);
    let mut folder = base.join(&name);
    let mut n = 2;
    while folder.exists() {
        folder = base.join(format!("{name} ({n})"));
        n += 1;
    }
    folder
}

/// Exports what the roll shows, with the host's tempo and the parts' channels.
pub fn export_now(
    params: &TrioParams,
    link: &EditorEnd,
    snapshot: &PhraseSnapshot,
    view: &RollView,
) -> Result<ExportReport, String> {
    let parts: Vec<Part> = Part::ALL.into_iter().filter(|&p| params.part(p).on.value()).collect();
    let skipped: Vec<Part> = Part::ALL.into_iter().filter(|p| !parts.contains(p)).collect();
    let phrase = phrase_from_snapshot(snapshot, &view.bars, &parts);
    if phrase.notes.is_empty() {
        return Err("Nothing to export yet: the model has not written any notes for the parts that are on.".into());
    }
    let base = folder_from_text(&params.export_folder.read().map(|f| f.clone()).unwrap_or_default());
    let folder = new_export_folder(&base, SystemTime::now());
    let tempo = link.tempo_bpm();
    let tempo = if tempo.is_finite() && tempo > 0.0 { tempo } else { 120.0 };
    let channels = Part::ALL.map(|p| (params.part(p).channel.value().clamp(1, 16) - 1) as u8);
    let files = write_midi_files(&folder, &phrase, &parts, tempo, channels)?;
    Ok(ExportReport { folder, files, notes: phrase.notes.len(), skipped })
}

/// The export section: folder field, button, and where the files went (or why they did not).
pub fn export_group(
    ui: &mut Ui,
    params: &TrioParams,
    link: &EditorEnd,
    snapshot: &PhraseSnapshot,
    view: &RollView,
    memory: &mut ExportMemory,
) {
    ui.label(RichText::new("Export MIDI").strong().size(14.0).color(Color32::from_rgb(225, 228, 235)));
    ui.separator();
    ui.label("Folder");
    let stored = params.export_folder.read().map(|f| f.clone()).unwrap_or_default();
    let mut text = if stored.is_empty() { DEFAULT_FOLDER_TEXT.to_string() } else { stored.clone() };
    let field = ui.add(egui::TextEdit::singleline(&mut text).desired_width(f32::INFINITY));
    if field.changed() {
        if let Ok(mut folder) = params.export_folder.write() {
            *folder = text.clone();
        }
    }
    ui.label(
        RichText::new(format!(
            "Each export makes a dated folder in there with {ALL_PARTS_FILE} (all parts) and lead.mid, arp.mid, bass.mid. {}",
            if view.looping { "Loop and Hold export the loop." } else { "Endless exports the bars on screen." }
        ))
        .small()
        .color(Color32::from_gray(150)),
    );
    let has_notes = snapshot.bars.iter().any(|(_, notes)| !notes.is_empty());
    let button = ui.add_enabled(has_notes, egui::Button::new(RichText::new("Export MIDI files").strong()));
    if button.on_disabled_hover_text("No notes yet.").clicked() {
        memory.last = Some(export_now(params, link, snapshot, view));
    }
    match &memory.last {
        Some(Ok(report)) => {
            let names: Vec<String> =
                report.files.iter().filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
            ui.label(
                RichText::new(format!("Wrote {} ({} notes) to:", names.join(", "), report.notes))
                    .color(Color32::from_rgb(150, 220, 150)),
            );
            ui.add(egui::Label::new(RichText::new(report.folder.display().to_string()).monospace()).selectable(true));
            if !report.skipped.is_empty() {
                let off: Vec<&str> = report.skipped.iter().map(|p| p.name()).collect();
                ui.label(
                    RichText::new(format!("Left out (switched off): {}", off.join(", ")))
                        .color(Color32::from_gray(160)),
                );
            }
        }
        Some(Err(problem)) => {
            ui.label(RichText::new(problem).color(Color32::from_rgb(255, 110, 100)));
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::midi_file::read_notes;
    use crate::music::Note;

    fn note(part: Part, start_tick: u32, pitch: u8, duration_ticks: u32) -> Note {
        Note { start_tick, part, pitch, duration_ticks, velocity: 96 }
    }

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_all_parts_and_one_file_per_part_that_read_back() {
        let snapshot = PhraseSnapshot {
            bars: vec![
                (0, vec![note(Part::Lead, 0, 72, 6), note(Part::Bass, 0, 36, 48)]),
                (1, vec![note(Part::Arp, 6, 64, 3), note(Part::Lead, 24, 74, 12)]),
                (2, vec![note(Part::Lead, 0, 99, 3)]),
            ],
            chords: Vec::new(),
        };
        // A two-bar loop: bars 0 and 1 in order; bar 2 (left from a longer loop) is not exported.
        let phrase = phrase_from_snapshot(&snapshot, &[0, 1], &Part::ALL);
        assert_eq!(phrase.bars, 2);
        assert_eq!(phrase.notes.len(), 4);

        let dir = TempDir(std::env::temp_dir().join(format!("neural-trio-export-test-{}", std::process::id())));
        let folder = new_export_folder(&dir.0, SystemTime::now());
        let files = write_midi_files(&folder, &phrase, &Part::ALL, 96.0, [0, 1, 9]).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["trio.mid", "lead.mid", "arp.mid", "bass.mid"]);

        let (all, tempo) = read_notes(&std::fs::read(folder.join("trio.mid")).unwrap()).unwrap();
        assert!((tempo.unwrap() - 96.0).abs() < 0.01);
        let summary: Vec<(u8, u8, f64, f64)> =
            all.iter().map(|n| (n.channel, n.pitch, n.start_beats, n.end_beats)).collect();
        assert_eq!(summary, vec![(9, 36, 0.0, 4.0), (0, 72, 0.0, 0.5), (1, 64, 4.5, 4.75), (0, 74, 6.0, 7.0)]);

        let (lead, _) = read_notes(&std::fs::read(folder.join("lead.mid")).unwrap()).unwrap();
        assert_eq!(lead.iter().map(|n| n.pitch).collect::<Vec<_>>(), vec![72, 74]);
        let (bass, _) = read_notes(&std::fs::read(folder.join("bass.mid")).unwrap()).unwrap();
        assert_eq!(bass.iter().map(|n| (n.channel, n.pitch)).collect::<Vec<_>>(), vec![(9, 36)]);

        // A second export in the same second gets its own folder.
        std::fs::create_dir_all(&folder).unwrap();
        assert_ne!(new_export_folder(&dir.0, SystemTime::now()), folder);

        // Switched-off parts are left out; an unwritable place is reported in words.
        let lead_only = phrase_from_snapshot(&snapshot, &[0, 1], &[Part::Lead]);
        assert!(lead_only.notes.iter().all(|n| n.part == Part::Lead));
        let blocker = dir.0.join("a-file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_midi_files(&blocker.join("sub"), &phrase, &Part::ALL, 120.0, [0, 1, 2]).unwrap_err();
        assert!(err.starts_with("Could not create the folder"), "{err}");
    }

    #[test]
    fn folder_text_and_timestamps() {
        if let Some(home) = home() {
            assert_eq!(folder_from_text(""), home.join("Music/Neural Trio"));
            assert_eq!(folder_from_text("~/Stems"), home.join("Stems"));
        }
        assert_eq!(folder_from_text("/tmp/x"), PathBuf::from("/tmp/x"));
        assert_eq!(utc_time(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc_time(1_795_000_000), (2026, 11, 18, 11, 6, 40));
        let name = timestamp_name(SystemTime::now());
        assert_eq!(name.len(), "2026-11-22 10-53-07".len());
        assert!(!name.contains(':'));
    }
}

//! The status line: which model runs where, how fast, how far ahead, and what is wrong, in plain
//! words.

use crate::link::{EditorEnd, EngineStatus};
use egui::{Color32, RichText, Ui};

/// How serious a status message is, which sets its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Everything works.
    Fine,
    /// Works, but not as the producer may expect (no transport, slower than real time).
    Warning,
    /// The plugin stays silent.
    Problem,
}

/// The pieces of the status line, as plain text; separate from drawing so it can be tested.
pub fn status_parts(status: &EngineStatus, has_transport: bool, ready: bool) -> Vec<(Level, String)> {
    let mut parts = Vec::new();
    match &status.model {
        Some(model) => parts.push((Level::Fine, format!("Model {model}"))),
        None if status.problem.is_none() => parts.push((Level::Fine, "Loading the model…".to_string())),
        None => {}
    }
    if let Some(provider) = &status.provider {
        let words = match provider.as_str() {
            "CUDA" => "on the GPU (CUDA)".to_string(),
            "CPU" => "on the CPU".to_string(),
            other => format!("on {other}"),
        };
        parts.push((Level::Fine, words));
    }
    if let Some(note) = &status.compute_note {
        let trouble = note.contains("failed") || note.starts_with("GPU asked");
        parts.push((if trouble { Level::Warning } else { Level::Fine }, note.clone()));
    }
    if ready && status.speed_x_realtime > 0.0 {
        let level = if status.speed_x_realtime < 1.0 { Level::Warning } else { Level::Fine };
        parts.push((level, format!("writes {:.1}× faster than real time", status.speed_x_realtime)));
        parts.push((Level::Fine, format!("{:.0} bars ready ahead", status.lookahead_bars)));
    }
    if let Some(follow) = &status.follow {
        let unclear =
            follow.contains("not a chord") || follow.contains("no clear chord") || follow.contains("not used");
        parts.push((if unclear { Level::Warning } else { Level::Fine }, follow.clone()));
    }
    if let (Some(key), Some(_)) = (&status.key, &status.follow) {
        parts.push((Level::Fine, format!("key {key}")));
    }
    if let Some(alone) = status.linked.as_deref().filter(|l| l.contains("no other member")) {
        // The whole explanation is under Link; the status line says what matters.
        let first_sentence = alone.split_inclusive(". ").next().unwrap_or(alone).trim_end();
        parts.push((Level::Warning, first_sentence.to_string()));
    }
    if let Some(problem) = &status.problem {
        let level = if problem.stops_generation() { Level::Problem } else { Level::Warning };
        parts.push((level, problem.to_string()));
    }
    if !has_transport {
        parts.push((
            Level::Warning,
            "The host sends no tempo or position yet: press play in your DAW (Neural Trio follows its timeline)."
                .to_string(),
        ));
    }
    parts
}

/// Draws the status line.
pub fn status_line(ui: &mut Ui, status: &EngineStatus, link: &EditorEnd) {
    let has_transport = link.has_transport();
    let ready = link.ready();
    ui.horizontal_wrapped(|ui| {
        for (i, (level, text)) in status_parts(status, has_transport, ready).into_iter().enumerate() {
            if i > 0 {
                ui.label(RichText::new("·").color(Color32::from_gray(110)));
            }
            let colour = match level {
                Level::Fine => Color32::from_rgb(200, 204, 212),
                Level::Warning => Color32::from_rgb(255, 200, 90),
                Level::Problem => Color32::from_rgb(255, 110, 100),
            };
            ui.label(RichText::new(text).color(colour));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Problem;

    #[test]
    fn says_what_runs_and_what_is_wrong() {
        let status = EngineStatus {
            model: Some("trio-base 1".into()),
            provider: Some("CPU".into()),
            speed_x_realtime: 12.34,
            lookahead_bars: 3.0,
            ..Default::default()
        };
        let text: Vec<String> = status_parts(&status, true, true).into_iter().map(|p| p.1).collect();
        assert_eq!(
            text,
            vec!["Model trio-base 1", "on the CPU", "writes 12.3× faster than real time", "3 bars ready ahead"]
        );

        let no_gpu = EngineStatus {
            provider: Some("CPU".into()),
            compute_note: Some("GPU asked for, but this ONNX Runtime has no CUDA provider: running on the CPU".into()),
            ..Default::default()
        };
        assert!(status_parts(&no_gpu, true, true).iter().any(|p| p.0 == Level::Warning && p.1.contains("no CUDA")));

        let broken = EngineStatus {
            problem: Some(Problem::NoModel("ONNX Runtime library not found".into())),
            ..Default::default()
        };
        let parts = status_parts(&broken, false, false);
        assert!(parts.iter().any(|p| p.0 == Level::Problem && p.1.contains("ONNX Runtime")));
        assert!(parts.iter().any(|p| p.0 == Level::Warning && p.1.contains("press play")));
    }
}

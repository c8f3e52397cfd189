//! The piano roll: lead, arp and bass in their colours over the loop (Loop/Hold) or the bars around
//! the playhead (Endless), a moving playhead, a pitch axis with note names, notes already heard this
//! pass dimmed, and each part's register as a band that can be dragged.

use super::{part_colour, part_tint, part_title, PLAYHEAD_COLOUR, ROLL_BACKGROUND};
use crate::link::{Link, PhraseSnapshot};
use crate::music::phrase::note_name;
use crate::music::phrase::LOOKAHEAD_BARS;
use crate::music::{Note, Part, TICKS_PER_BAR, TICKS_PER_BEAT};
use crate::params::{Mode, TrioParams};
use egui::{pos2, vec2, Align2, Color32, CursorIcon, FontId, Id, Rect, Sense, Stroke, StrokeKind, Ui};
use nice_plug::prelude::ParamSetter;
use std::sync::atomic::Ordering;

/// Width of the pitch axis (note names) on the roll's left.
const KEYS_WIDTH: f32 = 40.0;
/// Width of one part's register band, and the gap after it.
const BAND_WIDTH: f32 = 11.0;
const BAND_GAP: f32 = 4.0;
/// Height of the bar-number ruler above the notes.
const RULER_HEIGHT: f32 = 18.0;
/// How close (in points) to a band's end a drag grabs that end rather than the whole band.
const EDGE_GRAB: f32 = 7.0;

/// What the roll shows this frame, worked out once and shared with export (Endless mode exports
/// exactly the bars on screen).
#[derive(Debug, Clone, PartialEq)]
pub struct RollView {
    /// Phrase bar indices shown, left to right (Loop/Hold: 0..length; Endless: host bars).
    pub bars: Vec<i64>,
    /// Playhead position in ticks from the roll's left edge; None when it is not on screen.
    pub playhead_tick: Option<i64>,
    /// Notes that start before this tick (from the left edge) have been heard in this pass.
    pub heard_before_tick: i64,
    /// Loop or Hold: the bars repeat, so "heard" restarts at every pass.
    pub looping: bool,
}

impl RollView {
    /// The view for the current mode, loop length and playhead.
    pub fn from_link(params: &TrioParams, link: &Link, snapshot: &PhraseSnapshot) -> Self {
        let has_transport = link.has_transport.load(Ordering::Relaxed);
        let playhead = link.playhead_beats.load(Ordering::Relaxed).max(0.0);
        let loop_bars = match params.mode.value() {
            Mode::Endless => None,
            Mode::Loop | Mode::Hold => Some(params.loop_bars.value().clamp(1, 16) as u32),
        };
        Self::compute(loop_bars, has_transport.then_some(playhead), snapshot)
    }

    /// `playhead_beats`: the host position, or None without a host transport.
    pub fn compute(loop_bars: Option<u32>, playhead_beats: Option<f64>, snapshot: &PhraseSnapshot) -> Self {
        let tick_of = |beats: f64| (beats * TICKS_PER_BEAT as f64).floor() as i64;
        let bar_ticks = TICKS_PER_BAR as i64;
        match loop_bars {
            Some(length) => {
                let length = length.max(1) as i64;
                let playhead_tick = playhead_beats.map(|beats| tick_of(beats).rem_euclid(length * bar_ticks));
                RollView {
                    bars: (0..length).collect(),
                    playhead_tick,
                    heard_before_tick: playhead_tick.unwrap_or(0),
                    looping: true,
                }
            }
            None => {
                let playhead = playhead_beats.unwrap_or(0.0);
                let host_bar = (tick_of(playhead)).div_euclid(bar_ticks);
                let first = match playhead_beats {
                    Some(_) => (host_bar - 1).max(0),
                    // No transport: show the first bars the generator made.
                    None => snapshot.bars.first().map(|b| b.0).unwrap_or(0),
                };
                let last = first.max(host_bar) + LOOKAHEAD_BARS;
                let playhead_tick = playhead_beats.map(|beats| tick_of(beats) - first * bar_ticks);
                RollView {
                    bars: (first..=last).collect(),
                    playhead_tick,
                    heard_before_tick: playhead_tick.unwrap_or(0),
                    looping: false,
                }
            }
        }
    }

    /// Ticks the view spans.
    pub fn total_ticks(&self) -> i64 {
        self.bars.len() as i64 * TICKS_PER_BAR as i64
    }

    /// The shown notes with their start in ticks from the roll's left edge.
    pub fn notes<'a>(&'a self, snapshot: &'a PhraseSnapshot) -> impl Iterator<Item = (i64, &'a Note)> + 'a {
        self.bars.iter().enumerate().flat_map(move |(column, index)| {
            let notes = snapshot.bars.iter().find(|(i, _)| i == index).map(|(_, n)| n.as_slice()).unwrap_or(&[]);
            notes.iter().map(move |n| (column as i64 * TICKS_PER_BAR as i64 + n.start_tick as i64, n))
        })
    }
}

/// Which part of a register band a drag holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Grab {
    /// The bottom end: the lowest note.
    Low,
    /// The top end: the highest note.
    High,
    /// The whole band; `offset` is the pointer's pitch minus the band's low note at grab time.
    Both { offset: i32 },
}

/// The pitch range on screen, widened to hold every register and note.
fn pitch_range(params: &TrioParams, snapshot: &PhraseSnapshot) -> (i32, i32) {
    let (mut low, mut high) = (36, 84);
    for part in Part::ALL {
        let (l, h) = params.part(part).register();
        low = low.min(l as i32);
        high = high.max(h as i32);
    }
    for (_, notes) in &snapshot.bars {
        for n in notes {
            low = low.min(n.pitch as i32);
            high = high.max(n.pitch as i32);
        }
    }
    ((low - 1).max(0), (high + 1).min(127))
}

fn is_black_key(pitch: i32) -> bool {
    matches!(pitch.rem_euclid(12), 1 | 3 | 6 | 8 | 10)
}

fn dim(c: Color32) -> Color32 {
    lerp(c, ROLL_BACKGROUND, 0.62)
}

fn lerp(a: Color32, b: Color32, t: f32) -> Color32 {
    let m = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round() as u8;
    Color32::from_rgb(m(a.r(), b.r()), m(a.g(), b.g()), m(a.b(), b.b()))
}

/// Draws the roll into the rest of `ui` and handles dragging the register bands.
pub fn piano_roll(ui: &mut Ui, params: &TrioParams, setter: &ParamSetter, snapshot: &PhraseSnapshot, view: &RollView) {
    let (response, painter) = ui.allocate_painter(ui.available_size().max(vec2(200.0, 120.0)), Sense::hover());
    let outer = response.rect;
    painter.rect_filled(outer, 4.0, ROLL_BACKGROUND);

    // While a band is dragged the pitch axis stays put, or the band would slide under the pointer.
    let range_id = Id::unique("trio-roll-range");
    let dragging = ui.ctx().dragged_id().is_some_and(|id| (0..3).any(|k| id == Id::unique(("trio-band", k))));
    let (low_pitch, high_pitch) = match ui.data(|d| d.get_temp::<(i32, i32)>(range_id)) {
        Some(frozen) if dragging => frozen,
        _ => {
            let range = pitch_range(params, snapshot);
            ui.data_mut(|d| d.insert_temp(range_id, range));
            range
        }
    };
    let rows = (high_pitch - low_pitch + 1) as f32;

    let bands_left = outer.left() + KEYS_WIDTH;
    let grid = Rect::from_min_max(
        pos2(bands_left + 3.0 * (BAND_WIDTH + BAND_GAP) + 2.0, outer.top() + RULER_HEIGHT),
        pos2(outer.right() - 4.0, outer.bottom() - 6.0 - super::chord_lane::LANE_HEIGHT),
    );
    let row_h = grid.height() / rows;
    let y_of = |pitch: i32| grid.bottom() - (pitch - low_pitch + 1) as f32 * row_h;
    let pitch_at = |y: f32| low_pitch + ((grid.bottom() - y) / row_h).floor() as i32;
    let total_ticks = view.total_ticks().max(1) as f32;
    let px_per_tick = grid.width() / total_ticks;
    let x_of = |tick: i64| grid.left() + tick as f32 * px_per_tick;

    // Rows: black keys darker, every C marked and named on the pitch axis.
    let label_every_row = row_h >= 11.0;
    for pitch in low_pitch..=high_pitch {
        let y = y_of(pitch);
        let row = Rect::from_min_max(pos2(grid.left(), y), pos2(grid.right(), y + row_h));
        if is_black_key(pitch) {
            painter.rect_filled(row, 0.0, Color32::from_rgb(17, 18, 22));
        }
        let key = Rect::from_min_max(pos2(outer.left() + 2.0, y), pos2(bands_left - 3.0, y + row_h));
        let key_fill = if is_black_key(pitch) { Color32::from_rgb(40, 42, 48) } else { Color32::from_rgb(70, 73, 80) };
        painter.rect_filled(key.shrink2(vec2(0.0, 0.25)), 0.0, key_fill);
        if pitch.rem_euclid(12) == 0 {
            painter.line_segment(
                [pos2(grid.left(), y + row_h), pos2(grid.right(), y + row_h)],
                Stroke::new(1.0, Color32::from_rgb(48, 52, 60)),
            );
        }
        if pitch.rem_euclid(12) == 0 || label_every_row {
            painter.text(
                pos2(bands_left - 5.0, y + row_h * 0.5),
                Align2::RIGHT_CENTER,
                note_name(pitch as u8),
                FontId::proportional((row_h * 0.9).clamp(8.0, 11.0)),
                Color32::from_rgb(205, 208, 215),
            );
        }
    }

    // Beats and bars, with bar numbers on the ruler.
    let beats = view.bars.len() as i64 * 4;
    for beat in 0..=beats {
        let x = x_of(beat * TICKS_PER_BEAT as i64);
        let bar_line = beat % 4 == 0;
        let colour = if bar_line { Color32::from_rgb(78, 84, 96) } else { Color32::from_rgb(38, 41, 48) };
        painter.line_segment([pos2(x, grid.top()), pos2(x, grid.bottom())], Stroke::new(1.0, colour));
        if bar_line && (beat / 4) < view.bars.len() as i64 {
            let index = view.bars[(beat / 4) as usize];
            painter.text(
                pos2(x + 4.0, outer.top() + RULER_HEIGHT * 0.5),
                Align2::LEFT_CENTER,
                format!("{}", index + 1),
                FontId::proportional(11.0),
                Color32::from_rgb(170, 175, 185),
            );
        }
    }

    let lane = Rect::from_min_max(pos2(grid.left(), grid.bottom() + 2.0), pos2(grid.right(), outer.bottom() - 4.0));
    super::chord_lane::chord_lane(&painter, lane, view, snapshot, x_of);
    painter.text(
        pos2(bands_left - 5.0, lane.center().y),
        Align2::RIGHT_CENTER,
        "Chords",
        FontId::proportional(10.0),
        Color32::from_rgb(170, 175, 185),
    );

    // Register bands: one column per part, beside the pitch axis.
    let mut hovered_band = None;
    for part in Part::ALL {
        let k = part.index();
        let (low, high) = params.part(part).register();
        let (low, high) = (low as i32, high as i32);
        let x = bands_left + k as f32 * (BAND_WIDTH + BAND_GAP);
        let band = Rect::from_min_max(pos2(x, y_of(high)), pos2(x + BAND_WIDTH, y_of(low) + row_h));
        let on = params.part(part).on.value();
        let tint = if on { part_tint(part) } else { Color32::from_gray(110) };
        let id = Id::unique(("trio-band", k));
        let band_response =
            ui.interact(band.expand2(vec2(2.0, EDGE_GRAB * 0.5)), id, Sense::click_and_drag()).on_hover_text(format!(
                "{} register {}–{}. Drag an end to change the lowest or highest note, drag the middle to move \
                 the whole range, double-click for the default.",
                part_title(part),
                note_name(low as u8),
                note_name(high as u8)
            ));
        let active = band_response.hovered() || band_response.dragged();
        if active {
            hovered_band = Some((part, low, high));
        }
        painter.rect_filled(band, 3.0, tint.gamma_multiply(if active { 0.75 } else { 0.5 }));
        for y in [band.top(), band.bottom() - 3.0] {
            painter.rect_filled(Rect::from_min_size(pos2(band.left(), y), vec2(BAND_WIDTH, 3.0)), 1.0, tint);
        }

        if let Some(pointer) = band_response.hover_pos().or(band_response.interact_pointer_pos()) {
            let near_top = (pointer.y - band.top()).abs() <= EDGE_GRAB;
            let near_bottom = (pointer.y - band.bottom()).abs() <= EDGE_GRAB;
            let icon = if near_top || near_bottom { CursorIcon::ResizeVertical } else { CursorIcon::Grab };
            ui.ctx().set_cursor_icon(icon);
        }
        let p = params.part(part);
        if band_response.double_clicked() {
            let (dl, dh) = part.default_register();
            setter.begin_set_parameter(&p.low);
            setter.begin_set_parameter(&p.high);
            setter.set_parameter(&p.low, dl as i32);
            setter.set_parameter(&p.high, dh as i32);
            setter.end_set_parameter(&p.low);
            setter.end_set_parameter(&p.high);
        }
        if band_response.drag_started() {
            // Where the button went down, not where the drag was recognised a few pixels later.
            let origin = ui.input(|i| i.pointer.press_origin());
            if let Some(pointer) = origin.or(band_response.interact_pointer_pos()) {
                let grab = if (pointer.y - band.top()).abs() <= EDGE_GRAB {
                    Grab::High
                } else if (pointer.y - band.bottom()).abs() <= EDGE_GRAB {
                    Grab::Low
                } else {
                    Grab::Both { offset: pitch_at(pointer.y) - low }
                };
                ui.data_mut(|d| d.insert_temp(id, grab));
                if grab != Grab::High {
                    setter.begin_set_parameter(&p.low);
                }
                if grab != Grab::Low {
                    setter.begin_set_parameter(&p.high);
                }
            }
        }
        let grab = ui.data(|d| d.get_temp::<Grab>(id));
        if let (Some(grab), true, Some(pointer)) = (grab, band_response.dragged(), band_response.interact_pointer_pos())
        {
            let pitch = pitch_at(pointer.y).clamp(0, 127);
            match grab {
                Grab::Low => {
                    let v = pitch.min(high);
                    if v != p.low.value() {
                        setter.set_parameter(&p.low, v);
                    }
                }
                Grab::High => {
                    let v = pitch.max(low);
                    if v != p.high.value() {
                        setter.set_parameter(&p.high, v);
                    }
                }
                Grab::Both { offset } => {
                    let span = high - low;
                    let new_low = (pitch - offset).clamp(0, 127 - span);
                    if new_low != low {
                        setter.set_parameter(&p.low, new_low);
                        setter.set_parameter(&p.high, new_low + span);
                    }
                }
            }
        }
        if band_response.drag_stopped() {
            if let Some(grab) = grab {
                if grab != Grab::High {
                    setter.end_set_parameter(&p.low);
                }
                if grab != Grab::Low {
                    setter.end_set_parameter(&p.high);
                }
            }
            ui.data_mut(|d| d.remove::<Grab>(id));
        }
    }
    if let Some((part, low, high)) = hovered_band {
        let area = Rect::from_min_max(pos2(grid.left(), y_of(high)), pos2(grid.right(), y_of(low) + row_h));
        painter.rect_filled(area, 0.0, part_tint(part).gamma_multiply(0.08));
        painter.rect_stroke(area, 0.0, Stroke::new(1.0, part_tint(part).gamma_multiply(0.5)), StrokeKind::Inside);
    }

    // Notes: bass first so the higher parts stay on top where they overlap.
    let grid_painter = painter.with_clip_rect(grid);
    let snap = |v: f32| v.round();
    for part in [Part::Bass, Part::Arp, Part::Lead] {
        let on = params.part(part).on.value();
        for (tick, note) in view.notes(snapshot).filter(|(_, n)| n.part == part) {
            let heard = tick < view.heard_before_tick;
            let colour = match (on, heard) {
                (false, _) => Color32::from_gray(if heard { 52 } else { 85 }),
                (true, true) => dim(part_colour(part)),
                (true, false) => part_colour(part),
            };
            let y = y_of(note.pitch as i32);
            let rect = Rect::from_min_max(
                pos2(snap(x_of(tick)), snap(y)),
                pos2(
                    snap(x_of(tick + note.duration_ticks.max(1) as i64)).max(snap(x_of(tick)) + 2.0),
                    snap(y + row_h).max(snap(y) + 2.0),
                ),
            );
            let rect =
                Rect::from_min_max(rect.min, pos2(rect.max.x - 1.0, rect.max.y - if row_h >= 4.0 { 1.0 } else { 0.0 }));
            grid_painter.rect_filled(rect, 0.0, colour);
        }
    }

    // The playhead: an exact 2-pixel column, so its colour survives anti-aliasing.
    if let Some(tick) = view.playhead_tick {
        if (0..=view.total_ticks()).contains(&tick) {
            let x = snap(grid.left() + tick as f32 * px_per_tick);
            painter.rect_filled(
                Rect::from_min_max(pos2(x - 1.0, outer.top() + 2.0), pos2(x + 1.0, grid.bottom())),
                0.0,
                PLAYHEAD_COLOUR,
            );
        }
    }

    if snapshot.bars.is_empty() {
        painter.text(
            grid.center(),
            Align2::CENTER_CENTER,
            "No notes yet: start playback in your DAW and the model writes the bars ahead of the playhead.",
            FontId::proportional(13.0),
            Color32::from_rgb(190, 194, 202),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(start_tick: u32) -> Note {
        Note { start_tick, part: Part::Lead, pitch: 60, duration_ticks: 3, velocity: 90 }
    }

    #[test]
    fn loop_view_wraps_the_playhead_and_dims_what_was_heard() {
        let snapshot = PhraseSnapshot { bars: vec![(0, vec![note(0)]), (1, vec![note(24)])], chords: Vec::new() };
        // Host bar 3 plays phrase bar 1 of a 2-bar loop; 2.5 beats in.
        let view = RollView::compute(Some(2), Some(14.5), &snapshot);
        assert_eq!(view.bars, vec![0, 1]);
        assert_eq!(view.playhead_tick, Some(48 + 30));
        let starts: Vec<i64> = view.notes(&snapshot).map(|(t, _)| t).collect();
        assert_eq!(starts, vec![0, 72]);
        assert!(starts[0] < view.heard_before_tick && starts[1] < view.heard_before_tick);
    }

    #[test]
    fn endless_view_follows_the_playhead_with_the_lookahead() {
        let snapshot = PhraseSnapshot { bars: vec![(5, vec![note(0)]), (6, vec![note(0)])], chords: Vec::new() };
        let view = RollView::compute(None, Some(6.0 * 4.0 + 1.0), &snapshot);
        assert_eq!(view.bars, (5..=6 + LOOKAHEAD_BARS).collect::<Vec<_>>());
        assert_eq!(view.playhead_tick, Some(48 + 12));
        let heard: Vec<bool> = view.notes(&snapshot).map(|(t, _)| t < view.heard_before_tick).collect();
        assert_eq!(heard, vec![true, true]);
        // Without a transport nothing is heard and the first generated bars are shown.
        let view = RollView::compute(None, None, &snapshot);
        assert_eq!(view.bars.first(), Some(&5));
        assert_eq!(view.playhead_tick, None);
    }
}

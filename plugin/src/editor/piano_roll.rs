//! The piano roll: lead, arp and bass in their colours over the loop (Loop/Hold) or the bars around
//! the playhead (Endless), a moving playhead, a pitch axis with note names, notes already heard this
//! pass dimmed, and each part's register as a band that can be dragged.

use super::{part_colour, part_tint, part_title, PLAYHEAD_COLOUR, ROLL_BACKGROUND};
use crate::link::{EditorEnd, PhraseSnapshot};
use crate::music::phrase::{note_name, BEATS_PER_BAR, LOOKAHEAD_BARS};
use crate::music::{Note, Part, TICKS_PER_BAR, TICKS_PER_BEAT};
use crate::params::{PartParams, TrioParams};
use egui::{pos2, vec2, Align2, Color32, CursorIcon, FontId, Id, Painter, Rect, Sense, Stroke, StrokeKind, Ui};
use nice_plug::prelude::ParamSetter;

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
    pub fn from_link(params: &TrioParams, link: &EditorEnd, snapshot: &PhraseSnapshot) -> Self {
        Self::compute(params.structure().loop_length(), link.playhead_beats().map(|b| b.max(0.0)), snapshot)
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

impl Grab {
    /// What a press at `y_px` holds: an end when it is near one, otherwise the whole band.
    fn at(geometry: &RollGeometry, band: &RegisterBand, y_px: f32) -> Self {
        if (y_px - band.rect.top()).abs() <= EDGE_GRAB {
            Grab::High
        } else if (y_px - band.rect.bottom()).abs() <= EDGE_GRAB {
            Grab::Low
        } else {
            Grab::Both { offset: geometry.pitch_at(y_px) - band.low_pitch }
        }
    }

    fn moves_low(self) -> bool {
        self != Grab::High
    }

    fn moves_high(self) -> bool {
        self != Grab::Low
    }
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

/// Where the roll's areas sit this frame, and how pitches and ticks map onto them.
struct RollGeometry {
    /// The whole roll: pitch axis, bands, ruler, grid and chord lane.
    outer: Rect,
    /// Left edge of the first register band, just right of the pitch axis.
    bands_left_px: f32,
    /// The notes' area: right of the bands, between the ruler and the chord lane.
    grid: Rect,
    /// Lowest pitch shown; it takes the bottom row.
    low_pitch: i32,
    /// Highest pitch shown; it takes the top row.
    high_pitch: i32,
    row_height_px: f32,
    px_per_tick: f32,
}

impl RollGeometry {
    /// `total_ticks`: the ticks the grid spans, from the roll's left edge.
    fn new(outer: Rect, (low_pitch, high_pitch): (i32, i32), total_ticks: i64) -> Self {
        let bands_left_px = outer.left() + KEYS_WIDTH;
        let grid = Rect::from_min_max(
            pos2(bands_left_px + 3.0 * (BAND_WIDTH + BAND_GAP) + 2.0, outer.top() + RULER_HEIGHT),
            pos2(outer.right() - 4.0, outer.bottom() - 6.0 - super::chord_lane::LANE_HEIGHT),
        );
        let rows = (high_pitch - low_pitch + 1) as f32;
        RollGeometry {
            outer,
            bands_left_px,
            grid,
            low_pitch,
            high_pitch,
            row_height_px: grid.height() / rows,
            // At least one tick, so an empty view does not divide by zero.
            px_per_tick: grid.width() / total_ticks.max(1) as f32,
        }
    }

    /// Top edge of `pitch`'s row.
    fn row_top_px(&self, pitch: i32) -> f32 {
        self.grid.bottom() - (pitch - self.low_pitch + 1) as f32 * self.row_height_px
    }

    /// The pitch whose row holds `y_px`.
    fn pitch_at(&self, y_px: f32) -> i32 {
        self.low_pitch + ((self.grid.bottom() - y_px) / self.row_height_px).floor() as i32
    }

    /// x of a tick counted from the roll's left edge.
    fn x_of_tick(&self, tick: i64) -> f32 {
        self.grid.left() + tick as f32 * self.px_per_tick
    }

    /// The rows from `low_pitch` up to `high_pitch`, both included, between `left_px` and `right_px`.
    fn rows_rect(&self, left_px: f32, right_px: f32, (low_pitch, high_pitch): (i32, i32)) -> Rect {
        Rect::from_min_max(
            pos2(left_px, self.row_top_px(high_pitch)),
            pos2(right_px, self.row_top_px(low_pitch) + self.row_height_px),
        )
    }

    /// Left edge of `part`'s register band.
    fn band_left_px(&self, part: Part) -> f32 {
        self.bands_left_px + part.index() as f32 * (BAND_WIDTH + BAND_GAP)
    }

    /// The chord lane, under the grid.
    fn chord_lane(&self) -> Rect {
        Rect::from_min_max(
            pos2(self.grid.left(), self.grid.bottom() + 2.0),
            pos2(self.grid.right(), self.outer.bottom() - 4.0),
        )
    }
}

/// One part's register band this frame: where it is drawn and the register (lowest, highest note) it shows.
struct RegisterBand {
    part: Part,
    rect: Rect,
    low_pitch: i32,
    high_pitch: i32,
}

/// The id of `part`'s register band, for egui's drag state and the band's stored `Grab`.
fn band_id(part: Part) -> Id {
    Id::unique(("trio-band", part.index()))
}

/// Draws the roll into the rest of `ui` and handles dragging the register bands.
pub fn piano_roll(ui: &mut Ui, params: &TrioParams, setter: &ParamSetter, snapshot: &PhraseSnapshot, view: &RollView) {
    let (response, painter) = ui.allocate_painter(ui.available_size().max(vec2(200.0, 120.0)), Sense::hover());
    painter.rect_filled(response.rect, 4.0, ROLL_BACKGROUND);
    let geometry = RollGeometry::new(response.rect, shown_pitch_range(ui, params, snapshot), view.total_ticks());

    draw_pitch_rows(&painter, &geometry);
    draw_beat_grid(&painter, &geometry, view);
    draw_chord_lane(&painter, &geometry, view, snapshot);
    let mut highlighted = None;
    for part in Part::ALL {
        if let Some(register) = register_band(ui, &painter, setter, params, &geometry, part) {
            highlighted = Some((part, register));
        }
    }
    if let Some((part, register)) = highlighted {
        draw_register_highlight(&painter, &geometry, part, register);
    }
    draw_notes(&painter, &geometry, params, view, snapshot);
    draw_playhead(&painter, &geometry, view);
    if snapshot.bars.is_empty() {
        painter.text(
            geometry.grid.center(),
            Align2::CENTER_CENTER,
            "No notes yet: start playback in your DAW and the model writes the bars ahead of the playhead.",
            FontId::proportional(13.0),
            Color32::from_rgb(190, 194, 202),
        );
    }
}

/// The pitch range to show: fitted to the registers and notes, but held while a band is dragged, or the
/// band would slide under the pointer.
fn shown_pitch_range(ui: &Ui, params: &TrioParams, snapshot: &PhraseSnapshot) -> (i32, i32) {
    let range_id = Id::unique("trio-roll-range");
    let dragging_band = ui.ctx().dragged_id().is_some_and(|id| Part::ALL.into_iter().any(|part| id == band_id(part)));
    match ui.data(|d| d.get_temp::<(i32, i32)>(range_id)) {
        Some(held) if dragging_band => held,
        _ => {
            let range = pitch_range(params, snapshot);
            ui.data_mut(|d| d.insert_temp(range_id, range));
            range
        }
    }
}

/// One row per pitch: black keys darker, every C marked, and the pitch axis named (every C, or every row
/// when rows are tall enough to read).
fn draw_pitch_rows(painter: &Painter, geometry: &RollGeometry) {
    let grid = geometry.grid;
    let row_height_px = geometry.row_height_px;
    let label_every_row = row_height_px >= 11.0;
    for pitch in geometry.low_pitch..=geometry.high_pitch {
        if is_black_key(pitch) {
            painter.rect_filled(
                geometry.rows_rect(grid.left(), grid.right(), (pitch, pitch)),
                0.0,
                Color32::from_rgb(17, 18, 22),
            );
        }
        let key = geometry.rows_rect(geometry.outer.left() + 2.0, geometry.bands_left_px - 3.0, (pitch, pitch));
        let key_fill = if is_black_key(pitch) { Color32::from_rgb(40, 42, 48) } else { Color32::from_rgb(70, 73, 80) };
        painter.rect_filled(key.shrink2(vec2(0.0, 0.25)), 0.0, key_fill);
        let row_top_px = geometry.row_top_px(pitch);
        let is_c = pitch.rem_euclid(12) == 0;
        if is_c {
            let row_bottom_px = row_top_px + row_height_px;
            painter.line_segment(
                [pos2(grid.left(), row_bottom_px), pos2(grid.right(), row_bottom_px)],
                Stroke::new(1.0, Color32::from_rgb(48, 52, 60)),
            );
        }
        if is_c || label_every_row {
            painter.text(
                pos2(geometry.bands_left_px - 5.0, row_top_px + row_height_px * 0.5),
                Align2::RIGHT_CENTER,
                note_name(pitch as u8),
                FontId::proportional((row_height_px * 0.9).clamp(8.0, 11.0)),
                Color32::from_rgb(205, 208, 215),
            );
        }
    }
}

/// Beat lines, brighter bar lines, and the bar numbers on the ruler.
fn draw_beat_grid(painter: &Painter, geometry: &RollGeometry, view: &RollView) {
    let grid = geometry.grid;
    let beats_per_bar = BEATS_PER_BAR as i64;
    let beats = view.bars.len() as i64 * beats_per_bar;
    for beat in 0..=beats {
        let x_px = geometry.x_of_tick(beat * TICKS_PER_BEAT as i64);
        let bar_line = beat % beats_per_bar == 0;
        let colour = if bar_line { Color32::from_rgb(78, 84, 96) } else { Color32::from_rgb(38, 41, 48) };
        painter.line_segment([pos2(x_px, grid.top()), pos2(x_px, grid.bottom())], Stroke::new(1.0, colour));
        // The line closing the last bar has no bar after it to number.
        let numbered_bar = if bar_line { view.bars.get((beat / beats_per_bar) as usize) } else { None };
        if let Some(bar_index) = numbered_bar {
            painter.text(
                pos2(x_px + 4.0, geometry.outer.top() + RULER_HEIGHT * 0.5),
                Align2::LEFT_CENTER,
                format!("{}", bar_index + 1),
                FontId::proportional(11.0),
                Color32::from_rgb(170, 175, 185),
            );
        }
    }
}

/// The chord lane under the grid, named on the pitch axis.
fn draw_chord_lane(painter: &Painter, geometry: &RollGeometry, view: &RollView, snapshot: &PhraseSnapshot) {
    let lane = geometry.chord_lane();
    super::chord_lane::chord_lane(painter, lane, view, snapshot, |tick| geometry.x_of_tick(tick));
    painter.text(
        pos2(geometry.bands_left_px - 5.0, lane.center().y),
        Align2::RIGHT_CENTER,
        "Chords",
        FontId::proportional(10.0),
        Color32::from_rgb(170, 175, 185),
    );
}

/// Draws `part`'s register band beside the pitch axis and handles its double-click and drags. Returns the
/// register it showed, (lowest, highest note), while the pointer is on it or drags it.
fn register_band(
    ui: &Ui,
    painter: &Painter,
    setter: &ParamSetter,
    params: &TrioParams,
    geometry: &RollGeometry,
    part: Part,
) -> Option<(i32, i32)> {
    let part_params = params.part(part);
    let (low_pitch, high_pitch) = part_params.register();
    let (low_pitch, high_pitch) = (low_pitch as i32, high_pitch as i32);
    let left_px = geometry.band_left_px(part);
    let rect = geometry.rows_rect(left_px, left_px + BAND_WIDTH, (low_pitch, high_pitch));
    let band = RegisterBand { part, rect, low_pitch, high_pitch };
    let id = band_id(part);
    // A little taller than the band, so an end can be grabbed from just beyond it.
    let response =
        ui.interact(rect.expand2(vec2(2.0, EDGE_GRAB * 0.5)), id, Sense::click_and_drag()).on_hover_text(format!(
            "{} register {}–{}. Drag an end to change the lowest or highest note, drag the middle to move \
             the whole range, double-click for the default.",
            part_title(part),
            note_name(low_pitch as u8),
            note_name(high_pitch as u8)
        ));
    let active = response.hovered() || response.dragged();
    draw_register_band(painter, &band, part_params.on.value(), active);

    if let Some(pointer) = response.hover_pos().or(response.interact_pointer_pos()) {
        let icon = match Grab::at(geometry, &band, pointer.y) {
            Grab::Both { .. } => CursorIcon::Grab,
            Grab::Low | Grab::High => CursorIcon::ResizeVertical,
        };
        ui.ctx().set_cursor_icon(icon);
    }
    if response.double_clicked() {
        reset_register(setter, part_params, part);
    }
    if response.drag_started() {
        // Where the button went down, not where the drag was recognised a few pixels later.
        let origin = ui.input(|i| i.pointer.press_origin());
        if let Some(pointer) = origin.or(response.interact_pointer_pos()) {
            let grab = Grab::at(geometry, &band, pointer.y);
            ui.data_mut(|d| d.insert_temp(id, grab));
            begin_register_gesture(setter, part_params, grab);
        }
    }
    let grab = ui.data(|d| d.get_temp::<Grab>(id));
    if let (Some(grab), true, Some(pointer)) = (grab, response.dragged(), response.interact_pointer_pos()) {
        drag_register(setter, part_params, &band, grab, geometry.pitch_at(pointer.y).clamp(0, 127));
    }
    if response.drag_stopped() {
        if let Some(grab) = grab {
            end_register_gesture(setter, part_params, grab);
        }
        ui.data_mut(|d| d.remove::<Grab>(id));
    }
    active.then_some((low_pitch, high_pitch))
}

/// The band in its part's tint (grey when the part is off), brighter while active, with solid ends to grab.
fn draw_register_band(painter: &Painter, band: &RegisterBand, part_on: bool, active: bool) {
    let tint = if part_on { part_tint(band.part) } else { Color32::from_gray(110) };
    painter.rect_filled(band.rect, 3.0, tint.gamma_multiply(if active { 0.75 } else { 0.5 }));
    for end_top_px in [band.rect.top(), band.rect.bottom() - 3.0] {
        painter.rect_filled(Rect::from_min_size(pos2(band.rect.left(), end_top_px), vec2(BAND_WIDTH, 3.0)), 1.0, tint);
    }
}

/// Sets `part`'s register back to its default, as one gesture for the host.
fn reset_register(setter: &ParamSetter, part_params: &PartParams, part: Part) {
    let (default_low, default_high) = part.default_register();
    setter.begin_set_parameter(&part_params.low);
    setter.begin_set_parameter(&part_params.high);
    setter.set_parameter(&part_params.low, default_low as i32);
    setter.set_parameter(&part_params.high, default_high as i32);
    setter.end_set_parameter(&part_params.low);
    setter.end_set_parameter(&part_params.high);
}

/// Opens the host gesture on the register ends `grab` moves, so the drag records as one automation edit.
fn begin_register_gesture(setter: &ParamSetter, part_params: &PartParams, grab: Grab) {
    if grab.moves_low() {
        setter.begin_set_parameter(&part_params.low);
    }
    if grab.moves_high() {
        setter.begin_set_parameter(&part_params.high);
    }
}

/// Closes the gesture `begin_register_gesture` opened.
fn end_register_gesture(setter: &ParamSetter, part_params: &PartParams, grab: Grab) {
    if grab.moves_low() {
        setter.end_set_parameter(&part_params.low);
    }
    if grab.moves_high() {
        setter.end_set_parameter(&part_params.high);
    }
}

/// Moves what `grab` holds to `pointer_pitch`: an end no further than the other one, or the whole band
/// kept inside MIDI's range. Only changes are sent, so the host is not flooded while the pointer rests.
fn drag_register(setter: &ParamSetter, part_params: &PartParams, band: &RegisterBand, grab: Grab, pointer_pitch: i32) {
    let (low_pitch, high_pitch) = (band.low_pitch, band.high_pitch);
    match grab {
        Grab::Low => {
            let new_low = pointer_pitch.min(high_pitch);
            if new_low != part_params.low.value() {
                setter.set_parameter(&part_params.low, new_low);
            }
        }
        Grab::High => {
            let new_high = pointer_pitch.max(low_pitch);
            if new_high != part_params.high.value() {
                setter.set_parameter(&part_params.high, new_high);
            }
        }
        Grab::Both { offset } => {
            let span = high_pitch - low_pitch;
            let new_low = (pointer_pitch - offset).clamp(0, 127 - span);
            if new_low != low_pitch {
                setter.set_parameter(&part_params.low, new_low);
                setter.set_parameter(&part_params.high, new_low + span);
            }
        }
    }
}

/// Shades the rows of the hovered or dragged band's register across the grid.
fn draw_register_highlight(painter: &Painter, geometry: &RollGeometry, part: Part, register: (i32, i32)) {
    let area = geometry.rows_rect(geometry.grid.left(), geometry.grid.right(), register);
    painter.rect_filled(area, 0.0, part_tint(part).gamma_multiply(0.08));
    painter.rect_stroke(area, 0.0, Stroke::new(1.0, part_tint(part).gamma_multiply(0.5)), StrokeKind::Inside);
}

/// The notes, clipped to the grid; bass first so the higher parts stay on top where they overlap.
fn draw_notes(
    painter: &Painter,
    geometry: &RollGeometry,
    params: &TrioParams,
    view: &RollView,
    snapshot: &PhraseSnapshot,
) {
    let grid_painter = painter.with_clip_rect(geometry.grid);
    for part in [Part::Bass, Part::Arp, Part::Lead] {
        let part_on = params.part(part).on.value();
        for (start_tick, note) in view.notes(snapshot).filter(|(_, n)| n.part == part) {
            let heard = start_tick < view.heard_before_tick;
            grid_painter.rect_filled(note_rect(geometry, start_tick, note), 0.0, note_colour(part, part_on, heard));
        }
    }
}

/// Grey for a part that is off, dimmed once heard this pass.
fn note_colour(part: Part, part_on: bool, heard: bool) -> Color32 {
    match (part_on, heard) {
        (false, _) => Color32::from_gray(if heard { 52 } else { 85 }),
        (true, true) => dim(part_colour(part)),
        (true, false) => part_colour(part),
    }
}

/// A note's rectangle on whole pixels. It spans at least 2 pixels each way, so short notes and thin rows
/// stay visible, less a 1-pixel gap after it (and under it when rows are tall enough) to tell neighbours apart.
fn note_rect(geometry: &RollGeometry, start_tick: i64, note: &Note) -> Rect {
    let row_top_px = geometry.row_top_px(note.pitch as i32);
    let row_height_px = geometry.row_height_px;
    let left_px = geometry.x_of_tick(start_tick).round();
    let top_px = row_top_px.round();
    let end_tick = start_tick + note.duration_ticks.max(1) as i64;
    let right_px = geometry.x_of_tick(end_tick).round().max(left_px + 2.0);
    let bottom_px = (row_top_px + row_height_px).round().max(top_px + 2.0);
    let gap_under_px = if row_height_px >= 4.0 { 1.0 } else { 0.0 };
    Rect::from_min_max(pos2(left_px, top_px), pos2(right_px - 1.0, bottom_px - gap_under_px))
}

/// The playhead from the ruler down through the grid, when it is on screen.
fn draw_playhead(painter: &Painter, geometry: &RollGeometry, view: &RollView) {
    let Some(tick) = view.playhead_tick.filter(|tick| (0..=view.total_ticks()).contains(tick)) else {
        return;
    };
    // An exact 2-pixel column, so its colour survives anti-aliasing.
    let x_px = geometry.x_of_tick(tick).round();
    painter.rect_filled(
        Rect::from_min_max(pos2(x_px - 1.0, geometry.outer.top() + 2.0), pos2(x_px + 1.0, geometry.grid.bottom())),
        0.0,
        PLAYHEAD_COLOUR,
    );
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

//! The chord lane under the piano roll: the chords each bar is made under, the forced ones (played,
//! captured or typed) marked as such, the model's own dimmed.

use super::piano_roll::RollView;
use crate::link::PhraseSnapshot;
use crate::music::TICKS_PER_BAR;
use egui::{pos2, Align2, Color32, FontId, Painter, Rect, Stroke};

/// Height of the lane, in points.
pub const LANE_HEIGHT: f32 = 18.0;

const FORCED: Color32 = Color32::from_rgb(255, 214, 120);
const OWN: Color32 = Color32::from_rgb(150, 155, 168);

/// The shown chords: (tick from the roll's left edge, symbol, forced).
pub fn lane_chords<'a>(view: &'a RollView, snapshot: &'a PhraseSnapshot) -> Vec<(i64, &'a str, bool)> {
    let mut out = Vec::new();
    for (column, index) in view.bars.iter().enumerate() {
        for (_, tick, symbol, forced) in snapshot.chords.iter().filter(|c| c.0 == *index) {
            out.push((column as i64 * TICKS_PER_BAR as i64 + *tick as i64, symbol.as_str(), *forced));
        }
    }
    out
}

/// Draws the lane in `rect`; `x_of` maps a tick from the roll's left edge to x.
pub fn chord_lane(
    painter: &Painter,
    rect: Rect,
    view: &RollView,
    snapshot: &PhraseSnapshot,
    x_of: impl Fn(i64) -> f32,
) {
    painter.rect_filled(rect, 2.0, Color32::from_rgb(24, 26, 31));
    let chords = lane_chords(view, snapshot);
    for (i, (tick, symbol, forced)) in chords.iter().enumerate() {
        let x = x_of(*tick);
        // A symbol never runs into the next one.
        let next_x = chords.get(i + 1).map_or(rect.right(), |n| x_of(n.0));
        let colour = if *forced { FORCED } else { OWN };
        painter.line_segment([pos2(x, rect.top() + 2.0), pos2(x, rect.bottom() - 2.0)], Stroke::new(1.0, colour));
        let clip = Rect::from_min_max(pos2(x + 2.0, rect.top()), pos2(next_x - 1.0, rect.bottom()));
        painter.with_clip_rect(clip).text(
            pos2(x + 3.0, rect.center().y),
            Align2::LEFT_CENTER,
            *symbol,
            FontId::proportional(11.0),
            colour,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lane_shows_the_chords_of_the_shown_bars_in_place() {
        let snapshot = PhraseSnapshot {
            bars: Vec::new(),
            chords: vec![(0, 0, "Am".into(), false), (1, 24, "F".into(), true), (7, 0, "G".into(), true)],
        };
        let view = RollView { bars: vec![0, 1], playhead_tick: None, heard_before_tick: 0, looping: true };
        assert_eq!(lane_chords(&view, &snapshot), vec![(0, "Am", false), (72, "F", true)]);
    }
}

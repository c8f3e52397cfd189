//! What a bar does, said in a few tokens: the style of a phrase and, per bar, each part's density,
//! the arp's motion and the bass's drive. The data set measures them from the notes (so the model
//! learns what they mean); the plugin either lets the model pick them (Auto) or forces them.

use super::phrase::{Note, Part};

/// The phrase's style, in the header. New styles are appended (a vocabulary change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Style {
    /// What POP909 is: piano-pop arrangements.
    #[default]
    Pop = 0,
    /// EDM drive: a lead hook on top, a 16th/8th arpeggio, a pulsing or offbeat bass.
    Dance = 1,
}

impl Style {
    pub const ALL: [Style; 2] = [Style::Pop, Style::Dance];

    pub fn name(self) -> &'static str {
        match self {
            Style::Pop => "pop",
            Style::Dance => "dance",
        }
    }
}

/// Lower edges of the density bins, in onsets (distinct start ticks) per bar.
pub const DENSITY_BIN_EDGES: [u32; 8] = [0, 1, 3, 5, 7, 9, 12, 16];
pub const DENSITY_BINS: u8 = DENSITY_BIN_EDGES.len() as u8;

/// The density bin of a bar with `onsets` onsets.
pub fn density_bin(onsets: u32) -> u8 {
    DENSITY_BIN_EDGES.iter().rposition(|&edge| onsets >= edge).unwrap_or(0) as u8
}

/// The onsets a density bin stands for, as a readable range ("5–6", "16+").
pub fn density_bin_label(bin: u8) -> String {
    let bin = bin.min(DENSITY_BINS - 1) as usize;
    let low = DENSITY_BIN_EDGES[bin];
    match DENSITY_BIN_EDGES.get(bin + 1) {
        Some(&next) if next == low + 1 => format!("{low}"),
        Some(&next) => format!("{low}–{}", next - 1),
        None => format!("{low}+"),
    }
}

/// How the arp moves in a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpMotion {
    /// No arp onset.
    Rest = 0,
    /// At least half the onsets are chords (two or more notes).
    Block = 1,
    /// Mostly single notes, fewer than 8 onsets or some chords.
    Broken = 2,
    /// 8 or more onsets, at least 90 % of them single notes.
    Arpeggio = 3,
}

impl ArpMotion {
    pub const ALL: [ArpMotion; 4] = [ArpMotion::Rest, ArpMotion::Block, ArpMotion::Broken, ArpMotion::Arpeggio];

    pub fn name(self) -> &'static str {
        match self {
            ArpMotion::Rest => "rest",
            ArpMotion::Block => "block",
            ArpMotion::Broken => "broken",
            ArpMotion::Arpeggio => "arpeggio",
        }
    }

    /// The arp density bins of bars of this motion: from the lowest such a bar can measure to the
    /// highest with at least 1 % of them in the training data. The density tokens come before the
    /// motion's, so an asked motion narrows an open density to these, or the model would pick a
    /// density the motion rarely or never has.
    pub fn density_bins(self) -> std::ops::RangeInclusive<u8> {
        match self {
            ArpMotion::Rest => 0..=0,
            ArpMotion::Block | ArpMotion::Broken => 1..=density_bin(8),
            ArpMotion::Arpeggio => density_bin(8)..=DENSITY_BINS - 1,
        }
    }
}

/// How the bass drives a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BassDrive {
    /// No bass onset.
    Rest = 0,
    /// One or two onsets: held roots.
    Held = 1,
    /// Three or more onsets, on the beats as much as off them: 8ths, quarters.
    Pulse = 2,
    /// Mostly on the offbeat 8ths (at least twice as many as on the beats).
    Offbeat = 3,
    /// Two or more onsets on odd 16ths, or 9 or more onsets.
    Sixteenths = 4,
}

impl BassDrive {
    pub const ALL: [BassDrive; 5] =
        [BassDrive::Rest, BassDrive::Held, BassDrive::Pulse, BassDrive::Offbeat, BassDrive::Sixteenths];

    pub fn name(self) -> &'static str {
        match self {
            BassDrive::Rest => "rest",
            BassDrive::Held => "held",
            BassDrive::Pulse => "pulse",
            BassDrive::Offbeat => "offbeat",
            BassDrive::Sixteenths => "sixteenths",
        }
    }

    /// The bass density bins of bars of this drive (as `ArpMotion::density_bins`): an offbeat bass
    /// has 3–4 onsets in the data, rarely 1–2 or 5–6; a pulse 3–8.
    pub fn density_bins(self) -> std::ops::RangeInclusive<u8> {
        match self {
            BassDrive::Rest => 0..=0,
            BassDrive::Held => 1..=density_bin(2),
            BassDrive::Pulse => density_bin(3)..=density_bin(8),
            BassDrive::Offbeat => density_bin(2)..=density_bin(6),
            BassDrive::Sixteenths => density_bin(2)..=DENSITY_BINS - 1,
        }
    }
}

/// The control tokens of one bar, in the order they follow its BAR token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarControls {
    /// Density bin per part, indexed by `Part::index`.
    pub density: [u8; 3],
    pub arp_motion: ArpMotion,
    pub bass_drive: BassDrive,
}

/// Control tokens after each BAR.
pub const CONTROLS_PER_BAR: usize = 5;

/// What the producer asks of every bar; None is Auto (the model picks, as it learned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControlChoice {
    /// Density bin per part, indexed by `Part::index`.
    pub density: [Option<u8>; 3],
    pub arp_motion: Option<ArpMotion>,
    pub bass_drive: Option<BassDrive>,
}

impl ControlChoice {
    pub const AUTO: ControlChoice = ControlChoice { density: [None; 3], arp_motion: None, bass_drive: None };

    /// Whether `part` is asked to play: a density above 0, or an arp motion or bass drive but rest.
    pub fn asks_to_play(&self, part: Part) -> bool {
        let density = self.density[part.index()].is_some_and(|bin| bin > 0);
        density
            || match part {
                Part::Lead => false,
                Part::Arp => self.arp_motion.is_some_and(|m| m != ArpMotion::Rest),
                Part::Bass => self.bass_drive.is_some_and(|d| d != BassDrive::Rest),
            }
    }
}

/// Distinct onset ticks of `part` in `notes`, each with how many notes start there.
fn onsets(notes: &[Note], part: Part) -> Vec<(u32, u32)> {
    let mut ticks: Vec<u32> = notes.iter().filter(|n| n.part == part).map(|n| n.start_tick).collect();
    ticks.sort_unstable();
    let mut counted: Vec<(u32, u32)> = Vec::new();
    for tick in ticks {
        match counted.last_mut() {
            Some((last, count)) if *last == tick => *count += 1,
            _ => counted.push((tick, 1)),
        }
    }
    counted
}

impl BarControls {
    /// What the notes of one bar do (ticks relative to the bar start).
    pub fn measure(notes: &[Note]) -> BarControls {
        let density = Part::ALL.map(|part| density_bin(onsets(notes, part).len() as u32));

        let arp = onsets(notes, Part::Arp);
        let arp_chords = arp.iter().filter(|(_, count)| *count >= 2).count();
        let arp_motion = match arp.len() {
            0 => ArpMotion::Rest,
            n if arp_chords * 2 >= n => ArpMotion::Block,
            n if n >= 8 && arp_chords * 10 <= n => ArpMotion::Arpeggio,
            _ => ArpMotion::Broken,
        };

        let bass = onsets(notes, Part::Bass);
        let on_odd_16th = bass.iter().filter(|(tick, _)| tick % 6 == 3).count();
        let on_beat = bass.iter().filter(|(tick, _)| tick % 12 == 0).count();
        let on_offbeat_8th = bass.iter().filter(|(tick, _)| tick % 12 == 6).count();
        let bass_drive = match bass.len() {
            0 => BassDrive::Rest,
            n if on_odd_16th >= 2 || n >= 9 => BassDrive::Sixteenths,
            _ if on_offbeat_8th >= 2 && on_offbeat_8th >= 2 * on_beat => BassDrive::Offbeat,
            n if n >= 3 => BassDrive::Pulse,
            _ => BassDrive::Held,
        };
        BarControls { density, arp_motion, bass_drive }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(part: Part, ticks: &[u32], per_onset: u8) -> Vec<Note> {
        ticks
            .iter()
            .flat_map(|&start_tick| {
                (0..per_onset).map(move |i| Note {
                    start_tick,
                    part,
                    pitch: 48 + 4 * i,
                    duration_ticks: 3,
                    velocity: 80,
                })
            })
            .collect()
    }

    #[test]
    fn a_motion_or_drive_narrows_the_density_only_above_what_it_can_measure() {
        // Every bar of up to 16 onsets on the 16th grid, one or three notes each, drawn by a fixed LCG:
        // the lowest bin of each motion and drive is exact (the highest is the data's, so rarer bars
        // may measure above it).
        let mut state = 12345u64;
        for _ in 0..5000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let grid = (state >> 16) as u16;
            let ticks: Vec<u32> = (0..16).filter(|i| grid & (1 << i) != 0).map(|i| i * 3).collect();
            let per_onset = if (state >> 40).is_multiple_of(3) { 3 } else { 1 };
            let arp = BarControls::measure(&notes(Part::Arp, &ticks, per_onset));
            assert!(arp.density[1] >= *arp.arp_motion.density_bins().start(), "{ticks:?}: {arp:?}");
            let bass = BarControls::measure(&notes(Part::Bass, &ticks, 1));
            assert!(bass.density[2] >= *bass.bass_drive.density_bins().start(), "{ticks:?}: {bass:?}");
        }
        // The Dance rules' own bars are inside: 16th and 8th arpeggios, an 8th pulse, 8th offbeats,
        // a gallop.
        let inside = |part: Part, ticks: &[u32]| {
            let measured = BarControls::measure(&notes(part, ticks, 1));
            match part {
                Part::Arp => measured.arp_motion.density_bins().contains(&measured.density[1]),
                _ => measured.bass_drive.density_bins().contains(&measured.density[2]),
            }
        };
        let every = |step: u32, from: u32| (0..48).filter(move |t| t % step == from).collect::<Vec<u32>>();
        assert!(inside(Part::Arp, &every(3, 0)) && inside(Part::Arp, &every(6, 0)));
        assert!(inside(Part::Bass, &every(6, 0)) && inside(Part::Bass, &every(12, 6)));
        let gallop: Vec<u32> = (0..4).flat_map(|beat| [beat * 12, beat * 12 + 6, beat * 12 + 9]).collect();
        assert!(inside(Part::Bass, &gallop));
    }

    #[test]
    fn density_bins_cover_every_count() {
        assert_eq!(density_bin(0), 0);
        assert_eq!(density_bin(2), 1);
        assert_eq!(density_bin(8), 4);
        assert_eq!(density_bin(16), 7);
        assert_eq!(density_bin(48), 7);
        assert_eq!(density_bin_label(0), "0");
        assert_eq!(density_bin_label(3), "5–6");
        assert_eq!(density_bin_label(7), "16+");
    }

    #[test]
    fn arp_motion_tells_chords_from_broken_chords_from_arpeggios() {
        let sixteenths: Vec<u32> = (0..16).map(|i| i * 3).collect();
        assert_eq!(BarControls::measure(&[]).arp_motion, ArpMotion::Rest);
        assert_eq!(BarControls::measure(&notes(Part::Arp, &[0, 12, 24, 36], 3)).arp_motion, ArpMotion::Block);
        assert_eq!(BarControls::measure(&notes(Part::Arp, &[0, 6, 12, 18], 1)).arp_motion, ArpMotion::Broken);
        assert_eq!(BarControls::measure(&notes(Part::Arp, &sixteenths, 1)).arp_motion, ArpMotion::Arpeggio);
        // Lead notes never count for the arp.
        assert_eq!(BarControls::measure(&notes(Part::Lead, &sixteenths, 1)).arp_motion, ArpMotion::Rest);
    }

    #[test]
    fn bass_drive_tells_held_from_pulse_from_offbeat_from_sixteenths() {
        let drive = |ticks: &[u32]| BarControls::measure(&notes(Part::Bass, ticks, 1)).bass_drive;
        assert_eq!(drive(&[]), BassDrive::Rest);
        assert_eq!(drive(&[0, 24]), BassDrive::Held);
        assert_eq!(drive(&[0, 6, 12, 18, 24, 30, 36, 42]), BassDrive::Pulse);
        assert_eq!(drive(&[6, 18, 30, 42]), BassDrive::Offbeat);
        assert_eq!(drive(&[0, 9, 18, 24, 33, 42]), BassDrive::Sixteenths);
        let density = BarControls::measure(&notes(Part::Bass, &[0, 6, 12, 18, 24, 30, 36, 42], 1)).density;
        assert_eq!(density, [0, 0, 4]);
    }
}

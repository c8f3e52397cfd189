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

//! The Dance style and the per-part controls through the built bundle, set as a host sets them:
//! Style, Arp Motion, Bass Drive and each part's Density change what the parts play, bar by bar.

mod common;

use common::*;
use trio_tests::events::Note;
use trio_tests::RenderMode;

/// Samples per grid tick at the common timeline's 128 BPM and 48 kHz (12 ticks per beat).
const SAMPLES_PER_TICK: u64 = 1875;
const TICKS_PER_BAR: u64 = 48;
const BARS: u64 = 8;
const LEAD: i16 = 0;
const ARP: i16 = 1;
const BASS: i16 = 2;

/// Eight bars, Endless, offline, with `params` set before playing.
fn render(params: &[(&str, &str)]) -> Vec<Note> {
    let mut initial = vec![text("Mode", "Endless"), text("Seed", "9")];
    initial.extend(params.iter().map(|(name, value)| text(name, value)));
    let mut h = host(RenderMode::Offline, initial);
    let mut tl = timeline();
    tl.play_bars(BARS as f64);
    tl.stop_blocks(1);
    let r = run(&mut h, &tl.take());
    let a = assert_clean(&format!("{params:?}"), &r, true);
    assert!(!a.notes.is_empty(), "{params:?}: no notes");
    a.notes
}

/// Per bar: each onset tick of `channel` (from the bar's start) with how many notes start there.
fn onsets_by_bar(notes: &[Note], channel: i16) -> Vec<Vec<(u64, usize)>> {
    let mut bars = vec![Vec::<(u64, usize)>::new(); BARS as usize];
    for note in notes.iter().filter(|n| n.channel == channel) {
        let tick = note.start / SAMPLES_PER_TICK;
        let Some(bar) = bars.get_mut((tick / TICKS_PER_BAR) as usize) else { continue };
        match bar.iter_mut().find(|(t, _)| *t == tick % TICKS_PER_BAR) {
            Some(onset) => onset.1 += 1,
            None => bar.push((tick % TICKS_PER_BAR, 1)),
        }
    }
    bars
}

/// Share of bars where `keep` holds.
fn share(bars: &[Vec<(u64, usize)>], keep: impl Fn(&[(u64, usize)]) -> bool) -> f64 {
    bars.iter().filter(|b| keep(b)).count() as f64 / bars.len() as f64
}

/// An arpeggio bar as the controls measure it: 8 or more onsets, at least 90 % of them single notes.
fn arpeggio(bar: &[(u64, usize)]) -> bool {
    let chords = bar.iter().filter(|(_, n)| *n >= 2).count();
    bar.len() >= 8 && chords * 10 <= bar.len()
}

/// An offbeat bass bar: two or more onsets on the offbeat 8ths, at least twice as many as on the beats.
fn offbeat(bar: &[(u64, usize)]) -> bool {
    let on_offbeat = bar.iter().filter(|(t, _)| t % 12 == 6).count();
    let on_beat = bar.iter().filter(|(t, _)| t % 12 == 0).count();
    on_offbeat >= 2 && on_offbeat >= 2 * on_beat
}

/// Of the lead notes that start while an arp note sounds, the share above every such arp note.
fn lead_on_top(notes: &[Note]) -> f64 {
    let sounding = |n: &Note, at: u64| n.start <= at && n.end.is_none_or(|end| at < end);
    let (mut above, mut total) = (0, 0);
    for lead in notes.iter().filter(|n| n.channel == LEAD) {
        let under: Vec<&Note> = notes.iter().filter(|n| n.channel == ARP && sounding(n, lead.start)).collect();
        if !under.is_empty() {
            total += 1;
            above += under.iter().all(|arp| arp.key < lead.key) as usize;
        }
    }
    above as f64 / total.max(1) as f64
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn dance_with_an_arpeggio_and_an_offbeat_bass_plays_them_with_the_lead_on_top() {
    let dance = render(&[("Style", "Dance"), ("Arp Motion", "Arpeggio"), ("Bass Drive", "Offbeat")]);
    let arp = onsets_by_bar(&dance, ARP);
    let bass = onsets_by_bar(&dance, BASS);
    let (arpeggios, offbeats) = (share(&arp, arpeggio), share(&bass, offbeat));
    assert!(arpeggios >= 0.5, "Arp Motion Arpeggio: {arpeggios:.2} of bars are arpeggios: {arp:?}");
    assert!(offbeats >= 0.5, "Bass Drive Offbeat: {offbeats:.2} of bars are offbeat: {bass:?}");
    let on_top = lead_on_top(&dance);
    assert!(on_top >= 0.9, "Dance: the lead is above the arp for {on_top:.2} of its notes");

    // The same seed in Pop with every control on Auto plays neither.
    let pop = render(&[]);
    let pop_arpeggios = share(&onsets_by_bar(&pop, ARP), arpeggio);
    let pop_offbeats = share(&onsets_by_bar(&pop, BASS), offbeat);
    assert!(pop_arpeggios < arpeggios, "Pop plays as many arpeggio bars ({pop_arpeggios:.2}) as asked Dance");
    assert!(pop_offbeats < offbeats, "Pop plays as many offbeat bass bars ({pop_offbeats:.2}) as asked Dance");
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn lead_density_asks_for_fewer_or_more_notes() {
    // By the parameter's id-like name and by its text, as trio-render's --param takes them.
    let mean_onsets = |notes: &[Note]| {
        let bars = onsets_by_bar(notes, LEAD);
        bars.iter().map(Vec::len).sum::<usize>() as f64 / bars.len() as f64
    };
    let sparse = mean_onsets(&render(&[("Style", "Dance"), ("lead_density", "1–2 notes")]));
    let dense = mean_onsets(&render(&[("Style", "Dance"), ("Lead Density", "9")]));
    assert!(sparse <= 3.0, "Lead Density 1–2: {sparse:.1} lead onsets per bar");
    assert!(dense >= 6.0, "Lead Density 9–11: {dense:.1} lead onsets per bar");
}

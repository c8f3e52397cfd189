"""Texture and coherence figures of a phrase: what a dance producer hears first (how busy and how high
the lead is, whether it repeats, syncopation, arpeggio motion, bass pulse) and how the parts sit
together (clashes, the lead above the arp, notes outside the key). Part of `cargo xtask eval`'s
report; the Dance style is judged by these.

Every function takes one phrase's notes as the [n, 5] array of eval_metrics ([tick, part, pitch,
duration, velocity]) on the 12-ticks-per-beat grid.
"""

import numpy as np

from eval_metrics import TICKS_PER_BAR, TICKS_PER_BEAT, scale_mask

LEAD, ARP, BASS = 0, 1, 2
SIXTEENTH = TICKS_PER_BEAT // 4
HIGH_LEAD_PITCH = 84  # C6
ARP_DRIVE_ONSETS = 8  # onsets per bar of an arpeggio
BASS_PULSE_ONSETS = 4  # onsets per bar of a pulsing bass
CLASH_INTERVALS = (1, 11)  # minor 2nd and major 7th (and their octaves)

# (key, title, how the phrase figures combine over a set: "mean" of per-phrase values, or "share" of
# phrases where it holds)
TEXTURE = [
    ("lead_notes_per_bar", "lead notes per bar", "mean"),
    ("lead_silent_beats", "lead beats with nothing sounding", "mean"),
    ("lead_rhythm_repeats", "lead rhythm repeated two bars later (share of phrases)", "share"),
    ("lead_median_pitch", "lead median pitch", "mean"),
    ("lead_high_share", "lead notes at C6 or above", "mean"),
    ("odd_16ths_lead", "lead onsets on odd 16ths", "mean"),
    ("odd_16ths_arp", "arp onsets on odd 16ths", "mean"),
    ("odd_16ths_bass", "bass onsets on odd 16ths", "mean"),
    ("arp_drive_bars", "arp bars with 8+ onsets", "mean"),
    ("arp_chord_onsets", "arp onsets that are chords (2+ notes)", "mean"),
    ("bass_pulse_bars", "bass bars with 4+ onsets", "mean"),
    ("clash_rate", "minor-2nd / major-7th pairs between parts", "mean"),
    ("lead_above_arp", "lead notes above the arp's top note", "mean"),
    ("lead_out_of_key", "lead notes outside the key", "mean"),
    ("lead_empty", "phrases with no lead (share)", "share"),
]

# The Dance style's targets (issue #11: Style Dance, controls on Auto, temperature 1, 8-bar phrases).
DANCE_TARGETS = {
    "lead_notes_per_bar": "≥ 4.5",
    "lead_silent_beats": "≤ 0.03",
    "lead_rhythm_repeats": "≥ 0.50",
    "lead_median_pitch": "≥ 76",
    "odd_16ths_lead": "≥ 0.12",
    "odd_16ths_arp": "≥ 0.15 (arp or bass)",
    "odd_16ths_bass": "≥ 0.15 (arp or bass)",
    "arp_drive_bars": "≥ 0.60 (motion Arpeggio)",
    "bass_pulse_bars": "≥ 0.70 (drive at its default)",
    "clash_rate": "≤ 0.015 (both styles)",
    "lead_above_arp": "≥ 0.95",
    "lead_out_of_key": "≤ 0.015 (both styles)",
    "lead_empty": "0",
}


def _part(notes, part):
    return notes[notes[:, 1] == part] if len(notes) else np.zeros((0, 5), dtype=int)


def onsets_per_bar(notes, part, bars):
    """Distinct onset ticks of `part` in each bar."""
    own = _part(notes, part)
    counts = np.zeros(bars, dtype=int)
    for tick in np.unique(own[:, 0]):
        bar = int(tick // TICKS_PER_BAR)
        if bar < bars:
            counts[bar] += 1
    return counts


def odd_sixteenth_share(notes, part):
    """Share of a part's onsets on the 2nd and 4th 16th of a beat (NaN without onsets)."""
    ticks = np.unique(_part(notes, part)[:, 0])
    return float(np.mean(ticks % (2 * SIXTEENTH) == SIXTEENTH)) if len(ticks) else np.nan


def silent_beats(notes, part, bars):
    """Share of the phrase's beats in which the part sounds nothing at all."""
    own = _part(notes, part)
    beats = bars * TICKS_PER_BAR // TICKS_PER_BEAT
    sounding = np.zeros(beats, dtype=bool)
    for start, _, _, duration, _ in own:
        first = int(start // TICKS_PER_BEAT)
        last = int((start + max(duration, 1) - 1) // TICKS_PER_BEAT)
        sounding[first : min(last, beats - 1) + 1] = True
    return float(1 - sounding.mean()) if beats else np.nan


def rhythm_repeats(notes, part, bars):
    """Whether at least half of the bar pairs (b, b + 2) in which the part plays have the same onset
    positions (NaN with fewer than two such pairs)."""
    own = _part(notes, part)
    patterns = [frozenset(int(t % TICKS_PER_BAR) for t in own[:, 0] if t // TICKS_PER_BAR == b) for b in range(bars)]
    pairs = [(patterns[b], patterns[b + 2]) for b in range(bars - 2) if patterns[b] and patterns[b + 2]]
    if len(pairs) < 2:
        return np.nan
    return float(np.mean([a == b for a, b in pairs]) >= 0.5)


def sounding_at(notes, tick):
    """Notes sounding at `tick` (started at or before it, not yet ended)."""
    return notes[(notes[:, 0] <= tick) & (notes[:, 0] + notes[:, 3] > tick)]


def clash_rate(notes):
    """At each onset, every pair of a new note and a note of another part sounding with it: the share of
    those pairs a minor 2nd or major 7th apart (any octave)."""
    pairs = clashes = 0
    for note in notes:
        others = sounding_at(notes, note[0])
        others = others[others[:, 1] != note[1]]
        # A pair of two new notes is counted once, from the note of the lower part number.
        others = others[~((others[:, 0] == note[0]) & (others[:, 1] < note[1]))]
        intervals = np.abs(others[:, 2] - note[2]) % 12
        pairs += len(intervals)
        clashes += int(np.isin(intervals, CLASH_INTERVALS).sum())
    return clashes / pairs if pairs else np.nan


def lead_above_arp(notes):
    """Share of lead notes, among those with an arp note sounding at their onset, that are higher than
    every such arp note."""
    lead, arp = _part(notes, LEAD), _part(notes, ARP)
    above = total = 0
    for note in lead:
        under = sounding_at(arp, note[0])
        if len(under):
            total += 1
            above += int(note[2] > under[:, 2].max())
    return above / total if total else np.nan


def texture(notes, bars, key_index):
    """Every texture figure of one phrase (NaN where a figure has nothing to count)."""
    lead = _part(notes, LEAD)
    tonic, minor = key_index % 12, key_index >= 12
    in_key = scale_mask(tonic, minor)
    return {
        "lead_notes_per_bar": len(lead) / bars,
        "lead_silent_beats": silent_beats(notes, LEAD, bars),
        "lead_rhythm_repeats": rhythm_repeats(notes, LEAD, bars),
        "lead_median_pitch": float(np.median(lead[:, 2])) if len(lead) else np.nan,
        "lead_high_share": float(np.mean(lead[:, 2] >= HIGH_LEAD_PITCH)) if len(lead) else np.nan,
        "odd_16ths_lead": odd_sixteenth_share(notes, LEAD),
        "odd_16ths_arp": odd_sixteenth_share(notes, ARP),
        "odd_16ths_bass": odd_sixteenth_share(notes, BASS),
        "arp_drive_bars": float(np.mean(onsets_per_bar(notes, ARP, bars) >= ARP_DRIVE_ONSETS)),
        "arp_chord_onsets": arp_chord_onsets(notes),
        "bass_pulse_bars": float(np.mean(onsets_per_bar(notes, BASS, bars) >= BASS_PULSE_ONSETS)),
        "clash_rate": clash_rate(notes),
        "lead_above_arp": lead_above_arp(notes),
        "lead_out_of_key": float(np.mean(~in_key[lead[:, 2] % 12])) if len(lead) else np.nan,
        "lead_empty": float(len(lead) == 0),
    }


def arp_chord_onsets(notes):
    """Share of the arp's onsets where two or more arp notes start together."""
    ticks = _part(notes, ARP)[:, 0]
    if not len(ticks):
        return np.nan
    _, counts = np.unique(ticks, return_counts=True)
    return float(np.mean(counts >= 2))


def summarize(phrases):
    """Means (or shares) of every texture figure over a PhraseSet, with the phrases counted."""
    rows = [texture(notes, phrases.bars, item["key"]) for item, notes in zip(phrases.items, phrases.notes)]
    out = {}
    for key, _, _ in TEXTURE:
        values = np.array([r[key] for r in rows], dtype=float)
        ok = values[~np.isnan(values)]
        out[key] = float(ok.mean()) if len(ok) else None
    out["phrases"] = len(rows)
    return out

"""Texture and coherence figures of a phrase: what a dance producer hears first (how busy and how high
the lead is, whether it repeats, syncopation, arpeggio motion, bass pulse) and how the parts sit
together (clashes, chord tones on beats 1 and 3, the lead above the arp, notes outside the key). Part
of `cargo xtask eval`'s report; the Dance style is judged by these, against DANCE_TARGETS (issue #11),
each a (comparison, value) that `check_target` says is met or missed by how much.

Also here: the bar controls measured from the notes with the data set's rules (`measure_bar`, as
plugin/src/music/controls.rs's `BarControls::measure`), and `adherence`: what the model did when a
control was asked.

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

# (key, title, how the phrase figures combine over a set: "mean" of per-phrase values, "share" of
# phrases where it holds, or "max" of the set figures named in TEXTURE_MAX)
TEXTURE = [
    ("lead_notes_per_bar", "lead notes per bar", "mean"),
    ("lead_silent_beats", "lead beats with nothing sounding", "mean"),
    ("lead_rhythm_repeats", "lead rhythm repeated two bars later (share of phrases)", "share"),
    ("lead_median_pitch", "lead median pitch", "mean"),
    ("lead_high_share", "lead notes at C6 or above", "mean"),
    ("odd_16ths_lead", "lead onsets on odd 16ths", "mean"),
    ("odd_16ths_arp", "arp onsets on odd 16ths", "mean"),
    ("odd_16ths_bass", "bass onsets on odd 16ths", "mean"),
    ("odd_16ths_arp_or_bass", "arp or bass onsets on odd 16ths (the higher)", "max"),
    ("arp_drive_bars", "arp bars with 8+ onsets", "mean"),
    ("arp_chord_onsets", "arp onsets that are chords (2+ notes)", "mean"),
    ("arp_single_onsets", "arp onsets of a single note", "mean"),
    ("bass_pulse_bars", "bass bars with 4+ onsets", "mean"),
    ("clash_rate", "minor-2nd / major-7th pairs between parts", "mean"),
    ("chord_tone_strong", "notes on beats 1 and 3 that are chord tones (all parts)", "mean"),
    ("lead_above_arp", "lead notes above the arp's top note", "mean"),
    ("lead_out_of_key", "lead notes outside the key", "mean"),
    ("lead_empty", "phrases with no lead (share)", "share"),
    ("part_empty", "phrases with a part silent in every bar (share)", "share"),
]
TEXTURE_MAX = {"odd_16ths_arp_or_bass": ("odd_16ths_arp", "odd_16ths_bass")}

# The Dance style's targets (issue #11: Style Dance, controls on Auto, temperature 1, 8-bar phrases,
# 200 seeds), as figure key → (comparison, value). Most are judged on Dance T=1; those in
# TARGET_SETTING on another setting; those in BOTH_STYLES on Pop T=1 as well.
DANCE_TARGETS = {
    "lead_notes_per_bar": (">=", 4.5),
    "lead_silent_beats": ("<=", 0.03),
    "lead_rhythm_repeats": (">=", 0.50),
    "lead_median_pitch": (">=", 76),
    "lead_above_arp": (">=", 0.95),
    "odd_16ths_lead": (">=", 0.12),
    "odd_16ths_arp_or_bass": (">=", 0.15),
    "arp_drive_bars": (">=", 0.60),
    "arp_single_onsets": (">=", 0.90),
    "bass_pulse_bars": (">=", 0.70),
    "clash_rate": ("<=", 0.015),
    "lead_out_of_key": ("<=", 0.015),
    "part_empty": ("==", 0),
    "density_adherence": (">=", 0.80),
}
# Targets judged on another setting than Dance T=1: key → (the setting, in words).
TARGET_SETTING = {
    "arp_drive_bars": "arp motion Arpeggio asked",
    "arp_single_onsets": "arp motion Arpeggio asked",
    "density_adherence": "density asked (every density setting, bars pooled), measured bin within ±1",
}
BOTH_STYLES = ("clash_rate", "lead_out_of_key", "part_empty")
# Pop style, at T = 1 against held-out POP909: the worst classifier's accuracy (goal 0.65).
POP_CLASSIFIER_LIMIT = ("<", 0.88)
OPS = {">=": "≥", "<=": "≤", "==": "=", "<": "<", ">": ">"}


def _short(x):
    return f"{x:.3g}"


def check_target(target, figure):
    """(met, words) of a figure against a target (comparison, value): "met", "missed by X" (how far the
    figure is from the value), or "not measured" for a missing figure."""
    op, value = target
    if figure is None or (isinstance(figure, float) and np.isnan(figure)):
        return False, "not measured"
    gap = {">=": value - figure, ">": value - figure, "<=": figure - value, "<": figure - value,
           "==": abs(figure - value)}[op]
    met = {">=": figure >= value, ">": figure > value, "<=": figure <= value, "<": figure < value,
           "==": figure == value}[op]
    return bool(met), "met" if met else f"missed by {_short(max(gap, 0))}"


def target_text(target):
    op, value = target
    return f"{OPS[op]} {_short(value)}"


# ------------------------------------------------------------------------------------ bar controls
# The rules of plugin/src/music/controls.rs (`BarControls::measure`), once in Python.

DENSITY_BIN_EDGES = (0, 1, 3, 5, 7, 9, 12, 16)  # lower edges, onsets (distinct start ticks) per bar
ARP_MOTIONS = ("rest", "block", "broken", "arpeggio")
BASS_DRIVES = ("rest", "held", "pulse", "offbeat", "sixteenths")


def density_bin(onsets):
    """The density bin of a bar with `onsets` onsets."""
    return int(np.searchsorted(DENSITY_BIN_EDGES, onsets, side="right") - 1)


def _onsets(notes, part):
    """Distinct onset ticks of `part` and how many notes start at each."""
    return np.unique(_part(notes, part)[:, 0], return_counts=True)


def measure_bar(notes):
    """What one bar's notes (ticks from the bar start) do, as the data set's control tokens say it:
    {"density": [bin per part], "arp_motion": name, "bass_drive": name}."""
    density = [density_bin(len(_onsets(notes, part)[0])) for part in (LEAD, ARP, BASS)]
    _, counts = _onsets(notes, ARP)
    n, chords = len(counts), int(np.sum(counts >= 2))
    if n == 0:
        motion = "rest"
    elif chords * 2 >= n:
        motion = "block"
    elif n >= 8 and chords * 10 <= n:
        motion = "arpeggio"
    else:
        motion = "broken"
    ticks, _ = _onsets(notes, BASS)
    n = len(ticks)
    odd_16th = int(np.sum(ticks % 6 == 3))
    on_beat = int(np.sum(ticks % 12 == 0))
    offbeat_8th = int(np.sum(ticks % 12 == 6))
    if n == 0:
        drive = "rest"
    elif odd_16th >= 2 or n >= 9:
        drive = "sixteenths"
    elif offbeat_8th >= 2 and offbeat_8th >= 2 * on_beat:
        drive = "offbeat"
    elif n >= 3:
        drive = "pulse"
    else:
        drive = "held"
    return {"density": density, "arp_motion": motion, "bass_drive": drive}


def bar_notes(notes, bar):
    """The notes starting in `bar`, their ticks from the bar start."""
    inside = notes[(notes[:, 0] >= bar * TICKS_PER_BAR) & (notes[:, 0] < (bar + 1) * TICKS_PER_BAR)].copy() \
        if len(notes) else np.zeros((0, 5), dtype=int)
    inside[:, 0] -= bar * TICKS_PER_BAR
    return inside


def measure_phrase(notes, bars):
    """`measure_bar` of every bar of a phrase."""
    return [measure_bar(bar_notes(notes, b)) for b in range(bars)]


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


def chord_tone_strong(notes, chords):
    """Share of the notes (all parts) starting on beats 1 and 3 whose pitch class is a tone of the chord
    sounding then; `chords` rows [start_tick, root, tone mask (0: no chord)], sorted. Notes under no
    chord are left out; NaN when none is left."""
    if not len(chords) or not len(notes):
        return np.nan
    starts = np.array([c[0] for c in chords])
    masks = np.array([c[2] for c in chords], dtype=int)
    strong = notes[notes[:, 0] % (2 * TICKS_PER_BEAT) == 0]
    at = np.searchsorted(starts, strong[:, 0], side="right") - 1
    keep = at >= 0
    strong, at = strong[keep], at[keep]
    mask = masks[at]
    strong, mask = strong[mask != 0], mask[mask != 0]
    if not len(strong):
        return np.nan
    return float(np.mean((mask >> (strong[:, 2] % 12)) & 1))


def texture(notes, bars, key_index, chords=()):
    """Every texture figure of one phrase (NaN where a figure has nothing to count). `chords`: the
    chords under it (rows [start_tick, root, tone mask]), or none."""
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
        "arp_single_onsets": 1 - arp_chord_onsets(notes),
        "bass_pulse_bars": float(np.mean(onsets_per_bar(notes, BASS, bars) >= BASS_PULSE_ONSETS)),
        "clash_rate": clash_rate(notes),
        "chord_tone_strong": chord_tone_strong(notes, chords),
        "lead_above_arp": lead_above_arp(notes),
        "lead_out_of_key": float(np.mean(~in_key[lead[:, 2] % 12])) if len(lead) else np.nan,
        "lead_empty": float(len(lead) == 0),
        "part_empty": float(any(not len(_part(notes, p)) for p in (LEAD, ARP, BASS))),
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
    rows = [texture(notes, phrases.bars, item["key"], item.get("chords", ()))
            for item, notes in zip(phrases.items, phrases.notes)]
    out = {}
    for key, _, how in TEXTURE:
        if how == "max":
            continue
        values = np.array([r[key] for r in rows], dtype=float)
        ok = values[~np.isnan(values)]
        out[key] = float(ok.mean()) if len(ok) else None
    for key, keys in TEXTURE_MAX.items():
        known = [out[k] for k in keys if out[k] is not None]
        out[key] = max(known) if known else None
    out["phrases"] = len(rows)
    return out


# ------------------------------------------------------------------------------------ adherence


def adherence(phrases, asked):
    """What the model did when asked for bar controls: `asked` as xtask writes a setting's controls
    ({"density": [bin or None per part], "arp_motion": name or None, "bass_drive": name or None}),
    over every bar of the PhraseSet `phrases`. Shares of bars (pooled over phrases): density, the
    measured bin within ±1 of the asked one (and exactly it); arp motion and bass drive, the measured
    one equal to the asked one; for Arpeggio also the bars with 8+ arp onsets and the single-note
    share of the arp's onsets; for a bass drive the bars with 4+ bass onsets. "written" is the share
    of bars whose control tokens say what was asked (the composer forces them: 1 unless broken)."""
    bars = phrases.bars
    measured, written = [], []
    arp_onsets = bass_onsets = 0
    drive_bars = pulse_bars = 0
    single = total = 0
    for item, notes in zip(phrases.items, phrases.notes):
        measured += measure_phrase(notes, bars)
        written += item.get("bar_controls", [])[:bars]
        arp_counts = onsets_per_bar(notes, ARP, bars)
        drive_bars += int(np.sum(arp_counts >= ARP_DRIVE_ONSETS))
        pulse_bars += int(np.sum(onsets_per_bar(notes, BASS, bars) >= BASS_PULSE_ONSETS))
        _, counts = _onsets(notes, ARP)
        single += int(np.sum(counts == 1))
        total += len(counts)
        arp_onsets += int(arp_counts.sum())
        bass_onsets += int(onsets_per_bar(notes, BASS, bars).sum())
    n = len(measured)
    out = {"bars": n, "phrases": len(phrases.items), "rows": []}
    if not n:
        return out

    def share(flags):
        return float(np.mean(flags)) if len(flags) else np.nan

    for p, part in enumerate(("lead", "arp", "bass")):
        want = asked.get("density", [None] * 3)[p]
        if want is None:
            continue
        bins = np.array([m["density"][p] for m in measured])
        out["rows"].append({
            "control": f"{part} density", "asked": int(want), "kind": "density",
            "adherence": share(np.abs(bins - want) <= 1), "exact": share(bins == want),
            "mean_bin": float(bins.mean()),
            "written": share([w["density"][p] == want for w in written]),
        })
    if asked.get("arp_motion"):
        want = asked["arp_motion"]
        row = {"control": "arp motion", "asked": want, "kind": "arp_motion",
               "adherence": share([m["arp_motion"] == want for m in measured]),
               "written": share([w["arp_motion"] == want for w in written]),
               "drive_bars": drive_bars / n, "single_onsets": single / total if total else np.nan,
               "onsets_per_bar": arp_onsets / n}
        out["rows"].append(row)
    if asked.get("bass_drive"):
        want = asked["bass_drive"]
        out["rows"].append({"control": "bass drive", "asked": want, "kind": "bass_drive",
                            "adherence": share([m["bass_drive"] == want for m in measured]),
                            "written": share([w["bass_drive"] == want for w in written]),
                            "pulse_bars": pulse_bars / n, "onsets_per_bar": bass_onsets / n})
    return out


def auto_agreement(phrases):
    """Under Auto: how often the notes do what the model's own control tokens said (shares of bars):
    density within ±1 per part, arp motion, bass drive."""
    pairs = []
    for item, notes in zip(phrases.items, phrases.notes):
        pairs += zip(item.get("bar_controls", [])[:phrases.bars], measure_phrase(notes, phrases.bars))
    if not pairs:
        return None
    out = {"bars": len(pairs)}
    for p, part in enumerate(("lead", "arp", "bass")):
        ok = [abs(m["density"][p] - w["density"][p]) <= 1 for w, m in pairs if w["density"][p] is not None]
        out[f"{part}_density"] = float(np.mean(ok)) if ok else np.nan
    for key in ("arp_motion", "bass_drive"):
        ok = [m[key] == w[key] for w, m in pairs if w[key] is not None]
        out[key] = float(np.mean(ok)) if ok else np.nan
    return out

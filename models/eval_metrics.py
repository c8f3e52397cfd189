"""Per-phrase metrics for models/eval.py: the numbers measured on one phrase, before any statistics.

Every phrase is a list of notes [start_tick, part, pitch, duration_ticks, velocity] on a grid of
12 ticks per beat, 4/4, `bars` bars long (notes may ring past the end; they are cut there). The
metrics, per part (lead, arp, bass), follow MusPy's definitions where MusPy has one:

- scale consistency: the largest share of notes inside one major scale (natural minors are the same
  sets); pitch-class entropy: Shannon entropy (bits) of the pitch-class histogram; groove
  consistency: 1 - mean Hamming distance between consecutive bars' onset patterns (48 grid slots);
  empty-beat rate: share of beats in which no note of the part sounds; polyphony: mean number of
  sounding notes over the ticks where at least one sounds; note density: onsets per bar; pitch
  range: highest - lowest pitch (semitones);
- in-key rate: share of notes in the scale of the phrase's key (the header key: chosen by the model
  with key lock off, forced with it on; the annotated key for real music; natural minor for minor);
  register compliance: share of notes inside the plugin's default register for the part.

A metric that needs notes (or two bars, or two onsets) is undefined (NaN) for a phrase without
them and is left out of that metric's mean.

Chord-tone ratio (jamming): share of a part's notes whose pitch class is a tone of the chord sounding
at their onset (the annotated chords for real music, the forced ones for generated phrases), on the
beat (strong) and between the beats (weak); notes under "no chord" are left out.

Also here: the Yang & Lerch (2018) features, the classifier's feature vector and the mood features
of one phrase, which eval_stats.py compares across sets.
"""

import numpy as np
from scipy import stats
from scipy.spatial.distance import hamming

TICKS_PER_BEAT = 12
BEATS_PER_BAR = 4
TICKS_PER_BAR = TICKS_PER_BEAT * BEATS_PER_BAR
PARTS = ("lead", "arp", "bass")
MAJOR_STEPS = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR_STEPS = np.array([0, 2, 3, 5, 7, 8, 10])
# Krumhansl-Kessler key profiles (Krumhansl 1990), tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Row t: the major (rows 0-11) or minor (12-23) profile with its tonic on pitch class t.
KK_ROTATIONS = np.array([np.roll(KK_MAJOR, t) for t in range(12)] + [np.roll(KK_MINOR, t) for t in range(12)])
MOODS = ("happy", "sad", "calm", "tense")
# What the labels mean (BrainMusic rule, as the dataset applies it): mode and tempo feel.
MOOD_MINOR = {"happy": False, "sad": True, "calm": False, "tense": True}
MOOD_FAST = {"happy": True, "sad": False, "calm": False, "tense": True}
# A phrase counts as a copy when it shares a run of this many notes with a training song.
COPY_RUN_NOTES = 16

METRICS = [
    # key, title
    ("scale_consistency", "scale consistency"),
    ("pitch_class_entropy", "pitch-class entropy (bits)"),
    ("groove_consistency", "groove consistency"),
    ("empty_beat_rate", "empty-beat rate"),
    ("polyphony", "polyphony"),
    ("note_density", "note density (notes/bar)"),
    ("pitch_range", "pitch range (semitones)"),
    ("in_key_rate", "in-key rate"),
    ("register_compliance", "register compliance"),
]
# Compared with the real-vs-real band (register compliance is a plugin guarantee, not a style).
BAND_METRICS = [m for m, _ in METRICS if m != "register_compliance"]
METRIC_TITLES = dict(METRICS)

# Yang & Lerch inter-onset classes in grid ticks: 16th-triplet, 16th, 8th-triplet, 8th, dotted 8th,
# quarter, ... bar+.
IOI_BINS = np.array([0, 2.5, 3.5, 5, 7, 10, 15, 21, 30, 42, 60, 10**6])
YL_PITCH = ("used_pitches", "pitch_range", "pitch_interval", "pitch_class_histogram")
YL_IOI = ("note_count", "ioi", "ioi_histogram")
YL_FEATURES = YL_PITCH + YL_IOI


# --------------------------------------------------------------------------------------------- metrics


def scale_mask(tonic, minor):
    steps = MINOR_STEPS if minor else MAJOR_STEPS
    mask = np.zeros(12, dtype=bool)
    mask[(tonic + steps) % 12] = True
    return mask


def scale_consistency(pitches):
    """Largest share of notes inside one major scale (the 12 major scales hold every natural minor)."""
    pitches = np.asarray(pitches, dtype=int)
    if pitches.size == 0:
        return np.nan
    pcs = pitches % 12
    return max(float(scale_mask(t, False)[pcs].mean()) for t in range(12))


def pitch_class_entropy(pitches):
    pitches = np.asarray(pitches, dtype=int)
    if pitches.size == 0:
        return np.nan
    return float(stats.entropy(np.bincount(pitches % 12, minlength=12), base=2))


def groove_consistency(starts, bars):
    """1 - mean normalized Hamming distance between consecutive bars' onset patterns."""
    starts = np.asarray(starts, dtype=int)
    if starts.size == 0 or bars < 2:
        return np.nan
    starts = starts[starts < bars * TICKS_PER_BAR]
    patterns = np.zeros((bars, TICKS_PER_BAR), dtype=bool)
    patterns[starts // TICKS_PER_BAR, starts % TICKS_PER_BAR] = True
    return 1.0 - float(np.mean([hamming(patterns[i], patterns[i + 1]) for i in range(bars - 1)]))


def sounding_counts(starts, durations, bars, pitches=None):
    """Number of distinct pitches sounding at each tick of the phrase (notes cut at its end), from a
    piano roll as MusPy builds it: a pitch struck again while it still sounds counts once."""
    length = bars * TICKS_PER_BAR
    starts = np.asarray(starts, dtype=int)
    ends = np.minimum(starts + np.asarray(durations, dtype=int), length)
    pitches = np.arange(len(starts)) if pitches is None else np.asarray(pitches, dtype=int)
    roll = np.zeros((128 if len(pitches) == 0 else max(128, pitches.max() + 1), length), dtype=bool)
    for start, end, pitch in zip(starts, ends, pitches):
        roll[pitch, start:end] = True
    return roll.sum(axis=0)


def empty_beat_rate(starts, durations, bars):
    """Share of beats in which no note sounds."""
    counts = sounding_counts(starts, durations, bars)
    beats = counts.reshape(bars * BEATS_PER_BAR, TICKS_PER_BEAT)
    return float(np.mean(beats.max(axis=1) == 0))


def polyphony(starts, durations, bars, pitches=None):
    """Mean number of sounding pitches over the ticks where at least one sounds."""
    counts = sounding_counts(starts, durations, bars, pitches)
    if not np.any(counts > 0):
        return np.nan
    return float(counts[counts > 0].mean())


def note_density(starts, bars):
    return len(starts) / bars


def pitch_range(pitches):
    pitches = np.asarray(pitches, dtype=int)
    return float(pitches.max() - pitches.min()) if pitches.size else np.nan


def in_key_rate(pitches, key_index):
    pitches = np.asarray(pitches, dtype=int)
    if pitches.size == 0:
        return np.nan
    return float(scale_mask(key_index % 12, key_index >= 12)[pitches % 12].mean())


def register_compliance(pitches, register):
    pitches = np.asarray(pitches, dtype=int)
    if pitches.size == 0:
        return np.nan
    return float(np.mean((pitches >= register[0]) & (pitches <= register[1])))


def mean_ioi_beats(starts):
    """Mean distance between consecutive distinct onsets, in beats."""
    onsets = np.unique(np.asarray(starts, dtype=int))
    return float(np.diff(onsets).mean() / TICKS_PER_BEAT) if onsets.size >= 2 else np.nan


def mode_correlations(pitches, durations):
    """(best major r, best minor r) of the duration-weighted pitch-class profile with the 12
    rotations of the Krumhansl-Kessler major and minor profiles."""
    pitches = np.asarray(pitches, dtype=int)
    if pitches.size == 0:
        return np.nan, np.nan
    profile = np.bincount(pitches % 12, weights=np.asarray(durations, dtype=float), minlength=12)
    if np.ptp(profile) == 0:
        return np.nan, np.nan
    r = np.corrcoef(np.vstack([profile, KK_ROTATIONS]))[0, 1:]
    major, minor = r[:12].max(), r[12:].max()
    return float(major), float(minor)


def part_metrics(notes, part, bars, key_index, register):
    """Every per-part metric of one phrase. `notes`: array [n, 5] of [tick, part, pitch, dur, vel]."""
    own = notes[notes[:, 1] == part] if len(notes) else np.zeros((0, 5), dtype=int)
    starts, pitches, durations = own[:, 0], own[:, 2], own[:, 3]
    return {
        "scale_consistency": scale_consistency(pitches),
        "pitch_class_entropy": pitch_class_entropy(pitches),
        "groove_consistency": groove_consistency(starts, bars),
        "empty_beat_rate": empty_beat_rate(starts, durations, bars),
        "polyphony": polyphony(starts, durations, bars, pitches),
        "note_density": note_density(starts, bars),
        "pitch_range": pitch_range(pitches),
        "in_key_rate": in_key_rate(pitches, key_index),
        "register_compliance": register_compliance(pitches, register),
    }


def chord_tone_counts(notes, chords, part):
    """(tones on the beat, notes on the beat, tones between beats, notes between beats) of one part.

    `chords`: rows [start_tick, root, tone mask (12-bit; 0 for no chord)], sorted by start."""
    counts = np.zeros(4, dtype=int)
    if not len(chords):
        return counts
    starts = np.array([c[0] for c in chords])
    for start, p, pitch, _, _ in notes:
        if p != part:
            continue
        i = np.searchsorted(starts, start, side="right") - 1
        if i < 0 or chords[i][2] == 0:
            continue
        tone = (chords[i][2] >> (pitch % 12)) & 1
        strong = start % TICKS_PER_BEAT == 0
        counts[0 if strong else 2] += tone
        counts[1 if strong else 3] += 1
    return counts


def as_notes(rows):
    return np.asarray(rows, dtype=int).reshape(-1, 5)


# ------------------------------------------------------------------------------------- phrase table


class PhraseSet:
    """Phrases of one kind (all real windows, or one setting's phrases) with their metrics."""

    def __init__(self, items, bars, registers):
        self.items = items
        self.bars = bars
        self.notes = [as_notes(item["notes"]) for item in items]
        self.metrics = {p: {m: np.full(len(items), np.nan) for m, _ in METRICS} for p in PARTS}
        for i, (item, notes) in enumerate(zip(items, self.notes)):
            for p, part in enumerate(PARTS):
                values = part_metrics(notes, p, bars, item["key"], registers[p])
                for m, v in values.items():
                    self.metrics[part][m][i] = v
        self.groups = np.array([item.get("song", 100000 + item.get("index", i)) for i, item in enumerate(items)])

    def __len__(self):
        return len(self.items)

    def subset(self, index):
        out = PhraseSet.__new__(PhraseSet)
        out.items = [self.items[i] for i in index]
        out.bars = self.bars
        out.notes = [self.notes[i] for i in index]
        out.metrics = {p: {m: v[index] for m, v in ms.items()} for p, ms in self.metrics.items()}
        out.groups = self.groups[index]
        return out


# --------------------------------------------------------------------------------------- features


def yang_lerch_features(notes, bars):
    """Per part: Yang & Lerch (2018) pitch and inter-onset features of one phrase. Each value is a
    scalar or a vector; None when the part has too few notes for it."""
    out = {}
    for p, part in enumerate(PARTS):
        own = notes[notes[:, 1] == p] if len(notes) else np.zeros((0, 5), dtype=int)
        starts, pitches = own[:, 0], own[:, 2]
        onsets = np.unique(starts)
        iois = np.diff(onsets)
        feats = {
            "used_pitches": float(len(np.unique(pitches))) if len(pitches) else None,
            "pitch_range": float(np.ptp(pitches)) if len(pitches) else None,
            "pitch_interval": float(np.abs(np.diff(pitches)).mean()) if len(pitches) >= 2 else None,
            "pitch_class_histogram": (np.bincount(pitches % 12, minlength=12) / len(pitches)) if len(pitches) else None,
            "note_count": float(len(starts)),
            "ioi": float(iois.mean() / TICKS_PER_BEAT) if len(iois) else None,
            "ioi_histogram": (np.histogram(iois, bins=IOI_BINS)[0] / len(iois)) if len(iois) else None,
        }
        out[part] = feats
    return out


def classifier_matrix(phrases):
    """One row per phrase for the classifier: per part the style metrics (not register compliance,
    which the plugin guarantees) plus mean pitch, duration, velocity and IOI; then the pitch-class
    histogram of all notes."""
    rows = []
    for i, notes in enumerate(phrases.notes):
        row = []
        for p, part in enumerate(PARTS):
            own = notes[notes[:, 1] == p] if len(notes) else np.zeros((0, 5), dtype=int)
            row += [phrases.metrics[part][m][i] for m in BAND_METRICS]
            row += [
                own[:, 2].mean() if len(own) else np.nan,
                own[:, 3].mean() / TICKS_PER_BEAT if len(own) else np.nan,
                own[:, 4].mean() if len(own) else np.nan,
                mean_ioi_beats(own[:, 0]),
            ]
        pcs = notes[:, 2] % 12 if len(notes) else np.zeros(0, dtype=int)
        row += list(np.bincount(pcs, minlength=12) / max(len(pcs), 1))
        rows.append(row)
    return np.array(rows, dtype=float).reshape(len(rows), -1)


def classifier_feature_names():
    names = []
    for part in PARTS:
        names += [f"{part} {METRIC_TITLES[m]}" for m in BAND_METRICS]
        names += [f"{part} mean pitch", f"{part} mean duration", f"{part} mean velocity", f"{part} mean IOI"]
    names += [f"share of pitch class {n}" for n in ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")]
    return names


def mood_features(notes, bars):
    """Mode (best major minus best minor Krumhansl-Kessler correlation) and tempo feel (notes per bar,
    mean IOI) of a whole phrase, all parts together."""
    minor_r = major_r = np.nan
    if len(notes):
        major_r, minor_r = mode_correlations(notes[:, 2], notes[:, 3])
    return {
        "minor": (minor_r > major_r) if not np.isnan(major_r) else np.nan,
        "mode_r_difference": major_r - minor_r,
        "density": len(notes) / bars,
        "ioi": mean_ioi_beats(notes[:, 0]) if len(notes) else np.nan,
    }

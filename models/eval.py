"""Evaluation report: generated phrases against held-out POP909, from the data `cargo xtask eval` wrote.

Run through xtask (it generates the phrases with the plugin's engine first):

    cargo xtask eval [--quick]

or, on an existing target/eval/phrases.json, from the workspace root:

    models/.venv/bin/python models/eval.py --data target/eval/phrases.json --out target/eval

Writes <out>/report.md, <out>/*.png, <out>/metrics.json and <out>/results-section.md (the eval
section of docs/RESULTS.md).

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
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
from scipy import stats
from scipy.spatial.distance import cdist, hamming, pdist
from threadpoolctl import threadpool_limits

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
COPY_RUN_NOTES = 16

# Goals (issue #5).
GOAL_CLASSIFIER_ACCURACY = 0.65
GOAL_COPY_SHARE = 0.01

METRICS = [
    # key, title, needs
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


# ------------------------------------------------------------------------------------------ statistics


def grouped_bootstrap(values, groups, seed, n_resamples=1000, confidence=0.95):
    """95 % percentile interval of the mean of `values`, resampling whole groups (songs) with
    replacement (scipy.stats.bootstrap on per-group sums and counts, paired)."""
    values = np.asarray(values, dtype=float)
    ok = ~np.isnan(values)
    ids = np.unique(groups[ok])
    if len(ids) < 2:
        return np.nan, np.nan
    sums = np.array([values[ok & (groups == g)].sum() for g in ids])
    counts = np.array([np.sum(ok & (groups == g)) for g in ids], dtype=float)

    def ratio(s, c, axis=-1):
        return s.sum(axis=axis) / c.sum(axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            (sums, counts), ratio, paired=True, vectorized=True, n_resamples=n_resamples,
            confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def nanmean(values):
    values = np.asarray(values, dtype=float)
    return float(np.nanmean(values)) if np.any(~np.isnan(values)) else np.nan


KDE_MAX_SAMPLES = 5000


def kde_overlap(a, b, points=512, seed=0):
    """Overlap area of the Gaussian KDEs of two samples of distances, and KL(a || b). A sample over
    KDE_MAX_SAMPLES values is fitted on a seeded random subset of that size (the estimate barely
    moves, the time drops tenfold)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    a = a if a.size <= KDE_MAX_SAMPLES else rng.choice(a, KDE_MAX_SAMPLES, replace=False)
    b = b if b.size <= KDE_MAX_SAMPLES else rng.choice(b, KDE_MAX_SAMPLES, replace=False)
    if a.size < 2 or b.size < 2:
        return np.nan, np.nan
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if hi - lo < 1e-12:
        return 1.0, 0.0
    span = hi - lo
    grid = np.linspace(lo - 0.1 * span, hi + 0.1 * span, points)
    densities = []
    for sample in (a, b):
        if np.ptp(sample) < 1e-12:
            # A point mass: a narrow spike the width of one grid step.
            d = np.zeros(points)
            d[np.argmin(np.abs(grid - sample[0]))] = 1.0 / (grid[1] - grid[0])
        else:
            d = stats.gaussian_kde(sample)(grid)
        densities.append(d)
    pa, pb = densities
    overlap = float(np.trapezoid(np.minimum(pa, pb), grid))
    kl = float(stats.entropy(pa + 1e-12, pb + 1e-12))
    return min(overlap, 1.0), kl


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


# IOI classes in grid ticks: 16th-triplet, 16th, 8th-triplet, 8th, dotted 8th, quarter, ... bar+.
IOI_BINS = np.array([0, 2.5, 3.5, 5, 7, 10, 15, 21, 30, 42, 60, 10**6])
YL_PITCH = ("used_pitches", "pitch_range", "pitch_interval", "pitch_class_histogram")
YL_IOI = ("note_count", "ioi", "ioi_histogram")
YL_FEATURES = YL_PITCH + YL_IOI


def feature_matrix(features, part, name):
    rows = [(i, f[part][name]) for i, f in enumerate(features) if f[part][name] is not None]
    index = np.array([i for i, _ in rows], dtype=int)
    matrix = np.array([np.atleast_1d(v) for _, v in rows], dtype=float) if rows else np.zeros((0, 1))
    return index, matrix


def yang_lerch(reference, other, part, name):
    """Overlap area of intra-set distances of `reference` with inter-set distances (reference vs
    other), and KL(intra || inter). Euclidean distances between feature values."""
    _, a = feature_matrix(reference, part, name)
    _, b = feature_matrix(other, part, name)
    if len(a) < 3 or len(b) < 2:
        return np.nan, np.nan, None, None
    intra = pdist(a)
    inter = cdist(a, b).ravel()
    overlap, kl = kde_overlap(intra, inter)
    return overlap, kl, intra, inter


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


def two_sample_test(real_x, real_groups, gen_x, gen_groups, seed):
    """Classifier two-sample test: cross-validated predictions (stratified, grouped by song so no
    song is on both sides of a split) of logistic regression and gradient boosting trained to tell
    real from generated; accuracy over all held-out predictions, one-sided binomial test against
    chance (0.5) and its 95 % Clopper-Pearson interval."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(real_x), len(gen_x))
    if n < 4:
        return {}
    ri = np.sort(rng.choice(len(real_x), n, replace=False))
    gi = np.sort(rng.choice(len(gen_x), n, replace=False))
    x = np.vstack([real_x[ri], gen_x[gi]])
    y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    groups = np.r_[np.asarray(real_groups)[ri], np.asarray(gen_groups)[gi] + 10**7]
    folds = int(min(5, len(np.unique(groups[y == 1])), len(np.unique(groups[y == 0]))))
    if folds < 2:
        return {}
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    models = {
        "logistic regression": make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler(),
            LogisticRegression(max_iter=5000),
        ),
        "gradient boosting": HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, min_samples_leaf=min(20, max(2, n // 10)),
                                                            random_state=seed),
    }
    out = {}
    for name, model in models.items():
        # One OpenMP thread: on a busy 2-core machine more threads only spin against each other.
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")
            predicted = cross_val_predict(model, x, y, groups=groups, cv=cv)
        correct = int(np.sum(predicted == y))
        test = stats.binomtest(correct, len(y), 0.5, alternative="greater")
        ci = test.proportion_ci(confidence_level=0.95)
        out[name] = {"accuracy": correct / len(y), "n": int(len(y)), "correct": correct, "p_value": float(test.pvalue),
                     "ci": [float(ci.low), float(ci.high)], "folds": folds}
    # What gives generated phrases away: the logistic regression refitted on everything, its largest
    # standardized coefficients (positive = more typical of real music).
    model = models["logistic regression"]
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        model.fit(x, y)
    names = classifier_feature_names()
    names = model[0].get_feature_names_out(names if len(names) == x.shape[1] else [f"feature {i}" for i in range(x.shape[1])])
    coef = model[-1].coef_[0]
    top = np.argsort(-np.abs(coef))[:6]
    out["logistic regression"]["telling_features"] = [[str(names[i]), float(coef[i])] for i in top]
    return out


# ------------------------------------------------------------------------------------------- report


def fmt(x, digits=3):
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{x:.{digits}f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def image(files, key, title):
    return f"![{title}]({os.path.basename(files[key])})" if key in files else f"(plot '{key}' not drawn)"


def machine():
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        cores = str(os.cpu_count())
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return cores, cpu


def analyse(data, seed):
    """Every figure of the report, as a JSON-able dict (plus arrays for the plots under '_plots')."""
    bars = int(data["bars"])
    registers = [tuple(r) for r in data["registers"]]
    settings = data["settings"]
    real = PhraseSet(data["real"], bars, registers)
    sets = []
    for s, setting in enumerate(settings):
        items = [g for g in data["generated"] if g["setting"] == s]
        sets.append(PhraseSet(items, bars, registers))
    result = {"settings": [], "bands": {}, "real": {}, "real_spread": {}, "_plots": {}}

    # Real-vs-real band: the mean over held-out windows, bootstrapped over songs.
    for part in PARTS:
        result["bands"][part] = {}
        result["real"][part] = {}
        result["real_spread"][part] = {}
        for m, _ in METRICS:
            values = real.metrics[part][m]
            result["real"][part][m] = nanmean(values)
            result["bands"][part][m] = grouped_bootstrap(values, real.groups, seed)
            ok = values[~np.isnan(values)]
            result["real_spread"][part][m] = tuple(np.percentile(ok, [10, 90])) if len(ok) else (np.nan, np.nan)

    for setting, phrases in zip(settings, sets):
        row = {"name": setting["name"], "group": setting["group"], "temperature": setting["temperature"],
               "key_lock": setting["key_lock"], "mood": setting["mood"], "phrases": len(phrases), "metrics": {}, "ci": {}}
        for part in PARTS:
            row["metrics"][part] = {m: nanmean(phrases.metrics[part][m]) for m, _ in METRICS}
            row["ci"][part] = {m: grouped_bootstrap(phrases.metrics[part][m], phrases.groups, seed) for m, _ in METRICS}
        row["inside_band"] = {
            part: {m: bool(result["bands"][part][m][0] <= row["metrics"][part][m] <= result["bands"][part][m][1])
                   for m in BAND_METRICS}
            for part in PARTS
        }
        copies = [item["copy"] for item in phrases.items]
        exact = np.array([max(c["exact"]) for c in copies]) if copies else np.zeros(0)
        pitch = np.array([max(c["pitch"]) for c in copies]) if copies else np.zeros(0)
        row["copy"] = {
            "share_exact": float(np.mean(exact >= COPY_RUN_NOTES)) if len(exact) else np.nan,
            "share_pitch": float(np.mean(pitch >= COPY_RUN_NOTES)) if len(pitch) else np.nan,
            "median_exact": float(np.median(exact)) if len(exact) else np.nan,
            "max_exact": int(exact.max()) if len(exact) else 0,
            "per_part_share_exact": [float(np.mean(np.array([c["exact"][p] for c in copies]) >= COPY_RUN_NOTES))
                                     if copies else np.nan for p in range(3)],
        }
        row["_exact_runs"] = exact
        seconds = [item["seconds"] for item in phrases.items]
        tokens = [item["tokens"] for item in phrases.items]
        row["tokens_per_s"] = float(np.sum(tokens) / np.sum(seconds)) if seconds and np.sum(seconds) > 0 else np.nan
        result["settings"].append(row)

    real_exact = np.array([max(item["copy"]["exact"]) for item in real.items])
    real_pitch = np.array([max(item["copy"]["pitch"]) for item in real.items])
    result["real_copy"] = {
        "share_exact": float(np.mean(real_exact >= COPY_RUN_NOTES)),
        "share_pitch": float(np.mean(real_pitch >= COPY_RUN_NOTES)),
        "median_exact": float(np.median(real_exact)),
        "max_exact": int(real_exact.max()) if len(real_exact) else 0,
        "per_part_share_exact": [float(np.mean(np.array([i["copy"]["exact"][p] for i in real.items]) >= COPY_RUN_NOTES))
                                 for p in range(3)],
    }
    result["_plots"]["real_exact_runs"] = real_exact

    # Yang & Lerch overlap areas, on equal-size sets (at most 200 phrases each).
    rng = np.random.default_rng(seed)
    real_features = [yang_lerch_features(n, bars) for n in real.notes]
    song_ids = np.unique(real.groups)
    halves = np.array_split(rng.permutation(song_ids), 2)
    half_a = np.flatnonzero(np.isin(real.groups, halves[0]))
    half_b = np.flatnonzero(np.isin(real.groups, halves[1]))

    def cap(index, size):
        return np.sort(rng.choice(index, min(size, len(index)), replace=False)) if len(index) else index

    size = 200
    ref_a = [real_features[i] for i in cap(half_a, size)]
    ref_b = [real_features[i] for i in cap(half_b, size)]
    result["yang_lerch"] = {"real_vs_real": {}, "settings": []}
    for part in PARTS:
        result["yang_lerch"]["real_vs_real"][part] = {f: yang_lerch(ref_a, ref_b, part, f)[:2] for f in YL_FEATURES}
    real_sample = cap(np.arange(len(real)), size)
    result["_plots"]["yang_lerch"] = {}
    for s, phrases in enumerate(sets):
        features = [yang_lerch_features(n, bars) for n in phrases.notes]
        features = [features[i] for i in cap(np.arange(len(features)), size)]
        reference = [real_features[i] for i in real_sample]
        row = {}
        for part in PARTS:
            row[part] = {}
            for f in YL_FEATURES:
                overlap, kl, intra, inter = yang_lerch(reference, features, part, f)
                row[part][f] = (overlap, kl)
                if settings[s]["group"] == "temperature" and settings[s]["temperature"] == 1.0:
                    result["_plots"]["yang_lerch"][(part, f)] = (intra, inter)
        result["yang_lerch"]["settings"].append(row)

    # Classifier two-sample test, one per setting of the temperature sweep and for key lock.
    real_x = classifier_matrix(real)
    result["classifier"] = []
    for s, phrases in enumerate(sets):
        if settings[s]["group"] == "mood" or len(phrases) == 0:
            result["classifier"].append({})
            continue
        gen_x = classifier_matrix(phrases)
        result["classifier"].append(two_sample_test(real_x, real.groups, gen_x, phrases.groups, seed))

    result["mood"] = mood_analysis(data, real, sets, settings)
    result["_sets"] = sets
    result["_real"] = real
    return result


def mood_features(notes, bars):
    minor_r = major_r = np.nan
    if len(notes):
        major_r, minor_r = mode_correlations(notes[:, 2], notes[:, 3])
    return {
        "minor": (minor_r > major_r) if not np.isnan(major_r) else np.nan,
        "mode_r_difference": major_r - minor_r,
        "density": len(notes) / bars,
        "ioi": mean_ioi_beats(notes[:, 0]) if len(notes) else np.nan,
    }


def mood_analysis(data, real, sets, settings):
    """Does asking for a mood move mode (Krumhansl-Kessler correlation) and tempo feel (note
    density, mean IOI) the way the label means? Real windows grouped by their song's label show
    what the labels mean in the data; generated phrases per requested mood show what asking does."""
    bars = int(data["bars"])

    def summarise(groups):
        rows = {}
        for mood, entries in groups.items():
            feats = [mood_features(n, bars) for n in entries]
            minor = np.array([f["minor"] for f in feats], dtype=float)
            rows[mood] = {
                "n": len(feats),
                "minor_share": nanmean(minor),
                "mode_r_difference": nanmean([f["mode_r_difference"] for f in feats]),
                "density": nanmean([f["density"] for f in feats]),
                "ioi": nanmean([f["ioi"] for f in feats]),
                "_minor": minor,
                "_density": np.array([f["density"] for f in feats], dtype=float),
                "_ioi": np.array([f["ioi"] for f in feats], dtype=float),
            }
        return rows

    real_groups = {m: [n for n, item in zip(real.notes, real.items) if item["mood"] == m] for m in MOODS}
    real_header_minor = {m: nanmean([item["key"] >= 12 for item in real.items if item["mood"] == m]) for m in MOODS}
    gen_groups, header_minor = {}, {}
    for s, setting in enumerate(settings):
        if setting["group"] == "mood":
            gen_groups[setting["mood"]] = sets[s].notes
            header_minor[setting["mood"]] = nanmean([item["key"] >= 12 for item in sets[s].items])
    out = {"real": summarise(real_groups), "generated": summarise(gen_groups), "header_minor": header_minor,
           "real_header_minor": real_header_minor}
    auto = [s for s, st in enumerate(settings) if st["group"] == "temperature" and st["temperature"] == 1.0]
    if auto:
        chosen = [item["mood"] for item in sets[auto[0]].items]
        out["auto_moods"] = {m: chosen.count(m) / max(len(chosen), 1) for m in MOODS}
    out["real_label_share"] = {m: len(v) / max(len(real.items), 1) for m, v in real_groups.items()}

    def contrast(rows, key, plus, alternative):
        a = np.concatenate([rows[m][f"_{key}"] for m in plus if m in rows] or [np.zeros(0)])
        b = np.concatenate([rows[m][f"_{key}"] for m in rows if m not in plus] or [np.zeros(0)])
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if len(a) < 2 or len(b) < 2:
            return {"a": nanmean(a), "b": nanmean(b), "p_value": np.nan}
        if key == "minor":
            counts = [[int(a.sum()), int(len(a) - a.sum())], [int(b.sum()), int(len(b) - b.sum())]]
            p = stats.fisher_exact(counts, alternative="greater").pvalue
        else:
            p = stats.mannwhitneyu(a, b, alternative=alternative).pvalue
        return {"a": float(a.mean()), "b": float(b.mean()), "p_value": float(p)}

    minor_moods = [m for m in MOODS if MOOD_MINOR[m]]
    fast_moods = [m for m in MOODS if MOOD_FAST[m]]
    out["tests"] = {}
    for who in ("real", "generated"):
        rows = out[who]
        out["tests"][who] = {
            "minor share: sad+tense > happy+calm": contrast(rows, "minor", minor_moods, "greater"),
            "note density: happy+tense > sad+calm": contrast(rows, "density", fast_moods, "greater"),
            "mean IOI: happy+tense < sad+calm": contrast(rows, "ioi", fast_moods, "less"),
        }
    return out


# ---------------------------------------------------------------------------------------------- plots


def plots(result, data, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    sweep = [(i, r) for i, r in enumerate(result["settings"]) if r["group"] == "temperature"]
    temps = [r["temperature"] for _, r in sweep]

    # 1. Metrics against temperature, with the real band.
    fig, axes = plt.subplots(len(BAND_METRICS), 3, figsize=(11, 2.1 * len(BAND_METRICS)), squeeze=False)
    for row, m in enumerate(BAND_METRICS):
        for col, part in enumerate(PARTS):
            ax = axes[row][col]
            lo, hi = result["bands"][part][m]
            if not np.isnan(lo):
                ax.axhspan(lo, hi, color="tab:green", alpha=0.25, label="real band (95 %)")
            means = [r["metrics"][part][m] for _, r in sweep]
            cis = np.array([r["ci"][part][m] for _, r in sweep], dtype=float)
            err = np.vstack([np.array(means) - cis[:, 0], cis[:, 1] - np.array(means)]) if len(cis) else None
            err = np.nan_to_num(np.abs(err)) if err is not None else None
            ax.errorbar(temps, means, yerr=err, marker="o", color="tab:blue", capsize=3, label="generated")
            if row == 0:
                ax.set_title(part)
            if col == 0:
                ax.set_ylabel(METRIC_TITLES[m], fontsize=8)
            if row == len(BAND_METRICS) - 1:
                ax.set_xlabel("temperature")
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.97, bottom=0.04, hspace=0.35, wspace=0.25)
    path = os.path.join(out_dir, "metrics_vs_temperature.png")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    files["metrics"] = path

    # 2. Yang & Lerch distance distributions at T = 1.
    yl = result["_plots"]["yang_lerch"]
    if yl:
        fig, axes = plt.subplots(3, len(YL_FEATURES), figsize=(2.3 * len(YL_FEATURES), 6.5), squeeze=False)
        for row, part in enumerate(PARTS):
            for col, f in enumerate(YL_FEATURES):
                ax = axes[row][col]
                intra, inter = yl.get((part, f), (None, None))
                if intra is not None and len(intra) and len(inter):
                    bins = np.histogram_bin_edges(np.r_[intra, inter], bins=30)
                    ax.hist(intra, bins=bins, density=True, alpha=0.5, label="intra real")
                    ax.hist(inter, bins=bins, density=True, alpha=0.5, label="real vs generated")
                if row == 0:
                    ax.set_title(f, fontsize=8)
                if col == 0:
                    ax.set_ylabel(part)
                ax.tick_params(labelsize=6)
        axes[0][0].legend(fontsize=6)
        fig.suptitle("Yang & Lerch distances, T = 1", fontsize=9)
        fig.subplots_adjust(left=0.05, right=0.99, top=0.92, bottom=0.05, hspace=0.3, wspace=0.3)
        path = os.path.join(out_dir, "yang_lerch.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        files["yang_lerch"] = path

    # 3. Longest copied runs.
    fig, ax = plt.subplots(figsize=(6, 3.2))
    real_runs = result["_plots"]["real_exact_runs"]
    top = max([COPY_RUN_NOTES + 4, int(real_runs.max()) if len(real_runs) else 0]
              + [int(r["_exact_runs"].max()) for _, r in sweep if len(r["_exact_runs"])])
    bins = np.arange(0, top + 2)
    ax.hist(real_runs, bins=bins, density=True, histtype="step", color="k", label="held-out real")
    for _, r in sweep:
        if len(r["_exact_runs"]):
            ax.hist(r["_exact_runs"], bins=bins, density=True, histtype="step", label=r["name"])
    ax.axvline(COPY_RUN_NOTES, color="tab:red", ls="--", lw=1)
    ax.set_xlabel("longest run shared with a training song (notes, interval + onset)")
    ax.set_ylabel("share of phrases")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, "copies.png")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    files["copies"] = path

    # 4. Mood.
    mood = result["mood"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    x = np.arange(len(MOODS))
    for ax, key, title in zip(axes, ("minor_share", "density", "ioi"),
                              ("share of phrases closer to a minor profile", "notes per bar (all parts)", "mean IOI (beats)")):
        for offset, who, color in ((-0.2, "real", "tab:gray"), (0.2, "generated", "tab:blue")):
            values = [mood[who].get(m, {}).get(key, np.nan) for m in MOODS]
            ax.bar(x + offset, values, width=0.4, color=color, label=f"{who} ({'labelled' if who == 'real' else 'asked'})")
        ax.set_xticks(x, MOODS)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, "mood.png")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    files["mood"] = path
    return files


# --------------------------------------------------------------------------------------------- writing


def t1_index(result):
    for i, r in enumerate(result["settings"]):
        if r["group"] == "temperature" and abs(r["temperature"] - 1.0) < 1e-6:
            return i
    return None


def goals(result):
    """The three goals at temperature 1, as (name, figure text, met)."""
    i = t1_index(result)
    if i is None:
        return []
    row = result["settings"][i]
    inside = [(p, m) for p in PARTS for m in BAND_METRICS if row["inside_band"][p][m]]
    outside = [f"{p} {METRIC_TITLES[m]}" for p in PARTS for m in BAND_METRICS if not row["inside_band"][p][m]]
    total = len(PARTS) * len(BAND_METRICS)
    out = [("per-part metrics inside the real-vs-real band at T = 1",
            f"{len(inside)} of {total} inside" + (f"; outside: {', '.join(outside)}" if outside else ""),
            len(inside) == total)]
    tests = result["classifier"][i]
    if tests:
        worst = max(tests.values(), key=lambda t: t["accuracy"])
        names = "; ".join(f"{name} {t['accuracy']:.3f} (95 % CI {t['ci'][0]:.2f}–{t['ci'][1]:.2f}, p = {t['p_value']:.2g}, n = {t['n']})"
                          for name, t in tests.items())
        out.append(("classifier accuracy ≤ 0.65 (real vs generated, T = 1)", names,
                    worst["accuracy"] <= GOAL_CLASSIFIER_ACCURACY))
    share = row["copy"]["share_exact"]
    real = result["real_copy"]
    out.append((f"under 1 % of phrases with a {COPY_RUN_NOTES}-note copied run (T = 1, any part)",
                f"{100 * share:.2f} % of {row['phrases']} phrases (lead alone {100 * row['copy']['per_part_share_exact'][0]:.2f} %; "
                f"longest run {row['copy']['max_exact']} notes); held-out real music against the same training songs: "
                f"{100 * real['share_exact']:.2f} % (lead alone {100 * real['per_part_share_exact'][0]:.2f} %)",
                share < GOAL_COPY_SHARE))
    return out


def other_figures(result, data):
    """Bullets for the results section beyond the three goals: Yang & Lerch, temperature, mood, baselines."""
    out = []
    i1 = t1_index(result)
    settings = result["settings"]
    if i1 is not None:
        oa = nanmean([result["yang_lerch"]["settings"][i1][p][f][0] for p in PARTS for f in YL_FEATURES])
        ref = nanmean([result["yang_lerch"]["real_vs_real"][p][f][0] for p in PARTS for f in YL_FEATURES])
        out.append(f"- Yang & Lerch overlap area, mean over {len(PARTS) * len(YL_FEATURES)} part × feature pairs: "
                   f"{oa:.3f} at T = 1 (real vs real: {ref:.3f})")
    sweep = [r for r in settings if r["group"] == "temperature"]
    if sweep:
        out.append("- by temperature, metrics inside the band / classifier accuracy (gradient boosting) / 16-note copies: " + "; ".join(
            f"{r['name']} {sum(r['inside_band'][p][m] for p in PARTS for m in BAND_METRICS)}/{len(PARTS) * len(BAND_METRICS)}, "
            f"{fmt(result['classifier'][settings.index(r)].get('gradient boosting', {}).get('accuracy'), 2)}, "
            f"{100 * r['copy']['share_exact']:.1f} %" for r in sweep))
    tests = result["mood"]["tests"].get("generated", {})
    if tests:
        out.append("- mood (asked, T = 1): " + "; ".join(
            f"{name} {'yes' if not np.isnan(t['p_value']) and t['p_value'] < 0.05 else 'no'} (p = {t['p_value']:.2g})"
            for name, t in tests.items()))
    for b in data["baselines"]:
        if b["measured"]:
            r = settings[b["setting"]]
            tests = result["classifier"][b["setting"]]
            out.append(f"- baseline {b['name']}: {sum(r['inside_band'][p][m] for p in PARTS for m in BAND_METRICS)} of "
                       f"{len(PARTS) * len(BAND_METRICS)} metrics inside the band, classifier accuracy "
                       + " / ".join(f"{fmt(t['accuracy'], 3)}" for t in tests.values()) + " (LR / GB), "
                       f"{100 * r['copy']['share_exact']:.1f} % 16-note copies")
        else:
            out.append(f"- baseline {b['name']}: not measured yet ({b.get('why', '')})")
    return out


def write_report(result, data, out_dir, seed, plot_files, elapsed):
    stamp = data.get("generated_unix")
    now = (datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc) if stamp else
           datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    cores, cpu = machine()
    model = data["model"]
    settings = result["settings"]
    lines = [f"# Neural Trio evaluation{' (QUICK run: too small to judge the model)' if data['quick'] else ''}", ""]
    lines += [
        f"- date: {now}; machine: {cores} cores (`nproc`), {cpu}",
        f"- command: `{data['command']}`; phrase seeds {data['seed']}..{data['seed'] + max(s['phrases'] for s in data['settings']) - 1} "
        f"(phrase *i* of every setting uses seed {data['seed']} + *i* and the tempo bin — and under key lock the key — "
        f"of a held-out song drawn for *i*); statistics seed {seed} (bootstrap, subsampling, classifier folds)",
        f"- model: `{model['path']}` version `{model['version']}`, vocabulary {model['vocab_hash']}, context {model['context_length']}, "
        f"{model['n_layer']} layers; trained on: {model['training_data'] or 'not stated'}",
        f"- engine: the plugin's composer and sampler (`make_header`, `generate_bar`, `Constraints`, `Rng::for_bar`), "
        f"{data['bars']} bars per phrase, top-p 0.95, registers lead {data['registers'][0]}, arp {data['registers'][1]}, "
        f"bass {data['registers'][2]}, all parts on, {data['threads']} generator thread(s) with one ONNX Runtime thread each",
        f"- real music: {len(data['held_out_songs'])} held-out POP909 songs ({data['held_out_songs'][0] if data['held_out_songs'] else '–'}"
        f"–{data['held_out_songs'][-1] if data['held_out_songs'] else '–'}; {len(data['held_out_skipped'])} unreadable skipped), "
        f"{len(data['real'])} non-overlapping {data['bars']}-bar windows from bar 0, through the tokenizer; copy detection "
        f"against {data['train_songs']} training songs (001–818, {data['train_skipped']} unreadable skipped)",
        f"- time: {elapsed:.0f} s in all, not counting the build (load held-out {data['timing'].get('load_held_out_s', 0):.1f} s, generation "
        f"{data['timing'].get('generate_s', 0):.1f} s, baselines {data['timing'].get('baselines_s', 0):.1f} s, copy detection {data['timing'].get('copy_detection_s', 0):.1f} s, metrics and report the rest)",
        "",
        "## Goals (temperature 1, key lock off, mood Auto)",
        "",
    ]
    goal_rows = goals(result)
    lines.append(table(["goal", "figure", "met"], [(g, f, "yes" if ok else "**no**") for g, f, ok in goal_rows]))
    lines += ["", "## Per-part metrics at temperature 1 against the real-vs-real band", ""]
    lines.append("The band is the 95 % bootstrap interval of the held-out mean, resampling whole songs (1,000 resamples); "
                 "the generated figure is the mean over phrases with its own 95 % bootstrap interval. The spread of single real "
                 "windows (10th–90th percentile) shows how far one phrase may stray. "
                 "Register compliance is not compared: the plugin guarantees it.")
    lines.append("")
    i1 = t1_index(result)
    rows = []
    for part in PARTS:
        for m, title in METRICS:
            lo, hi = result["bands"][part][m]
            real_mean = result["real"][part][m]
            if i1 is not None:
                g = settings[i1]["metrics"][part][m]
                glo, ghi = settings[i1]["ci"][part][m]
                inside = ("yes" if settings[i1]["inside_band"][part][m] else "**no**") if m in BAND_METRICS else "n/a"
                gen = f"{fmt(g)} ({fmt(glo)}–{fmt(ghi)})"
            else:
                gen, inside = "–", "–"
            spread = result["real_spread"][part][m]
            rows.append((part, title, fmt(real_mean), f"{fmt(lo)}–{fmt(hi)}", f"{fmt(spread[0])}–{fmt(spread[1])}", gen, inside))
    lines.append(table(["part", "metric", "real mean", "real band", "real windows 10–90 %", "generated T=1 (95 % CI)", "inside"], rows))

    lines += ["", "## Across temperatures (key lock off, mood Auto)", "",
              "Mean per phrase; a figure outside the real band is in bold.", ""]
    sweep = [r for r in settings if r["group"] == "temperature"]
    header = ["part", "metric", "real band"] + [r["name"] for r in sweep]
    rows = []
    for part in PARTS:
        for m in BAND_METRICS:
            lo, hi = result["bands"][part][m]
            cells = []
            for r in sweep:
                v = r["metrics"][part][m]
                cells.append(fmt(v) if r["inside_band"][part][m] else f"**{fmt(v)}**")
            rows.append([part, METRIC_TITLES[m], f"{fmt(lo)}–{fmt(hi)}"] + cells)
    lines.append(table(header, rows))
    lines += ["", image(plot_files, "metrics", "metrics against temperature"), ""]

    lines += ["## Key lock and register", "",
              "In-key rate is measured against the phrase's header key (chosen by the model with key lock off, "
              "forced with it on; the annotated key for real music).", ""]
    lock = [r for r in settings if r["group"] == "key_lock"]
    base = settings[i1] if i1 is not None else None
    rows = []
    for part in PARTS:
        for m in ("in_key_rate", "register_compliance"):
            rows.append([part, METRIC_TITLES[m], fmt(result["real"][part][m]),
                         fmt(base["metrics"][part][m]) if base else "–",
                         fmt(lock[0]["metrics"][part][m]) if lock else "–"])
    lines.append(table(["part", "metric", "real", "T=1, key lock off", "T=1, key lock on"], rows))

    lines += ["", "## Yang & Lerch overlap areas", "",
              "Overlap area (OA, 1 = the distributions coincide) between the intra-set distances of held-out real phrases "
              "and the inter-set distances real–generated (Yang & Lerch 2018; Gaussian KDE of Euclidean distances between "
              "per-phrase features; up to 200 phrases a side). *real vs real* splits the held-out songs into two halves "
              "and gives the OA real music itself reaches.", ""]
    rows = []
    for part in PARTS:
        for f in YL_FEATURES:
            rr = result["yang_lerch"]["real_vs_real"][part][f][0]
            cells = [fmt(result["yang_lerch"]["settings"][settings.index(r)][part][f][0]) for r in sweep + lock]
            kind = "pitch" if f in YL_PITCH else "inter-onset"
            rows.append([part, f"{f} ({kind})", fmt(rr)] + cells)
    lines.append(table(["part", "feature", "real vs real"] + [r["name"] for r in sweep + lock], rows))
    lines += ["", image(plot_files, "yang_lerch", "Yang & Lerch distances")]

    lines += ["", "## Turing-test proxy: classifier two-sample test", "",
              f"Per-phrase feature vectors ({len(BAND_METRICS)} style metrics + mean pitch, duration, velocity and IOI per part, "
              "and the pitch-class histogram of all notes); equal numbers of real windows (drawn at random) and generated "
              "phrases; cross-validated predictions with stratified folds grouped by song; accuracy over all held-out "
              "predictions with a one-sided binomial test against 0.5. 0.5 = indistinguishable.", ""]
    rows = []
    for r, tests in zip(settings, result["classifier"]):
        for name, t in tests.items():
            rows.append([r["name"], name, t["n"], fmt(t["accuracy"]), f"{fmt(t['ci'][0], 2)}–{fmt(t['ci'][1], 2)}",
                         f"{t['p_value']:.2g}"])
    lines.append(table(["setting", "classifier", "phrases", "accuracy", "95 % CI", "p (binomial)"], rows))
    if i1 is not None and "logistic regression" in result["classifier"][i1]:
        telling = result["classifier"][i1]["logistic regression"].get("telling_features", [])
        lines += ["", "What tells T = 1 phrases from real ones (logistic regression on all of them; largest standardized "
                  "coefficients, + = more typical of real music): " + "; ".join(f"{n} ({c:+.2f})" for n, c in telling) + "."]

    lines += ["", "## Copy detection", "",
              "Longest run of notes a phrase shares with any training song (001–818), transposition-invariant: "
              "*interval + onset* matches pitch intervals and onset distances (the same line in the same rhythm, in any key); "
              "*interval only* ignores rhythm. Lines of all three parts of every training song are searched (a suffix "
              "automaton; a match may cross parts). The held-out real windows are the reference: their 16-note runs are "
              "almost all arp and bass idioms (repeated bass notes, broken-chord figures) that many songs share, so the "
              "lead column is the one that speaks of copied melodies.", ""]
    rows = []
    for r in sweep + lock + [x for x in settings if x["group"] in ("mood", "baseline")]:
        c = r["copy"]
        rows.append([r["name"], r["phrases"], f"{100 * c['share_exact']:.2f} %",
                     " / ".join(f"{100 * s:.1f}" for s in c["per_part_share_exact"]),
                     fmt(c["median_exact"], 0), c["max_exact"], f"{100 * c['share_pitch']:.1f} %"])
    c = result["real_copy"]
    rows.append(["held-out real", len(data["real"]), f"{100 * c['share_exact']:.2f} %",
                 " / ".join(f"{100 * s:.1f}" for s in c["per_part_share_exact"]), fmt(c["median_exact"], 0),
                 c["max_exact"], f"{100 * c['share_pitch']:.1f} %"])
    lines.append(table(["phrases", "n", f"≥ {COPY_RUN_NOTES} notes (interval + onset)", "lead / arp / bass %",
                        "median run", "longest", f"≥ {COPY_RUN_NOTES} notes (interval only)"], rows))
    lines += ["", image(plot_files, "copies", "copied runs"), ""]

    lines += ["## Mood", "",
              "Mode: the duration-weighted pitch-class profile of all notes against the 24 Krumhansl–Kessler key profiles "
              "(a phrase counts as minor when its best minor correlation beats its best major one). Tempo feel in grid "
              "terms: notes per bar and mean inter-onset interval (slow songs are read half-time, so slow means fewer "
              "notes per grid bar). *real* groups held-out windows by their song's label; *generated* asks for the mood "
              "(T = 1, key lock off: the model picks the key, and in the header the key comes before the mood).", ""]
    mood = result["mood"]
    rows = []
    for m in MOODS:
        for who in ("real", "generated"):
            r = mood[who].get(m)
            if r and r["n"]:
                extra = fmt((mood["header_minor"] if who == "generated" else mood["real_header_minor"]).get(m), 2)
                rows.append([m, who, r["n"], fmt(r["minor_share"], 2), extra, fmt(r["mode_r_difference"], 3),
                             fmt(r["density"], 2), fmt(r["ioi"], 3)])
    lines.append(table(["mood", "source", "n", "minor by profile", "minor key in header", "r(major) − r(minor)",
                        "notes/bar", "mean IOI (beats)"], rows))
    lines += ["", "Does the label move the music the way it means? (one-sided tests: Fisher's exact test for the minor "
              "share, Mann–Whitney U for density and IOI)", ""]
    rows = []
    for name in mood["tests"]["real"]:
        cells = [name]
        for who in ("real", "generated"):
            t = mood["tests"][who][name]
            ok = (not np.isnan(t["p_value"])) and t["p_value"] < 0.05
            p = "–" if np.isnan(t["p_value"]) else f"{t['p_value']:.2g}"
            cells.append(f"{fmt(t['a'], 3)} vs {fmt(t['b'], 3)}, p = {p}{' ✓' if ok else ''}")
        rows.append(cells)
    lines.append(table(["contrast", "real (labelled)", "generated (asked)"], rows))
    if "auto_moods" in mood:
        lines += ["", "Mood Auto at T = 1 (the model picks): " + ", ".join(
            f"{m} {100 * mood['auto_moods'][m]:.0f} %" for m in MOODS) + "; held-out windows: " + ", ".join(
            f"{m} {100 * mood['real_label_share'][m]:.0f} %" for m in MOODS) + "."]
    lines += ["", image(plot_files, "mood", "mood"), ""]

    lines += ["## Baselines", "",
              "Same engine around them: the Rust sampler, grammar and masks, the same seeds, tempo bins and settings as the "
              "model at T = 1 (key lock off, mood Auto); only the next-token logits come from the baseline "
              "(`models/eval.py serve`).", ""]
    rows = []
    for b in data["baselines"]:
        if b["measured"]:
            info = b.get("info", {})
            note = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("ok", "vocab_hash", "vocab_size", "context_length"))
            rows.append([b["name"], "measured", settings[b["setting"]]["phrases"], note])
        else:
            rows.append([b["name"], "not measured yet", 0, b.get("why", "")])
    lines.append(table(["model", "status", "phrases", "details"], rows))
    measured = [r for r in settings if r["group"] == "baseline"]
    if measured and i1 is not None:
        compared = [settings[i1]] + measured
        lines += ["", "Per-part metrics (bold: outside the real band):", ""]
        rows = []
        for part in PARTS:
            for m in BAND_METRICS:
                lo, hi = result["bands"][part][m]
                cells = [fmt(r["metrics"][part][m]) if r["inside_band"][part][m] else f"**{fmt(r['metrics'][part][m])}**"
                         for r in compared]
                rows.append([part, METRIC_TITLES[m], f"{fmt(lo)}–{fmt(hi)}"] + cells)
        lines.append(table(["part", "metric", "real band"] + ["model " + compared[0]["name"]] + [r["name"] for r in measured], rows))
        lines += ["", "Summary:", ""]
        rows = []
        for r in compared:
            k = settings.index(r)
            inside = sum(r["inside_band"][p][m] for p in PARTS for m in BAND_METRICS)
            tests = result["classifier"][k]
            oa = [result["yang_lerch"]["settings"][k][p][f][0] for p in PARTS for f in YL_FEATURES]
            rows.append([("model " if r["group"] != "baseline" else "") + r["name"], r["phrases"],
                         f"{inside} of {len(PARTS) * len(BAND_METRICS)}",
                         " / ".join(fmt(t["accuracy"]) for t in tests.values()) if tests else "–",
                         f"{100 * r['copy']['share_exact']:.2f} %", fmt(nanmean(oa))])
        lines.append(table(["phrases from", "n", "metrics inside band", "classifier accuracy (LR / GB)",
                            f"≥ {COPY_RUN_NOTES}-note copies", "mean Yang & Lerch OA"], rows))
    lines += ["", "## Generation speed", ""]
    rows = [[r["name"], r["phrases"], fmt(r["tokens_per_s"], 0)] for r in settings]
    lines.append(table(["setting", "phrases", "tokens/s per thread"], rows))
    lines.append("")
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(lines))

    # The eval section of docs/RESULTS.md.
    section = [
        "## Evaluation", "",
        f"- date: {now}",
        f"- machine: {cores} cores (`nproc`), {cpu}",
        f"- command: `{data['command']}` ({elapsed:.0f} s)" + ("; QUICK run, too small to judge the model" if data["quick"] else ""),
        f"- model: `{model['path']}` version `{model['version']}`",
        f"- data: {len(data['real'])} {data['bars']}-bar windows of {len(data['held_out_songs'])} held-out POP909 songs; "
        f"{sum(len(s.items) for s in result['_sets'])} generated phrases ({', '.join(r['name'] for r in settings)})",
        "",
        table(["goal", "figure", "met"], [(g, f, "yes" if ok else "**no**") for g, f, ok in goal_rows]),
        "",
    ] + other_figures(result, data) + [
        "",
        "Full report with every metric, temperature, the Yang & Lerch overlaps, mood and plots: `target/eval/report.md`.",
        "",
    ]
    with open(os.path.join(out_dir, "results-section.md"), "w") as f:
        f.write("\n".join(section))
    return goal_rows


def to_json(x):
    if isinstance(x, dict):
        return {str(k): to_json(v) for k, v in x.items() if not str(k).startswith("_")}
    if isinstance(x, (list, tuple)):
        return [to_json(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if np.isnan(x) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.ndarray):
        return to_json(x.tolist())
    return x


# ------------------------------------------------------------------------------- baseline logits server


class NgramLogits:
    """models/ngram.py's Kneser-Ney model, fitted on the training token file, as next-token logits
    (natural-log probabilities) for a context."""

    def __init__(self, order, data_dir, max_train_tokens, seed):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import data as trio_data
        import ngram

        vocab = trio_data.load_vocab()
        path = os.path.join(data_dir, "train.bin")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing (cargo xtask dataset builds it)")
        trio_data.check_manifest(data_dir, vocab)
        tokens, songs = ngram.select_songs(trio_data.load_tokens(path), vocab, max_train_tokens, seed)
        started = time.time()
        self.model = ngram.KneserNey(order, vocab.size, vocab.bos).fit(tokens)
        self.order, self.size = order, vocab.size
        self.info = {"order": order, "train_tokens": int(len(tokens)), "train_songs": int(songs),
                     "fit_seconds": round(time.time() - started, 1), "vocab_size": vocab.size,
                     "vocab_hash": vocab.hash, "context_length": 1 << 20}

    def logits(self, context):
        history = np.zeros(self.order - 1, dtype=np.int64)
        tail = context[-(self.order - 1):]
        history[len(history) - len(tail):] = tail
        targets = np.arange(self.size, dtype=np.int64)
        histories = np.broadcast_to(history, (self.size, self.order - 1))
        lengths = np.full(self.size, len(context), dtype=np.int64)
        return self.model.log2_probs(histories, targets, lengths) * np.log(2.0)


class LstmLogits:
    """A trained LSTM baseline checkpoint (models/train.py --arch lstm), keeping its recurrent state
    across calls whose context extends the previous one."""

    def __init__(self, checkpoint):
        if not os.path.exists(checkpoint):
            raise FileNotFoundError(f"no LSTM checkpoint at {checkpoint} (models/train.py --arch lstm makes one)")
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch
        import data as trio_data
        from model import build_model

        torch.set_num_threads(1)
        state = torch.load(checkpoint, weights_only=True, map_location="cpu")
        vocab = trio_data.load_vocab()
        if state["arch"] != "lstm" or state["vocab_hash"] != vocab.hash:
            raise ValueError(f"{checkpoint} is a {state['arch']} on vocabulary {state['vocab_hash']}, not an LSTM on {vocab.hash}")
        self.torch = torch
        self.model = build_model("lstm", state["model_config"])
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.seen, self.state, self.last = [], None, None
        self.info = {"checkpoint": checkpoint, "iter": int(state.get("iter", 0)),
                     "best_valid_bits": state.get("best_valid_bits"), "vocab_size": vocab.size, "vocab_hash": vocab.hash,
                     "context_length": int(state["model_config"].get("context_length", 512))}

    def logits(self, context):
        context = [int(t) for t in context]
        n = len(self.seen)
        if n == 0 or len(context) <= n or context[:n] != self.seen:
            self.seen, self.state, new = [], None, context
        else:
            new = context[n:]
        with self.torch.no_grad():
            out, self.state = self.model.lstm(self.model.embed(self.torch.tensor([new])), self.state)
            logits = self.model.head(out[0, -1]).double().numpy()
        self.seen = context
        return logits


def serve(argv):
    """Next-token logits for the Rust sampler (xtask/src/eval/baseline.rs), over stdin/stdout: a
    request is a little-endian u32 count and that many u32 token ids (the whole context); the answer
    is vocab-size little-endian f32 logits; a count of 0 ends. The first stdout line describes the
    model as JSON ({"ok": false, "why": ...} when it cannot be had)."""
    import struct

    parser = argparse.ArgumentParser(prog="eval.py serve")
    parser.add_argument("kind", choices=["ngram", "lstm"])
    parser.add_argument("--order", type=int, default=6)
    parser.add_argument("--data-dir", default="target/dataset")
    parser.add_argument("--max-train-tokens", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--checkpoint", default="models/checkpoints/lstm/best.pt")
    args = parser.parse_args(argv)
    out, inp = sys.stdout.buffer, sys.stdin.buffer
    try:
        if args.kind == "ngram":
            source = NgramLogits(args.order, args.data_dir, args.max_train_tokens, args.seed)
        else:
            source = LstmLogits(args.checkpoint)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any failure is reported to the caller as the reason
        out.write((json.dumps({"ok": False, "why": f"{type(e).__name__}: {e}"}) + "\n").encode())
        out.flush()
        return 0
    out.write((json.dumps({"ok": True, **source.info}) + "\n").encode())
    out.flush()
    while True:
        head = inp.read(4)
        if len(head) < 4:
            break
        (count,) = struct.unpack("<I", head)
        if count == 0:
            break
        context = np.frombuffer(inp.read(4 * count), dtype="<u4").astype(np.int64)
        out.write(np.asarray(source.logits(context), dtype="<f4").tobytes())
        out.flush()
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        return serve(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="target/eval/phrases.json")
    parser.add_argument("--out", default="target/eval")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (tests)")
    args = parser.parse_args(argv)
    started = time.time()
    with open(args.data) as f:
        data = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    t = time.time()
    # One BLAS/OpenMP thread: the matrices here are small, and extra threads only spin against each
    # other (and against a training job) on a 2-core machine.
    with threadpool_limits(limits=1):
        result = analyse(data, args.seed)
    plot_files = {} if args.no_plots else plots(result, data, args.out)
    # The whole eval's time: generation (what xtask measured) and this report.
    elapsed = data.get("timing", {}).get("collect_s", 0.0) + time.time() - started
    goal_rows = write_report(result, data, args.out, args.seed, plot_files, elapsed)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(to_json({k: v for k, v in result.items()}), f, indent=1)
    print(f"metrics and report in {time.time() - t:.1f} s: {os.path.join(args.out, 'report.md')}")
    for name, figure, ok in goal_rows:
        print(f"  [{'met' if ok else 'NOT met'}] {name}: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

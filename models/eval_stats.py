"""Statistics for models/eval.py: the per-phrase metrics of eval_metrics.py turned into the figures
of the report (`analyse`): real-vs-real bands (bootstrap over songs), Yang & Lerch overlap areas,
the classifier two-sample test, copy shares and the mood contrasts."""

import warnings

import numpy as np
from scipy import stats
from scipy.spatial.distance import cdist, pdist
from threadpoolctl import threadpool_limits

from eval_metrics import (
    BAND_METRICS,
    COPY_RUN_NOTES,
    METRICS,
    MOOD_FAST,
    MOOD_MINOR,
    MOODS,
    PARTS,
    YL_FEATURES,
    PhraseSet,
    chord_tone_counts,
    classifier_feature_names,
    classifier_matrix,
    mood_features,
    yang_lerch_features,
)
from eval_texture import (
    BOTH_STYLES,
    DANCE_TARGETS,
    POP_CLASSIFIER_LIMIT,
    TARGET_SETTING,
    TEXTURE,
    adherence,
    auto_agreement,
    check_target,
    target_text,
)
from eval_texture import summarize as texture_summary

# Settings only the texture, coherence and adherence figures are measured on (no classifier, no Yang &
# Lerch: Dance is judged against its targets and NES-MDB, not against POP909).
TEXTURE_ONLY = ("dance", "adherence")

BOOTSTRAP_RESAMPLES = 1000
# The KDE of a larger sample of distances is fitted on a seeded random subset of this size.
KDE_MAX_SAMPLES = 5000
# Yang & Lerch sets are compared at equal size, at most this many phrases a side.
YL_SET_SIZE = 200


def grouped_bootstrap(values, groups, seed, n_resamples=BOOTSTRAP_RESAMPLES, confidence=0.95):
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
        out[name] = {"accuracy": correct / len(y), "n": len(y), "correct": correct, "p_value": float(test.pvalue),
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

    # Yang & Lerch overlap areas, on equal-size sets (at most YL_SET_SIZE phrases each).
    rng = np.random.default_rng(seed)
    real_features = [yang_lerch_features(n, bars) for n in real.notes]
    song_ids = np.unique(real.groups)
    halves = np.array_split(rng.permutation(song_ids), 2)
    half_a = np.flatnonzero(np.isin(real.groups, halves[0]))
    half_b = np.flatnonzero(np.isin(real.groups, halves[1]))

    def cap(index):
        return np.sort(rng.choice(index, min(YL_SET_SIZE, len(index)), replace=False)) if len(index) else index

    ref_a = [real_features[i] for i in cap(half_a)]
    ref_b = [real_features[i] for i in cap(half_b)]
    result["yang_lerch"] = {"real_vs_real": {}, "settings": []}
    for part in PARTS:
        result["yang_lerch"]["real_vs_real"][part] = {f: yang_lerch(ref_a, ref_b, part, f)[:2] for f in YL_FEATURES}
    real_sample = cap(np.arange(len(real)))
    result["_plots"]["yang_lerch"] = {}
    for s, phrases in enumerate(sets):
        if settings[s]["group"] in TEXTURE_ONLY:
            result["yang_lerch"]["settings"].append({part: {f: (np.nan, np.nan) for f in YL_FEATURES} for part in PARTS})
            continue
        features = [yang_lerch_features(n, bars) for n in phrases.notes]
        features = [features[i] for i in cap(np.arange(len(features)))]
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
        if settings[s]["group"] in ("mood",) + TEXTURE_ONLY or len(phrases) == 0:
            result["classifier"].append({})
            continue
        gen_x = classifier_matrix(phrases)
        result["classifier"].append(two_sample_test(real_x, real.groups, gen_x, phrases.groups, seed))

    result["texture"] = {"real": texture_summary(real), "settings": [texture_summary(p) for p in sets]}
    result["adherence"] = [dict(adherence(phrases, settings[s].get("controls") or {}), setting=s, name=settings[s]["name"])
                           for s, phrases in enumerate(sets) if settings[s]["group"] == "adherence"]
    result["auto_agreement"] = [dict(auto_agreement(phrases) or {}, setting=s, name=settings[s]["name"])
                                for s, phrases in enumerate(sets) if settings[s]["group"] == "dance"]
    result["dance_targets"] = dance_targets(result, settings)
    result["chord_tones"] = chord_tone_analysis(real, sets, settings)
    result["mood"] = mood_analysis(data, real, sets, settings)
    result["_sets"] = sets
    result["_real"] = real
    return result


def chord_tone_analysis(real, sets, settings):
    """Chord-tone ratios per part on and between the beats: the held-out windows under their own
    annotated chords, and each phrase set that was made under forced chords."""

    def ratios(phrases):
        out = {}
        for p, part in enumerate(PARTS):
            total = np.zeros(4, dtype=int)
            for item, notes in zip(phrases.items, phrases.notes):
                total += chord_tone_counts(notes, item.get("chords", []), p)
            out[part] = {"strong": total[0] / total[1] if total[1] else np.nan,
                         "weak": total[2] / total[3] if total[3] else np.nan,
                         "notes": int(total[1] + total[3])}
        return out

    rows = [{"name": "held-out real (their own chords)", "setting": None, "ratios": ratios(real)}]
    for s, phrases in enumerate(sets):
        if settings[s]["group"] == "chords" and len(phrases):
            rows.append({"name": settings[s]["name"], "setting": s, "ratios": ratios(phrases)})
    return rows


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


def dance_targets(result, settings):
    """Every target of issue #11 against the figures: rows {"key", "title", "judged_on", "target", "figure",
    "met", "words"}. Texture targets on Dance T=1 (and Pop T=1 for those of both styles); the Arpeggio
    ones on the arp motion Arpeggio setting; density adherence over every density setting's bars; the
    classifier limit on Pop T=1. A figure not measured (no such setting in the run) is missed."""
    titles = {key: title for key, title, _ in TEXTURE}
    titles["density_adherence"] = "density adherence (bars with the asked bin ±1)"
    dance = next((i for i, s in enumerate(settings) if s["group"] == "dance"), None)
    pop = next((i for i, s in enumerate(settings) if s["group"] == "temperature" and abs(s["temperature"] - 1.0) < 1e-6), None)
    arpeggio = [r for r in result["adherence"] if r["rows"] and r["rows"][0]["kind"] == "arp_motion"
                and r["rows"][0]["asked"] == "arpeggio"]
    density = [row | {"bars": r["bars"]} for r in result["adherence"] for row in r["rows"] if row["kind"] == "density"]
    rows = []

    def add(key, judged_on, figure, target=None):
        target = target or DANCE_TARGETS[key]
        met, words = check_target(target, figure)
        rows.append({"key": key, "title": titles.get(key, key), "judged_on": judged_on, "target": target_text(target),
                     "figure": figure, "met": met, "words": words})

    texture = result["texture"]["settings"]
    for key in DANCE_TARGETS:
        if key in ("arp_drive_bars", "arp_single_onsets"):
            figure = None
            if arpeggio:
                row = arpeggio[0]["rows"][0]
                figure = row["drive_bars" if key == "arp_drive_bars" else "single_onsets"]
            add(key, f"Dance, {TARGET_SETTING[key]}", figure)
        elif key == "density_adherence":
            bars = sum(r["bars"] for r in density)
            figure = sum(r["adherence"] * r["bars"] for r in density) / bars if bars else None
            add(key, f"Dance, {TARGET_SETTING[key]}", figure)
        else:
            add(key, "Dance T=1" if dance is not None else "Dance T=1 (not in this run)",
                texture[dance][key] if dance is not None else None)
            if key in BOTH_STYLES:
                name = settings[pop]["name"] if pop is not None else "T=1"
                add(key, f"Pop {name}", texture[pop][key] if pop is not None else None)
    tests = result["classifier"][pop] if pop is not None else {}
    worst = max((t["accuracy"] for t in tests.values()), default=None)
    met, words = check_target(POP_CLASSIFIER_LIMIT, worst)
    rows.append({"key": "classifier_accuracy", "title": "classifier accuracy against held-out POP909 (the worse of two)",
                 "judged_on": f"Pop {settings[pop]['name']}" if pop is not None else "Pop T=1 (not in this run)",
                 "target": target_text(POP_CLASSIFIER_LIMIT) + " (goal 0.65)", "figure": worst, "met": met, "words": words})
    return rows

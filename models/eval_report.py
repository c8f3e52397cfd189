"""The report writer for models/eval.py: <out>/report.md and <out>/results-section.md (the eval
section of docs/RESULTS.md) from `analyse`'s result and the phrases.json xtask wrote, and `to_json`
for <out>/metrics.json."""

import datetime
import os
import subprocess

import numpy as np

from eval_metrics import (
    BAND_METRICS,
    COPY_RUN_NOTES,
    METRIC_TITLES,
    METRICS,
    MOODS,
    PARTS,
    YL_FEATURES,
    YL_PITCH,
)
from eval_stats import BOOTSTRAP_RESAMPLES, YL_SET_SIZE, nanmean
from eval_texture import TEXTURE

# Goals (issue #5), judged at temperature 1.
GOAL_CLASSIFIER_ACCURACY = 0.65
GOAL_COPY_SHARE = 0.01


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
        out.append((f"classifier accuracy ≤ {GOAL_CLASSIFIER_ACCURACY:g} (real vs generated, T = 1)", names,
                    worst["accuracy"] <= GOAL_CLASSIFIER_ACCURACY))
    share = row["copy"]["share_exact"]
    real = result["real_copy"]
    out.append((f"under {100 * GOAL_COPY_SHARE:g} % of phrases with a {COPY_RUN_NOTES}-note copied run (T = 1, any part)",
                (f"{100 * share:.2f} % of {row['phrases']} phrases (lead alone {100 * row['copy']['per_part_share_exact'][0]:.2f} %; "
                 f"longest run {row['copy']['max_exact']} notes); held-out real music against the same training songs: "
                 f"{100 * real['share_exact']:.2f} % (lead alone {100 * real['per_part_share_exact'][0]:.2f} %)"),
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
        out.append(f"- by temperature, metrics inside the band / classifier accuracy (gradient boosting) / {COPY_RUN_NOTES}-note copies: " + "; ".join(
            f"{r['name']} {sum(r['inside_band'][p][m] for p in PARTS for m in BAND_METRICS)}/{len(PARTS) * len(BAND_METRICS)}, "
            f"{fmt(result['classifier'][settings.index(r)].get('gradient boosting', {}).get('accuracy'), 2)}, "
            f"{100 * r['copy']['share_exact']:.1f} %" for r in sweep))
    tests = result["mood"]["tests"].get("generated", {})
    if tests:
        out.append("- mood (asked, T = 1): " + "; ".join(
            f"{name} {'yes' if not np.isnan(t['p_value']) and t['p_value'] < 0.05 else 'no'} (p = {t['p_value']:.2g})"
            for name, t in tests.items()))
    if i1 is not None:
        real, t1 = result["texture"]["real"], result["texture"]["settings"][i1]
        out.append("- texture and coherence at T = 1 (held-out POP909 in brackets): " + "; ".join(
            f"{title} {fmt(t1[key], 3)} ({fmt(real[key], 3)})" for key, title in
            [("clash_rate", "clash rate"), ("lead_out_of_key", "lead out of key"), ("lead_above_arp", "lead above the arp"),
             ("lead_notes_per_bar", "lead notes per bar"), ("lead_empty", "phrases with no lead")]))
    chord_rows = result.get("chord_tones", [])
    if len(chord_rows) > 1:
        def ratios(r):
            return "; ".join(f"{part} {fmt(r['ratios'][part]['strong'], 2)} / {fmt(r['ratios'][part]['weak'], 2)}"
                             for part in PARTS)
        real_row, forced = chord_rows[0], chord_rows[1:]
        for r in forced:
            tests = result["classifier"][r["setting"]]
            accuracy = " / ".join(f"{fmt(t['accuracy'], 3)}" for t in tests.values()) if tests else "–"
            out.append(f"- {r['name']} (jamming: held-out songs' chord progressions forced): chord-tone share on / "
                       f"between the beats {ratios(r)}; held-out real under their own chords {ratios(real_row)}; "
                       f"classifier accuracy {accuracy} (LR / GB)")
    for b in data["baselines"]:
        if b["measured"]:
            r = settings[b["setting"]]
            tests = result["classifier"][b["setting"]]
            out.append(f"- baseline {b['name']}: {sum(r['inside_band'][p][m] for p in PARTS for m in BAND_METRICS)} of "
                       f"{len(PARTS) * len(BAND_METRICS)} metrics inside the band, classifier accuracy "
                       + " / ".join(f"{fmt(t['accuracy'], 3)}" for t in tests.values()) + " (LR / GB), "
                       f"{100 * r['copy']['share_exact']:.1f} % {COPY_RUN_NOTES}-note copies")
        else:
            out.append(f"- baseline {b['name']}: not measured yet ({b.get('why', '')})")
    return out


def _target_cell(key, targets):
    """The Dance target column of the texture table: the target, and met / missed by how much (for each
    style where it holds for both; with the setting where it is judged on another)."""
    rows = [t for t in targets if t["key"] == key]
    if not rows:
        return ""
    if len(rows) == 1:
        t = rows[0]
        where = "" if t["judged_on"] == "Dance T=1" else f" ({t['judged_on']}: {fmt(t['figure'], 3)})"
        return f"{t['target']}{where}: {t['words'] if t['met'] else '**' + t['words'] + '**'}"
    return f"{rows[0]['target']} (both styles): " + "; ".join(
        f"{t['judged_on'].split(' ')[0]} {t['words'] if t['met'] else '**' + t['words'] + '**'}" for t in rows)


def texture_section(result, settings):
    """The texture and coherence figures (eval_texture.py): held-out POP909 against the Pop temperature
    sweep and key lock, Dance T=1 with its targets met or missed, and NES-MDB as Dance's reference."""
    shown = [i for i, s in enumerate(settings) if s["group"] in ("temperature", "key_lock")]
    dance = [i for i, s in enumerate(settings) if s["group"] == "dance"]
    nes = result["texture"].get("nesmdb")
    targets = result.get("dance_targets", [])
    header = ["figure", "held-out POP909"] + [f"Pop {settings[i]['name']}" for i in shown]
    header += [settings[i]["name"] for i in dance] + ["Dance target"]
    header += ["NES-MDB (texture reference)"] if nes else []
    rows = []
    for key, title, _ in TEXTURE:
        cells = [title, fmt(result["texture"]["real"][key], 2)]
        cells += [fmt(result["texture"]["settings"][i][key], 2) for i in shown + dance]
        cells.append(_target_cell(key, targets))
        cells += [fmt(nes.get(key), 2)] if nes else []
        rows.append(cells)
    reference = (f" NES-MDB: {nes['phrases']} windows of {nes['songs']} songs sampled from the folder, read as "
                 "`models/eval_nesmdb.py` says (its beat is inferred from the chip's frame timing; it has no chords)." if nes else
                 " NES-MDB was not found beside the workspace: no texture reference.")
    dance_text = (f" Dance T=1: style Dance, every control on Auto, at {settings[dance[0]].get('tempo_bpm') or 128:g} BPM's tempo bin."
                  if dance else " No Dance setting in this run.")
    return ["## Texture and coherence", "",
            ("What a dance producer hears first and how the parts sit together (`models/eval_texture.py`): means over "
             "phrases of shares within each phrase (of its notes, onsets, beats or bars), or shares of phrases where "
             "marked. Chord tones on beats 1 and 3: the annotated chords for POP909, the model's own CHORD tokens for "
             "generated phrases. Pop style is judged against held-out POP909; Dance against the targets of issue #11 "
             "(the Dance target column: met, or missed by how much) and against NES-MDB's textures." + dance_text + reference), "",
            table(header, rows), ""]


def adherence_section(result):
    """What the model did when a bar control was asked (eval_texture.adherence), and under Auto how often
    its notes did what its own control tokens said."""
    rows = []
    for r in result.get("adherence", []):
        for x in r["rows"]:
            if x["kind"] == "density":
                extra = f"exact bin {fmt(x['exact'], 2)}, mean bin {fmt(x['mean_bin'], 1)}"
            elif x["kind"] == "arp_motion":
                extra = f"{fmt(x['onsets_per_bar'], 1)} onsets/bar"
                if x["asked"] == "arpeggio":
                    extra += f"; bars with 8+ onsets {fmt(x['drive_bars'], 2)}; single-note onsets {fmt(x['single_onsets'], 2)}"
            else:
                extra = f"{fmt(x['onsets_per_bar'], 1)} onsets/bar; bars with 4+ onsets {fmt(x['pulse_bars'], 2)}"
            rows.append([r["name"], x["control"], str(x["asked"]), r["phrases"], r["bars"], fmt(x["adherence"], 2),
                         fmt(x["written"], 2), extra])
    lines = ["## Control adherence", ""]
    if not rows:
        return lines + ["No adherence setting in this run.", ""]
    lines += [("Style Dance, T = 1, one control forced per setting, the others on Auto. *did it*: the share of bars whose "
               "notes, measured with the data set's rules (`BarControls::measure`, in Python `eval_texture.measure_bar`), "
               "do what was asked: for density the measured bin (onsets per bar of the part, bins from "
               "`DENSITY_BIN_EDGES` 0, 1, 3, 5, 7, 9, 12, 16) within ±1 of the asked one; for arp motion and bass drive "
               "the same motion or drive. *tokens*: bars whose control tokens say what was asked (the composer forces "
               "them)."), "",
              table(["setting", "control", "asked", "phrases", "bars", "did it", "tokens", "also"], rows), ""]
    auto = [a for a in result.get("auto_agreement", []) if a.get("bars")]
    if auto:
        lines += ["Under Auto (Dance T=1), bars whose notes do what the model's own control tokens said: " + "; ".join(
            f"{a['name']}: density ±1 lead {fmt(a['lead_density'], 2)}, arp {fmt(a['arp_density'], 2)}, bass "
            f"{fmt(a['bass_density'], 2)}; arp motion {fmt(a['arp_motion'], 2)}; bass drive {fmt(a['bass_drive'], 2)} "
            f"({a['bars']} bars)" for a in auto) + ".", ""]
    return lines


def dance_targets_section(result):
    """Every target of issue #11, met or missed and by how much."""
    targets = result.get("dance_targets", [])
    if not targets:
        return []
    met = sum(t["met"] for t in targets)
    rows = [[t["title"], t["judged_on"], t["target"], fmt(t["figure"], 3), t["words"] if t["met"] else f"**{t['words']}**"]
            for t in targets]
    return ["## Dance targets (issue #11)", "",
            (f"{met} of {len(targets)} met. Style Dance, controls on Auto, T = 1, the phrases of this run (the issue "
             "asks for 200 seeds of 8 bars); the Arpeggio and density targets on the adherence settings that ask for "
             "them. Clash rate, lead out of key and empty parts are judged in both styles; the classifier limit on Pop."), "",
            table(["target", "judged on", "target value", "figure", "met"], rows), ""]


def dance_target_summary(result):
    """One line for the results section: how many Dance targets are met, and what is missed by how much."""
    targets = result.get("dance_targets", [])
    if not targets:
        return []
    missed = [t for t in targets if not t["met"]]
    text = f"- Dance targets (issue #11): {len(targets) - len(missed)} of {len(targets)} met"
    if missed:
        text += "; missed: " + "; ".join(f"{t['title']} ({t['judged_on']}) {fmt(t['figure'], 3)}, target {t['target']}, "
                                         f"{t['words']}" for t in missed)
    return [text]


def top_p_text(settings):
    """The nucleus the phrases were sampled with, as xtask's --top-p set it (1 = off)."""
    values = sorted({s["top_p"] for s in settings})
    # round: xtask writes an f32, so 0.95 arrives as 0.949999988...
    return "top-p " + " / ".join(str(round(v, 3)) for v in values)


def write_report(result, data, out_dir, seed, plot_files, elapsed):
    stamp = data.get("generated_unix")
    now = (datetime.datetime.fromtimestamp(stamp, datetime.UTC) if stamp else
           datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    cores, cpu = machine()
    model = data["model"]
    settings = result["settings"]
    lines = [f"# Neural Trio evaluation{' (QUICK run: too small to judge the model)' if data['quick'] else ''}", ""]
    lines += [
        f"- date: {now}; machine: {cores} cores (`nproc`), {cpu}",
        (f"- command: `{data['command']}`; phrase seeds {data['seed']}..{data['seed'] + max(s['phrases'] for s in data['settings']) - 1} "
         f"(phrase *i* of every setting uses seed {data['seed']} + *i* and the tempo bin — and under key lock the key — "
         f"of a held-out song drawn for *i*); statistics seed {seed} (bootstrap, subsampling, classifier folds)"),
        (f"- model: `{model['path']}` version `{model['version']}`, vocabulary {model['vocab_hash']}, context {model['context_length']}, "
         f"{model['n_layer']} layers; trained on: {model['training_data'] or 'not stated'}"),
        (f"- engine: the plugin's composer and sampler (`make_header`, `generate_bar`, `Constraints`, `Rng::for_bar`), "
         f"{data['bars']} bars per phrase, {top_p_text(data['settings'])}, registers lead {data['registers'][0]}, arp {data['registers'][1]}, "
         f"bass {data['registers'][2]}, all parts on, {data['threads']} generator thread(s) with one ONNX Runtime thread each"),
        (f"- real music: {len(data['held_out_songs'])} held-out POP909 songs ({data['held_out_songs'][0] if data['held_out_songs'] else '–'}"
         f"–{data['held_out_songs'][-1] if data['held_out_songs'] else '–'}; {len(data['held_out_skipped'])} unreadable skipped), "
         f"{len(data['real'])} non-overlapping {data['bars']}-bar windows from bar 0, through the tokenizer; copy detection "
         f"against {data['train_songs']} training songs (001–818, {data['train_skipped']} unreadable skipped)"),
        (f"- time: {elapsed:.0f} s in all, not counting the build (load held-out {data['timing'].get('load_held_out_s', 0):.1f} s, generation "
         f"{data['timing'].get('generate_s', 0):.1f} s, baselines {data['timing'].get('baselines_s', 0):.1f} s, copy detection {data['timing'].get('copy_detection_s', 0):.1f} s, metrics and report the rest)"),
        "",
        "## Goals (temperature 1, key lock off, mood Auto)",
        "",
    ]
    goal_rows = goals(result)
    lines.append(table(["goal", "figure", "met"], [(g, f, "yes" if ok else "**no**") for g, f, ok in goal_rows]))
    lines += ["", "## Per-part metrics at temperature 1 against the real-vs-real band", ""]
    lines.append(f"The band is the 95 % bootstrap interval of the held-out mean, resampling whole songs ({BOOTSTRAP_RESAMPLES:,} resamples); "
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
              ("In-key rate is measured against the phrase's header key (chosen by the model with key lock off, "
               "forced with it on; the annotated key for real music)."), ""]
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
              ("Overlap area (OA, 1 = the distributions coincide) between the intra-set distances of held-out real phrases "
               "and the inter-set distances real–generated (Yang & Lerch 2018; Gaussian KDE of Euclidean distances between "
               f"per-phrase features; up to {YL_SET_SIZE} phrases a side). *real vs real* splits the held-out songs into two halves "
               "and gives the OA real music itself reaches."), ""]
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
              (f"Per-phrase feature vectors ({len(BAND_METRICS)} style metrics + mean pitch, duration, velocity and IOI per part, "
               "and the pitch-class histogram of all notes); equal numbers of real windows (drawn at random) and generated "
               "phrases; cross-validated predictions with stratified folds grouped by song; accuracy over all held-out "
               "predictions with a one-sided binomial test against 0.5. 0.5 = indistinguishable."), ""]
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
              ("Longest run of notes a phrase shares with any training song (001–818), transposition-invariant: "
               "*interval + onset* matches pitch intervals and onset distances (the same line in the same rhythm, in any key); "
               "*interval only* ignores rhythm. Lines of all three parts of every training song are searched (a suffix "
               f"automaton; a match may cross parts). The held-out real windows are the reference: their {COPY_RUN_NOTES}-note runs are "
               "almost all arp and bass idioms (repeated bass notes, broken-chord figures) that many songs share, so the "
               "lead column is the one that speaks of copied melodies."), ""]
    rows = []
    for r in sweep + lock + [x for x in settings if x["group"] in ("mood", "baseline", "dance")]:
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

    lines += texture_section(result, settings)
    lines += dance_targets_section(result)
    lines += adherence_section(result)

    chord_rows = result.get("chord_tones", [])
    if len(chord_rows) > 1:
        lines += ["## Following chords", "",
                  ("The chord progressions of held-out songs (their annotations, one window each) forced on the model, as "
                   "the plugin forces played, captured or typed chords (chord tokens where they change; the arp and the bass "
                   "on chord tones, the bass on every change, the lead on chord tones on beats 1 and 3 and in the song's "
                   "key elsewhere). Share of each part's notes that are tones of the chord sounding at their onset, on the beat "
                   "/ between the beats, against the real songs under their own chords; and the classifier's accuracy "
                   "telling those phrases from real ones (0.5 = cannot tell)."), ""]
        rows = []
        for r in chord_rows:
            cells = [r["name"]]
            for part in PARTS:
                x = r["ratios"][part]
                cells.append(f"{fmt(x['strong'], 2)} / {fmt(x['weak'], 2)} ({x['notes']})")
            accuracy = "–"
            if r["setting"] is not None:
                tests = result["classifier"][r["setting"]]
                accuracy = " / ".join(f"{fmt(t['accuracy'], 2)}" for t in tests.values()) if tests else "–"
            cells.append(accuracy)
            rows.append(cells)
        lines.append(table(["phrases", "lead on / between beats (notes)", "arp", "bass",
                            "classifier accuracy (logistic regression / gradient boosting)"], rows))
        lines.append("")

    lines += ["## Mood", "",
              ("Mode: the duration-weighted pitch-class profile of all notes against the 24 Krumhansl–Kessler key profiles "
               "(a phrase counts as minor when its best minor correlation beats its best major one). Tempo feel in grid "
               "terms: notes per bar and mean inter-onset interval (slow songs are read half-time, so slow means fewer "
               "notes per grid bar). *real* groups held-out windows by their song's label; *generated* asks for the mood "
               "(T = 1, key lock off: the model picks the key, and in the header the key comes before the mood)."), ""]
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
    lines += ["", ("Does the label move the music the way it means? (one-sided tests: Fisher's exact test for the minor "
               "share, Mann–Whitney U for density and IOI)"), ""]
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
              ("Same engine around them: the Rust sampler, grammar and masks, the same seeds, tempo bins and settings as the "
               "model at T = 1 (key lock off, mood Auto); only the next-token logits come from the baseline "
               "(`models/eval.py serve`)."), ""]
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
        (f"- data: {len(data['real'])} {data['bars']}-bar windows of {len(data['held_out_songs'])} held-out POP909 songs; "
         f"{sum(len(s.items) for s in result['_sets'])} generated phrases ({', '.join(r['name'] for r in settings)})"),
        "",
        table(["goal", "figure", "met"], [(g, f, "yes" if ok else "**no**") for g, f, ok in goal_rows]),
        "",
    ] + other_figures(result, data) + dance_target_summary(result) + [
        "",
        "Full report with every metric, temperature, the Yang & Lerch overlaps, mood and plots: `target/eval/report.md`.",
        "",
    ]
    with open(os.path.join(out_dir, "results-section.md"), "w") as f:
        f.write("\n".join(section))
    return goal_rows


def to_json(x):
    """`analyse`'s result as plain JSON: keys starting with '_' (plot arrays) dropped, NaN as null."""
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

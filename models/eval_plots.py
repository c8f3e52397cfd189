"""Plots for models/eval.py: the PNG figures report.md links, drawn from `analyse`'s result."""

import os

import numpy as np

from eval_metrics import BAND_METRICS, COPY_RUN_NOTES, METRIC_TITLES, MOODS, PARTS, YL_FEATURES

DPI = 80


def plots(result, out_dir):
    """Draws the four figures into out_dir; returns {key: path} for report.md's links."""
    # Imported here: `eval.py --no-plots` (the tests) and `eval.py serve` never load matplotlib.
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
    fig.savefig(path, dpi=DPI)
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
        fig.savefig(path, dpi=DPI)
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
    fig.savefig(path, dpi=DPI)
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
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    files["mood"] = path
    return files

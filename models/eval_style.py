"""Does a fine-tune sound more like the user's music than the base model? Run by `cargo xtask
finetune` after training, on the data it writes:

    models/.venv/bin/python models/eval_style.py --data target/finetune/NAME/style.json --out FIGURES.json

`style.json`: 8-bar windows of the user's files that were never trained on ("real"), and phrases of
each model at temperature 1 ("models": {name: phrases}), all cut to the parts the user's files
have. For each model: the eval's classifier two-sample test against the real windows (accuracy
near 0.5 = the classifier cannot tell them apart) and every per-part metric's mean, next to the
real windows' means.
"""

import argparse
import json
import sys

import numpy as np

from eval_metrics import BAND_METRICS, METRIC_TITLES, PARTS, PhraseSet, classifier_matrix
from eval_stats import nanmean, two_sample_test

# Settings
SEED = 0


def metric_means(phrases, parts):
    """Per part, every metric's mean over the phrases (None where no phrase has a value)."""
    def mean(values):
        value = nanmean(values)
        return None if np.isnan(value) else value

    return {part: {m: mean(phrases.metrics[part][m]) for m in BAND_METRICS} for part in parts}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with open(args.data) as f:
        data = json.load(f)
    registers = [tuple(r) for r in data["registers"]]
    parts = [p for p in PARTS if p in data["parts"]]
    real = PhraseSet(data["real"], data["bars"], registers)
    real_x = classifier_matrix(real)
    out = {
        "real_windows": len(real),
        "real_files": len(np.unique(real.groups)),
        "parts": parts,
        "metric_titles": {m: METRIC_TITLES[m] for m in BAND_METRICS},
        "real_metrics": metric_means(real, parts),
        "models": {},
    }
    for name, items in data["models"].items():
        phrases = PhraseSet(items, data["bars"], registers)
        gen_x = classifier_matrix(phrases)
        # The features of parts the files lack have no value anywhere: constant, so they tell nothing
        # (gradient boosting cannot bin a column that is missing throughout).
        empty = np.all(np.isnan(real_x), axis=0) & np.all(np.isnan(gen_x), axis=0)
        real_model_x = real_x.copy()
        real_model_x[:, empty], gen_x[:, empty] = 0.0, 0.0
        test = two_sample_test(real_model_x, real.groups, gen_x, phrases.groups, SEED)
        out["models"][name] = {
            "phrases": len(phrases),
            "classifier": {k: {f: v[f] for f in ("accuracy", "ci", "n")} for k, v in test.items()},
            # What gives the phrases away: the largest standardized coefficients (positive = more
            # typical of the user's files).
            "telling_features": test.get("logistic regression", {}).get("telling_features", []),
            "metrics": metric_means(phrases, parts),
        }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

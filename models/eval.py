"""Evaluation report: generated phrases against held-out POP909, from the data `cargo xtask eval` wrote.

Run through xtask (it generates the phrases with the plugin's engine first):

    cargo xtask eval [--quick]

or, on an existing target/eval/phrases.json, from the workspace root:

    models/.venv/bin/python models/eval.py --data target/eval/phrases.json --out target/eval

Writes <out>/report.md, <out>/*.png, <out>/metrics.json and <out>/results-section.md (the eval
section of docs/RESULTS.md). `models/eval.py serve ngram|lstm ...` instead serves a baseline's
next-token logits to xtask (eval_serve.py).

This file is the entry point only; the work is beside it:
    eval_metrics.py  per-phrase metrics (and what each one means)
    eval_stats.py    bands, overlaps, classifier test, mood contrasts: the report's figures
    eval_texture.py  texture and coherence figures, the bar controls measured from notes, control
                     adherence and the Dance style's targets
    eval_nesmdb.py   NES-MDB windows as the texture reference
    eval_plots.py    the PNG figures
    eval_report.py   report.md, results-section.md, metrics.json
    eval_serve.py    the baseline logits server
"""

import argparse
import json
import os
import sys
import time

from threadpoolctl import threadpool_limits

import eval_nesmdb
from eval_plots import plots
from eval_report import to_json, write_report
from eval_serve import serve
from eval_stats import analyse


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        return serve(argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="models/eval.py serve --help: the baseline logits server",
    )
    parser.add_argument("--data", default="target/eval/phrases.json")
    parser.add_argument("--out", default="target/eval")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (tests)")
    parser.add_argument("--nesmdb", default=eval_nesmdb.default_dir(),
                        help="NES-MDB MIDI folder, the texture reference for the Dance style (default: beside the workspace)")
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
    if args.nesmdb:
        result["texture"]["nesmdb"] = eval_nesmdb.reference(args.nesmdb, int(data["bars"]), quick=data["quick"])
    plot_files = {} if args.no_plots else plots(result, args.out)
    # The whole eval's time: generation (what xtask measured) and this report.
    elapsed = data.get("timing", {}).get("collect_s", 0.0) + time.time() - started
    goal_rows = write_report(result, data, args.out, args.seed, plot_files, elapsed)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(to_json(result), f, indent=1)
    print(f"metrics and report in {time.time() - t:.1f} s: {os.path.join(args.out, 'report.md')}")
    for name, figure, ok in goal_rows:
        print(f"  [{'met' if ok else 'NOT met'}] {name}: {figure}")
    for t in result.get("dance_targets", []):
        figure = "–" if t["figure"] is None else f"{t['figure']:.3g}"
        print(f"  [Dance target {'met' if t['met'] else 'NOT met'}] {t['title']} ({t['judged_on']}): {figure}, "
              f"target {t['target']}: {t['words']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

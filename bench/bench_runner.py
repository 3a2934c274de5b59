"""The study runner's own cost, and memory across trials in one process.

    python bench/bench_runner.py overhead [--epochs 1] [--eager]   # a 10-trial `study scale`
    python bench/bench_runner.py memory [--trials 20]               # 20 trials, RSS after each

``overhead`` runs a real scaling study (``run_scale``: base, 2 grid points, compound phi = 2,
width/depth/resolution baselines at phi = 1 and 2 = 10 trials of EfficientNet-B0 on digits) and
compares its wall time with the sum of its trials' ``fit`` times (``train_seconds``) and with the
sum of fit + evaluation (val and test passes). What is left is the runner: data loading, building,
MACs counting, the baselines' MACs matching, saving each trial, the report.

``memory`` trains ``--trials`` trials one after another in this process exactly as the study does
(``train_trial`` then ``release()``), alternating two model sizes so that each trial builds and
traces a new model, and reads the resident set size after each. Growth is the slope of a
least-squares line through trials 3..N (the first trials warm TensorFlow's caches).

Writes bench/results/runner_overhead.csv / runner_memory.csv.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_csv  # noqa: E402


def rss_mb() -> float:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def overhead(args) -> int:
    from keras_convnets.study.config import StudyConfig
    from keras_convnets.study.scale import run_scale

    config = StudyConfig(name="bench_overhead", dataset="digits", grid_size=2, phi_max=2, epochs=args.epochs,
                         run_eagerly=args.eager)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "study"
        t = time.perf_counter()
        run_scale(config, out, quiet=True, log=lambda s: print(s, flush=True))
        wall = time.perf_counter() - t
        with open(out / "results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    fit = sum(float(r["train_seconds"]) for r in rows)
    evaluate = sum(float(r["val_seconds"]) + float(r["test_seconds"]) for r in rows)
    row = {"trials": len(rows), "ok": sum(r["status"] == "ok" for r in rows), "epochs": args.epochs,
           "eager": args.eager, "wall_s": wall, "fit_s": fit, "eval_s": evaluate,
           "wall_over_fit": wall / fit, "wall_over_fit_eval": wall / (fit + evaluate),
           "runner_s": wall - fit - evaluate, **environment()}
    print_table([{k: row[k] for k in list(row)[:10]}])
    print(f"wrote {write_csv('runner_overhead.csv', [row])}")
    return 0


def memory(args) -> int:
    import numpy as np

    from keras_convnets import data
    from keras_convnets.study import runner

    ds = data.load_dataset("digits", train_examples=256, val_examples=64, test_examples=64)
    recipe = runner.Recipe(epochs=1, batch_size=64, seed=0, verbose=0, bn_momentum=0.9)
    rows = []
    for i in range(args.trials):
        width = (1.0, 1.1)[i % 2]

        def build(width=width):
            return runner.build_registered(args.model, input_shape=(32, 32, 3), classes=ds.num_classes,
                                           width=width, depth=args.depth)

        t = time.perf_counter()
        metrics = runner.train_trial(build, ds, recipe, count_cost=False)
        runner.release()
        rows.append({"trial": i + 1, "width": width, "status": metrics["status"],
                     "seconds": time.perf_counter() - t, "rss_mb": rss_mb()})
        print_table([rows[-1]]) if i == 0 else print(f"{i + 1:>5}  {width:<5}  {metrics['status']:<6}  "
                                                      f"{rows[-1]['seconds']:.1f}s  {rows[-1]['rss_mb']:.0f} MiB",
                                                      flush=True)
    tail = rows[2:]
    slope = float(np.polyfit([r["trial"] for r in tail], [r["rss_mb"] for r in tail], 1)[0]) if len(tail) > 1 else 0.0
    summary = {"model": args.model, "depth": args.depth, "trials": args.trials,
               "rss_first_mb": rows[0]["rss_mb"], "rss_3_mb": rows[min(2, len(rows) - 1)]["rss_mb"],
               "rss_last_mb": rows[-1]["rss_mb"], "slope_mb_per_trial": slope, **environment()}
    print()
    print_table([{k: summary[k] for k in list(summary)[:7]}])
    print(f"wrote {write_csv('runner_memory.csv', [*rows, summary])}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--epochs", type=int, default=1)
    o.add_argument("--eager", action="store_true", help="run_eagerly trials (no graph tracing)")
    m = sub.add_parser("memory")
    m.add_argument("--trials", type=int, default=20)
    m.add_argument("--model", default="efficientnet_b0")
    m.add_argument("--depth", type=float, default=0.25)
    args = p.parse_args(argv)
    return overhead(args) if args.what == "overhead" else memory(args)


if __name__ == "__main__":
    sys.exit(main())

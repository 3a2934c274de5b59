"""The study runner's own cost, and memory across trials.

    python bench/bench_runner.py overhead [--epochs 1] [--eager] [--csv NAME]   # a 10-trial `study scale`
    python bench/bench_runner.py memory [--trials 20] [--mode isolated|in-process]  # RSS after each
    python bench/bench_runner.py search-memory [--trials 20] [--mode isolated|in-process]
    python bench/bench_runner.py planning                          # the baselines' MAC matching

``overhead`` runs a real scaling study (``run_scale``: base, 2 grid points, compound phi = 2,
width/depth/resolution baselines at phi = 1 and 2 = 10 trials of EfficientNet-B0 on digits) and
compares its wall time with the sum of its trials' ``fit`` times (``train_seconds``: Keras' fit,
its per-epoch validation passes included), with that sum less the validation passes (training
alone), with fit + the test pass, and with the sum of the trial processes' whole tasks
(``trial_seconds``: build, MACs, compile, fit, test, save; a trial prepared ahead does not count
its wait for the trial before). What is left is the runner: data loading, the baselines' MACs
matching not hidden behind a running trial, process starts, the report. It also prints each
trial's phases (prepare, wait, fit, test, save). ``KC_TRIAL_AHEAD=0`` runs the same study with
each trial built only when the one before has ended (the runner before the handoff).

``memory`` trains ``--trials`` trials one after another exactly as the study does
(``isolation.TrialRunner``: ``--mode isolated``, each trial in its own process, the default; or
``--mode in-process``, ``train_trial`` then ``release()`` in this process), alternating two model
sizes so that each trial builds and traces a new model, and reads the resident set size of the
study's process and of the trial's after each. Growth is the slope of a least-squares line
through trials 3..N (the first trials warm TensorFlow's caches).

``search-memory`` does the same for ``study search``: a random search of the family space over
EfficientNet-B0 (widths 0.5-1.0 in steps of 0.02, depth 0.2, 32 px, digits, 256 training images, one epoch a
trial), built exactly as the CLI builds it (``cmd_search.open_data``, ``make_hypermodel``,
``trial_runner``), the search process's RSS read as each trial is recorded.

``planning`` plans the overhead study's six single-dimension baselines (width, depth,
resolution at phi = 1 and 2, matched to the compound model's MACs: the models the study builds
only to count) twice in this process, counting on models built with their weights and on
:func:`keras_convnets.registry.weightless` builds (what the study does), each from an empty
cache, and checks that both give the same trials.

Writes bench/results/runner_overhead.csv / runner_memory_<mode>.csv / search_memory_<mode>.csv /
planning.csv.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_csv  # noqa: E402


def overhead(args) -> int:
    from keras_convnets.study.config import StudyConfig
    from keras_convnets.study.scale import run_scale

    config = StudyConfig(name="bench_overhead", dataset="digits", grid_size=2, phi_max=2, epochs=args.epochs,
                         run_eagerly=args.eager)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "study"
        t = time.perf_counter()
        # Each progress line with the seconds since the start: where the time outside trials goes.
        run_scale(config, out, quiet=True, log=lambda s: print(f"{time.perf_counter() - t:8.1f}s  {s}", flush=True))
        wall = time.perf_counter() - t
        with open(out / "results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    def total(key):
        return sum(float(r.get(key) or 0) for r in rows)

    # Each trial's phases: prepare (build, count, compile, pipelines), waiting for the trial before
    # it to be measured (prepared ahead), fit, test pass, save.
    print_table([{"trial": r["trial_id"], **{k: r.get(k, "") for k in (
        "prepare_seconds", "handoff_wait_seconds", "train_seconds", "val_seconds", "test_seconds", "save_seconds",
        "trial_seconds")}} for r in rows])
    # train_seconds: fit, its per-epoch validation passes included (val_seconds); the test pass after
    fit = sum(float(r["train_seconds"]) for r in rows)
    val = sum(float(r["val_seconds"]) for r in rows)
    test = sum(float(r["test_seconds"]) for r in rows)
    # trial_seconds: the trial process's whole task (build, MACs, compile, fit, test, save)
    trial = sum(float(r.get("trial_seconds") or 0) for r in rows)
    # ahead: the next trial built while one trains (the default on a CPU; KC_TRIAL_AHEAD=0 turns it off)
    row = {"trials": len(rows), "ok": sum(r["status"] == "ok" for r in rows), "epochs": args.epochs,
           "eager": args.eager, "ahead": os.environ.get("KC_TRIAL_AHEAD", "1") != "0", "wall_s": wall, "fit_s": fit, "val_in_fit_s": val, "test_s": test, "trial_s": trial,
           "wall_over_fit": wall / fit, "wall_over_training": wall / (fit - val),
           "wall_over_fit_test": wall / (fit + test), "wall_over_trials": wall / trial if trial else float("nan"),
           "runner_s": wall - fit - test, "outside_trials_s": wall - trial, "prepare_s": total("prepare_seconds"),
           "save_s": total("save_seconds"), "handoff_wait_s": total("handoff_wait_seconds"), **environment()}
    print_table([{k: row[k] for k in list(row)[:16]}])
    print(f"wrote {write_csv(args.csv, [row])}")
    return 0


def planning(args) -> int:
    import keras

    from keras_convnets import registry
    from keras_convnets.flops import count_macs
    from keras_convnets.study import runner
    from keras_convnets.study.config import StudyConfig
    from keras_convnets.study.plan import Planner

    config = StudyConfig(name="bench_planning", dataset="digits", grid_size=2, phi_max=2, base=args.model)
    spec = registry.get(config.base)

    def macs_fn(weightless):
        def count(width, depth, side):
            with registry.weightless() if weightless else contextlib.nullcontext():
                model = runner.build_registered(config.base, input_shape=(side, side, spec.channels), classes=10,
                                                width=width, depth=depth)
                return count_macs(model)
        return count

    rows, plans = [], {}
    for weightless in (False, True):
        keras.backend.clear_session()
        calls = []
        fn = macs_fn(weightless)
        planner = Planner(config, spec, lambda w, d, s: calls.append((w, d, s)) or fn(w, d, s))
        planner.set_best(1.2, 1.1, 1.15)
        t = time.perf_counter()
        plans[weightless] = [planner.baseline(m, phi) for m in ("width", "depth", "resolution")
                             for phi in range(1, config.phi_max + 1)]
        seconds = time.perf_counter() - t
        rows.append({"model": config.base, "counting": "weightless" if weightless else "with weights",
                     "models_counted": len(calls), "seconds": round(seconds, 2),
                     "s_per_model": round(seconds / max(len(calls), 1), 3), **environment()})
        print(f"{rows[-1]['counting']}: {len(calls)} models in {seconds:.1f} s", flush=True)
    assert plans[False] == plans[True], "weightless counting planned different trials"
    rows[1]["speedup"] = round(rows[0]["seconds"] / rows[1]["seconds"], 2)
    print_table([{k: r.get(k, "") for k in ("model", "counting", "models_counted", "seconds", "s_per_model",
                                            "speedup")} for r in rows])
    print(f"wrote {write_csv('planning.csv', rows)}")
    return 0


def growth(rows: list[dict], key: str) -> float:
    """MiB a trial: the slope of a least-squares line through trials 3..N (the first trials warm
    TensorFlow's caches)."""
    import numpy as np

    tail = rows[2:]
    return float(np.polyfit([r["trial"] for r in tail], [r[key] for r in tail], 1)[0]) if len(tail) > 1 else 0.0


def memory(args) -> int:
    from keras_convnets import data
    from keras_convnets.study import runner
    from keras_convnets.study.isolation import TrialRunner, rss_mb as study_rss

    kwargs = dict(spec="digits", train_examples=256, val_examples=64, test_examples=64, seed=0)
    ds = data.load_dataset(**kwargs)
    recipe = runner.Recipe(epochs=1, batch_size=64, seed=0, verbose=0, bn_momentum=0.9)
    isolate = args.mode == "isolated"
    rows = []
    with tempfile.TemporaryDirectory() as tmp, TrialRunner(ds, kwargs, isolate=isolate) as trials:
        for i in range(args.trials):
            width = (1.0, 1.1)[i % 2]
            task = {"build": dict(name=args.model, input_shape=(32, 32, 3), classes=ds.num_classes, width=width,
                                  depth=args.depth),
                    "recipe": recipe.to_dict(), "save_path": str(Path(tmp) / f"t{i}.keras")}
            t = time.perf_counter()
            metrics = trials.run(task, more=i + 1 < args.trials)
            runner.release()
            rows.append({"trial": i + 1, "mode": args.mode, "width": width, "status": metrics["status"],
                         "seconds": time.perf_counter() - t, "study_rss_mb": study_rss(),
                         "trial_rss_mb": metrics.get("memory_mb"), "trial_peak_mb": metrics.get("peak_memory_mb")})
            r = rows[-1]
            print_table([r]) if i == 0 else print(f"{i + 1:>5}  {args.mode}  {width:<5}  {r['status']:<6}  "
                                                  f"{r['seconds']:.1f}s  study {r['study_rss_mb']:.0f} MiB  "
                                                  f"trial {r['trial_rss_mb']:.0f} MiB", flush=True)
    summary = {"model": args.model, "depth": args.depth, "mode": args.mode, "trials": args.trials,
               "study_rss_first_mb": rows[0]["study_rss_mb"], "study_rss_last_mb": rows[-1]["study_rss_mb"],
               "study_slope_mb_per_trial": growth(rows, "study_rss_mb"),
               "trial_rss_first_mb": rows[0]["trial_rss_mb"], "trial_rss_last_mb": rows[-1]["trial_rss_mb"],
               "trial_slope_mb_per_trial": growth(rows, "trial_rss_mb"), **environment()}
    print()
    print_table([{k: summary[k] for k in list(summary)[:10]}])
    print(f"wrote {write_csv(f'runner_memory_{args.mode}.csv', [*rows, summary])}")
    return 0


def search_memory(args) -> int:
    from keras_convnets import tuning
    from keras_convnets.study import cmd_search
    from keras_convnets.study.isolation import rss_mb as study_rss

    parser = argparse.ArgumentParser()
    cmd_search.add_arguments(parser)
    ns = parser.parse_args(["--space", "family", "--models", args.model, "--train-examples", "256", "--epochs", "1",
                            *(["--in-process"] if args.mode == "in-process" else [])])
    s = cmd_search.resolve_settings(ns)
    s.update(widths=[0.5, 1.0, 0.02], depths=[0.2, 0.2, 0.1], tune_training=False)  # 26 distinct models
    data = cmd_search.open_data(s)
    hypermodel = cmd_search.make_hypermodel(s, data.classes)
    rows: list[dict] = []
    started = time.perf_counter()

    class RSS:
        def lookup(self, trial_id):
            return None

        def record(self, trial_id, hp, metrics, status, message=""):
            rows.append({"trial": len(rows) + 1, "mode": args.mode, "width": hp.values.get("width_multiplier"),
                         "depth": hp.values.get("depth_multiplier"), "status": status,
                         "seconds": time.perf_counter() - started, "study_rss_mb": study_rss()})
            r = rows[-1]
            print(f"{r['trial']:>5}  {args.mode}  w {r['width']:.2f} d {r['depth']:.2f}  {status:<6}  "
                  f"{r['seconds']:.0f}s  study {r['study_rss_mb']:.0f} MiB  {message[:80]}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        trials = cmd_search.trial_runner(s, data, hypermodel)
        tuner = tuning.make_tuner("random", hypermodel, max_trials=args.trials, seed=0, directory=tmp,
                                  recorder=RSS(), models_dir=Path(tmp) / "trials", trials=trials)
        with trials or contextlib.nullcontext():
            tuner.search(data, epochs=1, verbose=0)
    summary = {"model": args.model, "mode": args.mode, "trials": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
               "wall_s": time.perf_counter() - started, "study_rss_first_mb": rows[0]["study_rss_mb"],
               "study_rss_last_mb": rows[-1]["study_rss_mb"], "study_slope_mb_per_trial": growth(rows, "study_rss_mb"), **environment()}
    print()
    print_table([{k: summary[k] for k in list(summary)[:8]}])
    print(f"wrote {write_csv(f'search_memory_{args.mode}.csv', [*rows, summary])}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--epochs", type=int, default=1)
    o.add_argument("--eager", action="store_true", help="run_eagerly trials (no graph tracing)")
    o.add_argument("--csv", default="runner_overhead.csv", help="file name under bench/results/")
    m = sub.add_parser("memory")
    m.add_argument("--trials", type=int, default=20)
    m.add_argument("--model", default="efficientnet_b0")
    m.add_argument("--depth", type=float, default=0.25)
    m.add_argument("--mode", choices=("isolated", "in-process"), default="isolated",
                   help="each trial in its own process (the study's default) or all in this one")
    sm = sub.add_parser("search-memory")
    sm.add_argument("--trials", type=int, default=20)
    sm.add_argument("--model", default="efficientnet_b0")
    sm.add_argument("--mode", choices=("isolated", "in-process"), default="isolated")
    pl = sub.add_parser("planning")
    pl.add_argument("--model", default="efficientnet_b0")
    args = p.parse_args(argv)
    return {"overhead": overhead, "memory": memory, "search-memory": search_memory,
            "planning": planning}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())

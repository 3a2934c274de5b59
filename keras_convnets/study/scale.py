"""``study scale``: EfficientNet's scaling study on any scalable registered model.

:func:`run_scale` checks everything that can be checked before training (the base model, its
knobs, the coefficients, the data), then trains the trials of :mod:`keras_convnets.study.plan`
one by one with :func:`keras_convnets.study.runner.train_trial`, writes each row to
``DIR/results.csv`` the moment its trial ends, keeps its trained model in
``DIR/trials/<id>.keras``, and builds ``DIR/index.html`` at the end. ``DIR/study.json`` holds the
settings, the environment and the plan. A resumed study skips the rows already written.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from keras_convnets.study import StudyError
from keras_convnets.study.isolation import TrialRunner, memory_note, rss_mb
from keras_convnets.study.results import ResultsStore, atomic_write_text

__all__ = ["run_scale", "prepare_out_dir", "OUR_FILES"]

STUDY_JSON = "study.json"
TRIALS_DIR = "trials"
MACS_CACHE = "macs_cache.json"
OUR_FILES = (ResultsStore.FILENAME, STUDY_JSON, "index.html", MACS_CACHE, TRIALS_DIR)
# Settings that do not change what a trial computes; a resume may differ in them.
_COSMETIC = ("description",)
_COSMETIC_TRAINING = ("isolate",)  # where a trial runs, not what it computes


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def prepare_out_dir(out: Path, settings: dict, *, resume: bool, overwrite: bool, dry_run: bool = False) -> dict | None:
    """Never overwrite silently: an existing non-empty DIR needs --resume (same settings) or
    --overwrite (removes this tool's files only). Returns the previous study.json on resume.
    ``dry_run`` only checks (nothing is created or removed)."""
    if resume and overwrite:
        raise StudyError("--resume and --overwrite contradict each other; pick one")
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {str(out)!r} exists and is not a directory")
    existing = out.is_dir() and any(out.iterdir())
    if not existing:
        if not dry_run:
            out.mkdir(parents=True, exist_ok=True)
        return None
    if overwrite and dry_run:
        return None
    if overwrite:
        for name in OUR_FILES:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        return None
    if not resume:
        raise StudyError(f"{str(out)!r} already exists and is not empty; pass --resume to continue that "
                         "study or --overwrite to start it again (or choose another --out)")
    meta_path = out / STUDY_JSON
    if not meta_path.exists():
        raise StudyError(f"{str(out)!r} is not a scale study (no {STUDY_JSON}); cannot --resume it")
    previous = json.loads(meta_path.read_text())
    old, new = _what_computes(previous.get("settings", {})), _what_computes(settings)
    if old != new:
        diffs = _diff(old, new)
        raise StudyError(f"{str(out)!r} was run with other settings ({'; '.join(diffs[:4])}); --resume needs the "
                         "same settings: rerun with them, or use --overwrite / another --out")
    return previous


def _what_computes(settings: dict) -> dict:
    """The settings without those that do not change a trial's numbers (``_COSMETIC``)."""
    out = {k: v for k, v in settings.items() if k not in _COSMETIC}
    if isinstance(out.get("training"), dict):
        out["training"] = {k: v for k, v in out["training"].items() if k not in _COSMETIC_TRAINING}
    return out


def _diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


class Progress:
    """``[i/N] trial ... elapsed, ETA`` lines (ETA from the mean time of this run's trials)."""

    def __init__(self, total: int, done: int, log: Callable[[str], None]):
        self.total, self.done, self.log = total, done, log
        self.start = time.perf_counter()
        self.durations: list[float] = []

    def begin(self, trial_id: str, detail: str) -> float:
        elapsed = time.perf_counter() - self.start
        left = self.total - self.done
        eta = f", ETA ~{_fmt_seconds(left * sum(self.durations) / len(self.durations))}" if self.durations else ""
        self.log(f"[trial {self.done + 1}/{self.total}] {trial_id} ({detail}) - elapsed {_fmt_seconds(elapsed)}{eta}")
        return time.perf_counter()

    def end(self, t0: float, summary: str) -> None:
        self.durations.append(time.perf_counter() - t0)
        self.done += 1
        self.log(f"    -> {summary} in {_fmt_seconds(self.durations[-1])}")

    def skip(self, trial_id: str) -> None:
        self.log(f"[trial {self.done + 1}/{self.total}] {trial_id}: already in results.csv, skipped (--resume)")
        self.done += 1


def _check_base(config):
    from keras_convnets import registry

    spec = registry.get(config.base)  # unknown names -> ValueError naming the closest
    need = {"width_multiplier", "depth_multiplier", "resolution"}
    missing = sorted(need - set(spec.knobs))
    if missing:
        raise StudyError(f"{config.base} cannot be scaled by {', '.join(missing)} (its scaling knobs are "
                         f"{list(spec.knobs) or 'none'}); a scaling study needs a family with width, depth and "
                         "resolution knobs")
    if config.resolution < spec.min_size:
        raise StudyError(f"--resolution {config.resolution} is below {config.base}'s minimum input "
                         f"{spec.min_size}x{spec.min_size}")
    return spec


def run_scale(config, out: str | Path, *, resume: bool = False, overwrite: bool = False, quiet: bool = False,
              log: Callable[[str], None] | None = None, argv: list[str] | None = None) -> Path:
    """Run (or resume) the scaling study ``config`` into ``out``; returns the report's path."""
    from keras_convnets.study.plan import Planner, grid_points as plan_grid_points

    log = log or (lambda s: print(s, flush=True))
    out = Path(out)
    settings = config.sections()
    grid_points = plan_grid_points(config)  # impossible coefficients / targets fail here, before any work
    if config.isolate:
        from keras_convnets.study.isolation import start_server

        start_server()  # its imports beside this process's (the next line's are the first)
    spec = _check_base(config)
    if config.isolate:  # a model registered in this process must reach the trial processes
        from keras_convnets.study.isolation import user_specs

        user_specs()
    from keras_convnets import data as data_mod
    prepare_out_dir(out, settings, resume=resume, overwrite=overwrite, dry_run=True)
    # The data before touching DIR: a missing dataset must not cost an --overwrite its old results.
    dataset_kwargs = dict(spec=config.dataset, data_dir=config.data_dir or None,
                          train_examples=config.train_examples, val_examples=config.val_examples,
                          test_examples=config.test_examples, seed=config.seed, augment=config.augment,
                          download=config.download)
    dataset = data_mod.load_dataset(**dataset_kwargs)
    previous = prepare_out_dir(out, settings, resume=resume, overwrite=overwrite)
    from keras_convnets.study import runner

    recipe = runner.Recipe.from_config(config, verbose=0 if quiet else 1)
    store = ResultsStore(out)
    meta = {
        "kind": "scale",
        "name": config.name,
        "description": config.description,
        "settings": settings,
        "command": list(argv) if argv is not None else sys.argv[1:],
        "environment": runner.environment(),
        "dataset": dataset.describe(),
        "base_model": {k: spec.info()[k] for k in ("name", "family", "paper", "arxiv", "min_input_size", "scaling_knobs")},
        "started_at": (previous or {}).get("started_at", _now()),
        "resumed_at": [*(previous or {}).get("resumed_at", []), _now()] if previous else [],
        "status": "running",
    }
    meta_path = out / STUDY_JSON

    def save_meta():
        meta["updated_at"] = _now()
        atomic_write_text(meta_path, json.dumps(meta, indent=2, default=str))

    save_meta()
    channels, classes = spec.channels, dataset.num_classes

    def macs_fn(width, depth, side):
        from keras_convnets import registry
        from keras_convnets.flops import count_macs

        # Weightless: matching a baseline's MACs builds a dozen candidates, and creating their
        # variables was most of that cost (registry.weightless). No clear_session here (it costs a
        # second each time); the next trial's release() frees these.
        with registry.weightless():
            model = runner.build_registered(config.base, input_shape=(side, side, channels), classes=classes,
                                            width=width, depth=depth, build_args=config.build_args)
            return count_macs(model)

    planner = Planner(config, spec, macs_fn, cache_path=out / MACS_CACHE)
    total = 1 + len(grid_points) + (config.phi_max - 1) + len(config.baselines) * config.phi_max
    done_rows = {r["trial_id"]: r for r in store.rows()}
    progress = Progress(total, 0, log)
    log(f"study {config.name!r}: {total} trials of {config.base} on {dataset.name} "
        f"(train {dataset.sizes['train']}, val {dataset.sizes['val']}, test {dataset.sizes['test']}) -> {out}"
        f"{'' if config.isolate else ' (trials in this process)'}")
    # The next trial is built while one trains on a CPU; on an accelerator it would hold the device.
    trials = TrialRunner(dataset, dataset_kwargs, isolate=config.isolate, ahead=not meta["environment"]["accelerators"])
    try:
        return _run_trials(config, out, log, store, done_rows, progress, planner, trials, total, meta, save_meta,
                           channels, classes, grid_points, recipe)
    finally:
        trials.close()


def _run_trials(config, out, log, store, done_rows, progress, planner, trials, total, meta, save_meta,
                channels, classes, grid_points, recipe):
    """The trials in order (base, grid, then per phi the compound point and its baselines),
    each row written when its trial ends; then the report."""
    dataset = trials.context

    base_macs: dict[str, int] = {}

    def weights_of(trial) -> Path:
        """Where the trained model is kept, relative to the study's folder."""
        return Path(TRIALS_DIR) / f"{trial.trial_id}.keras"

    def task_for(trial) -> dict:
        """What a trial process needs to train ``trial`` and keep its model."""
        return {"build": dict(name=config.base, input_shape=(trial.resolution, trial.resolution, channels),
                              classes=classes, width=trial.width, depth=trial.depth,
                              build_args=config.build_args, precision=config.precision),
                "recipe": recipe.to_dict(), "save_path": str(out / weights_of(trial))}

    def plan_ahead(make_trial) -> dict | None:
        """Plan a later trial now (its MACs are memoised) and return its task, which its process
        prepares while this trial trains; a failure is recorded when it is run."""
        try:
            return task_for(make_trial())
        except Exception:  # noqa: BLE001 - planned again, and recorded, in its turn
            return None

    def pending(queue):
        """The first trial of ``queue`` (id, make_trial) not yet in results.csv, or None."""
        return next((mk for tid, mk in queue if tid not in done_rows), None)

    def run(trial_id: str, make_trial, extra=None, plan_next=None):
        """Train the trial ``make_trial()`` unless ``trial_id`` is already in results.csv (then it
        is not even planned: planning a baseline builds models to match MACs). ``plan_next``
        plans the following trial while this one trains in its own process (matching a depth
        baseline's MACs builds a dozen deep models, over a minute on 2 cores), and that trial's
        process builds its model then (isolation.TrialRunner.run)."""
        if trial_id in done_rows:
            progress.skip(trial_id)
            return done_rows[trial_id]
        try:
            trial = make_trial()
        except Exception as e:  # noqa: BLE001 - a trial that cannot be planned is recorded, the study goes on
            t0 = progress.begin(trial_id, "planning")
            row = {"trial_id": trial_id, "method": trial_id.split("-")[0], "model": config.base, "status": "failed",
                   "error": f"planning failed: {type(e).__name__}: {str(e).strip()[:300]}", "finished_at": _now()}
            store.append(row)
            done_rows[trial_id] = {k: str(v) for k, v in row.items()}
            progress.end(t0, f"FAILED: {row['error']}")
            return done_rows[trial_id]
        t0 = progress.begin(trial.trial_id, f"width {trial.width:.3f}, depth {trial.depth:.3f}, "
                                            f"{trial.resolution}px")
        weights = weights_of(trial)
        # Every trial ends in done_rows (resumed, finished or failed): another follows this one
        # unless it is the last, and then no spare process is started.
        metrics = trials.run(task_for(trial), more=len(done_rows) + 1 < total,
                             meanwhile=(lambda: plan_ahead(plan_next)) if plan_next is not None else None)
        # memory_mb: the trial's process at its end (flat across trials when nothing leaks);
        # study_memory_mb: the study's own process.
        metrics["study_memory_mb"] = rss_mb()
        if metrics.get("macs"):
            planner.remember(trial.width, trial.depth, trial.resolution, metrics["macs"])
        row = {**trial.row(), "model": config.base, **metrics}
        if metrics.get("macs") and base_macs.get("macs"):
            row["macs_ratio"] = round(metrics["macs"] / base_macs["macs"], 4)
        if trial.target_macs and metrics.get("macs"):
            row["macs_vs_target"] = round(metrics["macs"] / trial.target_macs - 1.0, 4)
        row.update(seed=config.seed, epochs=config.epochs, train_examples=dataset.sizes["train"],
                   val_examples=dataset.sizes["val"], test_examples=dataset.sizes["test"],
                   weights=str(weights) if metrics["status"] == "ok" else "", finished_at=_now(), **(extra or {}))
        store.append(row)
        done_rows[trial.trial_id] = {k: str(v) for k, v in row.items()}
        summary = (f"val {metrics['val_accuracy']:.4f}, test {metrics['test_accuracy']:.4f}, "
                   f"{metrics['macs'] / 1e6:.1f}M MACs" if metrics["status"] == "ok"
                   else f"FAILED: {metrics['error']}") + memory_note(metrics)
        progress.end(t0, summary)
        return done_rows[trial.trial_id]

    # The grid's points do not depend on any result: each is prepared while the trial before trains.
    grid = [(t.trial_id, lambda t=t: t) for t in planner.grid()]
    base_row = run("base", planner.base, plan_next=pending(grid))
    if base_row.get("macs"):
        base_macs["macs"] = int(float(base_row["macs"]))
    else:
        base_macs["macs"] = planner.macs()

    grid_rows = [run(tid, make_trial, plan_next=pending(grid[i + 1:])) for i, (tid, make_trial) in enumerate(grid)]
    ok = [r for r in grid_rows if r.get("status") == "ok"]
    if not ok:
        meta["status"] = "finished"
        meta["note"] = "every grid trial failed: no compound or baseline trials were run"
        save_meta()
        log("every grid trial failed; no compound or baseline trials can be planned")
        return _report(out, log)
    # Ties go to the earlier grid point (the paper's first when on the grid).
    best = max(ok, key=lambda r: float(r["val_accuracy"]))
    a, b, g = (float(best[k]) for k in ("alpha", "beta", "gamma"))
    planner.set_best(a, b, g)
    meta["best_grid"] = {"trial_id": best["trial_id"], "alpha": a, "beta": b, "gamma": g,
                         "val_accuracy": float(best["val_accuracy"]),
                         "product": planner.compound_rule.product}
    meta["base_macs"] = base_macs["macs"]
    save_meta()
    log(f"best grid point: alpha={a}, beta={b}, gamma={g} (val accuracy {float(best['val_accuracy']):.4f})")

    later = []  # every trial after the grid: each planned while the one before it trains
    for phi in range(1, config.phi_max + 1):
        if phi > 1:
            later.append((f"compound-phi{phi}", lambda phi=phi: planner.compound(phi)))
        for method in config.baselines:
            later.append((f"{method}-phi{phi}", lambda method=method, phi=phi: planner.baseline(method, phi)))
    for i, (trial_id, make_trial) in enumerate(later):
        run(trial_id, make_trial, plan_next=pending(later[i + 1:]))
    meta["status"] = "finished"
    meta["finished_at"] = _now()
    save_meta()
    return _report(out, log)


def _report(out: Path, log) -> Path:
    from keras_convnets.report import build_scale_report

    path = build_scale_report(out)
    log(f"report: {path}")
    return path

"""Shared measurement helpers for the benchmarks (never part of the test suite).

Timings are taken side by side in one process and alternated (A, B, A, B, ...), and reported as
ratios of medians, so a noisy machine shifts both sides alike.
"""

from __future__ import annotations

import csv
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn, repeats: int) -> float:
    return _median_times(fn, repeats)[0]


def _median_times(fn, repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def alternate_samples(fns: dict, rounds: int = 5, repeats: int = 3, warmup: int = 2) -> dict:
    """Per-round median seconds per call of each function, ``{name: {"wall": [...], "cpu": [...]}}``,
    measured in alternating rounds, the order rotated from round to round."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {k: {"wall": [], "cpu": []} for k in fns}
    keys = list(fns)
    for r in range(rounds):
        # Each round starts one function later: in a fixed order a function always follows the
        # same one, and that carries over (ResNet50V2's inference read 0.80-0.89 of keras' while
        # it always ran right after keras' training step; alone, in swapped order, 0.99).
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            wall, cpu = _median_times(fns[k], repeats)
            samples[k]["wall"].append(wall)
            samples[k]["cpu"].append(cpu)
    return samples


def alternate(fns: dict, rounds: int = 5, repeats: int = 3, warmup: int = 2) -> dict:
    """Median wall seconds per call of each function over :func:`alternate_samples`' rounds."""
    return {k: statistics.median(v["wall"]) for k, v in alternate_samples(fns, rounds, repeats, warmup).items()}


def matmul_ceiling_gflops(n: int = 4096, repeats: int = 10, detail: dict | None = None) -> float:
    """The machine's fp32 ceiling: the faster of two large square matmuls (2*n^3 FLOPs), numpy's
    (its BLAS: OpenBLAS here) and the Keras backend's (``keras.ops.matmul``), in the same process
    as the models measured. The *fastest* of ``repeats`` runs: a ceiling is what the machine can
    do, and anything else running only slows a run down. Measured 2026-12-01 on the 2-core CI-like
    machine: numpy 144 GFLOP/s, TensorFlow's matmul 63-79, a large 3x3 convolution (oneDNN) 123;
    the TF matmul alone was below what the models' convolutions reached, so it was no ceiling.
    ``detail`` (a dict) receives both figures."""
    import keras
    import numpy as np
    from keras import ops

    an = np.random.default_rng(0).normal(size=(n, n)).astype("float32")
    bn = np.random.default_rng(1).normal(size=(n, n)).astype("float32")
    a, b = ops.convert_to_tensor(an), ops.convert_to_tensor(bn)

    def backend_run():
        keras.ops.convert_to_numpy(ops.sum(ops.matmul(a, b)))

    def numpy_run():
        np.matmul(an, bn)

    figures = {}
    for name, run in (("numpy", numpy_run), ("backend", backend_run)):
        run()
        figures[name] = 2 * n**3 / min(median_time(run, 1) for _ in range(repeats)) / 1e9
    if detail is not None:
        detail.update(figures)
    return max(figures.values())


def environment() -> dict:
    import keras

    return {"python": platform.python_version(), "keras": keras.__version__, "backend": keras.backend.backend(),
            "cpu_count": os.cpu_count(), "machine": platform.machine()}


def write_csv(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def print_table(rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in cols))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)

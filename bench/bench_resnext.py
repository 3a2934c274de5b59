"""Does ResNeXt-50 train at a speed proportional to its MACs? Training-step time per image of
ResNeXt-50 32x4d against ResNet-50 (they have about equal MACs) on this machine's TF CPU backend.

    PYTHONPATH=. python bench/bench_resnext.py                 # 64x64 batch 16, 224x224 batch 4
    PYTHONPATH=. python bench/bench_resnext.py --sizes 64:16 --rounds 9
    PYTHONPATH=. python bench/bench_resnext.py --native        # also keras' Conv2D(groups=32), slow

Models: ResNeXt-50 32x4d and ResNet-50 in the same torchvision layout (stride on the 3x3, the
only difference is the grouped, wider bottleneck), plus keras.applications' ResNet-50 layout. Each
round times one SGD step of every model, in a rotating order, so load from other processes on a
shared machine falls on all of them alike; the figures are medians over rounds, and the ratio is
also given as the median of the per-round ratios. Writes one row per step and one summary row per
model to bench/results/resnext.csv. Not a test: timings depend on the machine and its load.

Two clocks: wall time, and the process's CPU time (user + system, all threads). On a machine shared
with other busy processes the wall time mostly measures how much CPU the others left us; the CPU
time is what the step itself costs and is far steadier, so the verdict looks at both.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_convnets as kc  # noqa: E402
from keras_convnets import registry  # noqa: E402
from keras_convnets.layers import GroupConv2D  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "resnext.csv"
BASELINE, CANDIDATE = "resnet50_torchvision", "resnext50_32x4d"


def models_to_time(shape, native: bool):
    """name -> builder kwargs; ResNet-50 in torchvision layout is the ResNeXt variant with one group
    of 64 channels (variants are data)."""
    common = dict(input_shape=shape, classes=10)
    table = {
        BASELINE: ("resnext50_32x4d", dict(cardinality=1, base_width=64, name=BASELINE)),
        CANDIDATE: ("resnext50_32x4d", {}),
        "resnet50_keras": ("resnet50", {}),
    }
    if native:
        table["resnext50_native_grouped"] = ("resnext50_32x4d", dict(name="resnext50_native_grouped"))
    out = {}
    for name, (registered, kwargs) in table.items():
        model = registry.get(registered).builder(**common, **kwargs)
        if name == "resnext50_native_grouped":
            model = _with_keras_grouped_convs(model)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
        out[name] = model
    return out


def _with_keras_grouped_convs(model):
    def swap(layer):
        cls = keras.layers.Conv2D if isinstance(layer, GroupConv2D) else layer.__class__
        return cls.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=swap)
    twin.set_weights(model.get_weights())
    return twin


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def run(size: int, batch: int, rounds: int, warmup: int, native: bool, rows: list[dict]) -> dict:
    shape = (size, size, 3)
    models = models_to_time(shape, native)
    macs = {name: kc.count_macs(m) for name, m in models.items()}
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, *shape)).astype("float32")
    y = np.arange(batch) % 10
    for model in models.values():
        for _ in range(warmup):
            model.train_on_batch(x, y)
    names = list(models)
    times = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            w0, c0 = time.perf_counter(), time.process_time()
            models[name].train_on_batch(x, y)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            times[name].append((wall, cpu))
            rows.append(dict(kind="step", size=size, batch=batch, model=name, macs=macs[name], round=r,
                             wall_s=round(wall, 4), cpu_s=round(cpu, 4),
                             wall_ms_per_image=round(1000 * wall / batch, 2),
                             cpu_ms_per_image=round(1000 * cpu / batch, 2), load_1min=round(load(), 2)))
        print(f"  {size}px round {r + 1}/{rounds}: "
              + ", ".join(f"{n} {times[n][-1][0]:.2f}s wall {times[n][-1][1]:.2f}s cpu" for n in names), flush=True)
    summary = dict(size=size, batch=batch, macs=macs, medians={}, ratio={}, paired={})
    for clock, i in (("wall", 0), ("cpu", 1)):
        summary["medians"][clock] = {n: statistics.median(t[i] for t in ts) for n, ts in times.items()}
        med = summary["medians"][clock]
        summary["ratio"][clock] = med[CANDIDATE] / med[BASELINE]
        summary["paired"][clock] = statistics.median(
            c[i] / b[i] for c, b in zip(times[CANDIDATE], times[BASELINE]))
    for name in names:
        wall, cpu = summary["medians"]["wall"][name], summary["medians"]["cpu"][name]
        rows.append(dict(kind="median", size=size, batch=batch, model=name, macs=macs[name], round="",
                         wall_s=round(wall, 4), cpu_s=round(cpu, 4), wall_ms_per_image=round(1000 * wall / batch, 2),
                         cpu_ms_per_image=round(1000 * cpu / batch, 2), load_1min=round(load(), 2)))
    keras.backend.clear_session()
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64:16,224:4", help="comma-separated size:batch pairs")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--native", action="store_true", help="also time keras' Conv2D(groups=32) (very slow)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    print(f"TF CPU, {os.cpu_count()} cores, keras {keras.__version__}, {platform.python_version()}, "
          f"load {load():.1f} at start", flush=True)
    rows, summaries = [], []
    for pair in args.sizes.split(","):
        size, batch = (int(v) for v in pair.split(":"))
        summaries.append(run(size, batch, args.rounds, args.warmup, args.native, rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nmedian training-step time per image ({args.rounds} rounds, load {load():.1f} at the end):")
    for s in summaries:
        for name in s["macs"]:
            wall, cpu = (1000 * s["medians"][c][name] / s["batch"] for c in ("wall", "cpu"))
            print(f"  {s['size']:>3}px batch {s['batch']:>2}  {name:26s} {wall:8.1f} ms/image wall "
                  f"{cpu:8.1f} ms/image cpu  {s['macs'][name] / 1e9:6.2f} GMACs")
        for clock in ("wall", "cpu"):
            print(f"  {s['size']:>3}px ResNeXt-50 / ResNet-50 (same layout), {clock:4s}: "
                  f"{s['ratio'][clock]:.2f} (ratio of medians), {s['paired'][clock]:.2f} (median of per-round "
                  f"ratios); MACs ratio {s['macs'][CANDIDATE] / s['macs'][BASELINE]:.2f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

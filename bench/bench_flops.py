"""How fast is keras_convnets.flops.count_macs? (Never part of the test suite.)

1. Every registered model (or ``--family``) is built at its default input; the build and the
   count are timed separately (count = median of ``--repeats`` calls), and the count is checked
   against the registered reference.
2. On a few models (``--profiler``) the TF-profiler cross-check (``count_flops_profiler``: freeze
   the graph, re-import it, profile) is timed against count_macs and its figure compared.

    PYTHONPATH=. python bench/bench_flops.py                     # whole registry
    PYTHONPATH=. python bench/bench_flops.py --family efficientnet --profiler efficientnet_b0

Writes bench/results/bench_flops_registry.csv and bench/results/bench_flops_profiler.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_PROFILED = ("efficientnet_b0", "resnet50", "densenet121", "resnext50_32x4d")


def timed(fn, repeats: int = 1):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def write(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def bench_registry(names, repeats: int) -> list[dict]:
    import keras

    from keras_convnets import registry
    from keras_convnets.flops import count_macs

    rows = []
    for name in names:
        spec = registry.get(name)
        model, build_s = timed(lambda: registry.build(name))
        macs, count_s = timed(lambda: count_macs(model), repeats)
        rows.append({"model": name, "layers": len(model.layers), "build_s": round(build_s, 3),
                     "count_macs_s": round(count_s, 4), "macs": macs, "ref_macs": spec.ref_macs,
                     "matches_reference": macs == spec.ref_macs if not spec.macs_tolerance else
                     abs(macs - spec.ref_macs) <= spec.macs_tolerance * spec.ref_macs})
        print(f"{name:28s} build {build_s:7.2f}s  count_macs {count_s * 1e3:7.1f} ms  {macs:>16,} MACs", flush=True)
        del model
        keras.backend.clear_session()
    return rows


def grouped_block(layer_cls):
    """ResNeXt-50's conv2 3x3 (56x56, 128 channels, 32 groups) as one model: the profiler's blind
    spot when written as a Keras ``Conv2D(groups=32)``, and not with GroupConv2D."""
    import keras

    inp = keras.Input((56, 56, 128))
    return keras.Model(inp, layer_cls(128, 3, padding="same", groups=32, use_bias=False)(inp),
                       name=f"{layer_cls.__name__}_groups32")


def bench_profiler(names) -> list[dict]:
    import keras

    from keras_convnets import registry
    from keras_convnets.flops import count_flops_profiler, count_macs
    from keras_convnets.layers import GroupConv2D

    rows = []
    makers = {}
    for name in names:
        try:
            registry.get(name)
        except ValueError:
            print(f"(skipping {name}: not registered)")
            continue
        makers[name] = lambda name=name: registry.build(name)
    makers["Conv2D_groups32 (synthetic)"] = lambda: grouped_block(keras.layers.Conv2D)
    makers["GroupConv2D_groups32 (synthetic)"] = lambda: grouped_block(GroupConv2D)
    for name, make in makers.items():
        model = make()
        macs, count_s = timed(lambda: count_macs(model), 3)
        prof, prof_s = timed(lambda: count_flops_profiler(model))
        rows.append({"model": name, "count_macs_s": round(count_s, 4), "profiler_s": round(prof_s, 2),
                     "speedup": round(prof_s / count_s), "macs": macs, "profiler_raw_flops": prof.raw_flops,
                     "grouped_correction_flops": prof.grouped_correction, "profiler_flops": prof.flops,
                     "profiler_over_2_vs_macs_pct": round(100 * (prof.macs - macs) / macs, 2),
                     "raw_over_2_vs_macs_pct": round(100 * (prof.raw_flops / 2 - macs) / macs, 2)})
        print(f"{name:28s} count_macs {count_s * 1e3:7.1f} ms  profiler {prof_s:7.2f}s  raw/2 {prof.raw_flops / 2:>16,.0f}"
              f"  corrected/2 {prof.macs:>16,.0f}  count_macs {macs:>16,}", flush=True)
        del model
        keras.backend.clear_session()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", help="only this family's models")
    p.add_argument("--repeats", type=int, default=3, help="count_macs calls per model (median)")
    p.add_argument("--profiler", nargs="*", default=list(DEFAULT_PROFILED),
                   help="models for the profiler comparison (none: skip it)")
    args = p.parse_args(argv)

    import keras

    from keras_convnets import registry

    names = registry.list_models(args.family)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs, {len(names)} models")
    rows = bench_registry(names, args.repeats)
    total_build = sum(r["build_s"] for r in rows)
    total_count = sum(r["count_macs_s"] for r in rows)
    print(f"\n{len(rows)} models: build {total_build:.1f} s in total, count_macs {total_count:.2f} s in total "
          f"(max {max(r['count_macs_s'] for r in rows) * 1e3:.0f} ms); "
          f"{sum(not r['matches_reference'] for r in rows)} differ from their reference")
    print("wrote", write("bench_flops_registry.csv", rows))
    if args.profiler:
        print()
        prof_rows = bench_profiler(args.profiler)
        if prof_rows:
            print("wrote", write("bench_flops_profiler.csv", prof_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

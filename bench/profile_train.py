"""Where a training step's time goes, ours against keras.applications, op type by op type.

    python bench/profile_train.py [--models resnet50 resnet50_v2 densenet121] [--side 64] [--batch 8]

For each pair (ours, keras.applications with ``weights=None``, same input and classes) one plain
training step is written once (``tf.GradientTape``, sparse cross-entropy, SGD) and traced for
each model, so both run exactly the same step code and only the graphs differ. Then:

1. the traced graphs' operations are counted by type, and the types whose counts differ are listed;
2. the layers are compared one by one (type, kernel, strides, padding, bias, BatchNorm axis and
   epsilon, output shape);
3. the two steps, and Keras' own ``train_on_batch`` of each (compiled the same way, "tob"), are
   timed in alternating rounds (order rotated every round) with two clocks, wall and the process's
   CPU time; the per-round ratios keras / ours give a median and a bootstrap 95% interval (> 1 =
   ours faster): a deficit is real only if the interval lies below 1.0;
4. both steps run under TensorFlow's profiler and the host's op events are summed by op type, so a
   time difference is pinned to the ops that carry it.

Writes bench/results/profile_train.csv (one row per model and op type).
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import build_pair, step_fns  # noqa: E402
from common import alternate_samples, environment, print_table, write_csv  # noqa: E402


def make_step(model):
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    opt = keras.optimizers.SGD(0.01)
    opt.build(model.trainable_variables)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
        return loss

    return step


def op_types(step, x, y) -> collections.Counter:
    graph = step.get_concrete_function(x, y).graph
    counts = collections.Counter(op.type for op in graph.get_operations())
    # The gradient and the layers' calls live in nested function graphs too.
    for fn in graph._functions.values():  # noqa: SLF001 - the only handle on nested graphs
        try:
            counts.update(n.op for n in fn.definition.node_def)
        except AttributeError:
            pass
    return counts


def layer_differences(ours, ref) -> list[str]:
    """Where the two models' layers differ (type, and the settings that set a layer's cost)."""
    keys = ("kernel_size", "strides", "padding", "use_bias", "filters", "pool_size", "axis", "epsilon")

    def inventory(model):
        return [(type(l).__name__, {k: getattr(l, k) for k in keys if hasattr(l, k)},
                 tuple(l.output.shape) if hasattr(l, "output") else None) for l in model.layers]

    a, b = inventory(ours), inventory(ref)
    out = [] if len(a) == len(b) else [f"{len(a)} layers against {len(b)}"]
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            diff = {k: (x[1].get(k), y[1].get(k)) for k in set(x[1]) | set(y[1]) if x[1].get(k) != y[1].get(k)}
            out.append(f"{ours.layers[i].name}: {diff or (x[0], y[0], x[2], y[2])}")
    return out


def paired_ratio(ref: list[float], ours: list[float], boot: int = 2000) -> tuple[float, float, float]:
    """Median of per-round ratios ref/ours (> 1 = ours faster) and a bootstrap 95% interval."""
    import numpy as np

    r = np.asarray(ref) / np.asarray(ours)
    rng = np.random.default_rng(0)
    meds = np.median(rng.choice(r, size=(boot, len(r)), replace=True), axis=1)
    return float(np.median(r)), float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def profile_op_times(fn, calls: int) -> collections.Counter:
    """Host op time (ms per call) by op type under TensorFlow's profiler."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(calls):
            fn()
        tf.profiler.experimental.stop()
        totals: collections.Counter = collections.Counter()
        for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
            space = xplane_pb2.XSpace()
            with open(path, "rb") as f:
                space.ParseFromString(f.read())
            for plane in space.planes:
                if not plane.name.startswith("/host:CPU"):
                    continue
                names = {k: m.name for k, m in plane.event_metadata.items()}
                # The executor's threads ("tf_Compute/...") carry one event per op run, named
                # "node_name:OpType"; the Eigen pool's lines are the kernels' helpers.
                for line in plane.lines:
                    if not line.name.startswith("tf_Compute"):
                        continue
                    for ev in line.events:
                        name = names.get(ev.metadata_id, "")
                        if ":" not in name or "::" in name:
                            continue
                        totals[name.rsplit(":", 1)[-1]] += ev.duration_ps / 1e9 / calls  # ms per call
    return totals


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=["resnet50", "resnet50_v2", "densenet121"])
    p.add_argument("--side", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile-calls", type=int, default=5)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--control", action="store_true", help="keras against keras (the A/A noise floor)")
    args = p.parse_args(argv)

    import numpy as np
    import keras

    rows, summary = [], []
    for name in args.models:
        keras.backend.clear_session()
        ours, ref = build_pair(name, args.side, args.classes, control=args.control)
        x = keras.ops.convert_to_tensor(
            np.random.default_rng(0).uniform(size=(args.batch, args.side, args.side, 3)).astype("float32"))
        y = keras.ops.convert_to_tensor(np.arange(args.batch) % args.classes)
        diffs = layer_differences(ours, ref)
        kinds = collections.Counter(d.split(": ", 1)[1].split("(")[0] for d in diffs)
        print(f"{name}: {len(ours.layers)} layers; layers that differ: {len(diffs)}", dict(kinds) if diffs else "",
              diffs[:3])
        steps = {"ours": make_step(ours), "keras": make_step(ref)}
        counts = {k: op_types(s, x, y) for k, s in steps.items()}
        fns = {k: (lambda s=s: keras.ops.convert_to_numpy(s(x, y))) for k, s in steps.items()}
        # Keras' own step, as the throughput bench (and the study's fit) runs it
        fits = {"ours_tob": step_fns(ours, x, y)[0], "keras_tob": step_fns(ref, x, y)[0]}
        t = alternate_samples({**fns, **fits}, args.rounds, args.repeats, warmup=3)
        wall = paired_ratio(t["keras"]["wall"], t["ours"]["wall"])
        cpu = paired_ratio(t["keras"]["cpu"], t["ours"]["cpu"])
        tob = paired_ratio(t["keras_tob"]["wall"], t["ours_tob"]["wall"])
        tob_cpu = paired_ratio(t["keras_tob"]["cpu"], t["ours_tob"]["cpu"])
        prof = {k: profile_op_times(fn, args.profile_calls) for k, fn in fns.items()}
        label = name + (" (A/A)" if args.control else "")
        summary.append({"model": label, "ops_ours": sum(counts["ours"].values()),
                        "ops_keras": sum(counts["keras"].values()),
                        "ms_ours": 1e3 * statistics.median(t["ours"]["wall"]),
                        "ms_keras": 1e3 * statistics.median(t["keras"]["wall"]),
                        "layers_differ": len(diffs),
                        "ratio_wall": wall[0], "wall_lo": wall[1], "wall_hi": wall[2],
                        "ratio_cpu": cpu[0], "cpu_lo": cpu[1], "cpu_hi": cpu[2],
                        "tob_ratio_wall": tob[0], "tob_lo": tob[1], "tob_hi": tob[2],
                        "tob_ratio_cpu": tob_cpu[0], "tob_cpu_lo": tob_cpu[1], "tob_cpu_hi": tob_cpu[2],
                        "prof_ms_ours": sum(prof["ours"].values()), "prof_ms_keras": sum(prof["keras"].values())})
        print_table(summary[-1:])
        diff = sorted(set(counts["ours"]) | set(counts["keras"]),
                      key=lambda o: -abs(counts["ours"][o] - counts["keras"][o]))
        print("op types whose counts differ (ours, keras):",
              ", ".join(f"{o} {counts['ours'][o]}/{counts['keras'][o]}" for o in diff
                        if counts["ours"][o] != counts["keras"][o]) or "none")
        ops = sorted(set(prof["ours"]) | set(prof["keras"]),
                     key=lambda o: -max(prof["ours"][o], prof["keras"][o]))
        top = [{"model": label, "op": o, "ms_ours": prof["ours"][o], "ms_keras": prof["keras"][o],
                "diff_ms": prof["ours"][o] - prof["keras"][o], "count_ours": counts["ours"][o],
                "count_keras": counts["keras"][o]} for o in ops]
        print_table(top[:args.top])
        by_diff = sorted(top, key=lambda r: -abs(r["diff_ms"]))[:args.top]
        print("largest differences:")
        print_table(by_diff)
        rows.extend(top)
    print()
    print_table(summary)
    env = environment()
    print(f"wrote {write_csv('profile_train.csv', [{**r, **env} for r in summary + rows])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

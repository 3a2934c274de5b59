"""The effect of a study trial's ``--precision`` and ``--jit`` options, measured on the trial
itself (``runner.train_trial``, the code ``study scale`` runs).

    python bench/bench_precision.py [--model efficientnet_b0] [--resolution 32] [--epochs 4]
        [--options float32 mixed_bfloat16 mixed_float16 float32+jit mixed_bfloat16+jit]

Each option trains the same model on the same data (digits, seeded) for ``--epochs``; the figures
are the steady-state training throughput (median epoch time after the first, which traces),
the first epoch (tracing / XLA compilation), inference throughput and the test accuracy, and
the ratio of each throughput to float32's. Writes bench/results/precision.csv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_csv  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="efficientnet_b0")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--depth", type=float, default=1.0, help="depth multiplier of the model")
    p.add_argument("--csv", default="precision.csv", help="file name under bench/results/")
    p.add_argument("--options", nargs="*",
                   default=["float32", "mixed_bfloat16", "mixed_float16", "float32+jit"])
    args = p.parse_args(argv)

    import keras

    from keras_convnets import data
    from keras_convnets.study import runner

    ds = data.load_dataset("digits")
    n_train = ds.sizes["train"]

    class EpochTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t)

    rows = []
    for option in args.options:
        precision, _, jit = option.partition("+")
        recipe = runner.Recipe(epochs=args.epochs, batch_size=args.batch, seed=0, precision=precision,
                               jit=jit == "jit", bn_momentum=0.9, learning_rate=0.002, verbose=0)
        timer = EpochTimes()
        runner.release()

        def build(precision=precision):
            return runner.build_registered(args.model, input_shape=(args.resolution,) * 2 + (3,),
                                           classes=ds.num_classes, precision=precision,
                                           depth=args.depth)

        m = runner.train_trial(build, ds, recipe, callbacks=(timer,), count_cost=False)
        steady = statistics.median(timer.times[1:]) if len(timer.times) > 1 else float("nan")
        row = {"option": option, "status": m["status"], "first_epoch_s": timer.times[0] if timer.times else None,
               "train_ips": n_train / steady, "infer_ips": m.get("images_per_second"),
               "test_accuracy": m.get("test_accuracy"), "error": m.get("error", "")[:80]}
        rows.append(row)
        print_table([row])
    base = next((r for r in rows if r["option"] == "float32" and r["status"] == "ok"), None)
    for r in rows:
        if base and r["status"] == "ok":
            r["train_vs_float32"] = r["train_ips"] / base["train_ips"]
            r["infer_vs_float32"] = r["infer_ips"] / base["infer_ips"]
        r.update(model=args.model, depth=args.depth, side=args.resolution, batch=args.batch, epochs=args.epochs, **environment())
    print()
    print_table([{k: r.get(k) for k in ("option", "status", "first_epoch_s", "train_ips", "train_vs_float32",
                                        "infer_ips", "infer_vs_float32", "test_accuracy")} for r in rows])
    print(f"wrote {write_csv(args.csv, rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

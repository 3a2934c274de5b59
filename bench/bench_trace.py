"""The first training step with and without the training state built before it.

    python bench/bench_trace.py [--models efficientnet_b0 resnet50 densenet121] [--side 32] [--batch 64]

Keras 3's TensorFlow trainer (no distribution strategy) creates the optimizer's slots and the
metrics' variables inside the first traced training step, and ``tf.function`` traces a function
that creates variables twice. ``keras_convnets.training.build_training_state`` builds them first
(what every study and search trial now does). For each model, in one process, alternating which
goes first: a fresh build compiled like a study trial (Adam, sparse cross-entropy, accuracy), then
the first ``train_on_batch`` (tracing, graph optimisation and one step), the second (one step),
and the variables created during the first, once as Keras does it and once built first (the
build's own seconds reported, and counted in the total).

Writes bench/results/trace.csv.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_table, write_csv  # noqa: E402


def first_steps(name: str, side: int, batch: int, prebuild: bool) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_convnets.study import runner
    from keras_convnets.training import build_training_state

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = runner.build_registered(name, input_shape=(side, side, 3), classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((batch, side, side, 3), dtype="float32")
    y = np.arange(batch, dtype="int32") % 10
    t = time.perf_counter()
    if prebuild:
        build_training_state(model)
    built = time.perf_counter() - t
    created = []

    def creator(next_creator, **kwargs):
        created.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(creator):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        first = time.perf_counter() - t
    t = time.perf_counter()
    model.train_on_batch(x, y)
    second = time.perf_counter() - t
    return {"model": name, "side": side, "batch": batch, "state_built_first": prebuild,
            "build_state_s": round(built, 2), "first_step_s": round(first, 2),
            "first_total_s": round(built + first, 2), "second_step_s": round(second, 3),
            "variables_created_in_step": len(created)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["efficientnet_b0", "resnet50", "densenet121"])
    p.add_argument("--side", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args(argv)
    rows = []
    for i, name in enumerate(args.models):
        order = (False, True) if i % 2 == 0 else (True, False)
        pair = {}
        for prebuild in order:
            pair[prebuild] = first_steps(name, args.side, args.batch, prebuild)
            print(pair[prebuild], flush=True)
        pair[True]["speedup"] = round(pair[False]["first_total_s"] / pair[True]["first_total_s"], 2)
        rows += [{**pair[False], **environment()}, {**pair[True], **environment()}]
    keys = ["model", "state_built_first", "build_state_s", "first_step_s", "first_total_s", "second_step_s",
            "variables_created_in_step", "speedup"]
    print_table([{k: r.get(k, "") for k in keys} for r in rows])
    print(f"wrote {write_csv('trace.csv', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The input pipeline: training throughput on CIFAR-10 through the study's tf.data pipeline
(``keras_convnets.data``: decode, resize, normalise, cache, shuffle, augment, prefetch) against
the very same batches already in memory (numpy arrays handed to ``fit``).

    TFDS_DATA_DIR=DIR python bench/bench_pipeline.py [--model efficientnet_b0] [--resolution 32]
        [--train-examples 3000] [--batch 64] [--rounds 3]

One model, one compiled train step, one process; epochs alternate (pipeline, memory, pipeline,
...) and the figure is the ratio of median epoch times, memory / pipeline (>= 0.95 = the pipeline
keeps the model fed). The first epoch of each side is a warm-up (tracing, the pipeline's cache).
Writes bench/results/pipeline.csv.
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
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--model", default="efficientnet_b0")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--train-examples", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)

    import numpy as np
    import keras

    from keras_convnets import data
    from keras_convnets.study import runner

    try:
        ds = data.load_dataset(args.dataset, data_dir=args.data_dir, train_examples=args.train_examples,
                               val_examples=500, test_examples=500, augment="auto")
    except data.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    side = args.resolution
    pipeline = ds.batches("train", side, args.batch, training=True, seed=0)
    # The same batches, materialised once (one pass of the pipeline, augmentation included).
    xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in pipeline])
    x_mem, y_mem = np.concatenate(xs), np.concatenate(ys)
    batch = len(xs[0])

    keras.utils.set_random_seed(0)
    model = runner.build_registered(args.model, input_shape=(side, side, 3), classes=ds.num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def epoch_pipeline():
        model.fit(pipeline, epochs=1, verbose=0)

    def epoch_memory():
        model.fit(x_mem, y_mem, batch_size=batch, epochs=1, verbose=0, shuffle=False)

    for fn in (epoch_pipeline, epoch_memory):  # warm-up: tracing, the pipeline's cache
        fn()
    times = {"pipeline": [], "memory": []}
    for _ in range(args.rounds):
        for key, fn in (("pipeline", epoch_pipeline), ("memory", epoch_memory)):
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    n = len(x_mem)
    row = {"dataset": ds.name, "model": args.model, "side": side, "batch": batch, "images": n,
           "pipeline_ips": n / med["pipeline"], "memory_ips": n / med["memory"],
           "ratio": med["memory"] / med["pipeline"], "rounds": args.rounds,
           "pipeline_s": ";".join(f"{t:.2f}" for t in times["pipeline"]),
           "memory_s": ";".join(f"{t:.2f}" for t in times["memory"]), **environment()}
    print_table([{k: row[k] for k in ("dataset", "model", "side", "batch", "images", "pipeline_ips",
                                      "memory_ips", "ratio")}])
    print(f"wrote {write_csv('pipeline.csv', [row])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of our builders against keras.applications on the architectures both have, and
achieved MAC/s as a fraction of this machine's measured fp32 ceiling.

    python bench/bench_throughput.py [--resolutions 64 default] [--batch 8] [--models resnet50 ...]

Each pair is built side by side in one process (weights=None, same classes and input) and timed in
alternating rounds; the figure that matters is the ratio ours / keras (>= 1.0 = no slower).
Training MAC/s counts 3x the forward MACs per image (forward + two backward products).
Writes bench/results/throughput.csv.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, environment, matmul_ceiling_gflops, print_table, write_csv  # noqa: E402

PAIRS = {
    "resnet50": "ResNet50",
    "resnet50_v2": "ResNet50V2",
    "densenet121": "DenseNet121",
    "inception_v3": "InceptionV3",
    "inception_resnet_v2": "InceptionResNetV2",
    "efficientnet_b0": "EfficientNetB0",
    "nasnet_mobile": "NASNetMobile",
}


def build_pair(name: str, side: int, classes: int, control: bool = False):
    """(ours, keras'); with ``control``, (keras', keras') - the A/A run whose ratio shows the
    measurement's own noise."""
    import keras
    import keras_convnets as kc

    shape = (side, side, 3)
    kwargs = {"weights": None, "input_shape": shape, "classes": classes}
    if name == "nasnet_mobile" and side != 224:
        kwargs["include_top"] = True  # keras' NASNet accepts other sizes with weights=None
    ref = getattr(keras.applications, PAIRS[name])(**kwargs)
    ours = getattr(keras.applications, PAIRS[name])(**kwargs) if control else kc.build(
        name, input_shape=shape, classes=classes)
    return ours, ref


def step_fns(model, x, y):
    import keras

    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, y)  # build the train function

    def train():
        model.train_on_batch(x, y)

    def infer():
        model.predict_on_batch(x)

    return train, infer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=list(PAIRS))
    p.add_argument("--resolutions", nargs="*", default=["64", "default"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--csv", default="throughput.csv", help="file name under bench/results/")
    p.add_argument("--control", action="store_true",
                   help="A/A control: keras.applications against itself (the ratio's noise floor)")
    args = p.parse_args(argv)

    import numpy as np
    import keras
    import keras_convnets as kc
    from keras_convnets import registry

    detail: dict = {}
    ceiling = matmul_ceiling_gflops(detail=detail)
    print(f"fp32 ceiling (4096^2 matmul, the faster of numpy {detail['numpy']:.0f} and the backend "
          f"{detail['backend']:.0f} GFLOP/s): {ceiling:.0f} GFLOP/s = {ceiling / 2:.0f} GMAC/s; {environment()}")
    rows = []
    for name in args.models:
        for res in args.resolutions:
            spec = registry.get(name)
            # InceptionV3 / InceptionResNetV2 accept nothing below 75x75 (theirs and ours).
            side = spec.default_size if res == "default" else max(int(res), spec.min_size)
            keras.backend.clear_session()
            ours, ref = build_pair(name, side, args.classes, control=args.control)
            macs = kc.count_macs(ours)
            x = np.random.default_rng(0).uniform(size=(args.batch, side, side, 3)).astype("float32")
            y = np.arange(args.batch) % args.classes
            o_train, o_infer = step_fns(ours, x, y)
            r_train, r_infer = step_fns(ref, x, y)
            t = alternate({"ours_train": o_train, "keras_train": r_train, "ours_infer": o_infer,
                           "keras_infer": r_infer}, rounds=args.rounds, repeats=args.repeats)
            row = {"model": name + (" (A/A control)" if args.control else ""), "side": side, "batch": args.batch,
                   "macs": macs}
            for mode, factor in (("train", 3), ("infer", 1)):
                ips_o, ips_r = args.batch / t[f"ours_{mode}"], args.batch / t[f"keras_{mode}"]
                row[f"{mode}_ips_ours"] = ips_o
                row[f"{mode}_ips_keras"] = ips_r
                row[f"{mode}_ratio"] = ips_o / ips_r
                row[f"{mode}_ceiling_frac"] = factor * macs * ips_o / (ceiling / 2 * 1e9)
            rows.append(row)
            print_table([row])
    rows.append({"model": "_ceiling", "side": "", "batch": "", "macs": "", "train_ips_ours": ceiling})
    print()
    print_table(rows[:-1])
    print(f"wrote {write_csv(args.csv, rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

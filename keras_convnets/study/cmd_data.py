"""``study data export DATASET --out FILE.npz``: arrays for the TensorFlow-free path."""

from __future__ import annotations

HELP = "dataset tools: export a dataset to .npz for machines without TensorFlow"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    e = sub.add_parser("export", help="write a dataset's uint8 images and labels to FILE.npz",
                       description="Write DATASET (digits | folder:PATH | a TFDS name) to FILE.npz (x_train, y_train, "
                                   "x_test, y_test, class_names), for --dataset npz:FILE.npz on a machine that has JAX "
                                   "but no TensorFlow.")
    e.add_argument("dataset", metavar="DATASET")
    e.add_argument("--out", required=True, metavar="FILE.npz")
    e.add_argument("--data-dir", help="TFDS data directory (default: TFDS_DATA_DIR)")
    e.add_argument("--split", default="train,test", help="comma-separated splits to write (default train,test)")
    e.add_argument("--image-size", type=int, metavar="N", help="resize every image to N x N (needed when sizes vary)")
    e.add_argument("--download", action="store_true", help="let tfds download the dataset")
    e.add_argument("--force", action="store_true", help="overwrite FILE.npz")


def run(args) -> int:
    from keras_convnets import data

    splits = tuple(s.strip() for s in args.split.split(",") if s.strip())
    shapes = data.export_npz(args.dataset, args.out, data_dir=args.data_dir, splits=splits,
                             image_size=args.image_size, force=args.force, download=args.download)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    return 0

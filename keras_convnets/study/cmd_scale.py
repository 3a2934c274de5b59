"""``study scale``: EfficientNet's scaling study (grid at phi = 1, compound sweep, width/depth/
resolution baselines at matched MACs, the base), results in DIR/results.csv, report in
DIR/index.html."""

from __future__ import annotations

import argparse

HELP = "run EfficientNet's scaling study (grid, compound sweep, matched-MACs baselines) and write its report"
DESCRIPTION = (
    "Run EfficientNet's compound-scaling study on a registered model. Without arguments it runs the "
    "embedded 'quick' study (EfficientNet-B0 on scikit-learn's digits, offline, a few minutes on a CPU). "
    "Flags override the study file. Results: DIR/results.csv (one row per finished trial), DIR/study.json, "
    "DIR/trials/<id>.keras, DIR/index.html; DIR defaults to reports/<study name>."
)


def _positive_or_any_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _coefficients(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"expected ALPHA,BETA,GAMMA (three numbers), got {text!r}")
    return vals


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE|NAME", help="study file (TOML), or a name in studies/ (default: the embedded quick study)")
    p.add_argument("--base", help="registered base model (default efficientnet_b0)")
    p.add_argument("--dataset", help="digits | npz:FILE.npz | folder:PATH | a TFDS name (e.g. cifar10)")
    p.add_argument("--data-dir", help="TFDS data directory (default: TFDS_DATA_DIR)")
    p.add_argument("--resolution", type=_positive_or_any_int, metavar="N", help="base input side in pixels")
    p.add_argument("--phi-max", type=_positive_or_any_int, metavar="N", help="largest compound coefficient phi")
    p.add_argument("--grid-size", type=_positive_or_any_int, metavar="N", help="(alpha, beta, gamma) grid points tried at phi = 1")
    p.add_argument("--coefficients", type=_coefficients, metavar="A,B,G",
                   help="use these alpha,beta,gamma instead of a grid search")
    p.add_argument("--epochs", type=_positive_or_any_int, metavar="N")
    p.add_argument("--batch-size", type=_positive_or_any_int, metavar="N")
    p.add_argument("--learning-rate", type=float, metavar="LR")
    p.add_argument("--train-examples", type=_positive_or_any_int, metavar="N", help="training examples (0 = all)")
    p.add_argument("--seed", type=_positive_or_any_int, metavar="N")
    p.add_argument("--out", metavar="DIR", help="output folder (default reports/<study name>)")
    p.add_argument("--resume", action="store_true", help="continue the study in DIR, skipping finished trials")
    p.add_argument("--overwrite", action="store_true", help="delete the study files in DIR and start again")
    p.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    p.add_argument("--jit", action="store_true", default=None, help="compile trials with XLA (jit_compile=True)")
    p.add_argument("--in-process", action="store_true",
                   help="run the trials in this process, not one fresh process each (starts faster; on "
                        "TensorFlow memory then grows ~100 MiB a trial)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress bars")


def run(args) -> int:
    from keras_convnets.study import config as cfg
    from keras_convnets.study.scale import run_scale

    config = cfg.load_config(args.config) if args.config else cfg.StudyConfig()
    config = cfg.apply_overrides(config, vars(args))
    out = args.out or f"reports/{config.name}"
    argv = getattr(args, "_argv", None)
    run_scale(config, out, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
              argv=argv[1:] if argv else None)
    return 0

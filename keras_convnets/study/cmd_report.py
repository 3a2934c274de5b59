"""``study report DIR``: rebuild DIR/index.html from DIR/results.csv and DIR/study.json."""

from __future__ import annotations

HELP = "rebuild a study's HTML report (DIR/index.html) from its results"


def add_arguments(p) -> None:
    p.add_argument("dir", metavar="DIR", help="a study folder (with results.csv)")


def run(args) -> int:
    from keras_convnets.report import build_report

    path = build_report(args.dir)
    print(f"report: {path}")
    return 0

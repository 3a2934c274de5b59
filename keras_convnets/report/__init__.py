"""Self-contained HTML reports built from a results store alone (``DIR/results.csv`` and
``DIR/study.json``): pandas for the table, seaborn/matplotlib (Agg) for the figures, inlined as
base64 PNG, jinja2 with autoescape on for the page. No network, no external CSS or JS.

Reusable pieces (the search report uses them too):

* :mod:`keras_convnets.report.figures` -- ``new_figure()``, ``figure_html(fig, alt)`` (inline
  ``<img>``), ``pareto_front(df, cost, value)``, ``scatter_with_front(df, x, y, hue=..., ...)``,
  ``METHOD_PALETTE``.
* :mod:`keras_convnets.report.tables` -- ``sortable_table(df, columns, formats)`` (a click-to-sort
  HTML table; the sorter is a few lines of inline JS).
* :mod:`keras_convnets.report.html` -- ``render_page(title, sections, ...)``: the page frame;
  a section is ``Section(title, body_html, intro_text)``.
* :mod:`keras_convnets.report.scale` -- the scaling-study report, ``build_scale_report(DIR)``.

:func:`build_report` picks the report for the study kind recorded in ``study.json``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

__all__ = ["build_report", "build_scale_report", "read_study"]


def read_study(directory) -> tuple:
    """(results DataFrame, study.json dict) of a study folder; a clear ValueError if it is not one."""
    import pandas as pd

    d = Path(directory)
    results = d / "results.csv"
    if not results.exists():
        raise ValueError(f"{str(d)!r} has no results.csv: not a study folder (or no trial has finished yet)")
    meta_path = d / "study.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    df = pd.read_csv(results, keep_default_na=True)
    return df, meta


def build_scale_report(directory) -> Path:
    from keras_convnets.report.scale import build_scale_report as build

    return build(directory)


def build_report(directory) -> Path:
    """(Re)build ``DIR/index.html`` for the study in ``DIR`` (kind ``scale`` or ``search``)."""
    d = Path(directory)
    meta_path = d / "study.json"
    kind = "scale"
    if meta_path.exists():
        kind = json.loads(meta_path.read_text()).get("kind", "scale")
    if kind == "scale":
        return build_scale_report(d)
    try:
        module = importlib.import_module(f"keras_convnets.report.{kind}")
    except ModuleNotFoundError:
        raise ValueError(f"no report for study kind {kind!r} (study.json in {str(d)!r})") from None
    # A kind's module exposes build_report(DIR) (or build_<kind>_report(DIR)).
    build = getattr(module, "build_report", None) or getattr(module, f"build_{kind}_report", None)
    if build is None:
        raise ValueError(f"keras_convnets.report.{kind} has no build_report(DIR)")
    return build(d)

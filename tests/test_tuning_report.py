"""The search report from a results store alone (synthetic rows: no training, fast)."""

from __future__ import annotations

import json
import random

import keras_tuner as kt
import pytest

from keras_convnets.study.results import ResultsStore
from keras_convnets.tuning import spaces


def _nasnet_rows(n=6, seed=0):
    rng = random.Random(seed)
    hp = kt.HyperParameters()
    spaces.declare_genotype(hp, ["id", "sep3", "max3"])
    rows = []
    for i in range(n):
        values = {p.name: p.prob_to_value(rng.random()) for p in hp.space}
        cells = spaces.cells_from_values(values)
        drawing = {**cells, **{f"{c}_concat": spaces.cell_concat(cells[c]) for c in cells}}
        acc = 0.3 + 0.1 * i if i != 4 else None
        rows.append({
            "trial_id": str(i), "method": "evolution", "model": "nas_network(N=1,F=8)", "resolution": 32,
            "params": 1000 * (i + 1), "macs": 50_000 * (n - i) if i != 3 else 10 ** 9,
            "val_accuracy": acc, "test_accuracy": acc, "status": "over_budget" if i == 3 else ("failed" if i == 4 else "ok"),
            "space": "nasnet", "objective": "val_accuracy", "score": 0.0 if i == 3 else acc,
            "genotype": spaces.genotype_text(values), "cells": json.dumps(drawing), "worker": "tuner0",
            "error": "<script>alert(1)</script>" if i == 4 else "",
        })
    return rows


def test_search_report_has_fronts_progress_cells_and_escapes(tmp_path):
    pytest.importorskip("keras_convnets.report.figures")
    from keras_convnets.report.search import best_so_far, build_report

    store = ResultsStore(tmp_path)
    for row in _nasnet_rows():
        store.append(row)
    settings = {"name": "t", "space": "nasnet", "algorithm": "evolution", "objective": "val_accuracy",
                "population": 4, "sample": 2, "max_macs": 10 ** 8, "dataset": "digits", "epochs": 1,
                "description": "<b>not bold</b>"}
    (tmp_path / "study.json").write_text(json.dumps({"kind": "search", "settings": settings}))
    page = build_report(tmp_path).read_text()
    assert page.count("data:image/png;base64,") == 3  # acc-vs-MACs, acc-vs-params, progress
    assert page.count("<svg") == 2 and "normal cell" in page and "reduction cell" in page
    assert "<script>alert(1)</script>" not in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "over the MACs budget" in page
    # `study report DIR` dispatches on study.json's kind to this module.
    from keras_convnets.report import build_report as build_any

    assert build_any(tmp_path).read_text().count("<svg") == 2

    df = store.dataframe()
    curve = best_so_far(df[df["score"].notna()])
    assert list(curve["best_so_far"]) == sorted(curve["best_so_far"])


def test_cell_svg_is_a_dag_of_the_genotype():
    from keras_convnets.report.search import cell_svg

    blocks = [(("sep3", "h0"), ("id", "h1")), (("max3", "n2"), ("sep3", "h0")), (("avg3", "h1"), ("avg3", "h1")),
              (("sep5", "n3"), ("id", "n4")), (("sep3", "h0"), ("id", "n2"))]
    svg = str(cell_svg(blocks, ["n5", "n6"], "normal cell"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<line") == 10 + 2  # two ops a block, two concatenated states
    for op in ("sep3", "max3", "avg3", "sep5", "id"):
        assert f">{op}<" in svg

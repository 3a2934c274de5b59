"""The HTML report from a results store alone: self-contained, every figure present, text
escaped, the verdict on compound scaling computed from the rows."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from keras_convnets.report import build_report
from keras_convnets.report.figures import pareto_front
from keras_convnets.report.scale import compare_at_equal_macs
from keras_convnets.study.results import ResultsStore

EVIL = "<script>alert('x')</script>"


def _row(tid, method, phi, macs, val, test, **kw):
    return {"trial_id": tid, "method": method, "model": "efficientnet_b0", "phi": phi, "width": kw.get("w", 1.0),
            "depth": kw.get("d", 1.0), "resolution": kw.get("r", 32), "params": int(macs / 3), "macs": macs,
            "val_accuracy": val, "test_accuracy": test, "train_seconds": 10.0, "images_per_second": 1e7 / macs,
            "status": kw.get("status", "ok"), "alpha": kw.get("a", ""), "beta": kw.get("b", ""),
            "gamma": kw.get("g", ""), "test_examples": 1000, "error": kw.get("error", "")}


def make_study(tmp_path, compound_wins=True):
    store = ResultsStore(tmp_path)
    c = 0.05 if compound_wins else -0.05
    rows = [
        _row("base", "base", 0, 1e6, 0.60, 0.59),
        _row("grid-a1.20-b1.10-g1.15", "grid", 1, 2.0e6, 0.70, 0.69, a=1.2, b=1.1, g=1.15, w=1.1, d=1.2, r=36),
        _row("grid-a2.00-b1.00-g1.00", "grid", 1, 2.1e6, 0.65, 0.66, a=2.0, b=1.0, g=1.0, d=2.0),
        _row("compound-phi2", "compound", 2, 3.9e6, 0.75, 0.74, a=1.2, b=1.1, g=1.15, w=1.21, d=1.44, r=44),
        _row("width-phi1", "width", 1, 2.02e6, 0.69 - c, 0.69 - c, w=1.4),
        _row("depth-phi1", "depth", 1, 1.98e6, 0.69 - c, 0.69 - c, d=2.0),
        _row("resolution-phi1", "resolution", 1, 2.1e6, 0.0, 0.0, r=44, status="failed", error=EVIL),
        _row("width-phi2", "width", 2, 3.8e6, 0.74 - c, 0.74 - c, w=1.9),
    ]
    for r in rows:
        store.append(r)
    meta = {"kind": "scale", "name": "unit", "description": EVIL, "settings": {"scaling": {"target": 2.0}},
            "best_grid": {"trial_id": "grid-a1.20-b1.10-g1.15"}, "dataset": {"name": "digits"},
            "environment": {"cpu": "test cpu", "versions": {"keras": "3"}}}
    (tmp_path / "study.json").write_text(json.dumps(meta))
    return tmp_path


def test_report_is_self_contained_and_escaped(tmp_path):
    d = make_study(tmp_path)
    html = build_report(d).read_text()
    assert html.count('<img class="figure"') == 5  # MACs, params, throughput, grid, MACs growth
    assert html.count("data:image/png;base64,") == 5
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external resources"
    assert "<link" not in html and "@import" not in html
    assert EVIL not in html and "&lt;script&gt;alert(" in html
    assert html.count("<script>") == 1  # our sorter only
    assert 'class="sortable" id="trials"' in html and "resolution-phi1" in html
    assert "Yes: in this study compound scaling beat" in html


def test_verdict_follows_the_numbers(tmp_path):
    d = make_study(tmp_path, compound_wins=False)
    df = pd.read_csv(d / "results.csv")
    meta = json.loads((d / "study.json").read_text())
    v = compare_at_equal_macs(df, meta)
    assert (v["wins"], v["total"]) == (0, 3)  # the failed resolution baseline is not compared
    assert v["verdict"].startswith("No:")
    df.loc[df.trial_id == "width-phi2", "test_accuracy"] = 0.10
    v = compare_at_equal_macs(df, meta)
    assert v["verdict"].startswith("Partly:") and v["wins"] == 1 and v["significant_wins"] == 1


def test_report_without_baselines_says_undecided(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(_row("base", "base", 0, 1e6, 0.6, 0.6))
    html = build_report(tmp_path).read_text()
    assert "Not decided" in html


def test_report_needs_results(tmp_path):
    with pytest.raises(ValueError, match="no results.csv"):
        build_report(tmp_path)


def test_pareto_front():
    df = pd.DataFrame({"id": list("abcde"), "cost": [1, 2, 3, 4, 5], "acc": [0.5, 0.4, 0.7, 0.6, 0.8]})
    assert list(pareto_front(df, "cost", "acc")["id"]) == ["a", "c", "e"]
    fast = pareto_front(df, "cost", "acc", maximise_cost=True)  # cost as a benefit (throughput)
    assert list(fast["id"]) == ["e"]


def test_learning_curves_from_the_recorded_epochs(tmp_path):
    """Trials that recorded their validation accuracy per epoch get a learning-curves figure;
    studies from before it was recorded (no such column) and failed trials get none."""
    from keras_convnets.report.scale import learning_curves

    old = make_study(tmp_path / "old")
    assert "Learning curves" not in build_report(old).read_text()
    store = ResultsStore(tmp_path / "new")
    store.append({**_row("base", "base", 0, 1e6, 0.6, 0.59), "val_accuracy_by_epoch": "0.2000 0.4500 0.6000"})
    store.append({**_row("width-phi1", "width", 1, 2e6, 0.0, 0.0, status="failed"), "val_accuracy_by_epoch": ""})
    (tmp_path / "new" / "study.json").write_text(json.dumps({"kind": "scale", "name": "curves"}))
    df = pd.read_csv(tmp_path / "new" / "results.csv")
    assert learning_curves(df) == {"base": ("base", [0.2, 0.45, 0.6])}
    html = build_report(tmp_path / "new").read_text()
    assert "Learning curves" in html and 'alt="validation accuracy per epoch"' in html

"""`python -m keras_convnets.study scale / report / export` end to end on the real default base
(efficientnet_b0) at 32 px on a handful of digits: results, report and figures; a study killed
after its first row and resumed has the trials of an uninterrupted run, without duplicates; user
errors are one line on stderr and exit status 2."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from keras_convnets.study.__main__ import main
from keras_convnets.study.results import CORE_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
# The smallest study that still has every stage: base, one grid point (the paper's), and a
# resolution-only baseline at the grid point's MACs. Eager training: one step per trial costs far
# less than tracing EfficientNet's training graph.
TINY = """
name = "tiny"
description = "CLI test <b>escaped</b>"
[model]
base = "efficientnet_b0"
resolution = 32
[data]
dataset = "digits"
train_examples = 16
val_examples = 8
test_examples = 8
[scaling]
phi_max = 1
grid_size = 1
baselines = ["resolution"]
[training]
epochs = 1
batch_size = 16
optimizer = "sgd"
run_eagerly = true
"""
EXPECTED = {"base", "grid-a1.20-b1.10-g1.15", "resolution-phi1"}


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _cli(*args):
    return [sys.executable, "-m", "keras_convnets.study", *map(str, args)]


def _rows(d: Path) -> list[dict]:
    p = d / "results.csv"
    if not p.exists():
        return []
    with open(p, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.heavy
def test_scale_end_to_end_and_kill_resume(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # The study to kill runs in a subprocess, each trial in its own process (the default); a
    # watcher kills its process group the moment its first row is written and starts the
    # --resume run. Meanwhile the uninterrupted study runs here with its trials in this process
    # (--in-process; TensorFlow is imported already): the two must agree number for number.
    killed_cmd = _cli("scale", "--config", config, "--out", killed, "--quiet")
    b = subprocess.Popen(killed_cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    seen: dict = {}

    def watch():
        deadline = time.time() + 900
        while b.poll() is None and time.time() < deadline:
            if _rows(killed):
                seen["rows"] = {r["trial_id"] for r in _rows(killed)}
                os.killpg(b.pid, signal.SIGKILL)  # mid-study: the trial in flight is lost
                b.wait()
                seen["resume"] = subprocess.run([*killed_cmd, "--resume"], cwd=tmp_path, env=_env(),
                                                capture_output=True, text=True, timeout=900)
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert main(["scale", "--config", str(config), "--out", str(whole), "--quiet", "--in-process"]) == 0
    out = capsys.readouterr().out
    assert "[trial 3/3]" in out and "ETA" in out and "report:" in out
    watcher.join(timeout=900)
    assert seen.get("rows"), f"the killed study wrote no row: {b.stderr.read()[-2000:]}"
    assert seen["rows"] < EXPECTED, seen
    assert b.returncode == -signal.SIGKILL
    resumed = seen["resume"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "skipped (--resume)" in resumed.stdout
    # Without --resume an existing study is not touched.
    assert main(["scale", "--config", str(config), "--out", str(killed), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err

    rows_whole, rows_killed = _rows(whole), _rows(killed)
    ids_whole = [r["trial_id"] for r in rows_whole]
    ids_killed = [r["trial_id"] for r in rows_killed]
    assert set(ids_whole) == EXPECTED and sorted(ids_killed) == sorted(ids_whole)
    assert len(ids_killed) == len(set(ids_killed)), "a resumed study duplicated a row"
    # Trials in their own processes compute what trials in the study's process compute.
    by_id = {r["trial_id"]: r for r in rows_killed}
    for r in rows_whole:
        for k in ("val_loss", "test_loss", "macs", "params"):
            assert float(by_id[r["trial_id"]][k]) == pytest.approx(float(r[k]), rel=1e-5), (r["trial_id"], k)
        assert by_id[r["trial_id"]]["trial_pid"] != r["trial_pid"]

    # results: every core column, every trial finished, trained weights kept
    for r in rows_whole:
        assert set(CORE_COLUMNS) <= set(r), set(CORE_COLUMNS) - set(r)
        assert r["status"] == "ok", r
        assert r["model"] == "efficientnet_b0" and int(r["macs"]) > 0 and int(r["params"]) > 0
        assert 0 <= float(r["val_accuracy"]) <= 1 and 0 <= float(r["test_accuracy"]) <= 1
        assert (whole / r["weights"]).exists()
    grid = next(r for r in rows_whole if r["method"] == "grid")
    base = next(r for r in rows_whole if r["method"] == "base")
    res = next(r for r in rows_whole if r["method"] == "resolution")
    assert int(base["resolution"]) == 32 and int(grid["resolution"]) == 36 and float(grid["depth"]) == 1.2
    assert int(res["target_macs"]) == int(grid["macs"]) and int(res["resolution"]) > 32
    meta = json.loads((whole / "study.json").read_text())
    assert meta["status"] == "finished" and meta["settings"]["model"]["base"] == "efficientnet_b0"
    assert meta["environment"]["versions"]["keras"] and meta["dataset"]["sizes"] == {"train": 16, "val": 8, "test": 8}
    assert meta["best_grid"]["trial_id"] == "grid-a1.20-b1.10-g1.15"

    # report: self-contained, every figure, escaped study text; `report DIR` rebuilds it
    html = (whole / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert "CLI test &lt;b&gt;escaped&lt;/b&gt;" in html and "compound scaling" in html
    (whole / "index.html").unlink()
    assert main(["report", str(whole)]) == 0 and (whole / "index.html").exists()

    # export the trained trial (.keras round trip, checked)
    target = tmp_path / "grid.keras"
    assert main(["export", str(whole), "--trial", grid["trial_id"], "--out", str(target), "--format", "keras"]) == 0
    assert target.exists()


def test_cli_help_for_every_subcommand():
    for cmd in ("scale", "report", "export", "data"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0


def _error_line(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_user_errors_are_one_line_exit_2(tmp_path, capsys):
    out = ["--out", str(tmp_path / "o")]
    assert "Unknown model 'efficientnet_b9'" in _error_line(capsys, ["scale", "--base", "efficientnet_b9", *out])
    assert "Did you mean" in _error_line(capsys, ["scale", "--base", "efficientnet_b9", *out])
    assert "alpha must be >= 1" in _error_line(capsys, ["scale", "--coefficients", "0.9,1.1,1.1", *out])
    assert "not within" in _error_line(capsys, ["scale", "--coefficients", "2,2,2", *out])
    bad = tmp_path / "bad.toml"
    bad.write_text("[training]\nepochs = 'many'\n")
    msg = _error_line(capsys, ["scale", "--config", str(bad), *out])
    assert str(bad) in msg and "training.epochs" in msg
    assert "--epochs: must be an integer >= 1, got -3" in _error_line(capsys, ["scale", "--epochs", "-3", *out])
    empty = tmp_path / "tfds"
    empty.mkdir()
    msg = _error_line(capsys, ["scale", "--dataset", "cifar10", "--data-dir", str(empty), *out])
    assert "not prepared" in msg and "tfds build cifar10" in msg
    assert "cannot be scaled" in _error_line(capsys, ["scale", "--base", "inception_v3", *out])
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    assert "Unknown model" in _error_line(capsys, ["export", "efficientnet_b9", "--out", str(tmp_path / "x")])
    assert "not a study" in _error_line(capsys, ["export", str(tmp_path), "--trial", "base", "--out", str(tmp_path / "x")])


def test_error_exit_status_in_a_real_process(tmp_path):
    proc = subprocess.run(_cli("scale", "--epochs", "-1", "--out", tmp_path / "o"), env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --epochs: must be an integer >= 1, got -1"

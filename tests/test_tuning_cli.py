"""``python -m keras_convnets.study search``: user errors (in-process, fast), an end-to-end search
with its report and a resume (subprocess), and keras-tuner's distributed mode: a chief and two
workers on 127.0.0.1 (subprocesses)."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_convnets.study.__main__ import main

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CLI = [sys.executable, str(TESTS / "tuning_cli.py"), "search"]
TINY = ["--space", "family", "--models", "toy_net", "--train-examples", "96", "--batch-size", "32", "--eager",
        "--quiet"]


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("argv,message", [
    (["--space", "cells"], "--space must be one of family, compound, nasnet"),
    ([], "--space is required"),
    (["--space", "nasnet", "--population", "2", "--sample", "5"], r"--sample \(5\) must not exceed --population \(2\)"),
    (["--space", "nasnet", "--algorithm", "annealing"], "--algorithm must be one of evolution, random"),
    (["--space", "nasnet", "--op-set", "darts"], "--op-set must be one of nasnet, pnas, amoeba"),
    (["--space", "nasnet", "--epochs", "0"], "--epochs must be >= 1"),
    (["--space", "nasnet", "--algorithm", "hyperband"], "hyperband needs --epochs >= 2"),
    (["--space", "nasnet", "--objective", "mnas_score"], "needs --target-macs"),
    (["--space", "family"], "--space family needs --models"),
    (["--space", "nasnet", "--config", "no_such_study"], "study file 'no_such_study' not found"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = main(["search", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    import re

    assert re.search(message, err), err
    assert "Traceback" not in err


def test_bad_flag_values_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", "nasnet", "--max-macs", "lots"])
    assert e.value.code == 2
    assert "expected a number" in capsys.readouterr().err


@pytest.mark.parametrize("text,message", [
    ("[search]\nspace = 'nasnet'\npopulaton = 4\n", "unknown key 'populaton' in \\[search\\]"),
    ("[searches]\nspace = 'nasnet'\n", "unknown table \\[searches\\]"),
    ("[search]\nspace = 'nasnet'\nmax_trials = 'many'\n", "max_trials must be an integer"),
    ("[search\n", "not valid TOML"),
])
def test_malformed_study_files(text, message, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["search", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    import re

    assert re.search(message, err) and str(path) in err and err.count("\n") == 1, err


def test_every_committed_study_file_is_valid():
    from keras_convnets.study import cmd_search

    files = sorted((ROOT / "studies").glob("search_*.toml"))
    assert {f.stem for f in files} >= {"search_family", "search_compound", "search_nasnet"}
    for f in files:
        settings = cmd_search.load_study(f)
        assert settings["space"] in cmd_search.SPACES


def test_existing_search_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("trial_id\n")
    assert main(["search", "--space", "nasnet", "--out", str(out)]) == 2
    assert "use --resume to continue it or --overwrite" in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end
def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]))
    for k in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(k, None)
    env.update(extra)
    return env


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _search(args, timeout=300, **env):
    proc = subprocess.run(CLI + args, env=_env(**env), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.heavy
def test_search_report_then_killed_and_resumed(tmp_path):
    """A tiny evolution search writes one row per trial with params and MACs, the trained models
    and the report. Killed (SIGKILL) once its first trial is recorded, then run with --resume:
    it continues where it stopped, and no trial is recorded twice."""
    out = tmp_path / "search"
    args = TINY + ["--max-trials", "3", "--population", "2", "--sample", "1", "--out", str(out)]
    proc = subprocess.Popen(CLI + args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (out / "results.csv").exists() and len(_rows(out)) >= 1:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    first = _rows(out)
    assert len(first) >= 1, proc.stderr.read()[-2000:]
    proc.stderr.close()

    _search(args + ["--resume"])
    rows = _rows(out)
    ids = [r["trial_id"] for r in rows]
    assert sorted(ids) == ["0", "1", "2"], "every trial recorded exactly once"
    assert rows[: len(first)] == first, "the finished trials are kept as they were"
    assert all(int(r["params"]) > 0 and int(r["macs"]) > 0 and r["status"] == "ok" for r in rows)
    assert all((out / r["weights"]).exists() for r in rows)
    page = (out / "index.html").read_text()
    assert "Pareto front" in page and page.count("data:image/png;base64,") >= 3
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # The same export as for `scale`: a trained trial, reloaded and checked.
    assert main(["export", str(out), "--trial", "2", "--out", str(tmp_path / "t2.keras"), "--format", "keras"]) == 0
    assert (tmp_path / "t2.keras").exists()


# ----------------------------------------------------------------------------- distributed
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.heavy
def test_chief_and_two_workers_run_every_trial_once(tmp_path):
    out = tmp_path / "dist"
    port = str(_free_port())
    args = CLI + TINY + ["--max-trials", "3", "--population", "2", "--sample", "1", "--out", str(out)]
    procs = {}
    logs = {}
    for tid in ("chief", "tuner0", "tuner1"):
        logs[tid] = open(tmp_path / f"{tid}.log", "w")
        env = _env(KERASTUNER_TUNER_ID=tid, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port)
        procs[tid] = subprocess.Popen(args, env=env, stdout=logs[tid], stderr=subprocess.STDOUT, cwd=ROOT)
        if tid == "chief":
            time.sleep(1.0)  # the chief prepares DIR; workers wait for its gRPC server anyway
    try:
        for tid, p in procs.items():
            assert p.wait(timeout=420) == 0, (tmp_path / f"{tid}.log").read_text()[-3000:]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        for f in logs.values():
            f.close()
    rows = _rows(out)
    ids = [r["trial_id"] for r in rows]
    assert sorted(ids) == ["0", "1", "2"], "every trial completed exactly once"
    assert all(r["status"] == "ok" for r in rows)
    assert {r["worker"] for r in rows} <= {"tuner0", "tuner1"}, "the chief only serves the oracle"
    import json

    for t in ids:
        trial = json.loads((out / "tuner" / f"trial_{t}" / "trial.json").read_text())
        assert trial["status"] == "COMPLETED"
    evolution = json.loads((out / "evolution.json").read_text())
    assert len(evolution["lineage"]) == 3 and len(evolution["population"]) == 2
    assert (out / "index.html").exists()

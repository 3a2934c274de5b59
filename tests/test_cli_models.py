"""`python -m keras_convnets.study models` end to end, in a subprocess as a user runs it, and its
errors."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

from helpers import registry
from keras_convnets.study.__main__ import main

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def errors(stderr: str) -> list[str]:
    """Our lines on stderr (TensorFlow's C++ start-up may log a line or two before any of ours)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def study(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "keras_convnets.study", "models", *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_csv_for_one_family():
    proc = study("--family", "efficientnet", "--name", "efficientnet_b[01]", "--format", "csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["model"] for r in records] == ["efficientnet_b0", "efficientnet_b1"]
    for r in records:
        spec = registry.get(r["model"])
        assert int(r["params"]) == int(r["ref_params"]) == spec.ref_params
        assert int(r["macs"]) == int(r["ref_macs"]) == spec.ref_macs
        assert float(r["params_diff_pct"]) == 0.0 and float(r["macs_diff_pct"]) == 0.0
        assert r["family"] == "efficientnet" and r["params_kind"] == "total"
        assert r["macs_source"].startswith("counted on keras.applications")


def test_table_is_the_default():
    proc = study("--family", "efficientnet", "--name", "efficientnet_b0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    header, rule, row = proc.stdout.strip().splitlines()
    assert header.split()[:3] == ["model", "family", "params"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert row.split()[:4] == ["efficientnet_b0", "efficientnet", "5,330,571", "5,330,571"]
    assert "385,814,752" in row and "+0.00%" in row and "224x224x3" in row


# The error paths in this process (main() is what `python -m` runs; the exit status of a real
# process is test_study_cli.test_error_exit_status_in_a_real_process): a subprocess here spends
# ~12 s importing TensorFlow to print one line.
def test_unknown_family_is_a_one_line_error(capsys):
    assert main(["models", "--family", "no_such_family"]) == 2
    captured = capsys.readouterr()
    lines = errors(captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: Unknown family 'no_such_family'")
    assert "efficientnet" in lines[0]  # names the registered families
    assert captured.out == ""


def test_no_match_is_a_one_line_error(capsys):
    assert main(["models", "--family", "efficientnet", "--name", "resnet*"]) == 2
    assert errors(capsys.readouterr().err) == [
        "error: no registered model of family 'efficientnet' matches 'resnet*'; "
        "`models` without --name lists them all"]

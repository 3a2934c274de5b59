"""Trials in their own processes (keras_convnets.study.isolation): each trial runs in a fresh
process and computes the same numbers as in the study's process; a trial process that dies is a
failed trial and the next trial still runs."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from keras_convnets import data
from keras_convnets.study import runner
from keras_convnets.study.isolation import TrialRunner

DATA = dict(spec="digits", train_examples=64, val_examples=32, test_examples=32, seed=0)


def task(tmp_path, name, epochs=1):
    recipe = runner.Recipe(epochs=epochs, batch_size=16, optimizer="sgd", learning_rate=0.01, seed=3,
                           run_eagerly=True, verbose=0)
    return {"build": dict(name="lenet5", input_shape=(32, 32, 1), classes=10),
            "recipe": recipe.to_dict(), "save_path": str(tmp_path / f"{name}.keras")}


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset(**DATA)


@pytest.mark.heavy
def test_each_trial_in_a_fresh_process_same_numbers(digits, tmp_path):
    with TrialRunner(digits, DATA, isolate=True) as trials:
        first = trials.run(task(tmp_path, "a"), more=True)
        second = trials.run(task(tmp_path, "b"), more=False)
    local = TrialRunner(digits, DATA, isolate=False).run(task(tmp_path, "c"))
    for m in (first, second, local):
        assert m["status"] == "ok", m
    pids = {first["trial_pid"], second["trial_pid"]}
    assert len(pids) == 2 and os.getpid() not in pids and local["trial_pid"] == os.getpid()
    assert trials.children_started == 2  # no spare process after the last trial
    for k in ("val_loss", "test_loss", "train_loss", "params", "macs"):
        assert first[k] == second[k] == pytest.approx(local[k], rel=1e-5), k
    assert (tmp_path / "a.keras").exists() and (tmp_path / "b.keras").exists()
    assert first["memory_mb"] > 0 and first["peak_memory_mb"] >= first["memory_mb"] * 0.5


def test_a_dead_trial_process_is_a_failed_trial(digits, tmp_path):
    with TrialRunner(digits, DATA, isolate=True) as trials:
        def kill_when_running():
            deadline = time.time() + 300
            while time.time() < deadline:
                child = trials.current
                if child is not None and child.proc.pid:
                    time.sleep(0.5)
                    os.kill(child.proc.pid, signal.SIGKILL)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_when_running, daemon=True)
        killer.start()
        dead = trials.run(task(tmp_path, "dead", epochs=50), more=True)
        killer.join()
        assert dead["status"] == "failed" and "exit code -9" in dead["error"], dead
        after = trials.run(task(tmp_path, "after"), more=False)  # the study goes on
        assert after["status"] == "ok", after
    assert not (tmp_path / "dead.keras").exists()


def test_the_study_works_while_a_trial_trains(digits, tmp_path):
    seen = {}

    def meanwhile():  # the study plans its next trial here
        seen["child_alive"] = trials.current is not None and trials.current.proc.is_alive()
        seen["in_study_process"] = os.getpid()

    with TrialRunner(digits, DATA, isolate=True) as trials:
        m = trials.run(task(tmp_path, "m"), more=False, meanwhile=meanwhile)
    assert m["status"] == "ok" and seen == {"child_alive": True, "in_study_process": os.getpid()}
    assert m["trial_pid"] != os.getpid()

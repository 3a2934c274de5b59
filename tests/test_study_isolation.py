"""Trials in their own processes (keras_convnets.study.isolation): each trial runs in a fresh
process and computes the same numbers as in the study's process; a trial process that dies is a
failed trial and the next trial still runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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


def test_a_spare_process_dead_before_its_trial_is_a_failed_trial(digits, tmp_path):
    """The process started ahead for the next trial died while it waited (killed, out of memory):
    sending it the task must not end the study; that trial fails with the exit code, the next runs."""
    with TrialRunner(digits, DATA, isolate=True) as trials:
        assert trials.run(task(tmp_path, "a"), more=True)["status"] == "ok"
        spare = trials._spare
        os.kill(spare.proc.pid, signal.SIGKILL)
        spare.proc.join(30)
        dead = trials.run(task(tmp_path, "b"), more=True)
        assert dead["status"] == "failed" and "exit code -9" in dead["error"], dead
        assert trials.run(task(tmp_path, "c"), more=False)["status"] == "ok"


def test_a_process_that_exits_before_it_starts_says_why(digits, tmp_path):
    """Exit code 1 before the trial's process is ready is typically a script that runs its study
    at import time (multiprocessing re-imports it in the process): the error says what to do."""
    import functools

    with TrialRunner(digits, DATA, isolate=True, prefork=False, setup=functools.partial(sys.exit, 1)) as trials:
        m = trials.run(task(tmp_path, "x"), more=False)
    assert m["status"] == "failed" and "exit code 1 before it started" in m["error"], m
    assert "if __name__ == '__main__':" in m["error"] and "isolate=False" in m["error"]


def test_the_study_works_while_a_trial_trains(digits, tmp_path):
    seen = {}

    def meanwhile():  # the study plans its next trial here
        seen["child_alive"] = trials.current is not None and trials.current.proc.is_alive()
        seen["in_study_process"] = os.getpid()

    with TrialRunner(digits, DATA, isolate=True) as trials:
        m = trials.run(task(tmp_path, "m"), more=False, meanwhile=meanwhile)
    assert m["status"] == "ok" and seen == {"child_alive": True, "in_study_process": os.getpid()}
    assert m["trial_pid"] != os.getpid()


_SERVER_SCRIPT = """
import json, os, sys
from multiprocessing import forkserver
from keras_convnets.data import keras_backend
from keras_convnets.study import isolation
assert "keras" not in sys.modules
backend = keras_backend()
isolation.start_server()
pid = forkserver._forkserver._forkserver_pid
os.kill(pid, 0)  # running, and this process did not wait for its imports
isolation.stop_server()
try:
    os.kill(pid, 0)
    gone = False
except ProcessLookupError:
    gone = True
print(json.dumps({"backend": backend, "gone": gone, "keras_imported": "keras" in sys.modules}))
"""


@pytest.mark.parametrize("env_backend, file_backend, expected", [
    (None, None, "tensorflow"), (None, "jax", "jax"), ("torch", "jax", "torch")])
def test_the_fork_server_starts_early_and_stops_on_errors(tmp_path, env_backend, file_backend, expected):
    """start_server needs Keras' backend before Keras is imported (data.keras_backend: KERAS_BACKEND,
    else keras.json, else TensorFlow, Keras' own rule) and returns at once; stop_server (an error before the first
    trial) leaves no server behind importing TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "KC_TRIAL_START")}
    env["KERAS_HOME"] = str(tmp_path)
    if env_backend:
        env["KERAS_BACKEND"] = env_backend
    if file_backend:
        (tmp_path / "keras.json").write_text(json.dumps({"backend": file_backend}))
    out = subprocess.run([sys.executable, "-c", _SERVER_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"backend": expected, "gone": True,
                                                               "keras_imported": False}


@pytest.mark.heavy
def test_the_next_trial_is_built_while_one_trains_and_trains_after_it(digits, tmp_path):
    """``meanwhile`` returning the next task: its process builds that model while this trial
    trains, starts training only once this one is measured (two never train at once), and
    computes the same numbers as a trial run on its own."""
    first, second = task(tmp_path, "a", epochs=3), task(tmp_path, "b")
    with TrialRunner(digits, DATA, isolate=True) as trials:
        a = trials.run(first, more=True, meanwhile=lambda: second)
        ahead_pid = trials._spare.proc.pid
        b = trials.run(second, more=False)
    alone = TrialRunner(digits, DATA, isolate=True, ahead=False)
    with alone:
        c = alone.run(second, more=False, meanwhile=lambda: first)  # ahead=False: nothing prepared
    assert a["status"] == b["status"] == c["status"] == "ok", (a, b, c)
    assert b["trial_pid"] == ahead_pid != a["trial_pid"]
    assert b["prepared_at"] < a["measured_at"] <= b["fit_started_at"]  # built during a, trained after it
    assert b["handoff_wait_seconds"] > 0 and c["handoff_wait_seconds"] == 0
    assert (a["prepared_ahead"], b["prepared_ahead"], c["prepared_ahead"]) == (False, True, False)
    assert alone.children_started == 1
    for k in ("val_loss", "test_loss", "train_loss", "params", "macs"):
        assert b[k] == pytest.approx(c[k], rel=1e-6), k
    assert (tmp_path / "a.keras").exists() and (tmp_path / "b.keras").exists()


def test_no_trial_is_prepared_ahead_when_switched_off(digits, monkeypatch):
    """In-process, without a spare process, or with KC_TRIAL_AHEAD=0, nothing is prepared ahead."""
    assert TrialRunner(digits, DATA).ahead
    assert not TrialRunner(digits, DATA, isolate=False).ahead
    assert not TrialRunner(digits, DATA, prefork=False).ahead
    monkeypatch.setenv("KC_TRIAL_AHEAD", "0")
    assert not TrialRunner(digits, DATA).ahead


def test_a_trial_prepared_ahead_but_not_run_next_is_dropped(digits, tmp_path):
    """The study asks for another trial than the one it announced: the announced one, training
    since the trial before was measured, is stopped; a fresh process trains the trial asked for."""
    with TrialRunner(digits, DATA, isolate=True) as trials:
        trials.run(task(tmp_path, "a"), more=True, meanwhile=lambda: task(tmp_path, "announced", epochs=100))
        prepared = trials._spare.proc
        m = trials.run(task(tmp_path, "other"), more=False)
    assert m["status"] == "ok" and m["trial_pid"] != prepared.pid and not prepared.is_alive()
    assert trials.children_started == 3
    assert (tmp_path / "other.keras").exists() and not (tmp_path / "announced.keras").exists()

"""``study search``'s trials in their own processes (``CostAwareMixin(trials=TrialRunner)``):
the same numbers as in the search's process, a trial process that dies is a failed trial and the
search goes on, and a model registered only here (the toy family) reaches the trial processes."""

from __future__ import annotations

import functools

import keras_tuner as kt
import pytest

import tuning_toy
from keras_convnets import tuning
from keras_convnets.study.isolation import TrialRunner

EXAMPLES = 64


def search(tmp_path, name, *, isolate, crash=False, trials=3):
    context = tuning_toy.search_context(EXAMPLES)
    runner = TrialRunner(context, isolate=isolate, work=tuning.search_task,
                         setup=functools.partial(tuning_toy.search_context, EXAMPLES, crash),
                         preload=("keras_tuner", "keras_convnets.tuning"))
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=trials, seed=1)
    tuner = tuning.SearchTuner(oracle=oracle, hypermodel=context.hypermodel, trial_seed=0, directory=tmp_path,
                               project_name=name, models_dir=tmp_path / name / "models", trials=runner)
    with runner:
        tuner.search(context.data, epochs=1, verbose=0)
    return tuner, runner


@pytest.mark.heavy
def test_trials_in_their_own_processes_train_the_same(tmp_path):
    try:
        isolated, runner = search(tmp_path, "isolated", isolate=True, trials=2)
        local, _ = search(tmp_path, "local", isolate=False, trials=2)
    finally:
        tuning_toy.unregister()
    assert runner.children_started >= 2, "each trial had a process of its own"
    assert set(isolated.oracle.trials) == set(local.oracle.trials)
    for tid, trial in isolated.oracle.trials.items():
        other = local.oracle.trials[tid]
        assert trial.status == other.status == "COMPLETED"
        assert trial.hyperparameters.values == other.hyperparameters.values
        for metric in ("val_loss", "val_accuracy", "macs", "params", "test_accuracy"):
            assert trial.metrics.get_last_value(metric) == other.metrics.get_last_value(metric), (tid, metric)
        # the trial process saved the trained model and keras-tuner's best-epoch checkpoint
        assert (tmp_path / "isolated" / "models" / f"{tid}.keras").exists()
        assert (tmp_path / "isolated" / f"trial_{tid}" / "checkpoint.weights.h5").exists()


def test_a_trial_process_that_dies_is_a_failed_trial(tmp_path):
    try:
        tuner, _ = search(tmp_path, "crash", isolate=True, crash=True, trials=4)
    finally:
        tuning_toy.unregister()
    trials = tuner.oracle.trials.values()
    failed = [t for t in trials if t.status == "FAILED"]
    done = [t for t in trials if t.status == "COMPLETED"]
    assert failed and done, [(t.hyperparameters.values["width_multiplier"], t.status) for t in trials]
    assert all(t.hyperparameters.values["width_multiplier"] == 0.5 for t in failed)
    assert all("died with exit code 3" in (t.message or "") for t in failed)


def test_a_model_that_cannot_reach_a_trial_process_is_one_error(tmp_path, capsys):
    """A builder that is not an importable function (a lambda) cannot be sent to a trial process:
    one message before anything is written, exit 2; --in-process would run it."""
    from keras_convnets import registry
    from keras_convnets.study.__main__ import main

    tuning_toy.register()
    spec = registry.get(tuning_toy.NAME)
    registry.register("toy_lambda", lambda **kw: spec.builder(**kw), family="toy_lambda", paper="(test)", year=2024,
                      arxiv=None, default_size=32, min_size=8, knobs=spec.knobs)
    try:
        out = tmp_path / "out"
        code = main(["search", "--space", "family", "--models", "toy_lambda", "--out", str(out), "--quiet"])
    finally:
        registry._REGISTRY.pop("toy_lambda", None)
        tuning_toy.unregister()
    err = capsys.readouterr().err
    assert code == 2 and "'toy_lambda' is registered here but cannot reach a trial process" in err, err
    assert "--in-process" in err and err.count("\n") == 1 and not out.exists()

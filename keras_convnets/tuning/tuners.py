"""keras-tuner Tuners for the searches: every trial's cost, a MACs budget, MnasNet's reward.

:class:`CostAwareMixin` goes in front of any keras-tuner Tuner class (``SearchTuner`` is it on
``keras_tuner.Tuner``, for any oracle; ``HyperbandSearchTuner`` on ``keras_tuner.Hyperband``).
For each trial it

- builds the model and measures its parameters and MACs (``keras_convnets.flops.count_macs``);
- with a ``max_macs`` budget, does not train a model over it: the trial completes with the worst
  score (0 for the maximised objectives used here), so every oracle simply learns to avoid it;
- trains it through the hypermodel (keras-tuner's own callbacks, checkpoints, Hyperband epochs),
  optionally puts MnasNet's reward ``ACC * (MACs / T)^w`` (Tan et al. 2019, arXiv:1807.11626,
  Eq. 2, with MACs for latency) into each epoch's logs as ``mnas_score``;
- evaluates the test split once, and reports params, MACs and timings to the oracle with the
  objective, so they are in every trial's record (the chief's too, in distributed runs);
- hands the finished trial to an optional ``recorder`` (the study's results store).
"""

from __future__ import annotations

import math
import os
import time
import zlib
from pathlib import Path
from typing import Any, Protocol

import keras
import keras_tuner as kt
from keras_tuner.src.engine import tuner_utils  # keras-tuner's own result conversion

from keras_convnets.tuning.evolution import RegularizedEvolution
from keras_convnets.tuning.hypermodels import cost

__all__ = [
    "ALGORITHMS", "OBJECTIVES", "MNAS_WEIGHT", "mnas_score", "MnasScore", "CostAwareMixin", "SearchTuner",
    "HyperbandSearchTuner", "make_tuner", "worst_score", "Recorder",
]

ALGORITHMS = ("evolution", "random", "bayesian", "hyperband")
OBJECTIVES = ("val_accuracy", "mnas_score")
# MnasNet's soft constraint, alpha = beta = -0.07 (Tan et al. 2019, Sec. 3).
MNAS_WEIGHT = -0.07


def mnas_score(accuracy: float, macs: float, target: float, weight: float = MNAS_WEIGHT) -> float:
    """MnasNet's multi-objective reward ACC(m) * (MACs(m) / T)^w (Eq. 2, MACs in place of latency)."""
    return float(accuracy) * (float(macs) / float(target)) ** float(weight)


class MnasScore(keras.callbacks.Callback):
    """Adds ``mnas_score`` to each epoch's logs, so keras-tuner's best-epoch bookkeeping and
    checkpointing (which read the logs) can use it as the objective."""

    def __init__(self, macs: int, target: float, weight: float = MNAS_WEIGHT, accuracy: str = "val_accuracy"):
        super().__init__()
        self.macs, self.target, self.weight, self.accuracy = macs, target, weight, accuracy

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.accuracy in logs:
            logs["mnas_score"] = mnas_score(logs[self.accuracy], self.macs, self.target, self.weight)


def worst_score(objective) -> float:
    """The score a trial over the budget gets: 0 for a maximised accuracy or reward (both are
    >= 0), +inf for a minimised objective."""
    return 0.0 if objective.direction == "max" else math.inf


class Recorder(Protocol):
    """Where finished trials go (the study's results store implements it)."""

    def lookup(self, trial_id: str) -> dict | None:
        """The metrics of a trial recorded before (a resumed search re-offers the trial that was
        in flight when the process died; if its record was written, it is not run again)."""

    def record(self, trial_id: str, hp, metrics: dict, status: str, message: str = "") -> None:
        """One finished trial: status ``ok``, ``over_budget`` or ``failed``."""


def _best_epoch(history, objective) -> dict:
    """The logs of the epoch with the best objective value (what keras-tuner reports)."""
    logs = history.history
    n = len(next(iter(logs.values()))) if logs else 0
    if n == 0:
        return {}
    epochs = [{k: float(v[i]) for k, v in logs.items() if i < len(v)} for i in range(n)]
    if objective.name not in epochs[0]:
        return epochs[-1]
    pick = max if objective.direction == "max" else min
    return pick(epochs, key=lambda e: e[objective.name])


class CostAwareMixin:
    """Budget, cost metrics, MnasNet reward and result recording for any keras-tuner Tuner.

    Args (keywords, before the Tuner's own):
        max_macs: trials whose model has more MACs are not trained and score worst.
        mnas_target: with a target T (MACs), ``mnas_score`` is computed each epoch.
        mnas_weight: the exponent w (MnasNet's -0.07 by default).
        recorder: a :class:`Recorder`, or None.
        models_dir: where each trained trial model is saved as ``<trial_id>.keras`` (for export).
        trial_seed: seeds Keras (weights, dropout, shuffling) from (trial_seed, trial id) before
            each trial, so a trial trains the same on any worker and when re-run after a resume.
    """

    def __init__(self, *args, max_macs: int | None = None, mnas_target: float | None = None,
                 mnas_weight: float = MNAS_WEIGHT, recorder: Recorder | None = None,
                 models_dir: str | os.PathLike | None = None, trial_seed: int | None = None, **kwargs):
        if max_macs is not None and max_macs <= 0:
            raise ValueError(f"max_macs must be > 0, got {max_macs!r}")
        if mnas_target is not None and mnas_target <= 0:
            raise ValueError(f"the MnasNet target must be > 0 MACs, got {mnas_target!r}")
        self.max_macs = max_macs
        self.mnas_target = mnas_target
        self.mnas_weight = float(mnas_weight)
        self.recorder = recorder
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.trial_seed = trial_seed
        super().__init__(*args, **kwargs)
        if self.oracle.objective.name == "mnas_score" and mnas_target is None:
            raise ValueError("the mnas_score objective needs a MACs target (mnas_target)")

    # keras-tuner calls this once per execution of a trial (Tuner.run_trial); it is the hook
    # keras-tuner documents for wrapping the build and the fit.
    def _build_and_fit_model(self, trial, *args, **kwargs):
        from keras_tuner.src import utils as kt_utils
        from keras_tuner.src.backend import config as kt_config

        hp = trial.hyperparameters
        if self.trial_seed is not None:
            keras.utils.set_random_seed((self.trial_seed * 1_000_003 + zlib.crc32(trial.trial_id.encode())) % 2**31)
        model = self._try_build(hp)
        metrics: dict[str, Any] = dict(cost(model))
        objective = self.oracle.objective
        if self.max_macs is not None and metrics["macs"] > self.max_macs:
            return {**metrics, objective.name: worst_score(objective), "over_budget": 1.0}
        if self.mnas_target is not None:
            kwargs["callbacks"] = [MnasScore(metrics["macs"], self.mnas_target, self.mnas_weight)] + list(
                kwargs.get("callbacks", []))
        start = time.perf_counter()
        history = self.hypermodel.fit(hp, model, *args, **kwargs)
        metrics["train_seconds"] = time.perf_counter() - start
        if kt_config.multi_backend():  # Hyperband reloads a parent trial's model from it
            kt_utils.save_json(self._get_build_config_fname(trial.trial_id), model.get_build_config())
        if not isinstance(history, keras.callbacks.History):
            tuner_utils.validate_trial_results(history, objective, "HyperModel.fit()")
            return {**metrics, **tuner_utils.convert_to_metrics_dict(history, objective)}
        best = _best_epoch(history, objective)
        if any(math.isnan(v) for v in best.values()) or math.isnan(history.history.get("loss", [0.0])[-1]):
            raise kt.errors.FailedTrialError(f"the loss became NaN (epoch logs {best})")
        metrics.update(best)
        evaluate = getattr(self.hypermodel, "evaluate", None)
        if evaluate is not None and args:
            metrics.update(evaluate(hp, model, args[0]))
        if self.models_dir is not None:
            _save_atomic(model, self.models_dir / f"{trial.trial_id}.keras")
        return metrics

    def run_trial(self, trial, *args, **kwargs):
        if self.recorder is not None:
            recorded = self.recorder.lookup(trial.trial_id)
            if recorded is not None:
                return recorded
        try:
            results = super().run_trial(trial, *args, **kwargs)
        except kt.errors.FatalError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of one trial is that trial's result
            message = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            if self.recorder is not None:
                self.recorder.record(trial.trial_id, trial.hyperparameters, {}, "failed", message)
            raise kt.errors.FailedTrialError(message) from e
        metrics = tuner_utils.convert_to_metrics_dict(results, self.oracle.objective)
        metrics = {k: float(v) for k, v in metrics.items()}
        status = "over_budget" if metrics.get("over_budget") else "ok"
        if self.recorder is not None:
            self.recorder.record(trial.trial_id, trial.hyperparameters, metrics, status)
        return metrics


def _save_atomic(model, path: Path) -> None:
    """Save via a temporary file and ``os.replace``: a killed process never leaves half a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


class SearchTuner(CostAwareMixin, kt.Tuner):
    """A keras-tuner Tuner with any oracle (e.g. :class:`RegularizedEvolution`)."""


class HyperbandSearchTuner(CostAwareMixin, kt.Hyperband):
    """keras-tuner's Hyperband (successive halving of epochs) with the same trial handling."""


def make_tuner(algorithm: str, hypermodel, *, objective: str = "val_accuracy", max_trials: int = 20,
               seed: int | None = None, population_size: int = 10, sample_size: int = 3, max_epochs: int = 1,
               directory=None, project_name: str = "tuner", overwrite: bool = False,
               distribution_strategy=None, identity_probability: float = 0.05, **cost_kwargs):
    """The tuner of ``algorithm`` (one of :data:`ALGORITHMS`) over ``hypermodel``.

    ``hyperband`` runs keras-tuner's Hyperband brackets (``max_epochs`` the largest budget, factor
    3) until ``max_trials`` trials; the others run ``max_trials`` trials of the epochs ``search``
    is given. ``identity_probability`` is the evolution's identity-mutation rate.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}; got {algorithm!r}")
    cost_kwargs.setdefault("trial_seed", seed)
    direction = "max" if objective in OBJECTIVES else None
    objective = kt.Objective(objective, direction) if direction else objective
    common = dict(directory=directory, project_name=project_name, overwrite=overwrite,
                  distribution_strategy=distribution_strategy, **cost_kwargs)
    if algorithm == "hyperband":
        tuner = HyperbandSearchTuner(hypermodel=hypermodel, objective=objective, max_epochs=max(int(max_epochs), 1),
                                     factor=3, hyperband_iterations=None, seed=seed, **common)
        tuner.oracle.max_trials = max_trials
        return tuner
    if algorithm == "evolution":
        oracle = RegularizedEvolution(objective=objective, max_trials=max_trials, population_size=population_size,
                                      sample_size=sample_size, seed=seed,
                                      identity_probability=identity_probability)
    elif algorithm == "random":
        oracle = kt.oracles.RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
    else:
        oracle = kt.oracles.BayesianOptimizationOracle(objective=objective, max_trials=max_trials, seed=seed)
    return SearchTuner(oracle=oracle, hypermodel=hypermodel, **common)

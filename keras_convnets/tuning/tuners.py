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

import dataclasses
import math
import os
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Protocol

import keras
import keras_tuner as kt
from keras_tuner.src.engine import tuner_utils  # keras-tuner's own result conversion

from keras_convnets.study.results import save_model_atomic
from keras_convnets.tuning.evolution import RegularizedEvolution
from keras_convnets.tuning.hypermodels import cost

__all__ = [
    "ALGORITHMS", "OBJECTIVES", "MNAS_WEIGHT", "mnas_score", "MnasScore", "CostAwareMixin", "SearchTuner",
    "HyperbandSearchTuner", "make_tuner", "worst_score", "Recorder", "SearchContext", "fit_trial", "search_task",
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


@dataclasses.dataclass
class SearchContext:
    """What every trial of a search shares: its data (the argument of ``tuner.search``), the
    hypermodel and the ``tf.distribute`` strategy (or None). A trial process makes its own
    (``setup`` of :class:`keras_convnets.study.isolation.TrialRunner`)."""

    data: Any
    hypermodel: Any
    strategy: Any = None


def fit_trial(build: Callable[[], Any], hypermodel, hp, args: tuple, kwargs: dict, *, objective,
              max_macs: int | None = None, mnas_target: float | None = None, mnas_weight: float = MNAS_WEIGHT,
              build_config_path: str | None = None, save_path: Path | None = None) -> dict:
    """One trial's work, the same in the search's process and in a trial process: build the
    model, measure its cost, skip it over the MACs budget, fit it through the hypermodel (with
    MnasNet's reward in the epoch logs), evaluate the test split and save the trained model.
    Returns the metrics keras-tuner gets (the best epoch's logs, params, MACs, timings)."""
    from keras_tuner.src import utils as kt_utils
    from keras_tuner.src.backend import config as kt_config

    model = build()
    metrics: dict[str, Any] = dict(cost(model))
    if max_macs is not None and metrics["macs"] > max_macs:
        return {**metrics, objective.name: worst_score(objective), "over_budget": 1.0}
    if mnas_target is not None:
        kwargs = {**kwargs, "callbacks": [MnasScore(metrics["macs"], mnas_target, mnas_weight),
                                          *kwargs.get("callbacks", [])]}
    start = time.perf_counter()
    history = hypermodel.fit(hp, model, *args, **kwargs)
    metrics["train_seconds"] = time.perf_counter() - start
    if build_config_path and kt_config.multi_backend():  # Hyperband reloads a parent trial's model from it
        kt_utils.save_json(build_config_path, model.get_build_config())
    if not isinstance(history, keras.callbacks.History):
        tuner_utils.validate_trial_results(history, objective, "HyperModel.fit()")
        return {**metrics, **tuner_utils.convert_to_metrics_dict(history, objective)}
    best = _best_epoch(history, objective)
    if any(math.isnan(v) for v in best.values()) or math.isnan(history.history.get("loss", [0.0])[-1]):
        raise kt.errors.FailedTrialError(f"the loss became NaN (epoch logs {best})")
    metrics.update(best)
    evaluate = getattr(hypermodel, "evaluate", None)
    if evaluate is not None and args:
        metrics.update(evaluate(hp, model, args[0]))
    if save_path is not None:
        save_model_atomic(model, save_path)
    return metrics


def search_task(task: dict, context: SearchContext) -> dict:
    """One search trial in a trial process (the ``work`` of ``TrialRunner``): ``task`` is what
    :meth:`CostAwareMixin._fit_in_trial_process` sends. Returns ``{"status": "ok", "metrics":
    ...}`` or ``{"status": "failed", "error": ...}``."""
    import gc

    from keras_tuner.src import utils as kt_utils
    from keras_tuner.src.backend import config as kt_config
    from keras_tuner.src.engine.tuner import maybe_distribute

    hp = kt.HyperParameters.from_config(task["hp"])
    objective = task["objective"]

    def build():
        # As keras-tuner's Tuner._try_build (after the trial's seed, as in the search's process).
        keras.backend.clear_session()
        gc.collect()
        with maybe_distribute(context.strategy):
            model = context.hypermodel.build(hp)
        parent = task.get("parent")
        if parent:  # Hyperband: go on training the trial this one continues
            if kt_config.multi_backend():
                model.build_from_config(kt_utils.load_json(parent["build_config"]))
            model.load_weights(parent["checkpoint"])
        return model

    callbacks = list(task["callbacks"])
    if task.get("checkpoint"):
        callbacks.append(tuner_utils.SaveBestEpoch(objective=objective, filepath=task["checkpoint"]))
    try:
        if task.get("seed") is not None:
            keras.utils.set_random_seed(task["seed"])
        metrics = fit_trial(build, context.hypermodel, hp, (context.data,), {**task["fit"], "callbacks": callbacks},
                            objective=objective, max_macs=task.get("max_macs"), mnas_target=task.get("mnas_target"),
                            mnas_weight=task.get("mnas_weight", MNAS_WEIGHT), build_config_path=task.get("build_config"),
                            save_path=task.get("save_path"))
    except Exception as e:  # noqa: BLE001 - the search's process records it as the trial's failure
        return {"status": "failed", "error": f"{type(e).__name__}: {e}".splitlines()[0][:500]}
    return {"status": "ok", "metrics": {k: float(v) for k, v in metrics.items()}}


class _FailedElsewhere(kt.errors.FailedTrialError):
    """A trial that failed in its trial process; the message is already "Type: why"."""


# keras-tuner's per-epoch and per-batch hooks of a Tuner, which its TunerCallback calls: no-ops in
# keras_tuner.Tuner. A trial process has no tuner to call them on.
_TUNER_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end")


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
        trials: a :class:`keras_convnets.study.isolation.TrialRunner` whose ``work`` is
            :func:`search_task` and whose context is a :class:`SearchContext`: with isolation on,
            each trial is built, trained, evaluated and saved in its own process (on TensorFlow
            every trial's graphs stay in the process that traced them, ~110 MiB an EfficientNet
            trial; bench/README.md, "Memory across trials"), and the search's process only
            decides and records. ``tuner.search`` must then be given the context's data.
    """

    def __init__(self, *args, max_macs: int | None = None, mnas_target: float | None = None,
                 mnas_weight: float = MNAS_WEIGHT, recorder: Recorder | None = None,
                 models_dir: str | os.PathLike | None = None, trial_seed: int | None = None, trials=None,
                 **kwargs):
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
        self.trials = trials
        super().__init__(*args, **kwargs)
        if self.oracle.objective.name == "mnas_score" and mnas_target is None:
            raise ValueError("the mnas_score objective needs a MACs target (mnas_target)")

    def _seed_of(self, trial_id: str) -> int | None:
        if self.trial_seed is None:
            return None
        return (self.trial_seed * 1_000_003 + zlib.crc32(trial_id.encode())) % 2**31

    def _save_path(self, trial_id: str) -> Path | None:
        return self.models_dir / f"{trial_id}.keras" if self.models_dir is not None else None

    # keras-tuner calls this once per execution of a trial (Tuner.run_trial); it is the hook
    # keras-tuner documents for wrapping the build and the fit.
    def _build_and_fit_model(self, trial, *args, **kwargs):
        if self.trials is not None and self.trials.isolate:
            return self._fit_in_trial_process(trial, args, kwargs)
        hp = trial.hyperparameters
        seed = self._seed_of(trial.trial_id)
        if seed is not None:
            keras.utils.set_random_seed(seed)
        return fit_trial(lambda: self._try_build(hp), self.hypermodel, hp, args, kwargs,
                         objective=self.oracle.objective, max_macs=self.max_macs, mnas_target=self.mnas_target,
                         mnas_weight=self.mnas_weight, build_config_path=self._get_build_config_fname(trial.trial_id),
                         save_path=self._save_path(trial.trial_id))

    def _fit_in_trial_process(self, trial, args: tuple, kwargs: dict) -> dict:
        """Send the trial to a fresh process (``self.trials``) and return its metrics."""
        import pickle

        context = self.trials.context
        if args[:1] != (context.data,) or len(args) > 1:
            raise kt.errors.FatalError("with trials in their own processes, search() takes the trial "
                                       "runner's data (its SearchContext.data) and nothing else")
        overridden = [h for h in _TUNER_HOOKS if getattr(type(self), h) is not getattr(kt.Tuner, h)]
        if overridden:
            raise kt.errors.FatalError(f"{type(self).__name__} overrides {', '.join(overridden)}, which a trial "
                                       "process cannot call; run the trials in this process")
        checkpoint, callbacks = None, []
        for cb in kwargs.get("callbacks", []):
            if isinstance(cb, tuner_utils.TunerCallback):
                continue  # calls the hooks above, no-ops
            if isinstance(cb, tuner_utils.SaveBestEpoch):
                checkpoint = cb.filepath  # made again in the trial process
                continue
            callbacks.append(cb)
        hp = trial.hyperparameters
        parent = None
        if "tuner/trial_id" in hp.values and isinstance(self, kt.Hyperband):
            previous = hp.values["tuner/trial_id"]
            parent = {"checkpoint": self._get_checkpoint_fname(previous),
                      "build_config": self._get_build_config_fname(previous)}
        fit = {k: v for k, v in kwargs.items() if k != "callbacks"}
        task = {"hp": hp.get_config(), "trial_id": trial.trial_id, "seed": self._seed_of(trial.trial_id),
                "objective": self.oracle.objective, "fit": fit, "callbacks": callbacks, "checkpoint": checkpoint,
                "parent": parent, "max_macs": self.max_macs, "mnas_target": self.mnas_target,
                "mnas_weight": self.mnas_weight, "build_config": self._get_build_config_fname(trial.trial_id),
                "save_path": self._save_path(trial.trial_id)}
        try:
            pickle.dumps(task)
        except Exception as e:  # noqa: BLE001 - e.g. a callback holding a lock or a lambda
            raise kt.errors.FatalError(f"this trial cannot be sent to a trial process ({type(e).__name__}: {e}); "
                                       "pass picklable callbacks or run the trials in this process") from None
        result = self.trials.run(task)
        if result.get("status") != "ok":
            raise _FailedElsewhere(result.get("error") or "the trial failed")
        return result["metrics"]

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
            message = (str(e) if isinstance(e, _FailedElsewhere) else f"{type(e).__name__}: {e}").splitlines()[0][:500]
            if self.recorder is not None:
                self.recorder.record(trial.trial_id, trial.hyperparameters, {}, "failed", message)
            raise kt.errors.FailedTrialError(message) from e
        metrics = tuner_utils.convert_to_metrics_dict(results, self.oracle.objective)
        metrics = {k: float(v) for k, v in metrics.items()}
        status = "over_budget" if metrics.get("over_budget") else "ok"
        if self.recorder is not None:
            self.recorder.record(trial.trial_id, trial.hyperparameters, metrics, status)
        return metrics


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
        return _seeded(tuner, seed)
    if algorithm == "evolution":
        oracle = RegularizedEvolution(objective=objective, max_trials=max_trials, population_size=population_size,
                                      sample_size=sample_size, seed=seed,
                                      identity_probability=identity_probability)
    elif algorithm == "random":
        oracle = kt.oracles.RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
    else:
        oracle = kt.oracles.BayesianOptimizationOracle(objective=objective, max_trials=max_trials, seed=seed)
    return _seeded(SearchTuner(oracle=oracle, hypermodel=hypermodel, **common), seed)


def _seeded(tuner, seed: int | None):
    """keras-tuner's Oracle takes ``seed=0`` for no seed (``seed or random.randint(1, 10000)``):
    seed 0 must repeat like any other. A resumed search then restores its saved seed (reload)."""
    if seed is not None:
        tuner.oracle.seed = tuner.oracle._seed_state = int(seed)
    return tuner

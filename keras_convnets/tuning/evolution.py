"""Regularized (aging) evolution as a keras-tuner Oracle (Real et al. 2018, "Regularized Evolution
for Image Classifier Architecture Search", arXiv:1802.01548, Algorithm 1).

The oracle only proposes hyperparameter values, so it runs in any keras-tuner Tuner (one that
trains Keras models, or one whose ``run_trial`` just returns a score), resumes from the project
directory (its state goes through ``get_state``/``set_state``), and lives on the chief in
keras-tuner's distributed mode, where workers ask it for trials over gRPC.

The algorithm (Sec. 2 of the paper):

1. the first ``population_size`` trials are random;
2. then each new trial is a *child*: ``sample_size`` members are drawn from the population, the
   best of them (by the objective) is the parent, and the child is the parent with exactly one
   mutation -- one hyperparameter resampled to a different value, or (with
   ``identity_probability``) no change at all;
3. when a finished child joins the population, the **oldest** member leaves (aging), not the
   worst: the regularization that gives the method its name (Sec. 3).

For the NASNet cell space (:mod:`keras_convnets.tuning.spaces`), every hyperparameter is one
input or one op of one block of one cell, so "one hyperparameter resampled" *is* the paper's
hidden-state mutation or op mutation (Sec. 2, Fig. 2); an input is only ever rewired to a state
that already exists, because each input's choices are the states before its block.
"""

from __future__ import annotations

import random
import time

import keras_tuner as kt
from keras_tuner.src.engine import trial as trial_module

__all__ = ["RegularizedEvolution", "mutate", "mutable_hyperparameters", "IDENTITY"]

IDENTITY = "identity"
RANDOM = "random"
# Hyperparameters keras-tuner itself manages (Hyperband's bookkeeping): never mutated.
_RESERVED_PREFIX = "tuner/"


def _is_mutable(hp) -> bool:
    if hp.name.startswith(_RESERVED_PREFIX) or isinstance(hp, kt.engine.hyperparameters.Fixed):
        return False
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return len(hp.values) > 1
    if isinstance(hp, kt.engine.hyperparameters.Boolean):
        return True
    return hp.max_value > hp.min_value  # Int / Float


def mutable_hyperparameters(space: kt.HyperParameters) -> list:
    """The active hyperparameters of ``space`` that can take more than one value."""
    return [hp for hp in space.space if space.is_active(hp) and _is_mutable(hp)]


def _resample(hp, old, rng: random.Random):
    """A value of ``hp`` different from ``old``, uniform over the other values where they are a
    finite set, else a fresh sample from the hyperparameter's own distribution."""
    if isinstance(hp, kt.engine.hyperparameters.Boolean):
        return not old
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return rng.choice([v for v in hp.values if v != old])
    for _ in range(64):
        new = hp.prob_to_value(rng.random())
        if new != old:
            return new
    raise RuntimeError(f"could not resample hyperparameter {hp.name!r} away from {old!r}")


def _fill_active(space: kt.HyperParameters, values: dict, rng: random.Random) -> dict:
    """Keep only the active hyperparameters' values and sample the newly active ones (a mutation
    of a conditional parent can activate or deactivate others). Parents come before their
    conditional children in ``space.space``, so one pass in order suffices."""
    out: dict = {}
    for hp in space.space:
        if all(condition.is_active(out) for condition in hp.conditions):
            out[hp.name] = values[hp.name] if hp.name in values else hp.prob_to_value(rng.random())
    return out


def mutate(space: kt.HyperParameters, values: dict, rng: random.Random,
           identity_probability: float = 0.0) -> tuple[dict, str]:
    """The child of ``values``: one active hyperparameter resampled to a different value, or the
    identity with ``identity_probability``. Returns (child values, what changed: the
    hyperparameter's name or ``"identity"``)."""
    current = space.copy()
    current.values = dict(values)
    candidates = mutable_hyperparameters(current)
    if not candidates or rng.random() < identity_probability:
        return dict(values), IDENTITY
    hp = rng.choice(candidates)
    child = dict(values)
    child[hp.name] = _resample(hp, values.get(hp.name, hp.default), rng)
    return _fill_active(space, child, rng), hp.name


class RegularizedEvolution(kt.Oracle):
    """Aging evolution (Real et al. 2018, Algorithm 1) as a ``keras_tuner.Oracle``.

    Args:
        objective: as for every keras-tuner oracle (a metric name, a ``keras_tuner.Objective``).
        max_trials: trials in the whole search (the paper's "cycles" C plus the initial P).
        population_size: P, the population (paper: 100).
        sample_size: S, members sampled for each tournament (paper: 25); 1 <= S <= P.
        seed: makes the search repeat: the random draws of trial ``i`` depend only on (seed, i),
            so a resumed search proposes what an uninterrupted one would.
        hyperparameters, allow_new_entries, tune_new_entries, max_retries_per_trial,
        max_consecutive_failed_trials: as for ``keras_tuner.Oracle``.
        identity_probability: chance that a child is an unchanged copy of its parent (the paper's
            identity mutation, which re-trains the parent; our default 0.05, a choice of ours).
        wait_seconds: when every random member is still training (distributed runs with more
            workers than P) no parent exists yet; the oracle answers IDLE after this pause and
            the worker asks again.
    """

    def __init__(
        self,
        objective=None,
        max_trials=100,
        population_size=100,
        sample_size=25,
        seed=None,
        hyperparameters=None,
        allow_new_entries=True,
        tune_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        identity_probability=0.05,
        wait_seconds=1.0,
    ):
        check_evolution_sizes(population_size, sample_size)
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        if not 0.0 <= float(identity_probability) < 1.0:
            raise ValueError(f"identity_probability must be in [0, 1), got {identity_probability!r}")
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.identity_probability = float(identity_probability)
        self.wait_seconds = float(wait_seconds)
        # Trial ids of the population, oldest first (the order they joined it).
        self.population: list[str] = []
        # trial id -> {"parent": id or None, "mutation": hp name | "identity" | "random"}
        self.lineage: dict[str, dict] = {}
        # (child that joined, member that left) pairs, in order: the aging record.
        self.removed: list[list[str]] = []

    # ------------------------------------------------------------------ proposing trials
    def _rng(self, trial_id: str) -> random.Random:
        # String seeds hash with SHA-512: the same draws in every process and every run.
        return random.Random(f"regularized-evolution:{self.seed}:{trial_id}")

    def _random_member(self, rng: random.Random) -> dict | None:
        """Fresh random values, avoiding ones already tried (as keras-tuner's random search)."""
        for _ in range(self._max_collisions + 1):
            values = _fill_active(self.hyperparameters, {}, rng)
            if not self._duplicate(values):
                return values
        return None

    def _parent(self, rng: random.Random) -> str | None:
        """Tournament selection: the best of ``sample_size`` members drawn without replacement."""
        members = [t for t in self.population if self.trials[t].score is not None]
        if not members:
            return None
        sample = rng.sample(members, min(self.sample_size, len(members)))
        better = max if self.objective.direction == "max" else min
        return better(sample, key=lambda t: self.trials[t].score)

    def populate_space(self, trial_id):
        rng = self._rng(trial_id)
        n_random = sum(1 for rec in self.lineage.values() if rec["parent"] is None)
        if n_random < self.population_size:
            values = self._random_member(rng)
            if values is None:  # the space is exhausted
                return {"status": trial_module.TrialStatus.STOPPED, "values": None}
            self.lineage[trial_id] = {"parent": None, "mutation": RANDOM}
            return {"status": trial_module.TrialStatus.RUNNING, "values": values}
        parent = self._parent(rng)
        if parent is None:
            # All of the initial population is still training elsewhere: wait for one to finish.
            time.sleep(self.wait_seconds)
            return {"status": trial_module.TrialStatus.IDLE, "values": None}
        values, changed = mutate(self.hyperparameters, self.trials[parent].hyperparameters.values, rng,
                                 self.identity_probability)
        self.lineage[trial_id] = {"parent": parent, "mutation": changed}
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    # ------------------------------------------------------------------ aging
    @kt.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        if ended.status == trial_module.TrialStatus.COMPLETED and trial.trial_id not in self.population:
            self.population.append(trial.trial_id)
            while len(self.population) > self.population_size:
                self.removed.append([trial.trial_id, self.population.pop(0)])
            self.save()

    # ------------------------------------------------------------------ resume
    def get_state(self):
        state = super().get_state()
        state.update(
            population_size=self.population_size,
            sample_size=self.sample_size,
            identity_probability=self.identity_probability,
            population=list(self.population),
            lineage=dict(self.lineage),
            removed=list(self.removed),
        )
        return state

    def set_state(self, state):
        super().set_state(state)
        self.population = list(state["population"])
        self.lineage = dict(state["lineage"])
        self.removed = [list(r) for r in state["removed"]]


def check_evolution_sizes(population_size, sample_size) -> None:
    """P >= 1 and 1 <= S <= P (the tournament samples S distinct members of the population)."""
    for name, value in (("population_size", population_size), ("sample_size", sample_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if sample_size > population_size:
        raise ValueError(
            f"sample_size ({sample_size}) must not exceed population_size ({population_size}): "
            "each tournament samples distinct members of the population"
        )

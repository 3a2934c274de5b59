"""Regularized evolution as a keras-tuner Oracle, in Tuners that train nothing (fast)."""

from __future__ import annotations

import random

import keras_tuner as kt
import numpy as np
import pytest

from keras_convnets.tuning import RegularizedEvolution, mutate, spaces

N_HPS, N_VALUES = 20, 4
TARGET = {f"x{i}": (3 * i + 1) % N_VALUES for i in range(N_HPS)}


def landscape_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    for name in TARGET:
        hp.Choice(name, list(range(N_VALUES)))
    return hp


def landscape(values: dict) -> float:
    """A synthetic objective: how many coordinates match a hidden target (OneMax over 4-ary
    choices), so a single mutation can improve a model by exactly one step."""
    return float(sum(values[k] == v for k, v in TARGET.items()))


class Landscape(kt.Tuner):
    """A Tuner that trains nothing: run_trial returns the landscape's score."""

    def run_trial(self, trial, *args, **kwargs):
        return {"score": landscape(trial.hyperparameters.values)}


class Interrupt(Landscape):
    """Dies (like a killed process) when it reaches trial ``stop_at``."""

    stop_at = None

    def run_trial(self, trial, *args, **kwargs):
        if trial.trial_id == self.stop_at:
            raise KeyboardInterrupt
        return super().run_trial(trial, *args, **kwargs)


def run(tmp_path, oracle, name="search", tuner_cls=Landscape, overwrite=True):
    tuner = tuner_cls(oracle=oracle, directory=tmp_path, project_name=name, overwrite=overwrite)
    tuner.search(verbose=0)
    return tuner


def evolution(max_trials, seed=0, population_size=10, sample_size=3, **kw):
    return RegularizedEvolution(objective=kt.Objective("score", "max"), max_trials=max_trials,
                                population_size=population_size, sample_size=sample_size, seed=seed,
                                hyperparameters=landscape_space(), **kw)


def history(oracle) -> list[dict]:
    return [oracle.trials[t].hyperparameters.values for t in oracle.start_order]


def test_aging_removes_the_oldest_not_the_worst(tmp_path):
    oracle = evolution(12, population_size=4, sample_size=2)
    run(tmp_path, oracle)
    ended = oracle.end_order
    assert len(ended) == 12
    assert oracle.population == ended[-4:], "the population is the 4 youngest members"
    # Each child that joined a full population pushed out the member that joined first.
    assert [left for _, left in oracle.removed] == ended[:8]
    assert [child for child, _ in oracle.removed] == ended[4:]
    scores = {t: oracle.trials[t].score for t in ended}
    # Aging, not culling: somewhere a member better than a survivor was removed.
    assert any(scores[left] > min(scores[t] for t in oracle.population) for _, left in oracle.removed) or \
        len(set(scores.values())) == 1


def test_initial_population_is_random_then_children_have_one_mutation(tmp_path):
    oracle = evolution(30, population_size=6, sample_size=3, identity_probability=0.2)
    run(tmp_path, oracle)
    kinds = [oracle.lineage[t] for t in oracle.start_order]
    assert all(k["parent"] is None and k["mutation"] == "random" for k in kinds[:6])
    assert all(k["parent"] is not None for k in kinds[6:])
    identities = 0
    for t in oracle.start_order[6:]:
        rec = oracle.lineage[t]
        child = oracle.trials[t].hyperparameters.values
        parent = oracle.trials[rec["parent"]].hyperparameters.values
        changed = [k for k in child if child[k] != parent[k]]
        if rec["mutation"] == "identity":
            identities += 1
            assert changed == []
        else:
            assert changed == [rec["mutation"]], "exactly one hyperparameter resampled, to a new value"
    assert 0 < identities < 24


def test_parent_is_the_best_of_its_sample(tmp_path):
    # With S = P the tournament sees the whole population: the parent is its best member.
    oracle = evolution(16, population_size=5, sample_size=5, identity_probability=0.0)
    order = []

    class Spy(Landscape):
        def run_trial(self, trial, *args, **kwargs):
            order.append((trial.trial_id, list(self.oracle.population)))
            return super().run_trial(trial, *args, **kwargs)

    run(tmp_path, oracle, tuner_cls=Spy)
    for trial_id, population in order[5:]:
        parent = oracle.lineage[trial_id]["parent"]
        best = max(oracle.trials[t].score for t in population)
        assert oracle.trials[parent].score == best


def test_seeded_runs_repeat(tmp_path):
    a = history(run(tmp_path, evolution(20, seed=7), "a").oracle)
    b = history(run(tmp_path, evolution(20, seed=7), "b").oracle)
    c = history(run(tmp_path, evolution(20, seed=8), "c").oracle)
    assert a == b
    assert a != c


def test_evolution_beats_random_search(tmp_path):
    """Mean best-after-N over 5 seeds on the synthetic landscape."""
    n = 50
    best = {"evolution": [], "random": []}
    for seed in range(5):
        evo = run(tmp_path, evolution(n, seed=seed, population_size=10, sample_size=3), f"evo{seed}").oracle
        rnd = run(tmp_path, kt.oracles.RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=n,
                                                          seed=seed, hyperparameters=landscape_space()),
                  f"rnd{seed}").oracle
        best["evolution"].append(evo.get_best_trials()[0].score)
        best["random"].append(rnd.get_best_trials()[0].score)
    print({k: (np.mean(v), v) for k, v in best.items()})
    assert np.mean(best["evolution"]) > np.mean(best["random"]) + 1.0


def test_resume_continues_where_it_stopped(tmp_path):
    """Killed in trial 9 of 16, then resumed (a new tuner on the same project): the trial in
    flight is run again, nothing twice, and the search is the uninterrupted one."""
    straight = history(run(tmp_path, evolution(16, seed=3, population_size=5), "straight").oracle)

    Interrupt.stop_at = "09"
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, evolution(16, seed=3, population_size=5), "resumed", tuner_cls=Interrupt)
    Interrupt.stop_at = None
    tuner = run(tmp_path, evolution(16, seed=3, population_size=5), "resumed", tuner_cls=Interrupt, overwrite=False)
    oracle = tuner.oracle
    assert sorted(oracle.end_order) == [f"{i:02d}" for i in range(16)], "every trial ended exactly once"
    assert all(t.status == "COMPLETED" for t in oracle.trials.values())
    assert history(oracle) == straight
    # The evolution state itself came back: the population is the 5 youngest.
    assert oracle.population == oracle.end_order[-5:]


def test_space_declared_inside_run_trial():
    """No space up front (the Tuner declares it while running): still a valid evolution."""

    class Inline(kt.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            x = hp.Int("x", 0, 20)
            y = hp.Choice("y", ["a", "b", "c"])
            return -abs(x - 13) + (y == "b")

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        oracle = RegularizedEvolution(objective=kt.Objective("score", "max"), max_trials=15, population_size=4,
                                      sample_size=2, seed=1)
        tuner = Inline(oracle=oracle, directory=d, project_name="inline")
        tuner.search(verbose=0)
        assert len(oracle.end_order) == 15
        assert all(oracle.trials[t].status == "COMPLETED" for t in oracle.end_order)


@pytest.mark.parametrize("population,sample", [(3, 4), (0, 1), (2, 0)])
def test_bad_sizes(population, sample):
    with pytest.raises(ValueError, match="sample_size|population_size"):
        RegularizedEvolution(objective=kt.Objective("score", "max"), max_trials=5, population_size=population, sample_size=sample)


def test_genotype_mutations_are_the_papers():
    """On the NASNet space a mutation rewires one input to an earlier state (hidden-state
    mutation) or replaces one op (op mutation) of one block of one cell."""
    ops = ["id", "sep3", "sep5", "avg3", "max3"]
    hp = kt.HyperParameters()
    spaces.declare_genotype(hp, ops)
    assert len(hp.space) == 40
    rng = random.Random(0)
    parent = {p.name: p.random_sample(rng.random()) for p in hp.space}
    kinds = set()
    for _ in range(200):
        child, changed = mutate(hp, parent, rng, identity_probability=0.0)
        diff = [k for k in child if child[k] != parent[k]]
        assert diff == [changed]
        cell, block, what = changed.split("/")
        assert cell in spaces.CELLS and block in spaces.BLOCKS
        if what.startswith("input"):
            kinds.add("hidden_state")
            assert child[changed] in spaces.block_inputs(block), "inputs only reach earlier states"
        else:
            kinds.add("op")
            assert child[changed] in ops
    assert kinds == {"hidden_state", "op"}
    cells = spaces.cells_from_values(parent)
    assert spaces.values_from_cells(cells) == parent
    for cell in spaces.CELLS:
        concat = spaces.cell_concat(cells[cell])
        assert "n6" in concat and concat == [b for b in spaces.BLOCKS if b in concat]

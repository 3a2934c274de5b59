"""The search spaces build valid models; budget and MnasNet reward; the Tuner's trial records.

Uses the tiny test-only family ``toy_net`` (tests/tuning_toy.py), so these tests do not depend on
which real families are registered, and the nasnet space through keras_convnets.models.nas.
"""

from __future__ import annotations

import math
import random

import keras
import keras_tuner as kt
import pytest

import tuning_toy
from helpers import VariablesCreated
from keras_convnets import tuning
from keras_convnets.tuning import spaces


@pytest.fixture
def toy():
    name = tuning_toy.register()
    yield name
    tuning_toy.unregister()


def hp_with(hypermodel, **values):
    """HyperParameters of ``hypermodel``'s space (declared by one build) with ``values`` set."""
    hp = kt.HyperParameters()
    hypermodel.build(hp)
    hp.values.update(values)
    return hp


def test_family_space_is_the_registry_with_knobs_and_training(toy):
    hm = tuning.FamilyHyperModel([toy], classes=10, resolutions=[16, 24], widths=(0.5, 1.0, 0.25))
    hp = hp_with(hm, width_multiplier=0.5, depth_multiplier=0.5, resolution=16, dropout=0.2)
    names = {p.name for p in hp.space}
    assert names == {"model", "width_multiplier", "depth_multiplier", "resolution", "optimizer", "learning_rate",
                     "dropout"}
    model = hm.build(hp)
    assert model.input_shape == (None, 16, 16, 3) and model.output_shape == (None, 10)
    assert model.get_layer("top_dropout").rate == 0.2
    # width 0.5 -> 8 filters rounds to 8, depth 0.5 -> stage 2 has one unit
    assert [l.name for l in model.layers if l.name.endswith("_conv")] == ["stage1_unit1_conv", "stage2_unit1_conv"]
    assert hm.describe(hp)["resolution"] == 16 and hm.describe(hp)["family"] == "toy"
    # A family name stands for the family's base model.
    assert tuning.FamilyHyperModel(["toy"], classes=3).models == [toy]
    with pytest.raises(ValueError, match="Unknown model"):
        tuning.FamilyHyperModel(["no_such_net"], classes=3)


def test_compound_space_solves_gamma(toy):
    hm = tuning.CompoundHyperModel(toy, classes=10, resolution=16, alphas=(1.0, 1.4, 0.1), betas=(1.0, 1.1, 0.1))
    hp = hp_with(hm, alpha=1.2, beta=1.1)
    row = hm.describe(hp)
    assert row["gamma"] == pytest.approx(math.sqrt(2.0 / (1.2 * 1.1 ** 2)), abs=1e-6)
    assert row["alpha"] * row["beta"] ** 2 * row["gamma"] ** 2 == pytest.approx(2.0)
    model = hm.build(hp)
    assert model.input_shape[1] == row["resolution"] == 16  # 16 * gamma(1.16) rounds to 16
    # gamma would fall below 1 somewhere in these ranges: rejected up front (EfficientNet Eq. 3).
    with pytest.raises(ValueError, match="gamma would fall below 1"):
        tuning.CompoundHyperModel(toy, classes=10, alphas=(1.0, 1.8, 0.1), betas=(1.0, 1.2, 0.1))


def test_nasnet_space_builds_every_op_set():
    nas = pytest.importorskip("keras_convnets.models.nas")
    for op_set in ("nasnet", "pnas", "amoeba"):
        hm = tuning.NasnetHyperModel(classes=10, op_set=op_set, num_cells=1, filters=8, resolution=32)
        hp = kt.HyperParameters()
        spaces.declare_genotype(hp, hm.ops, hm.cells)
        assert len(hp.space) == (20 if op_set == "pnas" else 40), "PNAS searches one shared cell"
        rng = random.Random(op_set)
        hp.values.update({p.name: p.prob_to_value(rng.random()) for p in hp.space})
        model = hm.build(hp)  # the one cell builder validates the genotype and wires it
        assert model.output_shape == (None, 10) and model.input_shape == (None, 32, 32, 3)
        row = hm.describe(hp)
        genotype = nas.Genotype.from_string(row["genotype"])
        assert str(genotype) == row["genotype"] and genotype.shared_cell == (op_set == "pnas")
        assert genotype.op_set == op_set and set(genotype.ops()) <= set(nas.OP_SETS[op_set])


def test_mnas_score_is_the_papers_reward():
    assert tuning.mnas_score(0.8, 1e6, 1e6) == pytest.approx(0.8)
    assert tuning.mnas_score(0.8, 2e6, 1e6) == pytest.approx(0.8 * 2 ** -0.07)
    logs = {"val_accuracy": 0.5}
    tuning.MnasScore(macs=4e6, target=1e6).on_epoch_end(0, logs)
    assert logs["mnas_score"] == pytest.approx(0.5 * 4 ** -0.07)


class Rows:
    def __init__(self):
        self.rows = {}

    def lookup(self, trial_id):
        return None

    def record(self, trial_id, hp, metrics, status, message=""):
        self.rows[trial_id] = (dict(hp.values), metrics, status, message)


def test_budget_and_costs_in_every_trial(toy, tmp_path):
    """Over the MACs budget: not trained, worst score, params and MACs still recorded (so the
    Pareto front is real); under it: trained, evaluated on the test split, saved for export."""
    data = tuning.digits_data(train_examples=64, seed=0)
    hm = tuning.FamilyHyperModel([toy], classes=10, resolutions=[16], widths=(0.5, 1.0, 0.5),
                                 depths=(0.5, 1.0, 0.5), tune_training=False, run_eagerly=True)
    budget = 30_000  # width 0.5 at 16 px fits, width 1.0 does not
    rows = Rows()
    tuner = tuning.make_tuner("random", hm, max_trials=4, seed=3, directory=tmp_path, recorder=rows,
                              max_macs=budget, models_dir=tmp_path / "trials")
    tuner.search(data, epochs=1, verbose=0)
    assert len(rows.rows) == 4
    statuses = set()
    for trial_id, (values, metrics, status, _) in rows.rows.items():
        statuses.add(status)
        assert metrics["params"] > 0 and metrics["macs"] > 0
        trial = tuner.oracle.get_trial(trial_id)
        assert trial.metrics.get_last_value("macs") == metrics["macs"], "costs reach the oracle too"
        if metrics["macs"] > budget:
            assert status == "over_budget" and metrics["val_accuracy"] == 0.0 and "train_seconds" not in metrics
            assert not (tmp_path / "trials" / f"{trial_id}.keras").exists()
        else:
            assert status == "ok" and 0 <= metrics["test_accuracy"] <= 1 and metrics["train_seconds"] > 0
            reloaded = keras.saving.load_model(tmp_path / "trials" / f"{trial_id}.keras", safe_mode=True)
            assert reloaded.count_params() == metrics["params"]
    assert statuses == {"ok", "over_budget"}


def test_a_trials_fit_creates_no_variables(toy):
    """The hypermodel builds the optimizer's and metrics' state before fit, so TensorFlow traces
    the first training step once (training.build_training_state)."""
    hm = tuning.FamilyHyperModel([toy], classes=10, resolutions=[16], widths=(0.5, 0.5, 0.5), tune_training=False)
    hp = kt.HyperParameters()
    model = hm.build(hp)
    counter = VariablesCreated()
    hm.fit(hp, model, tuning.digits_data(train_examples=32), epochs=1, verbose=0, callbacks=[counter])
    assert counter.names == []


def test_random_genotypes_roundtrip_through_hyperparameters():
    hp = kt.HyperParameters()
    spaces.declare_genotype(hp, ["id", "sep3", "max3"])
    rng = random.Random(1)
    values = {p.name: p.prob_to_value(rng.random()) for p in hp.space}
    text = spaces.genotype_text(values)
    assert text.startswith("normal: ") and " ; reduction: " in text
    for block in spaces.BLOCKS:
        assert set(spaces.block_inputs(block)) == set(spaces.STATES[: spaces.STATES.index(block)])



def test_hypermodel_and_evolution_in_a_plain_keras_tuner_tuner(toy, tmp_path):
    """No CLI, no cost mixin: keras-tuner's own Tuner drives the oracle and the hypermodel."""
    hm = tuning.FamilyHyperModel([toy], classes=10, resolutions=[16], widths=(0.5, 1.0, 0.5), tune_training=False,
                                 run_eagerly=True)
    oracle = tuning.RegularizedEvolution(objective=kt.Objective("val_accuracy", "max"), max_trials=2,
                                         population_size=1, sample_size=1, seed=0)
    tuner = kt.Tuner(oracle=oracle, hypermodel=hm, directory=tmp_path, project_name="plain")
    tuner.search(tuning.digits_data(train_examples=64), epochs=1, verbose=0)
    assert [t.status for t in oracle.trials.values()] == ["COMPLETED", "COMPLETED"]
    assert oracle.lineage["1"]["parent"] == "0"
    assert tuner.get_best_models(1)[0].output_shape == (None, 10)


def test_a_recorded_trial_is_not_run_again(toy, tmp_path):
    """A process killed after a trial's row was written but before the oracle heard of it: on
    resume keras-tuner re-offers the trial; its recorded metrics are returned, nothing retrains."""

    class NoFit(tuning.FamilyHyperModel):
        def fit(self, *args, **kwargs):
            raise AssertionError("a recorded trial must not be trained again")

    class Recorded(Rows):
        def lookup(self, trial_id):
            return {"val_accuracy": 0.5, "params": 10.0, "macs": 20.0}

    rows = Recorded()
    tuner = tuning.make_tuner("random", NoFit([toy], classes=10, resolutions=[16]), max_trials=1, seed=0,
                              directory=tmp_path, recorder=rows)
    tuner.search(tuning.digits_data(train_examples=32), epochs=1, verbose=0)
    trial = tuner.oracle.get_trial("0")
    assert trial.status == "COMPLETED" and trial.score == 0.5 and rows.rows == {}


def test_trials_train_under_a_distribution_strategy(toy, tmp_path):
    """--strategy mirrored: keras-tuner builds and fits each trial in the strategy's scope (one
    CPU replica here; every local GPU on a GPU machine)."""
    tf = pytest.importorskip("tensorflow")
    hm = tuning.FamilyHyperModel([toy], classes=10, resolutions=[16], widths=(0.5, 0.5, 0.5), tune_training=False)
    tuner = tuning.make_tuner("random", hm, max_trials=1, seed=0, directory=tmp_path,
                              distribution_strategy=tf.distribute.MirroredStrategy())
    tuner.search(tuning.digits_data(train_examples=32), epochs=1, verbose=0)
    trial = tuner.oracle.get_trial("0")
    assert trial.status == "COMPLETED" and trial.metrics.get_last_value("macs") > 0


@pytest.mark.parametrize("algorithm", tuning.ALGORITHMS)
def test_seed_zero_repeats_like_any_seed(algorithm, toy, tmp_path):
    """keras-tuner's Oracle reads seed=0 as "no seed" (a random one each run); make_tuner's seed 0
    draws the same first trials in every run, whatever Python's random state."""
    import random

    drawn = []
    for run, noise in enumerate((1, 2)):
        random.seed(noise)  # a different global random state each run
        hm = tuning.FamilyHyperModel([toy], classes=10, resolutions=[16, 24], widths=(0.25, 1.0, 0.25),
                                     depths=(0.5, 1.0, 0.5))
        tuner = tuning.make_tuner(algorithm, hm, max_trials=4, seed=0, directory=tmp_path / str(run),
                                  population_size=2, sample_size=1, max_epochs=3)
        assert tuner.oracle.seed == 0
        drawn.append([tuner.oracle.create_trial(f"tuner{i}").hyperparameters.values for i in range(3)])
    assert drawn[0] == drawn[1]

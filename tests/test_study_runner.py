"""runner.train_trial on tiny models: metrics, a NaN loss recorded as a failure, float32 outputs
under mixed precision, XLA; the results store's atomic rows."""

from __future__ import annotations

import math

import keras
import pytest

from keras_convnets import data
from keras_convnets.study import runner
from keras_convnets.study.results import ResultsStore


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits", train_examples=128, val_examples=64, test_examples=64, backend="tf")


def tiny(side=16, scale=None, dtype=None):
    def build():
        inp = keras.Input((side, side, 3))
        x = keras.layers.Conv2D(8, 3, strides=2, name="conv")(inp)
        if scale is not None:
            x = keras.layers.Rescaling(scale, name="poison")(x)
        x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
        return keras.Model(inp, out, name="tiny")
    return build


def test_train_trial_reports_metrics_and_saves(digits, tmp_path):
    recipe = runner.Recipe(epochs=2, batch_size=32, learning_rate=0.01, verbose=0, bn_momentum=0.5)
    m = runner.train_trial(tiny(), digits, recipe, save_path=tmp_path / "t.keras")
    assert m["status"] == "ok", m
    assert m["epochs_run"] == 2 and m["params"] > 0 and m["macs"] == 7 * 7 * 8 * 27 + 8 * 10
    for k in ("val_accuracy", "test_accuracy", "train_seconds", "images_per_second", "train_images_per_second"):
        assert math.isfinite(m[k]) and m[k] >= 0, k
    reloaded = keras.saving.load_model(tmp_path / "t.keras", safe_mode=True)
    assert reloaded.get_layer("bn").momentum == 0.5


def test_nan_loss_is_a_failed_trial(digits):
    recipe = runner.Recipe(epochs=2, batch_size=32, verbose=0)
    m = runner.train_trial(tiny(scale=float("nan")), digits, recipe)
    assert m["status"] == "failed" and "loss became nan at epoch 1, batch 1" in m["error"]


def test_build_errors_are_failed_trials(digits):
    def broken():
        raise RuntimeError("out of memory")

    m = runner.train_trial(broken, digits, runner.Recipe(verbose=0))
    assert m["status"] == "failed" and m["error"] == "RuntimeError: out of memory"


def test_mixed_precision_output_is_float32(digits):
    recipe = runner.Recipe(epochs=1, batch_size=32, verbose=0, precision="mixed_bfloat16")
    seen = {}

    def build():
        model = tiny()()
        seen["policy"] = keras.mixed_precision.global_policy().name
        return model

    m = runner.train_trial(build, digits, recipe)
    assert m["status"] == "ok", m
    assert seen["policy"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the trial
    # A registered model built for mixed precision emits float32 probabilities.
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = runner.float32_output(tiny()())
        assert str(model.outputs[0].dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_jit_compile(digits):
    m = runner.train_trial(tiny(), digits, runner.Recipe(epochs=1, batch_size=64, verbose=0, jit=True))
    assert m["status"] == "ok" and m["jit"] is True and m["images_per_second"] > 0


def test_results_store_rows_are_atomic_and_unique(tmp_path):
    store = ResultsStore(tmp_path)
    store.append({"trial_id": "a", "method": "base", "val_accuracy": 0.5, "extra": 1})
    store.append({"trial_id": "b", "method": "grid", "status": "ok"})
    with pytest.raises(ValueError, match="already in"):
        store.append({"trial_id": "a"})
    rows = store.rows()
    assert [r["trial_id"] for r in rows] == ["a", "b"] and rows[0]["extra"] == "1"
    assert not list(tmp_path.glob(".*tmp"))


def test_environment_names_versions_and_cpu():
    env = runner.environment()
    assert env["versions"]["keras"] and env["cpu"] and env["keras_backend"] == keras.backend.backend()

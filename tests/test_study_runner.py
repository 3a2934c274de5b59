"""runner.train_trial on tiny models: metrics, a NaN loss recorded as a failure, float32 outputs
under mixed precision, XLA; the results store's atomic rows."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from helpers import VariablesCreated
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
    # validation after each epoch, inside fit: its passes are part of fit's time, not of training's
    curve = [float(v) for v in m["val_accuracy_by_epoch"].split()]
    assert len(curve) == 2 and curve[-1] == pytest.approx(m["val_accuracy"], abs=1e-4)
    assert 0 < m["val_seconds"] < m["train_seconds"]
    images = 2 * (128 // 32) * 32
    assert m["train_images_per_second"] == pytest.approx(images / (m["train_seconds"] - m["val_seconds"]), rel=0.01)
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


def test_fit_creates_no_variables_so_the_step_is_traced_once(digits):
    """Keras' TF trainer creates the optimizer's and metrics' variables inside the first traced
    step, and tf.function then traces that step twice (training.build_training_state). A trial
    builds them before fit; the control shows Keras still does the other thing."""
    from keras_convnets.training import build_training_state

    recipe = runner.Recipe(epochs=1, batch_size=32, verbose=0)
    counter = VariablesCreated()
    m = runner.train_trial(tiny(), digits, recipe, callbacks=(counter,))
    assert m["status"] == "ok", m
    assert counter.names == []

    model = tiny()()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train = digits.batches("train", 16, 32, channels=3, training=True, seed=0)
    control = VariablesCreated()
    model.fit(train, epochs=1, verbose=0, callbacks=[control])
    assert len(control.names) > len(model.trainable_variables), control.names[:5]

    for outputs in (1, 3):  # one output, and GoogLeNet's three (main + two auxiliary heads)
        inp = keras.Input((8, 8, 3))
        feat = keras.layers.GlobalAveragePooling2D()(inp)
        outs = [keras.layers.Dense(4, activation="softmax", name=f"out{i}")(feat) for i in range(outputs)]
        model = keras.Model(inp, outs if outputs > 1 else outs[0])
        model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy"] * outputs,
                      metrics=[["accuracy"]] * outputs if outputs > 1 else ["accuracy"])
        build_training_state(model)
        assert model.optimizer.built and model._compile_metrics.built and model._compile_loss.built
        counter = VariablesCreated()
        y = np.zeros((8,), "int32")
        model.fit(np.zeros((8, 8, 8, 3), "float32"), [y] * outputs if outputs > 1 else y, epochs=1, verbose=0,
                  callbacks=[counter])
        assert counter.names == [], (outputs, counter.names[:5])

"""Export: a TF SavedModel (serving signature) and a .keras file, each reloaded and checked
against the model's outputs before success; no overwrite without force; the CLI on a registered
model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_convnets.export import ExportError, export_model
from keras_convnets.study.__main__ import main


def small_model():
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="predictions")(x), name="small")


def test_savedmodel_round_trip(tmp_path):
    import tensorflow as tf

    model = small_model()
    path = tmp_path / "sm"
    info = export_model(model, path, "savedmodel")
    assert info["max_abs_diff"] < 1e-5 and info["output_shape"] == [2, 3]
    reloaded = tf.saved_model.load(str(path))
    x = np.random.default_rng(1).normal(size=(3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(reloaded.serve(x).numpy(), model(x, training=False), atol=1e-5)
    assert "serving_default" in reloaded.signatures
    with pytest.raises(ExportError, match="exists; pass --force"):
        export_model(model, path, "savedmodel")
    export_model(model, path, "savedmodel", force=True)
    assert not list(tmp_path.glob(".*export-tmp*"))


def test_keras_round_trip(tmp_path):
    model = small_model()
    info = export_model(model, tmp_path / "m.keras", "keras")
    assert info["max_abs_diff"] == 0.0
    with pytest.raises(ExportError, match="exists"):
        export_model(model, tmp_path / "m.keras", "keras")
    with pytest.raises(ExportError, match="ending in .keras"):
        export_model(model, tmp_path / "m.h5", "keras")
    with pytest.raises(ExportError, match="format must be"):
        export_model(model, tmp_path / "x", "onnx")


def test_cli_exports_a_registered_model(tmp_path, capsys):
    # LeNet-5 keeps this fast; tracing EfficientNet-B0 for a SavedModel takes minutes on a busy
    # CPU (the trained-trial export of the CLI end-to-end test covers EfficientNet as .keras).
    out = tmp_path / "lenet"
    argv = ["export", "lenet5", "--out", str(out)]
    assert main(argv) == 0
    msg = capsys.readouterr().out
    assert "reloaded and checked" in msg and (out / "saved_model.pb").exists()
    assert main(argv) == 2
    assert "pass --force" in capsys.readouterr().err

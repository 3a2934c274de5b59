import numpy as np
import keras
import pytest

from keras_convnets.layers import DropPath, GroupConv2D


def test_group_conv_equals_grouped_conv2d():
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 16)).astype("float32")
    ref = keras.layers.Conv2D(8, 3, strides=2, padding="same", groups=4)
    ours = GroupConv2D(8, 3, strides=2, padding="same", groups=4)
    ref.build(x.shape)
    ours.build(x.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in ref.weights]
    ours.set_weights(ref.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(ref(x)), atol=1e-5)


def test_group_conv_reloads(tmp_path):
    inp = keras.Input((8, 8, 8))
    model = keras.Model(inp, GroupConv2D(8, 3, groups=2, padding="same")(inp))
    model.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.ones((1, 8, 8, 8), "float32")
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(back(x)))


def test_drop_path_is_identity_at_inference_and_per_sample_in_training():
    layer = DropPath(0.5, seed=1)
    x = np.ones((256, 2, 2, 3), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    y = np.asarray(layer(x, training=True))
    per_sample = y.reshape(256, -1)
    # each sample is either dropped whole or kept whole and scaled by 1/keep
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))
    assert 0.3 < (per_sample[:, 0] > 0).mean() < 0.7


def test_drop_path_rejects_bad_rate():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropPath(1.0)

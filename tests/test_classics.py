"""LeNet-5, AlexNet and GoogLeNet: the properties the registry test does not see."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers import max_abs_diff, random_images, registry
from keras_convnets.layers import GroupConv2D, LocalResponseNormalization
from keras_convnets.models import alexnet as alexnet_mod
from keras_convnets.models import googlenet as googlenet_mod
from keras_convnets.models.lenet import C3_TABLE, EuclideanRBF, lenet5, rbf_codes


# ----------------------------------------------------------------------------- LeNet-5
def test_lenet5_has_exactly_60000_trainable_parameters_and_a_fixed_rbf():
    model = lenet5()
    assert model.input_shape == (None, 32, 32, 1)
    assert registry.param_count(model, "trainable") == 60_000
    per_layer = {n: sum(int(np.prod(w.shape)) for w in model.get_layer(n).trainable_weights)
                 for n in ("C1", "S2", "C3", "S4", "C5", "F6")}
    assert per_layer == {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164}
    rbf = model.get_layer("output_rbf")
    assert isinstance(rbf, EuclideanRBF)
    assert rbf.trainable_weights == [] and len(rbf.non_trainable_weights) == 1
    codes = np.asarray(rbf.non_trainable_weights[0])
    assert codes.shape == (84, 10) and set(np.unique(codes)) == {-1.0, 1.0}


def test_lenet5_c3_follows_table_1():
    c3 = lenet5().get_layer("C3")
    assert c3.table == C3_TABLE and c3.connections == 60  # 60 connections (Section II.B)
    assert c3.kernel.shape == (5, 5, 60)
    connected = np.abs(np.asarray(c3.dense_kernel())).sum(axis=(0, 1)) > 0  # (S2 map, C3 map)
    expected = np.zeros((6, 16), bool)
    for j, column in enumerate(C3_TABLE):
        expected[list(column), j] = True
    np.testing.assert_array_equal(connected, expected)
    # The first columns of Table I, read off the paper.
    assert [np.flatnonzero(expected[:, j]).tolist() for j in (0, 4, 9, 12, 15)] == [
        [0, 1, 2], [0, 4, 5], [0, 3, 4, 5], [0, 1, 3, 4], [0, 1, 2, 3, 4, 5]]


def test_lenet5_c3_equals_a_masked_dense_convolution():
    c3 = lenet5().get_layer("C3")
    x = np.random.default_rng(0).normal(size=(2, 14, 14, 6)).astype("float32")
    dense = keras.layers.Conv2D(16, 5)
    dense.build(x.shape)
    dense.set_weights([np.asarray(c3.dense_kernel()), np.asarray(c3.bias)])
    np.testing.assert_allclose(np.asarray(c3(x)), np.asarray(dense(x)), atol=1e-5)


def test_lenet5_output_is_softmax_of_negative_rbf_distances():
    model = lenet5(input_shape=(28, 28, 1))
    assert model.get_layer("pad_to_32").output.shape == (None, 32, 32, 1)
    x = random_images((28, 28, 1), n=3)
    distances = keras.Model(model.input, model.get_layer("output_rbf").output)(x)
    f6 = np.asarray(keras.Model(model.input, model.get_layer("F6_squash").output)(x))
    codes = rbf_codes(10)
    np.testing.assert_allclose(np.asarray(distances), ((f6[:, :, None] - codes[None]) ** 2).sum(1), rtol=1e-5)
    expected = np.asarray(keras.ops.softmax(-np.asarray(distances)))
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-6)
    logits = lenet5(input_shape=(28, 28, 1), classifier_activation=None)
    logits.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(logits(x)), -np.asarray(distances), rtol=1e-5)


def test_rbf_codes_are_deterministic_distinct_and_work_for_any_class_count():
    np.testing.assert_array_equal(rbf_codes(10), rbf_codes(10))
    np.testing.assert_array_equal(rbf_codes(26)[:, :10], rbf_codes(10))
    codes = rbf_codes(26)
    assert len({tuple(c) for c in codes.T}) == 26
    assert lenet5(classes=3).output_shape == (None, 3)


def test_lenet5_trains_on_digits_padded_from_28_to_32():
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 8x8 digits upsampled x3 to 24x24 and centred in a 28x28 field, like MNIST's 20x20 in 28x28.
    images = np.kron(digits.images[:300] / 16.0, np.ones((3, 3)))
    x = np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., None].astype("float32")
    y = digits.target[:300]
    keras.utils.set_random_seed(1)
    model = lenet5(input_shape=(28, 28, 1), classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8
    # the codes stay fixed while everything else trains
    np.testing.assert_array_equal(np.asarray(model.get_layer("output_rbf").weights[0]), rbf_codes(10))


# ----------------------------------------------------------------------------- AlexNet
def _as_grouped_conv2d(layer):
    if isinstance(layer, GroupConv2D):
        return keras.layers.Conv2D.from_config(layer.get_config())
    return layer.__class__.from_config(layer.get_config())


def test_alexnet_two_tower_group_conv_equals_conv2d_groups():
    model = alexnet_mod.alexnet(input_shape=(67, 67, 3), classes=7)
    grouped = [l.name for l in model.layers if isinstance(l, GroupConv2D)]
    assert grouped == ["conv2", "conv4", "conv5"]
    assert [model.get_layer(n).kernel.shape for n in grouped] == [(5, 5, 48, 256), (3, 3, 192, 384), (3, 3, 192, 256)]
    reference = keras.models.clone_model(model, clone_function=_as_grouped_conv2d)
    assert not any(isinstance(l, GroupConv2D) for l in reference.layers)
    assert reference.get_layer("conv4").groups == 2
    reference.set_weights(model.get_weights())
    x = random_images((67, 67, 3), n=2)
    assert max_abs_diff(model(x, training=False), reference(x, training=False)) < 1e-5


def test_alexnet_lrn_is_per_tower_with_the_papers_constants():
    import tensorflow as tf

    model = alexnet_mod.alexnet(input_shape=(67, 67, 3))
    norm = model.get_layer("norm1")
    assert (norm.size, norm.k, norm.alpha, norm.beta, norm.groups) == (5, 2.0, 1e-4, 0.75, 2)
    x = np.random.default_rng(0).normal(scale=30, size=(1, 3, 3, 96)).astype("float32")
    towers = [tf.nn.local_response_normalization(t, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
              for t in (x[..., :48], x[..., 48:])]
    np.testing.assert_allclose(np.asarray(norm(x)), np.concatenate(towers, -1), rtol=1e-5)
    single = LocalResponseNormalization(5, k=2.0, alpha=1e-4, beta=0.75)
    expected = tf.nn.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    np.testing.assert_allclose(np.asarray(single(x)), expected, rtol=1e-5)


def _conv_macs(side_out, kernel, cin, cout, groups=1):
    return side_out * side_out * kernel * kernel * (cin // groups) * cout


def test_alexnet_macs_reference_is_the_papers_layer_table_recounted():
    # Fig. 2 at 227: 55, 27 (after pool1), 13 (after pool2), 6 (after pool5).
    convs = (_conv_macs(55, 11, 3, 96) + _conv_macs(27, 5, 96, 256, 2) + _conv_macs(13, 3, 256, 384)
             + _conv_macs(13, 3, 384, 384, 2) + _conv_macs(13, 3, 384, 256, 2))
    fcs = 6 * 6 * 256 * 4096 + 4096 * 4096 + 4096 * 1000
    assert registry.get("alexnet").ref_macs == convs + fcs


def test_alexnet_one_tower_adaptive_pool_keeps_the_classifier_size():
    small = alexnet_mod.alexnet_one_tower(input_shape=(63, 63, 3), classes=5)
    assert small.get_layer("pool5").output.shape == (None, 1, 1, 256)
    assert small.get_layer("flatten").output.shape == (None, 9216)
    assert not any(isinstance(l, (GroupConv2D, LocalResponseNormalization)) for l in small.layers)


# ----------------------------------------------------------------------------- GoogLeNet
def test_googlenet_aux_heads_only_with_aux_logits_and_inference_model_drops_them():
    plain = googlenet_mod.googlenet()
    assert len(plain.outputs) == 1 and plain.count_params() == 6_998_552
    assert not any(l.name.startswith("aux") for l in plain.layers)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in plain.layers)
    with_aux = googlenet_mod.googlenet(aux_logits=True)
    assert len(with_aux.outputs) == 3 and with_aux.count_params() == 13_378_280
    assert with_aux.get_layer("aux1_pool").input is with_aux.get_layer("inception_4a_output").output
    assert with_aux.get_layer("aux2_pool").input is with_aux.get_layer("inception_4d_output").output
    assert with_aux.get_layer("aux1_pool").output.shape == (None, 4, 4, 512)
    inference = googlenet_mod.inference_model(with_aux)
    assert len(inference.outputs) == 1 and inference.count_params() == 6_998_552
    # shares the weights: outputs equal the aux model's main output
    x = random_images((224, 224, 3), n=1)
    np.testing.assert_array_equal(np.asarray(inference(x)), np.asarray(with_aux(x)[0]))


def test_googlenet_trains_with_aux_losses_weighted_0_3(tmp_path):
    model = googlenet_mod.googlenet(input_shape=(79, 79, 3), classes=4, aux_logits=True)
    # eager, as the registry's train step: tracing GoogLeNet's backward graph costs more than the step
    googlenet_mod.compile_with_aux(model, optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
    x = random_images((79, 79, 3), n=2)
    y = np.array([0, 3])
    logs = model.train_on_batch(x, [y, y, y], return_dict=True)
    assert np.all(np.isfinite(list(logs.values())))
    # the logged losses come from the same forward pass, before the update
    weighted = logs["predictions_loss"] + 0.3 * (logs["aux1_predictions_loss"] + logs["aux2_predictions_loss"])
    assert logs["loss"] == pytest.approx(weighted, rel=1e-5)
    inference = googlenet_mod.inference_model(model)
    inference.save(tmp_path / "googlenet.keras")
    back = keras.saving.load_model(tmp_path / "googlenet.keras", safe_mode=True)
    assert len(back.outputs) == 1
    np.testing.assert_array_equal(np.asarray(back(x)), np.asarray(inference(x)))


def test_googlenet_aux_needs_top_and_room_for_the_5x5_pool():
    with pytest.raises(ValueError, match="include_top"):
        googlenet_mod.googlenet(aux_logits=True, include_top=False)
    with pytest.raises(ValueError, match="at least 79x79"):
        googlenet_mod.googlenet(aux_logits=True, input_shape=(78, 78, 3))
    # torchvision's adaptive aux pool has no such limit
    assert len(googlenet_mod.googlenet_bn(aux_logits=True, input_shape=(32, 32, 3)).outputs) == 3


def _table1_macs(branch3_kernel=5, classes=1000):
    """Conv + dense MACs recounted from Table 1's shapes at 224 (the registered reference)."""
    macs = _conv_macs(112, 7, 3, 64) + _conv_macs(56, 1, 64, 64) + _conv_macs(56, 3, 64, 192)
    channels, side = 192, 28
    for row in googlenet_mod.TABLE1:
        if row == googlenet_mod.POOL:
            side //= 2
            continue
        _, n1, r3, n3, r5, n5, pp = row
        macs += (_conv_macs(side, 1, channels, n1 + r3 + r5 + pp) + _conv_macs(side, 3, r3, n3)
                 + _conv_macs(side, branch3_kernel, r5, n5))
        channels = n1 + n3 + n5 + pp
    return macs + channels * classes


def test_googlenet_macs_reference_is_table_1_recounted():
    assert registry.get("googlenet").ref_macs == _table1_macs()
    # torchvision's 3x3 "5x5" branch is what brings its count to 1.498 G
    assert abs(_table1_macs(branch3_kernel=3) - registry.get("googlenet_bn").ref_macs) < 1e6


def test_googlenet_bn_is_torchvisions_layout():
    model = googlenet_mod.googlenet_bn(input_shape=(64, 64, 3))
    assert registry.param_count(model, "trainable") == 6_624_904
    assert model.get_layer("inception_3a_5x5_conv").kernel.shape == (3, 3, 16, 32)
    assert model.get_layer("inception_3a_5x5_conv").use_bias is False
    assert not any(isinstance(l, LocalResponseNormalization) for l in model.layers)
    assert model.get_layer("top_dropout").rate == 0.2


def test_adaptive_avg_pool_matches_keras_and_pytorchs_bins_below_the_output_size():
    from keras_convnets.layers import AdaptiveAvgPool2D

    x = np.random.default_rng(0).normal(size=(2, 13, 9, 3)).astype("float32")
    keras_pool = keras.layers.AdaptiveAveragePooling2D((6, 6))
    np.testing.assert_allclose(np.asarray(AdaptiveAvgPool2D(6)(x)), np.asarray(keras_pool(x)), atol=1e-6)
    # PyTorch: 5 -> 3 cells average inputs [0, 2), [1, 4), [3, 5); 2 -> 4 repeats each input twice
    np.testing.assert_allclose(AdaptiveAvgPool2D._averaging_matrix(5, 3),
                               [[.5, .5, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0, .5, .5]], atol=1e-7)
    small = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(np.asarray(AdaptiveAvgPool2D(4)(small))[0, :, :, 0],
                                  np.kron(small[0, :, :, 0], np.ones((2, 2))))

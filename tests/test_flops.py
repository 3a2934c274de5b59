"""count_macs / macs_table against hand-computed counts for every layer kind, nested models and
custom layers; three keras.applications targets; the TF-profiler cross-check."""

from __future__ import annotations

import keras
import pytest
from keras import layers

import keras_convnets as kc
from keras_convnets.flops import ProfilerCount, count_flops_profiler, count_macs, layer_macs, macs_table
from keras_convnets.layers import GroupConv2D


def single(layer, shape):
    inp = keras.Input(shape)
    return keras.Model(inp, layer(inp))


# (layer, input shape, hand-computed MACs at batch 1)
CASES = {
    # 8x8 outputs x 16 filters x 3x3 taps x 4 input channels
    "conv": (lambda: layers.Conv2D(16, 3, padding="same"), (8, 8, 4), 8 * 8 * 16 * 9 * 4),
    # stride 2: 4x4 outputs; "valid": 3x3 outputs
    "conv_strided": (lambda: layers.Conv2D(16, 3, strides=2, padding="same"), (8, 8, 4), 4 * 4 * 16 * 9 * 4),
    "conv_valid": (lambda: layers.Conv2D(16, 3, strides=2), (8, 8, 4), 3 * 3 * 16 * 9 * 4),
    # dilation changes the receptive field, not the taps per output
    "conv_dilated": (lambda: layers.Conv2D(16, 3, dilation_rate=2, padding="same"), (8, 8, 4), 8 * 8 * 16 * 9 * 4),
    "conv_rect": (lambda: layers.Conv2D(5, (1, 7), padding="same"), (6, 6, 3), 6 * 6 * 5 * 7 * 3),
    # groups=4: each output sees 8/4 = 2 input channels
    "grouped": (lambda: layers.Conv2D(16, 3, padding="same", groups=4), (8, 8, 8), 8 * 8 * 16 * 9 * 2),
    "group_conv2d": (lambda: GroupConv2D(16, 3, padding="same", groups=4), (8, 8, 8), 8 * 8 * 16 * 9 * 2),
    "depthwise": (lambda: layers.DepthwiseConv2D(5, padding="same"), (8, 8, 6), 8 * 8 * 6 * 25),
    "depthwise_strided_x2": (lambda: layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2),
                             (8, 8, 6), 4 * 4 * 12 * 9),
    # depthwise 3x3 on the 4x4 strided grid, then the 1x1 pointwise 6 -> 10
    "separable": (lambda: layers.SeparableConv2D(10, 3, strides=2, padding="same"), (8, 8, 6),
                  4 * 4 * 6 * 9 + 4 * 4 * 6 * 10),
    "conv1d": (lambda: layers.Conv1D(7, 5, padding="same"), (20, 3), 20 * 7 * 5 * 3),
    "conv3d": (lambda: layers.Conv3D(4, 3, padding="same"), (4, 4, 4, 2), 64 * 4 * 27 * 2),
    # transposed: every input value goes through the whole kernel into every output channel
    "conv_transpose": (lambda: layers.Conv2DTranspose(3, 3, strides=2, padding="same"), (5, 5, 4), 25 * 4 * 9 * 3),
    # dense on rank 3: applied at each of the 5 positions
    "dense_rank3": (lambda: layers.Dense(3), (5, 7), 5 * 7 * 3),
    "dense": (lambda: layers.Dense(10), (32,), 320),
    "channels_first": (lambda: layers.Conv2D(16, 3, padding="same", data_format="channels_first"), (4, 8, 8),
                       8 * 8 * 16 * 9 * 4),
    "not_counted": (lambda: layers.BatchNormalization(), (8, 8, 4), 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_kinds(case):
    make, shape, expected = CASES[case]
    assert count_macs(single(make(), shape)) == expected


class Bilinear(layers.Layer):
    """A custom layer with matrix work: y = x W x^T per sample; declares its count."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], input_shape[-1]), name="w")

    def call(self, x):
        return keras.ops.sum(keras.ops.matmul(x, self.w) * x, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def compute_macs(self, input_shapes, output_shapes):
        n = input_shapes[0][-1]
        return n * n + n


def test_custom_layer_declares_its_macs():
    assert count_macs(single(Bilinear(), (6,))) == 42


class Hidden(layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4), name="kernel")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 4)


def test_unknown_layer_with_kernel_warns():
    with pytest.warns(UserWarning, match="no compute_macs"):
        assert count_macs(single(Hidden(), (6,))) == 0


def test_nested_functional_sequential_and_shared_layers():
    # inner model built for any size, called on 8x8 inputs: re-traced at the call's shapes
    i = keras.Input((None, None, 4))
    inner = keras.Model(i, layers.Conv2D(8, 3, padding="same", name="c")(i), name="inner")
    seq = keras.Sequential([keras.Input((8, 8, 8)), layers.Conv2D(2, 1, name="p")], name="seq")
    shared = layers.Dense(5, name="shared")
    inp = keras.Input((8, 8, 4))
    x = inner(inp)
    y = seq(x)
    z = layers.GlobalAveragePooling2D()(y)
    out = shared(layers.Dense(5)(z)) + shared(layers.Dense(5)(z))
    model = keras.Model(inp, out)
    expected = 8 * 8 * 8 * 9 * 4 + 8 * 8 * 2 * 8 + 2 * (2 * 5) + 2 * (5 * 5)
    assert count_macs(model) == expected
    table = macs_table(model)
    assert list(table.columns) == ["name", "type", "output_shape", "params", "macs"]
    assert int(table.macs.sum()) == expected
    rows = table.set_index("name")
    assert rows.loc["inner/c", "macs"] == 8 * 8 * 8 * 9 * 4
    assert rows.loc["inner/c", "output_shape"] == (None, 8, 8, 8)
    assert rows.loc["seq/p", "params"] == 18
    assert (table.name == "shared").sum() == 2  # one row per call


def test_sequential_model():
    model = keras.Sequential([keras.Input((10,)), layers.Dense(4), layers.Dense(2)])
    assert count_macs(model) == 10 * 4 + 4 * 2
    assert kc.count_macs(model) == 48
    unbuilt = keras.Sequential([layers.Dense(4)])
    with pytest.raises(ValueError, match="Sequential"):
        count_macs(unbuilt)


def test_unknown_shape_is_an_error():
    with pytest.raises(ValueError, match="fixed input_shape"):
        count_macs(single(layers.Conv2D(4, 3), (None, None, 3)))


def test_layer_macs_is_public():
    conv = layers.Conv2D(4, 3)
    conv.build((None, 6, 6, 2))
    assert layer_macs(conv, [(None, 6, 6, 2)], [(None, 4, 4, 4)]) == 16 * 4 * 9 * 2


@pytest.mark.parametrize(
    "app, expected",
    [("ResNet50", 3_857_973_248), ("DenseNet121", 2_834_161_664), ("InceptionV3", 5_713_216_096)],
)
def test_keras_applications_targets(app, expected):
    model = getattr(keras.applications, app)(weights=None)
    assert count_macs(model) == expected


def test_profiler_cross_check_and_its_grouped_blind_spot():
    inp = keras.Input((8, 8, 8))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    plain = keras.Model(inp, layers.Dense(5, use_bias=False)(layers.Flatten()(x)))
    count = count_flops_profiler(plain)
    assert isinstance(count, ProfilerCount)
    # bias-free conv + dense and nothing else: exactly 2 FLOPs per MAC
    assert count.raw_flops == 2 * count_macs(plain) and count.grouped_correction == 0

    grouped = keras.Model(inp, layers.Conv2D(16, 3, padding="same", groups=4, use_bias=False)(inp))
    count = count_flops_profiler(grouped)
    assert count.raw_flops < 2 * count_macs(grouped)  # the profiler misses it (0 here)
    assert count.grouped_correction == 2 * count_macs(grouped)
    assert count.flops == count.raw_flops + count.grouped_correction
    assert count.macs == count.flops / 2

    per_group = keras.Model(inp, GroupConv2D(16, 3, padding="same", groups=4, use_bias=False)(inp))
    count = count_flops_profiler(per_group)
    assert count.grouped_correction == 0
    # Groups this thin (2 channels) run as one depthwise conv + a sum over each group's inputs;
    # the profiler also counts the sum's additions: 8 x 8 x 16 outputs x (2 - 1).
    assert count.raw_flops == 2 * count_macs(per_group) + 8 * 8 * 16 * (2 - 1)

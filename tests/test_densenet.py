"""DenseNet: weight transfer from keras.applications, the CIFAR DenseNet-BC by depth and growth
rate, and the width/depth knobs acting on growth rate and layers per block."""

from __future__ import annotations

import keras
import pytest

from helpers import random_images, registry, transfer_and_compare
from keras_convnets.models.densenet import densenet, densenet121, densenet_bc_cifar, densenet_bc_100_12


def _layer_names(model, suffix):
    return [l.name for l in model.layers if l.name.endswith(suffix)]


def test_densenet121_weights_transfer_from_keras_applications():
    shape = (64, 64, 3)
    ref = keras.applications.DenseNet121(weights=None, input_shape=shape)
    ours = densenet121(input_shape=shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in ref.weights]
    assert [l.name for l in ours.layers if l.weights] == [l.name for l in ref.layers if l.weights]
    diff = transfer_and_compare(ours, ref, random_images(shape, n=2))
    assert diff < 1e-4, diff


def test_densenet_bc_100_12_is_three_blocks_of_16_bottleneck_layers():
    model = densenet_bc_100_12()
    assert model.output_shape == (None, 10)
    for stage in (2, 3, 4):
        assert len([n for n in _layer_names(model, "_2_conv") if n.startswith(f"conv{stage}_")]) == 16
    assert not any(n.startswith("conv5_") for n in _layer_names(model, "_conv"))
    assert model.get_layer("conv1_conv").kernel.shape == (3, 3, 3, 24)  # 2k maps
    # 0.8M in Table 2; every conv, 1 + 2 x 48 + 2 transitions, is counted.
    assert registry.param_count(model, "trainable") == 769_162


def _bc_cifar_macs(depth=100, k=12, theta=0.5, classes=10, side=32):
    """Conv + dense MACs of DenseNet-BC recounted from the paper's Section 3 text, independently
    of the layer graph: the registered reference of densenet_bc_100_12."""
    n = (depth - 4) // 6
    channels = 2 * k
    macs = side * side * 3 * 9 * channels
    for block in range(3):
        s2 = (side // 2**block) ** 2
        for _ in range(n):
            macs += s2 * channels * 4 * k + s2 * 9 * 4 * k * k
            channels += k
        if block < 2:
            macs += s2 * channels * int(channels * theta)
            channels = int(channels * theta)
    return macs + channels * classes


def test_densenet_bc_macs_reference_is_the_closed_form_recount():
    assert registry.get("densenet_bc_100_12").ref_macs == _bc_cifar_macs()


@pytest.mark.parametrize("depth, growth, compression", [(40, 12, 0.5), (52, 24, 1.0)])
def test_densenet_bc_cifar_by_depth_growth_and_compression(depth, growth, compression):
    model = densenet_bc_cifar(depth, growth, compression, input_shape=(8, 8, 3))
    n = (depth - 4) // 6
    assert len(_layer_names(model, "_2_conv")) == 3 * n
    assert model.get_layer("conv2_block1_2_conv").kernel.shape[-1] == growth
    after_block1 = 2 * growth + n * growth
    assert model.get_layer("pool2_conv").kernel.shape[-1] == int(after_block1 * compression)
    assert model.name == f"densenet_bc_{depth}_{growth}"


def test_densenet_bc_cifar_rejects_depths_not_6n_plus_4():
    with pytest.raises(ValueError, match="6n \\+ 4"):
        densenet_bc_cifar(99)
    with pytest.raises(ValueError, match="compression"):
        densenet_bc_cifar(40, compression=0)


def test_width_scales_growth_rate_and_stem_depth_scales_layers_per_block():
    model = densenet121(input_shape=(32, 32, 3), width_multiplier=0.5, depth_multiplier=0.5)
    assert model.get_layer("conv1_conv").kernel.shape[-1] == 32
    assert model.get_layer("conv2_block1_2_conv").kernel.shape[-1] == 16
    per_block = [len([n for n in _layer_names(model, "_2_conv") if n.startswith(f"conv{s}_")]) for s in (2, 3, 4, 5)]
    assert per_block == [3, 6, 12, 8]
    custom = densenet((2, 2), growth_rate=8, compression=0.25, input_shape=(32, 32, 3), classes=4)
    assert custom.get_layer("pool2_conv").kernel.shape[-1] == int((16 + 2 * 8) * 0.25)


def test_min_sizes_build():
    assert densenet121(input_shape=(32, 32, 3), include_top=False).output_shape == (None, 1, 1, 1024)
    assert densenet_bc_cifar(40, input_shape=(4, 4, 3), include_top=False).output_shape[1:3] == (1, 1)

"""ResNet family: weight transfer from keras.applications, the grouped conv against Keras'
Conv2D(groups=...), stochastic depth, the CIFAR depth rule, and an arithmetic recount of the
reference layouts whose numbers the registry holds (CIFAR pre-act, timm's legacy SENet)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from helpers import kc, max_abs_diff, random_images, registry
from keras_convnets.layers import DropPath, GroupConv2D
from keras_convnets.models import resnet as rn


# ----------------------------------------------------------------------------- weight transfer
def _perturbed_weights(model, seed=1):
    """The reference's weights with BatchNorm statistics moved off (0, 1), so BN matters."""
    rng = np.random.default_rng(seed)
    out = []
    for w in model.weights:
        v = np.asarray(w)
        if "moving_variance" in w.path:
            v = rng.uniform(0.5, 2.0, v.shape).astype(v.dtype)
        elif "moving_mean" in w.path or "beta" in w.path:
            v = rng.normal(0, 0.1, v.shape).astype(v.dtype)
        out.append(v)
    return out


@pytest.mark.parametrize(
    "ours, reference", [("resnet50", "ResNet50"), ("resnet50_v2", "ResNet50V2")]
)
def test_weights_transfer_from_keras_applications(ours, reference):
    shape = (64, 64, 3)
    ref = getattr(keras.applications, reference)(weights=None, input_shape=shape, classes=10,
                                                 classifier_activation=None)
    model = kc.build(ours, input_shape=shape, classes=10, classifier_activation=None)
    assert [w.shape for w in model.weights] == [w.shape for w in ref.weights]
    assert [l.name for l in model.layers if l.weights] == [l.name for l in ref.layers if l.weights]
    ref.set_weights(_perturbed_weights(ref))
    model.set_weights(ref.get_weights())
    x = random_images(shape)
    y_ref = np.asarray(ref(x, training=False))
    assert np.std(y_ref) > 1e-3  # a real comparison, not two constant outputs
    assert max_abs_diff(model(x, training=False), y_ref) < 1e-4


# ----------------------------------------------------------------------------- grouped conv
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("cin, cout", [(128, 64), (256, 256)])  # groups of 4 (depthwise path) and 8 (split)
def test_group_conv_forward_and_gradients_equal_keras_grouped_conv(stride, cin, cout):
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(2, 9, 9, cin)).astype("float32"))
    ref = keras.layers.Conv2D(cout, 3, strides=stride, padding="same", groups=32, use_bias=False)
    ours = GroupConv2D(cout, 3, strides=stride, padding="same", groups=32, use_bias=False)
    ref.build(x.shape)
    ours.build(x.shape)
    ours.set_weights(ref.get_weights())
    grads = []
    for layer in (ref, ours):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            weights = tf.reshape(tf.range(tf.size(y), dtype=y.dtype), tf.shape(y)) / 1e4
            loss = tf.reduce_sum(y * weights)
        grads.append((y, *tape.gradient(loss, [x, layer.kernel])))
    for a, b in zip(*grads):
        assert max_abs_diff(a, b) < 1e-4


def test_resnext_equals_the_same_model_with_keras_grouped_convs():
    """The whole ResNeXt, with every GroupConv2D swapped for keras' Conv2D(groups=32) carrying
    the same kernel, gives the same outputs."""
    model = kc.build("resnext50_32x4d", input_shape=(32, 32, 3), classes=10, classifier_activation=None)

    def to_keras_conv(layer):
        if isinstance(layer, GroupConv2D):
            return keras.layers.Conv2D.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=to_keras_conv)
    assert sum(type(l) is keras.layers.Conv2D and l.groups == 32 for l in twin.layers) == 16
    twin.set_weights(model.get_weights())
    x = random_images((32, 32, 3))
    assert max_abs_diff(model(x, training=False), twin(x, training=False)) < 1e-4


# ----------------------------------------------------------------------------- stochastic depth
def test_stochastic_depth_only_in_training_and_rising_linearly():
    kwargs = dict(input_shape=(32, 32, 3), classes=3)
    plain = kc.build("resnet18", **kwargs)
    dropped = kc.build("resnet18", drop_path_rate=0.5, **kwargs)
    rates = [l.rate for l in dropped.layers if isinstance(l, DropPath)]
    assert rates == pytest.approx([0.5 * (i + 1) / 8 for i in range(8)])  # Huang et al.'s linear rule
    for layer in plain.layers:  # by name: the DropPath layers change the graph's weight order
        dropped.get_layer(layer.name).set_weights(layer.get_weights())
    x = random_images((32, 32, 3), n=8)
    np.testing.assert_allclose(dropped(x, training=False), plain(x, training=False), atol=1e-6)
    # Same batch statistics in training mode: any difference comes from the dropped branches.
    assert max_abs_diff(dropped(x, training=True), plain(x, training=True)) > 1e-3


# ----------------------------------------------------------------------------- variants as data
def test_cifar_depth_rule():
    with pytest.raises(ValueError, match="9n \\+ 2"):
        rn.resnet_preact_cifar(depth=50)
    model = rn.resnet_preact_cifar(depth=20, input_shape=(4, 4, 3))  # min_size 4 builds
    assert model.name == "resnet20_preact"
    assert model.output.shape == (None, 10)
    units = [l.name for l in model.layers if l.name.endswith("_out")]
    assert len(units) == 3 * 2
    # the first unit of each stage projects the shared BN-ReLU output with a strided 1x1
    projections = [l for l in model.layers if l.name.endswith("_0_conv")]
    assert [p.strides for p in projections] == [(1, 1), (2, 2), (2, 2)]
    assert all(p.input._keras_history.operation.name == p.name.replace("_0_conv", "_preact_relu")
               for p in projections)


def test_width_and_depth_multipliers_keep_groups_dividing_the_widths():
    model = kc.build("resnext50_32x4d", input_shape=(32, 32, 3), width_multiplier=0.6, depth_multiplier=0.5)
    grouped = [l for l in model.layers if isinstance(l, GroupConv2D)]
    assert len(grouped) == 2 + 2 + 3 + 2  # ceil(0.5 x (3, 4, 6, 3))
    assert all(l.filters % 32 == 0 for l in grouped)
    senet = kc.build("senet154", input_shape=(32, 32, 3), width_multiplier=0.5, depth_multiplier=0.1)
    assert all(l.filters % 64 == 0 and l.kernel.shape[2] * 64 == l.input.shape[-1]
               for l in senet.layers if isinstance(l, GroupConv2D))


def test_senet154_shortcuts_and_se():
    model = kc.build("senet154", input_shape=(32, 32, 3), depth_multiplier=0.1)
    kernels = {l.name: l.kernel_size for l in model.layers if l.name.endswith("_0_conv")}
    assert kernels == {"conv2_block1_0_conv": (1, 1), "conv3_block1_0_conv": (3, 3),
                       "conv4_block1_0_conv": (3, 3), "conv5_block1_0_conv": (3, 3)}
    se = {l.name: l.filters for l in model.layers if l.name.endswith("block1_se_reduce")}
    assert se == {f"conv{s}_block1_se_reduce": c // 16 for s, c in zip((2, 3, 4, 5), (256, 512, 1024, 2048))}
    assert any(isinstance(l, keras.layers.Dropout) and l.rate == 0.2 for l in model.layers)


def test_bad_family_arguments():
    with pytest.raises(ValueError, match="stride_in"):
        rn.resnet(stride_in="5x5")
    with pytest.raises(ValueError, match="stage_planes"):
        rn.resnet(repeats=(1, 1), stage_planes=(64, 128, 256))
    with pytest.raises(ValueError, match="drop_path_rate"):
        rn.resnet(drop_path_rate=1.0)


# ----------------------------------------------------------------------------- recounts
# Reference numbers that no installed library can count here are recounted from the reference
# layout with plain arithmetic, independently of the Keras graph. The same recount reproduces the
# published torchvision / timm totals, which is what makes it trustworthy for the others.
def _conv(k, cin, cout, hw, groups=1):
    w = k * k * (cin // groups) * cout
    return w, w * hw * hw


def recount_cifar_preact(depth, classes=10, size=32):
    """(conv + dense weights, MACs) of He et al. 2016's CIFAR bottleneck net."""
    n = (depth - 2) // 9
    parts = [_conv(3, 3, 16, size)]
    cin, hw = 16, size
    for planes, stride in zip((16, 32, 64), (1, 2, 2)):
        for i in range(n):
            hw_out = hw // (stride if i == 0 else 1)
            parts += [_conv(1, cin, planes, hw_out), _conv(3, planes, planes, hw_out),
                      _conv(1, planes, 4 * planes, hw_out)]
            if i == 0:
                parts.append(_conv(1, cin, 4 * planes, hw_out))
            cin, hw = 4 * planes, hw_out
    parts.append((cin * classes, cin * classes))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def recount_timm(layers, block, groups=1, base_width=4, deep_stem=False, ds_kernel=1, stride_3x3=True,
                 classes=1000, size=224, se=True):
    """(trainable params, conv + dense MACs) of torchvision's ResNet / timm's legacy SENet."""
    params = macs = 0

    def conv(k, cin, cout, hw, g=1, bias=False, bn=True):
        nonlocal params, macs
        w, m = _conv(k, cin, cout, hw, g)
        params += w + (cout if bias else 0) + (2 * cout if bn else 0)
        macs += m

    hw = size // 2
    stem = 128 if deep_stem else 64
    if deep_stem:
        conv(3, 3, 64, hw), conv(3, 64, 64, hw), conv(3, 64, stem, hw)
    else:
        conv(7, 3, stem, hw)
    hw, cin = hw // 2, stem
    for s, (n, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
        for i in range(n):
            stride = 2 if s > 0 and i == 0 else 1
            out, hw_out = 4 * planes, hw // stride
            if block == "senet154":
                mid, width = 2 * planes, 4 * planes
            else:
                mid = width = math.floor(planes * base_width / 64) * groups
            conv(1, cin, mid, hw if stride_3x3 else hw_out)
            conv(3, mid, width, hw_out, groups)
            conv(1, width, out, hw_out)
            if se:
                conv(1, out, out // 16, 1, bias=True, bn=False), conv(1, out // 16, out, 1, bias=True, bn=False)
            if i == 0:
                conv(ds_kernel if s > 0 else 1, cin, out, hw_out)
            cin, hw = out, hw_out
    params += cin * classes + classes
    macs += cin * classes
    return params, macs


def test_recount_reproduces_published_counts():
    assert recount_timm((3, 4, 6, 3), "resnext", 32, 4, se=False) == (25_028_904, 4_230_479_872)  # torchvision 4.23 G
    assert recount_timm((3, 4, 23, 3), "resnext", 32, 8, se=False)[0] == 88_791_336
    assert recount_timm((3, 4, 6, 3), "resnet", 1, 64, se=False)[1] == 4_089_184_256  # torchvision ResNet-50
    assert recount_timm((3, 4, 6, 3), "seresnet", 1, 64, stride_3x3=False)[0] == 28_088_024  # timm
    assert recount_timm((3, 4, 6, 3), "seresnext", 32, 4)[0] == 27_559_896  # timm
    assert recount_timm((3, 8, 36, 3), "senet154", 64, deep_stem=True, ds_kernel=3)[0] == 115_088_984  # timm


@pytest.mark.parametrize(
    "name, counts",
    [
        ("resnet164_preact", recount_cifar_preact(164)),
        ("resnet1001_preact", recount_cifar_preact(1001)),
        ("seresnet101", recount_timm((3, 4, 23, 3), "seresnet", 1, 64, stride_3x3=False)),
        ("seresnet152", recount_timm((3, 8, 36, 3), "seresnet", 1, 64, stride_3x3=False)),
        ("seresnext50_32x4d", recount_timm((3, 4, 6, 3), "seresnext", 32, 4)),
        ("senet154", recount_timm((3, 8, 36, 3), "senet154", 64, deep_stem=True, ds_kernel=3)),
    ],
)
def test_registered_references_are_the_recounts(name, counts):
    spec = registry.get(name)
    params, macs = counts
    assert spec.ref_macs == macs
    if spec.params_kind == "weights":  # the paper's rounded figure
        assert abs(params - spec.ref_params) <= spec.params_tolerance * spec.ref_params
    else:
        assert spec.ref_params == params

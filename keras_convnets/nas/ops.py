"""The op library of the cell networks: each op takes a hidden state and returns F channels.

Shapes and widths follow TF-slim ``nasnet_utils`` and the TPU AmoebaNet ``network_utils``
(``_apply_conv_operation``): an op on one of the cell's two inputs (h0, h1) takes the cell's
stride, an op on a block's output never strides; pools and identity get a 1x1 conv + BN when
their input is not F wide (and identity also when it strides); separable convs are
ReLU-SepConv-BN applied twice, the first one strided.

Every function is ``x = op(x, ..., name=...)`` and names its layers from ``name``.
"""

from __future__ import annotations

import dataclasses
import functools

from keras import layers

from keras_convnets.blocks import BN_AXIS
from keras_convnets.nas.genotype import OPS

__all__ = ["OpContext", "apply_op", "factorized_reduction", "relu_conv_bn", "batch_norm", "PADDING_STYLES"]

# BatchNorm decay 0.9997 and epsilon 1e-3: TF-slim nasnet/pnasnet arg scopes, keras.applications'
# NASNet, and the TPU AmoebaNet hparams alike.
BN_MOMENTUM = 0.9997
BN_EPSILON = 1e-3

# How strided ops pad. "same": TF-slim's SAME padding (pools ignore the padded border).
# "keras": keras.applications' NASNet: ZeroPadding2D then a VALID op, so strided pools see the
# zeros (max pool of negative BN outputs and average pool near the border differ from slim's).
PADDING_STYLES = ("same", "keras")


@dataclasses.dataclass(frozen=True)
class OpContext:
    """What every op of one network shares."""

    padding_style: str = "same"
    # TPU AmoebaNet's conv ops (3x3, 1x3_3x1, 1x7_7x1, dilated) sit in a 1x1 bottleneck of F/4
    # channels (3F/8 for 1x3_3x1): network_utils._apply_operation.
    conv_bottleneck: bool = True


def batch_norm(x, name: str):
    return layers.BatchNormalization(axis=BN_AXIS, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)


def _conv(x, filters, kernel, strides=1, *, name, dilation_rate=1, padding="same"):
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate,
                         use_bias=False, kernel_initializer="he_normal", name=name)(x)


def relu_conv_bn(x, filters, kernel=1, strides=1, *, name, dilation_rate=1):
    """ReLU -> conv -> BN, slim's unit for 1x1 adjustments and plain conv ops."""
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = _conv(x, filters, kernel, strides, name=f"{name}_conv", dilation_rate=dilation_rate)
    return batch_norm(x, f"{name}_bn")


def _correct_pad(x, kernel: int):
    """keras.applications' ``correct_pad``: the zero padding that makes a VALID strided op give
    the same output size as SAME."""
    h, w = x.shape[1:3]
    adjust = tuple(1 if d is None else 1 - d % 2 for d in (h, w))
    c = kernel // 2
    return ((c - adjust[0], c), (c - adjust[1], c))


def _strided_padding(x, kernel, strides, ctx: OpContext, name):
    """(x, padding) for a strided op: keras style pads explicitly and runs the op VALID."""
    if strides > 1 and ctx.padding_style == "keras":
        return layers.ZeroPadding2D(_correct_pad(x, kernel), name=f"{name}_pad")(x), "valid"
    return x, "same"


def factorized_reduction(x, filters: int, strides: int, *, name: str):
    """Halve the resolution without dropping pixels (Zoph et al. 2018, Appendix A.1; slim
    ``factorized_reduction``): two strided 1x1 convs, one on the input and one on the input shifted
    by one pixel, concatenated (the second gets the odd channel) and batch-normalised. At stride 1
    it is a 1x1 conv + BN."""
    if strides == 1:
        x = _conv(x, filters, 1, name=f"{name}_path_conv")
        return batch_norm(x, f"{name}_path_bn")
    p1 = layers.AveragePooling2D(1, strides=strides, padding="valid", name=f"{name}_path1_pool")(x)
    p1 = _conv(p1, filters // 2, 1, name=f"{name}_path1_conv")
    p2 = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_path2_pad")(x)
    p2 = layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_path2_shift")(p2)
    p2 = layers.AveragePooling2D(1, strides=strides, padding="valid", name=f"{name}_path2_pool")(p2)
    p2 = _conv(p2, filters // 2 + filters % 2, 1, name=f"{name}_path2_conv")
    x = layers.Concatenate(axis=BN_AXIS, name=f"{name}_concat")([p1, p2])
    return batch_norm(x, f"{name}_bn")


# ------------------------------------------------------------------------------------ the ops
def identity(x, filters, strides, ctx, name):
    if strides > 1 or x.shape[-1] != filters:
        return relu_conv_bn(x, filters, 1, strides, name=name)
    return x


def conv1x1(x, filters, strides, ctx, name):
    return relu_conv_bn(x, filters, 1, strides, name=name)


def separable_stack(x, filters, strides, ctx, name, *, kernel: int, dilation_rate: int = 1):
    """ReLU-SepConv-BN twice, the first strided (Zoph et al. 2018, Appendix A.4)."""
    for i in (1, 2):
        s = strides if i == 1 else 1
        x = layers.Activation("relu", name=f"{name}_relu_{i}")(x)
        if dilation_rate == 1:
            x, padding = _strided_padding(x, kernel, s, ctx, f"{name}_{i}")
            x = layers.SeparableConv2D(filters, kernel, strides=s, padding=padding, use_bias=False,
                                       name=f"{name}_sepconv_{i}")(x)
        else:
            # Keras rejects strides > 1 with dilation > 1: the depthwise part runs at stride 1 and
            # the pointwise 1x1 takes the stride, which subsamples exactly the same result.
            x = layers.DepthwiseConv2D(kernel, padding="same", dilation_rate=dilation_rate, use_bias=False,
                                       name=f"{name}_depthwise_{i}")(x)
            x = _conv(x, filters, 1, s, name=f"{name}_pointwise_{i}")
        x = batch_norm(x, f"{name}_bn_{i}")
    return x


def pool(x, filters, strides, ctx, name, *, kind: str, size: int):
    x, padding = _strided_padding(x, size, strides, ctx, name)
    cls = layers.AveragePooling2D if kind == "avg" else layers.MaxPooling2D
    x = cls(size, strides=strides, padding=padding, name=f"{name}_pool")(x)
    if x.shape[-1] != filters:
        x = _conv(x, filters, 1, name=f"{name}_1x1_conv")
        x = batch_norm(x, f"{name}_1x1_bn")
    return x


def _spatial_conv(x, op, filters, strides, name):
    """The spatial part of a conv op at ``filters`` channels (TPU ``_apply_conv_operation``)."""
    if op == "conv3x3":
        return _conv(x, filters, 3, strides, name=f"{name}_3x3_conv")
    if op in ("conv1x3_3x1", "conv1x7_7x1"):
        k = 3 if op == "conv1x3_3x1" else 7
        x = _conv(x, filters, (1, k), (1, strides), name=f"{name}_1x{k}_conv")
        x = batch_norm(x, f"{name}_1x{k}_bn")
        x = layers.Activation("relu", name=f"{name}_1x{k}_relu")(x)
        return _conv(x, filters, (k, 1), (strides, 1), name=f"{name}_{k}x1_conv")
    if op == "dil_conv3":
        # Keras rejects strides > 1 with dilation > 1: convolve at stride 1, then subsample.
        x = _conv(x, filters, 3, 1, name=f"{name}_dilated_conv", dilation_rate=2)
        if strides > 1:
            x = layers.AveragePooling2D(1, strides=strides, name=f"{name}_subsample")(x)
        return x
    raise AssertionError(op)


def conv_op(x, filters, strides, ctx, name, *, op: str):
    """A plain conv op. TPU AmoebaNet wraps it in a 1x1 bottleneck: ReLU-1x1(F/4)-BN, ReLU-op-BN,
    ReLU-1x1(F)-BN, dropping the bottleneck when F/4 < 1."""
    reduced = int(3 * filters / 8) if op == "conv1x3_3x1" else int(filters / 4)
    if not ctx.conv_bottleneck or reduced < 1:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        x = _spatial_conv(x, op, filters, strides, name)
        return batch_norm(x, f"{name}_bn")
    x = relu_conv_bn(x, reduced, 1, name=f"{name}_pre")
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    if op == "dil_conv3" and strides > 1:
        # the post-1x1 takes the stride: exact subsampling of the stride-1 dilated conv.
        x = _conv(x, reduced, 3, 1, name=f"{name}_dilated_conv", dilation_rate=2)
        x = batch_norm(x, f"{name}_bn")
        return relu_conv_bn(x, filters, 1, strides, name=f"{name}_post")
    x = _spatial_conv(x, op, reduced, strides, name)
    x = batch_norm(x, f"{name}_bn")
    return relu_conv_bn(x, filters, 1, name=f"{name}_post")


_OP_FUNCS = {
    "id": identity,
    "conv1x1": conv1x1,
    "sep3": functools.partial(separable_stack, kernel=3),
    "sep5": functools.partial(separable_stack, kernel=5),
    "sep7": functools.partial(separable_stack, kernel=7),
    "dil_sep3": functools.partial(separable_stack, kernel=3, dilation_rate=2),
    "avg3": functools.partial(pool, kind="avg", size=3),
    "max3": functools.partial(pool, kind="max", size=3),
    "max5": functools.partial(pool, kind="max", size=5),
    "max7": functools.partial(pool, kind="max", size=7),
    "conv3x3": functools.partial(conv_op, op="conv3x3"),
    "conv1x3_3x1": functools.partial(conv_op, op="conv1x3_3x1"),
    "conv1x7_7x1": functools.partial(conv_op, op="conv1x7_7x1"),
    "dil_conv3": functools.partial(conv_op, op="dil_conv3"),
}
assert set(_OP_FUNCS) == set(OPS), "every op of the library has a builder"


def apply_op(x, op: str, filters: int, strides: int, ctx: OpContext, *, name: str):
    """Apply library op ``op`` to hidden state ``x``; returns ``filters`` channels."""
    try:
        fn = _OP_FUNCS[op]
    except KeyError:
        raise ValueError(f"unknown op {op!r}; the library has {', '.join(OPS)}") from None
    return fn(x, filters, strides, ctx, name)

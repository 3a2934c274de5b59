"""Pieces used by more than one family, written once: argument validation, input handling, the
classifier head, conv-BN-activation, squeeze-and-excitation.

Every function takes a tensor and returns a tensor (``x = block(x, ...)``), and names its layers
from the ``name`` prefix it is given, so models built twice have the same layer names.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from keras_convnets.layers import DropPath, GroupConv2D

__all__ = [
    "check_common",
    "check_rate",
    "check_positive_int",
    "image_input",
    "global_pool",
    "classifier",
    "functional_model",
    "conv_bn_act",
    "squeeze_excite",
    "mbconv",
    "BN_AXIS",
]

BN_AXIS = -1  # channels_last throughout; the builders reject other data formats via input shapes
POOLINGS = (None, "avg", "max")


# ----------------------------------------------------------------------------- validation
def check_common(*, include_top: bool, pooling: str | None, classes: int, classifier_activation: Any) -> None:
    """The keras.applications arguments every builder takes."""
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be True or False, got {include_top!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of None, 'avg', 'max'; got {pooling!r}")
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be an integer >= 1, got {classes!r}")
    if classifier_activation is not None and not callable(classifier_activation):
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError):
            raise ValueError(
                f"classifier_activation {classifier_activation!r} is not a Keras activation "
                "(use e.g. 'softmax', None or a callable)"
            ) from None


def check_rate(name: str, value: float) -> float:
    """A dropout / drop-path rate: a probability in [0, 1)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


def check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


# ----------------------------------------------------------------------------- input
def image_input(
    input_shape: tuple | None,
    input_tensor: Any,
    *,
    default_size: int,
    min_size: int,
    channels: int = 3,
    model_name: str = "model",
):
    """The model's input, as keras.applications handles it: ``input_shape`` (H, W, C) or the
    default; or a given ``input_tensor`` (a Keras tensor is used directly, any other tensor is
    wrapped). Spatial sides below ``min_size`` raise ValueError naming the minimum."""
    if input_shape is None:
        if input_tensor is not None and getattr(input_tensor, "shape", None) is not None:
            input_shape = tuple(input_tensor.shape[1:])
        else:
            input_shape = (default_size, default_size, channels)
    try:
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}") from None
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels) (channels last), got {input_shape!r}")
    h, w, c = input_shape
    if c is None or c < 1:
        raise ValueError(f"input_shape needs a known channel count >= 1, got {input_shape!r}")
    for side in (h, w):
        if side is not None and side < min_size:
            raise ValueError(
                f"{model_name}: input {h}x{w} is too small; this architecture needs at least "
                f"{min_size}x{min_size} (default {default_size}x{default_size})"
            )
    if input_tensor is None:
        return keras.Input(shape=input_shape, name="input_layer")
    if keras.backend.is_keras_tensor(input_tensor):
        return input_tensor
    return keras.Input(tensor=input_tensor, shape=input_shape, name="input_layer")


def functional_model(img_input, input_tensor, outputs, name: str) -> keras.Model:
    """Close the graph; with a user ``input_tensor`` the model starts at its source inputs."""
    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else img_input
    return keras.Model(inputs, outputs, name=name)


# ----------------------------------------------------------------------------- head
def global_pool(x, pooling: str | None, name_prefix: str = ""):
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{name_prefix}avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=f"{name_prefix}max_pool")(x)
    return x


def classifier(
    x,
    *,
    include_top: bool,
    pooling: str | None,
    classes: int,
    classifier_activation: Any,
    dropout_rate: float = 0.0,
    name: str = "predictions",
):
    """keras.applications' head: with ``include_top``, global average pooling, optional dropout,
    then the dense classifier; without it, the requested ``pooling`` (or the feature map)."""
    if not include_top:
        return global_pool(x, pooling)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="top_dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name=name)(x)


# ----------------------------------------------------------------------------- blocks
def conv_bn_act(
    x,
    filters: int,
    kernel_size: int | tuple = 3,
    strides: int | tuple = 1,
    *,
    name: str,
    activation: str | None = "relu",
    padding: str = "same",
    use_bias: bool = False,
    groups: int = 1,
    dilation_rate: int = 1,
    bn_epsilon: float = 1e-3,
    bn_momentum: float = 0.99,
    preact: bool = False,
):
    """Conv -> BN -> activation (``preact=False``), or BN -> activation -> conv (``preact=True``,
    He et al. 2016 "Identity Mappings", arXiv:1603.05027). Layers are ``{name}_conv``,
    ``{name}_bn``, ``{name}_{activation}``. Grouped convs use :class:`GroupConv2D` (fast on CPU)."""
    conv_cls = GroupConv2D if groups > 1 else layers.Conv2D

    def conv(t):
        return conv_cls(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=use_bias,
            groups=groups,
            dilation_rate=dilation_rate,
            name=f"{name}_conv",
        )(t)

    def bn_act(t):
        t = layers.BatchNormalization(axis=BN_AXIS, epsilon=bn_epsilon, momentum=bn_momentum, name=f"{name}_bn")(t)
        if activation is not None:
            t = layers.Activation(activation, name=f"{name}_{_act_name(activation)}")(t)
        return t

    return conv(bn_act(x)) if preact else bn_act(conv(x))


def squeeze_excite(x, reduced_filters: int, *, name: str, activation: str = "relu", gate: str = "sigmoid",
                   kernel_initializer: Any = "glorot_uniform"):
    """Squeeze-and-Excitation (Hu et al. 2018, arXiv:1709.01507, Fig. 3): global average pool,
    FC to ``reduced_filters``, activation, FC back, gate, channel-wise scale. The FCs are 1x1
    convs with bias on a 1x1 map (same parameters as Dense; keeps the 4-D layout, as
    keras.applications' EfficientNet and timm do). keras' EfficientNet pools to a vector and
    reshapes it; pooling with ``keepdims`` is the same computation and leaves the weight order
    (reduce kernel, bias, expand kernel, bias) unchanged."""
    filters = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Conv2D(reduced_filters, 1, activation=activation, kernel_initializer=kernel_initializer,
                      name=f"{name}_reduce")(s)
    s = layers.Conv2D(filters, 1, activation=gate, kernel_initializer=kernel_initializer, name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_excite")([x, s])


def mbconv(
    x,
    filters_out: int,
    *,
    name: str,
    kernel_size: int = 3,
    strides: int = 1,
    expand_ratio: int = 6,
    se_ratio: float = 0.25,
    drop_rate: float = 0.0,
    activation: str = "swish",
    kernel_initializer: Any = "glorot_uniform",
    bn_epsilon: float = 1e-3,
    bn_momentum: float = 0.99,
):
    """Mobile inverted bottleneck (MobileNetV2, Sandler et al. 2018, arXiv:1801.04381, Table 1)
    with squeeze-and-excitation, as EfficientNet uses it (Tan & Le 2019, Sec. 4; MnasNet Fig. 7):
    1x1 expansion to ``expand_ratio`` x the input channels (skipped when the ratio is 1),
    depthwise ``kernel_size`` conv carrying the stride, SE whose bottleneck is ``se_ratio`` of the
    block's *input* channels, linear 1x1 projection, and an identity shortcut when shape allows,
    the residual branch dropped per sample with ``drop_rate`` (drop-connect / stochastic depth).

    Layer names follow keras.applications' EfficientNet (``{name}_expand_conv``, ``{name}_dwconv``,
    ``{name}_se_reduce``, ``{name}_project_bn``...), and so does the weight order."""
    filters_in = int(x.shape[-1])
    filters = filters_in * expand_ratio

    def bn(t, stage):
        return layers.BatchNormalization(axis=BN_AXIS, epsilon=bn_epsilon, momentum=bn_momentum,
                                         name=f"{name}_{stage}bn")(t)

    def act(t, stage):
        return layers.Activation(activation, name=f"{name}_{stage}activation")(t)

    h = x
    if expand_ratio != 1:
        h = layers.Conv2D(filters, 1, padding="same", use_bias=False, kernel_initializer=kernel_initializer,
                          name=f"{name}_expand_conv")(h)
        h = act(bn(h, "expand_"), "expand_")
    # "same" padding equals keras' explicit correct_pad + "valid" for these strides (TF's SAME rule).
    h = layers.DepthwiseConv2D(kernel_size, strides=strides, padding="same", use_bias=False,
                               depthwise_initializer=kernel_initializer, name=f"{name}_dwconv")(h)
    h = act(bn(h, ""), "")
    if 0 < se_ratio <= 1:
        h = squeeze_excite(h, max(1, int(filters_in * se_ratio)), name=f"{name}_se", activation=activation,
                           kernel_initializer=kernel_initializer)
    h = layers.Conv2D(filters_out, 1, padding="same", use_bias=False, kernel_initializer=kernel_initializer,
                      name=f"{name}_project_conv")(h)
    h = bn(h, "project_")
    if strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            h = DropPath(drop_rate, name=f"{name}_drop")(h)
        h = layers.Add(name=f"{name}_add")([h, x])
    return h


def _act_name(activation: Any) -> str:
    return activation if isinstance(activation, str) else getattr(activation, "__name__", "act")

"""EfficientNet B0-B7 (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional
Neural Networks", arXiv:1905.11946).

One family builder, :func:`efficientnet`, driven by the B0 stage table (Table 1) and the
(width, depth, resolution, dropout) coefficients of the released B1-B7. The released models are
*not* the powers alpha**phi, beta**phi, gamma**phi of Sec. 3.3 (see REFERENCE.md); those powers
are available through :class:`keras_convnets.scaling.CompoundScaling` for any family, and
``build("efficientnet_b0", width_multiplier=w, depth_multiplier=d, input_shape=(r, r, 3))``
gives any point of the scaling space.

Architecture, weight order and shapes equal keras.applications' EfficientNetB0-B7, so
``ours.set_weights(keras_model.get_weights())`` reproduces keras' outputs, preprocessing included.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import keras
from keras import layers, ops

from keras_convnets import blocks as house_blocks
from keras_convnets import registry, scaling
from keras_convnets.layers import PACKAGE

__all__ = [
    "MBConvStage",
    "B0_BLOCKS",
    "ImageNormalization",
    "efficientnet",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
]


class MBConvStage(NamedTuple):
    """One row of EfficientNet-B0's Table 1: ``repeats`` MBConv blocks, the first carrying the
    stride and the channel change."""

    repeats: int
    kernel_size: int
    strides: int
    expand_ratio: int
    filters_in: int
    filters_out: int
    se_ratio: float = 0.25


# Table 1 of the paper (the stem conv3x3/32 and the head conv1x1/1280 are separate arguments).
B0_BLOCKS: tuple[MBConvStage, ...] = (
    MBConvStage(1, 3, 1, 1, 32, 16),
    MBConvStage(2, 3, 2, 6, 16, 24),
    MBConvStage(2, 5, 2, 6, 24, 40),
    MBConvStage(3, 3, 2, 6, 40, 80),
    MBConvStage(3, 5, 1, 6, 80, 112),
    MBConvStage(4, 5, 2, 6, 112, 192),
    MBConvStage(1, 3, 1, 6, 192, 320),
)

# The reference TF implementation's initialisers (efficientnet_model.py), which keras also uses.
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}

# ImageNet statistics of the released models' input normalisation, in [0, 1] pixel units.
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImageNormalization(layers.Normalization):
    """keras' ``Normalization`` (same weights: mean, variance, count) that reads its mean and
    variance variables at every call.

    Why: keras' layer caches ``reshape(variable)`` when it is built or loaded (``finalize_state``),
    so ``model.set_weights(...)`` leaves it normalising with the old statistics (the same staleness
    as keras-team/keras#20147 with legacy .h5 loading); transferring keras.applications weights
    with ``set_weights`` would then give different outputs."""

    def call(self, inputs):
        if self.input_mean is not None or self.invert:
            return super().call(inputs)
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.cast(ops.reshape(self.adapt_mean, self._broadcast_shape), self.compute_dtype)
        variance = ops.cast(ops.reshape(self.adapt_variance, self._broadcast_shape), self.compute_dtype)
        return ops.divide(ops.subtract(x, mean), ops.maximum(ops.sqrt(variance), keras.backend.epsilon()))


def preprocessing(x):
    """keras.applications' EfficientNet input pipeline for its ImageNet weights: pixels in
    [0, 255] -> /255 -> Normalization -> x 1/sqrt(std). The released keras weights store the
    standard deviations as the Normalization "variance", so the extra rescaling completes the
    division by the std (keras' comment, tensorflow/tensorflow#49930). Initialised here with the
    ImageNet mean and that "variance", so a model trained from scratch normalises its input the
    way the released models do."""
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
    norm = ImageNormalization(axis=house_blocks.BN_AXIS, name="normalization")
    x = norm(x)
    norm.adapt_mean.assign(IMAGENET_MEAN_RGB)
    norm.adapt_variance.assign(IMAGENET_STDDEV_RGB)
    return layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB], name="stddev_rescaling")(x)


def conv_bn_swish(x, filters: int, kernel_size: int, strides: int, *, name: str, activation: str):
    """The stem (conv3x3/2) and head (conv1x1) of Table 1: conv, BN, activation."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                      kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(axis=house_blocks.BN_AXIS, name=f"{name}_bn")(x)
    return layers.Activation(activation, name=f"{name}_activation")(x)


def _check_blocks(stages: Sequence[Any], stem_filters: int) -> tuple[MBConvStage, ...]:
    """Rows as MBConvStage, positive where they must be, chained (each stage takes the channels
    the previous one, or the stem, gives: the SE width and the shortcut depend on it)."""
    if not stages:
        raise ValueError("blocks must be a non-empty sequence of MBConvStage rows")
    out = []
    previous = house_blocks.check_positive_int("stem_filters", stem_filters)
    for i, s in enumerate(stages):
        try:
            s = MBConvStage(**s) if isinstance(s, dict) else MBConvStage(*s)
        except TypeError as e:
            raise ValueError(f"blocks[{i}] is not an MBConvStage (repeats, kernel_size, strides, expand_ratio, "
                             f"filters_in, filters_out, se_ratio): {e}") from None
        for field in ("repeats", "kernel_size", "strides", "expand_ratio", "filters_in", "filters_out"):
            house_blocks.check_positive_int(f"blocks[{i}].{field}", getattr(s, field))
        if not 0 <= s.se_ratio <= 1:
            raise ValueError(f"blocks[{i}].se_ratio must be in [0, 1], got {s.se_ratio!r}")
        if s.filters_in != previous:
            raise ValueError(f"blocks[{i}].filters_in is {s.filters_in} but the "
                             f"{'stem' if i == 0 else f'blocks[{i - 1}]'} gives {previous} channels")
        previous = s.filters_out
        out.append(s)
    return tuple(out)


def efficientnet(
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    *,
    include_top: bool = True,
    input_shape: tuple | None = None,
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    dropout_rate: float = 0.2,
    drop_connect_rate: float = 0.2,
    include_preprocessing: bool = True,
    blocks: Sequence[MBConvStage] = B0_BLOCKS,
    stem_filters: int = 32,
    head_filters: int = 1280,
    activation: str = "swish",
    default_size: int = 224,
    min_size: int = 32,
    name: str = "efficientnet",
):
    """EfficientNet with width/depth multipliers over the B0 table.

    Channels are ``round_filters(c, width_multiplier)`` (multiple of 8, +8 if rounding lost more
    than 10%) and each stage repeats ``ceil(depth_multiplier * repeats)`` times, the reference
    implementation's rules. ``drop_connect_rate`` rises linearly with the block index
    (0 for the first block, ``rate * (n-1)/n`` for the last), as in the reference code.
    ``include_preprocessing`` puts keras' input pipeline in front (inputs are pixels in [0, 255]);
    without it the network takes already normalised inputs.
    """
    # Validation first (house contract).
    house_blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                              classifier_activation=classifier_activation)
    width_multiplier = scaling.check_multiplier("width_multiplier", width_multiplier)
    depth_multiplier = scaling.check_multiplier("depth_multiplier", depth_multiplier)
    dropout_rate = house_blocks.check_rate("dropout_rate", dropout_rate)
    drop_connect_rate = house_blocks.check_rate("drop_connect_rate", drop_connect_rate)
    if not isinstance(include_preprocessing, bool):
        raise ValueError(f"include_preprocessing must be True or False, got {include_preprocessing!r}")
    stages = _check_blocks(blocks, stem_filters)
    house_blocks.check_positive_int("head_filters", head_filters)

    img_input = house_blocks.image_input(input_shape, input_tensor, default_size=default_size,
                                         min_size=min_size, model_name=name)
    x = preprocessing(img_input) if include_preprocessing else img_input

    def filters(c):
        return scaling.round_filters(c, width_multiplier)

    x = conv_bn_swish(x, filters(stem_filters), 3, 2, name="stem", activation=activation)
    repeats = [scaling.round_repeats(s.repeats, depth_multiplier) for s in stages]
    total = sum(repeats)
    index = 0
    for i, (stage, n) in enumerate(zip(stages, repeats)):
        for j in range(n):
            x = house_blocks.mbconv(
                x,
                filters(stage.filters_out),
                name=f"block{i + 1}{_letter(j)}",
                kernel_size=stage.kernel_size,
                strides=stage.strides if j == 0 else 1,
                expand_ratio=stage.expand_ratio,
                se_ratio=stage.se_ratio,
                drop_rate=drop_connect_rate * index / total,
                activation=activation,
                kernel_initializer=CONV_KERNEL_INITIALIZER,
            )
            index += 1
    x = conv_bn_swish(x, filters(head_filters), 1, 1, name="top", activation=activation)
    x = _classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                    classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return house_blocks.functional_model(img_input, input_tensor, x, name=name)


def _classifier(x, *, include_top, pooling, classes, classifier_activation, dropout_rate):
    """blocks.classifier's head with the reference implementation's dense initialiser."""
    if not include_top:
        return house_blocks.global_pool(x, pooling)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="top_dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, kernel_initializer=DENSE_KERNEL_INITIALIZER,
                        name="predictions")(x)


def _letter(j: int) -> str:
    """Block suffixes a, b, ..., z, then aa, ab, ... (keras uses chr(97 + j); B7's longest stage
    has 13 blocks, but deeper scaled models go past z)."""
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(97 + r) + s
    return s


# ----------------------------------------------------------------------------- variants
PAPER = "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"


def _variant(tag: str, width: float, depth: float, resolution: int, dropout: float, *, ref_params: int,
             ref_macs: int, paper_macs: str, torchvision_macs: str):
    """Register ``efficientnet_{tag}`` with the released coefficients (keras.applications / the
    reference TF code's ``efficientnet_params``: width, depth, resolution, dropout)."""
    name = f"efficientnet_{tag}"
    paper = float(paper_macs)
    half_unit = 0.5 * 10.0 ** -(len(paper_macs.split(".")[1]) if "." in paper_macs else 0)
    rounding = ("within the paper's rounding" if abs(ref_macs / 1e9 - paper) <= half_unit
                else "more than the paper's rounding")
    return registry.variant(
        name,
        efficientnet,
        {"width_multiplier": width, "depth_multiplier": depth, "default_size": resolution, "dropout_rate": dropout},
        family="efficientnet",
        paper=PAPER,
        year=2019,
        arxiv="1905.11946",
        default_size=resolution,
        min_size=32,  # keras.applications' minimum
        channels=3,
        default_classes=1000,
        ref_params=ref_params,
        params_kind="total",
        params_source=f"keras.applications.EfficientNet{tag.upper()} count_params() (weights=None)",
        params_tolerance=0,
        ref_macs=ref_macs,
        macs_source=f"counted on keras.applications.EfficientNet{tag.upper()} (weights=None) with "
                    "keras_convnets.flops.count_macs",
        macs_tolerance=0,
        knobs=("width_multiplier", "depth_multiplier", "resolution"),
        test_size=32,
        notes=f"Released coefficients width {width}, depth {depth}, {resolution} px, dropout {dropout}. "
              f"MACs: the registered count is keras.applications' model counted at its default input; "
              f"torchvision {torchvision_macs}; paper Table 2 {paper_macs} B: the released architecture "
              f"differs from the paper's figure by {(ref_macs / 1e9 - paper) / paper:+.1%}, {rounding}.",
    )


efficientnet_b0 = _variant("b0", 1.0, 1.0, 224, 0.2, ref_params=5_330_571, ref_macs=385_814_752,
                           paper_macs="0.39", torchvision_macs="0.386 G")
efficientnet_b1 = _variant("b1", 1.0, 1.1, 240, 0.2, ref_params=7_856_239, ref_macs=686_802_832,
                           paper_macs="0.70", torchvision_macs="0.687 G")
efficientnet_b2 = _variant("b2", 1.1, 1.2, 260, 0.3, ref_params=9_177_569, ref_macs=993_561_872,
                           paper_macs="1.0", torchvision_macs="1.09 G (at its 288 px evaluation size)")
efficientnet_b3 = _variant("b3", 1.2, 1.4, 300, 0.3, ref_params=12_320_535, ref_macs=1_827_141_392,
                           paper_macs="1.8", torchvision_macs="1.827 G")
efficientnet_b4 = _variant("b4", 1.4, 1.8, 380, 0.4, ref_params=19_466_823, ref_macs=4_393_771_024,
                           paper_macs="4.2", torchvision_macs="4.394 G")
efficientnet_b5 = _variant("b5", 1.6, 2.2, 456, 0.4, ref_params=30_562_527, ref_macs=10_266_384_752,
                           paper_macs="9.9", torchvision_macs="10.266 G")
efficientnet_b6 = _variant("b6", 1.8, 2.6, 528, 0.5, ref_params=43_265_143, ref_macs=19_067_593_536,
                           paper_macs="19", torchvision_macs="19.068 G")
efficientnet_b7 = _variant("b7", 2.0, 3.1, 600, 0.5, ref_params=66_658_687, ref_macs=37_745_884_192,
                           paper_macs="37", torchvision_macs="37.746 G")

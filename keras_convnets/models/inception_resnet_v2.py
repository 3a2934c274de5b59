"""Inception-ResNet-v2 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning", arXiv:1602.07261), in keras.applications' layout (TF-slim's
network, the one the released weights belong to).

The network is a stem, three stages of residual Inception blocks (Figs. 16, 17, 19: ``block35`` on
35x35, ``block17`` on 17x17, ``block8`` on 8x8) and the two reductions between them (Figs. 7, 18).
Every block and reduction is a branch table in the vocabulary of
:mod:`keras_convnets.models.inception_v3`; the residual blocks add a linear 1x1 conv back to the
input width and a scaled residual sum (§3.3), made here by :class:`ScaledResidual`, a registered
layer without weights (keras uses its own unregistered ``CustomScaleLayer``), so keras' weight order
holds and the model reloads with ``safe_mode=True``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from keras_convnets import blocks, registry
from keras_convnets.layers import PACKAGE
from keras_convnets.models.inception_v3 import Conv, Pool, conv_bn, inception_module, stem
from keras_convnets.scaling import check_multiplier, round_filters, round_repeats

__all__ = [
    "ScaledResidual", "MIXED_5B", "BLOCK35", "REDUCTION_A", "BLOCK17", "REDUCTION_B", "BLOCK8",
    "STAGES", "inception_resnet_block", "build_inception_resnet_v2", "inception_resnet_v2",
]


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledResidual(keras.layers.Layer):
    """``shortcut + scale * residual``: §3.3 scales the residuals down (0.1 to 0.3) before the
    addition, which kept the wide Inception-ResNets from dying early in training."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + residual * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


# After the stem: an Inception-A-like module to 320 channels (TF-slim's "Mixed_5b", in place of the
# paper's Fig. 3 stem ending; keras follows TF-slim).
MIXED_5B = {
    "branch1x1": (Conv(96, 1),),
    "branch5x5": (Conv(48, 1), Conv(64, 5)),
    "branch3x3dbl": (Conv(64, 1), Conv(96, 3), Conv(96, 3)),
    "branch_pool": (Pool("avg"), Conv(64, 1)),
}
# Fig. 16: Inception-ResNet-A, 35x35.
BLOCK35 = {
    "branch1x1": (Conv(32, 1),),
    "branch3x3": (Conv(32, 1), Conv(32, 3)),
    "branch3x3dbl": (Conv(32, 1), Conv(48, 3), Conv(64, 3)),
}
# Fig. 7 with Table 1's Inception-ResNet-v2 filters k, l, m, n = 256, 256, 384, 384: 35x35 -> 17x17.
REDUCTION_A = {
    "branch3x3": (Conv(384, 3, 2, "valid"),),
    "branch3x3dbl": (Conv(256, 1), Conv(256, 3), Conv(384, 3, 2, "valid")),
    "branch_pool": (Pool("max"),),
}
# Fig. 17: Inception-ResNet-B, 17x17, the 7x7 factorised into 1x7 and 7x1.
BLOCK17 = {
    "branch1x1": (Conv(192, 1),),
    "branch7x7": (Conv(128, 1), Conv(160, (1, 7)), Conv(192, (7, 1))),
}
# Fig. 18: Reduction-B, 17x17 -> 8x8.
REDUCTION_B = {
    "branch3x3a": (Conv(256, 1), Conv(384, 3, 2, "valid")),
    "branch3x3b": (Conv(256, 1), Conv(288, 3, 2, "valid")),
    "branch3x3dbl": (Conv(256, 1), Conv(288, 3), Conv(320, 3, 2, "valid")),
    "branch_pool": (Pool("max"),),
}
# Fig. 19: Inception-ResNet-C, 8x8, the 3x3 factorised into 1x3 and 3x1.
BLOCK8 = {
    "branch1x1": (Conv(192, 1),),
    "branch3x3": (Conv(192, 1), Conv(224, (1, 3)), Conv(256, (3, 1))),
}

# (block name, its table, repeats, residual scale) per grid; each stage but the last is followed by
# its reduction. Scales from TF-slim (keras): 0.17, 0.1, 0.2 (§3.3 suggests 0.1-0.3).
STAGES = (
    ("block35", BLOCK35, 10, 0.17, ("mixed_6a", REDUCTION_A)),
    ("block17", BLOCK17, 20, 0.1, ("mixed_7a", REDUCTION_B)),
    ("block8", BLOCK8, 10, 0.2, None),
)


def inception_resnet_block(x, table, scale: float, *, name: str, activation: str | None = "relu",
                           width_multiplier: float = 1.0):
    """Residual Inception block (Figs. 16, 17, 19): the branches, concatenated; a linear 1x1 conv
    (bias, no BN: keras/TF-slim) back to the input width; ``x + scale * residual``; ReLU."""
    mixed = inception_module(x, table, name=f"{name}_mixed", width_multiplier=width_multiplier)
    up = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_conv")(mixed)
    x = ScaledResidual(scale, name=f"{name}_add")([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def build_inception_resnet_v2(
    include_top: bool = True,
    input_shape=None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "inception_resnet_v2",
    *,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    dropout_rate: float = 0.0,
):
    """Inception-ResNet-v2. ``depth_multiplier`` scales the repeats of the three residual stages
    (10, 20, 10); ``width_multiplier`` every branch conv and the final 1x1 (1536); ``dropout_rate``
    is before the classifier (the paper keeps 0.8, i.e. rate 0.2; keras' layout has none)."""
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    width_multiplier = check_multiplier("width_multiplier", width_multiplier)
    depth_multiplier = check_multiplier("depth_multiplier", depth_multiplier)
    dropout_rate = blocks.check_rate("dropout_rate", dropout_rate)
    img_input = blocks.image_input(input_shape, input_tensor, default_size=299, min_size=75, model_name=name)

    x = stem(img_input, width_multiplier=width_multiplier)
    x = inception_module(x, MIXED_5B, name="mixed_5b", width_multiplier=width_multiplier)
    for block_name, table, repeats, scale, reduction in STAGES:
        n = round_repeats(repeats, depth_multiplier)
        for i in range(1, n + 1):
            # TF-slim ends the last stage with an unscaled (scale 1.0), linear block8 before conv_7b.
            last = reduction is None and i == n
            x = inception_resnet_block(
                x, table, 1.0 if last else scale, name=f"{block_name}_{i}",
                activation=None if last else "relu", width_multiplier=width_multiplier,
            )
        if reduction is not None:
            x = inception_module(x, reduction[1], name=reduction[0], width_multiplier=width_multiplier)
    x = conv_bn(x, round_filters(1536, width_multiplier), 1, name="conv_7b")
    x = blocks.classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return blocks.functional_model(img_input, input_tensor, x, name=name)


inception_resnet_v2 = registry.variant(
    "inception_resnet_v2",
    build_inception_resnet_v2,
    {},
    family="inception",
    paper="Szegedy et al., Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    year=2016,
    arxiv="1602.07261",
    default_size=299,
    min_size=75,
    ref_params=55_873_736,
    params_kind="total",
    params_source="keras.applications.InceptionResNetV2(weights=None).count_params()",
    params_tolerance=0.0,
    ref_macs=13_155_794_016,
    macs_source="conv + dense MACs counted on keras.applications.InceptionResNetV2 at 299 (paper: 13.2 B)",
    macs_tolerance=0.0,
    knobs=("width_multiplier", "depth_multiplier", "resolution"),
    test_size=75,
    notes=(
        "keras.applications' (TF-slim's) layout and weight order: the stem and Mixed_5b of "
        "TF-slim, not the paper's Fig. 3 stem; residual scales 0.17 / 0.1 / 0.2, and the last "
        "block8 is linear with scale 1.0 (TF-slim, keras), not 0.2."
    ),
)

"""Inception-v3 (Szegedy et al. 2015, "Rethinking the Inception Architecture for Computer Vision",
arXiv:1512.00567), in keras.applications' layout (the TF-slim network the released weights belong
to), with the paper's optional auxiliary classifier.

The modules are data: each one is a table of branches (a branch is a chain of convolutions, maybe
after a 3x3 pool, maybe ending in the parallel 1x3 / 3x1 pair of Fig. 7), and the network is the
sequence of those tables (Table 1). One function, :func:`inception_module`, turns any table into
layers; :mod:`keras_convnets.models.inception_resnet_v2` reuses it and :func:`stem`.

keras.applications names its convolutions ``conv2d``, ``conv2d_1``, ... by creation order; here every
layer is named after its module and branch (``mixed4_branch7x7dbl_3_conv``). Only the *weight order*
is keras': the graph has the same topology and branch order, so Keras' (depth, DFS) layer order is
the same and ``ours.set_weights(keras_model.get_weights())`` reproduces keras' outputs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from keras import layers

from keras_convnets import blocks, registry
from keras_convnets.scaling import check_multiplier, round_filters

__all__ = [
    "Conv", "Pool", "Split", "conv_bn", "branch", "inception_module", "stem",
    "inception_a", "reduction_a", "inception_b", "reduction_b", "inception_c",
    "auxiliary_classifier", "INCEPTION_V3_LAYOUT", "build_inception_v3", "inception_v3",
]


# ----------------------------------------------------------------------------- table vocabulary
class Conv(NamedTuple):
    """One conv-BN-ReLU: filters, kernel (int or (rows, cols)), stride, padding."""

    filters: int
    kernel: int | tuple[int, int]
    strides: int = 1
    padding: str = "same"


class Pool(NamedTuple):
    """A 3x3 pool opening a branch: ``avg`` keeps the grid (stride 1, same: the pool-projection
    branches of Figs. 5-7); ``max`` halves it (stride 2, valid: the grid reductions, Fig. 10)."""

    kind: str  # "avg" | "max"


class Split(NamedTuple):
    """A branch ending in parallel convs whose outputs are concatenated: Fig. 7's "expanded filter
    bank" (1x3 and 3x1 after a shared conv), used on the coarsest 8x8 grid."""

    convs: tuple[Conv, ...]


def conv_bn(x, filters: int, kernel, strides=1, padding="same", *, name: str, activation: str | None = "relu"):
    """Conv (no bias) -> BN (no scale: ReLU follows, as in TF-slim/keras) -> ReLU; the unit every
    Inception layer is made of (§2 of the paper: BN on every conv, arXiv:1502.03167)."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(axis=blocks.BN_AXIS, scale=False, epsilon=1e-3, name=f"{name}_bn")(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def branch(x, steps, *, name: str, width_multiplier: float = 1.0):
    """Apply one branch of a module table: pools, convs (numbered 1, 2, ... in order) and a final
    :class:`Split`. Filters are scaled by ``width_multiplier`` (multiples of 8 off 1.0)."""
    n = pools = 0
    for step in steps:
        if isinstance(step, Pool):
            pools += 1
            pool_name = f"{name}_{step.kind}pool" + (str(pools) if pools > 1 else "")
            if step.kind == "avg":
                x = layers.AveragePooling2D(3, strides=1, padding="same", name=pool_name)(x)
            else:
                x = layers.MaxPooling2D(3, strides=2, padding="valid", name=pool_name)(x)
        elif isinstance(step, Split):
            n += 1
            outs = [
                conv_bn(x, round_filters(c.filters, width_multiplier), c.kernel, c.strides, c.padding,
                        name=f"{name}_{n}{letter}")
                for c, letter in zip(step.convs, "abcdefgh")
            ]
            x = layers.Concatenate(axis=blocks.BN_AXIS, name=f"{name}_{n}")(outs)
        else:
            n += 1
            x = conv_bn(x, round_filters(step.filters, width_multiplier), step.kernel, step.strides, step.padding,
                        name=f"{name}_{n}")
    return x


def inception_module(x, table: dict[str, tuple], *, name: str, width_multiplier: float = 1.0):
    """Every branch of ``table`` on ``x``, concatenated in table order (that order fixes the
    channel layout and, with it, the weight order keras' pretrained weights expect)."""
    outs = [branch(x, steps, name=f"{name}_{bname}", width_multiplier=width_multiplier)
            for bname, steps in table.items()]
    return layers.Concatenate(axis=blocks.BN_AXIS, name=name)(outs)


# ----------------------------------------------------------------------------- the modules (tables)
def inception_a(pool_filters: int) -> dict[str, tuple]:
    """Fig. 5 on the 35x35 grid, the 5x5 kept as one conv in its own branch and a factorised
    5x5 = two 3x3 (§3.1) in the other (TF-slim's filter counts); the pool projection is 32 in the
    first module, 64 after."""
    return {
        "branch1x1": (Conv(64, 1),),
        "branch5x5": (Conv(48, 1), Conv(64, 5)),
        "branch3x3dbl": (Conv(64, 1), Conv(96, 3), Conv(96, 3)),
        "branch_pool": (Pool("avg"), Conv(pool_filters, 1)),
    }


def reduction_a() -> dict[str, tuple]:
    """Fig. 10: 35x35 -> 17x17 with stride-2 conv branches in parallel with a stride-2 pool, so the
    grid shrinks while the filters expand without a representational bottleneck (§5)."""
    return {
        "branch3x3": (Conv(384, 3, 2, "valid"),),
        "branch3x3dbl": (Conv(64, 1), Conv(96, 3), Conv(96, 3, 2, "valid")),
        "branch_pool": (Pool("max"),),
    }


def inception_b(c7: int) -> dict[str, tuple]:
    """Fig. 6 on the 17x17 grid: n x n factorised into 1x7 and 7x1 (§3.2, n = 7); ``c7`` is the
    width inside the factorised branches (128, 160, 160, 192 in the four modules)."""
    return {
        "branch1x1": (Conv(192, 1),),
        "branch7x7": (Conv(c7, 1), Conv(c7, (1, 7)), Conv(192, (7, 1))),
        "branch7x7dbl": (Conv(c7, 1), Conv(c7, (7, 1)), Conv(c7, (1, 7)), Conv(c7, (7, 1)), Conv(192, (1, 7))),
        "branch_pool": (Pool("avg"), Conv(192, 1)),
    }


def reduction_b() -> dict[str, tuple]:
    """The 17x17 -> 8x8 reduction (Fig. 10's scheme with factorised 7x7 in one branch)."""
    return {
        "branch3x3": (Conv(192, 1), Conv(320, 3, 2, "valid")),
        "branch7x7x3": (Conv(192, 1), Conv(192, (1, 7)), Conv(192, (7, 1)), Conv(192, 3, 2, "valid")),
        "branch_pool": (Pool("max"),),
    }


def inception_c() -> dict[str, tuple]:
    """Fig. 7 on the 8x8 grid: the expanded filter bank (1x3 and 3x1 side by side) promotes
    high-dimensional representations on the coarsest grid (§2, principle 2)."""
    pair = Split((Conv(384, (1, 3)), Conv(384, (3, 1))))
    return {
        "branch1x1": (Conv(320, 1),),
        "branch3x3": (Conv(384, 1), pair),
        "branch3x3dbl": (Conv(448, 1), Conv(384, 3), pair),
        "branch_pool": (Pool("avg"), Conv(192, 1)),
    }


# Table 1 of the paper as TF-slim/keras built it: 3 x Inception-A (35x35), reduction, 4 x
# Inception-B (17x17), reduction, 2 x Inception-C (8x8); names as keras' ``mixed0`` ... ``mixed10``.
INCEPTION_V3_LAYOUT: tuple[tuple[str, dict], ...] = (
    ("mixed0", inception_a(32)),
    ("mixed1", inception_a(64)),
    ("mixed2", inception_a(64)),
    ("mixed3", reduction_a()),
    ("mixed4", inception_b(128)),
    ("mixed5", inception_b(160)),
    ("mixed6", inception_b(160)),
    ("mixed7", inception_b(192)),
    ("mixed8", reduction_b()),
    ("mixed9", inception_c()),
    ("mixed10", inception_c()),
)
AUX_AFTER = "mixed7"  # the auxiliary head sits on the last 17x17 module (§4)

# The stem up to the 35x35 grid as TF-slim/keras built it (Table 1 lists its first four rows; the
# released network then has a 1x1 (80), a 3x3 (192) and a pool where the table has three 3x3 convs).
# Shared with Inception-ResNet-v2, whose keras version uses the same stem.
STEM: tuple = (
    Conv(32, 3, 2, "valid"), Conv(32, 3, 1, "valid"), Conv(64, 3), Pool("max"),
    Conv(80, 1, 1, "valid"), Conv(192, 3, 1, "valid"), Pool("max"),
)


def stem(x, *, width_multiplier: float = 1.0):
    """299x299x3 -> 35x35x192 (Table 1, first seven rows)."""
    return branch(x, STEM, name="stem", width_multiplier=width_multiplier)


def auxiliary_classifier(x, *, classes: int, classifier_activation: Any, width_multiplier: float = 1.0):
    """§4 and Fig. 8: on the 17x17 grid, 5x5/3 average pool, 1x1 conv (128), 5x5 conv (768), then
    the FC classifier; BN in the head too (the "BN-auxiliary" of §7). The 5x5 pool and the valid
    5x5 conv need the full 17x17 grid, i.e. an input of at least 299x299. The global average before
    the FC is the identity at 299 (the map is 1x1) and lets larger inputs through."""
    if any(side is not None and side < 17 for side in x.shape[1:3]):
        raise ValueError(
            f"aux_logits=True needs the 17x17 grid the auxiliary head was designed for (its 5x5/3 "
            f"pool and valid 5x5 conv); this input gives {x.shape[1]}x{x.shape[2]}. Use an input of "
            "at least 299x299, or aux_logits=False"
        )
    a = layers.AveragePooling2D(5, strides=3, padding="valid", name="aux_avgpool")(x)
    a = conv_bn(a, round_filters(128, width_multiplier), 1, name="aux_1")
    a = conv_bn(a, round_filters(768, width_multiplier), 5, padding="valid", name="aux_2")
    a = layers.GlobalAveragePooling2D(name="aux_avg_pool")(a)
    return layers.Dense(classes, activation=classifier_activation, name="aux_predictions")(a)


# ----------------------------------------------------------------------------- builder
def build_inception_v3(
    include_top: bool = True,
    input_shape=None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "inception_v3",
    *,
    aux_logits: bool = False,
    width_multiplier: float = 1.0,
    dropout_rate: float = 0.0,
):
    """Inception-v3. With ``aux_logits=True`` the model has two outputs, ``[predictions,
    aux_predictions]`` (train with both losses, the auxiliary weighted e.g. 0.3 as in TF-slim;
    predict with the first). ``dropout_rate`` is before the classifier (TF-slim trains with 0.2;
    keras' layout, and the default here, has none)."""
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    width_multiplier = check_multiplier("width_multiplier", width_multiplier)
    dropout_rate = blocks.check_rate("dropout_rate", dropout_rate)
    if not isinstance(aux_logits, bool):
        raise ValueError(f"aux_logits must be True or False, got {aux_logits!r}")
    if aux_logits and not include_top:
        raise ValueError("aux_logits=True adds a second classifier, so it needs include_top=True")
    img_input = blocks.image_input(input_shape, input_tensor, default_size=299, min_size=75, model_name=name)

    x = stem(img_input, width_multiplier=width_multiplier)
    aux = None
    for module_name, table in INCEPTION_V3_LAYOUT:
        x = inception_module(x, table, name=module_name, width_multiplier=width_multiplier)
        if aux_logits and module_name == AUX_AFTER:
            aux = auxiliary_classifier(x, classes=classes, classifier_activation=classifier_activation,
                                       width_multiplier=width_multiplier)
    x = blocks.classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return blocks.functional_model(img_input, input_tensor, [x, aux] if aux_logits else x, name=name)


inception_v3 = registry.variant(
    "inception_v3",
    build_inception_v3,
    {},
    family="inception",
    paper="Szegedy et al., Rethinking the Inception Architecture for Computer Vision",
    year=2015,
    arxiv="1512.00567",
    default_size=299,
    min_size=75,
    ref_params=23_851_784,
    params_kind="total",
    params_source="keras.applications.InceptionV3(weights=None).count_params() (no auxiliary head)",
    params_tolerance=0.0,
    ref_macs=5_713_216_096,
    macs_source="conv + dense MACs counted on keras.applications.InceptionV3 at 299 (= torchvision 5.713 G)",
    macs_tolerance=0.0,
    knobs=("width_multiplier", "resolution"),
    test_size=75,
    notes=(
        "keras.applications' layout and weight order (set_weights from keras gives equal outputs); "
        "BN without scale as keras. aux_logits=True adds the paper's auxiliary head on mixed7 "
        "(17x17): +3,327,592 params at 1000 classes, needs input >= 299. No depth knob: the "
        "modules of a grid differ in width (Table 1), so there is no uniform repeat to scale."
    ),
)

"""AlexNet: Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012 (no arXiv).

One family builder, :func:`alexnet_family`, driven by a layer table. ``alexnet`` is the paper's
two-tower network (Section 3.5, Fig. 2): 227x227 input, conv2/4/5 grouped in two (each GPU's
kernels see only that GPU's maps; :class:`~keras_convnets.layers.GroupConv2D`), local response
normalisation after conv1 and conv2 within each tower (Section 3.3), overlapping 3x3/2 max pooling
(Section 3.4), dropout 0.5 in the two 4096-unit layers (Section 4.2). ``alexnet_one_tower`` is the
one-tower variant in torchvision's layout (64-192-384-256-256 kernels, no LRN, no groups, adaptive
6x6 average pool before the classifier; torchvision cites Krizhevsky 2014, "One weird trick",
arXiv:1404.5997, for it).

The classifier is flatten-based: its first FC layer's size depends on the input size (registered
counts are at the default input); ``include_top=False`` returns the last pooled map or its global
``pooling``.
"""

from __future__ import annotations

from typing import NamedTuple

from keras import layers

from keras_convnets import blocks, registry, scaling
from keras_convnets.layers import AdaptiveAvgPool2D, GroupConv2D, LocalResponseNormalization

__all__ = ["alexnet_family", "ConvSpec", "TWO_TOWER", "ONE_TOWER", "alexnet", "alexnet_one_tower"]


class ConvSpec(NamedTuple):
    """One row of the layer table: a ReLU conv, then optionally LRN and a 3x3/2 max pool."""

    filters: int
    kernel: int
    stride: int = 1
    pad: int = 0
    groups: int = 1
    lrn: bool = False
    pool: bool = False


# Section 3.5 / Fig. 2: 96 11x11x3 kernels stride 4; 256 5x5x48; 384 3x3x256 (the only conv besides
# conv1 that sees both towers); 384 3x3x192; 256 3x3x192. Padding as in the Caffe reference model.
TWO_TOWER = (
    ConvSpec(96, 11, 4, 0, 1, lrn=True, pool=True),
    ConvSpec(256, 5, 1, 2, 2, lrn=True, pool=True),
    ConvSpec(384, 3, 1, 1, 1),
    ConvSpec(384, 3, 1, 1, 2),
    ConvSpec(256, 3, 1, 1, 2, pool=True),
)
# torchvision.models.alexnet features.
ONE_TOWER = (
    ConvSpec(64, 11, 4, 2, pool=True),
    ConvSpec(192, 5, 1, 2, pool=True),
    ConvSpec(384, 3, 1, 1),
    ConvSpec(256, 3, 1, 1),
    ConvSpec(256, 3, 1, 1, pool=True),
)
TOWERS = 2  # the paper's two GPUs
DROPOUT_PLACES = ("after", "before")


def conv_layer(x, spec: ConvSpec, filters: int, *, towers: int, index: int):
    """conv{index} with its ReLU, then norm{index} and pool{index} where the table asks."""
    name = f"conv{index}"
    if spec.pad:
        x = layers.ZeroPadding2D(spec.pad, name=f"{name}_pad")(x)
    conv_cls = GroupConv2D if spec.groups > 1 else layers.Conv2D
    x = conv_cls(filters, spec.kernel, strides=spec.stride, groups=spec.groups, activation="relu", name=name)(x)
    if spec.lrn:
        # Section 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75, after the ReLU; each GPU
        # normalises over its own kernel maps.
        x = LocalResponseNormalization(5, k=2.0, alpha=1e-4, beta=0.75, groups=towers,
                                       name=f"norm{index}")(x)
    if spec.pool:
        # Section 3.4: overlapping pooling, z = 3, s = 2.
        x = layers.MaxPooling2D(3, strides=2, name=f"pool{index}")(x)
    return x


def alexnet_family(
    conv_table=TWO_TOWER,
    fc_units=(4096, 4096),
    towers: int = TOWERS,
    adaptive_pool: int | None = None,
    dropout_place: str = "after",
    include_top: bool = True,
    input_shape=None,
    input_tensor=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    width_multiplier: float = 1.0,
    dropout_rate: float = 0.5,
    default_size: int = 227,
    min_size: int = 67,
    name: str = "alexnet",
):
    """Five ReLU convs from ``conv_table`` (``ConvSpec`` rows), then flatten and the ReLU FC
    layers ``fc_units`` with dropout and the classifier. ``width_multiplier`` scales every conv
    and FC width (multiples of 8). ``towers`` splits the LRN windows; ``adaptive_pool`` (an output
    side) inserts torchvision's adaptive average pool before the classifier; ``dropout_place``
    is ``"after"`` each hidden FC layer (the paper, Caffe) or ``"before"`` it (torchvision)."""
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    width_multiplier = scaling.check_multiplier("width_multiplier", width_multiplier)
    dropout_rate = blocks.check_rate("dropout_rate", dropout_rate)
    towers = blocks.check_positive_int("towers", towers)
    if dropout_place not in DROPOUT_PLACES:
        raise ValueError(f"dropout_place must be one of {DROPOUT_PLACES}, got {dropout_place!r}")

    img_input = blocks.image_input(input_shape, input_tensor, default_size=default_size, min_size=min_size,
                                   model_name=name)
    x = img_input
    for i, spec in enumerate(conv_table):
        x = conv_layer(x, spec, scaling.round_filters(spec.filters, width_multiplier), towers=towers, index=i + 1)
    if not include_top:
        return blocks.functional_model(img_input, input_tensor, blocks.global_pool(x, pooling), name)

    if adaptive_pool:
        x = AdaptiveAvgPool2D(adaptive_pool, name="adaptive_avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(fc_units):
        fc = f"fc{len(conv_table) + 1 + i}"
        if dropout_place == "before" and dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"{fc}_dropout")(x)
        x = layers.Dense(scaling.round_filters(units, width_multiplier), activation="relu", name=fc)(x)
        if dropout_place == "after" and dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"{fc}_dropout")(x)
    x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return blocks.functional_model(img_input, input_tensor, x, name)


_PAPER = "Krizhevsky, Sutskever, Hinton, ImageNet Classification with Deep Convolutional Neural Networks (NIPS)"

alexnet = registry.variant(
    "alexnet", alexnet_family,
    {"conv_table": TWO_TOWER, "fc_units": (4096, 4096), "towers": TOWERS, "adaptive_pool": None,
     "dropout_place": "after", "default_size": 227, "min_size": 67},
    family="alexnet", paper=_PAPER, year=2012, arxiv=None, default_size=227,
    # 67: conv1 (11/4) gives 15, the three 3x3/2 pools 7, 3, 1; at 66 the last pool gets 2x2.
    min_size=67,
    ref_params=60_965_224, params_kind="total",
    params_source="derived from the paper's layer table (Section 3.5, Fig. 2), two towers, 227x227",
    params_tolerance=0,
    ref_macs=724_406_816,
    macs_source="derived from the paper's layer table (Section 3.5, Fig. 2) at 227x227, conv + FC multiply-adds "
                "(recounted in closed form in tests/test_classics.py); the paper quotes no figure",
    macs_tolerance=0,
    knobs=("width_multiplier", "resolution"), test_size=67,
    notes="Paper-faithful two-tower AlexNet: groups=2 in conv2/4/5 (GroupConv2D), LRN per tower after conv1/2, "
          "overlapping pooling, dropout 0.5 after fc6 and fc7. The paper's text says 224x224 inputs; 227 is the "
          "size at which its 11x11/4 conv gives the 55x55 maps of Fig. 2 (as in Caffe).",
)

alexnet_one_tower = registry.variant(
    "alexnet_one_tower", alexnet_family,
    {"conv_table": ONE_TOWER, "fc_units": (4096, 4096), "towers": 1, "adaptive_pool": 6,
     "dropout_place": "before", "default_size": 224, "min_size": 63},
    family="alexnet", paper=_PAPER, year=2012, arxiv=None, default_size=224,
    # 63: conv1 (pad 2, 11/4) gives 15, the pools 7, 3, 1.
    min_size=63,
    ref_params=61_100_840, params_kind="total", params_source="torchvision alexnet (IMAGENET1K_V1 metadata)",
    params_tolerance=0,
    ref_macs=714_000_000, macs_source="torchvision alexnet metadata: 0.714 GFLOPS (multiply-adds), 224x224",
    macs_tolerance=0.001,
    knobs=("width_multiplier", "resolution"), test_size=63,
    notes="One-tower variant in torchvision's layout (which cites arXiv:1404.5997): 64-192-384-256-256, "
          "no LRN, adaptive 6x6 average pool, dropout before fc6 and fc7; 63 is torchvision's stated minimum.",
)

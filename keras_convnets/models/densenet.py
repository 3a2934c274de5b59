"""DenseNet (Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks",
CVPR 2017, arXiv:1608.06993).

One family builder, :func:`densenet`, driven by the number of layers per dense block, the growth
rate ``k`` and the compression ``theta`` of the transition layers. The ImageNet variants keep
keras.applications' layout (layer names, weight order and shapes), so weights transfer one to
one; the CIFAR DenseNet-BC variants are the same blocks behind a 3x3 stem with three dense blocks
(Section 3, "Implementation Details").

Scaling knobs: the growth rate is the width (``width_multiplier`` scales ``k`` and the stem,
rounded to multiples of 8 by :func:`scaling.round_filters`), the layers per dense block are the
depth (``depth_multiplier``, rounded up by :func:`scaling.round_repeats`).
"""

from __future__ import annotations

from keras import layers

from keras_convnets import blocks, registry, scaling

__all__ = [
    "densenet",
    "densenet_bc_cifar",
    "dense_layer",
    "dense_block",
    "transition_layer",
    "densenet121",
    "densenet169",
    "densenet201",
    "densenet_bc_100_12",
]

# keras.applications' BatchNormalization epsilon (its port of the Torch weights).
BN_EPSILON = 1.001e-5
STEMS = ("imagenet", "cifar")


def _bn_relu(x, name: str):
    x = layers.BatchNormalization(axis=blocks.BN_AXIS, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _dropout(x, rate: float, name: str):
    # Section 4.2: dropout 0.2 after each convolution (except the first) when training
    # without data augmentation.
    return layers.Dropout(rate, name=f"{name}_drop")(x) if rate > 0 else x


def dense_layer(x, growth_rate: int, *, bottleneck: bool, dropout_rate: float, name: str):
    """H_l of Section 3: BN-ReLU-Conv(3x3) producing ``growth_rate`` maps, preceded in
    DenseNet-B by the bottleneck BN-ReLU-Conv(1x1) with 4k maps ("Bottleneck layers");
    its output is concatenated to its input (Eq. 2)."""
    y = _bn_relu(x, f"{name}_0")
    if bottleneck:
        y = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
        y = _dropout(y, dropout_rate, f"{name}_1")
        y = _bn_relu(y, f"{name}_1")
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = _dropout(y, dropout_rate, f"{name}_2")
    return layers.Concatenate(axis=blocks.BN_AXIS, name=f"{name}_concat")([x, y])


def dense_block(x, num_layers: int, growth_rate: int, *, bottleneck: bool, dropout_rate: float, name: str):
    for i in range(num_layers):
        x = dense_layer(x, growth_rate, bottleneck=bottleneck, dropout_rate=dropout_rate, name=f"{name}_block{i + 1}")
    return x


def transition_layer(x, compression: float, *, dropout_rate: float, name: str):
    """BN-ReLU-Conv(1x1) to floor(theta * m) maps, then 2x2 average pooling (Section 3,
    "Pooling layers" and "Compression")."""
    x = _bn_relu(x, name)
    x = layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False, name=f"{name}_conv")(x)
    x = _dropout(x, dropout_rate, name)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def _stem(x, stem: str, filters: int):
    if stem == "imagenet":
        # Table 1: 7x7 conv stride 2 (2k maps), 3x3 max pool stride 2, with keras.applications'
        # explicit zero padding.
        x = layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(x)
        x = layers.Conv2D(filters, 7, strides=2, use_bias=False, name="conv1_conv")(x)
        x = _bn_relu(x, "conv1")
        x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
        return layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    # CIFAR (Section 3, "Implementation Details"): one 3x3 conv with 16 maps, 2k for DenseNet-BC,
    # before the first dense block; no pooling.
    return layers.Conv2D(filters, 3, padding="same", use_bias=False, name="conv1_conv")(x)


def densenet(
    block_layers=(6, 12, 24, 16),
    growth_rate: int = 32,
    compression: float = 0.5,
    bottleneck: bool = True,
    stem: str = "imagenet",
    stem_filters: int | None = None,
    include_top: bool = True,
    input_shape=None,
    input_tensor=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    dropout_rate: float = 0.0,
    default_size: int = 224,
    min_size: int = 32,
    name: str = "densenet",
):
    """DenseNet: a stem, ``len(block_layers)`` dense blocks of ``block_layers[i]`` layers with
    growth rate ``growth_rate``, transition layers with compression ``compression`` between them,
    BN-ReLU, then the classifier.

    ``bottleneck`` and ``compression < 1`` make DenseNet-BC; ``stem`` is ``"imagenet"`` (7x7/2 conv
    + max pool) or ``"cifar"`` (3x3 conv); ``stem_filters`` defaults to 2k (the BC rule, which is
    64 for k = 32). ``dropout_rate`` follows each convolution after the stem (Section 4.2).
    """
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    width_multiplier = scaling.check_multiplier("width_multiplier", width_multiplier)
    depth_multiplier = scaling.check_multiplier("depth_multiplier", depth_multiplier)
    dropout_rate = blocks.check_rate("dropout_rate", dropout_rate)
    growth_rate = blocks.check_positive_int("growth_rate", growth_rate)
    if isinstance(compression, bool) or not isinstance(compression, (int, float)) or not 0 < compression <= 1:
        raise ValueError(f"compression (theta) must be a number in (0, 1], got {compression!r}")
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    if not block_layers or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in block_layers):
        raise ValueError(f"block_layers must be a non-empty sequence of integers >= 1, got {block_layers!r}")
    if stem_filters is None:
        stem_filters = 2 * growth_rate
    stem_filters = blocks.check_positive_int("stem_filters", stem_filters)

    img_input = blocks.image_input(input_shape, input_tensor, default_size=default_size, min_size=min_size,
                                   model_name=name)
    k = scaling.round_filters(growth_rate, width_multiplier)
    x = _stem(img_input, stem, scaling.round_filters(stem_filters, width_multiplier))
    # Stage names follow keras.applications: dense blocks conv2..., transitions pool2...
    for i, n in enumerate(block_layers):
        stage = i + 2
        x = dense_block(x, scaling.round_repeats(n, depth_multiplier), k, bottleneck=bottleneck,
                        dropout_rate=dropout_rate, name=f"conv{stage}")
        if i < len(block_layers) - 1:
            x = transition_layer(x, compression, dropout_rate=dropout_rate, name=f"pool{stage}")
    x = layers.BatchNormalization(axis=blocks.BN_AXIS, epsilon=BN_EPSILON, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = blocks.classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    return blocks.functional_model(img_input, input_tensor, x, name)


def densenet_bc_cifar(depth: int = 100, growth_rate: int = 12, compression: float = 0.5, **kwargs):
    """DenseNet-BC for 32x32 CIFAR images by depth L and growth rate k (Section 3 and Table 2):
    three dense blocks of (L - 4) / 6 bottleneck layers each (every layer has two convolutions;
    the other 4 layers are the stem conv, two transitions and the classifier), a 3x3 stem with
    2k maps, compression theta between blocks."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"DenseNet-BC depth must be an integer 6n + 4 with n >= 1 (e.g. 100, 190), got {depth!r}")
    kwargs.setdefault("name", f"densenet_bc_{depth}_{growth_rate}")
    kwargs.setdefault("default_size", 32)
    kwargs.setdefault("min_size", CIFAR_MIN_SIZE)
    kwargs.setdefault("classes", 10)
    return densenet(block_layers=((depth - 4) // 6,) * 3, growth_rate=growth_rate, compression=compression,
                    bottleneck=True, stem="cifar", **kwargs)


# Two 2x2/2 average pools: a side of 4 leaves 1x1 for the last block; 3 would reach 0.
CIFAR_MIN_SIZE = 4

_PAPER = "Huang et al., Densely Connected Convolutional Networks"
_KNOBS = ("width_multiplier", "depth_multiplier", "resolution")
_KERAS_MACS = ("conv + dense MACs counted on keras.applications.{} (weights=None) at 224x224; "
               "torchvision: 2.834 / 3.36 / 4.29 G for 121 / 169 / 201")


def _imagenet(name: str, block_layers, ref_params: int, ref_macs: int, keras_name: str):
    return registry.variant(
        name, densenet, {"block_layers": block_layers, "growth_rate": 32, "compression": 0.5},
        family="densenet", paper=_PAPER, year=2017, arxiv="1608.06993", default_size=224, min_size=32,
        ref_params=ref_params, params_kind="total", params_source=f"keras.applications.{keras_name} count_params()",
        params_tolerance=0, ref_macs=ref_macs, macs_source=_KERAS_MACS.format(keras_name), macs_tolerance=0,
        knobs=_KNOBS, test_size=32,
        notes="keras.applications layout (weights transfer one to one); Table 1 of the paper, k = 32, theta = 0.5.",
    )


densenet121 = _imagenet("densenet121", (6, 12, 24, 16), 8_062_504, 2_834_161_664, "DenseNet121")
densenet169 = _imagenet("densenet169", (6, 12, 32, 32), 14_307_880, 3_359_843_328, "DenseNet169")
densenet201 = _imagenet("densenet201", (6, 12, 48, 32), 20_242_984, 4_291_365_888, "DenseNet201")


densenet_bc_100_12 = registry.variant(
    "densenet_bc_100_12", densenet_bc_cifar, {"depth": 100, "growth_rate": 12, "compression": 0.5},
    family="densenet", paper=_PAPER, year=2017, arxiv="1608.06993", default_size=32, min_size=CIFAR_MIN_SIZE,
    channels=3, default_classes=10, ref_params=800_000, params_kind="trainable",
    params_source="paper, Table 2: DenseNet-BC (L=100, k=12) 0.8M (rounded to 0.1M)", params_tolerance=0.0625,
    ref_macs=287_929_692,
    macs_source="no published figure; recounted in closed form from the paper's Section 3 description "
                "(3x3 stem, 3 x 16 bottleneck layers, 2 transitions, FC) in tests/test_densenet.py, 32x32",
    macs_tolerance=0,
    knobs=_KNOBS, test_size=8,
    notes="CIFAR DenseNet-BC: 3 blocks of 16 bottleneck layers, 3x3 stem with 2k = 24 maps, theta = 0.5, "
          "no conv biases (as the keras layout); 10 classes by default; 769,162 trainable parameters, the "
          "paper's 0.8M. Dropout (Section 4.2, 0.2 without augmentation) is dropout_rate, 0 by default.",
)

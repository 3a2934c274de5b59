"""GoogLeNet / Inception v1: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015,
arXiv:1409.4842.

One family builder, :func:`inception_v1`, driven by Table 1 (:data:`TABLE1`: the inception
modules' branch widths, with the max pools between them). ``googlenet`` is the paper's network:
ReLU convs with biases and no BatchNorm, a true 5x5 conv in the third branch, local response
normalisation after the first conv and after the 3x3 conv of the stem (Fig. 3), dropout 0.4
before the classifier. ``googlenet_bn`` is torchvision's layout: conv-BN-ReLU units without
biases, no LRN, a 3x3 conv in the "5x5" branch (torchvision keeps the paper's names and calls
the 3x3 "a known bug"), a 2x2 last max pool, dropout 0.2.

``aux_logits=True`` adds the two auxiliary classifiers of Section 5 (on 4a and 4d) as extra
outputs, in the order [main, aux1, aux2]; :func:`compile_with_aux` compiles such a model with the
paper's loss weights [1, 0.3, 0.3], and :func:`inference_model` returns the main-output model
(sharing the weights) for inference and export, where the paper discards the auxiliary heads.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras import layers

from keras_convnets import blocks, registry, scaling
from keras_convnets.layers import AdaptiveAvgPool2D, LocalResponseNormalization

__all__ = [
    "inception_v1",
    "inception_module",
    "auxiliary_classifier",
    "inference_model",
    "compile_with_aux",
    "Inception",
    "TABLE1",
    "googlenet",
    "googlenet_bn",
]


class Inception(NamedTuple):
    """A row of Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj."""

    name: str
    n1x1: int
    n3x3_reduce: int
    n3x3: int
    n5x5_reduce: int
    n5x5: int
    pool_proj: int


POOL = "pool"
# Table 1; "pool" rows are the 3x3/2 max pools between the stages.
TABLE1 = (
    Inception("3a", 64, 96, 128, 16, 32, 32),
    Inception("3b", 128, 128, 192, 32, 96, 64),
    POOL,
    Inception("4a", 192, 96, 208, 16, 48, 64),
    Inception("4b", 160, 112, 224, 24, 64, 64),
    Inception("4c", 128, 128, 256, 24, 64, 64),
    Inception("4d", 112, 144, 288, 32, 64, 64),
    Inception("4e", 256, 160, 320, 32, 128, 128),
    POOL,
    Inception("5a", 256, 160, 320, 32, 128, 128),
    Inception("5b", 384, 192, 384, 48, 128, 128),
)
# Section 5: the auxiliary classifiers sit on the outputs of 4a and 4d.
AUX_AFTER = ("4a", "4d")
AUX_POOLS = ("paper", "adaptive")


def _conv_unit(x, filters: int, kernel: int, *, strides: int = 1, batch_norm: bool, name: str):
    """The paper's ReLU conv with bias, or torchvision's BasicConv2d (conv without bias, BN with
    eps 1e-3 and PyTorch's momentum 0.1, ReLU). Stride-2 convs pad explicitly, (k - 1) / 2 a side,
    as Caffe and torchvision do."""
    padding = "same"
    if strides > 1:
        x = layers.ZeroPadding2D((kernel - 1) // 2, name=f"{name}_pad")(x)
        padding = "valid"
    if batch_norm:
        return blocks.conv_bn_act(x, filters, kernel, strides, name=name, padding=padding, use_bias=False,
                                  bn_epsilon=1e-3, bn_momentum=0.9)
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation="relu", name=name)(x)


def _max_pool_ceil(x, size: int, strides: int, name: str):
    """Caffe's / torchvision's ceil-mode max pooling (the output sizes of Table 1): pad the end
    of each side so the last window fits. Zero padding is exact here because every pooled
    tensor is a ReLU output (>= 0) and each window keeps at least one real input."""
    pads = []
    for side in x.shape[1:3]:
        if side is None:
            raise ValueError("GoogLeNet needs a static input size (ceil-mode pooling)")
        out = -(-(side - size) // strides) + 1
        if (out - 1) * strides >= side:  # the last window must start inside the input
            out -= 1
        pads.append((0, max(0, (out - 1) * strides + size - side)))
    if any(p[1] for p in pads):
        x = layers.ZeroPadding2D(tuple(pads), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(size, strides=strides, name=name)(x)


def _lrn(x, name: str):
    # Caffe's bvlc_googlenet: local_size 5, alpha 1e-4 (divided by n in Caffe), beta 0.75, k 1;
    # the paper names the layer (Fig. 3) but gives no constants.
    return LocalResponseNormalization(5, k=1.0, alpha=1e-4 / 5, beta=0.75, name=name)(x)


def inception_module(x, spec: Inception, *, width_multiplier: float, batch_norm: bool, branch3_kernel: int):
    """Fig. 2(b): 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5 (``branch3_kernel``); 3x3/1 max pool
    -> 1x1 pool proj; the four outputs concatenated along the channels."""
    name = f"inception_{spec.name}"

    def f(n):
        return scaling.round_filters(n, width_multiplier)

    def unit(t, n, k, suffix):
        return _conv_unit(t, f(n), k, batch_norm=batch_norm, name=f"{name}_{suffix}")

    b1 = unit(x, spec.n1x1, 1, "1x1")
    b2 = unit(unit(x, spec.n3x3_reduce, 1, "3x3_reduce"), spec.n3x3, 3, "3x3")
    b3 = unit(unit(x, spec.n5x5_reduce, 1, "5x5_reduce"), spec.n5x5, branch3_kernel, "5x5")
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b4 = unit(b4, spec.pool_proj, 1, "pool_proj")
    return layers.Concatenate(axis=-1, name=f"{name}_output")([b1, b2, b3, b4])


def auxiliary_classifier(x, *, classes: int, classifier_activation, aux_pool: str, batch_norm: bool,
                         width_multiplier: float, dropout_rate: float, name: str):
    """Section 5: 5x5/3 average pool (4x4x512 on 4a), 1x1 conv with 128 filters + ReLU, FC 1024
    + ReLU, dropout 0.7, linear layer with softmax. torchvision replaces the pool by an adaptive
    4x4 average pool (same output at 224)."""
    if aux_pool == "paper":
        x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    else:
        x = AdaptiveAvgPool2D(4, name=f"{name}_pool")(x)
    x = _conv_unit(x, scaling.round_filters(128, width_multiplier), 1, batch_norm=batch_norm, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(scaling.round_filters(1024, width_multiplier), activation="relu", name=f"{name}_fc")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name=f"{name}_predictions")(x)


def _stem(x, *, width_multiplier: float, batch_norm: bool, lrn: bool):
    """Table 1's first rows (and Fig. 3): conv 7x7/2 (64), max pool 3x3/2, [LRN], conv 1x1 (64)
    then 3x3 (192), [LRN], max pool 3x3/2."""

    def f(n):
        return scaling.round_filters(n, width_multiplier)

    x = _conv_unit(x, f(64), 7, strides=2, batch_norm=batch_norm, name="conv1_7x7_s2")
    x = _max_pool_ceil(x, 3, 2, "pool1_3x3_s2")
    if lrn:
        x = _lrn(x, "pool1_norm1")
    x = _conv_unit(x, f(64), 1, batch_norm=batch_norm, name="conv2_3x3_reduce")
    x = _conv_unit(x, f(192), 3, batch_norm=batch_norm, name="conv2_3x3")
    if lrn:
        x = _lrn(x, "conv2_norm2")
    return _max_pool_ceil(x, 3, 2, "pool2_3x3_s2")


def inception_v1(
    table=TABLE1,
    batch_norm: bool = False,
    lrn: bool = True,
    branch3_kernel: int = 5,
    last_pool_size: int = 3,
    aux_pool: str = "paper",
    include_top: bool = True,
    input_shape=None,
    input_tensor=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    aux_logits: bool = False,
    width_multiplier: float = 1.0,
    dropout_rate: float = 0.4,
    aux_dropout_rate: float = 0.7,
    name: str = "inception_v1",
):
    """GoogLeNet from ``table`` (rows of :class:`Inception`, ``"pool"`` between stages).

    Options that make the variants: ``batch_norm`` (conv-BN-ReLU without bias), ``lrn``,
    ``branch3_kernel`` (5, or torchvision's 3), ``last_pool_size`` (the pool before 5a: 3, or
    torchvision's 2), ``aux_pool`` ("paper" 5x5/3 average pool, or "adaptive" 4x4).
    ``aux_logits=True`` (needs ``include_top``) returns [main, aux1, aux2]. ``width_multiplier``
    scales every conv and the auxiliary FC (multiples of 8). The 7x7/1 average pool of Table 1 is
    a global average pool (the same at 224, and it lets smaller inputs through)."""
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    width_multiplier = scaling.check_multiplier("width_multiplier", width_multiplier)
    dropout_rate = blocks.check_rate("dropout_rate", dropout_rate)
    aux_dropout_rate = blocks.check_rate("aux_dropout_rate", aux_dropout_rate)
    if not isinstance(aux_logits, bool):
        raise ValueError(f"aux_logits must be True or False, got {aux_logits!r}")
    if aux_logits and not include_top:
        raise ValueError("aux_logits=True needs include_top=True (the auxiliary heads are classifiers)")
    if aux_pool not in AUX_POOLS:
        raise ValueError(f"aux_pool must be one of {AUX_POOLS}, got {aux_pool!r}")
    if branch3_kernel not in (3, 5):
        raise ValueError(f"branch3_kernel must be 5 (the paper) or 3 (torchvision), got {branch3_kernel!r}")
    if last_pool_size not in (2, 3):
        raise ValueError(f"last_pool_size must be 3 (the paper) or 2 (torchvision), got {last_pool_size!r}")

    min_size = smallest_input(table, last_pool_size, aux_pool if aux_logits else None)
    img_input = blocks.image_input(input_shape, input_tensor, default_size=224, min_size=min_size, model_name=name)
    x = _stem(img_input, width_multiplier=width_multiplier, batch_norm=batch_norm, lrn=lrn)
    aux_outputs = []
    pools = 0
    for row in table:
        if row == POOL:
            pools += 1
            last = pools == sum(r == POOL for r in table)
            size = last_pool_size if last else 3
            x = _max_pool_ceil(x, size, 2, f"pool{pools + 2}_{size}x{size}_s2")
            continue
        x = inception_module(x, row, width_multiplier=width_multiplier, batch_norm=batch_norm,
                             branch3_kernel=branch3_kernel)
        if aux_logits and row.name in AUX_AFTER:
            aux_outputs.append(auxiliary_classifier(
                x, classes=classes, classifier_activation=classifier_activation, aux_pool=aux_pool,
                batch_norm=batch_norm, width_multiplier=width_multiplier, dropout_rate=aux_dropout_rate,
                name=f"aux{len(aux_outputs) + 1}"))
    x = blocks.classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    outputs = [x, *aux_outputs] if aux_logits else x
    return blocks.functional_model(img_input, input_tensor, outputs, name)


def inference_model(model: keras.Model) -> keras.Model:
    """The main-output model of a GoogLeNet built with ``aux_logits=True``, sharing its layers and
    weights: the auxiliary classifiers are training-time only (Section 5, "removed at inference
    time"). A model with one output is returned as it is."""
    if len(model.outputs) == 1:
        return model
    return keras.Model(model.inputs, model.get_layer("predictions").output, name=model.name)


def compile_with_aux(model: keras.Model, optimizer="sgd", loss="sparse_categorical_crossentropy",
                     aux_weight: float = 0.3, **kwargs) -> keras.Model:
    """Compile with the paper's loss: the main loss plus ``aux_weight`` (0.3, Section 5) times
    each auxiliary loss. Targets are given once per output: ``model.fit(x, [y, y, y])``."""
    n = len(model.outputs)
    model.compile(optimizer=optimizer, loss=[loss] * n, loss_weights=[1.0] + [float(aux_weight)] * (n - 1),
                  **kwargs)
    return model


def _ceil_pool_side(side: int, size: int, strides: int) -> int:
    out = -(-(side - size) // strides) + 1
    return out - 1 if (out - 1) * strides >= side else out


def smallest_input(table=TABLE1, last_pool_size: int = 3, aux_pool: str | None = None) -> int:
    """The smallest square input side the network builds with: each ceil-mode pool needs its first
    window to start inside the map (the convs are "same" or explicitly padded); with the paper's
    auxiliary heads, 4a must also be at least 5x5 for their 5x5/3 average pool."""
    pools = [3, 3] + [3] * (sum(r == POOL for r in table) - 1) + [last_pool_size]
    for n in range(1, 1024):
        side = (n + 6 - 7) // 2 + 1  # conv1: 7x7/2, pad 3
        sides = []
        for size in pools:
            side = _ceil_pool_side(side, size, 2)
            if side < 1:
                break
            sides.append(side)
        else:
            # sides[2] is the map of stage 4 (after the pools of the stem and stage 3).
            if aux_pool != "paper" or sides[2] >= 5:
                return n
    raise ValueError("no input up to 1023 pixels builds this table")


_PAPER = "Szegedy et al., Going Deeper with Convolutions"

googlenet = registry.variant(
    "googlenet", inception_v1,
    {"table": TABLE1, "batch_norm": False, "lrn": True, "branch3_kernel": 5, "last_pool_size": 3,
     "aux_pool": "paper", "dropout_rate": 0.4},
    family="googlenet", paper=_PAPER, year=2014, arxiv="1409.4842", default_size=224,
    min_size=smallest_input(TABLE1, 3),
    ref_params=6_998_552, params_kind="total",
    params_source="derived from the paper's Table 1 (biases, 5x5 branches, no BN, no auxiliary heads); "
                  "13,378,280 with both auxiliary heads",
    params_tolerance=0,
    ref_macs=1_582_671_872,
    macs_source="recounted from the layer shapes of the paper's Table 1 at 224x224 (closed form in "
                "tests/test_classics.py); the paper's own 'ops' column sums to 1,502M ('1.5 billion multiply-adds', "
                "Section 5) because it lists 34M for the 7x7/2 conv, whose shapes give 118M",
    macs_tolerance=0,
    knobs=("width_multiplier", "resolution"), test_size=32,
    notes="Paper-faithful GoogLeNet (Table 1, Fig. 3): biases, 5x5 branches, LRN, no BN, dropout 0.4; the 7x7/1 "
          "average pool is global average pooling (identical at 224). aux_logits=True adds the Section 5 heads "
          "(13,378,280 params, outputs [main, aux1, aux2], needs inputs >= 79 for their 5x5/3 pool); "
          "compile_with_aux weights the losses [1, 0.3, 0.3]; inference_model drops the heads. "
          "Ceil-mode max pools as in Caffe.",
)

googlenet_bn = registry.variant(
    "googlenet_bn", inception_v1,
    {"table": TABLE1, "batch_norm": True, "lrn": False, "branch3_kernel": 3, "last_pool_size": 2,
     "aux_pool": "adaptive", "dropout_rate": 0.2},
    family="googlenet", paper=_PAPER, year=2014, arxiv="1409.4842", default_size=224,
    min_size=smallest_input(TABLE1, 2),
    ref_params=6_624_904, params_kind="trainable",
    params_source="torchvision googlenet (IMAGENET1K_V1 metadata, without the auxiliary heads)",
    params_tolerance=0,
    ref_macs=1_498_000_000, macs_source="torchvision googlenet metadata: 1.498 GFLOPS (multiply-adds), 224x224",
    macs_tolerance=0.001,
    knobs=("width_multiplier", "resolution"), test_size=32,
    notes="torchvision's BatchNorm GoogLeNet: conv-BN-ReLU without biases, a 3x3 conv in the '5x5' branch, "
          "no LRN, 2x2 last max pool, dropout 0.2, adaptive 4x4 pool in the auxiliary heads.",
)

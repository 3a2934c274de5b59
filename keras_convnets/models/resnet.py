"""The ResNet family from one data-driven definition: ResNet v1 (He et al. 2015, arXiv:1512.03385),
pre-activation ResNet v2 (He et al. 2016, "Identity Mappings", arXiv:1603.05027) for ImageNet and
CIFAR, ResNeXt (Xie et al. 2016, arXiv:1611.05431) and the Squeeze-and-Excitation nets (Hu et al.
2017, arXiv:1709.01507).

Every variant is a dict of arguments for the one builder :func:`resnet` (timm's idea: ResNeXt is
ResNet with ``cardinality`` and ``base_width``, SE-ResNet is ResNet with ``se_reduction``). What
differs between the reference implementations is also data, because each reference fixes it
differently and the counts must match them:

* ``stride_in`` -- where a bottleneck's stride sits. The paper's Caffe models, keras.applications'
  ResNet50 and the SENet release put it on the first 1x1 ("1x1"); torchvision / ResNeXt put it
  on the 3x3 ("3x3"), which costs more MACs (4.09 G vs 3.86 G for ResNet-50) and is more accurate.
* ``downsample_at`` -- which unit of a stage strides: the first (the papers) or the last
  (keras.applications' ResNetV2, whose strided unit has a subsampled identity shortcut).
* ``conv_bias`` -- "all" (keras ResNet50, Caffe port), "none" (torchvision, timm) or
  "unless_bn" (keras ResNetV2: the convs that feed an addition or the stem of a pre-activation
  net carry a bias, those followed by their own BatchNorm do not).
* ``padding`` -- "same" (keras ResNet50's 3x3s) or "explicit": a symmetric ZeroPadding2D and a
  valid conv, as PyTorch pads (TF's "same" pads a strided conv asymmetrically) and as keras'
  ResNetV2 writes it. For the keras layouts the graph is mirrored layer for layer, because a
  Functional model orders its weights by graph depth: the same graph gives the same weight order,
  so keras.applications' weights load with ``set_weights``.
"""

from __future__ import annotations

import math

from keras import layers

from keras_convnets import blocks, registry, scaling
from keras_convnets.layers import DropPath, GroupConv2D

__all__ = [
    "resnet",
    "resnet_preact_cifar",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50_v2",
    "resnet101_v2",
    "resnet152_v2",
    "resnet164_preact",
    "resnet1001_preact",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "seresnet50",
    "seresnet101",
    "seresnet152",
    "seresnext50_32x4d",
    "senet154",
]

BLOCKS = ("basic", "bottleneck")
STEMS = ("7x7", "3x3_deep", "cifar")
# Output channels of a unit are planes x expansion (He et al. 2015, Table 1).
EXPANSION = {"basic": 1, "bottleneck": 4}


# ----------------------------------------------------------------------------- pieces
class _Conv:
    """How this network writes a conv: bias policy, padding style, BatchNorm settings."""

    def __init__(self, conv_bias: str, padding: str, bn_epsilon: float, bn_momentum: float):
        self.conv_bias, self.padding = conv_bias, padding
        self.bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)

    def bias(self, followed_by_bn: bool) -> bool:
        return self.conv_bias == "all" or (self.conv_bias == "unless_bn" and not followed_by_bn)

    def __call__(self, x, filters, kernel, stride=1, *, name, groups=1, bn=True, activation="relu"):
        """conv (-> BN -> activation when ``bn``), padded the network's way."""
        padding = "valid"
        if kernel > 1:
            if self.padding == "explicit":
                x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
            else:
                padding = "same"
        use_bias = self.bias(followed_by_bn=bn)
        if not bn:
            conv_cls = GroupConv2D if groups > 1 else layers.Conv2D
            return conv_cls(filters, kernel, strides=stride, padding=padding, use_bias=use_bias,
                            groups=groups, name=f"{name}_conv")(x)
        return blocks.conv_bn_act(x, filters, kernel, stride, name=name, padding=padding, use_bias=use_bias,
                                  groups=groups, activation=activation, **self.bn)

    def bn_relu(self, x, name):
        x = layers.BatchNormalization(axis=blocks.BN_AXIS, epsilon=self.bn["bn_epsilon"],
                                      momentum=self.bn["bn_momentum"], name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)


def residual_convs(block, planes, width, stride, stride_in, groups, entry_width):
    """The convs of the residual function F as (kernel, filters, stride, groups).

    basic: two 3x3 (He et al. 2015, Fig. 5 left). bottleneck: 1x1 reduce, 3x3 (grouped in
    ResNeXt: "aggregated transformations", Xie et al. Fig. 3c), 1x1 expand (Fig. 5 right).
    ``entry_width`` is the first 1x1's share of the 3x3's width (SENet-154's bottleneck feeds its
    grouped 3x3 with half its width; timm's ``SEBottleneck``)."""
    if block == "basic":
        return [(3, width, stride, 1), (3, planes, 1, 1)]
    s1, s3 = (stride, 1) if stride_in == "1x1" else (1, stride)
    entry = max(groups, round(width * entry_width / groups) * groups)  # the groups must divide it
    return [(1, entry, s1, 1), (3, width, s3, groups), (1, planes * EXPANSION[block], 1, 1)]


def shortcut(source, identity, filters, stride, projection, kernel, conv, *, name, preact):
    """Identity, or a projection ("option B", He et al. 2015 Sec. 3.3) of ``source`` where the
    shape changes.

    Post-activation nets project the unit's input with conv + BN; pre-activation nets project the
    shared BN-ReLU output with a bare conv (He et al. 2016, Sec. 4 / Fig. 5e; keras ResNetV2). A
    strided unit that keeps the width (keras ResNetV2's last unit of a stage) subsamples the
    identity."""
    if projection:
        return conv(source, filters, kernel, stride, name=f"{name}_0", bn=not preact, activation=None)
    if stride > 1:
        return layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(identity)
    return identity


def residual_unit(x, spec, conv, *, name):
    """One residual unit, x + F(x), post-activation (BN after each conv, ReLU after the addition,
    He et al. 2015) or pre-activation (BN-ReLU before every conv, nothing after the addition,
    He et al. 2016, Fig. 4e). SE recalibrates F(x) before the addition (Hu et al., Fig. 3);
    stochastic depth drops F(x) per sample (Huang et al. 2016)."""
    convs, preact = spec["convs"], spec["preact"]
    y = conv.bn_relu(x, f"{name}_preact") if preact else x
    short = shortcut(y, x, convs[-1][1], spec["stride"], spec["projection"], spec["shortcut_kernel"], conv,
                     name=name, preact=preact)
    for i, (kernel, filters, stride, groups) in enumerate(convs):
        last = i == len(convs) - 1
        # pre-act: conv-BN-ReLU, and the last conv bare (the next unit's BN-ReLU follows the sum);
        # post-act: conv-BN-ReLU, and the last one without ReLU (it comes after the sum).
        y = conv(y, filters, kernel, stride, groups=groups, name=f"{name}_{i + 1}", bn=not (preact and last),
                 activation=None if last else "relu")
    if spec["se_reduction"]:
        # timm / the SENet release: the reduced width is C // r (Hu et al. Sec. 3.2, r = 16).
        y = blocks.squeeze_excite(y, max(1, convs[-1][1] // spec["se_reduction"]), name=f"{name}_se")
    if spec["drop_path"] > 0:
        y = DropPath(spec["drop_path"], name=f"{name}_drop_path")(y)
    if preact:
        return layers.Add(name=f"{name}_out")([short, y])
    y = layers.Add(name=f"{name}_add")([short, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def stem(x, kind, filters, pool, preact, conv):
    """conv1 (+ pool1). "7x7": 7x7/2 conv and 3x3/2 max pool (He et al. 2015, Table 1).
    "3x3_deep": three 3x3 convs 64-64-filters, the first strided (SENet-154, Hu et al. Sec. 6.1 /
    Appendix). "cifar": one 3x3 conv, no pooling (He et al. 2015 Sec. 4.2; 2016 Sec. 4).
    A pre-activation net leaves BN-ReLU to the first unit (keras ResNetV2, He et al. 2016)."""
    if kind == "cifar":
        return conv(x, filters, 3, 1, name="conv1", bn=not preact)
    if kind == "3x3_deep":
        for i, f in enumerate((filters // 2, filters // 2, filters)):
            x = conv(x, f, 3, 2 if i == 0 else 1, name=f"conv1_{i + 1}")
    else:
        x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
        if preact:
            x = layers.Conv2D(filters, 7, strides=2, use_bias=conv.bias(False), name="conv1_conv")(x)
        else:
            # The 7x7's padding is explicit in every layout (keras and torchvision pad 3).
            x = blocks.conv_bn_act(x, filters, 7, 2, name="conv1", padding="valid",
                                   use_bias=conv.bias(True), **conv.bn)
    # "pad": one pixel each side (torchvision, keras). "ceil": the SENet release's Caffe pooling
    # (ceil_mode=True, no padding) = one pixel of padding on the bottom/right only, which is the
    # same as -inf padding here because the input follows a ReLU.
    pad = 1 if pool == "pad" else ((0, 1), (0, 1))
    x = layers.ZeroPadding2D(pad, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def unit_specs(*, block, repeats, stage_planes, stage_strides, downsample_at, stride_in, cardinality,
               base_width, entry_width, se_reduction, projection_kernel, preact, stem_filters,
               width_multiplier, depth_multiplier, drop_path_rate):
    """The table of units: one dict per residual unit, in order, with its name."""
    repeats = [scaling.round_repeats(r, depth_multiplier) for r in repeats]
    total = sum(repeats)
    in_filters = scaling.round_filters(stem_filters, width_multiplier)
    specs, index = [], 0
    for s, (n, planes, stage_stride) in enumerate(zip(repeats, stage_planes, stage_strides)):
        planes_w = scaling.round_filters(planes, width_multiplier)
        # ResNeXt's bottleneck width: cardinality x (base_width scaled with the stage), Xie et al.
        # Table 1 / torchvision: floor(planes * base_width / 64) * groups.
        width = math.floor(planes * base_width / 64) * cardinality
        # Channels stay a multiple of 8, and of the cardinality so the groups divide them.
        width = scaling.round_filters(width, width_multiplier, divisor=8 * cardinality // math.gcd(8, cardinality))
        for i in range(n):
            strided = i == (0 if downsample_at == "first" else n - 1)
            stride = stage_stride if strided else 1
            out_filters = planes_w * EXPANSION[block]
            specs.append(
                dict(
                    name=f"conv{s + 2}_block{i + 1}",
                    convs=residual_convs(block, planes_w, width, stride, stride_in, cardinality, entry_width),
                    stride=stride,
                    projection=in_filters != out_filters or (stride > 1 and downsample_at == "first"),
                    # SENet-154 projects with a 3x3 in the strided stages (timm downsample_kernel_size).
                    shortcut_kernel=projection_kernel if stage_stride > 1 else 1,
                    preact=preact,
                    se_reduction=se_reduction,
                    # Stochastic depth's linear decay rule (Huang et al. 2016, Sec. 3): p_l = l / L * p_L.
                    drop_path=drop_path_rate * (index + 1) / total,
                )
            )
            in_filters, index = out_filters, index + 1
    return specs


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def _int_tuple(name, values, n=None):
    values = tuple(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be a sequence of integers >= 1, got {values!r}")
    if n is not None and len(values) != n:
        raise ValueError(f"{name} needs {n} entries (one per stage), got {values!r}")
    return values


# ----------------------------------------------------------------------------- the builder
def resnet(
    *,
    repeats=(3, 4, 6, 3),
    block="bottleneck",
    preact=False,
    stage_planes=(64, 128, 256, 512),
    stage_strides=(1, 2, 2, 2),
    downsample_at="first",
    stride_in="3x3",
    cardinality=1,
    base_width=64,
    entry_width=1.0,
    se_reduction=0,
    stem_type="7x7",
    stem_filters=64,
    stem_pool="pad",
    projection_kernel=1,
    conv_bias="none",
    padding="explicit",
    bn_epsilon=1e-5,
    bn_momentum=0.9,
    default_size=224,
    min_size=32,
    width_multiplier=1.0,
    depth_multiplier=1.0,
    drop_path_rate=0.0,
    dropout_rate=0.0,
    include_top=True,
    input_shape=None,
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet",
):
    """A residual network described by data.

    Architecture: ``block`` ("basic" two 3x3, "bottleneck" 1x1-3x3-1x1), ``repeats`` units per
    stage with ``stage_planes`` (bottleneck outputs are 4x planes) and ``stage_strides``;
    ``preact`` for pre-activation units; ``cardinality`` groups of ``base_width`` channels in the
    3x3 (ResNeXt "32x4d" = 32, 4); ``se_reduction`` r > 0 adds squeeze-and-excitation; the stem
    (``stem_type`` "7x7" | "3x3_deep" | "cifar", ``stem_filters``, ``stem_pool``); layout details of
    the reference implementations (``stride_in``, ``downsample_at``, ``conv_bias``, ``padding``,
    ``projection_kernel``, BatchNorm ``bn_epsilon`` / ``bn_momentum``), see the module docstring.

    Scaling: ``width_multiplier`` scales every width (multiples of 8, and of the cardinality),
    ``depth_multiplier`` the units per stage (rounded up); ``drop_path_rate`` is the stochastic
    depth rate of the last unit (earlier units get linearly less), ``dropout_rate`` is dropout
    before the classifier. The rest are keras.applications' arguments.
    """
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    width_multiplier = scaling.check_multiplier("width_multiplier", width_multiplier)
    depth_multiplier = scaling.check_multiplier("depth_multiplier", depth_multiplier)
    drop_path_rate = blocks.check_rate("drop_path_rate", drop_path_rate)
    dropout_rate = blocks.check_rate("dropout_rate", dropout_rate)
    _choice("block", block, BLOCKS)
    _choice("stem_type", stem_type, STEMS)
    _choice("stem_pool", stem_pool, ("pad", "ceil"))
    _choice("downsample_at", downsample_at, ("first", "last"))
    _choice("stride_in", stride_in, ("1x1", "3x3"))
    _choice("conv_bias", conv_bias, ("all", "none", "unless_bn"))
    _choice("padding", padding, ("same", "explicit"))
    _choice("projection_kernel", projection_kernel, (1, 3))
    repeats = _int_tuple("repeats", repeats)
    stage_planes = _int_tuple("stage_planes", stage_planes, len(repeats))
    stage_strides = _int_tuple("stage_strides", stage_strides, len(repeats))
    blocks.check_positive_int("cardinality", cardinality)
    blocks.check_positive_int("base_width", base_width)
    blocks.check_positive_int("se_reduction", se_reduction, minimum=0)
    if block == "basic" and (cardinality != 1 or base_width != 64):
        raise ValueError("cardinality/base_width need block='bottleneck' (ResNeXt widens the bottleneck's 3x3)")
    if not 0 < entry_width <= 1:
        raise ValueError(f"entry_width must be in (0, 1], got {entry_width!r}")

    img_input = blocks.image_input(input_shape, input_tensor, default_size=default_size, min_size=min_size,
                                   model_name=name)
    conv = _Conv(conv_bias, padding, bn_epsilon, bn_momentum)
    x = stem(img_input, stem_type, scaling.round_filters(stem_filters, width_multiplier), stem_pool, preact, conv)
    specs = unit_specs(block=block, repeats=repeats, stage_planes=stage_planes, stage_strides=stage_strides,
                       downsample_at=downsample_at, stride_in=stride_in, cardinality=cardinality,
                       base_width=base_width, entry_width=entry_width, se_reduction=se_reduction,
                       projection_kernel=projection_kernel, preact=preact, stem_filters=stem_filters,
                       width_multiplier=width_multiplier, depth_multiplier=depth_multiplier,
                       drop_path_rate=drop_path_rate)
    for spec in specs:
        x = residual_unit(x, spec, conv, name=spec["name"])
    if preact:
        # The last unit's addition is not followed by BN-ReLU inside a unit (He et al. 2016, Fig. 4e).
        x = conv.bn_relu(x, "post")
    x = blocks.classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    return blocks.functional_model(img_input, input_tensor, x, name=name)


def resnet_preact_cifar(depth=164, **kwargs):
    """Pre-activation bottleneck ResNet for CIFAR of depth 9n + 2 (He et al. 2016, Sec. 4 /
    Table 2-3: 164 = 9 x 18 + 2, 1001 = 9 x 111 + 2): a 16-channel 3x3 stem, three stages of n
    bottleneck units with 64/128/256 outputs (width / 4 inside), strides 1/2/2 on the first unit's
    1x1 with a strided 1x1 projection that shares its BN-ReLU, a final BN-ReLU, global pooling."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 11 or (depth - 2) % 9:
        raise ValueError(f"depth must be 9n + 2 with n >= 1 (e.g. 164, 1001), got {depth!r}")
    n = (depth - 2) // 9
    config = dict(CIFAR_PREACT, repeats=(n, n, n), name=f"resnet{depth}_preact")
    return resnet(**{**config, **kwargs})


# ----------------------------------------------------------------------------- the variants
STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

# keras.applications.ResNet50/101/152: stride on the first 1x1, biases on every conv.
KERAS_V1 = dict(block="bottleneck", stride_in="1x1", conv_bias="all", padding="same", bn_epsilon=1.001e-5,
                bn_momentum=0.99)
# keras.applications.ResNet50V2/...: pre-activation, stride on the 3x3 of each stage's last unit.
KERAS_V2 = dict(block="bottleneck", preact=True, stage_strides=(2, 2, 2, 1), downsample_at="last",
                stride_in="3x3", conv_bias="unless_bn", padding="explicit", bn_epsilon=1.001e-5, bn_momentum=0.99)
# torchvision: stride on the 3x3, no conv biases, PyTorch's BatchNorm (eps 1e-5, momentum 0.1 =
# Keras 0.9).
TORCHVISION = dict(stride_in="3x3", conv_bias="none", padding="explicit", bn_epsilon=1e-5, bn_momentum=0.9)
# timm's legacy SENet (the port of the SENet release): Caffe-style stride on the 1x1 for SE-ResNet,
# ceil-mode max pool, SE with r = 16.
SENET = dict(TORCHVISION, block="bottleneck", stride_in="1x1", stem_pool="ceil", se_reduction=16)
CIFAR_PREACT = dict(block="bottleneck", preact=True, stage_planes=(16, 32, 64), stage_strides=(1, 2, 2),
                    downsample_at="first", stride_in="1x1", stem_type="cifar", stem_filters=16,
                    conv_bias="unless_bn", padding="same", bn_epsilon=1e-5, bn_momentum=0.9,
                    default_size=32, min_size=4, classes=10)

KNOBS = ("width_multiplier", "depth_multiplier", "resolution")
_HE2015 = dict(family="resnet", paper="Deep Residual Learning for Image Recognition", year=2015,
               arxiv="1512.03385", default_size=224, min_size=32, knobs=KNOBS, test_size=32)
_HE2016 = dict(_HE2015, paper="Identity Mappings in Deep Residual Networks", year=2016, arxiv="1603.05027")
_XIE = dict(_HE2015, paper="Aggregated Residual Transformations for Deep Neural Networks", year=2016,
            arxiv="1611.05431")
_HU = dict(_HE2015, paper="Squeeze-and-Excitation Networks", year=2017, arxiv="1709.01507")
_TV = "torchvision ResNet_Weights metadata (num_params / _ops)"

resnet18 = registry.variant(
    "resnet18", resnet, dict(TORCHVISION, block="basic", repeats=STAGES[18]), **_HE2015,
    ref_params=11_689_512, params_kind="trainable", params_source=f"torchvision resnet18 ({_TV})",
    ref_macs=1_814_000_000, macs_source="torchvision resnet18: 1.814 GFLOPS (= MACs)", macs_tolerance=0.0003,
    notes="torchvision layout: basic blocks, no conv bias, projection shortcuts only where the shape changes.")
resnet34 = registry.variant(
    "resnet34", resnet, dict(TORCHVISION, block="basic", repeats=STAGES[34]), **_HE2015,
    ref_params=21_797_672, params_kind="trainable", params_source=f"torchvision resnet34 ({_TV})",
    ref_macs=3_664_000_000, macs_source="torchvision resnet34: 3.664 GFLOPS (= MACs)", macs_tolerance=0.00015,
    notes="torchvision layout: basic blocks, no conv bias, projection shortcuts only where the shape changes.")
resnet50 = registry.variant(
    "resnet50", resnet, dict(KERAS_V1, repeats=STAGES[50]), **_HE2015,
    ref_params=25_636_712, params_source="keras.applications.ResNet50 count_params()",
    ref_macs=3_857_973_248, macs_source="keras.applications.ResNet50, conv + dense MACs counted here",
    notes="keras.applications layout (stride on the first 1x1, conv biases); its weights load with set_weights.")
resnet101 = registry.variant(
    "resnet101", resnet, dict(KERAS_V1, repeats=STAGES[101]), **_HE2015,
    ref_params=44_707_176, params_source="keras.applications.ResNet101 count_params()",
    ref_macs=7_570_194_432, macs_source="keras.applications.ResNet101, conv + dense MACs counted here",
    notes="keras.applications layout (stride on the first 1x1, conv biases); its weights load with set_weights.")
resnet152 = registry.variant(
    "resnet152", resnet, dict(KERAS_V1, repeats=STAGES[152]), **_HE2015,
    ref_params=60_419_944, params_source="keras.applications.ResNet152 count_params()",
    ref_macs=11_282_415_616, macs_source="keras.applications.ResNet152, conv + dense MACs counted here",
    notes="keras.applications layout (stride on the first 1x1, conv biases); its weights load with set_weights.")
resnet50_v2 = registry.variant(
    "resnet50_v2", resnet, dict(KERAS_V2, repeats=STAGES[50]), **_HE2016,
    ref_params=25_613_800, params_source="keras.applications.ResNet50V2 count_params()",
    ref_macs=3_482_255_360, macs_source="keras.applications.ResNet50V2, conv + dense MACs counted here",
    notes="keras.applications' pre-activation layout (stride on the 3x3 of each stage's last unit).")
resnet101_v2 = registry.variant(
    "resnet101_v2", resnet, dict(KERAS_V2, repeats=STAGES[101]), **_HE2016,
    ref_params=44_675_560, params_source="keras.applications.ResNet101V2 count_params()",
    ref_macs=7_194_476_544, macs_source="keras.applications.ResNet101V2, conv + dense MACs counted here",
    notes="keras.applications' pre-activation layout (stride on the 3x3 of each stage's last unit).")
resnet152_v2 = registry.variant(
    "resnet152_v2", resnet, dict(KERAS_V2, repeats=STAGES[152]), **_HE2016,
    ref_params=60_380_648, params_source="keras.applications.ResNet152V2 count_params()",
    ref_macs=10_906_697_728, macs_source="keras.applications.ResNet152V2, conv + dense MACs counted here",
    notes="keras.applications' pre-activation layout (stride on the 3x3 of each stage's last unit).")

_CIFAR_NOTE = ("CIFAR pre-activation bottleneck ResNet (He et al. 2016, Sec. 4, Table 2/3). The paper "
               "gives no MACs: the reference MACs are recounted arithmetically from the paper's "
               "architecture (tests/test_resnet.py). min_size 4 = the network's total stride, as "
               "keras.applications' ResNet minimum 32 is its total stride (the feature map stays >= 1x1).")
resnet164_preact = registry.variant(
    "resnet164_preact", resnet_preact_cifar, {"depth": 164}, **dict(
        _HE2016, default_size=32, min_size=4, test_size=32, default_classes=10),
    ref_params=1_700_000, params_kind="weights", params_tolerance=0.05 / 1.7,
    params_source="paper, Table 2/3: 1.7M (conv + dense weights; tolerance = its rounding to 0.1M)",
    ref_macs=244_500_992, macs_source="recount of the paper's architecture at 32x32 (not in the paper)",
    notes=_CIFAR_NOTE + " Ours: 1,679,024 conv + dense weights.")
resnet1001_preact = registry.variant(
    "resnet1001_preact", resnet_preact_cifar, {"depth": 1001}, **dict(
        _HE2016, default_size=32, min_size=4, test_size=32, default_classes=10),
    ref_params=10_200_000, params_kind="weights", params_tolerance=0.05 / 10.2,
    params_source="paper, Table 2/3: 10.2M (conv + dense weights; tolerance = its rounding to 0.1M)",
    ref_macs=1_487_849_984, macs_source="recount of the paper's architecture at 32x32 (not in the paper)",
    notes=_CIFAR_NOTE + " Ours: 10,178,480 conv + dense weights; 333 units.")

# ResNeXt: torchvision's layout (stride on the grouped 3x3, no biases).
resnext50_32x4d = registry.variant(
    "resnext50_32x4d", resnet, dict(TORCHVISION, repeats=STAGES[50], cardinality=32, base_width=4), **_XIE,
    ref_params=25_028_904, params_kind="trainable", params_source=f"torchvision resnext50_32x4d ({_TV})",
    ref_macs=4_230_000_000, macs_source="torchvision resnext50_32x4d: 4.23 GFLOPS (= MACs)",
    macs_tolerance=0.005 / 4.23,
    notes="Grouped 3x3 as one GroupConv2D kernel (the layout of Conv2D(groups=32)), fast on TF's CPU.")
resnext101_32x8d = registry.variant(
    "resnext101_32x8d", resnet, dict(TORCHVISION, repeats=STAGES[101], cardinality=32, base_width=8), **_XIE,
    ref_params=88_791_336, params_kind="trainable", params_source=f"torchvision resnext101_32x8d ({_TV})",
    ref_macs=16_410_000_000, macs_source="torchvision resnext101_32x8d: 16.41 GFLOPS (= MACs)",
    macs_tolerance=0.005 / 16.41,
    notes="Grouped 3x3 as one GroupConv2D kernel (the layout of Conv2D(groups=32)), fast on TF's CPU.")

# SE nets: timm's legacy SENet layout (the port of the authors' Caffe release).
_SE_MACS = ("conv + dense MACs recounted arithmetically from timm's legacy SENet layout "
            "(tests/test_resnet.py); the SENet paper's GFLOPs also count the SE block's element-wise work, "
            "so they are slightly higher")
_SE_NOTE = ("timm legacy layout: SE-ResNet strides on the first 1x1 like the Caffe release (timm's docstring; "
            "it is what gives the paper's ~3.87 G for SE-ResNet-50, the 3x3 stride would give 4.09 G), "
            "ceil-mode max pool, SE (r = 16, FCs with bias) on the residual branch before the addition. "
            "timm's SENet class defaults to dropout 0.2 for every legacy model; the release uses it only "
            "for SENet-154, as here.")
seresnet50 = registry.variant(
    "seresnet50", resnet, dict(SENET, repeats=STAGES[50]), **_HU,
    ref_params=28_088_024, params_kind="trainable", params_source="timm legacy_seresnet50 / seresnet50",
    ref_macs=3_870_000_000, macs_tolerance=0.003,
    macs_source="paper, Table 2: 3.87 GFLOPs (= MACs); tolerance 0.3%: see notes",
    notes=_SE_NOTE + " MACs: conv + dense give 3,860,488,192; the paper's 3.87 G is ResNet-50's 3.86 G + 0.26% "
          "(its Sec. 4 text), which includes SE's pooling and channel-wise scaling, not counted here.")
seresnet101 = registry.variant(
    "seresnet101", resnet, dict(SENET, repeats=STAGES[101]), **_HU,
    ref_params=49_326_872, params_kind="trainable",
    params_source="timm legacy_seresnet101, trainable params recounted from timm's senet.py layout",
    ref_macs=7_574_937_600, macs_source=_SE_MACS, notes=_SE_NOTE)
seresnet152 = registry.variant(
    "seresnet152", resnet, dict(SENET, repeats=STAGES[152]), **_HU,
    ref_params=66_821_848, params_kind="trainable",
    params_source="timm legacy_seresnet152, trainable params recounted from timm's senet.py layout",
    ref_macs=11_288_993_792, macs_source=_SE_MACS, notes=_SE_NOTE)
seresnext50_32x4d = registry.variant(
    "seresnext50_32x4d", resnet,
    dict(SENET, repeats=STAGES[50], stride_in="3x3", cardinality=32, base_width=4), **_HU,
    ref_params=27_559_896, params_kind="trainable", params_source="timm seresnext50_32x4d (legacy layout equal)",
    ref_macs=4_232_994_816, macs_source=_SE_MACS,
    notes=_SE_NOTE + " SE-ResNeXt strides on the grouped 3x3 (timm's SEResNeXtBottleneck).")
senet154 = registry.variant(
    "senet154", resnet,
    dict(SENET, repeats=STAGES[152], stride_in="3x3", cardinality=64, base_width=4, entry_width=0.5,
         stem_type="3x3_deep", stem_filters=128, projection_kernel=3, dropout_rate=0.2), **_HU,
    ref_params=115_088_984, params_kind="trainable", params_source="timm legacy_senet154",
    ref_macs=20_688_363_520, macs_source=_SE_MACS,
    notes=_SE_NOTE + " SENet-154 (Hu et al. Sec. 6.1 / Appendix): 3-conv stem 64-64-128, 64 groups, the 1x1 "
          "before the grouped 3x3 at half its width, 3x3 projection shortcuts in the strided stages, "
          "dropout 0.2.")

"""One network builder for every genotype: stem, three stacks of cells, head.

The macro-architecture of NASNet (Zoph et al. 2018, arXiv:1707.07012, Sec. 3 and Fig. 2),
PNASNet (Liu et al. 2018, arXiv:1712.00559, Fig. 1) and AmoebaNet (Real et al. 2019,
arXiv:1802.01548, Fig. 3), as TF-slim (``nets/nasnet``, ``nets/pnasnet``) and the TPU AmoebaNet
code build it:

* the stem: ImageNet, a 3x3/2 VALID conv then two strided cells at F/4 and F/2 filters; or CIFAR,
  a 3x3 conv at ``stem_multiplier`` x F;
* three stacks of N cells at F, 2F, 4F filters. With two cells (NASNet, AmoebaNet) a reduction
  cell sits between the stacks (3N + 2 cells); with one shared cell (PNASNet) the first cell of
  the second and third stacks is that cell strided (3N cells);
* ReLU, global average pooling, dropout, the classifier; optionally the auxiliary head on the
  output of the second stack.
"""

from __future__ import annotations

from typing import Any

from keras import layers

from keras_convnets import blocks
from keras_convnets.blocks import BN_AXIS
from keras_convnets.nas.genotype import Genotype, state_name
from keras_convnets.nas.layers import ScheduledDropPath, cell_keep_prob
from keras_convnets.nas.ops import (
    PADDING_STYLES,
    OpContext,
    apply_op,
    batch_norm,
    factorized_reduction,
    relu_conv_bn,
)
from keras_convnets.scaling import check_multiplier, round_filters, round_repeats

__all__ = ["nas_network", "STEMS"]

STEMS = ("imagenet", "cifar")
# Input sizes by stem: (default, minimum). ImageNet: keras.applications' NASNet minimum (32 px:
# the 3x3/2 VALID stem conv and four halvings leave 1x1). CIFAR: SAME-padded halvings never
# reach zero, so any side >= 1 builds.
_STEM_SIZES = {"imagenet": (224, 32), "cifar": (32, 1)}


def _check_genotype(genotype) -> Genotype:
    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, str):
        return Genotype.from_string(genotype)
    if isinstance(genotype, dict):
        return Genotype.from_dict(genotype)
    raise ValueError(
        f"genotype must be a Genotype, its text form or its dict form, got {type(genotype).__name__}"
    )


class _Cells:
    """Builds the cells of one network in order, numbering them for the drop-path schedule."""

    def __init__(self, genotype: Genotype, ctx: OpContext, *, drop_path_keep_prob: float, total_cells: int,
                 total_training_steps: int | None):
        self.genotype = genotype
        self.ctx = ctx
        self.keep_prob = drop_path_keep_prob
        self.total_cells = total_cells
        self.total_training_steps = total_training_steps
        self.index = 0
        # Downsampling level of every tensor a cell returned (or the stem), so that h1 is matched
        # to h0 without reading spatial shapes, which may be unknown (input_shape with None).
        self.level: dict[int, int] = {}

    def __call__(self, x, prev, kind: str, filters: int, strides: int, *, name: str):
        """One cell (slim ``NasNetABaseCell.__call__``): adjust the inputs, five blocks, concat."""
        blocks_, concat = self.genotype.cell(kind)
        keep = cell_keep_prob(self.keep_prob, self.index, self.total_cells) if self.keep_prob < 1.0 else 1.0
        self.index += 1
        level = self.level[id(x)]
        if prev is None:  # the first cell after the stem takes the stem's output as it is
            h1 = x
        elif self.level[id(prev)] != level:
            h1 = _reduce_previous(prev, filters, name=f"{name}_h1")
        else:
            h1 = _adjust_previous(prev, filters, name=f"{name}_h1")
        h0 = relu_conv_bn(x, filters, 1, name=f"{name}_h0")
        states = [h0, h1]
        # Which states are at the cell's output resolution: blocks always are (an op on h0/h1
        # takes the stride), h0 and h1 only when the cell does not stride.
        reduced = [strides == 1, strides == 1]
        for b, block in enumerate(blocks_):
            k = b + 2
            branches = []
            for side, (op, i) in zip(("left", "right"), block):
                y = apply_op(states[i], op, filters, strides if i < 2 else 1, self.ctx,
                             name=f"{name}_{state_name(k)}_{side}_{op}")
                if op != "id" and keep < 1.0:  # slim drops every path but the identity
                    y = ScheduledDropPath(keep, self.total_training_steps,
                                          name=f"{name}_{state_name(k)}_{side}_drop_path")(y)
                branches.append(y)
            states.append(layers.Add(name=f"{name}_{state_name(k)}")(branches))
            reduced.append(True)
        out = _combine(states, reduced, concat, filters, name=name)
        self.level[id(out)] = level + (strides > 1)
        return out


# h1 is the output two cells back matched to h0's resolution and the cell's width (slim
# ``_reduce_prev_layer``; keras.applications ``_adjust_block``).
def _reduce_previous(prev, filters: int, *, name: str):
    prev = layers.Activation("relu", name=f"{name}_relu")(prev)
    return factorized_reduction(prev, filters, 2, name=f"{name}_reduce")


def _adjust_previous(prev, filters: int, *, name: str):
    if prev.shape[-1] != filters:
        return relu_conv_bn(prev, filters, 1, name=f"{name}_1x1")
    return prev


def _combine(states, reduced, concat, filters, *, name):
    """Concatenate the cell's output states, bringing any that is not at the output's resolution
    or width there first (slim ``_combine_unused_states``)."""
    out = []
    for c in concat:
        s = states[c]
        if not reduced[c] or s.shape[-1] != filters:
            s = factorized_reduction(s, filters, 1 if reduced[c] else 2, name=f"{name}_{state_name(c)}_out")
        out.append(s)
    if len(out) == 1:
        return out[0]
    return layers.Concatenate(axis=BN_AXIS, name=f"{name}_concat")(out)


def _aux_head(x, classes: int, classifier_activation, *, name: str = "aux"):
    """The auxiliary classifier on the second stack's output (slim ``_build_aux_head``): ReLU,
    5x5/3 VALID average pool, 1x1 conv to 128, BN-ReLU, a conv over the whole map to 768, BN-ReLU,
    the classifier."""
    side = x.shape[1:3]
    if None in side or min(side) < 5:
        raise ValueError(
            f"aux_head needs a fixed input size whose second-stack map is at least 5x5 (got {side}); "
            "give a larger fixed input_shape or aux_head=False"
        )
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.AveragePooling2D(5, strides=3, padding="valid", name=f"{name}_pool")(x)
    x = layers.Conv2D(128, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_proj_conv")(x)
    x = batch_norm(x, f"{name}_proj_bn")
    x = layers.Activation("relu", name=f"{name}_proj_relu")(x)
    x = layers.Conv2D(768, tuple(x.shape[1:3]), padding="valid", use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_conv")(x)
    x = batch_norm(x, f"{name}_bn")
    x = layers.Activation("relu", name=f"{name}_conv_relu")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    return layers.Dense(classes, activation=classifier_activation, name=f"{name}_predictions")(x)


def nas_network(
    genotype: Genotype | str | dict,
    num_cells: int = 6,
    filters: int = 32,
    *,
    stem: str = "cifar",
    stem_multiplier: float = 3.0,
    filter_scaling_rate: float = 2.0,
    skip_reduction: bool = False,
    padding_style: str = "same",
    conv_bottleneck: bool = True,
    drop_path_keep_prob: float = 1.0,
    total_training_steps: int | None = None,
    aux_head: bool = False,
    dropout_rate: float = 0.0,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    include_top: bool = True,
    input_shape: tuple | None = None,
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    default_size: int | None = None,
    min_size: int | None = None,
    name: str = "nas_network",
):
    """A cell network built from ``genotype`` (a :class:`Genotype`, its text or dict form).

    Args:
        num_cells: N, the cells per stack (``N @ P`` in NASNet's notation, where the penultimate
            width P = 24 F for NASNet-A's 6-state concat).
        filters: F, the cells' width in the first stack; doubled (``filter_scaling_rate``) at
            each reduction and quartered/halved in the ImageNet stem cells.
        stem: ``"imagenet"`` (3x3/2 conv of 32 x ``stem_multiplier`` filters, then two strided
            cells) or ``"cifar"`` (3x3 conv of F x ``stem_multiplier`` filters).
        skip_reduction: the first cell after a reduction cell takes, as h1, the cell before the
            reduction's input instead of the reduction's input (slim
            ``skip_reduction_layer_input``: True in NASNet-A Large, False in Mobile and CIFAR).
            Only for genotypes with a separate reduction cell.
        padding_style: ``"same"`` (TF-slim) or ``"keras"`` (keras.applications' NASNet:
            explicit zero padding in strided ops; pools then see the zeros).
        conv_bottleneck: conv ops in a 1x1 bottleneck as in the TPU AmoebaNet code.
        drop_path_keep_prob: keep probability of the last cell's paths; earlier cells keep more
            (scaled with cell depth) and, with ``total_training_steps``, the drop rate ramps up
            linearly over training (slim's ScheduledDropPath). 1.0 adds no drop-path layers.
        aux_head: add the auxiliary classifier on the second stack's output as a second model
            output ``[predictions, aux_predictions]`` (needs ``include_top``).
        dropout_rate: dropout before the classifier (slim ``1 - dense_dropout_keep_prob``).
        width_multiplier, depth_multiplier: scale F (rounded to a multiple of 8) and N (rounded
            up).
        default_size, min_size: input sides; by default from the stem (ImageNet 224/32, CIFAR 32/1).

    The keras.applications arguments (``include_top``, ``input_shape``, ``input_tensor``,
    ``pooling``, ``classes``, ``classifier_activation``, ``name``) behave as there.
    """
    genotype = _check_genotype(genotype)
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    num_cells = blocks.check_positive_int("num_cells", num_cells)
    filters = blocks.check_positive_int("filters", filters)
    width_multiplier = check_multiplier("width_multiplier", width_multiplier)
    depth_multiplier = check_multiplier("depth_multiplier", depth_multiplier)
    stem_multiplier = check_multiplier("stem_multiplier", stem_multiplier)
    filter_scaling_rate = check_multiplier("filter_scaling_rate", filter_scaling_rate)
    dropout_rate = blocks.check_rate("dropout_rate", dropout_rate)
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    if padding_style not in PADDING_STYLES:
        raise ValueError(f"padding_style must be one of {PADDING_STYLES}, got {padding_style!r}")
    try:
        drop_path_keep_prob = float(drop_path_keep_prob)
    except (TypeError, ValueError):
        raise ValueError(f"drop_path_keep_prob must be a number in (0, 1], got {drop_path_keep_prob!r}") from None
    if not 0.0 < drop_path_keep_prob <= 1.0:
        raise ValueError(f"drop_path_keep_prob must be in (0, 1], got {drop_path_keep_prob!r}")
    if total_training_steps is not None:
        total_training_steps = blocks.check_positive_int("total_training_steps", total_training_steps)
    for flag, value in (("skip_reduction", skip_reduction), ("aux_head", aux_head), ("conv_bottleneck", conv_bottleneck)):
        if not isinstance(value, bool):
            raise ValueError(f"{flag} must be True or False, got {value!r}")
    if aux_head and not include_top:
        raise ValueError("aux_head=True needs include_top=True (the auxiliary head is a second classifier)")
    if skip_reduction and genotype.shared_cell:
        raise ValueError("skip_reduction needs a genotype with a separate reduction cell (PNASNet-style "
                         "single-cell networks have no reduction cell to skip)")

    d_size, m_size = _STEM_SIZES[stem]
    default_size = d_size if default_size is None else default_size
    min_size = m_size if min_size is None else min_size
    img_input = blocks.image_input(input_shape, input_tensor, default_size=default_size, min_size=min_size,
                                   model_name=name)

    F = round_filters(filters, width_multiplier)
    N = round_repeats(num_cells, depth_multiplier)
    shared = genotype.shared_cell
    num_stem_cells = 2 if stem == "imagenet" else 0
    total_cells = num_stem_cells + (3 * N if shared else 3 * N + 2)
    cell = _Cells(genotype, OpContext(padding_style=padding_style, conv_bottleneck=conv_bottleneck),
                  drop_path_keep_prob=drop_path_keep_prob, total_cells=total_cells,
                  total_training_steps=total_training_steps)

    # ---- stem
    if stem == "imagenet":
        x = layers.Conv2D(round_filters(int(32 * stem_multiplier), width_multiplier), 3, strides=2, padding="valid",
                          use_bias=False, kernel_initializer="he_normal", name="stem_conv")(img_input)
    else:
        x = layers.Conv2D(int(F * stem_multiplier), 3, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name="stem_conv")(img_input)
    x = batch_norm(x, "stem_bn")
    cell.level[id(x)] = 0
    outputs = [None, x]  # slim's cell_outputs: the cells' outputs, h1 of a cell is outputs[-2]
    for i in range(num_stem_cells):
        scale = filter_scaling_rate ** (i - num_stem_cells)
        x = cell(x, outputs[-2], "reduction", int(F * scale), 2, name=f"stem_cell_{i}")
        outputs.append(x)

    # ---- three stacks
    aux = None
    scale = 1.0
    normal_index = reduction_index = 0
    for stack in range(3):
        for j in range(N):
            reduction = stack > 0 and j == 0
            if reduction:
                scale *= filter_scaling_rate
            width = int(F * scale)
            if shared:
                # PNASNet: the first cell of stacks 2 and 3 is the cell itself, strided.
                x = cell(x, outputs[-2], "normal", width, 2 if reduction else 1, name=f"cell_{normal_index}")
                normal_index += 1
                outputs.append(x)
                continue
            prev = outputs[-2]
            if reduction:
                x = cell(x, outputs[-2], "reduction", width, 2, name=f"reduction_cell_{reduction_index}")
                reduction_index += 1
                outputs.append(x)
                if not skip_reduction:
                    prev = outputs[-2]
            x = cell(x, prev, "normal", width, 1, name=f"cell_{normal_index}")
            normal_index += 1
            outputs.append(x)
        if stack == 1 and aux_head:
            aux = _aux_head(x, classes, classifier_activation)

    # ---- head
    x = layers.Activation("relu", name="final_relu")(x)
    x = blocks.classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation, dropout_rate=dropout_rate)
    outs = [x, aux] if aux is not None else x
    return blocks.functional_model(img_input, input_tensor, outs, name=name)

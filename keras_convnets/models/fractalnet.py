"""FractalNet (Larsson et al. 2016, "FractalNet: Ultra-Deep Neural Networks without Residuals",
arXiv:1605.07648) for CIFAR, with drop-path and single-column extraction.

The expansion rule (§2, Fig. 1): ``f_1(z) = conv(z)``, ``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``,
join = element-wise mean, the joins that meet at one depth merged into one. ``B`` blocks ``f_C``,
each followed by a 2x2 max-pool, give depth ``B * 2^(C-1)``: 20 layers for C = 3, 40 for C = 4
(B = 5 on CIFAR, widths 64, 128, 256, 512, 512, §4).

Columns are numbered 1 (shallowest: one conv a block) to C (deepest: 2^(C-1) convs a block); conv
``i`` of column ``k`` in block ``b`` is ``block{b}_col{k}_conv{i}`` in the fractal net and in the
single-column net ``fractalnet(column=k)``, so a trained fractal net's weights load into any of its
columns by name (:func:`extract_column`): the paper's anytime property (§4.3, Table 4).

Drop-path (§3): each :class:`~keras_convnets.layers.FractalJoin` drops inputs locally (p = 0.15,
at least one kept) or, on a global batch, passes only the column that one
:class:`~keras_convnets.layers.FractalPathDraw` layer drew for the whole network; local and global
batches are mixed 50/50. Dropout per block (0, 10, 20, 30, 40 %) sits after each conv, before BN, as
in the authors' Caffe prototxt generator.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Sequence

from keras import layers

from keras_convnets import blocks as common
from keras_convnets import registry
from keras_convnets.layers import FractalJoin, FractalPathDraw
from keras_convnets.scaling import check_multiplier, round_filters, round_repeats

__all__ = [
    "FRACTALNET_WIDTHS", "Block", "fractal_conv", "fractal_block", "fractalnet", "fractalnet20", "fractalnet40",
    "extract_column", "load_column_weights", "set_forced_column", "fractal_param_count", "fractal_macs",
]

# §4: CIFAR widths of the five blocks.
FRACTALNET_WIDTHS = (64, 128, 256, 512, 512)
KERNEL = 3


def _column_steps(columns: int, step: int) -> list[int]:
    """Columns whose conv ends at ``step`` (1-based) of a block's 2^(C-1) steps: column k has a conv
    every 2^(C-k) steps, so the deepest works at every step and column 1 only at the last."""
    return [k for k in range(1, columns + 1) if step % 2 ** (columns - k) == 0]


def fractal_conv(x, filters: int, dropout_rate: float, *, name: str, seed: int | None = None):
    """The base case f_1 (§2): 3x3 conv -> dropout (if any) -> BN -> ReLU. Dropout before BN follows
    the authors' Caffe generator (gustavla/fractalnet); the bias is left out since BN follows."""
    x = layers.Conv2D(filters, KERNEL, padding="same", use_bias=False, name=f"{name}_conv")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, seed=seed, name=f"{name}_dropout")(x)
    x = layers.BatchNormalization(axis=common.BN_AXIS, epsilon=1e-3, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def fractal_block(x, *, block: int, columns: int, filters: int, dropout_rate: float, draw=None,
                  drop_path_rate: float = 0.15, only_column: int | None = None, seed: int | None = None):
    """f_C on ``x`` (Fig. 1), unrolled depth step by depth step; with ``only_column=k`` just column
    k's chain (same layer names, no joins)."""
    live = [only_column] if only_column is not None else list(range(1, columns + 1))
    current = {k: x for k in live}  # what each column's next conv reads
    convs = {k: 0 for k in live}
    joins = 0
    for step in range(1, 2 ** (columns - 1) + 1):
        ending = [k for k in _column_steps(columns, step) if k in current]
        for k in ending:
            convs[k] += 1
            conv_seed = None if seed is None else seed + 1000 * block + 100 * k + convs[k]
            current[k] = fractal_conv(current[k], filters, dropout_rate,
                                      name=f"block{block}_col{k}_conv{convs[k]}", seed=conv_seed)
        if len(ending) > 1:
            joins += 1
            join_seed = None if seed is None else seed + 1000 * block + joins
            inputs = [current[k] for k in ending] + ([draw] if draw is not None else [])
            joined = FractalJoin(ending, drop_rate=drop_path_rate, seed=join_seed,
                                 name=f"block{block}_join{joins}")(inputs)
            current.update({k: joined for k in ending})
    return current[live[0]]


class Block(NamedTuple):
    """One fractal block of the plan: its width, its dropout rate, and whether a 2x2 max-pool
    follows it (the last block of each pooled stage)."""

    width: int
    dropout_rate: float
    pool: bool


def _stage_sizes(blocks: int, stages: int) -> list[int]:
    """``blocks`` spread as evenly as possible over ``stages`` (each >= 1), extras towards the end."""
    return [(s + 1) * blocks // stages - s * blocks // stages for s in range(stages)]


def _block_plan(columns, blocks, widths, width_multiplier, depth_multiplier, dropout_rate) -> tuple[Block, ...]:
    """The validated blocks after the scaling knobs.

    The paper has one block per pooled stage (B = 5 stages on CIFAR, 32 -> 1). Depth scales the
    number of blocks, round_repeats(B x depth), spread over the B stages (so the input side the
    pools need does not change): 6 blocks put two in the last stage, 10 two in every stage.
    Fewer blocks than stages (depth < 1) drop the last stages."""
    common.check_positive_int("columns", columns)
    if isinstance(widths, int) and not isinstance(widths, bool):
        widths = (widths,) * (blocks if blocks is not None else len(FRACTALNET_WIDTHS))
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(f"widths must be an integer or a sequence of integers, got {widths!r}") from None
    for w in widths:
        common.check_positive_int("each of widths", w)
    if blocks is None:
        blocks = len(widths)
    common.check_positive_int("blocks", blocks)
    if len(widths) != blocks:
        raise ValueError(f"widths must give one width per block: {blocks} blocks, got {len(widths)} widths {widths}")
    width_multiplier = check_multiplier("width_multiplier", width_multiplier)
    depth_multiplier = check_multiplier("depth_multiplier", depth_multiplier)
    n = round_repeats(blocks, depth_multiplier)
    stages = min(n, blocks)
    stage_widths = []
    pools = []
    for size, w in zip(_stage_sizes(n, stages), widths):
        stage_widths += [round_filters(w, width_multiplier)] * size
        pools += [False] * (size - 1) + [True]
    if isinstance(dropout_rate, (int, float)) and not isinstance(dropout_rate, bool):
        top = common.check_rate("dropout_rate", dropout_rate)
        # §4: drop rate fixed per block, rising linearly: 0, 10, 20, 30, 40 % for five blocks.
        rates = tuple(top * b / max(n - 1, 1) for b in range(n))
    else:
        try:
            rates = tuple(common.check_rate("dropout_rate", r) for r in dropout_rate)
        except TypeError:
            raise ValueError(f"dropout_rate must be a number or one rate per block, got {dropout_rate!r}") from None
        if len(rates) != n:
            raise ValueError(f"dropout_rate gives {len(rates)} rates for {n} blocks; give one per block or one number")
    return tuple(Block(w, r, p) for w, r, p in zip(stage_widths, rates, pools))


def fractalnet(
    include_top: bool = True,
    input_shape=None,
    input_tensor=None,
    pooling: str | None = None,
    classes: int = 10,
    classifier_activation: Any = "softmax",
    name: str = "fractalnet",
    *,
    columns: int = 3,
    blocks: int | None = None,
    widths: int | Sequence[int] = FRACTALNET_WIDTHS,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    dropout_rate: float | Sequence[float] = 0.4,
    drop_path_rate: float = 0.15,
    global_path_ratio: float = 0.5,
    column: int | None = None,
    seed: int | None = None,
):
    """FractalNet with ``columns`` columns and ``blocks`` blocks (default: one per width), each
    followed by a 2x2 max-pool.

    ``dropout_rate``: the last block's rate, the others rising linearly from 0 (§4), or one rate
    per block (after depth scaling). ``drop_path_rate``: local drop-path probability of each join
    input (§3: 0.15). ``global_path_ratio``: share of training batches using global drop-path
    (§3: 0.5). ``column=k`` builds only column k (1 = shallowest ... ``columns`` = deepest), with
    the fractal net's layer names. ``seed`` makes drop-path and dropout reproducible.
    ``depth_multiplier`` scales the number of blocks (see :func:`_block_plan`). CIFAR defaults:
    32x32 input, 10 classes.
    """
    common.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    plan = _block_plan(columns, blocks, widths, width_multiplier, depth_multiplier, dropout_rate)
    drop_path_rate = common.check_rate("drop_path_rate", drop_path_rate)
    try:
        global_path_ratio = float(global_path_ratio)
    except (TypeError, ValueError):
        global_path_ratio = -1.0
    if not 0.0 <= global_path_ratio <= 1.0:
        raise ValueError(f"global_path_ratio must be a number in [0, 1], got {global_path_ratio!r}")
    if column is not None and (isinstance(column, bool) or not isinstance(column, int) or not 1 <= column <= columns):
        raise ValueError(f"column must be None (the whole fractal net) or an integer in 1..{columns}, got {column!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be None or an integer, got {seed!r}")
    return _fractal_net(plan, columns=columns, drop_path_rate=drop_path_rate, global_path_ratio=global_path_ratio,
                        column=column, seed=seed, include_top=include_top, input_shape=input_shape,
                        input_tensor=input_tensor, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation, name=name)


def _fractal_net(plan, *, columns, drop_path_rate, global_path_ratio, column, seed, include_top, input_shape,
                 input_tensor, pooling, classes, classifier_activation, name):
    # Each pool halves the grid (valid 2x2), so the input needs 2^pools pixels a side.
    img_input = common.image_input(input_shape, input_tensor, default_size=32,
                                   min_size=2 ** sum(b.pool for b in plan), model_name=name)
    draw = None
    if column is None and columns > 1 and global_path_ratio > 0:
        draw = FractalPathDraw(columns, global_path_ratio, seed=seed, name="drop_path_draw")(img_input)
    x = img_input
    for b, block in enumerate(plan, start=1):
        x = fractal_block(x, block=b, columns=columns, filters=block.width, dropout_rate=block.dropout_rate,
                          draw=draw, drop_path_rate=drop_path_rate, only_column=column, seed=seed)
        if block.pool:
            x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    x = common.classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation)
    return common.functional_model(img_input, input_tensor, x, name=name)


# ----------------------------------------------------------------------------- columns (anytime)
_CONV_NAME = re.compile(r"^block(\d+)_col(\d+)_conv(\d+)_conv$")
_DROPOUT_NAME = re.compile(r"^block(\d+)_col\d+_conv\d+_dropout$")


def _fractal_config(model) -> dict[str, Any]:
    """The block plan and head of a fractal net, read back from its layer names."""
    widths, columns, rates = {}, 0, {}
    for layer in model.layers:
        m = _CONV_NAME.match(layer.name)
        if m:
            b, k = int(m.group(1)), int(m.group(2))
            columns = max(columns, k)
            widths[b] = layer.filters
        m = _DROPOUT_NAME.match(layer.name)
        if m:
            rates[int(m.group(1))] = layer.rate
    if not widths:
        raise ValueError(f"{model.name!r} has no FractalNet conv layers (block<b>_col<k>_conv<i>)")
    names = {layer.name for layer in model.layers}
    top = model.get_layer("predictions") if "predictions" in names else None
    pooling = "avg" if top is None and "avg_pool" in names else "max" if top is None and "max_pool" in names else None
    return {
        "plan": tuple(Block(widths[b], float(rates.get(b, 0.0)), f"block{b}_pool" in names)
                      for b in range(1, max(widths) + 1)),
        "columns": columns,
        "input_shape": tuple(model.inputs[0].shape[1:]),
        "include_top": top is not None,
        "pooling": pooling,
        "classes": top.units if top is not None else 10,
        "classifier_activation": top.activation if top is not None else "softmax",
    }


def load_column_weights(column_model, fractal_model) -> int:
    """Copy weights by layer name from ``fractal_model`` into ``column_model`` (Keras 3's .keras
    format has no ``load_weights(by_name=True)``); returns how many layers were copied."""
    copied = 0
    for layer in column_model.layers:
        if not layer.weights:
            continue
        try:
            source = fractal_model.get_layer(layer.name)
        except ValueError:
            raise ValueError(f"{fractal_model.name!r} has no layer {layer.name!r} to copy into the column net") from None
        layer.set_weights(source.get_weights())
        copied += 1
    return copied


def extract_column(model, column: int, name: str | None = None):
    """The single-column network of column ``column`` of a (trained) fractal net, with its weights:
    §4.3's anytime sub-networks. Its outputs equal the fractal net's with every join forced to
    that column (:func:`set_forced_column`)."""
    config = _fractal_config(model)
    if isinstance(column, bool) or not isinstance(column, int) or not 1 <= column <= config["columns"]:
        raise ValueError(f"column must be an integer in 1..{config['columns']}, got {column!r}")
    plan = config.pop("plan")
    net = _fractal_net(plan, **config, drop_path_rate=0.0, global_path_ratio=0.0, column=column, seed=None,
                       input_tensor=None, name=name or f"{model.name}_column{column}")
    load_column_weights(net, model)
    return net


def set_forced_column(model, column: int | None) -> int:
    """Force every join of ``model`` to pass ``column`` (None: back to drop-path/mean); returns the
    number of joins set. Read when the model is called, so use eager calls (``model(x)``) or
    rebuild compiled functions after changing it."""
    joins = [layer for layer in model.layers if isinstance(layer, FractalJoin)]
    for join in joins:
        join.force_column = column
    return len(joins)


# ----------------------------------------------------------------------------- reference counts
def _convs_reading_input(columns: int) -> int:
    """Convs of f_C reading the block input: one first conv per column."""
    return columns


def _convs_per_block(columns: int) -> int:
    """n(1) = 1, n(C+1) = 2 n(C) + 1 (two copies of f_C and one conv), so n(C) = 2^C - 1."""
    return 2 ** columns - 1


def fractal_param_count(columns: int, widths: Sequence[int], *, in_channels: int = 3, classes: int = 10,
                        kind: str = "trainable") -> int:
    """Parameters of the paper's wiring, counted from the expansion rule without building a model:
    in each block, ``columns`` 3x3 convs read the block input and ``2^C - 1 - C`` read the block
    width; each conv (no bias) has a BN (gamma, beta; plus moving mean/variance for
    ``kind="total"``; nothing for ``kind="weights"``); then the dense classifier (weights and bias,
    bias not in ``"weights"``)."""
    bn_per_channel = {"weights": 0, "trainable": 2, "total": 4}[kind]
    total, cin = 0, in_channels
    for w in widths:
        n_in, n_all = _convs_reading_input(columns), _convs_per_block(columns)
        total += KERNEL * KERNEL * w * (n_in * cin + (n_all - n_in) * w) + n_all * bn_per_channel * w
        cin = w
    return total + cin * classes + (0 if kind == "weights" else classes)


def fractal_macs(columns: int, widths: Sequence[int], *, input_size: int = 32, in_channels: int = 3,
                 classes: int = 10) -> int:
    """Conv + dense multiply-adds at batch 1 of the same wiring (one block per pooled stage): block
    b runs at the grid left by b - 1 2x2 pools ('same' 3x3 convs), the classifier on the final
    width."""
    total, cin, side = 0, in_channels, input_size
    for w in widths:
        n_in, n_all = _convs_reading_input(columns), _convs_per_block(columns)
        total += side * side * KERNEL * KERNEL * w * (n_in * cin + (n_all - n_in) * w)
        cin, side = w, side // 2
    return total + cin * classes


def _register(name: str, columns: int, depth: int):
    params = fractal_param_count(columns, FRACTALNET_WIDTHS)
    kernels = fractal_param_count(columns, FRACTALNET_WIDTHS, kind="weights")
    total = fractal_param_count(columns, FRACTALNET_WIDTHS, kind="total")
    return registry.variant(
        name,
        fractalnet,
        {"columns": columns, "widths": FRACTALNET_WIDTHS},
        family="fractalnet",
        paper="Larsson et al., FractalNet: Ultra-Deep Neural Networks without Residuals",
        year=2016,
        arxiv="1605.07648",
        default_size=32,
        min_size=32,
        default_classes=10,
        ref_params=params,
        params_kind="trainable",
        params_source=(
            f"recount of the paper's wiring (§2 Fig. 1, §4: C={columns}, B=5, widths 64-128-256-512-512, "
            "3x3 conv-BN-ReLU, dense classifier, CIFAR-10) by fractal_param_count, not the paper's table"
        ),
        params_tolerance=0.0,
        ref_macs=fractal_macs(columns, FRACTALNET_WIDTHS),
        macs_source="recount of the same wiring at 32x32 by fractal_macs (the paper gives no MACs)",
        macs_tolerance=0.0,
        knobs=("width_multiplier", "depth_multiplier", "resolution"),
        test_size=32,
        notes=(
            f"{depth} layers (B=5, C={columns}). Recounted: {params:,} trainable "
            f"({total:,} total with BN moving statistics; {kernels:,} conv + dense weights without "
            "biases)."
            + (" The paper's Table 1 gives 38.6M for its 20-layer net; its wiring recounts to "
               "~33.7M (3x3 kernels alone: 33,698,880), and the authors' Caffe generator (conv with "
               "bias, BN without affine, one FC) gives 33,714,314: the 38.6M is not reproduced."
               if columns == 3 else
               " The paper's own figure for the 40-layer net was not checked here.")
            + " Joins: join then 2x2 max-pool (the expansion rule; the authors' Caffe pools each "
            "column before the block's last join). Global drop-path: unused deeper columns are "
            "still computed (and their BN statistics updated), only their outputs are discarded."
        ),
    )


fractalnet20 = _register("fractalnet20", columns=3, depth=20)
fractalnet40 = _register("fractalnet40", columns=4, depth=40)

"""The three search spaces as keras-tuner hyperparameters, and their decoding.

- ``family``: which registered model, its width/depth multipliers and input resolution (each
  only where the model's registry entry lists the knob), and the training hyperparameters.
- ``compound``: EfficientNet's alpha and beta, with gamma solved from
  ``alpha * beta**2 * gamma**2 = target`` (Tan & Le 2019, Sec. 3.3, Eq. 3), at phi = 1.
- ``nasnet``: a genotype, hyperparameter by hyperparameter: for the normal and the reduction cell
  and each of the five blocks, two inputs and two ops (Zoph et al. 2018, arXiv:1707.07012,
  Sec. 3, Fig. 3). The inputs of block ``n_k`` choose among the states before it (h0, h1,
  n2 .. n_{k-1}), so every assignment of the hyperparameters is a valid cell.

States follow the TF-slim convention of :mod:`keras_convnets.models.nas`: ``h0`` is the previous
cell's output, ``h1`` the output two cells back, ``n2`` .. ``n6`` the blocks.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = [
    "CELLS", "BLOCKS", "STATES", "block_inputs", "genotype_hp_name", "declare_genotype",
    "cells_from_values", "values_from_cells", "cell_concat", "genotype_from_values", "genotype_text",
    "cells_in", "solve_gamma", "check_compound_ranges", "declare_training", "TRAINING_DEFAULTS", "OPTIMIZERS",
]

# ----------------------------------------------------------------------------- nasnet
CELLS = ("normal", "reduction")
BLOCKS = ("n2", "n3", "n4", "n5", "n6")
STATES = ("h0", "h1") + BLOCKS
PAIR = (0, 1)  # each block combines two (op, input) pairs


def block_inputs(block: str) -> list[str]:
    """The states block ``block`` may read: the two cell inputs and every earlier block (a block
    can only use what is already computed, so the cell stays a DAG)."""
    return list(STATES[: STATES.index(block)])


def genotype_hp_name(cell: str, block: str, kind: str, pair: int) -> str:
    """``normal/n3/input0``, ``reduction/n6/op1``: one hyperparameter of the genotype."""
    if kind not in ("input", "op"):
        raise ValueError(f"kind must be 'input' or 'op', got {kind!r}")
    return f"{cell}/{block}/{kind}{pair}"


def declare_genotype(hp, ops: Sequence[str], cells: Sequence[str] = CELLS) -> dict[str, list]:
    """Register the genotype hyperparameters -- 5 blocks x 2 pairs x (input, op) for each cell
    type in ``cells``: 40 for NASNet's normal + reduction cells, 20 for PNAS's single cell -- and
    return their current values as cells (see :func:`cells_from_values`)."""
    ops = [str(o) for o in ops]
    if len(ops) < 2:
        raise ValueError(f"an op set needs at least two ops, got {ops!r}")
    _check_cells(cells)
    for cell in cells:
        for block in BLOCKS:
            for pair in PAIR:
                hp.Choice(genotype_hp_name(cell, block, "input", pair), block_inputs(block))
                hp.Choice(genotype_hp_name(cell, block, "op", pair), ops)
    return cells_from_values(hp.values, cells)


def _check_cells(cells: Sequence[str]) -> None:
    if tuple(cells) not in (CELLS, ("normal",)):
        raise ValueError(f"cells must be {CELLS} or ('normal',) (one shared cell, as PNAS), got {cells!r}")


def cells_in(values: dict) -> tuple[str, ...]:
    """The cell types a set of genotype values describes (the reduction cell is optional)."""
    return CELLS if genotype_hp_name("reduction", "n2", "op", 0) in values else ("normal",)


def cells_from_values(values: dict, cells: Sequence[str] | None = None) -> dict[str, list]:
    """``{"normal": [((op, input), (op, input)) for n2..n6], "reduction": [...]}``."""
    cells = cells_in(values) if cells is None else cells
    out = {}
    for cell in cells:
        blocks = []
        for block in BLOCKS:
            blocks.append(tuple(
                (values[genotype_hp_name(cell, block, "op", p)], values[genotype_hp_name(cell, block, "input", p)])
                for p in PAIR
            ))
        out[cell] = blocks
    return out


def values_from_cells(cells: dict) -> dict:
    """The inverse of :func:`cells_from_values` (seeds a search with a known genotype)."""
    values = {}
    for cell in cells:
        for block, pairs in zip(BLOCKS, cells[cell]):
            for p, (op, state) in zip(PAIR, pairs):
                values[genotype_hp_name(cell, block, "op", p)] = op
                values[genotype_hp_name(cell, block, "input", p)] = state
    return values


def cell_concat(blocks: Sequence) -> list[str]:
    """The cell's output: the blocks no other block reads, concatenated (NASNet search,
    Zoph et al. 2018 Sec. 3: "all unused hidden states ... are concatenated"). ``n6`` is never
    read, so the output is never empty."""
    used = {state for pairs in blocks for _, state in pairs}
    return [b for b in BLOCKS if b not in used]


def genotype_from_values(values: dict, op_set: str):
    """The :class:`keras_convnets.models.nas.Genotype` the hyperparameter values describe (with
    a single shared cell when the values hold no reduction cell)."""
    from keras_convnets.models import nas

    cells = cells_from_values(values)
    return nas.Genotype.from_dict(_genotype_dict(cells, op_set))


def _genotype_dict(cells: dict, op_set: str) -> dict:
    out: dict[str, Any] = {}
    for cell in cells:
        out[cell] = [[list(pair) for pair in pairs] for pairs in cells[cell]]
        out[f"{cell}_concat"] = cell_concat(cells[cell])
    out["op_set"] = op_set
    return out


def genotype_text(values: dict) -> str:
    """A compact, stable text of the genotype for results tables:
    ``normal: sep3(h0)+id(h1) | ... ; reduction: ...``."""
    cells = cells_from_values(values)
    parts = []
    for cell in cells:
        blocks = " | ".join("+".join(f"{op}({state})" for op, state in pairs) for pairs in cells[cell])
        parts.append(f"{cell}: {blocks} -> {','.join(cell_concat(cells[cell]))}")
    return " ; ".join(parts)


# ----------------------------------------------------------------------------- compound
def solve_gamma(alpha: float, beta: float, target: float = 2.0) -> float:
    """gamma from alpha * beta**2 * gamma**2 = target (EfficientNet Eq. 3, phi = 1)."""
    return math.sqrt(target / (alpha * beta * beta))


def check_compound_ranges(alpha_range: Sequence[float], beta_range: Sequence[float], target: float) -> None:
    """alpha, beta, gamma >= 1 (Eq. 3) for every point of the ranges: gamma is smallest at the
    largest alpha and beta, so alpha_max * beta_max**2 <= target must hold."""
    for name, (lo, hi) in (("alpha", alpha_range), ("beta", beta_range)):
        if not (1.0 <= lo <= hi):
            raise ValueError(f"{name} range must satisfy 1 <= min <= max, got ({lo}, {hi})")
    if not target > 1:
        raise ValueError(f"target must be > 1, got {target!r}")
    worst = alpha_range[1] * beta_range[1] ** 2
    if worst > target * (1 + 1e-9):
        raise ValueError(
            f"alpha max {alpha_range[1]} and beta max {beta_range[1]} give alpha*beta^2 = {worst:.4f} > "
            f"target {target}: gamma would fall below 1 (EfficientNet Eq. 3 needs gamma >= 1); "
            "lower the maxima"
        )


# ----------------------------------------------------------------------------- training
OPTIMIZERS = ("adam", "sgd")
TRAINING_DEFAULTS = {"optimizer": "adam", "learning_rate": 1e-3, "dropout": 0.0}


def declare_training(hp, tune: bool = True, defaults: dict | None = None) -> dict:
    """The training hyperparameters: optimizer, learning rate (log-uniform) and the classifier's
    dropout. With ``tune=False`` they are the study's fixed recipe (not hyperparameters at all,
    so the search space holds only the architecture)."""
    fixed = {**TRAINING_DEFAULTS, **(defaults or {})}
    if not tune:
        return fixed
    return {
        "optimizer": hp.Choice("optimizer", list(OPTIMIZERS), default=fixed["optimizer"]),
        "learning_rate": hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=fixed["learning_rate"]),
        # Rounded: keras-tuner's stepped floats accumulate (0.30000000000000004).
        "dropout": round(hp.Float("dropout", 0.0, 0.5, step=0.1, default=fixed["dropout"]), 6),
    }

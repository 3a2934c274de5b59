"""Searched cells as data: the genotype of a NASNet-style cell network.

A cell takes two hidden states and builds B blocks (B = 5 in NASNet, PNAS and AmoebaNet); each
block applies one op to each of two earlier states and adds the results (Zoph et al. 2018,
arXiv:1707.07012, Sec. 3 and Fig. 3). The cell's output concatenates a chosen list of states.

States are indexed as in TF-slim's ``nasnet_utils`` and the TPU AmoebaNet code
(``hiddenstate_indices``): ``h0`` (index 0) is the previous cell's output, ``h1`` (index 1) the
output two cells back, ``n2``..``n6`` (indices 2..6) the blocks in order. This is the opposite of
the DARTS repository, whose 0 is the state two cells back.

Nothing here imports Keras: the searches sample, mutate, print and store genotypes without
building a model.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any, Iterable, Sequence

__all__ = [
    "OPS",
    "OP_SETS",
    "SLIM_NAMES",
    "Genotype",
    "random_genotype",
    "state_name",
    "NASNET_A",
    "PNASNET_5",
    "AMOEBANET_A",
    "GENOTYPES",
]

# The op library. Names are short forms of the papers' and TF-slim's op names (slim in brackets):
OPS: dict[str, str] = {
    "id": "identity; a 1x1 conv + BN where the stride or the width differ ['none']",
    "sep3": "ReLU-SepConv3x3-BN applied twice ['separable_3x3_2']",
    "sep5": "ReLU-SepConv5x5-BN applied twice ['separable_5x5_2']",
    "sep7": "ReLU-SepConv7x7-BN applied twice ['separable_7x7_2']",
    "avg3": "3x3 average pooling ['avg_pool_3x3']",
    "max3": "3x3 max pooling ['max_pool_3x3']",
    "max5": "5x5 max pooling ['max_pool_5x5']",
    "max7": "7x7 max pooling ['max_pool_7x7']",
    "conv1x1": "ReLU-Conv1x1-BN ['1x1']",
    "conv3x3": "3x3 convolution in a 1x1 bottleneck ['3x3']",
    "conv1x3_3x1": "1x3 then 3x1 convolution in a 1x1 bottleneck ['1x3_3x1']",
    "conv1x7_7x1": "1x7 then 7x1 convolution in a 1x1 bottleneck ['1x7_7x1']",
    "dil_conv3": "3x3 convolution, dilation 2, in a 1x1 bottleneck ['dilated_3x3_rate_2']",
    "dil_sep3": "ReLU-SepConv3x3(dilation 2)-BN applied twice ['dil_2_separable_3x3_2']",
}

# TF-slim / TPU names of the ops, for genotypes written in their arrays (Genotype.from_slim).
SLIM_NAMES: dict[str, str] = {
    "id": "none", "sep3": "separable_3x3_2", "sep5": "separable_5x5_2", "sep7": "separable_7x7_2",
    "avg3": "avg_pool_3x3", "max3": "max_pool_3x3", "max5": "max_pool_5x5", "max7": "max_pool_7x7",
    "conv1x1": "1x1", "conv3x3": "3x3", "conv1x3_3x1": "1x3_3x1", "conv1x7_7x1": "1x7_7x1",
    "dil_conv3": "dilated_3x3_rate_2", "dil_sep3": "dil_2_separable_3x3_2",
}

# The search spaces. NASNet: Zoph et al. 2018, Sec. 3 (13 ops); PNAS: Liu et al. 2018,
# arXiv:1712.00559, Sec. 3.1 (8 ops); AmoebaNet: Real et al. 2019, arXiv:1802.01548, Sec. 3 (8 ops).
OP_SETS: dict[str, list[str]] = {
    "nasnet": [
        "id", "conv1x3_3x1", "conv1x7_7x1", "dil_conv3", "avg3", "max3", "max5", "max7",
        "conv1x1", "conv3x3", "sep3", "sep5", "sep7",
    ],
    "pnas": ["sep3", "sep5", "sep7", "conv1x7_7x1", "id", "avg3", "max3", "dil_conv3"],
    "amoeba": ["id", "sep3", "sep5", "sep7", "avg3", "max3", "dil_sep3", "conv1x7_7x1"],
}

CELL_KINDS = ("normal", "reduction")


def state_name(index: int) -> str:
    """``0 -> 'h0'``, ``1 -> 'h1'``, ``k >= 2 -> 'nk'``."""
    return f"h{index}" if index < 2 else f"n{index}"


def _state_index(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: a state must be an index or a name like 'h0', 'h1', 'n2'; got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([hn])(\d+)\s*", value)
        if m and (m.group(1) == "h") == (int(m.group(2)) < 2):
            return int(m.group(2))
    raise ValueError(f"{where}: a state must be an index or a name like 'h0', 'h1', 'n2'; got {value!r}")


def _ordinal(i: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(i, f"{i}th")


def _check_cell(kind: str, blocks: Any, concat: Any, ops: Sequence[str], op_set_label: str):
    """Normalise one cell to tuples of ``((op, input), (op, input))`` and a concat tuple; raise
    ValueError naming the cell and block that is wrong."""
    try:
        blocks = list(blocks)
    except TypeError:
        raise ValueError(f"{kind} cell: blocks must be a sequence of ((op, input), (op, input)) pairs") from None
    if not blocks:
        raise ValueError(f"{kind} cell has no blocks; a cell needs at least one block (the papers use 5)")
    out = []
    for b, block in enumerate(blocks):
        state = b + 2
        where = f"{kind} cell, block {state_name(state)} ({_ordinal(b + 1)} of {len(blocks)})"
        try:
            pairs = [tuple(p) for p in block]
        except TypeError:
            raise ValueError(f"{where}: expected two (op, input) pairs, got {block!r}") from None
        if len(pairs) != 2 or any(len(p) != 2 for p in pairs):
            raise ValueError(f"{where}: expected two (op, input) pairs, got {block!r}")
        norm = []
        for op, inp in pairs:
            if op not in ops:
                raise ValueError(f"{where}: op {op!r} is not in {op_set_label} (allowed: {', '.join(ops)})")
            idx = _state_index(inp, where)
            if not 0 <= idx < state:
                allowed = ", ".join(state_name(i) for i in range(state))
                raise ValueError(
                    f"{where}: input {state_name(idx) if idx >= 0 else idx} refers to a state not yet "
                    f"computed; this block can use {allowed}"
                )
            norm.append((str(op), idx))
        out.append(tuple(norm))
    try:
        concat = [_state_index(c, f"{kind} cell output concat") for c in concat]
    except TypeError:
        raise ValueError(f"{kind} cell: the output concat must be a sequence of states") from None
    if not concat:
        raise ValueError(
            f"{kind} cell: the output concat is empty; list the states the cell concatenates "
            "(usually the blocks no other block uses)"
        )
    last = len(out) + 1
    for c in concat:
        if not 0 <= c <= last:
            raise ValueError(
                f"{kind} cell output concat: state {c} does not exist (states are h0, h1, n2..{state_name(last)})"
            )
    if len(set(concat)) != len(concat):
        raise ValueError(f"{kind} cell output concat lists a state twice: {[state_name(c) for c in concat]}")
    return tuple(out), tuple(concat)


@dataclasses.dataclass(frozen=True)
class Genotype:
    """The two cells of a searched network.

    ``normal`` / ``reduction``: for each block, two ``(op, input)`` pairs (input: a state index or
    name, see the module docstring); ``*_concat``: the states the cell concatenates. PNASNet uses
    one cell for both roles: leave ``reduction`` None and the network strides the normal cell at
    its reductions. ``op_set`` (a key of :data:`OP_SETS`, or None for the whole op library) is the
    search space the ops must come from.
    """

    normal: tuple
    normal_concat: tuple
    reduction: tuple | None = None
    reduction_concat: tuple | None = None
    op_set: str | None = None

    def __post_init__(self):
        if self.op_set is None:
            ops, label = list(OPS), "the op library"
        elif self.op_set in OP_SETS:
            ops, label = OP_SETS[self.op_set], f"op set {self.op_set!r}"
        else:
            raise ValueError(f"op_set must be one of {sorted(OP_SETS)} or None, got {self.op_set!r}")
        normal, normal_concat = _check_cell("normal", self.normal, self.normal_concat, ops, label)
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "normal_concat", normal_concat)
        if self.reduction is None:
            if self.reduction_concat is not None:
                raise ValueError("reduction_concat given without a reduction cell")
        else:
            if self.reduction_concat is None:
                raise ValueError("reduction cell given without reduction_concat")
            reduction, reduction_concat = _check_cell("reduction", self.reduction, self.reduction_concat, ops, label)
            object.__setattr__(self, "reduction", reduction)
            object.__setattr__(self, "reduction_concat", reduction_concat)

    # ------------------------------------------------------------------ views
    @property
    def shared_cell(self) -> bool:
        """True when one cell serves as normal and (strided) reduction cell (PNASNet)."""
        return self.reduction is None

    def cell(self, kind: str) -> tuple[tuple, tuple]:
        """``(blocks, concat)`` of the ``"normal"`` or ``"reduction"`` cell (the normal cell when
        the genotype has a single cell)."""
        if kind not in CELL_KINDS:
            raise ValueError(f"cell kind must be one of {CELL_KINDS}, got {kind!r}")
        if kind == "reduction" and not self.shared_cell:
            return self.reduction, self.reduction_concat
        return self.normal, self.normal_concat

    def ops(self) -> list[str]:
        """Every op the genotype uses, in order of appearance."""
        cells = [self.normal] + ([] if self.shared_cell else [self.reduction])
        return [op for blocks in cells for block in blocks for op, _ in block]

    # ------------------------------------------------------------------ text form
    def __str__(self) -> str:
        def cell(blocks, concat):
            body = ", ".join("+".join(f"{op}({state_name(i)})" for op, i in block) for block in blocks)
            return f"{body} -> {','.join(state_name(c) for c in concat)}"

        parts = []
        if self.shared_cell:
            parts.append(f"cell: {cell(self.normal, self.normal_concat)}")
        else:
            parts.append(f"normal: {cell(self.normal, self.normal_concat)}")
            parts.append(f"reduction: {cell(self.reduction, self.reduction_concat)}")
        prefix = f"[{self.op_set}] " if self.op_set else ""
        return prefix + "; ".join(parts)

    @classmethod
    def from_string(cls, text: str) -> "Genotype":
        """Inverse of ``str(genotype)``: ``"[op_set] normal: sep5(h0)+sep3(h1), ... -> h1,n2;
        reduction: ..."`` (or ``"cell: ..."`` for a single shared cell)."""
        if not isinstance(text, str):
            raise ValueError(f"Genotype.from_string needs a string, got {type(text).__name__}")
        s = text.strip()
        op_set = None
        m = re.match(r"\[\s*([A-Za-z_]\w*)\s*\]\s*", s)
        if m:
            op_set, s = m.group(1), s[m.end():]
        cells: dict[str, tuple[list, list]] = {}
        for part in filter(None, (p.strip() for p in s.split(";"))):
            head, sep, rest = part.partition(":")
            kind = head.strip()
            if not sep or kind not in ("normal", "reduction", "cell") or kind in cells:
                raise ValueError(
                    f"cannot parse genotype part {part!r}: expected 'normal: ...', 'reduction: ...' or 'cell: ...' once each"
                )
            body, arrow, concat = rest.partition("->")
            if not arrow:
                raise ValueError(f"cannot parse {kind} cell {rest.strip()!r}: missing '-> <concat states>'")
            blocks = []
            for block_text in filter(None, (b.strip() for b in body.split(","))):
                pairs = []
                for pair in block_text.split("+"):
                    pm = re.fullmatch(r"\s*([A-Za-z_][\w]*)\s*\(\s*([hn]\d+)\s*\)\s*", pair)
                    if not pm:
                        raise ValueError(f"cannot parse {kind} cell block {block_text!r}: expected 'op(state)+op(state)'")
                    pairs.append((pm.group(1), pm.group(2)))
                blocks.append(pairs)
            cells[kind] = (blocks, [c.strip() for c in concat.split(",") if c.strip()])
        if "cell" in cells:
            if len(cells) != 1:
                raise ValueError("a genotype has either one shared 'cell:' or 'normal:' (+ 'reduction:'), not both")
            return cls(*cells["cell"], op_set=op_set)
        if "normal" not in cells:
            raise ValueError(f"genotype text has no normal cell: {text!r}")
        red, red_concat = cells.get("reduction", (None, None))
        return cls(*cells["normal"], red, red_concat, op_set=op_set)

    # ------------------------------------------------------------------ JSON form
    def to_dict(self) -> dict[str, Any]:
        """JSON-able: lists of ``[op, input_index]`` pairs and concat index lists."""

        def blocks(bs):
            return None if bs is None else [[[op, i] for op, i in block] for block in bs]

        return {
            "normal": blocks(self.normal),
            "normal_concat": list(self.normal_concat),
            "reduction": blocks(self.reduction),
            "reduction_concat": None if self.reduction_concat is None else list(self.reduction_concat),
            "op_set": self.op_set,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Genotype":
        if not isinstance(data, dict):
            raise ValueError(f"Genotype.from_dict needs a dict, got {type(data).__name__}")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown genotype keys {sorted(unknown)}; allowed: {[f.name for f in dataclasses.fields(cls)]}")
        if "normal" not in data or "normal_concat" not in data:
            raise ValueError("a genotype dict needs 'normal' and 'normal_concat'")
        return cls(**data)


    @classmethod
    def from_slim(cls, normal: tuple, reduction: tuple | None = None, op_set: str | None = None) -> "Genotype":
        """From TF-slim / TPU arrays: each cell as ``(operations, hiddenstate_indices,
        used_hiddenstates)``, e.g. slim's ``NasNetANormalCell``. The cell concatenates the states
        whose ``used_hiddenstates`` flag is 0 (slim ``_combine_unused_states``)."""
        from_slim = {v: k for k, v in SLIM_NAMES.items()}

        def cell(arrays):
            operations, indices, used = arrays
            if len(operations) != len(indices) or len(operations) % 2 or len(used) != len(operations) // 2 + 2:
                raise ValueError("slim cell arrays: operations and hiddenstate_indices need 2 entries a block "
                                 "and used_hiddenstates one a state (blocks + 2)")
            unknown = [op for op in operations if op not in from_slim]
            if unknown:
                raise ValueError(f"unknown slim op names {unknown}; known: {sorted(from_slim)}")
            ops = [from_slim[op] for op in operations]
            blocks = [[(ops[i], indices[i]), (ops[i + 1], indices[i + 1])] for i in range(0, len(ops), 2)]
            return blocks, [i for i, u in enumerate(used) if not u]

        red = (None, None) if reduction is None else cell(reduction)
        return cls(*cell(normal), *red, op_set=op_set)


# ---------------------------------------------------------------------------------- sampling
def _randrange(rng, n: int) -> int:
    if hasattr(rng, "integers"):  # numpy Generator
        return int(rng.integers(n))
    return int(rng.randrange(n))


def _as_rng(rng):
    if rng is None or isinstance(rng, int):
        return random.Random(rng)
    if hasattr(rng, "integers") or hasattr(rng, "randrange"):
        return rng
    raise ValueError(f"rng must be None, an int seed, a random.Random or a numpy Generator; got {type(rng).__name__}")


def _random_cell(ops: Sequence[str], num_blocks: int, rng) -> tuple[list, list]:
    blocks = []
    for b in range(num_blocks):
        state = b + 2
        blocks.append([(ops[_randrange(rng, len(ops))], _randrange(rng, state)) for _ in range(2)])
    used = {i for block in blocks for _, i in block}
    # As in the NASNet/PNAS/AmoebaNet searches: the cell concatenates every block no other block
    # consumes (Zoph et al. 2018, Sec. 3); the last block is never consumed, so this is never empty.
    concat = [s for s in range(2, num_blocks + 2) if s not in used]
    return blocks, concat


def random_genotype(op_set: str | Iterable[str] = "nasnet", rng=None, *, num_blocks: int = 5,
                    shared_cell: bool | None = None) -> Genotype:
    """A uniformly random valid genotype: each block's two ops from ``op_set`` and two inputs
    from the states before it; the output concatenates the unused blocks.

    ``op_set`` is a key of :data:`OP_SETS` (or a list of op names); ``rng`` an int seed, a
    ``random.Random`` or a numpy Generator. ``shared_cell`` (one cell for normal and reduction)
    defaults to True for PNAS's space, which searched a single cell, and False otherwise.
    """
    if isinstance(op_set, str):
        if op_set not in OP_SETS:
            raise ValueError(f"op_set must be one of {sorted(OP_SETS)} (or a list of op names), got {op_set!r}")
        ops, name = OP_SETS[op_set], op_set
    else:
        ops, name = list(op_set), None
        bad = [op for op in ops if op not in OPS]
        if not ops or bad:
            raise ValueError(f"op list must be non-empty ops of the library {list(OPS)}; bad: {bad}")
    if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 1:
        raise ValueError(f"num_blocks must be an integer >= 1, got {num_blocks!r}")
    rng = _as_rng(rng)
    if shared_cell is None:
        shared_cell = name == "pnas"
    normal, normal_concat = _random_cell(ops, num_blocks, rng)
    if shared_cell:
        return Genotype(normal, normal_concat, op_set=name)
    reduction, reduction_concat = _random_cell(ops, num_blocks, rng)
    return Genotype(normal, normal_concat, reduction, reduction_concat, op_set=name)


# ---------------------------------------------------------------------------------- the papers
# NASNet-A (Zoph et al. 2018, Fig. 4; TF-slim nasnet_utils.NasNetANormalCell/ReductionCell).
NASNET_A = Genotype.from_string(
    "[nasnet] "
    "normal: sep5(h0)+sep3(h1), sep5(h1)+sep3(h1), avg3(h0)+id(h1), avg3(h1)+avg3(h1), sep3(h0)+id(h0)"
    " -> h1,n2,n3,n4,n5,n6; "
    "reduction: sep5(h0)+sep7(h1), max3(h0)+sep7(h1), avg3(h0)+sep5(h1), id(n3)+avg3(n2), sep3(n2)+max3(h0)"
    " -> n3,n4,n5,n6"
)

# PNASNet-5 (Liu et al. 2018, Fig. 1; TF-slim pnasnet.PNasNetNormalCell): one cell, strided at
# the reductions.
PNASNET_5 = Genotype.from_string(
    "[pnas] "
    "cell: sep5(h1)+max3(h1), sep7(h0)+max3(h0), sep5(h0)+sep3(h0), sep3(n4)+max3(h0), sep3(h1)+id(h0)"
    " -> n2,n3,n4,n5,n6"
)

# AmoebaNet-A (Real et al. 2019, Fig. 4; TPU models/official/amoeba_net/model_specs.py).
AMOEBANET_A = Genotype.from_string(
    "[amoeba] "
    "normal: avg3(h0)+max3(h0), sep3(h1)+id(h1), id(h0)+avg3(h1), sep3(h0)+sep5(n2), avg3(n5)+sep3(h0)"
    " -> h1,n3,n4,n6; "
    "reduction: sep3(h1)+avg3(h0), max3(h0)+sep7(n2), max3(h1)+max3(h0), sep3(n4)+conv1x7_7x1(h0),"
    " avg3(h1)+sep7(h0) -> n2,n3,n4,n5,n6"
)

GENOTYPES: dict[str, Genotype] = {"nasnet_a": NASNET_A, "pnasnet_5": PNASNET_5, "amoebanet_a": AMOEBANET_A}

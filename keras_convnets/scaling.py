"""Width/depth/resolution scaling maths (EfficientNet, Tan & Le 2019, arXiv:1905.11946).

Kept free of heavy imports: the study planner uses it without building a model.
"""

from __future__ import annotations

import math

__all__ = ["round_filters", "round_repeats", "check_multiplier"]


def check_multiplier(name: str, value: float) -> float:
    """A width/depth multiplier must be a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number > 0, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def round_filters(filters: int, width_multiplier: float = 1.0, divisor: int = 8) -> int:
    """Channels x width, rounded to a multiple of ``divisor`` (never below it), plus one divisor
    if rounding dropped more than 10% (EfficientNet's reference implementation, ``round_filters``).
    At width 1.0 the paper's counts are returned unchanged, even when not multiples of 8."""
    if width_multiplier == 1.0:
        return int(filters)
    scaled = filters * width_multiplier
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth_multiplier: float = 1.0) -> int:
    """Repeats x depth, rounded up (EfficientNet's ``round_repeats``); at least one."""
    return max(1, int(math.ceil(depth_multiplier * repeats)))

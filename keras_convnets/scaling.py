"""Width/depth/resolution scaling maths (EfficientNet, Tan & Le 2019, arXiv:1905.11946).

Kept free of heavy imports: the study planner uses it without building a model.
"""

from __future__ import annotations

import math

__all__ = ["round_filters", "round_repeats", "check_multiplier", "CompoundScaling", "grid", "scaled_build_args", "round_resolution"]


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


# ----------------------------------------------------------------------------- compound scaling
DEFAULT_TARGET = 2.0
DEFAULT_TOLERANCE = 0.05


def _coefficient(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 1, got {value!r}") from None
    if not math.isfinite(v) or v < 1.0:
        raise ValueError(f"{name} must be >= 1 (EfficientNet, Eq. 3: alpha, beta, gamma >= 1), got {value!r}")
    return v


class CompoundScaling:
    """EfficientNet's compound scaling (Tan & Le 2019, Sec. 3.3, Eq. 3): depth ``d = alpha**phi``,
    width ``w = beta**phi``, resolution ``r = gamma**phi``, subject to
    ``alpha * beta**2 * gamma**2 ~= target`` (2 in the paper) so that MACs grow about
    ``target**phi``. The paper's grid search on B0 found alpha=1.2, beta=1.1, gamma=1.15 (product
    1.92). ``tolerance`` is relative to ``target``."""

    def __init__(self, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15, *,
                 target: float = DEFAULT_TARGET, tolerance: float = DEFAULT_TOLERANCE):
        self.alpha = _coefficient("alpha", alpha)
        self.beta = _coefficient("beta", beta)
        self.gamma = _coefficient("gamma", gamma)
        self.target = float(target)
        if not (math.isfinite(self.target) and self.target > 1):
            raise ValueError(f"target must be a number > 1 (the MACs growth per unit of phi), got {target!r}")
        self.tolerance = float(tolerance)
        if not (0 <= self.tolerance < 1):
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
        if abs(self.product - self.target) > self.tolerance * self.target:
            raise ValueError(
                f"alpha*beta^2*gamma^2 = {self.product:.4f} (alpha={self.alpha}, beta={self.beta}, "
                f"gamma={self.gamma}) is not within {self.tolerance:.0%} of the target {self.target}; "
                "choose coefficients that satisfy the constraint (EfficientNet Eq. 3)"
            )

    @property
    def product(self) -> float:
        return self.alpha * self.beta**2 * self.gamma**2

    def coefficients(self, phi: float) -> tuple[float, float, float]:
        """(depth, width, resolution) multipliers at compound coefficient ``phi``."""
        phi = float(phi)
        if not math.isfinite(phi) or phi < 0:
            raise ValueError(f"phi must be a number >= 0, got {phi!r}")
        return self.alpha**phi, self.beta**phi, self.gamma**phi

    def predicted_macs_growth(self, phi: float) -> float:
        """(alpha * beta^2 * gamma^2)^phi: the MACs ratio to the base the paper's rule predicts."""
        return self.product ** float(phi)

    def apply(self, name: str, phi: float, base_resolution: int | None = None) -> dict:
        """Build arguments of the registered model ``name`` scaled to ``phi``:
        ``{"depth_multiplier", "width_multiplier", "input_shape"}`` (see :func:`scaled_build_args`:
        multipliers relative to the variant's own, the resolution ``base_resolution`` (default: the
        variant's default input) x gamma**phi rounded to a multiple of 8 and never below the
        family's minimum input size). ``build(name, **apply(name, phi))`` is the scaled network."""
        return scaled_build_args(name, *self.coefficients(phi), base_resolution=base_resolution)

    def __repr__(self) -> str:
        return f"CompoundScaling(alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, target={self.target})"


def round_resolution(resolution: float, minimum: int = 8, multiple: int = 8) -> int:
    """``resolution`` rounded to the nearest multiple of ``multiple`` (halves up), and never
    below ``minimum``: the smallest multiple of ``multiple`` that is >= ``minimum`` at least (a
    minimum of 75, InceptionV3's, gives 80)."""
    try:
        r = float(resolution)
    except (TypeError, ValueError):
        raise ValueError(f"resolution must be a number > 0, got {resolution!r}") from None
    if not math.isfinite(r) or r <= 0:
        raise ValueError(f"resolution must be a finite number > 0, got {resolution!r}")
    side = int(math.floor(r / multiple + 0.5)) * multiple
    return max(side, int(math.ceil(minimum / multiple)) * multiple)


def scaled_build_args(name: str, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0,
                      *, base_resolution: int | None = None) -> dict:
    """Build arguments that scale the registered model ``name`` by depth/width/resolution
    multipliers, *relative to the variant itself*: a variant that is already scaled (e.g.
    ``efficientnet_b3``, width 1.2) gets ``width_multiplier = 1.2 * width``, and its input side is
    ``base_resolution`` (default: the variant's default input) x ``resolution``, rounded to a
    multiple of 8 and never below the family's minimum input. A multiplier that is not 1 for a
    knob the family does not take raises ValueError naming the knobs it takes. At 1, 1, 1 the
    variant's own arguments come back (its default input unchanged, even if not a multiple of 8).
    """
    from keras_convnets import registry

    spec = registry.get(name)
    args: dict = {}
    for knob, value in (("depth_multiplier", depth), ("width_multiplier", width)):
        value = check_multiplier(knob, value)
        if knob in spec.knobs:
            args[knob] = float(spec.config.get(knob, 1.0)) * value
        elif value != 1.0:
            raise ValueError(f"{name} cannot be scaled by {knob}; its scaling knobs are {list(spec.knobs)}")
    resolution = check_multiplier("resolution multiplier", resolution)
    if base_resolution is None and resolution == 1.0:
        side = spec.default_size
    else:
        base = spec.default_size if base_resolution is None else check_positive_side(base_resolution)
        side = round_resolution(base * resolution, minimum=spec.min_size)
    if side != spec.default_size and "resolution" not in spec.knobs:
        raise ValueError(f"{name} has a fixed input size {spec.default_size}; its scaling knobs are {list(spec.knobs)}")
    args["input_shape"] = (side, side, spec.channels)
    return args


def check_positive_side(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"base_resolution must be an integer >= 1 (pixels), got {value!r}")
    return value


def grid(target: float = DEFAULT_TARGET, step: float = 0.05, tolerance: float = DEFAULT_TOLERANCE,
         max_value: float = 2.0) -> list[tuple[float, float, float]]:
    """The (alpha, beta, gamma) candidates of the paper's small grid search at phi = 1 (Sec. 3.3,
    "STEP 1"): every point of a grid with spacing ``step`` in [1, max_value]^3 whose
    alpha*beta^2*gamma^2 is within ``tolerance`` (relative) of ``target``. Sorted by alpha, beta,
    gamma. The paper's choice (1.2, 1.1, 1.15) is on the default grid."""
    for label, value, ok, allowed in (
        ("target", target, lambda v: v > 1, "a number > 1"),
        ("step", step, lambda v: 0 < v <= 1, "a number in (0, 1]"),
        ("tolerance", tolerance, lambda v: 0 <= v < 1, "a number in [0, 1)"),
        ("max_value", max_value, lambda v: v >= 1, "a number >= 1"),
    ):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{label} must be {allowed}, got {value!r}") from None
        if not (math.isfinite(v) and ok(v)):
            raise ValueError(f"{label} must be {allowed}, got {value!r}")
    n = int(math.floor((max_value - 1.0) / step + 1e-9))
    values = [round(1.0 + i * step, 6) for i in range(n + 1)]
    out = [
        (a, b, g)
        for a in values
        for b in values
        for g in values
        if abs(a * b * b * g * g - target) <= tolerance * target
    ]
    if not out:
        raise ValueError(f"no (alpha, beta, gamma) on a {step} grid is within {tolerance:.0%} of {target}")
    return out

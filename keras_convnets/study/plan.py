"""The trials of a scaling study (EfficientNet, Tan & Le 2019, arXiv:1905.11946, Sec. 3.3 and
Sec. 5.1 / Fig. 8), as data: :class:`TrialSpec` rows that the scale study trains one by one.

* ``base`` -- the base network itself.
* ``grid`` -- STEP 1 of the paper: phi = 1, a few (alpha, beta, gamma) points of
  :func:`keras_convnets.scaling.grid` spread over the constraint surface, the paper's
  (1.2, 1.1, 1.15) first when it lies on the grid.
* ``compound`` -- STEP 2: phi = 2 .. phi_max with the best grid point (by validation accuracy);
  the best grid point itself is the compound model at phi = 1 (not trained twice).
* ``width`` / ``depth`` / ``resolution`` -- single-dimension scaling at the MACs of each compound
  model (phi = 1 .. phi_max): the one multiplier whose MACs come closest to the compound model's,
  found by a bracketed secant search on exact MAC counts (:func:`keras_convnets.flops.count_macs`).
  Widths and depths round (multiples of 8, ceil of repeats), so MACs are a staircase in the
  multiplier: the achieved MACs are recorded next to the target.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Callable

from keras_convnets import scaling

__all__ = ["TrialSpec", "Planner", "spread", "grid_points", "PAPER_COEFFICIENTS"]

PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)  # EfficientNet Sec. 3.3, found on B0


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    trial_id: str
    method: str  # base | grid | compound | width | depth | resolution
    phi: float
    width: float
    depth: float
    resolution: int
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    target_macs: int | None = None

    def row(self) -> dict:
        return {k: ("" if v is None else v) for k, v in dataclasses.asdict(self).items()}


def spread(candidates: list[tuple], n: int, first: tuple | None = None) -> list[tuple]:
    """``n`` points of ``candidates`` spread over them: ``first`` (when it is a candidate) or the
    one nearest their centroid, then repeatedly the candidate farthest from those chosen
    (farthest-point sampling; deterministic, ties to the earlier candidate)."""
    pts = [tuple(float(v) for v in c) for c in candidates]
    if n >= len(pts):
        return pts
    def dist(a, b):
        return math.dist(a, b)
    if first is not None and any(dist(first, p) < 1e-9 for p in pts):
        chosen = [next(p for p in pts if dist(first, p) < 1e-9)]
    else:
        centre = tuple(sum(c) / len(pts) for c in zip(*pts))
        chosen = [min(pts, key=lambda p: dist(p, centre))]
    while len(chosen) < n:
        chosen.append(max((p for p in pts if p not in chosen), key=lambda p: min(dist(p, c) for c in chosen)))
    return chosen


def grid_points(config) -> list[tuple[float, float, float]]:
    """The (alpha, beta, gamma) points tried at phi = 1: the study's fixed ``coefficients``
    (checked against the constraint), or ``grid_size`` spread points of the grid. Impossible
    coefficients or targets raise ValueError here, before any model is built."""
    c = config
    if c.coefficients:
        rule = scaling.CompoundScaling(*c.coefficients, target=c.target, tolerance=c.tolerance)
        return [(rule.alpha, rule.beta, rule.gamma)]
    candidates = scaling.grid(target=c.target, step=c.grid_step, tolerance=c.tolerance)
    return spread(candidates, c.grid_size, first=PAPER_COEFFICIENTS)


def _tag(v: float) -> str:
    return f"{v:.2f}"


class Planner:
    """Turns a study config into trials, counting MACs of candidate models as needed.

    ``macs_fn(width, depth, side) -> int`` builds the base model at those multipliers and counts
    its MACs; results are memoised (and kept in ``cache_path`` so a resumed study does not
    rebuild them)."""

    def __init__(self, config, spec, macs_fn: Callable[[float, float, int], int], cache_path: Path | None = None):
        self.config = config
        self.spec = spec
        self._macs_fn = macs_fn
        self.cache_path = Path(cache_path) if cache_path else None
        self._cache: dict[str, int] = {}
        if self.cache_path and self.cache_path.exists():
            try:
                self._cache = {k: int(v) for k, v in json.loads(self.cache_path.read_text()).items()}
            except (ValueError, OSError):
                self._cache = {}
        self.base_side = self.side(1.0)
        self.compound_rule: scaling.CompoundScaling | None = None

    # ------------------------------------------------------------------ sizes and costs
    def side(self, resolution_multiplier: float) -> int:
        return scaling.round_resolution(self.config.resolution * resolution_multiplier,
                                        minimum=max(self.spec.min_size, self.config.resolution_multiple),
                                        multiple=self.config.resolution_multiple)

    @staticmethod
    def _key(width: float, depth: float, side: int) -> str:
        return f"{float(width):.6f}|{float(depth):.6f}|{int(side)}"

    def macs(self, width: float = 1.0, depth: float = 1.0, side: int | None = None) -> int:
        side = self.base_side if side is None else int(side)
        key = self._key(width, depth, side)
        if key not in self._cache:
            self.remember(width, depth, side, self._macs_fn(float(width), float(depth), side))
        return self._cache[key]

    def remember(self, width: float, depth: float, side: int, macs: int) -> None:
        """Record a count (e.g. from a trained trial) so planning does not rebuild that model."""
        self._cache[self._key(width, depth, side)] = int(macs)
        if self.cache_path:
            from keras_convnets.study.results import atomic_write_text

            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.cache_path, json.dumps(self._cache, indent=0, sort_keys=True))

    # ------------------------------------------------------------------ trials
    def base(self) -> TrialSpec:
        return TrialSpec("base", "base", 0.0, 1.0, 1.0, self.base_side)

    def grid_points(self) -> list[tuple[float, float, float]]:
        return grid_points(self.config)

    def grid_trial(self, alpha: float, beta: float, gamma: float) -> TrialSpec:
        """phi = 1: depth alpha, width beta, resolution gamma (Eq. 3)."""
        return TrialSpec(f"grid-a{_tag(alpha)}-b{_tag(beta)}-g{_tag(gamma)}", "grid", 1.0, width=beta,
                         depth=alpha, resolution=self.side(gamma), alpha=alpha, beta=beta, gamma=gamma)

    def grid(self) -> list[TrialSpec]:
        return [self.grid_trial(*p) for p in self.grid_points()]

    def set_best(self, alpha: float, beta: float, gamma: float) -> None:
        c = self.config
        # The grid points satisfy the constraint by construction; a looser check only guards
        # against coefficients edited into results by hand.
        self.compound_rule = scaling.CompoundScaling(alpha, beta, gamma, target=c.target,
                                                     tolerance=max(c.tolerance, 0.2))

    def compound(self, phi: int) -> TrialSpec:
        rule = self.compound_rule
        d, w, r = rule.coefficients(phi)
        return TrialSpec(f"compound-phi{phi}", "compound", float(phi), width=w, depth=d, resolution=self.side(r),
                         alpha=rule.alpha, beta=rule.beta, gamma=rule.gamma)

    def compound_macs(self, phi: int) -> int:
        rule = self.compound_rule
        t = self.compound(phi) if phi > 1 else self.grid_trial(rule.alpha, rule.beta, rule.gamma)
        return self.macs(t.width, t.depth, t.resolution)

    def baseline(self, method: str, phi: int) -> TrialSpec:
        """Single-dimension scaling at the MACs of the compound model at ``phi``."""
        target = self.compound_macs(phi)
        if method == "resolution":
            side = self._match_side(target)
            return TrialSpec(f"resolution-phi{phi}", "resolution", float(phi), 1.0, 1.0, side, target_macs=target)
        if method == "width":
            v = self._match(lambda w: self.macs(width=w), target, power=2.0)
            return TrialSpec(f"width-phi{phi}", "width", float(phi), round(v, 4), 1.0, self.base_side, target_macs=target)
        if method == "depth":
            v = self._match(lambda d: self.macs(depth=d), target, power=1.0)
            return TrialSpec(f"depth-phi{phi}", "depth", float(phi), 1.0, round(v, 4), self.base_side, target_macs=target)
        raise ValueError(f"unknown baseline {method!r}")

    def _match_side(self, target: int) -> int:
        m = self.config.resolution_multiple
        ratio = target / self.macs()
        # MACs grow with the square of the side (same network, larger feature maps).
        guess = self.config.resolution * math.sqrt(ratio)
        lo = max(self.base_side, int(guess // m) * m)
        while lo > self.base_side and self.macs(side=lo) > target:
            lo -= m
        hi = lo
        while self.macs(side=hi) < target:
            lo, hi = hi, hi + m
        return min({lo, hi}, key=lambda s: abs(math.log(self.macs(side=s) / target)))

    def _match(self, f: Callable[[float], int], target: int, power: float, max_evals: int = 10,
               resolution: float = 0.003) -> float:
        """The multiplier v >= 1 whose MACs f(v) (non-decreasing, a staircase) come closest to
        ``target``: bracket it, then secant steps on log MACs against log v, each kept inside
        the middle half of the bracket so a flat stair cannot stall it; stops within 0.2% of the
        target, when the bracket is narrower than ``resolution`` (relative), or after
        ``max_evals`` counts. Ties go to the smaller multiplier."""
        seen: dict[float, float] = {}

        def g(v):
            v = round(v, 4)
            if v not in seen:
                seen[v] = math.log(f(v) / target)
            return seen[v]

        a, ga = 1.0, g(1.0)
        if ga >= 0:
            return 1.0
        # MACs grow about as v**power (width: quadratic, depth: linear).
        b = math.exp(-ga / power)
        gb = g(b)
        while gb < 0 and b < 64:
            a, ga, b = b, gb, b * math.exp(-gb / power) * 1.02
            gb = g(b)
        for _ in range(max_evals):
            if min(abs(ga), abs(gb)) < 0.002 or b - a < resolution * a:
                break
            la, lb = math.log(a), math.log(b)
            lm = la - ga * (lb - la) / (gb - ga)
            lm = min(max(lm, la + 0.25 * (lb - la)), lb - 0.25 * (lb - la))
            m = math.exp(lm)
            gm = g(m)
            if gm < 0:
                a, ga = m, gm
            else:
                b, gb = m, gm
        return min(seen, key=lambda v: (abs(seen[v]), v))

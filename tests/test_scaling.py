"""Compound-scaling maths (keras_convnets.scaling) and width/depth scaling of every registered
family that takes the knobs."""

from __future__ import annotations

import math

import pytest

from helpers import kc, registry
from helpers import reduced_build_args, small_input_shape as input_shape_of
from keras_convnets import scaling
from keras_convnets.scaling import CompoundScaling, grid, round_filters, round_repeats, round_resolution


# ----------------------------------------------------------------------------- rounding rules
@pytest.mark.parametrize(
    "filters, width, expected",
    [
        (32, 1.0, 32),   # unchanged at 1.0
        (32, 1.1, 32),   # 35.2 -> 32 (within 10%)
        (40, 1.1, 48),   # 44 -> 48 (nearest multiple of 8, halves up)
        (16, 1.4, 24),   # 22.4 -> 24
        (24, 1.2, 32),   # 28.8 -> 32
        (1280, 2.0, 2560),
        (8, 0.25, 8),    # never below the divisor
        (40, 0.5, 24),   # 20 -> 24 (nearest multiple of 8, halves up)
        (36, 0.5, 24),   # 18 -> 16 loses 11% -> +8
    ],
)
def test_round_filters(filters, width, expected):
    assert round_filters(filters, width) == expected
    assert round_filters(filters, width) % 8 == 0 or width == 1.0


def test_round_repeats_ceil():
    assert [round_repeats(r, 1.1) for r in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert [round_repeats(r, 3.1) for r in (1, 2, 3, 4)] == [4, 7, 10, 13]  # B7's stages
    assert round_repeats(3, 0.1) == 1  # at least one


def test_check_multiplier():
    assert scaling.check_multiplier("width_multiplier", 2) == 2.0
    for bad in (0, -1, float("nan"), float("inf"), "x", None):
        with pytest.raises(ValueError, match="width_multiplier"):
            scaling.check_multiplier("width_multiplier", bad)


def test_round_resolution():
    assert round_resolution(224 * 1.15) == 256  # 257.6
    assert round_resolution(228) == 232  # halves round up, not to even
    assert round_resolution(20, minimum=32) == 32
    assert round_resolution(40, minimum=75) == 80  # smallest multiple of 8 >= the minimum
    assert round_resolution(299) == 296
    with pytest.raises(ValueError, match="resolution"):
        round_resolution(0)


# ----------------------------------------------------------------------------- CompoundScaling
def test_paper_coefficients():
    cs = CompoundScaling()
    assert (cs.alpha, cs.beta, cs.gamma) == (1.2, 1.1, 1.15)
    assert math.isclose(cs.product, 1.92027, rel_tol=1e-5)
    assert cs.coefficients(0) == (1.0, 1.0, 1.0)
    d, w, r = cs.coefficients(2)
    assert math.isclose(d, 1.44) and math.isclose(w, 1.21) and math.isclose(r, 1.3225)
    assert math.isclose(cs.predicted_macs_growth(3), cs.product**3)
    assert "alpha=1.2" in repr(cs)


@pytest.mark.parametrize("kwargs, match", [
    ({"alpha": 0.9}, "alpha must be >= 1"),
    ({"beta": 0.5}, "beta must be >= 1"),
    ({"gamma": "x"}, "gamma must be a number"),
    ({"alpha": 2.0}, "not within"),                              # 3.2 vs 2
    ({"alpha": 1.0, "beta": 1.0, "gamma": 1.0}, "not within"),   # 1.0 vs 2
    ({"tolerance": 0.01}, "not within"),                         # the paper's 1.92 is 4% off 2
    ({"target": 1.0}, "target"),
    ({"tolerance": 1.5}, "tolerance"),
])
def test_compound_scaling_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompoundScaling(**kwargs)


def test_other_targets_and_tolerances():
    CompoundScaling(1.2, 1.1, 1.15, tolerance=0.05)
    CompoundScaling(1.0, 1.0, 1.0, target=1.5, tolerance=0.5)
    cs = CompoundScaling(2.0, 1.0, 1.0)  # depth only, product exactly 2
    assert cs.coefficients(1) == (2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="phi"):
        cs.coefficients(-1)


def test_apply_efficientnet():
    cs = CompoundScaling()
    assert cs.apply("efficientnet_b0", 0) == {"depth_multiplier": 1.0, "width_multiplier": 1.0,
                                              "input_shape": (224, 224, 3)}
    args = cs.apply("efficientnet_b0", 2)
    assert math.isclose(args["depth_multiplier"], 1.44) and math.isclose(args["width_multiplier"], 1.21)
    assert args["input_shape"] == (296, 296, 3)  # 224 x 1.3225 = 296.2
    # relative to the variant: B3 is already width 1.2, depth 1.4, 300 px
    args = cs.apply("efficientnet_b3", 1)
    assert math.isclose(args["width_multiplier"], 1.2 * 1.1) and math.isclose(args["depth_multiplier"], 1.4 * 1.2)
    assert args["input_shape"] == (344, 344, 3)  # 345
    # another base resolution, and the floor at the family's minimum input
    assert cs.apply("efficientnet_b0", 1, base_resolution=64)["input_shape"] == (72, 72, 3)
    assert cs.apply("efficientnet_b0", 0, base_resolution=8)["input_shape"] == (32, 32, 3)
    with pytest.raises(ValueError, match="base_resolution"):
        cs.apply("efficientnet_b0", 1, base_resolution=0)


def _fake_spec(monkeypatch, name, **meta):
    spec = registry.ModelSpec(name=name, builder=lambda **k: None, family="fake", paper="p", year=2000,
                              arxiv=None, **meta)
    registry._load()
    monkeypatch.setitem(registry._REGISTRY, name, spec)
    return spec


def test_apply_refuses_knobs_a_family_lacks(monkeypatch):
    _fake_spec(monkeypatch, "fixed_net", default_size=227, min_size=227, knobs=())
    _fake_spec(monkeypatch, "width_net", default_size=299, min_size=75, knobs=("width_multiplier", "resolution"))
    # at phi = 0 a fixed-size network keeps its (non-multiple-of-8) input
    assert CompoundScaling().apply("fixed_net", 0) == {"input_shape": (227, 227, 3)}
    with pytest.raises(ValueError, match="cannot be scaled by depth_multiplier"):
        CompoundScaling().apply("fixed_net", 1)
    with pytest.raises(ValueError, match="fixed input size"):
        scaling.scaled_build_args("fixed_net", resolution=1.2)
    assert scaling.scaled_build_args("width_net", width=2.0, resolution=0.1) == {
        "width_multiplier": 2.0, "input_shape": (80, 80, 3)}


# ----------------------------------------------------------------------------- grid
def test_grid_contains_the_papers_choice_and_obeys_the_constraint():
    candidates = grid()
    assert (1.2, 1.1, 1.15) in candidates
    assert candidates == sorted(candidates)
    for a, b, g in candidates:
        assert min(a, b, g) >= 1
        assert abs(a * b * b * g * g - 2.0) <= 0.05 * 2.0
    # a finer tolerance keeps a subset; a coarser step gives fewer points
    tight = grid(tolerance=0.01)
    assert set(tight) < set(candidates) and (1.2, 1.1, 1.15) not in tight
    assert len(grid(step=0.1)) < len(candidates)
    assert (2.0, 1.0, 1.0) in grid(step=0.5, tolerance=0.0)


@pytest.mark.parametrize("kwargs", [{"step": 0}, {"step": 2}, {"tolerance": -0.1}, {"target": 0.5},
                                    {"max_value": 0.5}, {"target": 100.0, "max_value": 1.2}])
def test_grid_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        grid(**kwargs)


# ----------------------------------------------------------------------------- every family
SCALABLE = [n for n in kc.list_models()
            if {"width_multiplier", "depth_multiplier"} & set(registry.get(n).knobs)]


def _representatives() -> list[str]:
    """The scalable variant with the fewest reference parameters in each family.

    Why not every variant: building every registered model scaled by 1.5 (46 models, ResNet-1001,
    SENet-154 and NASNet-A Large among them) took over 17 minutes for about half of them on the
    shared 2-core machine, against a whole-suite budget well under 20; the variants of a family
    share one builder, and each variant's own knobs are still validated by the registry test
    (multiplier 0 names the knob) and its compound-scaling arguments by test_apply_gives_valid_args.
    """
    best: dict[str, str] = {}
    for name in SCALABLE:
        spec = registry.get(name)
        if spec.family not in best or (spec.ref_params, name) < (registry.get(best[spec.family]).ref_params,
                                                                 best[spec.family]):
            best[spec.family] = name
    return sorted(best.values())


@pytest.mark.parametrize("name", _representatives())
def test_width_and_depth_grow_params(name):
    """At a small input, 1.5x the variant's width multiplier, then 1.5x its depth multiplier,
    each gives more parameters than the variant built at the same input (flatten-based heads,
    e.g. AlexNet's, have input-dependent parameter counts, so the base is built too)."""
    spec = registry.get(name)
    shape = input_shape_of(spec)
    extra = reduced_build_args(spec)  # the deepest nets at a quarter depth (helpers.DEEP)
    base = registry.cost(name, spec.params_kind, input_shape=shape, **extra)["params"]
    for knob in ("width_multiplier", "depth_multiplier"):
        if knob not in spec.knobs:
            continue
        value = float(extra.get(knob, spec.config.get(knob, 1.0))) * 1.5
        params = registry.cost(name, spec.params_kind, input_shape=shape, **{**extra, knob: value})["params"]
        assert params > base, f"{name}: {knob}={value} gives {params:,} {spec.params_kind} params, base {base:,}"


@pytest.mark.parametrize("name", SCALABLE)
def test_apply_gives_valid_args(name):
    """apply() returns the family's knobs only, relative to the variant, with a valid input side;
    a family with a fixed input cannot follow the compound rule past phi = 0 and says so. (The
    builders' acceptance of these knobs is what test_width_and_depth_grow_params builds.)"""
    spec = registry.get(name)
    cs = CompoundScaling()
    for phi in (0, 1, 2):
        if phi > 0 and not {"depth_multiplier", "width_multiplier", "resolution"} <= set(spec.knobs):
            with pytest.raises(ValueError, match="fixed input size|cannot be scaled"):
                cs.apply(name, phi)
            continue
        args = cs.apply(name, phi)
        d, w, _ = cs.coefficients(phi)
        assert set(args) <= {"depth_multiplier", "width_multiplier", "input_shape"}
        for knob, mult in (("depth_multiplier", d), ("width_multiplier", w)):
            if knob in spec.knobs:
                assert math.isclose(args[knob], float(spec.config.get(knob, 1.0)) * mult)
            else:
                assert knob not in args
        side = args["input_shape"][0]
        assert args["input_shape"] == (side, side, spec.channels)
        assert side >= spec.min_size
        if phi == 0:
            assert side == spec.default_size
        else:
            assert side % 8 == 0 and side > spec.default_size - 8

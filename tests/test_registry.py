"""One parametrised test over the whole registry: every builder keeps the contract."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import kc, random_images, reduced_build_args, registry, small_input_shape, train_one_step, within

MODELS = kc.list_models()


def test_registry_is_populated():
    assert len(MODELS) >= 1
    for name in MODELS:
        info = kc.model_info(name)
        assert info["family"] and info["paper"] and info["year"] > 1980
        assert info["reference_params"]["value"], f"{name} registers no reference parameter count"
        assert info["reference_params"]["source"], f"{name}: reference params without a source"
        assert info["reference_macs"]["value"], f"{name} registers no reference MACs"
        assert info["min_input_size"] <= info["default_input_shape"][0]


@pytest.mark.parametrize("name", MODELS)
def test_reference_counts(name):
    """Params (the reference's kind) and MACs at the default input equal the registered ones:
    exactly where the reference was counted on an implementation, within the paper's rounding
    otherwise."""
    from keras_convnets.flops import count_macs

    spec = registry.get(name)
    model = kc.build(name)
    assert model.name == name
    params = registry.param_count(model, spec.params_kind)
    assert within(params, spec.ref_params, spec.params_tolerance), (
        f"{name}: {params:,} {spec.params_kind} params, reference {spec.ref_params:,} "
        f"({spec.params_source}, tolerance {spec.params_tolerance})"
    )
    macs = count_macs(model)
    assert within(macs, spec.ref_macs, spec.macs_tolerance), (
        f"{name}: {macs:,} MACs, reference {spec.ref_macs:,} ({spec.macs_source}, tolerance {spec.macs_tolerance})"
    )


@pytest.mark.parametrize("name", MODELS)
def test_reload_and_train_step(name, tmp_path):
    """Small input, few classes: a `.keras` round trip with safe_mode=True gives identical
    inference outputs, and one SGD step gives a finite loss. The step runs eagerly: tracing the
    backward graph of a 100-layer net costs ~7x the step itself, and the layers' code is the same.
    The deepest models run at a quarter depth (helpers.DEEP)."""
    import keras

    spec = registry.get(name)
    shape = small_input_shape(spec)
    model = kc.build(name, input_shape=shape, classes=3, **reduced_build_args(spec))
    x = random_images(shape)
    out = np.asarray(model(x, training=False))
    assert out.shape == (2, 3)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(out, np.asarray(reloaded(x, training=False)))
    loss = train_one_step(model, x, 3)
    assert np.isfinite(loss), f"{name}: loss {loss}"


def _family_representatives() -> list[str]:
    """The cheapest model of each family: the pooling variants are written once (blocks.py) and
    checked in full there; every model still checks its headless 'avg' path."""
    return sorted(min(kc.list_models(f), key=lambda n: registry.get(n).ref_params) for f in kc.list_families())


@pytest.mark.parametrize("name", MODELS)
def test_headless_avg_pooling(name):
    spec = registry.get(name)
    shape = small_input_shape(spec)
    pooled = kc.build(name, input_shape=shape, include_top=False, pooling="avg", **reduced_build_args(spec))
    out = pooled(random_images(shape, n=1), training=False)
    assert len(out.shape) == 2 and out.shape[0] == 1 and out.shape[1] > 0


@pytest.mark.parametrize("name", _family_representatives())
def test_headless_pooling_variants(name):
    spec = registry.get(name)
    shape = small_input_shape(spec)
    x = random_images(shape, n=1)
    extra = reduced_build_args(spec)
    fmap = kc.build(name, input_shape=shape, include_top=False, **extra)(x, training=False)
    assert len(fmap.shape) == 4, f"{name}: include_top=False, pooling=None should give a feature map"
    for pooling in ("avg", "max"):
        pooled = kc.build(name, input_shape=shape, include_top=False, pooling=pooling, **extra)
        assert tuple(pooled(x, training=False).shape) == (1, fmap.shape[-1])


@pytest.mark.parametrize("name", MODELS)
def test_bad_arguments(name):
    spec = registry.get(name)
    shape = small_input_shape(spec)
    with pytest.raises(ValueError, match="classes"):
        kc.build(name, classes=0, input_shape=shape)
    with pytest.raises(ValueError, match="pooling"):
        kc.build(name, include_top=False, pooling="mean", input_shape=shape)
    small = spec.min_size - 1
    with pytest.raises(ValueError, match=f"at least {spec.min_size}x{spec.min_size}"):
        kc.build(name, input_shape=(small, small, spec.channels))
    for knob in ("width_multiplier", "depth_multiplier"):
        if knob in spec.knobs:
            with pytest.raises(ValueError, match=knob):
                kc.build(name, input_shape=shape, **{knob: 0})


def test_unknown_model_names_the_closest():
    with pytest.raises(ValueError, match="Did you mean: .*"):
        kc.build(MODELS[0][:-1] + "x")
    with pytest.raises(ValueError, match="Unknown model 'no_such_net'"):
        kc.build("no_such_net")

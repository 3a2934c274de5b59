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
    otherwise. Counted on a weightless build (registry.weightless; that it counts what a real
    build counts is test_weightless_counts_what_a_built_model_counts)."""
    from keras_convnets.flops import count_macs

    spec = registry.get(name)
    with registry.weightless():
        model = kc.build(name)
        assert model.name == name
        params = registry.param_count(model, spec.params_kind)
        macs = count_macs(model)
    assert within(params, spec.ref_params, spec.params_tolerance), (
        f"{name}: {params:,} {spec.params_kind} params, reference {spec.ref_params:,} "
        f"({spec.params_source}, tolerance {spec.params_tolerance})"
    )
    assert within(macs, spec.ref_macs, spec.macs_tolerance), (
        f"{name}: {macs:,} MACs, reference {spec.ref_macs:,} ({spec.macs_source}, tolerance {spec.macs_tolerance})"
    )


def _round_trip(model, x, tmp_path) -> np.ndarray:
    """Inference outputs on ``x``, checked identical after a `.keras` round trip (safe_mode=True)."""
    import keras

    out = np.asarray(model(x, training=False))
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(out, np.asarray(reloaded(x, training=False)))
    return out


@pytest.mark.parametrize("name", MODELS)
def test_headless_round_trip_and_train_step(name, tmp_path):
    """Every model, headless with average pooling at a small input: one feature vector per image,
    identical after a `.keras` round trip, and one SGD step through the whole body (a 3-way dense
    layer on the features) gives a finite loss. One build per model, since the bodies are where
    models differ: each builder's own top (include_top, classes) is checked on its cheapest model
    below, and every model's top at the default input by test_reference_counts' exact counts.
    The steps run eagerly: tracing the backward graph of a 100-layer net costs ~7x the step
    itself, and the layers' code is the same. The deepest models run at reduced depth
    (helpers.DEEP)."""
    import keras

    spec = registry.get(name)
    shape = small_input_shape(spec)
    pooled = kc.build(name, input_shape=shape, include_top=False, pooling="avg", **reduced_build_args(spec))
    x = random_images(shape)
    features = _round_trip(pooled, x, tmp_path)
    assert features.ndim == 2 and features.shape[0] == 2 and features.shape[1] > 0, features.shape
    head = keras.layers.Dense(3, activation="softmax", name="probe")
    loss = train_one_step(keras.Model(pooled.input, head(pooled.output)), x, 3)
    assert np.isfinite(loss), f"{name}: loss {loss}"


def _builder_representatives() -> list[str]:
    """The cheapest model of each builder module: the top (classifier, dropout, pooling) is written
    once a module (most through blocks.classifier); every model still checks its headless 'avg'
    path above."""
    by_module: dict[str, list[str]] = {}
    for name in MODELS:
        by_module.setdefault(registry.get(name).builder.__module__, []).append(name)
    return sorted(min(names, key=lambda n: registry.get(n).ref_params) for names in by_module.values())


@pytest.mark.parametrize("name", _builder_representatives())
def test_top_and_pooling_variants(name, tmp_path):
    """The builder's classifier with classes=3: softmax rows, the same after a round trip, a finite
    SGD step; include_top=False gives the feature map, pooling 'avg' / 'max' its channels (output
    shapes, on weightless builds)."""
    spec = registry.get(name)
    shape = small_input_shape(spec)
    extra = reduced_build_args(spec)
    x = random_images(shape)
    topped = kc.build(name, input_shape=shape, classes=3, **extra)
    probs = _round_trip(topped, x, tmp_path)
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    loss = train_one_step(topped, x, 3)
    assert np.isfinite(loss), f"{name}: loss {loss}"
    with registry.weightless():
        fmap = kc.build(name, input_shape=shape, include_top=False, **extra).output.shape
        assert len(fmap) == 4, f"{name}: include_top=False, pooling=None should give a feature map, got {fmap}"
        for pooling in ("avg", "max"):
            pooled = kc.build(name, input_shape=shape, include_top=False, pooling=pooling, **extra)
            assert tuple(pooled.output.shape) == (None, fmap[-1]), (pooling, pooled.output.shape)


@pytest.mark.parametrize("name", _builder_representatives())
def test_weightless_counts_what_a_built_model_counts(name):
    """A weightless build (no variable is created) has the real build's layer names, parameter
    counts of every kind and MACs; no deferred variable is left for Keras to initialise later."""
    import keras
    from keras.src.backend.common import global_state

    from keras_convnets.flops import count_macs

    spec = registry.get(name)
    kwargs = {"input_shape": small_input_shape(spec), "classes": 3, **reduced_build_args(spec)}
    real = kc.build(name, **kwargs)
    with registry.weightless():
        light = kc.build(name, **kwargs)
    assert all(w._value is None for w in light.weights)  # deferred, and not initialised on the way out
    assert [layer.name for layer in light.layers] == [layer.name for layer in real.layers]
    for kind in registry.PARAM_KINDS:
        assert registry.param_count(light, kind) == registry.param_count(real, kind), kind
    assert count_macs(light) == count_macs(real)
    assert registry.cost(name, **kwargs) == {"params": real.count_params(), "macs": count_macs(real)}
    assert not global_state.get_global_attribute("uninitialized_variables", [])
    layer = keras.layers.Dense(2)
    layer.build((None, 3))  # after the scope, variables are created with values again
    assert all(w._value is not None for w in layer.weights)


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

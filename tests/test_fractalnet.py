"""FractalNet: the join's drop-path (local never empties a join, global passes one column for the
whole network), determinism at inference, column extraction (the anytime property), and the
recount formulas the registry's reference numbers come from. Tiny nets (widths 8/16, 32x32)."""

import itertools
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from helpers import jax_env, max_abs_diff, random_images, registry
from keras_convnets.flops import count_macs
from keras_convnets.layers import FractalJoin, FractalPathDraw
from keras_convnets.models.fractalnet import (
    extract_column,
    fractal_macs,
    fractal_param_count,
    fractalnet,
    set_forced_column,
)

TINY = dict(columns=3, blocks=2, widths=(8, 16), input_shape=(32, 32, 3), classes=3)


def _branches(n, shape=(2, 3, 3, 1)):
    """Input i is the constant 10**i, so the output names the subset that was averaged."""
    return [np.full(shape, 10.0**i, "float32") for i in range(n)]


def _subset_means(values):
    return {
        subset: float(np.mean([values[i] for i in subset]))
        for r in range(1, len(values) + 1)
        for subset in itertools.combinations(range(len(values)), r)
    }


def _which_subset(out, values):
    means = _subset_means(values)
    out = np.asarray(out)
    assert np.all(out == out.flat[0]), "drop-path must be drawn once per batch, not per element"
    hits = [s for s, m in means.items() if np.isclose(out.flat[0], m, rtol=1e-6)]
    assert len(hits) == 1, f"output {out.flat[0]} is not the mean of any non-empty subset of the inputs"
    return hits[0]


# ----------------------------------------------------------------------------- the join layer
def test_join_is_the_plain_mean_at_inference():
    xs = _branches(3)
    join = FractalJoin((1, 2, 3), drop_rate=0.5, seed=1)
    draw = np.array([1.0, 2.0], "float32")  # a global draw is ignored at inference
    for inputs in (xs, xs + [draw]):
        np.testing.assert_allclose(np.asarray(join(inputs, training=False)), np.full(xs[0].shape, 37.0), rtol=1e-6)


def test_local_drop_path_never_empties_a_join():
    values = [10.0**i for i in range(3)]
    xs = _branches(3)
    seen = {}
    for rate, trials in ((0.9, 60), (0.15, 200)):
        join = FractalJoin((1, 2, 3), drop_rate=rate, seed=11)
        subsets = [_which_subset(join(xs, training=True), values) for _ in range(trials)]
        kept = np.mean([[i in s for i in range(3)] for s in subsets], axis=0)
        seen[rate] = (set(subsets), kept)
    # rate 0.9: nearly always all dropped, so one input is rescued: mostly singletons, never empty
    singles, _ = seen[0.9]
    assert {(0,), (1,), (2,)} <= singles
    # rate 0.15: each input survives ~85% of the batches
    subsets, kept = seen[0.15]
    assert (0, 1, 2) in subsets and len(subsets) >= 4
    assert np.all((kept > 0.75) & (kept < 0.95)), kept


def test_local_drop_path_is_reproducible_with_a_seed():
    xs = _branches(3)

    def draws(seed):
        join = FractalJoin((1, 2, 3), drop_rate=0.5, seed=seed)
        return [float(np.asarray(join(xs, training=True)).flat[0]) for _ in range(20)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_global_drop_path_passes_exactly_the_drawn_column():
    xs = _branches(3)
    join = FractalJoin((2, 3, 4), drop_rate=0.15, seed=0)
    for i, column in enumerate((2, 3, 4)):
        out = join(xs + [np.array([1.0, column], "float32")], training=True)
        np.testing.assert_array_equal(np.asarray(out), xs[i])
    # a join the drawn column does not enter lies off that column's path: plain mean, finite
    out = join(xs + [np.array([1.0, 1.0], "float32")], training=True)
    np.testing.assert_allclose(np.asarray(out), np.full(xs[0].shape, 37.0), rtol=1e-6)
    # a local draw ([0, .]) keeps local drop-path
    values = [10.0**i for i in range(3)]
    local = {_which_subset(join(xs + [np.array([0.0, 2.0], "float32")], training=True), values) for _ in range(60)}
    assert len(local) > 1


def test_forced_column_in_training_and_inference():
    xs = _branches(3)
    join = FractalJoin((1, 2, 3), drop_rate=0.5, seed=0, force_column=2)
    for training in (False, True):
        np.testing.assert_array_equal(np.asarray(join(xs, training=training)), xs[1])
    assert FractalJoin.from_config(join.get_config()).force_column == 2


def test_path_draw_mixes_global_and_local_and_picks_any_column():
    draw = FractalPathDraw(4, global_ratio=0.5, seed=5)
    x = np.zeros((2, 4, 4, 1), "float32")
    np.testing.assert_array_equal(np.asarray(draw(x, training=False)), [0.0, 0.0])
    d = np.array([np.asarray(draw(x, training=True)) for _ in range(200)])
    assert set(np.unique(d[:, 0])) == {0.0, 1.0}
    assert 0.4 < d[:, 0].mean() < 0.6
    assert set(np.unique(d[:, 1])) == {1.0, 2.0, 3.0, 4.0}
    again = FractalPathDraw(4, global_ratio=0.5, seed=5)
    np.testing.assert_array_equal(np.array([np.asarray(again(x, training=True)) for _ in range(200)]), d)


def test_join_rejects_bad_arguments():
    with pytest.raises(ValueError, match="two or more distinct"):
        FractalJoin((1,))
    with pytest.raises(ValueError, match=r"drop_rate must be in \[0, 1\)"):
        FractalJoin((1, 2), drop_rate=1.0)
    with pytest.raises(ValueError, match="global_ratio"):
        FractalPathDraw(3, global_ratio=1.5)


# ----------------------------------------------------------------------------- the network
def test_deterministic_at_inference_stochastic_in_training():
    model = fractalnet(**TINY, dropout_rate=0.0, seed=1)  # randomness from drop-path only
    x = random_images(TINY["input_shape"], n=4)
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), np.asarray(model(x, training=False)))
    outs = [np.asarray(model(x, training=True)) for _ in range(6)]
    assert max(max_abs_diff(outs[0], o) for o in outs[1:]) > 1e-4


def test_global_drop_path_runs_exactly_one_column_of_the_network():
    """Always-global training batches: the fractal net's output is, each batch, exactly that of
    one single-column net (BN in training mode, so the batch statistics match too)."""
    model = fractalnet(**TINY, dropout_rate=0.0, global_path_ratio=1.0, seed=2)
    columns = {k: extract_column(model, k) for k in (1, 2, 3)}
    x = random_images(TINY["input_shape"], n=4)
    refs = {k: np.asarray(c(x, training=True)) for k, c in columns.items()}
    picked = []
    for _ in range(12):
        out = np.asarray(model(x, training=True))
        matches = [k for k, ref in refs.items() if max_abs_diff(out, ref) < 1e-5]
        assert len(matches) == 1, f"output matches columns {matches}"
        picked.append(matches[0])
    assert len(set(picked)) >= 2, picked


def test_extracted_column_carries_the_trained_weights_and_equals_the_forced_path():
    model = fractalnet(**TINY, seed=3)
    x = random_images(TINY["input_shape"], n=8, seed=1)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, np.arange(8) % 3, batch_size=4, epochs=2, verbose=0)  # graph-mode training with drop-path
    full_names = {layer.name for layer in model.layers}
    for k in (1, 2, 3):
        net = extract_column(model, k)
        convs = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
        assert len(convs) == TINY["blocks"] * 2 ** (k - 1)
        assert {layer.name for layer in net.layers} - {"input_layer"} <= full_names
        assert not any(isinstance(layer, FractalJoin) for layer in net.layers)
        for layer in net.layers:
            for a, b in zip(layer.get_weights(), model.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
        assert set_forced_column(model, k) == TINY["blocks"] * 2
        assert max_abs_diff(net(x, training=False), model(x, training=False)) < 1e-5
    set_forced_column(model, None)
    # the plain fractal net (mean joins) is none of its columns
    assert max_abs_diff(net(x, training=False), model(x, training=False)) > 1e-5


def test_column_builder_shares_names_with_the_fractal_net():
    full = fractalnet(**TINY)
    deepest = fractalnet(**TINY, column=3)
    assert {layer.name for layer in deepest.layers} <= {layer.name for layer in full.layers}
    assert deepest.count_params() < full.count_params()


def test_training_is_reproducible_with_a_seed():
    x = random_images(TINY["input_shape"], n=4)
    y = np.arange(4) % 3

    def losses():
        keras.utils.set_random_seed(0)
        model = fractalnet(**TINY, seed=7)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
        return [float(model.train_on_batch(x, y)) for _ in range(3)]

    assert losses() == losses()


@pytest.mark.parametrize(
    "columns,widths,size",
    [(1, (8, 16), 32), (2, (8, 16, 24), 16), (4, (8, 8), 8)],
)
def test_recount_formulas_match_built_models(columns, widths, size):
    model = fractalnet(columns=columns, widths=widths, input_shape=(size, size, 3), classes=5)
    for kind in ("trainable", "total", "weights"):
        assert fractal_param_count(columns, widths, classes=5, kind=kind) == registry.param_count(model, kind)
    assert fractal_macs(columns, widths, input_size=size, classes=5) == count_macs(model)


def test_fractalnet20_recount_and_depth():
    spec = registry.get("fractalnet20")
    assert spec.ref_params == fractal_param_count(3, (64, 128, 256, 512, 512)) == 33_724_618
    # the paper's wiring, 3x3 kernels only: the ~33.7M of the recount (the paper says 38.6M)
    kernels = fractal_param_count(3, (64, 128, 256, 512, 512), kind="weights") - 512 * 10
    assert kernels == 33_698_880
    deepest = fractalnet(columns=3, widths=(8,) * 5, column=3)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in deepest.layers) == 20
    deepest40 = fractalnet(columns=4, widths=(8,) * 5, column=4)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in deepest40.layers) == 40


def test_depth_multiplier_adds_blocks_within_the_pooled_stages():
    """Depth scales the number of blocks; the extra ones share the stages, so the input the pools
    need is unchanged (the registry's min_size holds at any depth)."""
    model = fractalnet(columns=2, widths=(8, 16), depth_multiplier=1.5, input_shape=(4, 4, 3))  # 3 blocks
    names = {layer.name for layer in model.layers}
    assert {"block1_pool", "block3_pool"} <= names and "block2_pool" not in names
    assert model.get_layer("block2_col1_conv1_conv").filters == model.get_layer("block3_col2_conv2_conv").filters == 16
    with pytest.raises(ValueError, match="at least 4x4"):
        fractalnet(columns=2, widths=(8, 16), depth_multiplier=1.5, input_shape=(3, 3, 3))
    # fewer blocks than stages drop the last stages (and their pools)
    shallow = fractalnet(columns=2, widths=(8, 16), depth_multiplier=0.5, input_shape=(2, 2, 3))
    assert "block2_col1_conv1_conv" not in {layer.name for layer in shallow.layers}
    # a depth-scaled net still gives up its columns
    net = extract_column(model, 2)
    assert {layer.name for layer in net.layers if layer.name.startswith("block") and layer.name.endswith("_pool")} == {
        "block1_pool", "block3_pool"}
    set_forced_column(model, 2)
    x = random_images((4, 4, 3), n=2)
    assert max_abs_diff(net(x, training=False), model(x, training=False)) < 1e-5


def test_bad_fractal_arguments():
    with pytest.raises(ValueError, match="one width per block"):
        fractalnet(columns=2, blocks=3, widths=(8, 16))
    with pytest.raises(ValueError, match="column must be"):
        fractalnet(**TINY, column=4)
    with pytest.raises(ValueError, match="dropout_rate"):
        fractalnet(**TINY, dropout_rate=(0.1,))
    with pytest.raises(ValueError, match="global_path_ratio"):
        fractalnet(**TINY, global_path_ratio=2)


JAX_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax"
    from keras_convnets.models.fractalnet import fractalnet
    model = fractalnet(columns=3, blocks=2, widths=(8, 16), input_shape=(16, 16, 3), classes=3,
                       dropout_rate=0.0, seed=1)
    x = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    # learning rate 0: the weights stay put, so different losses can only come from drop-path
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    losses = [float(model.train_on_batch(x, np.arange(4) % 3)) for _ in range(6)]
    a, b = (model.predict(x, verbose=0) for _ in range(2))
    print("RESULT " + json.dumps({"losses": losses, "inference_diff": float(np.abs(a - b).max())}))
    """
)


def test_drop_path_on_the_jax_backend():
    env = jax_env()
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    losses = result["losses"]
    assert np.all(np.isfinite(losses))
    assert max(losses) - min(losses) > 1e-4, f"jitted training steps are not stochastic: {losses}"
    assert result["inference_diff"] == 0.0

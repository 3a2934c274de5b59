"""The builders use keras.layers / keras.ops only, so they run on the JAX backend: in a
subprocess with KERAS_BACKEND=jax, one model of every family runs a compiled forward pass in
inference mode and one compiled training step, and counts the same on a weightless build. The
families run in three subprocesses of about a minute each (measured 2026-12: nas 46 s, googlenet
38, inception 33, efficientnet 31, resnet 15, densenet 14, fractalnet 7, alexnet 6, lenet 4), so
that pytest-xdist spreads them over the workers instead of one 4-minute test holding one worker at
the end of the suite."""

import json
import subprocess
import sys
import textwrap

import pytest

from helpers import jax_env

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    assert keras.backend.backend() == "jax", keras.backend.backend()
    import keras_convnets as kc
    from keras_convnets import registry
    done = {}
    for family in sys.argv[1:]:
        name = min(kc.list_models(family), key=lambda n: registry.get(n).ref_params or 0)
        spec = registry.get(name)
        side = spec.test_size or spec.default_size
        # The same blocks at a quarter of the depth: the check is that every layer the family
        # uses runs on JAX, and XLA-compiling a 100-layer train step on 2 cores takes minutes.
        shallow = {"depth_multiplier": 0.25} if "depth_multiplier" in spec.knobs else {}
        args = dict(input_shape=(side, side, spec.channels), classes=3, **shallow)
        model = kc.build(name, **args)
        # The GPU study's MAC matching counts on weightless builds under JAX.
        assert kc.cost(name, **args) == {"params": model.count_params(), "macs": kc.count_macs(model)}, name
        x = np.random.default_rng(0).uniform(size=(2, side, side, spec.channels)).astype("float32")
        # Compiled, not eager: an eager JAX forward dispatches op by op (~20 s a family here).
        assert model.predict_on_batch(x).shape == (2, 3)
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        loss = float(model.train_on_batch(x, np.array([0, 1])))
        assert np.isfinite(loss), (name, loss)
        done[family] = name
    print("RESULT " + json.dumps(done))
    """
)


CHUNKS = [("nas", "lenet", "alexnet", "fractalnet"), ("googlenet", "densenet", "resnet"),
          ("inception", "efficientnet")]


def test_the_chunks_cover_every_family():
    import keras_convnets as kc

    assert sorted(f for chunk in CHUNKS for f in chunk) == kc.list_families()


@pytest.mark.heavy
@pytest.mark.parametrize("families", CHUNKS, ids=["-".join(c) for c in CHUNKS])
def test_one_model_per_family_runs_on_jax(families):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *families], env=jax_env(), capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    done = json.loads(line[len("RESULT "):])
    assert sorted(done) == sorted(families)

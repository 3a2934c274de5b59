"""The one shared helper for model tests (keras-hub's idea): every check a builder must pass,
written once, run by the parametrised registry test."""

from __future__ import annotations

import os

import numpy as np
import keras

import keras_convnets as kc
from keras_convnets import registry


def small_input_shape(spec) -> tuple[int, int, int]:
    side = spec.test_size or spec.default_size
    return (side, side, spec.channels)


# The deepest registered models, whose `.keras` round trip plus an eager training step costs
# 15-115 s each on a 2-core machine (bench: tests' --durations, 2026-12). Their round-trip and
# headless checks build them at a quarter of their depth (``depth_multiplier=0.25``): the same
# block and cell types, widths, SE / groups / genotype, fewer repeats; test_reference_counts still
# builds each at full depth and checks its exact parameters and MACs. KC_FULL_DEPTH_TESTS=1 runs
# every check at full depth.
DEEP = frozenset({
    "resnet101", "resnet152", "resnet152_v2", "resnet164_preact", "resnet1001_preact", "resnext101_32x8d",
    "seresnet101", "seresnet152", "senet154", "densenet169", "densenet201", "fractalnet40",
    "inception_resnet_v2", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "nasnet_cifar", "nasnet_mobile", "nasnet_large", "pnasnet5_mobile", "pnasnet5_large",
    "amoebanet_a_mobile", "amoebanet_a",
})
# The 1001-layer net is resnet164_preact's blocks 111 times a stage instead of 18: at a quarter it
# would still be 28 a stage (849 layers, 30 s a check); at a twentieth it has 6, about as many
# as resnet164_preact's quarter, and every kind of block.
DEPTH_FRACTION = {"resnet1001_preact": 0.05}


def reduced_build_args(spec) -> dict:
    """Extra build arguments for the round-trip checks: a quarter depth for the DEEP models."""
    if spec.name in DEEP and "depth_multiplier" in spec.knobs and not os.environ.get("KC_FULL_DEPTH_TESTS"):
        fraction = DEPTH_FRACTION.get(spec.name, 0.25)
        return {"depth_multiplier": fraction * float(spec.config.get("depth_multiplier", 1.0))}
    return {}


def jax_env(**extra) -> dict:
    """The environment of a KERAS_BACKEND=jax subprocess on the CPU. XLA's cheapest CPU code
    generation: these checks compile each train step once and run it once, and the default
    optimisation level doubles the compile time of a 100-layer step (measured 2026-12)."""
    flags = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    return {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip(), **extra}


def random_images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, *shape)).astype("float32")


def within(value: int, ref: int, tolerance: float) -> bool:
    return value == ref if tolerance == 0 else abs(value - ref) <= tolerance * ref


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype="float64") - np.asarray(b, dtype="float64"))))


def train_one_step(model, x, classes):
    y = np.arange(len(x)) % classes
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy", run_eagerly=True)
    return float(model.train_on_batch(x, y))


def transfer_and_compare(ours, reference, x) -> float:
    """Load the reference's weights into ours (same order and shapes) and return the largest
    output difference on ``x``."""
    ours.set_weights(reference.get_weights())
    return max_abs_diff(ours(x, training=False), reference(x, training=False))


__all__ = ["kc", "registry", "small_input_shape", "DEEP", "reduced_build_args", "jax_env", "random_images",
           "within", "max_abs_diff", "train_one_step", "transfer_and_compare", "VariablesCreated"]


class VariablesCreated(keras.callbacks.Callback):
    """A callback: the names of the variables created between the start and the end of ``fit``
    (training.build_training_state's tests)."""

    def __init__(self):
        super().__init__()
        self.names = []

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        def creator(next_creator, **kwargs):
            self.names.append(kwargs.get("name"))
            return next_creator(**kwargs)

        self._scope = tf.variable_creator_scope(creator)
        self._scope.__enter__()

    def on_train_end(self, logs=None):
        self._scope.__exit__(None, None, None)

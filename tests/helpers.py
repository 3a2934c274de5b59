"""The one shared helper for model tests (keras-hub's idea): every check a builder must pass,
written once, run by the parametrised registry test."""

from __future__ import annotations

import numpy as np
import keras

import keras_convnets as kc
from keras_convnets import registry


def small_input_shape(spec) -> tuple[int, int, int]:
    side = spec.test_size or spec.default_size
    return (side, side, spec.channels)


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


__all__ = ["kc", "registry", "small_input_shape", "random_images", "within", "max_abs_diff",
           "train_one_step", "transfer_and_compare"]

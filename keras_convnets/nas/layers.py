"""The cell networks' own layer: TF-slim's scheduled drop-path."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["ScheduledDropPath", "cell_keep_prob", "scheduled_keep_prob", "set_drop_path_step"]

PACKAGE = "keras_convnets"


def cell_keep_prob(keep_prob: float, cell_index: int, num_cells: int) -> float:
    """Keep probability of a cell's paths, scaled with depth (TF-slim ``_apply_drop_path``,
    ``drop_connect_version`` v2/v3): ``1 - (cell_index + 1) / num_cells * (1 - keep_prob)``,
    so the first cell drops least and the last cell drops at the full rate. ``cell_index``
    counts every cell built (stem cells and reduction cells included) from 0."""
    return 1.0 - (cell_index + 1) / float(num_cells) * (1.0 - keep_prob)


def scheduled_keep_prob(keep_prob, step, total_steps):
    """Keep probability at training ``step`` (TF-slim v1/v3): the drop rate ramps up linearly from
    0 at step 0 to ``1 - keep_prob`` at ``total_steps`` and stays there. Works on floats and on
    tensors."""
    ratio = ops.minimum(1.0, ops.cast(step, "float32") / float(total_steps))
    return 1.0 - ratio * (1.0 - keep_prob)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScheduledDropPath(keras.layers.Layer):
    """Drop-path of one op's output as NASNet trains it (Zoph et al. 2018, Sec. 4.1 "ScheduledDropPath";
    TF-slim ``nasnet_utils.drop_path``): in training, zero the whole path for each sample with
    probability ``1 - keep`` and scale survivors by ``1 / keep``; identity at inference.

    ``keep_prob`` is the cell's keep probability (already scaled with cell depth, see
    :func:`cell_keep_prob`). With ``total_training_steps``, the layer counts its own training
    calls in a non-trainable ``step`` variable (one call per training step) and lowers ``keep``
    from 1 to ``keep_prob`` linearly over that many steps, as slim does with the global step;
    :func:`set_drop_path_step` sets the counters when training resumes. Without it the rate is
    constant.
    """

    def __init__(self, keep_prob: float, total_training_steps: int | None = None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        keep_prob = float(keep_prob)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"ScheduledDropPath keep_prob must be in (0, 1], got {keep_prob}")
        if total_training_steps is not None and (
            isinstance(total_training_steps, bool) or int(total_training_steps) != total_training_steps
            or total_training_steps < 1
        ):
            raise ValueError(f"total_training_steps must be None or an integer >= 1, got {total_training_steps!r}")
        self.keep_prob = keep_prob
        self.total_training_steps = None if total_training_steps is None else int(total_training_steps)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def build(self, input_shape):
        self.step = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False, name="step")

    def current_keep_prob(self) -> float:
        """The keep probability the next training call uses."""
        if self.total_training_steps is None:
            return self.keep_prob
        step = int(keras.ops.convert_to_numpy(self.step)) if self.built else 0
        return float(keras.ops.convert_to_numpy(scheduled_keep_prob(self.keep_prob, step, self.total_training_steps)))

    def call(self, inputs, training=None):
        if not training or self.keep_prob == 1.0:
            return inputs
        if self.total_training_steps is None:
            keep = ops.cast(self.keep_prob, inputs.dtype)
        else:
            keep = ops.cast(scheduled_keep_prob(self.keep_prob, self.step, self.total_training_steps), inputs.dtype)
            self.step.assign(self.step + 1)
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        return inputs / keep * ops.floor(keep + noise)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "keep_prob": self.keep_prob,
            "total_training_steps": self.total_training_steps,
            "seed": self.seed,
        }


def set_drop_path_step(model, step: int) -> int:
    """Set the step counter of every :class:`ScheduledDropPath` in ``model`` (e.g. when resuming
    training at ``step``); returns how many layers were set."""
    n = 0
    for layer in _walk(model):
        if isinstance(layer, ScheduledDropPath) and layer.built:
            layer.step.assign(int(step))
            n += 1
    return n


def _walk(model):
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from _walk(layer)

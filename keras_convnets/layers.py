"""Custom layers shared by the families. Each is registered serializable, so every model reloads
with ``keras.saving.load_model(path, safe_mode=True)`` (no ``Lambda`` anywhere)."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["DropPath", "GroupConv2D"]

PACKAGE = "keras_convnets"


@keras.saving.register_keras_serializable(package=PACKAGE)
class DropPath(keras.layers.Layer):
    """Stochastic depth (Huang et al. 2016, arXiv:1603.09382): during training, zero the whole
    residual branch of each sample with probability ``rate`` and scale the survivors by
    1 / (1 - rate) so that the expectation is unchanged; identity at inference."""

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"DropPath rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if self.rate > 0 else None
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        mask = ops.floor(keep + noise)
        return inputs / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupConv2D(keras.layers.Conv2D):
    """``Conv2D(groups=g)`` with the same weights (one kernel of shape (kh, kw, C_in/g, C_out)),
    computed as g per-group convolutions on the TensorFlow backend.

    Why: on TF's CPU backend a grouped ``Conv2D`` trains ~270x slower than the same convolution
    written as per-group convolutions (measured here, ../REFERENCE.md "Pitfalls"), which would
    make ResNeXt and two-tower AlexNet unusable in a study. Other backends (JAX/XLA) have fast
    grouped kernels and use the single grouped op. Weights are interchangeable with a plain
    ``Conv2D(groups=g)``.

    The groups are cut with one ``split`` of the input and of the kernel, not with g slices: the
    gradient of a split is one concatenation, while each slice's gradient is a zero tensor of the
    full input size with its slice filled in, g of them summed -- that alone made ResNeXt-50 train
    ~1.5x slower than with split at 224x224 (bench/bench_resnext.py).
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1 or keras.backend.backend() != "tensorflow":
            return super().convolution_op(inputs, kernel)
        outs = [
            ops.conv(
                x,
                k,
                strides=list(self.strides),
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            for x, k in zip(ops.split(inputs, self.groups, axis=-1), ops.split(kernel, self.groups, axis=-1))
        ]
        return ops.concatenate(outs, axis=-1)

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

    How, measured on this machine (bench/bench_resnext.py, bench/README.md):

    * The groups are cut with one ``split`` of the input and of the kernel, not with g slices:
      the gradient of a split is one concatenation, while each slice's gradient is a zero tensor
      of the full input size with its slice filled in, g of them summed.
    * Groups of at most ``DEPTHWISE_MAX_GROUP_WIDTH`` input channels (ResNeXt-50's first stage has
      32 groups of 4) run as a single depthwise convolution with channel multiplier C_out/g,
      whose outputs are then summed over each group's inputs: the same multiply-adds as the
      grouped conv, in one op instead of g tiny ones (about 2x faster there; for wider groups
      the per-group convs win).
    """

    DEPTHWISE_MAX_GROUP_WIDTH = 4

    def convolution_op(self, inputs, kernel):
        if self.groups == 1 or keras.backend.backend() != "tensorflow":
            return super().convolution_op(inputs, kernel)
        if kernel.shape[2] <= self.DEPTHWISE_MAX_GROUP_WIDTH and self.data_format == "channels_last":
            return self._depthwise_op(inputs, kernel)
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

    def _depthwise_op(self, inputs, kernel):
        # y[g, o] = sum_i conv(x[g, i], K[i, g, o]): a depthwise conv gives every input channel
        # (g, i) its C_out/g outputs, then the sum runs over i.
        kh, kw, cin_g, cout = kernel.shape
        g = self.groups
        cout_g = cout // g
        depthwise = ops.reshape(
            ops.transpose(ops.reshape(kernel, (kh, kw, cin_g, g, cout_g)), (0, 1, 3, 2, 4)),
            (kh, kw, g * cin_g, cout_g),
        )
        z = ops.depthwise_conv(inputs, depthwise, strides=self.strides, padding=self.padding,
                               dilation_rate=self.dilation_rate, data_format=self.data_format)
        n, h, w = ops.shape(z)[0], ops.shape(z)[1], ops.shape(z)[2]
        return ops.reshape(ops.sum(ops.reshape(z, (n, h, w, g, cin_g, cout_g)), axis=4), (n, h, w, cout))


__all__ += ["LocalResponseNormalization"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al. 2012, Section 3.3):

        b[c] = a[c] / (k + alpha * sum_{c' = c - n//2}^{c + n//2} a[c']^2) ** beta

    with the sum clipped at the first and last channel. ``alpha`` multiplies the plain sum, as in
    the paper's formula and ``tf.nn.local_response_normalization`` (Caffe's ``LRN`` layer divides
    its alpha by ``n`` first: pass ``alpha / n`` to reproduce a Caffe model).

    ``groups`` > 1 normalises each of ``groups`` equal channel slices on its own: in the
    two-GPU network each tower holds half the kernel maps and its normalisation only sees those
    (Section 3.2, 3.5).
    """

    def __init__(self, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75,
                 groups: int = 1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"LocalResponseNormalization size must be an odd integer >= 1, got {size!r}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"LocalResponseNormalization groups must be an integer >= 1, got {groups!r}")
        self.size = size
        self.k = float(k)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.groups = groups

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"LocalResponseNormalization: {channels} channels cannot be split into {self.groups} groups"
            )

    def call(self, inputs):
        channels = inputs.shape[-1]
        radius = self.size // 2
        squares = ops.square(inputs)
        if self.groups > 1:
            squares = ops.reshape(squares, (*ops.shape(inputs)[:-1], self.groups, channels // self.groups))
        # Zero padding on the channel axis clips the window at both ends.
        pad = [(0, 0)] * (len(squares.shape) - 1) + [(radius, radius)]
        padded = ops.pad(squares, pad)
        width = squares.shape[-1]
        window = padded[..., 0:width]
        for offset in range(1, self.size):
            window = window + padded[..., offset : offset + width]
        if self.groups > 1:
            window = ops.reshape(window, ops.shape(inputs))
        return inputs / ops.power(self.k + self.alpha * window, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "k": self.k, "alpha": self.alpha,
                "beta": self.beta, "groups": self.groups}

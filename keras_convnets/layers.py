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
    the paper's formula and TensorFlow's ``local_response_normalization`` (Caffe's ``LRN`` layer divides
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


# ----------------------------------------------------------------------------- fractal join
# FractalNet's join with drop-path (Larsson et al. 2016, arXiv:1605.07648, §2-3). The per-batch
# choice "local or global drop-path, and which column survives a global drop" must be the same for
# every join of the network, so it is drawn once by FractalPathDraw and fed to every join as an
# extra input tensor: no shared Python state, so it works inside a traced train step (model.fit) and under
# JAX tracing, and the draw follows a keras.random.SeedGenerator (reproducible with a seed).
__all__ += ["FractalPathDraw", "FractalJoin"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class FractalPathDraw(keras.layers.Layer):
    """Draws the drop-path mode of one training batch for the whole network: ``[is_global,
    column]`` (float32, shape (2,)). ``is_global`` is 1 with probability ``global_ratio`` (the
    paper mixes local and global sampling 50/50 per mini-batch, §3); ``column`` is uniform in
    1..``columns``. Its input only anchors it in the graph. At inference it returns ``[0, 0]``."""

    def __init__(self, columns: int, global_ratio: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
            raise ValueError(f"FractalPathDraw columns must be an integer >= 1, got {columns!r}")
        if not 0.0 <= float(global_ratio) <= 1.0:
            raise ValueError(f"FractalPathDraw global_ratio must be in [0, 1], got {global_ratio!r}")
        self.columns = columns
        self.global_ratio = float(global_ratio)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return ops.zeros((2,), dtype="float32")
        u = keras.random.uniform((2,), seed=self.seed_generator)
        is_global = ops.cast(ops.less(u[0], self.global_ratio), "float32")
        column = ops.minimum(ops.floor(u[1] * self.columns), self.columns - 1) + 1.0
        return ops.stack([is_global, column])

    def compute_output_shape(self, input_shape):
        return (2,)

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor((2,), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "columns": self.columns, "global_ratio": self.global_ratio, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FractalJoin(keras.layers.Layer):
    """The join of a fractal block: element-wise mean of its inputs (§2), one input per column,
    ``columns[i]`` being the column of input ``i``; optionally followed by a
    :class:`FractalPathDraw` tensor.

    In training, drop-path (§3) per batch: *local*, each input is dropped with probability
    ``drop_rate`` and, if all were dropped, one drawn uniformly survives; the mean is over the
    survivors. *Global* (when the draw says so): only the drawn column's input passes, so the whole
    network computes that single column; a join the drawn column does not enter (it feeds only
    deeper columns, which that column's path never reads) takes the plain mean. At inference: the
    plain mean. ``force_column=k`` makes the join pass column ``k`` always, training or not (for
    checking column extraction); it is read at call time, so set it before a function is traced.
    """

    def __init__(self, columns, drop_rate: float = 0.15, seed: int | None = None, force_column: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        columns = tuple(int(c) for c in columns)
        if len(columns) < 2 or len(set(columns)) != len(columns):
            raise ValueError(f"FractalJoin needs two or more distinct input columns, got {columns!r}")
        if not 0.0 <= float(drop_rate) < 1.0:
            raise ValueError(f"FractalJoin drop_rate must be in [0, 1), got {drop_rate!r}")
        self.columns = columns
        self.drop_rate = float(drop_rate)
        self.seed = seed
        self.force_column = None if force_column is None else int(force_column)
        self.seed_generator = keras.random.SeedGenerator(seed) if self.drop_rate > 0 else None

    def _split(self, inputs):
        inputs = list(inputs)
        if len(inputs) == len(self.columns) + 1:
            return inputs[:-1], inputs[-1]
        if len(inputs) != len(self.columns):
            raise ValueError(
                f"{self.name}: expected {len(self.columns)} inputs (columns {self.columns}) "
                f"and optionally a FractalPathDraw tensor, got {len(inputs)}"
            )
        return inputs, None

    def call(self, inputs, training=None):
        branches, draw = self._split(inputs)
        if self.force_column is not None:
            if self.force_column in self.columns:
                return branches[self.columns.index(self.force_column)]
            return self._weighted(branches, None)
        if not training or (self.drop_rate == 0.0 and draw is None):
            return self._weighted(branches, None)
        n = len(branches)
        weights = self._local_weights(n) if self.drop_rate > 0 else ops.ones((n,), "float32")
        if draw is not None:
            draw = ops.cast(draw, "float32")
            weights = ops.where(draw[0] > 0.5, self._global_weights(draw[1]), weights)
        return self._weighted(branches, weights)

    def _local_weights(self, n):
        keep = ops.cast(keras.random.uniform((n,), seed=self.seed_generator) >= self.drop_rate, "float32")
        rescue = ops.one_hot(keras.random.randint((), 0, n, seed=self.seed_generator), n, dtype="float32")
        return ops.where(ops.sum(keep) > 0, keep, rescue)

    def _global_weights(self, column):
        hit = ops.cast(ops.equal(ops.convert_to_tensor(self.columns, "float32"), column), "float32")
        return ops.where(ops.sum(hit) > 0, hit, ops.ones_like(hit))

    @staticmethod
    def _weighted(branches, weights):
        if weights is None:
            return sum(branches[1:], branches[0]) / float(len(branches))
        weights = ops.cast(weights, branches[0].dtype)
        total = branches[0] * weights[0]
        for i, b in enumerate(branches[1:], start=1):
            total = total + b * weights[i]
        return total / ops.sum(weights)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "columns": list(self.columns), "drop_rate": self.drop_rate,
                "seed": self.seed, "force_column": self.force_column}

__all__ += ["AdaptiveAvgPool2D"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class AdaptiveAvgPool2D(keras.layers.Layer):
    """PyTorch's ``AdaptiveAvgPool2d``: output cell i of a side of n inputs averages inputs
    floor(i n / out) .. ceil((i + 1) n / out) - 1, for any n, also n < out (cells then repeat
    inputs), which torchvision's AlexNet (6x6) and GoogLeNet auxiliary heads (4x4) rely on at small
    inputs. ``keras.layers.AdaptiveAveragePooling2D`` fails in graph mode when n < out.

    Computed as two small averaging matrices applied to the height and width axes (static
    spatial shape needed)."""

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
            raise ValueError(f"AdaptiveAvgPool2D output_size must be an integer or two integers >= 1, got {output_size!r}")
        self.output_size = size

    @staticmethod
    def _averaging_matrix(n: int, out: int):
        import numpy as np

        m = np.zeros((out, n), dtype="float32")
        for i in range(out):
            start, end = (i * n) // out, -(-((i + 1) * n) // out)
            m[i, start:end] = 1.0 / (end - start)
        return m

    def build(self, input_shape):
        h, w = input_shape[1:3]
        if h is None or w is None:
            raise ValueError(f"{self.name}: AdaptiveAvgPool2D needs a static spatial shape, got {input_shape}")
        self._rows = self._averaging_matrix(int(h), self.output_size[0])
        self._cols = self._averaging_matrix(int(w), self.output_size[1])

    def call(self, inputs):
        rows = ops.convert_to_tensor(self._rows, dtype=inputs.dtype)
        cols = ops.convert_to_tensor(self._cols, dtype=inputs.dtype)
        x = ops.einsum("ih,bhwc->biwc", rows, inputs)
        return ops.einsum("jw,biwc->bijc", cols, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "output_size": list(self.output_size)}

"""LeNet-5 as published: LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to
document recognition", Proc. IEEE 86(11), 1998 (Section II.B; no arXiv).

C1 (6 maps, 5x5) - S2 (trainable subsampling) - C3 (16 maps, 5x5, the sparse connection table of
Table I) - S4 - C5 (120 maps, 5x5) - F6 (84 units) - Euclidean RBF output with fixed +-1 codes.
Every layer up to F6 is followed by the squashing f(a) = 1.7159 tanh(2a/3) (Eq. 6, Appendix A).
Trainable parameters: 156 + 12 + 1,516 + 32 + 48,120 + 10,164 = 60,000, as Section II.B states.

Input: the paper's 32x32 field (the 28x28 MNIST digits centred in it, Section III.A). Inputs of
28..31 pixels a side are zero-padded, centred, to 32 inside the model (layer ``pad_to_32``), so
28x28 digits can be fed directly; the paper normalised the background to -0.1, so pad outside
the model (with the background value) to reproduce that exactly.

Output: the RBF units give squared Euclidean distances y_i = sum_j (x_j - w_ij)^2 between F6's
state and class i's code (Eq. 7; lower = better), layer ``output_rbf``. For the library's contract
the model returns ``classifier_activation`` applied to the negative distances (layer
``predictions``): with the default softmax, sparse_categorical_crossentropy on it is the paper's
MAP criterion (Eq. 9) without the constant j; with ``classifier_activation=None`` the output is
the negative distances (logits). The distances are ``model.get_layer("output_rbf").output``.
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np
from keras import layers, ops

from keras_convnets import blocks, registry
from keras_convnets.layers import PACKAGE

__all__ = [
    "lenet",
    "lenet5",
    "lecun_tanh",
    "rbf_codes",
    "ConnectionTableConv2D",
    "Subsampling",
    "EuclideanRBF",
    "FanInUniform",
    "C3_TABLE",
]

# Table I: the S2 maps (0-5) that feed each of the 16 C3 maps. The first six take every
# contiguous triple, the next six every contiguous quadruple, then three non-contiguous
# quadruples, the last one all six (Section II.B: breaks the symmetry, keeps connections low).
C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

PAPER_SIZE = 32
MIN_SIZE = 28  # the MNIST field, padded to the paper's 32


@keras.saving.register_keras_serializable(package=PACKAGE)
def lecun_tanh(a):
    """The squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3 (Eq. 6, Appendix A):
    f(1) = 1 and f(-1) = -1, where the second derivative is largest."""
    return 1.7159 * ops.tanh(a * (2.0 / 3.0))


@keras.saving.register_keras_serializable(package=PACKAGE)
class FanInUniform(keras.initializers.Initializer):
    """Appendix A: weights uniform in [-2.4 / F_i, 2.4 / F_i], F_i the fan-in of the unit
    (all axes of the kernel but the last)."""

    def __init__(self, scale: float = 2.4, seed=None):
        self.scale = float(scale)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        limit = self.scale / fan_in
        return keras.initializers.RandomUniform(-limit, limit, seed=self.seed)(shape, dtype=dtype)

    def get_config(self):
        return {"scale": self.scale, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConnectionTableConv2D(keras.layers.Layer):
    """C3 (Section II.B, Table I): output map j is a valid convolution over only the input maps
    listed in ``table[j]``, with one kernel per connection and one bias per output map.

    The trainable kernel holds only the connected (kh, kw) kernels, shape (kh, kw, connections),
    so the layer has exactly kh * kw * connections + maps parameters (1,516 for C3); the call
    scatters them into a dense (kh, kw, C_in, maps) kernel through a fixed 0/1 connection tensor
    and runs one convolution (as fast as a dense conv: 16 separate convs trace ~10x slower).
    """

    def __init__(self, table, kernel_size: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.table = tuple(tuple(int(m) for m in column) for column in table)
        self.kernel_size = int(kernel_size)
        self.maps = len(self.table)
        self.connections = sum(len(column) for column in self.table)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if any(not 0 <= m < channels for column in self.table for m in column):
            raise ValueError(f"{self.name}: the connection table names input maps outside [0, {channels})")
        scatter = np.zeros((self.connections, channels, self.maps), dtype="float32")
        limits = np.empty((self.connections,), dtype="float32")
        c = 0
        for j, column in enumerate(self.table):
            for m in column:
                scatter[c, m, j] = 1.0
                # Appendix A: uniform in +-2.4 / fan-in, the fan-in of map j's units.
                limits[c] = 2.4 / (self.kernel_size**2 * len(column))
                c += 1
        self._scatter = scatter
        k = self.kernel_size

        def init(shape, dtype=None):
            return keras.initializers.RandomUniform(-1.0, 1.0)(shape, dtype=dtype) * limits

        self.kernel = self.add_weight(shape=(k, k, self.connections), initializer=init, name="kernel")
        self.bias = self.add_weight(shape=(self.maps,), initializer="zeros", name="bias")

    def dense_kernel(self):
        """The (kh, kw, C_in, maps) kernel, zero where Table I has no connection."""
        return ops.einsum("hwc,cim->hwim", self.kernel, ops.convert_to_tensor(self._scatter, dtype=self.kernel.dtype))

    def call(self, inputs):
        return ops.conv(inputs, self.dense_kernel(), strides=1, padding="valid") + self.bias

    def compute_output_shape(self, input_shape):
        h, w = (None if d is None else d - self.kernel_size + 1 for d in input_shape[1:3])
        return (input_shape[0], h, w, self.maps)

    def compute_macs(self, input_shapes, output_shapes):
        # Only the connections of the table are multiply-adds (the paper's 151,600 connections
        # of C3 are these 150,000 plus one bias per unit).
        out = output_shapes[0]
        return int(out[1]) * int(out[2]) * self.kernel_size**2 * self.connections

    def get_config(self):
        return {**super().get_config(), "table": [list(c) for c in self.table], "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Subsampling(keras.layers.Layer):
    """S2 / S4 (Section II.B): the four inputs of each 2x2 non-overlapping neighbourhood are
    added, multiplied by a trainable coefficient and added to a trainable bias, one coefficient
    and one bias per map (2 parameters a map); the squashing follows as a separate layer."""

    def build(self, input_shape):
        maps = input_shape[-1]
        # Appendix A's initialisation with the fan-in of 4 of a subsampling unit.
        limit = 2.4 / 4
        self.coefficient = self.add_weight(shape=(maps,), initializer=keras.initializers.RandomUniform(-limit, limit),
                                           name="coefficient")
        self.bias = self.add_weight(shape=(maps,), initializer="zeros", name="bias")

    def call(self, inputs):
        sums = ops.average_pool(inputs, 2, strides=2, padding="valid") * 4.0
        return sums * self.coefficient + self.bias

    def compute_output_shape(self, input_shape):
        h, w = (None if d is None else d // 2 for d in input_shape[1:3])
        return (input_shape[0], h, w, input_shape[-1])


def rbf_codes(classes: int, units: int = 84) -> np.ndarray:
    """A deterministic +-1 code of ``units`` bits per class, shape (units, classes).

    The paper's codes are stylised 7x12 bitmaps of the ASCII characters (Section II.B, Fig. 3),
    which are not published as data; these are the bits of SHA-256("lenet5-rbf:<class>:<block>"),
    the same on every machine and version, for any number of classes. Like the paper's, they are
    +-1 (the points of maximal curvature of the squashing) and neither orthogonal nor one-hot.
    """
    codes = np.empty((units, classes), dtype="float32")
    for c in range(classes):
        bits = []
        block = 0
        while len(bits) < units:
            digest = hashlib.sha256(f"lenet5-rbf:{c}:{block}".encode()).digest()
            bits.extend((byte >> i) & 1 for byte in digest for i in range(8))
            block += 1
        codes[:, c] = 2.0 * np.asarray(bits[:units], dtype="float32") - 1.0
    return codes


@keras.saving.register_keras_serializable(package=PACKAGE)
class EuclideanRBF(keras.layers.Layer):
    """The output layer (Eq. 7): one Euclidean radial basis function unit per class,
    y_i = sum_j (x_j - w_ij)^2, with the parameter vectors w_i fixed (non-trainable) to the class
    codes of :func:`rbf_codes` ("the parameter vectors of these units were chosen by hand and kept
    fixed, at least initially")."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        codes = rbf_codes(self.units, int(input_shape[-1]))
        self.kernel = self.add_weight(
            shape=codes.shape, initializer=lambda shape, dtype=None: ops.convert_to_tensor(codes, dtype=dtype),
            trainable=False, name="kernel",
        )

    def call(self, inputs):
        diff = ops.expand_dims(inputs, -1) - self.kernel
        return ops.sum(ops.square(diff), axis=-2)

    def compute_macs(self, input_shapes, output_shapes):
        # One (x_j - w_ij)^2 accumulation per input and class, as a dense layer of that shape.
        return int(input_shapes[0][-1]) * self.units

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _squash(x, name: str):
    return layers.Activation(lecun_tanh, name=f"{name}_squash")(x)


def _pad_to_paper_size(x):
    """Centre inputs of 28..31 pixels a side in the paper's 32x32 field (zero padding)."""
    pads = []
    for side in x.shape[1:3]:
        extra = 0 if side is None else max(0, PAPER_SIZE - side)
        pads.append((extra // 2, extra - extra // 2))
    if not any(p != (0, 0) for p in pads):
        return x
    return layers.ZeroPadding2D(tuple(pads), name="pad_to_32")(x)


def _conv(x, maps: int, name: str):
    return layers.Conv2D(maps, 5, kernel_initializer=FanInUniform(), name=name)(x)


def lenet(
    c1_maps: int = 6,
    c3_table=C3_TABLE,
    c5_maps: int = 120,
    f6_units: int = 84,
    include_top: bool = True,
    input_shape=None,
    input_tensor=None,
    pooling=None,
    classes: int = 10,
    classifier_activation="softmax",
    name: str = "lenet",
):
    """LeNet-5 family: C1 with ``c1_maps`` maps, S2, C3 wired by ``c3_table`` (one tuple of C1
    maps per C3 map), S4, C5 with ``c5_maps``, F6 with ``f6_units``, RBF output. Without the top,
    the C5 maps (or their global ``pooling``)."""
    blocks.check_common(include_top=include_top, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)
    c1_maps = blocks.check_positive_int("c1_maps", c1_maps)
    c5_maps = blocks.check_positive_int("c5_maps", c5_maps)
    f6_units = blocks.check_positive_int("f6_units", f6_units)
    if not c3_table or any(not cols or any(not 0 <= int(m) < c1_maps for m in cols) for cols in c3_table):
        raise ValueError(f"c3_table must list, for each C3 map, a non-empty tuple of C1 maps in [0, {c1_maps}); "
                         f"got {c3_table!r}")

    img_input = blocks.image_input(input_shape, input_tensor, default_size=PAPER_SIZE, min_size=MIN_SIZE,
                                   channels=1, model_name=name)
    x = _pad_to_paper_size(img_input)
    x = _squash(_conv(x, c1_maps, "C1"), "C1")
    x = _squash(Subsampling(name="S2")(x), "S2")
    x = _squash(ConnectionTableConv2D(c3_table, 5, name="C3")(x), "C3")
    x = _squash(Subsampling(name="S4")(x), "S4")
    x = _squash(_conv(x, c5_maps, "C5"), "C5")
    if not include_top:
        return blocks.functional_model(img_input, input_tensor, blocks.global_pool(x, pooling), name)
    # C5 is 1x1 at the paper's size; F6 is fully connected to all of it.
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(f6_units, kernel_initializer=FanInUniform(), name="F6")(x)
    x = _squash(x, "F6")
    distances = EuclideanRBF(classes, name="output_rbf")(x)
    scores = layers.Rescaling(-1.0, name="negative_distance")(distances)
    outputs = layers.Activation(classifier_activation, name="predictions")(scores)
    return blocks.functional_model(img_input, input_tensor, outputs, name)


lenet5 = registry.variant(
    "lenet5", lenet, {"c1_maps": 6, "c3_table": C3_TABLE, "c5_maps": 120, "f6_units": 84},
    family="lenet", paper="LeCun, Bottou, Bengio, Haffner, Gradient-based learning applied to document recognition "
                          "(Proc. IEEE)",
    year=1998, arxiv=None, default_size=PAPER_SIZE, min_size=MIN_SIZE, channels=1, default_classes=10,
    ref_params=60_000, params_kind="trainable",
    params_source="paper, Section II.B: 60,000 trainable parameters "
                  "(C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164)",
    params_tolerance=0,
    ref_macs=326_520,
    macs_source="derived from the paper's layer description (Section II.B): its connection counts C1 122,304, "
                "C3 151,600, C5 48,120, F6 10,164 less one bias connection per unit (117,600 + 150,000 + 48,000 + "
                "10,080) plus the 84 x 10 RBF output units (Eq. 7); the trainable subsampling (1,576 multiplies) "
                "is left out like BatchNorm, within the 1% tolerance",
    macs_tolerance=0.01,
    knobs=("resolution",), test_size=28,
    notes="Paper-faithful LeNet-5: C3 connection table (Table I), trainable subsampling, scaled tanh, F6 = 84, "
          "fixed Euclidean RBF output (generated +-1 codes instead of the unpublished 7x12 bitmaps). "
          "28..31-pixel inputs are zero-padded to 32 inside the model. Output: classifier_activation of the "
          "negative RBF distances (softmax by default) so it trains with sparse_categorical_crossentropy.",
)

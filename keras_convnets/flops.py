"""What a model costs: multiply-adds (MACs) of its convolution and dense layers at batch 1.

That is what the papers call "FLOPs" or "mult-adds" (He et al., ResNeXt, SENet, NASNet, PNAS,
AmoebaNet, EfficientNet) and what torchvision's ``_ops`` reports; FLOPs = 2 x MACs. BatchNorm,
bias adds, activations and pooling are not counted (the papers' convention).

The count walks the Keras graph (every call of every layer, nested models included) and reads
each call's symbolic input/output shapes: no graph freezing, no tracing, so counting the whole
registry takes seconds. A custom layer with weights that does matrix work declares its own count
with a ``compute_macs(input_shapes, output_shapes) -> int`` method (a layer with kernels that
declares none is counted 0 with a warning).

:func:`count_flops_profiler` is the independent cross-check: TensorFlow's profiler on the frozen
graph (slow; TensorFlow imported only there), with its grouped-convolution blind spot corrected.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Iterator

import keras

__all__ = ["count_macs", "macs_table", "layer_macs", "count_flops_profiler", "ProfilerCount"]


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims))


def _shapes(tensors) -> list[tuple]:
    return [tuple(t.shape) for t in keras.tree.flatten(tensors) if hasattr(t, "shape")]


def _check_static(shape: tuple, layer) -> None:
    if any(d is None for d in shape[1:]):
        raise ValueError(
            f"cannot count MACs of layer {layer.name!r}: its shape {shape} is not fully known; "
            "build the model with a fixed input_shape (e.g. (224, 224, 3))"
        )


_L = keras.layers
COUNTED = (_L.Dense, _L.Conv1D, _L.Conv2D, _L.Conv3D, _L.DepthwiseConv1D, _L.DepthwiseConv2D, _L.SeparableConv1D,
           _L.SeparableConv2D, _L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose)


def _channels_and_positions(layer, shape: tuple) -> tuple[int, int]:
    """(channels, spatial positions) of a conv input/output shape, in the layer's data format."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return int(shape[1]), _prod(shape[2:])
    return int(shape[-1]), _prod(shape[1:-1])


def layer_macs(layer, input_shapes: list[tuple], output_shapes: list[tuple]) -> int:
    """MACs of one call of ``layer`` at batch 1, from its input and output shapes.

    Conv-like layers count one MAC per kernel tap per output value (zero padding included, as
    the papers and torchvision count); a Dense layer on a rank-N input is applied at every
    position of the leading axes. Other layers count 0 unless they define ``compute_macs``.
    """
    if hasattr(layer, "compute_macs"):
        return int(layer.compute_macs(input_shapes, output_shapes))
    if not isinstance(layer, COUNTED):
        return 0
    (in_shape,), (out_shape,) = input_shapes[:1], output_shapes[:1]
    _check_static(in_shape, layer)
    _check_static(out_shape, layer)
    if isinstance(layer, _L.Dense):
        return _prod(out_shape[1:-1]) * int(in_shape[-1]) * layer.units
    cin, in_positions = _channels_and_positions(layer, in_shape)
    _, out_positions = _channels_and_positions(layer, out_shape)
    kernel = _prod(layer.kernel_size)
    if isinstance(layer, (_L.SeparableConv1D, _L.SeparableConv2D)):
        # depthwise part at the (strided) output positions, then the 1x1 pointwise part
        mid = cin * layer.depth_multiplier
        return out_positions * mid * kernel + out_positions * mid * layer.filters
    if isinstance(layer, (_L.DepthwiseConv1D, _L.DepthwiseConv2D)):
        return out_positions * cin * layer.depth_multiplier * kernel
    groups = getattr(layer, "groups", 1) or 1
    if isinstance(layer, (_L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose)):
        # every input value is scattered through the whole kernel into every output channel
        return in_positions * cin * kernel * layer.filters // groups
    # Conv1D/2D/3D (GroupConv2D included): each output value sums kernel x C_in/groups products,
    # whatever the stride or dilation.
    return out_positions * layer.filters * kernel * (cin // groups)


def _graph_of(layer):
    """The graph of a nested model: a Functional model itself; a Sequential's ``_functional``."""
    if getattr(layer, "_nodes_by_depth", None) is not None:
        return layer
    inner = getattr(layer, "_functional", None) if isinstance(layer, keras.Sequential) else None
    if inner is not None and getattr(inner, "_nodes_by_depth", None) is not None:
        return inner
    return None


def _same_shapes(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(tuple(x[1:]) == tuple(y[1:]) for x, y in zip(a, b))


def _calls(graph, prefix: str = "", input_shapes: list[tuple] | None = None) -> Iterator[tuple[str, Any, list, list]]:
    """Every (qualified name, layer, input shapes, output shapes) call in ``graph``.

    The shapes recorded when the graph was built are used as they are. A nested model called
    on inputs of another shape than it was built for (e.g. built with ``(None, None, 3)``) is
    re-traced symbolically at the call's shapes (``compute_output_spec``, no computation)."""
    if input_shapes is not None and not _same_shapes(input_shapes, _shapes(graph.inputs)):
        yield from _retraced_calls(graph, prefix, input_shapes)
        return
    for depth in sorted(graph._nodes_by_depth, reverse=True):  # inputs first
        for node in graph._nodes_by_depth[depth]:
            layer = node.operation
            if layer is None or isinstance(layer, keras.layers.InputLayer):
                continue
            qual = f"{prefix}{layer.name}"
            inner = _graph_of(layer)
            if inner is not None:
                yield from _calls(inner, prefix=f"{qual}/", input_shapes=_shapes(node.input_tensors))
                continue
            yield qual, layer, _shapes(node.input_tensors), _shapes(node.output_tensors)


def _retraced_calls(graph, prefix: str, input_shapes: list[tuple]) -> list:
    records: list = []

    def operation_fn(op):
        def run(*args, **kwargs):
            ins = _shapes((args, kwargs))
            out = op.compute_output_spec(*args, **kwargs)
            inner = _graph_of(op)
            if inner is not None:
                records.extend(_calls(inner, prefix=f"{prefix}{op.name}/", input_shapes=ins))
            else:
                records.append((f"{prefix}{op.name}", op, ins, _shapes(out)))
            return out

        return run

    specs = [keras.KerasTensor(shape, dtype=t.dtype) for shape, t in zip(input_shapes, graph.inputs)]
    graph._run_through_graph(specs, operation_fn=operation_fn)
    return records


def _as_graph_model(model):
    graph = _graph_of(model)
    if graph is None:
        if isinstance(model, keras.Sequential):
            raise ValueError("build the Sequential model (give it an input shape) before counting MACs")
        raise ValueError(f"count_macs needs a Functional or Sequential model that has been built, got {model!r}")
    return graph


def _warn_uncounted(calls) -> None:
    """A layer with kernels that this module does not know and that declares no compute_macs
    would silently count 0; say so once per layer."""
    seen = set()
    for name, layer, _, _ in calls:
        if isinstance(layer, COUNTED) or hasattr(layer, "compute_macs") or id(layer) in seen:
            continue
        weights = getattr(layer, "weights", [])
        if any(w.path.rsplit("/", 1)[-1] in ("kernel", "depthwise_kernel", "pointwise_kernel") for w in weights):
            seen.add(id(layer))
            warnings.warn(
                f"count_macs: layer {name!r} ({type(layer).__name__}) has kernel weights but no compute_macs "
                "method; its MACs are counted as 0",
                stacklevel=3,
            )


def count_macs(model) -> int:
    """Total multiply-adds of the conv and dense layers of ``model`` at batch 1.

    Correct for grouped, depthwise, separable, dilated and strided convolutions, dense layers on
    any rank, nested Functional/Sequential models and layers that declare ``compute_macs``.
    """
    calls = list(_calls(_as_graph_model(model)))
    _warn_uncounted(calls)
    return int(sum(layer_macs(layer, i, o) for _, layer, i, o in calls))


def macs_table(model):
    """One row per layer call: name, type, output shape, params, MACs (a pandas DataFrame).
    Nested models' layers are named ``outer/inner``; a shared layer has one row per call."""
    import pandas as pd

    calls = list(_calls(_as_graph_model(model)))
    _warn_uncounted(calls)
    rows = [
        {
            "name": name,
            "type": type(layer).__name__,
            "output_shape": out[0] if len(out) == 1 else out,
            "params": int(layer.count_params()) if getattr(layer, "built", False) and hasattr(layer, "count_params") else 0,
            "macs": layer_macs(layer, inp, out),
        }
        for name, layer, inp, out in calls
    ]
    return pd.DataFrame(rows, columns=["name", "type", "output_shape", "params", "macs"])


# ----------------------------------------------------------------------------- profiler cross-check
@dataclasses.dataclass(frozen=True)
class ProfilerCount:
    """What TensorFlow's profiler counts on the frozen graph of a model at batch 1.

    ``raw_flops`` is the profiler's total as it reports it; ``grouped_correction`` is 2 x the
    MACs (from :func:`count_macs`) of the grouped convolutions it cannot see; ``flops`` is their
    sum. The profiler counts 2 FLOPs per multiply-add and also counts BatchNorm, bias adds,
    pooling and element-wise work, so ``flops / 2`` is a little above :func:`count_macs` (keras
    ResNet50: 3.878 G against 3.858 G).
    """

    raw_flops: int
    grouped_correction: int

    @property
    def flops(self) -> int:
        return self.raw_flops + self.grouped_correction

    @property
    def macs(self) -> float:
        """``flops / 2``: comparable to :func:`count_macs`, plus the profiler's extra ops."""
        return self.flops / 2


def _profiler_blind_grouped_macs(model) -> int:
    """MACs of the grouped convolutions the TF profiler reports as 0.

    Keras 3's TensorFlow backend runs a ``Conv*(groups > 1)`` as an XLA-compiled function (TF has
    no grouped conv kernel on CPU); the profiler sees only the function call and counts 0 for it.
    :class:`keras_convnets.layers.GroupConv2D` runs per-group convolutions on that backend, which
    the profiler does count, so it needs no correction."""
    from keras_convnets.layers import GroupConv2D

    total = 0
    for _, layer, ins, outs in _calls(_as_graph_model(model)):
        conv = isinstance(layer, (_L.Conv1D, _L.Conv2D, _L.Conv3D)) and (getattr(layer, "groups", 1) or 1) > 1
        if conv and not isinstance(layer, GroupConv2D):
            total += layer_macs(layer, ins, outs)
    return total


def count_flops_profiler(model) -> ProfilerCount:
    """Cross-check :func:`count_macs` with ``tf.compat.v1.profiler``'s float-operation count on
    the model's frozen graph (a concrete function at batch 1, variables folded into constants
    with ``convert_variables_to_constants_v2``). TensorFlow backend only; slow (it freezes and
    re-imports the whole graph), which is why :func:`count_macs` does not work this way.

    Known blind spot, handled: the profiler counts a Keras 3 grouped ``Conv2D`` as 0 FLOPs
    (measured with TF 2.21 / Keras 3.15), so a ResNeXt would look nearly free; the result adds
    2 x those layers' MACs back (``grouped_correction``) and keeps the raw figure beside it.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"count_flops_profiler needs the TensorFlow backend, not {keras.backend.backend()!r}")
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    specs = [tf.TensorSpec((1, *t.shape[1:]), t.dtype) for t in model.inputs]
    if any(d is None for s in specs for d in s.shape):
        raise ValueError("count_flops_profiler needs a model built with a fixed input_shape")

    @tf.function
    def forward(*xs):
        return model(xs[0] if len(xs) == 1 else list(xs), training=False)

    frozen = convert_variables_to_constants_v2(forward.get_concrete_function(*specs))
    graph_def = frozen.graph.as_graph_def()
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        info = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
                                             options=options)
    return ProfilerCount(raw_flops=int(info.total_float_ops),
                         grouped_correction=2 * _profiler_blind_grouped_macs(model))

"""What a model costs: multiply-adds (MACs) of its convolution and dense layers at batch 1.

That is what the papers call "FLOPs" or "mult-adds" (He et al., ResNeXt, SENet, NASNet, PNAS,
AmoebaNet, EfficientNet) and what torchvision's ``_ops`` reports; FLOPs = 2 x MACs. BatchNorm,
bias adds, activations and pooling are not counted (the papers' convention).

The count walks the Keras graph (every call of every layer, nested models included) and reads
each call's symbolic input/output shapes: no graph freezing, no tracing, so counting the whole
registry takes seconds. A custom layer with weights that does matrix work declares its own count
with a ``compute_macs(input_shapes, output_shapes) -> int`` method.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import keras

__all__ = ["count_macs", "macs_table", "layer_macs"]


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims))


def _shapes(tensors) -> list[tuple]:
    return [tuple(t.shape) for t in keras.tree.flatten(tensors)]


def _check_static(shape: tuple, layer) -> None:
    if any(d is None for d in shape[1:]):
        raise ValueError(
            f"cannot count MACs of layer {layer.name!r}: its shape {shape} is not fully known; "
            "build the model with a fixed input_shape (e.g. (224, 224, 3))"
        )


def layer_macs(layer, input_shapes: list[tuple], output_shapes: list[tuple]) -> int:
    """MACs of one call of ``layer`` at batch 1, from its input and output shapes."""
    if hasattr(layer, "compute_macs"):
        return int(layer.compute_macs(input_shapes, output_shapes))
    L = keras.layers
    if not isinstance(layer, (L.Dense, L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv2D, L.DepthwiseConv1D,
                              L.SeparableConv1D, L.SeparableConv2D, L.Conv1DTranspose, L.Conv2DTranspose,
                              L.Conv3DTranspose)):
        return 0
    (in_shape,), (out_shape,) = input_shapes[:1], output_shapes[:1]
    _check_static(in_shape, layer)
    _check_static(out_shape, layer)
    cin = int(in_shape[-1])
    out_positions = _prod(out_shape[1:-1])
    if isinstance(layer, L.Dense):
        return out_positions * cin * layer.units
    kernel = _prod(layer.kernel_size)
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        mid = cin * layer.depth_multiplier
        return out_positions * mid * kernel + out_positions * mid * layer.filters
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        return out_positions * cin * layer.depth_multiplier * kernel
    groups = getattr(layer, "groups", 1) or 1
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        return _prod(in_shape[1:-1]) * cin * kernel * layer.filters // groups
    # Conv1D/2D/3D (GroupConv2D included): each output value sums kernel x C_in/groups products,
    # whatever the stride or dilation.
    return out_positions * layer.filters * kernel * (cin // groups)


def _calls(model, prefix: str = "") -> Iterator[tuple[str, Any, list, list]]:
    """Every (qualified name, layer, input shapes, output shapes) call in ``model``'s graph."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    if by_depth is None:
        raise ValueError(f"count_macs needs a Functional or Sequential model that has been built, got {model!r}")
    for depth in sorted(by_depth, reverse=True):  # inputs first
        for node in by_depth[depth]:
            layer = node.operation
            if isinstance(layer, keras.layers.InputLayer):
                continue
            qual = f"{prefix}{layer.name}"
            if getattr(layer, "_nodes_by_depth", None) is not None:  # a nested model
                yield from _calls(layer, prefix=f"{qual}/")
                continue
            yield qual, layer, _shapes(node.input_tensors), _shapes(node.output_tensors)


def _as_graph_model(model):
    if isinstance(model, keras.Sequential) and not getattr(model, "_functional", None):
        if not model.built:
            raise ValueError("build the Sequential model (give it an input shape) before counting MACs")
        return model._functional
    return model


def count_macs(model) -> int:
    """Total multiply-adds of the conv and dense layers of ``model`` at batch 1.

    Correct for grouped, depthwise, separable, dilated and strided convolutions, dense layers on
    any rank, nested models and layers that declare ``compute_macs``.
    """
    return int(sum(layer_macs(layer, i, o) for _, layer, i, o in _calls(_as_graph_model(model))))


def macs_table(model):
    """One row per layer call: name, type, output shape, params, MACs (a pandas DataFrame)."""
    import pandas as pd

    rows = [
        {
            "name": name,
            "type": type(layer).__name__,
            "output_shape": out[0] if len(out) == 1 else out,
            "params": int(layer.count_params()) if layer.built else 0,
            "macs": layer_macs(layer, inp, out),
        }
        for name, layer, inp, out in _calls(_as_graph_model(model))
    ]
    return pd.DataFrame(rows, columns=["name", "type", "output_shape", "params", "macs"])

"""keras_convnets: landmark convolutional networks as Keras 3 Functional-API builders.

    import keras_convnets as kc
    model = kc.build("resnet50", classes=10, input_shape=(64, 64, 3))
    kc.list_models(); kc.model_info("resnet50"); kc.count_macs(model)
    kc.cost("efficientnet_b7")  # params and MACs without creating the weights
"""

from keras_convnets.registry import build, cost, list_families, list_models, model_info

__version__ = "0.1.0"
__all__ = ["build", "cost", "list_models", "list_families", "model_info", "count_macs", "macs_table"]


def count_macs(model, **kwargs):
    """Multiply-adds of the conv and dense layers at batch 1 (see :mod:`keras_convnets.flops`)."""
    from keras_convnets.flops import count_macs as _count_macs

    return _count_macs(model, **kwargs)


def macs_table(model, **kwargs):
    """Per-layer MACs as a pandas DataFrame (see :mod:`keras_convnets.flops`)."""
    from keras_convnets.flops import macs_table as _macs_table

    return _macs_table(model, **kwargs)

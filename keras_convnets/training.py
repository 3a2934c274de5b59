"""Training helpers shared by the study's trials and the searches' trials."""

from __future__ import annotations

__all__ = ["build_training_state"]


def build_training_state(model) -> None:
    """Create a compiled model's optimizer, metric and loss variables before ``fit``, for sparse
    integer labels (one per output).

    Why: Keras 3's TensorFlow trainer, without a distribution strategy, leaves them to the first
    traced training step, and ``tf.function`` traces a function that creates variables twice (once
    creating them, once to check it creates no more). Built first, the step is traced once:
    EfficientNet-B0 at 32 px, first training step 77 s -> 3 s (this) + 25 s (bench/README.md,
    "Building the training state first"). The JAX and torch trainers build this state before
    tracing anyway; there this is a no-op, as it is for a model compiled under a distribution
    strategy.
    """
    import keras

    build = getattr(model, "_symbolic_build", None)  # Keras' own builder; tests check it is there
    if build is None or getattr(model, "optimizer", None) is None:
        return
    if getattr(model, "_distribute_strategy", None) is not None:
        return  # under a tf.distribute strategy Keras builds it first itself, in the strategy's scope
    x = [keras.KerasTensor(t.shape, t.dtype) for t in model.inputs]
    y = [keras.KerasTensor((None,), "int32") for _ in model.outputs]
    build(data_batch=(x[0] if len(x) == 1 else x, y[0] if len(y) == 1 else y))

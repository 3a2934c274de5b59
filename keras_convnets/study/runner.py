"""Train and evaluate one trial with a study's recipe: the piece ``study scale`` and
``study search`` share.

::

    recipe = Recipe(epochs=3, batch_size=64, optimizer="adam", learning_rate=3e-3, seed=0,
                    precision="float32", jit=False, verbose=1)
    model_fn = lambda: build_registered("efficientnet_b0", input_shape=(32, 32, 3), classes=10,
                                        width=1.1, depth=1.2, precision=recipe.precision)
    metrics = train_trial(model_fn, dataset, recipe, save_path="DIR/trials/ID.keras")
    release()   # clear_session + gc between trials, so memory does not grow

:func:`train_trial` takes a built ``keras.Model`` or a zero-argument callable returning one
(called after the seed and the precision policy are set, so the weights are reproducible and
mixed precision applies). The resolution and channels come from the model's input shape; the
data come from :class:`keras_convnets.data.Dataset` (train for fitting, val for selection:
evaluated after every epoch inside ``fit``, test evaluated once after it). It returns a flat dict:
``status`` ("ok" | "failed"), ``error``, ``params``, ``macs``, ``val_accuracy``, ``val_loss`` (the
last epoch's), ``val_accuracy_by_epoch`` (space-separated), ``test_accuracy``, ``test_loss``,
``train_accuracy``, ``train_loss``, ``epochs_run``, ``train_seconds`` (wall time of ``fit``: graph
tracing, building the optimizer's state and the validation passes included),
``train_images_per_second`` (over fit's time less its validation passes), ``images_per_second``
(inference throughput measured over the test pass, at the recipe's batch size, the step traced
by fit's validation; with ``jit``, over compiled calls on one test batch, since XLA compiles
again for the last batch), ``val_seconds`` (fit's validation passes), ``test_seconds``,
``prepare_seconds`` (building the model, counting it, compiling, making its data pipelines),
``save_seconds`` (writing the ``.keras`` file), ``precision``, ``jit``. A loss that goes NaN/inf
stops the trial and returns ``status="failed"`` with the reason; so does any exception raised
while building or training (the study records it and goes on).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import platform
import time
from typing import Any, Callable

from keras_convnets.study.results import save_model_atomic

__all__ = ["Recipe", "train_trial", "build_registered", "release", "environment", "float32_output",
           "measure_throughput", "set_bn_momentum"]


@dataclasses.dataclass
class Recipe:
    """One training recipe for every trial of a study (same data, same schedule, same seed)."""

    epochs: int = 4
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 0.003
    weight_decay: float = 0.0
    schedule: str = "cosine"
    seed: int = 0
    precision: str = "float32"
    jit: bool = False
    # 0 = each model's own BatchNormalization momentum. Short runs (a few hundred steps) leave
    # the moving statistics of momentum 0.99 (EfficientNet's) far from the data's, and inference
    # accuracy near chance; a study on little data sets e.g. 0.9 for every trial alike.
    bn_momentum: float = 0.0
    # Eager training skips graph tracing, which costs minutes for EfficientNet on a busy CPU and
    # only pays off over many steps: for smoke tests and tiny studies.
    run_eagerly: bool = False
    verbose: int = 1

    @classmethod
    def from_config(cls, config, verbose: int = 1) -> "Recipe":
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls) if f.name != "verbose"},
                   verbose=verbose)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def release() -> None:
    """Free the previous trial: Keras' global state and Python garbage (memory stays flat)."""
    import keras

    keras.backend.clear_session()
    gc.collect()


def float32_output(model):
    """Under a mixed policy the last layer computes in float16/bfloat16; append a float32 cast
    (Keras' mixed-precision guide) so the loss and the exported outputs are float32."""
    import keras

    if str(model.outputs[0].dtype) == "float32":
        return model
    out = keras.layers.Activation("linear", dtype="float32", name="predictions_float32")(model.outputs[0])
    return keras.Model(model.inputs, out, name=model.name)


def build_registered(name: str, *, input_shape, classes: int, width: float = 1.0, depth: float = 1.0,
                     build_args: dict | None = None, precision: str = "float32"):
    """A registered model at ``width``/``depth`` multipliers and ``input_shape``, set up for
    training on the study's data: preprocessing inside the model switched off where the builder
    has it (the data pipeline standardises), and under mixed precision the softmax computed in
    float32 (the builder emits logits, a float32 softmax layer follows)."""
    import keras

    from keras_convnets import registry

    spec = registry.get(name)
    kwargs: dict[str, Any] = {"input_shape": tuple(input_shape), "classes": int(classes), **(build_args or {})}
    for knob, value in (("width_multiplier", width), ("depth_multiplier", depth)):
        if knob in spec.knobs:
            kwargs[knob] = float(value)
        elif float(value) != 1.0:
            raise ValueError(f"{name} cannot be scaled by {knob}; its scaling knobs are {list(spec.knobs)}")
    mixed = precision != "float32"
    if mixed:
        kwargs["classifier_activation"] = None
    try:
        model = spec.builder(include_preprocessing=False, **kwargs)
    except TypeError as e:
        if "include_preprocessing" not in str(e):
            raise
        model = spec.builder(**kwargs)
    if mixed:
        out = keras.layers.Activation("softmax", dtype="float32", name="predictions_softmax")(model.outputs[0])
        model = keras.Model(model.inputs, out, name=model.name)
    return model


def _optimizer(recipe: Recipe, steps: int):
    import keras

    lr: Any = recipe.learning_rate
    if recipe.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, decay_steps=max(1, steps))
    wd = recipe.weight_decay or None
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd)
    if recipe.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def _nan_guard():
    import keras

    class NaNGuard(keras.callbacks.Callback):
        """Stops training the batch the loss stops being finite, and says where."""

        reason: str | None = None
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.reason = f"loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}"
                self.model.stop_training = True

    return NaNGuard()


def _validation_timer():
    import keras

    class ValidationTimer(keras.callbacks.Callback):
        """Seconds spent in fit's validation passes."""

        seconds = 0.0

        def on_test_begin(self, logs=None):
            self._start = time.perf_counter()

        def on_test_end(self, logs=None):
            self.seconds += time.perf_counter() - self._start

    return ValidationTimer()


def set_bn_momentum(model, momentum: float) -> None:
    """Set every BatchNormalization layer's momentum (nested models included)."""
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)


def measure_throughput(model, dataset, batch_size: int, *, min_seconds: float = 0.5, max_calls: int = 20) -> float:
    """Inference images per second at ``batch_size``: one warm-up call, then timed calls (at least
    two, until ``min_seconds``) on one batch of test images."""
    import numpy as np

    shape = model.input_shape
    batches = dataset.batches("test", int(shape[1]), batch_size, channels=int(shape[-1]))
    x = next(iter(batches))[0] if not hasattr(batches, "__getitem__") else batches[0][0]
    x = np.asarray(x)
    model.predict_on_batch(x)
    calls, start = 0, time.perf_counter()
    while calls < 2 or (time.perf_counter() - start < min_seconds and calls < max_calls):
        model.predict_on_batch(x)
        calls += 1
    return calls * len(x) / (time.perf_counter() - start)


def train_trial(build: Any, dataset, recipe: Recipe, *, save_path: str | os.PathLike | None = None,
                callbacks: tuple = (), count_cost: bool = True, before_fit: Callable[[], Any] | None = None,
                measured: Callable[[], Any] | None = None) -> dict:
    """Fit on ``dataset``'s train split, evaluate on val and test, time it; see the module
    docstring for the returned keys. ``save_path`` (``.keras``) keeps the trained model.

    ``before_fit()`` is called once the model is built and compiled and its data pipelines made,
    just before training starts; ``measured()`` once every figure is measured, before the model is
    saved. A trial process uses them to hand the machine over to the next trial: that one is
    built while this one trains, and starts training while this one saves (study/isolation.py).
    Neither is called when the trial fails before reaching it."""
    import keras

    out: dict[str, Any] = {"status": "failed", "error": "", "precision": recipe.precision, "jit": recipe.jit}
    keras.utils.set_random_seed(recipe.seed)
    keras.mixed_precision.set_global_policy(recipe.precision)
    prepare_start = time.perf_counter()
    try:
        model = build() if callable(build) and not isinstance(build, keras.Model) else build
        if recipe.precision != "float32":
            model = float32_output(model)
        if recipe.bn_momentum:
            set_bn_momentum(model, recipe.bn_momentum)
        if count_cost:
            from keras_convnets.flops import count_macs

            out["params"] = int(model.count_params())
            out["macs"] = int(count_macs(model))
        side, channels = int(model.input_shape[1]), int(model.input_shape[-1])
        train = dataset.batches("train", side, recipe.batch_size, channels=channels, training=True, seed=recipe.seed)
        val = dataset.batches("val", side, recipe.batch_size, channels=channels)
        test = dataset.batches("test", side, recipe.batch_size, channels=channels)
        from keras_convnets.data import train_batch_size, train_steps

        steps = train_steps(dataset.sizes["train"], recipe.batch_size) * recipe.epochs
        model.compile(optimizer=_optimizer(recipe, steps), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=bool(recipe.jit), run_eagerly=bool(recipe.run_eagerly))
        from keras_convnets.training import build_training_state

        guard, val_timer = _nan_guard(), _validation_timer()
        out["prepare_seconds"] = round(time.perf_counter() - prepare_start, 3)
        if before_fit is not None:
            before_fit()
        start = time.perf_counter()  # fit's own work, so the state it would build is timed with it
        build_training_state(model)  # else TF traces the first training step twice (see there)
        # Validation after every epoch, inside fit (Keras' validation_data, as a search trial does):
        # a learning curve per trial, and the inference step is traced once, in fit.
        history = model.fit(train, validation_data=val, epochs=recipe.epochs, verbose=recipe.verbose,
                            shuffle=False, callbacks=[guard, val_timer, *callbacks])
        out["train_seconds"] = round(time.perf_counter() - start, 3)
        out["val_seconds"] = round(val_timer.seconds, 3)
        hist = history.history
        out["epochs_run"] = len(hist.get("loss", []))
        if hist.get("loss"):
            out["train_loss"] = float(hist["loss"][-1])
            out["train_accuracy"] = float(hist.get("accuracy", [float("nan")])[-1])
        seen = train_steps(dataset.sizes["train"], recipe.batch_size) * train_batch_size(
            dataset.sizes["train"], recipe.batch_size) * out["epochs_run"]
        # Training throughput: fit's wall time less its validation passes.
        out["train_images_per_second"] = round(seen / max(out["train_seconds"] - out["val_seconds"], 1e-9), 2)
        if guard.reason:
            out["error"] = guard.reason
            return out
        out["val_loss"] = float(hist["val_loss"][-1])
        out["val_accuracy"] = float(hist["val_accuracy"][-1])
        out["val_accuracy_by_epoch"] = " ".join(f"{a:.4f}" for a in hist["val_accuracy"])
        # The test pass, once: fit's validation traced the inference step, so this times
        # inference throughput (batch = the recipe's, input pipeline included) without tracing.
        start = time.perf_counter()
        res = model.evaluate(test, verbose=0, return_dict=True)
        out["test_seconds"] = round(time.perf_counter() - start, 3)
        out["test_loss"] = float(res["loss"])
        out["test_accuracy"] = float(res["accuracy"])
        out["images_per_second"] = round(dataset.sizes["test"] / max(out["test_seconds"], 1e-9), 2)
        if recipe.jit:
            # XLA compiles once per input shape, so the test pass's last (partial) batch would
            # time a compilation: measure compiled calls on one full batch instead.
            out["images_per_second"] = round(measure_throughput(model, dataset, recipe.batch_size), 2)
        if not all(math.isfinite(out[k]) for k in ("val_loss", "test_loss")):
            out["error"] = "evaluation loss is not finite"
            return out
        if measured is not None:
            measured()
        if save_path is not None:
            start = time.perf_counter()
            save_model_atomic(model, save_path)
            out["save_seconds"] = round(time.perf_counter() - start, 3)
        out["status"] = "ok"
        return out
    except Exception as e:  # noqa: BLE001 - a broken trial is recorded, the study goes on
        out["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
        return out
    finally:
        keras.mixed_precision.set_global_policy("float32")


def environment() -> dict:
    """Library versions and hardware, for ``study.json``."""
    import importlib.metadata as md

    import keras

    def version(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keras_backend": keras.backend.backend(),
        "versions": {p: version(p) for p in ("keras", "tensorflow", "jax", "numpy", "tensorflow-datasets",
                                             "scikit-learn", "pandas", "seaborn", "jinja2")},
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "accelerators": _accelerators(keras.backend.backend()),
    }
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _accelerators(backend: str) -> list[str]:
    try:
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform != "cpu"]
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # noqa: BLE001 - a missing device query is not an error
        pass
    return []

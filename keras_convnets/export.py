"""Export a model as a TF SavedModel (serving signature) or a ``.keras`` file, and check it.

``export_model(model, path, format="savedmodel", force=False, atol=1e-4, seed=0) -> dict``:

* ``savedmodel`` -- ``model.export(path, format="tf_saved_model")`` (an inference-only
  SavedModel with a ``serve`` endpoint and a ``serving_default`` signature), then
  ``tf.saved_model.load(path)`` and a comparison of ``serve(x)`` with ``model(x)`` on random
  input; success only if the largest difference is below ``atol``.
* ``keras`` -- ``model.save(path)`` and ``keras.saving.load_model(path, safe_mode=True)``, same
  check.

An existing ``path`` is refused unless ``force``. The export goes to a temporary sibling first and
is moved into place only after the check passed, so a failed export leaves nothing behind.
Returns ``{"path", "format", "max_abs_diff", "input_shape", "output_shape"}``. Errors a user can
fix raise :class:`ExportError` (a ValueError).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

__all__ = ["export_model", "ExportError", "FORMATS"]

FORMATS = ("savedmodel", "keras")


class ExportError(ValueError):
    pass


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def _sample(model, seed: int) -> np.ndarray:
    shape = tuple(model.input_shape[1:])
    if any(d is None for d in shape):
        raise ExportError(f"the model's input shape {model.input_shape} is not fully known; build it with a fixed input_shape")
    return np.random.default_rng(seed).normal(size=(2, *shape)).astype("float32")


def export_model(model, path, format: str = "savedmodel", *, force: bool = False, atol: float = 1e-4,
                 seed: int = 0) -> dict:
    if format not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    path = Path(path)
    if format == "keras" and path.suffix != ".keras":
        raise ExportError(f"a .keras export needs a path ending in .keras, got {str(path)!r}")
    if path.exists() or path.is_symlink():
        if not force:
            raise ExportError(f"{str(path)!r} exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    x = _sample(model, seed)
    expected = np.asarray(model(x, training=False), dtype="float64")
    tmp = path.with_name(f".{path.stem}.export-tmp{path.suffix}")
    _remove(tmp)
    try:
        if format == "savedmodel":
            got = _savedmodel_roundtrip(model, tmp, x)
        else:
            import keras

            model.save(tmp)
            reloaded = keras.saving.load_model(tmp, safe_mode=True)
            got = np.asarray(reloaded(x, training=False), dtype="float64")
        if got.shape != expected.shape:
            raise ExportError(f"the reloaded model's output shape {got.shape} differs from the model's {expected.shape}")
        diff = float(np.max(np.abs(got - expected)))
        if not diff < atol:
            raise ExportError(f"the reloaded export's outputs differ from the model's by {diff:.3g} (>= {atol}); "
                              "nothing was written")
        if path.exists() or path.is_symlink():
            _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)
    return {"path": str(path), "format": format, "max_abs_diff": diff, "input_shape": list(model.input_shape),
            "output_shape": list(expected.shape)}


def _savedmodel_roundtrip(model, path: Path, x: np.ndarray) -> np.ndarray:
    try:
        import tensorflow as tf
    except ImportError:
        raise ExportError("a SavedModel export needs TensorFlow; use --format keras, or install tensorflow") from None
    model.export(str(path), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(path))
    out = reloaded.serve(tf.constant(x))
    if isinstance(out, dict):
        out = next(iter(out.values()))
    # The signature a TF Serving client calls must exist too.
    if "serving_default" not in reloaded.signatures:
        raise ExportError("the SavedModel has no serving_default signature")
    return np.asarray(out, dtype="float64")

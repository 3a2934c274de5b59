"""Datasets -> batches at a given resolution, for the study runner and the searches.

Sources (the ``spec`` string):

* ``digits`` -- scikit-learn's bundled 8x8 grey digits (offline; no download ever).
* ``npz:FILE.npz`` -- arrays written by ``python -m keras_convnets.study data export`` (or by
  hand): ``x_train, y_train, x_test, y_test`` (uint8 images NHWC, integer labels), optionally
  ``x_val, y_val`` and ``class_names``. Needs no TensorFlow.
* ``folder:PATH`` -- class-per-folder images (``PATH/<class>/*.png|jpg...``, as
  ``keras.utils.image_dataset_from_directory``), or ``PATH/train/<class>/...`` plus
  ``PATH/test/<class>/...`` (and optionally ``val``/``validation``) as ``tfds.ImageFolder``.
* any other name -- a TensorFlow Datasets dataset through ``tfds.load`` (``data_dir`` or
  ``TFDS_DATA_DIR``); nothing is downloaded unless ``download=True``.

Public API (used by ``study scale`` and ``study search``)::

    ds = load_dataset(spec, data_dir=None, train_examples=None, val_examples=None,
                      test_examples=None, seed=0, augment="auto", backend="auto", download=False)
    ds.name, ds.num_classes, ds.channels, ds.class_names, ds.sizes  # {"train": n, "val": n, "test": n}
    ds.augment                                                       # resolved bool
    batches = ds.batches("train" | "val" | "test", resolution, batch_size,
                         channels=3, training=False, seed=0)
    # -> tf.data.Dataset (backend "tf") or keras.utils.PyDataset (backend "numpy") of
    #    (float32 images (B, r, r, channels), int32 labels (B,))

The validation split is always held out from the training data (never the test split), so model
selection never sees the test set. Images are resized (bilinear) to each trial's resolution,
converted to the channels the model wants (grey <-> RGB), scaled to [0, 1] and standardised per
channel with the training data's mean and std. Training batches are shuffled and, when
``augment`` is on (``"auto"``: on for RGB data such as CIFAR, off for digits, where a flip changes
the class), cut into full batches only (:func:`train_steps` per epoch), randomly cropped (pad by resolution/8 and crop back) and flipped left-right.
The ``tf`` backend builds a tf.data pipeline (resize -> normalise -> cache -> shuffle -> augment ->
batch -> prefetch). The ``numpy`` backend (chosen automatically when TensorFlow is not importable
or ``KERAS_BACKEND`` is not ``tensorflow``) needs neither TensorFlow nor tf.data: it serves
digits and ``npz:`` arrays as a ``keras.utils.PyDataset`` with the same transforms in numpy.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["Dataset", "DataError", "load_dataset", "export_npz", "resize_bilinear", "default_backend", "keras_backend",
           "train_steps", "train_batch_size", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Luminance weights of ITU-R BT.601, as tf.image.rgb_to_grayscale.
_GREY = np.array([0.2989, 0.5870, 0.1140], dtype="float32")
# How many training images the per-channel mean/std are estimated from.
_STATS_SAMPLE = 2000


class DataError(ValueError):
    """A dataset that cannot be loaded as asked (missing, malformed, unsupported); the message
    says how to fix it. A ValueError, so the CLI reports it as one line, exit 2."""


# ----------------------------------------------------------------------------- backends
def tensorflow_available() -> bool:
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    return importlib.util.find_spec("tensorflow") is not None


def keras_backend() -> str:
    """The backend Keras uses or will use, without importing Keras: its own rule (the
    ``KERAS_BACKEND`` variable, else ``keras.json``'s ``backend``, else TensorFlow)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def default_backend() -> str:
    """``"tf"`` (tf.data) when Keras runs on TensorFlow and it imports, else ``"numpy"``."""
    return "tf" if keras_backend() == "tensorflow" and tensorflow_available() else "numpy"


def _tf():
    if not tensorflow_available():
        raise DataError("this dataset needs TensorFlow (tf.data), which is not importable here; "
                        "export it to arrays on a machine with TensorFlow "
                        "(`python -m keras_convnets.study data export NAME --out FILE.npz`) and use "
                        "--dataset npz:FILE.npz")
    import tensorflow as tf

    return tf


# ----------------------------------------------------------------------------- image maths
def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Rows of bilinear weights with half-pixel centres (tf.image.resize's convention)."""
    src = (np.arange(n_out, dtype="float64") + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in), dtype="float32")
    m[np.arange(n_out), lo] += (1 - frac).astype("float32")
    m[np.arange(n_out), hi] += frac.astype("float32")
    return m


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, C) -> (N, size, size, C) float32, bilinear, in numpy (no TensorFlow)."""
    x = np.asarray(images, dtype="float32")
    if x.shape[1] == size and x.shape[2] == size:
        return x
    mh, mw = _interp_matrix(x.shape[1], size), _interp_matrix(x.shape[2], size)
    return np.einsum("oh,nhwc,pw->nopc", mh, x, mw, optimize=True).astype("float32")


def _convert_channels_np(x: np.ndarray, channels: int) -> np.ndarray:
    have = x.shape[-1]
    if have == channels:
        return x
    if have == 1:
        return np.repeat(x, channels, axis=-1)
    if channels == 1 and have == 3:
        return (x @ _GREY)[..., None]
    raise DataError(f"cannot convert {have}-channel images to the {channels} channels the model wants")


def train_batch_size(n: int, batch_size: int) -> int:
    """Training batches are full (the remainder is dropped each epoch, a different part each
    time since the data are reshuffled); with fewer examples than a batch, one batch of all."""
    return max(1, min(int(batch_size), int(n)))


def train_steps(n: int, batch_size: int) -> int:
    return max(1, int(n) // train_batch_size(n, batch_size))


# ----------------------------------------------------------------------------- splits
@dataclasses.dataclass
class _Split:
    """One split: either in-memory arrays (uint8 NHWC, labels) or a tf.data source factory."""

    size: int
    arrays: tuple[np.ndarray, np.ndarray] | None = None
    make_tf: Callable[[], Any] | None = None  # -> tf.data.Dataset of (uint8 HWC image, int label)

    def tf_source(self):
        tf = _tf()
        if self.arrays is not None:
            x, y = self.arrays
            return tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
        return self.make_tf()


@dataclasses.dataclass
class Dataset:
    """A loaded dataset: three splits (train, val held out from train, test) and what the
    pipelines need (classes, native channels, per-channel statistics). See the module docstring."""

    name: str
    num_classes: int
    channels: int
    splits: dict[str, _Split]
    stats_sample: list[np.ndarray]  # a few training images (uint8 HWC) for mean/std
    augment: bool
    backend: str
    class_names: list[str] | None = None
    _stats: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def sizes(self) -> dict[str, int]:
        return {k: s.size for k, s in self.splits.items()}

    def describe(self) -> dict:
        return {"name": self.name, "num_classes": self.num_classes, "channels": self.channels,
                "sizes": self.sizes, "augment": self.augment, "backend": self.backend}

    def normalisation(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std of the training images in [0, 1], for ``channels`` channels."""
        if channels not in self._stats:
            total = np.zeros(channels, "float64")
            total_sq = np.zeros(channels, "float64")
            count = 0
            for img in self.stats_sample:
                x = _convert_channels_np(np.asarray(img, "float32")[None] / 255.0, channels)[0]
                flat = x.reshape(-1, channels).astype("float64")
                total += flat.sum(0)
                total_sq += (flat**2).sum(0)
                count += flat.shape[0]
            mean = total / max(count, 1)
            std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))
            self._stats[channels] = (mean.astype("float32"), np.maximum(std, 1e-3).astype("float32"))
        return self._stats[channels]

    def batches(self, split: str, resolution: int, batch_size: int, *, channels: int = 3,
                training: bool = False, seed: int = 0):
        """Batches of ``split`` at ``resolution``: a tf.data.Dataset or a keras.utils.PyDataset.
        ``training`` shuffles (seeded) and augments (when the dataset's ``augment`` is on)."""
        if split not in self.splits:
            raise DataError(f"no split {split!r}; this dataset has {sorted(self.splits)}")
        if self.splits[split].size == 0:
            raise DataError(f"split {split!r} of {self.name} is empty")
        mean, std = self.normalisation(channels)
        augment = training and self.augment
        if self.backend == "tf":
            return _tf_pipeline(self.splits[split], resolution, batch_size, channels, mean, std,
                                training=training, augment=augment, seed=seed)
        if self.splits[split].arrays is None:
            raise DataError(f"{self.name}: the numpy backend serves only digits and npz: arrays")
        x, y = self.splits[split].arrays
        return NumpyBatches(x, y, resolution, batch_size, channels, mean, std,
                            training=training, augment=augment, seed=seed)


def _tf_pipeline(split: _Split, resolution, batch_size, channels, mean, std, *, training, augment, seed):
    tf = _tf()
    autotune = tf.data.AUTOTUNE
    mean_t = tf.constant(mean, tf.float32)
    std_t = tf.constant(std, tf.float32)

    def prepare(image, label):
        x = tf.cast(image, tf.float32) / 255.0
        x = tf.image.resize(x, (resolution, resolution), method="bilinear")
        have = x.shape[-1]
        if have != channels:
            x = tf.image.grayscale_to_rgb(x) if have == 1 else tf.image.rgb_to_grayscale(x)
            if channels not in (1, 3):
                x = tf.repeat(x[..., :1], channels, axis=-1)
        x = (x - mean_t) / std_t
        x = tf.ensure_shape(x, (resolution, resolution, channels))
        return x, tf.cast(label, tf.int32)

    pad = max(1, resolution // 8)

    def augment_fn(x, label):
        # Random-crop (pad and crop back) and horizontal flip: the standard CIFAR augmentation
        # (He et al. 2016, Sec. 4.2), scaled to the trial's resolution.
        x = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        x = tf.image.random_crop(x, (resolution, resolution, channels), seed=seed)
        x = tf.image.random_flip_left_right(x, seed=seed)
        return x, label

    ds = split.tf_source().map(prepare, num_parallel_calls=autotune).cache()
    if training:
        ds = ds.shuffle(min(split.size, 10_000) or 1, seed=seed, reshuffle_each_iteration=True)
        if augment:
            ds = ds.map(augment_fn, num_parallel_calls=autotune)
    # Training drops the last partial batch: a second batch shape would trace the training step
    # again (minutes for EfficientNet on a CPU), and a tiny last batch makes BatchNorm noisy.
    return ds.batch(train_batch_size(split.size, batch_size) if training else batch_size,
                    drop_remainder=training).prefetch(autotune)


_NUMPY_BATCHES = None


def NumpyBatches(*args, **kwargs):
    """A :class:`_NumpyBatches` (a keras.utils.PyDataset); Keras is imported on first use."""
    global _NUMPY_BATCHES
    if _NUMPY_BATCHES is None:
        import keras

        _NUMPY_BATCHES = type("NumpyBatches", (_NumpyBatchesMixin, keras.utils.PyDataset), {})
    return _NUMPY_BATCHES(*args, **kwargs)


class _NumpyBatchesMixin:
    """The TensorFlow-free pipeline: a keras.utils.PyDataset over uint8 arrays that resizes,
    normalises and (training) shuffles per epoch and augments each batch, seeded."""

    def __init__(self, x, y, resolution, batch_size, channels, mean, std, *, training=False,
                 augment=False, seed=0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y = x, np.asarray(y, "int32")
        if training:  # full batches only, as the tf.data pipeline
            batch_size = train_batch_size(len(self.x), batch_size)
        self.resolution, self.batch_size, self.channels = int(resolution), int(batch_size), int(channels)
        self.mean, self.std = mean, std
        self.training, self.augment = training, augment
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.x)) if training else np.arange(len(self.x))

    def __len__(self):
        if self.training:
            return train_steps(len(self.x), self.batch_size)
        return int(math.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, index):
        idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        x = resize_bilinear(self.x[idx].astype("float32") / 255.0, self.resolution)
        x = _convert_channels_np(x, self.channels)
        x = (x - self.mean) / self.std
        if self.augment:
            x = self._augment(x)
        return x.astype("float32"), self.y[idx]

    def _augment(self, x):
        r, pad = self.resolution, max(1, self.resolution // 8)
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        out = np.empty_like(x)
        for i in range(len(x)):
            dy, dx = self.rng.integers(0, 2 * pad + 1, size=2)
            img = padded[i, dy:dy + r, dx:dx + r]
            out[i] = img[:, ::-1] if self.rng.random() < 0.5 else img
        return out

    def on_epoch_end(self):
        if self.training:
            self.order = self.rng.permutation(len(self.x))


# ----------------------------------------------------------------------------- loading
def _count(n: int | None, name: str) -> int | None:
    if n is None or n == 0:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"{name} must be an integer >= 0 (0 = all), got {n!r}")
    return n


def _carve(x, y, held_out, seed):
    """Hold ``held_out`` examples out of (x, y), stratified by class where both parts can hold
    every class, seeded. Returns (kept, held out)."""
    from sklearn.model_selection import train_test_split

    classes = len(np.unique(y))
    stratify = y if min(held_out, len(y) - held_out) >= classes else None
    xt, xv, yt, yv = train_test_split(x, y, test_size=held_out, random_state=seed, stratify=stratify)
    return (xt, yt), (xv, yv)


def _default_val(n_train: int) -> int:
    # 10% of the training data, enough to rank models, at least one example per few classes.
    return max(1, int(round(0.1 * n_train)))


def _array_dataset(name, train, test, val, *, num_classes, class_names, train_examples, val_examples,
                   test_examples, seed, augment, backend):
    if val is None:
        v = val_examples or _default_val(len(train[0]))
        if v >= len(train[0]):
            raise DataError(f"{name}: val_examples={v} leaves no training data (train has {len(train[0])})")
        train, val = _carve(*train, v, seed)
    elif val_examples:
        val = (val[0][:val_examples], val[1][:val_examples])
    if train_examples:
        if train_examples < len(train[0]):
            # A seeded subset, stratified so small subsets still cover every class.
            train, _ = _carve(*train, len(train[0]) - train_examples, seed)
    if test_examples:
        test = (test[0][:test_examples], test[1][:test_examples])
    x = train[0]
    channels = int(x.shape[-1])
    if augment == "auto":
        augment = channels == 3
    splits = {k: _Split(size=len(v[0]), arrays=(np.asarray(v[0]), np.asarray(v[1]).astype("int32")))
              for k, v in (("train", train), ("val", val), ("test", test))}
    sample = list(x[:_STATS_SAMPLE])
    return Dataset(name=name, num_classes=int(num_classes), channels=channels, splits=splits,
                   stats_sample=sample, augment=bool(augment), backend=backend, class_names=class_names)


def _load_digits(**kw):
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 grey levels -> uint8 0..255, NHWC with one channel.
    x = np.round(d.images * (255.0 / 16.0)).astype("uint8")[..., None]
    y = d.target.astype("int32")
    # Digits has no test split: a fixed, stratified 20% is held out (seed 0, independent of the
    # study's seed, so every study on digits is tested on the same images).
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return _array_dataset("digits", (xtr, ytr), (xte, yte), None, num_classes=10,
                          class_names=[str(i) for i in range(10)], **kw)


def _load_npz(path: str, **kw):
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"npz file {str(p)!r} not found; write one with "
                        "`python -m keras_convnets.study data export DATASET --out FILE.npz`")
    try:
        f = np.load(p, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise DataError(f"cannot read {str(p)!r} as .npz: {e}") from None
    with f:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
        if missing:
            raise DataError(f"{str(p)!r} lacks {missing}; an npz dataset needs x_train, y_train, x_test, "
                            "y_test (uint8 NHWC images, integer labels), optionally x_val, y_val, class_names")
        arrays = {k: f[k] for k in f.files}
    for k in ("x_train", "x_test", "x_val"):
        if k in arrays and arrays[k].ndim == 3:
            arrays[k] = arrays[k][..., None]
        if k in arrays and (arrays[k].ndim != 4 or arrays[k].dtype != np.uint8):
            raise DataError(f"{str(p)!r}: {k} must be uint8 images (N, H, W, C), got {arrays[k].dtype} "
                            f"{arrays[k].shape}")
    ys = [arrays[k] for k in ("y_train", "y_test", "y_val") if k in arrays]
    class_names = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else None
    num_classes = len(class_names) if class_names else int(max(int(y.max()) for y in ys if len(y)) + 1)
    val = (arrays["x_val"], arrays["y_val"]) if "x_val" in arrays else None
    name = str(arrays["name"]) if "name" in arrays else p.stem
    return _array_dataset(name, (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]),
                          val, num_classes=num_classes, class_names=class_names, **kw)


def _tfds_unavailable(name: str, data_dir: str | None, detail: str = "") -> DataError:
    where = data_dir or "the TFDS data directory"
    return DataError(
        f"TFDS dataset {name!r} is not prepared in {where}{detail}. Prepare it on a machine with network "
        f"access (`tfds build {name} --data_dir DIR`, or `tfds.load({name!r}, data_dir=DIR)` in Python), "
        f"copy DIR here and pass --data-dir DIR or set TFDS_DATA_DIR=DIR; or export it there with "
        f"`python -m keras_convnets.study data export {name} --out FILE.npz` and use --dataset npz:FILE.npz"
    )


def _load_tfds(name: str, *, data_dir, download, train_examples, val_examples, test_examples, seed,
               augment, backend):
    _tf()
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(f"TFDS datasets need tensorflow-datasets ({e}); `pip install tensorflow-datasets "
                        "importlib_resources`") from None
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        known = tfds.list_builders()
        close = difflib.get_close_matches(name, known, n=4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise DataError(f"unknown dataset {name!r}: not digits, npz:FILE, folder:PATH nor a TFDS dataset.{hint}") from None
    info = builder.info
    sup = info.supervised_keys
    if not sup or len(sup) != 2:
        raise DataError(f"TFDS dataset {name!r} has no (image, label) supervised keys; it is not an image "
                        "classification dataset")
    image_key, label_key = sup
    image_feature, label_feature = info.features[image_key], info.features[label_key]
    shape = tuple(getattr(image_feature, "shape", ()) or ())
    if len(shape) != 3:
        raise DataError(f"TFDS dataset {name!r}: {image_key!r} is not an image (shape {shape})")
    num_classes = getattr(label_feature, "num_classes", None)
    if not num_classes:
        raise DataError(f"TFDS dataset {name!r}: label {label_key!r} is not a class label")
    channels = int(shape[-1] or 3)
    split_sizes = {k: int(v.num_examples) for k, v in info.splits.items()}

    if download:
        try:
            builder.download_and_prepare()
        except Exception as e:  # noqa: BLE001 - a failed download (no network) must be explained
            raise _tfds_unavailable(name, data_dir, f" and downloading it failed ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None

    def load(split: str):
        try:
            return tfds.load(name, split=split, data_dir=data_dir, as_supervised=True, download=False,
                             shuffle_files=False)
        except AssertionError as e:  # tfds' "could not find data in ..."
            raise _tfds_unavailable(name, data_dir) from e
        except (ValueError, KeyError) as e:
            raise DataError(f"TFDS dataset {name!r}: cannot read split {split!r}: {e}") from None

    train_split = "train"
    test_split = next((s for s in ("test", "validation") if s in split_sizes), None)
    n_train_total = split_sizes.get("train")
    test_examples = test_examples or None
    v = val_examples or _default_val(min(n_train_total or 10_000, 10**9))

    def make(split, skip=0, take=None):
        def f():
            ds = load(split)
            if skip:
                ds = ds.skip(skip)
            if take is not None:
                ds = ds.take(take)
            return ds
        return f

    if n_train_total is not None:
        # Held-out data comes from the END of the training split, training data from its start:
        # disjoint by construction. Without a test split, a test set is held out there too.
        t = 0 if test_split else (test_examples or v)
        room = n_train_total - v - t
        if room < 1:
            raise DataError(f"{name}: val_examples={v} (+ test {t}) leaves no training data (train has {n_train_total})")
        n_train = min(train_examples or room, room)
        splits = {"train": _Split(n_train, make_tf=make(f"{train_split}[:{n_train}]")),
                  "val": _Split(v, make_tf=make(f"{train_split}[{room}:{room + v}]"))}
        if test_split:
            t = min(test_examples or split_sizes[test_split], split_sizes[test_split])
            splits["test"] = _Split(t, make_tf=make(f"{test_split}[:{t}]"))
        else:
            splits["test"] = _Split(t, make_tf=make(f"{train_split}[{room + v}:]"))
    else:
        # Split sizes unknown (no metadata, e.g. under tfds.testing.mock_data): count the data.
        total = _cardinality(load(train_split))
        n_train = min(train_examples or total - v, total - v)
        splits = {"val": _Split(v, make_tf=make(train_split, take=v)),
                  "train": _Split(n_train, make_tf=make(train_split, skip=v, take=n_train))}
        src = test_split or "test"
        t_total = _cardinality(load(src))
        t = min(test_examples or t_total, t_total)
        splits["test"] = _Split(t, make_tf=make(src, take=t))

    sample = [np.asarray(img) for img, _ in tfds.as_numpy(splits["train"].make_tf().take(_STATS_SAMPLE))]
    names = list(getattr(label_feature, "names", []) or []) or None
    if augment == "auto":
        augment = channels == 3
    return Dataset(name=name, num_classes=int(num_classes), channels=channels, splits=splits,
                   stats_sample=sample, augment=bool(augment), backend=backend, class_names=names)


def _cardinality(ds) -> int:
    n = int(ds.cardinality())
    if n >= 0:
        return n
    return int(ds.reduce(0, lambda c, _: c + 1))


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(root: Path, classes: list[str]):
    files, labels = [], []
    for label, cls in enumerate(classes):
        for f in sorted((root / cls).rglob("*")):
            if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file():
                files.append(str(f))
                labels.append(label)
    return files, np.asarray(labels, "int32")


def _load_folder(path: str, *, train_examples, val_examples, test_examples, seed, augment, backend, **_):
    tf = _tf()
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} does not exist (folder:PATH wants PATH/<class>/<images>)")
    sub = {p.name.lower(): p for p in _class_folders(root)}
    split_dirs = {k: sub[k] for k in ("train", "test", "val", "validation") if k in sub}
    if "train" in split_dirs and "test" in split_dirs:
        classes = [p.name for p in _class_folders(split_dirs["train"])]
        parts = {k: _image_files(d, classes) for k, d in split_dirs.items()}
        if "validation" in parts and "val" not in parts:
            parts["val"] = parts.pop("validation")
    else:
        classes = [p.name for p in _class_folders(root)]
        files, labels = _image_files(root, classes)
        if not files:
            raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders under {str(root)!r}")
        # No split folders: a fixed 20% test split (seed 0), as for digits.
        idx = np.random.default_rng(0).permutation(len(files))
        n_test = max(1, int(round(0.2 * len(files))))
        pick = lambda ii: ([files[i] for i in ii], labels[ii])  # noqa: E731
        parts = {"test": pick(idx[:n_test]), "train": pick(idx[n_test:])}
    if len(classes) < 2:
        raise DataError(f"{str(root)!r}: need at least 2 class folders, found {classes}")
    if "val" not in parts:
        files, labels = parts["train"]
        v = val_examples or _default_val(len(files))
        if v >= len(files):
            raise DataError(f"{str(root)!r}: val_examples={v} leaves no training images (have {len(files)})")
        idx = np.random.default_rng(seed).permutation(len(files))
        parts["val"] = ([files[i] for i in idx[:v]], labels[idx[:v]])
        parts["train"] = ([files[i] for i in idx[v:]], labels[idx[v:]])
    elif val_examples:
        parts["val"] = (parts["val"][0][:val_examples], parts["val"][1][:val_examples])
    if train_examples:
        parts["train"] = (parts["train"][0][:train_examples], parts["train"][1][:train_examples])
    if test_examples:
        parts["test"] = (parts["test"][0][:test_examples], parts["test"][1][:test_examples])

    def decode(path_t, label):
        img = tf.io.decode_image(tf.io.read_file(path_t), channels=3, expand_animations=False)
        return img, label

    def maker(files, labels):
        return lambda: tf.data.Dataset.from_tensor_slices((files, labels)).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE)

    splits = {k: _Split(len(f), make_tf=maker(f, l)) for k, (f, l) in parts.items()}
    sample = [img.numpy() for img, _ in splits["train"].make_tf().take(min(_STATS_SAMPLE, 500))]
    if augment == "auto":
        augment = True
    return Dataset(name=f"folder:{root.name}", num_classes=len(classes), channels=3, splits=splits,
                   stats_sample=sample, augment=bool(augment), backend=backend, class_names=classes)


def load_dataset(spec: str, data_dir: str | None = None, train_examples: int | None = None,
                 val_examples: int | None = None, test_examples: int | None = None, seed: int = 0,
                 augment: bool | str = "auto", backend: str = "auto", download: bool = False) -> Dataset:
    """Load ``spec`` (``digits``, ``npz:FILE``, ``folder:PATH`` or a TFDS name) as a
    :class:`Dataset`. Counts of 0/None mean "all" (validation: 10% of the training data).
    Raises :class:`DataError` (a ValueError) with a fix-it message when it cannot."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"dataset must be digits, npz:FILE, folder:PATH or a TFDS name, got {spec!r}")
    if augment not in ("auto", True, False):
        raise DataError(f"augment must be 'auto', true or false, got {augment!r}")
    if backend == "auto":
        backend = default_backend()
    if backend not in ("tf", "numpy"):
        raise DataError(f"backend must be 'auto', 'tf' or 'numpy', got {backend!r}")
    kw = dict(train_examples=_count(train_examples, "train_examples"), val_examples=_count(val_examples, "val_examples"),
              test_examples=_count(test_examples, "test_examples"), seed=int(seed), augment=augment, backend=backend)
    spec = spec.strip()
    if spec == "digits":
        return _load_digits(**kw)
    if spec.startswith("npz:"):
        return _load_npz(spec[4:], **kw)
    if spec.startswith("folder:"):
        if backend != "tf":
            _tf()  # explains the npz route when TF is missing
        return _load_folder(spec[7:], **kw)
    if backend != "tf":
        raise DataError(f"TFDS dataset {spec!r} needs the TensorFlow backend (tf.data); on a machine without "
                        f"TensorFlow export it first: `python -m keras_convnets.study data export {spec} "
                        "--out FILE.npz`, then --dataset npz:FILE.npz")
    return _load_tfds(spec, data_dir=data_dir, download=download, **kw)


# ----------------------------------------------------------------------------- export
def export_npz(spec: str, out: str | os.PathLike, *, data_dir: str | None = None, splits=("train", "test"),
               image_size: int | None = None, force: bool = False, download: bool = False) -> dict:
    """Write the native (uint8) images of ``spec``'s ``splits`` to ``out`` (.npz) for the
    TensorFlow-free path (``--dataset npz:FILE``). The TFDS splits are read whole (``train`` is
    the full training split; the study holds its validation data out of it later). Images of
    varying size need ``image_size`` (they are resized to image_size x image_size)."""
    out = Path(out)
    if out.suffix != ".npz":
        raise DataError(f"--out must end in .npz, got {str(out)!r}")
    if out.exists() and not force:
        raise DataError(f"{str(out)!r} exists; pass --force to overwrite it")
    tf = _tf()
    arrays: dict[str, np.ndarray] = {}
    if spec == "digits" or spec.startswith("npz:"):
        ds = load_dataset(spec, backend="numpy", val_examples=None)
        # Re-merge train and val: the npz keeps the whole training split.
        xs = [ds.splits["train"].arrays, ds.splits["val"].arrays]
        arrays = {"x_train": np.concatenate([a[0] for a in xs]), "y_train": np.concatenate([a[1] for a in xs]),
                  "x_test": ds.splits["test"].arrays[0], "y_test": ds.splits["test"].arrays[1]}
        name, class_names = ds.name, ds.class_names
    else:
        if spec.startswith("folder:"):
            ds = load_dataset(spec, backend="tf", val_examples=None)
            sources = {"train": [ds.splits["train"], ds.splits["val"]], "test": [ds.splits["test"]]}
            name, class_names = ds.name, ds.class_names
        else:
            import tensorflow_datasets as tfds

            data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
            probe = load_dataset(spec, data_dir=data_dir, backend="tf", val_examples=1, train_examples=1,
                                 test_examples=1, download=download)
            name, class_names = probe.name, probe.class_names

            def whole(split):
                return _Split(-1, make_tf=lambda: tfds.load(spec, split=split, data_dir=data_dir,
                                                             as_supervised=True, download=False))
            sources = {s: [whole(s)] for s in splits}
        for split_name, parts in sources.items():
            if split_name not in splits:
                continue
            xs, ys = [], []
            for part in parts:
                for img, label in part.tf_source().as_numpy_iterator():
                    if image_size:
                        img = tf.cast(tf.image.resize(img, (image_size, image_size)), tf.uint8).numpy()
                    xs.append(img)
                    ys.append(int(label))
            shapes = {x.shape for x in xs}
            if len(shapes) > 1:
                raise DataError(f"{spec}: images of several sizes ({sorted(shapes)[:3]}...); pass --image-size N")
            arrays[f"x_{split_name}"] = np.stack(xs).astype("uint8")
            arrays[f"y_{split_name}"] = np.asarray(ys, "int32")
        for k in ("train", "test"):
            if f"x_{k}" not in arrays:
                raise DataError(f"the npz needs the train and test splits; --split must include {k}")
    meta = {"name": np.asarray(name)}
    if class_names:
        meta["class_names"] = np.asarray(class_names)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npz")
    np.savez_compressed(tmp, **arrays, **meta)
    os.replace(tmp, out)
    return {k: tuple(v.shape) for k, v in arrays.items()}

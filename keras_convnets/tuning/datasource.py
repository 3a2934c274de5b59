"""The search's data at whatever resolution a trial's model takes.

A search samples the input resolution (family space) or derives it (compound space), so the
hypermodels ask for the splits *at the model's input shape*; :class:`SearchData` caches them per
(side, channels). The loading itself is the project's data layer when it is available
(``keras_convnets.data``, :meth:`SearchData.from_dataset`), as for ``study scale``; the small
scikit-learn digits loader below (:func:`digits_data`) serves plain arrays, for using the spaces
from Python without that layer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

__all__ = ["Splits", "SearchData", "digits_data"]


@dataclasses.dataclass
class Splits:
    """Train / validation / test data for one input shape: ``(x, y)`` arrays or datasets."""

    train: Any
    val: Any
    test: Any = None

    @property
    def train_examples(self) -> int | None:
        return _length(self.train)


def _length(split) -> int | None:
    if isinstance(split, tuple):
        return len(split[1])
    try:
        return int(split.cardinality())
    except Exception:  # noqa: BLE001 - any dataset without a known size
        return None


class SearchData:
    """``loader(side, channels) -> Splits``, cached: ``data.at((32, 32, 3))``."""

    def __init__(self, loader: Callable[[int, int], Splits], *, classes: int, name: str, channels: int = 3,
                 info: dict | None = None, throughput: Callable | None = None):
        self._loader = loader
        # throughput(model) -> images per second of inference, measured the study's way when given.
        self.throughput = throughput
        self.classes = int(classes)
        self.name = name
        self.channels = int(channels)
        self.info = dict(info or {})
        self._cache: dict[tuple[int, int], Splits] = {}

    @classmethod
    def from_dataset(cls, dataset, *, batch_size: int, seed: int = 0, throughput: Callable | None = None) -> "SearchData":
        """The project's data layer (``keras_convnets.data.load_dataset(...)``): batches at each
        trial's resolution, the same pipeline (resize, normalise, augment) as ``study scale``."""

        def loader(side: int, channels: int) -> Splits:
            def split(name, training=False):
                return dataset.batches(name, side, batch_size, channels=channels, training=training, seed=seed)

            return Splits(train=split("train", training=True), val=split("val"), test=split("test"))

        return cls(loader, classes=dataset.num_classes, name=dataset.name, channels=dataset.channels,
                   info=dict(dataset.sizes), throughput=throughput)

    def at(self, input_shape) -> Splits:
        """The splits at ``input_shape`` = (side, side, channels) (a model's ``input_shape`` with
        or without the batch dimension)."""
        shape = tuple(input_shape)[-3:]
        side, width, channels = (int(d) for d in shape)
        if side != width:
            raise ValueError(f"search data is square; got input shape {shape}")
        key = (side, channels)
        if key not in self._cache:
            self._cache[key] = self._loader(side, channels)
        return self._cache[key]


# ----------------------------------------------------------------------------- digits (offline)
def _resize(images: np.ndarray, side: int, channels: int) -> np.ndarray:
    import keras

    x = images[..., None].astype("float32")
    x = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (side, side), interpolation="bilinear"))
    return np.repeat(x, channels, axis=-1) if channels > 1 else x


def digits_data(train_examples: int | None = None, seed: int = 0, val_fraction: float = 0.2,
                test_fraction: float = 0.2) -> SearchData:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), split once with ``seed``
    into train / validation / test, scaled to [0, 1] and upsampled to each trial's resolution."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype("float32") / 16.0
    labels = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(order)))
    n_val = int(round(val_fraction * len(order)))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    if train_examples is not None:
        if train_examples < 1:
            raise ValueError(f"train_examples must be >= 1, got {train_examples}")
        train = train[:train_examples]

    def loader(side: int, channels: int) -> Splits:
        def split(idx):
            return _resize(images[idx], side, channels), labels[idx]

        return Splits(train=split(train), val=split(val), test=split(test))

    return SearchData(loader, classes=10, name="digits", channels=1,
                      info={"train_examples": len(train), "val_examples": len(val), "test_examples": len(test),
                            "source": "sklearn.datasets.load_digits"})

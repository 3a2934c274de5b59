"""keras-tuner HyperModels over the registry: the ``family``, ``compound`` and ``nasnet`` spaces.

Each is a plain ``keras_tuner.HyperModel``: ``build(hp)`` returns a compiled Keras model and
``fit(hp, model, data, ...)`` trains it, so they work in every keras-tuner Tuner (RandomSearch,
BayesianOptimization, Hyperband, or ours). ``data`` may be a :class:`SearchData` -- the splits are
then fetched at the built model's input resolution, which is how a sampled resolution reaches the
data -- or anything ``model.fit`` accepts, passed through unchanged.
"""

from __future__ import annotations

import json
import time
from typing import Sequence

import keras
import keras_tuner as kt

from keras_convnets import registry
from keras_convnets.training import build_training_state
from keras_convnets.tuning import spaces
from keras_convnets.tuning.datasource import SearchData

__all__ = ["SearchHyperModel", "FamilyHyperModel", "CompoundHyperModel", "NasnetHyperModel", "make_optimizer"]


def make_optimizer(name: str, learning_rate: float):
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    raise ValueError(f"optimizer must be one of {spaces.OPTIMIZERS}, got {name!r}")


def _fit_inputs(split):
    return split if isinstance(split, tuple) else (split,)


class SearchHyperModel(kt.HyperModel):
    """What the three spaces share: the training recipe (optimizer, learning rate, dropout --
    hyperparameters with ``tune_training=True``, else the fixed ``training`` recipe), compiling,
    fitting on :class:`SearchData` at the model's resolution, and the test evaluation.

    Subclasses implement ``network(hp, training) -> keras.Model`` and ``describe(hp) -> dict``
    (the results-table columns of a trial).
    """

    space = ""

    def __init__(self, classes: int, *, batch_size: int = 64, tune_training: bool = False,
                 training: dict | None = None, run_eagerly: bool = False, name: str | None = None):
        super().__init__(name=name or f"{self.space}_space")
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
            raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
        self.classes = classes
        self.batch_size = int(batch_size)
        self.tune_training = bool(tune_training)
        # Each trial is a new graph: for the few steps of a small search, tracing it costs more
        # than it saves (a NASNet cell net at N=1 trains ~3x faster eagerly here).
        self.run_eagerly = bool(run_eagerly)
        self.training = {**spaces.TRAINING_DEFAULTS, **(training or {})}
        unknown = set(self.training) - set(spaces.TRAINING_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}; known: {sorted(spaces.TRAINING_DEFAULTS)}")

    # ------------------------------------------------------------------ keras-tuner API
    def build(self, hp):
        training = spaces.declare_training(hp, self.tune_training, self.training)
        model = self.network(hp, training)
        model.compile(
            optimizer=make_optimizer(training["optimizer"], training["learning_rate"]),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            run_eagerly=self.run_eagerly,
        )
        return model

    def fit(self, hp, model, data=None, *args, **kwargs):
        build_training_state(model)  # else TF traces the first training step twice (see there)
        if isinstance(data, SearchData):
            splits = data.at(model.input_shape)
            kwargs.setdefault("validation_data", splits.val)
            if isinstance(splits.train, tuple):
                kwargs.setdefault("batch_size", self.batch_size)
            return model.fit(*_fit_inputs(splits.train), **kwargs)
        return model.fit(data, *args, **kwargs)

    def evaluate(self, hp, model, data) -> dict:
        """Test accuracy (evaluated once, after training) and inference throughput of the compiled
        (graph) model: the data's own measure when it has one (the study's), else images per
        second of ``predict`` on up to 256 test images, timed after a warm-up call so that graph
        tracing is not counted."""
        if not isinstance(data, SearchData):
            return {}
        test = data.at(model.input_shape).test
        if test is None:
            return {}
        result = model.evaluate(*_fit_inputs(test), verbose=0, return_dict=True,
                                **({"batch_size": self.batch_size} if isinstance(test, tuple) else {}))
        out = {"test_accuracy": float(result["accuracy"])}
        # Throughput is the compiled model's, however the trial was trained.
        model.run_eagerly = False
        model.predict_function = None
        if data.throughput is not None:
            out["images_per_second"] = float(data.throughput(model))
        elif isinstance(test, tuple):
            x = test[0][:256]
            model.predict(x, verbose=0, batch_size=self.batch_size)
            t0 = time.perf_counter()
            model.predict(x, verbose=0, batch_size=self.batch_size)
            out["images_per_second"] = len(x) / max(time.perf_counter() - t0, 1e-9)
        return out

    # ------------------------------------------------------------------ per space
    def network(self, hp, training: dict) -> keras.Model:
        raise NotImplementedError

    def describe(self, hp) -> dict:
        """Columns of the results table for a trial with these hyperparameter values."""
        values = dict(hp.values)
        return {k: round(values[k], 6) if isinstance(values[k], float) else values[k]
                for k in ("optimizer", "learning_rate", "dropout") if k in values}


# ----------------------------------------------------------------------------- family
def _float_range(name: str, value: Sequence[float]) -> tuple[float, float, float]:
    try:
        lo, hi, step = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (min, max, step), got {value!r}") from None
    if not (0 < lo <= hi and step > 0):
        raise ValueError(f"{name} must satisfy 0 < min <= max and step > 0, got {value!r}")
    return lo, hi, step


class FamilyHyperModel(SearchHyperModel):
    """The registry as a search space: ``model`` (one of ``models``; a family name stands for
    that family's base model), its ``width_multiplier`` / ``depth_multiplier`` / input
    ``resolution`` (each a hyperparameter only for models whose registry entry lists the knob:
    keras-tuner conditional scopes), and the training hyperparameters (optimizer, learning rate,
    classifier dropout).

    The network is the registered backbone (``include_top=False, pooling="avg"``) under one head
    for every family -- dropout, then the dense softmax classifier -- so that dropout is the same
    hyperparameter whatever the family.
    """

    space = "family"

    def __init__(self, models: Sequence[str], classes: int, *, widths=(0.25, 1.0, 0.25), depths=(0.25, 1.0, 0.25),
                 resolutions: Sequence[int] = (32,), tune_training: bool = True, **kwargs):
        super().__init__(classes, tune_training=tune_training, **kwargs)
        if isinstance(models, str) or not models:
            raise ValueError(f"models must be a non-empty list of registered model or family names, got {models!r}")
        self.models = [resolve_model(m) for m in models]
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models list the same model twice: {self.models}")
        self.widths = _float_range("widths", widths)
        self.depths = _float_range("depths", depths)
        self.resolutions = sorted({int(r) for r in resolutions})
        if not self.resolutions or self.resolutions[0] < 1:
            raise ValueError(f"resolutions must be positive integers, got {resolutions!r}")

    def _takers(self, knob: str) -> list[str]:
        return [m for m in self.models if knob in registry.get(m).knobs]

    def _knobs(self, hp, name: str) -> tuple[dict, int]:
        spec = registry.get(name)
        knobs: dict = {}
        for knob, (lo, hi, step) in (("width_multiplier", self.widths), ("depth_multiplier", self.depths)):
            takers = self._takers(knob)
            if takers:
                with hp.conditional_scope("model", takers):
                    value = hp.Float(knob, lo, hi, step=step, default=hi)
                if name in takers:
                    knobs[knob] = round(float(value), 6)
        side = spec.default_size
        takers = self._takers("resolution")
        if takers:
            with hp.conditional_scope("model", takers):
                value = hp.Choice("resolution", self.resolutions, default=self.resolutions[-1])
            if name in takers:
                side = int(value)
        return knobs, max(side, spec.min_size)

    def network(self, hp, training):
        name = hp.Choice("model", self.models)
        spec = registry.get(name)
        knobs, side = self._knobs(hp, name)
        inputs = keras.Input((side, side, spec.channels), name="input_layer")
        features = registry.build(name, include_top=False, pooling="avg", input_tensor=inputs,
                                  input_shape=(side, side, spec.channels), **knobs)
        x = features.output
        if training["dropout"] > 0:
            x = keras.layers.Dropout(training["dropout"], name="top_dropout")(x)
        outputs = keras.layers.Dense(self.classes, activation="softmax", name="predictions")(x)
        return keras.Model(inputs, outputs, name=f"{name}_search")

    def describe(self, hp):
        values = dict(hp.values)
        name = values["model"]
        spec = registry.get(name)
        side = values.get("resolution", spec.default_size) if "resolution" in spec.knobs else spec.default_size
        return {
            "model": name,
            "family": spec.family,
            "width": values.get("width_multiplier", 1.0) if "width_multiplier" in spec.knobs else 1.0,
            "depth": values.get("depth_multiplier", 1.0) if "depth_multiplier" in spec.knobs else 1.0,
            "resolution": max(int(side), spec.min_size),
            **super().describe(hp),
        }


def resolve_model(name: str) -> str:
    """A registered model name, or a family name standing for its base model: the first variant
    the family's module registers that takes width and depth multipliers (the family's reference
    model: resnet18, densenet121, efficientnet_b0, nasnet_mobile...), else its first variant."""
    if name in registry.list_models():
        return name
    if name in registry.list_families():
        members = set(registry.list_models(name))
        # The registry keeps its table in registration order, i.e. the order of the family module.
        in_order = [registry.get(m) for m in registry._REGISTRY if m in members]
        scalable = [s for s in in_order if {"width_multiplier", "depth_multiplier"} <= set(s.knobs)]
        return (scalable or in_order)[0].name
    registry.get(name)  # raises the registry's "Unknown model ... Did you mean" error
    return name


# ----------------------------------------------------------------------------- compound
class CompoundHyperModel(SearchHyperModel):
    """EfficientNet's grid search at phi = 1 as a keras-tuner space (Tan & Le 2019, Sec. 3.3,
    "STEP 1"): ``alpha`` (depth) and ``beta`` (width) are hyperparameters on a ``step`` grid,
    ``gamma`` (resolution) is solved from alpha * beta^2 * gamma^2 = ``target``, and the
    ``base`` model is built at depth alpha, width beta and resolution gamma x ``resolution``
    (rounded to a multiple of 8, as the scaling study does). The ranges are checked so that
    gamma >= 1 everywhere (Eq. 3). The training recipe is fixed, as in the paper's grid search.
    """

    space = "compound"

    def __init__(self, base: str, classes: int, *, resolution: int = 32, target: float = 2.0,
                 alphas=(1.0, 1.4, 0.05), betas=(1.0, 1.15, 0.05), tune_training: bool = False, **kwargs):
        super().__init__(classes, tune_training=tune_training, **kwargs)
        self.base = resolve_model(base)
        spec = registry.get(self.base)
        missing = {"width_multiplier", "depth_multiplier", "resolution"} - set(spec.knobs)
        if missing:
            raise ValueError(f"compound scaling needs a model with width, depth and resolution knobs; "
                             f"{self.base} lacks {sorted(missing)}")
        self.resolution = int(resolution)
        self.target = float(target)
        self.alphas = _float_range("alphas", alphas)
        self.betas = _float_range("betas", betas)
        spaces.check_compound_ranges(self.alphas[:2], self.betas[:2], self.target)

    def coefficients(self, hp) -> tuple[float, float, float]:
        alpha = round(float(hp.Float("alpha", *self.alphas[:2], step=self.alphas[2], default=self.alphas[0])), 6)
        beta = round(float(hp.Float("beta", *self.betas[:2], step=self.betas[2], default=self.betas[0])), 6)
        return alpha, beta, spaces.solve_gamma(alpha, beta, self.target)

    def build_args(self, hp) -> dict:
        from keras_convnets.scaling import CompoundScaling

        alpha, beta, gamma = self.coefficients(hp)
        scaling = CompoundScaling(alpha, beta, max(gamma, 1.0), target=self.target)
        return scaling.apply(self.base, 1.0, base_resolution=self.resolution)

    def network(self, hp, training):
        return registry.build(self.base, classes=self.classes, **self.build_args(hp))

    def describe(self, hp):
        alpha, beta, gamma = self.coefficients(hp.copy())
        args = self.build_args(hp.copy())
        return {
            "model": self.base,
            "family": registry.get(self.base).family,
            "alpha": alpha, "beta": beta, "gamma": round(gamma, 6),
            "width": args.get("width_multiplier", 1.0),
            "depth": args.get("depth_multiplier", 1.0),
            "resolution": args["input_shape"][0],
            **super().describe(hp),
        }


# ----------------------------------------------------------------------------- nasnet
class NasnetHyperModel(SearchHyperModel):
    """The NASNet search space (Zoph et al. 2018, Sec. 3): a genotype as hyperparameters (see
    :mod:`keras_convnets.tuning.spaces`) -- for the normal and the reduction cell, or for PNAS's
    single shared cell (``shared_cell``, the default for the ``pnas`` op set: Liu et al. 2018
    search one cell and stride it at reductions) -- over one of the op sets of
    :data:`keras_convnets.models.nas.OP_SETS`, built through the one cell builder
    (:func:`keras_convnets.models.nas.nas_network`) small -- ``num_cells`` N and ``filters`` F --
    for the search (the papers search with small N and F too, then grow them: NASNet Sec. 4.1,
    AmoebaNet Sec. 4). :meth:`full_size` builds a found genotype at any N, F and stem."""

    space = "nasnet"

    def __init__(self, classes: int, *, op_set: str = "nasnet", num_cells: int = 1, filters: int = 8,
                 resolution: int = 32, stem: str = "cifar", shared_cell: bool | None = None,
                 tune_training: bool = False, **kwargs):
        super().__init__(classes, tune_training=tune_training, **kwargs)
        op_sets = self._op_sets()
        if op_set not in op_sets:
            raise ValueError(f"op_set must be one of {sorted(op_sets)}, got {op_set!r}")
        for name, value in (("num_cells", num_cells), ("filters", filters), ("resolution", resolution)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.op_set, self.ops = op_set, list(op_sets[op_set])
        self.num_cells, self.filters, self.resolution, self.stem = num_cells, filters, resolution, stem
        self.shared_cell = op_set == "pnas" if shared_cell is None else bool(shared_cell)
        self.cells = ("normal",) if self.shared_cell else spaces.CELLS

    @staticmethod
    def _op_sets() -> dict:
        from keras_convnets.models import nas

        return nas.OP_SETS

    def genotype(self, hp):
        spaces.declare_genotype(hp, self.ops, self.cells)
        return spaces.genotype_from_values(hp.values, self.op_set)

    def network(self, hp, training):
        return self.full_size(self.genotype(hp), num_cells=self.num_cells, filters=self.filters, stem=self.stem,
                              input_shape=(self.resolution, self.resolution, 3), classes=self.classes)

    @staticmethod
    def full_size(genotype, *, num_cells: int, filters: int, stem: str = "imagenet", input_shape=None,
                  classes: int = 1000, **kwargs) -> keras.Model:
        """The network of ``genotype`` (a Genotype, its text or dict form) at any size, e.g. the
        best searched cell at N=6, F=32 for CIFAR or with the ImageNet stem; ``kwargs`` go to
        ``nas_network`` (drop-path, auxiliary head, dropout...)."""
        from keras_convnets.models import nas

        return nas.nas_network(genotype, num_cells=num_cells, filters=filters, stem=stem, input_shape=input_shape,
                               classes=classes, **kwargs)

    def describe(self, hp):
        values = dict(hp.values)
        cells = spaces.cells_from_values(values, self.cells)
        drawing = {}
        for cell in self.cells:
            drawing[cell] = cells[cell]
            drawing[f"{cell}_concat"] = spaces.cell_concat(cells[cell])
        return {
            "model": f"nas_network(N={self.num_cells},F={self.filters})",
            "family": "nas",
            "resolution": self.resolution,
            "num_cells": self.num_cells,
            "filters": self.filters,
            "op_set": self.op_set,
            "genotype": str(spaces.genotype_from_values(values, self.op_set)),
            "cells": json.dumps(drawing, separators=(",", ":")),
            **super().describe(hp),
        }


def cost(model) -> dict:
    """What a trial's model costs: total parameters (``count_params``) and MACs at batch 1."""
    from keras_convnets.flops import count_macs

    return {"params": int(model.count_params()), "macs": int(count_macs(model))}



def best_trial(directory, objective_column: str = "score") -> dict:
    """The finished trial with the best score in a search folder's ``results.csv`` (its row:
    for the nasnet space ``row["genotype"]`` feeds :meth:`NasnetHyperModel.full_size`)."""
    import csv
    from pathlib import Path

    path = Path(directory) / "results.csv"
    if not path.exists():
        raise ValueError(f"{str(directory)!r} has no results.csv: not a search folder")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("status") == "ok" and r.get(objective_column) not in (None, "")]
    if not rows:
        raise ValueError(f"no finished trial with a {objective_column} in {str(path)!r}")
    return max(rows, key=lambda r: float(r[objective_column]))

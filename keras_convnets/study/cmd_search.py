"""``study search``: keras-tuner searches over the registry, EfficientNet's compound
coefficients or the NASNet cell space, with random, Bayesian, Hyperband or regularized evolution.

Settings come from the embedded defaults, then the study file (``--config``), then the flags.
Every finished trial is a row of ``DIR/results.csv`` (params, MACs, accuracies, and for nasnet
the genotype as text), its trained model is ``DIR/trials/<id>.keras`` (``study export DIR
--trial ID``), keras-tuner's own project (oracle state, trial records, checkpoints) is
``DIR/tuner/``, and the report is ``DIR/index.html``.

Distributed: keras-tuner's chief/worker mode. Run the same command on every process with
``KERASTUNER_TUNER_ID`` (``chief`` on one, ``tuner0``, ``tuner1``... on the others),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``: the chief holds the oracle (the
evolution's population) and serves trials over gRPC, the workers train them, and the chief writes
the report when the search is over.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from keras_convnets.study import StudyError

HELP = "architecture/hyperparameter search with keras-tuner (family, compound or NASNet cell space)"
DESCRIPTION = (
    "Search the registry (--space family), EfficientNet's compound coefficients (--space compound) "
    "or the NASNet cell space (--space nasnet) with regularized evolution, random search, Bayesian "
    "optimisation or Hyperband. Results: DIR/results.csv, DIR/index.html. Distributed: set "
    "KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT on a chief and its workers."
)

SPACES = ("family", "compound", "nasnet")
ALGORITHMS = ("evolution", "random", "bayesian", "hyperband")
OP_SETS = ("nasnet", "pnas", "amoeba")
OBJECTIVES = ("val_accuracy", "mnas_score")
STRATEGIES = ("none", "mirrored")
STEMS = ("cifar", "imagenet")

# ----------------------------------------------------------------------------- settings
# (table in a study file, type, default). Types: int, float, str, bool, "str_list", "int_list",
# "range" (min, max, step numbers). Every key can come from a study file; the flags below
# override the common ones.
SETTINGS: dict[str, tuple[str, Any, Any]] = {
    "name": ("", str, None),
    "description": ("", str, ""),
    # [search]
    "space": ("search", str, None),
    "algorithm": ("search", str, "evolution"),
    "max_trials": ("search", int, 24),
    "population": ("search", int, 8),
    "sample": ("search", int, 3),
    "identity_probability": ("search", float, 0.05),
    "objective": ("search", str, "val_accuracy"),
    "max_macs": ("search", int, None),
    "target_macs": ("search", int, None),
    "macs_weight": ("search", float, -0.07),
    "strategy": ("search", str, "none"),
    # [space]
    "models": ("space", "str_list", None),
    "widths": ("space", "range", [0.25, 1.0, 0.25]),
    "depths": ("space", "range", [0.25, 1.0, 0.25]),
    "resolutions": ("space", "int_list", None),
    "tune_training": ("space", bool, None),
    "base": ("space", str, "efficientnet_b0"),
    "target": ("space", float, 2.0),
    "alphas": ("space", "range", [1.0, 1.4, 0.05]),
    "betas": ("space", "range", [1.0, 1.15, 0.05]),
    "op_set": ("space", str, "nasnet"),
    "num_cells": ("space", int, 1),
    "filters": ("space", int, 8),
    "stem": ("space", str, "cifar"),
    "shared_cell": ("space", bool, None),
    # [data]
    "dataset": ("data", str, "digits"),
    "data_dir": ("data", str, None),
    "train_examples": ("data", int, None),
    "resolution": ("data", int, 32),
    # [training]
    "epochs": ("training", int, 1),
    "batch_size": ("training", int, 64),
    "optimizer": ("training", str, "adam"),
    "learning_rate": ("training", float, 1e-3),
    "dropout": ("training", float, 0.0),
    "eager": ("training", bool, False),
    # Each trial in its own process (memory stays flat on TensorFlow); false = in this process.
    "isolate": ("training", bool, True),
    "seed": ("training", int, 0),
}
TABLES = sorted({t for t, _, _ in SETTINGS.values() if t})
# Settings that define what a search is: a --resume must not change them.
DEFINING = ("space", "algorithm", "population", "sample", "identity_probability", "objective", "max_macs",
            "target_macs", "macs_weight", "models", "widths", "depths", "resolutions", "tune_training", "base",
            "target", "alphas", "betas", "op_set", "num_cells", "filters", "stem", "shared_cell", "dataset", "train_examples",
            "resolution", "epochs", "batch_size", "optimizer", "learning_rate", "dropout", "seed")
STUDIES_DIR = Path(__file__).resolve().parents[2] / "studies"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--config", metavar="FILE", help="study file (TOML), e.g. studies/search_nasnet.toml (or just search_nasnet)")
    a("--space", help=f"search space: {' | '.join(SPACES)}")
    a("--algorithm", help=f"search algorithm: {' | '.join(ALGORITHMS)} (default evolution)")
    a("--op-set", dest="op_set", help=f"ops of the nasnet space: {' | '.join(OP_SETS)} (default nasnet)")
    a("--population", type=int, metavar="P", help="evolution: population size (default 8; the paper 100)")
    a("--sample", type=int, metavar="S", help="evolution: tournament sample size, <= P (default 3; the paper 25)")
    a("--max-trials", dest="max_trials", type=int, metavar="N", help="trials in the search (default 24)")
    a("--objective", help=f"what the search maximises: {' | '.join(OBJECTIVES)} (default val_accuracy)")
    a("--max-macs", dest="max_macs", type=_number, metavar="N",
      help="MACs budget: models over it are not trained and score worst (e.g. 2e6)")
    a("--target-macs", dest="target_macs", type=_number, metavar="T",
      help="MnasNet reward ACC*(MACs/T)^w as the objective mnas_score")
    a("--macs-weight", dest="macs_weight", type=float, metavar="W", help="MnasNet's exponent w (default -0.07)")
    a("--models", type=_csv, metavar="A,B", help="family space: registered models or family names")
    a("--base", help="compound space: the base model (default efficientnet_b0)")
    a("--num-cells", dest="num_cells", type=int, metavar="N", help="nasnet space: cells per stack while searching")
    a("--filters", type=int, metavar="F", help="nasnet space: filters while searching")
    a("--dataset", help="digits | <tfds name> | folder:PATH | npz:FILE (default digits)")
    a("--data-dir", dest="data_dir", metavar="DIR", help="TFDS data directory (default $TFDS_DATA_DIR)")
    a("--train-examples", dest="train_examples", type=int, metavar="N", help="use only N training examples")
    a("--resolution", type=int, metavar="PX", help="input side (nasnet, compound base; default 32)")
    a("--epochs", type=int, metavar="N", help="epochs per trial (hyperband: the largest budget; default 1)")
    a("--batch-size", dest="batch_size", type=int, metavar="N", help="batch size (default 64)")
    a("--eager", action="store_true", default=None,
      help="train eagerly (no graph tracing: faster for small searches of few steps)")
    a("--in-process", dest="isolate", action="store_false", default=None,
      help="train the trials in this process (default: each in its own, so memory does not grow)")
    a("--seed", type=int, metavar="N", help="seed of the data split, the search and the weights (default 0)")
    a("--strategy", help="train each trial under a tf.distribute strategy: none | mirrored (all local GPUs)")
    a("--out", metavar="DIR", help="output folder (default reports/<study name>)")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue the search in DIR where it stopped")
    g.add_argument("--overwrite", action="store_true", help="delete a previous search in DIR first")
    a("--quiet", action="store_true", help="no per-trial tables or progress bars")


def _number(text: str) -> int:
    """An integer count, also written 2e6 or 2_000_000."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(value)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _check_type(key: str, value: Any, kind, where: str) -> Any:
    def bad(expected: str):
        return StudyError(f"{where}: {key} must be {expected}, got {value!r}")

    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        value = float(value)
    elif kind is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
    elif kind is str:
        if not isinstance(value, str):
            raise bad("a string")
    elif kind == "str_list":
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise bad("a non-empty list of strings")
    elif kind == "int_list":
        if not (isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise bad("a non-empty list of integers")
    elif kind == "range":
        if not (isinstance(value, list) and len(value) == 3
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise bad("[min, max, step]")
        value = [float(v) for v in value]
    return value


def resolve_config_path(text: str) -> Path:
    path = Path(text)
    candidates = [path, STUDIES_DIR / path, Path("studies") / path]
    candidates += [c.with_suffix(".toml") for c in candidates if c.suffix != ".toml"]
    for c in candidates:
        if c.is_file():
            return c
    raise StudyError(f"study file {text!r} not found (looked in ., studies/ and {STUDIES_DIR})")


def load_study(path: Path) -> dict:
    """The settings a study file gives, checked: unknown tables or keys and wrong types are
    errors naming the file and the key."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise StudyError(f"{path}: cannot read: {e.strerror}") from None
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            if key not in TABLES:
                raise StudyError(f"{path}: unknown table [{key}]; known tables: {', '.join(TABLES)}")
            for sub, v in value.items():
                spec = SETTINGS.get(sub)
                if spec is None or spec[0] != key:
                    known = ", ".join(k for k, s in SETTINGS.items() if s[0] == key)
                    raise StudyError(f"{path}: unknown key {sub!r} in [{key}]; known: {known}")
                out[sub] = _check_type(f"[{key}] {sub}", v, spec[1], str(path))
        else:
            spec = SETTINGS.get(key)
            if spec is None or spec[0] != "":
                raise StudyError(f"{path}: unknown top-level key {key!r}; known: name, description, "
                                 f"and the tables {', '.join(TABLES)}")
            out[key] = _check_type(key, value, spec[1], str(path))
    return out


def resolve_settings(args: argparse.Namespace) -> dict:
    """Defaults < study file < flags, then checked as a whole."""
    settings = {k: v[2] for k, v in SETTINGS.items()}
    if args.config:
        path = resolve_config_path(args.config)
        settings.update(load_study(path))
        settings["config"] = str(path)
    for key in SETTINGS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    settings["out"] = args.out
    check_settings(settings)
    if not settings["name"]:
        settings["name"] = f"search_{settings['space']}"
    if settings["out"] is None:
        settings["out"] = str(Path("reports") / settings["name"])
    return settings


def _choice(settings: dict, key: str, allowed) -> None:
    if settings[key] not in allowed:
        flag = "--" + key.replace("_", "-")
        raise StudyError(f"{flag} must be one of {', '.join(allowed)}; got {settings[key]!r}")


def check_settings(s: dict) -> None:
    if s["space"] is None:
        raise StudyError(f"--space is required (or `space` in the study file): one of {', '.join(SPACES)}")
    _choice(s, "space", SPACES)
    _choice(s, "algorithm", ALGORITHMS)
    _choice(s, "op_set", OP_SETS)
    _choice(s, "objective", OBJECTIVES)
    _choice(s, "strategy", STRATEGIES)
    _choice(s, "stem", STEMS)
    for key in ("max_trials", "population", "sample", "epochs", "batch_size", "num_cells", "filters", "resolution"):
        if s[key] < 1:
            raise StudyError(f"--{key.replace('_', '-')} must be >= 1, got {s[key]}")
    if s["train_examples"] is not None and s["train_examples"] < 1:
        raise StudyError(f"--train-examples must be >= 1, got {s['train_examples']}")
    if s["seed"] < 0:
        raise StudyError(f"--seed must be >= 0, got {s['seed']}")
    if s["sample"] > s["population"]:
        raise StudyError(f"--sample ({s['sample']}) must not exceed --population ({s['population']}): "
                         "each tournament samples distinct members of the population")
    if not 0 <= s["identity_probability"] < 1:
        raise StudyError(f"identity_probability must be in [0, 1), got {s['identity_probability']}")
    if not 0 <= s["dropout"] < 1:
        raise StudyError(f"dropout must be in [0, 1), got {s['dropout']}")
    if s["learning_rate"] <= 0:
        raise StudyError(f"learning_rate must be > 0, got {s['learning_rate']}")
    if s["objective"] == "mnas_score" and s["target_macs"] is None:
        raise StudyError("--objective mnas_score needs --target-macs T (the MnasNet reward ACC*(MACs/T)^w)")
    if s["target_macs"] is not None and s["objective"] != "mnas_score":
        s["objective"] = "mnas_score"  # a target given means the multi-objective reward is wanted
    if s["algorithm"] == "hyperband" and s["epochs"] < 2:
        raise StudyError("--algorithm hyperband needs --epochs >= 2 (its largest training budget)")
    if s["space"] == "family" and not s["models"]:
        raise StudyError("--space family needs --models A,B (registered models or family names) "
                         "or `models` in the study file's [space]")


# ----------------------------------------------------------------------------- data
def open_data(s: dict):
    """The search's data (:class:`keras_convnets.tuning.SearchData`) through the project's data
    layer, as for ``study scale`` (same splits, pipeline and throughput measure); without that
    layer only digits can be served (by the small loader of :mod:`keras_convnets.tuning`)."""
    from keras_convnets import tuning

    try:
        from keras_convnets import data as data_layer
        from keras_convnets.study.runner import measure_throughput
    except ImportError:
        if s["dataset"] != "digits":
            raise StudyError(f"dataset {s['dataset']!r} needs keras_convnets.data, which is not available; "
                             "use --dataset digits") from None
        return tuning.digits_data(train_examples=s["train_examples"], seed=s["seed"])
    dataset = data_layer.load_dataset(s["dataset"], data_dir=s["data_dir"], train_examples=s["train_examples"],
                                      seed=s["seed"])
    return tuning.SearchData.from_dataset(
        dataset, batch_size=s["batch_size"], seed=s["seed"],
        throughput=lambda model: measure_throughput(model, dataset, s["batch_size"]))


# ----------------------------------------------------------------------------- results
class ResultsRecorder:
    """Finished trials -> rows of ``DIR/results.csv``. Several processes (the workers of a
    distributed search sharing DIR) append under an exclusive file lock; the store itself writes
    each row atomically."""

    def __init__(self, out: Path, hypermodel, settings: dict, tuner_id: str):
        from keras_convnets.study.results import ResultsStore

        self.store = ResultsStore(out)
        self.lock_path = Path(out) / ".results.lock"
        self.hypermodel = hypermodel
        self.settings = settings
        self.tuner_id = tuner_id

    def _locked(self):
        import contextlib

        @contextlib.contextmanager
        def lock():
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.lock_path, "a") as f:
                try:
                    import fcntl
                except ImportError:  # not POSIX: one process at a time is the user's job
                    yield
                    return
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)

        return lock()

    def lookup(self, trial_id: str):
        import keras_tuner as kt

        rows = [r for r in self.store.rows() if r["trial_id"] == str(trial_id)]
        if not rows:
            return None
        row = rows[0]
        if row["status"] == "failed":
            raise kt.errors.FailedTrialError(f"recorded as failed before the resume: {row.get('error', '')}")
        metrics = {}
        for key in ("params", "macs", "val_accuracy", "val_loss", "accuracy", "loss", "test_accuracy",
                    "train_seconds", "images_per_second", "mnas_score"):
            if row.get(key) not in (None, ""):
                metrics[key] = float(row[key])
        metrics[self.settings["objective"]] = float(row["score"])
        return metrics

    def row(self, trial_id: str, hp, metrics: dict, status: str, message: str = "") -> dict:
        try:
            described = self.hypermodel.describe(hp)
        except Exception as e:  # noqa: BLE001 - a half-populated trial still gets its row
            described = {"describe_error": f"{type(e).__name__}: {e}"}
        objective = self.settings["objective"]
        row: dict[str, Any] = {
            "trial_id": str(trial_id),
            "method": self.settings["algorithm"],
            **described,
            "params": _int(metrics.get("params")),
            "macs": _int(metrics.get("macs")),
            "val_accuracy": None if status == "over_budget" else metrics.get("val_accuracy"),
            "test_accuracy": metrics.get("test_accuracy"),
            "train_seconds": metrics.get("train_seconds"),
            "images_per_second": metrics.get("images_per_second"),
            "status": status,
            "space": self.settings["space"],
            "objective": objective,
            "score": metrics.get(objective),
            "val_loss": metrics.get("val_loss"),
            "mnas_score": metrics.get("mnas_score"),
            "worker": self.tuner_id,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            # As study scale's rows: the trained model (for `study export DIR --trial ID`), the error.
            "weights": self._weights(trial_id) if status == "ok" else None,
            "error": message,
        }
        return row

    def _weights(self, trial_id: str) -> str | None:
        rel = f"{TRIALS_DIR}/{trial_id}.keras"
        return rel if (self.store.dir / rel).exists() else None

    def record(self, trial_id: str, hp, metrics: dict, status: str, message: str = "") -> None:
        row = self.row(trial_id, hp, metrics, status, message)
        with self._locked():
            if str(trial_id) not in self.store.finished_ids():
                self.store.append(row)

    def reconcile(self, oracle) -> int:
        """Rows for trials the oracle saw end but the store lacks (workers whose DIR is not
        shared with the chief): from the metrics every trial reports to the oracle."""
        added = 0
        have = self.store.finished_ids()
        for trial_id in sorted(oracle.trials):
            trial = oracle.trials[trial_id]
            if trial_id in have or trial.status not in ("COMPLETED", "FAILED"):
                continue
            metrics = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
            status = "failed" if trial.status == "FAILED" else ("over_budget" if metrics.get("over_budget") else "ok")
            message = (trial.message or "").strip().splitlines()[-1:] if status == "failed" else []
            row = self.row(trial_id, trial.hyperparameters, metrics, status, message[0] if message else "")
            row["worker"] = "unknown (recorded by the chief)"
            with self._locked():
                if trial_id not in self.store.finished_ids():
                    self.store.append(row)
                    added += 1
        return added


def _int(value):
    return None if value is None else int(round(float(value)))


# ----------------------------------------------------------------------------- the search
def make_hypermodel(s: dict, classes: int):
    from keras_convnets import tuning

    training = {"optimizer": s["optimizer"], "learning_rate": s["learning_rate"], "dropout": s["dropout"]}
    common = dict(batch_size=s["batch_size"], training=training, run_eagerly=s["eager"])
    if s["tune_training"] is not None:
        common["tune_training"] = s["tune_training"]
    if s["space"] == "family":
        return tuning.FamilyHyperModel(s["models"], classes, widths=s["widths"], depths=s["depths"],
                                       resolutions=s["resolutions"] or [s["resolution"]], **common)
    if s["space"] == "compound":
        return tuning.CompoundHyperModel(s["base"], classes, resolution=s["resolution"], target=s["target"],
                                         alphas=s["alphas"], betas=s["betas"], **common)
    return tuning.NasnetHyperModel(classes, op_set=s["op_set"], num_cells=s["num_cells"], filters=s["filters"],
                                   resolution=s["resolution"], stem=s["stem"], shared_cell=s["shared_cell"],
                                   **common)


def distributed_role() -> str | None:
    """``chief``, ``worker`` or None, from keras-tuner's environment variables."""
    from keras_tuner.src.distribute import utils as dist_utils

    try:
        if not dist_utils.has_chief_oracle():
            return None
    except RuntimeError as e:  # KERASTUNER_ORACLE_IP set without a port or a tuner id
        raise StudyError(str(e).splitlines()[0]) from None
    return "chief" if dist_utils.is_chief_oracle() else "worker"


TRIALS_DIR = "trials"
OWNED = ("results.csv", ".results.lock", "study.json", "evolution.json", "index.html", "tuner", "trials")


def prepare_out(out: Path, s: dict, resume: bool, overwrite: bool) -> None:
    """An existing search is never silently overwritten: --resume continues it (with the same
    defining settings), --overwrite deletes what a search wrote there (and nothing else)."""
    previous = [p for p in OWNED if (out / p).exists()]
    if previous and not (resume or overwrite):
        raise StudyError(f"{out} already holds a search ({', '.join(previous)}); "
                         "use --resume to continue it or --overwrite to start again")
    if overwrite:
        for p in previous:
            path = out / p
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if resume and (out / "study.json").exists():
        old = json.loads((out / "study.json").read_text()).get("settings", {})
        changed = [k for k in DEFINING if k in old and _same(old[k]) != _same(s[k])]
        if changed:
            raise StudyError(f"--resume with different settings than the search in {out}: "
                             + ", ".join(f"{k} {old[k]!r} -> {s[k]!r}" for k in changed))
    out.mkdir(parents=True, exist_ok=True)


def _same(value):
    return json.loads(json.dumps(value))


def write_study_json(out: Path, s: dict, role: str | None) -> None:
    from keras_convnets.study.results import atomic_write_text

    env: dict[str, Any] = {"python": sys.version.split()[0]}
    for pkg in ("keras", "keras_tuner", "tensorflow", "numpy"):
        try:
            env[pkg] = __import__(pkg).__version__
        except Exception:  # noqa: BLE001
            env[pkg] = None
    doc = {"kind": "search", "settings": {k: s[k] for k in SETTINGS}, "config": s.get("config"),
           "distributed": role is not None, "environment": env,
           "command": "python -m keras_convnets.study search " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [])}
    atomic_write_text(out / "study.json", json.dumps(doc, indent=2, default=str) + "\n")


def _strategy(name: str, create: bool = True):
    if name == "none":
        return None
    import keras

    if keras.backend.backend() != "tensorflow":
        raise StudyError("--strategy mirrored needs the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    if not create:
        return None
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def trial_context(s: dict):
    """What a trial process needs (``TrialRunner``'s setup): the same data (same seed, same split)
    and hypermodel as the search's process, and the strategy, made there so that only the
    trial's process touches the GPUs."""
    import keras

    from keras_convnets import tuning

    keras.utils.set_random_seed(s["seed"])
    data = open_data(s)
    return tuning.SearchContext(data, make_hypermodel(s, data.classes), _strategy(s["strategy"]))


# What a search's trial process imports beyond a scale trial's (isolation.PRELOAD).
TRIAL_PRELOAD = ("keras_tuner", "keras_convnets.tuning")


def trial_runner(s: dict, data, hypermodel):
    """The search's trials in their own processes (``isolate``, the default), else None."""
    if not s["isolate"]:
        return None
    import functools

    from keras_convnets import tuning
    from keras_convnets.study.isolation import TrialRunner

    return TrialRunner(tuning.SearchContext(data, hypermodel), isolate=True,
                       setup=functools.partial(trial_context, s), work=tuning.search_task,
                       preload=TRIAL_PRELOAD)


def run(args: argparse.Namespace) -> int:
    s = resolve_settings(args)
    out = Path(s["out"])
    role = distributed_role()
    if s["isolate"]:  # before anything is written: models registered here must reach the trials
        from keras_convnets.study.isolation import start_server, user_specs

        start_server(TRIAL_PRELOAD)  # its imports beside this process's (user_specs' are the first)
        user_specs()
    if role != "worker":  # workers share the chief's DIR; only the chief may create or wipe it
        prepare_out(out, s, args.resume, args.overwrite)
        write_study_json(out, s, role)

    import keras
    import keras_tuner as kt

    from keras_convnets import tuning

    keras.utils.set_random_seed(s["seed"])
    data = open_data(s)
    hypermodel = make_hypermodel(s, data.classes)
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    recorder = ResultsRecorder(out, hypermodel, s, tuner_id)
    trials = trial_runner(s, data, hypermodel)
    try:
        tuner = tuning.make_tuner(
            s["algorithm"], hypermodel, objective=s["objective"], max_trials=s["max_trials"], seed=s["seed"],
            population_size=s["population"], sample_size=s["sample"], max_epochs=s["epochs"], directory=str(out),
            project_name="tuner", overwrite=False,
            # With trials in their own processes the strategy is made there (trial_context).
            distribution_strategy=_strategy(s["strategy"], create=trials is None), trials=trials,
            identity_probability=s["identity_probability"], max_macs=s["max_macs"], mnas_target=s["target_macs"],
            mnas_weight=s["macs_weight"], recorder=recorder, models_dir=out / TRIALS_DIR,
        )
    except RuntimeError as e:  # keras-tuner's "Error reloading Oracle" and the like
        raise StudyError(str(e).splitlines()[0]) from None
    except json.JSONDecodeError as e:  # a keras-tuner state file cut short by a kill mid-write
        raise StudyError(f"keras-tuner's project in {out / 'tuner'} is damaged ({e}); "
                         "start again with --overwrite") from None
    verbose = 0 if args.quiet else 1
    started = time.perf_counter()
    print(f"search {s['name']}: space {s['space']}, {s['algorithm']}, {s['max_trials']} trials"
          + (f" ({role} {tuner_id})" if role else "") + f" -> {out}", file=sys.stderr)
    with trials or contextlib.nullcontext():
        tuner.search(data, epochs=s["epochs"], verbose=verbose)
    if role == "worker":
        print(f"worker {tuner_id}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return 0
    recorder.reconcile(tuner.oracle)
    if isinstance(tuner.oracle, kt.Oracle) and hasattr(tuner.oracle, "lineage"):
        from keras_convnets.study.results import atomic_write_text

        atomic_write_text(out / "evolution.json", json.dumps(
            {"population": tuner.oracle.population, "lineage": tuner.oracle.lineage, "removed": tuner.oracle.removed},
            indent=1) + "\n")
    from keras_convnets.report.search import write_search_report

    page = write_search_report(out)
    print(summary(out, s, time.perf_counter() - started, page), file=sys.stderr)
    return 0


def summary(out: Path, s: dict, seconds: float, page: Path) -> str:
    from keras_convnets.study.results import ResultsStore

    rows = ResultsStore(out).rows()
    ok = [r for r in rows if r["status"] == "ok" and r.get("score") not in (None, "")]
    lines = [f"{len(rows)} trials in {out}/results.csv ({len(ok)} trained) in {seconds:.0f} s; report {page}"]
    if ok:
        best = max(ok, key=lambda r: float(r["score"]))
        lines.append(f"best: trial {best['trial_id']} {s['objective']} {float(best['score']):.4f}, "
                     f"{int(float(best['macs'])):,} MACs, {int(float(best['params'])):,} params")
        if best.get("genotype"):
            lines.append(f"best genotype: {best['genotype']}")
    return "\n".join(lines)

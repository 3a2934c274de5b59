"""Study files: ``studies/NAME.toml``, read with :mod:`tomllib`, checked key by key.

A study file has two top-level keys and four tables; every key is optional (the defaults are the
embedded ``quick`` study, which ``studies/quick.toml`` spells out)::

    name = "quick"                 # also the default output folder: reports/<name>
    description = "..."
    [model]    base, resolution, resolution_multiple, build_args = {...}
    [data]     dataset, data_dir, download, train_examples, val_examples, test_examples, augment
    [scaling]  phi_max, grid_size, grid_step, target, tolerance, coefficients, baselines
    [training] epochs, batch_size, optimizer, learning_rate, weight_decay, schedule, seed,
               precision, jit, bn_momentum, run_eagerly, isolate

``load_config(path)`` returns a :class:`StudyConfig`; :func:`apply_overrides` lays CLI flags on
top. Unknown keys, wrong types and out-of-range values raise :class:`StudyError` naming the file
(or the flag) and the key, so the CLI exits 2 with one line.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from keras_convnets.study import StudyError

__all__ = ["StudyConfig", "SCHEMA", "load_config", "resolve_config_path", "apply_overrides", "check",
           "STUDIES_DIR"]

# The repository's studies/ folder (also looked up relative to the working directory).
STUDIES_DIR = Path(__file__).resolve().parents[2] / "studies"

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("cosine", "constant")
BASELINES = ("width", "depth", "resolution")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass
class StudyConfig:
    """Everything that decides a study's trials. The defaults are the ``quick`` study: offline
    (scikit-learn's digits), EfficientNet-B0 at 32 px, the paper's grid point at phi = 1 and the
    three single-dimension baselines at its MACs (5 trials, 3 epochs each). Each trial traces
    EfficientNet's training graph, about a minute on an idle 2-core CPU, so trials, not epochs, set
    the time: a few minutes idle, several times that on a loaded machine."""

    name: str = "quick"
    description: str = ("EfficientNet's scaling study in miniature: EfficientNet-B0 on scikit-learn's "
                        "bundled digits at 32 px, offline, on a CPU.")
    # [model]
    base: str = "efficientnet_b0"
    resolution: int = 32
    # Resolutions are rounded to this multiple. EfficientNet rounds to 8 at 224 px; at 32 px a
    # multiple of 8 is a 25% step, too coarse to follow gamma^phi, so the studies use 4.
    resolution_multiple: int = 4
    build_args: dict = dataclasses.field(default_factory=dict)
    # [data]
    dataset: str = "digits"
    data_dir: str = ""  # "" = TFDS_DATA_DIR or tfds' default
    download: bool = False
    train_examples: int = 0  # 0 = all
    val_examples: int = 0  # 0 = 10% of the training data, held out from it
    test_examples: int = 0  # 0 = the whole test split
    augment: Any = "auto"  # "auto" | true | false
    # [scaling]
    phi_max: int = 1
    grid_size: int = 1
    grid_step: float = 0.05
    target: float = 2.0
    tolerance: float = 0.05
    coefficients: list = dataclasses.field(default_factory=list)  # [alpha, beta, gamma]: skip the grid
    baselines: list = dataclasses.field(default_factory=lambda: list(BASELINES))
    # [training]
    epochs: int = 3
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 0.002
    weight_decay: float = 0.0
    schedule: str = "cosine"
    seed: int = 0
    precision: str = "float32"
    jit: bool = False
    bn_momentum: float = 0.9  # 0 = the model's own (0.99 for EfficientNet); see runner.Recipe
    run_eagerly: bool = False
    # Each trial in a fresh process (keras_convnets.study.isolation): memory stays flat across
    # trials. False runs them in the study's process (TensorFlow then keeps ~100 MiB a trial).
    isolate: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def sections(self) -> dict:
        """The config as a study file's tables (what ``study.json`` records)."""
        d = self.to_dict()
        out = {k: d[k] for k in SCHEMA[""]}
        for section, keys in SCHEMA.items():
            if section:
                out[section] = {k: d[k] for k in keys}
        return out


# section -> {key: (type(s), description)}
SCHEMA: dict[str, dict[str, tuple]] = {
    "": {"name": (str, "study name, [A-Za-z0-9_.-]"), "description": (str, "free text")},
    "model": {
        "base": (str, "a registered model name"),
        "resolution": (int, "base input side in pixels"),
        "resolution_multiple": (int, "resolutions are rounded to this multiple"),
        "build_args": (dict, "extra builder arguments, e.g. {dropout_rate = 0.2}"),
    },
    "data": {
        "dataset": (str, "digits | npz:FILE | folder:PATH | a TFDS name"),
        "data_dir": (str, "TFDS data dir ('' = TFDS_DATA_DIR)"),
        "download": (bool, "let tfds download the data"),
        "train_examples": (int, "0 = all"),
        "val_examples": (int, "0 = 10% of the training data"),
        "test_examples": (int, "0 = all"),
        "augment": ((bool, str), "'auto', true or false"),
    },
    "scaling": {
        "phi_max": (int, "largest compound coefficient"),
        "grid_size": (int, "grid points tried at phi = 1"),
        "grid_step": (float, "grid spacing of alpha, beta, gamma"),
        "target": (float, "alpha*beta^2*gamma^2 target"),
        "tolerance": (float, "relative tolerance on the target"),
        "coefficients": (list, "[alpha, beta, gamma] to use instead of a grid search"),
        "baselines": (list, f"single-dimension baselines, a subset of {list(BASELINES)}"),
    },
    "training": {
        "epochs": (int, ">= 1"),
        "batch_size": (int, ">= 1"),
        "optimizer": (str, f"one of {OPTIMIZERS}"),
        "learning_rate": (float, "> 0"),
        "weight_decay": (float, ">= 0"),
        "schedule": (str, f"one of {SCHEDULES}"),
        "seed": (int, "random seed of every trial"),
        "precision": (str, f"one of {PRECISIONS}"),
        "jit": (bool, "compile trials with XLA"),
        "bn_momentum": (float, "BatchNormalization momentum of every trial (0 = the model's)"),
        "run_eagerly": (bool, "train without graph tracing (tiny studies, smoke tests)"),
        "isolate": (bool, "each trial in its own process (memory stays flat); false = in this process"),
    },
}


def _type_ok(value, types) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):
        return bool in types
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


def _type_name(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "an array",
             dict: "a table"}
    return " or ".join(names[t] for t in types)


def check(key: str, value: Any, where: str) -> Any:
    """Range/choice checks of one (already well-typed) value; ``where`` names the file key or
    flag in the error. Returns the value, normalised (floats as float)."""

    def bad(why):
        raise StudyError(f"{where}: {why}, got {value!r}")

    if key == "name" and not NAME_RE.match(value):
        bad("the study name may use letters, digits, '_', '.' and '-' only (it names the output folder)")
    if key in ("resolution", "resolution_multiple", "epochs", "batch_size", "phi_max", "grid_size") and value < 1:
        bad("must be an integer >= 1")
    if key == "resolution" and value < 8:
        bad("must be at least 8 pixels")
    if key in ("train_examples", "val_examples", "test_examples") and value < 0:
        bad("must be an integer >= 0 (0 = all)")
    if key == "augment" and value not in ("auto", True, False):
        bad("must be 'auto', true or false")
    if key in ("grid_step", "learning_rate") and not (math.isfinite(value) and value > 0):
        bad("must be a number > 0")
    if key == "grid_step" and value > 1:
        bad("must be in (0, 1]")
    if key == "target" and not (math.isfinite(value) and value > 1):
        bad("must be a number > 1 (the MACs growth per unit of phi)")
    if key == "tolerance" and not 0 <= value < 1:
        bad("must be in [0, 1)")
    if key == "bn_momentum" and not 0 <= value < 1:
        bad("must be in [0, 1) (0 = the model's own)")
    if key == "weight_decay" and not (math.isfinite(value) and value >= 0):
        bad("must be a number >= 0")
    if key == "optimizer" and value not in OPTIMIZERS:
        bad(f"must be one of {', '.join(OPTIMIZERS)}")
    if key == "schedule" and value not in SCHEDULES:
        bad(f"must be one of {', '.join(SCHEDULES)}")
    if key == "precision" and value not in PRECISIONS:
        bad(f"must be one of {', '.join(PRECISIONS)}")
    if key == "coefficients":
        if value and (len(value) != 3 or not all(_type_ok(v, float) for v in value)):
            bad("must be [alpha, beta, gamma], three numbers")
        value = [float(v) for v in value]
    if key == "baselines":
        if not all(isinstance(v, str) and v in BASELINES for v in value) or len(set(value)) != len(value):
            bad(f"must be a list of distinct names from {list(BASELINES)}")
    if key == "build_args":
        for k, v in value.items():
            if k in ("input_shape", "input_tensor", "classes", "include_top", "width_multiplier", "depth_multiplier"):
                bad(f"build_args may not set {k!r} (the study sets it)")
            if not isinstance(v, (str, int, float, bool)):
                bad(f"build_args.{k} must be a string, number or boolean")
    if key == "dataset" and not value.strip():
        bad("must name a dataset")
    if key == "base" and not value.strip():
        bad("must name a registered model")
    if isinstance(value, int) and not isinstance(value, bool) and key in (
            "grid_step", "target", "tolerance", "learning_rate", "weight_decay", "bn_momentum"):
        value = float(value)
    return value


def resolve_config_path(name_or_path: str) -> Path:
    """A path, or a study name looked up as ``studies/NAME.toml`` (working directory, then the
    repository)."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if p.suffix != ".toml" and len(p.parts) == 1:
        for d in (Path.cwd() / "studies", STUDIES_DIR):
            if (d / f"{p.name}.toml").is_file():
                return d / f"{p.name}.toml"
    raise StudyError(f"study file {name_or_path!r} not found (give a path, or a name in studies/)")


def load_config(path: str | Path) -> StudyConfig:
    """Read and check one study file."""
    path = resolve_config_path(str(path))
    label = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{label}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StudyError(f"{label}: cannot read: {e}") from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SCHEMA[""]:
            values[key] = _checked(label, key, key, value, SCHEMA[""][key][0])
            continue
        if key not in SCHEMA or not key:
            known = list(SCHEMA[""]) + [f"[{s}]" for s in SCHEMA if s]
            raise StudyError(f"{label}: unknown key {key!r} (allowed at the top: {', '.join(known)})")
        if not isinstance(value, dict):
            raise StudyError(f"{label}: {key!r} must be a table ([{key}])")
        for sub, v in value.items():
            if sub not in SCHEMA[key]:
                raise StudyError(f"{label}: unknown key '{key}.{sub}' (allowed in [{key}]: "
                                 f"{', '.join(SCHEMA[key])})")
            values[sub] = _checked(label, f"{key}.{sub}", sub, v, SCHEMA[key][sub][0])
    if "name" not in values:
        values["name"] = path.stem if NAME_RE.match(path.stem) else StudyConfig.name
    return StudyConfig(**values)


def _checked(label: str, qualified: str, key: str, value: Any, types) -> Any:
    if not _type_ok(value, types):
        raise StudyError(f"{label}: key '{qualified}' must be {_type_name(types)}, got {value!r}")
    return check(key, value, f"{label}: key '{qualified}'")


# flag (argparse dest) -> config key
FLAG_KEYS = {
    "base": "base", "dataset": "dataset", "data_dir": "data_dir", "resolution": "resolution",
    "phi_max": "phi_max", "grid_size": "grid_size", "epochs": "epochs", "batch_size": "batch_size",
    "train_examples": "train_examples", "seed": "seed", "precision": "precision", "jit": "jit",
    "coefficients": "coefficients", "learning_rate": "learning_rate",
}


def apply_overrides(config: StudyConfig, flags: dict[str, Any]) -> StudyConfig:
    """Lay command-line values (``None`` = not given) over ``config``, checking each."""
    values = config.to_dict()
    for dest, key in FLAG_KEYS.items():
        v = flags.get(dest)
        if v is None or (key == "jit" and v is False):
            continue
        values[key] = check(key, v, f"--{dest.replace('_', '-')}")
    if flags.get("in_process"):
        values["isolate"] = False
    return StudyConfig(**values)

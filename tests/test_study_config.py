"""Study files: the embedded default equals studies/quick.toml, every shipped study loads, and a
malformed file fails with one message naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from keras_convnets.study import StudyError
from keras_convnets.study import config as cfg

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def test_quick_toml_is_the_embedded_default():
    assert cfg.load_config(STUDIES / "quick.toml") == cfg.StudyConfig()


@pytest.mark.parametrize("name", ["quick", "cifar10_efficientnet", "cifar10_resnet"])
def test_shipped_studies_load(name):
    c = cfg.load_config(STUDIES / f"{name}.toml")
    assert c.name == name
    assert cfg.resolve_config_path(name) == STUDIES / f"{name}.toml" or cfg.resolve_config_path(name).name == f"{name}.toml"


def test_cifar_studies_take_data_dir_from_the_environment():
    for name in ("cifar10_efficientnet", "cifar10_resnet"):
        c = cfg.load_config(STUDIES / f"{name}.toml")
        assert c.dataset == "cifar10" and c.data_dir == "" and c.download is False


@pytest.mark.parametrize(
    "text, needle",
    [
        ("name = 'x'\n[model\nbase = 1", "not valid TOML"),
        ("[model]\nbsae = 'efficientnet_b0'", "unknown key 'model.bsae'"),
        ("colour = 'red'", "unknown key 'colour'"),
        ("[training]\nepochs = 'three'", "key 'training.epochs' must be an integer"),
        ("[training]\nepochs = -1", "key 'training.epochs': must be an integer >= 1"),
        ("[training]\njit = 1", "key 'training.jit' must be true/false"),
        ("[training]\nprecision = 'fp8'", "key 'training.precision': must be one of"),
        ("[scaling]\ncoefficients = [1.2, 1.1]", "key 'scaling.coefficients'"),
        ("[scaling]\nbaselines = ['width', 'height']", "key 'scaling.baselines'"),
        ("model = 3", "'model' must be a table"),
        ("name = '../../etc'", "key 'name'"),
        ("[model]\nbuild_args = {classes = 3}", "build_args may not set 'classes'"),
    ],
)
def test_malformed_study_files_name_file_and_key(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(StudyError) as e:
        cfg.load_config(path)
    msg = str(e.value)
    assert str(path) in msg and needle in msg, msg
    assert "\n" not in msg.strip() or "TOML" in msg


def test_flags_override_and_are_checked():
    c = cfg.apply_overrides(cfg.StudyConfig(), {"epochs": 1, "base": "resnet50", "coefficients": [1.2, 1.1, 1.15],
                                                "jit": None, "seed": None})
    assert (c.epochs, c.base, c.coefficients, c.seed) == (1, "resnet50", [1.2, 1.1, 1.15], 0)
    assert c.isolate and not cfg.apply_overrides(c, {"in_process": True}).isolate
    with pytest.raises(StudyError, match="--epochs: must be an integer >= 1, got -2"):
        cfg.apply_overrides(cfg.StudyConfig(), {"epochs": -2})
    with pytest.raises(StudyError, match="--batch-size"):
        cfg.apply_overrides(cfg.StudyConfig(), {"batch_size": 0})


def test_missing_study_file():
    with pytest.raises(StudyError, match="not found"):
        cfg.load_config("no_such_study")

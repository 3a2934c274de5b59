"""The TensorFlow-free path: on a machine with JAX and no TensorFlow, a tiny scale study runs end
to end from an .npz (written here with `data export`, where TensorFlow exists) through numpy
batches (keras.utils.PyDataset), each trial in its own process. The subprocess and its trial
processes block `import tensorflow` outright."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import jax_env
from keras_convnets import data

ROOT = Path(__file__).resolve().parents[1]

STUDY = """
name = "jax_tiny"
[model]
base = "resnet18"
resolution = 32
[data]
train_examples = 16
val_examples = 8
test_examples = 8
[scaling]
phi_max = 1
# One grid point, resolution only (1 * 1^2 * 1.4142^2 = 2): the second model has the first's
# weights' shapes, so JAX compiles no new initialisers for it (minutes saved on a busy CPU).
coefficients = [1.0, 1.0, 1.4142]
baselines = []
[training]
epochs = 1
batch_size = 16
optimizer = "sgd"
"""

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["tensorflow"] = None  # no TensorFlow on this machine: any import of it fails
    from keras_convnets.study.__main__ import main
    code = main(sys.argv[1:])
    import keras, json
    leaked = sorted(m for m, v in sys.modules.items() if m.split(".")[0] in ("tensorflow", "tensorflow_datasets") and v is not None)
    print("RESULT " + json.dumps({"code": code, "backend": keras.backend.backend(), "leaked": leaked}))
    """
)


@pytest.mark.heavy
def test_scale_study_on_jax_without_tensorflow(tmp_path):
    npz = tmp_path / "digits.npz"
    data.export_npz("digits", npz)  # here, where TensorFlow is available
    config = tmp_path / "study.toml"
    config.write_text(STUDY)
    out = tmp_path / "out"
    # The trials run in child processes, which do not inherit the script's sys.modules block: a
    # `tensorflow` package that refuses to import, first on their path, blocks it there too.
    blocker = tmp_path / "no_tensorflow" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no TensorFlow on this machine')\n")
    path = os.pathsep.join([str(blocker.parent), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = jax_env(PYTHONPATH=path)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "scale", "--config", str(config), "--dataset", f"npz:{npz}",
                           "--out", str(out), "--quiet"], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads([l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1][7:])
    assert result == {"code": 0, "backend": "jax", "leaked": []}, result
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",ok," in r for r in rows[1:]), rows
    meta = json.loads((out / "study.json").read_text())
    assert meta["environment"]["keras_backend"] == "jax" and meta["dataset"]["backend"] == "numpy"
    assert (out / "index.html").exists() and (out / "trials" / "base.keras").exists()
    assert "grid-a1.00-b1.00-g1.41" in rows[2] and ",44," in rows[2]
    base, grid = csv.DictReader(open(out / "results.csv", newline=""))
    assert base["trial_pid"] != grid["trial_pid"]  # one process a trial
    # On a CPU the grid trial, known before the base ends, was built while the base trained and
    # trained once the base was measured (isolation._Handoff).
    assert (base["prepared_ahead"], grid["prepared_ahead"]) == ("False", "True")
    assert float(base["measured_at"]) <= float(grid["fit_started_at"])

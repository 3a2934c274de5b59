import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One xdist worker per core (-n auto): each worker's TensorFlow computes on one thread, so two
    # workers do not oversubscribe two cores. (TensorFlow reads it when it starts.) One worker more
    # than cores was slower (21.2 min against 19.1, 2026-12-01): the cores were not idle enough.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(items):
    """The tests marked heavy (a minute or more each, most of them whole studies in subprocesses)
    run first. pytest-xdist hands tests out in collection order, and these sit in the last files
    alphabetically: one of them started near the end kept its worker busy for two minutes while
    the other had nothing left to do."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from a clean Keras session and fixed seeds, so layer names and random
    weights do not depend on which tests ran before."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield

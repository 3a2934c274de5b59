import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from a clean Keras session and fixed seeds, so layer names and random
    weights do not depend on which tests ran before."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield

"""keras_convnets.data: digits, npz, folder and TFDS sources; the tf.data and numpy pipelines
agree; held-out splits are disjoint; a missing dataset is explained, not a traceback."""

from __future__ import annotations

import numpy as np
import pytest

from keras_convnets import data


def _arrays(batches):
    if hasattr(batches, "__getitem__"):
        xs, ys = zip(*(batches[i] for i in range(len(batches))))
    else:
        xs, ys = zip(*((np.asarray(x), np.asarray(y)) for x, y in batches))
    return np.concatenate(xs), np.concatenate(ys)


def test_digits_splits_are_disjoint_and_sized():
    ds = data.load_dataset("digits", train_examples=300, seed=3, backend="numpy")
    assert ds.num_classes == 10 and ds.channels == 1 and ds.augment is False
    assert ds.sizes == {"train": 300, "val": 144, "test": 360}
    flat = {k: {s.tobytes() + bytes([l]) for s, l in zip(*v.arrays)} for k, v in ds.splits.items()}
    # sklearn digits has a few duplicate images; almost none may be shared between splits.
    assert len(flat["train"] & flat["test"]) <= 3 and len(flat["val"] & flat["test"]) <= 3
    assert set(ds.splits["train"].arrays[1]) == set(range(10))  # stratified
    # the test split does not depend on the study's seed
    other = data.load_dataset("digits", seed=9, backend="numpy")
    np.testing.assert_array_equal(other.splits["test"].arrays[0], ds.splits["test"].arrays[0])


def test_numpy_and_tf_pipelines_agree():
    tfds_ = data.load_dataset("digits", train_examples=100, backend="tf")
    npds = data.load_dataset("digits", train_examples=100, backend="numpy")
    xa, ya = _arrays(tfds_.batches("val", 32, 50, channels=3))
    xb, yb = _arrays(npds.batches("val", 32, 50, channels=3))
    assert xa.shape == (144, 32, 32, 3) and xa.dtype == np.float32
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_allclose(xa, xb, atol=1e-4)
    # standardised with the training data's statistics
    xt, _ = _arrays(npds.batches("train", 32, 100, channels=1))
    assert abs(float(xt.mean())) < 0.1 and abs(float(xt.std()) - 1) < 0.2


def test_resize_matches_tf_image_resize():
    import tensorflow as tf

    x = np.random.default_rng(0).uniform(0, 255, size=(2, 7, 9, 3)).astype("float32")
    for size in (4, 16, 33):
        ours = data.resize_bilinear(x, size)
        ref = tf.image.resize(x, (size, size), method="bilinear").numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-3)


def test_training_batches_shuffle_and_augment_with_a_seed():
    ds = data.load_dataset("digits", train_examples=64, backend="numpy", augment=True)
    a = ds.batches("train", 16, 64, training=True, seed=1)[0]
    b = ds.batches("train", 16, 64, training=True, seed=1)[0]
    c = ds.batches("train", 16, 64, training=True, seed=2)[0]
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert a[0].shape == (64, 16, 16, 3)


def test_npz_export_and_load(tmp_path):
    out = tmp_path / "digits.npz"
    shapes = data.export_npz("digits", out)
    assert shapes["x_train"] == (1437, 8, 8, 1) and shapes["x_test"] == (360, 8, 8, 1)
    with pytest.raises(data.DataError, match="exists; pass --force"):
        data.export_npz("digits", out)
    ds = data.load_dataset(f"npz:{out}", backend="numpy", val_examples=100, test_examples=50)
    assert ds.name == "digits" and ds.num_classes == 10 and ds.class_names[:2] == ["0", "1"]
    assert ds.sizes == {"train": 1337, "val": 100, "test": 50}
    with pytest.raises(data.DataError, match="not found"):
        data.load_dataset(f"npz:{tmp_path / 'nope.npz'}")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((2, 4, 4, 3), "uint8"))
    with pytest.raises(data.DataError, match="lacks"):
        data.load_dataset(f"npz:{bad}")


def test_folder_dataset(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (12 + i, 10, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = data.load_dataset(f"folder:{tmp_path}", backend="tf", val_examples=4)
    assert ds.num_classes == 2 and ds.class_names == ["cat", "dog"] and ds.augment is True
    assert ds.sizes == {"test": 4, "train": 12, "val": 4}
    x, y = _arrays(ds.batches("train", 24, 12, training=True))
    assert x.shape == (12, 24, 24, 3) and set(y) <= {0, 1}
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_dataset(f"folder:{tmp_path / 'missing'}")


def test_tfds_success_path_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=24):
        ds = data.load_dataset("cifar10", data_dir=str(tmp_path), val_examples=4, train_examples=12,
                               test_examples=6)
        assert ds.num_classes == 10 and ds.channels == 3 and ds.augment is True
        assert ds.sizes == {"val": 4, "train": 12, "test": 6}
        x, y = _arrays(ds.batches("train", 40, 5, training=True))
        assert x.shape == (10, 40, 40, 3) and y.dtype == np.int32  # full batches only
        x, y = _arrays(ds.batches("test", 40, 5))
        assert x.shape == (6, 40, 40, 3)


def test_missing_tfds_dataset_is_explained(tmp_path):
    with pytest.raises(data.DataError) as e:
        data.load_dataset("cifar10", data_dir=str(tmp_path))
    msg = str(e.value)
    assert "not prepared" in msg and "tfds build cifar10" in msg and "TFDS_DATA_DIR" in msg and "npz" in msg
    with pytest.raises(data.DataError, match="unknown dataset 'cifar1000'.*Did you mean"):
        data.load_dataset("cifar1000", data_dir=str(tmp_path))


def test_tfds_needs_tensorflow_backend():
    with pytest.raises(data.DataError, match="data export cifar10"):
        data.load_dataset("cifar10", backend="numpy")


def test_tfds_export_to_npz_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    out = tmp_path / "c.npz"
    with tfds.testing.mock_data(num_examples=6):
        shapes = data.export_npz("cifar10", out, data_dir=str(tmp_path))
    assert shapes == {"x_train": (6, 32, 32, 3), "y_train": (6,), "x_test": (6, 32, 32, 3), "y_test": (6,)}
    ds = data.load_dataset(f"npz:{out}", backend="numpy", val_examples=2)
    assert ds.num_classes == 10 and len(ds.class_names) == 10 and ds.sizes["train"] == 4


def test_data_export_cli(tmp_path, capsys):
    from keras_convnets.study.__main__ import main

    out = tmp_path / "d.npz"
    assert main(["data", "export", "digits", "--out", str(out)]) == 0
    assert "x_train (1437, 8, 8, 1)" in capsys.readouterr().out
    assert main(["data", "export", "digits", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err

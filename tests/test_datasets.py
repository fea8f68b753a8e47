"""Benchmark data loaders."""

from pathlib import Path

import numpy as np
import pytest

from skdeepcluster.datasets import load_dataset

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_digits_scaled_to_unit_interval():
    X, y, shape = load_dataset("digits")
    assert X.dtype == np.float32 and X.shape == (1797, 64) and shape == (8, 8)
    assert X.min() == 0.0 and X.max() == 1.0
    X_raw, _, _ = load_dataset("digits", scale="raw")
    np.testing.assert_allclose(X_raw / 16, X)
    assert sorted(np.unique(y)) == list(range(10))


def test_missing_dataset_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No data set 'nope'.*available: digits"):
        load_dataset("nope", data_dir=tmp_path)


def test_data_home_order(tmp_path, monkeypatch):
    import skdeepcluster.datasets as datasets

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SKDEEPCLUSTER_DATA", raising=False)
    checkout = Path(datasets.__file__).resolve().parents[2] / "shared" / "data"
    # no data home: the checkout's shared folder when there is one, else ~/skdeepcluster_data
    expected = checkout if checkout.is_dir() else home / "skdeepcluster_data"
    assert datasets.default_data_dir() == expected
    (home / "skdeepcluster_data").mkdir()
    assert datasets.default_data_dir() == home / "skdeepcluster_data"
    monkeypatch.setenv("SKDEEPCLUSTER_DATA", str(tmp_path / "elsewhere"))
    assert datasets.default_data_dir() == tmp_path / "elsewhere"
    with pytest.raises(FileNotFoundError, match=r"~/skdeepcluster_data, set \$SKDEEPCLUSTER_DATA"):
        load_dataset("usps")


def test_bad_scale():
    with pytest.raises(ValueError, match="scale must be 'unit' or 'raw'"):
        load_dataset("digits", scale="z")


@pytest.mark.skipif(not (DATA_DIR / "usps.npz").exists(), reason="needs ../shared/data")
def test_shared_npz_files():
    X, _, shape = load_dataset("usps", DATA_DIR)
    assert X.shape == (9298, 256) and shape == (16, 16) and X.max() <= 1.0
    X, _, shape = load_dataset("mnist_test", DATA_DIR)
    assert X.shape == (10000, 784) and shape == (28, 28) and X.max() == 1.0
    X, _, shape = load_dataset("pendigits", DATA_DIR)
    assert shape is None and X.max() == 100.0  # tabular data are returned as stored

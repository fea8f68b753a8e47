"""Loaders for the benchmark data sets: scikit-learn's digits and the shared ``.npz`` files.

The ``.npz`` format (see ``shared/data/MANIFEST.md``): ``X`` float32 of shape
(n_samples, n_features) in the source's natural scale, ``y`` int64 labels ``0..k-1`` and,
for images, ``image_shape`` = (height, width).
"""

import os
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

__all__ = ["DATA_DIR_ENV", "DATA_HOME_NAME", "default_data_dir", "load_dataset"]

#: Environment variable that points to the folder of ``.npz`` files.
DATA_DIR_ENV = "SKDEEPCLUSTER_DATA"

#: Name of the data home in the user's home folder (as scikit-learn's ``scikit_learn_data``).
DATA_HOME_NAME = "skdeepcluster_data"

#: Divisor that maps each image data set to [0, 1] (the DEC/IDEC/DCEC preprocessing, x/255).
_PIXEL_MAX = {"digits": 16.0, "mnist_test": 255.0, "usps": 1.0, "usps_11000": 255.0}


def default_data_dir():
    """The folder of the benchmark ``.npz`` files, like scikit-learn's data home.

    In order: ``$SKDEEPCLUSTER_DATA`` when set; ``~/skdeepcluster_data`` when it exists;
    ``../shared/data`` beside a source checkout of the package when that exists (the
    project's own machines); otherwise ``~/skdeepcluster_data`` (which
    :func:`load_dataset`'s error then names). ``~`` is expanded with
    :func:`os.path.expanduser`.

    Examples
    --------
    >>> import os
    >>> from skdeepcluster.datasets import default_data_dir
    >>> os.environ["SKDEEPCLUSTER_DATA"] = "/data/benchmarks"
    >>> str(default_data_dir())
    '/data/benchmarks'
    >>> del os.environ["SKDEEPCLUSTER_DATA"]
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    home = Path(os.path.expanduser("~")) / DATA_HOME_NAME
    if home.is_dir():
        return home
    checkout = Path(__file__).resolve().parents[2] / "shared" / "data"
    if checkout.is_dir():
        return checkout
    return home


def load_dataset(name, data_dir=None, scale="unit"):
    """Load a benchmark data set.

    Parameters
    ----------
    name : str
        ``"digits"`` (shipped with scikit-learn) or the stem of a ``.npz`` file in
        ``data_dir`` (``"usps"``, ``"mnist_test"``, ``"pendigits"``, ...).
    data_dir : path-like, optional
        Folder of the ``.npz`` files (default: :func:`default_data_dir`).
    scale : {"unit", "raw"}, default="unit"
        ``"unit"`` divides image data sets by their maximum pixel value so that pixels lie in
        [0, 1] (what the DEC/IDEC/DCEC code does); tabular data are returned as stored.
        ``"raw"`` returns the values as stored.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,), int64
    image_shape : tuple of int or None
        (height, width) for image data sets.

    Examples
    --------
    >>> from skdeepcluster.datasets import load_dataset
    >>> X, y, shape = load_dataset("digits")
    >>> X.shape, shape, float(X.max())
    ((1797, 64), (8, 8), 1.0)
    """
    if scale not in ("unit", "raw"):
        raise ValueError(f"scale must be 'unit' or 'raw'; got {scale!r}.")
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X, y, image_shape = X.astype(np.float32), y.astype(np.int64), (8, 8)
    else:
        folder = Path(data_dir) if data_dir is not None else default_data_dir()
        path = folder / f"{name}.npz"
        if not path.exists():
            available = sorted(p.stem for p in folder.glob("*.npz")) if folder.is_dir() else []
            raise FileNotFoundError(
                f"No data set {name!r}: {path} does not exist (available: "
                f"{', '.join(['digits', *available])}). Put the .npz files in "
                f"~/{DATA_HOME_NAME}, set ${DATA_DIR_ENV} to their folder, or pass "
                "data_dir."
            )
        with np.load(path) as data:
            X = np.asarray(data["X"], dtype=np.float32)
            y = np.asarray(data["y"], dtype=np.int64)
            image_shape = tuple(int(v) for v in data["image_shape"]) if (
                "image_shape" in data.files) else None
    if scale == "unit" and name in _PIXEL_MAX and _PIXEL_MAX[name] != 1.0:
        X = X / np.float32(_PIXEL_MAX[name])
    return X, y, image_shape

"""Data augmentation of the deep estimators' training.

A deep estimator's ``augmentation`` parameter takes a callable
``augmentation(X_batch, generator) -> X_batch``: each training mini-batch (a float tensor
of shape (batch, n_features) on the training device) is replaced by its output. In the
pretraining the autoencoder reconstructs the augmented samples themselves; in the
clustering phase the loss is computed on the augmented batch, while per-sample updates use
the samples as they are. This is DEC-DA (Guo et al., "Deep Embedded Clustering with Data
Augmentation", ACML 2018), which shifts and rotates the images of each batch at random:
:class:`RandomAffine`. The default ``augmentation="auto"`` uses it when
:func:`detect_image_shape` finds square one-channel images of at least 16 x 16 pixels.
"""

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

__all__ = ["RandomAffine", "affine_images", "detect_image_shape"]

#: Smallest height and width that ``augmentation="auto"`` augments. Shifts and rotations
#: gained on 16 x 16 (USPS) and 28 x 28 (MNIST) images and lost on 8 x 8 (scikit-learn's
#: digits), where a shift of one pixel is 12 % of the image (see the User Guide).
AUTO_MIN_SIDE = 16
#: Rows :func:`detect_image_shape` reads (evenly spaced through the data).
DETECT_ROWS = 2000
#: Largest temporary of :func:`detect_image_shape`, in values (float64): 32 MB.
DETECT_BLOCK_VALUES = 1 << 22
#: Median correlation of neighbouring pixels that marks an image (MNIST 0.74, USPS
#: 0.69-0.75; tabular features in their column order: 0.01-0.23 on the UCI sets).
DETECT_MIN_CORRELATION = 0.5
#: How far that median must exceed the one of unrelated columns.
DETECT_MIN_CONTRAST = 0.3

def _image_shape(image_shape):
    """``(C, H, W)`` from ``(H, W)`` or ``(C, H, W)`` of positive integers."""
    shape = tuple(image_shape)
    if len(shape) not in (2, 3) or not all(
            isinstance(v, Integral) and not isinstance(v, bool) and v > 0 for v in shape):
        raise ValueError(
            f"image_shape must be (H, W) or (C, H, W) of positive integers; got {image_shape!r}."
        )
    return (1, *shape) if len(shape) == 2 else shape


def _as_images(X, image_shape):
    C, H, W = _image_shape(image_shape)
    if X.dim() != 2 or X.shape[1] != C * H * W:
        raise ValueError(
            f"image_shape={tuple(image_shape)} needs {C * H * W} features per sample "
            f"(C*H*W); the batch has shape {tuple(X.shape)}."
        )
    return X.reshape(X.shape[0], C, H, W), (C, H, W)


def affine_images(X, image_shape, shifts, angles):
    """Shift and rotate the images stored in the rows of ``X`` (bilinear, zeros outside).

    Parameters
    ----------
    X : Tensor of shape (n, C*H*W)
        One flattened image per row (channels first).
    image_shape : tuple of int
        ``(H, W)`` or ``(C, H, W)``.
    shifts : Tensor of shape (n, 2)
        Translation of each image in pixels, ``(down, right)``: the content moves by
        these amounts.
    angles : Tensor of shape (n,)
        Counter-clockwise rotation of each image about its centre, in degrees (as
        displayed with row 0 at the top).

    Returns
    -------
    Tensor of the shape and dtype of ``X``

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.augmentation import affine_images
    >>> X = torch.zeros(1, 9)
    >>> X[0, 4] = 1.0                      # the centre pixel of a 3 x 3 image
    >>> out = affine_images(X, (3, 3), torch.tensor([[1.0, 0.0]]), torch.zeros(1))
    >>> out.view(3, 3)                     # moved one row down
    tensor([[0., 0., 0.],
            [0., 0., 0.],
            [0., 1., 0.]])
    """
    images, (C, H, W) = _as_images(X, image_shape)
    n = X.shape[0]
    dtype, device = X.dtype, X.device
    rad = torch.deg2rad(angles.to(device=device, dtype=dtype))
    cos, sin = torch.cos(rad), torch.sin(rad)
    # affine_grid maps each output position (x right, y down, both normalised to [-1, 1])
    # to the input position it samples. Content rotated counter-clockwise on screen by
    # angle a samples the input at R(a) p in pixel units (y down); in normalised units the
    # off-diagonal terms are scaled by the aspect ratio. Content moved by +d samples at p - d.
    theta = torch.empty((n, 2, 3), dtype=dtype, device=device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * (H / W)
    theta[:, 1, 0] = sin * (W / H)
    theta[:, 1, 1] = cos
    shifts = shifts.to(device=device, dtype=dtype)
    theta[:, 0, 2] = -2.0 * shifts[:, 1] / W
    theta[:, 1, 2] = -2.0 * shifts[:, 0] / H
    grid = F.affine_grid(theta, [n, C, H, W], align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.reshape(X.shape)


class RandomAffine(BaseEstimator):
    """Random shifts and rotations of image rows, one draw per sample and per batch.

    The augmentation of DEC-DA (Guo et al., ACML 2018): each image is shifted by up to
    ``max_shift`` of its height and width (uniformly, independently in each direction) and
    rotated by up to ``max_rotation`` degrees about its centre (bilinear interpolation,
    zeros outside the image). Pass it as a deep estimator's ``augmentation``;
    read more in the :ref:`User Guide <deep_pretraining>`.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W)`` or ``(C, H, W)`` of one sample (channels first); ``C*H*W`` must equal
        the number of features.
    max_shift : float in [0, 1), default=0.1
        Largest shift, as a fraction of the height (vertical) and width (horizontal).
    max_rotation : float in [0, 180], default=10.0
        Largest rotation, in degrees.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.augmentation import RandomAffine
    >>> augment = RandomAffine((28, 28), max_shift=0.1, max_rotation=10)
    >>> batch = torch.rand(4, 784)
    >>> augment(batch, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 784])

    In an estimator (here on 8 x 8 digits)::

        from skdeepcluster import AEKMeans
        model = AEKMeans(10, augmentation=RandomAffine((8, 8), max_shift=0.125))
    """

    _parameter_constraints: dict = {
        "image_shape": ["array-like"],
        "max_shift": [Interval(Real, 0, 1, closed="left")],
        "max_rotation": [Interval(Real, 0, 180, closed="both")],
    }

    def __init__(self, image_shape, max_shift=0.1, max_rotation=10.0):
        self.image_shape = image_shape
        self.max_shift = max_shift
        self.max_rotation = max_rotation

    def __call__(self, X, generator=None):
        """Augmented copy of the batch ``X`` (Tensor of shape (n, C*H*W)); the random draws
        come from ``generator`` (a ``torch.Generator`` on ``X``'s device)."""
        self._validate_params()
        _, H, W = _image_shape(self.image_shape)
        n = X.shape[0]
        draws = torch.rand((n, 3), generator=generator, device=X.device, dtype=X.dtype)
        draws = draws.mul_(2.0).sub_(1.0)  # uniform on [-1, 1)
        # Scaled by Python numbers: no tensor is built on the host (on a GPU that would be a
        # synchronous copy per batch).
        draws[:, 0].mul_(self.max_shift * H)
        draws[:, 1].mul_(self.max_shift * W)
        draws[:, 2].mul_(float(self.max_rotation))
        return affine_images(X, self.image_shape, draws[:, :2], draws[:, 2])

def _neighbour_pairs(side):
    """Column pairs of a ``side`` x ``side`` grid: horizontal and vertical neighbours,
    pixels two apart in each direction, and a fixed spread-out pairing (column ``j`` with
    ``(7 j + d // 2 + 3) mod d``) standing for unrelated columns."""
    d = side * side
    grid = torch.arange(d).reshape(side, side)
    partner = (torch.arange(d) * 7 + d // 2 + 3) % d
    distinct = partner != torch.arange(d)
    return {
        "h1": (grid[:, :-1].reshape(-1), grid[:, 1:].reshape(-1)),
        "v1": (grid[:-1].reshape(-1), grid[1:].reshape(-1)),
        "h2": (grid[:, :-2].reshape(-1), grid[:, 2:].reshape(-1)),
        "v2": (grid[:-2].reshape(-1), grid[2:].reshape(-1)),
        "random": (torch.arange(d)[distinct], partner[distinct]),
    }


@torch.no_grad()
def grid_shape_of_rows(read_rows, n_samples, n_features, min_side=AUTO_MIN_SIDE):
    """:func:`detect_image_shape` on rows read a block at a time: ``read_rows(idx)``
    returns the dense rows ``idx`` (a 1-D integer tensor) as a tensor. Only sums over the
    rows are kept (per column and per column pair), and a block's temporaries hold at most
    about ``DETECT_BLOCK_VALUES`` values (256 rows up to 3 300 features, fewer for wider
    images), so a large or sparse training set is never densified whole."""
    side = math.isqrt(n_features)
    if side * side != n_features or side < min_side or n_samples < 3:
        return None
    pairs = _neighbour_pairs(side)
    first = torch.cat([a for a, _ in pairs.values()])
    second = torch.cat([b for _, b in pairs.values()])
    rows = torch.linspace(0, n_samples - 1, min(n_samples, DETECT_ROWS)).round().long()
    chunk_rows = max(1, min(256, DETECT_BLOCK_VALUES // first.numel()))
    total = squares = products = None
    for start in range(0, rows.numel(), chunk_rows):
        # The sums stay on the rows' device (a GPU's data are not copied to the host).
        block = torch.as_tensor(read_rows(rows[start:start + chunk_rows])).double()
        if total is None:
            first, second = first.to(block.device), second.to(block.device)
            total = torch.zeros(n_features, dtype=torch.float64, device=block.device)
            squares, products = torch.zeros_like(total), total.new_zeros(first.numel())
        total += block.sum(dim=0)
        squares += block.square().sum(dim=0)
        products += (block[:, first] * block[:, second]).sum(dim=0)
    total, squares, products = total.cpu(), squares.cpu(), products.cpu()  # one copy
    first, second = first.cpu(), second.cpu()
    n = rows.numel()
    mean = total / n
    std = (squares / n - mean.square()).clamp_min(0.0).sqrt()
    ok = std > 1e-6 * std.max()  # constant columns (none if all are)
    corr = (products / n - mean[first] * mean[second]) / (std[first] * std[second])
    median = {}
    offset = 0
    for name, (a, b) in pairs.items():
        keep = ok[a] & ok[b]
        values = corr[offset:offset + a.numel()][keep]
        median[name] = float(values.median()) if values.numel() else float("nan")
        offset += a.numel()
    h1, v1, h2, v2, random = (median[k] for k in ("h1", "v1", "h2", "v2", "random"))
    looks_like_pixels = (
        min(h1, v1) >= DETECT_MIN_CORRELATION
        and min(h1, v1) >= random + DETECT_MIN_CONTRAST
        and v1 > h2 and h1 > v2
    )  # comparisons with NaN are False: too few varying columns is not an image
    return (side, side) if looks_like_pixels else None


def detect_image_shape(X, min_side=AUTO_MIN_SIDE):
    """``(H, W)`` when the rows of ``X`` look like square one-channel images, else None.

    The rule behind ``augmentation="auto"``. The number of features must be a square
    ``H * H`` with ``H >= min_side``, and the columns, read as an ``H x H`` grid, must
    vary together like pixels do: the median correlation of horizontal neighbours and
    that of vertical neighbours are both at least 0.5 (``DETECT_MIN_CORRELATION``) and
    at least 0.3 (``DETECT_MIN_CONTRAST``) above that of columns paired at random (data
    with one common factor is not an image), and each direction's neighbours are closer
    than pixels two apart in the other direction (a one-dimensional signal of ``H * H``
    values cut into rows is not an image: there a row's next value is always closer
    than the value ``H`` places later).
    Columns that are constant (blank borders) are left out. At most ``DETECT_ROWS`` rows,
    evenly spaced, are read, at most 256 at a time.

    Parameters
    ----------
    X : {array-like, sparse matrix, Tensor} of shape (n_samples, n_features)
        The training data.
    min_side : int, default=16
        Smallest height (= width) accepted.

    Returns
    -------
    tuple of int or None

    Examples
    --------
    >>> import numpy as np
    >>> from skdeepcluster.augmentation import detect_image_shape
    >>> rng = np.random.default_rng(0)
    >>> blobs = np.zeros((200, 16, 16))
    >>> for image, (i, j) in zip(blobs, rng.integers(2, 14, (200, 2))):
    ...     image[i - 2:i + 3, j - 2:j + 3] = 1.0      # a 5 x 5 square somewhere
    >>> detect_image_shape(blobs.reshape(200, 256))
    (16, 16)
    >>> detect_image_shape(rng.normal(size=(200, 256))) is None   # independent features
    True
    """
    if sp.issparse(X):
        def read_rows(idx):
            return torch.from_numpy(X[idx.numpy()].toarray())
    else:
        if not torch.is_tensor(X):
            X = np.asarray(X)
        def read_rows(idx):
            return X[idx.numpy()] if isinstance(X, np.ndarray) else X[idx.to(X.device)]
    if len(X.shape) != 2:
        raise ValueError(f"X must be 2-D; got shape {tuple(X.shape)}.")
    return grid_shape_of_rows(read_rows, X.shape[0], X.shape[1], min_side)

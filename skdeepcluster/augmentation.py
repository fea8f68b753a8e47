"""Data augmentation for the pretraining of the autoencoders.

A deep estimator's ``augmentation`` parameter takes a callable
``augmentation(X_batch, generator) -> X_batch``: each pretraining mini-batch (a float tensor
of shape (batch, n_features) on the training device) is replaced by its output before the
reconstruction loss, which compares the network's output with the augmented batch itself
(input and target are the same augmented samples). This is the pretraining of DEC-DA
(Guo et al., "Deep Embedded Clustering with Data Augmentation", ACML 2018), which shifts and
rotates the images of each batch at random. :class:`RandomAffine` is that transformation.
"""

from numbers import Integral, Real

import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

__all__ = ["RandomAffine", "affine_images"]


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


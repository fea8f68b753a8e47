"""Networks of the deep estimators, and how an ``autoencoder`` parameter becomes one.

Every autoencoder of the package (and any user module passed as ``autoencoder=``) follows
one small protocol: it is a :class:`torch.nn.Module` with

* ``encode(X) -> Z``: a float tensor of shape ``(n_samples, n_features)`` to the embedding of
  shape ``(n_samples, n_components)``;
* ``decode(Z) -> X_hat``: back to shape ``(n_samples, n_features)``.

Data always enter as 2-D arrays (scikit-learn's convention); a network that works on images
reshapes inside ``encode`` and flattens at the end of ``decode``.
"""

import copy
import inspect

import torch
from torch import nn

__all__ = ["MLPAutoencoder", "build_autoencoder"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}

#: Names accepted by the ``activation`` parameter.
ACTIVATIONS = tuple(_ACTIVATIONS)


def _mlp(sizes, activation):
    """Linear layers through ``sizes`` with ``activation`` after every layer but the last."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder ``d-500-500-2000-p`` (DEC, IDEC, DCN, CKM; METHODS.md §3.1).

    The encoder maps ``n_features`` through ``hidden_dims`` to a **linear** embedding of size
    ``n_components``; the decoder mirrors it and ends with a **linear** output layer. Hidden
    layers use ``activation``. Weights use PyTorch's default initialisation
    (``U(±1/sqrt(fan_in))``, the rule DEC-keras uses on MNIST).

    Parameters
    ----------
    n_features : int
        Size of the input.
    n_components : int, default=10
        Size of the embedding.
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Widths of the encoder's hidden layers (the decoder uses them in reverse order).
    activation : {"relu", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "tanh"}, \
default="relu"

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.networks import MLPAutoencoder
    >>> ae = MLPAutoencoder(64, n_components=5, hidden_dims=(32,))
    >>> x = torch.zeros(3, 64)
    >>> tuple(ae.encode(x).shape), tuple(ae.decode(ae.encode(x)).shape)
    ((3, 5), (3, 64))
    """

    def __init__(self, n_features, n_components=10, hidden_dims=(500, 500, 2000),
                 activation="relu"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is not supported; use one of {ACTIVATIONS}."
            )
        sizes = [int(n_features), *map(int, hidden_dims), int(n_components)]
        self.encoder = _mlp(sizes, activation)
        self.decoder = _mlp(sizes[::-1], activation)

    def encode(self, X):
        """Embedding of ``X``, shape (n_samples, n_components)."""
        return self.encoder(X)

    def decode(self, Z):
        """Reconstruction from the embedding, shape (n_samples, n_features)."""
        return self.decoder(Z)

    def forward(self, X):
        """Reconstruction of ``X`` (``decode(encode(X))``)."""
        return self.decode(self.encode(X))


def _call_factory(factory, n_features, n_components):
    """Call a class or factory with the sizes it accepts (by keyword)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {}
    if takes_kwargs or "n_features" in params:
        kwargs["n_features"] = n_features
    if takes_kwargs or "n_components" in params:
        kwargs["n_components"] = n_components
    return factory(**kwargs)


def build_autoencoder(autoencoder, n_features, n_components, hidden_dims, activation):
    """Turn an estimator's ``autoencoder`` parameter into a fresh module.

    Parameters
    ----------
    autoencoder : None, nn.Module instance, or callable returning one
        None builds :class:`MLPAutoencoder` from the flat parameters. A module *instance* is
        deep-copied (the caller's object is never trained in place). A class or factory is
        called with the keyword arguments ``n_features`` and ``n_components`` that its
        signature accepts.
    n_features, n_components : int
    hidden_dims : sequence of int
    activation : str

    Returns
    -------
    nn.Module
    """
    if autoencoder is None:
        return MLPAutoencoder(n_features, n_components, hidden_dims, activation)
    if isinstance(autoencoder, nn.Module):
        module = copy.deepcopy(autoencoder)
    elif callable(autoencoder):
        module = _call_factory(autoencoder, n_features, n_components)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"autoencoder={autoencoder!r} returned {type(module).__name__}, not a "
                "torch.nn.Module."
            )
    else:
        raise TypeError(
            "autoencoder must be None, a torch.nn.Module instance, or a class or factory "
            f"returning one; got {type(autoencoder).__name__}."
        )
    for method in ("encode", "decode"):
        if not callable(getattr(module, method, None)):
            raise TypeError(
                f"autoencoder {type(module).__name__} has no {method}() method; the deep "
                "estimators need encode(X) -> Z and decode(Z) -> X_hat "
                "(see skdeepcluster.networks)."
            )
    return module


@torch.no_grad()
def check_autoencoder(module, X_probe):
    """Run ``module`` on a few rows and check the shapes of its embedding and reconstruction.

    Returns
    -------
    n_components : int
        Size of the embedding.
    """
    name = type(module).__name__
    n, d = X_probe.shape
    was_training = module.training
    module.eval()
    try:
        try:
            Z = module.encode(X_probe)
            X_hat = module.decode(Z) if torch.is_tensor(Z) else None
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ValueError(
                f"autoencoder {name} failed on an input of shape {(n, d)} (n_features={d}); "
                f"was it built for another number of features? The error was: {exc}"
            ) from exc
        if not torch.is_tensor(Z) or Z.ndim != 2 or Z.shape[0] != n:
            shape = tuple(Z.shape) if torch.is_tensor(Z) else type(Z).__name__
            raise ValueError(
                f"autoencoder {name}.encode() returned {shape} for an input of shape "
                f"{(n, d)}; it must return a tensor of shape (n_samples, n_components)."
            )
        if not torch.is_tensor(X_hat) or tuple(X_hat.shape) != (n, d):
            shape = tuple(X_hat.shape) if torch.is_tensor(X_hat) else type(X_hat).__name__
            raise ValueError(
                f"autoencoder {name} reconstructs an input of shape {(n, d)} as {shape}; "
                "decode(encode(X)) must have the shape of X (n_features does not match the "
                "network)."
            )
    finally:
        module.train(was_training)
    return int(Z.shape[1])

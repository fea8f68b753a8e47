"""Networks of the deep estimators, and how an ``autoencoder`` parameter becomes one.

Every autoencoder of the package (and any user module passed as ``autoencoder=``) follows
one small protocol: it is a :class:`torch.nn.Module` with

* ``encode(X) -> Z``: a float tensor of shape ``(n_samples, n_features)`` to the embedding of
  shape ``(n_samples, n_components)``;
* ``decode(Z) -> X_hat``: back to shape ``(n_samples, n_features)``.

A network that is only an analysis transform (DCTLKMeans's :class:`ConvTransform`) has
``encode`` and no ``decode``; the estimators that train without a reconstruction accept it.

Data always enter as 2-D arrays (scikit-learn's convention); a network that works on images
reshapes inside ``encode`` and flattens at the end of ``decode``.

Greedy layer-wise pretraining (``pretrain="greedy"``) also needs ``layer_pairs()``: the list
of ``(encoder_layer, decoder_layer)`` modules, outermost first, such that ``encode`` applies
the encoder layers in order and ``decode`` the decoder layers in reverse order. Both networks
below provide it.
"""

import copy
import inspect
import math

import torch
from torch import nn

from ._onednn import linear as _linear

__all__ = ["ConvAutoencoder", "ConvTransform", "Linear", "MLPAutoencoder", "build_autoencoder",
           "check_input_shape", "code_prior_prox"]

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


class Linear(nn.Linear):
    """``torch.nn.Linear`` whose float32 CPU products may run on oneDNN.

    The same layer (parameters, initialisation, ``state_dict``, results up to the rounding
    of float32 sums), computed by PyTorch's bundled oneDNN library instead of its default
    matrix product on x86 CPUs whose vendor is not Intel. There, MKL's float32 product runs
    at about half the speed oneDNN reaches (on a 2-core AMD EPYC, December 2026: an
    autoencoder pretraining epoch on MNIST's test set took 1.39 s with MKL and 0.85 s
    with oneDNN; see the user guide's :ref:`deep_speed`). The environment variable
    ``SKDEEPCLUSTER_CPU_MATMUL`` overrides the choice: ``"auto"`` (default), ``"onednn"``
    or ``"torch"``. GPUs, other dtypes and CPU autocast (``precision="bfloat16"``) always
    use ``torch.nn.functional.linear``. Every layer of the package's networks is one;
    a network of your own may use it in place of ``torch.nn.Linear``.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.networks import Linear
    >>> layer = Linear(4, 2)
    >>> x = torch.ones(3, 4)
    >>> bool(torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias),
    ...                     atol=1e-6))
    True
    """

    def forward(self, input):
        return _linear(input, self.weight, self.bias)


def _mlp(sizes, activation):
    """Linear layers through ``sizes`` with ``activation`` after every layer but the last."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder ``d-500-500-2000-p`` (DEC, IDEC, DCN, CKM).

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

    def layer_pairs(self):
        """``(encoder_layer, decoder_layer)`` pairs, outermost first (greedy pretraining).

        Layer pair ``i`` maps the output of encoder layer ``i - 1`` to its own code and back;
        ``encode`` is the encoder layers in order, ``decode`` the decoder layers in reverse.
        """
        n_layers = (len(self.encoder) + 1) // 2
        pairs = []
        for i in range(n_layers):
            j = n_layers - 1 - i  # the mirror layer's position in the decoder
            pairs.append((self.encoder[2 * i : 2 * i + 2], self.decoder[2 * j : 2 * j + 2]))
        return pairs


class _Reshape(nn.Module):
    """Reshape every sample to ``shape`` (flattening when ``shape`` is ``(-1,)``)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, X):
        return X.reshape(X.shape[0], *self.shape)


def check_input_shape(input_shape, n_features):
    """Validate an image shape against the number of features; returns ``(C, H, W)``.

    Parameters
    ----------
    input_shape : None or tuple of int
        ``(H, W)`` (one channel) or ``(C, H, W)`` (channels first, PyTorch's layout; each row
        of X is the image flattened in C order). None means a square one-channel image,
        ``H = W = sqrt(n_features)``.
    n_features : int or None
        None skips the comparison (``input_shape`` is then required).

    Returns
    -------
    tuple of int
        ``(C, H, W)``.
    """
    if input_shape is None:
        n_features = int(n_features)
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"n_features={n_features} is not a square number of pixels; pass "
                "input_shape=(H, W) or (C, H, W) with C*H*W == n_features."
            )
        return (1, side, side)
    try:
        shape = tuple(int(v) for v in input_shape)
        ok = len(shape) in (2, 3) and all(v >= 1 for v in shape) and all(
            float(v) == int(v) for v in input_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"input_shape must be (H, W) or (C, H, W) with positive integers; got "
            f"{input_shape!r}."
        )
    if len(shape) == 2:
        shape = (1, *shape)
    if n_features is not None and math.prod(shape) != int(n_features):
        raise ValueError(
            f"input_shape={tuple(input_shape)!r} has {math.prod(shape)} values per sample but "
            f"X has n_features={n_features}; each row must be one image flattened as "
            "(C, H, W) (or (H, W))."
        )
    return shape


def _conv_out(size, kernel, padding):
    """Output size of a stride-2 convolution."""
    return (size + 2 * padding - kernel) // 2 + 1


_CAE_KERNELS = (5, 5, 3)


def _cae_geometry(input_shape, n_features, filters):
    """Checked shape ``(C, H, W)``, filters, kernels, paddings and feature-map sizes of the CAE.

    ``input_shape=None`` reads a square number of features as a square one-channel image
    and any other number as a one-row image (a signal of ``n_features`` values). An axis of
    size 1 gets kernels of size 1 (the convolutions are then 1-D along the other axis).
    The first two convolutions are "same"; the third is "same" when the side is a multiple
    of 8 or too small for a "valid" 3-wide window, and "valid" otherwise (the reference
    code's rule for 28 x 28 and 16 x 16 images). Raises ValueError for a shape that does
    not match ``n_features`` or bad filters. Builds nothing (draws no random numbers), so
    estimators can call it to validate before training.
    """
    if input_shape is None and n_features is not None and (
            math.isqrt(int(n_features)) ** 2 != int(n_features)):
        input_shape = (1, int(n_features))
    channels, height, width = check_input_shape(input_shape, n_features)
    try:
        filters = tuple(int(f) for f in filters)
        ok = len(filters) == 3 and min(filters) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"filters must be three positive integers; got {filters!r}.")
    kernels = [tuple(1 if side == 1 else k for side in (height, width)) for k in _CAE_KERNELS]
    sizes, pads = [(height, width)], []
    for i, kernel in enumerate(kernels):
        # "same" padding, except the third convolution: "valid" on an axis whose image side
        # is not a multiple of 8, unless a valid window would not fit the feature map.
        pad = tuple(
            0 if i == 2 and original % 8 and _conv_out(side, k, 0) >= 1 else (k - 1) // 2
            for original, side, k in zip((height, width), sizes[-1], kernel))
        pads.append(pad)
        sizes.append(tuple(_conv_out(n, k, p) for n, k, p in zip(sizes[-1], kernel, pad)))
    return (channels, height, width), filters, kernels, pads, sizes


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder of DCEC (Guo et al., ICONIP 2017, Fig. 1).

    Encoder: three stride-2 convolutions (``filters`` = 32, 64, 128 maps; kernels 5, 5, 3;
    ReLU), flattened, then a **linear** fully connected layer to the embedding of size
    ``n_components``. The first two convolutions keep ``ceil(size / 2)`` ("same" padding);
    the third is "same" when the image side is a multiple of 8 and "valid" otherwise, as in
    the reference code (28 → 14 → 7 → 3 for MNIST, 16 → 8 → 4 → 2 for USPS). Decoder: a
    fully connected layer with ReLU back to the last feature map, then transposed
    convolutions mirroring the encoder (ReLU on all but the last, **linear** output) whose
    output padding is chosen so that every size is restored exactly, for any image size.
    No batch normalisation, dropout or pooling. Weights are initialised as in the Keras
    reference (Glorot-uniform, zero biases).

    Data stay 2-D, as scikit-learn requires: ``encode`` takes rows of ``C*H*W`` values
    (each an image flattened in C order) and ``decode`` returns rows of the same size.

    Parameters
    ----------
    n_features : int or None, default=None
        Values per sample; checked against ``input_shape`` (the estimators pass it when they
        build the network from ``autoencoder=ConvAutoencoder``).
    n_components : int, default=10
        Size of the embedding (the paper uses the number of clusters).
    input_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)``. None: a square one-channel image of ``n_features``
        pixels when ``n_features`` is a square, otherwise a one-row image of
        ``n_features`` values. An axis of size 1 gets kernels of size 1 (1-D convolutions
        along the other axis), and the third convolution falls back to "same" padding on
        sides too small for a "valid" window, so any shape of at least one pixel works.
    filters : tuple of three int, default=(32, 64, 128)
        Feature maps of the three convolutions.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.networks import ConvAutoencoder
    >>> cae = ConvAutoencoder(n_components=10, input_shape=(28, 28))
    >>> x = torch.zeros(2, 784)
    >>> tuple(cae.encode(x).shape), tuple(cae.decode(cae.encode(x)).shape)
    ((2, 10), (2, 784))
    >>> cae.feature_map_sizes
    [(28, 28), (14, 14), (7, 7), (3, 3)]
    """

    def __init__(self, n_features=None, n_components=10, input_shape=None,
                 filters=(32, 64, 128)):
        super().__init__()
        if input_shape is None and n_features is None:
            raise ValueError("ConvAutoencoder needs input_shape or n_features (a square "
                             "number of features is read as a square image, any other as "
                             "a one-row image).")
        (channels, height, width), filters, kernels, pads, sizes = _cae_geometry(
            input_shape, n_features, filters)
        self.input_shape = (channels, height, width)
        self.feature_map_sizes = sizes
        maps = (channels, *filters)
        encoder = []
        for i, (k, pad) in enumerate(zip(kernels, pads)):
            encoder += [nn.Conv2d(maps[i], maps[i + 1], k, stride=2, padding=pad), nn.ReLU()]
        self.conv = nn.Sequential(*encoder)
        h3, w3 = sizes[-1]
        flat = filters[-1] * h3 * w3
        self.embed = Linear(flat, int(n_components))
        self.unembed = nn.Sequential(Linear(int(n_components), flat), nn.ReLU())
        decoder = []
        for i in (2, 1, 0):
            k, pad = kernels[i], pads[i]
            (h_in, w_in), (h_out, w_out) = sizes[i + 1], sizes[i]
            out_pad = tuple(out - ((n_in - 1) * 2 - 2 * p + kk)
                            for out, n_in, p, kk in zip((h_out, w_out), (h_in, w_in), pad, k))
            decoder.append(nn.ConvTranspose2d(maps[i + 1], maps[i], k, stride=2,
                                              padding=pad, output_padding=out_pad))
            if i > 0:
                decoder.append(nn.ReLU())
        self.deconv = nn.Sequential(*decoder)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def encode(self, X):
        """Embedding of the flattened images ``X``, shape (n_samples, n_components)."""
        images = X.reshape(X.shape[0], *self.input_shape)
        return self.embed(self.conv(images).flatten(1))

    def decode(self, Z):
        """Reconstructed images, flattened: shape (n_samples, C*H*W)."""
        h3, w3 = self.feature_map_sizes[-1]
        maps = self.unembed(Z).reshape(Z.shape[0], -1, h3, w3)
        return self.deconv(maps).flatten(1)

    def forward(self, X):
        """Reconstruction of ``X`` (``decode(encode(X))``)."""
        return self.decode(self.encode(X))

    def layer_pairs(self):
        """``(encoder_layer, decoder_layer)`` pairs, outermost first (greedy pretraining).

        The three convolutions with their transposed convolutions, then the fully connected
        embedding with its mirror; reshapes sit where ``encode`` and ``decode`` put them.
        """
        h3, w3 = self.feature_map_sizes[-1]
        conv, deconv = self.conv, self.deconv
        return [
            (nn.Sequential(_Reshape(*self.input_shape), conv[0], conv[1]),
             nn.Sequential(deconv[4], _Reshape(-1))),
            (conv[2:4], deconv[2:4]),
            (conv[4:6], deconv[0:2]),
            (nn.Sequential(_Reshape(-1), self.embed),
             nn.Sequential(self.unembed, _Reshape(-1, h3, w3))),
        ]


CODE_PRIORS = ("nonneg", "l1", None)


def code_prior_prox(S, code_prior, threshold=0.0):
    """Proximal map of a code prior: ``argmin_z ||s − z||²/2 + threshold · ψ(z)`` per entry.

    ``"nonneg"``: the projection ``max(s, 0)`` (``ψ`` the indicator of ``z ≥ 0``; the
    threshold plays no role); ``"l1"``: soft-thresholding ``sign(s) max(|s| − threshold, 0)``
    (``ψ = ||z||₁``); None: the identity.
    """
    if code_prior == "nonneg":
        return S.clamp_min(0.0)
    if code_prior == "l1":
        return torch.sign(S) * (S.abs() - threshold).clamp_min(0.0)
    return S


def conv_transform_geometry(input_shape, n_features, n_filters, kernel_size, pool_size):
    """Checked geometry of :class:`ConvTransform`; builds nothing (draws no random numbers).

    Returns ``(spatial_shape, n_channels, sizes)``: the data's shape without channels
    (``(D,)`` for 1-D, ``(H, W)`` for 2-D), its channels and the feature-map sizes after
    each layer. Raises ValueError for a shape that does not match ``n_features``, filters
    larger than the data, a filter matrix that cannot have full column rank, or feature
    maps pooled away.
    """
    try:
        n_filters = tuple(int(f) for f in n_filters)
        ok = len(n_filters) >= 1 and min(n_filters) >= 1 and all(
            float(f) == int(f) for f in n_filters)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"n_filters must be a sequence of positive integers (filters per "
                         f"layer); got {n_filters!r}.")
    if input_shape is None:
        channels, spatial = 1, (int(n_features),)
    else:
        channels, height, width = check_input_shape(input_shape, n_features)
        spatial = (height, width)
    if kernel_size > min(spatial):
        raise ValueError(
            f"kernel_size={kernel_size} is larger than the data ({'x'.join(map(str, spatial))}"
            f"{' image' if len(spatial) == 2 else ' features'}); use a smaller kernel_size.")
    sizes, maps = [spatial], channels
    for layer, n_out in enumerate(n_filters):
        fan_in = maps * kernel_size ** len(spatial)
        if n_out > fan_in:
            raise ValueError(
                f"Layer {layer + 1} has {n_out} filters of {fan_in} weights each: its filter "
                "matrix cannot have full column rank, so its log-determinant is -inf. Use at "
                f"most {fan_in} filters in that layer.")
        size = tuple(side // pool_size for side in sizes[-1])
        if min(size) < 1:
            raise ValueError(
                f"The data ({'x'.join(map(str, spatial))}) are too small for {len(n_filters)} "
                f"max-pools of size {pool_size}; feature maps {[*sizes, size]}.")
        sizes.append(size)
        maps = n_out
    return spatial, channels, sizes


class ConvTransform(nn.Module):
    """The analysis transform of deep convolutional transform learning (DCTLKMeans).

    Layers of bias-free convolutions (the filters ``T_l``, zero-padded to keep the size),
    each followed by a max-pool; SELU between layers (after the first pool, as in the DCTL
    paper's Fig. 1). With ``input_shape`` the rows of X are images and the convolutions are
    2-D; without, each row is a signal of ``n_features`` values and the convolutions are
    1-D (the paper applies 9x9 filters to PCA features without saying how; its authors'
    code convolves feature vectors in 1-D). There is no decoder: ``encode`` is the
    transform followed by the code prior's proximal map, ``analysis`` the transform alone.

    Parameters
    ----------
    n_features : int
    input_shape : None or tuple of int, default=None
        ``(H, W)`` or ``(C, H, W)`` for images; None for 1-D signals.
    n_filters : sequence of int, default=(3, 3)
        Filters per layer.
    kernel_size : int, default=9
    pool_size : int, default=2
    code_prior : {"nonneg", "l1", None}, default="nonneg"
    code_penalty : float, default=0.0
        ``β`` of the ``"l1"`` prior.

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster.networks import ConvTransform
    >>> net = ConvTransform(256, input_shape=(16, 16))
    >>> tuple(net.encode(torch.zeros(2, 256)).shape)
    (2, 48)
    >>> [tuple(T.shape) for T in net.filter_matrices()]
    [(81, 3), (243, 3)]
    """

    def __init__(self, n_features, input_shape=None, n_filters=(3, 3), kernel_size=9,
                 pool_size=2, code_prior="nonneg", code_penalty=0.0):
        super().__init__()
        spatial, channels, sizes = conv_transform_geometry(
            input_shape, n_features, n_filters, kernel_size, pool_size)
        self.input_shape = (channels, *spatial)
        self.code_prior = code_prior
        self.code_penalty = float(code_penalty)
        conv = nn.Conv1d if len(spatial) == 1 else nn.Conv2d
        pool = nn.MaxPool1d if len(spatial) == 1 else nn.MaxPool2d
        layers, maps = [], channels
        for i, n_out in enumerate(n_filters):
            if i > 0:
                layers.append(nn.SELU())
            layers += [conv(maps, int(n_out), kernel_size, padding=kernel_size // 2,
                            bias=False), pool(pool_size)]
            maps = int(n_out)
        self.layers = nn.Sequential(*layers)
        self.n_components = maps * math.prod(sizes[-1])

    def filter_matrices(self):
        """The filter matrix ``T_l`` of every layer: one column per filter (its weights)."""
        return [m.weight.flatten(1).T for m in self.layers if hasattr(m, "weight")]

    def analysis(self, X):
        """The transform ``T • X`` (before the code prior), flattened per sample."""
        return self.layers(X.reshape(X.shape[0], *self.input_shape)).flatten(1)

    def encode(self, X):
        """The codes of new data: the transform followed by the code prior's proximal map
        (the minimiser of ``||T • x − z||² + ψ(z)``)."""
        return code_prior_prox(self.analysis(X), self.code_prior, self.code_penalty / 2.0)

    def forward(self, X):
        """The codes of ``X`` (``encode(X)``)."""
        return self.encode(X)


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
def check_autoencoder(module, X_probe, needs_decoder=True):
    """Run ``module`` on a few rows and check the shapes of its embedding and reconstruction
    (the embedding only when ``needs_decoder`` is false).

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
            X_hat = module.decode(Z) if torch.is_tensor(Z) and needs_decoder else None
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
        if needs_decoder and (not torch.is_tensor(X_hat) or tuple(X_hat.shape) != (n, d)):
            shape = tuple(X_hat.shape) if torch.is_tensor(X_hat) else type(X_hat).__name__
            raise ValueError(
                f"autoencoder {name} reconstructs an input of shape {(n, d)} as {shape}; "
                "decode(encode(X)) must have the shape of X (n_features does not match the "
                "network)."
            )
    finally:
        module.train(was_training)
    return int(Z.shape[1])

"""Pretraining of the autoencoders: the recipes, their length, and the ``memory`` cache.

Every deep estimator starts from an autoencoder trained on the reconstruction loss alone
(the "pretraining"). Three recipes are offered (see the user guide, section "Pretraining");
``"auto"`` picks ``"sgd"`` for inputs within [0, 1] (pixels) and pretrainings of at least
``SGD_MIN_STEPS`` steps, and ``"adam"`` otherwise (:func:`resolve_recipe`):

``"adam"``
    End-to-end training of the whole autoencoder with Adam (learning rate 1e-3), the
    recipe of the IDEC and DCEC reference code and of Deep k-Means.
``"sgd"``
    End-to-end training with SGD, momentum 0.9 and learning rate 1 on the squared error
    averaged over the features (Keras' ``mse``): the MNIST recipe of the DEC-keras code.
``"greedy"``
    The schedule of the DEC paper (Xie et al., 2016, §3.2): every layer pair
    (an encoder layer and its mirror in the decoder) is first trained alone as a
    *denoising* autoencoder of the previous layer's output (dropout 0.2 on that output;
    the raw input of the first layer is not corrupted), earlier layers frozen; then the
    whole autoencoder is fine-tuned end to end without noise. We use Adam (1e-3) for every
    stage instead of the paper's step-decayed SGD, whose learning rate does not transfer
    across input scales.

The length is ``pretrain_epochs`` epochs of end-to-end training (for ``"greedy"``, every
layer pair is trained for half as many epochs before). ``pretrain_epochs="auto"`` sets it
from the number of optimiser steps, so that small and large data sets both get enough
updates: see :func:`resolve_pretrain_epochs`.

With ``memory`` (a folder or a :class:`joblib.Memory`), the pretrained network is cached,
keyed on the training data, the untrained network (architecture and initial weights, which
the seed determines), the recipe, its length, batch size and learning rate, the seed, the
device, the precision (float32 or an enclosing :class:`torch.autocast`'s dtype) and the
versions of the package and of torch: a search over clustering parameters then pretrains
once per training set.
"""

import itertools
import math

import torch
from torch import nn

from ._engine import (
    HostData,
    backward_step,
    make_optimizer,
    rng_scope,
    run_epochs,
    seeded_generator,
)
from ._kmeans import autocast_dtype, feature_moments
from ._losses import reconstruction_loss

__all__ = [
    "PRETRAIN_RECIPES",
    "SGD_MIN_STEPS",
    "pretrain_autoencoder",
    "pretrained_autoencoder",
    "resolve_pretrain_epochs",
    "resolve_recipe",
]

#: Names accepted by the ``pretrain`` parameter ("auto" resolves to one of the others).
PRETRAIN_RECIPES = ("auto", "adam", "sgd", "greedy")

#: Learning rate of each recipe when ``pretrain_learning_rate="auto"``.
AUTO_LEARNING_RATE = {"adam": 1e-3, "sgd": 1.0, "greedy": 1e-3}

#: Loss reduction of each recipe: Adam's steps do not depend on the loss scale; SGD's
#: learning rate of 1 is DEC-keras's, on the squared error averaged over the features.
_REDUCTION = {"adam": "sum", "sgd": "mean", "greedy": "sum"}

#: SGD momentum of the ``"sgd"`` recipe (DEC-keras).
SGD_MOMENTUM = 0.9

#: Dropout on the input of every layer pair but the first in the ``"greedy"`` recipe.
GREEDY_DROPOUT = 0.2

#: Each layer pair of the ``"greedy"`` recipe is trained for this fraction of the epochs of
#: the end-to-end fine-tuning (the DEC paper: 50 000 steps per layer, 100 000 fine-tuning).
GREEDY_LAYER_FRACTION = 0.5

#: The end-to-end fine-tuning of the ``"greedy"`` recipe uses this fraction of its learning
#: rate (the layer pairs use all of it).
GREEDY_FINETUNE_LR_FACTOR = 1.0

#: Learning-rate schedule within each pretraining stage: ``"constant"``, or ``"cosine"``
#: (the rate decays from its value to 0 along the stage's steps, half a cosine period).
LEARNING_RATE_SCHEDULE = "constant"

#: ``pretrain_epochs="auto"``: aim at this many optimiser steps (200 epochs of 10 000
#: samples, the length of the IDEC and DCEC recipes) ...
AUTO_STEPS = 8_000
#: ... but never fewer epochs than this (large data sets: every sample seen often) ...
AUTO_MIN_EPOCHS = 50
#: ... nor more than this (small data sets: each epoch is a few steps over the same rows,
#: and more steps stopped paying off there; see the user guide's measurements).
AUTO_MAX_EPOCHS = 300


def steps_per_epoch(n_samples, batch_size):
    """Optimiser steps of one pretraining epoch: ``ceil(n_samples / batch_size)``, the unit
    of :func:`resolve_pretrain_epochs` and of :func:`resolve_recipe`'s ``n_steps``."""
    return math.ceil(n_samples / batch_size)


def resolve_pretrain_epochs(pretrain_epochs, n_samples, batch_size):
    """Number of pretraining epochs for an estimator's ``pretrain_epochs`` parameter.

    ``"auto"`` gives ``ceil(AUTO_STEPS / steps_per_epoch)`` epochs (``steps_per_epoch =
    ceil(n_samples / batch_size)``), clipped to ``[AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS]``; an
    integer is returned as it is.

    Examples
    --------
    >>> from skdeepcluster._pretrain import resolve_pretrain_epochs
    >>> resolve_pretrain_epochs(30, 10_000, 256)
    30
    >>> resolve_pretrain_epochs("auto", 10_000, 256)  # 40 steps per epoch
    200
    >>> resolve_pretrain_epochs("auto", 1797, 256)    # 8 steps per epoch
    300
    >>> resolve_pretrain_epochs("auto", 70_000, 256)  # 274 steps per epoch
    50
    """
    if isinstance(pretrain_epochs, str):
        epochs = math.ceil(AUTO_STEPS / steps_per_epoch(n_samples, batch_size))
        return int(min(max(epochs, AUTO_MIN_EPOCHS), AUTO_MAX_EPOCHS))
    return int(pretrain_epochs)


#: ``pretrain="sgd"`` with ``pretrain_learning_rate="auto"``: the learning rate of 1 is
#: DEC-keras's for MNIST's pixels scaled to [0, 1] (mean square 0.114); it was measured
#: stable and better than 0.5 up to digits' pixels (mean square 0.235) and on USPS's
#: (0.216). SGD's steps grow with the input's scale, so a larger input gets a
#: proportionally smaller rate (standardised features, mean square 1: 0.25); a smaller one
#: keeps 1.
SGD_REFERENCE_MEAN_SQUARE = 0.25


def value_range(data):
    """Smallest and largest value of a :class:`~skdeepcluster._engine.HostData`, in one
    pass over its chunks (a memory-mapped or sparse input is never materialised)."""
    lows, highs = [], []
    for _, _, xb in data.chunks():
        lo, hi = torch.aminmax(xb)
        lows.append(lo)
        highs.append(hi)
    return float(torch.stack(lows).min()), float(torch.stack(highs).max())


#: ``pretrain="auto"`` picks SGD only for pretrainings of at least this many optimiser
#: steps: SGD (momentum 0.9, rate 1) starts slower than Adam and overtakes it later (AE+KM
#: accuracy along one MNIST pretraining: below Adam at 500 and 1 000 steps, level at 2 000,
#: above from 4 000), and on subsamples of digits with 600 and 1 200 steps it stayed below.
SGD_MIN_STEPS = 2_000


def resolve_recipe(recipe, data, n_steps):
    """The recipe the ``pretrain`` parameter names for this training set.

    ``"auto"`` is ``"sgd"`` when every input value lies in [0, 1] (pixel intensities
    scaled by their maximum, the inputs DEC-keras's SGD recipe was made for) and the
    pretraining is ``n_steps >= SGD_MIN_STEPS`` optimiser steps long; there SGD gave better
    embeddings than Adam on every image set we measured. Otherwise it is ``"adam"``:
    standardised features, where SGD diverged on some sets and Adam, whose steps do not
    depend on the input's scale, is the safe choice, and short pretrainings, where Adam
    gets further in few steps. Other names are returned as they are.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skdeepcluster._engine import HostData
    >>> from skdeepcluster._pretrain import resolve_recipe
    >>> pixels = HostData(np.array([[0.0, 0.5], [1.0, 0.25]]), torch.device("cpu"),
    ...                   torch.float32)
    >>> resolve_recipe("auto", pixels, n_steps=8000)
    'sgd'
    >>> resolve_recipe("auto", pixels, n_steps=600)
    'adam'
    >>> standardised = HostData(np.array([[-1.0, 0.5], [1.0, -0.5]]),
    ...                         torch.device("cpu"), torch.float32)
    >>> resolve_recipe("auto", standardised, n_steps=8000)
    'adam'
    >>> resolve_recipe("greedy", pixels, n_steps=8000)
    'greedy'
    """
    if recipe != "auto":
        return recipe
    if n_steps < SGD_MIN_STEPS:
        return "adam"
    low, high = value_range(data)
    return "sgd" if low >= 0.0 and high <= 1.0 else "adam"


def resolve_learning_rate(recipe, learning_rate, mean_square=None):
    """The learning rate of ``recipe`` for ``pretrain_learning_rate`` (``"auto"`` or a float).

    ``mean_square`` is the mean of the squared input values; with ``"auto"`` the ``"sgd"``
    recipe's rate is ``min(1, SGD_REFERENCE_MEAN_SQUARE / mean_square)``. Adam's steps do
    not depend on the input's scale, so its rate does not either.

    Examples
    --------
    >>> from skdeepcluster._pretrain import resolve_learning_rate
    >>> resolve_learning_rate("adam", "auto", mean_square=1.0)
    0.001
    >>> resolve_learning_rate("sgd", "auto", mean_square=0.2)   # pixels in [0, 1]
    1.0
    >>> resolve_learning_rate("sgd", "auto", mean_square=1.0)  # standardised
    0.25
    >>> resolve_learning_rate("sgd", 0.5, mean_square=1.0)
    0.5
    """
    if isinstance(learning_rate, str):
        rate = AUTO_LEARNING_RATE[recipe]
        if recipe == "sgd" and mean_square is not None and mean_square > 0:
            rate = min(rate, SGD_REFERENCE_MEAN_SQUARE / mean_square)
        return rate
    return float(learning_rate)


def mean_square(data):
    """Mean of the squared values of a :class:`~skdeepcluster._engine.HostData` (the
    "auto" SGD rate's scale), from :func:`~skdeepcluster._kmeans.feature_moments`."""
    return float(feature_moments(data)[1].mean())


def _optimizer(recipe, params, learning_rate):
    if recipe == "sgd":
        return make_optimizer("sgd", params, learning_rate, SGD_MOMENTUM)
    return make_optimizer("adam", params, learning_rate)


def layer_pairs(autoencoder):
    """The ``(encoder_layer, decoder_layer)`` pairs of a network, outermost first.

    ``encode`` must equal the encoder layers applied in order and ``decode`` the decoder
    layers in reverse order. :class:`~skdeepcluster.networks.MLPAutoencoder` and
    :class:`~skdeepcluster.networks.ConvAutoencoder` provide ``layer_pairs()``; a user
    network that does not cannot be pretrained greedily.
    """
    method = getattr(autoencoder, "layer_pairs", None)
    if not callable(method):
        raise ValueError(
            f"pretrain='greedy' trains the network one layer pair at a time and needs an "
            f"autoencoder with a layer_pairs() method; {type(autoencoder).__name__} has none "
            "(MLPAutoencoder and ConvAutoencoder have one). Use pretrain='adam' or 'sgd'."
        )
    return list(method())


def _train_stage(data, phase, n_epochs, params, reconstruct, *, recipe, learning_rate,
                 batch_size, generator, augmentation, owner, callbacks, history, verbose):
    """One pretraining stage: minimise the error of ``reconstruct(X_batch) -> (X_hat,
    target)`` over ``params`` for ``n_epochs`` epochs (the engine's loop), with the
    ``LEARNING_RATE_SCHEDULE`` of the module. ``augmentation(X_batch, generator)``, when
    given, replaces each batch first (drawing from the shuffling ``generator``)."""
    optimizer = _optimizer(recipe, params, learning_rate)
    reduction = _REDUCTION[recipe]
    steps = itertools.count()
    n_steps = n_epochs * math.ceil(data.n_samples / batch_size)
    cosine = LEARNING_RATE_SCHEDULE == "cosine"

    def step(idx, xb, epoch):
        if cosine:
            rate = 0.5 * learning_rate * (1.0 + math.cos(math.pi * next(steps) / n_steps))
            for group in optimizer.param_groups:
                group["lr"] = rate
        if augmentation is not None:
            xb = augmentation(xb, generator)
        loss = reconstruction_loss(*reconstruct(xb), reduction)
        backward_step(optimizer, loss, xb.shape[0], data.group)
        return {"reconstruction": loss.detach()}

    run_epochs(data, phase=phase, n_epochs=n_epochs, batch_size=batch_size,
               generator=generator, step=step, owner=owner, callbacks=callbacks,
               history=history, verbose=verbose,
               diverged_hint=(f"pretrain_learning_rate={learning_rate} is probably too large "
                              f"for pretrain={recipe!r}"))


def pretrain_autoencoder(autoencoder, data, *, recipe, n_epochs, batch_size, learning_rate,
                         generator, augmentation=None, owner=None, callbacks=(), history=None,
                         verbose=0):
    """Train ``autoencoder`` in place on the reconstruction loss with one recipe.

    Parameters
    ----------
    autoencoder : nn.Module
        On the data's device, with ``encode``/``decode`` (and ``layer_pairs`` for
        ``"greedy"``).
    data : HostData
    recipe : {"adam", "sgd", "greedy"}
    n_epochs : int
        Epochs of end-to-end training (each greedy layer pair gets
        ``ceil(GREEDY_LAYER_FRACTION * n_epochs)`` epochs before).
    batch_size : int
    learning_rate : float
    generator : torch.Generator
        Shuffles the data (and draws the augmentation's randomness).
    augmentation : callable or None, default=None
        ``augmentation(X_batch, generator) -> X_batch`` applied to every batch of every
        stage (:mod:`skdeepcluster.augmentation`); the loss reconstructs the augmented batch.
    owner, callbacks, history, verbose
        As :func:`~skdeepcluster._engine.run_epochs`. Phases are recorded as
        ``"pretrain_layer1"``, ``"pretrain_layer2"``, ... (greedy) and ``"pretrain"``.
    """
    if n_epochs == 0:
        return
    stage = {"recipe": recipe, "batch_size": batch_size, "generator": generator,
             "augmentation": augmentation, "owner": owner, "callbacks": callbacks,
             "history": history, "verbose": verbose}
    if recipe == "greedy":
        pairs = layer_pairs(autoencoder)
        layer_epochs = max(1, math.ceil(GREEDY_LAYER_FRACTION * n_epochs))
        for i, (encoder_layer, decoder_layer) in enumerate(pairs):
            below = [enc for enc, _ in pairs[:i]]  # trained already, frozen in this stage
            noise = nn.Dropout(GREEDY_DROPOUT if i > 0 else 0.0)

            def reconstruct(xb, below=below, noise=noise, enc=encoder_layer,
                            dec=decoder_layer):
                with torch.no_grad():
                    for layer in below:
                        xb = layer(xb)
                return dec(enc(noise(xb))), xb

            params = [*encoder_layer.parameters(), *decoder_layer.parameters()]
            _train_stage(data, f"pretrain_layer{i + 1}", layer_epochs, params, reconstruct,
                         learning_rate=learning_rate, **stage)
        learning_rate = learning_rate * GREEDY_FINETUNE_LR_FACTOR
    _train_stage(data, "pretrain", n_epochs, autoencoder.parameters(),
                 lambda xb: (autoencoder.decode(autoencoder.encode(xb)), xb),
                 learning_rate=learning_rate, **stage)


def _pretrain_job(X, network, recipe, n_epochs, batch_size, learning_rate, seed, device,
                  versions=None, precision=None, augmentation_key=None, *, initial_autoencoder,
                  augmentation=None, data=None, owner=None, callbacks=(), verbose=0):
    """Pretrain ``initial_autoencoder`` in place; returns it and its history records.

    A pure function of its positional arguments, what the ``memory`` cache is keyed on
    (``network`` is :func:`network_key` of ``initial_autoencoder``; ``versions``, the
    package's and torch's, and ``precision``, the :class:`torch.autocast` dtype the caller
    fits under, are only part of the key: another version, or a network trained in
    bfloat16, is another network, so it does not reuse this one; ``augmentation_key`` is
    :func:`augmentation_key` of ``augmentation``); ``data`` (the training set already
    wrapped for ``device``), ``owner``, ``callbacks`` and ``verbose`` only change how it
    runs.
    """
    device = torch.device(device)
    if data is None:
        data = HostData(X, device, torch.float32)
    autoencoder = initial_autoencoder.train()
    history = []
    # Its own seeds: dropout (global RNG) and shuffling do not depend on what ran before.
    with rng_scope(seed, device):
        pretrain_autoencoder(autoencoder, data, recipe=recipe, n_epochs=n_epochs,
                             batch_size=batch_size, learning_rate=learning_rate,
                             generator=seeded_generator(seed, device),
                             augmentation=augmentation, owner=owner, callbacks=callbacks,
                             history=history, verbose=verbose)
    return autoencoder, history


def pretrained_autoencoder(memory, X, initial_autoencoder, *, recipe, n_epochs, batch_size,
                           learning_rate, seed, device, data, augmentation=None, owner=None,
                           callbacks=(), verbose=0):
    """``initial_autoencoder`` pretrained in place, or its pretrained twin from ``memory``.

    Parameters
    ----------
    memory : joblib.Memory or None
        As returned by :func:`sklearn.utils.validation.check_memory`; None or a memory
        without a location computes without caching.

    Returns
    -------
    autoencoder : nn.Module
        On ``device``, in train mode.
    history : list of dict
        The records of the pretraining phases; each has ``cached=True`` when the network
        came from the cache.
    """
    job = _pretrain_job
    cached = memory is not None and getattr(memory, "location", None) is not None
    if cached:
        job = memory.cache(_pretrain_job, ignore=["initial_autoencoder", "augmentation", "data",
                                                  "owner", "callbacks", "verbose"])
    # The network's weights are read (and hashed) only when there is a cache to key.
    precision = autocast_dtype(torch.device(device).type)
    args = (X, network_key(initial_autoencoder) if cached else None, recipe, int(n_epochs),
            int(batch_size), float(learning_rate), int(seed), str(device), _versions(),
            "float32" if precision is None else f"autocast {precision}",
            augmentation_key(augmentation))
    kwargs = {"initial_autoencoder": initial_autoencoder, "augmentation": augmentation,
              "data": data, "owner": owner, "callbacks": callbacks, "verbose": verbose}
    hit = cached and job.check_call_in_cache(*args, **kwargs)
    autoencoder, history = job(*args, **kwargs)
    if hit:
        history = [{**record, "cached": True} for record in history]
    return autoencoder.train(), history


def _versions():
    """The versions a cached pretraining depends on beyond its arguments, and the kernels of
    its float32 CPU products (torch's or oneDNN's, :mod:`skdeepcluster._onednn`), which
    round differently and so train a different network from the same arguments."""
    from . import __version__
    from ._onednn import use_onednn

    kernels = "onednn" if use_onednn() else "torch"
    return f"skdeepcluster {__version__}, torch {torch.__version__}, cpu matmul {kernels}"


def augmentation_key(augmentation):
    """What identifies a pretraining augmentation for the cache: None, or its class and
    parameters (an object with ``get_params``, such as
    :class:`~skdeepcluster.augmentation.RandomAffine`), or else its ``repr`` (for a function,
    one that holds its address: reused within one process only)."""
    if augmentation is None:
        return None
    cls = type(augmentation)
    get_params = getattr(augmentation, "get_params", None)
    if callable(get_params):
        params = sorted(get_params(deep=True).items())
        return f"{cls.__module__}.{cls.__qualname__}({params!r})"
    return f"{cls.__module__}.{cls.__qualname__}: {augmentation!r}"


def network_key(module):
    """What identifies an untrained network for the cache: class, layout and weights."""
    cls = type(module)
    state = module.state_dict()
    return (f"{cls.__module__}.{cls.__qualname__}", repr(module), list(state),
            [t.detach().cpu().numpy() for t in state.values()])

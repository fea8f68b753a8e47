"""BaseDeepClusterer: the one ``fit`` of every deep estimator, and their shared methods.

``fit`` is a template method:

1. validate the parameters and the data;
2. resolve the device and the random state (one seed, a private torch generator, a forked
   global torch RNG for layer initialisation);
3. build the autoencoder from the data's shape (or from the user's ``autoencoder``);
4. pretrain it on the reconstruction loss with the ``pretrain`` recipe, or load the result
   from the ``memory`` cache (:mod:`skdeepcluster._pretrain`);
5. initialise the clusters by k-means in the latent space, on the device;
6. run the method's clustering phase through its hooks: ``_init_clustering`` (parameters
   and the method's own fit state, a :class:`FitState` subclass), per epoch
   ``_epoch_begin``, per mini-batch ``_batch_loss`` then ``_after_step`` (closed-form
   updates), ``_epoch_end`` (refits, training labels) and the stop rule ``_converged``;
   ``_assign`` is the method's one assignment rule (training labels, ``labels_``,
   ``predict``, ``score``);
7. set the fitted attributes, with the network on the CPU in eval mode.

A method class adds its parameters, its docstring and those hooks.
"""

import copy
import time
import warnings
from abc import ABCMeta
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory

from ._distributed import (
    block_sizes,
    broadcast_,
    check_backend_device,
    check_same_data,
    chunk_block,
    current_group,
    gather_rows,
    world_size,
)
from ._engine import (
    PRECISIONS,
    HostData,
    backward_step,
    caller_stacklevel,
    check_callbacks,
    check_host_data,
    check_random_state_local,
    cpu_has_native_bf16,
    epoch_loop,
    forget_fit,
    inference_device,
    make_optimizer,
    minibatch_pass,
    precision_scope,
    resolve_device,
    rng_scope,
    seeded_generator,
)
from ._kmeans import kmeans, nearest_centers
from ._losses import scale_free_term
from ._pretrain import (
    PRETRAIN_RECIPES,
    mean_square,
    pretrained_autoencoder,
    resolve_learning_rate,
    resolve_pretrain_epochs,
    resolve_recipe,
    steps_per_epoch,
)
from ._threads import limited_torch_threads
from .augmentation import RandomAffine, grid_shape_of_rows
from .networks import ACTIVATIONS, build_autoencoder, check_autoencoder

__all__ = ["BaseDeepClusterer", "FitState", "SoftAssignmentMixin", "scaled_clustering_term",
           "set_labels"]

#: Rows per forward pass when embedding a whole data set without gradients, on a GPU ...
EMBED_CHUNK_ROWS = 4096
#: ... and on the CPU: few enough that a layer's output stays in the cache (512 rows of the
#: MLP's 2000-wide layer are 4 MB, of the CAE's first feature maps 13 MB). On mnist_test
#: (2 cores) the MLP's pass took a fifth less time than with 4096 rows, the CAE's half
#: (``benchmarks/bench_gemm_limit.py``), with bit-identical embeddings.
EMBED_CHUNK_ROWS_CPU = 512

#: On the CPU, convolution weights (4-D parameters) are stored channels-last (NHWC) for the
#: fit: oneDNN's kernels then keep the feature maps in that layout, and DCEC's CAE trained
#: about a tenth faster on mnist_test (2 cores; the transposed convolutions gained most).
#: The computation is the same up to the order of float32 sums. Other networks (the MLP,
#: any module without 4-D parameters) are unchanged.
CHANNELS_LAST_ON_CPU = True


@dataclass(eq=False)
class FitState:
    """What the hooks of one ``fit`` share: the data, the network, the device, the RNG.

    A method that keeps more (DEC's target distribution, DCN's assignments, ...) declares a
    dataclass derived from this one as its ``_fit_state`` class attribute; nothing is
    attached to a state object outside its declared fields.
    """

    data: HostData
    autoencoder: torch.nn.Module
    device: torch.device
    seed: int
    history: list
    generator: torch.Generator | None = None
    centers: torch.Tensor | None = None  # (n_clusters, n_components) on the device
    labels: torch.Tensor | None = None  # training labels at the last check (device)
    embedding: torch.Tensor | None = None  # training embedding at the last check (device)
    n_iter: int = 0  # clustering epochs run
    epoch: int = 0  # current clustering epoch (1-based)
    changed: float | None = None  # fraction of labels changed at the last check
    augmentation: Callable | None = None  # the resolved ``augmentation`` (None: none)


@torch.no_grad()
def embed(autoencoder, data, chunk_rows=None):
    """Embedding of every row of ``data`` (a HostData), in eval mode, on the data's device,
    ``chunk_rows`` rows at a time (default: by device, see ``EMBED_CHUNK_ROWS_CPU``).

    Inside a process group (``data.group``) each rank embeds a contiguous block of the
    chunks and every rank gets the whole embedding; each row is computed in the same chunk
    as in a single process.
    """
    if chunk_rows is None:
        chunk_rows = EMBED_CHUNK_ROWS_CPU if data.device.type == "cpu" else EMBED_CHUNK_ROWS
    first, last = 0, data.n_samples
    if data.group is not None:  # this rank's block of the chunks; the blocks are gathered
        first, last = chunk_block(data.n_samples, chunk_rows, data.group)
    was_training = autoencoder.training
    autoencoder.eval()
    try:
        # float32 whatever the network computed in (under autocast, bf16/fp16): the
        # closed-form steps (k-means, targets, assignments) run on it in full precision.
        # Written into one preallocated tensor, not concatenated from the chunks (which
        # would hold the embedding twice at the end of the pass).
        Z = None
        for start, stop, xb in data.chunks(chunk_rows, first, last):
            z = autoencoder.encode(xb).float()
            if Z is None:
                Z = z.new_empty((min(last, data.n_samples) - first, z.shape[1]))
            Z[start - first:stop - first] = z
        if Z is None:  # a rank without rows: an empty block of the right width
            Z = autoencoder.encode(data.rows(torch.arange(0, device=data.device))).float()
    finally:
        autoencoder.train(was_training)
    if data.group is None:
        return Z
    return gather_rows(data.group, Z,
                       sizes=block_sizes(data.n_samples, chunk_rows, data.group))


def _check_augmentation(augmentation, data):
    """Run ``augmentation`` once on the first rows before any training, so that a
    wrong callable fails with a clear message rather than deep inside the first epoch."""
    rows = data.rows(torch.arange(min(2, data.n_samples)))
    out = augmentation(rows, torch.Generator(device=data.device).manual_seed(0))
    if not (isinstance(out, torch.Tensor) and out.shape == rows.shape
            and out.dtype == rows.dtype and out.device == rows.device):
        got = (f"a tensor of shape {tuple(out.shape)}, dtype {out.dtype}, on {out.device}"
               if isinstance(out, torch.Tensor) else f"a {type(out).__name__}")
        raise ValueError(
            "augmentation(X_batch, generator) must return a tensor of the batch's "
            f"shape, dtype and device (here {tuple(rows.shape)}, {rows.dtype}, "
            f"{rows.device}); it returned {got}."
        )


def set_labels(state, labels):
    """Record new training labels: ``state.changed`` becomes the fraction that differ from
    the previous ones (the quantity ``tol`` is compared with); returns it."""
    state.changed = float((labels != state.labels).sum() / labels.numel())
    state.labels = labels
    return state.changed


def scaled_clustering_term(term, Z, state, scale_invariant):
    """A k-means-type clustering term of a batch, divided by the batch's total variance when
    ``scale_invariant`` (:func:`~skdeepcluster._losses.scale_free_term`; a batch of one
    row uses the whole training embedding's; with several ranks, the global batch's)."""
    if not scale_invariant:
        return term
    return scale_free_term(
        term, Z, lambda: float(torch.var(state.embedding, dim=0, correction=0).sum()),
        state.data.group)


class BaseDeepClusterer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin,
                        BaseEstimator, metaclass=ABCMeta):
    """Base class of the deep clustering estimators. Not for direct use.

    Subclasses define ``__init__`` (their parameters), ``_parameter_constraints`` and the
    hooks of their clustering phase (see the module docstring); the base knows no method.
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "autoencoder": [None, callable],
        "pretrain": [StrOptions(set(PRETRAIN_RECIPES))],
        "pretrain_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "pretrain_learning_rate": [Interval(Real, 0, None, closed="neither"),
                                   StrOptions({"auto"})],
        "augmentation": [None, callable, StrOptions({"auto"})],
        "memory": [None, str, HasMethods(["cache"])],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str, torch.device, None],
        "precision": [StrOptions(set(PRECISIONS))],
        "callbacks": [None, list, tuple],
    }

    #: Whether the network must have ``decode`` (False for a transform-only method).
    _needs_decoder = True
    #: Whether ``augmentation`` also replaces the batches of the clustering phase (DEC-DA);
    #: False: the pretraining only (methods whose phase measured worse with it).
    _augments_clustering_phase = True

    #: How the reconstruction error of a sample is reduced over its features in the
    #: clustering phase (each method follows its reference code; see the user guide).
    _reconstruction_reduction = "sum"

    # ---------------------------------------------------------------- scikit-learn plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # The networks compute in float32: float32 input gives float32 output.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.n_components_

    # ---------------------------------------------------------------- validation
    def _check_params_vs_input(self, X):
        n_samples = X.shape[0]
        if n_samples < self.n_clusters:
            raise ValueError(
                f"n_samples={n_samples} should be >= n_clusters={self.n_clusters}."
            )
        self._check_network_params(X)
        self._check_method_params(X)

    def _check_network_params(self, X):
        """Hook: checks of the parameters that build the default network (the MLP's)."""
        dims = np.asarray(self.hidden_dims)
        if dims.ndim != 1 or not all(
            isinstance(d, Integral | np.integer) and d >= 1 for d in self.hidden_dims
        ):
            raise ValueError(
                f"hidden_dims must be a sequence of positive integers; got {self.hidden_dims!r}."
            )

    def _check_method_params(self, X):
        """Hook: data-dependent or cross-parameter checks of a method (before training)."""

    # ---------------------------------------------------------------- the template method
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Pretrain the autoencoder, initialise the clusters, then train the method.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (float32 or float64; CSR is densified one batch at a time). The
            networks compute in float32.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        try:
            # Dense float32/float64 or CSR, not copied (a memory map's check reads its file).
            X = check_host_data(self, X, reset=True)
            with limited_torch_threads():  # a dask worker's share of the cores
                self._fit(X)
        except BaseException:
            forget_fit(self)  # a failed fit leaves the estimator unfitted
            raise
        return self

    def _fit(self, X):
        self._check_params_vs_input(X)
        callbacks = check_callbacks(self.callbacks)
        random_state = check_random_state_local(self.random_state)
        seed = int(random_state.randint(np.iinfo(np.int32).max))
        device = resolve_device(self.device)
        group = current_group()
        check_backend_device(group, device)
        check_same_data(group, X, device)
        if group is not None:  # one seed for every rank (random_state=None draws per rank)
            seed = int(broadcast_(torch.tensor([seed], device=device), group)[0])
        if self.precision == "bfloat16" and device.type == "cpu" and not cpu_has_native_bf16():
            warnings.warn(
                "precision='bfloat16' on a CPU without native bfloat16 instructions "
                "(AVX512-BF16 or AMX): PyTorch emulates them, which is slower than "
                "precision='float32'.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        data = HostData(X, device, torch.float32)
        data.group = group
        history = []
        with rng_scope(seed, device), precision_scope(self.precision, device):
            autoencoder = self._build_autoencoder(X.shape[1]).to(device=device,
                                                                  dtype=torch.float32)
            if device.type == "cpu" and CHANNELS_LAST_ON_CPU:
                autoencoder = autoencoder.to(memory_format=torch.channels_last)
            probe = torch.arange(min(2, data.n_samples), device=device)
            n_components = check_autoencoder(autoencoder, data.rows(probe),
                                             self._needs_decoder)
            state = self._fit_state(data=data, autoencoder=autoencoder, device=device,
                                     seed=seed, history=history)
            autoencoder.train()
            self._pretrain(state, X, callbacks)
            # The clustering phase shuffles with a generator of its own, so that it does not
            # depend on whether the pretraining ran or came from the ``memory`` cache.
            state.generator = seeded_generator(seed + 2, device)
            self._init_centers(state)
            self._clustering_phase(state, callbacks)
            # With several ranks, labels_ comes from the ranks' blocks of the final
            # embedding (each row computed in the chunk predict uses).
            final_embedding = None if group is None else embed(state.autoencoder, data).cpu()
        autoencoder = state.autoencoder
        autoencoder.eval().cpu()
        if device.type == "cuda":
            torch.cuda.empty_cache()

        self.autoencoder_ = autoencoder
        self.n_components_ = n_components
        self.cluster_centers_ = state.centers.detach().float().cpu().numpy()
        self._set_method_attributes(state)
        self.n_iter_ = state.n_iter
        self.history_ = history
        # The fit's per-sample tensors (embedding, labels, codes, ADMM variables) are freed
        # before the final pass embeds the training set once more.
        del state
        labels, dist = self._labels_distances(X, final_embedding)  # as predict(X) computes
        self.labels_ = labels
        self.inertia_ = float(dist.sum(dtype=np.float64))
        n_distinct = len(np.unique(labels))
        if n_distinct < self.n_clusters:
            sizes = np.bincount(labels, minlength=self.n_clusters).tolist()
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than n_clusters "
                f"({self.n_clusters}); cluster sizes {sizes}. The embedding may have "
                "collapsed (try a smaller lam or learning_rate).",
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )

    def _build_autoencoder(self, n_features):
        """The network to train: the user's ``autoencoder`` or the default MLP."""
        return build_autoencoder(self.autoencoder, n_features, self._embedding_size(),
                                 self.hidden_dims, self.activation)

    def _embedding_size(self):
        """``n_components``; None (where a method allows it) means ``n_clusters``."""
        return self.n_clusters if self.n_components is None else self.n_components

    # ---------------------------------------------------------------- phases
    def _pretrain(self, state, X, callbacks):
        """Reconstruction training with the ``pretrain`` recipe, through the ``memory`` cache.

        The pretraining is a function of the data, the untrained network, the recipe and
        its length, batch size and learning rate, the seed and the device; its records join
        ``history_`` (marked ``cached=True`` when they come from the cache).
        """
        n_epochs = resolve_pretrain_epochs(self.pretrain_epochs, X.shape[0], self.batch_size)
        self.pretrain_epochs_ = n_epochs
        n_steps = n_epochs * steps_per_epoch(X.shape[0], self.batch_size)
        recipe = resolve_recipe(self.pretrain, state.data, n_steps)
        scale = None
        if recipe == "sgd" and isinstance(self.pretrain_learning_rate, str):
            scale = mean_square(state.data)
        learning_rate = resolve_learning_rate(recipe, self.pretrain_learning_rate,
                                              mean_square=scale)
        self.pretrain_ = recipe
        self.pretrain_learning_rate_ = learning_rate
        augmentation = self._resolve_augmentation(state.data)
        self.augmentation_ = augmentation
        state.augmentation = augmentation
        if augmentation is not None:  # also without pretraining: the clustering phase uses it
            _check_augmentation(augmentation, state.data)
        if n_epochs == 0:
            return
        memory = check_memory(self.memory)
        if state.data.group is not None and getattr(memory, "location", None) is not None:
            warnings.warn(
                "memory is not used inside a torch.distributed process group (the ranks "
                "would race on the cache); the network is pretrained.",
                UserWarning, stacklevel=caller_stacklevel())
            memory = None
        state.autoencoder, records = pretrained_autoencoder(
            memory, X, state.autoencoder, recipe=recipe, n_epochs=n_epochs,
            batch_size=self.batch_size, learning_rate=learning_rate, seed=state.seed,
            device=state.device, data=state.data, augmentation=augmentation, owner=self,
            callbacks=callbacks, verbose=self.verbose)
        state.history.extend(records)

    def _resolve_augmentation(self, data):
        """The ``augmentation`` of this fit: the parameter, or for ``"auto"``
        :class:`~skdeepcluster.augmentation.RandomAffine` at its defaults when
        :meth:`_auto_image_shape` finds images, else None."""
        if not isinstance(self.augmentation, str):
            return self.augmentation
        image_shape = self._auto_image_shape(data)
        return None if image_shape is None else RandomAffine(image_shape)

    def _auto_image_shape(self, data):
        """The image shape ``augmentation="auto"`` augments: detected from the rows
        (:func:`~skdeepcluster.augmentation.detect_image_shape`); None for other data."""
        return grid_shape_of_rows(data.rows, data.n_samples, data.n_features)

    def _init_centers(self, state):
        """k-means (k-means++ and Lloyd, ``n_init`` runs) in the latent space, on the device."""
        start = time.perf_counter()
        Z = embed(state.autoencoder, state.data)
        if not bool(torch.isfinite(Z).all()):
            raise ValueError(
                "The embedding of the training data contains NaN or infinity; scale the "
                "input (e.g. with StandardScaler) or lower pretrain_learning_rate."
            )
        # A generator of its own: the initialisation does not depend on how many random
        # numbers the pretraining drew, so methods that share a pretrained network
        # (pretrain_epochs=0) start from the same centres.
        generator = seeded_generator(state.seed + 1, state.device)
        centers, labels, inertia, n_iter = kmeans(Z, self.n_clusters, self.n_init, generator)
        state.centers = centers
        state.labels = labels
        state.embedding = Z
        state.n_iter = 0
        state.history.append({
            "phase": "init", "epoch": 1, "inertia": inertia, "kmeans_iter": n_iter,
            "seconds": time.perf_counter() - start, "world_size": world_size(state.data.group),
        })

    def _clustering_phase(self, state, callbacks):
        """Joint training of the network and the method's parameters, through its hooks.

        ``max_iter`` epochs; each mini-batch is one optimiser step on
        ``_batch_loss(state, idx, X_batch)["loss"]`` followed by ``_after_step`` (closed-form
        updates; it may end the phase at once), each epoch ends with ``_epoch_end``
        (refits, training labels) and training stops when ``_converged(state)``. With an
        ``augmentation``, ``_batch_loss`` gets the augmented batch and ``_after_step`` the
        batch as it is.
        """
        params = self._init_clustering(state)
        if self.max_iter == 0:
            return
        optimizer = self._make_optimizer([*state.autoencoder.parameters(), *params])
        hint = (f"learning_rate={self.learning_rate} or the weight of the clustering term "
                "is probably too large")

        # None for DCTLKMeans, which has no pretraining
        augmentation = state.augmentation if self._augments_clustering_phase else None

        def step(idx, xb):
            # The loss sees the augmented batch (DEC-DA); the closed-form updates of the
            # per-sample state (DCN's assignments, ...) see the samples themselves.
            seen = xb if augmentation is None else augmentation(xb, state.generator)
            terms = self._batch_loss(state, idx, seen)
            backward_step(optimizer, terms["loss"], xb.shape[0], state.data.group)
            stop = self._after_step(state, idx, xb)
            return {k: v.detach() for k, v in terms.items()}, bool(stop)

        def run_epoch(epoch):
            state.epoch = epoch
            record = dict(self._epoch_begin(state))
            values, _ = minibatch_pass(state.data, self.batch_size, state.generator, step,
                                       phase="cluster", epoch=epoch, diverged_hint=hint)
            record.update(values)
            record.update(self._epoch_end(state))
            return record

        state.n_iter = epoch_loop(
            run_epoch, phase="cluster", n_epochs=self.max_iter,
            converged=lambda record: self._converged(state), owner=self, callbacks=callbacks,
            history=state.history, verbose=self.verbose, group=state.data.group)

    def _make_optimizer(self, params):
        """The optimiser of the clustering phase (Adam with ``learning_rate`` by default)."""
        return make_optimizer("adam", params, self.learning_rate)

    # ---------------------------------------------------------------- hooks
    #: The method's fit state: :class:`FitState` or a dataclass derived from it.
    _fit_state = FitState

    def _init_clustering(self, state):
        """Hook: set up the method's parameters and state after the k-means initialisation;
        returns the tensors the optimiser trains besides the network."""
        return []

    def _epoch_begin(self, state):
        """Hook: per-epoch schedule (temperature, ...); returns values to record."""
        return {}

    def _batch_loss(self, state, idx, X_batch):
        """Hook: dict of loss terms of a mini-batch; ``"loss"`` is minimised.

        ``idx`` holds the rows' positions in the training set (a device tensor), for
        per-sample state such as DEC's target distribution or DCN's assignments.
        """
        raise NotImplementedError

    def _after_step(self, state, idx, X_batch):
        """Hook: closed-form updates after an optimiser step (DCN's assignments and centres,
        DEC's periodic target). A true return ends the phase now (mid-epoch)."""
        return False

    def _epoch_end(self, state):
        """Hook: work at the end of an epoch; returns values to record.

        By default the training labels are recomputed with the method's assignment rule
        (``changed``: the fraction that changed since the last check).
        """
        return {"changed": self._relabel(state)}

    def _converged(self, state):
        """Hook: the stop rule, checked after every epoch (default: fewer than ``tol`` of the
        training labels changed at the last check)."""
        return state.changed is not None and state.changed < self.tol

    def _relabel(self, state):
        """Embed the whole training set, assign it with the method's rule and return the
        fraction of labels that changed (also kept in ``state.changed``)."""
        state.embedding = embed(state.autoencoder, state.data)
        return set_labels(state, self._assign(state.embedding, state.centers.detach())[0])

    def _set_method_attributes(self, state):
        """Hook: fitted attributes specific to the method."""

    # ---------------------------------------------------------------- assignment rule
    def _assign(self, Z, centers):
        """The method's hard assignment of embeddings ``Z``: labels and the squared
        distance to the assigned centre (its sum is the inertia ``score`` reports).

        The nearest centre by default. One rule for ``labels_``, ``predict``, ``score`` and
        the training labels that ``tol`` is checked on.
        """
        return nearest_centers(Z, centers)

    # ---------------------------------------------------------------- inference
    def _check_test_data(self, X):
        """``X`` validated as in ``fit`` (:func:`~skdeepcluster._engine.check_host_data`)."""
        return check_host_data(self, X, reset=False)

    def _embed_array(self, X):
        """Embedding of validated ``X`` with the fitted network, a CPU tensor.

        Computed chunk by chunk (``embed``): a memory map is read from its file and a CSR
        matrix densified one chunk at a time, never the whole ``X``. When ``device``
        resolves to a GPU, a copy of the network (stored on the CPU) goes there and the
        chunks are streamed to it; on the CPU nothing is copied.
        """
        device = inference_device(self.device)
        autoencoder = self.autoencoder_
        if device.type != "cpu":
            autoencoder = copy.deepcopy(autoencoder).to(device)
        data = HostData(X, device, torch.float32, keep_on_device=False)
        with precision_scope(self.precision, device):
            return embed(autoencoder, data).cpu()

    def _labels_distances(self, X, Z=None):
        """Labels and squared distances of ``X`` (or of its embedding ``Z`` when given)."""
        if Z is None:
            Z = self._embed_array(X)
        with torch.no_grad():
            labels, dist = self._assign(Z, torch.as_tensor(self.cluster_centers_))
        return labels.numpy().astype(np.int32), dist.numpy()

    def predict(self, X):
        """Cluster of each sample: the nearest centre of its embedding.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self._labels_distances(self._check_test_data(X))[0]

    def fit_predict(self, X, y=None):
        """Fit, then return ``labels_`` (= ``predict(X)`` with the final network).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X).labels_

    def transform(self, X):
        """Latent embedding of each sample (the encoder's output).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components_), float32
        """
        check_is_fitted(self)
        return self._embed_array(self._check_test_data(X)).numpy()

    def score(self, X, y=None):
        """Minus the within-cluster sum of squares of the predicted clusters, in ``X``'s space.

        ``-within_cluster_sum_of_squares(X, self.predict(X))``: each cluster's centre is the
        mean of its samples *in the input space*, so the value is measured with the same
        ruler for every model and hyper-parameter (with the same ``n_clusters``), and
        ``GridSearchCV`` without ``scoring`` ranks candidates by it. A candidate whose
        embedding collapsed several clusters into one scores worse, not better, as it
        would by an inertia in the learned latent space. It favours partitions that are
        compact in the input space; see the user guide's "Model selection" for how it
        ranked candidates on real data, and the other label-free scorers of
        :mod:`skdeepcluster.metrics`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        score : float
        """
        from .metrics import within_cluster_sum_of_squares

        check_is_fitted(self)
        X = self._check_test_data(X)  # validated once, for the labels and the sum
        labels, _ = self._labels_distances(X)
        return -within_cluster_sum_of_squares(X, labels)


class SoftAssignmentMixin:
    """``predict_proba`` for the methods that have soft assignments (their ``_proba``)."""

    def _proba(self, Z, centers):
        """Soft assignment of embeddings ``Z``: rows sum to one, argmax is ``_assign``."""
        raise NotImplementedError

    def predict_proba(self, X):
        """Soft assignment of each sample to the clusters (rows sum to one).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters)
        """
        check_is_fitted(self)
        Z = self._embed_array(self._check_test_data(X))
        with torch.no_grad():
            return self._proba(Z, torch.as_tensor(self.cluster_centers_)).numpy()

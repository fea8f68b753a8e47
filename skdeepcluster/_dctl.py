"""DCTLKMeans: deep convolutional transform learning with k-means embedded (Goel et al. 2022)."""

from dataclasses import dataclass
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseDeepClusterer, FitState, set_labels
from ._distributed import gather_rows, shard_sizes
from ._engine import PRECISIONS, adam_rows_
from ._kmeans import kmeans
from ._losses import log_det_regularizer
from .networks import ConvTransform, code_prior_prox, conv_transform_geometry

__all__ = ["DCTLKMeans"]


@dataclass(eq=False)
class _DCTLState(FitState):
    """DCTLKMeans's fit state: the free codes ``Z`` (one row per sample), their Adam
    moments, the batch's codes of the current step (a leaf whose gradient the codes' step
    reads) and the last centre shift."""

    codes: torch.Tensor | None = None  # (n, p) on the device
    code_moments: tuple | None = None
    batch_codes: torch.Tensor | None = None
    center_shift: float | None = None
    code_variance: float = 1.0


class DCTLKMeans(BaseDeepClusterer):
    """Deep convolutional transform learning with k-means embedded (Goel et al., ICIP 2022).

    Analysis filters ``T_1, T_2`` (no decoder), free codes ``Z`` (one row per sample) and
    k-means centres ``m_k`` minimise (Goel et al., ICIP 2022, eq. 5)

    ``||T_2 • (T_1 • X) − Z||_F² + ψ(Z) + λ Σ_l (||T_l||_F² − log det T_l)
    + μ Σ_i ||z_i − m_{c(i)}||²``,

    where ``T • X`` is the transform (per layer: bias-free zero-padded convolutions, a 2x2
    max-pool, SELU between layers), ``ψ`` a prior on the codes and the last term μ times
    the k-means objective on the codes. ``log det`` of a non-square filter matrix is the sum
    of its log singular values (``log_det_regularizer`` in ``skdeepcluster._losses``): with
    the Frobenius term it keeps the filters independent and bounded, and rules out the
    trivial ``T = 0, Z = 0``. Two blocks alternate until the centres stop moving:

    * **P1** (assignments fixed): one epoch of Adam steps on the filters and the batch's
      codes, each followed by the code prior's proximal step (non-negativity by default);
    * **P2** (filters and codes fixed): k-means on ``Z``, warm-started from the previous
      centres.

    The codes start at the prior's proximal map of the initial transform and the centres
    from k-means on them (``n_init`` restarts). The paper's objective is a sum over the
    samples; here every term is a mean over the mini-batch and the filter regulariser is
    divided by ``n_samples``, which is the same objective divided by ``n_samples`` (so λ
    keeps the paper's meaning). No pretraining: the transform is learned with the
    clustering. ``mu=0`` learns the transform alone (the paper's "piecemeal" ablation, to
    be followed by k-means on ``transform(X)``).

    New data have no free codes: ``transform(X)`` is the learned transform followed by the
    prior's proximal map (the minimiser of ``||T • x − z||² + ψ(z)``) and ``predict`` the
    nearest centre of that; ``labels_ = predict(X)`` (the codes' own k-means labels differ
    where ``Z`` has not met the transform). The paper's input are dense SIFT features
    reduced by PCA to 300 values, filtered with 9x9 filters, without saying how a vector
    meets a 2-D filter: with ``input_shape`` the rows are images and the filters 2-D;
    without, the rows are signals and the filters 1-D (as in its authors' code).

    Names of the paper: ``lam`` is ``λ``, ``mu`` is ``μ``, ``code_prior`` is ``ψ``,
    ``cluster_centers_`` are the means ``Z Hᵀ(HHᵀ)⁻¹``.
    Read more in the :ref:`User Guide <dctl_kmeans>`.

    Parameters
    ----------
    n_clusters : int, default=8
    lam : float, default=1e-3
        ``λ``: weight of the filter regulariser (the paper: 1e-3 in every experiment).
    mu : float, default=1.0
        ``μ``: weight of the k-means term on the codes (the paper: 1). 0 learns the
        transform without clustering.
    n_filters : sequence of int, default=(3, 3)
        Filters per layer (the paper: two layers of 3). On pixel images more and smaller
        filters keep more of the image: ``n_filters=(8, 8), kernel_size=5`` beat KMeans on
        the pixels on USPS where the paper's setting did not (User Guide).
    kernel_size : int, default=9
        Filter side (the paper: 9x9).
    pool_size : int, default=2
    input_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)``: the rows are images, 2-D filters. None: 1-D filters
        over the features.
    code_prior : {"nonneg", "l1"} or None, default="nonneg"
        ``ψ``: non-negative codes (projection, the authors' code), an l1 penalty
        ``code_penalty · ||z||₁`` (soft-thresholding), or none. The paper does not say.
    code_penalty : float, default=0.1
        Weight of the ``"l1"`` prior; ignored otherwise.
    max_iter : int, default=50
        Outer iterations (P1 + P2); the paper's curves converge within about 50.
    tol : float, default=1e-4
        Stop when the centres' squared shift in a P2 step, ``Σ_k ||Δm_k||²``, is at most
        ``tol`` times the codes' mean variance per dimension.
    learning_rate : float, default=1e-3
        Adam step size of P1 (filters and codes).
    batch_size : int, default=256
    n_init : int, default=10
        k-means restarts of the initial clustering of the codes.
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
    precision : {"float32", "bfloat16"}, default="float32"
        Precision of the network's products (``"bfloat16"``: under :class:`torch.autocast`;
        see :class:`AEKMeans` and the :ref:`User Guide <mixed_precision>`).
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every outer iteration.

    Attributes
    ----------
    autoencoder_ : ConvTransform
        The learned transform (CPU, eval mode; no decoder).
    filters_ : list of ndarray
        The filter matrix ``T_l`` of each layer, one column per filter.
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data.
    inertia_ : float
        Sum of squared distances of ``transform(X)`` to the nearest centre.
    n_iter_ : int
        Outer iterations run.
    n_components_ : int
        Size of a code (filters x pooled feature-map size).
    history_ : list of dict
        One record per outer iteration (``phase="cluster"``): ``loss``, ``data``,
        ``clustering``, ``regularizer``, ``center_shift``, ``changed``, ``kmeans_iter``,
        ``seconds``; and the ``"init"`` record.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    DCN : k-means on the embedding of an autoencoder.

    References
    ----------
    A. Goel, A. Majumdar, E. Chouzenoux, G. Chierchia. Deep Convolutional K-Means
    Clustering. ICIP 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeepcluster import DCTLKMeans
    >>> rng = np.random.RandomState(0)
    >>> X = np.vstack([rng.normal(0, 1, (50, 64)), rng.normal(3, 1, (50, 64))])
    >>> model = DCTLKMeans(n_clusters=2, input_shape=(8, 8), kernel_size=3, max_iter=5,
    ...                    random_state=0).fit(X)
    >>> model.transform(X).shape, [T.shape for T in model.filters_]
    ((100, 12), [(9, 3), (27, 3)])
    >>> bool((model.transform(X) >= 0).all())
    True
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "mu": [Interval(Real, 0, None, closed="left")],
        "n_filters": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "pool_size": [Interval(Integral, 1, None, closed="left")],
        "input_shape": [None, tuple, list],
        "code_prior": [StrOptions({"nonneg", "l1"}), None],
        "code_penalty": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str, torch.device, None],
        "precision": [StrOptions(set(PRECISIONS))],
        "callbacks": [None, list, tuple],
    }
    _fit_state = _DCTLState
    _needs_decoder = False

    def __init__(
        self,
        n_clusters=8,
        *,
        lam=1e-3,
        mu=1.0,
        n_filters=(3, 3),
        kernel_size=9,
        pool_size=2,
        input_shape=None,
        code_prior="nonneg",
        code_penalty=0.1,
        max_iter=50,
        tol=1e-4,
        learning_rate=1e-3,
        batch_size=256,
        n_init=10,
        random_state=None,
        verbose=0,
        device="auto",
        precision="float32",
        callbacks=None,
    ):
        self.n_clusters = n_clusters
        self.lam = lam
        self.mu = mu
        self.n_filters = n_filters
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.input_shape = input_shape
        self.code_prior = code_prior
        self.code_penalty = code_penalty
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.precision = precision
        self.callbacks = callbacks

    # ---------------------------------------------------------------- network
    def _check_network_params(self, X):
        conv_transform_geometry(self.input_shape, X.shape[1], self.n_filters,
                                self.kernel_size, self.pool_size)

    def _build_autoencoder(self, n_features):
        return ConvTransform(n_features, self.input_shape, self.n_filters, self.kernel_size,
                             self.pool_size, self.code_prior, self.code_penalty)

    def _pretrain(self, state, X, callbacks):
        """No pretraining: the transform is learned with the clustering."""

    # ---------------------------------------------------------------- hooks
    def _init_clustering(self, state):
        # Z = prox(T • X) (state.embedding, from the initialisation's pass), its k-means.
        state.codes = state.embedding.clone()
        state.code_moments = (torch.zeros_like(state.codes), torch.zeros_like(state.codes),
                              torch.zeros(state.codes.shape[0], dtype=torch.long,
                                          device=state.device))
        state.code_variance = float(state.codes.var(dim=0, correction=0).mean())
        return []

    def _regularizer(self, state):
        return sum(log_det_regularizer(T) for T in state.autoencoder.filter_matrices())

    def _batch_loss(self, state, idx, X_batch):
        S = state.autoencoder.analysis(X_batch)
        Z = state.codes[idx].requires_grad_()
        state.batch_codes = Z
        gap = S - Z
        data = (gap * gap).sum(dim=1).mean()
        residual = Z - state.centers[state.labels[idx]]
        clustering = (residual * residual).sum(dim=1).mean()
        regularizer = self._regularizer(state)
        return {
            "loss": data + self.mu * clustering + self.lam * regularizer / state.data.n_samples,
            "data": data,
            "clustering": clustering,
            "regularizer": regularizer,
        }

    @torch.no_grad()
    def _after_step(self, state, idx, X_batch):
        # The codes' Adam step (their rows only), then the prior's proximal step.
        threshold = self.learning_rate * self.code_penalty
        grad = state.batch_codes.grad
        group = state.data.group
        if group is not None:  # every rank steps the codes of the global batch
            idx, grad = gather_rows(group, idx, grad * idx.numel(),
                                    sizes=shard_sizes(state.data.batch_rows, group))
            grad = grad / idx.numel()
        adam_rows_(state.codes, grad, idx, state.code_moments,
                   self.learning_rate,
                   prox=lambda rows: code_prior_prox(rows, self.code_prior, threshold))
        state.batch_codes = None
        return False

    @torch.no_grad()
    def _epoch_end(self, state):
        # P2: k-means on the codes, warm-started from the previous centres.
        result = kmeans(state.codes, self.n_clusters, 1, state.generator, init=state.centers)
        shift = float(((result.centers - state.centers) ** 2).sum())
        state.centers = result.centers
        state.center_shift = shift
        state.code_variance = float(state.codes.var(dim=0, correction=0).mean())
        changed = set_labels(state, result.labels)
        return {"center_shift": shift, "changed": changed, "kmeans_iter": result.n_iter}

    def _converged(self, state):
        """The centres stopped moving: squared shift ≤ ``tol`` x the codes' mean variance."""
        return state.center_shift is not None and (
            state.center_shift <= self.tol * state.code_variance)

    def _set_method_attributes(self, state):
        self.filters_ = [T.detach().cpu().numpy().copy()
                         for T in state.autoencoder.filter_matrices()]

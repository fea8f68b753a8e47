"""Concrete k-means estimators (Gao, Yang, Gouk, Hospedales, ICASSP 2020)."""

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import (
    _check_sample_weight,
    _is_arraylike_not_scalar,
    check_is_fitted,
    validate_data,
)

from ._base import BaseDeepClusterer
from ._engine import (
    HostData,
    check_random_state_local,
    host_tensor,
    progress_message,
    resolve_device,
    seeded_generator,
)
from ._kmeans import assign_nearest, farthest_points, kmeans_plusplus, squared_distances
from ._losses import (
    concrete_kmeans_center_grad,
    concrete_kmeans_loss,
    gumbel_noise,
    rbf_assignment_proba,
    reconstruction_loss,
)

__all__ = ["ConcreteKMeans", "ShallowConcreteKMeans"]

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _mean_and_variance(X):
    """Per-feature mean and the mean of the per-feature variances of ``X``.

    The mean variance scales scikit-learn's k-means tolerance; the mean is the offset that
    centres the data for precise float32 distances.
    """
    if sp.issparse(X):
        mean, variances = mean_variance_axis(X, axis=0)
        return mean, float(np.mean(variances))
    variances, mean = torch.var_mean(host_tensor(X), dim=0, correction=0)
    return mean.numpy(), float(variances.double().mean())


#: Length of the concrete phase with ``anneal_rate='auto'`` (capped at ``max_iter // 2``).
AUTO_ANNEAL_EPOCHS = 10


def temperature_schedule(tau, tau_min, anneal_rate, max_iter):
    """Temperatures of the concrete phase and its length in epochs.

    ``τ_t = max(τ_min, τ₀ exp(-r t))`` for ``t = 0, 1, …``. The concrete phase lasts until
    ``τ_t`` reaches ``τ_min`` (at most ``max_iter // 2`` epochs, at least 1).
    ``anneal_rate='auto'`` picks ``r`` so that this takes ``AUTO_ANNEAL_EPOCHS`` epochs;
    ``r = 0`` keeps ``τ = τ₀`` for ``AUTO_ANNEAL_EPOCHS`` epochs.

    Returns
    -------
    taus : list of float
        One temperature per epoch of the concrete phase.
    """
    cap = max(max_iter // 2, 1)
    ratio = math.log(tau / tau_min) if tau > tau_min else 0.0
    if anneal_rate == "auto":
        n_epochs = min(AUTO_ANNEAL_EPOCHS, cap)
        rate = ratio / n_epochs
    else:
        rate = float(anneal_rate)
        n_epochs = min(math.ceil(ratio / rate) + 1 if rate > 0 else AUTO_ANNEAL_EPOCHS, cap)
    return [max(tau_min, tau * math.exp(-rate * t)) for t in range(n_epochs)]


class ShallowConcreteKMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin,
                            BaseEstimator):
    """K-means solved by gradient descent with the concrete (Gumbel-softmax) estimator.

    The "shallow" concrete k-means of Gao et al. (2020), §3.3: the encoder and decoder of
    concrete k-means are fixed to the identity and only the centres ``M`` are learnt, by
    stochastic gradient descent on the concrete k-means loss (their eq. 5)::

        L(M) = sum_i w_i || x_i - h_i M ||²

    where ``h_i`` is a one-hot sample of the cluster of ``x_i`` from
    ``p(k | x_i) ∝ exp(-||x_i - μ_k||² / σ²)`` (eq. 3), drawn with the Gumbel-max trick, and
    gradients flow through the relaxed Gumbel-softmax sample of temperature ``τ`` (eq. 4, the
    straight-through estimator). It is a drop-in replacement for
    :class:`sklearn.cluster.KMeans`: same parameters, attributes and methods, ``transform``
    returns distances to the centres.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters ``K``.

    init : {'k-means++', 'random'}, callable or array-like of shape \
            (n_clusters, n_features), default='k-means++'
        Initial centres, as in :class:`~sklearn.cluster.KMeans`: greedy k-means++ (computed
        in torch on the training device), ``n_clusters`` distinct random rows, an array, or a
        callable ``init(X, n_clusters, random_state)`` returning an array.

    n_init : 'auto' or int, default='auto'
        Number of runs with different initial centres; the run with the lowest inertia is
        kept. ``'auto'``: 1 for ``'k-means++'`` or an array, 10 for ``'random'`` or a
        callable (scikit-learn's rule).

    max_iter : int, default=300
        Maximum number of epochs (passes over the data) of a run.

    tol : float, default=1e-4
        Convergence tolerance on the squared centre shift between two consecutive epochs,
        relative to the mean feature variance (scikit-learn's rule).

    verbose : int, default=0
        0 prints nothing; 1 prints one line per epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the shuffling and the Gumbel noise. The global random
        states of torch, numpy and :mod:`random` are left untouched.

    copy_x : bool, default=True
        Accepted for compatibility with :class:`~sklearn.cluster.KMeans`; ``X`` is never
        modified.

    tau : float, default=1.0
        Initial temperature ``τ₀`` of the Gumbel-softmax relaxation (``τ`` in eq. 4 of the
        paper). It only shapes the gradient, not the forward sample.

    tau_min : float, default=0.1
        Lower bound of the annealed temperature.

    anneal_rate : 'auto' or float, default='auto'
        Rate ``r`` of the schedule ``τ_t = max(τ_min, τ₀ exp(-r t))`` over epochs ``t``.
        ``'auto'`` reaches ``τ_min`` after ``AUTO_ANNEAL_EPOCHS`` (10) epochs, at most
        ``max_iter // 2``; ``0`` keeps ``τ = τ₀`` (use it to grid-search a fixed temperature).

    sigma : float, default=0.25
        Bandwidth ``σ`` of the assignment probabilities (eq. 3), in units of the root total
        variance of ``X`` (the RMS distance of the samples to their mean), so that the
        estimator behaves the same whatever the units and the number of features. The default
        0.25 is the paper's ``σ = 1`` on standardised data with 16 features (the UCI setting
        of its Table 2). Larger values sample more often a centre other than the nearest one
        during the concrete phase (more exploration, a softer objective); smaller values
        approach plain mini-batch k-means.

    learning_rate : float, default=1.0
        Multiplier of the per-cluster step size. Centre ``k`` moves by
        ``learning_rate * grad_k / (2 n_k)`` where ``n_k`` is the (weighted) number of samples
        assigned to ``k`` so far in the epoch (a Robbins-Monro step; with 1.0 the direct part
        of the gradient makes each centre the running mean of its sampled members).

    batch_size : int, default=65536
        Mini-batch size. Larger batches are faster per epoch; with ``batch_size >=
        n_samples`` each epoch is one full-batch step.

    device : {'auto', 'cpu', 'cuda', 'cuda:N'}, default='auto'
        Where to train. ``'auto'`` uses CUDA when available. A CUDA device that does not exist
        warns and falls back to the CPU. ``predict``/``transform`` run on the CPU.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of the centres (``M``).

    labels_ : ndarray of shape (n_samples,)
        Nearest-centre label of each training sample (no Gumbel noise).

    inertia_ : float
        Sum of (weighted) squared distances of the training samples to their nearest centre.

    n_iter_ : int
        Number of epochs run by the kept run.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    history_ : list of dict
        One dict per epoch of the kept run: ``epoch``, ``loss`` (mean concrete k-means loss),
        ``center_shift``, ``tau``, ``n_relocated`` (empty clusters moved), ``seconds``.

    See Also
    --------
    sklearn.cluster.KMeans : Lloyd's algorithm.

    Notes
    -----
    The paper gives no optimiser, σ or temperature schedule for the shallow model (Gao et al.
    2020, §3.3); the choices here are this package's:

    * **Concrete phase.** Epochs of shuffled mini-batches. Each batch draws Gumbel noise,
      samples hard assignments, and takes a step on the centres along the straight-through
      gradient (direct part plus the concrete part through the relaxed sample, computed in
      closed form). The step of centre ``k`` is ``learning_rate / (2 n_k)``, ``n_k`` the weight
      sampled into ``k`` so far in the epoch. ``τ`` is annealed from ``tau`` to ``tau_min``
      (10 epochs with ``anneal_rate='auto'``). The phase ends early when the centres settle
      (squared shift over an epoch ``<= tol`` times the mean feature variance).
    * **Refinement.** The limit σ → 0 of the same estimator: the sample is the nearest
      centre, the relaxed sample saturates so the concrete part of the gradient vanishes, and
      the gradient is summed over the whole data for one step per epoch, which with
      ``learning_rate=1`` is a Lloyd iteration. It runs until the centre shift is within
      ``tol`` (or ``max_iter`` epochs in all). This phase is what brings the final inertia to
      Lloyd's level; the concrete phase decides which local minimum is reached.

    Empty clusters (a centre that no sample chose during an epoch) are moved to the points
    farthest from their centres, as :class:`~sklearn.cluster.KMeans` does; a
    :class:`~sklearn.exceptions.ConvergenceWarning` is raised only if the final labels use
    fewer clusters than asked. ``history_`` records the phase of every epoch.

    References
    ----------
    B. Gao, Y. Yang, H. Gouk, T. M. Hospedales. Deep Clustering with Concrete K-Means.
    ICASSP 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeepcluster import ShallowConcreteKMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0],
    ...               [10, 2], [10, 4], [10, 0]], dtype=float)
    >>> km = ShallowConcreteKMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.round(2).tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    >>> km.predict([[0, 0], [12, 3]]).tolist() == [km.labels_[0], km.labels_[3]]
    True
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), callable, "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "copy_x": ["boolean"],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "tau_min": [Interval(Real, 0, None, closed="neither")],
        "anneal_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device, None],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        copy_x=True,
        tau=1.0,
        tau_min=0.1,
        anneal_rate="auto",
        sigma=0.25,
        learning_rate=1.0,
        batch_size=65536,
        device="auto",
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.tau = tau
        self.tau_min = tau_min
        self.anneal_rate = anneal_rate
        self.sigma = sigma
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.device = device

    # ------------------------------------------------------------------ helpers
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[0]

    def _check_params_vs_input(self, X):
        if X.shape[0] < self.n_clusters:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}.")
        self._n_init = self.n_init
        if self._n_init == "auto":
            if isinstance(self.init, str) and self.init == "k-means++":
                self._n_init = 1
            elif (isinstance(self.init, str) and self.init == "random") or callable(self.init):
                self._n_init = 10
            else:
                self._n_init = 1
        if _is_arraylike_not_scalar(self.init) and self._n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"{self.__class__.__name__} instead of n_init={self._n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            self._n_init = 1
        if not self.tau_min <= self.tau:
            raise ValueError(f"tau_min={self.tau_min} should be <= tau={self.tau}.")

    def _validate_center_shape(self, X, centers):
        if centers.ndim != 2 or centers.shape[0] != self.n_clusters:
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match the number "
                f"of clusters {self.n_clusters}."
            )
        if centers.shape[1] != X.shape[1]:
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match the number "
                f"of features of the data {X.shape[1]}."
            )

    def _check_init_array(self, X, centers):
        centers = np.asarray(centers.toarray() if sp.issparse(centers) else centers)
        if not np.issubdtype(centers.dtype, np.number):
            raise ValueError(f"init must be numeric; got an array of dtype {centers.dtype}.")
        centers = centers.astype(X.dtype, copy=False)
        self._validate_center_shape(X, centers)
        if not np.all(np.isfinite(centers)):
            raise ValueError("init contains NaN or infinity.")
        return centers

    def _init_centers(self, X, data, init, random_state, generator):
        if isinstance(init, str) and init == "k-means++":
            centers, _ = kmeans_plusplus(data, self.n_clusters, generator)
            return centers
        if isinstance(init, str) and init == "random":
            idx = torch.randperm(data.n_samples, generator=generator, device=generator.device)
            return data.rows(idx[: self.n_clusters].to(data.device)).clone()
        if callable(init):
            centers = self._check_init_array(X, init(X, self.n_clusters, random_state=random_state))
        else:
            centers = init
        centers = torch.as_tensor(np.array(centers), dtype=data.dtype, device=data.device)
        return centers if data.offset is None else centers - data.offset

    @torch.no_grad()
    def _run(self, data, centers, tol_abs, sigma_abs, taus, generator):
        """One run of mini-batch gradient descent on the concrete k-means loss."""
        K = self.n_clusters
        dtype, device = data.dtype, data.device
        total_weight = (
            float(data.n_samples) if data.sample_weight is None else float(data.sample_weight.sum())
        )
        # Smallest count used in a step denominator: one sample's (mean) weight.
        min_count = total_weight / data.n_samples
        history = []
        centers = centers.clone()
        n_iter = 0
        for epoch in range(self.max_iter):
            # Concrete phase, then the σ → 0 limit of the same estimator (refinement).
            concrete = epoch < len(taus) and sigma_abs > 0
            tau_t = taus[epoch] if concrete else self.tau_min
            sigma_t = sigma_abs if concrete else 0.0
            tic = time.perf_counter()
            old = centers.clone()
            counts = torch.zeros(K, dtype=dtype, device=device)
            loss_sum = torch.zeros((), dtype=dtype, device=device)
            if concrete:
                # Mini-batch steps; centre k moves by lr * grad_k / (2 n_k), n_k its count so
                # far in the epoch (a Robbins-Monro step: the direct part of the gradient makes
                # each centre the running mean of its sampled members).
                batches = data.minibatches(self.batch_size, generator)
            else:
                # σ → 0: the same loss summed over the whole data, one step per epoch; with
                # learning_rate=1 this is exactly a Lloyd iteration.
                batches = data.chunks_with_index()
                grad_sum = torch.zeros_like(centers)
            for idx, xb in batches:
                wb = data.weights(idx)
                noise = None
                if concrete:
                    noise = gumbel_noise((K, xb.shape[0]), generator, device, dtype)
                loss, index, grad = concrete_kmeans_center_grad(
                    xb, centers, tau_t, sigma_t, noise, wb
                )
                counts += torch.bincount(index, weights=wb, minlength=K).to(dtype)
                loss_sum += loss
                if concrete:
                    step = grad / (2.0 * counts.clamp(min=min_count)).unsqueeze(1)
                    centers.sub_(step, alpha=self.learning_rate)
                else:
                    grad_sum += grad
            if not concrete:
                step = grad_sum / (2.0 * counts.clamp(min=min_count)).unsqueeze(1)
                centers.sub_(step, alpha=self.learning_rate)
            n_relocated = 0
            empty = torch.nonzero(counts == 0).flatten()
            if empty.numel() > 0:
                # Move centres that no sample chose to the points farthest from theirs.
                _, dist = assign_nearest(data, centers)
                far = farthest_points(dist, int(empty.numel()))
                centers[empty] = data.rows(far)
                n_relocated = int(empty.numel())
            shift = float(((centers - old) ** 2).sum())
            n_iter = epoch + 1
            record = {
                "phase": "concrete" if concrete else "refine",
                "epoch": n_iter,
                "loss": float(loss_sum) / total_weight,
                "center_shift": shift,
                "tau": tau_t,
                "n_relocated": n_relocated,
                "seconds": time.perf_counter() - tic,
            }
            history.append(record)
            if self.verbose:
                progress_message(
                    f"Epoch {n_iter}, loss {record['loss']:.6g}, center shift {shift:.3g}, "
                    f"tau {tau_t:.3g}"
                )
            converged = shift <= tol_abs and n_relocated == 0
            if concrete and converged:
                # The noisy phase has settled: finish with the deterministic limit.
                taus = taus[:n_iter]
                continue
            if converged:
                if self.verbose:
                    progress_message(f"Converged at epoch {n_iter}: center shift {shift} "
                                     f"within tolerance {tol_abs}.")
                break
        return centers, n_iter, history

    # ------------------------------------------------------------------ API
    def fit(self, X, y=None, sample_weight=None):
        """Compute the centres.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. CSR matrices are accepted and densified one batch at a time.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss, the k-means++ seeding and the inertia.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._validate_params()
        X = validate_data(
            self,
            X,
            accept_sparse="csr",
            dtype=[np.float64, np.float32],
            order="C",
            accept_large_sparse=False,
        )
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=X.dtype, ensure_non_negative=True
        )
        if not sample_weight.sum() > 0:
            raise ValueError("sample_weight must have a positive sum.")
        self._check_params_vs_input(X)
        init = self.init
        if _is_arraylike_not_scalar(init):
            init = self._check_init_array(X, init)
        unweighted = bool(np.all(sample_weight == 1))

        random_state = check_random_state_local(self.random_state)
        device = resolve_device(self.device)
        dtype = _TORCH_DTYPES[X.dtype]
        mean, variance = _mean_and_variance(X)
        tol_abs = variance * self.tol
        # σ is given in units of the root total variance (RMS distance of X to its mean).
        total_variance = variance * X.shape[1]
        sigma_abs = self.sigma * (math.sqrt(total_variance) if total_variance > 0 else 1.0)
        taus = temperature_schedule(self.tau, self.tau_min, self.anneal_rate, self.max_iter)
        # Train on centred data (precise float32 distances); centres are shifted back at the end.
        data = HostData(X, device, dtype, None if unweighted else sample_weight, offset=mean)

        best = None
        for _ in range(self._n_init):
            generator = seeded_generator(random_state.randint(np.iinfo(np.int32).max), device)
            centers = self._init_centers(X, data, init, random_state, generator)
            centers, n_iter, history = self._run(data, centers, tol_abs, sigma_abs, taus,
                                                 generator)
            labels, dist = assign_nearest(data, centers)
            if data.sample_weight is not None:
                dist = dist * data.sample_weight
            inertia = float(dist.sum(dtype=torch.float64))
            if best is None or inertia < best[0]:
                best = (inertia, centers, labels, n_iter, history)

        inertia, centers, labels, n_iter, history = best
        labels = labels.cpu().numpy().astype(np.int32)
        n_distinct = len(np.unique(labels))
        if n_distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than "
                f"n_clusters ({self.n_clusters}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=2,
            )
        centers = centers + data.offset
        self.cluster_centers_ = centers.cpu().numpy().astype(X.dtype, copy=False)
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.history_ = history
        return self

    def _check_test_data(self, X):
        return validate_data(
            self,
            X,
            accept_sparse="csr",
            reset=False,
            dtype=[np.float64, np.float32],
            order="C",
            accept_large_sparse=False,
        )

    def _labels_distances(self, X):
        """Nearest-centre labels and squared distances of validated ``X``, on the CPU."""
        data, centers = self._centred(X)
        labels, dist = assign_nearest(data, centers)
        return labels.numpy().astype(np.int32), dist.numpy()

    def predict(self, X):
        """Index of the nearest centre of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = self._check_test_data(X)
        return self._labels_distances(X)[0]

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return ``labels_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distances of each sample to every centre.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
        """
        check_is_fitted(self)
        X = self._check_test_data(X)
        return self._transform(X)

    def _centred(self, X):
        """``X`` and the centres, both shifted by the centres' mean (precise float32 distances)."""
        dtype = _TORCH_DTYPES[X.dtype]
        centers = torch.as_tensor(self.cluster_centers_, dtype=dtype)
        shift = centers.mean(dim=0)
        return HostData(X, torch.device("cpu"), dtype, offset=shift), centers - shift

    def _transform(self, X):
        dtype = _TORCH_DTYPES[X.dtype]
        data, centers = self._centred(X)
        out = torch.empty((X.shape[0], self.n_clusters), dtype=dtype)
        with torch.no_grad():
            for start, stop, xb in data.chunks():
                out[start:stop] = squared_distances(xb, centers).sqrt_()
        return out.numpy()

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return the distances of ``X`` to the centres.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_clusters)
        """
        return self.fit(X, sample_weight=sample_weight)._transform(self._check_test_data(X))

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the k-means objective of ``X`` (minus the inertia).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        X = self._check_test_data(X)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        _, dist = self._labels_distances(X)
        return -float(np.dot(dist.astype(np.float64), sample_weight))


class ConcreteKMeans(BaseDeepClusterer):
    """Deep concrete k-means (CKM): an autoencoder trained jointly with a k-means loss.

    Gao, Yang, Gouk and Hospedales, *Deep Clustering with Concrete K-Means*, ICASSP 2020,
    §3.2 and Algorithm 1. The objective is

    ``L_AE + λ₁ L_CKM``, with ``L_AE = Σ_i ||x_i − g_φ(f_θ(x_i))||²`` and
    ``L_CKM = Σ_i ||f_θ(x_i) − h̃_i M||²``,

    where ``h̃_i`` is a one-hot sample of the cluster of ``z_i = f_θ(x_i)`` from
    ``p(k | z_i) ∝ exp(−||z_i − μ_k||² / σ²)``, drawn with the Gumbel-max trick and
    differentiated through the Gumbel-softmax relaxation at temperature ``τ``
    (straight-through estimator). The encoder receives gradients from both terms, the decoder
    from ``L_AE`` only and the centres ``M`` from ``L_CKM`` only (one Adam optimiser over all
    parameters gives exactly Algorithm 1's updates).

    Training: ``pretrain_epochs`` epochs of reconstruction (Algorithm 1's first loop,
    ``T₁``); centres initialised by k-means on the pretrained embedding; then ``max_iter``
    epochs of the joint loss with ``τ`` annealed as ``τ_t = max(τ_min, τ₀ e^{−r t})``. Training
    stops early when fewer than ``tol`` of the labels change in an epoch. Losses are summed
    over features and averaged over the batch (the paper's sums, per sample).

    The paper gives no optimiser, learning rate, epochs, σ, τ schedule or λ₁: the defaults
    here are this package's proposals (see the :ref:`User Guide <deep>`).

    Read more in the :ref:`User Guide <deep>`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K``.
    lam : float, default=3.0
        Weight ``λ₁`` of the concrete k-means term. With ``scale_invariant=True`` (the
        default) it weighs ``L_CKM`` divided by the embedding's total variance (below 1 when
        the sampled centres are the nearest ones); with ``scale_invariant=False`` it weighs
        the paper's ``L_CKM`` in the (learned) units of the embedding.
    tau : float, default=1.0
        Initial Gumbel-softmax temperature ``τ₀``.
    tau_min : float, default=0.1
        Final temperature.
    anneal_rate : "auto" or float >= 0, default="auto"
        Rate ``r`` of the exponential annealing; ``"auto"`` reaches ``tau_min`` after half of
        ``max_iter``; 0 keeps ``τ = τ₀`` (so that a grid over ``tau`` is a grid over a fixed
        temperature).
    sigma : float, default=0.1
        Bandwidth ``σ`` of ``p(k | z)``, in units of the root total variance of the
        embedding (the RMS distance of the training embeddings to their mean), re-measured
        after every epoch so that σ follows the learned scale of the embedding (with an
        absolute σ, a shrinking embedding makes ``p(k | z)`` flat, the samples random, and the
        embedding collapses). Same unit as in :class:`ShallowConcreteKMeans`.
    scale_invariant : bool, default=True
        Divide ``L_CKM`` of each mini-batch by the total variance of the batch's embedding
        ``tr Cov(Z_batch)`` (with its gradient), so that the term is the fraction of the
        spread left within clusters and cannot be lowered by shrinking the embedding.
        False gives the paper's loss, whose k-means term the encoder can reduce by
        contracting all codes: on USPS with 200 pretraining epochs that
        contracts the embedding 2.4x within 30 epochs and takes ACC from 0.68 (AE+KM) down
        to 0.59, where the scale-invariant term raises it to 0.70-0.72 (see Notes).
    n_components : int, default=10
        Size ``p`` of the embedding.
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Hidden widths of the MLP autoencoder (``d-500-500-2000-p``).
    activation : str, default="relu"
    autoencoder : None, nn.Module, or callable, default=None
        None builds the MLP from the parameters above. A module instance (with ``encode``
        and ``decode`` methods) is deep-copied; with ``pretrain_epochs=0`` its weights are
        used as they are (e.g. the ``autoencoder_`` of a fitted :class:`AEKMeans`). A class
        or factory is called with ``n_features`` and ``n_components``.
    pretrain : {"adam", "sgd", "greedy"}, default="adam"
        Pretraining recipe of the autoencoder (:ref:`User Guide <deep_pretraining>`):
        ``"adam"`` trains the whole network end to end with Adam; ``"sgd"`` with SGD and
        momentum 0.9 (the DEC-keras MNIST recipe, learning rate 1 on the squared error
        averaged over the features, meant for inputs scaled to [0, 1]); ``"greedy"``
        trains each layer pair as a denoising autoencoder first, then fine-tunes end to
        end (the DEC paper's schedule, here with Adam).
    pretrain_epochs : int or "auto", default="auto"
        Epochs of end-to-end pretraining (``"greedy"`` trains each layer pair for half as
        many before). ``"auto"`` aims at 8 000 optimiser steps of ``batch_size`` samples,
        within 50 to 300 epochs (200 epochs on 10 000 samples, 300 on 1 797). 0 skips
        the pretraining.
    max_iter : int, default=100
        Maximum number of epochs of the joint phase.
    tol : float in [0, 1], default=1e-3
        Stop when the fraction of training labels that change in an epoch is below ``tol``.
    batch_size : int, default=256
    pretrain_learning_rate : float or "auto", default="auto"
        Step size of the pretraining; ``"auto"``: 1e-3 for ``"adam"`` and ``"greedy"``,
        1 for ``"sgd"``.
    memory : str, joblib.Memory or None, default=None
        Cache of the pretrained network: a folder or a :class:`joblib.Memory`. It is keyed
        on the training data, the untrained network (layout and initial weights, set by
        ``random_state``), the pretraining parameters and the device, so that a search over
        clustering parameters (``GridSearchCV``) pretrains once per training set. None
        disables caching.
    learning_rate : float, default=1e-4
        Adam step size ``η`` of the joint phase.
    n_init : int, default=20
        k-means restarts for the initial centres.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, k-means and the Gumbel noise.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar per phase (``tqdm`` if installed, otherwise
        one line per epoch on stderr).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every epoch; True stops the phase.

    Attributes
    ----------
    autoencoder_ : torch.nn.Module
        Trained network (CPU, eval mode).
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
        Centres ``M`` in the latent space.
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data (nearest centre, no noise).
    inertia_ : float
        Sum of squared latent distances of the training data to their centre.
    sigma_ : float
        Absolute bandwidth ``σ`` used in training and by ``predict_proba``.
    pretrain_epochs_ : int
        Epochs of end-to-end pretraining (``pretrain_epochs`` with ``"auto"`` resolved).
    n_iter_ : int
        Epochs of the joint phase run.
    n_components_ : int
    history_ : list of dict
        One record per epoch, in order. All have ``phase``, ``epoch`` and ``seconds``;
        "pretrain" records add ``reconstruction``; the single "init" record (k-means in the
        latent space) adds ``inertia`` and ``kmeans_iter``; "cluster" records add ``loss``,
        ``reconstruction``, ``clustering``, ``tau``, ``sigma`` (absolute) and ``changed``
        (fraction of training labels changed in the epoch). A record after which a callback
        stopped the phase has ``stopped_by_callback=True``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    Notes
    -----
    ``scale_invariant=True`` departs from the paper's objective, which is
    ``L_AE + λ₁ L_CKM`` with ``L_CKM`` in the units of the embedding. The network chooses
    those units: the decoder can undo any rescaling of the codes, so the cheapest way to
    lower ``L_CKM`` is to shrink every code, and the gradient that does so also pulls each
    code towards the centre it happens to be assigned to, hardening early mistakes. With
    the batch's total variance as denominator the term becomes
    ``Σ_i ||z_i − h̃_i M||² / Σ_i ||z_i − z̄||²`` (one minus the fraction of variance
    explained by the clusters), which only rewards separating clusters. Measured on USPS
    (seed 0, 30 joint epochs from the same pretrained network, AE+KM ACC/NMI
    0.684/0.660): paper loss ``λ₁=1`` 0.589/0.545, ``λ₁=5`` 0.589/0.620; scale-invariant
    ``λ₁=1`` 0.697/0.676, ``λ₁=3`` 0.705/0.684, ``λ₁=10`` 0.716/0.695.

    See Also
    --------
    ShallowConcreteKMeans : the same loss on the raw features (no network).
    AEKMeans : the two-step baseline.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import ConcreteKMeans
    >>> X, y = make_blobs(n_samples=200, centers=3, n_features=8, random_state=0)
    >>> ckm = ConcreteKMeans(n_clusters=3, hidden_dims=(32,), n_components=2,
    ...                      pretrain_epochs=20, max_iter=10, random_state=0).fit(X)
    >>> ckm.predict_proba(X[:2]).shape
    (2, 3)
    >>> bool((ckm.predict(X) == ckm.labels_).all())
    True
    """

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "lam": [Interval(Real, 0, None, closed="left")],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "tau_min": [Interval(Real, 0, None, closed="neither")],
        "anneal_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "scale_invariant": ["boolean"],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        lam=3.0,
        tau=1.0,
        tau_min=0.1,
        anneal_rate="auto",
        sigma=0.1,
        scale_invariant=True,
        n_components=10,
        hidden_dims=(500, 500, 2000),
        activation="relu",
        autoencoder=None,
        pretrain="adam",
        pretrain_epochs="auto",
        max_iter=100,
        tol=1e-3,
        batch_size=256,
        pretrain_learning_rate="auto",
        memory=None,
        learning_rate=1e-4,
        n_init=20,
        random_state=None,
        verbose=0,
        device="auto",
        callbacks=None,
    ):
        self.n_clusters = n_clusters
        self.lam = lam
        self.tau = tau
        self.tau_min = tau_min
        self.anneal_rate = anneal_rate
        self.sigma = sigma
        self.scale_invariant = scale_invariant
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.pretrain_learning_rate = pretrain_learning_rate
        self.memory = memory
        self.learning_rate = learning_rate
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.callbacks = callbacks

    def _check_method_params(self, X):
        if not self.tau_min <= self.tau:
            raise ValueError(f"tau_min={self.tau_min} should be <= tau={self.tau}.")

    def _temperature(self, epoch):
        """``τ_t = max(τ_min, τ₀ e^{−r t})`` at epoch ``t = epoch − 1`` of the joint phase."""
        if self.anneal_rate == "auto":
            n_anneal = max(self.max_iter // 2 - 1, 1)
            rate = math.log(self.tau / self.tau_min) / n_anneal
        else:
            rate = float(self.anneal_rate)
        return max(self.tau_min, self.tau * math.exp(-rate * (epoch - 1)))

    def _absolute_sigma(self, Z):
        """``sigma`` in units of the root total variance of the embedding ``Z``, and that
        total variance."""
        total_variance = float(torch.var(Z, dim=0, correction=0).sum())
        scale = math.sqrt(total_variance) if total_variance > 0 else 1.0
        return self.sigma * scale, total_variance

    def _measure_embedding(self, state):
        state.sigma, state.total_variance = self._absolute_sigma(state.embedding)

    def _init_clustering(self, state):
        self._measure_embedding(state)
        state.centers = torch.nn.Parameter(state.centers.clone())
        state.tau = self.tau
        return [state.centers]

    def _epoch_begin(self, state, epoch):
        # σ follows the scale of the embedding (measured on the whole training set after
        # each epoch): with a fixed σ, a shrinking embedding would make p(k|z) flat and the
        # sampled assignments random, which drives the embedding to collapse.
        self._measure_embedding(state)
        state.tau = self._temperature(epoch)
        return {"tau": state.tau, "sigma": state.sigma}

    def _batch_loss(self, state, idx, X_batch, epoch):
        ae = state.autoencoder
        Z = ae.encode(X_batch)
        reconstruction = reconstruction_loss(ae.decode(Z), X_batch, self._reconstruction_reduction)
        noise = gumbel_noise((Z.shape[0], self.n_clusters), state.generator, Z.device, Z.dtype)
        clustering, _ = concrete_kmeans_loss(Z, state.centers, state.tau, state.sigma, noise)
        clustering = clustering / Z.shape[0]
        if self.scale_invariant:
            clustering = clustering / self._batch_total_variance(Z, state)
        return {
            "loss": reconstruction + self.lam * clustering,
            "reconstruction": reconstruction,
            "clustering": clustering,
        }

    @staticmethod
    def _batch_total_variance(Z, state):
        """Total variance of the batch's embedding, differentiable (the scale of ``L_CKM``).

        A batch of one row has no spread: the last total variance of the whole embedding
        (a constant) stands in for it.
        """
        if Z.shape[0] > 1:
            variance = torch.var(Z, dim=0, correction=0).sum()
        else:
            variance = Z.new_tensor(state.total_variance)
        return variance.clamp_min(torch.finfo(Z.dtype).tiny)

    def _set_method_attributes(self, state):
        self.sigma_, _ = self._absolute_sigma(state.embedding)

    def _assignment_proba(self, Z, centers):
        return rbf_assignment_proba(Z, centers, self.sigma_)

"""ShallowConcreteKMeans: k-means by the concrete estimator, a drop-in for KMeans."""

import math
import mmap
import warnings
from numbers import Integral, Real
from typing import NamedTuple

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

from ._engine import (
    HostData,
    caller_stacklevel,
    check_callbacks,
    check_random_state_local,
    forget_fit,
    host_tensor,
    minibatch_pass,
    resolve_device,
    seeded_generator,
)
from ._kmeans import (
    KMeansRuns,
    assign_nearest,
    kmeans_plusplus,
    lloyd,
    relocate_empty,
    run_offsets,
    squared_distances,
    weighted_bincount,
)
from ._losses import (
    absolute_sigma,
    anneal_rate,
    concrete_kmeans_center_grad,
    gumbel_noise,
    temperature,
)
from ._threads import torch_threads

__all__ = ["ShallowConcreteKMeans"]


class _ShallowRun(NamedTuple):
    """The best run of :class:`ShallowConcreteKMeans` (lowest inertia)."""

    centers: torch.Tensor
    labels: torch.Tensor
    inertia: float
    n_iter: int
    history: list


_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _memory_mapped(X):
    """Whether the dense array ``X`` is (a view of) a memory map."""
    base = X
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


def _centre(X, dtype):
    """The data centred on their mean, the mean, and the mean of the per-feature variances.

    The mean variance scales scikit-learn's k-means tolerance; the centred data (a copy for a
    dense ``X``, as KMeans makes; a sparse ``X`` is returned as is and centred per batch)
    keep float32 distances precise. The variance is computed on the centred copy: one pass
    for the mean, one for the copy, one for the squares. A memory-mapped ``X`` is not copied
    either (it is centred per batch).
    """
    if sp.issparse(X):
        mean, variances = mean_variance_axis(X, axis=0)
        return X, torch.as_tensor(mean, dtype=dtype), float(np.mean(variances))
    if _memory_mapped(X):
        # Data beyond RAM stay on disk: no copy, centred one batch at a time.
        variances, mean = torch.var_mean(host_tensor(X), dim=0, correction=0)
        return X, mean, float(variances.double().mean())
    X = host_tensor(X)
    mean = X.mean(dim=0)
    centred = X - mean
    sq_norm = torch.linalg.vector_norm(centred, dim=0).double().square().sum()
    return centred, mean, float(sq_norm) / X.numel()


#: Largest (runs x clusters x batch rows) computed together: the ``n_init`` runs are split
#: into groups whose per-step intermediates stay within this many values (16 MiB in float32).
RUN_GROUP_VALUES = 2**22

#: A step whose (runs x clusters x batch rows) arrays are smaller than this runs on one torch
#: thread (see ``_threads.torch_threads``): its operations take well under a millisecond, so
#: waking a second thread gains little on a quiet machine, and on a busy one every operation
#: waits for a descheduled thread (2-3x slower with one busy process on 2 cores, far worse
#: under heavier load; ``benchmarks/results/shallow_kmeans.md``).
SINGLE_THREAD_STEP_VALUES = 2**22


def _single_threaded(n_samples, n_clusters, n_runs, batch_size):
    return n_runs * n_clusters * min(n_samples, batch_size) < SINGLE_THREAD_STEP_VALUES


#: Length of the concrete phase with ``anneal_rate='auto'`` (capped at ``max_iter // 2``).
AUTO_ANNEAL_EPOCHS = 10

#: Rows the concrete phase trains on at most: a larger training set contributes a random
#: subset of this many rows, one per group of runs. The phase only chooses the basin that the
#: Lloyd refinement, on every row, then descends; a random 65 536 rows place the centres
#: as a million do, at a fraction of the cost per epoch.
CONCRETE_MAX_ROWS = 2**16


def concrete_phase_length(tau, tau_min, rate, max_iter):
    """Epochs of the concrete phase: until ``τ_t`` reaches ``τ_min`` under the shared schedule
    (:func:`~skdeepcluster._losses.temperature`), ``AUTO_ANNEAL_EPOCHS`` for a constant
    temperature, at least 1 and at most ``max_iter // 2``."""
    cap = max(max_iter // 2, 1)
    ratio = math.log(tau / tau_min) if tau > tau_min else 0.0
    n_epochs = math.ceil(ratio / rate) + 1 if rate > 0 else AUTO_ANNEAL_EPOCHS
    return max(1, min(n_epochs, cap))


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
        callable (scikit-learn's rule). Runs are computed together in groups, and the
        runs of a group share each step's Gumbel noise (each run's noise is still standard
        Gumbel; only the runs' draws are not independent of each other).

    max_iter : int, default=300
        Maximum number of epochs (passes over the data) of a run.

    tol : float, default=1e-4
        Convergence tolerance on the squared centre shift between two consecutive epochs,
        relative to the mean feature variance (scikit-learn's rule).

    verbose : int, default=0
        0 prints nothing; 1 shows a progress bar per phase (``pip install tqdm``; without
        it, one line per epoch on stderr), as the deep estimators do.

    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the shuffling (when ``batch_size`` is smaller than the
        data; one batch of every row is not shuffled) and the Gumbel noise. The global random
        states of torch, numpy and :mod:`random` are left untouched.

    copy_x : bool, default=True
        Accepted for compatibility with :class:`~sklearn.cluster.KMeans`; ``X`` is never
        modified (a dense ``X`` in memory is centred in a copy, as KMeans does with
        ``copy_x=True``; a memory-mapped or sparse ``X`` is read in place and centred one
        batch at a time).

    algorithm : {'lloyd', 'elkan'}, default='lloyd'
        Accepted for compatibility with :class:`~sklearn.cluster.KMeans`. Both values run
        this estimator's method (the concrete phase, then the Lloyd refinement); Elkan's
        triangle-inequality bounds are not used, so ``'elkan'`` gives exactly the result of
        ``'lloyd'``.

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
        approach plain mini-batch k-means. A smaller value helped on 100 well-separated
        synthetic clusters but was worse on real data with 25-60 clusters (see the
        :ref:`User Guide <shallow_speed>`).

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

    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every epoch of each phase
        (``"concrete"``, then ``"refine"``), as for the deep estimators; True stops that
        phase. ``record`` holds ``phase``, ``epoch`` and, with one run (``n_init=1``), the
        run's ``loss``, ``center_shift``, ``tau``, ...; with several runs trained together,
        the number still active (``n_active``) and the lowest ``loss``.

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
        ``center_shift``, ``tau``, ``n_relocated`` (empty clusters moved), ``seconds``
        (of the epoch of all the runs computed together, see Notes).

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
    * **Large data.** With more than 65 536 rows the concrete phase trains on a random
      subset of 65 536 of them (one per group of runs computed together); the refinement
      runs on every row.
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

    **Speed.** The ``n_init`` runs are computed together, in one pass over the data per
    epoch (the centres of all runs in one matrix product; a run that has converged drops
    out), in groups that keep a step's intermediates within 2**22 values (16 MiB). The concrete
    phase computes in float32 whatever the input's precision (its Gumbel noise needs no
    more); the refinement and the reported inertia use the input's dtype. Unless a step's
    (runs x clusters x batch rows) arrays reach 2**22 values, the fit runs on one torch
    thread: its operations are too short for a second thread to pay off, and on a busy
    machine every parallel operation would wait for a descheduled thread. The thread count
    is restored after ``fit``. Measured times against :class:`~sklearn.cluster.KMeans` are in the
    :ref:`User Guide <user_guide>`.

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
        "callbacks": [None, list, tuple],
        "algorithm": [StrOptions({"lloyd", "elkan"})],
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
        algorithm="lloyd",
        tau=1.0,
        tau_min=0.1,
        anneal_rate="auto",
        sigma=0.25,
        learning_rate=1.0,
        batch_size=65536,
        device="auto",
        callbacks=None,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.callbacks = callbacks
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
                stacklevel=caller_stacklevel(),
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

    def _init_centers(self, X, data, init, n_runs, random_state, generator, offset):
        """Initial centres of ``n_runs`` runs, shape (n_runs, n_clusters, n_features)."""
        if isinstance(init, str) and init == "k-means++":
            return kmeans_plusplus(data, self.n_clusters, generator, n_runs=n_runs)[0]
        runs = []
        for _ in range(n_runs):
            if isinstance(init, str) and init == "random":
                idx = torch.randperm(data.n_samples, generator=generator,
                                     device=generator.device)
                runs.append(data.rows(idx[: self.n_clusters].to(data.device)))
                continue
            if callable(init):
                centers = self._check_init_array(
                    X, init(X, self.n_clusters, random_state=random_state))
            else:
                centers = init
            centers = torch.as_tensor(np.array(centers), dtype=data.dtype, device=data.device)
            runs.append(centers - offset)
        return torch.stack(runs)

    @torch.no_grad()
    def _concrete_phase(self, data, centers, tol_abs, sigma_abs, rate, n_epochs, generator,
                        histories):
        """Mini-batch gradient descent on the concrete k-means loss (the engine's epoch loop),
        for ``r`` runs at once (``centers`` of shape (r, k, d)).

        Centre ``k`` moves by ``learning_rate * grad_k / (2 n_k)``, ``n_k`` its (weighted)
        count so far in the epoch: a Robbins-Monro step with which the direct part of the
        gradient makes each centre the running mean of its sampled members. A run ends after
        ``n_epochs`` epochs or once its centres settle; the others go on without it.
        """
        R, K, _ = centers.shape
        dtype, device = data.dtype, data.device
        total_weight = (float(data.n_samples) if data.sample_weight is None
                        else float(data.sample_weight.sum()))
        # Smallest count used in a step denominator: one sample's (mean) weight.
        min_count = total_weight / data.n_samples
        centers = centers.clone()
        runs = KMeansRuns(R, phase="concrete", max_epochs=n_epochs, histories=histories,
                          tol_abs=tol_abs)

        def run_epoch(epoch):
            tau_t = temperature(self.tau, self.tau_min, rate, epoch - 1)
            A = len(runs.active)
            idx = runs.active_index(device)  # None: every run active, updated in place
            C = centers if idx is None else centers[idx]
            old = C.clone()
            counts = torch.zeros(A * K, dtype=dtype, device=device)
            loss_sum = torch.zeros(A, dtype=dtype, device=device)
            offsets = run_offsets(A, K, device) if A > 1 else None

            def step(bidx, xb):
                wb = data.weights(bidx)
                # One draw of noise for every run of the group (broadcast over the runs):
                # each run still sees standard Gumbel noise, at 1/A of the drawing cost,
                # about 40 % of a step's time with ten runs on small data.
                noise = gumbel_noise((1, K, xb.shape[0]), generator, device, dtype)
                loss, index, grad = concrete_kmeans_center_grad(xb, C, tau_t, sigma_abs, noise,
                                                                wb, data.sq_norms(bidx))
                flat = index.flatten() if offsets is None else (index + offsets).flatten()
                counts.add_(weighted_bincount(flat, None if wb is None else wb.repeat(A),
                                              A * K, dtype))
                step = grad / (2.0 * counts.view(A, K).clamp(min=min_count)).unsqueeze(-1)
                C.sub_(step, alpha=self.learning_rate)
                loss_sum.add_(loss)
                return {"loss": loss.sum() / xb.shape[0]}, False

            # One batch of every row: its gradient is the same in any order, so the rows
            # are not shuffled (and the generator draws only the noise).
            minibatch_pass(data, self.batch_size, generator, step, phase="concrete",
                           epoch=epoch, shuffle=self.batch_size < data.n_samples)
            counts = counts.view(A, K)
            n_relocated = [0] * A
            for j in torch.nonzero((counts == 0).any(dim=1)).flatten().tolist():
                # Centres that no sample chose move to the points farthest from theirs.
                _, dist = assign_nearest(data, C[j])
                n_relocated[j] = int(relocate_empty(C[j], counts[j], data, dist)[0].numel())
            if idx is not None:
                centers[idx] = C
            return {"loss": (loss_sum / total_weight).tolist(),
                    "center_shift": ((C - old) ** 2).sum(dim=(1, 2)).tolist(), "tau": tau_t,
                    "n_relocated": n_relocated}

        runs.run(run_epoch, self.verbose, self, self._callbacks)
        n_run = runs.n_done
        return centers, n_run

    def _run_group(self, X, data, concrete_data, offset, init, n_runs, random_state, tol_abs,
                   sigma_abs, device):
        """``n_runs`` runs computed together: initial centres, the concrete phase, then the
        σ → 0 limit of the same estimator, which is Lloyd's iteration (with
        ``learning_rate`` as its step). Returns the run of lowest inertia."""
        generator = seeded_generator(random_state.randint(np.iinfo(np.int32).max), device)
        centers = self._init_centers(X, data, init, n_runs, random_state, generator, offset)
        if data.n_samples > CONCRETE_MAX_ROWS:  # the group's random subset, in float32
            subset = torch.randperm(data.n_samples, generator=generator,
                                    device=generator.device)[:CONCRETE_MAX_ROWS]
            concrete_data = data.take(torch.sort(subset).values, torch.float32)
        rate = anneal_rate(self.tau, self.tau_min, self.anneal_rate,
                           min(AUTO_ANNEAL_EPOCHS, max(self.max_iter // 2, 1)))
        n_concrete = concrete_phase_length(self.tau, self.tau_min, rate, self.max_iter)
        histories = [[] for _ in range(n_runs)]
        centers, n_run = self._concrete_phase(concrete_data, centers.to(concrete_data.dtype),
                                              tol_abs, sigma_abs, rate, n_concrete, generator,
                                              histories)
        centers = centers.to(data.dtype)
        result = lloyd(data, centers, max_iter=[self.max_iter - n for n in n_run],
                       tol_abs=tol_abs, step_size=self.learning_rate, phase="refine",
                       history=histories, verbose=self.verbose,
                       first_epoch=[n + 1 for n in n_run], owner=self,
                       callbacks=self._callbacks)
        best = int(torch.argmin(result.inertia))
        return _ShallowRun(result.centers[best], result.labels[best],
                           float(result.inertia[best]), n_run[best] + result.n_iter[best],
                           histories[best])

    def _group_size(self, n_samples):
        """Runs computed together: as many as keep one step's (runs x clusters x batch)
        intermediates within ``RUN_GROUP_VALUES``."""
        per_run = self.n_clusters * min(n_samples, self.batch_size)
        return max(1, min(self._n_init, RUN_GROUP_VALUES // per_run))

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
        try:
            return self._fit(X, sample_weight)
        except BaseException:
            forget_fit(self)  # a failed or interrupted fit leaves the estimator unfitted
            raise

    def _fit(self, X, sample_weight):
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
        self._callbacks = check_callbacks(self.callbacks)
        init = self.init
        if _is_arraylike_not_scalar(init):
            init = self._check_init_array(X, init)
        unweighted = bool(np.all(sample_weight == 1))

        random_state = check_random_state_local(self.random_state)
        device = resolve_device(self.device)
        group = self._group_size(X.shape[0])
        # The whole fit, centring included, on one thread when its steps are small (on a
        # busy machine a second thread makes even the set-up's passes over X many times
        # slower: every operation waits for a descheduled thread).
        one_thread = _single_threaded(X.shape[0], self.n_clusters, group, self.batch_size)
        with torch_threads(1 if one_thread else None):
            centers, labels, inertia, n_iter, history = self._fit_runs(
                X, init, sample_weight, unweighted, random_state, device, group)
        labels = labels.cpu().numpy().astype(np.int32)
        n_distinct = len(np.unique(labels))
        if n_distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({n_distinct}) found smaller than "
                f"n_clusters ({self.n_clusters}); cluster sizes "
                f"{np.bincount(labels, minlength=self.n_clusters).tolist()}. Possibly due "
                "to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        self.cluster_centers_ = centers.cpu().numpy().astype(X.dtype, copy=False)
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self.history_ = history
        return self

    def _fit_runs(self, X, init, sample_weight, unweighted, random_state, device, group):
        """Centre the data, run the ``n_init`` runs in groups of ``group``; the best run
        (lowest inertia), its centres shifted back to the input's coordinates."""
        dtype = _TORCH_DTYPES[X.dtype]
        centred, offset, variance = _centre(X, dtype)
        offset = offset.to(device)
        tol_abs = variance * self.tol
        # σ is given in units of the root total variance (RMS distance of X to its mean).
        sigma_abs = absolute_sigma(self.sigma, variance * X.shape[1])
        # Train on centred data (precise float32 distances); centres are shifted back at the
        # end. The concrete phase computes in float32 whatever the input's precision.
        weights = None if unweighted else sample_weight
        if centred is X:  # sparse or memory-mapped: centred one batch at a time
            data = HostData(X, device, dtype, weights, offset=offset.cpu().numpy())
            concrete_data = data
            if sp.issparse(X) and dtype != torch.float32:
                concrete_data = HostData(X, device, torch.float32, weights,
                                         offset=offset.cpu().numpy())
        else:
            data = HostData(centred, device, dtype, weights)
            concrete_data = data
            if dtype != torch.float32 and X.shape[0] <= CONCRETE_MAX_ROWS:  # else a subset
                concrete_data = HostData(centred.to(torch.float32), device, torch.float32,
                                         weights)
        best = None
        for start in range(0, self._n_init, group):
            run = self._run_group(X, data, concrete_data, offset, init,
                                  min(group, self._n_init - start), random_state, tol_abs,
                                  sigma_abs, device)
            if best is None or run.inertia < best.inertia:
                best = run
        return best._replace(centers=best.centers + offset)

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



"""The one k-means of the package, in torch, on the training device, and its one GMM.

Squared distances, the nearest-centre rule, k-means++ seeding, Lloyd's loop with
empty-cluster relocation, the ``n_init`` driver and DCN's count-based centre update. Every
estimator that keeps k-means centres calls these (initialisation, refits, refinement).
The Gaussian mixture pieces (log-densities through Cholesky factors, responsibilities by
log-sum-exp, the M-step with a ridge and re-seeded empty components) serve
DeepClusterADMM's ``clustering="gmm"``.
"""

import contextlib
import math
import time
from typing import NamedTuple

import torch

from ._onednn import product_nt

__all__ = [
    "GaussianMixtureParams",
    "KMeansResult",
    "KMeansRuns",
    "assign_nearest",
    "autocast_dtype",
    "centers_from_sums",
    "count_based_center_update",
    "farthest_points",
    "gmm_from_partition",
    "gmm_log_resp",
    "gmm_m_step",
    "gmm_precisions",
    "index_add_rows_",
    "kmeans",
    "kmeans_plusplus",
    "lloyd",
    "lloyd_step",
    "max_over_clusters",
    "nearest_centers",
    "relocate_empty",
    "rows_of",
    "run_offsets",
    "squared_distances",
    "weighted_bincount",
]


#: Values (rows x categories) per one-hot block of :func:`index_add_rows_` on CUDA.
ONE_HOT_VALUES = 2**22


def autocast_dtype(device_type):
    """The dtype :class:`torch.autocast` computes in on ``device_type`` now, or None when off."""
    try:
        on = torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        on = (torch.is_autocast_enabled() if device_type == "cuda"
              else torch.is_autocast_cpu_enabled())
    if not on:
        return None
    try:
        return torch.get_autocast_dtype(device_type)
    except AttributeError:  # torch < 2.4
        return (torch.get_autocast_gpu_dtype() if device_type == "cuda"
                else torch.get_autocast_cpu_dtype())


def _autocast_off(device_type):
    """A context that turns autocast off when it is on (else a no-op, cheaper to enter)."""
    if autocast_dtype(device_type) is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, enabled=False)


def _full_precision(t):
    """``t`` in float32 when autocast made it bfloat16 or float16 (else unchanged)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def index_add_rows_(out, index, values):
    """``out[index[i]] += values[i]`` along the first axis, the same result on every run.

    On the CPU this is ``index_add_``. CUDA's ``index_add_`` (and ``bincount`` with weights)
    adds with atomics in an order that changes from run to run, so k-means, and with it a
    whole fit, would not be reproducible; there the sums are one-hot matrix products in
    float64 (blocks of ``ONE_HOT_VALUES`` one-hot entries, 32 MB), which cuBLAS computes
    the same way every run and which TF32 settings do not round.

    Parameters
    ----------
    out : Tensor of shape (k,) or (k, d)
        Updated in place.
    index : LongTensor of shape (n,)
    values : Tensor of shape (n,) or (n, d)

    Returns
    -------
    out
    """
    if out.device.type != "cuda":
        return out.index_add_(0, index, values.to(out.dtype))
    return one_hot_sums_(out, index, values)


def one_hot_sums_(out, index, values):
    """:func:`index_add_rows_` as float64 one-hot matrix products (any device; used on
    CUDA)."""
    k = out.shape[0]
    rows = values if values.dim() == 2 else values.unsqueeze(1)
    total = torch.zeros((k, rows.shape[1]), dtype=torch.float64, device=out.device)
    block = max(1, ONE_HOT_VALUES // k)
    for start in range(0, index.shape[0], block):
        part = index[start:start + block]
        one_hot = torch.zeros((part.shape[0], k), dtype=torch.float64, device=out.device)
        one_hot.scatter_(1, part.unsqueeze(1), 1.0)  # one write per row: no race
        total.addmm_(one_hot.T, rows[start:start + block].to(torch.float64))
    out += total.view(out.shape).to(out.dtype)
    return out


class _RowsOf(torch.autograd.Function):
    """``table[index]`` whose gradient is summed by :func:`index_add_rows_`."""

    @staticmethod
    def forward(ctx, table, index):
        ctx.save_for_backward(index)
        ctx.table_shape = table.shape
        return table[index]

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        table_grad = grad.new_zeros(ctx.table_shape)
        return index_add_rows_(table_grad, index, grad), None


def rows_of(table, index):
    """``table[index]`` (rows along the first axis) with a reproducible gradient on CUDA,
    where indexing's backward adds the rows' gradients with atomics (see
    :func:`index_add_rows_`). On the CPU, plain indexing."""
    if table.device.type == "cuda" and table.requires_grad and torch.is_grad_enabled():
        return _RowsOf.apply(table, index)
    return table[index]


def weighted_bincount(index, weights, minlength, dtype):
    """``bincount`` of ``index`` (weighted by ``weights`` when not None) as ``dtype``,
    reproducible on CUDA (see :func:`index_add_rows_`)."""
    if weights is None or index.device.type != "cuda":  # integer counts are exact anyway
        return torch.bincount(index, weights=weights, minlength=minlength).to(dtype)
    out = torch.zeros(minlength, dtype=dtype, device=index.device)
    return index_add_rows_(out, index, weights)


def squared_distances(X, centers, X_sq=None):
    """Squared Euclidean distances between the rows of ``X`` and of ``centers``.

    Uses ``||x||² - 2 x·μ + ||μ||²`` (one matrix product) clipped at zero.

    Parameters
    ----------
    X : Tensor of shape (n, d)
    centers : Tensor of shape (k, d)
    X_sq : Tensor of shape (n,), optional
        Precomputed ``||x||²``.

    Returns
    -------
    Tensor of shape (n, k)
    """
    # In full precision also under autocast: the three terms cancel, and in bfloat16 the
    # distances of nearby points would be rounding noise.
    with _autocast_off(X.device.type):
        X, centers = _full_precision(X), _full_precision(centers)
        if X_sq is None:
            X_sq = (X * X).sum(dim=1)
        c_sq = (centers * centers).sum(dim=1)
        D = torch.addmm(c_sq.unsqueeze(0), X, centers.T, alpha=-2.0)
        D += _full_precision(X_sq).unsqueeze(1)
        return D.clamp_(min=0.0)


def center_scores(centers, X):
    """The nearest-centre rule: scores ``s_ki = μ_k·x_i - ||μ_k||²/2``, shape (k, n).

    ``argmax_k s_ki`` is the nearest centre of ``x_i`` and ``||x_i - μ_k||² = ||x_i||² - 2 s_ki``.
    Centre-major, so that reductions over the few clusters run along the first axis (several
    times faster than over a short last axis on the CPU). Every assignment in the package goes
    through this function. Centres of shape (r, k, d) (``r`` runs of k-means computed together)
    give scores of shape (r, k, n), from one matrix product.
    """
    if centers.dim() == 3:
        r, k, d = centers.shape
        return center_scores(centers.reshape(r * k, d), X).view(r, k, X.shape[0])
    with _autocast_off(X.device.type):  # full precision, as above
        X, centers = _full_precision(X), _full_precision(centers)
        half_c_sq = 0.5 * (centers * centers).sum(dim=1, keepdim=True)
        product = product_nt(centers, X)
        if product is not None:  # oneDNN (x86 CPUs where torch's float32 GEMM is slow)
            return product.sub_(half_c_sq)
        return torch.addmm(half_c_sq, centers, X.T, alpha=1.0, beta=-1.0)


#: Score arrays with fewer values than this take torch's ``max`` (values and indices) directly.
_SMALL_ARGMAX = 2**16


def max_over_clusters(scores):
    """Largest score over the clusters (axis -2) and its index: the assignment rule's argmax.

    Equal to ``scores.max(dim=-2)`` (the first index among ties); on the CPU that kernel is
    several times slower than ``amax`` for large arrays, so the index is recovered from the
    positions that equal the maximum. A NaN column gets the last index (the loss, also NaN,
    reports the divergence).
    """
    k = scores.shape[-2]
    if scores.numel() < _SMALL_ARGMAX or k > 255:
        return scores.max(dim=-2)
    best = scores.amax(dim=-2, keepdim=True)
    # Rank k for the first cluster down to 1 for the last, kept where the score equals the
    # maximum: the largest kept rank is the first maximum. In bytes (k <= 255), whose
    # product and maximum run on four times as many values per vector instruction as
    # float32's (about 1.7x faster for this step than in float32).
    rank = torch.arange(k, 0, -1, dtype=torch.uint8, device=scores.device).unsqueeze(1)
    first = torch.eq(scores, best).view(torch.uint8).mul_(rank).amax(dim=-2)
    index = (k - first.long()).clamp_(max=k - 1)
    return best.squeeze(-2), index


@torch.no_grad()
def nearest_centers(Z, centers, Z_sq=None):
    """Nearest-centre labels and squared distances of the rows of a tensor ``Z``.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    centers : Tensor of shape (k, d) or (r, k, d) on the same device
        With ``r`` runs the results have a leading axis of length ``r``.
    Z_sq : Tensor of shape (n,), optional
        Precomputed ``||z_i||²`` (``HostData.sq_norms``).

    Returns
    -------
    labels : LongTensor of shape (n,) or (r, n)
    min_sq_dist : Tensor of shape (n,) or (r, n)
    """
    best, labels = max_over_clusters(center_scores(centers, Z))
    dist = torch.sub((Z * Z).sum(dim=1) if Z_sq is None else Z_sq, best, alpha=2.0)
    return labels, dist.clamp_(min=0.0)


@torch.no_grad()
def assign_nearest(data, centers):
    """Nearest-centre labels and squared distances for every row of ``data``.

    Parameters
    ----------
    data : HostData
    centers : Tensor of shape (k, d) or (r, k, d) on the data's device

    Returns
    -------
    labels : LongTensor of shape (n,) or (r, n)
    min_sq_dist : Tensor of shape (n,) or (r, n)
    """
    lead = centers.shape[:-2]
    labels = torch.empty((*lead, data.n_samples), dtype=torch.long, device=centers.device)
    dist = torch.empty((*lead, data.n_samples), dtype=centers.dtype, device=centers.device)
    for start, stop, xb in data.chunks():
        labels[..., start:stop], dist[..., start:stop] = nearest_centers(
            xb, centers, data.sq_norms(slice(start, stop), compute=False))
    return labels, dist


@torch.no_grad()
def _sq_dist_from(data, centers, X_sq):
    """Squared distances from each of ``centers`` to every row, shape (len(centers), n).

    Centre-major so that the reductions over the samples run along contiguous memory.
    """
    out = torch.empty(
        (centers.shape[0], data.n_samples), dtype=centers.dtype, device=centers.device
    )
    for start, stop, xb in data.chunks():
        block = center_scores(centers, xb).mul_(-2.0)
        out[:, start:stop] = block.add_(X_sq[start:stop]).clamp_(min=0.0)
    return out


@torch.no_grad()
def kmeans_plusplus(data, n_clusters, generator, n_local_trials=None, n_runs=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007) computed in torch.

    The first centre is drawn with probability proportional to the sample weight; every next
    centre is the best (lowest potential) of ``n_local_trials`` candidates drawn with
    probability proportional to ``weight * D(x)²``, the rule scikit-learn uses
    (``2 + log(k)`` trials by default).

    Parameters
    ----------
    data : HostData
    n_clusters : int
    generator : torch.Generator on the data's device
    n_local_trials : int, optional
    n_runs : int, optional
        Seed ``n_runs`` independent sets of centres at once (one pass over the data per
        centre for all of them); the results then have a leading axis of length ``n_runs``.

    Returns
    -------
    centers : Tensor of shape (n_clusters, n_features) or (n_runs, n_clusters, n_features)
    indices : LongTensor of shape (n_clusters,) or (n_runs, n_clusters)
        Rows of the data chosen as centres.
    """
    device = data.device
    n = data.n_samples
    R = 1 if n_runs is None else n_runs
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    T = n_local_trials
    X_sq = data.sq_norms()
    w = data.sample_weight
    if w is None:
        w = torch.ones(n, dtype=data.dtype, device=device)

    def draw(probs, k):
        # Inverse-CDF sampling with the estimator's generator (torch.multinomial has a 2**24
        # category limit on CPU); one row of probabilities per run.
        cdf = torch.cumsum(probs.to(torch.float64), dim=-1)
        u = torch.rand((R, k), generator=generator, device=device, dtype=torch.float64)
        return torch.searchsorted(cdf, u.mul_(cdf[:, -1:])).clamp_(max=n - 1)

    runs = torch.arange(R, device=device)
    indices = torch.empty((R, n_clusters), dtype=torch.long, device=device)
    centers = torch.empty((R, n_clusters, data.n_features), dtype=data.dtype, device=device)
    first = draw(w.expand(R, n), 1)[:, 0]
    indices[:, 0] = first
    centers[:, 0] = data.rows(first)
    closest = _sq_dist_from(data, centers[:, 0], X_sq)
    potential = (w * closest).sum(dim=1)
    for c in range(1, n_clusters):
        # With fewer distinct points than clusters (zero potential) any point will do.
        probs = torch.where((potential > 0).unsqueeze(1), w * closest, w)
        cand = draw(probs, T)
        cand_rows = data.rows(cand.flatten())
        dist = _sq_dist_from(data, cand_rows, X_sq).view(R, T, n)
        dist = torch.minimum(dist, closest.unsqueeze(1))
        pots = dist @ w
        best = torch.argmin(pots, dim=1)
        indices[:, c] = cand[runs, best]
        centers[:, c] = cand_rows.view(R, T, -1)[runs, best]
        closest = dist[runs, best]
        potential = pots[runs, best]
    if n_runs is None:
        return centers[0], indices[0]
    return centers, indices


@torch.no_grad()
def farthest_points(min_sq_dist, n_points, exclude=None):
    """Indices of the ``n_points`` rows farthest from their centre (empty-cluster relocation)."""
    d = min_sq_dist
    if exclude is not None:
        d = d.clone()
        d[exclude] = -1.0
    return torch.topk(d, n_points).indices


@torch.no_grad()
def relocate_empty(centers, counts, data, min_sq_dist):
    """Move every centre with a zero count to one of the points farthest from their centre.

    The rule of :class:`sklearn.cluster.KMeans`: an empty cluster takes over the worst-fitted
    sample, so that no centre is left without points (and no mean is ever 0 / 0).

    Parameters
    ----------
    centers : Tensor of shape (k, d)
        Modified in place.
    counts : Tensor of shape (k,)
        (Weighted) number of points of each cluster.
    data : HostData or Tensor of shape (n, d)
        The points.
    min_sq_dist : Tensor of shape (n,)
        Squared distance of each point to its centre.

    Returns
    -------
    empty : LongTensor
        The clusters that were moved.
    far : LongTensor
        The points they were moved to.
    """
    empty = torch.nonzero(counts == 0).flatten()
    if empty.numel() == 0:
        return empty, empty
    far = farthest_points(min_sq_dist, min(int(empty.numel()), min_sq_dist.numel()))
    empty = empty[: far.numel()]
    centers[empty] = _as_data(data).rows(far)
    return empty, far


def _as_data(data):
    from ._engine import HostData

    if isinstance(data, HostData):
        return data
    return HostData(data, data.device, data.dtype)


def centers_from_sums(centers, sums, counts, step_size=1.0):
    """The centre update of k-means from each cluster's (weighted) sum and count.

    ``μ_k ← μ_k + step_size (sum_k / count_k − μ_k)`` for every non-empty cluster; an empty
    one keeps its centre (to be relocated by :func:`relocate_empty`). Returns a new tensor.
    Leading run axes (shape (r, k, d), counts (r, k)) are carried through.
    """
    means = sums / counts.clamp(min=torch.finfo(centers.dtype).tiny).unsqueeze(-1)
    new = centers + step_size * (means - centers) if step_size != 1.0 else means
    return torch.where((counts > 0).unsqueeze(-1), new, centers)


def run_offsets(n_runs, k, device):
    """``[0, k, 2k, ...]`` as a column: labels of run ``r`` plus ``r k`` index one flat axis."""
    return (torch.arange(n_runs, device=device) * k).unsqueeze(1)


@torch.no_grad()
def lloyd_step(data, centers, step_size=1.0):
    """One Lloyd iteration over ``data``: assign, move the centres to their means, relocate.

    ``μ_k ← μ_k + step_size (mean_k − μ_k)`` for every non-empty cluster (``step_size=1``:
    the mean itself; a smaller step damps the move); an empty cluster is relocated by
    :func:`relocate_empty`.

    Parameters
    ----------
    data : HostData
        The points (sample weights and offset included).
    centers : Tensor of shape (k, d) or (r, k, d)
        With ``r`` runs every run takes its own step, all in the same pass over the data.
    step_size : float, default=1.0

    Returns
    -------
    new_centers : Tensor of the shape of ``centers``
    loss : float, or Tensor of shape (r,) (float64)
        (Weighted) sum of squared distances to the *old* centres.
    n_relocated : int, or LongTensor of shape (r,)
    """
    batched = centers.dim() == 3
    C = centers if batched else centers.unsqueeze(0)
    R, k, d = C.shape
    dtype, device = C.dtype, C.device
    counts = torch.zeros(R * k, dtype=dtype, device=device)
    sums = torch.zeros((R, k, d), dtype=dtype, device=device)
    loss = torch.zeros(R, dtype=torch.float64, device=device)
    dist_all = torch.empty((R, data.n_samples), dtype=dtype, device=device)
    offsets = run_offsets(R, k, device) if R > 1 else None
    for index, xb in data.chunks_with_index():
        labels, dist = nearest_centers(xb, C, data.sq_norms(index))
        dist_all[:, index] = dist
        w = data.weights(index)
        rows = xb if w is None else xb * w.unsqueeze(1)
        flat = (labels + offsets).flatten() if R > 1 else labels[0]
        counts += weighted_bincount(flat, None if w is None else w.repeat(R), R * k, dtype)
        for r in range(R):  # each run adds the same rows: no copy of the chunk per run
            index_add_rows_(sums[r], labels[r], rows)
        loss += (dist if w is None else dist * w).sum(dim=1, dtype=torch.float64)
    counts = counts.view(R, k)
    new = centers_from_sums(C, sums, counts, step_size)
    n_relocated = torch.zeros(R, dtype=torch.long)
    for r in torch.nonzero((counts == 0).any(dim=1)).flatten().tolist():
        empty, _ = relocate_empty(new[r], counts[r], data, dist_all[r])
        n_relocated[r] = empty.numel()
    if batched:
        return new, loss, n_relocated
    return new[0], float(loss[0]), int(n_relocated[0])


def _per_run(value, n_runs):
    """A per-run list from a scalar or a sequence."""
    if isinstance(value, (int, float)):
        return [value] * n_runs
    return list(value)


class KMeansRuns:
    """The epochs of ``r`` k-means-type runs trained together, through the engine's epoch loop.

    Each run has its own epoch budget, epoch numbering and history; after every epoch a run
    whose centres moved by at most ``tol_abs`` (squared shift) with no cluster relocated, or
    whose budget is spent, leaves ``active``; the loop ends when no run is left. Shared by
    Lloyd's loop and ShallowConcreteKMeans's concrete phase.

    Parameters
    ----------
    n_runs : int
    phase : str
    max_epochs, first_epochs : int or sequence of ``n_runs`` ints
    histories : sequence of ``n_runs`` lists (or None entries), optional
    tol_abs : float
    """

    def __init__(self, n_runs, *, phase, max_epochs, first_epochs=1, histories=None,
                 tol_abs=0.0):
        self.n_runs, self.phase, self.tol_abs = n_runs, phase, tol_abs
        self.max_epochs = _per_run(max_epochs, n_runs)
        self.first_epochs = _per_run(first_epochs, n_runs)
        self.histories = list(histories) if histories is not None else [None] * n_runs
        self.n_done = [0] * n_runs
        self.active = [r for r in range(n_runs) if self.max_epochs[r] > 0]

    def active_index(self, device):
        """The active runs' positions as a tensor on ``device``, or None while every run is
        active (the runs' tensors are then used whole: no gather, no scatter back)."""
        if len(self.active) == self.n_runs:
            return None
        return torch.tensor(self.active, device=device)

    def record(self, values, seconds):
        """Record one epoch of the active runs and drop those that are done.

        ``values`` maps names to one value per active run (a list, in ``active`` order) or
        to one value for all; it must hold ``center_shift`` and ``n_relocated``. Returns the
        epoch loop's record: the run's values with one run, the number still active
        otherwise.
        """
        summary = None
        for j, r in enumerate(list(self.active)):
            self.n_done[r] += 1
            record = {k: v[j] if isinstance(v, list) else v for k, v in values.items()}
            summary = record if summary is None else summary
            if self.histories[r] is not None:
                self.histories[r].append({"phase": self.phase,
                                          "epoch": self.first_epochs[r] + self.n_done[r] - 1,
                                          **record, "seconds": seconds})
            settled = record["center_shift"] <= self.tol_abs and record["n_relocated"] == 0
            if settled or self.n_done[r] >= self.max_epochs[r]:
                self.active.remove(r)
        if self.n_runs == 1:
            return summary
        shown = {"n_active": float(len(self.active))}
        if isinstance(values.get("loss"), list):
            shown["loss"] = float(min(values["loss"]))
        return shown

    def run(self, run_epoch, verbose=0, owner=None, callbacks=()):
        """Run ``run_epoch(epoch) -> values`` (see :meth:`record`) until every run is done,
        or a callback (``callback(owner, record) -> bool``) returns True."""
        from ._engine import epoch_loop

        def timed_epoch(epoch):
            start = time.perf_counter()
            values = run_epoch(epoch)
            return self.record(values, time.perf_counter() - start)

        if self.active:
            epoch_loop(timed_epoch, phase=self.phase, n_epochs=max(self.max_epochs),
                       converged=lambda _: not self.active, verbose=verbose,
                       first_epoch=min(self.first_epochs), owner=owner, callbacks=callbacks)


@torch.no_grad()
def lloyd(data, centers, *, max_iter=300, tol=1e-4, tol_abs=None, step_size=1.0,
          phase="lloyd", history=None, verbose=0, first_epoch=1, owner=None, callbacks=()):
    """Lloyd's k-means on the training device: the one Lloyd loop of the package.

    Iterates :func:`lloyd_step` until the squared centre shift is at most ``tol`` times the
    mean feature variance of the data (scikit-learn's rule) with no cluster relocated, or
    ``max_iter`` iterations. Used by the latent initialisation of the deep estimators, their
    refits (warm started from the current centres) and the refinement of
    :class:`~skdeepcluster.ShallowConcreteKMeans`.

    Several runs (centres of shape (r, k, d)) iterate together, one pass over the data per
    iteration for all of them; a run that has converged stops moving (and costs nothing
    more), the loop ends when every run has.

    Parameters
    ----------
    data : HostData or Tensor of shape (n, d)
    centers : Tensor of shape (k, d) or (r, k, d)
        Initial centres (k-means++, or the current centres for a warm start).
    max_iter : int, or sequence of r ints
    tol : float
        Relative tolerance (ignored when ``tol_abs`` is given).
    tol_abs : float, optional
        Absolute tolerance on the squared centre shift.
    step_size : float, default=1.0
        Damping of the move to the means (1: plain Lloyd).
    phase, history, verbose, first_epoch, owner, callbacks
        Iterations run through the engine's epoch loop
        (:func:`~skdeepcluster._engine.epoch_loop`); with a ``history`` list each iteration
        is recorded (``loss``, ``center_shift``, ``n_relocated``). With ``r`` runs,
        ``history`` is a list of ``r`` lists and ``first_epoch`` may be one number per run.

    Returns
    -------
    KMeansResult
        ``centers``, ``labels``, ``inertia`` (with the final centres) and ``n_iter``; with
        ``r`` runs, ``centers`` (r, k, d), ``labels`` (r, n), ``inertia`` a float64 tensor
        of shape (r,) and ``n_iter`` a list.
    """

    data = _as_data(data)
    if tol_abs is None:
        tol_abs = float(tol * _mean_variance(data))
    batched = centers.dim() == 3
    C = (centers if batched else centers.unsqueeze(0)).clone()
    R = C.shape[0]
    runs = KMeansRuns(R, phase=phase, max_epochs=max_iter, first_epochs=first_epoch,
                      histories=history if batched else [history], tol_abs=tol_abs)
    total_weight = _total_weight(data)

    def run_epoch(epoch):
        nonlocal C
        idx = runs.active_index(C.device)
        old = C if idx is None else C[idx]
        new, loss, n_relocated = lloyd_step(data, old, step_size)
        if idx is None:
            C = new
        else:
            C[idx] = new
        return {"loss": (loss / total_weight).tolist(),
                "center_shift": ((new - old) ** 2).sum(dim=(1, 2)).tolist(),
                "n_relocated": n_relocated.tolist()}

    runs.run(run_epoch, verbose, owner, callbacks)
    labels, dist = assign_nearest(data, C)
    if data.sample_weight is not None:
        dist = dist * data.sample_weight
    inertia = dist.sum(dim=1, dtype=torch.float64)
    if batched:
        return KMeansResult(C, labels, inertia, runs.n_done)
    return KMeansResult(C[0], labels[0], float(inertia[0]), runs.n_done[0])


def _total_weight(data):
    if data.sample_weight is None:
        return float(data.n_samples)
    return float(data.sample_weight.sum())


#: Values per chunk of :func:`feature_moments` (4 MiB read in float32, 8 MiB in float64,
#: as a memory map's default chunk): a default chunk of 32,768 rows of 784 pixels converted
#: at once held about 0.5 GB of float64 copies and squares.
MOMENT_BLOCK_VALUES = 2**20


@torch.no_grad()
def feature_moments(data):
    """Per-feature mean and mean square of the (unweighted) data, in float64 on its device.

    One pass in chunks of at most :data:`MOMENT_BLOCK_VALUES` values (a memory-mapped or
    sparse input is never materialised), each converted to float64, and no host
    synchronisation: the caller reads what it needs.
    """
    total, total_sq = None, None
    for _, _, xb in data.chunks(max(1, MOMENT_BLOCK_VALUES // max(1, data.n_features))):
        x = xb.to(torch.float64)
        s, s2 = x.sum(dim=0), (x * x).sum(dim=0)
        total = s if total is None else total + s
        total_sq = s2 if total_sq is None else total_sq + s2
    return total / data.n_samples, total_sq / data.n_samples


@torch.no_grad()
def _mean_variance(data):
    """Mean of the per-feature variances of the (unweighted) data (k-means' tolerance unit)."""
    if not data.sparse and data.offset is None:
        return torch.var(data._tensor, dim=0, correction=0).mean()
    mean, mean_sq = feature_moments(data)
    return (mean_sq - mean * mean).clamp(min=0.0).mean()


class KMeansResult(NamedTuple):
    """One k-means run."""

    centers: torch.Tensor
    labels: torch.Tensor
    inertia: float
    n_iter: int


def kmeans(data, n_clusters, n_init, generator, *, init="k-means++", max_iter=300, tol=1e-4):
    """k-means on the training device: ``n_init`` runs of k-means++ and Lloyd, or one warm-
    started Lloyd run from given centres.

    Used to initialise the centres of the deep estimators in their latent space and to
    re-fit them during training (CenteringKM every epoch, DCN's optional periodic refit).

    Parameters
    ----------
    data : HostData or Tensor of shape (n, d)
    n_clusters, n_init : int
    generator : torch.Generator on the data's device
    init : "k-means++" or Tensor of shape (n_clusters, d), default="k-means++"
        A tensor warm-starts a single Lloyd run from those centres (``n_init`` ignored).
    max_iter : int, default=300
    tol : float, default=1e-4
        Relative to the mean feature variance (scikit-learn's rule).

    Returns
    -------
    KMeansResult
        ``centers, labels, inertia, n_iter`` of the run with the lowest inertia.
    """
    data = _as_data(data)
    tol_abs = float(tol * _mean_variance(data))
    if torch.is_tensor(init):
        return lloyd(data, init, max_iter=max_iter, tol_abs=tol_abs)
    # The n_init runs computed together (one pass over the data per iteration for all).
    centers, _ = kmeans_plusplus(data, n_clusters, generator, n_runs=n_init)
    runs = lloyd(data, centers, max_iter=max_iter, tol_abs=tol_abs)
    best = int(torch.argmin(runs.inertia))
    return KMeansResult(runs.centers[best], runs.labels[best], float(runs.inertia[best]),
                        runs.n_iter[best])


@torch.no_grad()
def count_based_center_update(centers, counts, Z, labels):
    """DCN's centre step for a mini-batch, vectorised (Yang et al. 2017, Algorithm 1).

    The reference code visits the batch's samples one by one: ``c_k ← c_k + 1``,
    ``μ_k ← μ_k − (μ_k − z_i) / c_k`` for ``k = s_i``. Those sequential running-mean steps
    compose to ``μ_k ← (c_k μ_k + Σ_{i∈B, s_i=k} z_i) / (c_k + n_k)``, computed here for
    every cluster at once (``n_k`` the batch's members of ``k``); a cluster without members
    is unchanged.

    Parameters
    ----------
    centers : Tensor of shape (k, p)
        Updated in place.
    counts : Tensor of shape (k,), float
        Samples each centre has received so far (DCN starts them at 100); updated in place.
    Z : Tensor of shape (n, p)
        Embeddings of the batch, computed after the network step.
    labels : LongTensor of shape (n,)
        Their assignments.
    """
    k = centers.shape[0]
    n_k = torch.bincount(labels, minlength=k).to(centers.dtype)
    sums = index_add_rows_(torch.zeros_like(centers), labels, Z)
    new_counts = counts + n_k
    moved = n_k > 0
    updated = (centers * counts.unsqueeze(1) + sums) / new_counts.clamp(min=1e-12).unsqueeze(1)
    centers.copy_(torch.where(moved.unsqueeze(1), updated, centers))
    counts.copy_(new_counts)


# ---------------------------------------------------------------- Gaussian mixture
class GaussianMixtureParams(NamedTuple):
    """A Gaussian mixture with full covariances (all tensors on one device).

    ``covariances`` already contain the ridge ``reg_covar * I``: the same regularised
    matrices serve the densities, the precisions and the fitted attributes (the reference
    code of DC-GMM adds its ridge only inside the inverse).
    """

    means: torch.Tensor  # (k, p)
    covariances: torch.Tensor  # (k, p, p)
    weights: torch.Tensor  # (k,)


#: Ridge increases tried, by factors of ten, when a Cholesky factorisation fails.
_CHOLESKY_RETRIES = 6


@torch.no_grad()
def _cholesky(covariances):
    """Lower Cholesky factors of SPD matrices; a matrix that is not numerically positive
    definite gets a growing ridge (never NaN)."""
    eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device)
    scale = covariances.diagonal(dim1=-2, dim2=-1).abs().amax(dim=-1).clamp_min(1.0)
    ridge = torch.zeros_like(scale)
    for _ in range(_CHOLESKY_RETRIES + 1):
        L, info = torch.linalg.cholesky_ex(covariances + ridge[:, None, None] * eye)
        bad = (info > 0) | ~torch.isfinite(L).flatten(1).all(dim=1)
        if not bool(bad.any()):
            return L
        ridge = torch.where(bad, torch.where(ridge > 0, ridge * 10.0,
                                             scale * torch.finfo(covariances.dtype).eps * 10),
                            ridge)
    raise ValueError("A Gaussian mixture covariance is not positive definite even with a "
                     "ridge; the embedding contains NaN or infinity.")


@torch.no_grad()
def gmm_precisions(covariances):
    """Inverses of the (regularised) covariances, through their Cholesky factors."""
    return torch.cholesky_inverse(_cholesky(covariances))


@torch.no_grad()
def gmm_log_resp(Y, gmm):
    """Log-responsibilities ``log γ_ik`` and per-sample log-likelihoods of ``Y``.

    ``log π_k + log N(y_i | μ_k, Σ_k)`` through the Cholesky factor of each ``Σ_k``,
    normalised over ``k`` by log-sum-exp (no density is ever evaluated outside the log).

    Parameters
    ----------
    Y : Tensor of shape (n, p)
    gmm : GaussianMixtureParams

    Returns
    -------
    log_resp : Tensor of shape (n, k)
    log_likelihood : Tensor of shape (n,)
    """
    L = _cholesky(gmm.covariances)  # (k, p, p)
    p = Y.shape[1]
    diff = (Y.unsqueeze(0) - gmm.means.unsqueeze(1)).transpose(1, 2)  # (k, p, n)
    sol = torch.linalg.solve_triangular(L, diff, upper=False)
    mahalanobis = (sol * sol).sum(dim=1)  # (k, n)
    log_det = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(dim=-1)  # (k,)
    log_prob = -0.5 * (p * math.log(2.0 * math.pi) + log_det[:, None] + mahalanobis)
    weighted = log_prob.T + torch.log(gmm.weights.clamp_min(torch.finfo(Y.dtype).tiny))
    norm = torch.logsumexp(weighted, dim=1)
    return weighted - norm[:, None], norm


def _weighted_covariances(Y, resp, means, nk, reg_covar):
    diff = Y.unsqueeze(0) - means.unsqueeze(1)  # (k, n, p)
    scatter = (resp.T.unsqueeze(-1) * diff).transpose(1, 2) @ diff  # (k, p, p)
    eye = torch.eye(Y.shape[1], dtype=Y.dtype, device=Y.device)
    cov = scatter / nk[:, None, None] + reg_covar * eye
    return 0.5 * (cov + cov.transpose(1, 2))  # exactly symmetric


@torch.no_grad()
def gmm_m_step(Y, resp, reg_covar, log_likelihood=None):
    """Means, full covariances (plus ``reg_covar * I``) and priors from responsibilities.

    A component whose responsibilities sum to (almost) nothing would get a 0/0 mean; it is
    re-seeded instead, as k-means relocates an empty cluster: its mean moves to the sample
    with the lowest log-likelihood (the worst-fitted one; the sample farthest from the
    data's mean when ``log_likelihood`` is None), its covariance becomes the data's
    diagonal covariance and its prior ``1 / n`` (priors renormalised).

    Parameters
    ----------
    Y : Tensor of shape (n, p)
    resp : Tensor of shape (n, k)
        Responsibilities (rows sum to one).
    reg_covar : float
    log_likelihood : Tensor of shape (n,) or None
        Per-sample log-likelihood under the previous mixture (chooses the re-seeding point).

    Returns
    -------
    gmm : GaussianMixtureParams
    reseeded : LongTensor
        The components that were re-seeded.
    """
    n = Y.shape[0]
    tiny = 10.0 * torch.finfo(Y.dtype).eps
    nk = resp.sum(dim=0)
    reseeded = torch.nonzero(nk < 1e3 * tiny).flatten()
    nk = nk + tiny
    means = (resp.T @ Y) / nk[:, None]
    covariances = _weighted_covariances(Y, resp, means, nk, reg_covar)
    weights = nk / n
    if reseeded.numel():
        if log_likelihood is None:
            score = -((Y - Y.mean(dim=0)) ** 2).sum(dim=1)
        else:
            score = log_likelihood
        worst = torch.topk(-score, min(int(reseeded.numel()), n)).indices
        reseeded = reseeded[: worst.numel()]
        eye = torch.eye(Y.shape[1], dtype=Y.dtype, device=Y.device)
        means[reseeded] = Y[worst]
        covariances[reseeded] = torch.diag(Y.var(dim=0, correction=0)) + reg_covar * eye
        weights[reseeded] = 1.0 / n
        weights = weights / weights.sum()
    return GaussianMixtureParams(means, covariances, weights), reseeded


@torch.no_grad()
def gmm_from_partition(Y, labels, n_components, reg_covar):
    """A mixture initialised from a hard partition (k-means): the clusters' means, their
    **diagonal** covariances (plus ``reg_covar``) and their sizes as priors (the
    initialisation of the DC-GMM reference code, with means from the same partition)."""
    resp = torch.nn.functional.one_hot(labels, n_components).to(Y.dtype)
    gmm, _ = gmm_m_step(Y, resp, reg_covar)
    covariances = torch.diag_embed(gmm.covariances.diagonal(dim1=-2, dim2=-1))
    return GaussianMixtureParams(gmm.means, covariances, gmm.weights)

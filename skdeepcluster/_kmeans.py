"""k-means building blocks in torch, on the training device.

Squared distances, nearest-centre assignment over a whole data set, k-means++ seeding and
the relocation of empty clusters. Shared by every estimator that keeps k-means centres.
"""

import math

import torch

__all__ = [
    "assign_nearest",
    "farthest_points",
    "kmeans",
    "kmeans_plusplus",
    "lloyd",
    "nearest_centers",
    "squared_distances",
]


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
    if X_sq is None:
        X_sq = (X * X).sum(dim=1)
    c_sq = (centers * centers).sum(dim=1)
    D = torch.addmm(c_sq.unsqueeze(0), X, centers.T, alpha=-2.0)
    D += X_sq.unsqueeze(1)
    return D.clamp_(min=0.0)


def center_scores(centers, X):
    """The nearest-centre rule: scores ``s_ki = μ_k·x_i - ||μ_k||²/2``, shape (k, n).

    ``argmax_k s_ki`` is the nearest centre of ``x_i`` and ``||x_i - μ_k||² = ||x_i||² - 2 s_ki``.
    Centre-major, so that reductions over the few clusters run along the first axis (several
    times faster than over a short last axis on the CPU). Every assignment in the package goes
    through this function.
    """
    half_c_sq = 0.5 * (centers * centers).sum(dim=1, keepdim=True)
    return torch.addmm(half_c_sq, centers, X.T, alpha=1.0, beta=-1.0)


@torch.no_grad()
def nearest_centers(Z, centers):
    """Nearest-centre labels and squared distances of the rows of a tensor ``Z``.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    centers : Tensor of shape (k, d) on the same device

    Returns
    -------
    labels : LongTensor of shape (n,)
    min_sq_dist : Tensor of shape (n,)
    """
    best, labels = center_scores(centers, Z).max(dim=0)
    dist = (Z * Z).sum(dim=1).sub_(best, alpha=2.0).clamp_(min=0.0)
    return labels, dist


@torch.no_grad()
def assign_nearest(data, centers):
    """Nearest-centre labels and squared distances for every row of ``data``.

    Parameters
    ----------
    data : HostData
    centers : Tensor of shape (k, d) on the data's device

    Returns
    -------
    labels : LongTensor of shape (n,)
    min_sq_dist : Tensor of shape (n,)
    """
    labels = torch.empty(data.n_samples, dtype=torch.long, device=centers.device)
    dist = torch.empty(data.n_samples, dtype=centers.dtype, device=centers.device)
    for start, stop, xb in data.chunks():
        labels[start:stop], dist[start:stop] = nearest_centers(xb, centers)
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
def kmeans_plusplus(data, n_clusters, generator, n_local_trials=None):
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

    Returns
    -------
    centers : Tensor of shape (n_clusters, n_features)
    indices : LongTensor of shape (n_clusters,)
        Rows of the data chosen as centres.
    """
    device = data.device
    n = data.n_samples
    if n_local_trials is None:
        n_local_trials = 2 + int(math.log(n_clusters))
    X_sq = torch.empty(n, dtype=data.dtype, device=device)
    for start, stop, xb in data.chunks():
        X_sq[start:stop] = (xb * xb).sum(dim=1)
    w = data.sample_weight
    if w is None:
        w = torch.ones(n, dtype=data.dtype, device=device)

    def draw(probs, k):
        # Inverse-CDF sampling with the estimator's generator (torch.multinomial has a 2**24
        # category limit on CPU).
        cdf = torch.cumsum(probs.to(torch.float64), dim=0)
        u = torch.rand(k, generator=generator, device=device, dtype=torch.float64) * cdf[-1]
        return torch.searchsorted(cdf, u).clamp_(max=n - 1)

    indices = torch.empty(n_clusters, dtype=torch.long, device=device)
    centers = torch.empty((n_clusters, data.n_features), dtype=data.dtype, device=device)
    first = draw(w, 1)
    indices[0] = first[0]
    centers[0] = data.rows(first)[0]
    closest = _sq_dist_from(data, centers[:1], X_sq)[0]
    potential = (w * closest).sum()
    for c in range(1, n_clusters):
        if potential <= 0:
            # Fewer distinct points than clusters: any remaining point is as good as another.
            cand = draw(w, n_local_trials)
        else:
            cand = draw(w * closest, n_local_trials)
        cand_rows = data.rows(cand)
        dist = torch.minimum(_sq_dist_from(data, cand_rows, X_sq), closest.unsqueeze(0))
        pots = dist @ w
        best = int(torch.argmin(pots))
        indices[c] = cand[best]
        centers[c] = cand_rows[best]
        closest = dist[best]
        potential = pots[best]
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
def lloyd(Z, centers, max_iter=300, tol=1e-4):
    """Lloyd's k-means iterations on a tensor ``Z`` that lives on the device.

    Stops when the squared centre shift is at most ``tol`` times the mean feature variance
    of ``Z`` (scikit-learn's rule). An empty cluster is moved to the point farthest from its
    centre.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    centers : Tensor of shape (k, d)
    max_iter : int
    tol : float

    Returns
    -------
    centers : Tensor of shape (k, d)
    labels : LongTensor of shape (n,)
    inertia : float
    n_iter : int
    """
    k = centers.shape[0]
    tol_abs = float(tol * torch.var(Z, dim=0, correction=0).mean())
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007
        labels, dist = nearest_centers(Z, centers)
        counts = torch.bincount(labels, minlength=k)
        new = torch.zeros_like(centers).index_add_(0, labels, Z)
        new /= counts.clamp(min=1).unsqueeze(1).to(Z.dtype)
        empty = torch.nonzero(counts == 0).flatten()
        if empty.numel():
            new[empty] = Z[farthest_points(dist, empty.numel())]
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= tol_abs:
            break
    labels, dist = nearest_centers(Z, centers)
    return centers, labels, float(dist.sum(dtype=torch.float64)), n_iter


def kmeans(Z, n_clusters, n_init, generator, max_iter=300, tol=1e-4):
    """k-means on a device tensor: ``n_init`` runs of k-means++ seeding and Lloyd.

    Used to initialise (and re-fit) the centres of the deep estimators in their latent
    space, on the training device.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    n_clusters, n_init : int
    generator : torch.Generator on ``Z``'s device

    Returns
    -------
    centers, labels, inertia, n_iter
        Of the run with the lowest inertia.
    """
    from ._engine import HostData

    data = HostData(Z, Z.device, Z.dtype)
    best = None
    for _ in range(n_init):
        centers, _ = kmeans_plusplus(data, n_clusters, generator)
        result = lloyd(Z, centers, max_iter=max_iter, tol=tol)
        if best is None or result[2] < best[2]:
            best = result
    return best

"""Pure tensor functions for the clustering losses and assignment rules.

One implementation of each loss; estimators only choose which to call and how to weight it.
"""

import math

import torch
import torch.nn.functional as F

from ._distributed import sum_across_
from ._kmeans import center_scores, max_over_clusters, rows_of, squared_distances
from ._onednn import product_nt

__all__ = [
    "absolute_sigma",
    "admm_gmm_y_step",
    "admm_kmeans_y_step",
    "anneal_rate",
    "batch_total_variance",
    "concrete_kmeans_center_grad",
    "concrete_kmeans_loss",
    "gumbel_noise",
    "inverse_power_weights",
    "kl_clustering_loss",
    "log_det_regularizer",
    "rbf_assignment_proba",
    "reconstruction_loss",
    "scale_free_term",
    "softmin_weights",
    "straight_through_gumbel_softmax",
    "student_t_log_assignment",
    "target_distribution",
    "temperature",
    "weighted_kmeans_loss",
]


def gumbel_noise(shape, generator, device, dtype):
    """Standard Gumbel noise ``-log(-log U)``, ``U ~ Uniform(0, 1)``, drawn with ``generator``.

    ``U`` is clamped to ``[eps, 1 - eps]`` (``eps`` the machine epsilon of ``dtype``) so the
    double logarithm is always finite (``torch.nn.functional.gumbel_softmax`` cannot take a
    generator and has been reported to produce NaNs on CUDA). ``torch.rand`` is used
    rather than ``Tensor.exponential_``, which is several times slower on the CPU.
    """
    eps = torch.finfo(dtype).eps
    u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return u.clamp_(eps, 1.0 - eps).log_().neg_().log_().neg_()


def straight_through_gumbel_softmax(logits, tau, noise):
    """Straight-through Gumbel-softmax sample (Jang et al. 2017; CKM paper eq. 4).

    Parameters
    ----------
    logits : Tensor of shape (n, k)
        Unnormalised log-probabilities ``log p(k | x)`` (up to a per-row constant).
    tau : float
        Temperature of the relaxation, > 0.
    noise : Tensor of shape (n, k)
        Gumbel noise (see :func:`gumbel_noise`).

    Returns
    -------
    h_st : Tensor of shape (n, k)
        Exactly one-hot in the forward pass (the Gumbel-max sample); its gradient is the
        gradient of the relaxed sample ``softmax((logits + noise) / tau)``.
    index : LongTensor of shape (n,)
        The sampled cluster of each row.
    """
    perturbed = logits + noise
    soft = torch.softmax(perturbed / tau, dim=1)
    index = perturbed.argmax(dim=1)
    hard = torch.zeros_like(soft).scatter_(1, index.unsqueeze(1), 1.0)
    return hard + (soft - soft.detach()), index


def concrete_kmeans_loss(Z, centers, tau, sigma, noise, sample_weight=None):
    """Concrete k-means loss of Gao et al. (ICASSP 2020), eq. 5, summed over the rows.

    ``sum_i w_i ||z_i - h_i M||²`` where ``h_i`` is the straight-through Gumbel-softmax sample
    of the cluster of ``z_i`` under ``p(k | z_i) ∝ exp(-||z_i - μ_k||² / σ²)`` (eq. 3).

    Parameters
    ----------
    Z : Tensor of shape (n, p)
        Points (raw features for the shallow model, embeddings for the deep one).
    centers : Tensor of shape (k, p)
    tau : float
        Gumbel-softmax temperature.
    sigma : float
        RBF bandwidth σ of eq. 3. ``sigma=0`` is the limit σ → 0: the sample is the nearest
        centre, the relaxed sample saturates and only the direct (Lloyd) part of the gradient
        remains; ``noise`` is then ignored (pass None).
    noise : Tensor of shape (n, k) or None
        Gumbel noise.
    sample_weight : Tensor of shape (n,), optional

    Returns
    -------
    loss : Tensor (scalar)
        Weighted sum over the rows (divide by the batch weight for a mean).
    index : LongTensor of shape (n,)
        The sampled (hard) cluster of each row.
    """
    if sigma == 0:
        with torch.no_grad():
            index = center_scores(centers, Z).argmax(dim=0)
        residual = Z - rows_of(centers, index)
    else:
        logits = squared_distances(Z, centers).mul(-1.0 / (sigma * sigma))
        h_st, index = straight_through_gumbel_softmax(logits, tau, noise)
        residual = Z - h_st @ centers
    per_sample = (residual * residual).sum(dim=1)
    if sample_weight is not None:
        per_sample = per_sample * sample_weight
    return per_sample.sum(), index


#: Smallest exponent of the concrete step's softmax (see :func:`concrete_kmeans_center_grad`).
EXP_FLOOR = -80.0


@torch.no_grad()
def concrete_kmeans_center_grad(Z, centers, tau, sigma, noise_t, sample_weight=None,
                                Z_sq=None):
    """Value, samples and closed-form gradient w.r.t. the centres of the concrete k-means loss.

    Equals :func:`concrete_kmeans_loss` and the gradient autograd gives for ``centers`` (the
    tests check this) for fixed points ``Z``, without building a graph: the shallow model's
    inner loop. With ``r_i = z_i - μ_{k_i}`` (``k_i`` the sample) the gradient has a direct
    part ``-2 Σ_{i: k_i = k} w_i r_i`` and a concrete part through the relaxed sample
    ``h = softmax((ℓ + G) / τ)``, ``ℓ = -D / σ²``:
    ``∂L/∂ℓ_im = (w_i / τ) h_im (g_im - Σ_j h_ij g_ij)`` with ``g_ij = -2 r_i·μ_j`` and
    ``∂ℓ_im/∂μ_m = (2/σ²)(z_i - μ_m)``.

    Intermediates are laid out cluster-major, shape (k, n): reductions over a handful of
    clusters are several times faster along the first axis on the CPU. Centres of shape
    (r, k, p) are ``r`` independent runs on the same points (one matrix product for all);
    every output then has a leading axis of length ``r``.

    Parameters
    ----------
    Z : Tensor of shape (n, p)
    centers : Tensor of shape (k, p) or (r, k, p)
    tau, sigma : float
        As in :func:`concrete_kmeans_loss` (``sigma=0``: the nearest-centre limit).
    noise_t : Tensor of shape (k, n), (r, k, n) or (1, k, n), or None
        Gumbel noise, **transposed** with respect to :func:`concrete_kmeans_loss`; with
        ``r`` runs, shape (1, k, n) is one draw shared by every run (broadcast).
    sample_weight : Tensor of shape (n,), optional
    Z_sq : Tensor of shape (n,), optional
        Precomputed ``||z_i||²`` (``HostData.sq_norms``); only the loss uses them.

    Returns
    -------
    loss : Tensor, scalar or of shape (r,)
    index : LongTensor of shape (n,) or (r, n)
    grad : Tensor of shape (k, p) or (r, k, p)
    """
    # (k, n) scores s_ki = μ_k·z_i - ||μ_k||²/2 (the nearest-centre rule); the logits are
    # ℓ_ki = (2/σ²) s_ki up to a per-sample constant that neither argmax nor softmax sees.
    score = center_scores(centers, Z)
    if sigma == 0:
        best, index = max_over_clusters(score)
        W = torch.zeros_like(score)
    else:
        inv_s2 = 1.0 / (sigma * sigma)
        # Every (k, n) intermediate below is computed in place in one of two buffers: these
        # passes, not the two matrix products, are most of the step's time for many clusters.
        pert = torch.add(noise_t, score, alpha=2.0 * inv_s2)
        top, index = max_over_clusters(pert)
        # h = softmax(pert / τ) over the clusters, shifted by the maximum just found. The
        # exponent is clamped at EXP_FLOOR: below about -87 float32's exp returns denormals
        # or 0 through a slow path (about 13x slower where most clusters are far away), and
        # e^-80 ≈ 2e-35 is as negligible next to the largest term, 1.
        h = pert.sub_(top.unsqueeze(-2)).mul_(1.0 / tau).clamp_(min=EXP_FLOOR).exp_()
        h.div_(h.sum(dim=-2, keepdim=True))
        # g_ki / 2 = -r_i·μ_k = μ_{k_i}·μ_k - z_i·μ_k = μ_{k_i}·μ_k - s_ki - ||μ_k||²/2; the
        # first term is column k_i of the (symmetric) Gram matrix of the centres.
        half_c_sq = 0.5 * (centers * centers).sum(dim=-1, keepdim=True)
        gram = centers @ centers.transpose(-1, -2)
        W = torch.gather(gram, -1, index.unsqueeze(-2).expand_as(score))
        W.sub_(score).sub_(half_c_sq)
        # W = h (g - Σ_j h_j g_j) 4 / (σ² τ), with h g computed once
        W.mul_(h)
        hg = W.sum(dim=-2, keepdim=True)
        W.addcmul_(h, hg, value=-1.0).mul_(4.0 * inv_s2 / tau)
        best = score.gather(-2, index.unsqueeze(-2)).squeeze(-2)
    # The direct part, -2 at (k_i, i): one entry per column, so a gather and a scatter
    # (no two writes to one place: the same on every device and every run).
    at = index.unsqueeze(-2)
    W.scatter_(-2, at, W.gather(-2, at).sub_(2.0))
    # ||z_i - μ_{k_i}||² = ||z_i||² - 2 s_{k_i i}
    if Z_sq is None:
        Z_sq = (Z * Z).sum(dim=1)
    residual_sq = torch.sub(Z_sq, best, alpha=2.0).clamp_(min=0.0)
    if sample_weight is not None:
        W.mul_(sample_weight)
        residual_sq = residual_sq * sample_weight
    weighted = product_nt(W.reshape(-1, W.shape[-1]), Z.t())  # W @ Z, oneDNN where it pays
    weighted = W @ Z if weighted is None else weighted.view(*W.shape[:-1], Z.shape[1])
    grad = weighted - W.sum(dim=-1, keepdim=True) * centers
    return residual_sq.sum(dim=-1), index, grad


def anneal_rate(tau, tau_min, anneal_rate, n_epochs):
    """Rate ``r`` of the temperature schedule of :func:`temperature` (both concrete models).

    ``anneal_rate="auto"`` gives the rate that reaches ``tau_min`` at the ``n_epochs``-th
    epoch (``t = n_epochs - 1``); a number is used as it is (0: constant ``τ = τ₀``).
    """
    if anneal_rate != "auto":
        return float(anneal_rate)
    ratio = math.log(tau / tau_min) if tau > tau_min else 0.0
    return ratio / max(n_epochs - 1, 1)


def temperature(tau, tau_min, rate, t):
    """Gumbel-softmax temperature at epoch ``t = 0, 1, ...``: ``max(τ_min, τ₀ e^{−r t})``."""
    return max(tau_min, tau * math.exp(-rate * t))


def absolute_sigma(sigma, total_variance):
    """The RBF bandwidth ``σ`` of the concrete models in the data's units.

    ``sigma`` is given in units of the root total variance (the RMS distance of the points
    to their mean), so that the assignment probabilities behave the same whatever the scale
    and the dimension of the space; a zero variance leaves ``sigma`` as it is.
    """
    return sigma * (math.sqrt(total_variance) if total_variance > 0 else 1.0)


def softmin_weights(D, alpha):
    """DKM's weights ``G_ik = softmax_k(−α D_ik)`` (Moradi Fard et al. 2020, eq. 3).

    Max-shifted by ``torch.softmax``, so that ``α = 1000`` on distances of order 1-100 never
    underflows to 0 / 0 (every row keeps its nearest centre's weight). Differentiable in
    ``D``.
    """
    return torch.softmax(D * (-alpha), dim=1)


def inverse_power_weights(D, alpha, eps=1e-8):
    """CenteringKM's weights ``G_ik = D_ik^{−α} / Σ_k' D_ik'^{−α}`` (Roy 2024, eq. 9).

    Computed as ``softmax_k(−α log(D_ik + ε))``: no power of a tiny distance is ever formed,
    so a point on a centre (what a k-means refit produces for a singleton cluster) gets
    weight 1 on that centre instead of ∞ / ∞. The fuzzy c-means membership with
    fuzzifier ``1 + 1/α``.
    """
    return torch.softmax(torch.log(D + eps) * (-alpha), dim=1)


def weighted_kmeans_loss(D, G):
    """The soft k-means term ``mean_i Σ_k D_ik G_ik`` of DKM and CenteringKM (the batch mean
    of each sample's weighted squared distances to the centres)."""
    return (D * G).sum(dim=1).mean()


def batch_total_variance(Z, whole_variance):
    """Total variance ``tr Cov(Z)`` of a batch's embedding, differentiable.

    Dividing a k-means-type term by it makes the term scale-free: the fraction of the
    batch's spread left within clusters, which the encoder cannot lower by shrinking every
    code (the decoder can undo any rescaling of the codes). A batch of one row has no
    spread: ``whole_variance`` (a float, or a callable returning one: the total variance of
    the whole training embedding) stands in for it as a constant, or 1 when that is zero.
    The batch's variance is floored at the dtype's machine epsilon.
    """
    eps = torch.finfo(Z.dtype).eps
    if Z.shape[0] > 1:
        return torch.var(Z, dim=0, correction=0).sum().clamp_min(eps)
    value = whole_variance() if callable(whole_variance) else whole_variance
    # A training set without spread (a single sample) has no scale to remove.
    return Z.new_tensor(value if value > eps else 1.0)


def scale_free_term(term, Z, whole_variance, group=None):
    """A k-means-type term of a batch divided by the batch's total variance.

    ``term`` is a mean over the batch's rows and ``Z`` the batch's embedding. Outside a
    process group: ``term / batch_total_variance(Z, whole_variance)``.

    Inside a group, the ranks each hold a share of the global batch. Every rank then divides
    by the variance of the *global* batch (one all-reduce of ``3 + p`` numbers: the term's
    sum, the row count, ``Σz``, ``Σ||z||²``). The returned value is this rank's mean divided
    by that variance. Its gradient, once the ranks' gradients are averaged with weights
    proportional to their rows (as :func:`~skdeepcluster._engine.backward_step` does), is
    the gradient of the whole batch's term: the variance's own gradient, which one rank
    cannot backpropagate through the others' rows, is added in closed form, since
    ``∂V/∂z_j = 2 (z_j - m) / N``.
    """
    if group is None:
        return term / batch_total_variance(Z, whole_variance)
    with torch.no_grad():
        Zd = Z.detach().double()
        stats = torch.cat([(term.detach().double() * Z.shape[0]).reshape(1),
                           Zd.new_tensor([float(Z.shape[0])]), Zd.sum(dim=0),
                           (Zd * Zd).sum().reshape(1)])
        sum_across_(stats, group)
    return _scale_free_from_stats(term, Z, stats)


def _scale_free_from_stats(term, Z, stats):
    """:func:`scale_free_term` of one rank, given the global ``stats`` (term sum, rows,
    ``Σz``, ``Σ||z||²``, float64). Tensor arithmetic only (no host sync on a GPU). A global
    batch has at least two rows (one per rank), so its variance is defined."""
    total, n = stats[0], stats[1]
    mean = stats[2:-1] / n
    eps = torch.finfo(Z.dtype).eps
    raw = stats[-1] / n - (mean * mean).sum()
    variance = raw.clamp_min(eps)
    spread = ((Z - mean.to(Z.dtype)) ** 2).sum() / n.to(Z.dtype)
    # Floored at eps, the variance is a constant (as clamp_min makes it in one process):
    # no gradient through it.
    weight = torch.where(raw > eps, -(total / n) / variance ** 2 * (n / Z.shape[0]),
                         torch.zeros_like(raw)).to(Z.dtype)
    return term / variance.to(Z.dtype) + weight * (spread - spread.detach())


def rbf_assignment_proba(Z, centers, sigma):
    """Soft assignments ``softmax_k(-||z - μ_k||² / σ²)`` (CKM eq. 3, no noise)."""
    return torch.softmax(squared_distances(Z, centers).mul(-1.0 / (sigma * sigma)), dim=1)


def reconstruction_loss(X_hat, X, reduction="sum"):
    """Squared reconstruction error of a batch, averaged over the samples.

    Parameters
    ----------
    X_hat, X : Tensor of shape (n, d)
    reduction : {"sum", "mean"}
        How the error of one sample is reduced over its ``d`` features: ``"sum"`` gives
        ``mean_i ||x̂_i - x_i||²`` (the papers' ``Σ_i ||x_i - g(f(x_i))||²`` per sample, the
        convention of the DKM/DCN/DeepCluster code), ``"mean"`` divides that by ``d`` (Keras'
        ``mse``, the convention of the DEC/IDEC/DCEC code).

    Returns
    -------
    Tensor (scalar)
    """
    # One fused kernel forward and backward; the same values and gradients, bit for bit, as
    # squaring the difference and reducing it.
    if reduction == "mean":
        return F.mse_loss(X_hat, X, reduction="mean")
    return F.mse_loss(X_hat, X, reduction="sum") / X.shape[0]


def student_t_log_assignment(Z, centers, alpha=1.0):
    """Log of DEC's soft assignment: a Student's t kernel normalised over the clusters.

    ``q_ij ∝ (1 + ||z_i − μ_j||² / α)^{−(α+1)/2}`` (Xie et al. 2016, eq. 1),
    computed as ``log_softmax_j(−(α+1)/2 · log1p(D_ij / α))``, which stays finite for any
    distance (no power of a large number is ever formed). ``exp`` of the result is ``Q``.

    Parameters
    ----------
    Z : Tensor of shape (n, p)
        Embedded points.
    centers : Tensor of shape (k, p)
    alpha : float, default=1.0
        Degrees of freedom ``α`` of the t distribution, > 0 (1 in every reference).

    Returns
    -------
    log_q : Tensor of shape (n, k)
        ``log q_ij``; ``argmax_j`` is the nearest centre.
    """
    D = squared_distances(Z, centers)
    return torch.log_softmax(torch.log1p(D / alpha) * (-(alpha + 1.0) / 2.0), dim=1)


@torch.no_grad()
def target_distribution(Q):
    """DEC's auxiliary target ``P`` from the soft assignments ``Q`` of the whole data set.

    ``p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j')`` with ``f_j = Σ_i q_ij`` the soft size of
    cluster ``j`` (Xie et al. 2016, eq. 3). Squaring sharpens the
    assignments; dividing by ``f_j`` keeps large clusters from absorbing the others. ``f_j``
    is clamped to the smallest positive number of the dtype, so an empty cluster gives zeros,
    never NaN. ``P`` carries no gradient (a fixed target).

    Parameters
    ----------
    Q : Tensor of shape (n, k)
        Soft assignments (rows sum to one) of **every** training sample: ``f_j`` is a
        statistic of the whole set, not of a mini-batch.

    Returns
    -------
    P : Tensor of shape (n, k)
    """
    f = Q.sum(dim=0).clamp_min(torch.finfo(Q.dtype).tiny)
    weight = Q * Q / f
    return weight / weight.sum(dim=1, keepdim=True).clamp_min(torch.finfo(Q.dtype).tiny)


def kl_clustering_loss(P, log_Q):
    """DEC's clustering loss ``KL(P || Q)``, averaged over the rows.

    ``(1/n) Σ_i Σ_j p_ij log(p_ij / q_ij)`` (``torch.nn.functional.kl_div`` with
    ``reduction="batchmean"``: the per-sample KL of the papers and of Keras' ``kld``;
    ``"mean"`` would also divide by ``k``). Terms with ``p_ij = 0`` contribute 0.

    Parameters
    ----------
    P : Tensor of shape (n, k)
        Target distribution (from :func:`target_distribution`), no gradient.
    log_Q : Tensor of shape (n, k)
        Log soft assignments (from :func:`student_t_log_assignment`).

    Returns
    -------
    Tensor (scalar)
    """
    return torch.nn.functional.kl_div(log_Q, P, reduction="batchmean")


#: Values (rows x p x p) of the linear systems built at once by :func:`admm_gmm_y_step`.
Y_STEP_CHUNK_VALUES = 1 << 22


def admm_kmeans_y_step(target, nearest_center, lam, rho):
    """DC-Kmeans' Y-step: ``argmin_y λ/2 ||y − c||² + ρ/2 ||y − t||²`` for every row.

    The closed form ``y = (λ c + ρ t) / (λ + ρ)`` (Tian et al. 2017, eq. 9), with ``t = f(x) − u``
    the network's embedding minus the scaled dual and ``c`` the centre nearest to the
    previous ``y``.

    Parameters
    ----------
    target, nearest_center : Tensor of shape (n, p)
    lam, rho : float

    Returns
    -------
    Tensor of shape (n, p)
    """
    return (lam * nearest_center + rho * target) / (lam + rho)


def admm_gmm_y_step(target, resp, means, precisions, lam, rho):
    """DC-GMM's Y-step: one ``p x p`` linear solve per sample, batched.

    ``y_i = [λ Σ_k γ_ik P_k + ρ I]⁻¹ [ρ t_i + λ Σ_k γ_ik P_k μ_k]`` (Tian et al.
    2017, eq. 13), the minimiser of ``λ/2 Σ_k γ_ik (y − μ_k)ᵀ P_k (y − μ_k) + ρ/2 ||y − t_i||²``,
    with ``P_k = Σ_k⁻¹``, the responsibilities ``γ`` of the previous ``Y`` and ``t = f(x) − u``.

    Parameters
    ----------
    target : Tensor of shape (n, p)
    resp : Tensor of shape (n, k)
    means : Tensor of shape (k, p)
    precisions : Tensor of shape (k, p, p)
    lam, rho : float

    Returns
    -------
    Tensor of shape (n, p)
    """
    p = target.shape[1]
    eye = torch.eye(p, dtype=target.dtype, device=target.device)
    precision_means = torch.einsum("kpq,kq->kp", precisions, means)
    b = rho * target + lam * (resp @ precision_means)
    # The n x p x p systems are built and solved in chunks (bounded memory for large n, p).
    rows = max(1, Y_STEP_CHUNK_VALUES // (p * p))
    out = torch.empty_like(target)
    for start in range(0, target.shape[0], rows):
        part = slice(start, start + rows)
        A = lam * torch.einsum("nk,kpq->npq", resp[part], precisions) + rho * eye
        out[part] = torch.linalg.solve(A, b[part].unsqueeze(-1)).squeeze(-1)
    return out


#: Floor of the singular values inside the log-determinant (a rank-deficient filter matrix
#: gives a large finite penalty, never -inf or NaN).
SINGULAR_VALUE_FLOOR = 1e-6


def log_det_regularizer(T, floor=SINGULAR_VALUE_FLOOR):
    """The transform-learning regulariser ``||T||_F² − log det T`` of a filter matrix.

    For a non-square ``T`` (one column per filter) the log-determinant is the sum of the
    log singular values, ``½ log det(TᵀT)``, the definition of the convolutional transform
    learning code. Per singular value the penalty is ``σ² − log σ``, minimal at
    ``σ = 1/√2``: it keeps the filters linearly independent (no all-zero or repeated
    filters) without letting them grow. Singular values are floored at ``floor``.

    Parameters
    ----------
    T : Tensor of shape (m, n_filters)
    floor : float

    Returns
    -------
    Tensor (scalar)
    """
    sigma = torch.linalg.svdvals(T)
    return (T * T).sum() - torch.log(sigma.clamp_min(floor)).sum()

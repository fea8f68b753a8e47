"""DeepClusterADMM: DC-Kmeans and DC-GMM (Tian, Zhou and Guan, 2017), on the ADMM.

The network's embedding ``f(x)`` is tied to a dummy copy ``Y`` on which the clustering
model is fitted, through the scaled augmented Lagrangian
``||X − X̂||² + λ G(Y) + ρ/2 ||Y − f(X) + U||²``. One ADMM iteration is one epoch:
the network (θ) step on mini-batches, then the closed-form Y-step, the dual step and the
clustering model's update, all on per-sample buffers ``Y`` and ``U`` kept on the device.
"""

from dataclasses import dataclass
from numbers import Integral, Real

import torch
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseDeepClusterer, FitState, SoftAssignmentMixin, embed, set_labels
from ._kmeans import (
    GaussianMixtureParams,
    centers_from_sums,
    gmm_from_partition,
    gmm_log_resp,
    gmm_m_step,
    gmm_precisions,
    index_add_rows_,
    nearest_centers,
    relocate_empty,
)
from ._losses import admm_gmm_y_step, admm_kmeans_y_step, reconstruction_loss

__all__ = ["DeepClusterADMM"]

#: The authors' MATLAB demo's ρ and θ-step weight α per model (DeepCluster, Tian et al. 2017).
ADMM_DEFAULTS = {"kmeans": {"rho": 1.0, "alpha": 1.0}, "gmm": {"rho": 1000.0, "alpha": 0.01}}


@dataclass(eq=False)
class _ADMMState(FitState):
    """DeepClusterADMM's fit state: the dummy embedding ``Y``, the scaled dual ``U`` and,
    for ``"gmm"``, the mixture (``centers`` holds its means)."""

    Y: torch.Tensor | None = None  # (n, p) on the device
    U: torch.Tensor | None = None  # (n, p) on the device
    gmm: GaussianMixtureParams | None = None
    admm_labels: torch.Tensor | None = None  # (n,) assignments of the current Y
    resp: torch.Tensor | None = None  # (n, k) responsibilities of the current Y
    log_likelihood: torch.Tensor | None = None  # (n,) under the current mixture
    rho: float = 1.0
    alpha: float = 1.0
    ridge: float = 0.0  # absolute ridge of the covariances


def _gmm_assign(Z, gmm):
    """The most responsible component of each row and its squared distance to that mean."""
    labels = gmm_log_resp(Z, gmm)[0].argmax(dim=1)
    diff = Z - gmm.means[labels]
    return labels, (diff * diff).sum(dim=1)


def _is_gmm(estimator):
    return getattr(estimator, "clustering", None) == "gmm"


class DeepClusterADMM(SoftAssignmentMixin, BaseDeepClusterer):
    """Deep clustering by the ADMM: DC-Kmeans and DC-GMM (Tian, Zhou and Guan, 2017).

    The autoencoder's embedding ``f_θ(X)`` must equal a dummy copy ``Y`` on which a
    clustering model ``G_w`` (k-means or a Gaussian mixture) is fitted:

    ``min ||X − X̂||² + λ G_w(Y)  s.t.  Y = f_θ(X)``,

    solved with the scaled augmented Lagrangian ``+ ρ/2 ||Y − f_θ(X) + U||²``. One
    iteration (one epoch here) does, in the order of the paper's Algorithms 2 and 3:

    1. **θ-step**: one epoch of Adam on ``mean_i ||x_i − x̂_i||² + α ρ/2 mean_i
       ||y_i − f_θ(x_i) + u_i||²`` (``Y`` and ``U`` fixed; the reconstruction error summed
       over the features);
    2. **Y-step**, closed form with the new embedding ``F = f_θ(X)`` and ``t_i = F_i − u_i``:
       k-means: ``y_i = (λ c_i + ρ t_i) / (λ + ρ)`` with ``c_i`` the centre nearest to the
       previous ``y_i``; GMM: ``y_i = [λ Σ_k γ_ik Σ_k⁻¹ + ρ I]⁻¹ [ρ t_i + λ Σ_k γ_ik Σ_k⁻¹ μ_k]``
       with the responsibilities ``γ`` of the previous ``y_i`` (one batched ``p x p`` solve
       per sample);
    3. **dual step** ``U ← U + dual_step (Y − F)`` (the sign of the paper's Algorithm 2 and
       eq. 15; its eq. 10 has the opposite sign, a misprint);
    4. **w-step** on the new ``Y``: the centres become the means of their samples (labels
       from step 2); the mixture's means, full covariances (plus a ridge,
       ``covariance_ridge``) and priors get one M-step with the responsibilities of step 2.

    ``Y`` starts as ``f_θ(X)`` after pretraining and ``U`` at zero; the centres (or the
    mixture's means, diagonal covariances and priors) start from k-means on the embedding.
    The iterations stop when fewer than ``tol`` of the Y-based labels change.

    Names of the paper: ``lam`` is ``λ``, ``rho`` is ``ρ``, ``alpha`` is the θ-step weight
    ``α`` of its experiments, ``cluster_centers_`` are the centres ``c_j`` (k-means) or the
    means ``μ_k`` (GMM).

    New data have no ``Y``: ``predict`` applies the model to ``f_θ(x)`` (nearest centre, or
    the most responsible component), and ``labels_ = predict(X)``; the labels the iterations
    computed on ``Y`` are kept in ``admm_labels_`` (they differ where ``Y`` has not met
    ``f_θ(X)``). Read more in the :ref:`User Guide <deep_cluster_admm>`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K`` (mixture components for ``"gmm"``).
    clustering : {"kmeans", "gmm"}, default="kmeans"
        The clustering model fitted on ``Y``: k-means (DC-Kmeans) or a Gaussian mixture with
        full covariances (DC-GMM).
    lam : float, default=1.0
        ``λ``: weight of the clustering model against the reconstruction (the paper uses 1
        in every experiment).
    rho : float or "auto", default="auto"
        ``ρ``: penalty of the augmented Lagrangian. ``"auto"``: 1 for ``"kmeans"`` and 1000
        for ``"gmm"`` (the reference code's values). Small ``ρ`` lets ``Y`` move to the
        clusters and the network barely follows; large ``ρ`` keeps ``Y ≈ f(X)`` and the
        method tends to autoencoder + clustering.
    alpha : float or "auto", default="auto"
        ``α``: weight of the constraint term in the θ-step. ``"auto"``: 1 for ``"kmeans"``
        and 0.01 for ``"gmm"`` (the paper's image settings).
    dual_step : float, default=1.0
        Step of the dual update ``U ← U + dual_step (Y − F)`` (the paper: 1; its reference
        code damps the GMM's with 0.5).
    covariance_ridge : float, default=1e-2
        Added to the diagonal of every covariance, everywhere the covariance is used, as a
        fraction of the mean per-dimension variance of the embedding at initialisation (so
        that it does not depend on the embedding's scale; the fitted ``covariances_``
        include it). It caps the precisions: without it, components flatten on ``Y`` (the
        Y-step pulls every sample along the directions of highest precision, which then
        shrink further) and ``predict`` on ``f(X)`` degrades. The reference code adds an
        absolute 1e-5 inside the inverse only. Ignored for ``"kmeans"``.
    max_iter : int, default=100
        ADMM iterations (epochs). The paper runs at most 200 and reports that accuracy
        improves slowly after about 60.
    tol : float in [0, 1], default=1e-3
        Stop when fewer than this fraction of the Y-based labels change in an iteration
        (the paper's 0.1 %).
    learning_rate : float, default=1e-3
        Adam step size of the θ-step (the reference uses AdaDelta for its image networks).
    n_components : int, default=10
        Size ``p`` of the embedding.
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Hidden widths of the MLP autoencoder (the paper's d-500-500-2000-10, as DEC).
    activation : str, default="relu"
        Hidden-layer activation (the reference uses sigmoids on images).
    autoencoder : None, nn.Module, or callable, default=None
        None builds the MLP. A module instance (with ``encode`` and ``decode``) is
        deep-copied; a class or factory is called with ``n_features`` and ``n_components``.
    pretrain : {"auto", "adam", "sgd", "greedy"}, default="auto"
        Pretraining recipe (:ref:`User Guide <deep_pretraining>`); ``"auto"`` is SGD on
        inputs in [0, 1] with at least 2 000 pretraining steps and Adam otherwise, as in
        :class:`~skdeepcluster.AEKMeans`.
    pretrain_epochs : int or "auto", default="auto"
        Epochs of pretraining; 0 skips it.
    batch_size : int, default=256
        Mini-batch size of pretraining and θ-steps (the reference: 100).
    pretrain_learning_rate : float or "auto", default="auto"
    augmentation : "auto", callable or None, default="auto"
        Data augmentation of training: ``f(X_batch, generator) -> X_batch`` replaces every
        mini-batch of the pretraining (the autoencoder reconstructs the augmented samples)
        and, with ``clustering="kmeans"``, the batch the clustering loss is computed on
        (DEC-DA, Guo et al. 2018; the per-sample updates use the samples as they are).
        With ``clustering="gmm"`` the clustering phase trains on the samples as they are:
        augmented, its clusters merged (USPS: ACC 0.94 after 10 epochs, 0.42 after 100).
        ``"auto"`` shifts and rotates images
        (:class:`~skdeepcluster.augmentation.RandomAffine` at its defaults) when the rows
        are square one-channel images of at least 16 x 16 pixels
        (:func:`~skdeepcluster.augmentation.detect_image_shape`), and uses the samples as
        they are otherwise. None never augments. See the :ref:`User Guide
        <deep_augmentation>` for what it gains and where it harms.
    memory : str, joblib.Memory or None, default=None
        Cache of the pretrained network (a search over ``rho`` pretrains once).
    n_init : int, default=20
        k-means restarts that initialise the centres (or the mixture).
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
    precision : {"float32", "bfloat16"}, default="float32"
        Precision of the network's products (``"bfloat16"``: under :class:`torch.autocast`;
        see :class:`AEKMeans` and the :ref:`User Guide <mixed_precision>`).
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every iteration; True stops.

    Attributes
    ----------
    autoencoder_ : torch.nn.Module
        Trained network (CPU, eval mode).
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
        Centres (k-means) or component means (GMM) in the latent space.
    covariances_ : ndarray of shape (n_clusters, n_components_, n_components_)
        Full covariances of the components, the ridge included (``"gmm"`` only).
    weights_ : ndarray of shape (n_clusters,)
        Priors of the components (``"gmm"`` only).
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data (model applied to ``f_θ(X)``).
    admm_labels_ : ndarray of shape (n_samples,)
        The labels of the last iteration, computed on ``Y`` (a diagnostic).
    inertia_ : float
        Sum of squared latent distances of the training data to their centre or mean.
    rho_, alpha_ : float
        ``rho`` and ``alpha`` with ``"auto"`` resolved.
    pretrain_epochs_ : int
    pretrain_ : str
        The recipe that ran (``pretrain`` with ``"auto"`` resolved).
    pretrain_learning_rate_ : float
        Its learning rate (``pretrain_learning_rate`` with ``"auto"`` resolved).
    augmentation_ : callable or None
        The augmentation used (``augmentation`` with ``"auto"`` resolved).
    n_iter_ : int
        ADMM iterations run.
    n_components_ : int
    history_ : list of dict
        One record per epoch; "cluster" records add ``loss``, ``reconstruction``,
        ``constraint`` (the θ-step's penalty), ``residual`` (``||Y − F|| / ||F||`` after the
        Y-step), ``changed`` and ``n_reseeded`` (centres or components re-seeded), and for
        ``"gmm"`` ``log_likelihood`` (mean over ``Y``).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    DCN : hard k-means assignments updated per mini-batch.
    AEKMeans : the two-step baseline (same pretraining and initial centres).

    References
    ----------
    K. Tian, S. Zhou, J. Guan. DeepCluster: A General Clustering Framework based on Deep
    Learning. ECML PKDD 2017.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import DeepClusterADMM
    >>> X, y = make_blobs(n_samples=200, centers=3, n_features=8, random_state=0)
    >>> model = DeepClusterADMM(n_clusters=3, clustering="gmm", n_components=2,
    ...                         hidden_dims=(32,), pretrain_epochs=20, max_iter=5,
    ...                         random_state=0).fit(X)
    >>> model.covariances_.shape, model.rho_
    ((3, 2, 2), 1000.0)
    >>> model.predict_proba(X[:2]).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    """

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "clustering": [StrOptions({"kmeans", "gmm"})],
        "lam": [Interval(Real, 0, None, closed="left")],
        "rho": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "dual_step": [Interval(Real, 0, None, closed="neither")],
        "covariance_ridge": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
    }
    _fit_state = _ADMMState

    @property
    def _augments_clustering_phase(self):
        # k-means: the augmented phase was better (USPS seed 0: 0.935 against 0.918 with the
        # phase as is; MNIST seed 0 rose from 0.81 to 0.91). GMM: its clusters merged
        # (USPS seed 0: 0.90 -> 0.94 after 10 epochs -> 0.42 after 100), while with the
        # phase as is it held 0.93. The GMM augments its pretraining only.
        return self.clustering != "gmm"

    def __init__(
        self,
        n_clusters=8,
        *,
        clustering="kmeans",
        lam=1.0,
        rho="auto",
        alpha="auto",
        dual_step=1.0,
        covariance_ridge=1e-2,
        max_iter=100,
        tol=1e-3,
        learning_rate=1e-3,
        n_components=10,
        hidden_dims=(500, 500, 2000),
        activation="relu",
        autoencoder=None,
        pretrain="auto",
        pretrain_epochs="auto",
        batch_size=256,
        pretrain_learning_rate="auto",
        augmentation="auto",
        memory=None,
        n_init=20,
        random_state=None,
        verbose=0,
        device="auto",
        precision="float32",
        callbacks=None,
    ):
        self.n_clusters = n_clusters
        self.clustering = clustering
        self.lam = lam
        self.rho = rho
        self.alpha = alpha
        self.dual_step = dual_step
        self.covariance_ridge = covariance_ridge
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.autoencoder = autoencoder
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.batch_size = batch_size
        self.pretrain_learning_rate = pretrain_learning_rate
        self.augmentation = augmentation
        self.memory = memory
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.precision = precision
        self.callbacks = callbacks

    def _resolved(self, name):
        value = getattr(self, name)
        return float(ADMM_DEFAULTS[self.clustering][name] if value == "auto" else value)

    # ---------------------------------------------------------------- hooks
    def _init_clustering(self, state):
        state.rho = self._resolved("rho")
        state.alpha = self._resolved("alpha")
        state.Y = state.embedding.clone()
        state.U = torch.zeros_like(state.Y)
        state.centers = state.centers.clone()  # closed-form updates only: not a parameter
        if self.clustering == "gmm":
            state.ridge = self.covariance_ridge * float(
                state.embedding.var(dim=0, correction=0).mean())
            state.gmm = gmm_from_partition(state.Y, state.labels, self.n_clusters,
                                           state.ridge)
            state.centers = state.gmm.means
            state.admm_labels = self._update_resp(state)
            state.labels = state.admm_labels.clone()  # Y = f(X) at the start
        else:
            state.admm_labels = state.labels.clone()
        return []

    def _assign_training(self, state, F):
        """``predict``'s rule on the training embedding ``F`` with the current model."""
        if self.clustering == "gmm":
            return _gmm_assign(F, state.gmm)[0]
        return nearest_centers(F, state.centers)[0]

    def _batch_loss(self, state, idx, X_batch):
        ae = state.autoencoder
        Z = ae.encode(X_batch)
        reconstruction = reconstruction_loss(ae.decode(Z), X_batch, "sum")
        gap = state.Y[idx] - Z + state.U[idx]
        constraint = (gap * gap).sum(dim=1).mean()
        return {
            "loss": reconstruction + state.alpha * state.rho / 2.0 * constraint,
            "reconstruction": reconstruction,
            "constraint": constraint,
        }

    @torch.no_grad()
    def _epoch_end(self, state):
        F = embed(state.autoencoder, state.data)
        state.embedding = F
        target = F - state.U
        # Y-step with the assignments of the previous Y (computed at the end of the previous
        # iteration), dual step, then the clustering model's update on the new Y.
        if self.clustering == "gmm":
            Y = admm_gmm_y_step(target, state.resp, state.gmm.means,
                                gmm_precisions(state.gmm.covariances), self.lam, state.rho)
        else:
            Y = admm_kmeans_y_step(target, state.centers[state.admm_labels], self.lam,
                                   state.rho)
        state.U += self.dual_step * (Y - F)
        state.Y = Y
        record = {}
        if self.clustering == "gmm":
            state.gmm, reseeded = gmm_m_step(Y, state.resp, state.ridge,
                                             state.log_likelihood)
            state.centers = state.gmm.means
            n_reseeded = int(reseeded.numel())
            state.admm_labels = self._update_resp(state)
            record["log_likelihood"] = float(state.log_likelihood.mean())
        else:
            n_reseeded = self._center_step(state, Y, state.admm_labels)
            state.admm_labels = nearest_centers(Y, state.centers)[0]
        # ``tol`` is checked on the labels of the network's embedding (``predict``'s rule):
        # the Y-based labels hardly move, since the Y-step pulls every y to its own centre.
        record.update({
            "changed": set_labels(state, self._assign_training(state, F)),
            "residual": float(torch.linalg.norm(Y - F) / torch.linalg.norm(F).clamp_min(
                torch.finfo(F.dtype).tiny)),
            "n_reseeded": n_reseeded,
        })
        return record

    def _update_resp(self, state):
        """Responsibilities of the current Y under the current mixture; returns the labels."""
        log_resp, state.log_likelihood = gmm_log_resp(state.Y, state.gmm)
        state.resp = log_resp.exp()
        return log_resp.argmax(dim=1)

    def _center_step(self, state, Y, labels):
        """k-means w-step: every centre moves to the mean of its samples of ``Y``; an empty
        cluster takes over the sample of ``Y`` farthest from its centre (as k-means)."""
        counts = torch.bincount(labels, minlength=self.n_clusters).to(Y.dtype)
        sums = index_add_rows_(torch.zeros_like(state.centers), labels, Y)
        state.centers = centers_from_sums(state.centers, sums, counts)
        dist = ((Y - state.centers[labels]) ** 2).sum(dim=1)
        empty, _ = relocate_empty(state.centers, counts, Y, dist)
        return int(empty.numel())

    def _set_method_attributes(self, state):
        self.rho_ = state.rho
        self.alpha_ = state.alpha
        self.admm_labels_ = state.admm_labels.cpu().numpy().astype("int32")
        if self.clustering == "gmm":
            gmm = state.gmm  # set by _init_clustering, also when max_iter == 0
            self.cluster_centers_ = gmm.means.cpu().numpy().astype("float32")
            self.covariances_ = gmm.covariances.cpu().numpy().astype("float32")
            self.weights_ = gmm.weights.cpu().numpy().astype("float32")

    # ---------------------------------------------------------------- assignment rule
    def _fitted_gmm(self, centers):
        return GaussianMixtureParams(centers, torch.as_tensor(self.covariances_),
                                     torch.as_tensor(self.weights_))

    def _assign(self, Z, centers):
        """Nearest centre (``"kmeans"``) or most responsible component (``"gmm"``), with the
        squared distance to that centre or mean."""
        if self.clustering != "gmm":
            return super()._assign(Z, centers)
        return _gmm_assign(Z, self._fitted_gmm(centers))

    def _proba(self, Z, centers):
        return gmm_log_resp(Z, self._fitted_gmm(centers))[0].exp()

    #: The mixture's responsibilities; only with ``clustering="gmm"``.
    predict_proba = available_if(_is_gmm)(SoftAssignmentMixin.predict_proba)

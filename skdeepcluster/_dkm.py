"""DKM and CenteringKM: an autoencoder trained with a soft k-means term.

Both minimise ``L_rec + λ · mean_i Σ_k ||z_i − r_k||² G_ik`` and differ in the weights ``G``
and in how the centres ``R`` move:

* DKM (Moradi Fard, Thonet and Gaussier, Pattern Recognition Letters 2020): softmin weights
  ``G = softmax_k(−α ||z − r_k||²)``, centres trained by the optimiser with the network;
* CenteringKM (Roy, arXiv 2411.19496): inverse-power weights ``G ∝ ||z − r_k||^{−2α}``, centres
  re-fitted by k-means on the whole embedding after every epoch and held fixed in between.
"""

import math
from dataclasses import dataclass
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import (
    BaseDeepClusterer,
    FitState,
    SoftAssignmentMixin,
    embed,
    scaled_clustering_term,
    set_labels,
)
from ._engine import seeded_generator
from ._kmeans import kmeans, squared_distances
from ._losses import (
    inverse_power_weights,
    reconstruction_loss,
    softmin_weights,
    weighted_kmeans_loss,
)

__all__ = ["DKM", "CenteringKM", "dkm_alpha_schedule"]

#: First value of DKM's annealed inverse temperature (the reference code's DKMa setting).
ANNEAL_ALPHA_START = 0.1


def dkm_alpha_schedule(n_alphas, start=ANNEAL_ALPHA_START):
    """DKM's annealed inverse temperatures ``α_1 = 0.1``, ``α_{n+1} = 2^{1/ln(n+1)²} α_n``.

    The schedule of the DKM reference code without pretraining ("DKMa"); its first
    multiplier uses ``ln 2`` (the formula written from ``n = 1`` with ``ln n`` would divide
    by zero), giving 0.1, 0.42, 0.75, 1.08, ... and about 28 at the 40th value.

    Parameters
    ----------
    n_alphas : int
    start : float, default=0.1

    Returns
    -------
    list of float
    """
    alphas = [float(start)]
    for n in range(1, n_alphas):
        alphas.append(alphas[-1] * 2.0 ** (1.0 / math.log(n + 1) ** 2))
    return alphas


_KMEANS_FAMILY_CONSTRAINTS = {
    **BaseDeepClusterer._parameter_constraints,
    "n_components": [None, Interval(Integral, 1, None, closed="left")],
    "lam": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "tol": [Interval(Real, 0, 1, closed="both")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "scale_invariant": ["boolean"],
}



@dataclass(eq=False)
class _DKMState(FitState):
    """DKM's fit state: the inverse temperature of every epoch and of the current one."""

    alphas: list | None = None
    alpha: float = 1.0


class DKM(SoftAssignmentMixin, BaseDeepClusterer):
    """Deep k-Means (Moradi Fard, Thonet and Gaussier, Pattern Recognition Letters 2020).

    The autoencoder ``g_φ ∘ f_θ`` and the cluster representatives ``r_k`` are trained
    jointly by Adam on

    ``L = mean_i ||x_i − g_φ(f_θ(x_i))||² + λ mean_i Σ_k ||f_θ(x_i) − r_k||² G_ik``,
    ``G_ik = softmax_k(−α ||f_θ(x_i) − r_k||²)``,

    a differentiable k-means loss: as the inverse temperature ``α`` grows, ``Σ_k D_ik G_ik``
    tends to the distance to the nearest representative. Gradients flow through ``G`` as
    well as through the distances, and the representatives are parameters of the optimiser.
    The reconstruction error is summed over the features (the reference code's convention,
    under which its ``λ = 1`` was chosen). By default the k-means term of each mini-batch is
    divided by the batch's total variance (``scale_invariant=True``, this package's choice:
    the paper's term lets the network shrink the embedding, see the parameter);
    ``scale_invariant=False, lam=1.0`` is the paper's objective.

    Two regimes of the reference code:

    * with pretraining ("DKMp", the default): the autoencoder is pretrained, ``R`` is
      initialised by k-means on the embedding and ``α`` is held fixed (``alpha=1000``; the
      reference runs 20 values of 1000 for 5 epochs each, i.e. 100 epochs);
    * with annealing ("DKMa"): ``alpha="annealed"`` follows the reference's schedule
      (``α_1 = 0.1``, ``α_{n+1} = 2^{1/ln(n+1)²} α_n``: 0.1, 0.42, 0.75, ...), each value
      for ``epochs_per_alpha`` epochs (the reference: 40 values x 5 epochs,
      ``max_iter=200``, with ``pretrain_epochs=0``). The reference draws the initial ``R``
      uniformly in [-1, 1]; here it comes from k-means on the (untrained) embedding, as for
      every estimator of the package.

    Names of the paper: ``lam`` is ``λ``, ``alpha`` is ``α``, ``cluster_centers_`` are the
    representatives ``r_k``, ``n_components`` is the embedding size (``K`` in the paper).

    Read more in the :ref:`User Guide <kmeans_family>`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K``.
    lam : float, default=10.0
        ``λ``: weight of the soft k-means term against the reconstruction error (summed
        over features). With ``scale_invariant=True`` (the default) it weighs the term
        divided by the batch's total variance; with ``scale_invariant=False`` the paper's
        term, for which the DKM paper grid-searches ``λ`` in 1e-4 ... 1e1 (1 on MNIST and
        USPS).
    alpha : float or "annealed", default=1000.0
        Inverse temperature ``α`` of the softmin weights: a constant (the reference's
        setting with pretraining), or ``"annealed"`` for the reference's increasing
        schedule (see above).
    scale_invariant : bool, default=True
        Divide the soft k-means term of each mini-batch by the total variance of the
        batch's embedding, so that the term is the fraction of the spread left within
        clusters and cannot be lowered by shrinking every code (the decoder undoes any
        rescaling). False gives the paper's term, which on our pretraining contracts the
        embedding and lowers ACC below the two-step baseline (USPS, seed 0: AE+KM 0.688,
        paper's term 0.647 after 100 epochs; see the :ref:`User Guide <kmeans_family>`).
        The same switch as :class:`ConcreteKMeans`'s.
    epochs_per_alpha : int, default=5
        Epochs per value of the annealed schedule (``max_iter`` must be a multiple of it);
        ignored for a constant ``alpha``.
    max_iter : int, default=100
        Epochs of the clustering phase (the reference: 100 with pretraining, 200 annealed).
    tol : float in [0, 1], default=0.0
        Stop early when fewer than this fraction of the training labels change in an epoch.
        0 (the reference) runs all ``max_iter`` epochs.
    learning_rate : float, default=1e-3
        Adam step size of the clustering phase (the reference: TensorFlow's default 1e-3).
    n_components : int or None, default=None
        Size of the embedding; None: ``n_clusters`` (DKM's d-500-500-2000-K network).
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Hidden widths of the MLP autoencoder.
    activation : str, default="relu"
        Hidden-layer activation of the MLP.
    autoencoder : None, nn.Module, or callable, default=None
        None builds the MLP from the parameters above. A module instance (with ``encode``
        and ``decode`` methods) is deep-copied; with ``pretrain_epochs=0`` its weights are
        used as they are. A class or factory is called with ``n_features`` and
        ``n_components``.
    pretrain : {"auto", "adam", "sgd", "greedy"}, default="adam"
        Pretraining recipe of the autoencoder (:ref:`User Guide <deep_pretraining>`);
        ``"auto"`` is SGD on inputs in [0, 1] with at least 2 000 pretraining steps and
        Adam otherwise, as in :class:`~skdeepcluster.AEKMeans`. The default stays Adam
        here: after an SGD pretraining this method's clustering phase ended lower on USPS
        (mean ACC over three seeds 0.691 against 0.731 with Adam).
    pretrain_epochs : int or "auto", default="auto"
        Epochs of pretraining; ``"auto"`` aims at 8 000 optimiser steps within 50 to 300
        epochs (the reference pretrains 50 epochs). 0 skips it (the annealed regime).
    batch_size : int, default=256
    pretrain_learning_rate : float or "auto", default="auto"
        Step size of the pretraining (``"auto"``: 1e-3 for Adam, see
        :class:`~skdeepcluster.AEKMeans` for SGD).
    augmentation : "auto", callable or None, default="auto"
        Data augmentation of the pretraining: ``f(X_batch, generator) -> X_batch``
        replaces every pretraining mini-batch, and the autoencoder reconstructs the
        augmented samples (DEC-DA's pretraining, Guo et al. 2018). The clustering phase
        trains on the samples as they are (augmented, it drifted down on MNIST: 0.86 to
        0.77 over 100 epochs).
        ``"auto"`` shifts and rotates images
        (:class:`~skdeepcluster.augmentation.RandomAffine` at its defaults) when the rows
        are square one-channel images of at least 16 x 16 pixels
        (:func:`~skdeepcluster.augmentation.detect_image_shape`), and uses the samples as
        they are otherwise. None never augments. See the :ref:`User Guide
        <deep_augmentation>` for what it gains and where it harms.
    memory : str, joblib.Memory or None, default=None
        Cache of the pretrained network (a folder or a :class:`joblib.Memory`), so that a
        search over ``lam`` and ``alpha`` pretrains once per training set.
    n_init : int, default=20
        k-means restarts that initialise ``R`` (the reference: 10; 20 as every deep
        estimator of the package, so that the same ``random_state`` starts from
        :class:`AEKMeans`'s clustering).
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling and k-means. The caller's global RNGs are not touched.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar per phase.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Training device; ``"auto"`` uses CUDA when available.
    precision : {"float32", "bfloat16"}, default="float32"
        Precision of the network's products (``"bfloat16"``: under :class:`torch.autocast`;
        see :class:`AEKMeans` and the :ref:`User Guide <mixed_precision>`).
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every epoch; True stops the phase.

    Attributes
    ----------
    autoencoder_ : torch.nn.Module
        Trained network (CPU, eval mode).
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
        Representatives ``r_k`` in the latent space.
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data: the nearest representative with the final
        network (the reference reports the distances stored during the last epoch).
    inertia_ : float
        Sum of squared latent distances of the training data to their representative.
    alpha_ : float
        Inverse temperature of the last epoch (the last value of an annealed schedule);
        ``predict_proba`` returns the softmin weights ``G`` with it.
    pretrain_epochs_ : int
        Epochs of pretraining (``pretrain_epochs`` with ``"auto"`` resolved).
    pretrain_ : str
        The recipe that ran (``pretrain`` with ``"auto"`` resolved).
    pretrain_learning_rate_ : float
        Its learning rate (``pretrain_learning_rate`` with ``"auto"`` resolved).
    augmentation_ : callable or None
        The augmentation used (``augmentation`` with ``"auto"`` resolved).
    n_iter_ : int
        Epochs of the clustering phase run.
    n_components_ : int
        Size of the embedding.
    history_ : list of dict
        One record per epoch: ``phase``, ``epoch``, ``seconds``; "cluster" records add
        ``loss``, ``reconstruction``, ``clustering``, ``alpha`` and ``changed``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    CenteringKM : inverse-power weights and per-epoch k-means refits.
    DCN : hard assignments with closed-form centre updates.
    AEKMeans : the two-step baseline (same pretraining and initial centres).

    References
    ----------
    M. Moradi Fard, T. Thonet, E. Gaussier. Deep k-Means: Jointly clustering with k-Means
    and learning representations. Pattern Recognition Letters 138, 2020 (arXiv 1806.10069).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import DKM
    >>> X, y = make_blobs(n_samples=200, centers=3, n_features=8, random_state=0)
    >>> dkm = DKM(n_clusters=3, hidden_dims=(32,), pretrain_epochs=20, max_iter=5,
    ...           random_state=0).fit(X)
    >>> dkm.cluster_centers_.shape
    (3, 3)
    >>> [r["alpha"] for r in dkm.history_ if r["phase"] == "cluster"][:2]
    [1000.0, 1000.0]
    >>> dkm.predict_proba(X[:2]).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    """

    _parameter_constraints: dict = {
        **_KMEANS_FAMILY_CONSTRAINTS,
        "alpha": [Interval(Real, 0, None, closed="neither"), StrOptions({"annealed"})],
        "epochs_per_alpha": [Interval(Integral, 1, None, closed="left")],
    }
    _fit_state = _DKMState
    # With the clustering phase augmented too, DKM drifted down from its start on MNIST's
    # test set (seed 0: 0.858 -> 0.771 over 100 epochs); with the pretraining alone
    # augmented it rose to 0.882 (USPS seed 0: 0.865, against 0.870 with both). The
    # pretraining is augmented, the phase sees the samples as they are.
    _augments_clustering_phase = False

    def __init__(
        self,
        n_clusters=8,
        *,
        lam=10.0,
        alpha=1000.0,
        epochs_per_alpha=5,
        scale_invariant=True,
        max_iter=100,
        tol=0.0,
        learning_rate=1e-3,
        n_components=None,
        hidden_dims=(500, 500, 2000),
        activation="relu",
        autoencoder=None,
        pretrain="adam",
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
        self.lam = lam
        self.alpha = alpha
        self.epochs_per_alpha = epochs_per_alpha
        self.scale_invariant = scale_invariant
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

    def _check_method_params(self, X):
        if self.alpha == "annealed" and self.max_iter % self.epochs_per_alpha:
            raise ValueError(
                f"With alpha='annealed', max_iter={self.max_iter} must be a multiple of "
                f"epochs_per_alpha={self.epochs_per_alpha} (each value of the schedule runs "
                "that many epochs)."
            )

    def _init_clustering(self, state):
        state.centers = torch.nn.Parameter(state.centers.clone())
        state.alphas = self._alphas()
        return [state.centers]

    def _alphas(self):
        """The inverse temperature of every epoch."""
        if self.alpha != "annealed":
            return [float(self.alpha)] * max(self.max_iter, 1)
        n_alphas = max(self.max_iter // self.epochs_per_alpha, 1)
        return [a for a in dkm_alpha_schedule(n_alphas) for _ in range(self.epochs_per_alpha)]

    def _epoch_begin(self, state):
        state.alpha = state.alphas[state.epoch - 1]
        return {"alpha": state.alpha}

    def _batch_loss(self, state, idx, X_batch):
        ae = state.autoencoder
        Z = ae.encode(X_batch)
        reconstruction = reconstruction_loss(ae.decode(Z), X_batch, "sum")
        D = squared_distances(Z, state.centers)
        term = weighted_kmeans_loss(D, softmin_weights(D, state.alpha))
        clustering = scaled_clustering_term(term, Z, state, self.scale_invariant)
        return {
            "loss": reconstruction + self.lam * clustering,
            "reconstruction": reconstruction,
            "clustering": clustering,
        }

    def _set_method_attributes(self, state):
        # the last epoch run (a callback may stop early); the schedule's end without epochs
        self.alpha_ = float(state.alpha) if state.n_iter else self._alphas()[-1]

    def _proba(self, Z, centers):
        return softmin_weights(squared_distances(Z, centers), self.alpha_)


@dataclass(eq=False)
class _CenteringState(FitState):
    """CenteringKM's fit state: the generator of its k-means refits."""

    refit_generator: torch.Generator | None = None


class CenteringKM(SoftAssignmentMixin, BaseDeepClusterer):
    """Deep clustering with a centering loss and per-epoch k-means re-initialisation.

    The method of Roy (arXiv 2411.19496) ("CenteringKM" in this package). The autoencoder minimises

    ``L = mean_i ||x_i − g_φ(h_θ(x_i))||² + λ mean_i Σ_k ||h_θ(x_i) − r_k||² G_ik``,
    ``G_ik = ||h_θ(x_i) − r_k||^{−2α} / Σ_k' ||h_θ(x_i) − r_k'||^{−2α}``,

    the centering loss: inverse-power weights (the fuzzy c-means membership with fuzzifier
    ``1 + 1/α``; ``α = 1`` gives the K-harmonic-means objective) pull each embedding
    towards its near centres. The centres are not trained by gradient: after every epoch
    the whole training set is embedded and k-means re-fits ``R`` on it (Algorithm 1 of the
    paper), held fixed during the next epoch. The refit is warm-started from the current
    centres on the training device (the paper does not say; ``reinit="scratch"`` runs
    k-means++ with ``n_init`` restarts instead).

    Names of the paper: ``lam`` is ``λ``, ``alpha`` is ``α``, ``cluster_centers_`` are the
    centres ``R`` of the last k-means refit. Defaults: the paper's MNIST setting (``α = 3``,
    ``λ = 10``, 100 epochs, batch 256) on a scale-invariant loss (``scale_invariant=True``,
    this package's choice; False is the paper's loss); the paper gives no optimiser or
    network, so the DKM setting it builds on is used (Adam 1e-3, d-500-500-2000-K MLP,
    reconstruction summed over the features).

    Read more in the :ref:`User Guide <kmeans_family>`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K``.
    lam : float, default=10.0
        ``λ``: weight of the centering loss (the paper's grid: 1e-4 ... 1e1; 10 on MNIST,
        USPS and COIL100). With ``scale_invariant=True`` (the default) the loss is divided
        by the batch's total variance first.
    alpha : float, default=3.0
        Exponent ``α`` of the inverse-power weights (the paper recommends ``α >= 2``; 2.5 on
        USPS, 3 on MNIST).
    reinit : {"warm", "scratch"} or None, default="warm"
        How the centres are re-fitted after every epoch: k-means warm-started from the
        current centres, or from k-means++ (``n_init`` restarts). None is the paper's
        ablation without re-initialisation ("Ours-rein"): the centres are then trained by
        the optimiser with the network.
    scale_invariant : bool, default=True
        Divide the centering loss of each mini-batch by the total variance of the batch's
        embedding (the weights ``G`` are already scale-free), so that the loss cannot be
        lowered by shrinking every code. False gives the paper's loss, which with
        ``λ = 10`` collapsed our pretrained embedding within one epoch (USPS, seed 0: ACC
        0.34 against AE+KM's 0.69; see the :ref:`User Guide <kmeans_family>`).
    max_iter : int, default=100
        Epochs of the clustering phase (100 in every experiment of the paper).
    tol : float in [0, 1], default=0.0
        Stop early when fewer than this fraction of the training labels change in an epoch.
        0 (the paper) runs all ``max_iter`` epochs.
    learning_rate : float, default=1e-3
        Adam step size of the clustering phase.
    n_components : int or None, default=None
        Size of the embedding; None: ``n_clusters``.
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Hidden widths of the MLP autoencoder.
    activation : str, default="relu"
        Hidden-layer activation of the MLP.
    autoencoder : None, nn.Module, or callable, default=None
        None builds the MLP from the parameters above. A module instance is deep-copied
        (with ``pretrain_epochs=0`` its weights are used as they are); a class or factory
        is called with ``n_features`` and ``n_components``.
    pretrain : {"auto", "adam", "sgd", "greedy"}, default="adam"
        Pretraining recipe of the autoencoder (:ref:`User Guide <deep_pretraining>`);
        ``"auto"`` is SGD on inputs in [0, 1] with at least 2 000 pretraining steps and
        Adam otherwise, as in :class:`~skdeepcluster.AEKMeans`. The default stays Adam
        here: after an SGD pretraining this method's clustering phase ended lower on USPS
        (mean ACC over three seeds 0.678 against 0.735 with Adam; 0.485 against 0.758 on
        one MNIST seed).
    pretrain_epochs : int or "auto", default="auto"
        Epochs of pretraining (the paper: 50); ``"auto"`` aims at 8 000 optimiser steps
        within 50 to 300 epochs. 0 skips it.
    batch_size : int, default=256
    pretrain_learning_rate : float or "auto", default="auto"
        Step size of the pretraining (``"auto"``: 1e-3 for Adam, see
        :class:`~skdeepcluster.AEKMeans` for SGD).
    augmentation : "auto", callable or None, default="auto"
        Data augmentation of the pretraining: ``f(X_batch, generator) -> X_batch``
        replaces every pretraining mini-batch, and the autoencoder reconstructs the
        augmented samples (DEC-DA's pretraining, Guo et al. 2018). The clustering phase
        trains on the samples as they are: augmented, its clusters merged (USPS: ACC 0.84
        after 10 epochs, 0.24 after 100).
        ``"auto"`` shifts and rotates images
        (:class:`~skdeepcluster.augmentation.RandomAffine` at its defaults) when the rows
        are square one-channel images of at least 16 x 16 pixels
        (:func:`~skdeepcluster.augmentation.detect_image_shape`), and uses the samples as
        they are otherwise. None never augments. See the :ref:`User Guide
        <deep_augmentation>` for what it gains and where it harms.
    memory : str, joblib.Memory or None, default=None
        Cache of the pretrained network (a folder or a :class:`joblib.Memory`).
    n_init : int, default=20
        k-means restarts of the initial centres (and of every refit with
        ``reinit="scratch"``); 20 as every deep estimator of the package, so that the same
        ``random_state`` starts from :class:`AEKMeans`'s clustering.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling and k-means. The caller's global RNGs are not touched.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar per phase.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Training device; ``"auto"`` uses CUDA when available.
    precision : {"float32", "bfloat16"}, default="float32"
        Precision of the network's products (``"bfloat16"``: under :class:`torch.autocast`;
        see :class:`AEKMeans` and the :ref:`User Guide <mixed_precision>`).
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every epoch; True stops the phase.

    Attributes
    ----------
    autoencoder_ : torch.nn.Module
        Trained network (CPU, eval mode).
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
        Centres ``R`` (of the last k-means refit).
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data: the nearest centre (the labels of the final
        k-means refit, which ends on the final embedding).
    inertia_ : float
        Sum of squared latent distances of the training data to their centre.
    pretrain_epochs_ : int
        Epochs of pretraining (``pretrain_epochs`` with ``"auto"`` resolved).
    pretrain_ : str
        The recipe that ran (``pretrain`` with ``"auto"`` resolved).
    pretrain_learning_rate_ : float
        Its learning rate (``pretrain_learning_rate`` with ``"auto"`` resolved).
    augmentation_ : callable or None
        The augmentation used (``augmentation`` with ``"auto"`` resolved).
    n_iter_ : int
        Epochs of the clustering phase run.
    n_components_ : int
        Size of the embedding.
    history_ : list of dict
        One record per epoch: ``phase``, ``epoch``, ``seconds``; "cluster" records add
        ``loss``, ``reconstruction``, ``clustering``, ``changed`` and, with a refit,
        ``kmeans_iter`` and ``inertia``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    DKM : softmin weights, centres trained by gradient.
    AEKMeans : the two-step baseline (same pretraining and initial centres).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import CenteringKM
    >>> X, y = make_blobs(n_samples=200, centers=3, n_features=8, random_state=0)
    >>> ckm = CenteringKM(n_clusters=3, hidden_dims=(32,), pretrain_epochs=20, max_iter=5,
    ...                   random_state=0).fit(X)
    >>> bool((ckm.predict(X) == ckm.labels_).all())
    True
    >>> "kmeans_iter" in ckm.history_[-1]
    True
    >>> ckm.predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **_KMEANS_FAMILY_CONSTRAINTS,
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "reinit": [StrOptions({"warm", "scratch"}), None],
    }
    _fit_state = _CenteringState
    # With the clustering phase augmented the clusters merged, epoch after epoch (USPS,
    # seed 0: ACC 0.84 after 10 epochs, 0.24 after 100; with the pretraining alone
    # augmented, 0.84 held to the end). The pretraining is augmented, the phase sees the
    # samples as they are.
    _augments_clustering_phase = False

    def __init__(
        self,
        n_clusters=8,
        *,
        lam=10.0,
        alpha=3.0,
        reinit="warm",
        scale_invariant=True,
        max_iter=100,
        tol=0.0,
        learning_rate=1e-3,
        n_components=None,
        hidden_dims=(500, 500, 2000),
        activation="relu",
        autoencoder=None,
        pretrain="adam",
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
        self.lam = lam
        self.alpha = alpha
        self.reinit = reinit
        self.scale_invariant = scale_invariant
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

    def _init_clustering(self, state):
        # The refits draw from a generator of their own (the shuffling stream is unchanged).
        state.refit_generator = seeded_generator(state.seed + 3, state.device)
        if self.reinit is None:
            state.centers = torch.nn.Parameter(state.centers.clone())
            return [state.centers]
        return []

    def _batch_loss(self, state, idx, X_batch):
        ae = state.autoencoder
        Z = ae.encode(X_batch)
        reconstruction = reconstruction_loss(ae.decode(Z), X_batch, "sum")
        D = squared_distances(Z, state.centers)
        term = weighted_kmeans_loss(D, inverse_power_weights(D, self.alpha))
        clustering = scaled_clustering_term(term, Z, state, self.scale_invariant)
        return {
            "loss": reconstruction + self.lam * clustering,
            "reconstruction": reconstruction,
            "clustering": clustering,
        }

    def _epoch_end(self, state):
        if self.reinit is None:
            return super()._epoch_end(state)
        # Algorithm 1: re-fit the centres by k-means on the whole (new) embedding.
        state.embedding = embed(state.autoencoder, state.data)
        init = state.centers if self.reinit == "warm" else "k-means++"
        result = kmeans(state.embedding, self.n_clusters, self.n_init,
                        state.refit_generator, init=init)
        state.centers = result.centers
        return {"changed": set_labels(state, result.labels), "kmeans_iter": result.n_iter,
                "inertia": result.inertia}

    def _proba(self, Z, centers):
        return inverse_power_weights(squared_distances(Z, centers), self.alpha)

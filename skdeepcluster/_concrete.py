"""ConcreteKMeans: deep concrete k-means (Gao, Yang, Gouk, Hospedales, ICASSP 2020)."""

from dataclasses import dataclass
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseDeepClusterer, FitState, SoftAssignmentMixin
from ._losses import (
    absolute_sigma,
    anneal_rate,
    concrete_kmeans_loss,
    gumbel_noise,
    rbf_assignment_proba,
    reconstruction_loss,
    scale_free_term,
    temperature,
)

__all__ = ["ConcreteKMeans"]


@dataclass(eq=False)
class _ConcreteState(FitState):
    """ConcreteKMeans's fit state: the temperature schedule and the embedding's scale."""

    anneal_rate: float = 0.0
    tau: float = 1.0
    sigma: float = 1.0  # absolute bandwidth, re-measured every epoch
    total_variance: float = 1.0  # of the whole training embedding, at the last measure


class ConcreteKMeans(SoftAssignmentMixin, BaseDeepClusterer):
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
    pretrain : {"auto", "adam", "sgd", "greedy"}, default="auto"
        Pretraining recipe of the autoencoder (:ref:`User Guide <deep_pretraining>`):
        ``"adam"`` trains the whole network end to end with Adam; ``"sgd"`` with SGD and
        momentum 0.9 (the DEC-keras MNIST recipe, learning rate 1 on the squared error
        averaged over the features, meant for inputs scaled to [0, 1]); ``"greedy"``
        trains each layer pair as a denoising autoencoder first, then fine-tunes end to
        end (the DEC paper's schedule, here with Adam). ``"auto"`` is ``"sgd"`` when
        every input value lies in [0, 1] (e.g. pixels divided by their maximum) and the
        pretraining has at least 2 000 optimiser steps, and ``"adam"`` otherwise
        (standardised features, short pretrainings); ``pretrain_`` says which ran.
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
        Step size of the pretraining; ``"auto"``: 1e-3 for ``"adam"`` and ``"greedy"``;
        for ``"sgd"``, 1 on pixels scaled to [0, 1] and proportionally less on larger
        inputs (mean square ``m`` of the input: ``min(1, 0.25 / m)``, 0.25 on
        standardised features).
    augmentation : "auto", callable or None, default="auto"
        Data augmentation of the pretraining: ``f(X_batch, generator) -> X_batch``
        replaces every pretraining mini-batch, and the autoencoder reconstructs the
        augmented samples (DEC-DA's pretraining, Guo et al. 2018). The clustering phase
        trains on the samples as they are (augmenting it too cost 0.012-0.022 ACC on every
        seed of MNIST's test set and USPS).
        ``"auto"`` shifts and rotates images
        (:class:`~skdeepcluster.augmentation.RandomAffine` at its defaults) when the rows
        are square one-channel images of at least 16 x 16 pixels
        (:func:`~skdeepcluster.augmentation.detect_image_shape`), and uses the samples as
        they are otherwise. None never augments. See the :ref:`User Guide
        <deep_augmentation>` for what it gains and where it harms.
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
        Centres ``M`` in the latent space.
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data (nearest centre, no noise).
    inertia_ : float
        Sum of squared latent distances of the training data to their centre.
    sigma_ : float
        Absolute bandwidth ``σ`` used in training and by ``predict_proba``.
    pretrain_epochs_ : int
        Epochs of end-to-end pretraining (``pretrain_epochs`` with ``"auto"`` resolved).
    pretrain_ : str
        The recipe that ran (``pretrain`` with ``"auto"`` resolved).
    pretrain_learning_rate_ : float
        Its learning rate (``pretrain_learning_rate`` with ``"auto"`` resolved).
    augmentation_ : callable or None
        The augmentation used (``augmentation`` with ``"auto"`` resolved).
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
        pretrain="auto",
        pretrain_epochs="auto",
        max_iter=100,
        tol=1e-3,
        batch_size=256,
        pretrain_learning_rate="auto",
        augmentation="auto",
        memory=None,
        learning_rate=1e-4,
        n_init=20,
        random_state=None,
        verbose=0,
        device="auto",
        precision="float32",
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
        self.augmentation = augmentation
        self.memory = memory
        self.learning_rate = learning_rate
        self.n_init = n_init
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.precision = precision
        self.callbacks = callbacks

    _fit_state = _ConcreteState
    # Augmenting the clustering phase as well cost 0.012-0.022 ACC on every seed of MNIST's
    # test set and USPS (3 seeds each) against the pretraining alone: the pretraining is
    # augmented, the phase sees the samples as they are.
    _augments_clustering_phase = False

    def _check_method_params(self, X):
        if not self.tau_min <= self.tau:
            raise ValueError(f"tau_min={self.tau_min} should be <= tau={self.tau}.")

    def _measure_embedding(self, state, Z):
        # σ follows the scale of the embedding (measured on the whole training set after
        # each epoch): with a fixed σ, a shrinking embedding would make p(k|z) flat and the
        # sampled assignments random, which drives the embedding to collapse.
        state.total_variance = float(torch.var(Z, dim=0, correction=0).sum())
        state.sigma = absolute_sigma(self.sigma, state.total_variance)

    def _init_clustering(self, state):
        self._measure_embedding(state, state.embedding)
        state.centers = torch.nn.Parameter(state.centers.clone())
        state.anneal_rate = anneal_rate(self.tau, self.tau_min, self.anneal_rate,
                                        self.max_iter // 2)
        return [state.centers]

    def _epoch_begin(self, state):
        self._measure_embedding(state, state.embedding)
        state.tau = temperature(self.tau, self.tau_min, state.anneal_rate, state.epoch - 1)
        return {"tau": state.tau, "sigma": state.sigma}

    def _batch_loss(self, state, idx, X_batch):
        ae = state.autoencoder
        Z = ae.encode(X_batch)
        reconstruction = reconstruction_loss(ae.decode(Z), X_batch, self._reconstruction_reduction)
        noise = gumbel_noise((Z.shape[0], self.n_clusters), state.generator, Z.device, Z.dtype)
        clustering, _ = concrete_kmeans_loss(Z, state.centers, state.tau, state.sigma, noise)
        clustering = clustering / Z.shape[0]
        if self.scale_invariant:
            clustering = scale_free_term(clustering, Z, state.total_variance,
                                         state.data.group)
        return {
            "loss": reconstruction + self.lam * clustering,
            "reconstruction": reconstruction,
            "clustering": clustering,
        }

    def _set_method_attributes(self, state):
        self._measure_embedding(state, state.embedding)
        self.sigma_ = state.sigma

    def _proba(self, Z, centers):
        return rbf_assignment_proba(Z, centers, self.sigma_)

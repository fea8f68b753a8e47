"""DEC, IDEC and DCEC: self-training on a Student's t soft assignment (Xie et al. 2016).

The three share everything but their hooks' options: the assignment ``Q``
(:func:`~skdeepcluster._losses.student_t_log_assignment`), the target ``P`` recomputed from
the whole training set every ``update_interval`` steps
(:func:`~skdeepcluster._losses.target_distribution`) and the loss ``KL(P || Q)``
(:func:`~skdeepcluster._losses.kl_clustering_loss`). DEC trains the encoder alone on the
KL term; IDEC adds the reconstruction error (weight 1) to ``lam`` times the KL term; DCEC is
IDEC on the convolutional autoencoder.
"""

from dataclasses import dataclass, field
from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseDeepClusterer, FitState, SoftAssignmentMixin
from ._engine import make_optimizer
from ._losses import (
    kl_clustering_loss,
    reconstruction_loss,
    student_t_log_assignment,
    target_distribution,
)
from .augmentation import AUTO_MIN_SIDE
from .networks import ConvAutoencoder, _cae_geometry, build_autoencoder

__all__ = ["DCEC", "DEC", "IDEC"]


@dataclass(eq=False)
class _DECState(FitState):
    """DEC's fit state: the target distribution and its update schedule."""

    target: torch.Tensor | None = None  # P of the whole training set (n, k), no gradient
    n_target_updates: int = 0
    n_steps: int = 0  # mini-batch steps of the clustering phase
    settled: bool = False  # fewer than tol labels changed at the last target update
    epoch_values: dict = field(default_factory=dict)  # recorded at the epoch's end


class _BaseDEC(SoftAssignmentMixin, BaseDeepClusterer):
    """The DEC family: hooks shared by DEC, IDEC and DCEC (not for direct use)."""

    _fit_state = _DECState

    _parameter_constraints: dict = {
        **BaseDeepClusterer._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "update_interval": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "optimizer": [StrOptions({"sgd", "adam"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
    }

    # Keras' ``mse`` (mean over the features), the convention of the DEC/IDEC/DCEC code, so
    # that lam=0.1 weighs the KL term as γ=0.1 does there (the IDEC and DCEC reference code).
    _reconstruction_reduction = "mean"
    #: Whether the reconstruction error is part of the clustering-phase loss (not in DEC).
    _keeps_decoder = True

    def _make_optimizer(self, params):
        return make_optimizer(self.optimizer, params, self.learning_rate, self.momentum)

    def _init_clustering(self, state):
        state.centers = torch.nn.Parameter(state.centers.clone())
        return [state.centers]

    def _epoch_begin(self, state):
        state.epoch_values = {}
        if state.target is None:
            # The first target, from the initial embedding, before the first step.
            self._update_target(state)
        return {}

    def _update_target(self, state):
        # P from the soft assignments of the *whole* training set (its cluster frequencies
        # f_j are a data-set statistic), held fixed until the next update.
        log_q = student_t_log_assignment(state.embedding, state.centers.detach(), self.alpha)
        state.target = target_distribution(log_q.exp())
        state.n_target_updates += 1
        state.epoch_values["target_updates"] = state.n_target_updates

    def _batch_loss(self, state, idx, X_batch):
        ae = state.autoencoder
        Z = ae.encode(X_batch)
        log_q = student_t_log_assignment(Z, state.centers, self.alpha)
        clustering = kl_clustering_loss(state.target[idx], log_q)
        if not self._keeps_decoder:
            return {"loss": clustering, "clustering": clustering}
        reconstruction = reconstruction_loss(ae.decode(Z), X_batch,
                                             self._reconstruction_reduction)
        return {
            "loss": reconstruction + self.lam * clustering,
            "reconstruction": reconstruction,
            "clustering": clustering,
        }

    def _after_step(self, state, idx, X_batch):
        # Every T steps: training labels of the whole set, the label-change check, then a
        # new target. The phase ends at the update where fewer than tol labels changed.
        state.n_steps += 1
        n_batches = -(-state.data.n_samples // self.batch_size)
        if state.n_steps % self.update_interval or state.n_steps == self.max_iter * n_batches:
            # (no update after the very last step: no step would use its target)
            return False
        state.epoch_values["changed"] = self._relabel(state)
        self._update_target(state)
        state.settled = state.changed < self.tol
        return state.settled

    def _epoch_end(self, state):
        # The labels are checked at the target updates, not per epoch.
        return state.epoch_values

    def _converged(self, state):
        return state.settled

    def _set_method_attributes(self, state):
        self.n_target_updates_ = state.n_target_updates

    def _proba(self, Z, centers):
        return student_t_log_assignment(Z, centers, self.alpha).exp()


class DEC(_BaseDEC):
    """Deep Embedded Clustering (Xie, Girshick and Farhadi, ICML 2016).

    After pretraining an autoencoder and initialising the centres ``μ`` by
    k-means on the embedding, DEC drops the decoder and trains the encoder ``f_θ`` and the
    centres to minimise ``KL(P || Q)``, where ``Q`` is the soft assignment of each embedded
    point by a Student's t kernel and ``P`` the sharpened, frequency-normalised target
    ``p_ij ∝ q_ij² / f_j`` (``f_j = Σ_i q_ij``). ``P`` is recomputed from the whole training set
    every ``update_interval`` steps and held fixed in between (self-training); training
    stops when fewer than ``tol`` of the labels change between two updates.

    Defaults follow the DEC-keras reference (the DEC Caffe code agrees except ``T = 160``):
    SGD with learning rate 0.01 and momentum 0.9, batch 256, ``T = 140``, ``tol = 0.1 %``,
    KL averaged over the batch (``batchmean``). Only the encoder and the centres are trained
    in the clustering phase; ``autoencoder_`` keeps the pretrained decoder unchanged.

    Read more in the :ref:`User Guide <dec>`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K``.
    alpha : float, default=1.0
        Degrees of freedom ``α`` of the Student's t kernel
        ``q_ij ∝ (1 + ||z_i − μ_j||² / α)^{−(α+1)/2}`` (1 in every reference).
    update_interval : int, default=140
        ``T``: mini-batch steps between two updates of the target distribution ``P``, which is
        computed from the soft assignments of the whole training set (140 in DEC-keras,
        IDEC and DCEC for MNIST; the references use 30 on USPS and 3-20 on small sets).
    tol : float in [0, 1], default=1e-3
        ``δ``: stop when fewer than this fraction of the training labels changed between two
        consecutive target updates (0.1 %, as the references).
    max_iter : int, default=200
        Maximum number of epochs of the clustering phase. The references count mini-batch
        steps: ``maxiter = 2e4`` steps of 256 samples are 73 epochs of MNIST (70 000) and
        512 of its 10 000-image test set.
    optimizer : {"sgd", "adam"}, default="sgd"
        Optimiser of the clustering phase (DEC: SGD with momentum).
    learning_rate : float, default=0.01
        Its step size.
    momentum : float in [0, 1), default=0.9
        SGD momentum (ignored by Adam).
    batch_size : int, default=256
    pretrain_learning_rate : float or "auto", default="auto"
        Step size of the pretraining; ``"auto"``: 1e-3 for ``"adam"`` and ``"greedy"``;
        for ``"sgd"``, 1 on pixels scaled to [0, 1] and proportionally less on larger
        inputs (mean square ``m`` of the input: ``min(1, 0.25 / m)``, 0.25 on
        standardised features).
    augmentation : "auto", callable or None, default="auto"
        Data augmentation of training: ``f(X_batch, generator) -> X_batch`` replaces every
        mini-batch of the pretraining (the autoencoder reconstructs the augmented samples)
        and the batch the clustering loss is computed on (DEC-DA, Guo et al. 2018; the
        training labels, targets and other per-sample updates use the samples as they are).
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
    n_init : int, default=20
        k-means restarts that initialise the centres ``μ`` on the pretrained embedding.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling and k-means. The caller's global RNGs are not touched.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar per phase.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Training device; ``"auto"`` uses CUDA when available. Fitted networks live on the
        CPU.
    precision : {"float32", "bfloat16"}, default="float32"
        Precision of the network's products (``"bfloat16"``: under :class:`torch.autocast`;
        see :class:`AEKMeans` and the :ref:`User Guide <mixed_precision>`).
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every epoch; True stops the phase.
    n_components : int, default=10
        Size ``p`` of the embedding ``z = f_θ(x)``.
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Hidden widths of the MLP autoencoder (``d-500-500-2000-p``, the network of DEC).
    activation : str, default="relu"
        Hidden-layer activation of the MLP.
    autoencoder : None, nn.Module, or callable, default=None
        None builds the MLP from the parameters above. A module instance (with ``encode``
        and ``decode`` methods) is deep-copied; with ``pretrain_epochs=0`` its weights are
        used as they are (e.g. the ``autoencoder_`` of a fitted :class:`AEKMeans`). A class
        or factory is called with ``n_features`` and ``n_components``; e.g.
        ``functools.partial(ConvAutoencoder, input_shape=(28, 28))``.
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

    Attributes
    ----------
    autoencoder_ : torch.nn.Module
        Trained network (CPU, eval mode).
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
        Centres ``μ_j`` in the latent space.
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data with the final network (``argmax_j q_ij``, the
        nearest centre). The reference code reports the labels of the last target update
        instead; they differ by at most the last interval's changes.
    inertia_ : float
        Sum of squared latent distances of the training data to their centre.
    pretrain_epochs_ : int
        Epochs of end-to-end pretraining (``pretrain_epochs`` with ``"auto"`` resolved).
    pretrain_ : str
        The recipe that ran (``pretrain`` with ``"auto"`` resolved).
    pretrain_learning_rate_ : float
        Its learning rate (``pretrain_learning_rate`` with ``"auto"`` resolved).
    augmentation_ : callable or None
        The augmentation used (``augmentation`` with ``"auto"`` resolved).
    n_iter_ : int
        Epochs of the clustering phase run (the last one may be partial: training stops at
        the target update where the labels settle).
    n_target_updates_ : int
        Times the target distribution was computed.
    n_components_ : int
    history_ : list of dict
        One record per epoch: ``phase``, ``epoch``, ``seconds``; "pretrain" records add
        ``reconstruction``; the "init" record ``inertia`` and ``kmeans_iter``; "cluster"
        records add ``loss``, ``clustering`` (the KL term),
        ``target_updates`` and ``changed`` (label change at the epoch's last target update).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    IDEC : keeps the decoder and its reconstruction loss during clustering.
    DCEC : IDEC with a convolutional autoencoder.
    AEKMeans : the two-step baseline (same pretraining and initial centres).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import DEC
    >>> X, y = make_blobs(n_samples=200, centers=3, n_features=8, random_state=0)
    >>> dec = DEC(n_clusters=3, hidden_dims=(32,), n_components=2, pretrain_epochs=20,
    ...           max_iter=10, update_interval=5, random_state=0).fit(X)
    >>> dec.predict_proba(X[:2]).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    >>> bool((dec.predict(X) == dec.labels_).all())
    True
    """

    _keeps_decoder = False

    def __init__(
        self,
        n_clusters=8,
        *,
        alpha=1.0,
        update_interval=140,
        tol=1e-3,
        max_iter=200,
        optimizer="sgd",
        learning_rate=0.01,
        momentum=0.9,
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
        self.alpha = alpha
        self.update_interval = update_interval
        self.tol = tol
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
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


class IDEC(_BaseDEC):
    """Improved Deep Embedded Clustering (Guo, Gao, Liu and Yin, IJCAI 2017).

    DEC with the decoder kept: the autoencoder and the centres minimise
    ``L = L_r + γ KL(P || Q)``, so that the reconstruction error preserves the local
    structure of the data while the clustering term sharpens the clusters. The encoder gets
    gradients from both terms, the decoder from ``L_r`` and the centres from the KL term
    only. ``Q``, ``P``, the target updates every ``update_interval`` steps and the stopping
    rule are DEC's (:class:`DEC`).

    Defaults follow the IDEC reference code for MNIST: Adam 1e-3, batch 256, ``T = 140``,
    ``tol = 0.1 %``, ``γ = 0.1`` with the reconstruction as Keras' ``mse``.

    Read more in the :ref:`User Guide <dec>`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K``.
    lam : float, default=0.1
        ``γ``: weight of the clustering term ``KL(P || Q)`` against the reconstruction error
        (which has weight 1). The reconstruction error is the squared error averaged over the
        features and the batch (Keras' ``mse``, the reference code's convention, under which
        the published γ = 0.1 was tuned). ``lam=0`` trains the autoencoder
        alone with fixed centres.
    alpha : float, default=1.0
        Degrees of freedom ``α`` of the Student's t kernel
        ``q_ij ∝ (1 + ||z_i − μ_j||² / α)^{−(α+1)/2}`` (1 in every reference).
    update_interval : int, default=140
        ``T``: mini-batch steps between two updates of the target distribution ``P``, which is
        computed from the soft assignments of the whole training set (140 in DEC-keras,
        IDEC and DCEC for MNIST; the references use 30 on USPS and 3-20 on small sets).
    tol : float in [0, 1], default=1e-3
        ``δ``: stop when fewer than this fraction of the training labels changed between two
        consecutive target updates (0.1 %, as the references).
    max_iter : int, default=200
        Maximum number of epochs of the clustering phase. The references count mini-batch
        steps: ``maxiter = 2e4`` steps of 256 samples are 73 epochs of MNIST (70 000) and
        512 of its 10 000-image test set.
    optimizer : {"adam", "sgd"}, default="adam"
        Optimiser of the clustering phase. The IDEC code uses Adam (1e-3) on MNIST and
        SGD (lr 0.1, momentum 0.99, ``T = 30``) on USPS; DCEC uses Adam.
    learning_rate : float, default=1e-3
        Its step size.
    momentum : float in [0, 1), default=0.9
        SGD momentum (ignored by Adam).
    batch_size : int, default=256
    pretrain_learning_rate : float or "auto", default="auto"
        Step size of the pretraining; ``"auto"``: 1e-3 for ``"adam"`` and ``"greedy"``;
        for ``"sgd"``, 1 on pixels scaled to [0, 1] and proportionally less on larger
        inputs (mean square ``m`` of the input: ``min(1, 0.25 / m)``, 0.25 on
        standardised features).
    augmentation : "auto", callable or None, default="auto"
        Data augmentation of training: ``f(X_batch, generator) -> X_batch`` replaces every
        mini-batch of the pretraining (the autoencoder reconstructs the augmented samples)
        and the batch the clustering loss is computed on (DEC-DA, Guo et al. 2018; the
        training labels, targets and other per-sample updates use the samples as they are).
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
    n_init : int, default=20
        k-means restarts that initialise the centres ``μ`` on the pretrained embedding.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling and k-means. The caller's global RNGs are not touched.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar per phase.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Training device; ``"auto"`` uses CUDA when available. Fitted networks live on the
        CPU.
    precision : {"float32", "bfloat16"}, default="float32"
        Precision of the network's products (``"bfloat16"``: under :class:`torch.autocast`;
        see :class:`AEKMeans` and the :ref:`User Guide <mixed_precision>`).
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every epoch; True stops the phase.
    n_components : int, default=10
        Size ``p`` of the embedding ``z = f_θ(x)``.
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Hidden widths of the MLP autoencoder (``d-500-500-2000-p``, the network of DEC).
    activation : str, default="relu"
        Hidden-layer activation of the MLP.
    autoencoder : None, nn.Module, or callable, default=None
        None builds the MLP from the parameters above. A module instance (with ``encode``
        and ``decode`` methods) is deep-copied; with ``pretrain_epochs=0`` its weights are
        used as they are (e.g. the ``autoencoder_`` of a fitted :class:`AEKMeans`). A class
        or factory is called with ``n_features`` and ``n_components``; e.g.
        ``functools.partial(ConvAutoencoder, input_shape=(28, 28))``.
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

    Attributes
    ----------
    autoencoder_ : torch.nn.Module
        Trained network (CPU, eval mode).
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
        Centres ``μ_j`` in the latent space.
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data with the final network (``argmax_j q_ij``, the
        nearest centre). The reference code reports the labels of the last target update
        instead; they differ by at most the last interval's changes.
    inertia_ : float
        Sum of squared latent distances of the training data to their centre.
    pretrain_epochs_ : int
        Epochs of end-to-end pretraining (``pretrain_epochs`` with ``"auto"`` resolved).
    pretrain_ : str
        The recipe that ran (``pretrain`` with ``"auto"`` resolved).
    pretrain_learning_rate_ : float
        Its learning rate (``pretrain_learning_rate`` with ``"auto"`` resolved).
    augmentation_ : callable or None
        The augmentation used (``augmentation`` with ``"auto"`` resolved).
    n_iter_ : int
        Epochs of the clustering phase run (the last one may be partial: training stops at
        the target update where the labels settle).
    n_target_updates_ : int
        Times the target distribution was computed.
    n_components_ : int
    history_ : list of dict
        One record per epoch: ``phase``, ``epoch``, ``seconds``; "pretrain" records add
        ``reconstruction``; the "init" record ``inertia`` and ``kmeans_iter``; "cluster"
        records add ``loss``, ``clustering`` (the KL term), ``reconstruction``,
        ``target_updates`` and ``changed`` (label change at the epoch's last target update).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    DEC : the same clustering term without the reconstruction loss.
    DCEC : IDEC with a convolutional autoencoder.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import IDEC
    >>> X, y = make_blobs(n_samples=200, centers=3, n_features=8, random_state=0)
    >>> idec = IDEC(n_clusters=3, hidden_dims=(32,), n_components=2, pretrain_epochs=20,
    ...             max_iter=10, update_interval=5, random_state=0).fit(X)
    >>> idec.transform(X).shape
    (200, 2)
    """

    def __init__(
        self,
        n_clusters=8,
        *,
        lam=0.1,
        alpha=1.0,
        update_interval=140,
        tol=1e-3,
        max_iter=200,
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
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
        self.lam = lam
        self.alpha = alpha
        self.update_interval = update_interval
        self.tol = tol
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
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

    _parameter_constraints: dict = {
        **_BaseDEC._parameter_constraints,
        "lam": [Interval(Real, 0, None, closed="left")],
    }


class DCEC(_BaseDEC):
    """Deep Convolutional Embedded Clustering (Guo, Liu, Zhu and Yin, ICONIP 2017).

    IDEC (:class:`IDEC`) on a convolutional autoencoder
    (:class:`~skdeepcluster.networks.ConvAutoencoder`: conv32 5x5, conv64 5x5, conv128 3x3,
    all stride 2, a linear embedding, mirrored transposed convolutions). The loss is
    ``L = L_r + γ L_c`` with ``L_r`` the mean squared reconstruction error and
    ``L_c = KL(P || Q)``; the CAE is pretrained with ``γ = 0`` (Adam, 200 epochs), the
    centres initialised by k-means (20 restarts) on the embedding, then the CAE and the
    centres are trained jointly with Adam, ``P`` updated every ``T = 140`` steps, until
    fewer than ``δ = 0.1 %`` of the labels change between two updates.

    ``X`` stays 2-D (n_samples x n_pixels), as scikit-learn requires; ``input_shape`` says
    how the network reshapes each row.

    Read more in the :ref:`User Guide <dec>`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K``.
    lam : float, default=0.1
        ``γ``: weight of the clustering term ``KL(P || Q)`` against the reconstruction error
        (which has weight 1). The reconstruction error is the squared error averaged over the
        features and the batch (Keras' ``mse``, the reference code's convention, under which
        the published γ = 0.1 was tuned). ``lam=0`` trains the autoencoder
        alone with fixed centres.
    alpha : float, default=1.0
        Degrees of freedom ``α`` of the Student's t kernel
        ``q_ij ∝ (1 + ||z_i − μ_j||² / α)^{−(α+1)/2}`` (1 in every reference).
    update_interval : int, default=140
        ``T``: mini-batch steps between two updates of the target distribution ``P``, which is
        computed from the soft assignments of the whole training set (140 in DEC-keras,
        IDEC and DCEC for MNIST; the references use 30 on USPS and 3-20 on small sets).
    tol : float in [0, 1], default=1e-3
        ``δ``: stop when fewer than this fraction of the training labels changed between two
        consecutive target updates (0.1 %, as the references).
    max_iter : int, default=200
        Maximum number of epochs of the clustering phase. The references count mini-batch
        steps: ``maxiter = 2e4`` steps of 256 samples are 73 epochs of MNIST (70 000) and
        512 of its 10 000-image test set.
    optimizer : {"adam", "sgd"}, default="adam"
        Optimiser of the clustering phase. The IDEC code uses Adam (1e-3) on MNIST and
        SGD (lr 0.1, momentum 0.99, ``T = 30``) on USPS; DCEC uses Adam.
    learning_rate : float, default=1e-3
        Its step size.
    momentum : float in [0, 1), default=0.9
        SGD momentum (ignored by Adam).
    batch_size : int, default=256
    pretrain_learning_rate : float or "auto", default="auto"
        Step size of the pretraining; ``"auto"``: 1e-3 for ``"adam"`` and ``"greedy"``;
        for ``"sgd"``, 1 on pixels scaled to [0, 1] and proportionally less on larger
        inputs (mean square ``m`` of the input: ``min(1, 0.25 / m)``, 0.25 on
        standardised features).
    augmentation : "auto", callable or None, default="auto"
        Data augmentation of training: ``f(X_batch, generator) -> X_batch`` replaces every
        mini-batch of the pretraining (the autoencoder reconstructs the augmented samples)
        and the batch the clustering loss is computed on (DEC-DA, Guo et al. 2018; the
        training labels, targets and other per-sample updates use the samples as they are).
        ``"auto"`` shifts and rotates images
        (:class:`~skdeepcluster.augmentation.RandomAffine` at its defaults) when the rows
        are square one-channel images of at least 16 x 16 pixels
        (:func:`~skdeepcluster.augmentation.detect_image_shape`), and uses the samples as
        they are otherwise; with ``input_shape`` given (and no ``autoencoder``) it
        augments when both sides of that shape are at least 16. None never augments. See
        the :ref:`User Guide <deep_augmentation>` for what it gains and where it harms.
    memory : str, joblib.Memory or None, default=None
        Cache of the pretrained network: a folder or a :class:`joblib.Memory`. It is keyed
        on the training data, the untrained network (layout and initial weights, set by
        ``random_state``), the pretraining parameters and the device, so that a search over
        clustering parameters (``GridSearchCV``) pretrains once per training set. None
        disables caching.
    n_init : int, default=20
        k-means restarts that initialise the centres ``μ`` on the pretrained embedding.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling and k-means. The caller's global RNGs are not touched.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar per phase.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Training device; ``"auto"`` uses CUDA when available. Fitted networks live on the
        CPU.
    precision : {"float32", "bfloat16"}, default="float32"
        Precision of the network's products (``"bfloat16"``: under :class:`torch.autocast`;
        see :class:`AEKMeans` and the :ref:`User Guide <mixed_precision>`).
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` after every epoch; True stops the phase.
    input_shape : tuple of int or None, default=None
        Shape of one image, ``(H, W)`` or ``(C, H, W)`` (channels first); each row of ``X`` is
        an image flattened in that order. None: a square one-channel image of
        ``n_features`` pixels when ``n_features`` is a square (16x16 for USPS, 28x28 for
        MNIST), otherwise a one-row image, i.e. a signal of ``n_features`` values that the
        convolutions scan in 1-D (tabular features are read in their column order, so
        this is a generic network rather than an image model; pass ``input_shape=(1, d)``
        to force that reading for a square ``d``). Must match ``n_features``. Ignored when
        ``autoencoder`` is given.
    filters : tuple of three int, default=(32, 64, 128)
        Feature maps of the three stride-2 convolutions of
        :class:`~skdeepcluster.networks.ConvAutoencoder`.
    n_components : int, default=10
        Size of the embedding (the paper sets it to the number of clusters, 10).
    autoencoder : None, nn.Module, or callable, default=None
        None builds :class:`~skdeepcluster.networks.ConvAutoencoder` from ``input_shape``,
        ``filters`` and ``n_components``. A module instance is deep-copied (with
        ``pretrain_epochs=0`` its weights are used as they are); a class or factory is
        called with ``n_features`` and ``n_components``.
    pretrain : {"auto", "adam", "sgd", "greedy"}, default="adam"
        Pretraining recipe of the autoencoder (:ref:`User Guide <deep_pretraining>`):
        ``"adam"`` trains the whole network end to end with Adam; ``"sgd"`` with SGD and
        momentum 0.9 (the DEC-keras MNIST recipe, learning rate 1 on the squared error
        averaged over the features, meant for inputs scaled to [0, 1]); ``"greedy"``
        trains each layer pair as a denoising autoencoder first, then fine-tunes end to
        end (the DEC paper's schedule, here with Adam). ``"auto"`` is ``"sgd"`` when
        every input value lies in [0, 1] (e.g. pixels divided by their maximum) and the
        pretraining has at least 2 000 optimiser steps, and ``"adam"`` otherwise
        (standardised features, short pretrainings); ``pretrain_`` says which ran.
        DCEC's default is its reference code's Adam.
    pretrain_epochs : int or "auto", default="auto"
        Epochs of end-to-end pretraining (``"greedy"`` trains each layer pair for half as
        many before). ``"auto"`` aims at 8 000 optimiser steps of ``batch_size`` samples,
        within 50 to 300 epochs (200 epochs on 10 000 samples, 300 on 1 797). 0 skips
        the pretraining.

    Attributes
    ----------
    autoencoder_ : torch.nn.Module
        Trained network (CPU, eval mode).
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
        Centres ``μ_j`` in the latent space.
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data with the final network (``argmax_j q_ij``, the
        nearest centre). The reference code reports the labels of the last target update
        instead; they differ by at most the last interval's changes.
    inertia_ : float
        Sum of squared latent distances of the training data to their centre.
    pretrain_epochs_ : int
        Epochs of end-to-end pretraining (``pretrain_epochs`` with ``"auto"`` resolved).
    pretrain_ : str
        The recipe that ran (``pretrain`` with ``"auto"`` resolved).
    pretrain_learning_rate_ : float
        Its learning rate (``pretrain_learning_rate`` with ``"auto"`` resolved).
    augmentation_ : callable or None
        The augmentation used (``augmentation`` with ``"auto"`` resolved).
    n_iter_ : int
        Epochs of the clustering phase run (the last one may be partial: training stops at
        the target update where the labels settle).
    n_target_updates_ : int
        Times the target distribution was computed.
    n_components_ : int
    history_ : list of dict
        One record per epoch: ``phase``, ``epoch``, ``seconds``; "pretrain" records add
        ``reconstruction``; the "init" record ``inertia`` and ``kmeans_iter``; "cluster"
        records add ``loss``, ``clustering`` (the KL term), ``reconstruction``,
        ``target_updates`` and ``changed`` (label change at the epoch's last target update).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)

    See Also
    --------
    IDEC : the same objective on a fully connected autoencoder.
    skdeepcluster.networks.ConvAutoencoder : the network, usable by any deep estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from skdeepcluster import DCEC
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(60, 16 * 16).astype(np.float32)
    >>> dcec = DCEC(n_clusters=2, input_shape=(16, 16), filters=(4, 8, 8),
    ...             pretrain_epochs=2, max_iter=2, random_state=0).fit(X)
    >>> dcec.autoencoder_.feature_map_sizes
    [(16, 16), (8, 8), (4, 4), (2, 2)]
    >>> dcec.predict_proba(X[:3]).shape
    (3, 2)
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in _BaseDEC._parameter_constraints.items()
           if k not in ("hidden_dims", "activation")},
        "lam": [Interval(Real, 0, None, closed="left")],
        "input_shape": [None, tuple, list],
        "filters": [tuple, list],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        lam=0.1,
        alpha=1.0,
        update_interval=140,
        tol=1e-3,
        max_iter=200,
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        input_shape=None,
        filters=(32, 64, 128),
        n_components=10,
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
        self.update_interval = update_interval
        self.tol = tol
        self.max_iter = max_iter
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.input_shape = input_shape
        self.filters = filters
        self.n_components = n_components
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

    def _check_network_params(self, X):
        if self.autoencoder is None:
            # The shape errors, before any training (and without drawing random numbers).
            _cae_geometry(self.input_shape, X.shape[1], self.filters)

    def _auto_image_shape(self, data):
        # An explicit input_shape says the rows are images: "auto" trusts it (and its
        # channels) when both sides reach AUTO_MIN_SIDE.
        if self.input_shape is None or self.autoencoder is not None:
            return super()._auto_image_shape(data)
        shape = tuple(int(v) for v in self.input_shape)
        return shape if min(shape[-2:]) >= AUTO_MIN_SIDE else None

    def _build_autoencoder(self, n_features):
        if self.autoencoder is None:
            return ConvAutoencoder(n_features, self.n_components, self.input_shape,
                                   self.filters)
        return build_autoencoder(self.autoencoder, n_features, self.n_components, None, None)


"""AEKMeans: pretrain an autoencoder, then k-means in its latent space (the two-step baseline)."""

from ._base import BaseDeepClusterer

__all__ = ["AEKMeans"]


class AEKMeans(BaseDeepClusterer):
    """Autoencoder + k-means: the two-step baseline of every deep clustering paper ("AE+KM").

    The autoencoder is trained on the reconstruction loss alone, then k-means (k-means++
    and Lloyd in torch, on the training device, ``n_init`` restarts) clusters the
    embeddings of the training data. Every joint method must beat it: they start from the
    same pretraining (with the same ``random_state`` the pretrained network is identical;
    with the same ``n_init`` the initial centres too).

    Read more in the :ref:`User Guide <deep>`.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``K``.
    n_components : int, default=10
        Size ``p`` of the embedding (ignored when ``autoencoder`` fixes it).
    hidden_dims : sequence of int, default=(500, 500, 2000)
        Hidden widths of :class:`~skdeepcluster.networks.MLPAutoencoder`
        (``d-500-500-2000-p``, the network of DEC, Xie et al. 2016).
    activation : str, default="relu"
        Hidden-layer activation of the MLP.
    autoencoder : None, nn.Module, or callable, default=None
        None builds the MLP from the parameters above. A module instance (with ``encode``
        and ``decode`` methods) is deep-copied and trained; with ``pretrain_epochs=0`` its
        weights are used as they are. A class or factory is called with ``n_features`` and
        ``n_components``.
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
    batch_size : int, default=256
    pretrain_learning_rate : float or "auto", default="auto"
        Step size of the pretraining; ``"auto"``: 1e-3 for ``"adam"`` and ``"greedy"``;
        for ``"sgd"``, 1 on pixels scaled to [0, 1] and proportionally less on larger
        inputs (mean square ``m`` of the input: ``min(1, 0.25 / m)``, 0.25 on
        standardised features).
    augmentation : "auto", callable or None, default="auto"
        Data augmentation of the pretraining: ``f(X_batch, generator) -> X_batch`` replaces
        every pretraining batch, and the autoencoder reconstructs the augmented samples
        (DEC-DA's pretraining). ``"auto"`` shifts and rotates images
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
        k-means restarts in the latent space (DEC/IDEC/DCEC use 20).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and k-means. The caller's global RNGs are
        not touched.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar for the pretraining (``tqdm`` if installed,
        otherwise one line per epoch on stderr).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Training device; ``"auto"`` uses CUDA when available. A missing CUDA device warns
        and falls back to the CPU. Fitted networks always live on the CPU.
    precision : {"float32", "bfloat16"}, default="float32"
        Precision of the network's matrix products and convolutions. ``"bfloat16"`` runs
        them under :class:`torch.autocast` (weights, optimiser state, embedding, k-means and
        fitted attributes stay float32), in ``fit`` and in ``predict``/``transform`` alike;
        fast on CPUs with AVX512-BF16 or AMX and on recent GPUs, slow elsewhere. See the
        :ref:`User Guide <mixed_precision>`.
    callbacks : list of callable, default=None
        ``callback(estimator, record) -> bool`` called after every epoch with the epoch's
        history record; returning True stops the phase.

    Attributes
    ----------
    autoencoder_ : torch.nn.Module
        The trained network, on the CPU, in eval mode.
    cluster_centers_ : ndarray of shape (n_clusters, n_components_)
        Centres in the latent space.
    labels_ : ndarray of shape (n_samples,)
        ``predict`` of the training data.
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
        Clustering epochs run (0: this baseline has no clustering phase).
    n_components_ : int
        Size of the embedding.
    history_ : list of dict
        One record per pretraining epoch (``phase="pretrain"``, ``epoch``,
        ``reconstruction``, ``seconds``) and one for the k-means initialisation
        (``phase="init"``, ``inertia``, ``kmeans_iter``, ``seconds``). A record after which a
        callback stopped the phase has ``stopped_by_callback=True``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has feature names that are all strings.

    See Also
    --------
    ConcreteKMeans : trains the same network jointly with a k-means loss.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import AEKMeans
    >>> X, y = make_blobs(n_samples=200, centers=3, n_features=8, random_state=0)
    >>> model = AEKMeans(n_clusters=3, hidden_dims=(32,), n_components=2,
    ...                  pretrain_epochs=20, random_state=0).fit(X)
    >>> model.transform(X).shape
    (200, 2)
    >>> bool((model.predict(X) == model.labels_).all())
    True
    """

    def _clustering_phase(self, state, callbacks):
        """The baseline stops at the k-means initialisation: no clustering phase."""

    def __init__(
        self,
        n_clusters=8,
        *,
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

"""External clustering metrics and ready-made scorers.

This module gathers the metrics used to evaluate a clustering against ground
truth class labels: clustering accuracy (ACC), purity, normalized mutual
information (NMI) and the adjusted Rand index (ARI), along with scorer
objects that plug directly into :func:`sklearn.model_selection.cross_validate`
and :class:`sklearn.model_selection.GridSearchCV`. For model selection
without labels it offers scorers computed in the input space, where every
candidate is measured with the same ruler: :func:`silhouette_scorer`,
:func:`calinski_harabasz_scorer`, and :func:`within_cluster_sum_of_squares`
(what the deep estimators' ``score`` returns, negated).

Notes
-----
**Do not use** :func:`sklearn.metrics.accuracy_score` **on clusterings.**
Cluster ids are arbitrary names: a clustering that matches the classes
exactly but numbers its clusters differently gets an ``accuracy_score`` of 0.
:func:`cluster_accuracy` first finds the one-to-one matching between clusters
and classes that maximizes agreement (the Hungarian algorithm), then measures
accuracy under that matching.

>>> from sklearn.metrics import accuracy_score
>>> accuracy_score([0, 0, 1, 1], [1, 1, 0, 0])
0.0
>>> cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
1.0

**Number of clusters.** The deep clustering literature reports ACC with
``n_clusters == n_classes``. With a different number of clusters the matching
is no longer a bijection: clusters (or classes) left without a partner count
as errors, so the values are well defined but are *not* comparable to
published numbers. Purity, in contrast, can only grow as clusters are split
and reaches 1 with one cluster per sample.

**NMI normalization.** :func:`~sklearn.metrics.normalized_mutual_info_score` is re-exported
from scikit-learn, which normalizes by the *arithmetic* mean of the two
entropies (the default since scikit-learn 0.22). Some older papers used the
*geometric* mean; pass ``average_method="geometric"`` to reproduce them.
"""

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    make_scorer,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.utils import assert_all_finite, check_array, check_consistent_length

from ._engine import row_blocks

__all__ = [
    "SCORERS",
    "accuracy_scorer",
    "adjusted_rand_score",
    "ari_scorer",
    "calinski_harabasz_scorer",
    "cluster_accuracy",
    "nmi_scorer",
    "normalized_mutual_info_score",
    "purity_score",
    "purity_scorer",
    "silhouette_scorer",
    "within_cluster_sum_of_squares",
]


def _contingency_table(labels_true, labels_pred):
    """Validate two labelings and return their dense contingency table.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground truth class labels.
    labels_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    table : ndarray of shape (n_classes, n_clusters), dtype int64
        ``table[j, k]`` is the number of samples of class ``j`` assigned to
        cluster ``k``, classes and clusters being sorted by label value.
    n_samples : int
        Number of samples.
    """
    labels_true = check_array(
        labels_true, ensure_2d=False, ensure_min_samples=0, dtype=None
    )
    labels_pred = check_array(
        labels_pred, ensure_2d=False, ensure_min_samples=0, dtype=None
    )
    if labels_true.ndim != 1:
        raise ValueError(
            f"labels_true must be 1D: shape is {labels_true.shape!r}"
        )
    if labels_pred.ndim != 1:
        raise ValueError(
            f"labels_pred must be 1D: shape is {labels_pred.shape!r}"
        )
    check_consistent_length(labels_true, labels_pred)
    n_samples = labels_true.shape[0]
    if n_samples == 0:
        raise ValueError(
            "labels_true and labels_pred are empty; clustering metrics need "
            "at least one sample."
        )

    # Re-encode to 0..k-1 so any hashable, sortable labels work (negative
    # ints, strings, non-contiguous ids).
    _, true_idx = np.unique(labels_true, return_inverse=True)
    _, pred_idx = np.unique(labels_pred, return_inverse=True)
    true_idx = true_idx.ravel()
    pred_idx = pred_idx.ravel()
    n_classes = int(true_idx.max()) + 1
    n_clusters = int(pred_idx.max()) + 1
    table = np.bincount(
        true_idx * n_clusters + pred_idx, minlength=n_classes * n_clusters
    ).reshape(n_classes, n_clusters)
    return table.astype(np.int64, copy=False), n_samples


def cluster_accuracy(labels_true, labels_pred):
    """Clustering accuracy (ACC) under the best one-to-one label matching.

    .. math::

        \\mathrm{ACC} = \\max_{m} \\frac{1}{N} \\sum_{i=1}^{N}
        \\mathbf{1}\\{y_i = m(c_i)\\}

    where :math:`m` ranges over one-to-one maps from clusters to classes.
    The optimal map is found with the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`) on the contingency table.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground truth class labels. Any sortable labels (ints, negative
        ints, strings) are accepted.
    labels_pred : array-like of shape (n_samples,)
        Cluster labels to evaluate. Only the partition matters, not the ids.

    Returns
    -------
    acc : float
        Accuracy in ``[1/n_samples, 1]``. It is 1 exactly when the two
        labelings define the same partition.

    Raises
    ------
    ValueError
        If the inputs are not 1-D, differ in length, or are empty.

    See Also
    --------
    purity_score : Many-to-one variant, always ``>= cluster_accuracy``.

    Notes
    -----
    When the number of clusters differs from the number of classes, the
    matching is a partial bijection: samples in unmatched clusters (or of
    unmatched classes) count as errors. Such values are not comparable to
    published ACC numbers, which assume ``n_clusters == n_classes``.

    The metric is symmetric: swapping ``labels_true`` and ``labels_pred``
    gives the same value.

    Examples
    --------
    >>> from skdeepcluster.metrics import cluster_accuracy
    >>> cluster_accuracy([0, 0, 1, 1, 2, 2], [1, 1, 0, 0, 2, 2])
    1.0
    >>> cluster_accuracy(["a", "a", "b", "b"], [5, 5, 5, -1])
    0.75

    More clusters than classes: the extra cluster cannot be matched.

    >>> cluster_accuracy([0, 0, 0, 0], [0, 0, 1, 1])
    0.5
    """
    table, n_samples = _contingency_table(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / n_samples)


def purity_score(labels_true, labels_pred):
    """Purity of a clustering with respect to ground truth classes.

    .. math::

        \\mathrm{purity} = \\frac{1}{N} \\sum_{k} \\max_{j} n_{kj}

    where :math:`n_{kj}` is the number of samples of class :math:`j` in
    cluster :math:`k`: each cluster is credited with its majority class.

    Parameters
    ----------
    labels_true : array-like of shape (n_samples,)
        Ground truth class labels.
    labels_pred : array-like of shape (n_samples,)
        Cluster labels to evaluate.

    Returns
    -------
    purity : float
        Purity in ``(0, 1]``.

    Raises
    ------
    ValueError
        If the inputs are not 1-D, differ in length, or are empty.

    See Also
    --------
    cluster_accuracy : One-to-one variant.

    Notes
    -----
    Purity is **not symmetric** in its arguments, and it never decreases
    when a cluster is split: one cluster per sample gives a purity of 1.
    Compare clusterings by purity only at a fixed number of clusters.
    Since several clusters may share a majority class, purity is a relaxation
    of :func:`cluster_accuracy` and ``purity_score >= cluster_accuracy``.

    Examples
    --------
    >>> from skdeepcluster.metrics import purity_score
    >>> purity_score([0, 0, 0, 1], [0, 0, 1, 1])
    0.75
    >>> purity_score([0, 0, 0, 0], [0, 0, 1, 1])
    1.0
    >>> purity_score([0, 0, 1, 1], [0, 0, 0, 0])
    0.5
    """
    table, n_samples = _contingency_table(labels_true, labels_pred)
    return float(table.max(axis=0).sum() / n_samples)


#: Scorer for :func:`cluster_accuracy` (uses ``estimator.predict``).
accuracy_scorer = make_scorer(cluster_accuracy)
#: Scorer for :func:`purity_score` (uses ``estimator.predict``).
purity_scorer = make_scorer(purity_score)
#: Scorer for :func:`sklearn.metrics.normalized_mutual_info_score`.
nmi_scorer = make_scorer(normalized_mutual_info_score)
#: Scorer for :func:`sklearn.metrics.adjusted_rand_score`.
ari_scorer = make_scorer(adjusted_rand_score)

#: Multi-metric scoring dict, usable as ``scoring=SCORERS``.
SCORERS = {
    "cluster_accuracy": accuracy_scorer,
    "purity": purity_scorer,
    "nmi": nmi_scorer,
    "ari": ari_scorer,
}


# ------------------------------------------------------------------ without labels
def within_cluster_sum_of_squares(X, labels):
    """Sum of squared distances of the samples to the mean of their cluster, in ``X``'s space.

    The k-means objective of the partition ``labels`` (each cluster's centre is the mean of
    its samples), accumulated in float64. Unlike an inertia measured in a learned latent
    space, it is comparable across models and hyper-parameters with the same number of
    clusters; merging clusters can only increase it.

    A dense ``X`` (a :class:`numpy.memmap` included, read from its file) is processed in
    blocks of rows: beyond ``X`` the memory used is a block's float64 temporaries (about
    4 MB of input rows at a time), not copies of ``X``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)

    Returns
    -------
    wcss : float

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [2.0], [10.0], [14.0]])
    >>> within_cluster_sum_of_squares(X, [0, 0, 1, 1])   # (1 + 1) + (4 + 4)
    10.0
    >>> within_cluster_sum_of_squares(X, [0, 0, 0, 0])   # one cluster around 6.5
    131.0
    """
    if sp.issparse(X):
        X = check_array(X, accept_sparse="csr", dtype=np.float64)
    else:  # float32 stays float32 (no float64 copy of X); checked and converted by block
        X = check_array(X, dtype=[np.float64, np.float32], ensure_all_finite=False)
    labels = check_array(labels, ensure_2d=False, dtype=None)
    check_consistent_length(X, labels)
    _, codes = np.unique(labels, return_inverse=True)
    counts = np.bincount(codes).astype(np.float64)
    if sp.issparse(X):  # sum ||x||^2 - sum_c n_c ||m_c||^2 (no dense copy of X)
        members = sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                                shape=(len(counts), len(codes)))
        means = (members @ X).toarray() / counts[:, None]
        total = float(X.multiply(X).sum()) - float((counts * (means**2).sum(1)).sum())
        return max(total, 0.0)
    # Dense: two passes over blocks of rows (row_blocks reads a memory map from its file),
    # so that the float64 temporaries are a block's, not X's; one block when X is small.
    sums = np.zeros((len(counts), X.shape[1]))
    for start, stop, block in row_blocks(X):
        assert_all_finite(block, allow_nan=False)
        members = sp.csr_matrix((np.ones(stop - start), (codes[start:stop],
                                                          np.arange(stop - start))),
                                shape=(len(counts), stop - start))
        sums += members @ block.astype(np.float64, copy=False)
    means = sums / counts[:, None]
    total = 0.0
    for start, stop, block in row_blocks(X):
        total += float(((block.astype(np.float64, copy=False) - means[codes[start:stop]]) ** 2)
                       .sum())
    return total


def _predicted(estimator, X):
    labels = estimator.predict(X)
    return labels, len(np.unique(labels))


def silhouette_scorer(estimator, X, y=None):
    """Mean silhouette coefficient of ``estimator.predict(X)`` in the input space.

    A scorer (``scoring=silhouette_scorer``) for selecting models without labels; ``y`` is
    ignored. Higher is better, in [-1, 1]. A prediction that uses a single cluster, for
    which the silhouette is undefined, scores -1 (the worst value) instead of raising. It
    computes all pairwise distances of ``X`` (in chunks): quadratic in the number of samples.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(150, centers=3, random_state=0)
    >>> [round(silhouette_scorer(KMeans(k, n_init=3, random_state=0).fit(X), X), 3)
    ...  for k in (2, 3, 4)]   # highest for the three clusters the data were drawn from
    [0.443, 0.477, 0.418]
    """
    labels, used = _predicted(estimator, X)
    if used < 2 or used >= len(labels):
        return -1.0
    return float(silhouette_score(X, labels))


def calinski_harabasz_scorer(estimator, X, y=None):
    """Calinski-Harabasz index of ``estimator.predict(X)`` in the input space.

    A scorer for selecting models without labels; ``y`` is ignored. The ratio of the
    between-cluster to the within-cluster dispersion, each divided by its degrees of
    freedom; higher is better. Linear in the number of samples. A prediction that uses a
    single cluster scores 0 (the worst value) instead of raising.

    Examples
    --------
    >>> from sklearn.cluster import KMeans
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(150, centers=3, random_state=0)
    >>> km = KMeans(3, n_init=3, random_state=0).fit(X)
    >>> calinski_harabasz_scorer(km, X) > calinski_harabasz_scorer(KMeans(2, n_init=3,
    ...     random_state=0).fit(X), X)
    True
    """
    labels, used = _predicted(estimator, X)
    if used < 2 or used >= len(labels):
        return 0.0
    if sp.issparse(X):
        X = X.toarray()
    return float(calinski_harabasz_score(X, labels))

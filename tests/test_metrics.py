"""Tests for skdeepcluster.metrics."""

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import (
    accuracy_score,
    adjusted_rand_score,
    normalized_mutual_info_score,
)
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skdeepcluster import metrics
from skdeepcluster.metrics import (
    SCORERS,
    accuracy_scorer,
    ari_scorer,
    calinski_harabasz_scorer,
    cluster_accuracy,
    nmi_scorer,
    purity_score,
    purity_scorer,
    silhouette_scorer,
    within_cluster_sum_of_squares,
)

HYP = settings(max_examples=100, deadline=None)


# --------------------------------------------------------------------------
# Strategies and independent reference implementations
# --------------------------------------------------------------------------


@st.composite
def label_pairs(draw, max_k=5, max_n=30):
    """Two labelings of equal length with at most ``max_k`` distinct ids."""
    n = draw(st.integers(1, max_n))
    k_true = draw(st.integers(1, max_k))
    k_pred = draw(st.integers(1, max_k))
    y = draw(st.lists(st.integers(0, k_true - 1), min_size=n, max_size=n))
    c = draw(st.lists(st.integers(0, k_pred - 1), min_size=n, max_size=n))
    return y, c


@st.composite
def renamings(draw, labels):
    """An injective renaming of the distinct values of ``labels``."""
    uniq = sorted(set(labels))
    kind = draw(st.sampled_from(["perm", "negative", "sparse", "string"]))
    if kind == "perm":
        targets = draw(st.permutations(uniq))
    elif kind == "negative":
        targets = [-1 - v for v in draw(st.permutations(uniq))]
    elif kind == "sparse":
        targets = draw(
            st.lists(
                st.integers(-1000, 1000),
                min_size=len(uniq),
                max_size=len(uniq),
                unique=True,
            )
        )
    else:
        targets = draw(
            st.lists(
                st.text(alphabet="abcxyz", min_size=1, max_size=4),
                min_size=len(uniq),
                max_size=len(uniq),
                unique=True,
            )
        )
    return dict(zip(uniq, targets))


def counts_table(y, c):
    """Contingency table (classes x clusters) built with plain Python."""
    classes = sorted(set(y))
    clusters = sorted(set(c))
    pairs = Counter(zip(y, c))
    return [[pairs[(a, b)] for b in clusters] for a in classes]


def brute_force_acc(y, c):
    """ACC by exhaustive search over injective cluster->class maps."""
    table = counts_table(y, c)
    n_classes, n_clusters = len(table), len(table[0])
    size = max(n_classes, n_clusters)
    # Zero-pad to a square table: matching with a dummy row/column means
    # "left unmatched", which contributes nothing.
    padded = [
        [table[i][j] if i < n_classes and j < n_clusters else 0
         for j in range(size)]
        for i in range(size)
    ]
    best = max(
        sum(padded[i][perm[i]] for i in range(size))
        for perm in itertools.permutations(range(size))
    )
    return best / len(y)


def brute_force_purity(y, c):
    by_cluster = {}
    for yi, ci in zip(y, c):
        by_cluster.setdefault(ci, Counter())[yi] += 1
    return sum(max(cnt.values()) for cnt in by_cluster.values()) / len(y)


def same_partition(y, c):
    """True iff c -> y and y -> c are both well-defined functions."""
    fwd, bwd = {}, {}
    for yi, ci in zip(y, c):
        if fwd.setdefault(ci, yi) != yi or bwd.setdefault(yi, ci) != ci:
            return False
    return True


# --------------------------------------------------------------------------
# Hand-made exact cases
# --------------------------------------------------------------------------


def test_permuted_perfect_clustering():
    assert cluster_accuracy([0, 0, 1, 1, 2, 2], [1, 1, 0, 0, 2, 2]) == 1.0
    assert purity_score([0, 0, 1, 1, 2, 2], [1, 1, 0, 0, 2, 2]) == 1.0


def test_one_error():
    y = [0, 0, 0, 1, 1, 1]
    c = [0, 0, 1, 1, 1, 1]
    # Matching 0->0, 1->1 gets 2 + 3 = 5 right.
    assert cluster_accuracy(y, c) == pytest.approx(5 / 6)
    # Cluster 0 = {0, 0} -> 2, cluster 1 = {0, 1, 1, 1} -> 3.
    assert purity_score(y, c) == pytest.approx(5 / 6)


def test_purity_differs_from_acc():
    # Two clusters both dominated by class 0.
    y = [0, 0, 0, 0, 1, 1]
    c = [0, 0, 0, 1, 1, 1]
    # ACC: 0->0 (3) + 1->1 (2) = 5; purity: 3 + max(1, 2) = 5.
    assert cluster_accuracy(y, c) == pytest.approx(5 / 6)
    assert purity_score(y, c) == pytest.approx(5 / 6)
    y = [0, 0, 0, 0, 0, 1]
    c = [0, 0, 0, 1, 1, 1]
    # ACC: 0->0 (3) + 1->1 (1) = 4; purity: 3 + 2 = 5.
    assert cluster_accuracy(y, c) == pytest.approx(4 / 6)
    assert purity_score(y, c) == pytest.approx(5 / 6)


def test_more_clusters_than_classes():
    assert cluster_accuracy([0, 0, 0, 0], [0, 0, 1, 1]) == pytest.approx(0.5)
    assert purity_score([0, 0, 0, 0], [0, 0, 1, 1]) == pytest.approx(1.0)
    # One cluster per sample: purity is trivially 1, ACC is not.
    y = [0, 0, 1, 1, 2, 2]
    assert purity_score(y, np.arange(6)) == pytest.approx(1.0)
    assert cluster_accuracy(y, np.arange(6)) == pytest.approx(3 / 6)


def test_fewer_clusters_than_classes():
    y = [0, 0, 1, 1, 2, 2]
    c = [0, 0, 0, 0, 1, 1]
    # Cluster 0 matches class 0 or 1 (2 samples), cluster 1 matches class 2.
    assert cluster_accuracy(y, c) == pytest.approx(4 / 6)
    assert purity_score(y, c) == pytest.approx(4 / 6)
    # A single cluster.
    assert cluster_accuracy(y, [7] * 6) == pytest.approx(2 / 6)
    assert purity_score(y, [7] * 6) == pytest.approx(2 / 6)
    # Purity is not symmetric.
    assert purity_score([7] * 6, y) == pytest.approx(1.0)


def test_string_labels():
    y = ["cat", "cat", "dog", "dog", "dog"]
    c = ["b", "b", "a", "a", "b"]
    assert cluster_accuracy(y, c) == pytest.approx(4 / 5)
    assert purity_score(y, c) == pytest.approx(4 / 5)
    assert cluster_accuracy(y, [3, 3, 1, 1, 1]) == 1.0
    assert cluster_accuracy(np.array(y, dtype=object), c) == pytest.approx(0.8)


def test_negative_integer_labels():
    y = [-5, -5, 3, 3, 10]
    c = [-1, -1, -2, -2, -2]
    assert cluster_accuracy(y, c) == pytest.approx(4 / 5)
    assert cluster_accuracy(y, [-1, -1, -7, -7, 0]) == 1.0
    assert purity_score(y, c) == pytest.approx(4 / 5)


def test_single_sample():
    assert cluster_accuracy([3], [9]) == 1.0
    assert purity_score([3], [9]) == 1.0


def test_returns_python_float():
    y, c = np.array([0, 1, 1]), np.array([1, 0, 0])
    assert type(cluster_accuracy(y, c)) is float
    assert type(purity_score(y, c)) is float


@pytest.mark.parametrize("func", [cluster_accuracy, purity_score])
def test_length_mismatch_raises(func):
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        func([0, 1, 1], [0, 1])


@pytest.mark.parametrize("func", [cluster_accuracy, purity_score])
def test_empty_raises(func):
    with pytest.raises(ValueError, match="empty"):
        func([], [])


@pytest.mark.parametrize("func", [cluster_accuracy, purity_score])
def test_2d_raises(func):
    with pytest.raises(ValueError, match="1D"):
        func([[0, 1], [1, 0]], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="1D"):
        func([0, 1], [[0], [1]])


def test_sklearn_accuracy_score_is_wrong_for_clusterings():
    y, c = [0, 0, 1, 1], [1, 1, 0, 0]
    assert accuracy_score(y, c) == 0.0
    assert cluster_accuracy(y, c) == 1.0


def test_public_api():
    for name in metrics.__all__:
        assert hasattr(metrics, name), name
    assert metrics.normalized_mutual_info_score is normalized_mutual_info_score
    assert metrics.adjusted_rand_score is adjusted_rand_score
    assert set(SCORERS) == {"cluster_accuracy", "purity", "nmi", "ari"}
    assert SCORERS["cluster_accuracy"] is accuracy_scorer
    assert SCORERS["purity"] is purity_scorer
    assert SCORERS["nmi"] is nmi_scorer
    assert SCORERS["ari"] is ari_scorer


# --------------------------------------------------------------------------
# Property-based tests
# --------------------------------------------------------------------------


@HYP
@given(data=st.data())
def test_invariance_under_relabelling(data):
    y, c = data.draw(label_pairs())
    rename_c = data.draw(renamings(c))
    rename_y = data.draw(renamings(y))
    c2 = [rename_c[v] for v in c]
    y2 = [rename_y[v] for v in y]
    acc = cluster_accuracy(y, c)
    pur = purity_score(y, c)
    assert cluster_accuracy(y, c2) == acc
    assert cluster_accuracy(y2, c2) == acc
    assert purity_score(y, c2) == pur
    assert purity_score(y2, c2) == pur


@HYP
@given(pair=label_pairs())
def test_acc_matches_brute_force(pair):
    y, c = pair
    assert cluster_accuracy(y, c) == pytest.approx(brute_force_acc(y, c))


@HYP
@given(pair=label_pairs())
def test_purity_matches_brute_force(pair):
    y, c = pair
    assert purity_score(y, c) == pytest.approx(brute_force_purity(y, c))


@HYP
@given(pair=label_pairs(max_k=8, max_n=60))
def test_bounds_and_purity_dominates_acc(pair):
    y, c = pair
    n = len(y)
    acc = cluster_accuracy(y, c)
    pur = purity_score(y, c)
    assert 1 / n - 1e-12 <= acc <= 1.0
    assert 0.0 < pur <= 1.0
    assert pur >= acc - 1e-12
    # ACC is at least the largest single cell of the contingency table, and
    # purity at least the largest class share under a single cluster.
    largest_cell = max(Counter(zip(y, c)).values())
    assert acc * n >= largest_cell - 1e-9


@HYP
@given(pair=label_pairs(max_k=8, max_n=60))
def test_acc_symmetric(pair):
    y, c = pair
    assert cluster_accuracy(y, c) == cluster_accuracy(c, y)


@HYP
@given(data=st.data())
def test_acc_one_iff_same_partition(data):
    y, c = data.draw(label_pairs(max_k=3, max_n=8))
    if data.draw(st.booleans()):
        # Force the positive case half the time: c is a renaming of y.
        rename = data.draw(renamings(y))
        c = [rename[v] for v in y]
    assert (cluster_accuracy(y, c) == 1.0) == same_partition(y, c)


@HYP
@given(data=st.data())
def test_agreement_with_sklearn_on_permuted_labels(data):
    y, _ = data.draw(label_pairs(max_k=6, max_n=40))
    rename = data.draw(renamings(y))
    c = [rename[v] for v in y]
    assert cluster_accuracy(y, c) == 1.0
    assert purity_score(y, c) == 1.0
    assert adjusted_rand_score(y, c) == pytest.approx(1.0)
    assert normalized_mutual_info_score(y, c) == pytest.approx(1.0)
    assert cluster_accuracy(y, y) == accuracy_score(y, y) == 1.0


@HYP
@given(pair=label_pairs(max_k=6, max_n=40))
def test_acc_equals_accuracy_score_after_optimal_remap(pair):
    y, c = pair
    classes = sorted(set(y))
    clusters = sorted(set(c))
    table = np.array(counts_table(y, c))
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapping = {clusters[j]: classes[i] for i, j in zip(rows, cols)}
    # Unmatched clusters map to a label that is never a class.
    remapped = [mapping.get(v, -1) for v in c]
    assert cluster_accuracy(y, c) == pytest.approx(accuracy_score(y, remapped))
    # Already-optimal ids: plain accuracy agrees with cluster accuracy.
    if len(clusters) <= len(classes):
        assert cluster_accuracy(y, remapped) == pytest.approx(
            accuracy_score(y, remapped)
        )


# --------------------------------------------------------------------------
# Scorers in model selection
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(
        n_samples=150,
        centers=[[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]],
        cluster_std=0.5,
        random_state=0,
    )


def test_scorer_matches_metric(blobs):
    X, y = blobs
    km = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    pred = km.predict(X)
    assert accuracy_scorer(km, X, y) == cluster_accuracy(y, pred)
    assert purity_scorer(km, X, y) == purity_score(y, pred)
    assert nmi_scorer(km, X, y) == normalized_mutual_info_score(y, pred)
    assert ari_scorer(km, X, y) == adjusted_rand_score(y, pred)


def test_cross_validate_accuracy_scorer(blobs):
    X, y = blobs
    cv = KFold(n_splits=3, shuffle=True, random_state=0)
    res = cross_validate(
        KMeans(n_clusters=3, n_init=1, random_state=0),
        X, y, scoring=accuracy_scorer, cv=cv,
    )
    assert np.all(res["test_score"] > 0.99)


def test_cross_validate_multimetric(blobs):
    X, y = blobs
    res = cross_validate(
        KMeans(n_clusters=3, n_init=1, random_state=0),
        X, y, scoring=SCORERS, cv=3,
    )
    for name in SCORERS:
        assert np.all(res[f"test_{name}"] > 0.99), name


def test_grid_search_multimetric(blobs):
    X, y = blobs
    gs = GridSearchCV(
        KMeans(n_init=1, random_state=0),
        param_grid={"n_clusters": [2, 3, 4]},
        scoring=SCORERS,
        refit="cluster_accuracy",
        cv=3,
    ).fit(X, y)
    assert gs.best_params_ == {"n_clusters": 3}
    assert gs.best_score_ > 0.99
    for name in SCORERS:
        assert f"mean_test_{name}" in gs.cv_results_
    # Purity does not penalize over-splitting; ACC does.
    res = gs.cv_results_
    i2, i4 = (list(res["param_n_clusters"]).index(k) for k in (2, 4))
    assert res["mean_test_purity"][i4] > 0.99
    assert res["mean_test_cluster_accuracy"][i4] < 0.95
    assert res["mean_test_cluster_accuracy"][i2] < 0.8


# --------------------------------------------------------------------------
# Label-free criteria
# --------------------------------------------------------------------------


@HYP
@given(data=st.data())
def test_wcss_matches_brute_force_dense_and_sparse(data):
    import scipy.sparse as sp

    n = data.draw(st.integers(1, 25))
    d = data.draw(st.integers(1, 4))
    values = st.floats(-100, 100, allow_nan=False, width=32)
    X = np.array(data.draw(st.lists(values, min_size=n * d, max_size=n * d)),
                 dtype=np.float64).reshape(n, d)
    labels = np.array(data.draw(st.lists(st.integers(-2, 3), min_size=n, max_size=n)))
    expected = sum(((X[labels == c] - X[labels == c].mean(0)) ** 2).sum()
                   for c in set(labels.tolist()))
    got = within_cluster_sum_of_squares(X, labels)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-6)
    got_sparse = within_cluster_sum_of_squares(sp.csr_matrix(X), labels)
    assert got_sparse == pytest.approx(expected, rel=1e-6, abs=1e-3 * (1 + (X**2).sum()) * 1e-6)
    # merging every cluster into one can only increase it
    assert within_cluster_sum_of_squares(X, np.zeros(n)) >= got - 1e-6 * (1 + got)


def test_wcss_validates_its_input():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        within_cluster_sum_of_squares(np.zeros((3, 2)), [0, 1])


class _Fixed:
    """A fitted 'estimator' that predicts given labels."""

    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def predict(self, X):
        return self.labels


def test_label_free_scorers_match_sklearn_and_rank_the_right_k(blobs):
    from sklearn.metrics import calinski_harabasz_score, silhouette_score

    X, _ = blobs
    km = KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    assert silhouette_scorer(km, X) == silhouette_score(X, km.predict(X))
    assert calinski_harabasz_scorer(km, X) == calinski_harabasz_score(X, km.predict(X))
    gs = GridSearchCV(KMeans(n_init=1, random_state=0), {"n_clusters": [2, 3, 4]},
                      scoring=silhouette_scorer, cv=3).fit(X)
    assert gs.best_params_ == {"n_clusters": 3}


def test_label_free_scorers_of_a_single_cluster_are_the_worst_value(blobs):
    X, _ = blobs
    one = _Fixed(np.zeros(len(X), dtype=int))
    assert silhouette_scorer(one, X) == -1.0
    assert calinski_harabasz_scorer(one, X) == 0.0

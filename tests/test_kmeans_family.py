"""DKM, CenteringKM and DCN: their losses, closed-form updates, hooks and parameters."""

import math
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import skdeepcluster._pretrain as pretrain_module
from skdeepcluster import DCN, DKM, AEKMeans, CenteringKM
from skdeepcluster._dcn import _DCNState
from skdeepcluster._dkm import dkm_alpha_schedule
from skdeepcluster._engine import HostData
from skdeepcluster._kmeans import count_based_center_update, kmeans, lloyd, squared_distances
from skdeepcluster._losses import (
    batch_total_variance,
    inverse_power_weights,
    softmin_weights,
    weighted_kmeans_loss,
)
from skdeepcluster.metrics import accuracy_scorer, cluster_accuracy

SMALL = {"hidden_dims": (16,), "batch_size": 32, "n_init": 2, "random_state": 0,
         "device": "cpu"}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, n_features=6, cluster_std=1.0,
                      random_state=0)
    return X.astype(np.float32), y


# ------------------------------------------------------------------ weights and losses
def test_softmin_weights_hand_made():
    D = torch.tensor([[0.0, math.log(2.0)], [1.0, 1.0]])
    G = softmin_weights(D, 1.0)
    torch.testing.assert_close(G, torch.tensor([[2 / 3, 1 / 3], [0.5, 0.5]]))
    # alpha = 1000 on distances of order 100: no underflow to 0/0, the nearest gets all
    G = softmin_weights(torch.tensor([[100.0, 101.0, 300.0]]), 1000.0)
    assert torch.isfinite(G).all() and G[0, 0] == pytest.approx(1.0)


def test_inverse_power_weights_identities():
    f = torch.tensor([[1.0, 2.0, 4.0]])
    for alpha in (1.0, 2.5, 3.0):
        G = inverse_power_weights(f, alpha, eps=0.0)
        expected = f ** (-alpha) / (f ** (-alpha)).sum()
        torch.testing.assert_close(G, expected)
        # Σ_k f_k G_k = Σ f^{1-α} / Σ f^{-α}
        value = weighted_kmeans_loss(f, G)
        ref = (f ** (1 - alpha)).sum() / (f ** (-alpha)).sum()
        assert float(value) == pytest.approx(float(ref), rel=1e-6)
    # α = 1: the K-harmonic-means term K / Σ 1/f
    G1 = inverse_power_weights(f, 1.0, eps=0.0)
    assert float(weighted_kmeans_loss(f, G1)) == pytest.approx(3 / (1 + 0.5 + 0.25))


def test_inverse_power_weights_point_on_a_centre_is_finite():
    D = torch.tensor([[0.0, 4.0, 9.0]], requires_grad=True)
    G = inverse_power_weights(D, 3.0)
    loss = weighted_kmeans_loss(D, G)
    loss.backward()
    assert G[0, 0].item() == pytest.approx(1.0)
    assert torch.isfinite(D.grad).all()


distances = st.lists(st.floats(0.01, 100.0), min_size=2, max_size=6)


@settings(max_examples=60, deadline=None)
@given(distances, st.floats(0.01, 50.0))
def test_soft_kmeans_terms_lie_between_min_and_mean(row, alpha):
    D = torch.tensor([row], dtype=torch.float64)
    for G in (softmin_weights(D, alpha), inverse_power_weights(D, alpha, eps=0.0)):
        assert float(G.sum()) == pytest.approx(1.0)
        value = float(weighted_kmeans_loss(D, G))
        # weights that favour near centres: between the nearest and the average distance
        assert min(row) - 1e-9 <= value <= sum(row) / len(row) + 1e-9


def test_softmin_tends_to_the_kmeans_loss():
    D = torch.tensor([[3.0, 1.0, 2.0], [0.5, 0.7, 9.0]])
    value = weighted_kmeans_loss(D, softmin_weights(D, 1e4))
    assert float(value) == pytest.approx(float(D.min(dim=1).values.mean()), rel=1e-5)


def test_dkm_alpha_schedule():
    alphas = dkm_alpha_schedule(40)
    assert alphas[:4] == pytest.approx([0.1, 0.4232, 0.7511, 1.0780], abs=1e-3)
    assert alphas[1] == pytest.approx(0.1 * 2 ** (1 / math.log(2) ** 2))
    assert alphas[-1] == pytest.approx(28.1, abs=0.2)
    assert all(b > a for a, b in zip(alphas, alphas[1:]))


# ------------------------------------------------------------------ the shared k-means
def _sequential_dcn_update(centers, counts, Z, labels):
    centers, counts = centers.clone(), counts.clone()
    for z, k in zip(Z, labels.tolist()):
        counts[k] += 1
        centers[k] -= (centers[k] - z) / counts[k]
    return centers, counts


@pytest.mark.parametrize("count0", [0.0, 1.0, 100.0])
def test_count_based_update_equals_the_sequential_loop(count0):
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    counts = torch.full((4,), count0, dtype=torch.float64)
    Z = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (50,), generator=gen)  # cluster 3 gets nobody
    ref_c, ref_n = _sequential_dcn_update(centers, counts, Z, labels)
    c, n = centers.clone(), counts.clone()
    count_based_center_update(c, n, Z, labels)
    torch.testing.assert_close(c, ref_c)
    torch.testing.assert_close(n, ref_n)
    torch.testing.assert_close(c[3], centers[3])  # no members: unchanged, never NaN


def test_count_based_update_hand_made():
    centers = torch.tensor([[0.0], [10.0]])
    counts = torch.tensor([1.0, 0.0])
    count_based_center_update(centers, counts, torch.tensor([[2.0], [4.0], [7.0]]),
                              torch.tensor([0, 0, 1]))
    # (1·0 + 2 + 4) / 3 = 2 and, from a zero count, the mean of its one sample: 7
    torch.testing.assert_close(centers, torch.tensor([[2.0], [7.0]]))
    torch.testing.assert_close(counts, torch.tensor([3.0, 1.0]))


def test_kmeans_warm_start_from_a_fixed_point_stays():
    Z = torch.tensor([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 4.0]])
    fixed = torch.tensor([[0.0, 1.0], [10.0, 2.0]])
    result = kmeans(Z, 2, 5, torch.Generator().manual_seed(0), init=fixed)
    torch.testing.assert_close(result.centers, fixed)
    assert result.n_iter == 1 and result.labels.tolist() == [0, 0, 1, 1]


def test_lloyd_with_sample_weights_and_damping():
    data = HostData(np.array([[0.0], [1.0], [10.0]], dtype=np.float64), torch.device("cpu"),
                    torch.float64, sample_weight=np.array([1.0, 3.0, 1.0]))
    result = lloyd(data, torch.tensor([[0.0], [10.0]], dtype=torch.float64), max_iter=1)
    torch.testing.assert_close(result.centers, torch.tensor([[0.75], [10.0]],
                                                            dtype=torch.float64))
    half = lloyd(data, torch.tensor([[0.0], [10.0]], dtype=torch.float64), max_iter=1,
                 step_size=0.5)
    torch.testing.assert_close(half.centers, torch.tensor([[0.375], [10.0]],
                                                          dtype=torch.float64))
    # weighted inertia with the final centres: 1·0.75² + 3·0.25² + 0
    assert result.inertia == pytest.approx(0.5625 + 0.1875)


# ------------------------------------------------------------------ DKM
def test_dkm_trains_its_representatives(blobs):
    X, _ = blobs
    dkm = DKM(3, pretrain_epochs=5, max_iter=3, lam=1.0, alpha=1.0, **SMALL).fit(X)
    ae = AEKMeans(3, pretrain_epochs=5, n_components=3, **SMALL).fit(X)
    # same pretraining and k-means, then the centres move with the network (they are
    # parameters of the optimiser: the ClustPy bug of non-learnable DKM centres)
    assert dkm.n_components_ == 3  # n_components=None: as many as clusters
    assert not np.allclose(dkm.cluster_centers_, ae.cluster_centers_)
    cluster = [r for r in dkm.history_ if r["phase"] == "cluster"]
    assert len(cluster) == 3 == dkm.n_iter_
    assert all(r["alpha"] == 1.0 for r in cluster)
    assert set(cluster[0]) >= {"loss", "reconstruction", "clustering", "changed"}


def test_dkm_annealed_schedule_in_the_history(blobs):
    X, _ = blobs
    dkm = DKM(3, pretrain_epochs=0, alpha="annealed", epochs_per_alpha=2, max_iter=6,
              **SMALL).fit(X)
    alphas = [r["alpha"] for r in dkm.history_ if r["phase"] == "cluster"]
    expected = dkm_alpha_schedule(3)
    assert alphas == [expected[0]] * 2 + [expected[1]] * 2 + [expected[2]] * 2


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (DKM, {"alpha": 0.0}, "The 'alpha' parameter of DKM must be a float in the range "
                              "(0.0, inf) or a str among {'annealed'}. Got 0.0"),
        (DKM, {"lam": -1.0}, "The 'lam' parameter of DKM must be a float in the range "
                             "[0"),
        (DKM, {"alpha": "annealed", "max_iter": 7, "epochs_per_alpha": 5},
         "max_iter=7 must be a multiple of epochs_per_alpha=5"),
        (CenteringKM, {"alpha": -2.0}, "The 'alpha' parameter of CenteringKM must be"),
        (CenteringKM, {"reinit": "cold"}, "The 'reinit' parameter of CenteringKM must be"),
        (DCN, {"center_count_init": -1}, "The 'center_count_init' parameter of DCN must"),
        (DCN, {"refit_interval": 0}, "The 'refit_interval' parameter of DCN must be"),
        (DCN, {"lam": -0.5}, "The 'lam' parameter of DCN must be a float in the range"),
    ],
)
def test_bad_parameters_fail_before_training(blobs, cls, params, message):
    X, _ = blobs
    model = cls(3, pretrain_epochs=50, **{**SMALL, **params})
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X)
    assert not hasattr(model, "history_")


# ------------------------------------------------------------------ CenteringKM
def test_centering_refit_gives_a_kmeans_fixed_point_on_the_final_embedding(blobs):
    X, _ = blobs
    model = CenteringKM(3, pretrain_epochs=5, max_iter=3, **SMALL).fit(X)
    Z = model.transform(X).astype(np.float64)
    means = np.array([Z[model.labels_ == k].mean(axis=0) for k in range(3)])
    # the centres come from Lloyd run to its tolerance on the final embedding
    np.testing.assert_allclose(model.cluster_centers_, means, atol=1e-3 * np.abs(Z).max())
    cluster = [r for r in model.history_ if r["phase"] == "cluster"]
    assert all("kmeans_iter" in r and "inertia" in r for r in cluster)


@pytest.mark.parametrize("reinit", ["warm", "scratch", None])
def test_centering_reinit_options(blobs, reinit):
    X, _ = blobs
    model = CenteringKM(3, pretrain_epochs=5, max_iter=2, reinit=reinit, **SMALL).fit(X)
    assert np.isfinite(model.cluster_centers_).all()
    cluster = [r for r in model.history_ if r["phase"] == "cluster"]
    assert ("kmeans_iter" in cluster[-1]) == (reinit is not None)


# ------------------------------------------------------------------ DCN
def test_dcn_centres_are_running_means_of_their_batches(blobs):
    X, _ = blobs
    # lam = 0 leaves the network on the reconstruction; with a zero initial count every
    # centre is the running mean of the embeddings it received.
    model = DCN(3, pretrain_epochs=5, max_iter=1, lam=0.0, center_count_init=0.0,
                learning_rate=1e-12, n_components=2, **SMALL).fit(X)
    Z = model.transform(X)
    labels = model.labels_
    means = np.array([Z[labels == k].mean(axis=0) for k in range(3)])
    # a tiny learning rate: the embedding hardly moves, so one epoch of running means is
    # the mean of the members (up to samples assigned before their centre settled)
    np.testing.assert_allclose(model.cluster_centers_, means, atol=0.05 * np.abs(Z).max())


class _Identity(torch.nn.Module):
    def encode(self, X):
        return X

    def decode(self, Z):
        return Z


def test_dcn_relocates_a_centre_left_without_samples():
    X = np.array([[0.0], [0.1], [5.0], [5.2], [30.0]], dtype=np.float32)
    data = HostData(X, torch.device("cpu"), torch.float32)
    model = DCN(3)
    state = _DCNState(data=data, autoencoder=_Identity(), device=torch.device("cpu"),
                      seed=0, history=[])
    state.centers = torch.tensor([[0.0], [5.0], [100.0]])
    state.labels = torch.tensor([0, 0, 1, 1, 1])
    model._init_clustering(state)
    state.epoch = 1
    record = model._epoch_end(state)
    assert record["n_relocated"] == 1
    assert state.centers[2].item() == 30.0  # the farthest sample
    assert state.assignments.tolist() == [0, 0, 1, 1, 2]
    assert torch.isfinite(state.centers).all()


def test_dcn_refit_and_final_kmeans(blobs):
    X, _ = blobs
    model = DCN(3, pretrain_epochs=5, max_iter=2, refit_interval=1, final_kmeans=True,
                n_components=2, **SMALL).fit(X)
    cluster = [r for r in model.history_ if r["phase"] == "cluster"]
    assert all("kmeans_iter" in r for r in cluster)
    Z = model.transform(X).astype(np.float64)
    means = np.array([Z[model.labels_ == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(model.cluster_centers_, means, atol=1e-3 * np.abs(Z).max())


# ------------------------------------------------------------------ shared behaviour
@pytest.mark.parametrize("cls", [DKM, CenteringKM, DCN])
def test_deterministic_and_starts_from_aekmeans(blobs, cls):
    X, y = blobs
    a = cls(3, pretrain_epochs=5, max_iter=2, n_components=3, **SMALL).fit(X)
    b = cls(3, pretrain_epochs=5, max_iter=2, n_components=3, **SMALL).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    ae = AEKMeans(3, pretrain_epochs=5, n_components=3, **SMALL).fit(X)
    init = next(r for r in a.history_ if r["phase"] == "init")
    assert init["inertia"] == pytest.approx(ae.history_[-1]["inertia"])
    assert cluster_accuracy(y, a.labels_) > 0.9  # three well-separated blobs


@pytest.mark.parametrize("cls", [DKM, CenteringKM, DCN])
def test_collapse_warns_with_cluster_sizes(cls):
    X = np.vstack([np.zeros((20, 3)), np.ones((20, 3))]).astype(np.float32)
    with pytest.warns(ConvergenceWarning, match=r"cluster sizes \[\d+, \d+, \d+\]"):
        cls(3, pretrain_epochs=2, max_iter=2, **SMALL).fit(X)


def test_grid_search_over_lam_and_alpha_pretrains_once_per_fold(blobs, tmp_path,
                                                                monkeypatch):
    X, y = blobs
    calls = []
    original = pretrain_module.pretrain_autoencoder

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "pretrain_autoencoder", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(
            DKM(3, max_iter=2, pretrain_epochs=3, memory=str(tmp_path), **SMALL),
            {"lam": [0.1, 1.0], "alpha": [10.0, 1000.0]}, cv=2, scoring=accuracy_scorer,
        ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert len(calls) == 3


# ------------------------------------------------------------------ scale invariance
@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 100.0), st.integers(0, 10_000))
def test_scale_invariant_terms_do_not_reward_shrinking(scale, seed):
    gen = torch.Generator().manual_seed(seed)
    Z = torch.randn(16, 3, generator=gen, dtype=torch.float64)
    C = torch.randn(4, 3, generator=gen, dtype=torch.float64)

    def centering(Z, C):
        D = squared_distances(Z, C)
        return batch_total_variance_term(weighted_kmeans_loss(D, inverse_power_weights(
            D, 3.0, eps=0.0)), Z)

    def dcn(Z, C):
        labels = torch.cdist(Z, C).argmin(dim=1)
        return batch_total_variance_term(((Z - C[labels]) ** 2).sum(dim=1).mean(), Z)

    for term in (centering, dcn):
        assert float(term(scale * Z, scale * C)) == pytest.approx(float(term(Z, C)),
                                                                  rel=1e-9)


def batch_total_variance_term(term, Z):
    return term / batch_total_variance(Z, 1.0)


def test_batch_total_variance_of_one_row_uses_the_whole_embedding():
    Z = torch.ones(1, 3, requires_grad=True)
    assert float(batch_total_variance(Z, lambda: 7.0)) == 7.0
    Z2 = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    assert float(batch_total_variance(Z2, 99.0)) == 1.0  # var 1 in x, 0 in y


@pytest.mark.parametrize("cls", [DKM, CenteringKM, DCN])
def test_scale_invariant_switch_changes_the_training(blobs, cls):
    X, _ = blobs
    a = cls(3, pretrain_epochs=5, max_iter=2, n_components=3, **SMALL).fit(X)
    b = cls(3, pretrain_epochs=5, max_iter=2, n_components=3,
            scale_invariant=not a.scale_invariant, **SMALL).fit(X)
    a_loss = [r["clustering"] for r in a.history_ if r["phase"] == "cluster"]
    b_loss = [r["clustering"] for r in b.history_ if r["phase"] == "cluster"]
    assert a_loss != b_loss
    # the scale-invariant term is a fraction of the batch's spread: below 1 near centres
    si = a_loss if a.scale_invariant else b_loss
    assert all(0 < v < 1 for v in si)


@pytest.mark.parametrize("cls", [DKM, CenteringKM, DCN])
def test_sparse_input_matches_dense(blobs, cls):
    X, _ = blobs
    dense = cls(3, pretrain_epochs=3, max_iter=2, **SMALL).fit(X)
    sparse = cls(3, pretrain_epochs=3, max_iter=2, **SMALL).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(dense.labels_, sparse.labels_)
    np.testing.assert_allclose(dense.transform(X), sparse.transform(sp.csr_matrix(X)),
                               rtol=1e-5, atol=1e-6)
    if cls is not DCN:
        np.testing.assert_allclose(dense.predict_proba(X),
                                   sparse.predict_proba(sp.csr_matrix(X)), atol=1e-6)
        assert dense.predict_proba(X).argmax(axis=1).tolist() == dense.labels_.tolist()
    else:
        assert not hasattr(dense, "predict_proba")  # DCN has hard assignments only

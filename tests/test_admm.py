"""DeepClusterADMM (DC-Kmeans, DC-GMM) and its math: the Y-steps, the Gaussian mixture."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from skdeepcluster import AEKMeans, DeepClusterADMM
from skdeepcluster._kmeans import (
    GaussianMixtureParams,
    gmm_from_partition,
    gmm_log_resp,
    gmm_m_step,
    gmm_precisions,
)
from skdeepcluster._losses import admm_gmm_y_step, admm_kmeans_y_step

FAST = {"hidden_dims": (32,), "n_components": 3, "pretrain_epochs": 30, "batch_size": 64,
        "n_init": 3, "random_state": 0}


def _spd(rng, k, p):
    A = rng.normal(size=(k, p, p))
    return A @ A.transpose(0, 2, 1) + 0.1 * np.eye(p)


# ---------------------------------------------------------------- Y-steps
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 5),
       st.floats(0.01, 100.0), st.floats(0.01, 100.0), st.integers(0, 10_000))
def test_gmm_y_step_equals_direct_per_sample_solve(n, p, k, lam, rho, seed):
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(n, p))
    resp = rng.dirichlet(np.ones(k), size=n)
    means = rng.normal(size=(k, p))
    precisions = np.linalg.inv(_spd(rng, k, p))
    got = admm_gmm_y_step(*(torch.as_tensor(a) for a in (target, resp, means, precisions)),
                          lam, rho).numpy()
    for i in range(n):
        A = lam * sum(resp[i, j] * precisions[j] for j in range(k)) + rho * np.eye(p)
        b = rho * target[i] + lam * sum(resp[i, j] * precisions[j] @ means[j]
                                        for j in range(k))
        np.testing.assert_allclose(got[i], np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.floats(0.01, 100.0), st.floats(0.01, 100.0),
       st.integers(0, 10_000))
def test_kmeans_y_step_is_the_minimiser(n, p, lam, rho, seed):
    """(λ c + ρ t) / (λ + ρ): the gradient of λ/2 ||y − c||² + ρ/2 ||y − t||² vanishes there
    and the objective is larger anywhere nearby."""
    rng = np.random.default_rng(seed)
    t, c = (torch.as_tensor(rng.normal(size=(n, p))) for _ in range(2))
    y = admm_kmeans_y_step(t, c, lam, rho)
    np.testing.assert_allclose((lam * (y - c) + rho * (y - t)).numpy(), 0.0, atol=1e-9)

    def objective(v):
        return lam / 2 * ((v - c) ** 2).sum() + rho / 2 * ((v - t) ** 2).sum()

    step = torch.as_tensor(rng.normal(size=(n, p))) * 1e-3
    assert objective(y + step) > objective(y)


def test_kmeans_y_step_hand_made():
    t = torch.tensor([[0.0, 0.0]])
    c = torch.tensor([[3.0, 6.0]])
    assert admm_kmeans_y_step(t, c, 1.0, 2.0).tolist() == [[1.0, 2.0]]


def test_gmm_y_step_with_identity_precisions_is_the_kmeans_form():
    """One component with Σ = I: the GMM Y-step is the k-means one towards its mean."""
    t = torch.tensor([[1.0, -1.0], [4.0, 2.0]], dtype=torch.float64)
    mean = torch.tensor([[0.0, 3.0]], dtype=torch.float64)
    got = admm_gmm_y_step(t, torch.ones(2, 1, dtype=torch.float64), mean,
                          torch.eye(2, dtype=torch.float64)[None], 2.0, 5.0)
    torch.testing.assert_close(got, admm_kmeans_y_step(t, mean.expand(2, 2), 2.0, 5.0))


# ---------------------------------------------------------------- the Gaussian mixture
@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.integers(1, 4), st.integers(1, 4), st.integers(0, 10_000))
def test_gmm_log_resp_matches_scipy(n, p, k, seed):
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(n, p))
    means = rng.normal(size=(k, p))
    covs = _spd(rng, k, p)
    weights = rng.dirichlet(np.ones(k))
    gmm = GaussianMixtureParams(*(torch.as_tensor(a) for a in (means, covs, weights)))
    log_resp, log_lik = gmm_log_resp(torch.as_tensor(Y), gmm)
    joint = np.stack([np.log(weights[j])
                      + np.atleast_1d(multivariate_normal(means[j], covs[j]).logpdf(Y))
                      for j in range(k)], axis=1).reshape(n, k)
    expected_lik = np.logaddexp.reduce(joint, axis=1)
    np.testing.assert_allclose(log_lik.numpy(), expected_lik, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(log_resp.numpy(), joint - expected_lik[:, None], atol=1e-7)
    np.testing.assert_allclose(np.exp(log_resp.numpy()).sum(axis=1), 1.0, rtol=1e-10)


def test_gmm_m_step_hand_made():
    Y = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 12.0]], dtype=torch.float64)
    resp = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    gmm, reseeded = gmm_m_step(Y, resp, 0.5)
    assert reseeded.numel() == 0
    torch.testing.assert_close(gmm.means, torch.tensor([[1.0, 0.0], [10.0, 11.0]],
                                                       dtype=torch.float64))
    torch.testing.assert_close(gmm.covariances, torch.tensor(
        [[[1.5, 0.0], [0.0, 0.5]], [[0.5, 0.0], [0.0, 1.5]]], dtype=torch.float64))
    torch.testing.assert_close(gmm.weights, torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_gmm_empty_component_is_reseeded_not_nan():
    Y = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    resp = torch.tensor([[1.0, 0.0]] * 4)
    log_lik = torch.tensor([-1.0, -1.0, -1.0, -50.0])
    gmm, reseeded = gmm_m_step(Y, resp, 1e-3, log_lik)
    assert reseeded.tolist() == [1]
    assert gmm.means[1].tolist() == [9.0, 9.0]  # the worst-fitted sample
    assert torch.isfinite(gmm.covariances).all() and torch.isfinite(gmm.weights).all()
    assert float(gmm.weights.sum()) == pytest.approx(1.0)
    assert float(gmm.weights[1]) == pytest.approx(0.25 / 1.25)


def test_singular_covariance_is_regularised_never_nan():
    """A component on a line (rank-1 covariance) and a zero covariance: finite densities."""
    Y = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [5.0, 5.0]])
    covs = torch.stack([torch.tensor([[1.0, 1.0], [1.0, 1.0]]), torch.zeros(2, 2)])
    gmm = GaussianMixtureParams(torch.tensor([[1.0, 1.0], [5.0, 5.0]]), covs,
                                torch.tensor([0.5, 0.5]))
    log_resp, log_lik = gmm_log_resp(Y, gmm)
    assert torch.isfinite(log_resp).all() and torch.isfinite(log_lik).all()
    assert torch.isfinite(gmm_precisions(covs)).all()
    # and the M-step on a rank-deficient cluster is finite once the ridge is in
    part = gmm_from_partition(Y, torch.tensor([0, 0, 0, 1]), 2, 1e-4)
    assert torch.isfinite(gmm_log_resp(Y, part)[0]).all()


def test_gmm_from_partition_is_diagonal():
    rng = np.random.default_rng(0)
    Y = torch.as_tensor(rng.normal(size=(50, 3)))
    labels = torch.as_tensor(rng.integers(0, 2, size=50))
    gmm = gmm_from_partition(Y, labels, 2, 0.0)
    off = gmm.covariances - torch.diag_embed(gmm.covariances.diagonal(dim1=-2, dim2=-1))
    assert float(off.abs().max()) == 0.0
    torch.testing.assert_close(gmm.means[0], Y[labels == 0].mean(dim=0))
    torch.testing.assert_close(gmm.weights.sum(), torch.tensor(1.0, dtype=Y.dtype))


# ---------------------------------------------------------------- the estimator
@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=300, centers=3, n_features=10, cluster_std=1.0,
                      random_state=0)


@pytest.mark.parametrize("clustering", ["kmeans", "gmm"])
def test_fit_recovers_blobs_and_records(blobs, clustering):
    X, y = blobs
    model = DeepClusterADMM(3, clustering=clustering, max_iter=8, tol=0, **FAST).fit(X)
    assert adjusted_rand_score(y, model.labels_) > 0.95
    np.testing.assert_array_equal(model.labels_, model.predict(X))
    assert model.admm_labels_.shape == (300,)
    records = [r for r in model.history_ if r["phase"] == "cluster"]
    assert len(records) == model.n_iter_ == 8
    for r in records:
        assert {"loss", "reconstruction", "constraint", "residual", "changed",
                "n_reseeded"} <= set(r)
        assert np.isfinite(r["residual"]) and r["residual"] >= 0
    assert model.rho_ == (1000.0 if clustering == "gmm" else 1.0)
    assert model.alpha_ == (0.01 if clustering == "gmm" else 1.0)


def test_gmm_attributes_and_predict_proba(blobs):
    X, _ = blobs
    model = DeepClusterADMM(3, clustering="gmm", max_iter=3, **FAST).fit(X)
    assert model.covariances_.shape == (3, 3, 3)
    assert np.all(np.linalg.eigvalsh(model.covariances_) > 0)
    np.testing.assert_allclose(model.covariances_, model.covariances_.transpose(0, 2, 1))
    assert model.weights_.sum() == pytest.approx(1.0, abs=1e-5)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.predict(X))
    # predict_proba is the mixture's responsibilities of the embedding
    Z = torch.as_tensor(model.transform(X))
    gmm = GaussianMixtureParams(*(torch.as_tensor(a) for a in (
        model.cluster_centers_, model.covariances_, model.weights_)))
    np.testing.assert_allclose(proba, gmm_log_resp(Z, gmm)[0].exp().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_kmeans_has_no_predict_proba(blobs):
    X, _ = blobs
    model = DeepClusterADMM(3, max_iter=1, **FAST)
    assert not hasattr(model, "predict_proba")
    assert hasattr(DeepClusterADMM(3, clustering="gmm"), "predict_proba")
    model.fit(X)
    assert not hasattr(model, "predict_proba")
    assert not hasattr(model, "covariances_")


def test_same_pretraining_and_centres_as_aekmeans(blobs, tmp_path):
    """max_iter=0 stops after the shared initialisation: AEKMeans's clustering."""
    X, _ = blobs
    base = AEKMeans(3, **FAST).fit(X)
    admm = DeepClusterADMM(3, max_iter=0, **FAST).fit(X)
    np.testing.assert_allclose(admm.cluster_centers_, base.cluster_centers_)
    np.testing.assert_array_equal(admm.labels_, base.labels_)


def test_deterministic(blobs):
    X, _ = blobs
    a = DeepClusterADMM(3, clustering="gmm", max_iter=3, **FAST).fit(X)
    b = DeepClusterADMM(3, clustering="gmm", max_iter=3, **FAST).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)


def test_kmeans_y_is_between_embedding_and_centres(blobs):
    """With a huge ρ, Y stays on f(X) (residual ~ 0); with a small ρ it moves to the centres."""
    X, _ = blobs
    far = DeepClusterADMM(3, rho=1e6, max_iter=1, **FAST).fit(X)
    near = DeepClusterADMM(3, rho=1e-3, max_iter=1, **FAST).fit(X)
    res_far = next(r for r in far.history_ if r["phase"] == "cluster")["residual"]
    res_near = next(r for r in near.history_ if r["phase"] == "cluster")["residual"]
    assert res_far < 1e-4 < 0.05 < res_near


@pytest.mark.parametrize("params, match", [
    ({"clustering": "em"}, "clustering"),
    ({"rho": 0.0}, "rho"),
    ({"rho": "big"}, "rho"),
    ({"alpha": -1.0}, "alpha"),
    ({"covariance_ridge": -1e-3}, "covariance_ridge"),
    ({"dual_step": 0}, "dual_step"),
])
def test_bad_parameters(blobs, params, match):
    X, _ = blobs
    with pytest.raises(ValueError, match=match):
        DeepClusterADMM(3, **{**FAST, **params}).fit(X)


def test_sparse_input_matches_dense(blobs):
    import scipy.sparse as sp

    X, _ = blobs
    X = np.where(np.abs(X) < 1.0, 0.0, X)
    dense = DeepClusterADMM(3, clustering="gmm", max_iter=2, **FAST).fit(X)
    sparse = DeepClusterADMM(3, clustering="gmm", max_iter=2, **FAST).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)),
                               dense.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_kmeans_w_step_moves_centres_to_means_and_relocates_empty():
    from types import SimpleNamespace

    Y = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [30.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    state = SimpleNamespace(centers=torch.tensor([[0.0, 0.0], [5.0, 0.0], [100.0, 100.0]]))
    n = DeepClusterADMM(3)._center_step(state, Y, labels)
    assert n == 1  # cluster 2 had no sample
    assert state.centers[0].tolist() == [1.0, 0.0]
    assert state.centers[1].tolist() == [20.0, 0.0]
    # the empty centre takes over the sample farthest from its centre (10 from 20 or 30)
    assert state.centers[2].tolist() in ([10.0, 0.0], [30.0, 0.0])
    assert torch.isfinite(state.centers).all()


def test_gmm_y_step_in_chunks_equals_one_block(monkeypatch):
    import skdeepcluster._losses as losses

    rng = np.random.default_rng(1)
    args = [torch.as_tensor(a) for a in (rng.normal(size=(50, 3)),
                                         rng.dirichlet(np.ones(4), size=50),
                                         rng.normal(size=(4, 3)),
                                         np.linalg.inv(_spd(rng, 4, 3)))]
    whole = admm_gmm_y_step(*args, 1.0, 10.0)
    monkeypatch.setattr(losses, "Y_STEP_CHUNK_VALUES", 9 * 7)  # 7 rows per chunk
    torch.testing.assert_close(losses.admm_gmm_y_step(*args, 1.0, 10.0), whole)

"""DCTLKMeans: the log-det regulariser, the code prior, the transform, the estimator."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from skdeepcluster import DCTLKMeans
from skdeepcluster._engine import adam_rows_
from skdeepcluster._losses import log_det_regularizer
from skdeepcluster.networks import ConvTransform, code_prior_prox


# ---------------------------------------------------------------- the regulariser
def _orthonormal(rng, m, n):
    Q, _ = np.linalg.qr(rng.normal(size=(m, n)))
    return torch.as_tensor(Q[:, :n])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 4), st.floats(0.05, 5.0), st.integers(0, 10_000))
def test_regularizer_per_singular_value_minimum_at_one_over_sqrt2(n, extra, s, seed):
    """T = s Q (orthonormal columns): the penalty is n (s² − log s), minimal at s = 1/√2."""
    Q = _orthonormal(np.random.default_rng(seed), n + extra, n)
    best = float(log_det_regularizer(Q / math.sqrt(2.0)))
    assert best == pytest.approx(n * (0.5 + 0.5 * math.log(2.0)), rel=1e-9)
    assert float(log_det_regularizer(s * Q)) == pytest.approx(n * (s * s - math.log(s)),
                                                              rel=1e-9)
    assert float(log_det_regularizer(s * Q)) >= best - 1e-12


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(0, 4), st.integers(0, 10_000))
def test_regularizer_gradient_matches_autograd_and_closed_form(n, extra, seed):
    """d/dT (||T||² − ½ log det TᵀT) = 2T − T (TᵀT)⁻¹ for a full-column-rank T."""
    rng = np.random.default_rng(seed)
    T = torch.as_tensor(rng.normal(size=(n + extra, n))).requires_grad_()
    log_det_regularizer(T).backward()
    with torch.no_grad():
        expected = 2 * T - T @ torch.linalg.inv(T.T @ T)
    torch.testing.assert_close(T.grad, expected, rtol=1e-7, atol=1e-9)
    # and against the Gram-matrix form of the same function
    T2 = T.detach().clone().requires_grad_()
    ((T2 * T2).sum() - 0.5 * torch.logdet(T2.T @ T2)).backward()
    torch.testing.assert_close(T.grad, T2.grad, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("T", [
    torch.zeros(9, 3, dtype=torch.float64),
    torch.tensor([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]], dtype=torch.float64),  # parallel
    torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64),  # a zero filter
])
def test_rank_deficient_filters_give_finite_penalty_and_gradient(T):
    T = T.clone().requires_grad_()
    value = log_det_regularizer(T)
    value.backward()
    assert torch.isfinite(value) and float(value.detach()) > 0
    assert torch.isfinite(T.grad).all()


# ---------------------------------------------------------------- the code prior
def test_code_prior_prox_hand_made():
    S = torch.tensor([-2.0, -0.05, 0.0, 0.05, 3.0])
    assert code_prior_prox(S, "nonneg").tolist() == [0.0, 0.0, 0.0, 0.05000000074505806, 3.0]
    torch.testing.assert_close(code_prior_prox(S, "l1", 0.1),
                               torch.tensor([-1.9, 0.0, 0.0, 0.0, 2.9]))
    assert code_prior_prox(S, None) is S


@settings(max_examples=30, deadline=None)
@given(st.floats(-5, 5), st.floats(0, 2))
def test_l1_prox_is_the_minimiser(s, threshold):
    z = float(code_prior_prox(torch.tensor([s], dtype=torch.float64), "l1", threshold)[0])
    grid = np.linspace(-6, 6, 24001)
    objective = 0.5 * (s - grid) ** 2 + threshold * np.abs(grid)
    assert 0.5 * (s - z) ** 2 + threshold * abs(z) <= objective.min() + 1e-9


# ---------------------------------------------------------------- lazy Adam on rows
def test_adam_rows_matches_torch_adam_on_its_rows_and_leaves_the_others():
    rng = np.random.default_rng(0)
    param = torch.as_tensor(rng.normal(size=(6, 3)))
    moments = (torch.zeros_like(param), torch.zeros_like(param),
               torch.zeros(6, dtype=torch.long))
    rows = torch.tensor([1, 4])
    ref = param[rows].clone().requires_grad_()
    opt = torch.optim.Adam([ref], lr=0.01)
    before = param.clone()
    for _step in range(5):
        grad = torch.as_tensor(rng.normal(size=(2, 3)))
        ref.grad = grad.clone()
        opt.step()
        adam_rows_(param, grad, rows, moments, 0.01)
    torch.testing.assert_close(param[rows], ref.detach(), rtol=1e-12, atol=1e-12)
    others = torch.tensor([0, 2, 3, 5])
    assert torch.equal(param[others], before[others])
    assert moments[2].tolist() == [0, 5, 0, 0, 5, 0]


# ---------------------------------------------------------------- the transform
def test_conv_transform_shapes_2d_and_1d():
    net = ConvTransform(784, input_shape=(28, 28))
    assert net.n_components == 3 * 7 * 7
    assert [tuple(T.shape) for T in net.filter_matrices()] == [(81, 3), (243, 3)]
    assert all(m.bias is None for m in net.layers if hasattr(m, "weight"))
    net1 = ConvTransform(300)
    assert net1.n_components == 3 * 75
    assert [tuple(T.shape) for T in net1.filter_matrices()] == [(9, 3), (27, 3)]
    out = net1.encode(torch.randn(4, 300))
    assert out.shape == (4, 225) and bool((out >= 0).all())
    assert not hasattr(net1, "decode")


@pytest.mark.parametrize("params, match", [
    ({"input_shape": (15, 15)}, "n_features=256"),
    ({"input_shape": (16, 16), "kernel_size": 17}, "kernel_size=17 is larger"),
    ({"input_shape": (16, 16), "n_filters": (100, 3)}, "cannot have full column rank"),
    ({"input_shape": (4, 64), "kernel_size": 3, "n_filters": (3, 3, 3)}, "too small"),
    ({"n_filters": (3, 0)}, "n_filters"),
])
def test_bad_geometry_fails_before_training(params, match):
    X = np.random.default_rng(0).normal(size=(30, 256))
    with pytest.raises(ValueError, match=match):
        DCTLKMeans(2, max_iter=1, **params).fit(X)


# ---------------------------------------------------------------- the estimator
def _bars_and_blobs(n_per=60, seed=0):
    """8x8 noisy images of three kinds: left half bright, right half bright, top half
    bright (a pooled transform keeps where the light is)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        for _ in range(n_per):
            img = rng.normal(0, 0.5, size=(8, 8))
            if label == 0:
                img[:, :4] += 2.0
            elif label == 1:
                img[:, 4:] += 2.0
            else:
                img[:4, :] += 2.0
            images.append(img.ravel())
            labels.append(label)
    return np.asarray(images, dtype=np.float32), np.asarray(labels)


FAST = {"input_shape": (8, 8), "kernel_size": 3, "max_iter": 10, "random_state": 0,
        "batch_size": 64}


def test_fit_clusters_images_and_transform_is_prox_of_transform():
    X, y = _bars_and_blobs()
    model = DCTLKMeans(3, **FAST).fit(X)
    assert adjusted_rand_score(y, model.labels_) > 0.8
    np.testing.assert_array_equal(model.labels_, model.predict(X))
    codes = model.transform(X)
    assert codes.shape == (180, model.n_components_) == (180, 12)
    assert (codes >= 0).all()
    with torch.no_grad():
        raw = model.autoencoder_.analysis(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(codes, np.maximum(raw, 0.0), rtol=1e-6, atol=1e-6)
    assert [T.shape for T in model.filters_] == [(9, 3), (27, 3)]
    records = [r for r in model.history_ if r["phase"] == "cluster"]
    assert len(records) == model.n_iter_ >= 1
    assert {"loss", "data", "clustering", "regularizer", "center_shift", "changed"} <= set(
        records[0])


def test_l1_and_no_prior():
    X, _ = _bars_and_blobs()
    l1 = DCTLKMeans(3, code_prior="l1", code_penalty=0.5, **FAST).fit(X)
    codes = l1.transform(X)
    with torch.no_grad():
        raw = l1.autoencoder_.analysis(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(codes, np.sign(raw) * np.maximum(np.abs(raw) - 0.25, 0),
                               rtol=1e-5, atol=1e-6)
    free = DCTLKMeans(3, code_prior=None, **FAST).fit(X)
    assert (free.transform(X) < 0).any()


def test_one_dimensional_filters_for_vectors():
    X, _y = _bars_and_blobs()
    model = DCTLKMeans(3, kernel_size=5, max_iter=5, random_state=0).fit(X)
    assert [T.shape for T in model.filters_] == [(5, 3), (15, 3)]
    assert model.n_components_ == 3 * 16


def test_stops_when_centres_stop_moving():
    X, _ = _bars_and_blobs()
    loose = DCTLKMeans(3, **{**FAST, "max_iter": 30, "tol": 1e3}).fit(X)
    assert loose.n_iter_ == 1
    strict = DCTLKMeans(3, **{**FAST, "max_iter": 3, "tol": 0.0}).fit(X)
    assert strict.n_iter_ == 3


def test_deterministic_and_mu_zero_leaves_codes_to_the_transform():
    X, _ = _bars_and_blobs()
    a = DCTLKMeans(3, **FAST).fit(X)
    b = DCTLKMeans(3, **FAST).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    # the k-means term on the codes is what mu > 0 lowers: over the same 5 epochs (no early
    # stop) it falls by ~7 % with mu=1 and does not fall with mu=0 (0.0608 -> 0.0567 and
    # 0.0608 -> 0.0609 on the CPU)
    same = {**FAST, "tol": 0.0, "max_iter": 5}
    piecemeal = DCTLKMeans(3, **{**same, "mu": 0.0}).fit(X)
    joint_fit = DCTLKMeans(3, **{**same, "mu": 1.0}).fit(X)
    clustering = [r["clustering"] for r in piecemeal.history_ if r["phase"] == "cluster"]
    joint = [r["clustering"] for r in joint_fit.history_ if r["phase"] == "cluster"]
    assert joint[-1] < 0.97 * clustering[-1]
    assert clustering[-1] >= 0.99 * clustering[0]


def test_adam_rows_prox_is_applied_to_the_stepped_rows():
    rng = np.random.default_rng(3)
    grad = torch.as_tensor(rng.normal(size=(2, 4)))
    rows = torch.tensor([0, 2])
    plain = torch.as_tensor(rng.normal(size=(3, 4)))
    proxed = plain.clone()

    def fresh_moments():
        return torch.zeros_like(plain), torch.zeros_like(plain), torch.zeros(3, dtype=torch.long)

    adam_rows_(plain, grad, rows, fresh_moments(), 0.5)
    adam_rows_(proxed, grad, rows, fresh_moments(), 0.5, prox=lambda r: r.clamp_min(0.0))
    torch.testing.assert_close(proxed[rows], plain[rows].clamp_min(0.0))
    torch.testing.assert_close(proxed[1], plain[1])

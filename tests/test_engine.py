"""The shared engine, the torch k-means helpers and the concrete loss."""

import math
import random
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skdeepcluster._engine import HostData, resolve_device, rng_scope, seeded_generator
from skdeepcluster._kmeans import assign_nearest, kmeans_plusplus, squared_distances
from skdeepcluster._losses import (
    concrete_kmeans_center_grad,
    concrete_kmeans_loss,
    gumbel_noise,
    rbf_assignment_proba,
    straight_through_gumbel_softmax,
)

CPU = torch.device("cpu")


# --------------------------------------------------------------------------- device
def test_resolve_device():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type in {"cpu", "cuda"}
    assert resolve_device(None) == resolve_device("auto")
    with pytest.raises(ValueError, match="device='nonsense'"):
        resolve_device("nonsense")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_missing_cuda_warns_and_falls_back(name):
    with pytest.warns(UserWarning, match="falling back to the CPU"):
        assert resolve_device(name) == CPU
    assert resolve_device("auto") == CPU


# --------------------------------------------------------------------------- RNG
def test_rng_scope_is_reproducible_and_leaves_global_state():
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    py_state = random.getstate()
    with rng_scope(3):
        a = torch.rand(4)
        np.random.rand(3)
        random.random()
    with rng_scope(3):
        b = torch.rand(4)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state


def test_seeded_generator():
    a = torch.rand(5, generator=seeded_generator(11, CPU))
    b = torch.rand(5, generator=seeded_generator(11, CPU))
    assert torch.equal(a, b)


# --------------------------------------------------------------------------- data access
def test_hostdata_batches_cover_each_row_once():
    X = np.arange(50, dtype=np.float32).reshape(25, 2)
    data = HostData(X, CPU, torch.float32)
    seen = []
    for idx, xb in data.minibatches(7, seeded_generator(0, CPU)):
        assert torch.equal(xb, torch.from_numpy(X)[idx])
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(25))
    chunks = list(data.chunks(chunk_rows=10))
    assert [(a, b) for a, b, _ in chunks] == [(0, 10), (10, 20), (20, 25)]


def test_hostdata_does_not_copy_dense_input():
    X = np.zeros((10, 3), dtype=np.float32)
    data = HostData(X, CPU, torch.float32)
    X[0, 0] = 5.0
    assert data.rows(torch.tensor([0]))[0, 0] == 5.0


def test_hostdata_sparse_rows():
    X = sp.random(20, 5, density=0.3, format="csr", random_state=0, dtype=np.float64)
    data = HostData(X, CPU, torch.float64)
    idx = torch.tensor([3, 0, 7])
    np.testing.assert_array_equal(data.rows(idx).numpy(), X[[3, 0, 7]].toarray())


# --------------------------------------------------------------------------- k-means helpers
@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 5), st.integers(0, 10_000))
def test_squared_distances_match_brute_force(n, k, d, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * 10
    C = torch.randn(k, d, generator=g, dtype=torch.float64) * 10
    D = squared_distances(X, C)
    brute = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
    torch.testing.assert_close(D, brute, rtol=1e-9, atol=1e-9)
    assert (D >= 0).all()


def test_kmeans_plusplus_picks_distinct_rows_and_is_seeded():
    X = np.random.RandomState(0).randn(200, 3)
    data = HostData(X, CPU, torch.float64)
    centers, idx = kmeans_plusplus(data, 8, seeded_generator(1, CPU))
    assert len(set(idx.tolist())) == 8
    np.testing.assert_array_equal(centers.numpy(), X[idx.numpy()])
    _, idx2 = kmeans_plusplus(data, 8, seeded_generator(1, CPU))
    assert torch.equal(idx, idx2)


def test_kmeans_plusplus_spreads_over_separated_groups():
    # Three tight, far apart groups: k-means++ must seed one centre in each.
    X = np.vstack([np.random.RandomState(s).randn(50, 2) * 0.01 + 100 * s for s in range(3)])
    data = HostData(X, CPU, torch.float64)
    for seed in range(5):
        _, idx = kmeans_plusplus(data, 3, seeded_generator(seed, CPU))
        assert sorted((idx // 50).tolist()) == [0, 1, 2]


def test_kmeans_plusplus_respects_zero_weights():
    X = np.arange(20.0).reshape(10, 2)
    w = np.zeros(10)
    w[[2, 5, 7]] = 1.0
    data = HostData(X, CPU, torch.float64, sample_weight=w)
    _, idx = kmeans_plusplus(data, 3, seeded_generator(0, CPU))
    assert sorted(idx.tolist()) == [2, 5, 7]


def test_assign_nearest():
    X = np.array([[0.0], [0.9], [2.1], [3.0]])
    data = HostData(X, CPU, torch.float64)
    labels, dist = assign_nearest(data, torch.tensor([[0.0], [3.0]], dtype=torch.float64))
    assert labels.tolist() == [0, 0, 1, 1]
    torch.testing.assert_close(dist, torch.tensor([0.0, 0.81, 0.81, 0.0], dtype=torch.float64))


# --------------------------------------------------------------------------- losses
def test_gumbel_noise_is_finite_and_standard():
    g = seeded_generator(0, CPU)
    G = gumbel_noise((200_000,), g, CPU, torch.float32)
    assert torch.isfinite(G).all()
    # Standard Gumbel: mean = Euler-Mascheroni constant, variance = π²/6.
    assert float(G.mean()) == pytest.approx(0.5772, abs=0.01)
    assert float(G.var()) == pytest.approx(math.pi**2 / 6, rel=0.02)


def test_straight_through_is_one_hot_forward_soft_backward():
    g = seeded_generator(0, CPU)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    noise = gumbel_noise((6, 4), g, CPU, torch.float64)
    h, index = straight_through_gumbel_softmax(logits, 0.5, noise)
    assert torch.equal(h.detach(), torch.nn.functional.one_hot(index, 4).to(h.dtype))
    assert torch.equal(index, (logits + noise).argmax(1))
    weights = torch.randn(6, 4, generator=g, dtype=torch.float64)
    (grad_st,) = torch.autograd.grad((h * weights).sum(), logits)
    soft = torch.softmax((logits + noise) / 0.5, dim=1)
    (grad_soft,) = torch.autograd.grad((soft * weights).sum(), logits)
    torch.testing.assert_close(grad_st, grad_soft)


def test_gumbel_max_samples_follow_softmax():
    g = seeded_generator(0, CPU)
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)).expand(40_000, 3)
    _, index = straight_through_gumbel_softmax(
        logits, 1.0, gumbel_noise((40_000, 3), g, CPU, torch.float64)
    )
    freq = torch.bincount(index, minlength=3).double() / 40_000
    torch.testing.assert_close(freq, torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64),
                               atol=0.01, rtol=0)


def test_concrete_loss_forward_value_is_kmeans_loss_of_the_sample():
    Z = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    C = torch.tensor([[0.0, 0.0], [4.0, 3.0]], dtype=torch.float64)
    noise = torch.zeros(3, 2, dtype=torch.float64)
    loss, index = concrete_kmeans_loss(Z, C, tau=1.0, sigma=1.0, noise=noise)
    # Nearest centres: 0 (d²=0), 0 (16) vs 1 (9) -> 1, 0 (9) vs 1 (16) -> 0.
    assert index.tolist() == [0, 1, 0]
    assert float(loss) == pytest.approx(0.0 + 9.0 + 9.0)
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    loss_w, _ = concrete_kmeans_loss(Z, C, tau=1.0, sigma=1.0, noise=noise, sample_weight=w)
    assert float(loss_w) == pytest.approx(18.0 + 4.5)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 5),
    st.integers(1, 4),
    st.sampled_from([0.0, 0.3, 1.0, 5.0]),
    st.sampled_from([0.1, 1.0, 3.0]),
    st.booleans(),
    st.integers(0, 10_000),
)
def test_closed_form_gradient_equals_autograd(n, k, d, sigma, tau, weighted, seed):
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, d, generator=g, dtype=torch.float64) * 2
    C = torch.randn(k, d, generator=g, dtype=torch.float64).requires_grad_(True)
    noise = gumbel_noise((n, k), g, CPU, torch.float64)
    w = torch.rand(n, generator=g, dtype=torch.float64) if weighted else None
    loss, index = concrete_kmeans_loss(Z, C, tau, sigma, noise, w)
    (grad,) = torch.autograd.grad(loss, C)
    loss2, index2, grad2 = concrete_kmeans_center_grad(Z, C.detach(), tau, sigma, noise.T, w)
    assert torch.equal(index, index2)
    torch.testing.assert_close(loss2, loss.detach(), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grad2, grad, rtol=1e-7, atol=1e-7)


def test_sigma_zero_limit_is_the_lloyd_gradient():
    Z = torch.tensor([[0.0], [1.0], [9.0], [11.0]], dtype=torch.float64)
    C = torch.tensor([[0.0], [10.0]], dtype=torch.float64)
    _, index, grad = concrete_kmeans_center_grad(Z, C, 1.0, 0.0, None)
    assert index.tolist() == [0, 0, 1, 1]
    # -2 Σ_{i in k} (z_i - μ_k)
    torch.testing.assert_close(grad, torch.tensor([[-2.0], [0.0]], dtype=torch.float64))


def test_rbf_assignment_proba_rows_sum_to_one():
    Z = torch.randn(10, 3, dtype=torch.float64)
    C = torch.randn(4, 3, dtype=torch.float64)
    P = rbf_assignment_proba(Z, C, 0.7)
    torch.testing.assert_close(P.sum(1), torch.ones(10, dtype=torch.float64))
    assert torch.equal(P.argmax(1), squared_distances(Z, C).argmin(1))


def test_no_warnings_for_readonly_memmap(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(8, 2))
    X[:] = 1.0
    X.flush()
    ro = np.load(tmp_path / "x.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HostData(ro, CPU, torch.float32)


# ---------------------------------------------------------------- the epoch loop
from skdeepcluster._engine import TrainingDivergedError, run_epochs  # noqa: E402
from skdeepcluster._losses import reconstruction_loss  # noqa: E402


def test_reconstruction_loss_reductions_exact():
    X = torch.zeros(2, 4)
    X_hat = torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    # per-sample sums 2 and 4 -> mean over samples 3; "mean" also divides by 4 features
    assert reconstruction_loss(X_hat, X, "sum").item() == 3.0
    assert reconstruction_loss(X_hat, X, "mean").item() == 0.75


def _mean_step(idx, xb, epoch):
    return {"value": xb[:, 0].mean(), "size": torch.tensor(float(xb.shape[0]))}


def test_run_epochs_records_exact_epoch_means():
    X = np.arange(10, dtype=np.float32).reshape(10, 1)
    data = HostData(X, torch.device("cpu"), torch.float32)
    history = []
    n = run_epochs(data, phase="p", n_epochs=3, batch_size=4,
                   generator=seeded_generator(0, "cpu"), step=_mean_step, history=history)
    assert n == 3
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for r in history:
        # batch means weighted by batch sizes: the mean over all rows, whatever the shuffle
        assert r["value"] == pytest.approx(4.5)
        assert r["size"] == pytest.approx((4 * 4 + 4 * 4 + 2 * 2) / 10)
        assert r["phase"] == "p" and r["seconds"] >= 0


def test_run_epochs_stops_on_tol_and_on_callbacks():
    X = np.ones((6, 2), dtype=np.float32)
    data = HostData(X, torch.device("cpu"), torch.float32)
    changes = iter([0.5, 0.2, 0.05, 0.01])
    n = run_epochs(data, phase="c", n_epochs=10, batch_size=3,
                   generator=seeded_generator(0, "cpu"), step=_mean_step,
                   epoch_end=lambda e: {"changed": next(changes)},
                   converged=lambda record: record["changed"] < 0.1)
    assert n == 3
    calls = []
    n = run_epochs(data, phase="c", n_epochs=10, batch_size=3,
                   generator=seeded_generator(0, "cpu"), step=_mean_step, owner="me",
                   callbacks=[lambda owner, r: calls.append((owner, r["epoch"])) or
                              r["epoch"] == 2])
    assert n == 2 and calls == [("me", 1), ("me", 2)]


def test_run_epochs_raises_on_nan_with_epoch_and_phase():
    X = np.ones((4, 1), dtype=np.float32)
    data = HostData(X, torch.device("cpu"), torch.float32)

    def step(idx, xb, epoch):
        return {"loss": torch.tensor(float("nan") if epoch == 2 else 1.0)}

    with pytest.raises(TrainingDivergedError,
                       match="loss \\(loss\\) became NaN at epoch 2 of the warm phase; boom"):
        run_epochs(data, phase="warm", n_epochs=5, batch_size=2,
                   generator=seeded_generator(0, "cpu"), step=step, diverged_hint="boom")


# ---------------------------------------------------------------- torch k-means
from skdeepcluster._kmeans import kmeans, lloyd  # noqa: E402


def test_lloyd_hand_made_case():
    Z = torch.tensor([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 4.0]])
    centers, labels, inertia, n_iter = lloyd(Z, torch.tensor([[1.0, 1.0], [9.0, 1.0]]))
    torch.testing.assert_close(centers, torch.tensor([[0.0, 1.0], [10.0, 2.0]]))
    assert labels.tolist() == [0, 0, 1, 1]
    assert inertia == pytest.approx(1 + 1 + 4 + 4)
    assert n_iter == 2  # one move, then a zero shift


def test_lloyd_relocates_an_empty_cluster_to_the_farthest_point():
    Z = torch.tensor([[0.0], [1.0], [2.0], [30.0]])
    centers, labels, _, _ = lloyd(Z, torch.tensor([[1.0], [100.0], [101.0]]))
    assert len(set(labels.tolist())) == 3
    assert 30.0 in centers.flatten().tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_matches_sklearn_inertia_on_blobs(seed):
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=500, centers=5, n_features=4, random_state=seed)
    Z = torch.as_tensor(X, dtype=torch.float64)
    _, labels, inertia, _ = kmeans(Z, 5, n_init=5, generator=seeded_generator(seed, "cpu"))
    ref = KMeans(5, n_init=5, random_state=seed).fit(X)
    assert inertia == pytest.approx(ref.inertia_, rel=1e-6)
    # deterministic for a given generator seed
    _, labels2, _, _ = kmeans(Z, 5, n_init=5, generator=seeded_generator(seed, "cpu"))
    assert torch.equal(labels, labels2)


# ------------------------------------------------------------ runs computed together
from skdeepcluster._kmeans import lloyd_step  # noqa: E402


def test_kmeans_plusplus_runs_together_are_independent_seedings():
    X = np.vstack([np.random.RandomState(s).randn(40, 2) * 0.01 + 100 * s for s in range(4)])
    data = HostData(X, CPU, torch.float64)
    centers, idx = kmeans_plusplus(data, 4, seeded_generator(3, CPU), n_runs=6)
    assert centers.shape == (6, 4, 2) and idx.shape == (6, 4)
    for r in range(6):
        # every run seeds one centre per group, with rows of the data
        assert sorted((idx[r] // 40).tolist()) == [0, 1, 2, 3]
        np.testing.assert_array_equal(centers[r].numpy(), X[idx[r].numpy()])
    assert len({tuple(row) for row in idx.tolist()}) > 1  # the runs differ
    # one run computed "together" is the single seeding
    single, single_idx = kmeans_plusplus(data, 4, seeded_generator(3, CPU))
    batch1, batch1_idx = kmeans_plusplus(data, 4, seeded_generator(3, CPU), n_runs=1)
    assert torch.equal(single_idx, batch1_idx[0]) and torch.equal(single, batch1[0])


@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_runs_together_equal_runs_apart(weighted):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(30, 3) + 6 * c for c in range(3)])
    w = rng.rand(90) + 0.5 if weighted else None
    data = HostData(X, CPU, torch.float64, sample_weight=w)
    starts = torch.as_tensor(X[[[0, 1, 2, 3], [0, 30, 60, 61], [5, 6, 7, 89]]])
    history = [[], [], []]
    together = lloyd(data, starts, tol_abs=0.0, history=history, first_epoch=[1, 4, 2],
                     max_iter=[50, 50, 2])
    for r in range(3):
        apart_history = []
        apart = lloyd(data, starts[r], tol_abs=0.0, history=apart_history,
                      first_epoch=[1, 4, 2][r], max_iter=[50, 50, 2][r])
        torch.testing.assert_close(together.centers[r], apart.centers, rtol=1e-12, atol=1e-12)
        assert torch.equal(together.labels[r], apart.labels)
        assert together.inertia[r].item() == pytest.approx(apart.inertia, rel=1e-12)
        assert together.n_iter[r] == apart.n_iter == len(history[r])
        assert [h["epoch"] for h in history[r]] == [h["epoch"] for h in apart_history]
        for a, b in zip(history[r], apart_history):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-12)
            assert a["n_relocated"] == b["n_relocated"]
    assert together.n_iter[2] == 2  # its own max_iter


def test_lloyd_step_relocates_only_the_run_with_an_empty_cluster():
    X = torch.tensor([[0.0], [1.0], [10.0], [11.0]], dtype=torch.float64)
    data = HostData(X, CPU, torch.float64)
    # run 0: a centre far from every point (empty); run 1: a sound start
    starts = torch.tensor([[[0.5], [100.0]], [[0.5], [10.5]]], dtype=torch.float64)
    new, loss, n_relocated = lloyd_step(data, starts)
    assert n_relocated.tolist() == [1, 0]
    assert new[1].flatten().tolist() == [0.5, 10.5]
    # the empty centre of run 0 takes over its worst-fitted point (11, at distance 10.5)
    assert new[0].flatten().tolist() == [5.5, 11.0]
    assert loss[1].item() == pytest.approx(4 * 0.25)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 30), st.integers(1, 5), st.integers(1, 4), st.integers(1, 4),
       st.booleans(), st.integers(0, 10_000))
def test_concrete_gradient_of_runs_together_equals_each_run(n, k, d, r, weighted, seed):
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, d, generator=g, dtype=torch.float64)
    C = torch.randn(r, k, d, generator=g, dtype=torch.float64)
    noise = gumbel_noise((r, k, n), g, CPU, torch.float64)
    w = torch.rand(n, generator=g, dtype=torch.float64) if weighted else None
    loss, index, grad = concrete_kmeans_center_grad(Z, C, 0.7, 1.3, noise, w)
    assert loss.shape == (r,) and index.shape == (r, n) and grad.shape == (r, k, d)
    for j in range(r):
        loss1, index1, grad1 = concrete_kmeans_center_grad(Z, C[j], 0.7, 1.3, noise[j], w)
        assert torch.equal(index[j], index1)
        torch.testing.assert_close(loss[j], loss1, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad[j], grad1, rtol=1e-10, atol=1e-10)
    # one draw shared by every run (shape (1, k, n), broadcast) is each run's own draw
    shared = noise[:1]
    loss_s, index_s, grad_s = concrete_kmeans_center_grad(Z, C, 0.7, 1.3, shared, w)
    for j in range(r):
        loss1, index1, grad1 = concrete_kmeans_center_grad(Z, C[j], 0.7, 1.3, shared[0], w)
        assert torch.equal(index_s[j], index1)
        torch.testing.assert_close(loss_s[j], loss1, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad_s[j], grad1, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "shape", [(1, 70000), (7, 20000), (3, 5, 9000), (2, 3), (255, 400), (256, 400)]
)
def test_max_over_clusters_equals_torch_max_with_ties(shape):
    from skdeepcluster._kmeans import max_over_clusters

    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, shape, generator=g).to(torch.float32)  # many ties
    best, index = max_over_clusters(scores)
    ref_best, _ = scores.max(dim=-2)
    assert torch.equal(best, ref_best)
    # the first index among ties
    first = torch.argmax((scores == ref_best.unsqueeze(-2)).to(torch.int8), dim=-2)
    assert torch.equal(index, first)


def test_max_over_clusters_keeps_nan_columns_in_range():
    from skdeepcluster._kmeans import max_over_clusters

    scores = torch.randn(4, 20000)
    scores[:, 5] = float("nan")
    _, index = max_over_clusters(scores)
    assert 0 <= int(index[5]) < 4


def test_warnings_point_at_the_callers_line():
    from sklearn.datasets import make_blobs
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skdeepcluster import AEKMeans, ShallowConcreteKMeans

    X, _ = make_blobs(n_samples=60, n_features=3, centers=2, random_state=0)
    with pytest.warns(UserWarning, match="falling back to the CPU") as record:
        ShallowConcreteKMeans(n_clusters=2, device="cuda:7", random_state=0).fit(X)
    assert record[0].filename == __file__
    with pytest.warns(UserWarning, match="falling back to the CPU") as record:
        make_pipeline(StandardScaler(), AEKMeans(n_clusters=2, device="cuda:7", hidden_dims=(4,),
                                                 pretrain_epochs=1, random_state=0)).fit(X)
    assert record[0].filename == __file__
    with pytest.warns(RuntimeWarning, match="Explicit initial center") as record:
        ShallowConcreteKMeans(n_clusters=2, init=X[:2], n_init=3).fit(X)
    assert record[0].filename == __file__
    duplicates = np.repeat(X[:2], 10, axis=0)
    with pytest.warns(Warning, match="Number of distinct clusters") as record:
        ShallowConcreteKMeans(n_clusters=3, random_state=0).fit(duplicates)
    assert all(r.filename == __file__ for r in record
               if "Number of distinct clusters" in str(r.message))


def test_index_add_rows_and_rows_of_match_plain_indexing():
    from skdeepcluster._kmeans import index_add_rows_, rows_of, weighted_bincount

    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, 5, (1000,), generator=g)
    values = torch.randn(1000, 3, generator=g)
    expected = torch.zeros(5, 3, dtype=torch.float64).index_add_(0, index, values.double())
    got = index_add_rows_(torch.zeros(5, 3), index, values)
    torch.testing.assert_close(got, expected.float())
    weights = torch.rand(1000, generator=g)
    torch.testing.assert_close(weighted_bincount(index, weights, 7, torch.float32),
                               torch.bincount(index, weights=weights, minlength=7).float())
    # the CUDA algorithm (one-hot products, in blocks), run here on the CPU
    from skdeepcluster import _kmeans

    for block_values in (2**22, 7):  # one block; blocks of one row (7 // 5)
        _kmeans.ONE_HOT_VALUES = block_values
        try:
            got = _kmeans.one_hot_sums_(torch.zeros(5, 3), index, values)
            counts = _kmeans.one_hot_sums_(torch.zeros(7), index, weights)
        finally:
            _kmeans.ONE_HOT_VALUES = 2**22
        torch.testing.assert_close(got, expected.float())
        torch.testing.assert_close(counts, torch.bincount(index, weights=weights,
                                                          minlength=7).float())
    table = torch.randn(5, 3, requires_grad=True)
    rows_of(table, index).sum().backward()
    torch.testing.assert_close(table.grad, torch.bincount(index, minlength=5).float()
                               .unsqueeze(1).expand(5, 3))


@pytest.mark.parametrize("sizes", [(128, 128), (5, 4), (1, 1), (7, 2, 3)])
def test_scale_free_term_on_shares_gives_the_whole_batch_gradient(sizes):
    # Ranks holding shares of one batch, each dividing its mean term by the global
    # variance: the row-weighted average of their gradients (backward_step's) is the
    # gradient of the whole batch's term / variance, and the row-weighted average of their
    # values is its value.
    from skdeepcluster._losses import _scale_free_from_stats, scale_free_term

    g = torch.Generator().manual_seed(0)
    n = sum(sizes)
    Z0 = torch.randn(n, 3, generator=g, dtype=torch.float64)
    C0 = torch.randn(2, 3, generator=g, dtype=torch.float64)

    def term_of(Z, C):  # a per-row k-means-type term, averaged over the rows
        return torch.cdist(Z, C).pow(2).min(dim=1).values.mean()

    Z, C = Z0.clone().requires_grad_(), C0.clone().requires_grad_()
    whole = scale_free_term(term_of(Z, C), Z, 1.0)
    whole.backward()
    parts = torch.split(Z0, list(sizes))
    with torch.no_grad():
        stats = sum(torch.cat([(term_of(P, C0) * len(P)).reshape(1),
                               P.new_tensor([float(len(P))]), P.sum(0), (P * P).sum().reshape(1)])
                    for P in parts)
    grads_Z, grad_C, value = [], torch.zeros_like(C0), 0.0
    for P in parts:
        Zp, Cp = P.clone().requires_grad_(), C0.clone().requires_grad_()
        local = _scale_free_from_stats(term_of(Zp, Cp), Zp, stats)
        local.backward()
        w = len(P) / n
        grads_Z.append(w * Zp.grad)
        grad_C += w * Cp.grad
        value += w * float(local)
    torch.testing.assert_close(torch.cat(grads_Z), Z.grad)
    torch.testing.assert_close(grad_C, C.grad)
    assert value == pytest.approx(float(whole), rel=1e-12)


def test_scale_free_term_on_shares_of_a_collapsed_batch():
    # Codes all but equal (total variance below float32's eps): the variance is floored
    # at eps, a constant as in one process, so the shares' gradients w.r.t. the codes are
    # those of the floored term (no closed-form variance gradient, which would be huge).
    from skdeepcluster._losses import _scale_free_from_stats, scale_free_term

    C0 = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    Z0 = 1.0 + 1e-5 * torch.randn(6, 2, generator=torch.Generator().manual_seed(0))

    def term_of(Z, C):
        return torch.cdist(Z, C).pow(2).min(dim=1).values.mean()

    Z = Z0.clone().requires_grad_()
    scale_free_term(term_of(Z, C0), Z, 1.0).backward()
    parts = torch.split(Z0, [4, 2])
    stats = sum(torch.cat([(term_of(P, C0) * len(P)).reshape(1).double(),
                           torch.tensor([float(len(P))], dtype=torch.float64),
                           P.sum(0).double(), (P * P).sum().reshape(1).double()])
                for P in parts)
    grads = []
    for P in parts:
        Zp = P.clone().requires_grad_()
        _scale_free_from_stats(term_of(Zp, C0), Zp, stats).backward()
        grads.append(len(P) / 6 * Zp.grad)
    assert torch.isfinite(torch.cat(grads)).all()
    torch.testing.assert_close(torch.cat(grads), Z.grad)


def test_sq_norms_are_those_of_the_rows_handed_out_computed_once():
    X = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    data = HostData(X, torch.device("cpu"), torch.float32)
    assert data.sq_norms(compute=False) is None  # not computed yet
    t = torch.from_numpy(X)
    expected = (t * t).sum(dim=1)
    assert torch.equal(data.sq_norms(), expected)
    assert data.sq_norms() is data.sq_norms()  # computed once
    assert data.sq_norms(compute=False) is data.sq_norms()
    assert torch.equal(data.sq_norms(slice(10, 20)), expected[10:20])
    idx = torch.tensor([3, 0, 49])
    assert torch.equal(data.sq_norms(idx), expected[idx])
    # sparse rows and rows shifted by an offset: the norms of what chunks() hands out
    offset = np.linspace(-1.0, 1.0, 7)
    for other in (HostData(sp.csr_matrix(X), torch.device("cpu"), torch.float32),
                  HostData(X, torch.device("cpu"), torch.float32, offset=offset)):
        rows = torch.cat([xb for _, _, xb in other.chunks(chunk_rows=16)])
        assert torch.equal(other.sq_norms(), (rows * rows).sum(dim=1))
    shifted = t - torch.as_tensor(offset, dtype=torch.float32)
    assert not torch.equal(HostData(X, torch.device("cpu"), torch.float32,
                                    offset=offset).sq_norms(), expected)
    assert torch.allclose(HostData(X, torch.device("cpu"), torch.float32, offset=offset)
                          .sq_norms(), (shifted * shifted).sum(dim=1))


def test_unshuffled_minibatches_come_in_order_and_draw_nothing():
    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    data = HostData(X, torch.device("cpu"), torch.float32)
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    batches = list(data.minibatches(4, g, shuffle=False))
    assert torch.equal(g.get_state(), state)
    assert [b[0] for b in batches] == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert torch.equal(torch.cat([b[1] for b in batches]), torch.from_numpy(X))
    shuffled = list(data.minibatches(4, g))
    assert not torch.equal(g.get_state(), state)
    assert sorted(torch.cat([b[0] for b in shuffled]).tolist()) == list(range(10))


@pytest.mark.parametrize("block_values", [5, 37, 2**22])
def test_feature_moments_in_blocks_equal_numpy(block_values, monkeypatch):
    # The float64 moments are summed over blocks of a chunk (memory stays at one block);
    # any block size gives numpy's float64 mean and mean square.
    from skdeepcluster import _kmeans

    monkeypatch.setattr(_kmeans, "MOMENT_BLOCK_VALUES", block_values)
    X = np.random.default_rng(0).normal(1e3, 1.0, size=(101, 7)).astype(np.float32)
    data = HostData(X, torch.device("cpu"), torch.float32)
    mean, mean_sq = _kmeans.feature_moments(data)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(mean.numpy(), X64.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(mean_sq.numpy(), (X64 ** 2).mean(axis=0), rtol=1e-13)


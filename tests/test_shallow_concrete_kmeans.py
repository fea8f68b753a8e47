"""ShallowConcreteKMeans: exact cases, KMeans parity, sklearn plumbing and bad input."""

import pickle
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score, euclidean_distances
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skdeepcluster import ShallowConcreteKMeans
from skdeepcluster._losses import anneal_rate, temperature
from skdeepcluster._shallow import AUTO_ANNEAL_EPOCHS, concrete_phase_length
from skdeepcluster.metrics import accuracy_scorer, cluster_accuracy

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"

SIX_POINTS = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]], dtype=float)


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=600, n_features=5, centers=4, cluster_std=1.0, random_state=1)
    return X, y


# --------------------------------------------------------------------------- exact cases
def test_six_points_exact():
    km = ShallowConcreteKMeans(n_clusters=2, random_state=0).fit(SIX_POINTS)
    centers = km.cluster_centers_[np.argsort(km.cluster_centers_[:, 0])]
    np.testing.assert_allclose(centers, [[1.0, 2.0], [10.0, 2.0]], atol=1e-12)
    assert km.inertia_ == pytest.approx(16.0)
    assert km.labels_[0] == km.labels_[1] == km.labels_[2] != km.labels_[3]
    assert km.labels_[3] == km.labels_[4] == km.labels_[5]
    assert km.score(SIX_POINTS) == pytest.approx(-16.0)
    # transform: Euclidean (not squared) distances to the centres.
    expected = euclidean_distances(SIX_POINTS, km.cluster_centers_)
    np.testing.assert_allclose(km.transform(SIX_POINTS), expected)


def test_sample_weight_gives_weighted_means():
    X = np.array([[0.0], [2.0], [10.0], [12.0]])
    init = np.array([[1.0], [11.0]])
    km = ShallowConcreteKMeans(n_clusters=2, init=init, random_state=0)
    km.fit(X, sample_weight=[3.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(np.sort(km.cluster_centers_.ravel()), [0.5, 11.0], atol=1e-12)
    # 3 * 0.5² + 1.5² + 1 + 1
    assert km.inertia_ == pytest.approx(5.0)
    assert km.score(X, sample_weight=[3.0, 1.0, 1.0, 1.0]) == pytest.approx(-5.0)


def test_uniform_weights_scale_the_inertia(blobs):
    X, _ = blobs
    plain = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(X)
    doubled = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(
        X, sample_weight=np.full(X.shape[0], 2.0)
    )
    assert doubled.inertia_ == pytest.approx(2.0 * plain.inertia_, rel=1e-9)


@pytest.mark.parametrize(
    "weights, match",
    [([1.0, -1.0, 1.0, 1.0], "Negative values"), ([0.0] * 4, "non-zero"),
     ([1.0, 1.0], "shape")],
)
def test_bad_sample_weight(weights, match):
    X = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match=match):
        ShallowConcreteKMeans(n_clusters=2).fit(X, sample_weight=weights)


def test_zero_weight_outlier_is_ignored():
    X = np.array([[0.0], [1.0], [10.0], [11.0], [1000.0]])
    w = [1.0, 1.0, 1.0, 1.0, 0.0]
    km = ShallowConcreteKMeans(n_clusters=2, n_init=3, random_state=0).fit(X, sample_weight=w)
    np.testing.assert_allclose(np.sort(km.cluster_centers_.ravel()), [0.5, 10.5], atol=1e-9)


def test_integer_weights_match_repeated_samples(blobs):
    X, _ = blobs
    w = np.random.RandomState(0).randint(1, 4, size=X.shape[0])
    weighted = ShallowConcreteKMeans(n_clusters=4, n_init=3, random_state=0).fit(X, sample_weight=w)
    repeated = ShallowConcreteKMeans(n_clusters=4, n_init=3, random_state=0).fit(np.repeat(X, w, 0))
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-6)


# --------------------------------------------------------------------------- KMeans parity
def _kmeans_script(Estimator, X):
    """A script written for sklearn.cluster.KMeans: the calls and attributes it uses."""
    est = Estimator(n_clusters=4, init="k-means++", n_init=5, max_iter=300, tol=1e-4,
                    random_state=0)
    labels = est.fit_predict(X)
    dist = est.fit(X).transform(X)
    return {
        "labels": labels,
        "labels_": est.labels_,
        "centers": est.cluster_centers_,
        "inertia": est.inertia_,
        "n_iter": est.n_iter_,
        "predict": est.predict(X[:50]),
        "transform": dist,
        "fit_transform": est.fit_transform(X),
        "score": est.score(X),
        "names": est.get_feature_names_out(),
        "n_features_in": est.n_features_in_,
    }


def test_swapping_kmeans_for_shallow_concrete_kmeans(blobs):
    X, y = blobs
    ref = _kmeans_script(KMeans, X)
    ours = _kmeans_script(ShallowConcreteKMeans, X)
    assert adjusted_rand_score(ref["labels"], ours["labels"]) == 1.0
    np.testing.assert_array_equal(ours["labels"], ours["labels_"])
    assert ours["inertia"] == pytest.approx(ref["inertia"], rel=1e-6)
    assert ours["score"] == pytest.approx(ref["score"], rel=1e-6)
    assert ours["centers"].shape == ref["centers"].shape
    # Same centres up to the order of the clusters.
    order = [np.argmin(((ref["centers"] - c) ** 2).sum(1)) for c in ours["centers"]]
    np.testing.assert_allclose(ours["centers"], ref["centers"][order], atol=1e-6)
    np.testing.assert_allclose(ours["transform"], ref["transform"][:, order], atol=1e-5)
    np.testing.assert_allclose(ours["fit_transform"], ours["transform"], atol=1e-6)
    assert adjusted_rand_score(ref["predict"], ours["predict"]) == 1.0
    assert isinstance(ours["n_iter"], int) and 1 <= ours["n_iter"] <= 300
    assert ours["n_features_in"] == ref["n_features_in"] == X.shape[1]
    assert list(ours["names"]) == [f"shallowconcretekmeans{i}" for i in range(4)]
    assert ours["labels"].dtype == ref["labels"].dtype
    assert cluster_accuracy(y, ours["labels"]) == 1.0


def test_same_constructor_defaults_as_kmeans():
    ours = ShallowConcreteKMeans().get_params()
    for name, value in KMeans().get_params().items():
        assert ours[name] == value, name


def test_algorithm_is_accepted_and_runs_the_same_method(blobs):
    lloyd = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(blobs[0])
    elkan = ShallowConcreteKMeans(n_clusters=4, algorithm="elkan", random_state=0).fit(blobs[0])
    np.testing.assert_array_equal(lloyd.cluster_centers_, elkan.cluster_centers_)
    with pytest.raises(ValueError, match="algorithm"):
        ShallowConcreteKMeans(algorithm="full").fit(blobs[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(blobs, dtype):
    X = blobs[0].astype(dtype)
    km = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == dtype
    assert km.transform(X).dtype == dtype
    assert isinstance(km.inertia_, float)


def test_sparse_csr_matches_dense(blobs):
    X = np.abs(blobs[0])
    X[X < 2] = 0.0
    dense = ShallowConcreteKMeans(n_clusters=4, n_init=2, random_state=0).fit(X)
    sparse = ShallowConcreteKMeans(n_clusters=4, n_init=2, random_state=0).fit(sp.csr_matrix(X))
    assert adjusted_rand_score(dense.labels_, sparse.labels_) == 1.0
    assert sparse.inertia_ == pytest.approx(dense.inertia_, rel=1e-6)
    order = [np.argmin(((dense.cluster_centers_ - c) ** 2).sum(1)) for c in sparse.cluster_centers_]
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_[order], atol=1e-6)
    np.testing.assert_allclose(
        sparse.transform(sp.csr_matrix(X)), dense.transform(X)[:, order], atol=1e-6
    )


def test_feature_names_in_from_dataframe(blobs):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(blobs[0], columns=[f"f{i}" for i in range(blobs[0].shape[1])])
    km = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(df)
    assert list(km.feature_names_in_) == list(df.columns)


def test_init_options(blobs):
    X, _ = blobs
    for init in ["k-means++", "random", X[:4].copy(),
                 lambda X, k, random_state: X[random_state.choice(len(X), k, replace=False)]]:
        km = ShallowConcreteKMeans(n_clusters=4, init=init, n_init=2 if callable(init) else 1,
                                   random_state=0).fit(X)
        assert np.isfinite(km.cluster_centers_).all()
        assert len(np.unique(km.labels_)) == 4


def test_explicit_init_with_n_init_warns(blobs):
    X, _ = blobs
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        ShallowConcreteKMeans(n_clusters=4, init=X[:4], n_init=3).fit(X)


def test_n_init_auto_matches_kmeans_rule(blobs):
    X, _ = blobs
    assert ShallowConcreteKMeans(n_clusters=2, random_state=0).fit(X)._n_init == 1
    assert ShallowConcreteKMeans(n_clusters=2, init="random", max_iter=3,
                                 random_state=0).fit(X)._n_init == 10


def test_float32_far_from_origin_is_precise(blobs):
    """Distances are computed on centred data: a large offset costs no float32 precision."""
    X = blobs[0].astype(np.float32)
    near = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(X)
    far = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(X + np.float32(1e4))
    assert adjusted_rand_score(near.labels_, far.labels_) == 1.0
    assert far.inertia_ == pytest.approx(near.inertia_, rel=1e-3)
    np.testing.assert_array_equal(far.predict(X + np.float32(1e4)), far.labels_)


def test_scale_equivariance(blobs):
    """σ and tol are relative to the data's spread: scaling X scales the centres."""
    X, _ = blobs
    a = ShallowConcreteKMeans(n_clusters=4, random_state=3).fit(X)
    b = ShallowConcreteKMeans(n_clusters=4, random_state=3).fit(1000.0 * X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(1000.0 * a.cluster_centers_, b.cluster_centers_, rtol=1e-6)


# --------------------------------------------------------------------------- training details
def test_temperature_schedule_shared_by_both_concrete_models():
    rate = anneal_rate(1.0, 0.1, "auto", AUTO_ANNEAL_EPOCHS)
    taus = [temperature(1.0, 0.1, rate, t) for t in range(AUTO_ANNEAL_EPOCHS)]
    # "auto" reaches tau_min exactly at the last epoch of the annealing
    assert taus[0] == 1.0 and taus[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(taus, taus[1:]))
    assert concrete_phase_length(1.0, 0.1, rate, 300) == AUTO_ANNEAL_EPOCHS
    # a constant temperature: the default length, capped at max_iter // 2
    assert anneal_rate(0.5, 0.1, 0.0, 10) == 0.0
    assert concrete_phase_length(0.5, 0.1, 0.0, 300) == AUTO_ANNEAL_EPOCHS
    assert concrete_phase_length(1.0, 0.1, rate, 6) == 3
    # a given rate: until tau_min is reached (t = ceil(ln 10 / 1) = 3), then one more epoch
    assert concrete_phase_length(1.0, 0.1, 1.0, 300) == 4
    assert temperature(1.0, 0.1, 1.0, 3) == 0.1 and temperature(1.0, 0.1, 1.0, 2) > 0.1


def test_history_and_phases(blobs):
    X, _ = blobs
    km = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(X)
    assert len(km.history_) == km.n_iter_
    phases = [h["phase"] for h in km.history_]
    assert phases[0] == "concrete" and phases[-1] == "refine"
    assert phases == sorted(phases)  # all concrete epochs come before the refinement
    last = km.history_[-1]
    assert last["center_shift"] <= 1e-4 * np.var(X, axis=0).mean()
    assert set(last) >= {"epoch", "loss", "center_shift", "n_relocated", "seconds"}
    assert "tau" in km.history_[0]
    assert [h["epoch"] for h in km.history_] == list(range(1, km.n_iter_ + 1))


def test_refinement_reaches_a_lloyd_fixed_point(blobs):
    X, _ = blobs
    km = ShallowConcreteKMeans(n_clusters=4, n_init=1, tol=0, max_iter=100, random_state=0).fit(X)
    means = np.array([X[km.labels_ == k].mean(axis=0) for k in range(4)])
    np.testing.assert_allclose(km.cluster_centers_, means, atol=1e-10)


def test_verbose(blobs, capsys):
    X, _ = blobs
    ShallowConcreteKMeans(n_clusters=4, random_state=0, verbose=0).fit(X)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    ShallowConcreteKMeans(n_clusters=4, random_state=0, verbose=1).fit(X)
    # progress goes to stderr, as the deep estimators' (the engine's progress output)
    captured = capsys.readouterr()
    assert captured.out == ""
    out = captured.err
    # one progress bar (or line per epoch without tqdm) for each phase
    assert "concrete" in out and "refine" in out


def test_empty_cluster_is_relocated_without_warning():
    X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
    init = np.vstack([X[:2], [[1e6, 1e6]]])  # the third centre is never chosen at first
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        km = ShallowConcreteKMeans(n_clusters=3, init=init, random_state=0).fit(X)
    assert np.isfinite(km.cluster_centers_).all()
    assert len(np.unique(km.labels_)) == 3
    assert any(h["n_relocated"] > 0 for h in km.history_)


def test_duplicate_points_warn_and_never_nan():
    X = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(2\)"):
        km = ShallowConcreteKMeans(n_clusters=3, random_state=0).fit(X)
    assert np.isfinite(km.cluster_centers_).all()
    assert np.isfinite(km.inertia_) and km.inertia_ == pytest.approx(0.0)


# --------------------------------------------------------------------------- reproducibility
def test_same_random_state_same_result(blobs):
    X, _ = blobs
    a = ShallowConcreteKMeans(n_clusters=4, n_init=2, random_state=7).fit(X)
    b = ShallowConcreteKMeans(n_clusters=4, n_init=2, random_state=7).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    c = ShallowConcreteKMeans(n_clusters=4, init="random", random_state=np.random.RandomState(7))
    d = ShallowConcreteKMeans(n_clusters=4, init="random", random_state=np.random.RandomState(8))
    assert c.fit(X).history_[0]["loss"] != d.fit(X).history_[0]["loss"]


def test_global_rng_untouched(blobs):
    X, _ = blobs
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    ShallowConcreteKMeans(n_clusters=4, n_init=2, random_state=0).fit(X)
    ShallowConcreteKMeans(n_clusters=4, n_init=2, random_state=None).fit(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    assert random.getstate() == py_state


def test_pickle_round_trip(blobs):
    X, _ = blobs
    km = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(X)
    loaded = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(loaded.predict(X), km.predict(X))


# --------------------------------------------------------------------------- sklearn tools
def test_pipeline_and_grid_search_over_tau(blobs):
    X, y = blobs
    pipe = Pipeline([("scale", StandardScaler()),
                     ("km", ShallowConcreteKMeans(n_clusters=4, random_state=0))])
    assert cluster_accuracy(y, pipe.fit_predict(X)) == 1.0
    search = GridSearchCV(pipe, {"km__tau": [0.5, 2.0], "km__sigma": [0.1, 0.5]},
                          scoring=accuracy_scorer, cv=3)
    search.fit(X, y)
    assert search.best_score_ == 1.0
    assert set(search.cv_results_["param_km__tau"]) == {0.5, 2.0}
    assert cluster_accuracy(y, search.predict(X)) == 1.0


def test_device_cuda_falls_back_to_cpu(blobs):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    X, _ = blobs
    with pytest.warns(UserWarning, match="falling back to the CPU"):
        km = ShallowConcreteKMeans(n_clusters=4, device="cuda", random_state=0).fit(X)
    ref = ShallowConcreteKMeans(n_clusters=4, device="cpu", random_state=0).fit(X)
    np.testing.assert_array_equal(km.labels_, ref.labels_)


# --------------------------------------------------------------------------- bad input
@pytest.fixture
def no_training(monkeypatch):
    """Fail loudly if training starts: errors must come before it."""

    def _run(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(ShallowConcreteKMeans, "_run_group", _run)


@pytest.mark.parametrize(
    "X, params, match",
    [
        (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), {}, "NaN"),
        (np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]]), {}, "infinity"),
        (np.array([[1.0, 2.0]]), {}, r"n_samples=1 should be >= n_clusters=2"),
        (np.ones((3, 2)), {"n_clusters": 5}, r"n_samples=3 should be >= n_clusters=5"),
        (np.arange(6.0), {}, "Expected 2D array"),
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), {}, "could not convert|numeric"),
        (np.ones((4, 2)), {"init": np.ones((3, 2))}, "does not match the number of clusters 2"),
        (np.ones((4, 2)), {"init": np.ones((2, 3))}, "does not match the number of features"),
        (np.ones((4, 2)), {"init": np.array([[0.0, np.nan], [1.0, 1.0]])}, "NaN"),
        (np.ones((4, 2)), {"tau": 0.0}, "'tau' parameter"),
        (np.ones((4, 2)), {"tau": -1.0}, "'tau' parameter"),
        (np.ones((4, 2)), {"tau": 0.05}, "tau_min=0.1 should be <= tau=0.05"),
        (np.ones((4, 2)), {"n_clusters": 0}, "'n_clusters' parameter"),
        (np.ones((4, 2)), {"sigma": 0.0}, "'sigma' parameter"),
        (np.ones((4, 2)), {"batch_size": 0}, "'batch_size' parameter"),
        (np.ones((4, 2)), {"device": "tpu"}, "device='tpu'"),
    ],
)
def test_bad_input_raises_before_training(no_training, X, params, match):
    params = {"n_clusters": 2, **params}
    with pytest.raises(ValueError, match=match):
        ShallowConcreteKMeans(**params).fit(X)


def test_readonly_memmap_input_is_accepted_without_warning(tmp_path, blobs):
    np.save(tmp_path / "X.npy", blobs[0])
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        km = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(X)
    ref = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(blobs[0])
    np.testing.assert_array_equal(km.labels_, ref.labels_)


def test_one_feature_is_fine():
    X = np.array([[0.0], [0.1], [5.0], [5.1]])
    km = ShallowConcreteKMeans(n_clusters=2, random_state=0).fit(X)
    np.testing.assert_allclose(np.sort(km.cluster_centers_.ravel()), [0.05, 5.05])


def test_predict_checks_number_of_features(blobs):
    X, _ = blobs
    km = ShallowConcreteKMeans(n_clusters=4, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        km.predict(X[:, :3])


# --------------------------------------------------------------------------- real data
@pytest.mark.skipif(not (DATA_DIR / "pendigits.npz").exists(), reason="shared data not available")
def test_pendigits_inertia_and_acc_match_kmeans():
    d = np.load(DATA_DIR / "pendigits.npz")
    X, y = StandardScaler().fit_transform(d["X"].astype(np.float64)), d["y"]
    ref = KMeans(n_clusters=10, n_init=3, random_state=0).fit(X)
    ours = ShallowConcreteKMeans(n_clusters=10, n_init=3, random_state=0).fit(X)
    assert ours.inertia_ <= 1.005 * ref.inertia_
    assert cluster_accuracy(y, ours.labels_) >= 0.62  # sklearn: 0.68 (MANIFEST.md, raw X)


# --------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(
    st.integers(8, 60),
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 2**31 - 1),
)
def test_fitted_model_is_self_consistent(n, d, k, dtype, seed):
    """labels_, predict, transform, inertia_ and score agree on any data."""
    X = np.random.RandomState(seed % 1000).randn(n, d).astype(dtype) * 3
    km = ShallowConcreteKMeans(n_clusters=k, max_iter=30, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = km.fit_predict(X)
    assert np.isfinite(km.cluster_centers_).all()
    np.testing.assert_array_equal(labels, km.labels_)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    dist = km.transform(X).astype(np.float64)
    np.testing.assert_array_equal(np.argmin(dist, axis=1), km.labels_)
    inertia = float((dist.min(axis=1) ** 2).sum())
    rtol = 1e-3 if dtype == np.float32 else 1e-8
    assert km.inertia_ == pytest.approx(inertia, rel=rtol, abs=1e-6)
    assert km.score(X) == pytest.approx(-km.inertia_, rel=rtol, abs=1e-6)
    assert 1 <= km.n_iter_ <= 30


# --------------------------------------------------------------- runs computed together
def test_history_of_the_kept_run_is_consecutive(blobs):
    km = ShallowConcreteKMeans(n_clusters=4, n_init=6, random_state=0).fit(blobs[0])
    assert [h["epoch"] for h in km.history_] == list(range(1, km.n_iter_ + 1))
    phases = [h["phase"] for h in km.history_]
    assert phases == sorted(phases)  # "concrete" epochs, then "refine"
    assert km.inertia_ == pytest.approx(km.score(blobs[0]) * -1, rel=1e-9)


def test_run_groups_do_not_change_the_contract(blobs, monkeypatch):
    import skdeepcluster._shallow as shallow

    together = ShallowConcreteKMeans(n_clusters=4, n_init=5, random_state=0).fit(blobs[0])
    monkeypatch.setattr(shallow, "RUN_GROUP_VALUES", 1)  # one run per group
    apart = ShallowConcreteKMeans(n_clusters=4, n_init=5, random_state=0).fit(blobs[0])
    again = ShallowConcreteKMeans(n_clusters=4, n_init=5, random_state=0).fit(blobs[0])
    np.testing.assert_array_equal(apart.labels_, again.labels_)  # deterministic
    # both find the four blobs
    assert adjusted_rand_score(together.labels_, blobs[1]) == 1.0
    assert adjusted_rand_score(apart.labels_, blobs[1]) == 1.0


def test_small_fit_runs_on_one_thread_and_restores_the_setting(blobs):
    seen = []

    def init(X, n_clusters, random_state):
        seen.append(torch.get_num_threads())
        return X[:n_clusters]

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ShallowConcreteKMeans(n_clusters=4, init=init, n_init=1, random_state=0).fit(blobs[0])
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_torch_threads_restores_after_an_error():
    from skdeepcluster._threads import torch_threads

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError), torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError
        assert torch.get_num_threads() == 2
        with torch_threads(None):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_only_steps_with_large_arrays_use_several_threads():
    from skdeepcluster._shallow import SINGLE_THREAD_STEP_VALUES, _single_threaded

    assert SINGLE_THREAD_STEP_VALUES == 2**22
    # runs x clusters x min(n_samples, batch_size)
    assert _single_threaded(100_000, 10, 6, 65536)  # 3.9e6 values
    assert not _single_threaded(100_000, 10, 7, 65536)  # 4.6e6
    assert not _single_threaded(100_000, 100, 1, 65536)
    assert _single_threaded(100_000, 100, 1, 4096)
    assert _single_threaded(2_000, 100, 10, 65536)  # 2e6


@pytest.mark.parametrize("n_samples, n_clusters, threads", [(600, 3, 1), (50_000, 100, 2)])
def test_the_whole_fit_follows_the_thread_rule(monkeypatch, n_samples, n_clusters, threads):
    # The set-up (centring the data: full passes over X) runs under the same thread rule as
    # the steps: a small fit never wakes a second thread, a large one keeps torch's threads;
    # the caller's thread count is restored afterwards.
    import skdeepcluster._shallow as shallow

    seen = []
    centre = shallow._centre

    def spy(X, dtype):
        seen.append(torch.get_num_threads())
        return centre(X, dtype)

    monkeypatch.setattr(shallow, "_centre", spy)
    X = np.random.default_rng(0).random((n_samples, 2)).astype(np.float32)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ShallowConcreteKMeans(n_clusters, n_init=1, max_iter=2, random_state=0).fit(X)
        assert seen == [threads]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_memory_mapped_input_is_read_in_place(tmp_path, blobs):
    from skdeepcluster._shallow import _centre, _memory_mapped

    np.save(tmp_path / "X.npy", blobs[0])
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert _memory_mapped(X) and _memory_mapped(X[10:]) and not _memory_mapped(blobs[0])
    centred, mean, variance = _centre(X, torch.float64)
    assert centred is X  # no copy
    np.testing.assert_allclose(mean.numpy(), blobs[0].mean(axis=0))
    assert variance == pytest.approx(blobs[0].var(axis=0).mean())
    in_memory, _, variance_mem = _centre(blobs[0], torch.float64)
    assert variance_mem == pytest.approx(variance)
    np.testing.assert_allclose(in_memory.numpy(), blobs[0] - blobs[0].mean(axis=0))


def test_concrete_phase_trains_on_a_subset_of_a_large_set(tmp_path, blobs, monkeypatch):
    # Above CONCRETE_MAX_ROWS rows the concrete phase sees a random subset of that many
    # rows (the same rows whether X is dense, CSR or a memory map, weighted by their own
    # sample weights); the refinement then runs on every row.
    import skdeepcluster._losses as losses
    import skdeepcluster._shallow as shallow

    X = np.abs(blobs[0])
    X[X < 2] = 0.0
    weights = np.random.default_rng(0).integers(1, 4, X.shape[0]).astype(float)
    seen = []
    grad = losses.concrete_kmeans_center_grad

    def spy(Z, centers, tau, sigma, noise_t, sample_weight=None, Z_sq=None):
        seen.append((sigma > 0, Z.shape[0], None if sample_weight is None
                     else float(sample_weight.sum())))
        return grad(Z, centers, tau, sigma, noise_t, sample_weight, Z_sq)

    monkeypatch.setattr(shallow, "concrete_kmeans_center_grad", spy)
    monkeypatch.setattr(shallow, "CONCRETE_MAX_ROWS", 200)
    params = {"n_clusters": 4, "n_init": 2, "batch_size": 64, "random_state": 0}
    dense = ShallowConcreteKMeans(**params).fit(X, sample_weight=weights)
    concrete = [(n, w) for is_concrete, n, w in seen if is_concrete]
    assert concrete and all(n <= 64 for n, _ in concrete)
    # each epoch: batches of 64, 64, 64, 8 rows (the subset), never all 600 rows
    first_epoch = [n for n, _ in concrete[:4]]
    assert first_epoch == [64, 64, 64, 8]
    assert sum(w for _, w in concrete[:4]) < weights.sum()
    np.save(tmp_path / "X.npy", X)
    mapped = ShallowConcreteKMeans(**params).fit(np.load(tmp_path / "X.npy", mmap_mode="r"),
                                                 sample_weight=weights)
    seen.clear()
    sparse = ShallowConcreteKMeans(**params).fit(sp.csr_matrix(X), sample_weight=weights)
    assert [n for is_concrete, n, _ in seen if is_concrete][:4] == [64, 64, 64, 8]
    # The two runs of the group end at the same partition (inertias equal to 1e-15), so
    # which of them is kept, and the order of the centres, is rounding: compare up to order.
    order = np.lexsort(dense.cluster_centers_.T)
    for other in (mapped, sparse):
        assert other.inertia_ == pytest.approx(dense.inertia_, rel=1e-12)
        other_order = np.lexsort(other.cluster_centers_.T)
        np.testing.assert_allclose(other.cluster_centers_[other_order],
                                   dense.cluster_centers_[order], atol=1e-6)
        relabel = np.empty(4, dtype=int)
        relabel[other_order] = order
        np.testing.assert_array_equal(relabel[other.labels_], dense.labels_)
    # the refinement on every row ends at the fit on all rows' Lloyd fixed point
    assert adjusted_rand_score(dense.labels_, blobs[1]) > 0.9
    refit = KMeans(n_clusters=4, init=dense.cluster_centers_, n_init=1).fit(
        X, sample_weight=weights)
    assert refit.inertia_ == pytest.approx(dense.inertia_, rel=1e-6)


# ------------------------------------------------------------ callbacks, progress, failures
def test_callbacks_see_every_epoch_of_both_phases_and_can_stop_one(blobs):
    X = blobs[0]
    seen = []

    def record(estimator, rec):
        seen.append((rec["phase"], rec["epoch"], rec.get("loss")))
        return False

    km = ShallowConcreteKMeans(4, n_init=1, random_state=0, callbacks=[record]).fit(X)
    phases = [p for p, _, _ in seen]
    assert phases == [r["phase"] for r in km.history_]  # one call per recorded epoch
    assert set(phases) == {"concrete", "refine"} and phases.index("refine") > 0
    assert [e for _, e, _ in seen] == list(range(1, len(seen) + 1))
    assert all(loss is not None for _, _, loss in seen)
    # True ends the phase it is called in: one concrete epoch, then the refinement
    stop_concrete = ShallowConcreteKMeans(4, n_init=1, random_state=0, callbacks=[
        lambda est, rec: rec["phase"] == "concrete"]).fit(X)
    assert [r["phase"] for r in stop_concrete.history_].count("concrete") == 1
    assert stop_concrete.history_[1]["phase"] == "refine"


def test_callbacks_with_several_runs_get_the_best_loss(blobs):
    X = blobs[0]
    seen = []
    ShallowConcreteKMeans(4, n_init=3, random_state=0,
                          callbacks=[lambda est, rec: seen.append(rec) and False]).fit(X)
    assert seen[0]["n_active"] == 3.0 and "loss" in seen[0]
    assert all(rec["n_active"] <= 3 for rec in seen)


def test_bad_callbacks_are_a_type_error(blobs):
    with pytest.raises(TypeError, match="callbacks must be callables"):
        ShallowConcreteKMeans(2, callbacks=[3]).fit(blobs[0])


def test_verbose_shows_the_engines_progress_not_stdout(blobs, capsys):
    ShallowConcreteKMeans(4, n_init=1, random_state=0, verbose=1).fit(blobs[0])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "concrete" in captured.err and "refine" in captured.err


@pytest.mark.parametrize("cause", ["callback", "bad input"])
def test_a_failed_refit_leaves_the_estimator_unfitted(blobs, cause):
    from sklearn.exceptions import NotFittedError

    X = blobs[0]
    km = ShallowConcreteKMeans(4, n_init=1, random_state=0).fit(X)
    if cause == "callback":
        def boom(estimator, record):
            raise KeyboardInterrupt  # an interrupted fit, as with Ctrl-C

        km.set_params(callbacks=[boom])
        with pytest.raises(KeyboardInterrupt):
            km.fit(X)
    else:
        with pytest.raises(ValueError, match="NaN"):
            km.fit(np.full_like(X, np.nan))
    assert not hasattr(km, "cluster_centers_") and not hasattr(km, "n_features_in_")
    with pytest.raises(NotFittedError):
        km.predict(X)


@pytest.mark.parametrize("batch_size, shuffled", [(10_000, False), (100, True)])
def test_concrete_phase_shuffles_only_when_batches_are_smaller_than_the_data(
        blobs, monkeypatch, batch_size, shuffled):
    # One batch of every row has the same gradient in any order: no permutation is drawn.
    from skdeepcluster._engine import HostData

    calls = []
    minibatches = HostData.minibatches

    def spy(self, size, generator, shuffle=True):
        calls.append(shuffle)
        return minibatches(self, size, generator, shuffle)

    monkeypatch.setattr(HostData, "minibatches", spy)
    X = blobs[0]
    assert X.shape[0] > 100
    ShallowConcreteKMeans(n_clusters=3, n_init=1, batch_size=batch_size,
                          random_state=0).fit(X)
    assert calls and set(calls) == {shuffled}

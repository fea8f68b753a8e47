"""DEC, IDEC, DCEC, their shared losses and the convolutional autoencoder."""

import copy
import functools
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from skdeepcluster import DCEC, DEC, IDEC, AEKMeans, ConcreteKMeans
from skdeepcluster._losses import (
    kl_clustering_loss,
    student_t_log_assignment,
    target_distribution,
)
from skdeepcluster.metrics import accuracy_scorer, cluster_accuracy
from skdeepcluster.networks import ConvAutoencoder, MLPAutoencoder

SMALL = {"hidden_dims": (32,), "n_components": 3, "pretrain_epochs": 15, "batch_size": 64,
         "n_init": 3, "max_iter": 8, "update_interval": 4}
#: A CAE small enough for the tests (the paper's is (32, 64, 128)).
SMALL_CAE = {"filters": (4, 8, 8), "n_components": 3, "pretrain_epochs": 40,
             "batch_size": 64, "n_init": 3, "max_iter": 8, "update_interval": 4}
MLP_FAMILY = [DEC, IDEC]


def small(cls, **params):
    base = SMALL_CAE if cls is DCEC else SMALL
    if cls is AEKMeans:
        base = {k: v for k, v in base.items() if k not in ("max_iter", "update_interval")}
    return cls(**{"n_clusters": 3, "random_state": 0, **base, **params})


def to_unit(X):
    return X / 255.0


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=240, centers=3, n_features=6, cluster_std=1.0,
                      random_state=3)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def images():
    """180 noisy 16x16 images of three shapes: a horizontal bar, a vertical bar, a square."""
    rng = np.random.RandomState(0)
    protos = np.zeros((3, 16, 16), dtype=np.float32)
    protos[0, 6:10, 2:14] = 1.0
    protos[1, 2:14, 6:10] = 1.0
    protos[2, 4:12, 4:12] = 1.0
    protos[2, 6:10, 6:10] = 0.0
    y = np.repeat(np.arange(3), 60)
    X = protos[y] + 0.15 * rng.randn(180, 16, 16).astype(np.float32)
    return X.reshape(180, 256), y


# ---------------------------------------------------------------- the shared losses
def test_student_t_assignment_hand_made():
    Z = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    centers = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    q = student_t_log_assignment(Z, centers, alpha=1.0).exp()
    # alpha=1: q ∝ 1 / (1 + D). Row 0: D = (0, 1) -> (1, 1/2); row 1: D = (9, 4) -> (1/10, 1/5).
    expected = torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]])
    torch.testing.assert_close(q, expected)
    # alpha=3: q ∝ (1 + D/3)^-2. Row 0: (1, 9/16) -> normalised (16/25, 9/25).
    q3 = student_t_log_assignment(Z[:1], centers, alpha=3.0).exp()
    torch.testing.assert_close(q3, torch.tensor([[16 / 25, 9 / 25]]))


def test_student_t_assignment_is_finite_far_away():
    Z = torch.tensor([[1e18, -1e18]])
    q = student_t_log_assignment(Z, torch.tensor([[0.0, 0.0], [1.0, 1.0]]), 1.0).exp()
    assert torch.isfinite(q).all()
    torch.testing.assert_close(q.sum(), torch.tensor(1.0))


@settings(max_examples=60, deadline=None)
@given(
    Z=arrays(np.float64, (7, 3), elements=st.floats(-20, 20)),
    centers=arrays(np.float64, (4, 3), elements=st.floats(-20, 20), unique=True),
    alpha=st.floats(0.1, 10.0),
)
def test_assignment_and_target_properties(Z, centers, alpha):
    Z, C = torch.as_tensor(Z), torch.as_tensor(centers)
    q = student_t_log_assignment(Z, C, alpha).exp()
    p = target_distribution(q)
    for m in (q, p):
        assert torch.isfinite(m).all() and (m >= 0).all()
        torch.testing.assert_close(m.sum(dim=1), torch.ones(7, dtype=m.dtype))
    D = ((Z[:, None] - C[None]) ** 2).sum(-1)
    # The hard assignment is the nearest centre (ties aside).
    best = D.min(dim=1).values
    assert torch.all(D[torch.arange(7), q.argmax(dim=1)] <= best * (1 + 1e-9) + 1e-9)
    # p_ij / p_ik = (q_ij / q_ik)^2 * f_k / f_j: the target only reweights q².
    f = q.sum(dim=0)
    ratio_p = p[:, 0] / p[:, 1]
    ratio_q = (q[:, 0] / q[:, 1]) ** 2 * f[1] / f[0]
    torch.testing.assert_close(ratio_p, ratio_q, rtol=1e-6, atol=0)
    # KL(P || Q) >= 0, and 0 for Q against itself.
    assert kl_clustering_loss(p, q.log()) >= -1e-12
    torch.testing.assert_close(kl_clustering_loss(q, q.log()), torch.tensor(0.0,
                               dtype=q.dtype), atol=1e-12, rtol=0)


def test_target_distribution_hand_made_and_empty_cluster():
    q = torch.tensor([[0.5, 0.5, 0.0], [0.9, 0.1, 0.0]], dtype=torch.float64)
    p = target_distribution(q)
    # f = (1.4, 0.6, 0); row 0: (0.25/1.4, 0.25/0.6, 0) normalised.
    row0 = torch.tensor([0.25 / 1.4, 0.25 / 0.6, 0.0], dtype=torch.float64)
    torch.testing.assert_close(p[0], row0 / row0.sum())
    assert torch.isfinite(p).all() and (p[:, 2] == 0).all()
    assert not q.requires_grad or not p.requires_grad


def test_kl_loss_is_batchmean_and_its_gradient_is_the_papers():
    torch.manual_seed(0)
    Z = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    C = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    alpha = 2.0
    log_q = student_t_log_assignment(Z, C, alpha)
    q = log_q.exp().detach()
    p = target_distribution(q)
    loss = kl_clustering_loss(p, log_q)
    torch.testing.assert_close(loss, (p * (p.log() - log_q)).sum() / 5)
    loss.backward()
    # DEC eq. 4 (per sample), divided by n for the batch mean.
    diff = Z.detach()[:, None] - C.detach()[None]  # (n, k, p): z_i - μ_j
    kernel = 1.0 / (1.0 + (diff ** 2).sum(-1) / alpha)
    w = ((alpha + 1) / alpha) * kernel * (p - q)  # (n, k)
    torch.testing.assert_close(Z.grad, (w[..., None] * diff).sum(1) / 5)
    torch.testing.assert_close(C.grad, -(w[..., None] * diff).sum(0) / 5)


# ---------------------------------------------------------------- the target-update hooks
def test_dec_stops_mid_epoch_at_the_target_update_where_labels_settle(blobs):
    X, _ = blobs
    # 4 batches per epoch (64, 64, 64, 48 of 240 rows); T = 3 steps: the first check after
    # step 3 (mid-epoch 1) sees fewer than tol=1 of the labels change, so training stops.
    dec = DEC(n_clusters=3, hidden_dims=(16,), n_components=2, pretrain_epochs=5,
              batch_size=64, update_interval=3, tol=1.0, max_iter=10, random_state=0).fit(X)
    cluster = [r for r in dec.history_ if r["phase"] == "cluster"]
    assert dec.n_iter_ == 1 and len(cluster) == 1
    assert dec.n_target_updates_ == 2  # the initial target and the one at step 3
    assert cluster[0]["target_updates"] == 2 and cluster[0]["changed"] < 1.0


# ---------------------------------------------------------------- the convolutional AE
@pytest.mark.parametrize(
    ("shape", "sizes", "flat"),
    [((28, 28), [(28, 28), (14, 14), (7, 7), (3, 3)], 1152),
     ((1, 28, 28), [(28, 28), (14, 14), (7, 7), (3, 3)], 1152),
     ((16, 16), [(16, 16), (8, 8), (4, 4), (2, 2)], 512),
     ((3, 20, 12), [(20, 12), (10, 6), (5, 3), (2, 1)], 256)],
)
def test_conv_autoencoder_layout(shape, sizes, flat):
    cae = ConvAutoencoder(n_components=10, input_shape=shape)
    n = int(np.prod(shape))
    x = torch.randn(4, n)
    assert cae.feature_map_sizes == sizes
    assert cae.embed.in_features == flat
    assert tuple(cae.encode(x).shape) == (4, 10)
    assert tuple(cae.decode(cae.encode(x)).shape) == (4, n)
    convs = [m for m in cae.conv if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128]
    assert [c.kernel_size for c in convs] == [(5, 5), (5, 5), (3, 3)]
    assert all(c.stride == (2, 2) for c in convs)
    # Keras' initialisation: zero biases.
    biases = [m.bias.detach() for m in cae.modules() if getattr(m, "bias", None) is not None]
    assert len(biases) == 8 and all(float(b.abs().max()) == 0 for b in biases)


def test_conv_autoencoder_reads_rows_as_channels_first_images():
    cae = ConvAutoencoder(input_shape=(2, 9, 9), filters=(1, 1, 1), n_components=1)
    x = torch.zeros(1, 162)
    x[0, 81:] = 1.0  # second channel all ones
    with torch.no_grad():
        first = cae.conv[0].weight.zero_()
        first[0, 1] = 1.0  # the first map copies the second channel's 5x5 sums
        cae.conv[0].bias.zero_()
        out = cae.conv[1](cae.conv[0](x.reshape(1, 2, 9, 9)))
    assert float(out[0, 0, 2, 2]) == 25.0  # a 5x5 window fully inside the image


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_features": 700, "input_shape": (28, 28)}, "has 784 values per sample but X has "
                                                    "n_features=700"),
     ({"input_shape": (28, "a")}, "input_shape must be (H, W) or (C, H, W)"),
     ({"input_shape": (16, 16), "filters": (8, 8)}, "filters must be three positive"),
     ({}, "needs input_shape")],
)
def test_conv_autoencoder_bad_shapes(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        ConvAutoencoder(**kwargs)


@pytest.mark.parametrize("cls", [AEKMeans, ConcreteKMeans, IDEC])
def test_any_deep_estimator_can_use_the_conv_autoencoder(cls, images):
    X, y = images
    cae = functools.partial(ConvAutoencoder, input_shape=(16, 16), filters=(4, 8, 8))
    extra = {"AEKMeans": {}, "ConcreteKMeans": {"max_iter": 3},
             "IDEC": {"max_iter": 3, "update_interval": 3, "learning_rate": 1e-4}}[cls.__name__]
    model = cls(n_clusters=3, autoencoder=cae, n_components=3, pretrain_epochs=15,
                batch_size=64, n_init=3, random_state=0, **extra).fit(X)
    assert isinstance(model.autoencoder_, ConvAutoencoder)
    assert model.transform(X).shape == (180, 3)
    assert cluster_accuracy(y, model.labels_) > 0.9


# ---------------------------------------------------------------- the estimators
@pytest.mark.parametrize("cls", MLP_FAMILY)
def test_blobs_are_recovered(cls, blobs):
    X, y = blobs
    model = small(cls).fit(X)
    assert adjusted_rand_score(y, model.labels_) > 0.9
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert model.cluster_centers_.shape == (3, 3)
    assert model.transform(X).dtype == np.float32


def test_dcec_clusters_images(images):
    X, y = images
    model = small(DCEC).fit(X)
    assert cluster_accuracy(y, model.labels_) > 0.95
    assert isinstance(model.autoencoder_, ConvAutoencoder)
    assert model.autoencoder_.input_shape == (1, 16, 16)
    np.testing.assert_array_equal(model.predict(X), model.labels_)


def test_cpu_fit_keeps_convolution_weights_channels_last(images):
    # On the CPU the CAE trains with channels-last (NHWC) convolution weights; the network
    # computes the same function as with the usual layout.
    X, _ = images
    model = small(DCEC, pretrain_epochs=2, max_iter=1).fit(X)
    convs = [m for m in model.autoencoder_.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last)
                         for m in convs)
    # (with one input channel both layouts are the same memory)
    assert all(not m.weight.is_contiguous() for m in convs if m.in_channels > 1)
    plain = copy.deepcopy(model.autoencoder_).to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        x = torch.from_numpy(X[:50])
        torch.testing.assert_close(plain.encode(x), model.autoencoder_.encode(x),
                                   rtol=1e-4, atol=1e-5)
    mlp = small(DEC, pretrain_epochs=1, max_iter=1).fit(X)
    assert all(p.is_contiguous() for p in mlp.autoencoder_.parameters())


@pytest.mark.parametrize("cls", [DEC, IDEC, DCEC])
def test_predict_proba_is_the_student_t_assignment(cls, blobs, images):
    X = images[0] if cls is DCEC else blobs[0]
    model = small(cls, alpha=2.0).fit(X)
    proba = model.predict_proba(X)
    Z = model.transform(X).astype(np.float64)
    D = ((Z[:, None] - model.cluster_centers_.astype(np.float64)[None]) ** 2).sum(-1)
    kernel = (1 + D / 2.0) ** (-1.5)
    np.testing.assert_allclose(proba, kernel / kernel.sum(1, keepdims=True), atol=1e-5)
    np.testing.assert_array_equal(proba.argmax(1), model.labels_)


def test_dec_trains_the_encoder_and_keeps_the_decoder(blobs):
    X, _ = blobs
    ae = small(AEKMeans).fit(X)
    dec = small(DEC, autoencoder=ae.autoencoder_, pretrain_epochs=0).fit(X)
    idec = small(IDEC, autoencoder=ae.autoencoder_, pretrain_epochs=0).fit(X)
    for name, before in ae.autoencoder_.decoder.state_dict().items():
        torch.testing.assert_close(dec.autoencoder_.decoder.state_dict()[name], before)
    assert not np.allclose(dec.transform(X), ae.transform(X))
    assert any(not torch.equal(idec.autoencoder_.decoder.state_dict()[k], v)
               for k, v in ae.autoencoder_.decoder.state_dict().items())
    assert "reconstruction" not in dec.history_[-1]
    assert "reconstruction" in idec.history_[-1]


def test_idec_with_zero_lam_keeps_the_initial_centres(blobs):
    """The centres only get gradients from lam * KL."""
    X, _ = blobs
    ae = small(AEKMeans).fit(X)
    idec = small(IDEC, lam=0.0, autoencoder=ae.autoencoder_, pretrain_epochs=0).fit(X)
    np.testing.assert_array_equal(idec.cluster_centers_, ae.cluster_centers_)
    assert not np.allclose(idec.transform(X), ae.transform(X))


def test_target_updates_follow_the_interval(blobs):
    X, _ = blobs  # 240 samples, batch 64: 4 steps per epoch
    model = small(DEC, update_interval=3, max_iter=6, tol=0.0).fit(X)
    # 24 steps: the initial target, then one after steps 3, 6, ..., 21 (none after the
    # last step, which no step would use). Epoch e holds steps 4e-3 .. 4e.
    assert model.n_target_updates_ == 8
    cluster = [r for r in model.history_ if r["phase"] == "cluster"]
    assert len(cluster) == 6 == model.n_iter_
    assert [r["target_updates"] for r in cluster] == [2, 3, 5, 6, 7, 8]
    assert "changed" not in cluster[0] or cluster[0]["target_updates"] > 1


def test_tol_stops_at_the_first_settled_update(blobs):
    X, _ = blobs
    model = small(DEC, update_interval=2, max_iter=50, tol=1.0).fit(X)
    # The first update (step 0) only sets P; the second (step 2) sees < 100 % changes.
    assert model.n_target_updates_ == 2
    assert model.n_iter_ == 1
    assert model.history_[-1]["changed"] < 1.0


def test_momentum_only_matters_for_sgd(blobs):
    X, _ = blobs
    a = small(DEC, optimizer="adam", momentum=0.0).fit(X)
    b = small(DEC, optimizer="adam", momentum=0.5).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = small(DEC, optimizer="sgd", momentum=0.0).fit(X)
    d = small(DEC, optimizer="sgd", momentum=0.5).fit(X)
    assert not np.array_equal(c.transform(X), d.transform(X))


@pytest.mark.parametrize("cls", [DEC, IDEC, DCEC])
def test_same_random_state_same_result(cls, blobs, images):
    X = images[0] if cls is DCEC else blobs[0]
    a, b = small(cls, max_iter=3).fit(X), small(cls, max_iter=3).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_dcec_leaves_the_global_rngs_alone(images, assert_global_rngs_untouched):
    X, _ = images
    assert_global_rngs_untouched(lambda: small(DCEC, pretrain_epochs=2, max_iter=1).fit(X))


def test_pipeline_with_idec(blobs):
    X, y = blobs
    pipe = Pipeline([("scale", StandardScaler()), ("idec", small(IDEC))])
    labels = pipe.fit_predict(X * 100 + 5)
    assert adjusted_rand_score(y, labels) > 0.9


def test_pipeline_with_dcec(images):
    X, y = images
    pipe = Pipeline([("scale", FunctionTransformer(to_unit)), ("dcec", small(DCEC))])
    assert cluster_accuracy(y, pipe.fit_predict(X * 255)) > 0.95


@pytest.mark.parametrize("cls", [IDEC, DCEC])
def test_grid_search_over_lam(cls, blobs, images):
    X, y = images if cls is DCEC else blobs
    grid = GridSearchCV(small(cls, max_iter=3), {"lam": [0.01, 0.1, 1.0]},
                        scoring=accuracy_scorer, cv=2).fit(X, y)
    assert [p["lam"] for p in grid.cv_results_["params"]] == [0.01, 0.1, 1.0]
    assert grid.best_score_ > 0.9
    assert cluster_accuracy(y, grid.predict(X)) > 0.9


def test_collapse_warns_with_cluster_sizes_and_no_nan(blobs):
    X, _ = blobs
    X = np.repeat(X[:2], 60, axis=0)  # two distinct points, three clusters
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(2\).*cluster sizes"):
        model = small(DEC).fit(X)
    assert np.isfinite(model.cluster_centers_).all()
    assert np.isfinite(model.predict_proba(X)).all()
    assert all(np.isfinite(r.get("loss", 0.0)) for r in model.history_)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("cls", "params", "error", "match"),
    [
        (DEC, {"alpha": 0.0}, InvalidParameterError, "'alpha' parameter"),
        (IDEC, {"alpha": -1.0}, InvalidParameterError, "'alpha' parameter"),
        (DEC, {"update_interval": 0}, InvalidParameterError, "'update_interval' parameter"),
        (DCEC, {"update_interval": 2.5}, InvalidParameterError, "'update_interval' parameter"),
        (DEC, {"tol": -0.1}, InvalidParameterError, "'tol' parameter"),
        (IDEC, {"tol": 1.5}, InvalidParameterError, "'tol' parameter"),
        (IDEC, {"lam": -1.0}, InvalidParameterError, "'lam' parameter"),
        (DEC, {"optimizer": "rmsprop"}, InvalidParameterError, "'optimizer' parameter"),
        (DEC, {"momentum": 1.0}, InvalidParameterError, "'momentum' parameter"),
        (DCEC, {"input_shape": (15, 15)}, ValueError,
         "input_shape=(15, 15) has 225 values per sample but X has n_features=256"),
        (DCEC, {"input_shape": (2, 8, 8)}, ValueError, "has 128 values per sample"),
        (DCEC, {"input_shape": "16x16"}, InvalidParameterError, "'input_shape' parameter"),
        (DCEC, {"filters": (4, 8)}, ValueError, "filters must be three positive integers"),
    ],
)
def test_bad_parameters_fail_before_training(cls, params, error, match, images, monkeypatch):
    X, _ = images

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(cls, "_pretrain", no_training)
    model = small(cls, **params)
    with pytest.raises(error, match=re.escape(match)):
        model.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


@pytest.mark.parametrize(("n_features", "input_shape", "sizes"), [
    (6, None, [(1, 6), (1, 3), (1, 2), (1, 1)]),           # a one-row image: 1-D kernels
    (1, None, [(1, 1), (1, 1), (1, 1), (1, 1)]),
    (700, None, [(1, 700), (1, 350), (1, 175), (1, 87)]),
    (784, None, [(28, 28), (14, 14), (7, 7), (3, 3)]),      # the paper's MNIST geometry
    (256, None, [(16, 16), (8, 8), (4, 4), (2, 2)]),        # and USPS's
    (16, (4, 4), [(4, 4), (2, 2), (1, 1), (1, 1)]),         # "same" where "valid" is empty
    (49, (1, 49), [(1, 49), (1, 25), (1, 13), (1, 6)]),     # a square d read as a signal
])
def test_conv_autoencoder_reads_any_shape(n_features, input_shape, sizes):
    cae = ConvAutoencoder(n_features, 2, input_shape, filters=(2, 2, 2))
    assert cae.feature_map_sizes == sizes
    if sizes[0][0] == 1:  # no kernel extends over an axis of size 1
        assert all(m.kernel_size[0] == 1 for m in cae.modules()
                   if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d))
    X = torch.randn(3, n_features)
    assert tuple(cae.encode(X).shape) == (3, 2)
    assert tuple(cae(X).shape) == (3, n_features)


def test_dcec_reads_tabular_data_as_a_signal(blobs):
    X, y = blobs
    model = small(DCEC).fit(X)
    assert model.autoencoder_.input_shape == (1, 1, X.shape[1])
    assert adjusted_rand_score(y, model.predict(X)) > 0.9


def test_dcec_with_an_mlp_autoencoder_ignores_input_shape(blobs):
    X, y = blobs
    mlp = functools.partial(MLPAutoencoder, hidden_dims=(32,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = small(DCEC, autoencoder=mlp).fit(X)
    assert isinstance(model.autoencoder_, MLPAutoencoder)
    assert adjusted_rand_score(y, model.labels_) > 0.9


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_sparse_input_matches_dense(cls, blobs):
    import scipy.sparse as sp

    X, _ = blobs
    X = np.where(np.abs(X) < 1.0, 0.0, X).astype(np.float32)
    dense, sparse = small(cls).fit(X), small(cls).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(dense.labels_, sparse.labels_)
    np.testing.assert_allclose(dense.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X)),
                               atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(channels=st.integers(1, 3), height=st.integers(8, 40), width=st.integers(8, 40))
def test_conv_autoencoder_restores_any_image_size(channels, height, width):
    cae = ConvAutoencoder(input_shape=(channels, height, width), filters=(2, 2, 2),
                          n_components=2)
    x = torch.randn(2, channels * height * width)
    assert tuple(cae.decode(cae.encode(x)).shape) == (2, channels * height * width)


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_same_random_state_same_pretraining_and_centres_as_aekmeans(cls, blobs):
    X, _ = blobs
    ae = small(AEKMeans).fit(X)
    model = small(cls, max_iter=0).fit(X)
    np.testing.assert_array_equal(model.transform(X), ae.transform(X))
    np.testing.assert_array_equal(model.cluster_centers_, ae.cluster_centers_)

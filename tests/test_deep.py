"""BaseDeepClusterer behaviour through ConcreteKMeans and AEKMeans."""

import copy
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _estimators import deep_estimators
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from torch import nn

from skdeepcluster import AEKMeans, ConcreteKMeans
from skdeepcluster._engine import TrainingDivergedError
from skdeepcluster.metrics import accuracy_scorer, cluster_accuracy
from skdeepcluster.networks import MLPAutoencoder

#: Small networks and few epochs: each fit takes a fraction of a second.
SMALL = {"hidden_dims": (32,), "n_components": 3, "pretrain_epochs": 15, "batch_size": 64,
         "n_init": 3}
DEEP = [AEKMeans, ConcreteKMeans]


def small(cls, **params):
    extra = {"max_iter": 5} if cls is ConcreteKMeans else {}
    return cls(**{"n_clusters": 3, "random_state": 0, **SMALL, **extra, **params})


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=240, centers=3, n_features=6, cluster_std=1.0,
                      random_state=3)
    return X.astype(np.float32), y


@pytest.mark.parametrize("cls", DEEP)
def test_blobs_are_recovered(cls, blobs):
    X, y = blobs
    model = small(cls).fit(X)
    assert adjusted_rand_score(y, model.labels_) > 0.9
    assert model.cluster_centers_.shape == (3, 3)
    assert model.transform(X).shape == (240, 3)
    assert model.transform(X).dtype == np.float32
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    assert model.n_features_in_ == 6
    assert model.n_components_ == 3


@pytest.mark.parametrize("cls", DEEP)
def test_inertia_and_score_agree_with_the_embedding(cls, blobs):
    X, _ = blobs
    model = small(cls).fit(X)
    Z = model.transform(X).astype(np.float64)
    d2 = ((Z[:, None, :] - model.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(d2.argmin(1), model.labels_)
    assert model.inertia_ == pytest.approx(d2.min(1).sum(), rel=1e-4)


@pytest.mark.parametrize("cls", DEEP)
def test_score_is_the_input_space_within_cluster_sum_of_squares(cls, blobs):
    # score measures the predicted partition in X's space, not in the learned latent space
    X, _ = blobs
    model = small(cls).fit(X)
    labels = model.predict(X)
    expected = sum(((X[labels == c] - X[labels == c].mean(0)) ** 2).sum()
                   for c in np.unique(labels))
    assert model.score(X) == pytest.approx(-expected, rel=1e-9)
    assert model.score(X) != pytest.approx(-model.inertia_, rel=1e-3)


def test_aekmeans_and_ckm_share_pretraining_and_initialisation(blobs):
    """Same random_state: identical pretrained network and k-means centres."""
    X, _ = blobs
    ae = small(AEKMeans).fit(X)
    ckm = small(ConcreteKMeans, max_iter=0).fit(X)
    np.testing.assert_array_equal(ae.cluster_centers_, ckm.cluster_centers_)
    np.testing.assert_array_equal(ae.transform(X), ckm.transform(X))
    assert ckm.n_iter_ == 0


def test_pipeline_with_scaler(blobs):
    X, y = blobs
    pipe = Pipeline([("scale", StandardScaler()), ("ckm", small(ConcreteKMeans))])
    labels = pipe.fit_predict(X * 100 + 5)
    assert adjusted_rand_score(y, labels) > 0.9
    assert pipe.transform(X).shape == (240, 3)


def test_grid_search_over_lam_and_tau(blobs):
    X, y = blobs
    grid = GridSearchCV(
        small(ConcreteKMeans, pretrain_epochs=10, max_iter=3),
        {"lam": [0.1, 1.0], "tau": [0.5, 2.0]},
        scoring=accuracy_scorer,
        cv=2,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert set(grid.best_params_) == {"lam", "tau"}
    assert grid.best_score_ > 0.9
    assert cluster_accuracy(y, grid.predict(X)) > 0.9


@pytest.mark.parametrize("cls", DEEP)
def test_clone_gives_an_unfitted_copy(cls, blobs):
    X, _ = blobs
    model = small(cls).fit(X)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_round_trip(blobs, dump, tmp_path):
    X, _ = blobs
    model = small(ConcreteKMeans).fit(X)
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(model))
    else:
        joblib.dump(model, tmp_path / "m.joblib")
        loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict(X), model.labels_)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    # Fitted networks are stored on the CPU, in eval mode, without an optimizer.
    assert all(p.device.type == "cpu" for p in loaded.autoencoder_.parameters())
    assert not loaded.autoencoder_.training


@pytest.mark.parametrize("cls", DEEP)
def test_same_random_state_same_result(cls, blobs):
    X, _ = blobs
    a, b = small(cls).fit(X), small(cls).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = small(cls, random_state=1).fit(X)
    assert not np.array_equal(a.transform(X), c.transform(X))


@pytest.mark.parametrize("random_state", [None, 0])
def test_caller_global_rngs_untouched(blobs, random_state, assert_global_rngs_untouched):
    X, _ = blobs
    assert_global_rngs_untouched(lambda: small(ConcreteKMeans, random_state=random_state).fit(X))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_falls_back_to_cpu(blobs):
    X, _ = blobs
    with pytest.warns(UserWarning, match="falling back to the CPU"):
        model = small(ConcreteKMeans, device="cuda").fit(X)
    ref = small(ConcreteKMeans, device="cpu").fit(X)
    np.testing.assert_array_equal(model.labels_, ref.labels_)


def test_sparse_input_matches_dense(blobs):
    X, _ = blobs
    dense = small(ConcreteKMeans).fit(X)
    sparse = small(ConcreteKMeans).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(dense.labels_, sparse.labels_)
    np.testing.assert_allclose(dense.transform(X), sparse.transform(sp.csr_matrix(X)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense.predict_proba(X), sparse.predict_proba(sp.csr_array(X)),
                               rtol=1e-4, atol=1e-6)


def test_predict_proba_matches_predict(blobs):
    X, _ = blobs
    model = small(ConcreteKMeans).fit(X)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.labels_)
    assert model.sigma_ > 0
    assert not hasattr(small(AEKMeans), "predict_proba")


# ---------------------------------------------------------------- user autoencoders
class TinyAE(nn.Module):
    def __init__(self, n_features, n_components=2):
        super().__init__()
        self.enc = nn.Linear(n_features, n_components)
        self.dec = nn.Linear(n_components, n_features)

    def encode(self, X):
        return self.enc(X)

    def decode(self, Z):
        return self.dec(Z)


def test_user_autoencoder_instance_is_copied_and_trained(blobs):
    X, y = blobs
    user = TinyAE(6, 2)
    before = {k: v.clone() for k, v in user.state_dict().items()}
    model = small(ConcreteKMeans, autoencoder=user).fit(X)
    for k, v in user.state_dict().items():
        torch.testing.assert_close(v, before[k])  # the caller's module is not trained
    assert model.autoencoder_ is not user
    assert model.n_components_ == 2
    assert adjusted_rand_score(y, model.labels_) > 0.9


def test_user_autoencoder_with_no_pretraining_is_used_as_is(blobs):
    X, _ = blobs
    user = TinyAE(6, 2)
    model = small(AEKMeans, autoencoder=user, pretrain_epochs=0).fit(X)
    with torch.no_grad():
        expected = user.encode(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-6)


@pytest.mark.parametrize("factory", [TinyAE, lambda n_features, n_components: TinyAE(
    n_features, n_components)])
def test_user_autoencoder_class_or_factory(blobs, factory):
    X, _ = blobs
    model = small(ConcreteKMeans, autoencoder=factory, n_components=4).fit(X)
    assert model.n_components_ == 4
    assert isinstance(model.autoencoder_, TinyAE)


def test_mlp_autoencoder_layout():
    ae = MLPAutoencoder(784)
    linear = [m for m in ae.modules() if isinstance(m, nn.Linear)]
    sizes = [(m.in_features, m.out_features) for m in linear]
    assert sizes == [(784, 500), (500, 500), (500, 2000), (2000, 10),
                     (10, 2000), (2000, 500), (500, 500), (500, 784)]
    # Linear embedding and linear output: the last module of each half is a Linear layer.
    assert isinstance(ae.encoder[-1], nn.Linear)
    assert isinstance(ae.decoder[-1], nn.Linear)
    assert sum(isinstance(m, nn.ReLU) for m in ae.modules()) == 6
    with pytest.raises(ValueError, match="activation='swish' is not supported"):
        MLPAutoencoder(5, activation="swish")


# ---------------------------------------------------------------- training loop behaviour
def test_history_records_every_phase(blobs):
    X, _ = blobs
    model = small(ConcreteKMeans, pretrain_epochs=4, max_iter=3, tol=0).fit(X)
    phases = [r["phase"] for r in model.history_]
    assert phases == ["pretrain"] * 4 + ["init"] + ["cluster"] * 3
    last = model.history_[-1]
    assert {"loss", "reconstruction", "clustering", "tau", "changed", "seconds"} <= set(last)
    assert last["loss"] == pytest.approx(
        last["reconstruction"] + model.lam * last["clustering"], rel=1e-4)
    # the scale-invariant k-means term is a fraction of the batch's spread
    assert 0 <= last["clustering"] <= 1
    taus = [r["tau"] for r in model.history_ if r["phase"] == "cluster"]
    assert taus[0] == 1.0 and taus == sorted(taus, reverse=True)
    assert model.n_iter_ == 3


def test_constant_temperature_with_zero_anneal_rate(blobs):
    X, _ = blobs
    model = small(ConcreteKMeans, anneal_rate=0, tau=0.7, max_iter=3, tol=0).fit(X)
    assert [r["tau"] for r in model.history_ if r["phase"] == "cluster"] == [0.7] * 3


def test_auto_annealing_reaches_tau_min_at_half_of_max_iter(blobs):
    X, _ = blobs
    model = small(ConcreteKMeans, max_iter=10, tau=1.0, tau_min=0.1, tol=0.0).fit(X)
    taus = [r["tau"] for r in model.history_ if r["phase"] == "cluster"]
    assert taus[0] == 1.0
    assert taus[2] == pytest.approx(0.1 ** 0.5)
    assert taus[4] == pytest.approx(0.1) and taus[8] == pytest.approx(0.1)


def test_tol_stops_on_label_changes(blobs):
    X, _ = blobs
    model = small(ConcreteKMeans, max_iter=50, tol=1.0).fit(X)
    assert model.n_iter_ == 1  # fewer than 100 % of the labels change in the first epoch


def test_callback_can_stop_a_phase(blobs):
    X, _ = blobs
    seen = []

    def stop_pretraining_at_3(estimator, record):
        seen.append((record["phase"], record["epoch"]))
        return record["phase"] == "pretrain" and record["epoch"] == 3

    model = small(ConcreteKMeans, pretrain_epochs=10, max_iter=2, tol=0,
                  callbacks=[stop_pretraining_at_3]).fit(X)
    assert [r["epoch"] for r in model.history_ if r["phase"] == "pretrain"] == [1, 2, 3]
    assert seen == [("pretrain", 1), ("pretrain", 2), ("pretrain", 3), ("cluster", 1),
                    ("cluster", 2)]
    assert model.history_[2]["stopped_by_callback"] is True


def test_verbose_zero_is_silent_and_verbose_one_shows_progress(blobs, capsys):
    X, _ = blobs
    small(ConcreteKMeans, verbose=0, pretrain_epochs=2, max_iter=2).fit(X)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    small(ConcreteKMeans, verbose=1, pretrain_epochs=2, max_iter=2).fit(X)
    out = capsys.readouterr()
    assert "pretrain" in out.err and "cluster" in out.err


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"n_components": 0}, InvalidParameterError, "'n_components' parameter"),
        ({"batch_size": 0}, InvalidParameterError, "'batch_size' parameter"),
        ({"pretrain_epochs": -1}, InvalidParameterError, "'pretrain_epochs' parameter"),
        ({"tau": 0.0}, InvalidParameterError, "'tau' parameter"),
        ({"tol": 1.5}, InvalidParameterError, "'tol' parameter"),
        ({"lam": -1.0}, InvalidParameterError, "'lam' parameter"),
        ({"autoencoder": "mlp"}, InvalidParameterError, "'autoencoder' parameter"),
        ({"tau_min": 2.0, "tau": 1.0}, ValueError, "tau_min=2.0 should be <= tau=1.0"),
        ({"hidden_dims": (32, 0)}, ValueError, "hidden_dims must be a sequence of positive"),
        ({"hidden_dims": "abc"}, InvalidParameterError, "'hidden_dims' parameter"),
        ({"hidden_dims": (8.5,)}, ValueError, "hidden_dims must be a sequence of positive"),
        ({"callbacks": [1]}, TypeError, "callbacks must be callables"),
        ({"n_clusters": 500}, ValueError, "n_samples=240 should be >= n_clusters=500"),
        ({"device": "tpu"}, ValueError, "device='tpu' is not"),
        ({"autoencoder": lambda **kw: 3}, TypeError, "returned int, not a torch.nn.Module"),
        ({"autoencoder": nn.Linear(6, 6)}, TypeError, "has no encode"),
        ({"autoencoder": TinyAE(7, 2)}, ValueError, "n_features=6"),
    ],
)
def test_bad_parameters_fail_before_training(blobs, params, error, match, monkeypatch):
    X, _ = blobs

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(ConcreteKMeans, "_pretrain", no_training)
    model = small(ConcreteKMeans, **params)
    with pytest.raises(error, match=re.escape(match) if "(" in match else match):
        model.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


class WrongOutputAE(TinyAE):
    def decode(self, Z):
        return self.dec(Z)[:, :-1]


def test_autoencoder_whose_output_does_not_match_the_input(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=r"reconstructs an input of shape \(2, 6\) as \(2, 5\)"):
        small(ConcreteKMeans, autoencoder=WrongOutputAE(6, 2)).fit(X)


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]]), "Input X contains NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0], [4.0, 5.0]]), "Input X contains infinity"),
        (np.ones((1, 3)), "n_samples=1 should be >= n_clusters=3"),
        (np.array([["a", "b"], ["c", "d"], ["e", "f"]]), "could not convert|dtype"),
        (np.arange(5.0), "Expected 2D array"),
    ],
)
def test_bad_data(X, match):
    with pytest.raises(ValueError, match=match):
        small(ConcreteKMeans).fit(X)


def test_nan_loss_stops_with_a_clear_error_and_leaves_the_model_unfitted(blobs):
    X, _ = blobs
    model = small(ConcreteKMeans, pretrain_learning_rate=1e12, pretrain_epochs=20)
    with pytest.raises(TrainingDivergedError,
                       match=r"became (NaN|infinite) at epoch \d+ of the pretrain phase; "
                             r"pretrain_learning_rate=1000000000000.0 is probably too large"):
        model.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    assert not hasattr(model, "n_features_in_")


def test_refit_failure_clears_the_previous_fit(blobs):
    X, _ = blobs
    model = small(ConcreteKMeans).fit(X)
    model.set_params(pretrain_learning_rate=1e12, pretrain_epochs=20)
    with pytest.raises(TrainingDivergedError):
        model.fit(X)
    with pytest.raises(NotFittedError):
        model.predict(X)
    # bad input on a refit: unfitted too (as ShallowConcreteKMeans)
    model.set_params(pretrain_learning_rate="auto", pretrain_epochs=2).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.full_like(X, np.nan))
    assert not hasattr(model, "n_features_in_")


def test_predict_checks_the_number_of_features(blobs):
    X, _ = blobs
    model = small(AEKMeans).fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but AEKMeans is expecting 6"):
        model.predict(X[:, :5])


def test_collapse_warns_with_cluster_sizes(blobs):
    X, _ = blobs
    X = np.repeat(X[:2], 60, axis=0)  # two distinct points, three clusters
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.warns(Warning, match=r"Number of distinct clusters \(2\).*cluster sizes"):
            small(AEKMeans).fit(X)


def test_verbose_without_tqdm_prints_one_line_per_epoch(blobs, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("no tqdm")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    X, _ = blobs
    small(ConcreteKMeans, verbose=1, pretrain_epochs=2, max_iter=3, tol=0).fit(X)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "pretrain epoch 1", "pretrain epoch 2", "cluster epoch 1", "cluster epoch 2",
        "cluster epoch 3"]
    assert "reconstruction=" in lines[0] and "changed=" in lines[-1]


def _scaled_encoder_copy(ae, factor):
    """The same network with its codes multiplied by ``factor`` (and the decoder undoing it)."""
    scaled = copy.deepcopy(ae)
    last_encoder = [m for m in scaled.encoder.modules() if isinstance(m, nn.Linear)][-1]
    first_decoder = next(m for m in scaled.decoder.modules() if isinstance(m, nn.Linear))
    with torch.no_grad():
        last_encoder.weight.mul_(factor)
        last_encoder.bias.mul_(factor)
        first_decoder.weight.div_(factor)
    return scaled


@pytest.mark.parametrize("scale_invariant, ratio", [(True, 1.0), (False, 100.0)])
def test_kmeans_term_scale_invariance(blobs, scale_invariant, ratio):
    # Rescaling the codes (the decoder compensating) leaves the scale-invariant k-means term
    # unchanged and multiplies the paper's term by the square of the factor. A learning
    # rate of ~0 keeps the networks as built, so the epoch means compare the same batches.
    X, _ = blobs
    ae = small(AEKMeans).fit(X).autoencoder_
    terms, reconstructions = [], []
    for factor in (1.0, 10.0):
        model = small(ConcreteKMeans, autoencoder=_scaled_encoder_copy(ae, factor),
                      pretrain_epochs=0, max_iter=1, tol=0, learning_rate=1e-12,
                      scale_invariant=scale_invariant).fit(X)
        record = model.history_[-1]
        terms.append(record["clustering"])
        reconstructions.append(record["reconstruction"])
    assert reconstructions[1] == pytest.approx(reconstructions[0], rel=1e-4)
    assert terms[1] / terms[0] == pytest.approx(ratio, rel=1e-3)


def test_scale_invariant_term_with_a_one_row_batch(blobs):
    # 240 rows in batches of 239 leave a last batch of one row, which has no spread: the
    # embedding's total variance stands in for it instead of a division by ~0.
    X, _ = blobs
    model = small(ConcreteKMeans, batch_size=239, max_iter=2, tol=0).fit(X)
    clustering = [r["clustering"] for r in model.history_ if r["phase"] == "cluster"]
    assert all(np.isfinite(c) and 0 <= c < 2 for c in clustering)


@pytest.mark.parametrize("name", ["IDEC", "DCN", "DeepClusterADMM"])
def test_fit_under_cpu_bf16_autocast_keeps_float32_clustering(name):
    # Under autocast the network computes in bfloat16, but the embedding handed to k-means,
    # the distances and the fitted attributes stay float32 (before this was handled,
    # cluster_centers_ came out bfloat16 and numpy refused them).
    from skdeepcluster import DCN, IDEC, DeepClusterADMM

    cls = {"IDEC": IDEC, "DCN": DCN, "DeepClusterADMM": DeepClusterADMM}[name]
    X, y = make_blobs(n_samples=600, n_features=10, centers=3, cluster_std=0.5,
                      random_state=0)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    params = {"n_clusters": 3, "hidden_dims": (32,), "n_components": 3, "pretrain_epochs": 15,
              "batch_size": 64, "n_init": 3, "random_state": 0, "max_iter": 5,
              "device": "cpu"}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model = cls(**params).fit(X)
    assert model.cluster_centers_.dtype == np.float32
    assert adjusted_rand_score(y, model.labels_) > 0.9


@pytest.mark.parametrize("name", ["AEKMeans", "IDEC", "DCEC"])
def test_fit_under_autocast_trains_the_network(name):
    # torch.autocast keeps the bfloat16 copy of each weight until the outermost autocast
    # region exits; a fit inside one used the first step's copies for every later step, so
    # the pretraining loss never moved (each epoch's loss was the same number). Now every
    # phase trains, and its losses follow the float32 fit's (bfloat16 matrix products).
    from skdeepcluster import DCEC, IDEC, AEKMeans

    cls = {"AEKMeans": AEKMeans, "IDEC": IDEC, "DCEC": DCEC}[name]
    X, _ = make_blobs(n_samples=256, n_features=64, centers=3, random_state=0)
    X = ((X - X.min(0)) / (X.max(0) - X.min(0))).astype(np.float32)
    params = {"n_clusters": 3, "pretrain_epochs": 6, "batch_size": 64, "random_state": 0,
              "device": "cpu"}
    if name == "DCEC":
        params.update(input_shape=(8, 8), max_iter=3)
    elif name == "IDEC":
        params.update(hidden_dims=(32,), n_components=3, max_iter=3, update_interval=2)
    else:
        params.update(hidden_dims=(32,), n_components=3)

    def losses(model, phase, key):
        return np.array([r[key] for r in model.history_ if r["phase"] == phase])

    plain = cls(**params).fit(X)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = cls(**params).fit(X)
    rec = losses(mixed, "pretrain", "reconstruction")
    assert rec[-1] < 0.7 * rec[0]
    np.testing.assert_allclose(rec, losses(plain, "pretrain", "reconstruction"), rtol=0.1)
    if name != "AEKMeans":
        loss = losses(mixed, "cluster", "loss")
        assert len(np.unique(loss)) == len(loss)


_PRECISION_FAST = {"n_clusters": 3, "hidden_dims": (32,), "n_components": 3,
                   "pretrain_epochs": 8, "batch_size": 64, "n_init": 2, "random_state": 0}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny IDEC
@pytest.mark.parametrize("name", sorted(deep_estimators(
    _PRECISION_FAST, max_iter=3, update_interval=2, dcec_max_iter=2)))
def test_precision_bfloat16_is_the_fit_under_autocast(name):
    # precision="bfloat16" runs fit, predict and transform under bfloat16 autocast: the same
    # fit as a float32 estimator called inside torch.autocast, with float32 attributes, and
    # predict(X_train) giving labels_ (the embedding computed in the same precision).
    cls, params = deep_estimators(_PRECISION_FAST, max_iter=3, update_interval=2,
                                  dcec_max_iter=2)[name]
    X, _ = make_blobs(n_samples=192, n_features=16, centers=3, random_state=0)
    X = ((X - X.min(0)) / (X.max(0) - X.min(0))).astype(np.float32)
    if cls.__name__ == "DCEC":
        params = {**params, "input_shape": (4, 4)}
    elif cls.__name__ == "DCTLKMeans":  # 1 filter of 1x1 puts every row in one cluster here
        params = {**params, "input_shape": (4, 4), "n_filters": (2,), "kernel_size": 3}
    model = cls(**params, precision="bfloat16").fit(X)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        context = cls(**params).fit(X)
    plain = cls(**params).fit(X)
    np.testing.assert_array_equal(model.cluster_centers_, context.cluster_centers_)
    np.testing.assert_array_equal(model.labels_, context.labels_)
    assert model.cluster_centers_.dtype == np.float32
    assert model.transform(X).dtype == np.float32
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    # the network really computed in bfloat16: its embedding differs from float32's
    assert not np.array_equal(model.cluster_centers_, plain.cluster_centers_)


def test_precision_is_validated():
    with pytest.raises(InvalidParameterError, match="precision"):
        AEKMeans(2, precision="float16").fit(np.random.rand(20, 4))


def test_precision_bfloat16_warns_on_a_cpu_without_native_bfloat16(monkeypatch):
    import skdeepcluster._base as base_module

    X = np.random.RandomState(0).rand(40, 6).astype(np.float32)
    params = {"hidden_dims": (8,), "n_components": 2, "pretrain_epochs": 1, "n_init": 1,
              "random_state": 0, "device": "cpu"}
    monkeypatch.setattr(base_module, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="without native bfloat16"):
        AEKMeans(2, precision="bfloat16", **params).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        AEKMeans(2, **params).fit(X)  # float32: nothing to say
    monkeypatch.setattr(base_module, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        AEKMeans(2, precision="bfloat16", **params).fit(X)

"""Pretraining recipes, their length, and the ``memory`` cache."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

import skdeepcluster._pretrain as pretrain_module
from skdeepcluster import (
    DCEC,
    DCN,
    DEC,
    DKM,
    IDEC,
    AEKMeans,
    CenteringKM,
    ConcreteKMeans,
    DeepClusterADMM,
)
from skdeepcluster._engine import HostData, make_optimizer, rng_scope, seeded_generator
from skdeepcluster._pretrain import (
    AUTO_LEARNING_RATE,
    pretrain_autoencoder,
    resolve_learning_rate,
    resolve_pretrain_epochs,
    resolve_recipe,
)
from skdeepcluster.metrics import accuracy_scorer
from skdeepcluster.networks import ConvAutoencoder, MLPAutoencoder

SMALL = {"hidden_dims": (16, 16), "n_components": 2, "batch_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, n_features=6, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture
def count_pretrainings(monkeypatch):
    """Replace the trainer by a counting wrapper; returns the list of calls."""
    calls = []
    original = pretrain_module.pretrain_autoencoder

    def counting(*args, **kwargs):
        calls.append(kwargs["recipe"])
        return original(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "pretrain_autoencoder", counting)
    return calls


# ------------------------------------------------------------------ length and step size
@pytest.mark.parametrize(("value", "n_samples", "batch_size", "expected"), [
    (30, 10_000, 256, 30),
    (0, 10_000, 256, 0),
    ("auto", 10_000, 256, 200),     # 40 steps per epoch -> 8 000 steps
    ("auto", 1797, 256, 300),       # 8 steps per epoch -> 1000, capped
    ("auto", 70_000, 256, 50),      # 274 steps per epoch -> 30, raised to the minimum
    ("auto", 6400, 256, 300),       # 25 steps per epoch -> 320, capped
    ("auto", 25_600, 256, 80),      # 100 steps per epoch
    ("auto", 20_480, 256, 100),
])
def test_pretrain_epochs_auto_rule(value, n_samples, batch_size, expected):
    assert resolve_pretrain_epochs(value, n_samples, batch_size) == expected


def test_auto_learning_rate_per_recipe():
    assert resolve_learning_rate("adam", "auto") == 1e-3
    assert resolve_learning_rate("sgd", "auto") == 1.0
    assert resolve_learning_rate("greedy", "auto") == 1e-3
    assert resolve_learning_rate("sgd", 0.05) == 0.05
    # SGD's rate shrinks with the input's mean square above 0.25, never grows: 1 on the
    # pixels of MNIST (0.114), USPS (0.216) and digits (0.235) scaled to [0, 1]
    assert resolve_learning_rate("sgd", "auto", mean_square=0.01) == 1.0
    assert resolve_learning_rate("sgd", "auto", mean_square=0.235) == 1.0
    assert resolve_learning_rate("sgd", "auto", mean_square=0.5) == pytest.approx(0.5)
    assert resolve_learning_rate("sgd", "auto", mean_square=1.0) == pytest.approx(0.25)
    assert resolve_learning_rate("sgd", 0.05, mean_square=1.0) == 0.05
    assert resolve_learning_rate("adam", "auto", mean_square=100.0) == 1e-3


def test_sgd_auto_rate_follows_the_input_scale(blobs, tmp_path):
    # The rate is a function of the data (recorded in the cache key through the rate):
    # a 10x larger input gets a 100x smaller rate, and the mean square is computed in
    # chunks, so a memory map gives the rate of the array in memory.
    import skdeepcluster._base as base

    X, _ = blobs
    X = (X - X.mean(0)) / X.std(0)
    seen = []
    real = base.pretrained_autoencoder

    def spy(*args, learning_rate, **kwargs):
        seen.append(learning_rate)
        return real(*args, learning_rate=learning_rate, **kwargs)

    params = {"pretrain": "sgd", "pretrain_epochs": 1, **SMALL}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(base, "pretrained_autoencoder", spy)
        AEKMeans(3, **params).fit(X)
        AEKMeans(3, **params).fit(10 * X)
        np.save(tmp_path / "X.npy", X.astype(np.float32))
        AEKMeans(3, **params).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))
        AEKMeans(3, **{**params, "pretrain_learning_rate": 0.001}).fit(10 * X)
    assert seen[0] == pytest.approx(0.25, rel=1e-6)  # standardised: mean square 1
    assert seen[1] == pytest.approx(0.0025, rel=1e-6)
    assert seen[2] == pytest.approx(seen[0], rel=1e-6)
    assert seen[3] == 0.001


def _host(X):
    return HostData(X, torch.device("cpu"), torch.float32)


@pytest.mark.parametrize(("values", "expected"), [
    ([[0.0, 1.0], [0.5, 0.25]], "sgd"),         # pixels scaled to [0, 1]
    ([[0.0, 0.0], [0.0, 0.0]], "sgd"),
    ([[0.0, 1.0001], [0.5, 0.25]], "adam"),     # just above 1
    ([[-1e-6, 1.0], [0.5, 0.25]], "adam"),      # just below 0
    ([[-1.2, 0.3], [1.2, -0.3]], "adam"),       # standardised
    ([[0.0, 255.0], [17.0, 3.0]], "adam"),      # raw pixels
])
def test_auto_recipe_rule(values, expected):
    assert resolve_recipe("auto", _host(np.array(values)), n_steps=8000) == expected
    for recipe in ("adam", "sgd", "greedy"):
        assert resolve_recipe(recipe, _host(np.array(values)), n_steps=8000) == recipe


def test_auto_recipe_needs_a_long_pretraining():
    # SGD only from SGD_MIN_STEPS (2 000) optimiser steps on; shorter pretrainings get Adam
    pixels = _host(np.array([[0.0, 1.0], [0.5, 0.25]]))
    assert pretrain_module.SGD_MIN_STEPS == 2000
    assert resolve_recipe("auto", pixels, n_steps=2000) == "sgd"
    assert resolve_recipe("auto", pixels, n_steps=1999) == "adam"
    assert resolve_recipe("sgd", pixels, n_steps=1) == "sgd"


def test_auto_recipe_reads_every_chunk(tmp_path):
    # One value out of [0, 1] in the last of three chunks, in dense, CSR and memory-mapped
    # input.
    import scipy.sparse as sp

    from skdeepcluster._engine import CHUNK_ROWS

    n = 2 * CHUNK_ROWS + 5
    X = np.random.RandomState(0).uniform(0, 1, size=(n, 2)).astype(np.float32)
    X[:, 1] = 0.0
    assert resolve_recipe("auto", _host(X), n_steps=8000) == "sgd"
    assert resolve_recipe("auto", _host(sp.csr_matrix(X)), n_steps=8000) == "sgd"
    for value in (1.5, -0.5):
        X[n - 1, 1] = value
        np.save(tmp_path / "X.npy", X)
        for data in (X, sp.csr_matrix(X), np.load(tmp_path / "X.npy", mmap_mode="r")):
            assert resolve_recipe("auto", _host(data), n_steps=8000) == "adam"


def test_fitted_recipe_and_rate(blobs, monkeypatch):
    # pretrain="auto" (the default of the MLP estimators): Adam at 1e-3 on a short
    # pretraining (3 epochs of 5 steps) whatever the input; the fitted attributes say what
    # ran, and the fit equals the one with the resolved recipe named explicitly.
    X, _ = blobs
    unit = (X - X.min(0)) / (X.max(0) - X.min(0))
    standard = (X - X.mean(0)) / X.std(0)
    params = {"pretrain_epochs": 3, **SMALL}
    assert AEKMeans().pretrain == "auto"
    model = AEKMeans(3, **params).fit(unit)
    assert (model.pretrain_, model.pretrain_learning_rate_) == ("adam", 1e-3)
    explicit = AEKMeans(3, pretrain="adam", **params).fit(unit)
    np.testing.assert_array_equal(model.cluster_centers_, explicit.cluster_centers_)
    # With SGD_MIN_STEPS lowered to these 15 steps: SGD on [0, 1] input, at
    # min(1, 0.25 / mean square), 0.70 on these min-max scaled blobs and 1 on half of them
    monkeypatch.setattr(pretrain_module, "SGD_MIN_STEPS", 15)
    model = AEKMeans(3, **params).fit(unit)
    assert model.pretrain_ == "sgd"
    rate = 0.25 / float(np.mean(unit.astype(np.float64) ** 2))
    assert model.pretrain_learning_rate_ == pytest.approx(rate, rel=1e-5) != 1.0
    assert AEKMeans(3, **params).fit(unit / 2).pretrain_learning_rate_ == 1.0
    explicit = AEKMeans(3, pretrain="sgd", pretrain_learning_rate=rate, **params).fit(unit)
    np.testing.assert_allclose(model.cluster_centers_, explicit.cluster_centers_, rtol=1e-5)
    assert AEKMeans(3, **{**params, "pretrain_epochs": 2}).fit(unit).pretrain_ == "adam"
    # standardised input: Adam however long the pretraining
    model = AEKMeans(3, **params).fit(standard)
    assert (model.pretrain_, model.pretrain_learning_rate_) == ("adam", 1e-3)
    explicit = AEKMeans(3, pretrain="adam", **params).fit(standard)
    np.testing.assert_array_equal(model.cluster_centers_, explicit.cluster_centers_)
    # DCEC keeps its reference code's Adam as its default, DKM and CenteringKM too (their
    # clustering phases ended lower after SGD on USPS); the others default to "auto"
    for cls in (DCEC, DKM, CenteringKM):
        assert cls().pretrain == "adam", cls.__name__
    for cls in (ConcreteKMeans, DEC, IDEC, DCN, DeepClusterADMM):
        assert cls().pretrain == "auto", cls.__name__


def test_fitted_pretrain_epochs_attribute(blobs):
    X, _ = blobs
    model = AEKMeans(3, pretrain_epochs="auto", **{**SMALL, "batch_size": 150}).fit(X)
    # one step per epoch: 8 000 steps capped at 300 epochs
    assert model.pretrain_epochs_ == 300
    assert sum(r["phase"] == "pretrain" for r in model.history_) == 300


# ------------------------------------------------------------------ the recipes
@pytest.mark.parametrize("recipe", ["adam", "sgd", "greedy"])
def test_each_recipe_recovers_blobs(blobs, recipe):
    X, y = blobs
    X = (X - X.mean(0)) / X.std(0)
    # "auto" scales SGD's rate to the standardised input (DEC-keras's 1 would diverge)
    model = AEKMeans(3, pretrain=recipe, pretrain_epochs=40, **SMALL).fit(X)
    assert accuracy_scorer(model, X, y) > 0.95


def test_recipe_phases_in_history(blobs):
    X, _ = blobs
    model = AEKMeans(3, pretrain="greedy", pretrain_epochs=5, **SMALL).fit(X)
    phases = [r["phase"] for r in model.history_]
    # three layer pairs (16, 16, 2), each ceil(0.5 * 5) = 3 epochs, then 5 of fine-tuning
    assert phases == (["pretrain_layer1"] * 3 + ["pretrain_layer2"] * 3
                      + ["pretrain_layer3"] * 3 + ["pretrain"] * 5 + ["init"])
    sgd = AEKMeans(3, pretrain="sgd", pretrain_epochs=5, pretrain_learning_rate=0.01,
                   **SMALL).fit(X)
    assert [r["phase"] for r in sgd.history_] == ["pretrain"] * 5 + ["init"]


@pytest.mark.parametrize(("recipe", "reduction"), [("adam", "sum"), ("sgd", "mean"),
                                                   ("greedy", "sum")])
def test_reconstruction_reduction_of_each_recipe(blobs, recipe, reduction):
    # With a negligible step size the first epoch's loss is the untrained network's error:
    # summed over the features for Adam, averaged (Keras' mse) for DEC-keras's SGD.
    X, _ = blobs
    model = AEKMeans(3, pretrain=recipe, pretrain_epochs=1, pretrain_learning_rate=1e-12,
                     **{**SMALL, "batch_size": 150}).fit(X)
    with rng_scope(np.random.RandomState(0).randint(np.iinfo(np.int32).max)):
        untrained = MLPAutoencoder(6, 2, (16, 16))
    with torch.no_grad():
        err = (untrained(torch.from_numpy(X)) - torch.from_numpy(X)) ** 2
    expected = err.sum(1).mean() if reduction == "sum" else err.mean()
    record = next(r for r in model.history_ if r["phase"] == "pretrain")
    assert record["reconstruction"] == pytest.approx(float(expected), rel=1e-4)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_learning_rate_schedule_of_a_stage(blobs, monkeypatch, schedule):
    # 150 rows in batches of 32: 5 steps per epoch, 3 epochs -> 15 steps; the cosine
    # schedule's last step uses 0.5 * lr * (1 + cos(pi * 14 / 15)).
    X, _ = blobs
    optimizers = []
    original = pretrain_module._optimizer

    def keep(*args):
        optimizers.append(original(*args))
        return optimizers[-1]

    monkeypatch.setattr(pretrain_module, "_optimizer", keep)
    monkeypatch.setattr(pretrain_module, "LEARNING_RATE_SCHEDULE", schedule)
    with rng_scope(0):
        ae = MLPAutoencoder(6, 2, (16, 16))
    pretrain_autoencoder(ae, HostData(X, torch.device("cpu"), torch.float32), recipe="adam",
                         n_epochs=3, batch_size=32, learning_rate=1e-3,
                         generator=seeded_generator(0, torch.device("cpu")))
    (optimizer,) = optimizers
    last = optimizer.param_groups[0]["lr"]
    expected = 1e-3 if schedule == "constant" else 0.5e-3 * (1 + np.cos(np.pi * 14 / 15))
    assert last == pytest.approx(expected, rel=1e-12)


def _snapshots(recipe, X, n_epochs=4):
    """Weights of every linear layer at the end of each pretraining phase."""
    with rng_scope(0):
        ae = MLPAutoencoder(X.shape[1], 2, (16, 16))
    linears = [m for m in ae.modules() if isinstance(m, torch.nn.Linear)]
    initial = [m.weight.detach().clone() for m in linears]
    ends = {}

    def callback(owner, record):
        ends[record["phase"]] = [m.weight.detach().clone() for m in linears]
        return False

    data = HostData(X, torch.device("cpu"), torch.float32)
    pretrain_autoencoder(ae, data, recipe=recipe, n_epochs=n_epochs, batch_size=32,
                         learning_rate=AUTO_LEARNING_RATE[recipe],
                         generator=seeded_generator(0, torch.device("cpu")),
                         callbacks=[callback])
    return initial, ends


def test_greedy_trains_one_layer_pair_at_a_time(blobs):
    X, _ = blobs
    initial, ends = _snapshots("greedy", X)
    # linear layers: encoder 0, 1, 2 then decoder 3 (mirror of 2), 4 (of 1), 5 (of 0)
    pair_of = {0: 0, 1: 1, 2: 2, 3: 2, 4: 1, 5: 0}
    previous = initial
    for stage in range(3):
        now = ends[f"pretrain_layer{stage + 1}"]
        for layer, pair in pair_of.items():
            moved = not torch.equal(now[layer], previous[layer])
            assert moved == (pair == stage), (stage, layer)
        previous = now
    # the fine-tuning moves every layer
    assert all(not torch.equal(a, b) for a, b in zip(ends["pretrain"], previous))


def test_greedy_conv_autoencoder(blobs):
    rng = np.random.RandomState(0)
    X = rng.rand(40, 2 * 12 * 10).astype(np.float32)
    model = DCEC(2, input_shape=(2, 12, 10), filters=(3, 4, 4), n_components=3,
                 pretrain="greedy", pretrain_epochs=4, max_iter=1, batch_size=16,
                 random_state=0).fit(X)
    phases = [r["phase"] for r in model.history_]
    assert phases[:8] == ["pretrain_layer1"] * 2 + ["pretrain_layer2"] * 2 + [
        "pretrain_layer3"] * 2 + ["pretrain_layer4"] * 2
    assert np.isfinite(model.transform(X)).all()


def test_conv_layer_pairs_compose_to_encode_and_decode():
    torch.manual_seed(0)
    ae = ConvAutoencoder(n_components=4, input_shape=(2, 12, 10), filters=(3, 4, 5)).eval()
    X = torch.randn(3, 240)
    pairs = ae.layer_pairs()
    h = X
    for enc, _ in pairs:
        h = enc(h)
    torch.testing.assert_close(h, ae.encode(X))
    for _, dec in reversed(pairs):
        h = dec(h)
    torch.testing.assert_close(h, ae.decode(ae.encode(X)))


class _NoPairs(torch.nn.Module):
    def __init__(self, n_features, n_components):
        super().__init__()
        self.enc = torch.nn.Linear(n_features, n_components)
        self.dec = torch.nn.Linear(n_components, n_features)

    def encode(self, X):
        return self.enc(X)

    def decode(self, Z):
        return self.dec(Z)


def test_greedy_needs_layer_pairs(blobs):
    X, _ = blobs
    model = AEKMeans(3, autoencoder=_NoPairs, pretrain="greedy", pretrain_epochs=2,
                     random_state=0)
    with pytest.raises(ValueError, match="layer_pairs"):
        model.fit(X)
    assert not hasattr(model, "labels_")
    # the other recipes do not need it
    AEKMeans(3, autoencoder=_NoPairs, pretrain="sgd", pretrain_epochs=2,
             random_state=0).fit(X)


@pytest.mark.parametrize(("params", "match"), [
    ({"pretrain": "rbm"}, "pretrain"),
    ({"pretrain_epochs": "long"}, "pretrain_epochs"),
    ({"pretrain_learning_rate": 0}, "pretrain_learning_rate"),
    ({"memory": 3}, "memory"),
])
def test_bad_pretraining_parameters(blobs, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        AEKMeans(3, **params).fit(blobs[0])


def test_sgd_divergence_names_the_recipe(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="pretrain='sgd'"):
        AEKMeans(3, pretrain="sgd", pretrain_learning_rate=1e6, pretrain_epochs=5,
                 **SMALL).fit(X * 1e3)


@pytest.mark.parametrize("recipe", ["sgd", "greedy"])
def test_recipes_are_deterministic_and_leave_global_rngs(blobs, recipe,
                                                          assert_global_rngs_untouched):
    X, _ = blobs
    X = (X - X.min(0)) / (X.max(0) - X.min(0))  # [0, 1], the domain of the recipes' steps
    a = AEKMeans(3, pretrain=recipe, pretrain_epochs=3, **SMALL).fit(X)
    b = AEKMeans(3, pretrain=recipe, pretrain_epochs=3, **SMALL).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert_global_rngs_untouched(
        lambda: AEKMeans(3, pretrain=recipe, pretrain_epochs=3, **SMALL).fit(X))


# ------------------------------------------------------------------ the memory cache
def test_memory_gives_the_same_fit_and_pretrains_once(blobs, tmp_path, count_pretrainings):
    X, _ = blobs
    params = {**SMALL, "pretrain": "greedy", "pretrain_epochs": 3, "max_iter": 3,
              "update_interval": 2}
    plain = IDEC(3, **params).fit(X)
    first = IDEC(3, memory=str(tmp_path), **params).fit(X)
    second = IDEC(3, memory=str(tmp_path), **params).fit(X)
    assert count_pretrainings == ["greedy"] * 2  # plain, then first; second is a hit
    for model in (first, second):
        np.testing.assert_array_equal(model.labels_, plain.labels_)
        np.testing.assert_array_equal(model.cluster_centers_, plain.cluster_centers_)
    cached = [r for r in second.history_ if r["phase"].startswith("pretrain")]
    assert cached and all(r["cached"] for r in cached)
    assert not any("cached" in r for r in first.history_)
    # the clustering phase is the same whether the pretraining ran or was loaded
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in plain.history_
             if r["phase"] == "cluster"]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"}
                     for r in second.history_ if r["phase"] == "cluster"]


def test_memory_key(blobs, tmp_path, count_pretrainings, monkeypatch):
    from joblib import Memory

    X, _ = blobs
    memory = Memory(tmp_path, verbose=0)
    base = {**SMALL, "pretrain_epochs": 2, "memory": memory}
    AEKMeans(3, **base).fit(X)
    AEKMeans(3, **base).fit(X)                                      # hit
    ConcreteKMeans(3, lam=5.0, max_iter=1, **base).fit(X)            # same network: hit
    AEKMeans(3, n_init=2, **base).fit(X)                              # k-means only: hit
    assert len(count_pretrainings) == 1
    AEKMeans(3, **{**base, "random_state": 1}).fit(X)                 # other weights
    AEKMeans(3, **base).fit(X[:-1])                                   # other data
    # other recipe (its lr 1.0 suits data in [0, 1]; on these raw blobs it may diverge)
    AEKMeans(3, **{**base, "pretrain": "sgd", "pretrain_learning_rate": 0.01}).fit(X)
    AEKMeans(3, **{**base, "pretrain_epochs": 3}).fit(X)              # other length
    AEKMeans(3, **{**base, "pretrain_learning_rate": 1e-2}).fit(X)    # other step size
    AEKMeans(3, **{**base, "n_components": 3}).fit(X)                 # other network
    AEKMeans(3, **{**base, "batch_size": 16}).fit(X)                  # other batches
    assert len(count_pretrainings) == 8
    # another package or torch version does not reuse a network pretrained by this one
    with monkeypatch.context() as patch:
        patch.setattr(pretrain_module, "_versions", lambda: "skdeepcluster 99.0, torch 9.9")
        AEKMeans(3, **base).fit(X)
    assert len(count_pretrainings) == 9
    AEKMeans(3, **base).fit(X)                                         # this version: cached
    assert len(count_pretrainings) == 9
    # a network pretrained under bfloat16 autocast is another network
    with torch.autocast("cpu", dtype=torch.bfloat16):
        AEKMeans(3, **base).fit(X)
        AEKMeans(3, **base).fit(X)                                     # cached in bfloat16
    assert len(count_pretrainings) == 10
    AEKMeans(3, **base).fit(X)                                         # float32: cached
    assert len(count_pretrainings) == 10
    # the CPU's float32 kernels (torch's or oneDNN's) round differently: another network
    from skdeepcluster import _onednn
    for setting in ("torch", "onednn"):
        with monkeypatch.context() as patch:
            patch.setenv(_onednn.ENV_VAR, setting)
            AEKMeans(3, **base).fit(X)
    default_onednn = _onednn._resolve("auto")  # the kernels of the fits above
    # "torch" is new where the default was oneDNN; "onednn" where it was torch and oneDNN works
    expected = 10 + int(default_onednn) + int(_onednn.onednn_works() and not default_onednn)
    assert len(count_pretrainings) == expected
    if _onednn.onednn_works():
        assert len(count_pretrainings) == 11


def test_grid_search_pretrains_once_per_fold(blobs, tmp_path, count_pretrainings):
    X, y = blobs
    search = GridSearchCV(
        ConcreteKMeans(3, max_iter=2, pretrain_epochs=3, memory=str(tmp_path), **SMALL),
        {"lam": [1.0, 3.0], "tau": [0.5, 1.0]}, cv=2, scoring=accuracy_scorer, refit=True,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    # one pretraining per fold and one for the refit on all of X, not 2 x 4 + 1 = 9
    assert len(count_pretrainings) == 3
    assert hasattr(search.best_estimator_, "labels_")


def test_user_autoencoder_instance_with_memory_is_not_modified(blobs, tmp_path):
    X, _ = blobs
    with rng_scope(0):
        mine = MLPAutoencoder(6, 2, (16,))
    before = {k: v.clone() for k, v in mine.state_dict().items()}
    model = AEKMeans(3, autoencoder=mine, pretrain_epochs=3, memory=str(tmp_path),
                     random_state=0).fit(X)
    for k, v in mine.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert any(not torch.equal(v, before[k])
               for k, v in model.autoencoder_.state_dict().items())
    # pretrain_epochs=0 uses the instance's weights as they are, with or without memory
    reuse = AEKMeans(3, autoencoder=model.autoencoder_, pretrain_epochs=0,
                     memory=str(tmp_path), random_state=0).fit(X)
    np.testing.assert_array_equal(reuse.cluster_centers_, model.cluster_centers_)
    assert [r["phase"] for r in reuse.history_] == ["init"]


def test_memory_with_sparse_input(blobs, tmp_path, count_pretrainings):
    import scipy.sparse as sp

    X, _ = blobs
    X = np.where(X > 0, X, 0).astype(np.float32)
    params = {**SMALL, "pretrain_epochs": 2, "memory": str(tmp_path)}
    dense = AEKMeans(3, **params).fit(X)
    sparse = AEKMeans(3, **params).fit(sp.csr_matrix(X))
    again = AEKMeans(3, **params).fit(sp.csr_matrix(X))
    # a CSR matrix is other input for the key, but its pretraining gives the same network
    assert len(count_pretrainings) == 2
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_, rtol=1e-5)
    np.testing.assert_array_equal(again.labels_, sparse.labels_)


# ------------------------------------------------------------ the optimisers
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizers_are_fused_where_supported(name):
    param = torch.nn.Parameter(torch.zeros(3))
    assert make_optimizer(name, [param], 0.1, 0.9).defaults["fused"]
    # a device without fused kernels gets the default implementation
    meta = torch.nn.Parameter(torch.empty(3, device="meta"))
    assert not make_optimizer(name, [meta], 0.1, 0.9).defaults["fused"]
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        make_optimizer("rmsprop", [param], 0.1)


def _train_with(optimizer_factory, steps=20):
    with rng_scope(0):
        net = MLPAutoencoder(8, n_components=2, hidden_dims=(16,))
    optimizer = optimizer_factory(net.parameters())
    gen = seeded_generator(1, "cpu")
    for _ in range(steps):
        xb = torch.randn(16, 8, generator=gen)
        loss = ((net(xb) - xb) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def test_fused_sgd_is_exactly_the_default_and_fused_adam_close():
    """Fused SGD computes the default implementation's bits; fused Adam the same update in
    another order (last-bit differences only)."""
    fused = _train_with(lambda p: make_optimizer("sgd", p, 0.01, 0.9))
    default = _train_with(lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9))
    assert torch.equal(fused, default) and torch.isfinite(fused).all()
    fused = _train_with(lambda p: make_optimizer("adam", p, 1e-3))
    default = _train_with(lambda p: torch.optim.Adam(p, lr=1e-3))
    torch.testing.assert_close(fused, default, rtol=1e-5, atol=1e-6)
    assert torch.equal(fused, _train_with(lambda p: make_optimizer("adam", p, 1e-3)))

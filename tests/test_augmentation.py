"""The pretraining augmentation: skdeepcluster.augmentation and ``augmentation``."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skdeepcluster import DEC, AEKMeans
from skdeepcluster._pretrain import augmentation_key
from skdeepcluster.augmentation import RandomAffine, affine_images, detect_image_shape

FAST = {"n_clusters": 3, "hidden_dims": [16], "n_components": 3, "pretrain_epochs": 2,
        "batch_size": 32, "random_state": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def images():
    # 90 random 6 x 5 "images" with values in [0, 1]
    return np.random.default_rng(0).random((90, 30)).astype(np.float32)


def one_pixel(shape, row, col):
    X = torch.zeros(1, shape[0] * shape[1])
    X[0, row * shape[1] + col] = 1.0
    return X


# ---------------------------------------------------------------- affine_images
@settings(deadline=None, max_examples=30)
@given(dy=st.integers(-3, 3), dx=st.integers(-3, 3))
def test_whole_pixel_shift_moves_the_content(dy, dx):
    shape = (7, 9)
    out = affine_images(one_pixel(shape, 3, 4), shape, torch.tensor([[float(dy), float(dx)]]),
                        torch.zeros(1))
    expected = one_pixel(shape, 3 + dy, 4 + dx)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_no_shift_no_rotation_is_the_identity():
    X = torch.rand(5, 3 * 4 * 6)
    out = affine_images(X, (3, 4, 6), torch.zeros(5, 2), torch.zeros(5))
    torch.testing.assert_close(out, X, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(4, 4), (5, 5), (1, 6, 6)])
def test_quarter_turn_is_rot90_counter_clockwise(shape):
    X = torch.rand(2, int(np.prod(shape)))
    out = affine_images(X, shape, torch.zeros(2, 2), torch.full((2,), 90.0))
    images = X.view(2, *shape[-2:])
    torch.testing.assert_close(out.view(2, *shape[-2:]), torch.rot90(images, 1, (1, 2)),
                               atol=1e-5, rtol=0)


def test_half_turn_of_a_non_square_image_reverses_it():
    X = torch.arange(12.0).view(1, 12)
    out = affine_images(X, (3, 4), torch.zeros(1, 2), torch.tensor([180.0]))
    torch.testing.assert_close(out, X.flip(1), atol=1e-5, rtol=0)


def test_content_leaving_the_image_is_replaced_by_zeros():
    shape = (4, 4)
    out = affine_images(one_pixel(shape, 0, 0), shape, torch.tensor([[-1.0, 0.0]]),
                        torch.zeros(1))
    assert float(out.abs().sum()) == 0.0


def test_wrong_number_of_features_is_a_clear_error():
    with pytest.raises(ValueError, match=r"image_shape=\(3, 3\) needs 9 features"):
        affine_images(torch.zeros(2, 10), (3, 3), torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="image_shape must be"):
        affine_images(torch.zeros(2, 9), (9,), torch.zeros(2, 2), torch.zeros(2))


# ---------------------------------------------------------------- RandomAffine
def test_random_affine_is_reproducible_and_draws_per_sample():
    X = torch.rand(6, 64)
    augment = RandomAffine((8, 8), max_shift=0.25, max_rotation=30)
    a = augment(X, torch.Generator().manual_seed(1))
    b = augment(X, torch.Generator().manual_seed(1))
    c = augment(X, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)
    # the same image in two rows gets two different transformations
    twins = augment(X[:1].repeat(2, 1), torch.Generator().manual_seed(1))
    assert not torch.allclose(twins[0], twins[1])


def test_random_affine_with_zero_ranges_changes_nothing():
    X = torch.rand(4, 2 * 5 * 5)
    out = RandomAffine((2, 5, 5), max_shift=0.0, max_rotation=0.0)(X, torch.Generator())
    torch.testing.assert_close(out, X, atol=1e-6, rtol=0)


def test_random_affine_shifts_stay_within_max_shift():
    # a one-pixel image shifted by at most 0.2 * 10 = 2 pixels keeps its mass within
    # 2 pixels of where it was (bilinear weights spread it over neighbours only)
    shape = (10, 10)
    X = one_pixel(shape, 5, 5).repeat(200, 1)
    out = RandomAffine(shape, max_shift=0.2, max_rotation=0.0)(X, torch.Generator().manual_seed(0))
    mass = out.view(200, 10, 10)
    rows, cols = torch.arange(10.0).view(10, 1), torch.arange(10.0).view(1, 10)
    total = mass.sum(dim=(1, 2))
    torch.testing.assert_close(total, torch.ones(200), atol=1e-5, rtol=0)
    centre_row = (mass * rows).sum(dim=(1, 2))
    centre_col = (mass * cols).sum(dim=(1, 2))
    assert float((centre_row - 5).abs().max()) <= 2.0 + 1e-5
    assert float((centre_col - 5).abs().max()) <= 2.0 + 1e-5
    assert float((centre_row - 5).abs().max()) > 1.5  # and the range is used


@pytest.mark.parametrize("params, match", [
    ({"max_shift": 1.5}, "max_shift"),
    ({"max_rotation": -1}, "max_rotation"),
])
def test_random_affine_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        RandomAffine((4, 4), **params)(torch.zeros(1, 16), torch.Generator())


# ---------------------------------------------------------------- in the estimators
def test_estimator_pretrains_on_augmented_batches(images):
    plain = AEKMeans(**FAST).fit(images)
    augmented = AEKMeans(**FAST, augmentation=RandomAffine((6, 5))).fit(images)
    again = AEKMeans(**FAST, augmentation=RandomAffine((6, 5))).fit(images)
    rec = [[r["reconstruction"] for r in m.history_ if r["phase"] == "pretrain"]
           for m in (plain, augmented, again)]
    assert rec[1] != rec[0]  # other batches were reconstructed
    assert rec[1] == rec[2]  # deterministic with the seed
    np.testing.assert_array_equal(augmented.labels_, again.labels_)


def test_augmentation_sees_every_batch_and_the_generator(images):
    seen = []

    def record(X, generator):
        seen.append((X.shape, isinstance(generator, torch.Generator)))
        return X

    AEKMeans(**FAST, augmentation=record).fit(images)
    # one dry run on two rows, then 2 epochs of ceil(90 / 32) = 3 batches
    assert [shape[0] for shape, _ in seen] == [2] + [32, 32, 26] * 2
    assert all(is_gen for _, is_gen in seen)


def test_clustering_phase_trains_on_augmented_batches(images):
    calls = []

    def record(X, generator):
        calls.append(X.shape[0])
        return X

    DEC(**FAST, max_iter=2, tol=0.0, augmentation=record).fit(images)
    # dry run, 2 pretraining epochs and 2 clustering epochs of 3 batches each
    assert calls == [2] + [32, 32, 26] * 4
    plain = DEC(**FAST, max_iter=2, tol=0.0).fit(images)
    shifted = DEC(**FAST, max_iter=2, tol=0.0, augmentation=lambda X, g: X + 0.5)
    # the same pretraining as `plain` up to the shift of every input: compare the
    # clustering phases' losses, which see the shifted batches
    shifted.fit(images)
    loss = [[r["loss"] for r in m.history_ if r["phase"] == "cluster"] for m in (plain, shifted)]
    assert loss[0] != loss[1]


@pytest.mark.parametrize("name, augments_phase", [
    ("DEC", True), ("IDEC", True), ("DCEC", True), ("DeepClusterADMM", True),
    ("DeepClusterADMM:gmm", False), ("ConcreteKMeans", False), ("CenteringKM", False),
    ("DCN", False), ("DKM", False),
])
def test_which_clustering_phases_are_augmented(images, name, augments_phase):
    import skdeepcluster
    calls = []

    def record(X, generator):
        calls.append(X.shape[0])
        return X

    name, _, clustering = name.partition(":")
    cls = getattr(skdeepcluster, name)
    params = dict(FAST)
    if clustering:
        params["clustering"] = clustering
    if name == "DCEC":
        params = {"n_clusters": 3, "filters": (2, 2, 2), "pretrain_epochs": 2,
                  "batch_size": 32, "random_state": 0, "input_shape": (6, 5)}
    cls(**params, max_iter=2, augmentation=record).fit(images)
    pretraining = [2] + [32, 32, 26] * 2  # the dry run, 2 epochs of 3 batches
    assert calls[:len(pretraining)] == pretraining
    phase = calls[len(pretraining):]
    assert (len(phase) > 0) == augments_phase
    assert phase == [32, 32, 26] * (len(phase) // 3)


def test_per_sample_updates_see_the_samples_as_they_are(images):
    seen = []

    class RecordingDEC(DEC):
        def _after_step(self, state, idx, X_batch):
            seen.append((idx.clone(), X_batch.clone()))
            return super()._after_step(state, idx, X_batch)

    RecordingDEC(**FAST, max_iter=1, augmentation=lambda X, g: X + 1.0).fit(images)
    assert len(seen) == 3
    for idx, X_batch in seen:
        np.testing.assert_array_equal(X_batch.numpy(), images[idx.numpy()])


def test_identity_augmentation_gives_the_plain_fit(images):
    plain = DEC(**FAST, max_iter=2).fit(images)
    same = DEC(**FAST, max_iter=2, augmentation=lambda X, g: X).fit(images)
    np.testing.assert_array_equal(plain.labels_, same.labels_)
    np.testing.assert_array_equal(plain.cluster_centers_, same.cluster_centers_)


@pytest.mark.parametrize("augmentation, match", [
    (lambda X, g: X[:1], r"shape.*\(2, 30\).*returned a tensor of shape \(1, 30\)"),
    (lambda X, g: X.numpy(), "returned a ndarray"),
    (lambda X, g: X.double(), "float64"),
])
def test_wrong_augmentation_fails_before_training(images, augmentation, match):
    model = AEKMeans(**FAST, augmentation=augmentation)
    with pytest.raises(ValueError, match=match):
        model.fit(images)
    assert not hasattr(model, "history_")


def test_wrong_augmentation_fails_before_training_without_pretraining(images):
    ae = AEKMeans(**FAST).fit(images).autoencoder_
    model = DEC(**{**FAST, "pretrain_epochs": 0}, autoencoder=ae,
                augmentation=lambda X, g: X[:1])
    with pytest.raises(ValueError, match="must return a tensor of the batch's shape"):
        model.fit(images)
    assert not hasattr(model, "history_")


def test_image_shape_mismatch_fails_before_training(images):
    with pytest.raises(ValueError, match=r"needs 64 features"):
        AEKMeans(**FAST, augmentation=RandomAffine((8, 8))).fit(images)


def test_not_a_callable_is_rejected(images):
    with pytest.raises(ValueError,
                       match=r"augmentation.*must be None, a callable or a str among {.auto.}"):
        AEKMeans(**FAST, augmentation="shift").fit(images)


def test_clone_and_nested_parameters(images):
    model = AEKMeans(**FAST, augmentation=RandomAffine((6, 5), max_shift=0.2))
    assert model.get_params()["augmentation__max_shift"] == 0.2
    copy = clone(model)
    assert copy.augmentation is not model.augmentation
    assert copy.augmentation.get_params() == model.augmentation.get_params()
    search = GridSearchCV(model, {"augmentation__max_shift": [0.0, 0.2]}, cv=2,
                          scoring=lambda est, X, y=None: est.score(X)).fit(images)
    assert search.best_params_["augmentation__max_shift"] in (0.0, 0.2)


def test_cache_key_tells_augmentations_apart(images, tmp_path):
    assert augmentation_key(None) is None
    a = augmentation_key(RandomAffine((6, 5)))
    assert a == augmentation_key(RandomAffine((6, 5), max_shift=0.1))
    assert a != augmentation_key(RandomAffine((6, 5), max_shift=0.2))
    # with a cache: the augmented pretraining is neither taken for the plain one nor redone
    first = AEKMeans(**FAST, memory=str(tmp_path)).fit(images)
    aug = AEKMeans(**FAST, memory=str(tmp_path), augmentation=RandomAffine((6, 5)))
    aug.fit(images)
    assert not any(r.get("cached") for r in aug.history_)
    aug2 = clone(aug).fit(images)
    assert all(r.get("cached") for r in aug2.history_ if r["phase"] == "pretrain")
    np.testing.assert_array_equal(aug2.labels_, aug.labels_)
    assert not any(r.get("cached") for r in first.history_)


def test_docstring_examples_of_the_module_run():
    import doctest

    from skdeepcluster import augmentation

    result = doctest.testmod(augmentation,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0


def test_augmented_fit_under_bfloat16_precision(images):
    # under the CPU autocast the augmentation must still hand back float32 batches (the
    # dry run checks the dtype), and the fit stays deterministic
    params = {**FAST, "max_iter": 2, "precision": "bfloat16",
              "augmentation": RandomAffine((6, 5))}
    a, b = DEC(**params).fit(images), DEC(**params).fit(images)
    np.testing.assert_array_equal(a.labels_, b.labels_)


# ---------------------------------------------------------------- augmentation="auto"
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def square_images(n=120, side=16, seed=0):
    """``n`` blank ``side`` x ``side`` images, each with a bright 5 x 5 square somewhere."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, side, side), dtype=np.float32)
    for image, (i, j) in zip(X, rng.integers(2, side - 2, (n, 2))):
        image[i - 2:i + 3, j - 2:j + 3] = 1.0
    return X.reshape(n, side * side)


def test_detect_image_shape_finds_square_images_and_keeps_their_shape():
    assert detect_image_shape(square_images(side=16)) == (16, 16)
    assert detect_image_shape(square_images(side=20)) == (20, 20)
    # scale and shift change no correlation
    assert detect_image_shape(3.0 * square_images() - 1.0) == (16, 16)
    # a blank border (constant columns) is left out
    padded = np.pad(square_images().reshape(-1, 16, 16), ((0, 0), (2, 2), (2, 2)))
    assert detect_image_shape(padded.reshape(-1, 400)) == (20, 20)


def test_detect_image_shape_rejects_what_is_not_an_image():
    rng = np.random.default_rng(0)
    images = square_images()
    # the same pixels in another column order are no longer neighbours
    assert detect_image_shape(images[:, rng.permutation(256)]) is None
    # too small (8 x 8), or not a square number of features
    assert detect_image_shape(square_images(side=8)) is None
    assert detect_image_shape(images[:, :250]) is None
    assert detect_image_shape(square_images(side=8), min_side=8) == (8, 8)
    # independent features; one common factor (every pair correlated alike)
    assert detect_image_shape(rng.normal(size=(300, 256))) is None
    factor = rng.normal(size=(300, 1)) + 0.3 * rng.normal(size=(300, 256))
    assert detect_image_shape(factor) is None
    # a smooth 1-D signal of 256 values, cut into 16 rows: within a row the next value
    # is closer than the one a row below
    t = np.linspace(0.0, 1.0, 256)
    freq, phase = rng.uniform(0.5, 3.0, (2, 300, 1))
    assert detect_image_shape(np.sin(2 * np.pi * (freq * t + phase))) is None
    # too few varying columns to tell; a constant matrix
    assert detect_image_shape(np.zeros((50, 256))) is None
    with pytest.raises(ValueError, match="2-D"):
        detect_image_shape(np.zeros(256))


@pytest.mark.skipif(not (DATA_DIR / "usps.npz").exists(), reason="needs ../shared/data")
@pytest.mark.parametrize("name, shape", [("usps", (16, 16)), ("mnist_test", (28, 28))])
def test_detect_image_shape_on_the_shared_image_sets(name, shape):
    X = np.load(DATA_DIR / f"{name}.npz")["X"]
    assert detect_image_shape(X) == shape
    assert detect_image_shape(X[:, np.random.default_rng(0).permutation(X.shape[1])]) is None


@pytest.mark.skipif(not (DATA_DIR / "segment.npz").exists(), reason="needs ../shared/data")
def test_auto_leaves_the_tabular_and_8x8_sets_alone():
    from sklearn.datasets import load_digits
    assert detect_image_shape(load_digits().data) is None
    for name in ["pendigits", "segment", "vehicle"]:
        assert detect_image_shape(np.load(DATA_DIR / f"{name}.npz")["X"]) is None


def test_auto_augments_images_and_only_images():
    images = square_images()
    fit = AEKMeans(**FAST).fit(images)
    assert isinstance(fit.augmentation_, RandomAffine)
    assert fit.augmentation_.get_params() == RandomAffine((16, 16)).get_params()
    assert AEKMeans(**FAST).fit(images[:, :250]).augmentation_ is None
    assert AEKMeans(**FAST, augmentation=None).fit(images).augmentation_ is None
    mine = RandomAffine((16, 16), max_shift=0.2)
    assert AEKMeans(**FAST, augmentation=mine).fit(images).augmentation_ is mine


def test_auto_is_the_explicit_random_affine_bit_for_bit():
    images = square_images()
    auto = DEC(**FAST, max_iter=2).fit(images)
    explicit = DEC(**FAST, max_iter=2, augmentation=RandomAffine((16, 16))).fit(images)
    plain = DEC(**FAST, max_iter=2, augmentation=None).fit(images)
    np.testing.assert_array_equal(auto.cluster_centers_, explicit.cluster_centers_)
    assert not np.array_equal(auto.cluster_centers_, plain.cluster_centers_)
    # one cache entry for both spellings
    assert (augmentation_key(auto.augmentation_)
            == augmentation_key(explicit.augmentation_))


def test_dcec_auto_follows_input_shape():
    from skdeepcluster import DCEC
    images = square_images(n=40)
    small = {"n_clusters": 2, "filters": (2, 2, 2), "pretrain_epochs": 1, "max_iter": 1,
             "batch_size": 20, "random_state": 0}
    assert DCEC(**small).fit(images).augmentation_.image_shape == (16, 16)
    assert DCEC(**small, input_shape=(1, 16, 16)).fit(images).augmentation_.image_shape \
        == (1, 16, 16)
    # the user says 16 x 16 even where the pixels do not look like it
    shuffled = images[:, np.random.default_rng(0).permutation(256)]
    assert DCEC(**small, input_shape=(16, 16)).fit(shuffled).augmentation_ is not None
    assert DCEC(**small).fit(shuffled).augmentation_ is None
    # 8 x 8 images and a 1-row signal are not augmented
    assert DCEC(**small, input_shape=(8, 8)).fit(square_images(40, 8)).augmentation_ is None
    assert DCEC(**small, input_shape=(1, 256)).fit(images).augmentation_ is None

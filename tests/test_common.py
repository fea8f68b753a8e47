"""scikit-learn's estimator checks for every public estimator of the package.

Fast parameters and expected failures live in one table each; every expected failure carries
its reason.
"""

import inspect

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import skdeepcluster
from skdeepcluster import (
    DCEC,
    DCN,
    DEC,
    DKM,
    IDEC,
    AEKMeans,
    CenteringKM,
    ConcreteKMeans,
    DCTLKMeans,
    DeepClusterADMM,
    ShallowConcreteKMeans,
)

#: Small networks and few epochs for the deep estimators.
_DEEP_FAST = {"n_clusters": 2, "hidden_dims": (16,), "n_components": 2, "pretrain_epochs": 10,
              "batch_size": 64, "n_init": 2, "random_state": 0}

#: Parameters that keep each estimator fast in the checks (small data, few epochs).
FAST_PARAMS = {
    ShallowConcreteKMeans: {"n_clusters": 2, "n_init": 2, "max_iter": 5, "random_state": 0},
    AEKMeans: _DEEP_FAST,
    ConcreteKMeans: {**_DEEP_FAST, "max_iter": 5},
    DEC: {**_DEEP_FAST, "max_iter": 3, "update_interval": 2},
    IDEC: {**_DEEP_FAST, "max_iter": 3, "update_interval": 2},
    # DCEC with its own convolutional autoencoder (default filters): the checks' 1 to 20
    # tabular features are read as one-row images (1-D convolutions), 4, 9 and 16 as squares.
    DCEC: {**{k: v for k, v in _DEEP_FAST.items() if k != "hidden_dims"},
           "max_iter": 3, "update_interval": 2},
    DKM: {**_DEEP_FAST, "max_iter": 3},
    CenteringKM: {**_DEEP_FAST, "max_iter": 3},
    DCN: {**_DEEP_FAST, "max_iter": 3},
    DeepClusterADMM: {**_DEEP_FAST, "max_iter": 3},
    # The checks' data have 1 to 20 features: one 1-D filter of width 1 without pooling
    # reads any of them (the convolutional geometry is tested in test_dctl.py).
    DCTLKMeans: {"n_clusters": 2, "n_filters": (1,), "kernel_size": 1, "pool_size": 1,
                 "max_iter": 3, "n_init": 2, "batch_size": 64, "random_state": 0},
}

#: Further configurations checked as well (other models behind one class).
EXTRA_INSTANCES = [
    (DeepClusterADMM, {**_DEEP_FAST, "max_iter": 3, "clustering": "gmm"}),
]

_SAMPLE_WEIGHT_REASON = (
    "sample_weight is not equivalent to removing/repeating samples: the weighted and the "
    "repeated data sets consume the random stream differently (k-means++ draws, shuffled "
    "mini-batches, Gumbel noise), so the stochastic solver may land on another local minimum. "
    "scikit-learn lists the same two expected failures for its own KMeans, for the same reason."
)

_SPARSE_PROBA_REASON = (
    "scikit-learn's sparse-input check assumes that an estimator with predict_proba is a "
    "classifier and reads tags.classifier_tags.multi_class, which is None for a clusterer "
    "(AttributeError inside the check). fit, predict and predict_proba on CSR input work and "
    "are tested in test_deep.py, test_dec.py, test_kmeans_family.py and test_admm.py "
    "(test_sparse_input_matches_dense)."
)

#: Checks each estimator is known to fail, with the reason.
EXPECTED_FAILED_CHECKS = {
    ShallowConcreteKMeans: {
        "check_sample_weight_equivalence_on_dense_data": _SAMPLE_WEIGHT_REASON,
        "check_sample_weight_equivalence_on_sparse_data": _SAMPLE_WEIGHT_REASON,
    },
}

#: Every estimator with ``predict_proba`` (a method with soft assignments, or
#: DeepClusterADMM with ``clustering="gmm"``) fails the sparse-input checks for that reason.
_PREDICT_PROBA_FAILED_CHECKS = {
    "check_estimator_sparse_array": _SPARSE_PROBA_REASON,
    "check_estimator_sparse_matrix": _SPARSE_PROBA_REASON,
}


def _expected_failures(estimator):
    expected = dict(EXPECTED_FAILED_CHECKS.get(type(estimator), {}))
    if hasattr(estimator, "predict_proba"):
        expected.update(_PREDICT_PROBA_FAILED_CHECKS)
    return expected


def _public_estimators():
    return [
        obj
        for name in skdeepcluster.__all__
        if inspect.isclass(obj := getattr(skdeepcluster, name))
        and issubclass(obj, BaseEstimator)
    ]


def test_every_public_estimator_has_fast_params():
    assert set(_public_estimators()) == set(FAST_PARAMS)


@parametrize_with_checks(
    [cls(**params) for cls, params in [*FAST_PARAMS.items(), *EXTRA_INSTANCES]],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", list(EXPECTED_FAILED_CHECKS))
def test_expected_failures_have_reasons(cls):
    for check_name, reason in EXPECTED_FAILED_CHECKS[cls].items():
        assert check_name.startswith("check_")
        assert len(reason) > 20
    assert set(EXPECTED_FAILED_CHECKS) <= set(FAST_PARAMS)

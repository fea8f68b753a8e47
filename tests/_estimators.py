"""Every deep estimator with short, small settings: a helper of the test modules (not a test)."""

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
)


def deep_estimators(fast, *, max_iter, update_interval, dcec_max_iter, dctl_filters=(1,)):
    """``{name: (class, params)}`` for every deep estimator (two for DeepClusterADMM, its
    k-means and GMM variants), from the shared settings ``fast`` (a dict with
    ``n_clusters``, ``hidden_dims``, ``n_components``, ``pretrain_epochs``, ``batch_size``,
    ``n_init`` and ``random_state``)."""
    without_hidden = {k: v for k, v in fast.items() if k != "hidden_dims"}
    return {
        "AEKMeans": (AEKMeans, fast),
        "ConcreteKMeans": (ConcreteKMeans, {**fast, "max_iter": max_iter}),
        "DEC": (DEC, {**fast, "max_iter": max_iter, "update_interval": update_interval}),
        "IDEC": (IDEC, {**fast, "max_iter": max_iter, "update_interval": update_interval}),
        "DCEC": (DCEC, {**without_hidden, "max_iter": dcec_max_iter,
                        "update_interval": update_interval}),
        "DKM": (DKM, {**fast, "max_iter": max_iter}),
        "CenteringKM": (CenteringKM, {**fast, "max_iter": max_iter}),
        "DCN": (DCN, {**fast, "max_iter": max_iter}),
        "DeepClusterADMM": (DeepClusterADMM, {**fast, "max_iter": max_iter}),
        "DeepClusterADMM-gmm": (DeepClusterADMM, {**fast, "max_iter": max_iter,
                                                  "clustering": "gmm"}),
        "DCTLKMeans": (DCTLKMeans, {"n_clusters": fast["n_clusters"], "n_filters": dctl_filters,
                                    "kernel_size": 1, "pool_size": 1, "max_iter": max_iter,
                                    "n_init": fast["n_init"], "batch_size": fast["batch_size"],
                                    "random_state": fast["random_state"]}),
    }

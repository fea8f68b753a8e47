"""
=============================================
DKM, CenteringKM and DCN from one pretraining
=============================================

Pretrain an autoencoder once with :class:`skdeepcluster.AEKMeans` on scikit-learn's
handwritten digits, then train the same network with the three methods of the deep
k-means family: :class:`skdeepcluster.DKM` (soft k-means term, centres trained by
gradient), :class:`skdeepcluster.CenteringKM` (centering loss, k-means refit of the
centres after every epoch) and :class:`skdeepcluster.DCN` (hard assignments, running-mean
centre updates after every mini-batch).

Each method runs twice: with the package's default scale-invariant clustering term and
with the paper's term (``scale_invariant=False`` and the paper's ``lam``). The script
prints ACC/NMI and how much the embedding's total variance changed: the papers' terms can
be lowered by shrinking every code, the scale-invariant ones cannot. Small settings (50
pretraining epochs, 30 clustering epochs) keep it to a few minutes on a 2-core CPU.
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import normalized_mutual_info_score

from skdeepcluster import DCN, DKM, AEKMeans, CenteringKM
from skdeepcluster.metrics import cluster_accuracy

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)  # pixels in [0, 1]

# %%
# One pretraining, six clusterings
# --------------------------------
# ``autoencoder=baseline.autoencoder_`` with ``pretrain_epochs=0`` starts every method
# from the pretrained weights.
baseline = AEKMeans(n_clusters=10, pretrain_epochs=50, random_state=0).fit(X)
start = {"autoencoder": baseline.autoencoder_, "pretrain_epochs": 0, "random_state": 0,
         "max_iter": 30}
variants = {
    "DKM": (DKM, {"lam": 1.0}),
    "CenteringKM": (CenteringKM, {"lam": 10.0}),
    "DCN": (DCN, {"lam": 2.0}),
}


def total_variance(model):
    return float(model.transform(X).var(axis=0).sum())


print(f"{'method':28s} {'ACC':>6s} {'NMI':>6s} {'total variance':>15s}")
print(f"{'AEKMeans':28s} {cluster_accuracy(y, baseline.labels_):6.3f} "
      f"{normalized_mutual_info_score(y, baseline.labels_):6.3f} "
      f"{total_variance(baseline):15.2f}")
for name, (cls, paper) in variants.items():
    for label, params in [("scale-invariant (default)", {}),
                          ("paper's term", {"scale_invariant": False, **paper})]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a collapse is a result
            model = cls(n_clusters=10, **start, **params).fit(X)
        print(f"{name + ', ' + label:28.28s} {cluster_accuracy(y, model.labels_):6.3f} "
              f"{normalized_mutual_info_score(y, model.labels_):6.3f} "
              f"{total_variance(model):15.2f}")

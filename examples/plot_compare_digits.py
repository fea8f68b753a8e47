"""
==========================================
Every k-means-type method on the digits
==========================================
Cluster scikit-learn's handwritten digits (1,797 8x8 images, 10 classes) with
:class:`sklearn.cluster.KMeans`, its drop-in :class:`skdeepcluster.ShallowConcreteKMeans`,
and the deep estimators that start from a pretrained autoencoder:
:class:`skdeepcluster.AEKMeans` (k-means on the embedding), :class:`skdeepcluster.ConcreteKMeans`,
:class:`skdeepcluster.DEC`, :class:`skdeepcluster.IDEC` and :class:`skdeepcluster.DCEC`
(which reads each row as an 8x8 image). The deep estimators share one pretraining through
``memory`` (the MLP ones; DCEC pretrains its own convolutional network) and use 50
pretraining epochs instead of the default 300 to keep the example to about two minutes on
a 2-core CPU, so their figures are a little below the defaults' (user guide,
"Pretraining"). One seed only: on this data set the seed moves a deep method's accuracy by
several points (see ``benchmarks/results/pretrain_defaults.md``).
"""

import tempfile
import time

from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from skdeepcluster import DCEC, DEC, IDEC, AEKMeans, ConcreteKMeans, ShallowConcreteKMeans
from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import cluster_accuracy

X, y, image_shape = load_dataset("digits")  # pixels scaled to [0, 1]

# %%
# Fit every method
# ----------------
cache = tempfile.mkdtemp()
deep = {"n_clusters": 10, "pretrain_epochs": 50, "random_state": 0, "memory": cache}
models = {
    "KMeans": KMeans(10, n_init=10, random_state=0),
    "ShallowConcreteKMeans": ShallowConcreteKMeans(10, n_init=10, random_state=0),
    "AEKMeans": AEKMeans(**deep),
    "ConcreteKMeans": ConcreteKMeans(**deep),
    "DEC": DEC(**deep),
    "IDEC": IDEC(**deep),
    "DCEC": DCEC(**deep, input_shape=image_shape),
}
results = {}
for name, model in models.items():
    start = time.perf_counter()
    labels = model.fit(X).labels_
    results[name] = (cluster_accuracy(y, labels), normalized_mutual_info_score(y, labels),
                     time.perf_counter() - start)
    print(f"{name:22s} ACC {results[name][0]:.3f}  NMI {results[name][1]:.3f}  "
          f"{results[name][2]:5.1f} s")

# %%
# Accuracy and NMI side by side
# -----------------------------
# The dashed line is KMeans on the pixels: a deep method is worth its cost where it
# clears that line.
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

if plt is not None:
    import numpy as np

    names = list(results)
    acc = np.array([results[n][0] for n in names])
    nmi = np.array([results[n][1] for n in names])
    rows = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh(rows - 0.2, acc, height=0.4, label="ACC")
    ax.barh(rows + 0.2, nmi, height=0.4, label="NMI")
    ax.axvline(results["KMeans"][0], color="black", linestyle="--", linewidth=1)
    ax.set_yticks(rows, names)
    ax.invert_yaxis()
    ax.set_xlim(0.5, 1.0)
    ax.legend(loc="lower right")
    ax.set_title("digits, seed 0")
    fig.tight_layout()
    plt.show()

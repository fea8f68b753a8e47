"""
=====================================================
ShallowConcreteKMeans as a drop-in for sklearn KMeans
=====================================================

Fit :class:`sklearn.cluster.KMeans` and
:class:`skdeepcluster.ShallowConcreteKMeans` with the same arguments on
synthetic Gaussian blobs, compare their k-means cost (``inertia_``) and
measure how much the two partitions agree with the adjusted Rand index
(1.0 means identical up to renaming the clusters).

If matplotlib is installed (``pip install -e ".[examples]"``) both clusterings
are drawn side by side; without it the script only prints the numbers.
"""

import time

from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from skdeepcluster import ShallowConcreteKMeans

N_CLUSTERS = 5
X, y = make_blobs(n_samples=1000, centers=N_CLUSTERS, cluster_std=1.2, random_state=42)

# %%
# Fit both estimators with identical arguments
# --------------------------------------------
models = {
    "KMeans (sklearn)": KMeans(n_clusters=N_CLUSTERS, n_init=3, random_state=0),
    "ShallowConcreteKMeans": ShallowConcreteKMeans(n_clusters=N_CLUSTERS, n_init=3, random_state=0),
}
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X)
    elapsed = time.perf_counter() - start
    print(
        f"{name:<22} inertia = {model.inertia_:10.2f}   "
        f"ARI vs. true blobs = {adjusted_rand_score(y, model.labels_):.3f}   "
        f"fit {elapsed:.2f} s"
    )

km, ckm = models.values()
print(f"ARI between the two clusterings: {adjusted_rand_score(km.labels_, ckm.labels_):.3f}")

# %%
# Plot the two clusterings (optional)
# -----------------------------------
try:
    import matplotlib.pyplot as plt
except ImportError:
    print("matplotlib is not installed; skipping the plot")
else:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
    for ax, (name, model) in zip(axes, models.items()):
        ax.scatter(X[:, 0], X[:, 1], c=model.labels_, s=6, cmap="tab10")
        centers = model.cluster_centers_
        ax.scatter(centers[:, 0], centers[:, 1], c="black", marker="x", s=80, linewidths=2)
        ax.set_title(f"{name}\ninertia = {model.inertia_:.1f}")
    fig.tight_layout()
    plt.show()

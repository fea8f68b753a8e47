"""
=====================================================
Choosing lam and tau without labels
=====================================================
``GridSearchCV`` can tune :class:`skdeepcluster.ConcreteKMeans` without ground truth.
Without ``scoring`` it ranks the candidates by the estimator's ``score``: minus the
within-cluster sum of squares of the predicted clusters *in the input space*, which
measures every candidate with the same ruler whatever ``lam`` and ``tau`` did to the
learned embedding. :func:`skdeepcluster.metrics.silhouette_scorer` is another label-free
criterion. ``memory=`` caches the pretrained network, so the search pretrains once per
fold instead of once per candidate.

Digits has labels, so the example also shows the accuracy of every candidate next to the
label-free scores, to see whether they agree. A small network and 50 pretraining epochs
keep it to about a minute on a 2-core CPU.
"""

import tempfile

import numpy as np
from sklearn.model_selection import GridSearchCV

from skdeepcluster import ConcreteKMeans
from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import accuracy_scorer, silhouette_scorer

X, y, _ = load_dataset("digits")
cache = tempfile.mkdtemp()
base = ConcreteKMeans(n_clusters=10, hidden_dims=(256, 256), pretrain_epochs=50,
                      random_state=0, memory=cache)
grid = {"lam": [1.0, 3.0, 10.0], "tau": [0.5, 1.0, 2.0]}

# %%
# The search: no labels are passed to ``fit``
# -------------------------------------------
# ``scoring`` holds the two label-free criteria; ``refit="score"`` keeps the model chosen
# by the default one. The accuracy scorer is evaluated on the same folds only to compare
# (it needs ``y``, so this search is given ``y`` purely for that column).
search = GridSearchCV(
    base, grid, cv=2, refit="score",
    scoring={"score": lambda est, X_, y_=None: est.score(X_),
             "silhouette": silhouette_scorer, "accuracy": accuracy_scorer},
).fit(X, y)
print("chosen without labels:", search.best_params_)
res = search.cv_results_
for i, params in enumerate(res["params"]):
    print(f"lam={params['lam']:<5g} tau={params['tau']:<4g} "
          f"score {res['mean_test_score'][i]:9.1f}  silhouette {res['mean_test_silhouette'][i]:.3f}"
          f"  accuracy {res['mean_test_accuracy'][i]:.3f}")

# %%
# The criteria over the grid
# --------------------------
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

if plt is not None:
    shape = (len(grid["lam"]), len(grid["tau"]))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, title in zip(axes, ["score", "silhouette", "accuracy"],
                              ["score (no labels)", "silhouette (no labels)",
                               "accuracy (labels, for comparison)"]):
        # cv_results_ lists the candidates with lam varying slowest (sorted keys).
        values = np.asarray(res[f"mean_test_{key}"]).reshape(shape)
        image = ax.imshow(values, cmap="viridis")
        ax.set_xticks(range(shape[1]), [f"tau={t:g}" for t in grid["tau"]])
        ax.set_yticks(range(shape[0]), [f"lam={v:g}" for v in grid["lam"]])
        ax.set_title(title)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    plt.show()

"""
=============================================================
Searching clustering parameters without pretraining each time
=============================================================

A grid search over the clustering parameters of a deep estimator (here ``lam`` and
``tau`` of :class:`skdeepcluster.ConcreteKMeans`) fits the same autoencoder on the same
training fold once per candidate. With ``memory=`` (a folder or a
:class:`joblib.Memory`, as :class:`sklearn.pipeline.Pipeline` takes), the pretrained network
is cached, keyed on the data, the untrained network, the pretraining parameters and the
seed: a 2 x 2 grid with 2 folds and a refit pretrains 3 times instead of 9.

The example uses scikit-learn's digits, a small network and a short pretraining so that
it runs in well under a minute on a CPU; ``history_`` tells which fits loaded their
network from the cache.
"""

import tempfile
import time

from sklearn.model_selection import GridSearchCV

from skdeepcluster import ConcreteKMeans
from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import accuracy_scorer

X, y, _ = load_dataset("digits")  # 1797 images of 8x8 pixels in [0, 1]

# %%
# One search with the cache, one without
# --------------------------------------
params = {"n_clusters": 10, "hidden_dims": (256, 256), "pretrain_epochs": 100,
          "max_iter": 10, "random_state": 0}
grid = {"lam": [1.0, 3.0], "tau": [0.5, 1.0]}

with tempfile.TemporaryDirectory() as cache:
    for memory in (None, cache):
        search = GridSearchCV(ConcreteKMeans(memory=memory, **params), grid,
                              scoring=accuracy_scorer, cv=2)
        start = time.perf_counter()
        search.fit(X, y)
        seconds = time.perf_counter() - start
        print(f"memory={'folder' if memory else None!s:<7} {seconds:5.1f} s   "
              f"best {search.best_params_}  ACC {search.best_score_:.3f}")

    # %%
    # Another estimator on the same network
    # -------------------------------------
    # The search's refit pretrained on all of X and stored the network. Any estimator
    # with the same network, pretraining parameters and seed now starts from it: its
    # pretraining records in ``history_`` say ``cached=True``.
    model = ConcreteKMeans(memory=cache, **{**params, "lam": 10.0}).fit(X)
    records = [r for r in model.history_ if r["phase"] == "pretrain"]
    print(f"{len(records)} pretraining epochs, loaded from the cache: "
          f"{all(r.get('cached', False) for r in records)}")

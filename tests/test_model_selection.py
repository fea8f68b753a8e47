"""Model selection without labels on real data (slow: run with ``pytest -m slow``)."""

import pytest
from sklearn.model_selection import GridSearchCV

from skdeepcluster import ConcreteKMeans
from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import cluster_accuracy


@pytest.mark.slow
def test_grid_search_without_scoring_picks_a_good_candidate_on_digits(tmp_path):
    # GridSearchCV without ``scoring`` ranks by score() (minus the input-space
    # within-cluster sum of squares). Its pick must be within 0.02 ACC of the best
    # candidate's, each candidate fitted on all of digits with the default parameters.
    # The recipe is pinned: pretrain="auto" gives the half-size folds (1 200 steps) Adam and
    # the full-data refit (2 400 steps) SGD, so the search would rank candidates under
    # another recipe than the one it refits (User Guide, "Pretraining").
    X, y, _ = load_dataset("digits")
    grid = {"lam": [1.0, 10.0], "tau": [0.5, 1.0]}
    base = ConcreteKMeans(10, pretrain="adam", random_state=0, memory=str(tmp_path))
    search = GridSearchCV(base, grid, cv=2).fit(X)
    accuracy = {}
    for lam in grid["lam"]:
        for tau in grid["tau"]:  # the refit's pretraining is cached: one per candidate phase
            model = ConcreteKMeans(10, lam=lam, tau=tau, pretrain="adam", random_state=0,
                                   memory=str(tmp_path)).fit(X)
            accuracy[lam, tau] = cluster_accuracy(y, model.labels_)
    best = search.best_params_
    picked = accuracy[best["lam"], best["tau"]]
    assert picked >= max(accuracy.values()) - 0.02, (best, accuracy)
    assert cluster_accuracy(y, search.best_estimator_.labels_) == pytest.approx(picked)

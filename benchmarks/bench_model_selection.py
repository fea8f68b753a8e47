"""Label-free model selection: does a criterion computed without labels pick a good candidate?

For every candidate of a grid over an estimator's parameters, fit it on the whole data set
(one ``memory`` cache per seed, so the network is pretrained once) and record its accuracy
next to the label-free criteria of ``skdeepcluster.metrics``: the estimator's ``score``
(minus the within-cluster sum of squares in the input space), the silhouette and the
Calinski-Harabasz index, both in the input space, and minus the latent-space inertia
(``inertia_``, what ``score`` returned before this criterion). ``--table`` prints, per seed, each
criterion's pick and how far its accuracy is from the best candidate's.

Examples
--------
::

    python benchmarks/bench_model_selection.py --dataset digits --seeds 0 1 2 \
        --grid '{"lam": [1.0, 3.0, 10.0], "tau": [0.5, 1.0, 2.0]}' --output runs.jsonl
    python benchmarks/bench_model_selection.py --dataset digits --seeds 0 1 2 --search 2 \
        --output runs.jsonl
    python benchmarks/bench_model_selection.py --table runs.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_pretrain import emit

CRITERIA = ("score", "silhouette", "calinski_harabasz", "latent_score")


def run(dataset, seed, estimator, grid, output):
    import skdeepcluster
    from skdeepcluster.datasets import load_dataset
    from skdeepcluster.metrics import (
        calinski_harabasz_scorer,
        cluster_accuracy,
        silhouette_scorer,
    )

    X, y, _ = load_dataset(dataset)
    k = len(np.unique(y))
    cls = getattr(skdeepcluster, estimator)
    names = sorted(grid)
    with tempfile.TemporaryDirectory() as cache:
        for values in itertools.product(*(grid[n] for n in names)):
            params = dict(zip(names, values))
            start = time.perf_counter()
            model = cls(k, random_state=seed, memory=cache, **params).fit(X)
            labels = model.predict(X)
            record = {"dataset": dataset, "seed": seed, "estimator": estimator,
                      "params": params, "acc": cluster_accuracy(y, labels),
                      "clusters_used": len(np.unique(labels)),
                      "score": model.score(X),
                      "silhouette": silhouette_scorer(model, X),
                      "calinski_harabasz": calinski_harabasz_scorer(model, X),
                      # what score() returned before: minus the latent-space inertia
                      "latent_score": -float(model.inertia_),
                      "seconds": time.perf_counter() - start}
            emit(record, output)


def search(dataset, seed, estimator, grid, cv, output):
    """GridSearchCV without ``scoring`` (the estimator's ``score``): which candidate it picks."""
    from sklearn.model_selection import GridSearchCV

    import skdeepcluster
    from skdeepcluster.datasets import load_dataset

    X, y, _ = load_dataset(dataset)
    cls = getattr(skdeepcluster, estimator)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        found = GridSearchCV(cls(len(np.unique(y)), random_state=seed, memory=cache), grid,
                             cv=cv).fit(X)
    record = {"dataset": dataset, "seed": seed, "estimator": estimator, "search_cv": cv,
              "best_params": found.best_params_, "best_score": float(found.best_score_),
              "seconds": time.perf_counter() - start}
    emit(record, output)


def table(path):
    records = [json.loads(line) for line in open(path)]
    searches = [r for r in records if "search_cv" in r]
    records = [r for r in records if "search_cv" not in r]
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["estimator"], r["seed"]), []).append(r)
    print("| data | estimator | seed | candidates | best ACC | "
          + " | ".join(f"{c}: pick's ACC (gap)" for c in CRITERIA) + " |")
    print("|---|---|---|---|---|" + "---|" * len(CRITERIA))
    for (dataset, estimator, seed), rows in sorted(groups.items()):
        best = max(r["acc"] for r in rows)
        cells = []
        for c in CRITERIA:
            if not all(c in r for r in rows):
                cells.append("—")
                continue
            pick = max(rows, key=lambda r: r[c])
            cells.append(f"{pick['acc']:.3f} ({best - pick['acc']:.3f})")
        print(f"| {dataset} | {estimator} | {seed} | {len(rows)} | {best:.3f} | "
              + " | ".join(cells) + " |")
    if searches:
        print()
        print("| data | estimator | seed | GridSearchCV cv | best_params_ | its ACC (whole "
              "data) | gap to best candidate | seconds |")
        print("|---|---|---|---|---|---|---|---|")
    for s in searches:
        rows = groups.get((s["dataset"], s["estimator"], s["seed"]), [])
        acc = next((r["acc"] for r in rows if r["params"] == s["best_params"]), float("nan"))
        best = max((r["acc"] for r in rows), default=float("nan"))
        print(f"| {s['dataset']} | {s['estimator']} | {s['seed']} | {s['search_cv']} | "
              f"{s['best_params']} | {acc:.3f} | {best - acc:.3f} | {s['seconds']:.0f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--estimator", default="ConcreteKMeans")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--grid", default='{"lam": [1.0, 3.0, 10.0], "tau": [0.5, 1.0, 2.0]}')
    parser.add_argument("--search", type=int, default=None, metavar="CV",
                        help="run GridSearchCV(cv=CV) without scoring instead")
    parser.add_argument("--output", default=None)
    parser.add_argument("--table", default=None)
    args = parser.parse_args(argv)
    if args.table:
        return table(args.table)
    for seed in args.seeds:
        if args.search:
            search(args.dataset, seed, args.estimator, json.loads(args.grid), args.search,
                   args.output)
            continue
        run(args.dataset, seed, args.estimator, json.loads(args.grid), args.output)
    return None


if __name__ == "__main__":
    main()

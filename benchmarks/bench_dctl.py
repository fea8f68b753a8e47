"""DCTLKMeans against k-means on the raw pixels and against its "piecemeal" variant.

The DCTL paper's ablation (seed paper 002, Tables 1-2) compares the joint method with
"piecemeal" transform learning: the same transform learned without the k-means term
(``mu=0``), then k-means on its codes. This script runs, per data set and seed:

* ``KMeans``: scikit-learn's KMeans (``n_init=10``) on the pixels (scaled to [0, 1]);
* ``DCTLKMeans``: the estimator with its defaults (2-D filters through ``input_shape``);
* ``piecemeal``: ``DCTLKMeans(mu=0)`` then KMeans (``n_init=10``) on ``transform(X)``;
* the same two with any extra configurations given by ``--configs``.

It prints one JSON line per run (ACC, NMI, seconds, seconds per outer iteration) and,
with ``--table``, a Markdown table of a JSON-lines file.

Examples
--------
::

    python benchmarks/bench_dctl.py --datasets usps mnist_test --seeds 0 1 2 \\
        --output dctl.jsonl
    python benchmarks/bench_dctl.py --datasets usps --seeds 0 \\
        --configs '{"n_filters": [8, 8], "kernel_size": 5}'
    python benchmarks/bench_dctl.py --table dctl.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from skdeepcluster import DCTLKMeans
from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import cluster_accuracy


def emit(rec, output):
    line = json.dumps(rec)
    print(line, flush=True)
    if output:
        with open(output, "a") as fh:
            fh.write(line + "\n")


def run(name, seed, configs, output):
    X, y, shape = load_dataset(name)
    k = len(np.unique(y))
    base = {"dataset": name, "rows": len(X), "seed": seed}
    start = time.perf_counter()
    km = KMeans(k, n_init=10, random_state=seed).fit(X)
    emit({**base, "config": "KMeans", "acc": cluster_accuracy(y, km.labels_),
          "nmi": normalized_mutual_info_score(y, km.labels_),
          "seconds": time.perf_counter() - start}, output)
    for cfg in configs:
        tag = json.dumps(cfg) if cfg else "defaults"
        for variant in ("DCTLKMeans", "piecemeal"):
            params = {**cfg, **({"mu": 0.0} if variant == "piecemeal" else {})}
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = DCTLKMeans(k, input_shape=shape, random_state=seed, device="cpu",
                                   **params).fit(X)
                labels = model.labels_
                if variant == "piecemeal":
                    labels = KMeans(k, n_init=10, random_state=seed).fit_predict(
                        model.transform(X))
            seconds = time.perf_counter() - start
            outer = [r["seconds"] for r in model.history_ if r["phase"] == "cluster"]
            emit({**base, "config": f"{variant} {tag}", "acc": cluster_accuracy(y, labels),
                  "nmi": normalized_mutual_info_score(y, labels), "seconds": seconds,
                  "n_iter": model.n_iter_,
                  "seconds_per_iteration": float(np.median(outer)) if outer else None},
                 output)


def table(path):
    rows = [json.loads(line) for line in open(path)]
    groups = defaultdict(dict)
    for r in rows:
        groups[(r["dataset"], r["config"])][r["seed"]] = r
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        seeds = sorted({r["seed"] for r in rows if r["dataset"] == dataset})
        kmeans = groups[(dataset, "KMeans")]
        print(f"\n{dataset}, seeds {seeds}: ACC per seed\n")
        print("| method | " + " | ".join(f"seed {s}" for s in seeds)
              + " | mean | seeds above KMeans | NMI mean | iterations | s / iteration |")
        print("|---" * (len(seeds) + 6) + "|")
        for (ds, config), runs in groups.items():
            if ds != dataset:
                continue
            accs = [runs[s]["acc"] if s in runs else float("nan") for s in seeds]
            above = sum(1 for s in seeds if s in runs and config != "KMeans"
                        and runs[s]["acc"] > kmeans.get(s, {}).get("acc", 1.0))
            its = [runs[s].get("n_iter") for s in seeds if s in runs]
            spi = [runs[s].get("seconds_per_iteration") for s in seeds if s in runs]
            spi = [v for v in spi if v is not None]
            print(f"| {config} | " + " | ".join(f"{a:.3f}" for a in accs)
                  + f" | {np.nanmean(accs):.3f} | "
                  + ("" if config == "KMeans" else f"{above}/{len(runs)}")
                  + f" | {np.mean([runs[s]['nmi'] for s in runs]):.3f} | "
                  + (f"{np.mean(its):.0f}" if its and its[0] is not None else "") + " | "
                  + (f"{np.median(spi):.2f}" if spi else "") + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["usps"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=["{}"])
    parser.add_argument("--output", default=None)
    parser.add_argument("--table", default=None)
    args = parser.parse_args(argv)
    if args.table:
        return table(args.table)
    configs = [json.loads(c) for c in args.configs]
    for name in args.datasets:
        for seed in args.seeds:
            run(name, seed, configs, args.output)
    return None


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""ShallowConcreteKMeans against KMeans with many clusters, for several values of ``sigma``.

Question: is a smaller ``sigma`` (the bandwidth of the concrete phase's assignment
probabilities, relative to the data's spread) better when ``k`` is large, as it is on
100 well-separated blobs? Cases: ``blobs64`` (``make_blobs(100000, 64 features, 100
centres, random_state=0)``, float32) and the shared sets standardised, float64, with a
``k`` larger than their number of classes (``name:k``). Each seed fits
``KMeans(k, n_init=N, random_state=seed)`` and ``ShallowConcreteKMeans(k, n_init=N,
random_state=seed, sigma=s)`` for every ``s``; inertia is recomputed in float64 from
``cluster_centers_`` for both. Prints a markdown table: mean inertia ratio (mean over seeds
of ours / mean of KMeans's), worst per-seed ratio, and the ratio of median fit seconds.

With ``--same-init`` each seed draws one set of starting centres with scikit-learn's
``kmeans_plusplus(X, k, random_state=seed)`` and both estimators start from it
(``init=array, n_init=1``): the difference is then the concrete phase and refinement
against Lloyd's iteration from one start, not the luck of the seeding.

Example::

    env -u OPENBLAS_CORETYPE python benchmarks/bench_shallow_many_clusters.py \\
        --cases blobs64 pendigits:30 pendigits:60 segment:25 usps:40 \\
        --sigmas 0.025 0.05 0.079 0.25 0.35 0.5 1.0 --n-init 10 --seeds 5
"""

import argparse
from pathlib import Path

import numpy as np
from bench_shallow_kmeans import float64_inertia, load_uci, timed_fit
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.datasets import make_blobs
from sklearn.preprocessing import StandardScaler

from skdeepcluster import ShallowConcreteKMeans

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_case(case, data_dir):
    """(X, k) of a case: ``blobs64`` or ``name:k`` (a shared set, standardised)."""
    if case == "blobs64":
        X, _ = make_blobs(n_samples=100_000, n_features=64, centers=100, random_state=0)
        return X.astype(np.float32), 100
    name, k = case.split(":")
    return StandardScaler().fit_transform(load_uci(data_dir, name)[0]), int(k)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=["blobs64", "pendigits:30"])
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.05, 0.25])
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data-dir", default=str(DATA_DIR))
    parser.add_argument("--same-init", action="store_true",
                        help="both start from one kmeans_plusplus draw per seed (n_init=1)")
    args = parser.parse_args()
    start = "one shared k-means++ start per seed" if args.same_init else f"n_init={args.n_init}"
    print(f"{start}, seeds 0..{args.seeds - 1}\n")
    print("| case | n x d | k | sigma | mean inertia ratio | worst seed ratio | "
          "time ratio (medians) |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases:
        X, k = load_case(case, args.data_dir)
        ref, ref_s = [], []
        ours = {s: ([], []) for s in args.sigmas}
        for seed in range(args.seeds):
            init, n_init = "k-means++", args.n_init
            if args.same_init:
                init, n_init = kmeans_plusplus(X, k, random_state=seed)[0], 1
            km = KMeans(k, init=init, n_init=n_init, random_state=seed)
            ref_s.append(timed_fit(km, X))
            ref.append(float64_inertia(X, km.cluster_centers_))
            for s in args.sigmas:
                sc = ShallowConcreteKMeans(k, init=init, n_init=n_init, random_state=seed,
                                           sigma=s)
                ours[s][1].append(timed_fit(sc, X))
                ours[s][0].append(float64_inertia(X, sc.cluster_centers_))
        ref = np.array(ref)
        for s in args.sigmas:
            values, seconds = np.array(ours[s][0]), ours[s][1]
            print(f"| {case} | {X.shape[0]:,} x {X.shape[1]} | {k} | {s} | "
                  f"{values.mean() / ref.mean():.5f} | {np.max(values / ref):.4f} | "
                  f"{np.median(seconds) / np.median(ref_s):.2f} |", flush=True)


if __name__ == "__main__":
    main()

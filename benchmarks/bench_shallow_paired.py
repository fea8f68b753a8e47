#!/usr/bin/env python
"""Paired timing of ShallowConcreteKMeans and KMeans on small data, for comparing two
versions of the package in alternating processes.

Each row fits ``ShallowConcreteKMeans(k, n_init=N, random_state=i)`` and then
``KMeans(k, n_init=N, random_state=i)`` on the same standardised float64 data, for
``i`` in ``0..reps-1`` after two untimed warm-up pairs, and prints one line: the median
milliseconds of ours and of KMeans and their ratio, for segment and pendigits at
``n_init`` "auto" and 10. Run it from two checkouts in turn (``PYTHONPATH`` pointing at
each) to see a change's effect with the machine's drift shared by both::

    for r in 1 2 3; do
        for tree in /path/old /path/new; do
            env -u OPENBLAS_CORETYPE PYTHONPATH=$tree python benchmarks/bench_shallow_paired.py
        done
    done
"""

import argparse
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from skdeepcluster import ShallowConcreteKMeans
from skdeepcluster.datasets import default_data_dir


def median_ms(values):
    return 1000 * float(np.median(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["segment", "pendigits"])
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args(argv)
    out = []
    for name in args.datasets:
        data = np.load(default_data_dir() / f"{name}.npz")
        X = StandardScaler().fit_transform(data["X"].astype(np.float64))
        k = len(np.unique(data["y"]))
        for n_init in ("auto", 10):
            for i in range(2):
                ShallowConcreteKMeans(k, n_init=n_init, random_state=i).fit(X)
                KMeans(k, n_init=n_init, random_state=i).fit(X)
            ours, theirs = [], []
            for i in range(args.reps):
                t0 = time.perf_counter()
                ShallowConcreteKMeans(k, n_init=n_init, random_state=i).fit(X)
                t1 = time.perf_counter()
                KMeans(k, n_init=n_init, random_state=i).fit(X)
                t2 = time.perf_counter()
                ours.append(t1 - t0)
                theirs.append(t2 - t1)
            out.append(f"{name}:{n_init} ours {median_ms(ours):.1f} sk {median_ms(theirs):.1f} "
                       f"ratio {np.median(ours) / np.median(theirs):.2f}")
    print(" | ".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Benchmark ``skdeepcluster.ShallowConcreteKMeans`` against ``sklearn.cluster.KMeans``.

It measures the acceptance figures of issue 13.  Two parts:

1. **Quality (inertia).**  Data sets (``--datasets``, default all):

   * the UCI sets ``pendigits``, ``segment`` and ``vehicle`` (read from ``--data-dir``,
     default ``<repo>/../shared/data``; ``np.load(path)`` with arrays ``X`` and ``y``;
     ``--skip-uci`` drops them);
   * ``blobs``: ``make_blobs(n_samples=5000, n_features=16, centers=10, cluster_std=2.0,
     random_state=seed)``;
   * ``student_t`` (heavy tails): 5000 points in 10 dimensions, 8 clusters of 625 points,
     ``rng = np.random.default_rng(seed)``, centres ``rng.uniform(-10, 10, (8, 10))``,
     labels ``rng.permutation(np.arange(5000) % 8)``, point = centre + ``z / sqrt(w / 2)``
     with ``z = rng.standard_normal((5000, 10))`` and ``w = rng.chisquare(2, 5000)``, i.e.
     a multivariate Student-t with df=2 and identity scale (infinite variance);
   * ``lognormal`` (skewed, heavy right tail): 4000 points in 12 dimensions, 6 clusters,
     ``rng = np.random.default_rng(seed)``, log-space means ``rng.uniform(-1.5, 1.5,
     (6, 12))``, labels ``rng.permutation(np.arange(4000) % 6)``, point =
     ``exp(mean + 0.6 * rng.standard_normal((4000, 12)))``.

   Each both ``raw`` and ``standardized`` (``StandardScaler``), float64 input, ``k`` =
   number of classes, seeds ``0..S-1`` (the synthetic sets are a new draw per seed): fit
   ``KMeans(n_clusters=k, n_init=N, random_state=seed)`` and
   ``ShallowConcreteKMeans(n_clusters=k, n_init=N, random_state=seed)`` with the same ``N``
   (``--n-init``) and record inertia, NMI, ARI, ACC (Hungarian) and fit seconds.  The
   inertia is recomputed in float64 from ``cluster_centers_`` (nearest-centre assignment)
   for both estimators, so the two are measured with the same ruler.

   Per (data set, preprocessing) the report gives the mean inertia ratio
   (mean(ours) / mean(sklearn)), the worst per-seed ratio and PASS when the mean ratio is
   ``<= 1.001`` for ``n_init >= 10`` and ``<= 1.003`` for ``n_init < 10`` (the threshold
   used is printed), and for ACC / NMI / ARI the mean +- std (sample std, ddof=1) of both
   estimators and "within spread" = yes when ``|mean_ours - mean_sk| <= max(std_sk,
   std_ours)`` (or ``<= 0.005`` when both stds are ~0).

2. **Speed.**  Two groups of cases (``--speed-groups``, default ``large,small``;
   ``--speed-cases`` picks single cases by id):

   * ``large`` (bar: ratio ours / sklearn ``<= 1.0``), float32, ``n_init`` in
     ``--speed-n-init`` (default ``1,3``):

     - ``blobs16``: ``make_blobs(n_samples=n, n_features=16, centers=10, random_state=0)``,
       ``k = 10``, ``n`` in ``--sizes`` (default ``200000,1000000``);
     - ``blobs64``: ``make_blobs(n_samples=100000, n_features=64, centers=100,
       random_state=0)``, ``k = 100``.

   * ``small`` (bar: ``<= 2.0``), ``n_init`` in ``--small-n-init`` (default ``10,auto``;
     ``auto`` is scikit-learn's default, 1 init for k-means++, passed to both):

     - ``pendigits`` and ``segment``: standardized (``StandardScaler``), float64,
       ``k`` = number of classes (10 and 7);
     - ``blobs5000``: ``make_blobs(n_samples=5000, n_features=16, centers=10,
       random_state=0)`` cast to float32, ``k = 10``.

   Both estimators are warmed up once at start and once more per row (an untimed fit of
   each on at most 20000 rows of the row's data with the row's ``k`` and ``n_init``).
   Then ``fit`` is timed with ``time.perf_counter`` ``--repeats`` times (default 5;
   ``--small-repeats``, default 9, for the small group), sklearn and ours interleaved
   (sklearn first in even repeats, ours first in odd ones), both with
   ``random_state=rep`` in repeat ``rep`` (so each repeat sees a different seed, the same
   for both).  Per row the report gives the median seconds of both, the ratio of the
   medians ours / sklearn, the row's bar and PASS/FAIL, the inertia ratio ours / sklearn
   (float64 recomputed, mean over repeats, worst repeat in brackets; a small quality check
   over different seeds), the median ``n_iter_`` of both and all single timings.

Environment: on the benchmark machine ``OPENBLAS_CORETYPE`` (and possibly
``OPENBLAS_L2_SIZE``) may be set in the environment, which slows down numpy / scikit-learn's
OpenBLAS kernels and would make the speed comparison unfair to scikit-learn.  The intended
runs therefore remove both variables and otherwise keep the machine's default environment
(threads included)::

    cd <repo>
    # quality at n_init=10 + both speed groups
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/bench_shallow_kmeans.py --n-init 10 \\
        --output benchmarks/results/shallow_kmeans.md
    # quality at n_init=3 (threshold 1.003)
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/bench_shallow_kmeans.py --skip-speed --n-init 3 \\
        --output benchmarks/results/shallow_kmeans_quality_ninit3.md

The header of the output records the values of both variables as seen by the process.

Other commands::

    python benchmarks/bench_shallow_kmeans.py --quick            # smoke run, a few minutes
    python benchmarks/bench_shallow_kmeans.py --skip-speed       # quality only
    python benchmarks/bench_shallow_kmeans.py --skip-speed --datasets student_t,lognormal
    python benchmarks/bench_shallow_kmeans.py --skip-quality --speed-groups large
    python benchmarks/bench_shallow_kmeans.py --skip-quality --speed-cases pendigits,segment

``--quick``: 3 seeds; speed with 2 repeats, ``blobs16`` at n=50000 and ``blobs64`` at
n=20000 (the small group unchanged).

Tables are printed as Markdown on stdout (progress goes to stderr); with ``--output PATH``
they are also written to ``PATH`` with the environment header and the command line.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np
import sklearn
import threadpoolctl
import torch
from _envinfo import code_fingerprint, load_average
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.preprocessing import StandardScaler

from skdeepcluster import ShallowConcreteKMeans
from skdeepcluster.metrics import cluster_accuracy

UCI_DATASETS = ("pendigits", "segment", "vehicle")
SYNTHETIC_DATASETS = ("blobs", "student_t", "lognormal")
ALL_DATASETS = UCI_DATASETS + SYNTHETIC_DATASETS
PREPROCESSINGS = ("raw", "standardized")
#: Quality bar on the mean inertia ratio ours / sklearn: (min n_init, threshold), first match.
INERTIA_THRESHOLDS = ((10, 1.001), (1, 1.003))
SPEED_GROUPS = ("large", "small")
#: Speed bar on the ratio of the median fit seconds ours / sklearn, per group.
SPEED_BARS = {"large": 1.0, "small": 2.0}
SPEED_CASES = {
    "blobs16": "large",
    "blobs64": "large",
    "pendigits": "small",
    "segment": "small",
    "blobs5000": "small",
}
WARM_UP_ROWS = 20_000
INERTIA_CHUNK_ELEMENTS = 4_000_000
ZERO_STD = 1e-9
ZERO_STD_TOL = 0.005
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
INTENDED_COMMAND = (
    "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
    "python benchmarks/bench_shallow_kmeans.py --n-init 10 "
    "--output benchmarks/results/shallow_kmeans.md"
)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- environment
def environment_header(args):
    lines = ["## Environment", ""]
    lines.append(f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    lines.append(f"- host: {platform.platform()}, machine {platform.machine()}")
    lines.append(f"- python: {platform.python_version()} ({sys.executable})")
    lines.append(f"- numpy: {np.__version__}")
    lines.append(f"- scikit-learn: {sklearn.__version__}")
    lines.append(f"- torch: {torch.__version__} (cuda available: {torch.cuda.is_available()})")
    try:
        import skdeepcluster

        lines.append(
            f"- skdeepcluster: {skdeepcluster.__version__} ({Path(skdeepcluster.__file__).parent})"
        )
    except Exception:  # pragma: no cover - informational only
        pass
    lines.append(f"- code under test: {code_fingerprint()}")
    lines.append(f"- torch.get_num_threads(): {torch.get_num_threads()}")
    lines.append(f"- os.cpu_count(): {os.cpu_count()}")
    lines.append(f"- load average at start (1/5/15 min): {load_average()}")
    for var in ENV_VARS:
        value = os.environ.get(var)
        lines.append(f"- {var}: {'unset' if value is None else repr(value)}")
    lines.append("- threadpoolctl.threadpool_info():")
    for info in threadpoolctl.threadpool_info():
        lines.append(
            f"  - {info.get('internal_api')}: num_threads={info.get('num_threads')}, "
            f"architecture={info.get('architecture', '-')}, "
            f"version={info.get('version')}, prefix={info.get('prefix')}"
        )
    lines.append("")
    if any(os.environ.get(v) is not None for v in ENV_VARS):
        lines.append(
            "**Note:** OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set in this process; they slow "
            "down numpy/scikit-learn, so the speed table is NOT the intended comparison. "
            f"Run `{INTENDED_COMMAND}` for that."
        )
    else:
        lines.append(
            "Note: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset in this process, as intended "
            f"for the speed comparison (`{INTENDED_COMMAND}`)."
        )
    lines.append("")
    lines.append(
        "Timings are wall-clock on a shared machine (other processes may compete for the "
        "cores), so they are noisy."
    )
    lines.append("")
    return "\n".join(lines)


def command_line():
    return "python " + shlex.join(sys.argv)


# ---------------------------------------------------------------------------- helpers
def markdown_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def float64_inertia(X, centers):
    """Sum of squared distances to the nearest centre, computed in float64.

    Chunked over rows (large speed cases); the nearest centre is picked with the expanded
    form ``|c|^2 - 2 x.c`` and the squared distance to it is then summed exactly as
    ``sum((x - c)^2)``.
    """
    C = np.asarray(centers, dtype=np.float64)
    c2 = np.einsum("ij,ij->i", C, C)
    chunk = max(1, INERTIA_CHUNK_ELEMENTS // max(1, C.shape[0] * C.shape[1]))
    total = 0.0
    for start in range(0, X.shape[0], chunk):
        Xc = np.asarray(X[start : start + chunk], dtype=np.float64)
        nearest = (c2[None, :] - 2.0 * (Xc @ C.T)).argmin(axis=1)
        diff = Xc - C[nearest]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


def mean_std(values):
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return float(values.mean()), std


def within_spread(sk_values, our_values):
    m_sk, s_sk = mean_std(sk_values)
    m_us, s_us = mean_std(our_values)
    tol = max(s_sk, s_us)
    if tol <= ZERO_STD:
        tol = ZERO_STD_TOL
    return abs(m_us - m_sk) <= tol


def timed_fit(estimator, X):
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tic = time.perf_counter()
        estimator.fit(X)
        return time.perf_counter() - tic


def warm_up(n_init=1):
    X, _ = make_blobs(n_samples=2000, n_features=16, centers=10, random_state=123)
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            KMeans(n_clusters=10, n_init=n_init, random_state=0).fit(Xd)
            ShallowConcreteKMeans(n_clusters=10, n_init=n_init, random_state=0).fit(Xd)


def inertia_threshold(n_init):
    for min_n_init, threshold in INERTIA_THRESHOLDS:
        if n_init >= min_n_init:
            return threshold
    return INERTIA_THRESHOLDS[-1][1]


# ---------------------------------------------------------------------------- data
def load_uci(data_dir, name):
    """(X float64, y) of a UCI set from ``data_dir/NAME.npz``."""
    d = np.load(Path(data_dir) / f"{name}.npz")
    return d["X"].astype(np.float64), np.asarray(d["y"])


def blobs_quality(seed):
    X, y = make_blobs(n_samples=5000, n_features=16, centers=10, cluster_std=2.0, random_state=seed)
    return X.astype(np.float64), y


def student_t_mixture(seed, n=5000, d=10, k=8, df=2.0):
    """Mixture of ``k`` multivariate Student-t clusters (df, identity scale), equal sizes."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10.0, 10.0, size=(k, d))
    y = rng.permutation(np.arange(n) % k)
    z = rng.standard_normal((n, d))
    w = rng.chisquare(df, size=n)
    X = centres[y] + z / np.sqrt(w / df)[:, None]
    return X, y


def lognormal_mixture(seed, n=4000, d=12, k=6, std=0.6):
    """``exp`` of a ``k``-cluster Gaussian mixture (log-space means U(-1.5, 1.5), std)."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(-1.5, 1.5, size=(k, d))
    y = rng.permutation(np.arange(n) % k)
    X = np.exp(means[y] + std * rng.standard_normal((n, d)))
    return X, y


DATASET_DESCRIPTIONS = {
    "pendigits": "pendigits (UCI)",
    "segment": "segment (UCI)",
    "vehicle": "vehicle (UCI)",
    "blobs": "blobs (make_blobs 5000x16, 10 centres, std 2, random_state=seed)",
    "student_t": (
        "student_t (8 multivariate Student-t clusters, df=2, identity scale, 10-d, "
        "5000 pts, centres U(-10,10), rng seed=seed)"
    ),
    "lognormal": (
        "lognormal (exp of 6-cluster Gaussian mix, 12-d, 4000 pts, log-means U(-1.5,1.5), "
        "std 0.6, rng seed=seed)"
    ),
}


def quality_datasets(args):
    """List of (key, description, loader) where loader(seed) -> (X float64, y)."""
    out = []
    for key in args.datasets:
        if key in UCI_DATASETS:
            cache = {}

            def loader(seed, key=key, cache=cache):
                if "Xy" not in cache:
                    cache["Xy"] = load_uci(args.data_dir, key)
                return cache["Xy"]

        else:
            loader = {
                "blobs": blobs_quality,
                "student_t": student_t_mixture,
                "lognormal": lognormal_mixture,
            }[key]
        out.append((key, DATASET_DESCRIPTIONS[key], loader))
    return out


# ---------------------------------------------------------------------------- quality
def run_quality(args):
    seeds = list(range(args.seeds))
    records = []  # one per (dataset, prep)
    max_reported_dev = 0.0
    for key, name, loader in quality_datasets(args):
        for prep in PREPROCESSINGS:
            per = {
                "sk": {m: [] for m in ("inertia", "acc", "nmi", "ari", "seconds")},
                "ours": {m: [] for m in ("inertia", "acc", "nmi", "ari", "seconds")},
            }
            shape = None
            for seed in seeds:
                X, y = loader(seed)
                if prep == "standardized":
                    X = StandardScaler().fit_transform(X)
                X = np.ascontiguousarray(X, dtype=np.float64)
                k = int(np.unique(y).size)
                shape = (X.shape[0], X.shape[1], k)
                for est_key, est in (
                    ("sk", KMeans(n_clusters=k, n_init=args.n_init, random_state=seed)),
                    (
                        "ours",
                        ShallowConcreteKMeans(n_clusters=k, n_init=args.n_init, random_state=seed,
                                              **args.ours_params),
                    ),
                ):
                    seconds = timed_fit(est, X)
                    labels = np.asarray(est.labels_)
                    inertia = float64_inertia(X, est.cluster_centers_)
                    if inertia > 0:
                        max_reported_dev = max(
                            max_reported_dev, abs(float(est.inertia_) - inertia) / inertia
                        )
                    per[est_key]["inertia"].append(inertia)
                    per[est_key]["acc"].append(float(cluster_accuracy(y, labels)))
                    per[est_key]["nmi"].append(float(normalized_mutual_info_score(y, labels)))
                    per[est_key]["ari"].append(float(adjusted_rand_score(y, labels)))
                    per[est_key]["seconds"].append(seconds)
                log(
                    f"[quality] {key:<10} {prep:<12} seed {seed}: "
                    f"inertia sk {per['sk']['inertia'][-1]:.6g} ours "
                    f"{per['ours']['inertia'][-1]:.6g} | ACC sk {per['sk']['acc'][-1]:.3f} "
                    f"ours {per['ours']['acc'][-1]:.3f} | s sk {per['sk']['seconds'][-1]:.2f} "
                    f"ours {per['ours']['seconds'][-1]:.2f}"
                )
            records.append({"name": name, "prep": prep, "shape": shape, **per})
    return records, max_reported_dev


def quality_tables(records, args, max_reported_dev):
    threshold = inertia_threshold(args.n_init)
    inertia_rows = []
    metric_rows = []
    n_pass = 0
    for r in records:
        sk_in = np.asarray(r["sk"]["inertia"])
        us_in = np.asarray(r["ours"]["inertia"])
        mean_ratio = us_in.mean() / sk_in.mean()
        worst_ratio = float(np.max(us_in / sk_in))
        ok = mean_ratio <= threshold
        n_pass += ok
        n, d, k = r["shape"]
        inertia_rows.append(
            [
                r["name"],
                r["prep"],
                f"{n}x{d}",
                k,
                f"{sk_in.mean():.6g}",
                f"{us_in.mean():.6g}",
                f"{mean_ratio:.5f}",
                f"{worst_ratio:.5f}",
                f"{np.mean(r['sk']['seconds']):.3f}",
                f"{np.mean(r['ours']['seconds']):.3f}",
                "PASS" if ok else "FAIL",
            ]
        )
        row = [r["name"], r["prep"]]
        for m in ("acc", "nmi", "ari"):
            m_sk, s_sk = mean_std(r["sk"][m])
            m_us, s_us = mean_std(r["ours"][m])
            row += [
                f"{m_sk:.3f} ± {s_sk:.3f}",
                f"{m_us:.3f} ± {s_us:.3f}",
                "yes" if within_spread(r["sk"][m], r["ours"][m]) else "no",
            ]
        metric_rows.append(row)

    bars = "; ".join(f"n_init >= {m}: {t}" for m, t in INERTIA_THRESHOLDS)
    out = [f"## Quality (seeds 0..{args.seeds - 1}, n_init={args.n_init}, float64 input)", ""]
    out.append(
        f"Inertia: mean ratio = mean(ours) / mean(sklearn) over seeds; worst = max per-seed "
        f"ratio; PASS when the mean ratio <= {threshold} (threshold for n_init={args.n_init}; "
        f"bars: {bars}). Inertia recomputed in float64 "
        f"from `cluster_centers_` for both (max relative deviation from the reported "
        f"`inertia_`: {max_reported_dev:.2e}). Fit seconds are means over seeds. "
        "student_t and lognormal are heavy-tailed synthetic sets, a new draw per seed "
        "(`numpy.random.default_rng(seed)`; generators `student_t_mixture` and "
        "`lognormal_mixture` in this script)."
    )
    out.append("")
    out.append(
        markdown_table(
            [
                "dataset",
                "prep",
                "n x d",
                "k",
                "inertia sklearn",
                "inertia ours",
                "mean ratio",
                "worst seed ratio",
                "fit s sklearn",
                "fit s ours",
                f"mean ratio <= {threshold}",
            ],
            inertia_rows,
        )
    )
    out.append("")
    out.append(f"Inertia PASS (mean ratio <= {threshold}): {n_pass}/{len(records)}")
    out.append("")
    out.append(
        'External metrics, mean ± std (ddof=1) over seeds. "within" = yes when '
        "|mean_ours - mean_sk| <= max(std_sk, std_ours) (<= 0.005 when both stds are ~0)."
    )
    out.append("")
    out.append(
        markdown_table(
            [
                "dataset",
                "prep",
                "ACC sklearn",
                "ACC ours",
                "ACC within",
                "NMI sklearn",
                "NMI ours",
                "NMI within",
                "ARI sklearn",
                "ARI ours",
                "ARI within",
            ],
            metric_rows,
        )
    )
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------- speed
def speed_cases(args):
    """List of (case id, group, description, n, d, dtype, data maker, k, n_init list).

    The data maker returns the C-contiguous X; it is called lazily, one case at a time.
    """
    cases = []

    def blobs(n, d, centers, dtype):
        def make():
            X, _ = make_blobs(n_samples=n, n_features=d, centers=centers, random_state=0)
            return np.ascontiguousarray(X, dtype=dtype)

        return make

    def uci_standardized(name):
        def make():
            X, _ = load_uci(args.data_dir, name)
            return np.ascontiguousarray(StandardScaler().fit_transform(X), dtype=np.float64)

        return make

    def uci_k(name):
        return int(np.unique(np.load(Path(args.data_dir) / f"{name}.npz")["y"]).size)

    selected = [
        c
        for c in SPEED_CASES
        if SPEED_CASES[c] in args.speed_groups
        and (args.speed_cases is None or c in args.speed_cases)
        and not (args.skip_uci and c in UCI_DATASETS)
    ]
    for case in selected:
        if case == "blobs16":
            for n in args.sizes:
                cases.append(
                    (
                        case,
                        "large",
                        "blobs16 (make_blobs, 10 centres, random_state=0)",
                        n,
                        16,
                        np.float32,
                        blobs(n, 16, 10, np.float32),
                        10,
                        args.speed_n_init,
                    )
                )
        elif case == "blobs64":
            n = args.blobs64_size
            cases.append(
                (
                    case,
                    "large",
                    "blobs64 (make_blobs, 100 centres, random_state=0)",
                    n,
                    64,
                    np.float32,
                    blobs(n, 64, 100, np.float32),
                    100,
                    args.speed_n_init,
                )
            )
        elif case == "blobs5000":
            cases.append(
                (
                    case,
                    "small",
                    "blobs5000 (make_blobs, 10 centres, random_state=0)",
                    5000,
                    16,
                    np.float32,
                    blobs(5000, 16, 10, np.float32),
                    10,
                    args.small_n_init,
                )
            )
        else:  # UCI, standardized
            cases.append(
                (
                    case,
                    "small",
                    f"{case} (UCI, standardized)",
                    None,
                    None,
                    np.float64,
                    uci_standardized(case),
                    uci_k(case),
                    args.small_n_init,
                )
            )
    return cases


def run_speed(args):
    log("[speed] warm-up")
    warm_up()
    rows = []
    for case, group, desc, _, _, dtype, make, k, n_inits in speed_cases(args):
        X = make()
        n, d = X.shape
        repeats = args.repeats if group == "large" else args.small_repeats
        for n_init in n_inits:
            # untimed warm-up of both on (a part of) the row's data, with the row's k / n_init
            timed_fit(KMeans(n_clusters=k, n_init=n_init, random_state=0), X[:WARM_UP_ROWS])
            timed_fit(
                ShallowConcreteKMeans(n_clusters=k, n_init=n_init, random_state=0,
                                      **args.ours_params),
                X[:WARM_UP_ROWS],
            )
            t_sk, t_us, inertia_ratios, it_sk, it_us = [], [], [], [], []
            for rep in range(repeats):
                sk = KMeans(n_clusters=k, n_init=n_init, random_state=rep)
                us = ShallowConcreteKMeans(n_clusters=k, n_init=n_init, random_state=rep,
                                           **args.ours_params)
                if rep % 2 == 0:
                    t_sk.append(timed_fit(sk, X))
                    t_us.append(timed_fit(us, X))
                else:
                    t_us.append(timed_fit(us, X))
                    t_sk.append(timed_fit(sk, X))
                inertia_us = float64_inertia(X, us.cluster_centers_)
                inertia_ratios.append(inertia_us / float64_inertia(X, sk.cluster_centers_))
                it_sk.append(int(sk.n_iter_))
                it_us.append(int(us.n_iter_))
                log(
                    f"[speed] {case} n={n} d={d} k={k} n_init={n_init} repeat {rep}: "
                    f"sklearn {t_sk[-1]:.4f}s ours {t_us[-1]:.4f}s "
                    f"inertia ratio {inertia_ratios[-1]:.5f} n_iter {it_sk[-1]}/{it_us[-1]}"
                )
            med_sk = statistics.median(t_sk)
            med_us = statistics.median(t_us)
            bar = SPEED_BARS[group]
            ratio = med_us / med_sk
            rows.append(
                {
                    "group": group,
                    "desc": desc,
                    "n": n,
                    "d": d,
                    "dtype": np.dtype(dtype).name,
                    "k": k,
                    "n_init": n_init,
                    "repeats": repeats,
                    "sk": med_sk,
                    "ours": med_us,
                    "sk_all": t_sk,
                    "ours_all": t_us,
                    "ratio": ratio,
                    "bar": bar,
                    "ok": ratio <= bar,
                    "inertia_ratio": float(np.mean(inertia_ratios)),
                    "inertia_ratio_max": float(np.max(inertia_ratios)),
                    "iter_sk": statistics.median(it_sk),
                    "iter_us": statistics.median(it_us),
                }
            )
        del X
        gc.collect()
    return rows


def fmt_seconds(t):
    return f"{t:.3f}" if t >= 1.0 else f"{t:.4f}"


def speed_table(rows, args):
    out = [
        "## Speed (median fit seconds, sklearn and ours interleaved, random_state=rep per "
        "repeat pair)",
        "",
    ]
    out.append(
        "ratio = median(ours) / median(sklearn); PASS when ratio <= bar (large: "
        f"{SPEED_BARS['large']}, small: {SPEED_BARS['small']}). Same n_init for both; "
        "`auto` = scikit-learn's default (1 init for k-means++), passed to both. Each row: "
        f"an untimed warm-up fit of each on <= {WARM_UP_ROWS} rows, then `reps` repeats, "
        "sklearn first in even repeats, ours first in odd ones. Inertia ratio = ours / "
        "sklearn recomputed in float64 from `cluster_centers_`, mean over repeats (each "
        "repeat a different seed; worst repeat in brackets). n_iter = median over repeats. "
        "Large: float32 make_blobs (random_state=0); small: pendigits / segment "
        "standardized float64, blobs5000 float32 (make_blobs 5000x16, 10 centres, "
        "random_state=0)."
    )
    out.append("")
    table_rows = []
    n_pass = {g: 0 for g in SPEED_GROUPS}
    n_rows = {g: 0 for g in SPEED_GROUPS}
    for r in rows:
        n_pass[r["group"]] += r["ok"]
        n_rows[r["group"]] += 1
        table_rows.append(
            [
                r["group"],
                r["desc"],
                f"{r['n']:,} x {r['d']}",
                r["dtype"],
                r["k"],
                r["n_init"],
                r["repeats"],
                fmt_seconds(r["sk"]),
                fmt_seconds(r["ours"]),
                f"{r['ratio']:.2f}",
                f"<= {r['bar']}",
                "PASS" if r["ok"] else "FAIL",
                f"{r['inertia_ratio']:.5f} ({r['inertia_ratio_max']:.5f})",
                f"{r['iter_sk']:g}",
                f"{r['iter_us']:g}",
                " / ".join(fmt_seconds(t) for t in r["sk_all"]),
                " / ".join(fmt_seconds(t) for t in r["ours_all"]),
            ]
        )
    out.append(
        markdown_table(
            [
                "group",
                "data",
                "n x d",
                "dtype",
                "k",
                "n_init",
                "reps",
                "sklearn median s",
                "ours median s",
                "ratio",
                "bar",
                "result",
                "inertia ratio mean (worst)",
                "n_iter sklearn",
                "n_iter ours",
                "all sklearn s",
                "all ours s",
            ],
            table_rows,
        )
    )
    out.append("")
    summary = ", ".join(
        f"{g} {n_pass[g]}/{n_rows[g]} (bar {SPEED_BARS[g]})" for g in SPEED_GROUPS if n_rows[g]
    )
    out.append(f"Speed PASS: {summary or 'no rows'}")
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------------- main
def parse_int_list(text):
    try:
        values = [int(v.replace("_", "")) for v in str(text).split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of ints: {text!r}"
        ) from exc
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive ints: {text!r}")
    return values


def parse_n_init_list(text):
    values = []
    for v in str(text).split(","):
        v = v.strip()
        if not v:
            continue
        if v == "auto":
            values.append("auto")
        else:
            values += parse_int_list(v)
    if not values:
        raise argparse.ArgumentTypeError(f"expected ints or 'auto': {text!r}")
    return values


def choice_list(choices):
    def parse(text):
        values = [v.strip() for v in str(text).split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(choices)}: {text!r}"
            )
        return values

    return parse


def build_parser():
    p = argparse.ArgumentParser(
        description="Benchmark ShallowConcreteKMeans against sklearn KMeans "
        "(issue 13: quality on UCI + synthetic data, speed on large and small data).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--data-dir",
        default=str(REPO_ROOT.parent / "shared" / "data"),
        help="folder with pendigits.npz, segment.npz, vehicle.npz",
    )
    p.add_argument("--seeds", type=int, default=10, help="quality: seeds 0..SEEDS-1")
    p.add_argument(
        "--sigma",
        type=float,
        default=None,
        help="ShallowConcreteKMeans's sigma (default: the estimator's default)",
    )
    p.add_argument(
        "--n-init",
        type=int,
        default=10,
        help="quality: n_init of both estimators (PASS bar 1.001 at >= 10, 1.003 below)",
    )
    p.add_argument(
        "--datasets",
        type=choice_list(ALL_DATASETS),
        default=list(ALL_DATASETS),
        help="quality: comma-separated data sets",
    )
    p.add_argument(
        "--skip-uci",
        action="store_true",
        help="drop the UCI sets (quality data sets and small speed cases)",
    )
    p.add_argument(
        "--speed-groups",
        type=choice_list(SPEED_GROUPS),
        default=list(SPEED_GROUPS),
        help="speed: comma-separated groups (large: bar 1.0, small: bar 2.0)",
    )
    p.add_argument(
        "--speed-cases",
        type=choice_list(tuple(SPEED_CASES)),
        default=None,
        help="speed: only these case ids (within --speed-groups); default all",
    )
    p.add_argument(
        "--sizes",
        type=parse_int_list,
        default=[200_000, 1_000_000],
        help="speed, large group: n_samples of the 16-d blobs16 case (k=10)",
    )
    p.add_argument(
        "--blobs64-size",
        type=int,
        default=100_000,
        help="speed, large group: n_samples of the 64-d blobs64 case (k=100)",
    )
    p.add_argument(
        "--speed-n-init",
        type=parse_int_list,
        default=[1, 3],
        help="speed, large group: comma-separated n_init values",
    )
    p.add_argument(
        "--small-n-init",
        type=parse_n_init_list,
        default=[10, "auto"],
        help="speed, small group: comma-separated n_init values (ints or 'auto')",
    )
    p.add_argument(
        "--repeats", type=int, default=5, help="speed, large group: timed repeats (median)"
    )
    p.add_argument(
        "--small-repeats", type=int, default=9, help="speed, small group: timed repeats (median)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 seeds, 2 repeats, blobs16 at n=50000, blobs64 at n=20000",
    )
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--output", default=None, help="also write the Markdown report here")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.ours_params = {} if args.sigma is None else {"sigma": args.sigma}
    if args.quick:
        args.seeds = min(args.seeds, 3)
        args.sizes = [50_000]
        args.blobs64_size = 20_000
        args.repeats = 2
        args.small_repeats = 2
    if args.skip_uci:
        args.datasets = [d for d in args.datasets if d not in UCI_DATASETS]
    cmd = (
        command_line()
        if argv is None
        else "python benchmarks/bench_shallow_kmeans.py " + shlex.join(argv)
    )

    sections = [
        "# ShallowConcreteKMeans vs sklearn KMeans",
        "",
        f"Command: `{cmd}`",
        "",
        environment_header(args),
    ]
    print("\n".join(sections), flush=True)
    t0 = time.perf_counter()

    if not args.skip_quality and args.datasets:
        log("[quality] warm-up")
        warm_up()
        records, dev = run_quality(args)
        text = quality_tables(records, args, dev)
        print(text, flush=True)
        sections.append(text)
    if not args.skip_speed:
        rows = run_speed(args)
        text = speed_table(rows, args)
        print(text, flush=True)
        sections.append(text)

    footer = (
        f"Total benchmark time: {time.perf_counter() - t0:.0f} s; load average at end "
        f"(1/5/15 min): {load_average()}"
    )
    print(footer, flush=True)
    sections.append(footer)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(sections) + "\n", encoding="utf-8")
        log(f"written {out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Benchmark ``skdeepcluster.ShallowConcreteKMeans`` against ``sklearn.cluster.KMeans``.

Two parts:

1. **Quality.** On the UCI data sets ``pendigits``, ``segment`` and ``vehicle`` (read
   from ``--data-dir``, default ``<repo>/../shared/data``; ``np.load(path)`` with arrays
   ``X`` and ``y``) and on ``make_blobs(n_samples=5000, n_features=16, centers=10,
   cluster_std=2.0, random_state=seed)``, each both ``raw`` and ``standardized``
   (``StandardScaler``), float64 input, ``k`` = number of classes, seeds ``0..S-1``:
   fit ``KMeans(n_clusters=k, n_init=N, random_state=seed)`` and
   ``ShallowConcreteKMeans(n_clusters=k, n_init=N, random_state=seed)`` with the same
   ``N`` and record inertia, NMI, ARI, ACC (Hungarian) and fit seconds.  The inertia is
   recomputed in float64 from ``cluster_centers_`` (nearest-centre assignment) for both
   estimators, so the two are measured with the same ruler.

   Per (data set, preprocessing) the report gives the mean inertia ratio
   (mean(ours) / mean(sklearn)), the worst per-seed ratio, PASS when the mean ratio is
   ``<= 1.005``, and for ACC / NMI / ARI the mean +- std (sample std, ddof=1) of both
   estimators and "within spread" = yes when ``|mean_ours - mean_sk| <= max(std_sk,
   std_ours)`` (or ``<= 0.005`` when both stds are ~0).

2. **Speed.** ``make_blobs(n_samples=n, n_features=16, centers=10, random_state=0)``
   cast to float32, ``n`` in ``--sizes``, ``k = 10``, the same ``n_init`` for both
   (``--speed-n-init``, a comma list, default ``1``), ``random_state=0``.  Each estimator
   is warmed up once on a small fit first (torch first-call overhead), then ``fit`` is
   timed with ``time.perf_counter`` ``--repeats`` times, sklearn and ours interleaved,
   and the median is reported together with the ratio ours / sklearn (PASS when
   ``<= 2.0``), the inertia ratio and ``n_iter_`` of both.

Environment: on the benchmark machine ``OPENBLAS_CORETYPE`` (and possibly
``OPENBLAS_L2_SIZE``) may be set in the environment, which slows down numpy / scikit-learn's
OpenBLAS kernels and would make the speed comparison unfair to scikit-learn.  The intended
speed comparison is therefore run with both variables removed::

    cd <repo>
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/bench_shallow_kmeans.py --output benchmarks/results/shallow_kmeans.md

The header of the output records the values of both variables as seen by the process.

Other commands::

    python benchmarks/bench_shallow_kmeans.py --quick            # smoke run, ~1-2 min
    python benchmarks/bench_shallow_kmeans.py --skip-speed       # quality only
    python benchmarks/bench_shallow_kmeans.py --skip-quality --speed-n-init 1,3

Tables are printed as Markdown on stdout (progress goes to stderr); with ``--output PATH``
they are also written to ``PATH`` with the environment header and the command line.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import shlex
import statistics
import subprocess
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
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.preprocessing import StandardScaler

from skdeepcluster import ShallowConcreteKMeans
from skdeepcluster.metrics import cluster_accuracy

UCI_DATASETS = ("pendigits", "segment", "vehicle")
PREPROCESSINGS = ("raw", "standardized")
INERTIA_THRESHOLD = 1.005
SPEED_THRESHOLD = 2.0
ZERO_STD = 1e-9
ZERO_STD_TOL = 0.005
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
INTENDED_COMMAND = (
    "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
    "python benchmarks/bench_shallow_kmeans.py --output benchmarks/results/shallow_kmeans.md"
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


def code_fingerprint():
    """Git commit, whether the package has uncommitted changes, and a hash of its sources."""
    pkg = REPO_ROOT / "skdeepcluster"
    digest = hashlib.sha256()
    for path in sorted(pkg.rglob("*.py")):
        digest.update(str(path.relative_to(pkg)).encode())
        digest.update(path.read_bytes())
    parts = []
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "skdeepcluster"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        if commit:
            parts.append(
                f"git {commit}"
                + (" + uncommitted changes in skdeepcluster/" if dirty else " (clean)")
            )
    except (OSError, subprocess.SubprocessError):
        pass
    parts.append(f"sha256(skdeepcluster/**/*.py) {digest.hexdigest()[:16]}")
    return ", ".join(parts)


def load_average():
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not available on this platform
        return "n/a"


def command_line():
    return "python " + shlex.join(sys.argv)


# ---------------------------------------------------------------------------- helpers
def markdown_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def float64_inertia(X, centers):
    """Sum of squared distances to the nearest centre, computed in float64."""
    X = np.asarray(X, dtype=np.float64)
    C = np.asarray(centers, dtype=np.float64)
    d = ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    return float(d.min(axis=1).sum())


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
    tic = time.perf_counter()
    estimator.fit(X)
    return time.perf_counter() - tic


def warm_up(n_init=1):
    X, _ = make_blobs(n_samples=2000, n_features=16, centers=10, random_state=123)
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        KMeans(n_clusters=10, n_init=n_init, random_state=0).fit(Xd)
        ShallowConcreteKMeans(n_clusters=10, n_init=n_init, random_state=0).fit(Xd)


# ---------------------------------------------------------------------------- quality
def load_datasets(data_dir):
    """Yield (name, loader) where loader(seed) -> (X float64, y)."""
    datasets = []
    for name in UCI_DATASETS:
        path = Path(data_dir) / f"{name}.npz"
        d = np.load(path)
        X, y = d["X"].astype(np.float64), np.asarray(d["y"])
        datasets.append((name, (lambda seed, X=X, y=y: (X, y))))

    def blobs(seed):
        X, y = make_blobs(
            n_samples=5000, n_features=16, centers=10, cluster_std=2.0, random_state=seed
        )
        return X.astype(np.float64), y

    datasets.append(("blobs (5000x16, 10 centres, std 2, random_state=seed)", blobs))
    return datasets


def run_quality(args):
    seeds = list(range(args.seeds))
    records = []  # one per (dataset, prep)
    max_reported_dev = 0.0
    for name, loader in load_datasets(args.data_dir):
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
                for key, est in (
                    ("sk", KMeans(n_clusters=k, n_init=args.n_init, random_state=seed)),
                    (
                        "ours",
                        ShallowConcreteKMeans(n_clusters=k, n_init=args.n_init, random_state=seed),
                    ),
                ):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        seconds = timed_fit(est, X)
                    labels = np.asarray(est.labels_)
                    inertia = float64_inertia(X, est.cluster_centers_)
                    if inertia > 0:
                        max_reported_dev = max(
                            max_reported_dev, abs(float(est.inertia_) - inertia) / inertia
                        )
                    per[key]["inertia"].append(inertia)
                    per[key]["acc"].append(float(cluster_accuracy(y, labels)))
                    per[key]["nmi"].append(float(normalized_mutual_info_score(y, labels)))
                    per[key]["ari"].append(float(adjusted_rand_score(y, labels)))
                    per[key]["seconds"].append(seconds)
                log(
                    f"[quality] {name.split()[0]:<10} {prep:<12} seed {seed}: "
                    f"inertia sk {per['sk']['inertia'][-1]:.6g} ours "
                    f"{per['ours']['inertia'][-1]:.6g} | ACC sk {per['sk']['acc'][-1]:.3f} "
                    f"ours {per['ours']['acc'][-1]:.3f} | s sk {per['sk']['seconds'][-1]:.2f} "
                    f"ours {per['ours']['seconds'][-1]:.2f}"
                )
            records.append({"name": name, "prep": prep, "shape": shape, **per})
    return records, max_reported_dev


def quality_tables(records, args, max_reported_dev):
    inertia_rows = []
    metric_rows = []
    n_pass = 0
    for r in records:
        sk_in = np.asarray(r["sk"]["inertia"])
        us_in = np.asarray(r["ours"]["inertia"])
        mean_ratio = us_in.mean() / sk_in.mean()
        worst_ratio = float(np.max(us_in / sk_in))
        ok = mean_ratio <= INERTIA_THRESHOLD
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

    out = [f"## Quality (seeds 0..{args.seeds - 1}, n_init={args.n_init}, float64 input)", ""]
    out.append(
        f"Inertia: mean ratio = mean(ours) / mean(sklearn) over seeds; worst = max per-seed "
        f"ratio; PASS when the mean ratio <= {INERTIA_THRESHOLD}. Inertia recomputed in float64 "
        f"from `cluster_centers_` for both (max relative deviation from the reported "
        f"`inertia_`: {max_reported_dev:.2e}). Fit seconds are means over seeds."
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
                "inertia <= 1.005",
            ],
            inertia_rows,
        )
    )
    out.append("")
    out.append(f"Inertia PASS: {n_pass}/{len(records)}")
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
def run_speed(args):
    log("[speed] warm-up")
    warm_up()
    rows = []
    for n in args.sizes:
        X, _ = make_blobs(n_samples=n, n_features=16, centers=10, random_state=0)
        X = np.ascontiguousarray(X, dtype=np.float32)
        for n_init in args.speed_n_init:
            t_sk, t_us = [], []
            last_sk = last_us = None
            for rep in range(args.repeats):
                sk = KMeans(n_clusters=10, n_init=n_init, random_state=0)
                us = ShallowConcreteKMeans(n_clusters=10, n_init=n_init, random_state=0)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t_sk.append(timed_fit(sk, X))
                    t_us.append(timed_fit(us, X))
                last_sk, last_us = sk, us
                log(
                    f"[speed] n={n} n_init={n_init} repeat {rep}: sklearn {t_sk[-1]:.3f}s "
                    f"ours {t_us[-1]:.3f}s"
                )
            med_sk = statistics.median(t_sk)
            med_us = statistics.median(t_us)
            rows.append(
                {
                    "n": n,
                    "n_init": n_init,
                    "sk": med_sk,
                    "ours": med_us,
                    "sk_all": t_sk,
                    "ours_all": t_us,
                    "ratio": med_us / med_sk,
                    "inertia_ratio": float(last_us.inertia_) / float(last_sk.inertia_),
                    "iter_sk": int(last_sk.n_iter_),
                    "iter_us": int(last_us.n_iter_),
                }
            )
        del X
    return rows


def speed_table(rows, args):
    out = [
        f"## Speed (make_blobs n x 16, 10 centres, float32, k=10, random_state=0, "
        f"median of {args.repeats} interleaved repeats)",
        "",
    ]
    out.append(
        f"ratio = ours / sklearn (median fit seconds); PASS when ratio <= {SPEED_THRESHOLD}. "
        "Inertia ratio and n_iter from the last repeat."
    )
    out.append("")
    table_rows = []
    n_pass = 0
    for r in rows:
        ok = r["ratio"] <= SPEED_THRESHOLD
        n_pass += ok
        table_rows.append(
            [
                f"{r['n']:,}",
                r["n_init"],
                f"{r['sk']:.3f}",
                f"{r['ours']:.3f}",
                f"{r['ratio']:.2f}",
                f"{r['inertia_ratio']:.5f}",
                r["iter_sk"],
                r["iter_us"],
                " / ".join(f"{t:.2f}" for t in r["sk_all"]),
                " / ".join(f"{t:.2f}" for t in r["ours_all"]),
                "PASS" if ok else "FAIL",
            ]
        )
    out.append(
        markdown_table(
            [
                "n",
                "n_init",
                "sklearn s",
                "ours s",
                "ratio",
                "inertia ratio",
                "n_iter sklearn",
                "n_iter ours",
                "all sklearn s",
                "all ours s",
                "ratio <= 2.0",
            ],
            table_rows,
        )
    )
    out.append("")
    out.append(f"Speed PASS: {n_pass}/{len(rows)}")
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


def build_parser():
    p = argparse.ArgumentParser(
        description="Benchmark ShallowConcreteKMeans against sklearn KMeans "
        "(quality on UCI data + blobs, speed on large blobs).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--data-dir",
        default=str(REPO_ROOT.parent / "shared" / "data"),
        help="folder with pendigits.npz, segment.npz, vehicle.npz",
    )
    p.add_argument("--seeds", type=int, default=10, help="quality: seeds 0..SEEDS-1")
    p.add_argument("--n-init", type=int, default=10, help="quality: n_init of both estimators")
    p.add_argument(
        "--sizes",
        type=parse_int_list,
        default=[100_000, 1_000_000],
        help="speed: comma-separated n_samples",
    )
    p.add_argument(
        "--speed-n-init",
        type=parse_int_list,
        default=[1],
        help="speed: comma-separated n_init values, e.g. 1,3",
    )
    p.add_argument("--repeats", type=int, default=3, help="speed: timed repeats (median)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 seeds and sizes 100000 only")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--output", default=None, help="also write the Markdown report here")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick:
        args.seeds = min(args.seeds, 3)
        args.sizes = [100_000]
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

    if not args.skip_quality:
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

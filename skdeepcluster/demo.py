"""Small clustering benchmark on scikit-learn's bundled handwritten digits.

Run it with::

    python -m skdeepcluster.demo                 # all methods, one seed (~2 minutes)
    python -m skdeepcluster.demo --seeds 3       # mean ± std over 3 seeds (~5 minutes)
    python -m skdeepcluster.demo --methods KMeans ShallowConcreteKMeans

The data set is :func:`sklearn.datasets.load_digits` (1797 samples, 64 pixel
features, 10 classes). It ships inside scikit-learn, so nothing is downloaded.

The features are used as they are, with no standardisation. Every pixel
already lives on the same 0..16 intensity scale, so plain Euclidean k-means is
meaningful on the raw values, and z-scoring would inflate the almost-constant
border pixels to the same weight as the informative centre pixels. Pass
``--standardize`` to compare against the z-scored variant anyway.

The deep estimators (``AEKMeans``, ``ConcreteKMeans``, ``DEC``, ``IDEC``, ``DCEC``; DCEC
reads each row as an 8x8 image) see the pixels divided by 16, i.e.
in [0, 1] as in the deep clustering papers (a ``FunctionTransformer`` in a pipeline), and
are pretrained for ``DEMO_PRETRAIN_EPOCHS`` epochs (50) to keep the demo short; the quality
benchmark (``benchmarks/bench_deep.py``) uses the full protocol.

Every method is fitted once per seed; the table reports mean ± standard
deviation over seeds of

* ``ACC``: best-matching (Hungarian) cluster accuracy,
* ``NMI``: normalised mutual information,
* ``ARI``: adjusted Rand index,
* ``seconds``: wall-clock time of ``fit``,
* ``inertia``: the fitted ``inertia_`` (sum of squared distances to the
  closest centre) for estimators that expose it, otherwise blank.

With matplotlib installed (``pip install matplotlib``), the demo also saves a
figure (``skdeepcluster_demo.png`` in the current folder; ``--figure PATH``
chooses another file, ``--figure none`` skips it): the accuracy of every
method, and the learned embedding of the most accurate deep method projected
to 2-D by PCA, coloured by its clusters, next to the raw pixels coloured by
k-means.

Adding a method
---------------
Append a ``(name, factory)`` pair to :data:`ESTIMATORS`. ``factory`` receives
the integer seed and returns an unfitted estimator with a scikit-learn
``fit``/``labels_`` (or ``fit_predict``) interface.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.preprocessing import StandardScaler

N_CLUSTERS = 10

Factory = Callable[[int], object]


def _shallow_concrete_kmeans(seed: int):
    from skdeepcluster import ShallowConcreteKMeans

    return ShallowConcreteKMeans(n_clusters=N_CLUSTERS, n_init=10, random_state=seed)


#: Pretraining epochs of the deep estimators in the demo (the package default is 200; 50 is
#: what DEC-keras uses on USPS and DKM everywhere, and keeps the demo to a couple of minutes).
DEMO_PRETRAIN_EPOCHS = 50


def _scale_pixels(X):
    """Digits pixels from 0..16 to [0, 1], the preprocessing of the deep clustering papers."""
    return X / 16.0


def _deep(cls, **params):
    def factory(seed: int):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer

        model = cls(n_clusters=N_CLUSTERS, pretrain_epochs=DEMO_PRETRAIN_EPOCHS,
                    random_state=seed, **params)
        return make_pipeline(FunctionTransformer(_scale_pixels), model)

    return factory


def _aekmeans(seed: int):
    from skdeepcluster import AEKMeans

    return _deep(AEKMeans)(seed)


def _concrete_kmeans(seed: int):
    from skdeepcluster import ConcreteKMeans

    return _deep(ConcreteKMeans)(seed)


#: The DEC family on digits: 7 mini-batches per epoch, so the target distribution is updated
#: every 30 steps (the references' setting for USPS-sized and smaller sets) instead of the
#: MNIST default of 140.
_DEC_DEMO = {"update_interval": 30, "max_iter": 100}


def _dec(seed: int):
    from skdeepcluster import DEC

    return _deep(DEC, **_DEC_DEMO)(seed)


def _idec(seed: int):
    from skdeepcluster import IDEC

    return _deep(IDEC, **_DEC_DEMO)(seed)


def _dcec(seed: int):
    from skdeepcluster import DCEC

    return _deep(DCEC, input_shape=(8, 8), **_DEC_DEMO)(seed)


#: Reference methods from scikit-learn that every run is compared against.
BASELINES: list[tuple[str, Factory]] = [
    ("KMeans", lambda seed: KMeans(n_clusters=N_CLUSTERS, n_init=10, random_state=seed)),
]

#: skdeepcluster estimators benchmarked by the demo. Later estimators are
#: appended here as ``(name, factory)`` pairs.
ESTIMATORS: list[tuple[str, Factory]] = [
    ("ShallowConcreteKMeans", _shallow_concrete_kmeans),
    ("AEKMeans", _aekmeans),
    ("ConcreteKMeans", _concrete_kmeans),
    ("DEC", _dec),
    ("IDEC", _idec),
    ("DCEC", _dcec),
]


def registry() -> list[tuple[str, Factory]]:
    """Return all ``(name, factory)`` pairs: baselines first, then ESTIMATORS."""
    return list(BASELINES) + list(ESTIMATORS)


def load_data(standardize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Return the digits features (float64, 0..16 unless standardized) and labels."""
    X, y = load_digits(return_X_y=True)
    if standardize:
        X = StandardScaler().fit_transform(X)
    return X, y


def _fit_labels(estimator, X: np.ndarray) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    estimator.fit(X)
    seconds = time.perf_counter() - start
    labels = getattr(estimator, "labels_", None)
    if labels is None:
        labels = estimator.predict(X)
    return np.asarray(labels), seconds


def _summary(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())


def evaluate(
    name: str, factory: Factory, X: np.ndarray, y: np.ndarray, seeds: Sequence[int],
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Fit one method once per seed and return a row of summary statistics.

    ``progress`` (e.g. ``print``) receives one line per fit as soon as it ends. The row's
    ``"model"`` is the estimator fitted with the first seed.
    """
    from skdeepcluster.metrics import cluster_accuracy

    acc, nmi, ari, secs, inertia = [], [], [], [], []
    first = None
    for seed in seeds:
        est = factory(int(seed))
        labels, seconds = _fit_labels(est, X)
        if first is None:
            first = est
        acc.append(cluster_accuracy(y, labels))
        nmi.append(normalized_mutual_info_score(y, labels))
        ari.append(adjusted_rand_score(y, labels))
        secs.append(seconds)
        if progress is not None:
            progress(f"  {name} (seed {seed}): ACC {acc[-1]:.3f}, NMI {nmi[-1]:.3f}, "
                     f"{seconds:.1f} s")
        if getattr(est, "inertia_", None) is not None:
            inertia.append(float(est.inertia_))

    row = {"method": name, "n_seeds": len(seeds), "model": first}
    for key, vals in (("acc", acc), ("nmi", nmi), ("ari", ari), ("seconds", secs)):
        row[key + "_mean"], row[key + "_std"] = _summary(vals)
        row[key] = list(map(float, vals))
    if inertia and len(inertia) == len(seeds):
        row["inertia_mean"], row["inertia_std"] = _summary(inertia)
        row["inertia"] = inertia
    else:
        row["inertia_mean"] = row["inertia_std"] = None
        row["inertia"] = None
    return row


def format_table(rows: Sequence[dict]) -> str:
    """Render rows as a Markdown table."""

    def pm(row, key, fmt):
        mean = row[key + "_mean"]
        if mean is None:
            return ""
        if row["n_seeds"] == 1:
            return f"{mean:{fmt}}"
        return f"{mean:{fmt}} ± {row[key + '_std']:{fmt}}"

    header = ["method", "ACC", "NMI", "ARI", "seconds", "inertia"]
    body = [
        [
            r["method"],
            pm(r, "acc", ".3f"),
            pm(r, "nmi", ".3f"),
            pm(r, "ari", ".3f"),
            pm(r, "seconds", ".2f"),
            pm(r, "inertia", ".1f"),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(cells) for cells in body]
    return "\n".join(out)


#: Default file of the figure (in the current folder).
FIGURE = "skdeepcluster_demo.png"


def save_figure(rows: Sequence[dict], X: np.ndarray, path) -> str | None:
    """Save the demo's figure to ``path``; returns the embedded method's name (or None).

    Left: ACC of every method (first seed). Right: the embedding (``transform``) of the
    most accurate deep method, projected to 2-D by PCA and coloured by its clusters, and,
    when KMeans ran, the pixels projected the same way and coloured by k-means. Needs
    matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    def embedding(model):
        step = model.steps[-1][1] if hasattr(model, "steps") else model
        return getattr(step, "n_components_", None) is not None

    deep = [r for r in rows if embedding(r["model"])]
    kmeans = next((r for r in rows if r["method"] == "KMeans"), None)
    panels = 1 + bool(deep) + (kmeans is not None and bool(deep))
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.5), squeeze=False)
    axes = axes[0]
    names = [r["method"] for r in rows]
    accs = [r["acc"][0] for r in rows]
    axes[0].barh(names[::-1], accs[::-1], color="tab:blue")
    if kmeans is not None:
        axes[0].axvline(kmeans["acc"][0], color="black", linestyle="--", linewidth=1,
                        label="KMeans")
        axes[0].legend(loc="lower right")
    axes[0].set_xlim(min(accs) - 0.1, 1.0)
    axes[0].set_xlabel("ACC on digits (seed 0)")
    shown = None
    if deep:
        best = max(deep, key=lambda r: r["acc"][0])
        shown = best["method"]
        Z = np.asarray(best["model"].transform(X), dtype=np.float64)
        P = PCA(2, random_state=0).fit_transform(Z)
        axes[1].scatter(P[:, 0], P[:, 1], c=best["model"].predict(X), cmap="tab10", s=4)
        axes[1].set_title(f"{shown} embedding (PCA), its clusters: ACC {best['acc'][0]:.3f}")
        axes[1].set_xticks([])
        axes[1].set_yticks([])
        if kmeans is not None:
            P = PCA(2, random_state=0).fit_transform(X)
            axes[2].scatter(P[:, 0], P[:, 1], c=kmeans["model"].labels_, cmap="tab10", s=4)
            axes[2].set_title(f"pixels (PCA), k-means clusters: ACC {kmeans['acc'][0]:.3f}")
            axes[2].set_xticks([])
            axes[2].set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return shown


def build_parser() -> argparse.ArgumentParser:
    names = [name for name, _ in registry()]
    parser = argparse.ArgumentParser(
        prog="python -m skdeepcluster.demo",
        description="Compare clustering methods on scikit-learn's digits data set.",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="number of random seeds (0..N-1); with several the table shows mean ± std "
        "(default: 1, about 2 minutes on a 2-core CPU; 3 seeds take about 5)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        metavar="NAME",
        default=None,
        help="run only these methods (default: all). Available: " + ", ".join(names),
    )
    parser.add_argument(
        "--standardize",
        action="store_true",
        help="z-score each pixel before clustering (off by default, see module docstring)",
    )
    parser.add_argument(
        "--figure",
        default=FIGURE,
        metavar="PATH",
        help=f"save the figure there when matplotlib is installed (default: {FIGURE}; "
        "'none' skips it)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Run the benchmark, print a Markdown table and return the rows.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (without the program name). ``None`` reads
        ``sys.argv``.

    Returns
    -------
    rows : list of dict
        One dict per method with keys ``method``, ``n_seeds``, ``acc_mean``,
        ``acc_std``, ``nmi_mean``, ``nmi_std``, ``ari_mean``, ``ari_std``,
        ``seconds_mean``, ``seconds_std``, ``inertia_mean``, ``inertia_std``
        (``None`` when the estimator has no ``inertia_``) and the per-seed
        lists ``acc``, ``nmi``, ``ari``, ``seconds``, ``inertia``, and ``model``, the
        estimator fitted with the first seed.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    methods = registry()
    if args.methods is not None:
        known = {name for name, _ in methods}
        unknown = [m for m in args.methods if m not in known]
        if unknown:
            parser.error(
                f"unknown method(s): {', '.join(unknown)}; choose from {', '.join(sorted(known))}"
            )
        methods = [(name, f) for name, f in methods if name in args.methods]

    X, y = load_data(standardize=args.standardize)
    seeds = list(range(args.seeds))
    print(
        f"digits: {X.shape[0]} samples x {X.shape[1]} features, {N_CLUSTERS} classes; "
        f"seeds {seeds}; {'standardized' if args.standardize else 'raw pixel values'}",
        flush=True,
    )

    rows = []
    for name, factory in methods:
        rows.append(evaluate(name, factory, X, y, seeds,
                             progress=lambda line: print(line, flush=True)))
    print(format_table(rows), flush=True)
    if args.figure.lower() != "none":
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("(pip install matplotlib to also get a figure)", flush=True)
        else:
            shown = save_figure(rows, X, args.figure)
            what = f", with {shown}'s embedding" if shown else ""
            print(f"figure: {args.figure} (ACC per method{what})", flush=True)
    return rows


if __name__ == "__main__":  # pragma: no cover
    main()

"""Quality benchmark of the deep estimators against their papers.

Runs any subset of methods on named data sets for several seeds, each method with its
protocol (preprocessing, architecture, epochs), and writes a Markdown table: mean ± std of
ACC (Hungarian), NMI (arithmetic), ARI and seconds, next to the published figures.

Methods that start from a pretrained autoencoder share one pretraining per
(data set, seed, architecture, pretraining recipe), as the papers do: the autoencoder is
pretrained once by ``AEKMeans`` (whose result is the AE+KM baseline), cached under
``--cache-dir``, and handed to the joint methods with ``autoencoder=<module>,
pretrain_epochs=0`` and the same ``random_state`` (so they also start from the same k-means
centres). Each finished (data set, method, seed) run is appended to a JSON-lines file next to
the cache, so an interrupted benchmark resumes where it stopped.

Examples
--------
::

    python benchmarks/bench_deep.py --datasets digits --seeds 3
    python benchmarks/bench_deep.py --datasets usps mnist_test --seeds 3 \
        --output benchmarks/results/deep_quality.md
    python benchmarks/bench_deep.py --datasets usps --methods AEKMeans ConcreteKMeans \
        --pretrain-epochs 50 --max-iter 30          # a quicker, shorter protocol

Data: ``digits`` ships with scikit-learn; the others are read from ``$SKDEEPCLUSTER_DATA``
or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from functools import partial

from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from skdeepcluster import DCEC, DEC, IDEC, AEKMeans, ConcreteKMeans
from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import cluster_accuracy
from skdeepcluster.networks import ConvAutoencoder

#: The MLP of METHODS.md §3.1 and the pretraining of §3.2's package proposal (end-to-end
#: Adam 1e-3, batch 256, 200 epochs: the length of IDEC-toy and DCEC; DEC-keras uses 50
#: on USPS, DKM 50).
MLP_PROTOCOL = {
    "hidden_dims": (500, 500, 2000),
    "n_components": 10,
    "pretrain_epochs": 200,
    "pretrain_learning_rate": 1e-3,
    "batch_size": 256,
}

#: The convolutional autoencoder of DCEC (METHODS.md §13.4) and its pretraining (Adam 1e-3,
#: batch 256, 200 epochs: the DCEC paper's). A different architecture, hence its own cache.
CAE_PROTOCOL = {
    "arch": "cae",
    "n_components": 10,
    "pretrain_epochs": 200,
    "pretrain_learning_rate": 1e-3,
    "batch_size": 256,
}

#: Per-method settings on top of the shared pretraining. Each entry: the class, the
#: parameters of its clustering phase, and which pretraining it starts from ("arch").
PROTOCOLS = {
    "KMeans": {"source": "sklearn KMeans(n_init=10) on the preprocessed pixels"},
    "AEKMeans": {"cls": AEKMeans, "params": {"n_init": 20},
                 "source": "MLP d-500-500-2000-10, pretraining as above, KMeans n_init=20"},
    "ConcreteKMeans": {"cls": ConcreteKMeans, "params": {"n_init": 20, "max_iter": 100},
                       "source": "CKM defaults: scale-invariant k-means term, lam=3, "
                                 "tau 1->0.1, sigma=0.1, Adam 1e-4, 100 epochs, tol=1e-3"},
    "ConcreteKMeans-paper": {
        "cls": ConcreteKMeans,
        "params": {"n_init": 20, "max_iter": 100, "scale_invariant": False, "lam": 1.0},
        "source": "the paper's loss (scale_invariant=False), lam=1, otherwise as above"},
    "DEC": {"cls": DEC, "params": {"n_init": 20, "max_iter": 100},
            "source": "DEC defaults (DEC-keras): SGD 0.01 momentum 0.9, T=140, tol=1e-3, "
                      "at most 100 epochs"},
    "IDEC": {"cls": IDEC, "params": {"n_init": 20, "max_iter": 100},
             "source": "IDEC defaults (IDEC code, MNIST setting): Adam 1e-3, lam=0.1 (γ), "
                       "T=140, tol=1e-3, at most 100 epochs"},
    "CAE+KMeans": {"cls": AEKMeans, "arch": "cae", "params": {"n_init": 20},
                   "source": "DCEC's CAE (conv32-conv64-conv128-FC10), pretraining as "
                             "CAE_PROTOCOL, KMeans n_init=20"},
    "DCEC": {"cls": DCEC, "arch": "cae", "params": {"n_init": 20, "max_iter": 100},
             "source": "DCEC defaults: Adam 1e-3, lam=0.1 (γ), T=140, tol=1e-3, at most "
                       "100 epochs, from the CAE+KMeans pretraining"},
}

#: Published figures (%), ACC / NMI / ARI, with their source (METHODS.md §7.7).
PUBLISHED = {
    ("usps", "KMeans"): ("58.0", "60.0", "44.0", "[S0] Table 1 (USPS 7291 train / 2007 test)"),
    ("usps", "AEKMeans"): ("68.4", "68.1", "59.4", "[S0] Table 1 (AE+KM)"),
    ("usps", "ConcreteKMeans"): ("72.1", "70.7", "61.3", "[S0] Table 1"),
    ("mnist_test", "KMeans"): ("53.3", "51.8", "36.5",
                               "[S0] Table 1, MNIST 70k (not the 10k test set)"),
    ("mnist_test", "AEKMeans"): ("80.6", "74.3", "66.9", "[S0] Table 1, MNIST 70k (AE+KM)"),
    ("mnist_test", "ConcreteKMeans"): ("85.4", "81.4", "77.7", "[S0] Table 1, MNIST 70k"),
    # DCEC paper (seed 003) Table 1, ACC / NMI; ARI not reported. DEC: the public code's
    # figure (DEC†); with the paper's end-to-end SAE pretraining DEC got 69.94 / 67.69 on
    # MNIST-test and 69.28 / 70.18 on USPS.
    ("mnist_test", "DEC"): ("82.36", "79.58", "–", "[S3] Table 1, DEC† (public code)"),
    ("mnist_test", "IDEC"): ("71.45", "69.40", "–", "[S3] Table 1 (end-to-end SAE)"),
    ("mnist_test", "CAE+KMeans"): ("79.00", "72.55", "–", "[S3] Table 1"),
    ("mnist_test", "DCEC"): ("85.29", "83.61", "–", "[S3] Table 1"),
    ("usps", "DEC"): ("73.68", "75.29", "–", "[S3] Table 1, DEC† (public code)"),
    ("usps", "IDEC"): ("72.10", "73.23", "–", "[S3] Table 1 (end-to-end SAE)"),
    ("usps", "CAE+KMeans"): ("74.15", "73.30", "–", "[S3] Table 1"),
    ("usps", "DCEC"): ("79.00", "82.57", "–", "[S3] Table 1"),
}


def _arch_key(dataset, seed, protocol):
    text = json.dumps({"dataset": dataset, "seed": seed, **protocol}, sort_keys=True,
                      default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def pretrained(dataset, X, n_clusters, seed, protocol, cache_dir, image_shape=None):
    """The AEKMeans fit of (dataset, seed): from the cache, or trained and cached now."""
    path = cache_dir / f"{dataset}-seed{seed}-{_arch_key(dataset, seed, protocol)}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    params = {k: v for k, v in protocol.items() if k != "arch"}
    if protocol.get("arch") == "cae":
        params["autoencoder"] = partial(ConvAutoencoder, input_shape=image_shape)
    model = AEKMeans(n_clusters=n_clusters, random_state=seed,
                     **{**params, **PROTOCOLS["AEKMeans"]["params"]})
    start = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - start
    pre = [r for r in model.history_ if r["phase"] == "pretrain"]
    info = {"module": model.autoencoder_, "labels": model.labels_, "seconds": seconds,
            "pretrain_epoch_seconds": float(np.median([r["seconds"] for r in pre]))
            if pre else None, "pretrain_epochs": len(pre)}
    torch.save(info, path)
    return info


def run_one(method, dataset, X, y, seed, protocol, cache_dir, overrides, image_shape=None):
    n_clusters = len(np.unique(y))
    record = {"dataset": dataset, "method": method, "seed": seed}
    if method == "KMeans":
        start = time.perf_counter()
        labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(
            X.astype(np.float64))
        record["seconds"] = time.perf_counter() - start
    else:
        spec = PROTOCOLS[method]
        if spec.get("arch") == "cae":
            protocol = {**CAE_PROTOCOL, "pretrain_epochs": protocol["pretrain_epochs_cae"]}
        else:
            protocol = {k: v for k, v in protocol.items() if k != "pretrain_epochs_cae"}
        info = pretrained(dataset, X, n_clusters, seed, protocol, cache_dir, image_shape)
        record["pretrain_seconds"] = info["seconds"]
        record["pretrain_epoch_seconds"] = info["pretrain_epoch_seconds"]
        record["pretrain_epochs"] = info["pretrain_epochs"]
        if spec["cls"] is AEKMeans:
            labels = info["labels"]
            record["seconds"] = info["seconds"]
        else:
            params = {**spec["params"], **overrides}
            model = spec["cls"](n_clusters=n_clusters, random_state=seed,
                                autoencoder=info["module"], pretrain_epochs=0,
                                batch_size=protocol["batch_size"], **params)
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(X)
            record["seconds"] = time.perf_counter() - start
            record["warnings"] = sorted({str(w.message)[:120] for w in caught})
            clus = [r for r in model.history_ if r["phase"] == "cluster"]
            record["cluster_epochs"] = len(clus)
            record["cluster_epoch_seconds"] = float(np.median([r["seconds"] for r in clus])) \
                if clus else None
            labels = model.labels_
    record["acc"] = float(cluster_accuracy(y, labels))
    record["nmi"] = float(normalized_mutual_info_score(y, labels))
    record["ari"] = float(adjusted_rand_score(y, labels))
    return record


def _pm(values, scale=1.0, fmt=".3f"):
    arr = np.asarray([v for v in values if v is not None], dtype=float) * scale
    if arr.size == 0:
        return ""
    return f"{arr.mean():{fmt}} ± {arr.std():{fmt}}"


def format_tables(records, datasets, methods):
    lines = []
    for dataset in datasets:
        rows = [r for r in records if r["dataset"] == dataset]
        if not rows:
            continue
        n = rows[0].get("n_samples", "")
        lines += [f"### {dataset} (n={n})", "",
                  "| method | seeds | ACC | NMI | ARI | fit s | pretrain s/epoch | "
                  "cluster s/epoch | cluster epochs | published ACC / NMI / ARI (%) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for method in methods:
            rs = [r for r in rows if r["method"] == method]
            if not rs:
                continue
            pub = PUBLISHED.get((dataset, method))
            pub_text = f"{pub[0]} / {pub[1]} / {pub[2]} — {pub[3]}" if pub else "—"
            lines.append(
                f"| {method} | {len(rs)} | {_pm([r['acc'] for r in rs])} | "
                f"{_pm([r['nmi'] for r in rs])} | {_pm([r['ari'] for r in rs])} | "
                f"{_pm([r['seconds'] for r in rs], fmt='.1f')} | "
                f"{_pm([r.get('pretrain_epoch_seconds') for r in rs], fmt='.2f')} | "
                f"{_pm([r.get('cluster_epoch_seconds') for r in rs], fmt='.2f')} | "
                f"{_pm([r.get('cluster_epochs') for r in rs], fmt='.0f')} | {pub_text} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--methods", nargs="+", default=list(PROTOCOLS),
                        choices=list(PROTOCOLS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="override the pretraining length (default: the protocol's)")
    parser.add_argument("--pretrain-epochs-cae", type=int, default=None,
                        help="override the CAE pretraining length (default: 200)")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="override the clustering epochs of the joint methods")
    parser.add_argument("--params", default=None,
                        help='JSON dict of parameters for the joint methods, e.g. '
                             '\'{"update_interval": 30}\' (a separate run log)')
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=str(HERE / ".cache"))
    parser.add_argument("--output", default=None, help="write the Markdown table here")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    protocol = dict(MLP_PROTOCOL)
    if args.pretrain_epochs is not None:
        protocol["pretrain_epochs"] = args.pretrain_epochs
    # The CAE's pretraining length travels with the MLP protocol (one run log for both);
    # it joins the run-log key only when it differs from the default, so that older logs
    # stay valid.
    if args.pretrain_epochs_cae not in (None, CAE_PROTOCOL["pretrain_epochs"]):
        protocol["pretrain_epochs_cae"] = args.pretrain_epochs_cae
    overrides = {} if args.max_iter is None else {"max_iter": args.max_iter}
    if args.params:
        overrides.update(json.loads(args.params))
    cache_dir = Path(args.cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    log_path = cache_dir / ("runs-" + _arch_key("all", 0, {**protocol, **overrides}) + ".jsonl")
    protocol.setdefault("pretrain_epochs_cae", CAE_PROTOCOL["pretrain_epochs"])
    done = {}
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            r = json.loads(line)
            done[(r["dataset"], r["method"], r["seed"])] = r

    records = []
    for dataset in args.datasets:
        X, y, image_shape = load_dataset(dataset, args.data_dir)
        for seed in range(args.seeds):
            for method in args.methods:
                key = (dataset, method, seed)
                if key not in done:
                    r = run_one(method, dataset, X, y, seed, protocol, cache_dir, overrides,
                                image_shape)
                    r["n_samples"] = len(y)
                    with log_path.open("a") as fh:
                        fh.write(json.dumps(r) + "\n")
                    done[key] = r
                    print(f"{dataset} {method} seed={seed}: ACC {r['acc']:.3f} "
                          f"NMI {r['nmi']:.3f} ARI {r['ari']:.3f} ({r['seconds']:.1f} s)",
                          file=sys.stderr, flush=True)
                records.append(done[key])

    header = [
        "## Deep clustering quality",
        "",
        f"Command: `python benchmarks/bench_deep.py {' '.join(argv or sys.argv[1:])}`",
        "",
        f"Protocol: pretraining {protocol}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CPU. Pixels scaled to [0, 1]. "
        f"Seeds 0..{args.seeds - 1}; "
        "mean ± std over seeds. ACC = Hungarian accuracy, NMI arithmetic (sklearn default). "
        "Joint methods start from the AEKMeans pretraining and k-means centres of the same "
        "seed (DCEC: from the CAE+KMeans pretraining, CAE protocol "
        f"{ {**CAE_PROTOCOL, 'pretrain_epochs': protocol['pretrain_epochs_cae']} }). "
        "'fit s' of AEKMeans includes the pretraining; of the joint methods it is the "
        "clustering phase only.",
        "",
    ]
    for method in args.methods:
        joint = "max_iter" in PROTOCOLS[method].get("params", {})
        extra = f" (overrides {overrides})" if overrides and joint else ""
        header.append(f"- {method}: {PROTOCOLS[method]['source']}{extra}")
    table = "\n".join(header) + "\n\n" + format_tables(records, args.datasets, args.methods)
    print(table)
    if args.output:
        Path(args.output).write_text(table + "\n")
    return records


if __name__ == "__main__":
    main()

"""Seconds per epoch of each deep method's phases, next to the autoencoder pretraining.

Fits every method for a few epochs on one data set and prints the median wall-clock seconds
of an epoch (from ``history_``), with its ratio to an MLP pretraining epoch (the AEKMeans
baseline's only training). A clustering epoch of the DEC family includes the target updates
that fall in it (one embedding pass over the whole training set every ``update_interval``
steps). Run it on a quiet machine: the figures are wall-clock times.

Examples
--------
::

    python benchmarks/bench_epoch_time.py                       # mnist_test, 5 epochs
    python benchmarks/bench_epoch_time.py --dataset usps --epochs 3
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from skdeepcluster import (
    DCEC,
    DCN,
    DEC,
    DKM,
    IDEC,
    AEKMeans,
    CenteringKM,
    ConcreteKMeans,
    DCTLKMeans,
    DeepClusterADMM,
)
from skdeepcluster.augmentation import RandomAffine
from skdeepcluster.datasets import load_dataset
from skdeepcluster.networks import ConvAutoencoder


def _median_seconds(model, phase):
    seconds = [r["seconds"] for r in model.history_ if r["phase"] == phase]
    return float(np.median(seconds)), len(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist_test")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", nargs="+", default=None,
                        help="clustering methods to time (default: all; 'augmentation': the "
                             "augmented pretraining row)")
    parser.add_argument("--no-cae", action="store_true", help="skip the CAE rows")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                        help="the estimators' precision parameter")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y, image_shape = load_dataset(args.dataset, args.data_dir)
    k = len(np.unique(y))
    E = args.epochs
    # augmentation=None: the plain rows time the samples as they are ("auto" would augment
    # the image sets); the augmented rows say so.
    common = {"n_clusters": k, "random_state": 0, "batch_size": 256, "n_init": 1,
              "precision": args.precision, "augmentation": None}
    rows = []

    mlp = AEKMeans(pretrain_epochs=E, **common).fit(X)
    rows.append(("AEKMeans (MLP d-500-500-2000-10)", "pretrain", *_median_seconds(mlp, "pretrain")))
    if image_shape is not None and (not args.methods or "augmentation" in args.methods):
        augmented = AEKMeans(pretrain_epochs=E, **{
            **common, "augmentation": RandomAffine(image_shape, 0.1, 10)}).fit(X)
        rows.append(("AEKMeans (MLP), batches shifted and rotated (RandomAffine 0.1, 10)",
                     "pretrain", *_median_seconds(augmented, "pretrain")))
    joint = {"autoencoder": mlp.autoencoder_, "pretrain_epochs": 0, "max_iter": E, **common}
    for cls, params in [(DEC, {"tol": 0.0}), (IDEC, {"tol": 0.0}),
                        (ConcreteKMeans, {"tol": 0.0}), (DKM, {}), (CenteringKM, {}),
                        (DCN, {}), (DCN, {"refit_interval": 1}),
                        (DeepClusterADMM, {"tol": 0.0}),
                        (DeepClusterADMM, {"tol": 0.0, "clustering": "gmm"})]:
        if args.methods and cls.__name__ not in args.methods:
            continue
        model = cls(**params, **joint).fit(X)
        extra = ", refit every epoch" if params.get("refit_interval") else ""
        if cls is DeepClusterADMM:
            extra = f", {params.get('clustering', 'kmeans')}"
        rows.append((f"{cls.__name__} (MLP{extra})", "cluster",
                     *_median_seconds(model, "cluster")))

    if image_shape is not None and (not args.methods or "augmentation" in args.methods):
        augment = RandomAffine(image_shape, 0.1, 10)
        for cls in (DEC, IDEC, DeepClusterADMM):  # the methods whose phase it augments
            model = cls(tol=0.0, **{**joint, "augmentation": augment}).fit(X)
            rows.append((f"{cls.__name__} (MLP), batches shifted and rotated", "cluster",
                         *_median_seconds(model, "cluster")))
    if not args.methods or "DCTLKMeans" in args.methods:
        dctl = DCTLKMeans(n_clusters=k, input_shape=image_shape, max_iter=E, tol=0.0,
                          random_state=0, precision=args.precision).fit(X)
        rows.append(("DCTLKMeans (2 x 3 filters 9x9, outer iteration)", "cluster",
                     *_median_seconds(dctl, "cluster")))
    if args.no_cae:
        return _print(rows, args, argv, E, len(y))
    cae = AEKMeans(autoencoder=partial(ConvAutoencoder, input_shape=image_shape),
                   pretrain_epochs=E, **common).fit(X)
    rows.append(("CAE+KMeans (DCEC's CAE)", "pretrain", *_median_seconds(cae, "pretrain")))
    dcec = DCEC(autoencoder=cae.autoencoder_, pretrain_epochs=0, max_iter=E, tol=0.0,
                **common).fit(X)
    rows.append(("DCEC (CAE)", "cluster", *_median_seconds(dcec, "cluster")))
    if image_shape is not None and (not args.methods or "augmentation" in args.methods):
        augment = RandomAffine(image_shape, 0.1, 10)
        cae_aug = AEKMeans(autoencoder=partial(ConvAutoencoder, input_shape=image_shape),
                           pretrain_epochs=E, **{**common, "augmentation": augment}).fit(X)
        rows.append(("CAE+KMeans, batches shifted and rotated", "pretrain",
                     *_median_seconds(cae_aug, "pretrain")))
        dcec_aug = DCEC(autoencoder=cae.autoencoder_, pretrain_epochs=0, max_iter=E, tol=0.0,
                        **{**common, "augmentation": augment}).fit(X)
        rows.append(("DCEC (CAE), batches shifted and rotated", "cluster",
                     *_median_seconds(dcec_aug, "cluster")))
    return _print(rows, args, argv, E, len(y))


def _print(rows, args, argv, E, n_samples):
    ref = rows[0][2]
    lines = [
        f"## Seconds per epoch on {args.dataset} (n={n_samples}, batch 256)",
        "",
        f"Command: `python benchmarks/bench_epoch_time.py {' '.join(argv or sys.argv[1:])}`",
        "",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, precision "
        f"{args.precision}; median of {E} "
        "epochs. A DEC-family clustering epoch includes its share of the target updates "
        "(T=140 steps); a CenteringKM epoch its k-means refit on the whole embedding (warm "
        "start, on the device); a DCN epoch its per-batch re-encoding, assignment and centre "
        "updates.",
        "",
        "| method | phase | s/epoch | × MLP pretraining epoch | epochs timed |",
        "|---|---|---|---|---|",
    ]
    for name, phase, sec, n in rows:
        lines.append(f"| {name} | {phase} | {sec:.2f} | {sec / ref:.2f} | {n} |")
    table = "\n".join(lines)
    print(table)
    sys.stdout.flush()
    return rows


if __name__ == "__main__":
    main()

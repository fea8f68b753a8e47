"""Which phases to augment: the clustering phase with and without the augmentation, from
one augmented pretraining.

For each estimator, the network is pretrained with ``RandomAffine(image_shape, 0.1, 10)``
(or loaded from ``--cache-dir``, the ``memory`` cache that ``bench_pretrain.py`` fills),
then the clustering phase runs twice from it: with ``augmentation=None`` ("phase as is",
the fit an estimator with ``_augments_clustering_phase = False`` makes) and with the
augmentation ("phase augmented"). One JSON line per fit, with the ACC of the training
labels after the k-means initialisation and after every epoch (``trace``).

Example
-------
::

    python benchmarks/bench_augment_phase.py --dataset usps --seed 0 --cache-dir DIR \
        --estimators DCN DKM DeepClusterADMM --output phases.jsonl
    python benchmarks/bench_augment_phase.py --dataset usps --rows 1500 --seed 0 \
        --cache-dir DIR --estimators DeepClusterADMM --modes as-is
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_pretrain import IMAGES, emit, load, traced

import skdeepcluster
from skdeepcluster.augmentation import RandomAffine
from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import cluster_accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(IMAGES - {"digits"}), default="usps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=None,
                        help="a random subset of this many rows, drawn per seed as "
                             "bench_pretrain.py --rows draws it")
    parser.add_argument("--estimators", nargs="+", default=["DCN", "DKM"])
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--modes", nargs="+", choices=["as-is", "augmented"],
                        default=["as-is", "augmented"])
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    X, y = load(args.dataset, args.rows, args.seed)
    augment = RandomAffine(load_dataset(args.dataset)[2], 0.1, 10.0)
    k = len(set(y.tolist()))
    warnings.simplefilter("ignore")
    for spec in args.estimators:
        # "Name" or "Name:{json parameters}" (e.g. 'DeepClusterADMM:{"clustering": "gmm"}')
        name, _, extra = spec.partition(":")
        cls = getattr(skdeepcluster, name)
        common = {"n_clusters": k, "random_state": args.seed,
                  **(json.loads(extra) if extra else {})}
        pretrained = cls(**common, memory=args.cache_dir, augmentation=augment,
                         max_iter=0).fit(X)
        for mode in args.modes:
            trace = []
            # the phase follows the mode, whatever the class does by default (a class
            # attribute: DeepClusterADMM's is a property)
            phase_cls = type(cls.__name__, (cls,),
                             {"_augments_clustering_phase": mode == "augmented"})
            model = traced(phase_cls, y, trace)(
                **common, autoencoder=pretrained.autoencoder_, pretrain_epochs=0,
                augmentation=augment if mode == "augmented" else None)
            model.fit(X)
            emit({"dataset": args.dataset, "rows": len(X), "seed": args.seed, "estimator": spec,
                  "mode": "phase " + mode, "start_acc": trace[0],
                  "acc": cluster_accuracy(y, model.labels_), "cluster_epochs": model.n_iter_,
                  "trace": [round(a, 4) for a in trace]}, args.output)


if __name__ == "__main__":
    main()

"""Labels and centres of every estimator on short digits fits, to check a refactor is exact.

Run it before a change (``--save before.json``), again after it (``--save after.json``) and
compare (``--compare before.json after.json``): a pure reshaping of the code must leave the
deep estimators' labels and centres bit-identical (same seeds, same float operations).
About 3 minutes on one thread of a 2-core CPU.

Examples
--------
::

    python benchmarks/regression_snapshot.py --save /tmp/before.json
    python benchmarks/regression_snapshot.py --save /tmp/after.json
    python benchmarks/regression_snapshot.py --compare /tmp/before.json /tmp/after.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skdeepcluster import (
    DCEC,
    DCN,
    DEC,
    DKM,
    IDEC,
    AEKMeans,
    CenteringKM,
    ConcreteKMeans,
    ShallowConcreteKMeans,
)


def snapshot(seeds=(0, 1)):
    X, _ = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    out = {}
    for seed in seeds:
        common = {"n_clusters": 10, "random_state": seed, "pretrain_epochs": 15, "device": "cpu"}
        models = {
            "AEKMeans": AEKMeans(**common),
            "ConcreteKMeans": ConcreteKMeans(**common, max_iter=15),
            "DEC": DEC(**common, max_iter=15, update_interval=20),
            "IDEC": IDEC(**common, max_iter=15, update_interval=20),
            "DCEC": DCEC(**common, input_shape=(8, 8), filters=(8, 16, 16), max_iter=8,
                         update_interval=20),
            "DKM": DKM(**common, max_iter=8),
            "CenteringKM": CenteringKM(**common, max_iter=8),
            "DCN": DCN(**common, max_iter=8),
        }
        for dtype in (np.float32, np.float64):
            models[f"Shallow-{dtype.__name__}"] = (ShallowConcreteKMeans(
                n_clusters=10, random_state=seed, n_init=3), dtype)
        for name, model in models.items():
            data = X
            if isinstance(model, tuple):
                model, dtype = model
                data = X.astype(dtype)
            start = time.perf_counter()
            model.fit(data)
            out[f"{name}/{seed}"] = {"labels": model.labels_.tolist(),
                                     "centers": model.cluster_centers_.tolist(),
                                     "n_iter": model.n_iter_, "inertia": model.inertia_}
            print(f"{name} seed {seed}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return out


def compare(before, after):
    print("| fit | labels equal | labels differing | max abs centre change | n_iter | inertia |")
    print("|---|---|---|---|---|---|")
    for key in before:
        if key not in after:
            print(f"| {key} | missing after | | | | |")
            continue
        a, b = before[key], after[key]
        la, lb = np.array(a["labels"]), np.array(b["labels"])
        ca, cb = np.array(a["centers"]), np.array(b["centers"])
        dc = float(np.abs(ca - cb).max()) if ca.shape == cb.shape else float("nan")
        print(f"| {key} | {np.array_equal(la, lb)} | {int((la != lb).sum())} | {dc:.2e} | "
              f"{a['n_iter']} / {b['n_iter']} | {a['inertia']:.4f} / {b['inertia']:.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--save", help="write the snapshot (JSON) to this file")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        return compare(before, after)
    torch.set_num_threads(args.threads)
    result = snapshot()
    if args.save:
        Path(args.save).write_text(json.dumps(result))
    return None


if __name__ == "__main__":
    main()

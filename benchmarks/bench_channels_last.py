"""Seconds per epoch of the convolutional networks with and without channels-last weights.

On the CPU, ``fit`` stores 4-D weights channels-last (``skdeepcluster._base.
CHANNELS_LAST_ON_CPU``). This script toggles that switch between interleaved fits in one
process and prints the median (over ``--pairs`` repetitions) of each fit's fastest epoch:
DCEC's CAE pretraining epoch, DCEC's clustering epoch and a DCTLKMeans outer iteration.
Run it on a quiet machine.

Examples
--------
::

    python benchmarks/bench_channels_last.py                 # 5 120 / 5 000 mnist_test rows
    python benchmarks/bench_channels_last.py --rows 2000 --pairs 2
"""

import argparse
import statistics
import sys
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from skdeepcluster import DCEC, AEKMeans, DCTLKMeans, _base
from skdeepcluster.datasets import load_dataset
from skdeepcluster.networks import ConvAutoencoder


def fastest(model, phase):
    return min(r["seconds"] for r in model.history_ if r["phase"] == phase)


def one_round(X, shape, dctl_rows):
    cae = AEKMeans(10, autoencoder=partial(ConvAutoencoder, input_shape=shape),
                   pretrain_epochs=3, n_init=1, random_state=0).fit(X)
    dcec = DCEC(10, input_shape=shape, autoencoder=cae.autoencoder_, pretrain_epochs=0,
                max_iter=3, tol=0.0, n_init=1, random_state=0).fit(X)
    dctl = DCTLKMeans(10, input_shape=shape, max_iter=3, tol=0.0,
                      random_state=0).fit(X[:dctl_rows])
    return {"DCEC/CAE pretraining epoch": fastest(cae, "pretrain"),
            "DCEC clustering epoch": fastest(dcec, "cluster"),
            "DCTLKMeans outer iteration": fastest(dctl, "cluster")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist_test")
    parser.add_argument("--rows", type=int, default=5120, help="rows for the CAE fits")
    parser.add_argument("--dctl-rows", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    X, _, shape = load_dataset(args.dataset)
    X = X[: args.rows]
    times = {True: [], False: []}
    for r in range(args.pairs):
        for layout in ([False, True] if r % 2 == 0 else [True, False]):  # ABBA order
            _base.CHANNELS_LAST_ON_CPU = layout
            times[layout].append(one_round(X, shape, args.dctl_rows))
    _base.CHANNELS_LAST_ON_CPU = True
    print(f"{args.dataset}, {len(X)} rows (DCTLKMeans {min(args.dctl_rows, len(X))}), torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, {args.pairs} pairs\n")
    print("| phase | channels-last s | contiguous s | ratio |")
    print("|---|---|---|---|")
    for phase in times[True][0]:
        cl = statistics.median(t[phase] for t in times[True])
        plain = statistics.median(t[phase] for t in times[False])
        print(f"| {phase} | {cl:.3f} | {plain:.3f} | {cl / plain:.2f} |")


if __name__ == "__main__":
    main()

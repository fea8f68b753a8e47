"""One process against a torch.distributed group of two (gloo, CPU): accuracy and epoch time.

Two reports (user guide, "Training on several processes"):

``quality``
    For each seed: AEKMeans pretrains the network (default length and recipe), then
    ConcreteKMeans, DEC and IDEC start from that network (``autoencoder=``,
    ``pretrain_epochs=0``), once in this process and once on two ranks (each rank one
    thread). Prints ACC per seed and mode.
``epochs``
    Seconds per pretraining epoch and per clustering epoch (DEC) with one process of two
    threads, one process of one thread and two ranks of one thread each.

Examples::

    python benchmarks/bench_distributed.py quality --dataset digits --seeds 0 1 2
    python benchmarks/bench_distributed.py epochs --dataset mnist_test --epochs 3
    # on a machine with several GPUs: 1 GPU against 4 NCCL ranks
    python benchmarks/bench_distributed.py epochs --dataset mnist_test --epochs 3 --gpus 4
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _envinfo import code_fingerprint, load_average

from skdeepcluster import DEC, IDEC, AEKMeans, ConcreteKMeans
from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import cluster_accuracy

ESTIMATORS = {"ConcreteKMeans": ConcreteKMeans, "DEC": DEC, "IDEC": IDEC}


def quality_fits(X, y, seed, names):
    """AEKMeans, then each estimator from its network: {name: (ACC, seconds)}."""
    n_clusters = len(np.unique(y))
    out = {}
    start = time.perf_counter()
    ae = AEKMeans(n_clusters, random_state=seed).fit(X)
    out["AEKMeans"] = (cluster_accuracy(y, ae.labels_), time.perf_counter() - start)
    for name in names:
        start = time.perf_counter()
        est = ESTIMATORS[name](n_clusters, autoencoder=ae.autoencoder_, pretrain_epochs=0,
                               random_state=seed).fit(X)
        out[name] = (cluster_accuracy(y, est.labels_), time.perf_counter() - start)
    return out


def epoch_fits(X, y, n_epochs, device="cpu"):
    """Seconds per pretraining and per clustering epoch of a DEC fit."""
    est = DEC(len(np.unique(y)), pretrain_epochs=n_epochs, max_iter=n_epochs, tol=0.0,
              random_state=0, device=device).fit(X)
    pre = [r["seconds"] for r in est.history_ if r["phase"] == "pretrain"]
    clu = [r["seconds"] for r in est.history_ if r["phase"] == "cluster"]
    return {"pretrain": statistics.median(pre), "cluster": statistics.median(clu)}


def _rank(rank, world_size, init_file, job, args, out_file, backend):
    torch.set_num_threads(1)
    if backend == "nccl":  # one GPU per rank
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = job(*args)
        if rank == 0:
            torch.save(result, out_file)
    finally:
        dist.destroy_process_group()


def on_ranks(job, args, world_size=2, backend="gloo"):
    """``job(*args)`` on ``world_size`` ranks of a ``backend`` group; rank 0's result."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "result.pt")
        mp.start_processes(_rank, args=(world_size, os.path.join(tmp, "init"), job, args,
                                        out_file, backend),
                           nprocs=world_size, join=True, start_method="spawn")
        return torch.load(out_file, weights_only=False)


def header(argv):
    print(f"python benchmarks/bench_distributed.py {' '.join(argv)}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {load_average()}; "
          f"{code_fingerprint()}\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", choices=["quality", "epochs"])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS),
                        choices=list(ESTIMATORS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2], choices=[1, 2],
                        help="quality: the runs to make (1 process, 2 ranks or both)")
    parser.add_argument("--gpus", type=int, default=0,
                        help="epochs: 1 GPU against this many NCCL ranks, one GPU each, "
                             "instead of the CPU runs")
    args = parser.parse_args(argv)
    X, y, _ = load_dataset(args.dataset)
    header(argv)
    warnings.simplefilter("ignore")
    if args.report == "quality":
        names = ["AEKMeans", *args.estimators]
        rows = {}
        for seed in args.seeds:
            torch.set_num_threads(2)
            if 1 in args.procs:
                rows[(seed, 1)] = quality_fits(X, y, seed, args.estimators)
            if 2 in args.procs:
                rows[(seed, 2)] = on_ranks(quality_fits, (X, y, seed, args.estimators))
            for procs in args.procs:
                print(f"seed {seed}, {procs} process(es): " + ", ".join(
                    f"{n} {rows[(seed, procs)][n][0]:.3f} ({rows[(seed, procs)][n][1]:.0f} s)"
                    for n in names), flush=True)
        print(f"\n{args.dataset}: ACC, 1 process (2 threads) vs 2 gloo ranks (1 thread each)\n")
        print("| estimator | processes | " + " | ".join(f"seed {s}" for s in args.seeds)
              + " | mean | fit s (mean) |")
        print("|---|---|" + "---|" * len(args.seeds) + "---|---|")
        for name in names:
            for procs in args.procs:
                accs = [rows[(s, procs)][name][0] for s in args.seeds]
                secs = [rows[(s, procs)][name][1] for s in args.seeds]
                print(f"| {name} | {procs} | " + " | ".join(f"{a:.3f}" for a in accs)
                      + f" | {np.mean(accs):.3f} | {np.mean(secs):.0f} |")
    elif args.gpus:
        if torch.cuda.device_count() < args.gpus:
            parser.error(f"--gpus {args.gpus}: only {torch.cuda.device_count()} CUDA devices")
        results = {"1 GPU": epoch_fits(X, y, args.epochs, "cuda"),
                   f"{args.gpus} NCCL ranks, 1 GPU each": on_ranks(
                       epoch_fits, (X, y, args.epochs, "cuda"), args.gpus, "nccl")}
        print(f"\n{args.dataset} ({X.shape[0]} x {X.shape[1]}), DEC defaults, median of "
              f"{args.epochs} epochs, {torch.cuda.get_device_name(0)}\n")
        print("| run | s per pretraining epoch | s per clustering epoch |")
        print("|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {r['pretrain']:.3f} | {r['cluster']:.3f} |")
    else:
        results = {}
        torch.set_num_threads(2)
        results["1 process, 2 threads"] = epoch_fits(X, y, args.epochs)
        torch.set_num_threads(1)
        results["1 process, 1 thread"] = epoch_fits(X, y, args.epochs)
        results["2 gloo ranks, 1 thread each"] = on_ranks(epoch_fits, (X, y, args.epochs))
        print(f"\n{args.dataset} ({X.shape[0]} x {X.shape[1]}), DEC defaults, median of "
              f"{args.epochs} epochs\n")
        print("| run | s per pretraining epoch | s per clustering epoch |")
        print("|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {r['pretrain']:.2f} | {r['cluster']:.2f} |")


if __name__ == "__main__":
    main()

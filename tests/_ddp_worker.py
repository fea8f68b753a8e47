"""Worker of the multi-process tests (tests/test_distributed.py): one rank of a gloo group.

Not a test module: ``torch.multiprocessing`` imports it in each spawned process.
"""

import os
import pickle
import sys


def fit_on_rank(rank, world_size, init_file, jobs, out_dir, backend="gloo"):
    """Join a ``backend`` group (gloo by default) of ``world_size`` ranks, fit every job and
    pickle what the tests compare (``out_dir/rank{rank}.pkl``)."""
    import faulthandler

    import torch
    import torch.distributed as dist

    faulthandler.enable(all_threads=True)  # a crash of a rank prints every thread's stack

    torch.set_num_threads(1)
    if backend == "nccl":  # one GPU per rank
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)
    try:
        results = {}
        for name, (cls, params, X) in jobs.items():
            if isinstance(X, dict):  # a training set per rank
                X = X[rank]
            est = cls(**params).fit(X)
            network = est.autoencoder_.state_dict()
            results[name] = {
                "labels": est.labels_,
                "predict": est.predict(X),
                "centers": est.cluster_centers_,
                "weights": {k: v.numpy().copy() for k, v in network.items()},
                "world_sizes": sorted({r.get("world_size") for r in est.history_}),
                "phases": [r["phase"] for r in est.history_],
                "n_iter": est.n_iter_,
            }
            dist.barrier()
        with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump(results, f)
    finally:
        dist.destroy_process_group()
    # Every result is on disk: leave without the interpreter's teardown. torch 2.13 sometimes
    # aborts a gloo process there, after the work is done ("terminate called without an
    # active exception", no Python frame left; 1 run of 2 ranks in 86 here), which
    # the spawning test would report as a failed fit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

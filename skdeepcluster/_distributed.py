"""Data-parallel training inside a ``torch.distributed`` process group.

When a deep estimator's ``fit`` runs in an initialised process group (a script started
with ``torchrun --nproc_per_node=N``, or ``torch.multiprocessing`` workers that called
:func:`torch.distributed.init_process_group`), every rank calls ``fit`` with the same ``X``
and the work is split as follows (see the user guide, "Training on several processes"):

* **Mini-batch steps.** Every rank draws the same shuffled order of the rows (rank 0's is
  broadcast), cuts it into the same global batches of ``batch_size`` rows and takes every
  ``world_size``-th row of each batch. After the backward pass the gradients of all
  trained tensors are summed across ranks, each rank's weighted by its number of rows, and
  divided by the global batch's size: the step is the one a single process would take on
  the whole batch (for losses that are means over rows). One all-reduce per step, on one
  flat buffer.
* **Passes over the whole set** (the latent embedding for the k-means initialisation,
  DEC's targets, the label-change check, refits, ``labels_``): each rank embeds a
  contiguous block of the row chunks and the blocks are gathered, so every rank holds the
  whole embedding (``n_samples x n_components``) and runs the closed-form steps (k-means,
  target distribution with its normaliser, label changes, ADMM updates) on the same
  numbers. Their results, and therefore every control decision (convergence, relabelling),
  are the same on every rank without further communication.
* **Per-batch closed-form steps** (DCN's centre update, DCTLKMeans's code step) gather
  the batch's rows of every rank first and then run on the whole global batch.
* **Loss records** are summed across ranks once per epoch.

Outside a process group (or in a group of one) nothing of this runs and results are
exactly those of a single process.
"""

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch
import torch.distributed as dist

__all__ = ["ProcessGroup", "average_gradients_", "block_sizes", "broadcast_", "current_group",
           "gather_rows", "shard_batch", "shard_sizes", "sum_across_"]


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the default ``torch.distributed`` group."""

    rank: int
    world_size: int
    backend: str


def current_group():
    """The initialised default process group of more than one rank, or None."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    world_size = dist.get_world_size()
    if world_size < 2:
        return None
    return ProcessGroup(dist.get_rank(), world_size, str(dist.get_backend()))


def check_backend_device(group, device):
    """ValueError when the group's backend cannot carry tensors of ``device`` (NCCL needs
    CUDA tensors)."""
    if group is not None and group.backend == "nccl" and device.type != "cuda":
        raise ValueError(
            f"fit runs in a torch.distributed process group with the 'nccl' backend, which "
            f"only carries CUDA tensors, but device={device.type!r}. Use a CUDA device "
            "(call torch.cuda.set_device(local_rank) in each process and keep "
            "device='auto' or 'cuda'), or initialise the group with backend='gloo'."
        )


#: Rows, evenly spaced, whose sum fingerprints a training set across ranks.
FINGERPRINT_ROWS = 64


def check_same_data(group, X, device):
    """ValueError on every rank when the ranks' training sets differ (each rank must call
    ``fit`` with the same ``X``; the estimator splits the rows).

    Compares the shapes and the sum of ``FINGERPRINT_ROWS`` evenly spaced rows: a cheap
    check that catches per-rank shards, not every difference.
    """
    if group is None:
        return
    n_samples, n_features = X.shape
    rows = np.unique(np.linspace(0, n_samples - 1, FINGERPRINT_ROWS).astype(np.int64))
    sample = X[rows]
    total = float(sample.sum(dtype=np.float64)) if not sp.issparse(sample) else float(
        sample.sum())
    mine = torch.tensor([n_samples, n_features, total], dtype=torch.float64, device=device)
    parts = [torch.empty_like(mine) for _ in range(group.world_size)]
    dist.all_gather(parts, mine)
    seen = [(int(p[0]), int(p[1]), float(p[2])) for p in parts]
    if len(set(seen)) > 1:
        shapes = [s[:2] for s in seen]
        raise ValueError(
            "Inside a torch.distributed process group every rank must call fit with the "
            "same X (the estimator splits its rows between the ranks); the ranks' X "
            + (f"have shapes {shapes}." if len(set(shapes)) > 1 else "differ in their values.")
        )


def world_size(group):
    """``group.world_size``, 1 for None."""
    return 1 if group is None else group.world_size


def broadcast_(tensor, group, src=0):
    """Overwrite ``tensor`` on every rank with rank ``src``'s (in place); returns it."""
    if group is not None:
        dist.broadcast(tensor, src=src)
    return tensor


def sum_across_(tensor, group):
    """Sum ``tensor`` over the ranks, in place (every rank gets the sum); returns it."""
    if group is not None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def shard_batch(batch, group):
    """This rank's rows of a global batch (every ``world_size``-th, from its rank)."""
    if group is None:
        return batch
    return batch[group.rank :: group.world_size]


def shard_sizes(n_rows, group):
    """The number of rows each rank gets of a global batch of ``n_rows`` (:func:`shard_batch`),
    in rank order: known on every rank without communication."""
    return [len(range(rank, n_rows, group.world_size)) for rank in range(group.world_size)]


def merge_short_tail(starts, n_samples, group):
    """Batch start positions without a last batch shorter than the number of ranks (it is
    merged into the one before), so that every rank has rows in every batch."""
    if group is None or len(starts) < 2 or n_samples - starts[-1] >= group.world_size:
        return starts
    return starts[:-1]


def average_gradients_(params, n_rows, group):
    """Replace each gradient by the rows-weighted mean of the ranks' gradients.

    ``n_rows`` is this rank's number of rows in the step. The weighted gradients and the row
    count travel in one flat buffer (one all-reduce). A parameter without a gradient on a
    rank counts as a zero gradient there.
    """
    if group is None:
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    # One buffer: the gradients (copied in once, weighted in place) and the row count.
    buffer = torch.cat([*(g.reshape(-1) for g in grads), grads[0].new_zeros(1)])
    buffer[:-1].mul_(float(n_rows))
    buffer[-1] = float(n_rows)
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    buffer[:-1].div_(buffer[-1])
    offset = 0
    for p in params:  # each gradient becomes a view of the reduced buffer (no copy)
        p.grad = buffer[offset : offset + p.numel()].view_as(p)
        offset += p.numel()


def gather_rows(group, *tensors, sizes):
    """Concatenate each tensor's rows over the ranks, in rank order (sizes may differ).

    Every rank gets the same result. With one tensor, returns a tensor; else a tuple.
    ``sizes`` is each rank's number of rows, which every rank computes for itself (a
    mini-batch's shares: :func:`shard_sizes`; a pass's blocks: :func:`block_sizes`), so
    that no count travels and nothing waits for the device.
    """
    if group is None:
        return tensors[0] if len(tensors) == 1 else tensors
    first = tensors[0]
    all_sizes = list(sizes)
    if all_sizes[group.rank] != first.shape[0]:
        raise RuntimeError(f"gather_rows: rank {group.rank} has {first.shape[0]} rows, "
                           f"expected {all_sizes[group.rank]}")
    longest = max(all_sizes)
    gathered = []
    for t in tensors:
        padded = t
        if t.shape[0] < longest:
            padded = torch.cat([t, t.new_zeros((longest - t.shape[0], *t.shape[1:]))])
        parts = [torch.empty_like(padded) for _ in range(group.world_size)]
        dist.all_gather(parts, padded.contiguous())
        gathered.append(torch.cat([part[:size] for part, size in zip(parts, all_sizes)]))
    return gathered[0] if len(gathered) == 1 else tuple(gathered)


def block_sizes(n_samples, chunk_rows, group):
    """The number of rows in each rank's :func:`chunk_block`, in rank order."""
    blocks = [chunk_block(n_samples, chunk_rows, replace(group, rank=rank))
              for rank in range(group.world_size)]
    return [max(0, stop - start) for start, stop in blocks]  # no chunk left: 0 rows


def chunk_block(n_samples, chunk_rows, group):
    """The half-open row range of this rank's contiguous block of ``chunk_rows`` chunks."""
    n_chunks = -(-n_samples // chunk_rows)
    per_rank, extra = divmod(n_chunks, group.world_size)
    first = group.rank * per_rank + min(group.rank, extra)
    count = per_rank + (1 if group.rank < extra else 0)
    return first * chunk_rows, min((first + count) * chunk_rows, n_samples)

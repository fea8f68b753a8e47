"""Shared engine: device resolution, seeded RNG scope and mini-batch access to host data.

Every estimator of the package goes through these helpers so that device handling,
seeding and data movement are implemented once.
"""

import contextlib
import math
import mmap
import os
import random
import sys
import time
import warnings
import weakref

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import check_random_state

from ._distributed import (
    average_gradients_,
    broadcast_,
    merge_short_tail,
    shard_batch,
    sum_across_,
    world_size,
)
from ._kmeans import autocast_dtype

__all__ = [
    "PRECISIONS",
    "HostData",
    "TrainingDivergedError",
    "adam_rows_",
    "backward_step",
    "caller_stacklevel",
    "check_finite",
    "check_random_state_local",
    "cpu_has_native_bf16",
    "epoch_loop",
    "host_tensor",
    "make_optimizer",
    "minibatch_pass",
    "progress_message",
    "resolve_device",
    "rng_scope",
    "run_epochs",
    "seeded_generator",
]

#: Rows per chunk for full passes over the data (distances, predictions). Large enough to
#: amortise the per-call overhead, small enough for the working set to stay in cache.
CHUNK_ROWS = 32768


_INTERNAL_DIRS = None


def caller_stacklevel():
    """The ``stacklevel`` that makes a warning point at the user's line.

    For a ``warnings.warn`` issued by the function that calls this one: counts the frames up
    to the first one outside this package, scikit-learn, torch and :mod:`contextlib` (their
    wrappers: ``Pipeline``, ``GridSearchCV``, ``_fit_context``, ``torch.no_grad``), so the
    warning names the line of the user's script whatever the call path.
    """
    global _INTERNAL_DIRS
    if _INTERNAL_DIRS is None:
        import sklearn

        packages = (__file__, sklearn.__file__, torch.__file__)
        _INTERNAL_DIRS = (*(os.path.dirname(os.path.abspath(path)) + os.sep
                            for path in packages), os.path.abspath(contextlib.__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _INTERNAL_DIRS):
        frame, level = frame.f_back, level + 1
    return level


def resolve_device(device):
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` (or None) selects CUDA when it is available and the CPU otherwise. A requested
    CUDA device that does not exist warns and falls back to the CPU, so that a script written
    on a GPU machine still runs on a laptop.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"}, torch.device or None

    Returns
    -------
    torch.device
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = 0 if dev.index is None else dev.index
        if index >= n_gpus:
            warnings.warn(
                f"device={device!r} was requested but "
                + ("CUDA is not available" if n_gpus == 0
                   else f"only {n_gpus} CUDA device(s) exist")
                + "; falling back to the CPU.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
            return torch.device("cpu")
        return dev
    raise ValueError(f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda' or 'cuda:N'.")


def check_random_state_local(random_state):
    """:func:`sklearn.utils.check_random_state` that never draws from numpy's global RNG.

    ``None`` gives a fresh :class:`numpy.random.RandomState` seeded from OS entropy (instead
    of numpy's global singleton), so that fitting with ``random_state=None`` leaves the
    caller's global random state exactly as it was.
    """
    if random_state is None:
        seed = np.random.SeedSequence().generate_state(1)[0]
        return np.random.RandomState(seed)
    return check_random_state(random_state)


def seeded_generator(seed, device):
    """A dedicated :class:`torch.Generator` on ``device`` seeded with ``seed``.

    All random draws of an estimator (initialisation, shuffling, Gumbel noise) go through
    such a generator, never through torch's global RNG.
    """
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


@contextlib.contextmanager
def rng_scope(seed, device=None):
    """Run a block with torch's global RNG seeded by ``seed``, then restore the caller's state.

    Layers that draw from the global RNG (``nn.Linear`` initialisation, dropout) become
    reproducible inside the block, while the global states of torch (CPU and CUDA), numpy and
    :mod:`random` seen by the caller are exactly what they were before. On CUDA the block
    also runs with cuDNN's deterministic convolution algorithms (no autotuning), since its
    default ones add gradients in an order that changes from run to run; the caller's
    cuDNN settings are restored after it.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    devices = []
    if device is not None and torch.device(device).type == "cuda":
        devices = [torch.device(device)]
    cudnn = torch.backends.cudnn
    cudnn_state = (cudnn.deterministic, cudnn.benchmark)
    with torch.random.fork_rng(devices=devices, enabled=True):
        torch.manual_seed(int(seed))
        if devices:
            cudnn.deterministic, cudnn.benchmark = True, False
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            cudnn.deterministic, cudnn.benchmark = cudnn_state


def host_tensor(X):
    """A CPU tensor sharing memory with the dense array ``X`` (no copy when C-contiguous).

    Read-only inputs (memory maps) are accepted: the tensor is never written to.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(X))


class HostData:
    """Read-only access to a training set kept on the host, in mini-batches on a device.

    Dense arrays are wrapped without a copy; CSR matrices are densified one batch at a
    time. Nothing is copied per epoch: a shuffled epoch gathers each batch by index. A
    memory-mapped array (:class:`numpy.memmap`, ``np.load(..., mmap_mode="r")``) is read
    from its file batch by batch (:class:`FileRows`), so that the process never holds more
    of it than a batch or a chunk, whatever its size. When the device is a GPU and
    ``keep_on_device`` is true the whole (dense) set is moved once and batches are slices
    of it (a memory-mapped set is copied there block by block).

    Parameters
    ----------
    X : ndarray, scipy CSR matrix or Tensor of shape (n_samples, n_features)
        A tensor may already live on ``device`` (e.g. an embedding computed there).
    device : torch.device
    dtype : torch.dtype
    sample_weight : ndarray of shape (n_samples,) or None
    keep_on_device : bool, default=True
    offset : array-like of shape (n_features,) or None
        Subtracted from every row handed out (batches, chunks, rows). Computing distances on
        centred data keeps float32 precise when the data sit far from the origin (KMeans
        centres a copy of X for the same reason; here no copy is made).
    """

    #: The process group whose ranks share the mini-batches and passes (None: this process
    #: alone). Set by the deep estimators' ``fit`` inside ``torch.distributed``.
    group = None

    def __init__(self, X, device, dtype, sample_weight=None, keep_on_device=True, offset=None):
        self.n_samples, self.n_features = X.shape
        self.device = device
        self.dtype = dtype
        self.batch_rows = None  # rows of the current global mini-batch (minibatches)
        self.sparse = sp.issparse(X)
        if self.sparse:
            self._X = X.tocsr()
            self._tensor = None
            self._file = None
        else:
            # A memory-mapped X is read from its file (FileRows): batches, chunks and a
            # device copy, converted to ``dtype`` block by block, never a whole copy on
            # the host. ``_tensor`` still views the map (for direct reads).
            self._file = None if torch.is_tensor(X) else FileRows.of(X)
            t = X if torch.is_tensor(X) else host_tensor(X)
            if self._file is not None:
                if device.type != "cpu" and keep_on_device:
                    t = self._file_to_device()
                    self._file = None
            else:
                if t.dtype != dtype:
                    t = t.to(dtype)
                if device.type != "cpu" and keep_on_device:
                    t = t.to(device)
            self._tensor = t
        self.offset = None
        if offset is not None:
            self.offset = torch.as_tensor(np.asarray(offset), dtype=dtype).to(device)
        if sample_weight is None:
            self.sample_weight = None
        else:
            self.sample_weight = torch.as_tensor(sample_weight, dtype=dtype).to(device)
        self._sq_norms = None

    def sq_norms(self, index=None, compute=True):
        """Squared norms ``||x_i||²`` of the rows handed out (offset subtracted), for the
        rows ``index``: a slice, a 1-D tensor of positions on the device, or None for every
        row.

        Computed once, in one pass over :meth:`chunks`, the first time they are asked for,
        and kept on the device (``n_samples`` values) for every later pass of the fit
        (k-means++, Lloyd steps, concrete steps, assignments). With ``compute=False`` they
        are returned only when already computed (else None): a single pass over the data
        computes the norms of its own chunks rather than read the data twice. The rows are
        taken to be fixed for the life of this object.
        """
        if self._sq_norms is None:
            if not compute:
                return None
            norms = None
            for start, stop, xb in self.chunks():
                if norms is None:
                    norms = torch.empty(self.n_samples, dtype=xb.dtype, device=xb.device)
                norms[start:stop] = (xb * xb).sum(dim=1)
            self._sq_norms = norms
        if index is None:
            return self._sq_norms
        if isinstance(index, slice):
            return self._sq_norms[index]
        return self._sq_norms.index_select(0, index)

    def rows(self, idx):
        """Dense rows ``idx`` (a 1-D integer tensor or array) on the device."""
        if self.sparse:
            idx_np = idx.cpu().numpy() if torch.is_tensor(idx) else np.asarray(idx)
            block = self._X[idx_np].toarray()
            return self._shift(torch.from_numpy(block).to(device=self.device, dtype=self.dtype))
        if self._file is not None:
            idx_np = idx.cpu().numpy() if torch.is_tensor(idx) else np.asarray(idx)
            block = self._file.gather(idx_np)
            # A blocking copy to a GPU: the read buffer is reused once the block is dropped.
            return self._shift(block.to(device=self.device, dtype=self.dtype))
        idx = torch.as_tensor(idx, device=self._tensor.device)
        # index_select is much faster than advanced indexing for row gathers on the CPU.
        block = torch.index_select(self._tensor, 0, idx).to(self.device, non_blocking=True)
        return self._shift(block)

    def take(self, idx, dtype=None):
        """The rows ``idx`` (1-D positions) as a HostData of their own, in ``dtype`` (default
        this one's), with their sample weights: CSR rows stay sparse (densified per batch),
        dense rows are gathered once, the offset already subtracted."""
        dtype = self.dtype if dtype is None else dtype
        idx_np = idx.cpu().numpy() if torch.is_tensor(idx) else np.asarray(idx)
        weights = self.weights(torch.from_numpy(idx_np))
        weights = None if weights is None else weights.cpu()
        if self.sparse:
            offset = None if self.offset is None else self.offset.cpu().numpy()
            return HostData(self._X[idx_np], self.device, dtype, weights, offset=offset)
        return HostData(self.rows(idx_np).to(dtype), self.device, dtype, weights)

    def _file_to_device(self):
        """The memory-mapped set on the device, filled block by block from its file."""
        out = torch.empty((self.n_samples, self.n_features), dtype=self.dtype,
                          device=self.device)
        for start, stop, block in self._file.blocks():
            out[start:stop] = block.to(device=self.device, dtype=self.dtype)
        return out

    def _shift(self, block, fresh=True):
        """Subtract the offset; in place when ``block`` is a fresh copy, never on a view of X."""
        if self.offset is None:
            return block
        return block.sub_(self.offset) if fresh else block - self.offset

    def weights(self, idx):
        """Sample weights of rows ``idx`` on the device, or None when unweighted."""
        if self.sample_weight is None:
            return None
        if torch.is_tensor(idx):
            idx = idx.to(self.device)
        return self.sample_weight[idx]

    def chunks(self, chunk_rows=None, first=0, last=None):
        """Yield ``(start, stop, X[start:stop])`` over the data in order, dense on the device.

        ``chunk_rows`` None: :data:`CHUNK_ROWS` rows, or for a memory-mapped set as many as
        fit in :data:`SCAN_BYTES` (at most :data:`CHUNK_ROWS`): its reads go through two
        pooled buffers that live as long as this object, which full chunks would keep at
        about 200 MB for 784 float32 features. ``first`` and ``last`` (a half-open range of
        rows, ``first`` a multiple of the chunk size) restrict the pass to those rows, cut
        into the same chunks as a full pass.
        """
        if chunk_rows is None:
            chunk_rows = CHUNK_ROWS
            if self._file is not None:
                chunk_rows = max(1, min(CHUNK_ROWS, SCAN_BYTES // self._file.row_bytes))
        end = self.n_samples if last is None else min(last, self.n_samples)
        for start in range(first, end, chunk_rows):
            stop = min(start + chunk_rows, end)
            if self.sparse:
                block = torch.from_numpy(self._X[start:stop].toarray())
                yield start, stop, self._shift(block.to(device=self.device, dtype=self.dtype))
            elif self._file is not None:
                block = self._file.read(start, stop)
                yield start, stop, self._shift(block.to(device=self.device, dtype=self.dtype))
            else:
                block = self._tensor[start:stop].to(self.device, non_blocking=True)
                yield start, stop, self._shift(block, fresh=False)

    def chunks_with_index(self, chunk_rows=None):
        """Yield ``(slice, X[slice])`` over the data in order (index usable with ``weights``)."""
        for start, stop, xb in self.chunks(chunk_rows):
            yield slice(start, stop), xb

    def minibatches(self, batch_size, generator, shuffle=True):
        """Yield ``(idx, X[idx])`` for one shuffled epoch; ``idx`` is a tensor on the device.

        Inside a process group (``group``, set by the deep estimators' ``fit``), every rank
        uses rank 0's order and yields its share of each global batch
        (:mod:`skdeepcluster._distributed`). With ``shuffle=False`` (one process only) the
        rows come in order, ``idx`` a slice, and nothing is drawn from ``generator``: for a
        pass whose single batch holds every row, whose gradient the order cannot change.
        """
        if not shuffle and self.group is None:
            for start, stop, xb in self.chunks(batch_size):
                self.batch_rows = stop - start
                yield slice(start, stop), xb
            return
        perm = torch.randperm(self.n_samples, generator=generator, device=generator.device)
        perm = broadcast_(perm.to(self.device), self.group)
        starts = merge_short_tail(list(range(0, self.n_samples, batch_size)), self.n_samples,
                                  self.group)
        for start, stop in zip(starts, [*starts[1:], self.n_samples]):
            idx = shard_batch(perm[start:stop], self.group)
            self.batch_rows = stop - start  # the global batch's rows (every rank's shares)
            yield idx, self.rows(idx)


#: Bytes per read when a file-backed array is scanned in order (the NaN/infinity check,
#: :func:`row_blocks`, filling a device copy).
SCAN_BYTES = 4 * 2**20


def _mmap_base(X):
    """Whether ``X`` (an ndarray) views the memory of an :class:`mmap.mmap` (a memory map)."""
    base = X
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return isinstance(base, mmap.mmap)


def _shared_file_mapping(address, nbytes):
    """The shared file mapping of this process that holds ``[address, address + nbytes)``.

    Read from ``/proc/self/maps`` (Linux): ``(start, stop, file_offset, (major, minor, inode),
    path)`` of the mapping, or None (no such mapping, a private or anonymous one, or no
    ``/proc``).
    """
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                start, stop = (int(v, 16) for v in fields[0].split("-"))
                if not start <= address < stop:
                    continue
                inode = int(fields[4])
                if address + nbytes > stop or fields[1][3] != "s" or inode == 0:
                    return None
                major, minor = (int(v, 16) for v in fields[3].split(":"))
                path = fields[5].rstrip("\n") if len(fields) > 5 else ""
                return start, stop, int(fields[2], 16), (major, minor, inode), path
    except (OSError, ValueError, IndexError):
        return None
    return None


#: What :func:`sys.getrefcount` reports for an object that only a list refers to (the
#: interpreter's own count for the call; measured, as it differs between versions).
_ONLY_REF = (lambda probe: sys.getrefcount(probe[0]))([object()])


class FileRows:
    """Rows of a memory-mapped array read with positional reads (``os.preadv``) of its file.

    Every page of a memory map that the process reads becomes part of its resident memory
    (``RssFile``) and stays there while the map lives: one shuffled epoch over a
    :class:`numpy.memmap` makes the whole file resident in the process. Reading the same
    bytes with ``preadv`` into a fresh buffer goes through the operating system's page
    cache only, which the process does not hold: its resident memory stays at one batch,
    whatever the size of the file, and the bytes are those the map shows.

    Built by :meth:`of` for a C-contiguous array that lies in a *shared* file mapping of
    this process (``np.memmap`` modes ``"r"``, ``"r+"``, ``"w+"``; ``np.load(...,
    mmap_mode="r")``); the file opened is checked to be the mapped one (device and inode).
    Linux only (``/proc/self/maps``): elsewhere :meth:`of` returns None and callers read
    through the map as before.

    Parameters
    ----------
    fd : int
        Open file descriptor of the file (closed with this object).
    offset : int
        Position of the array's first byte in the file.
    shape : tuple of int
        ``(n_samples, n_features)``.
    dtype : numpy dtype
        Native byte order.
    """

    #: Read buffers kept for reuse (two: the block a caller holds and the next one).
    POOL_SIZE = 2

    def __init__(self, fd, offset, shape, dtype):
        self._fd = fd
        weakref.finalize(self, os.close, fd)
        self.offset = int(offset)
        self.n_samples, self.n_features = (int(v) for v in shape)
        self.dtype = np.dtype(dtype)
        self.torch_dtype = torch.from_numpy(np.empty(0, dtype=self.dtype)).dtype
        self.row_bytes = self.n_features * self.dtype.itemsize
        self._pool, self._rows = [], []  # read buffers and their rows' views

    @classmethod
    def of(cls, X):
        """A reader of ``X`` when it is a C-contiguous 2-D view of a shared file mapping,
        else None (an array in memory, a copy-on-write map, another platform)."""
        if not (hasattr(os, "preadv") and isinstance(X, np.ndarray) and X.ndim == 2
                and X.size > 0 and X.flags.c_contiguous and X.dtype.isnative
                and X.dtype.kind in "biuf" and _mmap_base(X)):
            return None
        address = X.__array_interface__["data"][0]
        mapping = _shared_file_mapping(address, X.nbytes)
        if mapping is None:
            return None
        start, stop, file_offset, file_id, path = mapping
        offset = file_offset + (address - start)
        # The mapping's own file first (works even when the path was unlinked, but needs
        # privileges), then its path; either must be the very file that is mapped.
        for candidate in (f"/proc/self/map_files/{start:x}-{stop:x}", path):
            if not candidate.startswith("/"):
                continue
            try:
                fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                continue
            st = os.fstat(fd)
            if ((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino) == file_id
                    and st.st_size >= offset + X.nbytes):
                try:
                    return cls(fd, offset, X.shape, X.dtype)
                except TypeError:  # a dtype torch does not have
                    pass
            os.close(fd)
        return None

    def _read_into(self, view, position):
        done = 0
        while done < len(view):
            n = os.preadv(self._fd, (view[done:],), position + done)
            if n <= 0:
                raise OSError(f"the file of a memory-mapped array ended at byte "
                              f"{position + done}: was it truncated?")
            done += n

    def _buffer(self, n_rows, row_views=False):
        """A ``(n_rows, n_features)`` CPU tensor to read into (and the rows' byte views).

        Its memory is an anonymous memory map of its own (page aligned, returned to the
        system when the last tensor on it dies), reused when a later read finds that no
        tensor uses it any more: a pass over the data (``for start, stop, xb in
        data.chunks()``) alternates between two buffers instead of allocating one per
        chunk, whose frees between the results the caller keeps (``embed``) would
        fragment the allocator's heap and keep about a chunk's memory per chunk resident.
        A buffer still in use (a caller kept a block or a view of it) is never written.

        Returns the tensor and, with ``row_views``, a list of ``(memoryview,)`` of its rows
        (made once per pooled buffer; they refer to the map, not to the array whose
        references are counted), else None.
        """
        nbytes = n_rows * self.row_bytes
        # A pooled buffer is unused when only the pool refers to it: every tensor (and
        # view) made from it holds a reference to it through its storage.
        free = [i for i in range(len(self._pool))
                if sys.getrefcount(self._pool[i]) == _ONLY_REF]
        slot = next((i for i in free if self._pool[i].size >= nbytes),
                    free[0] if free else len(self._pool))
        if slot < len(self._pool) and self._pool[slot].size >= nbytes:
            flat = self._pool[slot]
        else:  # a new buffer, pooled in place of a smaller free one or in a new slot
            flat = np.frombuffer(mmap.mmap(-1, max(nbytes, 1)), dtype=np.uint8)
            if slot < len(self._pool):
                self._pool[slot], self._rows[slot] = flat, None
            elif slot < self.POOL_SIZE:
                self._pool.append(flat)
                self._rows.append(None)
            else:
                slot = None
        rows = None
        if row_views:
            rows = None if slot is None else self._rows[slot]
            if rows is None:
                memory, rb = memoryview(flat.base), self.row_bytes
                rows = [(memory[j * rb:(j + 1) * rb],) for j in range(flat.size // rb)]
                if slot is not None:
                    self._rows[slot] = rows
        array = flat[:nbytes].view(self.dtype).reshape(n_rows, self.n_features)
        return torch.from_numpy(array), rows

    def read(self, start, stop):
        """Rows ``start:stop`` as a CPU tensor of the array's dtype, in one read.

        The tensor is the caller's until it (and every view of it) is dropped; its memory
        is then reused by a later read.
        """
        out, _ = self._buffer(stop - start)
        self._read_into(memoryview(out.numpy()).cast("B"),
                        self.offset + start * self.row_bytes)
        return out

    def gather(self, idx):
        """Rows ``idx`` (1-D integer positions, in order), as :meth:`read`: one read per
        row."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_samples):
            raise IndexError(f"row index out of range for {self.n_samples} rows.")
        out, rows = self._buffer(idx.size, row_views=True)
        rb, fd = self.row_bytes, self._fd
        for row, position in zip(rows, (idx * rb + self.offset).tolist()):
            if os.preadv(fd, row, position) != rb:
                self._read_into(row[0], position)
        return out

    def blocks(self, max_bytes=None):
        """Yield ``(start, stop, rows)`` over the array in order, about ``max_bytes`` a read
        (default :data:`SCAN_BYTES`)."""
        step = max(1, (max_bytes or SCAN_BYTES) // self.row_bytes)
        for start in range(0, self.n_samples, step):
            stop = min(start + step, self.n_samples)
            yield start, stop, self.read(start, stop)


def row_blocks(X, max_bytes=None):
    """Yield ``(start, stop, X[start:stop])`` over a dense 2-D array as ndarrays, in order,
    about ``max_bytes`` (default :data:`SCAN_BYTES`) at a time.

    A memory-mapped ``X`` is read through :class:`FileRows` (its pages do not become part of
    the process's memory); another array is sliced (views, no copy).
    """
    reader = FileRows.of(X)
    if reader is not None:
        for start, stop, block in reader.blocks(max_bytes):
            yield start, stop, block.numpy()
        return
    step = max(1, (max_bytes or SCAN_BYTES) // max(1, X.shape[1] * X.dtype.itemsize))
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        yield start, stop, X[start:stop]


def assert_finite_rows(X, *, estimator_name=None, input_name="X"):
    """scikit-learn's NaN and infinity check of a dense ``X``, block by block.

    Raises the ValueError :func:`sklearn.utils.assert_all_finite` raises (same messages,
    e.g. ``"Input X contains NaN."``), reading ``X`` through :func:`row_blocks`.
    """
    from sklearn.utils import assert_all_finite

    for _, _, block in row_blocks(X):
        assert_all_finite(block, allow_nan=False, estimator_name=estimator_name,
                          input_name=input_name)


def check_host_data(estimator, X, *, reset):
    """``validate_data`` of the deep estimators' ``X``: CSR, or dense float32/float64 in C order.

    As ``validate_data(estimator, X, accept_sparse="csr", dtype=[np.float32, np.float64],
    order="C", accept_large_sparse=False, reset=reset)``, which copies nothing that already
    has that form (a read-only :class:`numpy.memmap` included). For a memory-mapped ``X`` the
    NaN and infinity check reads the file block by block (:func:`assert_finite_rows`, same
    error messages) instead of through the map, which would make the whole file resident
    in the process.
    """
    from sklearn.utils.validation import validate_data

    kwargs = {"accept_sparse": "csr", "dtype": [np.float32, np.float64], "order": "C",
              "accept_large_sparse": False, "reset": reset}
    if not (isinstance(X, np.ndarray) and _mmap_base(X)):
        return validate_data(estimator, X, **kwargs)
    X = validate_data(estimator, X, ensure_all_finite=False, **kwargs)
    assert_finite_rows(X, estimator_name=type(estimator).__name__)
    return X


def inference_device(device):
    """The device of ``predict``/``transform``: ``device`` resolved as in ``fit`` but without
    its warning (``fit`` gave it), so that an unavailable GPU means the CPU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return resolve_device(device)


#: Devices whose parameters get PyTorch's fused optimiser kernels.
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")


def make_optimizer(name, params, learning_rate, momentum=0.0):
    """The optimiser of a training phase: ``"adam"``, or ``"sgd"`` with ``momentum``.

    PyTorch's fused implementation is used when every parameter is a floating-point tensor
    on the CPU or a CUDA device: it updates each parameter in one pass over its memory,
    where the default implementation makes about eight passes per Adam step (17 % of an
    MLP pretraining epoch on 2 CPU cores; fused, 5 %: ``benchmarks/bench_gemm_limit.py``).
    Fused SGD computes exactly what the default does; fused Adam evaluates the same update
    in another order, so its results differ from the default implementation's in the last
    bits (and are as reproducible). Other parameters get the default implementation.
    """
    params = list(params)
    if name == "sgd":
        cls, options = torch.optim.SGD, {"lr": learning_rate, "momentum": momentum}
    elif name == "adam":
        cls, options = torch.optim.Adam, {"lr": learning_rate}
    else:
        raise ValueError(f"optimizer={name!r} is not supported; use 'adam' or 'sgd'.")
    fused = bool(params) and all(
        p.device.type in FUSED_OPTIMIZER_DEVICES and p.is_floating_point() for p in params)
    return cls(params, fused=fused or None, **options)


#: The ``precision`` parameter of the deep estimators: the dtype their network computes in
#: (``None``: as the caller's context has it, float32 unless inside a ``torch.autocast``).
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


def cpu_has_native_bf16():
    """Whether this CPU computes bfloat16 products natively (AVX512-BF16 or AMX tiles)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def precision_scope(precision, device):
    """The context a deep estimator's network computes in for its ``precision`` parameter.

    ``"float32"`` adds nothing (a caller's own :class:`torch.autocast` still applies);
    ``"bfloat16"`` is :class:`torch.autocast` on ``device``'s type in bfloat16. The closed-form
    steps (k-means, targets, distances) turn autocast off and compute in float32.
    """
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def backward_step(optimizer, loss, n_rows=None, group=None):
    """One optimiser step on ``loss``: zero the gradients, backpropagate, step.

    Inside a process group (``group``), the gradients of the optimiser's tensors are first
    averaged over the ranks, each weighted by its ``n_rows`` rows in the step
    (:func:`~skdeepcluster._distributed.average_gradients_`).

    Under :class:`torch.autocast` the cache of low-precision weight copies is emptied after
    the step: autocast keeps the copy of each weight it casts until the outermost autocast
    region exits, so in a fit run inside one every later step would compute with the
    first step's weights and the network would not train.
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if group is not None:
        average_gradients_([p for g in optimizer.param_groups for p in g["params"]], n_rows,
                           group)
    optimizer.step()
    if autocast_dtype(loss.device.type) is not None:
        torch.clear_autocast_cache()


def check_callbacks(callbacks):
    """The ``callbacks`` parameter as a list, or TypeError naming what is not callable."""
    if callbacks is None:
        return []
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(
                f"callbacks must be callables callback(estimator, record) -> bool; got "
                f"{type(cb).__name__}."
            )
    return callbacks


def forget_fit(estimator):
    """Delete every fitted attribute (trailing underscore): what a failed ``fit`` leaves.

    Every estimator of the package ends unfitted when ``fit`` raises (or is interrupted),
    rather than with a mix of old and new attributes.
    """
    for name in [k for k in vars(estimator) if k.endswith("_") and not k.startswith("__")]:
        delattr(estimator, name)


class TrainingDivergedError(ValueError, FloatingPointError):
    """A training loss became NaN or infinite; the estimator is left unfitted.

    Subclasses both :class:`ValueError` (the usual scikit-learn error for bad settings) and
    :class:`FloatingPointError`.
    """


def progress_message(text):
    """Write one progress line (``verbose`` output) to stderr, through tqdm when installed so
    that it does not break an active progress bar."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        sys.stderr.write(text + "\n")
    else:
        tqdm.write(text, file=sys.stderr)


class _Progress:
    """One progress bar per phase when ``verbose`` (tqdm if installed, plain lines otherwise)."""

    def __init__(self, verbose, total, desc):
        self.bar = None
        self.lines = False
        if not verbose:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional
            self.lines = True
            self.desc = desc
            return
        self.bar = tqdm(total=total, desc=desc, leave=True)

    def update(self, record):
        shown = {k: v for k, v in record.items()
                 if k not in ("phase", "epoch", "seconds") and isinstance(v, float)}
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
            self.bar.update(1)
        elif self.lines:
            text = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
            progress_message(f"{self.desc} epoch {record['epoch']}: {text}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def epoch_loop(run_epoch, *, phase, n_epochs, converged=None, owner=None, callbacks=(),
               history=None, verbose=0, first_epoch=1, group=None):
    """The epoch loop of every training phase: records, progress, callbacks, stop rule.

    Parameters
    ----------
    run_epoch : callable ``run_epoch(epoch) -> dict``
        Runs one epoch; its dict (loss terms and other values) joins the epoch's record.
    phase : str
        Name of the phase, recorded in the history (e.g. ``"pretrain"``, ``"cluster"``).
    n_epochs : int
        Maximum number of epochs.
    converged : callable ``converged(record) -> bool``, optional
        Checked after every epoch; True ends the phase.
    owner : object, optional
        Passed to the callbacks (the estimator being fitted).
    callbacks : sequence of callables ``callback(owner, record) -> bool``
        Called after every epoch with the epoch's record; a truthy return stops training.
    history : list, optional
        Records (one dict per epoch: ``phase``, ``epoch``, the values of ``run_epoch``,
        ``seconds``) are appended to it.
    verbose : int
        0 prints nothing, 1 shows a progress bar for the phase.
    first_epoch : int, default=1
        Number of the first epoch (a phase that continues another one's count).
    group : ProcessGroup or None
        The ranks training together (recorded as ``world_size``, 1 for None).

    Returns
    -------
    n_run : int
        Number of epochs run.
    """
    if history is None:
        history = []
    progress = _Progress(verbose, n_epochs, phase)
    n_run = 0
    try:
        for epoch in range(first_epoch, first_epoch + n_epochs):
            start = time.perf_counter()
            record = {"phase": phase, "epoch": epoch}
            record.update(run_epoch(epoch))
            record["seconds"] = time.perf_counter() - start
            record["world_size"] = world_size(group)
            history.append(record)
            n_run += 1
            progress.update(record)
            stop = converged is not None and bool(converged(record))
            for callback in callbacks:
                if callback(owner, record):
                    record["stopped_by_callback"] = True
                    stop = True
            if stop:
                break
    finally:
        progress.close()
    return n_run


def check_finite(values, *, phase, epoch, diverged_hint):
    """Raise :class:`TrainingDivergedError` when a loss term of an epoch is not finite."""
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        kind = "NaN" if any(math.isnan(values[k]) for k in bad) else "infinite"
        raise TrainingDivergedError(
            f"The {phase} loss ({', '.join(bad)}) became {kind} at epoch {epoch} of the "
            f"{phase} phase; {diverged_hint}. Check that the input has no extreme values "
            "(scale it, e.g. with StandardScaler or MinMaxScaler)."
        )


def minibatch_pass(data, batch_size, generator, step, *, phase="train", epoch=1,
                   diverged_hint="the learning rate is probably too large", shuffle=True):
    """One shuffled pass over ``data`` in mini-batches: the body of a training epoch.

    The loss terms ``step`` returns stay on the device, are accumulated there and read back
    once, at the end of the pass (one synchronisation per epoch, none per step).

    Parameters
    ----------
    data : HostData
    batch_size : int
    generator : torch.Generator
        Draws the permutation.
    step : callable ``step(idx, X_batch) -> (terms, stop)``
        One optimisation step on the rows ``idx`` (a device tensor of their positions);
        ``terms`` maps names to detached scalar tensors (batch means), a true ``stop`` ends
        the pass after this step (a phase that converges mid-epoch).
    phase, epoch, diverged_hint
        Name the place and the likely cause in the error raised on a non-finite loss.
    shuffle : bool, default=True
        False: the rows in order (see ``HostData.minibatches``).

    Returns
    -------
    values : dict of str to float
        Each term averaged over the samples seen in the pass.
    stopped : bool
        Whether ``step`` asked to stop.

    Raises
    ------
    TrainingDivergedError
        When a loss term of the pass is NaN or infinite.
    """
    names, sums, seen, stopped = None, None, 0, False
    for idx, xb in data.minibatches(batch_size, generator, shuffle):
        terms, stopped = step(idx, xb)
        if names is None:
            names = list(terms)
        batch = torch.stack([terms[k] for k in names]) * xb.shape[0]
        sums = batch if sums is None else sums + batch
        seen += xb.shape[0]
        if stopped:
            break
    if names is None:
        return {}, stopped
    if data.group is not None:  # the epoch's means over every rank's rows
        totals = sum_across_(torch.cat([sums, sums.new_tensor([seen])]), data.group)
        sums, seen = totals[:-1], totals[-1]
    values = dict(zip(names, (sums / seen).tolist()))
    check_finite(values, phase=phase, epoch=epoch, diverged_hint=diverged_hint)
    return values, bool(stopped)


def run_epochs(data, *, phase, n_epochs, batch_size, generator, step, owner=None,
               epoch_begin=None, epoch_end=None, converged=None, callbacks=(), history=None,
               verbose=0, diverged_hint="the learning rate is probably too large"):
    """Epochs of shuffled mini-batch steps: :func:`epoch_loop` over :func:`minibatch_pass`.

    Parameters
    ----------
    data : HostData
    phase : str
    n_epochs : int
    batch_size : int
    generator : torch.Generator
        Shuffles the data.
    step : callable ``step(idx, X_batch, epoch) -> dict[str, Tensor]``
        One optimisation step; returns the batch means of the loss terms (detached scalars).
    owner, callbacks, history, verbose
        As in :func:`epoch_loop`.
    epoch_begin : callable ``epoch_begin(epoch) -> dict``, optional
        Called before each epoch; its dict joins the record.
    epoch_end : callable ``epoch_end(epoch) -> dict``, optional
        Called after each epoch; its dict joins the record.
    converged : callable ``converged(record) -> bool``, optional
        The stop rule, checked after every epoch (as in :func:`epoch_loop`).
    diverged_hint : str
        Likely cause named in the error raised when a loss is not finite.

    Returns
    -------
    n_run : int
        Number of epochs run.
    """

    def run_epoch(epoch):
        record = {} if epoch_begin is None else dict(epoch_begin(epoch))
        values, _ = minibatch_pass(data, batch_size, generator,
                                   lambda idx, xb: (step(idx, xb, epoch), False),
                                   phase=phase, epoch=epoch, diverged_hint=diverged_hint)
        record.update(values)
        if epoch_end is not None:
            record.update(epoch_end(epoch))
        return record

    return epoch_loop(run_epoch, phase=phase, n_epochs=n_epochs, converged=converged,
                      owner=owner, callbacks=callbacks, history=history, verbose=verbose,
                      group=data.group)


@torch.no_grad()
def adam_rows_(param, grad, idx, moments, lr, betas=(0.9, 0.999), eps=1e-8, prox=None):
    """One Adam step on the rows ``idx`` of ``param`` only ("lazy" Adam).

    For per-sample parameters (DCTLKMeans's free codes) trained on mini-batches: rows not in
    the batch keep their value and their moments (``torch.optim.Adam`` would keep moving
    them with their stale momentum). ``moments`` is ``(m, v, steps)``, the first and second
    moments (shaped as ``param``) and each row's step count, updated in place; ``idx``
    holds distinct row indices. ``prox``, if given, maps the stepped rows before they are
    written back (a proximal step).
    """
    m, v, steps = moments
    beta1, beta2 = betas
    steps[idx] += 1
    m_rows = m[idx].mul_(beta1).add_(grad, alpha=1.0 - beta1)
    v_rows = v[idx].mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    m[idx] = m_rows
    v[idx] = v_rows
    t = steps[idx].unsqueeze(1).to(param.dtype)
    update = (m_rows / (1.0 - beta1 ** t)) / ((v_rows / (1.0 - beta2 ** t)).sqrt_().add_(eps))
    rows = param[idx].sub_(update, alpha=lr)
    param[idx] = rows if prox is None else prox(rows)

"""How the package's OpenMP threads wait: briefly, so that they do not spin against other
processes (a second fit, joblib workers) or against scikit-learn's own OpenMP pool.

PyTorch's CPU kernels run on GNU OpenMP on Linux. After each parallel region its threads
spin, by default for up to 300 000 iterations, before they sleep. On a machine where
another CPU-bound process runs, a spinning thread holds a core the other process needs,
and each parallel region waits for the thread that was descheduled: two concurrent DEC fits
on ``load_digits`` took 40-91 s each instead of 11-12 s (2-core AMD EPYC). A short spin keeps
the quiet speed and bounds the loss under load (3 000 iterations: 9.5-10.6 s quiet, 21-23 s
each for two concurrent fits; ``benchmarks/bench_threads.py``).

The setting is an environment variable read once, when the OpenMP runtime is loaded (at
``import torch``): it applies when ``skdeepcluster`` is imported before ``torch`` and to
the worker processes that joblib starts afterwards. A value the user set (``GOMP_SPINCOUNT``
or ``OMP_WAIT_POLICY``) is never changed.

Inside a ``dask.distributed`` worker, :func:`limited_torch_threads` caps torch's intra-op
threads at the worker's share of the cores (:func:`torch_thread_share`). A worker process
started by a nanny (``LocalCluster(processes=True)``, ``dask worker``) already runs torch on
one thread (dask sets ``OMP_NUM_THREADS=1`` before it spawns the process), but a threaded
worker (``LocalCluster(processes=False)``) or one started with ``--no-nanny`` runs every
task on all the cores: on 2 cores with 2 task threads, two fits at 2 threads each.
"""

import contextlib
import os
import sys
import threading

__all__ = ["OPENMP_SPINCOUNT", "configure_openmp_wait", "limited_torch_threads",
           "openmp_wait_configured", "torch_thread_share", "torch_threads"]

#: Spin iterations of an idle GNU OpenMP thread before it sleeps (libgomp's default:
#: 300 000; 0 would be OMP_WAIT_POLICY=PASSIVE, which slowed many small parallel regions).
OPENMP_SPINCOUNT = 3000


def configure_openmp_wait(environ=os.environ):
    """Set ``GOMP_SPINCOUNT`` unless the user chose a wait policy; returns the value in
    force afterwards (None when the user set ``OMP_WAIT_POLICY`` instead)."""
    if "GOMP_SPINCOUNT" not in environ and "OMP_WAIT_POLICY" not in environ:
        environ["GOMP_SPINCOUNT"] = str(OPENMP_SPINCOUNT)
    return environ.get("GOMP_SPINCOUNT")


def openmp_wait_configured():
    """Whether torch's OpenMP runtime was loaded after the setting (torch imported after
    this module), i.e. whether it is in effect for this process."""
    return _TORCH_LOADED_BEFORE is False


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``n_threads`` torch intra-op threads (None: leave them as they are).

    A fit whose every operation is small runs faster on one thread: waking the OpenMP pool
    for an operation of a few tens of microseconds costs more than it saves. The previous
    setting is restored on exit (it is process-wide, as ``torch.set_num_threads`` is).
    """
    if n_threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    if n_threads >= previous:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def torch_thread_share():
    """Number of torch intra-op threads a fit may use in the current context.

    Returns
    -------
    n_threads : int or None
        Inside a task of a ``dask.distributed`` worker: the cores this process may run on
        divided by the worker's task threads (``nthreads``), at least 1. None elsewhere
        (leave torch as it is: joblib's own process workers already limit their threads).

    Notes
    -----
    dask is never imported here: outside a worker process it is either not loaded or the
    lookup of the current worker fails. Workers of other processes on the same host are
    not counted (a nanny's worker runs torch on one thread anyway).
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        nthreads = distributed.get_worker().state.nthreads
    except (AttributeError, ValueError):  # not in a task of a worker
        return None
    return max(1, _available_cores() // max(1, nthreads))


_limit_lock = threading.Lock()
_limit_users = 0
_limit_saved = None


@contextlib.contextmanager
def limited_torch_threads():
    """Run the block with at most :func:`torch_thread_share` torch intra-op threads.

    The thread count is process-wide (``torch.set_num_threads`` from one thread changes it
    for all): concurrent blocks of a threaded dask worker share one setting, which the last
    block to exit restores to the value that was in force before the first one. Outside a
    dask worker, and where torch already uses no more threads than the share, nothing
    changes.
    """
    global _limit_users, _limit_saved
    n_threads = torch_thread_share()
    if n_threads is None:
        yield
        return
    import torch

    with _limit_lock:
        if _limit_users == 0:
            _limit_saved = torch.get_num_threads()
        _limit_users += 1
        if torch.get_num_threads() > n_threads:
            torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                if torch.get_num_threads() != _limit_saved:
                    torch.set_num_threads(_limit_saved)
                _limit_saved = None


_TORCH_LOADED_BEFORE = "torch" in sys.modules
configure_openmp_wait()

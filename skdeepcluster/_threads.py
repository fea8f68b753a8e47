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
"""

import contextlib
import os
import sys

__all__ = ["OPENMP_SPINCOUNT", "configure_openmp_wait", "openmp_wait_configured",
           "torch_threads"]

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


_TORCH_LOADED_BEFORE = "torch" in sys.modules
configure_openmp_wait()

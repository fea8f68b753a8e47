"""Fit times under load with two OpenMP wait settings (user guide, "Threads on a shared
machine").

For each setting (libgomp's default spin, ``GOMP_SPINCOUNT=300000``, and the package's
``3000``), in fresh processes: a DEC fit on ``load_digits`` (``pretrain_epochs=30,
max_iter=10``) quiet, beside a busy-loop process, and two such fits at once; and
ShallowConcreteKMeans on standardised pendigits (``n_init=10``, median of 5, when
``../shared/data`` is there), quiet and beside a busy loop; then, with the package's
setting, ``GridSearchCV`` of DEC on ``load_digits`` (2 x 2 grid, ``cv=2``: 8 fits and a
refit) with ``n_jobs=1`` and ``n_jobs=2``. Prints Markdown tables. About 7 minutes on 2
cores.

Example::

    python benchmarks/bench_threads.py
"""

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

DEC_FIT = """
import time, warnings
warnings.simplefilter("ignore")
import sys; sys.path.insert(0, {root!r})
from skdeepcluster import DEC
from skdeepcluster.datasets import load_dataset
X, y, _ = load_dataset("digits")
t = time.perf_counter()
DEC(10, pretrain_epochs=30, max_iter=10, random_state=0).fit(X)
print(time.perf_counter() - t)
"""

SCKM_FIT = """
import time, sys
import numpy as np
sys.path.insert(0, {root!r})
from skdeepcluster import ShallowConcreteKMeans
from sklearn.preprocessing import StandardScaler
d = np.load({path!r})
X = StandardScaler().fit_transform(d["X"])
ShallowConcreteKMeans(10, n_init=1).fit(X[:200])
ts = []
for s in range(5):
    t = time.perf_counter(); ShallowConcreteKMeans(10, n_init=10, random_state=s).fit(X)
    ts.append(time.perf_counter() - t)
print(float(np.median(ts)))
"""


GRID_SEARCH = """
import time, warnings
warnings.simplefilter("ignore")
import sys; sys.path.insert(0, {root!r})
from sklearn.model_selection import GridSearchCV
from skdeepcluster import DEC
from skdeepcluster.datasets import load_dataset
X, y, _ = load_dataset("digits")
t = time.perf_counter()
GridSearchCV(DEC(10, pretrain_epochs=30, max_iter=10), {{"alpha": [1.0, 2.0],
             "random_state": [0, 1]}}, cv=2, n_jobs={n_jobs}).fit(X)
print(time.perf_counter() - t)
"""


def _env(spin):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env["GOMP_SPINCOUNT"] = str(spin)
    return env


def _run(code, env):
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            text=True)


def _seconds(proc):
    return float(proc.communicate()[0].split()[-1])


def _beside_busy_loop(code, env):
    """Seconds ``code`` reports while another process spins on a core."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        return _seconds(_run(code, env))
    finally:
        busy.kill()


def main():
    root = str(HERE.parent)
    dec = DEC_FIT.format(root=root)
    pendigits = HERE.parent.parent / "shared" / "data" / "pendigits.npz"
    rows = []
    for spin in (300000, 3000):
        env = _env(spin)
        quiet = _seconds(_run(dec, env))
        loaded = _beside_busy_loop(dec, env)
        pair = [_run(dec, env), _run(dec, env)]
        both = [_seconds(p) for p in pair]
        sckm = sckm_loaded = float("nan")
        if pendigits.exists():
            code = SCKM_FIT.format(root=root, path=str(pendigits))
            sckm = _seconds(_run(code, env))
            sckm_loaded = _beside_busy_loop(code, env)
        rows.append((spin, quiet, loaded, both, sckm, sckm_loaded))
    env = _env(3000)
    grid = {n_jobs: _seconds(_run(GRID_SEARCH.format(root=root, n_jobs=n_jobs), env))
            for n_jobs in (1, 2)}
    print("| GOMP_SPINCOUNT | DEC quiet s | beside a busy loop s | two at once s (each) | "
          "SCKM pendigits s | SCKM beside a busy loop s |")
    print("|---|---|---|---|---|---|")
    for spin, quiet, loaded, both, sckm, sckm_loaded in rows:
        print(f"| {spin} | {quiet:.1f} | {loaded:.1f} ({loaded / quiet:.1f}x) | "
              f"{both[0]:.1f} / {both[1]:.1f} ({max(both) / quiet:.1f}x) | {sckm:.3f} | "
              f"{sckm_loaded:.3f} ({sckm_loaded / sckm:.1f}x) |")
    print()
    print("| GridSearchCV of DEC on digits (8 fits + refit, GOMP_SPINCOUNT=3000) | s |")
    print("|---|---|")
    for n_jobs, seconds in grid.items():
        print(f"| n_jobs={n_jobs} | {seconds:.1f} |")


if __name__ == "__main__":
    main()

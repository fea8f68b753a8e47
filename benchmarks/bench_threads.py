"""Fit times under load with two OpenMP wait settings (user guide, "Threads on a shared
machine").

For each setting (libgomp's default spin, ``GOMP_SPINCOUNT=300000``, and the package's
``3000``), in fresh processes: a DEC fit on ``load_digits`` (``pretrain_epochs=30,
max_iter=10``) quiet, beside a busy-loop process, and two such fits at once; and
ShallowConcreteKMeans on standardised pendigits (``n_init=10``, median of 5, when
``../shared/data`` is there). Prints a Markdown table. About 5 minutes on 2 cores.

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


def _env(spin):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env["GOMP_SPINCOUNT"] = str(spin)
    return env


def _run(code, env):
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            text=True)


def _seconds(proc):
    return float(proc.communicate()[0].split()[-1])


def main():
    root = str(HERE.parent)
    dec = DEC_FIT.format(root=root)
    pendigits = HERE.parent.parent / "shared" / "data" / "pendigits.npz"
    rows = []
    for spin in (300000, 3000):
        env = _env(spin)
        quiet = _seconds(_run(dec, env))
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        try:
            loaded = _seconds(_run(dec, env))
        finally:
            busy.kill()
        pair = [_run(dec, env), _run(dec, env)]
        both = [_seconds(p) for p in pair]
        sckm = (_seconds(_run(SCKM_FIT.format(root=root, path=str(pendigits)), env))
                if pendigits.exists() else float("nan"))
        rows.append((spin, quiet, loaded, both, sckm))
    print("| GOMP_SPINCOUNT | DEC quiet s | beside a busy loop s | two at once s (each) | "
          "SCKM pendigits s |")
    print("|---|---|---|---|---|")
    for spin, quiet, loaded, both, sckm in rows:
        print(f"| {spin} | {quiet:.1f} | {loaded:.1f} ({loaded / quiet:.1f}x) | "
              f"{both[0]:.1f} / {both[1]:.1f} ({max(both) / quiet:.1f}x) | {sckm:.3f} |")


if __name__ == "__main__":
    main()

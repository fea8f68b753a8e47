"""Time to quality: seconds until our DEC and IDEC reach ClustPy's accuracy on mnist_test.

One run, one machine: for each method (DEC, IDEC) and seed, the peer ClustPy 0.0.3 is fitted
first (``shared/peers/clustpy_run.py mnist``, in its own virtualenv, as a subprocess), then our
estimator with its **default parameters** (``n_clusters=10, random_state=seed``, CPU). Its
target is ClustPy's ACC on the same data; our *time to quality* is the wall-clock time from
the start of ``fit`` until the first point at which the ACC of our current assignment on the
training labels reaches that target. The bar of issue 13 is ours / ClustPy <= 0.5.

Examples
--------
::

    # the full benchmark (~20 min on a quiet 2-core machine: ClustPy DEC ~2 min, IDEC
    # ~2.5 min, ours ~7 min each with the default 200 pretraining epochs)
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_time_to_quality.py \
        --clustpy-jsonl clustpy_mnist.jsonl --output time_to_quality.md
    # smoke run (2 000 rows, 5 + 5 epochs for both), ~1 min
    python benchmarks/bench_time_to_quality.py --quick
    # ours only, against ClustPy figures measured earlier (or, with no JSONL, the published
    # ones: DEC 0.552 in 113 s, IDEC 0.667 in 151 s)
    python benchmarks/bench_time_to_quality.py --skip-clustpy --clustpy-jsonl clustpy_mnist.jsonl
    # a variant of ours, e.g. ClustPy's pretraining length
    python benchmarks/bench_time_to_quality.py --params '{"pretrain_epochs": 50}'

The peer's virtualenv (see the docstring of ``clustpy_run.py``)::

    python3 -m venv /tmp/clustpy-venv
    echo "torch==2.13.0" > /tmp/clustpy-constraints.txt
    /tmp/clustpy-venv/bin/pip install torch==2.13.0
    /tmp/clustpy-venv/bin/pip install -c /tmp/clustpy-constraints.txt clustpy==0.0.3

Protocol
--------
* Data: ``mnist_test`` (10 000 images), pixels / 255 for both: ours through
  ``skdeepcluster.datasets.load_dataset`` (the documented [0, 1] scaling), ClustPy through
  its script, which divides the same ``.npz`` by 255.
* ClustPy: DEC / IDEC with its defaults except ``pretrain_epochs=50, clustering_epochs=50``
  (``--clustpy-epochs``; the script's protocol), ``device="cpu"``, ``random_state=seed``,
  ``TQDM_DISABLE=1``. Its figure is the ACC of its ``labels_`` (a final k-means on the
  embedding; ``--clustpy-target native`` takes its own DEC assignment ``dec_labels_``) and
  the wall-clock seconds of its whole ``fit``: there is no per-epoch trajectory for the peer,
  so its time to its own quality is its fit time. It runs with the environment this script
  was started with (skdeepcluster's ``GOMP_SPINCOUNT`` default, set when the package is
  imported, is not passed on unless the caller set it).
* Ours: ``DEC`` / ``IDEC`` with default parameters and ``device="cpu"`` (``--params`` adds
  overrides; ``memory`` is refused). The pretraining runs in every fit: the default
  ``memory=None`` means no cache (``benchmarks/.cache/pretrain`` is only used by
  ``bench_pretrain.py`` when asked), and the script checks that a callback saw every
  pretraining epoch and that no history record is marked ``cached``.
* ACC along the fit, with ``skdeepcluster.metrics.cluster_accuracy``: a callback
  (the estimators' ``callbacks`` parameter) runs after every clustering epoch and assigns
  the whole training set with the current encoder and centres by the estimator's own rule
  (what ``labels_`` would be if the fit stopped there). The callback receives only the
  estimator and the epoch's record, so it reads the fit state (network, centres) from the
  frame of the package's clustering phase (``inspect``), without changing it: the evaluation
  draws no random numbers and the labels are those of a fit without the callback. The
  initial point (k-means on the pretrained embedding) is read at the first epoch's callback
  from the state's labels, which DEC and IDEC keep until their first relabelling (after
  ``update_interval`` steps; used only while the state shows no target update but the
  initial one); its time is the first epoch's end minus that epoch's recorded seconds.
* The clock: ``time.perf_counter`` from just before ``fit`` is called; the time spent in
  the callbacks (embedding, assignment, ACC) is measured and subtracted from every later
  time and from the fit time, so the figures are those of a fit without evaluation.
* Table: ClustPy's ACC and seconds, our time to quality and the point it was reached at
  (``init`` or ``epoch N``), the ratio ours / ClustPy (bar <= 0.5), our final ACC, fit seconds,
  and our pretraining seconds (time at the last pretraining epoch's end). A second table
  gives the ACC trajectory at a few points.

With the defaults the bar is out of reach by construction: ``pretrain_epochs="auto"`` is 200
epochs on 10 000 rows (8 000 Adam steps), about 1.6-1.7 s each on 2 threads (``epoch_time.md``),
so the pretraining alone (~340 s) is about 3x ClustPy DEC's whole 50 + 50-epoch fit (113 s)
and 2.2x IDEC's (151 s), even when the target is reached at the k-means initialisation
(AE+KM reaches ACC 0.68 ± 0.04 after 200 epochs, 0.67 after 50, 0.61 after 12.5:
``deep_quality*.md``, ``pretrain_recipes.md``). ``--params '{"pretrain_epochs": N}'`` measures a
shorter pretraining.

Wall-clock figures: run it on a quiet machine; the header records the load average at the
start and each row's 1-minute load before its fit.
"""

from __future__ import annotations

import os

# The environment as the caller started this script, before ``import skdeepcluster`` adds
# its OpenMP wait setting: the peer runs with this one.
LAUNCH_ENV = dict(os.environ)

import argparse
import datetime
import inspect
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# skdeepcluster before torch, as a user's ``from skdeepcluster import DEC`` does: its OpenMP
# wait setting is read when torch loads the OpenMP runtime.
import skdeepcluster

OPENMP_WAIT_SET_BEFORE_TORCH = skdeepcluster._threads.openmp_wait_configured()

import numpy as np
import sklearn
import torch
from _envinfo import code_fingerprint, load_average

from skdeepcluster import DEC, IDEC
from skdeepcluster._base import FitState
from skdeepcluster.datasets import default_data_dir, load_dataset
from skdeepcluster.metrics import cluster_accuracy

METHODS = {"DEC": DEC, "IDEC": IDEC}
#: Figures measured with clustpy_run.py (its docstring): mnist_test, 50 + 50 epochs, CPU.
PUBLISHED = {"DEC": (0.552, 113.0), "IDEC": (0.667, 151.0)}
DEFAULT_CLUSTPY_PYTHON = "/tmp/clustpy-venv/bin/python"
DEFAULT_PEER = REPO_ROOT.parent / "shared" / "peers" / "clustpy_run.py"
BAR = 0.5
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "GOMP_SPINCOUNT",
            "OMP_WAIT_POLICY")
QUICK_ROWS = 2000
QUICK_EPOCHS = 5
#: Points of the fit shown in the trajectory table (all are in ``--records``).
TRAJECTORY_EPOCHS = (1, 2, 5, 10, 20, 50, 100, 150, 200)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- environment
def load_1m():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        return None


def environment_header(args, peer_env):
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines = ["## Environment", "",
             f"- date: {now}",
             f"- host: {platform.platform()}, os.cpu_count() {os.cpu_count()}",
             f"- python: {platform.python_version()} ({sys.executable})",
             f"- numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
             f"torch {torch.__version__} (cuda available: {torch.cuda.is_available()})",
             f"- torch.get_num_threads(): {torch.get_num_threads()}",
             f"- skdeepcluster {skdeepcluster.__version__}; code under test: "
             f"{code_fingerprint()}",
             f"- load average at start (1/5/15 min): {load_average()}"]
    for var in ENV_VARS:
        ours, launch = os.environ.get(var), LAUNCH_ENV.get(var)
        text = "unset" if ours is None else repr(ours)
        if var == "GOMP_SPINCOUNT":
            text += (" (skdeepcluster's OpenMP wait setting "
                     + ("in effect" if OPENMP_WAIT_SET_BEFORE_TORCH else "NOT in effect") + ")")
        if ours != launch:
            text += f"; ClustPy's process: {'unset' if launch is None else repr(launch)}"
        lines.append(f"- {var}: {text}")
    if peer_env:
        lines.append("- ClustPy's process: " + ", ".join(
            f"{k} {peer_env.get(k)}" for k in ("clustpy", "torch", "torch_threads", "numpy",
                                               "sklearn", "torchvision_shim")))
    lines.append("")
    if any(LAUNCH_ENV.get(v) is not None for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
        lines += ["**Note:** OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set; they slow down "
                  "numpy/scikit-learn (both sides' k-means). The intended run starts with "
                  "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`.", ""]
    lines += ["Timings are wall-clock on a machine that other processes may share; compare "
              "the ratio within one run.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- data
def load_data(args):
    """(X scaled to [0, 1] for ours, y, path of the .npz the peer reads, rows note)."""
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    X, y, _ = load_dataset("mnist_test", data_dir)
    path = (data_dir / "mnist_test.npz").resolve()
    if args.rows is None or args.rows >= len(X):
        return X, y, path
    rows = np.sort(np.random.RandomState(0).choice(len(X), args.rows, replace=False))
    raw, _, _ = load_dataset("mnist_test", data_dir, scale="raw")
    tmp = Path(tempfile.mkdtemp(prefix="ttq_")) / f"mnist_test_{args.rows}.npz"
    np.savez(tmp, X=raw[rows], y=y[rows])  # the peer scales it by 255 itself
    return X[rows], y[rows], tmp


# ---------------------------------------------------------------------------- the peer
def run_clustpy(args, method, seed, data_path, jsonl):
    """Run the peer's ``mnist`` sub-command for one method and seed; returns its row."""
    env = dict(LAUNCH_ENV, TQDM_DISABLE="1")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    cmd = [args.clustpy_python, str(args.clustpy_script), "mnist", "--out", str(jsonl),
           "--data", str(data_path), "--algos", method, "--seeds", str(seed),
           "--pretrain", str(args.clustpy_epochs[0]),
           "--clustering", str(args.clustpy_epochs[1])]
    log(f"[clustpy] {method} seed {seed}: {shlex.join(cmd)}")
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(), capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"ClustPy run failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    row = find_clustpy_row(jsonl, method, seed, args)
    if row is None:
        raise RuntimeError(f"no {method} seed {seed} row in {jsonl}:\n{proc.stdout[-2000:]}")
    row["process_wall_s"] = round(wall, 1)
    row["source"] = "measured in this run"
    return row


def read_jsonl(path):
    rows, env = [], None
    with open(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            if "env" in rec:
                env = rec["env"]
            elif "algo" in rec:
                rows.append(dict(rec, env=env))
    return rows


def find_clustpy_row(path, method, seed, args):
    """The last successful row of ``path`` for this method, seed, size and epoch counts."""
    if path is None or not Path(path).exists():
        return None
    match = None
    for r in read_jsonl(path):
        if (r.get("dataset") == "mnist_test" and r.get("algo") == method
                and r.get("seed") == seed and r.get("n") == args.n_rows
                and r.get("pretrain_epochs") == args.clustpy_epochs[0]
                and r.get("clustering_epochs") == args.clustpy_epochs[1]
                and r.get("error") is None):
            match = r
    if match is not None:
        match["source"] = f"JSONL {path}"
    return match


def clustpy_figures(args, method, seed, data_path):
    """ClustPy's (ACC, seconds, row) for one method and seed: measured now, or reused."""
    if args.skip_clustpy:
        row = find_clustpy_row(args.clustpy_jsonl, method, seed, args)
        if row is None:
            if (args.n_rows != 10000 or tuple(args.clustpy_epochs) != (50, 50)):
                raise SystemExit(f"--skip-clustpy: no ClustPy {method} row for seed {seed}, "
                                 f"{args.n_rows} rows, epochs {args.clustpy_epochs} in "
                                 f"{args.clustpy_jsonl}, and no published figure for them.")
            acc, sec = PUBLISHED[method]
            row = {"acc": acc, "fit_wall_s": sec, "native": {},
                   "source": "published (clustpy_run.py docstring), not this machine"}
    else:
        row = run_clustpy(args, method, seed, data_path, args.clustpy_jsonl)
    acc = row["native"]["acc"] if args.clustpy_target == "native" else row["acc"]
    return float(acc), float(row["fit_wall_s"]), row


# ---------------------------------------------------------------------------- ours
def fit_state_from_stack():
    """The fit state of the estimator being fitted, from the frame of its clustering phase
    (the callbacks receive only the estimator and the epoch's record)."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            state = frame.f_locals.get("state")
            if isinstance(state, FitState):
                return state
            frame = frame.f_back
    finally:
        del frame
    raise RuntimeError("no skdeepcluster FitState found on the stack of the callback; the "
                       "package's fit changed: update fit_state_from_stack().")


class QualityClock:
    """Callback: wall-clock time since ``fit`` started (evaluation excluded) and the ACC of
    the current assignment after every clustering epoch."""

    def __init__(self, X, y, chunk_rows=4096):
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        self.y = y
        self.chunk_rows = chunk_rows
        self.points = []  # (point, seconds since fit start, ACC)
        self.pretrain_epochs_seen = 0
        self.pretrain_end = None
        self.excluded = 0.0
        self.start = None

    def start_clock(self):
        self.start = time.perf_counter()

    def elapsed(self, now):
        return now - self.start - self.excluded

    @torch.no_grad()
    def current_labels(self, estimator, state):
        ae = state.autoencoder
        device = next(ae.parameters()).device
        was_training = ae.training
        ae.eval()
        try:
            Z = torch.cat([ae.encode(self.X[i:i + self.chunk_rows].to(device))
                           for i in range(0, len(self.X), self.chunk_rows)])
        finally:
            ae.train(was_training)
        labels, _ = estimator._assign(Z, state.centers.detach())  # the estimator's own rule
        return labels.cpu().numpy()

    def __call__(self, estimator, record):
        now = time.perf_counter()
        if record["phase"].startswith("pretrain"):
            self.pretrain_epochs_seen += 1
            self.pretrain_end = self.elapsed(now)
        elif record["phase"] == "cluster":
            t = self.elapsed(now)
            state = fit_state_from_stack()
            if record["epoch"] == 1 and getattr(state, "n_target_updates", None) == 1:
                # No relabelling yet: state.labels are the k-means labels of the initial
                # embedding; that point ended when this epoch began.
                acc0 = cluster_accuracy(self.y, state.labels.cpu().numpy())
                self.points.append(("init", t - record["seconds"], acc0))
            acc = cluster_accuracy(self.y, self.current_labels(estimator, state))
            self.points.append((f"epoch {record['epoch']}", t, acc))
        self.excluded += time.perf_counter() - now
        return False


def fit_ours(method, X, y, seed, params):
    clock = QualityClock(X, y)
    kwargs = {"n_clusters": 10, "random_state": seed, "device": "cpu", **params,
              "callbacks": [clock]}
    model = METHODS[method](**kwargs)
    load = load_1m()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clock.start_clock()
        model.fit(X)
        end = time.perf_counter()
    fit_s = clock.elapsed(end)
    pre = [r for r in model.history_ if r["phase"].startswith("pretrain")]
    if any(r.get("cached") for r in model.history_):
        raise RuntimeError("the pretraining came from a cache; this benchmark must train it")
    if clock.pretrain_epochs_seen != model.pretrain_epochs_ or len(pre) < model.pretrain_epochs_:
        raise RuntimeError(f"pretraining not run: {clock.pretrain_epochs_seen} epochs seen, "
                           f"pretrain_epochs_={model.pretrain_epochs_}")
    final_acc = cluster_accuracy(y, model.labels_)
    return {"method": method, "seed": seed, "n": len(X), "params": params,
            "load_1m_before": load, "fit_s": fit_s, "eval_s": clock.excluded,
            "pretrain_epochs": model.pretrain_epochs_, "pretrain_s": clock.pretrain_end,
            "cluster_epochs": model.n_iter_, "final_acc": final_acc,
            "threads": torch.get_num_threads(), "points": clock.points}


def time_to_quality(points, target):
    for point, t, acc in points:
        if acc >= target:
            return point, t
    return None, None


# ---------------------------------------------------------------------------- report
def fmt(value, spec=".1f", none="—"):
    return none if value is None else format(value, spec)


def results_table(runs, args):
    header = ["method", "seed", "ClustPy ACC (target)", "ClustPy s", "ours: s to target",
              "reached at", "ours / ClustPy", f"<= {BAR}", "our final ACC", "our fit s",
              "our pretraining s (epochs)", "our cluster epochs", "load 1m (ClustPy / ours)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in runs:
        ratio = None if r["ttq_s"] is None else r["ttq_s"] / r["clustpy_s"]
        ok = "—" if ratio is None else ("yes" if ratio <= BAR else "no")
        lines.append(
            f"| {r['method']} | {r['seed']} | {r['target']:.3f} | {r['clustpy_s']:.1f} | "
            f"{fmt(r['ttq_s'], none='not reached')} | {r['ttq_point'] or '—'} | "
            f"{fmt(ratio, '.2f')} | {ok} | {r['final_acc']:.3f} | {r['fit_s']:.1f} | "
            f"{fmt(r['pretrain_s'])} ({r['pretrain_epochs']}) | {r['cluster_epochs']} | "
            f"{fmt(r['clustpy_load'], '.2f')} / {fmt(r['load_1m_before'], '.2f')} |")
    return "\n".join(lines)


def trajectory_table(runs):
    lines = ["| method | seed | point | s since fit start | ACC |", "|---|---|---|---|---|"]
    for r in runs:
        points = r["points"]
        shown = [p for i, p in enumerate(points)
                 if p[0] == "init" or i == len(points) - 1 or p[0] == r["ttq_point"]
                 or int(p[0].split()[1]) in TRAJECTORY_EPOCHS]
        for point, t, acc in shown:
            mark = " (target reached)" if point == r["ttq_point"] else ""
            lines.append(f"| {r['method']} | {r['seed']} | {point}{mark} | {t:.1f} | "
                         f"{acc:.3f} |")
    return "\n".join(lines)


def clustpy_table(runs):
    lines = ["| method | seed | ACC (labels_) | ACC (own assignment) | NMI | fit s | "
             "process s | torch threads | source |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        c = r["clustpy_row"]
        native = (c.get("native") or {}).get("acc")
        lines.append(f"| {r['method']} | {r['seed']} | {c['acc']:.3f} | {fmt(native, '.3f')} | "
                     f"{fmt(c.get('nmi'), '.3f')} | {c['fit_wall_s']:.1f} | "
                     f"{fmt(c.get('process_wall_s'))} | {c.get('torch_threads', '—')} | "
                     f"{c['source']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("Examples", 1)[1].split("Protocol")[0])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--params", default="{}",
                   help="JSON overrides of our estimators' defaults (not 'memory')")
    p.add_argument("--data-dir", default=None, help="folder of mnist_test.npz")
    p.add_argument("--rows", type=int, default=None, help="a seeded subset of the rows")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for ours and OMP_NUM_THREADS for ClustPy")
    p.add_argument("--clustpy-python", default=None,
                   help=f"python of the peer's virtualenv (default {DEFAULT_CLUSTPY_PYTHON} "
                        "when it exists)")
    p.add_argument("--clustpy-script", default=str(DEFAULT_PEER))
    p.add_argument("--clustpy-epochs", type=int, nargs=2, default=[50, 50],
                   metavar=("PRETRAIN", "CLUSTERING"))
    p.add_argument("--clustpy-target", choices=["labels", "native"], default="labels",
                   help="ClustPy's labels_ (final k-means, default) or its own assignment")
    p.add_argument("--clustpy-jsonl", default=None,
                   help="the peer appends its rows here; with --skip-clustpy they are read "
                        "back from it")
    p.add_argument("--skip-clustpy", action="store_true",
                   help="do not run ClustPy: figures from --clustpy-jsonl or the published ones")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_ROWS} rows, {QUICK_EPOCHS} + {QUICK_EPOCHS} epochs "
                        "on both sides")
    p.add_argument("--records", default=None, help="append every run (trajectory too) as JSON "
                                                   "lines here")
    p.add_argument("--output", default=None, help="also write the Markdown report here")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    params = json.loads(args.params)
    if "memory" in params or "callbacks" in params:
        raise SystemExit("--params: 'memory' and 'callbacks' are set by the benchmark")
    if args.quick:
        args.rows = args.rows or QUICK_ROWS
        params = {"pretrain_epochs": QUICK_EPOCHS, "max_iter": QUICK_EPOCHS, **params}
        args.clustpy_epochs = [QUICK_EPOCHS, QUICK_EPOCHS]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clustpy_python is None and not args.skip_clustpy:
        if Path(DEFAULT_CLUSTPY_PYTHON).exists():
            args.clustpy_python = DEFAULT_CLUSTPY_PYTHON
        else:
            log(f"[clustpy] {DEFAULT_CLUSTPY_PYTHON} not found: ClustPy is not run "
                "(figures from --clustpy-jsonl or the published ones)")
            args.skip_clustpy = True
    if not args.skip_clustpy and args.clustpy_jsonl is None:
        args.clustpy_jsonl = str(Path(tempfile.mkdtemp(prefix="ttq_")) / "clustpy_mnist.jsonl")
    if args.clustpy_jsonl is not None:  # the peer runs in another folder
        args.clustpy_jsonl = str(Path(args.clustpy_jsonl).resolve())
    args.clustpy_script = str(Path(args.clustpy_script).resolve())

    X, y, data_path = load_data(args)
    args.n_rows = len(X)
    cmd = "python " + shlex.join([sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    t0 = time.perf_counter()
    runs = []
    for seed in args.seeds:
        for method in args.methods:
            c_load = load_1m()
            target, c_sec, c_row = clustpy_figures(args, method, seed, data_path)
            log(f"[clustpy] {method} seed {seed}: ACC {target:.3f} in {c_sec:.1f} s "
                f"({c_row['source']})")
            log(f"[ours] {method} seed {seed}: fitting ({len(X)} rows, params {params})")
            run = fit_ours(method, X, y, seed, params)
            point, ttq = time_to_quality(run["points"], target)
            run.update(target=target, clustpy_s=c_sec, clustpy_row=c_row, ttq_point=point,
                       ttq_s=ttq, clustpy_load=c_load if "this run" in c_row["source"]
                       else None)
            reached = f"reached at {point} after {ttq:.1f} s" if point else "not reached"
            log(f"[ours] {method} seed {seed}: target {reached}; final ACC "
                f"{run['final_acc']:.3f}, fit {run['fit_s']:.1f} s (pretraining "
                f"{run['pretrain_s']:.1f} s), evaluation {run['eval_s']:.1f} s excluded")
            runs.append(run)
            if args.records:
                with open(args.records, "a") as fh:
                    fh.write(json.dumps({**run, "command": cmd}, default=str) + "\n")

    peer_env = next((r["clustpy_row"].get("env") for r in runs
                     if r["clustpy_row"].get("env")), None)
    our_params = {"n_clusters": 10, "random_state": "seed", "device": "cpu", **params}
    rows_note = (f"{args.n_rows} of 10 000 rows (seeded subset)" if args.n_rows != 10000
                 else "10 000 rows")
    sections = [
        "# Time to quality: skdeepcluster DEC / IDEC against ClustPy 0.0.3 on mnist_test",
        "",
        f"Command: `{cmd}`",
        "",
        environment_header(args, peer_env),
        f"## Results ({rows_note})",
        "",
        f"Ours: `{json.dumps(our_params)}`, everything else default (pretraining runs in "
        f"every fit, no cache). ClustPy: {args.clustpy_epochs[0]} pretraining + "
        f"{args.clustpy_epochs[1]} clustering epochs, target = ACC of its "
        f"{'labels_' if args.clustpy_target == 'labels' else 'dec_labels_'}. "
        "'ours: s to target' is the wall-clock time from the start of `fit` to the first point "
        "(k-means initialisation or end of a clustering epoch) whose assignment reaches the "
        "target ACC, evaluation time excluded; ClustPy's seconds are its whole fit. Bar: "
        f"ours / ClustPy <= {BAR}.",
        "",
        results_table(runs, args),
        "",
        "### ClustPy runs",
        "",
        clustpy_table(runs),
        "",
        "### Our ACC along the fit",
        "",
        trajectory_table(runs),
        "",
        f"Total benchmark time: {time.perf_counter() - t0:.0f} s; load average at end "
        f"(1/5/15 min): {load_average()}",
    ]
    text = "\n".join(sections)
    print(text, flush=True)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        log(f"written {out}")
    return runs


if __name__ == "__main__":
    main()

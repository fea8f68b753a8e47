"""How close the deep training epochs come to this machine's fp32 GEMM limit.

In one process and one run:

1. **GEMM limit.** The throughput (GFLOP/s, best of ``--repeats``) of the exact matrix
   products of one training step of the MLP autoencoder (``d-500-500-2000-10``) at the
   training batch size: per linear layer the forward ``addmm``, the input gradient
   ``dY @ W`` and the weight gradient ``dY.T @ X``, as autograd runs them; and of one large
   square product (``--square``). On the CPU every product is timed twice: with torch's own
   kernels (MKL) and with oneDNN (as :class:`skdeepcluster.networks.Linear` runs them, when
   this torch has it). The faster square product is *the GEMM limit* (the fastest fp32
   GEMM this torch offers on this machine); the step's products taken together (their
   FLOPs over the sum of their best times, for the faster of the two kernels) are *the
   network's GEMM limit* (the fastest an epoch could run if it did nothing but its products, each at
   its best speed).
2. **Phases.** The GEMM FLOPs of each training phase, counted analytically from the
   network's layers (the optimiser's update counted apart; the elementwise work and the
   clustering terms are left out), next to the seconds of the phase measured with the real
   estimators (short fits; seconds from ``history_``, median of the epochs after the first,
   which pays for first-touch page faults and warm-up): the MLP pretraining epoch
   (AEKMeans, with Adam and with SGD, the recipe a default fit on pixels runs), and the
   clustering epochs of DEC, IDEC and ConcreteKMeans started from
   that pretrained network. Their full-data embedding passes are timed separately: the
   DEC/IDEC target refresh (embedding, labels, target; every ``update_interval`` steps) and
   ConcreteKMeans's relabelling (every epoch). A DEC/IDEC epoch is reported as its training
   steps plus the refreshes that fall in an epoch on average (``steps per epoch /
   update_interval``), and the refresh's share of that epoch.
3. ``--profile``: where the time of one pretraining epoch goes (torch.profiler, self time
   of the operators grouped into GEMM, optimiser, activations, loss and batch gathering,
   autograd and Python), run apart from the timings.
4. **CUDA** (only when ``torch.cuda.is_available()``; ``--no-cuda`` skips it): the same
   measurements on the GPU, the whole training set on the device, in fp32 and with the fit
   run under ``torch.autocast`` in bfloat16 and float16 (GEMM limits measured in those
   dtypes as well). fp16 has no loss scaling here: it is a timing, not a recipe.
   ``--no-cpu`` skips sections 1-3 (a GPU machine's run).

Run it on a quiet machine (the figures are wall-clock times; the header records the load
average at the start and the end). ``--output`` writes the tables with an environment
header. About 1.5 minutes on 2 cores.

Examples
--------
::

    python benchmarks/bench_gemm_limit.py
    python benchmarks/bench_gemm_limit.py --output benchmarks/results/gemm_limit.md
    python benchmarks/bench_gemm_limit.py --threads 1 --profile
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY",
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: The environment as the user set it (skdeepcluster sets GOMP_SPINCOUNT on import).
USER_ENV = {var: os.environ.get(var) for var in ENV_VARS}

# skdeepcluster before torch, as in a program that imports only the package: its OpenMP
# wait policy then applies (see skdeepcluster._threads).
import skdeepcluster  # noqa: I001
from skdeepcluster import DEC, IDEC, AEKMeans, ConcreteKMeans
from skdeepcluster._engine import cpu_has_native_bf16
from skdeepcluster._onednn import _onednn_linear as onednn_matmul
from skdeepcluster._onednn import onednn_works, use_onednn
from skdeepcluster.datasets import load_dataset
from skdeepcluster.networks import MLPAutoencoder

from _envinfo import cpu_model  # the script's folder is on sys.path

import numpy as np
import torch
from torch import nn

QUIET_LOAD = 1.0
#: Share of the machine that other processes may take during the run for it to count as quiet.
QUIET_SHARE = 0.05


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- environment
def load_average():
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not available on this platform
        return None


def others_cpu_seconds():
    """CPU seconds the whole machine has spent busy (steal included) minus this process's:
    what other processes took (Linux; None elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    own = os.times()
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    return busy - (own.user + own.system)


def fmt_load(load):
    return "n/a" if load is None else " / ".join(f"{v:.2f}" for v in load)


def git_state():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "skdeepcluster"],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown"
    return f"git {commit}" + (" + uncommitted changes in skdeepcluster/" if dirty else " (clean)")


def environment_header(load_start, load_end, others):
    lines = ["## Environment", ""]
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines += [
        f"- date: {now}",
        f"- host: {platform.platform()}, CPU {cpu_model()}, os.cpu_count() {os.cpu_count()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, torch "
        f"{torch.__version__} (cuda available: {torch.cuda.is_available()})",
        f"- torch.get_num_threads(): {torch.get_num_threads()}",
        f"- torch CPU capability: {torch.backends.cpu.get_cpu_capability()}, "
        f"MKL: {torch.backends.mkl.is_available()}, oneDNN: "
        f"{torch.backends.mkldnn.is_available()}",
        f"- skdeepcluster {skdeepcluster.__version__}, code under test: {git_state()}",
        f"- load average (1/5/15 min) at start: {fmt_load(load_start)}; at end: "
        f"{fmt_load(load_end)}",
    ]
    for var in ENV_VARS:
        value, user = os.environ.get(var), USER_ENV[var]
        text = "unset" if value is None else repr(value)
        if value != user:
            text += " (set by skdeepcluster on import)"
        lines.append(f"- {var}: {text}")
    lines.append("- skdeepcluster's OpenMP wait policy in effect: "
                 f"{skdeepcluster._threads.openmp_wait_configured()}")
    share = None
    if others is not None:
        seconds, wall = others
        share = seconds / (wall * (os.cpu_count() or 1))
        lines.append(f"- CPU time of other processes during the CPU measurements: "
                     f"{seconds:.1f} core-seconds in {wall:.0f} s ({100 * share:.1f} % of "
                     "the machine; from /proc/stat, steal time included)")
    lines.append("")
    # The load average lags (it still counts a process that just ended, e.g. a previous
    # benchmark); the other processes' measured CPU time decides when it is available.
    if (share > QUIET_SHARE if share is not None else
            load_start is not None and load_start[0] > QUIET_LOAD):
        lines += ["**The machine was not quiet** (1-minute load "
                  f"{fmt_load(load_start)} at the start; other processes "
                  f"{'n/a' if share is None else f'{100 * share:.0f} %'} of the CPU during "
                  "the run): the seconds are too high and the fractions too low. Rerun at a "
                  "quiet moment.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- FLOP counts
def linear_sizes(module):
    """``(n_in, n_out)`` of every ``nn.Linear`` of ``module``, in forward order."""
    return [(m.in_features, m.out_features) for m in module.modules()
            if isinstance(m, nn.Linear)]


def gemm_flops_per_sample(layers, *, backward):
    """GEMM FLOPs per sample of a stack of linear layers ``[(n_in, n_out), ...]``.

    Forward: ``2 n_in n_out`` per layer. Backward: the weight gradient (as many) for every
    layer and the input gradient (as many) for every layer but the first (the data need no
    gradient).
    """
    forward = sum(2 * a * b for a, b in layers)
    if not backward:
        return forward
    return 3 * forward - 2 * layers[0][0] * layers[0][1]


#: FLOPs per parameter and step of the optimisers' updates (Adam: the two moments, the
#: square root, the division and the step; SGD: momentum and step).
OPTIMIZER_FLOPS = {"adam": 13, "sgd": 4}


def n_parameters(layers):
    return sum(a * b + b for a, b in layers)


def training_steps(layers, batch_size):
    """The products of one training step at ``batch_size``: ``(name, (m, k, n), kind)``
    with ``kind`` in fwd, dX, dW; the first layer has no input gradient."""
    steps = []
    for i, (a, b) in enumerate(layers):
        steps.append((f"L{i + 1} {a}->{b} fwd", (batch_size, a, b), "fwd"))
        if i > 0:
            steps.append((f"L{i + 1} {a}->{b} dX", (batch_size, b, a), "dX"))
        steps.append((f"L{i + 1} {a}->{b} dW", (b, batch_size, a), "dW"))
    return steps


# ----------------------------------------------------------------------------- GEMM limit
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device, repeats, min_seconds=0.02):
    """Best seconds per call of ``fn`` over ``repeats`` timed loops (each long enough)."""
    for _ in range(3):
        fn()
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    once = max(time.perf_counter() - start, 1e-7)
    inner = max(1, int(min_seconds / once))
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync(device)
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def product_fn(kind, shape, device, dtype, generator, backend="torch"):
    """A closure running one product of ``shape = (m, k, n)`` the way autograd does, with
    torch's own kernels (``backend="torch"``: MKL on the CPU) or with oneDNN's
    (``"onednn"``, as the package's :class:`~skdeepcluster.networks.Linear` runs them)."""
    m, k, n = shape

    def rand(*size):
        return torch.rand(size, generator=generator, device=generator.device).to(
            device=device, dtype=dtype)

    dnn = backend == "onednn"
    if kind == "fwd":  # addmm(bias, X, W.T): X (m, k), W (n, k)
        x, w, bias = rand(m, k), rand(n, k), rand(n)
        return (lambda: onednn_matmul(x, w, bias)) if dnn else (
            lambda: torch.addmm(bias, x, w.t()))
    if kind == "dX":  # dY (m, k) @ W (k, n)
        dy, w = rand(m, k), rand(k, n)
        return (lambda: onednn_matmul(dy, w.t())) if dnn else (lambda: dy.mm(w))
    if kind == "dW":  # dY.T (m, k) @ X (k, n), dY stored (k, m)
        dy, x = rand(k, m), rand(k, n)
        return (lambda: onednn_matmul(dy.t(), x.t())) if dnn else (lambda: dy.t().mm(x))
    a, b = rand(m, k), rand(k, n)  # "square"
    return (lambda: onednn_matmul(a, b.t())) if dnn else (lambda: a.mm(b))


def gemm_limit(layers, batch_size, square, device, dtype, repeats, backend="torch"):
    """Per-product rows and the two limits (GFLOP/s): square product, the step's products."""
    generator = torch.Generator().manual_seed(0)
    rows, step_flops, step_seconds = [], 0, 0.0
    for name, shape, kind in training_steps(layers, batch_size):
        flops = 2 * shape[0] * shape[1] * shape[2]
        seconds = time_call(product_fn(kind, shape, device, dtype, generator, backend), device,
                            repeats)
        rows.append((name, shape, flops, seconds))
        step_flops += flops
        step_seconds += seconds
    shape = (square, square, square)
    sq_seconds = time_call(product_fn("square", shape, device, dtype, generator, backend),
                           device, repeats, min_seconds=0.2)
    rows.append((f"square {square}", shape, 2 * square ** 3, sq_seconds))
    return rows, 2 * square ** 3 / sq_seconds / 1e9, step_flops / step_seconds / 1e9


def gemm_table(rows, square_limit, network_limit, title):
    lines = [f"### {title}", "",
             "| product | m x k @ k x n | MFLOP | best ms | GFLOP/s |", "|---|---|---|---|---|"]
    for name, (m, k, n), flops, seconds in rows:
        lines.append(f"| {name} | {m} x {k} @ {k} x {n} | {flops / 1e6:.1f} | "
                     f"{seconds * 1e3:.3f} | {flops / seconds / 1e9:.1f} |")
    lines += ["", f"- **GEMM limit (square product): {square_limit:.1f} GFLOP/s**",
              f"- network's GEMM limit (one training step's products, total FLOPs over the "
              f"sum of their best times): {network_limit:.1f} GFLOP/s", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- phases
def instrumented(cls):
    """``cls`` with its full-data passes timed and its k-means initialisation in fp32.

    ``_relabel`` (embedding and labels) and ``_update_target`` (DEC family) are recorded as
    ``(epoch, kind, seconds)`` in the class's ``events``; ``_init_centers`` runs with autocast
    disabled (k-means on a float16 embedding can overflow; it is not timed here).
    """

    class Instrumented(cls):
        events = []

        def _timed(self, kind, method, state):
            start = time.perf_counter()
            out = method(state)
            if state.device.type == "cuda":
                torch.cuda.synchronize(state.device)
            self.events.append((state.epoch, kind, time.perf_counter() - start))
            return out

        def _relabel(self, state):
            return self._timed("relabel", super()._relabel, state)

        if hasattr(cls, "_update_target"):
            def _update_target(self, state):
                return self._timed("target", super()._update_target, state)

        def _init_centers(self, state):
            with torch.autocast(state.device.type, enabled=False):
                return super()._init_centers(state)

    Instrumented.__name__ = cls.__name__
    Instrumented.events = []
    return Instrumented


def epoch_seconds(model, phase):
    """Seconds of the epochs of ``phase`` after the first one, by epoch number."""
    records = [r for r in model.history_ if r["phase"] == phase]
    return {r["epoch"]: r["seconds"] for r in records[1:]} or {
        r["epoch"]: r["seconds"] for r in records}


def refreshes(events):
    """``(epoch, seconds)`` of every refresh: a relabelling and, in the DEC family, the
    target update right after it. (DEC's first target, computed from the initial embedding
    at the start of epoch 1, is no refresh: there is no embedding pass in it.)"""
    out = []
    for epoch, kind, seconds in events:
        if kind == "relabel":
            out.append([epoch, seconds, True])  # open: its target update may follow
        elif out and out[-1][2] and out[-1][0] == epoch:
            out[-1][1] += seconds
            out[-1][2] = False
    return [(epoch, seconds) for epoch, seconds, _ in out]


class Phase:
    """One row: a phase's seconds (median, best), its GEMM FLOPs, its optimiser's FLOPs,
    a note."""

    def __init__(self, name, seconds, flops, note="", optimizer_flops=0):
        self.name, self.flops, self.note = name, flops, note
        self.optimizer_flops = optimizer_flops
        self.median = statistics.median(seconds)
        self.best = min(seconds)


def measure_phases(X, layers_enc, layers_all, args, device, autocast_dtype=None):
    """Time the phases with the real estimators; returns a list of :class:`Phase`."""
    n = X.shape[0]
    B = args.batch_size
    n_batches = -(-n // B)
    T = args.update_interval
    common = {"n_clusters": 10, "random_state": 0, "batch_size": B, "n_init": 1,
              "device": str(device)}

    def precision():
        if autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=autocast_dtype)

    phases = []
    flops_pre = n * gemm_flops_per_sample(layers_all, backward=True)
    # Adam, and SGD with momentum: the recipe a default fit runs on pixels in [0, 1]
    # (pretrain="auto" with >= 2 000 steps), whose update touches one buffer less. The
    # clustering phases below start from the Adam network.
    fitted = {}
    for recipe, label in (("adam", "Adam"), ("sgd", "SGD: the default on pixels")):
        log(f"  pretraining {args.epochs} epochs ({label})")
        with precision():
            fitted[recipe] = instrumented(AEKMeans)(pretrain=recipe, pretrain_epochs=args.epochs,
                                                    **common).fit(X)
        phases.append(Phase(f"MLP pretraining epoch (AEKMeans, {label})",
                            list(epoch_seconds(fitted[recipe], "pretrain").values()), flops_pre,
                            optimizer_flops=n_batches * OPTIMIZER_FLOPS[recipe]
                            * n_parameters(layers_all)))
    mlp = fitted["adam"]
    flops_refresh = n * gemm_flops_per_sample(layers_enc, backward=False)
    k, p_dim = common["n_clusters"], layers_enc[-1][1]
    for cls, enc_only in [(DEC, True), (IDEC, False), (ConcreteKMeans, False)]:
        timed = instrumented(cls)
        name = cls.__name__
        log(f"  {name} {args.cluster_epochs} epochs")
        kw = {"update_interval": T} if cls in (DEC, IDEC) else {}
        with precision():
            model = timed(autoencoder=copy.deepcopy(mlp.autoencoder_), pretrain_epochs=0,
                          max_iter=args.cluster_epochs, tol=0.0, **kw, **common).fit(X)
        per_epoch = epoch_seconds(model, "cluster")
        events = refreshes(timed.events)
        in_epoch = {}
        for epoch, seconds in events:
            in_epoch[epoch] = in_epoch.get(epoch, 0.0) + seconds
        train = [s - in_epoch.get(e, 0.0) for e, s in per_epoch.items()]
        layers = layers_enc if enc_only else layers_all
        flops_train = n * gemm_flops_per_sample(layers, backward=True)
        opt = n_batches * OPTIMIZER_FLOPS[model.optimizer if cls is DEC else "adam"] * (
            n_parameters(layers) + k * p_dim)
        refresh_s = [s for _, s in events]
        if not refresh_s:
            phases.append(Phase(f"{name} epoch, training steps", train, flops_train,
                                "no full-data pass in this run: give more --cluster-epochs",
                                opt))
            continue
        if cls is ConcreteKMeans:
            phases.append(Phase(f"{name} epoch, training steps", train, flops_train,
                                "the epoch's seconds less its relabelling", opt))
            phases.append(Phase(f"{name} relabelling pass (one per epoch)", refresh_s,
                                flops_refresh, "embedding of the whole set, nearest centres"))
            whole = list(per_epoch.values())
            p = Phase(f"{name} epoch (steps + relabelling)", whole,
                      flops_train + flops_refresh, "measured", opt)
            p.refresh_share = statistics.median(refresh_s) / p.median
            phases.append(p)
            continue
        phases.append(Phase(f"{name} epoch, training steps", train, flops_train,
                            "the epoch's seconds less the refreshes in it", opt))
        phases.append(Phase(f"{name} target refresh (one)", refresh_s, flops_refresh,
                            "embedding of the whole set, labels, target P"))
        per = n_batches / T  # refreshes per epoch, on average
        refresh = statistics.median(refresh_s)
        p = Phase(f"{name} epoch (steps + {per:.2f} refreshes at T={T})",
                  [statistics.median(train) + per * refresh], flops_train + per * flops_refresh,
                  "derived: training steps + the refreshes an epoch has on average", opt)
        p.best = min(train) + per * min(refresh_s)
        p.refresh_share = per * refresh / p.median
        p.one_refresh_share = refresh / p.median
        phases.append(p)
    return phases


def phase_table(phases, square_limit, network_limit, title):
    lines = [f"### {title}", "",
             "| phase | s (median) | s (best) | GEMM GFLOP | GFLOP/s (median) | % of GEMM "
             "limit (median / best) | % of network's GEMM limit (median) | refresh share of "
             "the epoch | optimiser GFLOP | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in phases:
        gf = p.flops / 1e9
        rate = gf / p.median
        share = ""
        if hasattr(p, "one_refresh_share"):
            share = (f"{100 * p.refresh_share:.1f} % amortised (one refresh = "
                     f"{100 * p.one_refresh_share:.1f} %)")
        elif hasattr(p, "refresh_share"):
            share = f"{100 * p.refresh_share:.1f} %"
        lines.append(
            f"| {p.name} | {p.median:.3f} | {p.best:.3f} | {gf:.1f} | {rate:.1f} | "
            f"{100 * rate / square_limit:.0f} % / {100 * gf / p.best / square_limit:.0f} % | "
            f"{100 * rate / network_limit:.0f} % | {share} | "
            f"{p.optimizer_flops / 1e9:.2f} | {p.note} |")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- profile
PROFILE_GROUPS = [
    ("GEMM (mm, addmm; oneDNN's linear)", ("aten::mm", "aten::addmm", "aten::bmm",
                                           "aten::matmul", "mkldnn::_linear_pointwise")),
    ("activations (forward, backward)", ("aten::clamp_min", "aten::threshold_backward",
                                         "aten::relu")),
    ("copies (addmm's bias broadcast, contiguous gradients)", ("aten::copy_",)),
    ("loss, bias gradients, loss bookkeeping", ("aten::sub", "aten::mul", "aten::sum",
                                                "aten::div", "aten::stack", "aten::add",
                                                "aten::pow")),
    ("batch gathering", ("aten::index_select", "aten::randperm")),
]
OPTIMIZER_GROUP = "optimiser (step, zero_grad)"


def profile_pretraining(X, autoencoder, batch_size):
    """Self time of one pretraining epoch's operators, grouped; a Markdown table.

    Operators called by the optimiser (under its ``Optimizer.step``/``zero_grad`` ranges) form
    one group; the others are grouped by name.
    """
    from torch.profiler import ProfilerActivity, profile

    from skdeepcluster._engine import HostData, seeded_generator
    from skdeepcluster._pretrain import pretrain_autoencoder

    ae = copy.deepcopy(autoencoder).train()
    data = HostData(X, torch.device("cpu"), torch.float32)
    gen = seeded_generator(0, "cpu")
    kw = {"recipe": "adam", "batch_size": batch_size, "learning_rate": 1e-3, "generator": gen}
    pretrain_autoencoder(ae, data, n_epochs=1, **kw)  # warm-up
    history = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        pretrain_autoencoder(ae, data, n_epochs=1, history=history, **kw)
    wall = history[0]["seconds"]
    groups = {OPTIMIZER_GROUP: 0.0, **{g: 0.0 for g, _ in PROFILE_GROUPS}}
    other = {}
    for evt in prof.events():
        if not evt.name.startswith(("aten::", "mkldnn::")):
            continue
        top = evt
        while top.cpu_parent is not None:
            top = top.cpu_parent
        seconds = evt.self_cpu_time_total / 1e6
        if top.name.startswith("Optimizer."):
            groups[OPTIMIZER_GROUP] += seconds
            continue
        for group, prefixes in PROFILE_GROUPS:
            if evt.name.startswith(prefixes):
                groups[group] += seconds
                break
        else:
            other[evt.name] = other.get(evt.name, 0.0) + seconds
    groups["other aten operators"] = sum(other.values())
    groups["autograd engine, Python, profiler (the rest of the wall time)"] = max(
        0.0, wall - sum(groups.values()))
    lines = ["### Where a pretraining epoch's time goes (torch.profiler, one epoch)", "",
             f"Wall time of the profiled epoch: {wall:.3f} s (the profiler adds overhead).", "",
             "| group | s | share |", "|---|---|---|"]
    for group, seconds in groups.items():
        lines.append(f"| {group} | {seconds:.3f} | {100 * seconds / wall:.1f} % |")
    top = sorted(other.items(), key=lambda kv: -kv[1])[:5]
    lines += ["", "Largest 'other' operators: " + ", ".join(
        f"{k} {v * 1e3:.1f} ms" for k, v in top), ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def run_cuda(X, layers_enc, layers_all, args):
    device = torch.device("cuda")
    out = [f"## CUDA: {torch.cuda.get_device_name(device)}", "",
           f"torch.backends.cuda.matmul.allow_tf32 = "
           f"{torch.backends.cuda.matmul.allow_tf32}, float32 matmul precision "
           f"'{torch.get_float32_matmul_precision()}'. The whole training set lives on the "
           "device (HostData keeps it there); a fit under autocast runs every timed phase in it "
           "(the k-means initialisation, not timed, in fp32).", ""]
    for label, dtype, autocast_dtype in [("fp32", torch.float32, None),
                                         ("autocast bf16", torch.bfloat16, torch.bfloat16),
                                         ("autocast fp16", torch.float16, torch.float16)]:
        log(f"CUDA {label}: GEMM")
        rows, square, network = gemm_limit(layers_all, args.batch_size, args.cuda_square,
                                           device, dtype, args.repeats)
        out.append(gemm_table(rows, square, network, f"GEMM limit, {label} "
                              f"({dtype}, batch {args.batch_size})"))
        log(f"CUDA {label}: phases")
        try:
            phases = measure_phases(X, layers_enc, layers_all, args, device, autocast_dtype)
        except Exception as exc:  # a diverged fp16 fit, an unsupported op: report it
            out += [f"Phases under {label} failed: {type(exc).__name__}: {exc}", ""]
            continue
        out.append(phase_table(phases, square, network, f"Phases, {label}"))
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist_test")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=6,
                        help="pretraining epochs (the first is not counted)")
    parser.add_argument("--cluster-epochs", type=int, default=8,
                        help="clustering epochs of each method (the first is not counted)")
    parser.add_argument("--update-interval", type=int, default=140,
                        help="T of DEC and IDEC (steps between target refreshes)")
    parser.add_argument("--repeats", type=int, default=7, help="timed loops per product")
    parser.add_argument("--square", type=int, default=2048, help="size of the square product")
    parser.add_argument("--cuda-square", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--profile", action="store_true",
                        help="also profile one pretraining epoch (torch.profiler)")
    parser.add_argument("--no-cuda", action="store_true", help="skip the CUDA section")
    parser.add_argument("--no-cpu", action="store_true",
                        help="skip the CPU sections (a GPU machine's run)")
    parser.add_argument("--cpu-bf16", action="store_true",
                        help="also time the CPU phases under torch.autocast in bfloat16 "
                             "(when the CPU has AVX512-BF16 or AMX)")
    parser.add_argument("--output", default=None, help="write the Markdown here as well")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = load_average()
    X, _, _ = load_dataset(args.dataset, args.data_dir)
    X = np.ascontiguousarray(X, dtype=np.float32)
    probe = MLPAutoencoder(X.shape[1], n_components=10)  # the estimators' default network
    layers_enc, layers_all = linear_sizes(probe.encoder), linear_sizes(probe)
    cpu = torch.device("cpu")

    others_start, wall_start = others_cpu_seconds(), time.perf_counter()
    phases, sections = [], []
    if args.no_cpu:
        sections.append("## CPU\n\nSkipped (--no-cpu).\n")
    else:
        # The limit is the fastest float32 product this torch offers on this machine:
        # its default kernels (MKL on x86) and, where present, oneDNN's, whichever is faster.
        backends = ["torch", *(["onednn"] if onednn_works() else [])]
        limits = {}
        for backend in backends:
            log(f"CPU: GEMM limit ({backend})")
            rows, square_b, network_b = gemm_limit(layers_all, args.batch_size, args.square,
                                                   cpu, torch.float32, args.repeats, backend)
            limits[backend] = (square_b, network_b)
            kernels = "torch's own kernels (MKL)" if backend == "torch" else "oneDNN"
            sections.append(gemm_table(rows, square_b, network_b, f"GEMM limit, CPU fp32, "
                                       f"{kernels} ({torch.get_num_threads()} threads, batch "
                                       f"{args.batch_size})"))
        square = max(v[0] for v in limits.values())
        network = max(v[1] for v in limits.values())
        used = "oneDNN" if use_onednn() else "torch's own kernels"
        sections.append(
            f"- **GEMM limit used below: {square:.1f} GFLOP/s** (the faster square product "
            f"of {', '.join(backends)}); network's GEMM limit {network:.1f} GFLOP/s\n"
            f"- the package's linear layers run on: **{used}** "
            f"(SKDEEPCLUSTER_CPU_MATMUL={os.environ.get('SKDEEPCLUSTER_CPU_MATMUL', 'unset')})"
            "\n")
        log("CPU: phases")
        phases = measure_phases(X, layers_enc, layers_all, args, cpu)
        sections.append(phase_table(phases, square, network, f"Phases on {args.dataset} "
                                    f"(n={X.shape[0]}, batch {args.batch_size}), CPU fp32"))
    if args.cpu_bf16 and not args.no_cpu:
        if cpu_has_native_bf16():
            log("CPU autocast bf16: GEMM limit")
            rows16, square16, network16 = gemm_limit(layers_all, args.batch_size, args.square,
                                                     cpu, torch.bfloat16, args.repeats)
            log("CPU autocast bf16: phases")
            phases16 = measure_phases(X, layers_enc, layers_all, args, cpu, torch.bfloat16)
            sections += [
                gemm_table(rows16, square16, network16, f"GEMM limit, CPU bf16 "
                           f"({torch.get_num_threads()} threads, batch {args.batch_size})"),
                phase_table(phases16, square, network, f"Phases on {args.dataset} "
                            f"(n={X.shape[0]}, batch {args.batch_size}), CPU autocast bf16; "
                            "'% of GEMM limit' against the fp32 limits above"),
            ]
        else:
            sections.append("### CPU autocast bf16\n\nNot run: this CPU has no native "
                            "bfloat16 instructions (AVX512-BF16 or AMX).\n")
    if args.profile and not args.no_cpu:
        log("CPU: profile")
        sections.append(profile_pretraining(X, probe, args.batch_size))
    others_end = others_cpu_seconds()
    others = None if others_start is None or others_end is None else (
        others_end - others_start, time.perf_counter() - wall_start)
    if args.no_cuda:
        sections.append("## CUDA\n\nSkipped (--no-cuda).\n")
    elif torch.cuda.is_available():
        sections.append(run_cuda(X, layers_enc, layers_all, args))
    else:
        sections.append("## CUDA\n\nNot run: torch.cuda.is_available() is False on this "
                        "machine.\n")
    load_end = load_average()
    layers_txt = " -> ".join(str(a) for a, _ in layers_all) + f" -> {layers_all[-1][1]}"
    notes = (
        "GEMM GFLOP counts the matrix products (2 m k n each): per sample and linear layer "
        "2 n_in n_out forward, as much for the weight gradient, and as much for the input "
        "gradient except at the first layer. The optimiser's update is counted apart "
        f"({OPTIMIZER_FLOPS['adam']} FLOPs per parameter and step for Adam, "
        f"{OPTIMIZER_FLOPS['sgd']} for SGD with momentum; memory-bound, so not in GFLOP/s); "
        "biases, activations, loss and clustering terms are left out (well under 1 % of the "
        "FLOPs). A DEC epoch trains the encoder only (SGD). "
        f"Network: {layers_txt}. Seconds are wall-clock; 'median' is over "
        "the epochs after the first (or over the refreshes), 'best' the fastest of them. "
        "'% of GEMM limit' divides the phase's GFLOP/s by the square product's; '% of "
        "network's GEMM limit' by the throughput of the step's own products.")
    command = "python " + shlex.join([sys.argv[0], *(argv if argv is not None else
                                                       sys.argv[1:])])
    body = "\n".join([f"# GEMM limit and deep training epochs ({args.dataset})", "",
                      f"Command: `{command}`", "", environment_header(load_start, load_end, others),
                      *sections, "## Notes", "", notes, ""])
    print(body)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(body)
        log(f"wrote {args.output}")
    return phases


if __name__ == "__main__":
    main()

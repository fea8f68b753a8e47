"""float32 matrix products through oneDNN on x86 CPUs whose default GEMM is slow.

PyTorch's CPU builds compute a float32 ``F.linear`` with MKL's ``sgemm``. On x86 processors
not made by Intel, MKL takes a slower code path: on a 2-core AMD EPYC with AVX-512 (December
2026, torch 2.13) it reached 185-199 GFLOP/s on a 2048 x 2048 product, while oneDNN, which
PyTorch also ships (it runs the convolutions), reached 391-416 GFLOP/s in full float32, and
about twice MKL's speed on the autoencoders' own products (``benchmarks/bench_gemm_limit.py``,
``benchmarks/results/gemm_limit.md``). :class:`OneDNNLinearFunction`
computes a linear layer and both of its gradients with oneDNN; :func:`product_nt` the
k-means products (scores of points against centres, the concrete gradient's sums);
:func:`use_onednn` says when the package's :class:`~skdeepcluster.networks.Linear` layers
and those products take it.

The choice is made once per process and per setting (never from a timing, so that two fits
with the same seed on one machine always run the same kernels): the environment variable
``SKDEEPCLUSTER_CPU_MATMUL`` is ``"auto"`` (the default: oneDNN on x86-64 processors whose
vendor is not Intel), ``"onednn"`` or ``"torch"`` (PyTorch's own ``F.linear``). oneDNN is
used only if its operator exists in this PyTorch and passes a numerical self-check.
"""

import functools
import os
import platform

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

#: Environment variable that chooses the CPU float32 product kernels: "auto", "onednn" or
#: "torch".
ENV_VAR = "SKDEEPCLUSTER_CPU_MATMUL"
CHOICES = ("auto", "onednn", "torch")


def _linear_op():
    """oneDNN's dense linear operator (``torch.ops.mkldnn._linear_pointwise``), or None."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


def _onednn_linear(x, weight, bias=None):
    """``x @ weight.T + bias`` by oneDNN; ``x`` and ``weight`` 2-D, strided views allowed."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@functools.cache
def onednn_works():
    """Whether oneDNN's linear operator exists and computes a product, its input gradient
    and its weight gradient (transposed views) as ``F.linear`` and ``@`` do."""
    if _linear_op() is None:
        return False
    try:
        # Explicit dtype, and autocast off: the first call may come from inside a bfloat16
        # fit or under another default dtype, whose answer would be cached for the process.
        gen = torch.Generator().manual_seed(0)
        x, w, b, g = (torch.randn(*shape, generator=gen, dtype=torch.float32)
                      for shape in ((9, 7), (5, 7), (5,), (9, 5)))
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            pairs = [(_onednn_linear(x, w, b), F.linear(x, w, b)),
                     (_onednn_linear(g, w.t()), g @ w),
                     (_onednn_linear(g.t(), x.t()), g.t() @ x)]
        return all(a.shape == r.shape and a.dtype == r.dtype
                   and bool(torch.allclose(a, r, rtol=1e-4, atol=1e-4)) for a, r in pairs)
    except Exception:  # any failure of a private operator: keep PyTorch's own kernels
        return False


def _cpu_vendor():
    """The CPU's vendor string (``GenuineIntel``, ``AuthenticAMD``, ...), or ''."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@functools.cache
def _resolve(setting):
    if setting not in CHOICES:
        raise ValueError(f"{ENV_VAR}={setting!r} is not valid; use one of {CHOICES}.")
    if setting == "torch":
        return False
    if setting == "auto":
        x86 = platform.machine().lower() in ("x86_64", "amd64")
        if not x86 or _cpu_vendor() in ("", "GenuineIntel"):
            return False
    return onednn_works()


def use_onednn():
    """Whether float32 linear layers on the CPU run through oneDNN in this process (see the
    module's docstring for the rule and ``SKDEEPCLUSTER_CPU_MATMUL``)."""
    return _resolve(os.environ.get(ENV_VAR, "auto").strip().lower() or "auto")


def _autocast_on():
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # PyTorch < 2.4
        return torch.is_autocast_cpu_enabled()


def onednn_applies(x, weight):
    """Whether a linear layer of ``weight`` on ``x`` takes oneDNN: both float32 on the CPU
    and not empty (oneDNN has no primitive for zero rows), no CPU autocast in effect (which
    would compute in bfloat16), and :func:`use_onednn`."""
    return (x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32 and weight.device.type == "cpu"
            and x.dim() >= 1 and x.numel() > 0 and weight.numel() > 0
            and not _autocast_on() and use_onednn())


class OneDNNLinearFunction(torch.autograd.Function):
    """``y = x Wᵀ + b`` with its gradients, every product by oneDNN.

    ``x`` is 2-D. The input gradient is ``g W`` and the weight gradient ``gᵀ x``, both
    computed on transposed views (no copies); the bias gradient is ``g`` summed over rows.
    Differentiable once (no double backward).
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn_linear(grad, weight.t())
        if ctx.needs_input_grad[1]:
            grad_w = _onednn_linear(grad.t(), x.t())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=0)
        return grad_x, grad_w, grad_b


#: Products of fewer multiply-adds than this keep torch's kernel: oneDNN's fixed cost per
#: call (about 10 microseconds) loses on tiny ones (7 centres x 19 features x 2,310 points:
#: 0.022 ms against MKL's 0.013 ms), and wins from about a million on (10 x 16 x 10,992:
#: 0.053 against 0.061 ms; 100 x 64 x 65,536: 6.2 against 16.3 ms; one thread, AMD EPYC).
ONEDNN_MIN_MACS = 2**20


def product_nt(a, b):
    """``a @ b.T`` (``a`` of shape (m, k), ``b`` (n, k), views allowed) by oneDNN when it
    applies (:func:`onednn_applies`) and the product has at least :data:`ONEDNN_MIN_MACS`
    multiply-adds; None otherwise (the caller then runs torch's own, often fused, form)."""
    if a.shape[0] * b.shape[0] * a.shape[1] < ONEDNN_MIN_MACS or not onednn_applies(a, b):
        return None
    return _onednn_linear(a, b)


def linear(x, weight, bias=None):
    """``F.linear(x, weight, bias)``, through oneDNN where :func:`onednn_applies`."""
    if not onednn_applies(x, weight):
        return F.linear(x, weight, bias)
    if x.dim() == 2:  # no reshape: no extra view node in the graph
        return OneDNNLinearFunction.apply(x, weight, bias)
    out = OneDNNLinearFunction.apply(x.reshape(-1, x.shape[-1]), weight, bias)
    return out.reshape(*x.shape[:-1], weight.shape[0])

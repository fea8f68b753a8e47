"""The oneDNN path of the networks' linear layers (skdeepcluster._onednn, networks.Linear)."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from skdeepcluster import _onednn
from skdeepcluster.networks import Linear, MLPAutoencoder

needs_onednn = pytest.mark.skipif(not _onednn.onednn_works(),
                                  reason="this torch has no working oneDNN linear operator")


@pytest.fixture
def backend(monkeypatch):
    """Set SKDEEPCLUSTER_CPU_MATMUL for one test (the resolution cache cleared around it)."""
    def set_backend(value):
        monkeypatch.setenv(_onednn.ENV_VAR, value)
        _onednn._resolve.cache_clear()
    yield set_backend
    monkeypatch.delenv(_onednn.ENV_VAR, raising=False)
    _onednn._resolve.cache_clear()


@needs_onednn
@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 40), n_in=st.integers(1, 30), n_out=st.integers(1, 30),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_onednn_linear_and_its_gradients_equal_torch(rows, n_in, n_out, bias, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, n_in, generator=gen)
    w = torch.randn(n_out, n_in, generator=gen)
    b = torch.randn(n_out, generator=gen) if bias else None
    g = torch.randn(rows, n_out, generator=gen)
    results = []
    for fn in (_onednn.OneDNNLinearFunction.apply, F.linear):
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        bs = None if b is None else b.clone().requires_grad_()
        y = fn(xs, ws, bs)
        y.backward(g)
        results.append([y, xs.grad, ws.grad, *([] if bs is None else [bs.grad])])
    for ours, ref in zip(*results):
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


@needs_onednn
def test_linear_takes_onednn_only_for_float32_cpu_without_autocast(backend):
    backend("onednn")
    layer = Linear(6, 3)
    x = torch.randn(4, 6, requires_grad=True)
    assert type(layer(x).grad_fn).__name__ == "OneDNNLinearFunctionBackward"
    # float64 and CPU autocast (bfloat16) go through F.linear, which autocast converts.
    assert type(layer.double()(x.double()).grad_fn).__name__ != "OneDNNLinearFunctionBackward"
    layer.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
    backend("torch")
    assert type(layer(x).grad_fn).__name__ == "AddmmBackward0"


@needs_onednn
def test_linear_on_batches_of_more_than_two_dimensions(backend):
    backend("onednn")
    layer = Linear(5, 2)
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))
    assert layer(torch.randn(5)).shape == (2,)
    # An empty batch (a rank's share of a short last batch can be) goes through F.linear.
    empty = torch.randn(0, 5, requires_grad=True)
    out = layer(empty)
    out.sum().backward()
    assert out.shape == (0, 2) and empty.grad.shape == (0, 5)


def test_backend_setting_resolution(backend, monkeypatch):
    backend("torch")
    assert _onednn.use_onednn() is False
    backend("onednn")
    assert _onednn.use_onednn() is _onednn.onednn_works()
    # "auto": oneDNN on x86-64 CPUs of other vendors than Intel only.
    backend("auto")
    monkeypatch.setattr(_onednn.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(_onednn, "_cpu_vendor", lambda: "GenuineIntel")
    assert _onednn.use_onednn() is False
    _onednn._resolve.cache_clear()
    monkeypatch.setattr(_onednn, "_cpu_vendor", lambda: "AuthenticAMD")
    assert _onednn.use_onednn() is _onednn.onednn_works()
    _onednn._resolve.cache_clear()
    monkeypatch.setattr(_onednn.platform, "machine", lambda: "aarch64")
    assert _onednn.use_onednn() is False


def test_invalid_backend_setting_is_a_clear_error(backend):
    backend("mkl")
    with pytest.raises(ValueError, match="SKDEEPCLUSTER_CPU_MATMUL='mkl' is not valid"):
        _onednn.use_onednn()


def test_missing_operator_falls_back_to_torch(backend, monkeypatch):
    monkeypatch.setattr(_onednn, "_linear_op", lambda: None)
    _onednn.onednn_works.cache_clear()
    try:
        backend("onednn")
        assert _onednn.use_onednn() is False
        layer = Linear(3, 2)
        assert type(layer(torch.randn(2, 3, requires_grad=True)).grad_fn).__name__ == \
            "AddmmBackward0"
    finally:
        monkeypatch.undo()
        _onednn.onednn_works.cache_clear()
        _onednn._resolve.cache_clear()


@needs_onednn
def test_autoencoder_training_step_matches_torch_kernels(backend):
    # One SGD step of the default network with each backend: same loss and parameters up to
    # float32 rounding (the products sum in another order).
    def step(setting):
        backend(setting)
        torch.manual_seed(0)
        ae = MLPAutoencoder(20, n_components=3, hidden_dims=(16, 8))
        x = torch.rand(32, 20, generator=torch.Generator().manual_seed(1))
        loss = F.mse_loss(ae(x), x)
        loss.backward()
        with torch.no_grad():
            for p in ae.parameters():
                p -= 0.1 * p.grad
        return loss.detach(), [p.detach().clone() for p in ae.parameters()]

    loss_a, params_a = step("onednn")
    loss_b, params_b = step("torch")
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-6)
    for a, b in zip(params_a, params_b):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@needs_onednn
def test_kmeans_products_take_onednn_from_the_size_threshold_on(backend, monkeypatch):
    from skdeepcluster import _kmeans, _losses

    backend("onednn")
    calls = []
    real = _onednn._onednn_linear
    monkeypatch.setattr(_onednn, "_onednn_linear",
                        lambda *a: calls.append(a[0].shape) or real(*a))
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(2**14, 16, generator=gen)          # 10 x 16 x 16,384: 2.6 M multiply-adds
    C = torch.randn(2, 10, 16, generator=gen)          # two runs at once
    scores = _kmeans.center_scores(C, X)
    flat = C.reshape(20, 16)
    ref = torch.addmm(0.5 * (flat * flat).sum(1, keepdim=True), flat, X.T, beta=-1.0)
    torch.testing.assert_close(scores, ref.view(2, 10, -1), rtol=1e-5, atol=1e-4)
    assert calls == [(20, 16)]
    # The concrete gradient's weighted sums (W @ Z) too, equal to torch's product.
    noise = torch.zeros(1, 10, X.shape[0])
    loss, index, grad = _losses.concrete_kmeans_center_grad(X, C, 0.5, 1.0, noise)
    backend("torch")
    loss_t, index_t, grad_t = _losses.concrete_kmeans_center_grad(X, C, 0.5, 1.0, noise)
    assert len(calls) == 3  # scores and W @ Z with oneDNN, none with "torch"
    assert torch.equal(index, index_t)
    torch.testing.assert_close(grad, grad_t, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(loss, loss_t, rtol=1e-5, atol=1e-2)
    # Below the threshold (7 x 19 x 2,310) torch's fused form runs, whatever the setting.
    backend("onednn")
    _kmeans.center_scores(torch.randn(7, 19), torch.randn(2310, 19))
    assert len(calls) == 3
    assert _onednn.product_nt(torch.randn(7, 19), torch.randn(2310, 19)) is None


@needs_onednn
def test_self_check_is_not_fooled_by_the_first_caller_context():
    # The check's answer is cached for the process: a first call inside a bfloat16 autocast
    # region or under a float64 default dtype must still find oneDNN working.
    _onednn.onednn_works.cache_clear()
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert _onednn.onednn_works() is True
    finally:
        torch.set_default_dtype(previous)
        _onednn.onednn_works.cache_clear()
        _onednn._resolve.cache_clear()

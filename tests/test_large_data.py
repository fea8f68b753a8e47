"""Training sets beyond memory: fitting and predicting from a memory map or a CSR matrix.

A read-only :class:`numpy.memmap` is never copied and its rows are read from the file
(``FileRows``), so the results are those from the array in memory (bit for bit) while the
process does not hold the file's pages; a CSR matrix is densified one batch or chunk at a
time.
"""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.utils import assert_all_finite

from skdeepcluster import DEC, AEKMeans, ConcreteKMeans, _engine
from skdeepcluster._base import EMBED_CHUNK_ROWS_CPU
from skdeepcluster._engine import FileRows, HostData, row_blocks
from skdeepcluster.metrics import within_cluster_sum_of_squares

CPU = torch.device("cpu")
FAST = {"n_clusters": 3, "hidden_dims": [32], "n_components": 3, "pretrain_epochs": 2,
        "batch_size": 64, "n_init": 2, "random_state": 0}
ON_LINUX = sys.platform.startswith("linux")
needs_file_reads = pytest.mark.skipif(
    not ON_LINUX, reason="positional reads of memory maps are used on Linux only")


def fast(cls, **params):
    extra = {} if cls is AEKMeans else {"max_iter": 2}
    return cls(**{**FAST, **extra, **params})


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 3.0, (3, 12))
    X = centers[rng.integers(0, 3, 500)] + rng.normal(0.0, 1.0, (500, 12))
    return X.astype(np.float32)


def memmap_of(X, folder, name="x.npy", mode="r"):
    """``X`` saved as .npy in ``folder`` and opened as a memory map."""
    np.save(folder / name, X)
    return np.load(folder / name, mmap_mode=mode)


def proc_status(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


# ---------------------------------------------------------------- same results
@pytest.mark.parametrize("cls", [AEKMeans, DEC, ConcreteKMeans])
def test_memmap_fit_predict_transform_equal_in_memory(cls, data, tmp_path):
    M = memmap_of(data, tmp_path)
    ram, mapped = fast(cls).fit(data), fast(cls).fit(M)
    np.testing.assert_array_equal(mapped.labels_, ram.labels_)
    np.testing.assert_array_equal(mapped.cluster_centers_, ram.cluster_centers_)
    np.testing.assert_array_equal(mapped.transform(M), ram.transform(data))
    np.testing.assert_array_equal(mapped.predict(M), ram.predict(data))
    assert mapped.score(M) == ram.score(data)
    assert [r.get("reconstruction") for r in mapped.history_] == [
        r.get("reconstruction") for r in ram.history_]


def test_float64_memmap_converted_by_batch(data, tmp_path):
    X64 = data.astype(np.float64)
    M = memmap_of(X64, tmp_path)
    hd = HostData(M, CPU, torch.float32)
    if ON_LINUX:  # read from the file in float64: no float32 copy of the whole set
        assert hd._file is not None and hd._tensor.dtype == torch.float64
    ram, mapped = fast(DEC).fit(X64), fast(DEC).fit(M)
    np.testing.assert_array_equal(mapped.labels_, ram.labels_)
    np.testing.assert_array_equal(mapped.transform(M), ram.transform(X64))


def test_csr_fit_equals_dense(data):
    X = np.where(data > 0.5, data, 0.0).astype(np.float32)  # some zeros
    dense, sparse = fast(DEC).fit(X), fast(DEC).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(X)), dense.predict(X))
    np.testing.assert_allclose(sparse.transform(sp.csr_matrix(X)), dense.transform(X),
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- no copy, no full read
@needs_file_reads
def test_hostdata_wraps_memmap_without_copy_and_reads_file(data, tmp_path):
    M = memmap_of(data, tmp_path)
    hd = HostData(M, CPU, torch.float32)
    assert hd._file is not None
    assert hd._tensor.data_ptr() == M.__array_interface__["data"][0]  # a view of the map
    ram = HostData(data, CPU, torch.float32)
    idx = torch.tensor([5, 0, 499, 5, 42])
    assert torch.equal(hd.rows(idx), ram.rows(idx))
    pairs = list(zip(hd.chunks(100), ram.chunks(100)))
    assert len(pairs) == 5
    for (s1, e1, a), (s2, e2, b) in pairs:
        assert (s1, e1) == (s2, e2) and torch.equal(a, b)


@needs_file_reads
def test_file_rows_only_for_shared_contiguous_maps(data, tmp_path):
    M = memmap_of(data, tmp_path)
    assert FileRows.of(M) is not None
    assert FileRows.of(np.asarray(M)) is not None  # what validate_data returns
    view = FileRows.of(M[100:])  # a view starts inside the file
    np.testing.assert_array_equal(view.gather([0, 3]).numpy(), data[[100, 103]])
    assert FileRows.of(data) is None  # in memory
    assert FileRows.of(M[:, :5]) is None  # rows not contiguous
    cow = np.load(tmp_path / "x.npy", mmap_mode="c")  # private copy-on-write pages
    cow[0, 0] = 99.0
    assert FileRows.of(cow) is None
    hd = HostData(cow, CPU, torch.float32)  # read through the map: sees the change
    assert hd.rows(torch.tensor([0]))[0, 0].item() == 99.0


@needs_file_reads
def test_file_rows_buffers_never_overwrite_kept_blocks(tmp_path):
    X = np.arange(60, dtype=np.float32).reshape(20, 3)
    reader = FileRows.of(memmap_of(X, tmp_path))
    a, b = reader.read(0, 5), reader.read(5, 10)
    kept = a[1:3]  # a view keeps a's buffer in use
    del a, b
    c = reader.read(10, 15)
    d = reader.read(15, 20)
    np.testing.assert_array_equal(kept.numpy(), X[1:3])
    np.testing.assert_array_equal(c.numpy(), X[10:15])
    np.testing.assert_array_equal(d.numpy(), X[15:20])
    with pytest.raises(IndexError):
        reader.gather([20])


_RSS_SCRIPT = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_large_data import FAST, memmap_of, proc_status
from skdeepcluster import AEKMeans
from pathlib import Path

rng = np.random.default_rng(0)
X = rng.random((12_000, 700), dtype=np.float32)
M = memmap_of(X, Path(sys.argv[1]))
del X
params = {**FAST, "pretrain_epochs": 1, "batch_size": 256, "n_init": 1}
AEKMeans(**params).fit(M[:2000].copy())  # warm up: libraries' pages, allocator pools
anon, mapped = proc_status("RssAnon"), proc_status("RssFile")
model = AEKMeans(**params).fit(M)
model.predict(M)
model.transform(M)
model.score(M)
print(proc_status("RssFile") - mapped, proc_status("RssAnon") - anon)
"""


@pytest.mark.skipif(proc_status("RssFile") is None, reason="needs /proc/self/status")
def test_memmap_pages_not_resident_and_not_copied(tmp_path):
    # 34 MB of float32: reading it through the map would add it to RssFile; a copy, to
    # RssAnon. Measured in a fresh interpreter: inside the test session the heap left by
    # earlier tests moved RssAnon by up to 16.4 MB on its own (the bound is 16).
    import subprocess
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(tmp_path),
                          str(Path(__file__).parent)], capture_output=True, text=True,
                         check=True, timeout=600)
    file_growth, anon_growth = (int(v) for v in out.stdout.split()[-2:])
    mb = 2**20
    assert file_growth / mb < 8  # the file's pages: not held
    assert anon_growth / mb < 16  # nor a copy of X


def test_csr_never_densified_whole(data, monkeypatch):
    X = sp.csr_matrix(np.vstack([data] * 3))  # 1500 rows
    dense_rows = []
    toarray = sp._compressed._cs_matrix.toarray

    def recording_toarray(self, *args, **kwargs):
        dense_rows.append(self.shape[0])
        return toarray(self, *args, **kwargs)

    monkeypatch.setattr(sp._compressed._cs_matrix, "toarray", recording_toarray)
    # the CPU's chunks (on a GPU, predict streams larger ones: tests/test_cuda.py)
    model = fast(DEC, batch_size=64, device="cpu").fit(X)
    model.predict(X)
    model.transform(X)
    model.score(X)
    assert dense_rows and max(dense_rows) <= max(64, EMBED_CHUNK_ROWS_CPU) < X.shape[0]


@needs_file_reads
def test_predict_transform_read_in_chunks(data, tmp_path, monkeypatch):
    M = memmap_of(np.vstack([data] * 3), tmp_path)
    model = fast(AEKMeans, device="cpu").fit(M)  # the CPU's chunks
    monkeypatch.setattr(_engine, "SCAN_BYTES", 48 * 100)  # the NaN check: 100 rows a read
    sizes = []
    read = FileRows.read

    def recording_read(self, start, stop):
        sizes.append(stop - start)
        return read(self, start, stop)

    monkeypatch.setattr(FileRows, "read", recording_read)
    model.predict(M)
    model.transform(M)
    assert sizes and max(sizes) <= EMBED_CHUNK_ROWS_CPU < M.shape[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_predict_on_unavailable_gpu_is_cpu_without_warning(data, recwarn):
    with pytest.warns(UserWarning, match="falling back to the CPU"):
        model = fast(AEKMeans, device="cuda").fit(data)
    recwarn.clear()
    ref = fast(AEKMeans, device="cpu").fit(data)
    np.testing.assert_array_equal(model.predict(data), ref.predict(data))
    np.testing.assert_array_equal(model.transform(data), ref.transform(data))
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    assert next(model.autoencoder_.parameters()).device.type == "cpu"


# ---------------------------------------------------------------- NaN and infinity
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_chunked_finiteness_check_raises_sklearn_messages(value, data, tmp_path,
                                                          monkeypatch):
    monkeypatch.setattr(_engine, "SCAN_BYTES", 1000)  # many blocks; the bad row in a late one
    bad = data.copy()
    bad[450, 4] = value
    M = memmap_of(bad, tmp_path)
    with pytest.raises(ValueError) as in_memory:
        fast(AEKMeans).fit(bad)
    with pytest.raises(ValueError) as mapped:
        fast(AEKMeans).fit(M)
    assert str(mapped.value) == str(in_memory.value)
    assert str(mapped.value).startswith(
        "Input X contains NaN." if np.isnan(value)
        else "Input X contains infinity or a value too large for dtype('float32').")
    model = fast(AEKMeans).fit(data)
    with pytest.raises(ValueError) as in_memory:
        model.predict(bad)
    with pytest.raises(ValueError) as mapped:
        model.transform(M)
    assert str(mapped.value) == str(in_memory.value)


# ---------------------------------------------------------------- score in blocks
def test_within_cluster_sum_of_squares_in_blocks(data, tmp_path, monkeypatch):
    labels = np.random.default_rng(1).integers(0, 4, len(data))
    X64 = data.astype(np.float64)
    _, codes = np.unique(labels, return_inverse=True)
    means = np.stack([X64[codes == c].mean(0) for c in range(codes.max() + 1)])
    expected = float(((X64 - means[codes]) ** 2).sum())
    one_block = within_cluster_sum_of_squares(data, labels)
    assert one_block == pytest.approx(expected, rel=1e-12)
    M = memmap_of(data, tmp_path)
    assert within_cluster_sum_of_squares(M, labels) == one_block
    monkeypatch.setattr(_engine, "SCAN_BYTES", 2000)
    assert len(list(row_blocks(M))) > 10
    assert within_cluster_sum_of_squares(M, labels) == pytest.approx(expected, rel=1e-12)
    bad = data.copy()
    bad[400, 0] = np.nan
    with pytest.raises(ValueError, match="Input contains NaN"):
        within_cluster_sum_of_squares(bad, labels)


def test_row_blocks_cover_rows_in_order(data, tmp_path, monkeypatch):
    monkeypatch.setattr(_engine, "SCAN_BYTES", 48 * 10)  # 10 rows of 12 float32
    for X in (data, memmap_of(data, tmp_path)):
        blocks = list(row_blocks(X))
        assert [b.shape[0] for _, _, b in blocks] == [10] * 50
        np.testing.assert_array_equal(np.vstack([b for _, _, b in blocks]), data)
        for _, _, b in blocks:
            assert_all_finite(b)


@needs_file_reads
def test_memmap_chunks_are_small_and_cover_every_row(tmp_path, monkeypatch):
    # A memory map's default chunks read blocks of at most SCAN_BYTES (its pooled read
    # buffers then stay small), in order, every row once; an explicit size is kept.
    from skdeepcluster import _engine

    monkeypatch.setattr(_engine, "SCAN_BYTES", 4096)
    X = np.arange(100 * 50, dtype=np.float32).reshape(100, 50)
    data = HostData(memmap_of(X, tmp_path), torch.device("cpu"), torch.float32)
    blocks = list(data.chunks())
    assert all((stop - start) * 50 * 4 <= 4096 for start, stop, _ in blocks)
    assert len(blocks) == 5  # 20 rows of 200 bytes per block
    np.testing.assert_array_equal(torch.cat([b for _, _, b in blocks]).numpy(), X)
    assert [stop - start for start, stop, _ in data.chunks(60)] == [60, 40]
    # an array in memory keeps the full default chunk
    assert len(list(HostData(X, torch.device("cpu"), torch.float32).chunks())) == 1

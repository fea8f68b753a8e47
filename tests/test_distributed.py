"""Data-parallel fits inside a torch.distributed process group (2 gloo ranks on the CPU)."""

import os
import pickle
import uuid

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from _ddp_worker import fit_on_rank
from _estimators import deep_estimators
from sklearn.datasets import make_blobs

from skdeepcluster import (
    DEC,
    IDEC,
    AEKMeans,
    ConcreteKMeans,
)
from skdeepcluster._distributed import chunk_block, merge_short_tail, shard_batch, shard_sizes

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason="torch.distributed is not available")


def run_ranks(jobs, tmp_path, world_size=2, backend="gloo"):
    """Fit ``jobs`` ({name: (class, params, X)}) on ``world_size`` ranks of a ``backend``
    group; the results of every rank (a list indexed by rank)."""
    # A fresh rendezvous file per call: a group whose ranks were killed (a rank raised)
    # leaves its file behind, and a later group on it would read the dead ranks' addresses.
    init_file = tmp_path / f"init-{uuid.uuid4().hex}"
    mp.start_processes(fit_on_rank,
                       args=(world_size, str(init_file), jobs, str(tmp_path), backend),
                       nprocs=world_size, join=True, start_method="spawn")
    results = []
    for rank in range(world_size):
        with open(os.path.join(tmp_path, f"rank{rank}.pkl"), "rb") as f:
            results.append(pickle.load(f))
    return results


_FAST = {"n_clusters": 3, "hidden_dims": (16,), "n_components": 2, "pretrain_epochs": 3,
         "batch_size": 32, "n_init": 2, "random_state": 0}

#: Every deep estimator, with few epochs on small blobs.
_JOBS = {
    **deep_estimators(_FAST, max_iter=3, update_interval=2, dcec_max_iter=2),
    # without a seed, rank 0's entropy seeds every rank
    "DEC-unseeded": (DEC, {**_FAST, "max_iter": 3, "update_interval": 2,
                           "random_state": None}),
}


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    # 201 rows: batches of 32 end with a batch of 9 rows (odd: the ranks get 5 and 4).
    X, _ = make_blobs(n_samples=201, n_features=8, centers=3, random_state=0)
    X = X.astype(np.float32)
    jobs = {name: (cls, params, X) for name, (cls, params) in _JOBS.items()}
    return X, run_ranks(jobs, tmp_path_factory.mktemp("ddp"))


@pytest.mark.parametrize("name", list(_JOBS))
def test_ranks_end_identical(two_rank_results, name):
    _, (rank0, rank1) = two_rank_results
    a, b = rank0[name], rank1[name]
    assert a["weights"].keys() == b["weights"].keys()
    for key in a["weights"]:
        np.testing.assert_array_equal(a["weights"][key], b["weights"][key], err_msg=key)
    np.testing.assert_array_equal(a["centers"], b["centers"])
    np.testing.assert_array_equal(a["labels"], b["labels"])
    assert a["n_iter"] == b["n_iter"]


@pytest.mark.parametrize("name", list(_JOBS))
def test_gathered_labels_cover_every_row_and_equal_predict(two_rank_results, name):
    X, results = two_rank_results
    for result in (rank[name] for rank in results):
        assert result["labels"].shape == (X.shape[0],)
        assert set(np.unique(result["labels"])) <= set(range(3))
        # labels_ is predict(X_train), as in a single process
        np.testing.assert_array_equal(result["labels"], result["predict"])


@pytest.mark.parametrize("name", list(_JOBS))
def test_history_records_world_size(two_rank_results, name):
    _, (rank0, _) = two_rank_results
    assert rank0[name]["world_sizes"] == [2]


def test_history_records_world_size_one_outside_a_group():
    X, _ = make_blobs(n_samples=60, n_features=4, centers=3, random_state=0)
    est = DEC(**{**_FAST, "max_iter": 2}).fit(X)
    assert {r["world_size"] for r in est.history_} == {1}


def test_two_rank_pretraining_takes_the_single_process_steps(tmp_path):
    # The ranks split each global batch and average their gradients weighted by rows:
    # the pretrained network is the one a single process trains on the same batches, up
    # to the rounding of the sums (the 201-row set ends with an odd batch).
    X, _ = make_blobs(n_samples=201, n_features=8, centers=3, random_state=1)
    X = X.astype(np.float32)
    params = {**_FAST, "pretrain_epochs": 4, "n_components": 3}
    ranks = run_ranks({"ae": (AEKMeans, params, X)}, tmp_path)
    single = AEKMeans(**params).fit(X)
    for key, value in single.autoencoder_.state_dict().items():
        np.testing.assert_allclose(ranks[0]["ae"]["weights"][key], value.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=key)
    np.testing.assert_array_equal(ranks[0]["ae"]["labels"], single.labels_)


def test_ranks_with_different_data_is_a_clear_error(tmp_path):
    X, _ = make_blobs(n_samples=60, n_features=4, centers=3, random_state=0)
    jobs = {"dec": (DEC, _FAST, {0: X, 1: X[:50]})}
    with pytest.raises(mp.ProcessRaisedException, match=r"same X .* have shapes"):
        run_ranks(jobs, tmp_path)
    # per-rank shards of one shape: caught by the fingerprint of the values
    jobs = {"dec": (DEC, _FAST, {0: X[:30], 1: X[30:]})}
    with pytest.raises(mp.ProcessRaisedException, match=r"same X .* differ in their values"):
        run_ranks(jobs, tmp_path)


def test_batch_sharding_covers_each_row_once():
    class Group:
        world_size = 3

    perm = torch.randperm(100)
    shards = []
    for rank in range(3):
        group = Group()
        group.rank = rank
        shards.append(shard_batch(perm, group))
    assert sorted(torch.cat(shards).tolist()) == list(range(100))
    assert [len(s) for s in shards] == [34, 33, 33]
    # the shares are known on every rank without asking the others
    assert shard_sizes(100, group) == [34, 33, 33]
    for n_rows in range(3, 12):
        assert shard_sizes(n_rows, group) == [
            len(shard_batch(torch.arange(n_rows), type("G", (), {"rank": r, "world_size": 3})))
            for r in range(3)]


def test_short_last_batch_is_merged_so_every_rank_has_rows():
    class Group:
        world_size = 4
        rank = 0

    # 130 rows in batches of 64: a last batch of 2 rows < 4 ranks joins the one before.
    assert merge_short_tail([0, 64, 128], 130, Group()) == [0, 64]
    assert merge_short_tail([0, 64, 128], 132, Group()) == [0, 64, 128]
    assert merge_short_tail([0, 64, 128], 130, None) == [0, 64, 128]


def test_chunk_blocks_partition_the_rows_on_chunk_boundaries():
    class Group:
        world_size = 3

    blocks = []
    for rank in range(3):
        group = Group()
        group.rank = rank
        blocks.append(chunk_block(2600, 512, group))
    # 6 chunks: 2 per rank; every block starts on a chunk boundary; together all rows.
    assert blocks == [(0, 1024), (1024, 2048), (2048, 2600)]
    group = Group()
    group.rank = 2
    assert chunk_block(700, 512, group) == (1024, 700)  # no chunk left: an empty block
    # every rank knows every block's size (gather_rows needs no count exchange)
    from skdeepcluster._distributed import ProcessGroup, block_sizes

    assert block_sizes(2600, 512, ProcessGroup(1, 3, "gloo")) == [1024, 1024, 552]
    assert block_sizes(700, 512, ProcessGroup(0, 3, "gloo")) == [512, 188, 0]


def test_nccl_group_on_cpu_device_is_a_clear_error():
    from skdeepcluster._distributed import ProcessGroup, check_backend_device

    with pytest.raises(ValueError, match="only carries CUDA tensors"):
        check_backend_device(ProcessGroup(0, 2, "nccl"), torch.device("cpu"))
    check_backend_device(ProcessGroup(0, 2, "gloo"), torch.device("cpu"))  # no error


@pytest.mark.slow
def test_two_rank_accuracy_on_digits_within_the_seed_spread(tmp_path):
    # ConcreteKMeans, DEC and IDEC (a smaller network and shorter phases than the defaults,
    # for time): the 2-rank fit with seed 0 against 1-process fits with seeds 0, 1, 2.
    from sklearn.datasets import load_digits

    from skdeepcluster.metrics import cluster_accuracy

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    common = {"n_clusters": 10, "hidden_dims": (256, 128), "pretrain_epochs": 60,
              "max_iter": 20}
    classes = {"ConcreteKMeans": ConcreteKMeans, "DEC": DEC, "IDEC": IDEC}
    jobs = {name: (cls, {**common, "random_state": 0}, X) for name, cls in classes.items()}
    ranks = run_ranks(jobs, tmp_path)
    for name, cls in classes.items():
        single = [cluster_accuracy(y, cls(**common, random_state=seed).fit(X).labels_)
                  for seed in (0, 1, 2)]
        two = cluster_accuracy(y, ranks[0][name]["labels"])
        spread = max(max(single) - min(single), 0.03)
        assert abs(two - np.mean(single)) <= spread, (name, two, single)
        assert two > 0.6, (name, two, single)  # far above chance (about 0.2)


@pytest.mark.parametrize("name", ["DCN", "DKM"])
def test_two_rank_clustering_phase_takes_the_single_process_steps(name, tmp_path):
    # Scale-free clustering terms divide by the variance of the global batch and add the
    # variance's gradient in closed form, so two ranks train the network and the centres a
    # single process trains (up to the rounding of the sums).
    X, _ = make_blobs(n_samples=201, n_features=8, centers=3, random_state=1)
    X = X.astype(np.float32)
    cls, params = _JOBS[name]
    ranks = run_ranks({name: (cls, params, X)}, tmp_path)
    single = cls(**params).fit(X)
    for key, value in single.autoencoder_.state_dict().items():
        np.testing.assert_allclose(ranks[0][name]["weights"][key], value.numpy(), rtol=1e-3,
                                   atol=1e-4, err_msg=key)
    # The same centres and partition; their order may differ, since the initial k-means on
    # the embedding sees it up to the rounding of the ranks' products (oneDNN's float32
    # kernels round differently for a rank's half batch), which can change the order in
    # which k-means++ picks the same clusters.
    centers = ranks[0][name]["centers"]
    order = np.argmin(((single.cluster_centers_[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    assert sorted(order.tolist()) == list(range(len(order)))
    np.testing.assert_allclose(centers[order], single.cluster_centers_, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(np.argsort(order)[ranks[0][name]["labels"]], single.labels_)

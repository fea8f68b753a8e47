"""Hyper-parameter searches on a ``dask.distributed`` cluster (joblib's "dask" backend).

The cluster runs two worker processes: the estimators are pickled to the workers and back,
and each worker runs torch on its share of the cores (see ``skdeepcluster._threads``).
"""

import os
import time

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from skdeepcluster import ConcreteKMeans
from skdeepcluster._threads import limited_torch_threads, torch_thread_share, torch_threads

distributed = pytest.importorskip("distributed")

#: Small network, few epochs: 9 fits of well under a second each (4 candidates x 2 folds,
#: then the refit of the best one).
_FAST = {"n_clusters": 3, "hidden_dims": (32,), "n_components": 2, "pretrain_epochs": 10,
         "max_iter": 5, "batch_size": 64, "n_init": 2, "random_state": 0}
#: On the data below the four mean scores differ (the best was the third candidate, lam=1
#: and tau=0.5, when this was written), so that a mix-up of candidates or folds shows.
_GRID = {"lam": [10.0, 1.0], "tau": [0.5, 1.0]}


@pytest.fixture(scope="module")
def data():
    """Digits 0, 1 and 2 (the first 300 of them), scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    return (X[y < 3][:300] / 16).astype(np.float32)


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, closed after the module's tests.

    A nanny writes dask's worker settings (``OMP_NUM_THREADS=1``, ``PYTHONHASHSEED``, ...)
    into this process's environment before it spawns a worker: they are undone afterwards,
    so that they do not reach the processes that later tests start.
    """
    environ = dict(os.environ)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        os.environ.update(environ)


def _search(X):
    return GridSearchCV(ConcreteKMeans(**_FAST), _GRID, cv=2, n_jobs=2).fit(X)


def test_grid_search_on_dask_matches_the_default_backend(data, client):
    # The fits run on one torch thread with both backends (dask's workers: see below; loky's:
    # inner_max_num_threads). The number of threads can change the last bits of a fit (sums
    # in another order); with it fixed, the scores must be the same bits.
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        reference = _search(data)
    with joblib.parallel_config(backend="dask"):
        on_dask = _search(data)
    assert on_dask.best_params_ == reference.best_params_
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"],
                                  reference.cv_results_["mean_test_score"])
    assert len(set(reference.cv_results_["mean_test_score"])) == 4
    # The refit of the best candidate runs in this process with either backend.
    np.testing.assert_array_equal(on_dask.best_estimator_.predict(data),
                                  reference.best_estimator_.predict(data))
    assert len(client.scheduler_info()["workers"]) == 2


def test_fitted_estimators_travel_between_processes(data, client):
    model = ConcreteKMeans(**_FAST)
    assert set(client.run(torch.get_num_threads).values()) == {1}
    with torch_threads(1):  # as in the workers: the same bits
        local = clone(model).fit(data)
    remote = client.submit(clone(model).fit, data).result()  # fitted in a worker, sent back
    np.testing.assert_array_equal(remote.labels_, local.labels_)
    np.testing.assert_array_equal(remote.predict(data), local.predict(data))
    # ... and a fitted estimator sent to a worker predicts there as it does here.
    labels = client.submit(local.predict, data).result()
    np.testing.assert_array_equal(labels, local.predict(data))


def _threads_in_a_fit():
    """(share, torch threads before, inside and after the limited block) in a task."""
    before = torch.get_num_threads()
    with limited_torch_threads():
        inside = torch.get_num_threads()
        time.sleep(0.3)  # so that the tasks of a threaded worker overlap
    return torch_thread_share(), before, inside, torch.get_num_threads()


def test_process_workers_already_run_torch_on_their_share(client):
    # A nanny's worker process starts with OMP_NUM_THREADS=1: torch uses one thread, which is
    # within the share (2 cores / 1 task thread here); the block leaves it as it is.
    results = client.run(lambda: None)  # both workers are up
    assert len(results) == 2
    for _ in range(2):
        share, before, inside, after = client.submit(_threads_in_a_fit, pure=False).result()
        assert before == inside == after == 1
        assert share >= 1


def test_threaded_worker_limits_torch_to_its_share():
    # A threaded worker runs its tasks in this process, with torch's thread count of this
    # process: the block lowers it to the share (cores / 2 task threads), and the last task
    # to leave restores it, also when the two tasks overlap.
    previous = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                      dashboard_address=":0") as cluster, \
                distributed.Client(cluster) as client:
            futures = [client.submit(_threads_in_a_fit, pure=False) for _ in range(2)]
            results = [future.result() for future in futures]
        share = results[0][0]
        assert 1 <= share < 4
        assert [inside for _, _, inside, _ in results] == [share, share]
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(previous)
    assert torch_thread_share() is None  # outside a worker: leave torch as it is

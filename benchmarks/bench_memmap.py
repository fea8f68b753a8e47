"""Peak memory of fitting a deep estimator from a memory-mapped training set.

Builds float32 ``.npy`` files of about 1 GB and 4 GB (``--sizes-gb``) from mnist_test's rows
(scaled to [0, 1] as ``load_dataset`` does), repeated and jittered (Gaussian noise of
standard deviation ``--jitter``, clipped to [0, 1]; seeded), then fits one deep estimator in
a fresh subprocess per case:

* ``memmap``: ``np.load(path, mmap_mode="r")`` for every size (the estimator gets the
  read-only memory map);
* ``ram``: the smallest file loaded into memory (``np.load(path)``), for the seconds per
  epoch from memory next to those from the map.

Each worker reports its peak resident memory over the fit (``VmHWM``, reset just before
``fit`` through ``/proc/self/clear_refs``), the peaks of its two parts sampled every 20 ms
(``RssAnon``: memory the process allocated; ``RssFile``: pages of files mapped in the
process, which include the pages of a memory map it has read), the resident memory just
before ``fit`` and the seconds of each pretraining epoch (``history_``, phase
``"pretrain"``); then the peak of ``predict`` and ``transform`` on the same input. The
network is small on purpose (``hidden_dims=[64]``, ``n_components=10``, one or two epochs):
the point is memory, not clustering quality, and the default network would take many
minutes per epoch on 1.4 million rows.

Two figures summarise the run: the growth of the fit's peak RSS from the smallest to the
largest file (the target is at most 200 MB between 1 GB and 4 GB: the process must not
hold the data), and the ratio of the seconds per pretraining epoch from the map to those
from memory (target at most 1.2), from ``--timing-pairs`` pairs of fits alternated in one
process on the smallest file, with the small network and (``--default-network-rows``) with
the estimators' default network on the file's first rows: a mini-batch's rows are read
with one system call each, a fixed cost per row that weighs more next to a small network.

Before each memory-map case the file is read once in order (unless ``--no-warm``), so that
its pages start in the page cache as after ``np.load``: the epochs then time the package's
reads, not the disk. The header records whether DAMON proactive reclaim runs on the
machine (as in some virtual machines): it writes out page-cache pages that are not read
for about a minute, so a long fit from a map that is read in random order may go back to
the disk.

Examples
--------
::

    python benchmarks/bench_memmap.py                          # 1 GB and 4 GB, temp folder
    python benchmarks/bench_memmap.py --output benchmarks/results/memmap.md
    python benchmarks/bench_memmap.py --sizes-gb 0.25 1 --dir /data/tmp --keep
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

import numpy as np

ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MALLOC_ARENA_MAX")
STATUS_KEYS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")
MB = 2**20


# ---------------------------------------------------------------------------- worker side
def proc_status():
    """The memory lines of ``/proc/self/status`` we report, in MiB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in STATUS_KEYS:
                values[key] = int(rest.split()[0]) / 1024
    return values


def reset_peak():
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` value 5)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


class PeakSampler:
    """Peaks of ``RssAnon`` and ``RssFile``, sampled every ``interval`` seconds."""

    def __init__(self, interval=0.02):
        self.interval, self.peaks, self._stop = interval, {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self):
        for key, value in proc_status().items():
            self.peaks[key] = max(self.peaks.get(key, 0.0), value)

    def measure(self, func):
        """Run ``func()``; return its result, seconds and the memory figures around it."""
        self.peaks = {}
        reset_peak()
        before = proc_status()
        start = time.perf_counter()
        result = func()
        seconds = time.perf_counter() - start
        self.sample()
        after = proc_status()
        return result, seconds, {
            "rss_before": before["VmRSS"], "anon_before": before["RssAnon"],
            "file_before": before["RssFile"], "peak_rss": after["VmHWM"],
            "peak_anon": self.peaks.get("RssAnon", after["RssAnon"]),
            "peak_file": self.peaks.get("RssFile", after["RssFile"]),
            "rss_after": after["VmRSS"]}

    def close(self):
        self._stop.set()
        self._thread.join()


def worker(case):
    """One case in this (fresh) process: load, fit, predict, transform; print JSON."""
    import torch

    import skdeepcluster

    if case["threads"]:
        torch.set_num_threads(case["threads"])
    X = (np.load(case["path"], mmap_mode="r") if case["mode"] == "memmap"
         else np.load(case["path"]))
    cls = getattr(skdeepcluster, case["estimator"])
    params = dict(case["params"])
    if case["estimator"] == "AEKMeans":
        params.pop("max_iter", None)
    model = cls(**params)
    sampler = PeakSampler()
    _, fit_seconds, fit_mem = sampler.measure(lambda: model.fit(X))
    epochs = [r["seconds"] for r in model.history_ if r["phase"] == "pretrain"]
    _, predict_seconds, predict_mem = sampler.measure(lambda: model.predict(X))
    _, transform_seconds, transform_mem = sampler.measure(lambda: model.transform(X))
    sampler.close()
    print(json.dumps({
        "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]),
        "fit_seconds": fit_seconds, "epoch_seconds": epochs, "fit": fit_mem,
        "predict_seconds": predict_seconds, "predict": predict_mem,
        "transform_seconds": transform_seconds, "transform": transform_mem,
        "torch_threads": torch.get_num_threads()}))


def timing_worker(case):
    """Fits from memory and from the map, alternately in this process; print JSON.

    Each fit runs two pretraining epochs; the second one is timed (wall-clock from
    ``history_``, and the process's CPU seconds between the callbacks that end the two
    epochs), so that the first epoch's warm-up is left out and both sources see the same
    load on the machine, pair after pair (order ABBA...).
    """
    import torch

    import skdeepcluster

    if case["threads"]:
        torch.set_num_threads(case["threads"])
    rows = case.get("rows") or None  # the first rows only (a view of the map)
    in_memory = np.load(case["path"])
    sources = {"memory": in_memory[:rows].copy() if rows else in_memory,
               "memmap": np.load(case["path"], mmap_mode="r")[:rows]}
    cls = getattr(skdeepcluster, case["estimator"])
    params = {**case["params"], "pretrain_epochs": 2, **case.get("override", {})}
    if case["estimator"] == "AEKMeans":
        params.pop("max_iter", None)
    runs = []
    for pair in range(case["pairs"]):
        order = ["memory", "memmap"] if pair % 2 == 0 else ["memmap", "memory"]
        for name in order:
            cpu = []  # process CPU seconds at the end of each epoch (a callback's view)
            model = cls(**params, callbacks=[
                lambda est, rec, marks=cpu: marks.append(time.process_time())]).fit(
                    sources[name])
            epochs = [r["seconds"] for r in model.history_ if r["phase"] == "pretrain"]
            runs.append({"source": name, "wall": epochs[1], "cpu": cpu[1] - cpu[0]})
    print(json.dumps({"runs": runs, "torch_threads": torch.get_num_threads(),
                      "n_samples": len(sources["memory"])}))


# ---------------------------------------------------------------------------- driver side
def build_file(path, size_gb, jitter, seed, data_dir):
    """Write ``size_gb`` GB of float32 rows (mnist_test's, repeated and jittered) as .npy."""
    from skdeepcluster.datasets import load_dataset

    base, _, _ = load_dataset("mnist_test", data_dir)  # float32 in [0, 1]
    n_features = base.shape[1]
    n_samples = int(size_gb * 2**30) // (n_features * 4)
    rng = np.random.default_rng(seed)
    block = 10_000
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                "fortran_order": False, "shape": (n_samples, n_features)})
        for start in range(0, n_samples, block):
            stop = min(start + block, n_samples)
            rows = base[np.arange(start, stop) % len(base)]
            noise = rng.normal(0.0, jitter, rows.shape).astype(np.float32)
            f.write(np.clip(rows + noise, 0.0, 1.0, dtype=np.float32).tobytes())
    return n_samples, n_features


def warm(path, block=64 * MB):
    """Read ``path`` once in order (its pages into the page cache; none kept here)."""
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(block)
        while f.readinto(buffer):
            pass


def damon_reclaim():
    """A line on DAMON proactive reclaim (Linux sysfs), or None when it is not running."""
    root = Path("/sys/kernel/mm/damon/admin/kdamonds")
    try:
        for kdamond in sorted(root.glob("[0-9]*")):
            if (kdamond / "state").read_text().strip() != "on":
                continue
            for scheme in sorted(kdamond.glob("contexts/*/schemes/*")):
                action = (scheme / "action").read_text().strip()
                min_age = int((scheme / "access_pattern/age/min").read_text())
                aggr_us = int((scheme.parent.parent / "monitoring_attrs/intervals/aggr_us")
                              .read_text())
                return (f"DAMON proactive reclaim on (action {action}, regions idle for "
                        f"{min_age * aggr_us / 1e6:g} s)")
    except (OSError, ValueError):
        return None
    return None


def run_case(case, log):
    """Run one case in a fresh interpreter; its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(case)]
    log(f"  {case['mode']} {Path(case['path']).name} ...")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def header(args, argv, params):
    import torch
    from _envinfo import code_fingerprint, cpu_model, load_average

    import skdeepcluster

    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    command = "python benchmarks/bench_memmap.py" + (" " + shlex.join(argv) if argv else "")
    lines = [
        "## Fitting from a memory map: peak memory and seconds per epoch", "",
        f"Command: `{command}`", "",
        f"- date: {now}",
        f"- host: {platform.platform()}, CPU {cpu_model()}, os.cpu_count() {os.cpu_count()}, "
        f"no GPU used (device='cpu')",
        f"- python {platform.python_version()}, numpy {np.__version__}, torch "
        f"{torch.__version__}, skdeepcluster {skdeepcluster.__version__}",
        f"- code under test: {code_fingerprint()}",
        f"- load average at start (1/5/15 min): {load_average()}",
    ]
    for var in ENV_VARS:
        value = os.environ.get(var)
        lines.append(f"- {var}: {'unset' if value is None else repr(value)}")
    lines.append(f"- page cache: {damon_reclaim() or 'no DAMON proactive reclaim found'}; "
                 + ("each map read once in order before its case" if not args.no_warm
                    else "maps not warmed"))
    lines += [
        f"- estimator: {args.estimator}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
        " -- a small network on purpose: the point is memory, not clustering quality",
        f"- data: mnist_test rows scaled to [0, 1], repeated, jitter N(0, {args.jitter}) "
        "clipped to [0, 1], float32 .npy files (784 features)", ""]
    return lines


def table(results):
    lines = [
        "| case | rows | data MB | RSS before fit MB | fit peak RSS (VmHWM) MB | "
        "peak RssAnon MB | peak RssFile MB | pretrain s/epoch | fit s | predict peak MB "
        "(+ over before) | transform peak MB (+) |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in results:
        fit = res["fit"]
        data_mb = res["n_samples"] * res["n_features"] * 4 / MB
        epochs = res["epoch_seconds"]
        pred, trans = res["predict"], res["transform"]
        lines.append(
            f"| {name} | {res['n_samples']:,} | {data_mb:,.0f} | {fit['rss_before']:,.0f} | "
            f"{fit['peak_rss']:,.0f} | {fit['peak_anon']:,.0f} | {fit['peak_file']:,.0f} | "
            f"{statistics.median(epochs):.2f} ({', '.join(f'{s:.2f}' for s in epochs)}) | "
            f"{res['fit_seconds']:.1f} | {pred['peak_rss']:,.0f} "
            f"(+{pred['peak_rss'] - pred['rss_before']:,.0f}) | {trans['peak_rss']:,.0f} "
            f"(+{trans['peak_rss'] - trans['rss_before']:,.0f}) |")
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default=None,
                        help="folder of the generated files (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--jitter", type=float, default=0.02)
    parser.add_argument("--estimator", default="AEKMeans",
                        help="a deep estimator of skdeepcluster (AEKMeans, DEC, ...)")
    parser.add_argument("--epochs", type=int, default=2, help="pretraining epochs")
    parser.add_argument("--n-init", type=int, default=1,
                        help="k-means restarts in the latent space (the estimators' default "
                             "is 20; each keeps a few floats per sample during k-means++)")
    parser.add_argument("--no-ram", action="store_true", help="skip the in-memory case")
    parser.add_argument("--repeats", type=int, default=1,
                        help="interleaved pairs (map, memory) of fresh-process fits on the "
                             "smallest file")
    parser.add_argument("--timing-pairs", type=int, default=4,
                        help="pairs of fits (memory, map) alternated in one process on the "
                             "smallest file for the seconds per epoch (0: none)")
    parser.add_argument("--default-network-rows", type=int, default=20_000,
                        help="also time the estimator's default network (hidden_dims "
                             "(500, 500, 2000)) on this many first rows (0: no)")
    parser.add_argument("--no-warm", action="store_true",
                        help="do not read each map once before its case")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-dir", default=None, help="folder of mnist_test.npz")
    parser.add_argument("--output", default=None, help="write the Markdown report here")
    args = parser.parse_args(argv)
    if args.worker:
        case = json.loads(args.worker)
        (timing_worker if case["mode"] == "alternate" else worker)(case)
        return

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    params = {"n_clusters": 10, "hidden_dims": [64], "n_components": 10,
              "pretrain_epochs": args.epochs, "max_iter": 1, "batch_size": 256,
              "n_init": args.n_init, "random_state": 0, "device": "cpu"}
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_memmap_"))
    folder.mkdir(parents=True, exist_ok=True)
    created = []
    results = []
    try:
        paths = {}
        for size in sorted(args.sizes_gb):
            path = folder / f"mnist_jitter_{size:g}GB.npy"
            if not path.exists():
                log(f"writing {path} ...")
                build_file(path, size, args.jitter, seed=0, data_dir=args.data_dir)
                created.append(path)
            paths[size] = path
        base_case = {"estimator": args.estimator, "params": params, "threads": args.threads}
        smallest = min(paths)

        def mapped(size):
            if not args.no_warm:
                warm(paths[size])
            return run_case({**base_case, "path": str(paths[size]), "mode": "memmap"}, log)

        for repeat in range(1 if args.no_ram else max(1, args.repeats)):
            tag = f" #{repeat + 1}" if args.repeats > 1 and not args.no_ram else ""
            results.append((f"memmap {smallest:g} GB{tag}", mapped(smallest)))
            if not args.no_ram:
                res = run_case({**base_case, "path": str(paths[smallest]), "mode": "ram"},
                               log)
                results.append((f"in memory {smallest:g} GB (np.load){tag}", res))
        for size in sorted(paths)[1:]:
            results.append((f"memmap {size:g} GB", mapped(size)))
        timings = []
        if args.timing_pairs > 0 and not args.no_ram:
            if not args.no_warm:
                warm(paths[smallest])
            timing = run_case({**base_case, "path": str(paths[smallest]), "mode": "alternate",
                               "pairs": args.timing_pairs}, log)
            timings = [("small network", timing)]
            if args.default_network_rows:
                timings.append(("default network (500, 500, 2000)", run_case(
                    {**base_case, "path": str(paths[smallest]), "mode": "alternate",
                     "pairs": args.timing_pairs, "rows": args.default_network_rows,
                     "override": {"hidden_dims": [500, 500, 2000]}}, log)))
    finally:
        if not args.keep:
            for path in created:
                path.unlink(missing_ok=True)
            if not args.dir:
                shutil.rmtree(folder, ignore_errors=True)

    lines = header(args, argv, params) + table(results) + [""]
    small_maps = [r for name, r in results if name.startswith(f"memmap {smallest:g} GB")]
    largest = [r for name, r in results if name == f"memmap {max(paths):g} GB"]
    if largest and max(paths) > smallest:
        r0, r1 = small_maps[0], largest[0]
        growth = r1["fit"]["peak_rss"] - r0["fit"]["peak_rss"]
        anon = r1["fit"]["peak_anon"] - r0["fit"]["peak_anon"]
        lines.append(f"- fit peak RSS, {max(paths):g} GB file minus {smallest:g} GB file: "
                     f"{growth:+,.0f} MB (RssAnon peaks {anon:+,.0f} MB; target <= 200 MB)")
    for label, timing in timings:
        med = {(src, key): statistics.median(r[key] for r in timing["runs"]
                                             if r["source"] == src)
               for src in ("memory", "memmap") for key in ("wall", "cpu")}
        lines += [
            "",
            f"Seconds of the second pretraining epoch, {label}, first "
            f"{timing['n_samples']:,} rows of the {smallest:g} GB set: fits from memory and "
            f"from the map alternated in one process ({args.timing_pairs} pairs, order "
            f"ABBA; torch threads {timing['torch_threads']}):", "",
            "| source | wall s per epoch (each fit) | median | process CPU s (median) |",
            "|---|---|---|---|"]
        for src in ("memory", "memmap"):
            walls = [r["wall"] for r in timing["runs"] if r["source"] == src]
            lines.append(f"| {src} | {', '.join(f'{w:.2f}' for w in walls)} | "
                         f"{med[(src, 'wall')]:.2f} | {med[(src, 'cpu')]:.2f} |")
        lines += ["", f"- seconds per pretraining epoch, memmap / in memory ({label}): "
                  f"{med[('memmap', 'wall')] / med[('memory', 'wall')]:.2f} wall-clock, "
                  f"{med[('memmap', 'cpu')] / med[('memory', 'cpu')]:.2f} CPU "
                  "(medians; target <= 1.2)"]
    lines += [
        "",
        "RSS counts the pages of the memory map the process has mapped (RssFile) as well as "
        "its own allocations (RssAnon); the file's pages stay in the operating system's page "
        "cache, which no process holds. Timings are wall-clock on a shared 2-core machine: "
        "compare ratios, and re-run when a number looks odd.", ""]
    report = "\n".join(lines)
    print(report)
    if args.output:
        Path(args.output).write_text(report)
        log(f"wrote {args.output}")


if __name__ == "__main__":
    main()

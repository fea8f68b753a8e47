"""Pretraining study: AE+KM (and KMeans) accuracy of each pretraining recipe and length.

The two-step baseline (:class:`skdeepcluster.AEKMeans`) is what every deep estimator starts
from, so its accuracy after pretraining is the quantity the pretraining defaults are chosen
on. Each run appends one JSON line (data set, subsample, seed, parameters, ACC/NMI, seconds,
optimizer steps) to ``--output``; ``--table`` prints the mean/min per configuration.

Examples
--------
::

    python benchmarks/bench_pretrain.py --datasets digits segment --seeds 0 1 2 \
        --configs '{"pretrain": "adam"}' '{"pretrain": "sgd"}' --output runs.jsonl
    python benchmarks/bench_pretrain.py --table runs.jsonl

Image data are scaled to [0, 1] (pixels / max), tabular data standardised (what a user's
``Pipeline([("scale", StandardScaler()), ...])`` does); KMeans(n_init=10) runs on the same
input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skdeepcluster.datasets import load_dataset
from skdeepcluster.metrics import cluster_accuracy

IMAGES = {"digits", "mnist_test", "usps", "usps_11000"}


def load(name, n_rows=None, seed=0, input_scale="unit"):
    X, y, _ = load_dataset(name, scale="raw" if input_scale == "raw" else "unit")
    if name not in IMAGES:
        scaler = MinMaxScaler() if input_scale == "minmax" else StandardScaler()
        X = scaler.fit_transform(X).astype(np.float32)
    if input_scale == "rms":  # one factor for all features: their mean variance becomes 1
        X = (X / np.sqrt(X.var(axis=0).mean())).astype(np.float32)
    elif input_scale not in ("unit", "raw", "minmax"):  # a number: the "unit" input times it
        X = (X * float(input_scale)).astype(np.float32)
    if n_rows is not None and n_rows < len(X):
        rows = np.random.RandomState(seed).choice(len(X), n_rows, replace=False)
        X, y = X[rows], y[rows]
    return X, y


def curve(name, X, y, seed, recipe, max_steps, checkpoints, output, batch_size=256,
          input_dropout=0.0, tag="", learning_rate=None, init="default", weight_decay=0.0,
          input_noise=0.0, autocast=None, ema=()):
    """AE+KM accuracy at several step counts of one pretraining run (no refit per length).

    ``ema``: decays of exponential moving averages of the weights, updated after every
    optimiser step of the end-to-end stage; at each checkpoint AE+KM is also measured on
    each average (records tagged ``+ema<decay>``), a paired comparison within one run.
    """
    import math

    import torch

    from skdeepcluster._engine import HostData, TrainingDivergedError, rng_scope, seeded_generator
    from skdeepcluster._pretrain import (
        AUTO_LEARNING_RATE,
        GREEDY_LAYER_FRACTION,
        pretrain_autoencoder,
    )
    from skdeepcluster.networks import MLPAutoencoder

    k = len(np.unique(y))
    steps_per_epoch = math.ceil(len(X) / batch_size)
    n_epochs = math.ceil(max_steps / steps_per_epoch)
    marks = {math.ceil(c / steps_per_epoch): c for c in checkpoints}
    device = torch.device("cpu")
    data = HostData(X, device, torch.float32)
    start = time.perf_counter()
    with rng_scope(seed, device):
        ae = MLPAutoencoder(X.shape[1], 10)
    if init == "glorot":  # Keras's Dense default (the IDEC/DCEC code): Glorot-uniform, zero bias
        with rng_scope(seed, device):
            for module in ae.modules():
                if isinstance(module, torch.nn.Linear):
                    torch.nn.init.xavier_uniform_(module.weight)
                    torch.nn.init.zeros_(module.bias)
    if weight_decay:
        import skdeepcluster._pretrain as pretrain_module

        plain_optimizer = getattr(pretrain_module._optimizer, "plain", pretrain_module._optimizer)

        def decayed(recipe, params, rate):
            optimizer = plain_optimizer(recipe, params, rate)
            for group in optimizer.param_groups:
                group["weight_decay"] = weight_decay
            return optimizer

        decayed.plain = plain_optimizer  # one wrapper, however many runs in the process
        pretrain_module._optimizer = decayed
    if input_noise:
        plain_encode_noise = ae.encode
        ae.encode = lambda Z: plain_encode_noise(
            Z + input_noise * torch.randn_like(Z) if ae.training else Z)
    if input_dropout:
        drop = torch.nn.Dropout(input_dropout)
        plain_encode = ae.encode
        ae.encode = lambda Z: plain_encode(drop(Z) if ae.training else Z)
    extra = 0 if recipe != "greedy" else 4 * math.ceil(GREEDY_LAYER_FRACTION * n_epochs)
    averages = {}
    if ema:
        import skdeepcluster._pretrain as pretrain_module

        plain = getattr(pretrain_module._optimizer, "plain", pretrain_module._optimizer)
        params = list(ae.parameters())
        averages = {d: [p.detach().clone() for p in params] for d in ema}

        def averaged(recipe, opt_params, rate):
            optimizer = plain(recipe, opt_params, rate)
            opt_params = list(optimizer.param_groups[0]["params"])
            if len(opt_params) == len(params):  # the end-to-end stage (not a greedy layer)

                def update(*_):
                    with torch.no_grad():
                        for decay, avg in averages.items():
                            torch._foreach_lerp_(avg, params, 1.0 - decay)

                optimizer.register_step_post_hook(update)
            return optimizer

        averaged.plain = plain
        pretrain_module._optimizer = averaged

    def measure(record, suffix):
        with torch.no_grad():
            ae.eval()
            Z = ae.encode(torch.from_numpy(X)).float().numpy()
            ae.train()
        labels = KMeans(k, n_init=10, random_state=seed).fit(Z).labels_
        emit({"dataset": name, "rows": len(X), "seed": seed, "recipe": recipe + tag + suffix,
              "steps": marks[record["epoch"]], "epochs": record["epoch"],
              "layer_epochs": extra, "acc": cluster_accuracy(y, labels),
              "nmi": normalized_mutual_info_score(y, labels),
              "rec": record["reconstruction"],
              "seconds": time.perf_counter() - start}, output)

    def callback(owner, record):
        if record["phase"] == "pretrain" and record["epoch"] in marks:
            measure(record, "")
            for decay, avg in averages.items():
                with torch.no_grad():
                    raw = [p.detach().clone() for p in ae.parameters()]
                    for p, a in zip(ae.parameters(), avg):
                        p.copy_(a)
                    measure(record, f" +ema{decay:g}")
                    for p, r in zip(ae.parameters(), raw):
                        p.copy_(r)
        return False

    try:
        with rng_scope(seed, device), precision_scope(autocast):
            pretrain_autoencoder(ae, data, recipe=recipe, n_epochs=n_epochs,
                                 batch_size=batch_size,
                                 learning_rate=learning_rate or AUTO_LEARNING_RATE[recipe],
                                 generator=seeded_generator(seed, device), callbacks=[callback])
    except TrainingDivergedError as exc:
        emit({"dataset": name, "rows": len(X), "seed": seed, "recipe": recipe,
              "diverged": str(exc)[:200]}, output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("Examples", 1)[1])
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--rows", type=int, nargs="+", default=[None])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=["{}"])
    parser.add_argument("--method", default="AEKMeans")
    parser.add_argument("--output", default=None)
    parser.add_argument("--table", default=None)
    parser.add_argument("--estimators", nargs="+", default=None,
                        help="fit these estimators with their defaults (shared memory cache)")
    parser.add_argument("--cache-dir", default=str(HERE / ".cache" / "pretrain"))
    parser.add_argument("--curve", nargs="+", default=None,
                        help="recipes: AE+KM accuracy along one pretraining run each")
    parser.add_argument("--max-steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--input-dropout", type=float, default=0.0)
    parser.add_argument("--greedy-finetune-lr-factor", type=float, default=None)
    parser.add_argument("--schedule", choices=["constant", "cosine"], default=None,
                        help="learning-rate schedule of every pretraining stage")
    parser.add_argument("--input-scale", default="unit",
                        help="unit = pixels / max (images), raw = as stored, minmax = tabular "
                             "features scaled to [0, 1] (MinMaxScaler), rms = divided by "
                             "the root mean feature variance, a number = unit times it")
    parser.add_argument("--lr", type=float, default=None, help="pretraining learning rate")
    parser.add_argument("--init", choices=["default", "glorot"], default="default",
                        help="initial weights of the MLP (glorot: Glorot-uniform, zero biases)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--input-noise", type=float, default=0.0,
                        help="standard deviation of Gaussian noise on the input (denoising)")
    parser.add_argument("--autocast", choices=["bf16"], default=None,
                        help="pretrain (--curve) or fit (--estimators) under torch.autocast "
                             "on the CPU in this dtype")
    parser.add_argument("--trace", action="store_true",
                        help="with --estimators: record the ACC of the training labels after "
                             "the k-means initialisation and after every clustering epoch")
    parser.add_argument("--ema", type=float, nargs="+", default=[],
                        help="with --curve: also measure AE+KM on exponential moving "
                             "averages of the weights with these decays (same run)")
    parser.add_argument("--augment", type=float, nargs=2, metavar=("MAX_SHIFT", "MAX_ROTATION"),
                        help="with --estimators: train with RandomAffine(image_shape, "
                             "MAX_SHIFT, MAX_ROTATION) on the image sets (default: the "
                             "estimators' augmentation='auto')")
    parser.add_argument("--no-augment", action="store_true",
                        help="with --estimators: augmentation=None (config tagged ' no-aug')")
    parser.add_argument("--checkpoints", type=int, nargs="+",
                        default=[500, 1000, 2000, 4000, 8000])
    args = parser.parse_args(argv)
    if args.table:
        return print_table(args.table)
    if args.estimators:
        for name in args.datasets:
            for n_rows in args.rows:
                for seed in args.seeds:
                    defaults(name, n_rows, seed, args.estimators, json.loads(args.configs[0]),
                             args.cache_dir, args.output, args.autocast, args.input_scale,
                             args.trace, "none" if args.no_augment else args.augment)
        return None
    if args.curve:
        for name in args.datasets:
            for n_rows in args.rows:
                for seed in args.seeds:
                    X, y = load(name, n_rows, seed, args.input_scale)
                    km = KMeans(len(np.unique(y)), n_init=10, random_state=seed).fit(X)
                    emit({"dataset": name, "rows": len(X), "seed": seed, "recipe": "KMeans",
                          "acc": cluster_accuracy(y, km.labels_),
                          "nmi": normalized_mutual_info_score(y, km.labels_)}, args.output)
                    for recipe in args.curve:
                        tag = ""
                        if args.greedy_finetune_lr_factor is not None:
                            import skdeepcluster._pretrain as pretrain_module

                            pretrain_module.GREEDY_FINETUNE_LR_FACTOR = (
                                args.greedy_finetune_lr_factor)
                            tag += f" ft-lr x{args.greedy_finetune_lr_factor}"
                        if args.batch_size != 256:
                            tag += f" b{args.batch_size}"
                        if args.input_dropout:
                            tag += f" drop{args.input_dropout}"
                        if args.schedule:
                            import skdeepcluster._pretrain as pretrain_module

                            pretrain_module.LEARNING_RATE_SCHEDULE = args.schedule
                            tag += f" {args.schedule}"
                        if args.lr:
                            tag += f" lr{args.lr:g}"
                        if args.init != "default":
                            tag += f" init-{args.init}"
                        if args.weight_decay:
                            tag += f" wd{args.weight_decay:g}"
                        if args.input_noise:
                            tag += f" noise{args.input_noise:g}"
                        if args.input_scale != "unit":
                            tag += f" x-{args.input_scale}"
                        if args.autocast:
                            tag += f" {args.autocast}"
                        curve(name, X, y, seed, recipe, args.max_steps,
                              [c for c in args.checkpoints if c <= args.max_steps], args.output,
                              batch_size=args.batch_size, input_dropout=args.input_dropout,
                              tag=tag, learning_rate=args.lr, init=args.init,
                              weight_decay=args.weight_decay, input_noise=args.input_noise,
                              autocast=args.autocast, ema=args.ema)
        return None
    import skdeepcluster
    for name in args.datasets:
        for n_rows in args.rows:
            for seed in args.seeds:
                X, y = load(name, n_rows, seed)
                k = len(np.unique(y))
                km = KMeans(k, n_init=10, random_state=seed).fit(X)
                base = {"dataset": name, "rows": len(X), "seed": seed}
                rec = {**base, "config": "KMeans", "acc": cluster_accuracy(y, km.labels_),
                       "nmi": normalized_mutual_info_score(y, km.labels_)}
                emit(rec, args.output)
                for cfg_text in args.configs:
                    cfg = json.loads(cfg_text)
                    cls = getattr(skdeepcluster, args.method)
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = cls(n_clusters=k, random_state=seed, device="cpu", **cfg)
                        model.fit(X)
                    seconds = time.perf_counter() - start
                    epochs = sum(1 for r in model.history_
                                 if str(r.get("phase", "")).startswith("pretrain"))
                    rec = {**base, "config": args.method + " " + cfg_text,
                           "acc": cluster_accuracy(y, model.labels_),
                           "nmi": normalized_mutual_info_score(y, model.labels_),
                           "seconds": seconds, "pretrain_epochs_run": epochs}
                    emit(rec, args.output)


def precision_scope(autocast):
    """The package's own context for ``precision="bfloat16"`` on the CPU ("bf16"), or a
    no-op for None: what an estimator's ``precision`` parameter runs its network in."""
    from skdeepcluster._engine import precision_scope as scope

    return scope({None: "float32", "bf16": "bfloat16"}[autocast], "cpu")


def traced(cls, y, trace):
    """``cls`` with the ACC of its training labels appended to ``trace`` after the k-means
    initialisation and after every clustering epoch (the labels its ``tol`` is checked on)."""

    class Traced(cls):
        def _init_centers(self, state):
            super()._init_centers(state)
            trace.append(cluster_accuracy(y, state.labels.cpu().numpy()))

        def _epoch_end(self, state):
            values = super()._epoch_end(state)
            trace.append(cluster_accuracy(y, state.labels.cpu().numpy()))
            return values

    Traced.__name__ = Traced.__qualname__ = cls.__name__
    return Traced


def defaults(name, n_rows, seed, estimators, params, cache_dir, output, autocast=None,
             input_scale="unit", trace=False, augment=None):
    """Each estimator with its default parameters (``params`` added), one shared cache.

    ``augment``: ``(max_shift, max_rotation)`` of a
    :class:`~skdeepcluster.augmentation.RandomAffine` augmentation (image sets only),
    ``"none"`` (``augmentation=None``), or None (the estimators' default, ``"auto"``)."""
    import platform

    import torch
    from _envinfo import cpu_model  # the script's folder is on sys.path

    import skdeepcluster

    X, y = load(name, n_rows, seed, input_scale)
    k = len(np.unique(y))
    tag = name if input_scale == "unit" else f"{name} x-{input_scale}"
    # Same seed, same thread count, another machine: another network (float sums round
    # differently with the CPU's kernels), so each record says where it ran.
    base = {"dataset": tag, "rows": len(X), "seed": seed, "host": platform.release(),
            "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads": torch.get_num_threads()}
    km = KMeans(k, n_init=10, random_state=seed).fit(X)
    emit({**base, "config": "KMeans", "acc": cluster_accuracy(y, km.labels_),
          "nmi": normalized_mutual_info_score(y, km.labels_)}, output)
    image_shape = load_dataset(name)[2] if name in IMAGES else None
    for spec in estimators:
        # "Name" or "Name:{json parameters}" (e.g. 'DeepClusterADMM:{"clustering": "gmm"}')
        est, _, extra = spec.partition(":")
        kwargs = {"n_clusters": k, "random_state": seed, "memory": cache_dir, **params,
                  **(json.loads(extra) if extra else {})}
        if est == "DCEC":
            if image_shape is None:
                continue
            kwargs["input_shape"] = image_shape
        aug_tag = ""
        if augment == "none":
            kwargs["augmentation"] = None
            aug_tag = " no-aug"
        elif augment is not None:
            from skdeepcluster.augmentation import RandomAffine

            if image_shape is None:
                continue
            kwargs["augmentation"] = RandomAffine(image_shape, *augment)
            aug_tag = " aug({:g}, {:g})".format(*augment)
        epochs_acc = []
        cls = getattr(skdeepcluster, est)
        model = (traced(cls, y, epochs_acc) if trace else cls)(**kwargs)
        start = time.perf_counter()
        with warnings.catch_warnings(), precision_scope(autocast):
            warnings.simplefilter("ignore")
            model.fit(X)
        seconds = time.perf_counter() - start
        pre = [r for r in model.history_ if r["phase"].startswith("pretrain")]
        emit({**base, "config": spec + (" " + json.dumps(params) if params else "")
              + (f" {autocast}" if autocast else "") + aug_tag,
              "acc": cluster_accuracy(y, model.labels_),
              "nmi": normalized_mutual_info_score(y, model.labels_), "seconds": seconds,
              "pretrain_seconds": sum(r["seconds"] for r in pre),
              "pretrain_cached": bool(pre and pre[0].get("cached")),
              "pretrain_epochs": model.pretrain_epochs_, "pretrain": model.pretrain_,
              "augmentation": repr(model.augmentation_),
              "cluster_epochs": model.n_iter_,
              **({"trace": [round(a, 4) for a in epochs_acc]} if trace else {})}, output)


def emit(rec, output):
    line = json.dumps(rec)
    print(line, flush=True)
    if output:
        with open(output, "a") as fh:
            fh.write(line + "\n")


def print_curves(rows):
    """AE+KM ACC per (data set, recipe, steps): mean and min over seeds, KMeans alongside."""
    groups, kmeans, seen = {}, {}, set()
    for r in rows:
        key = (r["dataset"], r["rows"], r["seed"], r["recipe"], r.get("steps"))
        if key in seen:  # a configuration run twice (e.g. an interrupted run resumed)
            continue
        seen.add(key)
        if r["recipe"] == "KMeans":
            kmeans.setdefault((r["dataset"], r["rows"]), {})[r["seed"]] = r["acc"]
        elif "diverged" in r:
            groups.setdefault((r["dataset"], r["rows"], r["recipe"], "diverged"), []).append(r)
        else:
            groups.setdefault((r["dataset"], r["rows"], r["recipe"], r["steps"]), []).append(r)
    print("| data | rows | recipe | steps | seeds | AE+KM ACC mean | min | KMeans ACC (same seeds) "
          "| seeds above KMeans |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in sorted(groups, key=lambda t: (t[0], t[1], t[2], str(t[3]).zfill(8))):
        rs = groups[key]
        name, n, recipe, steps = key
        km = kmeans.get((name, n), {})
        if steps == "diverged":
            print(f"| {name} | {n} | {recipe} | — | {len(rs)} | diverged (NaN loss) | | | |")
            continue
        acc = np.array([r["acc"] for r in rs])
        ref = np.array([km.get(r["seed"], np.nan) for r in rs])
        print(f"| {name} | {n} | {recipe} | {steps} | {len(rs)} | {acc.mean():.3f} | "
              f"{acc.min():.3f} | {np.nanmean(ref):.3f} | {int((acc > ref).sum())}/{len(rs)} |")


def print_defaults(rows):
    """Per (data set, rows): each estimator's ACC per seed, mean, and seeds above KMeans
    (and above AEKMeans on the same seed, i.e. the same pretrained network)."""
    groups, kmeans = {}, {}
    for r in rows:
        if r["config"] == "KMeans":
            kmeans[(r["dataset"], r["rows"], r["seed"])] = r["acc"]
        else:
            groups.setdefault((r["dataset"], r["rows"]), {}).setdefault(r["config"], {})[
                r["seed"]] = r
    for (name, n), by_config in groups.items():
        seeds = sorted({s for runs in by_config.values() for s in runs})
        print(f"\n{name}, {n} rows, seeds {seeds}: ACC per seed\n")
        print("| estimator | " + " | ".join(f"seed {s}" for s in seeds)
              + " | mean | seeds above KMeans | seeds above AEKMeans | NMI mean "
              "| fit s (pretraining + own phase) |")
        print("|---|" + "---|" * (len(seeds) + 5))
        aekm = by_config.get("AEKMeans", {})
        aekm_acc = [aekm[s]["acc"] if s in aekm else np.nan for s in seeds]
        ref = [kmeans.get((name, n, s), np.nan) for s in seeds]
        print("| KMeans(n_init=10) | " + " | ".join(f"{a:.3f}" for a in ref)
              + f" | {np.nanmean(ref):.3f} | | | | |")
        for config, runs in by_config.items():
            acc = [runs[s]["acc"] if s in runs else np.nan for s in seeds]
            above = sum(a > k for a, k in zip(acc, ref))
            above_ae = ("" if config == "AEKMeans" or not aekm else
                        f"{sum(a > k for a, k in zip(acc, aekm_acc))}/{len(seeds)}")
            nmi = np.nanmean([runs[s]["nmi"] for s in runs])
            sec = np.nanmean([runs[s]["pretrain_seconds"] + (
                runs[s]["seconds"] if runs[s]["pretrain_cached"] else
                runs[s]["seconds"] - runs[s]["pretrain_seconds"]) for s in runs])
            pre = np.nanmean([runs[s]["pretrain_seconds"] for s in runs])
            print(f"| {config} | " + " | ".join(f"{a:.3f}" for a in acc)
                  + f" | {np.nanmean(acc):.3f} | {above}/{len(seeds)} | {above_ae} | "
                  f"{nmi:.3f} | {sec:.0f} ({pre:.0f} + {sec - pre:.0f}) |")


def print_table(path):
    rows = [json.loads(line) for line in open(path)]
    if rows and "recipe" in rows[0]:
        return print_curves(rows)
    if rows and "pretrain_cached" in json.dumps(rows):
        return print_defaults(rows)
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["rows"], r["config"]), []).append(r)
    print("| data | rows | config | seeds | ACC mean | ACC min | NMI mean | s mean |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, n, cfg), rs in sorted(groups.items(), key=lambda t: (t[0][0], t[0][1], t[0][2])):
        acc = np.array([r["acc"] for r in rs])
        nmi = np.array([r["nmi"] for r in rs])
        sec = np.array([r.get("seconds", np.nan) for r in rs])
        print(f"| {name} | {n} | {cfg} | {len(rs)} | {acc.mean():.3f} | {acc.min():.3f} | "
              f"{nmi.mean():.3f} | {np.nanmean(sec):.1f} |")


if __name__ == "__main__":
    main()

"""Write the offline intersphinx inventories of the objects these docs link to.

The documentation links to scikit-learn, PyTorch, NumPy, SciPy, joblib and Python objects through
``sphinx.ext.intersphinx``. ``conf.py`` tries each project's published ``objects.inv``
first and falls back to the small inventory written here, so that the docs build (with
``-n``, every reference resolved) on a machine without internet access. The entries
follow each project's URL scheme; add a line when the docs reference a new object, then
run ``python docs/_inventories/make_inventories.py``.
"""

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: project -> (version, [(name, role, uri), ...]); ``$`` in a uri stands for the name.
INVENTORIES = {
    "sklearn": ("1.9", [
        ("sklearn.cluster.KMeans", "py:class", "modules/generated/$.html#$"),
        ("sklearn.pipeline.Pipeline", "py:class", "modules/generated/$.html#$"),
        ("sklearn.model_selection.GridSearchCV", "py:class", "modules/generated/$.html#$"),
        ("sklearn.model_selection.cross_validate", "py:function",
         "modules/generated/$.html#$"),
        ("sklearn.metrics.normalized_mutual_info_score", "py:function",
         "modules/generated/$.html#$"),
        ("sklearn.metrics.adjusted_rand_score", "py:function", "modules/generated/$.html#$"),
        ("sklearn.metrics.accuracy_score", "py:function", "modules/generated/$.html#$"),
        ("sklearn.base.clone", "py:function", "modules/generated/$.html#$"),
        ("sklearn.exceptions.ConvergenceWarning", "py:class", "modules/generated/$.html#$"),
        ("sklearn.exceptions.NotFittedError", "py:class", "modules/generated/$.html#$"),
        ("sklearn.datasets.load_digits", "py:function", "modules/generated/$.html#$"),
        ("sklearn.model_selection.cross_val_score", "py:function",
         "modules/generated/$.html#$"),
    ]),
    "torch": ("2.13", [
        ("torch.nn.Module", "py:class", "generated/$.html#$"),
        ("torch.autocast", "py:class", "amp.html#$"),
        ("torch.cuda.set_device", "py:function", "generated/$.html#$"),
        ("torch.distributed", "py:module", "distributed.html#module-$"),
        ("torch.distributed.init_process_group", "py:function", "distributed.html#$"),
        ("torch.multiprocessing", "py:module", "multiprocessing.html#module-$"),
        ("torch.multiprocessing.start_processes", "py:function", "multiprocessing.html#$"),
        ("torch.utils.data.distributed.DistributedSampler", "py:class", "data.html#$"),
    ]),
    "numpy": ("2.4", [
        ("numpy.ndarray", "py:class", "reference/generated/$.html#$"),
        ("numpy.random.RandomState", "py:class", "reference/random/legacy.html#$"),
        ("numpy.memmap", "py:class", "reference/generated/$.html#$"),
    ]),
    "scipy": ("1.16", [
        ("scipy.optimize.linear_sum_assignment", "py:function",
         "reference/generated/$.html#$"),
    ]),
    "joblib": ("1.5", [
        ("joblib", "py:module", "index.html#module-$"),
        ("joblib.Memory", "py:class", "generated/$.html#$"),
    ]),
    "python": ("3.11", [
        ("random", "py:module", "library/random.html#module-$"),
        ("pickle", "py:module", "library/pickle.html#module-$"),
        ("os.path.expanduser", "py:function", "library/os.path.html#$"),
        ("functools.partial", "py:function", "library/functools.html#$"),
    ]),
}


def write(project, version, entries):
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n")
    body = "".join(f"{name} {role} 1 {uri.replace('$', name)} -\n"
                   for name, role, uri in entries)
    path = HERE / f"{project}.inv"
    path.write_bytes(header.encode() + zlib.compress(body.encode()))
    return path


if __name__ == "__main__":
    for project, (version, entries) in INVENTORIES.items():
        print(write(project, version, entries))

"""Sphinx configuration for the skdeepcluster documentation."""

import importlib.util
import os
import re
import sys

# Make the package importable without installing it.
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

project = "skdeepcluster"
author = "skdeepcluster developers"
copyright = "skdeepcluster developers"


def _read_version():
    # Read __version__ without importing the package (which needs torch).
    path = os.path.join(ROOT, "skdeepcluster", "__init__.py")
    with open(path, encoding="utf-8") as fh:
        match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', fh.read(), re.MULTILINE)
    return match.group(1) if match else "unknown"


release = _read_version()
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
]

# Links to the other projects' documentation: each project's published inventory when the
# build machine can reach it, else the offline subset in _inventories/ (written by
# _inventories/make_inventories.py), so that ``sphinx-build -n`` resolves every reference
# without internet access too.
_INVENTORY_URLS = {
    "sklearn": "https://scikit-learn.org/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "joblib": "https://joblib.readthedocs.io/en/stable/",
    "python": "https://docs.python.org/3/",
}
intersphinx_mapping = {
    name: (url, (None, os.path.join(os.path.dirname(__file__), "_inventories", f"{name}.inv")))
    for name, url in _INVENTORY_URLS.items()
}
intersphinx_timeout = 5
if importlib.util.find_spec("numpydoc") is not None:
    extensions.append("numpydoc")
    numpydoc_show_class_members = False
    numpydoc_class_members_toctree = False
else:
    extensions.append("sphinx.ext.napoleon")
    napoleon_google_docstring = False
    napoleon_numpy_docstring = True

# The gallery: examples/ rendered with their output and figures (sphinx-gallery runs every
# plot_*.py script; about 8 minutes on a 2-core CPU). Without sphinx-gallery installed the
# documentation builds without it.
if importlib.util.find_spec("sphinx_gallery") is not None:
    extensions.append("sphinx_gallery.gen_gallery")
    sphinx_gallery_conf = {
        "examples_dirs": os.path.join(ROOT, "examples"),
        "gallery_dirs": "auto_examples",
        "filename_pattern": r"/plot_",
        "within_subsection_order": "FileNameSortKey",
        "download_all_examples": False,
        "remove_config_comments": True,
        "matplotlib_animations": False,
    }
    os.environ.setdefault("MPLBACKEND", "Agg")

# No stub generation: api.rst documents every object on the page itself, and
# generating stubs would write files into the source tree.
autosummary_generate = False
autodoc_default_options = {}
autodoc_typehints = "none"

# Names available to `make doctest` (sphinx.ext.doctest) in every document.
doctest_global_setup = """
import numpy as np
from skdeepcluster.metrics import *
"""

templates_path = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
source_suffix = ".rst"
master_doc = "index"

# The PyData theme (scikit-learn's, numpy's) when installed, else Sphinx's default.
html_theme = ("pydata_sphinx_theme" if importlib.util.find_spec("pydata_sphinx_theme")
              is not None else "alabaster")
html_static_path = []
html_title = f"skdeepcluster {release}"


# scikit-learn style docstrings write shapes such as "ndarray of shape
# (n_features_in_,)". In reST a bare word ending in "_" is a hyperlink
# reference, so quote such names inside "shape (...)" before rendering.
_SHAPE = re.compile(r"shape \(([^)]*)\)")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?![`\w])")


def _quote_shape_names(app, what, name, obj, options, lines):
    def fix(match):
        return "shape (" + _TRAILING_UNDERSCORE.sub(r"``\1``", match.group(1)) + ")"

    lines[:] = [_SHAPE.sub(fix, line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _quote_shape_names)

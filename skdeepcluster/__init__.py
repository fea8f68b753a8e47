"""skdeepcluster: scikit-learn compatible deep clustering estimators on PyTorch."""

from . import metrics
from ._concrete import ShallowConcreteKMeans

__version__ = "0.1.0.dev0"

__all__ = [
    "ShallowConcreteKMeans",
    "__version__",
    "metrics",
]

"""skdeepcluster: scikit-learn compatible deep clustering estimators on PyTorch."""

# ``_threads`` comes first: it sets how OpenMP threads wait before torch is loaded.
from . import _threads, augmentation, metrics, networks  # noqa: F401
from ._admm import DeepClusterADMM
from ._aekmeans import AEKMeans
from ._concrete import ConcreteKMeans
from ._dcn import DCN
from ._dctl import DCTLKMeans
from ._dec import DCEC, DEC, IDEC
from ._dkm import DKM, CenteringKM
from ._engine import TrainingDivergedError
from ._shallow import ShallowConcreteKMeans

__version__ = "0.1.0.dev0"

__all__ = [
    "DCEC",
    "DCN",
    "DEC",
    "DKM",
    "IDEC",
    "AEKMeans",
    "CenteringKM",
    "ConcreteKMeans",
    "DCTLKMeans",
    "DeepClusterADMM",
    "ShallowConcreteKMeans",
    "TrainingDivergedError",
    "__version__",
    "augmentation",
    "metrics",
    "networks",
]

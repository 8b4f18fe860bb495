"""The model family: Restormer backbone (``restormer``), what defines a network (``config``), every
fusion mechanism (``fusion``), CSNet assembled from a config (``network``) and its size (``summary``)."""
from csnet.models.config import ModelConfig
from csnet.models.fusion import FUSIONS, SELECTING, FusionSite
from csnet.models.network import CSNet, build_model, load_model, save_model
from csnet.models.restormer import SITES

__all__ = [
    "CSNet",
    "FUSIONS",
    "FusionSite",
    "ModelConfig",
    "SELECTING",
    "SITES",
    "build_model",
    "load_model",
    "save_model",
]

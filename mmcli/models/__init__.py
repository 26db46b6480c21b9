"""Models, one registry keyed by name (``logreg``, ``mlp``); see :mod:`mmcli.models.base`."""

from mmcli.models import linear, mlp  # noqa: F401  (registers them)
from mmcli.models.base import MODELS, Model, build_model, load_model, save_model

__all__ = ["MODELS", "Model", "build_model", "load_model", "save_model"]

"""Models, one registry keyed by name; see :mod:`mmcli.models.base` and docs/models.md.

Classic: ``logreg``, ``linear_svm``, ``random_forest``, ``hist_gb``. Torch: ``mlp`` and the
learned fusions ``late_repr``, ``gmu``, ``lowrank``, ``attention``, ``tensor_layer``.
Decision-level late fusion: ``late_decision``. The learned fusions read structured blocks
with a CNN, GRU or Transformer (:mod:`mmcli.models.encoders`); every torch model can augment
its training batches (:mod:`mmcli.models.augment`).
"""

from mmcli.models import (  # noqa: F401  (registers)
    classic,
    decision,
    fusion_nets,
    linear,
    mlp,
    subset,
)
from mmcli.models.base import MODELS, Model, build_model, load_model, save_model

__all__ = ["MODELS", "Model", "build_model", "load_model", "save_model"]

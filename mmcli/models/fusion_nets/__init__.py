"""Learned fusion: networks that see each modality block separately (a concat fuse directory).

Every model encodes each modality block with its own encoder (by default a small MLP,
``Linear, ReLU, Dropout`` to ``embed`` dimensions; with ``encoder: auto`` a CNN for image
blocks, a GRU for audio frames, a Transformer for text tokens, see :mod:`mmcli.models.encoders`),
fuses the embeddings with a learned operator, and ends in a head (``head`` hidden sizes, then
one linear output slice per task). All train with the shared loop of
:mod:`mmcli.models.torch_train`, so every training control applies.

One fusion network is one class in one module of this package (``late_repr.py``, ``gmu.py``,
``lowrank.py``, ``attention.py``, ``tensor_layer.py``): a subclass of
:class:`~mmcli.models.fusion_nets.base.FusionModel` registered with ``@MODELS.register(name)``
that says how it fuses (:meth:`~.base.FusionModel.build_fusion` and
:meth:`~.base.FusionModel.fuse`). Every module here is imported, and so registered, when
:mod:`mmcli.models` is; tests/models/test_fusion_nets.py runs its contract on each.

Missing modalities (:mod:`mmcli.missing`): the network reads the presence mask from ``M``
columns appended after the blocks (:meth:`~.network.FusionNet.presence`). An absent
modality's embedding is zeroed (late_repr, lowrank, whose factor then contributes its learned
constant row, tensor_layer, whose appended 1 keeps the other modalities' terms) or its gate or
attention score leaves the softmax (gmu, attention). The learned fusions train with
``modality_dropout: 0.3`` by default, so that a model learns to predict without each modality.
"""

import importlib
import pkgutil

from mmcli.models.fusion_nets.base import FusionModel, FusionParams

#: modules of this package that hold no fusion network
_SUPPORT = ("base", "network")

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _SUPPORT:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["FusionModel", "FusionParams"]

"""A multilayer perceptron in torch, trained by the shared loop of
:mod:`mmcli.models.torch_train`."""

from __future__ import annotations

import dataclasses

from mmcli.models.base import MODELS
from mmcli.models.torch_train import TorchModel, TrainParams


@MODELS.register("mlp")
class MLPModel(TorchModel):
    """Fully connected network on the fused vector: ``hidden`` layer sizes with ReLU and
    ``dropout``. Every training control of :class:`TrainParams` applies (AdamW, ``lr``,
    ``weight_decay`` = L2, ``l1``, early stopping after ``patience`` epochs without a better
    validation loss with the best epoch's weights restored, ``class_weight: balanced``, ...).
    """

    @dataclasses.dataclass
    class Params(TrainParams):
        hidden: list = dataclasses.field(default_factory=lambda: [256])

    def _network(self, n_features: int, n_outputs: int):
        import torch.nn as nn

        # an nn.Sequential with these exact indices: saved mlp models keep loading
        layers: list = []
        width = n_features
        for h in self.params.hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(self.params.dropout)]
            width = int(h)
        layers.append(nn.Linear(width, n_outputs))
        return nn.Sequential(*layers)

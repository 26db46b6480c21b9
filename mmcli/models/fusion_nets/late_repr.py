"""``late_repr``: representation-level late fusion, the block embeddings side by side."""

from __future__ import annotations

from mmcli.models.base import MODELS
from mmcli.models.fusion_nets.base import FusionModel


@MODELS.register("late_repr")
class LateRepr(FusionModel):
    """Learned fusion ``late_repr``: the concatenated embeddings go to the head."""

    def build_fusion(self, net, emb: int) -> int:
        return len(net.blocks) * emb

    def fuse(self, net, x):
        import torch

        return torch.cat(net.masked_embeddings(x), 1)

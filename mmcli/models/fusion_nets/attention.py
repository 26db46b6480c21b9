"""``attention``: attention over modality embeddings.

A score v^T tanh(W e_m) per modality, softmax over modalities, fused = the weighted sum of the
embeddings.
"""

from __future__ import annotations

from mmcli.models.base import MODELS
from mmcli.models.fusion_nets.base import FusionModel


@MODELS.register("attention")
class AttentionFusion(FusionModel):
    """Learned fusion ``attention``: softmax-weighted sum of the block embeddings."""

    def build_fusion(self, net, emb: int) -> int:
        import torch.nn as nn

        net.score = nn.Sequential(nn.Linear(emb, emb), nn.Tanh(), nn.Linear(emb, 1, bias=False))
        return emb

    def fuse(self, net, x):
        import torch

        stacked = torch.stack(net.masked_embeddings(x), 1)  # n, m, e
        alpha = torch.softmax(net.score(stacked) + net.out_of_softmax(x), 1)
        return (alpha * stacked).sum(1)

"""``lowrank``: Low-rank Multimodal Fusion (Liu et al., ACL 2018).

The tensor-fusion weight factorised into ``rank`` modality-specific factors:
fused = sum_r prod_m ([e_m, 1] W_m^r).
"""

from __future__ import annotations

from mmcli.models.base import MODELS
from mmcli.models.fusion_nets.base import FusionModel


@MODELS.register("lowrank")
class LowRank(FusionModel):
    """Learned fusion ``lowrank``: ``rank`` factors per modality, multiplied."""

    def build_fusion(self, net, emb: int) -> int:
        import torch
        import torch.nn as nn

        m = len(net.blocks)
        # each factor starts near [e, 1] -> 1 + small, so the product of M factors
        # neither vanishes nor explodes at the start (plain Xavier does for M > 2)
        factors = torch.randn(m, self.params.rank, emb + 1, emb) / (emb + 1)
        factors[:, :, emb, :] += 1.0
        net.factors = nn.Parameter(factors)
        net.fusion_bias = nn.Parameter(torch.zeros(emb))
        return emb

    def fuse(self, net, x):
        import torch

        ones = x.new_ones(x.shape[0], 1)
        prod = None
        for k, e in enumerate(net.masked_embeddings(x)):  # absent: the factor's constant
            # (n, e+1) x (rank, e+1, emb) -> (rank, n, emb)
            f = torch.matmul(torch.cat([e, ones], 1), net.factors[k])
            prod = f if prod is None else prod * f
        return prod.sum(0) + net.fusion_bias

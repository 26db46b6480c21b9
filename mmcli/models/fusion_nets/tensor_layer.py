"""``tensor_layer``: tensor fusion (Zadeh et al., EMNLP 2017) as a learned layer.

The outer product of [1, e_m] over modalities (embeddings of ``tensor_dim`` dimensions), then
the head; refused above :data:`TENSOR_MAX_FEATURES` features.
"""

from __future__ import annotations

from mmcli.errors import UsageError
from mmcli.models.base import MODELS
from mmcli.models.fusion_nets.base import FusionModel

TENSOR_MAX_FEATURES = 1 << 16


@MODELS.register("tensor_layer")
class TensorLayer(FusionModel):
    """Learned fusion ``tensor_layer``: outer product of the [1, embedding] vectors."""

    def embed_dim(self) -> int:
        return self.params.tensor_dim

    def check_size(self, n_blocks: int) -> None:
        size = (self.params.tensor_dim + 1) ** n_blocks
        if size > TENSOR_MAX_FEATURES:
            raise UsageError(
                f"tensor_layer of {n_blocks} modalities at tensor_dim "
                f"{self.params.tensor_dim} has {size} features",
                "lower train.params.tensor_dim or fuse fewer modalities")

    def build_fusion(self, net, emb: int) -> int:
        return (emb + 1) ** len(net.blocks)

    def fuse(self, net, x):
        import torch

        out = x.new_ones(x.shape[0], 1)
        for e in net.masked_embeddings(x):  # absent: zeros, the appended 1 keeps the rest
            e1 = torch.cat([x.new_ones(x.shape[0], 1), e], 1)
            out = (out[:, :, None] * e1[:, None, :]).reshape(x.shape[0], -1)
        return out

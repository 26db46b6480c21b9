"""``gmu``: Gated Multimodal Unit (Arevalo et al., "Gated Multimodal Units for Information
Fusion", ICLR workshop 2017).

h_m = tanh(W_m x_m), gates z = softmax over modalities of W_z [x_1; ...; x_M] per dimension,
fused = sum_m z_m * h_m (the two-modality sigmoid gate generalised to M modalities). With a
CNN/GRU/Transformer encoder on some block, W_m x_m is that block's encoding and the gates read
the encodings instead of the raw blocks.
"""

from __future__ import annotations

from mmcli.models.base import MODELS
from mmcli.models.fusion_nets.base import FusionModel


@MODELS.register("gmu")
class GatedMultimodalUnit(FusionModel):
    """Learned fusion ``gmu``: gated sum of tanh projections of the blocks."""

    def encoder(self, name: str, width: int, info: dict, emb: int):
        if name == "mlp":  # the GMU's own projection W_m of the raw block
            import torch.nn as nn

            return nn.Linear(width, emb)
        return super().encoder(name, width, info, emb)

    def build_fusion(self, net, emb: int) -> int:
        import torch.nn as nn

        m = len(net.blocks)
        # gates on the raw blocks (the paper); on the encodings with structured encoders
        gate_in = net.blocks[-1][1] if _plain(net) else m * emb
        net.gate = nn.Linear(gate_in, m * emb)
        return emb

    def fuse(self, net, x):
        import torch

        es = net.embeddings(x)
        hs = torch.stack([torch.tanh(h) for h in es], 1)  # n, m, e
        gate_in = x[:, :net.blocks[-1][1]] if _plain(net) else torch.cat(es, 1)
        logits = net.gate(gate_in).view(x.shape[0], len(net.blocks), -1) + net.out_of_softmax(x)
        return (torch.softmax(logits, 1) * hs).sum(1)


def _plain(net) -> bool:
    return all(name == "mlp" for name in net.encoder_names)

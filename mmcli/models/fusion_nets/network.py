"""The torch module of every learned fusion (imported only when a network is built)."""

from __future__ import annotations

import torch.nn as nn


def mlp_layers(width: int, sizes: list, dropout: float) -> tuple[list, int]:
    """``Linear, ReLU, Dropout`` per hidden size, and the width after them."""
    layers: list = []
    for h in sizes:
        layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(dropout)]
        width = int(h)
    return layers, width


class FusionNet(nn.Module):
    """One encoder per block, the model's fusion, then the head (hidden layers, one output
    slice per task). The fusion's own layers are attributes of this module (``gate``,
    ``factors``, ``score``, ...), so saved state keys name them directly."""

    def __init__(self, model, encoders: list[str], n_outputs: int):
        super().__init__()
        p = model.params
        self.blocks = model.blocks_.ranges
        self.encoder_names = list(encoders)
        emb = model.embed_dim()
        self.encoders = nn.ModuleList(
            model.encoder(name, b.width, b.info(), emb)
            for b, name in zip(model.blocks_, encoders))
        width = model.build_fusion(self, emb)
        self._fuse = model.fuse
        layers, width = mlp_layers(width, p.head, p.dropout)
        self.head = nn.Sequential(*layers, nn.Linear(width, n_outputs))

    def embeddings(self, x) -> list:
        return [enc(x[:, a:b]) for enc, (a, b) in zip(self.encoders, self.blocks)]

    def presence(self, x):
        """The (n, M) presence mask the model appended after the blocks (1.0: present)."""
        end = self.blocks[-1][1]
        return x[:, end:end + len(self.blocks)]

    def masked_embeddings(self, x) -> list:
        """:meth:`embeddings`, an absent modality's zeroed (mmcli.missing)."""
        mask = self.presence(x)
        return [e * mask[:, k:k + 1] for k, e in enumerate(self.embeddings(x))]

    def out_of_softmax(self, x):
        """(n, M, 1): 0 for a present modality, -1e4 for an absent one, added to gate or
        attention logits so that an absent modality leaves the softmax."""
        return (self.presence(x)[:, :, None] - 1.0) * 1e4

    def forward(self, x):
        return self.head(self._fuse(self, x))

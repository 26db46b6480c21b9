"""Learned fusion: networks that see each modality block separately (a concat fuse directory).

Every model encodes each modality block with its own encoder (by default a small MLP,
``Linear, ReLU, Dropout`` to ``embed`` dimensions; with ``encoder: auto`` a CNN for image
blocks, a GRU for audio frames, a Transformer for text tokens, see :mod:`.encoders`), fuses
the embeddings with a learned operator, and ends in a head (``head`` hidden sizes, then one
linear output slice per task). All train with the shared loop of
:mod:`mmcli.models.torch_train`, so every training control applies.

* ``late_repr``: representation-level late fusion: the embeddings side by side.
* ``gmu``: Gated Multimodal Unit (Arevalo et al., "Gated Multimodal Units for Information
  Fusion", ICLR workshop 2017): h_m = tanh(W_m x_m), gates z = softmax over modalities of
  W_z [x_1; ...; x_M] per dimension, fused = sum_m z_m * h_m (the two-modality sigmoid gate
  generalised to M modalities). With a CNN/GRU/Transformer encoder on some block, W_m x_m is
  that block's encoding and the gates read the encodings instead of the raw blocks.
* ``lowrank``: Low-rank Multimodal Fusion (Liu et al., ACL 2018): the tensor-fusion weight
  factorised into ``rank`` modality-specific factors, fused = sum_r prod_m ([e_m, 1] W_m^r).
* ``attention``: attention over modality embeddings: a score v^T tanh(W e_m) per modality,
  softmax over modalities, fused = the weighted sum of the embeddings.
* ``tensor_layer``: tensor fusion (Zadeh et al., EMNLP 2017) as a learned layer: the outer
  product of [1, e_m] over modalities (embeddings of ``tensor_dim`` dimensions), then the head.

Missing modalities (:mod:`mmcli.missing`): the network reads the presence mask from ``M``
columns appended after the blocks (one per block, 1.0 present). An absent modality's
embedding is zeroed (late_repr, lowrank, whose factor then contributes its learned constant
row, tensor_layer, whose appended 1 keeps the other modalities' terms) or its gate or
attention score is masked out of the softmax (gmu, attention). Training drops whole
modalities (``modality_dropout``, 0.3 by default here) so that the model learns to predict
without each.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.errors import DataError, UsageError
from mmcli.models.base import MODELS
from mmcli.models.torch_train import TorchModel, TrainParams

TENSOR_MAX_FEATURES = 1 << 16


def _nn():
    import torch
    import torch.nn as nn

    return torch, nn


def _mlp(nn, width: int, sizes: list, dropout: float) -> tuple[list, int]:
    layers: list = []
    for h in sizes:
        layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(dropout)]
        width = int(h)
    return layers, width


def build_fusion_net(kind: str, blocks: list[tuple[int, int]], n_outputs: int, p,
                     encoders: list[str] | None = None, layouts: list[dict] | None = None):
    """The network of a learned-fusion model; ``p`` holds embed, head, dropout, rank...;
    ``encoders`` names each block's encoder (default mlp), ``layouts`` their structures."""
    from mmcli.models.encoders import build_encoder

    torch, nn = _nn()
    encoders = encoders or ["mlp"] * len(blocks)
    layouts = layouts or [{} for _ in blocks]
    plain = all(e == "mlp" for e in encoders)

    end, m = int(blocks[-1][1]), len(blocks)  # the presence mask: columns end..end+m

    class FusionNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [tuple(b) for b in blocks]
            emb = p.tensor_dim if kind == "tensor_layer" else p.embed
            if kind == "gmu":  # the GMU's own tanh projections of the raw blocks
                self.encoders = nn.ModuleList(
                    nn.Linear(b - a, emb) if e == "mlp" else build_encoder(e, b - a, info, emb, p)
                    for (a, b), e, info in zip(self.blocks, encoders, layouts))
            else:
                self.encoders = nn.ModuleList(
                    build_encoder(e, b - a, info, emb, p)
                    for (a, b), e, info in zip(self.blocks, encoders, layouts))
            m = len(self.blocks)
            if kind == "late_repr":
                width = m * emb
            elif kind == "gmu":
                # gates on the raw blocks (the paper); on the encodings with structured encoders
                self.gate = nn.Linear(blocks[-1][1] if plain else m * emb, m * emb)
                width = emb
            elif kind == "lowrank":
                # each factor starts near [e, 1] -> 1 + small, so the product of M factors
                # neither vanishes nor explodes at the start (plain Xavier does for M > 2)
                factors = torch.randn(m, p.rank, emb + 1, emb) / (emb + 1)
                factors[:, :, emb, :] += 1.0
                self.factors = nn.Parameter(factors)
                self.fusion_bias = nn.Parameter(torch.zeros(emb))
                width = emb
            elif kind == "attention":
                self.score = nn.Sequential(nn.Linear(emb, emb), nn.Tanh(),
                                           nn.Linear(emb, 1, bias=False))
                width = emb
            elif kind == "tensor_layer":
                width = (emb + 1) ** m
            else:
                raise ValueError(kind)
            layers, width = _mlp(nn, width, p.head, p.dropout)
            self.head = nn.Sequential(*layers, nn.Linear(width, n_outputs))

        def embeddings(self, x):
            return [enc(x[:, a:b]) for enc, (a, b) in zip(self.encoders, self.blocks)]

        def fuse(self, x):
            mask = x[:, end:end + m]  # n, m: 1 present, 0 absent
            # an absent modality's gate or attention score leaves the softmax
            out_of_softmax = (mask[:, :, None] - 1.0) * 1e4
            if kind == "gmu":
                es = self.embeddings(x)
                hs = torch.stack([torch.tanh(h) for h in es], 1)  # n, m, e
                gate_in = x[:, :end] if plain else torch.cat(es, 1)
                logits = self.gate(gate_in).view(x.shape[0], m, -1) + out_of_softmax
                return (torch.softmax(logits, 1) * hs).sum(1)
            es = [e * mask[:, k:k + 1] for k, e in enumerate(self.embeddings(x))]
            if kind == "late_repr":
                return torch.cat(es, 1)
            if kind == "lowrank":
                ones = x.new_ones(x.shape[0], 1)
                prod = None
                for k, e in enumerate(es):
                    # (n, e+1) x (rank, e+1, emb) -> (rank, n, emb)
                    f = torch.matmul(torch.cat([e, ones], 1), self.factors[k])
                    prod = f if prod is None else prod * f
                return prod.sum(0) + self.fusion_bias
            if kind == "attention":
                stacked = torch.stack(es, 1)  # n, m, e
                alpha = torch.softmax(self.score(stacked) + out_of_softmax, 1)
                return (alpha * stacked).sum(1)
            out = x.new_ones(x.shape[0], 1)
            for e in es:
                e1 = torch.cat([x.new_ones(x.shape[0], 1), e], 1)
                out = (out[:, :, None] * e1[:, None, :]).reshape(x.shape[0], -1)
            return out

        def forward(self, x):
            return self.head(self.fuse(x))

    return FusionNet()


@dataclasses.dataclass
class FusionParams(TrainParams):
    #: embedding size of each modality encoder
    embed: int = 64
    #: hidden layer sizes of the head after fusion
    head: list = dataclasses.field(default_factory=lambda: [64])
    #: rank of the low-rank factors (lowrank)
    rank: int = 4
    #: embedding size per modality for the outer product (tensor_layer)
    tensor_dim: int = 8
    #: mlp (an MLP encoder per block) or auto (CNN for image blocks, GRU for audio frames,
    #: Transformer for text tokens, MLP otherwise; see mmcli.models.encoders)
    encoder: str = "mlp"
    #: column -> mlp, cnn, gru or transformer, overriding ``encoder`` for single blocks
    encoders: dict = dataclasses.field(default_factory=dict)
    #: output channels of the CNN encoder's conv layers
    cnn_channels: list = dataclasses.field(default_factory=lambda: [16, 32, 64])
    #: width of the GRU and Transformer encoders (and of their token embeddings)
    seq_dim: int = 64
    #: GRU / Transformer layers
    seq_layers: int = 1
    #: attention heads of the Transformer encoder (must divide seq_dim)
    heads: int = 4
    #: learned fusions train with modality dropout by default (a missing modality at predict
    #: time then costs little; docs/missing.md)
    modality_dropout: float = 0.3


class FusionModel(TorchModel):
    needs_blocks = True
    #: fit and predict take the presence mask (mmcli.missing), fed to the net as M columns
    uses_presence = True
    Params = FusionParams

    def __init__(self, seed: int = 0, device: str = "auto", **params):
        super().__init__(seed, device, **params)
        from mmcli.models.encoders import check_encoder_params

        check_encoder_params(self.params, self.name)

    def fit_tasks(self, X, Y, tasks, X_val=None, Y_val=None, presence=None, presence_val=None):
        return super().fit_tasks(self._with_mask(X, presence), Y, tasks,
                                 None if X_val is None else self._with_mask(X_val, presence_val),
                                 Y_val)

    def predict_tasks(self, X, presence=None):
        return super().predict_tasks(self._with_mask(X, presence))

    def _with_mask(self, X, presence) -> np.ndarray:
        """The blocks of ``X`` (the fusion's missing indicators left out) and the presence
        mask as float columns after them."""
        from mmcli.missing import block_presence

        if self.blocks is None:
            self._check_blocks()  # says what is wrong
        end = self.blocks[-1][1]
        mask = block_presence(X, self.blocks, presence)
        return np.hstack([np.asarray(X[:, :end], dtype=np.float32), mask.astype(np.float32)])

    def _check_blocks(self) -> None:
        if self.blocks is not None and self.n_features_ != self.blocks[-1][1] + len(self.blocks):
            raise DataError(f"the modality blocks cover {self.blocks[-1][1]} features but the "
                            f"data has {self.n_features_ - len(self.blocks)}", "re-run mmcli fuse")
        if self.blocks is None:
            super()._check_blocks()

    def _network(self, n_features: int, n_outputs: int):
        from mmcli.models.encoders import choose_encoders

        if self.name == "tensor_layer":
            size = (self.params.tensor_dim + 1) ** len(self.blocks)
            if size > TENSOR_MAX_FEATURES:
                raise UsageError(
                    f"tensor_layer of {len(self.blocks)} modalities at tensor_dim "
                    f"{self.params.tensor_dim} has {size} features",
                    "lower train.params.tensor_dim or fuse fewer modalities")
        encoders = choose_encoders(self.params, self.layouts, len(self.blocks), self.name)
        return build_fusion_net(self.name, self.blocks, n_outputs, self.params, encoders,
                                self.layouts)


for _name in ("late_repr", "gmu", "lowrank", "attention", "tensor_layer"):
    MODELS.register(_name)(type(f"{_name.title().replace('_', '')}Model", (FusionModel,),
                                {"__doc__": f"Learned fusion ``{_name}`` (see module doc)."}))

"""The base class of the learned-fusion models (see the package doc)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.errors import DataError
from mmcli.models.torch_train import TorchModel, TrainParams


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
    """A learned fusion: encoders per block -> :meth:`fuse` -> head.

    A subclass defines :meth:`build_fusion` (its own layers, added to the network, and the
    width of what it returns) and :meth:`fuse` (the embeddings to one vector per row); it may
    change :meth:`embed_dim`, :meth:`encoder` and :meth:`check_size`. Torch is imported inside
    the methods, so registering a fusion network costs no torch import."""

    needs_blocks = True
    #: fit and predict take the presence mask (mmcli.missing), fed to the net as M columns
    #: after the blocks (FusionNet.presence)
    uses_presence = True
    Params = FusionParams

    def __init__(self, seed: int = 0, device: str = "auto", **params):
        super().__init__(seed, device, **params)
        from mmcli.models.encoders import check_encoder_params

        check_encoder_params(self.params, self.name)

    # --- what a fusion network says -----------------------------------------------------------
    def embed_dim(self) -> int:
        """The size of each block's embedding."""
        return self.params.embed

    def encoder(self, name: str, width: int, info: dict, emb: int):
        """The ``nn.Module`` encoding one block of ``width`` features to ``emb``."""
        from mmcli.models.encoders import build_encoder

        return build_encoder(name, width, info, emb, self.params)

    def check_size(self, n_blocks: int) -> None:
        """Refuse a network too large to build (UsageError); most have no limit."""

    def build_fusion(self, net, emb: int) -> int:
        """Add the fusion's own layers to ``net``; return the width of :meth:`fuse`'s output."""
        raise NotImplementedError

    def fuse(self, net, x):
        """The fused (n, width) tensor of a batch ``x``; ``net.embeddings(x)`` encodes it."""
        raise NotImplementedError

    # --- the presence mask (mmcli.missing) ----------------------------------------------------
    def fit_tasks(self, X, Y, tasks, X_val=None, Y_val=None, *, blocks=None, presence=None,
                  presence_val=None):
        self._use_blocks(blocks)
        return super().fit_tasks(
            self._with_mask(X, presence), Y, tasks,
            None if X_val is None else self._with_mask(X_val, presence_val), Y_val,
            blocks=self.blocks_)

    def predict_tasks(self, X, presence=None):
        return super().predict_tasks(self._with_mask(X, presence))

    def _with_mask(self, X, presence) -> np.ndarray:
        """The blocks of ``X`` (the fusion's missing indicators left out) and the presence
        mask as float columns after them."""
        from mmcli.missing import block_presence

        end = self.blocks_.width
        mask = block_presence(X, self.blocks_, presence)
        return np.hstack([np.asarray(X[:, :end], dtype=np.float32), mask.astype(np.float32)])

    def _check_blocks(self) -> None:
        if self.blocks_ is not None and \
                self.n_features_ != self.blocks_.width + len(self.blocks_):
            raise DataError(f"the modality blocks cover {self.blocks_.width} features but the "
                            f"data has {self.n_features_ - len(self.blocks_)}",
                            "re-run mmcli fuse")
        if self.blocks_ is None:
            super()._check_blocks()

    # --- the network --------------------------------------------------------------------------
    def _network(self, n_features: int, n_outputs: int):
        from mmcli.models.encoders import choose_encoders
        from mmcli.models.fusion_nets.network import FusionNet

        self.check_size(len(self.blocks_))
        encoders = choose_encoders(self.params, self.blocks_.layouts, len(self.blocks_),
                                   self.name)
        return FusionNet(self, encoders, n_outputs)

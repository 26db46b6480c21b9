"""The base class of the learned-fusion models (see the package doc)."""

from __future__ import annotations

import dataclasses

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


class FusionModel(TorchModel):
    """A learned fusion: encoders per block -> :meth:`fuse` -> head.

    A subclass defines :meth:`build_fusion` (its own layers, added to the network, and the
    width of what it returns) and :meth:`fuse` (the embeddings to one vector per row); it may
    change :meth:`embed_dim`, :meth:`encoder` and :meth:`check_size`. Torch is imported inside
    the methods, so registering a fusion network costs no torch import."""

    needs_blocks = True
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

    # --- the network --------------------------------------------------------------------------
    def _network(self, n_features: int, n_outputs: int):
        from mmcli.models.encoders import choose_encoders
        from mmcli.models.fusion_nets.network import FusionNet

        self.check_size(len(self.blocks_))
        encoders = choose_encoders(self.params, self.blocks_.layouts, len(self.blocks_),
                                   self.name)
        return FusionNet(self, encoders, n_outputs)

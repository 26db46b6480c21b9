"""Per-block encoders of the learned-fusion models, chosen to fit each block's structure.

A block of the fused matrix is a flat row; its ``layout`` (from the extractor, through
``fusion.json``, see :meth:`mmcli.extractors.base.Extractor.structure`) says how to reshape it:

* ``mlp`` (any block): ``Linear -> ReLU -> Dropout`` to ``embed`` dimensions;
* ``cnn`` (``image`` blocks of ``pixels``): ``Conv3x3 -> BatchNorm -> ReLU -> MaxPool2`` per
  entry of ``cnn_channels`` (no pooling once a side is below 4 pixels), global average pooling,
  then ``Linear -> ReLU -> Dropout``;
* ``gru`` (``logmel`` blocks of ``frames``, ``tokens`` blocks): a GRU of ``seq_dim`` units and
  ``seq_layers`` layers over the frames (or over ``seq_dim``-dimensional token embeddings,
  packed so padding is skipped); its last hidden state goes through ``Linear -> ReLU ->
  Dropout``;
* ``transformer`` (same blocks): a linear projection of the frames (or token embeddings) to
  ``seq_dim``, plus a learned positional embedding, through ``nn.TransformerEncoder``
  (``seq_layers`` layers, ``heads`` heads, feed-forward ``2 * seq_dim``; padding tokens id 0 are
  masked), mean-pooled over the non-padding positions, then ``Linear -> ReLU -> Dropout``.

``encoder: auto`` picks ``cnn`` for image blocks, ``gru`` for log-mel frames, ``transformer``
for tokens and ``mlp`` otherwise (the default, ``encoder: mlp``, uses an MLP everywhere);
``encoders: {column: name}`` sets single blocks. Token ids arrive as float32 numbers (the concat
fusion keeps token blocks unnormalised) and are rounded; an all-padding row (a missing text,
or the modality dropped) encodes as one padding token.
"""

from __future__ import annotations

from mmcli.errors import UsageError

ENCODERS = ("mlp", "cnn", "gru", "transformer")
#: the layouts each encoder can read (mlp reads any block)
FITS = {"cnn": ("image",), "gru": ("logmel", "tokens"), "transformer": ("logmel", "tokens")}


def auto_encoders() -> dict[str, str]:
    """Block layout -> the encoder ``encoder: auto`` picks: each modality kind's default
    encoder for its layout (:attr:`mmcli.kinds.base.Kind.encoder`)."""
    from mmcli.kinds import get_kind, kind_names

    kinds = [get_kind(n) for n in kind_names()]
    return {k.layout: k.encoder for k in kinds if k.layout is not None}


def check_encoder_params(p, model: str) -> None:
    """Static checks of the encoder parameters (before any data is seen)."""
    if p.encoder not in ("mlp", "auto"):
        raise UsageError(f"the 'encoder' parameter of model {model!r} must be mlp or auto; got "
                         f"{p.encoder!r} instead", "fix train.params.encoder (or set single "
                         "blocks with train.params.encoders: {column: cnn|gru|transformer})")
    for column, name in p.encoders.items():
        if name not in ENCODERS:
            raise UsageError(f"train.params.encoders.{column} of model {model!r} is {name!r}",
                             f"use one of {', '.join(ENCODERS)}")
    for key in ("seq_dim", "seq_layers", "heads"):
        if getattr(p, key) < 1:
            raise UsageError(f"the {key!r} parameter of model {model!r} must be >= 1; got "
                             f"{getattr(p, key)!r} instead", f"fix train.params.{key}")
    if not p.cnn_channels or any(not isinstance(c, int) or c < 1 for c in p.cnn_channels):
        raise UsageError(f"cnn_channels of model {model!r} is {p.cnn_channels!r}",
                         "give a list of positive integers, e.g. [16, 32, 64]")


def choose_encoders(p, layouts: list[dict] | None, n_blocks: int, model: str) -> list[str]:
    """The encoder of each block (see the module doc); refuses one that cannot read its block."""
    layouts = layouts or [{} for _ in range(n_blocks)]
    columns = [info.get("column", f"block {k}") for k, info in enumerate(layouts)]
    unknown = sorted(set(p.encoders) - set(columns))
    if unknown:
        raise UsageError(f"train.params.encoders names {unknown[0]!r}, which is not a "
                         "modality of the fuse directory", f"its modalities: {', '.join(columns)}")
    names = []
    auto = auto_encoders()
    for column, info in zip(columns, layouts):
        layout = info.get("layout")
        name = p.encoders.get(column) or (auto.get(layout, "mlp") if p.encoder == "auto"
                                          else "mlp")
        if name != "mlp" and layout not in FITS[name]:
            what = f"a {layout} block" if layout else "a plain feature vector"
            raise UsageError(
                f"encoder {name!r} cannot read modality {column!r}: it is {what}",
                f"{name} reads {' or '.join(FITS[name])} blocks: extract {column!r} with "
                "pixels (image), frames (audio) or tokens (text) alone, or use mlp")
        names.append(name)
    if "transformer" in names and p.seq_dim % p.heads:
        raise UsageError(f"seq_dim {p.seq_dim} of model {model!r} is not divisible by heads "
                         f"{p.heads}", "make train.params.seq_dim a multiple of heads")
    return names


def build_encoder(name: str, width: int, info: dict, emb: int, p):
    """The ``nn.Module`` encoding a (n, width) block to (n, emb)."""
    import torch.nn as nn

    out = [nn.Linear(_width(name, width, p), emb), nn.ReLU(), nn.Dropout(p.dropout)]
    if name == "mlp":
        return nn.Sequential(*out)  # these exact indices: saved models keep loading
    cls = {"cnn": _cnn, "gru": _gru, "transformer": _transformer}[name]()
    return cls(info, p, nn.Sequential(*out))


def _width(name: str, width: int, p) -> int:
    if name == "mlp":
        return width
    if name == "cnn":
        return int(p.cnn_channels[-1])
    return int(p.seq_dim)


def _cnn():
    import torch.nn as nn

    class CnnEncoder(nn.Module):
        def __init__(self, info, p, out):
            super().__init__()
            self.shape = tuple(int(v) for v in info["shape"])
            h, w, c = self.shape
            layers: list = []
            for ch in p.cnn_channels:
                layers += [nn.Conv2d(c, int(ch), 3, padding=1, bias=False),
                           nn.BatchNorm2d(int(ch)), nn.ReLU()]
                if min(h, w) >= 4:
                    layers.append(nn.MaxPool2d(2))
                    h, w = h // 2, w // 2
                c = int(ch)
            self.features = nn.Sequential(*layers)
            self.out = out

        def forward(self, x):
            h, w, c = self.shape
            img = x.reshape(x.shape[0], h, w, c).permute(0, 3, 1, 2)
            return self.out(self.features(img).mean((2, 3)))

    return CnnEncoder


def _token_ids(x, vocab: int):
    return x.round().long().clamp(0, vocab - 1)


def _sequence_input(module, info: dict) -> None:
    """What the sequence encoders read: token ids (``tokens``: ``vocab`` ids, ``shape``
    [length]) or log-mel frames (``shape`` [frames, bands])."""
    module.tokens = info["layout"] == "tokens"
    module.shape = tuple(int(v) for v in info["shape"])
    module.vocab = int(info["vocab"]) if module.tokens else None


def _gru():
    import torch.nn as nn
    from torch.nn.utils.rnn import pack_padded_sequence

    class GruEncoder(nn.Module):
        def __init__(self, info, p, out):
            super().__init__()
            _sequence_input(self, info)
            if self.tokens:
                self.embed = nn.Embedding(self.vocab, p.seq_dim, padding_idx=0)
                width = p.seq_dim
            else:
                width = self.shape[1]
            self.gru = nn.GRU(width, p.seq_dim, num_layers=p.seq_layers, batch_first=True)
            self.out = out

        def forward(self, x):
            if self.tokens:
                ids = _token_ids(x, self.vocab)
                lengths = (ids != 0).sum(1).clamp(min=1).cpu()  # ids are left-aligned
                packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True,
                                              enforce_sorted=False)
                _, h = self.gru(packed)
            else:
                _, h = self.gru(x.reshape(x.shape[0], *self.shape))
            return self.out(h[-1])

    return GruEncoder


def _transformer():
    import torch
    import torch.nn as nn

    class TransformerEncoder(nn.Module):
        def __init__(self, info, p, out):
            super().__init__()
            _sequence_input(self, info)
            if self.tokens:
                self.inp = nn.Embedding(self.vocab, p.seq_dim, padding_idx=0)
            else:
                self.inp = nn.Linear(self.shape[1], p.seq_dim)
            self.pos = nn.Parameter(torch.randn(1, self.shape[0], p.seq_dim) * 0.02)
            layer = nn.TransformerEncoderLayer(p.seq_dim, p.heads, 2 * p.seq_dim, p.dropout,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, p.seq_layers, enable_nested_tensor=False)
            self.out = out

        def forward(self, x):
            if self.tokens:
                ids = _token_ids(x, self.vocab)
                pad = ids == 0
                pad[:, 0] &= ~pad.all(1)  # an empty text attends to one padding token
                h = self.encoder(self.inp(ids) + self.pos, src_key_padding_mask=pad)
                keep = (~pad).to(h.dtype)[:, :, None]
                return self.out((h * keep).sum(1) / keep.sum(1))
            h = self.encoder(self.inp(x.reshape(x.shape[0], *self.shape)) + self.pos)
            return self.out(h.mean(1))

    return TransformerEncoder

"""Small files the extractor tests need: a TorchScript model and pretrained word vectors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def write_tiny_cnn(path: Path, channels: int = 4) -> Path:
    """A scripted conv net: (n, 3, s, s) -> (n, channels) (conv, ReLU, global average)."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, channels, 3)

        def forward(self, x):
            return torch.relu(self.conv(x)).mean(dim=(2, 3))

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # torch 2.9+ marks TorchScript as deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Tiny().eval()), str(path))
    return path


def write_word2vec_text(path: Path, words: list[str], size: int = 6, seed: int = 0) -> Path:
    """Vectors in word2vec text format: a ``count size`` header, then ``word v1 v2 ...``."""
    rng = np.random.default_rng(seed)
    lines = [f"{len(words)} {size}"]
    lines += [w + " " + " ".join(f"{v:.5f}" for v in rng.normal(0, 1, size)) for w in words]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

"""Text columns: free text, NFKC-normalised, whitespace-collapsed, optionally lower-cased,
up to ``max_text_chars``; stored in ``items.jsonl``. Text is the fallback kind: a column no
other kind claims (an empty one too) is text."""

from __future__ import annotations

import numpy as np

from mmcli.kinds.base import KINDS, Detector, Kind
from mmcli.media import load_text


@KINDS.register("text")
class TextKind(Kind):
    order = 30
    fallback = True
    perturbations = {"word_drop": "each word dropped with probability s"}
    layout = "tokens"
    layout_what = "word ids"
    layout_extractor = "tokens"
    encoder = "transformer"
    augmentations = ("token_drop", "token_unk")
    default_extractors = ("tfidf",)

    def detector(self) -> Detector:
        return _Anything()

    def check_train(self, col: str, train_data) -> None:
        """Refuse a column whose train texts hold no word (all empty, punctuation or
        symbols): every row would be the same constant, since vocabularies come from train."""
        from mmcli.errors import DataError
        from mmcli.extractors.text import has_words

        if not has_words(train_data):
            raise DataError(
                f"text column {col!r} has no words in its {len(train_data)} train texts (all "
                "empty, punctuation or symbols): its extractors would learn nothing from it",
                f"fix the column in the manifest, or drop it with '{col}: ignore' under "
                "preprocess.columns in the config")

    def parse(self, cell: str, spec: dict) -> str:
        return load_text(cell, spec["lowercase"], spec["max_text_chars"], spec["long_text"])

    def perturb(self, name: str, data, severity: float, rng: np.random.Generator):
        if name != "word_drop":
            return super().perturb(name, data, severity, rng)
        s = float(severity)
        return [" ".join(w for w, keep in zip(t.split(), rng.random(len(t.split())) >= s)
                         if keep) for t in data]

    def augment(self, raw, shape, p, rng):
        """Token drop and unknown-token replacement on word ids (padding 0, unknown 1)."""
        import torch

        ids = np.rint(raw.detach().cpu().numpy()).astype(np.int64)
        present = ids > 0
        if p.token_drop > 0:
            drop = (rng.random(ids.shape) < p.token_drop) & present
            out = np.zeros_like(ids)
            for k in range(len(ids)):
                kept = ids[k][present[k] & ~drop[k]]
                out[k, :len(kept)] = kept
            ids = out
            present = ids > 0
        if p.token_unk > 0:
            ids = np.where((rng.random(ids.shape) < p.token_unk) & present, 1, ids)
        return torch.as_tensor(ids.astype(np.float32), device=raw.device)


class _Anything(Detector):
    def claims(self, n: int) -> bool:
        return True

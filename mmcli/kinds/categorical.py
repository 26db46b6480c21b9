"""Categorical columns: a few distinct short values (at most three words each), kept as
they are (stripped) in ``items.jsonl``."""

from __future__ import annotations

import numpy as np

from mmcli.kinds.base import KINDS, Detector, Kind


@KINDS.register("categorical")
class CategoricalKind(Kind):
    order = 50
    perturbations = {"swap": "value swapped with probability s"}
    default_extractors = ("onehot",)

    def detector(self) -> Detector:
        return _FewValuesDetector()

    def perturb(self, name: str, data, severity: float, rng: np.random.Generator):
        if name != "swap":
            return super().perturb(name, data, severity, rng)
        s = float(severity)
        pool = sorted(set(data))
        return [pool[int(rng.integers(len(pool)))] if rng.random() < s else v for v in data]


class _FewValuesDetector(Detector):
    """At most max(2, min(50, n // 2)) distinct values of at most three words each."""

    def __init__(self):
        self.distinct: set[str] = set()  # up to 51: a categorical column has at most 50
        self.words = 0

    def add(self, value: str, count: int) -> None:
        if len(self.distinct) <= 50:
            self.distinct.add(value)
            self.words = max(self.words, len(value.split()))

    def claims(self, n: int) -> bool:
        return n > 0 and len(self.distinct) <= max(2, min(50, n // 2)) and self.words <= 3

"""Categorical columns: a few distinct short values (at most three words each), kept as
they are (stripped) in ``items.jsonl``."""

from __future__ import annotations

import numpy as np

from mmcli.kinds.base import KINDS, Kind


@KINDS.register("categorical")
class CategoricalKind(Kind):
    order = 50
    perturbations = {"swap": "value swapped with probability s"}
    default_extractors = ("onehot",)

    def detect(self, present: list[str]) -> bool:
        n = len(present)
        return (n > 0 and len(set(present)) <= max(2, min(50, n // 2))
                and max(len(v.split()) for v in present) <= 3)

    def perturb(self, name: str, data, severity: float, rng: np.random.Generator):
        if name != "swap":
            return super().perturb(name, data, severity, rng)
        s = float(severity)
        pool = sorted(set(data))
        return [pool[int(rng.integers(len(pool)))] if rng.random() < s else v for v in data]

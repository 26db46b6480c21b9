"""Extractors for numeric and categorical columns."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.extractors.base import EXTRACTORS, Extractor


@EXTRACTORS.register("numeric", kind="numeric")
class NumericValue(Extractor):
    """The value as scaled by preprocess; missing values become 0 (the train mean under standard
    scaling) and, when train had missing values, a 0/1 missing indicator is appended.

    Output dimension: 1, or 2 with the indicator.
    """

    @dataclasses.dataclass
    class Params:
        missing_indicator: str = "auto"  # auto (when train has missing values), always, never

    def _fit(self, values: np.ndarray) -> int:
        mode = self.params.missing_indicator
        self.indicator_ = mode == "always" or (mode == "auto" and bool(np.isnan(values).any()))
        return 2 if self.indicator_ else 1

    def _transform(self, values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        filled = np.where(missing, 0.0, values)
        cols = [filled, missing.astype(np.float32)] if self.indicator_ else [filled]
        return np.stack(cols, axis=1)

    def _state(self):
        return {"indicator": self.indicator_}, {}

    def _load(self, params, arrays):
        self.indicator_ = bool(params["indicator"])


@EXTRACTORS.register("onehot", kind="categorical")
class OneHot(Extractor):
    """One-hot encoding of the categories seen in train (sorted); unknown or empty values
    encode as all zeros. Categories rarer than ``min_count`` in train are dropped.

    Output dimension: the number of kept train categories.
    """

    @dataclasses.dataclass
    class Params:
        min_count: int = 1

    def _fit(self, values: list[str]) -> int:
        from collections import Counter

        counts = Counter(v for v in values if v)
        self.categories_ = sorted(c for c, n in counts.items() if n >= self.params.min_count)
        return max(1, len(self.categories_))

    def _transform(self, values: list[str]) -> np.ndarray:
        index = {c: k for k, c in enumerate(self.categories_)}
        out = np.zeros((len(values), self.dim_), dtype=np.float32)
        for row, value in enumerate(values):
            if value in index:
                out[row, index[value]] = 1.0
        return out

    def _state(self):
        return {"categories": self.categories_}, {}

    def _load(self, params, arrays):
        self.categories_ = list(params["categories"])

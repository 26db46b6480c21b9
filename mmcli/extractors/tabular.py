"""Extractors for numeric and categorical columns."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.extractors.base import EXTRACTORS, Extractor


@EXTRACTORS.register("numeric", kind="numeric")
class NumericValue(Extractor):
    """The column's value (already scaled by preprocess), optionally rescaled with statistics
    of the train split; a missing value is imputed with the train mean or median and, when
    train had missing values, a 0/1 missing indicator is appended.

    ``scaling``: ``none`` keeps preprocess's scaling; ``standard`` (x - mean) / std;
    ``minmax`` (x - min) / (max - min); ``robust`` (x - median) / interquartile range. A zero
    spread divides by 1. Imputation happens before scaling.

    Output dimension: 1, or 2 with the missing indicator

    Parameters:
        scaling: none, standard, minmax or robust (fitted on train)
        impute: mean or median of the train values
        missing_indicator: auto (when train has missing values), always or never
    """

    @dataclasses.dataclass
    class Params:
        scaling: str = "none"
        impute: str = "mean"
        missing_indicator: str = "auto"

    def _check(self) -> None:
        self._one_of("scaling", ("none", "standard", "minmax", "robust"))
        self._one_of("impute", ("mean", "median"))
        self._one_of("missing_indicator", ("auto", "always", "never"))

    def _fit(self, values: np.ndarray) -> int:
        p = self.params
        values = np.asarray(values, dtype=np.float64)
        known = values[~np.isnan(values)]
        self.indicator_ = p.missing_indicator == "always" or (
            p.missing_indicator == "auto" and known.size < values.size)
        if known.size == 0:
            self.fill_, self.center_, self.scale_ = 0.0, 0.0, 1.0
        else:
            self.fill_ = float(known.mean() if p.impute == "mean" else np.median(known))
            filled = np.where(np.isnan(values), self.fill_, values)
            self.center_, spread = {
                "none": (0.0, 1.0),
                "standard": (filled.mean(), filled.std()),
                "minmax": (filled.min(), np.ptp(filled)),
                "robust": (np.median(filled), np.subtract(*np.percentile(filled, [75, 25]))),
            }[p.scaling]
            self.center_ = float(self.center_)
            self.scale_ = float(spread) if spread > 1e-12 else 1.0
        return 2 if self.indicator_ else 1

    def _transform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        missing = np.isnan(values)
        scaled = (np.where(missing, self.fill_, values) - self.center_) / self.scale_
        cols = [scaled, missing.astype(np.float64)] if self.indicator_ else [scaled]
        return np.stack(cols, axis=1)

    def _state(self):
        return {"indicator": self.indicator_, "fill": self.fill_, "center": self.center_,
                "scale": self.scale_}, {}

    def _load(self, params, arrays):
        self.indicator_ = bool(params["indicator"])
        self.fill_ = float(params.get("fill", 0.0))
        self.center_ = float(params.get("center", 0.0))
        self.scale_ = float(params.get("scale", 1.0))


@EXTRACTORS.register("onehot", kind="categorical")
class OneHot(Extractor):
    """One-hot encoding of the categories seen in train, one column per category (sorted).

    Categories rarer than ``min_count`` in train are dropped, and at most ``max_categories``
    are kept (the most frequent; ties by name). A value that is not kept (unknown in train,
    rare, or empty) encodes as all zeros, or, with ``unknown: column``, as a 1 in one extra
    "other" column.

    Output dimension: the number of kept categories (+ 1 with ``unknown: column``), at least 1

    Parameters:
        min_count: train occurrences a category needs
        max_categories: 0 (no limit) or the most categories kept
        unknown: zeros, or column (an extra "other" column)
    """

    @dataclasses.dataclass
    class Params:
        min_count: int = 1
        max_categories: int = 0
        unknown: str = "zeros"

    def _check(self) -> None:
        self._at_least(1, "min_count")
        self._at_least(0, "max_categories")
        self._one_of("unknown", ("zeros", "column"))

    def _fit(self, values: list[str]) -> int:
        from collections import Counter

        counts = Counter(v for v in values if v)
        kept = sorted((c for c, n in counts.items() if n >= self.params.min_count),
                      key=lambda c: (-counts[c], c))
        if self.params.max_categories:
            kept = kept[:self.params.max_categories]
        self.categories_ = sorted(kept)
        return max(1, len(kept) + (self.params.unknown == "column"))

    def _transform(self, values: list[str]) -> np.ndarray:
        index = {c: k for k, c in enumerate(self.categories_)}
        other = len(self.categories_) if self.params.unknown == "column" else None
        out = np.zeros((len(values), self.dim_), dtype=np.float32)
        for row, value in enumerate(values):
            k = index.get(value, other)
            if k is not None:
                out[row, k] = 1.0
        return out

    def _state(self):
        return {"categories": self.categories_}, {}

    def _load(self, params, arrays):
        self.categories_ = list(params["categories"])

"""Numeric columns: numbers, stored as a float32 array scaled with train statistics
(``numeric_scaling``); an empty cell or a missing marker (nan, na, null, none) is NaN."""

from __future__ import annotations

import math

import numpy as np

from mmcli.kinds.base import KINDS, Detector, Kind
from mmcli.media import MediaError

#: markers of a missing value in a numeric column (read as NaN)
MISSING_NUMBERS = ("nan", "na", "null", "none")


@KINDS.register("numeric")
class NumericKind(Kind):
    order = 40
    stored = "numbers"
    perturbations = {"gaussian_noise": "Gaussian noise, std s (scaled units)"}
    default_extractors = ("numeric",)

    def detector(self) -> Detector:
        return _NumberDetector()

    def parse(self, cell: str, spec: dict) -> float:
        raw = cell.strip()
        if not raw or raw.lower() in MISSING_NUMBERS:
            return math.nan
        try:
            value = float(raw)
        except ValueError:
            raise MediaError(f"{raw!r} is not a number") from None
        if math.isinf(value):
            raise MediaError(f"{raw!r} is not a finite number")
        return value

    def read(self, data, col: str, index) -> np.ndarray:
        return np.asarray(data.array(col)[index], dtype=np.float32)

    def is_missing(self, cell) -> bool:
        """Empty, or one of the missing markers (nan, na, null, none)."""
        raw = cell.strip() if isinstance(cell, str) else ""
        return not raw or raw.lower() in MISSING_NUMBERS

    def missing_value(self, spec: dict) -> float:
        """NaN (the numeric extractor imputes it with the train mean)."""
        return math.nan

    def perturb(self, name: str, data, severity: float, rng: np.random.Generator):
        if name != "gaussian_noise":
            return super().perturb(name, data, severity, rng)
        return (data + rng.normal(0, float(severity), data.shape)).astype(np.float32)


class _NumberDetector(Detector):
    """Every cell but the missing markers parses as a number (and one at least does)."""

    def __init__(self):
        self.numbers, self.floats = 0, True

    def add(self, value: str, count: int) -> None:
        if self.floats and value.lower() not in MISSING_NUMBERS:
            self.numbers += count
            self.floats = _is_float(value)

    def claims(self, n: int) -> bool:
        return self.numbers > 0 and self.floats


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True

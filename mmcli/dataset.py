"""Read access to a preprocessed directory, column by column and slice by slice.

Arrays are memory-mapped, so reading a slice costs only that slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmcli import artifacts


@dataclass
class AudioClips:
    """A batch of mono clips at one sample rate."""

    clips: list[np.ndarray]
    sample_rate: int

    def __len__(self) -> int:
        return len(self.clips)


class PreprocessedData:
    def __init__(self, directory: Path, columns: dict[str, str], sample_rate: int,
                 items: list[dict] | None = None):
        self.directory = Path(directory)
        self.columns = columns
        self.sample_rate = sample_rate
        self.items = items if items is not None else artifacts.read_jsonl(
            self.directory / "items.jsonl")
        self._arrays: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _array(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = artifacts.load_npy(self.directory / "data" / f"{name}.npy")
        return self._arrays[name]

    def column(self, col: str, index: slice | np.ndarray):
        """The column's values for ``index`` (a slice or an array of item positions)."""
        kind = self.columns[col]
        if kind == "image":
            return np.asarray(self._array(col)[index])
        if kind == "numeric":
            return np.asarray(self._array(col)[index], dtype=np.float32)
        positions = np.arange(len(self.items))[index]
        if kind == "audio":
            samples, offsets = self._array(col), self._array(f"{col}.offsets")
            return AudioClips([np.asarray(samples[offsets[k]:offsets[k + 1]])
                               for k in positions], self.sample_rate)
        return [self.items[k]["values"][col] for k in positions]

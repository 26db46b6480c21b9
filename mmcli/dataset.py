"""Read access to a preprocessed directory, column by column and slice by slice.

Arrays are memory-mapped, so reading a slice costs only that slice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmcli import artifacts


@dataclass
class AudioClips:
    """A batch of mono clips at one sample rate."""

    clips: list[np.ndarray]
    sample_rate: int
    _shared: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.clips)

    def shared(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()``, run once per batch and ``key``: what several extractors derive
        alike from the same clips (a spectrogram of one framing) is computed by the first
        that asks and kept as long as the batch (one chunk). The clips must not change
        meanwhile."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]


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

    def _rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of a data array, read from the file (not through the memory
        map, whose touched pages would stay resident and make memory grow with the data)."""
        meta = self._array(name)  # the memory map gives dtype, shape and data offset
        row = meta.dtype.itemsize * int(np.prod(meta.shape[1:], dtype=np.int64))
        stop = max(start, min(stop, meta.shape[0]))
        with open(self.directory / "data" / f"{name}.npy", "rb") as f:
            f.seek(meta.offset + start * row)
            buf = f.read((stop - start) * row)
        return np.frombuffer(buf, dtype=meta.dtype).reshape((stop - start, *meta.shape[1:]))

    def array(self, name: str) -> np.ndarray:
        """A stored array (``data/<name>.npy``), memory-mapped."""
        return self._array(name)

    def column(self, col: str, index: slice | np.ndarray):
        """The column's values for ``index`` (a slice or an array of item positions), as its
        kind reads them (:meth:`mmcli.kinds.base.Kind.read`)."""
        from mmcli.kinds import get_kind

        return get_kind(self.columns[col]).read(self, col, index)

    def fixed_rows(self, name: str, index: slice | np.ndarray) -> np.ndarray:
        """Items ``index`` of a fixed-shape array (an image batch)."""
        if isinstance(index, slice) and index.step in (None, 1):
            start, stop, _ = index.indices(len(self.items))
            return self._rows(name, start, stop).copy()
        return np.asarray(self._array(name)[index])

    def ragged_rows(self, name: str, index: slice | np.ndarray) -> list[np.ndarray]:
        """Items ``index`` of a ragged array (concatenated, with ``<name>.offsets.npy``)."""
        contiguous = isinstance(index, slice) and index.step in (None, 1)
        positions = np.arange(len(self.items))[index]
        offsets = self._array(f"{name}.offsets")
        if contiguous and len(positions):
            first, last = int(offsets[positions[0]]), int(offsets[positions[-1] + 1])
            block = self._rows(name, first, last)
            return [block[offsets[k] - first:offsets[k + 1] - first].copy() for k in positions]
        samples = self._array(name)
        return [np.asarray(samples[offsets[k]:offsets[k + 1]]) for k in positions]

    def values(self, col: str, index: slice | np.ndarray) -> list:
        """Items ``index`` of a column stored in items.jsonl (text, categorical)."""
        return [self.items[k]["values"][col] for k in np.arange(len(self.items))[index]]

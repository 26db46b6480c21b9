"""The extractor contract (scikit-learn style).

* ``__init__`` only stores validated parameters (a dataclass ``Params`` per extractor);
* ``fit(data)`` learns state from the train split only and returns ``self``; learned state
  ends in ``_``; ``transform`` before ``fit`` raises an error that says what to call;
* ``transform(data)`` returns a float32 matrix of shape (n_items, ``dim_``);
* ``get_state()``/``from_state()`` turn the fitted extractor into JSON plus arrays (no pickle).

``data`` is what :meth:`mmcli.dataset.PreprocessedData.column` returns for the modality: a
uint8 image batch, :class:`~mmcli.dataset.AudioClips`, a list of strings, or a float vector.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from mmcli.config import _check_types as check_types
from mmcli.errors import UsageError
from mmcli.registry import Registry

EXTRACTORS: Registry[type[Extractor]] = Registry("extractor")


class NotFittedError(RuntimeError):
    pass


class Extractor:
    name: ClassVar[str]
    #: whether ``fit`` needs the train data (stateless extractors skip reading it)
    needs_fit: ClassVar[bool] = True

    @dataclasses.dataclass
    class Params:
        pass

    def __init__(self, **params: Any):
        fields = {f.name for f in dataclasses.fields(self.Params)}
        for key in params:
            if key not in fields:
                raise UsageError(
                    f"unknown parameter {key!r} for extractor {self.name!r}",
                    f"its parameters are: {', '.join(sorted(fields)) or 'none'}",
                )
        try:
            self.params = self.Params(**params)
        except TypeError as exc:
            raise UsageError(f"bad parameters for extractor {self.name!r}: {exc}",
                             "see docs/extractors.md") from None
        check_types(self.params, f"extractor {self.name!r}")
        self.dim_: int | None = None

    def fit(self, data) -> Extractor:
        self.dim_ = self._fit(data)
        return self

    def transform(self, data) -> np.ndarray:
        if self.dim_ is None:
            raise NotFittedError(f"extractor {self.name!r} is not fitted; call fit() first")
        out = np.asarray(self._transform(data), dtype=np.float32)
        return out.reshape(out.shape[0], self.dim_)

    # subclasses implement these
    def _fit(self, data) -> int:
        raise NotImplementedError

    def _transform(self, data) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {}, {}

    def _load(self, params: dict, arrays: dict[str, np.ndarray]) -> None:
        pass

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        params, arrays = self._state()
        return {"name": self.name, "params": dataclasses.asdict(self.params),
                "dim": self.dim_, "fitted": params}, arrays

    @classmethod
    def from_state(cls, state: dict, arrays: dict[str, np.ndarray]) -> Extractor:
        obj = cls(**state["params"])
        obj.dim_ = int(state["dim"])
        obj._load(state["fitted"], arrays)
        return obj


def build_extractor(name: str, kind: str, params: dict | None) -> Extractor:
    cls = EXTRACTORS.get(name, where=f"extract.{kind}")
    expected = EXTRACTORS.tags(name).get("kind")
    if expected != kind:
        raise UsageError(
            f"extractor {name!r} is for {expected} columns, not {kind}",
            f"{kind} extractors: {', '.join(EXTRACTORS.names(kind=kind))}",
        )
    return cls(**(params or {}))

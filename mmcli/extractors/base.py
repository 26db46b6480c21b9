"""The extractor contract (scikit-learn style).

* ``__init__`` only stores validated parameters (a dataclass ``Params`` per extractor);
* ``fit(data)`` learns state from the train split only and returns ``self``; learned state
  ends in ``_``; ``transform`` before ``fit`` raises an error that says what to call;
* ``transform(data)`` returns a float32 matrix of shape (n_items, ``dim_``);
* ``structure()`` describes the row's layout when it is a structured array a model can encode
  (``{"layout": "image", "shape": [h, w, c]}``, ``{"layout": "logmel", "shape": [frames,
  mels]}``, ``{"layout": "tokens", "shape": [max_len], "vocab": size}``), else ``None``; it
  flows through ``blocks.json`` and ``fusion.json`` to the learned-fusion models' encoders;
* ``applies_to(train_data)`` says whether the extractor suits the column's train data and
  why; it is asked only when the config names the extractor ``NAME(auto)`` (``audio: [mfcc,
  spectral, prosody, frames(auto)]``), once at fit; the decision is recorded in the fitted
  state and ``blocks.json``, so predict and incremental runs keep it;
* ``get_state()``/``from_state()`` turn the fitted extractor into JSON plus arrays (no pickle);
  an extractor that needs a file (the ``cnn`` model) lists it in ``state_files()`` and the
  stage copies it beside the state, so a model directory stays self-contained.

Each docstring has an ``Output dimension:`` line and a ``Parameters:`` section (one
``name: meaning`` line per field of ``Params``); ``mmcli extract --list`` and
``--show-config`` read them (:mod:`mmcli.extractors.catalog`).

``data`` is what :meth:`mmcli.dataset.PreprocessedData.column` returns for the modality: a
uint8 image batch, :class:`~mmcli.dataset.AudioClips`, a list of strings, or a float vector.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmcli.config import check_types
from mmcli.errors import UsageError
from mmcli.registry import Registry

EXTRACTORS: Registry[type[Extractor]] = Registry("extractor")


class NotFittedError(RuntimeError):
    pass


class Extractor:
    name: ClassVar[str]
    #: whether ``fit`` needs the train data (stateless extractors skip reading it)
    needs_fit: ClassVar[bool] = True
    #: False when transform must run in the main process (a model on a GPU)
    parallel: ClassVar[bool] = True
    #: heavy modules ``transform`` imports: worker processes get them preloaded (imported once
    #: in the fork server, while the stage is still fitting) instead of importing each its own
    worker_modules: ClassVar[tuple[str, ...]] = ()

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
        self._check()
        self.dim_: int | None = None

    def _check(self) -> None:
        """Validate parameter values (raise :class:`UsageError`); types are checked already."""

    def _bad(self, param: str, value: Any, expected: str) -> UsageError:
        return UsageError(
            f"the {param!r} parameter of extractor {self.name!r} must be {expected}; "
            f"got {value!r} instead",
            f"fix extract.params.{self.name}.{param} in the config (see mmcli extract --list)")

    def _at_least(self, minimum: float, *names: str) -> None:
        for param in names:
            value = getattr(self.params, param)
            if value < minimum:
                raise self._bad(param, value, f">= {minimum}")

    def _one_of(self, param: str, choices: tuple) -> None:
        value = getattr(self.params, param)
        if value not in choices:
            raise self._bad(param, value, "one of " + ", ".join(map(str, choices)))

    def applies_to(self, data) -> tuple[bool, str]:
        """Whether to use this extractor on a column whose train split is ``data`` (asked for
        a config entry ``name(auto)``), and the reason in words."""
        return True, "always"

    def fit_note(self) -> str | None:
        """A choice ``fit`` made from the train data that the user should see (in
        ``blocks.json`` and the ``extract`` summary), e.g. tfidf's character n-grams."""
        return None

    def structure(self) -> dict | None:
        """The layout of one output row for structure-aware encoders (see the module doc)."""
        return None

    def state_files(self) -> dict[str, Path]:
        """Files the fitted state needs: suffix -> current path (copied beside the state)."""
        return {}

    def fit(self, data) -> Extractor:
        self.dim_ = self._fit(data)
        return self

    def transform(self, data) -> np.ndarray:
        if self.dim_ is None:
            raise NotFittedError(f"extractor {self.name!r} is not fitted; call fit() first")
        if len(data) == 0:
            return np.zeros((0, self.dim_), dtype=np.float32)
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
        state = {"name": self.name, "params": dataclasses.asdict(self.params),
                 "dim": self.dim_, "fitted": params}
        if self.state_files():
            state["files"] = sorted(self.state_files())
        return state, arrays

    @classmethod
    def from_state(cls, state: dict, arrays: dict[str, np.ndarray],
                   files: dict[str, Path] | None = None) -> Extractor:
        """Rebuild a fitted extractor; ``files`` maps each ``state_files`` suffix to its copy."""
        obj = cls(**state["params"])
        obj.dim_ = int(state["dim"])
        obj.files_ = dict(files or {})
        obj._load(state["fitted"], arrays)
        return obj


#: a config entry ``name(auto)`` uses the extractor only where its ``applies_to`` says so
CONDITIONAL = "(auto)"


def config_name(entry: str) -> tuple[str, bool]:
    """The extractor name of a config entry and whether it is conditional (``frames(auto)``)."""
    if isinstance(entry, str) and entry.endswith(CONDITIONAL):
        return entry[:-len(CONDITIONAL)], True
    return entry, False


def check_params(params: dict, lists: dict[str, list]) -> list[str]:
    """Check an extract config before any work: ``lists`` (kind -> extractor names) and
    ``params`` (extractor name -> parameters). An unknown name, in a list or as a key of
    ``params``, is refused with a "did you mean" hint; every extractor's parameters are
    validated, those of unlisted ones too. Returns the keys of ``params`` no list names, which
    the caller warns about: their parameters change nothing."""
    if not isinstance(params, dict):
        raise UsageError(f"config 'extract.params' must map extractor names to parameters; got "
                         f"{params!r}", "e.g. params: {tfidf: {max_features: 5000}}")
    for name, values in params.items():
        cls = EXTRACTORS.get(str(name), where="extract.params")
        if values is not None and not isinstance(values, dict):
            raise UsageError(f"config 'extract.params.{name}' must be a mapping of parameters; "
                             f"got {values!r}", f"see mmcli extract --show-config {name}")
        cls(**(values or {}))
    used = set()
    for kind, names in lists.items():
        for entry in names or ():
            name, _ = config_name(entry)
            build_extractor(name, kind, params.get(name))
            used.add(name)
    return [name for name in params if name not in used]


def build_extractor(name: str, kind: str, params: dict | None) -> Extractor:
    name = config_name(name)[0]
    cls = EXTRACTORS.get(name, where=f"extract.{kind}")
    expected = EXTRACTORS.tags(name).get("kind")
    if expected != kind:
        raise UsageError(
            f"extractor {name!r} is for {expected} columns, not {kind}",
            f"{kind} extractors: {', '.join(EXTRACTORS.names(kind=kind))}",
        )
    return cls(**(params or {}))

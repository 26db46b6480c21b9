"""The model contract.

``fit(X, y, n_classes, X_val, y_val, *, blocks=None)`` takes float32 features and integer
class indices (0..K-1) and returns ``self``; ``predict_proba(X)`` returns (n, K)
probabilities. ``blocks`` is the block description of a concat fusion
(:class:`mmcli.blocks.Blocks`: per modality its column range, its column name, for a
structured block its ``layout``, ``shape`` and ``vocab``, and the fusion's train mean and
scale, which augmentation uses to work in the extractor's units and which is not saved); bare
``[(start, stop)]`` ranges are accepted too. Models with ``needs_blocks`` refuse to fit without
blocks; a model that uses them keeps them as ``blocks_`` (the others ignore them).
Models with ``supports_tasks`` also have ``fit_tasks`` / ``predict_tasks`` (several label
columns, see :mod:`mmcli.models.torch_train`). ``get_state`` and ``from_state`` give JSON
plus arrays, so a model directory never holds a pickle.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmcli import artifacts
from mmcli.blocks import Blocks, as_blocks
from mmcli.config import check_types
from mmcli.errors import UsageError
from mmcli.registry import Registry

MODELS: Registry[type[Model]] = Registry("model")


class Model:
    name: ClassVar[str]
    #: True for models that need the modality blocks (column ranges of a concat fusion)
    needs_blocks: ClassVar[bool] = False
    #: True for models that train several label columns together (see ``fit_tasks``)
    supports_tasks: ClassVar[bool] = False

    @dataclasses.dataclass
    class Params:
        pass

    def __init__(self, seed: int = 0, device: str = "auto", **params: Any):
        fields = {f.name for f in dataclasses.fields(self.Params)}
        for key in params:
            if key not in fields:
                raise UsageError(f"unknown parameter {key!r} for model {self.name!r}",
                                 f"its parameters are: {', '.join(sorted(fields))}")
        try:
            self.params = self.Params(**params)
        except TypeError as exc:
            raise UsageError(f"bad parameters for model {self.name!r}: {exc}",
                             "see the README") from None
        check_types(self.params, f"model {self.name!r}")
        self.seed = seed
        self.device = device
        #: per-epoch records for models trained in epochs
        self.log_: list[dict] = []
        #: the modality blocks given to ``fit`` (a concat fusion), or None
        self.blocks_: Blocks | None = None
        #: called with each epoch's record by models trained in epochs (progress display)
        self.on_epoch = None

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int,
            X_val: np.ndarray | None = None, y_val: np.ndarray | None = None, *,
            blocks: Blocks | None = None) -> Model:
        raise NotImplementedError

    def _use_blocks(self, blocks) -> Blocks | None:
        """Keep the block description given to ``fit`` (``blocks_``); a model with
        ``needs_blocks`` refuses to fit without one."""
        self.blocks_ = as_blocks(blocks)
        if self.blocks_ is None and self.needs_blocks:
            raise UsageError(
                f"model {self.name!r} needs the modality blocks of a concat fusion",
                "fuse with `mmcli fuse --method concat` (the default) and train on that")
        return self.blocks_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        raise NotImplementedError

    def _load(self, fitted: dict, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict, arrays: dict[str, np.ndarray]) -> Model:
        obj = cls(seed=state["seed"], device="cpu", **state["params"])
        obj._load(state["fitted"], arrays)
        return obj


def build_model(name: str, params: dict, seed: int, device: str) -> Model:
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device is {device!r}", "use auto, cpu or cuda")
    return MODELS.get(name, where="--model")(seed=seed, device=device, **(params or {}))


def save_model(model: Model, directory: Path, classes: list[str]) -> None:
    fitted, arrays = model.get_state()
    state = {"name": model.name, "params": dataclasses.asdict(model.params), "seed": model.seed,
             "classes": classes, "fitted": fitted}
    artifacts.save_state(directory, "model", state, arrays)


def load_model(directory: Path) -> tuple[Model, list[str]]:
    state, arrays = artifacts.load_state(directory, "model")
    return MODELS.get(state["name"]).from_state(state, arrays), list(state["classes"])


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but no CUDA GPU is available",
                         "use --device auto or cpu")
    return device

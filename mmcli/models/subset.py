"""A model on some of the modality blocks of a concat fusion.

``subset`` fits ``model`` (with ``params``) on the blocks listed in ``keep`` (their positions
in the fuse directory's ``fusion.json`` blocks) and ignores the others, at train and predict
time alike. Model selection (``train.model: auto``) uses it when leaving a modality out scores
better than using it (a block of noise, a transcript that says nothing about the label); it
can also be named directly::

    train: {model: subset, params: {model: logreg, params: {C: 0.1}, keep: [0, 2]}}
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmcli.blocks import Blocks
from mmcli.errors import UsageError
from mmcli.models.base import MODELS, Model


@MODELS.register("subset")
class SubsetModel(Model):
    """``model`` with ``params`` on the blocks ``keep`` only."""

    needs_blocks = True

    @dataclasses.dataclass
    class Params:
        model: str = "logreg"
        params: dict = dataclasses.field(default_factory=dict)
        keep: list = dataclasses.field(default_factory=list)

    def _columns(self) -> np.ndarray:
        keep, n = self.params.keep, len(self.blocks_)
        if not keep or any(not isinstance(k, int) or not 0 <= k < n
                           for k in keep) or len(set(keep)) != len(keep):
            raise UsageError(f"the 'keep' parameter of model 'subset' must list distinct "
                             f"block positions in 0..{n - 1}; got {keep!r} "
                             "instead", "fix train.params.keep")
        return np.concatenate([np.arange(self.blocks_[k].start, self.blocks_[k].stop)
                               for k in sorted(keep)])

    def _inner(self) -> Model:
        if self.params.model == "subset":
            raise UsageError("model 'subset' cannot wrap itself", "name another model")
        return MODELS.get(self.params.model, where="subset model")(
            seed=self.seed, device=self.device, **self.params.params)

    def fit(self, X, y, n_classes, X_val=None, y_val=None, *, blocks=None):
        self._use_blocks(blocks)
        self.columns_ = self._columns()
        self.model_ = self._inner()
        self.model_.on_epoch = self.on_epoch
        cols = self.columns_
        self.model_.fit(np.asarray(X)[:, cols], y, n_classes,
                        None if X_val is None else np.asarray(X_val)[:, cols], y_val,
                        blocks=self.blocks_.subset(sorted(self.params.keep)))
        self.log_ = self.model_.log_
        self.best_epoch_ = getattr(self.model_, "best_epoch_", None)
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(np.asarray(X)[:, self.columns_])

    def get_state(self):
        fitted, arrays = self.model_.get_state()
        inner = {"name": self.model_.name, "params": dataclasses.asdict(self.model_.params),
                 "seed": self.model_.seed, "fitted": fitted}
        return ({"blocks": [list(b) for b in self.blocks_.ranges], "inner": inner},
                {f"inner.{k}": v for k, v in arrays.items()})

    def _load(self, fitted, arrays):
        self.blocks_ = Blocks.from_ranges(fitted["blocks"])
        self.columns_ = self._columns()
        sub = fitted["inner"]
        inner = {k[len("inner."):]: v for k, v in arrays.items() if k.startswith("inner.")}
        self.model_ = MODELS.get(sub["name"]).from_state(sub, inner)

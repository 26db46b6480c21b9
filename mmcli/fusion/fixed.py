"""Fixed (not learned) fusion operators over per-modality feature blocks.

Every method first normalises each block with train statistics: features are centred and the
whole block is divided by its total standard deviation (the square root of the summed feature
variances), so a 2,000-dimensional TF-IDF block and a 1-dimensional numeric block weigh the same
while the relative scale of features inside a block is kept (standardising each TF-IDF column
on its own inflates rare words). Methods that combine blocks element-wise project
each block to a common dimension first (PCA fitted on train; a seeded random lift when a block
has fewer dimensions than that).

* ``concat``: the normalised blocks side by side (blocks whose layout is in its
  ``raw_layouts``, token ids, are kept as they are so a model can embed the ids); the only
  method with ``keeps_blocks``, so models that learn the fusion can train on its output.
* ``sum``: projected blocks added (divided by sqrt(number of blocks)).
* ``product``: projected blocks multiplied element-wise.
* ``tensor``: outer product of the projected blocks, each with a 1 appended (Zadeh et al.,
  "Tensor Fusion Network", EMNLP 2017), so unimodal, bimodal and higher interactions are all
  present. Output dimension: (dim + 1) ** n_blocks.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mmcli.errors import UsageError
from mmcli.registry import Registry

FUSIONS: Registry[type] = Registry("fusion method")
TENSOR_MAX_DIM = 4096


def _standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float64), std.astype(np.float64)


def _block_scaler(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    total = float(np.sqrt(x.var(axis=0).sum()))
    return mean, np.full(x.shape[1], total if total > 1e-8 else 1.0)


class Fusion:
    """A fusion method: ``fit(blocks, layouts)`` on the train rows, then ``transform``."""

    name: ClassVar[str]
    #: True when each block is projected to a common dimension before combining
    projects: ClassVar[bool] = True
    #: True when the output is the blocks side by side, in order (models may learn on them)
    keeps_blocks: ClassVar[bool] = False
    #: block layouts (see Extractor.structure) left unnormalised, e.g. token ids
    raw_layouts: ClassVar[tuple[str, ...]] = ()
    #: True when the combined output is standardised again (products change the scale)
    standardizes_output: ClassVar[bool] = False

    def __init__(self, dim: int | None = None, seed: int = 0):
        if dim is not None and (not isinstance(dim, int) or dim < 1):
            raise UsageError(f"fuse dim is {dim!r}", "give a positive integer")
        self.dim = dim
        self.seed = seed
        self.fitted_ = False

    def default_dim(self, n_blocks: int) -> int:
        return 16

    def fit(self, blocks: list[np.ndarray], layouts: list[str | None] | None = None) -> Fusion:
        """Fit on the train rows; ``layouts`` names each block's layout (None for a plain
        vector): blocks whose layout is in ``raw_layouts`` are left unnormalised."""
        layouts = layouts or [None] * len(blocks)
        self.norm_ = [(np.zeros(b.shape[1]), np.ones(b.shape[1]))
                      if layout is not None and layout in self.raw_layouts
                      else _block_scaler(b.astype(np.float64))
                      for b, layout in zip(blocks, layouts)]
        normed = [self._normalize(b, k) for k, b in enumerate(blocks)]
        self.proj_: list[np.ndarray] = []
        if self.projects:
            dim = self.dim or self.default_dim(len(blocks))
            self.dim_used_ = dim
            rng = np.random.default_rng(self.seed)
            projected = []
            for x in normed:
                p = self._fit_projection(x, dim, rng)
                self.proj_.append(p)
                projected.append(x @ p)
            self.proj_norm_ = [_standardizer(z) for z in projected]
            normed = [(z - m) / s for z, (m, s) in zip(projected, self.proj_norm_)]
        fused = self._combine(normed)
        self.out_norm_ = _standardizer(fused) if self.standardizes_output else None
        self.fitted_ = True
        return self

    def transform(self, blocks: list[np.ndarray]) -> np.ndarray:
        if not self.fitted_:
            raise RuntimeError(f"fusion {self.name!r} is not fitted; call fit() first")
        normed = [self._normalize(b, k) for k, b in enumerate(blocks)]
        if self.projects:
            normed = [((x @ p) - m) / s
                      for x, p, (m, s) in zip(normed, self.proj_, self.proj_norm_)]
        fused = self._combine(normed)
        if self.out_norm_ is not None:
            fused = (fused - self.out_norm_[0]) / self.out_norm_[1]
        return fused.astype(np.float32)

    def block_norms(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per block, the train (mean, scale) that ``transform`` normalises it with."""
        if not self.fitted_:
            raise RuntimeError(f"fusion {self.name!r} is not fitted; call fit() first")
        return [(m, s) for m, s in self.norm_]

    def _normalize(self, block: np.ndarray, k: int) -> np.ndarray:
        mean, std = self.norm_[k]
        return (block.astype(np.float64) - mean) / std

    @staticmethod
    def _fit_projection(x: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
        d = x.shape[1]
        r = max(1, min(dim, d, x.shape[0]))
        # PCA directions (x is already centred on train): right singular vectors.
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        basis = vt[:r].T  # (d, r)
        # Fix each component's sign so the result does not depend on the SVD routine's choice.
        signs = np.sign(basis[np.abs(basis).argmax(axis=0), np.arange(r)])
        basis = basis * np.where(signs == 0, 1, signs)
        if r < dim:
            lift = rng.standard_normal((r, dim)) / np.sqrt(r)
            return basis @ lift
        return basis

    def _combine(self, blocks: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {}
        for k, (m, s) in enumerate(self.norm_):
            arrays[f"norm_mean_{k}"], arrays[f"norm_std_{k}"] = m, s
        for k, p in enumerate(self.proj_):
            arrays[f"proj_{k}"] = p
            arrays[f"proj_mean_{k}"], arrays[f"proj_std_{k}"] = self.proj_norm_[k]
        if self.out_norm_ is not None:
            arrays["out_mean"], arrays["out_std"] = self.out_norm_
        params = {"method": self.name, "dim": self.dim, "seed": self.seed,
                  "n_blocks": len(self.norm_)}
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray]) -> Fusion:
        obj = FUSIONS.get(params["method"])(params["dim"], params["seed"])
        n = params["n_blocks"]
        obj.norm_ = [(arrays[f"norm_mean_{k}"], arrays[f"norm_std_{k}"]) for k in range(n)]
        if obj.projects:
            obj.proj_ = [arrays[f"proj_{k}"] for k in range(n)]
            obj.proj_norm_ = [(arrays[f"proj_mean_{k}"], arrays[f"proj_std_{k}"])
                              for k in range(n)]
        else:
            obj.proj_ = []
        obj.out_norm_ = (arrays["out_mean"], arrays["out_std"]) if "out_mean" in arrays else None
        obj.fitted_ = True
        return obj


@FUSIONS.register("concat")
class Concat(Fusion):
    projects = False
    keeps_blocks = True
    raw_layouts = ("tokens",)

    def _combine(self, blocks):
        return np.hstack(blocks)


@FUSIONS.register("sum")
class Sum(Fusion):
    def _combine(self, blocks):
        return np.sum(blocks, axis=0) / np.sqrt(len(blocks))


@FUSIONS.register("product")
class Product(Fusion):
    standardizes_output = True
    def _combine(self, blocks):
        return np.prod(blocks, axis=0)


@FUSIONS.register("tensor")
class Tensor(Fusion):
    standardizes_output = True
    def default_dim(self, n_blocks: int) -> int:
        dim = 1
        while (dim + 2) ** n_blocks <= TENSOR_MAX_DIM and dim < 16:
            dim += 1
        return dim

    def fit(self, blocks, layouts=None):
        dim = self.dim or self.default_dim(len(blocks))
        if (dim + 1) ** len(blocks) > 1 << 20:
            raise UsageError(
                f"tensor fusion of {len(blocks)} blocks at dim {dim} has "
                f"{(dim + 1) ** len(blocks)} features", "lower fuse.dim or fuse fewer modalities")
        return super().fit(blocks, layouts)

    def _combine(self, blocks):
        n = blocks[0].shape[0]
        out = np.ones((n, 1))
        for z in blocks:
            z1 = np.hstack([np.ones((n, 1)), z])
            out = (out[:, :, None] * z1[:, None, :]).reshape(n, -1)
        return out

"""Fixtures shared by the whole suite: a small dataset on disk and one fitted pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mmcli.testing.dummies import make_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A fresh 36-row labelled CSV manifest (image, audio, text, value, label) with its media."""
    return make_dataset(tmp_path / "data", n=36)


@dataclass(frozen=True)
class Pipeline:
    """Stage directories of one preprocess -> extract -> fuse -> train run (read-only)."""

    manifest: Path
    pre: Path
    feat: Path
    fused: Path
    model: Path


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The default pipeline (concat, default model, seed 0) on 36 rows, built once per session.

    Tests must not modify these directories; copy one first (``shutil.copytree``) to tamper
    with it.
    """
    from mmcli.config import ExtractConfig, PreprocessConfig
    from mmcli.stages import extract, fuse, preprocess, train

    root = tmp_path_factory.mktemp("pipeline")
    manifest = make_dataset(root / "data", n=36)
    runs = root / "runs"
    p = Pipeline(manifest, runs / "pre", runs / "feat", runs / "fused", runs / "model")
    preprocess(manifest, p.pre, PreprocessConfig(jobs=1))
    extract(p.pre, p.feat, ExtractConfig(jobs=1))
    fuse(p.feat, p.fused)
    train(p.fused, p.model)
    return p

"""Tiny randomly initialised pretrained backbones, written once per session (no download)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model directories: bert, vit, wav2vec2, hf_clip, sentence, open_clip, timm
    (:mod:`mmcli.testing.pretrained`). Read-only: copy one to tamper with it."""
    from mmcli.testing.pretrained import write_all

    return write_all(tmp_path_factory.mktemp("pretrained"))


@pytest.fixture
def embedding_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh embedding cache for this test (never the user's ~/.cache)."""
    root = tmp_path / "mmcli-cache"
    monkeypatch.setenv("MMCLI_CACHE_DIR", str(root))
    return root / "embeddings"

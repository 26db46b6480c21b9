"""Pretrained backbones through the pipeline: `mmcli extract` with a config, the embedding
cache across output directories (a rerun computes nothing, a grown manifest only its new
rows, byte-identical to a full run), blocks like any other for fuse and train, and predict's
one-line refusal when the model files changed or went away."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from mmcli.config import PreprocessConfig, TrainConfig
from mmcli.stages import fuse, preprocess, train
from mmcli.testing.dummies import make_dataset
from tests.cli.helpers import fails, file_hashes, ok


def write_config(path: Path, models: dict[str, Path], cache: bool = True) -> Path:
    common = {"cache": cache}
    config = {"extract": {
        "jobs": 1, "text": ["hf_text", "tfidf"], "image": ["clip_image"], "audio": ["hf_audio"],
        "params": {"hf_text": {"model": str(models["bert"]), "pooling": "cls", **common},
                   "clip_image": {"model": str(models["open_clip"]), **common},
                   "hf_audio": {"model": str(models["wav2vec2"]), **common},
                   "tfidf": {"svd_components": 4}}}}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def features(feat: Path) -> dict[str, str]:
    return file_hashes(feat / "features")


def keys_files(cache: Path) -> int:
    return len(list(cache.rglob("*.keys.npy")))


def test_extract_cache_fuse_train_predict(tiny_models, tmp_path, embedding_cache):
    models = {name: shutil.copytree(tiny_models[name], tmp_path / "models" / name)
              for name in ("bert", "open_clip", "wav2vec2")}
    small = make_dataset(tmp_path / "small", n=9, with_split=True)
    grown = make_dataset(tmp_path / "grown", n=12, with_split=True)  # the same 9, and 3 more
    pre = PreprocessConfig(jobs=1, image_size=[32, 32], sample_rate=16000)
    preprocess(small, tmp_path / "pre_small", pre)
    preprocess(grown, tmp_path / "pre_grown", pre)
    config = write_config(tmp_path / "config.yaml", models)

    ok("extract", tmp_path / "pre_small", "-o", tmp_path / "feat1", "-c", config,
       "--device", "cpu")
    blocks = yaml.safe_load((tmp_path / "feat1" / "blocks.json").read_text())
    dims = {b["column"]: [(e["name"], e["dim"]) for e in b["extractors"]] for b in blocks}
    assert dims["image"] == [("clip_image", 16)] and dims["audio"] == [("hf_audio", 32)]
    assert dims["text"][0] == ("hf_text", 32)
    assert keys_files(embedding_cache) == 3  # one write per extractor
    from mmcli.extractors import pretrained

    assert not pretrained._BACKBONES  # no model outlives the stage

    # a rerun elsewhere reads every embedding back: nothing new in the cache, same bytes
    ok("extract", tmp_path / "pre_small", "-o", tmp_path / "feat2", "-c", config)
    assert keys_files(embedding_cache) == 3
    assert features(tmp_path / "feat2") == features(tmp_path / "feat1")

    # the grown manifest computes its 3 new rows only, byte-identical to a full run
    ok("extract", tmp_path / "pre_grown", "-o", tmp_path / "feat_grown", "-c", config)
    assert keys_files(embedding_cache) == 6
    import numpy as np

    new_keys = [np.load(p) for p in embedding_cache.rglob("*.keys.npy")]
    assert sorted(len(k) for k in new_keys) == [3, 3, 3, 9, 9, 9]
    uncached = write_config(tmp_path / "uncached.yaml", models, cache=False)
    ok("extract", tmp_path / "pre_grown", "-o", tmp_path / "feat_full", "-c", uncached)
    assert features(tmp_path / "feat_full") == features(tmp_path / "feat_grown")

    # embeddings are blocks like any other: fuse, train, predict
    fuse(tmp_path / "feat_grown", tmp_path / "fused")
    train(tmp_path / "fused", tmp_path / "model",  # model auto, two quick candidates
          TrainConfig(select={"candidates": ["logreg", "linear_svm"], "cv": 2}))
    ok("predict", tmp_path / "model", grown, "-o", tmp_path / "pred")

    weights = models["open_clip"] / "open_clip_model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-8] + b"\0" * 8)
    error = fails(4, "predict", tmp_path / "model", grown, "-o", tmp_path / "pred2")
    assert "clip_image model file" in error and "changed since extract" in error
    weights.write_bytes(original)
    shutil.rmtree(models["bert"])
    error = fails(4, "predict", tmp_path / "model", grown, "-o", tmp_path / "pred3")
    assert "model" in error and "is gone" in error and "bert" in error


def test_missing_model_is_one_line_exit_2(tiny_models, tmp_path, embedding_cache,
                                          monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    manifest = make_dataset(tmp_path / "data", n=6)
    preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"extract": {"text": ["sentence_transformers"], "params": {
        "sentence_transformers": {"model": "sentence-transformers/all-MiniLM-L6-v2"}}}}))
    error = fails(2, "extract", tmp_path / "pre", "-o", tmp_path / "feat", "-c", config)
    assert "'sentence-transformers/all-MiniLM-L6-v2' is not in the local Hugging Face " \
        "cache" in error and "hf download sentence-transformers/all-MiniLM-L6-v2" in error
    assert fails(2, "extract", tmp_path / "pre", "-o", tmp_path / "feat", "--device", "tpu")

"""Encoder models through the CLI: pixels / frames / tokens blocks, encoder: auto,
augmentation, then eval (with the robustness ablation) and predict from the model alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .helpers import fails, ok, read_rows

CONFIG = """\
preprocess: {jobs: 1, image_size: [12, 12]}
extract:
  jobs: 1
  image: [pixels]
  audio: [frames]
  text: [tokens]
  params: {pixels: {size: 0}, frames: {n_frames: 6, n_mels: 8}, tokens: {max_len: 8}}
train:
  model: late_repr
  params: {encoder: auto, epochs: 3, embed: 8, head: [8], seq_dim: 8, heads: 2,
           cnn_channels: [4], augment: {flip: 0.5, gain_db: 3, token_drop: 0.1}}
eval: {bootstrap: 0, noise_levels: [0.0, 1.0]}
"""


@pytest.fixture(scope="module")
def structured(tmp_path_factory):
    from mmcli.testing.dummies import make_dataset

    root = tmp_path_factory.mktemp("encoders")
    manifest = make_dataset(root / "data", n=24)
    config = root / "config.yaml"
    config.write_text(CONFIG)
    runs = root / "runs"
    ok("preprocess", manifest, "-o", runs / "pre", "-c", config, "-q")
    ok("extract", runs / "pre", "-o", runs / "feat", "-c", config, "-q")
    ok("fuse", runs / "feat", "-o", runs / "fused", "-q")
    return manifest, config, runs


def test_train_eval_predict_with_encoders(structured):
    manifest, config, runs = structured
    fusion = json.loads((runs / "fused" / "fusion.json").read_text())
    layouts = {b["column"]: b.get("layout") for b in fusion["blocks"]}
    assert layouts == {"image": "image", "audio": "logmel", "text": "tokens", "value": None}
    assert fusion["blocks"][0]["shape"] == [12, 12, 3]
    result = ok("train", runs / "fused", "-o", runs / "model", "-c", config, "--device", "cpu")
    assert "train: late_repr on" in result.stderr
    state = json.loads((runs / "model" / "state" / "model" / "model.json").read_text())
    assert [b.get("layout") for b in state["fitted"]["layouts"]] == \
        ["image", "logmel", "tokens", None]
    with np.load(runs / "model" / "state" / "model" / "model.npz", allow_pickle=False) as npz:
        keys = set(npz.files)
    assert {"encoders.0.features.0.weight", "encoders.1.gru.weight_hh_l0",
            "encoders.2.encoder.layers.0.self_attn.in_proj_weight", "encoders.3.0.weight"} <= keys
    ok("eval", runs / "model", runs / "fused", "-o", runs / "eval", "-c", config, "-q")
    metrics = json.loads((runs / "eval" / "metrics.json").read_text())
    ablation = metrics["test"]["robustness"]["ablation"]
    assert set(ablation["removed"]) == {"image", "audio", "text", "value"}
    assert metrics["test"]["robustness"]["noise"]
    # the text ablation feeds padding (no text), not the mean of the word ids
    from mmcli import artifacts
    from mmcli.fitted import FittedChain

    fitted = FittedChain.load(runs / "model")
    items = artifacts.read_jsonl(runs / "fused" / "items.jsonl")
    test = [k for k, it in enumerate(items) if it["split"] == "test"]
    blocks = [artifacts.load_npy(runs / "feat" / "features" / f"{c}.npy")[test]
              for c in fitted.columns]
    blocks[fitted.columns.index("text")] = np.zeros_like(blocks[2])
    labels = [items[k]["label"] for k in test]
    assert ablation["removed"]["text"] == fitted.accuracy(blocks, labels)
    ok("predict", runs / "model", manifest, "-o", runs / "pred", "-j", "1", "-q")
    predicted = read_rows(runs / "pred" / "predictions.csv")
    evaluated = {r["id"]: r["prediction"] for r in read_rows(runs / "eval" / "predictions.csv")}
    assert len(predicted) == 24
    assert all(evaluated[r["id"]] == r["prediction"] for r in predicted)


def test_same_seed_same_model_files(structured, tmp_path):
    _, config, runs = structured
    for d in ("a", "b"):
        ok("train", runs / "fused", "-o", tmp_path / d, "-c", config, "--device", "cpu", "-q")
    for name in ("model.json", "model.npz"):
        assert (tmp_path / "a" / "state" / "model" / name).read_bytes() == \
            (tmp_path / "b" / "state" / "model" / name).read_bytes()


def test_encoder_that_does_not_fit_is_a_usage_error(structured, tmp_path):
    _, _, runs = structured
    config = tmp_path / "bad.yaml"
    config.write_text("train: {model: gmu, params: {encoders: {text: cnn}}}\n")
    line = fails(2, "train", runs / "fused", "-o", tmp_path / "m", "-c", config)
    assert "encoder 'cnn' cannot read modality 'text': it is a tokens block" in line
    config.write_text("train: {model: gmu, params: {augment: {flip: 2}}}\n")
    line = fails(2, "train", runs / "fused", "-o", tmp_path / "m", "-c", config)
    assert "augment.flip" in line


def test_word_ids_need_a_sequence_encoder(tmp_path, dataset):
    """A tokens block read as plain numbers (an MLP, logistic regression...) is refused."""
    config = tmp_path / "tokens.yaml"
    config.write_text("preprocess: {jobs: 1}\nextract: {jobs: 1, text: [tokens]}\n")
    ok("preprocess", dataset, "-o", tmp_path / "pre", "-c", config, "-q")
    ok("extract", tmp_path / "pre", "-o", tmp_path / "feat", "-c", config, "-q")
    ok("fuse", tmp_path / "feat", "-o", tmp_path / "fused", "-q")
    line = fails(2, "train", tmp_path / "fused", "-o", tmp_path / "m", "--model", "logreg")
    assert "modality 'text' holds word ids" in line and "encoder: auto" in line
    line = fails(2, "train", tmp_path / "fused", "-o", tmp_path / "m", "--model", "late_repr")
    assert "which the mlp encoder would read as numbers" in line

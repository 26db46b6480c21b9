"""mmcli fuse: one fused matrix from an extract directory; method choice by flag or config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .helpers import fails, ok


def fusion(out) -> dict:
    return json.loads((out / "fusion.json").read_text())


def test_success_concat(pipeline, tmp_path):
    out = tmp_path / "fused"
    result = ok("fuse", pipeline.feat, "-o", out)
    info = fusion(out)
    assert info["method"] == "concat"
    assert sorted(info["modalities"]) == ["audio", "image", "text", "value"]
    blocks = json.loads((pipeline.feat / "blocks.json").read_text())
    assert info["dim"] == sum(b["dim"] for b in blocks)
    fused = np.load(out / "fused.npy")
    assert fused.shape == (36, info["dim"])
    assert np.isfinite(fused).all()
    assert (out / "state" / "fuse" / "fuse.json").is_file()
    assert json.loads((out / "meta.json").read_text())["stage"] == "fuse"
    assert f"fuse: concat of image, audio, text, value -> {info['dim']} features for 36 items" \
        in result.stderr
    assert "fuse: 36/36 (100%)" in result.stderr
    assert f"wrote {out}" in result.stderr


@pytest.mark.parametrize("method", ["sum", "product", "tensor"])
def test_other_methods(pipeline, tmp_path, method):
    out = tmp_path / "fused"
    assert ok("fuse", pipeline.feat, "-o", out, "--method", method, "-q").output == ""
    info = fusion(out)
    assert info["method"] == method
    assert np.load(out / "fused.npy").shape == (36, info["dim"])
    if method == "tensor":
        assert info["dim"] <= 4096
    else:
        assert info["dim"] == 16


def test_dim_and_modalities(pipeline, tmp_path):
    out = tmp_path / "fused"
    ok("fuse", pipeline.feat, "-o", out, "-m", "sum", "--dim", "5", "--modalities", "image,value")
    info = fusion(out)
    assert info["modalities"] == ["image", "value"]
    assert info["dim"] == 5


def test_wrong_kind_of_directory_exits_4_and_names_the_command(pipeline, tmp_path):
    line = fails(4, "fuse", pipeline.pre, "-o", tmp_path / "fused")
    assert "is a 'preprocess' directory" in line
    assert "'extract'" in line
    assert f"mmcli extract {pipeline.pre} -o DIR" in line
    assert not (tmp_path / "fused").exists()


def test_unknown_method_exits_2(pipeline, tmp_path):
    line = fails(2, "fuse", pipeline.feat, "-o", tmp_path / "fused", "--method", "concatt")
    assert "unknown fusion method 'concatt'" in line
    assert "did you mean 'concat'?" in line

    line = fails(2, "fuse", pipeline.feat, "-o", tmp_path / "fused", "--method", "zzz")
    assert "concat, product, sum, tensor" in line
    assert not (tmp_path / "fused").exists()


def test_unknown_modality_or_bad_dim_exits_2(pipeline, tmp_path):
    line = fails(2, "fuse", pipeline.feat, "-o", tmp_path / "f", "--modalities", "image,photo")
    assert "'photo'" in line and "image, audio, text, value" in line
    line = fails(2, "fuse", pipeline.feat, "-o", tmp_path / "f", "-m", "sum", "--dim", "0")
    assert "dim" in line


def test_config_is_honoured_and_the_flag_wins(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("fuse: {method: tensor, dim: 2}\n")
    ok("fuse", pipeline.feat, "-o", tmp_path / "from-config", "-c", config, "-q")
    assert fusion(tmp_path / "from-config")["method"] == "tensor"
    assert fusion(tmp_path / "from-config")["dim"] == 3 ** 4

    ok("fuse", pipeline.feat, "-o", tmp_path / "flag", "-c", config, "--method", "concat", "-q")
    assert fusion(tmp_path / "flag")["method"] == "concat"
    meta = json.loads((tmp_path / "flag" / "meta.json").read_text())
    assert meta["config"]["method"] == "concat"
    assert meta["config"]["dim"] == 2  # the rest of the config section still applies


def test_unknown_config_key_exits_2_with_a_suggestion(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("fuse: {methd: tensor}\n")
    line = fails(2, "fuse", pipeline.feat, "-o", tmp_path / "fused", "-c", config)
    assert "unknown key 'methd' in config section 'fuse'" in line
    assert "did you mean 'method'?" in line


def test_config_not_yaml_exits_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("fuse: {method: [tensor\n")
    line = fails(2, "fuse", pipeline.feat, "-o", tmp_path / "fused", "-c", config)
    assert "config.yaml is not valid YAML" in line

    config.write_text("- just\n- a list\n")
    line = fails(2, "fuse", pipeline.feat, "-o", tmp_path / "fused", "-c", config)
    assert "must hold a mapping" in line


def test_config_value_of_the_wrong_type_exits_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("seed: abc\n")
    line = fails(2, "fuse", pipeline.feat, "-o", tmp_path / "fused", "-c", config)
    assert "'seed'" in line and "int" in line

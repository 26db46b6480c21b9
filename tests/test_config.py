"""Stage configs: precedence, unknown keys, types, reading YAML files."""

from __future__ import annotations

import pytest

from mmcli.config import (
    ExtractConfig,
    FuseConfig,
    PredictConfig,
    PreprocessConfig,
    TrainConfig,
    build,
    from_dict,
    read_config_file,
    to_dict,
)
from mmcli.errors import UsageError


def test_defaults():
    config = build(PreprocessConfig, {}, "preprocess")
    assert config == PreprocessConfig()
    assert config.seed == 0 and config.label == "label"


def test_top_level_label_and_seed():
    config = build(TrainConfig, {"label": "y", "seed": 5}, "train")
    assert (config.label, config.seed) == ("y", 5)


def test_top_level_ignored_by_configs_without_that_field():
    config = build(PredictConfig, {"label": "y", "seed": 5}, "predict")
    assert config == PredictConfig(label="y")  # PredictConfig has no seed


def test_section_beats_top_level():
    config = build(TrainConfig, {"seed": 5, "train": {"seed": 9, "model": "mlp"}}, "train")
    assert (config.seed, config.model) == (9, "mlp")


def test_overrides_beat_section_and_none_is_ignored():
    file_config = {"label": "y", "train": {"seed": 9, "model": "mlp"}}
    config = build(TrainConfig, file_config, "train",
                   {"seed": 11, "model": None, "label": None, "device": None})
    assert config.seed == 11
    assert config.model == "mlp"  # None override keeps the section value
    assert config.label == "y"  # None override keeps the top-level value
    assert config.device == "auto"  # None override keeps the default


def test_other_sections_do_not_leak():
    config = build(FuseConfig, {"train": {"model": "mlp"}, "fuse": {"method": "sum"}}, "fuse")
    assert config.method == "sum"


def test_empty_section_is_defaults():
    assert build(FuseConfig, {"fuse": None}, "fuse") == FuseConfig()


def test_section_not_a_mapping():
    with pytest.raises(UsageError, match="'fuse' must be a mapping"):
        build(FuseConfig, {"fuse": ["concat"]}, "fuse")


def test_unknown_key_did_you_mean():
    with pytest.raises(UsageError) as exc:
        build(PreprocessConfig, {"preprocess": {"numeric_scalling": "minmax"}}, "preprocess")
    assert "numeric_scalling" in exc.value.message
    assert exc.value.hint == "did you mean 'numeric_scaling'?"


def test_unknown_key_without_close_match_lists_known():
    with pytest.raises(UsageError) as exc:
        build(FuseConfig, {"fuse": {"zzzzzz": 1}}, "fuse")
    assert "known keys" in exc.value.hint and "method" in exc.value.hint


@pytest.mark.parametrize("cls, stage, section", [
    (PreprocessConfig, "preprocess", {"seed": "zero"}),
    (PreprocessConfig, "preprocess", {"seed": 1.5}),
    (PreprocessConfig, "preprocess", {"seed": True}),
    (PreprocessConfig, "preprocess", {"lowercase": 1}),
    (PreprocessConfig, "preprocess", {"max_failed_fraction": "0.1"}),
    (PreprocessConfig, "preprocess", {"max_failed_fraction": True}),
    (PreprocessConfig, "preprocess", {"image_size": 64}),
    (PreprocessConfig, "preprocess", {"columns": ["a"]}),
    (ExtractConfig, "extract", {"text": "tfidf"}),
    (TrainConfig, "train", {"params": "C=1"}),
])
def test_wrong_type(cls, stage, section):
    with pytest.raises(UsageError) as exc:
        build(cls, {stage: section}, stage)
    key = next(iter(section))
    assert repr(key) in exc.value.message


def test_int_accepted_for_float():
    config = build(PreprocessConfig, {"preprocess": {"max_audio_seconds": 5}}, "preprocess")
    assert config.max_audio_seconds == 5


def test_any_typed_field_accepts_values():
    assert build(FuseConfig, {"fuse": {"dim": 8}}, "fuse").dim == 8


def test_wrong_type_from_override():
    with pytest.raises(UsageError):
        build(TrainConfig, {}, "train", {"seed": "abc"})


def test_to_dict_from_dict_round_trip():
    config = build(TrainConfig, {"train": {"model": "mlp", "params": {"epochs": 3}}}, "train")
    data = to_dict(config)
    assert data["params"] == {"epochs": 3}
    assert from_dict(TrainConfig, {**data, "unrelated": 1}) == config


# --- files --------------------------------------------------------------------------------


def test_read_config_none():
    assert read_config_file(None) == {}


def test_read_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("label: y\nseed: 3\nfuse: {method: tensor}\n", encoding="utf-8")
    data = read_config_file(path)
    assert data == {"label": "y", "seed": 3, "fuse": {"method": "tensor"}}
    assert build(FuseConfig, data, "fuse").method == "tensor"


def test_read_config_empty_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    assert read_config_file(path) == {}


def test_read_config_missing(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        read_config_file(tmp_path / "nope.yaml")


def test_read_config_invalid_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("fuse: {method: [concat\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not valid YAML"):
        read_config_file(path)


def test_read_config_not_utf8(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes("label: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(UsageError, match="not valid YAML"):
        read_config_file(path)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_read_config_not_a_mapping(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match="must hold a mapping"):
        read_config_file(path)


def test_read_config_unknown_top_level_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("preproces: {seed: 1}\n", encoding="utf-8")
    with pytest.raises(UsageError) as exc:
        read_config_file(path)
    assert exc.value.hint == "did you mean 'preprocess'?"

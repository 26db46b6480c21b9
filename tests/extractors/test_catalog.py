"""The extractor catalog behind `mmcli extract --list` and `--show-config`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from mmcli.config import ExtractConfig, build
from mmcli.extractors import EXTRACTORS, build_extractor
from mmcli.extractors.catalog import (
    all_extractors,
    default_config_yaml,
    describe,
    format_list,
    markdown_reference,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "extractors.md"


@pytest.mark.parametrize("name", EXTRACTORS.names())
def test_every_extractor_documents_dimension_and_every_parameter(name):
    info = describe(name)
    assert info.summary and info.dimension
    fields = [f.name for f in dataclasses.fields(EXTRACTORS.get(name).Params)]
    assert [p.name for p in info.params] == fields
    assert all(p.help for p in info.params), [p.name for p in info.params if not p.help]


def test_list_names_every_extractor_by_kind():
    text = format_list()
    for info in all_extractors():
        assert f"\n  {info.name}\n" in text
    assert "audio (default: mfcc, spectral, prosody, frames(auto))" in text
    assert "NAME(auto), e.g. frames(auto), uses the extractor only where it suits" in text
    assert text.index("image (default: color_hist, hog)") < text.index("\n  hog\n") \
        < text.index("audio (default: ") < text.index("\n  mfcc\n")
    assert "bins = 16  histogram bins per channel" in text
    assert "stats = [mean, std]" in text and "``" not in text


@pytest.mark.parametrize("name", EXTRACTORS.names())
def test_show_config_is_a_valid_config_with_the_defaults(name):
    data = yaml.safe_load(default_config_yaml(name))
    config = build(ExtractConfig, data, "extract")
    kind = EXTRACTORS.tags(name)["kind"]
    assert getattr(config, kind) == [name]
    params = config.params[name]
    defaults = {p.name: p.default for p in describe(name).params if p.name != "seed"}
    assert params == defaults
    if params.get("model") != "":  # cnn and the pretrained backbones need a model: no default
        build_extractor(name, kind, params)


def test_docs_describe_every_extractor_and_parameter():
    docs = DOCS.read_text(encoding="utf-8")
    for info in all_extractors():
        assert f"### `{info.name}` ({info.kind})" in docs
        for p in info.params:
            assert f"| `{p.name}` |" in docs
    assert markdown_reference() in docs, "regenerate: python bench/extractors_comparison.py " \
        "--reference"


def test_default_config_file_matches_the_extractor_defaults():
    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "configs" / "default.yaml").read_text(encoding="utf-8"))
    config = build(ExtractConfig, data, "extract")
    fresh = ExtractConfig()
    for kind in ("image", "audio", "text", "numeric", "categorical"):
        assert getattr(config, kind) == getattr(fresh, kind)
        for name in (n.removesuffix("(auto)") for n in getattr(config, kind)):
            defaults = {p.name: p.default for p in describe(name).params if p.name != "seed"}
            assert config.params.get(name) == defaults, name

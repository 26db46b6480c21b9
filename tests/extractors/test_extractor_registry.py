"""The extractor registry: names, kinds, typos."""

from __future__ import annotations

import pytest

from mmcli.errors import UsageError
from mmcli.extractors import EXTRACTORS, Extractor, build_extractor
from mmcli.registry import Registry


def test_registered_names_and_kinds():
    assert EXTRACTORS.names(kind="image") == ["clip_image", "cnn", "color_hist", "hf_image",
                                              "hog", "lbp", "pixels", "pixels_pca", "timm"]
    assert EXTRACTORS.names(kind="audio") == ["chroma", "frames", "hf_audio", "logmel", "mfcc",
                                               "prosody", "spectral"]
    assert EXTRACTORS.names(kind="text") == ["clip_text", "doc2vec", "fasttext", "hf_text",
                                             "sentence_transformers", "tfidf", "tokens",
                                             "word2vec"]
    assert EXTRACTORS.names(kind="numeric") == ["numeric"]
    assert EXTRACTORS.names(kind="categorical") == ["onehot"]
    assert "mfcc" in EXTRACTORS and "nope" not in EXTRACTORS


def test_did_you_mean():
    with pytest.raises(UsageError) as exc:
        EXTRACTORS.get("colr_hist")
    assert "'colr_hist'" in exc.value.message
    assert exc.value.hint == "did you mean 'color_hist'?"


def test_no_close_match_lists_choices():
    with pytest.raises(UsageError) as exc:
        EXTRACTORS.get("qqqqqqqq", where="extract.image")
    assert "extract.image" in exc.value.message
    assert "color_hist" in exc.value.hint and "word2vec" in exc.value.hint


def test_build_extractor_wrong_kind():
    with pytest.raises(UsageError) as exc:
        build_extractor("tfidf", "image", {})
    assert "text" in exc.value.message and "image" in exc.value.message
    assert "color_hist" in exc.value.hint


def test_build_extractor_typo():
    with pytest.raises(UsageError, match="did you mean 'word2vec'"):
        build_extractor("word2vek", "text", {})


def test_build_extractor_returns_instance():
    ext = build_extractor("pixels", "image", {"size": 4})
    assert isinstance(ext, Extractor) and ext.params.size == 4 and ext.name == "pixels"


def test_register_twice_is_an_error():
    reg: Registry = Registry("thing")

    @reg.register("a", kind="x")
    class A:
        pass

    assert reg.get("a") is A and A.name == "a" and reg.tags("a") == {"kind": "x"}
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(type("B", (), {}))

"""The extractor contract, checked for every registered extractor.

Shape (n, dim_), float32, determinism, state round trip through files, transform before fit,
unknown parameters.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mmcli import artifacts
from mmcli.dataset import AudioClips
from mmcli.errors import UsageError
from mmcli.extractors import EXTRACTORS, build_extractor
from mmcli.extractors.base import NotFittedError

from .helpers import write_tiny_cnn, write_word2vec_text

N = 12
WORDS = ["fire", "apple", "grass", "leaf", "sea", "sky", "the", "a", "small", "photo"]


def make_data(kind: str, n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "image":
        return rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    if kind == "audio":
        lengths = [100 if k == 0 else 800 + 40 * k for k in range(n)]  # one clip < n_fft
        return AudioClips([rng.normal(0, 0.3, m).astype(np.float32) for m in lengths], 8000)
    if kind == "text":
        return [" ".join(rng.choice(WORDS, 5)) for _ in range(n)]
    if kind == "numeric":
        x = rng.normal(0, 1, n).astype(np.float32)
        x[1] = np.nan
        return x
    if kind == "categorical":
        return [["red", "green", "blue", ""][k % 4] for k in range(n)]
    raise AssertionError(kind)


CASES = [
    ("color_hist", {}),
    ("color_hist", {"space": "hsv", "bins": 8}),
    ("pixels", {}),
    ("pixels", {"size": 4, "grayscale": True}),
    ("pixels", {"size": 0}),
    ("hog", {"size": 32}),
    ("lbp", {}),
    ("lbp", {"points": 16, "radius": 2.0, "grid": 1}),
    ("pixels_pca", {"size": 8, "components": 5}),
    ("pixels_pca", {"size": 4, "grayscale": True, "whiten": True}),
    ("cnn", {"input_size": 16, "batch_size": 5}),
    ("mfcc", {"n_mfcc": 13}),
    ("mfcc", {"n_mfcc": 8, "deltas": 2, "stats": ["mean", "p10", "p90", "max"]}),
    ("logmel", {"n_mels": 16}),
    ("chroma", {}),
    ("spectral", {"stats": ["median", "std"]}),
    ("prosody", {}),
    ("prosody", {"fmin": 80.0, "fmax": 300.0, "frame_length": 512, "hop_length": 80}),
    ("frames", {"n_frames": 10, "n_mels": 8}),
    ("frames", {"n_frames": 6, "n_mels": 8, "mode": "pad"}),
    ("tfidf", {}),
    ("tokens", {"max_len": 4}),
    ("tfidf", {"svd_components": 4, "chars": "off"}),
    ("tfidf", {"chars": "off", "svd_components": 0}),
    ("word2vec", {"vector_size": 16, "epochs": 5}),
    ("word2vec", {"pretrained": "PRETRAINED"}),
    ("fasttext", {"vector_size": 8, "epochs": 3, "bucket": 1000}),
    ("doc2vec", {"vector_size": 8, "epochs": 5}),
    ("numeric", {}),
    ("numeric", {"scaling": "robust", "impute": "median"}),
    ("numeric", {"scaling": "minmax", "missing_indicator": "never"}),
    ("onehot", {}),
    ("onehot", {"max_categories": 2, "unknown": "column"}),
    # pretrained backbones: tiny random models (tests/extractors/conftest.py)
    ("hf_text", {"pooling": "max", "batch_size": 4}),
    ("hf_image", {"pooling": "cls"}),
    ("hf_audio", {"max_seconds": 0.05, "batch_size": 4}),  # clips cut to one length
    ("sentence_transformers", {}),
    ("clip_image", {"batch_size": 5}),
    ("clip_text", {"normalize": False}),
    ("timm", {}),
]
#: pretrained extractor -> its tiny model (tests/extractors/conftest.py)
PRETRAINED = {"hf_text": "bert", "hf_image": "vit", "hf_audio": "wav2vec2",
              "sentence_transformers": "sentence", "clip_image": "open_clip",
              "clip_text": "open_clip", "timm": "timm"}
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in p.items()) or 'default'}" for name, p in CASES]


def kind_of(name: str) -> str:
    return EXTRACTORS.tags(name)["kind"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("extractor-files")
    return {"cnn": str(write_tiny_cnn(root / "tiny.pt")),
            "pretrained": str(write_word2vec_text(root / "vectors.txt", WORDS[:7] + ["Sea"]))}


@pytest.fixture(autouse=True)
def _files(files, request):
    FILES.update(files)
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("name") in PRETRAINED:
        FILES["tiny"] = request.getfixturevalue("tiny_models")  # built on first use only
        request.getfixturevalue("embedding_cache")


FILES: dict[str, str] = {}


def with_files(name: str, params: dict) -> dict:
    params = dict(params)
    if name == "cnn":
        params["model"] = FILES["cnn"]
    if name in PRETRAINED:
        params["model"] = str(FILES["tiny"][PRETRAINED[name]])
    if params.get("pretrained") == "PRETRAINED":
        params["pretrained"] = FILES["pretrained"]
    return params


def fitted(name: str, params: dict):
    data = make_data(kind_of(name))
    extractor = build_extractor(name, kind_of(name), with_files(name, params))
    return extractor.fit(data if extractor.needs_fit else None), data


def test_every_extractor_is_covered():
    assert sorted({name for name, _ in CASES}) == EXTRACTORS.names()


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_shape_and_dtype(name, params):
    extractor, data = fitted(name, params)
    out = extractor.transform(data)
    assert isinstance(extractor.dim_, int) and extractor.dim_ >= 1
    assert out.shape == (N, extractor.dim_)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert np.ptp(out) > 0  # not a constant output


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_transform_of_a_slice_matches(name, params):
    extractor, data = fitted(name, params)
    full = extractor.transform(data)
    if isinstance(data, AudioClips):
        part = AudioClips(data.clips[3:7], data.sample_rate)
    else:
        part = data[3:7]
    np.testing.assert_array_equal(extractor.transform(part), full[3:7])


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_deterministic(name, params):
    a, data = fitted(name, params)
    b, _ = fitted(name, params)
    np.testing.assert_array_equal(a.transform(data), b.transform(data))


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_state_round_trip(name, params, tmp_path):
    extractor, data = fitted(name, params)
    state, arrays = extractor.get_state()
    assert state["name"] == name and state["dim"] == extractor.dim_
    artifacts.save_state(tmp_path, "x", state, arrays)  # JSON + npz, no pickle
    state2, arrays2 = artifacts.load_state(tmp_path, "x")
    files = {}
    for suffix, source in extractor.state_files().items():  # as the extract stage does
        files[suffix] = tmp_path / f"x.{suffix}"
        shutil.copyfile(source, files[suffix])
    assert sorted(files) == state.get("files", [])
    restored = EXTRACTORS.get(name).from_state(state2, arrays2, files)
    assert restored.dim_ == extractor.dim_
    other = make_data(kind_of(name), seed=1)  # data the extractor was not fitted on
    np.testing.assert_array_equal(restored.transform(data), extractor.transform(data))
    np.testing.assert_array_equal(restored.transform(other), extractor.transform(other))


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_transform_before_fit(name, params):
    extractor = build_extractor(name, kind_of(name), with_files(name, params))
    with pytest.raises(NotFittedError, match="fit"):
        extractor.transform(make_data(kind_of(name)))


@pytest.mark.parametrize("name", sorted({name for name, _ in CASES}))
def test_unknown_param(name):
    with pytest.raises(UsageError) as exc:
        build_extractor(name, kind_of(name), {"no_such_param": 1})
    assert "no_such_param" in exc.value.message and name in exc.value.message


@pytest.mark.parametrize("name", sorted({name for name, _ in CASES}))
def test_params_dataclass_has_defaults(name):
    extractor = build_extractor(name, kind_of(name), with_files(name, {}))
    assert extractor.dim_ is None


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_empty_batch(name, params):
    extractor, data = fitted(name, params)
    empty = AudioClips([], data.sample_rate) if isinstance(data, AudioClips) else data[:0]
    assert extractor.transform(empty).shape == (0, extractor.dim_)

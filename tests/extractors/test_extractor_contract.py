"""The extractor contract, checked for every registered extractor.

Shape (n, dim_), float32, determinism, state round trip through files, transform before fit,
unknown parameters.
"""

from __future__ import annotations

import numpy as np
import pytest

from mmcli import artifacts
from mmcli.dataset import AudioClips
from mmcli.errors import UsageError
from mmcli.extractors import EXTRACTORS, build_extractor
from mmcli.extractors.base import NotFittedError

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
    ("mfcc", {"n_mfcc": 13}),
    ("tfidf", {}),
    ("word2vec", {"vector_size": 16, "epochs": 5}),
    ("numeric", {}),
    ("onehot", {}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in p.items()) or 'default'}" for name, p in CASES]


def kind_of(name: str) -> str:
    return EXTRACTORS.tags(name)["kind"]


def fitted(name: str, params: dict):
    data = make_data(kind_of(name))
    extractor = build_extractor(name, kind_of(name), dict(params))
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
    restored = EXTRACTORS.get(name).from_state(state2, arrays2)
    assert restored.dim_ == extractor.dim_
    other = make_data(kind_of(name), seed=1)  # data the extractor was not fitted on
    np.testing.assert_array_equal(restored.transform(data), extractor.transform(data))
    np.testing.assert_array_equal(restored.transform(other), extractor.transform(other))


@pytest.mark.parametrize("name, params", CASES, ids=IDS)
def test_transform_before_fit(name, params):
    extractor = build_extractor(name, kind_of(name), dict(params))
    with pytest.raises(NotFittedError, match="fit"):
        extractor.transform(make_data(kind_of(name)))


@pytest.mark.parametrize("name", sorted({name for name, _ in CASES}))
def test_unknown_param(name):
    with pytest.raises(UsageError) as exc:
        build_extractor(name, kind_of(name), {"no_such_param": 1})
    assert "no_such_param" in exc.value.message and name in exc.value.message


@pytest.mark.parametrize("name", sorted({name for name, _ in CASES}))
def test_params_dataclass_has_defaults(name):
    extractor = build_extractor(name, kind_of(name), None)
    assert extractor.dim_ is None

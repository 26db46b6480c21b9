"""Fixed fusion operators: dimensions, normalisation, determinism, state."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli import artifacts
from mmcli.errors import UsageError
from mmcli.fusion import FUSIONS, Fusion

METHODS = ["concat", "sum", "product", "tensor"]


def make_blocks(n: int = 40, dims=(30, 5, 1), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # very different scales per block, and one constant feature
    blocks = [rng.normal(loc=10 * k, scale=10.0 ** k, size=(n, d)).astype(np.float32)
              for k, d in enumerate(dims)]
    blocks[0][:, 0] = 7.0
    return blocks


def split(blocks, a, b):
    return [x[a:b] for x in blocks]


def test_registered():
    assert FUSIONS.names() == sorted(METHODS)


def test_concat_dims_and_block_normalisation():
    blocks = make_blocks()
    fusion = FUSIONS.get("concat")().fit(blocks)
    out = fusion.transform(blocks)
    assert out.shape == (40, 36) and out.dtype == np.float32
    for a, b in ((0, 30), (30, 35), (35, 36)):
        part = out[:, a:b].astype(np.float64)
        np.testing.assert_allclose(part.mean(axis=0), 0, atol=1e-5)
        # the whole block has unit total variance: blocks weigh the same
        assert part.var(axis=0).sum() == pytest.approx(1.0, rel=1e-4)
    # relative scale inside a block is kept (not per-feature standardised)
    raw = blocks[0][:, 1:].astype(np.float64)
    ratio = out[:, 1:30].std(axis=0) / raw.std(axis=0)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)


def test_normalisation_uses_fit_statistics_only():
    blocks = make_blocks(n=60)
    train, new = split(blocks, 0, 40), split(blocks, 40, 60)
    fusion = FUSIONS.get("concat")().fit(train)
    # new rows are centred and scaled with the train rows' mean and total standard deviation
    expected = np.hstack([(x - t.mean(0, dtype=np.float64)) / np.sqrt(t.var(0, dtype=np.float64)
                                                                       .sum())
                          for x, t in zip(new, train)])
    np.testing.assert_allclose(fusion.transform(new), expected, rtol=1e-4, atol=1e-4)
    # so a shift of the new rows shows in the output (the batch's own statistics hide it)
    shifted = fusion.transform([x + 1000.0 for x in new])
    assert (shifted[:, :30].mean() - fusion.transform(new)[:, :30].mean()) > 1.0


@pytest.mark.parametrize("method", METHODS)
def test_a_row_is_fused_the_same_alone_or_in_a_batch(method):
    blocks = make_blocks(n=60)
    fusion = FUSIONS.get(method)(3).fit(split(blocks, 0, 40))
    batch = fusion.transform(split(blocks, 40, 60))
    for k in (0, 7):
        np.testing.assert_allclose(fusion.transform(split(blocks, 40 + k, 41 + k))[0], batch[k],
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method, dim, expected", [
    ("sum", 4, 4), ("product", 6, 6), ("tensor", 3, 4 ** 3), ("tensor", 2, 3 ** 3),
    ("sum", None, 16), ("product", None, 16),
])
def test_output_dims(method, dim, expected):
    blocks = make_blocks()
    fusion = FUSIONS.get(method)(dim).fit(blocks)
    out = fusion.transform(blocks)
    assert out.shape == (40, expected)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("n_blocks", [1, 2, 3])
def test_tensor_default_dim(n_blocks):
    blocks = make_blocks(dims=(6, 3, 2)[:n_blocks])
    fusion = FUSIONS.get("tensor")().fit(blocks)
    dim = fusion.dim_used_
    assert fusion.transform(blocks).shape[1] == (dim + 1) ** n_blocks
    assert (dim + 1) ** n_blocks <= 4096


def test_tensor_contains_unimodal_terms():
    blocks = make_blocks(dims=(4, 3))
    fusion = FUSIONS.get("tensor")(2).fit(blocks)
    out = fusion.transform(blocks)
    assert out.shape == (40, 9)
    # column 0 is 1 * 1 (constant before output standardisation): standardises to 0
    np.testing.assert_array_equal(out[:, 0], 0)


def test_tensor_too_large():
    with pytest.raises(UsageError, match="tensor fusion"):
        FUSIONS.get("tensor")(64).fit(make_blocks(dims=(2, 2, 2, 2)))


@pytest.mark.parametrize("method", ["sum", "product"])
def test_projection_lifts_small_blocks(method):
    blocks = make_blocks(dims=(30, 1))
    fusion = FUSIONS.get(method)(8).fit(blocks)
    assert [p.shape for p in fusion.proj_] == [(30, 8), (1, 8)]
    assert fusion.transform(blocks).shape == (40, 8)


def test_projected_blocks_standardised_on_train():
    blocks = make_blocks()
    fusion = FUSIONS.get("sum")(5).fit(blocks)
    out = fusion.transform(blocks).astype(np.float64)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_deterministic(method):
    blocks = make_blocks()
    a = FUSIONS.get(method)(3, seed=5).fit(blocks).transform(blocks)
    b = FUSIONS.get(method)(3, seed=5).fit(blocks).transform(blocks)
    np.testing.assert_array_equal(a, b)


def test_seed_matters_for_random_lift():
    blocks = make_blocks(dims=(30, 1))
    a = FUSIONS.get("sum")(8, seed=0).fit(blocks).transform(blocks)
    b = FUSIONS.get("sum")(8, seed=1).fit(blocks).transform(blocks)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("method", METHODS)
def test_state_round_trip(method, tmp_path):
    blocks = make_blocks(n=50)
    train, rest = split(blocks, 0, 35), split(blocks, 35, 50)
    fusion = FUSIONS.get(method)(3, seed=2).fit(train)
    params, arrays = fusion.get_state()
    artifacts.save_state(tmp_path, "fuse", params, arrays)
    params2, arrays2 = artifacts.load_state(tmp_path, "fuse")
    restored = Fusion.from_state(params2, arrays2)
    assert type(restored) is type(fusion)
    np.testing.assert_array_equal(restored.transform(rest), fusion.transform(rest))
    np.testing.assert_array_equal(restored.transform(train), fusion.transform(train))


@pytest.mark.parametrize("method", METHODS)
def test_transform_before_fit(method):
    with pytest.raises(RuntimeError, match="fit"):
        FUSIONS.get(method)().transform(make_blocks())


def test_unknown_method():
    with pytest.raises(UsageError) as exc:
        FUSIONS.get("tensr")
    assert exc.value.hint == "did you mean 'tensor'?"


@pytest.mark.parametrize("dim", [0, -3, 2.5, "8"])
def test_bad_dim(dim):
    with pytest.raises(UsageError):
        FUSIONS.get("sum")(dim)

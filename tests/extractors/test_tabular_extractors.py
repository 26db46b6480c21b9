"""Numeric and categorical extractors."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.errors import UsageError
from mmcli.extractors import build_extractor

NAN = np.nan


def numeric(mode: str, train):
    return build_extractor("numeric", "numeric", {"missing_indicator": mode}).fit(
        np.asarray(train, dtype=np.float32))


def test_numeric_indicator_when_train_has_missing():
    ext = numeric("auto", [0.5, NAN, -1.0])
    assert ext.dim_ == 2
    out = ext.transform(np.array([2.0, NAN], dtype=np.float32))
    np.testing.assert_array_equal(out, [[2.0, 0.0], [-0.25, 1.0]])  # the train mean


def test_numeric_no_indicator_when_train_complete():
    ext = numeric("auto", [0.5, 1.5])
    assert ext.dim_ == 1
    # a value missing only outside train still becomes the train mean
    np.testing.assert_array_equal(ext.transform(np.array([3.0, NAN], np.float32)), [[3.0], [1.0]])


def test_numeric_always_and_never():
    assert numeric("always", [1.0, 2.0]).dim_ == 2
    never = numeric("never", [1.0, NAN])
    assert never.dim_ == 1
    np.testing.assert_array_equal(never.transform(np.array([NAN], np.float32)), [[1.0]])


def scaled(train, test, **params):
    ext = build_extractor("numeric", "numeric", params).fit(np.asarray(train, np.float32))
    return ext.transform(np.asarray(test, np.float32))


@pytest.mark.parametrize("scaling, expected", [
    ("none", [0.0, 10.0, 2.0, 4.0]),
    # after imputing the median 2: train is 0 1 2 2 5 10, mean 10/3, std sqrt(101/9)
    ("standard", (np.array([0.0, 10.0, 2.0, 4.0]) - 10 / 3) / np.sqrt(101 / 9)),
    ("minmax", [0.0, 1.0, 0.2, 0.4]),
    ("robust", [-2 / 3, 8 / 3, 0.0, 2 / 3]),  # median 2, IQR 4.25 - 1.25
])
def test_numeric_scaling_is_fitted_on_train(scaling, expected):
    train = [0.0, 1.0, 2.0, 5.0, 10.0, NAN]
    out = scaled(train, [0.0, 10.0, 2.0, 4.0], scaling=scaling, impute="median")
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-5)
    assert out.shape == (4, 2)  # the indicator: train had a missing value


def test_numeric_impute_median_then_scale():
    out = scaled([1.0, 2.0, 100.0, NAN], [NAN], impute="median", scaling="minmax")
    np.testing.assert_allclose(out, [[(2.0 - 1.0) / 99.0, 1.0]], rtol=1e-6)
    out = scaled([1.0, 2.0, 100.0, NAN], [NAN], impute="mean", missing_indicator="never")
    np.testing.assert_allclose(out, [[103.0 / 3]], rtol=1e-6)


def test_numeric_constant_or_empty_train():
    np.testing.assert_array_equal(scaled([3.0, 3.0], [3.0, 4.0], scaling="standard"), [[0], [1]])
    np.testing.assert_array_equal(scaled([NAN, NAN], [NAN, 2.0], scaling="robust"),
                                  [[0, 1], [2, 0]])


@pytest.mark.parametrize("params", [{"scaling": "zscore"}, {"impute": "mode"},
                                    {"missing_indicator": "yes"}, {"max_categories": -1},
                                    {"unknown": "error"}])
def test_bad_tabular_params(params):
    kind = "categorical" if {"max_categories", "unknown"} & set(params) else "numeric"
    name = "onehot" if kind == "categorical" else "numeric"
    with pytest.raises(UsageError) as exc:
        build_extractor(name, kind, params)
    assert next(iter(params)) in exc.value.message and name in exc.value.message


def test_onehot_max_categories_keeps_the_most_frequent():
    ext = onehot(["b", "a", "c", "c", "b", "c", "d"], max_categories=2)
    assert ext.categories_ == ["b", "c"] and ext.dim_ == 2
    np.testing.assert_array_equal(ext.transform(["c", "a", "b"]), [[0, 1], [0, 0], [1, 0]])


def test_onehot_unknown_column():
    ext = onehot(["x", "y", "y", "z"], max_categories=1, unknown="column")
    assert ext.categories_ == ["y"] and ext.dim_ == 2
    np.testing.assert_array_equal(ext.transform(["y", "x", "new", ""]),
                                  [[1, 0], [0, 1], [0, 1], [0, 1]])


def onehot(train, **params):
    return build_extractor("onehot", "categorical", params).fit(train)


def test_onehot_sorted_categories():
    ext = onehot(["b", "a", "c", "a", ""])
    assert ext.categories_ == ["a", "b", "c"]
    out = ext.transform(["c", "a", "", "b"])
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 0, 0], [0, 1, 0]])


def test_onehot_unknown_category_is_zeros():
    train, test = ["cat", "dog", "cat"], ["cat", "zebra"]
    ext = onehot(train)
    assert "zebra" not in ext.categories_
    np.testing.assert_array_equal(ext.transform(test), [[1, 0], [0, 0]])


def test_onehot_min_count():
    ext = onehot(["a", "a", "b", "c", "c"], min_count=2)
    assert ext.categories_ == ["a", "c"]
    np.testing.assert_array_equal(ext.transform(["b"]), [[0, 0]])


def test_onehot_no_categories():
    ext = onehot(["", ""])
    assert ext.dim_ == 1
    np.testing.assert_array_equal(ext.transform(["x"]), [[0]])


def test_wrong_param_type_value():
    with pytest.raises(UsageError):
        build_extractor("onehot", "categorical", {"min_count": 1, "mincount": 2})

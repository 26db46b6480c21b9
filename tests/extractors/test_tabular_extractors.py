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
    np.testing.assert_array_equal(out, [[2.0, 0.0], [0.0, 1.0]])


def test_numeric_no_indicator_when_train_complete():
    ext = numeric("auto", [0.5, 1.5])
    assert ext.dim_ == 1
    # a value missing only outside train still becomes 0 (the train mean after scaling)
    np.testing.assert_array_equal(ext.transform(np.array([3.0, NAN], np.float32)), [[3.0], [0.0]])


def test_numeric_always_and_never():
    assert numeric("always", [1.0, 2.0]).dim_ == 2
    never = numeric("never", [1.0, NAN])
    assert never.dim_ == 1
    np.testing.assert_array_equal(never.transform(np.array([NAN], np.float32)), [[0.0]])


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

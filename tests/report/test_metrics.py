"""mmcli.report.metrics on small arrays, checked against scikit-learn and by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.metrics import log_loss as sk_log_loss

from mmcli.report import metrics as M

CLASSES = ["a", "b", "c"]


def test_classification_metrics_unseen_label_appended():
    m = M.classification_metrics(["a", "b", "c", "d"], ["a", "b", "b", "a"], CLASSES)
    assert m["n"] == 4 and m["accuracy"] == 0.5
    assert m["confusion_matrix"]["labels"] == ["a", "b", "c", "d"]
    # never predicted: precision is 0/0, undefined
    assert m["per_class"]["d"] == {"precision": None, "recall": 0.0, "f1": 0.0, "support": 1}


def test_classification_metrics_match_sklearn_with_a_predicted_class_absent_from_the_split():
    """The model predicts "c", which the split lacks, and never meets nor predicts "e". Macro F1
    was averaged over the classes present (a, b): 0.833; scikit-learn says 0.556."""
    classes = ["a", "b", "c", "e"]
    y_true, y_pred = ["a", "a", "b", "b"], ["a", "a", "b", "c"]
    m = M.classification_metrics(y_true, y_pred, classes)
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)  # 0.556: a, b and c
    assert m["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        expected_bal = balanced_accuracy_score(y_true, y_pred)
    assert m["balanced_accuracy"] == pytest.approx(expected_bal) == 0.75  # recall of a and b
    pc = m["per_class"]
    assert pc["c"] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0}
    assert pc["e"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    # macro F1 is the mean of the defined per-class F1s
    assert m["macro_f1"] == pytest.approx(np.mean([c["f1"] for c in pc.values()
                                                   if c["f1"] is not None]))
    # a perfect model on a split lacking some classes scores 1
    perfect = M.classification_metrics(["a", "b"], ["a", "b"], classes)
    assert perfect["macro_f1"] == perfect["weighted_f1"] == perfect["balanced_accuracy"] == 1.0


def test_macro_f1_of_the_search_is_the_same():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2])
    assert M.macro_f1(y_true, y_pred, np.arange(4)) == pytest.approx(
        f1_score(y_true, y_pred, average="macro"))


def test_roc_auc_skips_a_class_absent_from_the_split():
    y = ["a", "a", "b", "b"]  # no "c"
    proba = np.array([[.8, .1, .1], [.4, .5, .1], [.3, .6, .1], [.6, .3, .1]])
    auc = M.roc_auc_per_class(y, proba, CLASSES)
    assert auc[2] is None
    assert auc[0] == pytest.approx(roc_auc_score([1, 1, 0, 0], proba[:, 0]))
    assert M.mean_defined(auc) == pytest.approx((auc[0] + auc[1]) / 2)
    p = M.probabilistic_metrics(y, proba, CLASSES)
    assert p["roc_auc"]["c"] is None and p["average_precision"]["c"] is None
    assert p["roc_auc_macro"] == pytest.approx((auc[0] + auc[1]) / 2)


def test_log_loss_matches_sklearn_and_clips_unseen_labels():
    y = ["a", "b", "c", "a"]
    proba = np.array([[.7, .2, .1], [.1, .8, .1], [.2, .2, .6], [.5, .4, .1]])
    assert M.log_loss(y, proba, CLASSES) == pytest.approx(
        sk_log_loss(y, proba, labels=CLASSES))
    unseen = M.log_loss(["z"], np.array([[.5, .5, 0.0]]), CLASSES)
    assert unseen == pytest.approx(-np.log(M.EPS))


def test_ece_by_hand_and_zero_when_calibrated():
    # 4 items at confidence 0.9 (3 right) and 2 at 0.55 (1 right): bins 14 and 9
    conf = np.array([.9, .9, .9, .9, .55, .55])
    correct = np.array([1, 1, 1, 0, 1, 0], dtype=bool)
    expected = 4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(0.5 - 0.55)
    assert M.expected_calibration_error(conf, correct) == pytest.approx(expected)
    bins = M.calibration_bins(conf, correct)
    assert bins["count"].sum() == 6 and bins["count"][13] == 4 and bins["count"][8] == 2
    # upper edges are inside their bin: confidence 1/15 falls in the first bin
    assert M.calibration_bins(np.array([1 / 15, 1.0]), np.array([1, 1]))["count"][[0, 14]] \
        .tolist() == [1, 1]
    assert M.expected_calibration_error(np.array([.75] * 4), np.array([1, 1, 1, 0])) \
        == pytest.approx(0.0)


def test_bootstrap_matches_a_slow_reference_and_is_seeded():
    rng = np.random.default_rng(1)
    y_true = [CLASSES[k] for k in rng.integers(0, 3, 40)]
    # "d" is predicted, never true
    y_pred = [t if rng.random() < 0.7 else "abcd"[rng.integers(0, 4)] for t in y_true]
    ci = M.bootstrap_ci(y_true, y_pred, resamples=50, seed=5)
    assert ci == M.bootstrap_ci(y_true, y_pred, resamples=50, seed=5)
    assert ci != M.bootstrap_ci(y_true, y_pred, resamples=50, seed=6)

    draws = np.random.default_rng(5).integers(0, 40, size=(50, 40))
    acc, f1, bal = [], [], []
    for idx in draws:
        t, p = [y_true[i] for i in idx], [y_pred[i] for i in idx]
        m = M.classification_metrics(t, p, [*CLASSES, "d"])
        acc.append(m["accuracy"])
        f1.append(m["macro_f1"])
        bal.append(m["balanced_accuracy"])
    assert ci["accuracy"] == pytest.approx(list(np.percentile(acc, [2.5, 97.5])))
    assert ci["macro_f1"] == pytest.approx(list(np.percentile(f1, [2.5, 97.5])))
    assert ci["balanced_accuracy"] == pytest.approx(list(np.percentile(bal, [2.5, 97.5])))
    point = np.mean([a == b for a, b in zip(y_true, y_pred)])
    assert ci["accuracy"][0] <= point <= ci["accuracy"][1]
    assert ci["level"] == 0.95 and ci["resamples"] == 50


def test_bootstrap_accuracy_of_many_rows_is_bootstrap_ci_of_each():
    """The noise curves' intervals: every row on the same resamples, each row's interval the
    accuracy interval of bootstrap_ci (also across batches of resamples)."""
    rng = np.random.default_rng(2)
    y_true = [CLASSES[k] for k in rng.integers(0, 3, 30)]
    preds = [[t if rng.random() < q else "x" for t in y_true] for q in (0.2, 0.6, 1.0)]
    right = [[a == b for a, b in zip(y_true, p)] for p in preds]
    for cells in (2_000_000, 70):  # one batch; batches of 2 resamples
        got = M.bootstrap_accuracy(right, resamples=40, seed=3, cells=cells)
        assert got == [M.bootstrap_ci(y_true, p, 40, 3, cells=cells)["accuracy"] for p in preds]
    assert got[2] == [1.0, 1.0]
    assert M.bootstrap_accuracy([[True, False]], resamples=0) == [[]]


def test_bootstrap_of_1000_resamples_is_fast_on_10k_items():  # (about 0.3 s)
    import time

    y = list(np.random.default_rng(0).choice(CLASSES, 10_000))
    start = time.perf_counter()
    ci = M.bootstrap_ci(y, y[::-1], resamples=1000)
    assert time.perf_counter() - start < 10
    assert 0.2 < ci["accuracy"][0] < ci["accuracy"][1] < 0.5


def test_regression_metrics_match_sklearn():
    y, p = np.array([1.0, 2.0, 3.0, 4.5]), np.array([1.5, 1.5, 3.5, 4.0])
    m = M.regression_metrics(y, p)
    assert m["n"] == 4
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert m["r2"] == pytest.approx(r2_score(y, p))
    assert M.regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"] is None
    with pytest.raises(ValueError):
        M.regression_metrics([1.0, 2.0], [1.0])
    ci = M.bootstrap_regression_ci(y, p, resamples=200)
    assert ci["mae"][0] <= m["mae"] <= ci["mae"][1]
    assert ci["rmse"][0] <= m["rmse"] <= ci["rmse"][1]

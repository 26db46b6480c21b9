"""Model selection by validation (model: auto) and the scale fix of the linear models."""

from __future__ import annotations

import numpy as np
import pytest

from mmcli.artifacts import Journal
from mmcli.blocks import Blocks
from mmcli.errors import UsageError
from mmcli.models import build_model, load_model, save_model
from mmcli.models import select as select_module
from mmcli.models.select import (
    Problem,
    check_select,
    leaderboard_rows,
    make_folds,
    select_model,
)

from .toy import blobs, three_blocks, two_modalities

FAST = {"candidates": ["logreg", "late_decision", "linear_svm"], "jobs": 1}


def problem(X, y, blocks=None, groups=None, cv=3, seed=0):
    folds, _ = make_folds(y, groups, cv, seed)
    layouts = [{"column": f"m{k}"} for k in range(len(blocks))] if blocks else None
    blocks = Blocks.from_ranges(blocks, layouts) if blocks else None
    return Problem(X, y, int(y.max()) + 1, blocks, folds, seed, "cpu")


def test_logreg_on_one_block_fits_like_sklearns_standardised_pipeline():
    """A concat fusion leaves each feature of a d-wide block a variance of ~1/d; logreg must
    not be regularised d times harder for it (issue: scale is not a regulariser)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    n, d = 300, 200
    y = np.arange(n) % 4
    X = rng.normal(0, 1, (n, d)) + np.random.default_rng(1).normal(0, 0.1, (4, d))[y]
    X = X - X.mean(0)
    X = (X / np.sqrt(X.var(0).sum())).astype(np.float32)  # what fuse's block scaler does
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    ref_acc = ref.fit(X, y).score(X, y)
    ours = build_model("logreg", {"C": 0.01}, 0, "cpu").fit(X, y, 4)
    acc = (ours.predict_proba(X).argmax(1) == y).mean()
    assert acc >= ref_acc - 1e-9 and ref_acc > 0.9
    unscaled = build_model("logreg", {"C": 0.01, "scale": "none"}, 0, "cpu").fit(X, y, 4)
    assert (unscaled.predict_proba(X).argmax(1) == y).mean() < ref_acc - 0.05  # the old bug


def test_scaler_is_saved_and_reloaded(tmp_path):
    X, y = blobs()
    for name in ("logreg", "linear_svm"):
        model = build_model(name, {}, 0, "cpu").fit(X * 100 + 7, y, 3)
        save_model(model, tmp_path / name, ["a", "b", "c"])
        again, _ = load_model(tmp_path / name)
        np.testing.assert_array_equal(again.predict_proba(X * 100 + 7),
                                      model.predict_proba(X * 100 + 7))


def test_linear_svm_probabilities_are_sklearns_calibrated_ones():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    for k in (2, 4):
        X, y = blobs(120, k=k, d=6, seed=k)
        X = X + np.random.default_rng(0).normal(0, 4, X.shape).astype(np.float32)
        ours = build_model("linear_svm", {}, 0, "cpu").fit(X, y, k)
        Xs = StandardScaler().fit_transform(X.astype(np.float64)).astype(np.float32)
        ref = CalibratedClassifierCV(LinearSVC(random_state=0, max_iter=5000),
                                     method="sigmoid", ensemble=False,
                                     cv=StratifiedKFold(3, shuffle=True, random_state=0))
        np.testing.assert_allclose(ours.predict_proba(X), ref.fit(Xs, y).predict_proba(Xs),
                                   atol=1e-6)


def test_folds_hold_groups_apart_and_stay_stratified():
    y = np.arange(120) % 3
    groups = [f"speaker{k // 4}" for k in range(120)]  # 30 speakers of 4 items
    folds, how = make_folds(y, groups, 3, 0)
    assert how == "3-fold group cv"
    seen = np.zeros(120, int)
    for fit_rows, scored in folds:
        assert not {groups[k] for k in fit_rows} & {groups[k] for k in scored}
        assert set(np.bincount(y[scored])) != {0}
        seen[scored] += 1
    assert (seen == 1).all()  # every row scored exactly once


def test_selection_scores_only_train_rows_and_is_deterministic(tmp_path):
    X, y, blocks = three_blocks(120)
    first = select_model(problem(X, y, blocks), FAST, 0, "3-fold cv")
    second = select_model(problem(X, y, blocks), FAST, 0, "3-fold cv")
    assert leaderboard_rows(first["leaderboard"]) == leaderboard_rows(second["leaderboard"])
    assert (first["model"], first["params"]) == (second["model"], second["params"])
    rows = leaderboard_rows(first["leaderboard"])
    assert [r["chosen"] for r in rows].count("yes") == 1 and rows[0]["chosen"] == "yes"
    assert {r["model"] for r in rows} == {"logreg", "late_decision", "linear_svm"}


def noisy(y: np.ndarray, every: int) -> np.ndarray:
    """``y`` with every ``every``-th label moved to the next class."""
    y = y.copy()
    y[::every] = (y[::every] + 1) % (y.max() + 1)
    return y


@pytest.mark.parametrize("every", [5, 7])
def test_racing_chooses_exactly_what_scoring_every_fold_chooses(every):
    X, y, blocks = three_blocks(120)
    p = problem(X, noisy(y, every), blocks)
    out = select_model(p, {**FAST, "drop_blocks": False}, 0, "cv")
    board = out["leaderboard"]
    full = [float(np.mean([select_module._fit_score(p, r["model"], r["params"], f)[0]
                           for f in range(len(p.folds))])) for r in board]
    stopped = [k for k, r in enumerate(board) if (r["skip"] or "").startswith("stopped")]
    for k, r in enumerate(board):
        assert r["cv_score"] == (None if k in stopped else full[k])
    winner = max(range(len(board)), key=lambda k: full[k])  # first of equals
    assert (out["model"], out["params"]) == (board[winner]["model"], board[winner]["params"])
    if every == 5:  # one setting is stopped after two folds; the winner is the first model
        assert len(stopped) == 1 and board[stopped[0]]["skip"].startswith("stopped after 2 of 3")
    else:  # a later candidate wins: racing never stopped what could still win
        assert out["model"] == "late_decision" and not stopped


def test_nothing_is_fitted_after_a_first_candidate_that_cannot_be_beaten(monkeypatch):
    X, y, blocks = three_blocks(90)  # logreg separates it: macro-F1 1.0 on every fold
    fits = []
    real = select_module._fit_score
    monkeypatch.setattr(select_module, "_fit_score",
                        lambda *a: fits.append(a[1]) or real(*a))
    out = select_model(problem(X, y, blocks), FAST, 0, "cv")
    assert set(fits) == {"logreg"} and out["model"] == "logreg"
    notes = [r["note"] for r in leaderboard_rows(out["leaderboard"]) if r["model"] != "logreg"
             or "without" in r["note"]]
    assert notes and all("stopped after 0 of 3 folds: cannot beat 1.0" in n for n in notes)


def test_a_killed_selection_resumes_from_its_journal(tmp_path, monkeypatch):
    X, y, blocks = three_blocks(90)
    p = problem(X, noisy(y, 5), blocks)
    first = select_model(p, FAST, 0, "cv", journal=Journal(tmp_path, "key"))
    records = (tmp_path / Journal.NAME).read_text().splitlines()
    assert len(records) > 10
    # a kill after half the fold scores (and in the middle of a line)
    half = len(records) // 2
    (tmp_path / Journal.NAME).write_text("\n".join(records[:half]) + "\n" + records[half][:9])
    fits = []
    real = select_module._fit_score
    monkeypatch.setattr(select_module, "_fit_score", lambda *a: fits.append(a) or real(*a))
    again = select_model(p, FAST, 0, "cv", journal=Journal(tmp_path, "key"))
    assert again["resumed"] == half - 1 and len(fits) == len(records) - half
    assert leaderboard_rows(again["leaderboard"]) == leaderboard_rows(first["leaderboard"])
    # another run's journal (another fingerprint) is not used
    other = select_model(p, FAST, 0, "cv", journal=Journal(tmp_path, "other"))
    assert other["resumed"] == 0


def test_parallel_workers_give_the_same_leaderboard():
    X, y, blocks = three_blocks(90)
    one = select_model(problem(X, y, blocks), {**FAST, "jobs": 1}, 0, "cv")
    two = select_model(problem(X, y, blocks), {**FAST, "jobs": 2}, 0, "cv")
    assert leaderboard_rows(one["leaderboard"]) == leaderboard_rows(two["leaderboard"])


def test_a_block_of_noise_is_dropped():
    X, y, blocks = two_modalities(150, 0)
    noise = np.random.default_rng(5).normal(0, 1, (150, 40)).astype(np.float32)
    X = np.hstack([X[:, :8], noise])  # A, then a wide block of pure noise
    blocks = [(0, 8), (8, 48)]
    out = select_model(problem(X, y, blocks), {"candidates": ["logreg"], "jobs": 1,
                                               "drop_margin": 0.0}, 0, "cv")
    rows = leaderboard_rows(out["leaderboard"])
    chosen = next(r for r in rows if r["chosen"])
    if out["model"] == "subset":
        assert out["params"]["keep"] == [0] and chosen["note"] == "without m1"
    else:  # a noise block that happens to cost nothing is kept: the rows must say so
        assert any(r["note"].startswith("without m1") for r in rows)


def test_time_limit_skips_the_candidates_not_started():
    X, y, blocks = three_blocks(60)
    y = y.copy()
    y[::5] = (y[::5] + 1) % (y.max() + 1)  # label noise: logreg can be beaten (no early stop)
    out = select_model(problem(X, y, blocks), {**FAST, "drop_blocks": False}, 1e-9, "cv")
    rows = leaderboard_rows(out["leaderboard"])
    assert out["model"] == "logreg"  # the first candidate always runs
    assert {r["note"] for r in rows if r["model"] != "logreg"} == {"skipped: time limit"}


def test_the_time_limit_is_an_estimate_that_slow_fits_and_cores_do_not_move(monkeypatch):
    """The budget charges each fold fit its estimated cost (fit_cost, from the data's shape)
    in the order the fits are asked for: the search stops exactly where the estimates reach
    the budget, however long the fits really take, and with one worker or two."""
    import time

    X, y, blocks = three_blocks(90)
    p = problem(X, noisy(y, 5), blocks)
    select = {**FAST, "drop_blocks": False}
    full = select_model(p, select, 0, "cv")
    runs = [r for r in full["leaderboard"] if r["skip"] is None]
    per_fold = [select_module.fit_cost(p, r) for r in runs]
    assert full["estimated"] == pytest.approx(3 * sum(per_fold))
    # a budget that the first candidate (6 settings x 3 folds) and 2 more fits reach
    budget = 3 * sum(c for r, c in zip(runs, per_fold) if r["model"] == "logreg")
    budget += 1.5 * per_fold[6]
    real = select_module._fit_score
    monkeypatch.setattr(select_module, "_fit_score",
                        lambda *a: time.sleep(0.02) or real(*a))  # a slower machine
    cut = [select_model(p, {**select, "jobs": jobs}, budget, "cv") for jobs in (1, 2)]
    assert leaderboard_rows(cut[0]["leaderboard"]) == leaderboard_rows(cut[1]["leaderboard"])
    later = [r for r in cut[0]["leaderboard"] if r["model"] != "logreg"]
    # fold 0 of every later setting is asked for first: two of them fit before the budget
    assert [r["skip"] for r in later[:2]] == ["time limit", "time limit"]
    assert all(r["skip"] == "time limit" for r in later)
    assert cut[0]["estimated"] == pytest.approx(budget - 1.5 * per_fold[6]
                                                + per_fold[6] + per_fold[7])


def test_a_resumed_search_under_a_time_limit_is_the_same_search(tmp_path):
    X, y, blocks = three_blocks(90)
    p = problem(X, noisy(y, 5), blocks)
    budget = select_model(p, FAST, 0, "cv")["estimated"] / 2
    first = select_model(p, FAST, budget, "cv", journal=Journal(tmp_path, "key"))
    records = (tmp_path / Journal.NAME).read_text().splitlines()
    half = len(records) // 2  # the first record is the journal's fingerprint
    (tmp_path / Journal.NAME).write_text("\n".join(records[:half]) + "\n")
    again = select_model(p, FAST, budget, "cv", journal=Journal(tmp_path, "key"))
    assert again["resumed"] == half - 1
    assert leaderboard_rows(again["leaderboard"]) == leaderboard_rows(first["leaderboard"])
    assert again["estimated"] == first["estimated"]
    assert any(r["skip"] == "time limit" for r in first["leaderboard"])


def test_candidates_that_need_blocks_are_skipped_without_them():
    X, y = blobs(60)
    out = select_model(problem(X, y), FAST, 0, "cv")
    notes = {r["model"]: r["note"] for r in leaderboard_rows(out["leaderboard"])}
    assert notes["late_decision"].startswith("skipped: needs a concat fuse directory")


def test_a_failing_candidate_is_its_own_failure():
    X, y = blobs(30)  # 20 rows per fold fit: too few for hist_gb's own early-stopping split
    y = y.copy()
    y[::4] = (y[::4] + 1) % (y.max() + 1)  # label noise: logreg can be beaten (no early stop)
    out = select_model(problem(X, y), {"candidates": ["logreg", "hist_gb"], "jobs": 1},
                       0, "cv", params={"early_stopping": True})
    notes = {r["model"]: r["note"] for r in leaderboard_rows(out["leaderboard"])}
    assert out["model"] == "logreg" and notes["hist_gb"].startswith("failed: ")
    with pytest.raises(UsageError, match="no model candidate could be scored.*failed: "):
        select_model(problem(X, y), {"candidates": ["logreg", "linear_svm"], "jobs": 1},
                     0, "cv", params={"max_iter": -1})


@pytest.mark.parametrize("select, match", [
    ({"candidate": ["logreg"]}, "did you mean 'candidates'"),
    ({"candidates": ["logregg"]}, "did you mean 'logreg'"),
    ({"validation": "holdout"}, "auto, cv, val"),
    ({"cv": 1}, "at least 2"),
])
def test_bad_select_settings(select, match):
    with pytest.raises(UsageError, match=match):
        check_select(select)


def test_subset_model_round_trip(tmp_path):
    X, y, blocks = three_blocks(90)
    model = build_model("subset", {"model": "logreg", "keep": [0, 2]}, 0, "cpu")
    model.fit(X, y, 3, blocks=blocks)
    direct = build_model("logreg", {}, 0, "cpu").fit(X[:, [0, 1, 2, 3, 4, 5, 9]], y, 3)
    np.testing.assert_array_equal(model.predict_proba(X),
                                  direct.predict_proba(X[:, [0, 1, 2, 3, 4, 5, 9]]))
    save_model(model, tmp_path / "m", ["a", "b", "c"])
    again, _ = load_model(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    bad = build_model("subset", {"keep": [3]}, 0, "cpu")
    with pytest.raises(UsageError, match="keep"):
        bad.fit(X, y, 3, blocks=blocks)


def test_linear_svm_is_no_candidate_above_its_work_limit(monkeypatch):
    X, y, blocks = three_blocks(60)
    y = noisy(y, 5)
    p = problem(X, y, blocks)
    rows = leaderboard_rows(select_model(p, FAST, 0, "cv")["leaderboard"])
    assert all(not r["note"].startswith("skipped: too slow") for r in rows)
    work = len(p.folds[0][0]) * X.shape[1] * p.n_classes
    monkeypatch.setattr(select_module, "MAX_SVM_WORK", work - 1)
    rows = leaderboard_rows(select_model(p, FAST, 0, "cv")["leaderboard"])
    notes = {r["note"] for r in rows if r["model"] == "linear_svm"}
    assert notes == {f"skipped: too slow for {len(p.folds[0][0])} rows x {X.shape[1]} features "
                     f"x {p.n_classes} classes"}


def test_every_candidate_has_a_cost_model():
    """The budget charges every fold fit by the cost model: a new candidate needs its
    constants (measured with bench/select_cost.py)."""
    assert {c.model for c in select_module.default_candidates()} <= set(select_module.COST_MODEL)
    assert select_module.estimate("logreg", {"scale": "none"}, 100, 10, 2) < \
        select_module.estimate("logreg", {}, 100, 10, 2)

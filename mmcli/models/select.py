"""Model selection by validation: what ``train.model: auto`` (the default) does.

A fixed list of candidates, each a model and a small grid of its parameters, is scored on the
user's own data, and the best is refitted by the train stage:

* scoring: macro-F1 (:func:`mmcli.report.metrics.macro_f1`, eval's definition) of the
  candidate fitted on part of the train split and scored on the rest, by ``cv``-fold
  cross-validation on the train split: stratified folds, or stratified *group* folds when the
  items carry a group (``preprocess --group``), so that no speaker or patient is on both
  sides of a fold. With ``validation: val`` (``auto`` picks it when the manifest's split
  column gave a val split) each candidate is instead fitted on train and scored on the val
  split once. Test rows never enter selection; val rows enter only as the scored rows of
  ``validation: val``.
* candidates (in this order, cheap first): ``logreg`` (C tuned), ``late_decision`` (one
  logistic regression per modality, stacked; C tuned), ``linear_svm`` (calibrated, C tuned),
  ``hist_gb``, ``mlp`` and, when a block has a shape (pixels, frames, tokens), ``late_repr``
  with ``encoder: auto``. ``train.select.candidates`` limits the list.
* modality blocks: when a concat fuse directory has several blocks, the best candidate is
  also scored without each block in turn; a block whose removal raises the score by more than
  ``drop_margin`` is dropped (the ``subset`` model), and the leaderboard says so.
* racing: the first candidate's settings are scored on every fold; then the other
  settings fold by fold, and before each fold a setting that can no longer win (its mean
  with the folds still to score counted as 1.0, the best a macro-F1 can be, is not above the
  first candidate's best) is stopped, and the leaderboard says ``stopped after k of n
  folds``. The same for the block-dropping round (the bar is the best score plus
  ``drop_margin``). A stopped setting could not have been chosen, so the choice and the
  model are exactly those of scoring everything; only the time changes (on data that the
  first candidate already separates perfectly nothing else is fitted at all).
* resume: every fold score is checkpointed in the train stage's journal; a killed train
  started again scores only what is missing.
* time: fold fits run on ``jobs`` processes (all cores by default), cheap candidates first.
  ``time_limit`` is a budget in *estimated* seconds of one core: every fold fit is charged
  what :func:`fit_cost` says it takes, from the data's shape alone (rows x features x
  classes, and what the candidate repeats), in the order the fits are made; once the charges
  reach the budget no further fold fit is made (except the first candidate's) and the
  leaderboard marks the candidates left incomplete ``skipped: time limit``. The charges do
  not depend on the machine's speed, its load or its number of cores, so the same data and
  seed give the same search, the same choice and a byte-identical model everywhere, and a
  resumed train makes exactly the search the killed one would have (docs/models.md).

Ties go to the earlier (cheaper) candidate. Wall-clock times are reported by the stage, never
written into the model directory, whose files must not depend on the machine's load.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from typing import Any

import numpy as np

from mmcli.blocks import Blocks
from mmcli.errors import UsageError

#: what the candidates import in the worker processes, preloaded by the fork server while
#: the train stage loads its data (torch is not: the torch candidates are often stopped by
#: racing, and importing it held up the first fold fits by seconds; a worker that fits one
#: imports it then, once, as the pool lasts the whole selection)
WORKER_MODULES = ("sklearn.calibration", "sklearn.linear_model", "sklearn.model_selection",
                  "sklearn.svm")
KEYS = ("candidates", "cv", "validation", "drop_blocks", "drop_margin", "jobs")
VALIDATION = ("auto", "cv", "val")
#: torch candidates train at most this many epochs in a fold (no val rows to stop on there)
FOLD_EPOCHS = 60
#: gradient boosting grows a tree per class and iteration over every feature: above this many
#: train rows x features x classes (105 x 3,193 x 4 took 16 s a fold on a busy core; 3,000 x
#: 1,000 x 10 takes minutes) it is not a candidate: wide blocks of dense features are the
#: linear models' and the MLP's ground, a few tabular columns the trees'
MAX_TREE_WORK = 500_000
#: the calibrated linear SVM is 4 liblinear fits per setting, each of many coordinate-descent
#: passes over every row x feature x class (1,388 x 5,150 x 10 took 40 s a fold on an idle
#: core, where logreg took 0.8 s): above this much work it is not a candidate, and logreg
#: covers the linear models (the largest of the eight accuracy sets, 612 x 7,001 x 6, is below)
MAX_SVM_WORK = 30_000_000


#: the cost model of a fold fit (:func:`fit_cost`): seconds on one core = fixed + b x work^p,
#: the work of each candidate in :func:`_work` (train rows x features x classes, times what a
#: fit repeats). Fitted (least squares of the log) to 278 fold fits on one idle-ish core of
#: the 2-core benchmark machine: the eight accuracy sets and the 3,000-item sets of
#: bench/perf.py chain, whole folds and quarter folds (bench/select_cost.py,
#: bench/results/select_cost.md); typically within 0.3x-2.5x of the measured seconds (the
#: solvers' iteration counts vary with the data), the linear SVM's within 0.4x-6x
COST_MODEL = {  # model: (fixed seconds, b, p)
    "logreg": (0.01, 2.22e-6, 0.7),
    "late_decision": (0.2, 1.47e-9, 1.1),
    "linear_svm": (0.05, 8.15e-14, 2.0),
    "hist_gb": (0.0, 2e-8, 1.0),
    "mlp": (0.2, 1.27e-9, 0.9),
    "late_repr": (0.2, 1.6e-8, 1.0),
}
#: the linear models on the fused values as they are (``scale: none``) converge in about a
#: seventh of the time they take on standardised features (same measurements)
UNSCALED_COST = 0.15

@dataclasses.dataclass
class Candidate:
    """A model and the grid of parameters tried for it."""

    model: str
    params: dict
    grid: dict = dataclasses.field(default_factory=dict)
    #: None, "blocks" (a concat fuse directory) or "structure" (a block with a shape)
    needs: str | None = None

    def settings(self) -> list[dict]:
        if not self.grid:
            return [dict(self.params)]
        keys = sorted(self.grid)
        return [{**self.params, **dict(zip(keys, values))}
                for values in itertools.product(*(self.grid[k] for k in keys))]


def default_candidates() -> list[Candidate]:
    """The candidates of ``model: auto``, cheap first (ties go to the earlier one).

    The linear models are tried on standardised features and on the fused values as they are
    (``scale: none``): the concat fusion gives each block a total variance of 1, which on a
    small train split with thousands of features regularises usefully (sample data: test
    accuracy 0.833 unscaled against 0.646 standardised for logreg) and on whole-clip
    statistics hides the informative features (long utterances: the reverse)."""
    scaled = [{"C": c, "scale": s} for s in ("standard", "none") for c in (0.01, 0.1, 1.0)]
    return [
        Candidate("logreg", {}, {"C": [0.01, 0.1, 1.0], "scale": ["standard", "none"]}),
        Candidate("late_decision", {"cv": 3}, {"base_params": scaled}, needs="blocks"),
        Candidate("linear_svm", {}, {"C": [0.01, 0.1]}),
        Candidate("hist_gb", {"max_iter": 100}),
        Candidate("mlp", {"hidden": [256], "dropout": 0.3, "epochs": FOLD_EPOCHS}),
        Candidate("late_repr", {"encoder": "auto", "epochs": 30}, needs="structure"),
    ]


def start_select_workers(select: dict) -> None:
    """Start the workers' fork server now, importing what the candidates need, so that it
    does so on another core while the train stage reads its data."""
    from mmcli.parallel import start_workers

    start_workers(_jobs(select.get("jobs", 0)), WORKER_MODULES)


def check_select(select: dict) -> None:
    for key in select:
        _known(key, KEYS, "key", "train.select")
    if select.get("validation", "auto") not in VALIDATION:
        raise UsageError(f"train.select.validation is {select.get('validation')!r}",
                         f"use one of {', '.join(VALIDATION)}")
    cv = select.get("cv", 3)
    if not isinstance(cv, int) or isinstance(cv, bool) or cv < 2:
        raise UsageError(f"train.select.cv is {cv!r}", "give an integer of at least 2")
    names = select.get("candidates")
    if names is not None:
        known = [c.model for c in default_candidates()]
        if not isinstance(names, list) or not names:
            raise UsageError("train.select.candidates must be a non-empty list",
                             f"e.g. candidates: [logreg, late_decision]; known: "
                             f"{', '.join(known)}")
        for name in names:
            _known(name, known, "candidate", "train.select.candidates")


def _known(value, known, what: str, where: str) -> None:
    """Refuse ``value`` unless it is one of ``known``, with a did-you-mean hint."""
    if value in known:
        return
    import difflib

    close = difflib.get_close_matches(str(value), list(known), n=1)
    raise UsageError(f"unknown {what} {value!r} in {where}",
                     f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}")


@dataclasses.dataclass
class Problem:
    """What a candidate is fitted and scored on."""

    X: np.ndarray
    y: np.ndarray
    n_classes: int
    #: the modality blocks (a concat fusion), or None
    blocks: Blocks | None
    #: (train rows, scored rows) pairs of indices into X
    folds: list
    seed: int
    device: str

    @property
    def layouts(self) -> list[dict] | None:
        return None if self.blocks is None else self.blocks.layouts


def make_folds(y: np.ndarray, groups: list | None, cv: int, seed: int,
               val: tuple[np.ndarray, np.ndarray] | None = None):
    """Cross-validation folds over the train rows (stratified; by group when ``groups``), or
    the single (train, val) pair when ``val`` gives the val rows' position in X."""
    if val is not None:
        return [val], "val"
    counts = np.bincount(y)
    if groups is not None:
        from sklearn.model_selection import StratifiedGroupKFold

        n_groups = len(set(groups))
        folds = min(cv, n_groups)
        if folds < 2:
            raise UsageError("the train split has a single group, so model selection cannot "
                             "hold one out", "give the train split several groups, or "
                             "train.select: {validation: val}")
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1]
        return list(splitter.split(np.zeros(len(y)), y, codes)), f"{folds}-fold group cv"
    from sklearn.model_selection import StratifiedKFold

    folds = min(cv, int(counts[counts > 0].min()))
    if folds < 2:
        return None, "a class has a single train item"
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y)), f"{folds}-fold cv"


#: the problem a worker process scores candidates on (set once per worker by _set_problem)
_PROBLEM: Problem | None = None


def _set_problem(problem: Problem | None) -> None:
    global _PROBLEM
    _PROBLEM = problem


def _fit_task(task: tuple) -> tuple:
    """One (model, params, fold, keep) task on the worker's problem."""
    return _fit_score(_PROBLEM, *task)


def _fit_score(problem: Problem, name: str, params: dict, fold: int,
               keep: list[int] | None = None) -> tuple:
    """(macro-F1, seconds, error) of one candidate on one fold. A candidate that cannot be
    fitted on this data (too few rows of a class for its own internal split, say) is that
    candidate's failure, recorded in the leaderboard, not the stage's."""
    from mmcli.models.base import build_model
    from mmcli.report.metrics import macro_f1

    start = time.perf_counter()
    tr, te = problem.folds[fold]
    model = build_model(name, params, problem.seed, problem.device)
    if keep is not None:
        model = build_model("subset", {"model": name, "params": params, "keep": keep},
                            problem.seed, problem.device)
    try:
        model.fit(problem.X[tr], problem.y[tr], problem.n_classes, blocks=problem.blocks)
        pred = model.predict_proba(problem.X[te]).argmax(1)
    except (ValueError, ArithmeticError, RuntimeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        return None, time.perf_counter() - start, first
    score = macro_f1(problem.y[te], pred, np.arange(problem.n_classes))
    return score, time.perf_counter() - start, None


def select_model(problem: Problem, select: dict, time_limit: float, how: str,
                 progress=None, params: dict | None = None, journal=None) -> dict:
    """Score every candidate setting; returns ``{"model", "params", "leaderboard",
    "validation", "seconds"}`` with the winner's name and parameters. ``params`` (the
    config's ``train.params``) go to every candidate that has such a parameter. With
    ``journal`` (the train stage's :class:`mmcli.artifacts.Journal`) every fold score is
    checkpointed, and the scores a killed earlier run completed are not computed again.
    ``time_limit``: the budget in estimated seconds of one core (:func:`fit_cost`); 0: none.
    The result's ``estimated`` is what the fits made were charged."""
    check_select(select)
    runs = _runs(problem, select.get("candidates"), params)
    started = time.perf_counter()
    with _Scorer(problem, _jobs(select.get("jobs", 0)),
                 time_limit if time_limit > 0 else None, journal) as scorer:
        winner, chosen = _race_all(scorer, runs, select, progress)
    for row in runs:
        row["chosen"] = row is chosen
    return {"model": winner["model"], "params": winner["params"], "leaderboard": runs,
            "validation": how, "seconds": time.perf_counter() - started,
            "resumed": scorer.resumed, "estimated": scorer.spent}


def _race_all(scorer: _Scorer, runs: list[dict], select: dict, progress) -> tuple:
    """(winner's model and params, its leaderboard row): the first candidate on every fold,
    the others raced against it, then the block-dropping round."""
    todo = [r for r in runs if r["skip"] is None]
    first = [r for r in todo if r["model"] == todo[0]["model"]] if todo else []
    scorer.race(first, None, progress, limited=False)
    # a later candidate wins only with a strictly higher score (ties go to the cheaper)
    scorer.race([r for r in todo if r["model"] != todo[0]["model"]],
                lambda: max((r["cv_score"] for r in first if r.get("cv_score") is not None),
                            default=None), progress)
    ranked = [r for r in runs if r.get("cv_score") is not None]
    for run in runs:
        run.setdefault("cv_score", None)
        run.setdefault("cv_std", None)
        run.setdefault("seconds", None)
    if not ranked:
        reasons = [r["skip"] for r in runs if r["skip"]]
        raise UsageError("no model candidate could be scored on this data"
                         + (f" (first: {reasons[0]})" if reasons else ""),
                         "name a model with --model, or widen train.select.candidates")
    best = max(ranked, key=lambda r: r["cv_score"])  # first of equals: the cheaper
    blocks = scorer.problem.blocks
    if select.get("drop_blocks", True) and blocks and len(blocks) > 1:
        dropped = _try_dropping_blocks(scorer, best, runs, select)
        if dropped is not None:
            return dropped
    return {"model": best["model"], "params": best["params"]}, best


def _runs(problem: Problem, wanted: list | None, params: dict | None) -> list[dict]:
    """Every candidate setting to score, in order; a candidate that does not fit the data
    (no blocks, no shaped block, word ids, too much tree work) is a skipped row that says why.
    ``params`` (``train.params``) win where a candidate has such a parameter."""
    from mmcli.models.base import MODELS

    structured = any((info or {}).get("layout") for info in problem.layouts or [])
    runs: list[dict] = []
    for cand in default_candidates():
        if wanted is not None and cand.model not in wanted:
            continue
        reason = None
        if cand.needs == "blocks" and not (problem.blocks and len(problem.blocks) > 1):
            reason = "needs a concat fuse directory with several modalities"
        elif cand.needs == "structure" and not structured:
            reason = "no block with a shape (pixels, frames, tokens)"
        elif cand.needs != "structure" and _has_tokens(problem.layouts):
            reason = "reads word ids as numbers"
        elif (cand.model == "hist_gb" and _fit_work(problem) > MAX_TREE_WORK) or (
                cand.model == "linear_svm" and _fit_work(problem) > MAX_SVM_WORK):
            reason = (f"too slow for {len(problem.folds[0][0])} rows x {problem.X.shape[1]} "
                      f"features x {problem.n_classes} classes")
        fields = {f.name for f in dataclasses.fields(MODELS.get(cand.model).Params)}
        given = {k: v for k, v in (params or {}).items() if k in fields}
        seen = []
        for setting in cand.settings():
            setting = {**setting, **given}
            if setting not in seen:
                seen.append(setting)
                runs.append({"model": cand.model, "params": setting, "skip": reason})
    return runs


def _fit_work(problem: Problem) -> int:
    """Train rows of a fold x features x classes: what a fit's cost grows with."""
    return len(problem.folds[0][0]) * problem.X.shape[1] * max(problem.n_classes, 2)


def fit_cost(problem: Problem, run: dict) -> float:
    """The estimated seconds of one fold fit of ``run`` (a leaderboard row: model, params,
    keep) on one core: a function of the data's shape only, so that a search limited by it is
    the same on every machine. A subset run costs its model's fit on the kept blocks."""
    return estimate(run["model"], run["params"], len(problem.folds[0][0]),
                    kept_features(problem, run.get("keep")), problem.n_classes)


def kept_features(problem: Problem, keep: list[int] | None) -> int:
    """The features a fit sees: every column, or those of the kept blocks."""
    if keep is None or problem.blocks is None:
        return int(problem.X.shape[1])
    return int(sum(problem.blocks[k].width for k in keep))


def estimate(model: str, params: dict, rows: int, features: int, classes: int) -> float:
    """The cost model: estimated seconds of one fit of ``model`` on one core."""
    fixed, b, p = COST_MODEL[model]
    scale = (params.get("base_params") or params).get("scale", "standard")
    work = _work(model, params, rows, features, max(classes, 2))
    return fixed + b * work ** p * (UNSCALED_COST if scale == "none" else 1.0)


def _work(model: str, params: dict, rows: int, features: int, classes: int) -> float:
    """Rows x features x classes, times what a fit of ``model`` repeats: late_decision's
    inner folds and final fit, boosting's iterations, the networks' epochs and width."""
    base = float(rows) * features * classes
    if model == "late_decision":
        return base * (params.get("cv", 5) + 1)
    if model == "hist_gb":
        return base * params.get("max_iter", 100)
    if model == "mlp":
        width = sum(params.get("hidden", [256]))
        return float(rows) * (features + classes) * width * params.get("epochs", 100)
    if model == "late_repr":
        return base * params.get("epochs", 30)
    return base

def _has_tokens(layouts) -> bool:
    return any((info or {}).get("layout") == "tokens" for info in layouts or [])


def _jobs(jobs: int) -> int:
    from mmcli.parallel import resolve_jobs

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 0:
        raise UsageError(f"train.select.jobs is {jobs!r}", "give 0 (all cores) or more")
    return resolve_jobs(jobs)


class _Scorer:
    """Scores runs (a candidate setting, or the best one without a block) fold by fold on
    one problem, with the fold fits on the pool of ``jobs`` workers (the project's
    :func:`mmcli.parallel.ordered_map`: a fork server, one thread per worker).

    Racing: before each fold, a run that can no longer beat the bar (its mean with the folds
    still to score counted as perfect scores is at most the bar) is stopped; it could not be
    chosen, so the choice is exactly the one scoring every fold would give, only cheaper.
    Every fold fit is charged its :func:`fit_cost` in the order the fits are asked for; once
    the charges reach ``budget`` no further fit is made (``skipped: time limit``). Every
    score is checkpointed in ``journal``; scores found there are not computed again (and
    charged as before, so a resumed search is the same search).
    """

    def __init__(self, problem: Problem, jobs: int, budget: float | None, journal=None):
        self.problem, self.jobs, self.budget, self.journal = problem, jobs, budget, journal
        #: estimated seconds charged so far
        self.spent = 0.0
        self.done = {r["task"]: (r["score"], r["seconds"], r["error"])
                     for r in (journal.records if journal is not None else [])}
        #: fold scores taken from the journal of a killed earlier run
        self.resumed = 0

    def __enter__(self):
        """One pool of workers for every round (:func:`mmcli.parallel.worker_pool`): forked,
        and given the problem, once."""
        from contextlib import ExitStack

        from mmcli.parallel import worker_pool

        self._stack = ExitStack()
        self._map = self._stack.enter_context(worker_pool(self.jobs, _set_problem,
                                                          (self.problem,)))
        return self

    def __exit__(self, *exc):
        try:
            self._stack.close()
        finally:
            _set_problem(None)  # with one job the tasks ran here: keep no state behind

    def race(self, runs: list[dict], bar, progress=None, limited: bool = True) -> None:
        """Score ``runs`` on every fold unless stopped; ``bar()`` is the score a run must
        beat (None: no bar, all folds at once); ``limited``: within the budget. Sets each
        run's cv_score (None unless every fold was scored), cv_std, seconds and, for a run
        left incomplete, its skip reason."""
        n = len(self.problem.folds)
        for run in runs:
            run["folds"] = {}
        if bar is None:
            self._score([(run, fold) for run in runs for fold in range(n)], limited)
        for fold in range(n if bar is not None else 0):
            level = bar()
            for run in runs:
                if run["skip"] is None and level is not None and _best_case(
                        run["folds"], n) <= level:
                    run["skip"] = _stopped(run["folds"], n, level)
            self._score([(run, fold) for run in runs if run["skip"] is None], limited)
        for run in runs:
            folds = [run["folds"][f] for f in sorted(run["folds"])]
            scores = [s for s, _, e in folds if e is None]
            complete = run["skip"] is None and len(scores) == n
            run.update(cv_score=float(np.mean(scores)) if complete else None,
                       cv_std=float(np.std(scores)) if complete else None,
                       seconds=sum(s for _, s, _ in folds) if folds else None)
            del run["folds"]
        if progress is not None:
            for name in dict.fromkeys(run["model"] for run in runs):
                progress(name)

    def _score(self, pairs: list[tuple[dict, int]], limited: bool) -> None:
        """Score each (run, fold) pair within the budget (``limited``; cheap candidates come
        first, so it cuts the costly ones): from the journal when it has the score, else on
        the pool. A run with a failed or unscored fold is skipped with the reason."""
        todo = []
        for run, fold in pairs:
            if limited and self.budget is not None and self.spent >= self.budget:
                run["folds"][fold] = (None, 0.0, "time limit")
                continue
            self.spent += fit_cost(self.problem, run)
            if _task_key(run, fold) in self.done:
                self.resumed += 1
            else:
                todo.append((run, fold))
        tasks = [(run["model"], run["params"], fold, run.get("keep")) for run, fold in todo]
        for (run, fold), result in zip(todo, self._map(_fit_task, tasks)):
            run["folds"][fold] = result
            self.done[_task_key(run, fold)] = result
            if self.journal is not None:
                self.journal.append({"task": _task_key(run, fold), "score": result[0],
                                     "seconds": result[1], "error": result[2]})
        for run, fold in pairs:
            run["folds"].setdefault(fold, self.done.get(_task_key(run, fold)))
            errors = [run["folds"][f][2] for f in sorted(run["folds"])
                      if run["folds"][f][2] is not None]
            if errors and run["skip"] is None:
                run["skip"] = "time limit" if "time limit" in errors else f"failed: {errors[0]}"


def _task_key(run: dict, fold: int) -> str:
    return json.dumps([run["model"], _plain(run["params"]), fold, run.get("keep")],
                      sort_keys=True)


def _best_case(folds: dict, n: int) -> float:
    """The mean score a run would get if its unscored folds all scored 1.0 (the most a
    macro-F1 can be). Floating-point addition and division are monotone, so the run's
    actual mean can never exceed this value."""
    return float(np.mean([folds[f][0] for f in sorted(folds)] + [1.0] * (n - len(folds))))


def _stopped(folds: dict, n: int, level: float) -> str:
    scores = [folds[f][0] for f in sorted(folds)]
    mean = f" (mean so far {np.mean(scores):.4f})" if scores else ""
    return f"stopped after {len(scores)} of {n} folds{mean}: cannot beat {level:.4f}"


def _try_dropping_blocks(scorer: _Scorer, best: dict, board: list[dict], select: dict):
    """Score the best candidate without each block; the best improvement beyond
    ``drop_margin`` wins (one round: a single block is dropped at most)."""
    margin = float(select.get("drop_margin", 0.01))
    n = len(scorer.problem.blocks)
    columns = [(info or {}).get("column", f"block {k}") for k, info in
               enumerate(scorer.problem.layouts or [None] * n)]
    runs = []
    for drop in range(n):
        runs.append({"model": best["model"], "params": best["params"], "skip": None,
                     "keep": [k for k in range(n) if k != drop], "subset_of": best["model"],
                     "note": f"without {columns[drop]}"})
    board.extend(runs)
    scorer.race(runs, lambda: best["cv_score"] + margin)
    good = [r for r in runs if r["cv_score"] is not None
            and r["cv_score"] > best["cv_score"] + margin]
    if not good:
        return None
    top = max(good, key=lambda r: r["cv_score"])
    return {"model": "subset", "params": {"model": best["model"], "params": best["params"],
                                          "keep": top["keep"]}}, top


def leaderboard_rows(board: list[dict], times: bool = False) -> list[dict]:
    """The leaderboard as written to ``leaderboard.csv``: best first (skipped last), with no
    wall-clock times (they would make the model directory differ between runs); ``times``
    adds ``fit_seconds`` (summed over folds) for display."""
    order = sorted(range(len(board)), key=lambda k: (
        board[k]["cv_score"] is None, -(board[k]["cv_score"] or 0.0), k))
    rows = []
    for rank, k in enumerate(order, start=1):
        r = board[k]
        note = r.get("note") or ""
        if r["skip"]:
            why = (r["skip"] if r["skip"].startswith(("failed", "stopped"))
                   else f"skipped: {r['skip']}")
            note = f"{note}; {why}" if note else why
        rows.append({"rank": rank, "model": r["model"],
                     "params": json.dumps(_plain(r["params"]), sort_keys=True),
                     "cv_score": "" if r["cv_score"] is None else f"{r['cv_score']:.4f}",
                     "cv_std": "" if r["cv_std"] is None else f"{r['cv_std']:.4f}",
                     "chosen": "yes" if r.get("chosen") else "", "note": note})
        if times:
            rows[-1]["fit_seconds"] = r.get("seconds")
    return rows


def _plain(value: Any):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

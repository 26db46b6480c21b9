"""train: fit a model on the fused train rows (validation rows for early stopping).

Output directory (self-contained: ``predict`` needs nothing else)::

    meta.json
    train_log.jsonl      per-epoch records (models trained in epochs)
    state/               preprocess.json, extract/, fuse/ carried from the fuse directory,
                         and model/ (JSON + npz, no pickle)

Every model's ``fit`` gets the block description of a concat fuse directory
(:class:`mmcli.blocks.Blocks`, from ``fusion.json``'s ``blocks``: each modality's column
range and structure, for encoders and augmentations, and the fusion's normalisation of each
block, for augmentation in the extractor's units); models that learn the fusion
(``needs_blocks``) refuse other fuse directories. ``train.search`` runs a
cross-validated hyperparameter search first (:mod:`mmcli.models.search`). ``train.tasks``
trains extra label columns together with the main label (models with ``supports_tasks``); their
values come from ``labels`` in ``items.jsonl``, which preprocess writes for its
``preprocess.tasks`` columns.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mmcli import artifacts, storage
from mmcli.blocks import Blocks
from mmcli.config import TrainConfig, to_dict
from mmcli.errors import DataError, UsageError
from mmcli.missing import fit_presence
from mmcli.missing import predict_proba as masked_predict_proba
from mmcli.progress import ProgressFactory, silent
from mmcli.stages.preprocess import PreprocessState, check_label

#: the columns of a model directory's leaderboard.csv (model: auto)
LEADERBOARD = ("rank", "model", "params", "cv_score", "cv_std", "chosen", "note")



@storage.staged("fused_dir")
def train(fused_dir: Path, out: Path, config: TrainConfig | None = None,
          progress: ProgressFactory = silent) -> dict:
    """Train ``config.model`` on the fused features; returns a summary with accuracies (rows,
    model choice or selection, search, fit, summary; writing is :func:`_write_model_dir`)."""

    config = config or TrainConfig()
    fused = artifacts.open_stage(fused_dir, "fuse", "mmcli train")
    pstate = PreprocessState.load(fused.path / "state")
    check_label(pstate, config.label, fused.path)
    classes = pstate.classes
    if len(classes) < 2:
        raise DataError(f"the train split of {fused.path} has {len(classes)} class(es)",
                        "a classifier needs at least two labels in train")
    if config.model == "auto":
        from mmcli.models.select import check_select, start_select_workers

        check_select(config.select)
        start_select_workers(config.select)
    requested = config  # meta.json keeps the config as given ("auto"): mmcli run compares it
    inputs = {str(fused.path): fused.meta_hash()}
    key = artifacts.fingerprint("train", to_dict(requested), inputs)
    # opened first, so that model selection checkpoints its fold scores in the journal: a
    # killed train started again scores only what is missing
    with artifacts.StageWriter(out, "train", (fused.path,), resume_key=key) as writer:
        journal = writer.journal()
        model, summary, selection = _fit(config, fused.path, classes, journal, progress)
        journal.close()
        return _write_model_dir(writer, fused.path, inputs, model, classes, summary, selection,
                                requested)


def _fit(config: TrainConfig, fused_path: Path, classes: list[str], journal,
         progress: ProgressFactory) -> tuple:
    """(fitted model, summary, selection or None): ``model: auto`` chooses first, then
    ``train.search`` searches, then the model is fitted on the train rows."""
    from mmcli.models import MODELS, build_model
    from mmcli.parallel import one_thread

    items, tr, va, X_tr, y, X_va, y_val = _rows(fused_path, classes)
    blocks = fused_blocks(fused_path)
    params = dict(config.params)
    selection = None
    if config.model == "auto":
        selection = select(config, fused_path, items, tr, X_tr, y, X_va, y_val, len(classes),
                           blocks, progress, journal)
        config = dataclasses.replace(config, model=selection["model"])
        params = dict(selection["params"])
    cls = MODELS.get(config.model, where="--model")
    _check_needs_blocks(cls, blocks, fused_path)
    if selection is None:
        _check_token_blocks(build_model(config.model, params, config.seed, config.device),
                            blocks)
    searched = None
    if config.search:
        from mmcli.models.search import search_params

        with one_thread():
            searched = search_params(config.model, params, config.search, X_tr, y,
                                     len(classes), config.seed, blocks, config.device)
        params.update(searched["best_params"])
    model = build_model(config.model, params, config.seed, config.device)
    tasks = None
    if config.tasks:
        tasks, Y, Y_val = task_targets(config.tasks, items, tr, va, y, y_val, classes,
                                       cls, fused_path)
    masks = fit_presence(model, items, fused_path, tr, va)
    with _epochs_bar(model, progress, f"train {config.model}"), one_thread():
        if tasks:
            model.fit_tasks(X_tr, Y, tasks, X_va, Y_val, blocks=blocks)
        else:
            model.fit(X_tr, y, len(classes), X_va, y_val if va else None, blocks=blocks, **masks)

    summary = {"model": config.model, "classes": classes, "n_train": len(tr), "n_val": len(va),
               "train_accuracy": _accuracy(model, X_tr, y, masks.get("presence")),
               "val_accuracy": _accuracy(model, X_va, y_val, masks.get("presence_val"))}
    if getattr(model, "best_epoch_", None) is not None and model.log_:
        summary.update(best_epoch=model.best_epoch_, epochs_run=len(model.log_))
    if searched is not None:
        summary["search"] = searched
    if tasks:
        summary["tasks"] = task_metrics(model, tasks, X_tr, Y, X_va, Y_val)
    return model, summary, selection


def _rows(fused_path: Path, classes: list[str]):
    """The items, the positions of the train and val rows (val rows of a class the train
    split has), and their features and class indices (``X_va`` None without val rows)."""
    items = artifacts.read_jsonl(fused_path / "items.jsonl")
    X = artifacts.load_npy(fused_path / "fused.npy")
    index = {c: k for k, c in enumerate(classes)}
    tr = [k for k, it in enumerate(items) if it["split"] == "train"]
    va = [k for k, it in enumerate(items) if it["split"] == "val" and it["label"] in index]
    y = np.array([index[items[k]["label"]] for k in tr], dtype=np.int64)
    y_val = np.array([index[items[k]["label"]] for k in va], dtype=np.int64)
    X_va = np.asarray(X[va]) if va else None
    return items, tr, va, np.asarray(X[tr]), y, X_va, y_val


def _write_model_dir(writer, fused_path: Path, inputs: dict, model, classes: list[str],
                     summary: dict, selection: dict | None, requested: TrainConfig) -> dict:
    """The model directory (``writer``'s): the carried state, the model, its epoch log and,
    for model auto, the leaderboard (no wall-clock times in any file: they are only in the returned
    summary, for display)."""
    from mmcli.models import save_model
    from mmcli.models.select import leaderboard_rows

    shutil.copytree(fused_path / "state", writer.path / "state")
    save_model(model, writer.path / "state" / "model", classes)
    artifacts.write_jsonl(writer.path / "train_log.jsonl", model.log_)
    if selection is not None:
        rows = leaderboard_rows(selection["leaderboard"])
        artifacts.write_csv(writer.path / "leaderboard.csv", rows, list(LEADERBOARD))
        summary["selection"] = {"validation": selection["validation"],
                                "params": selection["params"], "leaderboard": rows,
                                # the budget's charges: from the data's shape, not the clock
                                "estimated_seconds": round(selection.get("estimated", 0.0), 1)}
    writer.commit(to_dict(requested), requested.seed, inputs, summary)
    if selection is not None:  # wall-clock, so reported and never recorded
        summary = {**summary, "selection": {
            **summary["selection"], "seconds": selection["seconds"],
            "resumed": selection.get("resumed", 0),
            "leaderboard": leaderboard_rows(selection["leaderboard"], times=True)}}
    return summary


@contextmanager
def _epochs_bar(model, progress: ProgressFactory, description: str):
    """A progress bar over the model's epochs (one step for models not trained in epochs),
    completed when early stopping ends training before the last epoch."""
    epochs = getattr(model.params, "epochs", None)
    with progress(description, epochs or 1) as bar:
        if epochs:
            model.on_epoch = lambda record: bar.advance()
        try:
            yield
        finally:
            model.on_epoch = None
        if epochs and epochs > len(model.log_):
            bar.advance(epochs - len(model.log_))  # stopped early: complete the bar
        elif not epochs:
            bar.advance()


def select(config: TrainConfig, fused_path: Path, items: list[dict], tr: list[int], X_tr, y,
           X_va, y_val, n_classes: int, blocks, progress: ProgressFactory,
           journal=None) -> dict:
    """``model: auto``: choose a model and its parameters on the train split by validation
    (:mod:`mmcli.models.select`); group folds when the items carry a ``group``."""
    from mmcli.models.select import (
        Problem,
        check_select,
        default_candidates,
        make_folds,
        select_model,
    )

    check_select(config.select)
    if config.search:
        raise UsageError("train.search needs a named model: model auto already chooses the "
                         "model and its parameters by validation",
                         "name the model (--model NAME) to search its parameters, or drop "
                         "train.search (train.select controls auto)")
    if config.tasks:
        raise UsageError("train.tasks needs a named model that trains several tasks",
                         "use --model mlp, late_repr, gmu, lowrank, attention or tensor_layer")
    how = config.select.get("validation", "auto")
    groups = [items[k].get("group") for k in tr]
    groups = groups if all(g is not None for g in groups) else None
    given_val = PreprocessState.load(fused_path / "state").split_source == "manifest"
    if how == "auto":
        # a val split the manifest gave is the user's statement of what must generalise
        # (held-out speakers, a later session): score on it; else cross-validate
        how = "val" if given_val and X_va is not None and len(X_va) else "cv"
    if how == "val":
        if X_va is None or not len(X_va):
            raise UsageError("train.select.validation is val but the fuse directory has no "
                             "val items", "use validation: cv, or give the manifest val rows")
        X_all = np.concatenate([X_tr, X_va])
        y_all = np.concatenate([y, y_val])
        folds = [(np.arange(len(y)), np.arange(len(y), len(y_all)))]
        label = "val split"
    else:
        X_all, y_all = X_tr, y
        folds, label = make_folds(y, groups, config.select.get("cv", 3), config.seed)
        if folds is None:  # a class with one train item: nothing to hold out
            return {"model": "logreg", "params": {}, "leaderboard": [],
                    "validation": label, "seconds": 0.0}
    problem = Problem(X_all, y_all, n_classes, blocks, folds, config.seed, config.device)
    with progress("train: select", len(default_candidates())) as bar:
        return select_model(problem, config.select, config.time_limit, label,
                            progress=lambda name: bar.advance(), params=config.params,
                            journal=journal)


def fused_blocks(fused_path: Path) -> Blocks | None:
    """The block description of a fuse directory whose method keeps the blocks side by side
    (concat): ``fusion.json``'s blocks with the fusion's (mean, scale) of each; None for
    other methods."""
    from mmcli.stages.fuse import load_fusion

    entries = artifacts.read_json(fused_path / "fusion.json").get("blocks")
    if not entries:
        return None
    fusion, _ = load_fusion(fused_path / "state")
    return Blocks.from_fusion(entries, fusion.block_norms())


def _check_needs_blocks(cls, blocks: Blocks | None, fused_path: Path) -> None:
    """Models that learn the fusion refuse a fuse directory without blocks (exit 2)."""
    if blocks is None and cls.needs_blocks:
        method = artifacts.read_json(fused_path / "fusion.json")["method"]
        raise UsageError(
            f"model {cls.name!r} learns the fusion itself and needs the modality blocks of a "
            f"concat fuse directory; {fused_path} was fused with {method!r}",
            f"re-run `mmcli fuse --method concat` and train {cls.name!r} on that")


def task_targets(spec: dict, items: list[dict], tr: list[int], va: list[int], y, y_val,
                 classes: list[str], cls, where: Path):
    """Tasks and their (n, n_tasks) targets: the main label first, then ``train.tasks``."""
    if not cls.supports_tasks:
        raise UsageError(f"model {cls.name!r} trains one label only; train.tasks needs a torch "
                         "model", "use mlp, late_repr, gmu, lowrank, attention or tensor_layer")
    tasks = [{"name": "label", "kind": "classification", "n_classes": len(classes),
              "weight": 1.0}]
    cols_tr, cols_va = [y.astype(np.float64)], [y_val.astype(np.float64)]
    for name, opts in spec.items():
        opts = opts or {}
        if not isinstance(opts, dict) or set(opts) - {"kind", "weight"}:
            raise UsageError(f"train.tasks.{name} is {opts!r}",
                             "give {kind: classification|regression, weight: 1.0}")
        kind = opts.get("kind", "classification")
        if kind not in ("classification", "regression"):
            raise UsageError(f"train.tasks.{name}.kind is {kind!r}",
                             "use classification or regression")
        missing = [items[k]["id"] for k in tr if name not in (items[k].get("labels") or {})]
        if missing:
            raise DataError(f"task column {name!r} is not in the items of {where} (item "
                            f"{missing[0]!r})", f"re-run preprocess with tasks: [{name}] in "
                            "its config section, then extract and fuse")

        def values(rows, _name=name):
            return [str(items[k]["labels"].get(_name, "")).strip() for k in rows]

        raw_tr, raw_va = values(tr), values(va)
        if kind == "classification":
            names = sorted({v for v in raw_tr if v})
            idx = {v: k for k, v in enumerate(names)}
            cols_tr.append(np.array([idx.get(v, -1) for v in raw_tr], dtype=np.float64))
            cols_va.append(np.array([idx.get(v, -1) for v in raw_va], dtype=np.float64))
            tasks.append({"name": name, "kind": kind, "n_classes": len(names),
                          "classes": names, "weight": float(opts.get("weight", 1.0))})
        else:
            cols_tr.append(_numbers(raw_tr, name, where))
            cols_va.append(_numbers(raw_va, name, where))
            tasks.append({"name": name, "kind": kind, "weight": float(opts.get("weight", 1.0))})
    return tasks, np.stack(cols_tr, 1), (np.stack(cols_va, 1) if va else None)


def _numbers(raw: list[str], name: str, where: Path) -> np.ndarray:
    out = []
    for v in raw:
        try:
            out.append(float(v) if v else math.nan)
        except ValueError:
            raise DataError(f"regression task {name!r} has the value {v!r} in {where}",
                            "regression targets must be numbers") from None
    return np.array(out, dtype=np.float64)


def _check_token_blocks(model, blocks: Blocks | None) -> None:
    """Word ids (the tokens extractor) are categories, not magnitudes: only a GRU or
    Transformer encoder reads them; anything else would train on the ids' sizes."""
    layouts = blocks.layouts if blocks is not None else None
    columns = [info.get("column") for info in layouts or [] if info.get("layout") == "tokens"]
    if not columns:
        return
    hint = (f"train a learned-fusion model with params {{encoder: auto}} (or encoders: "
            f"{{{columns[0]}: gru|transformer}}), or extract {columns[0]!r} with tfidf")
    if not hasattr(model.params, "encoder"):
        raise UsageError(f"modality {columns[0]!r} holds word ids (the tokens extractor), which "
                         f"model {model.name!r} would read as numbers", hint)
    from mmcli.models.encoders import choose_encoders

    names = choose_encoders(model.params, layouts, len(layouts), model.name)
    for info, name in zip(layouts, names):
        if info.get("layout") == "tokens" and name not in ("gru", "transformer"):
            raise UsageError(f"modality {info.get('column')!r} holds word ids (the tokens "
                             f"extractor), which the {name} encoder would read as numbers",
                             hint)


def task_metrics(model, tasks, X_tr, Y, X_va, Y_val) -> dict:
    """Per task and split: accuracy (classification) or RMSE (regression)."""
    out: dict = {}
    for split, X, T in (("train", X_tr, Y), ("val", X_va, Y_val)):
        if X is None:
            continue
        pred = model.predict_tasks(X)
        for k, t in enumerate(tasks):
            truth = T[:, k]
            if t["kind"] == "classification":
                mask = truth >= 0
                value = float((pred[t["name"]].argmax(1)[mask] == truth[mask]).mean()) \
                    if mask.any() else None
                out.setdefault(t["name"], {})[f"{split}_accuracy"] = value
            else:
                from mmcli.report.metrics import regression_metrics

                mask = ~np.isnan(truth)
                value = regression_metrics(truth[mask], pred[t["name"]][mask])["rmse"]
                out.setdefault(t["name"], {})[f"{split}_rmse"] = value
    return out


def _accuracy(model, X, y, mask=None) -> float | None:
    if X is None:  # no val split
        return None
    proba = masked_predict_proba(model, X, mask)
    return float((proba.argmax(1) == y).mean())

"""eval: metrics per split, robustness, figures, a readable report and per-item predictions.

Output directory::

    meta.json
    metrics.json        {"<split>": {accuracy, balanced_accuracy, macro_f1, weighted_f1, n,
                         per_class: {label: {precision, recall, f1 (null: 0/0), support}},
                         confusion_matrix: {labels, matrix},
                         roc_auc_macro, average_precision_macro, log_loss, ece,
                         roc_auc: {label: auc}, average_precision: {label: ap},
                         ci: {level, resamples, accuracy, balanced_accuracy, macro_f1}},
                         "test" also: robustness: {ablation, noise, notes}}; a split with
                         missing modality cells also: missing: [{pattern, missing, n,
                         accuracy, balanced_accuracy, macro_f1}] per missingness pattern
    report.md           the headline numbers as tables
    report.html         everything, figures embedded: open it in a browser
    figures/*.png       the figures of the report
    predictions.csv     id, split, label, prediction, prob_<class>... for every item,
                        prediction_<task> per extra task of a multi-task model, and
                        ``missing`` (absent modalities joined by "|") when an item lacks one
    metrics.json        each split also has "tasks": {<task>: metrics} for the extra tasks of
                        a multi-task model (as above for a classification task; n, mae,
                        rmse, r2 for a regression task)
    comparison.json     with --compare: each run's test metrics and robustness

See docs/evaluation.md for every definition.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmcli import artifacts, storage
from mmcli.config import EvalConfig, to_dict
from mmcli.errors import ArtifactError, DataError, UsageError
from mmcli.fitted import FittedChain
from mmcli.missing import missing_of, pattern_name, presence
from mmcli.progress import ProgressFactory, silent
from mmcli.report.metrics import classification_metrics  # noqa: F401  (public re-export)
from mmcli.stages.preprocess import PreprocessState, check_label


@dataclass
class ScoredModel:
    """One model scored on one fuse directory."""

    name: str
    fitted: FittedChain
    fused: artifacts.StageDir
    #: the stage directories behind ``fused`` (:func:`mmcli.report.chain.find_chain`)
    upstream: object
    items: list[dict]
    classes: list[str]
    proba: np.ndarray
    metrics: dict
    robustness: dict | None = None
    #: extra task name -> predicted class or value per item (multi-task models)
    task_pred: dict | None = None

    @property
    def model(self) -> artifacts.StageDir:
        """The model (train) directory."""
        return self.fitted.stage

    @property
    def pred(self) -> list[str]:
        return [self.classes[k] for k in self.proba.argmax(1)]

    def split(self, split: str) -> tuple[list[str], np.ndarray]:
        rows = [k for k, it in enumerate(self.items) if it["split"] == split]
        return [self.items[k]["label"] for k in rows], self.proba[rows]


@storage.staged("model_dir", "fused_dir")
def evaluate(model_dir: Path, fused_dir: Path, out: Path, config: EvalConfig | None = None,
             progress: ProgressFactory = silent,
             compare: list[tuple[Path, Path | None]] = ()) -> dict:
    """Evaluate a trained model on the splits of a fuse directory; returns the metrics.

    ``compare`` lists more (model directory, fuse directory) pairs to put side by side in the
    report; a ``None`` fuse directory means the one the model was trained from.
    """
    config = config or EvalConfig()
    check_config(config)
    with artifacts.hash_cache() as hashes:
        pairs = [(Path(model_dir), Path(fused_dir)), *(
            (Path(model_path), Path(fused_path) if fused_path else trained_from(model_path))
            for model_path, fused_path in compare)]
        inputs = {}
        for model_path, fused_path in pairs:  # what the output depends on (meta.json hashes)
            for path, stage in ((model_path, "train"), (fused_path, "fuse")):
                inputs[str(path)] = artifacts.open_stage(path, stage, "mmcli eval",
                                                         verify=False).meta_hash()
        # the robustness points of a killed run with the same config and inputs are resumed
        key = artifacts.fingerprint("eval", to_dict(config), inputs) if config.robustness else None
        if config.robustness:  # the workers' imports overlap the checks and scoring below
            _start_noise_workers(*pairs[0], config)
        with artifacts.StageWriter(out, "eval", tuple(p for pair in pairs for p in pair),
                                   resume_key=key) as w:
            # what a killed run of this output did before its robustness points is kept:
            # its input checks and its models' probabilities on every item (KEPT)
            checked = w.path / artifacts.HashCache.NAME
            hashes.load(checked)
            kept = w.path / KEPT if key is not None else None
            runs = [score(m, f, config, progress, kept / f"{n}.npy" if kept else None)
                    for n, (m, f) in enumerate(pairs)]
            if key is not None:
                hashes.save(checked)
            _name_runs(runs)
            _write_output(w, runs, config, inputs, progress)
    return runs[0].metrics


#: the folder, beside the journal, of the scored models' probabilities (one .npy per model),
#: removed before the output is committed
KEPT = ".scored"


def _start_noise_workers(model_dir: Path, fused_dir: Path, config: EvalConfig) -> None:
    """Start the robustness workers' fork server now (mmcli.report.robustness
    start_noise_workers), reading what it needs from the model and fuse directories before
    they are checked: anything wrong starts nothing, and the checks then say what it is."""
    from mmcli.report.robustness import start_noise_workers
    from mmcli.stages.extract import load_plan

    try:
        state = Path(model_dir) / "state"
        plan, pstate = load_plan(state / "extract"), PreprocessState.load(state)
        n_test = sum(it["split"] == "test"
                     for it in artifacts.read_jsonl(Path(fused_dir) / "items.jsonl"))
    except Exception:  # noqa: BLE001 - only an optimisation
        return
    start_noise_workers(plan, pstate.columns, min(n_test, config.noise_max_items or n_test),
                        config.noise_levels)


def _write_output(w: artifacts.StageWriter, runs: list[ScoredModel], config: EvalConfig,
                  inputs: dict, progress: ProgressFactory) -> None:
    """Robustness (resumed from ``w``'s journal), then every file of the output; commit.

    The figures that do not show robustness are drawn meanwhile, on a thread: the
    robustness's worker processes do the work then, while this process mostly waits (for
    their fork server's imports first)."""
    main = runs[0]
    clean_figures = None
    if config.robustness:
        clean_figures = _Background(_figures_without_robustness, runs)
        try:
            journal = w.journal()
            for number, r in enumerate(runs):
                add_robustness(r, config, progress, journal, number)
        finally:  # not left drawing (matplotlib's style is global) when this fails
            clean_figures.wait()
        from mmcli.report.robustness import remove_slices

        remove_slices(w.path)
        shutil.rmtree(w.path / KEPT, ignore_errors=True)
        journal.close()
    artifacts.write_json(w.path / "metrics.json", main.metrics)
    _write_predictions(w.path / "predictions.csv", main.items, main.pred, main.proba,
                       main.classes, main.task_pred or {})
    _write_reports(w.path, runs, config, clean_figures.result() if clean_figures else None)
    w.commit(to_dict(config), config.seed, inputs,
             {s: {k: m[k] for k in ("accuracy", "macro_f1", "n")}
              for s, m in main.metrics.items()})


class _Background:
    """``fn(*args)`` run on a daemon thread: :meth:`wait` for it, :meth:`result` for its value
    (its exception raised here)."""

    def __init__(self, fn, *args):
        import threading

        self._box: dict = {}
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True,
                                        name="mmcli-background")
        self._thread.start()

    def _run(self, fn, args) -> None:
        try:
            self._box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - raised again by result()
            self._box["error"] = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self):
        self.wait()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["value"]


def _figures_without_robustness(runs: list[ScoredModel]) -> dict[str, bytes]:
    """The figures of :func:`mmcli.report.figures.make_figures` that do not show robustness,
    drawn from copies of the runs without it (their metrics are copied too: robustness is
    added to them meanwhile)."""
    import dataclasses

    from mmcli.report import plots
    from mmcli.report.figures import make_figures

    return make_figures([dataclasses.replace(r, robustness=None, metrics={
        split: dict(m) for split, m in r.metrics.items()}) for r in runs], plots)


def _write_reports(path: Path, runs: list[ScoredModel], config: EvalConfig,
                   figures: dict[str, bytes] | None = None) -> None:
    """report.md, figures/, report.html and, with --compare, comparison.json; ``figures``:
    those drawn already."""
    from mmcli.report import html, plots
    from mmcli.report.context import report_context
    from mmcli.report.figures import make_figures
    from mmcli.report.markdown import render_report

    main = runs[0]
    fusion = artifacts.read_json(main.fused.path / "fusion.json")
    (path / "report.md").write_text(render_report(main.metrics, main.model.meta, fusion),
                                    encoding="utf-8")
    figures = make_figures(runs, plots, figures)
    for name, png in figures.items():
        (path / "figures").mkdir(exist_ok=True)
        (path / "figures" / f"{name}.png").write_bytes(png)
    ctx = report_context(runs, config)
    if len(runs) > 1:
        artifacts.write_json(path / "comparison.json", ctx["compare"], sort_keys=False)
    (path / "report.html").write_text(html.render(ctx, figures), encoding="utf-8")


def check_config(config: EvalConfig) -> None:
    from mmcli.report.robustness import check_levels

    unknown = [s for s in config.splits if s not in ("train", "val", "test")]
    if unknown or not config.splits:
        raise UsageError(f"config 'eval.splits' is {config.splits!r}",
                         "list one or more of train, val, test")
    if config.bootstrap < 0:
        raise UsageError(f"config 'eval.bootstrap' is {config.bootstrap!r}",
                         "give the number of bootstrap resamples (0 turns intervals off)")
    check_levels(config.noise_levels)
    if config.noise_max_items < 0:
        raise UsageError(f"config 'eval.noise_max_items' is {config.noise_max_items!r}",
                         "give a number of test items (0: all)")


def trained_from(model_dir: Path) -> Path:
    """The fuse directory a model directory was trained from (its recorded input)."""
    from mmcli.report.chain import input_of

    model = artifacts.open_stage(model_dir, "train", "mmcli eval --compare")
    notes: list[str] = []
    fused = input_of(model, "fuse", notes)
    if fused is None:
        raise ArtifactError(f"--compare {model_dir}: {notes[0]}",
                            f"name the fuse directory too: --compare {model_dir}:FUSED_DIR")
    return fused.path


def score(model_dir: Path, fused_dir: Path, config: EvalConfig,
          progress: ProgressFactory = silent, kept: Path | None = None) -> ScoredModel:
    """Predict every item of ``fused_dir`` with the model; its metrics (robustness:
    :func:`add_robustness`). ``kept``: where the probabilities are saved, or read back
    when a killed run saved them."""
    from mmcli.report.chain import find_chain

    fitted = FittedChain.load(model_dir, "mmcli eval")
    fused = artifacts.open_stage(fused_dir, "fuse", "mmcli eval")
    check_same_fusion(fitted.path, fused.path)
    check_label(PreprocessState.load(fused.path / "state"), config.label, fused.path)
    items = artifacts.read_jsonl(fused.path / "items.jsonl")
    X = artifacts.load_npy(fused.path / "fused.npy")
    with progress("eval", len(items)) as bar:
        proba = _kept_array(kept, lambda: fitted.predict_proba(X, presence(items,
                                                                           fitted.columns)))
        bar.advance(len(items))
    run = ScoredModel(fitted.path.name, fitted, fused, find_chain(fused), items, fitted.classes,
                      proba, {}, task_pred=fitted.task_predictions(X))
    for split in config.splits:
        m = split_metrics(run, split, config)
        if m is not None:
            tasks = fitted.task_metrics(items, X, split)
            if tasks:  # multi-task models (train.tasks): the extra tasks' metrics
                m["tasks"] = tasks
            patterns = missing_patterns(items, proba, fitted.classes, split)
            if patterns:  # items that lack a modality (mmcli.missing)
                m["missing"] = patterns
            run.metrics[split] = m
    if "test" in config.splits and "test" not in run.metrics:
        raise DataError(f"{fused.path} has no test items to evaluate",
                        "give some rows split=test, or raise preprocess.split.test")
    if not run.metrics:
        raise DataError(f"{fused.path} has no items in the splits {config.splits!r}",
                        "choose other eval.splits")
    return run


def _kept_array(path: Path | None, compute) -> np.ndarray:
    """The array saved at ``path`` (whole or absent: written under another name, then
    renamed), else ``compute()``, saved there."""
    if path is not None and path.is_file():
        return np.load(path, allow_pickle=False)
    value = compute()
    if path is not None:
        path.parent.mkdir(exist_ok=True)
        partial = path.with_name(path.name + ".part")
        with open(partial, "wb") as f:
            np.save(f, value, allow_pickle=False)
        partial.replace(path)
    return value


def add_robustness(run: ScoredModel, config: EvalConfig, progress: ProgressFactory = silent,
                   journal: artifacts.Journal | None = None, number: int = 0) -> None:
    """Measure the robustness of a scored model (:func:`measure_robustness`) into
    ``run.robustness`` and its test metrics; ``journal`` (``number``: the model's place in
    it) checkpoints the noise curves' points so that a killed eval resumes them."""
    run.robustness = measure_robustness(run, config, progress, journal, number)
    if "test" in run.metrics:
        run.metrics["test"]["robustness"] = run.robustness


def missing_patterns(items: list[dict], proba: np.ndarray, classes: list[str],
                     split: str) -> list[dict] | None:
    """Metrics of ``split`` per missingness pattern of its items (all present, each set of
    absent modalities that occurs), on the real missing cells; None when no item of the split
    lacks a modality. Ordered: all present, then by number of absent modalities, then name."""
    groups: dict[tuple, list[int]] = {}
    for k, it in enumerate(items):
        if it["split"] == split:
            groups.setdefault(tuple(missing_of(it)), []).append(k)
    if set(groups) <= {()}:
        return None
    out = []
    for pattern in sorted(groups, key=lambda p: (len(p), p)):
        rows = groups[pattern]
        y_true = [items[k]["label"] for k in rows]
        y_pred = [classes[k] for k in proba[rows].argmax(1)]
        m = classification_metrics(y_true, y_pred, classes)
        out.append({"pattern": pattern_name(pattern), "missing": list(pattern), "n": len(rows),
                    **{key: m[key] for key in ("accuracy", "balanced_accuracy", "macro_f1")}})
    return out


def split_metrics(run: ScoredModel, split: str, config: EvalConfig) -> dict | None:
    """The metrics of one split (None when it has no items): classification and
    probabilistic metrics, and bootstrap intervals when ``config.bootstrap``."""
    from mmcli.report.metrics import bootstrap_ci, probabilistic_metrics

    y_true, p = run.split(split)
    if not y_true:
        return None
    y_pred = [run.classes[k] for k in p.argmax(1)]
    m = classification_metrics(y_true, y_pred, run.classes)
    m.update(probabilistic_metrics(y_true, p, run.classes))
    m["roc_auc"] = {label: m["roc_auc"].get(label) for label in m["per_class"]}
    m["average_precision"] = {label: m["average_precision"].get(label)
                              for label in m["per_class"]}
    if config.bootstrap:
        m["ci"] = bootstrap_ci(y_true, y_pred, config.bootstrap, config.seed)
    return m


def measure_robustness(run: ScoredModel, config: EvalConfig, progress: ProgressFactory,
                       journal: artifacts.Journal | None = None, number: int = 0) -> dict:
    """Modality ablation (on the extract directory) and noise robustness (on the preprocess
    directory) of the fuse directory's chain, each skipped with a note when that directory is
    not reachable or holds other items; the fitted chain is the one scored."""
    from mmcli.report.robustness import modality_ablation, noise_robustness

    out: dict = {"ablation": None, "noise": None, "notes": []}
    if "test" not in run.metrics:
        out["notes"].append("robustness is measured on the test split, which is not evaluated "
                            "(eval.splits)")
        return out
    feat = _upstream(run, "extract", "modality ablation", out["notes"])
    if feat is not None:
        out["ablation"] = _kept_ablation(journal, number, run.fitted.columns,
                                         lambda: modality_ablation(run.fitted, feat, run.items))
    pre = _upstream(run, "preprocess", "noise robustness", out["notes"])
    if pre is not None:
        out["noise"] = noise_robustness(run.fitted, pre, config.noise_levels, config.seed,
                                        progress, config.noise_max_items, feat_path=feat,
                                        bootstrap=config.bootstrap, journal=journal,
                                        run=number)
    return out


def _kept_ablation(journal: artifacts.Journal | None, run: int, columns: list[str],
                   compute) -> dict:
    """The modality ablation of model ``run``: a killed run's, from ``journal``, else
    ``compute()``, journaled (its columns in ``columns`` order: the journal sorts keys)."""
    for record in journal.records if journal is not None else []:
        if record.get("run") == run and "ablation" in record:
            saved = record["ablation"]
            return {"clean": saved["clean"], "removed": {c: saved["removed"][c]
                                                         for c in columns}}
    ablation = compute()
    if journal is not None:
        journal.append({"run": run, "ablation": ablation})
    return ablation


def _upstream(run: ScoredModel, stage: str, analysis: str, notes: list[str]) -> Path | None:
    """The ``stage`` directory behind the fuse directory when reachable and holding the same
    items in the same order, else None and a note saying why ``analysis`` is skipped."""
    found = getattr(run.upstream, stage)
    if found is None:
        notes.append(f"{analysis} skipped: the {stage} directory behind {run.fused.path} was "
                     "not reachable")
        return None
    ids = [it["id"] for it in artifacts.read_jsonl(found.path / "items.jsonl")]
    if ids != [it["id"] for it in run.items]:
        notes.append(f"{analysis} skipped: {found.path} holds other items")
        return None
    return found.path


def check_same_fusion(model_path: Path, fused_path: Path) -> None:
    """Refuse to evaluate a model on features fused by another fitted pipeline."""
    for rel in ("fuse/fuse.json", "fuse/fuse.npz"):
        a, b = model_path / "state" / rel, fused_path / "state" / rel
        if a.exists() != b.exists() or (a.exists() and
                                        artifacts.sha256_file(a) != artifacts.sha256_file(b)):
            raise ArtifactError(
                f"{fused_path} was not made by the pipeline that {model_path} was trained on",
                "evaluate on the fuse directory that the model was trained from",
            )


def _name_runs(runs: list[ScoredModel]) -> None:
    """Runs are named by their model directory's name, or its path when names repeat."""
    names = [r.model.path.name for r in runs]
    for r in runs:
        r.name = r.model.path.name if names.count(r.model.path.name) == 1 else str(r.model.path)
    if len({r.name for r in runs}) < len(runs):
        raise UsageError("the same model directory is compared with itself",
                         "give each model directory once")


def _write_predictions(path: Path, items, pred, proba, classes, tasks: dict) -> None:
    from mmcli.stages.predict import missing_column

    extra = {f"prediction_{t}": v for t, v in tasks.items()}
    extra.update(missing_column(items))
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "split", "label", "prediction", *(f"prob_{c}" for c in classes),
                         *extra])
        for k, (it, p, row) in enumerate(zip(items, pred, proba)):
            writer.writerow([it["id"], it["split"], it["label"], p, *(f"{v:.6f}" for v in row),
                             *(v[k] for v in extra.values())])

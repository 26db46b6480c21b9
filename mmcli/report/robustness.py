"""Robustness on the test split, as MultiBench measures it (Liang et al., NeurIPS 2021).

* Modality ablation: accuracy with one modality's feature block replaced by its train mean
  (which the fusion's normalisation maps to zero), run through the fitted fusion and model; a
  ``tokens`` block (word ids) is replaced by padding (no text) instead.
* Noise: the *preprocessed* test data of one modality is corrupted at increasing severities
  ``s`` in [0, 1], then the fitted extractors, fusion and model run on it; the other modalities
  stay clean. Each modality kind declares its perturbations (``perturbations`` and
  ``perturb`` of its class in :mod:`mmcli.kinds`); the built-in ones:

  ============  ===============  ====================================================
  kind          perturbation     at severity s
  ============  ===============  ====================================================
  image         gaussian_noise   additive Gaussian noise, std 128·s grey levels
  image         blur             Gaussian blur, sigma s·width/16 pixels
  audio         white_noise      white noise at SNR 30 - 40·s dB (s = 0: none)
  text          word_drop        each word dropped with probability s
  numeric       gaussian_noise   additive Gaussian noise, std s (scaled units)
  categorical   swap             value replaced with probability s by a random test value
  video         frame_noise      image gaussian_noise on every sampled frame
  video         track_noise      audio white_noise on the sound track
  ============  ===============  ====================================================

  Relative robustness of a curve: the area under accuracy-vs-severity (trapezoids), divided by
  the area of the flat curve at clean accuracy: 1.0 means no loss at any level, 0.5 on average
  half the clean accuracy lost. ``auc`` is the plain area (MultiBench's relative robustness
  when severities span [0, 1]).

Every corruption draws from its own seeded generator, so results do not depend on order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmcli import artifacts
from mmcli.dataset import PreprocessedData
from mmcli.fitted import FittedChain
from mmcli.kinds import get_kind
from mmcli.parallel import one_thread, worker_state
from mmcli.progress import ProgressFactory, silent

#: curve points x test items below which the noise analysis runs in this process
PARALLEL_MIN_WORK = 500


def relative_robustness(levels: list[float], accuracy: list[float]) -> tuple[float, float | None]:
    """(area under accuracy-vs-severity, that area / (severity span · clean accuracy))."""
    s, a = np.asarray(levels, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    auc = float(((a[1:] + a[:-1]) / 2 * np.diff(s)).sum())
    span = float(s[-1] - s[0])
    return auc, (auc / (span * a[0]) if span > 0 and a[0] > 0 else None)


def modality_ablation(fitted: FittedChain, feat_path: Path, items: list[dict]) -> dict:
    """Test accuracy with each modality's block replaced by its train mean and marked
    absent in the presence mask (real missing cells of the test items stay missing)."""
    from mmcli.missing import presence

    test = np.array([k for k, it in enumerate(items) if it["split"] == "test"], dtype=int)
    mask = presence([items[k] for k in test], fitted.columns)
    train = np.array([k for k, it in enumerate(items) if it["split"] == "train"], dtype=int)
    labels = [items[k]["label"] for k in test]
    blocks = [np.asarray(artifacts.load_npy(feat_path / "features" / f"{c}.npy"))
              for c in fitted.columns]
    clean = [b[test] for b in blocks]
    out = {"clean": fitted.accuracy(clean, labels, mask), "removed": {}}
    for k, col in enumerate(fitted.columns):
        replaced = list(clean)
        without = mask.copy()
        without[:, k] = False
        if _is_tokens(fitted.plan[col]):  # the mean of ids is no text: all padding is
            replaced[k] = np.zeros_like(clean[k])
            out["removed"][col] = fitted.accuracy(replaced, labels, without)
            continue
        replaced[k] = np.broadcast_to(blocks[k][train].mean(0, dtype=np.float64),
                                      clean[k].shape).astype(np.float32)
        out["removed"][col] = fitted.accuracy(replaced, labels, without)
    return out


def _is_tokens(extractors: list) -> bool:
    return len(extractors) == 1 and (extractors[0].structure() or {}).get("layout") == "tokens"


def perturb(kind: str, name: str, data, severity: float, rng: np.random.Generator):
    """A corrupted copy of one batch of preprocessed values (see the module docstring)."""
    if float(severity) == 0:
        return data
    return get_kind(kind).perturb(name, data, float(severity), rng)


def noise_robustness(fitted: FittedChain, pre_path: Path, levels: list[float], seed: int,
                     progress: ProgressFactory = silent, max_items: int = 0,
                     feat_path: Path | None = None, jobs: int = 0, bootstrap: int = 0,
                     journal: artifacts.Journal | None = None, run: int = 0) -> dict:
    """Test accuracy per modality, perturbation and severity; see the module docstring.

    With ``max_items`` > 0, a larger test split is subsampled (seeded) to that many items.
    ``feat_path``, an extract directory of the same items, gives the clean features (else they
    are computed from the preprocessed data). The points of the curves are computed on
    ``jobs`` worker processes (0: all cores); each point perturbs one modality, so only that
    modality's features are computed again. With ``bootstrap`` > 0, each point also gets a
    percentile bootstrap interval of its accuracy (``bootstrap`` resamples of its items, seeded
    by ``seed``). With ``journal``, each computed point's predictions are checkpointed (under
    ``run``, the scored model's number) and the points already in it are not computed again;
    within a point, the features of every :data:`SLICE_ITEMS` items are saved beside it
    (:func:`_sliced_features`; :func:`remove_slices` removes them).
    Only the test items with every modality present are perturbed (mmcli.missing).
    """
    from mmcli.parallel import ordered_map

    data = PreprocessedData(pre_path, fitted.pstate.columns, fitted.pstate.sample_rate)
    test = _test_rows(data.items, seed, max_items)
    kinds = {col: fitted.pstate.columns[col] for col in fitted.columns}
    clean = _clean_blocks(fitted, data, test, feat_path)
    points = [(k, p, j) for k, col in enumerate(fitted.columns)
              for p, _ in enumerate(get_kind(kinds[col]).perturbations)
              for j, level in enumerate(levels) if level != 0]
    predicted = {None: _predicted(fitted, clean)}  # severity 0: the clean chain
    predicted.update(_journaled(journal, run, points))
    todo = [point for point in points if point not in predicted]
    # one thread in every pool while points run here: the features' small products (a
    # clip's mel projection) ran 20x slower with a pool per product on a busy 2-core machine
    with progress("eval: robustness", len(points)) as bar, one_thread(None):
        bar.advance(len(points) - len(todo))
        if todo:
            setup = {"chain": fitted, "seed": seed, "levels": list(levels), "kinds": kinds,
                     "raw": {col: data.column(col, test) for col in fitted.columns},
                     "clean": clean, "slices": _slice_folder(journal, run)}
            for point, (pred, seconds) in zip(todo, ordered_map(
                    _timed_point, todo, _noise_jobs(fitted.plan, jobs, len(todo), test.size),
                    _set_noise_setup, (setup,))):
                predicted[point] = pred
                if journal is not None:  # seconds: what the point cost (benchmarks read it)
                    journal.append({"run": run, "point": list(point), "pred": pred.tolist(),
                                    "seconds": round(seconds, 3)})
                bar.advance()
    labels = [data.items[k]["label"] for k in test]
    correct = {point: [fitted.classes[k] == t for k, t in zip(pred, labels)]
               for point, pred in predicted.items()}
    return _curves(fitted.columns, kinds, list(levels), correct, bootstrap, seed)


def _predicted(chain: FittedChain, blocks: list[np.ndarray]) -> np.ndarray:
    """The chain's predicted class (index into its classes) per row of the feature blocks."""
    return chain.predict_proba(chain.fuse(blocks)).argmax(1).astype(np.int32)


#: test items per slice of a point's features (checkpointed; see :func:`_sliced_features`)
SLICE_ITEMS = 64
#: the folder, beside the journal, of the checkpointed slices (removed before the output is
#: committed: :func:`remove_slices`)
SLICES = ".robustness"


def _slice_folder(journal: artifacts.Journal | None, run: int) -> Path | None:
    if journal is None:
        return None
    folder = journal.path.parent / SLICES / str(run)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def remove_slices(directory: Path) -> None:
    """Remove the checkpointed feature slices of the points from a stage's directory."""
    import shutil

    shutil.rmtree(Path(directory) / SLICES, ignore_errors=True)


def _journaled(journal: artifacts.Journal | None, run: int, points: list) -> dict:
    """The points of model ``run`` that ``journal`` holds from an interrupted earlier run."""
    wanted = set(points)
    done = {}
    for record in journal.records if journal is not None else []:
        point = tuple(record.get("point") or ())
        if record.get("run") == run and point in wanted:
            done[point] = np.asarray(record["pred"], dtype=np.int32)
    return done


def _test_rows(items: list[dict], seed: int, max_items: int) -> np.ndarray:
    """The test split's positions with every modality present (mmcli.missing), a seeded
    subsample of ``max_items`` when larger."""
    test = np.array([k for k, it in enumerate(items)
                     if it["split"] == "test" and not it.get("missing")], dtype=int)
    if 0 < max_items < test.size:
        test = np.sort(np.random.default_rng([seed, len(test)]).choice(test, max_items,
                                                                        replace=False))
    return test


def _clean_blocks(fitted: FittedChain, data, test: np.ndarray,
                  feat_path: Path | None) -> list[np.ndarray]:
    """The clean feature blocks of the test rows: extract's (the same extractors on the same
    values) when ``feat_path`` is given, else computed here."""
    if feat_path is not None:
        return [np.asarray(artifacts.load_npy(feat_path / "features" / f"{c}.npy")[test])
                for c in fitted.columns]
    return [fitted.features(col, data.column(col, test)) for col in fitted.columns]


def noise_points(fitted: FittedChain, levels: list[float]) -> int:
    """How many (column, perturbation, severity > 0) points the curves have."""
    return _points({c: fitted.pstate.columns[c] for c in fitted.columns}, levels)


def _points(kinds: dict[str, str], levels: list[float]) -> int:
    return sum(len(get_kind(kind).perturbations) for kind in kinds.values()) * sum(
        1 for level in levels if level != 0)


def start_noise_workers(plan: dict, kinds: dict[str, str], items: int, levels: list[float],
                        jobs: int = 0) -> None:
    """Start the worker processes' fork server now, importing what the extractors of
    ``plan`` (column -> fitted extractors; ``kinds``: column -> kind) need, when
    :func:`noise_robustness` on ``items`` test items will use workers: their start then
    overlaps the caller's work (nothing happens when the server already runs, as in
    ``mmcli run``)."""
    from mmcli.parallel import start_workers

    if _noise_jobs(plan, jobs, _points(kinds, levels), items) > 1:
        modules = {m for extractors in plan.values() for e in extractors
                   for m in e.worker_modules}
        start_workers(jobs, tuple(sorted(modules)))


def _noise_jobs(plan: dict, jobs: int, points: int, items: int) -> int:
    """Worker processes for the curves: one for little work (starting workers would cost
    more) and when an extractor of ``plan`` must stay in this process (a model on a GPU),
    else ``jobs`` (0: all cores), at most one per point. The curves are the same either
    way."""
    from mmcli.parallel import resolve_jobs

    if points * items < PARALLEL_MIN_WORK or not all(
            e.parallel for extractors in plan.values() for e in extractors):
        return 1
    return max(1, min(resolve_jobs(jobs), points))


def _curves(columns: list[str], kinds: dict, levels: list[float], correct: dict,
            bootstrap: int, seed: int) -> dict:
    """The curves of :func:`noise_robustness` from whether each test item is predicted right
    at each (column, perturbation, level) point; severity 0, the clean chain, is None."""
    from mmcli.report.metrics import bootstrap_accuracy

    def key(k: int, p: int, j: int) -> tuple:
        return None if levels[j] == 0 else (k, p, j)

    points = list(correct)
    intervals = dict(zip(points, bootstrap_accuracy([correct[q] for q in points], bootstrap,
                                                    seed))) if bootstrap else {}
    curves = {}
    for k, col in enumerate(columns):
        perturbations = get_kind(kinds[col]).perturbations
        for p, name in enumerate(perturbations):
            right = [correct[key(k, p, j)] for j in range(len(levels))]
            values = [float(np.mean(r)) for r in right]
            auc, relative = relative_robustness(levels, values)
            curves[f"{col}/{name}"] = curve = {
                "column": col, "kind": kinds[col], "perturbation": name,
                "severity": perturbations[name], "n": len(right[0]), "levels": levels,
                "accuracy": values, "auc": auc, "relative_robustness": relative}
            if intervals:
                curve["ci"] = {"level": 0.95, "resamples": bootstrap,
                               "accuracy": [intervals[key(k, p, j)]
                                            for j in range(len(levels))]}
    return curves


#: what the points of :func:`noise_robustness` are computed on (set once per worker; emptied
#: by ordered_map when the points ran in this process)
_NOISE = worker_state()


def _set_noise_setup(setup: dict) -> None:
    _NOISE.update(setup)


def _timed_point(point: tuple[int, int, int]) -> tuple[np.ndarray, float]:
    """:func:`_noise_point` and the seconds it took."""
    import time

    start = time.perf_counter()
    pred = _noise_point(point)
    return pred, time.perf_counter() - start


def _noise_point(point: tuple[int, int, int]) -> np.ndarray:
    """The predicted classes with column ``k`` perturbed by its ``p``-th perturbation at level
    ``j``; its own seeded generator, so they do not depend on where or in which order it runs."""
    k, p, j = point
    s = _NOISE
    chain, col = s["chain"], s["chain"].columns[k]
    kind = s["kinds"][col]
    rng = np.random.default_rng([s["seed"], k, p, j])
    blocks = list(s["clean"])
    name = list(get_kind(kind).perturbations)[p]
    values = perturb(kind, name, s["raw"][col], s["levels"][j], rng)
    blocks[k] = _sliced_features(chain, col, values, s.get("slices"), point)
    return _predicted(chain, blocks)


def _sliced_features(chain: FittedChain, col: str, values, folder: Path | None,
                     point: tuple) -> np.ndarray:
    """The features of a point's perturbed ``values``, :data:`SLICE_ITEMS` items at a time.

    With ``folder`` each slice is saved there as it is done and read back when already there,
    so a point killed midway loses at most one slice. The features of an item do not depend on
    the other items of its batch (extract's chunks rely on it too), so the block is the one a
    single call gives; slices are also faster than one call on the whole split (the audio
    features' intermediate arrays of 64 clips stay in cache: 3.9 s CPU instead of 5.4 s for
    452 one-second clips). Values of a type :func:`_rows` does not know: one call."""
    n = len(values)
    if n <= SLICE_ITEMS or _rows(values, 0, 1) is None:
        return chain.features(col, values)
    parts = []
    for start in range(0, n, SLICE_ITEMS):
        path = folder / ("-".join(map(str, point)) + f"-{start}.npy") if folder else None
        if path is not None and path.exists():
            parts.append(np.load(path, allow_pickle=False))
            continue
        part = chain.features(col, _rows(values, start, start + SLICE_ITEMS))
        if path is not None:
            partial = path.with_name(path.name + ".part")
            with open(partial, "wb") as f:
                np.save(f, part, allow_pickle=False)
            partial.replace(path)  # a slice file is whole or absent
        parts.append(part)
    return np.vstack(parts)


def _rows(values, start: int, stop: int):
    """Items ``start:stop`` of a batch of preprocessed values; None for a type it does not
    know (the batch is then not sliced)."""
    from mmcli.dataset import AudioClips
    from mmcli.kinds.video import VideoClips

    if isinstance(values, AudioClips):
        return AudioClips(values.clips[start:stop], values.sample_rate)
    if isinstance(values, VideoClips):
        audio = _rows(values.audio, start, stop)
        return None if audio is None else VideoClips(values.frames[start:stop], audio)
    if isinstance(values, (np.ndarray, list)):
        return values[start:stop]
    return None


def check_levels(levels) -> list[float]:
    """Severity levels must be increasing numbers in [0, 1] starting at 0."""
    from mmcli.errors import UsageError

    ok = (isinstance(levels, list) and len(levels) >= 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels))
    if ok:
        ok = levels[0] == 0 and all(0 <= a < b <= 1 for a, b in zip(levels, levels[1:]))
    if not ok:
        raise UsageError(f"config 'eval.noise_levels' is {levels!r}",
                         "give increasing severities in [0, 1] starting at 0, e.g. "
                         "[0, 0.25, 0.5, 0.75, 1]")
    return [float(v) for v in levels]

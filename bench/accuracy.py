"""Accuracy of mmcli's default chain against a plain script and a searched configuration.

For each data set of bench/datasets.py (built into bench/.cache/ on first use):

- **default**: the chain a user runs, as subprocesses: ``mmcli preprocess`` (with ``--group
  group`` when the manifest has a group column and preprocess offers the flag; otherwise the
  group column is set to ``ignore``, as it is meta-data, not a feature), ``extract``, ``fuse
  --method concat``, ``train``, ``eval --no-robustness``; test accuracy and macro-F1 from
  eval's metrics.json.
- **baseline**: a plain script on the same items and split (preprocess's items.jsonl): per
  clip the mean and standard deviation of ``librosa.feature.mfcc(n_mfcc=20)``, per image its
  32x32 grey pixels, TF-IDF per text column, numeric columns standardised (mean-imputed),
  categoricals one-hot; ``StandardScaler`` per block, ``np.hstack``,
  ``LogisticRegression(C=0.5)`` trained on the train split.
- **best by val**: a grid over extractor choices per modality kind x models, every
  configuration run through mmcli (``-c config.yaml``; preprocess is shared, extract and fuse
  are shared by the models); the configuration with the best validation accuracy (then macro
  F1) is reported with its test scores. The test-oracle best is printed for information only.

Sets with several modality kinds get a coordinate search (one kind varied at a time, then the
per-kind best choices together) instead of the full product.

    python bench/accuracy.py [--sets digits,photos] [--quick] [--out bench/results/accuracy.md]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets  # noqa: E402  (bench/datasets.py, beside this file)

ROOT = Path(__file__).resolve().parent.parent
# One BLAS/torch thread per subprocess: on a shared 2-core machine torch's default thread pool
# made an MLP train 5x slower (33 s vs 6.6 s); mmcli's own process pool still uses every core.
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       **os.environ,
       "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

#: extractor choices per modality kind besides mmcli's default: name -> (extract list,
#: params, in --quick). Parameters are explicit, so a name means the same after the defaults
#: change; a choice equal to the current default (same list, no params) is skipped.
EXTRACT_CHOICES = {
    "audio": {
        "frames": (["frames"], {}, True),
        "mfcc": (["mfcc"], {}, True),
        "logmel": (["logmel"], {}, False),
        "mfcc+spectral": (["mfcc", "spectral"], {}, False),
        "mfcc+logmel+spectral": (["mfcc", "logmel", "spectral"], {}, True),
    },
    "image": {
        "color_hist+hog": (["color_hist", "hog"], {}, True),
        "pixels16": (["pixels"], {"pixels": {"size": 16}}, True),
        "hog": (["hog"], {}, False),
        "color_hist+hog+lbp": (["color_hist", "hog", "lbp"], {}, True),
        "pixels_pca": (["pixels_pca"], {}, False),
    },
    "text": {
        "tfidf+svd100": (["tfidf"], {"tfidf": {"svd_components": 100}}, True),
        "tfidf": (["tfidf"], {"tfidf": {"svd_components": 0}}, True),
        "tfidf-unigram": (["tfidf"], {"tfidf": {"svd_components": 0, "ngram_max": 1}}, False),
    },
}
#: models: name -> (model, params, in --quick); "auto" is mmcli's default
MODEL_CHOICES = {
    "auto": ("auto", {}, True),
    "logreg C=0.1": ("logreg", {"C": 0.1}, False),
    "logreg C=1": ("logreg", {"C": 1.0}, True),
    "logreg C=10": ("logreg", {"C": 10.0}, False),
    "hist_gb": ("hist_gb", {}, False),
    "mlp": ("mlp", {}, True),
}


def _is_default(names: list, params: dict, default: list) -> bool:
    """Whether a choice is the current default: the same extractors, parameters as default."""
    from mmcli.extractors.catalog import describe

    if names != default:
        return False
    for extractor, values in params.items():
        defaults = {p.name: p.default for p in describe(extractor).params}
        if any(defaults.get(k) != v for k, v in values.items()):
            return False
    return True


def extract_choices(kind: str) -> dict[str, tuple[list, dict, bool]]:
    """mmcli's current default for the kind first (``default``), then the other choices."""
    from mmcli.config import ExtractConfig

    default = list(getattr(ExtractConfig(), kind))
    others = {name: c for name, c in EXTRACT_CHOICES.get(kind, {}).items()
              if not _is_default(c[0], c[1], default)}
    return {"default": (default, {}, True), **others}


def mmcli(*args: str, config: Path | None = None) -> float:
    """Run one mmcli command as a subprocess; return its wall seconds."""
    cmd = [sys.executable, "-m", "mmcli", "-q", *args]
    if config is not None:
        cmd += ["-c", str(config)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    return time.perf_counter() - t0


def write_yaml(path: Path, config: dict) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    return path


def scores(eval_dir: Path) -> dict:
    metrics = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
    return {split: {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
            for split, m in metrics.items() if isinstance(m, dict) and "accuracy" in m}


def has_group_flag() -> bool:
    done = subprocess.run([sys.executable, "-m", "mmcli", "preprocess", "--help"], env=ENV,
                          capture_output=True, text=True)
    return "--group" in done.stdout


def manifest_columns(manifest: Path) -> list[str]:
    with open(manifest, newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


# --- (a) the default chain ---------------------------------------------------------------------

def default_chain(manifest: Path, work: Path, group_flag: bool) -> dict:
    pre_args, config = [], None
    if "group" in manifest_columns(manifest):
        if group_flag:
            pre_args = ["--group", "group"]
        else:
            config = write_yaml(work / "default.yaml", {"preprocess": {"columns":
                                                                       {"group": "ignore"}}})
    walls = {
        "preprocess": mmcli("preprocess", str(manifest), "-o", str(work / "pre"), *pre_args,
                            config=config),
        "extract": mmcli("extract", str(work / "pre"), "-o", str(work / "feat"), config=config),
        "fuse": mmcli("fuse", str(work / "feat"), "-o", str(work / "fused"), "--method",
                      "concat", config=config),
        "train": mmcli("train", str(work / "fused"), "-o", str(work / "model"), config=config),
        "eval": mmcli("eval", str(work / "model"), str(work / "fused"), "-o",
                      str(work / "eval"), "--no-robustness", config=config),
    }
    return {"scores": scores(work / "eval"), "wall": walls, "config": config}


def split_items(pre: Path) -> list[dict]:
    with open(pre / "items.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def column_kinds(pre: Path) -> dict[str, str]:
    state = json.loads((pre / "state" / "preprocess.json").read_text(encoding="utf-8"))
    return state["columns"]


# --- (b) the plain script baseline -------------------------------------------------------------

def baseline(manifest: Path, pre: Path) -> dict:
    """The plain script on preprocess's items and splits; test accuracy and macro F1."""
    import librosa
    from PIL import Image
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    items = split_items(pre)
    split = np.array([it["split"] for it in items])
    y = np.array([it["label"] for it in items])
    train = split == "train"
    blocks = []
    for col, kind in sorted(column_kinds(pre).items()):
        cells = [rows[it["id"]][col] for it in items]
        if kind == "audio":
            feats = []
            for cell in cells:
                audio, sr = librosa.load(manifest.parent / cell, sr=16000)
                mfcc = librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=20)
                feats.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]))
            block = np.array(feats)
        elif kind == "image":
            block = np.array([np.asarray(Image.open(manifest.parent / cell).convert("L")
                                         .resize((32, 32)), dtype=np.float64).ravel() / 255
                              for cell in cells])
        elif kind == "text":
            vec = TfidfVectorizer().fit([c for c, t in zip(cells, train) if t])
            block = vec.transform(cells).toarray()
        elif kind == "numeric":
            values = np.array([float(c) if c.strip() else np.nan for c in cells])
            values[np.isnan(values)] = np.nanmean(values[train])
            block = values[:, None]
        else:  # categorical: one-hot of the train categories
            cats = sorted({c for c, t in zip(cells, train) if t})
            block = np.array([[c == k for k in cats] for c in cells], dtype=np.float64)
        blocks.append(StandardScaler().fit(block[train]).transform(block))
    X = np.hstack(blocks)
    model = LogisticRegression(C=0.5, max_iter=5000).fit(X[train], y[train])
    out = {}
    for name in ("val", "test"):
        mask = split == name
        if mask.any():
            pred = model.predict(X[mask])
            out[name] = {"accuracy": float(accuracy_score(y[mask], pred)),
                         "macro_f1": float(f1_score(y[mask], pred, average="macro"))}
    return {"scores": out, "wall": time.perf_counter() - t0}


# --- (c) the search ----------------------------------------------------------------------------

def grid_options(kinds: dict[str, str], quick: bool) -> dict[str, list[str]]:
    """What the search varies: extractor choices per modality kind, and with several columns,
    which columns are fused (``all`` or one alone, as ``fuse.modalities``)."""
    options = {}
    for kind in sorted(set(kinds.values())):
        if kind in EXTRACT_CHOICES:
            options[kind] = [n for n, (_, _, q) in extract_choices(kind).items()
                             if q or not quick]
    if len(kinds) > 1:
        options["modalities"] = ["all", *sorted(kinds)]
    return options


def extract_grid(options: dict[str, list[str]]) -> list[dict[str, str]]:
    """The full product when one thing varies, else one at a time from the defaults (the
    per-kind best are combined afterwards, see search)."""
    varied = {k: v for k, v in options.items() if len(v) > 1}
    default = {k: v[0] for k, v in options.items()}
    if len(varied) <= 1:
        return [{**default, **dict(zip(varied, combo))}
                for combo in itertools.product(*varied.values())]
    grid = [default]
    for kind, names in varied.items():
        grid += [{**default, kind: name} for name in names[1:]]
    return grid


def search_config(choice: dict[str, str], model: str, base: dict) -> dict:
    extract: dict = {"params": {}}
    for kind, name in choice.items():
        if kind == "modalities":
            continue
        names, params, _ = extract_choices(kind)[name]
        extract[kind] = names
        for extractor, p in params.items():
            extract["params"].setdefault(extractor, {}).update(p)
    fuse = {"method": "concat", "modalities": [] if choice.get("modalities", "all") == "all"
            else [choice["modalities"]]}
    model_name, params, _ = MODEL_CHOICES[model]
    return {**base, "extract": extract, "fuse": fuse,
            "train": {"model": model_name, "params": params},
            "eval": {"bootstrap": 0, "robustness": False}}


def _key(choice: dict[str, str]) -> str:
    return "_".join(f"{k}-{v}" for k, v in sorted(choice.items())).replace("+", "")


def run_choice(choice: dict[str, str], models: list[str], pre: Path, work: Path,
               base: dict) -> list[dict]:
    """Extract (shared by choices that differ only in the fused columns), fuse, then train and
    evaluate every model."""
    feat = work / "search" / "feat" / _key({k: v for k, v in choice.items()
                                            if k != "modalities"})
    d = work / "search" / _key(choice)
    results = []
    try:
        config = write_yaml(d / "extract.yaml", search_config(choice, "auto", base))
        wall = 0.0
        if not (feat / "meta.json").exists():
            wall += mmcli("extract", str(pre), "-o", str(feat), config=config)
        wall += mmcli("fuse", str(feat), "-o", str(d / "fused"), config=config)
    except RuntimeError as exc:
        print(f"    {_key(choice)}: {exc}", file=sys.stderr)
        return [{"extract": choice, "model": m, "error": str(exc)} for m in models]
    for m in models:
        mdir = d / m.replace(" ", "_").replace("=", "")
        config = write_yaml(mdir / "config.yaml", search_config(choice, m, base))
        try:
            t = mmcli("train", str(d / "fused"), "-o", str(mdir / "model"), config=config)
            t += mmcli("eval", str(mdir / "model"), str(d / "fused"), "-o", str(mdir / "eval"),
                       "--no-robustness", config=config)
            results.append({"extract": choice, "model": m, "scores": scores(mdir / "eval"),
                            "wall": wall + t})
        except RuntimeError as exc:
            print(f"    {_key(choice)} {m}: {exc}", file=sys.stderr)
            results.append({"extract": choice, "model": m, "error": str(exc)})
    return results


def _rank(split: str):
    def key(r: dict):
        s = r["scores"].get(split, {"accuracy": -1, "macro_f1": -1})
        return (s["accuracy"], s["macro_f1"])
    return key


def search(pre: Path, work: Path, base: dict, quick: bool) -> list[dict]:
    options = grid_options(column_kinds(pre), quick)
    models = [m for m, (_, _, q) in MODEL_CHOICES.items() if q or not quick]
    grid = extract_grid(options)
    results = []
    for choice in grid:
        print(f"    search {choice}", file=sys.stderr)
        results += run_choice(choice, models, pre, work, base)
    varied = [k for k in grid[0] if len({c[k] for c in grid}) > 1]
    if len(varied) > 1:  # coordinate search: combine each kind's best choice (on val)
        ok = [r for r in results if "scores" in r]
        best = {}
        for kind in varied:
            others = [r for r in ok if all(r["extract"][k] == grid[0][k]
                                           for k in varied if k != kind)]
            best[kind] = max(others, key=_rank("val"))["extract"][kind]
        combined = {**grid[0], **best}
        if combined not in grid:
            print(f"    search {combined} (per-kind best)", file=sys.stderr)
            results += run_choice(combined, models, pre, work, base)
    return results


# --- report ------------------------------------------------------------------------------------

def describe(choice: dict, model: str) -> str:
    parts = []
    for kind, name in sorted(choice.items()):
        if name == "default":
            name = "default=" + "+".join(extract_choices(kind)["default"][0])
        parts.append(f"{kind}: {name}")
    return ", ".join(parts) + f"; {model}"


def run_set(name: str, work: Path, quick: bool, group_flag: bool) -> dict:
    manifest = datasets.build(name)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    print(f"{name}: default chain", file=sys.stderr)
    default = default_chain(manifest, work, group_flag)
    pre = work / "pre"
    items = split_items(pre)
    counts = {s: sum(it["split"] == s for it in items) for s in ("train", "val", "test")}
    print(f"{name}: baseline", file=sys.stderr)
    base_result = baseline(manifest, pre)
    print(f"{name}: search", file=sys.stderr)
    base_config = {"preprocess": {"columns": {"group": "ignore"}}} if (
        "group" in manifest_columns(manifest) and not group_flag) else {}
    grid = search(pre, work, base_config, quick)
    ok = [r for r in grid if "scores" in r and "test" in r["scores"]]
    by_val = max(ok, key=_rank("val"))
    by_test = max(ok, key=_rank("test"))
    d, b, s = (default["scores"]["test"], base_result["scores"]["test"],
               by_val["scores"]["test"])
    return {
        "set": name, "manifest": str(manifest), "items": counts,
        "kinds": column_kinds(pre), "classes": len({it["label"] for it in items}),
        "default": default, "baseline": base_result,
        "best_by_val": by_val, "best_by_test": by_test, "grid": grid,
        "default_ge_baseline": d["accuracy"] >= b["accuracy"],
        "default_within_2_points": d["accuracy"] >= s["accuracy"] - 0.02,
        "wall_total": time.perf_counter() - t0,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| set | modalities | classes | train/val/test | default acc (F1) | baseline acc (F1) "
        "| best by val acc (F1) | best by val: configuration | default >= baseline "
        "| default within 2 points | default chain s | test-oracle best acc |",
        "|---|---|---:|---|---:|---:|---:|---|---|---|---:|---:|",
    ]
    for r in results:
        d, b = r["default"]["scores"]["test"], r["baseline"]["scores"]["test"]
        v, o = r["best_by_val"], r["best_by_test"]
        kinds = ", ".join(f"{c} ({k})" for c, k in sorted(r["kinds"].items()))
        n = r["items"]
        lines.append(
            f"| {r['set']} | {kinds} | {r['classes']} | {n['train']}/{n['val']}/{n['test']} "
            f"| {d['accuracy']:.3f} ({d['macro_f1']:.3f}) "
            f"| {b['accuracy']:.3f} ({b['macro_f1']:.3f}) "
            f"| {v['scores']['test']['accuracy']:.3f} ({v['scores']['test']['macro_f1']:.3f}) "
            f"| {describe(v['extract'], v['model'])} "
            f"| {'yes' if r['default_ge_baseline'] else '**no**'} "
            f"| {'yes' if r['default_within_2_points'] else '**no**'} "
            f"| {sum(r['default']['wall'].values()):.1f} "
            f"| {o['scores']['test']['accuracy']:.3f} ({describe(o['extract'], o['model'])}) |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(datasets.SETS),
                        help="comma-separated set names (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller grid (fewer extractor choices and models)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench" / "accuracy"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "accuracy.md"),
                        help="Markdown table; the full results go beside it as .json")
    args = parser.parse_args()
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    group_flag = has_group_flag()
    results = []
    t0 = time.perf_counter()
    for name in names:
        result = run_set(name, Path(args.work) / name, args.quick, group_flag)
        results.append(result)
        sys.stdout.write(table([result]).splitlines()[-1] + "\n")
        sys.stdout.flush()
    total = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    head = (f"Accuracy benchmark (`python bench/accuracy.py{' --quick' if args.quick else ''}"
            f"`): test accuracy (macro F1); the best configuration is selected on the "
            f"validation split. preprocess --group: {'yes' if group_flag else 'no'}. "
            f"Total {total / 60:.1f} min.\n\n")
    text = head + table(results)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps({"quick": args.quick, "group_flag": group_flag, "total_seconds": total,
                    "sets": results}, indent=1, sort_keys=True, default=str) + "\n",
        encoding="utf-8")
    sys.stdout.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

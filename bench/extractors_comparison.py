"""Which extractors should be the defaults? Test accuracy of every choice, per modality and fused.

For each labelled dataset, runs `preprocess` once, then for each extractor choice of a modality
fits the extractors on the train split, applies them to every item, and trains mmcli's
`logreg` on the train split through `concat` fusion (as `mmcli fuse` and `mmcli train` do):

* single: the modality's block alone;
* fused: all modalities of the dataset, the other kinds with their current defaults.

Datasets: (a) the generated sample data (sample_data/manifest.csv: image, audio, text, value);
(b) scikit-learn's bundled 8x8 digits (1,797 images, no download) written as PNG files;
(c) Python docstrings of four libraries installed here (numpy, scipy, scikit-learn, torch),
labelled by library: real technical English text; (d) the real speech sets in
../shared/data when present (audio). Prints a Markdown table and writes it to
bench/results/extractors_comparison.md and, on a full run, into docs/extractors.md;
`--reference` rewrites the extractor reference in docs/extractors.md from the extractors'
docstrings instead.

    python bench/extractors_comparison.py [--work DIR] [--data ../shared/data] [--quick]
    python bench/extractors_comparison.py --reference
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# label -> extractors [(name, params)], per kind
H8, H16 = ("hog", {"pixels_per_cell": 8}), ("hog", {"pixels_per_cell": 16})
TFIDF = ("tfidf", {"svd_components": 0})

# label -> extractors [(name, params)], per kind; parameters that are defaults are spelled out
# when the label depends on them, so the table keeps its meaning when a default changes
CHOICES: dict[str, dict[str, list]] = {
    "image": {
        "color_hist": [("color_hist", {})],
        "color_hist hsv": [("color_hist", {"space": "hsv"})],
        "pixels": [("pixels", {})],
        "hog 16px cells": [H16],
        "hog 8px cells": [H8],
        "lbp": [("lbp", {})],
        "pixels_pca": [("pixels_pca", {})],
        "color_hist + pixels": [("color_hist", {}), ("pixels", {})],
        "color_hist + hog 16px": [("color_hist", {}), H16],
        "color_hist + hog 8px": [("color_hist", {}), H8],
        "color_hist + hog 8px + lbp": [("color_hist", {}), H8, ("lbp", {})],
        "color_hist + pixels + hog 8px": [("color_hist", {}), ("pixels", {}), H8],
    },
    "audio": {
        "mfcc": [("mfcc", {})],
        "mfcc deltas 2 + p10/p90": [("mfcc", {"deltas": 2,
                                              "stats": ["mean", "std", "p10", "p90"]})],
        "logmel": [("logmel", {})],
        "chroma": [("chroma", {})],
        "spectral": [("spectral", {})],
        "frames (resample)": [("frames", {"mode": "resample"})],
        "frames pad": [("frames", {"mode": "pad"})],
        "mfcc + spectral": [("mfcc", {}), ("spectral", {})],
        "mfcc + logmel": [("mfcc", {}), ("logmel", {})],
        "mfcc + frames": [("mfcc", {}), ("frames", {"mode": "resample"})],
        "logmel + frames": [("logmel", {}), ("frames", {"mode": "resample"})],
        "mfcc + logmel + spectral": [("mfcc", {}), ("logmel", {}), ("spectral", {})],
    },
    "text": {
        "tfidf": [TFIDF],
        "tfidf svd 100": [("tfidf", {"svd_components": 100})],
        "tfidf svd 300": [("tfidf", {"svd_components": 300})],
        "word2vec": [("word2vec", {})],
        "fasttext": [("fasttext", {})],
        "doc2vec": [("doc2vec", {})],
        "tfidf + word2vec": [TFIDF, ("word2vec", {})],
        "tfidf + fasttext": [TFIDF, ("fasttext", {})],
    },
    "numeric": {
        "numeric": [("numeric", {})],
        "numeric robust": [("numeric", {"scaling": "robust"})],
    },
}


# the defaults before this comparison, to show what changing them bought
BEFORE = {"image": [("color_hist", {}), ("pixels", {})], "audio": [("mfcc", {})],
          "text": [TFIDF, ("word2vec", {})], "numeric": [("numeric", {})]}


def defaults() -> dict[str, list]:
    from mmcli.config import ExtractConfig

    config = ExtractConfig()
    return {kind: [(name, {}) for name in getattr(config, kind)] for kind in CHOICES}


# --- datasets --------------------------------------------------------------------------------

def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def digits_manifest(root: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    for k, (im, label) in enumerate(zip(digits.images, digits.target)):
        path = root / "media" / f"d{k:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((im * 255 / 16).astype(np.uint8), "L").save(path)
        rows.append({"id": f"d{k:04d}", "image": str(path.relative_to(root)),
                     "label": str(label)})
    return write_manifest(root / "manifest.csv", rows)


def docstrings_manifest(root: Path, per_class: int = 150) -> Path:
    """First paragraphs of public docstrings of four libraries, labelled by library."""
    import importlib
    import inspect
    import pkgutil

    def paragraphs(package: str) -> list[str]:
        found: dict[str, str] = {}
        pkg = importlib.import_module(package)
        names = [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")
                             if "test" not in m.name and "._" not in m.name]
        for modname in sorted(names):
            try:
                module = importlib.import_module(modname)
            except Exception:  # noqa: BLE001 - optional submodules
                continue
            for attr in sorted(dir(module)):
                if attr.startswith("_"):
                    continue
                obj = getattr(module, attr, None)
                doc = inspect.getdoc(obj) if callable(obj) else None
                if not doc:
                    continue
                first = " ".join(doc.split("\n\n")[0].split())
                if 40 <= len(first) <= 400 and package not in first.lower():
                    found.setdefault(first, package)
        return sorted(found)

    import warnings

    rows = []
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for package in ("numpy", "scipy", "sklearn", "torch"):
            texts = paragraphs(package)
            pick = rng.choice(len(texts), size=min(per_class, len(texts)), replace=False)
            rows += [{"id": f"{package}{k:04d}", "text": texts[i], "label": package}
                     for k, i in enumerate(sorted(pick))]
    return write_manifest(root / "manifest.csv", rows)


# --- measurement -----------------------------------------------------------------------------

class Dataset:
    def __init__(self, name: str, manifest: Path, work: Path, seed: int):
        from mmcli.config import PreprocessConfig
        from mmcli.dataset import PreprocessedData
        from mmcli.stages import preprocess
        from mmcli.stages.preprocess import PreprocessState

        self.name = name
        pre = work / name / "pre"
        preprocess(manifest, pre, PreprocessConfig(seed=seed))
        self.state = PreprocessState.load(pre / "state")
        self.data = PreprocessedData(pre, self.state.columns, self.state.sample_rate)
        classes = {c: k for k, c in enumerate(self.state.classes)}
        self.y = np.array([classes[it["label"]] for it in self.data.items])
        splits = np.array([it["split"] for it in self.data.items])
        self.train, self.test = splits == "train", splits == "test"
        self.seed = seed
        self._cache: dict[tuple, np.ndarray] = {}
        self.seconds: dict[tuple, float] = {}

    def features(self, col: str, name: str, params: dict) -> np.ndarray:
        from mmcli.extractors import build_extractor

        key = (col, name, json.dumps(params, sort_keys=True))
        if key not in self._cache:
            t0 = time.perf_counter()
            kind = self.state.columns[col]
            ext = build_extractor(name, kind, dict(params))
            if "seed" in {f for f in vars(ext.params)} and "seed" not in params:
                ext.params.seed = self.seed
            train_idx = np.flatnonzero(self.train)
            ext.fit(self.data.column(col, train_idx) if ext.needs_fit else None)
            blocks = [ext.transform(self.data.column(col, slice(a, a + 512)))
                      for a in range(0, len(self.data), 512)]
            self._cache[key] = np.vstack(blocks)
            self.seconds[key] = time.perf_counter() - t0
        return self._cache[key]

    def block(self, col: str, choice: list) -> np.ndarray:
        return np.hstack([self.features(col, n, p) for n, p in choice])

    def accuracy(self, blocks: list[np.ndarray]) -> float:
        from mmcli.fusion import FUSIONS
        from mmcli.models import build_model

        fusion = FUSIONS.get("concat")(seed=self.seed).fit([b[self.train] for b in blocks])
        x = fusion.transform(blocks)
        model = build_model("logreg", {}, self.seed, "cpu")
        model.fit(x[self.train], self.y[self.train], len(self.state.classes))
        return float((model.predict_proba(x[self.test]).argmax(1) == self.y[self.test]).mean())


def compare(ds: Dataset, rows: list[dict], quick: bool) -> None:
    base = defaults()
    columns = ds.state.columns
    for col, kind in columns.items():
        if kind not in CHOICES:
            continue
        for label, choice in CHOICES[kind].items():
            if quick and len(choice) > 1:
                continue
            t0 = time.perf_counter()
            single = ds.accuracy([ds.block(col, choice)])
            fused = None
            if len(columns) > 1:
                fused = ds.accuracy([ds.block(c, choice if c == col else base[k])
                                     for c, k in columns.items()])
            secs = sum(ds.seconds[(col, n, json.dumps(p, sort_keys=True))] for n, p in choice)
            rows.append({"dataset": ds.name, "kind": kind, "column": col, "choice": label,
                         "dim": ds.block(col, choice).shape[1], "single": single,
                         "fused": fused, "extract_s": secs, "n": len(ds.y)})
            print(f"{ds.name:>24} {col:>8} {label:<28} single {single:.3f} fused "
                  f"{'-' if fused is None else f'{fused:.3f}'} "
                  f"({time.perf_counter() - t0:.1f}s)", file=sys.stderr)


def compare_presets(ds: Dataset, rows: list[dict]) -> None:
    """Fused accuracy of the old and the new default sets (multimodal datasets only)."""
    columns = ds.state.columns
    if len(columns) < 2:
        return
    for label, preset in (("previous defaults", BEFORE), ("new defaults", defaults())):
        acc = ds.accuracy([ds.block(c, preset[k]) for c, k in columns.items()])
        rows.append({"dataset": ds.name, "kind": "all", "column": "all", "choice": label,
                     "dim": sum(ds.block(c, preset[k]).shape[1] for c, k in columns.items()),
                     "single": None, "fused": acc, "extract_s": 0.0, "n": len(ds.y)})


def table(rows: list[dict], seed: int) -> str:
    lines = [f"Test-split accuracy, logreg through concat fusion (seed {seed}). "
             "*single*: the modality alone; *fused*: with the dataset's other modalities at "
             "their defaults. Seconds: fit + transform of every item, one process.", "",
             "| dataset | items | modality | extractors | dim | single | fused | seconds |",
             "|---|---:|---|---|---:|---:|---:|---:|"]
    presets = [r for r in rows if r["kind"] == "all"]
    rows = [r for r in rows if r["kind"] != "all"]
    for r in rows:
        fused = "" if r["fused"] is None else f"{r['fused']:.3f}"
        lines.append(f"| {r['dataset']} | {r['n']} | {r['column']} ({r['kind']}) | "
                     f"{r['choice']} | {r['dim']} | {r['single']:.3f} | {fused} | "
                     f"{r['extract_s']:.1f} |")
    lines += ["", "Mean single-modality accuracy per choice over the datasets with that "
              "modality:", "", "| modality | extractors | datasets | mean single | mean fused |",
              "|---|---|---:|---:|---:|"]
    for kind in CHOICES:
        for label in CHOICES[kind]:
            mine = [r for r in rows if r["kind"] == kind and r["choice"] == label]
            if not mine:
                continue
            fused = [r["fused"] for r in mine if r["fused"] is not None]
            lines.append(f"| {kind} | {label} | {len(mine)} | "
                         f"{np.mean([r['single'] for r in mine]):.3f} | "
                         f"{np.mean(fused):.3f} |" if fused else
                         f"| {kind} | {label} | {len(mine)} | "
                         f"{np.mean([r['single'] for r in mine]):.3f} | |")
    if presets:
        lines += ["", "Every modality fused, with the previous and the new default extractors:",
                  "", "| dataset | extractors | dim | fused |", "|---|---|---:|---:|"]
        lines += [f"| {r['dataset']} | {r['choice']} | {r['dim']} | {r['fused']:.3f} |"
                  for r in presets]
    return "\n".join(lines) + "\n"


def replace_section(docs: Path, marker: str, body: str) -> None:
    """Replace the text between ``<!-- marker:start -->`` and ``<!-- marker:end -->``."""
    text = docs.read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->\n", f"<!-- {marker}:end -->"
    a, b = text.index(start) + len(start), text.index(end)
    docs.write_text(text[:a] + "\n" + body + "\n" + text[b:], encoding="utf-8")


def write_reference(docs: Path) -> None:
    from mmcli.extractors.catalog import markdown_reference

    replace_section(docs, "reference", markdown_reference())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(ROOT / "runs/bench/extractors"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="single extractors only")
    parser.add_argument("--only", default="", help="comma-separated dataset names")
    parser.add_argument("--out", default=str(ROOT / "bench/results/extractors_comparison.md"))
    parser.add_argument("--reference", action="store_true",
                        help="rewrite the reference section of docs/extractors.md and exit")
    args = parser.parse_args()
    if args.reference:
        write_reference(ROOT / "docs" / "extractors.md")
        return 0
    import logging

    logging.getLogger("gensim").setLevel(logging.WARNING)
    work = Path(args.work)
    sets = [("sample_data", lambda: ROOT / "sample_data" / "manifest.csv"),
            ("sklearn_digits", lambda: digits_manifest(work / "digits_data")),
            ("library_docstrings", lambda: docstrings_manifest(work / "docstrings_data"))]
    for name in ("arabic_speech_commands", "speech_commands_mini"):
        manifest = Path(args.data) / name / "manifest.csv"
        if manifest.exists():
            sets.append((name, lambda m=manifest: m))
        else:
            print(f"skipping {name}: {manifest} not found", file=sys.stderr)
    only = set(filter(None, args.only.split(",")))
    rows: list[dict] = []
    for name, make in sets:
        if only and name not in only:
            continue
        ds = Dataset(name, make(), work, args.seed)
        compare(ds, rows, args.quick)
        compare_presets(ds, rows)
    text = table(rows, args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    (Path(args.out).with_suffix(".json")).write_text(json.dumps(rows, indent=1) + "\n",
                                                      encoding="utf-8")
    if not only and not args.quick:  # a full run is the record behind the defaults
        replace_section(ROOT / "docs" / "extractors.md", "comparison", text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which audio and text extractors should be the defaults, across data of different shapes?

For every set, runs ``preprocess`` once, then for each extractor choice fits the extractors on
the train split, applies them to every item and scores two classifiers on the test split:

* ``LR``: scikit-learn logistic regression on per-feature standardised features, ``C`` picked
  on the val split among 0.01, 0.1, 1, 10, 100 (the way a careful script would do it);
* ``chain``: mmcli's own ``concat`` fusion + ``logreg`` (C = 1), as ``mmcli fuse`` and
  ``mmcli train --model logreg`` do.

Sets (from bench/datasets.py, built into ``--work``): audio: the sample data's 0.5-s clips,
the two real 1-s keyword sets of ../shared/data, ``long_utterances`` (4-7.5 s, 4-6 Arabic
keywords of one speaker, label = speaker) and ``padded_keywords`` (built here: each Arabic
keyword at a random place in 2-6 s of quiet noise, label = word); text: the sample data's
short sentences, ``short_sentences`` (one-line docstring summaries of 6 packages) and
``long_docstrings`` (built here: whole docstrings, 60-400 words, of the same packages).

    python bench/extractor_defaults.py [--work DIR] [--sets NAME ...]

Prints a Markdown table (and writes it to bench/results/extractor_defaults.md). Features are
cached under ``--work``; delete its ``pre/*/features`` folders after changing an extractor.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

MEAN_STD = ["mean", "std"]
PCT = ["mean", "std", "p10", "p50", "p90"]
AUDIO = {
    "frames (old default)": [("frames", {})],
    "mfcc mean/std": [("mfcc", {"stats": MEAN_STD})],
    "mfcc mean/std/p10/p50/p90": [("mfcc", {"stats": PCT})],
    "prosody": [("prosody", {})],
    "mfcc + spectral": [("mfcc", {"stats": MEAN_STD}), ("spectral", {})],
    "mfcc + spectral + prosody": [("mfcc", {"stats": MEAN_STD}), ("spectral", {}),
                                  ("prosody", {})],
    "mfcc pct + spectral + prosody": [("mfcc", {"stats": PCT}), ("spectral", {}),
                                      ("prosody", {})],
    "mfcc pct + spectral pct + prosody": [("mfcc", {"stats": PCT}), ("spectral", {"stats": PCT}),
                                          ("prosody", {})],
    "mfcc + spectral + prosody + frames": [("mfcc", {"stats": MEAN_STD}), ("spectral", {}),
                                           ("prosody", {}), ("frames", {})],
    "mfcc pct + spectral + prosody + frames": [("mfcc", {"stats": PCT}), ("spectral", {}),
                                               ("prosody", {}), ("frames", {})],
}
# tfidf skips its SVD with character n-grams; "svd N" rows reduce its output here, with a
# TruncatedSVD fitted on the train rows as tfidf does without them
TEXT = {
    "tfidf words, svd 100 (old default)": [("tfidf", {"chars": "off"})],
    "tfidf words + chars, svd 100": [("tfidf", {"chars": "on"}, 100)],
    "tfidf words, no svd": [("tfidf", {"chars": "off", "svd_components": 0})],
    "tfidf words + chars, no svd (new default on short texts)": [("tfidf", {"chars": "on"})],
    "tfidf words + chars, svd 300": [("tfidf", {"chars": "on"}, 300)],
}


def _datasets():
    """bench/datasets.py: this tree's, else the bench branch's worktree beside it."""
    for path in (ROOT / "bench" / "datasets.py",
                 ROOT.parent / "wt-bench" / "bench" / "datasets.py"):
        if path.exists():
            spec = importlib.util.spec_from_file_location("bench_datasets", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise SystemExit("bench/datasets.py not found")


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def padded_keywords(ds, cache: Path) -> Path:
    """The 900 Arabic keywords, each at a random place in 2-6 s of quiet noise (-50 dBFS)."""
    manifest = cache / "padded_keywords" / "manifest.csv"
    if manifest.exists():
        return manifest
    import soundfile as sf

    src = ds.SHARED / "arabic_speech_commands"
    rng = np.random.default_rng(0)
    rows = []
    with open(src / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            audio, sr = sf.read(src / row["speech"], dtype="float32")
            total = int(rng.uniform(2, 6) * sr)
            out = rng.normal(0, 10 ** (-50 / 20), max(total, len(audio))).astype(np.float32)
            start = int(rng.integers(0, len(out) - len(audio) + 1))
            out[start:start + len(audio)] += audio
            name = f"audio/{row['id']}.wav"
            (manifest.parent / "audio").mkdir(parents=True, exist_ok=True)
            sf.write(manifest.parent / name, out, sr, subtype="PCM_16")
            rows.append({"id": row["id"], "speech": name, "label": row["label"],
                         "split": row["split"]})
    return _write(manifest, rows)


def long_docstrings(cache: Path, per_class: int = 120) -> Path:
    """Whole docstrings (60-400 words, package names removed) of 4 packages, by package."""
    import importlib
    import inspect
    import re
    import warnings

    manifest = cache / "long_docstrings" / "manifest.csv"
    if manifest.exists():
        return manifest
    give = re.compile(r"\b(numpy|np|scipy|sklearn|scikit-learn|scikit|torch|pytorch)\b\.?", re.I)
    modules = {"numpy": ["numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma"],
               "scipy": ["scipy.signal", "scipy.stats", "scipy.linalg", "scipy.optimize",
                         "scipy.ndimage", "scipy.interpolate", "scipy.special"],
               "sklearn": ["sklearn.linear_model", "sklearn.ensemble", "sklearn.metrics",
                           "sklearn.preprocessing", "sklearn.decomposition", "sklearn.cluster",
                           "sklearn.model_selection", "sklearn.utils"],
               "torch": ["torch", "torch.nn", "torch.nn.functional", "torch.linalg",
                         "torch.distributions", "torch.optim"]}
    rng = np.random.default_rng(0)
    found: dict[str, set] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for package, names in modules.items():
            found[package] = set()
            for modname in names:
                module = importlib.import_module(modname)
                for attr in sorted(dir(module)):
                    obj = None if attr.startswith("_") else getattr(module, attr, None)
                    doc = inspect.getdoc(obj) if callable(obj) else None
                    if doc:
                        text = " ".join(give.sub("", doc).split())
                        if 60 <= len(text.split()) <= 400:
                            found[package].add(text)
    rows = []
    for package in sorted(found):
        pool = sorted(found[package])
        for j in np.sort(rng.choice(len(pool), min(per_class, len(pool)), replace=False)):
            rows.append({"text": pool[j], "label": package})
    order = rng.permutation(len(rows))
    for rank, k in enumerate(order):
        rows[k]["split"] = ("train", "train", "train", "val", "test")[rank % 5]
    rows = [{"id": f"t{k:04d}", **r} for k, r in enumerate(rows)]
    return _write(manifest, rows)


def sets(work: Path) -> dict[str, tuple[Path, str]]:
    """name -> (manifest, the column scored)."""
    ds = _datasets()
    ds.CACHE = work / "cache"  # build the sets here, not in the other tree
    return {
        "sample audio": (lambda: ds.sample(), "audio"),
        "arabic_commands": (ds.arabic_commands, "speech"),
        "speech_commands_mini": (ds.speech_commands_mini, "speech"),
        "long_utterances": (ds.long_utterances, "speech"),
        "padded_keywords": (lambda: padded_keywords(ds, ds.CACHE), "speech"),
        "sample text": (lambda: ds.sample(), "text"),
        "short_sentences": (ds.short_sentences, "sentence"),
        "long_docstrings": (lambda: long_docstrings(ds.CACHE), "text"),
    }


class Scored:
    """A preprocessed set: features per extractor (cached) and the two scores."""

    def __init__(self, name: str, manifest: Path, column: str, work: Path):
        from mmcli.config import PreprocessConfig
        from mmcli.dataset import PreprocessedData
        from mmcli.stages import preprocess
        from mmcli.stages.preprocess import PreprocessState

        pre = work / "pre" / name.replace(" ", "_")
        if not (pre / "meta.json").exists():
            # only the scored column (and the label) matter here
            with open(manifest, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f))
            kinds = {c: "ignore" for c in header if c not in (column, "id", "label", "split")}
            preprocess(manifest, pre, PreprocessConfig(columns=kinds, jobs=2))
        self.pre = pre
        self.state = PreprocessState.load(pre / "state")
        self.data = PreprocessedData(pre, self.state.columns, self.state.sample_rate)
        self.column = column
        self.kind = self.state.columns[column]
        classes = {c: k for k, c in enumerate(self.state.classes)}
        self.y = np.array([classes[it["label"]] for it in self.data.items])
        splits = np.array([it["split"] for it in self.data.items])
        self.split = {s: np.flatnonzero(splits == s) for s in ("train", "val", "test")}
        self.cache: dict[str, np.ndarray] = {}
        self.seconds: dict[str, float] = {}
        self.decisions: list[str] = []

    def features(self, name: str, params: dict, svd: int = 0) -> np.ndarray:
        from mmcli.extractors import build_extractor

        if svd:
            from sklearn.decomposition import TruncatedSVD

            x = self.features(name, params).astype(np.float64)
            k = min(svd, x.shape[1] - 1, len(self.split["train"]))
            reduce = TruncatedSVD(n_components=k, random_state=0).fit(x[self.split["train"]])
            return (x @ reduce.components_.T).astype(np.float32)
        key = f"{name} {sorted(params.items())}"
        stored = self.pre / "features" / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".npy")
        if key not in self.cache and stored.exists():  # delete the folder after code changes
            self.cache[key], self.seconds[key] = np.load(stored), 0.0
        if key not in self.cache:
            t0 = time.perf_counter()
            ext = build_extractor(name, self.kind, dict(params))
            train = self.data.column(self.column, self.split["train"])
            ext.fit(train if ext.needs_fit else None)
            self.cache[key] = np.vstack([
                ext.transform(self.data.column(self.column, slice(a, a + 256)))
                for a in range(0, len(self.y), 256)])
            self.seconds[key] = time.perf_counter() - t0
            stored.parent.mkdir(exist_ok=True)
            np.save(stored, self.cache[key])
        if name in ("frames", "tfidf") and not self.decisions:
            train = self.data.column(self.column, self.split["train"])
            if name == "frames":
                reason = build_extractor("frames", "audio", {}).applies_to(train)[1]
                self.decisions.append("frames(auto) " + reason)
            else:
                auto = build_extractor("tfidf", "text", {})._use_chars(train)
                self.decisions.append(f"tfidf chars auto: {'on' if auto[0] else 'off'} "
                                      f"({auto[1]})")
        return self.cache[key]

    def lr(self, x: np.ndarray) -> float:
        """Test accuracy, per-feature standardised logistic regression, C chosen on val."""
        import warnings

        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        tr, va, te = self.split["train"], self.split["val"], self.split["test"]
        scaler = StandardScaler().fit(x[tr])
        z = scaler.transform(x)
        best = (-1.0, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for c in (0.01, 0.1, 1.0, 10.0, 100.0):
                model = LogisticRegression(C=c, max_iter=2000).fit(z[tr], self.y[tr])
                score = float((model.predict(z[va]) == self.y[va]).mean()) if len(va) else 0.0
                if score > best[0]:
                    best = (score, model)
        return float((best[1].predict(z[te]) == self.y[te]).mean())

    def chain(self, x: np.ndarray) -> float:
        """Test accuracy through mmcli's concat fusion and logreg (C = 1)."""
        from mmcli.fusion import FUSIONS
        from mmcli.models import build_model

        tr, te = self.split["train"], self.split["test"]
        fusion = FUSIONS.get("concat")(seed=0).fit([x[tr]])
        z = fusion.transform([x])
        model = build_model("logreg", {}, 0, "cpu")
        model.fit(z[tr], self.y[tr], len(self.state.classes))
        return float((model.predict_proba(z[te]).argmax(1) == self.y[te]).mean())


def describe(s: Scored) -> str:
    if s.kind == "audio":
        clips = s.data.column(s.column, s.split["train"]).clips
        secs = np.array([len(c) for c in clips]) / s.state.sample_rate
        return f"{np.median(secs):.1f} s ({secs.min():.1f}-{secs.max():.1f})"
    texts = s.data.column(s.column, s.split["train"])
    from mmcli.extractors.text import tokenize

    return f"{np.median([len(tokenize(t)) for t in texts]):.0f} words"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path,
                        default=Path(tempfile.gettempdir()) / "mmcli-extractor-defaults")
    parser.add_argument("--sets", nargs="*", default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    rows = []
    for name, (build, column) in sets(args.work).items():
        if args.sets and name not in args.sets:
            continue
        try:
            manifest = build()
        except FileNotFoundError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        s = Scored(name, manifest, column, args.work)
        shape = describe(s)
        choices = AUDIO if s.kind == "audio" else TEXT
        for label, choice in choices.items():
            x = np.hstack([s.features(*c) for c in choice])
            secs = sum(s.seconds[f"{c[0]} {sorted(c[1].items())}"] for c in choice)
            row = {"set": name, "shape": shape, "classes": len(s.state.classes),
                   "train/val/test": "/".join(str(len(s.split[k])) for k in
                                              ("train", "val", "test")),
                   "choice": label, "dim": x.shape[1], "lr": s.lr(x), "chain": s.chain(x),
                   "seconds": secs}
            rows.append(row)
            print(f"{name:>22} {label:<40} dim {x.shape[1]:5d} LR {row['lr']:.3f} "
                  f"chain {row['chain']:.3f} ({secs:.1f} s)", file=sys.stderr, flush=True)
        for d in dict.fromkeys(s.decisions):
            print(f"{name:>22} decision: {d}", file=sys.stderr)
    text = table(rows)
    print(text)
    out = ROOT / "bench" / "results" / "extractor_defaults.md"
    if not args.sets:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")


def table(rows: list[dict]) -> str:
    lines = ["| set | train clips / texts | classes | train/val/test | extractors | dim | "
             "LR | chain |", "|---|---|---:|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['shape']} | {r['classes']} | {r['train/val/test']} | "
                     f"{r['choice']} | {r['dim']} | {r['lr']:.3f} | {r['chain']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

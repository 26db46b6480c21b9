"""Benchmark data sets of different shapes, built deterministically into bench/.cache/<name>/.

Each builder writes the set once (a later call finds ``manifest.csv`` and returns at once) and
returns the manifest's path. Manifests are in mmcli's format: ``id``, media paths relative to
the manifest (absolute for the shared speech sets, which are read in place), text and numeric
columns, ``label``, and ``split`` (train/val/test) on every set but ``sample``; ``group``
names the speaker where there is one. docs/accuracy.md describes where each set comes from.

    python bench/datasets.py [NAME ...]      # build (all by default) and print the manifests
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
SHARED = ROOT.parent / "shared" / "data"
if not SHARED.exists():  # a worktree beside the main checkout: /work/<tree>/ and /work/shared/
    SHARED = Path("/work/shared/data")
SEED = 0


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    """Write rows atomically (the manifest is the 'built' marker of a set)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def _split_per_class(labels: list[str], rng: np.random.Generator,
                     fractions=(0.6, 0.2, 0.2)) -> list[str]:
    """A stratified train/val/test assignment, seeded."""
    out = [""] * len(labels)
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        idx = [idx[j] for j in rng.permutation(len(idx))]
        n_train = round(fractions[0] * len(idx))
        n_val = round(fractions[1] * len(idx))
        for k, i in enumerate(idx):
            out[i] = "train" if k < n_train else "val" if k < n_train + n_val else "test"
    return out


# --- 1. the repo's sample data -----------------------------------------------------------------

def sample() -> Path:
    """sample_data/manifest.csv as is: image, audio, text, numeric; hash split by mmcli."""
    return ROOT / "sample_data" / "manifest.csv"


# --- 2. scikit-learn digits as images ----------------------------------------------------------

def digits() -> Path:
    """1,000 of scikit-learn's 8x8 digits as 32x32 grey PNGs, plus a noisy 'ink' number."""
    out = CACHE / "digits"
    manifest = out / "manifest.csv"
    if manifest.exists():
        return manifest
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(SEED)
    keep = np.sort(rng.choice(len(data.target), 1000, replace=False))
    labels = [str(data.target[i]) for i in keep]
    splits = _split_per_class(labels, rng)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, i in enumerate(keep):
        pixels = (data.images[i] / 16.0 * 255).astype(np.uint8)
        img = Image.fromarray(pixels, mode="L").resize((32, 32), Image.BILINEAR)
        name = f"images/d{i:04d}.png"
        img.save(out / name)
        ink = float(data.images[i].mean() / 16.0 + rng.normal(0, 0.05))
        rows.append({"id": f"d{i:04d}", "image": name, "ink": f"{ink:.4f}",
                     "label": labels[k], "split": splits[k]})
    return _write_manifest(manifest, rows)


# --- 3./4. the shared real speech sets ---------------------------------------------------------

def _shared_speech(name: str, speaker_of) -> Path:
    """The shared manifest with absolute media paths and a ``group`` (speaker) column."""
    out = CACHE / name
    manifest = out / "manifest.csv"
    if manifest.exists():
        return manifest
    src = SHARED / name / "manifest.csv"
    if not src.exists():
        raise FileNotFoundError(f"{src} not found: the shared speech sets live in ../shared/data")
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["speech"] = str((src.parent / row["speech"]).resolve())
        label, split = row.pop("label"), row.pop("split")
        row.update(label=label, split=split, group=speaker_of(row["speech"]))
    return _write_manifest(manifest, rows)


def arabic_commands() -> Path:
    """900 one-second Arabic keywords, 10 classes, 30 speakers (speaker-disjoint splits)."""
    return _shared_speech("arabic_speech_commands",
                          lambda p: "spk" + Path(p).stem.split("_")[0][-2:])


def speech_commands_mini() -> Path:
    """300 one-second English words, 30 classes, 41 speakers (official lists)."""
    return _shared_speech("speech_commands_mini", lambda p: Path(p).stem.split("_")[0])


# --- 5. long utterances: speaker identity from multi-second real speech ------------------------

ARABIC_WORDS = ("close", "down", "left", "no", "open", "right", "start", "stop", "up", "yes")


def long_utterances() -> Path:
    """600 utterances of 4-6 Arabic keywords of one speaker (4-7.5 s); label = speaker.

    Train utterances are made of recording round 1, val of round 2, test of round 3, so the
    test recordings were never heard in training. The transcript (the English keyword names)
    says nothing about the speaker.
    """
    out = CACHE / "long_utterances"
    manifest = out / "manifest.csv"
    if manifest.exists():
        return manifest
    import soundfile as sf

    base = SHARED / "arabic_speech_commands" / "dataset"
    if not base.exists():
        raise FileNotFoundError(f"{base} not found: the shared speech sets live in ../shared/data")
    rng = np.random.default_rng(SEED)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    per_split = {"train": (1, 10), "val": (2, 5), "test": (3, 5)}  # round, utterances/speaker
    for spk in range(1, 31):
        for split, (rnd, count) in per_split.items():
            clips = [(w, base / w / f"{spk:08d}_NO_{rnd:02d}.wav") for w in ARABIC_WORDS]
            for u in range(count):
                n = int(rng.integers(4, 7))
                chosen = [clips[j] for j in rng.choice(len(clips), n, replace=False)]
                parts = []
                for _, path in chosen:
                    audio, sr = sf.read(path, dtype="float32")
                    if sr != 16000:
                        raise ValueError(f"{path}: expected 16 kHz, got {sr} Hz")
                    gap = int(rng.uniform(0.05, 0.25) * sr)
                    parts += [audio, np.zeros(gap, dtype=np.float32)]
                uid = f"spk{spk:02d}_r{rnd}_{u:02d}"
                name = f"audio/{uid}.wav"
                sf.write(out / name, np.concatenate(parts[:-1]), 16000, subtype="PCM_16")
                rows.append({"id": uid, "speech": name,
                             "transcript": " ".join(w for w, _ in chosen),
                             "label": f"spk{spk:02d}", "split": split})
    return _write_manifest(manifest, rows)


# --- 6. short sentences: first sentences of installed packages' docstrings ---------------------

DOC_MODULES = {
    "numpy": ["numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma",
              "numpy.polynomial", "numpy.lib", "numpy.char", "numpy.testing"],
    "scipy": ["scipy.signal", "scipy.stats", "scipy.linalg", "scipy.optimize", "scipy.sparse",
              "scipy.ndimage", "scipy.interpolate", "scipy.special", "scipy.integrate",
              "scipy.spatial", "scipy.cluster.hierarchy", "scipy.io", "scipy.fft"],
    "sklearn": ["sklearn.linear_model", "sklearn.ensemble", "sklearn.metrics",
                "sklearn.preprocessing", "sklearn.model_selection", "sklearn.decomposition",
                "sklearn.cluster", "sklearn.svm", "sklearn.tree", "sklearn.neighbors",
                "sklearn.feature_extraction.text", "sklearn.utils", "sklearn.datasets",
                "sklearn.pipeline", "sklearn.manifold", "sklearn.covariance",
                "sklearn.feature_selection", "sklearn.impute", "sklearn.mixture"],
    "torch": ["torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.fft",
              "torch.distributions", "torch.optim", "torch.utils.data", "torch.autograd",
              "torch.nn.init", "torch.special", "torch.sparse"],
    "matplotlib": ["matplotlib.pyplot", "matplotlib.axes", "matplotlib.colors",
                   "matplotlib.figure", "matplotlib.patches", "matplotlib.lines",
                   "matplotlib.text", "matplotlib.ticker", "matplotlib.transforms",
                   "matplotlib.cm", "matplotlib.path", "matplotlib.collections",
                   "matplotlib.dates", "matplotlib.artist"],
    "skimage": ["skimage.filters", "skimage.feature", "skimage.morphology", "skimage.transform",
                "skimage.measure", "skimage.segmentation", "skimage.color", "skimage.exposure",
                "skimage.io", "skimage.restoration", "skimage.util", "skimage.draw",
                "skimage.metrics", "skimage.registration", "skimage.graph"],
}
# Names that give the package away are removed from the sentences.
_GIVEAWAYS = re.compile(r"\b(numpy|np|scipy|sklearn|scikit-learn|scikit|torch|pytorch|"
                        r"matplotlib|pyplot|plt|skimage|scikit-image)\b\.?", re.IGNORECASE)


def _first_sentence(doc: str) -> str | None:
    paragraph = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    text = " ".join(paragraph.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    sentence = match.group(1) if match else text
    sentence = " ".join(_GIVEAWAYS.sub("", sentence).split())
    if not 25 <= len(sentence) <= 200 or len(sentence.split()) < 4:
        return None
    if any(c in sentence for c in ">|=`") or sentence.startswith(("..", "(", "[")):
        return None  # signatures, doctest lines, directives
    return sentence


def _package_sentences() -> dict[str, list[str]]:
    import importlib
    import inspect
    import warnings

    found: dict[str, set[str]] = {}
    for package, modules in DOC_MODULES.items():
        found[package] = set()
        for modname in modules:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    module = importlib.import_module(modname)
                except Exception:  # an optional submodule missing in this install
                    continue
                for attr in sorted(dir(module)):
                    if attr.startswith("_"):
                        continue
                    try:
                        obj = getattr(module, attr)
                    except Exception:
                        continue
                    if not callable(obj):
                        continue
                    sentence = _first_sentence(inspect.getdoc(obj) or "")
                    if sentence:
                        found[package].add(sentence)
    # A sentence found in two packages (re-exported or shared docs) belongs to neither.
    counts: dict[str, int] = {}
    for sentences in found.values():
        for s in sentences:
            counts[s] = counts.get(s, 0) + 1
    return {p: sorted(s for s in v if counts[s] == 1) for p, v in found.items()}


def short_sentences() -> Path:
    """~1,000 one-line summaries of public functions and classes, labelled by package (6).

    The first sentence of the docstring of callables in numpy, scipy, scikit-learn, torch,
    matplotlib and scikit-image as installed, package names removed; ``words`` is its length.
    """
    out = CACHE / "short_sentences"
    manifest = out / "manifest.csv"
    if manifest.exists():
        return manifest
    rng = np.random.default_rng(SEED)
    by_package = _package_sentences()
    per_class = min(170, min(len(v) for v in by_package.values()))
    sentences, labels = [], []
    for package in sorted(by_package):
        pool = by_package[package]
        for j in np.sort(rng.choice(len(pool), per_class, replace=False)):
            sentences.append(pool[j])
            labels.append(package)
    splits = _split_per_class(labels, rng)
    rows = [{"id": f"s{k:04d}", "sentence": s, "words": str(len(s.split())), "label": y,
             "split": sp} for k, (s, y, sp) in enumerate(zip(sentences, labels, splits))]
    return _write_manifest(manifest, rows)


# --- 7. photos: which photo a crop comes from --------------------------------------------------

PHOTOS = ("astronaut.png", "brick.png", "chelsea.png", "coffee.png", "grass.png", "gravel.png",
          "motorcycle_left.png", "rocket.jpg")


def photos() -> Path:
    """960 JPEG crops of 8 real photos shipped with scikit-image; label = source photo.

    Each photo is cut into a 4x4 grid of blocks; 10 blocks give train crops, 3 val and 3 test,
    so no test crop overlaps a train crop. Crops have a random size (40-100% of a block side),
    position, horizontal flip and brightness (x0.7-1.3), saved as JPEG (quality 85).
    """
    out = CACHE / "photos"
    manifest = out / "manifest.csv"
    if manifest.exists():
        return manifest
    import skimage
    from PIL import Image

    data_dir = Path(skimage.__file__).parent / "data"
    rng = np.random.default_rng(SEED)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    counts = {"train": 75, "val": 22, "test": 23}
    for photo in PHOTOS:
        label = photo.split(".")[0]
        img = np.asarray(Image.open(data_dir / photo).convert("RGB"), dtype=np.float32)
        h, w = img.shape[:2]
        bh, bw = h // 4, w // 4
        blocks = [(r, c) for r in range(4) for c in range(4)]
        order = rng.permutation(16)
        by_split = {"train": [blocks[i] for i in order[:10]],
                    "val": [blocks[i] for i in order[10:13]],
                    "test": [blocks[i] for i in order[13:]]}
        for split, n in counts.items():
            for k in range(n):
                r, c = by_split[split][int(rng.integers(len(by_split[split])))]
                side = int(rng.uniform(0.4, 1.0) * min(bh, bw))
                y0 = r * bh + int(rng.integers(bh - side + 1))
                x0 = c * bw + int(rng.integers(bw - side + 1))
                crop = img[y0:y0 + side, x0:x0 + side] * rng.uniform(0.7, 1.3)
                if rng.random() < 0.5:
                    crop = crop[:, ::-1]
                uid = f"{label}_{split}_{k:03d}"
                name = f"images/{uid}.jpg"
                Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).save(
                    out / name, quality=85)
                rows.append({"id": uid, "image": name, "label": label, "split": split})
    return _write_manifest(manifest, rows)


# --- 8. faces: scikit-image's lfw_subset -------------------------------------------------------

def faces() -> Path:
    """200 real 25x25 grey crops (100 faces from LFW, 100 non-faces): face vs other."""
    out = CACHE / "faces"
    manifest = out / "manifest.csv"
    if manifest.exists():
        return manifest
    import skimage
    from PIL import Image

    crops = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")
    labels = ["face" if i < 100 else "other" for i in range(len(crops))]
    splits = _split_per_class(labels, np.random.default_rng(SEED))
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, crop in enumerate(crops):
        name = f"images/f{i:03d}.png"
        Image.fromarray((np.clip(crop, 0, 1) * 255).astype(np.uint8), mode="L").save(out / name)
        rows.append({"id": f"f{i:03d}", "image": name, "label": labels[i], "split": splits[i]})
    return _write_manifest(manifest, rows)


SETS = {f.__name__: f for f in (sample, digits, arabic_commands, speech_commands_mini,
                                long_utterances, short_sentences, photos, faces)}


def build(name: str) -> Path:
    if name not in SETS:
        raise SystemExit(f"unknown set {name!r}; choose from {', '.join(SETS)}")
    return SETS[name]()


if __name__ == "__main__":
    for set_name in sys.argv[1:] or list(SETS):
        print(set_name, build(set_name))

"""Make tiny, deterministic multimodal datasets on disk (for tests and quick experiments).

Each class has a colour (image), a tone (audio), keywords (text) and a mean (value), so a
model can learn it in seconds.
"""

from __future__ import annotations

import csv
import json
import wave
from pathlib import Path

import numpy as np

CLASSES = ("red", "green", "blue")
_COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
_TONES = {"red": 300.0, "green": 700.0, "blue": 1500.0}
_WORDS = {"red": ["fire", "apple", "brick"], "green": ["grass", "leaf", "frog"],
          "blue": ["sea", "sky", "ice"]}
_FILLER = ["the", "a", "one", "small", "photo", "of", "some", "thing", "here"]


def write_png(path: Path, rgb: tuple[int, int, int], size: int = 16, noise: float = 10.0,
              rng: np.random.Generator | None = None, mode: str = "RGB") -> Path:
    from PIL import Image

    rng = rng or np.random.default_rng(0)
    arr = np.clip(np.array(rgb)[None, None, :] + rng.normal(0, noise, (size, size, 3)), 0, 255)
    im = Image.fromarray(arr.astype(np.uint8), "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
    return path


def write_wav(path: Path, freq: float, seconds: float = 0.25, rate: int = 8000,
              rng: np.random.Generator | None = None, channels: int = 1) -> Path:
    rng = rng or np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    y = 0.5 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 0.05, t.size)
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def make_dataset(root: Path, n: int = 36, classes: tuple[str, ...] = CLASSES, seed: int = 0,
                 with_label: bool = True, with_split: bool = False, fmt: str = "csv",
                 name: str = "manifest", id_prefix: str = "item") -> Path:
    """Write ``n`` rows with image, audio, text, value (and label) under ``root``.

    Returns the manifest path. Media go to ``root/media``; manifest paths are relative.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        label = classes[k % len(classes)]
        item = f"{id_prefix}{k:04d}"
        img = write_png(root / "media" / f"{item}.png", _COLOURS.get(label, (128, 128, 128)),
                        rng=rng)
        wav = write_wav(root / "media" / f"{item}.wav", _TONES.get(label, 1000.0), rng=rng)
        words = list(rng.choice(_FILLER, 4)) + list(rng.choice(_WORDS.get(label, ["x"]), 2))
        rng.shuffle(words)
        row = {"id": item, "image": str(img.relative_to(root)), "audio": str(wav.relative_to(root)),
               "text": " ".join(words),
               "value": f"{classes.index(label) + rng.normal(0, 0.3):.4f}"}
        if with_split:
            row["split"] = (("train", "train", "val", "test")[k % 4] if k >= len(classes)
                            else "train")
        if with_label:
            row["label"] = label
        rows.append(row)
    path = root / f"{name}.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return path


_HARD = {  # class -> (colour, tone, keywords, value mean)
    "red": ((190, 60, 60), 300.0, ["fire", "apple", "brick"], 0.0),
    "green": ((60, 170, 60), 500.0, ["grass", "leaf", "frog"], 1.0),
    "blue": ((60, 60, 190), 800.0, ["sea", "sky", "ice"], 2.0),
    "gold": ((170, 150, 50), 1200.0, ["sun", "coin", "sand"], 3.0),
}


def make_hard_dataset(root: Path, n: int = 400, seed: int = 0, noise: float = 1.0,
                      confusion: float = 0.35,
                      proportions: tuple[float, ...] = (0.55, 0.25, 0.12, 0.08)) -> Path:
    """A harder labelled dataset: four imbalanced classes (``proportions``) and noisy
    modalities. Each modality of each row shows a random class's signal with probability
    ``confusion`` (independently per modality, so no single modality is reliable but together
    they are), and ``noise`` scales the image, audio and value noise. Returns the manifest."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    classes = list(_HARD)
    labels = rng.choice(len(classes), n, p=np.asarray(proportions) / sum(proportions))
    rows = []
    for k, c in enumerate(labels):
        shown = [int(rng.integers(len(classes))) if rng.random() < confusion else int(c)
                 for _ in range(4)]
        colour, _, _, _ = _HARD[classes[shown[0]]]
        _, tone, _, _ = _HARD[classes[shown[1]]]
        _, _, keywords, _ = _HARD[classes[shown[2]]]
        _, _, _, mean = _HARD[classes[shown[3]]]
        item = f"hard{k:04d}"
        img = write_png(root / "media" / f"{item}.png", colour, noise=40.0 * noise, rng=rng)
        wav = write_wav(root / "media" / f"{item}.wav", tone * (1 + rng.normal(0, 0.05 * noise)),
                        rng=rng)
        words = list(rng.choice(_FILLER, 6)) + [str(rng.choice(keywords))]
        rng.shuffle(words)
        rows.append({"id": item, "image": str(img.relative_to(root)),
                     "audio": str(wav.relative_to(root)), "text": " ".join(words),
                     "value": f"{mean + rng.normal(0, 0.8 * noise):.4f}",
                     "label": classes[c]})
    path = root / "manifest.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path

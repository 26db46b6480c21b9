#!/usr/bin/env python3
"""Generate the small synthetic multimodal sample dataset shipped with mmcli.

Run from anywhere (paths are relative to this file's folder):

    python sample_data/make_sample_data.py

Dependencies: numpy, Pillow and the Python standard library (wave, csv).
The output is deterministic: running the script twice produces
byte-identical files (fixed seed, no timestamps or metadata written).

Design: every row has a true class. Each of the four modalities (image,
audio, text, value) independently shows a "view" of the row. With
probability CORRUPT_P[modality] a view is *corrupted*: it shows the cue of a
randomly chosen other class instead of the true class. Otherwise it shows
the true class's cue with moderate noise. The numeric value is never
corrupted (CORRUPT_P["value"] = 0); it is weak on its own because the
per-class normal distributions overlap heavily. So each modality alone is
clearly imperfect, but because the corruptions are independent across
modalities, combining them (fusion) recovers the label much more often.
"""

from __future__ import annotations

import csv
import wave
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 0
HERE = Path(__file__).resolve().parent
IMG_DIR = HERE / "media" / "images"
AUD_DIR = HERE / "media" / "audio"

CLASSES = ["ember", "frost", "moss", "dusk"]
N_PER_CLASS = 60  # labelled rows per class -> 240 rows
N_UNLABELED = 40

# Probability that a given modality of a given row shows another class's cue.
CORRUPT_P = {"image": 0.33, "audio": 0.33, "text": 0.33, "value": 0.0}

# ---------------------------------------------------------------- image cues
IMG_SIZE = 32
# Dominant colour (RGB, 0-255) per class.
CLASS_RGB = {
    "ember": (200, 70, 40),  # orange-red
    "frost": (60, 130, 210),  # icy blue
    "moss": (70, 160, 60),  # green
    "dusk": (130, 60, 170),  # purple
}
# Pattern per class: stripes of some orientation, or a checkerboard.
CLASS_PATTERN = {
    "ember": "horizontal",
    "frost": "vertical",
    "moss": "diagonal",
    "dusk": "checker",
}

# ---------------------------------------------------------------- audio cues
SR = 8000
DURATION_S = 0.5
CLASS_FREQS = {  # fundamental + a quieter fifth-ish partial (two-tone chord)
    "ember": (300.0, 450.0),
    "frost": (550.0, 825.0),
    "moss": (900.0, 1350.0),
    "dusk": (1400.0, 2100.0),
}

# ----------------------------------------------------------------- text cues
FILLER = (
    "the a this one we they it was saw near under by with and then "
    "today quiet small old path field house river walked looked"
).split()
# ~8 keywords per class; a few are shared between two classes on purpose.
CLASS_KEYWORDS = {
    "ember": ["fire", "spark", "flame", "glow", "ash", "heat", "smoke", "warm"],
    "frost": ["ice", "snow", "cold", "chill", "winter", "crystal", "frozen", "glow"],
    "moss": ["leaf", "fern", "damp", "forest", "green", "stone", "soft", "cold"],
    "dusk": ["twilight", "shadow", "evening", "dim", "sunset", "stone", "warm", "violet"],
}

# ---------------------------------------------------------------- value cues
VALUE_MEAN = {"ember": 0.0, "frost": 1.0, "moss": 2.0, "dusk": 3.0}
VALUE_SD = 0.8


def view_class(rng: np.random.Generator, true_cls: str, modality: str) -> str:
    """Return the class whose cue this modality shows (possibly corrupted)."""
    if rng.random() < CORRUPT_P[modality]:
        others = [c for c in CLASSES if c != true_cls]
        return others[int(rng.integers(len(others)))]
    return true_cls


def make_image(rng: np.random.Generator, cls: str) -> Image.Image:
    n = IMG_SIZE
    yy, xx = np.mgrid[0:n, 0:n]
    period = int(rng.integers(6, 11))
    offset = int(rng.integers(0, period))
    pattern = CLASS_PATTERN[cls]
    if pattern == "horizontal":
        mask = ((yy + offset) % period) < period // 2
    elif pattern == "vertical":
        mask = ((xx + offset) % period) < period // 2
    elif pattern == "diagonal":
        mask = ((xx + yy + offset) % period) < period // 2
    else:  # checker
        half = max(period // 2, 2)
        mask = (((xx + offset) // half) + ((yy + offset) // half)) % 2 == 0
    base = np.array(CLASS_RGB[cls], dtype=np.float64)
    base = base + rng.normal(0.0, 12.0, size=3)  # colour jitter
    img = np.empty((n, n, 3), dtype=np.float64)
    contrast = rng.uniform(0.45, 0.75)
    img[mask] = base
    img[~mask] = base * contrast
    img *= rng.uniform(0.85, 1.15)  # random brightness
    img += rng.normal(0.0, 16.0, size=img.shape)  # pixel noise
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def make_audio(rng: np.random.Generator, cls: str) -> np.ndarray:
    n = int(SR * DURATION_S)
    t = np.arange(n) / SR
    f1, f2 = CLASS_FREQS[cls]
    jitter = rng.uniform(0.96, 1.04)  # +-4% frequency jitter
    amp = rng.uniform(0.35, 0.55)
    sig = amp * np.sin(2 * np.pi * f1 * jitter * t + rng.uniform(0, 2 * np.pi))
    sig += 0.4 * amp * np.sin(2 * np.pi * f2 * jitter * t + rng.uniform(0, 2 * np.pi))
    # short fade in/out to avoid clicks
    fade = int(0.01 * SR)
    env = np.ones(n)
    env[:fade] = np.linspace(0.0, 1.0, fade)
    env[-fade:] = np.linspace(1.0, 0.0, fade)
    sig *= env
    sig += rng.normal(0.0, rng.uniform(0.05, 0.1), size=n)  # white noise
    return np.clip(np.rint(sig * 32767 * 0.8), -32768, 32767).astype("<i2")


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(samples.tobytes())


def make_text(rng: np.random.Generator, cls: str) -> str:
    n_words = int(rng.integers(6, 15))  # 6..14 words
    n_kw = int(rng.integers(2, 4))  # 2..3 keywords
    kws = list(rng.choice(CLASS_KEYWORDS[cls], size=n_kw, replace=False))
    words = [str(w) for w in rng.choice(FILLER, size=n_words - n_kw)]
    for kw in kws:
        words.insert(int(rng.integers(0, len(words) + 1)), str(kw))
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


def make_value(rng: np.random.Generator, cls: str) -> float:
    return round(float(rng.normal(VALUE_MEAN[cls], VALUE_SD)), 4)


def make_row(rng: np.random.Generator, rid: str, true_cls: str) -> dict:
    img_cls = view_class(rng, true_cls, "image")
    aud_cls = view_class(rng, true_cls, "audio")
    txt_cls = view_class(rng, true_cls, "text")
    val_cls = view_class(rng, true_cls, "value")
    image_rel = f"media/images/{rid}.png"
    audio_rel = f"media/audio/{rid}.wav"
    make_image(rng, img_cls).save(HERE / image_rel, format="PNG")
    write_wav(HERE / audio_rel, make_audio(rng, aud_cls))
    return {
        "id": rid,
        "image": image_rel,
        "audio": audio_rel,
        "text": make_text(rng, txt_cls),
        "value": f"{make_value(rng, val_cls):.4f}",
        "label": true_cls,
    }


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    rng = np.random.default_rng(SEED)
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    AUD_DIR.mkdir(parents=True, exist_ok=True)
    # Remove stale generated media so the folder always matches the CSVs.
    for old in list(IMG_DIR.glob("*.png")) + list(AUD_DIR.glob("*.wav")):
        old.unlink()

    labels = [c for c in CLASSES for _ in range(N_PER_CLASS)]
    labels = [labels[i] for i in rng.permutation(len(labels))]
    rows = [make_row(rng, f"s{i + 1:04d}", c) for i, c in enumerate(labels)]

    u_labels = [CLASSES[i % len(CLASSES)] for i in range(N_UNLABELED)]
    u_labels = [u_labels[i] for i in rng.permutation(len(u_labels))]
    u_rows = [make_row(rng, f"u{i + 1:04d}", c) for i, c in enumerate(u_labels)]

    write_csv(HERE / "manifest.csv", rows, ["id", "image", "audio", "text", "value", "label"])
    write_csv(HERE / "unlabeled.csv", u_rows, ["id", "image", "audio", "text", "value"])
    write_csv(HERE / "unlabeled_truth.csv", u_rows, ["id", "label"])
    print(f"wrote {len(rows)} labelled rows, {len(u_rows)} unlabelled rows to {HERE}")


if __name__ == "__main__":
    main()

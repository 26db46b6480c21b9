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


def write_video(path: Path, rgb: tuple[int, int, int] = (128, 128, 128), freq: float | None = 440.0,
                frames: int = 4, size: int | tuple[int, int] = 32, fps=4, rate: int = 8000,
                codec: str = "mpeg4") -> Path:
    """A tiny clip (PyAV): ``frames`` frames of ``size`` (a side, or (width, height)) and
    colour ``rgb``, brightening over time, at ``fps`` (a number or a Fraction), and a tone of
    ``freq`` Hz as its sound track (none when ``freq`` is None). The container is chosen by
    the suffix (.mp4, .mkv, .mov, .avi; .webm wants codec libvpx)."""
    import av

    width, height = (size, size) if isinstance(size, int) else size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=rate, layout="mono") if freq else None
        for k in range(frames):
            image = np.clip(np.array(rgb) + 10 * k, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(
                np.broadcast_to(image, (height, width, 3)).copy(), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            t = np.arange(int(rate * frames / fps)) / rate
            samples = (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            chunk.sample_rate = rate
            for packet in [*sound.encode(chunk), *sound.encode()]:
                container.mux(packet)
    return path


def make_video_dataset(root: Path, n: int = 12, classes: tuple[str, ...] = CLASSES[:2],
                       with_label: bool = True, name: str = "manifest") -> Path:
    """Write ``n`` rows of ``id, clip, label`` (tiny .mp4 clips, colour and tone by class;
    every third clip without a sound track) under ``root``; returns the manifest path."""
    root = Path(root)
    rows = []
    for k in range(n):
        label = classes[k % len(classes)]
        clip = write_video(root / "media" / f"v{k:03d}.mp4", _COLOURS[label],
                           None if k % 3 == 2 else _TONES[label], frames=3 + k % 3)
        rows.append({"id": f"v{k:03d}", "clip": str(clip.relative_to(root)),
                     **({"label": label} if with_label else {})})
    manifest = root / f"{name}.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return manifest

"""Decoding media: images with Pillow, audio with soundfile (librosa as fallback).

Each loader returns an array or raises :class:`MediaError` with a short reason; preprocess
records the reason per item instead of stopping the batch.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np


class MediaError(Exception):
    """One item's media cannot be used; the message is the reason recorded for it."""


def load_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Decode any Pillow-readable image to RGB uint8 of shape (height, width, 3).

    EXIF orientation is applied; alpha is composited on white; 16-bit and float images are
    rescaled to 8 bits; palette, CMYK and grayscale images are converted to RGB. Large JPEGs are
    decoded at reduced size (``draft``) when the target is smaller.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if path.is_dir():
        raise MediaError(f"is a directory, not an image: {path}")
    try:
        with Image.open(path) as im:
            im.draft("RGB", (size[0] * 2, size[1] * 2))
            im.load()
            im = ImageOps.exif_transpose(im)
            im = _to_rgb(im)
            im = im.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise MediaError(f"cannot decode image {path}: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise MediaError(f"image too large {path}: {exc}") from None


def _to_rgb(im):
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(scaled.astype(np.uint8), mode="L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def load_audio(path: Path, sample_rate: int, max_seconds: float) -> np.ndarray:
    """Decode audio to mono float32 at ``sample_rate``, cut to ``max_seconds``."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if path.is_dir():
        raise MediaError(f"is a directory, not audio: {path}")
    try:
        import soundfile as sf

        with sf.SoundFile(str(path)) as f:
            native = f.samplerate
            frames = min(f.frames, int(np.ceil(max_seconds * native))) if f.frames > 0 else -1
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except Exception:  # soundfile cannot read it (mp3 on old libsndfile, m4a...): try librosa
        try:
            import warnings

            import librosa

            with warnings.catch_warnings():  # "PySoundFile failed..." would clutter stderr
                warnings.simplefilter("ignore")
                data, native = librosa.load(str(path), sr=None, mono=False,
                                            duration=max_seconds)
            data = np.atleast_2d(data).T.astype(np.float32)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is this item's reason
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MediaError(f"cannot decode audio {path}: {reason}") from None
    if data.size == 0:
        raise MediaError(f"audio has no samples: {path}")
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise MediaError(f"audio contains NaN or infinite samples: {path}")
    if native != sample_rate:
        import librosa

        mono = librosa.resample(mono, orig_sr=native, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def normalize_text(text: str, lowercase: bool = True) -> str:
    """NFKC-normalise, collapse whitespace and optionally lower-case."""
    text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.split())
    return text.lower() if lowercase else text

"""Decoding media: images with Pillow, audio with soundfile (librosa as fallback), text.

Each loader returns a value or raises :class:`MediaError` with a short reason; preprocess
records the reason per item instead of stopping the batch. Whatever the bytes of a file, a
loader raises nothing but :class:`MediaError` (property-tested in ``tests/test_media.py``), and
the work it does is bounded by the limits it is given: images by pixel count (checked from the
header, before decoding), audio by duration (only ``max_seconds`` are read, however long the
file claims to be), text by characters.
"""

from __future__ import annotations

import math
import os
import stat
import unicodedata
import warnings
from pathlib import Path

import numpy as np

#: defaults of the limits (also the defaults of the ``preprocess`` config keys)
MAX_IMAGE_PIXELS = 50_000_000
MAX_AUDIO_SECONDS = 30.0
MAX_TEXT_CHARS = 100_000
#: what happens to audio or text over its limit: ``cut`` keeps the start, ``fail`` leaves the
#: item out
LONG_POLICIES = ("cut", "fail")


class MediaError(Exception):
    """One item's media cannot be used; the message is the reason recorded for it."""


def check_file(path: Path, what: str) -> Path:
    """The path of a readable regular file, or :class:`MediaError` saying why not.

    Refuses directories, devices, pipes and sockets (reading a pipe could block forever) and
    empty files, and opens the file once so that a permission problem is named as such.
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MediaError(f"file not found: {path}") from None
    except OSError as exc:  # too long, too many symlinks, not a directory on the way...
        raise MediaError(f"cannot read {str(path)[:200]!r}: {exc.strerror or exc}") from None
    except ValueError:  # a NUL byte
        raise MediaError(f"invalid path {str(path)[:200]!r}") from None
    if stat.S_ISDIR(st.st_mode):
        raise MediaError(f"is a directory, not {what}: {path}")
    if not stat.S_ISREG(st.st_mode):
        raise MediaError(f"not a regular file (a device, pipe or socket): {path}")
    if st.st_size == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    try:
        os.close(os.open(path, os.O_RDONLY))
    except PermissionError:
        raise MediaError(f"permission denied: {path}") from None
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from None
    return path


def load_image(path: Path, size: tuple[int, int],
               max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode any Pillow-readable image to RGB uint8 of shape (height, width, 3).

    EXIF orientation is applied; alpha is composited on white; 16-bit and float images are
    rescaled to 8 bits; palette, CMYK and grayscale images are converted to RGB; of an
    animated image (GIF, APNG, WebP) the first frame is used. Large JPEGs are decoded at reduced
    size (``draft``) when the target is smaller. An image of more than ``max_pixels`` pixels
    (width x height, read from the header) is refused before it is decoded: a small file can
    declare an enormous image (a decompression bomb).
    """
    from PIL import Image, ImageOps

    path = check_file(path, "an image")
    # Pillow's own guard, per decode: between 1x and 2x the limit it only warns, above 2x it
    # raises DecompressionBombError; the size check below refuses both, naming the size.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():  # "Corrupt EXIF data", bomb warnings: noise per item
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise MediaError(_too_large(path, max_pixels, f"{width}x{height}"))
                # JPEG: decode at 1/2, 1/4 or 1/8 scale when that still covers the target
                # (the larger side of it, so an EXIF rotation cannot leave it short);
                # the resize below then averages over the remaining factor
                side = max(size)
                im.draft("RGB", (side, side))
                im.load()
                im = ImageOps.exif_transpose(im)
                im = _to_rgb(im)
                im = im.resize(tuple(size), Image.Resampling.BILINEAR, reducing_gap=2.0)
                return np.asarray(im, dtype=np.uint8)
    except MediaError:
        raise
    except Image.DecompressionBombError:  # over 2x the limit: Pillow refused in open()
        raise MediaError(_too_large(path, max_pixels, _header_size(path))) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this item's reason
        raise MediaError(f"cannot decode image {path}: {_first_line(exc)}") from None


def _header_size(path: Path) -> str | None:
    """"WIDTHxHEIGHT" from the header alone (Image.open does not decode pixels)."""
    from PIL import Image

    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return f"{im.size[0]}x{im.size[1]}"
    except Exception:  # noqa: BLE001 - the size is only a detail of the message
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _too_large(path: Path, max_pixels: int, dims: str | None) -> str:
    size = f" ({dims})" if dims else ""
    return (f"image too large{size}: more than max_image_pixels = {max_pixels} pixels, "
            f"possibly a decompression bomb: {path}")


def _to_rgb(im):
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        scaled = np.nan_to_num(np.clip(scaled, 0, 255))
        im = Image.fromarray(scaled.astype(np.uint8), mode="L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def load_audio(path: Path, sample_rate: int, max_seconds: float = MAX_AUDIO_SECONDS,
               long_audio: str = "cut") -> np.ndarray:
    """Decode audio to mono float32 at ``sample_rate``.

    At most ``max_seconds`` (plus one sample, to tell "longer") are read, however long the file
    is or claims to be. Longer audio is cut to its first ``max_seconds`` when ``long_audio`` is
    ``cut``, and refused when it is ``fail``.
    """
    path = check_file(path, "audio")
    try:
        data, native = _read_soundfile(path, max_seconds)
    except Exception as exc:  # soundfile cannot read it (mp3 on old libsndfile, m4a...)
        data, native = _read_librosa(path, max_seconds, exc)
    if data.size == 0:
        raise MediaError(f"audio has no samples: {path}")
    limit = _frames(max_seconds, native)
    if data.shape[0] > limit:
        if long_audio == "fail":
            raise MediaError(f"audio longer than max_audio_seconds = {max_seconds:g} s "
                             f"(long_audio: fail): {path}")
        data = data[:limit]
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise MediaError(f"audio contains NaN or infinite samples: {path}")
    if native != sample_rate:
        try:
            import librosa

            mono = librosa.resample(mono, orig_sr=native, target_sr=sample_rate,
                                    res_type="soxr_hq")
        except Exception as exc:  # noqa: BLE001 - e.g. an absurd sample rate in the header
            raise MediaError(f"cannot resample audio {path} from {native} Hz: "
                             f"{_first_line(exc)}") from None
    return np.ascontiguousarray(mono, dtype=np.float32)


def _frames(seconds: float, rate: int) -> int:
    return max(1, int(math.ceil(seconds * rate)))


def _read_soundfile(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """Read at most one frame more than ``max_seconds``; (frames, channels) float32."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        native = int(f.samplerate)
        if native <= 0:
            raise ValueError(f"sample rate {native}")
        data = f.read(frames=_frames(max_seconds, native) + 1, dtype="float32", always_2d=True)
    return data, native


def _read_librosa(path: Path, max_seconds: float,
                  first: Exception) -> tuple[np.ndarray, int]:
    """librosa (audioread, ffmpeg...) as the fallback; when it fails too, the reason given is
    soundfile's, which names what is wrong with the file far more often."""
    try:
        import librosa

        with warnings.catch_warnings():  # "PySoundFile failed..." would clutter stderr
            warnings.simplefilter("ignore")
            data, native = librosa.load(str(path), sr=None, mono=False,
                                        duration=max_seconds + 1.0)
    except Exception:  # noqa: BLE001 - any decoder failure is this item's reason
        reason = _first_line(first).replace(f"Error opening {str(path)!r}: ", "")
        raise MediaError(f"cannot decode audio {path}: {reason}") from None
    return np.atleast_2d(np.asarray(data, dtype=np.float32)).T, int(native)


def normalize_text(text: str, lowercase: bool = True) -> str:
    """NFKC-normalise, collapse whitespace and optionally lower-case."""
    text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.split())
    return text.lower() if lowercase else text


def load_text(raw: str, lowercase: bool = True, max_chars: int = MAX_TEXT_CHARS,
              long_text: str = "cut") -> str:
    """Normalise a text cell (:func:`normalize_text`) and apply the length limit.

    Text longer than ``max_chars`` characters after normalisation is cut to its first
    ``max_chars`` characters (``long_text: cut``) or refused (``long_text: fail``).
    """
    text = normalize_text(raw, lowercase)
    if not text:
        raise MediaError("empty text")
    if len(text) > max_chars:
        if long_text == "fail":
            raise MediaError(f"text of {len(text)} characters, more than max_text_chars = "
                             f"{max_chars} (long_text: fail)")
        text = text[:max_chars].rstrip()
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

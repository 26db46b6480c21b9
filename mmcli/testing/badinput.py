"""Write the bad-input corpus: every kind of broken, hostile or unusual input mmcli must survive.

``python -m mmcli.testing.badinput DIR`` writes it and prints the table of cases (the one in
README.md's "Failure behaviour" section); ``tests/badinput/`` runs the CLI over it and checks
each case's outcome. Layout::

    DIR/items/manifest.csv     good rows plus one row per *item* case (the bad value in one column)
    DIR/items/media/, bad/     the good and the bad media
    DIR/outside/               a valid image outside items/, reached through '..', an absolute
                               path and a symlink (refused under --media-root DIR/items)
    DIR/manifests/<case>.*     one manifest per *manifest* case
    DIR/videos/manifest.csv    good clips plus one row per *video* case (with PyAV installed),
                               and its config.yaml
    DIR/config.yaml            the config of the corpus run (small limits, so the corpus is small)

Outcomes: ``missing`` (the bad cell makes its modality missing for the row, which is kept
without it and listed in failures.csv as ``kept: <reason>``, see mmcli.missing),
``quarantine`` (the row is left out and listed in failures.csv with the reason; the rest is
processed), ``accept`` (valid but unusual: processed), ``error`` (a manifest-level
problem: one ``error:`` line naming the file or row and the fix, the documented exit code, no
output directory).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import struct
import sys
import wave
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from mmcli.testing.dummies import make_dataset, write_wav

#: the corpus run's limits (see CONFIG): small so that the "too long" files stay small
SAMPLE_RATE = 8000
MAX_AUDIO_SECONDS = 2.0
MAX_TEXT_CHARS = 1000
CONFIG = f"""\
preprocess:
  sample_rate: {SAMPLE_RATE}
  max_audio_seconds: {MAX_AUDIO_SECONDS}
  max_text_chars: {MAX_TEXT_CHARS}
  max_failed_fraction: 1.0
  image_size: [16, 16]
  columns: {{value: numeric}}   # one 'abc' would otherwise make the column text
"""

VIDEO_CONFIG = """\
preprocess:
  max_failed_fraction: 1.0
  image_size: [16, 16]
  video_frames: 4
"""


@dataclass(frozen=True)
class Case:
    name: str
    #: what the input is
    what: str
    #: missing | quarantine | accept | error
    outcome: str
    #: a piece of the failures.csv reason (missing, quarantine) or of the error line (error)
    expect: str = ""
    #: item cases: the column at fault
    column: str = ""
    #: manifest cases: the manifest's file name under manifests/
    manifest: str = ""
    exit_code: int = 0
    #: accepted cases: what happens to them
    note: str = ""


ITEM_CASES = [
    Case("jpeg_truncated", "JPEG cut in half", "missing", "cannot decode image", "image"),
    Case("jpeg_corrupt", "JPEG marker followed by random bytes", "missing",
         "cannot decode image", "image"),
    Case("png_truncated", "PNG cut in half", "missing", "cannot decode image", "image"),
    Case("png_bad_crc", "PNG with a corrupted header chunk", "missing", "cannot decode image",
         "image"),
    Case("image_zero_bytes", "zero-byte .png", "missing", "empty file", "image"),
    Case("text_named_jpg", "a text file named .jpg", "missing", "cannot decode image",
         "image"),
    Case("png_bomb", "decompression bomb: 74-byte PNG declaring 100000 x 100000 pixels",
         "missing", "image too large", "image"),
    Case("image_directory", "image path is a directory", "missing", "is a directory",
         "image"),
    Case("image_missing", "image path points to nothing", "missing", "file not found",
         "image"),
    Case("image_fifo", "image path is a named pipe (would block a reader)", "missing",
         "not a regular file", "image"),
    Case("image_empty_path", "empty image cell", "missing", "no image path", "image"),
    Case("image_nul_path", "image path with a NUL byte", "missing", "invalid path", "image"),
    Case("image_long_path", "image path of 5000 characters", "missing", "name too long",
         "image"),
    Case("jpeg_cmyk", "CMYK JPEG", "accept", column="image", note="converted to RGB"),
    Case("png_16bit", "16-bit grayscale PNG", "accept", column="image",
         note="rescaled to 8 bits, RGB"),
    Case("png_palette", "palette PNG with transparency", "accept", column="image",
         note="converted to RGB, transparency on white"),
    Case("gif_animated", "animated GIF (red, then blue frame)", "accept", column="image",
         note="first frame used"),
    Case("png_animated", "animated PNG (APNG; red, then blue frame)", "accept", column="image",
         note="first frame used"),
    Case("wav_truncated_body", "WAV whose data is cut short of its header's length", "accept",
         column="audio", note="the samples present are used"),
    Case("wav_truncated_header", "WAV cut inside its header", "missing",
         "cannot decode audio", "audio"),
    Case("wav_corrupt", "RIFF header followed by garbage", "missing", "cannot decode audio",
         "audio"),
    Case("audio_zero_bytes", "zero-byte .wav", "missing", "empty file", "audio"),
    Case("wav_no_samples", "valid WAV with no samples", "missing", "no samples", "audio"),
    Case("wav_nan", "float WAV with a NaN sample", "missing", "NaN or infinite", "audio"),
    Case("wav_inf", "float WAV with an infinite sample", "missing", "NaN or infinite",
         "audio"),
    Case("wav_hours", "2-hour WAV (115 MB, sparse on disk)", "accept", column="audio",
         note="only max_audio_seconds are read: cut (long_audio: cut, the default); "
              "a missing modality with long_audio: fail"),
    Case("audio_directory", "audio path is a directory", "missing", "is a directory",
         "audio"),
    Case("audio_missing", "audio path points to nothing", "missing", "file not found",
         "audio"),
    Case("text_megabytes", "3 MB text cell", "accept", column="text",
         note="cut to max_text_chars (long_text: cut, the default); a missing modality "
              "with long_text: fail"),
    Case("text_empty", "empty text cell", "missing", "empty text", "text"),
    Case("number_not_numeric", "'abc' in a numeric column", "missing", "is not a number",
         "value"),
    Case("number_infinite", "'inf' in a numeric column", "missing", "not a finite number",
         "value"),
    Case("number_missing", "empty numeric cell", "accept", column="value",
         note="missing value (NaN); the numeric extractor imputes it"),
    Case("label_missing", "empty label", "quarantine", "no label", "label"),
    Case("label_only_in_test", "a label that occurs only in the test split", "accept",
         column="label",
         note="preprocess prints a note; eval counts it as an error (it is never predicted)"),
    Case("label_single_sample", "a class with a single sample", "accept", column="label",
         note="a class like any other"),
    Case("escape_dotdot", "'../outside/secret.png' (escapes the manifest folder)", "missing",
         "outside the media roots", "image", note="read normally without --media-root"),
    Case("escape_absolute", "absolute path outside the media root", "missing",
         "outside the media roots", "image", note="read normally without --media-root"),
    Case("escape_symlink", "symlink inside the folder pointing outside it", "missing",
         "outside the media roots", "image", note="read normally without --media-root"),
]

MANIFEST_CASES = [
    Case("bom", "CSV starting with a UTF-8 byte-order mark", "accept", manifest="bom.csv"),
    Case("blank_rows", "blank lines between rows", "accept", manifest="blank_rows.csv",
         note="skipped"),
    Case("quoted_newlines", "quoted text cells holding newlines and delimiters", "accept",
         manifest="quoted_newlines.csv", note="newlines become spaces in the text"),
    Case("crlf", "Windows line endings", "accept", manifest="crlf.csv"),
    Case("semicolon", "semicolon-delimited CSV", "accept", manifest="semicolon.csv",
         note="delimiter detected from the header line"),
    Case("tab_in_csv", "tab-separated file named .csv", "accept", manifest="tab_in_csv.csv",
         note="delimiter detected from the header line"),
    Case("pipe", "pipe-delimited CSV", "accept", manifest="pipe.csv",
         note="delimiter detected from the header line"),
    Case("jsonl_bom", "JSONL with a byte-order mark and blank lines", "accept",
         manifest="jsonl_bom.jsonl"),
    Case("missing_label_column", "no label column", "error", "label column 'label' is not in",
         manifest="missing_label_column.csv", exit_code=3),
    Case("missing_field", "a row with a field fewer than the header", "error",
         "line 5 has 6 fields, the header has 7", manifest="missing_field.csv", exit_code=3),
    Case("duplicate_ids", "two rows with the same id", "error",
         "duplicate id 'good0001' in rows 2 and 6",
         manifest="duplicate_ids.csv", exit_code=3),
    Case("latin1", "non-UTF-8 bytes (Latin-1 text)", "error", "not UTF-8 text: line 4",
         manifest="latin1.csv", exit_code=3),
    Case("unclosed_quote", "a quote that is never closed", "error",
         "the row on lines 5-13 has 4 fields",
         manifest="unclosed_quote.csv", exit_code=3),
    Case("unnamed_column", "a header with an unnamed column (pandas index)", "error",
         "column 1 of the header has no name", manifest="unnamed_column.csv", exit_code=3),
    Case("path_column_name", "a column named '../evil' (it would become a file name)",
         "error", "cannot be used", manifest="path_column_name.csv", exit_code=3),
    Case("bad_split", "split value 'holdout'", "error", "row 3 has split 'holdout'",
         manifest="bad_split.csv", exit_code=3),
    Case("no_train", "no row in the train split", "error", "train split", manifest="no_train.csv",
         exit_code=3),
    Case("all_bad", "every image missing", "error", "has no usable cell in its",
         manifest="all_bad.csv", exit_code=3),
    Case("empty_file", "zero-byte manifest", "error", "is empty", manifest="empty_file.csv",
         exit_code=3),
    Case("header_only", "header without rows", "error", "has no rows", manifest="header_only.csv",
         exit_code=3),
    Case("jsonl_bad_line", "JSONL with a broken line", "error", "line 2 is not valid JSON",
         manifest="jsonl_bad_line.jsonl", exit_code=3),
    Case("jsonl_deep", "JSONL nested 100000 levels deep", "error", "nested too deeply",
         manifest="jsonl_deep.jsonl", exit_code=3),
    Case("jsonl_huge_number", "JSONL with a 5000-digit number", "error", "not valid JSON",
         manifest="jsonl_huge_number.jsonl", exit_code=3),
    Case("manifest_directory", "manifest path is a directory", "error", "is a directory",
         manifest="a_directory.csv", exit_code=3),
    Case("manifest_missing", "manifest path points to nothing", "error", "does not exist",
         manifest="missing.csv", exit_code=3),
    # Parquet (with pyarrow: mmcli[parquet])
    Case("parquet", "Parquet file: typed columns, nulls, several row groups", "accept",
         manifest="typed.parquet", note="number columns are numeric by their type"),
    Case("parquet_dataset", "folder of Parquet files partitioned by split (split=train/...)",
         "accept", manifest="dataset", note="the partition key is a column"),
    Case("parquet_not_parquet", "CSV text in a file named .parquet", "error",
         "is not a readable Parquet file", manifest="not_parquet.parquet", exit_code=3),
    Case("parquet_nested", "Parquet with a list column", "error", "is nested",
         manifest="nested.parquet", exit_code=3),
    Case("parquet_image_bytes", "Parquet with a column of encoded PNG bytes", "accept",
         manifest="image_bytes.parquet", note="decoded like files; their hash is the bytes'"),
    Case("parquet_other_bytes", "Parquet with a binary column that is no image or audio",
         "error", "holds bytes that are not encoded media",
         manifest="other_bytes.parquet", exit_code=3),
]

#: clips of the ``clip`` column of DIR/videos/manifest.csv (the video kind, PyAV)
VIDEO_CASES = [
    Case("video_truncated", "MP4 clip cut in half", "quarantine", "cannot decode video", "clip"),
    Case("video_truncated_mkv", "Matroska clip cut in half", "accept", column="clip",
         note="the frames present are used"),
    Case("video_not_video", "text file named .mp4", "quarantine", "cannot decode video", "clip"),
    Case("video_zero_bytes", "zero-byte .mp4", "quarantine", "empty file", "clip"),
    Case("video_no_stream", "Matroska file with a sound track and no video stream",
         "quarantine", "no video stream", "clip"),
    Case("video_zero_frames", "AVI whose video stream has no frames", "quarantine",
         "video has no frames", "clip"),
    Case("video_huge", "clip of 4000x2500 frames (10 MP; the limit is 4K)", "quarantine",
         "video frames too large", "clip"),
    Case("video_long", "15-minute clip", "accept", column="clip",
         note="frames sampled from its first max_video_seconds (long_video: cut, the "
              "default); left out with long_video: fail"),
    Case("video_silent", "clip without a sound track", "accept", column="clip",
         note="an empty sound track: the audio extractors give it a row of zeros"),
]

CASES = ITEM_CASES + VIDEO_CASES + MANIFEST_CASES
COLUMNS = ["id", "image", "audio", "text", "value", "split", "label"]


def write_corpus(root: Path) -> Path:
    """Write the corpus under ``root``; returns ``root``."""
    root = Path(root)
    items = root / "items"
    make_dataset(items, n=24, with_split=True, id_prefix="good")
    good = _read_rows(items / "manifest.csv")
    bad = items / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    outside = root / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    _png(outside / "secret.png", (0, 0, 0))

    rows = list(good)
    template = good[0]
    for case in ITEM_CASES:
        row = {**template, "id": case.name, "split": "train"}
        value = _item_value(case, bad, outside)
        if case.column == "label":
            row["label"] = value
            row["split"] = "test" if case.name == "label_only_in_test" else "train"
        else:
            row[case.column] = value
        rows.append(row)
    _write_rows(items / "manifest.csv", rows)
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    _write_manifests(root / "manifests", good[:12])
    if importlib.util.find_spec("av") is not None:
        write_video_corpus(root / "videos")
    return root


def write_video_corpus(folder: Path) -> Path:
    """Eight good clips and one row per video case under ``folder``; returns the manifest."""
    from mmcli.testing.dummies import make_video_dataset

    manifest = make_video_dataset(folder, n=8)
    rows = _read_rows(manifest)
    bad = folder / "bad"
    bad.mkdir(exist_ok=True)
    for case in VIDEO_CASES:
        path = _bad_video(case.name, bad)
        rows.append({"id": case.name, "clip": str(path.relative_to(folder)), "label": "red"})
    _write_rows(manifest, rows, ["id", "clip", "label"])
    (folder / "config.yaml").write_text(VIDEO_CONFIG, encoding="utf-8")
    return manifest


def _bad_video(name: str, bad: Path) -> Path:
    import av

    from mmcli.testing.dummies import write_video

    path = bad / (f"{name}.avi" if name == "video_zero_frames" else
                  f"{name}.mkv" if name in ("video_truncated_mkv", "video_no_stream")
                  else f"{name}.mp4")
    if name in ("video_truncated", "video_truncated_mkv"):
        data = write_video(path, frames=6).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif name in ("video_not_video", "video_zero_bytes"):
        path.write_bytes(b"" if name == "video_zero_bytes" else b"not a video\n")
    elif name == "video_huge":
        write_video(path, size=(4000, 2500), frames=1, freq=None)
    elif name == "video_long":  # 3 frames, 5 minutes apart
        write_video(path, frames=3, fps=Fraction(1, 300), freq=None)
    elif name == "video_silent":
        write_video(path, freq=None)
    else:
        with av.open(str(path), "w") as container:
            if name == "video_no_stream":
                _sound_only(container)
            else:  # a video stream, a header, and not one frame
                stream = container.add_stream("mpeg4", rate=4)
                stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
                container.start_encoding()
    return path


def _sound_only(container) -> None:
    import av

    stream = container.add_stream("aac", rate=8000, layout="mono")
    chunk = av.AudioFrame.from_ndarray(np.zeros((1, 4000), np.float32), format="flt",
                                       layout="mono")
    chunk.sample_rate = 8000
    for packet in [*stream.encode(chunk), *stream.encode()]:
        container.mux(packet)


# --- item cases ----------------------------------------------------------------------------


def _item_value(case: Case, bad: Path, outside: Path) -> str:
    """Write the case's bad file under ``bad`` and return the manifest cell."""
    name = case.name
    rel = f"bad/{name}"
    if name in ("image_empty_path", "text_empty", "number_missing", "label_missing"):
        return ""
    if name == "image_nul_path":
        return "bad/nul\x00.png"
    if name == "image_long_path":
        return "x" * 4996 + ".png"
    if name == "number_not_numeric":
        return "abc"
    if name == "number_infinite":
        return "inf"
    if name == "label_only_in_test":
        return "purple"
    if name == "label_single_sample":
        return "orange"
    if name == "text_megabytes":
        return "many words " * 300_000
    if name == "escape_dotdot":
        return "../outside/secret.png"
    if name == "escape_absolute":
        return str((outside / "secret.png").resolve())
    if name == "escape_symlink":
        link = bad / "link.png"
        if not link.is_symlink():
            link.symlink_to(Path("..") / ".." / "outside" / "secret.png")
        return "bad/link.png"
    if name in ("image_directory", "audio_directory"):
        suffix = ".png" if name.startswith("image") else ".wav"
        (bad / f"{name}{suffix}").mkdir(exist_ok=True)
        return f"{rel}{suffix}"
    if name in ("image_missing", "audio_missing"):
        return f"{rel}.png" if name.startswith("image") else f"{rel}.wav"
    path, data = _bad_file(name, bad)
    if data is not None:
        path.write_bytes(data)
    return str(path.relative_to(bad.parent))


def _bad_file(name: str, bad: Path) -> tuple[Path, bytes | None]:
    """The path of case ``name``'s file under ``bad`` and the bytes to write there (None when
    the file is already made)."""
    made = _bad_image(name, bad)
    if made is None:
        made = _bad_audio(name, bad)
    if made is None:
        raise ValueError(f"no file for case {name!r}")
    return made


def _bad_image(name: str, bad: Path) -> tuple[Path, bytes | None] | None:
    from PIL import Image

    if name == "jpeg_truncated":
        data = _encoded(Image.new("RGB", (64, 64), (200, 40, 40)), "JPEG")
        return bad / f"{name}.jpg", data[: len(data) // 2]
    if name == "jpeg_corrupt":
        rng = np.random.default_rng(0)
        return bad / f"{name}.jpg", b"\xff\xd8" + rng.integers(0, 256, 512, np.uint8).tobytes()
    if name == "png_truncated":
        data = _encoded(Image.new("RGB", (64, 64), (200, 40, 40)), "PNG")
        return bad / f"{name}.png", data[: len(data) // 2]
    if name == "png_bad_crc":
        data = bytearray(_encoded(Image.new("RGB", (8, 8), (200, 40, 40)), "PNG"))
        data[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
        return bad / f"{name}.png", bytes(data)
    if name == "image_zero_bytes":
        return bad / f"{name}.png", b""
    if name == "text_named_jpg":
        return bad / f"{name}.jpg", b"this is a text file, not a JPEG\n"
    if name == "png_bomb":
        return bad / f"{name}.png", bomb_png(100_000, 100_000)
    if name == "image_fifo":
        path = bad / f"{name}.png"
        if not path.exists():
            os.mkfifo(path)
        return path, None
    if name == "jpeg_cmyk":
        path = bad / f"{name}.jpg"
        Image.new("RGB", (16, 16), (200, 40, 40)).convert("CMYK").save(path, quality=95)
        return path, None
    if name == "png_16bit":
        path = bad / f"{name}.png"
        Image.fromarray(np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)).save(path)
        return path, None
    if name == "png_palette":
        path = bad / f"{name}.png"
        im = Image.new("P", (16, 16), 0)
        im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
        im.paste(1, (0, 0, 8, 16))
        im.save(path, transparency=0)
        return path, None
    if name in ("gif_animated", "png_animated"):
        path = bad / (f"{name}.gif" if name.startswith("gif") else f"{name}.png")
        frames = [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
        return path, None
    return None


def _bad_audio(name: str, bad: Path) -> tuple[Path, bytes | None] | None:
    wav = bad / f"{name}.wav"
    if name == "wav_truncated_body":
        data = write_wav(wav, 440.0, seconds=0.5, rate=SAMPLE_RATE).read_bytes()
        return wav, data[: len(data) // 2]
    if name == "wav_truncated_header":
        data = write_wav(wav, 440.0, seconds=0.5, rate=SAMPLE_RATE).read_bytes()
        return wav, data[:20]
    if name == "wav_corrupt":
        return wav, b"RIFF\x10\x00\x00\x00WAVEgarbage-garbage-garbage"
    if name == "audio_zero_bytes":
        return wav, b""
    if name == "wav_no_samples":
        return wav, _wav_bytes(np.zeros(0, np.int16))
    if name in ("wav_nan", "wav_inf"):
        import soundfile as sf

        x = (0.5 * np.sin(np.arange(800) / 5)).astype(np.float32)
        x[100] = np.nan if name == "wav_nan" else np.inf
        sf.write(wav, x, SAMPLE_RATE, subtype="FLOAT")
        return wav, None
    if name == "wav_hours":
        write_long_wav(wav, hours=2.0, rate=SAMPLE_RATE)
        return wav, None
    return None


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` RGB pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def write_long_wav(path: Path, hours: float, rate: int = 8000) -> Path:
    """A valid 16-bit mono WAV of ``hours`` of silence, written as a sparse file: its size is
    the real size (2 h at 8 kHz: 115 MB) but it takes almost no disk space."""
    frames = int(hours * 3600 * rate)
    header = _wav_bytes(np.zeros(0, np.int16), rate)[:44]
    header = bytearray(header)
    struct.pack_into("<I", header, 4, 36 + 2 * frames)
    struct.pack_into("<I", header, 40, 2 * frames)
    with open(path, "wb") as f:
        f.write(bytes(header))
        f.truncate(44 + 2 * frames)
    return path


def _wav_bytes(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def _encoded(im, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _png(path: Path, rgb) -> Path:
    from PIL import Image

    Image.new("RGB", (8, 8), rgb).save(path)
    return path


# --- manifest cases ------------------------------------------------------------------------


def _write_manifests(folder: Path, good: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{**r, "image": f"../items/{r['image']}", "audio": f"../items/{r['audio']}"}
            for r in good]
    for r in rows:
        r["split"] = "train"
    for r in rows[9:]:
        r["split"] = "test"

    def text(rows_, columns=COLUMNS, delimiter=",", terminator="\n") -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, columns, delimiter=delimiter, lineterminator=terminator,
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows_)
        return buf.getvalue()

    plain = text(rows)
    put = {
        "bom.csv": "\ufeff" + plain,
        "blank_rows.csv": plain.replace("\n", "\n\n", 3).replace("\n", "\n , , \n", 1),
        "quoted_newlines.csv": text([{**r, "text": r["text"] + ",\nsecond line; | too"}
                                     for r in rows]),
        "crlf.csv": text(rows, terminator="\r\n"),
        "semicolon.csv": text(rows, delimiter=";"),
        "tab_in_csv.csv": text(rows, delimiter="\t"),
        "pipe.csv": text(rows, delimiter="|"),
        "missing_label_column.csv": text(rows, [c for c in COLUMNS if c != "label"]),
        "missing_field.csv": _drop_last_field(plain, line=5),
        "duplicate_ids.csv": text(rows[:5] + [rows[1]] + rows[5:]),
        "unclosed_quote.csv": plain.replace(rows[3]["text"], '"' + rows[3]["text"], 1),
        "unnamed_column.csv": text([{"": k, **r} for k, r in enumerate(rows)], ["", *COLUMNS]),
        "path_column_name.csv": text([{**r, "../evil": "x y z"} for r in rows],
                                     [*COLUMNS, "../evil"]),
        "bad_split.csv": text([{**r, "split": "holdout"} if k == 2 else r
                               for k, r in enumerate(rows)]),
        "no_train.csv": text([{**r, "split": "test"} for r in rows]),
        "all_bad.csv": text([{**r, "image": "nope.png"} for r in rows]),
        "empty_file.csv": "",
        "header_only.csv": ",".join(COLUMNS) + "\n",
        "jsonl_bad_line.jsonl": _jsonl(rows[:1]) + '{"id": "x",\n' + _jsonl(rows[1:]),
        "jsonl_deep.jsonl": "[" * 100_000 + "\n",
        "jsonl_huge_number.jsonl": '{"id": ' + "9" * 5000 + "}\n",
    }
    for name, content in put.items():
        (folder / name).write_text(content, encoding="utf-8", newline="")
    (folder / "jsonl_bom.jsonl").write_text("\ufeff" + _jsonl(rows).replace("\n", "\n\n", 2),
                                           encoding="utf-8")
    latin = plain.splitlines(keepends=True)
    latin[3] = latin[3].replace(rows[2]["text"], "caf\u00e9 cr\u00e8me")
    (folder / "latin1.csv").write_bytes("".join(latin).encode("latin-1"))
    (folder / "a_directory.csv").mkdir(exist_ok=True)
    _write_parquet_manifests(folder, rows)


def _write_parquet_manifests(folder: Path, rows: list[dict]) -> None:
    """The Parquet cases (left out when pyarrow is not installed)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return

    def table(rows_: list[dict], **extra) -> pa.Table:
        columns = {c: [r[c] for r in rows_] for c in COLUMNS}
        columns["value"] = [None if k == 1 else float(v)  # a null number: missing
                            for k, v in enumerate(columns["value"])]
        return pa.table({**columns, **extra})

    pq.write_table(table(rows), folder / "typed.parquet", row_group_size=5)
    dataset = folder / "dataset"
    for split in ("train", "test"):
        part = [{k: v for k, v in r.items()} for r in rows if r["split"] == split]
        (dataset / f"split={split}").mkdir(parents=True, exist_ok=True)
        pq.write_table(table(part).drop_columns(["split"]),
                       dataset / f"split={split}" / "part-0.parquet")
    (dataset / "_SUCCESS").write_text("")
    (folder / "not_parquet.parquet").write_text("id,label\na,b\n", encoding="utf-8")
    pq.write_table(table(rows, tags=[[1, 2]] * len(rows)), folder / "nested.parquet")
    png = [(folder / r["image"]).read_bytes() for r in rows]
    pq.write_table(table(rows, image=png), folder / "image_bytes.parquet")
    pq.write_table(table(rows, blob=[b"\x00\x01 not media"] * len(rows)),
                   folder / "other_bytes.parquet")


def _drop_last_field(text: str, line: int) -> str:
    lines = text.split("\n")
    lines[line - 1] = lines[line - 1].rsplit(",", 1)[0]
    return "\n".join(lines)


def _jsonl(rows: list[dict]) -> str:
    import json

    return "".join(json.dumps(r) + "\n" for r in rows)


def _read_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, rows: list[dict], columns: list[str] = COLUMNS) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# --- the table -----------------------------------------------------------------------------


def table() -> str:
    """The cases as a Markdown table: input, outcome, what the user sees."""
    seen = {"quarantine": "left out, failures.csv says ", "accept": "processed",
            "missing": "row kept without this modality, failures.csv says ",
            "error": "exit {code}: `error: ...{expect}... (fix)`"}
    lines = ["| input | outcome | what you see |", "|---|---|---|"]
    for case in CASES:
        if case.outcome == "missing":
            sees = f"{seen['missing']}`kept: ...{case.expect}`"
        elif case.outcome == "quarantine":
            sees = f"{seen['quarantine']}`{case.expect}`"
        elif case.outcome == "accept":
            sees = seen["accept"] + (f"; {case.note}" if case.note else "")
        else:
            sees = seen["error"].format(code=case.exit_code, expect=case.expect)
        if case.outcome in ("missing", "quarantine") and case.note:
            sees += f" ({case.note})"
        lines.append(f"| {case.what} | {case.outcome} | {sees} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m mmcli.testing.badinput DIR", file=sys.stderr)
        return 2
    root = write_corpus(Path(args[0]))
    print(table())
    print(f"\nwrote {root}; try: mmcli preprocess {root}/items/manifest.csv -o OUT "
          f"-c {root}/config.yaml --media-root {root}/items", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

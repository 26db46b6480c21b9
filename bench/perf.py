"""Performance benchmarks: mmcli against plain per-file baselines, side by side in one run.

    python bench/perf.py startup            # mmcli --help and <stage> --help wall time
    python bench/perf.py images [-n 2000]   # preprocess+extract vs PIL loop (1024x768 JPEG)
    python bench/perf.py audio [-n 2000]    # extract vs librosa.load + mfcc loop
    python bench/perf.py jobs [-n 2000]     # extraction with --jobs 1 vs --jobs 2
    python bench/perf.py memory             # peak RSS, 2,000 vs 20,000 items
    python bench/perf.py e2e [-n 10000]     # items/s of every stage, image+audio+text
    python bench/perf.py dask [-n 2000]     # local pool vs Dask executor (docs/scaling.md)
    python bench/perf.py chain [-n 3000]    # the default chain and `mmcli run` against a
                                            # hand-written script (issue #15); -n 600 is quick
    python bench/perf.py all

Each prints a Markdown table and writes it to bench/results/perf_<name>.md. Data are generated
under --work (default runs/bench/perf), never shipped. Timings are wall-clock seconds on this
machine (chain also gives the CPU seconds of each command's whole process tree, which depend
less on the machine's load); ratios are what the targets in docs/performance.md are about.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MMCLI = [sys.executable, "-m", "mmcli"]


def sh(args: list[str], env: dict | None = None) -> float:
    # a fresh output every time: an existing one would be reused (incremental runs)
    if "-o" in args:
        shutil.rmtree(args[args.index("-o") + 1], ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(args, check=True, env={**os.environ, **(env or {})},
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def peak_child_rss_mb(args: list[str]) -> tuple[float, float]:
    """Run ``args`` in a fresh Python that reports the child's own peak RSS (MB)."""
    if "-o" in args:
        shutil.rmtree(args[args.index("-o") + 1], ignore_errors=True)
    code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), float(out[1]) / 1024


def write_table(name: str, header: list[str], rows: list[list], notes: str = "") -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    text = "\n".join(lines) + "\n" + (f"\n{notes}\n" if notes else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"perf_{name}.md").write_text(text, encoding="utf-8")
    print(text)
    return text


# --- data -----------------------------------------------------------------------------------

def make_photos(folder: Path, n: int, size=(1024, 768), distinct: int = 100) -> list[Path]:
    """``n`` JPEG 'photos' (smooth colour fields, shapes and sensor noise); ``distinct`` different
    images, the rest copies under other names (decoding cost is the same)."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    w, h = size
    bases = []
    for k in range(min(distinct, n)):
        path = folder / f"p{k:05d}.jpg"
        if not path.exists():
            yy, xx = np.mgrid[0:h, 0:w]
            c = rng.uniform(0, 255, (3, 3))
            img = np.stack([c[i, 0] + (c[i, 1] - c[i, 0]) * xx / w + 30 * np.sin(yy / (20 + i))
                            for i in range(3)], -1)
            img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
            im = Image.fromarray(img)
            d = ImageDraw.Draw(im)
            for _ in range(6):
                x0, y0 = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 100))
                dx, dy = int(rng.integers(40, 300)), int(rng.integers(40, 300))
                d.ellipse([x0, y0, x0 + dx, y0 + dy],
                          fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
            im.save(path, quality=90)
        bases.append(path)
    paths = []
    for k in range(n):
        path = folder / f"p{k:05d}.jpg"
        if not path.exists():
            shutil.copyfile(bases[k % len(bases)], path)
        paths.append(path)
    return paths


def _write_wav(path: Path, y: np.ndarray, rate: int) -> None:
    """``y`` (floats in [-1, 1], clipped) as a mono 16-bit WAV."""
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(rate)
        wf.writeframes(pcm.tobytes())


def make_clips(folder: Path, n: int, rate: int = 16000, seconds: float = 1.0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(rate * seconds)) / rate
    paths = []
    for k in range(n):
        path = folder / f"a{k:05d}.wav"
        if not path.exists():
            f0 = 120 + 200 * rng.random()
            y = sum(np.sin(2 * np.pi * f0 * m * t) / m for m in range(1, 6))
            y = 0.3 * y * np.exp(-((t - 0.5) ** 2) / 0.05) + rng.normal(0, 0.01, t.size)
            _write_wav(path, y, rate)
        paths.append(path)
    return paths


def make_small_images(folder: Path, n: int) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for k in range(n):
        path = folder / f"s{k:06d}.png"
        if not path.exists():
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def write_manifest(path: Path, columns: dict[str, list], n: int) -> Path:
    labels = ["a", "b", "c", "d"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", *columns, "label"])
        for k in range(n):
            w.writerow([f"i{k:06d}", *(str(v[k]) for v in columns.values()), labels[k % 4]])
    return path


def config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- benchmarks -----------------------------------------------------------------------------

def bench_startup(args) -> None:
    rows = []
    for cmd in (["--help"], *([s, "--help"] for s in ("preprocess", "extract", "fuse", "train",
                                                      "eval", "predict", "run"))):
        times = [sh([*MMCLI, *cmd]) for _ in range(5)]
        med = statistics.median(times)
        rows.append([f"mmcli {' '.join(cmd)}", f"{med:.3f}", "<= 0.25",
                     "yes" if med <= 0.25 else "no"])
    write_table("startup", ["command", "median wall s (5 runs)", "target s", "met"], rows,
                "Measured with `python -m mmcli` (the console script is the same entry point).")


def bench_images(args) -> None:
    work = Path(args.work) / "images"
    photos = make_photos(work / "photos", args.n)
    manifest = write_manifest(work / "manifest.csv",
                              {"photo": [p.relative_to(work) for p in photos]}, args.n)
    cfg = config(work / "cfg.yaml", "preprocess: {image_size: [224, 224], split: {train: 1, "
                 "val: 0, test: 0}}\nextract: {image: [color_hist]}\n")

    def baseline() -> float:
        from PIL import Image

        t0 = time.perf_counter()
        feats = []
        for f in photos:
            im = Image.open(f).convert("RGB").resize((224, 224))
            a = np.asarray(im)
            feats.append(np.concatenate([np.histogram(a[..., c], 16, (0, 256))[0]
                                         for c in range(3)]))
        return time.perf_counter() - t0

    base = baseline()
    t_pre = sh([*MMCLI, "preprocess", str(manifest), "-o", str(work / "pre"), "-c", str(cfg),
                "-q"])
    t_ext = sh([*MMCLI, "extract", str(work / "pre"), "-o", str(work / "feat"), "-c", str(cfg),
                "-q"])
    total = t_pre + t_ext
    write_table("images", ["pipeline", "items", "wall s", "items/s", "speed-up vs baseline"], [
        ["baseline: per-file PIL open/convert/resize(224) + 16-bin histograms", args.n,
         f"{base:.2f}", f"{args.n / base:.0f}", "1.00x"],
        ["mmcli preprocess (224x224) + extract color_hist", args.n, f"{total:.2f}",
         f"{args.n / total:.0f}", f"{base / total:.2f}x"],
        ["  of which preprocess", "", f"{t_pre:.2f}", "", ""],
        ["  of which extract", "", f"{t_ext:.2f}", "", ""],
    ], f"{args.n} JPEGs of 1024x768; target: mmcli at least 3x faster (wall).")


def audio_set(args) -> tuple[Path, list[Path], Path, Path]:
    """The audio benchmarks' data: ``args.n`` clips, their manifest and an mfcc-only config."""
    work = Path(args.work) / "audio"
    clips = make_clips(work / "clips", args.n)
    manifest = write_manifest(work / "manifest.csv",
                              {"speech": [p.relative_to(work) for p in clips]}, args.n)
    cfg = config(work / "cfg.yaml", "preprocess: {split: {train: 1, val: 0, test: 0}}\n"
                 "extract: {audio: [mfcc]}\n")
    return work, clips, manifest, cfg


def bench_audio(args) -> None:
    work, clips, manifest, cfg = audio_set(args)

    def baseline() -> float:
        import librosa

        t0 = time.perf_counter()
        for f in clips:
            y, sr = librosa.load(f)
            librosa.feature.mfcc(y=y, sr=sr)
        return time.perf_counter() - t0

    # like for like with mmcli's wall time (a command: interpreter, imports, work), the loop
    # also runs as a script in a fresh interpreter; the in-process figure is shown too
    listing = work / "clips.txt"
    listing.write_text("\n".join(str(f) for f in clips), encoding="utf-8")
    script = ("import sys, librosa\n"
              "for f in open(sys.argv[1]).read().split():\n"
              "    y, sr = librosa.load(f)\n"
              "    librosa.feature.mfcc(y=y, sr=sr)\n")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", script, str(listing)], check=True)
    base_script = time.perf_counter() - t0
    import librosa  # warm the import (numba) outside the timed in-process loop

    librosa.feature.mfcc(y=np.zeros(4096, dtype=np.float32), sr=16000)
    base = baseline()
    t_pre = sh([*MMCLI, "preprocess", str(manifest), "-o", str(work / "pre"), "-c", str(cfg),
                "-q"])
    t_ext = sh([*MMCLI, "extract", str(work / "pre"), "-o", str(work / "feat"), "-c", str(cfg),
                "-q"])
    write_table("audio", ["pipeline", "clips", "wall s", "clips/s",
                          "speed-up vs the baseline script", "vs the in-process loop"], [
        ["baseline script: per-file librosa.load(f) + librosa.feature.mfcc", args.n,
         f"{base_script:.2f}", f"{args.n / base_script:.0f}", "1.00x", ""],
        ["baseline loop in-process (imports already done)", args.n, f"{base:.2f}",
         f"{args.n / base:.0f}", "", "1.00x"],
        ["mmcli extract (mfcc statistics)", args.n, f"{t_ext:.2f}", f"{args.n / t_ext:.0f}",
         f"{base_script / t_ext:.2f}x", f"{base / t_ext:.2f}x"],
        ["mmcli preprocess + extract", args.n, f"{t_pre + t_ext:.2f}",
         f"{args.n / (t_pre + t_ext):.0f}", f"{base_script / (t_pre + t_ext):.2f}x",
         f"{base / (t_pre + t_ext):.2f}x"],
    ], f"{args.n} mono 16 kHz WAV clips of 1 s; target: extraction at least 2x faster. mmcli's "
        "times are whole commands (interpreter, imports, work), like the baseline script's.")


def bench_jobs(args) -> None:
    rows = []
    for n in (args.n, 4 * args.n, 16 * args.n):  # the fixed start-up weighs less on more
        ns = argparse.Namespace(**{**vars(args), "n": n})
        work, _, manifest, cfg = audio_set(ns)
        sh([*MMCLI, "preprocess", str(manifest), "-o", str(work / "pre"), "-c", str(cfg), "-q"])
        times = {}
        for jobs in (1, 2):
            times[jobs] = sh([*MMCLI, "extract", str(work / "pre"), "-o",
                              str(work / f"feat{jobs}"), "-c", str(cfg), "-q", "--jobs",
                              str(jobs)])
            rows.append([n, jobs, f"{times[jobs]:.2f}", f"{n / times[jobs]:.0f}",
                         f"{times[1] / times[jobs]:.2f}x"])
    write_table("jobs", ["clips", "--jobs", "extract wall s", "clips/s", "speed-up"], rows,
                "1 s 16 kHz clips, mfcc statistics; target: 2 workers at least 1.8x one worker.")


def bench_memory(args) -> None:
    work = Path(args.work) / "memory"
    rows, peaks = [], {}
    for n in (2000, 20000):
        images = make_small_images(work / "img", n)
        clips = make_clips(work / "clips", min(n, 20000), seconds=0.25)
        manifest = write_manifest(work / f"m{n}.csv", {
            "image": [p.relative_to(work) for p in images],
            "audio": [p.relative_to(work) for p in clips],
            "value": [f"{k % 97 / 7:.3f}" for k in range(n)],
        }, n)
        cfg = config(work / "cfg.yaml", "preprocess: {jobs: 1}\nextract: {jobs: 1}\n")
        t1, m1 = peak_child_rss_mb([*MMCLI, "preprocess", str(manifest), "-o",
                                    str(work / f"pre{n}"), "-c", str(cfg), "-q"])
        t2, m2 = peak_child_rss_mb([*MMCLI, "extract", str(work / f"pre{n}"), "-o",
                                    str(work / f"feat{n}"), "-c", str(cfg), "-q"])
        peaks[n] = max(m1, m2)
        rows.append([n, f"{t1:.1f}", f"{m1:.0f}", f"{t2:.1f}", f"{m2:.0f}"])
    ratio = peaks[20000] / peaks[2000]
    write_table("memory", ["items", "preprocess s", "preprocess peak MB", "extract s",
                           "extract peak MB"], rows,
                f"Peak RSS ratio 20,000 / 2,000 items: {ratio:.2f} (target <= 1.25). "
                "Image (32x32 PNG), audio (0.25 s WAV) and a number per item; --jobs 1 so the "
                "peak is one process's.")


def bench_e2e(args) -> None:
    work = Path(args.work) / "e2e"
    n = args.n
    images = make_small_images(work / "img", n)
    clips = make_clips(work / "clips", n, seconds=0.5)
    words = ["red", "green", "blue", "sky", "sea", "leaf", "fire", "stone", "the", "a", "of"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 8)) for _ in range(n)]
    manifest = write_manifest(work / "manifest.csv", {
        "image": [p.relative_to(work) for p in images],
        "audio": [p.relative_to(work) for p in clips], "text": texts}, n)
    w = work / "runs"
    steps = [
        ("preprocess", ["preprocess", str(manifest), "-o", str(w / "pre")]),
        ("extract", ["extract", str(w / "pre"), "-o", str(w / "feat")]),
        ("fuse", ["fuse", str(w / "feat"), "-o", str(w / "fused")]),
        ("train (default model)", ["train", str(w / "fused"), "-o", str(w / "model")]),
        ("eval", ["eval", str(w / "model"), str(w / "fused"), "-o", str(w / "eval"),
                  "--no-robustness"]),
        ("predict", ["predict", str(w / "model"), str(manifest), "-o", str(w / "pred")]),
    ]
    rows = []
    for name, cmd in steps:
        try:
            t = sh([*MMCLI, *cmd, "-q"])
        except subprocess.CalledProcessError:  # an option this version lacks
            t = sh([*MMCLI, *[c for c in cmd if c != "--no-robustness"], "-q"])
        rows.append([name, n, f"{t:.2f}", f"{n / t:.0f}"])
    write_table("e2e", ["stage", "items", "wall s", "items/s"], rows,
                f"{n} items with a 32x32 PNG, a 0.5 s 16 kHz WAV and an 8-word text each; "
                "default settings (all cores).")


def bench_dask(args) -> None:
    """Preprocess + extract with the local pool and with Dask (a local 2-worker cluster):
    the executor's overhead, the per-core throughput docs/scaling.md extrapolates from."""
    work = Path(args.work) / "dask"
    n = args.n
    photos = make_photos(work / "photos", n, size=(640, 480))
    clips = make_clips(work / "clips", n, seconds=1.0)
    words = ["red", "green", "blue", "sky", "sea", "leaf", "fire", "stone", "the", "a", "of"]
    rng = np.random.default_rng(0)
    manifest = write_manifest(work / "manifest.csv", {
        "image": [p.relative_to(work) for p in photos],
        "audio": [p.relative_to(work) for p in clips],
        "text": [" ".join(rng.choice(words, 12)) for _ in range(n)]}, n)
    rows, per_core = [], {}
    for name, extra, cores in (("local, --jobs 1", ["-j", "1"], 1),
                               ("local, --jobs 2", ["-j", "2"], 2),
                               ("dask, local cluster of 2", ["--executor", "dask", "-j", "2"], 2)):
        pre = work / f"pre-{cores}-{extra[0]}"
        t1 = sh([*MMCLI, "preprocess", str(manifest), "-o", str(pre), "-q", *extra])
        t2 = sh([*MMCLI, "extract", str(pre), "-o", str(work / "feat"), "-q", *extra])
        per_core[name] = n / (t1 + t2) / cores
        rows.append([name, f"{t1:.1f}", f"{t2:.1f}", f"{n / (t1 + t2):.0f}",
                     f"{per_core[name]:.0f}"])
    rate = per_core["dask, local cluster of 2"]
    hours = 1e6 / rate / 3600
    write_table("dask", ["executor", "preprocess s", "extract s", "items/s",
                         "items/s per core"], rows,
                f"{n} items: a 640x480 JPEG, a 1 s 16 kHz WAV and a 12-word text each; default "
                f"extractors; every run includes its process (and cluster) start-up. A million "
                f"such items at the Dask per-core rate: {hours:.1f} core-hours of preprocess + "
                f"extract ({hours / 32:.2f} h on 32 worker cores, before I/O limits).")


# --- end to end: the default chain against a hand-written script (issue #15) ---------------

#: the hand-written baseline: loop over the files (PIL, librosa.load + MFCC), StandardScaler,
#: LogisticRegression; prints its phase times as JSON on the last line
SCRIPT = '''
import csv, json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import librosa
import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
t_import = time.perf_counter()
manifest = Path(sys.argv[1])
rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
X, y = [], []
for r in rows:
    digit = np.asarray(Image.open(manifest.parent / r["digit"]).convert("L"), np.float32)
    photo = Image.open(manifest.parent / r["photo"]).convert("RGB").resize((32, 32))
    signal, sr = librosa.load(manifest.parent / r["speech"], sr=16000)
    mfcc = librosa.feature.mfcc(y=signal, sr=sr, n_mfcc=20)
    X.append(np.concatenate([digit.ravel() / 255, np.asarray(photo, np.float32).ravel() / 255,
                             mfcc.mean(1), mfcc.std(1)]))
    y.append(r["label"])
X, y = np.asarray(X), np.asarray(y)
t_features = time.perf_counter()
test = np.arange(len(y)) % 7 == 0
scaler = StandardScaler().fit(X[~test])
model = LogisticRegression(max_iter=1000).fit(scaler.transform(X[~test]), y[~test])
t_train = time.perf_counter()
accuracy = float((model.predict(scaler.transform(X[test])) == y[test]).mean())
t_eval = time.perf_counter()
print(json.dumps({"imports": t_import - t0, "features": t_features - t_import,
                  "train": t_train - t_features, "eval": t_eval - t_train,
                  "accuracy": accuracy}))
'''

#: ten spoken-digit-like "words": per class a pair of formant-like frequencies and a rhythm
CLASS_TONES = [(300 + 70 * c, 900 + 130 * ((3 * c) % 10), 1 + c % 3) for c in range(10)]


def make_chain_set(folder: Path, n: int, real_speech: Path | None = None) -> Path:
    """``n`` items of 10 classes: a 28x28 digit PNG, a 128x128 photo-like JPEG and a 1 s
    16 kHz clip each, generated deterministically (a class's digit, a hand-like shape with
    the class's number of fingers, a class tone pattern; noise and jitter per item).
    ``real_speech``: the clips come from that manifest's recordings (benchmarks only)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        return manifest
    speech = _real_clips(real_speech) if real_speech else None
    rows = []
    for k in range(n):
        c, rng = k % 10, np.random.default_rng([7, k])
        digit, photo = folder / "digits" / f"d{k:05d}.png", folder / "photos" / f"p{k:05d}.jpg"
        _digit_png(digit, c, rng)
        _photo_jpg(photo, c, rng)
        if speech is not None:
            clip = speech[c][(k // 10) % len(speech[c])]
        else:
            clip = folder / "speech" / f"s{k:05d}.wav"
            _tone_wav(clip, c, rng)
        rows.append([f"i{k:05d}", digit.relative_to(folder), photo.relative_to(folder),
                     os.path.relpath(clip, folder), f"c{c}"])
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(
            [["id", "digit", "photo", "speech", "label"], *rows])
    return manifest


def _real_clips(manifest: Path) -> list[list[Path]]:
    """The first ten labels' clips of a manifest (id, speech, label), ten lists."""
    with open(manifest, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = sorted({r["label"] for r in rows})[:10]
    return [[manifest.parent / r["speech"] for r in rows if r["label"] == lab] for lab in labels]


def _digit_png(path: Path, c: int, rng) -> None:
    from PIL import Image, ImageDraw

    path.parent.mkdir(exist_ok=True)
    im = Image.new("L", (28, 28), 0)
    x, y = (int(v) for v in rng.integers(4, 14, 2))
    ImageDraw.Draw(im).text((x, y), str(c), fill=255)
    a = np.asarray(im.rotate(float(rng.uniform(-15, 15)))).astype(np.float32)
    a = np.clip(a * 1.5 + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(path)


def _photo_jpg(path: Path, c: int, rng, size: int = 128) -> None:
    from PIL import Image, ImageDraw

    path.parent.mkdir(exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    tint = rng.uniform(60, 200, 3)
    bg = np.stack([tint[i] + 40 * np.sin(6 * xx + 4 * yy + i) for i in range(3)], -1)
    im = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    d, skin = ImageDraw.Draw(im), tuple(int(v) for v in rng.integers(150, 240, 3))
    cx, cy = size // 2 + int(rng.integers(-10, 10)), int(size * 0.65)
    d.ellipse([cx - 25, cy - 20, cx + 25, cy + 30], fill=skin)
    for f in range(c % 5 + 1):  # the class's number of fingers, fanned out
        angle = np.pi * (0.2 + 0.6 * f / 4) + rng.normal(0, 0.05)
        tip = (cx - 55 * np.cos(angle), cy - 20 - 55 * np.sin(angle))
        d.line([(cx, cy - 10), tip], fill=skin, width=9 + 3 * (c // 5))
    a = np.asarray(im).astype(np.float32) + rng.normal(0, 6, (size, size, 3))
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, quality=90)


def _tone_wav(path: Path, c: int, rng, rate: int = 16000) -> None:
    path.parent.mkdir(exist_ok=True)
    f1, f2, beats = CLASS_TONES[c]
    t = np.arange(rate) / rate
    start = rng.uniform(0.1, 0.3)
    env = np.exp(-((t - start - 0.3) ** 2) / 0.02) * (1 + 0.5 * np.sin(2 * np.pi * beats * 3 * t))
    pitch = rng.uniform(0.9, 1.1)
    y = env * (np.sin(2 * np.pi * f1 * pitch * t) + 0.5 * np.sin(2 * np.pi * f2 * pitch * t))
    y = 0.3 * y / max(np.abs(y).max(), 1e-6) + rng.normal(0, 0.02, t.size)
    _write_wav(path, y, rate)


#: run a command as a child subreaper (Linux): the processes it leaves behind (the fork server
#: and its workers, which mmcli does not wait for) become this wrapper's children and are waited
#: for, so that their CPU time and peak RSS are counted; prints JSON [wall s, peak RSS KB,
#: CPU s (user + sys of the whole process tree), return code, stdout, stderr]
TIMER = """
import ctypes, json, os, resource, subprocess, sys, time
try:
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (OSError, AttributeError):
    pass
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
deadline = time.monotonic() + 30
while time.monotonic() < deadline:  # the orphans exit once the command has
    try:
        if os.waitpid(-1, os.WNOHANG) == (0, 0):
            time.sleep(0.01)
    except ChildProcessError:
        break
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([wall, ru.ru_maxrss, ru.ru_utime + ru.ru_stime, p.returncode, p.stdout,
                  p.stderr]))
"""


def timed(args: list[str], **kw) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """(wall s, peak RSS MB of the largest process in the tree, CPU s of the whole tree,
    result) of a command. CPU seconds (user + sys of the command, its fork server and
    workers) depend less on what else the machine runs than wall time."""
    out = subprocess.run([sys.executable, "-c", TIMER, *args], check=True, capture_output=True,
                         text=True, **kw).stdout
    wall, rss, cpu, rc, stdout, stderr = json.loads(out.splitlines()[-1])
    if rc != 0:
        raise SystemExit(f"{' '.join(args)} failed ({rc}):\n{stderr[-3000:]}")
    return wall, rss / 1024, cpu, subprocess.CompletedProcess(args, rc, stdout, stderr)


CHAIN_STAGES = ("preprocess", "extract", "fuse", "train", "eval")


def chain_commands(manifest: Path, w: Path) -> dict[str, list[str]]:
    """The default chain, stage by stage, as a user types it."""
    return {
        "preprocess": ["preprocess", str(manifest), "-o", str(w / "pre")],
        "extract": ["extract", str(w / "pre"), "-o", str(w / "feat")],
        "fuse": ["fuse", str(w / "feat"), "-o", str(w / "fused")],
        "train": ["train", str(w / "fused"), "-o", str(w / "model")],
        "eval": ["eval", str(w / "model"), str(w / "fused"), "-o", str(w / "eval")],
        "eval --no-robustness": ["eval", str(w / "model"), str(w / "fused"), "-o",
                                 str(w / "eval-plain"), "--no-robustness"],
    }


def chain_once(manifest: Path, work: Path) -> dict[str, tuple[float, float]]:
    """One side-by-side run: the script, each stage, ``mmcli run``, and the rerun of each
    journaled stage (preprocess, extract, train, eval) killed at 60% of its work. Returns
    name -> (wall s, peak RSS MB, CPU s)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    script = work / "baseline.py"
    script.write_text(SCRIPT, encoding="utf-8")
    wall, rss, cpu, done = timed([sys.executable, str(script), str(manifest)])
    phases = json.loads(done.stdout.splitlines()[-1])
    out = {"script": (wall, rss, cpu), "script accuracy": (phases["accuracy"], 0.0, 0.0)}
    for name, cmd in chain_commands(manifest, work / "stages").items():
        out[name] = timed([*MMCLI, *cmd, "-q"])[:3]
    pipeline = config(work / "pipeline.yaml", f"pipeline:\n  manifest: {manifest}\n"
                      f"  workdir: {work / 'run'}\n")
    out["mmcli run"] = timed([*MMCLI, "run", str(pipeline), "-q"])[:3]
    from mmcli.stages.extract import CHUNK as EXTRACT_CHUNK
    from mmcli.stages.preprocess import CHUNK as PREPROCESS_CHUNK

    commands, n = chain_commands(manifest, work / "stages"), sum(1 for _ in open(manifest)) - 1
    out["preprocess rerun after a kill at 60%"] = _killed_rerun(
        commands["preprocess"], -(-n // PREPROCESS_CHUNK))
    out["extract rerun after a kill at 60%"] = _killed_rerun(
        commands["extract"], 3 * -(-n // EXTRACT_CHUNK))
    # train journals its folds' fit seconds, eval its robustness points' seconds: killed at
    # 60% of those seconds (a fold or point can cost 100x another)
    for stage in ("train", "eval"):
        out[f"{stage} rerun after a kill at 60%"] = _killed_rerun(
            commands[stage], _journaled_work(commands[stage]), _journal_seconds)
    eval_json = work / "stages" / "eval" / "metrics.json"
    out["mmcli test accuracy"] = (json.loads(eval_json.read_text())["test"]["accuracy"], 0.0,
                                  0.0)
    return out


def _journal(out: Path) -> list[dict]:
    """The completed records in the journal of a stage running into ``out`` (none before it
    has one; a line cut short by a write in progress is not complete)."""
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            lines = (tmp / ".journal.jsonl").read_text(encoding="utf-8").split("\n")[1:-1]
            return [json.loads(line) for line in lines]
        except (OSError, ValueError):
            continue
    return []


def _journal_records(out: Path) -> int:
    return len(_journal(out))


def _journal_seconds(out: Path) -> float:
    """The seconds journaled so far by a stage running into ``out`` (train: its folds' fits,
    eval: its robustness points)."""
    return sum(record.get("seconds") or 0.0 for record in _journal(out))


def _journaled_work(cmd: list[str]) -> float:
    """The seconds a full run of ``cmd`` journals (read while it runs: the journal is removed
    when the stage commits), so that its kill point is 60% of the work, not of the records
    (a logreg fold fit costs a tenth to a hundredth of the others; an image robustness point
    a tenth of an audio one)."""
    out = Path(cmd[cmd.index("-o") + 1])
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([*MMCLI, *cmd, "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    seen = 0.0
    while proc.poll() is None:
        seen = max(seen, _journal_seconds(out))
        time.sleep(0.02)
    return seen


def _killed_rerun(cmd: list[str], total: float, done=_journal_records
                  ) -> tuple[float, float, float]:
    """Start ``cmd`` on a fresh output, SIGKILL its process group once ``done(out)`` (by
    default the records in its journal) reaches 60% of the ``total`` a full run gets to
    (60% of its work, whatever the machine's load), then time the rerun (which resumes from
    what the killed run left)."""
    import signal

    out = Path(cmd[cmd.index("-o") + 1])
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([*MMCLI, *cmd, "-q"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and done(out) < 0.6 * total:
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return timed([*MMCLI, *cmd, "-q"])[:3]


def bench_chain(args) -> None:
    """The default chain against the hand-written script on a set of issue #15's shape, side
    by side in each of ``--repeat`` runs; ratios are per run, then their median."""
    real = Path(args.real_speech) if args.real_speech else None
    data = Path(args.work) / "chain" / f"set-{args.n}{'-real' if real else ''}"
    manifest = make_chain_set(data, args.n, real)
    runs = [chain_once(manifest, Path(args.work) / "chain" / "runs") for _ in range(args.repeat)]
    rows = []

    def row(name: str, ratio_to: str | None, label: str | None = None) -> None:
        walls = [r[name][0] for r in runs]
        ratios = [r[name][0] / r[ratio_to][0] for r in runs] if ratio_to else []
        cpu_ratios = [r[name][2] / r[ratio_to][2] for r in runs] if ratio_to else []
        rows.append([label or name, f"{statistics.median(walls):.2f}",
                     f"{statistics.median(r[name][2] for r in runs):.2f}",
                     f"{max(r[name][1] for r in runs):.0f}",
                     f"{statistics.median(ratios):.2f}x" if ratios else "",
                     f"{statistics.median(cpu_ratios):.2f}x" if cpu_ratios else "",
                     " ".join(f"{v:.2f}" for v in ratios)])

    row("script", "script", "hand-written script (PIL, librosa MFCC, scaler, logreg)")
    for stage in (*CHAIN_STAGES, "eval --no-robustness"):
        row(stage, "script")
    for r in runs:
        r["five stages"] = (sum(r[s][0] for s in CHAIN_STAGES),
                            max(r[s][1] for s in CHAIN_STAGES), sum(r[s][2] for s in CHAIN_STAGES))
        r["robustness"] = (r["eval"][0] - r["eval --no-robustness"][0], 0.0,
                           r["eval"][2] - r["eval --no-robustness"][2])
    row("five stages", "script", "**five stages, one command each**")
    row("mmcli run", "script", "**mmcli run (the same chain)**")
    row("robustness", "eval", "robustness (eval - eval --no-robustness), ratio to eval")
    for stage in ("preprocess", "extract", "train", "eval"):
        row(f"{stage} rerun after a kill at 60%", stage,
            f"{stage} rerun after a kill at 60% of its work, ratio to a full {stage}")
    acc = (f"test accuracy: script {statistics.median(r['script accuracy'][0] for r in runs):.3f}"
           f", mmcli {statistics.median(r['mmcli test accuracy'][0] for r in runs):.3f}")
    write_table("chain", ["what", "wall s (median)", "CPU s (median)", "peak RSS MB (max)",
                          "ratio (median)", "CPU ratio (median)", "ratio per run"], rows,
                f"{args.n} items of 10 classes (a 28x28 PNG, a 128x128 JPEG and a 1 s 16 kHz "
                f"{'recorded' if real else 'generated'} clip each), {args.repeat} run(s); "
                f"default configuration (model auto, eval with robustness). {acc}. Ratios are "
                "to the script of the same run, except where the row says otherwise.")
    (RESULTS / "perf_chain.json").write_text(json.dumps(
        {"n": args.n, "real_speech": bool(real), "runs": runs}, indent=1) + "\n",
        encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["startup", "images", "audio", "jobs", "memory", "e2e",
                                          "dask", "chain", "all"])
    parser.add_argument("-n", type=int, default=None, help="items (default per benchmark)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench" / "perf"))
    parser.add_argument("--repeat", type=int, default=1, help="chain: side-by-side runs")
    parser.add_argument("--real-speech", default=None, metavar="MANIFEST",
                        help="chain: take the clips from this manifest's recordings (e.g. "
                             "../shared/data/arabic_speech_commands/manifest.csv)")
    args = parser.parse_args()
    defaults = {"images": 2000, "audio": 2000, "jobs": 2000, "e2e": 10000, "dask": 2000,
                "chain": 3000}
    names = list(defaults) + ["startup", "memory"] if args.bench == "all" else [args.bench]
    for name in ["startup", "images", "audio", "jobs", "memory", "e2e", "dask", "chain"]:
        if name in names:
            ns = argparse.Namespace(**vars(args))
            ns.n = args.n or defaults.get(name, 0)
            globals()[f"bench_{name}"](ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())

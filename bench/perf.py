"""Performance benchmarks: mmcli against plain per-file baselines, side by side in one run.

    python bench/perf.py startup            # mmcli --help and <stage> --help wall time
    python bench/perf.py images [-n 2000]   # preprocess+extract vs PIL loop (1024x768 JPEG)
    python bench/perf.py audio [-n 2000]    # extract vs librosa.load + mfcc loop
    python bench/perf.py jobs [-n 2000]     # extraction with --jobs 1 vs --jobs 2
    python bench/perf.py memory             # peak RSS, 2,000 vs 20,000 items
    python bench/perf.py e2e [-n 10000]     # items/s of every stage, image+audio+text
    python bench/perf.py dask [-n 2000]     # local pool vs Dask executor (docs/scaling.md)
    python bench/perf.py all

Each prints a Markdown table and writes it to bench/results/perf_<name>.md. Data are generated
under --work (default runs/bench/perf), never shipped. Timings are wall-clock seconds on this
machine; ratios are what the targets in docs/performance.md are about.
"""

from __future__ import annotations

import argparse
import csv
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
            pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
            with wave.open(str(path), "wb") as wf:
                wf.setnchannels(1)
                wf.setsampwidth(2)
                wf.setframerate(rate)
                wf.writeframes(pcm.tobytes())
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["startup", "images", "audio", "jobs", "memory", "e2e",
                                          "dask", "all"])
    parser.add_argument("-n", type=int, default=None, help="items (default per benchmark)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench" / "perf"))
    args = parser.parse_args()
    defaults = {"images": 2000, "audio": 2000, "jobs": 2000, "e2e": 10000, "dask": 2000}
    names = list(defaults) + ["startup", "memory"] if args.bench == "all" else [args.bench]
    for name in ["startup", "images", "audio", "jobs", "memory", "e2e", "dask"]:
        if name in names:
            ns = argparse.Namespace(**vars(args))
            ns.n = args.n or defaults.get(name, 0)
            globals()[f"bench_{name}"](ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())

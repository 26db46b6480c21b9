"""Throughput of the pretrained-backbone extractors on tiny random models (items/s).

    python bench/pretrained_throughput.py [-n 256] [--device cpu|cuda] [--threads N] [--out FILE]

Writes the tiny models of :mod:`mmcli.testing.pretrained` under --work, then per extractor
times ``transform`` of n items three ways: cold (cache off: every item through the model),
first run with the cache (model + cache writes) and a rerun (every row read from the cache).
The models are tiny, so the numbers measure mmcli's own overhead (tokenising, image
transforms, batching, padding, cache) more than any real network's arithmetic; a real
backbone's cost is its forward pass. Prints a Markdown table and writes it to
bench/results/pretrained_throughput[_cuda].md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def data(kind: str, n: int):
    from mmcli.dataset import AudioClips
    from mmcli.testing.pretrained import WORDS

    rng = np.random.default_rng(0)
    if kind == "text":
        return [" ".join(rng.choice(WORDS, int(rng.integers(3, 40)))) for _ in range(n)]
    if kind == "image":
        return rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    # one second at 16 kHz, four distinct lengths: batches of equal-length clips
    return AudioClips([rng.normal(0, 0.1, 16000 + 1600 * (k % 4)).astype(np.float32)
                       for k in range(n)], 16000)


CASES = [  # extractor, kind, tiny model, parameters
    ("hf_text", "text", "bert", {}),
    ("sentence_transformers", "text", "sentence", {}),
    ("clip_text", "text", "open_clip", {}),
    ("hf_image", "image", "vit", {}),
    ("clip_image", "image", "open_clip", {}),
    ("timm", "image", "timm", {}),
    ("hf_audio", "audio", "wav2vec2", {}),
    ("hf_audio", "audio", "wav2vec2", {"batch_size": 8}),
]


def rate(extractor, items, n: int) -> float:
    start = time.perf_counter()
    extractor.transform(items)
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=256, help="items per extractor")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default; 1 on a shared, loaded "
                        "machine, where spinning OpenMP threads slow everything down)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the tiny models")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="mmcli-pretrained-bench-"))
    os.environ["MMCLI_CACHE_DIR"] = str(work / "cache")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from mmcli.extractors import build_extractor
    from mmcli.testing.pretrained import write_all

    models = write_all(work / "models")
    rows = []
    for name, kind, model, params in CASES:
        items = data(kind, args.n)
        base = {"model": str(models[model]), "device": args.device, **params}
        cold = build_extractor(name, kind, {**base, "cache": False}).fit(None)
        cold.transform(data(kind, 4))  # warm-up: first-call kernel set-up
        cold_rate = rate(cold, items, args.n)
        cached = build_extractor(name, kind, base).fit(None)
        first = rate(cached, items, args.n)
        again = build_extractor(name, kind, base).fit(None)
        rerun = rate(again, items, args.n)
        assert again.computed_ == 0
        label = name + "".join(f" {k}={v}" for k, v in params.items())
        rows.append(f"| {label} | {model} | {cold.dim_} | {cold_rate:,.0f} | {first:,.0f} | "
                    f"{rerun:,.0f} |")
        print(rows[-1], flush=True)
    device = torch.cuda.get_device_name(0) if args.device == "cuda" else \
        f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), " \
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    text = "\n".join([
        f"# Pretrained extractors: throughput on tiny random models ({args.n} items each)",
        "",
        f"Device: {device}. Items/s of `transform` (higher is better): cold = cache off, "
        "every item through the model; first = with the embedding cache (the same work plus "
        "the cache write); rerun = every row read back from the cache. Text: 3 to 40 words; "
        "images 64 x 64; audio 1.0 to 1.3 s at 16 kHz in four lengths. The models are tiny "
        "(tests/extractors/conftest.py), so this is mmcli's overhead, not a real backbone's "
        "forward pass.",
        "",
        "| extractor | model | dim | cold items/s | first (cache write) items/s | "
        "rerun (cache) items/s |",
        "|---|---|---|---|---|---|",
        *rows, "",
        f"Command: `python bench/pretrained_throughput.py -n {args.n} --device {args.device}"
        + (f" --threads {args.threads}" if args.threads else "") + "`; machine load "
        f"average at the end: {os.getloadavg()[0]:.1f}.",
        ""])
    out = args.out or RESULTS / ("pretrained_throughput" +
                                 ("_cuda" if args.device == "cuda" else "") + ".md")
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

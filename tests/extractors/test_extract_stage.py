"""Extractors inside the extract stage: fitted on train only, frozen for everything else;
any image mode or audio format preprocess accepts; a cnn model directory is self-contained."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmcli.config import ExtractConfig, PredictConfig, PreprocessConfig
from mmcli.stages import extract, fuse, predict, preprocess, train
from mmcli.testing.dummies import make_dataset, write_png, write_wav

from .helpers import write_tiny_cnn

EVERY = {
    "image": ["color_hist", "pixels", "hog", "lbp", "pixels_pca", "cnn"],
    "audio": ["mfcc", "logmel", "chroma", "spectral", "frames"],
    "text": ["tfidf", "word2vec", "fasttext", "doc2vec"],
    "numeric": ["numeric"],
    "categorical": ["onehot"],
}


def every_extractor(model: Path) -> ExtractConfig:
    return ExtractConfig(jobs=1, **EVERY, params={
        "cnn": {"model": str(model), "input_size": 16},
        "pixels_pca": {"size": 8, "components": 6},
        "hog": {"size": 32},
        "tfidf": {"svd_components": 4},
        "word2vec": {"vector_size": 8, "epochs": 3},
        "fasttext": {"vector_size": 8, "epochs": 3, "bucket": 2000},
        "doc2vec": {"vector_size": 8, "epochs": 3},
        "numeric": {"scaling": "robust"},
        "onehot": {"max_categories": 2, "unknown": "column"},
    })


def with_category(manifest: Path) -> list[dict]:
    rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
    for k, row in enumerate(rows):
        row["shape"] = ["round", "square", "flat"][k % 3]
    return rows


def write_manifest(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def state_bytes(feat: Path) -> dict[str, str]:
    root = feat / "state" / "extract"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_no_statistic_of_non_train_rows_reaches_any_fit(tmp_path):
    model = write_tiny_cnn(tmp_path / "tiny.pt")
    manifest = make_dataset(tmp_path / "data", n=24, with_split=True)
    rows = with_category(manifest)
    write_manifest(manifest, rows)
    columns = {"shape": "categorical"}
    preprocess(manifest, tmp_path / "pre1", PreprocessConfig(jobs=1, columns=columns))
    extract(tmp_path / "pre1", tmp_path / "feat1", every_extractor(model))

    # change every non-train row drastically: media, text, number, category
    rng = np.random.default_rng(7)
    changed = 0
    for row in rows:
        if row["split"] == "train":
            continue
        changed += 1
        root = manifest.parent
        write_png(root / row["image"], (255, 255, 0), noise=80, rng=rng, size=40)
        write_wav(root / row["audio"], 3300.0, seconds=0.6, rng=rng, rate=22050)
        row["text"] = "zebra quantum ünïcode words nobody used in train " * 3
        row["value"] = "12345.6"
        row["shape"] = "hexagon"
    assert changed >= 6
    write_manifest(manifest, rows)
    preprocess(manifest, tmp_path / "pre2", PreprocessConfig(jobs=1, columns=columns))
    extract(tmp_path / "pre2", tmp_path / "feat2", every_extractor(model))

    first, second = state_bytes(tmp_path / "feat1"), state_bytes(tmp_path / "feat2")
    assert len(first) > 15 and "extract.json" in first
    assert first == second  # every fitted extractor is byte-identical
    train_rows = np.array([r["split"] == "train" for r in rows])
    for col in ("image", "audio", "text", "value", "shape"):
        a = np.load(tmp_path / "feat1" / "features" / f"{col}.npy")
        b = np.load(tmp_path / "feat2" / "features" / f"{col}.npy")
        np.testing.assert_array_equal(a[train_rows], b[train_rows])
        assert not np.array_equal(a[~train_rows], b[~train_rows]), col


def rgb_reference() -> np.ndarray:
    im = np.zeros((24, 32, 3), dtype=np.uint8)
    im[:, :16] = (220, 30, 30)
    im[:, 16:] = (30, 30, 220)
    im[:6, :8] = (250, 250, 250)  # a corner mark so that rotation matters
    return im


def write_image_variants(root: Path) -> dict[str, Path]:
    from PIL import Image

    root.mkdir(parents=True)
    ref = Image.fromarray(rgb_reference())
    paths = {}

    def save(name, im, **kw):
        paths[name] = root / name
        im.save(paths[name], **kw)

    save("rgb.png", ref)
    save("rgba.png", ref.convert("RGBA"))
    save("palette.png", ref.convert("P", palette=Image.Palette.ADAPTIVE, colors=8))
    save("gray.png", ref.convert("L"))
    gray16 = (np.asarray(ref.convert("L"), dtype=np.uint16) * 257)
    save("gray16.png", Image.fromarray(gray16.astype(np.uint16)))
    save("cmyk.jpg", ref.convert("CMYK"), quality=95)
    rotated = ref.transpose(Image.Transpose.ROTATE_90)  # stored sideways...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with "rotate 90 clockwise to display" (undoes ROTATE_90)
    save("exif.png", rotated, exif=exif)
    return paths


def test_image_extractors_on_every_image_mode(tmp_path):
    paths = write_image_variants(tmp_path / "data" / "media")
    rows = [{"id": name.replace(".", "_"), "image": f"media/{name}",
             "label": "a" if k % 2 else "b", "split": "train"}
            for k, name in enumerate(paths)]
    manifest = write_manifest(tmp_path / "data" / "manifest.csv", rows)
    preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1, image_size=[32, 24]))
    names = ["color_hist", "hog", "lbp", "pixels", "pixels_pca"]
    extract(tmp_path / "pre", tmp_path / "feat",
            ExtractConfig(jobs=1, image=names, params={"hog": {"size": 32}}))
    x = np.load(tmp_path / "feat" / "features" / "image.npy")
    assert x.shape[0] == len(paths) and np.isfinite(x).all()
    row = {name: x[k] for k, name in enumerate(paths)}
    for same in ("rgba.png", "palette.png", "exif.png"):
        np.testing.assert_allclose(row[same], row["rgb.png"], atol=0.02, err_msg=same)
    np.testing.assert_allclose(row["cmyk.jpg"], row["rgb.png"], atol=0.1)
    for grey in ("gray.png", "gray16.png"):  # 16-bit is stretched to the full 8-bit range
        hist = row[grey][:48].reshape(3, 16)
        np.testing.assert_array_equal(hist[0], hist[1])  # grey: equal channels
        np.testing.assert_array_equal(hist[0], hist[2])


def test_audio_extractors_on_every_format_and_rate(tmp_path):
    import soundfile as sf

    t = np.arange(int(0.5 * 44100)) / 44100
    y = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    media = tmp_path / "data" / "media"
    media.mkdir(parents=True)
    variants = {
        "pcm16.wav": (y, 44100, "PCM_16"),
        "pcm24.wav": (y, 44100, "PCM_24"),
        "pcm8.wav": (y, 44100, "PCM_U8"),
        "float.wav": (y, 44100, "FLOAT"),
        "stereo.flac": (np.stack([y, y], axis=1), 44100, "PCM_16"),
        "rate8k.wav": (y[::5][: int(0.5 * 8820)], 8820, "PCM_16"),
        "vorbis.ogg": (y, 44100, "VORBIS"),
    }
    for name, (data, rate, subtype) in variants.items():
        sf.write(media / name, data, rate, subtype=subtype)
    rows = [{"id": n.replace(".", "_"), "audio": f"media/{n}", "label": "ab"[k % 2],
             "split": "train"} for k, n in enumerate(variants)]
    manifest = write_manifest(tmp_path / "data" / "manifest.csv", rows)
    preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1))
    names = ["mfcc", "logmel", "chroma", "spectral", "frames"]
    # mean and std: percentiles (the mfcc default) are order statistics, which the last bits
    # of a 16-bit copy can move by more than the tolerance below
    mean_std = {"mfcc": {"stats": ["mean", "std"]}}
    extract(tmp_path / "pre", tmp_path / "feat", ExtractConfig(jobs=1, audio=names,
                                                               params=mean_std))
    x = np.load(tmp_path / "feat" / "features" / "audio.npy")
    assert x.shape[0] == len(variants) and np.isfinite(x).all()
    chroma = 80 + 80  # after mfcc (20 x 2 x 2) and logmel (40 x 2): 12 chroma means
    assert (x[:, chroma:chroma + 12].argmax(axis=1) == 9).all()  # every copy is an A
    for k, name in enumerate(variants):  # lossless copies at the same rate: the same MFCC,
        if name in ("pcm24.wav", "float.wav", "stereo.flac"):  # log-mel and chroma
            np.testing.assert_allclose(x[k, :chroma + 24], x[0, :chroma + 24], rtol=0.02,
                                       atol=0.02, err_msg=name)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cnn_model_directory_is_self_contained(tmp_path):
    model = write_tiny_cnn(tmp_path / "elsewhere" / "tiny.pt")
    manifest = make_dataset(tmp_path / "data", n=12)
    runs = tmp_path / "runs"
    preprocess(manifest, runs / "pre", PreprocessConfig(jobs=1))
    config = ExtractConfig(jobs=1, image=["cnn", "color_hist"],
                           params={"cnn": {"model": str(model), "input_size": 16,
                                           "batch_size": 5}})
    extract(runs / "pre", runs / "feat", config)
    copies = list((runs / "feat" / "state" / "extract").glob("*.model.pt"))
    assert [p.name for p in copies] == ["image__0__cnn.model.pt"]
    assert copies[0].read_bytes() == model.read_bytes()
    fuse(runs / "feat", runs / "fused")
    train(runs / "fused", runs / "model")
    shutil.rmtree(tmp_path / "elsewhere")  # the original model file is gone
    summary = predict(runs / "model", manifest, runs / "pred", PredictConfig(jobs=1))
    assert summary["predicted"] == 12

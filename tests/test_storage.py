"""Manifests and media on an fsspec filesystem (the in-memory one; a bucket works the same
way): preprocess and predict read them through fsspec and produce the same arrays as from
local files; a missing remote file is one item's failure naming its URL."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import fsspec
import pytest
from cli.helpers import fails, ok

from mmcli import storage
from mmcli.config import PredictConfig, PreprocessConfig
from mmcli.errors import DataError
from mmcli.stages import predict, preprocess
from mmcli.testing.dummies import make_dataset


@pytest.fixture
def remote(tmp_path):
    """The dataset copied to memory://<unique>/ ; returns (local manifest, manifest URL)."""
    manifest = make_dataset(tmp_path / "data", n=24)
    fs = fsspec.filesystem("memory")
    base = f"memory://{tmp_path.name}"
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            fs.pipe(f"{base}/{path.relative_to(tmp_path / 'data')}", path.read_bytes())
    yield manifest, f"{base}/manifest.csv"
    fs.rm(base, recursive=True)


def _same_data(a: Path, b: Path) -> None:
    for rel in ("items.jsonl", "failures.csv", "state/preprocess.json", "data/image.npy",
                "data/audio.npy", "data/audio.offsets.npy", "data/value.npy"):
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def test_preprocess_reads_a_manifest_and_media_from_a_url(remote, tmp_path):
    manifest, url = remote
    preprocess(manifest, tmp_path / "local", PreprocessConfig(jobs=1))
    summary = preprocess(url, tmp_path / "remote", PreprocessConfig(jobs=1))
    assert summary["kept"] == 24
    _same_data(tmp_path / "local", tmp_path / "remote")


def test_a_missing_remote_file_fails_alone_naming_its_url(remote, tmp_path):
    _, url = remote
    fsspec.filesystem("memory").rm(url.rsplit("/", 1)[0] + "/media/item0003.png")
    summary = preprocess(url, tmp_path / "pre", PreprocessConfig(jobs=1))
    # the row keeps its other modalities; the cell is missing, named in failures.csv
    assert summary["failed"] == 0 and summary["missing_cells"] == {"image": 1}
    failures = (tmp_path / "pre" / "failures.csv").read_text()
    assert "kept: file not found: memory://" in failures and "item0003.png" in failures


def test_file_urls_are_local_paths(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=12)
    assert storage.local(manifest.as_uri()) == manifest
    preprocess(manifest, tmp_path / "a", PreprocessConfig(jobs=1))
    preprocess(manifest.as_uri(), tmp_path / "b", PreprocessConfig(jobs=1))
    _same_data(tmp_path / "a", tmp_path / "b")


def test_cli_preprocess_and_predict_from_urls(remote, tmp_path, pipeline):
    _, url = remote
    ok("preprocess", url, "-o", tmp_path / "pre", "-j", "1", "-q")
    assert len((tmp_path / "pre" / "items.jsonl").read_text().splitlines()) == 24
    ok("predict", pipeline.model, url, "-o", tmp_path / "pred", "-j", "1", "-q")
    local = tmp_path / "pred-local"
    predict(pipeline.model, remote[0], local, PredictConfig(jobs=1))
    assert filecmp.cmp(local / "predictions.csv", tmp_path / "pred" / "predictions.csv",
                       shallow=False)
    line = fails(3, "preprocess", "memory://nowhere/m.csv", "-o", tmp_path / "x")
    assert "manifest memory://nowhere/m.csv does not exist" in line
    line = fails(3, "preprocess", "nosuchproto://b/m.csv", "-o", tmp_path / "x")
    assert "nosuchproto://" in line


def test_media_roots_refuse_urls(remote, tmp_path):
    _, url = remote
    with pytest.raises(DataError) as info:
        preprocess(url, tmp_path / "pre", PreprocessConfig(jobs=1, media_roots=[str(tmp_path)]))
    assert "is a URL; media roots allow only local files" in str(info.value)


def test_urls_join_like_paths():
    base = storage.parent("https://h/set/m.csv?sig=abc/def")
    assert base == "https://h/set"
    assert storage.join(base, "media/x.png") == "https://h/set/media/x.png"
    assert storage.join("s3://b/set", "../other/x.png") == "s3://b/other/x.png"
    assert storage.join("s3://b/set", "gs://c/y.png") == "gs://c/y.png"
    assert storage.join("s3://b/set", "file:///abs/y.png") == Path("/abs/y.png")
    assert storage.suffix("https://h/m.jsonl?sig=1") == ".jsonl"
    with pytest.raises(OSError, match="local absolute path"):
        storage.local("file://relative/x.csv")


def test_a_back_end_error_is_one_items_failure(remote, tmp_path, monkeypatch):
    """fsspec back-ends raise their own exceptions (an HTTP 403, missing credentials)."""
    _, url = remote

    class Forbidden(Exception):
        pass

    real = storage._fs

    def flaky(u):
        fs, path = real(u)
        if "item0004.wav" not in u:
            return fs, path

        class Refusing:
            def open(self, *args, **kwargs):
                raise Forbidden("403 Forbidden")

        return Refusing(), path

    monkeypatch.setattr(storage, "_fs", flaky)
    summary = preprocess(url, tmp_path / "pre", PreprocessConfig(jobs=1))
    assert summary["failed"] == 0 and summary["missing_cells"] == {"audio": 1}
    failures = (tmp_path / "pre" / "failures.csv").read_text()
    assert "item0004" in failures and "Forbidden: 403 Forbidden" in failures


def test_stage_directories_at_urls(tmp_path, pipeline):
    """Every stage reads and writes stage directories at URLs (staged through local copies):
    the same files as locally, meta.json naming the URLs; the chain runs from the CLI."""
    from mmcli.stages import extract, fuse, train

    fs = fsspec.filesystem("memory")
    base = f"memory://{tmp_path.name}-runs"
    ok("preprocess", pipeline.manifest, "-o", f"{base}/pre", "-j", "1", "-q")
    local = tmp_path / "pre"
    preprocess(pipeline.manifest, local, PreprocessConfig(jobs=1))
    for rel in ("items.jsonl", "data/image.npy", "data/audio.npy", "state/preprocess.json"):
        assert fs.cat_file(f"{base}/pre/{rel}") == (local / rel).read_bytes(), rel
    ok("extract", f"{base}/pre", "-o", f"{base}/feat", "-j", "1", "-q")
    meta = json.loads(fs.cat_file(f"{base}/feat/meta.json"))
    assert list(meta["inputs"]) == [f"{base}/pre"]
    extract(local, tmp_path / "feat")
    for rel in meta["outputs"]:
        assert fs.cat_file(f"{base}/feat/{rel}") == (tmp_path / "feat" / rel).read_bytes(), rel
    fuse(f"{base}/feat", f"{base}/fused")
    train(f"{base}/fused", tmp_path / "model")
    ok("eval", tmp_path / "model", f"{base}/fused", "-o", f"{base}/eval", "--no-robustness",
       "-q")
    assert fs.exists(f"{base}/eval/report.html")
    # a run that fails uploads nothing: the old output stays whole
    before = fs.cat_file(f"{base}/feat/meta.json")
    fails(2, "extract", f"{base}/pre", "-o", f"{base}/feat", "-c", _config(tmp_path), "-q")
    assert fs.cat_file(f"{base}/feat/meta.json") == before
    # a directory whose upload did not finish (no meta.json) is not taken for complete
    fs.rm(f"{base}/fused/meta.json")
    line = fails(4, "train", f"{base}/fused", "-o", tmp_path / "m2")
    assert f"{base}/fused/meta.json does not exist" in line
    fs.rm(base, recursive=True)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("extract: {params: {tfidf: {svd_components: 5, min_df: 1000}}}\n")
    return path


def test_remote_media_are_fingerprinted_by_size_and_version(remote):
    """The up-to-date check of `mmcli run` sees a replaced remote file (metadata requests,
    made many at a time)."""
    from mmcli.manifest import column_kinds, read_manifest
    from mmcli.stages.preprocess import manifest_inputs

    _, url = remote
    manifest = read_manifest(url)
    kinds = column_kinds(manifest, "label", {})
    before = manifest_inputs(manifest, kinds)
    assert manifest_inputs(manifest, kinds) == before
    fs = fsspec.filesystem("memory")
    wav = url.rsplit("/", 1)[0] + "/media/item0002.wav"
    fs.pipe(wav, fs.cat_file(wav) + b"\0")
    after = manifest_inputs(manifest, kinds)
    assert after["media"] != before["media"] and after[url] == before[url]


def test_a_stage_at_a_url_reuses_its_earlier_output(tmp_path):
    """Appending rows and re-running preprocess into the same URL decodes only the new rows
    (the earlier output is fetched and reused, as for a local directory)."""
    manifest = make_dataset(tmp_path / "data", n=20)
    url = f"memory://{tmp_path.name}-reuse/pre"
    first = preprocess(manifest, url, PreprocessConfig(jobs=1))
    assert first["decoded"] == 20
    again = preprocess(manifest, url, PreprocessConfig(jobs=1))
    assert again["decoded"] == 0 and again["reused"] == 20
    bigger = make_dataset(tmp_path / "data", n=24)
    assert bigger == manifest
    grown = preprocess(manifest, url, PreprocessConfig(jobs=1))
    assert grown["decoded"] == 4 and grown["reused"] == 20
    local = tmp_path / "local"
    preprocess(manifest, local, PreprocessConfig(jobs=1))
    fs = fsspec.filesystem("memory")
    for rel in ("items.jsonl", "data/image.npy", "data/audio.npy"):
        assert fs.cat_file(f"{url}/{rel}") == (local / rel).read_bytes(), rel
    fs.rm(url.rsplit("/", 1)[0], recursive=True)

"""--media-root / media_roots: media are read only from inside the given folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli.helpers import fails, ok, read_rows, write_rows

from mmcli.media import MediaError
from mmcli.stages.preprocess import confine, resolve_media_roots


@pytest.fixture
def tree(tmp_path) -> Path:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "a.png").write_bytes(b"x")
    (tmp_path / "outside.png").write_bytes(b"x")
    (tmp_path / "root" / "link.png").symlink_to(tmp_path / "outside.png")
    (tmp_path / "root" / "inner_link.png").symlink_to("a.png")
    (tmp_path / "root" / "loop.png").symlink_to("loop.png")
    return tmp_path


@pytest.mark.parametrize("raw, allowed", [
    ("a.png", True), ("sub/../a.png", True), ("inner_link.png", True), ("missing.png", True),
    ("../outside.png", False), ("sub/../../outside.png", False), ("link.png", False),
])
def test_confine_relative_paths(tree, raw, allowed):
    roots = resolve_media_roots([tree / "root"])
    if allowed:
        assert confine(tree / "root" / raw, roots, raw).is_relative_to(roots[0])
    else:
        with pytest.raises(MediaError, match="outside the media roots"):
            confine(tree / "root" / raw, roots, raw)


def test_confine_absolute_paths_and_several_roots(tree):
    roots = resolve_media_roots([tree / "root", tree / "root" / "sub"])
    assert confine(tree / "root" / "a.png", roots, "abs") == (tree / "root" / "a.png").resolve()
    with pytest.raises(MediaError, match="outside"):
        confine(Path("/etc/passwd"), roots, "/etc/passwd")
    assert confine(tree / "outside.png", resolve_media_roots([tree]), "x").name == "outside.png"


def test_confine_symlink_loop(tree):
    with pytest.raises(MediaError, match="cannot resolve|outside"):
        confine(tree / "root" / "loop.png", resolve_media_roots([tree / "root"]), "loop.png")


def test_a_symlinked_root_is_resolved(tree):
    (tree / "alias").symlink_to(tree / "root")
    roots = resolve_media_roots([tree / "alias"])
    assert confine(tree / "alias" / "a.png", roots, "a.png").name == "a.png"


@pytest.fixture
def untrusted(pipeline, tmp_path) -> Path:
    """A new manifest for predict: its media in new/, plus rows escaping it three ways."""
    new = tmp_path / "new"
    shutil.copytree(pipeline.manifest.parent, new)
    rows = read_rows(new / "manifest.csv")[:6]
    outside = tmp_path / "outside.png"
    shutil.copy(new / rows[0]["image"], outside)
    (new / "media" / "link.png").symlink_to(outside)
    rows[1]["image"] = "../outside.png"
    rows[2]["image"] = str(outside)
    rows[3]["image"] = "media/link.png"
    return write_rows(new / "manifest.csv", rows)


def test_predict_with_media_root_refuses_escaping_paths(pipeline, untrusted, tmp_path):
    out = tmp_path / "pred"
    ok("predict", pipeline.model, untrusted, "-o", out, "--media-root", untrusted.parent,
       "-j", "1")
    failures = read_rows(out / "failures.csv")
    assert [f["row"] for f in failures] == ["2", "3", "4"]
    assert all(f["reason"].startswith("kept: ") and "outside the media roots" in f["reason"]
               for f in failures)
    predictions = read_rows(out / "predictions.csv")  # predicted without the image
    assert [p["missing"] for p in predictions] == ["", "image", "image", "image", "", ""]


def test_predict_media_roots_from_the_config(pipeline, untrusted, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"predict: {{media_roots: ['{untrusted.parent}']}}\n", encoding="utf-8")
    ok("predict", pipeline.model, untrusted, "-o", tmp_path / "pred", "-c", config, "-j", "1")
    assert len(read_rows(tmp_path / "pred" / "failures.csv")) == 3


def test_predict_without_media_root_reads_them(pipeline, untrusted, tmp_path):
    ok("predict", pipeline.model, untrusted, "-o", tmp_path / "pred", "-j", "1")
    assert read_rows(tmp_path / "pred" / "failures.csv") == []


def test_media_root_that_is_not_a_folder_exits_2(pipeline, untrusted, tmp_path):
    line = fails(2, "predict", pipeline.model, untrusted, "-o", tmp_path / "pred",
                 "--media-root", tmp_path / "nope")
    assert f"media root {tmp_path / 'nope'} is not a directory" in line


def test_preprocess_media_root_option_is_repeatable(dataset, tmp_path):
    out = tmp_path / "pre"
    (tmp_path / "elsewhere").mkdir()
    ok("preprocess", dataset, "-o", out, "-j", "1", "--media-root", tmp_path / "elsewhere",
       "--media-root", dataset.parent / "media")
    assert read_rows(out / "failures.csv") == []
    import json

    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["config"]["media_roots"] == [str(tmp_path / "elsewhere"),
                                             str(dataset.parent / "media")]

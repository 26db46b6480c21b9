"""Following meta.json inputs from a fuse directory back to extract and preprocess."""

from __future__ import annotations

import json
import shutil

from mmcli import artifacts
from mmcli.report.chain import find_chain


def test_the_chain_of_the_pipeline_is_found(pipeline):
    chain = find_chain(artifacts.open_stage(pipeline.fused, "fuse", "test"))
    assert chain.extract.path == pipeline.feat
    assert chain.preprocess.path == pipeline.pre
    assert chain.notes == []


def _set_input(meta_path, recorded: str, digest: str | None = None) -> None:
    meta = json.loads(meta_path.read_text())
    (old,) = meta["inputs"].values()
    meta["inputs"] = {recorded: digest or old}
    meta_path.write_text(json.dumps(meta))


def test_a_moved_chain_is_found_beside_the_fuse_directory(pipeline, tmp_path):
    for name in ("feat", "fused"):
        shutil.copytree(pipeline.pre.parent / name, tmp_path / name)
    _set_input(tmp_path / "fused" / "meta.json", "elsewhere/feat")  # as if run from elsewhere
    chain = find_chain(artifacts.open_stage(tmp_path / "fused", "fuse", "test", verify=False))
    assert chain.extract.path == tmp_path / "feat"
    assert chain.preprocess.path == pipeline.pre
    assert chain.notes == []


def test_a_re_made_input_is_not_used(pipeline, tmp_path):
    for name in ("feat", "fused"):
        shutil.copytree(pipeline.pre.parent / name, tmp_path / name)
    _set_input(tmp_path / "fused" / "meta.json", str(tmp_path / "feat"), "0" * 64)
    chain = find_chain(artifacts.open_stage(tmp_path / "fused", "fuse", "test", verify=False))
    assert chain.extract is None and chain.preprocess is None
    assert "was re-made after" in chain.notes[0]


def test_a_missing_input_is_a_note(pipeline, tmp_path):
    shutil.copytree(pipeline.fused, tmp_path / "fused")
    _set_input(tmp_path / "fused" / "meta.json", "nowhere/feat")
    chain = find_chain(artifacts.open_stage(tmp_path / "fused", "fuse", "test", verify=False))
    assert chain.extract is None and chain.preprocess is None
    assert chain.notes == [f"the extract directory nowhere/feat that {tmp_path / 'fused'} was "
                           "made from was not found"]

"""mmcli show: a stage directory's identity, lineage, integrity and up-to-date status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mmcli.testing.dummies import make_dataset

from .helpers import fails, ok, run

REPO = Path(__file__).resolve().parents[2]


def mmcli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MMCLI_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "mmcli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def stages_of(lineage: list) -> list[str]:
    """The stages and manifests of a lineage tree, depth first."""
    out = []
    for node in lineage:
        out.append(node.get("stage", node["kind"]))
        if isinstance(node.get("inputs"), list):
            out += stages_of(node["inputs"])
    return out


def test_show_a_model_directory(pipeline):
    text = ok("show", pipeline.model).stdout
    assert "a 'train' directory (schema 1, mmcli " in text
    assert "intact:     yes" in text and "up to date: yes" in text
    assert "model: auto" in text  # the resolved config
    assert f"{pipeline.pre}  (preprocess directory, as recorded)" in text
    assert f"{pipeline.manifest}  (manifest, as recorded)" in text

    info = json.loads(ok("show", pipeline.model, "--json").stdout)
    assert info["stage"] == "train" and info["intact"] and info["up_to_date"]
    assert info["created"] is None and info["written"].endswith("Z")
    assert info["files"] == len(json.loads((pipeline.model / "meta.json").read_text())
                                ["outputs"]) + 1
    assert stages_of(info["lineage"]) == ["fuse", "extract", "preprocess", "manifest", "media"]
    assert info["config"]["model"] == "auto" and "jobs" not in info["config"]

    pre = json.loads(ok("show", pipeline.pre, "--json").stdout)
    assert pre["rows"] == {"items.jsonl": 36, "failures.csv": 0}
    assert pre["summary"]["kept"] == 36


def test_modified_missing_and_corrupt_directories_exit_4(pipeline, tmp_path):
    feat = tmp_path / "feat"
    shutil.copytree(pipeline.feat, feat)
    (feat / "blocks.json").write_text("{}\n")
    result = run("show", feat)
    assert result.exit_code == 4, result.output
    assert "intact:     NO: " in result.stdout  # still described
    assert "up to date: no (output unusable: " in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "blocks.json was modified" in errors[0]

    assert "is not a directory" in fails(4, "show", tmp_path / "nope")
    assert "does not exist" in fails(2, "show", tmp_path / "nope.yaml")
    (feat / "meta.json").write_text("{not json")
    assert "is not valid JSON" in fails(4, "show", feat)
    (feat / "meta.json").unlink()
    assert "meta.json is missing" in fails(4, "show", feat)


def test_show_follows_changed_inputs(tmp_path):
    from mmcli.config import ExtractConfig, PreprocessConfig
    from mmcli.stages import extract, preprocess

    manifest = make_dataset(tmp_path / "data", n=12)
    preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1))
    extract(tmp_path / "pre", tmp_path / "feat", ExtractConfig(jobs=1))
    assert json.loads(ok("show", tmp_path / "feat", "--json").stdout)["up_to_date"]

    rows = manifest.read_text().splitlines()
    manifest.write_text("\n".join(rows[:-1]) + "\n")  # a row deleted
    pre = json.loads(ok("show", tmp_path / "pre", "--json").stdout)
    assert (pre["up_to_date"], pre["reason"]) == (False, "inputs changed")
    assert pre["lineage"][0] | {"sha256": None} == {
        "input": str(manifest), "kind": "manifest", "found": str(manifest), "changed": True,
        "sha256": None}

    preprocess(manifest, tmp_path / "pre", PreprocessConfig(jobs=1))
    text = ok("show", tmp_path / "feat").stdout
    assert "up to date: no (inputs changed)" in text
    assert f"{tmp_path / 'pre'}  (preprocess directory, changed since)" in text


def test_subprocess_relative_paths_and_a_pipeline(tmp_path, pipeline):
    make_dataset(tmp_path / "data", n=12)
    done = mmcli("preprocess", "data/manifest.csv", "-o", "w/pre", "-j", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # meta.json records data/manifest.csv relative to tmp_path: found from elsewhere too
    shown = mmcli("show", tmp_path / "w" / "pre", "--json", cwd=tmp_path.parent)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["up_to_date"] and info["lineage"][0]["found"] == str(tmp_path / "data" /
                                                                    "manifest.csv")

    # the session pipeline's directories are runs/{pre,feat,fused,model}: a pipeline file
    # naming them shows those four current and eval not yet run
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"pipeline: {{manifest: {pipeline.manifest}, "
                    f"workdir: {pipeline.pre.parent}}}\n")
    shown = mmcli("show", pipe, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:2] == ["stage", "status"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["preprocess", "up", "to"], ["extract", "up", "to"], ["fuse", "up", "to"],
        ["train", "up", "to"], ["eval", "would", "run"]]
    assert "(no output yet)" in lines[-1]
    info = json.loads(mmcli("show", pipe, "--json", cwd=tmp_path).stdout)
    assert not info["up_to_date"] and info["stages"][0]["rows"]["items.jsonl"] == 36
    assert info["stages"][-1] == {"stage": "eval", "path": str(pipeline.pre.parent / "eval"),
                                  "up_to_date": False, "reason": "no output yet",
                                  "exists": False}


def test_show_a_prediction_directory(pipeline, tmp_path):
    from mmcli.config import PredictConfig
    from mmcli.stages import predict

    new = make_dataset(tmp_path / "data", n=6, with_label=False, name="new")
    predict(pipeline.model, new, tmp_path / "pred", PredictConfig(jobs=1))
    info = json.loads(ok("show", tmp_path / "pred", "--json").stdout)
    assert (info["stage"], info["up_to_date"], info["rows"]["predictions.csv"]) == (
        "predict", True, 6)
    by_kind = {node["kind"]: node for node in info["lineage"]}
    assert by_kind["manifest"]["input"] == str(new)
    assert stages_of([by_kind["stage"]]) == ["train", "fuse", "extract", "preprocess",
                                             "manifest", "media"]
    shutil.rmtree(tmp_path / "data" / "media")
    info = json.loads(ok("show", tmp_path / "pred", "--json").stdout)
    assert (info["up_to_date"], info["reason"]) == (False, "inputs changed")
    (tmp_path / "data" / "new.csv").unlink()
    info = json.loads(ok("show", tmp_path / "pred", "--json").stdout)
    assert (info["up_to_date"], info["reason"]) == (
        False, f"input unusable: {tmp_path / 'data' / 'new.csv'} is missing")
    assert "missing" in [node["kind"] for node in info["lineage"]]

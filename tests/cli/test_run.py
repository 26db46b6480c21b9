from __future__ import annotations

from mmcli.testing.dummies import make_dataset
from tests.cli.helpers import fails, ok


def test_run_then_dry_run_and_force(tmp_path):
    manifest = make_dataset(tmp_path / "data", n=24)
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"pipeline: {{manifest: {manifest}, workdir: {tmp_path / 'w'}}}\n"
                    "preprocess: {jobs: 1}\nextract: {jobs: 1}\n")
    first = ok("run", pipe)
    assert "preprocess ran" in first.stderr and "(no output yet)" in first.stderr
    assert "run: ran 5 of 5 stages" in first.stderr
    assert (tmp_path / "w" / "eval" / "metrics.json").exists()
    again = ok("run", pipe, "--dry-run")
    assert "run: would run 0 of 5 stages" in again.stderr
    assert "eval       skipped (up to date)" in again.stderr
    assert "run: ran 5 of 5 stages" in ok("run", pipe, "--force").stderr


def test_run_errors(tmp_path):
    assert "does not exist" in fails(2, "run", tmp_path / "nope.yaml")
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"pipeline: {{manifest: {tmp_path / 'none.csv'}, workdir: {tmp_path}/w}}\n")
    assert "does not exist" in fails(3, "run", pipe)
    pipe.write_text("pipeline: {manifest: m.csv, workdir: 's3://bucket/runs'}\n")
    line = fails(2, "run", pipe)
    assert "workdir" in line and "is a URL (s3://bucket/runs)" in line
    assert not (tmp_path / "s3:").exists()


def test_run_refuses_a_misspelled_extractor_before_preprocessing(tmp_path):
    pipe = tmp_path / "p.yaml"
    pipe.write_text(f"pipeline: {{manifest: {tmp_path / 'm.csv'}, workdir: {tmp_path}/w}}\n"
                    "extract: {params: {tfid: {max_features: 10}}}\n")
    line = fails(2, "run", pipe)  # not 3 for the missing manifest: nothing ran
    assert "unknown extractor 'tfid' in extract.params" in line and "'tfidf'" in line
    assert not (tmp_path / "w").exists()

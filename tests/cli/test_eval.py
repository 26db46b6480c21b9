"""mmcli eval: metrics, report and per-item predictions of a model on a fuse directory."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser

import pytest

from .helpers import fails, file_hashes, ok, read_rows


@pytest.fixture(scope="module")
def evaluated(pipeline, tmp_path_factory):
    """One successful eval of the shared pipeline, with what the user saw."""
    out = tmp_path_factory.mktemp("eval") / "eval"
    return out, ok("eval", pipeline.model, pipeline.fused, "-o", out)


def test_success_writes_metrics_report_and_predictions(evaluated):
    out, _ = evaluated
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics) == ["test", "train", "val"]
    assert sum(m["n"] for m in metrics.values()) == 36
    for m in metrics.values():
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"):
            assert 0.0 <= m[key] <= 1.0
        assert m["confusion_matrix"]["labels"] == ["blue", "green", "red"]
        assert sum(map(sum, m["confusion_matrix"]["matrix"])) == m["n"]
    report = (out / "report.md").read_text()
    assert report.startswith("# mmcli evaluation report")
    assert "## Confusion matrix (test" in report

    rows = read_rows(out / "predictions.csv")
    assert list(rows[0]) == ["id", "split", "label", "prediction",
                             "prob_blue", "prob_green", "prob_red"]
    assert len(rows) == 36
    for row in rows:
        probs = [float(row[f"prob_{c}"]) for c in ("blue", "green", "red")]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert json.loads((out / "meta.json").read_text())["stage"] == "eval"


def test_metrics_table_on_stdout_and_messages_on_stderr(evaluated):
    out, result = evaluated
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["split", "n", "accuracy", "balanced_acc", "macro_f1"]
    assert [line.split()[0] for line in lines[1:]] == ["train", "val", "test"]
    assert f"wrote {out} (report: {out / 'report.md'}; open {out / 'report.html'} in a " \
        "browser)" in result.stderr
    assert "eval: 36/36 (100%)" in result.stderr


def test_quiet_prints_nothing(pipeline, tmp_path):
    result = ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval", "-q")
    assert result.output == ""
    assert (tmp_path / "eval" / "metrics.json").is_file()


def test_fuse_directory_of_another_fusion_exits_4(pipeline, tmp_path):
    ok("fuse", pipeline.feat, "-o", tmp_path / "tensor", "--method", "tensor", "-q")
    line = fails(4, "eval", pipeline.model, tmp_path / "tensor", "-o", tmp_path / "eval")
    assert "was not made by the pipeline" in line
    assert str(pipeline.model) in line
    assert not (tmp_path / "eval").exists()


def test_arguments_swapped_exits_4(pipeline, tmp_path):
    line = fails(4, "eval", pipeline.fused, pipeline.model, "-o", tmp_path / "eval")
    assert "'fuse' directory" in line and "needs a 'train' one" in line
    assert f"mmcli train {pipeline.fused} -o DIR" in line


def test_modified_model_exits_4(pipeline, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(pipeline.model, model)
    state = model / "state" / "model" / "model.json"
    state.write_text(state.read_text() + "\n")  # still valid JSON, but not the same bytes
    line = fails(4, "eval", model, pipeline.fused, "-o", tmp_path / "eval")
    assert "model.json was modified" in line


def test_unknown_config_key_exits_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("eval: {split: [test]}\n")
    line = fails(2, "eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval",
                 "-c", config)
    assert "did you mean 'splits'?" in line


def test_config_chooses_the_splits(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("eval: {splits: [train, val]}\n")
    result = ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval", "-c", config)
    assert list(json.loads((tmp_path / "eval" / "metrics.json").read_text())) == ["train", "val"]
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["train", "val"]
    assert "## Per class (val)" in (tmp_path / "eval" / "report.md").read_text()


def test_unknown_split_exits_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("eval: {splits: [tset]}\n")
    line = fails(2, "eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval",
                 "-c", config)
    assert "['tset']" in line and "train, val, test" in line


# --- report.html -----------------------------------------------------------------------------


class Page(HTMLParser):
    """What a browser would load and show: text, images, section ids, and any external link."""

    def __init__(self, text: str):
        super().__init__()
        self.text, self.images, self.ids, self.external, self.tags = [], [], set(), [], set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "img":
            self.images.append(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith(("data:", "#")):
                self.external.append(value)

    def handle_data(self, data):
        self.text.append(data)

    @property
    def numbers(self) -> set[str]:
        return set(re.findall(r"-?\d+(?:\.\d+)?", " ".join(self.text)))


def numbers_in(value, path=""):
    """(json path, number) for every number in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from numbers_in(v, f"{path}/{k}")
    elif isinstance(value, list):
        for k, v in enumerate(value):
            yield from numbers_in(v, f"{path}/{k}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def test_html_report_shows_every_metric_and_embeds_every_figure(evaluated):
    out, _ = evaluated
    page = Page((out / "report.html").read_text(encoding="utf-8"))
    metrics = json.loads((out / "metrics.json").read_text())

    assert page.external == [] and not page.tags & {"script", "link", "iframe", "object"}
    assert {"data", "metrics", "figures", "robustness", "config"} <= page.ids
    shown = page.numbers
    missing = [(path, v) for path, v in numbers_in(metrics)
               if (f"{v:.3f}" if isinstance(v, float) else str(v)) not in shown]
    assert missing == []

    embedded = {}
    for img in page.images:
        assert img["src"].startswith("data:image/png;base64,")
        embedded[img["alt"]] = base64.b64decode(img["src"].split(",", 1)[1])
    figures = {p.stem: p.read_bytes() for p in (out / "figures").glob("*.png")}
    assert {"confusion_matrix", "roc", "precision_recall", "calibration", "modality_ablation",
            "robustness"} <= set(figures)
    assert figures == {alt: png for alt, png in embedded.items() if alt in figures}
    assert len(embedded) == len(figures)

    robustness = metrics["test"]["robustness"]
    assert set(robustness["ablation"]["removed"]) == {"image", "audio", "text", "value"}
    assert len(robustness["noise"]) == 5
    curve = robustness["noise"]["audio/white_noise"]
    lo, hi = curve["ci"]["accuracy"][-1]  # each point's bootstrap interval, in both reports
    assert f"{curve['accuracy'][-1]:.3f} [{lo:.3f}, {hi:.3f}]" in (out / "report.md").read_text()
    assert f"[{lo:.3f}, {hi:.3f}]</span>" in (out / "report.html").read_text()
    for key in ("roc_auc_macro", "log_loss", "ece", "ci"):
        assert key in metrics["test"]
    text = " ".join(page.text)
    for expected in ("Items per split and class", "Items left out by preprocess",
                     "relative robustness", "Library versions", "matplotlib", "preprocess"):
        assert expected in text


def test_eval_is_byte_identical_when_repeated(pipeline, evaluated, tmp_path):
    out, _ = evaluated
    ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "again", "-q")
    assert file_hashes(tmp_path / "again") == file_hashes(out)


def test_no_robustness(pipeline, tmp_path):
    ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval", "--no-robustness",
       "--seed", "2")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert "robustness" not in metrics["test"]
    assert not (tmp_path / "eval" / "figures" / "robustness.png").exists()
    assert "Robustness was not measured" in (tmp_path / "eval" / "report.html").read_text()
    meta = json.loads((tmp_path / "eval" / "meta.json").read_text())
    assert meta["config"]["robustness"] is False and meta["seed"] == 2


def test_unreachable_chain_skips_robustness_with_a_note(pipeline, tmp_path):
    fused = tmp_path / "fused"
    shutil.copytree(pipeline.fused, fused)
    meta = json.loads((fused / "meta.json").read_text())
    meta["inputs"] = {"gone/feat": "0" * 64}
    (fused / "meta.json").write_text(json.dumps(meta))
    ok("eval", pipeline.model, fused, "-o", tmp_path / "eval", "-q")
    rob = json.loads((tmp_path / "eval" / "metrics.json").read_text())["test"]["robustness"]
    assert rob["ablation"] is None and rob["noise"] is None
    assert any("noise robustness skipped" in n for n in rob["notes"])
    text = " ".join(Page((tmp_path / "eval" / "report.html").read_text()).text)
    assert "the preprocess directory was not reachable" in text
    assert "gone/feat" in text


def test_compare_puts_models_side_by_side(pipeline, tmp_path):
    ok("fuse", pipeline.feat, "-o", tmp_path / "sum", "--method", "sum", "-q")
    ok("train", tmp_path / "sum", "-o", tmp_path / "m_sum", "-q")
    out = tmp_path / "eval"
    ok("eval", pipeline.model, pipeline.fused, "-o", out, "-q",
       "--compare", f"{tmp_path / 'm_sum'}:{tmp_path / 'sum'}")
    comparison = json.loads((out / "comparison.json").read_text())
    assert [c["name"] for c in comparison] == ["model", "m_sum"]
    assert [c["fusion"] for c in comparison] == ["concat", "sum"]
    page = Page((out / "report.html").read_text())
    assert "comparison" in page.ids
    assert {"compare_scores", "compare_roc", "compare_calibration", "compare_ablation",
            "compare_robustness"} <= {img["alt"] for img in page.images}
    # without :FUSED_DIR, the fuse directory the model was trained from
    ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval2", "-q",
       "--compare", tmp_path / "m_sum", "--no-robustness")
    assert json.loads((tmp_path / "eval2" / "comparison.json").read_text())[1]["fused_path"] \
        == str(tmp_path / "sum")


def test_compare_errors(pipeline, tmp_path):
    line = fails(4, "eval", pipeline.model, pipeline.fused, "-o", tmp_path / "e",
                 "--compare", pipeline.fused)
    assert "needs a 'train' one" in line
    line = fails(2, "eval", pipeline.model, pipeline.fused, "-o", tmp_path / "e",
                 "--compare", f"{pipeline.model}:{pipeline.fused}")
    assert "compared with itself" in line


@pytest.mark.parametrize("setting, message", [
    ("noise_levels: [0.5, 1]", "noise_levels"),
    ("bootstrap: -1", "bootstrap"),
    ("robustness: maybe", "robustness"),
])
def test_bad_eval_settings_exit_2(pipeline, tmp_path, setting, message):
    config = tmp_path / "config.yaml"
    config.write_text(f"eval: {{{setting}}}\n")
    line = fails(2, "eval", pipeline.model, pipeline.fused, "-o", tmp_path / "eval",
                 "-c", config)
    assert message in line


def test_report_names_the_model_auto_resolved_to(pipeline, tmp_path):
    ok("eval", pipeline.model, pipeline.fused, "-o", tmp_path / "ev", "--no-robustness")
    report = (tmp_path / "ev" / "report.md").read_text()
    chosen = json.loads((pipeline.model / "meta.json").read_text())["summary"]["model"]
    assert f"- model: `{chosen} (auto)`" in report
    html = (tmp_path / "ev" / "report.html").read_text()
    assert f"{chosen} (auto)" in html
    # the leaderboard of model auto, in both reports
    assert "## Model selection (3-fold cv, macro-F1)" in report
    assert "<section id='selection'><h2>Model selection</h2>" in html

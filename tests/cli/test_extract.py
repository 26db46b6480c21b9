"""mmcli extract: reads a preprocess directory, refuses anything else with exit 4."""

from __future__ import annotations

import json
import shutil

import numpy as np

from .helpers import fails, file_hashes, ok


def test_success_writes_features_per_modality(pipeline, tmp_path):
    out = tmp_path / "feat"
    result = ok("extract", pipeline.pre, "-o", out, "-j", "1")

    blocks = {b["column"]: b for b in json.loads((out / "blocks.json").read_text())}
    assert sorted(blocks) == ["audio", "image", "text", "value"]
    assert [e["name"] for e in blocks["image"]["extractors"]] == ["color_hist", "hog"]
    # short clips of one length: the whole-clip statistics and, as frames(auto), the frames
    assert [e["name"] for e in blocks["audio"]["extractors"]] == ["mfcc", "spectral", "prosody",
                                                                 "frames"]
    assert [(d["name"], d["applied"]) for d in blocks["audio"]["decisions"]] == [("frames", True)]
    assert [e["name"] for e in blocks["text"]["extractors"]] == ["tfidf"]
    for block in blocks.values():
        features = np.load(out / "features" / f"{block['column']}.npy")
        assert features.shape == (36, block["dim"])
        assert features.dtype == np.float32
        assert np.isfinite(features).all()
    assert (out / "state" / "extract" / "extract.json").is_file()
    assert (out / "state" / "preprocess.json").is_file()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stage"] == "extract"
    assert str(pipeline.pre) in meta["inputs"]

    assert "extract: 36 items; feature dimensions: " in result.stderr
    assert f"image {blocks['image']['dim']}" in result.stderr
    assert "audio: frames(auto) added: train clips: median 0.25 s" in result.stderr
    assert "text: tfidf: character n-grams on, no SVD (train texts: median 6 words" \
        in result.stderr
    assert "extract: 144/144 (100%)" in result.stderr  # 36 items x 4 modalities
    assert f"wrote {out}" in result.stderr
    assert result.stdout == ""


def test_the_same_input_gives_the_same_bytes_with_any_number_of_workers(pipeline, tmp_path):
    ok("extract", pipeline.pre, "-o", tmp_path / "feat", "--jobs", "2", "-q")
    # every byte, meta.json included: how a stage ran is not part of its output
    assert file_hashes(tmp_path / "feat") == file_hashes(pipeline.feat)


def test_quiet_prints_nothing(pipeline, tmp_path):
    result = ok("extract", pipeline.pre, "-o", tmp_path / "feat", "-j", "1", "-q")
    assert result.output == ""


def test_wrong_kind_of_directory_exits_4(pipeline, tmp_path):
    line = fails(4, "extract", pipeline.fused, "-o", tmp_path / "feat")
    assert "is a 'fuse' directory" in line
    assert "needs a 'preprocess' one" in line
    assert "mmcli preprocess MANIFEST -o DIR" in line
    assert not (tmp_path / "feat").exists()


def test_a_manifest_instead_of_a_directory_exits_4(pipeline, tmp_path):
    line = fails(4, "extract", pipeline.manifest, "-o", tmp_path / "feat")
    assert "is not a directory" in line
    assert "mmcli preprocess" in line


def test_directory_without_meta_exits_4(pipeline, tmp_path):
    incomplete = tmp_path / "pre"
    shutil.copytree(pipeline.pre, incomplete)
    (incomplete / "meta.json").unlink()
    line = fails(4, "extract", incomplete, "-o", tmp_path / "feat")
    assert "meta.json is missing" in line
    assert "not a complete mmcli stage directory" in line


def test_unknown_schema_version_exits_4(pipeline, tmp_path):
    future = tmp_path / "pre"
    shutil.copytree(pipeline.pre, future)
    meta = json.loads((future / "meta.json").read_text())
    meta["schema_version"] = 99
    (future / "meta.json").write_text(json.dumps(meta))
    line = fails(4, "extract", future, "-o", tmp_path / "feat")
    assert "schema version 99" in line
    assert "mmcli preprocess" in line


def test_modified_artifact_exits_4(pipeline, tmp_path):
    tampered = tmp_path / "pre"
    shutil.copytree(pipeline.pre, tampered)
    values = np.load(tampered / "data" / "value.npy")
    values[0] += 1
    np.save(tampered / "data" / "value.npy", values)
    line = fails(4, "extract", tampered, "-o", tmp_path / "feat")
    assert "value.npy was modified" in line
    assert "hash mismatch" in line


def test_missing_artifact_file_exits_4(pipeline, tmp_path):
    broken = tmp_path / "pre"
    shutil.copytree(pipeline.pre, broken)
    (broken / "items.jsonl").unlink()
    line = fails(4, "extract", broken, "-o", tmp_path / "feat")
    assert "items.jsonl is missing" in line


def test_config_chooses_extractors_and_flag_overrides_seed(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("seed: 3\nextract:\n  text: [tfidf]\n  image: [color_hist]\n"
                      "  params: {color_hist: {bins: 4}}\n")
    out = tmp_path / "feat"
    ok("extract", pipeline.pre, "-o", out, "-c", config, "--seed", "9", "-j", "1")
    blocks = {b["column"]: b for b in json.loads((out / "blocks.json").read_text())}
    assert [e["name"] for e in blocks["text"]["extractors"]] == ["tfidf"]
    assert blocks["image"]["extractors"] == [{"name": "color_hist", "dim": 12}]
    assert json.loads((out / "meta.json").read_text())["seed"] == 9


def test_unknown_extractor_exits_2_with_a_suggestion(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("extract: {text: [tfidff]}\n")
    line = fails(2, "extract", pipeline.pre, "-o", tmp_path / "feat", "-c", config)
    assert "unknown extractor 'tfidff'" in line
    assert "did you mean 'tfidf'?" in line


def test_bad_extractor_parameters_exit_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    for params, fragment in [
        ("{tfidf: {max_featurs: 10}}", "unknown parameter 'max_featurs'"),
        ("{tfidf: {max_features: many}}", "'max_features' parameter of extractor 'tfidf'"),
        ("{tfidf: {max_features: 0}}", "max_features"),
        ("{color_hist: {space: lab}}", "'lab'"),
    ]:
        config.write_text(f"extract: {{params: {params}}}\n")
        line = fails(2, "extract", pipeline.pre, "-o", tmp_path / "feat", "-j", "1",
                     "-c", config)
        assert fragment in line
    assert not (tmp_path / "feat").exists()


def test_label_different_from_preprocess_exits_3(pipeline, tmp_path):
    line = fails(3, "extract", pipeline.pre, "-o", tmp_path / "feat", "--label", "kind")
    assert "--label 'kind' differs from the label column 'label'" in line


def test_list_prints_every_extractor_without_input(tmp_path):
    from mmcli.extractors import EXTRACTORS

    result = ok("extract", "--list")
    for name in EXTRACTORS.names():
        assert f"\n  {name}\n" in result.stdout
    assert "dimension: grid * grid * (points + 2)" in result.stdout
    assert result.stderr == ""


def test_show_config_prints_yaml_a_config_file_accepts(pipeline, tmp_path):
    result = ok("extract", "--show-config", "lbp")
    assert "extract:\n  image: [lbp]\n  params:\n    lbp:\n      points: 8" in result.stdout
    config = tmp_path / "lbp.yaml"
    config.write_text(result.stdout.replace("grid: 2", "grid: 1"))
    out = tmp_path / "feat"
    ok("extract", pipeline.pre, "-o", out, "-c", config, "-j", "1", "-q")
    blocks = {b["column"]: b for b in json.loads((out / "blocks.json").read_text())}
    assert blocks["image"]["extractors"] == [{"name": "lbp", "dim": 10}]


def test_show_config_unknown_name_exits_2():
    line = fails(2, "extract", "--show-config", "hogg")
    assert "unknown extractor 'hogg'" in line and "did you mean 'hog'?" in line


def test_bad_parameters_of_new_extractors_exit_2(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    for section, fragment in [
        ("{image: [hog], params: {hog: {pixels_per_cell: 0}}}", "'pixels_per_cell' parameter"),
        ("{image: [cnn]}", "extractor 'cnn' needs a model file"),
        ("{image: [cnn], params: {cnn: {model: nope.pt}}}", "cnn model file nope.pt does not"),
        ("{audio: [spectral], params: {spectral: {stats: [mode]}}}", "'stats' parameter"),
        ("{audio: [frames], params: {frames: {mode: crop}}}", "'mode' parameter"),
        ("{text: [fasttext], params: {fasttext: {min_n: 4, max_n: 3}}}", "'max_n' parameter"),
        ("{text: [word2vec], params: {word2vec: {pretrained: none.vec}}}", "none.vec does not"),
        ("{params: {numeric: {scaling: log}}}", "'scaling' parameter of extractor 'numeric'"),
    ]:
        config.write_text(f"extract: {section}\n")
        line = fails(2, "extract", pipeline.pre, "-o", tmp_path / "feat", "-j", "1",
                     "-c", config)
        assert fragment in line
    assert not (tmp_path / "feat").exists()


def test_unreadable_cnn_model_exits_2(pipeline, tmp_path):
    model = tmp_path / "model.pt"
    model.write_text("this is text, not TorchScript")
    config = tmp_path / "config.yaml"
    config.write_text(f"extract: {{image: [cnn], params: {{cnn: {{model: '{model}'}}}}}}\n")
    line = fails(2, "extract", pipeline.pre, "-o", tmp_path / "feat", "-c", config)
    assert f"cnn model file {model} cannot be loaded" in line
    assert "torch.jit.save" in line


def test_a_text_column_without_words_in_train_exits_3_naming_it(tmp_path):
    """Every train text punctuation: tfidf's vocabulary is empty; this used to fail saving its
    state (AttributeError: no svd_), an internal error with exit 1."""
    from .helpers import write_rows

    rows = [{"id": f"r{k}", "notes": ("...", "!!", "?!")[k % 3], "value": str(k % 3),
             "label": "ab"[k % 2], "split": "train" if k < 8 else "test"} for k in range(12)]
    rows[9]["notes"] = "words appear only in test"
    manifest = write_rows(tmp_path / "m.csv", rows)
    config = tmp_path / "config.yaml"
    config.write_text("preprocess: {columns: {notes: text, value: numeric}}\n")
    ok("preprocess", manifest, "-o", tmp_path / "pre", "-c", config, "-j", "1", "-q")
    line = fails(3, "extract", tmp_path / "pre", "-o", tmp_path / "feat", "-j", "1")
    assert "text column 'notes' has no words in its 8 train texts" in line
    assert "'notes: ignore' under preprocess.columns" in line
    assert not (tmp_path / "feat").exists()


def test_a_misspelled_extractor_under_params_exits_2_with_a_hint(pipeline, tmp_path):
    """``params: {tfid: ...}`` used to be ignored silently: tfidf ran with its defaults."""
    config = tmp_path / "config.yaml"
    config.write_text("extract: {params: {tfid: {max_features: 10}}}\n")
    line = fails(2, "extract", pipeline.pre, "-o", tmp_path / "feat", "-c", config)
    assert "unknown extractor 'tfid' in extract.params" in line
    assert "did you mean 'tfidf'?" in line
    assert not (tmp_path / "feat").exists()
    # the parameters of every entry are checked, listed or not
    config.write_text("extract: {params: {word2vec: {vector_sise: 10}}}\n")
    line = fails(2, "extract", pipeline.pre, "-o", tmp_path / "feat", "-c", config)
    assert "unknown parameter 'vector_sise' for extractor 'word2vec'" in line


def test_parameters_of_an_unlisted_extractor_are_a_warning(pipeline, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("extract: {params: {word2vec: {vector_size: 10}}}\n")
    result = ok("extract", pipeline.pre, "-o", tmp_path / "feat", "-c", config, "-j", "1")
    assert "warning: extract.params.word2vec is not used: no extract list names 'word2vec' " \
           "(add it to extract.text, or remove its parameters)" in result.stderr

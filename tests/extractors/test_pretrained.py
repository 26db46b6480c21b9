"""Pretrained backbones (hf_*, sentence_transformers, clip_*, timm) on tiny random models:
shapes, pooling, determinism across runs and chunkings, the embedding cache, local-cache-only
resolution, the pickle refusal and the sha256 check when a fitted state is reloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mmcli.dataset import AudioClips
from mmcli.errors import ArtifactError, UsageError
from mmcli.extractors import EXTRACTORS, build_extractor

TEXTS = ["the red fire apple", "sky", "a small photo of some green leaf frog here",
         "ice sea blue", "", "brick brick brick grass", "one thing"]


def images(n: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 40, 40, 3), dtype=np.uint8)


def clips(lengths=(4000, 4000, 2000, 6000, 4000, 2000, 3000), seed: int = 0) -> AudioClips:
    rng = np.random.default_rng(seed)
    return AudioClips([rng.normal(0, 0.1, n).astype(np.float32) for n in lengths], 16000)


# name, model directory, extra parameters, data maker, output dimension
CASES = {
    "hf_text": ("bert", {}, lambda: TEXTS, 32),
    "hf_text/clip": ("hf_clip", {}, lambda: TEXTS, 16),
    "hf_image": ("vit", {"pooling": "cls"}, images, 32),
    "hf_image/clip": ("hf_clip", {}, images, 16),
    "hf_audio": ("wav2vec2", {"pooling": "max"}, clips, 32),
    "sentence_transformers": ("sentence", {"normalize": True}, lambda: TEXTS, 32),
    "clip_image": ("open_clip", {}, images, 16),
    "clip_text": ("open_clip", {}, lambda: TEXTS, 16),
    "timm": ("timm", {}, images, 64),
}


def make(case: str, tiny_models, **params):
    name = case.split("/")[0]
    model, extra, _, _ = CASES[case]
    kind = EXTRACTORS.tags(name)["kind"]
    return build_extractor(name, kind, {"model": str(tiny_models[model]), **extra, **params})


def subset(data, rows):
    if isinstance(data, AudioClips):
        return AudioClips([data.clips[k] for k in rows], data.sample_rate)
    if isinstance(data, np.ndarray):
        return data[rows]
    return [data[k] for k in rows]


@pytest.mark.parametrize("case", sorted(CASES))
def test_shapes_and_same_rows_in_any_chunking(case, tiny_models, embedding_cache):
    data = CASES[case][2]()
    extractor = make(case, tiny_models, cache=False, batch_size=3).fit(None)
    assert extractor.dim_ == CASES[case][3]
    full = extractor.transform(data)
    assert full.shape == (len(data), CASES[case][3]) and full.dtype == np.float32
    assert np.isfinite(full).all() and np.abs(full).sum() > 0
    again = make(case, tiny_models, cache=False, batch_size=2).fit(None)
    chunked = np.vstack([again.transform(subset(data, rows))
                         for rows in ([4, 1], [0], [2, 3, 5, 6])])
    # byte-identical, whatever the batch size, the chunks and the order
    assert chunked.tobytes() == full[[4, 1, 0, 2, 3, 5, 6]].tobytes()
    if case == "sentence_transformers":
        assert np.allclose(np.linalg.norm(full, axis=1), 1, atol=1e-5)


def test_text_pooling_and_layer_follow_the_hidden_states(tiny_models, embedding_cache):
    import torch
    from transformers import AutoModel, AutoTokenizer

    directory = str(tiny_models["bert"])
    tok, model = AutoTokenizer.from_pretrained(directory), AutoModel.from_pretrained(directory)
    enc = tok(TEXTS[2], return_tensors="pt")
    with torch.no_grad():
        states = model(**enc, output_hidden_states=True).hidden_states
    rows = {}
    for pooling, layer in (("mean", -1), ("cls", -1), ("max", -1), ("mean", -2)):
        e = make("hf_text", tiny_models, pooling=pooling, layer=layer, cache=False).fit(None)
        rows[pooling, layer] = e.transform([TEXTS[2]])[0]
    last = states[-1][0].numpy()
    assert np.allclose(rows["mean", -1], last.mean(0), atol=1e-5)
    assert np.allclose(rows["cls", -1], last[0], atol=1e-5)
    assert np.allclose(rows["max", -1], last.max(0), atol=1e-5)
    assert np.allclose(rows["mean", -2], states[-2][0].numpy().mean(0), atol=1e-5)
    # padding to a bucket (other texts in the batch) leaves the masked pooling unchanged
    both = make("hf_text", tiny_models, cache=False, pooling="max").fit(None)
    assert np.allclose(both.transform([TEXTS[2], TEXTS[1]])[0], rows["max", -1], atol=1e-5)


def test_bad_parameters_are_one_line(tiny_models):
    with pytest.raises(UsageError, match="needs a model"):
        build_extractor("hf_text", "text", {})
    with pytest.raises(UsageError, match="'pooling' parameter of extractor 'hf_audio'"):
        build_extractor("hf_audio", "audio", {"model": "x", "pooling": "cls"})
    with pytest.raises(UsageError, match="is for image columns, not text"):
        build_extractor("clip_image", "text", {"model": "x"})


def cache_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.keys.npy")) if root.exists() else []


def test_cache_second_run_computes_nothing_and_incremental_only_new(tiny_models,
                                                                    embedding_cache):
    data = images(7)
    first = make("clip_image", tiny_models).fit(None)
    rows = first.transform(data)
    assert first.computed_ == 7 and len(cache_files(embedding_cache)) == 1

    second = make("clip_image", tiny_models).fit(None)
    assert second.transform(data).tobytes() == rows.tobytes()
    assert (second.computed_, second.cached_) == (0, 7)
    assert len(cache_files(embedding_cache)) == 1

    more = np.concatenate([data, images(3, seed=1)])
    third = make("clip_image", tiny_models).fit(None)
    grown = third.transform(more)
    assert (third.computed_, third.cached_) == (3, 7)
    full = make("clip_image", tiny_models, cache=False).fit(None).transform(more)
    assert grown.tobytes() == full.tobytes()

    # an output-affecting parameter is another namespace (the batch size too: it is the
    # shape of every forward pass); the text tower another too
    make("clip_image", tiny_models, normalize=False).fit(None).transform(data)
    make("clip_image", tiny_models, batch_size=4).fit(None).transform(data)
    make("clip_text", tiny_models).fit(None).transform(TEXTS)
    assert len({p.parent for p in cache_files(embedding_cache)}) == 4


def test_a_damaged_cache_file_is_recomputed(tiny_models, embedding_cache):
    e = make("hf_text", tiny_models).fit(None)
    rows = e.transform(TEXTS)
    for path in embedding_cache.rglob("*.vectors.npy"):
        path.write_bytes(b"not an array")
    again = make("hf_text", tiny_models).fit(None)
    assert again.transform(TEXTS).tobytes() == rows.tobytes()
    assert again.computed_ == len(TEXTS)


def fake_hub_cache(root: Path, repo: str, source: Path) -> Path:
    """The Hugging Face cache layout: models--org--name/{refs/main, snapshots/<rev>/...}."""
    folder = root / ("models--" + repo.replace("/", "--"))
    rev = "0" * 40
    shutil.copytree(source, folder / "snapshots" / rev)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(rev)
    return folder / "snapshots" / rev


def test_hub_id_resolves_from_the_local_cache_only(tiny_models, tmp_path, monkeypatch,
                                                   embedding_cache):
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    snapshot = fake_hub_cache(hub, "tiny/bert", tiny_models["bert"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    e = build_extractor("hf_text", "text", {"model": "tiny/bert"}).fit(None)
    assert e.model_dir_ == snapshot
    direct = make("hf_text", tiny_models).fit(None)
    assert e.transform(TEXTS).tobytes() == direct.transform(TEXTS).tobytes()

    with pytest.raises(UsageError) as info:
        build_extractor("hf_text", "text", {"model": "tiny/absent"}).fit(None)
    message = str(info.value)
    assert "'tiny/absent' is not in the local Hugging Face cache" in message
    assert str(hub) in message and "hf download tiny/absent" in message
    assert "allow_download: true" in message and "\n" not in message

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="HF_HUB_OFFLINE is set"):
        build_extractor("hf_text", "text", {"model": "tiny/absent",
                                            "allow_download": True}).fit(None)
    with pytest.raises(UsageError, match="model directory ./nowhere does not exist"):
        build_extractor("hf_text", "text", {"model": "./nowhere"}).fit(None)


def test_pickle_weights_are_refused_unless_trusted(tiny_models, tmp_path, embedding_cache):
    import torch
    from safetensors.torch import load_file

    pickled = shutil.copytree(tiny_models["bert"], tmp_path / "bert_bin")
    state = load_file(str(pickled / "model.safetensors"))
    (pickled / "model.safetensors").unlink()
    torch.save(state, pickled / "pytorch_model.bin")
    with pytest.raises(UsageError) as info:
        build_extractor("hf_text", "text", {"model": str(pickled)}).fit(None)
    assert "pytorch_model.bin, a pickle" in str(info.value)
    assert "trust_pickle: true" in str(info.value)
    trusted = build_extractor("hf_text", "text", {"model": str(pickled), "trust_pickle": True})
    rows = trusted.fit(None).transform(TEXTS)
    assert np.allclose(rows, make("hf_text", tiny_models).fit(None).transform(TEXTS), atol=1e-6)

    # beside a safetensors file a pickle is ignored (neither loaded nor hashed)
    both = shutil.copytree(tiny_models["bert"], tmp_path / "bert_both")
    shutil.copy(pickled / "pytorch_model.bin", both)
    e = build_extractor("hf_text", "text", {"model": str(both)}).fit(None)
    assert "pytorch_model.bin" not in e.files_sha256_ and "model.safetensors" in e.files_sha256_


def reload(extractor):
    state, arrays = extractor.get_state()
    return EXTRACTORS.get(state["name"]).from_state(state, arrays)


def test_reloaded_state_checks_the_model_files(tiny_models, tmp_path, embedding_cache):
    model = shutil.copytree(tiny_models["timm"], tmp_path / "timm")
    e = build_extractor("timm", "image", {"model": str(model), "cache": False}).fit(None)
    state, _ = e.get_state()
    assert set(state["fitted"]["files"]) == {"config.json", "model.safetensors"}
    assert state["fitted"]["directory"] == str(model)
    assert reload(e).transform(images()).tobytes() == e.transform(images()).tobytes()

    weights = model / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-4] + b"\0\0\0\0")
    with pytest.raises(ArtifactError, match=r"model.safetensors changed since extract"):
        reload(e)
    weights.write_bytes(original)
    (model / "config.json").unlink()
    with pytest.raises(ArtifactError, match="lacks config.json"):
        reload(e)
    shutil.rmtree(model)
    with pytest.raises(ArtifactError, match=r"model '.*timm' is gone"):
        reload(e)


def test_shared_model_is_loaded_once(tiny_models, embedding_cache):
    from mmcli.extractors import pretrained

    image = make("clip_image", tiny_models).fit(None)
    text = make("clip_text", tiny_models).fit(None)
    assert image._net_() is text._net_()
    assert len([k for k in pretrained._BACKBONES if k[0] == "open_clip"]) == 1


def test_device_flag_sets_every_extractor_left_at_auto():
    from mmcli.config import ExtractConfig
    from mmcli.stages.extract import build_plan

    config = ExtractConfig(device="cpu", text=["hf_text"], image=["timm", "cnn"], params={
        "hf_text": {"model": "m"}, "timm": {"model": "m", "device": "cuda"},
        "cnn": {"model": "m.pt"}})
    plan, _ = build_plan(config, {"t": "text", "i": "image"})
    assert [e.params.device for e in plan["t"] + plan["i"]] == ["cpu", "cuda", "cpu"]
    with pytest.raises(UsageError, match="'extract.device' must be auto, cpu or cuda"):
        build_plan(ExtractConfig(device="gpu"), {"t": "text"})

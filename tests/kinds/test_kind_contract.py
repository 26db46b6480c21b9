"""The modality-kind contract, checked on every kind the registry holds (a new kind module is
picked up here without editing this file)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mmcli.config import ExtractConfig
from mmcli.dataset import PreprocessedData
from mmcli.kinds import KINDS, detect_kind, get_kind, kind_names, sniff_media
from mmcli.models.augment import AugmentParams
from mmcli.models.encoders import ENCODERS, FITS
from mmcli.stages.preprocess import PreprocessState, _append, _open_arrays

NAMES = kind_names()
SPEC = {k: v for k, v in PreprocessState(label="label", columns={}, image_size=[6, 4],
                                         sample_rate=8000, max_audio_seconds=1.0,
                                         lowercase=True, numeric_scaling="standard"
                                         ).__dict__.items()}


def test_the_built_in_kinds_are_registered_in_pipeline_order():
    assert NAMES[:2] == ["image", "audio"]
    assert {"image", "audio", "text", "numeric", "categorical"} <= set(NAMES)
    assert NAMES.index("text") < NAMES.index("numeric") < NAMES.index("categorical")


@pytest.mark.parametrize("name", NAMES)
def test_each_kind_has_its_extract_list_whose_default_builds(name):
    kind = get_kind(name)
    assert kind.name == name and isinstance(kind, KINDS.get(name))
    assert getattr(ExtractConfig(), name) == list(kind.default_extractors)
    assert kind.default_extractors
    for entry in kind.default_extractors:
        kind.build_extractor(entry.removesuffix("(auto)"), None)


@pytest.mark.parametrize("name", NAMES)
def test_detection_claims_nothing_from_an_empty_column_but_the_fallback(name):
    kind = get_kind(name)
    assert kind.detector().claims(0) is kind.fallback
    if kind.extensions:
        cells = [f"media/x{k}{ext}" for k, ext in enumerate(sorted(kind.extensions))]
        assert detect_kind(cells) == name
        assert detect_kind([c.upper() for c in cells]) == name


@pytest.mark.parametrize("name", NAMES)
def test_encoded_bytes_sniff_as_their_own_kind_with_a_known_suffix(name):
    kind = get_kind(name)
    assert bool(kind.magic) <= kind.media
    for head, tag, suffix in kind.magic:
        data = head.ljust(8, b"\0") + (tag or b"") + b"\0" * 16
        assert sniff_media(data) == (name, suffix)
        assert suffix in kind.extensions


@pytest.mark.parametrize("name", NAMES)
def test_missing_cells_store_and_read_back_like_decoded_values(name, tmp_path):
    kind = get_kind(name)
    assert kind.is_missing("") and kind.is_missing("   ")
    assert kind.stored in ("arrays", "numbers", "values")
    assert bool(kind.arrays(SPEC)) == kind.media == (kind.stored == "arrays")
    data = _stored(tmp_path, "c", name, [kind.missing_value(SPEC)] * 3)
    batch = kind.read(data, "c", slice(0, 3))
    assert len(batch) == 3
    assert len(kind.read(data, "c", np.array([2, 0]))) == 2


@pytest.mark.parametrize("name", NAMES)
def test_every_perturbation_is_described_and_keeps_the_batch_shape(name, tmp_path):
    kind = get_kind(name)
    assert kind.perturbations, f"{name} has no robustness perturbation"
    data = _stored(tmp_path, "c", name, [kind.missing_value(SPEC)] * 3)
    batch = kind.read(data, "c", slice(0, 3))
    for perturbation, description in kind.perturbations.items():
        assert "s" in description
        noisy = kind.perturb(perturbation, batch, 0.5, np.random.default_rng(0))
        assert type(noisy) is type(batch) and len(noisy) == len(batch)
    with pytest.raises(ValueError, match="no perturbation"):
        kind.perturb("no_such_noise", batch, 0.5, np.random.default_rng(0))


@pytest.mark.parametrize("name", NAMES)
def test_layout_encoder_and_augmentations_fit_together(name):
    kind = get_kind(name)
    assert kind.encoder in ENCODERS
    if kind.layout is None:
        assert kind.encoder == "mlp" and not kind.augmentations
    else:
        assert kind.encoder == "mlp" or kind.layout in FITS[kind.encoder]
        assert kind.layout_what and kind.build_extractor(kind.layout_extractor, None)
    fields = {f.name for f in dataclasses.fields(AugmentParams)}
    assert set(kind.augmentations) <= fields


def test_layouts_and_augmentations_belong_to_one_kind_each():
    layouts = [get_kind(n).layout for n in NAMES if get_kind(n).layout]
    keys = [k for n in NAMES for k in get_kind(n).augmentations]
    assert len(layouts) == len(set(layouts)) and len(keys) == len(set(keys))
    assert set(keys) == {f.name for f in dataclasses.fields(AugmentParams)}


def _stored(directory, col: str, name: str, values: list) -> PreprocessedData:
    """``values`` of one column written the way preprocess writes them, opened to read."""
    kind = get_kind(name)
    spec = {**SPEC, "columns": {col: name}}
    (directory / "data").mkdir()
    items = [{"id": str(k), "split": "test", "label": "a", "values": {}} for k in values]
    if kind.stored == "arrays":
        appenders, offsets = _open_arrays(spec, directory / "data", [])
        lengths = {n: [] for n in offsets}
        for value in values:
            _append(spec, col, value, appenders, lengths)
        for appender in appenders.values():
            appender.close()
        for n, ls in lengths.items():
            np.save(directory / "data" / f"{n}.offsets.npy", np.cumsum([0, *ls]))
    elif kind.stored == "numbers":
        np.save(directory / "data" / f"{col}.npy", np.asarray(values, dtype=np.float32))
    else:
        for item, value in zip(items, values):
            item["values"][col] = value
    (directory / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    return PreprocessedData(directory, {col: name}, SPEC["sample_rate"])

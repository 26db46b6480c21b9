"""A column kind mmcli does not know (a newer version's, or an edited state file) is refused
with one line wherever it shows up, never read as another kind."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from mmcli.dataset import PreprocessedData
from mmcli.errors import ArtifactError, MmcliError
from mmcli.fitted import FittedChain
from mmcli.report import robustness as R
from mmcli.stages.preprocess import PreprocessState


def _items(directory, n: int = 2) -> None:
    (directory / "items.jsonl").write_text("".join(
        json.dumps({"id": str(k), "split": "test", "label": "a", "values": {"t": "two words"}})
        + "\n" for k in range(n)))


def test_reading_an_unknown_kind_is_refused_not_read_as_text(tmp_path):
    _items(tmp_path)
    data = PreprocessedData(tmp_path, {"t": "hologram"}, 16000)
    with pytest.raises(MmcliError, match="unknown modality kind 'hologram'"):
        data.column("t", slice(0, 2))


def test_a_state_file_with_an_unknown_kind_is_an_artifact_error(tmp_path):
    state = PreprocessState(label="label", columns={"t": "hologram"}, image_size=[8, 8],
                            sample_rate=16000, max_audio_seconds=1.0, lowercase=True,
                            numeric_scaling="standard")
    state.save(tmp_path)
    with pytest.raises(ArtifactError, match="column 't' has kind 'hologram'") as err:
        PreprocessState.load(tmp_path)
    assert "re-run preprocess" in err.value.hint


def test_noise_robustness_on_an_unknown_kind_is_an_mmcli_error_not_a_key_error(tmp_path):
    _items(tmp_path)

    class Constant:
        def transform(self, values):
            return np.ones((len(values), 1), dtype=np.float32)

    class Model:
        def predict_proba(self, X):
            return np.ones((len(X), 1))

    fitted = FittedChain(None, SimpleNamespace(columns={"t": "hologram"}, sample_rate=16000),
                         {"t": [Constant()]}, SimpleNamespace(transform=lambda b: b[0]), ["t"],
                         Model(), ["a"])
    with pytest.raises(MmcliError, match="hologram"):
        R.noise_robustness(fitted, tmp_path, [0.0, 1.0], seed=0)

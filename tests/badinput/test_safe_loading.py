"""Safe loading: no pickle anywhere, a planted malicious pickle is refused (and never run),
and a modified artifact is detected and named."""

from __future__ import annotations

import ast
import builtins
import json
import pickle
import shutil
from pathlib import Path

import pytest
from cli.helpers import fails, ok

ROOT = Path(__file__).resolve().parents[2]
#: the code that loads artifacts: the package, and the benchmarks that drive it
SOURCES = [ROOT / "mmcli", ROOT / "bench"]


class Evil:
    """Unpickling this creates ``marker``: proof that pickled code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(Evil(marker))


def test_the_evil_pickle_does_run_when_unpickled(tmp_path):
    """The control: the payload used below really executes under pickle.loads."""
    marker = tmp_path / "ran"
    pickle.loads(evil_pickle(marker)).close()
    assert marker.exists()


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


def test_no_pickle_loading_anywhere_in_the_package():
    """No module imports a pickle-based loader; torch.load always has weights_only=True;
    np.load never allow_pickle=True. (torch.jit.load reads TorchScript, not pickled code.)"""
    banned_modules = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve",
                      "marshal"}
    problems = []
    paths = sorted(p for source in SOURCES if source.is_dir() for p in source.rglob("*.py"))
    assert len(paths) > 20
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            if names & banned_modules:
                problems.append(f"{where}:{node.lineno} imports {names & banned_modules}")
        for func, call in _calls(tree):
            keywords = {k.arg: k.value for k in call.keywords}
            if func.endswith("read_pickle"):
                problems.append(f"{where}:{call.lineno} calls {func}")
            if func == "torch.load" or func.endswith(".torch.load"):
                flag = keywords.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(f"{where}:{call.lineno} torch.load without weights_only=True")
            flag = keywords.get("allow_pickle")
            if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                problems.append(f"{where}:{call.lineno} {func}(allow_pickle=...) not False")
    assert not problems, "\n".join(problems)


def rehash(stage: Path, rel: str) -> None:
    """What an attacker who also edits meta.json does: make the recorded hash match."""
    from mmcli.artifacts import sha256_file

    meta_path = stage / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["outputs"][rel] = sha256_file(stage / rel)
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


@pytest.fixture
def model_copy(pipeline, tmp_path) -> Path:
    return Path(shutil.copytree(pipeline.model, tmp_path / "model"))


@pytest.mark.parametrize("rel", ["state/model/model.npz", "state/model/model.json"])
@pytest.mark.parametrize("meta_too", [False, True], ids=["file-only", "meta-rewritten"])
def test_malicious_pickle_as_the_model_is_refused_not_run(pipeline, model_copy, tmp_path, rel,
                                                          meta_too):
    marker = tmp_path / "pwned"
    target = model_copy / rel
    if not target.exists():
        pytest.skip(f"this model has no {rel}")
    target.write_bytes(evil_pickle(marker))
    if meta_too:
        rehash(model_copy, rel)
    line = fails(4, "predict", model_copy, pipeline.manifest, "-o", tmp_path / "pred")
    assert rel.rsplit("/", 1)[-1] in line
    assert ("modified" in line) != meta_too  # hash mismatch, or refused by the loader
    assert not marker.exists(), "the pickled payload ran"
    assert not (tmp_path / "pred").exists()


def test_malicious_pickle_as_preprocessed_data_is_refused_not_run(pipeline, tmp_path):
    marker = tmp_path / "pwned"
    pre = Path(shutil.copytree(pipeline.pre, tmp_path / "pre"))
    (pre / "data" / "image.npy").write_bytes(evil_pickle(marker))
    rehash(pre, "data/image.npy")
    line = fails(4, "extract", pre, "-o", tmp_path / "feat", "-j", "1")
    assert "image.npy" in line
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore")
def test_torch_load_with_weights_only_refuses_a_planted_pt(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    (tmp_path / "model.pt").write_bytes(evil_pickle(marker))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "model.pt", weights_only=True)
    assert not marker.exists()


@pytest.mark.parametrize("stage, rel, command", [
    ("pre", "items.jsonl", "extract"),
    ("fused", "fused.npy", "train"),
    ("model", "state/model/model.json", "predict"),
])
def test_a_modified_artifact_is_named_exit_4(pipeline, tmp_path, stage, rel, command):
    copy = Path(shutil.copytree(getattr(pipeline, stage), tmp_path / stage))
    with open(copy / rel, "ab") as f:
        f.write(b" ")
    args = {"extract": [copy], "train": [copy], "predict": [copy, pipeline.manifest]}[command]
    line = fails(4, command, *args, "-o", tmp_path / "out")
    assert str(copy / rel) in line and "modified" in line
    assert not (tmp_path / "out").exists()


def test_the_untampered_copy_still_works(pipeline, model_copy, tmp_path):
    ok("predict", model_copy, pipeline.manifest, "-o", tmp_path / "pred", "-j", "1")

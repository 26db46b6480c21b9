"""What every pretrained-backbone extractor shares (``hf_*``, ``sentence_transformers``,
``clip_*``, ``timm``): finding the model on disk without the network, refusing pickled
weights, recording and checking the model files' sha256, device and precision, batching
with padding that depends on the item alone, and the embedding cache.

The model is never copied into the extract state (multi-GB weights in every model
directory would not be sensible): the state records the configured ``model`` (a directory
or a hub id), the directory it was found in, and the sha256 of every file used. ``predict``
finds it again the same way (the recorded directory first, else the id in the local cache)
and refuses, in one line, weights that changed or went away.

Embeddings are cached under ``$MMCLI_CACHE_DIR/embeddings`` (default
``~/.cache/mmcli/embeddings``), one folder per (model files' sha256, output-affecting
parameters, device type, precision), each row keyed by the sha256 of the item's
preprocessed content: an item once embedded is read back, never recomputed, in any later
run, output directory or ``predict``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mmcli.errors import ArtifactError, UsageError
from mmcli.extractors.base import Extractor
from mmcli.parallel import worker_state

log = logging.getLogger(__name__)

#: weight files that are pickles (loading one can run code)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: folders of a model directory that are not the model (download bookkeeping, VCS)
_SKIP_DIRS = {".git", ".cache", ".huggingface", "__pycache__"}
#: bumped when a change to the embedding code changes its numbers (a new cache namespace)
CACHE_VERSION = 1


def ensure_torchvision() -> None:
    """Import torchvision (timm, open_clip and transformers' image processors need it).

    The PyPI torchvision wheel is built against a CUDA torch; next to a CPU-only torch its C
    operators do not load, and torchvision 0.28 then fails at import registering a fake
    kernel for ``torchvision::nms``. Declaring the two schemas it registers against lets the
    pure-Python part (transforms, which is all these libraries use) import; the C operators
    stay unavailable, as torchvision itself reports."""
    if "torchvision" in sys.modules:
        return
    try:
        import torchvision  # noqa: F401
    except ModuleNotFoundError:
        return
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        import torch

        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(lib)
        import torchvision  # noqa: F401


_KEEP: list = []  # the schema library above must outlive the call


def require(module: str, extra: str, name: str):
    """Import an optional dependency, or say which extra installs it."""
    import importlib

    ensure_torchvision()
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"extractor {name!r} needs the {module.split('.')[0]!r} package "
                         f"({exc})", f"pip install 'mmcli[{extra}]'") from None


# --- finding the model ---------------------------------------------------------------------

def hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


#: what a download leaves out: other frameworks' weights, and pickles unless trusted
_NOT_DOWNLOADED = ["*.h5", "*.msgpack", "*.onnx", "*.ot", "*.tflite", "onnx/*", "openvino/*",
                   "*.gguf"]


def resolve_model(model: str, allow_download: bool, name: str,
                  trust_pickle: bool = False) -> Path:
    """The local directory of ``model``: the directory itself, or a hub id found in the
    local Hugging Face cache (downloaded only with ``allow_download`` and the hub online)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise UsageError(f"{name} model {model} is a file, not a model directory",
                         f"set extract.params.{name}.model to the directory holding it")
    looks_local = model.startswith((".", "/", "~")) or os.sep + os.sep in model \
        or model.count("/") > 1
    if looks_local:
        raise UsageError(f"{name} model directory {model} does not exist",
                         f"fix extract.params.{name}.model")
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

    offline = _hub_offline()
    quiet = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        ignore = _NOT_DOWNLOADED + ([] if trust_pickle else
                                    [f"*{suffix}" for suffix in PICKLE_SUFFIXES])
        return Path(snapshot_download(model, local_files_only=offline or not allow_download,
                                      ignore_patterns=ignore))
    except Exception as exc:  # noqa: BLE001 - not cached, offline, unknown repo, network
        if allow_download and not offline:
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else \
                type(exc).__name__
            raise UsageError(f"{name} model {model!r} could not be downloaded: {reason}",
                             "check the id and the connection, or give a local directory") \
                from None
        why = " (HF_HUB_OFFLINE is set)" if offline and allow_download else ""
        raise UsageError(
            f"{name} model {model!r} is not in the local Hugging Face cache {hub_cache()}"
            f"{why}",
            f"on a connected machine run `hf download {model}` and copy its cache folder "
            f"(~/.cache/huggingface/hub) here (or point HF_HOME at the copy), give "
            f"extract.params.{name}.model a local directory, or set allow_download: true "
            "(docs/extractors.md)") from None
    finally:
        if not quiet:
            from huggingface_hub.utils import enable_progress_bars

            enable_progress_bars()


def _hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def model_files(directory: Path) -> list[Path]:
    """The files of a model directory (following links, as the hub cache's snapshots are
    links into its blobs), sorted, bookkeeping folders left out."""
    out = []
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out


def check_weights(directory: Path, trust_pickle: bool, name: str) -> list[Path]:
    """The files the model is loaded from: a pickle weight file is left out when a
    safetensors file sits beside it (the libraries then read the safetensors), and refused
    without ``trust_pickle`` when it is the only weights of its folder."""
    files = model_files(directory)
    safe_dirs = {f.parent for f in files if f.suffix == ".safetensors"}
    used = []
    for f in files:
        if f.suffix in PICKLE_SUFFIXES and f.stat().st_size > 0:
            if f.parent in safe_dirs:
                continue
            if not trust_pickle:
                raise UsageError(
                    f"{name} model {directory} has weights only in {f.relative_to(directory)}, "
                    "a pickle, which can run code when loaded",
                    f"set extract.params.{name}.trust_pickle: true if you trust it, or convert "
                    "it to safetensors (model.save_pretrained(dir, safe_serialization=True))")
        used.append(f)
    if not any(f.suffix == ".safetensors" for f in used) and not trust_pickle:
        raise UsageError(f"{name} model {directory} has no .safetensors weights",
                         "give a model directory saved with safetensors")
    return used


def hash_files(directory: Path, files: list[Path]) -> dict[str, str]:
    from mmcli.artifacts import sha256_file

    return {f.relative_to(directory).as_posix(): sha256_file(f) for f in files}


def combined_sha256(files: dict[str, str]) -> str:
    blob = json.dumps(sorted(files.items())).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


# --- device and precision -------------------------------------------------------------------

def resolve_device(device: str, name: str, fallback: bool = False) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        if fallback:  # predict on a machine without the GPU extract used
            log.warning("%s: no GPU here, running on the CPU", name)
            return "cpu"
        raise UsageError(f"extract.params.{name}.device is cuda but no GPU is available",
                         "use --device auto or cpu")
    return device


def resolve_precision(precision: str, device: str) -> str:
    if precision == "auto":
        return "float16" if device == "cuda" else "float32"
    return precision


# --- the embedding cache --------------------------------------------------------------------

def cache_root() -> Path:
    env = os.environ.get("MMCLI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mmcli"


class EmbeddingCache:
    """Rows of one namespace (one model and output configuration), keyed by item content.

    Each write is a pair of ``.npy`` files: ``<id>.vectors.npy`` then ``<id>.keys.npy``,
    each renamed into place, so a keys file always has its complete vectors; concurrent
    runs can share a folder. Vectors are read memory-mapped, only the rows asked for."""

    def __init__(self, directory: Path, description: dict):
        self.directory = directory
        self.description = description
        self._index: dict[bytes, tuple[Path, int]] | None = None

    def _load_index(self) -> dict[bytes, tuple[Path, int]]:
        if self._index is None:
            self._index = {}
            for keys_file in sorted(self.directory.glob("*.keys.npy")):
                vectors = keys_file.with_name(keys_file.name[:-len(".keys.npy")]
                                              + ".vectors.npy")
                try:
                    keys = np.load(keys_file, allow_pickle=False)
                except (OSError, ValueError):  # a damaged file: its rows are recomputed
                    continue
                for row, key in enumerate(keys.tolist()):
                    self._index.setdefault(key, (vectors, row))
        return self._index

    def get(self, keys: list[bytes], dim: int) -> dict[int, np.ndarray]:
        """Position -> cached row for the ``keys`` present."""
        index = self._load_index()
        found: dict[int, np.ndarray] = {}
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for k, key in enumerate(keys):
            if key in index:
                path, row = index[key]
                by_file.setdefault(path, []).append((k, row))
        for path, wanted in by_file.items():
            try:
                vectors = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                continue
            if vectors.ndim != 2 or vectors.shape[1] != dim:
                continue
            for k, row in wanted:
                if row < len(vectors):
                    found[k] = np.array(vectors[row], dtype=np.float32)
        return found

    def put(self, keys: list[bytes], vectors: np.ndarray) -> None:
        if not keys:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            about = self.directory / "about.json"
            if not about.exists():
                _atomic_write(about, json.dumps(self.description, indent=1,
                                                sort_keys=True).encode("utf-8"))
            stem = hashlib.sha256(b"".join(keys)).hexdigest()[:32]
            for suffix, array in (("vectors", np.ascontiguousarray(vectors, np.float32)),
                                  ("keys", np.array(keys, dtype=f"S{len(keys[0])}"))):
                target = self.directory / f"{stem}.{suffix}.npy"
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as f:
                    np.save(f, array, allow_pickle=False)
                os.replace(tmp, target)
        except OSError as exc:  # a full or read-only cache costs the reuse, never the run
            log.warning("embedding cache %s not written: %s", self.directory, exc)
            return
        index = self._load_index()
        for row, key in enumerate(keys):
            index.setdefault(key, (self.directory / f"{stem}.vectors.npy", row))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- the shared extractor -------------------------------------------------------------------

#: loaded backbones, shared by the extractors (and columns) that use the same model files
#: on the same device: two text columns, or clip_image and clip_text, hold one copy. A worker
#: state: emptied when the stage's in-process map ends, so no model outlives the stage (the
#: extractors that loaded one keep it only as long as the stage keeps them)
_BACKBONES: dict[tuple, Any] = worker_state()


class PretrainedExtractor(Extractor):
    """Base of the pretrained-backbone extractors (see the module doc). Subclasses give
    ``extra`` (the pip extra), ``_load_backbone``, ``_embed`` and ``_item_bytes``."""

    needs_fit = False
    parallel = False  # one model copy, in this process, whatever --jobs says
    extra: ClassVar[str] = "hf"
    #: the backbone loader's identity: extractors with the same one share loaded models
    backbone: ClassVar[str] = ""
    #: parameters that change how rows are found, never their values (left out of the cache
    #: namespace; ``batch_size`` is in: it is the shape of every forward pass, and a batch of
    #: one can take another kernel than a batch of several)
    runtime_params: ClassVar[tuple[str, ...]] = ("model", "device", "allow_download",
                                                 "trust_pickle", "cache")

    @dataclasses.dataclass
    class Params:
        model: str = ""
        batch_size: int = 16
        device: str = "auto"
        precision: str = "auto"
        allow_download: bool = False
        trust_pickle: bool = False
        cache: bool = True

    def _check(self) -> None:
        if not self.params.model:
            raise UsageError(
                f"extractor {self.name!r} needs a model",
                f"set extract.params.{self.name}.model to a model directory or a hub id "
                "(docs/extractors.md)")
        self._at_least(1, "batch_size")
        self._one_of("device", ("auto", "cpu", "cuda"))
        self._one_of("precision", ("auto", "float32", "float16", "bfloat16"))

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("_net", "_cache")}

    # fitting: find the model, check and hash its files, load it once to learn the dimension
    def _fit(self, data) -> int:
        require(self._module_name(), self.extra, self.name)
        p = self.params
        directory = resolve_model(p.model, p.allow_download, self.name, p.trust_pickle)
        files = check_weights(directory, p.trust_pickle, self.name)
        self.model_dir_ = directory
        self.files_sha256_ = hash_files(directory, files)
        self.sha256_ = combined_sha256(self.files_sha256_)
        self._fallback = False
        import torch

        with torch.inference_mode():
            return int(self._backbone_dim(self._net_()))

    def _module_name(self) -> str:
        return self.extra

    def _state(self):
        return {"model": self.params.model, "directory": str(self.model_dir_),
                "sha256": self.sha256_, "files": self.files_sha256_}, {}

    def _load(self, params, arrays):
        self.sha256_ = params["sha256"]
        self.files_sha256_ = dict(params["files"])
        self.model_dir_ = self._find_again(Path(params["directory"]), params["model"])
        self._fallback = True

    def _find_again(self, recorded: Path, model: str) -> Path:
        """The directory holding the files recorded at extract, with the same sha256."""
        hint = (f"put the model extract used back (it was {model!r} in {recorded}), or "
                "re-run mmcli extract and train with the model you have now")
        candidates = [recorded]
        if not recorded.is_dir():
            try:
                candidates.append(resolve_model(model, self.params.allow_download, self.name,
                                                self.params.trust_pickle))
            except UsageError:
                pass
        for directory in candidates:
            if not directory.is_dir():
                continue
            files = {rel: directory / rel for rel in self.files_sha256_}
            missing = [rel for rel, f in files.items() if not f.is_file()]
            if missing:
                raise ArtifactError(f"{self.name} model {directory} lacks {missing[0]}, "
                                    "which extract used", hint)
            from mmcli.artifacts import sha256_file

            for rel, f in files.items():
                if sha256_file(f) != self.files_sha256_[rel]:
                    raise ArtifactError(f"{self.name} model file {f} changed since extract "
                                        "(sha256 differs from the extract state)", hint)
            return directory
        raise ArtifactError(f"{self.name} model {model!r} is gone: not in {recorded}, nor in "
                            f"the local Hugging Face cache {hub_cache()}", hint)

    # the loaded network, shared in this process
    def _run_on(self) -> tuple[str, str]:
        device = resolve_device(self.params.device, self.name,
                                getattr(self, "_fallback", False))
        return device, resolve_precision(self.params.precision, device)

    def _net_(self):
        net = getattr(self, "_net", None)
        if net is None:
            device, precision = self._run_on()
            key = (self.backbone or self.name, str(self.model_dir_), self.sha256_, device,
                   precision, self.params.trust_pickle)
            if key not in _BACKBONES:
                require(self._module_name(), self.extra, self.name)
                import torch

                _BACKBONES[key] = self._load_backbone(self.model_dir_, device,
                                                      getattr(torch, precision))
            net = self._net = _BACKBONES[key]
        return net

    # transform: cached rows, the rest embedded in batches
    def _cache_(self) -> EmbeddingCache | None:
        if not self.params.cache:
            return None
        cache = getattr(self, "_cache", None)
        if cache is None:
            device, precision = self._run_on()
            description = {
                "extractor": self.name, "version": CACHE_VERSION, "model": self.params.model,
                "model_sha256": self.sha256_, "device": device, "precision": precision,
                "params": {k: v for k, v in dataclasses.asdict(self.params).items()
                           if k not in self.runtime_params}}
            blob = json.dumps({k: v for k, v in description.items() if k != "model"},
                              sort_keys=True).encode("utf-8")
            namespace = hashlib.sha256(blob).hexdigest()[:32]
            cache = self._cache = EmbeddingCache(cache_root() / "embeddings" / namespace,
                                                 description)
        return cache

    def _transform(self, data) -> np.ndarray:
        items = self._items(data)
        out = np.zeros((len(items), self.dim_), dtype=np.float32)
        cache = self._cache_()
        keys = [hashlib.sha256(self._item_bytes(x)).hexdigest()[:40].encode("ascii")
                for x in items]
        found = cache.get(keys, self.dim_) if cache is not None else {}
        for k, row in found.items():
            out[k] = row
        todo = [k for k in range(len(items)) if k not in found]
        if todo:
            import torch

            with torch.inference_mode():
                rows = np.asarray(self._embed([items[k] for k in todo]), dtype=np.float32)
            out[todo] = rows
            if cache is not None:
                cache.put([keys[k] for k in todo], rows)
        self.computed_ = getattr(self, "computed_", 0) + len(todo)
        self.cached_ = getattr(self, "cached_", 0) + len(found)
        return out

    def _items(self, data) -> list:
        return list(data)

    # subclasses
    def _load_backbone(self, directory: Path, device: str, dtype) -> Any:
        raise NotImplementedError

    def _backbone_dim(self, net) -> int:
        raise NotImplementedError

    def _embed(self, items: list) -> np.ndarray:
        raise NotImplementedError

    def _item_bytes(self, item) -> bytes:
        raise NotImplementedError


def text_bytes(text: str) -> bytes:
    return text.encode("utf-8")


def image_bytes(image: np.ndarray) -> bytes:
    return repr(image.shape).encode("ascii") + np.ascontiguousarray(image).tobytes()


def batches_by_length(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Positions grouped by equal length (shortest first, then in order), in batches of at
    most ``batch_size``: sorted by length to limit padding, each batch of one length."""
    groups: dict[int, list[int]] = {}
    for k, n in enumerate(lengths):
        groups.setdefault(n, []).append(k)
    return [positions[a:a + batch_size] for n in sorted(groups)
            for positions in [groups[n]] for a in range(0, len(positions), batch_size)]


def pad_rows(batch: dict, size: int) -> tuple[dict, int]:
    """A short batch padded to ``size`` rows (copies of its last row), and its real size.

    Every forward pass of one input length then has one shape: the kernels a backend picks
    (and the order they add in) can depend on the batch size, on the CPU too (a ViT's patch
    convolution differs in the last bit between batches of 2 and 3), so without this an
    item's embedding would depend on the batch it fell in, and an incremental run would not
    be byte-identical to a full one."""
    import torch

    n = next(iter(batch.values())).shape[0]
    if n >= size:
        return batch, n
    return {k: torch.cat([v, v[-1:].expand(size - n, *v.shape[1:])]) if torch.is_tensor(v)
            else v for k, v in batch.items()}, n


def text_bucket(tokens: int, longest: int) -> int:
    """The padded length of a text of ``tokens`` tokens: the next of 16, 24, 32, 48, 64, 96,
    ... (at most ``longest``), a function of the text alone; few lengths, so few short
    batches to pad."""
    size = 16
    while size < tokens:
        size = size * 3 // 2 if size & (size - 1) == 0 else size * 4 // 3
    return min(size, longest)


def pool(hidden, mask, pooling: str):
    """(batch, tokens, dim) -> (batch, dim): mean or max over the unmasked tokens, or the
    first token (cls); ``mask`` (batch, tokens) or None."""
    import torch

    if pooling == "cls":
        return hidden[:, 0]
    if mask is None:
        return hidden.mean(1) if pooling == "mean" else hidden.amax(1)
    m = mask.to(hidden.dtype).unsqueeze(-1)
    if pooling == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).amax(1)

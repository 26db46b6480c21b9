"""Stage directories: atomic writing, the ``meta.json`` record, checked loading.

Every stage writes one directory. It is built under a hidden temporary sibling and renamed into
place only when complete, so an interrupted stage never leaves a directory that passes for
complete. ``meta.json`` records the schema version, the stage, the resolved config, the seed,
library versions and sha256 hashes of the inputs and of every file written.

Nothing is loaded back with pickle: arrays are ``.npy``/``.npz`` read with
``allow_pickle=False``, everything else is JSON, JSONL or CSV.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import shutil
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmcli import storage
from mmcli.errors import ArtifactError

SCHEMA_VERSION = 1
META = "meta.json"
#: what reading an earlier output raises when it cannot be reused (missing, incomplete, of
#: another kind or schema, modified, unreadable): the incremental checks of preprocess and
#: extract then recompute; any other exception is a bug and propagates
NOT_REUSABLE = (ArtifactError, OSError)

#: which command makes each kind of stage directory, for error messages
MAKES = {
    "preprocess": "mmcli preprocess MANIFEST -o DIR",
    "extract": "mmcli extract PREPROCESS_DIR -o DIR",
    "fuse": "mmcli fuse EXTRACT_DIR -o DIR",
    "train": "mmcli train FUSE_DIR -o DIR",
    "eval": "mmcli eval MODEL_DIR FUSE_DIR -o DIR",
    "predict": "mmcli predict MODEL_DIR MANIFEST -o DIR",
}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class HashCache:
    """sha256 digests of files, each trusted while its file keeps the size, modification time
    and inode it had when it was hashed (the state DVC keeps), so that a file this process
    has just written or checked is not read again.

    Files are keyed by device and inode, so a stage's output stays known when its temporary
    directory is renamed into place. Used through :func:`hash_cache`: ``mmcli run`` holds one
    for the whole chain (a stage's inputs are the outputs the stage before it just hashed),
    and extract saves its input checks beside its journal (``NAME``), so the rerun of a
    killed run does not hash its input again.
    """

    NAME = ".hashes.json"

    def __init__(self) -> None:
        self.entries: dict[str, list] = {}

    def sha256(self, path: Path) -> str:
        st = os.stat(path)
        key, stamp = f"{st.st_dev}:{st.st_ino}", [st.st_size, st.st_mtime_ns]
        known = self.entries.get(key)
        if known is not None and known[1:] == stamp:
            return known[0]
        digest = sha256_file(path)
        self.entries[key] = [digest, *stamp]
        return digest

    def load(self, path: Path) -> HashCache:
        """Add the entries saved at ``path`` (a killed run's), if any and readable."""
        try:
            saved = json.loads(Path(path).read_text("utf-8"))
        except (OSError, ValueError):
            return self
        if isinstance(saved, dict):
            self.entries.update({k: v for k, v in saved.items()
                                 if isinstance(v, list) and len(v) == 3})
        return self

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.entries, sort_keys=True), "utf-8")


#: the HashCache in use (see hash_cache); None: every check reads the files
_HASHES: contextvars.ContextVar[HashCache | None] = contextvars.ContextVar(
    "mmcli_hashes", default=None)


@contextmanager
def hash_cache(cache: HashCache | None = None):
    """Use ``cache`` (the one in use already, or a new one) for the file checks of a block:
    :func:`open_stage`'s verification and :meth:`StageWriter.commit`'s hashes."""
    cache = cache or _HASHES.get() or HashCache()
    token = _HASHES.set(cache)
    try:
        yield cache
    finally:
        _HASHES.reset(token)


def _sha256(path: Path) -> str:
    cache = _HASHES.get()
    return cache.sha256(path) if cache is not None else sha256_file(path)


def library_versions() -> dict[str, str]:
    from importlib import metadata

    import mmcli

    versions = {"mmcli": mmcli.__version__}
    for dist in ("numpy", "scikit-learn", "torch", "gensim", "librosa", "pillow", "soundfile"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def write_json(path: Path, data: Any, sort_keys: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False)
    path.write_text(text + "\n", "utf-8")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing", "re-run the stage that makes it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc})", "re-run the stage") from None


def write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    """A CSV with a header (``columns``, or the first row's keys) and ``\\n`` line ends."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or (list(rows[0]) if rows else [])
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_jsonl(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing", "re-run the stage that makes it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSONL ({exc})", "re-run the stage") from None


def save_state(directory: Path, name: str, params: dict, arrays: dict[str, np.ndarray]) -> None:
    """Save a fitted component: JSON parameters plus named arrays (no pickle)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / f"{name}.json", params)
    if arrays:
        save_npz(directory / f"{name}.npz", arrays)


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` that is byte-identical for identical arrays.

    ``np.savez`` stamps each zip entry with the current time; here every entry gets a fixed
    date so that the same inputs and seed give the same bytes.
    """
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue())


def load_state(directory: Path, name: str) -> tuple[dict, dict[str, np.ndarray]]:
    import zipfile

    params = read_json(directory / f"{name}.json")
    arrays: dict[str, np.ndarray] = {}
    npz = directory / f"{name}.npz"
    if npz.exists():
        try:
            with np.load(npz, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise _unreadable(npz, exc) from None
    return params, arrays


class NpyAppender:
    """Append rows of a fixed trailing shape to a ``.npy`` file without holding them in memory.

    The header is reserved up front and rewritten with the final row count on close.
    """

    HEADER_BYTES = 256

    def __init__(self, path: Path, dtype, trailing: tuple[int, ...] = (),
                 resume_rows: int | None = None):
        """With ``resume_rows``, reopen a file an interrupted run was writing and continue
        after its first ``resume_rows`` rows (anything after them is cut off)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.dtype = np.dtype(dtype)
        self.trailing = tuple(int(t) for t in trailing)
        if resume_rows is not None and self.path.exists():
            self.rows = int(resume_rows)
            row_bytes = self.dtype.itemsize * int(np.prod(self.trailing, dtype=np.int64))
            self._f = open(self.path, "r+b")
            self._f.truncate(self.HEADER_BYTES + self.rows * row_bytes)
            self._f.seek(0, os.SEEK_END)
            return
        self.rows = 0
        self._f = open(self.path, "wb")
        self._f.write(b"\0" * self.HEADER_BYTES)

    def flush(self) -> None:
        """Make the rows written so far durable (before a checkpoint records them)."""
        self._f.flush()
        os.fsync(self._f.fileno())

    def append(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.trailing:
            raise ValueError(f"rows of shape {block.shape[1:]} appended to {self.trailing}")
        self._f.write(block.tobytes())
        self.rows += block.shape[0]

    def close(self) -> None:
        shape = (self.rows, *self.trailing)
        header = repr(
            {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
             "shape": shape}
        )
        prefix = b"\x93NUMPY\x01\x00"
        body_len = self.HEADER_BYTES - len(prefix) - 2
        text = header.encode("latin1")
        if len(text) + 1 > body_len:
            raise ValueError("array shape too long for the reserved .npy header")
        text = text + b" " * (body_len - len(text) - 1) + b"\n"
        self._f.seek(0)
        self._f.write(prefix + struct.pack("<H", body_len) + text)
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            self._f.close()


def load_npy(path: Path, mmap: bool = True) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing", "re-run the stage that makes it") from None
    except ValueError as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> ArtifactError:
    if "pickle" in str(exc):  # numpy's message would suggest loading it unsafely
        return ArtifactError(f"{path} cannot be read: it is not an array file, and mmcli never "
                             "loads pickled data (was the file replaced?)", "re-run the stage")
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ArtifactError(f"{path} cannot be read ({first})", "re-run the stage")


class Journal:
    """Checkpoints of a stage's completed chunks, so a killed run can continue where it was.

    The journal is ``.journal.jsonl`` inside the stage's temporary directory: a header line
    with the run's fingerprint, then one JSON record per completed chunk, appended only after
    the chunk's data files were flushed. A run that finds the temporary directory of a dead
    earlier run with the same fingerprint adopts it (see :class:`StageWriter`) and gets the
    records of the chunks that are already done.
    """

    NAME = ".journal.jsonl"

    def __init__(self, directory: Path, fingerprint: str):
        self.path = Path(directory) / self.NAME
        self.records: list[dict] = []
        if self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().split("\n")
            # the last line may be cut short by a kill: only complete lines count
            complete = [json.loads(line) for line in lines[:-1] if line]
            if complete and complete[0].get("fingerprint") == fingerprint:
                self.records = complete[1:]
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(json.dumps({"fingerprint": fingerprint}) + "\n")
            for record in self.records:
                f.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        self._f = open(self.path, "a", encoding="utf-8")

    def append(self, record: dict) -> None:
        self._f.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        """Remove the journal (the stage is complete; it is not part of the output)."""
        self._f.close()
        self.path.unlink(missing_ok=True)


class StageWriter:
    """Build a stage directory under a temporary name; ``commit`` renames it into place.

    With ``resume_key`` (the fingerprint of what the stage is about to compute), the temporary
    directory of a dead earlier run with the same key is adopted instead of removed, and
    :meth:`journal` tells the stage which chunks it already completed.
    """

    def __init__(self, out: Path, stage: str, inputs: tuple[Path, ...] = (),
                 resume_key: str | None = None):
        self.out = Path(out)
        self.stage = stage
        for src in inputs:
            if self.out.resolve() == Path(src).resolve():
                raise ArtifactError(f"-o {self.out} is also the input of {stage}",
                                    "write the output to another directory")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        # the stage's lock when it holds one (locked_output), else one of our own
        self._own_lock = _lock_key(self.out) not in _held()
        self.lock = OutputLock(self.out) if self._own_lock else _held()[_lock_key(self.out)]
        self.resume_key = resume_key
        try:
            if self.out.exists() and (not self.out.is_dir() or (
                    not (self.out / META).exists() and any(self.out.iterdir()))):
                raise ArtifactError(
                    f"{self.out} exists and is not an mmcli stage directory",
                    "choose another -o path or remove it",
                )
            self.tmp = self.out.parent / f".{self.out.name}.tmp-{os.getpid()}"
            adopt = _resumable_tmp(self.out, resume_key) if resume_key else None
            if adopt is not None and adopt != self.tmp:
                if self.tmp.exists():
                    shutil.rmtree(self.tmp)
                os.replace(adopt, self.tmp)
            _remove_stale_tmp(self.out)
            if adopt is None and self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir(exist_ok=True)
        except BaseException:
            self._release_lock()
            raise
        #: False when the new output was identical to the existing one, which was kept
        self.replaced = True

    @property
    def path(self) -> Path:
        return self.tmp

    def journal(self) -> Journal:
        """The checkpoint journal of this run (resumable stages only)."""
        if self.resume_key is None:
            raise ValueError("StageWriter(resume_key=...) is needed for a journal")
        return Journal(self.tmp, self.resume_key)

    def commit(self, config: dict, seed: int | None, inputs: dict[str, str], summary: dict) -> Path:
        (self.tmp / Journal.NAME).unlink(missing_ok=True)
        (self.tmp / HashCache.NAME).unlink(missing_ok=True)
        # an input staged from a URL is recorded as the URL (see mmcli.storage)
        inputs = {storage.display(k): v for k, v in inputs.items()}
        outputs = {
            str(p.relative_to(self.tmp)): _sha256(p)
            for p in sorted(self.tmp.rglob("*"))
            if p.is_file()
        }
        meta = {
            "schema_version": SCHEMA_VERSION,
            "stage": self.stage,
            "fingerprint": fingerprint(self.stage, config, inputs),
            "config": _without_runtime(config),
            "seed": seed,
            "versions": library_versions(),
            "inputs": inputs,
            "outputs": outputs,
            "summary": summary,
        }
        write_json(self.tmp / META, meta)
        try:
            if _same_output(self.out, self.tmp / META, outputs):
                # Make-friendly: identical output is not rewritten, so its mtimes stay.
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.replaced = False
                return self.out
            old = None
            if self.out.exists():
                old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
                os.replace(self.out, old)
            os.replace(self.tmp, self.out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            return self.out
        finally:
            self._release_lock()

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._release_lock()

    def _release_lock(self) -> None:
        if self._own_lock:
            self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()


def _without_runtime(config: dict) -> dict:
    """``config`` less the keys that never change a stage's output (jobs, executor...)."""
    from mmcli.config import RUNTIME_KEYS

    return {k: v for k, v in config.items() if k not in RUNTIME_KEYS}


def fingerprint(stage: str, config: dict, inputs: dict[str, str]) -> str:
    """What a stage's output depends on: stage, resolved config, input hashes, mmcli version.

    ``mmcli run`` skips a stage whose existing output has the fingerprint it would get now.
    """
    import mmcli

    config = _without_runtime(config)
    blob = json.dumps({"stage": stage, "config": config, "inputs": inputs,
                       "mmcli": mmcli.__version__, "schema_version": SCHEMA_VERSION},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _same_output(out: Path, new_meta: Path, outputs: dict[str, str]) -> bool:
    """Whether ``out`` already holds exactly the new output: same meta.json bytes, the same
    set of files, and every file still matching its hash."""
    try:
        if (out / META).read_bytes() != new_meta.read_bytes():
            return False
        present = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
        if present != set(outputs) | {META}:
            return False
        return all(_sha256(out / rel) == digest for rel, digest in outputs.items())
    except OSError:
        return False


class OutputLock:
    """An exclusive lock on one output directory: ``fcntl.flock`` on ``.NAME.lock`` beside it,
    a file holding the pid and host of its holder (for the message a second writer gets).

    The operating system releases the lock when its holder dies, however it dies, so a lock
    file left by a killed run is simply taken by the next one, atomically: of any number of
    processes starting at once, exactly one holds the lock at a time. A live holder makes the
    caller wait up to ``MMCLI_LOCK_WAIT`` seconds (default 0), then fail. ``release`` removes
    the file before unlocking it; a waiter that then locks the removed file sees it is no longer
    the one at ``.NAME.lock`` and starts over. The file system must support ``flock`` (local
    ones do; NFS maps it to its own locks)."""

    POLL = 0.05  # seconds between attempts while waiting

    def __init__(self, out: Path):
        import fcntl
        import socket
        import time

        self.path = Path(out).parent / f".{Path(out).name}.lock"
        self.held = False
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        deadline = time.monotonic() + float(os.environ.get("MMCLI_LOCK_WAIT", "0") or 0)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    raise ArtifactError(
                        f"{out} is being written by another mmcli (pid {holder.get('pid', '?')} "
                        f"on {holder.get('host', '?')}; lock {self.path})",
                        "wait for it to finish, or set MMCLI_LOCK_WAIT=SECONDS to wait",
                    ) from None
                time.sleep(self.POLL)
                continue
            except BaseException:
                os.close(fd)
                raise
            try:  # still the file at self.path, not one its holder removed on release?
                current = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                current = False
            if not current:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, me)
            self._fd = fd
            self.held = True
            return

    def _holder(self) -> dict:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self.held:
            import fcntl

            self.path.unlink(missing_ok=True)
            # unlock explicitly: a child forked meanwhile shares the open file, and closing
            # here alone would leave the lock to it
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self.held = False


#: output lock paths -> the OutputLock a stage holds for its whole run (see locked_output)
_HELD: contextvars.ContextVar[dict[str, OutputLock] | None] = contextvars.ContextVar(
    "mmcli_locks", default=None)


def _held() -> dict[str, OutputLock]:
    return _HELD.get() or {}


def _lock_key(out: Path) -> str:
    return str(Path(out).parent.resolve() / f".{Path(out).name}.lock")


@contextmanager
def locked_output(out: Path):
    """Hold the lock of the output directory ``out`` for a block: a whole stage, taken before
    any work (:func:`mmcli.storage.staged` does it for every stage function), so that a second
    run of the same output waits or fails at once instead of after doing the work. A
    :class:`StageWriter` of ``out`` inside the block uses this lock; nested blocks of the same
    output share it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    key = _lock_key(out)
    if key in _held():
        yield _held()[key]
        return
    lock = OutputLock(out)
    token = _HELD.set({**_held(), key: lock})
    try:
        yield lock
    finally:
        _HELD.reset(token)
        lock.release()


def _resumable_tmp(out: Path, key: str) -> Path | None:
    """The temporary directory of a dead run of ``out`` whose journal has fingerprint ``key``."""
    for candidate in sorted(out.parent.glob(f".{out.name}.tmp-*")):
        pid = candidate.name.rpartition("-")[2]
        if not pid.isdigit() or (_alive(int(pid)) and int(pid) != os.getpid()):
            continue
        journal = candidate / Journal.NAME
        try:
            with open(journal, encoding="utf-8") as f:
                header = json.loads(f.readline())
        except (OSError, ValueError):
            continue
        if isinstance(header, dict) and header.get("fingerprint") == key:
            return candidate
    return None


def _remove_stale_tmp(out: Path) -> None:
    """Remove ``.NAME.tmp-PID``/``.NAME.old-PID`` folders left by killed runs of this output."""
    for leftover in out.parent.glob(f".{out.name}.*-*"):
        kind, _, pid = leftover.name.rpartition("-")
        if not pid.isdigit() or not kind.endswith((".tmp", ".old")) or _alive(int(pid)):
            continue
        shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _a(stage: str) -> str:
    return f"an '{stage}'" if stage[0] in "aeiou" else f"a '{stage}'"


@dataclass
class StageDir:
    path: Path
    meta: dict

    @property
    def stage(self) -> str:
        return self.meta["stage"]

    def file(self, rel: str) -> Path:
        return self.path / rel

    def meta_hash(self) -> str:
        return sha256_file(self.path / META)


def open_stage(path: Path, expected: str, for_command: str, verify: bool = True) -> StageDir:
    """Open a stage directory made by ``expected``; errors name the file and the fix."""
    path = Path(path)
    make = MAKES[expected]
    if not path.is_dir():
        raise ArtifactError(
            f"{path} is not a directory",
            f"{for_command} needs {_a(expected)} directory: run `{make}`",
        )
    meta_path = path / META
    if not meta_path.is_file():
        raise ArtifactError(
            f"{meta_path} is missing, so {path} is not a complete mmcli stage directory",
            f"{for_command} needs {_a(expected)} directory: run `{make}`",
        )
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or "stage" not in meta or "schema_version" not in meta:
        raise ArtifactError(f"{meta_path} is not an mmcli metadata record", f"run `{make}`")
    if meta["stage"] != expected:
        stages = list(MAKES)
        follows = stages.index(expected) == stages.index(meta["stage"]) + 1 if (
            meta["stage"] in stages) else False
        hint = (f"make one from it: `{make.split(' ')[0]} {make.split(' ')[1]} {path} -o DIR`"
                if follows else f"run `{make}`")
        raise ArtifactError(
            f"{path} is {_a(str(meta['stage']))} directory, but {for_command} needs "
            f"{_a(expected)} one", hint)
    if meta["schema_version"] != SCHEMA_VERSION:
        raise ArtifactError(
            f"{meta_path} has schema version {meta['schema_version']!r}; this mmcli reads "
            f"version {SCHEMA_VERSION}",
            f"re-create it with this mmcli: `{make}`",
        )
    stage = StageDir(path, meta)
    if verify:
        verify_stage(stage)
    return stage


def verify_stage(stage: StageDir) -> None:
    """Check that every output file of a stage directory is there and unmodified (its sha256
    is the one ``meta.json`` records; through the :class:`HashCache` in use, if any)."""
    make = MAKES.get(stage.stage, "the stage that made it")
    for rel, digest in stage.meta.get("outputs", {}).items():
        p = stage.path / rel
        if not p.is_file():
            raise ArtifactError(f"{p} is missing from the stage directory", f"re-run `{make}`")
        if _sha256(p) != digest:
            raise ArtifactError(
                f"{p} was modified after the stage wrote it (hash mismatch)", f"re-run `{make}`"
            )

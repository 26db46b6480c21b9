"""Manifests, media and stage directories on any fsspec filesystem (``s3://``, ``gs://``,
``http://``, ...); stage directories are staged through local copies (notes further down).

A manifest given as a URL is read through fsspec; its relative media paths resolve against the
URL's folder, and a media cell may itself be a URL. Each worker fetches a remote media file
into a private temporary file and decodes that with the same decoders, limits and error
messages as a local file (the messages name the URL). ``file://`` URLs are plain local paths.
Which protocols work depends on the fsspec back-ends installed (``s3fs``, ``gcsfs``...);
credentials come from the usual environment of each back-end, on every worker.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(location) -> bool:
    """Whether ``location`` is a URL for fsspec (not a local path, not ``file://``)."""
    return isinstance(location, str) and bool(_SCHEME.match(location)) \
        and not location.startswith("file://")


def local(location) -> Path | str:
    """A ``file://`` URL as a local path; other URLs as they are; anything else as a Path."""
    if isinstance(location, str) and location.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise OSError(f"{location}: a file:// URL must name a local absolute path "
                          "(file:///abs/path)")
        return Path(unquote(parts.path))
    return location if is_url(location) else Path(location)


def suffix(location) -> str:
    """The file extension of a path or URL (a URL's query and fragment left out)."""
    from urllib.parse import urlsplit

    path = urlsplit(location).path if is_url(location) else str(location)
    return posixpath.splitext(path)[1]


def parent(url: str) -> str:
    """The folder of a URL (its query, e.g. a signature for that one file, dropped)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, posixpath.dirname(parts.path), "", ""))


def join(base, value: str):
    """``value`` (a path or URL from a manifest) resolved against the manifest's folder."""
    if is_url(value) or value.startswith("file://"):
        return local(value)
    if is_url(base):
        from urllib.parse import urlsplit, urlunsplit

        if value.startswith("/"):  # an absolute path stays on the same filesystem
            path = value
        else:
            path = posixpath.join(urlsplit(base).path or "/", value)
        parts = urlsplit(base)
        return urlunsplit((parts.scheme, parts.netloc, posixpath.normpath(path), "", ""))
    p = Path(value)
    return p if p.is_absolute() else Path(base) / p


def _plain_errors(fn):
    """Back-ends raise their own exceptions (HTTP errors, missing credentials); turn every one
    but a missing file into an :class:`OSError` naming the URL, which callers report."""
    import functools

    @functools.wraps(fn)
    def wrapper(url, *args, **kwargs):
        try:
            return fn(url, *args, **kwargs)
        except (FileNotFoundError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - any back-end failure
            first = (str(exc).splitlines() or [""])[0][:300]
            raise OSError(f"{url}: {type(exc).__name__}: {first}") from None

    return wrapper


def _fs(url: str):
    try:
        import fsspec
    except ImportError:  # a dependency of mmcli; only a broken install lacks it
        raise OSError("fsspec is not installed (pip install fsspec)") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # no back-end for the protocol
        raise OSError(f"no filesystem for {url.split('://')[0]}:// ({exc}); install its "
                      "fsspec back-end, e.g. s3fs or gcsfs") from None


@_plain_errors
def read_bytes(url: str) -> bytes:
    fs, path = _fs(url)
    with fs.open(path, "rb") as f:
        return f.read()


@_plain_errors
def sha256(url: str) -> str:
    h = hashlib.sha256()
    fs, path = _fs(url)
    with fs.open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def stamp(url: str) -> str:
    """Size and version of a remote file (ETag, modification time or generation: whatever
    the filesystem reports), like a local file's size and mtime; ``missing`` when absent."""
    try:
        fs, path = _fs(url)
        info = fs.info(path)
    except Exception:  # noqa: BLE001 - unreachable for any reason: preprocess will say why
        return "missing"
    version = next((str(info[k]) for k in ("ETag", "etag", "md5Hash", "generation", "mtime",
                                           "LastModified", "last_modified", "created")
                    if info.get(k) is not None), "")
    return f"{info.get('size')}\0{version}"


@_plain_errors
def _download(url: str, target: str) -> None:
    fs, path = _fs(url)
    with open(target, "wb") as out, fs.open(path, "rb") as src:
        while block := src.read(1 << 20):
            out.write(block)


def stamps(urls: list[str], threads: int = 32) -> dict[str, str]:
    """:func:`stamp` of many URLs, ``threads`` requests at a time."""
    if not urls:
        return {}
    from concurrent.futures import ThreadPoolExecutor

    unique = sorted(set(urls))
    with ThreadPoolExecutor(min(threads, len(unique))) as pool:
        return dict(zip(unique, pool.map(stamp, unique)))


@contextmanager
def fetched(url: str):
    """A local temporary copy of the remote file ``url``, removed afterwards.

    Raises :class:`FileNotFoundError` or :class:`OSError` naming the URL."""
    fd, tmp = tempfile.mkstemp(prefix="mmcli-", suffix=suffix(url)[:16])
    os.close(fd)
    try:
        _download(url, tmp)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


# --- stage directories at URLs ---------------------------------------------------------------
#
# A stage reads and writes local directories (atomic rename, locks, memory-mapped reads). A
# stage directory at a URL is staged through a private local copy: an input is downloaded
# before the stage runs; an output is built locally and uploaded when the stage has
# succeeded, meta.json last (it is removed first), so a half-uploaded directory never looks
# complete: every reader checks meta.json and the hash of every file it lists.

#: local staging copies -> the URL they stand for (meta.json records the URL)
_ALIASES: dict[str, str] = {}


def display(location) -> str:
    """The URL a local staging path stands for (or a path inside it), else the path."""
    text = str(location)
    for local_dir, url in _ALIASES.items():
        if text == local_dir or text.startswith(local_dir + os.sep):
            return url + text[len(local_dir):].replace(os.sep, "/")
    return text


def staged(*inputs: str, output: str | None = "out"):
    """Decorator for a stage function: arguments named in ``inputs`` (stage directories) and
    ``output`` may be URLs; the function then sees local copies (see the module notes). A
    local ``output`` is locked first, before any work, for the whole call
    (:func:`mmcli.artifacts.locked_output`)."""
    import functools
    import inspect

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from contextlib import ExitStack

            from mmcli import artifacts

            bound = signature.bind(*args, **kwargs)
            with ExitStack() as stack:
                out = bound.arguments.get(output) if output else None
                if out is not None and not is_url(out):
                    stack.enter_context(artifacts.locked_output(Path(out)))
                for name in inputs:
                    if is_url(bound.arguments.get(name)):
                        bound.arguments[name] = stack.enter_context(
                            downloaded(bound.arguments[name]))
                if output and is_url(bound.arguments.get(output)):
                    bound.arguments[output] = stack.enter_context(
                        uploaded(bound.arguments[output]))
                return fn(*bound.args, **bound.kwargs)

        return wrapper

    return decorate


def _staging(url: str) -> Path:
    from urllib.parse import urlsplit

    name = posixpath.basename(urlsplit(url).path.rstrip("/")) or "stage"
    local_dir = Path(tempfile.mkdtemp(prefix="mmcli-staged-")) / name
    _ALIASES[str(local_dir)] = url.rstrip("/")
    return local_dir


def _release(local_dir: Path) -> None:
    import shutil

    _ALIASES.pop(str(local_dir), None)
    shutil.rmtree(local_dir.parent, ignore_errors=True)


@contextmanager
def downloaded(url: str):
    """A local copy of the stage directory at ``url`` (removed afterwards)."""
    from mmcli.errors import ArtifactError, SystemIOError

    local_dir = _staging(url)
    try:
        try:
            _get_dir(url, local_dir)
        except FileNotFoundError:
            raise ArtifactError(f"{url}/meta.json does not exist, so {url} is not a complete "
                                "mmcli stage directory", "check the URL, or re-run the stage "
                                "that writes it") from None
        except OSError as exc:
            raise SystemIOError(f"cannot download {url}: {exc}",
                                "check the URL, the credentials and the fsspec back-end") from None
        yield local_dir
    finally:
        _release(local_dir)


@_plain_errors
def _get_dir(url: str, local_dir: Path) -> None:
    fs, root = _fs(url)
    root = root.rstrip("/")
    fs.info(f"{root}/meta.json")  # FileNotFoundError: not a (complete) stage directory
    for path in fs.find(root):
        rel = path[len(root):].lstrip("/")
        target = local_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(target))


@contextmanager
def uploaded(url: str):
    """A local directory to build the stage output in; uploaded to ``url`` when the block
    succeeds (nothing is uploaded when it fails, so the old output stays as it was).

    A complete earlier output at ``url`` is downloaded into it first, so that the stage can
    reuse it as it does locally (preprocess copies the arrays of unchanged media, extract
    keeps its fitted state and unchanged rows) and an identical result is not uploaded again.
    """
    from mmcli.errors import SystemIOError

    local_dir = _staging(url)
    try:
        try:
            _get_dir(url, local_dir)
        except OSError:  # none there (FileNotFoundError), or unreadable: start from scratch
            import shutil

            shutil.rmtree(local_dir, ignore_errors=True)
        yield local_dir
        try:
            _put_dir(local_dir, url)
        except OSError as exc:
            raise SystemIOError(f"cannot upload the output to {url}: {exc}",
                                "check the URL and the credentials, then re-run; the "
                                "output there is incomplete until then (no meta.json)") from None
    finally:
        _release(local_dir)


@_plain_errors
def _put_dir(local_dir: Path, url: str) -> None:
    fs, root = _fs(url)
    root = root.rstrip("/")
    meta = local_dir / "meta.json"
    remote_meta = f"{root}/meta.json"
    if fs.exists(remote_meta):
        if fs.cat_file(remote_meta) == meta.read_bytes():
            return  # the same output: not rewritten
        fs.rm(remote_meta)  # from here on the remote directory looks incomplete
    files = {str(p.relative_to(local_dir)).replace(os.sep, "/"): p
             for p in sorted(local_dir.rglob("*")) if p.is_file()}
    if fs.exists(root):
        for path in fs.find(root):
            if path[len(root):].lstrip("/") not in files:
                fs.rm(path)
    for rel, path in files.items():
        if rel != "meta.json":
            fs.put_file(str(path), f"{root}/{rel}")
    fs.put_file(str(meta), remote_meta)

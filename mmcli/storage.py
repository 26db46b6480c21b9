"""Manifests and media on any fsspec filesystem (``s3://``, ``gs://``, ``http://``, ...).

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

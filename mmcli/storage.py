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
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(location).path))
    return location if is_url(location) else Path(location)


def parent(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[0]


def join(base, value: str):
    """``value`` (a path or URL from a manifest) resolved against the manifest's folder."""
    if is_url(value) or value.startswith("file://"):
        return local(value)
    if is_url(base):
        if value.startswith("/"):
            return Path(value)
        return f"{base.rstrip('/')}/{value}"
    p = Path(value)
    return p if p.is_absolute() else Path(base) / p


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


def read_bytes(url: str) -> bytes:
    fs, path = _fs(url)
    with fs.open(path, "rb") as f:
        return f.read()


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
    except (OSError, FileNotFoundError, ValueError):
        return "missing"
    version = next((str(info[k]) for k in ("ETag", "etag", "md5Hash", "generation", "mtime",
                                           "LastModified", "last_modified", "created")
                    if info.get(k) is not None), "")
    return f"{info.get('size')}\0{version}"


@contextmanager
def fetched(url: str):
    """A local temporary copy of the remote file ``url``, removed afterwards.

    Raises :class:`FileNotFoundError` or :class:`OSError` naming the URL."""
    fs, path = _fs(url)
    suffix = os.path.splitext(path)[1][:16]
    fd, tmp = tempfile.mkstemp(prefix="mmcli-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out, fs.open(path, "rb") as src:
            while block := src.read(1 << 20):
                out.write(block)
        yield Path(tmp)
    finally:
        os.unlink(tmp)

"""One exception hierarchy; the CLI maps each class to a documented exit code.

Every error carries a one-line message that names the file, row or option at fault, and a
hint that says how to fix it.
"""

from __future__ import annotations

import errno


class MmcliError(Exception):
    """Base class of every error mmcli reports to a user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(MmcliError):
    """A bad option, config file or config value."""

    exit_code = 2


class DataError(MmcliError):
    """A manifest or its media cannot be used: unreadable, empty, duplicate ids, too many
    failures."""

    exit_code = 3


class ArtifactError(MmcliError):
    """A stage directory is missing, of the wrong kind, of an unknown schema, or modified."""

    exit_code = 4


class SystemIOError(MmcliError):
    """The operating system refused a read or write: disk full, permission denied, read-only
    file system, file too large, too many open files..."""

    exit_code = 5


#: errno -> (what happened, how to fix it), for :func:`from_os_error`
_OS_ERRORS = {
    errno.ENOSPC: ("no space left on device", "free some disk space or write -o elsewhere"),
    getattr(errno, "EDQUOT", -1): ("disk quota exceeded",
                                   "free some space or write -o elsewhere"),
    errno.EFBIG: ("file too large for this file system or process limit (ulimit -f)",
                  "write -o to another file system or raise the limit"),
    errno.EACCES: ("permission denied", "check the permissions, or write -o elsewhere"),
    errno.EPERM: ("operation not permitted", "check the permissions, or write -o elsewhere"),
    errno.EROFS: ("read-only file system", "write -o to a writable location"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) or use fewer --jobs"),
    errno.ENAMETOOLONG: ("file name too long", "use shorter paths or column names"),
    errno.EIO: ("input/output error (a failing disk or network file system?)",
                "check the device, then re-run"),
}


def from_os_error(exc: OSError) -> SystemIOError:
    """A one-line :class:`SystemIOError` for an ``OSError``, naming the file and the fix."""
    what, hint = _OS_ERRORS.get(exc.errno, (exc.strerror or str(exc) or type(exc).__name__,
                                            "check the file and the disk, then re-run"))
    where = f": {exc.filename}" if exc.filename else ""
    if exc.filename2:
        where += f" -> {exc.filename2}"
    return SystemIOError(f"{what}{where}", hint)


class Interrupted(MmcliError):
    exit_code = 130


EXIT_CODES = {
    0: "success",
    1: "internal error (a bug: please report it with MMCLI_DEBUG=1 output)",
    UsageError.exit_code: "usage error: bad option, config file or config value",
    DataError.exit_code: "data error: manifest or media unusable, or too many items failed",
    ArtifactError.exit_code: "artifact error: missing, wrong-kind, unknown-schema or modified "
    "stage directory",
    SystemIOError.exit_code: "I/O error: the system refused a read or write (disk full, "
    "permission denied, read-only file system); nothing half-written is left behind",
    6: "partial success (with --strict): the output is complete but items were left out",
    Interrupted.exit_code: "interrupted (Ctrl-C); nothing half-written is left behind",
}

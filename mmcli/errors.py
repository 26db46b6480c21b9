"""One exception hierarchy; the CLI maps each class to a documented exit code.

Every error carries a one-line message that names the file, row or option at fault, and a
hint that says how to fix it.
"""

from __future__ import annotations


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


class Interrupted(MmcliError):
    exit_code = 130


EXIT_CODES = {
    0: "success",
    1: "internal error (a bug: please report it with MMCLI_DEBUG=1 output)",
    UsageError.exit_code: "usage error: bad option, config file or config value",
    DataError.exit_code: "data error: manifest or media unusable, or too many items failed",
    ArtifactError.exit_code: "artifact error: missing, wrong-kind, unknown-schema or modified "
    "stage directory",
    Interrupted.exit_code: "interrupted (Ctrl-C); nothing half-written is left behind",
}

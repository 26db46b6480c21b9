"""The one place where errors become exit codes (see mmcli.errors.EXIT_CODES)."""

from __future__ import annotations

import functools
import os
import traceback

import typer

from mmcli.cli import console
from mmcli.errors import MmcliError, SystemIOError, from_os_error


def handle_errors(fn):
    """Run a command; an error becomes one line on stderr and its documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except MmcliError as exc:
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # disk full, permission denied... (not a bug: exit 5)
            if os.environ.get("MMCLI_DEBUG"):
                traceback.print_exc()
            console.error(str(from_os_error(exc)))
            raise typer.Exit(SystemIOError.exit_code) from None
        except KeyboardInterrupt:
            console.error("interrupted; no partial output was left behind")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: one line, the traceback only on request
            if os.environ.get("MMCLI_DEBUG"):
                traceback.print_exc()
            first = str(exc).splitlines()[0] if str(exc) else ""
            console.error(f"internal error: {type(exc).__name__}: {first} "
                          "(re-run with MMCLI_DEBUG=1 for the traceback and please report it)")
            raise typer.Exit(1) from None

    return wrapper

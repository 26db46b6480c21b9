"""Dask worker plugins that crash workers the way real failures do (for the executor tests).

Both replace, inside each worker process, the image decoder the preprocess stage calls with
one that kills the whole process (``os._exit``: no exception, no clean-up), as a segfault in a
decoder or the kernel's OOM killer would:

* :class:`KillOnce` kills the first worker to decode its ``after``-th image, once per
  ``marker`` file (a worker lost mid-stage; the chunk must be retried elsewhere);
* :class:`PoisonImage` kills any worker that decodes a file whose name contains ``needle``
  (a poison item; it must fail alone, recorded like any bad item).

:class:`RemoteWorker` makes a local worker behave like one on another machine.
"""

from __future__ import annotations

import os

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # dask is optional; these plugins are only used with it
    WorkerPlugin = object  # type: ignore[assignment,misc]


def _patch_decoder(should_die) -> None:
    import importlib

    # the image kind's decoder, which preprocess calls through the kind object
    stage = importlib.import_module("mmcli.kinds.image")
    decode = stage.load_image

    def crashing(path, *args, **kwargs):
        if should_die(str(path)):
            os._exit(70)
        return decode(path, *args, **kwargs)

    stage.load_image = crashing


class KillOnce(WorkerPlugin):
    def __init__(self, marker: str, after: int = 10):
        self.marker = marker
        self.after = after

    def setup(self, worker) -> None:
        seen = [0]

        def should_die(path: str) -> bool:
            seen[0] += 1
            if seen[0] < self.after:
                return False
            try:  # exactly one death per marker, whichever worker gets there first
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return False
            return True

        _patch_decoder(should_die)


class PoisonImage(WorkerPlugin):
    def __init__(self, needle: str):
        self.needle = needle

    def setup(self, worker) -> None:
        _patch_decoder(lambda path: self.needle in os.path.basename(path))


class RemoteWorker(WorkerPlugin):
    """A worker as on another machine: another working directory, and no access to the
    driver's artifact directories (opening a preprocessed directory in extract fails)."""

    def __init__(self, cwd: str):
        self.cwd = cwd

    def setup(self, worker) -> None:
        import importlib

        os.chdir(self.cwd)
        stage = importlib.import_module("mmcli.stages.extract")

        def unreachable(directory, *args, **kwargs):
            raise OSError(f"{directory} is on the driver's disk, not on this worker")

        stage.PreprocessedData = unreachable

"""Set-up of the Dask workers of a local cluster that mmcli starts (imported only with dask)."""

from __future__ import annotations

import signal

from distributed.diagnostics.plugin import WorkerPlugin


class IgnoreInterrupt(WorkerPlugin):
    """Ctrl-C reaches the whole process group, the local cluster's worker processes included;
    the command handles it (exit 130, temporary output removed, cluster closed), so workers
    must not print their own KeyboardInterrupt tracebacks."""

    name = "mmcli-ignore-interrupt"

    def setup(self, worker) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

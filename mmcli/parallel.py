"""Ordered, bounded parallel map over chunks, on a local process pool or a Dask cluster.

Results come back in task order, so output is identical whatever the number of workers or the
executor; at most ``4 * workers`` chunks are in flight, so memory does not grow with the
dataset. The executor is chosen by :class:`Runtime` (``--jobs``, ``--executor``,
``--scheduler``), which never changes a stage's output (see docs/scaling.md).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mmcli.config import RUNTIME_KEYS  # noqa: F401 - re-exported
from mmcli.errors import SystemIOError, UsageError

EXECUTORS = ("local", "dask")
#: how long to try to reach a Dask scheduler
CONNECT_TIMEOUT = "10s"


@dataclass(frozen=True)
class Runtime:
    """How the item-parallel stages run their chunks.

    ``jobs``: worker processes (0: all cores); with ``executor="dask"`` and no ``scheduler``,
    the size of the local Dask cluster started for the run. ``scheduler``: the address of a
    running Dask scheduler (``tcp://HOST:8786``).
    """

    jobs: int = 0
    executor: str = "local"
    scheduler: str | None = None

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise UsageError(f"executor is {self.executor!r}", "use 'local' or 'dask'")
        if self.scheduler and self.executor != "dask":
            raise UsageError(f"a scheduler ({self.scheduler}) was given with executor "
                             f"{self.executor!r}", "add --executor dask")


def runtime_of(config: Any) -> Runtime:
    """The :class:`Runtime` of a stage config (its ``jobs``, ``executor``, ``scheduler``)."""
    return Runtime(getattr(config, "jobs", 0) or 0, getattr(config, "executor", "local"),
                   getattr(config, "scheduler", None) or None)


def resolve_jobs(jobs: int) -> int:
    if jobs and jobs > 0:
        return jobs
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Isolate:
    """What to do with a chunk that keeps killing the worker running it (a decoder crash).

    The chunk's items are retried one at a time (``split``); an item that still kills its
    worker gets ``lost(item_task, reason)`` as its result, and the chunk's result is the
    concatenation of its items' results (results must be lists).
    """

    split: Callable[[Any], list]
    lost: Callable[[Any, str], list]


def ordered_map(fn: Callable[[Any], Any], tasks: list, jobs: int | Runtime,
                initializer: Callable | None = None, initargs: tuple = (), *,
                ship: Callable[[Any], Any] | None = None,
                isolate: Isolate | None = None) -> Iterator[Any]:
    """Yield ``fn(task)`` for each task, in order, on the workers ``jobs`` says.

    ``initializer(*initargs)`` runs once in each worker before its first task. ``ship``, for
    workers that may not see this machine's files (a Dask cluster at a scheduler address),
    turns a task into one that carries its input data; it runs here, just before the task is
    sent. ``isolate``
    handles chunks that crash their workers (Dask retries a chunk whose worker died; one that
    keeps killing workers is retried item by item).
    """
    runtime = jobs if isinstance(jobs, Runtime) else Runtime(jobs)
    if runtime.executor == "dask" and tasks:
        yield from _dask_map(fn, tasks, runtime, initializer, initargs, ship, isolate)
        return
    # no more workers than tasks; with one (or one task, or none) they run in this process
    with worker_pool(max(1, min(resolve_jobs(runtime.jobs), len(tasks))), initializer,
                     initargs) as run:
        yield from run(fn, tasks)


@contextmanager
def worker_pool(jobs: int, initializer: Callable | None = None,
                initargs: tuple = ()) -> Iterator[Callable]:
    """One pool of ``jobs`` local workers kept for several maps: yields ``map(fn, tasks)``,
    which yields ``fn(task)`` for each task in order, like :func:`ordered_map`.

    For work that comes in rounds, each decided by the results of the one before (model
    selection's racing): the workers are forked and ``initializer(*initargs)`` runs in each
    once, instead of once per round. One job runs every map in this process."""
    jobs = resolve_jobs(jobs)
    if jobs <= 1:
        with _in_process_worker():
            if initializer is not None:
                initializer(*initargs)
            yield lambda fn, tasks: (fn(task) for task in tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = _context(multiprocessing)
    with _one_thread_per_worker(), _without_main(), ProcessPoolExecutor(
            jobs, mp_context=ctx, initializer=_init_worker,
            initargs=(initializer, initargs)) as pool:
        yield lambda fn, tasks: _bounded(lambda task: pool.submit(fn, task), tasks, 4 * jobs,
                                         lambda future, task: future.result())


#: every dict made by :func:`worker_state`
_WORKER_STATES: list[dict] = []


def worker_state() -> dict:
    """A module-level dict for what a worker initialiser sets up (the plan, open files).

    In a worker process it lives as long as the worker. With one worker the initialiser runs
    in the caller's process, and :func:`ordered_map` empties the dicts it filled when the map
    ends, so nothing of one stage outlives it in a program that calls several."""
    state: dict = {}
    _WORKER_STATES.append(state)
    return state


@contextmanager
def _in_process_worker():
    """Run a map in this process: the worker states are emptied when it ends (maps do not
    nest, so none is in use then)."""
    try:
        yield
    finally:
        for state in _WORKER_STATES:
            state.clear()


def _bounded(submit: Callable, tasks: Iterable, window: int, result: Callable,
             full: Callable[[], bool] | None = None) -> Iterator[Any]:
    """Submit ``tasks`` keeping at most ``window`` in flight, and fewer while ``full()`` says
    the tasks in flight hold enough data (at least one always runs); yield results in order."""
    pending: deque = deque()
    it = iter(tasks)
    more = True
    while True:
        while more and len(pending) < window and not (pending and full is not None and full()):
            task = next(it, _END)
            if task is _END:
                more = False
                break
            pending.append((submit(task), task))
        if not pending:
            return
        yield result(*pending.popleft())


_END = object()
#: bytes of input data that chunks sent to a Dask cluster may hold in flight (extract ships
#: preprocessed arrays with its tasks: 128 clips of 30 s are 245 MB)
SHIP_BUDGET = 512 * 2**20


# --- Dask ------------------------------------------------------------------------------------

#: Dask clients (and the local clusters this process started) by scheduler address or local
#: cluster size: reused by every stage of the process (``mmcli run``, predict's preprocess +
#: extract) and closed at exit
_CLUSTERS: dict[Any, tuple] = {}


def _dask_map(fn, tasks, runtime: Runtime, initializer, initargs, ship, isolate):
    import uuid

    from distributed import KilledWorker

    client = _dask_client(runtime)
    workers = max(1, sum(client.nthreads().values()))
    key = uuid.uuid4().hex  # this map's worker set-up, run once per worker process
    # the set-up as a task (not scattered data): when every worker holding it has died, the
    # scheduler recomputes it instead of cancelling the chunks that need it
    with warnings.catch_warnings():  # "large object in the task graph": it is sent once
        warnings.simplefilter("ignore")
        setup = client.submit(_identity, (initializer, initargs), pure=False)

    # a local cluster's workers see this machine's files: they read their input themselves
    carry = ship if runtime.scheduler else None

    shipped: dict = {}  # future key -> bytes of data it carries

    def submit(task):
        payload = carry(task) if carry is not None else task
        with warnings.catch_warnings():  # "large graph": a chunk's data travel with its task
            warnings.simplefilter("ignore")
            future = client.submit(_dask_call, fn, key, setup, payload, pure=False)
        if carry is not None:
            shipped[future.key] = _nbytes(payload)
        return future

    def full() -> bool:
        return sum(shipped.values()) >= SHIP_BUDGET

    def result(future, task):
        shipped.pop(future.key, None)
        try:
            return future.result()
        except CancelledError as exc:  # e.g. the scheduler restarted or went away
            raise SystemIOError(f"the Dask cluster dropped a chunk ({exc})",
                                "check the scheduler; re-run the command: completed chunks "
                                "are kept and resumed") from None
        except KilledWorker as exc:
            if isolate is None:
                raise SystemIOError(
                    f"a chunk killed every Dask worker that ran it ({exc})",
                    "check the workers' logs; a decoder crashing on one item is the usual "
                    "cause") from None
            return _isolated(task, submit, isolate)

    try:
        with _without_main():
            yield from _bounded(submit, tasks, 4 * workers, result, full)
    except KeyboardInterrupt:
        # a call cut short leaves the client's event loop running callbacks that can fail
        # (a distributed bug logs a NameError traceback): the interrupt is the message
        import logging

        for name in ("tornado.application", "asyncio", "distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        raise


def _nbytes(payload) -> int:
    """Bytes of the numpy arrays in a task (what dominates a shipped chunk)."""
    items = payload if isinstance(payload, (tuple, list)) else (payload,)
    return sum(int(getattr(x, "nbytes", 0) or 0) for x in items)


def _isolated(task, submit, isolate: Isolate) -> list:
    """A chunk's result computed item by item; items that kill their worker are lost."""
    from distributed import KilledWorker

    out: list = []
    # one at a time, so that an item does not share a worker with another that kills it; an
    # item lost once is tried alone again (other chunks still running may have killed its
    # worker) before it is left out
    for item in isolate.split(task):
        for attempt in (1, 2):
            try:
                out += submit(item).result()
                break
            except KilledWorker:
                if attempt == 2:
                    out += isolate.lost(item, "a worker process died while decoding it (a "
                                              "crash in a decoder); retried on other workers")
    return out


_SETUP_LOCK = threading.Lock()
_SETUP_DONE: list = [None]


def _identity(x):
    return x


def _dask_call(fn, key: str, setup: tuple, task):
    """Run on a Dask worker: the map's set-up once per process, then ``fn(task)``.

    Set-up state is per process (module globals of the stage), so tasks of one process run one
    at a time; start workers with one thread each (``--nthreads 1``), as docs/scaling.md says.
    """
    with _SETUP_LOCK:
        if _SETUP_DONE[0] != key:
            initializer, initargs = setup
            if initializer is not None:
                initializer(*initargs)
            _SETUP_DONE[0] = key
        return fn(task)


def _worker_versions() -> dict[str, str]:
    from mmcli.artifacts import library_versions

    return library_versions()


def connect(runtime: Runtime) -> None:
    """Check ``runtime`` and, for Dask, connect now (stages call it before any work, so a
    wrong scheduler address fails at once, not after fitting)."""
    if runtime.executor == "dask":
        _dask_client(runtime)


def _dask_client(runtime: Runtime):
    """A client of the scheduler ``runtime.scheduler``, or of a local cluster of
    ``runtime.jobs`` worker processes; one per process, closed at exit."""
    key = runtime.scheduler or resolve_jobs(runtime.jobs)
    if key in _CLUSTERS:
        return _CLUSTERS[key][1]
    import atexit

    try:
        import distributed
    except ImportError:
        raise UsageError("--executor dask needs dask.distributed, which is not installed",
                         "pip install 'mmcli[dask]' (or dask[distributed])") from None
    if runtime.scheduler:
        try:
            client = distributed.Client(runtime.scheduler, timeout=CONNECT_TIMEOUT,
                                        set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SystemIOError(
                f"cannot reach the Dask scheduler at {runtime.scheduler}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                "start it with `dask scheduler` and workers with `dask worker ADDRESS "
                "--nthreads 1`, or drop --scheduler to start a local cluster") from None
        try:
            _check_workers(client, runtime.scheduler)
        except BaseException:
            client.close()
            raise
        cluster = None
    else:
        import logging

        for other in [k for k, (c, _) in _CLUSTERS.items() if c is not None]:
            _close(other)  # one local cluster at a time (a stage asked for another size)
        env = {k: os.environ.get(k, "1") for k in _THREAD_VARIABLES}
        with _without_main():
            cluster = distributed.LocalCluster(
                n_workers=key, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.ERROR, env=env)
        client = distributed.Client(cluster, set_as_default=False)
        from mmcli.dask_worker import IgnoreInterrupt

        client.register_plugin(IgnoreInterrupt())
    _CLUSTERS[key] = (cluster, client)
    atexit.register(_close, key)
    return client


def _close(key) -> None:
    cluster, client = _CLUSTERS.pop(key, (None, None))
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def _check_workers(client, address: str) -> None:
    from mmcli.artifacts import library_versions

    try:
        versions = client.run(_worker_versions)
    except Exception as exc:  # noqa: BLE001 - e.g. ModuleNotFoundError raised on a worker
        raise UsageError(f"the Dask workers of {address} cannot run mmcli: {exc}",
                         "install mmcli (the same version) where the workers run") from None
    if not versions:
        raise SystemIOError(f"the Dask scheduler at {address} has no workers",
                            "start some with `dask worker ADDRESS --nthreads 1`")
    # the same libraries everywhere, or decoded pixels and features could differ by worker
    mine = library_versions()
    for worker, theirs in sorted(versions.items()):
        for lib, version in mine.items():
            if theirs.get(lib) != version:
                raise UsageError(f"Dask worker {worker} has {lib} {theirs.get(lib)}, this "
                                 f"machine {version}",
                                 "install the same versions of mmcli and its libraries on "
                                 "every worker (e.g. the same image or lock file)")


def start_workers(runtime: Runtime | int, modules: tuple[str, ...] = ()) -> None:
    """Start the local executor's fork server now, importing ``modules`` in it.

    Called by a stage before it fits, so that the server imports the heavy libraries its
    workers need (librosa and scipy.signal take 2.5 s) on the other core while this process
    fits; workers forked later start with them imported. Nothing happens for one worker, for
    Dask, or where there is no fork server (then workers import on their own, as before).
    """
    runtime = runtime if isinstance(runtime, Runtime) else Runtime(runtime)
    if runtime.executor != "local" or resolve_jobs(runtime.jobs) <= 1:
        return
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    _context(multiprocessing, modules)
    with _one_thread_per_worker(), _without_main():
        forkserver.ensure_running()


def _context(multiprocessing, modules: tuple[str, ...] = ()):
    """A fork server where there is one, else spawn.

    Workers never fork the caller itself (its torch, gensim or BLAS threads could leave locks
    held in the child). The fork server is a clean single-threaded process that imports the
    stage modules once, so workers start fast, and it does not import the caller's
    ``__main__``, so a script or notebook without an ``if __name__ == "__main__"`` guard can
    call the stages (plain spawn would re-run such a script in every worker).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # (and the pool's worker loop, which every worker would import on its own)
        ctx.set_forkserver_preload(["mmcli.stages", "concurrent.futures.process", *modules])
        return ctx
    return multiprocessing.get_context("spawn")


@contextmanager
def _without_main():
    """Keep workers from importing the caller's ``__main__``.

    multiprocessing re-imports the parent's main script in every worker it starts (spawn and
    fork server alike), which re-runs a script without an ``if __name__ == "__main__"`` guard
    and fails for code read from stdin. Workers here run only mmcli functions, so while the
    pool starts them the main module is made to look interactive (no file, no spec).
    """
    import sys

    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main and k in main.__dict__}
    if main is not None:
        main.__dict__.pop("__file__", None)
        main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


#: thread pools of numeric libraries; each worker process gets one thread in each, so that
#: N workers use N cores instead of fighting over them (measured: MFCC extraction with 2
#: workers took 17 s with default threading and 6.4 s with one thread each)
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextmanager
def _one_thread_per_worker():
    """Spawned workers inherit the environment: set the thread-pool sizes to 1 while the pool
    starts them (values the user set are kept)."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARIABLES}
    for key in _THREAD_VARIABLES:
        os.environ.setdefault(key, "1")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _init_worker(initializer: Callable | None, initargs: tuple) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it (exit 130, temporary
    # output removed); workers must not print their own KeyboardInterrupt tracebacks.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    if initializer is not None:
        initializer(*initargs)


#: prctl option: the signal the kernel sends this process when its parent dies (Linux)
PR_SET_PDEATHSIG = 1


def _exit_with_parent() -> None:
    """Make this worker die with the mmcli process that started its pool, however that dies.

    A worker waits for tasks on a queue whose write end it holds itself, so it never sees
    the queue close, and it held the fork server's "parent alive" pipe, which the fork server
    watches to exit when its client dies: a ``kill -9`` of mmcli (``timeout -s KILL``, the
    OOM killer) left the fork server and every worker waiting forever. Three mechanisms:

    - the worker closes its copy of the "parent alive" pipe, so the fork server exits as soon
      as mmcli's copy closes, i.e. when mmcli dies (a worker that started processes with the
      fork server method would get a fork server of its own);
    - Linux: the worker asks the kernel for SIGKILL when its parent, the fork server, dies
      (``prctl(PR_SET_PDEATHSIG)``). That fires when the parent *thread* ends; the fork
      server is single-threaded, so it means the fork server's death. Workers then go at
      once, even in the middle of a C call. (Not for spawned workers, whose parent thread is
      some thread of mmcli.)
    - everywhere (the only one on macOS and the BSDs, which have no prctl): a daemon thread
      waits on the pipe multiprocessing keeps between the worker and mmcli
      (``parent_process().sentinel``) and ends the worker when it closes. A worker busy in a
      C call that holds the GIL goes when the call returns.
    """
    import multiprocessing
    import sys
    from multiprocessing import forkserver

    server = forkserver._forkserver
    # a private attribute (Python 3.8-3.14): without it, the thread below still does the job
    if getattr(server, "_forkserver_alive_fd", None) is not None:  # started by a fork server
        if sys.platform.startswith("linux"):
            _kill_me_when_parent_dies()
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        threading.Thread(target=_exit_when_closed, args=(parent.sentinel,), daemon=True,
                         name="mmcli-parent-watch").start()


def _kill_me_when_parent_dies() -> None:
    """``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux); does nothing where it fails."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no libc prctl (a static or unusual build)
        pass


def _exit_when_closed(sentinel: int) -> None:
    from multiprocessing.connection import wait

    # readable: EOF, the pipe's only writer, the process that started the pool, is gone
    wait([sentinel])
    os._exit(1)


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


@contextmanager
def one_thread(user_api: str | None = "blas"):
    """One thread in this process's numeric thread pools for the block's duration, as the
    workers have (:data:`_THREAD_VARIABLES`): ``user_api`` "blas" (numpy's and scipy's
    OpenBLAS or MKL; torch keeps its own intra-op threads), or None for every pool OpenMP
    included. The main process's own fits and feature products are many small matrix
    products, for which a thread pool per product is a loss on a 2-core machine and a large
    one when something else runs (train's refit of late_decision on 2,083 x 5,150 features:
    8.6 s with one thread, 83 s with two; eval's mel projections 20x; docs/performance.md);
    one thread also gives the same bytes on a machine with any number of cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api=user_api):
        yield

"""Where per-image work runs: this machine's processes, or a Ray cluster (Ray Data).

Slicing and augmentation cut their work into one job per image, each a pure function
of (image record, its annotation columns, parameters) that returns plain data. This
module is their one runner: :func:`run_local` runs the jobs here or in a process pool,
:func:`run_on_ray` runs the very same function over a Ray Dataset of jobs, so a cluster
gives the same results, which the caller then assembles in image order exactly as it
does for the local pool.

Ray is an optional extra (``pip install 'cocokit[ray]'``). Failures: a worker that dies
(killed, out of memory) has its task retried by Ray Data (its default for system
failures); an exception
raised by the job is retried in place ``retries`` times and then comes back as a
:class:`JobFailure`, so one bad image never sinks the whole run and the caller can name
it. An :class:`~cocokit.errors.OutputError` (the output disk is full, read-only, not
writable) is a failure of the run, not of a job: it is never retried and stops the run,
here and on Ray.

Stopping: when the caller stops taking results (an error, Ctrl-C, or the CLI's
:class:`~cocokit.errors.Interrupted` on SIGTERM/SIGHUP), the local pool's pending jobs
are cancelled and its workers terminated before the error goes on, so nothing writes
into an output that the caller's cleanup is removing. Workers ignore SIGINT (the parent
handles Ctrl-C for the whole process group) and die with their parent: on Linux through
``prctl(PR_SET_PDEATHSIG)``, elsewhere through a thread that watches the parent's pid,
so a SIGKILL of the main process leaves no worker running. On Ray, an interrupted run
shuts down the local cluster it started (a cluster it joined is left running, with
its tasks of this run cancelled by the end of the driver).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import dataclasses
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Literal, TypeVar

from .errors import InputError, MissingDependency, OutputError

__all__ = [
    "ATTEMPTS",
    "Engine",
    "JobFailure",
    "die_with_parent",
    "pool_context",
    "ray_available",
    "retry_io",
    "run_local",
    "run_on_ray",
    "stop_pool",
]

Engine = Literal["local", "ray"]
T = TypeVar("T")

#: tries per image when reading or writing fails for a passing reason
ATTEMPTS = 3


def retry_io(fn: Callable[..., T], *args: Any, file: str) -> T:
    """``fn(*args)``, tried again when it raises an ``OSError`` (a dropped connection to
    object storage, a full disk): a passing failure. An :class:`InputError` (a missing
    or undecodable image) is not passing and goes straight through. After
    :data:`ATTEMPTS` failures an :class:`InputError` naming ``file`` says what the
    last one was. An :class:`~cocokit.errors.OutputError` is not passing either (a
    full disk stays full): it goes straight through, and stops the run."""
    error: OSError | None = None
    for _ in range(ATTEMPTS):
        try:
            return fn(*args)
        except OutputError:
            raise
        except OSError as e:
            error = e
    raise InputError(file, None,
                     f"failed {ATTEMPTS} times, last: {type(error).__name__}: {error}")


@dataclasses.dataclass(frozen=True)
class JobFailure:
    """A job that raised on every attempt: its position and the last error."""

    index: int
    error: str


def pool_context() -> Any:
    """How to start workers: ``fork`` where it is safe, else ``forkserver``/``spawn``.

    Forking is the fastest start (workers inherit the imported modules: about 15 ms
    against about 0.2 s for a fresh interpreter that imports numpy, shapely and Pillow)
    and needs no ``if __name__ == "__main__"`` guard in the caller's script. It is only
    safe on Linux and while this process runs a single thread; otherwise workers start
    from a fork server (Linux) or a fresh interpreter (macOS, Windows).
    """
    methods = multiprocessing.get_all_start_methods()
    linux = sys.platform.startswith("linux")
    if linux and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if linux and "forkserver" in methods:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def run_local(
    fn: Callable[..., T],
    jobs: Iterable[Any],
    *args: Any,
    workers: int = 1,
    initializer: Callable[[], None] | None = None,
    started: Callable[[], None] | None = None,
) -> Generator[T, None, None]:
    """``fn(job, *args)`` for each job, yielded in job order, on this machine.

    One worker runs the jobs here, one after the other. More run them in a process pool
    (:func:`pool_context`; ``initializer`` runs once in each worker) with at most two
    jobs per worker in flight, so ``jobs`` may be a lazy iterable of any length and
    memory stays bounded. ``started`` is called once, when every worker has been started:
    a caller may start threads (a progress bar) or give native thread pools back only
    then, as a forked worker must not inherit them. An exception raised by a job comes
    through here; jobs still pending are cancelled.

    A caller that may stop early must close the iterator before cleaning up after
    itself (``with contextlib.closing(run_local(...)) as results``): closing it, like an
    error raised here, cancels what is pending and terminates the workers, so none of
    them goes on writing.
    """
    if workers <= 1:
        if started is not None:
            started()
        for job in jobs:
            yield fn(job, *args)
        return
    pending: collections.deque[Future[T]] = collections.deque()
    ctx = pool_context()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_start,
                             initargs=(os.getpid(), ctx.get_start_method() != "forkserver",
                                       initializer)) as pool:
        try:
            for job in jobs:
                pending.append(pool.submit(fn, job, *args))
                if len(pending) >= 2 * workers:
                    if started is not None:
                        started()
                        started = None
                    yield pending.popleft().result()
            if started is not None:
                started()
            while pending:
                yield pending.popleft().result()
        except BaseException:
            for f in pending:
                f.cancel()
            stop_pool(pool)
            raise


def stop_pool(pool: ProcessPoolExecutor, timeout: float = 5.0) -> None:
    """Cancel the pool's pending jobs and terminate its workers (SIGTERM, then SIGKILL
    after ``timeout`` seconds); returns when they are gone."""
    # the stdlib lists the workers only in a private attribute before Python 3.14
    terminate = getattr(pool, "terminate_workers", None)
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    if callable(terminate):
        with contextlib.suppress(Exception):
            terminate()
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)


_PR_SET_PDEATHSIG = 1


def _worker_start(parent: int, direct: bool, initializer: Callable[[], None] | None) -> None:
    """Set up a pool worker: SIGINT ignored (the parent stops the pool), SIGTERM and
    SIGHUP back to their default (die), death with the parent (:func:`die_with_parent`);
    then the caller's ``initializer``. ``direct``: the worker is a child of ``parent``
    (not of a fork server)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    die_with_parent(parent if direct else None)
    if initializer is not None:
        initializer()


def die_with_parent(parent: int | None = None) -> None:
    """Make this process end when its parent process does (``parent``: the pid it should
    have; None: whatever it has now). On Linux the kernel sends SIGTERM
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread polls the parent's pid
    every half second and exits the process when it changes."""
    expected = os.getppid() if parent is None else parent
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != expected:  # the parent died before the watch was set
        os._exit(1)
    if armed:
        return

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != expected:
                os._exit(1)

    threading.Thread(target=watch, name="cocokit-parent-watch", daemon=True).start()


def ray_available() -> bool:
    """Whether the optional Ray extra is installed."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependency("ray", "ray") from None
    return ray


def _apply(row: dict[str, Any], fn: Callable[..., Any], args: tuple[Any, ...],
           retries: int) -> dict[str, Any]:
    job = pickle.loads(row["job"])
    error = ""
    for _ in range(retries + 1):
        try:
            return {"k": row["k"], "result": pickle.dumps(fn(job, *args)), "error": "",
                    "fatal": b""}
        except OutputError as e:  # the output cannot be written: the run stops
            return {"k": row["k"], "result": b"", "error": str(e), "fatal": pickle.dumps(e)}
        except Exception as e:  # the job's own failure: try again, then report it
            error = f"{type(e).__name__}: {e}"
    return {"k": row["k"], "result": b"", "error": error, "fatal": b""}


def run_on_ray(
    fn: Callable[..., Any],
    jobs: Sequence[Any],
    *args: Any,
    address: str | None = None,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """``[fn(job, *args) for job in jobs]`` computed on a Ray cluster with Ray Data.

    ``address``: a running cluster (``ray://host:10001`` or ``auto``); by default the
    cluster this process is already connected to, else a local one started here with
    every core. ``fn`` and the jobs must be picklable and importable on the workers
    (cocokit installed there). Results come back in job order; a job that raised on
    every attempt comes back as a :class:`JobFailure`; an
    :class:`~cocokit.errors.OutputError` raised by a job is raised here. Interrupted
    (Ctrl-C, or SIGTERM/SIGHUP through the CLI), a cluster started here is shut down,
    which cancels its tasks.
    """
    ray = _ray()
    own = not ray.is_initialized()
    if own:
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # results are put back in job order below
    total = len(jobs)
    if not total:
        return []
    rows = [{"k": k, "job": pickle.dumps(job)} for k, job in enumerate(jobs)]
    # a block is one task, and on a small cluster each task costs the control plane
    # real CPU (measured on 2 CPUs: 32 blocks of a 100-image run took ~25 % longer than
    # 4); two blocks per CPU keep that low while a slow block can still be balanced
    blocks = min(total, max(1, int(ray.cluster_resources().get("CPU", 1)) * 2))
    mapped = ray.data.from_items(rows, override_num_blocks=blocks).map(
        _apply, fn_kwargs={"fn": fn, "args": args, "retries": retries})
    out: list[Any] = [None] * total
    done = 0
    try:
        for row in mapped.iter_rows():
            k = int(row["k"])
            if row["fatal"]:
                raise pickle.loads(row["fatal"])
            out[k] = JobFailure(k, row["error"]) if row["error"] else pickle.loads(row["result"])
            done += 1
            if progress:
                progress(done, total)
    except KeyboardInterrupt:
        if own:
            with contextlib.suppress(Exception):
                ray.shutdown()
        raise
    return out

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
it.
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Literal, TypeVar

from .errors import InputError, MissingDependency

__all__ = [
    "ATTEMPTS",
    "Engine",
    "JobFailure",
    "pool_context",
    "ray_available",
    "retry_io",
    "run_local",
    "run_on_ray",
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
    last one was."""
    error: OSError | None = None
    for _ in range(ATTEMPTS):
        try:
            return fn(*args)
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
) -> Iterator[T]:
    """``fn(job, *args)`` for each job, yielded in job order, on this machine.

    One worker runs the jobs here, one after the other. More run them in a process pool
    (:func:`pool_context`; ``initializer`` runs once in each worker) with at most two
    jobs per worker in flight, so ``jobs`` may be a lazy iterable of any length and
    memory stays bounded. ``started`` is called once, when every worker has been started:
    a caller may start threads (a progress bar) or give native thread pools back only
    then, as a forked worker must not inherit them. An exception raised by a job comes
    through here; jobs still pending are cancelled.
    """
    if workers <= 1:
        if started is not None:
            started()
        for job in jobs:
            yield fn(job, *args)
        return
    pending: collections.deque[Future[T]] = collections.deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(),
                             initializer=initializer) as pool:
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
            raise


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
            return {"k": row["k"], "result": pickle.dumps(fn(job, *args)), "error": ""}
        except Exception as e:  # the job's own failure: try again, then report it
            error = f"{type(e).__name__}: {e}"
    return {"k": row["k"], "result": b"", "error": error}


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
    every attempt comes back as a :class:`JobFailure`.
    """
    ray = _ray()
    if not ray.is_initialized():
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
    for row in mapped.iter_rows():
        k = int(row["k"])
        out[k] = JobFailure(k, row["error"]) if row["error"] else pickle.loads(row["result"])
        done += 1
        if progress:
            progress(done, total)
    return out

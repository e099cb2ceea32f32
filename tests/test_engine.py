"""The one local job runner (engine.run_local): order, bounded work in flight, errors."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cocokit.engine import retry_io, run_local
from cocokit.errors import OutputError

from ._faults import alive, descendants


def _square_and_pid(job: int, offset: int) -> tuple[int, int]:
    return job * job + offset, os.getpid()


def _fail_on_three(job: int) -> int:
    if job == 3:
        raise ValueError(f"job {job} is bad")
    return job


@pytest.mark.parametrize("workers", [1, 2])
def test_results_in_job_order_here_and_in_a_pool(workers: int) -> None:
    out = list(run_local(_square_and_pid, range(9), 1, workers=workers))
    assert [r for r, _ in out] == [k * k + 1 for k in range(9)]
    pids = {pid for _, pid in out}
    if workers == 1:
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids  # the work ran in the pool's processes


@pytest.mark.parametrize("workers", [1, 2])
def test_jobs_are_pulled_lazily_and_started_is_called_once(workers: int) -> None:
    pulled = []
    calls = []

    def jobs() -> Iterator[int]:
        for k in range(20):
            pulled.append(k)
            yield k

    it = run_local(_square_and_pid, jobs(), 0, workers=workers,
                   started=lambda: calls.append(len(pulled)))
    first = next(it)
    assert first[0] == 0
    # at most two jobs per worker are in flight before the first result comes back
    assert len(pulled) <= max(1, 2 * workers)
    assert len(calls) == 1
    rest = list(it)
    assert len(rest) == 19 and len(calls) == 1 and len(pulled) == 20


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_raises_here(workers: int) -> None:
    with pytest.raises(ValueError, match="job 3 is bad"):
        list(run_local(_fail_on_three, range(8), workers=workers))


# -- stopping: workers never outlive the run (issue 18) ------------------------------------


def _sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _signals_of_a_worker(_: int) -> tuple[object, object]:
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def _disk_full(job: int, calls: str) -> int:
    with open(calls, "a") as f:
        f.write("x")
    raise OutputError(f"/out/{job}.jpg", "cannot write: no space left on the device")


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def test_closing_the_results_terminates_the_workers_at_once() -> None:
    before = descendants(os.getpid())  # a fork server an earlier test started, say
    results = run_local(_sleep_then_pid, [0.0, 0.0, 60.0, 60.0, 60.0], workers=2)
    worker = next(results)
    # the fork server (a child of this process) is no worker; the workers it forks are
    # its children and carry its command line too
    workers = {p for p in descendants(os.getpid()) - before
               if not (b"forkserver" in Path(f"/proc/{p}/cmdline").read_bytes()
                       and _parent(p) == os.getpid())}
    assert worker in workers
    started = time.monotonic()
    results.close()
    assert time.monotonic() - started < 10  # not the 60 s the running jobs would take
    assert alive(workers) == set()


def test_workers_leave_ctrl_c_to_the_parent_and_die_on_sigterm() -> None:
    with contextlib.closing(run_local(_signals_of_a_worker, [0, 1], workers=2)) as results:
        sigint, sigterm = next(results)
    assert sigint == signal.SIG_IGN and sigterm == signal.SIG_DFL


@pytest.mark.parametrize("workers", [1, 2])
def test_an_output_error_stops_the_run_and_is_never_retried(tmp_path: Path,
                                                            workers: int) -> None:
    calls = tmp_path / "calls"
    with pytest.raises(OutputError, match="no space left"):
        list(run_local(retry_io_of_disk_full, [1], str(calls), workers=workers))
    assert calls.read_text() == "x"  # one attempt, not ATTEMPTS


def retry_io_of_disk_full(job: int, calls: str) -> int:
    return retry_io(_disk_full, job, calls, file=f"/in/{job}.jpg")

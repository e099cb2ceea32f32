"""The one local job runner (engine.run_local): order, bounded work in flight, errors."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cocokit.engine import run_local


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

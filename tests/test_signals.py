"""Signals: SIGTERM, SIGINT and SIGHUP stop a command cleanly (temporary files and
staging folders removed, workers stopped, the old output intact, one line, exit
128 + the signal), workers die with a SIGKILLed parent, and a rerun removes what a
SIGKILLed run left (and nothing else). Real ``cocokit`` processes, real signals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cocokit.cli import interrupted_line, signals_handled
from cocokit.errors import Interrupted
from cocokit.io.atomic import atomic_file
from cocokit.io.staging import staged

from ._faults import (
    PIPELINE_YAML,
    alive,
    big_coco,
    descendants,
    hidden,
    noise_images,
    run,
    start,
    tree,
    wait_for,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SIGNALS = [("SIGTERM", 143), ("SIGINT", 130), ("SIGHUP", 129)]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12,000-image COCO file (about 55 MB): its export writes long enough (a quarter
    of a second at least) to be interrupted while the temporary file is open."""
    return big_coco(tmp_path_factory.mktemp("big") / "big.json", 12000)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 noise JPEGs of 1200x900 and their COCO file (imgs.json beside imgs/)."""
    folder = tmp_path_factory.mktemp("photos") / "imgs"
    noise_images(folder, 20)
    return folder


def dead_pid() -> int:
    """The pid of a process that has ended."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# -- in-process: the handlers and the line ------------------------------------------------


@pytest.mark.parametrize(("name", "code"), SIGNALS)
def test_a_signal_raises_interrupted_with_the_shells_exit_code(name: str, code: int) -> None:
    signum = getattr(signal, name)
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as info, signals_handled() as caught:
        os.kill(os.getpid(), signum)
        for _ in range(1000):  # the handler runs between two bytecodes
            pass
    assert info.value.signum == signum and info.value.exit_code == code
    assert info.value.name == name and caught == [info.value]
    assert signal.getsignal(signum) == before  # the previous handler is back


@pytest.mark.parametrize(("untouched", "line"), [
    ([], "interrupted (SIGTERM)"),
    (["out.json"], "interrupted (SIGTERM): nothing written to out.json"),
    (["a.json", "tiles", "a.json"], "interrupted (SIGTERM): nothing written to a.json, tiles"),
])
def test_the_interrupted_line_names_what_was_left_as_it_was(untouched: list[str],
                                                             line: str) -> None:
    e = Interrupted(signal.SIGTERM)
    e.untouched.extend(untouched)
    assert interrupted_line(e) == line


def test_cleanup_names_the_outputs_left_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(Interrupted) as info:
        with staged(tmp_path / "tiles") as stage:
            (Path(stage.path) / "a.jpg").write_text("x")
            with atomic_file(target) as f:
                f.write(b"new")
                raise Interrupted(signal.SIGTERM)
    assert info.value.untouched == [str(target), str(tmp_path / "tiles")]
    assert target.read_text() == "old" and hidden(tmp_path) == []
    assert not (tmp_path / "tiles").exists()


# -- real processes ------------------------------------------------------------------------


def _interrupt(proc: subprocess.Popen[str], name: str, ready: object) -> tuple[int, str, set[int]]:
    """Wait until ``ready()``, note the process's children, send the signal; returns the
    exit code, stderr and the children noted."""
    reached = wait_for(lambda: proc.poll() is not None or ready(), 120)  # type: ignore[operator]
    assert reached and proc.poll() is None, (
        f"the run ended before the point to interrupt: {proc.returncode}, "
        f"{proc.communicate()[1] if proc.poll() is not None else ''}")
    kids = descendants(proc.pid)
    proc.send_signal(getattr(signal, name))
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err, kids


@pytest.mark.parametrize("stream", [False, True], ids=["loaded", "streamed"])
@pytest.mark.parametrize(("name", "code"), SIGNALS)
def test_a_signal_mid_export_leaves_the_old_output_and_no_temporary_file(
        big: Path, tmp_path: Path, name: str, code: int, stream: bool) -> None:
    out = tmp_path / "out.json"
    out.write_text('{"old": true}')
    proc = start("export", str(big), "-o", str(out), "-q",
                 "--stream" if stream else "--no-stream")
    rc, err, _ = _interrupt(proc, name, lambda: any(
        n.startswith(".out.json.") for n in os.listdir(tmp_path)))
    assert rc == code, err
    assert err.splitlines() == [f"interrupted ({name}): nothing written to {out}"]
    assert out.read_text() == '{"old": true}'
    assert hidden(tmp_path) == []


def _slice(photos: Path, out: Path) -> subprocess.Popen[str]:
    return start("slice", str(photos.with_suffix(".json")), "-i", str(photos), "-o", str(out),
                 "--size", "256", "--workers", "2", "-q")


def _augment(photos: Path, out: Path) -> subprocess.Popen[str]:
    pipeline = out.parent / "aug.yaml"
    pipeline.write_text(PIPELINE_YAML)
    return start("augment", str(photos.with_suffix(".json")), "-i", str(photos), "-o",
                 str(out), "-p", str(pipeline), "--copies", "3", "--workers", "2", "-q",
                 "--overwrite")


def _staging_has_images(folder: Path) -> bool:
    return any(p.name.startswith(".out.partial-") and any(p.rglob("*.jpg"))
               for p in folder.iterdir())


@pytest.mark.parametrize("command", ["slice", "augment"])
@pytest.mark.parametrize(("name", "code"), SIGNALS[:2])
def test_a_signal_mid_work_stops_the_workers_and_removes_the_staging(
        photos: Path, tmp_path: Path, command: str, name: str, code: int) -> None:
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    (out / "images" / "old.jpg").write_bytes(b"old image")
    (out / "annotations.json").write_text('{"old": true}')
    before = tree(out)
    proc = (_slice if command == "slice" else _augment)(photos, out)
    rc, err, kids = _interrupt(proc, name, lambda: _staging_has_images(tmp_path))
    assert rc == code, err
    assert err.splitlines() == [f"interrupted ({name}): nothing written to {out}"]
    assert len(kids) >= 2  # the pool was running
    assert alive(kids) == set()
    assert tree(out) == before
    assert [n for n in hidden(tmp_path) if n != ".aug.yaml"] == []


# -- SIGKILL: nothing can clean up; the workers die anyway, a rerun tidies -----------------


def test_workers_die_with_a_killed_parent_and_a_rerun_removes_its_staging(
        photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _slice(photos, out)
    rc, _, kids = _interrupt(proc, "SIGKILL", lambda: _staging_has_images(tmp_path))
    assert rc == -signal.SIGKILL
    assert len(kids) >= 2
    assert wait_for(lambda: not alive(kids), 10), f"orphaned workers: {alive(kids)}"
    left = hidden(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".out.partial-{proc.pid}-")
    # a live run's staging folder, an old-style name and another hidden folder stay
    keep = [f".out.partial-{os.getpid()}-0123abcd", ".out.partial-0123abcd", ".other"]
    for name in keep:
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.jpg").write_bytes(b"x")
    res = run("slice", str(photos.with_suffix(".json")), "-i", str(photos), "-o", str(out),
              "--size", "512", "--workers", "1", "-q")
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == [
        f"note: removed 1 leftover staging folder(s) of an interrupted run in {tmp_path}: "
        f"{left[0]}"]
    assert hidden(tmp_path) == sorted(keep)
    assert (out / "imgs.json").is_file()


def test_a_rerun_removes_the_temporary_file_of_a_killed_export_and_nothing_else(
        big: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = start("export", str(big), "-o", str(out), "-q")
    rc, _, _ = _interrupt(proc, "SIGKILL",
                          lambda: any(n.startswith(".out.json.") for n in os.listdir(tmp_path)))
    assert rc == -signal.SIGKILL
    left = hidden(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".out.json.{proc.pid}.")
    gone = f".out.json.{dead_pid()}.abcd1234.tmp"  # another dead writer's
    keep = [f".out.json.{os.getpid()}.abcd1234.tmp",  # a live writer's
            ".out.json.abcd1234.tmp",  # no pid in the name: not ours to judge
            f".other.json.{dead_pid()}.abcd1234.tmp"]  # another target's
    for name in [gone, *keep]:
        (tmp_path / name).write_bytes(b"partial")
    small = tmp_path / "small.json"
    shutil.copy(Path(__file__).parent / "data" / "tiny_coco_val2017.json", small)
    res = run("export", str(small), "-o", str(out), "-q")
    assert res.returncode == 0, res.stderr
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"note: removed 2 leftover temporary file(s) of an interrupted run "
                           f"in {tmp_path}: ")
    assert sorted(line.split(": ", 2)[2].split(", ")) == sorted([left[0], gone])
    assert hidden(tmp_path) == sorted(keep)
    assert out.is_file()

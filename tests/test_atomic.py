"""The one atomic writer: beside the target, fsync, rename; clear errors, nothing left."""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cocokit import InputError, OutputError, load
from cocokit.errors import LeftoversRemoved
from cocokit.io import atomic
from cocokit.io.atomic import atomic_file, atomic_write
from cocokit.io.coco import write_coco


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writes_and_replaces(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    atomic_write(out, [b"one", b"two"])
    assert out.read_bytes() == b"onetwo"
    atomic_write(out, iter([b"new"]))
    assert out.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a", [b"x"])
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("where", "code", "reason"),
    [
        ("replace", errno.EROFS, "read-only file system"),
        ("replace", errno.EACCES, "permission denied"),
        ("replace", errno.EPERM, "operation not permitted"),
        ("fsync", errno.ENOSPC, "no space left on the device"),
        ("fsync", errno.EDQUOT, "disk quota exceeded"),
        ("mkstemp", errno.EROFS, "read-only file system"),
        ("mkstemp", errno.EACCES, "permission denied"),
    ],
)
def test_os_errors_are_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      where: str, code: int, reason: str) -> None:
    out = tmp_path / "out.json"
    out.write_bytes(b"old")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    target = {"replace": (atomic.os, "replace"), "fsync": (atomic.os, "fsync"),
              "mkstemp": (atomic.tempfile, "mkstemp")}[where]
    monkeypatch.setattr(*target, fail)
    with pytest.raises(OutputError) as e:
        atomic_write(out, [b"new"])
    assert str(e.value) .startswith(f"{out}: ")
    assert reason in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, OSError) and isinstance(e.value, InputError)
    assert out.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_disk_full_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.json"

    class Full:
        def __init__(self, f: object) -> None:
            self.f = f

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *a: object) -> None:
            self.f.close()  # type: ignore[attr-defined]

        def write(self, b: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    real = atomic.os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
    with pytest.raises(OutputError, match="no space left"):
        atomic_write(out, [b"x"])
    assert not out.exists() and _leftovers(tmp_path) == []


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write(tmp_path / "nope" / "a.json", [b"x"])


def test_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="a FIFO"):
        atomic_write(fifo, [b"x"])
    assert fifo.is_fifo()
    assert _leftovers(tmp_path) == []


def test_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(OutputError, match="a symbolic link"):
        atomic_write(link, [b"x"])
    assert link.is_symlink() and real.read_bytes() == b"old"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="a symbolic link"):
        atomic_write(dangling, [b"x"])


def test_folder_and_device_and_socket_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="a folder"):
        atomic_write(tmp_path / "d", [b"x"])
    with pytest.raises(OutputError, match="a device"):
        atomic_write("/dev/null", [b"x"])
    sock_path = tmp_path / "s"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        with pytest.raises(OutputError, match="a socket"):
            atomic_write(sock_path, [b"x"])
    finally:
        s.close()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_temp_removed_when_the_chunks_fail(tmp_path: Path, error: BaseException) -> None:
    out = tmp_path / "out.json"
    out.write_bytes(b"old")

    def chunks() -> Iterator[bytes]:
        yield b"partial"
        assert _leftovers(tmp_path)  # the temporary file exists while writing
        raise error

    with pytest.raises(type(error)):
        atomic_write(out, chunks())
    assert out.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
@pytest.mark.parametrize("written", [2, 9])
def test_the_writing_thread_is_joined_when_the_chunks_fail(
        tmp_path: Path, error: BaseException, written: int) -> None:
    # more than one chunk: they are written by a second thread while the next is made
    out = tmp_path / "out.json.gz"
    out.write_bytes(b"old")

    def chunks() -> Iterator[bytes]:
        for i in range(written):
            yield b"%d" % i * 10_000
        raise error

    with pytest.raises(type(error)):
        atomic_write(out, chunks())
    assert out.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name == "cocokit-write"]


def test_a_second_interrupt_while_stopping_leaves_no_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the chunks, then a second one while the end is handed to the writing
    thread (a wait on its queue): the thread still ends and nothing is left."""
    out = tmp_path / "out.json"
    out.write_bytes(b"old")
    real_put = atomic.queue.Queue.put

    def put(self: Any, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None and block:  # the second Ctrl-C, arriving while it waits
            raise KeyboardInterrupt
        real_put(self, item, block, timeout)

    monkeypatch.setattr(atomic.queue.Queue, "put", put)

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b"x" * 1000
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(out, chunks())
    monkeypatch.undo()
    for t in threading.enumerate():
        if t.name == "cocokit-write":
            t.join(timeout=2)
    assert not [t for t in threading.enumerate() if t.name == "cocokit-write"]
    assert out.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_signal_between_the_block_and_the_renames_leaves_no_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A set of outputs interrupted after its block ended, before its renames (a signal
    in that gap): every temporary file is removed, every target untouched."""
    (tmp_path / "a.json").write_bytes(b"old a")

    @contextlib.contextmanager
    def interrupted() -> Iterator[None]:
        raise KeyboardInterrupt
        yield  # pragma: no cover

    with pytest.raises(KeyboardInterrupt), atomic.atomic_files():
        atomic_write(tmp_path / "a.json", [b"new a"])
        atomic_write(tmp_path / "b.json", [b"new b"])
        assert len(_leftovers(tmp_path)) == 2  # both written, waiting for the renames
        monkeypatch.setattr(atomic, "signals_deferred", interrupted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert (tmp_path / "a.json").read_bytes() == b"old a"


@pytest.mark.parametrize("name", ["out.json", "out.json.gz"])
def test_many_chunks_are_written_in_order(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    parts = [os.urandom(n) for n in (1, 70_000, 0, 3, 1 << 20, 5)] * 7
    atomic_write(out, iter(parts))
    data = out.read_bytes()
    assert (gzip.decompress(data) if name.endswith(".gz") else data) == b"".join(parts)
    assert _leftovers(tmp_path) == []


def test_a_full_disk_stops_the_chunks_and_is_one_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.json"
    out.write_bytes(b"old")
    real = atomic.os.fdopen

    class FullAfterTwo:
        def __init__(self, f: object) -> None:
            self.f, self.writes = f, 0

        def __getattr__(self, name: str) -> object:
            return getattr(self.f, name)

        def __enter__(self) -> FullAfterTwo:
            return self

        def __exit__(self, *a: object) -> None:
            self.f.close()  # type: ignore[attr-defined]

        def write(self, b: bytes) -> int:
            self.writes += 1
            if self.writes > 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(b)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: FullAfterTwo(real(fd, mode)))
    made = 0

    def chunks() -> Iterator[bytes]:
        nonlocal made
        for _ in range(10_000):
            made += 1
            yield b"x" * 1000

    with pytest.raises(OutputError, match="no space left") as caught:
        atomic_write(out, chunks())
    assert str(out) in str(caught.value)
    assert made < 100  # the chunks stopped soon after the failure, not made to the end
    assert out.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_atomic_file_context(tmp_path: Path) -> None:
    out = tmp_path / "img.png"
    with atomic_file(out, fsync=False) as f:
        f.write(b"png")
        assert not out.exists()
    assert out.read_bytes() == b"png"


def test_export_to_read_only_target_is_one_line(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ds = load(Path(__file__).parent / "data" / sorted(
        p.name for p in (Path(__file__).parent / "data").glob("*.json"))[0])
    out = tmp_path / "out.json"

    def fail(*a: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OutputError, match="read-only file system"):
        write_coco(ds, out)
    assert _leftovers(tmp_path) == [] and not out.exists()


def test_cli_export_to_fifo_and_read_only(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_bytes(b'{"images":[],"annotations":[],"categories":[]}')
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    r = subprocess.run([sys.executable, "-m", "cocokit", "export", str(src), "-o", str(fifo)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert "FIFO" in r.stderr and "Traceback" not in r.stderr
    assert str(fifo) in r.stderr
    # a read-only file system, simulated in the child process
    code = ("import errno, os, sys\n"
            "from cocokit.io import atomic\n"
            "def fail(*a): raise OSError(errno.EROFS, 'Read-only file system')\n"
            "atomic.os.replace = fail\n"
            "from cocokit.cli import main\n"
            f"sys.argv = ['cocokit', 'export', {str(src)!r}, '-o', "
            f"{str(tmp_path / 'x.json')!r}]\n"
            "sys.exit(main())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 2, r.stderr
    assert "read-only file system" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.json")]


def test_no_other_copy_of_the_atomic_write() -> None:
    """Every local file is written through io/atomic.py: no other module renames a
    temporary file over a target (folders staged and renamed whole are another thing)."""
    src = Path(__file__).parent.parent / "src" / "cocokit"
    offenders = []
    for p in src.rglob("*.py"):
        if p.name == "atomic.py":
            continue
        text = p.read_text()
        for needle in ("mkstemp(", "NamedTemporaryFile(", '".part"', "'.part'"):
            if needle in text:
                offenders.append(f"{p.relative_to(src)}: {needle}")
    assert offenders == []


def test_an_error_of_the_input_is_not_called_an_output_error(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x"
        raise OSError(errno.EIO, "Input/output error")  # reading the source failed

    with pytest.raises(OSError) as e:
        atomic_write(tmp_path / "a.json", chunks())
    assert not isinstance(e.value, OutputError)
    assert _leftovers(tmp_path) == []


# -- leftovers of killed runs (issue 18) -------------------------------------------------


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_the_temporary_file_names_its_writer(tmp_path: Path) -> None:
    with atomic_file(tmp_path / "out.json") as f:
        (name,) = _leftovers(tmp_path)
        f.write(b"{}")
    assert name.startswith(f".out.json.{os.getpid()}.") and name.endswith(".tmp")


@pytest.mark.parametrize(("name", "removed"), [
    (".out.json.{dead}.abcd1234.tmp", True),  # its writer is gone
    (".out.json.{me}.abcd1234.tmp", False),  # this process's own
    (".out.json.{alive}.abcd1234.tmp", False),  # a live writer's (pid 1)
    (".out.json.abcd1234.tmp", False),  # no pid: not ours to judge
    (".other.json.{dead}.abcd1234.tmp", False),  # another target's
    (".out.json.{dead}.abcd1234.tmp.keep", False),  # not of our form
    ("out.json.{dead}.abcd1234.tmp", False),  # not hidden
])
def test_a_write_removes_only_the_leftovers_of_dead_writers_of_its_target(
        tmp_path: Path, name: str, removed: bool) -> None:
    name = name.format(dead=_dead_pid(), me=os.getpid(), alive=1)
    (tmp_path / name).write_bytes(b"partial")
    with pytest.warns(LeftoversRemoved) if removed else _no_warning():
        atomic_write(tmp_path / "out.json", [b"{}"])
    assert (tmp_path / name).exists() is not removed
    assert (tmp_path / "out.json").read_bytes() == b"{}"


@contextlib.contextmanager
def _no_warning() -> Iterator[None]:
    """Fail if a LeftoversRemoved warning is raised in the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", LeftoversRemoved)
        yield


def test_tidy_false_lists_nothing(tmp_path: Path) -> None:
    stale = tmp_path / f".out.json.{_dead_pid()}.abcd1234.tmp"
    stale.write_bytes(b"partial")
    atomic_write(tmp_path / "out.json", [b"{}"], tidy=False)
    assert stale.exists()


@pytest.mark.parametrize(("pid", "expected"), [(os.getpid(), True), (1, True), (0, False),
                                               (-5, False)])
def test_pid_alive(pid: int, expected: bool) -> None:
    assert atomic.pid_alive(pid) is expected


def test_a_dead_pid_is_not_alive() -> None:
    assert not atomic.pid_alive(_dead_pid())


def test_an_interrupt_names_the_target_left_untouched(tmp_path: Path) -> None:
    import signal

    from cocokit.errors import Interrupted

    out = tmp_path / "out.json"
    out.write_bytes(b"old")
    with pytest.raises(Interrupted) as info, atomic_file(out) as f:
        f.write(b"new")
        raise Interrupted(signal.SIGTERM)
    assert info.value.untouched == [str(out)]
    assert out.read_bytes() == b"old" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT,
                                  errno.EACCES, errno.EPERM])
def test_output_error_names_the_path_and_the_cause(code: int) -> None:
    e = atomic.output_error("/out/a.jpg", OSError(code, os.strerror(code)))
    assert isinstance(e, OutputError) and e.file == "/out/a.jpg"
    assert str(e) == f"/out/a.jpg: cannot write: {atomic.os_error_reason(OSError(code, ''))}"
    assert atomic.output_error("/x", e) is e


# -- a set of files written as one (atomic_files) ----------------------------------------


def _old_pair(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.json", tmp_path / "sub" / "b.json"
    b.parent.mkdir()
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    return a, b


def test_a_set_is_renamed_together_at_its_end(tmp_path: Path) -> None:
    a, b = _old_pair(tmp_path)
    with atomic.atomic_files():
        atomic_write(a, [b"new a"])
        atomic_write(b, [b"new", b" b"])
        assert a.read_bytes() == b"old a" and b.read_bytes() == b"old b"
        assert len(_leftovers(tmp_path)) == 1 and len(_leftovers(b.parent)) == 1
    assert a.read_bytes() == b"new a" and b.read_bytes() == b"new b"
    assert _leftovers(tmp_path) == [] and _leftovers(b.parent) == []


def _fail_in_block(error: BaseException) -> None:
    raise error


def _fail_in_second_chunks(error: BaseException) -> Iterator[bytes]:
    yield b"partial"
    raise error


@pytest.mark.parametrize("where", ["between the files", "writing the second"])
@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(),
                                   OutputError("x", "cannot write: no space left")])
def test_a_failed_set_replaces_nothing(tmp_path: Path, where: str,
                                       error: BaseException) -> None:
    a, b = _old_pair(tmp_path)
    with pytest.raises(type(error)), atomic.atomic_files():
        atomic_write(a, [b"new a"])
        if where == "between the files":
            _fail_in_block(error)
        atomic_write(b, _fail_in_second_chunks(error))
    assert a.read_bytes() == b"old a" and b.read_bytes() == b"old b"
    assert _leftovers(tmp_path) == [] and _leftovers(b.parent) == []


def test_an_interrupted_set_names_every_target_untouched(tmp_path: Path) -> None:
    import signal

    from cocokit.errors import Interrupted

    a, b = _old_pair(tmp_path)
    with pytest.raises(Interrupted) as info, atomic.atomic_files():
        atomic_write(a, [b"new a"])
        atomic_write(b, _fail_in_second_chunks(Interrupted(signal.SIGTERM)))
    assert sorted(info.value.untouched) == sorted([str(a), str(b)])
    assert a.read_bytes() == b"old a" and b.read_bytes() == b"old b"


def test_a_failed_rename_removes_the_temporary_files_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _old_pair(tmp_path)

    def fail(*args: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OutputError, match="operation not permitted"), atomic.atomic_files():
        atomic_write(a, [b"new a"])
        atomic_write(b, [b"new b"])
    assert a.read_bytes() == b"old a" and b.read_bytes() == b"old b"
    assert _leftovers(tmp_path) == [] and _leftovers(b.parent) == []


def test_a_target_twice_in_one_set_is_refused(tmp_path: Path) -> None:
    a, _ = _old_pair(tmp_path)
    with pytest.raises(OutputError, match="written twice"), atomic.atomic_files():
        atomic_write(a, [b"one"])
        atomic_write(tmp_path / "sub" / ".." / "a.json", [b"two"])
    assert a.read_bytes() == b"old a" and _leftovers(tmp_path) == []


def test_a_set_inside_a_set_joins_it(tmp_path: Path) -> None:
    a, b = _old_pair(tmp_path)
    with pytest.raises(RuntimeError), atomic.atomic_files():
        with atomic.atomic_files():
            atomic_write(a, [b"new a"])
        assert a.read_bytes() == b"old a"  # renamed with the outer set, not before
        raise RuntimeError("boom")
    assert a.read_bytes() == b"old a" and _leftovers(tmp_path) == []
    atomic_write(b, [b"new b"])  # after the block: written at once again
    assert b.read_bytes() == b"new b"


@pytest.mark.parametrize(("where", "says"), [
    ("nope/out.json", "does not exist"),
    ("folder", "is a folder"),
    ("/proc/cocokit-out.json", "cannot create a file in /proc: no such file or directory"),
])
def test_check_writable_says_early_what_the_writer_would(tmp_path: Path, where: str,
                                                        says: str) -> None:
    if where.startswith("/proc") and not sys.platform.startswith("linux"):
        pytest.skip("/proc is Linux's")
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputError, match=says):
        atomic.check_writable(tmp_path / where)


def test_check_writable_leaves_nothing(tmp_path: Path) -> None:
    atomic.check_writable(tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []

"""The one way cocokit writes a local file: beside the target, then renamed over it.

:func:`atomic_file` opens a temporary file in the target's folder; a clean exit
flushes it, fsyncs it, gives it the permissions a new file gets (``0o666`` less the
umask) and renames it over the target in one step (``os.replace``). Any error, and a
KeyboardInterrupt, removes the temporary file and leaves an existing target untouched.
:func:`atomic_write` writes chunks of bytes that way.

An output that exists as something other than a regular file (a folder, a FIFO, a
device, a socket, a symbolic link) is refused, not replaced. An operating-system error
(read-only file system, no permission, disk full, an immutable target, a missing
folder) becomes one :class:`~cocokit.errors.OutputError` naming the path
(:func:`output_error`).

The temporary file is named ``.<name>.<pid>.<random>.tmp``: the writing process's id
is in the name, so a later run can tell a leftover of a run that was killed (SIGKILL,
a power cut: no cleanup could run) from the file of a run still writing.
:func:`remove_leftovers` removes such leftovers whose process is gone, and nothing else;
:func:`atomic_file` calls it for its target and says so with a
:class:`~cocokit.errors.LeftoversRemoved` warning. On a signal the CLI raises
:class:`~cocokit.errors.Interrupted`, which removes the temporary file as Ctrl-C does
and names the target among the outputs left untouched.

Outputs that belong together (the parts of a split, a COCO file and its id map or
report) are written as one set with :func:`atomic_files`: every :func:`atomic_file`
opened in its block writes its temporary file as above, and the renames wait for the
block's end, where they are made one after the other with signals held back. A failure
or Ctrl-C anywhere in the block removes every temporary file of the set and leaves every
old target as it was. (:mod:`cocokit.io.staging` does the same for a whole folder of
files.)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import errno
import itertools
import os
import queue
import re
import shutil
import signal
import stat
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import Interrupted, LeftoversRemoved, OutputError

__all__ = [
    "GZIP_LEVEL",
    "OUTPUT_FAULTS",
    "atomic_file",
    "atomic_files",
    "atomic_write",
    "check_target",
    "check_writable",
    "current_umask",
    "gzip_chunks",
    "is_gzip_name",
    "os_error_reason",
    "output_error",
    "output_fault",
    "pid_alive",
    "remove_leftovers",
    "signals_deferred",
]

#: errors of writing that no retry cures: the run fails, naming the output
OUTPUT_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO,
                           errno.EACCES, errno.EPERM, errno.EFBIG})

_REASONS = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted (an immutable or append-only file?)",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "is a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EXDEV: "the temporary file is on another device",
    errno.EIO: "input/output error",
}


def os_error_reason(e: OSError) -> str:
    """A short reason for an OS error (without the path)."""
    if e.errno in _REASONS:
        return _REASONS[e.errno]
    return e.strerror or str(e) or type(e).__name__


def output_error(path: str | os.PathLike[str], e: OSError) -> OutputError:
    """The :class:`~cocokit.errors.OutputError` for an OS error raised while writing
    ``path`` (an OutputError already is one: returned as it is)."""
    if isinstance(e, OutputError):
        return e
    return OutputError(os.fspath(path), f"cannot write: {os_error_reason(e)}")


#: errors that only writing causes, whichever file the error names
_WRITE_ONLY = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def output_fault(e: OSError, output: str | os.PathLike[str]) -> bool:
    """Whether ``e``, raised while copying or writing into the output ``output`` (a file
    or folder), is a fault of the output rather than of an input: a full disk, a quota,
    a read-only file system, or an :data:`OUTPUT_FAULTS` error that names no file or a
    file under ``output``."""
    if isinstance(e, OutputError) or e.errno in _WRITE_ONLY:
        return True
    if e.errno not in OUTPUT_FAULTS:
        return False
    if e.filename is None:
        return True
    root = os.path.abspath(output)
    for name in (e.filename2, e.filename):
        if name is None:
            continue
        path = os.path.abspath(os.fsdecode(name))
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_leftovers(folder: str | os.PathLike[str], pattern: str, what: str) -> list[str]:
    """Remove the entries of ``folder`` whose whole name matches ``pattern`` (a regular
    expression whose first group is the writer's process id) and whose writer is gone
    (:func:`pid_alive`); files and folders alike. Anything else is never touched: a name
    of another form, a live writer's file, this process's own. Returns the names
    removed and, when there are any, warns once (:class:`~cocokit.errors.LeftoversRemoved`)
    with ``what`` naming them."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    rx = re.compile(pattern)
    removed: list[str] = []
    for name in names:
        m = rx.fullmatch(name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or pid_alive(pid):
            continue
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            continue
        removed.append(name)
    if removed:
        shown = ", ".join(removed[:3]) + (f" and {len(removed) - 3} more" if len(removed) > 3
                                          else "")
        warnings.warn(LeftoversRemoved(
            f"removed {len(removed)} leftover {what} of an interrupted run in "
            f"{os.fspath(folder)}: {shown}"), stacklevel=2)
    return removed


def _temp_pattern(name: str) -> str:
    """The names :func:`atomic_file` gives the temporary files of ``name``."""
    return rf"\.{re.escape(name)}\.(\d+)\.[a-z0-9_]{{8}}\.tmp"


#: the signals the CLI stops on (:class:`~cocokit.errors.Interrupted`)
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, n))


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the block runs (a few system calls
    that must happen together: create a temporary file and remember it, rename it and
    remember that); one that came meanwhile is handled when the block ends. Where
    signals cannot be blocked (no ``pthread_sigmask``), nothing changes."""
    block = getattr(signal, "pthread_sigmask", None)
    if block is None:
        yield
        return
    previous = block(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        block(signal.SIG_SETMASK, previous)


def current_umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_target(path: str | os.PathLike[str]) -> Path:
    """Refuse an output that is not a regular file or absent, or whose folder is missing.

    Returns the target as a Path.
    """
    target = Path(path)
    name = os.fspath(target)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise OutputError(name, f"cannot write here: {os_error_reason(e)}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        mode = st.st_mode
        what = (
            "a symbolic link" if stat.S_ISLNK(mode)
            else "a folder" if stat.S_ISDIR(mode)
            else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise OutputError(name, f"the output exists and is {what}; refusing to replace it "
                          "(remove it or choose another path)")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(name, f"the output folder {os.fspath(folder)!r} does not exist")
    return target


def _new_temp(target: Path) -> tuple[int, str]:
    """A new temporary file beside ``target`` (its descriptor and path), named as
    :func:`remove_leftovers` knows it; an OS error is an :class:`OutputError`."""
    folder = target.parent if str(target.parent) else Path(".")
    try:
        return tempfile.mkstemp(dir=folder, prefix=f".{target.name}.{os.getpid()}.",
                                suffix=".tmp")
    except OSError as e:  # the folder exists (check_target): the OS says why, not a guess
        raise OutputError(os.fspath(target), f"cannot create a file in {os.fspath(folder)}: "
                          f"{os_error_reason(e)}") from None


def check_writable(path: str | os.PathLike[str]) -> None:
    """Refuse, before any long work, an output that :func:`atomic_file` would refuse or
    could not create a file beside (:func:`check_target`, then a temporary file made and
    removed at once): the same :class:`~cocokit.errors.OutputError`, said early."""
    target = check_target(path)
    with signals_deferred():
        fd, tmp = _new_temp(target)
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@dataclasses.dataclass(frozen=True)
class _Written:
    """A temporary file written in full, to be renamed over its target."""

    tmp: str
    target: Path

    def commit(self) -> None:
        """Rename the temporary file over the target (call with signals deferred)."""
        try:
            os.chmod(self.tmp, 0o666 & ~current_umask())
            os.replace(self.tmp, self.target)
        except OSError as e:
            raise OutputError(os.fspath(self.target),
                              f"cannot write: {os_error_reason(e)}") from None

    def discard(self) -> None:
        """Remove the temporary file (the target is left as it is)."""
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


#: the files of the open :func:`atomic_files` block, waiting for their renames
_SET: contextvars.ContextVar[list[_Written] | None] = contextvars.ContextVar(
    "cocokit_atomic_files", default=None)


@contextlib.contextmanager
def atomic_files() -> Iterator[None]:
    """Write the files of the block as one set: each :func:`atomic_file` (and
    :func:`atomic_write`, and the writers built on them) opened in the block, in this
    thread, keeps its complete temporary file, and all are renamed over their targets
    when the block ends normally, with signals held back (:func:`signals_deferred`).

    An error raised in the block, a KeyboardInterrupt or an
    :class:`~cocokit.errors.Interrupted` (which then names every target as untouched)
    removes every temporary file of the set: no target is replaced. A target named twice
    in one set is refused. A block inside another adds its files to the outer set.

    The renames are one per file: if one fails (a target made immutable meanwhile), the
    files renamed before it stay replaced and the others are left as they were.

    >>> with atomic_files():   # doctest: +SKIP
    ...     atomic_write("split/train.json", train_chunks)
    ...     atomic_write("split/val.json", val_chunks)
    """
    if _SET.get() is not None:
        yield
        return
    written: list[_Written] = []
    token = _SET.set(written)
    committed = 0
    reset = False
    try:
        yield
        _SET.reset(token)
        reset = True
        with signals_deferred():  # a signal never stops the set half way
            for w in written:
                w.commit()
                committed += 1
    except BaseException as e:
        for w in written[committed:]:  # a signal before the renames: none was renamed
            w.discard()
        if isinstance(e, Interrupted):
            e.untouched.extend(os.fspath(w.target) for w in written[committed:])
        raise
    finally:
        if not reset:
            _SET.reset(token)


def _join(written: _Written, pending: list[_Written]) -> None:
    """Add ``written`` to the set ``pending``, refusing a target already in it."""
    where = os.path.realpath(written.target)
    if any(os.path.realpath(w.target) == where for w in pending):
        raise OutputError(os.fspath(written.target), "written twice by this run (name "
                          "different outputs)")
    pending.append(written)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, fsync: bool = True,
                tidy: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write; on a clean exit it replaces ``path`` atomically (inside an
    :func:`atomic_files` block: when the block ends, with the rest of the set).

    An OS error of the flush, fsync or rename becomes an
    :class:`~cocokit.errors.OutputError`; an error raised inside the block (including
    one of ``f.write``) propagates as it is, after the temporary file is removed.

    ``fsync=False`` skips the fsync before the rename (for the many image files of a
    slicing or augmentation run, which a COCO file written last makes valid; a crash
    can then leave an empty file, never a half-replaced one).

    ``tidy`` (default) first removes the temporary files of ``path`` that a killed run
    left (:func:`remove_leftovers`); writers of many files in a fresh folder pass False
    to save a folder listing per file.

    >>> with atomic_file("out.json") as f:   # doctest: +SKIP
    ...     f.write(b"{}")
    """
    target = check_target(path)
    name = os.fspath(target)
    folder = target.parent if str(target.parent) else Path(".")
    if tidy:
        remove_leftovers(folder, _temp_pattern(target.name), "temporary file(s)")
    tmp: str | None = None
    done = False  # renamed, or handed to the set that renames it
    try:
        with signals_deferred():  # created and known to the cleanup below in one step
            fd, tmp = _new_temp(target)
            f = os.fdopen(fd, "wb")
        with f:
            yield f  # an error of the caller's block propagates as it is
            try:
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            except OSError as e:
                raise OutputError(name, f"cannot write: {os_error_reason(e)}") from None
        written = _Written(tmp, target)
        pending = _SET.get()
        with signals_deferred():  # replaced (or handed over) and known as such in one step
            if pending is None:
                written.commit()
            else:
                _join(written, pending)
            done = True
    except BaseException as e:
        if not done:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if isinstance(e, Interrupted):
                e.untouched.append(name)
        raise


def is_gzip_name(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a gzip file (its suffix is ``.gz``, any case)."""
    return os.fspath(path).lower().endswith(".gz")


#: zlib level of the .gz files cocokit writes: on a COCO file of 540 MB (mostly
#: numbers), level 1 takes 5.2 s and writes 227 MB where level 6 takes 39 s for 195 MB
GZIP_LEVEL = 1


def gzip_chunks(chunks: Iterable[bytes], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    """``chunks`` compressed as one gzip stream (no file name, modification time 0: the
    same input gives the same bytes), at zlib ``level`` (:data:`GZIP_LEVEL`: fast)."""
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = z.compress(chunk)
        if out:
            yield out
    yield z.flush()


def atomic_write(
    path: str | os.PathLike[str], chunks: Iterable[bytes], *, fsync: bool = True,
    tidy: bool = True,
) -> None:
    """Write ``chunks`` to ``path`` through :func:`atomic_file`, gzip-compressed when
    ``path`` ends in ``.gz``.

    A failure (including one raised by the chunk iterator, or a KeyboardInterrupt)
    removes the temporary file and leaves any existing ``path`` untouched.
    """
    gzipped = is_gzip_name(path)
    with atomic_file(path, fsync=fsync, tidy=tidy) as f:
        it = iter(chunks)
        first = next(it, None)
        second = next(it, None) if first is not None else None
        if first is None or second is None:  # one chunk (or none): no thread to start
            parts = [] if first is None else [first]
            try:
                for part in gzip_chunks(parts) if gzipped else parts:
                    f.write(part)
            except OSError as e:
                raise output_error(path, e) from None
            return
        _write_behind(f, path, itertools.chain((first, second), it), gzipped)


def _join_all_the_same(thread: threading.Thread) -> None:
    """Join ``thread`` even through a KeyboardInterrupt (or any other exception) raised
    while waiting: the first is raised again once the thread has ended, so a file is
    never closed or removed under it."""
    late: BaseException | None = None
    while thread.is_alive():
        try:
            thread.join()
        except BaseException as e:
            late = late or e
    if late is not None:
        raise late


#: chunks a producer may be ahead of the writing thread (bounds the memory held)
_AHEAD = 4


def _write_behind(f: BinaryIO, path: str | os.PathLike[str], chunks: Iterator[bytes],
                  gzipped: bool) -> None:
    """Write ``chunks`` to ``f`` in a second thread, so that writing (and gzip, which
    also releases the GIL) runs while the caller's iterator makes the next chunk.

    The iterator runs in the calling thread, so its errors, and a KeyboardInterrupt,
    arrive there as they would without the thread; the writing thread is stopped and
    joined before they propagate (the file is closed only after). An error of writing
    stops the iterator at its next chunk and is raised as :func:`output_error`.
    """
    handed: queue.Queue[bytes | None] = queue.Queue(maxsize=_AHEAD)
    failed: list[BaseException] = []

    ended = False

    def take() -> Iterator[bytes]:
        nonlocal ended
        while (chunk := handed.get()) is not None:
            yield chunk
        ended = True

    def drain() -> None:
        try:
            for part in gzip_chunks(take()) if gzipped else take():
                f.write(part)
        except BaseException as e:  # handed to the calling thread
            failed.append(e)
            while not ended and handed.get() is not None:  # the producer never waits
                pass

    writer = threading.Thread(target=drain, name="cocokit-write", daemon=True)
    writer.start()
    try:
        for chunk in chunks:  # an error of the chunks propagates as it is
            if failed:
                break
            handed.put(chunk)
        handed.put(None)
    except BaseException:
        # stopping: drop what is queued and end the thread, never waiting on the queue
        # (a second Ctrl-C here must not leave the thread waiting for a sentinel)
        while True:
            try:
                handed.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    handed.get_nowait()
        raise
    finally:
        _join_all_the_same(writer)
    if failed:
        e = failed[0]
        if isinstance(e, OSError):
            raise output_error(path, e) from None
        raise e

"""The one way cocokit writes a local file: beside the target, then renamed over it.

:func:`atomic_file` opens a temporary file in the target's folder; a clean exit
flushes it, fsyncs it, gives it the permissions a new file gets (``0o666`` less the
umask) and renames it over the target in one step (``os.replace``). Any error, and a
KeyboardInterrupt, removes the temporary file and leaves an existing target untouched.
:func:`atomic_write` writes chunks of bytes that way.

An output that exists as something other than a regular file (a folder, a FIFO, a
device, a socket, a symbolic link) is refused, not replaced. An operating-system error
(read-only file system, no permission, disk full, an immutable target, a missing
folder) becomes one :class:`~cocokit.errors.OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import OutputError

__all__ = ["atomic_file", "atomic_write", "check_target", "current_umask", "gzip_chunks",
           "is_gzip_name", "os_error_reason"]

_REASONS = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted (an immutable or append-only file?)",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOENT: "the folder does not exist",
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


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write; on a clean exit it replaces ``path`` atomically.

    An OS error of the flush, fsync or rename becomes an
    :class:`~cocokit.errors.OutputError`; an error raised inside the block (including
    one of ``f.write``) propagates as it is, after the temporary file is removed.

    ``fsync=False`` skips the fsync before the rename (for the many image files of a
    slicing or augmentation run, which a COCO file written last makes valid; a crash
    can then leave an empty file, never a half-replaced one).

    >>> with atomic_file("out.json") as f:   # doctest: +SKIP
    ...     f.write(b"{}")
    """
    target = check_target(path)
    name = os.fspath(target)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(name, f"cannot write here: {os_error_reason(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f  # an error of the caller's block propagates as it is
            try:
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            except OSError as e:
                raise OutputError(name, f"cannot write: {os_error_reason(e)}") from None
        try:
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, target)
        except OSError as e:
            raise OutputError(name, f"cannot write: {os_error_reason(e)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def is_gzip_name(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a gzip file (its suffix is ``.gz``, any case)."""
    return os.fspath(path).lower().endswith(".gz")


def gzip_chunks(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """``chunks`` compressed as one gzip stream (no file name, modification time 0: the
    same input gives the same bytes)."""
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = z.compress(chunk)
        if out:
            yield out
    yield z.flush()


def atomic_write(
    path: str | os.PathLike[str], chunks: Iterable[bytes], *, fsync: bool = True
) -> None:
    """Write ``chunks`` to ``path`` through :func:`atomic_file`, gzip-compressed when
    ``path`` ends in ``.gz``.

    A failure (including one raised by the chunk iterator, or a KeyboardInterrupt)
    removes the temporary file and leaves any existing ``path`` untouched.
    """
    if is_gzip_name(path):
        chunks = gzip_chunks(chunks)
    with atomic_file(path, fsync=fsync) as f:
        name = os.fspath(path)
        for chunk in chunks:  # an error of the chunks propagates as it is
            try:
                f.write(chunk)
            except OSError as e:
                raise OutputError(name, f"cannot write: {os_error_reason(e)}") from None

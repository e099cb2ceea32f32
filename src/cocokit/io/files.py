"""Image files on local disks and in object storage, through fsspec.

Slicing and augmentation read source images and write new ones. A location is either a
local path (``images/``, ``/data/train``) or a URL that fsspec understands
(``s3://bucket/train``, ``gs://...``, ``memory://...``, ``file:///data``). Local paths
take the direct route (``open``, :mod:`cocokit.io.atomic`), which is the fast one; URLs go
through fsspec, imported only when one is used. Object stores need their fsspec
package (``s3fs``, ``gcsfs``) installed where the work runs.

A filesystem that lives inside one process (``memory://``) is not seen by worker
processes or by a Ray cluster: :func:`is_shared` tells the engines to read and write
such files in the calling process and pass the bytes to the workers instead.

>>> join("s3://bucket/train", "a/b.jpg")
's3://bucket/train/a/b.jpg'
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError
from .atomic import atomic_file, atomic_write, gzip_chunks, is_gzip_name, output_error

__all__ = [
    "GZIP_MAGIC",
    "decompress",
    "exists",
    "filesystem",
    "is_dir",
    "is_shared",
    "is_url",
    "join",
    "local_path",
    "makedirs",
    "read_bytes",
    "read_document",
    "remove",
    "upload",
    "write_bytes",
    "write_chunks",
]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and bool(_URL.match(location))


def local_path(location: str | os.PathLike[str]) -> Path | None:
    """The local path of ``location`` (``file://`` URLs included), or None for others."""
    if not is_url(location):
        return Path(location)
    text = str(location)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    return None


def join(base: str | os.PathLike[str], name: str) -> str:
    """``name`` (a relative, ``/``-separated file name) under the folder ``base``."""
    if is_url(base):
        return posixpath.join(str(base).rstrip("/"), name)
    return os.path.join(os.fspath(base), name)


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path in it) of a URL; an unknown scheme is an InputError."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:
        raise InputError(url, None, f"cannot open this location: {e}") from None
    return fs, path


def is_shared(location: str | os.PathLike[str]) -> bool:
    """Whether other processes (pool workers, a Ray cluster) see the files at ``location``.

    False only for filesystems that live inside this process, such as ``memory://``.
    """
    if local_path(location) is not None:
        return True
    protocol = str(location).split("://", 1)[0].lower()
    return protocol not in ("memory",)


def read_bytes(location: str | os.PathLike[str]) -> bytes:
    """The whole file; a missing one raises :class:`InputError` ("image file not found")."""
    path = local_path(location)
    try:
        if path is not None:
            return path.read_bytes()
        fs, p = filesystem(str(location))
        return bytes(fs.cat_file(p))
    except FileNotFoundError:
        raise InputError(str(location), None, "image file not found") from None
    except IsADirectoryError:
        raise InputError(str(location), None, "is a folder, not an image file") from None


def exists(location: str | os.PathLike[str]) -> bool:
    """Whether a file is at ``location``."""
    path = local_path(location)
    if path is not None:
        return path.is_file()
    fs, p = filesystem(str(location))
    return bool(fs.isfile(p))


def is_dir(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a folder (on object stores: a prefix with something in it)."""
    path = local_path(location)
    if path is not None:
        return path.is_dir()
    fs, p = filesystem(str(location))
    return bool(fs.isdir(p))


def remove(location: str | os.PathLike[str]) -> None:
    """Delete a file, or a folder and everything in it; nothing if it is not there."""
    path = local_path(location)
    if path is None:
        fs, p = filesystem(str(location))
        if fs.exists(p):
            fs.rm(p, recursive=True)
    elif path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def makedirs(location: str | os.PathLike[str]) -> None:
    """Create the output folder ``location`` and its parents if missing (no-op on object
    stores, where folders are only name prefixes). A local OS error (no permission, a
    read-only file system, a place such as ``/proc`` that takes no new folders) is an
    :class:`~cocokit.errors.OutputError` naming ``location``."""
    path = local_path(location)
    if path is not None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise output_error(path, e) from None
        return
    fs, p = filesystem(str(location))
    fs.makedirs(p, exist_ok=True)


def write_bytes(location: str | os.PathLike[str], data: bytes) -> None:
    """Write a whole file. Local files are written beside the target and renamed over it
    when one exists (so an earlier file is never left half-replaced); an object store
    replaces an object in one request. A local OS error (disk full, read-only, no
    permission) is an :class:`~cocokit.errors.OutputError` naming ``location``."""
    path = local_path(location)
    if path is None:
        fs, p = filesystem(str(location))
        parent = posixpath.dirname(p)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.pipe_file(p, data)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(path):
            path.write_bytes(data)
            return
    except OSError as e:  # a fault of the output (disk full...), never of an input
        with contextlib.suppress(OSError):
            if not isinstance(e, FileExistsError):
                path.unlink(missing_ok=True)
        raise output_error(path, e) from None
    atomic_write(path, [data], fsync=False, tidy=False)


def upload(local: str | os.PathLike[str], location: str) -> None:
    """Copy the local file ``local`` to ``location`` (a URL: streamed by fsspec; a path:
    copied beside it and renamed over it)."""
    path = local_path(location)
    if path is not None:
        with open(local, "rb") as src, atomic_file(path) as dst:
            shutil.copyfileobj(src, dst)
        return
    fs, p = filesystem(location)
    parent = posixpath.dirname(p)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    fs.put_file(os.fspath(local), p)


#: The first two bytes of a gzip stream.
GZIP_MAGIC = b"\x1f\x8b"


def decompress(data: bytes, name: str | None = None) -> bytes:
    """``data`` itself, or its content when it is a gzip stream (told by its first two
    bytes, whatever the file is called); a broken stream is an :class:`InputError`."""
    if data[:2] != GZIP_MAGIC:
        return data
    import gzip
    import zlib

    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(name, None, f"broken gzip data: {e}") from None


def read_head(location: str | os.PathLike[str], size: int) -> bytes:
    """The first ``size`` bytes of an annotation file's content, read as
    :func:`read_document` reads the whole (a local path or a URL, decompressed when
    gzip); b"" when there is no such file or it cannot be read."""
    import gzip
    import zlib

    name = os.fspath(location)
    path = local_path(location)
    try:
        if path is not None:
            if not path.is_file():
                return b""
            f: Any = path.open("rb")
        else:
            fs, p = filesystem(name)
            f = fs.open(p, "rb")
        with f:
            head = f.read(2)
            f.seek(0)
            if head != GZIP_MAGIC:
                return bytes(f.read(size))
            with gzip.GzipFile(fileobj=f) as g:
                return g.read(size)
    except (OSError, EOFError, zlib.error, ValueError):
        return b""


def read_document(location: str | os.PathLike[str]) -> bytes:
    """The bytes of an annotation file: a local path or a URL (fsspec), decompressed
    when gzip (``.json.gz``). A missing file or a folder is an :class:`InputError`."""
    name = os.fspath(location)
    path = local_path(location)
    try:
        if path is not None:
            data = path.read_bytes()
        else:
            fs, p = filesystem(name)
            data = bytes(fs.cat_file(p))
    except FileNotFoundError:
        raise InputError(name, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(name, None, "is a directory") from None
    except OSError as e:
        raise InputError(name, None, f"cannot read: {e.strerror or e}") from None
    return decompress(data, name)


def write_chunks(location: str | os.PathLike[str], chunks: Iterable[bytes]) -> None:
    """Write an annotation file: a local path through the one atomic writer
    (:func:`cocokit.io.atomic.atomic_write`), a URL through fsspec (the object is removed
    again if writing fails); gzip-compressed when the name ends in ``.gz``."""
    path = local_path(location)
    if path is not None:
        atomic_write(path, chunks)
        return
    name = os.fspath(location)
    if is_gzip_name(name):
        chunks = gzip_chunks(chunks)
    fs, p = filesystem(name)
    parent = posixpath.dirname(p)
    try:
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(p, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
    except BaseException:
        try:
            if fs.exists(p):
                fs.rm(p)
        except Exception:  # cleaning up must not hide the error that made it necessary
            pass
        raise

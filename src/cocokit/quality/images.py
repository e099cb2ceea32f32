"""The pixel side of ``check``: each image file read once, its size, content hash and
perceptual hash; a cache so a second run reads nothing it has seen.

For every image record :func:`scan_images` finds:

* whether the file is there and readable (a truncated file, or one that is not an
  image, is *unreadable*, with Pillow's reason);
* its size as a viewer shows it: the header's size with the EXIF orientation applied
  (Pillow's ``ImageOps.exif_transpose`` semantics: orientations 5-8 swap width and
  height), read from the header, without decoding the pixels for it;
* SHA-256 of the file's bytes (its first 16 bytes kept): equal for exact copies under
  any name (SHA-256 rather than blake2b: with the CPU's SHA instructions it hashed
  coco-mini's JPEGs twice as fast here, 0.09 against 0.18 ms an image);
* a 64-bit perceptual hash (pHash): the image decoded small (Pillow's ``draft`` lets
  JPEG decode at 1/2..1/8 scale), grey, oriented, resized to 32x32; its 2-D DCT; the
  8x8 lowest frequencies against their median. Resized, re-encoded and lightly cropped
  copies land a few bits apart (measured on coco-mini: 0-4 bits for a half-size JPEG
  at quality 60, 4-8 for a 3 % crop per side; distinct photos were 16 or more apart).

The work is cut into batches of images and run by the one job runner
(:mod:`cocokit.engine`: a local process pool, or Ray). Results of files read before are
taken from a cache keyed by the file's path, size and modification time (see
:class:`HashCache`), so a second run of ``check`` on unchanged images decodes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import Engine, JobFailure, run_local, run_on_ray
from ..errors import InputError, OptionError
from ..io import files

__all__ = [
    "BATCH",
    "CACHE_ENV",
    "MISSING",
    "OK",
    "UNREADABLE",
    "HashCache",
    "ImageScan",
    "default_cache_path",
    "inspect_image",
    "perceptual_hash",
    "scan_images",
]

OK, MISSING, UNREADABLE = 0, 1, 2
#: images per job of the runner
BATCH = 32
#: environment variable naming the cache folder (default ``$XDG_CACHE_HOME/cocokit``)
CACHE_ENV = "COCOKIT_CACHE_DIR"
_HASH_SIDE = 32
_LOW = 8
# rows of the orthonormal DCT-II of size 32 (only the 8 lowest frequencies are needed)
_DCT = np.cos(np.pi / _HASH_SIDE * np.arange(_LOW)[:, None]
              * (np.arange(_HASH_SIDE)[None, :] + 0.5))
_ORIENTATION_TAG = 0x0112


def perceptual_hash(gray: np.ndarray) -> int:
    """The 64-bit pHash of a 32x32 grey image (float array): the signs of its 8x8 lowest
    DCT frequencies against their median (the constant term left out of the median)."""
    low = (_DCT @ np.asarray(gray, np.float64) @ _DCT.T).ravel()
    median = np.partition(low[1:], 31)[31]  # the middle one of the 63
    bits = low > median
    return int(np.packbits(bits).view(">u8")[0])


def _transposes() -> dict[int, Any]:
    from PIL import Image

    t = Image.Transpose
    return {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE,
            6: t.ROTATE_270, 7: t.TRANSVERSE, 8: t.ROTATE_90}


def inspect_image(data: bytes, name: str, pixels: int = 0) -> tuple[int, int, bytes, int]:
    """(width, height after EXIF orientation, SHA-256 digest, pHash) of an image file's
    bytes. ``pixels``: the size its record gives (width * height), allowed past Pillow's
    decompression-bomb guard. Raises :class:`InputError` naming ``name`` for a file
    that is not an image, or is truncated or corrupt."""
    from PIL import Image, UnidentifiedImageError

    digest = hashlib.sha256(data).digest()[:16]
    limit = Image.MAX_IMAGE_PIXELS
    try:
        if limit is not None:
            Image.MAX_IMAGE_PIXELS = max(limit, pixels)
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            try:
                orientation = int(im.getexif().get(_ORIENTATION_TAG, 1))
            except Exception:  # a broken EXIF block means no orientation
                orientation = 1
            if im.format == "JPEG":
                im.draft("L", (_HASH_SIDE, _HASH_SIDE))
            small = im.convert("L").resize((_HASH_SIDE, _HASH_SIDE),
                                           Image.Resampling.BILINEAR, reducing_gap=2.0)
    except UnidentifiedImageError:
        raise InputError(name, None, "not an image (no known image format)") from None
    except (MemoryError, RecursionError):
        raise
    except Exception as e:  # a broken file makes Pillow raise many kinds of error
        raise InputError(name, None, f"cannot decode the image: {e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    turn = _transposes().get(orientation) if orientation != 1 else None
    if turn is not None:
        small = small.transpose(turn)
        if orientation >= 5:
            w, h = h, w
    return w, h, digest, perceptual_hash(np.asarray(small, np.float64))


@dataclasses.dataclass(frozen=True)
class _Job:
    rows: list[int]
    paths: list[str]
    pixels: list[int]


# (row, status, width, height, digest, phash, reason)
_Result = tuple[int, int, int, int, bytes, int, str]


def _run_batch(job: _Job) -> list[_Result]:
    out: list[_Result] = []
    for row, path, pixels in zip(job.rows, job.paths, job.pixels, strict=True):
        try:
            data = files.read_bytes(path)
        except InputError as e:
            out.append((row, MISSING, 0, 0, b"", 0, e.message))
            continue
        except OSError as e:
            out.append((row, UNREADABLE, 0, 0, b"", 0, f"cannot read: {e.strerror or e}"))
            continue
        try:
            w, h, digest, phash = inspect_image(data, path, pixels)
        except InputError as e:
            out.append((row, UNREADABLE, 0, 0, b"", 0, e.message))
            continue
        out.append((row, OK, w, h, digest, phash, ""))
    return out


def default_cache_path(image_dir: str | os.PathLike[str]) -> Path:
    """Where the hashes of the images under ``image_dir`` are cached by default:
    ``$COCOKIT_CACHE_DIR`` (else ``$XDG_CACHE_HOME/cocokit``, else
    ``~/.cache/cocokit``), file ``image-hashes-<16 hex digits of the folder's absolute
    path>.npz``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "cocokit")
    local = files.local_path(image_dir)
    where = str(local.resolve()) if local is not None else str(image_dir)
    key = hashlib.blake2b(where.encode("utf-8"), digest_size=8).hexdigest()
    return Path(root) / f"image-hashes-{key}.npz"


class HashCache:
    """Hashes of image files already read, keyed by (absolute path, size, mtime in ns).

    Kept in one ``.npz`` file (numpy arrays: ``path``, ``size``, ``mtime``, ``width``,
    ``height``, ``digest``, ``phash``); a file whose size or modification time changed is
    read again. A cache that cannot be read is ignored (and rewritten); one that cannot
    be written is left as it was, and the check goes on, unless it is ``required`` (a
    cache the caller named): then :meth:`save` raises the
    :class:`~cocokit.errors.OutputError`.
    """

    VERSION = 2  # 2: SHA-256 digests

    def __init__(self, path: str | os.PathLike[str] | None, *, required: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.required = required
        self.entries: dict[str, tuple[int, int, int, int, bytes, int]] = {}
        self.changed = False
        if self.path is not None and self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    if int(z["version"]) == self.VERSION:
                        cols = [z[k] for k in ("path", "size", "mtime", "width", "height",
                                               "digest", "phash")]
                        for p, s, m, w, h, d, ph in zip(*cols, strict=True):
                            self.entries[str(p)] = (int(s), int(m), int(w), int(h),
                                                    bytes(d), int(ph))
            except Exception:  # a damaged cache is only a slower run
                self.entries = {}

    def get(self, path: str, stat: os.stat_result) -> tuple[int, int, bytes, int] | None:
        """(width, height, digest, phash) of ``path`` if cached for this size and mtime."""
        e = self.entries.get(path)
        if e is None or e[0] != stat.st_size or e[1] != stat.st_mtime_ns:
            return None
        return e[2], e[3], e[4], e[5]

    def put(self, path: str, stat: os.stat_result, width: int, height: int, digest: bytes,
            phash: int) -> None:
        self.entries[path] = (stat.st_size, stat.st_mtime_ns, width, height, digest, phash)
        self.changed = True

    def save(self) -> bool:
        """Write the cache (atomically) if anything was added; False if it could not be
        (a ``required`` cache raises the :class:`~cocokit.errors.OutputError`)."""
        if self.path is None or not self.changed:
            return True
        from ..io.atomic import atomic_write, output_error

        keys = sorted(self.entries)
        vals = [self.entries[k] for k in keys]
        buf = io.BytesIO()
        np.savez(
            buf,
            version=np.array(self.VERSION),
            path=np.array(keys, dtype=str),
            size=np.array([v[0] for v in vals], np.int64),
            mtime=np.array([v[1] for v in vals], np.int64),
            width=np.array([v[2] for v in vals], np.int64),
            height=np.array([v[3] for v in vals], np.int64),
            digest=np.array([v[4] for v in vals], dtype="S16"),
            phash=np.array([v[5] for v in vals], np.uint64),
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, [buf.getvalue()], fsync=False)
        except OSError as e:
            if self.required:
                raise output_error(self.path, e) from None
            return False
        self.changed = False
        return True


@dataclasses.dataclass(frozen=True)
class ImageScan:
    """What :func:`scan_images` found, one entry per image row.

    ``status``: :data:`OK`, :data:`MISSING` or :data:`UNREADABLE` (int8); ``reason``
    the message for the others; ``width``/``height`` the file's size after EXIF
    orientation (0 where not OK); ``digest`` SHA-256 of the bytes (``S16``, empty where
    not OK); ``phash`` the perceptual hash (uint64). ``hashed`` images were read,
    ``cached`` taken from the cache.
    """

    status: np.ndarray
    reason: list[str]
    width: np.ndarray
    height: np.ndarray
    digest: np.ndarray
    phash: np.ndarray
    hashed: int
    cached: int

    @property
    def ok(self) -> np.ndarray:
        return self.status == OK


def scan_images(
    file_names: Sequence[str],
    image_dir: str | os.PathLike[str],
    *,
    pixels: np.ndarray | None = None,
    cache: HashCache | None = None,
    workers: int = 1,
    engine: Engine = "local",
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImageScan:
    """Read every image once (or take it from ``cache``) and return an :class:`ImageScan`.

    ``file_names`` are relative to ``image_dir`` (a folder or an fsspec URL);
    ``pixels`` the record size of each (width * height, for Pillow's bomb guard).
    ``workers`` processes run the batches (:func:`cocokit.engine.run_local`), or a
    Ray cluster (``engine="ray"``, ``address``). ``progress(done, total)`` counts images.
    A missing or unreadable image is an entry of the scan, never an exception.
    """
    if engine not in ("local", "ray"):
        raise OptionError("engine", engine, "'local' or 'ray'")
    if workers < 1:
        raise OptionError("workers", workers, "a positive number of processes")
    n = len(file_names)
    status = np.zeros(n, np.int8)
    reason = [""] * n
    width = np.zeros(n, np.int64)
    height = np.zeros(n, np.int64)
    digest = np.zeros(n, "S16")
    phash = np.zeros(n, np.uint64)
    px = np.zeros(n, np.int64) if pixels is None else np.asarray(pixels, np.int64)
    paths = [files.join(image_dir, str(f)) for f in file_names]
    local = files.local_path(image_dir) is not None
    stats: dict[int, os.stat_result] = {}
    todo: list[int] = []
    cached = 0
    for i, p in enumerate(paths):
        if cache is not None and local:
            try:
                st = os.stat(p)
            except OSError:
                todo.append(i)
                continue
            stats[i] = st
            hit = cache.get(os.path.abspath(p), st)
            if hit is not None:
                width[i], height[i], digest[i], phash[i] = hit[0], hit[1], hit[2], hit[3]
                cached += 1
                continue
        todo.append(i)
    jobs = [_Job(todo[s : s + BATCH], [paths[i] for i in todo[s : s + BATCH]],
                 [int(px[i]) for i in todo[s : s + BATCH]]) for s in range(0, len(todo), BATCH)]
    done = cached

    def started() -> None:
        # only once the workers are forked: a progress bar may start a thread
        if progress is not None:
            progress(done, n)

    def take(results: list[_Result]) -> None:
        nonlocal done
        for row, st_, w, h, d, ph, why in results:
            status[row], reason[row] = st_, why
            if st_ == OK:
                width[row], height[row], digest[row], phash[row] = w, h, d, ph
                if cache is not None and row in stats:
                    cache.put(os.path.abspath(paths[row]), stats[row], w, h, d, ph)
        done += len(results)
        if progress is not None:
            progress(done, n)

    if engine == "ray" and jobs:
        started()
        for job, out in zip(jobs, run_on_ray(_run_batch, jobs, address=address), strict=True):
            if isinstance(out, JobFailure):
                out = [(r, UNREADABLE, 0, 0, b"", 0, f"failed on Ray: {out.error}")
                       for r in job.rows]
            take(out)
    elif jobs:
        from PIL import Image  # noqa: F401 - imported once here, inherited by forked workers

        use = 1 if len(jobs) == 1 else min(workers, len(jobs))
        for out in run_local(_run_batch, jobs, workers=use, started=started):
            take(out)
    else:
        started()
    return ImageScan(status, reason, width, height, digest, phash, len(todo), cached)

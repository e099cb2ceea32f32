"""The flag vocabulary every command shares (README, "Command line", has the table).

One spelling, one meaning, on every command:

* ``FILE``, the input: a COCO JSON file, ``.json`` or ``.json.gz``, a local path or a
  URL (``s3://``, ``gs://``, ``https://``, ``memory://``, ...).
* ``-i/--images DIR``: the folder the images' ``file_name`` paths are relative to.
* ``-o/--output``: the output, a file or a folder as the command says; checked here by
  :func:`check_file_output` / :func:`check_folder_output` before any work is done.
* ``--format``: the dataset format (coco, yolo); ``--image-format``: the encoding of the
  images a command writes (jpg, png, ...).
* ``--engine local|ray``: where the per-image work runs (local processes or a Ray
  cluster).
* ``--json``: machine-readable output on stdout.
* ``-q/--quiet``: no progress bars or summaries; errors are still printed.
* ``--drop-negatives``: leave out images without annotations.
* ``--image-ids`` / ``--annotation-ids`` ``keep|auto``: ``keep`` (the default of every
  command) writes the ids as they are; ``auto`` renumbers them 1..N.
* ``--yes``: run even when the run is larger than the limits of :func:`check_run_size`
  (docs/limits.md), which an option with a multiplying effect (``--copies``, the tile
  count of ``--size``/``--overlap``, ``--sample``, ``--repeat``, ``--workers``) can
  reach by a typo.

A renamed flag stays as a hidden option of its own that :func:`renamed` merges into the
new one, with a one-line deprecation note on stderr.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from ..errors import OptionError
from ..io import coco

T = TypeVar("T")

#: How the output option is named in messages.
OUTPUT = "-o/--output"
#: How the image folder option is named in messages.
IMAGES = "-i/--images"


class IdPolicy(str, Enum):
    """``--image-ids`` / ``--annotation-ids``."""

    keep = "keep"
    auto = "auto"


class EngineOpt(str, Enum):
    """``--engine`` of augment, slice and check: where the per-image work runs (local
    processes, or a Ray cluster; :mod:`cocokit.engine`)."""

    local = "local"
    ray = "ray"


#: The one default of ``--image-ids`` and ``--annotation-ids``: the library's
#: (:data:`cocokit.io.coco.DEFAULT_IDS`; README explains why).
DEFAULT_IDS = IdPolicy(coco.DEFAULT_IDS)

ImageIds = Annotated[IdPolicy, typer.Option(
    "--image-ids", help="keep: write image ids as they are (new images are numbered 1..N); "
    "auto: renumber 1..N in output order.")]
AnnotationIds = Annotated[IdPolicy, typer.Option(
    "--annotation-ids", help="keep: write annotation ids as they are; auto: renumber 1..M.")]
DropNegatives = Annotated[bool, typer.Option(
    "--drop-negatives", help="Leave out images without annotations.")]
IdMapFile = Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer needs Optional)
    "--id-map", help="Also write the old-to-new map of image, annotation and category ids "
    "as JSON (docs/predictions.md), for `cocokit results remap`.")]
#: ``--id-map`` of merge: one map per input, as inputs' ids may be equal.
IdMapFiles = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--id-map", help="Also write each input's old-to-new map of image, annotation and "
    "category ids as JSON (repeat: one file per input, in input order; "
    "docs/predictions.md), for `cocokit results remap`.")]
CocoFile = Annotated[str, typer.Argument(
    help="COCO JSON file (.json or .json.gz; a path or a URL).")]
#: FILE typed as a Path (:data:`CocoFile` is the ``str`` that keeps a URL as typed).
CocoPath = Annotated[Path, typer.Argument(help="COCO JSON file.")]
#: ``-i/--images`` of the commands that need the images (augment, slice).
Images = Annotated[str, typer.Option(
    "--images", "-i", help="Folder the file_name of each image is relative to: a path "
    "or an fsspec URL (s3://bucket/train, gs://..., memory://...).")]
#: ``--quality`` of the JPEG images a command writes.
Quality = Annotated[int, typer.Option("--quality", help="JPEG quality (1-100).")]
#: ``--address``, the Ray cluster of ``--engine ray`` (:func:`cocokit.engine.run_on_ray`).
Address = Annotated[Optional[str], typer.Option(  # noqa: UP045
    "--address", help="With --engine ray: the address of a running cluster (auto, "
    "ray://host:10001). Default: $RAY_ADDRESS, else a local Ray started for the run.")]
Json = Annotated[bool, typer.Option(
    "--json", help="Print machine-readable JSON on stdout (the shape is in the README).")]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress bars or summaries (errors are still printed).")]

Yes = Annotated[bool, typer.Option(
    "--yes", help="Run even if the run would write more than 1,000,000 images or an "
    "estimated 1 TB, or start more than 4 workers per core (docs/limits.md).")]

#: Most images a run writes without ``--yes``.
MAX_OUTPUT_IMAGES = 1_000_000
#: Most bytes a run writes without ``--yes``, as estimated by :func:`estimated_bytes`.
MAX_OUTPUT_BYTES = 10**12
#: Most local worker processes per core without ``--yes``.
MAX_WORKERS_PER_CORE = 4
#: Estimated bytes per pixel of a written image, by suffix: JPEG (quality 90-95 of
#: photographs, about 0.3-0.7) and the uncompressed size for every other format.
BYTES_PER_PIXEL = {"jpg": 0.75, "jpeg": 0.75}


def estimated_bytes(pixels: Any, suffix: str | Sequence[str]) -> int:
    """Estimated bytes of written images: ``pixels`` (a count, or one per image) times
    the bytes per pixel of the suffix (one for all, or one per image):
    :data:`BYTES_PER_PIXEL`, else 3 (uncompressed RGB)."""
    import numpy as np

    px = np.asarray(pixels, np.float64).reshape(-1)
    suffixes = [suffix] if isinstance(suffix, str) else list(suffix)
    per = np.array([BYTES_PER_PIXEL.get(str(x).lower().lstrip("."), 3.0) for x in suffixes],
                   np.float64)
    return int((px * per).sum())


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def check_run_size(option: str, value: Any, images: int, nbytes: int | None, yes: bool,
                   what: str = "images") -> None:
    """Refuse (OptionError naming ``option``, the flag that multiplies the run) a run
    that would write more than :data:`MAX_OUTPUT_IMAGES` images or an estimated
    :data:`MAX_OUTPUT_BYTES`, unless ``yes`` (``--yes``). Called before any work;
    ``nbytes`` None means not yet known (``images`` is then a lower bound)."""
    if yes:
        return
    if images > MAX_OUTPUT_IMAGES or (nbytes or 0) > MAX_OUTPUT_BYTES:
        amount = (f"{images:,} {what}, about {_size(nbytes)}" if nbytes is not None
                  else f"at least {images:,} {what}")
        raise OptionError(option, value, f"at most {MAX_OUTPUT_IMAGES:,} images and "
                          f"{_size(MAX_OUTPUT_BYTES)} per run (this one would write "
                          f"{amount}; pass --yes to run it anyway, see docs/limits.md)")


def check_seed(seed: int) -> None:
    """Refuse a negative ``--seed`` (numpy's generators take 0 and up)."""
    if seed < 0:
        raise OptionError("--seed", seed, "an integer >= 0")


def check_id_map(id_map: str | None, inputs: Sequence[str | os.PathLike[str]],
                 output: str | os.PathLike[str]) -> None:
    """Check the ``--id-map`` file output, when given, as every file output is checked,
    and refuse one that names an input or ``-o/--output`` (it would replace it)."""
    if id_map is None:
        return
    check_file_output(id_map, "--id-map")
    local = _local(id_map)
    if local is None:
        return
    where = os.path.realpath(local)
    for other in (*inputs, output):
        mine = _local(os.fspath(other))
        if mine is not None and os.path.realpath(mine) == where:
            raise OptionError("--id-map", id_map, "a file other than the input(s) and "
                              "-o/--output")


def check_id_maps(id_maps: Sequence[str] | None, inputs: Sequence[str | os.PathLike[str]],
                  output: str | os.PathLike[str]) -> None:
    """Check merge's ``--id-map`` files: one per input, each a file output that is not
    an input or the output, no two the same (the second would overwrite the first)."""
    if not id_maps:
        return
    if len(id_maps) != len(inputs):
        raise OptionError("--id-map", list(id_maps), f"one file per input ({len(inputs)}), "
                          "in input order")
    seen: set[str] = set()
    for path in id_maps:
        check_id_map(path, inputs, output)
        key = os.path.abspath(path)
        if key in seen:
            raise OptionError("--id-map", path, "a different file for each input")
        seen.add(key)


def check_workers(workers: int | None, yes: bool, engine: str) -> None:
    """Refuse ``--workers`` below 1; with the local ``engine``, also above
    :data:`MAX_WORKERS_PER_CORE` per core of this machine unless ``yes`` (each local
    worker is a process, started at once). Another engine (``ray``) runs its workers on
    a cluster whose size is not known here, so its count is not capped."""
    if workers is None:
        return
    if workers < 1:
        raise OptionError("--workers", workers, "an integer >= 1")
    if engine != "local":
        return
    cap = MAX_WORKERS_PER_CORE * (os.cpu_count() or 1)
    if workers > cap and not yes:
        raise OptionError("--workers", workers, f"at most {cap} ({MAX_WORKERS_PER_CORE} per "
                          "core: each worker is a process); pass --yes to start more")


# the old spellings, hidden; each command merges them with renamed()
DropEmptyAlias = Annotated[bool, typer.Option("--drop-empty", hidden=True)]
IgnoreNegativesAlias = Annotated[bool, typer.Option("--ignore-negative-samples", hidden=True)]


def say(line: str) -> None:
    """Print one line on stderr as it is: no markup, no colouring, no hard wrap."""
    from ._console import err_console

    err_console.print(line, markup=False, highlight=False, soft_wrap=True)


def deprecated(note: str) -> None:
    """Print a one-line deprecation note on stderr (also with ``--quiet``)."""
    say(note)


def _given(value: Any) -> bool:
    return value is not None and value is not False and value != [] and value != ()


def renamed(new: T, old: T | None, old_flag: str, new_flag: str, default: Any = None) -> T:
    """The value of a renamed option: the new spelling's, or the old (hidden) one's,
    which prints ``OLD is deprecated; use NEW`` on stderr.

    ``old`` is None (or False, or empty) when the old spelling was not typed; ``default``
    is the new option's default, so giving both spellings with different values is
    refused instead of one silently winning.
    """
    if not _given(old):
        return new
    deprecated(f"{old_flag} is deprecated; use {new_flag}")
    value = old.value if isinstance(old, Enum) else old
    if _given(new) and new != default and new != old and getattr(new, "value", new) != value:
        raise OptionError(new_flag, getattr(new, "value", new),
                          f"one spelling: {new_flag} (not also {old_flag})")
    return old  # type: ignore[return-value]


def _local(path: str | os.PathLike[str]) -> Path | None:
    from ..io import files

    return files.local_path(path)


#: what ``-o -`` gets: outputs are written atomically, beside their target, never to stdout
NO_STDOUT = ("a file path ('-' is not standard output here: every output is written to a "
             "file atomically; name a file, or ./- for a file called '-')")


def check_file_output(path: str | os.PathLike[str], option: str = OUTPUT) -> None:
    """Refuse a file output that names a folder (an existing one, or a path ending in
    ``/``), lies in a folder that does not exist, or is ``-`` (standard output is not
    an output: see :data:`NO_STDOUT`). URLs are checked when written; an existing
    device, FIFO, socket or symbolic link is refused by :mod:`cocokit.io.atomic`."""
    text = os.fspath(path)
    if text == "-":
        raise OptionError(option, text, NO_STDOUT)
    local = _local(text)
    if local is None:
        return
    if text.endswith(("/", os.sep)) or local.is_dir():
        raise OptionError(option, text, "a file path (this names a folder)")
    parent = local.parent if str(local.parent) else Path(".")
    if not parent.is_dir():
        raise OptionError(option, text, "a file path in an existing folder")


def check_folder_output(path: str | os.PathLike[str], option: str = OUTPUT) -> None:
    """Refuse a folder output that is an existing file, a new name ending in ``.json``
    (a file name: the command writes a folder), whose parent folder does not exist, or
    ``-`` (not a folder)."""
    text = os.fspath(path)
    if text == "-":
        raise OptionError(option, text, "a folder ('-' is not standard output here; "
                          "name a folder, or ./- for one called '-')")
    local = _local(text)
    if local is None:
        return
    if local.exists() and not local.is_dir():
        raise OptionError(option, text, "a folder (this is a file)")
    if not local.exists() and local.suffix.lower() == ".json":
        raise OptionError(option, text, "a folder (created if missing), not a .json file name")
    if not local.resolve().parent.is_dir():
        raise OptionError(option, text, "a folder whose parent exists")


def check_image_folder(images: str | os.PathLike[str], option: str = IMAGES) -> None:
    """Refuse a local image folder that is not there (URLs are checked when read)."""
    local = _local(images)
    if local is not None and not local.is_dir():
        raise OptionError(option, os.fspath(images), "an existing folder of images")


def ids_note(image_ids: str, annotation_ids: str, *, new_records: str | None = None) -> str:
    """The summary line saying what happened to the ids of an output.

    ``new_records`` names records the command made itself (``"tiles"``, ``"copies"``),
    which are numbered after the kept ids with ``keep``; ``"all"`` means every record is
    new (an import), so both policies give 1..N.
    """
    if new_records == "all":
        return "image and annotation ids numbered 1..N (new records)"
    parts = []
    for what, policy, flag in (("image", image_ids, "--image-ids"),
                               ("annotation", annotation_ids, "--annotation-ids")):
        if str(getattr(policy, "value", policy)) == "keep":
            kept = f"{what} ids kept" + (f", new {new_records} numbered after them"
                                         if new_records else "")
            parts.append(f"{kept} ({flag} auto renumbers 1..N)")
        else:
            parts.append(f"{what} ids renumbered 1..N ({flag} keep keeps them)")
    return "; ".join(parts)


__all__ = [
    "BYTES_PER_PIXEL", "DEFAULT_IDS", "IMAGES", "MAX_OUTPUT_BYTES", "MAX_OUTPUT_IMAGES",
    "MAX_WORKERS_PER_CORE", "OUTPUT", "Address", "AnnotationIds", "CocoFile", "CocoPath",
    "DropEmptyAlias", "DropNegatives", "EngineOpt", "IdMapFile", "IdMapFiles", "IdPolicy",
    "IgnoreNegativesAlias", "ImageIds", "Images", "Json", "Quality", "Quiet", "Yes",
    "check_file_output", "check_folder_output", "check_id_map", "check_id_maps",
    "check_image_folder",
    "check_run_size", "check_seed", "check_workers", "deprecated", "estimated_bytes",
    "ids_note", "renamed", "say",
]

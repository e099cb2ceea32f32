"""The flag vocabulary every command shares (README, "Command line", has the table).

One spelling, one meaning, on every command:

* ``-i/--images DIR``: the folder the images' ``file_name`` paths are relative to.
* ``-o/--output``: the output, a file or a folder as the command says; checked here by
  :func:`check_file_output` / :func:`check_folder_output` before any work is done.
* ``--format``: the dataset format (coco, yolo); ``--image-format``: the encoding of the
  images a command writes (jpg, png, ...).
* ``--json``: machine-readable output on stdout.
* ``--drop-negatives``: leave out images without annotations.
* ``--image-ids`` / ``--annotation-ids`` ``keep|auto``: ``keep`` (the default of every
  command) writes the ids as they are; ``auto`` renumbers them 1..N.

A renamed flag stays as a hidden option of its own that :func:`renamed` merges into the
new one, with a one-line deprecation note on stderr.
"""

from __future__ import annotations

import os
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
Json = Annotated[bool, typer.Option(
    "--json", help="Print machine-readable JSON on stdout (the shape is in the README).")]

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


def check_file_output(path: str | os.PathLike[str], option: str = OUTPUT) -> None:
    """Refuse a file output that names a folder (an existing one, or a path ending in
    ``/``) or lies in a folder that does not exist. URLs are checked when written."""
    text = os.fspath(path)
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
    (a file name: the command writes a folder), or whose parent folder does not exist."""
    text = os.fspath(path)
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
    "DEFAULT_IDS", "IMAGES", "OUTPUT", "AnnotationIds", "DropEmptyAlias", "DropNegatives",
    "IdMapFile", "IdPolicy", "IgnoreNegativesAlias", "ImageIds", "Json",
    "check_file_output", "check_folder_output", "check_image_folder",
    "deprecated", "ids_note", "renamed", "say",
]

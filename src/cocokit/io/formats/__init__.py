"""Dataset formats: one module per format, a reader and a writer beside each other,
and one registry to pick them by name or by looking at the input.

Each module (``coco``, ``yolo``, ``cvat``, ``dota``, ``voc``, ``labelme``,
``labelstudio``) has ``NAME``, ``detect(path) -> bool`` (the one sniffer,
:func:`cocokit.io.sniff.format_of`), ``read(path, *, images=None) -> (Dataset, Losses)``
and ``write(ds, path, *, images=None, strict=False) -> Losses`` (YOLO's also takes
``task``; COCO's ``image_ids`` and ``annotation_ids``). Readers build COCO records and
go through the one COCO reader; writers go through the one export contract, refuse a
lossy conversion under ``strict`` before writing anything, and write their files
atomically (a folder staged, so nothing is half-written). What they share is in
:mod:`~cocokit.io.formats.records`. The :class:`Losses` say what the target (or,
reading, the model) could not carry and what was done instead.

>>> from cocokit.io import formats
>>> ds, losses = formats.read("voc_folder/")                 # doctest: +SKIP
>>> losses = formats.write(ds, "labelme/", format="labelme")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import inspect
import os
from types import ModuleType
from typing import Any

from ...dataset import Dataset
from ...errors import InputError, OptionError
from .. import sniff
from .losses import Loss, Losses, LossyConversion

__all__ = ["FORMATS", "Loss", "Losses", "LossyConversion", "detect", "format_module", "read",
           "write"]

#: Format name -> module (under ``cocokit.io.formats``). The order is the order of
#: detection: the first whose ``detect`` says yes reads the input.
#: CVAT comes before VOC: a folder of ``*.xml`` files would be taken for VOC.
FORMATS: dict[str, str] = {
    "coco": "coco",
    "yolo": "yolo",
    "cvat": "cvat",
    "dota": "dota",
    "voc": "voc",
    "labelme": "labelme",
    "labelstudio": "labelstudio",
}


def format_module(name: str, option: str = "format") -> ModuleType:
    """The module of the format ``name`` (an :class:`OptionError` on ``option`` naming the
    formats for an unknown one)."""
    key = name.lower().replace("-", "").replace("_", "")
    if key not in FORMATS:
        raise OptionError(option, name, "one of " + ", ".join(FORMATS))
    return importlib.import_module(f"{__name__}.{FORMATS[key]}")


def detect(path: str) -> str:
    """The name of the format of ``path``, or an :class:`InputError` saying none fits
    (or that there is nothing at ``path``)."""
    text = os.fspath(path)
    if "://" not in text and not os.path.exists(text):
        raise InputError(text, None, "no such file or folder")
    try:
        found = sniff.format_of(path)  # the one sniffer, once (each module's detect asks it)
    except OSError:
        found = None
    if found is not None:
        return found
    raise InputError(str(path), None, "cannot tell its format (give it: --from / format=; "
                     "one of " + ", ".join(FORMATS) + ")")


def read(path: Any, format: str | None = None, *,
         images: str | None = None) -> tuple[Dataset, Losses]:
    """Read ``path`` in ``format`` (detected when None): the dataset, and what reading
    could not carry into the COCO model."""
    name = format or detect(str(path))
    module = format_module(name)
    ds, losses = module.read(str(path), images=images)
    return ds, losses


def write(ds: Dataset, path: Any, format: str, *, images: str | None = None,
          strict: bool = False, task: str | None = None, image_ids: str | None = None,
          annotation_ids: str | None = None) -> Losses:
    """Write ``ds`` to ``path`` in ``format``; returns what the target could not carry.

    ``strict`` refuses a lossy conversion before anything is written
    (:class:`~cocokit.io.formats.losses.LossyConversion`). A format module's ``write``
    takes ``strict`` as a keyword; one that does not is refused under ``strict``.
    ``task`` is the YOLO task (``detect``, ``segment``, ``pose``, ``obb``; None: chosen
    from the data, see :func:`cocokit.io.formats.yolo.default_task`); another format
    refuses it. ``image_ids`` and ``annotation_ids`` are the id policies of a COCO
    target (``keep``, the default, or ``auto``; :func:`cocokit.io.coco.write_coco`);
    the other formats do not store COCO ids and refuse them.
    """
    module = format_module(format)
    params = inspect.signature(module.write).parameters
    if strict and "strict" not in params:
        raise OptionError("strict", True, f"a format whose writer checks losses before "
                          f"writing ({format} does not)")
    if task is not None and "task" not in params:
        raise OptionError("task", task, f"a format with tasks (yolo; not {format})")
    kwargs: dict[str, Any] = {"strict": True} if strict else {}
    if task is not None:
        kwargs["task"] = task
    for option, value in (("image_ids", image_ids), ("annotation_ids", annotation_ids)):
        if value is None:
            continue
        if option not in params:
            raise OptionError(option, value, f"a format that stores COCO ids (coco; not "
                              f"{format}, whose ids are numbered 1..N on reading)")
        kwargs[option] = value
    losses: Losses = module.write(ds, str(path), images=images, **kwargs)
    return losses

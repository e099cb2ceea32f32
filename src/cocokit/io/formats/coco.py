"""COCO JSON as a format of the registry: the one COCO reader and writer
(:mod:`cocokit.io.coco`), nothing lost either way."""

from __future__ import annotations

from ...dataset import Dataset
from .. import sniff
from ..coco import DEFAULT_IDS, IdPolicy, read_coco, write_coco
from .losses import Losses

__all__ = ["NAME", "detect", "read", "write"]

NAME = "coco"


def detect(path: str) -> bool:
    """A JSON file (``.json`` or ``.json.gz``, or a URL) that the sniffer does not call
    another format."""
    return sniff.format_of(path) == NAME


def read(path: str, *, images: str | None = None) -> tuple[Dataset, Losses]:
    """Read a COCO file (the one reader); no losses."""
    return read_coco(path), Losses()


def write(ds: Dataset, path: str, *, images: str | None = None, strict: bool = False,
          image_ids: IdPolicy = DEFAULT_IDS, annotation_ids: IdPolicy = DEFAULT_IDS) -> Losses:
    """Write a COCO file (the one writer, under the export contract, with its id
    policies); no losses."""
    write_coco(ds, path, image_ids=image_ids, annotation_ids=annotation_ids)
    return Losses()

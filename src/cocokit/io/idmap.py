"""Id maps: which old id became which new one when a command renumbered ids.

The one export plan (:func:`cocokit.io.coco.plan_export`) knows, for every image and
annotation it writes, the id it had and the id it gets; :class:`IdMap` keeps both as
columns, and is written as JSON (``--id-map FILE.json``)::

    {"images": {"397133": 1, ...},          # old image id -> new image id
     "annotations": {"1768": 1, ...},       # old annotation id -> new annotation id
     "categories": {"1": 0, ...},           # old category id -> new (when renumbered)
     "file_names": {"1": "000000397133.jpg", ...}}   # new image id -> its file_name

JSON keys are strings; the values are integers (file names strings). Records the output
does not have (filtered out) are not in the map. :func:`cocokit.remap_results` uses it
to carry detection results over to the new ids.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import msgspec
import numpy as np

from ..dataset import lookup
from ..errors import InputError
from .atomic import atomic_write
from .files import read_document
from .jsontext import syntax_error

__all__ = ["IdMap", "read_id_map", "write_id_map"]



def _empty() -> np.ndarray:
    return np.zeros(0, np.int64)


def _pairs(old: np.ndarray, new: np.ndarray) -> dict[str, int]:
    return dict(zip(map(str, old.tolist()), new.tolist(), strict=True))


@dataclasses.dataclass(frozen=True)
class IdMap:
    """Old and new ids of images, annotations and categories, as aligned columns.

    ``categories_old`` / ``categories_new`` are empty when the category ids were not
    renumbered (they are then kept as they are). ``file_names`` are those of the images,
    aligned with ``images_new`` (empty when not known).
    """

    images_old: np.ndarray = dataclasses.field(default_factory=_empty)
    images_new: np.ndarray = dataclasses.field(default_factory=_empty)
    annotations_old: np.ndarray = dataclasses.field(default_factory=_empty)
    annotations_new: np.ndarray = dataclasses.field(default_factory=_empty)
    categories_old: np.ndarray = dataclasses.field(default_factory=_empty)
    categories_new: np.ndarray = dataclasses.field(default_factory=_empty)
    file_names: tuple[str, ...] = ()

    def with_categories(self, old: np.ndarray, new: np.ndarray) -> IdMap:
        """The same map with the category ids' old and new values."""
        return dataclasses.replace(self, categories_old=np.asarray(old, np.int64),
                                   categories_new=np.asarray(new, np.int64))

    def then(self, later: IdMap) -> IdMap:
        """This map followed by ``later``, which renumbered the ids this map gives (a
        merge, then the export that wrote it): old ids of this map to the new ids of
        ``later``; records ``later`` lacks (not written) are left out. Categories are
        composed when ``later`` changed them, else this map's; ``file_names`` are
        ``later``'s when it has them, else this map's."""
        img = lookup(later.images_old, self.images_new)
        ann = lookup(later.annotations_old, self.annotations_new)
        ki, ka = img >= 0, ann >= 0
        cats_old, cats_new = self.categories_old, self.categories_new
        if len(later.categories_old):
            cat = lookup(later.categories_old, cats_new)
            cats_old, cats_new = cats_old[cat >= 0], later.categories_new[cat[cat >= 0]]
        names: tuple[str, ...] = ()
        if later.file_names:
            names = tuple(later.file_names[i] for i in img[ki].tolist())
        elif self.file_names:
            names = tuple(n for n, k in zip(self.file_names, ki.tolist(), strict=True) if k)
        return IdMap(self.images_old[ki], later.images_new[img[ki]],
                     self.annotations_old[ka], later.annotations_new[ann[ka]],
                     cats_old, cats_new, names)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the module docstring."""
        out: dict[str, Any] = {
            "images": _pairs(self.images_old, self.images_new),
            "annotations": _pairs(self.annotations_old, self.annotations_new),
            "categories": _pairs(self.categories_old, self.categories_new),
        }
        if self.file_names:
            out["file_names"] = dict(zip(map(str, self.images_new.tolist()), self.file_names,
                                         strict=True))
        return out

    @classmethod
    def from_dict(cls, data: Any, file: str | None = None) -> IdMap:
        """Read the JSON shape back; raises InputError naming the key of a bad entry."""
        if not isinstance(data, Mapping):
            raise InputError(file, None, 'an id map must be a JSON object {"images": {old: '
                             'new}, "annotations": {...}, "categories": {...}}')
        if not any(k in data for k in ("images", "annotations", "categories")):
            raise InputError(file, None, 'an id map needs at least one of "images", '
                             '"annotations" and "categories"')
        cols: dict[str, Any] = {}
        for key in ("images", "annotations", "categories"):
            part = data.get(key, {})
            if not isinstance(part, Mapping):
                raise InputError(file, key, "expected an object {old id: new id}")
            old, new = [], []
            for k, v in part.items():
                try:
                    o = int(k)
                except ValueError:
                    raise InputError(file, f"{key}.{k}", "keys must be integer ids") from None
                if not isinstance(v, int) or isinstance(v, bool):
                    raise InputError(file, f"{key}.{k}", f"the new id must be an integer, "
                                     f"found {v!r}")
                old.append(o)
                new.append(v)
            cols[f"{key}_old"] = np.array(old, np.int64)
            cols[f"{key}_new"] = np.array(new, np.int64)
        return cls(**cols)


def write_id_map(id_map: IdMap, path: str | os.PathLike[str]) -> None:
    """Write the map as JSON (atomically)."""
    atomic_write(path, [msgspec.json.format(msgspec.json.encode(id_map.to_dict()), indent=1)])


def read_id_map(path: str | os.PathLike[str]) -> IdMap:
    """Read a map written by :func:`write_id_map` (``--id-map``)."""
    file = os.fspath(path)
    text = read_document(path)  # the one reader: a path or a URL, .json.gz too
    try:
        data = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise syntax_error(text, file, e) from None
    return IdMap.from_dict(data, file)

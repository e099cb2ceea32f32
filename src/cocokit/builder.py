"""Building a dataset from scratch, record by record (:class:`DatasetBuilder`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .dataset import Annotations, Categories, Dataset, Images, plain
from .io.coco import tables_from_records

__all__ = ["DatasetBuilder"]


def _num(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    return x


def _polygon_list(poly: Any) -> list[list[float]]:
    """Accept [x1,y1,...], [[x1,y1,...], ...], an (k,2) array or a list of them."""
    if isinstance(poly, np.ndarray):
        if poly.ndim == 2 and poly.shape[1] == 2:
            return [poly.astype(np.float64).ravel().tolist()]
        if poly.ndim == 1:
            return [poly.astype(np.float64).tolist()]
        raise ValueError(f"polygon array of shape {poly.shape}; expected (k, 2) or (2k,)")
    poly = list(poly)
    if not poly:
        return []
    if isinstance(poly[0], (int, float, np.number)):
        return [[float(v) for v in poly]]
    out: list[list[float]] = []
    for ring in poly:
        out.extend(_polygon_list(ring))
    return out


def _rle_dict(rle: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: _num(v) for k, v in rle.items()}
    counts = out.get("counts")
    if isinstance(counts, bytes):
        out["counts"] = counts.decode("ascii")
    elif isinstance(counts, np.ndarray):
        out["counts"] = counts.astype(np.int64).tolist()
    out["size"] = [int(v) for v in out["size"]]
    return out


class DatasetBuilder:
    """Build a dataset from scratch, record by record.

    Numbers may be Python or numpy; polygons may be flat lists, lists of rings or
    (k, 2) arrays; RLE as a dict (``counts`` bytes, str or a list).

    >>> b = DatasetBuilder()
    >>> cat = b.add_category("person")
    >>> img = b.add_image("a.jpg", width=640, height=480)
    >>> b.add_annotation(img, cat, bbox=[10, 20, 30, 40])
    1
    >>> ds = b.build()
    """

    def __init__(self, base: Dataset | None = None) -> None:
        self._cats: list[dict[str, Any]] = list(base.categories.records) if base else []
        self._images: list[dict[str, Any]] = []
        self._anns: list[dict[str, Any]] = []
        self._base = base
        self._extra: dict[str, Any] = dict(base.extra) if base else {}
        self._next_image_id = int(base.images.id.max()) + 1 if base and len(base.images) else 1
        self._next_ann_id = (
            int(base.annotations.id.max()) + 1 if base and len(base.annotations) else 1
        )
        self._cat_ids = {int(c["id"]) for c in self._cats}
        self._cat_names = {str(c["name"]): int(c["id"]) for c in self._cats}

    def set(self, key: str, value: Any) -> None:
        """Set a top-level key such as ``info`` or ``licenses``."""
        if key in ("images", "annotations", "categories"):
            raise ValueError(f"{key} is built with add_*")
        self._extra[key] = plain(value)

    def add_category(
        self, name: str, id: int | None = None, supercategory: str | None = None, **extra: Any
    ) -> int:
        """Add a category; returns its id (next free id when not given)."""
        if name in self._cat_names:
            raise ValueError(f"category {name!r} already exists")
        cid = int(_num(id)) if id is not None else max(self._cat_ids, default=0) + 1
        if cid in self._cat_ids:
            raise ValueError(f"category id {cid} already exists")
        rec: dict[str, Any] = {"id": cid, "name": name}
        if supercategory is not None:
            rec["supercategory"] = supercategory
        rec.update(plain(extra))
        self._cats.append(rec)
        self._cat_ids.add(cid)
        self._cat_names[name] = cid
        return cid

    def add_image(
        self, file_name: str, width: int, height: int, id: int | None = None, **extra: Any
    ) -> int:
        """Add an image; returns its id (next free id when not given)."""
        iid = int(_num(id)) if id is not None else self._next_image_id
        self._next_image_id = max(self._next_image_id, iid + 1)
        rec = {
            "id": iid,
            "file_name": str(file_name),
            "width": int(_num(width)),
            "height": int(_num(height)),
        }
        rec.update(plain(extra))
        self._images.append(rec)
        return iid

    def add_annotation(
        self,
        image_id: int,
        category: int | str,
        *,
        bbox: Any = None,
        polygon: Any = None,
        rle: Mapping[str, Any] | None = None,
        keypoints: Any = None,
        num_keypoints: int | None = None,
        area: float | None = None,
        iscrowd: int | None = None,
        id: int | None = None,
        **extra: Any,
    ) -> int:
        """Add an annotation by bbox (xywh), polygon or RLE; returns its id.

        ``category`` is a category id or name. bbox and area are computed on export
        where not given. ``iscrowd`` defaults to 1 for RLE and 0 otherwise.
        """
        if isinstance(category, str):
            if category not in self._cat_names:
                raise KeyError(f"no category named {category!r}")
            cid = self._cat_names[category]
        else:
            cid = int(_num(category))
        if polygon is not None and rle is not None:
            raise ValueError("give a polygon or an RLE, not both")
        aid = int(_num(id)) if id is not None else self._next_ann_id
        self._next_ann_id = max(self._next_ann_id, aid + 1)
        rec: dict[str, Any] = {"id": aid, "image_id": int(_num(image_id)), "category_id": cid}
        if polygon is not None:
            rec["segmentation"] = _polygon_list(polygon)
        elif rle is not None:
            rec["segmentation"] = _rle_dict(rle)
        if bbox is not None:
            b = np.asarray(bbox, np.float64).ravel()
            if b.shape != (4,):
                raise ValueError(f"bbox must have 4 numbers (x, y, w, h), got {b.tolist()}")
            rec["bbox"] = b.tolist()
        if polygon is None and rle is None and bbox is None:
            raise ValueError("an annotation needs a bbox, a polygon or an RLE")
        if area is not None:
            rec["area"] = float(_num(area))
        rec["iscrowd"] = (
            int(_num(iscrowd)) if iscrowd is not None else (1 if rle is not None else 0)
        )
        if keypoints is not None:
            kp = np.asarray(keypoints, np.float64).ravel()
            if len(kp) % 3:
                raise ValueError("keypoints must be triples (x, y, v)")
            rec["keypoints"] = [int(v) if float(v).is_integer() else float(v) for v in kp]
            rec["num_keypoints"] = (
                int(_num(num_keypoints))
                if num_keypoints is not None
                else int(np.count_nonzero(kp[2::3] > 0))
            )
        rec.update(plain(extra))
        self._anns.append(rec)
        return aid

    def build(self) -> Dataset:
        """The dataset built so far (the builder can go on adding)."""
        images, annotations = tables_from_records(self._images, self._anns)
        if self._base is not None:
            images = Images.concat([self._base.images, images])
            annotations = Annotations.concat([self._base.annotations, annotations])
        key_order = self._base.key_order if self._base is not None else None
        return Dataset(images, annotations, Categories(self._cats), self._extra, key_order)

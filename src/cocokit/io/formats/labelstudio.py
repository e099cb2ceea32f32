"""Label Studio: its JSON export (a list of tasks), read and written.

Written: ``OUT/tasks.json`` (the task list) and ``OUT/label_map.json`` (categories with
their COCO ids, info, licenses). Read: such a folder, or one JSON export file.

One task per image: ``{"id": <image id>, "data": {"image": <file_name>, "width",
"height", ...the image's other keys}, "annotations": [{"result": [...]}]}``. With
``images`` given, ``data.image`` is ``images`` joined with the file name, and that prefix
is taken off again on reading.

**Results.** ``rectanglelabels`` <-> a box without segmentation, ``polygonlabels`` <-> a
polygon segmentation; coordinates are percentages of the image size (``original_width``
/ ``original_height``), so a round trip gives boxes and polygons back to float precision
(``x * 100 / w * w / 100``), not bit for bit. A multi-part polygon is one result per
ring, the later rings naming the first in ``parentID``, and is read back as one
annotation. ``brushlabels`` (``format: rle``) <-> an RLE segmentation, pixel for pixel
(Label Studio's own bit-packed RLE of the RGBA pixels, see :func:`brush_encode`; read back
as compressed COCO RLE). The result ``id`` is the annotation id, the task ``id`` the image id; both
come back when they are unique integers (result ids that are not, such as Label Studio's
own random ones, are kept as the annotation key ``labelstudio_id`` and written back).

**Not carried**, counted in the loss report: keypoints, crowd flags, areas, other
annotation keys, boxes that are not the tight box of their polygon or mask. Reading:
a rotated rectangle becomes the polygon of its 4 corners; results of other types
(keypoints, choices, text), predictions and other task keys are kept unconverted in
the image keys ``labelstudio_results``, ``labelstudio_predictions`` and
``labelstudio_<key>`` and written back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ...dataset import Dataset, plain
from ...errors import InputError
from ...geometry import encoded_rle, mask_api
from .. import sniff
from .losses import Losses, refuse_lossy
from .records import (
    CategoryMap,
    common_losses,
    dataset_from_records,
    export_rows,
    output_folder,
    parse_json,
    polygon_bbox,
    polygon_box_losses,
    read_label_map,
)

__all__ = ["NAME", "TASKS", "brush_decode", "brush_encode", "detect", "read", "write"]

NAME = "labelstudio"
TASKS = "tasks.json"
_TASK_KEYS = {"id", "data", "annotations", "predictions"}
_IMAGE_KEYS = {"labelstudio_results", "labelstudio_predictions"}


def _tasks_file(path: str) -> Path | None:
    p = Path(path)
    if p.is_dir():
        return p / TASKS if (p / TASKS).is_file() else None
    return p if p.is_file() and p.suffix.lower() == ".json" else None


def detect(path: str) -> bool:
    """A Label Studio JSON export: a list whose first task has ``data`` and
    ``annotations`` or ``predictions`` (or a folder with ``tasks.json``)."""
    return sniff.format_of(path) == NAME


# -- brush RLE -----------------------------------------------------------------------------
# Label Studio's brush masks: the RGBA pixels (each mask pixel repeated 4 times) packed as
# thi.ng's rle-pack bit stream, most significant bit first: the value count (32 bits),
# the word size less 1 (5 bits), four run-length field sizes less 1 (4 bits each); then
# records of a flag bit (1: one value repeated, 0: values given one by one), a 2-bit
# index of the field size, the count less 1 in that many bits, and the value(s).

_RUN_BITS = (3, 4, 8, 16)


def brush_encode(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE (a list of bytes) of a boolean (h, w) mask."""
    flat = mask.ravel().astype(bool)
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]])) * 4
    values = np.where(flat[starts], 255, 0) if flat.size else np.zeros(0, np.int64)
    bits = [f"{flat.size * 4:032b}", f"{8 - 1:05b}"] + [f"{b - 1:04b}" for b in _RUN_BITS]
    for length, value in zip(lengths.tolist(), values.tolist()):
        while length > 0:
            n = min(length, 1 << _RUN_BITS[-1])
            k = next(i for i, b in enumerate(_RUN_BITS) if n - 1 < (1 << b))
            bits.append(f"1{k:02b}{n - 1:0{_RUN_BITS[k]}b}{value:08b}")
            length -= n
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return list(int(text, 2).to_bytes(len(text) // 8, "big")) if text else []


def brush_decode(rle: Any, height: int, width: int, file: str, where: str) -> np.ndarray:
    """The boolean (h, w) mask of a Label Studio brush RLE (a list of bytes)."""
    if not isinstance(rle, list) or not all(isinstance(b, int) and 0 <= b < 256 for b in rle):
        raise InputError(file, where, "expected the brush RLE as a list of bytes")
    bits = "".join(f"{b:08b}" for b in rle)
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > len(bits):
            raise InputError(file, where, "the brush RLE ends early")
        value = int(bits[pos:pos + n], 2) if n else 0
        pos += n
        return value

    num = read(32)
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    if num != height * width * 4:
        raise InputError(file, where, f"the brush RLE holds {num} values, expected "
                         f"{height}x{width}x4 = {height * width * 4}")
    out = np.zeros(num, np.int64)
    i = 0
    while i < num:
        repeat = read(1)
        j = min(num, i + 1 + read(sizes[read(2)]))
        if repeat:
            out[i:j] = read(word)
        else:
            for k in range(i, j):
                out[k] = read(word)
        i = j
    return out.reshape(height, width, 4)[:, :, 3] > 0


# -- reading -------------------------------------------------------------------------------


def _label(value: dict[str, Any], key: str, file: str, where: str) -> str:
    labels = value.get(key)
    if not isinstance(labels, list) or not labels or not isinstance(labels[0], str):
        raise InputError(file, f"{where}.value.{key}", "expected a list with a label")
    return labels[0]


def _num(value: dict[str, Any], key: str, file: str, where: str) -> float:
    v = value.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise InputError(file, f"{where}.value.{key}", f"expected a number, found {v!r}")
    return float(v)


def _size(task: dict[str, Any], file: str, where: str, images: str | None,
          image: str) -> tuple[int, int]:
    for ann in task.get("annotations") or []:
        for r in (ann or {}).get("result") or []:
            w, h = r.get("original_width"), r.get("original_height")
            if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
                return w, h
    data = task.get("data") or {}
    if isinstance(data.get("width"), int) and isinstance(data.get("height"), int):
        return int(data["width"]), int(data["height"])
    if images is not None and (Path(images) / image).is_file():
        from ..yolo import image_size

        return image_size(Path(images) / image)
    raise InputError(file, where, "image size unknown: no result has original_width/"
                     "original_height and data has no width/height; give the image folder "
                     "(-i/--images)")


def _shape(r: dict[str, Any], w: int, h: int, file: str, where: str, losses: Losses,
           ) -> tuple[str, list[float] | None, list[float]] | None:
    """(label, polygon ring or None, box) of a rectangle or polygon result; None for
    other types."""
    kind = r.get("type")
    value = r.get("value")
    if kind not in ("rectanglelabels", "polygonlabels"):
        return None
    if not isinstance(value, dict):
        raise InputError(file, f"{where}.value", "missing the value object")
    label = _label(value, kind, file, where)
    if kind == "rectanglelabels":
        x, y = _num(value, "x", file, where) * w / 100, _num(value, "y", file, where) * h / 100
        bw = _num(value, "width", file, where) * w / 100
        bh = _num(value, "height", file, where) * h / 100
        rot = float(value.get("rotation") or 0.0)
        if rot:
            losses.add("rotated-rectangle-as-polygon", 1,
                       "rotated rectangles read as polygons")
            c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
            corners = [(0.0, 0.0), (bw, 0.0), (bw, bh), (0.0, bh)]
            ring = [v for dx, dy in corners for v in (x + dx * c - dy * s, y + dx * s + dy * c)]
            return label, ring, polygon_bbox([ring])
        return label, None, [x, y, bw, bh]
    pts = value.get("points")
    if not isinstance(pts, list) or len(pts) < 3:
        raise InputError(file, f"{where}.value.points", "a polygon needs at least 3 points")
    ring = []
    for j, pt in enumerate(pts):
        if not isinstance(pt, list) or len(pt) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in pt):
            raise InputError(file, f"{where}.value.points[{j}]", f"expected [x, y], found {pt!r}")
        ring += [pt[0] * w / 100, pt[1] * h / 100]
    return label, ring, polygon_bbox([ring])


def _brush_annotation(value: dict[str, Any], height: int, width: int,
                      categories: CategoryMap, file: str, where: str) -> dict[str, Any]:
    """The COCO fields of a brush result: its mask as compressed RLE, the tight box."""
    label = _label(value, "brushlabels", file, where)
    mask = brush_decode(value.get("rle"), height, width, file, f"{where}.value.rle")
    rle = mask_api().encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"category_id": categories.id(label), "iscrowd": 0,
            "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            "bbox": [float(v) for v in mask_api().toBbox(rle)]}


def read(path: str, *, images: str | None = None) -> tuple[Dataset, Losses]:
    """Read a Label Studio JSON export (a file, or a folder with ``tasks.json``)."""
    file = _tasks_file(path)
    if file is None:
        raise InputError(path, None, "no Label Studio export here (a JSON file, or a folder "
                         f"with {TASKS})")
    name = str(file)
    tasks = parse_json(file.read_bytes(), name)
    if not isinstance(tasks, list):
        raise InputError(name, None, "expected a list of tasks (Label Studio's JSON export)")
    categories = CategoryMap(label_map := read_label_map(file.parent))
    losses = Losses()
    out_images: list[dict[str, Any]] = []
    out_anns: list[dict[str, Any]] = []
    result_ids: list[Any] = []
    prefix = images.rstrip("/") + "/" if images else None
    for t, task in enumerate(tasks):
        where = f"[{t}]"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise InputError(name, f"{where}.data", "expected a task with a data object")
        data = dict(task["data"])
        image = data.pop("image", None)
        if not isinstance(image, str) or not image:
            raise InputError(name, f"{where}.data.image", "missing the image")
        if prefix and image.startswith(prefix):
            image = image[len(prefix):]
        w, h = _size(task, name, where, images, image)
        data.pop("width", None)
        data.pop("height", None)
        img: dict[str, Any] = {"id": task.get("id"), "file_name": image, "width": w,
                               "height": h, **data}
        kept: list[Any] = []
        first_ring: dict[str, dict[str, Any]] = {}
        for a, annotation in enumerate(task.get("annotations") or []):
            results = (annotation or {}).get("result") or []
            for k, r in enumerate(results):
                rw = f"{where}.annotations[{a}].result[{k}]"
                if not isinstance(r, dict):
                    raise InputError(name, rw, "expected a result object")
                rw_, rh_ = r.get("original_width", w), r.get("original_height", h)
                if r.get("type") == "brushlabels" and isinstance(r.get("value"), dict) \
                        and r["value"].get("format") == "rle":
                    out_anns.append({"image_id": len(out_images), **_brush_annotation(
                        r["value"], int(rh_), int(rw_), categories, name, rw)})
                    result_ids.append(r.get("id"))
                    continue
                shape = _shape(r, int(rw_), int(rh_), name, rw, losses)
                if shape is None:
                    kept.append(r)
                    losses.add("labelstudio-result-kept", 1, "Label Studio results of other "
                               "types (keypoints, choices, text) kept as the image key "
                               "'labelstudio_results'")
                    continue
                label, ring, box = shape
                if box[0] >= w or box[1] >= h or box[0] + box[2] <= 0 or box[1] + box[3] <= 0:
                    raise InputError(name, f"{rw}.value", f"the shape lies outside the "
                                     f"{w}x{h} image (percentages beyond 0..100)")
                parent = r.get("parentID")
                if ring is not None and parent in first_ring:
                    ann = first_ring[parent]
                    ann["segmentation"].append(ring)
                    ann["bbox"] = polygon_bbox(ann["segmentation"])
                    continue
                ann = {"image_id": len(out_images), "category_id": categories.id(label),
                       "bbox": box, "iscrowd": 0}
                if ring is not None:
                    ann["segmentation"] = [ring]
                    if r.get("id") is not None:
                        first_ring[str(r["id"])] = ann
                out_anns.append(ann)
                result_ids.append(r.get("id"))
        if kept:
            img["labelstudio_results"] = kept
        if task.get("predictions"):
            img["labelstudio_predictions"] = task["predictions"]
        for k, v in task.items():
            if k not in _TASK_KEYS:
                img[f"labelstudio_{k}"] = v
        out_images.append(img)
    _ids(out_images, [i["id"] for i in out_images], losses, "image")
    _ids(out_anns, result_ids, losses, "annotation", keep_as="labelstudio_id")
    for ann in out_anns:
        ann["image_id"] = out_images[ann["image_id"]]["id"]
    return dataset_from_records(out_images, out_anns, categories, label_map, path), losses


def _int(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _ids(records: list[dict[str, Any]], ids: list[Any], losses: Losses, what: str,
         keep_as: str | None = None) -> None:
    """Give each record its id from the export when all are unique integers, else 1..N
    (the export's ids then kept as the key ``keep_as`` when given, else a loss)."""
    ints = [_int(i) for i in ids]
    ok = all(i is not None for i in ints) and len(set(ints)) == len(ints)
    for n, rec in enumerate(records):
        rec["id"] = ints[n] if ok else n + 1
        if not ok and keep_as is not None and ids[n] is not None:
            rec[keep_as] = ids[n]
    if not ok and records and keep_as is None:
        losses.add(f"{what}-ids-renumbered", len(records),
                   f"{what} ids numbered 1..N (the export's were not unique integers)")


# -- writing -------------------------------------------------------------------------------


def _pct(v: float, size: int) -> float:
    return float(v) * 100.0 / size


def write(ds: Dataset, path: str, *, images: str | None = None,
          strict: bool = False) -> Losses:
    """Write ``ds`` as a Label Studio JSON export in the folder ``path`` (staged: all or
    nothing), after the export contract's checks; returns what it could not carry."""
    rows = export_rows(ds, path)
    anns, imgs = ds.annotations, ds.images
    kinds = anns.segmentation_kind[rows.ann_rows]
    losses = Losses()
    losses.add("rle-recompressed", int(np.count_nonzero(kinds == 2)),
               "uncompressed RLE masks written as brush masks (read back as compressed RLE)")
    extra_keys = {k for e in imgs.extra[rows.image_rows].tolist() for k in (e or ())}
    losses.extend(common_losses(rows, image_keys=extra_keys, image_ids=False, annotation_ids=False,
                                annotation_keys=("labelstudio_id",)))
    img_ids = imgs.id[rows.image_rows]
    if len(np.unique(img_ids)) < len(img_ids):
        losses.add("image-ids-renumbered", len(img_ids),
                   "image ids not kept (not unique: numbered 1..N when read back)")
    ann_ids = anns.id[rows.ann_rows]
    if len(np.unique(ann_ids)) < len(ann_ids):
        losses.add("annotation-ids-renumbered", len(ann_ids),
                   "annotation ids not kept (not unique: numbered 1..N when read back)")
    losses.extend(polygon_box_losses(rows, masks=True))
    refuse_lossy(losses, path, strict)
    names = {int(c["id"]): str(c["name"]) for c in ds.categories}
    prefix = images.rstrip("/") + "/" if images else ""
    tasks: list[dict[str, Any]] = []
    for i, group in rows.by_image():
        image = imgs.record(i)
        extra = plain(imgs.extra[i]) or {}
        w, h = int(image["width"]), int(image["height"])
        data = {"image": prefix + image["file_name"], "width": w, "height": h}
        data.update({k: v for k, v in extra.items() if not k.startswith("labelstudio_")})
        results: list[dict[str, Any]] = list(extra.get("labelstudio_results", []))
        for r, box in group:
            label = names[int(anns.category_id[r])]
            common = {"from_name": "label", "to_name": "image", "original_width": w,
                      "original_height": h, "image_rotation": 0}
            rid = str(plain(anns.extra[r] or {}).get("labelstudio_id", int(anns.id[r])))
            if anns.segmentation_kind[r] >= 2:
                rle = encoded_rle(plain(anns.segmentation[r]))
                mask = np.asarray(mask_api().decode(rle)).astype(bool)
                results.append({"id": rid, "type": "brushlabels", **common, "value": {
                    "format": "rle", "rle": brush_encode(mask), "brushlabels": [label]}})
            elif anns.segmentation_kind[r] == 1:
                rings = plain(anns.segmentation[r])
                for k, ring in enumerate(rings):
                    pts = [[_pct(ring[j], w), _pct(ring[j + 1], h)]
                           for j in range(0, len(ring) - 1, 2)]
                    res = {"id": rid if k == 0 else f"{rid}-{k}", "type": "polygonlabels",
                           **common, "value": {"points": pts, "closed": True,
                                               "polygonlabels": [label]}}
                    if k:
                        res["parentID"] = rid
                    results.append(res)
            else:
                x, y, bw, bh = (float(v) for v in box)
                results.append({"id": rid, "type": "rectanglelabels", **common, "value": {
                    "x": _pct(x, w), "y": _pct(y, h), "width": _pct(bw, w),
                    "height": _pct(bh, h), "rotation": 0, "rectanglelabels": [label]}})
        task: dict[str, Any] = {"id": int(image["id"]), "data": data,
                                "annotations": [{"id": int(image["id"]), "result": results}]}
        if extra.get("labelstudio_predictions"):
            task["predictions"] = extra["labelstudio_predictions"]
        for k, v in extra.items():
            if k.startswith("labelstudio_") and k not in _IMAGE_KEYS:
                task[k[len("labelstudio_"):]] = v
        tasks.append(task)
    with output_folder(path, ds) as out:
        out.write(TASKS, (json.dumps(tasks, indent=1, ensure_ascii=False) + "\n").encode())
    return losses

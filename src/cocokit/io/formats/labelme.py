"""LabelMe: one JSON file per image, read and written.

Layout written: ``OUT/<image path without suffix>.json`` beside where the image would
be (``imagePath`` is the image's file name, so the JSON files can sit in the image
folder), plus ``OUT/label_map.json`` (categories with their COCO ids, info, licenses).
Reading accepts such a folder (every ``*.json`` with ``shapes``, searched recursively)
or one LabelMe file; ``file_name`` is the JSON's folder (relative to the root) joined
with ``imagePath``.

**Shapes.** ``polygon`` <-> a polygon segmentation (coordinates exact, box around it);
``rectangle`` (two corners) <-> a box without segmentation; shapes sharing a
``group_id`` and a label <-> one annotation with several rings (the writer gives a
multi-ring polygon a ``group_id``); ``mask`` (LabelMe 5.3+: the box corners and a
base64 PNG of the pixels inside) <-> an RLE segmentation, pixel for pixel (read back as
compressed RLE). Other shapes (``point``, ``line``, ``linestrip``,
``circle``, ``points``) have no COCO geometry: they are kept, as they were, in
the image key ``labelme_shapes`` and written back (counted in the read loss report).

**Other keys.** Shape ``flags`` <-> the annotation key ``labelme_flags``, ``description``
<-> ``description``, ``group_id`` <-> ``group_id``; the file's ``flags`` <-> the image key
``labelme_flags``, ``version`` <-> ``labelme_version``. LabelMe keeps keys it does not
know on shapes and files, so every other annotation key (``iscrowd`` of crowd objects
included) is written as a shape key and every other image key as a file key, and read
back. Not carried, counted in the loss report: keypoints, areas (computed again when
read), ids (numbered 1..N when read back), boxes that are not the tight box of their
polygon or mask; the embedded image (``imageData``) is not read.

A shape with a missing label or points, too few points, or wholly outside its image is
an error naming the file and the place (``shapes[3].points``).
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
from pathlib import Path
from typing import Any

import numpy as np

from ...dataset import Dataset, plain
from ...errors import InputError
from ...geometry import encoded_rle, mask_api
from .. import sniff
from .losses import Losses, refuse_lossy
from .records import (
    LABEL_MAP,
    CategoryMap,
    common_losses,
    dataset_from_records,
    export_rows,
    output_folder,
    parse_json,
    polygon_bbox,
    polygon_box_losses,
    read_label_map,
    rel_stem,
    relative_files,
)

__all__ = ["NAME", "detect", "read", "write"]

NAME = "labelme"
VERSION = "5.5.0"
_SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags", "description", "mask"}
_FILE_KEYS = {"version", "flags", "shapes", "imagePath", "imageData", "imageHeight",
              "imageWidth"}
_RESERVED = {"id", "image_id", "category_id", "segmentation", "bbox", "file_name", "width",
             "height", "keypoints", "num_keypoints"}
_ANN_CARRIED = {"labelme_flags", "description", "group_id"}
_IMAGE_CARRIED = {"labelme_flags", "labelme_version", "labelme_shapes"}


def _coco_key(key: str, tool: set[str]) -> str:
    """The COCO key of a LabelMe key it does not know: as it is, but a COCO field name
    gets ``labelme_`` and ``coco_<LabelMe key>`` (written for a COCO key that is a LabelMe
    key) loses its prefix."""
    if key in _RESERVED:
        return f"labelme_{key}"
    if key.startswith("coco_") and key[5:] in tool:
        return key[5:]
    return key


def _tool_key(key: str, tool: set[str]) -> str:
    """The LabelMe key of a COCO extra key (the inverse of :func:`_coco_key`)."""
    if key.startswith("labelme_") and key[8:] in _RESERVED:
        return key[8:]
    if key in tool:
        return f"coco_{key}"
    return key


def _is_labelme(doc: Any) -> bool:
    return isinstance(doc, dict) and "shapes" in doc and (
        "imagePath" in doc or "imageData" in doc)


def detect(path: str) -> bool:
    """A LabelMe JSON file, or a folder holding one (the first JSON file looked at)."""
    return sniff.format_of(path) == NAME


# -- reading -------------------------------------------------------------------------------


def _points(shape: dict[str, Any], file: str, where: str) -> list[list[float]]:
    pts = shape.get("points")
    if not isinstance(pts, list):
        raise InputError(file, f"{where}.points", "missing points (a list of [x, y])")
    out: list[list[float]] = []
    for j, pt in enumerate(pts):
        if (not isinstance(pt, list) or len(pt) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pt)):
            raise InputError(file, f"{where}.points[{j}]", f"expected [x, y], found {pt!r}")
        out.append([float(pt[0]), float(pt[1])])
    return out


def _outside(xs: list[float], ys: list[float], width: int, height: int) -> bool:
    return min(xs) >= width or min(ys) >= height or max(xs) <= 0 or max(ys) <= 0


def _image_size(doc: dict[str, Any], file: Path, file_name: str,
                images: str | None) -> tuple[int, int]:
    w, h = doc.get("imageWidth"), doc.get("imageHeight")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return w, h
    candidates = [file.parent / str(doc.get("imagePath", ""))]
    if images is not None:
        candidates.insert(0, Path(images) / file_name)
    for c in candidates:
        if c.is_file():
            from ..yolo import image_size

            return image_size(c)
    raise InputError(str(file), "imageWidth", "missing imageWidth/imageHeight and the image "
                     "is not beside the file; give the image folder (-i/--images)")


def _read_one(file: Path, rel_dir: str, doc: dict[str, Any], categories: CategoryMap,
              image_id: int, ann_id: int, images: str | None, losses: Losses,
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    name = str(file)
    image_path = doc.get("imagePath")
    if not isinstance(image_path, str) or not image_path:
        image_path = file.stem + ".jpg"
        losses.add("labelme-image-path-guessed", 1,
                   "files without imagePath (image named after the JSON file, .jpg)")
    file_name = posixpath.normpath(posixpath.join(rel_dir, image_path.replace("\\", "/")))
    width, height = _image_size(doc, file, file_name, images)
    image: dict[str, Any] = {"id": image_id, "file_name": file_name, "width": width,
                             "height": height}
    if doc.get("flags"):
        image["labelme_flags"] = doc["flags"]
    if "version" in doc:
        image["labelme_version"] = doc["version"]
    if doc.get("imageData"):
        losses.add("labelme-image-data-dropped", 1, "embedded images (imageData) not read")
    for k, v in doc.items():
        if k not in _FILE_KEYS:
            image[_coco_key(k, _FILE_KEYS)] = v
    shapes = doc.get("shapes")
    if not isinstance(shapes, list):
        raise InputError(name, "shapes", "expected a list of shapes")
    kept: list[Any] = []
    annotations: list[dict[str, Any]] = []
    groups: dict[tuple[Any, str], dict[str, Any]] = {}
    for n, shape in enumerate(shapes):
        where = f"shapes[{n}]"
        if not isinstance(shape, dict):
            raise InputError(name, where, f"expected an object, found {type(shape).__name__}")
        label = shape.get("label")
        if not isinstance(label, str) or not label:
            raise InputError(name, f"{where}.label", "missing the label")
        kind = shape.get("shape_type") or "polygon"
        if kind == "mask" and isinstance(shape.get("mask"), str):
            ann = {"id": ann_id + len(annotations), "image_id": image_id,
                   "category_id": categories.id(label), "iscrowd": 0,
                   **_mask_annotation(shape, width, height, name, where)}
            _shape_keys(shape, ann)
            annotations.append(ann)
            continue
        if kind not in ("polygon", "rectangle"):
            kept.append(shape)
            losses.add("labelme-shape-kept", 1, "LabelMe shapes without a COCO geometry "
                       "(points, lines, circles, masks) kept as the image key 'labelme_shapes'")
            continue
        pts = _points(shape, name, where)
        need = 3 if kind == "polygon" else 2
        if len(pts) < need:
            raise InputError(name, f"{where}.points", f"a {kind} needs at least {need} "
                             f"points, found {len(pts)}")
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        if _outside(xs, ys, width, height):
            raise InputError(name, f"{where}.points", f"the {kind} lies outside the "
                             f"{width}x{height} image")
        group = shape.get("group_id")
        key = (group, label)
        if kind == "polygon" and group is not None and key in groups:
            ann = groups[key]
            ann["segmentation"].append([v for p in pts for v in p])
            ann["bbox"] = polygon_bbox(ann["segmentation"])
            continue
        ann = {"id": ann_id + len(annotations), "image_id": image_id,
               "category_id": categories.id(label), "iscrowd": 0}
        if kind == "polygon":
            ann["segmentation"] = [[v for p in pts for v in p]]
            ann["bbox"] = polygon_bbox(ann["segmentation"])
        else:
            ann["bbox"] = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        if group is not None and kind == "polygon":
            groups[key] = ann
        _shape_keys(shape, ann)
        annotations.append(ann)
    if kept:
        image["labelme_shapes"] = kept
    return image, annotations


def _shape_keys(shape: dict[str, Any], ann: dict[str, Any]) -> None:
    """The shape's flags, description and other keys onto the annotation."""
    if shape.get("group_id") is not None:
        ann["group_id"] = shape["group_id"]
    if shape.get("flags"):
        ann["labelme_flags"] = shape["flags"]
    if shape.get("description"):
        ann["description"] = shape["description"]
    for sk, v in shape.items():
        if sk not in _SHAPE_KEYS:
            ann[_coco_key(sk, _SHAPE_KEYS)] = v


def _mask_annotation(shape: dict[str, Any], width: int, height: int, file: str,
                     where: str) -> dict[str, Any]:
    """The RLE segmentation and box of a ``mask`` shape (a PNG of the box's pixels)."""
    from PIL import Image, UnidentifiedImageError

    pts = _points(shape, file, where)
    if len(pts) != 2:
        raise InputError(file, f"{where}.points", "a mask needs 2 points (its box corners)")
    x1, y1 = (round(min(p[k] for p in pts)) for k in (0, 1))
    try:
        with Image.open(io.BytesIO(base64.b64decode(shape["mask"]))) as im:
            crop = np.asarray(im.convert("L")) > 0
    except (ValueError, UnidentifiedImageError, OSError) as e:
        raise InputError(file, f"{where}.mask", f"not a base64 PNG mask: {e}") from None
    h, w = crop.shape
    if x1 < 0 or y1 < 0 or x1 + w > width or y1 + h > height:
        raise InputError(file, f"{where}.points", f"the {w}x{h} mask at ({x1}, {y1}) does not "
                         f"fit in the {width}x{height} image")
    full = np.zeros((height, width), np.uint8)
    full[y1:y1 + h, x1:x1 + w] = crop
    rle = mask_api().encode(np.asfortranarray(full))
    box = [float(v) for v in mask_api().toBbox(rle)]
    return {"segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            "bbox": box}


def _mask_shape(rle: dict[str, Any]) -> tuple[list[list[float]], str] | None:
    """(box corners, base64 PNG) of an RLE mask as a LabelMe ``mask`` shape; None when
    the mask is empty."""
    from PIL import Image

    m = mask_api().decode(encoded_rle(rle)).astype(bool)
    ys, xs = np.nonzero(m)
    if not len(xs):
        return None
    x1, x2, y1, y2 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    buf = io.BytesIO()
    Image.fromarray(m[y1:y2 + 1, x1:x2 + 1]).save(buf, format="PNG")
    return [[float(x1), float(y1)], [float(x2), float(y2)]], base64.b64encode(
        buf.getvalue()).decode("ascii")


def read(path: str, *, images: str | None = None) -> tuple[Dataset, Losses]:
    """Read a folder of LabelMe files (or one file) as a dataset; see the module
    docstring. The losses name what the COCO model could not take as geometry."""
    p = Path(path)
    if p.is_file():
        root, found = p.parent, [p]
    elif p.is_dir():
        root, found = p, [f for f in relative_files(p, ".json") if f.name != LABEL_MAP]
    else:
        raise InputError(path, None, "no such file or folder")
    categories = CategoryMap(label_map := read_label_map(root))
    losses = Losses()
    out_images: list[dict[str, Any]] = []
    out_anns: list[dict[str, Any]] = []
    for f in found:
        doc = parse_json(f.read_bytes(), str(f))
        if not _is_labelme(doc):
            if p.is_file():
                raise InputError(str(f), None, 'not a LabelMe file (expected an object with '
                                 '"shapes" and "imagePath")')
            continue
        rel_dir = f.parent.relative_to(root).as_posix() if f.parent != root else ""
        image, anns = _read_one(f, rel_dir, doc, categories, len(out_images) + 1,
                                len(out_anns) + 1, images, losses)
        out_images.append(image)
        out_anns.extend(anns)
    if not out_images:
        raise InputError(path, None, "no LabelMe files (JSON with \"shapes\") here")
    return dataset_from_records(out_images, out_anns, categories, label_map, path), losses


# -- writing -------------------------------------------------------------------------------


def _pairs(ring: list[float]) -> list[list[float]]:
    return [[float(ring[j]), float(ring[j + 1])] for j in range(0, len(ring) - 1, 2)]


def write(ds: Dataset, path: str, *, images: str | None = None,
          strict: bool = False) -> Losses:
    """Write ``ds`` as LabelMe files under the folder ``path`` (staged: all or nothing),
    after the export contract's checks; returns what LabelMe could not carry."""
    rows = export_rows(ds, path)
    anns = ds.annotations
    kinds = anns.segmentation_kind[rows.ann_rows]
    losses = Losses()
    losses.add("rle-recompressed", int(np.count_nonzero(kinds == 2)),
               "uncompressed RLE masks written as LabelMe masks (read back as compressed RLE)")
    losses.extend(common_losses(rows, crowd=False, image_keys=_IMAGE_CARRIED | set(
        _all_keys(ds.images.extra[rows.image_rows])), annotation_keys=set(
        _all_keys(anns.extra[rows.ann_rows]))))
    losses.extend(polygon_box_losses(rows, masks=True))
    refuse_lossy(losses, path, strict)
    names = {int(c["id"]): str(c["name"]) for c in ds.categories}
    with output_folder(path, ds) as out:
        for i, group in rows.by_image():
            image = ds.images.record(i)
            extra = plain(ds.images.extra[i]) or {}
            doc: dict[str, Any] = {
                "version": extra.get("labelme_version", VERSION),
                "flags": extra.get("labelme_flags", {}),
                "shapes": [],
                "imagePath": posixpath.basename(image["file_name"]),
                "imageData": None,
                "imageHeight": image["height"],
                "imageWidth": image["width"],
            }
            for k, v in extra.items():
                if k not in _IMAGE_CARRIED:
                    doc[_tool_key(k, _FILE_KEYS)] = v
            used = {a.get("group_id") for a in (plain(anns.extra[r]) or {} for r, _ in group)}
            next_group = max((g for g in used if isinstance(g, int)), default=0) + 1
            for r, box in group:
                a = plain(anns.extra[r]) or {}
                base: dict[str, Any] = {"label": names[int(anns.category_id[r])]}
                rings: list[list[float]] = []
                if anns.segmentation_kind[r] == 1:
                    rings = [list(map(float, ring)) for ring in plain(anns.segmentation[r])]
                gid = a.get("group_id")
                if gid is None and len(rings) > 1:
                    gid, next_group = next_group, next_group + 1
                tail: dict[str, Any] = {"group_id": gid,
                                        "description": a.get("description", ""),
                                        "flags": a.get("labelme_flags", {})}
                if anns.iscrowd[r] == 1:
                    tail["iscrowd"] = 1
                for k, v in a.items():
                    if k not in _ANN_CARRIED:
                        tail[_tool_key(k, _SHAPE_KEYS)] = v
                mask = (_mask_shape(plain(anns.segmentation[r]))
                        if anns.segmentation_kind[r] >= 2 else None)
                if mask is not None:
                    doc["shapes"].append({**base, "points": mask[0], "shape_type": "mask",
                                          **tail, "mask": mask[1]})
                elif rings:
                    for ring in rings:
                        doc["shapes"].append({**base, "points": _pairs(ring),
                                              "shape_type": "polygon", **tail})
                else:
                    x, y, w, h = (float(v) for v in box)
                    doc["shapes"].append({**base, "points": [[x, y], [x + w, y + h]],
                                          "shape_type": "rectangle", **tail})
            doc["shapes"].extend(extra.get("labelme_shapes", []))
            text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
            out.write(rel_stem(image["file_name"], ".json"), text.encode("utf-8"))
    return losses


def _all_keys(extras: np.ndarray) -> set[str]:
    return {k for e in extras.tolist() for k in (e or ())}


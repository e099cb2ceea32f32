"""DOTA (v1.0 / v1.5) oriented-box labels: read as COCO, written from COCO.

Layout (the one the DOTA toolkit reads)::

    ROOT/
      images/P0000.png       the images (optional when index.json is there)
      labelTxt/P0000.txt     one label file per image, same name, suffix .txt
      index.json             written by cocokit: the image and category records

A label file holds optional header lines ``imagesource:GoogleEarth``, ``gsd:0.146``,
``acquisition dates:None`` (any ``key:value`` line before the first object), then one
object per line::

    x1 y1 x2 y2 x3 y3 x4 y4 category difficult

the four corners of an oriented box in pixels (clockwise in the DOTA files),
the category name (no spaces) and the difficult flag (0 or 1; DOTA v1.0 files may
leave it out).

Reading: each row becomes an annotation whose ``segmentation`` is the 4-point polygon
(exactly as written), ``bbox`` its bounds, ``area`` the shoelace area of the
polygon, ``iscrowd`` 0 and the extra key ``difficult``; corners may lie beyond the
image border (a rotated box of an object at the border does), a box entirely outside
its image is an error; the header lines become image
keys (``gsd`` a number when it is one). Image sizes and file names come from
``index.json`` when it is there, else from the image files (``images=``, by default
``ROOT/images``; matched by file name without suffix). Categories come from
``index.json`` (ids and every key, matched by name), else are the names found, sorted,
with ids 1..K. A box outside its image, a row with the wrong number of values or
a category missing from ``index.json`` is an :class:`~cocokit.errors.InputError` naming
``file:line``.

Writing: every annotation becomes one row (images without annotations an empty file).
A polygon of one ring of 4 points is written as it is; any other polygon (more or fewer
points, several parts) as the minimum-area rotated rectangle of its points; an RLE mask
or a box as the 4 corners of its box. The losses say how many of each. A crowd
annotation is written with ``difficult`` 1 (unless it has a ``difficult`` key); keypoints
and other annotation keys have no place. Category names are written with spaces as
``_`` (a row is split on spaces); ``index.json`` (a COCO file without annotations,
written by the one COCO writer) keeps the image records, the categories with their ids
and the top-level keys, so the names, ids and sizes come back on reading.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...dataset import Annotations, Dataset, plain
from ...errors import InputError
from ...geometry import (
    SegmentationKind,
    annotation_areas,
    oriented_boxes,
)
from .. import sniff
from ..coco import read_coco, write_coco
from ..staging import staged
from ..yolo import IMG_FORMATS, image_size
from .losses import Losses, refuse_lossy
from .records import (
    common_losses,
    dataset_from_records,
    export_rows,
    label_paths,
    local_folder,
    number_text,
)

__all__ = ["INDEX", "LABELS", "NAME", "detect", "read", "write"]

NAME = "dota"
#: The folder of label files under the dataset root.
LABELS = "labelTxt"
#: The index of image and category records cocokit writes beside the labels.
INDEX = "index.json"


# -- reading -----------------------------------------------------------------------------


def _roots(path: str) -> tuple[Path, Path]:
    """(dataset root, label folder) of ``path``: the root (holding labelTxt/) or the
    label folder itself."""
    p = Path(path)
    if not p.is_dir():
        raise InputError(path, None, "not a folder (a DOTA dataset is a folder with "
                         f"{LABELS}/, or the {LABELS} folder itself)")
    if (p / LABELS).is_dir():
        return p, p / LABELS
    return (p.parent if p.name == LABELS else p), p


def detect(path: str) -> bool:
    """Whether ``path`` looks like a DOTA dataset: a folder with ``labelTxt/``, or a
    folder of .txt files whose first object row has 8 numbers and a category name (the
    one sniffer, :func:`cocokit.io.sniff.format_of`)."""
    return sniff.format_of(path) == NAME


def _header_value(value: str) -> Any:
    if value.lower() in ("null", "none", ""):
        return None
    try:
        f = float(value)
    except ValueError:
        return value
    return f if math.isfinite(f) else value


def _parse(file: Path, width: int, height: int, token_cat: dict[str, int] | None,
           ) -> tuple[dict[str, Any], list[tuple[list[float], str, int | None, int]]]:
    """Header keys and rows (corners, category token, difficult, line) of one file."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(file), None, f"cannot read: {e}") from None
    header: dict[str, Any] = {}
    rows: list[tuple[list[float], str, int | None, int]] = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        where = f"line {n}"
        if not rows and sniff.DOTA_HEADER.match(s):
            key, _, value = s.partition(":")
            header[key] = _header_value(value.strip())
            continue
        parts = s.split()
        if len(parts) not in (9, 10):
            raise InputError(str(file), where, "expected 'x1 y1 x2 y2 x3 y3 x4 y4 category "
                             f"difficult', got {len(parts)} values: {s!r}")
        try:
            xy = [float(v) for v in parts[:8]]
        except ValueError:
            raise InputError(str(file), where, f"expected 8 numbers (the corners), got "
                             f"{' '.join(parts[:8])!r}") from None
        if not all(map(math.isfinite, xy)):
            raise InputError(str(file), where, "a corner is not a finite number")
        xs, ys = xy[0::2], xy[1::2]
        if max(xs) <= 0 or max(ys) <= 0 or min(xs) >= width or min(ys) >= height:
            raise InputError(str(file), where, f"the box lies outside the {width}x{height} "
                             f"image: {' '.join(parts[:8])}")
        difficult: int | None = None
        if len(parts) == 10:
            if parts[9] not in ("0", "1"):
                raise InputError(str(file), where, f"difficult must be 0 or 1, got "
                                 f"{parts[9]!r}")
            difficult = int(parts[9])
        if token_cat is not None and parts[8] not in token_cat:
            raise InputError(str(file), where, f"category {parts[8]!r} is not in {INDEX}")
        rows.append((xy, parts[8], difficult, n))
    return header, rows


def _token(name: str) -> str:
    return "_".join(str(name).split())


def _images_from_folder(image_dir: Path | None, label_dir: Path,
                        ) -> list[tuple[dict[str, Any], Path]]:
    """Image records (file_name relative to the image folder, size from the header) and
    their label files, for every label file (and every image without one)."""
    by_stem: dict[str, Path] = {}
    if image_dir is not None and image_dir.is_dir():
        for p in sorted(image_dir.rglob("*")):
            if p.is_file() and p.suffix[1:].lower() in IMG_FORMATS:
                by_stem.setdefault(p.relative_to(image_dir).with_suffix("").as_posix(), p)
    labels = {p.relative_to(label_dir).with_suffix("").as_posix(): p
              for p in sorted(label_dir.rglob("*.txt"))}
    out: list[tuple[dict[str, Any], Path]] = []
    for stem in sorted(set(labels) | set(by_stem)):
        label = labels.get(stem, label_dir / f"{stem}.txt")
        img = by_stem.get(stem)
        if img is None:
            raise InputError(str(label), None, "no image for this label file (DOTA labels "
                             "carry no image size): give the image folder (images=), or "
                             f"keep the {INDEX} cocokit writes beside {LABELS}/")
        assert image_dir is not None
        w, h = image_size(img)
        out.append(({"file_name": img.relative_to(image_dir).as_posix(), "width": w,
                     "height": h}, label))
    return out


def read(path: str, *, images: str | None = None) -> tuple[Dataset, Losses]:
    """Read a DOTA dataset folder as COCO (see the module docstring); no losses."""
    root, label_dir = _roots(local_folder(path, "path"))
    index_file = root / INDEX
    extra: dict[str, Any] = {}
    categories: list[dict[str, Any]] | None = None
    if index_file.is_file():
        index = read_coco(index_file)
        categories = list(index.categories)
        extra = dict(index.extra)
        names = [str(f) for f in index.images.file_name.tolist()]
        rels = label_paths(names, ".txt", LABELS, str(index_file))
        recs = list(index.images)
        pairs = [(rec, label_dir / rel) for rec, rel in zip(recs, rels, strict=True)]
    else:
        image_dir = Path(images) if images is not None else root / "images"
        pairs = _images_from_folder(image_dir, label_dir)
    token_cat = ({_token(c["name"]): int(c["id"]) for c in categories}
                 if categories is not None else None)
    image_recs: list[dict[str, Any]] = []
    parsed: list[list[tuple[list[float], str, int | None, int]]] = []
    for i, (rec, label) in enumerate(pairs):
        img = dict(rec)
        img.setdefault("id", i + 1)
        if label.is_file():
            header, rows = _parse(label, int(img["width"]), int(img["height"]), token_cat)
            img.update(header)
        else:
            rows = []
        image_recs.append(img)
        parsed.append(rows)
    if categories is None:
        found = sorted({tok for rows in parsed for _, tok, _, _ in rows})
        categories = [{"id": k + 1, "name": tok} for k, tok in enumerate(found)]
        token_cat = {tok: k + 1 for k, tok in enumerate(found)}
    assert token_cat is not None
    anns: list[dict[str, Any]] = []
    for img, rows in zip(image_recs, parsed, strict=True):
        for xy, tok, difficult, _ in rows:
            xs, ys = xy[0::2], xy[1::2]
            ann: dict[str, Any] = {
                "id": len(anns) + 1, "image_id": img["id"], "category_id": token_cat[tok],
                "segmentation": [xy], "iscrowd": 0,
                "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
            }
            if difficult is not None:
                ann["difficult"] = difficult
            anns.append(ann)
    return dataset_from_records(image_recs, anns, categories, extra, str(root),
                                complete=True), Losses()


# -- writing -----------------------------------------------------------------------------


_HEADER_KEYS = ("imagesource", "gsd", "acquisition dates")


def write(ds: Dataset, path: str, *, images: str | None = None,
          strict: bool = False) -> Losses:
    """Write ``ds`` as a DOTA dataset folder at ``path`` (see the module docstring):
    ``labelTxt/`` (replaced as a whole) and ``index.json``. ``images`` is not used (the
    images stay where they are). Returns what DOTA could not carry; ``strict`` refuses a
    lossy conversion before anything is written
    (:class:`~cocokit.io.formats.losses.LossyConversion`)."""
    out = local_folder(path, "path")
    plan = export_rows(ds, out)
    anns, imgs = ds.annotations, ds.images
    img_rows, ann_rows = plan.image_rows, plan.ann_rows
    rels = label_paths([str(f) for f in imgs.file_name[img_rows].tolist()], ".txt", LABELS, out)
    losses = Losses()
    kinds = anns.segmentation_kind[ann_rows]
    # the corners of each annotation written, and why they are what they are
    corners, _, rotated = oriented_boxes(anns.segmentation, ann_rows, kinds, plan.bbox)
    is_poly = kinds == SegmentationKind.POLYGON
    finite = np.isfinite(corners).all(axis=(1, 2))
    is_rle = np.isin(kinds, (SegmentationKind.RLE_UNCOMPRESSED, SegmentationKind.RLE_COMPRESSED))
    losses.add("polygon-as-rotated-box", int(rotated.sum()), "polygons that are not 4 points "
               "written as their minimum-area rotated rectangle")
    losses.add("rle-as-box", int((is_rle & finite).sum()), "RLE masks written as their boxes")
    losses.add("box-as-polygon", int((~is_poly & ~is_rle & finite).sum()),
               "boxes written as 4-point polygons (read back as polygons)")
    losses.add("no-geometry", int((~finite).sum()), "annotations without a box or a polygon "
               "left out")
    crowd = anns.crowd[ann_rows]
    extras = anns.extra[ann_rows]
    has_difficult = np.array([bool(e) and "difficult" in e for e in extras], bool)
    losses.add("crowd-as-difficult", int((crowd & ~has_difficult & finite).sum()),
               "crowd annotations written as difficult (DOTA has no crowd flag)")
    has_kp = np.array([k is not None for k in anns.keypoints[ann_rows]], bool)
    losses.add("keypoints-dropped", int((has_kp & finite).sum()), "keypoint sets dropped "
               "(DOTA has no keypoints)")
    computed = np.full(len(ann_rows), np.nan)
    if finite.any():
        seg = np.empty(int(finite.sum()), object)
        seg[:] = [[c.ravel().tolist()] for c in corners[finite]]
        ii = ds.image_index[ann_rows[finite]]
        computed[finite] = annotation_areas(seg, imgs.height[ii], imgs.width[ii])
    # image records (their ids too), categories and top-level keys are kept in index.json
    losses.extend(common_losses(plan, area=computed, keypoints=False, crowd=False,
                                image_keys=None, annotation_keys=("difficult",),
                                image_ids=False))
    names = {int(c["id"]): _token(c["name"]) for c in ds.categories.records}
    renamed = sum(1 for c in ds.categories.records if _token(c["name"]) != str(c["name"]))
    losses.add("category-name-spaces", renamed, "category names with spaces written with '_' "
               f"(the names are kept in {INDEX})")

    cat_ids = anns.category_id[ann_rows].tolist()
    position = np.full(len(anns), -1, np.int64)  # annotation row -> its place in ann_rows
    position[ann_rows] = np.arange(len(ann_rows))

    img_extra = imgs.extra[img_rows]

    def lines(k: int, group: list[tuple[int, np.ndarray]]) -> Iterator[str]:
        e = img_extra[k]
        for key in _HEADER_KEYS:
            if e and key in e:
                value = plain(e[key])
                yield f"{key}:{'null' if value is None else value}\n"
        for j in (int(position[r]) for r, _ in group):
            if not finite[j]:
                continue
            e = extras[j]
            if e and "difficult" in e:
                diff = str(int(e["difficult"]))
            else:
                diff = "1" if crowd[j] else "0"
            xy = " ".join(number_text(v) for v in corners[j].ravel().tolist())
            yield f"{xy} {names[cat_ids[j]]} {diff}\n"

    refuse_lossy(losses, out, strict)
    index_ds = ds.replace(images=imgs.take(img_rows), annotations=Annotations.empty())
    unique_ids = len(np.unique(index_ds.images.id)) == len(index_ds.images)
    with staged(out, replace=(LABELS,), option="path") as stage:
        base = Path(stage.path)
        for k, (rel, (_, group)) in enumerate(zip(rels, plan.by_image(), strict=True)):
            # inside the staging folder: it moves into place whole, or not at all
            file = base / LABELS / rel
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes("".join(lines(k, group)).encode("utf-8"))
        write_coco(index_ds, os.path.join(stage.path, INDEX),
                   image_ids="keep" if unique_ids else "auto")
    return losses

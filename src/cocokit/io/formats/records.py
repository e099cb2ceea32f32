"""What the format readers and writers share: the label map beside the data, the rows
an export writes, the losses common to every target, safe XML and JSON parsing, and
the staged writing of an output folder.

Readers build plain COCO records (dicts) and hand them to the one COCO reader
(:func:`cocokit.io.coco.read_coco`), so a converted dataset is exactly what reading the
equivalent COCO file gives. Writers go through the one export contract
(:func:`cocokit.io.coco.plan_export`: integrity and record checks, missing boxes
computed) and write their folder through :func:`cocokit.io.staging.staged`, so a
failure leaves nothing half-written.

The label map (``label_map.json``) is a COCO document without images and annotations:
``{"categories": [...], "info": ..., "licenses": ...}``. Every writer puts it beside the
data, so category ids (never assumed 0- or 1-based), supercategories and the top-level
keys come back as they were; a reader without one numbers the categories 1..N in the
order their names are first seen.
"""

from __future__ import annotations

import json
import os
import posixpath
import xml.parsers.expat as expat
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...dataset import Dataset, plain
from ...errors import InputError, IntegrityError, OptionError
from ...geometry import encoded_rle, mask_api, polygon_bboxes
from .. import files
from ..coco import IdPolicy, complete_geometry, plan_export, read_coco
from ..sniff import LABEL_MAP
from ..staging import staged
from .losses import Losses

__all__ = [
    "LABEL_MAP",
    "CategoryMap",
    "ExportRows",
    "OutputFolder",
    "XmlNode",
    "common_losses",
    "dataset_from_records",
    "export_rows",
    "label_map_bytes",
    "label_paths",
    "local_folder",
    "number_text",
    "output_folder",
    "parse_json",
    "parse_xml",
    "polygon_bbox",
    "polygon_box_losses",
    "read_label_map",
    "rel_stem",
    "relative_files",
]



# -- reading -------------------------------------------------------------------------------


class XmlNode:
    """An XML element as :func:`parse_xml` reads it: ``tag``, ``attrib``, the ``line`` it
    starts on, its children (iterate it; ``len`` counts them) and its ``text`` (all the
    character data directly inside it)."""

    __slots__ = ("attrib", "children", "line", "tag", "text")

    def __init__(self, tag: str, attrib: dict[str, str], line: int) -> None:
        self.tag = tag
        self.attrib = attrib
        self.line = line
        self.children: list[XmlNode] = []
        self.text = ""

    def __iter__(self) -> Iterator[XmlNode]:
        return iter(self.children)

    def __len__(self) -> int:
        return len(self.children)

    def find(self, tag: str) -> XmlNode | None:
        """The first child named ``tag``, or None."""
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list[XmlNode]:
        """The children named ``tag``, in order."""
        return [c for c in self.children if c.tag == tag]

    def findtext(self, tag: str, default: str = "") -> str:
        """The stripped text of the first child named ``tag`` (``default`` without one)."""
        c = self.find(tag)
        return c.text.strip() if c is not None else default


def parse_xml(data: bytes, file: str) -> XmlNode:
    """The root element of an XML document, parsed with expat, each element knowing its
    line. A DOCTYPE or entity declaration (the source of "billion laughs" and external
    entity attacks) is refused where it stands; broken XML is an
    :class:`~cocokit.errors.InputError` naming ``line L, column C``."""
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[XmlNode] = []
    roots: list[XmlNode] = []

    def refuse(*_: Any) -> None:
        raise InputError(file, f"line {parser.CurrentLineNumber}", "a DOCTYPE or entity "
                         "declaration; refused (untrusted XML is not given entities)")

    def start(tag: str, attrib: dict[str, str]) -> None:
        node = XmlNode(tag, attrib, parser.CurrentLineNumber)
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(tag: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1].text += text

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        raise InputError(file, f"line {e.lineno}, column {e.offset + 1}",
                         f"broken XML: {expat.ErrorString(e.code)} (malformed XML cannot be "
                         "read)") from None
    return roots[0]


def parse_json(data: bytes, file: str) -> Any:
    """Parsed JSON; a syntax error names the line and column."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise InputError(file, f"line {e.lineno}, column {e.colno}",
                         f"malformed JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise InputError(file, None, f"not UTF-8 text: {e.reason}") from None


def relative_files(root: Path, suffix: str) -> list[Path]:
    """The files under ``root`` ending in ``suffix`` (any case), sorted, hidden ones left out."""
    out = [p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(suffix)
           and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(out)


def read_label_map(folder: Path) -> dict[str, Any] | None:
    """The label map beside the data, or None."""
    file = folder / LABEL_MAP
    if not file.is_file():
        return None
    doc = parse_json(file.read_bytes(), str(file))
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), list):
        raise InputError(str(file), "categories", "expected an object with a categories array")
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) \
                or not isinstance(c.get("id"), int):
            raise InputError(str(file), f"categories[{i}]",
                             "expected an object with an integer id and a string name")
    return doc


class CategoryMap:
    """Category names -> ids: from the label map when there is one, else 1..N in the
    order names are first seen (a name missing from the label map is added after it)."""

    def __init__(self, label_map: Mapping[str, Any] | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self._ids: dict[str, int] = {}
        for c in (label_map or {}).get("categories", []):
            self.records.append(dict(c))
            self._ids.setdefault(c["name"], int(c["id"]))

    def id(self, name: str) -> int:
        """The id of ``name`` (a new category if unknown)."""
        found = self._ids.get(name)
        if found is None:
            found = max((int(c["id"]) for c in self.records), default=0) + 1
            self.records.append({"id": found, "name": name})
            self._ids[name] = found
        return found


def dataset_from_records(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]],
    categories: CategoryMap | Sequence[Mapping[str, Any]],
    label_map: Mapping[str, Any] | None, source: str, *, complete: bool = False,
) -> Dataset:
    """A dataset from COCO records, through the one COCO reader; the top-level keys of
    the label map (``info``, ``licenses``, ...) come back too. ``categories``: a
    :class:`CategoryMap` or the category records.

    ``complete``: fill what the records do not say as the export fills it
    (:func:`~cocokit.io.coco.complete_geometry`: a missing box from the segmentation, a
    missing area from the segmentation, a polygon's shoelace area or a mask's pixel
    count, as validate checks them, else ``w * h``). CVAT
    and DOTA ask for it; VOC, LabelMe and Label Studio do not, as their writers name
    an area they cannot store as a loss.
    """
    doc: dict[str, Any] = {k: v for k, v in (label_map or {}).items()
                           if k not in ("categories", "images", "annotations")}
    cats = categories.records if isinstance(categories, CategoryMap) else list(categories)
    doc.update(images=images, annotations=annotations, categories=cats)
    ds = read_coco(doc, name=source)
    anns, rows = ds.annotations, ds.image_index
    # (a dangling image_id: left as it is, for the export contract to name)
    if not complete or not len(anns) or (rows < 0).any():
        return ds
    bbox, area, n_box, n_area = complete_geometry(
        anns.bbox, anns.area, anns.segmentation, ds.images.height[rows], ds.images.width[rows])
    if not (n_box or n_area):
        return ds
    return ds.replace(annotations=anns.replace(bbox=bbox, area=area))


def polygon_bbox(rings: Sequence[Sequence[float]]) -> list[float]:
    """The xywh box around flat rings ``[[x1, y1, x2, y2, ...], ...]``."""
    xs = [v for r in rings for v in r[0::2]]
    ys = [v for r in rings for v in r[1::2]]
    if not xs:
        return [0.0, 0.0, 0.0, 0.0]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


# -- writing -------------------------------------------------------------------------------


@dataclass
class ExportRows:
    """What an export writes, after the export contract: the image rows, and per image
    row its annotation rows (with the completed boxes, xywh)."""

    ds: Dataset
    image_rows: np.ndarray
    ann_rows: np.ndarray
    bbox: np.ndarray  # per entry of ann_rows
    skipped: list[str]

    def by_image(self) -> Iterator[tuple[int, list[tuple[int, np.ndarray]]]]:
        """(image row, [(annotation row, bbox), ...]) for each image written, in order."""
        img_idx = self.ds.image_index[self.ann_rows]
        order = np.argsort(img_idx, kind="stable")
        sorted_img = img_idx[order]
        starts = np.searchsorted(sorted_img, self.image_rows, "left")
        ends = np.searchsorted(sorted_img, self.image_rows, "right")
        for i, s, e in zip(self.image_rows.tolist(), starts.tolist(), ends.tolist()):
            yield i, [(int(self.ann_rows[k]), self.bbox[k]) for k in order[s:e].tolist()]


def export_rows(ds: Dataset, target: str, *, ids: IdPolicy = "auto") -> ExportRows:
    """The rows to write under the export contract (refuses a dataset with integrity or
    record errors, naming them, before anything is written). ``ids``: the id policy
    (``"auto"`` for a target that does not store ids, so repeated ids do not matter)."""
    plan = plan_export(ds, target=target, image_ids=ids, annotation_ids=ids)
    return ExportRows(ds, plan.image_rows, plan.ann_rows, plan.bbox, list(plan.skipped))


def common_losses(rows: ExportRows, *, area: bool | np.ndarray = True,
                  keypoints: bool = True, crowd: bool = True,
                  image_keys: Collection[str] | None = (),
                  annotation_keys: Collection[str] | None = (),
                  category_keys: Collection[str] | None = None, top_level: bool = False,
                  image_ids: bool = True, annotation_ids: bool = True) -> Losses:
    """The losses every target shares, each switchable.

    ``area``: True when the target stores no area (every area given is counted: it is
    computed from the geometry when read back), or the areas the reader will compute,
    one per entry of ``rows.ann_rows`` (NaN: not known), to count only those that
    change; False when areas are kept. ``keypoints``: keypoint sets dropped. ``crowd``:
    the iscrowd flag dropped. ``image_keys``, ``annotation_keys``, ``category_keys``:
    the extra keys the target carries (None: it carries them all; categories are
    carried whole by default, in the label map), each other key counted as
    ``<what>-key-dropped:<key>``. ``top_level``: the top-level keys (``info``,
    ``licenses``, ...) are dropped (``top-key-dropped:<key>``). ``image_ids`` and
    ``annotation_ids``: the ids are not stored and are numbered 1..N on reading
    (counted only where that changes them).
    """
    losses = Losses()
    ds = rows.ds
    anns, imgs = ds.annotations, ds.images
    a = rows.ann_rows
    given = anns.area[a]
    if isinstance(area, np.ndarray):
        with np.errstate(invalid="ignore"):
            differ = (np.isfinite(given) & np.isfinite(area)
                      & (np.abs(given - area) > 1e-6 * np.maximum(1.0, np.abs(given))))
        losses.add("area-recomputed", int(differ.sum()), "areas not stored (computed from "
                   "the geometry when read back: a polygon's shoelace area, a mask's pixel "
                   "count, or w*h of a box)")
    elif area:
        losses.add("area-recomputed", int(np.count_nonzero(~np.isnan(given))),
                   "areas not stored (computed from the geometry when read back)")
    if keypoints:
        losses.add("keypoints-dropped",
                   sum(1 for k in anns.keypoints[a].tolist() if k is not None),
                   "keypoint sets dropped")
    if crowd:
        losses.add("crowd-flag-dropped", int(np.count_nonzero(anns.crowd[a])),
                   "crowd flags dropped (written as ordinary objects)")
    for what, extras, keep in (("image", imgs.extra[rows.image_rows].tolist(), image_keys),
                               ("annotation", anns.extra[a].tolist(), annotation_keys),
                               ("category", ds.categories.records, category_keys)):
        if keep is None:
            continue
        counts: dict[str, int] = {}
        for extra in extras:
            for key in extra or ():
                if key not in keep and not (what == "category" and key in ("id", "name")):
                    counts[key] = counts.get(key, 0) + 1
        for key, n in counts.items():
            losses.add(f"{what}-key-dropped:{key}", n, f"{what} {key!r} values dropped")
    if top_level:
        for key in ds.extra:
            losses.add(f"top-key-dropped:{key}", 1, f"top-level {key!r} dropped")
    if image_ids:
        img_ids = imgs.id[rows.image_rows]
        changed = int(np.count_nonzero(img_ids != np.arange(1, len(img_ids) + 1)))
        losses.add("image-ids-renumbered", changed,
                   "image ids not stored (numbered 1..N when read back)")
    if annotation_ids:
        order = [r for _, group in rows.by_image() for r, _ in group]
        ann_ids = anns.id[np.asarray(order, np.int64)] if order else np.zeros(0, np.int64)
        changed = int(np.count_nonzero(ann_ids != np.arange(1, len(ann_ids) + 1)))
        losses.add("annotation-ids-renumbered", changed,
                   "annotation ids not stored (numbered 1..N when read back)")
    return losses


def polygon_box_losses(rows: ExportRows, masks: bool = False) -> Losses:
    """For a target that stores polygons (and, with ``masks``, RLE masks) without a box:
    the shapes whose box is not their tight box (it comes back as the tight box)."""
    losses = Losses()
    anns = rows.ds.annotations
    a = rows.ann_rows
    if masks:
        rle = a[anns.segmentation_kind[a] >= 2]
        differ = 0
        for r in rle.tolist():
            tight = mask_api().toBbox(encoded_rle(plain(anns.segmentation[r])))
            stored = anns.bbox[r]
            differ += int(not np.isnan(stored[0]) and not np.allclose(stored, tight,
                                                                      rtol=1e-9, atol=1e-9))
        losses.add("mask-box-recomputed", differ,
                   "boxes that were not their mask's tight box (read back as the tight box)")
    poly = a[anns.segmentation_kind[a] == 1]
    if len(poly):
        tight = polygon_bboxes(anns.polygons)[poly]
        stored = anns.bbox[poly]
        differ = ~np.isnan(stored[:, 0]) & ~np.isclose(stored, tight, rtol=1e-9,
                                                         atol=1e-9).all(axis=1)
        losses.add("polygon-box-recomputed", int(np.count_nonzero(differ)),
                   "boxes that were not their polygon's tight box (read back as the tight box)")
    return losses


def label_map_bytes(ds: Dataset) -> bytes:
    """The label map of ``ds``: its categories and top-level keys, as JSON."""
    doc: dict[str, Any] = {k: plain(v) for k, v in ds.extra.items()}
    doc["categories"] = list(ds.categories)
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


class OutputFolder:
    """Files written into a staged output folder (see :func:`output_folder`)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.written: set[str] = set()

    def write(self, rel: str, data: bytes) -> None:
        """Write the file ``rel`` (``/``-separated) under the folder; a name given twice
        is refused (two images would share one annotation file)."""
        if rel in self.written:
            raise OptionError("output", rel, "one file per image; two images map to this "
                              "annotation file (same name, another suffix?)")
        self.written.add(rel)
        files.write_bytes(files.join(self.root, rel), data)


@contextmanager
def output_folder(path: str | os.PathLike[str], ds: Dataset,
                  label_map: bool = True) -> Iterator[OutputFolder]:
    """Stage the output folder ``path`` (:func:`cocokit.io.staging.staged`): files
    written in the block appear together when it ends, none when it raises. The label
    map is written first."""
    with staged(path, option="output") as stage:
        out = OutputFolder(stage.path)
        stage.record(_lazy(out))
        if label_map:
            out.write(LABEL_MAP, label_map_bytes(ds))
        yield out


def _lazy(out: OutputFolder) -> Iterator[str]:
    for rel in sorted(out.written):
        yield files.join(out.root, rel)


def rel_stem(file_name: str, suffix: str) -> str:
    """``a/b/c.jpg`` -> ``a/b/c`` + suffix, ``/``-separated, never leaving the folder."""
    name = file_name.replace("\\", "/").lstrip("/")
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    stem = posixpath.splitext("/".join(parts) or "image")[0]
    return stem + suffix


def label_paths(file_names: Sequence[str], suffix: str, folder: str, target: str) -> list[str]:
    """The label file of each image, relative to ``folder``: :func:`rel_stem` of its
    ``file_name`` with ``suffix``. Two images that need the same label file are an
    :class:`~cocokit.errors.IntegrityError` naming both, raised before anything is
    written."""
    out: list[str] = []
    seen: dict[str, int] = {}
    clashes: list[str] = []
    for r, name in enumerate(file_names):
        rel = rel_stem(str(name), suffix)
        first = seen.setdefault(rel, r)
        if first != r:
            clashes.append(f"images[{r}].file_name {name!r} and images[{first}].file_name "
                           f"{file_names[first]!r} both need {folder}/{rel}")
        out.append(rel)
    if clashes:
        raise IntegrityError(clashes, target)
    return out


def local_folder(path: str | os.PathLike[str], option: str) -> str:
    """``path`` as a local path; a URL (``s3://``, ``memory://``) is refused for the
    folder formats, which are written and read on the local disk."""
    local = files.local_path(path)
    if local is None:
        raise OptionError(option, os.fspath(path), "a local folder (folder formats are not "
                          "read from or written to URLs)")
    return os.fspath(local)


def number_text(v: float) -> str:
    """The shortest text that reads back as ``v``: an integer without ``.0``, else the
    round-trip ``repr`` (``-0.0`` written as ``0``)."""
    f = float(v) + 0.0
    return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)

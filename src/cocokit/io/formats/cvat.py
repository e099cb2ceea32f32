"""CVAT for images 1.1 XML: read as COCO, written from COCO.

One file (``annotations.xml``; a folder holding one is read too)::

    <annotations>
      <version>1.1</version>
      <meta><task><labels>
        <label><name>car</name><color>#fa3253</color><attributes>
          <attribute><name>model</name><mutable>False</mutable>
            <input_type>select</input_type><default_value>a</default_value>
            <values>a\\nb</values></attribute>
        </attributes></label>
      </labels></task></meta>
      <image id="0" name="a.jpg" width="640" height="480">
        <box label="car" occluded="0" source="manual" xtl="1" ytl="2" xbr="30" ybr="40"
             z_order="0" group_id="1"><attribute name="model">a</attribute></box>
        <polygon label="car" points="1,2;3,4;5,6" .../>
        <polyline .../> <points .../> <mask rle="..." left top width height .../> <tag .../>
      </image>
    </annotations>

Reading (CVAT -> COCO). Categories are the labels in ``<meta>`` order (``<task>``,
``<project>`` or ``<job>``), ids 1..K, with the label's ``color`` and attribute
declarations (``cvat_attributes``) as category keys; when ``<meta>`` declares no labels,
the labels used, in order of first use. Each shape becomes one annotation:

* ``<box>``: ``bbox`` ``[xtl, ytl, xbr - xtl, ybr - ytl]``, no segmentation; a box with a
  ``rotation`` becomes the 4-point polygon of its corners (a loss);
* ``<polygon>``: a one-ring polygon segmentation, ``bbox`` its bounds;
* ``<mask>``: CVAT's run lengths inside the box ``left, top, width, height`` become a COCO
  RLE of the whole image;
* ``<points>``: COCO has no free points: they become a keypoint annotation (``keypoints``
  ``[x, y, 2, ...]``, no names, ``bbox`` their bounds), said in the loss report;
* ``<polyline>``: no COCO shape is a line: ``bbox`` its bounds and the points kept in
  ``cvat.points`` (written back as a polyline), said in the loss report;
* ``<tag>`` (an image label) becomes an entry of the image's ``cvat_tags`` list;
  ``<ellipse>``, ``<cuboid>``, ``<skeleton>`` and ``<track>`` are not read (counted).

``area`` is the shoelace area of the polygon, the pixel count of the mask (what
:func:`cocokit.validate` checks), ``w * h`` of a box. The shape's
``<attribute>`` children become the ``attributes`` dict of the annotation (values typed
by the label's declaration: ``checkbox`` a bool, ``number`` a number, else text), except
``is_crowd`` (CVAT's name for it), which becomes ``iscrowd``. ``occluded``, ``z_order``,
``source`` and ``group_id`` go into the ``cvat`` dict of the annotation. Image ids are the
``<image id>``; other image attributes (``subset``, ``task_id``) become image keys.

Writing (COCO -> CVAT) gives each annotation back its shape: a rotated box read from
CVAT (4 corners and ``cvat.rotation``) a ``<box>`` with its ``rotation``, a polygon one
``<polygon>`` per part (several parts share a ``group_id``: a loss), an RLE a ``<mask>``,
a box a ``<box>``, and ``attributes``/``cvat``/``iscrowd`` (as a declared ``is_crowd``
checkbox) where CVAT keeps them. What CVAT cannot carry is counted: keypoints of an
object (written as a separate ``<points>`` shape of its labelled points, names and
visibility lost), category ids (labels are matched by name; ids come back as 1..K),
boxes of polygon annotations that are not the polygon's bounds (CVAT keeps no box
beside a polygon), other keys.

The XML is parsed with the standard library's expat, refusing any DOCTYPE (and so any
entity declaration, the source of "billion laughs" and external-entity attacks). Broken
XML, a missing or non-numeric attribute, a label not declared in ``<meta>`` or a
shape wholly outside its image (crossing the border is kept) is an
:class:`~cocokit.errors.InputError` naming ``file:line``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from ...dataset import Dataset, plain
from ...errors import InputError
from ...geometry import (
    SegmentationKind,
    annotation_areas,
    encoded_rle,
    mask_api,
    parse_polygons,
)
from .. import sniff
from ..atomic import atomic_write
from ..files import read_bytes
from .losses import Losses, refuse_lossy
from .records import (
    XmlNode,
    common_losses,
    dataset_from_records,
    export_rows,
    number_text,
    parse_xml,
)

__all__ = ["NAME", "detect", "read", "write"]

NAME = "cvat"
_FILE = "annotations.xml"
_SHAPES = ("box", "polygon", "polyline", "points", "mask")
_UNREAD = ("ellipse", "cuboid", "skeleton", "track")
_CROWD = "is_crowd"
_CVAT_KEYS = ("occluded", "z_order", "source", "group_id")


# -- reading -----------------------------------------------------------------------------


def _xml_file(path: str) -> str:
    local = Path(path)
    if local.is_dir():
        if (local / _FILE).is_file():
            return str(local / _FILE)
        found = sorted(local.glob("*.xml"))
        if len(found) == 1:
            return str(found[0])
        raise InputError(path, None, f"no {_FILE} in this folder")
    return path


def detect(path: str) -> bool:
    """Whether ``path`` is a CVAT for images XML file (or a folder holding
    ``annotations.xml``, or one ``*.xml``) whose root is ``<annotations>`` (the one
    sniffer, :func:`cocokit.io.sniff.format_of`)."""
    return sniff.format_of(path) == NAME


class _Reader:
    """Reads one CVAT document into COCO records, collecting the losses."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.losses = Losses()
        self.cat_of: dict[str, int] = {}
        self.categories: list[dict[str, Any]] = []
        self.declared = False
        self.types: dict[tuple[str, str], str] = {}  # (label, attribute) -> input type
        self.images: list[dict[str, Any]] = []
        self.anns: list[dict[str, Any]] = []

    def fail(self, node: XmlNode, message: str) -> InputError:
        return InputError(self.file, f"line {node.line}: <{node.tag}>", message)

    def number(self, node: XmlNode, key: str, *, required: bool = True) -> float | None:
        text = node.attrib.get(key)
        if text is None:
            if required:
                raise self.fail(node, f"missing attribute {key!r}")
            return None
        try:
            v = float(text)
        except ValueError:
            raise self.fail(node, f"{key}={text!r} is not a number") from None
        if not math.isfinite(v):
            raise self.fail(node, f"{key}={text!r} is not a finite number")
        return v

    def integer(self, node: XmlNode, key: str, *, required: bool = True) -> int | None:
        v = self.number(node, key, required=required)
        if v is None:
            return None
        if not v.is_integer():
            raise self.fail(node, f"{key}={node.attrib[key]!r} is not an integer")
        return int(v)

    def labels(self, root: XmlNode) -> None:
        meta = root.find("meta")
        holders = [meta.find(t) for t in ("task", "project", "job")] if meta else []
        for holder in holders:
            labels = holder.find("labels") if holder is not None else None
            if labels is None:
                continue
            self.declared = True
            for label in labels.children:
                if label.tag != "label":
                    continue
                if label.findtext("parent"):
                    continue  # a point of a skeleton label (skeletons are not read)
                name = label.findtext("name")
                if not name:
                    raise self.fail(label, "a label without a <name>")
                cat: dict[str, Any] = {"id": len(self.categories) + 1, "name": name}
                color = label.findtext("color")
                if color:
                    cat["color"] = color
                specs = []
                attrs = label.find("attributes")
                for a in attrs.children if attrs is not None else []:
                    spec = {"name": a.findtext("name"),
                            "mutable": a.findtext("mutable", "False"),
                            "input_type": a.findtext("input_type", "text"),
                            "default_value": a.findtext("default_value"),
                            "values": a.findtext("values")}
                    self.types[(name, spec["name"])] = spec["input_type"]
                    specs.append(spec)
                if specs:
                    cat["cvat_attributes"] = specs
                if name not in self.cat_of:
                    self.cat_of[name] = cat["id"]
                    self.categories.append(cat)
            break

    def category(self, node: XmlNode) -> tuple[str, int]:
        label = node.attrib.get("label")
        if label is None:
            raise self.fail(node, "missing attribute 'label'")
        if label not in self.cat_of:
            if self.declared:
                raise self.fail(node, f"label {label!r} is not declared in <meta><labels>")
            self.cat_of[label] = len(self.categories) + 1
            self.categories.append({"id": self.cat_of[label], "name": label})
        return label, self.cat_of[label]

    def value(self, label: str, name: str, text: str) -> Any:
        kind = self.types.get((label, name), "text")
        if kind == "checkbox":
            return text.strip().lower() == "true"
        if kind == "number":
            try:
                v = float(text)
            except ValueError:
                return text
            return int(v) if v.is_integer() and "." not in text else v
        return text

    def points(self, node: XmlNode, width: int, height: int) -> list[float]:
        text = node.attrib.get("points")
        if text is None:
            raise self.fail(node, "missing attribute 'points'")
        out: list[float] = []
        for pair in filter(None, text.strip().split(";")):
            xy = pair.split(",")
            try:
                x, y = float(xy[0]), float(xy[1])
            except (ValueError, IndexError):
                raise self.fail(node, f"points: expected 'x,y;x,y;...', got {pair!r}") \
                    from None
            if len(xy) != 2 or not (math.isfinite(x) and math.isfinite(y)):
                raise self.fail(node, f"points: expected 'x,y;x,y;...', got {pair!r}")
            out += [x, y]
        if not out:
            raise self.fail(node, "points: empty")
        self.inside(node, out[0::2], out[1::2], width, height)
        return out

    def inside(self, node: XmlNode, xs: list[float], ys: list[float], width: int,
               height: int) -> None:
        # a shape may cross the border (real polygons overshoot it); one that lies
        # wholly outside its image is wrong
        if max(xs) < 0 or max(ys) < 0 or min(xs) > width or min(ys) > height:
            raise self.fail(node, f"the shape lies outside the {width}x{height} image "
                            f"(x {min(xs):g}..{max(xs):g}, y {min(ys):g}..{max(ys):g})")

    def image(self, node: XmlNode) -> None:
        for key in ("id", "name", "width", "height"):
            if key not in node.attrib:
                raise self.fail(node, f"missing attribute {key!r}")
        iid = self.integer(node, "id")
        w, h = self.integer(node, "width"), self.integer(node, "height")
        assert iid is not None and w is not None and h is not None
        if w <= 0 or h <= 0:
            raise self.fail(node, f"width and height must be positive, got {w}x{h}")
        rec: dict[str, Any] = {"id": iid, "file_name": node.attrib["name"], "width": w,
                               "height": h}
        rec.update({k: v for k, v in node.attrib.items() if k not in rec and k != "name"})
        tags: list[dict[str, Any]] = []
        for shape in node.children:
            if shape.tag == "tag":
                label, _ = self.category(shape)
                tag: dict[str, Any] = {"label": label}
                attrs = self.attributes(shape, label)
                if attrs:
                    tag["attributes"] = attrs
                tags.append(tag)
            elif shape.tag in _SHAPES:
                self.shape(shape, iid, w, h)
            elif shape.tag in _UNREAD:
                self.losses.add(f"{shape.tag}-not-read", 1, f"CVAT {shape.tag}s not read "
                                "(no COCO shape)")
        if tags:
            rec["cvat_tags"] = tags
        self.images.append(rec)

    def attributes(self, node: XmlNode, label: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a in node.children:
            if a.tag == "attribute":
                if "name" not in a.attrib:
                    raise self.fail(a, "missing attribute 'name'")
                out[a.attrib["name"]] = self.value(label, a.attrib["name"], a.text)
        return out

    def shape(self, node: XmlNode, image_id: int, w: int, h: int) -> None:
        label, cid = self.category(node)
        attrs = self.attributes(node, label)
        crowd = bool(attrs.pop(_CROWD, False))
        cvat: dict[str, Any] = {}
        occluded = node.attrib.get("occluded")
        if occluded is not None:
            cvat["occluded"] = 1 if occluded.strip() in ("1", "true", "True") else 0
        for key in ("z_order", "group_id"):
            v = self.integer(node, key, required=False)
            if v is not None:
                cvat[key] = v
        if "source" in node.attrib:
            cvat["source"] = node.attrib["source"]
        ann: dict[str, Any] = {"id": len(self.anns) + 1, "image_id": image_id,
                               "category_id": cid, "iscrowd": int(crowd)}
        tag = node.tag
        if tag == "box":
            x0, y0, x1, y1 = (self.number(node, k) for k in ("xtl", "ytl", "xbr", "ybr"))
            assert x0 is not None and y0 is not None and x1 is not None and y1 is not None
            if x1 < x0 or y1 < y0:
                raise self.fail(node, f"xbr < xtl or ybr < ytl ({x0:g},{y0:g} to "
                                f"{x1:g},{y1:g})")
            self.inside(node, [x0, x1], [y0, y1], w, h)
            rot = self.number(node, "rotation", required=False) or 0.0
            if rot:
                cx, cy, t = (x0 + x1) / 2, (y0 + y1) / 2, math.radians(rot)
                c, s = math.cos(t), math.sin(t)
                flat: list[float] = []
                for px, py in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
                    dx, dy = px - cx, py - cy
                    flat += [cx + dx * c - dy * s, cy + dx * s + dy * c]
                ann["segmentation"] = [flat]
                ann["bbox"] = _bounds(flat)
                cvat["rotation"] = rot
                self.losses.add("rotated-box-as-polygon", 1, "rotated boxes read as 4-point "
                                "polygons (the rotation kept in cvat.rotation)")
            else:
                ann["bbox"] = [x0, y0, x1 - x0, y1 - y0]
                ann["area"] = (x1 - x0) * (y1 - y0)
        elif tag == "polygon":
            flat = self.points(node, w, h)
            if len(flat) < 6:
                raise self.fail(node, f"a polygon needs 3 points, got {len(flat) // 2}")
            ann["segmentation"] = [flat]
            ann["bbox"] = _bounds(flat)
        elif tag == "polyline":
            flat = self.points(node, w, h)
            ann["bbox"] = _bounds(flat)
            cvat["shape"] = "polyline"
            cvat["points"] = flat
            self.losses.add("polyline-as-box", 1, "polylines read as boxes (the points kept in "
                            "cvat.points)")
        elif tag == "points":
            flat = self.points(node, w, h)
            kp: list[float] = []
            for x, y in zip(flat[0::2], flat[1::2], strict=True):
                kp += [x, y, 2]
            ann["keypoints"] = kp
            ann["num_keypoints"] = len(kp) // 3
            ann["bbox"] = _bounds(flat)
            cvat["shape"] = "points"
            self.losses.add("points-as-keypoints", 1, "CVAT points read as keypoint "
                            "annotations (no keypoint names; visibility 2)")
        else:  # mask
            ann["segmentation"] = self.mask(node, w, h)
        if attrs:
            ann["attributes"] = attrs
        if cvat:
            ann["cvat"] = cvat
        self.anns.append(ann)

    def mask(self, node: XmlNode, w: int, h: int) -> dict[str, Any]:
        left, top, mw, mh = (self.integer(node, k) for k in ("left", "top", "width", "height"))
        assert left is not None and top is not None and mw is not None and mh is not None
        if mw <= 0 or mh <= 0 or left < 0 or top < 0 or left + mw > w or top + mh > h:
            raise self.fail(node, f"the mask box {left},{top} {mw}x{mh} is not inside the "
                            f"{w}x{h} image")
        text = node.attrib.get("rle")
        if text is None:
            raise self.fail(node, "missing attribute 'rle'")
        try:
            counts = np.array([int(v) for v in text.split(",") if v.strip()], np.int64)
        except ValueError:
            raise self.fail(node, "rle: expected comma-separated counts") from None
        if (counts < 0).any() or int(counts.sum()) != mw * mh:
            raise self.fail(node, f"rle: the counts sum to {int(counts.sum())}, expected "
                            f"width*height = {mw * mh}")
        values = np.arange(len(counts)) % 2
        crop = np.repeat(values, counts).astype(np.uint8).reshape(mh, mw)
        full = np.zeros((h, w), np.uint8)
        full[top : top + mh, left : left + mw] = crop
        rle = mask_api().encode(np.asfortranarray(full))
        return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def _bounds(flat: list[float]) -> list[float]:
    xs, ys = flat[0::2], flat[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def read(path: str, *, images: str | None = None) -> tuple[Dataset, Losses]:
    """Read a CVAT for images 1.1 XML file as COCO (see the module docstring); returns
    the dataset and what COCO could not hold as CVAT had it. ``images`` is not used."""
    file = _xml_file(os.fspath(path))
    try:
        data = read_bytes(file)
    except FileNotFoundError:
        raise InputError(file, None, "file not found") from None
    root = parse_xml(data, file)
    if root.tag != "annotations":
        raise InputError(file, f"line {root.line}", f"expected the root element "
                         f"<annotations> (CVAT for images 1.1), got <{root.tag}>")
    reader = _Reader(file)
    reader.labels(root)
    for node in root.children:
        if node.tag == "image":
            reader.image(node)
        elif node.tag == "track":
            reader.losses.add("track-not-read", 1, "CVAT tracks not read (video "
                              "annotations; export as CVAT for images)")
    ds = dataset_from_records(reader.images, reader.anns, reader.categories, None, file,
                              complete=True)
    return ds, reader.losses


# -- writing -----------------------------------------------------------------------------


def _points_text(flat: list[float] | np.ndarray) -> str:
    vals = [number_text(v) for v in np.asarray(flat, np.float64).ravel().tolist()]
    return ";".join(f"{x},{y}" for x, y in zip(vals[0::2], vals[1::2], strict=True))


def _box_geometry(x0: float, y0: float, x1: float, y1: float) -> str:
    """The corner attributes of a CVAT ``<box>``."""
    return (f'xtl="{number_text(x0)}" ytl="{number_text(y0)}" xbr="{number_text(x1)}" '
            f'ybr="{number_text(y1)}"')


def _attr_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_text(value) if isinstance(value, float) else str(value)
    return str(value)


def _input_type(values: list[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "checkbox"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    return "text"


def _cvat_rle(rle: Mapping[str, Any]) -> tuple[int, int, int, int, list[int]] | None:
    """(left, top, width, height, counts) of a COCO RLE as CVAT stores a mask: run
    lengths (zeros first) of its tight box, row by row; None for an empty mask."""
    m = mask_api().decode(encoded_rle(rle))
    ys, xs = np.nonzero(m)
    if not len(xs):
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    flat = m[y0 : y1 + 1, x0 : x1 + 1].ravel().astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [len(flat)]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    return x0, y0, x1 - x0 + 1, y1 - y0 + 1, runs


class _Writer:
    """Builds the XML of one dataset (what to write is worked out first, so the losses
    are known before a byte is written)."""

    def __init__(self, ds: Dataset, target: str) -> None:
        self.ds = ds
        self.plan = export_rows(ds, target)
        self.losses = Losses()
        # the area the reader will compute, per annotation row written as one shape
        self.area_of: dict[int, float] = {}
        self.ring_of: dict[int, np.ndarray] = {}  # one-ring polygons: area computed later

    def areas(self) -> None:
        """Count what will not come back but areas known only once the shapes are chosen:
        the areas that change, keys CVAT has no place for, ids (see
        :func:`~cocokit.io.formats.records.common_losses`)."""
        ds, rows = self.ds, self.plan.ann_rows
        if self.ring_of:
            rs = list(self.ring_of)
            seg = np.empty(len(rs), object)
            seg[:] = [[self.ring_of[r].ravel().tolist()] for r in rs]
            ii = ds.image_index[rs]
            for r, a in zip(rs, annotation_areas(seg, ds.images.height[ii],
                                                   ds.images.width[ii]).tolist(), strict=True):
                self.area_of[r] = a
        computed = np.array([self.area_of.get(r, np.nan) for r in rows.tolist()], np.float64)
        unique = len(np.unique(ds.images.id[self.plan.image_rows])) == len(self.plan.image_rows)
        if not unique:
            self.losses.add("image-ids-renumbered", len(self.plan.image_rows), "image ids not "
                            "kept (not unique: numbered 0..N-1)")
        self.losses.extend(common_losses(
            self.plan, area=computed, keypoints=False, crowd=False,
            image_keys=("subset", "task_id", "cvat_tags"),
            annotation_keys=("attributes", "cvat"),
            category_keys=("color", "cvat_attributes"), top_level=True,
            image_ids=False, annotation_ids=True))

    def label_specs(self) -> list[tuple[dict[str, Any], list[dict[str, str]]]]:
        """Each category with its attribute declarations: its own ``cvat_attributes``,
        then the attributes its annotations have, then ``is_crowd`` when one is crowd."""
        ds, rows = self.ds, self.plan.ann_rows
        anns = ds.annotations
        seen: dict[int, dict[str, list[Any]]] = {}
        crowd_cats: set[int] = set()
        for r in rows.tolist():
            e = plain(anns.extra[r]) or {}
            cid = int(anns.category_id[r])
            if isinstance(e.get("attributes"), Mapping):
                for k, v in e["attributes"].items():
                    seen.setdefault(cid, {}).setdefault(k, []).append(v)
            if anns.crowd[r]:
                crowd_cats.add(cid)
        out = []
        for cat in ds.categories:
            specs = [{k: str(s.get(k, "")) for k in ("name", "mutable", "input_type",
                                                      "default_value", "values")}
                     for s in cat.get("cvat_attributes") or [] if isinstance(s, Mapping)]
            names = {s["name"] for s in specs}
            for k, values in seen.get(int(cat["id"]), {}).items():
                if k not in names:
                    kind = _input_type(values)
                    default = "false" if kind == "checkbox" else ""
                    specs.append({"name": k, "mutable": "False", "input_type": kind,
                                  "default_value": default, "values": ""})
            if int(cat["id"]) in crowd_cats and _CROWD not in names:
                specs.append({"name": _CROWD, "mutable": "False", "input_type": "checkbox",
                              "default_value": "false", "values": "false\ntrue"})
            out.append((cat, specs))
        return out

    def document(self) -> Iterator[str]:
        ds, plan = self.ds, self.plan
        imgs, anns = ds.images, ds.annotations
        specs = self.label_specs()
        cats = ds.categories
        ids = cats.id.tolist()
        if ids != list(range(1, len(ids) + 1)):
            self.losses.add("category-ids", len(ids), "category ids not kept (CVAT labels are "
                            "names; read back as 1..K in label order)")
        name_of = {int(c["id"]): str(c["name"]) for c in cats.records}
        crowd_labels = {str(c["name"]) for c, s in specs if any(x["name"] == _CROWD for x in s)}
        kinds = anns.segmentation_kind
        rows = plan.ann_rows
        poly_rows = rows[kinds[rows] == SegmentationKind.POLYGON]
        polys = parse_polygons(anns.segmentation, poly_rows)
        rings_of: dict[int, list[np.ndarray]] = {}
        ro = polys.ring_offsets
        for k, r in enumerate(poly_rows.tolist()):
            rings_of[r] = [polys.coords[ro[q] : ro[q + 1]]
                           for q in range(int(polys.offsets[k]), int(polys.offsets[k + 1]))]
        extras = [plain(e) or {} for e in anns.extra[rows]]
        groups = [int(e["cvat"]["group_id"]) for e in extras
                  if isinstance(e.get("cvat"), Mapping) and "group_id" in e["cvat"]]
        next_group = max(groups, default=0) + 1

        yield '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n'
        yield "  <version>1.1</version>\n  <meta>\n    <task>\n"
        yield f"      <size>{len(plan.image_rows)}</size>\n      <mode>annotation</mode>\n"
        yield "      <labels>\n"
        for cat, sp in specs:
            yield f"        <label>\n          <name>{escape(str(cat['name']))}</name>\n"
            if cat.get("color"):
                yield f"          <color>{escape(str(cat['color']))}</color>\n"
            yield "          <attributes>\n"
            for s in sp:
                yield ("            <attribute>\n"
                       + "".join(f"              <{k}>{escape(s[k])}</{k}>\n"
                                 for k in ("name", "mutable", "input_type", "default_value",
                                           "values"))
                       + "            </attribute>\n")
            yield "          </attributes>\n        </label>\n"
        yield "      </labels>\n    </task>\n  </meta>\n"

        unique = len(np.unique(imgs.id[plan.image_rows])) == len(plan.image_rows)
        for k, (i, group) in enumerate(plan.by_image()):
            rec = imgs.record(i)
            iid = rec["id"] if unique else k
            attrs = f'id="{iid}" name={quoteattr(str(rec["file_name"]))} ' \
                    f'width="{rec["width"]}" height="{rec["height"]}"'
            for key in ("subset", "task_id"):
                if key in rec:
                    attrs += f" {key}={quoteattr(str(rec[key]))}"
            yield f"  <image {attrs}>\n"
            for r, bbox in group:
                shapes, next_group = self.shapes(r, name_of, crowd_labels, rings_of, bbox,
                                                 next_group)
                yield from shapes
            for tag in rec.get("cvat_tags") or []:
                if isinstance(tag, Mapping) and "label" in tag:
                    body = "".join(self.attribute_lines(tag.get("attributes") or {}))
                    yield (f"    <tag label={quoteattr(str(tag['label']))} source=\"manual\">\n"
                           f"{body}    </tag>\n")
            yield "  </image>\n"
        yield "</annotations>\n"

    @staticmethod
    def attribute_lines(attrs: Mapping[str, Any]) -> Iterator[str]:
        for k, v in attrs.items():
            yield (f"      <attribute name={quoteattr(str(k))}>"
                   f"{escape(_attr_text(plain(v)))}</attribute>\n")

    def shapes(self, r: int, name_of: dict[int, str], crowd_labels: set[str],
               rings_of: dict[int, list[np.ndarray]], bbox: np.ndarray, next_group: int,
               ) -> tuple[list[str], int]:
        anns = self.ds.annotations
        e = plain(anns.extra[r]) or {}
        cvat: dict[str, Any] = e["cvat"] if isinstance(e.get("cvat"), dict) else {}
        label = name_of[int(anns.category_id[r])]
        attrs = dict(e["attributes"]) if isinstance(e.get("attributes"), Mapping) else {}
        if label in crowd_labels:
            attrs[_CROWD] = bool(anns.crowd[r])
        body = "".join(self.attribute_lines(attrs))
        occluded = int(bool(cvat.get("occluded", 0)))
        source = str(cvat.get("source", "manual"))
        z = int(cvat.get("z_order", 0))
        group = cvat.get("group_id")
        kind = int(anns.segmentation_kind[r])
        out: list[str] = []

        def shape(tag: str, geometry: str, group_id: Any) -> str:
            g = f' group_id="{int(group_id)}"' if group_id is not None else ""
            return (f"    <{tag} label={quoteattr(label)} source={quoteattr(source)} "
                    f'occluded="{occluded}" {geometry} z_order="{z}"{g}>\n{body}    </{tag}>\n')

        shape_kind = cvat.get("shape")
        kp = anns.keypoints[r]
        rings = rings_of.get(r, [])
        if (kind == SegmentationKind.POLYGON and "rotation" in cvat and len(rings) == 1
                and len(rings[0]) == 4):
            # a rotated box read as its corners: turned back into the box and its angle
            rot = float(cvat["rotation"])
            c = rings[0].mean(axis=0)
            t = math.radians(-rot)
            m = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
            flat = (rings[0] - c) @ m.T + c
            (x0, y0), (x1, y1) = flat.min(axis=0), flat.max(axis=0)
            geometry = _box_geometry(x0, y0, x1, y1) + f' rotation="{number_text(rot)}"'
            out.append(shape("box", geometry, group))
        elif kind == SegmentationKind.POLYGON:
            rings = [ring for ring in rings_of.get(r, []) if len(ring) >= 3]
            if len(rings) < len(rings_of.get(r, [])):
                self.losses.add("short-ring-dropped", len(rings_of[r]) - len(rings),
                                "polygon parts of fewer than 3 points dropped")
            if len(rings) > 1:
                self.losses.add("multi-polygon-split", 1, "multi-part polygons written as "
                                "separate CVAT polygons sharing a group_id")
                if group is None:
                    group, next_group = next_group, next_group + 1
            for ring in rings:
                out.append(shape("polygon", f'points="{_points_text(ring)}"', group))
            if len(rings) == 1:
                self.ring_of[r] = rings[0]
            if rings and np.isfinite(bbox).all():
                pts = np.concatenate(rings)
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                tight = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
                scale = max(float(np.abs(bbox).max()), 1.0)
                if np.abs(tight - bbox).max() > 1e-6 * scale:
                    self.losses.add("bbox-from-polygon", 1, "boxes of polygon annotations "
                                    "that are not the polygon's bounds (read back as the "
                                    "bounds)")
        elif kind in (SegmentationKind.RLE_UNCOMPRESSED, SegmentationKind.RLE_COMPRESSED):
            got = _cvat_rle(anns.rle(r))
            if got is None:
                self.losses.add("empty-mask-dropped", 1, "empty RLE masks dropped")
            else:
                left, top, w, h, counts = got
                self.area_of[r] = float(sum(counts[1::2]))
                geometry = (f'rle="{", ".join(map(str, counts))}" left="{left}" top="{top}" '
                            f'width="{w}" height="{h}"')
                out.append(shape("mask", geometry, group))
        elif shape_kind == "polyline" and isinstance(cvat.get("points"), list):
            out.append(shape("polyline", f'points="{_points_text(cvat["points"])}"', group))
        elif shape_kind == "points" and kp is not None:
            k = np.asarray(plain(kp), np.float64).reshape(-1, 3)
            out.append(shape("points", f'points="{_points_text(k[:, :2])}"', group))
            kp = None
        elif np.isfinite(bbox).all():
            x, y, w, h = bbox.tolist()
            geometry = _box_geometry(x, y, x + w, y + h)
            self.area_of[r] = ((x + w) - x) * ((y + h) - y)
            out.append(shape("box", geometry, group))
        else:
            self.losses.add("no-geometry", 1, "annotations without a box, polygon or mask "
                            "left out")
        if kp is not None:
            k = np.asarray(plain(kp), np.float64).reshape(-1, 3)
            labelled = k[k[:, 2] > 0]
            if len(labelled):
                out.append(shape("points", f'points="{_points_text(labelled[:, :2])}"', group))
                self.losses.add("keypoints-as-points", 1, "keypoint sets written as separate "
                                "CVAT points (keypoint names, visibility and unlabelled "
                                "points dropped)")
            else:
                self.losses.add("keypoints-dropped", 1, "keypoint sets without a labelled "
                                "point dropped")
        return out, next_group


def write(ds: Dataset, path: str, *, images: str | None = None,
          strict: bool = False) -> Losses:
    """Write ``ds`` as one CVAT for images 1.1 XML file at ``path`` (atomically; see
    the module docstring). ``images`` is not used. Returns what CVAT could not carry;
    ``strict`` refuses a lossy conversion before anything is written
    (:class:`~cocokit.io.formats.losses.LossyConversion`)."""
    target = os.fspath(path)
    writer = _Writer(ds, target)
    text = "".join(writer.document())
    writer.areas()
    refuse_lossy(writer.losses, target, strict)
    atomic_write(target, [text.encode("utf-8")])
    return writer.losses

"""Pascal VOC XML: a folder with ``Annotations/*.xml`` (one file per image), read and written.

Layout written::

    OUT/Annotations/<image path without suffix>.xml
    OUT/ImageSets/Main/default.txt     the image stems, one a line
    OUT/labelmap.txt                   the class names (Datumaro's VOC label map)
    OUT/label_map.json                 categories with their COCO ids, info, licenses

Reading accepts that folder, a folder of ``*.xml`` files, or one ``.xml`` file.

**Coordinates.** VOC boxes are 1-based pixel indices, both corners inside the box (the
VOC devkit's convention; a box covering the first pixel column has ``xmin`` 1). A COCO
box ``[x, y, w, h]`` is written as ``xmin = x + 1, ymin = y + 1, xmax = x + w,
ymax = y + h``, and read back the other way (detectron2's VOC loader does the same).
Readers that take ``xmin`` as the 0-based left edge (Datumaro, torchvision) see boxes one
pixel right and down of cocokit's. Numbers are written as the shortest decimal that
reads back as the same float; integral values without a fraction.

**What VOC carries.** Boxes, the class name, ``difficult``, ``truncated``, ``occluded``
(kept as the COCO annotation keys ``voc_difficult``, ``truncated`` and ``occluded``
when 1), ``pose`` (``voc_pose`` unless ``Unspecified``), Datumaro's ``<attributes>``
(``attributes``, a dict), the image ``depth`` and ``segmented`` flag; every other
element of ``<annotation>`` or ``<object>`` (``folder``, ``source``, ``owner``, ``part``,
...) as the key ``voc_<tag>`` (its text, or a dict of its children), written back. Not carried, each
counted in the loss report: polygons and RLE masks (written as their boxes), keypoints,
crowd flags, areas (computed again as ``w * h``), ids (numbered 1..N when read back)
and other extra keys.

A box wholly outside its image (or with ``xmax < xmin - 1``) is an error naming the file
and the object; a box partly outside is read as it is (the export contract, like COCO,
keeps it). Untrusted XML: a document with a ``<!DOCTYPE>`` or ``<!ENTITY>`` declaration is refused
(no entity expansion); errors name the file and the place (``object[2].bndbox.xmax``).
"""

from __future__ import annotations

import os
import posixpath
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ...dataset import Dataset, plain
from ...errors import InputError
from .. import sniff
from .losses import Losses, refuse_lossy
from .records import (
    CategoryMap,
    XmlNode,
    common_losses,
    dataset_from_records,
    export_rows,
    number_text,
    output_folder,
    parse_xml,
    read_label_map,
    rel_stem,
    relative_files,
)

__all__ = ["NAME", "detect", "read", "write"]

NAME = "voc"
DEFAULT_POSE = "Unspecified"
_FLAGS = (("difficult", "voc_difficult"), ("truncated", "truncated"), ("occluded", "occluded"))
_CARRIED = ("voc_difficult", "truncated", "occluded", "voc_pose", "attributes")
# the elements read into model fields; any other child of <annotation> or <object> is
# kept as the key ``voc_<tag>`` (its text, or a dict of its children) and written back
_IMAGE_TAGS = {"filename", "size", "segmented", "object"}
_OBJECT_TAGS = {"name", "bndbox", "pose", "difficult", "truncated", "occluded", "attributes"}


def _element_value(el: XmlNode) -> Any:
    """An element as JSON: its text (a leaf), or a dict of its children (a tag given
    several times: a list)."""
    if len(el) == 0:
        return (el.text or "").strip()
    return _children(el, set(), "")


def _children(el: XmlNode, known: set[str], prefix: str) -> dict[str, Any]:
    """The children of ``el`` not in ``known`` by ``prefix + tag`` (repeated: a list)."""
    groups: dict[str, list[Any]] = {}
    for child in el:
        if child.tag not in known:
            groups.setdefault(prefix + child.tag, []).append(_element_value(child))
    return {k: v[0] if len(v) == 1 else v for k, v in groups.items()}


def _put_value(parent: ET.Element, tag: str, value: Any) -> None:
    """Write what :func:`_element_value` read (a list: the tag repeated)."""
    if isinstance(value, list):
        for v in value:
            _put_value(parent, tag, v)
    elif isinstance(value, dict):
        el = ET.SubElement(parent, tag)
        for k, v in value.items():
            _put_value(el, str(k), v)
    else:
        _sub(parent, tag, "" if value is None else str(value))


def _voc_keys(extra: dict[str, Any], carried: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if k.startswith("voc_") and k not in carried}


def detect(path: str) -> bool:
    """A folder with ``Annotations/*.xml`` or ``*.xml`` files, or an XML file whose
    root is ``<annotation>``."""
    return sniff.format_of(path) == NAME


# -- reading -------------------------------------------------------------------------------


def _text(parent: XmlNode, tag: str) -> str | None:
    el = parent.find(tag)
    return el.text.strip() if el is not None else None


def _place(where: str, node: XmlNode) -> str:
    """``annotation.object[0].bndbox (line 12)``: the path, and the line it starts on."""
    return f"{where} (line {node.line})"


def _number(parent: XmlNode, tag: str, file: str, where: str, *,
            required: bool = True) -> float | None:
    text = _text(parent, tag)
    el = parent.find(tag)
    place = _place(f"{where}.{tag}", el if el is not None else parent)
    if text is None or text == "":
        if required:
            raise InputError(file, place, f"missing <{tag}>")
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(file, place,
                         f"expected a number, found {text!r}") from None


def _attributes(obj: XmlNode) -> dict[str, Any] | None:
    attrs = obj.find("attributes")
    if attrs is None:
        return None
    out: dict[str, Any] = {}
    for a in attrs.findall("attribute"):
        name = _text(a, "name")
        if name:
            value = _text(a, "value")
            out[name] = (True if value == "true" else False if value == "false" else value)
    return out


def _read_one(file: Path, rel_dir: str, categories: CategoryMap, image_id: int,
              ann_id: int, images_dir: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    name = str(file)
    root = parse_xml(file.read_bytes(), name)
    if root.tag != "annotation":
        raise InputError(name, _place(root.tag, root), "expected a Pascal VOC <annotation> "
                         f"document, found <{root.tag}>")
    filename = _text(root, "filename")
    if not filename:
        raise InputError(name, _place("annotation.filename", root), "missing <filename>")
    file_name = posixpath.join(rel_dir, filename) if rel_dir else filename
    image: dict[str, Any] = {"id": image_id, "file_name": file_name}
    size = root.find("size")
    width = height = None
    if size is not None:
        width = _number(size, "width", name, "annotation.size", required=False)
        height = _number(size, "height", name, "annotation.size", required=False)
        depth = _number(size, "depth", name, "annotation.size", required=False)
        if depth is not None:
            image["depth"] = int(depth)
    if not width or not height:
        if images_dir is None:
            where = _place("annotation.size", size if size is not None else root)
            raise InputError(name, where, "missing image <width>/<height>; give the image "
                             "folder (-i/--images) to read the sizes from the images")
        from ..yolo import image_size

        width, height = image_size(os.path.join(images_dir, file_name))
    image["width"], image["height"] = int(width), int(height)
    image.update(_children(root, _IMAGE_TAGS, "voc_"))
    segmented = _text(root, "segmented")
    if segmented not in (None, "", "0"):
        image["segmented"] = int(segmented) if segmented.isdigit() else segmented
    annotations: list[dict[str, Any]] = []
    for k, obj in enumerate(root.findall("object")):
        where = f"annotation.object[{k}]"
        label = _text(obj, "name")
        if not label:
            raise InputError(name, _place(f"{where}.name", obj), "missing the class <name>")
        box = obj.find("bndbox")
        if box is None:
            raise InputError(name, _place(f"{where}.bndbox", obj), "missing <bndbox>")
        x1, y1, x2, y2 = (_number(box, t, name, f"{where}.bndbox")
                          for t in ("xmin", "ymin", "xmax", "ymax"))
        assert x1 is not None and y1 is not None and x2 is not None and y2 is not None
        if x2 < x1 - 1 or y2 < y1 - 1:
            raise InputError(name, _place(f"{where}.bndbox", box), f"xmax/ymax before xmin/ymin: "
                             f"({x1:g}, {y1:g}, {x2:g}, {y2:g})")
        x, y = x1 - 1, y1 - 1
        if x >= image["width"] or y >= image["height"] or x2 <= 0 or y2 <= 0:
            raise InputError(name, _place(f"{where}.bndbox", box), f"box ({x1:g}, {y1:g}, "
                             f"{x2:g}, {y2:g}) outside the {image['width']}x"
                             f"{image['height']} image")
        ann: dict[str, Any] = {
            "id": ann_id + len(annotations), "image_id": image_id,
            "category_id": categories.id(label), "bbox": [x, y, x2 - x, y2 - y],
            "iscrowd": 0,
        }
        for tag, key in _FLAGS:
            value = _text(obj, tag)
            if value not in (None, "", "0"):
                ann[key] = int(value) if value.isdigit() else value
        pose = _text(obj, "pose")
        if pose and pose != DEFAULT_POSE:
            ann["voc_pose"] = pose
        attrs = _attributes(obj)
        if attrs:
            ann["attributes"] = attrs
        ann.update(_children(obj, _OBJECT_TAGS, "voc_"))
        annotations.append(ann)
    return image, annotations


def _listed_first(folder: Path, base: Path, xmls: list[Path]) -> list[Path]:
    """The XML files in the order ``ImageSets/Main/*.txt`` lists their stems (subset
    lists, not the per-class ``<class>_<subset>.txt`` ones), then the rest."""
    lists = folder / "ImageSets" / "Main"
    if not lists.is_dir():
        return xmls
    by_stem = {x.relative_to(base).with_suffix("").as_posix(): x for x in xmls}
    ordered: dict[Path, None] = {}
    for txt in sorted(lists.glob("*.txt")):
        if "_" in txt.stem:
            continue
        for line in txt.read_text("utf-8", errors="replace").splitlines():
            found = by_stem.get(line.strip())
            if found is not None:
                ordered[found] = None
    return [*ordered, *(x for x in xmls if x not in ordered)]


def read(path: str, *, images: str | None = None) -> tuple[Dataset, Losses]:
    """Read a Pascal VOC folder (or one XML file) as a dataset; see the module docstring
    for the conventions. Nothing is lost reading VOC into COCO (the losses are empty)."""
    p = Path(path)
    if p.is_file():
        folder, xmls = p.parent, [p]
        base = p.parent
    elif p.is_dir():
        folder = p
        base = p / "Annotations" if (p / "Annotations").is_dir() else p
        xmls = _listed_first(p, base, relative_files(base, ".xml"))
        if not xmls:
            raise InputError(path, None, "no Pascal VOC XML files (Annotations/*.xml) here")
    else:
        raise InputError(path, None, "no such file or folder")
    categories = CategoryMap(label_map := read_label_map(folder))
    out_images: list[dict[str, Any]] = []
    out_anns: list[dict[str, Any]] = []
    for xml in xmls:
        rel_dir = xml.parent.relative_to(base).as_posix() if xml.parent != base else ""
        image, anns = _read_one(xml, rel_dir, categories, len(out_images) + 1,
                                len(out_anns) + 1, images)
        out_images.append(image)
        out_anns.extend(anns)
    return dataset_from_records(out_images, out_anns, categories, label_map, path), Losses()


# -- writing -------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = text
    return el


def _xml(image: dict[str, Any], objects: list[tuple[str, np.ndarray, dict[str, Any]]]) -> bytes:
    root = ET.Element("annotation")
    other = _voc_keys(image, ())
    if "voc_folder" in other:
        _put_value(root, "folder", other.pop("voc_folder"))
    _sub(root, "filename", posixpath.basename(image["file_name"]))
    size = ET.SubElement(root, "size")
    _sub(size, "width", str(image["width"]))
    _sub(size, "height", str(image["height"]))
    if "depth" in image:
        _sub(size, "depth", str(image["depth"]))
    for key, value in other.items():
        _put_value(root, key[len("voc_"):], value)
    _sub(root, "segmented", str(image.get("segmented", 0)))
    for label, box, ann in objects:
        obj = ET.SubElement(root, "object")
        _sub(obj, "name", label)
        _sub(obj, "pose", str(ann.get("voc_pose", DEFAULT_POSE)))
        for tag, key in _FLAGS:
            _sub(obj, tag, str(ann.get(key, 0)))
        bnd = ET.SubElement(obj, "bndbox")
        x, y, w, h = (float(v) for v in box)
        for tag, v in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
            _sub(bnd, tag, number_text(v))
        attrs = ann.get("attributes")
        if isinstance(attrs, dict) and attrs:
            el = ET.SubElement(obj, "attributes")
            for k, v in attrs.items():
                a = ET.SubElement(el, "attribute")
                _sub(a, "name", str(k))
                _sub(a, "value", str(v).lower() if isinstance(v, bool) else str(v))
        for key, value in _voc_keys(ann, _CARRIED).items():
            _put_value(obj, key[len("voc_"):], value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def write(ds: Dataset, path: str, *, images: str | None = None,
          strict: bool = False) -> Losses:
    """Write ``ds`` as a Pascal VOC folder at ``path`` (staged: all or nothing), after the
    export contract's checks; returns what VOC could not carry."""
    rows = export_rows(ds, path)
    anns = ds.annotations
    kinds = anns.segmentation_kind[rows.ann_rows]
    losses = Losses()
    losses.add("polygon-as-box", int(np.count_nonzero(kinds == 1)), "polygons written as boxes")
    losses.add("rle-as-box", int(np.count_nonzero(kinds >= 2)), "RLE masks written as boxes")
    img_keys = {k for e in ds.images.extra[rows.image_rows].tolist() for k in (e or ())
                if k.startswith("voc_")}
    ann_keys = {k for e in anns.extra[rows.ann_rows].tolist() for k in (e or ())
                if k.startswith("voc_")}
    losses.extend(common_losses(rows, image_keys={"depth", "segmented"} | img_keys,
                                annotation_keys=set(_CARRIED) | ann_keys))
    refuse_lossy(losses, path, strict)
    names = {int(c["id"]): str(c["name"]) for c in ds.categories}
    stems: list[str] = []
    with output_folder(path, ds) as out:
        for i, group in rows.by_image():
            image = ds.images.record(i)
            objects = []
            for r, box in group:
                ann = plain(anns.extra[r]) or {}
                objects.append((names[int(anns.category_id[r])], box,
                                {k: v for k, v in ann.items()
                                 if k in _CARRIED or k.startswith("voc_")}))
            stem = rel_stem(image["file_name"], "")
            stems.append(stem)
            out.write(f"Annotations/{stem}.xml", _xml(image, objects))
        out.write("ImageSets/Main/default.txt", "".join(s + "\n" for s in stems).encode())
        labelmap = "# label:color_rgb:parts:actions\n" + "".join(
            f"{c['name']}:::\n" for c in ds.categories)
        out.write("labelmap.txt", labelmap.encode("utf-8"))
    return losses

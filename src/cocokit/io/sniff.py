"""What a file that is not a COCO dataset looks like, and what to run instead.

The readers call :func:`describe` when the top level of a document is not a COCO
dataset (an array, or an object with none of ``images``, ``annotations`` and
``categories``), and for folders and XML files, so that a LabelMe file is refused with
"this is LabelMe" instead of being read as an empty dataset. ``describe`` answers one
sentence naming the format and the suggestion, or None when it has nothing to say::

    >>> describe([{"image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 1], "score": 0.9}])
    'a COCO results list (detections with image_id, category_id, bbox and score), not a ...'

An empty object ``{}`` is an empty COCO dataset, as before; an object with at least one
of the three COCO keys is a (possibly partial) COCO dataset and is never described.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "COCO_KEYS",
    "DOTA_HEADER",
    "describe",
    "describe_bytes",
    "describe_document",
    "describe_head",
    "describe_markup",
    "describe_path",
    "format_of",
    "is_coco_top",
    "is_dota_row",
    "is_results_file",
]

COCO_KEYS = ("images", "annotations", "categories")

RESULTS = (
    "a COCO results list (detections with image_id, category_id, {geometry} and score), "
    "not a COCO dataset; evaluate it against its ground truth with `cocokit eval GT "
    "RESULTS` (COCOeval), or give cocokit the dataset file it was predicted on"
)
LABELME = (
    'a LabelMe annotation file (top-level "shapes" and "imagePath"), not a COCO dataset; '
    "convert it first: `cocokit convert <file or folder> --to coco -o dataset.json`"
)
LABEL_STUDIO = (
    'a Label Studio export (a list of tasks with "data" and "annotations"), not a COCO '
    "dataset; convert it first: `cocokit convert <file> --to coco -o dataset.json`"
)
YOLO = (
    "a YOLO dataset folder ({evidence}), not a COCO file; convert it with "
    "`cocokit import {path} --format yolo -o {name}.json`"
)
VOC = (
    "Pascal VOC XML ({evidence}), not a COCO file; convert it first: "
    "`cocokit convert {path} --to coco -o dataset.json`"
)
CVAT = (
    "CVAT for images XML ({evidence}), not a COCO file; convert it first: "
    "`cocokit convert {path} --to coco -o dataset.json`"
)
DOTA = (
    "a DOTA dataset folder ({evidence}), not a COCO file; convert it first: "
    "`cocokit convert {path} --to coco -o dataset.json`"
)
OTHER_OBJECT = (
    'not a COCO dataset: a JSON object with none of "images", "annotations" and '
    '"categories" (its keys: {keys})'
)
OTHER_ARRAY = (
    'not a COCO dataset: the top level is an array{items}; a COCO dataset is an object '
    'with "images", "annotations" and "categories" arrays'
)
HEAD_BYTES = 1 << 16
NOT_JSON_FOLDER = "is a folder, expected a COCO JSON file"


def is_coco_top(keys: Sequence[str] | Mapping[str, Any]) -> bool:
    """An object read as COCO: empty, or with at least one of the three COCO keys."""
    keys = list(keys)
    return not keys or any(k in keys for k in COCO_KEYS)


def _keys(item: Any) -> set[str] | None:
    """The keys of one record (a mapping or undecoded msgspec.Raw), None if not an object."""
    if isinstance(item, msgspec.Raw):
        try:
            item = msgspec.json.decode(item, type=dict[str, msgspec.Raw])
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
    return set(item) if isinstance(item, Mapping) else None


def _short_keys(keys: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(f'"{k}"' for k in keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def is_results_record(keys: set[str]) -> bool:
    """Whether a record with these keys is a detection of a COCO results list."""
    return {"image_id", "category_id", "score"} <= keys


def describe_document(top: Any) -> str | None:
    """Describe a parsed top level (an object's keys matter, or an array's first item);
    None when it is a COCO dataset."""
    if isinstance(top, Mapping):
        keys = list(top)
        if is_coco_top(keys):
            return None
        if "shapes" in keys and ("imagePath" in keys or "imageData" in keys):
            return LABELME
        return OTHER_OBJECT.format(keys=_short_keys(keys))
    if isinstance(top, Sequence) and not isinstance(top, (str, bytes, bytearray)):
        first = _keys(top[0]) if len(top) else None
        if first is not None:
            if is_results_record(first):
                geometry = "segmentation" if "segmentation" in first and "bbox" not in first \
                    else "bbox"
                return RESULTS.format(geometry=geometry)
            if "data" in first and ({"annotations", "predictions"} & first):
                return LABEL_STUDIO
            if "shapes" in first and "imagePath" in first:
                return LABELME
        items = f" of {len(top)} item(s)" if len(top) else " (empty)"
        return OTHER_ARRAY.format(items=items)
    return None


def _voc_folder(file: str | os.PathLike[str] | None) -> str:
    return str(Path(file).parent) if file is not None else "<folder>"


def _head(data: bytes | bytearray | memoryview) -> bytes:
    return bytes(memoryview(data)[:HEAD_BYTES]).lstrip(b"\xef\xbb\xbf \t\r\n")


def describe_markup(
    data: bytes | bytearray | memoryview, file: str | os.PathLike[str] | None = None
) -> str | None:
    """Describe XML (Pascal VOC) from the first bytes; None for anything else."""
    head = _head(data)
    if not head.startswith(b"<"):
        return None
    if b"<annotations" in head:
        return CVAT.format(evidence="an <annotations> document",
                           path=file if file is not None else "<file>")
    if b"<annotation" in head:
        return VOC.format(evidence="an <annotation> document", path=_voc_folder(file))
    return "an XML document, not a COCO JSON file"


def describe_head(
    data: bytes | bytearray | memoryview, file: str | os.PathLike[str] | None = None
) -> str | None:
    """Describe a document from its first bytes alone: XML (Pascal VOC), or an array
    whose first record fits in the head. For readers that must not parse a whole file."""
    if (said := describe_markup(data, file)) is not None:
        return said
    head = _head(data)
    if head.startswith(b"["):
        first = _first_record(head)
        return OTHER_ARRAY.format(items="") if first is None else describe_document([first])
    return None


def _first_record(head: bytes) -> Any:
    """The first record of an array from the document's first bytes; None when there
    is none, or it is longer than the head."""
    text = head.decode("utf-8", errors="replace")
    start = text.find("{")
    if start < 0:
        return None
    try:
        return json.JSONDecoder().raw_decode(text, start)[0]
    except ValueError:
        return None


def describe_bytes(
    data: bytes | bytearray | memoryview, file: str | os.PathLike[str] | None = None
) -> str | None:
    """Describe JSON (or XML) bytes that are not a COCO dataset; None for a COCO dataset
    or when they cannot be parsed (the reader then reports the syntax error)."""
    if (said := describe_markup(data, file)) is not None:
        return said
    try:
        top = msgspec.json.decode(data, type=dict[str, msgspec.Raw] | list[msgspec.Raw])
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return describe_document(top)


def describe_path(path: str | os.PathLike[str]) -> str | None:
    """Describe a local folder (YOLO, VOC) or an XML file; None when there is nothing to
    say (JSON files are described from their content by the readers)."""
    p = Path(path)
    if p.is_dir():
        found = _folder_format(p)
        if found is None:
            return NOT_JSON_FOLDER
        fmt, evidence = found
        if fmt == "yolo":
            return YOLO.format(evidence=evidence, path=p, name=p.name or "dataset")
        said = {"cvat": CVAT, "dota": DOTA, "voc": VOC}.get(fmt)
        return said.format(evidence=evidence, path=p) if said is not None else NOT_JSON_FOLDER
    if p.suffix.lower() == ".xml" and p.is_file():
        with p.open("rb") as f:
            return describe_head(f.read(HEAD_BYTES), p)
    return None


def describe(source: str | os.PathLike[str] | bytes | bytearray | memoryview | Any) -> str | None:
    """What a non-COCO input looks like and what to run instead, or None.

    ``source`` is a path (a folder or an XML file is described by its layout; a JSON
    file by its content), JSON bytes, or an already parsed top level.
    """
    if isinstance(source, (str, os.PathLike)):
        said = describe_path(source)
        if said is not None or not Path(source).is_file():
            return said
        return describe_bytes(Path(source).read_bytes(), source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return describe_bytes(source)
    return describe_document(source)


def is_results_file(path: str | os.PathLike[str]) -> bool:
    """Whether a file (local or a URL, gzip or not) is a COCO results list: its first
    record, within its first bytes, has image_id, category_id and score. Commands that
    take a dataset or a results file (info, stats, validate) use it to choose."""
    from .files import read_head

    head = _head(read_head(path, HEAD_BYTES))
    first = _first_record(head) if head.startswith(b"[") else None
    return isinstance(first, dict) and is_results_record(set(first))


# -- which format: the one sniffer of cocokit.io.formats -----------------------------------

LABEL_MAP = "label_map.json"  # cocokit's label map beside converted data, never an input


def _json_head(file: Path) -> bytes:
    with file.open("rb") as f:
        return _head(f.read(HEAD_BYTES))


#: A header line of a DOTA label file (``imagesource:GoogleEarth``, ``gsd:0.146``).
DOTA_HEADER = re.compile(r"^[A-Za-z][A-Za-z _-]*:")


def is_dota_row(line: str) -> bool:
    """Whether ``line`` is a DOTA object row: 8 numbers, a category name (not a number:
    a YOLO OBB row is 9 numbers) and maybe the difficult flag."""
    parts = line.split()
    if len(parts) not in (9, 10):
        return False
    try:
        [float(v) for v in parts[:8]]
    except ValueError:
        return False
    try:
        float(parts[8])
    except ValueError:
        return True
    return False


def _dota_labels(folder: Path) -> bool:
    """Whether the first object row of the first label files (up to 5) is DOTA's."""
    for n, txt in enumerate(folder.rglob("*.txt")):
        if n >= 5:
            break
        try:
            with open(txt, encoding="utf-8") as f:
                for line in f:
                    text = line.strip()
                    if text and not DOTA_HEADER.match(text):
                        return is_dota_row(text)
        except (OSError, UnicodeDecodeError):
            return False
    return False


def _head_format(head: bytes) -> str | None:
    """coco, labelme, labelstudio, cvat or voc from the first bytes of a file; None if
    unsure."""
    if head.startswith(b"<"):
        if b"<annotations" in head:
            return "cvat"
        return "voc" if b"<annotation" in head else None
    if head.startswith(b"["):
        return "labelstudio" if b'"data"' in head and (
            b'"annotations"' in head or b'"predictions"' in head) else None
    if head.startswith(b"{"):
        if b'"shapes"' in head and not any(b'"%s"' % k.encode() in head for k in COCO_KEYS):
            return "labelme"
        return "coco"
    return None


_DOTA_EVIDENCE = "labelTxt/ or label rows of 8 numbers and a name"


def _folder_format(p: Path) -> tuple[str, str] | None:
    """The format of a folder and what shows it (for :func:`describe_path`), or None:
    the folder rules of :func:`format_of`, in their order."""
    if (p / "data.yaml").is_file():
        return "yolo", "data.yaml"
    if (p / "labels").is_dir():
        return "yolo", "a labels/ folder"
    if (p / "tasks.json").is_file() and _head_format(_json_head(p / "tasks.json")) \
            == "labelstudio":
        return "labelstudio", "tasks.json"
    xmls = sorted(p.glob("*.xml"))
    cvat = p / "annotations.xml" if (p / "annotations.xml").is_file() else (
        xmls[0] if len(xmls) == 1 else None)
    if cvat is not None and _head_format(_json_head(cvat)) == "cvat":
        return "cvat", "an XML file whose root is <annotations>"
    if (p / "labelTxt").is_dir():
        return "dota", _DOTA_EVIDENCE
    ann = p / "Annotations"
    if ann.is_dir() and any(ann.rglob("*.xml")):
        return "voc", "Annotations/*.xml"
    if xmls:
        return "voc", "*.xml files"
    jsons = [f for f in sorted(p.glob("*.json")) if f.name != LABEL_MAP][:1] or [
        f for f in sorted(p.rglob("*.json")) if f.name != LABEL_MAP][:1]
    if jsons and _head_format(_json_head(jsons[0])) == "labelme":
        return "labelme", "LabelMe JSON files"
    return ("dota", _DOTA_EVIDENCE) if _dota_labels(p) else None


def format_of(path: str | os.PathLike[str]) -> str | None:
    """The dataset format of a file or folder, from its layout and first bytes: ``coco``,
    ``yolo``, ``cvat``, ``dota``, ``voc``, ``labelme``, ``labelstudio``, or None. A URL, a
    ``.gz`` file and a JSON object that is no other format are ``coco``. A folder is
    CVAT when it holds ``annotations.xml`` (or one ``*.xml``) whose root is
    ``<annotations>``, DOTA when it holds ``labelTxt/`` or label files of DOTA rows."""
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        return "coco" if text.lower().endswith((".json", ".json.gz")) else None
    p = Path(text[len("file://"):] if text.startswith("file://") else text)
    if p.is_dir():
        found = _folder_format(p)
        return found[0] if found is not None else None
    if not p.is_file():
        return None
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yolo"
    if suffix == ".gz":
        return "coco" if p.name.lower().endswith(".json.gz") else None
    return _head_format(_json_head(p))

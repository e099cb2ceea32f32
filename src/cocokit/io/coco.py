"""Read and write COCO JSON.

Reading decodes each top-level array once with msgspec into typed records: the fields
the model knows become numpy columns, and every other key is kept as its raw JSON
text (``msgspec.Raw``), which is written back byte for byte. Segmentations and
keypoints stay as raw JSON too, so a file round-trips without parsing a single
polygon coordinate.

Writing follows the export contract: ids ``auto`` or ``keep``, categories passed
through, negatives kept or dropped, numpy values encoded as plain JSON numbers,
referential integrity checked before a byte is written, and an atomic rename at the
end so a failure never leaves a partial file or damages an existing one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import numpy as np
from msgspec import UNSET, Raw, UnsetType

from ..dataset import Annotations, Categories, Dataset, Images, plain
from ..errors import IntegrityError, InputError, JSONSyntaxError, OptionError
from ..geometry import segmentation_areas, segmentation_bboxes

__all__ = [
    "ExportSummary",
    "IdPolicy",
    "load",
    "read_coco",
    "tables_from_records",
    "to_dict",
    "to_json",
    "write_coco",
    "atomic_write",
]

IdPolicy = Literal["auto", "keep"]
T = TypeVar("T")
Progress = Callable[[int, int], None]

_CHUNK = 50_000
_MAX_EXTRA_KEYS = 256
_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`$")
_AT = re.compile(r" - at `\$(.*)`$")
_BYTE = re.compile(r"\(byte (\d+)\)")

# (json name, type, required) of the fields the model knows
_IMAGE_FIELDS: list[tuple[str, Any, bool]] = [
    ("id", int, True),
    ("file_name", str, True),
    ("width", int, True),
    ("height", int, True),
]
_ANN_FIELDS: list[tuple[str, Any, bool]] = [
    ("id", int, True),
    ("image_id", int, True),
    ("category_id", int, True),
    ("segmentation", Raw, False),
    ("area", float, False),
    ("bbox", list[float], False),
    ("iscrowd", int, False),
    ("keypoints", Raw, False),
    ("num_keypoints", int, False),
]


def _struct(name: str, known: Sequence[tuple[str, Any, bool]], extras: Sequence[str],
            forbid: bool) -> type:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for i, (key, typ, required) in enumerate(known):
        py = f"k{i}"
        rename[py] = key
        fields.append((py, typ) if required else (py, typ | UnsetType, UNSET))
    for j, key in enumerate(extras):
        py = f"x{j}"
        rename[py] = key
        fields.append((py, Raw | UnsetType, UNSET))
    return msgspec.defstruct(name, fields, rename=rename, forbid_unknown_fields=forbid)


def _line_col(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    head = bytes(data[:offset])
    line = head.count(b"\n") + 1
    col = offset - (head.rfind(b"\n") + 1) + 1
    return line, col


def _decode_error(e: msgspec.MSGSpecError, data: bytes | memoryview, file: str | None,
                  section: str, base: int = 0) -> InputError:
    msg = str(e)
    if isinstance(e, msgspec.DecodeError) and not isinstance(e, msgspec.ValidationError):
        m = _BYTE.search(msg)
        offset = base + int(m.group(1)) if m else 0
        line, col = _line_col(data, offset)
        text = _BYTE.sub("", msg).replace("JSON is malformed: ", "").strip()
        return JSONSyntaxError(file, line, col, text)
    m = _AT.search(msg)
    where = section + (m.group(1) if m else "")
    text = _AT.sub("", msg)
    text = text.replace("Object missing required field", "missing required key")
    return InputError(file, where, text)


def _decode_section(raw: Raw, known: Sequence[tuple[str, Any, bool]], section: str,
                    file: str | None, whole: bytes,
                    build: Callable[[list[Any], list[str], int], T]) -> list[T]:
    """Decode an array of records chunk by chunk into tables made by ``build``.

    Each record is decoded on its own (from a Raw view of the file, so nothing is
    copied) with a struct that forbids unknown keys; a key the model does not know is
    added to the struct as a raw passthrough field and that record decoded again.
    Records become columns a chunk at a time, so only one chunk of Python objects is
    alive at once.
    """
    try:
        items = msgspec.json.decode(raw, type=list[Raw])
    except msgspec.ValidationError as e:
        raise _decode_error(e, whole, file, section) from None
    extras: list[str] = []
    dec = msgspec.json.Decoder(_struct(section, known, extras, forbid=True))
    tables: list[T] = []
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        try:
            recs = [dec.decode(r) for r in chunk]
        except msgspec.ValidationError:
            recs = []
            for i, r in enumerate(chunk, start):
                while True:
                    try:
                        recs.append(dec.decode(r))
                        break
                    except msgspec.ValidationError as e:
                        m = _UNKNOWN.match(str(e))
                        if m is None:
                            raise _decode_error(e, whole, file, f"{section}[{i}]") from None
                        if len(extras) >= _MAX_EXTRA_KEYS:
                            raise InputError(file, f"{section}[{i}]", "more than "
                                             f"{_MAX_EXTRA_KEYS} distinct unknown keys") from None
                        extras.append(m.group(1))
                        dec = msgspec.json.Decoder(_struct(section, known, extras, forbid=True))
        tables.append(build(recs, extras, start))
    return tables


def _extra_column(recs: list[Any], extras: list[str]) -> np.ndarray:
    col = np.empty(len(recs), dtype=object)
    for j, key in enumerate(extras):
        py = f"x{j}"
        values = [getattr(r, py, UNSET) for r in recs]
        for i in [i for i, v in enumerate(values) if v is not UNSET]:
            if col[i] is None:
                col[i] = {}
            col[i][key] = values[i]
    return col


def _images_table(recs: list[Any], extras: list[str], start: int = 0) -> Images:
    return Images(
        id=np.array([r.k0 for r in recs], np.int64),
        file_name=np.array([r.k1 for r in recs] + [None], dtype=object)[:-1],
        width=np.array([r.k2 for r in recs], np.int64),
        height=np.array([r.k3 for r in recs], np.int64),
        extra=_extra_column(recs, extras),
    )


_NAN4 = [float("nan")] * 4


def _annotations_table(recs: list[Any], extras: list[str], start: int = 0,
                       file: str | None = None) -> Annotations:
    n = len(recs)
    try:
        bbox = np.array([_NAN4 if (b := r.k5) is UNSET else b for r in recs], np.float64)
    except ValueError:
        bbox = np.zeros(0)
    if bbox.shape != (n, 4):
        for i, r in enumerate(recs):
            if r.k5 is not UNSET and len(r.k5) != 4:
                raise InputError(file, f"annotations[{start + i}].bbox",
                                 f"expected 4 numbers [x, y, width, height], got {len(r.k5)}")
    seg = np.empty(n, dtype=object)
    seg[:] = [None if (s := r.k3) is UNSET else s for r in recs]
    kps = np.empty(n, dtype=object)
    kps[:] = [None if (k := r.k7) is UNSET else k for r in recs]
    nan = float("nan")
    return Annotations(
        id=np.array([r.k0 for r in recs], np.int64),
        image_id=np.array([r.k1 for r in recs], np.int64),
        category_id=np.array([r.k2 for r in recs], np.int64),
        bbox=bbox.reshape(n, 4),
        area=np.array([nan if (a := r.k4) is UNSET else a for r in recs], np.float64),
        iscrowd=np.array([-1 if (c := r.k6) is UNSET else c for r in recs], np.int8),
        segmentation=seg,
        keypoints=kps,
        num_keypoints=np.array([-1 if (k := r.k8) is UNSET else k for r in recs], np.int64),
        extra=_extra_column(recs, extras),
    )


def read_coco(source: str | os.PathLike[str] | bytes | bytearray | memoryview | Mapping[str, Any],
              *, name: str | None = None) -> Dataset:
    """Read a COCO document from a path, JSON bytes or an already parsed dict.

    Raises :class:`~cocokit.errors.InputError` (with the file and JSON path) when the
    input is not a readable COCO document, and
    :class:`~cocokit.errors.JSONSyntaxError` (line and column) when it is not JSON.
    """
    file: str | None = name
    if isinstance(source, (str, os.PathLike)):
        file = name or os.fspath(source)
        try:
            data: bytes = Path(source).read_bytes()
        except FileNotFoundError:
            raise InputError(file, None, "no such file") from None
        except IsADirectoryError:
            raise InputError(file, None, "is a directory, expected a COCO JSON file") from None
        except OSError as e:
            raise InputError(file, None, f"cannot read: {e.strerror or e}") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, Mapping):
        data = msgspec.json.encode(source, enc_hook=_enc_hook)
    else:
        raise TypeError(f"cannot load a dataset from {type(source).__name__}")
    return _parse(data, file)


load = read_coco


def _parse(data: bytes, file: str | None) -> Dataset:
    try:
        top = msgspec.json.decode(data, type=dict[str, Raw])
    except msgspec.ValidationError as e:
        raise InputError(file, None, f"expected a JSON object at the top level ({e})") from None
    except msgspec.DecodeError as e:
        raise _decode_error(e, data, file, "") from None
    for key in ("images", "annotations", "categories"):
        raw = top.get(key)
        if raw is not None and bytes(memoryview(raw)[:1]) not in (b"[",):
            # whitespace before the value is not kept in Raw, so the first byte decides
            raise InputError(file, key, f"expected an array, got {bytes(memoryview(raw)[:20])!r}")
    with _gc_paused():
        # the (small) images array is copied so its extra keys do not pin the whole file
        images = Images.concat(_decode_section(
            Raw(bytes(top.get("images", Raw(b"[]")))), _IMAGE_FIELDS, "images", file, data,
            _images_table))
        annotations = Annotations.concat(_decode_section(
            top.get("annotations", Raw(b"[]")), _ANN_FIELDS, "annotations", file, data,
            lambda recs, extras, start: _annotations_table(recs, extras, start, file)))
    try:
        cats = msgspec.json.decode(top.get("categories", Raw(b"[]")), type=list[dict[str, Any]])
    except msgspec.ValidationError as e:
        raise _decode_error(e, data, file, "categories") from None
    for i, c in enumerate(cats):
        for key, typ in (("id", int), ("name", str)):
            if key not in c:
                raise InputError(file, f"categories[{i}]", f"missing required key `{key}`")
            if not isinstance(c[key], typ) or isinstance(c[key], bool):
                raise InputError(file, f"categories[{i}].{key}",
                                 f"expected {typ.__name__}, got {type(c[key]).__name__}")
    extra = {k: msgspec.json.decode(v) for k, v in top.items()
             if k not in ("images", "annotations", "categories")}
    return Dataset(images, annotations, Categories(cats), extra, list(top), source=file)


def tables_from_records(images: Sequence[Mapping[str, Any]],
                        annotations: Sequence[Mapping[str, Any]]) -> tuple[Images, Annotations]:
    """Images and Annotations tables from plain record dicts (as the builder makes)."""
    img_raw = msgspec.json.encode(list(images), enc_hook=_enc_hook)
    ann_raw = msgspec.json.encode(list(annotations), enc_hook=_enc_hook)
    imgs = _decode_section(Raw(img_raw), _IMAGE_FIELDS, "images", None, img_raw, _images_table)
    anns = _decode_section(Raw(ann_raw), _ANN_FIELDS, "annotations", None, ann_raw,
                           _annotations_table)
    return Images.concat(imgs), Annotations.concat(anns)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many objects are made (none are cyclic)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# -- writing ---------------------------------------------------------------------------


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot write a value of type {type(obj).__name__} as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)


@dataclasses.dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    path: str | None
    images: int
    annotations: int
    categories: int
    dropped_negative_images: int
    computed_bbox: int
    computed_area: int


@dataclasses.dataclass
class _Plan:
    image_rows: np.ndarray
    ann_rows: np.ndarray
    image_ids: np.ndarray
    ann_ids: np.ndarray
    ann_image_ids: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    dropped: int
    computed_bbox: int
    computed_area: int


def _check_policy(option: str, value: str) -> None:
    if value not in ("auto", "keep"):
        raise OptionError(option, value, "'auto' or 'keep'")


def _duplicates(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose id repeats an earlier row, and the row of that first occurrence."""
    if len(ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    dup = np.flatnonzero(s[1:] == s[:-1]) + 1
    first_pos = np.maximum.accumulate(np.where(np.r_[True, s[1:] != s[:-1]],
                                               np.arange(len(s)), 0))
    return order[dup], order[first_pos[dup]]


def plan_export(ds: Dataset, *, image_ids: IdPolicy = "auto", annotation_ids: IdPolicy = "auto",
                ignore_negative_samples: bool = False, target: str | None = None) -> _Plan:
    """Check integrity and work out ids, boxes and areas of an export (nothing is written)."""
    _check_policy("image_ids", image_ids)
    _check_policy("annotation_ids", annotation_ids)
    images, anns, cats = ds.images, ds.annotations, ds.categories
    problems: list[str] = []

    img_idx = ds.image_index
    counts = ds.annotation_counts
    if ignore_negative_samples:
        image_rows = np.flatnonzero(counts > 0)
    else:
        image_rows = np.arange(len(images))
    dropped = len(images) - len(image_rows)

    dup_rows, first_rows = _duplicates(images.id)
    if len(dup_rows):
        referenced = np.isin(images.id[dup_rows], anns.image_id)
        for r, f, ref in zip(dup_rows.tolist(), first_rows.tolist(), referenced.tolist()):
            if image_ids == "keep" or ref:
                why = "ids must be unique" if image_ids == "keep" else (
                    "annotations that reference it are ambiguous")
                problems.append(f"images[{r}].id: duplicate image id {int(images.id[r])} "
                                f"(first at images[{f}]); {why}")
    dup_rows, first_rows = _duplicates(cats.id)
    for r, f in zip(dup_rows.tolist(), first_rows.tolist()):
        problems.append(f"categories[{r}].id: duplicate category id {int(cats.id[r])} "
                        f"(first at categories[{f}])")
    dangling = np.flatnonzero(img_idx < 0)
    for r in dangling.tolist():
        problems.append(f"annotations[{r}].image_id: image id {int(anns.image_id[r])} "
                        f"names no image")
    bad_cat = np.flatnonzero(ds.category_index < 0)
    for r in bad_cat.tolist():
        problems.append(f"annotations[{r}].category_id: category id {int(anns.category_id[r])} "
                        f"is not in categories")
    if annotation_ids == "keep":
        dup_rows, first_rows = _duplicates(anns.id)
        for r, f in zip(dup_rows.tolist(), first_rows.tolist()):
            problems.append(f"annotations[{r}].id: duplicate annotation id {int(anns.id[r])} "
                            f"(first at annotations[{f}])")
    bad_box = np.flatnonzero(np.isinf(anns.bbox).any(axis=1)
                             | (np.isnan(anns.bbox).any(axis=1) & ~np.isnan(anns.bbox).all(axis=1)))
    for r in bad_box.tolist():
        problems.append(f"annotations[{r}].bbox: non-finite value in {anns.bbox[r].tolist()}")
    for r in np.flatnonzero(np.isinf(anns.area)).tolist():
        problems.append(f"annotations[{r}].area: non-finite value {anns.area[r]}")
    if problems:
        raise IntegrityError(problems, target)

    # annotations in table order, those of exported images
    keep_img = np.zeros(len(images), bool)
    keep_img[image_rows] = True
    ann_rows = np.flatnonzero(keep_img[img_idx])

    if image_ids == "auto":
        new_image_id = np.zeros(len(images), np.int64)
        new_image_id[image_rows] = np.arange(1, len(image_rows) + 1)
        out_image_ids = new_image_id[image_rows]
        ann_image_ids = new_image_id[img_idx[ann_rows]]
    else:
        out_image_ids = images.id[image_rows]
        ann_image_ids = anns.image_id[ann_rows]
    out_ann_ids = (np.arange(1, len(ann_rows) + 1, dtype=np.int64) if annotation_ids == "auto"
                   else anns.id[ann_rows])

    bbox = anns.bbox[ann_rows]
    area = anns.area[ann_rows]
    seg = anns.segmentation[ann_rows]
    heights = images.height[img_idx[ann_rows]]
    widths = images.width[img_idx[ann_rows]]
    has_seg = np.array([s is not None for s in seg], bool) if len(seg) else np.zeros(0, bool)
    need_box = np.isnan(bbox[:, 0]) & has_seg
    if need_box.any():
        bbox = bbox.copy()
        bbox[need_box] = segmentation_bboxes(seg[need_box], heights[need_box], widths[need_box])
    need_area = np.isnan(area)
    computed_area = 0
    if need_area.any():
        area = area.copy()
        seg_rows = need_area & has_seg
        if seg_rows.any():
            area[seg_rows] = segmentation_areas(seg[seg_rows], heights[seg_rows], widths[seg_rows])
        box_rows = np.isnan(area) & ~np.isnan(bbox[:, 0])
        area[box_rows] = bbox[box_rows, 2] * bbox[box_rows, 3]
        computed_area = int(np.count_nonzero(~np.isnan(area[need_area])))
    return _Plan(image_rows, ann_rows, out_image_ids, out_ann_ids, ann_image_ids, bbox, area,
                 dropped, int(need_box.sum()), computed_area)


def _out_struct(name: str, known: Sequence[str], extras: Sequence[str]) -> type:
    fields = [(f"k{i}", Any, UNSET) for i in range(len(known))]
    fields += [(f"x{j}", Any, UNSET) for j in range(len(extras))]
    rename = {f"k{i}": k for i, k in enumerate(known)}
    rename.update({f"x{j}": k for j, k in enumerate(extras)})
    return msgspec.defstruct(name, fields, rename=rename)


def _extra_keys(col: np.ndarray, reserved: Sequence[str]) -> list[str]:
    keys: dict[str, None] = {}
    for d in col:
        if d:
            keys.update(dict.fromkeys(d))
    return [k for k in keys if k not in reserved]


def _with_extras(objs: list[Any], extra: np.ndarray, extra_keys: list[str]) -> None:
    if not extra_keys:
        return
    slot = {k: f"x{j}" for j, k in enumerate(extra_keys)}
    for i in np.flatnonzero(np.array([bool(d) for d in extra], bool)).tolist():
        for k, v in extra[i].items():
            if k in slot:
                setattr(objs[i], slot[k], v)


def _none_to_unset(values: list[Any]) -> list[Any]:
    return [UNSET if v is None else v for v in values]


def _iter_images(ds: Dataset, plan: _Plan) -> Iterator[list[Any]]:
    imgs = ds.images
    extra_keys = _extra_keys(imgs.extra[plan.image_rows], ("id", "file_name", "width", "height"))
    out = _out_struct("Image", ("id", "file_name", "width", "height"), extra_keys)
    rows = plan.image_rows
    for s in range(0, len(rows), _CHUNK):
        r = rows[s : s + _CHUNK]
        objs = [out(*t) for t in zip(plan.image_ids[s : s + _CHUNK].tolist(),
                                     imgs.file_name[r].tolist(), imgs.width[r].tolist(),
                                     imgs.height[r].tolist())]
        _with_extras(objs, imgs.extra[r], extra_keys)
        yield objs


_ANN_KEYS = ("id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd",
             "keypoints", "num_keypoints")


def _iter_annotations(ds: Dataset, plan: _Plan) -> Iterator[list[Any]]:
    anns = ds.annotations
    rows = plan.ann_rows
    extra_keys = _extra_keys(anns.extra[rows], _ANN_KEYS)
    out = _out_struct("Annotation", _ANN_KEYS, extra_keys)
    for s in range(0, len(rows), _CHUNK):
        r = rows[s : s + _CHUNK]
        sl = slice(s, s + _CHUNK)
        bbox = plan.bbox[sl]
        box_list: list[Any] = bbox.tolist()
        if np.isnan(bbox[:, 0]).any():
            for i in np.flatnonzero(np.isnan(bbox[:, 0])).tolist():
                box_list[i] = UNSET
        area = plan.area[sl]
        area_list: list[Any] = area.tolist()
        if np.isnan(area).any():
            for i in np.flatnonzero(np.isnan(area)).tolist():
                area_list[i] = UNSET
        crowd = anns.iscrowd[r]
        crowd_list: list[Any] = crowd.tolist()
        if (crowd < 0).any():
            for i in np.flatnonzero(crowd < 0).tolist():
                crowd_list[i] = UNSET
        nkp = anns.num_keypoints[r]
        nkp_list: list[Any] = nkp.tolist()
        if (nkp < 0).any():
            nkp_list = [UNSET if v < 0 else v for v in nkp_list]
        objs = [out(*t) for t in zip(
            plan.ann_ids[sl].tolist(), plan.ann_image_ids[sl].tolist(),
            anns.category_id[r].tolist(), _none_to_unset(anns.segmentation[r].tolist()),
            area_list, box_list, crowd_list, _none_to_unset(anns.keypoints[r].tolist()),
            nkp_list)]
        _with_extras(objs, anns.extra[r], extra_keys)
        yield objs


def _iter_document(ds: Dataset, plan: _Plan, progress: Progress | None) -> Iterator[bytes]:
    total = len(plan.image_rows) + len(plan.ann_rows)
    done = 0
    yield b"{"
    for n, key in enumerate(ds.key_order):
        yield (b"," if n else b"") + _ENCODER.encode(key) + b":"
        if key == "images" or key == "annotations":
            chunks = _iter_images(ds, plan) if key == "images" else _iter_annotations(ds, plan)
            yield b"["
            first = True
            for objs in chunks:
                body = _ENCODER.encode(objs)
                if len(body) > 2:
                    yield (b"" if first else b",") + body[1:-1]
                    first = False
                done += len(objs)
                if progress is not None:
                    progress(done, total)
            yield b"]"
        elif key == "categories":
            yield _ENCODER.encode(list(ds.categories.records))
        else:
            yield _ENCODER.encode(ds.extra[key])
    yield b"}"


def _paused(chunks: Iterator[bytes]) -> Iterator[bytes]:
    with _gc_paused():
        yield from chunks


def atomic_write(path: str | os.PathLike[str], chunks: Iterator[bytes] | Sequence[bytes]) -> None:
    """Write chunks to a temporary file beside ``path``, then rename it over ``path``.

    A failure (including one raised by the chunk iterator) removes the temporary file
    and leaves any existing ``path`` untouched.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(str(target), None, f"output folder {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _document(ds: Dataset, image_ids: IdPolicy, annotation_ids: IdPolicy,
              ignore_negative_samples: bool, indent: int | None, progress: Progress | None,
              target: str | None) -> tuple[Iterator[bytes] | list[bytes], _Plan]:
    plan = plan_export(ds, image_ids=image_ids, annotation_ids=annotation_ids,
                       ignore_negative_samples=ignore_negative_samples, target=target)
    chunks = _paused(_iter_document(ds, plan, progress))
    if indent:
        return [msgspec.json.format(b"".join(chunks), indent=indent)], plan
    return chunks, plan


def write_coco(ds: Dataset, path: str | os.PathLike[str], *, image_ids: IdPolicy = "auto",
               annotation_ids: IdPolicy = "auto", ignore_negative_samples: bool = False,
               indent: int | None = None, progress: Progress | None = None) -> ExportSummary:
    """Write ``ds`` as COCO JSON to ``path`` under the export contract.

    ``image_ids``: ``"auto"`` numbers images 1..N in dataset order, ``"keep"`` keeps the
    ids (duplicates are refused). ``annotation_ids`` likewise (1..M in table order).
    Annotations follow their images. ``ignore_negative_samples`` drops images without
    annotations. Missing bbox and area are computed from the segmentation (area as
    pycocotools computes it). Integrity is checked first: on any problem
    :class:`~cocokit.errors.IntegrityError` is raised and nothing is written. The file
    is written to a temporary name and renamed, so writing over the input is safe.
    ``progress(done, total)`` is called as records are written.
    """
    target = os.fspath(path)
    chunks, plan = _document(ds, image_ids, annotation_ids, ignore_negative_samples, indent,
                             progress, target)
    atomic_write(path, chunks)
    return _summary(target, ds, plan)


def _summary(target: str | None, ds: Dataset, plan: _Plan) -> ExportSummary:
    return ExportSummary(target, len(plan.image_rows), len(plan.ann_rows), len(ds.categories),
                         plan.dropped, plan.computed_bbox, plan.computed_area)


def to_json(ds: Dataset, *, image_ids: IdPolicy = "auto", annotation_ids: IdPolicy = "auto",
            ignore_negative_samples: bool = False, indent: int | None = None) -> bytes:
    """The COCO document as JSON bytes, under the same contract as :func:`write_coco`."""
    chunks, _ = _document(ds, image_ids, annotation_ids, ignore_negative_samples, indent, None,
                          None)
    return b"".join(chunks)


def to_dict(ds: Dataset, *, image_ids: IdPolicy = "auto", annotation_ids: IdPolicy = "auto",
            ignore_negative_samples: bool = False) -> dict[str, Any]:
    """The COCO document as plain Python data, under the same contract as :func:`write_coco`."""
    out: dict[str, Any] = msgspec.json.decode(
        to_json(ds, image_ids=image_ids, annotation_ids=annotation_ids,
                ignore_negative_samples=ignore_negative_samples))
    return out


def raw_document(ds: Dataset) -> dict[str, Any]:
    """The dataset as a plain dict with ids as they are and no checks (for validation)."""
    doc: dict[str, Any] = {}
    for key in ds.key_order:
        if key == "images":
            doc[key] = list(ds.images)
        elif key == "annotations":
            doc[key] = list(ds.annotations)
        elif key == "categories":
            doc[key] = list(ds.categories)
        else:
            doc[key] = plain(ds.extra[key])
    return doc

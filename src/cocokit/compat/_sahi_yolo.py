"""SAHI's YOLO export (``Coco.export_as_yolo``, ``export_coco_as_yolo``) with correct classes.

The layout is SAHI's, so scripts that expect it keep working::

    OUTPUT_DIR/
      data.yml            names (a list: class index -> name), nc, train, val
      train/NAME.jpg      the image (a symlink, or a copy with disable_symlink)
      train/NAME.txt      its labels: "cls cx cy w h" per object, normalized
      val/...

Ultralytics reads this layout (a label file beside its image when the path has no
``images/`` folder). What differs from SAHI (``docs/sahi-migration.md``): the class
index is the category's position in the category list, so it matches ``names`` (SAHI
writes the COCO category id); crowd annotations are left out (they are not objects);
boxes are clipped to the image and boxes with no area left out (Ultralytics drops a
whole image for a coordinate beyond the border); a missing image file is an error
before anything is written (SAHI leaves a broken symlink); an image is not skipped
for one degenerate annotation; a second export into the same folder replaces the
files instead of adding ``_2`` copies.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset import lookup
from ..errors import InputError, IntegrityError
from ..geometry import segmentation_bboxes
from ..io.atomic import atomic_write
from ._sahi_base import SahiValueError

if TYPE_CHECKING:  # the Coco of _sahi_coco, which imports this module
    from ._sahi_coco import Coco

__all__ = ["export_coco_as_yolo", "export_coco_object_as_yolo"]

log = logging.getLogger("cocokit.compat.sahi")


@dataclass
class _Classes:
    """Class index of each category: its position in the (train) category list."""

    names: list[str]
    ids: np.ndarray       # category ids, in index order
    index_of_id: dict[int, int]


def _classes(coco: Coco) -> _Classes:
    mapping = coco.category_mapping
    return _Classes([str(n) for n in mapping.values()], np.array(list(mapping), np.int64),
                    {cid: i for i, cid in enumerate(mapping)})


def _class_index(coco: Coco, classes: _Classes, category_ids: np.ndarray) -> np.ndarray:
    """The class index of each category id of ``coco``, matched to ``classes`` by name."""
    own = coco.category_mapping
    keys = np.array(list(own), np.int64)
    to_class = np.full(len(keys) + 1, -1, np.int64)
    by_name = {n: i for i, n in enumerate(classes.names)}
    for k, (cid, name) in enumerate(own.items()):
        if str(name) not in by_name:
            raise InputError(None, "categories", f"category {name!r} (id {cid}) is not one of the "
                             f"train categories {classes.names}; class indices would disagree")
        to_class[k] = by_name[str(name)]
    pos = lookup(keys, category_ids)
    out = to_class[np.where(pos >= 0, pos, len(keys))]
    bad = np.flatnonzero(out < 0)
    if len(bad):
        raise IntegrityError([f"annotation with category id {int(category_ids[r])}: not in "
                              "the categories" for r in bad[:20].tolist()])
    return out


@dataclass
class _Planned:
    source: str
    image: Path
    label: Path
    text: str


def _plan(coco: Coco, split_dir: Path, cls_coco: Coco, classes: _Classes,
          ignore_negative_samples: bool) -> list[_Planned]:
    """The files of one split: every check is made here, nothing is written."""
    view = coco._view()
    images, anns = view.images, view.annotations
    item = view.item_of_annotation
    cls = _class_index(cls_coco, classes, anns.category_id) if len(anns) else np.zeros(0, np.int64)
    W = images.width[item].astype(np.float64)
    H = images.height[item].astype(np.float64)
    box = anns.bbox
    need = np.isnan(box[:, 0]) & np.array([s is not None for s in anns.segmentation], bool)
    if need.any():
        box = box.copy()
        box[need] = segmentation_bboxes(anns.segmentation[need], H[need].astype(np.int64),
                                        W[need].astype(np.int64))
    x, y, w, h = (box[:, k] for k in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        x0, y0 = np.clip(x, 0, W), np.clip(y, 0, H)
        x1, y1 = np.clip(x + w, 0, W), np.clip(y + h, 0, H)
        moved = (x0 != x) | (y0 != y) | (x1 != x + w) | (y1 != y + h)
        x, y = np.where(moved, x0, x), np.where(moved, y0, y)
        w, h = np.where(moved, x1 - x0, w), np.where(moved, y1 - y0, h)
        ok = np.isfinite(box).all(axis=1) & (w > 0) & (h > 0) & ~anns.crowd
        dw, dh = 1.0 / W, 1.0 / H
        cx = (x + w / 2.0) * dw
        cy = (y + h / 2.0) * dh
        nw, nh = w * dw, h * dh
    rows = [f"{c} {a!r} {b!r} {d!r} {e!r}\n" for c, a, b, d, e in
            zip(cls.tolist(), cx.tolist(), cy.tolist(), nw.tolist(), nh.tolist(), strict=True)]
    offsets = np.zeros(len(view.counts) + 1, np.int64)
    np.cumsum(view.counts, out=offsets[1:])
    ok_list = ok.tolist()

    image_dir = coco.image_dir or ""
    taken: set[str] = set()
    planned: list[_Planned] = []
    missing: list[str] = []
    for i, file_name in enumerate(map(str, images.file_name.tolist())):
        suffix = Path(file_name).suffix
        if suffix == "" or suffix == ".txt":
            log.warning("image file has no image suffix, skipped: %r", file_name)
            continue
        if ignore_negative_samples and view.counts[i] == 0:
            continue
        if Path(file_name).is_file():
            source = os.path.abspath(file_name)
        else:
            source = os.path.abspath(str(Path(image_dir) / file_name))
            if not os.path.isfile(source):
                missing.append(f"images[{i}] {file_name!r}: {source}")
        name = Path(file_name).name
        stem, k = Path(name).stem, 2
        while name in taken:
            name = f"{stem}_{k}{suffix}"
            k += 1
        taken.add(name)
        text = "".join(rows[r] for r in range(offsets[i], offsets[i + 1]) if ok_list[r])
        planned.append(_Planned(source, split_dir / name, (split_dir / name).with_suffix(".txt"),
                                text))
    if missing:
        raise InputError(None, None, f"{len(missing)} image file(s) not found (set image_dir): "
                         + "; ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    return planned


def _write(planned: Sequence[_Planned], disable_symlink: bool) -> None:
    for p in planned:
        p.image.parent.mkdir(parents=True, exist_ok=True)
        if p.image.is_symlink() or p.image.exists():
            p.image.unlink()
        if disable_symlink:
            shutil.copy(p.source, p.image)
        else:
            os.symlink(p.source, p.image)
        p.label.write_text(p.text, encoding="utf-8")


def _yaml(data: Mapping[str, Any]) -> bytes:
    """data.yml: keys as SAHI writes them (sorted), strings JSON-quoted (valid YAML)."""
    lines: list[str] = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"- {json.dumps(str(v), ensure_ascii=False)}" for v in value)
        elif isinstance(value, str):
            lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
        else:
            lines.append(f"{key}: {value}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _export(output_dir: str | os.PathLike[str], splits: Mapping[str, tuple[Coco, bool]],
            classes_from: Coco, disable_symlink: bool) -> str:
    classes = _classes(classes_from)
    root = Path(os.path.abspath(output_dir))
    plans = [_plan(coco, root / name, coco, classes, ignore_neg)
             for name, (coco, ignore_neg) in splits.items()]
    for name in splits:
        (root / name).mkdir(parents=True, exist_ok=True)
    for planned in plans:
        _write(planned, disable_symlink)
    dirs = {name: str(root / name).replace("\\", "/") for name in splits}
    first = next(iter(dirs.values()))
    data = {"train": dirs.get("train", first), "val": dirs.get("val", first),
            "nc": len(classes.names), "names": classes.names}
    yaml_path = Path(output_dir) / "data.yml"
    atomic_write(yaml_path, [_yaml(data)])
    return str(yaml_path)


def export_coco_object_as_yolo(coco: Coco, output_dir: str | os.PathLike[str],
                               train_split_rate: float = 1.0, numpy_seed: int = 0,
                               disable_symlink: bool = False) -> None:
    """``Coco.export_as_yolo``: rate 1 exports a train split, 0 a val split, between both."""
    if 0 < train_split_rate < 1:
        result = coco.split_coco_as_train_val(train_split_rate, numpy_seed)
        splits = {"train": (result["train_coco"], coco.ignore_negative_samples),
                  "val": (result["val_coco"], coco.ignore_negative_samples)}
    elif train_split_rate == 0:
        splits = {"val": (coco, coco.ignore_negative_samples)}
    elif train_split_rate == 1:
        splits = {"train": (coco, coco.ignore_negative_samples)}
    else:
        raise SahiValueError("train_split_rate", train_split_rate,
                             "a number from 0 to 1 (train_split_rate cannot be <0 or >1)")
    _export(output_dir, splits, coco, disable_symlink)


def export_coco_as_yolo(output_dir: str | os.PathLike[str], train_coco: Coco | None = None,
                        val_coco: Coco | None = None, train_split_rate: float = 0.9,
                        numpy_seed: int = 0, disable_symlink: bool = False) -> str:
    """Export as YOLO (``train/``, ``val/``, ``data.yml``); returns the data.yml path.

    Without ``val_coco``, ``train_coco`` is split by ``train_split_rate`` (as SAHI,
    with a private random generator). Class indices follow ``train_coco``'s category
    order; ``val_coco``'s categories are matched to them by name.
    """
    if train_coco is not None and val_coco is None:
        if not 0 < train_split_rate < 1:
            raise SahiValueError("train_split_rate", train_split_rate,
                                 "a number between 0 and 1 (train_split_rate cannot be <0 or >1)")
        result = train_coco.split_coco_as_train_val(train_split_rate, numpy_seed)
        train, val = result["train_coco"], result["val_coco"]
    elif train_coco is not None and val_coco is not None:
        train, val = train_coco, val_coco
    else:
        raise SahiValueError("train_coco", None, "a Coco ('train_coco' have to be provided)")
    return _export(output_dir, {"train": (train, train.ignore_negative_samples),
                                "val": (val, val.ignore_negative_samples)},
                   train, disable_symlink)

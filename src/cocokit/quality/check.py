"""``check``: what spoils training beyond what ``validate`` checks in the JSON.

:func:`check_dataset` returns a :class:`CheckReport` of :class:`Finding` objects, each
with a stable code (:data:`CODES`), the JSON path of the record (``images[3]``,
``annotations[12]``), a message, the file names involved (both, for a pair) and a value
(an IoU, a Hamming distance, a size).

Label checks (no pixels, columns only; thresholds in :class:`Thresholds`):

* ``duplicate-annotation``: two annotations of one image with the same category whose
  boxes overlap with IoU at least ``iou`` (0.95), found by a sweep along x within each
  (image, category) group (:func:`cocokit.postprocess.match_pairs`);
* ``small-box``: a box narrower or lower than ``min_size`` px (2);
* ``extreme-aspect-ratio``: a box whose longer side is more than ``max_aspect`` (20)
  times its shorter one;
* ``crowd-without-rle``: ``iscrowd`` 1 with a polygon or no segmentation (COCOeval
  expects crowd regions as RLE);
* ``rare-category``: a category with fewer than ``min_examples`` (10) annotations
  (unused ones included).

Image checks (with an image folder; see :mod:`.images` for how each file is read):
``missing-image``, ``unreadable-image``, ``image-size-mismatch`` (the file's size,
EXIF orientation applied, is not the record's), ``duplicate-image`` (the same bytes
under two names), ``near-duplicate-image`` (perceptual hashes at most
``hash_distance`` (8) bits apart), and, against other sets (``against``),
``leaked-image``: the same or a near-identical image in both; without images, a
file_name found in both.
"""

from __future__ import annotations

import dataclasses
import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset import Dataset, equal_pairs
from ..engine import Engine
from ..errors import OptionError
from ..geometry import RLE_KINDS, segmentation_kinds
from ..io.atomic import check_writable
from ..postprocess import match_pairs
from .images import OK, UNREADABLE, HashCache, ImageScan, default_cache_path, scan_images
from .pairs import box_iou, near_pairs

__all__ = [
    "CODES",
    "CheckReport",
    "Finding",
    "Thresholds",
    "check_dataset",
    "findings_html",
    "label_findings",
]

#: Every code of ``check``, with what it means (for the documentation and ``--json``).
CODES: dict[str, str] = {
    "missing-image": "The image file of a record is not in the image folder.",
    "unreadable-image": "The image file cannot be decoded (truncated, corrupt, not an image).",
    "image-size-mismatch": "The file's size (EXIF orientation applied) is not the record's.",
    "duplicate-image": "Two records' files have the same bytes.",
    "near-duplicate-image": "Two records' images look the same (resized, re-encoded, "
    "lightly cropped): perceptual hashes a few bits apart.",
    "leaked-image": "An image of this set is also in another set (--against): the same "
    "bytes, a near-identical image, or (without images) the same file_name.",
    "duplicate-annotation": "Two annotations of one image and category overlap almost "
    "entirely (box IoU at or above the threshold).",
    "small-box": "A box is narrower or lower than the minimum size.",
    "extreme-aspect-ratio": "A box's longer side exceeds its shorter one by more than the "
    "maximum ratio.",
    "crowd-without-rle": "iscrowd is 1 but the segmentation is not RLE.",
    "rare-category": "A category has fewer annotations than the minimum.",
}


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The limits of the checks (CLI flags of the same names)."""

    iou: float = 0.95  #: duplicate-annotation: box IoU at least this
    min_size: float = 2.0  #: small-box: width or height below this many px
    max_aspect: float = 20.0  #: extreme-aspect-ratio: longer / shorter side above this
    min_examples: int = 10  #: rare-category: fewer annotations than this
    hash_distance: int = 8  #: near duplicates: perceptual hashes at most this many bits apart

    def __post_init__(self) -> None:
        if not 0.0 < self.iou <= 1.0:
            raise OptionError("iou", self.iou, "a number in (0, 1]")
        if not self.min_size >= 0:
            raise OptionError("min_size", self.min_size, "a size in px >= 0")
        if not self.max_aspect >= 1:
            raise OptionError("max_aspect", self.max_aspect, "a ratio >= 1")
        if self.min_examples < 0:
            raise OptionError("min_examples", self.min_examples, "a count >= 0")
        if not 0 <= self.hash_distance <= 32:
            raise OptionError("hash_distance", self.hash_distance, "a number of bits in 0..32")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing found: ``code`` (:data:`CODES`), the record's JSON ``path``, a
    ``message``, the image ``files`` involved (both for a pair), the ``other`` record
    of a pair (a path; prefixed with the other file for a leak) and a ``value`` (IoU,
    Hamming distance, size, count) where one applies."""

    code: str
    path: str
    message: str
    files: tuple[str, ...] = ()
    other: str | None = None
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "path": self.path, "message": self.message,
                "files": list(self.files), "other": self.other, "value": self.value}


@dataclasses.dataclass
class CheckReport:
    """Everything :func:`check_dataset` found, in a stable order (code, then path)."""

    source: str
    images: str | None
    against: list[str]
    thresholds: Thresholds
    findings: list[Finding]
    images_hashed: int = 0
    images_cached: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        """How many findings of each code (every code, 0 included), in :data:`CODES` order."""
        out = dict.fromkeys(CODES, 0)
        for f in self.findings:
            out[f.code] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: the keys are stable."""
        return {
            "source": self.source,
            "images": self.images,
            "against": list(self.against),
            "thresholds": dataclasses.asdict(self.thresholds),
            "ok": self.ok,
            "counts": self.counts(),
            "images_hashed": self.images_hashed,
            "images_cached": self.images_cached,
            "findings": [f.to_dict() for f in self.findings],
        }


def _fmt(x: float) -> str:
    return f"{x:g}"


def label_findings(ds: Dataset, t: Thresholds) -> list[Finding]:
    """The label checks (see the module docstring) of a loaded dataset."""
    anns, imgs, cats = ds.annotations, ds.images, ds.categories
    out: list[Finding] = []
    img = ds.image_index
    names = imgs.file_name
    box = anns.bbox
    finite = np.isfinite(box).all(axis=1)

    def fname(row: int) -> tuple[str, ...]:
        r = int(img[row])
        return (str(names[r]),) if r >= 0 else ()

    # duplicate annotations: pairs of one (image, category) group that overlap enough
    cat = ds.category_index
    use = np.flatnonzero(finite & (img >= 0) & (cat >= 0))
    key = img[use] * np.int64(max(len(cats), 1)) + cat[use]
    xyxy = np.concatenate([box[use, :2], box[use, :2] + box[use, 2:]], axis=1)
    a, b = match_pairs(xyxy, key, "iou", t.iou)  # a sweep, not every pair of a group
    order = np.lexsort((np.maximum(a, b), np.minimum(a, b), key[a]))
    a, b = use[a[order]], use[b[order]]
    iou = box_iou(box[a], box[b])  # the value reported: the IoU of the COCO boxes
    hit = np.flatnonzero(iou >= t.iou)
    first = np.minimum(a[hit], b[hit])
    second = np.maximum(a[hit], b[hit])
    for i, j, v in zip(first.tolist(), second.tolist(), iou[hit].tolist(), strict=True):
        name = cats.name_of(int(anns.category_id[j]))
        out.append(Finding(
            "duplicate-annotation", f"annotations[{j}]",
            f"same category {name!r} as annotations[{i}] on {fname(j)[0]!r}, box IoU "
            f"{v:.3f}", fname(j), f"annotations[{i}]", round(v, 4)))

    w, h = box[:, 2], box[:, 3]
    with np.errstate(invalid="ignore"):
        small = np.flatnonzero(finite & ((w < t.min_size) | (h < t.min_size)))
    for r in small.tolist():
        out.append(Finding(
            "small-box", f"annotations[{r}].bbox",
            f"box {_fmt(w[r])}x{_fmt(h[r])} px is under {_fmt(t.min_size)} px",
            fname(r), None, float(min(w[r], h[r]))))
    pos = finite & (w > 0) & (h > 0)
    ratio = np.ones(len(anns))
    ratio[pos] = np.maximum(w[pos] / h[pos], h[pos] / w[pos])
    for r in np.flatnonzero(ratio > t.max_aspect).tolist():
        out.append(Finding(
            "extreme-aspect-ratio", f"annotations[{r}].bbox",
            f"box {_fmt(w[r])}x{_fmt(h[r])} px has aspect ratio {ratio[r]:.1f} "
            f"(over {_fmt(t.max_aspect)})", fname(r), None, round(float(ratio[r]), 3)))

    crowd = np.flatnonzero(anns.crowd)
    if len(crowd):
        kinds = segmentation_kinds(anns.segmentation[crowd])
        for r in crowd[~np.isin(kinds, RLE_KINDS)].tolist():
            seg = "no segmentation" if anns.segmentation[r] is None else "polygons"
            out.append(Finding("crowd-without-rle", f"annotations[{r}].iscrowd",
                               f"iscrowd is 1 with {seg} (crowd regions are RLE)", fname(r)))

    counts = np.bincount(cat[cat >= 0], minlength=len(cats))
    for k in np.flatnonzero(counts < t.min_examples).tolist():
        out.append(Finding(
            "rare-category", f"categories[{k}]",
            f"category {cats.name[k]!r} (id {int(cats.id[k])}) has {int(counts[k])} "
            f"annotation(s), fewer than {t.min_examples}", (), None, float(counts[k])))
    return out


def _image_findings(ds: Dataset, scan: ImageScan, t: Thresholds) -> list[Finding]:
    imgs = ds.images
    names = [str(f) for f in imgs.file_name]
    out: list[Finding] = []
    for r in np.flatnonzero(scan.status != OK).tolist():
        code = "unreadable-image" if scan.status[r] == UNREADABLE else "missing-image"
        out.append(Finding(code, f"images[{r}]", f"{names[r]}: {scan.reason[r]}", (names[r],)))
    ok = np.flatnonzero(scan.ok)
    off = ok[(scan.width[ok] != imgs.width[ok]) | (scan.height[ok] != imgs.height[ok])]
    for r in off.tolist():
        out.append(Finding(
            "image-size-mismatch", f"images[{r}]",
            f"{names[r]} is {scan.width[r]}x{scan.height[r]} (EXIF orientation applied) but "
            f"its record says {imgs.width[r]}x{imgs.height[r]}", (names[r],)))
    i, j = equal_pairs(scan.digest[ok], None)
    exact = set()
    for a, b in zip(ok[i].tolist(), ok[j].tolist(), strict=True):
        exact.add((min(a, b), max(a, b)))
        if names[a] == names[b]:
            continue  # one file listed twice: validate's duplicate-file-name
        out.append(Finding("duplicate-image", f"images[{b}]",
                           f"{names[b]} has the same bytes as {names[a]} (images[{a}])",
                           (names[b], names[a]), f"images[{a}]", 0.0))
    i, j, d = near_pairs(scan.phash[ok], None, t.hash_distance)
    for a, b, dist in zip(ok[i].tolist(), ok[j].tolist(), d.tolist(), strict=True):
        if (a, b) in exact or names[a] == names[b]:
            continue
        out.append(Finding("near-duplicate-image", f"images[{b}]",
                           f"{names[b]} looks like {names[a]} (images[{a}]): perceptual "
                           f"hashes {dist} bits apart", (names[b], names[a]),
                           f"images[{a}]", float(dist)))
    return out


def _leak_findings(ds: Dataset, scan: ImageScan | None, other: Dataset, oscan: ImageScan | None,
                   name: str, t: Thresholds) -> list[Finding]:
    names = [str(f) for f in ds.images.file_name]
    onames = [str(f) for f in other.images.file_name]
    out: list[Finding] = []
    if scan is None or oscan is None:
        where: dict[str, int] = {}
        for k, f in enumerate(onames):
            where.setdefault(f, k)
        for r, f in enumerate(names):
            k = where.get(f, -1)
            if k >= 0:
                out.append(Finding("leaked-image", f"images[{r}]",
                                   f"{f} is also in {name} (images[{k}]) by file_name",
                                   (f, onames[k]), f"{name}: images[{k}]", None))
        return out
    ok, ook = np.flatnonzero(scan.ok), np.flatnonzero(oscan.ok)
    i, j = equal_pairs(scan.digest[ok], oscan.digest[ook])
    seen: set[tuple[int, int]] = set()
    for a, b in zip(ok[i].tolist(), ook[j].tolist(), strict=True):
        seen.add((a, b))
        out.append(Finding("leaked-image", f"images[{a}]",
                           f"{names[a]} has the same bytes as {onames[b]} in {name} "
                           f"(images[{b}])", (names[a], onames[b]), f"{name}: images[{b}]", 0.0))
    i, j, d = near_pairs(scan.phash[ok], oscan.phash[ook], t.hash_distance)
    for a, b, dist in zip(ok[i].tolist(), ook[j].tolist(), d.tolist(), strict=True):
        if (a, b) in seen:
            continue
        out.append(Finding("leaked-image", f"images[{a}]",
                           f"{names[a]} looks like {onames[b]} in {name} (images[{b}]): "
                           f"perceptual hashes {dist} bits apart", (names[a], onames[b]),
                           f"{name}: images[{b}]", float(dist)))
    return out


def _path_key(f: Finding) -> tuple[int, str, int, str]:
    head, _, rest = f.path.partition("[")
    num = rest.split("]", 1)[0]
    return (list(CODES).index(f.code), head, int(num) if num.isdigit() else -1, f.other or "")


def check_dataset(
    ds: Dataset,
    image_dir: str | os.PathLike[str] | None = None,
    *,
    against: Sequence[tuple[str, Dataset, str | os.PathLike[str] | None]] = (),
    thresholds: Thresholds | None = None,
    cache: str | os.PathLike[str] | bool = True,
    workers: int = 1,
    engine: Engine = "local",
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Check ``ds`` (labels; with ``image_dir`` its image files too) and return the report.

    ``against``: other sets, each ``(name, dataset, image folder or None)``, searched
    for images of ``ds`` (split leakage). ``cache``: True for the default place of the
    hash cache (:func:`~.images.default_cache_path` of each image folder; kept when it
    can be written), a path for one file (an output: one that cannot be written is an
    :class:`~cocokit.errors.OutputError`, before any image is read), False for none.
    ``workers``/``engine``/``address``: how the images are
    read (:func:`~.images.scan_images`). ``progress(done, total)`` counts images over
    every set.
    """
    t = thresholds or Thresholds()
    named = not isinstance(cache, bool)
    if not isinstance(cache, bool):
        check_writable(cache)
    findings = label_findings(ds, t)
    hashed = cached = 0
    sets: list[tuple[Dataset, str | os.PathLike[str] | None]] = [(ds, image_dir)]
    sets += [(o, d) for _, o, d in against]
    total = sum(len(s.images) for s, d in sets if d is not None)
    base = 0

    def scan(one: Dataset, folder: str | os.PathLike[str] | None) -> ImageScan | None:
        nonlocal hashed, cached, base
        if folder is None:
            return None
        where: Path | None
        if cache is True:
            where = default_cache_path(folder)
        elif cache is False:
            where = None
        else:
            where = Path(os.fspath(cache))
        store = HashCache(where, required=named) if where is not None else None
        offset = base

        def step(done: int, _n: int) -> None:
            if progress is not None:
                progress(offset + done, total)

        result = scan_images([str(f) for f in one.images.file_name], folder,
                             pixels=one.images.width * one.images.height, cache=store,
                             workers=workers, engine=engine, address=address,
                             progress=step)
        if store is not None:
            store.save()
        base += len(one.images)
        hashed += result.hashed
        cached += result.cached
        return result

    main = scan(ds, image_dir)
    if main is not None:
        findings += _image_findings(ds, main, t)
    for name, other, folder in against:
        oscan = scan(other, folder) if main is not None else None
        findings += _leak_findings(ds, main, other, oscan, name, t)
    findings.sort(key=_path_key)
    shown = None if image_dir is None else os.fspath(image_dir)
    return CheckReport(ds.source or "<dataset>", shown, [n for n, _, _ in against], t,
                       findings, hashed, cached)


#: findings listed per code in the HTML report (the rest are counted)
HTML_SHOWN = 200


def findings_html(report: CheckReport) -> str:
    """The findings as HTML (a count table, then a table per code) for the report page."""
    parts = ["<table><thead><tr><th class=\"name\">check</th><th>found</th>"
             "<th class=\"name\">meaning</th></tr></thead><tbody>"]
    counts = report.counts()
    for code, n in counts.items():
        parts.append(f"<tr><td class=\"name\">{code}</td><td>{n:,}</td>"
                     f"<td class=\"name\">{html.escape(CODES[code])}</td></tr>")
    parts.append("</tbody></table>")
    for code, n in counts.items():
        if not n:
            continue
        rows = [f for f in report.findings if f.code == code]
        parts.append(f"<h3>{code} ({n:,})</h3><table><thead><tr><th class=\"name\">path</th>"
                     "<th class=\"name\">message</th></tr></thead><tbody>")
        parts += [f"<tr><td class=\"name\">{html.escape(f.path)}</td>"
                  f"<td class=\"name\">{html.escape(f.message)}</td></tr>"
                  for f in rows[:HTML_SHOWN]]
        parts.append("</tbody></table>")
        if n > HTML_SHOWN:
            parts.append(f"<p>... and {n - HTML_SHOWN:,} more (see --json)</p>")
    return "\n".join(parts)

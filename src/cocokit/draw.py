"""Draw an image with its annotations: masks, boxes, keypoints and labels.

:func:`draw` returns a :class:`PIL.Image.Image` (RGB) of one image of a dataset with

* **masks**: polygons and RLE masks filled semi-transparent in the category's color,
  with the mask's outline pixels in full color. Masks are rasterized by pycocotools,
  so the pixels drawn are exactly the pixels COCO's ``area`` and evaluation count;
* **boxes**: the ``bbox`` (COCO ``xywh``) as an outline;
* **keypoints**: labelled points (``v > 0``; hollow when ``v == 1``, not visible) and the
  category's ``skeleton`` (1-based index pairs) between labelled points;
* **labels**: the category name (``(crowd)`` added for crowds) on a tag in its color.

Colors are per category: spaced around the hue circle by the golden ratio in the order
categories are declared, so neighbouring categories differ; annotations of undeclared
categories are gray. Nothing here changes the dataset.

Predictions (``results=``, detections as :class:`~cocokit.io.results.Results`) are drawn
over the ground truth in another style: **dashed** boxes in the category's color, mask
outlines without fill, and labels ``name 0.87`` with the score, for the detections of
the image scoring at least ``score``. With ``iou=`` they are matched to the ground truth
as COCOeval matches them, with the error analysis' matcher
(:func:`cocokit.analysis.coco_matches`: per category, detections by score, highest
first, each taking the unmatched ground truth it overlaps most with box IoU >= ``iou``;
a crowd can take any number, by the share of the detection inside it, and is never
missed; an ``ignore`` key changes nothing, as pycocotools sets a ground truth's ignore
flag from ``iscrowd`` alone): false positives are drawn in red and tagged ``FP``, missed
ground truth gets a red box and a ``missed`` tag.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from .analysis import coco_matches
from .dataset import Dataset, plain
from .errors import InputError, OptionError
from .geometry import mask_api, polygon_rings, segmentation_rle
from .io.results import Results

__all__ = [
    "SHOW_ALL",
    "Layer",
    "category_colors",
    "draw",
    "image_path",
    "match_detections",
    "parse_show",
    "resolve_image",
]

Layer = Literal["masks", "boxes", "keypoints", "labels"]
#: Every layer :func:`draw` can draw, in drawing order.
SHOW_ALL: tuple[Layer, ...] = ("masks", "boxes", "keypoints", "labels")
UNDECLARED_COLOR = (160, 160, 160)
#: Color of false positives and missed ground truth (``iou=``).
ERROR_COLOR = (235, 20, 20)
_GOLDEN = 0.618033988749895


def category_colors(ds: Dataset) -> dict[int, tuple[int, int, int]]:
    """The RGB color of each declared category id (stable for a given category order)."""
    out: dict[int, tuple[int, int, int]] = {}
    for row, cid in enumerate(ds.categories.id.tolist()):
        r, g, b = colorsys.hsv_to_rgb((0.08 + row * _GOLDEN) % 1.0, 0.75, 0.95)
        out.setdefault(int(cid), (round(r * 255), round(g * 255), round(b * 255)))
    return out


def parse_show(show: str | Iterable[str]) -> tuple[Layer, ...]:
    """Layers to draw from ``"masks,boxes"`` or a sequence of names (OptionError if unknown)."""
    items = show.split(",") if isinstance(show, str) else list(show)
    names = [str(s).strip().lower() for s in items if str(s).strip()]
    unknown = [n for n in names if n not in SHOW_ALL]
    if unknown:
        raise OptionError("show", ",".join(unknown),
                          f"a comma-separated subset of {','.join(SHOW_ALL)}")
    return tuple(layer for layer in SHOW_ALL if layer in names)


def resolve_image(ds: Dataset, image: int | str | None = None, *,
                  image_id: int | None = None) -> int:
    """The image row meant by a row index, a file name, or (keyword) an image id.

    A file name matches ``file_name`` exactly, or else its last path component when
    exactly one image has that base name. Raises OptionError when nothing (or more than
    one thing) is given or nothing matches.
    """
    n = len(ds.images)
    if (image is None) == (image_id is None):
        raise OptionError("image", image if image is not None else image_id,
                          "exactly one of an image row, a file name or image_id=")
    if image_id is not None:
        if isinstance(image_id, bool) or not isinstance(image_id, (int, np.integer)):
            raise OptionError("image_id", image_id, "an integer image id")
        rows = np.flatnonzero(ds.images.id == int(image_id))
        if len(rows) == 0:
            raise OptionError("image_id", int(image_id), "the id of an image of the dataset")
        return int(rows[0])
    if isinstance(image, str):
        names = ds.images.file_name
        rows = np.flatnonzero(names == image)
        if len(rows) == 0:
            base = np.array([os.path.basename(str(f)) for f in names], dtype=object)
            rows = np.flatnonzero(base == os.path.basename(image))
            if len(rows) > 1:
                raise OptionError("file_name", image,
                                  f"a file name that is unique ({len(rows)} images are named so)")
        if len(rows) == 0:
            raise OptionError("file_name", image, "the file_name of an image of the dataset")
        return int(rows[0])
    if isinstance(image, bool) or not isinstance(image, (int, np.integer)):
        raise OptionError("image", image, "an image row (int), a file name (str) or image_id=")
    if not -n <= int(image) < n:
        raise OptionError("image", int(image), f"an image row in 0..{n - 1}" if n else "an image "
                          "row, but the dataset has no images")
    return int(image) % n


def image_path(ds: Dataset, row: int, image_dir: str | os.PathLike[str]) -> Path:
    """Where the pixels of image row ``row`` are: ``image_dir / file_name``."""
    return Path(image_dir) / str(ds.images.file_name[row])


def _load_pixels(ds: Dataset, row: int, image_dir: str | os.PathLike[str] | None,
                 background: Image.Image | None) -> Image.Image:
    width, height = int(ds.images.width[row]), int(ds.images.height[row])
    where = f"images[{row}]"
    if width <= 0 or height <= 0:
        raise InputError(ds.source, where, f"image size {width}x{height} cannot be drawn")
    if background is not None:
        img = background
        name = "the background image"
    elif image_dir is None:
        return Image.new("RGB", (width, height))
    else:
        path = image_path(ds, row, image_dir)
        name = str(path)
        if not path.is_file():
            raise InputError(str(path), f"{where}.file_name", "image file not found")
        try:
            with Image.open(path) as opened:
                opened.load()
                img = opened.copy()
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(str(path), None, f"cannot read the image: {e}") from e
    if img.size != (width, height):
        raise InputError(name, where, f"the image is {img.size[0]}x{img.size[1]} pixels but "
                         f"the dataset says {width}x{height}; annotations would not line up")
    return img.convert("RGB")




def _polygon_mask(rings: list[list[float]], width: int, height: int,
                  where: str, source: str | None) -> tuple[int, int, np.ndarray] | None:
    """Rasterize polygon rings as pycocotools does; returns (x0, y0, bool mask) or None.

    The rasterization is at the image's full size: pycocotools' polygon scan uses float
    steps whose rounding depends on where the polygon lies, so rasterizing a shifted
    copy over the polygon's box would move single pixels at the boundary.
    """
    rings = [r for r in rings if len(r) >= 6]
    for r in rings:
        if len(r) % 2:
            raise InputError(source, where, "a polygon ring has an odd number of coordinates")
    if not rings:
        return None
    flat = np.concatenate([np.asarray(r, np.float64) for r in rings])
    if not np.isfinite(flat).all():
        raise InputError(source, where, "a polygon has a non-finite coordinate")
    return _crop(mask_api().decode(segmentation_rle(rings, height, width)))


def _crop(mask: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """The mask's bounding box: (x0, y0, bool mask inside it), or None when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if len(ys) == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), mask[ys[0]: ys[-1] + 1, xs[0]: xs[-1] + 1].astype(bool)


def _rle_mask(seg: dict[str, Any], width: int, height: int, where: str,
              source: str | None) -> tuple[int, int, np.ndarray] | None:
    try:
        h, w = (int(v) for v in seg["size"])
        if "counts" not in seg:
            raise KeyError("counts")
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(source, where, f"an RLE needs 'size' [h, w] and 'counts': {e}") from e
    if (h, w) != (height, width):
        raise InputError(source, f"{where}.size", f"RLE size is {h}x{w} (h x w) but the image "
                         f"is {height}x{width}")
    return _crop(mask_api().decode(segmentation_rle(seg, height, width)))


def _segmentation_mask(seg: Any, width: int, height: int, where: str,
                       source: str | None) -> tuple[int, int, np.ndarray] | None:
    """The mask of a segmentation (polygons or RLE; None for none) as (x0, y0, mask)."""
    if seg is None:
        return None
    value = plain(seg)
    if isinstance(value, dict):
        return _rle_mask(value, width, height, where, source)
    if isinstance(value, list):
        return _polygon_mask(polygon_rings(value), width, height, where, source)
    raise InputError(source, where, f"expected polygons or an RLE, found {type(value).__name__}")


def _annotation_mask(ds: Dataset, row: int, width: int,
                     height: int) -> tuple[int, int, np.ndarray] | None:
    return _segmentation_mask(ds.annotations.segmentation[row], width, height,
                              f"annotations[{row}].segmentation", ds.source)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a 4-neighbour outside it (or on the crop border)."""
    p = np.pad(mask, 1, constant_values=False)
    inner = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return mask & ~inner


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_color(color: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = color
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def draw(
    ds: Dataset,
    image: int | str | None = None,
    image_dir: str | os.PathLike[str] | None = None,
    show: str | Sequence[str] = SHOW_ALL,
    *,
    image_id: int | None = None,
    background: Image.Image | None = None,
    alpha: float = 0.45,
    line_width: int | None = None,
    font_size: int | None = None,
    results: Results | None = None,
    score: float = 0.0,
    iou: float | None = None,
) -> Image.Image:
    """Draw one image of ``ds`` with its annotations; returns a new RGB PIL image.

    ``image`` is an image row index or a file name, or pass ``image_id=`` instead (see
    :func:`resolve_image`). The pixels come from ``background`` if given, else from
    ``image_dir / file_name``, else a black canvas of the image's size. ``show`` picks
    the layers (a subset of :data:`SHOW_ALL`, or ``"masks,boxes"``). ``alpha`` is the
    opacity of mask fills; ``line_width`` and ``font_size`` default to sizes that
    scale with the image. ``results`` adds the detections of this image scoring at least
    ``score`` (dashed, with their score), and ``iou`` marks false positives and missed
    ground truth (see the module docstring).

    Raises InputError when the image file is missing or unreadable, its size differs
    from the dataset's, or a segmentation cannot be rasterized; OptionError for a bad
    selection or option.
    """
    layers = parse_show(show)
    if not 0.0 <= float(alpha) <= 1.0:
        raise OptionError("alpha", alpha, "a number from 0 to 1")
    if not 0.0 <= float(score) <= 1.0:
        raise OptionError("score", score, "a number from 0 to 1")
    if iou is not None and not 0.0 < float(iou) <= 1.0:
        raise OptionError("iou", iou, "a number above 0, at most 1")
    row = resolve_image(ds, image, image_id=image_id)
    canvas = _load_pixels(ds, row, image_dir, background)
    width, height = canvas.size
    lw = int(line_width) if line_width is not None else max(1, round(min(width, height) / 250))
    if lw < 1:
        raise OptionError("line_width", line_width, "a positive integer")
    fs = int(font_size) if font_size is not None else max(12, round(min(width, height) / 55))
    if fs < 1:
        raise OptionError("font_size", font_size, "a positive integer")

    anns = ds.annotations
    rows = ds.annotation_rows(row).tolist()
    colors = category_colors(ds)
    color_of = {r: colors.get(int(anns.category_id[r]), UNDECLARED_COLOR) for r in rows}
    preds = _image_predictions(results, int(ds.images.id[row]), float(score))
    missed: set[int] = set()
    false_pos = np.zeros(len(preds[0]) if preds is not None else 0, bool)
    if preds is not None and iou is not None:
        matched, gt_matched = match_detections(
            preds[1].bbox, preds[1].category_id, anns.bbox[rows], anns.category_id[rows],
            anns.crowd[rows], float(iou))
        false_pos = ~matched
        never = anns.crowd[rows]  # crowds are never missed
        missed = {r for r, m, c in zip(rows, gt_matched, never, strict=True)
                  if not m and not c}

    # labels sit on the box; an annotation without one gets its label on the mask
    mask_boxes: dict[int, tuple[float, float, float, float]] = {}
    if "masks" in layers:
        mask_rows = rows
    elif "labels" in layers:
        mask_rows = [r for r in rows if not np.isfinite(anns.bbox[r]).all()]
    else:
        mask_rows = []
    pixels = np.array(canvas, dtype=np.uint8) if "masks" in layers else None  # a copy
    for r in mask_rows:
        m = _annotation_mask(ds, r, width, height)
        if m is None:
            continue
        x0, y0, mask = m
        mh, mw = mask.shape
        mask_boxes[r] = (x0, y0, mw, mh)
        if pixels is not None:
            region = pixels[y0: y0 + mh, x0: x0 + mw]  # a view: blended in place
            rgb = np.asarray(color_of[r], np.float32)
            under = region[mask].astype(np.float32)
            region[mask] = np.rint(under * (1.0 - alpha) + rgb * alpha).astype(np.uint8)
            region[_outline(mask)] = color_of[r]
    if pixels is not None:
        canvas = Image.fromarray(pixels, "RGB")

    pen = ImageDraw.Draw(canvas)
    if "boxes" in layers:
        for r in rows:
            x, y, w, h = anns.bbox[r].tolist()
            if not np.isfinite([x, y, w, h]).all():
                continue
            pen.rectangle([x, y, max(x, x + w - 1), max(y, y + h - 1)],
                          outline=ERROR_COLOR if r in missed else color_of[r],
                          width=lw * 2 if r in missed else lw)
    if preds is not None:
        canvas = _draw_predictions(canvas, ds, preds[1], false_pos, layers, lw, width, height,
                                   colors)
        pen = ImageDraw.Draw(canvas)

    if "keypoints" in layers:
        skeletons = _skeletons(ds)
        radius = max(2, lw + 1)
        for r in rows:
            kp = anns.keypoints_array(r)
            if len(kp) == 0:
                continue
            color = color_of[r]
            labelled = kp[:, 2] > 0
            for a, b in skeletons.get(int(anns.category_id[r]), ()):
                if 0 <= a < len(kp) and 0 <= b < len(kp) and labelled[a] and labelled[b]:
                    pen.line([tuple(kp[a, :2]), tuple(kp[b, :2])], fill=color, width=lw)
            for x, y, v in kp[labelled].tolist():
                box = [x - radius, y - radius, x + radius, y + radius]
                if v >= 2:
                    pen.ellipse(box, fill=color, outline=(255, 255, 255))
                else:
                    pen.ellipse(box, outline=color, width=max(1, lw))

    if "labels" in layers:
        font = _font(fs)
        for r in rows:
            anchor = _label_anchor(anns.bbox[r], mask_boxes.get(r), anns.keypoints_array(r))
            if anchor is None:
                continue
            cid = int(anns.category_id[r])
            name = _category_name(ds, cid)
            if anns.crowd[r]:
                name += " (crowd)"
            if r in missed:
                name = f"missed {name}"
            _tag(pen, anchor, name, ERROR_COLOR if r in missed else color_of[r], font, fs,
                 width)
        if preds is not None:
            p = preds[1]
            for k in range(len(p)):
                x, y, w, h = p.bbox[k].tolist()
                if not np.isfinite([x, y, w, h]).all():
                    continue
                cid = int(p.category_id[k])
                text = f"{_category_name(ds, cid)} {float(p.score[k]):.2f}"
                if false_pos[k]:
                    text = f"FP {text}"
                color = ERROR_COLOR if false_pos[k] else colors.get(cid, UNDECLARED_COLOR)
                # below the box's top edge, so it does not cover a ground-truth tag
                _tag(pen, (x, y + h), text, color, font, fs, width, below=True)
    return canvas


def _category_name(ds: Dataset, cid: int) -> str:
    return ds.categories.name_of(cid) if cid in ds.categories else f"category {cid}"


def _tag(pen: ImageDraw.ImageDraw, anchor: tuple[float, float], text: str,
         color: tuple[int, int, int], font: Any, fs: int, width: int,
         below: bool = False) -> None:
    """A label on a filled tag above ``anchor`` (or below it; inside the image)."""
    left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
    tw, th = right - left, bottom - top
    pad = max(1, fs // 6)
    x, y = anchor
    if below:
        ty = y - th - 2 * pad
    else:
        ty = y - th - 2 * pad if y - th - 2 * pad >= 0 else y
    tx = min(max(0.0, x), max(0.0, width - tw - 2 * pad))
    pen.rectangle([tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad], fill=color)
    pen.text((tx + pad - left, ty + pad - top), text, fill=_text_color(color), font=font)


def _image_predictions(results: Results | None, image_id: int,
                       score: float) -> tuple[np.ndarray, Results] | None:
    """The detections of one image scoring at least ``score``, highest first."""
    if results is None:
        return None
    rows = np.flatnonzero((np.asarray(results.image_id) == image_id)
                          & (np.asarray(results.score) >= score))
    rows = rows[np.argsort(-np.asarray(results.score)[rows], kind="stable")]
    return rows, results.take(rows)


def match_detections(
    det_bbox: np.ndarray, det_category: np.ndarray, gt_bbox: np.ndarray,
    gt_category: np.ndarray, gt_crowd: np.ndarray, iou: float,
    ignore: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's greedy matching of one image's detections to its ground truth, by box.

    Detections must come sorted by score, highest first. Per category, each detection
    takes the ground truth it overlaps most (box IoU, pycocotools' ``iou``; for a crowd,
    the share of the detection inside it) among those not yet taken (a crowd can be
    taken again), at least ``iou``; non-crowd ground truth not marked in ``ignore``
    (COCOeval's ignored ground truth, such as outside an area range) is preferred.
    Boxes that are not finite match nothing. The matching is the error analysis' own,
    :func:`cocokit.analysis.coco_matches`. Returns (detection matched, ground truth
    matched) masks; a detection matched to a crowd or ignored ground truth counts as
    matched (COCOeval neither counts it a true positive nor a false one).
    """
    det_bbox = np.asarray(det_bbox, np.float64).reshape(-1, 4)
    gt_bbox = np.asarray(gt_bbox, np.float64).reshape(-1, 4)
    crowd = np.asarray(gt_crowd).reshape(-1) > 0
    d_ok = np.isfinite(det_bbox).all(axis=1)
    g_ok = np.isfinite(gt_bbox).all(axis=1)
    ious = np.zeros((len(det_bbox), len(gt_bbox)))
    if d_ok.any() and g_ok.any():
        ious[np.ix_(d_ok, g_ok)] = np.asarray(mask_api().iou(
            det_bbox[d_ok].tolist(), gt_bbox[g_ok].tolist(),
            crowd[g_ok].astype(np.uint8).tolist()), np.float64).reshape(d_ok.sum(), g_ok.sum())
    same = np.equal.outer(np.asarray(det_category).reshape(-1),
                          np.asarray(gt_category).reshape(-1)) & np.outer(d_ok, g_ok)
    match = coco_matches(ious, crowd, iou, same=same, ignore=ignore)
    gt_taken = np.zeros(len(gt_bbox), bool)
    gt_taken[match[match >= 0]] = True
    return match >= 0, gt_taken


def _dashed_rectangle(pen: ImageDraw.ImageDraw, box: tuple[float, float, float, float],
                      color: tuple[int, int, int], width: int) -> None:
    """The outline of ``box`` (x0, y0, x1, y1) in dashes of about 4 line widths."""
    x0, y0, x1, y1 = box
    dash = max(4, 4 * width)
    for (ax, ay), (bx, by) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)),
                               ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(bx - ax), abs(by - ay))
        steps = max(1, int(length // dash))
        for k in range(0, steps, 2):
            t0, t1 = k / steps, min(1.0, (k + 1) / steps)
            pen.line([(ax + (bx - ax) * t0, ay + (by - ay) * t0),
                      (ax + (bx - ax) * t1, ay + (by - ay) * t1)], fill=color, width=width)


def _draw_predictions(canvas: Image.Image, ds: Dataset, preds: Results, false_pos: np.ndarray,
                      layers: Sequence[str], lw: int, width: int, height: int,
                      colors: dict[int, tuple[int, int, int]]) -> Image.Image:
    """Mask outlines (no fill) and dashed boxes of the detections."""
    color = [ERROR_COLOR if false_pos[k] else colors.get(int(preds.category_id[k]),
                                                          UNDECLARED_COLOR)
             for k in range(len(preds))]
    if "masks" in layers:
        pixels = np.array(canvas, dtype=np.uint8)
        for k in range(len(preds)):
            m = _segmentation_mask(preds.segmentation[k], width, height,
                                   f"results[{k}].segmentation", preds.source)
            if m is None:
                continue
            x0, y0, mask = m
            mh, mw = mask.shape
            pixels[y0: y0 + mh, x0: x0 + mw][_outline(mask)] = color[k]
        canvas = Image.fromarray(pixels, "RGB")
    if "boxes" in layers:
        pen = ImageDraw.Draw(canvas)
        for k in range(len(preds)):
            x, y, w, h = preds.bbox[k].tolist()
            if np.isfinite([x, y, w, h]).all():
                _dashed_rectangle(pen, (x, y, max(x, x + w - 1), max(y, y + h - 1)), color[k],
                                  lw)
    return canvas


def _skeletons(ds: Dataset) -> dict[int, list[tuple[int, int]]]:
    """Per category id, its skeleton as 0-based index pairs (COCO stores them 1-based)."""
    out: dict[int, list[tuple[int, int]]] = {}
    for rec in ds.categories.records:
        sk = plain(rec.get("skeleton"))
        if isinstance(sk, list):
            pairs = [(int(p[0]) - 1, int(p[1]) - 1) for p in sk
                     if isinstance(p, (list, tuple)) and len(p) == 2]
            out.setdefault(int(rec["id"]), pairs)
    return out


def _label_anchor(bbox: np.ndarray, mask_box: tuple[float, float, float, float] | None,
                  kp: np.ndarray) -> tuple[float, float] | None:
    if np.isfinite(bbox).all():
        return float(bbox[0]), float(bbox[1])
    if mask_box is not None:
        return float(mask_box[0]), float(mask_box[1])
    labelled = kp[kp[:, 2] > 0] if len(kp) else kp
    if len(labelled):
        return float(labelled[:, 0].min()), float(labelled[:, 1].min())
    return None

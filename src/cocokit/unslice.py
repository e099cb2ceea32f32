"""Predictions made on tiles, back on the images the tiles were cut from.

:func:`unslice_results` is SAHI's sliced prediction done after the fact: a detector ran
on the tiles ``cocokit slice`` wrote, and its results are mapped back to the source
images and their duplicates merged (``cocokit results unslice``).

Provenance
    Each tile record names its source: ``source_image_id``, ``source_window``
    (``[x, y, w, h]`` in the source image) and, when slice wrote them,
    ``source_width``/``source_height``. Without the source size, the image is taken to
    end where its tiles end (the grid covers the whole image unless empty tiles were
    dropped). A results file whose image ids are not tile ids, or tiles without
    provenance, is an :class:`~cocokit.errors.InputError` naming the record.

Moving
    Boxes move by the window's origin and are clipped to the source image (as SAHI
    clips to the full image); polygons move point by point; RLE masks are pasted into
    the source image's size (:func:`cocokit.clipping.paste_rle`). A detection without a
    box gets the box of its segmentation. Image ids become the source image ids.

Merging (:mod:`cocokit.postprocess`)
    Tiles overlap, so one object is often found twice or cut in two. The moved
    detections of each image (with ``full=``, the detections made on the whole images as
    well: SAHI's standard plus sliced prediction) are merged with ``merge`` (``nms``,
    ``nmm``, ``greedy-nmm`` or ``none``), matching by ``iou`` or ``ios`` at
    ``match_threshold``, per category unless ``class_agnostic``: SAHI's defaults are
    greedy NMM, IoS, 0.5, per category. A merged detection has the union box, the
    highest score, and the union of the masks of its parts (an RLE, pycocotools'
    ``merge``) when any part has one; its other keys are those of its highest-ranked
    part, but an ``area`` key becomes the merged mask's pixel count (the merged box's
    area when there is no mask). Output is sorted by image id, then (unless
    class-agnostic) category id, then score (highest first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .clipping import paste_rle, rle_area
from .dataset import Dataset, lookup, object_array, plain, present
from .errors import InputError
from .geometry import mask_api, polygon_rings, segmentation_bboxes, segmentation_rle
from .io.results import Results
from .postprocess import MatchMetric, Merge, Merged, check_options, merge_detections

__all__ = ["TileOrigins", "merged_results", "move_to_sources", "tile_origins",
           "unslice_results"]


@dataclass(frozen=True)
class TileOrigins:
    """Where each tile of a tiled dataset came from, one row per tile image.

    ``window`` is ``[x, y, w, h]`` in the source image, ``size`` the source image's
    ``[height, width]`` (recorded, or where its tiles end).
    """

    tile_id: np.ndarray
    source_id: np.ndarray
    window: np.ndarray
    size: np.ndarray

    def rows_of(self, image_id: np.ndarray, file: str | None, tiles: str | None) -> np.ndarray:
        """The tile row of each image id; InputError naming the first that is no tile."""
        rows = lookup(self.tile_id, image_id)
        if (rows < 0).any():
            i = int(np.flatnonzero(rows < 0)[0])
            raise InputError(file, f"results[{i}].image_id",
                             f"{int(image_id[i])} is not the id of a tile of "
                             f"{tiles or 'the tiles'} (results on tiles are unsliced with "
                             "the tiles' COCO file that slice wrote)")
        return rows


def _int_list(value: Any, n: int) -> list[int] | None:
    if type(value) is list and len(value) == n and all(type(v) is int for v in value):
        return value
    value = plain(value)
    if not isinstance(value, (list, tuple)) or len(value) != n:
        return None
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        return None
    return out if all(float(a) == float(b) for a, b in zip(out, value, strict=True)) else None


def _fast_columns(extras: list[dict[str, Any]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The provenance columns when every tile has plain integer values (one array
    conversion each), else None."""
    try:
        sids = [e["source_image_id"] for e in extras]
        wins = [e["source_window"] for e in extras]
    except KeyError:
        return None
    if not all(type(v) is int for v in sids):
        return None
    window = np.array(wins)
    if window.shape != (len(extras), 4) or window.dtype.kind != "i":
        return None
    size = np.full((len(extras), 2), -1, np.int64)
    hw = [(e.get("source_height"), e.get("source_width")) for e in extras]
    if all(type(h) is int and type(w) is int and h > 0 and w > 0 for h, w in hw):
        size = np.array(hw, np.int64).reshape(-1, 2)
    else:
        for i, (h, w) in enumerate(hw):
            h, w = plain(h), plain(w)
            if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
                size[i] = (h, w)
    return np.array(sids, np.int64), window.astype(np.int64), size


def _checked_columns(extras: list[dict[str, Any]], file: str | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The provenance columns read record by record; InputError at the first bad one."""
    n = len(extras)
    source = np.zeros(n, np.int64)
    window = np.zeros((n, 4), np.int64)
    size = np.full((n, 2), -1, np.int64)
    for i, extra in enumerate(extras):
        sid = extra.get("source_image_id")
        sid = sid if type(sid) is int else plain(sid)
        win = _int_list(extra.get("source_window"), 4)
        bad_id = isinstance(sid, bool) or not isinstance(sid, int)
        if bad_id or win is None:
            what = "source_image_id (an integer)" if bad_id else "source_window [x, y, w, h]"
            raise InputError(file, f"images[{i}]",
                             f"no valid {what}: expected a tile written by cocokit slice "
                             "(or compat.sahi.slice_coco), which records where it came from")
        source[i] = sid
        window[i] = win
        w, h = plain(extra.get("source_width")), plain(extra.get("source_height"))
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            size[i] = (h, w)
    return source, window, size


def tile_origins(tiles: Dataset) -> TileOrigins:
    """The provenance of every tile of ``tiles`` (see the module docstring)."""
    n = len(tiles.images)
    if n == 0:
        raise InputError(tiles.source, "images", "no images: expected the tiles that "
                         "cocokit slice wrote")
    extras = [e or {} for e in tiles.images.extra]
    fast = _fast_columns(extras)
    if fast is not None:
        source, window, size = fast
    else:
        source, window, size = _checked_columns(extras, tiles.source)
    # a source without a recorded size ends where its tiles end
    ends_h = window[:, 1] + window[:, 3]
    ends_w = window[:, 0] + window[:, 2]
    uniq, inv = np.unique(source, return_inverse=True)
    ext_h = np.zeros(len(uniq), np.int64)
    ext_w = np.zeros(len(uniq), np.int64)
    np.maximum.at(ext_h, inv, ends_h)
    np.maximum.at(ext_w, inv, ends_w)
    missing = size[:, 0] < 0
    size[missing, 0] = ext_h[inv[missing]]
    size[missing, 1] = ext_w[inv[missing]]
    return TileOrigins(tiles.images.id.copy(), source, window, size)


def _missing_boxes(results: Results, heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """The boxes (xywh), those missing taken from the segmentation (NaN if none)."""
    bbox = np.asarray(results.bbox, np.float64).reshape(-1, 4).copy()
    need = np.flatnonzero(~np.isfinite(bbox).all(axis=1))
    need = need[present(results.segmentation[need])]
    if len(need):
        seg = object_array([plain(results.segmentation[i]) for i in need.tolist()])
        try:
            bbox[need] = segmentation_bboxes(seg, heights[need], widths[need])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(results.source, f"results[{int(need[0])}].segmentation",
                             f"unreadable segmentation: {e}") from None
    return bbox


def _moved_segmentation(seg: Any, x: int, y: int, height: int, width: int,
                        file: str | None, i: int) -> Any:
    value = plain(seg)
    where = f"results[{i}].segmentation"
    if isinstance(value, dict):
        try:
            return paste_rle(value, x, y, height, width)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(file, where, f"cannot move the RLE mask into its source image: "
                             f"{e}") from None
    if isinstance(value, list):
        try:
            out = []
            for ring in polygon_rings(value):
                r = np.asarray(ring, np.float64).reshape(-1, 2) + np.array([x, y], np.float64)
                out.append([v if not float(v).is_integer() else int(v)
                            for v in r.reshape(-1).tolist()])
            return out
        except (TypeError, ValueError) as e:
            raise InputError(file, where, f"expected polygons [[x, y, ...], ...]: {e}") from None
    raise InputError(file, where, f"expected polygons or an RLE, found {type(value).__name__}")


def move_to_sources(results: Results, origins: TileOrigins, *,
                    tiles: str | None = None) -> tuple[Results, np.ndarray]:
    """The results moved from their tiles into their source images, with the source
    image size ``(height, width)`` of each row."""
    rows = origins.rows_of(np.asarray(results.image_id, np.int64), results.source, tiles)
    win = origins.window[rows]
    size = origins.size[rows]
    bbox = _missing_boxes(results, win[:, 3], win[:, 2])
    x0 = bbox[:, 0] + win[:, 0]
    y0 = bbox[:, 1] + win[:, 1]
    x1 = np.minimum(x0 + bbox[:, 2], size[:, 1])
    y1 = np.minimum(y0 + bbox[:, 3], size[:, 0])
    x0, y0 = np.maximum(x0, 0.0), np.maximum(y0, 0.0)
    moved = np.stack([x0, y0, np.maximum(x1 - x0, 0.0), np.maximum(y1 - y0, 0.0)], axis=1)
    seg = results.segmentation.copy()
    for i in np.flatnonzero(present(seg)).tolist():
        seg[i] = _moved_segmentation(seg[i], int(win[i, 0]), int(win[i, 1]),
                                     int(size[i, 0]), int(size[i, 1]), results.source, i)
    out = Results(origins.source_id[rows], np.asarray(results.category_id, np.int64), moved,
                  np.asarray(results.score, np.float64), seg, results.extra, results.source)
    return out, size


def _union_mask(parts: list[Any], height: int, width: int) -> dict[str, Any] | None:
    """The union of the masks (RLE dicts or polygons) as one RLE; None when none has
    any (SAHI writes ``"segmentation": []`` for a box)."""
    rles = []
    for seg in parts:
        value = plain(seg)
        if isinstance(value, list):
            value = polygon_rings(value)
        rle = segmentation_rle(value, height, width)
        if rle is not None:
            rles.append(rle)
    if not rles:
        return None
    merged = mask_api().merge(rles, intersect=False)
    return {"size": [height, width], "counts": merged["counts"].decode("ascii")}


def merged_results(results: Results, merged: Merged, sizes: np.ndarray) -> Results:
    """Results of a merge: one row per kept detection, masks of merged parts united."""
    keep = merged.keep
    bbox = merged.bbox.copy()
    bbox[:, 2:] -= bbox[:, :2]
    seg = results.segmentation[keep]
    has_mask = present(results.segmentation)
    with_mask = has_mask[merged.member]
    if with_mask.any():
        owner, member = merged.member_of[with_mask], merged.member[with_mask]
        order = np.argsort(owner, kind="stable")
        owner, member = owner[order], member[order]
        cuts = np.flatnonzero(np.diff(owner)) + 1
        for k, parts in zip(np.unique(owner).tolist(), np.split(member, cuts), strict=True):
            masks = [results.segmentation[r] for r in parts.tolist()]
            r = int(keep[k])
            if seg[k] is not None:
                masks.insert(0, seg[k])
            h, w = (int(v) for v in sizes[r])
            if h <= 0 or w <= 0:  # a whole-image detection of an image with no tiles
                rle_sizes = [plain(m)["size"] for m in masks if isinstance(plain(m), dict)]
                if not rle_sizes:
                    continue  # no size to draw polygons in: the kept part's mask stays
                h, w = (int(v) for v in rle_sizes[0])
            try:
                union = _union_mask(masks, h, w)
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(results.source, f"results[{r}].segmentation",
                                 f"cannot merge the masks: {e}") from None
            if union is not None:
                seg[k] = union
    extra = results.extra[keep]
    for k in np.unique(merged.member_of).tolist():  # an "area" key follows the merge
        rec = extra[k]
        if not rec or "area" not in rec:
            continue
        if seg[k] is None:
            area = float(bbox[k, 2] * bbox[k, 3])
        elif isinstance(seg[k], dict) and seg[k] is not results.segmentation[keep[k]]:
            area = rle_area(seg[k])
        else:
            continue  # the kept part's own mask, and its area, stay
        extra[k] = {**rec, "area": area}
    return Results(results.image_id[keep], merged.category_id, bbox, merged.score, seg,
                   extra, results.source)


def _concat(a: Results, b: Results) -> Results:
    return Results(
        np.concatenate([a.image_id, np.asarray(b.image_id, np.int64)]),
        np.concatenate([a.category_id, np.asarray(b.category_id, np.int64)]),
        np.concatenate([a.bbox, np.asarray(b.bbox, np.float64).reshape(-1, 4)]),
        np.concatenate([a.score, np.asarray(b.score, np.float64)]),
        np.concatenate([a.segmentation, b.segmentation]),
        np.concatenate([a.extra, b.extra]),
        a.source,
    )


def unslice_results(
    results: Results,
    tiles: Dataset,
    *,
    merge: Merge = "greedy-nmm",
    match_metric: MatchMetric = "ios",
    match_threshold: float = 0.5,
    class_agnostic: bool = False,
    full: Results | None = None,
) -> Results:
    """Move detections made on tiles back into their source images and merge the
    duplicates overlapping tiles produce (see the module docstring).

    ``results`` are on the tile images of ``tiles`` (the COCO file slice wrote);
    ``full``, if given, are detections on the source images themselves, merged in too.
    Returns new :class:`~cocokit.io.results.Results` on the source image ids.

    >>> out = unslice_results(load_results("tile_preds.json"), load("tiles.json"))  # doctest: +SKIP
    """
    check_options(merge, match_metric, match_threshold)
    origins = tile_origins(tiles)
    moved, sizes = move_to_sources(results, origins, tiles=tiles.source)
    if full is not None and len(full):
        fid = np.asarray(full.image_id, np.int64)
        known = np.isin(fid, origins.source_id)
        f_size = np.full((len(full), 2), -1, np.int64)
        src_sizes = dict(zip(origins.source_id.tolist(), map(tuple, origins.size.tolist()),
                             strict=False))
        for i in np.flatnonzero(known).tolist():
            f_size[i] = src_sizes[int(fid[i])]
        f_bbox = _missing_boxes(full, f_size[:, 0], f_size[:, 1])
        full = Results(fid, np.asarray(full.category_id, np.int64), f_bbox,
                       np.asarray(full.score, np.float64), full.segmentation, full.extra,
                       full.source)
        moved = _concat(moved, full)
        sizes = np.concatenate([sizes, f_size])
    bbox = moved.bbox
    xyxy = np.concatenate([bbox[:, :2], bbox[:, :2] + bbox[:, 2:]], axis=1)
    merged = merge_detections(xyxy, moved.score, moved.category_id, moved.image_id,
                              merge=merge, match_metric=match_metric,
                              match_threshold=match_threshold, class_agnostic=class_agnostic)
    return merged_results(moved, merged, sizes)

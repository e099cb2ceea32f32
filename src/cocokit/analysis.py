"""Error analysis of detection results: a TIDE-style breakdown, confusion, worst images.

:func:`analyse_results` matches the detections of each image to its ground truth at IoU
0.5 (boxes, or masks with ``iou_type="segm"``; IoU as COCOeval computes it, with
pycocotools' ``mask.iou``), each image's detections taken by descending score and, as
COCOeval does, at most the last max-dets (100) of each category (:func:`coco_matches`,
which ``cocokit draw --iou`` uses too); a detection beyond them is left out of every count
(its category's true positives are then COCOeval's). Every detection that is not a true
positive gets exactly one error type, checked in this order:

* ``duplicate``: it overlaps (IoU >= 0.5) a ground truth of its own category that a
  higher-scoring detection already matched;
* ``localization``: right category, but its best IoU with one of that category is in
  [0.1, 0.5);
* ``classification``: wrong category: IoU >= 0.5 with a ground truth of another category;
* ``both``: wrong category and poorly placed: best IoU with another category in [0.1, 0.5);
* ``background``: IoU < 0.1 with every ground truth (it fired on nothing).

A ground truth no detection matched is ``missed`` unless a localization,
classification or both error points at it (the error already accounts for it: its best
overlap). Detections matching a crowd region (IoU >= 0.5, computed as COCOeval does for
crowds) are ignored, as are crowd ground truths (any ``iscrowd`` other than 0, as COCOeval
reads it: :attr:`~cocokit.dataset.Annotations.crowd`). These are counts (the share of each
kind of mistake), not TIDE's ΔAP.

The confusion matrix counts, at IoU 0.5 and regardless of category, which category each
ground truth was detected as (rows: ground truth, columns: prediction; the last row
holds detections on no object, the last column missed objects). The worst images are
those with the most errors (false positives + missed).

:func:`write_analysis_report` writes it with the precision-recall curves of the
evaluation (per object size, and per category for the most frequent ones) as one
self-contained HTML page in the style of ``cocokit stats --html``.
"""

from __future__ import annotations

import dataclasses
import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .dataset import Dataset, lookup, plain
from .errors import OptionError
from .geometry import mask_api, segmentation_rle
from .io.results import Results

if TYPE_CHECKING:  # pragma: no cover
    from .evaluation import Evaluation

__all__ = ["ERROR_TYPES", "Analysis", "analyse_results", "coco_matches",
           "write_analysis_report"]

#: The error types, in the order they are checked (``missed`` is of ground truths).
ERROR_TYPES = ("duplicate", "localization", "classification", "both", "background", "missed")
FG_IOU = 0.5
BG_IOU = 0.1
WORST_IMAGES = 20
_TP, _IGNORED = "tp", "ignored"


@dataclasses.dataclass(frozen=True)
class Analysis:
    """The outcome of :func:`analyse_results` (see the module docstring)."""

    iou_type: str
    true_positives: int
    errors: dict[str, int]
    errors_per_category: list[dict[str, Any]]
    category_ids: list[int]
    category_names: list[str]
    confusion: np.ndarray  # (K + 1, K + 1): GT rows, predicted columns, last = none
    worst_images: list[dict[str, Any]]
    detections: int
    ground_truths: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "iou_thresholds": {"foreground": FG_IOU, "background": BG_IOU},
            "true_positives": self.true_positives,
            "errors": self.errors,
            "errors_per_category": self.errors_per_category,
            "confusion": {"category_ids": self.category_ids,
                          "matrix": self.confusion.tolist()},
            "worst_images": self.worst_images,
            "detections": self.detections,
            "ground_truths": self.ground_truths,
        }

    def lines(self) -> list[str]:
        """A short text summary."""
        fp = sum(v for k, v in self.errors.items() if k != "missed")
        out = [f"error analysis (IoU {FG_IOU}): {self.true_positives} true positives, "
               f"{fp} false positives, {self.errors['missed']} missed of "
               f"{self.ground_truths} objects"]
        for k in ERROR_TYPES:
            out.append(f"  {k:<15} {self.errors[k]}")
        if self.worst_images:
            w = self.worst_images[0]
            out.append(f"worst image: {w['file_name']} (id {w['image_id']}): "
                       f"{w['false_positives']} false positives, {w['missed']} missed")
        return out


def _geometry(iou_type: str, boxes: np.ndarray, segs: np.ndarray, h: int, w: int) -> Any:
    if iou_type == "bbox":
        return boxes.tolist()
    mask = mask_api()
    out = []
    for raw, box in zip(segs, boxes, strict=True):
        rle = segmentation_rle(plain(raw), h, w)
        if rle is None:  # no mask: its box as a polygon, as loadRes makes it
            x, y, bw, bh = (float(v) for v in box)
            rle = mask.frPyObjects([[x, y, x, y + bh, x + bw, y + bh, x + bw, y]], h, w)[0]
        out.append(rle)
    return out


def _iou(iou_type: str, dt: Any, gt: Any, crowd: np.ndarray) -> np.ndarray:
    if not len(dt) or not len(gt):
        return np.zeros((len(dt), len(gt)))
    return np.asarray(mask_api().iou(dt, gt, crowd.astype(np.uint8).tolist()), np.float64)


def coco_matches(iou: np.ndarray, crowd: np.ndarray, threshold: float, *,
                 same: np.ndarray | None = None,
                 ignore: np.ndarray | None = None) -> np.ndarray:
    """COCOeval's greedy matching of one image's detections to its ground truth
    (pycocotools ``COCOeval.evaluateImg``), on their IoU matrix.

    ``iou`` is (detections, ground truths), detections sorted by score, highest first,
    crowd columns computed as COCOeval does (``mask.iou`` with the crowd flags: the share
    of the detection inside the crowd). ``same`` (same shape) says which pairs may match
    (same category); all when None. ``ignore`` marks more ground truth COCOeval ignores
    (outside an area range); crowds always are. Each detection in turn takes, among the
    allowed ground truth not yet taken, the one it overlaps most with IoU at least
    ``threshold`` (the last of equals, as COCOeval's loop keeps it), looking at ignored
    ground truth only when no other qualifies. A crowd is never taken for good: any
    number of detections can match it. A detection matched to ignored ground truth is
    neither a true nor a false positive; unmatched ignored ground truth is not missed.
    Returns the index of the ground truth each detection matched, -1 for none.
    """
    n_d, n_g = iou.shape
    crowd = np.asarray(crowd, bool).reshape(-1)
    ign = crowd if ignore is None else crowd | np.asarray(ignore, bool).reshape(-1)
    out = np.full(n_d, -1, np.int64)
    if not n_d or not n_g:
        return out
    free = np.ones(n_g, bool)
    thr = min(float(threshold), 1 - 1e-10)
    last = n_g - 1
    for i in range(n_d):
        row = iou[i]
        ok = (free | crowd) & (row >= thr)
        if same is not None:
            ok &= same[i]
        for group in (ok & ~ign, ok & ign):
            if group.any():
                j = last - int(np.argmax(np.where(group, row, -1.0)[::-1]))
                out[i] = j
                free[j] = False
                break
    return out


def analyse_results(
    dataset: Dataset,
    results: Results,
    *,
    iou_type: str = "bbox",
    evaluation: Evaluation | None = None,
    max_dets: int | None = None,
) -> Analysis:
    """The error breakdown, confusion matrix and worst images of ``results`` (checked
    against ``dataset`` already: :func:`cocokit.load_results` with the dataset)."""
    if iou_type not in ("bbox", "segm"):
        raise OptionError("--iou-type", iou_type, "bbox or segm for --analyse")
    limit = max_dets or (evaluation.max_dets[-1] if evaluation is not None else 100)
    cat_ids = dataset.categories.id.astype(np.int64)
    k_of_gt = lookup(cat_ids, dataset.annotations.category_id)
    k_of_dt = lookup(cat_ids, results.category_id)
    n_cat = len(cat_ids)
    anns = dataset.annotations
    crowd_all = anns.crowd
    img_of_gt = dataset.image_index
    img_of_dt = lookup(dataset.images.id, results.image_id)
    gt_order = np.argsort(img_of_gt, kind="stable")
    gt_starts = np.searchsorted(img_of_gt[gt_order], np.arange(len(dataset.images) + 1))
    dt_order = _by_score(img_of_dt, k_of_dt, results.score, limit)
    dt_starts = np.searchsorted(img_of_dt[dt_order], np.arange(len(dataset.images) + 1))

    errors = dict.fromkeys(ERROR_TYPES, 0)
    per_cat = np.zeros((n_cat, len(ERROR_TYPES) + 1), np.int64)  # + true positives
    col = {k: i for i, k in enumerate(ERROR_TYPES)}
    confusion = np.zeros((n_cat + 1, n_cat + 1), np.int64)
    worst: list[tuple[int, int, int, int, int, int]] = []
    tps = 0
    heights, widths = dataset.images.height, dataset.images.width
    for r in range(len(dataset.images)):
        g = gt_order[gt_starts[r]:gt_starts[r + 1]]
        d = dt_order[dt_starts[r]:dt_starts[r + 1]]
        if not len(g) and not len(d):
            continue
        h, w = int(heights[r]), int(widths[r])
        crowd = crowd_all[g]
        iou = _iou(iou_type, _geometry(iou_type, results.bbox[d], results.segmentation[d], h, w),
                   _geometry(iou_type, anns.bbox[g], anns.segmentation[g], h, w), crowd)
        gk, dk = k_of_gt[g], k_of_dt[d]
        same = dk[:, None] == gk[None, :]
        match = coco_matches(iou, crowd, FG_IOU, same=same)
        matched = np.zeros(len(g), bool)
        matched[match[match >= 0]] = True
        accounted = np.zeros(len(g), bool)
        fp = 0
        for i in range(len(d)):
            row = iou[i]
            if match[i] >= 0:
                if not crowd[match[i]]:
                    tps += 1
                    per_cat[dk[i], -1] += 1
                continue  # on a crowd region: ignored, as COCOeval does
            own = np.where(same[i] & ~crowd, row, -1.0)
            other = np.where(~same[i] & ~crowd, row, -1.0)
            best_own = float(own.max()) if len(g) else -1.0
            best_other = float(other.max()) if len(g) else -1.0
            if best_own >= FG_IOU:
                kind, target = "duplicate", -1
            elif best_own >= BG_IOU:
                kind, target = "localization", int(np.argmax(own))
            elif best_other >= FG_IOU:
                kind, target = "classification", int(np.argmax(other))
            elif best_other >= BG_IOU:
                kind, target = "both", int(np.argmax(other))
            else:
                kind, target = "background", -1
            if target >= 0:
                accounted[target] = True
            errors[kind] += 1
            per_cat[dk[i], col[kind]] += 1
            fp += 1
        missed = ~matched & ~crowd & ~accounted
        errors["missed"] += int(missed.sum())
        np.add.at(per_cat[:, col["missed"]], gk[missed], 1)
        _confuse(confusion, iou, gk, dk, crowd, n_cat)
        worst.append((fp + int(missed.sum()), fp, int(missed.sum()), r, len(g) - int(crowd.sum()),
                      len(d)))
    worst.sort(key=lambda t: (-t[0], t[3]))
    names = list(dataset.categories.name)
    return Analysis(
        iou_type, tps, errors,
        [{"id": int(cat_ids[k]), "name": names[k], "true_positives": int(per_cat[k, -1]),
          **{t: int(per_cat[k, col[t]]) for t in ERROR_TYPES}} for k in range(n_cat)
         if per_cat[k].any()],
        cat_ids.tolist(), names, confusion,
        [{"image_id": int(dataset.images.id[r]), "file_name": str(dataset.images.file_name[r]),
          "errors": e, "false_positives": f, "missed": m, "ground_truths": n_g,
          "detections": n_d} for e, f, m, r, n_g, n_d in worst[:WORST_IMAGES] if e],
        len(results), int((~crowd_all).sum()),
    )


def _by_score(image: np.ndarray, category: np.ndarray, score: np.ndarray,
              limit: int) -> np.ndarray:
    """The detections by image row, then by descending score (equals in input order),
    keeping the ``limit`` highest of each (image, category), as COCOeval's
    ``evaluateImg`` cuts them to maxDets."""
    by_cat = np.lexsort((-score, category, image))
    n = len(by_cat)
    first = np.ones(n, bool)
    first[1:] = ((image[by_cat][1:] != image[by_cat][:-1])
                 | (category[by_cat][1:] != category[by_cat][:-1]))
    starts = np.flatnonzero(first)
    rank = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    keep = np.zeros(len(score), bool)
    keep[by_cat[rank < limit]] = True
    order = np.lexsort((-score, image))
    return order[keep[order]]


def _confuse(confusion: np.ndarray, iou: np.ndarray, gk: np.ndarray, dk: np.ndarray,
             crowd: np.ndarray, n_cat: int) -> None:
    """Add one image to the confusion matrix: detections (already by score) matched
    greedily to any-category ground truths at IoU 0.5."""
    taken = crowd.copy()
    for i in range(len(dk)):
        row = np.where(taken, -1.0, iou[i]) if iou.shape[1] else iou[i]
        if len(row) and row.max() >= FG_IOU:
            j = int(np.argmax(row))
            taken[j] = True
            confusion[gk[j], dk[i]] += 1
        elif not (len(row) and (iou[i][crowd] >= FG_IOU).any()):
            confusion[n_cat, dk[i]] += 1
    np.add.at(confusion[:, n_cat], gk[~taken], 1)


# -- the HTML report ---------------------------------------------------------------------

TOP_PR_CATEGORIES = 12


def _pr_sizes(fig: Any, ev: Evaluation) -> None:
    rec = np.linspace(0, 1, ev.precision.shape[1])
    axes = fig.subplots(1, 2)
    for ax, (title, t) in zip(axes, (("IoU 0.50", 0), ("IoU 0.75", 5)), strict=True):
        for a, name in enumerate(ev.area_ranges):
            p = ev.precision[t, :, :, a, -1]
            valid = (p > -1).all(axis=0)
            if valid.any():
                ax.plot(rec, p[:, valid].mean(axis=1), label=name)
        ax.set_title(title)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
    fig.set_size_inches(10, 4)


def _pr_categories(fig: Any, ev: Evaluation, gt_counts: dict[int, int]) -> None:
    rec = np.linspace(0, 1, ev.precision.shape[1])
    order = sorted(range(len(ev.category_ids)),
                   key=lambda k: -gt_counts.get(ev.category_ids[k], 0))[:TOP_PR_CATEGORIES]
    cols = 4
    rows = max(1, -(-len(order) // cols))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, k in zip(axes, order, strict=False):
        for t, label in ((0, "IoU .50"), (5, "IoU .75")):
            p = ev.precision[t, :, k, 0, -1]
            if (p > -1).all():
                ax.plot(rec, p, label=label)
        ax.set_title(f"{ev.category_names[k]} ({gt_counts.get(ev.category_ids[k], 0)})",
                     fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
    for ax in axes[len(order):]:
        ax.set_axis_off()
    if len(order):
        axes[0].legend(fontsize=7)
    fig.set_size_inches(11, 2.6 * rows)


def _errors_plot(fig: Any, an: Analysis) -> None:
    ax = fig.subplots()
    values = [an.errors[k] for k in ERROR_TYPES]
    ax.barh(list(ERROR_TYPES)[::-1], values[::-1], color="#3b6ea8")
    for y, v in enumerate(values[::-1]):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    ax.set_xlabel("count")
    fig.set_size_inches(6, 3)


def _confusion_plot(fig: Any, an: Analysis, top: int = 30) -> None:
    m = an.confusion
    n = len(an.category_ids)
    used = np.argsort(-(m[:n].sum(axis=1) + m[:, :n].sum(axis=0)), kind="stable")[:top]
    idx = np.append(np.sort(used), n)
    sub = m[np.ix_(idx, idx)].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(sub / sub.sum(axis=1, keepdims=True))
    ax = fig.subplots()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    labels = [an.category_names[i] for i in idx[:-1]] + ["(none)"]
    ax.set_xticks(range(len(idx)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(idx)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    size = 3 + 0.22 * len(idx)
    fig.set_size_inches(size, size)


def render_analysis(an: Analysis, ev: Evaluation, dataset: Dataset | None = None,
                    title: str | None = None) -> str:
    """The analysis as one self-contained HTML document."""
    from .report import figure_html, html_page, new_figure, png_bytes

    gt_counts: dict[int, int] = {}
    if dataset is not None:
        ids, counts = np.unique(dataset.annotations.category_id, return_counts=True)
        gt_counts = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    plots = [
        ("errors", _errors_plot, (an,), "Errors by type (IoU 0.5; see docs/predictions.md)"),
        ("pr_sizes", _pr_sizes, (ev,), "Precision-recall per object size (mean over categories)"),
        ("pr_categories", _pr_categories, (ev, gt_counts),
         f"Precision-recall of the {TOP_PR_CATEGORIES} categories with most ground truth"),
        ("confusion", _confusion_plot, (an,),
         "Confusion at IoU 0.5 (rows: ground truth, normalized; (none): missed / background)"),
    ]
    parts = ["<h2>Summary</h2><pre>" + html.escape("\n".join(ev.summary_lines())) + "</pre>",
             "<pre>" + html.escape("\n".join(an.lines())) + "</pre>",
             '<h2>Plots</h2><div class="grid">']
    for key, plot, args, caption in plots:
        fig = new_figure()
        plot(fig, *args)  # type: ignore[operator]
        parts.append(figure_html(key, png_bytes(fig), caption, wide=key != "errors"))
    parts.append("</div><h2>Worst images</h2><table><thead><tr>"
                 '<th class="name">file_name</th><th>image id</th><th>errors</th>'
                 "<th>false positives</th><th>missed</th><th>objects</th><th>detections</th>"
                 "</tr></thead><tbody>")
    for w in an.worst_images:
        parts.append(f'<tr><td class="name">{html.escape(w["file_name"])}</td>'
                     f'<td>{w["image_id"]}</td><td>{w["errors"]}</td>'
                     f'<td>{w["false_positives"]}</td><td>{w["missed"]}</td>'
                     f'<td>{w["ground_truths"]}</td><td>{w["detections"]}</td></tr>')
    parts.append("</tbody></table>")
    return html_page(title or "cocokit error analysis", parts)


def write_analysis_report(an: Analysis, ev: Evaluation, path: str | os.PathLike[str],
                          dataset: Dataset | None = None) -> Path:
    """Write :func:`render_analysis` to ``path`` atomically."""
    from .io.atomic import atomic_write

    out = Path(path)
    atomic_write(out, [render_analysis(an, ev, dataset).encode("utf-8")])
    return out

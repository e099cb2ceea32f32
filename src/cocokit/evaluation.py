"""COCO evaluation of detection results: pycocotools' COCOeval numbers, from loaded data.

:func:`evaluate` takes the ground truth (a :class:`~cocokit.Dataset` or a path) and the
results (:class:`~cocokit.io.results.Results`, a path or a list of records), checks the
results against the ground truth (so a wrong image or category id is one clear error
with its JSON path, not pycocotools' "Results do not correspond to current coco set"),
and runs the backend's own COCOeval on them:

* ``pycocotools`` (the default): ``COCO()`` built from the loaded dataset's dict (no
  temporary file) and ``loadRes`` of the result records, exactly as a file would give;
* ``faster-coco-eval`` (``pip install 'cocokit[eval]'``): its ``COCOeval_faster``;
* ``hotcoco``: its pycocotools-compatible ``COCOeval``.

The summary (``stats``) is the backend's, in pycocotools' order: 12 numbers for bbox and
segm, 10 for keypoints. The backends print as they go; that is silenced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from .dataset import Dataset
from .errors import InputError, MissingDependency, OptionError
from .io.coco import read_coco, to_dict
from .io.results import Results, load_results

__all__ = [
    "BACKENDS",
    "DEFAULT_AREA_RANGES",
    "Evaluation",
    "IouType",
    "evaluate",
    "parse_area_range",
    "parse_max_dets",
    "summary_labels",
]

IouType = Literal["bbox", "segm", "keypoints"]
Backend = Literal["pycocotools", "faster-coco-eval", "hotcoco"]
#: backend name -> (module to import, extra that installs it)
BACKENDS: dict[str, tuple[str, str]] = {
    "pycocotools": ("pycocotools", "eval"),
    "faster-coco-eval": ("faster_coco_eval", "eval"),
    "hotcoco": ("hotcoco", "eval"),
}
#: COCOeval's area ranges (px²), in its order.
DEFAULT_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e10),
}
_DEFAULT_MAX_DETS = {"bbox": (1, 10, 100), "segm": (1, 10, 100), "keypoints": (20,)}
#: COCOeval's keypoint area ranges (no "small": keypoints are not annotated on them).
KEYPOINT_AREA_RANGES = {k: v for k, v in DEFAULT_AREA_RANGES.items() if k != "small"}


def parse_max_dets(text: str | Sequence[int] | None, iou_type: str) -> tuple[int, ...]:
    """``"1,10,100"`` as a tuple; bbox and segm take three increasing numbers (COCOeval's
    summary reads three), keypoints only 20 (its summary is fixed to 20)."""
    default = _DEFAULT_MAX_DETS[iou_type]
    if text is None:
        return default
    try:
        values = tuple(int(v) for v in (text.split(",") if isinstance(text, str) else text))
    except ValueError:
        raise OptionError("--max-dets", text, "comma-separated integers, e.g. 1,10,100") from None
    if iou_type == "keypoints":
        if values != default:
            raise OptionError("--max-dets", text, "20 for keypoints (COCOeval's keypoint "
                              "summary reads 20 detections per image)")
        return values
    if len(values) != 3 or any(v < 1 for v in values) or list(values) != sorted(values):
        raise OptionError("--max-dets", text, "three increasing positive integers, e.g. 1,10,100")
    return values


def parse_area_range(text: str) -> tuple[str, tuple[float, float]]:
    """``NAME=MIN:MAX`` (px²; an empty MAX is no limit) as ``(name, (min, max))``."""
    name, sep, rng = text.partition("=")
    lo, sep2, hi = rng.partition(":")
    try:
        if not (sep and sep2 and name.strip()):
            raise ValueError
        bounds = (float(lo) if lo.strip() else 0.0, float(hi) if hi.strip() else 1e10)
    except ValueError:
        raise OptionError("--area-range", text, "NAME=MIN:MAX in px², e.g. tiny=0:256") from None
    if not (0 <= bounds[0] < bounds[1]):
        raise OptionError("--area-range", text, "0 <= MIN < MAX")
    return name.strip(), bounds


def summary_labels(iou_type: str, max_dets: Sequence[int]) -> list[tuple[int, float | None,
                                                                           str, int]]:
    """What each number of the summary is, as pycocotools' ``summarize`` computes it:
    ``(1 for AP / 0 for AR, IoU threshold or None for 0.50:0.95, area range, max dets)``."""
    if iou_type == "keypoints":
        return [(1, None, "all", 20), (1, 0.5, "all", 20), (1, 0.75, "all", 20),
                (1, None, "medium", 20), (1, None, "large", 20), (0, None, "all", 20),
                (0, 0.5, "all", 20), (0, 0.75, "all", 20), (0, None, "medium", 20),
                (0, None, "large", 20)]
    m0, m1, m2 = max_dets
    return [(1, None, "all", 100), (1, 0.5, "all", m2), (1, 0.75, "all", m2),
            (1, None, "small", m2), (1, None, "medium", m2), (1, None, "large", m2),
            (0, None, "all", m0), (0, None, "all", m1), (0, None, "all", m2),
            (0, None, "small", m2), (0, None, "medium", m2), (0, None, "large", m2)]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The outcome of :func:`evaluate`.

    ``stats`` is COCOeval's summary (pycocotools' order, see :func:`summary_labels`);
    ``precision`` ``[T, R, K, A, M]`` and ``recall`` ``[T, K, A, M]`` its accumulated
    arrays (IoU thresholds, recall thresholds, categories, area ranges, max dets; -1
    where there is no ground truth); ``area_ranges`` the ranges evaluated, in the
    arrays' order; ``per_category`` (when asked) AP, AP50, AP75 and AR per category.
    """

    iou_type: str
    backend: str
    stats: list[float]
    max_dets: tuple[int, ...]
    area_ranges: dict[str, tuple[float, float]]
    category_ids: list[int]
    category_names: list[str]
    iou_thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    per_category: list[dict[str, Any]] | None = None
    images: int = 0
    detections: int = 0

    def range_metrics(self, name: str) -> dict[str, float]:
        """AP (0.50:0.95) and AR at the last max dets for one area range."""
        a = list(self.area_ranges).index(name)
        return {"AP": _mean(self.precision[:, :, :, a, -1]),
                "AR": _mean(self.recall[:, :, a, -1])}

    def summary_lines(self) -> list[str]:
        """The summary as pycocotools prints it."""
        lines = []
        for (ap, thr, area, md), value in zip(summary_labels(self.iou_type, self.max_dets),
                                              self.stats, strict=True):
            title = "Average Precision" if ap else "Average Recall"
            kind = "(AP)" if ap else "(AR)"
            iou = (f"{self.iou_thresholds[0]:0.2f}:{self.iou_thresholds[-1]:0.2f}"
                   if thr is None else f"{thr:0.2f}")
            lines.append(f" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | "
                         f"maxDets={md:>3d} ] = {value:0.3f}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``stats`` and what they are; the per-category table when asked;
        the AP/AR of area ranges other than COCOeval's four."""
        out: dict[str, Any] = {
            "iou_type": self.iou_type,
            "backend": self.backend,
            "stats": self.stats,
            "stat_names": [_stat_name(lab) for lab in summary_labels(self.iou_type,
                                                                       self.max_dets)],
            "max_dets": list(self.max_dets),
            "area_ranges": {k: list(v) for k, v in self.area_ranges.items()},
            "images": self.images,
            "detections": self.detections,
        }
        default = KEYPOINT_AREA_RANGES if self.iou_type == "keypoints" else DEFAULT_AREA_RANGES
        extra = [n for n in self.area_ranges if n not in default
                 or self.area_ranges[n] != default[n]]
        if extra:
            out["area_range_metrics"] = {n: self.range_metrics(n) for n in extra}
        if self.per_category is not None:
            out["per_category"] = self.per_category
        return out


def _stat_name(label: tuple[int, float | None, str, int]) -> str:
    ap, thr, area, md = label
    iou = "" if thr is None else str(round(thr * 100))
    return f"{'AP' if ap else 'AR'}{iou}_{area}_{md}"


def _mean(s: np.ndarray) -> float:
    valid = s[s > -1]
    return float(np.mean(valid)) if valid.size else -1.0


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Silence what the backends print on stdout (Python's print and, for a native
    extension, file descriptor 1 when there is one)."""
    saved = None
    try:
        fd = sys.stdout.fileno()
        sys.stdout.flush()
        saved = os.dup(fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fd = -1
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, fd)
            os.close(saved)


def _backend(name: str) -> tuple[Any, Any]:
    """(COCO class, COCOeval class) of a backend."""
    if name not in BACKENDS:
        raise OptionError("--backend", name, "one of " + ", ".join(BACKENDS))
    module, extra = BACKENDS[name]
    try:
        if name == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval
            return COCO, COCOeval
        if name == "faster-coco-eval":
            from faster_coco_eval import COCO as FCOCO
            from faster_coco_eval import COCOeval_faster
            return FCOCO, COCOeval_faster
        from hotcoco import COCO as HCOCO
        from hotcoco import COCOeval as HCOCOeval
        return HCOCO, HCOCOeval
    except ImportError:
        raise MissingDependency(module, extra) from None


def _ground_truth(coco_cls: Any, backend: str, gt: Mapping[str, Any]) -> Any:
    if backend == "pycocotools":
        coco = coco_cls()
        coco.dataset = dict(gt)
        coco.createIndex()
        return coco
    return coco_cls(dict(gt))


def _check_kind(results: Results, iou_type: str) -> None:
    if iou_type == "segm" and len(results) and not results.has_segmentation:
        raise InputError(results.source, "results[0].segmentation",
                         "--iou-type segm needs results with a segmentation; these have "
                         "boxes only (use --iou-type bbox)")
    if iou_type == "keypoints" and len(results) and "keypoints" not in results.extra[0]:
        raise InputError(results.source, "results[0].keypoints",
                         "--iou-type keypoints needs results with keypoints")


def evaluate(
    gt: Dataset | str | os.PathLike[str],
    results: Results | str | os.PathLike[str] | Sequence[Mapping[str, Any]],
    *,
    iou_type: IouType = "bbox",
    max_dets: Sequence[int] | str | None = None,
    area_ranges: Mapping[str, tuple[float, float]] | None = None,
    per_category: bool = False,
    backend: Backend = "pycocotools",
    gt_dict: Mapping[str, Any] | None = None,
    files: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
) -> Evaluation:
    """Evaluate ``results`` against the ground truth ``gt`` with COCOeval.

    ``max_dets`` replaces COCOeval's ``[1, 10, 100]``; ``area_ranges`` (name -> (min,
    max) in px²) replaces the range of the same name or adds one (reported by
    :meth:`Evaluation.range_metrics`). ``gt_dict`` is the ground truth as plain COCO data
    when the caller has it already (else made from ``gt``). ``files``: the ground truth
    and results files ``gt`` and ``results`` were read from; the native backends
    (faster-coco-eval, hotcoco) then read them themselves, which is quicker than taking
    Python data (pycocotools always gets the loaded data).

    Raises :class:`~cocokit.errors.InputError` when a result names an image or category
    that is not in ``gt`` (by JSON path), or has no geometry of ``iou_type``.
    """
    if iou_type not in _DEFAULT_MAX_DETS:
        raise OptionError("--iou-type", iou_type, "bbox, segm or keypoints")
    dets = parse_max_dets(max_dets, iou_type)
    coco_cls, eval_cls = _backend(backend)
    ds = gt if isinstance(gt, Dataset) else read_coco(gt)
    res = results if isinstance(results, Results) else load_results(results, ds)
    if isinstance(results, Results):
        from .io.results import check_results

        report = check_results(res, ds)
        if not report.ok:
            first = report.errors[0]
            raise InputError(res.source, first.path, first.message)
    if not len(res):
        raise InputError(res.source, None, "no results: nothing to evaluate")
    _check_kind(res, iou_type)
    with _silenced():
        if files is not None and backend != "pycocotools":  # checked above: the same data
            coco_gt = coco_cls(os.fspath(files[0]))
            coco_dt = coco_gt.loadRes(os.fspath(files[1]))
        else:
            coco_gt = _ground_truth(coco_cls, backend,
                                    gt_dict if gt_dict is not None else to_dict(ds))
            coco_dt = coco_gt.loadRes(res.to_records())
        ev = eval_cls(coco_gt, coco_dt, iou_type)
        # the backend's own parameters, changed only where asked
        ranges = {str(k): (float(a), float(b))
                  for k, (a, b) in zip(ev.params.areaRngLbl, ev.params.areaRng, strict=True)}
        if list(ev.params.maxDets) != list(dets):
            ev.params.maxDets = list(dets)
        if area_ranges:
            ranges.update(area_ranges)
            ev.params.areaRng = [list(v) for v in ranges.values()]
            ev.params.areaRngLbl = list(ranges)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    cat_ids = [int(c) for c in ev.params.catIds]
    names = dict(zip(ds.categories.id.tolist(), list(ds.categories.name), strict=True))
    precision = np.asarray(ev.eval["precision"])
    recall = np.asarray(ev.eval["recall"])
    thresholds = np.asarray(ev.params.iouThrs, np.float64)
    table = None
    if per_category:
        table = []
        t50 = np.flatnonzero(np.isclose(thresholds, 0.5))
        t75 = np.flatnonzero(np.isclose(thresholds, 0.75))
        for k, cid in enumerate(cat_ids):
            table.append({
                "id": cid, "name": names.get(cid, ""),
                "AP": _mean(precision[:, :, k, 0, -1]),
                "AP50": _mean(precision[t50, :, k, 0, -1]),
                "AP75": _mean(precision[t75, :, k, 0, -1]),
                "AR": _mean(recall[:, k, 0, -1]),
            })
    return Evaluation(
        iou_type, backend, [float(s) for s in ev.stats], dets, ranges, cat_ids,
        [names.get(c, "") for c in cat_ids], thresholds, precision, recall, table,
        images=len(ds.images), detections=len(res),
    )

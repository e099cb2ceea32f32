"""Time each transform on a train2017-sized dataset that is already in memory.

The file is loaded once (not timed); then every case runs ``--runs`` times and the
script prints the median and best wall time per case, with the size of the result.
The target is under 1 s per case (merge of two such datasets and stratified split
included).

The generated file has every box inside its image, so for ``clip`` copies are made
(not timed) in which 1% and 5% of the annotations (box and polygon alike) are moved to
straddle the right edge of their image: those are parsed and clipped by shapely, the
rest are checked and passed through.

Example::

    python benchmarks/generate.py /tmp/bench/train2017_like.json
    PYTHONPATH=src python benchmarks/bench_transforms.py /tmp/bench/train2017_like.json

Needs cocokit importable (installed, or ``PYTHONPATH=src``).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

import cocokit
from cocokit.geometry import parse_polygons
from cocokit.transforms import (
    clip,
    edit_categories,
    filter_dataset,
    merge,
    sample,
    split,
    upsample,
)


def straddling_copy(ds: cocokit.Dataset, share: float, seed: int = 0) -> cocokit.Dataset:
    """A copy where ``share`` of the polygon annotations straddle the right image edge."""
    anns = ds.annotations
    rng = np.random.default_rng(seed)
    crowd = anns.iscrowd == 1
    rows = np.flatnonzero(~crowd & (rng.random(len(anns)) < share))
    polys = parse_polygons(anns.segmentation, rows)
    width = ds.images.width[ds.image_index[rows]].astype(np.float64)
    box = anns.bbox.copy()
    dx = width - (box[rows, 0] + box[rows, 2] / 2)  # box centre onto the right edge
    box[rows, 0] += dx
    seg = anns.segmentation.copy()
    coords = polys.coords.copy()
    vertex_owner = np.repeat(np.repeat(np.arange(len(rows)), np.diff(polys.offsets)),
                             np.diff(polys.ring_offsets))
    coords[:, 0] += dx[vertex_owner]
    moved = type(polys)(coords, polys.ring_offsets, polys.offsets)
    values = np.empty(len(rows), dtype=object)
    # as JSON text, like segmentations read from a file
    values[:] = [msgspec.Raw(msgspec.json.encode(moved.to_coco(i))) for i in range(len(rows))]
    seg[rows] = values
    return ds.replace(annotations=anns.replace(bbox=box, segmentation=seg))


def time_case(fn: Callable[[], Any], runs: int) -> tuple[float, float, float, Any]:
    """Median and best wall time, median CPU time of this process, last result."""
    times, cpu = [], []
    result = None
    for _ in range(runs):
        result = None
        gc.collect()
        c = time.process_time()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(times), min(times), statistics.median(cpu), result


def describe(result: Any) -> str:
    if isinstance(result, tuple) and isinstance(result[0], dict):
        return ", ".join(f"{k} {len(v.images)}" for k, v in result[0].items()) + " images"
    ds = result[0]
    return f"{len(ds.images)} images, {len(ds.annotations)} annotations"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args(argv)
    t = time.perf_counter()
    ds = cocokit.load(a.file)
    print(f"loaded {a.file} in {time.perf_counter() - t:.1f} s: {ds}", file=sys.stderr)
    t = time.perf_counter()
    straddling = straddling_copy(ds, 0.05)
    straddling1 = straddling_copy(ds, 0.01)
    print(f"made the clip input in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    names = [str(n) for n in ds.categories.name]
    ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
    cases: dict[str, Callable[[], Any]] = {
        "merge 2 datasets (same file names: --on-duplicate prefix)":
            lambda: merge([ds, ds], duplicates="prefix"),
        "merge 2 datasets (--dedupe-images)": lambda: merge([ds, ds], dedupe_images=True),
        "merge 2 datasets (--renumber, --on-duplicate keep)":
            lambda: merge([ds, ds], duplicates="keep", renumber=True),
        "filter: drop 10 categories": lambda: filter_dataset(ds, drop_categories=names[:10]),
        "filter: area 32^2..96^2, w/h >= 4, no crowd, --drop-empty":
            lambda: filter_dataset(ds, area=(32**2, 96**2), min_width=4, min_height=4,
                                   crowd="drop", drop_empty=True),
        "filter: --drop-images, area >= 1000": lambda: filter_dataset(
            ds, area=(1000, None), unit="images"),
        "filter: image glob '*1.jpg'": lambda: filter_dataset(ds, image_globs="*1.jpg"),
        "sample: fraction 0.5 (seeded)": lambda: sample(ds, fraction=0.5, seed=1),
        "sample: every 3rd image": lambda: sample(ds, every=3),
        "upsample: 5 categories x3": lambda: upsample(ds, {n: 3 for n in names[:5]}),
        "split: random 0.8/0.1/0.1": lambda: split(ds, ratios, seed=1),
        "split: stratified 0.8/0.1/0.1": lambda: split(ds, ratios, stratify=True, seed=1),
        "categories: rename, merge 3, drop 2, reindex 0, sort": lambda: edit_categories(
            ds, rename={names[0]: "renamed"}, merge={"merged": names[1:4]}, drop=names[4:6],
            reindex=0, sort="name"),
        "clip (1% of annotations straddle the edge)": lambda: clip(straddling1),
        "clip (5% of annotations straddle the edge)": lambda: clip(straddling),
        "clip (nothing to clip)": lambda: clip(ds),
    }
    rows = []
    for name, fn in cases.items():
        med, best, cpu, result = time_case(fn, a.runs)
        rows.append((name, med, best, cpu, describe(result)))
        print(f"{name}: median {med:.3f} s", file=sys.stderr)
    width = max(len(r[0]) for r in rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{len(ds.images)} images, {len(ds.annotations)} annotations, "
          f"{len(ds.categories)} categories; {a.runs} runs each; {os.cpu_count()} CPUs, "
          f"load average {load:.1f} at the end\n")
    print(f"| {'case'.ljust(width)} | median s | best s | CPU s | result |")
    print(f"|{'-' * (width + 2)}|---------:|-------:|------:|--------|")
    for name, med, best, cpu, what in rows:
        flag = "" if best < 1.0 else " (over 1 s)"
        print(f"| {name.ljust(width)} | {med:8.3f} | {best:6.3f} | {cpu:5.3f} | {what}{flag} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

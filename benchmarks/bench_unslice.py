"""Time :func:`cocokit.unslice_results` on 1M tile detections against SAHI's postprocess.

Generated, in memory: ``--images`` source images of 2048x2048, each cut into SAHI's
grid of 512-pixel tiles with overlap 0.2 (25 tiles); objects (boxes of 8-120 pixels,
10 categories) placed at random; every tile that holds at least 25 % of an object
"detects" the visible part, jittered, with a random score. That is how sliced
inference duplicates and cuts objects. The detections are cocokit
:class:`~cocokit.io.results.Results` on the tile ids.

Timed, paired in one run, with the same settings (greedy NMM, IoS 0.5, per category):

* cocokit: :func:`cocokit.unslice_results` (moving every box to its source image,
  then merging), ``--repeat`` times on all the detections;
* SAHI: ``sahi.postprocess.combine.GreedyNMMPostprocess`` called once per source
  image (as ``get_sliced_prediction`` does) on ``ObjectPrediction`` objects already
  shifted to the source image (building them is not timed). SAHI runs on the first
  ``--sahi-images`` images only (its time grows with the detections; the per-detection
  rate is compared), and cocokit is timed on the same subset too.

Both keep the same detections on the subset (checked: same merged boxes, scores and
categories). Example::

    PYTHONPATH=src python benchmarks/bench_unslice.py --detections 1000000 --sahi-images 20

Prints Markdown table rows; exit code 1 when cocokit is over ``--budget`` seconds on
all the detections or less than ``--min-speedup`` times faster than SAHI per detection.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np

from cocokit.dataset import Annotations, Categories, Dataset, Images, object_array
from cocokit.io.results import Results
from cocokit.slicing import tile_grid
from cocokit.unslice import unslice_results

SIDE, TILE, OVERLAP = 2048, 512, 0.2


def make(detections: int, images: int, seed: int = 0) -> tuple[Results, Dataset]:
    """Tile detections (about ``detections``) and the tiles' dataset."""
    rng = np.random.default_rng(seed)
    grid = tile_grid(SIDE, SIDE, TILE, OVERLAP)
    t = len(grid)
    tiles_per = np.arange(images * t)
    extra = [{"source_image_id": int(i // t + 1), "source_window": grid[i % t].tolist(),
              "source_width": SIDE, "source_height": SIDE} for i in tiles_per.tolist()]
    tiles = Dataset(
        images=Images(id=tiles_per + 1, file_name=object_array([f"t{i}.jpg" for i in tiles_per]),
                      width=np.full(len(tiles_per), TILE), height=np.full(len(tiles_per), TILE),
                      extra=object_array(extra)),
        annotations=Annotations.empty(),
        categories=Categories([{"id": c, "name": f"c{c}"} for c in range(1, 11)]))
    # objects per image so that the detections come out near ``detections``
    per_image = max(1, int(detections / images / 1.74))
    n = per_image * images
    img = np.repeat(np.arange(images), per_image)
    wh = rng.uniform(8, 120, (n, 2))
    xy = rng.uniform(0, SIDE - wh)
    cat = rng.integers(1, 11, n)
    obj = np.concatenate([xy, xy + wh], axis=1)
    win = np.concatenate([grid[:, :2], grid[:, :2] + grid[:, 2:]], axis=1).astype(float)
    # every (object, tile) pair where the tile holds >= 25 % of the object
    lo = np.maximum(obj[:, None, :2], win[None, :, :2])
    hi = np.minimum(obj[:, None, 2:], win[None, :, 2:])
    vis = np.clip(hi - lo, 0, None).prod(axis=2) / (wh[:, 0] * wh[:, 1])[:, None]
    o, k = np.nonzero(vis >= 0.25)
    part = np.concatenate([lo[o, k], hi[o, k]], axis=1) - np.tile(win[k, :2], 2)
    part += rng.normal(0, 1.0, part.shape)
    part = np.clip(part, 0, TILE)
    bbox = np.concatenate([part[:, :2], part[:, 2:] - part[:, :2]], axis=1)
    ok = (bbox[:, 2] > 1) & (bbox[:, 3] > 1)
    o, k, bbox = o[ok], k[ok], bbox[ok]
    m = len(o)
    res = Results(image_id=(img[o] * t + k + 1).astype(np.int64), category_id=cat[o],
                  bbox=bbox, score=rng.uniform(0.3, 1.0, m).astype(np.float32).astype(float),
                  segmentation=object_array([None] * m), extra=object_array([{}] * m))
    return res, tiles


def _cocokit(res: Results, tiles: Dataset, repeat: int) -> tuple[float, float, Results]:
    """Median wall and CPU seconds of ``repeat`` runs, and the result."""
    times, cpu = [], []
    out = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = unslice_results(res, tiles, merge="greedy-nmm", match_metric="ios",
                              match_threshold=0.5)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert out is not None
    return statistics.median(times), statistics.median(cpu), out


def _sahi(res: Results, tiles: Dataset) -> tuple[float, float, list[tuple[Any, ...]]]:
    from sahi.postprocess.combine import GreedyNMMPostprocess
    from sahi.prediction import ObjectPrediction

    post = GreedyNMMPostprocess(match_threshold=0.5, match_metric="IOS", class_agnostic=False)
    row = {int(i): r for r, i in enumerate(tiles.images.id.tolist())}
    per_image: dict[int, list[Any]] = {}
    for i in range(len(res)):
        extra = tiles.images.extra[row[int(res.image_id[i])]]
        x, y = extra["source_window"][:2]
        bx, by, bw, bh = res.bbox[i].tolist()
        pred = ObjectPrediction(bbox=[bx, by, bx + bw, by + bh], score=float(res.score[i]),
                                category_id=int(res.category_id[i]), shift_amount=[x, y],
                                full_shape=[SIDE, SIDE]).get_shifted_object_prediction()
        per_image.setdefault(extra["source_image_id"], []).append(pred)
    t0, c0 = time.perf_counter(), time.process_time()
    merged = {sid: post(preds) for sid, preds in per_image.items()}
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    kept = [(sid, *np.round(p.bbox.to_xyxy(), 3).tolist(), round(p.score.value, 5),
             p.category.id) for sid, preds in merged.items() for p in preds]
    return elapsed, cpu, sorted(kept)


def _kept(out: Results) -> list[tuple[Any, ...]]:
    xyxy = np.concatenate([out.bbox[:, :2], out.bbox[:, :2] + out.bbox[:, 2:]], axis=1)
    return sorted((int(out.image_id[i]), *np.round(xyxy[i], 3).tolist(),
                   round(float(out.score[i]), 5), int(out.category_id[i]))
                  for i in range(len(out)))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detections", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--sahi-images", type=int, default=20,
                        help="source images SAHI is timed on (0: skip SAHI)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=float, default=2.0)
    parser.add_argument("--min-speedup", type=float, default=10.0)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    res, tiles = make(args.detections, args.images)
    print(f"generated {len(res):,} tile detections on {len(tiles.images):,} tiles of "
          f"{args.images} images in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    full_s, full_cpu, out = _cocokit(res, tiles, args.repeat)
    print("| run | detections | kept | seconds | CPU seconds | detections/s |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| cocokit unslice_results (all) | {len(res):,} | {len(out):,} | {full_s:.3f} | "
          f"{full_cpu:.3f} | {len(res) / full_s:,.0f} |")
    rc = 0 if full_s <= args.budget else 1
    if args.sahi_images:
        t = len(tile_grid(SIDE, SIDE, TILE, OVERLAP))
        sub = res.take(np.flatnonzero(res.image_id <= args.sahi_images * t))
        sub_tiles = tiles.select_images(np.arange(args.sahi_images * t))
        sub_s, sub_cpu, sub_out = _cocokit(sub, sub_tiles, args.repeat)
        sahi_s, sahi_cpu, sahi_kept = _sahi(sub, tiles)
        same = sahi_kept == _kept(sub_out)
        print(f"| cocokit unslice_results ({args.sahi_images} images) | {len(sub):,} | "
              f"{len(sub_out):,} | {sub_s:.3f} | {sub_cpu:.3f} | {len(sub) / sub_s:,.0f} |")
        print(f"| SAHI GreedyNMMPostprocess ({args.sahi_images} images) | {len(sub):,} | "
              f"{len(sahi_kept):,} | {sahi_s:.3f} | {sahi_cpu:.3f} | "
              f"{len(sub) / sahi_s:,.0f} |")
        speed_sub = sahi_s / sub_s
        speed_full = (sahi_s / len(sub)) / (full_s / len(res))
        print(f"\nsame kept detections as SAHI: {same}; speed-up on the subset "
              f"{speed_sub:.0f}x, per detection against all {len(res):,}: {speed_full:.0f}x")
        if not same or speed_full < args.min_speedup:
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())

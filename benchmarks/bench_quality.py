"""Time ``check``, the near-duplicate search and ``diff`` (issue "Dataset quality").

Four measurements, each paired with its floor or budget in one run:

1. ``check`` without images on a train2017-shaped file: the label checks on the loaded
   dataset (budget 2 s; the load, the one reader's business, is shown apart);
2. hashing images (``scan_images``: read, blake2b, header size and EXIF, pHash) against
   a decode-only floor on the same files in the same number of processes: Pillow's full
   decode, and the reduced JPEG decode (``draft``) that the hash itself uses (target
   at least 0.8x the floor's images/s);
3. the near-duplicate search (``near_pairs``, 8 bits) among 100k 64-bit hashes: random
   ones with 1 % planted near copies, and clustered ones (each 12 to 24 bits from
   one of coco-mini's 79 real pHashes, 12-24 bits away) (budget 5 s);
4. ``diff`` of the train2017-shaped file against a copy with 1 % of its annotations
   changed (0.5 % boxes moved 1-3 px, 0.25 % removed, 0.25 % added) (budget 3 s; the
   copy is made in memory, the load is shown apart).

Example::

    python benchmarks/generate.py /work/bench-data/train2017_like.json
    PYTHONPATH=src python benchmarks/bench_quality.py /work/bench-data/train2017_like.json \\
        --images /work/shared/data/real/coco-mini/val2017 --copies 4

Prints one Markdown table row per measurement (wall and CPU seconds).
"""

from __future__ import annotations

import argparse
import io
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cocokit.engine import run_local
from cocokit.io.coco import read_coco
from cocokit.quality.check import check_dataset
from cocokit.quality.diff import diff_datasets
from cocokit.quality.images import HashCache, scan_images
from cocokit.quality.pairs import near_pairs


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w, c = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - w, _cpu() - c


def row(case: str, wall: float, cpu: float, note: str = "") -> None:
    print(f"| {case} | {wall:.2f} | {cpu:.2f} | {note} |", flush=True)


def _decode_full(paths: list[str]) -> int:
    from PIL import Image

    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    return len(paths)


def _decode_draft(paths: list[str]) -> int:
    from PIL import Image

    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)) as im:
            if im.format == "JPEG":
                im.draft("L", (32, 32))  # the reduced decode scan_images uses
            im.load()
    return len(paths)


def floor(fn: Callable[[list[str]], int], paths: list[str], workers: int) -> int:
    batches = [paths[s : s + 32] for s in range(0, len(paths), 32)]
    return sum(run_local(fn, batches, workers=workers))


def bench_images(src: Path, copies: int, workers: int, repeat: int) -> None:
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for k in range(copies):  # distinct names, the same bytes: the same decode work
            for p in files:
                name = f"{k}_{p.name}"
                shutil.copyfile(p, Path(tmp) / name)
                names.append(name)
        paths = [str(Path(tmp) / n) for n in names]
        floor(_decode_full, paths, workers)  # warm the page cache
        runs: dict[str, list[tuple[float, float]]] = {"full": [], "draft": [], "hash": []}
        for _ in range(repeat):  # interleaved, so a change of load hits all three alike
            runs["full"].append(timed(lambda: floor(_decode_full, paths, workers))[1:])
            runs["draft"].append(timed(lambda: floor(_decode_draft, paths, workers))[1:])
            runs["hash"].append(timed(lambda: scan_images(names, tmp, workers=workers))[1:])
        (fw, fc), (dw, dc), (hw, hc) = (
            (statistics.median(w for w, _ in runs[k]), statistics.median(c for _, c in runs[k]))
            for k in ("full", "draft", "hash"))
        cache = HashCache(Path(tmp) / "cache.npz")
        scan_images(names, tmp, workers=workers, cache=cache)
        cache.save()
        _, cw, cc = timed(lambda: scan_images(names, tmp, workers=workers,
                                              cache=HashCache(Path(tmp) / "cache.npz")))
        n = len(names)
        row(f"floor: full decode, {n} images, {workers} proc", fw, fc, f"{n / fw:.0f} img/s")
        row(f"floor: draft decode, {n} images, {workers} proc", dw, dc, f"{n / dw:.0f} img/s")
        row(f"scan_images (hashes), {n} images, {workers} proc", hw, hc,
            f"{n / hw:.0f} img/s; {fw / hw:.2f}x full-decode floor, "
            f"{dw / hw:.2f}x draft floor (by CPU: {fc / hc:.2f}x, {dc / hc:.2f}x); "
            f"medians of {repeat}")
        row(f"scan_images again, from the hash cache, {n} images", cw, cc,
            f"{n / cw:.0f} img/s")


def bench_near(n: int, src: Path | None) -> None:
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    planted = n // 100
    near = h[:planted].copy()
    for _ in range(3):
        near ^= np.uint64(1) << rng.integers(0, 64, planted).astype(np.uint64)
    h[-planted:] = near
    (i, _, _), w, c = timed(lambda: near_pairs(h, None, 8))
    row(f"near_pairs, {n:,} random hashes (1% planted), t=8", w, c,
        f"{len(i):,} pairs; budget 5 s")
    if src is None:
        return
    names = sorted(p.name for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    base = scan_images(names, src).phash
    seeds = base[rng.integers(0, len(base), n)]
    flips = rng.integers(12, 25, n)
    hc = seeds.copy()
    for b in range(24):  # 12 to 24 random bit flips per hash: distinct, pHash-like
        on = flips > b
        hc[on] ^= np.uint64(1) << rng.integers(0, 64, int(on.sum())).astype(np.uint64)
    (i, _, _), w, c = timed(lambda: near_pairs(hc, None, 8))
    row(f"near_pairs, {n:,} clustered hashes (around {len(base)} real pHashes), t=8", w, c,
        f"{len(i):,} pairs; budget 5 s")


def bench_file(path: Path) -> None:
    ds, lw, lc = timed(lambda: read_coco(path))
    row(f"load {path.name} (read_coco, not counted)", lw, lc,
        f"{len(ds.images):,} images, {len(ds.annotations):,} annotations")
    fresh = ds.replace()  # joins recomputed, as in a new process
    report, w, c = timed(lambda: check_dataset(fresh, cache=False))
    row("check without images (labels)", w, c, f"{len(report.findings):,} findings; budget 2 s")

    a = ds.annotations
    rng = np.random.default_rng(1)
    n = len(a)
    pick = rng.permutation(n)
    moved, removed, added = pick[: n // 200], pick[n // 200 : n // 200 + n // 400], \
        pick[n // 200 + n // 400 : n // 200 + n // 200]
    bbox = a.bbox.copy()
    bbox[moved, :2] += rng.uniform(1, 3, (len(moved), 2))
    changed = a.replace(bbox=bbox)
    keep = np.ones(n, bool)
    keep[removed] = False
    extra = changed.take(added)
    far = extra.bbox.copy()
    far[:, :2] = (far[:, :2] + 300) % 500
    extra = extra.replace(bbox=far, id=np.arange(len(added)) + int(a.id.max()) + 1)
    b = ds.replace(annotations=type(a).concat([changed.take(keep), extra]))
    d, w, c = timed(lambda: diff_datasets(ds.replace(), b))
    counts = d.counts()
    row("diff, 1% of annotations changed", w, c,
        f"moved {counts['annotations_moved']:,}, removed {counts['annotations_removed']:,}, "
        f"added {counts['annotations_added']:,}; budget 3 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, nargs="?", help="train2017-shaped COCO file")
    parser.add_argument("--images", type=Path, help="a folder of images to hash")
    parser.add_argument("--copies", type=int, default=4,
                        help="copies of each image hashed (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved runs of the image cases, medians (default 3)")
    parser.add_argument("--hashes", type=int, default=100_000,
                        help="hashes searched for near pairs (default 100k)")
    args = parser.parse_args(argv)
    print("| case | wall s | CPU s | note |\n|---|---:|---:|---|")
    if args.file is not None:
        bench_file(args.file)
    bench_near(args.hashes, args.images)
    if args.images is not None:
        bench_images(args.images, args.copies, args.workers, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())

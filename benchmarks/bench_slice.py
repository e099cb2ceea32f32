"""Time ``cocokit slice`` against SAHI's ``slice_coco`` and against the JPEG floor.

Cases, each a fresh process, taking turns (A B C A B C ...) so a drift in the
machine's speed hits them alike; the output folder is emptied before every run:

* ``sahi``: ``sahi.slicing.slice_coco(..., out_ext=".jpg")`` with 512 tiles, overlap
  0.2, min_area_ratio 0.1, run by the Python of a separate environment that has sahi
  (``--sahi-python``; sahi is never a dependency of cocokit). SAHI saves tiles with
  Pillow's default JPEG quality, 75.
* ``cocokit qQ``: ``python -m cocokit slice`` with the same grid and ``--quality Q``.
* ``floor qQ``: a script that only decodes each image with Pillow and encodes the same
  tiles (the same grid) with Pillow at quality Q, with the same number of processes
  (``multiprocessing.Pool``, one image per task). No annotations, no JSON.
* ``floor qQ + block cache`` (``--tuned-floor``): the same with Pillow's cache of free
  memory blocks on (``Image.core.set_blocks_max(8)``), as cocokit's workers run; it
  shows how much of cocokit's lead over the plain floor comes from that setting.

Qualities: 75 (SAHI's) and 95 (cocokit's default) unless ``--qualities`` says otherwise.
The script prints median wall time, throughput (source images and tiles per second)
and the ratios the targets are about: cocokit / sahi and cocokit / floor (throughput).

Example::

    python benchmarks/gen_slice_images.py /tmp/slice_bench
    python -m venv /tmp/sahi-venv && /tmp/sahi-venv/bin/pip install sahi
    PYTHONPATH=src python benchmarks/bench_slice.py /tmp/slice_bench --runs 5

Needs cocokit importable (``PYTHONPATH=src``) and Pillow; ``--no-sahi`` skips SAHI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

FLOOR = r'''
import sys
from multiprocessing import Pool
from pathlib import Path
from PIL import Image

def axis(length, tile, overlap):
    if length <= tile:
        return [0], length
    step = tile - int(overlap * tile)  # cocokit's (SAHI's) grid
    n = 1 + -(-(length - tile) // step)
    starts = [i * step for i in range(n)]
    starts[-1] = length - tile
    return starts, tile

def work(args):
    src, out, size, overlap, quality = args
    img = Image.open(src)
    img.load()
    xs, w = axis(img.width, size, overlap)
    ys, h = axis(img.height, size, overlap)
    stem = Path(src).stem
    for y in ys:
        for x in xs:
            img.crop((x, y, x + w, y + h)).save(
                f"{out}/{stem}_{x}_{y}_{w}_{h}.jpg", "JPEG", quality=quality)
    return len(xs) * len(ys)

def init(blocks):
    if blocks:
        Image.core.set_blocks_max(blocks)

if __name__ == "__main__":
    image_dir, out, size, overlap, quality, workers, blocks = sys.argv[1:8]
    jobs = [(str(p), out, int(size), float(overlap), int(quality))
            for p in sorted(Path(image_dir).iterdir()) if p.suffix.lower() == ".jpg"]
    with Pool(int(workers), initializer=init, initargs=(int(blocks),)) as pool:
        print(sum(pool.imap(work, jobs)))
'''

SAHI = r'''
import sys
from sahi.slicing import slice_coco
ann, image_dir, out = sys.argv[1:4]
slice_coco(coco_annotation_file_path=ann, image_dir=image_dir,
           output_coco_annotation_file_name="sliced", output_dir=out,
           slice_height=512, slice_width=512, overlap_height_ratio=0.2,
           overlap_width_ratio=0.2, min_area_ratio=0.1, out_ext=".jpg", verbose=False)
'''


def _run(cmd: list[str], out: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys, including the worker processes it
    waited for) of one child process, with ``out`` emptied first."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.sync()  # the previous run's writes do not land in this one's time
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read() if proc.stderr is not None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark case failed ({proc.returncode}): {' '.join(cmd)}\n"
                         f"{err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def _wait_for_load(limit: float, patience: float = 600.0) -> None:
    """Sleep until the 1-minute load average is below ``limit`` (or ``patience`` passes)."""
    deadline = time.monotonic() + patience
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        time.sleep(2.0)


def _tiles(out: Path) -> int:
    return sum(1 for p in out.rglob("*.jpg"))


def main() -> None:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder made by gen_slice_images.py")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--qualities", default="75,95")
    ap.add_argument("--sahi-python", default="/tmp/sahi-venv/bin/python")
    ap.add_argument("--no-sahi", action="store_true")
    ap.add_argument("--wait-load", type=float, default=None, metavar="L",
                    help="on a shared machine: before each run, wait (up to 10 min) until the "
                         "1-minute load average is below L")
    ap.add_argument("--tuned-floor", action="store_true",
                    help="also time the floor with Pillow's block cache on, as cocokit sets it")
    ap.add_argument("--out", type=Path, default=Path("/tmp/slice_bench_out"))
    args = ap.parse_args()

    ann = args.data / "annotations.json"
    images = args.data / "images"
    n_images = len(json.loads(ann.read_bytes())["images"])
    env = dict(os.environ)
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = f"{src}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") \
        else str(src)
    env["COCOKIT_QUIET"] = "1"

    cases: dict[str, list[str]] = {}
    if not args.no_sahi:
        cases["sahi slice_coco (q75)"] = [args.sahi_python, "-c", SAHI, str(ann), str(images),
                                          str(args.out)]
    for q in (int(v) for v in args.qualities.split(",")):
        cases[f"cocokit slice q{q}"] = [
            sys.executable, "-m", "cocokit", "slice", str(ann), "--images", str(images),
            "-o", str(args.out), "--size", "512", "--overlap", "0.2", "--quality", str(q),
            "--workers", str(args.workers), "-q"]
        cases[f"floor q{q}"] = [sys.executable, "-c", FLOOR, str(images), str(args.out), "512",
                                "0.2", str(q), str(args.workers), "0"]
        if args.tuned_floor:
            cases[f"floor q{q} + block cache"] = [
                sys.executable, "-c", FLOOR, str(images), str(args.out), "512", "0.2", str(q),
                str(args.workers), "8"]

    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    tiles: dict[str, int] = {}
    for r in range(args.runs):
        for name, cmd in cases.items():
            if args.wait_load is not None:
                _wait_for_load(args.wait_load)
            wall, cpu_s = _run(cmd, args.out, env)
            times[name].append(wall)
            cpu[name].append(cpu_s)
            tiles[name] = _tiles(args.out)
            print(f"run {r + 1}/{args.runs} {name}: {wall:.2f} s wall, {cpu_s:.2f} s CPU",
                  file=sys.stderr)
    shutil.rmtree(args.out, ignore_errors=True)

    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n{n_images} images, {args.workers} processes, {args.runs} runs, medians\n")
    print("| case | wall s (median) | wall s (runs) | CPU s (median) | images/s | tiles/s |")
    print("|---|---|---|---|---|---|")
    for name, m in med.items():
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"| {name} | {m:.2f} | {runs} | {statistics.median(cpu[name]):.2f} "
              f"| {n_images / m:.2f} | {tiles[name] / m:.0f} |")
    print()
    sahi = med.get("sahi slice_coco (q75)")
    for q in (int(v) for v in args.qualities.split(",")):
        ck, fl = med[f"cocokit slice q{q}"], med[f"floor q{q}"]
        line = f"q{q}: cocokit / floor throughput = {fl / ck:.2f}x"
        if sahi is not None:
            line += f"; cocokit / sahi throughput = {sahi / ck:.2f}x"
        print(line)


if __name__ == "__main__":
    main()

"""Cost of the export contract's error checks (cocokit.contract) on a big file.

Times, in one process and alternating, load + export with the checks and load + export
with the checks replaced by a no-op, plus the checks alone on the loaded dataset.

Example::

    python benchmarks/generate.py /tmp/train2017_like.json
    python benchmarks/bench_contract.py /tmp/train2017_like.json --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import cocokit
import cocokit.io.coco as coco
from cocokit.contract import Checked, check_annotations, check_image_sizes


def _none(*args: object, **kwargs: object) -> Checked:
    return Checked([], np.zeros(0, np.int64))


def _run(src: Path, out: Path, checks: bool) -> tuple[float, float]:
    coco.check_annotations = check_annotations if checks else _none  # type: ignore[assignment]
    coco.check_image_sizes = check_image_sizes if checks else _none  # type: ignore[assignment]
    t, c = time.perf_counter(), time.process_time()
    ds = cocokit.load(src)
    coco.write_coco(ds, out, image_ids="auto", annotation_ids="auto")
    return time.perf_counter() - t, time.process_time() - c


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        with_checks: list[tuple[float, float]] = []
        without: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            without.append(_run(args.file, out, False))
            with_checks.append(_run(args.file, out, True))
        ds = cocokit.load(args.file)
        idx = ds.image_index
        alone: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            check_image_sizes(ds.images.width, ds.images.height)
            check_annotations(ds.annotations, ds.images.height[idx], ds.images.width[idx])
            alone.append((time.perf_counter() - t, time.process_time() - c))
    size = os.path.getsize(args.file) / 1e6
    print(f"{args.file} ({size:.0f} MB, {len(ds.annotations)} annotations), "
          f"median of {args.repeat} (wall / CPU seconds):")
    for k, what in ((0, "wall"), (1, "CPU ")):
        a, b, c = (statistics.median(x[k] for x in runs)
                   for runs in (without, with_checks, alone))
        print(f"  {what}: load + export without the checks {a:.2f}, with {b:.2f} "
              f"({(b - a) / a:+.1%}); the checks alone {c:.2f} ({c / a:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

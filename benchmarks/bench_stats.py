"""Time :func:`cocokit.stats.compute_stats` (and optionally the HTML report) on a big file.

The dataset is loaded once (not timed against the budget); then statistics are
computed ``--repeat`` times, each on a fresh :class:`~cocokit.Dataset` sharing the
loaded tables, so the joins it caches (image and category index) are recomputed and
counted every time. The budget from the issue: under 1 s on the train2017-scale file.

Example::

    python benchmarks/generate.py /tmp/bench/train2017_like.json
    PYTHONPATH=src python benchmarks/bench_stats.py /tmp/bench/train2017_like.json
    PYTHONPATH=src python benchmarks/bench_stats.py /tmp/bench/train2017_like.json --report

Prints one Markdown table row per measurement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cocokit
from cocokit.stats import compute_stats


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (1 if over ``--budget``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="COCO annotation file")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds allowed (default 1)")
    parser.add_argument("--report", action="store_true", help="also time the HTML report")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    ds = cocokit.load(args.file)
    load_s = time.perf_counter() - t0
    print(f"loaded {args.file}: {len(ds.images)} images, {len(ds.annotations)} annotations "
          f"in {load_s:.1f} s", file=sys.stderr)

    times = []
    for _ in range(args.repeat):
        fresh = ds.replace()  # new Dataset object: cached joins are rebuilt and timed
        t0 = time.perf_counter()
        stats = compute_stats(fresh)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print("| step | images | annotations | median s | min s | max s |")
    print("|---|---|---|---|---|---|")
    print(f"| compute_stats | {stats.images} | {stats.annotations} | {med:.3f} | "
          f"{min(times):.3f} | {max(times):.3f} |")

    if args.report:
        from cocokit.report import write_report

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.html"
            t0 = time.perf_counter()
            write_report(ds.replace(), out)
            rep = time.perf_counter() - t0
            size = out.stat().st_size
        print(f"| write_report | {stats.images} | {stats.annotations} | {rep:.3f} | "
              f"{rep:.3f} | {rep:.3f} |  ({size / 1e6:.1f} MB HTML)")

    if med > args.budget:
        print(f"compute_stats median {med:.3f} s is over the {args.budget} s budget",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time cocokit load and load+save against the JSON floor, as whole processes.

Each case runs in a fresh Python process; the cases take turns (A B C A B C ...) so a
drift in the machine's speed hits them alike. For each case the script prints the
median wall time, the median peak RSS of the process (from the kernel's accounting,
``wait4``), and the ratio of the median wall time to the floor's.

The floor is a process that only does ``orjson.loads`` of the file and
``orjson.dumps`` back to disk: the cost of parsing and writing the JSON itself.

Example::

    python benchmarks/generate.py /tmp/bench/train2017_like.json
    python benchmarks/bench_core.py /tmp/bench/train2017_like.json --runs 5

Needs cocokit installed (or ``PYTHONPATH=src``) and orjson for the floor; pycocotools'
``COCO()`` load is timed too when ``--with-pycocotools`` is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "floor: orjson loads + dumps": (
        "import orjson,sys\n"
        "d = orjson.loads(open(sys.argv[1], 'rb').read())\n"
        "open(sys.argv[2], 'wb').write(orjson.dumps(d))\n"
    ),
    "cocokit load": "import cocokit,sys\ncocokit.load(sys.argv[1])\n",
    "cocokit load + save (ids kept)": (
        "import cocokit,sys\n"
        "cocokit.save(cocokit.load(sys.argv[1]), sys.argv[2],\n"
        "             image_ids='keep', annotation_ids='keep')\n"
    ),
    "cocokit load + save (ids auto)": (
        "import cocokit,sys\ncocokit.save(cocokit.load(sys.argv[1]), sys.argv[2])\n"
    ),
}
PYCOCOTOOLS = (
    "import sys, contextlib, io\nfrom pycocotools.coco import COCO\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n    COCO(sys.argv[1])\n"
)


def run_once(code: str, src: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, str(src), str(out)])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark case failed with status {status}")
    return wall, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("file", type=Path)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--with-pycocotools", action="store_true")
    a = p.parse_args(argv)
    cases = dict(CASES)
    if a.with_pycocotools:
        cases["pycocotools COCO() load"] = PYCOCOTOOLS
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(dir=a.file.parent) as tmp:
        out = Path(tmp) / "out.json"
        for r in range(a.runs):
            for name, code in cases.items():
                results[name].append(run_once(code, a.file, out))
                print(f"run {r + 1}: {name}: {results[name][-1][0]:.2f} s", file=sys.stderr)
    size_mb = a.file.stat().st_size / 1e6
    floor = statistics.median(w for w, _ in results["floor: orjson loads + dumps"])
    print(f"\nfile: {a.file} ({size_mb:.0f} MB), {a.runs} runs each, medians\n")
    print("| case | wall s | ratio to floor | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        rss = statistics.median(m for _, m in runs)
        print(f"| {name} | {wall:.2f} | {wall / floor:.2f} | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

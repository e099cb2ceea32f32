"""Time cocokit load, export and validate against hotcoco and the JSON floor, as processes.

Each case runs in a fresh process; the cases take turns (A B C A B C ...) so a drift in
the machine's speed hits them alike. For each case the script prints the median wall
time, the median peak RSS and the median CPU time (user + system, all threads) of the
process, from the kernel's accounting (``wait4``). On a shared machine the CPU time is
the steadier figure; the targets are stated in wall time.
Then it prints the ratios the targets are stated in, as *paired* medians: the ratio of
case A to case B is taken within each round (A and B ran one after the other) and the
median of those per-round ratios is reported.

The floors are processes that only do ``orjson.loads`` of the file and ``orjson.dumps``
back to disk: the cost of parsing and writing the JSON itself, with the garbage
collector on (Python's default) and off (``gc.disable()`` first). The peer is hotcoco
(Rust; ``pip install 'cocokit[bench]'``): ``COCO(path)`` + ``save(path)``, and
``COCO(path)`` + ``healthcheck()``.

Example::

    python benchmarks/generate.py /tmp/bench/train2017_like.json
    python benchmarks/bench_core.py /tmp/bench/train2017_like.json --runs 3
    python benchmarks/bench_core.py FILE --runs 5 --cases "load + export (ids kept)" \\
        --cases "hotcoco COCO() + save()" --cases "floor, GC off"

Needs cocokit installed (or ``PYTHONPATH=src``), orjson for the floors and hotcoco
1.3.0 for the peer cases (a case whose module is missing is skipped, with a note);
pycocotools' ``COCO()`` load is timed too when ``--with-pycocotools`` is given.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# cocokit.save(ds, path) if it exists, else Dataset.save: the same export either way
_EXPORT = (
    "import cocokit,sys\n"
    "ds = cocokit.load(sys.argv[1])\n"
    "save = getattr(cocokit, 'save', None)\n"
    "kw = {kw}\n"
    "save(ds, sys.argv[2], **kw) if save is not None else ds.save(sys.argv[2], **kw)\n"
)
_QUIET = "import contextlib, io, sys\n_q = contextlib.redirect_stdout(io.StringIO())\n"

# name -> (python code, modules it needs); a code starting with "CLI " is a cocokit command
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "floor: orjson loads + dumps": (
        "import orjson,sys\n"
        "d = orjson.loads(open(sys.argv[1], 'rb').read())\n"
        "open(sys.argv[2], 'wb').write(orjson.dumps(d))\n",
        ("orjson",),
    ),
    "floor, GC off: orjson loads + dumps": (
        "import gc; gc.disable()\nimport orjson,sys\n"
        "d = orjson.loads(open(sys.argv[1], 'rb').read())\n"
        "open(sys.argv[2], 'wb').write(orjson.dumps(d))\n",
        ("orjson",),
    ),
    # the least a checked export does in Python: every annotation record decoded once
    # (ids, references, boxes; segmentation kept raw), the file's bytes written back
    "floor, msgspec: records decoded, bytes written": (
        "import gc; gc.disable()\nimport msgspec,sys\nRaw = msgspec.Raw\n"
        "class Top(msgspec.Struct):\n"
        "    images: list[Raw]\n    annotations: list[Raw]\n    categories: list[Raw]\n"
        "    info: Raw = msgspec.UNSET\n    licenses: Raw = msgspec.UNSET\n"
        "class Ann(msgspec.Struct):\n"
        "    id: int\n    image_id: int\n    category_id: int\n    bbox: list[float]\n"
        "    area: float\n    iscrowd: int = 0\n    segmentation: Raw = msgspec.UNSET\n"
        "    attributes: Raw = msgspec.UNSET\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "top = msgspec.json.decode(data, type=Top)\n"
        "anns = list(map(msgspec.json.Decoder(Ann).decode, top.annotations))\n"
        "open(sys.argv[2], 'wb').write(data)\n",
        ("msgspec",),
    ),
    "cocokit load": ("import cocokit,sys\ncocokit.load(sys.argv[1])\n", ()),
    "cocokit load + export (ids kept)": (
        _EXPORT.format(kw="dict(image_ids='keep', annotation_ids='keep')"),
        (),
    ),
    "cocokit load + export (ids auto)": (
        _EXPORT.format(kw="dict(image_ids='auto', annotation_ids='auto')"),
        (),
    ),
    "cocokit export (CLI)": ("CLI export {src} -o {out} --quiet", ()),
    # gzip in the writing thread, beside the encoding (zlib releases the GIL)
    "cocokit export to .json.gz (CLI)": ("CLI export {src} -o {out}.gz --quiet", ()),
    "hotcoco COCO() + save()": (
        _QUIET + "from hotcoco import COCO\nwith _q:\n    COCO(sys.argv[1]).save(sys.argv[2])\n",
        ("hotcoco",),
    ),
    "hotcoco COCO() + healthcheck()": (
        _QUIET + "from hotcoco import COCO\nwith _q:\n    COCO(sys.argv[1]).healthcheck()\n",
        ("hotcoco",),
    ),
    "cocokit validate (CLI)": ("CLI validate {src} --quiet", ()),
    "cocokit.validate(path)": ("import cocokit,sys\ncocokit.validate(sys.argv[1])\n", ()),
}
PYCOCOTOOLS = (
    _QUIET + "from pycocotools.coco import COCO\nwith _q:\n    COCO(sys.argv[1])\n",
    ("pycocotools",),
)

# (case, reference case, target): the paired ratios the targets are stated in
RATIOS = [
    ("cocokit load + export (ids kept)", "hotcoco COCO() + save()", "wall <= 0.7, RSS <= 0.8"),
    ("cocokit export (CLI)", "hotcoco COCO() + save()", "wall <= 0.7, RSS <= 0.8"),
    ("cocokit load + export (ids kept)", "floor, GC off: orjson loads + dumps", "wall <= 0.6"),
    ("cocokit export (CLI)", "floor, GC off: orjson loads + dumps", "wall <= 0.6"),
    ("cocokit load + export (ids kept)", "floor: orjson loads + dumps", ""),
    ("floor, msgspec: records decoded, bytes written", "hotcoco COCO() + save()", ""),
    ("cocokit validate (CLI)", "hotcoco COCO() + healthcheck()", "wall <= 1.0, RSS <= 1.1 GB"),
    ("cocokit.validate(path)", "hotcoco COCO() + healthcheck()", ""),
]


BASELINE = " [baseline]"


def _command(code: str, src: Path, out: Path) -> list[str]:
    if code.startswith("CLI "):
        args = code[4:].format(src=src, out=out).split()
        return [sys.executable, "-m", "cocokit", *args]
    return [sys.executable, "-c", code, str(src), str(out)]


def run_once(
    code: str, src: Path, out: Path, pythonpath: str | None = None
) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one child process.

    ``pythonpath`` replaces the child's PYTHONPATH (to time another cocokit tree).
    """
    cmd = _command(code, src, out)
    env = None if pythonpath is None else {**os.environ, "PYTHONPATH": pythonpath}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    # validate exits 1 when it finds errors; that is an answer, not a failure
    ok = (0, 1) if code.startswith("CLI validate") else (0,)
    if os.waitstatus_to_exitcode(status) not in ok:
        raise SystemExit(f"benchmark case failed with status {status}: {cmd}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


Run = tuple[float, float, float]


def _paired(a: list[Run], b: list[Run], k: int) -> float:
    return statistics.median(x[k] / y[k] for x, y in zip(a, b))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("file", type=Path)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--cases",
        action="append",
        metavar="TEXT",
        help="run only the cases whose name contains TEXT (repeatable; default: all)",
    )
    p.add_argument("--with-pycocotools", action="store_true")
    p.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="also time every cocokit case (load, export, validate) with this source "
        "tree on PYTHONPATH (e.g. a `git archive main src` unpacked), in the same rounds, "
        "as '<case> [baseline]'",
    )
    a = p.parse_args(argv)
    cases = dict(CASES)
    if a.with_pycocotools:
        cases["pycocotools COCO() load"] = PYCOCOTOOLS
    if a.cases:
        cases = {n: c for n, c in cases.items() if any(t in n for t in a.cases)}
    for name, (_, needs) in list(cases.items()):
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            print(f"skipped {name}: {', '.join(missing)} not installed", file=sys.stderr)
            del cases[name]
    paths: dict[str, str | None] = {name: None for name in cases}
    if a.baseline_src:  # each baseline case runs right after its current one
        base = str(Path(a.baseline_src).resolve())
        paired: dict[str, tuple[str, tuple[str, ...]]] = {}
        for name, case in cases.items():
            paired[name] = case
            if name.startswith("cocokit"):  # load, export and validate
                paired[name + BASELINE] = case
                paths[name + BASELINE] = base
        cases = paired
    results: dict[str, list[Run]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(dir=a.file.parent) as tmp:
        out = Path(tmp) / "out.json"
        for r in range(a.runs):
            for name, (code, _) in cases.items():
                results[name].append(run_once(code, a.file, out, paths[name]))
                wall, rss, cpu = results[name][-1]
                print(
                    f"run {r + 1}: {name}: {wall:.2f} s, {rss:.0f} MB, CPU {cpu:.2f} s",
                    file=sys.stderr,
                )
    size_mb = a.file.stat().st_size / 1e6
    print(f"\nfile: {a.file} ({size_mb:.0f} MB), {a.runs} runs each, medians\n")
    print("| case | wall s | peak RSS MB | CPU s |")
    print("|---|---:|---:|---:|")
    for name, runs in results.items():
        wall, rss, cpu = (statistics.median(x[k] for x in runs) for k in range(3))
        print(f"| {name} | {wall:.2f} | {rss:.0f} | {cpu:.2f} |")
    ratios = list(RATIOS)
    ratios += [(n[: -len(BASELINE)], n, "") for n in results if n.endswith(BASELINE)]
    ratios += [(x + BASELINE, y, t) for x, y, t in RATIOS if x + BASELINE in results]
    rows = [(x, y, t) for x, y, t in ratios if x in results and y in results]
    if rows:
        print("\npaired ratios (median over rounds of A/B, A and B run in turn)\n")
        print("| A | B | wall A/B | peak RSS A/B | CPU A/B | target |")
        print("|---|---|---:|---:|---:|---|")
        for x, y, target in rows:
            wall, rss, cpu = (_paired(results[x], results[y], k) for k in range(3))
            print(f"| {x} | {y} | {wall:.2f} | {rss:.2f} | {cpu:.2f} | {target} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Slicing throughput: the Ray engine on a local 2-worker cluster vs the local process pool.

Each run is a fresh process per engine, taken in turn (local, ray, local, ray, ...).
Within a process the same slicing job runs ``--calls`` times (into fresh folders): the
first call of a Ray process pays the job's start-up on the cluster (Ray Data's first
execution, new worker processes importing cocokit, numpy, Pillow, pyarrow), later
calls show the engine's overhead per run once that is paid. A run reports the
process's wall time and each call's time; tiles/s is computed from the calls. Both
engines must write the same tiles and the same COCO file; the script checks it.

``--address`` connects the Ray processes to a running cluster (for example one started
with ``ray start --head --num-cpus 2 --node-ip-address 127.0.0.1``), as jobs on a real
cluster do; without it each Ray process starts a local cluster of 2 CPUs itself.

Example::

    python benchmarks/gen_slice_images.py /tmp/slice_bench --images 100
    ray start --head --num-cpus 2 --node-ip-address 127.0.0.1 --include-dashboard false
    PYTHONPATH=src python benchmarks/bench_ray.py /tmp/slice_bench --runs 3 --address auto

Needs the ``ray`` extra (``pip install 'cocokit[ray]'``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CODE = r"""
import json, sys, time
from pathlib import Path
import cocokit
from cocokit.slicing import slice_dataset

if __name__ == "__main__":
    src, out, engine, calls, address = (Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3],
                                        int(sys.argv[4]), sys.argv[5])
    if engine == "ray":
        import ray
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address="local", num_cpus=2, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
    ds = cocokit.load(src / "annotations.json")
    times = []
    for k in range(calls):
        t = time.perf_counter()
        tiled, summary = slice_dataset(ds, src / "images", out / str(k), size=512,
                                       overlap=0.2, workers=2, engine=engine)
        times.append(time.perf_counter() - t)
    cocokit.save(tiled, out / "0" / "tiles.json")
    print(json.dumps({"calls": times, "tiles": summary.tiles}))
"""


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help="folder with annotations.json and images/")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--calls", type=int, default=2, help="slicing calls per process")
    p.add_argument("--address", default="", help="Ray cluster to connect to (e.g. auto)")
    p.add_argument("--wait-load", type=float, default=None, metavar="L",
                   help="before each run, wait (up to 2 min) until the 1-minute load is < L")
    a = p.parse_args(argv)
    rows: dict[str, list[tuple[float, list[float], int]]] = {"local": [], "ray": []}
    digests: dict[str, str] = {}
    for r in range(a.runs):
        for engine in ("local", "ray"):
            if a.wait_load is not None:
                deadline = time.monotonic() + 120
                while os.getloadavg()[0] >= a.wait_load and time.monotonic() < deadline:
                    time.sleep(2.0)
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                t = time.perf_counter()
                res = subprocess.run([sys.executable, "-c", CODE, str(a.data), str(out), engine,
                                      str(a.calls), a.address],
                                     capture_output=True, text=True, check=True)
                wall = time.perf_counter() - t
                info = json.loads(res.stdout.strip().splitlines()[-1])
                rows[engine].append((wall, info["calls"], info["tiles"]))
                digests[engine] = digest(out / "0")
                calls = ", ".join(f"{c:.2f}" for c in info["calls"])
                print(f"run {r + 1} {engine}: wall {wall:.2f} s, calls {calls} s",
                      file=sys.stderr)
    same = digests["local"] == digests["ray"]
    tiles = rows["local"][0][2]
    where = f"cluster at {a.address}" if a.address else "a local cluster per process"
    print(f"\n{a.data}: {tiles} tiles per call, {a.runs} runs x {a.calls} calls, Ray on "
          f"{where}; medians; identical output: {same}\n")

    def med(engine: str, pick: slice) -> float:
        return statistics.median(c for _, calls, _ in rows[engine] for c in calls[pick])

    print("| engine | process wall s | first call s | later calls s | tiles/s first | "
          "tiles/s later | ratio first | ratio later |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base_first, base_later = med("local", slice(0, 1)), med("local", slice(1, None))
    for engine in rows:
        first, later = med(engine, slice(0, 1)), med(engine, slice(1, None))
        print(f"| {engine} | {statistics.median(w for w, _, _ in rows[engine]):.2f} | "
              f"{first:.2f} | {later:.2f} | {tiles / first:.0f} | {tiles / later:.0f} | "
              f"{base_first / first:.2f} | {base_later / later:.2f} |")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

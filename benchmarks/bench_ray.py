"""Slicing throughput: the Ray engine on a local 2-worker cluster vs the local process pool.

Each run is a fresh process per engine, taken in turn (local, ray, local, ray, ...). A
run reports the whole process's wall time (for Ray: starting the local cluster
included) and the time of the ``slice_dataset`` call alone; tiles/s is computed from
the call alone, which is the engine's own overhead on the work. Both engines must
write the same tiles and the same COCO file; the script checks it.

Example::

    python benchmarks/gen_slice_images.py /tmp/slice_bench
    PYTHONPATH=src python benchmarks/bench_ray.py /tmp/slice_bench --runs 3

Needs the ``ray`` extra (``pip install 'cocokit[ray]'``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
src, out, engine = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if engine == "ray":
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
ds = cocokit.load(src / "annotations.json")
t = time.perf_counter()
tiled, summary = slice_dataset(ds, src / "images", out, size=512, overlap=0.2, workers=2,
                               engine=engine)
call = time.perf_counter() - t
tiled.save(out / "tiles.json")
print(json.dumps({"call": call, "tiles": summary.tiles}))
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
    a = p.parse_args(argv)
    rows: dict[str, list[tuple[float, float, int]]] = {"local": [], "ray": []}
    digests: dict[str, str] = {}
    for r in range(a.runs):
        for engine in ("local", "ray"):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "tiles"
                t = time.perf_counter()
                res = subprocess.run([sys.executable, "-c", CODE, str(a.data), str(out), engine],
                                     capture_output=True, text=True, check=True)
                wall = time.perf_counter() - t
                info = json.loads(res.stdout.strip().splitlines()[-1])
                rows[engine].append((wall, info["call"], info["tiles"]))
                digests[engine] = digest(out)
                print(f"run {r + 1} {engine}: wall {wall:.2f} s, slice call {info['call']:.2f} s",
                      file=sys.stderr)
    same = digests["local"] == digests["ray"]
    local_tps = statistics.median(t / c for _, c, t in rows["local"])
    print(f"\n{a.data}: {rows['local'][0][2]} tiles per run, {a.runs} runs, medians; "
          f"identical output: {same}\n")
    print("| engine | process wall s | slice call s | tiles/s | ratio to local |")
    print("|---|---:|---:|---:|---:|")
    for engine, runs in rows.items():
        tps = statistics.median(t / c for _, c, t in runs)
        print(f"| {engine} | {statistics.median(w for w, _, _ in runs):.2f} | "
              f"{statistics.median(c for _, c, _ in runs):.2f} | {tps:.1f} | "
              f"{tps / local_tps:.2f} |")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""`cocokit eval` against its backend's own COCOeval run, paired, on a val2017-shaped set.

Generates (deterministically, seed 0) a ground truth of 5,000 images, ~36k boxes in 80
categories with COCO's ids, and ~360k detections (jittered copies of the ground truth,
some with the wrong category, plus background boxes; scores uniform), then times, as
whole processes taken in turn:

* ``own``: the backend as its users run it (``COCO(gt.json)``, ``loadRes(results.json)``,
  ``evaluate``, ``accumulate``, ``summarize``);
* ``cocokit``: ``cocokit eval gt.json results.json --backend B --json -q`` (reads and
  checks both files with cocokit, then the same backend on the loaded data).

Both print the 12 stats; the script checks that they are equal and prints the medians
and the ratio cocokit / own (target: at most 1.10).

    python benchmarks/bench_eval.py /tmp/bench_eval --runs 3 --backend pycocotools hotcoco
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]

OWN = {
    "pycocotools": ("from pycocotools.coco import COCO\n"
                    "from pycocotools.cocoeval import COCOeval as E\n"),
    "faster-coco-eval": ("from faster_coco_eval import COCO\n"
                         "from faster_coco_eval import COCOeval_faster as E\n"),
    "hotcoco": "from hotcoco import COCO\nfrom hotcoco import COCOeval as E\n",
}
OWN_RUN = """
import contextlib, io, json, sys
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2])
    ev = E(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
print(json.dumps([float(s) for s in ev.stats]))
"""


def generate(folder: Path, images: int = 5000, per_image: float = 7.3, dets_per_gt: int = 10,
             seed: int = 0) -> tuple[Path, Path]:
    """Write gt.json and results.json into ``folder`` (skipped when both exist)."""
    gt_path, res_path = folder / "gt.json", folder / "results.json"
    if gt_path.exists() and res_path.exists():
        return gt_path, res_path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    widths = rng.choice([640, 480, 612, 500], images)
    heights = rng.choice([480, 640, 427, 375], images)
    imgs = [{"id": int(100000 + 7 * i), "file_name": f"{100000 + 7 * i:012d}.jpg",
             "width": int(w), "height": int(h)} for i, (w, h) in enumerate(zip(widths, heights))]
    counts = rng.poisson(per_image, images)
    anns, dets = [], []
    aid = 1
    for img, n in zip(imgs, counts.tolist(), strict=True):
        w, h = img["width"], img["height"]
        for _ in range(n):
            bw = float(np.clip(rng.lognormal(3.6, 0.9), 2, w - 1))
            bh = float(np.clip(rng.lognormal(3.6, 0.9), 2, h - 1))
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            cat = int(rng.choice(COCO_IDS))
            box = [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)]
            anns.append({"id": aid, "image_id": img["id"], "category_id": cat, "bbox": box,
                         "area": round(bw * bh, 2), "iscrowd": 0})
            aid += 1
            for _ in range(dets_per_gt - 1):
                jit = rng.normal(0, 0.12, 4) * [bw, bh, bw, bh]
                c = cat if rng.random() < 0.85 else int(rng.choice(COCO_IDS))
                dets.append({"image_id": img["id"], "category_id": c,
                             "bbox": [round(max(0.0, x + jit[0]), 2),
                                      round(max(0.0, y + jit[1]), 2),
                                      round(max(1.0, bw + jit[2]), 2),
                                      round(max(1.0, bh + jit[3]), 2)],
                             "score": round(float(rng.random()), 3)})
        for _ in range(int(rng.poisson(per_image))):  # background
            bw, bh = float(rng.uniform(5, w / 3)), float(rng.uniform(5, h / 3))
            dets.append({"image_id": img["id"], "category_id": int(rng.choice(COCO_IDS)),
                         "bbox": [round(float(rng.uniform(0, w - bw)), 2),
                                  round(float(rng.uniform(0, h - bh)), 2),
                                  round(bw, 2), round(bh, 2)],
                         "score": round(float(rng.random()) * 0.5, 3)})
    cats = [{"id": c, "name": f"class{c}", "supercategory": "thing"} for c in COCO_IDS]
    gt_path.write_text(json.dumps({"info": {"description": "val2017-shaped"}, "images": imgs,
                                   "annotations": anns, "categories": cats}))
    res_path.write_text(json.dumps(dets))
    return gt_path, res_path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, list[float]]:
    """Wall seconds, CPU seconds (user + system, the child and its threads) and stats."""
    cpu0, start = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    took, cpu = time.perf_counter() - start, _cpu() - cpu0
    if proc.returncode:
        raise SystemExit(f"{cmd[:4]} failed:\n{proc.stderr}")
    out = json.loads(proc.stdout)
    return took, cpu, out["stats"] if isinstance(out, dict) else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", nargs="+", default=["pycocotools"], choices=list(OWN))
    args = parser.parse_args()
    gt, res = generate(args.folder)
    n_gt = len(json.loads(gt.read_text())["annotations"])
    n_dt = len(json.loads(res.read_text()))
    print(f"{gt}: 5000 images, {n_gt} ground truths; {res}: {n_dt} detections "
          f"({res.stat().st_size / 1e6:.0f} MB)")
    env = {**os.environ, "COCOKIT_QUIET": "1"}
    for backend in args.backend:
        own_cmd = [sys.executable, "-c", OWN[backend] + OWN_RUN, str(gt), str(res)]
        kit_cmd = [sys.executable, "-m", "cocokit", "eval", str(gt), str(res), "--backend",
                   backend, "--json", "-q"]
        own_t, kit_t, own_c, kit_c = [], [], [], []
        for _ in range(args.runs):  # in turn, so both see the same machine
            t, c, own_stats = timed(own_cmd)
            own_t.append(t)
            own_c.append(c)
            t, c, kit_stats = timed(kit_cmd, env)
            kit_t.append(t)
            kit_c.append(c)
            if kit_stats != own_stats:
                raise SystemExit(f"{backend}: stats differ\n own {own_stats}\n kit {kit_stats}")
        med = statistics.median
        print(f"{backend:>16}: wall own {med(own_t):7.2f} s, cocokit eval {med(kit_t):7.2f} s, "
              f"ratio {med(kit_t) / med(own_t):.3f}; CPU own {med(own_c):7.2f} s, cocokit "
              f"{med(kit_c):7.2f} s, ratio {med(kit_c) / med(own_c):.3f}  (wall runs: own "
              f"{[round(t, 2) for t in own_t]}, cocokit {[round(t, 2) for t in kit_t]}; "
              f"stats equal, AP {own_stats[0]:.4f})", flush=True)


if __name__ == "__main__":
    main()

"""Benchmark offline augmentation: cocokit vs Albumentations 2.0.8 vs a floor.

The set: the 20 synthetic 4000x3000 JPEGs with ~50 polygon annotations each made by
``benchmarks/gen_slice_images.py`` (generated into ``--images`` when absent).

The pipeline, the same for both tools, one output image per source image:
rotate by an angle drawn in [-30, 30] about the centre (canvas kept), random crop
2000x2000, colour jitter (brightness, contrast, saturation 0.8-1.2, hue +-0.1 turn),
written as JPEG quality 95, annotations written as JSON.

* **cocokit**: ``cocokit.augment.augment`` (polygons exact and clipped, tight boxes).
* **Albumentations 2.0.8** in its own venv (never a cocokit dependency): boxes as
  ``coco`` bboxes and polygon vertices carried as keypoints, the usual workaround;
  images read with ``cv2.imread`` + BGR->RGB and written with ``cv2.imwrite``, as its
  documentation does.
* **floor**: only decode each image and encode a 2000x2000 crop of it (OpenCV and
  Pillow are both timed; the faster is the floor).

Every tool runs with the same number of processes (``--workers``) and OpenCV limited
to one thread per process. Runs are interleaved (tool A, B, C, A, B, C, ...) and the
median is reported, because this machine is shared and noisy.

Example::

    python -m venv /tmp/alb-venv && /tmp/alb-venv/bin/pip install albumentations==2.0.8
    PYTHONPATH=src python benchmarks/bench_augment.py --runs 3 --workers 1
    PYTHONPATH=src python benchmarks/bench_augment.py --runs 3 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

CROP = 2000
QUALITY = 95

ALBUMENTATIONS_SCRIPT = r"""
import json, os, sys, time
from concurrent.futures import ProcessPoolExecutor
import cv2, numpy as np
import albumentations as A

cv2.setNumThreads(1)
images_dir, ann_path, out_dir, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
doc = json.load(open(ann_path))
anns = {}
for a in doc["annotations"]:
    anns.setdefault(a["image_id"], []).append(a)

def make():
    return A.Compose(
        [A.Rotate(limit=30, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0),
         A.RandomCrop(height=@CROP@, width=@CROP@, p=1.0),
         A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1, p=1.0)],
        bbox_params=A.BboxParams(format="coco", label_fields=["cats"], clip=True),
        keypoint_params=A.KeypointParams(format="xy", label_fields=["owner"],
                                         remove_invisible=False),
        seed=0)

T = None

def work(task):
    global T
    if T is None:
        T = make()
    i, img_rec = task
    img = cv2.imread(os.path.join(images_dir, img_rec["file_name"]))
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    boxes, cats, kps, owner = [], [], [], []
    for j, a in enumerate(anns.get(img_rec["id"], [])):
        boxes.append(a["bbox"]); cats.append(a["category_id"])
        for ring in a["segmentation"]:
            for k in range(0, len(ring), 2):
                kps.append((ring[k], ring[k + 1])); owner.append(j)
    out = T(image=img, bboxes=boxes, cats=cats, keypoints=kps, owner=owner)
    name = os.path.join(out_dir, "aug_" + img_rec["file_name"])
    cv2.imwrite(name, cv2.cvtColor(out["image"], cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, @QUALITY@])
    polys = {}
    for (x, y), o in zip(np.asarray(out["keypoints"]).tolist(), out["owner"]):
        polys.setdefault(int(o), []).extend([x, y])
    return {"file_name": name, "bboxes": np.asarray(out["bboxes"]).tolist(),
            "polygons": polys}

tasks = list(enumerate(doc["images"]))
t0 = time.perf_counter()
c0 = time.process_time()
if workers > 1:
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(work, tasks))
else:
    results = [work(t) for t in tasks]
with open(os.path.join(out_dir, "annotations.json"), "w") as f:
    json.dump(results, f)
import resource
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": time.perf_counter() - t0, "images": len(results),
                  "cpu": time.process_time() - c0 + ch.ru_utime + ch.ru_stime}))
""".replace("@CROP@", str(CROP)).replace("@QUALITY@", str(QUALITY))


def _ensure_images(folder: Path) -> Path:
    ann = folder / "annotations.json"
    if not ann.exists():
        sys.path.insert(0, str(HERE))
        from gen_slice_images import generate

        print(f"generating the image set in {folder} ...", file=sys.stderr)
        generate(folder)
    return ann


def _floor_cv(args: tuple[str, str]) -> None:
    import cv2
    import numpy as np

    src, dst = args
    img = cv2.imdecode(np.fromfile(src, np.uint8), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    crop = img[(h - CROP) // 2 : (h - CROP) // 2 + CROP, (w - CROP) // 2 : (w - CROP) // 2 + CROP]
    _ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    Path(dst).write_bytes(bytes(buf))


def _floor_pil(args: tuple[str, str]) -> None:
    from PIL import Image

    src, dst = args
    with Image.open(src) as im:
        w, h = im.size
        x0, y0 = (w - CROP) // 2, (h - CROP) // 2
        im.crop((x0, y0, x0 + CROP, y0 + CROP)).save(dst, "JPEG", quality=QUALITY)


def _one_thread() -> None:
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def run_floor(kind: str, images: list[Path], out: Path, workers: int) -> float:
    """Seconds to decode every image and encode a 2000x2000 crop."""
    fn = _floor_cv if kind == "cv" else _floor_pil
    tasks = [(str(p), str(out / p.name)) for p in images]
    t0 = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
            list(pool.map(fn, tasks))
    else:
        for t in tasks:
            fn(t)
    return time.perf_counter() - t0


def run_cocokit(ann: Path, images: Path, out: Path, workers: int) -> float:
    """Seconds for cocokit's augment (load excluded, write of the JSON included)."""
    import numpy.random  # noqa: F401 - imports done before timing, as for the others
    import PIL.Image
    import PIL.ImageOps
    import pycocotools.mask  # noqa: F401

    import cocokit
    from cocokit.augment import ColorJitter, Pipeline, RandomCrop, Rotate, augment

    del PIL
    ds = cocokit.load(ann)
    pipe = Pipeline([Rotate(angle=(-30, 30)), RandomCrop(CROP, CROP),
                     ColorJitter(brightness=(0.8, 1.2), contrast=(0.8, 1.2),
                                 saturation=(0.8, 1.2), hue=(-0.1, 0.1))])
    t0 = time.perf_counter()
    augment(ds, pipe, images, out, copies=1, seed=0, keep_originals=False, format="jpg",
            quality=QUALITY, workers=workers, image_ids="auto", annotation_ids="auto")
    return time.perf_counter() - t0


def run_albumentations(python: str, ann: Path, images: Path, out: Path,
                       workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds reported by the Albumentations script (imports excluded)."""
    script = out.parent / "alb_bench.py"
    script.write_text(ALBUMENTATIONS_SCRIPT)
    out.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([python, str(script), str(images), str(ann), str(out), str(workers)],
                         check=True, capture_output=True, text=True)
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    return float(rep["seconds"]), float(rep["cpu"])


def main() -> None:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, default=Path("/tmp/slice_bench"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--albumentations-python", default="/tmp/alb-venv/bin/python")
    ap.add_argument("--tools", default="floor_cv,floor_pil,cocokit,albumentations")
    args = ap.parse_args()
    _one_thread()
    ann = _ensure_images(args.images)
    doc = json.loads(ann.read_text())
    images = [args.images / "images" / r["file_name"] for r in doc["images"]]
    n = len(images)
    tools = args.tools.split(",")
    if "albumentations" in tools and not Path(args.albumentations_python).exists():
        print(f"skipping albumentations: {args.albumentations_python} not found", file=sys.stderr)
        tools.remove("albumentations")
    times: dict[str, list[float]] = {t: [] for t in tools}
    cpus: dict[str, list[float]] = {t: [] for t in tools}
    for run in range(args.runs):
        for tool in tools:
            tmp = Path(tempfile.mkdtemp(prefix=f"bench_aug_{tool}_"))
            out = tmp / "out"
            c0 = _cpu()
            try:
                if tool in ("floor_cv", "floor_pil"):
                    out.mkdir()
                    t = run_floor(tool[6:], images, out, args.workers)
                elif tool == "cocokit":
                    t = run_cocokit(ann, args.images / "images", out, args.workers)
                else:
                    t, c = run_albumentations(args.albumentations_python, ann,
                                              args.images / "images", out, args.workers)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            cpu = c if tool == "albumentations" else _cpu() - c0
            times[tool].append(t)
            cpus[tool].append(cpu)
            print(f"run {run + 1} {tool:15s} {t:7.2f} s  {n / t:5.2f} img/s  cpu {cpu:6.2f} s",
                  file=sys.stderr)
    med = {t: statistics.median(v) for t, v in times.items()}
    cmed = {t: statistics.median(v) for t, v in cpus.items()}
    rate = {t: n / s for t, s in med.items()}
    print(f"\n{n} images 4000x3000 -> 2000x2000 JPEG q{QUALITY}, workers={args.workers}, "
          f"OpenCV 1 thread/process, median of {args.runs} (load {os.getloadavg()[0]:.1f})")
    print(f"{'tool':16s} {'median s':>9s} {'img/s':>7s} {'CPU s':>7s}  runs (s)")
    for t in tools:
        print(f"{t:16s} {med[t]:9.2f} {rate[t]:7.2f} {cmed[t]:7.2f}  "
              f"{[round(x, 2) for x in times[t]]}")
    floors = [rate[t] for t in ("floor_cv", "floor_pil") if t in rate]
    if "cocokit" in rate and floors:
        print(f"cocokit / floor (faster of the two): {rate['cocokit'] / max(floors):.2f}x")
        best = min(cmed[t] for t in ("floor_cv", "floor_pil") if t in cmed)
        print(f"  by CPU time: {best / cmed['cocokit']:.2f}x")
    if "cocokit" in rate and "albumentations" in rate:
        print(f"cocokit / Albumentations: {rate['cocokit'] / rate['albumentations']:.2f}x"
              f"  (by CPU time {cmed['albumentations'] / cmed['cocokit']:.2f}x)")


if __name__ == "__main__":
    main()

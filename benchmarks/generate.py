"""Generate a synthetic COCO-shaped annotation file for benchmarks.

The default preset has the shape of COCO train2017: 118,287 images, about 860k
annotations, polygons of 1-3 parts with 6-40 vertices each, about 1% crowd
annotations with uncompressed RLE, about 1% images without annotations and extra
keys on some records. ``--preset objects365`` makes a file the size of Objects365
(1.7M images, about 25M boxes, about 1% polygons and crowd RLE).

Example::

    python benchmarks/generate.py /tmp/train2017_like.json
    python benchmarks/generate.py /tmp/o365_like.json --preset objects365
    python benchmarks/generate.py /tmp/small.json --images 2000 --seed 1

Only numpy and msgspec are needed. The output is deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec
import numpy as np

PRESETS = {
    # images, mean annotations per image, share of polygon annotations
    "train2017": (118_287, 7.3, 1.0),
    "objects365": (1_700_000, 14.7, 0.01),
}

CATEGORY_NAMES = [f"class_{i:03d}" for i in range(80)]


def _fmt(values: np.ndarray) -> list[str]:
    """Format floats with two decimals, as the official COCO files mostly do."""
    return np.char.mod("%.2f", values).tolist()


def _chunk_annotations(
    rng: np.random.Generator,
    image_ids: np.ndarray,
    widths: np.ndarray,
    heights: np.ndarray,
    counts: np.ndarray,
    first_ann_id: int,
    polygon_share: float,
) -> list[bytes]:
    records: list[bytes] = []
    ann_id = first_ann_id
    n = int(counts.sum())
    img_rows = np.repeat(np.arange(len(image_ids)), counts)
    w_img = widths[img_rows].astype(np.float64)
    h_img = heights[img_rows].astype(np.float64)
    bw = np.round(rng.uniform(0.02, 0.5, n) * w_img, 2)
    bh = np.round(rng.uniform(0.02, 0.5, n) * h_img, 2)
    bx = np.round(rng.uniform(0, 1, n) * (w_img - bw), 2)
    by = np.round(rng.uniform(0, 1, n) * (h_img - bh), 2)
    cats = rng.integers(1, 81, n)
    crowd = rng.random(n) < 0.01
    is_poly = rng.random(n) < polygon_share
    extra = rng.random(n) < 0.02
    parts = rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1])
    for i in range(n):
        x, y, w, h = bx[i], by[i], bw[i], bh[i]
        img_id = int(image_ids[img_rows[i]])
        if crowd[i]:
            iw, ih = int(widths[img_rows[i]]), int(heights[img_rows[i]])
            total = iw * ih
            runs = rng.integers(1, max(2, total // 40), 30)
            runs = np.append(runs, max(0, total - int(runs.sum())))
            seg = '{"counts":[' + ",".join(map(str, runs.tolist())) + f'],"size":[{ih},{iw}]}}'
            iscrowd = 1
        elif is_poly[i]:
            rings = []
            for _ in range(parts[i]):
                k = int(rng.integers(6, 41))
                ang = np.sort(rng.uniform(0, 2 * np.pi, k))
                r = rng.uniform(0.3, 0.5, k)
                px = x + w * (0.5 + r * np.cos(ang))
                py = y + h * (0.5 + r * np.sin(ang))
                xy = np.empty(2 * k)
                xy[0::2] = px
                xy[1::2] = py
                rings.append("[" + ",".join(_fmt(xy)) + "]")
            seg = "[" + ",".join(rings) + "]"
            iscrowd = 0
        else:
            seg = "[]"
            iscrowd = 0
        area = round(float(w * h * 0.7), 4)
        rec = (
            f'{{"segmentation":{seg},"area":{area},"iscrowd":{iscrowd},"image_id":{img_id},'
            f'"bbox":[{x:.2f},{y:.2f},{w:.2f},{h:.2f}],"category_id":{int(cats[i])},"id":{ann_id}'
        )
        if extra[i]:
            rec += ',"attributes":{"occluded":false,"source":"synthetic"}'
        records.append((rec + "}").encode())
        ann_id += 1
    return records


def generate(
    path: Path,
    n_images: int,
    mean_anns: float,
    polygon_share: float,
    seed: int,
    annotations_first: bool = False,
) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    image_ids = np.arange(1, n_images + 1) * 3 + 7  # sparse, unordered ids like COCO's
    rng.shuffle(image_ids)
    widths = rng.choice([640, 480, 500, 427, 612, 1024], n_images)
    heights = rng.choice([480, 640, 375, 333, 428, 768], n_images)
    counts = rng.poisson(mean_anns - 1, n_images) + 1
    counts[rng.random(n_images) < 0.01] = 0  # negative samples

    tmp = path.with_name(path.name + ".part")
    enc = msgspec.json.Encoder()
    with open(tmp, "wb") as f:

        def write_images() -> None:
            f.write(b'"images":[')
            for start in range(0, n_images, 50_000):
                stop = min(n_images, start + 50_000)
                recs = []
                for i in range(start, stop):
                    rec = {
                        "license": int(i % 8 + 1),
                        "file_name": f"{int(image_ids[i]):012d}.jpg",
                        "coco_url": f"http://images.example.org/train/{int(image_ids[i]):012d}.jpg",
                        "height": int(heights[i]),
                        "width": int(widths[i]),
                        "date_captured": "2013-11-14 11:18:45",
                        "id": int(image_ids[i]),
                    }
                    if i % 50 == 0:
                        rec["extra_tags"] = ["synthetic", i % 7]
                    recs.append(enc.encode(rec))
                if start:
                    f.write(b",")
                f.write(b",".join(recs))
            f.write(b"]")

        n_anns = 0

        def write_annotations() -> None:
            nonlocal n_anns
            f.write(b'"annotations":[')
            first = True
            step = 5_000
            for start in range(0, n_images, step):
                stop = min(n_images, start + step)
                recs = _chunk_annotations(
                    rng,
                    image_ids[start:stop],
                    widths[start:stop],
                    heights[start:stop],
                    counts[start:stop],
                    n_anns + 1,
                    polygon_share,
                )
                if not recs:
                    continue
                if not first:
                    f.write(b",")
                f.write(b",".join(recs))
                first = False
                n_anns += len(recs)
            f.write(b"]")

        f.write(
            b'{"info":{"description":"synthetic COCO-shaped benchmark file","version":"1.0",'
            b'"year":2024},"licenses":'
        )
        f.write(
            enc.encode(
                [
                    {"url": f"http://example.org/l/{i}", "id": i, "name": f"License {i}"}
                    for i in range(1, 9)
                ]
            )
        )
        f.write(b",")
        if annotations_first:
            write_annotations()
            f.write(b",")
            write_images()
        else:
            write_images()
            f.write(b",")
            write_annotations()
        f.write(b',"categories":')
        f.write(
            enc.encode(
                [
                    {"supercategory": f"group_{i // 10}", "id": i + 1, "name": name}
                    for i, name in enumerate(CATEGORY_NAMES)
                ]
            )
        )
        f.write(b"}")
    tmp.replace(path)
    return n_images, n_anns


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("output", type=Path)
    p.add_argument("--preset", choices=sorted(PRESETS), default="train2017")
    p.add_argument("--images", type=int, help="number of images (overrides the preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--annotations-first",
        action="store_true",
        help="write the annotations array before the images array",
    )
    a = p.parse_args(argv)
    n_images, mean_anns, poly = PRESETS[a.preset]
    if a.images:
        n_images = a.images
    n_img, n_ann = generate(a.output, n_images, mean_anns, poly, a.seed, a.annotations_first)
    size = a.output.stat().st_size
    print(
        f"wrote {a.output}: {n_img} images, {n_ann} annotations, {size / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Generate large synthetic JPEGs with polygon annotations, for the slicing benchmark.

The default makes 20 images of 4000x3000 with about 50 polygon annotations each
(star-shaped polygons of 8-32 float vertices, 5 categories), drawn filled into the
pixels so the annotations match the content. The pixels are a smooth background plus
fine noise so the JPEGs compress like photographs (a few MB each at quality 90),
not like flat synthetic images.

Example::

    python benchmarks/gen_slice_images.py /tmp/slice_bench
    python benchmarks/gen_slice_images.py /tmp/slice_bench --images 4 --seed 3

Writes ``DIR/images/img_XXX.jpg`` and ``DIR/annotations.json``. Deterministic for a
given seed. Needs numpy, Pillow and msgspec.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
import numpy as np
from PIL import Image, ImageDraw


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Smooth colour fields plus fine noise, uint8 (h, w, 3)."""
    coarse = rng.integers(40, 215, size=(height // 250 + 2, width // 250 + 2, 3)).astype(np.uint8)
    img = Image.fromarray(coarse, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    arr = np.asarray(img, np.int16)
    noise = rng.integers(-10, 11, size=(height, width, 1), dtype=np.int16)
    return np.clip(arr + noise, 0, 255).astype(np.uint8)


def _polygon(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A star-shaped polygon (k, 2) with float vertices, inside the image."""
    k = int(rng.integers(8, 33))
    radius = float(rng.uniform(15, 250))
    cx = float(rng.uniform(radius * 0.5, width - radius * 0.5))
    cy = float(rng.uniform(radius * 0.5, height - radius * 0.5))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = radius * rng.uniform(0.5, 1.0, k)
    xy = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    xy[:, 0] = np.clip(xy[:, 0], 0, width)
    xy[:, 1] = np.clip(xy[:, 1], 0, height)
    return np.round(xy, 2)


def _area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def generate(out: Path, images: int = 20, width: int = 4000, height: int = 3000,
             per_image: int = 50, seed: int = 0, quality: int = 90) -> Path:
    """Write the images and the COCO file; returns the path of the COCO file."""
    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    doc: dict[str, list[dict[str, object]]] = {"images": [], "annotations": [], "categories": [
        {"id": c, "name": f"class_{c}", "supercategory": "thing"} for c in range(1, 6)
    ]}
    ann_id = 1
    for i in range(1, images + 1):
        name = f"img_{i:03d}.jpg"
        pil = Image.fromarray(_background(rng, width, height), "RGB")
        draw = ImageDraw.Draw(pil)
        n = int(rng.poisson(per_image))
        for _ in range(n):
            xy = _polygon(rng, width, height)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            draw.polygon([tuple(p) for p in xy.tolist()], fill=colour)
            x0, y0 = xy.min(axis=0)
            x1, y1 = xy.max(axis=0)
            doc["annotations"].append({
                "id": ann_id, "image_id": i, "category_id": int(rng.integers(1, 6)),
                "segmentation": [xy.ravel().tolist()], "area": round(_area(xy), 2),
                "bbox": [float(x0), float(y0), round(float(x1 - x0), 2),
                         round(float(y1 - y0), 2)],
                "iscrowd": 0,
            })
            ann_id += 1
        pil.save(out / "images" / name, quality=quality)
        doc["images"].append({"id": i, "file_name": name, "width": width, "height": height})
    path = out / "annotations.json"
    path.write_bytes(msgspec.json.encode(doc))
    return path


def main() -> None:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--per-image", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    path = generate(args.out, args.images, args.width, args.height, args.per_image, args.seed)
    print(f"wrote {path} and {args.images} images in {args.out / 'images'}")


if __name__ == "__main__":
    main()

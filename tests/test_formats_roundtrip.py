"""COCO -> each format -> COCO on real datasets: boxes within 1e-6 relative, polygons
exact where the format has polygons (LabelMe) or to float precision (Label Studio's
percentages), categories by name, and the loss report matching what changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cocokit
from cocokit.dataset import Dataset, plain
from cocokit.io import formats
from tests.conftest import real_path

DATASETS = {
    "coco-mini": ("coco-mini", "annotations", "instances_val2017.json"),
    "tiny-coco": ("tiny-coco-images", "annotations", "instances_val2017.json"),
    "taco": ("taco", "annotations.json"),
}
# format -> (polygons kept?, polygon tolerance)
FORMATS = {"voc": (False, None), "labelme": (True, 0.0), "labelstudio": (True, 1e-9)}
MASKS = {"labelme", "labelstudio"}  # formats that keep RLE masks, pixel for pixel


def _mask(rle: dict[str, Any]) -> np.ndarray:
    from cocokit.geometry import encoded_rle, mask_api

    return np.asarray(mask_api().decode(encoded_rle(rle)))


def _objects(ds: Dataset) -> dict[str, list[tuple[str, list[float], Any]]]:
    """file_name -> [(category name, bbox, segmentation)] in annotation order."""
    names = {c["id"]: c["name"] for c in ds.categories}
    out: dict[str, list[tuple[str, list[float], Any]]] = {
        str(f): [] for f in ds.images.file_name}
    anns = ds.annotations
    for r, img in enumerate(ds.image_index.tolist()):
        seg = plain(anns.segmentation[r]) if anns.segmentation[r] is not None else None
        out[str(ds.images.file_name[img])].append(
            (names[int(anns.category_id[r])], anns.bbox[r].tolist(), seg))
    return out


@pytest.fixture(params=list(DATASETS))
def source(request: pytest.FixtureRequest) -> Dataset:
    return cocokit.load(real_path(*DATASETS[request.param]))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_round_trip(source: Dataset, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / fmt
    losses = formats.write(source, out, fmt)
    assert formats.detect(str(out)) == fmt
    back, read_losses = formats.read(out)
    # reading our own output loses nothing the writer did not already report
    assert set(read_losses.kinds()) <= set(losses.kinds())
    assert back.num_images == source.num_images
    assert back.num_annotations == source.num_annotations
    assert [c["name"] for c in back.categories] == [c["name"] for c in source.categories]
    assert [c["id"] for c in back.categories] == [c["id"] for c in source.categories]
    has_polygons, tol = FORMATS[fmt]
    before, after = _objects(source), _objects(back)
    assert before.keys() == after.keys()
    kinds = source.annotations.segmentation_kind
    k = losses.kinds()
    moved = 0
    for name, objs in before.items():
        got = after[name]
        assert [o[0] for o in got] == [o[0] for o in objs], name
        b0, b1 = np.array([o[1] for o in objs]), np.array([o[1] for o in got])
        if len(b0) == 0:
            continue
        same = np.isclose(b1, b0, rtol=1e-6, atol=1e-9).all(axis=1)
        moved += int(np.count_nonzero(~same))
        for (_, _, seg0), (_, _, seg1) in zip(objs, got):
            if has_polygons and isinstance(seg0, list):
                assert len(seg1) == len(seg0)
                for r0, r1 in zip(seg0, seg1):
                    if tol == 0.0:
                        assert r1 == r0
                    else:
                        np.testing.assert_allclose(r1, r0, rtol=tol, atol=1e-9)
            elif isinstance(seg0, dict) and fmt in MASKS:
                np.testing.assert_array_equal(_mask(seg1), _mask(seg0))
            elif not has_polygons or seg0 is None or isinstance(seg0, dict):
                assert seg1 is None  # boxes only: no segmentation comes back
    # the loss report says what changed: boxes differ only where it says so
    assert moved == k.get("polygon-box-recomputed", 0) + k.get("mask-box-recomputed", 0)
    n_poly = int(np.count_nonzero(kinds == 1))
    n_rle = int(np.count_nonzero(kinds >= 2))
    assert k.get("polygon-as-box", 0) == (0 if has_polygons else n_poly)
    assert k.get("rle-as-box", 0) == (0 if fmt in MASKS else n_rle)
    if fmt in MASKS:
        assert k.get("rle-recompressed", 0) == int(np.count_nonzero(kinds == 2))
    assert k.get("area-recomputed", 0) == int(np.count_nonzero(~np.isnan(source.annotations.area)))
    crowd = int(np.count_nonzero(source.annotations.iscrowd == 1))
    assert k.get("crowd-flag-dropped", 0) == (0 if fmt == "labelme" else crowd)
    if fmt == "labelme":  # crowd flags travel as a shape key
        assert int(np.count_nonzero(back.annotations.iscrowd == 1)) == crowd
    # extra image keys: VOC and Label Studio drop or carry them, and say which
    extra_keys = {key for e in source.images.extra.tolist() for key in (e or ())}
    dropped = {kind.split(":", 1)[1] for kind in k if kind.startswith("image-key-dropped:")}
    back_keys = {key for e in back.images.extra.tolist() for key in (e or ())}
    assert dropped | back_keys >= extra_keys
    assert not dropped & back_keys
    # top-level keys come back through the label map
    assert set(back.extra) == set(source.extra)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_strict_refuses_before_writing(fmt: str, tmp_path: Path) -> None:
    ds = cocokit.load(real_path(*DATASETS["coco-mini"]))
    out = tmp_path / "out"
    with pytest.raises(formats.LossyConversion, match="refusing a lossy conversion"):
        formats.write(ds, out, fmt, strict=True)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_lossless_dataset_passes_strict(fmt: str, tmp_path: Path) -> None:
    b = cocokit.DatasetBuilder()
    cat = b.add_category("cat")
    img = b.add_image("a.jpg", width=100, height=80)
    b.add_annotation(img, cat, bbox=[10, 20, 30, 40])
    ds = b.build()
    ds = cocokit.read_coco({"images": list(ds.images), "categories": list(ds.categories),
                            "annotations": [{k: v for k, v in a.items() if k != "area"}
                                            for a in ds.annotations]})
    losses = formats.write(ds, tmp_path / "out", fmt, strict=True)
    assert not losses
    back, _ = formats.read(tmp_path / "out", fmt)
    assert back.annotations.bbox.tolist() == [[10, 20, 30, 40]]


# -- the areas a reader computes are those validate expects ------------------------------

# format -> where it is written (a file, or a folder)
POLYGON_FORMATS = {"yolo": "yolo", "labelme": "lm", "cvat": "a.xml", "labelstudio": "ls",
                   "dota": "dota"}


def _area_warnings(ds: Dataset) -> list[str]:
    """validate's area warnings of ``ds`` written as COCO (the export fills the areas
    the reader left out, as convert and import do)."""
    report = cocokit.validate(cocokit.to_json(ds))
    return [f"{p.path}: {p.message}" for p in report.problems if p.code == "area-mismatch"]


@pytest.mark.parametrize("fmt", list(POLYGON_FORMATS))
def test_read_back_areas_pass_validate(fmt: str, tmp_path: Path) -> None:
    """coco-mini's polygons (small ones among them, whose pixel count is more than 10%
    off their shoelace area) through each format with polygons and back: every area read or
    computed is a polygon's shoelace area or a mask's pixel count, as validate checks,
    so the tool's own output raises none of its area warnings."""
    full = cocokit.load(real_path(*DATASETS["coco-mini"]))
    # (its 5 crowd RLEs state areas validate finds off their masks: COCO's own, left out)
    src = full.replace(annotations=full.annotations.take(
        np.flatnonzero(full.annotations.iscrowd == 0)))
    assert not _area_warnings(src)
    out = tmp_path / POLYGON_FORMATS[fmt]
    formats.write(src, out, fmt, **({"task": "segment"} if fmt == "yolo" else {}))
    back, _ = formats.read(out, fmt)
    polygons = int((back.annotations.segmentation_kind == 1).sum())
    assert polygons > 500
    assert not _area_warnings(back)


def test_real_labelme_files_pass_validate(tmp_path: Path) -> None:
    """SAHI's LabelMe files (real polygons) convert to COCO without area warnings."""
    for name in ("terrain1.json", "terrain2.json"):
        (tmp_path / name).write_bytes(real_path("sahi-testdata", "coco_utils", name)
                                      .read_bytes())
    ds, _ = formats.read(tmp_path, "labelme")
    assert len(ds.annotations) > 10 and not _area_warnings(ds)

"""cocokit.augment end to end on real images: files, ids, provenance, determinism,
errors that leave nothing half-written, bad images named or skipped, fsspec locations
(memory://), the CLI."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

import cocokit
from cocokit.augment import (
    Affine,
    CenterCrop,
    ColorJitter,
    HorizontalFlip,
    Noise,
    Perspective,
    Pipeline,
    RandomCrop,
    RandomResizedCrop,
    Rotate,
    Rotate90,
    Scale,
    Shear,
    Translate,
    VerticalFlip,
    _pixels,
    apply_matrix,
    augment,
)
from cocokit.dataset import plain
from cocokit.errors import BadImagesError, InputError, OptionError

from .conftest import local_files, memory_files

REPO = Path(__file__).resolve().parents[1]
TINY_VAL = ("tiny-coco-images", "annotations", "instances_val2017.json")
TINY_VAL_IMAGES = ("tiny-coco-images", "images", "val2017")
MINI_KP = ("coco-mini", "annotations", "person_keypoints_val2017.json")
MINI_IMAGES = ("coco-mini", "val2017")


def real(real_data: Path, *parts: str) -> Path:
    p = real_data.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data file missing: {p}")
    return p


def tiny(real_data: Path) -> tuple[cocokit.Dataset, Path]:
    return cocokit.load(real(real_data, *TINY_VAL)), real(real_data, *TINY_VAL_IMAGES)


def persons(real_data: Path, n: int = 5) -> tuple[cocokit.Dataset, Path]:
    """The first n images of coco-mini that have person keypoints, plus one without."""
    ds = cocokit.load(real(real_data, *MINI_KP))
    with_people = np.flatnonzero(ds.annotation_counts > 0)[:n]
    without = np.flatnonzero(ds.annotation_counts == 0)[:1]
    return ds.select_images(np.sort(np.concatenate([with_people, without]))), real(
        real_data, *MINI_IMAGES)


def load_out(out: Path) -> tuple[cocokit.Dataset, dict[str, Any]]:
    doc = json.loads((out / "annotations.json").read_text())
    return cocokit.load(out / "annotations.json"), doc


def decoded(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def rle_mask(seg: dict[str, Any]) -> np.ndarray:
    h, w = seg["size"]
    if isinstance(seg["counts"], list):
        return mask_utils.decode(mask_utils.frPyObjects(seg, h, w))
    return mask_utils.decode({"size": [h, w], "counts": seg["counts"].encode()})


PIPE = Pipeline([HorizontalFlip(p=0.5), Rotate(angle=(-25, 25)), RandomCrop(360, 300),
                 ColorJitter()], min_visibility=0.1)


def test_augment_writes_images_annotations_and_provenance(real_data: Path,
                                                          tmp_path: Path) -> None:
    ds, images = tiny(real_data)
    out_dir = tmp_path / "out"
    out, summary = augment(ds, PIPE, images, out_dir, copies=2, seed=3, image_ids="auto",
                           annotation_ids="auto")
    again, doc = load_out(out_dir)
    n = len(ds.images)
    assert len(again.images) == len(out.images) == summary.images == 3 * n
    assert summary.augmented_images == 2 * n and summary.source_images == n
    assert len(again.annotations) == summary.annotations
    # originals first, then their copies; every file exists with its recorded size
    by_id = {r["id"]: r for r in doc["images"]}
    for rec in doc["images"]:
        with Image.open(out_dir / "images" / rec["file_name"]) as im:
            assert im.size == (rec["width"], rec["height"])
        if "augmented_from" in rec:
            src = by_id[rec["augmented_from"]]
            assert rec["file_name"].startswith(Path(src["file_name"]).stem + "_aug")
            assert [a["op"] for a in rec["augmentation"]][-2:] == ["random_crop", "color_jitter"]
            assert (rec["width"], rec["height"]) == (360, 300)
            for key in ("license", "coco_url", "flickr_url", "date_captured"):
                assert rec[key] == src[key]  # fields the transform does not change
        else:
            assert (out_dir / "images" / rec["file_name"]).read_bytes() == (
                images / rec["file_name"]).read_bytes()
    # integrity: ids unique, references valid, pycocotools can read every mask
    report = cocokit.validate(out_dir / "annotations.json")
    assert report.ok, report.errors[:3]
    ids = [a["id"] for a in doc["annotations"]]
    assert ids == list(range(1, len(ids) + 1))
    assert [r["id"] for r in doc["images"]] == list(range(1, 3 * n + 1))
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out_dir / "annotations.json"))
    for a in doc["annotations"]:
        assert coco.annToMask(a).sum() > 0
        img = by_id[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= img["width"] + 1e-6 and y + h <= img["height"] + 1e-6
        assert a["area"] > 0
    # crowds keep their uncompressed RLE style
    crowds = [a for a in doc["annotations"] if a["iscrowd"] == 1]
    assert crowds and all(isinstance(a["segmentation"]["counts"], list) for a in crowds)
    # everything dropped was counted
    src_total = len(ds.annotations)
    copies_kept = len(doc["annotations"]) - src_total
    assert copies_kept + summary.dropped_annotations == 2 * src_total
    assert summary.dropped_annotations == sum(summary.dropped_by_reason.values()) > 0
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


def test_same_seed_gives_the_same_bytes_whatever_the_workers(real_data: Path,
                                                              tmp_path: Path) -> None:
    ds, images = tiny(real_data)
    pipe = Pipeline([*PIPE.ops, Noise(std=(2, 6))], min_visibility=0.1)
    runs = {}
    for name, workers, seed in (("a", 1, 7), ("b", 2, 7), ("c", 1, 8)):
        augment(ds, pipe, images, tmp_path / name, copies=2, seed=seed, workers=workers,
                keep_originals=False)
        files = sorted((tmp_path / name / "images").iterdir())
        runs[name] = ((tmp_path / name / "annotations.json").read_bytes(),
                      {p.name: p.read_bytes() for p in files})
    assert runs["a"] == runs["b"]
    assert runs["a"][0] != runs["c"][0]
    assert runs["a"][1].keys() == runs["c"][1].keys()
    assert runs["a"][1] != runs["c"][1]


def test_two_flips_in_one_pipeline_copy_the_source(real_data: Path, tmp_path: Path) -> None:
    ds, images = persons(real_data)
    out, _ = augment(ds, [HorizontalFlip(), HorizontalFlip()], images, tmp_path / "o",
                     image_ids="keep", annotation_ids="keep")
    for row in range(len(out.images)):
        rec = out.images[row]
        if "augmented_from" not in rec:
            continue
        src_row = ds.image_row(rec["augmented_from"])
        assert (tmp_path / "o" / "images" / rec["file_name"]).read_bytes() == (
            images / ds.images.file_name[src_row]).read_bytes()
        got = out.annotations_of(row)
        want = ds.annotations_of(src_row)
        for g, w in zip(got, want, strict=True):
            assert {k: v for k, v in g.items() if k not in ("id", "image_id")} == {
                k: v for k, v in w.items() if k not in ("id", "image_id")}


def _passes(ds: cocokit.Dataset, images: Path, tmp: Path, op: Any, n: int
            ) -> tuple[cocokit.Dataset, Path]:
    cur, cur_images = ds, images
    for i in range(n):
        out_dir = tmp / f"pass{i}"
        cur, _ = augment(cur, [op], cur_images, out_dir, keep_originals=False, format="png",
                         image_ids="keep", annotation_ids="keep")
        cur_images = out_dir / "images"
    return cur, cur_images


@pytest.mark.parametrize(("which", "op", "n"), [
    ("persons", HorizontalFlip(), 2),
    ("persons", VerticalFlip(), 2),
    ("tiny", Rotate90(k=1), 4),
])
def test_flips_twice_and_quarter_turns_four_times_through_files(
        real_data: Path, tmp_path: Path, which: str, op: Any, n: int) -> None:
    ds, images = persons(real_data) if which == "persons" else tiny(real_data)
    out, out_images = _passes(ds, images, tmp_path, op, n)
    assert len(out.images) == len(ds.images) and len(out.annotations) == len(ds.annotations)
    for row in range(len(ds.images)):
        src_name = str(ds.images.file_name[row])
        assert out.images.width[row] == ds.images.width[row]
        out_name = str(out.images.file_name[row])
        # pixels: exactly the original's (PNG is lossless)
        assert np.array_equal(decoded(out_images / out_name), decoded(images / src_name))
        for a, b in zip(ds.annotations_of(row), out.annotations_of(row), strict=True):
            assert a["category_id"] == b["category_id"] and a["iscrowd"] == b["iscrowd"]
            if isinstance(a["segmentation"], dict):
                mask = rle_mask(a["segmentation"])
                assert np.array_equal(mask, rle_mask(b["segmentation"]))
                ys, xs = np.nonzero(mask)  # boxes are the mask's bounds now
                box = [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
            else:
                for ra, rb in zip(a["segmentation"], b["segmentation"], strict=True):
                    np.testing.assert_allclose(ra, rb, rtol=0, atol=1e-9)
                xy = np.concatenate([np.reshape(r, (-1, 2)) for r in a["segmentation"]])
                box = [*xy.min(0), *(xy.max(0) - xy.min(0))]
            np.testing.assert_allclose(b["bbox"], box, rtol=0, atol=1e-9)
            if "keypoints" in a:  # left and right swapped twice: back in place
                np.testing.assert_allclose(a["keypoints"], b["keypoints"], rtol=0, atol=1e-9)
                assert a["num_keypoints"] == b["num_keypoints"]


@pytest.mark.parametrize("backend", ["opencv", "pillow"])
def test_pixels_and_annotations_move_together(real_data: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              backend: str) -> None:
    """Each object painted white on black: after augmenting, the white pixels are where
    the transformed annotation is."""
    if backend == "pillow":
        monkeypatch.setenv("COCOKIT_PIXELS", "pillow")
    else:
        monkeypatch.delenv("COCOKIT_PIXELS", raising=False)
        if _pixels._import_cv2() is None:
            pytest.skip("OpenCV is not installed")
    src = cocokit.load(real(real_data, "coco-mini", "annotations", "instances_val2017.json"))
    (tmp_path / "img").mkdir()
    b = cocokit.DatasetBuilder()
    b.add_category("thing", id=1)
    picked = 0
    for r in range(len(src.annotations)):
        seg = plain(src.annotations.segmentation[r])
        if not isinstance(seg, list) or src.annotations.area[r] < 2000:
            continue
        row = int(src.image_index[r])
        w, h = int(src.images.width[row]), int(src.images.height[row])
        mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, h, w)))
        Image.fromarray(mask * 255).save(tmp_path / "img" / f"o{r}.png")
        iid = b.add_image(f"o{r}.png", w, h)
        b.add_annotation(iid, 1, polygon=seg)
        picked += 1
        if picked == 12:
            break
    ds = b.build()
    pipe = Pipeline([Affine(scale=(0.8, 1.2), rotate=(-40, 40), shear_x=(-8, 8)),
                     Perspective((0.05, 0.2)), RandomResizedCrop(320, 280, scale=(0.5, 1))],
                    interpolation="nearest", min_area=0)
    out, _ = augment(ds, pipe, tmp_path / "img", tmp_path / "out", keep_originals=False,
                     format="png", seed=5)
    inter = union = 0
    for row in range(len(out.images)):
        pix = np.asarray(Image.open(tmp_path / "out" / "images" / out.images.file_name[row]))
        pix = pix > 127
        ann = out.annotations_of(row)
        rings = [list(map(float, rr)) for a in ann for rr in a["segmentation"] if len(rr) >= 6]
        got = (mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(rings, 280, 320)))
               if rings else np.zeros((280, 320), np.uint8)) > 0
        inter += int((pix & got).sum())
        union += int((pix | got).sum())
    assert union > 10000 and inter / union >= 0.98


def test_ids_and_augmented_from(real_data: Path, tmp_path: Path) -> None:
    ds, images = persons(real_data, 3)
    keep, _ = augment(ds, [HorizontalFlip()], images, tmp_path / "k", image_ids="keep",
                      annotation_ids="keep")
    n = len(ds.images)
    assert keep.images.id[:: 2].tolist() == ds.images.id.tolist()  # originals keep theirs
    new_ids = keep.images.id[1::2]
    assert (new_ids > ds.images.id.max()).all()
    for row in range(1, 2 * n, 2):
        assert keep.images[row]["augmented_from"] == keep.images.id[row - 1]
    assert (keep.annotations.id[np.isin(keep.annotations.image_id, new_ids)]
            > ds.annotations.id.max()).all()
    auto, _ = augment(ds, [HorizontalFlip()], images, tmp_path / "a", image_ids="auto",
                      annotation_ids="auto")
    assert auto.images.id.tolist() == list(range(1, 2 * n + 1))
    for row in range(1, 2 * n, 2):
        assert auto.images[row]["augmented_from"] == row  # the original's new id
    bare, _ = augment(ds, [HorizontalFlip()], images, tmp_path / "b", keep_originals=False,
                      image_ids="auto", annotation_ids="auto")
    assert [bare.images[r]["augmented_from"] for r in range(n)] == ds.images.id.tolist()
    assert bare.annotations.id.tolist() == list(range(1, len(bare.annotations) + 1))


def test_augmentation_matrix_maps_source_keypoints(real_data: Path, tmp_path: Path) -> None:
    ds, images = persons(real_data, 4)
    pipe = Pipeline([Rotate(angle=(-20, 20)), Scale((0.7, 1.1))], min_area=0)
    out, _ = augment(ds, pipe, images, tmp_path / "o", keep_originals=False, seed=2)
    checked = 0
    for row in range(len(out.images)):
        rec = out.images[row]
        m = np.asarray(rec["augmentation_matrix"])
        got = out.annotations_of(row)
        want = ds.annotations_of(ds.image_row(rec["augmented_from"]))
        if len(got) != len(want):
            continue  # something left the canvas; the pairing by order would not hold
        for g, w in zip(got, want, strict=True):
            kp_w = np.asarray(w["keypoints"], float).reshape(-1, 3)
            kp_g = np.asarray(g["keypoints"], float).reshape(-1, 3)
            vis = (kp_w[:, 2] > 0) & (kp_g[:, 2] > 0)
            np.testing.assert_allclose(kp_g[vis, :2], apply_matrix(kp_w[vis, :2], m), atol=1e-9)
            checked += int(vis.sum())
    assert checked > 20


def test_extra_fields_are_kept(real_data: Path, tmp_path: Path) -> None:
    doc = json.loads(real(real_data, *TINY_VAL).read_text())
    for i, a in enumerate(doc["annotations"]):
        a["note"] = {"n": i}
    for im in doc["images"]:
        im["camera"] = "x100"
    doc["custom_top"] = [1, 2, 3]
    ds = cocokit.load(doc)
    _, images = tiny(real_data)
    augment(ds, [HorizontalFlip(), CenterCrop(400, 300)], images, tmp_path / "o")
    _, out = load_out(tmp_path / "o")
    assert out["custom_top"] == [1, 2, 3] and out["info"] == doc["info"]
    assert out["licenses"] == doc["licenses"] and out["categories"] == doc["categories"]
    assert all(im["camera"] == "x100" for im in out["images"])
    assert all(isinstance(a["note"]["n"], int) for a in out["annotations"])


def test_ignore_negative_samples(real_data: Path, tmp_path: Path) -> None:
    ds, images = persons(real_data, 3)
    assert (ds.annotation_counts == 0).any()
    out, summary = augment(ds, [RandomCrop(64, 64)], images, tmp_path / "o", copies=3, seed=1,
                           ignore_negative_samples=True)
    assert (out.annotation_counts > 0).all()
    assert summary.skipped_negative_images > 0
    written = {p.name for p in (tmp_path / "o" / "images").iterdir()}
    assert written == {str(f) for f in out.images.file_name}


# -- errors: clear, and nothing half-written ----------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_missing_image_is_named_once_all_are_done(real_data: Path, tmp_path: Path,
                                                    workers: int) -> None:
    ds, images = tiny(real_data)
    doc = cocokit.to_dict(ds, image_ids="keep", annotation_ids="keep")
    doc["images"][2]["file_name"] = "gone.jpg"
    with pytest.raises(BadImagesError) as info:
        augment(cocokit.load(doc), PIPE, images, tmp_path / "out", workers=workers)
    assert isinstance(info.value, InputError)
    assert info.value.failures == [(str(images / "gone.jpg"), "image file not found")]
    assert "1 image(s) could not be augmented" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_no_image_at_all_is_refused_before_any_work(real_data: Path, tmp_path: Path) -> None:
    ds, _ = tiny(real_data)
    wrong = tmp_path / "elsewhere"
    wrong.mkdir()
    (wrong / "unrelated.jpg").write_bytes(b"x")
    with pytest.raises(InputError) as info:
        augment(ds, PIPE, wrong, tmp_path / "out")
    assert not isinstance(info.value, BadImagesError)
    assert info.value.path == "images[0].file_name"
    assert "none of the 6 images is there" in str(info.value)
    assert "is this the image folder" in str(info.value)
    assert not (tmp_path / "out").exists()


def _bad_copy(ds: cocokit.Dataset, images: Path, folder: Path) -> tuple[str, str]:
    """A copy of the images with image 1 missing and image 4 made of junk bytes."""
    shutil.copytree(images, folder)
    gone, junk = str(ds.images.file_name[1]), str(ds.images.file_name[4])
    (folder / gone).unlink()
    (folder / junk).write_bytes(b"not a jpeg at all")
    return gone, junk


@pytest.mark.parametrize("workers", [1, 2])
def test_every_bad_image_is_named_and_can_be_skipped(real_data: Path, tmp_path: Path,
                                                     workers: int) -> None:
    ds, images = tiny(real_data)
    folder = tmp_path / "images"
    gone, junk = _bad_copy(ds, images, folder)
    out_dir = tmp_path / "out"
    with pytest.raises(BadImagesError) as info:
        augment(ds, PIPE, folder, out_dir, copies=2, workers=workers)
    failures = info.value.failures
    assert [f for f, _ in failures] == [str(folder / gone), str(folder / junk)]  # image order
    assert failures[0][1] == "image file not found"
    assert failures[1][1].startswith("cannot read the image")
    assert "2 image(s) could not be augmented" in str(info.value)
    assert not out_dir.exists()  # nothing committed, the folder it made is gone too

    _, summary = augment(ds, PIPE, folder, out_dir, copies=2, workers=workers,
                         skip_bad_images=True)
    assert summary.skipped == tuple(failures)
    assert summary.source_images == 6 and summary.images == 3 * 4
    bad_ids = {int(ds.images.id[1]), int(ds.images.id[4])}
    good_anns = int(np.isin(ds.annotations.image_id, list(bad_ids), invert=True).sum())
    assert summary.annotations + summary.dropped_annotations == 3 * good_anns
    _, doc = load_out(out_dir)
    names = {r["file_name"] for r in doc["images"]}
    assert not any(n.startswith((Path(gone).stem, Path(junk).stem)) for n in names)
    # only what annotations.json lists is there: the junk original copied before its
    # decoding failed was taken back
    assert {p.name for p in (out_dir / "images").iterdir()} == names
    assert cocokit.validate(out_dir / "annotations.json").ok


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_image_mid_run_leaves_nothing(real_data: Path, tmp_path: Path,
                                            workers: int) -> None:
    ds, images = tiny(real_data)
    copy = tmp_path / "images"
    shutil.copytree(images, copy)
    (copy / str(ds.images.file_name[4])).write_bytes(b"not a jpeg at all")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="cannot read"):
        augment(ds, PIPE, copy, out_dir, copies=2, workers=workers)
    assert [p.name for p in out_dir.iterdir()] == ["keep.txt"]


def test_existing_output_is_refused_unless_overwrite(real_data: Path, tmp_path: Path) -> None:
    ds, images = persons(real_data, 2)
    out_dir = tmp_path / "out"
    augment(ds, [HorizontalFlip()], images, out_dir)
    before = (out_dir / "annotations.json").read_bytes()
    with pytest.raises(OptionError, match="overwrite"):
        augment(ds, [VerticalFlip()], images, out_dir)
    assert (out_dir / "annotations.json").read_bytes() == before
    augment(ds, [VerticalFlip()], images, out_dir, overwrite=True, copies=2)
    _, doc = load_out(out_dir)
    assert len(doc["images"]) == 3 * len(ds.images)
    assert len(list((out_dir / "images").iterdir())) == 3 * len(ds.images)
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"copies": 0}, "copies"),
    ({"quality": 101}, "quality"),
    ({"format": "gif"}, "format"),
    ({"workers": 0}, "workers"),
    ({"image_ids": "renumber"}, "image_ids"),
    ({"seed": -1}, "seed"),
])
def test_bad_options(real_data: Path, tmp_path: Path, kwargs: dict[str, Any],
                     option: str) -> None:
    ds, images = tiny(real_data)
    with pytest.raises(OptionError) as info:
        augment(ds, PIPE, images, tmp_path / "out", **kwargs)
    assert info.value.option == option
    assert not (tmp_path / "out").exists()


def test_unusable_output_folders(real_data: Path, tmp_path: Path) -> None:
    ds, images = tiny(real_data)
    with pytest.raises(OptionError, match="parent"):
        augment(ds, PIPE, images, tmp_path / "no" / "such" / "dir")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OptionError, match="a folder"):
        augment(ds, PIPE, images, tmp_path / "file")
    # an output whose images/ is (or holds) the source folder would replace the sources
    src = tmp_path / "data" / "images"
    shutil.copytree(images, src)
    for source in (src, src / "nested"):
        if source.name == "nested":
            shutil.move(str(tmp_path / "data" / "images"), str(tmp_path / "moved"))
            src.mkdir()
            shutil.move(str(tmp_path / "moved"), str(source))
        with pytest.raises(OptionError, match="source image folder"):
            augment(ds, PIPE, source, tmp_path / "data", overwrite=True)
        assert sorted(p.name for p in source.iterdir()) == sorted(
            str(f) for f in ds.images.file_name)
        assert not (tmp_path / "data" / "annotations.json").exists()


def test_image_size_mismatch_is_an_input_error(real_data: Path, tmp_path: Path) -> None:
    ds, images = tiny(real_data)
    doc = cocokit.to_dict(ds, image_ids="keep", annotation_ids="keep")
    doc["images"][0]["width"] += 10
    with pytest.raises(InputError, match="record says"):
        augment(cocokit.load(doc), PIPE, images, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- fsspec locations ---------------------------------------------------------------------

def nested(real_data: Path, folder: Path, fs: Any, root: str) -> cocokit.Dataset:
    """tiny, with half its images in a sub-folder: laid out in ``folder`` and in memory."""
    ds, images = tiny(real_data)
    doc = cocokit.to_dict(ds, image_ids="keep", annotation_ids="keep")
    for k, rec in enumerate(doc["images"]):
        name = rec["file_name"]
        rec["file_name"] = f"sub/{name}" if k % 2 else name
        data = (images / name).read_bytes()
        (folder / rec["file_name"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / rec["file_name"]).write_bytes(data)
        fs.pipe_file(f"{root}/in/{rec['file_name']}", data)
    return cocokit.load(doc)


@pytest.mark.parametrize("workers", [1, 2])
def test_memory_urls_give_the_same_bytes_as_local_paths(
        real_data: Path, tmp_path: Path, memory_fs: tuple[Any, str], workers: int) -> None:
    fs, root = memory_fs
    ds = nested(real_data, tmp_path / "in", fs, root)
    pipe = Pipeline([*PIPE.ops, Noise(std=(2, 6))], min_visibility=0.1)
    local, local_summary = augment(ds, pipe, tmp_path / "in", tmp_path / "out", copies=2,
                                   seed=5, workers=workers)
    # with two workers, memory:// is read and written here and the bytes travel
    mem, mem_summary = augment(ds, pipe, f"memory://{root}/in", f"memory://{root}/out",
                               copies=2, seed=5, workers=workers)
    assert cocokit.to_json(mem) == cocokit.to_json(local)
    assert dataclasses.replace(mem_summary, seconds=0, output="") == dataclasses.replace(
        local_summary, seconds=0, output="")
    assert mem_summary.augmented_images == 12 and mem_summary.output == f"memory://{root}/out"
    got = memory_files(fs, f"{root}/out")
    assert got == local_files(tmp_path / "out")  # every image and annotations.json
    assert any(name.startswith("images/sub/") for name in got)


def test_memory_output_is_refused_unless_overwrite_which_replaces_it(
        real_data: Path, memory_fs: tuple[Any, str]) -> None:
    fs, root = memory_fs
    ds, images = persons(real_data, 2)
    out = f"memory://{root}/out"
    augment(ds, [HorizontalFlip()], images, out, copies=2)
    before = memory_files(fs, f"{root}/out")
    assert len(before) == 1 + 3 * len(ds.images)
    with pytest.raises(OptionError, match="overwrite"):
        augment(ds, [VerticalFlip()], images, out)
    assert memory_files(fs, f"{root}/out") == before
    augment(ds, [VerticalFlip()], images, out, overwrite=True, keep_originals=False)
    after = memory_files(fs, f"{root}/out")
    assert len(after) == 1 + len(ds.images)  # the old images/ went with the old output
    assert after["annotations.json"] != before["annotations.json"]
    # an output whose images/ is the source folder is refused
    with pytest.raises(OptionError, match="source image folder"):
        augment(ds, [VerticalFlip()], f"{out}/images", out, overwrite=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_memory_bad_images_are_named_and_nothing_is_left(
        real_data: Path, tmp_path: Path, memory_fs: tuple[Any, str], workers: int) -> None:
    fs, root = memory_fs
    ds = nested(real_data, tmp_path / "in", fs, root)
    gone, junk = str(ds.images.file_name[1]), str(ds.images.file_name[4])
    fs.rm(f"{root}/in/{gone}")
    fs.pipe_file(f"{root}/in/{junk}", b"not a jpeg at all")
    src, out = f"memory://{root}/in", f"memory://{root}/out"
    with pytest.raises(BadImagesError) as info:
        augment(ds, PIPE, src, out, workers=workers)
    assert [f for f, _ in info.value.failures] == [f"{src}/{gone}", f"{src}/{junk}"]
    assert info.value.failures[0][1] == "image file not found"
    assert not fs.exists(f"{root}/out/annotations.json")
    assert not fs.exists(f"{root}/out/images")  # the images written were removed
    result, summary = augment(ds, PIPE, src, out, workers=workers, skip_bad_images=True)
    assert summary.skipped == tuple(info.value.failures)
    got = memory_files(fs, f"{root}/out")
    assert {f"images/{n}" for n in result.images.file_name} | {"annotations.json"} == set(got)
    assert len(result.images) == 2 * 4


class _FlakyFileSystem(MemoryFileSystem):
    """``flaky://``: the memory filesystem, whose reads fail ``fails[path]`` times first
    with a passing error (as a dropped connection to object storage would)."""

    protocol = ("flaky",)
    fails: ClassVar[dict[str, int]] = {}

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str) and path.startswith("flaky://"):
            path = path[len("flaky://"):]
        return super()._strip_protocol(path)

    def cat_file(self, path: str, start: Any = None, end: Any = None, **kwargs: Any) -> Any:
        p = self._strip_protocol(path)
        if self.fails.get(p, 0):
            self.fails[p] -= 1
            raise ConnectionError("connection reset")
        return super().cat_file(path, start, end, **kwargs)


def test_passing_read_errors_are_tried_again(real_data: Path, tmp_path: Path,
                                             memory_fs: tuple[Any, str]) -> None:
    fs, root = memory_fs
    ds, images = persons(real_data, 2)
    names = [str(n) for n in ds.images.file_name]
    for name in names:
        fs.pipe_file(f"{root}/in/{name}", (images / name).read_bytes())
    fsspec.register_implementation("flaky", _FlakyFileSystem, clobber=True)
    first, last = f"{root}/in/{names[0]}", f"{root}/in/{names[2]}"
    _FlakyFileSystem.fails = {first: 2, last: 5}
    src = f"flaky://{root}/in"
    with pytest.raises(BadImagesError) as info:
        augment(ds, [Rotate(angle=(-10, 10))], src, tmp_path / "out", workers=1)
    # the first image failed twice and then went through; the last one kept failing
    assert info.value.failures == [
        (f"{src}/{names[2]}", "failed 3 times, last: ConnectionError: connection reset")]
    assert _FlakyFileSystem.fails == {first: 0, last: 2}
    _FlakyFileSystem.fails = {first: 2, last: 2}
    augment(ds, [Rotate(angle=(-10, 10))], src, tmp_path / "out", workers=1)
    augment(ds, [Rotate(angle=(-10, 10))], images, tmp_path / "local", workers=1)
    assert local_files(tmp_path / "out") == local_files(tmp_path / "local")


# -- property: whatever the pipeline, the export holds ------------------------------------

OP_STRATEGIES = st.one_of(
    st.builds(HorizontalFlip, p=st.sampled_from([0.5, 1.0])),
    st.builds(VerticalFlip),
    st.builds(Rotate90, k=st.integers(0, 3)),
    st.builds(Rotate, angle=st.floats(-90, 90), expand=st.booleans()),
    st.builds(Scale, factor=st.floats(0.3, 1.5)),
    st.builds(Translate, x=st.floats(-0.5, 0.5), y=st.floats(-0.5, 0.5)),
    st.builds(Shear, x=st.floats(-30, 30)),
    st.builds(Perspective, distortion=st.floats(0, 0.5)),
    st.builds(RandomCrop, width=st.integers(16, 700), height=st.integers(16, 500)),
    st.builds(RandomResizedCrop, width=st.integers(32, 400), height=st.integers(32, 400)),
)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OP_STRATEGIES, min_size=1, max_size=4), seed=st.integers(0, 2**32),
       min_area=st.sampled_from([0.0, 1.0, 50.0]), min_vis=st.sampled_from([0.0, 0.5]))
def test_any_pipeline_keeps_the_export_valid(real_data: Path, ops: list[Any], seed: int,
                                             min_area: float, min_vis: float) -> None:
    ds, images = tiny(real_data)
    ds = ds.select_images([0, 3, 5])  # one of them has a crowd RLE
    tmp = Path(tempfile.mkdtemp(prefix="aug_prop_"))
    try:
        pipe = Pipeline(ops, min_area=min_area, min_visibility=min_vis)
        out, summary = augment(ds, pipe, images, tmp / "o", copies=2, seed=seed)
        report = cocokit.validate(tmp / "o" / "annotations.json")
        assert report.ok, report.errors[:3]
        assert len(set(out.images.id.tolist())) == len(out.images)
        assert len(set(out.annotations.id.tolist())) == len(out.annotations)
        copies = np.isin(out.annotations.image_id,
                         [r["id"] for r in out.images if "augmented_from" in r])
        moved = np.isin(out.annotations.image_id, [
            r["id"] for r in out.images
            if "augmented_from" in r and r["augmentation_matrix"] != np.eye(3).tolist()])
        # what the transform touched obeys the rules; an identity draw passes all through
        assert (out.annotations.area[moved] >= max(min_area, 1e-9)).all()
        assert copies.sum() + summary.dropped_annotations == 2 * len(ds.annotations)
        for r in np.flatnonzero(copies).tolist():
            row = int(out.image_index[r])
            w, h = int(out.images.width[row]), int(out.images.height[row])
            x, y, bw, bh = out.annotations.bbox[r]
            assert x >= 0 and y >= 0 and bw > 0 and bh > 0
            assert x + bw <= w + 1e-6 and y + bh <= h + 1e-6
            seg = plain(out.annotations.segmentation[r])
            if isinstance(seg, list):
                xy = np.concatenate([np.reshape(ring, (-1, 2)) for ring in seg])
                assert (xy >= -1e-9).all() and (xy <= [w + 1e-9, h + 1e-9]).all()
            else:
                assert seg["size"] == [h, w]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- CLI --------------------------------------------------------------------------------

PIPELINE_YAML = """\
min_visibility: 0.2
pipeline:
  - hflip: {p: 0.5}
  - rotate: {angle: [-20, 20]}
  - {op: random_crop, width: 300, height: 300}
  - color_jitter
"""


def test_cli_augment(real_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    from cocokit.cli import app

    ann = real(real_data, *TINY_VAL)
    images = real(real_data, *TINY_VAL_IMAGES)
    (tmp_path / "aug.yaml").write_text(PIPELINE_YAML)
    runner = CliRunner()
    res = runner.invoke(app, ["augment", str(ann), "--images", str(images), "-o",
                              str(tmp_path / "out"), "--pipeline", str(tmp_path / "aug.yaml"),
                              "--copies", "2", "--seed", "4", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "dropped" in res.output
    _, doc = load_out(tmp_path / "out")
    assert len(doc["images"]) == 18
    # a bad pipeline: one line naming the entry, exit 2, nothing written
    (tmp_path / "bad.yaml").write_text("- {op: rotate, angle: [5, 1]}\n")
    res = subprocess.run(
        [sys.executable, "-m", "cocokit", "augment", str(ann), "--images", str(images), "-o",
         str(tmp_path / "out2"), "--pipeline", str(tmp_path / "bad.yaml")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        cwd=REPO)
    assert res.returncode == 2
    assert "pipeline[0].angle" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out2").exists()


def test_cli_augment_as_a_subprocess(real_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    ann = real(real_data, *TINY_VAL)
    images = real(real_data, *TINY_VAL_IMAGES)
    (tmp_path / "aug.yaml").write_text(PIPELINE_YAML)
    res = subprocess.run(
        [sys.executable, "-m", "cocokit", "augment", str(ann), "--images", str(images), "-o",
         str(tmp_path / "out"), "--pipeline", str(tmp_path / "aug.yaml"), "--copies", "1",
         "--workers", "2", "--no-originals", "--image-format", "png", "-q"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    _, doc = load_out(tmp_path / "out")
    assert len(doc["images"]) == 6
    assert all(r["file_name"].endswith("_aug0.png") for r in doc["images"])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_names_bad_images_and_exits_1(real_data: Path, tmp_path: Path, workers: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("yaml")
    from cocokit.cli import main

    ds, images = tiny(real_data)
    ann = real(real_data, *TINY_VAL)
    folder = tmp_path / "images"
    gone, junk = _bad_copy(ds, images, folder)
    (tmp_path / "aug.yaml").write_text(PIPELINE_YAML)
    out_dir = tmp_path / "out"
    args = ["augment", str(ann), "-i", str(folder), "-o", str(out_dir), "-p",
            str(tmp_path / "aug.yaml"), "--workers", workers, "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"failed {folder / gone}: image file not found" in err
    assert f"failed {folder / junk}: cannot read the image" in err
    assert "2 image(s) could not be augmented" in err and "--skip-bad-images" in err
    assert err.index(gone) < err.index(junk)
    assert not (out_dir / "annotations.json").exists() and not out_dir.exists()
    assert main([*args, "--skip-bad-images"]) == 0
    err = capsys.readouterr().err
    assert f"skipped {folder / gone}: image file not found" in err
    assert f"skipped {folder / junk}: cannot read the image" in err
    _, doc = load_out(out_dir)
    assert len(doc["images"]) == 2 * 4
    assert {p.name for p in (out_dir / "images").iterdir()} == {
        r["file_name"] for r in doc["images"]}


def test_cli_reads_and_writes_urls(real_data: Path, tmp_path: Path,
                                   memory_fs: tuple[Any, str]) -> None:
    pytest.importorskip("yaml")
    from cocokit.cli import main

    fs, root = memory_fs
    ann = real(real_data, *TINY_VAL)
    images = real(real_data, *TINY_VAL_IMAGES)
    for p in images.iterdir():
        fs.pipe_file(f"{root}/in/{p.name}", p.read_bytes())
    (tmp_path / "aug.yaml").write_text(PIPELINE_YAML)
    common = ["-p", str(tmp_path / "aug.yaml"), "--workers", "2", "-q", "--copies", "2"]
    assert main(["augment", str(ann), "-i", f"memory://{root}/in", "-o",
                 f"memory://{root}/out", *common]) == 0
    assert main(["augment", str(ann), "-i", str(images), "-o", str(tmp_path / "out"),
                 *common]) == 0
    assert memory_files(fs, f"{root}/out") == local_files(tmp_path / "out")

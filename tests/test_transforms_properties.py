"""Property-based tests of every transform on generated datasets.

After any transform: ids are unique and references valid (the export check passes with
ids kept), records the transform does not touch come out byte for byte the same, and
the input dataset is unchanged.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

import cocokit
from cocokit import DatasetBuilder
from cocokit.transforms import (
    clip,
    edit_categories,
    filter_dataset,
    merge,
    sample,
    split,
    upsample,
)

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def datasets(draw: st.DrawFn, prefix: str = "") -> cocokit.Dataset:
    """A small COCO dataset with boxes (some over the edge), polygons, crowd RLE,
    keypoints, extra keys, sparse ids; read back from JSON like a file."""
    b = DatasetBuilder()
    b.set("info", {"description": "generated"})
    b.set("licenses", [{"id": 1, "name": "L1", "url": "u1"}])
    n_cat = draw(st.integers(1, 5))
    cat_ids = draw(st.lists(st.integers(0, 30), min_size=n_cat, max_size=n_cat, unique=True))
    for k, cid in enumerate(cat_ids):
        b.add_category(f"c{cid}" if draw(st.booleans()) else f"name{k}", id=cid,
                       supercategory="thing")
    n_img = draw(st.integers(0, 8))
    img_ids = draw(st.lists(st.integers(1, 500), min_size=n_img, max_size=n_img, unique=True))
    sizes = []
    for k, iid in enumerate(img_ids):
        w, h = draw(st.integers(8, 64)), draw(st.integers(8, 64))
        extra: dict[str, Any] = {"license": 1}
        if draw(st.booleans()):
            extra["video"] = draw(st.sampled_from(["v1", "v2", "v3"]))
        b.add_image(f"{prefix}dir{k % 2}/img{iid}.jpg", w, h, id=iid, **extra)
        sizes.append((w, h))
    if n_img:
        n_ann = draw(st.integers(0, 20))
        ann_ids = draw(st.lists(st.integers(1, 10_000), min_size=n_ann, max_size=n_ann,
                                unique=True))
        for aid in ann_ids:
            k = draw(st.integers(0, n_img - 1))
            w, h = sizes[k]
            cid = draw(st.sampled_from(cat_ids))
            x = draw(st.floats(-20, w + 5, allow_nan=False).map(lambda v: round(v, 2)))
            y = draw(st.floats(-20, h + 5, allow_nan=False).map(lambda v: round(v, 2)))
            bw = draw(st.floats(0, 40, allow_nan=False).map(lambda v: round(v, 2)))
            bh = draw(st.floats(0, 40, allow_nan=False).map(lambda v: round(v, 2)))
            kind = draw(st.sampled_from(["box", "polygon", "polygon", "crowd"]))
            extra = {"note": "x"} if draw(st.booleans()) else {}
            if draw(st.booleans()):
                extra["area"] = round(bw * bh, 2)
            if draw(st.booleans()):
                extra["keypoints"] = [x + 1, y + 1, 2, 0, 0, 0]
            if kind == "box":
                b.add_annotation(img_ids[k], cid, bbox=[x, y, bw, bh], id=aid, **extra)
            elif kind == "polygon":
                ring = [x, y, x + bw, y, x + bw, y + bh, x + bw / 2, y + bh * 1.5]
                b.add_annotation(img_ids[k], cid, polygon=[ring], bbox=[x, y, bw, bh * 1.5],
                                 id=aid, **extra)
            else:
                mask = np.zeros((h, w), np.uint8, order="F")
                mask[: h // 2, : w // 2] = 1
                rle = mask_utils.encode(mask)
                b.add_annotation(img_ids[k], cid, rle={"size": [h, w], "counts": rle["counts"]},
                                 bbox=[0, 0, w // 2, h // 2], id=aid, **extra)
    return cocokit.load(cocokit.to_json(b.build(), image_ids="keep", annotation_ids="keep"))


def records(ds: cocokit.Dataset) -> dict[str, dict[int, bytes]]:
    """The exported JSON text of every image and annotation record, by id."""
    doc = msgspec.json.decode(cocokit.to_json(ds, image_ids="keep", annotation_ids="keep"),
                              type=dict[str, msgspec.Raw])
    out = {}
    for section in ("images", "annotations"):
        recs = msgspec.json.decode(doc[section], type=list[msgspec.Raw])
        out[section] = {msgspec.json.decode(r)["id"]: bytes(r) for r in recs}
    return out


def check_valid(ds: cocokit.Dataset) -> None:
    assert len(np.unique(ds.images.id)) == len(ds.images)
    assert len(np.unique(ds.annotations.id)) == len(ds.annotations)
    assert (ds.image_index >= 0).all() and (ds.category_index >= 0).all()
    assert len(np.unique(ds.categories.id)) == len(ds.categories)
    cocokit.to_json(ds, image_ids="keep", annotation_ids="keep")  # raises IntegrityError otherwise


def check_subset(before: dict[str, dict[int, bytes]], ds: cocokit.Dataset,
                 changed: set[int] | None = None) -> None:
    """Every record of ``ds`` is, byte for byte, the input record with its id (annotations
    in ``changed`` excepted)."""
    after = records(ds)
    for section, recs in after.items():
        for rid, text in recs.items():
            if section == "annotations" and changed is not None and rid in changed:
                continue
            assert text == before[section][rid], (section, rid)
    check_valid(ds)


def check_origin(out: cocokit.Dataset, *inputs: cocokit.Dataset,
                 ids: bool = True) -> None:
    """Each row of ``out`` names (``out.origin``) the input row it was made from: the same
    ids (``ids``), else the same image size and annotation iscrowd and category."""
    o = out.origin
    assert o is not None
    assert len(o.image_rows) == len(out.images)
    assert len(o.annotation_rows) == len(out.annotations)
    for section, cols in (("images", ("width", "height")),
                          ("annotations", ("iscrowd", "image_id", "category_id"))):
        rows = o.image_rows if section == "images" else o.annotation_rows
        which = o.image_inputs if section == "images" else o.annotation_inputs
        for i, r in enumerate(rows.tolist()):
            k = 0 if which is None else int(which[i])
            src = getattr(inputs[k], section)
            got = getattr(out, section)
            names = ("id",) if ids else cols[:2] if section == "images" else cols[:1]
            for c in names:
                assert getattr(got, c)[i] == getattr(src, c)[r], (section, i, c)


@SETTINGS
@given(ds=datasets(), data=st.data())
def test_filter(ds: cocokit.Dataset, data: st.DataObject) -> None:
    before = records(ds)
    names = ds.categories.name.tolist()
    drop = data.draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True))
    lo = data.draw(st.none() | st.floats(0, 500, allow_nan=False))
    out, report = filter_dataset(
        ds, drop_categories=drop, area=(lo, None) if lo is not None else None,
        min_width=data.draw(st.none() | st.floats(0, 20, allow_nan=False)),
        crowd=data.draw(st.sampled_from(["keep", "drop", "only"])),
        image_globs=data.draw(st.none() | st.sampled_from(["dir0/*", "*.jpg", "*7*"])),
        drop_empty=data.draw(st.booleans()),
        unit=data.draw(st.sampled_from(["annotations", "images"])))
    check_subset(before, out)
    check_origin(out, ds)
    again, _ = filter_dataset(sample(ds, every=2)[0], crowd="drop")  # places compose
    check_origin(again, ds)
    assert records(ds) == before
    assert not set(out.categories.name.tolist()) & set(drop)
    assert report.annotations_in - report.annotations_out == report.total_dropped_annotations


@SETTINGS
@given(ds=datasets(), data=st.data())
def test_sample_and_upsample(ds: cocokit.Dataset, data: st.DataObject) -> None:
    before = records(ds)
    how = data.draw(st.sampled_from(["every", "fraction", "count"]))
    value = {"every": st.integers(1, 4), "fraction": st.floats(0.01, 1.0),
             "count": st.integers(0, 10)}[how]
    out, _ = sample(ds, **{how: data.draw(value)}, seed=data.draw(st.integers(0, 99)))
    check_subset(before, out)
    check_origin(out, ds)
    names = ds.categories.name.tolist()
    factors = data.draw(st.dictionaries(st.sampled_from(names), st.integers(1, 3), max_size=3))
    up, _ = upsample(ds, factors)
    check_valid(up)
    check_origin(up, ds, ids=False)  # a copy names the record it repeats
    n = len(ds.images)
    up_records = records(up)
    for rid, text in up_records["images"].items():
        if rid in before["images"]:
            assert text == before["images"][rid]
    assert all("source_image_id" in up.images[i] for i in range(n, len(up.images)))
    assert records(ds) == before


@SETTINGS
@given(ds=datasets(), data=st.data())
def test_split(ds: cocokit.Dataset, data: st.DataObject) -> None:
    before = records(ds)
    ratios = data.draw(st.sampled_from([{"a": 0.8, "b": 0.2}, {"a": 1, "b": 1, "c": 1},
                                        {"train": 0.7, "val": 0.0, "test": 0.3}]))
    parts, report = split(ds, ratios, stratify=data.draw(st.booleans()),
                          seed=data.draw(st.integers(0, 9)),
                          group_by=data.draw(st.none() | st.just("video")))
    seen: list[int] = []
    for part in parts.values():
        check_subset(before, part)
        check_origin(part, ds)
        seen += part.images.id.tolist()
    assert sorted(seen) == sorted(before["images"])  # each image in exactly one split
    assert sum(len(p.annotations) for p in parts.values()) == len(ds.annotations)
    assert report.images == tuple(len(p.images) for p in parts.values())
    assert records(ds) == before


@SETTINGS
@given(ds=datasets(), data=st.data())
def test_categories(ds: cocokit.Dataset, data: st.DataObject) -> None:
    before = records(ds)
    names = ds.categories.name.tolist()
    drop = data.draw(st.lists(st.sampled_from(names), max_size=len(names) - 1, unique=True))
    reindex = data.draw(st.none() | st.sampled_from([0, 1]))
    out, _ = edit_categories(ds, rename={names[0]: "renamed"} if names[0] not in drop else None,
                             drop=drop, add=["added"], reindex=reindex,
                             sort=data.draw(st.none() | st.sampled_from(["name", "id"])))
    check_valid(out)
    check_origin(out, ds)
    after = records(out)
    kept_names = [n for n in names if n not in drop]
    assert sorted(n for n in out.categories.name.tolist() if n not in ("renamed", "added")) \
        == sorted(n for n in kept_names if n != names[0])
    # annotations: the same records but for category_id, which follows the name
    old_name = dict(zip(ds.categories.id.tolist(), names, strict=True))
    new_name = dict(zip(out.categories.id.tolist(), out.categories.name.tolist(), strict=True))
    for rid, text in after["annotations"].items():
        new, old = msgspec.json.decode(text), msgspec.json.decode(before["annotations"][rid])
        assert {k: v for k, v in new.items() if k != "category_id"} == \
            {k: v for k, v in old.items() if k != "category_id"}
        was = old_name[old["category_id"]]
        assert new_name[new["category_id"]] == ("renamed" if was == names[0] else was)
        if reindex is None:
            assert text == before["annotations"][rid]
    assert after["images"] == before["images"]
    assert records(ds) == before


@SETTINGS
@given(ds=datasets())
def test_clip(ds: cocokit.Dataset) -> None:
    before = records(ds)
    out, report = clip(ds)
    box = ds.annotations.bbox
    w = ds.images.width[ds.image_index].astype(float) if len(ds.images) else box[:, 0]
    h = ds.images.height[ds.image_index].astype(float) if len(ds.images) else box[:, 0]
    crossing = set(ds.annotations.id[(box[:, 0] < 0) | (box[:, 1] < 0) | (box[:, 0] + box[:, 2]
                                     > w) | (box[:, 1] + box[:, 3] > h)].tolist())
    check_subset(before, out, changed=crossing)
    check_origin(out, ds)
    for rec in out.annotations:
        img = out.images[out.image_row(rec["image_id"])]
        x, y, bw, bh = rec["bbox"]
        assert x >= 0 and y >= 0 and x + bw <= img["width"] and y + bh <= img["height"]
        seg = rec.get("segmentation")
        if isinstance(seg, list) and seg and rec["id"] in crossing:
            xy = np.concatenate([np.reshape(r, (-1, 2)) for r in seg])
            assert (xy >= 0).all() and (xy[:, 0] <= img["width"]).all()
            assert (xy[:, 1] <= img["height"]).all()
    assert report.changed_annotations <= len(crossing)
    assert records(ds) == before


@SETTINGS
@given(a=datasets(prefix="a/"), b=datasets(prefix="a/"), data=st.data())
def test_merge(a: cocokit.Dataset, b: cocokit.Dataset, data: st.DataObject) -> None:
    before_a, before_b = records(a), records(b)
    renumber = data.draw(st.booleans())
    dedupe = data.draw(st.booleans())
    out, report = merge([a, b], duplicates=data.draw(st.sampled_from(["prefix", "keep"])),
                        dedupe_images=dedupe, renumber=renumber)
    check_valid(out)
    check_origin(out, a, b, ids=False)
    # dedupe_images keeps an exact duplicate (of the later input, on a shared image) once
    dropped = report.total_dropped_annotations
    assert len(out.annotations) == len(a.annotations) + len(b.annotations) - dropped
    assert dropped == 0 if not dedupe else dropped <= len(b.annotations)
    assert set(out.categories.name.tolist()) == set(a.categories.name.tolist()) | set(
        b.categories.name.tolist())
    if not renumber:  # the first input's records keep their ids and bytes (but categories)
        after = records(out)
        for rid, text in before_a["images"].items():
            assert after["images"][rid] == text
    assert records(a) == before_a and records(b) == before_b

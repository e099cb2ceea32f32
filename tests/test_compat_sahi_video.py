"""cocokit.compat.sahi's video classes (CocoVid...) and shift_bboxes / shift_masks.

SAHI's own tests of these names (tests/test_coco_utils.py ``test_cocovid_annotation``,
``test_cocovid_image``, ``test_coco_video``; tests/test_slicing.py ``test_shift_bboxes``,
``test_shift_masks``, obss/sahi 9a4e5696) run here on both implementations, SAHI's when
it is installed; the differences listed in docs/sahi-migration.md are tested apart.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from cocokit.compat import sahi as ck
from cocokit.errors import CocoKitError


def _sahi_coco() -> Any:
    return pytest.importorskip("sahi.utils.coco", reason="sahi is not installed "
                               "(pip install 'cocokit[test]')")


@pytest.fixture(params=["cocokit", "sahi"])
def coco(request: pytest.FixtureRequest) -> Any:
    """The module under test: cocokit.compat.sahi, or sahi.utils.coco itself."""
    return ck if request.param == "cocokit" else _sahi_coco()


@pytest.fixture(params=["cocokit", "sahi"])
def slicing(request: pytest.FixtureRequest) -> Any:
    if request.param == "cocokit":
        return ck
    return pytest.importorskip("sahi.slicing", reason="sahi is not installed")


# -- SAHI's tests, on both ------------------------------------------------------------------


def test_cocovid_annotation(coco: Any) -> None:
    ann = coco.CocoVidAnnotation(bbox=[1, 1, 324, 199], category_id=3, category_name="car",
                                 image_id=13, instance_id=22, iscrowd=0)
    assert ann.json["bbox"] == [1, 1, 324, 199]
    assert ann.json["category_id"] == 3
    assert ann.json["category_name"] == "car"
    assert ann.json["image_id"] == 13
    assert ann.json["instance_id"] == 22
    assert ann.json["iscrowd"] == 0


def _frame(coco: Any, height: int = 580, width: int = 1068) -> Any:
    image = coco.CocoVidImage("tests/data/small-vehicles1.jpeg", height, width)
    image.add_annotation(coco.CocoVidAnnotation(bbox=[1, 1, 324, 199], category_id=3,
                                                category_name="car", image_id=13,
                                                instance_id=22, iscrowd=0))
    return image


def test_cocovid_image(coco: Any) -> None:
    image = _frame(coco)
    image.add_annotation(coco.CocoVidAnnotation(bbox=[1, 1, 50, 150], category_id=2,
                                                category_name="human", image_id=14,
                                                instance_id=23, iscrowd=0))
    assert image.file_name == image.json["file_name"] == "tests/data/small-vehicles1.jpeg"
    assert image.height == image.json["height"] == 580
    assert image.width == image.json["width"] == 1068
    assert len(image.annotations) == 2
    first, second = image.annotations
    assert (first.category_id, first.category_name, first.image_id, first.bbox) == (
        3, "car", 13, [1, 1, 324, 199])
    assert (second.category_id, second.category_name, second.instance_id, second.bbox) == (
        2, "human", 23, [1, 1, 50, 150])


def test_coco_video(coco: Any) -> None:
    video = coco.CocoVideo(name="small-vehicles", height=580, width=1068)
    video.add_cocovidimage(_frame(coco, 519, 1067))
    assert video.name == video.json["name"] == "small-vehicles"
    assert video.height == video.json["height"] == 580
    assert video.width == video.json["width"] == 1068
    assert len(video.images) == 1
    frame = video.images[0]
    assert frame.file_name == frame.json["file_name"] == "tests/data/small-vehicles1.jpeg"
    assert (frame.height, frame.width) == (frame.json["height"], frame.json["width"]) == (
        519, 1067)
    assert frame.annotations[0].bbox == frame.annotations[0].json["bbox"] == [1, 1, 324, 199]


def test_shift_bboxes(slicing: Any) -> None:
    shifted = slicing.shift_bboxes(bboxes=[[1, 2, 3, 4]], offset=[10, 20])
    assert shifted == [[11, 22, 13, 24]] and isinstance(shifted, list)
    shifted_np = slicing.shift_bboxes(bboxes=np.array([[1, 2, 3, 4]]), offset=[10, 20])
    assert shifted_np.tolist() == [[11, 22, 13, 24]] and isinstance(shifted_np, np.ndarray)


def test_shift_bboxes_torch(slicing: Any) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    out = slicing.shift_bboxes(bboxes=torch.tensor([[1, 2, 3, 4]]), offset=[10, 20])
    assert out.tolist() == [[11, 22, 13, 24]] and isinstance(out, torch.Tensor)


def test_shift_masks(slicing: Any) -> None:
    masks = np.zeros((3, 30, 30), dtype=bool)
    out = slicing.shift_masks(masks=masks, offset=[10, 20], full_shape=[720, 1280])
    assert out.shape == (3, 720, 1280) and isinstance(out, np.ndarray)


# -- the whole COCOVid document, against SAHI ------------------------------------------------


def _videos(coco: Any) -> Any:
    vid = coco.CocoVid(name="traffic", remapping_dict={1: 0})
    vid.add_categories_from_coco_category_list([{"id": 1, "name": "car"},
                                                {"id": 2, "name": "human"}])
    for v, frames in enumerate([3, 2]):
        video = coco.CocoVideo(name=f"video{v}", fps=25.0, height=100, width=200)
        for f in range(frames):
            frame = coco.CocoVidImage(f"v{v}/{f:04d}.jpg", 100, 200)
            for inst in range(2):
                frame.add_annotation(coco.CocoVidAnnotation(
                    category_id=inst, category_name=["car", "human"][inst],
                    bbox=[10 * f + inst, 5, 20, 30 + v], instance_id=inst))
            video.add_cocovidimage(frame)
        plain = coco.CocoImage(f"v{v}/extra.jpg", 100, 200, id=99)
        video.add_image(plain)
        vid.add_video(video)
    return vid


def test_cocovid_json_matches_sahi() -> None:
    sahi = _sahi_coco()
    want = _videos(sahi).json
    got = _videos(ck).json
    assert got == want
    assert [a["instance_id"] for a in got["annotations"]] == [1, 2] * 3 + [3, 4] * 2
    assert got["categories"][0]["id"] == 0
    assert [i["frame_id"] for i in got["images"]] == [0, 1, 2, 3, 0, 1, 2]


def test_cocovid_json_changes_nothing() -> None:
    # SAHI adds the instance offset to the objects each time json is read
    vid = _videos(ck)
    first = vid.json
    assert vid.json == first
    assert vid.videos[1].id is None and vid.videos[1].images[0].id is None
    assert vid.videos[1].images[0].annotations[0].instance_id == 0
    sahi = _videos(_sahi_coco())
    assert sahi.json != sahi.json  # SAHI's second read differs (its instance ids moved)


def test_category_records_are_not_rewritten() -> None:
    records = [{"id": 1, "name": "car"}]
    before = copy.deepcopy(records)
    vid = ck.CocoVid(remapping_dict={1: 7})
    vid.add_categories_from_coco_category_list(records)
    assert records == before and vid.category_mapping == {7: "car"}


def test_frame_from_an_image_keeps_its_keys_not_its_annotations() -> None:
    image = ck.CocoImage.from_coco_image_dict({"id": 4, "file_name": "a.jpg", "height": 10,
                                               "width": 20, "license": 3})
    image.add_annotation(ck.CocoAnnotation(category_id=1, bbox=[0, 0, 2, 2]))
    frame = ck.CocoVidImage.from_coco_image(image, video_id=2, frame_id=5)
    assert frame.json == {"file_name": "a.jpg", "height": 10, "width": 20, "id": 4,
                          "video_id": 2, "frame_id": 5, "license": 3}
    assert frame.annotations == []


@pytest.mark.parametrize(("make", "kind"), [
    (lambda: ck.CocoVidImage("a", 1, 1).add_annotation(
        ck.CocoAnnotation(category_id=1, bbox=[0, 0, 1, 1])), "CocoVidAnnotation"),
    (lambda: ck.CocoVideo("v").add_image("a.jpg"), "CocoImage"),
    (lambda: ck.CocoVideo("v").add_cocovidimage(ck.CocoImage("a", 1, 1)), "CocoVidImage"),
    (lambda: ck.CocoVid().add_video("v"), "CocoVideo"),
    (lambda: ck.CocoVid().add_category({"id": 1}), "CocoCategory"),
])
def test_wrong_objects_are_type_errors(make: Any, kind: str) -> None:
    with pytest.raises(TypeError) as e:
        make()
    assert isinstance(e.value, CocoKitError) and kind in str(e.value)


# -- shift_bboxes / shift_masks ---------------------------------------------------------------


@pytest.mark.parametrize("boxes", [[[0.5, 1, 3, 4.25], [7, 8, 9, 10]], [], [[0, 0, 0, 0]]])
def test_shift_bboxes_matches_sahi(boxes: list[list[float]]) -> None:
    sahi = pytest.importorskip("sahi.slicing", reason="sahi is not installed")
    if boxes:
        assert ck.shift_bboxes(boxes, [3, 4]) == sahi.shift_bboxes(boxes, [3, 4])
        arr = np.array(boxes)
        assert np.array_equal(ck.shift_bboxes(arr, (3, 4)), sahi.shift_bboxes(arr, (3, 4)))
    else:
        assert ck.shift_bboxes(boxes, [3, 4]) == []


def test_shift_bboxes_refuses_negative_coordinates() -> None:
    with pytest.raises(ValueError) as e:
        ck.shift_bboxes([[-1, 0, 2, 2]], [1, 1])
    assert isinstance(e.value, CocoKitError)


def test_shift_masks_places_mask_arrays() -> None:
    mask = np.zeros((30, 40), bool)
    mask[2:5, 3:9] = True
    mask[29, 39] = True  # ends up outside the full image: cut off
    out = ck.shift_masks(np.stack([mask]), offset=[100, 60], full_shape=[90, 139])
    want = np.zeros((90, 139), bool)
    want[62:65, 103:109] = True
    assert out.shape == (1, 90, 139) and (out[0] == want).all()


def test_shift_masks_moves_polygons_and_draws_them_as_pycocotools() -> None:
    polygons = [[[1, 1, 10, 1, 10, 8, 1, 8]], [[0, 0, 30, 0, 30, 30]]]
    out = ck.shift_masks(polygons, offset=[10, 20], full_shape=[40, 35])
    first = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
        [[11, 21, 20, 21, 20, 28, 11, 28]], 40, 35))).astype(bool)
    assert (out[0] == first).all()
    # moved points are clamped to the image, as SAHI clamps them
    second = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
        [[10, 20, 35, 20, 35, 40]], 40, 35))).astype(bool)
    assert (out[1] == second).all()
    assert ck.shift_masks(None, [0, 0], [1, 1]) is None
    assert ck.shift_masks([], [0, 0], [4, 5]).shape == (0, 4, 5)

"""Pipeline files (YAML, JSON), their validation, and the pixel operations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cocokit.augment import (
    OPERATIONS,
    Albumentations,
    Blur,
    BrightnessContrast,
    ColorJitter,
    Gamma,
    HorizontalFlip,
    HueSaturation,
    JpegQuality,
    Noise,
    Pipeline,
    RandomCrop,
    Rotate,
    _pixels,
    load_pipeline,
)
from cocokit.errors import CocoKitError, InputError, MissingDependency, OptionError

YAML_TEXT = """\
min_area: 16
min_visibility: 0.3
fill: [114, 114, 114]
interpolation: cubic
keypoint_flip_map:
  - [hand_a, hand_b]
pipeline:
  - rotate: {angle: [-30, 30], p: 0.5}
  - {op: random_crop, width: 200, height: 100}
  - op: color_jitter
    brightness: [0.8, 1.2]
  - hflip
  - {op: gamma, gamma: 1.1}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_yaml_and_json_files_give_the_same_pipeline(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    from_yaml = Pipeline.from_file(write(tmp_path, "p.yaml", YAML_TEXT))
    doc = from_yaml.to_dict()
    from_json = Pipeline.from_file(write(tmp_path, "p.json", json.dumps(doc)))
    assert from_json == from_yaml
    assert [op.name for op in from_yaml.ops] == ["rotate", "random_crop", "color_jitter",
                                                 "hflip", "gamma"]
    rot = from_yaml.ops[0]
    assert isinstance(rot, Rotate) and rot.angle == (-30.0, 30.0) and rot.p == 0.5
    assert from_yaml.ops[4].gamma == (1.1, 1.1)  # type: ignore[attr-defined]
    assert from_yaml.min_area == 16 and from_yaml.min_visibility == 0.3
    assert from_yaml.fill == (114, 114, 114) and from_yaml.interpolation == "cubic"
    assert from_yaml.keypoint_flip_map == (("hand_a", "hand_b"),)
    # the same pipeline as Python objects
    assert load_pipeline(list(from_yaml.ops)).ops == from_yaml.ops
    # a bare list is a pipeline too
    assert Pipeline.from_dict(doc["pipeline"]).ops == from_yaml.ops


def test_every_operation_round_trips_through_to_dict() -> None:
    for name, cls in OPERATIONS.items():
        if name == "albumentations":
            continue
        op = cls()
        again = Pipeline.from_dict([op.to_dict()]).ops[0]
        assert again == op, name


@pytest.mark.parametrize(("text", "path", "words"), [
    ("pipeline:\n  - rotate: {angle: [30, -30]}\n", "pipeline[0].angle", "low <= high"),
    ("- hflip\n- {op: rotate, angle: abc}\n", "pipeline[1].angle", "a number"),
    ("- hflip\n- hflip\n- {op: rotate, angel: 3}\n", "pipeline[2].angel", "unknown parameter"),
    ("- {op: rotat}\n", "pipeline[0].op", "did you mean 'rotate'"),
    ("- {op: HorizontalFlip}\n", "pipeline[0].op", "hflip"),
    ("- {op: albumentations, transform: Rotate}\n", "pipeline[0].transform", "rotate"),
    ("- {op: albumentations, transform: RandomResizedCrop}\n", "pipeline[0].transform",
     "random_resized_crop"),
    ("- {op: random_crop, width: 0, height: 10}\n", "pipeline[0].width", "positive integer"),
    ("- {op: rotate, p: 1.5}\n", "pipeline[0].p", "probability"),
    ("- 42\n", "pipeline[0]", "expected an operation"),
    ("min_visibility: 2\npipeline: [hflip]\n", "min_visibility", "[0, 1]"),
    ("fill: [1, 2]\npipeline: [hflip]\n", "fill", "grey level"),
    ("pipelines: [hflip]\n", "pipelines", "unknown key"),
    ("min_area: 3\n", "pipeline", "missing"),
    ("pipeline: hflip\n", "pipeline", "a list"),
    ("- {op: jpeg, quality: [10.5, 20]}\n", "pipeline[0].quality", "integer"),
    ("- {op: affine, matrix: [[1, 0], [0, 1]]}\n", "pipeline[0].matrix", "invertible"),
    ("- {op: affine, rotate: 10, matrix: [[1, 0, 0], [0, 1, 0]]}\n", "pipeline[0].matrix",
     "a matrix alone"),
])
def test_bad_pipeline_files_name_the_entry(tmp_path: Path, text: str, path: str,
                                           words: str) -> None:
    pytest.importorskip("yaml")
    f = write(tmp_path, "bad.yaml", text)
    with pytest.raises(InputError) as info:
        Pipeline.from_file(f)
    assert info.value.file == str(f)
    assert info.value.path == path
    assert words in str(info.value)


@pytest.mark.parametrize(("name", "text", "words"), [
    ("broken.yaml", "- {op: rotate\n", "malformed YAML"),
    ("broken.json", '[{"op": "rotate",]', "malformed JSON"),
    ("empty.yaml", "  \n", "empty"),
])
def test_unreadable_pipeline_files(tmp_path: Path, name: str, text: str, words: str) -> None:
    pytest.importorskip("yaml")
    with pytest.raises(InputError, match=words):
        Pipeline.from_file(write(tmp_path, name, text))


def test_missing_pipeline_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        Pipeline.from_file(tmp_path / "nope.yaml")


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    f = write(tmp_path, "p.yaml", "pipeline:\n  - hflip\n  - {op: rotate, angle: [1, 2]\n")
    with pytest.raises(InputError) as info:
        Pipeline.from_file(f)
    assert info.value.path is not None and info.value.path.startswith("line ")


def test_python_objects_are_validated_too() -> None:
    with pytest.raises(OptionError, match=r"rotate\.angle"):
        Rotate(angle=(10, -10))
    with pytest.raises(OptionError, match=r"random_crop\.width"):
        RandomCrop(width=-3)
    with pytest.raises(OptionError, match=r"pipeline\[1\]"):
        Pipeline([HorizontalFlip(), "rotate"])  # type: ignore[list-item]
    assert issubclass(OptionError, CocoKitError)


def test_sampling_is_deterministic_and_respects_probability() -> None:
    pipe = Pipeline([HorizontalFlip(p=0.5), Rotate(angle=(-10, 10), p=0.3), ColorJitter()])
    a = [pipe.sample(np.random.default_rng(s), 640, 480).applied for s in range(200)]
    b = [pipe.sample(np.random.default_rng(s), 640, 480).applied for s in range(200)]
    assert a == b
    flips = sum(any(x["op"] == "hflip" for x in ap) for ap in a)
    rots = sum(any(x["op"] == "rotate" for x in ap) for ap in a)
    assert 70 < flips < 130 and 30 < rots < 90
    assert all(ap[-1]["op"] == "color_jitter" for ap in a)


# -- pixel operations --------------------------------------------------------------------


@pytest.fixture(params=["opencv", "pillow"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pillow":
        monkeypatch.setenv("COCOKIT_PIXELS", "pillow")
    else:
        monkeypatch.delenv("COCOKIT_PIXELS", raising=False)
        if _pixels._import_cv2() is None:
            pytest.skip("OpenCV is not installed")
    assert _pixels.backend() == request.param
    return str(request.param)


def photo(real_data: Path) -> np.ndarray:
    p = real_data / "coco-mini" / "val2017" / "000000000139.jpg"
    if not p.exists():
        pytest.skip(f"missing {p}")
    img, order = _pixels.decode(p, 640, 426)
    return img if order == "RGB" else np.ascontiguousarray(img[..., ::-1])


PIXEL_OPS: list[tuple[Any, dict[str, Any]]] = [
    (BrightnessContrast(), {"brightness": 0.0, "contrast": 0.0}),
    (ColorJitter(), {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0}),
    (Gamma(), {"gamma": 1.0}),
    (Blur(), {"sigma": 0.0}),
    (Noise(), {"std": 0.0, "seed": 1}),
    (HueSaturation(), {"hue": 0.0, "saturation": 1.0, "value": 1.0}),
]


@pytest.mark.parametrize(("op", "identity"), PIXEL_OPS, ids=[o.name for o, _ in PIXEL_OPS])
def test_pixel_operations(real_data: Path, backend: str, op: Any,
                          identity: dict[str, Any]) -> None:
    img = photo(real_data)
    params = op.sample(np.random.default_rng(3))
    out = op.apply(img, params, "RGB")
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out, op.apply(img, params, "RGB"))  # deterministic
    assert np.abs(out.astype(int) - img).mean() > 0.5  # it does something
    # the channel order is honoured: BGR in, BGR out, same picture
    bgr = op.apply(np.ascontiguousarray(img[..., ::-1]), params, "BGR")
    assert np.abs(bgr[..., ::-1].astype(int) - out).max() <= 2
    # neutral parameters leave the picture (nearly: HSV round trips lose a little)
    same = op.apply(img, identity, "RGB")
    limit = 6 if op.name == "hue_saturation" else 1
    assert np.abs(same.astype(int) - img).max() <= limit
    # grey images work too
    grey = op.apply(np.ascontiguousarray(img[..., 0]), params, "RGB")
    assert grey.shape == img.shape[:2]


def test_jpeg_quality_operation(real_data: Path, backend: str) -> None:
    img = photo(real_data)
    out = JpegQuality(quality=20).apply(img, {"quality": 20}, "RGB")
    diff = np.abs(out.astype(int) - img).mean()
    assert out.shape == img.shape and 1 < diff < 20


def test_both_backends_warp_alike(real_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COCOKIT_PIXELS", raising=False)
    if _pixels._import_cv2() is None:
        pytest.skip("OpenCV is not installed")
    img = photo(real_data)
    m = np.array([[0.9, 0.3, -40.0], [-0.25, 0.95, 60.0], [2e-4, -1e-4, 1.0]])
    a = _pixels.warp(img, m, 500, 400, fill=(10, 20, 30))
    monkeypatch.setenv("COCOKIT_PIXELS", "pillow")
    b = _pixels.warp(img, m, 500, 400, fill=(10, 20, 30))
    assert a.shape == b.shape == (400, 500, 3)
    assert np.abs(a.astype(int) - b).mean() < 1.5


def test_albumentations_pixel_transform(real_data: Path) -> None:
    pytest.importorskip("albumentations")
    img = photo(real_data)
    op = Albumentations(transform="RandomBrightnessContrast",
                        params={"brightness_limit": 0.3, "contrast_limit": 0.3})
    params = op.sample(np.random.default_rng(0))
    out = op.apply(img, params, "RGB")
    assert np.array_equal(out, op.apply(img, params, "RGB"))
    assert not np.array_equal(out, img)
    bgr = op.apply(np.ascontiguousarray(img[..., ::-1]), params, "BGR")
    assert np.array_equal(bgr[..., ::-1], out)
    again = Pipeline.from_dict([op.to_dict()]).ops[0]
    assert again == op
    with pytest.raises(OptionError, match="changes geometry"):
        Albumentations(transform="ElasticTransform")
    with pytest.raises(OptionError, match="name of an Albumentations transform"):
        Albumentations(transform="NoSuchTransform")
    with pytest.raises(OptionError, match="parameters accepted by CLAHE"):
        Albumentations(transform="CLAHE", params={"no_such": 1})


def test_albumentations_missing_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "albumentations", None)
    _pixels._cached_transform.cache_clear()
    try:
        with pytest.raises(MissingDependency, match=r"cocokit\[albumentations\]"):
            Albumentations(transform="CLAHE")
    finally:
        _pixels._cached_transform.cache_clear()

"""Offline augmentation with exact annotations.

>>> import cocokit
>>> from cocokit.augment import Pipeline, Rotate, RandomCrop, ColorJitter
>>> pipe = Pipeline([Rotate(angle=(-30, 30)), RandomCrop(2000, 2000), ColorJitter()])
>>> ds = cocokit.load("instances.json")                                   # doctest: +SKIP
>>> out, summary = cocokit.augment.augment(ds, pipe, "images/", "out/", copies=4,
...                                        seed=0)                        # doctest: +SKIP

Geometric operations become one 3x3 matrix per copy (see :mod:`.ops`); polygons,
boxes and keypoints are mapped by it in float64 and clipped to the canvas, RLE masks
are warped as masks, and the pixels are warped once, only the output window (see
:mod:`.apply`). Pipelines load from YAML or JSON files (see :mod:`.pipeline`).

The module itself is callable: ``cocokit.augment(ds, pipeline, image_dir, out_dir,
...)`` is :func:`augment`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .apply import (
    AnnotationColumns,
    AugmentSummary,
    CopyResult,
    ImageResult,
    TransformedAnnotations,
    augment,
    copy_rng,
    keypoint_flip_permutation,
    transform_annotations,
)
from .ops import (
    OPERATIONS,
    Affine,
    Albumentations,
    Blur,
    BrightnessContrast,
    CenterCrop,
    ColorJitter,
    Gamma,
    GeometricOp,
    HorizontalFlip,
    HueSaturation,
    JpegQuality,
    Noise,
    Op,
    Perspective,
    PixelOp,
    RandomCrop,
    RandomResizedCrop,
    Resize,
    Rotate,
    Rotate90,
    Sampled,
    Scale,
    Shear,
    Translate,
    VerticalFlip,
    apply_matrix,
    homography,
)
from .pipeline import Pipeline, SampledPipeline, load_pipeline

__all__ = [
    "OPERATIONS",
    "Affine",
    "Albumentations",
    "AnnotationColumns",
    "AugmentSummary",
    "Blur",
    "BrightnessContrast",
    "CenterCrop",
    "ColorJitter",
    "CopyResult",
    "Gamma",
    "GeometricOp",
    "HorizontalFlip",
    "HueSaturation",
    "ImageResult",
    "JpegQuality",
    "Noise",
    "Op",
    "Perspective",
    "Pipeline",
    "PixelOp",
    "RandomCrop",
    "RandomResizedCrop",
    "Resize",
    "Rotate",
    "Rotate90",
    "Sampled",
    "SampledPipeline",
    "Scale",
    "Shear",
    "TransformedAnnotations",
    "Translate",
    "VerticalFlip",
    "apply_matrix",
    "augment",
    "copy_rng",
    "homography",
    "keypoint_flip_permutation",
    "load_pipeline",
    "transform_annotations",
]


class _CallableModule(types.ModuleType):
    """Lets ``cocokit.augment(...)`` call :func:`augment` while the package keeps its
    names (``cocokit.augment.Rotate``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return augment(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

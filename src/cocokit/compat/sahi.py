"""SAHI drop-in: the public names of ``sahi.utils.coco`` (videos too) and of ``sahi.slicing``.

The dataset parts of ``sahi.slicing``, and its prediction helpers ``shift_bboxes`` and
``shift_masks``.

Change one import and keep the code::

    # from sahi.utils.coco import Coco, CocoAnnotation, CocoCategory, CocoImage
    # from sahi.slicing import slice_coco
    from cocokit.compat.sahi import Coco, CocoAnnotation, CocoCategory, CocoImage, slice_coco

Same signatures, defaults and results as SAHI on SAHI's own kind of input (counts, ids,
category mapping, tile windows, file names, train/val membership), on cocokit's numpy
columns instead of one shapely object per annotation. Where SAHI loses or corrupts data
this module does not: RLE masks, ``iscrowd``, float polygon coordinates, keypoints and
unknown keys are kept, the caller's dicts are never changed, the global random state is
never touched, and YOLO class indices match ``data.yml``. Every deliberate difference
is listed, with a before/after example, in ``docs/sahi-migration.md``.

Errors are :class:`~cocokit.errors.CocoKitError` subclasses; where SAHI raises
``ValueError`` or ``TypeError`` the error is also one of those
(:class:`SahiValueError`, :class:`SahiTypeError`), so existing ``except`` clauses work.
SAHI's printed messages go to the ``cocokit.compat.sahi`` logger instead.

sahi itself is not needed (nor imported).
"""

from __future__ import annotations

from ._sahi_coco import (
    Coco,
    CocoAnnotation,
    CocoCategory,
    CocoImage,
    CocoPrediction,
    DatasetClassCounts,
    SahiTypeError,
    SahiValueError,
    add_bbox_and_area_to_coco,
    count_images_with_category,
    create_coco_dict,
    create_coco_prediction_array,
    export_coco_as_yolo_via_yml,
    get_imageid2annotationlist_mapping,
    merge,
    merge_from_file,
    merge_from_list,
    remove_invalid_coco_results,
    update_categories,
    update_categories_from_file,
)
from ._sahi_slicing import (
    SlicedImage,
    SliceImageResult,
    annotation_inside_slice,
    get_auto_slice_params,
    get_slice_bboxes,
    process_coco_annotations,
    shift_bboxes,
    shift_masks,
    slice_coco,
    slice_image,
)
from ._sahi_video import CocoVid, CocoVidAnnotation, CocoVideo, CocoVidImage
from ._sahi_yolo import export_coco_as_yolo

__all__ = [
    "Coco",
    "CocoAnnotation",
    "CocoCategory",
    "CocoImage",
    "CocoPrediction",
    "CocoVid",
    "CocoVidAnnotation",
    "CocoVidImage",
    "CocoVideo",
    "DatasetClassCounts",
    "SahiTypeError",
    "SahiValueError",
    "SliceImageResult",
    "SlicedImage",
    "add_bbox_and_area_to_coco",
    "annotation_inside_slice",
    "count_images_with_category",
    "create_coco_dict",
    "create_coco_prediction_array",
    "export_coco_as_yolo",
    "export_coco_as_yolo_via_yml",
    "get_auto_slice_params",
    "get_imageid2annotationlist_mapping",
    "get_slice_bboxes",
    "merge",
    "merge_from_file",
    "merge_from_list",
    "process_coco_annotations",
    "remove_invalid_coco_results",
    "shift_bboxes",
    "shift_masks",
    "slice_coco",
    "slice_image",
    "update_categories",
    "update_categories_from_file",
]

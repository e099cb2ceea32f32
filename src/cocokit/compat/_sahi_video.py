"""The video (COCOVid, mmtracking's format) names of ``sahi.utils.coco``.

``CocoVid`` holds videos, a video (``CocoVideo``) holds frames (``CocoVidImage``), a
frame holds annotations with an ``instance_id`` for tracking (``CocoVidAnnotation``).
Same signatures and ``json`` as SAHI, with these differences (also in
``docs/sahi-migration.md``):

* reading ``CocoVid.json`` changes nothing: SAHI writes ids into the videos, frames and
  annotations and adds the video's instance offset to every ``instance_id`` each time
  ``json`` is read, so reading it twice shifts the instance ids again. The ids written
  are SAHI's (videos, frames and annotations 1..N in order, frames 0.. per video,
  instance ids made unique across videos);
* ``add_categories_from_coco_category_list`` does not rewrite the caller's dicts;
* a frame made from a ``CocoImage`` keeps that image's other keys (``license``, ...);
  as in SAHI, not its annotations (they are not video annotations);
* errors are :class:`~cocokit.errors.CocoKitError` subclasses that are also the
  ``TypeError`` SAHI raises.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeVar

from ._sahi_base import (
    CategoryViews,
    CocoAnnotation,
    CocoCategory,
    CocoImage,
    SahiTypeError,
)

__all__ = ["CocoVid", "CocoVidAnnotation", "CocoVidImage", "CocoVideo"]

_TVidImg = TypeVar("_TVidImg", bound="CocoVidImage")


class CocoVidAnnotation(CocoAnnotation):
    """A video annotation (``sahi.utils.coco.CocoVidAnnotation``): a box with a tracking
    ``instance_id`` and an annotation ``id``."""

    def __init__(
        self,
        category_id: int,
        category_name: str,
        bbox: list[int],
        image_id: int | None = None,
        instance_id: int | None = None,
        iscrowd: int = 0,
        id: int | None = None,
    ) -> None:
        """An annotation from a box ``[x, y, width, height]``."""
        super().__init__(category_id=category_id, category_name=category_name, bbox=bbox,
                         image_id=image_id, iscrowd=iscrowd)
        self.instance_id = instance_id
        self.id = id

    def _vid_json(self, id: int | None, image_id: int | None,
                  instance_id: int | None) -> dict[str, Any]:
        return {
            "id": id,
            "image_id": image_id,
            "bbox": self.bbox,
            "segmentation": self.segmentation,
            "category_id": self.category_id,
            "category_name": self.category_name,
            "instance_id": instance_id,
            "iscrowd": self.iscrowd,
            "area": self.area,
        }

    @property
    def json(self) -> dict[str, Any]:
        """The annotation as a COCOVid dict."""
        return self._vid_json(self.id, self.image_id, self.instance_id)

    def __repr__(self) -> str:
        return (f"CocoAnnotation<\n    id: {self.id},\n    image_id: {self.image_id},\n"
                f"    bbox: {self.bbox},\n    segmentation: {self.segmentation},\n"
                f"    category_id: {self.category_id},\n"
                f"    category_name: {self.category_name},\n"
                f"    instance_id: {self.instance_id},\n    iscrowd: {self.iscrowd},\n"
                f"    area: {self.area}>")


class CocoVidImage(CocoImage):
    """A video frame (``sahi.utils.coco.CocoVidImage``): an image with ``video_id`` and
    ``frame_id`` (0-based)."""

    def __init__(
        self,
        file_name: str,
        height: int,
        width: int,
        video_id: int | None = None,
        frame_id: int | None = None,
        id: int | None = None,
    ) -> None:
        """A frame record; ids may be left out (``CocoVid.json`` numbers them)."""
        super().__init__(file_name=file_name, height=height, width=width, id=id)
        self.frame_id = frame_id
        self.video_id = video_id

    @classmethod
    def from_coco_image(cls: type[_TVidImg], coco_image: CocoImage,
                        video_id: int | None = None, frame_id: int | None = None) -> _TVidImg:
        """A frame from a :class:`CocoImage`: its id, file name, size and other keys (not
        its annotations, as in SAHI)."""
        out = cls(file_name=coco_image.file_name, height=coco_image.height,
                  width=coco_image.width, id=coco_image.id, video_id=video_id,
                  frame_id=frame_id)
        out._extra = copy.deepcopy(coco_image._extra)
        return out

    def add_annotation(self, annotation: CocoAnnotation) -> None:
        """Add a :class:`CocoVidAnnotation` to this frame."""
        if not isinstance(annotation, CocoVidAnnotation):
            raise SahiTypeError("annotation", type(annotation).__name__,
                                "a CocoVidAnnotation instance")
        self.annotations.append(annotation)

    def _vid_json(self, id: int | None, video_id: int | None,
                  frame_id: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {"file_name": self.file_name, "height": self.height,
                               "width": self.width, "id": id, "video_id": video_id,
                               "frame_id": frame_id}
        out.update(copy.deepcopy(self._extra))
        return out

    @property
    def json(self) -> dict[str, Any]:
        """The frame as a COCOVid image record."""
        return self._vid_json(self.id, self.video_id, self.frame_id)

    def __repr__(self) -> str:
        return (f"CocoVidImage<\n    file_name: {self.file_name},\n    height: {self.height},\n"
                f"    width: {self.width},\n    id: {self.id},\n"
                f"    video_id: {self.video_id},\n    frame_id: {self.frame_id},\n"
                f"    annotations: List[CocoVidAnnotation]>")


class CocoVideo:
    """A video (``sahi.utils.coco.CocoVideo``): a name, its frames, optional fps and size."""

    def __init__(self, name: str, id: int | None = None, fps: float | None = None,
                 height: int | None = None, width: int | None = None) -> None:
        """A video without frames yet."""
        self.name = name
        self.id = id
        self.fps = fps
        self.height = height
        self.width = width
        self.images: list[CocoVidImage] = []

    def add_image(self, image: CocoImage) -> None:
        """Add a :class:`CocoImage` as the next frame (see :meth:`CocoVidImage.from_coco_image`)."""
        if not isinstance(image, CocoImage):
            raise SahiTypeError("image", type(image).__name__, "a CocoImage instance")
        self.images.append(CocoVidImage.from_coco_image(image))

    def add_cocovidimage(self, cocovidimage: CocoVidImage) -> None:
        """Add a :class:`CocoVidImage` as the next frame."""
        if not isinstance(cocovidimage, CocoVidImage):
            raise SahiTypeError("cocovidimage", type(cocovidimage).__name__,
                                "a CocoVidImage instance")
        self.images.append(cocovidimage)

    def _vid_json(self, id: int | None) -> dict[str, Any]:
        return {"name": self.name, "id": id, "fps": self.fps, "height": self.height,
                "width": self.width}

    @property
    def json(self) -> dict[str, Any]:
        """The video as a COCOVid record."""
        return self._vid_json(self.id)

    def __repr__(self) -> str:
        return (f"CocoVideo<\n    id: {self.id},\n    name: {self.name},\n    fps: {self.fps},\n"
                f"    height: {self.height},\n    width: {self.width},\n"
                f"    images: List[CocoVidImage]>")


class CocoVid(CategoryViews):
    """A COCOVid dataset (``sahi.utils.coco.CocoVid``): categories and videos."""

    def __init__(self, name: str | None = None,
                 remapping_dict: Mapping[int, int] | None = None) -> None:
        """An empty dataset; ``remapping_dict`` maps category ids as they are added."""
        self.name = name
        self.remapping_dict = remapping_dict
        self.categories: list[CocoCategory] = []
        self.videos: list[CocoVideo] = []

    def add_video(self, video: CocoVideo) -> None:
        """Add a :class:`CocoVideo`."""
        if not isinstance(video, CocoVideo):
            raise SahiTypeError("video", type(video).__name__, "a CocoVideo instance")
        self.videos.append(video)

    @property
    def json(self) -> dict[str, Any]:
        """The COCOVid dict: ``videos``, ``images``, ``annotations``, ``categories``.

        Numbered as SAHI numbers them (videos, frames and annotations from 1 in order;
        ``frame_id`` from 0 in each video; each video's ``instance_id`` values moved up
        by 1 plus the number of distinct instance ids of the videos before it), without
        writing those numbers into the objects.
        """
        out: dict[str, Any] = {"videos": [], "images": [], "annotations": [],
                               "categories": self.json_categories}
        image_id = annotation_id = 1
        offset = 1
        for video_id, video in enumerate(self.videos, 1):
            out["videos"].append(video._vid_json(video_id))
            instances: set[Any] = set()
            for frame_id, frame in enumerate(video.images):
                out["images"].append(frame._vid_json(image_id, video_id, frame_id))
                for ann in frame.annotations:
                    instance = getattr(ann, "instance_id", None)
                    if instance is not None:
                        instances.add(instance)
                        instance = instance + offset
                    if isinstance(ann, CocoVidAnnotation):
                        out["annotations"].append(ann._vid_json(annotation_id, image_id,
                                                                instance))
                    else:
                        rec = ann.json
                        rec.update(id=annotation_id, image_id=image_id)
                        out["annotations"].append(rec)
                    annotation_id += 1
                image_id += 1
            offset += len(instances)
        return out

    def __repr__(self) -> str:
        return (f"CocoVid<\n    name: {self.name},\n    videos: {len(self.videos)},\n"
                f"    categories: {len(self.categories)}>")

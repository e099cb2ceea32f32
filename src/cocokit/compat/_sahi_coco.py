"""``sahi.utils.coco`` on cocokit's columns: the objects, the ``Coco`` dataset, the dict tools.

How it is built (see ``docs/sahi-migration.md`` for what differs from SAHI):

* A loaded dataset lives in a :class:`Store`: cocokit's numpy tables with the images in
  list order and their annotations grouped by image (``offsets``). Loading is
  :func:`cocokit.load` plus a few vectorized steps (duplicate image ids, category
  remapping, grouping): no Python object per annotation, no shapely object ever kept.
* ``Coco.images`` is an :class:`ImageList`: a list of store positions and, for images
  added by hand, :class:`CocoImage` objects. A position becomes a :class:`CocoImage`
  (with :class:`CocoAnnotation` objects that read their store row) only when it is
  accessed, and then always the same object, so changes made to it are kept.
* Whole-dataset work (``json``, ``stats``, filters, category updates, export) collects
  the list into columns (:func:`collect`): untouched positions are gathered from the
  store in one ``take``; only images someone changed are read from their objects.
"""

from __future__ import annotations

import copy
import os
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np

from ..dataset import (
    Annotations,
    Categories,
    Dataset,
    Images,
    object_array,
    plain,
)
from ..errors import InputError
from ..geometry import parse_polygons, polygon_bboxes
from ..io.coco import read_coco, write_coco
from ._sahi_base import (
    CategoryViews,
    CocoAnnotation,
    CocoCategory,
    CocoImage,
    CocoPrediction,
    ImageIdSetting,
    ImageList,
    SahiTypeError,
    SahiValueError,
    Store,
    View,
    as_dataset,
    check_id_setting,
    collect,
    dataset_dict,
    export_dataset,
    is_int,
    load_store,
    log,
    positional_dataset,
    store_of_view,
    table_geometry,
    view_stats,
)
from ._sahi_yolo import export_coco_as_yolo, export_coco_object_as_yolo

__all__ = [
    "Coco",
    "CocoAnnotation",
    "CocoCategory",
    "CocoImage",
    "CocoPrediction",
    "DatasetClassCounts",
    "SahiTypeError",
    "SahiValueError",
    "add_bbox_and_area_to_coco",
    "count_images_with_category",
    "create_coco_dict",
    "create_coco_prediction_array",
    "export_coco_as_yolo_via_yml",
    "get_imageid2annotationlist_mapping",
    "merge",
    "merge_from_file",
    "merge_from_list",
    "remove_invalid_coco_results",
    "update_categories",
    "update_categories_from_file",
]

_TCoco = TypeVar("_TCoco", bound="Coco")


class Coco(CategoryViews):
    """A COCO dataset (``sahi.utils.coco.Coco``) on cocokit's columns.

    ``images`` is a list of :class:`CocoImage` that is made lazily: loading never builds
    one object per annotation, and whole-dataset operations work on columns. Derived
    datasets (splits, subsamples, filters) share the loaded columns.
    """

    def __init__(
        self,
        name: str | None = None,
        image_dir: str | None = None,
        remapping_dict: Mapping[int, int] | None = None,
        ignore_negative_samples: bool = False,
        clip_bboxes_to_img_dims: bool = False,
        image_id_setting: ImageIdSetting = "auto",
    ) -> None:
        """An empty dataset with SAHI's settings (see SAHI's documentation for each)."""
        check_id_setting(image_id_setting)
        self.name = name
        self.image_dir = image_dir
        self.remapping_dict = remapping_dict
        self.ignore_negative_samples = ignore_negative_samples
        self.categories: list[CocoCategory] = []
        self._images = ImageList(None)
        self._stats: dict[str, Any] | None = None
        self.clip_bboxes_to_img_dims = clip_bboxes_to_img_dims
        self.image_id_setting = image_id_setting
        self._extra: dict[str, Any] = {}
        self._key_order: tuple[str, ...] = ()

    # -- the image list ------------------------------------------------------------

    @property
    def images(self) -> ImageList:
        """The images, a list of :class:`CocoImage` (made when accessed)."""
        return self._images

    @images.setter
    def images(self, value: Iterable[CocoImage]) -> None:
        if isinstance(value, ImageList):
            self._images = ImageList(value._store, value._items)
        else:
            items = list(value)
            store = next((it._src for it in items if isinstance(it, CocoImage) and it._src),
                         None)
            self._images = ImageList(store, [ImageList._checked(v) for v in items])

    def _derived(self, items: Iterable[int | CocoImage], name: str | None = None,
                 store: Store | None = None) -> Coco:
        """A dataset with the same settings and categories over some of these images."""
        out = Coco(name=self.name if name is None else name, image_dir=self.image_dir,
                   remapping_dict=self.remapping_dict,
                   ignore_negative_samples=self.ignore_negative_samples,
                   clip_bboxes_to_img_dims=self.clip_bboxes_to_img_dims,
                   image_id_setting=self.image_id_setting)
        out.categories = copy.deepcopy(self.categories)
        out._images = ImageList(self._images._store if store is None else store, items)
        out._extra = copy.deepcopy(self._extra)
        out._key_order = self._key_order
        return out

    def _view(self) -> View:
        return collect(self._images)

    def _replace_store(self, store: Store) -> None:
        self._images = ImageList(store, range(len(store)))
        self._stats = None

    # -- building ------------------------------------------------------------------

    def add_image(self, image: CocoImage) -> None:
        """Add an image (with ``image_id_setting='manual'`` it must have an id)."""
        if not isinstance(image, CocoImage):
            raise SahiTypeError("image", type(image).__name__, "a CocoImage instance")
        if self.image_id_setting == "manual" and image.id is None:
            raise SahiValueError("image.id", None, "an image id (image id should be manually "
                                 "set for image_id_setting='manual')")
        self._images.append(image)

    @classmethod
    def from_coco_dict_or_path(
        cls: type[_TCoco],
        coco_dict_or_path: dict[str, Any] | str | os.PathLike[str] | Dataset,
        image_dir: str | None = None,
        remapping_dict: dict[int, int] | None = None,
        ignore_negative_samples: bool = False,
        clip_bboxes_to_img_dims: bool = False,
        use_threads: bool = False,
        num_threads: int = 10,
    ) -> _TCoco:
        """A dataset from a COCO dict, a COCO file path (or a cocokit ``Dataset``).

        As in SAHI: images in file order, a repeated image id keeps its first image,
        annotations that name no image are left out, ``remapping_dict`` maps category
        ids, ``clip_bboxes_to_img_dims`` clips to the images. Unlike SAHI the dict is not
        changed, RLE, ``iscrowd``, float coordinates and unknown keys are kept, and an
        annotation of an undeclared category raises :class:`~cocokit.errors.InputError`.
        ``use_threads`` and ``num_threads`` are accepted and not needed.
        """
        if not isinstance(coco_dict_or_path, (str, os.PathLike, Mapping, Dataset)):
            raise SahiTypeError("coco_dict_or_path", type(coco_dict_or_path).__name__,
                                "a dict or str (coco_dict_or_path should be a dict or str)")
        ds = as_dataset(coco_dict_or_path, "coco_dict_or_path")
        coco = cls(image_dir=image_dir, remapping_dict=remapping_dict,
                   ignore_negative_samples=ignore_negative_samples,
                   clip_bboxes_to_img_dims=clip_bboxes_to_img_dims)
        store, cats = load_store(ds, remapping_dict)
        coco.categories = cats
        coco._replace_store(store)
        coco._extra = {k: plain(v) for k, v in ds.extra.items()}
        coco._key_order = ds.key_order
        if clip_bboxes_to_img_dims:
            coco = coco.get_coco_with_clipped_bboxes()  # type: ignore[assignment]
        return coco

    # -- views ---------------------------------------------------------------------

    def to_dataset(self) -> Dataset:
        """This dataset as a cocokit :class:`~cocokit.dataset.Dataset` (what :attr:`json`
        holds: ids per ``image_id_setting``, annotation ids 1..M)."""
        return export_dataset(self._view(), self.json_categories, self.ignore_negative_samples,
                               self.image_id_setting, self._extra, self._key_order or None)

    @property
    def json(self) -> dict[str, Any]:
        """The COCO dict (``create_coco_dict`` of the images and categories).

        Top-level keys such as ``info`` and ``licenses`` are kept; annotations that were
        loaded are written as they were read.
        """
        return dataset_dict(self.to_dataset())

    @property
    def prediction_array(self) -> list[dict[str, Any]]:
        """The predictions of all images as a COCO results list."""
        return create_coco_prediction_array(self._images, self.ignore_negative_samples,
                                            self.image_id_setting)

    @property
    def stats(self) -> dict[str, Any]:
        """Counts and area statistics (SAHI's keys; computed once, then cached)."""
        if not self._stats:
            self.calculate_stats()
        return self._stats if self._stats is not None else {}

    def calculate_stats(self) -> None:
        """Compute :attr:`stats` (on columns)."""
        self._stats = view_stats(self._view(), self.json_categories)

    # -- whole-dataset operations --------------------------------------------------

    def update_categories(self, desired_name2id: Mapping[str, int],
                          update_image_filenames: bool = False) -> None:
        """Remap categories by name to ``desired_name2id``, in place.

        Annotations of categories not in the mapping are dropped; the categories become
        exactly the mapping's, in its order (existing ones keep their other keys).
        ``update_image_filenames`` makes file names absolute with ``image_dir``.
        """
        if update_image_filenames and not self.image_dir:
            raise SahiValueError("image_dir", self.image_dir,
                                 "an image folder to make file names absolute (image "
                                 "directory not set)")
        view = self._view()
        ds = positional_dataset(view, self.json_categories)
        out = _apply_category_mapping(ds, desired_name2id)
        kept = out.annotations.id
        cmap = dict(zip(out.categories.id.tolist(), out.categories.name.tolist(), strict=True))
        names = object_array([cmap.get(c) for c in out.annotations.category_id.tolist()])
        anns = out.annotations.replace(id=view.annotations.id[kept],
                                       image_id=view.annotations.image_id[kept])
        counts = np.bincount(out.annotations.image_id, minlength=len(view.counts))
        images = view.images
        if update_image_filenames and self.image_dir:
            base = Path(os.path.abspath(self.image_dir))
            files = [f if os.path.abspath(f) == f else str(base / f)
                     for f in map(str, images.file_name.tolist())]
            images = images.replace(file_name=object_array(files))
        self.categories = [CocoCategory.from_coco_category(c) for c in out.categories]
        source = self._images._store.source if self._images._store is not None else None
        self._replace_store(store_of_view(view, source, annotations=anns, names=names,
                                           counts=counts.astype(np.int64), images=images))

    def merge(self, coco: Coco, desired_name2id: Mapping[str, int] | None = None,
              verbose: int = 1) -> None:
        """Add the images of ``coco`` to this dataset, categories unified by name, in place.

        Both need ``image_dir`` (file names become absolute). Without
        ``desired_name2id`` the categories are the union of both, numbered from 0.
        ``coco`` is not changed (SAHI changes it too).
        """
        if self.image_dir is None or coco.image_dir is None:
            raise SahiValueError("image_dir", None, "image_dir on both datasets "
                                 "(image_dir should be provided for merging)")
        if desired_name2id is None:
            if verbose:
                log.info("'desired_name2id' is not specified, combining all categories.")
            desired_name2id = {}
            for c in [*self.categories, *coco.categories]:
                if c.name not in desired_name2id:
                    desired_name2id[c.name] = len(desired_name2id)  # type: ignore[index]
        other = coco._derived(coco._images._items, store=coco._images._store)
        self.update_categories(desired_name2id, update_image_filenames=True)
        other.update_categories(desired_name2id, update_image_filenames=True)
        v1, v2 = self._view(), other._view()
        store = Store(
            Images.concat([v1.images, v2.images]),
            Annotations.concat([v1.annotations, v2.annotations]),
            np.concatenate([v1.counts, v2.counts]),
            np.concatenate([v1.names, v2.names]),
            np.concatenate([v1.id_missing, v2.id_missing]),
        )
        self._replace_store(store)
        if verbose:
            log.info("Categories are formed as: %s", self.json_categories)

    def split_coco_as_train_val(self, train_split_rate: float = 0.9,
                                numpy_seed: int = 0) -> dict[str, Coco]:
        """Split the images into ``{"train_coco": ..., "val_coco": ...}``.

        The same images go to each side as in SAHI (the same shuffle, from a private
        ``random.Random(numpy_seed)``: the global random state is not touched). The
        results are independent copies, with this dataset's settings.
        """
        n = len(self._images)
        order = list(range(n))
        random.Random(numpy_seed).shuffle(order)
        num_train = int(n * train_split_rate)
        detached = copy.deepcopy(self._images)
        items = detached._items
        train = self._derived([items[i] for i in order[:num_train]],
                              name=self.name if self.name else "split_train",
                              store=detached._store)
        val = self._derived([items[i] for i in order[num_train:]],
                            name=self.name if self.name else "split_val",
                            store=detached._store)
        return {"train_coco": train, "val_coco": val}

    def export_as_yolo(self, output_dir: str | os.PathLike[str], train_split_rate: float = 1.0,
                       numpy_seed: int = 0, mp: bool = False,
                       disable_symlink: bool = False) -> None:
        """Export as YOLO (``train/``, ``val/``, ``data.yml``); see
        :func:`cocokit.compat.sahi.export_coco_as_yolo` for what differs from SAHI."""
        export_coco_object_as_yolo(self, output_dir, train_split_rate, numpy_seed,
                                   disable_symlink)

    def _category_masks(self, view: View, category_id: int | None) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        n = len(view.counts)
        has = np.zeros(n, bool)
        if category_id is not None and len(view.annotations):
            hit = view.annotations.category_id == int(category_id)
            has[view.item_of_annotation[hit]] = True
        negative = view.counts == 0
        return has, negative

    def get_subsampled_coco(self, subsample_ratio: int = 2,
                            category_id: int | None = None) -> Coco:
        """Every ``subsample_ratio``-th image (with ``category_id``: of the images that hold
        it, the others all kept first; ``-1`` subsamples the negative images)."""
        if not is_int(subsample_ratio) or subsample_ratio < 1:
            raise SahiValueError("subsample_ratio", subsample_ratio, "a positive integer")
        items = self._images._items
        if category_id is None:
            chosen = list(range(0, len(items), subsample_ratio))
        else:
            has, negative = self._category_masks(self._view(), category_id)
            selected = has | ((category_id == -1) & negative)
            chosen = np.flatnonzero(~selected).tolist()
            chosen += np.flatnonzero(selected)[::subsample_ratio].tolist()
        return self._derived([items[i] for i in chosen])

    def get_upsampled_coco(self, upsample_ratio: int = 2,
                           category_id: int | None = None) -> Coco:
        """Each image ``upsample_ratio`` times (with ``category_id``: only the images that
        hold it are repeated; ``-1`` repeats the negative images)."""
        if not is_int(upsample_ratio) or upsample_ratio < 0:
            raise SahiValueError("upsample_ratio", upsample_ratio, "a non-negative integer")
        items = self._images._items
        n = len(items)
        if category_id is None:
            chosen = np.tile(np.arange(n), upsample_ratio)
        else:
            has, negative = self._category_masks(self._view(), category_id)
            again = np.flatnonzero(has | ((category_id == -1) & negative))
            passes = [np.arange(n)] * min(upsample_ratio, 1) + [again] * max(upsample_ratio - 1, 0)
            chosen = np.concatenate([np.zeros(0, np.int64), *passes]).astype(np.int64)
        return self._derived([items[i] for i in chosen.tolist()])

    def get_area_filtered_coco(self, min: float = 0, max_val: float = float("inf"),
                               intervals_per_category: Mapping[str, Mapping[str, float]]
                               | None = None) -> Coco:
        """The images whose every annotation has an area in ``[min, max_val]`` (and in the
        interval of its category, by name)."""
        view = self._view()
        area = view.areas
        ok = (area >= min) & (area <= max_val)
        for name, iv in (intervals_per_category or {}).items():
            mine = view.names == name
            ok &= ~mine | ((area >= iv["min"]) & (area <= iv["max"]))
        bad = np.bincount(view.item_of_annotation[~ok], minlength=len(view.counts))
        items = self._images._items
        return self._derived([items[i] for i in np.flatnonzero(bad == 0).tolist()])

    def get_coco_with_clipped_bboxes(self) -> Coco:
        """Annotations clipped to their image: boxes, and polygons (kept, with float
        coordinates); annotations with nothing inside the image are dropped."""
        from ..transforms import clip

        view = self._view()
        ds = positional_dataset(view, self.json_categories)
        out = clip(ds).dataset
        kept = out.annotations.id
        anns = out.annotations.replace(id=view.annotations.id[kept],
                                       image_id=view.annotations.image_id[kept])
        counts = np.bincount(out.annotations.image_id, minlength=len(view.counts))
        coco = self._derived([])
        coco._replace_store(store_of_view(view, annotations=anns, names=view.names[kept],
                                           counts=counts.astype(np.int64)))
        return coco

    def __repr__(self) -> str:
        return (f"<cocokit.compat.sahi.Coco {self.name or ''}: {len(self._images)} images, "
                f"{len(self.categories)} categories>")


# -- module functions on dicts and files -------------------------------------------------


def create_coco_dict(images: Iterable[CocoImage], categories: Sequence[Mapping[str, Any]],
                     ignore_negative_samples: bool = False,
                     image_id_setting: str = "auto") -> dict[str, Any]:
    """A COCO dict from images (with their annotations) and category records.

    ``image_id_setting``: ``"auto"`` numbers the images 1..N, ``"manual"`` keeps each
    image's id. Annotations are numbered 1..M in image order.
    """
    check_id_setting(image_id_setting)
    return dataset_dict(export_dataset(collect(images), categories, ignore_negative_samples,
                                    image_id_setting))


def create_coco_prediction_array(images: Iterable[CocoImage],
                                 ignore_negative_samples: bool = False,
                                 image_id_setting: str = "auto") -> list[dict[str, Any]]:
    """The predictions of the images as a COCO results list (ids as in :func:`create_coco_dict`)."""
    check_id_setting(image_id_setting)
    if isinstance(images, ImageList):
        store = images._store
        seq: list[CocoImage | None] = [
            it if isinstance(it, CocoImage) else (store.cache.get(it) if store else None)
            for it in images._items]
        ids = [it.id if isinstance(it, CocoImage) else
               (None if store is None or store.id_missing[it] else int(store.images.id[it]))
               for it in images._items]
    else:
        seq = [ImageList._checked(im) for im in images]
        ids = [im.id for im in seq if im is not None]
    out: list[dict[str, Any]] = []
    image_index = 1
    for im, iid in zip(seq, ids, strict=True):
        preds = im.predictions if im is not None else []
        if ignore_negative_samples and not preds:
            continue
        if image_id_setting == "auto":
            image_id = image_index
            image_index += 1
        else:
            if iid is None:
                raise SahiValueError("coco_image.id", None, "an id on every image "
                                     "('coco_image.id' should be set manually when "
                                     "image_id_setting == 'manual')")
            image_id = iid
        for p in preds:
            rec = {"id": len(out) + 1, "image_id": image_id, "bbox": p.bbox, "score": p.score,
                   "category_id": p.category_id, "segmentation": p.segmentation,
                   "iscrowd": p.iscrowd, "area": p.area}
            rec.update(p._extra_fields())
            out.append(rec)
    return out


def _apply_category_mapping(ds: Dataset, desired_name2id: Mapping[str, int]) -> Dataset:
    """SAHI's ``update_categories`` on a dataset: exactly the mapping's categories."""
    from ..transforms import edit_categories

    out = edit_categories(ds, mapping={str(k): int(v) for k, v in desired_name2id.items()})
    before = {str(n) for n in ds.categories.name.tolist()}
    cats = []
    for rec in out.dataset.categories.records:
        rec = dict(rec)
        if rec["name"] not in before and "supercategory" not in rec:
            rec["supercategory"] = rec["name"]
        cats.append(rec)
    return out.dataset.replace(categories=Categories(cats))


def update_categories(desired_name2id: Mapping[str, int], coco_dict: Mapping[str, Any]
                      ) -> dict[str, Any]:
    """A copy of ``coco_dict`` with categories remapped by name to ``desired_name2id``.

    Annotations of other categories are dropped. ``coco_dict`` is not changed; its
    other top-level keys (``info``, ``licenses``) are kept.
    """
    return dataset_dict(_apply_category_mapping(as_dataset(coco_dict, "coco_dict"),
                                            desired_name2id))


def update_categories_from_file(desired_name2id: Mapping[str, int], coco_path: str,
                                save_path: str) -> None:
    """:func:`update_categories` of a file, written (atomically) to ``save_path``."""
    ds = _apply_category_mapping(read_coco(coco_path), desired_name2id)
    _save(ds, save_path)


def _save(ds: Dataset, path: str | os.PathLike[str]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_coco(ds, path, image_ids="keep", annotation_ids="keep")


def _merge_datasets(ds1: Dataset, ds2: Dataset,
                    desired_name2id: Mapping[str, int] | None) -> Dataset:
    """SAHI's dict ``merge``: the second dataset's ids moved past the first's."""
    max_image = int(ds1.images.id.max()) if len(ds1.images) else -1
    max_ann = int(ds1.annotations.id.max()) if len(ds1.annotations) else -1
    t1, t2 = ds1, ds2
    if desired_name2id is not None:
        t1 = _apply_category_mapping(t1, desired_name2id)
        t2 = _apply_category_mapping(t2, desired_name2id)
    cats = list(t1.categories)
    if cats != list(t2.categories):
        # the second's categories by name onto the first's; names only the second has are
        # added (SAHI drops their annotations)
        full = {c["name"]: int(c["id"]) for c in cats}
        used = set(full.values())
        next_id = max(used, default=-1) + 1
        added = []
        for c in t2.categories:
            if c["name"] in full:
                continue
            cid = int(c["id"]) if int(c["id"]) not in used else next_id
            used.add(cid)
            next_id = max(next_id, cid + 1)
            full[c["name"]] = cid
            added.append({**c, "id": cid})
        t2 = _apply_category_mapping(t2, {str(c["name"]): full[c["name"]]
                                          for c in t2.categories})
        cats = cats + added
    anns2 = t2.annotations.replace(id=t2.annotations.id + max_ann + 1,
                                   image_id=t2.annotations.image_id + max_image + 1)
    images2 = t2.images.replace(id=t2.images.id + max_image + 1)
    return Dataset(Images.concat([t1.images, images2]),
                   Annotations.concat([t1.annotations, anns2]),
                   Categories(cats), t1.extra, t1.key_order, t1.source)


def merge(coco_dict1: Mapping[str, Any], coco_dict2: Mapping[str, Any],
          desired_name2id: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Two COCO dicts in one: the second's image and annotation ids moved past the first's.

    With ``desired_name2id`` both are remapped to it first. Otherwise the second's
    categories are matched to the first's by name, and names only the second has are
    added (SAHI drops their annotations). The inputs are not changed.
    """
    return dataset_dict(_merge_datasets(as_dataset(coco_dict1, "coco_dict1"),
                                    as_dataset(coco_dict2, "coco_dict2"), desired_name2id))


def merge_from_list(coco_dict_list: Sequence[Mapping[str, Any]],
                    desired_name2id: Mapping[str, int] | None = None,
                    verbose: int = 1) -> dict[str, Any]:
    """Several COCO dicts in one (categories: the union by name, numbered from 0, unless
    ``desired_name2id`` is given)."""
    if not coco_dict_list:
        raise SahiValueError("coco_dict_list", [], "at least one COCO dict")
    datasets = [as_dataset(d, f"coco_dict_list[{i}]") for i, d in enumerate(coco_dict_list)]
    if desired_name2id is None:
        if verbose:
            log.info("'desired_name2id' is not specified, combining all categories.")
        desired_name2id = {}
        for d in datasets:
            for name in d.categories.name.tolist():
                if name not in desired_name2id:
                    desired_name2id[name] = len(desired_name2id)
    merged = datasets[0]
    for d in datasets[1:]:
        merged = _merge_datasets(merged, d, desired_name2id)
    if verbose:
        log.info("Categories are formed as: %s", list(merged.categories))
    return dataset_dict(merged)


def merge_from_file(coco_path1: str, coco_path2: str, save_path: str) -> None:
    """:func:`merge` of two files, written (atomically) to ``save_path``."""
    _save(_merge_datasets(read_coco(coco_path1), read_coco(coco_path2), None), save_path)


def get_imageid2annotationlist_mapping(coco_dict: Mapping[str, Any]
                                       ) -> defaultdict[int, list[dict[str, Any]]]:
    """Image id -> the annotation dicts of that image (the dict's own objects)."""
    out: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in coco_dict["annotations"]:
        out[ann["image_id"]].append(ann)
    return out


def add_bbox_and_area_to_coco(source_coco_path: str = "", target_coco_path: str = "",
                              add_bbox: bool = True, add_area: bool = True) -> dict[str, Any]:
    """Fill ``bbox`` and ``area`` of every segmented annotation from its segmentation.

    Polygons: their tight box and geometric area (as SAHI); RLE masks: their box and
    pixel count (SAHI fails on RLE); annotations with neither keep theirs. Written to
    ``target_coco_path`` when given; the dict is returned.
    """
    ds = read_coco(source_coco_path)
    kind, area, box = table_geometry(ds.annotations, ds.source)
    anns = ds.annotations
    seg_rows = kind > 0
    if add_bbox and seg_rows.any():
        poly = kind == 1
        new_box = anns.bbox.copy()
        if poly.any():
            polys = parse_polygons(anns.segmentation, np.flatnonzero(poly))
            new_box[poly] = polygon_bboxes(polys)
        rle = kind == 2
        new_box[rle] = box[rle]
        anns = anns.replace(bbox=new_box)
    if add_area and seg_rows.any():
        new_area = anns.area.copy()
        new_area[seg_rows] = area[seg_rows]
        anns = anns.replace(area=new_area)
    out = ds.replace(annotations=anns)
    if target_coco_path:
        _save(out, target_coco_path)
    return dataset_dict(out)


@dataclass
class DatasetClassCounts:
    """How many images hold each category (``counts``: category id -> images)."""

    counts: dict[Any, int]
    total_images: int

    def frequencies(self) -> dict[Any, float]:
        """Category id -> share of the images that hold it."""
        return {cid: count / self.total_images for cid, count in self.counts.items()}

    def __add__(self, o: DatasetClassCounts) -> DatasetClassCounts:
        """The counts of two datasets together."""
        counts = dict(self.counts)
        for k, v in o.counts.items():
            counts[k] = counts.get(k, 0) + v
        return DatasetClassCounts(counts, self.total_images + o.total_images)


def count_images_with_category(coco_file_path: str) -> DatasetClassCounts:
    """For each category id, the number of images with at least one of its annotations.

    ``total_images`` counts the images that have annotations (as SAHI does).
    """
    anns = read_coco(coco_file_path).annotations
    if not len(anns):
        return DatasetClassCounts({}, 0)
    pairs = np.stack([anns.image_id, anns.category_id], axis=1)
    uniq, first = np.unique(pairs, axis=0, return_index=True)
    uniq = uniq[np.argsort(first, kind="stable")]
    cats, first_cat, per = np.unique(uniq[:, 1], return_index=True, return_counts=True)
    order = np.argsort(first_cat, kind="stable")
    counts = {int(cats[i]): int(per[i]) for i in order}
    return DatasetClassCounts(counts, len(np.unique(anns.image_id)))


def remove_invalid_coco_results(result_list_or_path: list[dict[str, Any]] | str,
                                dataset_dict_or_path: Mapping[str, Any] | str | None = None
                                ) -> list[dict[str, Any]]:
    """The results whose box is valid: 4 numbers, none negative, and (with the dataset) not
    beyond the image, as SAHI checks it. The result dicts are not changed."""
    if isinstance(result_list_or_path, (str, os.PathLike)):
        try:
            results = msgspec.json.decode(Path(result_list_or_path).read_bytes())
        except FileNotFoundError:
            raise InputError(str(result_list_or_path), None, "no such file") from None
        except msgspec.DecodeError as e:
            raise InputError(str(result_list_or_path), None, f"malformed JSON: {e}") from None
        if not isinstance(results, list):
            raise InputError(str(result_list_or_path), None, "expected a list of results")
    elif isinstance(result_list_or_path, list):
        results = result_list_or_path
    else:
        raise SahiTypeError("result_list_or_path", type(result_list_or_path).__name__,
                            "a list of results or a path")
    sizes: dict[int, tuple[int, int]] | None = None
    if dataset_dict_or_path is not None:
        ds = as_dataset(dataset_dict_or_path, "dataset_dict_or_path")
        sizes = dict(zip(ds.images.id.tolist(),
                         zip(ds.images.height.tolist(), ds.images.width.tolist(), strict=True),
                         strict=True))
    out = []
    dropped = 0
    for i, res in enumerate(results):
        bbox = res.get("bbox")
        if not bbox or len(bbox) != 4 or min(bbox) < 0:
            dropped += 1
            continue
        if sizes is not None:
            hw = sizes.get(res.get("image_id"))
            if hw is None:
                raise InputError(None, f"results[{i}].image_id",
                                 f"image id {res.get('image_id')} is not in the dataset")
            h, w = hw
            if bbox[1] > h or bbox[3] > h or bbox[0] > w or bbox[2] > w:
                dropped += 1
                continue
        out.append(res)
    if dropped:
        log.info("ignored %d invalid prediction(s)", dropped)
    return out


def export_coco_as_yolo_via_yml(yml_path: str | os.PathLike[str],
                                output_dir: str | os.PathLike[str],
                                train_split_rate: float = 0.9, numpy_seed: int = 0,
                                disable_symlink: bool = False) -> str:
    """:func:`export_coco_as_yolo` with the inputs named in a YAML file
    (``train_json_path``, ``train_image_dir``, ``val_json_path``, ``val_image_dir``)."""
    from ..io.yolo import load_data_yaml

    config = load_data_yaml(yml_path)
    cocos: dict[str, Coco | None] = {}
    for split in ("train", "val"):
        json_path = config.get(f"{split}_json_path")
        if json_path:
            image_dir = config.get(f"{split}_image_dir")
            if not image_dir:
                raise InputError(os.fspath(yml_path), f"{split}_image_dir",
                                 f"missing `{split}_image_dir`")
            cocos[split] = Coco.from_coco_dict_or_path(str(json_path), image_dir=str(image_dir))
        else:
            cocos[split] = None
    return export_coco_as_yolo(output_dir, cocos["train"], cocos["val"], train_split_rate,
                               numpy_seed, disable_symlink)

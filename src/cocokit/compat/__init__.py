"""Drop-in compatibility layers for other COCO tools.

* :mod:`cocokit.compat.sahi`: the public names of ``sahi.utils.coco`` and the dataset
  parts of ``sahi.slicing``, backed by cocokit's columns. Switch with one import::

      # from sahi.utils.coco import Coco, CocoAnnotation, ...
      from cocokit.compat.sahi import Coco, CocoAnnotation, ...

  See ``docs/sahi-migration.md`` for every deliberate difference.

Nothing is imported here: ``import cocokit.compat.sahi`` loads the layer.
"""

from __future__ import annotations

__all__: list[str] = []

"""``check`` reading images on a real local Ray cluster: the same scan as the local pool."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cocokit.quality.images import MISSING, OK, UNREADABLE, scan_images

from .conftest import real_path

ray = pytest.importorskip(
    "ray", reason="the Ray extra is not installed (pip install 'cocokit[ray]')"
)


def test_ray_scan_is_the_local_scan(ray_cluster: None, tmp_path: Path) -> None:
    src = real_path("coco-mini", "val2017")
    names = sorted(p.name for p in src.glob("*.jpg"))[:6]
    for n in names:
        shutil.copyfile(src / n, tmp_path / n)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    names += ["broken.jpg", "gone.jpg"]
    local = scan_images(names, tmp_path, workers=2)
    remote = scan_images(names, tmp_path, engine="ray")
    assert remote.status.tolist() == [OK] * 6 + [UNREADABLE, MISSING]
    for field in ("status", "width", "height", "digest", "phash"):
        assert np.array_equal(getattr(local, field), getattr(remote, field))
    assert remote.reason == local.reason and "broken.jpg" not in remote.reason[6]

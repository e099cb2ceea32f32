"""Shared fixtures: the real-data corpus beside the repository and small datasets."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
DATA = Path(__file__).resolve().parent / "data"


def real_path(*parts: str) -> Path:
    """A file of the real-data corpus, or skip the test with the reason."""
    p = REAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p} (the corpus lives in ../shared/data/real)")
    return p


@pytest.fixture
def real_data() -> Path:
    """The folder of real COCO files (../shared/data/real); skips when it is absent."""
    if not REAL.is_dir():
        pytest.skip(f"real data not available: {REAL} (the corpus lives in ../shared/data/real)")
    return REAL


@pytest.fixture
def data_dir() -> Path:
    """tests/data: small files copied into the repo (with attribution in its README)."""
    return DATA


_MEMORY_IDS = itertools.count()


@pytest.fixture
def memory_fs() -> Iterator[tuple[Any, str]]:
    """The fsspec memory filesystem and a fresh folder in it (removed afterwards)."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    root = f"/cocokit-test-{os.getpid()}-{next(_MEMORY_IDS)}"
    yield fs, root
    with contextlib.suppress(FileNotFoundError):
        fs.rm(root, recursive=True)


def memory_files(fs: Any, folder: str) -> dict[str, bytes]:
    """Every file under a memory folder by its path relative to it."""
    return {p[len(folder) + 1:]: fs.cat_file(p) for p in fs.find(folder)}


def local_files(folder: Path) -> dict[str, bytes]:
    """Every file under a local folder by its ``/``-separated path relative to it."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A real local Ray cluster of 2 CPUs, one for the whole test run (skips without
    the extra). ``address="local"`` starts a fresh one even if a cluster runs nearby."""
    ray = pytest.importorskip(
        "ray", reason="the Ray extra is not installed (pip install 'cocokit[ray]')")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


#: Why the Datumaro comparisons skip: Datumaro is heavy, so it is its own extra.
DATUMARO_MISSING = ("datumaro is not installed (or does not import): it is the interop "
                    "extra (pip install 'cocokit[interop]')")


def import_datumaro() -> Any:
    """Datumaro, or the test skipped with :data:`DATUMARO_MISSING` (any ImportError: its
    pins of pandas and OpenCV can break its import where it is installed)."""
    return pytest.importorskip("datumaro", reason=DATUMARO_MISSING, exc_type=ImportError)

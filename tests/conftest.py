"""Shared fixtures: the real-data corpus beside the repository and small datasets."""

from __future__ import annotations

from pathlib import Path

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

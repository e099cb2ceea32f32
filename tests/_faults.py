"""Helpers of the fault tests (tests/test_signals.py, tests/test_output_faults.py):
generated datasets of noise images, the installed ``cocokit`` run as a real process,
the live descendants of a process, and the leftovers a run may leave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

PIPELINE_YAML = """\
pipeline:
  - hflip: {p: 0.5}
  - rotate: {angle: [-20, 20]}
  - color_jitter
"""


def cocokit_command() -> list[str]:
    """The console script beside this Python, else ``python -m cocokit``."""
    script = Path(sys.executable).parent / ("cocokit.exe" if os.name == "nt" else "cocokit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cocokit"]


def environ() -> dict[str, str]:
    """The environment of a cocokit subprocess: this checkout's package first."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COCOKIT_QUIET")}
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``cocokit args...`` to completion."""
    return subprocess.run([*cocokit_command(), *args], capture_output=True, text=True,
                          timeout=300, env=environ(), cwd=cwd)


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """``cocokit args...`` started, stderr captured."""
    return subprocess.Popen([*cocokit_command(), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=environ(), cwd=cwd)


def noise_images(folder: Path, n: int = 20, size: tuple[int, int] = (1200, 900),
                 seed: int = 0) -> Path:
    """``n`` JPEGs of noise (which compress badly: each is about 1 MB) in ``folder``,
    and a COCO file listing them with two boxes each; returns the COCO file."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    images, anns = [], []
    for i in range(n):
        name = f"img{i:03d}.jpg"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
            folder / name, quality=90)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for k in range(2):
            x, y = 50 + 300 * k, 60 + 200 * k
            anns.append({"id": 2 * i + k + 1, "image_id": i + 1, "category_id": 1,
                         "bbox": [x, y, 200, 150], "area": 30000.0, "iscrowd": 0})
    coco = folder.parent / f"{folder.name}.json"
    coco.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "thing"}]}))
    return coco


def big_coco(path: Path, images: int = 20000) -> Path:
    """A generated COCO file (benchmarks/generate.py) of ``images`` images: about 90 MB
    for 20,000, whose export takes long enough to be interrupted while it writes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from generate import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    generate(path, images, 7.3, 1.0, 0)
    return path


def descendants(pid: int) -> set[int]:
    """The pids of every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier and c not in found}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (not gone, not zombies)."""
    out = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            out.add(pid)
    return out


def wait_for(check: Callable[[], bool], timeout: float = 60.0, every: float = 0.005) -> bool:
    """Poll ``check`` until it is true (True) or ``timeout`` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(every)
    return False


def hidden(folder: Path) -> list[str]:
    """The hidden entries of ``folder`` (temporary files, staging folders)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}

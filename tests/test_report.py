"""The HTML report (cocokit.report): plots, self-containment, and a real browser render."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import cocokit
from cocokit import DatasetBuilder, MissingDependency
from cocokit.cli import app

pytest.importorskip("matplotlib", reason="the report needs the optional extra cocokit[plot]")

from cocokit.report import FIGURES, render_report, report_figures, write_report

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _mini(real_data: Path) -> Path:
    return real_data / "coco-mini" / "annotations" / "instances_val2017.json"


def _not_blank(img: Image.Image) -> float:
    """Standard deviation of the gray levels (0 for a blank image)."""
    return float(np.asarray(img.convert("L"), np.float64).std())


def test_every_figure_is_a_real_png(real_data: Path) -> None:
    ds = cocokit.load(_mini(real_data))
    figures = report_figures(ds)
    assert list(figures) == list(FIGURES)
    for name, png in figures.items():
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG", name
        assert img.width >= 300 and img.height >= 200, name
        assert _not_blank(img) > 10, name


def test_report_is_self_contained_and_lists_the_stats(real_data: Path, tmp_path: Path) -> None:
    ds = cocokit.load(_mini(real_data))
    out = write_report(ds, tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'\ssrc="([^"]*)"', text)
    assert len(srcs) == len(FIGURES)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    for s in srcs:  # every embedded image decodes
        Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).verify()
    # nothing to fetch: no links, scripts, stylesheets or remote URLs
    assert not re.search(r"<(script|link|iframe)\b", text)
    assert not re.search(r"(https?:)?//[a-z]", re.sub(r"data:[^\"]+", "", text))
    s = cocokit.compute_stats(ds)
    assert f"<td>{s.images}</td>" in text
    assert f"{s.small} / {s.medium} / {s.large}" in text
    for c in s.per_category:
        assert f'<td class="name">{c.name}</td>' in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temp file left


def test_names_are_escaped_and_empty_plots_say_so() -> None:
    b = DatasetBuilder()
    b.add_category("<b>bold & co</b>")
    b.add_image("x.jpg", 10, 10)
    text = render_report(b.build(), title="a <title>")
    assert "&lt;b&gt;bold &amp; co&lt;/b&gt;" in text and "<b>bold" not in text
    assert "<title>a &lt;title&gt;</title>" in text
    assert len(re.findall(r'src="data:image/png;base64,', text)) == len(FIGURES)


def test_large_datasets_are_binned_not_sampled() -> None:
    from cocokit.report import SCATTER_LIMIT

    b = DatasetBuilder()
    cat = b.add_category("box")
    img = b.add_image("x.jpg", 1000, 800)
    rng = np.random.default_rng(0)
    for w, h in rng.uniform(1, 400, (SCATTER_LIMIT + 10, 2)):
        b.add_annotation(img, cat, bbox=[10, 10, w, h], area=w * h)
    ds = b.build()
    small = report_figures(ds.select_annotations(np.arange(100)))["box_sizes"]
    big = report_figures(ds)["box_sizes"]

    def greenish(png: bytes) -> int:  # viridis hexbin cells; the scatter is blue on white
        px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        return int(((px[..., 1] > px[..., 2] + 20) & (px[..., 1] > px[..., 0] + 20)).sum())

    assert greenish(small) == 0
    assert greenish(big) > 1_000


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependency) as e:
        report_figures(DatasetBuilder().build())
    assert e.value.extra == "plot" and "cocokit[plot]" in str(e.value)


def test_cli_html(real_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["stats", str(_mini(real_data)), "--html", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 50_000
    assert "person" in result.stdout  # the table is still printed


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless browser: install Debian's chromium (apt-get install -y chromium) "
                "to render the report")


def test_report_renders_in_headless_chromium(real_data: Path, tmp_path: Path) -> None:
    browser = _chromium()
    html = tmp_path / "report.html"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "cocokit", "stats", str(_mini(real_data)),
                           "--html", str(html), "-q"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1200,2000", html.resolve().as_uri()]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within 180 s: {' '.join(cmd)}")
    assert shot.exists(), f"no screenshot (exit {run.returncode}): {run.stderr[-2000:]}"
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2000)
    assert _not_blank(img) > 20
    # the plots are drawn: the bar color of the category histogram is on screen
    px = np.asarray(img).reshape(-1, 3).astype(int)
    bar = np.array([0x3B, 0x6E, 0xA8])
    assert (np.abs(px - bar).sum(axis=1) < 30).sum() > 5_000

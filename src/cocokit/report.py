"""An HTML report of a dataset: the statistics as tables, and plots.

:func:`write_report` writes one self-contained HTML file (inline CSS, every plot a
base64 ``data:`` PNG; no script, font or link to fetch) that opens in a browser
offline. The plots (see :data:`FIGURES`): annotations per category, box width vs
height, object areas on a log scale with COCO's small/medium/large limits, box aspect
ratios, annotations per image, where box centers fall in the image (a heatmap over
normalized coordinates), and image sizes.

Plotting needs matplotlib, the optional extra ``plot`` (``pip install
'cocokit[plot]'``); it is imported on first use, and only its object API is used (no
``pyplot``, no change to global matplotlib state). Every array the plots need is
computed on the numpy columns at once; large point clouds are binned (hexbin) rather
than subsampled, so the report is deterministic.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import Dataset
from .errors import MissingDependency
from .stats import AREA_RANGES, DatasetStats, Distribution, annotation_areas, compute_stats

__all__ = [
    "FIGURES", "figure_html", "html_page", "new_figure", "png_bytes", "render_report",
    "report_figures", "require_plotting", "write_report",
]

#: Name and caption of each plot, in report order.
FIGURES: dict[str, str] = {
    "categories": "Annotations per category",
    "box_sizes": "Box width vs height (pixels)",
    "areas": "Object area (log scale) with COCO's small / medium / large limits",
    "aspect_ratios": "Box aspect ratio width / height (log scale)",
    "per_image": "Annotations per image",
    "centers": "Box centers (normalized to image width and height)",
    "image_sizes": "Image sizes (marker area ~ number of images)",
}

#: Above this many boxes the width/height plot bins points (hexbin) instead of a scatter.
SCATTER_LIMIT = 20_000
#: At most this many categories are drawn in the category histogram (the most used).
TOP_CATEGORIES = 60
_DPI = 100
_BLUE = "#3b6ea8"


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingDependency("matplotlib", "plot") from e
    return Figure


def require_plotting() -> None:
    """Raise MissingDependency (extra ``plot``) now if matplotlib cannot be imported."""
    _figure_class()


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _no_data(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes,
            fontsize=14, color="#888888")
    ax.set_xticks([])
    ax.set_yticks([])


class _Data:
    """The arrays the plots need, computed once from the columns."""

    def __init__(self, ds: Dataset, stats: DatasetStats) -> None:
        anns = ds.annotations
        self.stats = stats
        img = ds.image_index
        box = anns.bbox
        ok = np.isfinite(box).all(axis=1)
        self.box_w = box[ok, 2]
        self.box_h = box[ok, 3]
        self.missing_boxes = int(np.count_nonzero(~ok))
        on = ok & (img >= 0)
        iw = ds.images.width[img[on]].astype(np.float64)
        ih = ds.images.height[img[on]].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.cx = (box[on, 0] + box[on, 2] / 2) / iw
            self.cy = (box[on, 1] + box[on, 3] / 2) / ih
            self.aspect = self.box_w / self.box_h
        area, _ = annotation_areas(ds)
        self.area = area
        self.per_image = np.bincount(img[img >= 0], minlength=len(ds.images))
        self.img_w = ds.images.width
        self.img_h = ds.images.height


def _plot_categories(fig: Any, d: _Data) -> None:
    cats = [c for c in d.stats.per_category if c.annotations > 0]
    cats.sort(key=lambda c: (-c.annotations, c.id))
    shown = cats[:TOP_CATEGORIES]
    fig.set_size_inches(10, max(2.5, 0.8 + 0.17 * len(shown)))
    ax = fig.add_subplot()
    if not shown:
        _no_data(ax, "annotations")
        return
    names = [c.name if c.name is not None else f"undeclared id {c.id}" for c in shown]
    y = np.arange(len(shown))
    ax.barh(y, [c.annotations for c in shown], color=_BLUE, label="annotations")
    ax.barh(y, [c.crowd for c in shown], color="#d9822b", label="of which crowd")
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("annotations")
    ax.legend(loc="lower right", fontsize=8)
    title = FIGURES["categories"]
    if len(cats) > len(shown):
        title += f" (top {len(shown)} of {len(cats)} used)"
    ax.set_title(title, fontsize=10)


def _plot_box_sizes(fig: Any, d: _Data) -> None:
    fig.set_size_inches(5.2, 4.2)
    ax = fig.add_subplot()
    if len(d.box_w) == 0:
        _no_data(ax, "boxes")
        return
    if len(d.box_w) <= SCATTER_LIMIT:
        ax.scatter(d.box_w, d.box_h, s=6, alpha=0.5, color=_BLUE, linewidths=0)
    else:
        hb = ax.hexbin(d.box_w, d.box_h, gridsize=80, bins="log", cmap="viridis", mincnt=1)
        fig.colorbar(hb, ax=ax, label="boxes (log)")
    ax.set_xlabel("box width (px)")
    ax.set_ylabel("box height (px)")
    ax.set_title(f"{FIGURES['box_sizes']}: {len(d.box_w)} boxes", fontsize=10)


def _log_bins(values: np.ndarray, n: int = 60) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    return np.geomspace(lo, hi, n + 1)


def _plot_areas(fig: Any, d: _Data) -> None:
    fig.set_size_inches(5.2, 4.2)
    ax = fig.add_subplot()
    a = d.area[np.isfinite(d.area) & (d.area > 0)]
    if len(a) == 0:
        _no_data(ax, "areas")
        return
    ax.hist(a, bins=_log_bins(a), color=_BLUE)
    ax.set_xscale("log")
    for lo, _hi in AREA_RANGES.values():
        if lo > 0:
            ax.axvline(lo, color="#c0392b", linestyle="--", linewidth=1)
            ax.text(lo, 0.98, f" {int(np.sqrt(lo))}²", transform=ax.get_xaxis_transform(),
                    va="top", color="#c0392b", fontsize=8)
    s = d.stats
    ax.set_xlabel("area (px², log)")
    ax.set_ylabel("annotations")
    ax.set_title(f"Object area (COCOeval: small {s.small} · medium {s.medium} · "
                 f"large {s.large})", fontsize=10)


def _plot_aspect(fig: Any, d: _Data) -> None:
    fig.set_size_inches(5.2, 4.2)
    ax = fig.add_subplot()
    r = d.aspect[np.isfinite(d.aspect) & (d.aspect > 0)]
    if len(r) == 0:
        _no_data(ax, "boxes with a positive width and height")
        return
    ax.hist(r, bins=_log_bins(r), color=_BLUE)
    ax.set_xscale("log")
    ax.axvline(1.0, color="#555555", linestyle=":", linewidth=1)
    ticks = [t for t in (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8) if r.min() / 1.5 <= t <= r.max() * 1.5]
    labels = {1 / 8: "1/8", 1 / 4: "1/4", 1 / 2: "1/2", 1: "1", 2: "2", 4: "4", 8: "8"}
    ax.set_xticks(ticks, [labels[t] for t in ticks])
    ax.set_xlabel("width / height")
    ax.set_ylabel("boxes")
    ax.set_title(FIGURES["aspect_ratios"], fontsize=10)


def _plot_per_image(fig: Any, d: _Data) -> None:
    fig.set_size_inches(5.2, 4.2)
    ax = fig.add_subplot()
    if len(d.per_image) == 0:
        _no_data(ax, "images")
        return
    top = int(d.per_image.max())
    counts = np.bincount(d.per_image)
    if top <= 100:
        ax.bar(np.arange(top + 1), counts, width=0.9, color=_BLUE)
    else:
        ax.hist(d.per_image, bins=100, color=_BLUE)
    ax.set_xlabel("annotations in the image")
    ax.set_ylabel("images")
    ax.set_title(f"{FIGURES['per_image']} ({d.stats.negatives} images without any)",
                 fontsize=10)


def _plot_centers(fig: Any, d: _Data) -> None:
    fig.set_size_inches(5.2, 4.2)
    ax = fig.add_subplot()
    ok = np.isfinite(d.cx) & np.isfinite(d.cy)
    if not ok.any():
        _no_data(ax, "boxes on images")
        return
    bins = int(np.clip(np.sqrt(np.count_nonzero(ok)) / 1.5, 8, 64))
    heat, _, _ = np.histogram2d(d.cy[ok], d.cx[ok], bins=bins, range=[[0, 1], [0, 1]])
    im = ax.imshow(heat, extent=(0, 1, 1, 0), cmap="magma", aspect="auto",
                   interpolation="nearest")
    fig.colorbar(im, ax=ax, label="boxes")
    ax.set_xlabel("center x / image width")
    ax.set_ylabel("center y / image height")
    outside = int(np.count_nonzero(ok)) - int(heat.sum())
    extra = f" ({outside} outside the image)" if outside else ""
    ax.set_title(FIGURES["centers"] + extra, fontsize=10)


def _plot_image_sizes(fig: Any, d: _Data) -> None:
    fig.set_size_inches(5.2, 4.2)
    ax = fig.add_subplot()
    if len(d.img_w) == 0:
        _no_data(ax, "images")
        return
    span = int(d.img_h.max()) + 1
    key = d.img_w.astype(np.int64) * span + d.img_h.astype(np.int64)
    keys, counts = np.unique(np.sort(key), return_counts=True)
    w, h = keys // span, keys % span
    size = 8 + 400 * np.sqrt(counts / counts.max())
    ax.scatter(w, h, s=size, alpha=0.5, color=_BLUE, linewidths=0)
    ax.set_xlabel("image width (px)")
    ax.set_ylabel("image height (px)")
    ax.set_title(f"{FIGURES['image_sizes']}: {len(keys)} distinct", fontsize=10)


_PLOTTERS: dict[str, Callable[[Any, _Data], None]] = {
    "categories": _plot_categories,
    "box_sizes": _plot_box_sizes,
    "areas": _plot_areas,
    "aspect_ratios": _plot_aspect,
    "per_image": _plot_per_image,
    "centers": _plot_centers,
    "image_sizes": _plot_image_sizes,
}


def report_figures(ds: Dataset, stats: DatasetStats | None = None) -> dict[str, bytes]:
    """Every plot of the report as PNG bytes, by name (the keys of :data:`FIGURES`)."""
    figure = _figure_class()
    data = _Data(ds, stats if stats is not None else compute_stats(ds))
    out: dict[str, bytes] = {}
    for name, plot in _PLOTTERS.items():
        fig = figure(layout="constrained")
        plot(fig, data)
        out[name] = _png(fig)
    return out


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; background: #fff; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f4f6f8; position: sticky; top: 0; }
td.name, th.name { text-align: left; }
tr.unused td { color: #999; } tr.undeclared td { color: #b03a2e; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; border: 1px solid #eee; padding: 0.5em; flex: 1 1 480px; max-width: 540px; }
figure.wide { flex-basis: 100%; max-width: none; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.8em; color: #555; }
.summary td:first-child { text-align: left; color: #555; }
"""


def _fmt(x: float | int | None, digits: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.{digits}f}"


def _dist(d: Distribution) -> str:
    return f"{_fmt(d.min)} / {_fmt(d.median)} / {_fmt(d.mean, 2)} / {_fmt(d.max)}"


def _summary_rows(s: DatasetStats) -> list[tuple[str, str]]:
    sizes = ", ".join(f"{z.width}×{z.height} ({z.images})" for z in s.image_sizes[:5])
    rows = [
        ("images", _fmt(s.images)),
        ("negatives (images without annotations)", _fmt(s.negatives)),
        ("annotations", _fmt(s.annotations)),
        ("crowd annotations", _fmt(s.crowd)),
        ("categories (declared / used)", f"{_fmt(s.categories)} / {_fmt(s.categories_used)}"),
        ("annotations per image (min / median / mean / max)", _dist(s.annotations_per_image)),
        ("image width (min / median / mean / max)", _dist(s.image_width)),
        ("image height (min / median / mean / max)", _dist(s.image_height)),
        ("most common image sizes", f"{sizes} — {s.distinct_image_sizes} distinct"),
        ("area (min / median / mean / max)", _dist(s.area)),
        ("small / medium / large (COCOeval)", f"{_fmt(s.small)} / {_fmt(s.medium)} / "
                                               f"{_fmt(s.large)}"),
    ]
    if s.dangling:
        rows.append(("annotations on no image of the dataset", _fmt(s.dangling)))
    if s.undeclared:
        rows.append(("annotations of undeclared categories", _fmt(s.undeclared)))
    if s.areas_computed:
        rows.append(("areas computed (no area field)", _fmt(s.areas_computed)))
    return rows


def _category_table(s: DatasetStats) -> str:
    head = ("id", "name", "images", "annotations", "crowd", "area min", "area median",
            "area max", "small", "medium", "large")
    out = ["<table><thead><tr>"]
    out += [f'<th class="{"name" if h == "name" else ""}">{h}</th>' for h in head]
    out.append("</tr></thead><tbody>")
    for c in s.per_category:
        cls = "undeclared" if not c.declared else ("unused" if c.annotations == 0 else "")
        name = c.name if c.name is not None else "(undeclared)"
        cells = [_fmt(c.id), name, _fmt(c.images), _fmt(c.annotations), _fmt(c.crowd),
                 _fmt(c.area_min), _fmt(c.area_median), _fmt(c.area_max), _fmt(c.small),
                 _fmt(c.medium), _fmt(c.large)]
        tds = "".join(
            f'<td class="name">{html.escape(v)}</td>' if i == 1 else f"<td>{html.escape(v)}</td>"
            for i, v in enumerate(cells)
        )
        out.append(f'<tr class="{cls}">{tds}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def new_figure() -> Any:
    """A matplotlib Figure (constrained layout) for a report's plot; MissingDependency
    (extra ``plot``) without matplotlib."""
    return _figure_class()(layout="constrained")


def png_bytes(fig: Any) -> bytes:
    """A figure as the PNG bytes every report embeds."""
    return _png(fig)


def figure_html(key: str, png: bytes, caption: str, wide: bool = False) -> str:
    """One plot of a report: an inline ``data:`` PNG with its caption."""
    b64 = base64.b64encode(png).decode("ascii")
    cap = html.escape(caption)
    cls = ' class="wide"' if wide else ""
    return (f'<figure id="fig-{key}"{cls}><img alt="{cap}" '
            f'src="data:image/png;base64,{b64}"><figcaption>{cap}</figcaption></figure>')


def html_page(title: str, body: list[str]) -> str:
    """A self-contained HTML document in the style of every cocokit report: ``title``
    as heading, then the ``body`` parts (HTML) as they are."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *body,
        "</body></html>\n",
    ])


def render_report(ds: Dataset, stats: DatasetStats | None = None,
                  title: str | None = None,
                  sections: Sequence[tuple[str, str]] = ()) -> str:
    """The report as one self-contained HTML document (a str).

    ``sections``: more parts of the page, each ``(heading, HTML body)``, placed after
    the dataset summary (``check --html`` puts its findings there). The heading is
    escaped; the body is inserted as it is."""
    s = stats if stats is not None else compute_stats(ds)
    figures = report_figures(ds, s)
    name = title or f"cocokit report: {ds.source or 'dataset'}"
    parts = ['<h2>Dataset</h2><table class="summary"><tbody>']
    parts += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
              for k, v in _summary_rows(s)]
    parts.append("</tbody></table>")
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(body)
    parts.append('<h2>Plots</h2><div class="grid">')
    for key, png in figures.items():
        parts.append(figure_html(key, png, FIGURES[key], wide=key == "categories"))
    parts.append("</div><h2>Categories</h2>")
    parts.append("<p>Areas are the annotations' <code>area</code> field; small / medium / large "
                 "count what COCOeval evaluates (not crowd; bounds 32² and 96² inclusive on "
                 "both sides).</p>")
    parts.append(_category_table(s))
    return html_page(name, parts)


def write_report(ds: Dataset, path: str | os.PathLike[str], stats: DatasetStats | None = None,
                 title: str | None = None, sections: Sequence[tuple[str, str]] = ()) -> Path:
    """Write the HTML report to ``path`` atomically; returns the path (``sections``: see
    :func:`render_report`)."""
    from .io.atomic import atomic_write

    text = render_report(ds, stats, title, sections)
    out = Path(path)
    atomic_write(out, [text.encode("utf-8")])
    return out

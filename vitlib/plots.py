"""Figures (plotly) and how they are saved with their provenance.

Every figure in figures/ is written by `save_figure`: interactive HTML, a PNG
(kaleido, which drives Debian's chromium), and a JSON with the results it plots
and the provenance (command, machine, time taken, git commit).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["provenance", "save_figure", "patch_grid_figure", "image_row_figure", "heatmap_row_figure"]


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(command: str | None = None, seconds: float | None = None, **extra: Any) -> dict[str, Any]:
    """Where a result came from: command, machine, library versions, git commit, date, time taken."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return dict(
        command=command or " ".join(sys.argv),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        cpus=os.cpu_count(),
        device=device,
        torch=torch.__version__,
        python=platform.python_version(),
        git_commit=_git_commit(),
        date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        seconds=None if seconds is None else round(seconds, 1),
        **extra,
    )


def save_figure(fig, path: str | os.PathLike, results: Any, command: str | None = None,
                seconds: float | None = None, png: bool = True, **extra: Any) -> dict[str, Path]:
    """Write fig as PATH.html and PATH.png, and PATH.json = {"results": results, "provenance": ...}.

    PNG export needs kaleido and a Chromium (Debian's `chromium`); without them the HTML and
    JSON are still written and a warning says why the PNG is missing.
    """
    path = Path(path).with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = {"html": path.with_suffix(".html"), "json": path.with_suffix(".json")}
    fig.write_html(written["html"], include_plotlyjs="cdn", include_mathjax=False)
    record = {"results": results, "provenance": provenance(command, seconds, **extra)}
    written["json"].write_text(json.dumps(record, indent=1, default=float))
    if png:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium:
            os.environ.setdefault("BROWSER_PATH", chromium)  # kaleido >= 1 drives this browser
        try:
            fig.write_image(path.with_suffix(".png"), scale=2)
            written["png"] = path.with_suffix(".png")
        except Exception as e:  # noqa: BLE001 - any failure of the optional PNG export
            print(f"save_figure: no PNG for {path.name} ({type(e).__name__}: {e}); "
                  "install kaleido and Debian's chromium for PNG export", file=sys.stderr)
    return written


# --- Teaching figures of notebooks 01-02 (Eq. 1: images as patches). plotly is imported lazily: an optional
# dependency (vitlib[notebooks]).


def patch_grid_figure(image, P: int, title: str | None = None):
    """An image (H, W, 3) uint8 with the lines of its P x P patch grid drawn over it (plotly Figure)."""
    import plotly.express as px

    H, W = image.shape[:2]
    fig = px.imshow(image, title=title or f"P = {P}: N = HW / P^2 = {H * W // P**2} patches", binary_format="jpg")
    line = dict(color="white", width=1)
    for x in range(0, W + 1, P):
        fig.add_shape(type="line", x0=x - 0.5, x1=x - 0.5, y0=-0.5, y1=H - 0.5, line=line)
    for y in range(0, H + 1, P):
        fig.add_shape(type="line", x0=-0.5, x1=W - 0.5, y0=y - 0.5, y1=y - 0.5, line=line)
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    return fig.update_layout(width=420, height=440, margin=dict(l=10, r=10, t=40, b=10))


def image_row_figure(images: dict, height: int = 320):
    """Images (H, W, 3) uint8 of one size side by side, titled by their keys (plotly Figure, JPEG-encoded)."""
    import numpy as np
    import plotly.express as px

    fig = px.imshow(np.stack(list(images.values())), facet_col=0, binary_string=True, binary_format="jpg")
    for annotation, name in zip(fig.layout.annotations, images):
        annotation.text = name
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    return fig.update_layout(height=height, width=300 * len(images) + 40, margin=dict(l=10, r=10, t=40, b=10))


def heatmap_row_figure(maps: dict, title: str | None = None, height: int = 320):
    """2D arrays side by side as heatmaps on one shared colour scale, titled by their keys (plotly Figure)."""
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    lim = max(float(np.abs(np.asarray(m)).max()) for m in maps.values())
    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=list(maps))
    for i, m in enumerate(maps.values(), start=1):
        fig.add_trace(go.Heatmap(z=np.asarray(m), zmin=-lim, zmax=lim, colorscale="RdBu", showscale=i == len(maps)),
                      row=1, col=i)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_layout(title=title, height=height, width=300 * len(maps) + 80)
    return fig.update_layout(margin=dict(l=10, r=10, t=60, b=10))


# ---- Section 4.5, "Inspecting the Vision Transformer": Fig. 6, Fig. 7 and an attention explorer.
# The numbers come from vitlib.analysis; these functions only draw them.
__all__ += ["attention_explorer", "plot_attention_distance", "plot_fig6", "plot_fig7", "rollout_overlay",
            "to_uint8_image"]


def to_uint8_image(image, value_range: tuple[float, float] = (-1.0, 1.0)):
    """An image tensor (C, H, W) with values in value_range -> a (H, W, 3) uint8 array for plotly."""
    import numpy as np

    lo, hi = value_range
    x = ((image.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    x = x.expand(3, -1, -1) if x.shape[0] == 1 else x[:3]
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _mosaic(tiles, cols: int, fill: float):
    """(n, h, w[, c]) tiles -> one (rows * (h + 1) - 1, cols * (w + 1) - 1[, c]) array, 1-pixel gaps of `fill`."""
    import numpy as np

    tiles = np.asarray(tiles)
    n, h, w = tiles.shape[:3]
    rows = -(-n // cols)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1, *tiles.shape[3:]), fill, dtype=tiles.dtype)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = tile
    return out


def _filter_tiles(components):
    """PCA components (k, C, P, P) -> (k, P, P, 3) uint8, each stretched to its own min..max (as Fig. 7 left)."""
    import numpy as np

    x = components.detach().float().cpu()
    lo = x.flatten(1).min(1).values[:, None, None, None]
    hi = x.flatten(1).max(1).values[:, None, None, None]
    x = (x - lo) / (hi - lo).clamp_min(1e-12)
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
    return (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def plot_fig7(components, pos_similarity, mean_distance, grid: tuple[int, int], patch_size: int,
              title: str = "", filter_cols: int = 7):
    """Fig. 7 in the paper's layout: embedding-filter principal components (left), position-embedding
    similarity (center), mean attention distance per head against depth (right).

    components: (k, C, P, P) from `analysis.embedding_filters_pca`; pos_similarity: (gh, gw, gh, gw)
    from `analysis.position_embedding_similarity` (None for a model without E_pos); mean_distance:
    (L, k) from `analysis.mean_attention_distance`; grid (gh, gw) and patch_size P of the model.
    A dashed line marks what uniform attention over
    the grid would give (the largest mean distance a head can have, on average, is about this).
    """
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .analysis import grid_distances

    n = components.shape[0]
    fig = make_subplots(1, 3, column_widths=[0.3, 0.34, 0.36], horizontal_spacing=0.1, subplot_titles=[
        f"Embedding filters (first {n} principal components)", "Position embedding similarity",
        "Mean attention distance per head"])
    fig.add_trace(go.Image(z=_mosaic(_filter_tiles(components), filter_cols, 255), hoverinfo="skip"), 1, 1)
    fig.update_xaxes(visible=False, row=1, col=1)
    fig.update_yaxes(visible=False, scaleanchor="x", row=1, col=1)
    if pos_similarity is not None:
        gh, gw = pos_similarity.shape[:2]
        tiles = pos_similarity.detach().float().cpu().reshape(gh * gw, gh, gw).numpy()
        fig.add_trace(go.Heatmap(z=_mosaic(tiles, gw, np.nan), zmin=-1, zmax=1, colorscale="Viridis",
                                 colorbar=dict(title="Cosine<br>similarity", x=0.615, len=0.9, thickness=12),
                                 hovertemplate="%{z:.2f}<extra></extra>"), 1, 2)
        ticks = [(gw + 1) * c + (gw - 1) / 2 for c in range(gw)]
        fig.update_xaxes(title="Input patch column", tickvals=ticks, ticktext=[str(c + 1) for c in range(gw)],
                         showgrid=False, zeroline=False, row=1, col=2)
        ticks = [(gh + 1) * r + (gh - 1) / 2 for r in range(gh)]
        fig.update_yaxes(title="Input patch row", tickvals=ticks, ticktext=[str(r + 1) for r in range(gh)],
                         autorange="reversed", scaleanchor="x2", showgrid=False, zeroline=False, row=1, col=2)
    else:
        fig.add_annotation(text="no position embedding", showarrow=False, xref="x2 domain", yref="y2 domain",
                           x=0.5, y=0.5)
        fig.update_xaxes(visible=False, row=1, col=2)
        fig.update_yaxes(visible=False, row=1, col=2)
    d = mean_distance.detach().float().cpu()
    L, k = d.shape
    for h in range(k):
        fig.add_trace(go.Scatter(x=np.arange(1, L + 1) + (h - (k - 1) / 2) * 0.04, y=d[:, h].numpy(),
                                 mode="markers", name=f"Head {h + 1}", marker=dict(size=7, opacity=0.8),
                                 hovertemplate=f"layer %{{x:.0f}}, head {h + 1}: %{{y:.1f}} px<extra></extra>"),
                      1, 3)
    uniform = grid_distances(grid, patch_size).mean().item()
    fig.add_hline(y=uniform, line_dash="dash", line_color="gray", row=1, col=3,
                  annotation_text="uniform attention", annotation_position="bottom right")
    fig.update_xaxes(title="Network depth (layer)", dtick=1, row=1, col=3)
    fig.update_yaxes(title="Mean attention distance (pixels)", rangemode="tozero", row=1, col=3)
    fig.update_layout(title=title, width=1350, height=470, template="plotly_white",
                      legend=dict(x=1.01, y=1, font=dict(size=10)), margin=dict(t=80, l=40, r=20))
    return fig


def rollout_overlay(image, rollout, value_range: tuple[float, float] = (-1.0, 1.0)):
    """Fig. 6's look: the image (C, H, W) times its rollout map (gh, gw), the map scaled to max 1 and
    resized bilinearly to H x W (as Abnar & Zuidema's code does). Returns (H, W, 3) uint8."""
    import numpy as np
    import torch.nn.functional as F

    m = rollout.detach().float().cpu()
    m = m / m.max().clamp_min(1e-12)
    m = F.interpolate(m[None, None], size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    return (to_uint8_image(image, value_range) * m.clamp(0, 1).numpy()[..., None]).round().astype(np.uint8)


def plot_fig6(images, maps, labels: list[str] | None = None, value_range: tuple[float, float] = (-1.0, 1.0),
              title: str = ""):
    """Fig. 6: each image (top row) and the image weighted by its attention-rollout map (bottom row).

    images: (B, C, H, W) with values in value_range; maps: (B, gh, gw) from `analysis.rollout_map`.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    B = images.shape[0]
    labels = labels or [f"image {i + 1}" for i in range(B)]
    fig = make_subplots(2, B, horizontal_spacing=0.01, vertical_spacing=0.06, subplot_titles=labels)
    for i in range(B):
        fig.add_trace(go.Image(z=to_uint8_image(images[i], value_range), hoverinfo="skip"), 1, i + 1)
        fig.add_trace(go.Image(z=rollout_overlay(images[i], maps[i], value_range), hoverinfo="skip"), 2, i + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_yaxes(visible=True, showticklabels=False, showgrid=False, zeroline=False, title="Input", row=1, col=1)
    fig.update_yaxes(visible=True, showticklabels=False, showgrid=False, zeroline=False, title="Attention",
                     row=2, col=1)
    fig.update_layout(title=title, width=max(170 * B, 500), height=420, template="plotly_white",
                      margin=dict(t=80, l=40, r=10, b=10))
    return fig


def plot_attention_distance(results: dict, grid: tuple[int, int], patch_size: int, title: str = ""):
    """Fig. 7 right for several models on one axis: {name: (L, k) mean attention distance}, one colour
    per model, one dot per head. A dashed line marks uniform attention over the grid."""
    import numpy as np
    import plotly.graph_objects as go

    from .analysis import grid_distances

    fig = go.Figure()
    for m, (name, d) in enumerate(results.items()):
        d = d.detach().float().cpu()
        L, k = d.shape
        x = np.repeat(np.arange(1, L + 1), k) + (m - (len(results) - 1) / 2) * 0.15
        fig.add_trace(go.Scatter(x=x, y=d.flatten().numpy(), mode="markers", name=name,
                                 marker=dict(size=7, opacity=0.75),
                                 text=[f"head {h + 1}" for _ in range(L) for h in range(k)],
                                 hovertemplate="%{text}: %{y:.1f} px<extra>" + name + "</extra>"))
    fig.add_hline(y=grid_distances(grid, patch_size).mean().item(), line_dash="dash", line_color="gray",
                  annotation_text="uniform attention", annotation_position="bottom right")
    fig.update_layout(title=title, xaxis_title="Network depth (layer)", xaxis_dtick=1,
                      yaxis_title="Mean attention distance (pixels)", yaxis_rangemode="tozero",
                      template="plotly_white", width=700, height=430)
    return fig


def attention_explorer(images, attentions, grid: tuple[int, int], patch_size: int,
                       labels: list[str] | None = None, value_range: tuple[float, float] = (-1.0, 1.0)):
    """An ipywidgets explorer: pick an image, a layer, a head (or their mean) and a query (a patch, by
    sliders or by clicking on either panel, or the class token); see that query's attention over the
    image (left: on the image; right: the raw weights on the patch grid).

    images: (B, C, H, W); attentions: the L maps (B, k, T, T) of those images. Returns an ipywidgets
    VBox; `.figure` is its plotly FigureWidget, `.controls` its widgets by name, `.update()` redraws
    from the controls (each control calls it on change), `.on_click(trace, points, state)` is the
    click handler attached to both panels.
    """
    import ipywidgets as W
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .analysis import query_attention

    gh, gw = grid
    P = patch_size
    L, k = len(attentions), attentions[0].shape[1]
    has_cls = attentions[0].shape[-1] == gh * gw + 1
    labels = labels or [f"image {i + 1}" for i in range(images.shape[0])]
    controls = dict(
        image=W.Dropdown(options=[(name, i) for i, name in enumerate(labels)], value=0, description="image"),
        layer=W.IntSlider(value=1, min=1, max=L, description="layer"),
        head=W.Dropdown(options=[("mean of heads", -1)] + [(str(h + 1), h) for h in range(k)], value=0,
                        description="head"),
        row=W.IntSlider(value=gh // 2, min=0, max=gh - 1, description="query row"),
        col=W.IntSlider(value=gw // 2, min=0, max=gw - 1, description="query col"),
        cls=W.Checkbox(value=False, description="class token as query", disabled=not has_cls),
    )
    fig = go.FigureWidget(make_subplots(1, 2, subplot_titles=["attention on the image", "attention weights"]))
    half = (P - 1) / 2
    fig.add_trace(go.Image(z=to_uint8_image(images[0], value_range), hoverinfo="skip"), 1, 1)
    fig.add_trace(go.Heatmap(z=[[0.0]], x0=half, dx=P, y0=half, dy=P, opacity=0.55, colorscale="Inferno",
                             showscale=False, hovertemplate="%{z:.3f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Heatmap(z=[[0.0]], colorscale="Inferno", colorbar=dict(title="weight"),
                             hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>"), 1, 2)
    fig.update_yaxes(autorange="reversed", scaleanchor="x2", row=1, col=2)
    fig.update_layout(width=820, height=430, margin=dict(t=60, l=10, r=10, b=10), template="plotly_white")

    def update(*_):
        c = {name: w.value for name, w in controls.items()}
        query = None if c["cls"] else c["row"] * gw + c["col"]
        head = None if c["head"] < 0 else c["head"]
        amap = query_attention(attentions, grid, c["layer"] - 1, head, c["image"], query).cpu().numpy()
        square = [] if query is None else [
            dict(type="rect", xref=x, yref=y, x0=x0 - 0.5, x1=x0 + s - 0.5, y0=y0 - 0.5, y1=y0 + s - 0.5,
                 line=dict(color="cyan", width=2))
            for x, y, x0, y0, s in [("x", "y", c["col"] * P, c["row"] * P, P), ("x2", "y2", c["col"], c["row"], 1)]]
        who = "class token" if query is None else f"patch (row {c['row']}, col {c['col']})"
        with fig.batch_update():
            fig.data[0].z = to_uint8_image(images[c["image"]], value_range)
            fig.data[1].z = amap
            fig.data[2].z = amap
            fig.layout.shapes = square
            fig.layout.title = f"layer {c['layer']}, head {'mean' if head is None else head + 1}, query: {who}"

    def on_click(trace, points, state):
        if not points.point_inds:
            return
        x, y = points.xs[0], points.ys[0]
        if trace is fig.data[1]:  # the image panel: pixel coordinates
            x, y = x / P, y / P
        controls["cls"].value = False
        controls["row"].value, controls["col"].value = int(round(y)), int(round(x))

    for w in controls.values():
        w.observe(update, names="value")
    fig.data[1].on_click(on_click)
    fig.data[2].on_click(on_click)
    update()
    box = W.VBox([W.HBox([controls["image"], controls["layer"], controls["head"]]),
                  W.HBox([controls["row"], controls["col"], controls["cls"]]), fig])
    box.figure, box.controls, box.update, box.on_click = fig, controls, update, on_click
    return box

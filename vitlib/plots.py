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

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

__all__ = ["provenance", "save_figure"]


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

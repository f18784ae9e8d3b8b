"""Results files: where they go, where they came from.

Every result in figures/ is a JSON file {"results": ..., "provenance": ...} written by `save_figure` (with the
figure as HTML and PNG) or `save_results` (numbers alone). Provenance is the command, machine, library versions,
git commit, date and time taken: run-specific facts live there, not in code comments or prose.
`figures_dir(profile)` decides where a notebook's run writes (FIGURES_DIR for the full profile, a fresh temporary
folder otherwise) and `results_stem(name, profile)` names a study's results file: NAME for the full and smoke
profiles, NAME_PROFILE for any other (gpu, long, pilot).

Deviations from the paper: none (nothing here is in the paper).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .utils import atomic_write

__all__ = ["ROOT", "FIGURES_DIR", "shown_path", "figures_dir", "results_stem", "machine_load", "provenance",
           "save_results", "save_figure", "load_results"]

ROOT = Path(__file__).resolve().parent.parent
FIGURES_DIR = ROOT / "figures"  # the reproduced figures and the results they came from


def shown_path(path: str | os.PathLike) -> str:
    """`path` as a reader of a log or a notebook should see it: relative to the repository when inside it (the
    same in every clone), else as given.

    >>> shown_path(FIGURES_DIR / "scaling.json"), shown_path("/tmp/x.json")
    ('figures/scaling.json', '/tmp/x.json')
    """
    path = Path(path)
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def figures_dir(profile: str) -> Path:
    """Where a run of `profile` writes its figures: FIGURES_DIR for "full", a new temporary folder otherwise
    (smoke runs exercise the code without touching the published results)."""
    return FIGURES_DIR if profile == "full" else Path(tempfile.mkdtemp(prefix="vitlib_figures_"))


def results_stem(name: str, profile: str) -> str:
    """The results file of a study's profile, without .json: NAME for "full" and "smoke", NAME_PROFILE otherwise.

    >>> results_stem("scaling", "full"), results_stem("pos_embed", "long")
    ('scaling', 'pos_embed_long')
    """
    return name if profile in ("full", "smoke") else f"{name}_{profile}"


def machine_load() -> dict[str, Any]:
    """The 1-minute load average, the CPUs and torch's threads; quiet: no more runnable threads than this
    process's own torch threads (+0.5), i.e. nothing else was competing for the cores."""
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    threads = torch.get_num_threads()
    return dict(load1=round(load1, 2), cpus=os.cpu_count(), threads=threads, quiet=bool(load1 <= threads + 0.5))


@functools.cache
def _git_commit() -> str:
    """The short commit of the checkout, "+dirty" when tracked files outside figures/ differ from it (a run that
    writes several figures changes figures/ itself, which says nothing about the code that made them).

    Read once, when vitlib.records is imported, and kept: the code a process runs is the code it imported, so a
    commit made while a long run goes on must not be credited with the run's rows."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
                                ":(exclude,top)figures"], capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


_git_commit()  # the checkout as this process imported it (about 10 ms)


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; else platform.processor()) and whether it multiplies bf16 natively (AMX
    or AVX512-BF16): speeds are only comparable on the same kind of CPU, and machines differ between sessions."""
    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
    except OSError:
        pass
    native = any(getattr(torch.cpu, f"_is_{n}_supported", lambda: False)() for n in ("amx_tile", "avx512_bf16"))
    return f"{name}, {'native' if native else 'no native'} bf16"


def provenance(command: str | None = None, seconds: float | None = None, **extra: Any) -> dict[str, Any]:
    """Where a result came from: command, machine (its CPU's model), library versions, git commit, date, time taken."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return dict(
        command=command or " ".join(sys.argv),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        cpus=os.cpu_count(),
        cpu=cpu_model(),
        device=device,
        torch=torch.__version__,
        python=platform.python_version(),
        git_commit=_git_commit(),
        date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        seconds=None if seconds is None else round(seconds, 1),
        **extra,
    )


def save_results(path: str | os.PathLike, results: Any, command: str | None = None, seconds: float | None = None,
                 **extra: Any) -> Path:
    """Write PATH.json = {"results": results, "provenance": provenance(command, seconds, **extra)} atomically."""
    record = {"results": results, "provenance": provenance(command, seconds, **extra)}
    return atomic_write(Path(path).with_suffix(".json"),
                        lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=float)))


def save_figure(fig, path: str | os.PathLike, results: Any, command: str | None = None,
                seconds: float | None = None, png: bool = True, **extra: Any) -> dict[str, Path]:
    """Write fig as PATH.html and PATH.png, and PATH.json = {"results": results, "provenance": ...}.

    PNG export needs kaleido and a Chromium (Debian's `chromium`); without them the HTML and
    JSON are still written and a warning says why the PNG is missing.
    """
    path = Path(path).with_suffix("")
    written = {"html": atomic_write(path.with_suffix(".html"),
                                    lambda tmp: fig.write_html(tmp, include_plotlyjs="cdn", include_mathjax=False)),
               "json": save_results(path, results, command, seconds, **extra)}
    if png:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium:
            os.environ.setdefault("BROWSER_PATH", chromium)  # kaleido >= 1 drives this browser
        try:
            written["png"] = atomic_write(path.with_suffix(".png"),
                                          lambda tmp: fig.write_image(tmp, format="png", scale=2))
        except Exception as e:  # noqa: BLE001 - any failure of the optional PNG export
            print(f"save_figure: no PNG for {path.name} ({type(e).__name__}: {e}); "
                  "install kaleido and Debian's chromium for PNG export", file=sys.stderr)
    return written


def load_results(name: str, folder: str | os.PathLike = FIGURES_DIR) -> dict[str, Any]:
    """{"results", "provenance"} of folder/NAME.json (NAME without the suffix)."""
    path = Path(folder) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no results file {path}: run the command that makes it (see RESULTS.md)")
    return json.loads(path.read_text())

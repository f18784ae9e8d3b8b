"""The resumable runner: a study's configuration -> one row per run -> figures/<study>.json.

A study module (vitlib.experiments.transfer, .scaling) gives
    Config            a frozen dataclass: every knob of the study, one instance per profile in PROFILES
    expand(cfg)       the runs, as row specs: JSON-ready dicts with a unique "key" (model, corpus, size, seed ...)
    run_row(cfg, spec, cache)  one run: the measured fields ("model", "parameters", "images_seen",
                      "train_flops", "metrics", ...); `cache` lives for one `run_study` call (loaded data, models)
and `run_study` does the rest, the same way for every study: rows already in the results file (the same key)
are never run again; each new row gets its wall time, the machine's load and whether it was quiet, and the
date and commit that made it, and the file is rewritten (atomically) after every row. An interrupted study
continues where it stopped when run again; rows of an earlier design stay in the file (the runner never
drops a result), and the renderers read the keys they know. A long row can also resume itself: `cache["parts"]`
is a folder of its own (`parts_dir`) that outlives the process, where the row keeps its checkpoints; the runner
removes it once the row is in the file (vitlib.experiments.scaling_curves resumes its runs this way).

Where a row goes: `study_path(name, profile)`: figures/<name>.json for "full", figures/<name>_<profile>.json for
any other profile ("gpu", "long"), a fresh temporary folder for "smoke" (vitlib.records.figures_dir).

Training FLOPs: 3 x the forward FLOPs of one image (vitlib.flops.forward_flops, torch.utils.flop_counter)
x images seen, the paper's Table 6 convention (forward + backward = 3 forward passes).

Deviations from the paper: none (nothing here is in the paper).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from ..flops import forward_flops
from ..records import FIGURES_DIR, figures_dir, machine_load, provenance, results_stem, save_results, shown_path

__all__ = ["param", "check_config", "StudyConfig", "profile_sections", "scheduled_images", "study_path",
           "parts_dir", "training_flops", "load_rows", "run_study"]


def param(default: Any, help: str, may_be_empty: bool = False) -> Any:
    """A Config field with its help text (the CLI's `--help` reads it): `sizes: tuple[int, ...] = param((500,),
    "training-set sizes")`; a tuple field is refused empty unless `may_be_empty` (an optional arm)."""
    return dataclasses.field(default=default, metadata={"help": help, "may_be_empty": may_be_empty})


def check_config(cfg: Any) -> None:
    """The checks every study's Config shares (called by its __post_init__): a positive budget and batch,
    sizes and seeds >= 0, a known precision."""
    if cfg.images_per_run < 1 or cfg.batch_size < 1:
        raise ValueError(f"images_per_run and batch_size must be >= 1, got {cfg.images_per_run} and {cfg.batch_size}")
    if cfg.precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {cfg.precision!r}")
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, tuple) and any(isinstance(v, int) and v < 0 for v in value):
            raise ValueError(f"{f.name} must hold numbers >= 0, got {value}")
        if isinstance(value, tuple) and not value and not f.metadata.get("may_be_empty"):
            raise ValueError(f"{f.name} needs at least one value")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """The base of every study's Config: the precision its runs train in, and the checks every Config shares
    (`check_config`) after its own fields are set."""

    precision: str = param("fp32", "fp32 or bf16 (autocast)")

    def __post_init__(self) -> None:
        check_config(self)


def profile_sections(name: str, short: str, render: Callable[[Any, dict], str], profiles: tuple[str, ...],
                     notes: dict[str, str] | None = None) -> dict[str, tuple[str, Callable[[Any, dict], str]]]:
    """A study's RESULTS.md sections for its other profiles: {NAME_PROFILE: ("SHORT, the PROFILE profile[: NOTE]
    (`command`)", render)}, for the study's `RESULTS`."""
    notes = notes or {}
    return {results_stem(name, p): (f"{short}, the {p} profile" + (f": {notes[p]}" if p in notes else "")
                                    + f" (`python -m vitlib experiment {name} --profile {p}`)", render)
            for p in profiles}


def scheduled_images(images_per_run: int, batch_size: int) -> int:
    """The images a schedule of `images_per_run` sees in whole batches (at least one batch).

    >>> scheduled_images(1000, 64), scheduled_images(10, 64)
    (960, 64)
    """
    return max(images_per_run // batch_size, 1) * batch_size


def study_path(name: str, profile: str, folder: str | os.PathLike | None = None) -> Path:
    """The results file of a study's profile (without .json): folder/NAME (full and smoke), folder/NAME_PROFILE
    (any other: gpu, long); the folder defaults to a new temporary folder for smoke, figures/ for the others."""
    if folder is None:
        folder = figures_dir(profile) if profile == "smoke" else FIGURES_DIR
    return Path(folder) / results_stem(name, profile)


def parts_dir(path: str | os.PathLike, key: str) -> Path:
    """Where the row `key` of the results file PATH keeps its progress until it is in the file: a folder beside
    the file, .parts/<file's stem>/<key with / and spaces replaced>.

    >>> parts_dir("figures/scaling_curves", "BiT-R26x1 w32/fractaldb/n1000/s0").as_posix()
    'figures/.parts/scaling_curves/BiT-R26x1_w32__fractaldb__n1000__s0'
    """
    path = Path(path).with_suffix("")
    return path.parent / ".parts" / path.name / re.sub(r"[^\w.=+-]", "_", key.replace("/", "__"))


def training_flops(model: nn.Module, img_size: int, images_seen: int, in_chans: int = 3) -> int:
    """3 x forward FLOPs of one image x images seen (forward + backward; Table 6's convention)."""
    return 3 * forward_flops(model, img_size, in_chans=in_chans) * images_seen


def load_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows already in a results file (none when it does not exist)."""
    path = Path(path).with_suffix(".json")
    return json.loads(path.read_text())["results"]["rows"] if path.exists() else []


def run_study(study: ModuleType, cfg: Any, profile: str, path: str | os.PathLike, command: str | None = None,
              log: Callable[[str], None] | None = None, limit: int | None = None,
              only: str | None = None) -> dict[str, Any]:
    """Run the rows of `study.expand(cfg)` missing from PATH.json, appending each to the file as it finishes.

    limit: run at most this many new rows (a part of a long study); None or a negative number: every missing
    row (the notebooks' `limit=-1`). only: a shell pattern (fnmatch); run only the missing rows whose key it
    matches, in the plan's order (to fit a part of a long study into the time at hand: `"BiT*"`, `"*/s1"`);
    the plan and the file's config do not change. Returns the results written
    ({"study", "profile", "config", "rows", "todo"}); "todo" counts the rows still missing.
    Under torchrun every rank trains each row (DDP) and rank 0 alone logs and writes the file.
    """
    writer = int(os.environ.get("RANK", 0)) == 0
    limit = None if limit is not None and limit < 0 else limit
    log = log or (lambda line: print(line, file=sys.stderr, flush=True) if writer else None)
    path = Path(path).with_suffix("")
    rows = load_rows(path)
    done = {r["key"] for r in rows}
    specs = study.expand(cfg)
    keys = [s["key"] for s in specs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{study.NAME}: two runs share a key; keys must be unique")
    todo = [s for s in specs if s["key"] not in done]
    skipped = 0  # missing rows that `only` leaves for later
    if only is not None:
        if not any(fnmatch.fnmatchcase(k, only) for k in keys):
            raise ValueError(f"{study.NAME}: no run's key matches --only {only!r}; keys look like {keys[0]!r} "
                             f"(see --plan)")
        skipped = len(todo)
        todo = [s for s in todo if fnmatch.fnmatchcase(s["key"], only)]
        skipped -= len(todo)
    already = len(specs) - len(todo) - skipped
    log(f"{study.NAME} ({profile}): {len(specs)} runs, {already} already in "
        f"{shown_path(path.with_suffix('.json'))}, "
        f"{len(todo)} to run" + (f" matching {only!r} ({skipped} others left for later)" if only is not None else "")
        + (f" (this part: {limit})" if limit is not None and limit < len(todo) else ""))
    results = dict(study=study.NAME, profile=profile, config=_jsonable(dataclasses.asdict(cfg)), rows=rows)
    cache: dict[Any, Any] = {}
    for i, spec in enumerate(todo[:limit]):
        start = time.perf_counter()
        cache["parts"] = parts_dir(path, spec["key"])
        measured = study.run_row(cfg, spec, cache)
        wall = time.perf_counter() - start
        made = provenance(command)
        # a row that resumed itself gives its own wall_s: every part's, the earlier processes' included
        row = {**spec, "wall_s": round(wall, 2), **measured, "load": machine_load(),
               "date": made["date"], "git_commit": made["git_commit"], "device": made["device"], "cpu": made["cpu"]}
        rows.append(_jsonable(row))
        results["todo"] = len(todo) - i - 1 + skipped
        if writer:
            save_results(path, results, command, seconds=sum(r.get("wall_s", 0) for r in rows))
            shutil.rmtree(cache["parts"], ignore_errors=True)  # the row is in the file: its progress is not needed
        log(f"[{already + i + 1}/{len(specs)}] {spec['key']}: {_summary(measured)} ({wall:.0f} s)")
    results["todo"] = max(len(todo) - (limit if limit is not None else len(todo)), 0) + skipped
    if not todo and writer:  # nothing ran: the file is left as it was (or written once, empty, for a new study)
        if not path.with_suffix(".json").exists():
            save_results(path, results, command, seconds=0.0)
    return results


def _summary(measured: dict[str, Any]) -> str:
    metrics = measured.get("metrics", {})
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
                     if isinstance(v, (int, float)))


def _jsonable(x: Any) -> Any:
    """Tuples -> lists, numpy and torch scalars -> Python numbers (JSON round trips compare equal)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):
        return x.item()
    return x

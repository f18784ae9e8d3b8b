"""Experiments as code, in the manner of big_vision's configs: one module per study, one frozen dataclass per
study with one instance per profile (`smoke`, `full`, `gpu`), one resumable runner (`runner.run_study`).

    transfer   Section 3.2 and Fig. 4's probe: fine-tuning the shipped model vs the same model from scratch
    scaling    Fig. 3, 4 and 5: transfer against pre-training set size and compute, ViT vs ResNet vs hybrid
    pos_embed  Appendix D.4, Table 8: no, 1-D, 2-D and relative position embeddings, probed and fine-tuned
    mpp        Section 4.6: masked patch prediction against supervised pre-training and training from scratch

    vitlib.experiments.run("transfer", "full")             # figures/transfer.json, rows already run are kept
    python -m vitlib experiment transfer --profile full    # the same; flags are the dataclass's fields
    python -m vitlib experiment --list

Each study's docstring states what it reproduces, its budget in images seen and its command.

Deviations from the paper: see each study.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

from . import mpp, pos_embed, scaling, scaling_curves, transfer
from .runner import load_rows, run_study, study_path, training_flops

__all__ = ["STUDIES", "PROFILE_NAMES", "config", "fields", "run", "study_path", "load_rows",
           "training_flops", "run_study", "images_seen"]

STUDIES: dict[str, ModuleType] = {"transfer": transfer, "scaling": scaling, "pos_embed": pos_embed, "mpp": mpp,
                               "scaling_curves": scaling_curves}
PROFILE_NAMES = ("smoke", "full", "gpu")  # the profiles every study has; a study may add its own (pos_embed: long)


def _study(name: str) -> ModuleType:
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    return STUDIES[name]


def fields(name: str) -> list[tuple[str, Any, Any, str]]:
    """(field name, type, default of the smoke profile, help) of a study's Config, in order."""
    study = _study(name)
    hints = typing.get_type_hints(study.Config)
    smoke = study.PROFILES["smoke"]
    return [(f.name, hints[f.name], getattr(smoke, f.name), f.metadata.get("help", ""))
            for f in dataclasses.fields(study.Config)]


def config(name: str, profile: str = "smoke", **overrides: Any) -> Any:
    """The Config of study `name` at `profile`, with `overrides` (Config fields) replaced."""
    study = _study(name)
    if profile not in study.PROFILES:
        raise ValueError(f"unknown profile {profile!r} for study {name!r}; known: {', '.join(study.PROFILES)}")
    known = [f.name for f in dataclasses.fields(study.Config)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} of study {name!r}; known: {', '.join(known)}")
    return dataclasses.replace(study.PROFILES[profile], **overrides)


def images_seen(name: str, profile: str = "smoke", **overrides: Any) -> int:
    """Training images the whole study sees (fine-tuning or pre-training; every row), from its Config."""
    study = _study(name)
    cfg = config(name, profile, **overrides)
    return sum(study.planned_images(cfg, spec) for spec in study.expand(cfg))


def run(name: str, profile: str = "smoke", folder: str | os.PathLike | None = None, command: str | None = None,
        limit: int | None = None, log=None, only: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Run (or continue) study `name` at `profile`: the rows missing from its results file
    (`study_path`), at most `limit` of them, only those whose key matches the shell pattern `only` if given
    (vitlib.experiments.runner.run_study); returns {"study", "profile", "config", "rows", "todo", "path"}."""
    study = _study(name)
    cfg = config(name, profile, **overrides)
    path = study_path(name, profile, folder)
    command = command or (f"python -m vitlib experiment {name} --profile {profile}"
                          + "".join(f" --{k.replace('_', '-')} " + (" ".join(map(str, v)) if isinstance(v, tuple)
                                                                       else str(v)) for k, v in overrides.items()))
    results = run_study(study, cfg, profile, path, command=command, log=log, limit=limit, only=only)
    return {**results, "path": Path(path).with_suffix(".json")}

"""The pre-training experiment: a small model on FractalDB-style images (Section 4.1 in miniature).

Paper: Section 4.1 and Appendix B.1 pre-train on JFT-300M with Adam, weight decay 0.1 and a linear
schedule (`vitlib.train.pretrain_recipe`) and an MLP head with one tanh hidden layer (Eq. 4's
pre-training head, `representation_size`). Here the corpus is vitlib.data's procedural `fractaldb`
(design.md "Data without the internet"), at 32x32 with patch 4.

`PROFILES` sizes a run (a frozen `Profile` each: smoke, full); `spec(profile, **overrides)` describes one
(model name and overrides, dataset and options, TrainConfig); `run(spec, out_dir)` builds and trains it.
Notebook 03 and `python -m vitlib pretrain` both go through these two functions.

Deviations from the paper: the data (fractals, not JFT), the scale (90,000 training images, not
300M; batch 128, not 4096), a 6-block ViT-Ti and a warm-up of 250 steps, not 10k; all forced by a
2-core CPU.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from .checkpoints import load_checkpoint, load_model, save_checkpoint
from .config import TrainConfig, config_to_dict
from .data import get_dataset
from .model import create_model
from .records import provenance
from .train import pretrain_recipe, read_metrics, train

__all__ = ["Profile", "PROFILES", "spec", "build", "run", "describe", "final_checkpoint", "median_throughput",
           "export_weights"]


@dataclass(frozen=True)
class Profile:
    """The size of a pre-training run: model, data and schedule (one instance per profile in PROFILES; `spec`
    turns one into a run description, the CLI's flags override its fields)."""

    model: str = "ViT-Ti/4"  # a vitlib.create_model name
    model_overrides: dict[str, Any] = field(default_factory=dict)  # config fields on top of the name's
    dataset: str = "fractaldb"  # a vitlib.data name
    img_size: int = 32  # input resolution H = W
    in_chans: int = 3  # input channels C
    data_options: dict[str, Any] = field(default_factory=dict)  # the dataset's options (get_dataset's keywords)
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields on top of vitlib.train.pretrain_recipe


# Run sizes. The full profile's 2,500 steps of 128 images see 320,000 images (about 3.6 epochs of 90,000; notebook
# 03 gives the design's reasons); its run time and results are in the provenance of
# vitlib/weights/vit_ti4_fractal32.json and figures/pretrain_fractal_vit.json.
PROFILES: dict[str, Profile] = {
    # ViT-Ti/4 shrunk (D=64, L=2, k=2), 10 fractal categories of 20 images: CI executes it in seconds
    "smoke": Profile(model_overrides=dict(hidden_size=64, num_layers=2, num_heads=2, mlp_size=128,
                                          representation_size=64),
                     data_options=dict(num_classes=10, images_per_class=20),
                     train=dict(steps=10, batch_size=32, warmup_steps=2, eval_every=5, log_every=2)),
    # ViT-Ti/4 (D=192, k=3, D_mlp=768, P=4: an 8x8 grid at 32x32, N=64) with L=6 blocks
    "full": Profile(model_overrides=dict(num_layers=6, representation_size=192),
                    data_options=dict(num_classes=100, images_per_class=1000),  # FractalDB-100's shape
                    train=dict(steps=2500, batch_size=128, warmup_steps=250, grad_clip=1.0, eval_every=500,
                               log_every=25, checkpoint_every=100)),  # 320,000 images seen
}


def spec(profile: str = "smoke", *, train_overrides: dict | None = None, **overrides: Any) -> dict[str, Any]:
    """A run description: PROFILES[profile]'s fields with `overrides` (model, dataset, img_size, in_chans,
    model_overrides, data_options) in place of its own, and "train_config", the TrainConfig of its `train` with
    `train_overrides` (TrainConfig fields) on top."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")
    base = dataclasses.asdict(PROFILES[profile])  # copies: a spec never shares a dict with PROFILES
    train = base.pop("train")
    unknown = set(overrides) - set(base)
    if unknown:
        raise TypeError(f"unknown spec field(s) {sorted(unknown)}; known: {sorted(base)} and train_overrides")
    return {**base, **overrides, "train_config": pretrain_recipe(**{**train, **(train_overrides or {})})}


def build(s: dict[str, Any]) -> tuple[nn.Module, Dataset, Dataset]:
    """(model, train_set, val_set) of a spec; the model's class count is the dataset's."""
    kw = dict(in_chans=s["in_chans"], seed=s["train_config"].seed, **s["data_options"])
    train_set = get_dataset(s["dataset"], "train", s["img_size"], **kw)
    val_set = get_dataset(s["dataset"], "val", s["img_size"], **kw)
    torch.manual_seed(s["train_config"].seed)
    model = create_model(s["model"], img_size=s["img_size"], in_chans=s["in_chans"],
                                num_classes=train_set.num_classes, **s["model_overrides"])
    return model, train_set, val_set


def run(s: dict[str, Any], out_dir: str | os.PathLike | None = None, resume: bool = False
        ) -> tuple[nn.Module, dict[str, list[dict]]]:
    """Build the spec's model and data and train it (`vitlib.train.train`); returns (model, history)."""
    model, train_set, val_set = build(s)
    history = train(model, train_set, s["train_config"], val_set=val_set, out_dir=out_dir, resume=resume)
    return model, history


def describe(s: dict[str, Any]) -> dict[str, Any]:
    """A spec as JSON-ready values (for provenance)."""
    out = {k: v for k, v in s.items() if k != "train_config"}
    out["train_config"] = config_to_dict(s["train_config"])
    return out


def final_checkpoint(out_dir: str | os.PathLike, s: dict[str, Any]) -> Path:
    """Path stem of the checkpoint `train` writes at the end of the spec's run."""
    cfg: TrainConfig = s["train_config"]
    return Path(out_dir) / f"step_{cfg.steps:07d}"


def median_throughput(history: dict[str, list[dict]]) -> float:
    """Median images/s over the run's train records, the first (compilation, warm-up) left out when possible."""
    rates = sorted(r["images_per_s"] for r in history["train"][1:] or history["train"])
    return rates[len(rates) // 2]


def export_weights(out_dir: str | os.PathLike, s: dict[str, Any], dest: str | os.PathLike, command: str,
                   seconds: float | None = None, **provenance_extra: Any) -> Path:
    """Copy a finished run's final weights to `dest` (NAME.safetensors + NAME.json, no optimizer state), with
    the spec, data size, final validation metrics and provenance (command, machine, time, git commit)."""
    final = final_checkpoint(out_dir, s)
    meta = load_checkpoint(final)
    history = read_metrics(out_dir)
    opts = s["data_options"]
    extra = dict(spec=describe(s), final_val=history["val"][-1] if history["val"] else None,
                 data=dict(name=s["dataset"], img_size=s["img_size"], in_chans=s["in_chans"], **opts,
                           images_seen=meta["step"] * s["train_config"].batch_size),
                 provenance=provenance(command, seconds, **provenance_extra))
    return save_checkpoint(dest, load_model(final), train_config=meta["train_config"], step=meta["step"],
                           extra=extra)


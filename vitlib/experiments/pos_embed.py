"""Study `pos_embed`: which position embedding? Appendix D.4's ablation (Table 8) in miniature.

The claim (paper.md, Appendix D.4, Table 8: ViT-B/16 pre-trained on ImageNet, 5-shot linear accuracy: no
position embedding 0.614, 1-D 0.642, 2-D 0.640, relative 0.640): any position embedding helps, which kind
barely matters. The paper's words: "while there is a large gap between the performances of the model with no
positional embedding and models with positional embedding, there is little to no difference between different
ways of encoding positional information", and its reason: on a grid of patches (14 x 14, not 224 x 224 pixels)
"learning to represent the spatial relations in this resolution is equally easy for these different positional
encoding strategies". The four kinds are `ViTConfig.pos_embed` = "none", "learned" (1-D, Eq. 1), "learned_2d"
and "relative" (vitlib.model's docstring describes each); notebook 02's patch-shuffle experiment shows why
"none" sees a bag of patches.

Design (full profile), fixed before the full run:
- model: ViT-Ti/4 with L=4 at 32 px (`scaling.MODELS["ViT-Ti/4 L=4"]`, the scaling study's smallest ViT: an
  8 x 8 grid and a class token, 65 tokens; 1.86M parameters), once per kind and nothing else changed. With
  the same seed the patch embedding and the encoder start identical for every kind (init_weights draws the
  position tables after them; only the pre-logits layer, drawn after those, differs too;
  tests/test_ablation_studies.py checks it), and the images come in the same order;
- pre-training: `fractaldb`, 100 categories x 300 images (30,000; the scaling study's 30,000 size, so the
  same rendering and cache), colourised IFS fractals whose class depends on the shape, so where a patch sits
  matters; 32,768 images seen (256 steps of 128, about 1.1 epochs) with the scaling study's recipe
  (vitlib.train.pretrain_recipe: Adam, weight decay 0.1, warm-up then linear decay, clipping at 1); the
  final state is kept: at about one epoch there is no overfitting to select against, and the masked patch
  prediction study (vitlib.experiments.mpp), which shares this protocol, has no labelled validation for its
  self-supervised arm;
- evaluation on a held-out real dataset, Fashion-MNIST: Table 8's metric, the closed-form linear few-shot
  probe (5 and 10 shots, l2 = 2^10; pool of 2,000 training images; the whole test split, 10,000 images),
  on the representation the pre-trained model gives its head (`scaling.probe_features`, as Fig. 4); and
  fine-tuning on 2,000 training images with the transfer study's protocol (`transfer.finetune_run`: Appendix
  B.1.1's SGD recipe, 12,800 images seen in steps of 64), tested once on the 10,000 test images; plus the
  pre-training task's own accuracy on held-out fractals (10 per category);
- seeds 0 and 1 (each sets the initialisation, the data order and the few-shot draw); a third seed is one
  flag away (`--seeds 0 1 2` keeps the rows already run). Accuracies carry 95% Wilson intervals; the mean
  over seeds uses the interval at one run's test-set size, and the table shows the lowest and highest seed.
What would count as reproducing the claim (vitlib.results renders the verdict from the rows): on the 5-shot
probe every kind with position information above "none" beyond the intervals, and the three kinds within
each other's intervals. Partly: one half of that. Not: no kind above "none".

Budget in images seen: full 364,544 (8 runs of 32,768 pre-training + 12,800 fine-tuning images); estimated,
not measured: about 30 minutes on a quiet 2-core CPU in fp32 (~250 images/s for this model, plus feature
extraction and tests); smoke 4 tiny runs (seconds); gpu 262,144 pre-training and 51,200 fine-tuning images
per run, 100,000 fractals, 5 seeds.

The long profile, written after the full run and before its own (figures/pos_embed_long.json; the full
profile's rows stay as they were run): the full run's pre-training task stayed a few times above chance on
held-out fractals (figures/pos_embed.json, mpp.json), so its verdict says little about Table 8. Two
measurements say why and what to change: the scaling study's pilot (figures/scaling_pilot.json) showed that
at a fixed number of images, 512 steps of 32 teach these models far more than 128 steps of 128, and the
shipped model's learning curve (figures/pretrain_fractal_vit.json, steps of 128) took off only after some
tens of thousands of images and kept rising to its end. So the long profile changes the budget and nothing
else: 131,072 images in 4,096 steps of 32 (16x the full profile's steps, 4x its images), on 100,000 fractals
(the shipped model's corpus, about 1.3 epochs, so no image is repeated much). Everything that is evaluated
stays the same. Budget: 1,150,976 images seen (8 runs of 131,072 + 12,800); estimated from the pilot's
speed (about 200 images/s for this model at batch 32 on a quiet 2-core CPU): about 100 minutes, in parts.
What would count is unchanged; if the pre-training task is still below 10% held-out, the answer stays
"budget too small" whatever the probe says.
Seeds 2 and 3 of the long profile, written after its seeds 0 and 1 had run and before these two: with two
seeds the rule's first half held (seed by seed too) and its second could not be read: the gaps between the
kinds were about as large as the spread between two seeds of one kind (the "seeds" ranges in
figures/pos_embed_long.json), which the intervals, taken at one run's test-set size, leave out; and two seeds
against two separate completely by chance one time in three (vitlib.results.separation_chance). So the long
profile runs 4 seeds (8 more runs, nothing else changed), and the answer is read seed by seed beside the rule
above, which stays as it was: two kinds differ when every seed of one lies above every seed of the other
(vitlib.results.seed_order; by chance 2 in 70 at 4 seeds each) on both the 5-shot probe and fine-tuning; the
kinds are alike when no two kinds with position information separate on either; anything between is
undecided. Budget with 4 seeds: 2,301,952 images seen (16 runs of 131,072 + 12,800).

Command: `python -m vitlib experiment pos_embed --profile full` (resumable; `--limit N` runs N more rows);
`--profile long` for the longer pre-training.
Notebook 08 draws the figure; RESULTS.md renders the table beside Table 8 (vitlib.results.RENDERERS).

Deviations from the paper: the scale (ViT-Ti/4 L=4 on 30,000 fractals at 32 px, not ViT-B/16 on ImageNet at
224 px; a grid of 8 x 8 patches, not 14 x 14); the probe's dataset (Fashion-MNIST, not ImageNet); fine-tuning
accuracy added beside the paper's few-shot metric.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from ..data import get_dataset, subset
from ..finetune import new_head
from ..flops import count_parameters
from ..model import VisionTransformer, create_model
from ..results import wilson_interval
from ..train import Objective, evaluate, pretrain_recipe, train
from .runner import check_config, param, training_flops
from .scaling import MODELS, pretraining_data, probe_features, probe_metrics
from .transfer import finetune_run, fixed_test_set, vit_name

__all__ = ["NAME", "KINDS", "Protocol", "protocol", "Config", "PROFILES", "expand", "run_row", "planned_images",
           "build_vit", "pretrain", "transfer_metrics", "pretraining_corpus"]

NAME = "pos_embed"
KINDS = ("none", "learned", "learned_2d", "relative")  # Table 8's rows, in its order (ViTConfig.pos_embed)


@dataclass(frozen=True)
class Protocol:
    """The protocol this study and the mpp study share (model, corpus, budget, evaluation): their Configs' common
    fields, so that the mpp study's supervised arm is this study's "learned" arm (tests/test_ablation_studies.py)."""

    model: str = param("ViT-Ti/4 L=4", "the model (a name of vitlib.experiments.scaling.MODELS)")
    seeds: tuple[int, ...] = param((0, 1), "seeds: initialisation, data order, few-shot draw, fine-tuning subset "
                                   "(mpp: and the corruption)")
    fractal_size: int = param(30000, "pre-training images (fractaldb, fractal_classes categories; the mpp arm "
                              "ignores their labels)")
    fractal_classes: int = param(100, "fractaldb categories")
    images_per_run: int = param(32768, "pre-training schedule of every pre-trained run, in images seen")
    batch_size: int = param(128, "pre-training batch size")
    n_val: int = param(1000, "held-out fractals for the pre-training tasks' accuracies (10 per category)")
    shots: tuple[int, ...] = param((5, 10), "few-shot probe: images per class (Table 8: 5)")
    probe_dataset: str = param("fashion_mnist", "the held-out real dataset of the probe and of fine-tuning")
    probe_pool: int = param(2000, "few-shot probe: training images the shots are drawn from (stratified)")
    probe_test: int = param(10000, "few-shot probe: test images")
    finetune_size: int = param(2000, "fine-tuning: training images of probe_dataset")
    finetune_images: int = param(12800, "fine-tuning budget of every run, in images seen")
    finetune_batch: int = param(64, "fine-tuning batch size")
    n_test: int = param(10000, "fine-tuning: test images (a fixed subset, the same for every run)")
    img_size: int = param(32, "resolution H = W")
    precision: str = param("fp32", "fp32 or bf16 (autocast)")

    def __post_init__(self) -> None:
        check_config(self)


def protocol(cfg: Protocol) -> dict[str, Any]:
    """The shared protocol's fields of a Config, as keyword arguments (the mpp study's profiles are this study's)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(Protocol)}


@dataclass(frozen=True)
class Config(Protocol):
    """The pos_embed study's knobs (one instance per profile in PROFILES; the CLI's flags): the shared Protocol
    and the position embeddings compared."""

    kinds: tuple[str, ...] = param(KINDS, "position embeddings (ViTConfig.pos_embed: none, learned, learned_2d, "
                                   "relative)")

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown position embedding(s) {unknown}; known: {', '.join(KINDS)}")


PROFILES: dict[str, Config] = {
    "smoke": Config(model="ViT-tiny/8 L=1", seeds=(0,), fractal_size=200, fractal_classes=10, images_per_run=64,
                    batch_size=16, n_val=32, shots=(1, 5), probe_pool=50, probe_test=50, finetune_size=64,
                    finetune_images=32, finetune_batch=16, n_test=50),
    "full": Config(),
    "long": Config(seeds=(0, 1, 2, 3), fractal_size=100000, images_per_run=131_072, batch_size=32),  # why: docstring
    "gpu": Config(seeds=(0, 1, 2, 3, 4), fractal_size=100000, images_per_run=262_144, batch_size=512,
                  finetune_images=51200, finetune_batch=256, precision="bf16"),
}


def expand(cfg: Config) -> list[dict[str, Any]]:
    """The runs, seed by seed (seed 0's four kinds first, so that a study cut short compares every kind)."""
    if cfg.model not in MODELS:
        raise ValueError(f"unknown model {cfg.model!r}; known: {', '.join(MODELS)}")
    return [dict(key=f"{kind}/s{seed}", kind="pretrain", arm=kind, corpus="fractaldb", size=cfg.fractal_size,
                 seed=seed, probe=cfg.probe_dataset) for seed in cfg.seeds for kind in cfg.kinds]


def planned_images(cfg: Any, spec: dict[str, Any]) -> int:
    """Training images a row sees: pre-training (none for a "scratch" arm) + fine-tuning."""
    pre = 0 if spec["arm"] == "scratch" else cfg.images_per_run // cfg.batch_size * cfg.batch_size
    return pre + cfg.finetune_images // cfg.finetune_batch * cfg.finetune_batch


# --- the protocol, shared with vitlib.experiments.mpp (its Config has the same field names) --------------------------


def build_vit(cfg: Any, num_classes: int, **overrides: Any) -> VisionTransformer:
    """cfg.model (a name of scaling.MODELS) at cfg.img_size with num_classes and `overrides` (ViTConfig fields)."""
    name, base = MODELS[cfg.model]
    return create_model(name, img_size=cfg.img_size, num_classes=num_classes, **{**base, **overrides})


def pretraining_corpus(cfg: Any, seed: int):
    """(train, held-out val) fractals of cfg.fractal_size images in cfg.fractal_classes categories."""
    return pretraining_data("fractaldb", cfg.fractal_size, seed, classes=cfg.fractal_classes, img_size=cfg.img_size,
                            n_val=cfg.n_val)


def pretrain(model: torch.nn.Module, train_set, cfg: Any, seed: int,
             objective: Objective | None = None) -> dict[str, Any]:
    """Pre-train `model` in place for cfg.images_per_run images (the scaling study's recipe: Adam, wd 0.1,
    warm-up, linear decay, clipping at 1), classification or `objective`; the final state is kept.
    Returns {"images_seen", "train_flops", "loss_first", "loss_last", "train_accuracy_last"}."""
    steps = max(cfg.images_per_run // cfg.batch_size, 1)
    batch = min(cfg.batch_size, len(train_set))
    recipe = pretrain_recipe(steps=steps, batch_size=batch, warmup_steps=None, grad_clip=1.0, seed=seed,
                             eval_every=0, precision=cfg.precision, progress=False, log_every=max(steps // 10, 1))
    flops = training_flops(model, cfg.img_size, steps * batch)
    history = train(model, train_set, recipe, objective=objective)
    log = history["train"]
    return dict(images_seen=steps * batch, train_flops=flops, loss_first=log[0]["loss"], loss_last=log[-1]["loss"],
                train_accuracy_last=log[-1]["accuracy"])


def held_out_accuracy(model: VisionTransformer, val_set) -> dict[str, Any]:
    """The pre-training task's accuracy on held-out fractals, with its 95% interval: {"val_accuracy", ...}."""
    res = evaluate(model, val_set)
    n = res["n"]
    return dict(val_accuracy=res["accuracy"], val_n=n, val_ci95=list(wilson_interval(round(res["accuracy"] * n), n)))


def transfer_metrics(model: VisionTransformer, cfg: Any, seed: int, cache: dict) -> dict[str, Any]:
    """Probe then fine-tune a backbone on cfg.probe_dataset: the few-shot accuracies of `model` as it is (the
    representation it gives its head), then a copy with a new zero head (Section 3.2) fine-tuned on
    cfg.finetune_size images and tested once. Returns {"metrics", "images_seen", "train_flops"} of fine-tuning."""
    metrics = probe_metrics(probe_features(model, cfg.probe_dataset, cfg.img_size, cfg.probe_pool, cfg.probe_test),
                            cfg.shots, seed)
    key = ("finetune data", cfg.probe_dataset, cfg.img_size, cfg.finetune_size, cfg.n_test, seed)
    if key not in cache:
        full = get_dataset(cfg.probe_dataset, "train", cfg.img_size, in_chans=model.cfg.in_chans)
        cache[key] = (subset(full, min(cfg.finetune_size, len(full)), seed=seed), full.num_classes,
                      fixed_test_set(cfg.probe_dataset, cfg.img_size, model.cfg.in_chans, cfg.n_test))
    train_set, K, test_set = cache[key]
    torch.manual_seed(seed)
    run = finetune_run(new_head(model, K), train_set, test_set, images_per_run=cfg.finetune_images,
                       batch_size=cfg.finetune_batch, seed=seed, precision=cfg.precision)
    ft = run["metrics"]
    metrics.update(finetune_accuracy=ft["test_accuracy"], finetune_n=ft["test_n"], finetune_ci95=ft["ci95"],
                   finetune_loss_first=ft["train_loss_first"], finetune_loss_last=ft["train_loss_last"],
                   finetune_n_train=len(train_set))
    return dict(metrics=metrics, images_seen=run["images_seen"], train_flops=run["train_flops"])


def run_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    """Pre-train the model with one kind of position embedding, then probe and fine-tune it."""
    seed = spec["seed"]
    train_set, val_set = pretraining_corpus(cfg, seed)
    torch.manual_seed(seed)
    model = build_vit(cfg, train_set.num_classes, pos_embed=spec["arm"])
    pre = pretrain(model, train_set, cfg, seed)
    metrics = dict(held_out_accuracy(model, val_set), pretrain_loss_first=pre["loss_first"],
                   pretrain_loss_last=pre["loss_last"])
    after = transfer_metrics(model, cfg, seed, cache)
    return dict(model=vit_name(model), pos_embed=spec["arm"], parameters=count_parameters(model),
                n_train=len(train_set), pretrain_images=pre["images_seen"], finetune_images=after["images_seen"],
                images_seen=pre["images_seen"] + after["images_seen"],
                epochs=round(pre["images_seen"] / len(train_set), 3),
                train_flops=pre["train_flops"] + after["train_flops"], metrics={**metrics, **after["metrics"]})

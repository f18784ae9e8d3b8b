"""Study `transfer`: fine-tuning the shipped model against training from scratch (Section 3.2, Section 4.1).

Reproduces, in miniature: "we pre-train ViT on large datasets, and fine-tune to (smaller) downstream tasks"
(Section 3.2) against the same architecture trained from scratch with the same budget; the resolution
ablation of Section 3.2 (fine-tuning at a higher resolution than pre-training, E_pos 2D-interpolated);
and the closed-form linear few-shot accuracy of frozen features (Section 4.1, Fig. 4's metric) of the
pre-trained model against a randomly initialised one.

Design (full profile):
- models: the shipped ViT-Ti/4 (L=6, pre-trained on 320,000 images of 100 FractalDB-style categories at 32 px;
  vitlib.interop.load_pretrained("")) with a new zero head (Section 3.2), against the same architecture
  freshly initialised ("scratch"), both fine-tuned with Appendix B.1.1's recipe (SGD 0.9, clip 1, cosine,
  no weight decay; vitlib.train.finetune_recipe) at the pre-training resolution, 32 px;
- data: fashion_mnist and mnist5k, training subsets of 500, 2,000 and 10,000 images (mnist5k has 3,600
  training images after its validation split: the 10,000 row is capped, and the row records the size used),
  a fixed test subset of 2,000 images (mnist5k: its 1,000), evaluated once at the end;
- budget: 12,800 images seen per run (200 steps of 64), the same for both arms and every size. Why: at
  500 images that is 25 epochs, enough for the scratch arm to converge on these 10-class sets (a
  from-scratch ViT-Ti/4 reached ~47% on Fashion-MNIST in 27,500 images with augmentation and 75% in
  38,300 without, so shorter schedules would compare a converged fine-tune with an unconverged scratch
  arm only at the small sizes); at 10,000 images it is 1.3 epochs, where pre-training should matter most;
  batch 64 keeps 200 updates at that budget;
- seeds 0, 1, 2: each seed draws its own training subset, data order and (scratch) initialisation;
- resolution ablation: fashion_mnist, 2,000 images, fine-tuned at 48 px (E_pos interpolated from 8x8 to
  12x12, Section 3.2), both arms, the same seeds; compare with the 32 px rows;
- few-shot probe: 1, 5, 10 and 25 shots per class from a pool of 10,000 training images (stratified), the
  test subset above, l2 = 2^10 (big_vision), pre-trained vs random init, 3 sampling seeds.
Accuracies carry a 95% Wilson interval (vitlib.results.wilson_interval) on the pooled test predictions.

Budget in images seen: full 537,600 fine-tuning images (42 runs of 12,800) plus feature extraction
(estimated, not measured: about two hours on a quiet 2-core CPU in fp32); smoke a few hundred (under a
minute); gpu 5 seeds, 51,200 images per run.

Expected: pre-training helps most at the small sizes and on fashion_mnist; the gap shrinks with size.

Command: `python -m vitlib experiment transfer --profile full` (continues from figures/transfer.json;
`--limit N` runs N more rows and stops). RESULTS.md renders the table (vitlib.results.RENDERERS).

Deviations from the paper: the scale (thousands of images, batch 64 instead of 512, 200 steps), the data
(fractals, not JFT; grey 28x28 images resized to 32 and 48 px).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import get_dataset, sample_per_class, subset
from ..fewshot import extract_features, few_shot_accuracy
from ..finetune import finetune_and_evaluate, load_pretrained, prepare_finetune
from ..flops import count_parameters
from ..model import VisionTransformer
from ..results import wilson_interval
from ..train import finetune_recipe, resolve_device
from .runner import check_config, param, training_flops

__all__ = ["NAME", "Config", "PROFILES", "expand", "run_row", "planned_images", "vit_name", "fixed_test_set",
           "finetune_run"]

NAME = "transfer"


@dataclass(frozen=True)
class Config:
    """The transfer study's knobs (one instance per profile in PROFILES; the CLI's flags)."""

    checkpoint: str = param("", "the pre-trained model: '' for the shipped one, or a vitlib/.npz/timm checkpoint")
    datasets: tuple[str, ...] = param(("fashion_mnist", "mnist5k"), "downstream datasets (vitlib.data names)")
    sizes: tuple[int, ...] = param((500, 2000, 10000), "training-set sizes (capped at the split's size)")
    seeds: tuple[int, ...] = param((0, 1, 2), "seeds: training subset, data order, scratch init, few-shot sample")
    images_per_run: int = param(12800, "fine-tuning budget of every run, in images seen")
    batch_size: int = param(64, "fine-tuning batch size")
    n_test: int = param(2000, "test images (a fixed subset, the same for every run; capped at the split)")
    ablation_resolution: int = param(48, "the Section 3.2 ablation's fine-tuning resolution (0: no ablation)")
    ablation_dataset: str = param("fashion_mnist", "the ablation's dataset")
    ablation_size: int = param(2000, "the ablation's training-set size")
    shots: tuple[int, ...] = param((1, 5, 10, 25), "few-shot probe: images per class (empty: no probe)")
    fewshot_pool: int = param(10000, "few-shot probe: training images the shots are drawn from (stratified)")
    precision: str = param("fp32", "fp32 or bf16 (autocast)")

    def __post_init__(self) -> None:
        check_config(self)


PROFILES: dict[str, Config] = {
    "smoke": Config(datasets=("mnist5k",), sizes=(48,), seeds=(0,), images_per_run=16, batch_size=8, n_test=32,
                    ablation_size=48, shots=(1, 2), fewshot_pool=60),
    "full": Config(),
    "gpu": Config(sizes=(500, 2000, 10000, 50000), seeds=(0, 1, 2, 3, 4), images_per_run=51200, batch_size=256,
                  n_test=10000, fewshot_pool=50000, precision="bf16"),
}


def expand(cfg: Config) -> list[dict[str, Any]]:
    """The runs: few-shot rows (cheap) first, then the fine-tuning rows seed by seed, so that a study cut short
    still has every comparison at its first seed."""
    rows = [dict(key=f"fewshot/{init}/{ds}/s{seed}", kind="fewshot", arm=init, corpus=ds, size=cfg.fewshot_pool,
                 seed=seed, resolution=None)
            for seed in cfg.seeds for ds in cfg.datasets for init in ("pre-trained", "random")] if cfg.shots else []
    for seed in cfg.seeds:
        grid = [(ds, n, None) for ds in cfg.datasets for n in cfg.sizes]
        if cfg.ablation_resolution:
            grid.append((cfg.ablation_dataset, cfg.ablation_size, cfg.ablation_resolution))
        for ds, n, res in grid:
            for arm in ("pre-trained", "scratch"):
                tag = f"r{res}" if res else "rpre"
                rows.append(dict(key=f"finetune/{arm}/{ds}/n{n}/{tag}/s{seed}", kind="finetune", arm=arm, corpus=ds,
                                 size=n, seed=seed, resolution=res))
    return rows


def planned_images(cfg: Config, spec: dict[str, Any]) -> int:
    """Training images a row will see (few-shot rows train nothing)."""
    return cfg.images_per_run // cfg.batch_size * cfg.batch_size if spec["kind"] == "finetune" else 0


def vit_name(model: VisionTransformer) -> str:
    """'ViT-Ti/4 L=6': Table 1's size by D, P, and the depth when it differs from the size's."""
    c = model.cfg
    size = {192: "Ti", 384: "S", 768: "B", 1024: "L", 1280: "H"}.get(c.hidden_size, f"D{c.hidden_size}")
    return f"ViT-{size}/{c.patch_size} L={c.num_layers}"


def _pretrained(cfg: Config, cache: dict) -> VisionTransformer:
    if ("pretrained", cfg.checkpoint) not in cache:
        cache[("pretrained", cfg.checkpoint)] = load_pretrained(cfg.checkpoint)
    return cache[("pretrained", cfg.checkpoint)]


def fixed_test_set(ds: str, res: int, in_chans: int, n: int):
    """The fixed test images of a downstream dataset: the first n of a seed-0 permutation of its test split."""
    test = get_dataset(ds, "test", res, in_chans=in_chans)
    return subset(test, min(n, len(test)), seed=0)


def finetune_run(model: VisionTransformer, train_set, test_set, *, images_per_run: int, batch_size: int, seed: int,
                 precision: str) -> dict[str, Any]:
    """Fine-tune a prepared model (new head, resolution set) with Appendix B.1.1's recipe for `images_per_run`
    images, then evaluate it once on test_set: {"images_seen", "train_flops", "metrics": {"test_accuracy",
    "test_n", "test_correct", "ci95", "train_loss_first", "train_loss_last"}}. The pos_embed and mpp studies
    fine-tune their arms with it too."""
    steps = max(images_per_run // batch_size, 1)
    batch = min(batch_size, len(train_set))
    recipe = finetune_recipe(steps=steps, batch_size=batch, seed=seed, precision=precision, progress=False,
                             log_every=max(steps // 10, 1), eval_batch_size=256)
    res, C = model.cfg.image_hw[0], model.cfg.in_chans
    flops = training_flops(model, res, steps * batch, in_chans=C)
    out = finetune_and_evaluate(model, train_set, test_set, recipe)
    n_test = len(test_set)
    correct = int(round(out["test_accuracy"] * n_test))
    losses = [h["loss"] for h in out["history"]["train"]]
    return dict(images_seen=steps * batch, train_flops=flops,
                metrics=dict(test_accuracy=out["test_accuracy"], test_n=n_test, test_correct=correct,
                             ci95=list(wilson_interval(correct, n_test)), train_loss_first=losses[0],
                             train_loss_last=losses[-1]))


def _finetune(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    pretrained = _pretrained(cfg, cache)
    res = spec["resolution"] or pretrained.cfg.image_hw[0]
    C, seed = pretrained.cfg.in_chans, spec["seed"]
    train_full = get_dataset(spec["corpus"], "train", res, in_chans=C)
    n_train = min(spec["size"], len(train_full))
    train_set = subset(train_full, n_train, seed=seed)
    test_set = fixed_test_set(spec["corpus"], res, C, cfg.n_test)
    K = train_full.num_classes
    torch.manual_seed(seed)
    if spec["arm"] == "pre-trained":
        model = prepare_finetune(pretrained, num_classes=K, img_size=res)  # zero head, E_pos interpolated
    else:
        model = VisionTransformer(dataclasses.replace(pretrained.cfg, img_size=res, num_classes=K,
                                                      representation_size=None))
    run = finetune_run(model, train_set, test_set, images_per_run=cfg.images_per_run, batch_size=cfg.batch_size,
                       seed=seed, precision=cfg.precision)
    return dict(model=vit_name(model), parameters=count_parameters(model), n_train=n_train, resolution=res, **run)


def _features(model, ds: str, res: int, C: int, pool: int, n_test: int, seed: int):
    train = get_dataset(ds, "train", res, in_chans=C, augment=False)
    per_class = max(pool // train.num_classes, 1)
    idx = np.concatenate(list(sample_per_class(train.targets, per_class, seed).values()))
    ftr, ltr = extract_features(model, torch.utils.data.Subset(train, idx.tolist()))
    fte, lte = extract_features(model, fixed_test_set(ds, res, C, n_test))
    return ftr, ltr, fte, lte


def _fewshot(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    pretrained = _pretrained(cfg, cache)
    res, C, seed, ds = pretrained.cfg.image_hw[0], pretrained.cfg.in_chans, spec["seed"], spec["corpus"]
    K = get_dataset(ds, "test", res, in_chans=C).num_classes
    if spec["arm"] == "pre-trained":
        model = prepare_finetune(pretrained, num_classes=K).to(resolve_device("auto"))
        key = ("features", cfg.checkpoint, ds)  # the pre-trained features do not depend on the seed: the pool is 0's
        if key not in cache:
            cache[key] = _features(model, ds, res, C, cfg.fewshot_pool, cfg.n_test, 0)
        feats = cache[key]
    else:
        torch.manual_seed(seed)
        model = VisionTransformer(dataclasses.replace(pretrained.cfg, num_classes=K, representation_size=None))
        feats = _features(model.to(resolve_device("auto")), ds, res, C, cfg.fewshot_pool, cfg.n_test, 0)
    ftr, ltr, fte, lte = feats
    n_test = len(lte)
    metrics: dict[str, Any] = dict(test_n=n_test, pool=len(ltr))
    for s in cfg.shots:
        acc = few_shot_accuracy(ftr, ltr, fte, lte, shots=s, seed=seed, num_classes=K)
        correct = int(round(acc * n_test))
        metrics[f"{s}shot"] = acc
        metrics[f"{s}shot_ci95"] = list(wilson_interval(correct, n_test))
    return dict(model=vit_name(model), parameters=count_parameters(model), n_train=len(ltr), resolution=res,
                images_seen=0, train_flops=0, metrics=metrics)


def run_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    """One run of the study: a fine-tuning arm or a few-shot probe."""
    return _finetune(cfg, spec, cache) if spec["kind"] == "finetune" else _fewshot(cfg, spec, cache)

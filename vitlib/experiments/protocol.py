"""What the studies share: the model table, the pre-training corpora, the schedule, pre-training, the few-shot
probe (Fig. 4's protocol), fine-tuning (Section 3.2's) and the fixed test sets; and the ablations' protocol
(`Protocol`), which the pos_embed and mpp studies both run. Studies import from here and never from each other;
their comparisons and verdicts come from vitlib.stats (`side`, `claim_verdict`), their words from vitlib.markdown.

    MODELS              a study's model name -> how vitlib.create_model builds it, and its family
    pretraining_data    (train, held-out val) of a pre-training corpus at a size
    probe_features      frozen features of a held-out real dataset; probe_metrics: the few-shot accuracies
    finetune_run        fine-tune a prepared model with Appendix B.1.1's recipe, then test it once
    Protocol, pretrain, transfer_metrics   the ablations' protocol: pre-train, then probe and fine-tune
    LEARNED, why_not_testable   the ablations' threshold: below it the pre-training task was not learned

Deviations from the paper: the scale (Ti-sized models at 28-32 px, thousands of images); see each study.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data import get_dataset, sample_per_class, subset
from ..fewshot import extract_features, few_shot_accuracy
from ..finetune import finetune_and_evaluate, new_head
from ..model import VisionTransformer, create_model
from ..stats import wilson_interval
from ..train import Objective, evaluate, finetune_recipe, pretrain_recipe, train
from .runner import StudyConfig, param, scheduled_images, training_flops

__all__ = ["ModelSpec", "MODELS", "build_model", "vit_name", "pretraining_data", "probe_features", "probe_metrics",
           "fixed_test_set", "finetune_run", "Protocol", "shared_fields", "PROTOCOL_PROFILES", "planned_images",
           "build_vit", "pretraining_corpus", "pretrain", "held_out_accuracy", "LEARNED", "why_not_testable",
           "transfer_metrics"]


@dataclass(frozen=True)
class ModelSpec:
    """A model of the studies: the vitlib.create_model name, its overrides, its family ("vit", "resnet",
    "hybrid") and, for a hybrid, the ViT of the same depth it is compared with."""

    create: str
    overrides: dict[str, Any] = field(default_factory=dict)
    family: str = "vit"
    twin: str | None = None


# The studies' models. Forward GFLOPs at 28 px, 100 classes.
MODELS: dict[str, ModelSpec] = {
    "ViT-Ti/4 L=4": ModelSpec("ViT-Ti/4", dict(num_layers=4, representation_size=192)),  # 1.86M params, 0.19 GFLOPs
    "ViT-Ti/4 L=8": ModelSpec("ViT-Ti/4", dict(num_layers=8, representation_size=192)),  # 3.63M params, 0.37 GFLOPs
    "BiT-R26x1 w32": ModelSpec("BiT-R26x1", dict(stem="cifar", base_width=32), "resnet"),  # 3.59M, 0.30 GFLOPs
    "R+ViT-Ti/4 L=4": ModelSpec("R+ViT-Ti/4", dict(num_layers=4, representation_size=192), "hybrid",
                                twin="ViT-Ti/4 L=4"),  # 1.87M params, 0.19 GFLOPs
    # smoke: tiny versions of a ViT and the ResNet, every code path in seconds
    "ViT-tiny/8 L=1": ModelSpec("ViT-Ti/8", dict(num_layers=1, hidden_size=32, num_heads=2, mlp_size=64,
                                                 representation_size=32)),
    "BiT-R w32 tiny": ModelSpec("BiT-R26x1", dict(stem="bit", base_width=32, depths=(1, 1, 1, 1)), "resnet"),
}


def build_model(model: str, img_size: int, num_classes: int, **overrides: Any) -> torch.nn.Module:
    """MODELS[model] at img_size with num_classes and `overrides` (config fields) on top of the table's."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    spec = MODELS[model]
    return create_model(spec.create, img_size=img_size, num_classes=num_classes, **{**spec.overrides, **overrides})


def vit_name(model: VisionTransformer) -> str:
    """'ViT-Ti/4 L=6': Table 1's size by D, P, and the depth when it differs from the size's."""
    c = model.cfg
    size = {192: "Ti", 384: "S", 768: "B", 1024: "L", 1280: "H"}.get(c.hidden_size, f"D{c.hidden_size}")
    return f"ViT-{size}/{c.patch_size} L={c.num_layers}"


def pretraining_data(corpus: str, size: int, seed: int, *, classes: int, img_size: int, n_val: int,
                     val_per_class: int = 10):
    """(train, held-out val) of a pre-training corpus at `size` images; the val set is the same at every size
    (fractaldb: its test split of `val_per_class` images per category, `classes` categories; Fashion-MNIST: its
    val split), cut to `n_val` images. Every study pre-trains on it."""
    if corpus == "fractaldb":
        per_class = max(size // classes, 1)
        opts = dict(num_classes=classes, images_per_class=per_class, test_images_per_class=val_per_class)
        train_set = get_dataset("fractaldb", "train", img_size, seed=seed, val_fraction=0.0, **opts)
        val = get_dataset("fractaldb", "test", img_size, **opts)
    else:
        full = get_dataset(corpus, "train", img_size)
        train_set = subset(full, min(size, len(full)), seed=seed)
        train_set.num_classes = full.num_classes
        val = get_dataset(corpus, "val", img_size)
    return train_set, subset(val, min(n_val, len(val)), seed=0)


def probe_features(model, dataset: str, img_size: int, pool: int, n_test: int):
    """Frozen features for Fig. 4's probe: (train features, labels, test features, labels, K) of `dataset`,
    the train pool stratified (pool / K per class, seed 0), the first n_test of a fixed test permutation."""
    train = get_dataset(dataset, "train", img_size, augment=False)
    idx = np.concatenate(list(sample_per_class(train.targets, max(pool // train.num_classes, 1), 0).values()))
    test = get_dataset(dataset, "test", img_size)
    ftr, ltr = extract_features(model, torch.utils.data.Subset(train, idx.tolist()))
    fte, lte = extract_features(model, subset(test, min(n_test, len(test)), seed=0))
    return ftr, ltr, fte, lte, train.num_classes


def probe_metrics(features, shots: tuple[int, ...], seed: int) -> dict[str, Any]:
    """Fig. 4's linear few-shot accuracy at each of `shots` (`probe_features`' output; shots drawn by `seed`):
    {"probe_n", "5shot", "5shot_ci95", ...}, each accuracy with its 95% Wilson interval."""
    ftr, ltr, fte, lte, K = features
    n_test = len(lte)
    metrics: dict[str, Any] = dict(probe_n=n_test)
    for s in shots:
        acc = few_shot_accuracy(ftr, ltr, fte, lte, shots=s, seed=seed, num_classes=K)
        metrics[f"{s}shot"] = acc
        metrics[f"{s}shot_ci95"] = list(wilson_interval(round(acc * n_test), n_test))
    return metrics


def fixed_test_set(ds: str, res: int, in_chans: int, n: int):
    """The fixed test images of a downstream dataset: the first n of a seed-0 permutation of its test split."""
    test = get_dataset(ds, "test", res, in_chans=in_chans)
    return subset(test, min(n, len(test)), seed=0)


def finetune_run(model: VisionTransformer, train_set, test_set, *, images_per_run: int, batch_size: int, seed: int,
                 precision: str) -> dict[str, Any]:
    """Fine-tune a prepared model (new head, resolution set) with Appendix B.1.1's recipe for `images_per_run`
    images, then evaluate it once on test_set: {"images_seen", "train_flops", "metrics": {"test_accuracy",
    "test_n", "test_correct", "ci95", "train_loss_first", "train_loss_last"}}. Every study fine-tunes with it."""
    steps = scheduled_images(images_per_run, batch_size) // batch_size
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


# --- the ablations' protocol (the pos_embed and mpp studies: their Configs have these fields) -----------------------


@dataclass(frozen=True)
class Protocol(StudyConfig):
    """The protocol the pos_embed and mpp studies share (model, corpus, budget, evaluation): their Configs' common
    fields, so that the mpp study's supervised arm is the pos_embed study's "learned" arm
    (tests/test_ablation_studies.py)."""

    model: str = param("ViT-Ti/4 L=4", "the model (a name of vitlib.experiments.protocol.MODELS)")
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


def shared_fields(cfg: Protocol) -> dict[str, Any]:
    """The shared protocol's fields of a Config, as keyword arguments (each study's profiles add their own)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(Protocol)}


# The ablations' profiles: the protocol each profile of the pos_embed and mpp studies runs (their "learned" arm and
# "supervised" arm are then the same run, a check that both studies give the same numbers)
PROTOCOL_PROFILES: dict[str, Protocol] = {
    "smoke": Protocol(model="ViT-tiny/8 L=1", seeds=(0,), fractal_size=200, fractal_classes=10, images_per_run=64,
                      batch_size=16, n_val=32, shots=(1, 5), probe_pool=50, probe_test=50, finetune_size=64,
                      finetune_images=32, finetune_batch=16, n_test=50),
    "full": Protocol(),
    "long": Protocol(seeds=(0, 1, 2, 3), fractal_size=100000, images_per_run=131_072, batch_size=32),  # why: pos_embed
    "gpu": Protocol(seeds=(0, 1, 2, 3, 4), fractal_size=100000, images_per_run=262_144, batch_size=512,
                    finetune_images=51200, finetune_batch=256, precision="bf16"),
}


def planned_images(cfg: Any, spec: dict[str, Any]) -> int:
    """Training images a row of an ablation sees: pre-training (none for a "scratch" arm) + fine-tuning."""
    pre = 0 if spec["arm"] == "scratch" else scheduled_images(cfg.images_per_run, cfg.batch_size)
    return pre + scheduled_images(cfg.finetune_images, cfg.finetune_batch)


def build_vit(cfg: Any, num_classes: int, **overrides: Any) -> VisionTransformer:
    """cfg.model (a name of MODELS) at cfg.img_size with num_classes and `overrides` (ViTConfig fields)."""
    return build_model(cfg.model, cfg.img_size, num_classes, **overrides)


def pretraining_corpus(cfg: Any, seed: int):
    """(train, held-out val) fractals of cfg.fractal_size images in cfg.fractal_classes categories."""
    return pretraining_data("fractaldb", cfg.fractal_size, seed, classes=cfg.fractal_classes, img_size=cfg.img_size,
                            n_val=cfg.n_val)


def pretrain(model: torch.nn.Module, train_set, cfg: Any, seed: int,
             objective: Objective | None = None) -> dict[str, Any]:
    """Pre-train `model` in place for cfg.images_per_run images (the scaling study's recipe: Adam, wd 0.1,
    warm-up, linear decay, clipping at 1), classification or `objective`; the final state is kept.
    Returns {"images_seen", "train_flops", "loss_first", "loss_last", "train_accuracy_last"}."""
    steps = scheduled_images(cfg.images_per_run, cfg.batch_size) // cfg.batch_size
    batch = min(cfg.batch_size, len(train_set))
    recipe = pretrain_recipe(steps=steps, batch_size=batch, warmup_steps=None, grad_clip=1.0, seed=seed,
                             eval_every=0, precision=cfg.precision, progress=False, log_every=max(steps // 10, 1),
                             data_on_device=torch.cuda.is_available())
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


# The ablations' answers need a pre-training task that was learned: below this held-out accuracy (100 categories,
# chance 1%) the representation the kinds or arms are compared on is close to an untrained one, and a verdict is
# "not testable at this budget" (the pos_embed study's design, written before the full run)
LEARNED = 0.10


def why_not_testable(rows: list[dict]) -> str | None:
    """None when the rows' pre-training task was learned, else why not: the mean held-out accuracy of the rows that
    measured one (`held_out_accuracy`'s "val_accuracy"; the scratch and mpp arms have none) below LEARNED. Rows
    without any such measurement: None (nothing says the task was not learned).

    >>> why_not_testable([dict(metrics=dict(val_accuracy=a)) for a in (0.03, 0.05)] + [dict(metrics={})])
    'held-out 4.0%, the mean of 2 runs, below 10%: the pre-training task was not learned'
    >>> why_not_testable([dict(metrics=dict(val_accuracy=0.25))]) is None
    True
    """
    accs = [r["metrics"]["val_accuracy"] for r in rows if "val_accuracy" in r["metrics"]]
    mean = sum(accs) / len(accs) if accs else 1.0
    if mean >= LEARNED:
        return None
    return (f"held-out {100 * mean:.1f}%, the mean of {len(accs)} runs, below {100 * LEARNED:.0f}%: the pre-training "
            "task was not learned")


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

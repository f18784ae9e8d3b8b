"""Study `scaling`: transfer against pre-training data and compute, ViT vs ResNet vs hybrid (Fig. 3, 4, 5).

The paper's headline in miniature (notebook 05). The claim (paper.md, Fig. 3-5, Section 4.2-4.3): with
little pre-training data the ResNet's inductive bias wins; as the data grows ViT catches up and overtakes
it; per unit of pre-training compute ViT is the better deal, and hybrids beat ViT at small budgets.

Design (full profile):
- models at 28x28 (the native resolution of Fashion-MNIST and MNIST), each with a 7x7 grid of tokens or
  feature cells and within 2x of each other in FLOPs (`MODELS`): ViT-Ti/4 with L=4 and L=8 (two ViT sizes),
  a BiT-R26x1 with the CIFAR stem and base width 32 (GroupNorm + Weight Standardization) and the hybrid
  R+ViT-Ti/4 with L=4 (the ResNet root, then ViT on its /4 map with 1x1 patches);
- pre-training corpora at 5 sizes spanning 2 orders of magnitude: `fractaldb` (100 categories, 1,000 to
  100,000 images) and random subsets of Fashion-MNIST train (540 to all 54,000);
- one schedule for every size: 16,384 images seen (512 steps of 32, Adam, wd 0.1, warm-up then linear
  decay: Appendix B.1's recipe, vitlib.train.pretrain_recipe), so a 1,000-image set is seen 16 times and
  overfits (Section 4.3), while the largest sets are seen about once: at this budget the largest sizes
  measure the compute limit, not the data limit (the gpu profile's 262,144 images lift it);
- the best validation checkpoint is kept (validation every 64 steps on a held-out split that never
  changes with the size: the fractal test split of 10 images per category, 1,000 Fashion-MNIST validation
  images), as the paper selects its checkpoints;
- transfer is Fig. 4's protocol: the closed-form linear few-shot probe (5 and 10 shots, l2 = 2^10) on
  frozen features of a held-out real dataset: Fashion-MNIST test after fractal pre-training, MNIST-5k
  after Fashion-MNIST pre-training (the pool: 200 training images per class; 2,000 test images); plus the
  best accuracy on the pre-training task's own held-out split;
- seeds 0, 1, 2 at the two smallest sizes of each corpus, seed 0 elsewhere (a seed sets the initialisation
  and the data order, and for Fashion-MNIST the subset; the fractal corpus of a size is one rendering);
  every accuracy carries a 95% Wilson interval;
- fp32: on this project's CPUs (no native bf16) bf16 autocast trains several times slower than fp32
  (figures/train_speed.json), so it buys nothing here; the gpu profile uses bf16. torch.compile, measured
  only after the sweep had run (figures/train_speed_compiled.json), trains no faster than eager on this CPU,
  so the sweep's mode was the fastest one measured.
Changed before the full run, after a pilot (its rows and numbers: figures/scaling_pilot.json, rendered in
RESULTS.md and notebook 05; seed 0, 10,000 fractals of 100 categories, 16,384 images): the first design used
32x32 and 128 steps of 128. At that batch neither model got far above chance on the held-out fractals; the
same images in 512 steps of 32, in about the same time, taught the ResNet several times more: 128
optimizer steps were too few, so the study would have compared barely trained models. Hence batch 32. And
28x28: the real datasets' own resolution (32 only upsampled them), faster for the ViTs (the pilot's times),
which buys the whole grid in one schedule. The pilot also tried 10 fractal categories at 28x28: the ViT
learns that task well above chance but its Fashion-MNIST few-shot accuracy hardly moved, and the ResNet
solved it while its few-shot accuracy fell, so the corpus stays at 100 categories, the one the rest of the
project uses. The schedule stays at 16,384 images (a budget
of about 2-3 quiet CPU-hours for the grid): the study is compute-limited by design, said next to its
figures. Added at the same time: each model probed once untrained (8 rows of seconds), the level its
pre-trained features have to beat.
What would count as reproducing the claim: at the smallest sizes the ResNet's few-shot accuracy above both
ViTs' beyond the intervals, and the ViTs' curves rising faster with size so that at the largest size a ViT
matches or beats it (Fig. 3/4); against training FLOPs, ViT on or above the ResNet's curve and the hybrid
above ViT at the smallest budgets (Fig. 5). Partly: the orderings at one end only. Not: ResNet ahead at
every size, or no trend with size.

Budget in images seen: full 1,179,648 (72 runs of 16,384: 4 models x 2 corpora x (3 + 3 + 1 + 1 + 1) seeds
and sizes, plus 8 untrained probes; about 2.5 hours of quiet 2-core CPU in fp32, in parts; each row's
measured time is in its provenance in figures/scaling.json);
smoke 2 tiny models x 2 sizes of Fashion-MNIST (under a minute); gpu 262,144 images per run, 5 seeds at the
two smallest sizes.

Command: `python -m vitlib experiment scaling --profile full` (resumable; `--limit N` runs N more rows).
Figures: vitlib.plots.scaling_figure (Fig. 3/4: few-shot accuracy vs pre-training set size per model;
Fig. 5: vs total training FLOPs); RESULTS.md renders the table.

Deviations from the paper: the data (fractals and Fashion-MNIST instead of ImageNet/I21k/JFT; 10^5 images
at most, not 3 x 10^8), the models (Ti-sized, 28 px), the schedule (16,384 images, batch 32).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import get_dataset, sample_per_class, subset
from ..fewshot import extract_features, few_shot_accuracy
from ..flops import count_parameters
from ..model import create_model
from ..results import seed_mean, wilson_interval
from ..train import pretrain_recipe, train
from .runner import check_config, param, training_flops

__all__ = ["NAME", "MODELS", "Config", "PROFILES", "expand", "run_row", "planned_images", "PROBE", "curves",
           "pretraining_data", "probe_features", "probe_metrics", "untrained"]

NAME = "scaling"

# Model name in the results -> (vitlib.create_model name, overrides). Forward GFLOPs at 28 px, 100 classes.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "ViT-Ti/4 L=4": ("ViT-Ti/4", dict(num_layers=4, representation_size=192)),  # 1.86M params, 0.19 GFLOPs
    "ViT-Ti/4 L=8": ("ViT-Ti/4", dict(num_layers=8, representation_size=192)),  # 3.63M params, 0.37 GFLOPs
    "BiT-R26x1 w32": ("BiT-R26x1", dict(stem="cifar", base_width=32)),  # 3.59M params, 0.30 GFLOPs
    "R+ViT-Ti/4 L=4": ("R+ViT-Ti/4", dict(num_layers=4, representation_size=192)),  # 1.87M params, 0.19 GFLOPs
    # smoke: tiny versions of a ViT and the ResNet, every code path in seconds
    "ViT-tiny/8 L=1": ("ViT-Ti/8", dict(num_layers=1, hidden_size=32, num_heads=2, mlp_size=64,
                                        representation_size=32)),
    "BiT-R w32 tiny": ("BiT-R26x1", dict(stem="bit", base_width=32, depths=(1, 1, 1, 1))),
}

# Pre-training corpus -> the held-out real dataset of the few-shot probe (Fig. 4's protocol).
PROBE = {"fractaldb": "fashion_mnist", "fashion_mnist": "mnist5k"}


@dataclass(frozen=True)
class Config:
    """The scaling study's knobs (one instance per profile in PROFILES; the CLI's flags)."""

    models: tuple[str, ...] = param(("ViT-Ti/4 L=4", "ViT-Ti/4 L=8", "BiT-R26x1 w32", "R+ViT-Ti/4 L=4"),
                                    "models (names of vitlib.experiments.scaling.MODELS)")
    corpora: tuple[str, ...] = param(("fractaldb", "fashion_mnist"), "pre-training corpora (fractaldb, "
                                     "fashion_mnist)")
    fractal_sizes: tuple[int, ...] = param((1000, 3000, 10000, 30000, 100000),
                                           "fractaldb sizes in images (fractal_classes categories)")
    fashion_sizes: tuple[int, ...] = param((540, 1700, 5400, 17000, 54000), "Fashion-MNIST train subset sizes")
    fractal_classes: int = param(100, "fractaldb categories")
    seeds: tuple[int, ...] = param((0, 1, 2), "seeds of the smallest sizes (the others: the first seed)")
    seeded_sizes: int = param(2, "how many of the smallest sizes of each corpus get every seed")
    images_per_run: int = param(16384, "pre-training schedule of every run, in images seen")
    batch_size: int = param(32, "pre-training batch size")
    eval_every: int = param(64, "validate every N steps; the best validation state is kept")
    n_val: int = param(1000, "held-out images of the pre-training task (fractaldb: 10 per category)")
    shots: tuple[int, ...] = param((5, 10), "few-shot probe: images per class")
    probe_pool: int = param(2000, "few-shot probe: training images the shots are drawn from (stratified)")
    probe_test: int = param(2000, "few-shot probe: test images")
    img_size: int = param(28, "resolution H = W")
    precision: str = param("fp32", "fp32 or bf16 (autocast)")

    def __post_init__(self) -> None:
        check_config(self)


PROFILES: dict[str, Config] = {
    "smoke": Config(models=("ViT-tiny/8 L=1", "BiT-R w32 tiny"), corpora=("fashion_mnist",),
                    fashion_sizes=(100, 300), seeds=(0,), images_per_run=64, batch_size=16, eval_every=2,
                    n_val=32, shots=(1, 5), probe_pool=50, probe_test=50, img_size=32),
    "full": Config(),
    "gpu": Config(fractal_sizes=(1000, 10000, 100000, 300000, 1000000), seeds=(0, 1, 2, 3, 4),
                  images_per_run=262_144, batch_size=512, eval_every=256, probe_test=10000,
                  probe_pool=10000, precision="bf16"),
}


def _sizes(cfg: Config, corpus: str) -> tuple[int, ...]:
    if corpus not in PROBE:
        raise ValueError(f"unknown corpus {corpus!r}; known: {', '.join(PROBE)}")
    return cfg.fractal_sizes if corpus == "fractaldb" else cfg.fashion_sizes


def expand(cfg: Config) -> list[dict[str, Any]]:
    """The runs, seed by seed: seed 0's whole grid first, then each model probed untrained (seconds each), then
    the other seeds, so that a study cut short has every model and size and its reference line."""
    unknown = sorted(set(cfg.models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    rows = []
    for i, seed in enumerate(cfg.seeds):
        for corpus in cfg.corpora:
            sizes = sorted(_sizes(cfg, corpus))
            for size in sizes if i == 0 else sizes[:cfg.seeded_sizes]:
                for model in cfg.models:
                    rows.append(dict(key=f"{model}/{corpus}/n{size}/s{seed}", kind="pretrain", arm=model,
                                     corpus=corpus, size=size, seed=seed, probe=PROBE[corpus]))
        if i == 0:  # the reference line: each model's probe before any pre-training
            rows += [dict(key=f"{model}/{corpus}/untrained/s{seed}", kind="untrained", arm=model, corpus=corpus,
                          size=0, seed=seed, probe=PROBE[corpus]) for corpus in cfg.corpora for model in cfg.models]
    return rows


def planned_images(cfg: Config, spec: dict[str, Any]) -> int:
    return 0 if spec["kind"] == "untrained" else cfg.images_per_run // cfg.batch_size * cfg.batch_size


def pretraining_data(corpus: str, size: int, seed: int, *, classes: int, img_size: int, n_val: int,
                     val_per_class: int = 10):
    """(train, held-out val) of a pre-training corpus at `size` images; the val set is the same at every size
    (fractaldb: its test split of `val_per_class` images per category, `classes` categories; Fashion-MNIST: its
    val split), cut to `n_val` images. The other studies (pos_embed, mpp) pre-train on it too."""
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


def run_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    """Pre-train one model on one corpus size (best validation state kept), then probe its frozen features; an
    "untrained" row probes the freshly initialised model (the level pre-training has to beat)."""
    seed = spec["seed"]
    if spec["kind"] == "untrained":
        name, overrides = MODELS[spec["arm"]]
        torch.manual_seed(seed)
        model = create_model(name, img_size=cfg.img_size, num_classes=cfg.fractal_classes, **overrides)
        metrics = probe_metrics(probe_features(model, spec["probe"], cfg.img_size, cfg.probe_pool, cfg.probe_test),
                                cfg.shots, seed)
        return dict(model=spec["arm"], parameters=count_parameters(model), n_train=0, images_seen=0, epochs=0.0,
                    train_flops=0, metrics=metrics)
    train_set, val_set = pretraining_data(spec["corpus"], spec["size"], seed, classes=cfg.fractal_classes,
                                          img_size=cfg.img_size, n_val=cfg.n_val)
    K = train_set.num_classes
    name, overrides = MODELS[spec["arm"]]
    torch.manual_seed(seed)
    model = create_model(name, img_size=cfg.img_size, num_classes=K, **overrides)
    batch = min(cfg.batch_size, len(train_set))
    steps = max(cfg.images_per_run // cfg.batch_size, 1)
    recipe = pretrain_recipe(steps=steps, batch_size=batch, warmup_steps=None, grad_clip=1.0, seed=seed,
                             eval_every=cfg.eval_every, precision=cfg.precision, progress=False,
                             log_every=max(steps // 10, 1))
    flops = training_flops(model, cfg.img_size, steps * batch)
    best: dict[str, Any] = dict(accuracy=-1.0)

    def keep_best(step: int, res: dict) -> None:  # Section 4: the best validation checkpoint, kept in memory
        if res["accuracy"] > best["accuracy"]:
            best.update(accuracy=res["accuracy"], loss=res["loss"], step=step,
                        state=copy.deepcopy(model.state_dict()))

    history = train(model, train_set, recipe, val_set=val_set, on_eval=keep_best)
    model.load_state_dict(best.pop("state"))
    features = probe_features(model, spec["probe"], cfg.img_size, cfg.probe_pool, cfg.probe_test)
    n_val = len(val_set)
    metrics: dict[str, Any] = dict(val_accuracy=best["accuracy"], val_n=n_val, best_step=best["step"],
                                   val_ci95=list(wilson_interval(round(best["accuracy"] * n_val), n_val)),
                                   final_val_accuracy=history["val"][-1]["accuracy"])
    metrics.update(probe_metrics(features, cfg.shots, seed))
    return dict(model=spec["arm"], parameters=count_parameters(model), n_train=len(train_set),
                images_seen=steps * batch, epochs=round(steps * batch / len(train_set), 3), train_flops=flops,
                metrics=metrics)


def untrained(rows: list[dict[str, Any]], metric: str = "5shot") -> dict[str, dict[str, dict[str, Any]]]:
    """{corpus: {model: {"mean", "lo", "hi", "seeds"}}}: the probe of each model before pre-training (the
    "untrained" rows), the level pre-training has to beat; vitlib.plots.scaling_figure draws it as a line."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("kind") == "untrained":
            groups.setdefault((row["corpus"], row["model"]), []).append(row)
    for (corpus, model), runs in groups.items():
        s = seed_mean(runs, metric, "probe_n")
        out.setdefault(corpus, {})[model] = dict(mean=s["mean"], lo=s["ci95"][0], hi=s["ci95"][1], seeds=s["seeds"])
    return out


def curves(rows: list[dict[str, Any]], metric: str = "5shot") -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{corpus: {model: [{"size", "flops", "mean", "lo", "hi", "seeds"}, ...] by size}}: the results rows of this
    study summarised over seeds (vitlib.results.seed_mean: the mean and its 95% interval), what
    vitlib.plots.scaling_figure draws. metric: "5shot", "10shot" (probe) or "val_accuracy" (pre-training task)."""
    n_key = "val_n" if metric == "val_accuracy" else "probe_n"
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("kind", "pretrain") != "pretrain":
            continue
        groups.setdefault((row["corpus"], row["model"], row["size"]), []).append(row)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (corpus, model, size), runs in sorted(groups.items(), key=lambda kv: kv[0][2]):
        s = seed_mean(runs, metric, n_key)
        out.setdefault(corpus, {}).setdefault(model, []).append(
            dict(size=size, flops=runs[0]["train_flops"], mean=s["mean"], lo=s["ci95"][0], hi=s["ci95"][1],
                 seeds=s["seeds"]))
    return out

"""Study `scaling_curves`: Fig. 3/4 and 5 from learning curves, every run trained until its held-out curve
flattens, and locality (Fig. 7 right) recorded along the way.

The claim (paper.md, Fig. 3-5, Sections 4.2-4.3): with little pre-training data the ResNet's inductive bias
wins; as the data grow ViT catches up and overtakes it (Fig. 4 puts the crossover between about 30M and 90M
images); per unit of pre-training compute ViT is the better deal (Fig. 5). What a miniature can test is the
trend that produces the crossover: the ResNet's lead shrinks as the pre-training data grow, once every model
is trained to its plateau at every size. The first sweep (study `scaling`, 16,384 images a run) could not:
its ViTs never learned the pre-training task.

One run per (model, size, seed) gives both axes: each run is evaluated at log-spaced checkpoints (images
seen 2^k): held-out pre-training accuracy, the 5- and 10-shot linear probe on Fashion-MNIST test (Fig. 4's
protocol, vitlib.experiments.protocol.probe_metrics), training FLOPs so far, and for ViTs the mean attention
distance of every head (vitlib.analysis.mean_attention_distance on held-out fractals). The best-validation
checkpoint is a point of Fig. 3/4; the checkpoints of the runs on the largest set are Fig. 5.
The learning rate follows the rsqrt schedule after a fixed warm-up (vitlib.train.lr_at; Zhai et al. 2021):
it does not depend on the run's length, so a checkpoint at 2^k images is the run of that length (without a
final cool-down), and a run stops early where its curve has flattened: the last doubling of images seen
gained less than `plateau_gain` of held-out accuracy (after at least `min_images`), or at `max_images`.

Profiles: `smoke` (tiny models, seconds), `--profile pilot` (the learning curves that sized the design; rows in
figures/scaling_curves_pilot.json), `full` (the design below; figures/scaling_curves.json), `gpu` (the same
design at 16x the images and 10^6 fractals, not yet run; figures/scaling_curves_gpu.json).

What the pilot showed (ViT-Ti/4 L=4 and BiT-R26x1 w32, seed 0, 10^3 and 10^5 fractals, cap 2^19 images):
the ResNet plateaus by 2^17 images at both sizes; the ViT overfits 10^3 fractals (held-out peak at 2^18,
lower at 2^19) and on 10^5 fractals is still climbing steeply at 2^19; the ResNet's 10-shot lead at 10^5
is a little over half its lead at 10^3. So the trend the design asks about is visible in one seed, and the
ViT on the largest set is the run that needs images most.

The design (written before the first row of `full`, from the pilot):
- Models: ViT-Ti/4 L=4 and its FLOP-matched BiT-R26x1 w32 (vitlib.experiments.protocol.MODELS). No hybrid:
  the budget goes to seeds and to the ViT's length.
- Sizes: 10^3, 10^4, 10^5 fractals (100 categories), two orders of magnitude; 10^6 would add little at
  2^20 images seen (about one epoch).
- Length: checkpoints at 2^10 ... 2^20 images; a run stops at the first checkpoint from 2^17 on whose
  doubling gained less than 1 point of held-out accuracy (plateau), else at the cap of 2^20 images (a run
  stopped by the cap is marked `plateau: false`: its point is a lower bound for that model).
- Seeds: 0, 1, 2 for every (model, size), run seed by seed, smallest size first. Arm beyond the paper:
  the ViT on 10^5 fractals with CutMix (alpha 1), seed 0, run last.
- Measured at each checkpoint: held-out accuracy (2,000 fractals), the 5- and 10-shot Fashion-MNIST probe
  (2,000 test images), training FLOPs, and for the ViT every head's mean attention distance; a run's point
  for Fig. 3/4 is its best-validation checkpoint.
- Verdicts (vitlib.stats; the primary metric is the 10-shot probe, the paper's Fig. 4 metric):
  * Not testable at this budget: the ViT on 10^5 fractals below 10% held-out accuracy in a seed (it never
    learned the task), or its best checkpoint probing no better than its own first checkpoint (its
    pre-training taught nothing transferable).
  * The ResNet's lead shrinks with data (Fig. 3/4): the lead (ResNet minus ViT, per seed) at 10^5 below
    the lead at 10^3, Welch's t over seeds, one-sided p < 0.05, and the fitted slope of the lead against
    log10(size) (bootstrap over seeds) below 0 with 95% confidence: holds; a slope interval within
    +-1 point per decade: does not hold (equivalence); otherwise inconclusive. The extrapolated crossover
    is where the fitted line reaches 0, with its bootstrap interval, or "no crossover implied" when the
    slope's interval reaches 0.
  * Per unit of compute (Fig. 5): the saturating power law E = a (C + d)^(-b) + c (Zhai et al. 2021) fitted
    per model to 1 - probe accuracy against training FLOPs along the runs on 10^5 fractals; ViT the better
    deal where it reaches the ResNet's best accuracy with fewer FLOPs, interval from a bootstrap over seeds.
    Amended after the first two full rows, before any run on 10^5 fractals, from the pilot: each run's curve
    is fitted from its worst checkpoint on (the probe first falls from the untrained features' level, then
    rises; no falling power law follows the dip, and the pilot's fits sat at their bounds).
  * Locality (Fig. 7 right): a head is local when its mean distance is below half of what uniform attention
    over the grid gives; "lower layers get local heads with enough data" holds when layer 1 has a local
    head at 10^5 fractals in every seed and more local heads than at 10^3; "distance grows with depth"
    holds when the last layer's mean distance exceeds the first's, Welch's t over seeds, p < 0.05. CutMix
    changes locality only if its layer-1 distance lies outside the three plain seeds' range.
- Budget: estimated from the pilot's quiet rows (the ResNet about 95 images/s, the ViT about 150 with the
  probes): about 6 CPU hours a seed, 19 hours with the CutMix run, in resumable parts of one row
  (`--limit 1`); the long rows carry their machine load.
- Amended after four full rows (seed 0 at 10^3 and 10^4), before any run of seed 1, for the budget. The rows
  so far need more than the pilot's estimate: the ViT on 10^4 fractals never flattened (held-out 72% to 89% over
  its last doubling) and ran to the cap in 2.0 hours on the faster CPU kind; the ResNet on 10^4 needed 2^18
  images; on the other CPU kind these machines get (no native bf16) the ResNet trains at about 29 images/s, a
  third of the pilot's speed. About 10.5 of the budget's 20 hours are spent (the pilot 3.0, the full rows 3.2
  on the faster kind and 4.3 so far on the slower); three seeds of every run would need about 20 more hours on
  the faster kind and 50 on the slower. So:
  * Seeds 0 and 1 at 10^3 and 10^5 fractals, seed 0 alone at 10^4 (`one_seed_sizes`). The lead's Welch test
    compares the end sizes, two seeds each; the slope's least-squares line over log10(size) gives the middle
    size no leverage (10^4 sits at the mean of log10 sizes 3, 3, 4, 5, 5), so its one seed changes the line's
    level and the crossover, not the slope; the bootstrap resamples the seeds of the end sizes and keeps the
    middle one fixed. Seed 2 is dropped: with two seeds Welch's t has about 2 degrees of freedom, so only a
    large change of the lead can decide (the pilot's single seed showed a change of about 13 points).
  * The CutMix arm (the ViT on 10^5 with CutMix, seed 0) stays, run last: its verdicts do not wait for it, it
    gets its own. With two plain seeds, "outside their range" is too easy a test, so CutMix changes locality
    when its layer-1 distance lies outside the 95% prediction interval of a new plain run (mean +- t(n-1)
    s sqrt(1 + 1/n) over the plain seeds; vitlib.stats.prediction_interval): with two seeds it must differ by
    more than about 15 of their standard deviations.
  * Order, the plan's: seed 0 at 10^5, then seed 1 at 10^3 and 10^5, then CutMix.
  * The ResNet on 10^5 fractals, seed 0, is the pilot's row (`reused_from`): the pilot and full profiles
    differ only in sizes, seeds, cap and the CutMix arm, and that run stopped at its plateau (2^17) before
    either cap, so the full design would repeat it step for step; the two runs both profiles made (10^3, seed
    0) agree at every checkpoint in every number but the seconds (tests/test_scaling_curves.py).
  Budget of what remains: 5 plain runs and the CutMix run, at most 6.3M images (at their caps), about 8 hours
  on the faster CPU kind and 21 on the slower (the ResNet at 29 images/s; the ViT at about 60, from the
  time-to-accuracy runs' ViT there), in parts of one row across sessions: within the budget on the faster
  kind, over it by about 11 hours on the slower. The ViT's cap stays 2^20: cutting the length of the runs that
  need data most would bias the test against ViT.
- Amended after the last row (the CutMix arm) had run and its verdict had rendered "not reproduced", toward
  caution: "CutMix does not change locality" claims no difference, which needs an equivalence margin. It holds
  only when the plain seeds' prediction interval lies within +-20% of uniform attention's distance of their mean
  (`LOCALITY_MARGIN`; 2.9 pixels on this grid); a wider interval is undecided. No other rule changed.

Budget in images seen: full at most 2^20 a run, 11 runs (10 + CutMix, as amended), at most 11.5M images,
about 15 hours on a quiet 2-core CPU of the faster kind (before the amendment: 19 runs, 19 hours estimated);
pilot 4 runs of at most 2^19; smoke seconds; gpu 27 runs of at most 2^24 (16.8M) images, about 450M in all:
estimated, not measured, at about 30,000 images/s for these 28 px models on one current data-centre GPU with
the data on the device, about 10 minutes a run with its probes, 4-5 hours in all, in parts of `--limit 3`
(about half an hour each).
Run it: `python -m vitlib experiment scaling_curves --profile full --limit 1` (repeat; it resumes, an interrupted
row from its last saved state (`run_row`); `--only 'BiT*'` runs the next missing row of that pattern first, the
plan unchanged). A row's saved state is the folder figures/.parts/scaling_curves/<key>/ (git-ignored, about 20-45
MB): copied to another machine's checkout, the row goes on there. On one CPU kind a run is repeatable bit for bit;
on another its floating-point kernels differ in the last bits and training amplifies that, so a row made in parts
on several kinds is a run of the same design, not the same numbers (tests/test_scaling_curves.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import checkpoints
from ..analysis import attention_maps, grid_distances, mean_attention_distance
from ..config import config_from_dict, vit_config
from ..flops import count_parameters, forward_flops
from ..markdown import acc_ci, pct, table
from ..model import VisionTransformer
from ..records import provenance
from ..stats import (
    ALPHA,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    UNDECIDED,
    bootstrap,
    fit_power_law,
    group,
    mean_interval,
    power_law,
    prediction_interval,
    seed_mean,
    welch,
    wilson_interval,
)
from ..train import pretrain_recipe, train
from ..utils import atomic_write
from .protocol import LEARNED, MODELS, build_model, pretraining_data, probe_features, probe_metrics
from .runner import StudyConfig, param

__all__ = ["NAME", "Config", "PROFILES", "expand", "run_row", "planned_images", "checkpoint_images", "leads",
           "why_not_testable", "in_progress", "lead_verdict", "fits", "compute_verdict", "figure_data", "locality",
           "locality_verdict", "render", "RESULTS"]

NAME = "scaling_curves"


@dataclass(frozen=True)
class Config(StudyConfig):
    """The study's knobs (one instance per profile in PROFILES; the CLI's flags)."""

    models: tuple[str, ...] = param(("ViT-Ti/4 L=4", "BiT-R26x1 w32"),
                                    "models (names of vitlib.experiments.protocol.MODELS)")
    sizes: tuple[int, ...] = param((1000, 100000), "fractaldb sizes in images (fractal_classes categories)")
    fractal_classes: int = param(100, "fractaldb categories")
    seeds: tuple[int, ...] = param((0,), "seeds (initialisation and data order)")
    one_seed_sizes: tuple[int, ...] = param((), "sizes run with the first seed only (the middle of the lead's line)",
                                            may_be_empty=True)
    images_per_run: int = param(2**19, "the cap of a run, in images seen (a run may stop earlier: plateau_gain)")
    min_images: int = param(2**17, "no plateau stop before this many images seen")
    plateau_gain: float = param(0.01, "stop when the last doubling of images gained less held-out accuracy")
    first_checkpoint: int = param(2**10, "the first checkpoint, in images seen; then every doubling")
    warmup_images: int = param(2**14, "linear warm-up, in images seen, then rsqrt decay")
    batch_size: int = param(32, "pre-training batch size")
    lr: float = param(1e-3, "peak learning rate (Adam, weight decay 0.1, gradient clipping at 1)")
    n_val: int = param(2000, "held-out images of the pre-training task (fractaldb test split, 20 per category)")
    shots: tuple[int, ...] = param((5, 10), "few-shot probe: images per class")
    probe_pool: int = param(2000, "few-shot probe: training images the shots are drawn from (stratified)")
    probe_test: int = param(2000, "few-shot probe: test images")
    distance_images: int = param(128, "held-out images for the mean attention distance (ViTs)")
    img_size: int = param(28, "resolution H = W")
    cutmix_seeds: tuple[int, ...] = param((), "the CutMix arm: seeds of the ViTs on the largest size with CutMix",
                                           may_be_empty=True)
    cutmix_alpha: float = param(1.0, "the CutMix arm: lambda ~ Beta(alpha, alpha)")


PROFILES: dict[str, Config] = {
    "smoke": Config(models=("ViT-tiny/8 L=1", "BiT-R w32 tiny"), sizes=(200,), fractal_classes=10,
                    images_per_run=256, min_images=64, first_checkpoint=32, warmup_images=32, batch_size=16,
                    n_val=40, shots=(5, 10), probe_pool=100, probe_test=50, distance_images=8, img_size=32),
    # the learning curves that size the design: both candidate models at the smallest and largest size
    "pilot": Config(),
    # amended after four rows (module docstring): seeds 0-2 -> 0-1, and 10^4 with seed 0 only
    "full": Config(sizes=(1000, 10000, 100000), seeds=(0, 1), one_seed_sizes=(10000,), images_per_run=2**20,
                   cutmix_seeds=(0,)),
    "gpu": Config(sizes=(1000, 10000, 100000, 1000000), seeds=(0, 1, 2), images_per_run=2**24, batch_size=256,
                  warmup_images=2**17, cutmix_seeds=(0, 1, 2), precision="bf16"),
}


def expand(cfg: Config) -> list[dict[str, Any]]:
    """The runs: for each seed, the smallest size first (short runs: a first reading early), model by model,
    the sizes of `one_seed_sizes` with the first seed only; then the CutMix arm (the ViTs on the largest size)."""
    unknown = sorted(set(cfg.models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    stray = sorted(set(cfg.one_seed_sizes) - set(cfg.sizes))
    if stray:
        raise ValueError(f"one_seed_sizes {stray} are not among the sizes {list(cfg.sizes)}")
    runs = [dict(key=f"{model}/fractaldb/n{size}/s{seed}", kind="curve", model=model, size=size, seed=seed,
                 cutmix=False)
            for seed in cfg.seeds for size in sorted(cfg.sizes) for model in cfg.models
            if seed == cfg.seeds[0] or size not in cfg.one_seed_sizes]
    vits = [m for m in cfg.models if MODELS[m].family == "vit"]
    return runs + [dict(key=f"{model}+CutMix/fractaldb/n{max(cfg.sizes)}/s{seed}", kind="curve", model=model,
                        size=max(cfg.sizes), seed=seed, cutmix=True) for seed in cfg.cutmix_seeds for model in vits]


def planned_images(cfg: Config, spec: dict[str, Any]) -> int:
    """The cap (a run that reaches its plateau earlier sees fewer)."""
    return cfg.images_per_run // cfg.batch_size * cfg.batch_size


def checkpoint_images(cfg: Config) -> list[int]:
    """Images seen at each checkpoint: first_checkpoint, doubling, up to images_per_run (always the last).

    >>> checkpoint_images(PROFILES["smoke"])
    [32, 64, 128, 256]
    """
    points, n = [], cfg.first_checkpoint
    while n < cfg.images_per_run:
        points.append(n)
        n *= 2
    return points + [cfg.images_per_run]


def _distances(model: torch.nn.Module, images: torch.Tensor) -> list[list[float]] | None:
    """Mean attention distance (pixels) of every layer and head, or None for a model without attention maps."""
    if not isinstance(model, VisionTransformer):
        return None
    P = model.cfg.patch_size
    grid = model.cfg.img_size // P
    return mean_attention_distance(attention_maps(model, images), grid, P).tolist()


SAVE_EVERY = 2**15  # images seen between the saved states of a run (at batch 32: about 4-6 minutes of a CPU)


def _saved(parts: Path | None, batch: int) -> tuple[list[dict], list[dict], float, int]:
    """What an interrupted run left in its parts folder: (its checkpoints up to the newest saved state, the
    parts that ran so far, the run's seconds and images seen at that state); nothing without a saved state."""
    last = checkpoints.latest_checkpoint(parts) if parts is not None else None
    if last is None:
        return [], [], 0.0, 0
    meta = checkpoints.checkpoint_meta(last)
    state = json.loads((parts / "points.json").read_text())
    images = meta["step"] * batch
    points = [p for p in state["points"] if p["images_seen"] <= images]
    return points, state["parts"], float(meta["extra"].get("seconds", 0.0)), images


def _flattened(points: list[dict], cfg: Config) -> bool:
    """The design's stop rule at the last checkpoint: from min_images on, the last doubling of images seen
    gained less than plateau_gain of held-out accuracy."""
    images = points[-1]["images_seen"]
    previous = [p for p in points if p["images_seen"] * 2 == images]
    return bool(images >= cfg.min_images and previous
                and points[-1]["val_accuracy"] - previous[0]["val_accuracy"] < cfg.plateau_gain)


def run_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    """Pre-train one model on one corpus size until its plateau (or the cap), evaluating at every checkpoint.

    With `cache["parts"]` (the runner's parts_dir) the run saves its state there every SAVE_EVERY images (the
    checkpoints from SAVE_EVERY on among them): weights, optimizer and random state (vitlib.train's out_dir), with
    the checkpoints' points so far. Run again after an interruption it resumes from the newest saved state, and
    its points are the uninterrupted run's
    (tests/test_experiments.py::test_an_interrupted_headline_row_resumes_from_its_saved_state); `seconds` and the
    row's `wall_s` count the work the run kept, and `parts` says from how many images, where and when each part
    ran."""
    seed, batch = spec["seed"], cfg.batch_size
    parts: Path | None = cache.get("parts")
    writer = int(os.environ.get("RANK", 0)) == 0
    train_set, val_set = pretraining_data("fractaldb", spec["size"], seed, classes=cfg.fractal_classes,
                                          img_size=cfg.img_size, n_val=cfg.n_val,
                                          val_per_class=max(cfg.n_val // cfg.fractal_classes, 1))
    torch.manual_seed(seed)
    model = build_model(spec["model"], cfg.img_size, train_set.num_classes)
    fwd = forward_flops(model, cfg.img_size)
    steps = max(cfg.images_per_run // batch, 1)
    eval_steps = tuple(sorted({max(n // batch, 1) for n in checkpoint_images(cfg)}))
    recipe = pretrain_recipe(steps=steps, batch_size=batch, lr=cfg.lr, warmup_steps=max(cfg.warmup_images // batch, 1),
                             schedule="rsqrt", grad_clip=1.0, seed=seed, eval_steps=eval_steps,
                             cutmix_alpha=cfg.cutmix_alpha if spec.get("cutmix") else 0.0, precision=cfg.precision,
                             data_on_device=torch.cuda.is_available(), progress=False, log_every=max(steps // 64, 1),
                             checkpoint_every=max(min(SAVE_EVERY, cfg.images_per_run // 4) // batch, 1) if parts else 0)
    distance_images = torch.stack([val_set[i][0] for i in range(min(cfg.distance_images, len(val_set)))])
    points, done_parts, seconds0, saved_images = _saved(parts, batch)
    made = provenance()
    done_parts = [*done_parts, dict(from_images=saved_images, **{k: made[k] for k in ("cpu", "git_commit", "date")})]
    start = time.perf_counter() - seconds0

    def save_points() -> None:
        if parts is not None and writer:
            parts.mkdir(parents=True, exist_ok=True)
            atomic_write(parts / "points.json", lambda tmp: tmp.write_text(json.dumps(
                dict(points=points, parts=done_parts), default=float)))

    if saved_images:
        save_points()  # this part is on record even if it ends before its first checkpoint

    def checkpoint(step: int, res: dict) -> bool:
        images = step * batch
        features = probe_features(model, "fashion_mnist", cfg.img_size, cfg.probe_pool, cfg.probe_test)
        point = dict(images_seen=images, train_flops=3 * fwd * images, seconds=round(time.perf_counter() - start, 1),
                     val_accuracy=res["accuracy"], val_loss=res["loss"], **probe_metrics(features, cfg.shots, seed),
                     attention_distance=_distances(model, distance_images))
        points.append(point)
        save_points()  # before the trainer saves this step's state: a saved state never lacks its point
        return _flattened(points, cfg)

    # saved at its plateau and interrupted before the row was written, the run trains nothing (vitlib.train)
    history = train(model, train_set, recipe, val_set=val_set, on_eval=checkpoint, out_dir=parts,
                    resume=parts is not None)
    best = max(points, key=lambda p: p["val_accuracy"])  # the first of equals
    last = points[-1]
    n_val = len(val_set)
    plateau = last["images_seen"] < steps * batch or (
        len(points) > 1 and last["val_accuracy"] - points[-2]["val_accuracy"] < cfg.plateau_gain)
    metrics = dict(val_accuracy=best["val_accuracy"], val_n=n_val,
                   val_ci95=list(wilson_interval(round(best["val_accuracy"] * n_val), n_val)),
                   best_images=best["images_seen"], final_val_accuracy=last["val_accuracy"], plateau=plateau,
                   **{k: v for k, v in best.items() if k.endswith("shot") or k.endswith("shot_ci95") or k == "probe_n"})
    return dict(parameters=count_parameters(model), n_train=len(train_set), images_seen=last["images_seen"],
                epochs=round(last["images_seen"] / len(train_set), 3), train_flops=last["train_flops"],
                metrics=metrics, points=points, train_curve=history["train"],
                **(dict(wall_s=round(time.perf_counter() - start, 2), parts=done_parts) if len(done_parts) > 1 else {}))


# --- the verdicts of the design (module docstring), from the rows ------------------------------------------------

METRIC = "10shot"  # the primary metric: Fig. 4's few-shot linear probe
EQUIVALENCE = 0.01  # the lead's slope per decade of data within +-1 point: "does not shrink"
LOCALITY_MARGIN = 0.2  # CutMix "does not change" layer 1: plain seeds' band within +-20% of uniform's distance


def _plain(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r.get("cutmix")]


def _family(rows: list[dict], family: str) -> list[dict]:
    return [r for r in _plain(rows) if MODELS[r["model"]].family == family]


def leads(rows: list[dict], metric: str = METRIC) -> dict[int, dict[int, float]]:
    """{size: {seed: ResNet minus ViT}} on `metric` at each run's best-validation checkpoint, paired by seed
    (the first ViT and ResNet of the rows)."""
    vit, resnet = ({(r["size"], r["seed"]): r["metrics"][metric] for r in _family(rows, f)} for f in ("vit", "resnet"))
    out: dict[int, dict[int, float]] = {}
    for (size, seed), acc in sorted(resnet.items()):
        if (size, seed) in vit:
            out.setdefault(size, {})[seed] = acc - vit[(size, seed)]
    return out


def why_not_testable(rows: list[dict]) -> str | None:
    """None when the design reached the claim's regime, else why not: the ViT on the largest set below LEARNED
    held-out accuracy in a seed, or its best checkpoint probing no better than its first (untrained) one."""
    vits = _family(rows, "vit")
    if not vits:
        return "no ViT runs yet"
    largest = [r for r in vits if r["size"] == max(r["size"] for r in vits)]
    low = [r for r in largest if r["metrics"]["val_accuracy"] < LEARNED]
    if low:
        return (f"the ViT on {largest[0]['size']:,} fractals reaches {pct(low[0]['metrics']['val_accuracy'])} "
                f"held-out accuracy (seed {low[0]['seed']}): the pre-training task was not learned")
    flat = [r for r in largest if r["metrics"][METRIC] <= r["points"][0][METRIC]]
    if flat:
        return (f"the ViT on {largest[0]['size']:,} fractals probes no better than its untrained self "
                f"(seed {flat[0]['seed']}): its pre-training taught nothing transferable")
    return None


def _line(lead: dict[int, list[float]]) -> np.ndarray:
    """Least-squares line (slope, intercept) of the lead against log10(size), over every seed's value."""
    x = np.concatenate([[np.log10(size)] * len(v) for size, v in lead.items()])
    return np.polyfit(x, np.concatenate(list(lead.values())), 1)


def _slope(lead: dict[int, list[float]]) -> float:
    return float(_line(lead)[0])


def _zero(lead: dict[int, list[float]]) -> float:
    """log10(size) where the fitted lead reaches 0 (inf when the line does not fall)."""
    slope, intercept = _line(lead)
    return -intercept / slope if slope < 0 else float("inf")


def lead_verdict(rows: list[dict], metric: str = METRIC) -> dict[str, Any]:
    """Fig. 3/4: does the ResNet's lead shrink as the data grow? dict(verdict, why, lead, test, slope, ci95,
    crossover): the design's rule (module docstring). The intervals resample the seeds of every size with two or
    more and hold a size with one seed fixed (none without two such sizes)."""
    why = why_not_testable(rows)
    lead = {size: list(v.values()) for size, v in leads(rows, metric).items()}
    out: dict[str, Any] = dict(lead=lead, test=None, slope=None, ci95=None, crossover=None)
    if why:
        return dict(out, verdict=NOT_TESTABLE, why=why)
    if len(lead) < 2:
        return dict(out, verdict=UNDECIDED, why="the lead at one size only")
    small, large = lead[min(lead)], lead[max(lead)]
    test = welch(large, small, "less")
    slope = _slope(lead)
    # the seeds of the sizes with several are resampled; a size with one seed (one_seed_sizes) stays as it is
    fixed = {n: v for n, v in lead.items() if len(v) < 2}
    many = {n: v for n, v in lead.items() if len(v) >= 2}
    ci = bootstrap(many, lambda g: _slope({**fixed, **g})) if len(many) >= 2 else None
    out.update(test=test, slope=slope, ci95=ci)
    if ci is not None and ci[1] < 0 and slope < 0:
        out["crossover"] = 10 ** _zero(lead)
        cross = bootstrap(many, lambda g: _zero({**fixed, **g}))
        out["crossover_ci95"] = None if cross is None else (10 ** cross[0], 10 ** min(cross[1], 300))
    if test["p"] is not None and test["p"] < ALPHA and ci is not None and ci[1] < 0:
        return dict(out, verdict=REPRODUCED, why="the lead shrinks: smaller at the largest size and a negative slope "
                    "against log10(size)")
    if ci is not None and -EQUIVALENCE < ci[0] and ci[1] < EQUIVALENCE:
        return dict(out, verdict=NOT_REPRODUCED, why=f"the slope's interval lies within +-{100 * EQUIVALENCE:.0f} "
                    "point per decade: the lead does not shrink")
    if ci is not None and ci[0] > 0:
        return dict(out, verdict=NOT_REPRODUCED, why="the lead grows with the data")
    return dict(out, verdict=UNDECIDED, why="the seeds do not decide (too few, or too spread)")


# the axes of the power-law fits: label -> a checkpoint's key (within a model FLOPs are images times 3 forward
# passes' FLOPs, so both axes give the same b and c)
AXES = {"images seen": "images_seen", "training FLOPs": "train_flops"}


def _curve(runs: list[dict], metric: str, x: str = "train_flops") -> tuple[np.ndarray, np.ndarray]:
    """(x, 1 - metric) of the checkpoints of the runs from each run's worst one on (x a checkpoint's key, AXES):
    before it, the probe falls from the untrained features' level, which no falling power law follows.

    >>> run = dict(points=[dict(n=1, m=0.40), dict(n=2, m=0.26), dict(n=4, m=0.30), dict(n=8, m=0.45)])
    >>> [a.round(2).tolist() for a in _curve([run], "m", "n")]
    [[2.0, 4.0, 8.0], [0.74, 0.7, 0.55]]
    """
    pts = [p for r in runs for p in r["points"][int(np.argmin([q[metric] for q in r["points"]])):]]
    return np.array([p[x] for p in pts], float), 1 - np.array([p[metric] for p in pts], float)


def _fitter(runs: dict[int, dict], metric: str, x: str) -> Callable[[Iterable[int]], dict[str, float]]:
    """fit(seeds): the power law (vitlib.stats.fit_power_law) fitted to every checkpoint of the runs {seed: row} of
    those seeds, repeats counted (a bootstrap resample); each multiset of seeds is fitted once, and a fit that
    fails raises its error (RuntimeError: no convergence; ValueError: fewer than 4 checkpoints) every time."""
    done: dict[tuple[int, ...], Any] = {}

    def fit(seeds: Iterable[int]) -> dict[str, float]:
        key = tuple(sorted(seeds))
        if key not in done:
            try:
                done[key] = fit_power_law(*_curve([runs[s] for s in key], metric, x))
            except (RuntimeError, ValueError) as error:
                done[key] = error
        if isinstance(done[key], Exception):
            raise done[key]
        return done[key]

    return fit


def _flops_to_reach(fit: dict[str, float], error: float) -> float:
    """FLOPs at which a fitted power law reaches `error` (inf if it never does)."""
    if error <= fit["c"]:
        return float("inf")
    return ((error - fit["c"]) / fit["a"]) ** (-1 / fit["b"]) - fit["d"]


def _largest(rows: list[dict]) -> tuple[int, list[dict]]:
    """The largest size of the plain runs and the plain runs on it."""
    plain = _plain(rows)
    size = max((r["size"] for r in plain), default=0)
    return size, [r for r in plain if r["size"] == size]


def fits(rows: list[dict], metric: str = METRIC) -> list[dict[str, Any]]:
    """Fig. 4/5's curves in numbers: the saturating power law E = a (x + d)^(-b) + c (Zhai et al. 2021,
    vitlib.stats.power_law) fitted per model to the error 1 - `metric` at every checkpoint of its plain runs on the
    largest set, x images seen and training FLOPs (AXES), with 95% intervals for a, b and c from a bootstrap over
    seeds (seeds resampled with replacement, every checkpoint of a drawn run refitted).

    One dict per (model, axis): model, axis, size, seeds, checkpoints, fit (a, b, c, d; None when the fit failed),
    rms (root-mean-square residual of the fit, in error), bounds (parameters fitted onto a bound of
    fit_power_law: the law does not pin them), ci95 ({a, b, c: (low, high)}; None without an interval) and note
    (why a fit or an interval is missing: "one seed: no interval", a fit that did not converge; None if neither).

    >>> x = [2.0 ** k for k in range(10, 21)]
    >>> run = lambda seed: dict(model="m", size=10, seed=seed, points=[
    ...     dict(images_seen=n, train_flops=6 * n, acc=1 - e) for n, e in zip(x, power_law(x, 40, 0.5, 0.1, 1e3))])
    >>> [(f["axis"], round(f["fit"]["b"], 2), round(f["fit"]["c"], 2), f["note"]) for f in fits([run(0)], "acc")]
    [('images seen', 0.5, 0.1, 'one seed: no interval'), ('training FLOPs', 0.5, 0.1, 'one seed: no interval')]
    """
    size, largest = _largest(rows)
    out = []
    for model in dict.fromkeys(r["model"] for r in largest):
        runs = {r["seed"]: r for r in largest if r["model"] == model}
        for axis, x in AXES.items():
            fit = _fitter(runs, metric, x)
            entry = dict(model=model, axis=axis, size=size, seeds=sorted(runs),
                         checkpoints=len(_curve(list(runs.values()), metric, x)[0]), fit=None, rms=None, bounds=[],
                         ci95=None, note=None)
            try:
                f = fit(runs)
            except (RuntimeError, ValueError) as error:
                why = "did not converge" if isinstance(error, RuntimeError) else "no fit"
                out.append(dict(entry, note=f"{why}: {error}"))
                continue
            xs, errors = _curve(list(runs.values()), metric, x)
            entry.update(fit=f, rms=float(np.sqrt(np.mean((errors - power_law(xs, **f)) ** 2))),
                         bounds=[k for k, v, lo, hi in (("b", f["b"], 0, 3), ("c", f["c"], 0, 1))
                                 if min(abs(v - lo), abs(v - hi)) < 1e-6])
            if len(runs) < 2:
                out.append(dict(entry, note="one seed: no interval"))
                continue
            ci = {k: bootstrap({"seeds": list(runs)}, lambda g, k=k, fit=fit: fit(g["seeds"])[k]) for k in "abc"}
            if any(v is None for v in ci.values()):
                out.append(dict(entry, note="no interval: the fit failed on most resamples"))
                continue
            out.append(dict(entry, ci95=ci))
    return out


def compute_verdict(rows: list[dict], metric: str = METRIC) -> dict[str, Any]:
    """Fig. 5: FLOPs the ResNet needs over FLOPs the ViT needs to reach the lower of the two models' best
    accuracies on the largest set, from power laws fitted to every checkpoint (bootstrap over seeds).
    dict(verdict, why, ratio, ci95, fits, target)."""
    why = why_not_testable(rows)
    size, largest = _largest(rows)
    runs = {f: {r["seed"]: r for r in _family(largest, f)} for f in ("vit", "resnet")}
    out: dict[str, Any] = dict(ratio=None, ci95=None, fits={}, target=None, size=size)
    if why:
        return dict(out, verdict=NOT_TESTABLE, why=why)
    if not all(len(v) >= 2 for v in runs.values()):
        return dict(out, verdict=UNDECIDED, why="fewer than 2 seeds a model on the largest set")
    target = 1 - min(np.mean([r["metrics"][metric] for r in v.values()]) for v in runs.values())
    fit = {f: _fitter(v, metric, "train_flops") for f, v in runs.items()}

    def ratio(g: dict) -> float:
        return _flops_to_reach(fit["resnet"](g["resnet"]), target) / _flops_to_reach(fit["vit"](g["vit"]), target)

    seeds = {f: list(v) for f, v in runs.items()}
    out.update(target=1 - target, ratio=ratio(seeds), ci95=bootstrap(seeds, ratio, draws=400),
               fits={f: fit[f](v) for f, v in seeds.items()})
    ci = out["ci95"]
    if ci is None:
        return dict(out, verdict=UNDECIDED, why="the power law could not be fitted to most resamples")
    if ci[0] > 1:
        return dict(out, verdict=REPRODUCED, why="the ViT reaches the target accuracy with fewer FLOPs")
    if ci[1] < 1:
        return dict(out, verdict=NOT_REPRODUCED, why="the ResNet reaches the target accuracy with fewer FLOPs")
    return dict(out, verdict=UNDECIDED, why="the interval of the FLOP ratio contains 1")


def figure_data(rows: list[dict], metric: str = METRIC) -> dict[str, Any]:
    """The numbers of vitlib.plots.headline_figure, from the plain runs: `transfer` (Fig. 3/4), {model: [{size,
    values (one a seed, at its best checkpoint), mean, ci95 (Student's t over seeds; None with one seed)}]}; `lead`
    (`leads`: {size: [ResNet minus ViT, a seed]}) with `line`, the least-squares line of `lead_verdict` as the lead
    at `line_sizes`, carried on to the extrapolated `crossover` when the verdict's rule implies one (else None);
    `compute` (Fig. 5), {model: {runs: [{seed, flops, accuracy}] along the runs on the largest set, law: the
    fitted power law as {flops, accuracy} over their range (None when the fit failed)}}."""
    transfer: dict[str, list[dict]] = {}
    for (model, size), g in sorted(group(_plain(rows), "model", "size").items(), key=lambda kv: kv[0][1]):
        values = [r["metrics"][metric] for r in g]
        transfer.setdefault(model, []).append(dict(size=size, values=values, mean=float(np.mean(values)),
                                                   ci95=mean_interval(values)))
    lv = lead_verdict(rows, metric)
    out: dict[str, Any] = dict(metric=metric, transfer=transfer, lead=lv["lead"], line=None, line_sizes=None,
                               crossover=lv["crossover"], compute={})
    if len(lv["lead"]) >= 2:
        sizes = np.geomspace(min(lv["lead"]), max(max(lv["lead"]), lv["crossover"] or 0), 50)
        out.update(line_sizes=sizes.tolist(), line=np.polyval(_line(lv["lead"]), np.log10(sizes)).tolist())
    out["size"], largest = _largest(rows)
    for model in dict.fromkeys(r["model"] for r in largest):
        runs = {r["seed"]: r for r in largest if r["model"] == model}
        curves = [dict(seed=s, flops=[p["train_flops"] for p in r["points"]], accuracy=[p[metric] for p in r["points"]])
                  for s, r in runs.items()]
        try:
            law = _fitter(runs, metric, "train_flops")(runs)
        except (RuntimeError, ValueError):
            law = None
        if law is not None:  # over the checkpoints it was fitted to
            fitted = _curve(list(runs.values()), metric)[0]
            xs = np.geomspace(fitted.min(), fitted.max(), 60)
            law = dict(flops=xs.tolist(), accuracy=(1 - power_law(xs, **law)).tolist())
        out["compute"][model] = dict(runs=curves, law=law)
    return out


def _uniform(rows: list[dict], cfg: dict) -> float:
    """Mean attention distance (pixels) of uniform attention on the ViT's grid."""
    spec = MODELS[_family(rows, "vit")[0]["model"]]
    P = vit_config(spec.create, **spec.overrides).patch_size
    return float(grid_distances(cfg["img_size"] // P, P).mean())


def locality(rows: list[dict], cfg: dict) -> dict[str, Any]:
    """Per ViT run (key): images seen, mean distance per layer (over heads) and local heads per layer (below half
    of uniform attention's distance) at every checkpoint."""
    uniform = _uniform(rows, cfg)
    out = {}
    for r in rows:
        pts = [p for p in r["points"] if p.get("attention_distance")]
        if pts:
            d = np.array([p["attention_distance"] for p in pts])  # (checkpoints, L, heads)
            out[r["key"]] = dict(images=[p["images_seen"] for p in pts], mean=d.mean(-1).tolist(),
                                 local=(d < uniform / 2).sum(-1).tolist(), size=r["size"], seed=r["seed"],
                                 cutmix=bool(r.get("cutmix")))
    return dict(uniform=uniform, runs=out)


def locality_verdict(rows: list[dict], cfg: dict) -> dict[str, Any]:
    """Fig. 7 right at each run's last checkpoint (the design's rule): local heads in layer 1 at the largest size
    in every seed and more than at the smallest; the last layer's distance above the first's (Welch over seeds);
    CutMix's layer-1 distance outside the 95% prediction interval of the plain seeds' (`plain_band`), inside it
    "no change" only when that interval is within LOCALITY_MARGIN of uniform attention's distance."""
    loc = locality(rows, cfg)
    plain = [v for v in loc["runs"].values() if not v["cutmix"]]
    if not plain:
        return dict(loc, verdicts={})
    sizes = sorted({v["size"] for v in plain})
    at = {n: [v for v in plain if v["size"] == n] for n in sizes}
    local = {n: [v["local"][-1][0] for v in at[n]] for n in sizes}
    every = all(x > 0 for x in local[sizes[-1]])
    more = np.mean(local[sizes[-1]]) > np.mean(local[sizes[0]])
    lower = (REPRODUCED if every and more else UNDECIDED if len(at[sizes[-1]]) < 2 else NOT_REPRODUCED)
    rise = welch([v["mean"][-1][-1] for v in at[sizes[-1]]], [v["mean"][-1][0] for v in at[sizes[-1]]], "greater")
    depth = (UNDECIDED if rise["p"] is None else REPRODUCED if rise["p"] < ALPHA else
             NOT_REPRODUCED if rise["diff"] <= 0 else UNDECIDED)
    verdicts = {"lower layers get local heads with enough data": lower, "distance grows with depth": depth}
    cut = [v["mean"][-1][0] for v in loc["runs"].values() if v["cutmix"]]
    band = prediction_interval([v["mean"][-1][0] for v in at[sizes[-1]]])
    if cut:
        outside = band is not None and any(c < band[0] or c > band[1] for c in cut)
        narrow = band is not None and (band[1] - band[0]) / 2 <= LOCALITY_MARGIN * loc["uniform"]
        verdicts["CutMix changes layer 1's distance"] = (REPRODUCED if outside else NOT_REPRODUCED if narrow
                                                         else UNDECIDED)
    return dict(loc, verdicts=verdicts, local=local, rise=rise, plain_band=band)


IN_PROGRESS = "in progress"


def _progress(r: dict, plain: bool = False) -> tuple[int, int]:
    """(runs of the results file's design in its rows, runs of the design); plain: without the CutMix arm."""
    planned = {s["key"] for s in expand(config_from_dict(Config, r["config"])) if not (plain and s["cutmix"])}
    return len(planned & {x["key"] for x in r["rows"]}), len(planned)


def in_progress(r: dict, plain: bool = False) -> str | None:
    """None when every run of the results file's design is in it, else "N of M runs of the design so far": the
    verdicts wait for the whole design (read early, the largest size would be whichever has run). plain: the
    runs without CutMix, which every verdict but CutMix's reads (the arm runs last; its verdict waits for it)."""
    done, planned = _progress(r, plain)
    aside = " (the CutMix arm aside)" if plain else ""
    return None if done == planned else f"{done} of {planned} runs of the design{aside} so far"


def _lead_table(rows: list[dict], metric: str) -> str:
    """The lead (`leads`) per size: each seed's, and their mean with its 95% t interval over seeds."""
    lines = []
    for size, by_seed in leads(rows, metric).items():
        values = list(by_seed.values())
        ci = mean_interval(values)
        why = "one seed" if len(values) < 2 else "no spread"
        lines.append([f"{size:,}", len(values), ", ".join(f"seed {s} {100 * v:+.1f}" for s, v in by_seed.items()),
                      f"{100 * np.mean(values):+.1f} " + (f"({why}: no interval)" if ci is None else
                                                          f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]")])
    return table(["fractals", "seeds", "per seed", "mean [95% interval]"], lines)


def _fits_table(fitted: list[dict]) -> str:
    """`fits` as a table: a, b, c with their intervals, d, the residual, and what is missing or not pinned."""

    def cell(f: dict, k: str, fmt: Callable[[float], str], unit: str = "") -> str:
        return fmt(f["fit"][k]) + unit + (
            "" if f["ci95"] is None else f" [{fmt(f['ci95'][k][0])}, {fmt(f['ci95'][k][1])}]")

    lines = []
    for f in fitted:
        head = [f["model"], f["axis"], len(f["seeds"]), f["checkpoints"]]
        if f["fit"] is None:
            lines.append(head + ["-"] * 5 + [f["note"]])
            continue
        notes = [f["note"]] * bool(f["note"]) + [f"{k} at its bound {round(f['fit'][k])}" for k in f["bounds"]]
        lines.append(head + [cell(f, "a", lambda v: f"{v:.3g}"), cell(f, "b", lambda v: f"{v:.2f}"),
                             cell(f, "c", lambda v: f"{100 * v:.1f}", "%"), f"{f['fit']['d']:.3g}",
                             f"{100 * f['rms']:.1f} points", "; ".join(notes) or "-"])
    return table(["model", "against", "seeds", "checkpoints", "a", "b", "c (error floor)", "d", "rms residual",
                  "note"], lines)


def _crossover(lv: dict) -> str:
    """The extrapolated crossover of `lead_verdict` in words (the design's rule), "" without a fitted slope."""
    if lv["slope"] is None:
        return ""
    if lv.get("crossover"):
        ci = lv.get("crossover_ci95")
        return (f"; the fitted lead reaches 0 at about {lv['crossover']:.2g} fractals"
                + (" (no interval)" if ci is None else f" [95% interval {ci[0]:.2g}, {ci[1]:.2g}]"))
    if lv["ci95"] is None:
        return "; crossover not read (one seed: no interval for the slope)"
    return "; no crossover implied (the slope's interval reaches 0)"


def _locality_details(loc: dict) -> dict[str, str]:
    """The numbers behind each verdict of `locality_verdict`, in words."""
    local = loc["local"]
    by_seed = "; ".join(f"{n:,} fractals {', '.join(map(str, local[n]))}" for n in (max(local), min(local)))
    rise, band = loc["rise"], loc["plain_band"]
    cut = [v["mean"][-1][0] for v in loc["runs"].values() if v["cutmix"]]
    return {"lower layers get local heads with enough data": f"local heads in layer 1, a seed: {by_seed}; local: "
            f"below {loc['uniform'] / 2:.1f} px, half of uniform attention's",
            "distance grows with depth": f"last layer minus first at {max(local):,} fractals {rise['diff']:+.1f} px"
            + ("" if rise["p"] is None else f", Welch's t one-sided p = {rise['p']:.2g}"),
            "CutMix changes layer 1's distance": "layer 1 with CutMix " + ", ".join(f"{c:.1f} px" for c in cut)
            + ("" if band is None else f"; a new plain run's 95% prediction interval {band[0]:.1f}-{band[1]:.1f} px, "
               f"\"no change\" needs it within +-{LOCALITY_MARGIN * loc['uniform']:.1f} px of their mean")}


def render(r: dict, p: dict) -> str:
    """figures/scaling_curves*.json: each (model, size) at its best checkpoint over seeds, the ResNet's lead by
    size with its interval, the power laws of the runs on the largest set (`fits`), and the verdicts of the
    design (Fig. 3/4, Fig. 5, Fig. 7 right). While the design is in progress the tables hold the rows so far,
    labelled so, and the verdicts wait."""
    rows = r["rows"]
    waiting = in_progress(r)
    so_far = "" if not waiting else " so far ({} of {} runs)".format(*_progress(r))
    shots = f"{METRIC.removesuffix('shot')}-shot"
    lines = []
    arms = group([dict(x, cutmix=bool(x.get("cutmix"))) for x in rows], "model", "size", "cutmix")  # pilot: no arm
    for (model, size, cutmix), g in arms.items():
        lines.append([model + (" + CutMix" if cutmix else ""), f"{size:,}", len(g),
                      acc_ci(seed_mean(g, "val_accuracy", "val_n")), acc_ci(seed_mean(g, "5shot", "probe_n")),
                      acc_ci(seed_mean(g, METRIC, "probe_n")),
                      f"{sum(x['metrics']['plateau'] for x in g)} of {len(g)}",
                      ", ".join(f"{x['metrics']['best_images']:,}" for x in g)])
    text = f"Each model and size at its best-validation checkpoint, over seeds{so_far}:\n\n" + table(
        ["model", "fractals", "seeds", "held-out (best)", "5-shot", "10-shot", "at plateau", "images at best"], lines)
    text += (f"\n\nThe ResNet's {shots} lead over the ViT (points, ResNet minus ViT paired by seed; the mean's 95% "
             f"interval is Student's t over seeds){so_far}:\n\n" + _lead_table(rows, METRIC))
    fitted = fits(rows, METRIC)
    if fitted:
        text += (f"\n\nThe saturating power law `E = a (x + d)^(-b) + c` (Zhai et al. 2021) fitted to the {shots} "
                 f"error (1 - accuracy) at the checkpoints of each model's runs on {fitted[0]['size']:,} fractals "
                 f"from each run's worst on (the design's amendment)"
                 f"{so_far}, x images seen or training FLOPs; 95% intervals from a bootstrap over seeds (runs "
                 "resampled with replacement, refitted). c is the error the law tends to; within a model the FLOPs "
                 "are a constant times the images seen, so b and c agree on both axes; a parameter at a bound of "
                 "the fit (b in [0, 3], c in [0, 1]) is not pinned by the checkpoints:\n\n" + _fits_table(fitted))
    if in_progress(r, plain=True):
        return text + f"\n\nThe verdicts (Fig. 3/4, Fig. 5, Fig. 7 right): **{IN_PROGRESS}** ({waiting})."
    lv, cv = lead_verdict(rows), compute_verdict(rows)
    slope = "" if lv["slope"] is None else f"; slope {100 * lv['slope']:+.1f} points per decade" + (
        "" if lv["ci95"] is None else f" [{100 * lv['ci95'][0]:+.1f}, {100 * lv['ci95'][1]:+.1f}]")
    sizes = sorted(lv["lead"])
    test = "" if not lv["test"] or lv["test"]["p"] is None else (
        f"; Welch's t, {sizes[-1]:,} against {sizes[0]:,} fractals, one-sided p = {lv['test']['p']:.2g}")
    text += (f"\n\nFig. 3/4, the ResNet's lead shrinks as the data grow: **{lv['verdict']}** ({lv['why']}"
             f"{test}{slope}{_crossover(lv)}).")
    ratio = "" if cv["ratio"] is None else (
        f"; to reach {pct(cv['target'])} {shots} accuracy, the lower of the two models' bests on {cv['size']:,} "
        f"fractals, FLOP ratio ResNet / ViT {cv['ratio']:.2g}") + (
        "" if cv["ci95"] is None else f" [{cv['ci95'][0]:.2g}, {cv['ci95'][1]:.2g}]")
    text += f"\n\nFig. 5, ViT the better deal per unit of compute: **{cv['verdict']}** ({cv['why']}{ratio})."
    loc = locality_verdict(rows, r["config"])
    if loc["verdicts"]:
        arm = "" if not waiting or any(x.get("cutmix") for x in rows) else (
            f"; CutMix changes layer 1's distance **{IN_PROGRESS}** ({waiting})")
        details = _locality_details(loc)
        text += "\n\nFig. 7 right, locality at the last checkpoint: " + "; ".join(
            f"{k} **{v}** ({details[k]})" for k, v in loc["verdicts"].items()) + arm + "."
    return text + _capped(rows, r["config"])


def _capped(rows: list[dict], cfg: dict) -> str:
    """What the plain runs stopped by the cap (`plateau: false`) mean for the verdicts, "" when none was."""
    runs = group(_plain(rows), "model", "size")
    capped = {k: n for k, g in runs.items() if (n := sum(not x["metrics"]["plateau"] for x in g))}
    if not capped:
        return ""
    vit_larger = {MODELS[m].family == "vit" and size > min(s for _, s in runs) for m, size in capped}
    return (f"\n\nStopped by the cap of {cfg['images_per_run']:,} images while still improving (`plateau: false`): "
            + ", ".join(f"{m} on {size:,} fractals ({n} of {len(runs[m, size])})" for (m, size), n in capped.items())
            + ". Their points are lower bounds for that model: where it is the ViT, the ResNet's lead there is an "
            "upper bound" + (" (only the ViT is capped, and only on the larger sets: a shrinking lead is understated "
                             "by the cap, not made by it)" if vit_larger == {True} else "")
            + "; the fits and the locality verdicts read the budget's end, not a plateau.")


def claims(r: dict, stem: str) -> list[list[str]]:
    """The README's claims-table rows of this study."""
    lv, cv = lead_verdict(r["rows"]), compute_verdict(r["rows"])
    waiting = in_progress(r, plain=True)
    if waiting:
        lv, cv = dict(lv, verdict=f"{IN_PROGRESS}: {waiting}"), dict(cv, verdict=f"{IN_PROGRESS}: {waiting}")
    lead = ", ".join(f"{100 * np.mean(v):+.1f} at {n:,}" for n, v in lv["lead"].items())
    return [["The ResNet's lead shrinks as pre-training data grow (Fig. 3/4), every run to its plateau",
             "crossover at 30M-90M images", f"ResNet lead, 10-shot points: {lead}", lv["verdict"],
             f"notebook 05, RESULTS.md (`{stem}`)"],
            ["ViT is the better deal per unit of compute (Fig. 5), along the runs", "2-4x less compute",
             "-" if cv["ratio"] is None else f"FLOP ratio ResNet / ViT {cv['ratio']:.2g}", cv["verdict"],
             f"notebook 05, RESULTS.md (`{stem}`)"]] + _locality_claim(r, stem, waiting)


def _locality_claim(r: dict, stem: str, waiting: str | None) -> list[list[str]]:
    """The README's claims-table row of Fig. 7 right along the runs (none before a ViT run has distances)."""
    loc = locality_verdict(r["rows"], r["config"])
    if not loc["verdicts"]:
        return []
    size = max(loc["local"])
    v = loc["verdicts"]
    verdict = (f"{IN_PROGRESS}: {waiting}" if waiting else
               f"local heads {v['lower layers get local heads with enough data']}; "
               f"distance grows with depth {v['distance grows with depth']}")
    return [["With enough data some heads of the lowest layers attend locally; distance grows with depth "
             "(Fig. 7 right), along the runs", "ViT-L/16 on JFT-300M",
             f"local heads in layer 1 at {size:,} fractals, a seed: {', '.join(map(str, loc['local'][size]))}; "
             f"last layer minus first {loc['rise']['diff']:+.1f} px", verdict, f"notebook 05, RESULTS.md (`{stem}`)"]]


# results file -> (RESULTS.md section title, renderer; None: its scalars)
RESULTS = {
    "scaling_curves_pilot": ("The headline's pilot: learning curves to the plateau, ViT against ResNet "
                             "(`python -m vitlib experiment scaling_curves --profile pilot`)", render),
    "scaling_curves": ("Fig. 3/4 and 5, every run to its plateau (`python -m vitlib experiment scaling_curves "
                       "--profile full`)", render),
    "fig345_headline": ("Fig. 3/4 and 5 from the headline's runs, the lead and the fitted laws (notebook 05)",
                        lambda r, p: "Drawn from figures/scaling_curves.json by `figure_data`; the verdicts and "
                                     "their numbers are in the section above."),
}

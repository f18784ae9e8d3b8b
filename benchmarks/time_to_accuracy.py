"""Time to accuracy on Fashion-MNIST: how many minutes of a CPU a ViT needs to reach 85% and 90% test accuracy,
from scratch and from the shipped model, beside the ResNet of the scaling study, and what each element of the
small-data recipe (vitlib.train.small_data_recipe, beyond the paper) buys.

Every run trains through the library's loop (`vitlib.train.train`) on the 60,000 training images for the same
wall-clock budget: the schedule (warm-up and cosine) follows the clock (`TrainConfig.budget_s`) and the run ends
when `--budget-s` seconds of training are spent, whatever the machine's speed does meanwhile (a CPU in the cloud
can change speed by half within a run); a few timed steps (`vitlib.cli.training.measure`) place the evaluations of
the test set (10,000 images) along the steps the budget should hold (`eval_steps`: evenly spaced, with log-spaced
ones before the first; the end is always evaluated). Rows made before the schedule followed the clock
(`sized_by` "measurement") had their steps sized from those timed steps, and ended early or late when the machine's
speed changed. Each point
records the images seen, the seconds of training so far (evaluations excluded) and the seconds the evaluation
took, which are timed apart. Nothing is chosen on the test set: the curve is read, and its first crossing of 85%
and 90% is the time to accuracy (as DAWNBench measures it).

Arms (`--arms`; the default runs the first ten):
    vit-scratch          (a) the ViT (`--vit`, `--layers`) from scratch, the small-data recipe
    vit-shipped          (b) the shipped fractal model (vitlib/weights) with a new head, the same recipe: the same
                         recipe as (a), so that the starting weights are the one difference
    resnet               (c) the scaling study's BiT-R26x1 w32 (vitlib.experiments.protocol.MODELS), the same recipe
                         with BiT's own augmentation (random resized crops and flips)
    no-augmentation ... fp32   the ViT from scratch with one element of the recipe removed (ARMS says which)
    crop-flip, gap, mixup, cutmix, patch-7
                         the recipe with one element changed or added, run when asked for by name
    vit-shipped-crop-flip      (b) with random resized crops and flips, as (b) was run before the recipe dropped
                         the crop (vitlib.train.small_data_recipe says why)
    vit-shipped-paper-recipe   (b) with the paper's fine-tuning recipe (SGD 0.03, no weight decay) at --batch-size

    python benchmarks/time_to_accuracy.py --out figures/time_to_accuracy.json
    python benchmarks/time_to_accuracy.py --arms vit-scratch resnet --seeds 0 --budget-s 300 --out /tmp/t.json
    python benchmarks/time_to_accuracy.py --smoke --out /tmp/t_smoke.json     # every arm, tiny: every code path

Runs already in the results file (the same arm and seed on the same kind of CPU) are not run again, so an interrupted
benchmark continues where it stopped; a file made with another set-up (resolution, model, budget) is refused. The
machine's load is recorded before and after each run: a time is only a time on a quiet machine, and only comparable
on the same kind of CPU (vitlib.records.cpu_model: its model and whether it multiplies bf16 natively), so a run is
keyed by arm, seed and CPU kind. RESULTS.md renders the file (vitlib.results.render_time_to_accuracy), comparing
runs of one kind only.

How long: each run is --budget-s of training, plus its evaluations (--evals + 3 passes over the test set), plus
the set-up and the speed measurement (seconds); the default, ten arms x two seeds, is twenty runs, so at least
twenty times --budget-s. Split it with --arms (the three arms first, the ablations after): the file collects them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

import vitlib
from vitlib import records
from vitlib.cli.training import CLOCK_STEPS, measure, planned_steps
from vitlib.data import AUGMENTATIONS, get_dataset, subset
from vitlib.experiments.protocol import build_model, vit_name
from vitlib.experiments.runner import load_rows
from vitlib.finetune import load_pretrained, prepare_finetune
from vitlib.flops import count_parameters
from vitlib.records import machine_load, provenance, save_results
from vitlib.results import TIME_TO_ACCURACY_GOAL
from vitlib.train import (
    RECIPE_AUGMENTATION,
    TrainConfig,
    finetune_recipe,
    resolve_device,
    resolve_precision,
    small_data_recipe,
    train,
)

TARGETS = (0.85, 0.90)  # the test accuracies whose first crossing is timed
BASELINE = "vit-scratch"  # the arm the ablations remove an element from
RESNET = "BiT-R26x1 w32"  # the scaling study's ResNet
GUARD = 1.25  # an --images run stops at its first evaluation past GUARD x the budget (a machine that slowed down)


@dataclass(frozen=True)
class Arm:
    """One arm: where its model starts and what it changes from the small-data recipe: TrainConfig fields
    (`train`), the training set's augmentation (`augment`, a vitlib.data.AUGMENTATIONS name; None: the recipe's,
    vitlib.train.RECIPE_AUGMENTATION), ViTConfig fields (`model`). An ablation names the `element` of the recipe
    it removes (`removes`) or adds (not `removes`)."""

    start: str  # "scratch": a new ViT; "shipped": the shipped fractal model with a new head; "resnet"
    train: dict[str, Any] = field(default_factory=dict)
    augment: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    recipe: str = "small-data"  # or "finetune": the paper's fine-tuning recipe (Appendix B.1.1)
    element: str | None = None
    removes: bool = True

    @property
    def augmentation(self) -> str:
        """The training set's augmentation: the arm's, or else its recipe's (a vitlib.data.AUGMENTATIONS name)."""
        return self.augment or RECIPE_AUGMENTATION[self.recipe]


ARMS: dict[str, Arm] = {
    "vit-scratch": Arm("scratch"),
    "vit-shipped": Arm("shipped"),
    "resnet": Arm("resnet", augment="crop-flip"),  # BiT's own: random crops and flips (Kolesnikov et al. 2020)
    "no-augmentation": Arm("scratch", augment="none", element="horizontal flips (the recipe's augmentation)"),
    "no-label-smoothing": Arm("scratch", train=dict(label_smoothing=0.0), element="label smoothing 0.1"),
    "no-weight-decay": Arm("scratch", train=dict(weight_decay=0.0), element="weight decay 0.05"),
    "constant-lr": Arm("scratch", train=dict(schedule="constant"), element="cosine decay (constant LR instead)"),
    "no-warmup": Arm("scratch", train=dict(warmup_steps=0), element="linear warm-up"),
    "no-grad-clip": Arm("scratch", train=dict(grad_clip=None), element="gradient clipping at norm 1"),
    "fp32": Arm("scratch", train=dict(precision="fp32"), element="precision 'auto' (bf16 where native)"),
    # run when asked for by name
    "crop-flip": Arm("scratch", augment="crop-flip", element="random resized crop (35-100% of the area)",
                     removes=False),
    "gap": Arm("scratch", model=dict(pool="gap"), element="global average pooling (instead of the class token)",
               removes=False),
    "mixup": Arm("scratch", train=dict(mixup_alpha=0.2), element="mixup 0.2", removes=False),
    "cutmix": Arm("scratch", train=dict(cutmix_alpha=1.0), element="CutMix 1.0", removes=False),
    # 16 patches of 7 x 7 instead of 49 of 4 x 4: about 3x the images per second, each seen coarser
    "patch-7": Arm("scratch", model=dict(patch_size=7), element="patch size 4 (the arm: 7)"),
    "vit-shipped-crop-flip": Arm("shipped", augment="crop-flip"),  # (b) as it was run before the crop was dropped
    "vit-shipped-paper-recipe": Arm("shipped", recipe="finetune"),
}
DEFAULT_ARMS = list(ARMS)[:10]
# --smoke: a tiny ViT and ResNet, a few hundred images, a few steps of a small batch, few evaluations
SMOKE = dict(vit=dict(num_layers=1, hidden_size=32, num_heads=2, mlp_size=64), resnet="BiT-R w32 tiny",
             n_train=256, n_test=128, batch_size=16, images=96, evals=3)


class _Clocked(Dataset):
    """The test set, noting when each pass over it begins (evaluation reads it in order, from index 0), so that the
    evaluations are timed apart from the training around them."""

    def __init__(self, data: Dataset) -> None:
        self.data, self.started = data, 0.0

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, indices: list[int]) -> list:
        if indices[0] == 0:
            self.started = time.perf_counter()
        return self.data.__getitems__(indices)

    def __getitem__(self, i: int):
        return self.data[i]


def eval_steps(steps: int, regular: int) -> tuple[int, ...]:
    """Where the test set is evaluated besides the end of the run: `regular` evenly spaced points (the last is the
    end), and before the first of them three log-spaced ones (halving), so that the early curve has points too.

    >>> eval_steps(1200, 6)
    (25, 50, 100, 200, 400, 600, 800, 1000)
    >>> eval_steps(6, 3)
    (1, 2, 4)
    """
    first = steps / regular
    points = {round(first * k) for k in range(1, regular)} | {round(first / 2**k) for k in range(1, 4)}
    return tuple(sorted(p for p in points if 1 <= p < steps))


def reached(points: list[dict], target: float) -> float | None:
    """The training seconds of the first point at or above `target` test accuracy; None if none is."""
    return next((p["train_seconds"] for p in points if p["test_accuracy"] >= target), None)


def build(arm: Arm, args: argparse.Namespace, num_classes: int) -> tuple[torch.nn.Module, str, str]:
    """(model, its name, its family) of an arm, initialised under the current torch seed."""
    if arm.start == "resnet":
        name = SMOKE["resnet"] if args.smoke else RESNET
        return build_model(name, args.img_size, num_classes), name, "resnet"
    if arm.start == "shipped":
        model = prepare_finetune(load_pretrained(""), num_classes, img_size=args.img_size)
        return model, f"{vit_name(model)} (shipped, fractal pre-training)", "vit"
    shape = SMOKE["vit"] if args.smoke else dict(num_layers=args.layers)
    model = vitlib.create_model(args.vit, img_size=args.img_size, num_classes=num_classes, **shape, **arm.model)
    pool = " GAP" if model.cfg.pool == "gap" else ""
    return model, vit_name(model) + pool + (" (smoke)" if args.smoke else ""), "vit"


def recipe(arm: Arm, **fields: Any) -> TrainConfig:
    """The arm's TrainConfig: its recipe with its changes and `fields` (steps, batch, seed, evaluations)."""
    make = finetune_recipe if arm.recipe == "finetune" else small_data_recipe
    return make(**{**fields, **arm.train})


def run(name: str, seed: int, args: argparse.Namespace, data: dict[str, Dataset]) -> dict[str, Any]:
    """One arm and seed: train for the budget, evaluating the test set along the way; the row of the results."""
    arm = ARMS[name]
    t_setup = time.perf_counter()
    train_set = data["train"][arm.augmentation]
    torch.manual_seed(seed)
    model, model_name, family = build(arm, args, data["num_classes"])
    batch = args.batch_size
    fields = dict(batch_size=batch, seed=seed, progress=False, device=args.device)
    rate = None
    if args.images is not None:
        steps = cap = max(args.images // batch, 1)
    else:  # the schedule follows the clock (budget_s); the measured speed places the evaluations
        rate, _ = measure(model, train_set, recipe(arm, steps=100, **fields))
        steps = planned_steps(args.budget_s, rate, batch)
        cap = CLOCK_STEPS * steps
        fields.update(budget_s=args.budget_s)
    cfg = recipe(arm, steps=cap, eval_steps=eval_steps(steps, args.evals), log_every=max(steps // 50, 1), **fields)
    test = _Clocked(data["test"])
    points: list[dict] = []
    clock = dict(evaluating=0.0, guard=False)  # seconds spent evaluating so far; whether the guard stopped it
    guard = args.budget_s * GUARD

    def on_eval(step: int, res: dict[str, float]) -> bool:
        now = time.perf_counter()
        seconds = test.started - t0 - clock["evaluating"]
        points.append(dict(step=step, images_seen=step * batch, train_seconds=round(seconds, 2),
                           eval_seconds=round(now - test.started, 2), test_accuracy=res["accuracy"],
                           test_loss=res["loss"], test_n=res["n"]))
        clock["evaluating"] += now - test.started
        clock["guard"] = args.images is not None and seconds > guard  # on the clock, the clock ends the run
        return clock["guard"]

    load_before = machine_load()
    setup_seconds = time.perf_counter() - t_setup
    t0 = time.perf_counter()
    train(model, train_set, cfg, val_set=test, on_eval=on_eval)
    wall = time.perf_counter() - t0
    load_after = machine_load()
    made = provenance()
    accs = [p["test_accuracy"] for p in points]
    return dict(
        key=run_key(name, seed, made["cpu"]), arm=name, seed=seed, start=arm.start, model=model_name, family=family,
        params=count_parameters(model), img_size=args.img_size, recipe_name=arm.recipe,
        recipe=json.loads(json.dumps(dataclasses.asdict(cfg))), augmentation=arm.augmentation,
        data_options=json.loads(json.dumps(AUGMENTATIONS[arm.augmentation])),
        model_options=dict(arm.model), ablation=None if arm.element is None else
        dict(of=BASELINE, element=arm.element, removes=arm.removes),
        precision_used=resolve_precision(cfg.precision, resolve_device(cfg.device)), images_per_s_measured=rate,
        planned_steps=steps, images_seen=points[-1]["images_seen"], points=points,
        reached_s={f"{t:g}": reached(points, t) for t in TARGETS}, final_test_accuracy=accs[-1],
        best_test_accuracy=max(accs), train_seconds=points[-1]["train_seconds"],
        eval_seconds=round(clock["evaluating"], 2), wall_seconds=round(wall, 2),
        setup_seconds=round(setup_seconds, 2), stopped_by_guard=clock["guard"],
        sized_by="images" if args.images is not None else "clock",
        load=dict(before=load_before, after=load_after, quiet=load_before["quiet"] and load_after["quiet"]),
        date=made["date"], git_commit=made["git_commit"], device=made["device"], cpu=made["cpu"])


def run_key(arm: str, seed: int, cpu: str) -> str:
    """A run's key in the results file: its arm, seed and kind of CPU (times compare on one kind only)."""
    return f"{arm}/seed{seed}/{cpu}"


def summary(rows: list[dict]) -> dict[str, dict]:
    """Per kind of CPU, per arm: its seeds, and for each target the training seconds at which each seed first
    reached it (None: never), in seed order."""
    out: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        arm = out.setdefault(row["cpu"], {}).setdefault(row["arm"], dict(seeds=[], reached_s={f"{t:g}": [] for t in
                                                                                              TARGETS}))
        arm["seeds"].append(row["seed"])
        for t, s in row["reached_s"].items():
            arm["reached_s"].setdefault(t, []).append(s)
    return out


def load_data(args: argparse.Namespace, arms: list[str]) -> dict[str, Any]:
    """The test set and the training sets the arms need, one per augmentation (all 60,000 training images: no
    validation split is carved, as nothing is chosen); --smoke: a few hundred of each."""
    kw = dict(in_chans=3, val_fraction=0.0)
    small = (lambda d, n: subset(d, SMOKE[n], seed=0)) if args.smoke else (lambda d, n: d)
    test = get_dataset("fashion_mnist", "test", args.img_size, **kw)
    train = {aug: small(get_dataset("fashion_mnist", "train", args.img_size, **kw, **AUGMENTATIONS[aug]), "n_train")
             for aug in sorted({ARMS[name].augmentation for name in arms})}
    return dict(train=train, test=small(test, "n_test"), num_classes=test.num_classes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags (--smoke sets the batch, the images per run and the evaluations of a tiny run)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", nargs="+", default=DEFAULT_ARMS, choices=list(ARMS), metavar="ARM",
                    help=f"arms to run (default: {' '.join(DEFAULT_ARMS)}; also: "
                         f"{' '.join(a for a in ARMS if a not in DEFAULT_ARMS)})")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds (default 0 1)")
    ap.add_argument("--budget-s", type=float, default=float(TIME_TO_ACCURACY_GOAL[1]),
                    help="seconds of training per run, evaluations excluded: the schedule follows the clock and "
                         f"ends with them (default {TIME_TO_ACCURACY_GOAL[1]}); with --images, a run stops at its "
                         f"first evaluation past {GUARD} x the budget")
    ap.add_argument("--images", type=int, help="images per run instead: a schedule in steps, reproducible "
                    "(the budget's stop still applies)")
    ap.add_argument("--vit", default="ViT-Ti/4", help="the ViT of the scratch arms, a vitlib name (default ViT-Ti/4)")
    ap.add_argument("--layers", type=int, default=6, help="its depth L (default 6, the shipped model's)")
    ap.add_argument("--img-size", type=int, default=28, help="resolution H = W of every arm (default 28, "
                    "Fashion-MNIST's own; the shipped model's E_pos is resampled to it)")
    ap.add_argument("--batch-size", type=int, default=small_data_recipe().batch_size,
                    help=f"batch size of every arm (default {small_data_recipe().batch_size}, the recipe's)")
    ap.add_argument("--evals", type=int, default=10, help="evenly spaced test evaluations per run (default 10; "
                    "three log-spaced ones come before the first)")
    ap.add_argument("--device", default="auto", help="'auto' (default), 'cpu', 'cuda'")
    ap.add_argument("--out", type=Path, default=Path("figures/time_to_accuracy.json"),
                    help="results file (default figures/time_to_accuracy.json); runs already there are skipped")
    ap.add_argument("--smoke", action="store_true", help="a tiny ViT and ResNet, a few hundred images, a few steps")
    args = ap.parse_args(argv)
    if args.evals < 1 or args.budget_s <= 0 or (args.images is not None and args.images < 1):
        ap.error("--evals and --images must be >= 1, --budget-s > 0")
    if args.smoke:
        args.batch_size, args.evals = SMOKE["batch_size"], SMOKE["evals"]
        args.images = args.images or SMOKE["images"]
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the arms and seeds missing from --out, rewriting the file after each; the rows of the file."""
    args = parse_args(argv)
    setup = dict(dataset="fashion_mnist", img_size=args.img_size, vit=args.vit, layers=args.layers,
                 budget_s=args.budget_s, images=args.images, batch_size=args.batch_size, evals=args.evals,
                 smoke=args.smoke)
    out = args.out.with_suffix(".json")
    rows = load_rows(out)
    if rows:
        old = json.loads(out.read_text())["results"]["setup"]
        if old != setup:
            sys.exit(f"time_to_accuracy: {out} holds runs of another set-up ({old}); this one is {setup}: pass "
                     "another --out")
    done, cpu = {r["key"] for r in rows}, records.cpu_model()  # the kind a row records (provenance)
    todo = [(a, s) for s in args.seeds for a in args.arms if run_key(a, s, cpu) not in done]
    print(f"time_to_accuracy: {len(todo)} runs to do, {len(args.seeds) * len(args.arms) - len(todo)} already in "
          f"{out} on this kind of CPU ({cpu})", file=sys.stderr, flush=True)
    data = load_data(args, args.arms) if todo else {}
    command = " ".join(["python benchmarks/time_to_accuracy.py", *(sys.argv[1:] if argv is None else argv)])
    for arm, seed in todo:
        row = run(arm, seed, args, data)
        rows.append(row)
        results = dict(setup=setup, targets=list(TARGETS), baseline=BASELINE,
                       n_train=len(next(iter(data["train"].values()))), n_test=len(data["test"]), rows=rows,
                       arms=summary(rows))
        save_results(out, results, command, seconds=sum(r["wall_seconds"] + r["setup_seconds"] for r in rows))
        times = ", ".join(f"{100 * float(t):.0f}% " + (f"at {s / 60:.1f} min" if s is not None else "never")
                          for t, s in row["reached_s"].items())
        print(f"{arm} seed {seed}: {row['model']}, {row['images_seen']:,} images in {row['train_seconds'] / 60:.1f} "
              f"min (+{row['eval_seconds']:.0f} s evaluating): test accuracy {row['final_test_accuracy']:.4f} "
              f"(best {row['best_test_accuracy']:.4f}); {times}; quiet {row['load']['quiet']}", flush=True)
    return rows


if __name__ == "__main__":
    main()

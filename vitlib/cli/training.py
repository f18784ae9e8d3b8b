"""The training commands: `vitlib pretrain`, `vitlib finetune`, `vitlib evaluate`.

They call the functions the notebooks call (vitlib.pretrain, vitlib.finetune, vitlib.train): flags become a
TrainConfig (unset flags keep the recipe's or the profile's value), and before a run starts it prints the images
it will see and how long it will take, measured by running `vitlib.train.train` for a few steps (`measure`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import inspect
import json
import math
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from .. import pretrain
from ..checkpoints import CheckpointError, checkpoint_meta, latest_checkpoint, load_model
from ..config import TrainConfig, vit_config
from ..data import AUGMENTATIONS, NAMES, OFFLINE, DatasetNotFoundError, get_dataset
from ..finetune import from_scratch, load_pretrained, prepare_finetune
from ..resnet import parse_resnet_name
from ..train import (
    RECIPE_AUGMENTATION,
    NonFiniteLossError,
    evaluate,
    finetune_recipe,
    pretrain_recipe,
    resolve_device,
    resolve_precision,
    small_data_recipe,
    train,
)
from .errors import EXPECTED, UsageError, at_least, blame, device_or_auto

CPU_FINETUNE_BATCH = 32  # fine-tuning batch by default, for a CPU; the paper's (finetune_recipe's) is --paper-batch
ESTIMATE_STEPS = 10  # timed steps of the time estimate, after an untimed one (3 missed a 30-minute run by 8-10%)
CPU_ESTIMATE_BATCH = 128  # the time estimate's batch on a CPU at most (the run's own batch, where smaller)
# a run on the clock (--minutes, TrainConfig.budget_s) may take this many times the steps its measured speed fills
# the budget with (TrainConfig.steps, its cap and the scale of its warm-up): room for a machine that speeds up
CLOCK_STEPS = 3
DOWNLOADABLE = tuple(n for n in NAMES if n not in OFFLINE and n != "imagefolder")  # torchvision's
# the TrainConfig fields with a flag
TRAIN_FIELDS = ("steps", "batch_size", "lr", "warmup_steps", "weight_decay", "schedule", "grad_clip",
                "label_smoothing", "mixup_alpha", "cutmix_alpha", "precision", "compile", "device", "seed",
                "num_workers", "data_on_device", "eval_every", "log_every", "checkpoint_every", "progress")


# --- flags ---------------------------------------------------------------------------------------------------------
def add_commands(sub) -> None:
    """The pretrain, finetune and evaluate commands."""
    p = sub.add_parser("pretrain", help="pre-train a model (Adam, wd 0.1, warm-up + linear decay; Appendix B.1)",
                       description="Pre-train with vitlib.train.pretrain_recipe on a vitlib.data dataset. "
                                   "Example: vitlib pretrain --profile full --out-dir runs/vit_ti4. "
                                   "Under torchrun the same command runs with DistributedDataParallel. Before it "
                                   "starts it prints the images it will see and a time estimate from a couple of "
                                   "timed steps.")
    p.add_argument("--profile", choices=list(pretrain.PROFILES), default="smoke",
                   help="sizes from vitlib.pretrain.PROFILES: smoke (seconds) or full (the shipped model; its run "
                        "time is in RESULTS.md)")
    p.add_argument("--export", metavar="PATH", help="at the end, also write the final weights without optimizer "
                   "state to PATH.safetensors + PATH.json with provenance (how the shipped model is made: "
                   "--export vitlib/weights/vit_ti4_fractal32)")
    p.add_argument("--model", help="model name, e.g. ViT-Ti/4, ViT-S/8, BiT-R26x1 (default: the profile's)")
    p.add_argument("--dataset", choices=NAMES, metavar="NAME",
                   help=f"vitlib.data name (default: fractaldb): {', '.join(NAMES)}")
    p.add_argument("--img-size", type=at_least(1), help="input resolution H = W (default 32)")
    p.add_argument("--in-chans", type=int, choices=[1, 3], help="input channels C (default 3)")
    _add_fractaldb_flags(p)
    _add_data_flags(p)
    _add_train_flags(p, "the profile's", pretrain_recipe().batch_size)
    p.set_defaults(func=run_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a vitlib checkpoint (SGD 0.9, clip 1, cosine; Appendix B.1.1)",
                       description="Fine-tune a checkpoint with vitlib.train.finetune_recipe. Before it starts it "
                                   "prints the images it will see and a time estimate from a couple of timed steps.")
    p.add_argument("--checkpoint", default="", help="a vitlib checkpoint (NAME.safetensors + NAME.json), an official "
                   "JAX .npz or a timm weights file (default: the shipped vitlib/weights/vit_ti4_fractal32)")
    p.add_argument("--dataset", required=True, choices=NAMES, metavar="NAME",
                   help=f"vitlib.data name: {', '.join(NAMES)}")
    p.add_argument("--img-size", type=at_least(1), required=True, help="input resolution H = W (higher than "
                   "pre-training: E_pos is 2D-interpolated, Section 3.2)")
    p.add_argument("--linear-probe", action="store_true", help="freeze the backbone, train only the new head")
    p.add_argument("--from-scratch", action="store_true", help="train the --checkpoint's architecture from a random "
                   "initialisation, none of its weights (the baseline of fine-tuning; with the default checkpoint, "
                   "the ViT-Ti/4 L=6 of benchmarks/time_to_accuracy.py's scratch arms)")
    p.add_argument("--augment", choices=list(AUGMENTATIONS),
                   help="the training images' augmentation (vitlib.data.AUGMENTATIONS): crop-flip (random resized "
                        "crops and horizontal flips), flip (flips only), none (the images as they are); default: the "
                        "recipe's: " + ", ".join(f"{a} with --recipe {r}" for r, a in RECIPE_AUGMENTATION.items()))
    p.add_argument("--recipe", choices=["finetune", "small-data"], default="finetune",
                   help="finetune (default): the paper's fine-tuning recipe, at a batch of "
                        f"{CPU_FINETUNE_BATCH}; small-data: vitlib.train.small_data_recipe, beyond the paper (AdamW, "
                        f"weight decay, label smoothing, cosine; batch {small_data_recipe().batch_size}), for a small "
                        "ViT on a small dataset")
    val_fraction = inspect.signature(get_dataset).parameters["val_fraction"].default
    p.add_argument("--val-fraction", type=float, default=val_fraction, help="the share of each class's training "
                   f"images held out for validation (default {val_fraction}; 0: train on all of them, validate "
                   "nothing)")
    p.add_argument("--minutes", type=at_least(0.01, float), help="train for this many minutes (evaluation "
                   "excluded): the recipe's warm-up and decay follow the clock and end with them, as in "
                   "benchmarks/time_to_accuracy.py; instead of --steps; one process only (not under torchrun)")
    _add_data_flags(p)
    _add_train_flags(p, str(CPU_FINETUNE_BATCH), finetune_recipe().batch_size)
    p.set_defaults(func=run_finetune)

    p = sub.add_parser("evaluate", help="loss and accuracy of a checkpoint on a dataset split",
                       description="Evaluate a vitlib checkpoint; prints JSON {loss, accuracy, n}.")
    p.add_argument("--checkpoint", required=True, help="a vitlib checkpoint: NAME, NAME.safetensors, NAME.json, "
                   "or the --out-dir of a run (its newest checkpoint)")
    p.add_argument("--dataset", required=True, choices=NAMES, metavar="NAME",
                   help=f"vitlib.data name: {', '.join(NAMES)}")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split (default test)")
    p.add_argument("--img-size", type=at_least(1), help="input resolution (default: the checkpoint's)")
    _add_fractaldb_flags(p)
    p.add_argument("--limit", type=at_least(1), metavar="N", help="only the split's first N images (a quick check)")
    _add_data_flags(p)
    p.add_argument("--batch-size", type=at_least(1), default=256, help="images per batch (default 256)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--device", type=device_or_auto, default="auto", help="'auto' (default), 'cpu', 'cuda'")
    p.add_argument("--threads", type=at_least(1), help="torch intra-op threads")
    p.set_defaults(func=run_evaluate)


def _add_train_flags(p: argparse.ArgumentParser, batch_default: str, paper_batch: int) -> None:
    g = p.add_argument_group("training (TrainConfig fields; unset flags keep the recipe/profile value)")
    g.add_argument("--steps", type=at_least(1), help="optimizer updates in the whole run")
    g.add_argument("--batch-size", type=at_least(1), help=f"global batch size, split across torchrun processes "
                   f"(default {batch_default}, sized for a CPU)")
    g.add_argument("--paper-batch", action="store_const", dest="batch_size", const=paper_batch,
                   help=f"the paper's batch size, {paper_batch} (Appendix B.1); the last of --batch-size and "
                        "--paper-batch counts")
    g.add_argument("--lr", type=at_least(0.0, float), help="base (peak) learning rate")
    g.add_argument("--warmup-steps", type=at_least(0), help="linear warm-up steps (default: the recipe's, at "
                   "most a tenth of --steps)")
    g.add_argument("--weight-decay", type=at_least(0.0, float), help="decoupled weight decay")
    g.add_argument("--schedule", choices=["linear", "cosine", "constant"], help="decay after the warm-up")
    g.add_argument("--grad-clip", type=at_least(0.0, float), help="clip the global gradient norm to this value")
    g.add_argument("--label-smoothing", type=at_least(0.0, float), help="label smoothing (not in the paper)")
    g.add_argument("--mixup", type=at_least(0.0, float), dest="mixup_alpha",
                   help="mixup alpha (not in the paper; 0: off)")
    g.add_argument("--cutmix", type=at_least(0.0, float), dest="cutmix_alpha",
                   help="CutMix alpha (not in the paper; 0: off; not with --mixup)")
    g.add_argument("--bf16", action="store_const", const="bf16", dest="precision", help="bf16 autocast")
    g.add_argument("--fp32", action="store_const", const="fp32", dest="precision", help="no autocast")
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model")
    g.add_argument("--device", type=device_or_auto, help="'auto' (default), 'cpu', 'cuda', 'cuda:1'")
    g.add_argument("--seed", type=int, help="seed of data order, init, mixup, CutMix and dropout")
    g.add_argument("--num-workers", type=at_least(0), help="DataLoader worker processes")
    g.add_argument("--data-on-device", action=argparse.BooleanOptionalAction,
                   help="batch and augment the training images on the device (a GPU that outruns the CPU)")
    g.add_argument("--eval-every", type=at_least(0), help="validate every N steps (0: at the end only)")
    g.add_argument("--log-every", type=at_least(1), help="metrics record every N steps")
    g.add_argument("--checkpoint-every", type=at_least(0), help="checkpoint every N steps (0: at the end only)")
    g.add_argument("--no-progress", action="store_false", dest="progress", default=None, help="no progress bar")
    g.add_argument("--no-estimate", action="store_false", dest="estimate", help="start without timing "
                   f"{ESTIMATE_STEPS + 1} steps first (the time estimate printed before the run)")
    p.add_argument("--out-dir", required=True, help="where checkpoints and metrics.jsonl go")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out-dir")
    p.add_argument("--threads", type=at_least(1), help="torch intra-op threads (1 is fastest on a busy CPU)")


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="the folder that holds the dataset's files (fashion_mnist, cifar10, cifar100, "
                   "pets, flowers102, imagefolder)")
    p.add_argument("--download", action="store_true", help="let torchvision download the dataset (cifar10, "
                   "cifar100, pets, flowers102; needs a connection)")


def _add_fractaldb_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-classes", type=at_least(1), help="fractaldb: number of categories")
    p.add_argument("--images-per-class", type=at_least(1), help="fractaldb: training images per category")


# --- from flags to the library's arguments -------------------------------------------------------------------------
def _train_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields whose flags were given."""
    return {k: getattr(args, k) for k in TRAIN_FIELDS if getattr(args, k) is not None}


def _data_kw(args: argparse.Namespace, dataset: str) -> dict:
    """get_dataset's data_dir and download from --data-dir and --download, refused where they would be ignored."""
    kw = {}
    if args.data_dir:
        if dataset in OFFLINE and dataset != "fashion_mnist":
            raise UsageError(f"{dataset} is built in (no files to point at); leave out --data-dir")
        kw["data_dir"] = args.data_dir
    if args.download:
        if dataset not in DOWNLOADABLE:
            raise UsageError(f"{dataset} cannot be downloaded by torchvision; leave out --download")
        kw["download"] = True
    return kw


def _fractaldb_options(args: argparse.Namespace, dataset: str) -> dict:
    """fractaldb's num_classes and images_per_class from their flags, refused for another dataset."""
    opts = {k: v for k, v in (("num_classes", args.num_classes), ("images_per_class", args.images_per_class)) if v}
    if opts and dataset != "fractaldb":
        raise UsageError(f"{dataset} has a fixed number of classes and images; --num-classes and "
                         "--images-per-class are for fractaldb only")
    return opts


@contextlib.contextmanager
def _loading(args: argparse.Namespace, dataset: str):
    """The expected failures of loading `dataset`: missing files put on --data-dir (and --download), the rest on
    --dataset."""
    try:
        yield
    except DatasetNotFoundError as e:
        where = f"in {args.data_dir}" if args.data_dir else "(no --data-dir given)"
        download = ", or --download with an internet connection" if dataset in DOWNLOADABLE else ""
        raise UsageError(f"dataset {dataset!r} not found {where}. Pass --data-dir the folder that holds its files"
                         f"{download}. Datasets that need no download: {', '.join(OFFLINE)}; --debug shows where "
                         "it looked") from e
    except EXPECTED as e:
        raise UsageError(str(e), "--dataset") from e


# --- before a run: the images it will see and how long it will take ------------------------------------------------
def _human(seconds: float) -> str:
    """A duration in the unit that reads best: 42 s, 17 min, 3.5 h."""
    return (f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400
            else f"{seconds / 3600:.1f} h")


def planned_steps(seconds: float, images_per_s: float, batch_size: int) -> int:
    """The steps that fill `seconds` of training at `images_per_s` (at least one): how `--minutes` and
    benchmarks/time_to_accuracy.py size a schedule from a measured speed.

    >>> planned_steps(1800, 150.0, 128), planned_steps(1, 10.0, 128)
    (2109, 1)
    """
    return max(round(seconds * images_per_s / batch_size), 1)


def measure(model: torch.nn.Module, train_set: Dataset, cfg: TrainConfig) -> tuple[float, int]:
    """(images/s, batch) of training `model` under `cfg`, by `vitlib.train.train` on a deep copy: ESTIMATE_STEPS
    steps after an untimed one, data loading included, on the run's device and precision, at the run's batch size
    (at most the training set, and CPU_ESTIMATE_BATCH on a CPU), without torch.compile. The model and the random
    states are left as they were."""
    device = resolve_device(cfg.device)
    batch = min(cfg.batch_size, len(train_set), CPU_ESTIMATE_BATCH if device.type == "cpu" else cfg.batch_size)
    probe = dataclasses.replace(cfg, steps=ESTIMATE_STEPS + 1, batch_size=batch, warmup_steps=0, log_every=1,
                                progress=False, compile=False)
    gpus = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
    states = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=gpus):
        history = train(copy.deepcopy(model), train_set, probe)
    random.setstate(states[0])
    np.random.set_state(states[1])
    if gpus:
        torch.cuda.empty_cache()  # the copy's memory goes back to the run
    return pretrain.median_throughput(history), batch


def _announce(args: argparse.Namespace, model: torch.nn.Module, train_set: Dataset, cfg: TrainConfig,
              measured: tuple[float, int] | None = None) -> None:
    """Print (stderr) the images the run will see and, from a short measurement (`measure`, or the one already
    made: `measured`), how long it will take."""
    if int(os.environ.get("RANK", 0)) != 0:
        return
    last = latest_checkpoint(args.out_dir) if args.resume else None
    done = int(last.name.split("_")[1]) if last is not None else 0
    if cfg.budget_s is not None:  # --minutes: the time is known, the images are estimated
        _announce_clock(args, train_set, cfg, measured, last)
        return
    steps = max(cfg.steps - done, 0)
    images = steps * cfg.batch_size
    line = (f"{args.parser.prog}: {images:,} training images ({images / len(train_set):.2g} epochs of "
            f"{len(train_set):,}): {steps:,} steps of {cfg.batch_size}" + (f" after step {done}" if done else ""))
    fits = cfg.batch_size <= len(train_set)  # else `train` refuses at once: nothing to time
    if measured or args.estimate and steps and fits and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        if not measured:
            print(line + "; timing a few steps (--no-estimate skips this) ...", file=sys.stderr, flush=True)
        rate, batch = measured or measure(model, train_set, cfg)
        line = (f"{args.parser.prog}: estimated {_human(images / rate)} of training at {rate:.1f} images/s "
                f"(measured over {ESTIMATE_STEPS} steps of {batch}" +
                (", without torch.compile" if cfg.compile else "") + "; evaluation and checkpoints add to it)")
    print(line, file=sys.stderr, flush=True)


def _announce_clock(args: argparse.Namespace, train_set: Dataset, cfg: TrainConfig, measured: tuple[float, int],
                    last: Path | None) -> None:
    """Print (stderr) the training time of a run on the clock (`cfg.budget_s`, less what a resumed run has spent)
    and the images it should see at the measured speed."""
    spent = float(checkpoint_meta(last).get("extra", {}).get("train_seconds", 0.0)) if last is not None else 0.0
    left = max(cfg.budget_s - spent, 0.0)
    rate, batch = measured
    images = rate * left
    print(f"{args.parser.prog}: {_human(left)} of training" + (f" left of {_human(cfg.budget_s)}" if spent else "")
          + f", on the clock: the warm-up and decay follow it and the run ends when the time is spent; about "
          f"{images:,.0f} images ({images / len(train_set):.2g} epochs of {len(train_set):,}) at the "
          f"{rate:.1f} images/s measured over {ESTIMATE_STEPS} steps of {batch}; evaluation and checkpoints add "
          "to the time", file=sys.stderr, flush=True)


# --- the run -------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _training(args: argparse.Namespace, cfg: TrainConfig, same: str):
    """The expected failures of a training run, put on the flags that fix them; `same`: the flags that make a run."""
    try:
        yield
    except CheckpointError as e:  # --resume met a checkpoint of another run
        raise UsageError(str(e), "--resume", hint=f"--resume continues the run saved in --out-dir: repeat its flags"
                                                  f"{same}, or use another --out-dir") from e
    except NonFiniteLossError as e:
        raise _non_finite(e, args, cfg) from e
    except OSError as e:
        where = Path(str(e.filename)).resolve() if e.filename is not None else None
        writing = where is not None and Path(args.out_dir).resolve() in (where, *where.parents)
        raise UsageError(str(e), "--out-dir" if writing else None) from e


def _non_finite(e: NonFiniteLossError, args: argparse.Namespace, cfg: TrainConfig) -> UsageError:
    """A NonFiniteLossError (its step, loss, gradient norm, last finite loss) told in this command's flags."""
    what = ("loss" if not math.isfinite(e.loss) else "gradient norm" if not math.isfinite(e.grad_norm)
            else "weights after the update")
    last = (f"the last finite loss was {e.last_finite_loss:.4g}" if e.last_finite_loss is not None
            else "no step of this run had a finite loss yet")
    kept = latest_checkpoint(args.out_dir)
    where = (f"the last checkpoint in --out-dir, {kept.name}, holds finite weights: with the same flags, --resume "
             "continues from it" if kept is not None else "no checkpoint was written")
    tips = [f"a lower learning rate (--lr {cfg.lr:g})"]
    if resolve_precision(cfg.precision, resolve_device(cfg.device)) == "bf16":
        tips.append(f"--fp32 (bf16 autocast is on{' by auto' if cfg.precision == 'auto' else ''})")
    tips.append(f"a smaller --grad-clip than {cfg.grad_clip:g}" if cfg.grad_clip else "--grad-clip 1")
    return UsageError(f"non-finite {what} at step {e.step} (loss {e.loss:.4g}, gradient norm {e.grad_norm:.4g}): "
                      f"training stopped; {last}; {where}. Check the inputs for NaN/inf values, then try "
                      f"{', '.join(tips[:-1])} or {tips[-1]} in a new --out-dir.")


def _check_model_name(name: str) -> None:
    """Refuse an unknown model name (--model) before any data is loaded."""
    if parse_resnet_name(name) is None:
        with blame("--model"):
            vit_config(name)  # a config only


def run_pretrain(args: argparse.Namespace) -> None:
    """`vitlib pretrain`: vitlib.pretrain's spec from the profile and the flags, then vitlib.train.train."""
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = pretrain.PROFILES[args.profile]
    dataset = args.dataset or profile.dataset
    if args.model:
        _check_model_name(args.model)
    top = {k: getattr(args, k) for k in ("model", "dataset", "img_size", "in_chans") if getattr(args, k) is not None}
    opts = dict(profile.data_options) if dataset == profile.dataset else {}  # fractaldb's options
    opts.update(_fractaldb_options(args, dataset))
    opts.update(_data_kw(args, dataset))
    top["data_options"] = opts
    if args.model and args.model != profile.model:
        top["model_overrides"] = {}  # the profile's shrinking applies to its own model only
    overrides = _train_overrides(args)
    if "steps" in overrides:
        overrides.setdefault("warmup_steps", None)  # the recipe's rule (a tenth at most), not the profile's count
    s = pretrain.spec(args.profile, train_overrides=overrides, **top)
    with _loading(args, dataset):
        model, train_set, val_set = pretrain.build(s)
    cfg = s["train_config"]
    _announce(args, model, train_set, cfg)
    t0 = time.perf_counter()
    with _training(args, cfg, " (--profile, --model, --dataset, --img-size, --in-chans and the training flags)"):
        history = train(model, train_set, cfg, val_set=val_set, out_dir=args.out_dir, resume=args.resume)
    if int(os.environ.get("RANK", 0)) == 0:
        out = {"checkpoint": str(pretrain.final_checkpoint(args.out_dir, s)),
               "val": history["val"][-1:] if history["val"] else None}
        if args.export:
            command = "python -m vitlib " + shlex.join(args.argv)
            with blame("--export"):
                out["exported"] = str(pretrain.export_weights(args.out_dir, s, args.export, command,
                                                              seconds=time.perf_counter() - t0))
        print(json.dumps(out))


def run_finetune(args: argparse.Namespace) -> None:
    """`vitlib finetune`: a checkpoint with a new head at a new resolution (Section 3.2), then vitlib.train.train."""
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = _train_overrides(args)
    if args.minutes is not None and "steps" in overrides:
        raise UsageError("--minutes and --steps both set the run's length: pass one of them", "--minutes")
    if args.minutes is not None and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise UsageError("--minutes follows one process's clock; under torchrun set the run's length with "
                         "--steps", "--minutes")
    if not 0 <= args.val_fraction < 1:
        raise UsageError(f"{args.val_fraction} is not a share in [0, 1)", "--val-fraction")
    if args.from_scratch and args.linear_probe:
        raise UsageError("--linear-probe trains the head alone, and a backbone from scratch would stay random: "
                         "pass one of --from-scratch and --linear-probe", "--linear-probe")

    def recipe(**fields: Any) -> TrainConfig:
        if args.recipe == "small-data":
            return small_data_recipe(**overrides, **fields)
        return finetune_recipe(**{"batch_size": CPU_FINETUNE_BATCH, **overrides, **fields})

    cfg = recipe()
    with blame("--checkpoint"):
        pretrained = load_pretrained(args.checkpoint or "")
    kw = dict(in_chans=pretrained.cfg.in_chans, seed=cfg.seed, val_fraction=args.val_fraction,
              **_data_kw(args, args.dataset))
    augment = args.augment or RECIPE_AUGMENTATION[args.recipe]
    with _loading(args, args.dataset):
        train_set = get_dataset(args.dataset, "train", args.img_size, **AUGMENTATIONS[augment], **kw)
        # --val-fraction 0: every training image is trained on, nothing validated (`vitlib evaluate` tests it)
        val_set = get_dataset(args.dataset, "val", args.img_size, **kw) if args.val_fraction > 0 else None
    # Section 3.2: a zero-initialised D x K head, E_pos resampled to the new grid, optionally a frozen backbone;
    # or (--from-scratch) the same architecture freshly initialised under the run's seed.
    with blame("--img-size"):
        if args.from_scratch:
            torch.manual_seed(cfg.seed)
            model = from_scratch(pretrained, train_set.num_classes, img_size=args.img_size)
        else:
            model = prepare_finetune(pretrained, train_set.num_classes, img_size=args.img_size,
                                     freeze=args.linear_probe)
    measured = None
    if args.minutes is not None:  # the schedule (its warm-up and decay included) follows the clock
        print(f"{args.parser.prog}: timing a few steps to estimate the images {args.minutes:g} minutes of "
              "training hold ...", file=sys.stderr, flush=True)
        measured = measure(model, train_set, cfg)
        last = latest_checkpoint(args.out_dir) if args.resume else None
        saved = checkpoint_meta(last).get("train_config") if last is not None else None
        steps = (saved["steps"] if saved and saved.get("budget_s") else  # a resumed run keeps its own cap
                 CLOCK_STEPS * planned_steps(60 * args.minutes, measured[0], cfg.batch_size))
        cfg = recipe(steps=steps, budget_s=60 * args.minutes)
    _announce(args, model, train_set, cfg, measured)
    with _training(args, cfg, " (--checkpoint, --dataset, --img-size and the training flags)"):
        history = train(model, train_set, cfg, val_set=val_set, out_dir=args.out_dir, resume=args.resume)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({"checkpoint": str(latest_checkpoint(args.out_dir)),
                          "val": history["val"][-1:] if history["val"] else None}))


def run_evaluate(args: argparse.Namespace) -> None:
    """`vitlib evaluate`: vitlib.train.evaluate of a checkpoint on a dataset split, printed as JSON."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with blame("--checkpoint"):
        model = load_model(args.checkpoint, device=device)
    img_size = args.img_size or model.cfg.img_size
    kw = dict(in_chans=model.cfg.in_chans, **_fractaldb_options(args, args.dataset), **_data_kw(args, args.dataset))
    with _loading(args, args.dataset):
        data = get_dataset(args.dataset, args.split, img_size, **kw)
    if model.cfg.num_classes != data.num_classes:
        raise UsageError(f"{args.checkpoint} is a model of {model.cfg.num_classes} classes and {args.dataset} has "
                         f"{data.num_classes}: pass a --checkpoint trained on {args.dataset} (vitlib finetune "
                         f"--dataset {args.dataset} ...)")
    if args.limit:
        data = Subset(data, range(min(args.limit, len(data))))
    with blame("--img-size"):
        print(json.dumps(evaluate(model, data, args.batch_size, device, "bf16" if args.bf16 else "fp32")))

"""Command line: `vitlib <command> --help`, the same as `python -m vitlib <command> --help`.

The commands run the functions the notebooks call (vitlib.pretrain, vitlib.finetune, vitlib.train).
Expected failures (a bad value, an unknown name, a missing file or dataset, a checkpoint for another
model, a non-finite loss) print one line, `vitlib <command>: error: ...`, that names the flag to change,
and exit with status 2; `--debug` (or VITLIB_DEBUG=1) shows the traceback instead. The library speaks
Python (`pass data_dir=`); `_in_flags` turns its argument names into this command's flags (`--data-dir`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import itertools
import json
import math
import os
import platform
import re
import shlex
import sys
import time
import typing
from typing import Any

import torch
from torch.utils.data import Subset

from . import __version__, experiments, pretrain
from .bench import ROWS, format_table, run_bench
from .checkpoints import latest_checkpoint, load_model
from .data import get_dataset
from .finetune import load_pretrained, prepare_finetune
from .results import write_readme_results, write_results_md
from .train import evaluate, finetune_recipe, resolve_device, resolve_precision, train

# What a user's input can cause; anything else is a bug and keeps its traceback.
EXPECTED = (ValueError, OSError, ImportError)
CPU_FINETUNE_BATCH = 32  # fine-tuning batch by default, for a CPU; the paper's (finetune_recipe's) is --paper-batch
ESTIMATE_STEPS, ESTIMATE_BATCH = 2, 32  # timed steps (after one untimed) and their batch, before a run starts


class UsageError(Exception):
    """An expected failure. `flag`: the flag to blame when the message names none."""

    def __init__(self, message: str, flag: str | None = None, hint: str = ""):
        super().__init__(message)
        self.flag, self.hint = flag, hint


@contextlib.contextmanager
def _blame(flag: str, errors: tuple[type[BaseException], ...] = EXPECTED, hint: str = ""):
    """Turn the expected errors raised inside into UsageErrors on `flag` (used when their message names no flag)."""
    try:
        yield
    except errors as e:
        raise UsageError(str(e), flag, hint) from e


class _Parser(argparse.ArgumentParser):
    """argparse whose errors take one line, `vitlib <command>: error: ...`, and exit with status 2. Flags are
    spelled out (no abbreviations), so that a renamed flag fails in the README's commands instead of matching."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _in_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """The library's message with Python argument names replaced by this command's flags:
    `pass data_dir= a folder` -> `pass --data-dir a folder`, `warmup_steps=500` -> `--warmup-steps 500`,
    `resume=True` -> `--resume`, `precision='fp32'` -> `--fp32`, `lower batch_size` -> `lower --batch-size`."""
    message = " ".join(message.split())  # one line
    for a in parser._actions:
        if not a.option_strings or a.dest in ("help", "version", "debug"):
            continue
        flag, name = a.option_strings[-1], re.escape(a.dest)
        if a.nargs == 0 and a.const is not None and not isinstance(a.const, bool):  # --bf16, --fp32, --paper-batch
            message = re.sub(rf"(?<![\w.-]){name}=(['\"]?){re.escape(str(a.const))}\1(?![\w.])", flag, message)
            continue
        if a.nargs == 0:  # store_true / store_false
            message = re.sub(rf"(?<![\w.-]){name}={not a.default}\b", flag, message)
        message = re.sub(rf"(?<![\w.-]){name}=(?=[\s.,;:)\]]|$)", flag, message)  # "pass data_dir= a folder"
        message = re.sub(rf"(?<![\w.-]){name}=", flag + " ", message)  # "warmup_steps=500"
        if "_" in a.dest or a.dest == "lr":  # names that are not English words: "lower batch_size"
            message = re.sub(rf"(?<![\w.-]){name}(?![\w=/(])", flag, message)
    return message


def _names_a_flag(message: str, parser: argparse.ArgumentParser) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", message)
               for a in parser._actions for s in a.option_strings if s.startswith("--"))


# --- value checks: a bad value is refused before anything runs ----------------------------------------------------
def _at_least(low: float, kind: type = int):
    def check(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not (math.isfinite(value) and value >= low):
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a finite number'} >= {low}, "
                                             f"got {text}")
        return value
    check.__name__ = kind.__name__
    return check


def _device(text: str) -> str:
    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device is available here; use cpu or auto")
    return text


# --- bench ---------------------------------------------------------------------------------------------------------
def _bench(args: argparse.Namespace) -> None:
    unknown = set(args.models or ()) - {r.name for r in ROWS}
    if unknown:
        raise UsageError(f"unknown model(s) {sorted(unknown)}; known: {[r.name for r in ROWS]}", "--models")
    rows = [r for r in ROWS if not args.models or r.name in args.models]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.cpu_only else [])
    results = []
    for device in devices:
        for row in rows:  # one row at a time, printed as it finishes: a slow machine still shows progress
            results += run_bench([row], batch_size=args.batch_size, repeats=args.repeats, device=device)
            print("\n".join(format_table(results[-2:]).splitlines()[-2:]), file=sys.stderr, flush=True)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads" + (f", {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    print(format_table(results))


def _results(args: argparse.Namespace) -> None:
    print(write_results_md())
    print(write_readme_results())


# --- training commands (vitlib.train, vitlib.pretrain): the same functions the notebooks call ------------------
def _add_train_flags(p: argparse.ArgumentParser, batch_default: str, paper_batch: int) -> None:
    g = p.add_argument_group("training (TrainConfig fields; unset flags keep the recipe/profile value)")
    g.add_argument("--steps", type=_at_least(1), help="optimizer updates in the whole run")
    g.add_argument("--batch-size", type=_at_least(1), help=f"global batch size, split across torchrun processes "
                   f"(default {batch_default}, sized for a CPU)")
    g.add_argument("--paper-batch", action="store_const", dest="batch_size", const=paper_batch,
                   help=f"the paper's batch size, {paper_batch} (Appendix B.1); the last of --batch-size and "
                        "--paper-batch counts")
    g.add_argument("--lr", type=_at_least(0.0, float), help="base (peak) learning rate")
    g.add_argument("--warmup-steps", type=_at_least(0), help="linear warm-up steps (default: the recipe's, at "
                   "most a tenth of --steps)")
    g.add_argument("--weight-decay", type=_at_least(0.0, float), help="decoupled weight decay")
    g.add_argument("--schedule", choices=["linear", "cosine", "constant"], help="decay after the warm-up")
    g.add_argument("--grad-clip", type=_at_least(0.0, float), help="clip the global gradient norm to this value")
    g.add_argument("--label-smoothing", type=_at_least(0.0, float), help="label smoothing (not in the paper)")
    g.add_argument("--mixup", type=_at_least(0.0, float), dest="mixup_alpha",
                   help="mixup alpha (not in the paper; 0: off)")
    g.add_argument("--bf16", action="store_const", const="bf16", dest="precision", help="bf16 autocast")
    g.add_argument("--fp32", action="store_const", const="fp32", dest="precision", help="no autocast")
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model")
    g.add_argument("--device", type=_device, help="'auto' (default), 'cpu', 'cuda', 'cuda:1'")
    g.add_argument("--seed", type=int, help="seed of data order, init, mixup and dropout")
    g.add_argument("--num-workers", type=_at_least(0), help="DataLoader worker processes")
    g.add_argument("--eval-every", type=_at_least(0), help="validate every N steps (0: at the end only)")
    g.add_argument("--log-every", type=_at_least(1), help="metrics record every N steps")
    g.add_argument("--checkpoint-every", type=_at_least(0), help="checkpoint every N steps (0: at the end only)")
    g.add_argument("--no-progress", action="store_false", dest="progress", default=None, help="no progress bar")
    g.add_argument("--no-estimate", action="store_false", dest="estimate", help="start without timing "
                   f"{ESTIMATE_STEPS} steps first (the time estimate printed before the run)")
    p.add_argument("--out-dir", required=True, help="where checkpoints and metrics.jsonl go")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out-dir")
    p.add_argument("--threads", type=_at_least(1), help="torch intra-op threads (1 is fastest on a busy CPU)")


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="the folder that holds the dataset's files (fashion_mnist, cifar10, cifar100, "
                   "pets, flowers102, imagefolder)")
    p.add_argument("--download", action="store_true", help="let torchvision download the dataset (cifar10, "
                   "cifar100, pets, flowers102; needs a connection)")


_TRAIN_FIELDS = ("steps", "batch_size", "lr", "warmup_steps", "weight_decay", "schedule", "grad_clip",
                 "label_smoothing", "mixup_alpha", "precision", "compile", "device", "seed", "num_workers",
                 "eval_every", "log_every", "checkpoint_every", "progress")


def _train_overrides(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in _TRAIN_FIELDS if getattr(args, k) is not None}


def _data_kw(args: argparse.Namespace, dataset: str) -> dict:
    """get_dataset's data_dir and download from --data-dir and --download, refused where they would be ignored."""
    from .data import NAMES, OFFLINE

    kw = {}
    if args.data_dir:
        if dataset in OFFLINE and dataset != "fashion_mnist":
            raise UsageError(f"{dataset} is built in (no files to point at); leave out --data-dir")
        kw["data_dir"] = args.data_dir
    if args.download:
        if dataset not in set(NAMES) - set(OFFLINE) - {"imagefolder"}:  # torchvision's
            raise UsageError(f"{dataset} cannot be downloaded by torchvision; leave out --download")
        kw["download"] = True
    return kw


def _fractaldb_options(args: argparse.Namespace, dataset: str) -> dict:
    opts = {k: v for k, v in (("num_classes", args.num_classes), ("images_per_class", args.images_per_class)) if v}
    if opts and dataset != "fractaldb":
        raise UsageError(f"{dataset} has a fixed number of classes and images; --num-classes and "
                         "--images-per-class are for fractaldb only")
    return opts


def _check_model_name(name: str) -> None:
    from .config import vit_config
    from .resnet import parse_resnet_name

    if parse_resnet_name(name) is None:
        with _blame("--model"):
            vit_config(name)  # a config only: an unknown name fails here, before any data is loaded


def _human(seconds: float) -> str:
    return (f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400
            else f"{seconds / 3600:.1f} h")


def _measure(model: torch.nn.Module, train_set, cfg) -> tuple[float, int]:
    """Training images/s of a copy of `model`: ESTIMATE_STEPS timed steps (after an untimed one) on batches of
    min(batch size, ESTIMATE_BATCH), data loading included; RNG states are restored, the model is untouched."""
    import random

    import numpy as np
    from torch.utils.data import DataLoader

    from .train import build_optimizer, resolve_device

    device = resolve_device(cfg.device)
    batch = min(cfg.batch_size, ESTIMATE_BATCH, len(train_set))
    states = random.getstate(), np.random.get_state()
    gpus = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpus):
        probe = copy.deepcopy(model).to(device).train()
        optimizer = build_optimizer(probe, cfg)
        loader = DataLoader(train_set, batch_size=batch, shuffle=False)
        batches = itertools.chain.from_iterable(itertools.repeat(loader))  # a small set is read again
        for i in range(ESTIMATE_STEPS + 1):
            if i == 1:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
            x, y = next(batches)
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=resolve_precision(cfg.precision, device) == "bf16"):
                loss = torch.nn.functional.cross_entropy(probe(x.to(device)).float(), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    random.setstate(states[0]), np.random.set_state(states[1])
    del probe, optimizer
    return ESTIMATE_STEPS * batch / seconds, batch


def _announce(args: argparse.Namespace, model: torch.nn.Module, train_set, cfg) -> None:
    """Print (stderr) the images the run will see and, from a short measurement, how long it will take."""
    from .checkpoints import latest_checkpoint

    if int(os.environ.get("RANK", 0)) != 0:
        return
    last = latest_checkpoint(args.out_dir) if args.resume else None
    done = int(last.name.split("_")[1]) if last is not None else 0
    steps = max(cfg.steps - done, 0)
    images = steps * cfg.batch_size
    epochs = images / len(train_set)
    line = (f"{args.parser.prog}: {images:,} training images ({epochs:.2g} epochs of "
            f"{len(train_set):,}): {steps:,} steps of {cfg.batch_size}" + (f" after step {done}" if done else ""))
    fits = cfg.batch_size <= len(train_set)  # else `train` refuses at once: nothing to time
    if args.estimate and steps and fits and int(os.environ.get("WORLD_SIZE", 1)) == 1:
        print(line + "; timing a few steps (--no-estimate skips this) ...", file=sys.stderr, flush=True)
        rate, batch = _measure(model, train_set, cfg)
        line = (f"{args.parser.prog}: estimated {_human(images / rate)} of training at {rate:.1f} images/s "
                f"(measured over {ESTIMATE_STEPS} steps of {batch}" +
                (", without torch.compile" if cfg.compile else "") + "; evaluation and checkpoints add to it)")
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _training(args: argparse.Namespace, same: str = ""):
    """The expected failures of a training run, put on the flags that fix them."""
    from pathlib import Path

    from .checkpoints import CheckpointError

    try:
        yield
    except CheckpointError as e:  # --resume met a checkpoint of another run
        raise UsageError(str(e), "--resume", hint=f"--resume continues the run saved in --out-dir: repeat its flags"
                                                  f"{same}, or use another --out-dir") from e
    except OSError as e:
        where = Path(str(e.filename)).resolve() if e.filename is not None else None
        writing = where is not None and Path(args.out_dir).resolve() in (where, *where.parents)
        raise UsageError(str(e), "--out-dir" if writing else None) from e


def _pretrain(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = pretrain.PROFILES[args.profile]
    dataset = args.dataset or profile["dataset"]
    if args.model:
        _check_model_name(args.model)
    top = {k: getattr(args, k) for k in ("model", "dataset", "img_size", "in_chans") if getattr(args, k) is not None}
    opts = dict(profile["data_options"]) if dataset == profile["dataset"] else {}  # fractaldb's options
    opts.update(_fractaldb_options(args, dataset))
    opts.update(_data_kw(args, dataset))
    top["data_options"] = opts
    if args.model and args.model != profile["model"]:
        top["model_overrides"] = {}  # the profile's shrinking applies to its own model only
    overrides = _train_overrides(args)
    if "steps" in overrides:
        overrides.setdefault("warmup_steps", None)  # the recipe's rule (a tenth at most), not the profile's count
    s = pretrain.spec(args.profile, train_overrides=overrides, **top)
    with _blame("--dataset"):
        model, train_set, val_set = pretrain.build(s)
    _announce(args, model, train_set, s["train_config"])
    t0 = time.perf_counter()
    with _training(args):
        history = train(model, train_set, s["train_config"], val_set=val_set, out_dir=args.out_dir,
                        resume=args.resume)
    if int(os.environ.get("RANK", 0)) == 0:
        out = {"checkpoint": str(pretrain.final_checkpoint(args.out_dir, s)),
               "val": history["val"][-1:] if history["val"] else None}
        if args.export:
            command = "python -m vitlib " + shlex.join(args.argv)
            with _blame("--export"):
                out["exported"] = str(pretrain.export_weights(args.out_dir, s, args.export, command,
                                                              seconds=time.perf_counter() - t0))
        print(json.dumps(out))


def _finetune(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = finetune_recipe(**{"batch_size": CPU_FINETUNE_BATCH, **_train_overrides(args)})
    with _blame("--checkpoint"):
        pretrained = load_pretrained(args.checkpoint or "")
    kw = dict(in_chans=pretrained.cfg.in_chans, seed=cfg.seed, val_fraction=args.val_fraction,
              **_data_kw(args, args.dataset))
    with _blame("--dataset"):
        train_set = get_dataset(args.dataset, "train", args.img_size, **kw)
        val_set = get_dataset(args.dataset, "val", args.img_size, **kw)
    # Section 3.2: a zero-initialised D x K head, E_pos resampled to the new grid, optionally a frozen backbone.
    with _blame("--img-size"):
        model = prepare_finetune(pretrained, train_set.num_classes, img_size=args.img_size,
                                 freeze=args.linear_probe)
    _announce(args, model, train_set, cfg)
    with _training(args, " (--checkpoint, --dataset, --img-size and the training flags)"):
        history = train(model, train_set, cfg, val_set=val_set, out_dir=args.out_dir, resume=args.resume)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({"checkpoint": str(latest_checkpoint(args.out_dir)),
                          "val": history["val"][-1:] if history["val"] else None}))


def _evaluate(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    with _blame("--checkpoint"):
        model = load_model(args.checkpoint, device=device)
    img_size = args.img_size or model.cfg.img_size
    kw = dict(in_chans=model.cfg.in_chans, **_fractaldb_options(args, args.dataset), **_data_kw(args, args.dataset))
    with _blame("--dataset"):
        data = get_dataset(args.dataset, args.split, img_size, **kw)
    if model.cfg.num_classes != data.num_classes:
        raise UsageError(f"{args.checkpoint} is a model of {model.cfg.num_classes} classes and {args.dataset} has "
                         f"{data.num_classes}: pass a --checkpoint trained on {args.dataset} (vitlib finetune "
                         f"--dataset {args.dataset} ...)", "--checkpoint")
    if args.limit:
        data = Subset(data, range(min(args.limit, len(data))))
    with _blame("--img-size"):
        print(json.dumps(evaluate(model, data, args.batch_size, device, "bf16" if args.bf16 else "fp32")))


def _add_training_commands(sub) -> None:
    from .data import NAMES, get_dataset
    from .train import finetune_recipe, pretrain_recipe

    p = sub.add_parser("pretrain", help="pre-train a model (Adam, wd 0.1, warm-up + linear decay; Appendix B.1)",
                       description="Pre-train with vitlib.train.pretrain_recipe on a vitlib.data dataset. "
                                   "Example: vitlib pretrain --profile full --out-dir runs/vit_ti4. "
                                   "Under torchrun the same command runs with DistributedDataParallel. Before it "
                                   "starts it prints the images it will see and a time estimate from a couple of "
                                   "timed steps.")
    p.add_argument("--profile", choices=["smoke", "full"], default="smoke",
                   help="sizes from vitlib.pretrain.PROFILES: smoke (seconds) or full (the shipped model; its run "
                        "time is in RESULTS.md)")
    p.add_argument("--export", metavar="PATH", help="at the end, also write the final weights without optimizer "
                   "state to PATH.safetensors + PATH.json with provenance (how the shipped model is made: "
                   "--export vitlib/weights/vit_ti4_fractal32)")
    p.add_argument("--model", help="model name, e.g. ViT-Ti/4, ViT-S/8, BiT-R26x1 (default: the profile's)")
    p.add_argument("--dataset", choices=NAMES, metavar="NAME",
                   help=f"vitlib.data name (default: fractaldb): {', '.join(NAMES)}")
    p.add_argument("--img-size", type=_at_least(1), help="input resolution H = W (default 32)")
    p.add_argument("--in-chans", type=int, choices=[1, 3], help="input channels C (default 3)")
    p.add_argument("--num-classes", type=_at_least(1), help="fractaldb: number of categories")
    p.add_argument("--images-per-class", type=_at_least(1), help="fractaldb: training images per category")
    _add_data_flags(p)
    _add_train_flags(p, "the profile's", pretrain_recipe().batch_size)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a vitlib checkpoint (SGD 0.9, clip 1, cosine; Appendix B.1.1)",
                       description="Fine-tune a checkpoint with vitlib.train.finetune_recipe. Before it starts it "
                                   "prints the images it will see and a time estimate from a couple of timed steps.")
    p.add_argument("--checkpoint", default="", help="a vitlib checkpoint (NAME.safetensors + NAME.json), an official "
                   "JAX .npz or a timm weights file (default: the shipped vitlib/weights/vit_ti4_fractal32)")
    p.add_argument("--dataset", required=True, choices=NAMES, metavar="NAME",
                   help=f"vitlib.data name: {', '.join(NAMES)}")
    p.add_argument("--img-size", type=_at_least(1), required=True, help="input resolution H = W (higher than "
                   "pre-training: E_pos is 2D-interpolated, Section 3.2)")
    p.add_argument("--linear-probe", action="store_true", help="freeze the backbone, train only the new head")
    val_fraction = inspect.signature(get_dataset).parameters["val_fraction"].default
    p.add_argument("--val-fraction", type=float, default=val_fraction, help="the share of each class's training "
                   f"images held out for validation (default {val_fraction})")
    _add_data_flags(p)
    _add_train_flags(p, str(CPU_FINETUNE_BATCH), finetune_recipe().batch_size)
    p.set_defaults(func=_finetune)

    p = sub.add_parser("evaluate", help="loss and accuracy of a checkpoint on a dataset split",
                       description="Evaluate a vitlib checkpoint; prints JSON {loss, accuracy, n}.")
    p.add_argument("--checkpoint", required=True, help="a vitlib checkpoint: NAME, NAME.safetensors or NAME.json")
    p.add_argument("--dataset", required=True, choices=NAMES, metavar="NAME",
                   help=f"vitlib.data name: {', '.join(NAMES)}")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split (default test)")
    p.add_argument("--img-size", type=_at_least(1), help="input resolution (default: the checkpoint's)")
    p.add_argument("--num-classes", type=_at_least(1), help="fractaldb: number of categories")
    p.add_argument("--images-per-class", type=_at_least(1), help="fractaldb: training images per category")
    p.add_argument("--limit", type=_at_least(1), metavar="N", help="only the split's first N images (a quick check)")
    _add_data_flags(p)
    p.add_argument("--batch-size", type=_at_least(1), default=256, help="images per batch (default 256)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--device", type=_device, default="auto", help="'auto' (default), 'cpu', 'cuda'")
    p.add_argument("--threads", type=_at_least(1), help="torch intra-op threads")
    p.set_defaults(func=_evaluate)
# --- end of training commands -----------------------------------------------------------------------------------


# --- experiment: vitlib.experiments' studies, flags generated from each study's Config fields ----------------------
def _add_field_flag(g, name: str, kind: Any, help_text: str, shown: str) -> None:
    """One flag for a Config field: tuples take several values, bools --x / --no-x; unset (None) keeps the
    profile's value."""
    flag = "--" + name.replace("_", "-")
    help_text = f"{help_text} (full: {shown})"
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        g.add_argument(flag, nargs="*", type=_at_least(0) if item is int else item, metavar=item.__name__.upper(),
                       help=help_text)
    elif kind is bool:
        g.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
    else:
        g.add_argument(flag, type=_at_least(0, kind) if kind in (int, float) else kind, metavar=kind.__name__.upper(),
                       help=help_text)


def _experiment(args: argparse.Namespace) -> None:
    if args.list or args.study is None:
        if not args.list:
            raise UsageError(f"name a study ({', '.join(experiments.STUDIES)}) or pass --list")
        for name, study in experiments.STUDIES.items():
            print(f"{name}: {study.__doc__.strip().splitlines()[0]}")
            for profile in study.PROFILES:
                cfg = experiments.config(name, profile)
                print(f"  --profile {profile}: {len(study.expand(cfg))} runs, "
                      f"{experiments.images_seen(name, profile):,} training images seen -> "
                      f"{experiments.study_path(name, profile, '<temporary folder>' if profile == 'smoke' else None)}"
                      ".json")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {}
    for name, kind, _, _ in experiments.fields(args.study):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = tuple(value) if typing.get_origin(kind) is tuple else value
    cfg = experiments.config(args.study, args.profile, **overrides)
    study = experiments.STUDIES[args.study]
    specs = study.expand(cfg)
    if args.plan:
        done = {r["key"] for r in experiments.load_rows(experiments.study_path(args.study, args.profile, args.folder))}
        for spec in specs:
            print(("done  " if spec["key"] in done else "to run ") + spec["key"])
        print(f"{len(specs)} runs ({sum(s['key'] in done for s in specs)} done), "
              f"{experiments.images_seen(args.study, args.profile, **overrides):,} training images seen in all")
        return
    command = "python -m vitlib " + shlex.join(args.argv)
    with _blame("--folder", (OSError,)):
        out = experiments.run(args.study, args.profile, folder=args.folder, command=command, limit=args.limit,
                              **overrides)
    print(json.dumps({"results": str(out["path"]), "rows": len(out["rows"]), "todo": out["todo"]}))


def _add_experiment_command(sub) -> None:
    p = sub.add_parser("experiment", help=f"run a study of vitlib.experiments ({', '.join(experiments.STUDIES)}); "
                       "resumable",
                       description="Run a study: one row per run appended to figures/<study>.json (full; other "
                                   "profiles: figures/<study>_<profile>.json; smoke: a temporary folder). Rows "
                                   "already in the "
                                   "file are never run again, so an interrupted study continues where it "
                                   "stopped. Example: vitlib experiment transfer --profile full.")
    p.add_argument("--list", action="store_true", help="list the studies, their profiles and budgets")
    studies = p.add_subparsers(dest="study", metavar="STUDY", help=", ".join(experiments.STUDIES))
    for name, study in experiments.STUDIES.items():
        doc = study.__doc__.strip()
        sp = studies.add_parser(name, help=doc.splitlines()[0], description=doc.split("\n\n")[0] +
                                f" Design, budget and expected result: help(vitlib.experiments.{name}).")
        sp.add_argument("--profile", choices=list(study.PROFILES), default="smoke",
                        help="smoke (seconds, a temporary folder), full (figures/), "
                        + ", ".join(f"{k} (figures/{name}_{k}.json)" for k in study.PROFILES
                                    if k not in ("smoke", "full")))
        sp.add_argument("--folder", help="write the results file here instead (a run continues the file it finds)")
        sp.add_argument("--limit", type=_at_least(1), metavar="N", help="run at most N more rows, then stop")
        sp.add_argument("--plan", action="store_true", help="print the runs (done / to run) and the images "
                        "seen, run nothing")
        sp.add_argument("--threads", type=_at_least(1), help="torch intra-op threads")
        sp.add_argument("--list", action="store_true", default=False, help=argparse.SUPPRESS)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
        g = sp.add_argument_group(f"study fields (vitlib.experiments.{name}.Config; unset flags keep the profile's "
                                  "value)")
        full = study.PROFILES.get("full", list(study.PROFILES.values())[-1])  # the defaults shown in --help
        for field, kind, _, help_text in experiments.fields(name):
            value = getattr(full, field)
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else repr(value)
            _add_field_flag(g, field, kind, help_text, shown)
        sp.set_defaults(func=_experiment, parser=sp)
    p.set_defaults(func=_experiment, study=None)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (the tests parse the README's commands with it)."""
    parser = _Parser(prog="vitlib", description="Pre-train, fine-tune, evaluate and time Vision Transformers "
                     "(vitlib). `vitlib` and `python -m vitlib` are the same program; `vitlib <command> --help` "
                     "documents every flag.",
                     epilog="Set VITLIB_DEBUG=1 (or --debug) to see the traceback of an error.")
    parser.add_argument("--version", action="version", version=f"vitlib {__version__} (torch {torch.__version__})")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bench", help="images/s of vitlib vs timm on the same configs (ratio >= 1: no slower)")
    p.add_argument("--batch-size", type=_at_least(1), default=8, help="images per step (default 8)")
    p.add_argument("--repeats", type=_at_least(1), default=10,
                   help="timed repeats per model, alternating (default 10)")
    p.add_argument("--models", nargs="*", help="only these rows, e.g. ViT-Ti/16 (default: all)")
    p.add_argument("--cpu-only", action="store_true", help="skip the GPU even when one is present")
    p.set_defaults(func=_bench)
    p = sub.add_parser("results", help="write RESULTS.md and the README's results block from figures/*.json "
                                       "(numbers, figures, provenance)")
    p.set_defaults(func=_results)
    _add_training_commands(sub)
    _add_experiment_command(sub)
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,  # also after the command
                       help="show the traceback of an error")
        p.set_defaults(parser=p)  # errors are reported in the words of the command's flags
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for provenance
    debug = args.debug or os.environ.get("VITLIB_DEBUG", "") not in ("", "0")
    try:
        args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        resume = " (--resume continues from the last checkpoint in --out-dir)" if "out_dir" in args else ""
        args.parser.exit(130, f"{args.parser.prog}: interrupted{resume}\n")
    except (UsageError, *EXPECTED) as e:
        if debug:
            raise
        message = _in_flags(str(e), args.parser)
        flag = getattr(e, "flag", None)
        if flag and not _names_a_flag(message, args.parser):
            message = f"argument {flag}: {message}"
        hint = getattr(e, "hint", "")
        args.parser.exit(2, f"{args.parser.prog}: error: {message}" + (f" ({hint})" if hint else "") + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

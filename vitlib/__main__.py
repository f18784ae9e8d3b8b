"""Command line: `python -m vitlib <command> --help`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time

import torch

from . import pretrain
from .bench import ROWS, format_table, run_bench
from .checkpoints import load_model
from .data import get_dataset
from .finetune import load_pretrained, prepare_finetune
from .results import write_results_md
from .train import evaluate, finetune_recipe, resolve_device, train


def _bench(args: argparse.Namespace) -> None:
    unknown = set(args.models or ()) - {r.name for r in ROWS}
    if unknown:
        raise SystemExit(f"bench: unknown model(s) {sorted(unknown)}; known: {[r.name for r in ROWS]}")
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


# --- training commands (vitlib.train, vitlib.pretrain): the same functions the notebooks call ------------------
def _add_train_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (TrainConfig fields; unset flags keep the recipe/profile value)")
    g.add_argument("--steps", type=int, help="optimizer updates in the whole run")
    g.add_argument("--batch-size", type=int, help="global batch size (split across torchrun processes)")
    g.add_argument("--lr", type=float, help="base (peak) learning rate")
    g.add_argument("--warmup-steps", type=int, help="linear warm-up steps")
    g.add_argument("--weight-decay", type=float, help="decoupled weight decay")
    g.add_argument("--schedule", choices=["linear", "cosine", "constant"], help="decay after the warm-up")
    g.add_argument("--grad-clip", type=float, help="clip the global gradient norm to this value")
    g.add_argument("--label-smoothing", type=float, help="label smoothing (not in the paper)")
    g.add_argument("--mixup", type=float, dest="mixup_alpha", help="mixup alpha (not in the paper; 0: off)")
    g.add_argument("--bf16", action="store_const", const="bf16", dest="precision", help="bf16 autocast")
    g.add_argument("--fp32", action="store_const", const="fp32", dest="precision", help="no autocast")
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model")
    g.add_argument("--device", help="'auto' (default), 'cpu', 'cuda', 'cuda:1'")
    g.add_argument("--seed", type=int, help="seed of data order, init, mixup and dropout")
    g.add_argument("--num-workers", type=int, help="DataLoader worker processes")
    g.add_argument("--eval-every", type=int, help="validate every N steps (0: at the end only)")
    g.add_argument("--log-every", type=int, help="metrics record every N steps")
    g.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps (0: at the end only)")
    g.add_argument("--no-progress", action="store_false", dest="progress", default=None, help="no progress bar")
    p.add_argument("--out-dir", required=True, help="where checkpoints and metrics.jsonl go")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out-dir")
    p.add_argument("--threads", type=int, help="torch intra-op threads (1 is fastest on a busy CPU)")


_TRAIN_FIELDS = ("steps", "batch_size", "lr", "warmup_steps", "weight_decay", "schedule", "grad_clip",
                 "label_smoothing", "mixup_alpha", "precision", "compile", "device", "seed", "num_workers",
                 "eval_every", "log_every", "checkpoint_every", "progress")


def _train_overrides(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in _TRAIN_FIELDS if getattr(args, k) is not None}


def _pretrain(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    top = {k: getattr(args, k) for k in ("model", "dataset", "img_size", "in_chans") if getattr(args, k) is not None}
    if args.num_classes or args.images_per_class:
        opts = dict(pretrain.PROFILES[args.profile]["data_options"])
        opts.update({k: v for k, v in (("num_classes", args.num_classes),
                                       ("images_per_class", args.images_per_class)) if v})
        top["data_options"] = opts
    if args.model and args.model != pretrain.PROFILES[args.profile]["model"]:
        top.setdefault("model_overrides", {})  # the profile's shrinking applies to its own model only
    s = pretrain.spec(args.profile, train_overrides=_train_overrides(args), **top)
    t0 = time.perf_counter()
    _, history = pretrain.run(s, args.out_dir, resume=args.resume)
    if int(os.environ.get("RANK", 0)) == 0:
        out = {"checkpoint": str(pretrain.final_checkpoint(args.out_dir, s)),
               "val": history["val"][-1:] if history["val"] else None}
        if args.export:
            command = "python -m vitlib " + shlex.join(args.argv)
            out["exported"] = str(pretrain.export_weights(args.out_dir, s, args.export, command,
                                                          seconds=time.perf_counter() - t0))
        print(json.dumps(out))


def _finetune(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    pretrained = load_pretrained(args.checkpoint or "")
    cfg = finetune_recipe(**_train_overrides(args))
    kw = dict(in_chans=pretrained.cfg.in_chans, seed=cfg.seed)
    train_set = get_dataset(args.dataset, "train", args.img_size, **kw)
    val_set = get_dataset(args.dataset, "val", args.img_size, **kw)
    # Section 3.2: a zero-initialised D x K head, E_pos resampled to the new grid, optionally a frozen backbone.
    model = prepare_finetune(pretrained, train_set.num_classes, img_size=args.img_size, freeze=args.linear_probe)
    train(model, train_set, cfg, val_set=val_set, out_dir=args.out_dir, resume=args.resume)


def _evaluate(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device=device)
    img_size = args.img_size or model.cfg.img_size
    data = get_dataset(args.dataset, args.split, img_size, in_chans=model.cfg.in_chans, **_data_options(args))
    print(json.dumps(evaluate(model, data, args.batch_size, device, "bf16" if args.bf16 else "fp32")))


def _data_options(args: argparse.Namespace) -> dict:
    return {k: v for k, v in (("num_classes", args.num_classes), ("images_per_class", args.images_per_class)) if v}


def _add_training_commands(sub) -> None:
    p = sub.add_parser("pretrain", help="pre-train a model (Adam, wd 0.1, warm-up + linear decay; Appendix B.1)",
                       description="Pre-train with vitlib.train.pretrain_recipe on a vitlib.data dataset. "
                                   "Example: python -m vitlib pretrain --profile full --out-dir runs/vit_ti8. "
                                   "Under torchrun the same command runs with DistributedDataParallel.")
    p.add_argument("--profile", choices=["smoke", "full"], default="smoke",
                   help="sizes from vitlib.pretrain.PROFILES: smoke (seconds) or full (the shipped model; its run "
                        "time is in RESULTS.md)")
    p.add_argument("--export", metavar="PATH", help="at the end, also write the final weights without optimizer "
                   "state to PATH.safetensors + PATH.json with provenance (how the shipped model is made: "
                   "--export vitlib/weights/vit_ti8_fractal32)")
    p.add_argument("--model", help="model name, e.g. ViT-Ti/4, ViT-S/8, BiT-R26x1 (default: the profile's)")
    p.add_argument("--dataset", help="vitlib.data name (default: fractaldb)")
    p.add_argument("--img-size", type=int, help="input resolution H = W (default 32)")
    p.add_argument("--in-chans", type=int, help="input channels C (default 3)")
    p.add_argument("--num-classes", type=int, help="fractaldb: number of categories")
    p.add_argument("--images-per-class", type=int, help="fractaldb: training images per category")
    _add_train_flags(p)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a vitlib checkpoint (SGD 0.9, clip 1, cosine; Appendix B.1.1)",
                       description="Fine-tune a checkpoint with vitlib.train.finetune_recipe.")
    p.add_argument("--checkpoint", default="", help="a vitlib checkpoint (NAME.safetensors + NAME.json), an official "
                   "JAX .npz or a timm weights file (default: the shipped vitlib/weights/vit_ti8_fractal32)")
    p.add_argument("--dataset", required=True, help="vitlib.data name, e.g. fashion_mnist, mnist5k, cifar10")
    p.add_argument("--img-size", type=int, required=True, help="input resolution H = W (higher than pre-training: "
                   "E_pos is 2D-interpolated, Section 3.2)")
    p.add_argument("--linear-probe", action="store_true", help="freeze the backbone, train only the new head")
    _add_train_flags(p)
    p.set_defaults(func=_finetune)

    p = sub.add_parser("evaluate", help="loss and accuracy of a checkpoint on a dataset split",
                       description="Evaluate a vitlib checkpoint; prints JSON {loss, accuracy, n}.")
    p.add_argument("--checkpoint", required=True, help="a vitlib checkpoint: NAME, NAME.safetensors or NAME.json")
    p.add_argument("--dataset", required=True, help="vitlib.data name")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split (default test)")
    p.add_argument("--img-size", type=int, help="input resolution (default: the checkpoint's)")
    p.add_argument("--num-classes", type=int, help="fractaldb: number of categories")
    p.add_argument("--images-per-class", type=int, help="fractaldb: training images per category")
    p.add_argument("--batch-size", type=int, default=256, help="images per batch (default 256)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--device", default="auto", help="'auto' (default), 'cpu', 'cuda'")
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    p.set_defaults(func=_evaluate)
# --- end of training commands -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vitlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("bench", help="images/s of vitlib vs timm on the same configs (ratio >= 1: no slower)")
    p.add_argument("--batch-size", type=int, default=8, help="images per step (default 8)")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats per model, alternating (default 10)")
    p.add_argument("--models", nargs="*", help="only these rows, e.g. ViT-Ti/16 (default: all)")
    p.add_argument("--cpu-only", action="store_true", help="skip the GPU even when one is present")
    p.set_defaults(func=_bench)
    p = sub.add_parser("results", help="write RESULTS.md from figures/*.json (numbers, figures, provenance)")
    p.set_defaults(func=_results)
    _add_training_commands(sub)

    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for provenance
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Does bf16 autocast (with the attention path `auto` picks for it) keep accuracy? The same ViT trained in fp32 and
in bf16 on Fashion-MNIST, the same images in the same order, for each seed; final validation accuracy compared
with the spread between seeds.

A speed-up is worth taking only if accuracy is kept; this measures the second half. Rows already in the results
file are not run again, so an interrupted run continues where it stopped.

    python benchmarks/precision_accuracy.py --out figures/precision_accuracy.json
    python benchmarks/precision_accuracy.py --steps 20 --seeds 0 --out /tmp/p.json   # a quick look

The model: ViT-Ti/8 at 32x32 (L=12, D=192, k=3; 17 tokens), the pre-training recipe (Adam, weight decay 0.1,
10% warm-up then linear decay), batch 128, 400 steps = 51,200 images (about one epoch of the 54,000).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import vitlib
from vitlib.data import get_dataset
from vitlib.records import save_results
from vitlib.train import pretrain_recipe, train

MODEL, IMG, BATCH = "ViT-Ti/8", 32, 128


def run(precision: str, seed: int, steps: int) -> dict:
    """Train one model from scratch; its final validation accuracy and loss, images seen and wall seconds."""
    train_set = get_dataset("fashion_mnist", "train", IMG, seed=seed)
    val_set = get_dataset("fashion_mnist", "val", IMG, seed=seed)
    torch.manual_seed(seed)
    model = vitlib.create_model(MODEL, img_size=IMG, num_classes=10)
    cfg = pretrain_recipe(steps=steps, batch_size=BATCH, warmup_steps=steps // 10, precision=precision, seed=seed,
                          log_every=max(steps // 20, 1), progress=False)
    t0 = time.perf_counter()
    hist = train(model, train_set, cfg, val_set=val_set)
    val = hist["val"][-1]
    return dict(precision=precision, seed=seed, steps=steps, images_seen=steps * BATCH, val_accuracy=val["accuracy"],
                val_loss=val["loss"], final_train_loss=hist["train"][-1]["loss"],
                seconds=time.perf_counter() - t0)


def summary(rows: list[dict]) -> dict:
    """Mean accuracy per precision, the bf16 - fp32 gap, and the spread between seeds (max - min within a mode)."""
    by = {p: [r["val_accuracy"] for r in rows if r["precision"] == p] for p in ("fp32", "bf16")}
    out = {f"mean_{p}": statistics.mean(v) for p, v in by.items() if v}
    if by["fp32"] and by["bf16"]:
        spread = max(max(v) - min(v) for v in by.values())
        out.update(gap=out["mean_bf16"] - out["mean_fp32"], seed_spread=spread,
                   within_seed_spread=abs(out["mean_bf16"] - out["mean_fp32"]) <= spread)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400, help="updates per run (default 400 = 51,200 images)")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1], help="seeds (default 0 1)")
    ap.add_argument("--out", type=Path, required=True, help="results file; rows already there are not run again")
    args = ap.parse_args(argv)
    done = json.loads(args.out.read_text())["results"]["rows"] if args.out.exists() else []
    t0 = time.perf_counter()
    for seed in args.seeds:
        for precision in ("fp32", "bf16"):
            if any((r["precision"], r["seed"], r["steps"]) == (precision, seed, args.steps) for r in done):
                continue
            done.append(run(precision, seed, args.steps))
            r = done[-1]
            print(f"{precision} seed {seed}: val accuracy {r['val_accuracy']:.4f}, loss {r['val_loss']:.4f}, "
                  f"{r['seconds']:.0f} s", flush=True)
            command = " ".join(["python benchmarks/precision_accuracy.py", *(sys.argv[1:] if argv is None else argv)])
            save_results(args.out, dict(model=MODEL, img_size=IMG, batch_size=BATCH, dataset="fashion_mnist",
                                        rows=done, summary=summary(done)),
                         command, time.perf_counter() - t0)
    print(json.dumps(summary(done), indent=1))


if __name__ == "__main__":
    main()

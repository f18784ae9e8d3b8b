"""Training throughput on this machine: fp32 eager vs bf16 autocast vs torch.compile (vitlib.train, one process).

A ViT-Ti-sized model at 32x32 (default ViT-Ti/8, the shipped model's shape: L=12, D=192, k=3, P=8) runs the
real `vitlib.train.train` loop on random images; each mode does `warm` untimed steps (compilation happens
there) then `timed` steps. The modes run in turn, `--repeat` rounds (fp32 eager, bf16, ..., fp32 eager, bf16,
...), because this VM's speed drifts within minutes: a mode's ratio is the median over rounds of its images/s
divided by fp32 eager's in the same round. The loss after the run shows whether a mode keeps the numbers
(same data, same init, so it should match fp32 eager's to about 1e-2).

    PYTHONPATH=. python benchmarks/train_speed.py [--model ViT-Ti/8] [--batch-size 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch
from torch.utils.data import TensorDataset

import vitlib
from vitlib.train import TrainConfig, train

MODES = {"fp32 eager": dict(), "bf16 eager": dict(precision="bf16"), "fp32 compiled": dict(compile=True),
         "bf16 compiled": dict(precision="bf16", compile=True)}


def run(model_name: str, mode: dict, batch_size: int, warm: int, timed: int) -> dict:
    """One training run in `mode`; images/s of the timed window, final loss, wall seconds (compile included)."""
    g = torch.Generator().manual_seed(0)
    n = batch_size * (warm + timed)
    data = TensorDataset(torch.rand(n, 3, 32, 32, generator=g) * 2 - 1, torch.randint(0, 100, (n,), generator=g))
    torch.manual_seed(0)
    model = vitlib.create_model(model_name, img_size=32, num_classes=100)
    cfg = TrainConfig(steps=warm + timed, batch_size=batch_size, lr=1e-3, warmup_steps=1, log_every=warm,
                      progress=False, **mode)
    t0 = time.perf_counter()
    hist = train(model, data, cfg)
    windows = [r["images_per_s"] for r in hist["train"][1:]]  # a record every `warm` steps; the first: warm-up
    rate = statistics.harmonic_mean(windows)  # equal images per window: the timed window's images/s
    return dict(images_per_s=rate, loss=hist["train"][-1]["loss"], seconds=time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-Ti/8", help="a vitlib model name (default ViT-Ti/8)")
    ap.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    ap.add_argument("--warm", type=int, default=3, help="untimed steps per run, compilation included (default 3)")
    ap.add_argument("--timed", type=int, default=9, help="timed steps per run (default 9)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds over all modes (default 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES), help="subset of the modes")
    args = ap.parse_args()
    if args.timed % args.warm:
        ap.error("--timed must be a multiple of --warm (the loop records every --warm steps)")
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = ["fp32 eager"] + [m for m in args.modes if m != "fp32 eager"]  # the reference runs in every round
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads; {args.model} at 32x32, batch {args.batch_size}, {args.timed} timed steps after {args.warm}, "
          f"{args.repeat} rounds", flush=True)
    results = {m: [] for m in modes}
    for i in range(args.repeat):
        for name in modes:
            results[name].append(run(args.model, MODES[name], args.batch_size, args.warm, args.timed))
            print(f"  round {i + 1} {name}: {results[name][-1]['images_per_s']:.1f} img/s", file=sys.stderr,
                  flush=True)
    print("| mode | images/s (median) | ratio vs fp32 eager (paired median) | loss after run | wall s per run |")
    print("|---|---|---|---|---|")
    ref = [r["images_per_s"] for r in results["fp32 eager"]]
    for name in modes:
        rs = results[name]
        rate = statistics.median(r["images_per_s"] for r in rs)
        ratio = statistics.median(r["images_per_s"] / f for r, f in zip(rs, ref))
        print(f"| {name} | {rate:.1f} | {ratio:.2f} | {rs[-1]['loss']:.4f} | "
              f"{statistics.median(r['seconds'] for r in rs):.0f} |", flush=True)


if __name__ == "__main__":
    main()

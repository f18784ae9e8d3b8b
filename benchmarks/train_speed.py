"""Training throughput on this machine: fp32 eager vs bf16 autocast vs torch.compile (vitlib.train, one process).

A ViT-Ti-sized model (ViT-Ti/4: L=12, D=192, k=3, P=4) at 32x32 runs the real `vitlib.train.train` loop on
random images; each mode does `warm` untimed steps (compilation happens there) then `timed` steps, and the
images/s of the timed window are compared with fp32 eager's, measured in the same process. The loss after
the run shows whether a mode keeps the numbers (same data, same init).

    PYTHONPATH=. python benchmarks/train_speed.py [--batch-size 64] [--warm 3] [--timed 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch.utils.data import TensorDataset

import vitlib
from vitlib.train import TrainConfig, train

MODES = {"fp32 eager": dict(), "bf16 eager": dict(precision="bf16"), "fp32 compiled": dict(compile=True),
         "bf16 compiled": dict(precision="bf16", compile=True)}


def run(mode: dict, batch_size: int, warm: int, timed: int, repeat: int) -> dict:
    g = torch.Generator().manual_seed(0)
    n = batch_size * (warm + timed)
    data = TensorDataset(torch.rand(n, 3, 32, 32, generator=g) * 2 - 1, torch.randint(0, 100, (n,), generator=g))
    torch.manual_seed(0)
    model = vitlib.create_model("ViT-Ti/4", img_size=32, num_classes=100)
    cfg = TrainConfig(steps=warm + timed, batch_size=batch_size, lr=1e-3, warmup_steps=1, log_every=warm,
                      progress=False, **mode)
    rates = []
    t0 = time.perf_counter()
    for _ in range(repeat):
        hist = train(model, data, cfg)
        rates.append(hist["train"][-1]["images_per_s"])  # the window after the first `warm` steps
    return dict(images_per_s=max(rates), loss=hist["train"][-1]["loss"], seconds=time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    ap.add_argument("--warm", type=int, default=3, help="untimed steps per mode, compilation included (default 3)")
    ap.add_argument("--timed", type=int, default=9, help="timed steps per mode (default 9)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per mode, best kept (default 1)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--modes", nargs="*", default=list(MODES), help=f"subset of {list(MODES)}")
    args = ap.parse_args()
    assert args.timed % args.warm == 0, "--timed must be a multiple of --warm (records are every --warm steps)"
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads; ViT-Ti/4 at 32x32, batch {args.batch_size}, {args.timed} timed steps after {args.warm}",
          flush=True)
    print("| mode | images/s | ratio vs fp32 eager | loss after run | wall s (incl. compile) |")
    print("|---|---|---|---|---|")
    ref = None
    for name in args.modes:
        r = run(MODES[name], args.batch_size, args.warm, args.timed, args.repeat)
        ref = ref or r["images_per_s"]
        print(f"| {name} | {r['images_per_s']:.1f} | {r['images_per_s'] / ref:.2f} | {r['loss']:.4f} | "
              f"{r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

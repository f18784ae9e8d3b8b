"""Input-pipeline throughput: vitlib.data against a per-image torchvision (PIL) pipeline, same process.

Prints images/s of the training pipeline (random resized crop + flip, [-1, 1], batches of 256 from a
DataLoader) for fractaldb and fashion_mnist at 32 x 32, and the ratio vitlib / torchvision; with
--render N, also the FractalDB rendering speed (N images, no cache, all CPUs).

    PYTHONPATH=. python benchmarks/data_throughput.py [--batches 20] [--workers 0] [--render 100000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from PIL import Image
from torchvision.transforms import v2

from vitlib import fractals
from vitlib.data import get_dataset


class TorchvisionReference(torch.utils.data.Dataset):
    """The usual pipeline: per image, uint8 -> PIL -> RandomResizedCrop -> flip -> tensor -> normalise."""

    def __init__(self, ds, img_size: int):
        self.images, self.targets = ds.images[torch.from_numpy(ds.index)], ds.targets
        self.tf = v2.Compose([v2.RandomResizedCrop(img_size, scale=ds.transform.crop_scale, antialias=True),
                              v2.RandomHorizontalFlip(), v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                              v2.Normalize([0.5], [0.5])])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = self.images[i]
        img = Image.fromarray(x[0].numpy()) if x.shape[0] == 1 else Image.fromarray(x.permute(1, 2, 0).numpy())
        return self.tf(img), self.targets[i]


def images_per_second(ds, batches: int, workers: int, batch_size: int = 256) -> float:
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)  # warm-up (and worker start)
    t0, n = time.perf_counter(), 0
    for _, (x, _) in zip(range(batches), it):
        n += len(x)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--render", type=int, default=0, help="also time rendering this many FractalDB images")
    args = ap.parse_args()
    fdb = dict(num_classes=100, images_per_class=100)
    print(f"| dataset (train, 32x32) | vitlib img/s | torchvision img/s | ratio |  (workers={args.workers})")
    print("|---|---|---|---|")
    for name, kw in (("fractaldb", fdb), ("fashion_mnist", {})):
        ds = get_dataset(name, "train", 32, **kw)
        ours = images_per_second(ds, args.batches, args.workers)
        ref = images_per_second(TorchvisionReference(ds, 32), max(2, args.batches // 4), args.workers)
        print(f"| {name} | {ours:.0f} | {ref:.0f} | {ours / ref:.1f} |", flush=True)
    if args.render:
        per_class = 100
        with tempfile.TemporaryDirectory():
            t0 = time.perf_counter()
            fractals.render_fractaldb(args.render // per_class, per_class, 32, seed=12345, workers=os.cpu_count())
            dt = time.perf_counter() - t0
        print(f"FractalDB render: {args.render} images at 32x32 in {dt:.1f} s = {args.render / dt:.0f} img/s "
              f"on {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()

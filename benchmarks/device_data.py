"""The training data path: make_loader's DataLoader against vitlib.batches' DeviceBatches, paired, one process.

For each dataset, image size and batch size, the two paths deliver augmented training batches (random resized crop
+ flip, [-1, 1]) on `--device` in turn, `--repeat` rounds with the order flipped every round (loader, device,
device, loader, ...), so that a drift in the machine's speed hits both. A measurement is the images/s of
`--batches` batches of a fresh epoch, its first batch left out, the copy to the device included (what the trainer
does: `x.to(device)`). The ratio device / loader is the median over the rounds of the ratio within each round
(>= 1: the device path is no slower). The upload of the corpus to the device (once per run) is timed apart.

    python benchmarks/device_data.py                          # CPU: fractaldb and fashion_mnist, 28 and 32 px,
                                                              # batches of 32 and 128
    python benchmarks/device_data.py --out figures/device_data.json   # and record rows + provenance
    python benchmarks/device_data.py --device cuda --sizes 32 --batch-sizes 256 1024
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from vitlib.batches import DeviceBatches
from vitlib.data import get_dataset
from vitlib.records import save_results
from vitlib.train import make_loader

FRACTALDB = dict(num_classes=100, images_per_class=100, render_size=32, progress=False)  # one corpus, both sizes
DATASETS = {"fractaldb": FRACTALDB, "fashion_mnist": {}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(batches, device: torch.device, count: int) -> float:
    """Images/s of `count` batches of the iterable `batches` (the first one, warm-up, not counted), on `device`."""
    it = iter(batches)
    next(it)
    _sync(device)
    t0, n = time.perf_counter(), 0
    for _, (x, y) in zip(range(count), it):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        n += len(x)
    _sync(device)
    return n / (time.perf_counter() - t0)


def loader_rate(data, device: torch.device, batch_size: int, count: int, epoch: int = 0) -> float:
    """Images/s of the DataLoader path (vitlib.train.make_loader, one process, then a copy to `device`)."""
    return _rate(make_loader(data, batch_size, shuffle=True, epoch=epoch), device, count)


def device_rate(source: DeviceBatches, batch_size: int, count: int, epoch: int = 0) -> float:
    """Images/s of the device path (DeviceBatches.loader: the batch cut and transformed on its device)."""
    return _rate(source.loader(batch_size, shuffle=True, epoch=epoch), source.device, count)


def compare(data, device: torch.device, batch_size: int, count: int, repeat: int) -> dict:
    """Paired, alternating measurements of both paths on one dataset: medians and the paired ratio."""
    t0 = time.perf_counter()
    source = DeviceBatches(data, device)
    _sync(device)
    upload = time.perf_counter() - t0
    count = min(count, len(data) // batch_size - 1)
    rates: dict[str, list[float]] = {"loader": [], "device": []}
    for i in range(repeat):
        for path in (("loader", "device") if i % 2 == 0 else ("device", "loader")):
            rate = (loader_rate(data, device, batch_size, count, epoch=i) if path == "loader"
                    else device_rate(source, batch_size, count, epoch=i))
            rates[path].append(rate)
    ratios = [d / r for d, r in zip(rates["device"], rates["loader"])]
    return dict(batch_size=batch_size, batches=count, loader=statistics.median(rates["loader"]),
                device=statistics.median(rates["device"]), ratio=statistics.median(ratios), ratios=ratios,
                upload_s=upload)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--sizes", type=int, nargs="*", default=[28, 32], help="image sizes S (default 28 32)")
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=[32, 128], help="default 32 128")
    ap.add_argument("--batches", type=int, default=16, help="timed batches per measurement (default 16)")
    ap.add_argument("--repeat", type=int, default=4, help="rounds of both paths (default 4)")
    ap.add_argument("--device", default="cpu", help="where the batches go (default cpu)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a DataLoader worker's)")
    ap.add_argument("--out", type=Path, default=None, help="write the rows and provenance to this JSON file")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; images/s "
          f"(medians of {args.repeat} rounds), ratio = device / loader (paired median)", flush=True)
    print("| dataset | S | batch | DataLoader img/s | device path img/s | ratio |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name in args.datasets:
        for size in args.sizes:
            data = get_dataset(name, "train", size, **DATASETS[name])
            for batch_size in args.batch_sizes:
                r = dict(dataset=name, img_size=size, **compare(data, device, batch_size, args.batches, args.repeat))
                rows.append(r)
                print(f"| {name} | {size} | {batch_size} | {r['loader']:.0f} | {r['device']:.0f} | "
                      f"{r['ratio']:.2f} |", flush=True)
    if args.out is not None:
        command = " ".join(["python benchmarks/device_data.py", *(sys.argv[1:] if argv is None else argv)])
        path = save_results(args.out, dict(rows=rows, device=str(device), threads=torch.get_num_threads()),
                            command, time.perf_counter() - t_start, repeat=args.repeat, batches=args.batches)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Batches made on the training device: the uint8 corpus as one tensor there, the transform run there.

`vitlib.train.make_loader` feeds the trainer from a DataLoader: each batch is cropped, resized and flipped on the
CPU (vitlib.data's `Transform`, one vectorised call per batch), collated and copied to the device. On a GPU
that trains a small ViT at tens of thousands of images/s, that CPU work can be the bottleneck. `DeviceBatches`
uploads a dataset's images once, as one uint8 tensor (N, C, H, W) on the device, and `loader(...)` cuts them into
batches there, in the order `make_loader` would give (it takes make_loader's arguments, less the DataLoader's own):

    source = DeviceBatches(train_set, device)          # once: the upload
    for x, y in source.loader(batch_size, shuffle=True, seed=cfg.seed, epoch=epoch, skip_batches=skip, rank=rank,
                              world_size=world):       # x float32 (B, C, S, S) in [-1, 1], y int64 (B,): on device
        ...

The order is `DistributedSampler`'s permutation of (seed, epoch), rank r taking every world_size-th index,
`skip_batches` dropping the first batches of a resumed epoch (`batch_indices`: the batches `make_loader` gives
its DataLoader).
The images are the same too: the transform is `Transform.__call__` itself, and its random crop boxes and flips
are drawn on the host from torch's global generator with the same calls in the same order (one batch at a time,
when the batch is asked for), so the generator's state after each batch is the DataLoader path's too (dropout
on a CPU, mixup and checkpoints see the same numbers). On the CPU the batches are bitwise those of
`make_loader(..., num_workers=0)`; on a GPU the same boxes are resampled by the GPU's float32 kernels (in full
fp32 even where the trainer turns TF32 on: `vitlib.data.resized_crop`), whose sums round differently
(benchmarks/gpu_acceptance.py measures the difference). Labels are int64 on the device.

Mixup is not here: the trainer mixes the batch it receives (`vitlib.train`), on whatever device the batch is.
Photo datasets decoded lazily from files (pets, flowers102, imagefolder) have no uint8 tensor to upload: they
keep the DataLoader path.

Deviations from the paper: none (the paper's input pipeline is vitlib.data's; this only moves where it runs).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler, Subset

from .data import ImageDataset

__all__ = ["DeviceBatches", "Batches", "batch_indices"]


def batch_indices(n: int, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, skip_batches: int = 0,
                  rank: int = 0, world_size: int = 1, drop_last: bool = True, epochs: int = 1) -> Iterator[list[int]]:
    """The dataset indices of each batch one rank takes, as `vitlib.train.make_loader`'s DataLoader takes them:
    for each of `epochs` epochs from `epoch`, DistributedSampler's (seed, epoch) permutation of range(n), every
    world_size-th from `rank`, cut into batches (the last partial one dropped with `drop_last`), the first
    `skip_batches` of the first epoch left out.

    >>> list(batch_indices(10, 2, shuffle=False, rank=1, world_size=2, skip_batches=1))
    [[5, 7]]
    """
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=drop_last)
    per_epoch = len(sampler) // batch_size if drop_last else -(-len(sampler) // batch_size)
    for e in range(epoch, epoch + epochs):
        sampler.set_epoch(e)
        order = list(sampler)
        for i in range(skip_batches if e == epoch else 0, per_epoch):
            yield order[i * batch_size:(i + 1) * batch_size]


def _base_and_items(dataset: Dataset) -> tuple[ImageDataset, np.ndarray]:
    """The ImageDataset under `dataset` (itself or nested Subsets of it) and the items of it that
    `dataset[0], dataset[1], ...` are, in order."""
    if isinstance(dataset, Subset):
        base, items = _base_and_items(dataset.dataset)
        return base, items[np.asarray(dataset.indices, dtype=np.int64)]
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"DeviceBatches takes a vitlib.data ImageDataset (or a Subset of one), got "
                        f"{type(dataset).__name__}: use vitlib.train.make_loader's DataLoader for other datasets")
    if dataset.images is None:
        raise ValueError(f"{dataset.name!r} is decoded lazily from image files, so there is no uint8 tensor to put "
                         f"on the device: use vitlib.train.make_loader's DataLoader (with num_workers) for it")
    return dataset, np.arange(len(dataset))


class DeviceBatches:
    """A dataset's uint8 images (N, C, H, W) and int64 labels (N,) held on `device`, cut into transformed batches
    there. `dataset` is a vitlib.data ImageDataset held in memory, or a Subset of one (vitlib.data.subset)."""

    def __init__(self, dataset: Dataset, device: str | torch.device):
        base, items = _base_and_items(dataset)
        self.device = torch.device(device)
        self.transform = base.transform
        self.images = base.images[torch.from_numpy(base.index[items])].to(self.device)  # (N, C, H, W) uint8
        self.labels = torch.as_tensor(np.asarray(base.targets, dtype=np.int64)[items]).to(self.device)  # (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, in_chans, img_size, img_size) float32 in [-1, 1] and labels (B,) of the items at `positions`
        (a 1-D int64 tensor on the device), transformed (with augmentation: random crops and flips drawn now)."""
        return self.transform(self.images[positions]), self.labels[positions]

    def loader(self, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, skip_batches: int = 0,
               rank: int = 0, world_size: int = 1, drop_last: bool = True, epochs: int = 1) -> Batches:
        """This rank's batches of `epochs` epochs from `epoch`: `vitlib.train.make_loader`'s batches (same arguments,
        same meaning), as (images, labels) on the device."""
        return Batches(self, dict(batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                  skip_batches=skip_batches, rank=rank, world_size=world_size, drop_last=drop_last,
                                  epochs=epochs))

    def __repr__(self) -> str:
        return (f"DeviceBatches(n={len(self)}, images={tuple(self.images.shape)} uint8, device={self.device}, "
                f"{self.transform})")


class Batches:
    """Batches of a DeviceBatches in `batch_indices(len(source), **order)`'s order: iterating transforms each batch
    when it is asked for (a new iteration draws new crops when the transform augments). `len`: the batches."""

    def __init__(self, source: DeviceBatches, order: dict):
        if order["batch_size"] < 1:
            raise ValueError(f"batch_size must be >= 1, got {order['batch_size']}")
        self.source, self.order = source, order

    def __len__(self) -> int:
        o = self.order
        per_rank = len(DistributedSampler(range(len(self.source)), num_replicas=o["world_size"], rank=o["rank"],
                                          drop_last=o["drop_last"]))
        per_epoch = per_rank // o["batch_size"] if o["drop_last"] else -(-per_rank // o["batch_size"])
        return max(per_epoch * o["epochs"] - o["skip_batches"], 0)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for indices in batch_indices(len(self.source), **self.order):
            yield self.source.batch(torch.tensor(indices, dtype=torch.int64).to(self.source.device, non_blocking=True))

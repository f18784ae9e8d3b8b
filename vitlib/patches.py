"""Images as sequences of patches: the input side of Eq. 1 (Section 3.1), for teaching and analysis.

"To handle 2D images, we reshape the image x in R^{H x W x C} into a sequence of
flattened 2D patches x_p in R^{N x (P^2 C)}, where (H, W) is the resolution of the
original image, C is the number of channels, (P, P) is the resolution of each image
patch, and N = HW / P^2 is the resulting number of patches."

`image_to_patches` writes out that reshape; `patches_to_image` undoes it;
`shuffle_patches` permutes the patches of an image (the inductive-bias
experiment of Section 3.1); `example_image` loads a real photo that ships with
scikit-image, resized and scaled to [-1, 1] as the official code does.
For display: `mosaic` lays tiles out in a grid (patches, filters, fractal samples),
`to_uint8` turns an image tensor into the uint8 array plotly shows.

Deviations from the paper: none. The order of the P^2 C values inside a
flattened patch is a convention: here (C, P, P), the order of `F.unfold` and of a
PyTorch Conv2d weight; the official JAX code flattens (P, P, C). Any fixed order
gives the same x_p E once the rows of E follow it (tests/test_patches.py).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["example_image", "image_to_patches", "patches_to_image", "shuffle_patches", "tile_patches", "to_uint8",
           "mosaic"]


def _check_divisible(x: Tensor, P: int) -> tuple[int, int]:
    if x.ndim != 4:
        raise ValueError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}; "
                         "add a batch dim with x[None]")
    H, W = x.shape[-2:]
    if H % P or W % P:
        raise ValueError(f"image size {H}x{W} is not divisible by the patch size P={P}; "
                         f"resize or crop to a multiple of {P}")
    return H // P, W // P


def image_to_patches(x: Tensor, P: int) -> Tensor:
    """Eq. 1's x_p: (B, C, H, W) -> (B, N, P^2 C), patches in row-major grid order, values in (C, P, P) order.

    Equal to `F.unfold(x, P, stride=P).transpose(1, 2)` (tested), written as a reshape.
    """
    gh, gw = _check_divisible(x, P)
    B, C = x.shape[:2]
    x = x.reshape(B, C, gh, P, gw, P)  # split H into (gh, P) and W into (gw, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, P, P)
    return x.reshape(B, gh * gw, C * P * P)  # (B, N, P^2 C)


def patches_to_image(patches: Tensor, P: int, grid: tuple[int, int], in_chans: int = 3) -> Tensor:
    """The inverse of `image_to_patches`: (B, N, P^2 C) -> (B, C, gh P, gw P)."""
    gh, gw = grid
    B, N, V = patches.shape
    if N != gh * gw or V != in_chans * P * P:
        raise ValueError(f"patches of shape {tuple(patches.shape)} do not fit a {gh}x{gw} grid of "
                         f"{in_chans}x{P}x{P} patches (expected (B, {gh * gw}, {in_chans * P * P}))")
    x = patches.reshape(B, gh, gw, in_chans, P, P).permute(0, 3, 1, 4, 2, 5)  # (B, C, gh, P, gw, P)
    return x.reshape(B, in_chans, gh * P, gw * P)


def shuffle_patches(x: Tensor, P: int, perm: Tensor) -> Tensor:
    """Reorder the P x P patches of x: patch i of the result is patch perm[i] of x (row-major grid order)."""
    gh, gw = _check_divisible(x, P)
    if sorted(perm.tolist()) != list(range(gh * gw)):
        raise ValueError(f"perm must be a permutation of range(N) with N = {gh * gw} patches, "
                         f"got {perm.tolist()[:8]}...")
    return patches_to_image(image_to_patches(x, P)[:, perm], P, (gh, gw), x.shape[1])


def example_image(name: str = "astronaut", size: int = 224) -> Tensor:
    """A real photo from scikit-image ('astronaut' or 'chelsea'), (3, size, size), pixel values in [-1, 1].

    Center-cropped to a square, resized with antialiasing; [0, 255] -> [-1, 1] as the official
    input pipeline does (x / 127.5 - 1).
    """
    import skimage.data  # an optional dependency (vitlib[data]): the photo ships inside the wheel

    if name not in ("astronaut", "chelsea"):
        raise ValueError(f"unknown example image {name!r}; use 'astronaut' or 'chelsea' (from skimage.data)")
    img = torch.from_numpy(getattr(skimage.data, name)().copy()).permute(2, 0, 1).float()  # (3, H, W) in [0, 255]
    h, w = img.shape[-2:]
    s = min(h, w)
    img = img[:, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    img = F.interpolate(img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return (img.clamp(0, 255) / 127.5 - 1.0).contiguous()


def mosaic(tiles, cols: int, gap: int = 1, fill: float = 0) -> np.ndarray:
    """Tiles (n, h, w[, c]) laid out row by row, `cols` per row, with `gap` pixels of `fill` between them:
    one array (rows (h + gap) - gap, cols (w + gap) - gap[, c]) of the tiles' dtype.

    >>> mosaic(np.ones((3, 2, 2), np.uint8), cols=2).tolist()
    [[1, 1, 0, 1, 1], [1, 1, 0, 1, 1], [0, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 0, 0, 0]]
    """
    tiles = np.asarray(tiles)
    n, h, w = tiles.shape[:3]
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, *tiles.shape[3:]), fill, dtype=tiles.dtype)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return out


def tile_patches(patches: Tensor, P: int, ncols: int, gap: int = 2, in_chans: int = 3, fill: float = 1.0) -> Tensor:
    """Lay a sequence of flattened patches (N, P^2 C) out as tiles, ncols per row, `gap` pixels of `fill` between.

    Returns an image (C, rows (P + gap) - gap, ncols (P + gap) - gap) for display: the sequence of Eq. 1,
    read left to right, top to bottom.
    """
    tiles = patches.detach().cpu().reshape(-1, in_chans, P, P).permute(0, 2, 3, 1)  # (N, P, P, C)
    return torch.from_numpy(mosaic(tiles.numpy(), ncols, gap, fill)).permute(2, 0, 1)


def to_uint8(x: Tensor, value_range: tuple[float, float] = (-1.0, 1.0), rgb: bool = False) -> np.ndarray:
    """An image (C, H, W) with values in value_range as a uint8 array (H, W, C) for plotting; rgb=True
    gives 3 channels (a grey image repeated, extra channels dropped)."""
    lo, hi = value_range
    x = ((x.detach().float().cpu() - lo) * (255 / (hi - lo))).round().clamp(0, 255).to(torch.uint8)
    if rgb:
        x = x.expand(3, -1, -1) if x.shape[0] == 1 else x[:3]
    return x.permute(1, 2, 0).numpy()

"""Patches of Eq. 1 (vitlib.patches): reshape = F.unfold, inverse, shuffle, the example photo."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vitlib
from vitlib.patches import (
    example_image,
    image_to_patches,
    mosaic,
    patches_to_image,
    shuffle_patches,
    tile_patches,
    to_uint8,
)


def test_image_to_patches_equals_unfold_and_counts_n():
    x = torch.randn(2, 3, 24, 32)
    p = image_to_patches(x, 8)
    assert p.shape == (2, 24 * 32 // 8**2, 8 * 8 * 3)  # N = HW / P^2, each P^2 C values
    assert torch.equal(p, F.unfold(x, kernel_size=8, stride=8).transpose(1, 2))
    # patch 1 is the second patch of the first row, channel 0 first
    assert torch.equal(p[0, 1, :64], x[0, 0, :8, 8:16].reshape(-1))


def test_patches_to_image_inverts():
    x = torch.randn(1, 3, 16, 24)
    assert torch.equal(patches_to_image(image_to_patches(x, 4), 4, (4, 6), 3), x)


def test_patch_embedding_is_E_times_flattened_patches_in_any_fixed_order():
    # Eq. 1: x_p E with E in R^{(P^2 C) x D}; the (C, P, P) and the official (P, P, C) orders agree once E follows.
    m = vitlib.create_model("ViT-Ti/8", img_size=16, num_classes=0)
    x = torch.randn(2, 3, 16, 16)
    W, b = m.patch_embed.proj.weight, m.patch_embed.proj.bias  # (D, C, P, P)
    chw = image_to_patches(x, 8) @ W.flatten(1).T + b
    hwc = image_to_patches(x, 8).reshape(2, 4, 3, 8, 8).permute(0, 1, 3, 4, 2).flatten(2)
    E_hwc = W.permute(2, 3, 1, 0).reshape(-1, W.shape[0])  # the official kernel layout (P, P, C, D), flattened
    assert torch.allclose(chw, m.patch_embed(x), atol=1e-5)
    assert torch.allclose(hwc @ E_hwc + b, m.patch_embed(x), atol=1e-5)


def test_shuffle_patches_moves_whole_patches():
    x = torch.randn(1, 3, 16, 16)
    perm = torch.tensor([3, 0, 2, 1])
    y = shuffle_patches(x, 8, perm)
    assert torch.equal(y[..., :8, :8], x[..., 8:, 8:])  # new patch 0 = old patch 3 (bottom right)
    assert torch.equal(y[..., :8, 8:], x[..., :8, :8])
    assert torch.equal(image_to_patches(y, 8), image_to_patches(x, 8)[:, perm])
    with pytest.raises(ValueError, match="permutation"):
        shuffle_patches(x, 8, torch.tensor([0, 0, 1, 2]))


def test_bad_sizes_say_what_to_do():
    with pytest.raises(ValueError, match="not divisible by the patch size P=16"):
        image_to_patches(torch.randn(1, 3, 20, 32), 16)
    with pytest.raises(ValueError, match="do not fit"):
        patches_to_image(torch.randn(1, 5, 48), 4, (2, 2), 3)


def test_example_image_in_minus_one_one():
    x = example_image("chelsea", 32)
    assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert x.max() - x.min() > 1  # a real photo, not a flat image
    with pytest.raises(ValueError, match="astronaut"):
        example_image("lena")


def test_tile_patches_lays_the_sequence_out_row_by_row():
    x = torch.randn(1, 3, 8, 12)
    tiles = tile_patches(image_to_patches(x, 4)[0], 4, ncols=2, gap=1, fill=9.0)  # 6 patches, 3 lines of 2
    assert tiles.shape == (3, 3 * 5 - 1, 2 * 5 - 1)
    assert torch.equal(tiles[:, :4, :4], x[0, :, :4, :4])  # patch 0
    assert torch.equal(tiles[:, 5:9, :4], x[0, :, :4, 8:12])  # patch 2 starts the second line
    assert torch.all(tiles[:, 4] == 9.0)  # the gap


def test_to_uint8_maps_minus_one_one_to_0_255():
    img = to_uint8(torch.tensor([-1.0, 0.0, 1.0]).reshape(3, 1, 1))
    assert img.shape == (1, 1, 3) and img.dtype.name == "uint8" and img.ravel().tolist() == [0, 128, 255]


def test_mosaic_by_hand():
    tiles = np.arange(3 * 2 * 2).reshape(3, 2, 2)
    m = mosaic(tiles, cols=2, fill=-1)
    assert m.shape == (5, 5)
    assert (m[:2, :2] == tiles[0]).all() and (m[:2, 3:] == tiles[1]).all() and (m[3:, :2] == tiles[2]).all()
    assert (m[2] == -1).all() and (m[:, 2] == -1).all() and (m[3:, 3:] == -1).all()


def test_to_uint8_rgb_repeats_a_grey_image_and_takes_a_value_range():
    img = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 1, 3)
    assert to_uint8(img, rgb=True)[0].tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255]]
    assert to_uint8(torch.tensor([0.0, 0.5, 1.0]).reshape(3, 1, 1), (0.0, 1.0)).ravel().tolist() == [0, 128, 255]

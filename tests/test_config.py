import dataclasses

import pytest

import vitlib
from vitlib.config import ViTConfig, parse_name, vit_config


@pytest.mark.parametrize(
    "name, expected",
    [("ViT-B/16", ("B", 16)), ("vit_b16", ("B", 16)), ("ViT-L/32", ("L", 32)), ("ViT-H/14", ("H", 14)),
     ("ViT-Ti/4", ("Ti", 4)), ("vit_s16", ("S", 16)), ("vit_tiny_patch16", ("Ti", 16)), ("ViT-Large/16", ("L", 16))],
)
def test_parse_name(name, expected):
    assert parse_name(name) == expected


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="ViT-B/16"):
        vitlib.create_model("ViT-XL/16")


def test_unknown_override_is_an_error_not_ignored():
    with pytest.raises(TypeError, match="patch"):
        vit_config("ViT-B/16", patches=8)


def test_table1_rows():
    # Table 1: layers, hidden size D, MLP size, heads.
    assert (vit_config("ViT-B/16").num_layers, vit_config("ViT-B/16").hidden_size) == (12, 768)
    L = vit_config("ViT-L/16")
    assert (L.num_layers, L.hidden_size, L.mlp_size, L.num_heads) == (24, 1024, 4096, 16)
    H = vit_config("ViT-H/14")
    assert (H.num_layers, H.hidden_size, H.mlp_size, H.num_heads, H.patch_size) == (32, 1280, 5120, 16, 14)


def test_config_is_frozen_and_derived_values():
    cfg = vit_config("ViT-B/16", img_size=384)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden_size = 10
    assert cfg.num_patches == (384 // 16) ** 2 == 576  # N = HW / P^2
    assert cfg.head_dim == 64  # D_h = D / k
    assert dataclasses.replace(cfg, img_size=(32, 48), patch_size=16).grid_size == (2, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(img_size=30, patch_size=16), "not divisible by patch_size"),
    (dict(hidden_size=10, num_heads=3), "divisible by num_heads"),
    (dict(pool="max"), "pool"),
    (dict(gelu="relu"), "gelu"),
])
def test_bad_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ViTConfig(**kwargs)

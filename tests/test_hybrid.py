"""The hybrid (Section 3.1): a ResNet feature map as the input sequence of the same VisionTransformer."""

import dataclasses

import pytest
import timm
import torch
from helpers import randomise

import vitlib
from vitlib.config import RESNET_DEPTHS, ViTConfig, vit_config
from vitlib.flops import count_parameters
from vitlib.hybrid import HybridEmbedding
from vitlib.interop import from_timm, load_into
from vitlib.model import resample_pos_embed


def tiny(name="R50+ViT-B/16", img_size=64, **kw):
    # The named backbone with a narrow 2-layer encoder: fast, and the ResNet part is the real one.
    kw = dict(img_size=img_size, num_classes=10, hidden_size=64, num_heads=4, mlp_size=128, num_layers=2) | kw
    m = vitlib.create_model(name, **kw)
    torch.nn.init.normal_(m.head.weight, std=0.02)
    return m.eval()


@pytest.mark.parametrize("img_size, count", [(224, 98_659_112), (384, 98_950_952)])
def test_parameter_count_r50_vit_b16(img_size, count):
    # paper.md: R50+ViT-B/16 98,659,112 at 224; timm's vit_base_r50_s16_384 has 98,950,952 (577 positions).
    with torch.device("meta"):
        m = vitlib.create_model("R50+ViT-B/16", img_size=img_size)
    assert count_parameters(m) == count


def test_timm_parity_r50_vit_b16_384():
    # timm's vit_base_r50_s16_384 (the paper's R50+ViT-B/16 at fine-tuning resolution), batch of 1.
    ref = randomise(timm.create_model("vit_base_r50_s16_384", pretrained=False))
    model = load_into(vitlib.create_model("R50+ViT-B/16", img_size=384), from_timm(ref.state_dict())).eval()
    x = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        y, y_ref = model(x), ref(x)
    assert y_ref.abs().max() > 0.1
    assert (y - y_ref).abs().max().item() <= 1e-4
    assert count_parameters(model) == count_parameters(ref) == 98_950_952


@pytest.mark.parametrize("timm_name, ours", [("vit_small_r26_s32_224", "R26+ViT-S/32"),
                                             ("vit_tiny_r_s16_p8_224", "R+ViT-Ti/32")])
def test_timm_parity_other_hybrids(timm_name, ours):
    # Other backbones by name: the full R26 at /32; the root alone with 8x8 patches on its /4 map.
    ref = randomise(timm.create_model(timm_name, pretrained=False, img_size=64))
    model = load_into(vitlib.create_model(ours, img_size=64), from_timm(ref.state_dict())).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name, backbone", [("R50+ViT-B/16", (3, 4, 9)), ("R50+ViT-L/32", (3, 4, 6, 3)),
                                            ("R26+ViT-S/32", (2, 2, 2, 2)), ("R26+ViT-Ti/8", (2, 6)),
                                            ("R101+ViT-B/16", (3, 4, 26)), ("R50+ViT-B/64", (3, 4, 6, 3)),
                                            ("R+ViT-Ti/32", ())])
def test_names_give_backbones_that_keep_the_layer_count(name, backbone):
    cfg = vit_config(name, img_size=256)
    assert cfg.backbone == backbone
    depth = name.split("+")[0][1:]
    if depth:  # Section 3.1: "remove stage 4, place the same number of layers in stage 3"
        assert sum(cfg.backbone) == sum(RESNET_DEPTHS[int(depth)])


def test_feature_map_is_one_sixteenth_and_patches_are_one_pixel():
    m = tiny()
    x = torch.randn(2, 3, 64, 96)
    f = m.patch_embed.feature_map(x)
    assert f.shape == (2, 1024, 4, 6)  # stage 3 of R50: 1024 channels at 1/16
    assert m.patch_embed.proj.kernel_size == (1, 1)  # "patch size of one pixel"
    # A 1x1 patch is one map cell projected by E: tokens = map cells (row-major) times E.
    E = m.patch_embed.proj.weight.flatten(1)  # (D, 1024)
    tokens = f.flatten(2).transpose(1, 2) @ E.T + m.patch_embed.proj.bias
    assert torch.allclose(m.patch_embed(x), tokens, atol=1e-4)


def test_sequence_length_equals_plain_vit_with_same_p():
    # N = HW / P^2 with P the effective patch size: R50+ViT-B/16 and ViT-B/16 both see 196 tokens at 224.
    assert vit_config("R50+ViT-B/16").num_patches == vit_config("ViT-B/16").num_patches == 196
    m = tiny("R50+ViT-B/32", img_size=64)  # full R50 at /32, 1x1 patches
    assert m.patch_embed.feature_map(torch.randn(1, 3, 64, 64)).shape[-2:] == (2, 2)
    m = tiny("R26+ViT-Ti/16", img_size=64, backbone=(2, 2))  # map /8, 2x2 patches on it
    assert m.patch_embed.proj.kernel_size == (2, 2) and m.cfg.num_patches == 16


def test_return_attention_and_fused_path_agree():
    m = tiny()
    x = torch.randn(2, 3, 64, 64)
    fast = m(x)
    slow, attn = m(x, return_attention=True)
    assert torch.allclose(fast, slow, atol=1e-5)
    assert len(attn) == 2 and attn[0].shape == (2, 4, 17, 17)  # 4 x 4 map cells + the class token
    assert torch.allclose(attn[-1].sum(-1), torch.ones(2, 4, 17), atol=1e-5)


def test_position_embedding_resampled_for_another_size():
    m = tiny()
    x = torch.randn(1, 3, 96, 96)  # a 6x6 grid instead of 4x4
    z = m.embed(x)
    pos = resample_pos_embed(m.pos_embed, (6, 6), 1, old_grid=(4, 4))
    tokens = m.patch_embed(x)
    expected = torch.cat([m.cls_token, tokens], dim=1) + pos
    assert torch.allclose(z, expected, atol=1e-6)
    assert m(x).shape == (1, 10)


def test_bad_input_errors():
    m = tiny()
    with pytest.raises(ValueError, match="input channels"):
        m(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="not divisible by the patch size P=16"):
        m(torch.randn(1, 3, 64, 72))
    with pytest.raises(ValueError, match="multiple of the backbone's stride 16"):
        ViTConfig(backbone=(3, 4, 9), patch_size=8)
    with pytest.raises(ValueError, match="R50"):
        vit_config("R34+ViT-B/16")
    with pytest.raises(ValueError, match="multiple of 4"):
        vit_config("R50+ViT-B/6")
    with pytest.raises(ValueError, match="multiple of the ResNet's stride"):
        HybridEmbedding((3, 4, 9), 8, 3, 64)


def test_config_alone_rebuilds_the_hybrid():
    # Checkpoints store the config as JSON: a list backbone rebuilds the same model.
    m = tiny()
    d = dataclasses.asdict(m.cfg) | {"backbone": list(m.cfg.backbone)}
    m2 = load_into(vitlib.VisionTransformer(ViTConfig(**d)), m.state_dict()).eval()
    assert m2.cfg == m.cfg
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(m(x), m2(x))


def test_init_like_official():
    m = vitlib.create_model("R26+ViT-Ti/8", img_size=32, num_classes=10)
    assert torch.all(m.head.weight == 0) and torch.all(m.cls_token == 0)
    unit = m.patch_embed.backbone.stages[0][0]
    assert torch.all(unit.norm3.weight == 0)  # the official code's zero-init of each unit's last GN scale
    assert abs(m.pos_embed.std().item() - 0.02) < 0.005
    torch.nn.init.normal_(m.head.weight, std=0.02)
    y = m(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(y).all()
    y.sum().backward()
    assert m.patch_embed.backbone.stem.conv.weight.grad.abs().sum() > 0  # gradient reaches the ResNet root

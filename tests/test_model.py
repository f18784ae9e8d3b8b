import math

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from helpers import assert_every_attention_path_agrees, randomise

import vitlib
from vitlib.checkpoints import load_into
from vitlib.flops import count_parameters
from vitlib.model import choose_attention_path, resample_pos_embed, set_attention_path

# Exact parameter counts at 224 px, 1000 classes (paper.md; the official implementation's tests pin
# ViT-B/16 at 86,567,656, and timm and torchvision agree). Table 1 rounds these to 86M / 307M / 632M.
PARAM_COUNTS = {
    "ViT-Ti/16": 5_717_416,
    "ViT-S/16": 22_050_664,
    "ViT-B/16": 86_567_656,
    "ViT-B/32": 88_224_232,
    "ViT-L/16": 304_326_632,
    "ViT-L/32": 306_535_400,
    "ViT-H/14": 632_045_800,
}


@pytest.mark.parametrize("name", PARAM_COUNTS)
def test_parameter_count(name):
    with torch.device("meta"):  # counts need shapes only: no memory for ViT-H
        m = vitlib.create_model(name)
    assert count_parameters(m) == PARAM_COUNTS[name]


def tiny(**kw):
    kw = dict(img_size=32, num_classes=10, **kw)
    return vitlib.create_model("ViT-Ti/8", **kw)


@pytest.mark.parametrize("name", ["ViT-Ti/16", "ViT-S/16", "ViT-B/16", "ViT-L/16", "ViT-H/14"])
def test_every_variant_forward_backward_at_tiny_size(name):
    # Each Table 1 variant's depth and heads, but narrowed so the test stays fast: the width is kept
    # per head (D_h = 16) and the image holds 2 x 2 patches.
    cfg = vitlib.vit_config(name)
    P = cfg.patch_size
    m = vitlib.create_model(name, img_size=2 * P, num_classes=5, hidden_size=16 * cfg.num_heads,
                            mlp_size=32, num_layers=min(cfg.num_layers, 4))
    torch.nn.init.normal_(m.head.weight, std=0.02)
    x = torch.randn(2, 3, 2 * P, 2 * P)
    y = m(x)
    assert y.shape == (2, 5) and torch.isfinite(y).all()
    y.sum().backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert m.patch_embed.proj.weight.grad.abs().sum() > 0  # gradient reaches Eq. 1


def test_init_like_official():
    m = vitlib.create_model("ViT-S/16")
    assert torch.all(m.head.weight == 0) and torch.all(m.head.bias == 0)  # zero head
    assert torch.all(m.cls_token == 0)
    assert abs(m.pos_embed.std().item() - 0.02) < 0.002  # E_pos ~ N(0, 0.02)
    # Xavier uniform per D x D matrix of U_qkv: bound sqrt(6 / (D + D)).
    D = 384
    assert m.blocks[0].attn.qkv.weight.abs().max() <= math.sqrt(6 / (2 * D)) + 1e-6
    assert m.blocks[0].attn.qkv.weight.abs().max() > 0.9 * math.sqrt(6 / (2 * D))


def test_patch_embedding_is_linear_projection_of_flattened_patches():
    # Eq. 1: x_p^i E with E in R^{(P^2 C) x D} equals Conv2d(kernel = stride = P).
    m = tiny()
    x = torch.randn(2, 3, 32, 32)
    P, D = 8, m.cfg.hidden_size
    patches = F.unfold(x, kernel_size=P, stride=P).transpose(1, 2)  # (B, N, C P^2)
    E = m.patch_embed.proj.weight.reshape(D, -1).T  # (C P^2, D)
    ours = patches @ E + m.patch_embed.proj.bias
    assert torch.allclose(ours, m.patch_embed(x), atol=1e-5)


def test_fused_attention_equals_explicit_eq6_7():
    m = tiny(qkv_bias=True).eval()
    x = torch.randn(3, 3, 32, 32)
    fast = m(x)
    slow, attn = m(x, return_attention=True)
    assert torch.allclose(fast, slow, atol=1e-5)
    feats_fast, _ = m.encode(x)
    feats_slow, _ = m.encode(x, return_attention=True)
    assert torch.allclose(feats_fast, feats_slow, atol=1e-5)
    assert len(attn) == m.cfg.num_layers
    T = m.cfg.num_patches + 1
    assert attn[0].shape == (3, m.cfg.num_heads, T, T)
    assert torch.allclose(attn[0].sum(-1), torch.ones(3, m.cfg.num_heads, T), atol=1e-5)  # rows of A sum to 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_attention_path_equals_explicit_eq6_7(precision):
    """Each attention path (fused, explicit with fp32 softmax, explicit with bf16 softmax) gives the same logits
    and gradients as the fp32 explicit reference, in fp32 (to 1e-5) and under bf16 autocast (to bf16 rounding)."""
    x = torch.randn(4, 3, 32, 32)
    ref = vitlib.create_model("ViT-Ti/8", img_size=32, num_classes=5)
    torch.nn.init.normal_(ref.head.weight, std=0.5)  # a zero head would hide differences in the tokens
    assert_every_attention_path_agrees(ref, x, lambda m: [m.blocks[0].attn.qkv.weight.grad], precision)


def test_attention_path_rule_is_explicit_on_cpu_in_bf16_only():
    q = torch.zeros(1, 1, 2, 4)
    assert choose_attention_path(q) == "fused"
    assert choose_attention_path(q.bfloat16()) == "explicit"
    with pytest.raises(ValueError, match="attention path"):
        set_attention_path(tiny(), "flash")


def test_attention_scaled_by_sqrt_head_dim_not_hidden_size():
    m = tiny()
    attn = m.blocks[0].attn
    z = torch.randn(1, 5, m.cfg.hidden_size)
    q, k, _ = attn.qkv(z).reshape(1, 5, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    expected = (q @ k.transpose(-2, -1) / math.sqrt(m.cfg.head_dim)).softmax(-1)
    _, A = attn(z, return_attention=True)
    assert torch.allclose(A, expected, atol=1e-6)


def test_pre_training_head_is_tanh_mlp():
    m = tiny(representation_size=48)
    torch.nn.init.normal_(m.head.weight)
    x = torch.randn(2, 3, 32, 32)
    tokens = m.forward_features(x)
    y = m.head(torch.tanh(m.pre_logits.fc(tokens[:, 0])))
    assert torch.allclose(m(x), y, atol=1e-5)
    assert m.head.in_features == 48


def test_gap_pooling_has_no_class_token():
    m = tiny(pool="gap")
    assert m.cls_token is None and m.pos_embed.shape[1] == m.cfg.num_patches
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_no_position_embedding_makes_vit_permutation_equivariant():
    # Section 3.1: without E_pos, shuffling the patches only permutes the tokens.
    m = tiny(pos_embed="none").eval()
    x = torch.randn(1, 3, 32, 32)
    perm = torch.randperm(16)
    patches = x.reshape(1, 3, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).reshape(1, 16, 3, 8, 8)
    shuffled = patches[:, perm].reshape(1, 4, 4, 3, 8, 8).permute(0, 3, 1, 4, 2, 5).reshape(1, 3, 32, 32)
    t1 = m.forward_features(x)
    t2 = m.forward_features(shuffled)
    assert torch.allclose(t1[:, 1:][:, perm], t2[:, 1:], atol=1e-5)
    assert torch.allclose(t1[:, 0], t2[:, 0], atol=1e-5)  # the class token does not see the order


def test_drop_path_and_dropout_only_in_training():
    m = tiny(dropout=0.1, drop_path=0.2)
    x = torch.randn(2, 3, 32, 32)
    torch.nn.init.normal_(m.head.weight)
    m.eval()
    assert torch.equal(m(x), m(x))
    m.train()
    assert not torch.allclose(m(x), m(x))


def test_resample_same_grid_is_identity():
    pe = torch.randn(1, 1 + 14 * 14, 32)
    assert torch.equal(resample_pos_embed(pe, 14), pe)


def test_resample_matches_official_scipy_zoom():
    # The official code: scipy.ndimage.zoom(grid, (new/old, new/old, 1), order=1).
    old, new, D = 7, 12, 5
    pe = torch.randn(1, 1 + old * old, D, dtype=torch.float64)
    ours = resample_pos_embed(pe, new)
    grid = pe[0, 1:].reshape(old, old, D).numpy()
    ref = scipy.ndimage.zoom(grid, (new / old, new / old, 1), order=1)
    assert np.allclose(ours[0, 1:].reshape(new, new, D).numpy(), ref, atol=1e-10)
    assert torch.equal(ours[:, :1], pe[:, :1])  # class token kept


def test_resample_bicubic_option_and_bad_mode():
    pe = torch.randn(1, 1 + 16, 8)
    assert resample_pos_embed(pe, (3, 5), mode="bicubic").shape == (1, 1 + 15, 8)
    with pytest.raises(ValueError, match="bilinear"):
        resample_pos_embed(pe, 3, mode="nearest")


def test_other_image_size_resamples_on_the_fly():
    m = tiny().eval()
    x = torch.randn(1, 3, 48, 40)
    y = m(x)
    assert y.shape == (1, 10)
    # Same as building the model at that size with the resampled embedding.
    m2 = vitlib.create_model("ViT-Ti/8", img_size=(48, 40), num_classes=10).eval()
    sd = m.state_dict()
    sd["pos_embed"] = resample_pos_embed(sd["pos_embed"], (6, 5))
    m2.load_state_dict(sd)
    assert torch.allclose(m2(x), y, atol=1e-5)


@pytest.mark.parametrize("x, match", [
    (torch.randn(3, 32, 32), "4D"),
    (torch.randn(1, 1, 32, 32), "3 input channels"),
    (torch.randn(1, 3, 30, 32), "not divisible by the patch size P=8"),
])
def test_bad_input_errors(x, match):
    with pytest.raises(ValueError, match=match):
        tiny()(x)


def test_tanh_gelu_option():
    assert tiny(gelu="tanh").blocks[0].mlp.act.approximate == "tanh"
    assert tiny().blocks[0].mlp.act.approximate == "none"


# LayerScale (not in the paper; for models trained with it, such as DINOv2): off by default, and then nothing changes.

PAPER_BLOCK_PARAMETERS = ["attn.proj.bias", "attn.proj.weight", "attn.qkv.bias", "attn.qkv.weight", "mlp.fc1.bias",
                          "mlp.fc1.weight", "mlp.fc2.bias", "mlp.fc2.weight", "norm1.bias", "norm1.weight",
                          "norm2.bias", "norm2.weight"]


def test_layer_scale_off_by_default_is_the_papers_block():
    m = tiny()
    assert m.cfg.layer_scale is None
    assert sorted(n for n, _ in m.blocks[0].named_parameters()) == PAPER_BLOCK_PARAMETERS
    assert not any("ls1" in k or "ls2" in k or "gamma" in k for k in m.state_dict())
    ls = tiny(layer_scale=1e-5)
    assert sorted(n for n, _ in ls.blocks[0].named_parameters()) == sorted(PAPER_BLOCK_PARAMETERS
                                                                           + ["ls1.gamma", "ls2.gamma"])
    L, D = m.cfg.num_layers, m.cfg.hidden_size
    assert count_parameters(ls) == count_parameters(m) + 2 * L * D
    assert torch.all(ls.blocks[0].ls1.gamma == 1e-5) and torch.all(ls.blocks[-1].ls2.gamma == 1e-5)


def test_layer_scale_of_one_equals_the_papers_block():
    m = randomise(tiny(layer_scale=1.0))
    with torch.no_grad():
        for blk in m.blocks:
            blk.ls1.gamma.fill_(1.0), blk.ls2.gamma.fill_(1.0)
    paper = load_into(tiny(), {k: v for k, v in m.state_dict().items() if ".ls" not in k}).eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(m(x), paper(x), atol=1e-6)


def test_layer_scale_block_equals_hand_written_block():
    cfg = vitlib.vit_config("ViT-Ti/8", img_size=32, num_classes=10, layer_scale=0.1)
    blk = vitlib.model.Block(cfg).eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    z = torch.randn(2, 17, cfg.hidden_size)
    B, T, D, k, Dh = *z.shape, cfg.num_heads, cfg.head_dim
    # By hand: z' = gamma_1 * MSA(LN(z)) + z (Eq. 2 with LayerScale), z_out = gamma_2 * MLP(LN(z')) + z' (Eq. 3).
    ln = lambda x, n: F.layer_norm(x, (D,), n.weight, n.bias, cfg.layer_norm_eps)
    q, k_, v = (ln(z, blk.norm1) @ blk.attn.qkv.weight.T + blk.attn.qkv.bias).reshape(B, T, 3, k, Dh).unbind(2)
    A = torch.einsum("bqhd,bkhd->bhqk", q, k_).div(math.sqrt(Dh)).softmax(-1)  # Eq. 6
    msa = torch.einsum("bhqk,bkhd->bqhd", A, v).reshape(B, T, D) @ blk.attn.proj.weight.T + blk.attn.proj.bias
    z1 = z + blk.ls1.gamma * msa
    h = F.gelu(ln(z1, blk.norm2) @ blk.mlp.fc1.weight.T + blk.mlp.fc1.bias)
    expected = z1 + blk.ls2.gamma * (h @ blk.mlp.fc2.weight.T + blk.mlp.fc2.bias)
    out, _ = blk(z)
    assert torch.allclose(out, expected, atol=1e-5), (out - expected).abs().max()


@pytest.mark.parametrize("value", [0.0, -1e-5, float("nan"), float("inf"), True, "1e-5"])
def test_layer_scale_must_be_none_or_a_positive_number(value):
    with pytest.raises(ValueError, match="layer_scale"):
        vitlib.ViTConfig(layer_scale=value)


def test_layer_scale_in_the_config_dict_and_checkpoints(tmp_path):
    from vitlib.checkpoints import load_model, save_checkpoint
    from vitlib.config import config_from_dict, config_to_dict

    cfg = vitlib.vit_config("ViT-Ti/8", img_size=16, num_classes=3, num_layers=1, layer_scale=1e-5)
    assert config_to_dict(cfg)["layer_scale"] == 1e-5 and config_from_dict(vitlib.ViTConfig, config_to_dict(cfg)) == cfg
    old = {k: v for k, v in config_to_dict(cfg).items() if k != "layer_scale"}  # a checkpoint from before the field
    assert config_from_dict(vitlib.ViTConfig, old).layer_scale is None
    m = randomise(vitlib.VisionTransformer(cfg))
    save_checkpoint(tmp_path / "ls", m)
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(load_model(tmp_path / "ls").eval()(x), m(x))

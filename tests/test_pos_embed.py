"""Appendix D.4 (Table 8): the kinds of position information, `ViTConfig.pos_embed`.

"learned" (1D, Eq. 1) is covered by tests/test_model.py; here the other rows of the ablation: "none",
"learned_2d" (X and Y tables of D/2, concatenated) and "relative" (1D relative attention).
"""

import math

import pytest
import torch
from helpers import assert_every_attention_path_agrees

import vitlib
from vitlib.analysis import position_embedding_grid, position_embedding_similarity
from vitlib.checkpoints import load_model, save_checkpoint
from vitlib.config import POS_EMBEDS
from vitlib.finetune import new_head, new_resolution
from vitlib.flops import count_parameters, forward_flops, vit_macs_by_hand
from vitlib.interop import save_npz
from vitlib.model import (
    pos_embed_2d,
    relative_position_index,
    resample_pos_embed,
    resample_pos_embed_1d,
    resample_position_state,
)


def tiny(pos_embed, **kw):
    """ViT-Ti/8 at 32 px, 2 blocks: a 4 x 4 grid, N = 16, D = 192, k = 3, D_h = 64."""
    return vitlib.create_model("ViT-Ti/8", **{**dict(img_size=32, num_classes=10, pos_embed=pos_embed,
                                                     num_layers=2), **kw})


def with_random_head(m):
    torch.nn.init.normal_(m.head.weight, std=0.5)  # a zero head would hide differences in the tokens
    return m.eval()


# --- configuration and shapes -----------------------------------------------------------------------------------

def test_pos_embed_kinds_and_bad_values():
    assert POS_EMBEDS == ("learned", "learned_2d", "relative", "none")
    with pytest.raises(ValueError, match="Appendix D.4"):
        vitlib.vit_config("ViT-Ti/8", pos_embed="2d")
    with pytest.raises(ValueError, match="must be even"):
        vitlib.vit_config("ViT-Ti/8", pos_embed="learned_2d", hidden_size=9, num_heads=3)


@pytest.mark.parametrize("pool", ["token", "gap"])
def test_parameter_shapes_of_each_kind(pool):
    D, Dh, (gh, gw) = 192, 64, (6, 4)
    T = gh * gw + (pool == "token")
    none = tiny("none", pool=pool, img_size=(48, 32))
    learned = tiny("learned", pool=pool, img_size=(48, 32))
    two_d = tiny("learned_2d", pool=pool, img_size=(48, 32))
    rel = tiny("relative", pool=pool, img_size=(48, 32))
    assert learned.pos_embed.shape == (1, T, D)
    assert two_d.pos_embed is None and two_d.pos_embed_x.shape == (1, gw, D // 2)
    assert two_d.pos_embed_y.shape == (1, gh, D // 2)
    assert rel.pos_embed is None and rel.pos_embed_x is None
    M = 2 * gh * gw - 1 + 3 * (pool == "token")
    assert all(b.attn.rel_pos.table.shape == (M, Dh) for b in rel.blocks)
    assert all(b.attn.rel_pos.index.shape == (T, T) for b in rel.blocks)
    assert all(b.attn.rel_pos is None for m in (none, learned, two_d) for b in m.blocks)
    # Parameter counts: "none" plus (N + 1) D, (gh + gw) D/2, L M D_h.
    base, L = count_parameters(none), none.cfg.num_layers
    assert count_parameters(learned) - base == T * D
    assert count_parameters(two_d) - base == (gh + gw) * D // 2
    assert count_parameters(rel) - base == L * M * Dh
    x = torch.randn(2, 3, 48, 32)
    for m in (none, learned, two_d, rel):
        y, A = m(x, return_attention=True)
        assert y.shape == (2, 10) and len(A) == L and A[0].shape == (2, 3, T, T)


def test_parameter_counts_vit_b16_at_224_pinned():
    # ViT-B/16, 224 px, 1000 classes (the model of Table 8): 86,567,656 with 1D E_pos (paper.md), minus
    # 197 x 768 without, plus 14 x 384 for each of X and Y, or 12 blocks x (2 x 196 - 1 + 3) x 64 relative.
    with torch.device("meta"):
        counts = {k: count_parameters(vitlib.create_model("ViT-B/16", pos_embed=k)) for k in POS_EMBEDS}
    assert counts == {"learned": 86_567_656, "none": 86_416_360, "learned_2d": 86_427_112, "relative": 86_718_952}


def test_position_embeddings_init_like_official():
    two_d, rel = vitlib.create_model("ViT-S/16", pos_embed="learned_2d"), tiny("relative")
    for t in (two_d.pos_embed_x, two_d.pos_embed_y):
        assert abs(t.std().item() - 0.02) < 0.002  # N(0, 0.02), as E_pos
    table = torch.cat([b.attn.rel_pos.table.flatten() for b in rel.blocks])
    assert abs(table.std().item() - 0.02) < 0.002 and abs(table.mean().item()) < 0.002


# --- "learned_2d" ----------------------------------------------------------------------------------------------

def test_2d_table_equals_its_definition_x_then_y():
    # Appendix D.4: patch (r, c) gets [X_c; Y_r]; built here from scratch, one patch at a time.
    m = tiny("learned_2d", img_size=(24, 40))  # 3 x 5 grid
    X, Y = m.pos_embed_x[0], m.pos_embed_y[0]  # (5, 96), (3, 96)
    rows = [torch.cat([X[c], Y[r]]) for r in range(3) for c in range(5)]  # raster order
    expected = torch.stack(rows)[None]  # (1, 15, 192)
    assert torch.equal(m.position_embeddings(), expected)
    assert torch.equal(pos_embed_2d(m.pos_embed_x, m.pos_embed_y), expected)


def test_2d_embedding_is_added_to_patches_and_not_to_the_class_token():
    m = tiny("learned_2d").eval()
    x = torch.randn(2, 3, 32, 32)
    z0 = m.embed(x)
    patches = m.patch_embed(x)
    assert torch.equal(z0[:, 0], m.cls_token[:, 0].expand(2, -1))  # x_class alone (the NOTE in embed)
    assert torch.allclose(z0[:, 1:], patches + m.position_embeddings(), atol=1e-6)
    gap = tiny("learned_2d", pool="gap").eval()
    assert torch.allclose(gap.embed(x), gap.patch_embed(x) + gap.position_embeddings(), atol=1e-6)


def test_2d_resample_each_table_in_1d_equals_2d_interpolation_of_the_full_table():
    # Section 3.2 interpolates the full table in 2D; for [X_c; Y_r] that is the 1D interpolation of X and Y.
    m = tiny("learned_2d", img_size=(24, 40)).double()  # 3 x 5 grid
    new = (7, 4)
    full = resample_pos_embed(m.position_embeddings().detach(), new, num_prefix_tokens=0, old_grid=(3, 5))
    x, y = resample_pos_embed_1d(m.pos_embed_x.detach(), 4), resample_pos_embed_1d(m.pos_embed_y.detach(), 7)
    assert torch.allclose(pos_embed_2d(x, y), full, atol=1e-12)
    assert torch.allclose(m.position_embeddings(new), full, atol=1e-12)
    assert torch.equal(resample_pos_embed_1d(m.pos_embed_x, 5), m.pos_embed_x)  # the same length: the identity
    ends = resample_pos_embed_1d(m.pos_embed_x.detach(), 9)
    assert torch.equal(ends[:, [0, -1]], m.pos_embed_x.detach()[:, [0, -1]])  # the ends aligned


@pytest.mark.parametrize("kind", ["learned", "learned_2d", "none"])
def test_other_image_size_equals_model_built_there_with_resampled_state(kind):
    m = with_random_head(tiny(kind))
    x = torch.randn(2, 3, 48, 40)
    y = m(x)  # resampled on the fly
    big = tiny(kind, img_size=(48, 40)).eval()
    big.load_state_dict(resample_position_state(m.state_dict(), m.cfg, m.grid, big.grid))
    assert torch.allclose(big(x), y, atol=1e-5)
    same = resample_position_state(m.state_dict(), m.cfg, m.grid, m.grid)
    assert all(torch.equal(same[k], v) for k, v in m.state_dict().items())


# --- "relative" ------------------------------------------------------------------------------------------------

def test_relative_index_hand_checked_on_2x2_grid():
    # Patches in raster order 0 1 / 2 3; the pair (query p_q, key p_k) reads row p_q - p_k + N - 1, N = 4.
    assert relative_position_index((2, 2), class_token=False).tolist() == [
        [3, 2, 1, 0],
        [4, 3, 2, 1],
        [5, 4, 3, 2],
        [6, 5, 4, 3],
    ]
    # With the class token first: 2N - 1 = 7 (class -> patch), 2N = 8 (patch -> class), 2N + 1 = 9 (class -> class).
    assert relative_position_index((2, 2)).tolist() == [
        [9, 7, 7, 7, 7],
        [8, 3, 2, 1, 0],
        [8, 4, 3, 2, 1],
        [8, 5, 4, 3, 2],
        [8, 6, 5, 4, 3],
    ]


def test_relative_offsets_are_1d_raster_offsets_on_3x3_grid():
    # 0 1 2 / 3 4 5 / 6 7 8. The same offset means the same row of the table wherever the pair is, and a 1D
    # offset mixes 2D displacements: "-1" is the right neighbour (0 -> 1) and the wrap from a row's end to
    # the next row's start (2 -> 3); "-3" is one row down (0 -> 3).
    idx = relative_position_index((3, 3), class_token=False)
    N = 9
    pos = {(r, c): 3 * r + c for r in range(3) for c in range(3)}
    assert idx[pos[0, 0], pos[0, 1]] == idx[pos[1, 1], pos[1, 2]] == idx[pos[0, 2], pos[1, 0]] == -1 + N - 1
    assert idx[pos[0, 0], pos[1, 0]] == idx[pos[1, 2], pos[2, 2]] == -3 + N - 1
    assert idx[pos[2, 2], pos[0, 0]] == 8 + N - 1 and idx[pos[0, 0], pos[2, 2]] == -8 + N - 1
    assert idx.diagonal().eq(N - 1).all() and idx.min() == 0 and idx.max() == 2 * N - 2


def test_relative_bias_is_query_dot_offset_embedding_by_hand():
    # Appendix D.4: "extra attention ... the original query ..., but relative positional embeddings as keys".
    m = tiny("relative", img_size=16)  # 2 x 2 grid, T = 5
    attn = m.blocks[0].attn
    q = torch.randn(2, 3, 5, 64)
    b = attn.rel_pos(q)
    R, idx = attn.rel_pos.table, relative_position_index((2, 2))
    for i in range(5):
        for j in range(5):
            expected = (q[:, :, i] * R[idx[i, j]]).sum(-1) / math.sqrt(64)  # (B, k)
            assert torch.allclose(b[:, :, i, j], expected, atol=1e-6), (i, j)
    assert torch.allclose(b[:, :, 1, 2], (q[:, :, 1] @ R[2]) / 8, atol=1e-6)  # patch 0 -> patch 1: offset -1, row 2


def test_relative_attention_returns_the_biased_a():
    m = tiny("relative")
    attn = m.blocks[0].attn
    z = torch.randn(2, 17, 192)
    q, k, _ = attn.qkv(z).reshape(2, 17, 3, 3, 64).permute(2, 0, 3, 1, 4)
    expected = (q @ k.transpose(-2, -1) / 8 + attn.rel_pos(q)).softmax(-1)  # Eq. 6 + the bias
    _, A = attn(z, return_attention=True)
    assert torch.allclose(A, expected, atol=1e-6)
    assert not torch.allclose(A, (q @ k.transpose(-2, -1) / 8).softmax(-1), atol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_relative_bias_on_every_attention_path_equals_explicit(precision):
    """The fused kernel (bias as an additive float attn_mask) and the explicit paths agree, logits and gradients
    (of U_qkv and of the relative table), in fp32 (to 1e-5) and under bf16 autocast (to bf16 rounding)."""
    x = torch.randn(3, 3, 32, 32)
    ref = with_random_head(tiny("relative"))
    with torch.no_grad():
        for b in ref.blocks:
            b.attn.rel_pos.table.normal_(std=1.0)  # a bias large enough to matter
    grads = assert_every_attention_path_agrees(
        ref, x, lambda m: [m.blocks[0].attn.qkv.weight.grad, m.blocks[0].attn.rel_pos.table.grad], precision)
    assert grads[1].abs().max() > 0  # the relative table is trained through every path


def test_relative_model_sees_the_patch_order():
    # Unlike pos_embed="none" (permutation-equivariant, tests/test_model.py), a shuffle changes y.
    m = tiny("relative").eval()
    x = torch.randn(1, 3, 32, 32)
    perm = torch.randperm(16)
    patches = x.reshape(1, 3, 4, 8, 4, 8).permute(0, 2, 4, 1, 3, 5).reshape(1, 16, 3, 8, 8)
    shuffled = patches[:, perm].reshape(1, 4, 4, 3, 8, 8).permute(0, 3, 1, 4, 2, 5).reshape(1, 3, 32, 32)
    assert not torch.allclose(m.forward_features(x)[:, 0], m.forward_features(shuffled)[:, 0], atol=1e-4)


def test_relative_cannot_change_resolution_and_says_why():
    m = tiny("relative")
    with pytest.raises(ValueError, match="1-dimensional, one embedding per raster offset"):
        m(torch.randn(1, 3, 48, 48))
    with pytest.raises(ValueError, match="pre-train with pos_embed='learned' or 'learned_2d'"):
        resample_position_state(m.state_dict(), m.cfg, m.grid, (6, 6))
    with pytest.raises(ValueError, match="another grid"):  # the same N = 16 on another grid is refused too
        m(torch.randn(1, 3, 16, 64))
    assert resample_position_state(m.state_dict(), m.cfg, m.grid, m.grid).keys() == m.state_dict().keys()


def test_relative_flops_counted_by_hand():
    for pool in ("token", "gap"):
        cfg = vitlib.vit_config("ViT-Ti/8", img_size=(16, 24), num_classes=7, num_layers=2, pos_embed="relative",
                                pool=pool)
        assert forward_flops(vitlib.VisionTransformer(cfg).eval(), (16, 24)) == 2 * vit_macs_by_hand(cfg)


# --- checkpoints, analysis, export -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", POS_EMBEDS)
def test_checkpoint_round_trip_of_each_kind(tmp_path, kind):
    m = with_random_head(tiny(kind))
    save_checkpoint(tmp_path / "ck", m)
    back = load_model(tmp_path / "ck")
    assert back.cfg == m.cfg and back.cfg.pos_embed == kind
    assert back.state_dict().keys() == m.state_dict().keys()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(back(x), m(x))


def test_analysis_reads_2d_tables_and_explains_the_kinds_without_one():
    m = tiny("learned_2d")
    sim = position_embedding_similarity(m.position_embeddings(), m.grid)
    assert sim.shape == (4, 4, 4, 4) and torch.allclose(sim[1, 2, 1, 2], torch.tensor(1.0))
    assert torch.equal(position_embedding_grid(m.position_embeddings(), m.grid)[2, 3],
                       torch.cat([m.pos_embed_x[0, 3], m.pos_embed_y[0, 2]]).detach())
    for kind in ("learned_2d", "relative", "none"):
        with pytest.raises(ValueError, match="model.position_embeddings()"):
            position_embedding_similarity(tiny(kind).pos_embed, (4, 4))
    assert tiny("relative").position_embeddings() is None and tiny("none").position_embeddings() is None
    learned = tiny("learned")
    assert learned.position_embeddings() is learned.pos_embed


@pytest.mark.parametrize("kind", ["learned_2d", "relative"])
def test_official_npz_export_refuses_what_it_cannot_hold(tmp_path, kind):
    with pytest.raises(ValueError, match="vitlib.checkpoints"):
        save_npz(tiny(kind), tmp_path / "m.npz")


@pytest.mark.parametrize("kind", POS_EMBEDS)
def test_new_head_keeps_the_position_parameters_of_each_kind(kind):
    m = tiny(kind)
    ft = new_head(m, 4)
    assert ft.cfg.pos_embed == kind and ft.head.out_features == 4
    own = {k: v for k, v in m.state_dict().items() if not k.startswith("head.")}
    assert all(torch.equal(ft.state_dict()[k], v) for k, v in own.items())


@pytest.mark.parametrize("kind", ["learned", "learned_2d", "none"])
def test_finetune_new_resolution_takes_every_resamplable_kind(kind):
    m = vitlib.create_model("ViT-Ti/8", img_size=32, num_classes=3, pos_embed=kind).eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(new_resolution(m, 48).eval()(x), m(x), atol=1e-5)  # = resampling on the fly


def test_finetune_new_resolution_of_relative_is_a_clear_error():
    with pytest.raises(ValueError, match="relative"):
        new_resolution(vitlib.create_model("ViT-Ti/8", img_size=32, num_classes=3, pos_embed="relative"), 48)

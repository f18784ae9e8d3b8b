"""FLOPs and parameter counts (vitlib.flops) against hand-computed shapes and paper.md's pinned numbers."""

import torch

import vitlib
from vitlib.flops import complexity, count_parameters, forward_flops, macs_split, vit_macs_by_hand


def test_flop_counter_equals_hand_count_of_eq1_to_8():
    for kw in (dict(), dict(representation_size=24), dict(pool="gap")):
        cfg = vitlib.vit_config("ViT-Ti/8", img_size=(16, 24), num_classes=7, num_layers=2, **kw)
        m = vitlib.VisionTransformer(cfg).eval()
        assert forward_flops(m, (16, 24)) == 2 * vit_macs_by_hand(cfg)  # real CPU tensors, fused attention


def test_flops_scale_with_batch_and_meta_equals_real():
    name, kw = "ViT-Ti/8", dict(img_size=16, num_layers=1)
    real = vitlib.create_model(name, **kw)
    with torch.device("meta"):
        meta = vitlib.create_model(name, **kw)
    assert forward_flops(meta, 16) == forward_flops(real, 16)
    assert forward_flops(real, 16, batch_size=3) == 3 * forward_flops(real, 16)


def test_complexity_row_vit_b16_matches_paper_md():
    row = complexity("ViT-B/16")
    assert row["params"] == 86_567_656 and row["N"] == 196 and row["heads"] == 12
    assert abs(row["gmacs"] - 17.58) / 17.58 < 0.01  # paper.md: 17.58 G MACs at 224
    assert row["gflops"] == 2 * row["gmacs"]
    assert count_parameters(vitlib.create_model("ViT-Ti/16")) == 5_717_416


def test_macs_split_puts_a_hybrid_stem_in_the_embedding():
    vit, hybrid = macs_split("ViT-B/16"), macs_split("R50+ViT-B/16")
    assert vit["N"] == hybrid["N"] == 196 and abs(vit["rest_G"] - hybrid["rest_G"]) < 1e-6  # same encoder
    assert abs(vit["total_G"] - forward_flops_g("ViT-B/16")) < 1e-9
    assert hybrid["embed_G"] > 10 * vit["embed_G"] and macs_split("BiT-R50x1")["rest_G"] == 0


def forward_flops_g(name: str) -> float:
    with torch.device("meta"):
        model = vitlib.create_model(name).eval()
    return forward_flops(model, 224) / 2e9

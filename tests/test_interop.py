"""vitlib.interop: other people's weights give the same logits (fp32, max abs diff <= 1e-4).

timm and torchvision state dicts; timm weight files (.pth, .safetensors), the model built from the shapes;
the official JAX checkpoints (.npz) in the layout of google-research/vision_transformer, read and written.
No official checkpoint can be downloaded here, so each .npz test writes one in the official layout from a
random vitlib model (`save_npz`) and checks it against two independent readers of that layout: timm's own npz
loader (`VisionTransformer.load_pretrained`, exact GELU) and a NumPy transcription of the official Flax
forward pass (models_vit.py, tanh GELU).
"""

import math

import numpy as np
import pytest
import scipy.ndimage
import timm
import torch
import torchvision
from helpers import randomise
from safetensors.torch import save_file

import vitlib
from vitlib.interop import (
    from_timm,
    from_torchvision,
    load_into,
    load_npz,
    model_from_npz,
    model_from_timm,
    npz_config,
    save_npz,
    timm_config,
)


@pytest.mark.parametrize("timm_name, ours", [
    ("vit_tiny_patch16_224", "ViT-Ti/16"),
    ("vit_small_patch16_224", "ViT-S/16"),
    ("vit_base_patch16_224", "ViT-B/16"),
])
def test_timm_parity(timm_name, ours):
    ref = randomise(timm.create_model(timm_name, pretrained=False))
    model = load_into(vitlib.create_model(ours), from_timm(ref.state_dict())).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        diff = (model(x) - ref(x)).abs().max().item()
    assert diff <= 1e-4, diff
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())


def test_torchvision_parity_vit_b_16():
    ref = randomise(torchvision.models.vit_b_16(weights=None))
    model = load_into(vitlib.create_model("ViT-B/16"), from_torchvision(ref.state_dict())).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        diff = (model(x) - ref(x)).abs().max().item()
    assert diff <= 1e-4, diff


def test_wrong_architecture_is_a_clear_error():
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    with pytest.raises(ValueError, match="do not fit"):
        load_into(vitlib.create_model("ViT-S/16"), from_timm(ref.state_dict()))


def test_unknown_torchvision_key():
    with pytest.raises(ValueError, match="torchvision"):
        from_torchvision({"features.0.weight": torch.zeros(1)})


# --- timm weight files ---------------------------------------------------------------------------------------------

def timm_vit(**kw):
    kw = {**dict(img_size=16, patch_size=4, embed_dim=64, depth=2, num_heads=1, mlp_ratio=2.0, num_classes=5), **kw}
    model = timm.models.vision_transformer.VisionTransformer(**kw)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_file_same_logits(tmp_path, suffix):
    ref = timm_vit()
    path = tmp_path / f"w{suffix}"
    if suffix == ".pth":
        torch.save({"state_dict": ref.state_dict()}, path)  # nested, as training scripts write it
    else:
        save_file(ref.state_dict(), path)
    ours = model_from_timm(path, num_heads=1).eval()  # k is not in the shapes: given here
    assert ours.cfg.img_size == 16 and ours.cfg.num_layers == 2 and ours.cfg.mlp_size == 128
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() < 1e-5


def test_timm_layer_scale_same_logits(tmp_path):
    # timm's init_values (LayerScale, not in the paper; DINOv2 has it): ls1.gamma / ls2.gamma load by name.
    ref = timm_vit(init_values=1e-5)
    save_file(ref.state_dict(), tmp_path / "ls.safetensors")
    ours = model_from_timm(tmp_path / "ls.safetensors", num_heads=1).eval()
    assert ours.cfg.layer_scale == 1e-5 and timm_config(timm_vit().state_dict()).layer_scale is None
    assert torch.equal(ours.blocks[1].ls2.gamma, ref.blocks[1].ls2.gamma)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max() < 1e-5


def test_heads_from_variant_table():
    # D = 192 is ViT-Ti (k = 3); D = 128 is no variant: D_h = 64 gives k = 2.
    ti = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=0)
    assert timm_config(ti.state_dict()).num_heads == 3
    assert timm_config(timm_vit(embed_dim=128).state_dict()).num_heads == 2
    assert timm_config(ti.state_dict()).num_classes == 0 and timm_config(ti.state_dict()).img_size == 32


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights file"):
        model_from_timm(tmp_path / "nope.pth")


# --- official JAX checkpoints (.npz) -------------------------------------------------------------------------------

TINY = dict(img_size=16, patch_size=4, hidden_size=32, num_layers=2, num_heads=4, mlp_size=64, num_classes=5)


def random_vit(**kw):
    model = vitlib.VisionTransformer(vitlib.ViTConfig(**{**TINY, **kw}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # zero head and class token made non-trivial
    return model.eval()


@pytest.fixture
def npz(tmp_path):
    def write(**kw):
        model = random_vit(**kw)
        return model, save_npz(model, tmp_path / "vit.npz")
    return write


def test_official_key_layout(npz):
    _, path = npz(representation_size=24)
    w = np.load(path)
    D, k, P = 32, 4, 4
    blk = "Transformer/encoderblock_1/"
    expected = {
        "embedding/kernel": (P, P, 3, D),  # HWIO
        "cls": (1, 1, D),
        "Transformer/posembed_input/pos_embedding": (1, 17, D),
        blk + "MultiHeadDotProductAttention_1/query/kernel": (D, k, D // k),
        blk + "MultiHeadDotProductAttention_1/value/bias": (k, D // k),
        blk + "MultiHeadDotProductAttention_1/out/kernel": (k, D // k, D),
        blk + "MlpBlock_3/Dense_0/kernel": (D, 64),
        blk + "LayerNorm_2/scale": (D,),
        "Transformer/encoder_norm/bias": (D,),
        "pre_logits/kernel": (D, 24),
        "head/kernel": (24, 5),
    }
    assert {key: w[key].shape for key in expected} == expected
    assert len(w.files) == 2 + 1 + 1 + 2 + 2 + 2 + 2 * 16  # embedding, cls, pos, norm, pre_logits, head; 16 per block


def test_timm_npz_loader_gives_same_logits(npz):
    model, path = npz()  # gelu="exact", as timm
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0, num_classes=5).eval()
    ref.load_pretrained(str(path))  # timm's reader of the official layout
    ours = model_from_npz(path, gelu="exact").eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert (ref(x) - model(x)).abs().max() < 1e-5  # the file holds the model (timm reads it back)
        assert (ours(x) - ref(x)).abs().max() < 1e-5  # and load_npz reads it as timm does


def _ln(x, s, b):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6) * s + b


def official_forward(w, x):
    """models_vit.VisionTransformer.__call__ transcribed to NumPy (Flax: NHWC, Dense kernels (in, out), tanh GELU)."""
    x = x.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    kernel = w["embedding/kernel"]
    P, D, (B, H, W, C) = kernel.shape[0], kernel.shape[-1], x.shape
    patches = x.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 2, 4, 5).reshape(B, -1, P * P * C)
    z = patches @ kernel.reshape(-1, D) + w["embedding/bias"]  # nn.Conv(kernel=stride=P, VALID)
    z = np.concatenate([np.tile(w["cls"], (B, 1, 1)), z], 1) + w["Transformer/posembed_input/pos_embedding"]
    for i in range(len({k.split("/")[1] for k in w if "encoderblock_" in k})):
        b = f"Transformer/encoderblock_{i}/"
        m = b + "MultiHeadDotProductAttention_1/"
        y = _ln(z, w[b + "LayerNorm_0/scale"], w[b + "LayerNorm_0/bias"])
        q, k, v = (np.einsum("btd,dnh->btnh", y, w[f"{m}{n}/kernel"]) + w[f"{m}{n}/bias"]
                   for n in ("query", "key", "value"))  # (B, T, k, D_h) each
        logits = np.einsum("bqnh,bknh->bnqk", q, k) / math.sqrt(q.shape[-1])
        A = np.exp(logits - logits.max(-1, keepdims=True))
        A /= A.sum(-1, keepdims=True)
        z = z + np.einsum("bqnh,nhd->bqd", np.einsum("bnqk,bknh->bqnh", A, v), w[m + "out/kernel"]) + w[m + "out/bias"]
        y = _ln(z, w[b + "LayerNorm_2/scale"], w[b + "LayerNorm_2/bias"])
        y = y @ w[b + "MlpBlock_3/Dense_0/kernel"] + w[b + "MlpBlock_3/Dense_0/bias"]
        y = 0.5 * y * (1 + np.tanh(math.sqrt(2 / math.pi) * (y + 0.044715 * y**3)))  # flax nn.gelu (approximate)
        z = z + y @ w[b + "MlpBlock_3/Dense_1/kernel"] + w[b + "MlpBlock_3/Dense_1/bias"]
    y = _ln(z, w["Transformer/encoder_norm/scale"], w["Transformer/encoder_norm/bias"])[:, 0]
    if "pre_logits/kernel" in w:
        y = np.tanh(y @ w["pre_logits/kernel"] + w["pre_logits/bias"])
    return y @ w["head/kernel"] + w["head/bias"]


@pytest.mark.parametrize("representation_size", [None, 24])
def test_model_from_npz_reproduces_official_forward(npz, representation_size):
    _, path = npz(representation_size=representation_size)
    model = model_from_npz(path)
    assert model.cfg.gelu == "tanh"  # the official MLP's GELU
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    ref = official_forward({k: v.astype(np.float64) for k, v in np.load(path).items()}, x.numpy())
    with torch.no_grad():
        ours = model.double()(x).numpy()
    assert np.abs(ours - ref).max() < 1e-8
    exact = model_from_npz(path, gelu="exact").double()
    assert np.abs(exact(x).detach().numpy() - ref).max() > 1e-6  # the GELU form matters at this precision


def test_config_read_from_shapes(npz):
    model, path = npz(representation_size=24, num_heads=8, qkv_bias=False)
    cfg = npz_config(path)
    expected = {**TINY, "representation_size": 24, "num_heads": 8, "qkv_bias": False, "in_chans": 3, "gelu": "tanh"}
    assert {f: getattr(cfg, f) for f in expected} == expected
    assert torch.equal(model_from_npz(path).blocks[1].attn.qkv.weight, model.blocks[1].attn.qkv.weight)


def test_gap_checkpoint_without_class_token(npz):
    model, path = npz(pool="gap")
    assert "cls" not in np.load(path).files
    ours = model_from_npz(path, gelu="exact")
    assert ours.cfg.pool == "gap" and ours.cls_token is None
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(ours(x), model(x), atol=1e-6)


def test_other_image_size_resamples_position_embeddings_like_official(npz):
    model, path = npz()
    big = model_from_npz(path, img_size=28)  # grid 4x4 -> 7x7
    grid = model.pos_embed[0, 1:].detach().reshape(4, 4, 32).double().numpy()
    ref = scipy.ndimage.zoom(grid, (7 / 4, 7 / 4, 1), order=1)  # official checkpoint.load_pretrained
    assert np.allclose(big.pos_embed[0, 1:].detach().reshape(7, 7, 32).numpy(), ref, atol=1e-5)
    assert torch.equal(big.pos_embed[:, :1], model.pos_embed[:, :1])  # class token's embedding kept
    assert big(torch.randn(1, 3, 28, 28)).shape == (1, 5)


def test_drop_head_variant(npz):
    # A checkpoint with a pre-logits layer fine-tuned without it (official `representation_size=None`).
    model, path = npz(representation_size=24)
    new = model_from_npz(path, representation_size=None, num_classes=3)
    assert isinstance(new.pre_logits, torch.nn.Identity)
    assert new.head.weight.abs().sum() == 0 and new.head.bias.abs().sum() == 0  # zero-initialised
    assert torch.equal(new.blocks[0].mlp.fc1.weight, model.blocks[0].mlp.fc1.weight)
    same_r = model_from_npz(path, num_classes=3)  # same representation_size: pre-logits kept, head reset
    assert torch.equal(same_r.pre_logits.fc.weight, model.pre_logits.fc.weight)
    assert same_r.head.weight.abs().sum() == 0


def test_load_npz_errors(npz, tmp_path):
    _, path = npz(representation_size=24)
    with pytest.raises(ValueError, match="pre-logits layer of size 24"):
        load_npz(path, vitlib.VisionTransformer(vitlib.ViTConfig(**TINY)))
    with pytest.raises(ValueError, match="L=2 encoder blocks, the model has 3"):
        load_npz(path, vitlib.VisionTransformer(vitlib.ViTConfig(**{**TINY, "num_layers": 3})))
    with pytest.raises(ValueError, match="do not fit"):
        load_npz(path, vitlib.VisionTransformer(vitlib.ViTConfig(**{**TINY, "hidden_size": 64,
                                                                         "representation_size": 24})))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz(bad, vitlib.VisionTransformer(vitlib.ViTConfig(**TINY)))
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="no 'embedding/kernel'"):
        model_from_npz(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        model_from_npz(tmp_path / "missing.npz")


def test_optimizer_checkpoint_prefix(npz, tmp_path):
    model, path = npz()
    np.savez(tmp_path / "opt.npz", **{f"opt/target/{k}": v for k, v in np.load(path).items()})
    x = torch.randn(1, 3, 16, 16)
    assert torch.allclose(model_from_npz(tmp_path / "opt.npz", gelu="exact")(x), model(x), atol=1e-6)


def test_hybrid_npz_matches_timm(tmp_path):
    # A tiny hybrid: ResNet root + stages of 1 and 1 units (map /8), 1x1 patches, 2 encoder blocks.
    from functools import partial

    from timm.models.vision_transformer_hybrid import HybridEmbed, _resnetv2

    ours = random_vit(img_size=32, patch_size=8, backbone=(1, 1), num_layers=2)
    path = save_npz(ours, tmp_path / "r.npz")
    keys = np.load(path).files
    assert {"conv_root/kernel", "gn_root/scale", "block1/unit1/conv_proj/kernel", "block2/unit1/gn3/bias"} <= set(keys)
    backbone = _resnetv2(layers=(1, 1), in_chans=3)
    ref = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=1, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.0, num_classes=5,
        embed_layer=partial(HybridEmbed, backbone=backbone)).eval()
    ref.load_pretrained(str(path))
    back = model_from_npz(path, gelu="exact")
    assert back.cfg.backbone == (1, 1) and back.cfg.patch_size == 8 and back.cfg.img_size == 32
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert ref(x).abs().max() > 0.1
        assert (ref(x) - ours(x)).abs().max() < 1e-4
        assert (back(x) - ours(x)).abs().max() < 1e-5


# Hostile or foreign weight files: a ValueError that names the file and the problem, never advice to unpickle.


@pytest.mark.parametrize("name, payload", [
    ("corrupt.pth", b"\x80\x04not a pickle at all" * 8),
    ("truncated.pth", None),  # the first half of a real torch file
    ("bad.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}" + b"\x00" * 32),
])
def test_hostile_weight_files_are_a_value_error_naming_the_file(tmp_path, name, payload):
    path = tmp_path / name
    if payload is None:
        torch.save({"w": torch.zeros(64, 64)}, path)
        payload = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=name) as e:
        model_from_timm(path)
    assert "weights_only=False" not in str(e.value) and e.value.__cause__ is None
    assert "corrupt or truncated" in str(e.value)


def test_a_state_dict_that_is_not_a_vit_is_a_value_error(tmp_path):
    path = tmp_path / "mlp.pth"
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 4)).state_dict(), path)
    with pytest.raises(ValueError, match="not a timm ViT state dict"):
        model_from_timm(path)


def test_from_timm_takes_a_resnetv2_too():
    ref = randomise(timm.create_model("resnetv2_50x1_bit", pretrained=False, num_classes=10)).eval()
    model = load_into(vitlib.create_model("BiT-R50x1", num_classes=10), from_timm(ref.state_dict())).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-4)
    with pytest.raises(ValueError, match="ResNetV2 state dict, not a ViT"):
        timm_config(ref.state_dict())

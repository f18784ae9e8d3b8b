"""Fine-tuning surgery (Section 3.2): zero head of K classes, position embeddings at a new resolution, linear probe;
`load_pretrained` takes the shipped model, an official .npz or a timm weights file."""

import math

import pytest
import torch
import torch.nn.functional as F

import vitlib
from vitlib import finetune
from vitlib.finetune import load_pretrained, new_head, new_resolution, prepare_finetune, trainable_parameters
from vitlib.interop import save_npz

TINY = dict(img_size=16, patch_size=4, hidden_size=32, num_layers=2, num_heads=4, mlp_size=64, num_classes=5)


def pretrained(**kw):
    """A 'pre-trained' model: random weights everywhere (the head and class token too), pre-logits layer."""
    model = vitlib.VisionTransformer(vitlib.ViTConfig(**{**TINY, "representation_size": 24, **kw}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def test_new_head_is_zero_and_backbone_is_kept():
    old = pretrained()
    new = new_head(old, num_classes=3)
    assert new.cfg.num_classes == 3 and new.cfg.representation_size is None  # pre-logits layer dropped too
    assert isinstance(new.pre_logits, torch.nn.Identity)
    assert new.head.weight.shape == (3, 32) and new.head.weight.abs().sum() == 0 and new.head.bias.abs().sum() == 0
    backbone = {k: v for k, v in old.state_dict().items() if not k.startswith(("head.", "pre_logits."))}
    assert all(torch.equal(new.state_dict()[k], v) for k, v in backbone.items())
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(new(x), torch.zeros(2, 3))  # a zero head predicts uniformly before fine-tuning
    assert old.cfg.num_classes == 5 and old.head.weight.shape == (5, 24)  # the argument is untouched


def test_same_resolution_leaves_position_embeddings_unchanged():
    old = pretrained().eval()
    new = new_resolution(old, 16).eval()
    assert torch.equal(new.pos_embed, old.pos_embed)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(new(x), old(x))


def test_higher_resolution_interpolates_position_embeddings():
    old = pretrained().eval()
    new = new_resolution(old, 28).eval()  # grid 4x4 -> 7x7, P kept
    assert new.cfg.img_size == 28 and new.grid == (7, 7) and new.cfg.patch_size == 4
    assert new.pos_embed.shape == (1, 1 + 49, 32)
    assert torch.equal(new.pos_embed[:, 0], old.pos_embed[:, 0])  # the class token's embedding is kept
    ref = vitlib.resample_pos_embed(old.pos_embed, (7, 7))
    assert torch.equal(new.pos_embed, ref)
    # Corners of the grid stay where they were (bilinear, corners aligned, as the official scipy zoom).
    old_grid, new_grid = old.pos_embed[0, 1:].reshape(4, 4, 32), new.pos_embed[0, 1:].reshape(7, 7, 32)
    assert torch.allclose(new_grid[::6, ::6], old_grid[::3, ::3])
    x = torch.randn(2, 3, 28, 28)
    feats = new.forward_features(x)
    assert torch.isfinite(feats).all()
    assert torch.allclose(new(x), old(x), atol=1e-5)  # same as the old model resampling on the fly


def test_fine_tuned_model_trains_from_uniform_predictions():
    torch.manual_seed(0)
    model = prepare_finetune(pretrained(), num_classes=3, img_size=24)
    x, y = torch.randn(8, 3, 24, 24), torch.arange(8) % 3
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(), loss.backward(), opt.step()
        losses.append(loss.item())
    assert abs(losses[0] - math.log(3)) < 1e-6  # zero head: cross-entropy of the uniform prediction
    assert losses[-1] < 0.5 * losses[0]


def test_frozen_backbone_gets_no_gradients():
    old = pretrained()
    probe = prepare_finetune(old, num_classes=3, freeze=True)
    assert trainable_parameters(probe) == 32 * 3 + 3  # only the D x K head and its bias
    probe(torch.randn(2, 3, 16, 16)).logsumexp(-1).sum().backward()
    grads = {n: p.grad for n, p in probe.named_parameters()}
    assert all(g is None for n, g in grads.items() if not n.startswith("head."))
    assert grads["head.bias"].abs().sum() > 0
    assert all(p.requires_grad for p in old.parameters())  # the argument is untouched


def test_surgery_errors():
    with pytest.raises(ValueError, match="num_classes K must be >= 1"):
        new_head(pretrained(), 0)
    with pytest.raises(ValueError, match="not divisible by patch_size P=4"):
        new_resolution(pretrained(), 30)
    with pytest.raises(TypeError, match="vitlib VisionTransformer"):
        new_head(torch.nn.Linear(2, 2), 3)


def test_hybrid_surgery_keeps_the_resnet():
    old = pretrained(img_size=32, patch_size=8, backbone=(1, 1)).eval()  # ResNet map /8, 1x1 patches
    new = prepare_finetune(old, num_classes=3, img_size=48).eval()  # grid 4x4 -> 6x6
    assert new.cfg.backbone == (1, 1) and new.grid == (6, 6)
    stem = "patch_embed.backbone.stem.conv.weight"
    assert torch.equal(new.state_dict()[stem], old.state_dict()[stem])
    assert torch.equal(new(torch.randn(2, 3, 48, 48)), torch.zeros(2, 3))


def test_from_scratch_keeps_the_architecture_and_none_of_the_weights():
    """The baseline of fine-tuning (`vitlib finetune --from-scratch`): the shipped model's architecture, freshly
    initialised, is the time-to-accuracy benchmark's scratch ViT (ViT-Ti/4 L=6) under the same seed."""
    shipped = load_pretrained("")
    torch.manual_seed(0)
    new = finetune.from_scratch(shipped, num_classes=10, img_size=28)
    torch.manual_seed(0)
    bench = vitlib.create_model("ViT-Ti/4", img_size=28, num_classes=10, num_layers=shipped.cfg.num_layers)
    assert new.cfg == bench.cfg and new.cfg.representation_size is None
    assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), bench.state_dict().values()))
    old = shipped.state_dict()["blocks.0.attn.qkv.weight"]
    assert old.shape == new.state_dict()["blocks.0.attn.qkv.weight"].shape
    assert not torch.equal(old, new.state_dict()["blocks.0.attn.qkv.weight"])
    hybrid = pretrained(img_size=32, patch_size=8, backbone=(1, 1))
    stem = "patch_embed.backbone.stem.conv.weight"
    assert not torch.equal(finetune.from_scratch(hybrid, 3).state_dict()[stem], hybrid.state_dict()[stem])


def test_load_pretrained_dispatches_on_the_file(tmp_path, monkeypatch):
    model = pretrained().eval()
    npz = save_npz(model, tmp_path / "official.npz")
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(load_pretrained(npz, gelu="exact")(x), model(x), atol=1e-5)  # official .npz
    torch.save(model.state_dict(), tmp_path / "timm.pth")  # vitlib's names are timm's
    assert torch.allclose(load_pretrained(tmp_path / "timm.pth", num_heads=4)(x), model(x), atol=1e-5)
    monkeypatch.setattr(finetune, "SHIPPED", tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError, match="shipped pre-trained model"):
        load_pretrained("")

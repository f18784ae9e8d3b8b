"""Model size and compute: parameter counts (Table 1) and forward FLOPs (Table 6, Fig. 5's x-axis).

FLOPs are counted by `torch.utils.flop_counter.FlopCounterMode`, which adds up the
matrix products (convolution, linear layers, the q k^T and A v products of Eq. 6-7).
It runs on `torch.device("meta")` tensors, so ViT-H/14 is counted without memory.

Conventions: a multiply-accumulate (MAC) is 2 FLOPs. timm's and torchvision's tables
report MACs under the name "GFLOPS" (ViT-B/16 at 224: 17.58 G MACs, about 35 GFLOPs;
paper.md). Element-wise work (LayerNorm, GELU, softmax, residual adds) is not counted,
as in those tables; it is well under 1% of the total for every variant of Table 1.

Deviations from the paper: none (the paper gives no per-image FLOPs; Table 6 gives
pre-training exaFLOPs, 3 x 2 x forward MACs x images seen).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from .config import ViTConfig, vit_config
from .model import create_model

__all__ = ["count_parameters", "forward_flops", "vit_macs_by_hand", "complexity", "macs_split"]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters: all of them, or only those that receive gradients."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def forward_flops(model: nn.Module, img_size: int | tuple[int, int], batch_size: int = 1, in_chans: int = 3) -> int:
    """FLOPs (2 per MAC) of one forward pass of `model` on a batch, counted by FlopCounterMode.

    The input is made on the device of the model's parameters: a model built under
    `torch.device("meta")` is counted without memory or compute.
    """
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    device = next(model.parameters()).device
    x = torch.zeros(batch_size, in_chans, h, w, device=device)
    # FlopCounterMode has no formula for the fused CPU attention kernel and would count q k^T and
    # A v as zero on CPU tensors; the math backend writes them as matrix products, which it counts.
    # tests/test_flops.py checks CPU, meta and the hand count agree.
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(x)
    return int(counter.get_total_flops())


def vit_macs_by_hand(cfg: ViTConfig) -> int:
    """MACs of one image through ViT, from the shapes of Eq. 1-4 and 5-8 (matrix products only).

    Eq. 1: N (P^2 C) D.  Per block: T (3 D^2) for U_qkv, T^2 D for q k^T (all heads),
    T^2 D for A v, T D^2 for U_msa, 2 T D D_mlp for the MLP; T = N + 1 tokens.
    Eq. 4 head: D K (plus D D_rep with the pre-training head).
    Appendix D.4's relative attention (pos_embed="relative") adds T M D per block for the queries against
    the M = 2N - 1 (+ 3 with the class token) relative embeddings.
    """
    N, P, C, D, L = cfg.num_patches, cfg.patch_size, cfg.in_chans, cfg.hidden_size, cfg.num_layers
    T = N + cfg.num_prefix_tokens
    block = T * 3 * D * D + 2 * T * T * D + T * D * D + 2 * T * D * cfg.mlp_size
    if cfg.pos_embed == "relative":
        block += T * (2 * N - 1 + 3 * cfg.num_prefix_tokens) * D
    head_in = cfg.representation_size or D
    head = (D * cfg.representation_size if cfg.representation_size else 0) + head_in * cfg.num_classes
    return N * P * P * C * D + L * block + head


def complexity(name: str, img_size: int = 224, **overrides) -> dict[str, int | float | str]:
    """One row of Table 1, rebuilt: the variant's shape, exact parameter count and forward GMACs / GFLOPs.

    The model is built on the meta device (shapes only), so this is cheap even for ViT-H/14.
    """
    cfg = vit_config(name, img_size=img_size, **overrides)
    with torch.device("meta"):
        model = create_model(name, img_size=img_size, **overrides).eval()
    flops = forward_flops(model, img_size, in_chans=cfg.in_chans)
    return dict(model=name, layers=cfg.num_layers, D=cfg.hidden_size, mlp_size=cfg.mlp_size, heads=cfg.num_heads,
                P=cfg.patch_size, N=cfg.num_patches, params=count_parameters(model), gmacs=flops / 2e9,
                gflops=flops / 1e9)


def macs_split(name: str, img_size: int = 224) -> dict[str, float | int | str]:
    """Where one image's multiply-accumulates go: the embedding (patch projection, or a hybrid's ResNet and
    projection) and the rest (encoder and head), in G MACs, counted on the meta device. A ResNet is all
    embedding; N is the sequence length (0 for a ResNet)."""
    with torch.device("meta"):
        model = create_model(name, img_size=img_size).eval()
        x = torch.empty(1, 3, img_size, img_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model(x)
    total = counter.get_total_flops() / 2
    embed = counter.get_flop_counts().get(f"{type(model).__name__}.patch_embed", {})
    embed = sum(embed.values()) / 2 if embed else total
    N = getattr(model.cfg, "num_patches", 0)
    return dict(model=name, N=N, embed_G=embed / 1e9, rest_G=(total - embed) / 1e9, total_G=total / 1e9)

# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · The CNN side: BiT ResNet baseline and the hybrid (Sections 3.1 and 4.1)
#
# Reproduces: the hybrid architecture of Section 3.1 ("R50+ViT-B/16": a ResNet-50 feature map as the input
# sequence), the BiT ResNet baseline of Section 4.1 (Group Normalization + Weight Standardization), their
# parameter counts (R50+ViT-B/16: 98,659,112 at 224 px; BiT-R50x1: 25,549,352), and what the CNN stem changes:
# the feature map, the sequence length, the FLOPs against a plain ViT of the same width, the inductive bias.
# Logit parity with timm is proven in tests/test_resnet.py and tests/test_hybrid.py.
#
# Run time: smoke under a minute on an idle 2-core CPU; full a few minutes (the demonstrations at 224 px).
# Expected: the hybrid sees the same N = 196 tokens as ViT-B/16 at 224 px and costs about 4 G multiply-adds
# more (the ResNet); removing stage 4 (option ii) makes the sequence 4x longer than the /32 hybrid.
#
# `papermill notebooks/07_resnet_and_hybrid.ipynb out.ipynb -p profile smoke`

# %%
import torch

import vitlib
from vitlib.config import RESNET_DEPTHS, vit_config
from vitlib.flops import count_parameters, macs_split
from vitlib.resnet import standardize

# %% tags=["parameters"]
profile = "smoke"

# %%
_ = torch.manual_seed(0)

# %%
img = {"smoke": 64, "full": 224}[profile]  # image side for the demonstrations that run the CNN
tiny_vit = dict(hidden_size=64, num_heads=4, mlp_size=128, num_layers=2, num_classes=10)  # narrow encoder: fast
flop_names = ["ViT-B/16", "R50+ViT-B/16", "ViT-B/32", "R50+ViT-B/32", "BiT-R50x1"]  # counted at 224 px, on meta

# %% [markdown]
# ## The CNN baseline: BiT ResNet
#
# > For the baseline CNNs we use ResNet, but replace the Batch Normalization layers with Group Normalization,
# > and used standardized convolutions. These modifications improve transfer. (Section 4.1)
#
# Weight Standardization replaces every filter $w$ of a convolution by
#
# $$\hat w = \frac{w - \mathrm{mean}(w)}{\sqrt{\mathrm{var}(w) + \epsilon}}$$
#
# before convolving; each GroupNorm normalizes 32 groups of channels per image, so nothing depends on the batch.

# %%
with torch.device("meta"):  # parameter counts need shapes only
    bit = vitlib.create_model("BiT-R50x1")
n_bit = count_parameters(bit)
w = vitlib.create_model("BiT-R26x1", stem="cifar", base_width=32).stages[0][0].conv2.weight
w_hat = standardize(w)
print(f"BiT-R50x1: {n_bit:,} parameters, depth {bit.cfg.depth}, stages {bit.cfg.depths}")
print(f"a standardized kernel: mean {w_hat.mean(dim=(1, 2, 3)).abs().max():.1e}, "
      f"var {w_hat.var(dim=(1, 2, 3), correction=0).mean():.4f}")

# %%
assert n_bit == 25_549_352  # timm's resnetv2_50x1_bit
assert bit.cfg.depth == 50
assert torch.allclose(w_hat.mean(dim=(1, 2, 3)), torch.zeros(w.shape[0]), atol=1e-6)
assert torch.allclose(w_hat.var(dim=(1, 2, 3), correction=0), torch.ones(w.shape[0]), atol=1e-4)
assert all(g.num_groups == 32 for g in bit.modules() if isinstance(g, torch.nn.GroupNorm))
assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bit.modules())

# %% [markdown]
# ## The hybrid: a feature map instead of pixels
#
# > As an alternative to raw image patches, the input sequence can be formed from feature maps of a CNN. In this
# > hybrid model, the patch embedding projection E (Eq. 1) is applied to patches extracted from a CNN feature
# > map. As a special case, the patches can have spatial size 1x1. (Section 3.1)
#
# $$z_0 = [x_\text{class};\, x_p^1 E;\, \dots;\, x_p^N E] + E_{pos},\qquad x_p^i = \text{cell } i
# \text{ of } \mathrm{ResNet}(x) \in \mathbb{R}^{1024}$$
#
# The ResNet-50 cut after stage 3 turns a $H \times W$ image into a $H/16 \times W/16$ map of 1024 channels:
# each cell plays the role of a 16x16 patch, so $P = 16$ and $N = HW/P^2$ as for ViT-B/16.

# %%
hybrid = vitlib.create_model("R50+ViT-B/16", img_size=img, **tiny_vit).eval()
x = torch.randn(2, 3, img, img)
with torch.no_grad():
    fmap = hybrid.patch_embed.feature_map(x)  # (B, 1024, H/16, W/16)
    tokens = hybrid.patch_embed(x)  # (B, N, D)
    E = hybrid.patch_embed.proj.weight.flatten(1)  # (D, 1024): a 1x1 "patch" is one cell
    by_hand = fmap.flatten(2).transpose(1, 2) @ E.T + hybrid.patch_embed.proj.bias
print("image", tuple(x.shape), "-> feature map", tuple(fmap.shape), "-> tokens", tuple(tokens.shape))

# %%
assert fmap.shape == (2, 1024, img // 16, img // 16)  # the map is 1/16 of the input
assert tokens.shape == (2, (img // 16) ** 2, tiny_vit["hidden_size"])
assert torch.allclose(tokens, by_hand, atol=1e-4)  # 1x1 patches: flatten the map, project by E

# %% [markdown]
# ## Stage 4 removed, stage 3 extended
#
# > we either (i) take the output of stage 4 of a regular ResNet50 or (ii) remove stage 4, place the same number
# > of layers in stage 3 (keeping the total number of layers), and take the output of this extended stage 3.
# > Option (ii) results in a 4x longer sequence length, and a more expensive ViT model. (Section 4.1)
#
# The name gives P in input pixels; vitlib keeps the ResNet stages whose stride divides P.

# %%
for name in ["R50+ViT-B/16", "R50+ViT-B/32", "R26+ViT-S/32", "R26+ViT-Ti/8", "R101+ViT-L/16"]:
    cfg = vit_config(name)
    print(f"{name:14s} ResNet stages {str(cfg.backbone):14s} N at 224 px = {cfg.num_patches}")

# %%
assert vit_config("R50+ViT-B/16").backbone == (3, 4, 9)  # the paper's option (ii)
assert sum(vit_config("R50+ViT-B/16").backbone) == sum(RESNET_DEPTHS[50])  # same number of layers
assert vit_config("R50+ViT-B/16").num_patches == 4 * vit_config("R50+ViT-B/32").num_patches  # 4x longer

# %% [markdown]
# ## Sequence length and FLOPs against a plain ViT of the same width
#
# Multiply-accumulates of one 224 px image, counted by `torch.utils.flop_counter.FlopCounterMode` on the meta
# device (shapes only, no arithmetic), split into the embedding (patch projection, or ResNet + projection) and
# the rest (encoder and head).

# %%
macs = {n: macs_split(n) for n in flop_names}
for r in macs.values():
    print(f"{r['model']:13s} N={r['N']:4d}  embedding {r['embed_G']:6.2f} G  encoder+head {r['rest_G']:6.2f} G  "
          f"total {r['total_G']:6.2f} G MACs")

# %%
vb16, hb16, vb32, hb32 = (macs[n] for n in flop_names[:4])
assert abs(vb16["total_G"] - 17.58) < 0.05  # paper.md: ViT-B/16 at 224 is 17.58 G MACs
assert hb16["N"] == vb16["N"] == 196 and hb32["N"] == vb32["N"] == 49  # same P, same sequence
assert abs(hb16["rest_G"] - vb16["rest_G"]) < 1e-6  # the encoder costs the same: same D, same N
assert hb16["embed_G"] > 10 * vb16["embed_G"]  # the CNN stem costs far more than one linear projection
assert hb16["rest_G"] > 3.5 * hb32["rest_G"]  # option (ii): 4x the tokens, a more expensive ViT

# %% [markdown]
# ## What the CNN changes: inductive bias
#
# > Vision Transformer has much less image-specific inductive bias than CNNs. In CNNs, locality,
# > two-dimensional neighborhood structure, and translation equivariance are baked into each layer throughout
# > the whole model. In ViT, only MLP layers are local and translationally equivariant, while the self-attention
# > layers are global. The two-dimensional neighborhood structure is used very sparingly: in the beginning of the
# > model by cutting the image into patches. (Section 3.1)
#
# One way to see it before any attention: change one pixel (the first of patch (1, 1)) and count the tokens
# of $z_0$ that move. ViT's
# embedding sees each patch alone (exactly one token moves); the ResNet root (7x7 conv and max-pool) mixes a
# pixel's neighbours across patch borders (GroupNorm's per-image statistics also shift every token slightly, so
# we count tokens that move by more than 10% of the largest move).

# %%
def tokens_moved(name: str, row: int, col: int) -> int:
    m = vitlib.create_model(name, img_size=64, **tiny_vit).eval()
    x = torch.randn(1, 3, 64, 64)
    x2 = x.clone()
    x2[0, :, row, col] += 1.0
    with torch.no_grad():
        d = (m.patch_embed(x2) - m.patch_embed(x)).abs().amax(-1)[0]  # (N,)
    return int((d > 0.1 * d.max()).sum())  # GroupNorm's statistics move every token ~1%: count real moves


moved = {n: tokens_moved(n, 16, 16) for n in ["ViT-Ti/16", "R+ViT-Ti/16", "R50+ViT-Ti/16"]}
print("tokens of z_0 changed by the pixel (16, 16), of 16:", moved)

# %%
assert moved["ViT-Ti/16"] == 1  # a patch embedding is local to its patch
assert moved["R+ViT-Ti/16"] == 4  # the 7x7 root reaches the 2x2 neighbouring patches across the border
# Observed, not the paper's point: at initialisation the R50's units start as their shortcuts (zero-init gn3, as the
# official code), so the untrained R50 moves few tokens; its 363 px receptive field is only reachable after training.

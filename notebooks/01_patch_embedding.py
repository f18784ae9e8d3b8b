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
# # 01 · An image as a sequence of patches: Eq. 1
#
# **Reproduces** Section 3.1, Eq. 1 of Dosovitskiy et al. (ICLR 2021), the input side of the Vision
# Transformer: cut an image into $P \times P$ patches, flatten them, project them with $E$, prepend the
# class token, add the position embeddings $E_{pos}$. Then Section 3.2: resample $E_{pos}$ to a larger grid.
# Every step is written from scratch in a teaching cell and asserted equal to `vitlib`.
#
# **Run time**: `smoke` (ViT-Ti/16, the default) about 15 s on a laptop CPU; `full` (ViT-B/16) about 20 s.
# No data download, no training: the photo ships with scikit-image, the model has random weights.
#
# **Expected result**: every assert passes; the figures show the patch grid, the sequence of patches and
# one dimension of $E_{pos}$ before and after resampling (an *untrained* model: the learned picture,
# Fig. 7 center, is notebook 06's).
#
# ```
# papermill notebooks/01_patch_embedding.ipynb out.ipynb -p profile full
# ```

# %%
import math

import numpy as np
import plotly.express as px
import plotly.io as pio
import scipy.ndimage
import torch
import torch.nn.functional as F

import vitlib
from vitlib.patches import example_image, image_to_patches, tile_patches, to_uint8
from vitlib.plots import heatmap_row_figure, patch_grid_figure

pio.renderers.default = "plotly_mimetype"  # figures stored as JSON: they render in JupyterLab and repeat exactly

# %% tags=["parameters"]
profile = "smoke"  # "smoke": ViT-Ti/16; "full": ViT-B/16 (the same steps, D = 768)
image_name = "astronaut"  # a photo from skimage.data: "astronaut" or "chelsea"
seed = 0

# %%
_ = torch.manual_seed(seed)

# %%
model_name = {"smoke": "ViT-Ti/16", "full": "ViT-B/16"}[profile]
cfg = vitlib.vit_config(model_name)  # 224 x 224 input, P = 16, 1000 classes
H, W = cfg.image_hw
P, C, D = cfg.patch_size, cfg.in_chans, cfg.hidden_size
patch_sizes = [8, 14, 16, 32]  # for the N = HW / P^2 table
finetune_size = 384  # Section 3.2: fine-tune at a higher resolution than the 224 of pre-training
print(cfg)

# %% [markdown]
# ## The image
# A real photo, center-cropped and resized to $H = W = 224$. Pixel values are scaled from $[0, 255]$ to
# $[-1, 1]$ ($x / 127.5 - 1$), the input range of the official implementation's pre-processing.

# %%
x = example_image(image_name, H)[None]  # (B=1, C, H, W)
print(tuple(x.shape), f"min {x.min():.3f}, max {x.max():.3f}")

# %%
assert x.shape == (1, C, H, W) and x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9

# %% [markdown]
# ## Cutting the image into patches
# > To handle 2D images, we reshape the image $\mathbf{x} \in \mathbb{R}^{H \times W \times C}$ into a
# > sequence of flattened 2D patches $\mathbf{x}_p \in \mathbb{R}^{N \times (P^2 \cdot C)}$, where $(H, W)$
# > is the resolution of the original image, $C$ is the number of channels, $(P, P)$ is the resolution of
# > each image patch, and $N = HW/P^2$ is the resulting number of patches, which also serves as the
# > effective input sequence length for the Transformer.
#
# $$N = \frac{HW}{P^2}$$

# %%
for p in patch_sizes:
    print(f"P = {p:2d}: grid {H // p} x {W // p}, N = {H * W // p**2:4d} patches of P^2 C = {p * p * C} values")

# %%
for p in patch_sizes:
    assert image_to_patches(x, p).shape == (1, H * W // p**2, p * p * C)

# %%
patch_grid_figure(to_uint8(x[0]), P)

# %% [markdown]
# The same image as the Transformer receives it: a *sequence* of $N = 196$ patches, read row by row,
# left to right (here laid out 28 to a line, so the 14 x 14 grid becomes 7 lines of 28).

# %%
x_p = image_to_patches(x, P)  # (1, N, P^2 C)
px.imshow(to_uint8(tile_patches(x_p[0], P, ncols=28, gap=3)), title=f"the sequence x_p^1 ... x_p^{x_p.shape[1]}",
          binary_format="jpg")

# %% [markdown]
# Flattening, written out: patch $i$ is the $P \times P$ square in grid row $i \,//\, (W/P)$, column
# $i \bmod (W/P)$; its $P^2 C$ values are read channel by channel, row by row. `vitlib`'s
# `image_to_patches` does it with one `reshape`/`permute`, and PyTorch's `F.unfold` (im2col) gives the same.

# %%
gh, gw = H // P, W // P
by_hand = torch.stack([x[0, :, r * P:(r + 1) * P, c * P:(c + 1) * P].reshape(-1)
                       for r in range(gh) for c in range(gw)])[None]  # (1, N, P^2 C)
print(tuple(by_hand.shape))

# %%
assert torch.equal(by_hand, x_p)
assert torch.equal(x_p, F.unfold(x, kernel_size=P, stride=P).transpose(1, 2))

# %% [markdown]
# ## The patch embedding $E$
# > The Transformer uses constant latent vector size $D$ through all of its layers, so we flatten the
# > patches and map to $D$ dimensions with a trainable linear projection (Eq. 1). We refer to the output of
# > this projection as the patch embeddings.
#
# $$\mathbf{x}_p^i \mathbf{E}, \qquad \mathbf{E} \in \mathbb{R}^{(P^2 \cdot C) \times D}$$
#
# A matrix applied to every non-overlapping $P \times P$ patch is a convolution with kernel = stride = $P$:
# that is how `vitlib` (like the official code and timm) stores $E$, in `patch_embed.proj`.

# %%
model = vitlib.create_model(model_name).eval()
conv = model.patch_embed.proj
E = conv.weight.reshape(D, -1).T  # (P^2 C, D): the Conv2d kernel (D, C, P, P) read as a matrix
print(conv, "-> E", tuple(E.shape))

# %%
with torch.no_grad():
    by_matrix = x_p @ E + conv.bias  # (1, N, D)
    by_conv = model.patch_embed(x)  # Conv2d(kernel = stride = P), flattened to (1, N, D)

# %%
assert E.shape == (P * P * C, D)
assert torch.allclose(by_matrix, by_conv, atol=1e-5)

# %% [markdown]
# The order of the $P^2 C$ values inside a patch is a convention, not part of the model: the official JAX
# code flattens $(P, P, C)$, PyTorch $(C, P, P)$. Reordering the patch vector and the rows of $E$ the same
# way gives the same product.

# %%
order = torch.arange(P * P * C).reshape(C, P, P).permute(1, 2, 0).reshape(-1)  # (P, P, C) order
with torch.no_grad():
    assert torch.allclose(x_p[..., order] @ E[order] + conv.bias, by_conv, atol=1e-5)

# %% [markdown]
# ## The class token
# > Similar to BERT's `[class]` token, we prepend a learnable embedding to the sequence of embedded patches
# > ($\mathbf{z}_0^0 = \mathbf{x}_\text{class}$), whose state at the output of the Transformer encoder
# > ($\mathbf{z}_L^0$) serves as the image representation $\mathbf{y}$ (Eq. 4).
#
# The official code initialises $\mathbf{x}_\text{class}$ to zeros; it is learned like every other weight.

# %%
print(tuple(model.cls_token.shape), model.cls_token.abs().max().item())

# %%
assert model.cls_token.shape == (1, 1, D) and torch.all(model.cls_token == 0) and model.cls_token.requires_grad

# %% [markdown]
# ## Position embeddings
# > Position embeddings are added to the patch embeddings to retain positional information. We use standard
# > learnable 1D position embeddings, since we have not observed significant performance gains from using more
# > advanced 2D-aware position embeddings (Appendix D.4).
#
# $$\mathbf{E}_{pos} \in \mathbb{R}^{(N+1) \times D}$$
#
# One row per token ($N$ patches and the class token), initialised $\mathcal{N}(0, 0.02^2)$ as in the
# official code. "1D": a row is indexed by the position in the sequence only; nothing tells the model
# that patch 14 sits below patch 0.

# %%
print(tuple(model.pos_embed.shape), f"std {model.pos_embed.std():.4f}")

# %%
N = cfg.num_patches
assert model.pos_embed.shape == (1, N + 1, D)
assert abs(model.pos_embed.std().item() - 0.02) < 0.002

# %% [markdown]
# ## Eq. 1, assembled by hand
# $$\mathbf{z}_0 = [\mathbf{x}_\text{class};\, \mathbf{x}_p^1 \mathbf{E};\, \mathbf{x}_p^2 \mathbf{E};
# \cdots;\, \mathbf{x}_p^N \mathbf{E}] + \mathbf{E}_{pos}$$

# %%
with torch.no_grad():
    z0 = torch.cat([model.cls_token, x_p @ E + conv.bias], dim=1) + model.pos_embed  # (1, N + 1, D)
    z0_vitlib = model.embed(x)
print(tuple(z0.shape))

# %%
assert z0.shape == (1, N + 1, D)
assert torch.allclose(z0, z0_vitlib, atol=1e-5)

# %% [markdown]
# ## Higher resolution: resampling $E_{pos}$ (Section 3.2)
# > When feeding images of higher resolution, we keep the patch size the same, which results in a larger
# > effective sequence length. The Vision Transformer can handle arbitrary sequence lengths (up to memory
# > constraints), however, the pre-trained position embeddings may no longer be meaningful. We therefore
# > perform 2D interpolation of the pre-trained position embeddings, according to their location in the
# > original image.
#
# At 384 px with $P = 16$ the grid grows from 14 x 14 to 24 x 24. The 196 grid rows of $E_{pos}$ are
# laid out as a 14 x 14 image per dimension, interpolated bilinearly to 24 x 24 (the official code uses
# `scipy.ndimage.zoom(order=1)`), flattened back; the class token's row is kept as it is.

# %%
new_grid = finetune_size // P
pe = model.pos_embed.detach()
pe_new = vitlib.resample_pos_embed(pe, new_grid)
print(tuple(pe.shape), "->", tuple(pe_new.shape))

# %%
assert torch.equal(vitlib.resample_pos_embed(pe, gh), pe)  # the same grid: the identity
assert pe_new.shape == (1, 1 + new_grid**2, D)
assert torch.equal(pe_new[:, 0], pe[:, 0])  # the class token's embedding is kept
grid_old, grid_new = pe[0, 1:].reshape(gh, gw, D), pe_new[0, 1:].reshape(new_grid, new_grid, D)
for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:  # corners map onto corners
    assert torch.allclose(grid_new[corner], grid_old[corner], atol=1e-6)
zoom = scipy.ndimage.zoom(grid_old.double().numpy(), (new_grid / gh, new_grid / gw, 1), order=1)
assert np.allclose(grid_new.numpy(), zoom, atol=1e-5)  # what the official code computes

# %% [markdown]
# One dimension of $E_{pos}$ as an image on the patch grid, before and after. This model is **untrained**:
# its $E_{pos}$ is the random $\mathcal{N}(0, 0.02^2)$ initialisation, so the 14 x 14 picture is noise and the
# 24 x 24 one is the same noise, smoothly stretched. What *learned* embeddings look like (Fig. 7 center:
# rows and columns appear) is notebook 06's subject.

# %%
dim = 0
heatmap_row_figure({f"14 x 14 (224 px), dimension {dim}": grid_old[..., dim].numpy(),
                    f"24 x 24 ({finetune_size} px), resampled": grid_new[..., dim].numpy()},
                   title="one dimension of E_pos on the patch grid (untrained model)")

# %% [markdown]
# `vitlib` does this on the fly: a 384 x 384 image through the 224-px model gets the resampled $E_{pos}$.

# %%
x384 = example_image(image_name, finetune_size)[None]
with torch.no_grad():
    z0_384 = torch.cat([model.cls_token, model.patch_embed(x384)], dim=1) + pe_new
    assert torch.allclose(model.embed(x384), z0_384, atol=1e-5)
assert math.prod(z0_384.shape) == (1 + (finetune_size // P) ** 2) * D

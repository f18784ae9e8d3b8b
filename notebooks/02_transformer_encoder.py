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
# # 02 · The Transformer encoder: Eq. 2-8, Table 1, and the inductive bias
#
# **Reproduces** Section 3.1 of Dosovitskiy et al. (ICLR 2021): multi-head self-attention (Appendix A,
# Eq. 5-8), the pre-norm encoder block (Eq. 2-3), the output (Eq. 4); **Table 1** (the variants, their exact
# parameter counts, and their forward FLOPs); the cost of smaller patches; and the inductive-bias remark:
# a ViT without position embeddings does not see the order of its patches, a CNN does.
# Every step is written from scratch in a teaching cell and asserted equal to `vitlib`.
#
# **Run time**: `smoke` (ViT-Ti/16 for the equations, the default) about 40 s on a laptop CPU, most of it
# counting FLOPs; `full` (ViT-B/16 for the equations) about a minute. Random weights, no download.
#
# **Expected result**: every assert passes; the parameter counts equal paper.md's pinned numbers exactly;
# ViT-B/16 at 224 px costs 17.56 G multiply-accumulates (timm's table: 17.58 G, within 1%).
#
# ```
# papermill notebooks/02_transformer_encoder.ipynb out.ipynb -p profile full
# ```

# %%
import math

import pandas as pd
import plotly.io as pio
import torch
import torch.nn.functional as F
import torchvision
from plotly.subplots import make_subplots

import vitlib
from vitlib.flops import complexity, count_parameters
from vitlib.patches import example_image, shuffle_patches, to_uint8
from vitlib.plots import image_row_figure

pio.renderers.default = "plotly_mimetype"  # figures stored as JSON: they render in JupyterLab and repeat exactly

# %% tags=["parameters"]
profile = "smoke"  # "smoke": ViT-Ti/16 for the equations; "full": ViT-B/16
image_name = "astronaut"  # a photo from skimage.data: "astronaut" or "chelsea"
seed = 0

# %%
_ = torch.manual_seed(seed)

# %%
model_name = {"smoke": "ViT-Ti/16", "full": "ViT-B/16"}[profile]
table1_names = ["ViT-Ti/16", "ViT-S/16", "ViT-B/16", "ViT-B/32", "ViT-L/16", "ViT-L/32", "ViT-H/14"]
patch_sizes = [8, 14, 16, 32]  # sequence length and FLOPs of ViT-B against P, at 224 px
img_size = 224
print(vitlib.vit_config(model_name))

# %% [markdown]
# The input to the encoder is $\mathbf{z}_0$ of Eq. 1 (notebook 01) for one real photo.

# %%
model = vitlib.create_model(model_name).eval()
cfg = model.cfg
D, k, D_h, L, N = cfg.hidden_size, cfg.num_heads, cfg.head_dim, cfg.num_layers, cfg.num_patches
x = example_image(image_name, img_size)[None]  # (1, 3, 224, 224), values in [-1, 1]
with torch.no_grad():
    z0 = model.embed(x)  # (1, N + 1, D)
print(f"D = {D}, k = {k} heads, D_h = D / k = {D_h}, L = {L} blocks, z_0: {tuple(z0.shape)}")

# %% [markdown]
# ## Multi-head self-attention (Appendix A)
# > Standard qkv self-attention (SA) is a popular building block for neural architectures. For each element
# > in an input sequence $\mathbf{z} \in \mathbb{R}^{N \times D}$, we compute a weighted sum over all values
# > $\mathbf{v}$ in the sequence. The attention weights $A_{ij}$ are based on the pairwise similarity between
# > two elements of the sequence and their respective query $\mathbf{q}^i$ and key $\mathbf{k}^j$
# > representations.
#
# $$[\mathbf{q}, \mathbf{k}, \mathbf{v}] = \mathbf{z} \mathbf{U}_{qkv}, \qquad
# \mathbf{U}_{qkv} \in \mathbb{R}^{D \times 3 D_h} \qquad (5)$$
# $$A = \mathrm{softmax}\left(\mathbf{q} \mathbf{k}^\top / \sqrt{D_h}\right), \qquad
# A \in \mathbb{R}^{N \times N} \qquad (6)$$
# $$\mathrm{SA}(\mathbf{z}) = A \mathbf{v} \qquad (7)$$
#
# > Multihead self-attention (MSA) is an extension of SA in which we run $k$ self-attention operations,
# > called "heads", in parallel, and project their concatenated outputs. To keep compute and number of
# > parameters constant when changing $k$, $D_h$ is typically set to $D/k$.
#
# $$\mathrm{MSA}(\mathbf{z}) = [\mathrm{SA}_1(\mathbf{z}); \mathrm{SA}_2(\mathbf{z}); \cdots;
# \mathrm{SA}_k(\mathbf{z})] \, \mathbf{U}_{msa}, \qquad \mathbf{U}_{msa} \in \mathbb{R}^{k \cdot D_h \times D}
# \qquad (8)$$
#
# `vitlib` stores the $k$ matrices $\mathbf{U}_{qkv}$ side by side in one `Linear(D, 3D)` (`attn.qkv`: all
# queries, then all keys, then all values, head by head), and $\mathbf{U}_{msa}$ in `attn.proj`; both have
# a bias, as in the official code. The teaching cell takes head $h$'s own $D \times 3D_h$ matrix out of it.

# %%
blk = model.blocks[0]
attn = blk.attn
z = blk.norm1(z0).detach()  # the input MSA sees in the first block (Eq. 2)
W_qkv, b_qkv = attn.qkv.weight.T, attn.qkv.bias  # (D, 3D): [U_q of all heads | U_k ... | U_v ...]


def cols(h: int) -> list[int]:
    """The 3 D_h columns of head h's U_qkv: its query, key and value columns."""
    return [part * D + h * D_h + j for part in range(3) for j in range(D_h)]


with torch.no_grad():
    heads, As = [], []
    for h in range(k):
        U_qkv = W_qkv[:, cols(h)]  # (D, 3 D_h), Eq. 5
        q, k_, v = (z @ U_qkv + b_qkv[cols(h)]).split(D_h, dim=-1)  # each (1, N + 1, D_h)
        A = torch.softmax(q @ k_.transpose(-2, -1) / math.sqrt(D_h), dim=-1)  # (1, N + 1, N + 1), Eq. 6
        heads.append(A @ v)  # SA_h(z), Eq. 7
        As.append(A)
    msa = torch.cat(heads, dim=-1) @ attn.proj.weight.T + attn.proj.bias  # Eq. 8: [SA_1; ...; SA_k] U_msa
print(f"U_qkv per head {tuple(U_qkv.shape)}, A per head {tuple(A.shape)}, MSA(z) {tuple(msa.shape)}")

# %%
with torch.no_grad():
    msa_explicit, A_vitlib = attn(z, return_attention=True)  # the path that writes out Eq. 6-7
    msa_fused, _ = attn(z)  # F.scaled_dot_product_attention
assert torch.allclose(msa, msa_explicit, atol=1e-5)
assert torch.allclose(torch.stack(As, dim=1), A_vitlib, atol=1e-6)  # (1, k, N + 1, N + 1)
assert torch.allclose(msa_fused, msa_explicit, atol=1e-5)  # fused kernel = explicit Eq. 6-7
assert torch.allclose(A_vitlib.sum(-1), torch.ones(1, k, N + 1))  # each row of A is a distribution

# %% [markdown]
# The scale is $\sqrt{D_h}$, the width of one head, not $\sqrt{D}$ (a common slip in re-implementations):

# %%
with torch.no_grad():
    q0, k0, _ = (z @ W_qkv[:, cols(0)] + b_qkv[cols(0)]).split(D_h, dim=-1)
    A_wrong = torch.softmax(q0 @ k0.transpose(-2, -1) / math.sqrt(D), dim=-1)
assert not torch.allclose(A_wrong, A_vitlib[:, 0], atol=1e-4)

# %% [markdown]
# ## The encoder block (Eq. 2-3)
# > The Transformer encoder (Vaswani et al., 2017) consists of alternating layers of multiheaded
# > self-attention (MSA, see Appendix A) and MLP blocks (Eq. 2, 3). Layernorm (LN) is applied before every
# > block, and residual connections after every block. The MLP contains two layers with a GELU non-linearity.
#
# $$\mathbf{z}'_\ell = \mathrm{MSA}(\mathrm{LN}(\mathbf{z}_{\ell-1})) + \mathbf{z}_{\ell-1},
# \qquad \ell = 1 \ldots L \qquad (2)$$
# $$\mathbf{z}_\ell = \mathrm{MLP}(\mathrm{LN}(\mathbf{z}'_\ell)) + \mathbf{z}'_\ell,
# \qquad \ell = 1 \ldots L \qquad (3)$$

# %%
def layer_norm(t: torch.Tensor, ln: torch.nn.LayerNorm) -> torch.Tensor:
    """LN over the D features of each token, with its learned gain and bias."""
    mu, var = t.mean(-1, keepdim=True), t.var(-1, unbiased=False, keepdim=True)
    return (t - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


with torch.no_grad():
    a, _ = attn(layer_norm(z0, blk.norm1))
    z1_prime = a + z0  # Eq. 2
    hidden = F.gelu(layer_norm(z1_prime, blk.norm2) @ blk.mlp.fc1.weight.T + blk.mlp.fc1.bias)  # (1, N+1, D_mlp)
    z1 = hidden @ blk.mlp.fc2.weight.T + blk.mlp.fc2.bias + z1_prime  # Eq. 3
print(f"MLP: {D} -> {hidden.shape[-1]} -> {D}; z_1 {tuple(z1.shape)}")

# %%
with torch.no_grad():
    z1_vitlib, _ = blk(z0)
assert torch.allclose(z1, z1_vitlib, atol=1e-5)

# %% [markdown]
# ## The output (Eq. 4) and the two heads
# $$\mathbf{y} = \mathrm{LN}(\mathbf{z}_L^0) \qquad (4)$$
# > Both during pre-training and fine-tuning, a classification head is attached to $\mathbf{z}_L^0$. The
# > classification head is implemented by a MLP with one hidden layer at pre-training time and by a single
# > linear layer at fine-tuning time.
#
# The hidden layer of the pre-training head is $\tanh$ (official code, `representation_size`). The
# fine-tuning head is a $D \times K$ linear layer initialised to zero, so an untrained model's logits are
# all zero; to test the formula we give both heads random weights here.

# %%
finetune_model = vitlib.create_model(model_name).eval()  # linear head
pretrain_model = vitlib.create_model(model_name, representation_size=D).eval()  # Linear(D, D) + tanh, then head
for m in (finetune_model, pretrain_model):
    with torch.no_grad():
        m.load_state_dict(model.state_dict(), strict=False)  # the same encoder as `model`
        torch.nn.init.normal_(m.head.weight, std=0.02)
with torch.no_grad():
    zL = z0
    for b in model.blocks:
        zL, _ = b(zL)  # Eq. 2-3, l = 1 ... L
    y = model.norm(zL[:, 0])  # Eq. 4: the class token's final state, after LN
    logits_finetune = finetune_model.head(y)
    logits_pretrain = pretrain_model.head(torch.tanh(pretrain_model.pre_logits.fc(y)))
print(f"y {tuple(y.shape)}; fine-tuning head {tuple(finetune_model.head.weight.shape)}, pre-training head "
      f"{tuple(pretrain_model.pre_logits.fc.weight.shape)} + tanh + {tuple(pretrain_model.head.weight.shape)}")

# %%
with torch.no_grad():
    assert torch.allclose(logits_finetune, finetune_model(x), atol=1e-4)
    assert torch.allclose(logits_pretrain, pretrain_model(x), atol=1e-4)
    assert torch.all(model(x) == 0)  # zero-initialised head
assert count_parameters(pretrain_model) - count_parameters(finetune_model) == D * D + D  # the tanh layer

# %% [markdown]
# ## Table 1, rebuilt from `create_model`
# > Table 1: Details of Vision Transformer model variants.
#
# Each model is built on `torch.device("meta")`: shapes without memory, so even ViT-H/14 (632M parameters)
# costs nothing to build. FLOPs come from `torch.utils.flop_counter.FlopCounterMode` on the same meta
# model (matrix products only: patch embedding, $\mathbf{U}_{qkv}$, $\mathbf{q}\mathbf{k}^\top$,
# $A\mathbf{v}$, $\mathbf{U}_{msa}$, the MLPs, the head). One multiply-accumulate (MAC) is 2 FLOPs; timm and
# torchvision tables list MACs.

# %%
table1 = pd.DataFrame([complexity(name, img_size) for name in table1_names]).set_index("model")
table1.round(2)

# %%
# Exact counts at 224 px with 1000 classes (paper.md: the official tests, timm and torchvision agree).
pinned_params = {"ViT-Ti/16": 5_717_416, "ViT-S/16": 22_050_664, "ViT-B/16": 86_567_656, "ViT-B/32": 88_224_232,
                 "ViT-L/16": 304_326_632, "ViT-L/32": 306_535_400, "ViT-H/14": 632_045_800}
assert table1["params"].to_dict() == pinned_params
assert abs(table1.loc["ViT-B/16", "gmacs"] - 17.58) / 17.58 < 0.01  # timm: 17.58 G MACs, about 35 GFLOPs

# %% [markdown]
# **Where these differ from Table 1's 86M / 307M / 632M.** Table 1 lists one parameter count per model
# size, but the count depends, a little, on $P$: only $\mathbf{E}$ ($P^2 C \times D$ weights) and
# $\mathbf{E}_{pos}$ ($(N + 1) \times D$) change with $P$; the $L$ blocks do not. ViT-B/16 has 86.6M
# (Table 1: 86M). ViT-L/16, the model of most of the paper's results, has 304.3M: Table 1's 307M is
# ViT-L/32's count (306.5M), whose larger $\mathbf{E}$ outweighs its shorter $\mathbf{E}_{pos}$. ViT-H/14
# has 632.0M (Table 1: 632M). All counts here include a 1000-class linear head.
# The cell below checks that the difference between L/16 and L/32 is exactly those two tensors.

# %%
def p_dependent(P: int, D: int, C: int = 3, size: int = 224) -> int:
    """Parameters of E (and its bias) and E_pos for patch size P."""
    return P * P * C * D + D + ((size // P) ** 2 + 1) * D


assert (pinned_params["ViT-L/32"] - pinned_params["ViT-L/16"]) == p_dependent(32, 1024) - p_dependent(16, 1024)
assert (pinned_params["ViT-B/32"] - pinned_params["ViT-B/16"]) == p_dependent(32, 768) - p_dependent(16, 768)

# %% [markdown]
# ## Smaller patches, longer sequences
# > [...] "ViT-L/16" means the "Large" variant with $16 \times 16$ input patch size. Note that the
# > Transformer's sequence length is inversely proportional to the square of the patch size, thus models
# > with smaller patch size are computationally more expensive.

# %%
by_P = pd.DataFrame([complexity(f"ViT-B/{P}", img_size) for P in patch_sizes]).set_index("P")
by_P[["model", "N", "params", "gmacs", "gflops"]].round(2)

# %%
assert by_P["N"].to_dict() == {P: (img_size // P) ** 2 for P in patch_sizes}  # 784, 256, 196, 49
assert by_P["gflops"].is_monotonic_decreasing
# Halving P quadruples N, and more than quadruples the FLOPs: attention (q k^T, A v) is quadratic in N.
assert by_P.loc[8, "gflops"] / by_P.loc[16, "gflops"] > by_P.loc[8, "N"] / by_P.loc[16, "N"]

# %%
fig = make_subplots(rows=1, cols=2, subplot_titles=["sequence length N = HW / P^2", "ViT-B forward GFLOPs"])
fig.add_scatter(x=patch_sizes, y=by_P["N"], mode="lines+markers", name="N", row=1, col=1)
fig.add_scatter(x=patch_sizes, y=by_P["gflops"].round(2), mode="lines+markers", name="GFLOPs", row=1, col=2)
fig.update_xaxes(title_text="patch size P (224 x 224 image)", tickvals=patch_sizes)
fig.update_yaxes(type="log").update_layout(width=820, height=360, showlegend=False)

# %% [markdown]
# ## Inductive bias (Section 3.1)
# > We note that Vision Transformer has much less image-specific inductive bias than CNNs. In CNNs, locality,
# > two-dimensional neighborhood structure, and translation equivariance are baked into each layer throughout
# > the whole model. In ViT, only MLP layers are local and translationally equivariant, while the
# > self-attention layers are global. The two-dimensional neighborhood structure is used very sparingly: in
# > the beginning of the model by cutting the image into patches and at fine-tuning time for adjusting the
# > position embeddings for images of different resolution (as described below). Other than that, the
# > position embeddings at initialization time carry no information about the 2D positions of the patches
# > and all spatial relations between the patches have to be learned from scratch.
#
# An experiment that makes this concrete: shuffle the $16 \times 16$ patches of the photo.

# %%
P = cfg.patch_size
perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
x_shuffled = shuffle_patches(x, P, perm)
image_row_figure({"the image": to_uint8(x[0]), "its patches, shuffled": to_uint8(x_shuffled[0])})

# %% [markdown]
# **A CNN sees the difference.** A ResNet-18 (random weights; its receptive field spans many patches)
# pools its last feature map into one vector per image: shuffling the patches changes that vector, because
# every convolution looks at pixel neighbourhoods that the shuffle has cut apart.

# %%
cnn = torchvision.models.resnet18(weights=None, num_classes=10).eval()
cnn.fc = torch.nn.Identity()  # the pooled 512-d features
with torch.no_grad():
    f, f_shuffled = cnn(x), cnn(x_shuffled)
print(f"CNN features: relative change under the shuffle {((f - f_shuffled).norm() / f.norm()).item():.3f}")

# %%
assert not torch.allclose(f, f_shuffled, rtol=1e-2, atol=1e-3)

# %% [markdown]
# **A ViT without position embeddings does not.** Without $\mathbf{E}_{pos}$ (`pos_embed="none"`, the
# "no positional information" row of Appendix D.4), every operation after the patch embedding is
# per-token (LN, MLP) or a weighted sum over all tokens (MSA), so the encoder is *permutation-equivariant*:
# shuffled patches give exactly the same tokens, shuffled the same way, and the class token (Eq. 4's
# $\mathbf{y}$) does not change at all.

# %%
no_pos = vitlib.create_model(model_name, pos_embed="none").eval()
with torch.no_grad():
    tokens = no_pos.forward_features(x)  # (1, N + 1, D), after the final LN
    tokens_shuffled = no_pos.forward_features(x_shuffled)
print(f"no E_pos: max |y - y_shuffled| = {(tokens[:, 0] - tokens_shuffled[:, 0]).abs().max().item():.4f}")

# %%
assert torch.allclose(tokens_shuffled[:, 1:], tokens[:, 1 + perm], atol=1e-4)  # the patch tokens, permuted
assert torch.allclose(tokens_shuffled[:, 0], tokens[:, 0], atol=1e-4)  # the class token, unchanged

# %% [markdown]
# **With position embeddings it does**, even with the untrained $\mathcal{N}(0, 0.02^2)$ embeddings: each
# token now carries its position, so the shuffled sequence is a different input. What the model does
# with the positions is learned (Fig. 7 center, notebook 06), not built in. Which *kind* of position
# information matters is the position-embedding ablation of Appendix D.4 (Table 8: the paper finds any kind
# far better than none, and the kinds about equal), whose rows are `pos_embed="none"`, `"learned"`,
# `"learned_2d"` and `"relative"` here, and which [notebook 08](08_ablations.ipynb) reruns in miniature
# (pre-trained with each kind, probed and fine-tuned: `vitlib.experiments.pos_embed`).

# %%
with torch.no_grad():
    tokens = model.forward_features(x)
    tokens_shuffled = model.forward_features(x_shuffled)
change = (tokens[:, 0] - tokens_shuffled[:, 0]).norm() / tokens[:, 0].norm()
print(f"learned 1D E_pos: relative change of y under the shuffle {change.item():.3f}")

# %%
assert not torch.allclose(tokens_shuffled[:, 0], tokens[:, 0], atol=1e-3)
assert not torch.allclose(tokens_shuffled[:, 1:], tokens[:, 1 + perm], atol=1e-3)

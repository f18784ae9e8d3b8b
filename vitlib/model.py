"""The Vision Transformer: Eq. 1-4 of Section 3.1 and Eq. 5-8 of Appendix A.

Glossary (the paper's symbols, used the same way everywhere in vitlib):
    H, W, C  image height, width, channels
    P        patch size: patches are P x P pixels
    N        number of patches, N = HW / P^2 (the sequence has N + 1 tokens with the class token)
    D        hidden size, the width of every token
    k        number of attention heads;  D_h = D / k, the width of one head
    L        number of encoder blocks
    D_mlp    hidden width of the MLP
    B        batch size (code only)

Eq. 1  z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos     PatchEmbedding, cls_token, pos_embed
Eq. 2  z'_l = MSA(LN(z_{l-1})) + z_{l-1}                 Block (norm1, attn)
Eq. 3  z_l = MLP(LN(z'_l)) + z'_l                        Block (norm2, mlp)
Eq. 4  y = LN(z_L^0)                                     VisionTransformer.norm, then the head
Eq. 5-8  [q, k, v] = z U_qkv; A = softmax(q k^T / sqrt(D_h)); SA = A v; MSA = [SA_1..SA_k] U_msa

Appendix D.4 (Table 8), the kinds of position information (`ViTConfig.pos_embed`):
    "learned"     E_pos in R^{(N+1) x D}, one learned vector per raster position: Eq. 1, the paper's default
    "learned_2d"  E_pos of patch (row r, column c) = [X_c; Y_r], X in R^{gw x D/2}, Y in R^{gh x D/2}
                  (`pos_embed_x`, `pos_embed_y`; `pos_embed_2d`)
    "relative"    no E_pos; in every block, 1D relative attention adds q_i . R_{p_i - p_j} / sqrt(D_h) to the
                  logits of Eq. 6 (`RelativePosition`, `relative_position_index`)
    "none"        no position information: the encoder sees "a bag of patches"

Attribute names follow timm (`patch_embed.proj`, `cls_token`, `pos_embed`,
`blocks.i.norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`,
`norm`, `head`), so that weights import by name.

Deviations from the paper: none in the architecture. Stochastic depth
(`drop_path`) is an option the paper does not use (default 0); so is LayerScale (`layer_scale`, default
None: off), which multiplies each residual branch by a learned per-channel gamma (`LayerScale`, `ls1`,
`ls2`), for models trained with it (DINOv2). Appendix D.4 leaves details of its
"learned_2d" and "relative" variants open; the choices made here are marked NOTE at `pos_embed_2d`,
`VisionTransformer.embed` and `RelativePosition`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ViTConfig, parse_resnet_name, resnet_config, resnet_example_names, vit_config
from .hybrid import HybridEmbedding
from .resnet import ResNet
from .utils import check_image_batch

__all__ = ["PatchEmbedding", "Attention", "ATTENTION_PATHS", "choose_attention_path", "set_attention_path", "MLP",
           "Block", "LayerScale", "VisionTransformer", "resample_pos_embed", "create_model", "pos_embed_2d",
           "relative_position_index", "RelativePosition", "resample_pos_embed_1d", "resample_position_state"]


class PatchEmbedding(nn.Module):
    """Eq. 1, the projection x_p^i E: cut the image into P x P patches, flatten, multiply by E.

    E in R^{(P^2 C) x D} applied to every non-overlapping patch is exactly a
    Conv2d with kernel = stride = P (tests/test_model.py checks the two agree).
    """

    def __init__(self, patch_size: int, in_chans: int, hidden_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size  # P, in input pixels
        self.in_chans = in_chans
        self.proj = nn.Conv2d(in_chans, hidden_size, kernel_size=patch_size, stride=patch_size)

    def grid_size(self, h: int, w: int) -> tuple[int, int]:
        """Patch grid (H / P, W / P) of an H x W image."""
        return h // self.patch_size, w // self.patch_size

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)  # (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2)  # (B, N, D)


def relative_position_index(grid: tuple[int, int], class_token: bool = True) -> Tensor:
    """Appendix D.4's 1D relative positions: for every (query, key) pair, its row in `RelativePosition.table`.

    Patches are numbered in raster order, p = r * gw + c (as `PatchEmbedding` flattens them, and as the
    1D embeddings number them). A pair of patches (query p_q, key p_k) has the offset p_q - p_k, stored at
    row p_q - p_k + N - 1 (rows 0 .. 2N - 2). With a class token (the first token) three more rows:
    2N - 1 for the class token as query with any patch as key, 2N for a patch query with the class-token key,
    2N + 1 for the class token with itself. Returns (T, T) int64, T = N + 1 (N without class token).

    >>> relative_position_index((1, 3), class_token=False).tolist()
    [[2, 1, 0], [3, 2, 1], [4, 3, 2]]
    """
    N = grid[0] * grid[1]
    p = torch.arange(N)
    offsets = p[:, None] - p[None, :] + (N - 1)  # (N, N): p_q - p_k, shifted to 0 .. 2N - 2
    if not class_token:
        return offsets
    index = torch.empty(N + 1, N + 1, dtype=torch.long)
    index[1:, 1:] = offsets
    index[0, 1:] = 2 * N - 1  # class token -> patch
    index[1:, 0] = 2 * N  # patch -> class token
    index[0, 0] = 2 * N + 1  # class token -> class token
    return index


class RelativePosition(nn.Module):
    """Appendix D.4, "Rel. Pos. Emb." of Table 8: 1-dimensional relative attention, one per encoder block.

    The paper: "we use 1-dimensional Relative Attention, in which we define the relative distance [of] all
    possible pairs of patches. Thus, for every given pair (one as query, and the other as key/value in the
    attention mechanism), we have an offset p_q - p_k, where each offset is associated with an embedding.
    Then, we simply run extra attention, where we use the original query (the content of query), but use
    relative positional embeddings as keys. We then use the logits from the relative attention as a bias
    term and add it to the logits of the main attention (content-based attention) before applying the
    softmax."

    Here: a table R in R^{M x D_h} (`table`), M = 2N - 1 raster offsets (+ 3 rows with a class token, see
    `relative_position_index`, the buffer `index`). For head h, query i and key j the bias is
        b^h_ij = q^h_i . R_{index[i, j]} / sqrt(D_h)
    and Eq. 6 becomes A = softmax(q k^T / sqrt(D_h) + b). The model then has no absolute E_pos.
    """

    # NOTE: the appendix leaves these open; the choices follow Shaw et al. (2018), the relative attention
    # the appendix describes: (1) one table per block, shared by the k heads; (2) the relative logits are
    # scaled by 1 / sqrt(D_h) like the content logits (Shaw et al. scale their sum); (3) no clipping of the
    # offsets ("all possible pairs"). (4) The class token has no position: its pairs get three rows of
    # their own, as BEiT (Bao et al., 2021) does for its 2D relative bias. (5) Init N(0, 0.02) as E_pos.
    # (6) The offsets are 1D raster offsets, so the table is tied to the grid: no resampling to another
    # resolution (`resample_position_state` explains). tests/test_pos_embed.py checks the index by hand on
    # 2 x 2 and 3 x 3 grids and the bias against this formula.

    def __init__(self, grid: tuple[int, int], head_dim: int, class_token: bool = True) -> None:
        super().__init__()
        self.grid = tuple(grid)  # (gh, gw): the patch grid the table belongs to
        index = relative_position_index(self.grid, class_token)  # (T, T)
        self.register_buffer("index", index, persistent=False)
        N = self.grid[0] * self.grid[1]
        self.table = nn.Parameter(torch.zeros(2 * N - 1 + 3 * class_token, head_dim))  # R, (M, D_h)

    def forward(self, q: Tensor) -> Tensor:
        """The bias b (B, k, T, T) for the queries q (B, k, T, D_h)."""
        B, k, T, Dh = q.shape
        if T != self.index.shape[0]:
            raise ValueError(f"relative attention was built for {self.index.shape[0]} tokens "
                             f"({self.grid[0]}x{self.grid[1]} patches), got {T}")
        logits = q @ self.table.T / math.sqrt(Dh)  # (B, k, T, M): every query against every offset's embedding
        return logits.gather(-1, self.index.expand(B, k, T, T))  # (B, k, T, T): b_ij = logits[i, index[i, j]]


# The attention path, chosen by measurement (benchmarks/train_speed.py, figures/train_speed.json):
#   "fused"     F.scaled_dot_product_attention: flash / memory-efficient kernels on GPU, a fused kernel on CPU;
#   "explicit"  Eq. 6-7 written out (q k^T, softmax in fp32, A v): on CPU in bf16 the fused kernel and its
#               backward are slower than these three ops, which run as bf16 matmuls; in fp32 the fused kernel
#               is as fast or faster;
#   "explicit_lowp"  the same with the softmax in the input's dtype (bf16), kept for measurement.
# `return_attention=True` always takes the explicit path (it needs A). All paths agree (tests/test_model.py).
ATTENTION_PATHS = ("auto", "fused", "explicit", "explicit_lowp")


def choose_attention_path(q: Tensor) -> str:
    """The rule behind path="auto": "explicit" on CPU in bf16/fp16 (autocast), else "fused"."""
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        return "explicit"
    return "fused"


class Attention(nn.Module):
    """Multi-head self-attention, Appendix A Eq. 5-8.

    `path` (one of ATTENTION_PATHS, default "auto") picks how Eq. 6-7 are computed; every path gives the same
    output up to rounding. `return_attention=True` takes the explicit path and returns A as well.
    With `rel_pos` (a `RelativePosition`, Appendix D.4) its bias b is added to the logits of Eq. 6 on every
    path (the fused kernel takes it as an additive float `attn_mask`), and the returned A includes it.
    """

    def __init__(self, hidden_size: int, num_heads: int, qkv_bias: bool = True, attn_dropout: float = 0.0,
                 dropout: float = 0.0, rel_pos: RelativePosition | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads  # k
        self.head_dim = hidden_size // num_heads  # D_h
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=qkv_bias)  # U_qkv, all k heads at once
        self.proj = nn.Linear(hidden_size, hidden_size)  # U_msa
        self.attn_drop = nn.Dropout(attn_dropout)
        self.proj_drop = nn.Dropout(dropout)
        self.path = "auto"  # see ATTENTION_PATHS; set with `set_attention_path(model, path)`
        self.rel_pos = rel_pos  # Appendix D.4 relative attention, or None

    def forward(self, z: Tensor, return_attention: bool = False) -> tuple[Tensor, Tensor | None]:
        B, T, D = z.shape  # T = N + 1 tokens
        qkv = self.qkv(z).reshape(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, k, T, D_h)
        bias = self.rel_pos(q) if self.rel_pos is not None else None  # (B, k, T, T) or None
        path = "explicit" if return_attention else self.path
        if path == "auto":
            path = choose_attention_path(q)
        if path == "fused":
            A = None
            # NOTE: with relative attention the bias b goes in as a float attn_mask; on a GPU that rules out the
            # flash kernel (it takes no mask) and SDPA runs the memory-efficient (or cuDNN) fused kernel, which
            # adds b, with the same numbers. No rewrite gives flash the same logits: b_ij = q_i . R_{p_i - p_j}
            # depends on the pair (i, j) through the query, so it is neither a per-key nor a per-query term; folding
            # it into q k^T needs extra head dimensions of size T (a one-hot key per position), slower than the
            # mask. The alternative is FlexAttention (torch.nn.attention.flex_attention, a score_mod adding the
            # gathered bias in the kernel), which needs torch.compile and a GPU to pay off.
            # tests/test_pos_embed.py::test_relative_bias_on_every_attention_path_equals_explicit.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                                 dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            A = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # Eq. 6 logits, (B, k, T, T)
            A = A if bias is None else A + bias  # Appendix D.4 relative attention
            A = A.softmax(dim=-1) if path == "explicit_lowp" else A.softmax(dim=-1, dtype=torch.float32).to(v.dtype)
            out = self.attn_drop(A) @ v  # Eq. 7, SA(z) = A v, (B, k, T, D_h)
            A = A if return_attention else None
        out = out.transpose(1, 2).reshape(B, T, D)  # Eq. 8, [SA_1; ...; SA_k], (B, T, D)
        return self.proj_drop(self.proj(out)), A  # ... U_msa


def set_attention_path(model: nn.Module, path: str) -> nn.Module:
    """Set the attention path of every `Attention` in `model` (for benchmarks and tests); returns the model."""
    if path not in ATTENTION_PATHS:
        raise ValueError(f"attention path must be one of {ATTENTION_PATHS}, got {path!r}")
    for m in model.modules():
        if isinstance(m, Attention):
            m.path = path
    return model


class MLP(nn.Module):
    """The MLP of Eq. 3: Linear(D, D_mlp) -> GELU -> Linear(D_mlp, D)."""

    def __init__(self, hidden_size: int, mlp_size: int, dropout: float = 0.0, gelu: str = "exact") -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, mlp_size)
        self.act = nn.GELU(approximate="tanh" if gelu == "tanh" else "none")
        self.fc2 = nn.Linear(mlp_size, hidden_size)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's whole residual branch with probability p (not in the paper)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class LayerScale(nn.Module):
    """Not in the paper: LayerScale (Touvron et al., 2021, "Going deeper with Image Transformers" (CaiT)), a
    learned per-channel factor gamma in R^D on a residual branch, initialised to `init` (DINOv2: 1e-5)."""

    def __init__(self, hidden_size: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((hidden_size,), float(init)))  # (D,)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma  # (B, T, D) * (D,)


class Block(nn.Module):
    """One pre-norm encoder block: Eq. 2 then Eq. 3.

    With `cfg.layer_scale` (not in the paper, off by default) each branch is scaled per channel before the
    residual sum: z'_l = gamma_1 * MSA(LN(z_{l-1})) + z_{l-1}, z_l = gamma_2 * MLP(LN(z'_l)) + z'_l (`ls1`, `ls2`;
    timm's names). Off, `ls1` and `ls2` are identities without parameters: the paper's block.
    """

    def __init__(self, cfg: ViTConfig, drop_path: float = 0.0, grid: tuple[int, int] | None = None) -> None:
        super().__init__()
        D = cfg.hidden_size
        rel_pos = None
        if cfg.pos_embed == "relative":  # Appendix D.4: the block's own relative attention table
            rel_pos = RelativePosition(grid or cfg.grid_size, cfg.head_dim, class_token=cfg.pool == "token")
        self.norm1 = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.attn = Attention(D, cfg.num_heads, cfg.qkv_bias, cfg.attn_dropout, cfg.dropout, rel_pos)
        self.norm2 = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.mlp = MLP(D, cfg.mlp_size, cfg.dropout, cfg.gelu)
        self.drop_path = DropPath(drop_path)
        # NOTE: LayerScale is not in the paper; None (the default) adds nothing. tests/test_model.py checks the
        # default block's parameters are unchanged and a LayerScale block against a hand-written one.
        use_ls = cfg.layer_scale is not None
        self.ls1 = LayerScale(D, cfg.layer_scale) if use_ls else nn.Identity()
        self.ls2 = LayerScale(D, cfg.layer_scale) if use_ls else nn.Identity()

    def forward(self, z: Tensor, return_attention: bool = False) -> tuple[Tensor, Tensor | None]:
        a, A = self.attn(self.norm1(z), return_attention)
        z = z + self.drop_path(self.ls1(a))  # Eq. 2
        z = z + self.drop_path(self.ls2(self.mlp(self.norm2(z))))  # Eq. 3
        return z, A


class PreLogits(nn.Module):
    """The hidden layer of the pre-training head (Section 3.1: "an MLP with one hidden layer"): Linear + tanh."""

    def __init__(self, hidden_size: int, representation_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_size, representation_size)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.fc(x))


def resample_pos_embed(pos_embed: Tensor, new_grid: int | tuple[int, int], num_prefix_tokens: int = 1,
                       old_grid: tuple[int, int] | None = None, mode: str = "bilinear") -> Tensor:
    """Section 3.2: 2D-interpolate the grid part of E_pos to a new patch grid, prefix tokens kept.

    pos_embed: (1, prefix + gh * gw, D). old_grid defaults to a square grid.
    mode="bilinear" (default) aligns the corners, which is what the official code's
    `scipy.ndimage.zoom(order=1)` does; mode="bicubic" is timm's choice.
    """
    # The default is the official implementation's method (linear spline, corners aligned) so
    # that official checkpoints fine-tune as the authors' did; tests/test_model.py compares it
    # with scipy.ndimage.zoom(order=1).
    new_grid = (new_grid, new_grid) if isinstance(new_grid, int) else tuple(new_grid)
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    if old_grid is None:
        side = math.isqrt(grid.shape[1])
        if side * side != grid.shape[1]:
            raise ValueError(f"pos_embed has {grid.shape[1]} grid tokens, not a square grid: pass old_grid=(gh, gw)")
        old_grid = (side, side)
    if tuple(old_grid) == new_grid:
        return pos_embed
    D, dtype = grid.shape[-1], grid.dtype
    grid = grid.reshape(1, *old_grid, D).permute(0, 3, 1, 2)  # (1, D, gh, gw)
    if dtype in (torch.float16, torch.bfloat16):
        grid = grid.float()  # interpolate in fp32 at least
    if mode == "bilinear":
        grid = F.interpolate(grid, size=new_grid, mode="bilinear", align_corners=True)
    elif mode == "bicubic":
        grid = F.interpolate(grid, size=new_grid, mode="bicubic", align_corners=False, antialias=True)
    else:
        raise ValueError(f"mode must be 'bilinear' (official) or 'bicubic' (timm), got {mode!r}")
    grid = grid.to(dtype).permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], D)
    return torch.cat([prefix, grid], dim=1)


def resample_pos_embed_1d(table: Tensor, new_len: int) -> Tensor:
    """Linearly interpolate a table of embeddings (1, n, d) along its positions to (1, new_len, d), the ends
    aligned: the 1D form of `resample_pos_embed`'s method (the official code's order-1 zoom)."""
    if table.shape[1] == new_len:
        return table
    dtype = table.dtype
    t = table.transpose(1, 2)  # (1, d, n)
    t = t.float() if dtype in (torch.float16, torch.bfloat16) else t
    t = F.interpolate(t, size=new_len, mode="linear", align_corners=True)
    return t.to(dtype).transpose(1, 2)


def pos_embed_2d(x_table: Tensor, y_table: Tensor) -> Tensor:
    """Appendix D.4, "2-D Pos. Emb.": E_pos of patch (r, c) is [X_c; Y_r], patches in raster order.

    The paper: "two sets of embeddings are learned, each for one of the axes, X-embedding, and Y-embedding,
    each with size D/2. Then, based on the coordinate on the path[ch] in the input, we concatenate the X and
    Y embedding to get the final positional embedding for that patch."
    x_table: (1, gw, D/2), one row per column c; y_table: (1, gh, D/2), one row per row r.
    Returns (1, gh * gw, D), the X half first.
    """
    gh, gw, half = y_table.shape[1], x_table.shape[1], x_table.shape[2]
    x = x_table[0, None, :, :].expand(gh, gw, half)  # (gh, gw, D/2): X_c
    y = y_table[0, :, None, :].expand(gh, gw, y_table.shape[2])  # (gh, gw, D/2): Y_r
    return torch.cat([x, y], dim=-1).reshape(1, gh * gw, -1)  # (1, N, D)


def _relative_grid_error(old_grid: tuple[int, int], new_grid: tuple[int, int]) -> ValueError:
    gw = old_grid[1]
    return ValueError(
        f"pos_embed='relative' cannot move from the {old_grid[0]}x{gw} patch grid to {new_grid[0]}x{new_grid[1]}: "
        f"Appendix D.4's relative attention is 1-dimensional, one embedding per raster offset p_q - p_k, and an "
        f"offset means different 2D displacements on different grids (on a grid {gw} wide, +{gw} is one row "
        f"down and -1 is both the right neighbour and the step from a row's end to the next row's start), "
        f"so no table for another grid follows from it. Use images of the pre-training size, or pre-train with "
        f"pos_embed='learned' or 'learned_2d' to change resolution")


def resample_position_state(state: dict[str, Tensor], cfg: ViTConfig, old_grid: tuple[int, int],
                            new_grid: tuple[int, int]) -> dict[str, Tensor]:
    """Section 3.2 for every kind of `cfg.pos_embed`: a copy of a model's state dict whose position parameters
    fit new_grid (Section 3.2's fine-tuning at a higher resolution).

    "learned": `resample_pos_embed` (2D, the class token's entry kept); "learned_2d": the X and the Y table
    each interpolated in 1D (`resample_pos_embed_1d`), which equals the 2D interpolation of the full table
    (tests/test_pos_embed.py); "none": unchanged; "relative": unchanged on the same grid, else a ValueError
    that says why its 1D offsets cannot be resampled.
    """
    old_grid, new_grid = tuple(old_grid), tuple(new_grid)
    state = dict(state)
    if old_grid == new_grid or cfg.pos_embed == "none":
        return state
    if cfg.pos_embed == "learned":
        state["pos_embed"] = resample_pos_embed(state["pos_embed"], new_grid, cfg.num_prefix_tokens,
                                                old_grid=old_grid)
    elif cfg.pos_embed == "learned_2d":
        state["pos_embed_x"] = resample_pos_embed_1d(state["pos_embed_x"], new_grid[1])
        state["pos_embed_y"] = resample_pos_embed_1d(state["pos_embed_y"], new_grid[0])
    else:
        raise _relative_grid_error(old_grid, new_grid)
    return state


class VisionTransformer(nn.Module):
    """ViT, Eq. 1-4. `model(x)` returns logits (B, K).

    `model(x, return_attention=True)` returns (logits, attentions): a list of L
    tensors (B, k, T, T) of post-softmax weights, T = N + 1.
    `model.forward_features(x)` returns all final tokens after the last LayerNorm (B, T, D);
    `model.encode(x, return_attention=True)` returns them with the attention maps.
    An image of another size than the config's (sides divisible by P) is
    accepted: the position embeddings are resampled to its grid on the fly
    (not with pos_embed="relative": a ValueError says why).
    `model.position_embeddings()` is the E_pos that Eq. 1 adds, whatever its kind.
    """

    def __init__(self, cfg: ViTConfig, patch_embed: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        D = cfg.hidden_size
        # Eq. 1. A hybrid passes its own embedding (a CNN feature map as patches) with the same interface.
        if patch_embed is None and cfg.backbone is not None:  # Section 3.1 hybrid: patches of a ResNet feature map
            patch_embed = HybridEmbedding(cfg.backbone, cfg.patch_size, cfg.in_chans, D)
        self.patch_embed = patch_embed or PatchEmbedding(cfg.patch_size, cfg.in_chans, D)
        self.grid = self.patch_embed.grid_size(*cfg.image_hw)
        n_tokens = self.grid[0] * self.grid[1] + cfg.num_prefix_tokens
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if cfg.pool == "token" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, n_tokens, D)) if cfg.pos_embed == "learned" else None
        # Appendix D.4 "2-D Pos. Emb.": X (one row per column) and Y (one row per row), D/2 each; see pos_embed_2d
        is_2d = cfg.pos_embed == "learned_2d"
        self.pos_embed_x = nn.Parameter(torch.zeros(1, self.grid[1], D // 2)) if is_2d else None
        self.pos_embed_y = nn.Parameter(torch.zeros(1, self.grid[0], D // 2)) if is_2d else None
        self.pos_drop = nn.Dropout(cfg.dropout)
        rates = [cfg.drop_path * i / max(cfg.num_layers - 1, 1) for i in range(cfg.num_layers)]
        self.blocks = nn.ModuleList(Block(cfg, r, self.grid) for r in rates)
        self.norm = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.pre_logits = PreLogits(D, cfg.representation_size) if cfg.representation_size else nn.Identity()
        head_in = cfg.representation_size or D
        self.head = nn.Linear(head_in, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Initialisation of the official implementation: zero head, zero class token,
        E_pos ~ N(0, 0.02) (so also the X and Y tables of "learned_2d" and the tables of "relative"),
        Xavier-uniform Linear layers (biases ~ N(0, 1e-6) in the MLP), LeCun-normal patch projection;
        LayerScale's gamma (not in the paper, only with cfg.layer_scale) = cfg.layer_scale."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias) if m.bias is not None else None
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight), nn.init.zeros_(m.bias)
            elif isinstance(m, LayerScale):
                nn.init.constant_(m.gamma, self.cfg.layer_scale)
        for blk in self.blocks:
            # U_qkv is three D x D matrices in the official code: Xavier bounds per matrix, not over 3D.
            for w in blk.attn.qkv.weight.chunk(3, dim=0):
                nn.init.xavier_uniform_(w)
            nn.init.normal_(blk.mlp.fc1.bias, std=1e-6), nn.init.normal_(blk.mlp.fc2.bias, std=1e-6)
        if isinstance(self.patch_embed, (PatchEmbedding, HybridEmbedding)):  # E; a hybrid's ResNet inits itself
            w = self.patch_embed.proj.weight
            std = math.sqrt(1.0 / w[0].numel()) / 0.87962566103423978  # LeCun normal, truncated at 2 std
            nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(self.patch_embed.proj.bias)
        if self.pos_embed is not None:
            nn.init.normal_(self.pos_embed, std=0.02)
        for table in (self.pos_embed_x, self.pos_embed_y):
            if table is not None:
                nn.init.normal_(table, std=0.02)
        for blk in self.blocks:
            if blk.attn.rel_pos is not None:
                nn.init.normal_(blk.attn.rel_pos.table, std=0.02)
        if isinstance(self.pre_logits, PreLogits):
            w = self.pre_logits.fc.weight
            std = math.sqrt(1.0 / w.shape[1]) / 0.87962566103423978
            nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(self.pre_logits.fc.bias)
        if isinstance(self.head, nn.Linear):
            nn.init.zeros_(self.head.weight), nn.init.zeros_(self.head.bias)

    def _check_input(self, x: Tensor) -> None:
        check_image_batch(x, self.cfg.in_chans)
        P = self.patch_embed.patch_size
        h, w = x.shape[-2:]
        if h % P or w % P:
            raise ValueError(f"image size {h}x{w} is not divisible by the patch size P={P}; "
                             f"resize or crop to a multiple of {P} (e.g. {h - h % P or P}x{w - w % P or P})")

    def position_embeddings(self, grid: tuple[int, int] | None = None) -> Tensor | None:
        """E_pos as Eq. 1 adds it on `grid` (default: the model's), resampled as Section 3.2 on another grid.

        "learned": (1, N + 1, D), the class token's entry first (no entry with pool="gap");
        "learned_2d": (1, N, D), the rows [X_c; Y_r] of `pos_embed_2d` (the class token gets none);
        "relative" and "none": None (no absolute position embedding).
        """
        grid = self.grid if grid is None else tuple(grid)
        if self.pos_embed is not None:
            if grid == self.grid:
                return self.pos_embed
            return resample_pos_embed(self.pos_embed, grid, self.cfg.num_prefix_tokens, old_grid=self.grid)
        if self.pos_embed_x is not None:
            x_table, y_table = self.pos_embed_x, self.pos_embed_y
            if grid != self.grid:
                x_table, y_table = resample_pos_embed_1d(x_table, grid[1]), resample_pos_embed_1d(y_table, grid[0])
            return pos_embed_2d(x_table, y_table)
        return None

    def embed(self, x: Tensor, corrupt: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """Eq. 1: z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos, shape (B, N + 1, D).

        `corrupt` maps the patch embeddings x_p^i E (B, N, D) to new ones before the class token and E_pos are
        added: Section 4.6's masked patch prediction corrupts them there (vitlib.masked_patches)."""
        self._check_input(x)
        z = self.patch_embed(x)  # (B, N, D)
        if corrupt is not None:
            z = corrupt(z)  # (B, N, D)
        if self.cls_token is not None:
            z = torch.cat([self.cls_token.expand(z.shape[0], -1, -1), z], dim=1)  # (B, N+1, D)
        grid = self.patch_embed.grid_size(*x.shape[-2:])
        if self.cfg.pos_embed == "relative" and grid != self.grid:
            raise _relative_grid_error(self.grid, grid)
        pos = self.position_embeddings(grid)
        if pos is not None:
            # NOTE: with "learned_2d" the class token gets no position embedding (zeros here): the appendix
            # defines E_pos for patches only, and a learned constant added to the learned x_class would only
            # duplicate x_class; the authors' later code (big_vision) also adds its 2D embeddings to the
            # patches alone. tests/test_pos_embed.py checks the class token's z_0 is x_class.
            if pos.shape[1] < z.shape[1]:  # "learned_2d" with a class token: a zero entry for it
                pos = F.pad(pos, (0, 0, z.shape[1] - pos.shape[1], 0))  # (1, T, D)
            z = z + pos
        return self.pos_drop(z)

    def encode(self, x: Tensor, return_attention: bool = False,
               corrupt: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """Eq. 1-3 and the final LayerNorm: all tokens z_L after LN (B, T, D), and the L attention maps
        (B, k, T, T) with return_attention (an empty list without). `corrupt`: see `embed`."""
        z = self.embed(x, corrupt)
        attentions = []
        for blk in self.blocks:
            z, A = blk(z, return_attention)
            if A is not None:
                attentions.append(A)
        return self.norm(z), attentions

    def pool(self, tokens: Tensor) -> Tensor:
        """Eq. 4: y = LN(z_L^0), the class token; or the mean of the tokens with pool="gap"."""
        return tokens[:, 0] if self.cfg.pool == "token" else tokens.mean(dim=1)

    def forward_features(self, x: Tensor) -> Tensor:
        """Eq. 1-3 and the final LayerNorm: all tokens z_L after LN, (B, T, D)."""
        return self.encode(x)[0]

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        tokens, attentions = self.encode(x, return_attention)
        logits = self.head(self.pre_logits(self.pool(tokens)))  # (B, K)
        return (logits, attentions) if return_attention else logits


def create_model(name: str, **overrides) -> nn.Module:
    """Build a model by the paper's name: 'ViT-B/16', 'ViT-L/32', 'ViT-Ti/4', 'vit_b16', a hybrid
    'R50+ViT-B/16' (Section 3.1), or a BiT ResNet baseline 'BiT-R50x1', 'BiT-R152x4' (Section 4.1).

    Overrides are `ViTConfig` fields (`ResNetConfig` fields for a ResNet), e.g. `img_size=32, num_classes=10,
    in_chans=1`. An unknown name raises a ValueError that lists the known ones.

    >>> create_model("ViT-Ti/4", img_size=32, num_classes=10).cfg.num_patches
    64
    >>> create_model("BiT-R26x1", img_size=32, num_classes=10, stem="cifar", base_width=32).cfg.depth
    26
    """
    if parse_resnet_name(name) is not None:
        return ResNet(resnet_config(name, **overrides))
    try:
        cfg = vit_config(name, **overrides)
    except ValueError as e:
        if str(e).startswith("unknown model name"):
            raise ValueError(f"{e}; BiT ResNets: {', '.join(resnet_example_names())} "
                             "('BiT-R<26|50|101|152>x<width>')") from None
        raise
    return VisionTransformer(cfg)

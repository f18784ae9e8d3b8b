"""Inside the Vision Transformer: the quantities of Section 4.5 (Fig. 6 and Fig. 7).

Paper: Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021), Section 4.5.
- Fig. 7 left: the first principal components of the patch-embedding filters E (Eq. 1)
  -> `embedding_filters_pca`; how smooth they are -> `filter_roughness`.
- Fig. 7 center: cosine similarity between the position embeddings E_pos of every pair of
  patches -> `position_embedding_similarity`; its two observations (similarity falls with distance,
  rows and columns show) as numbers -> `position_similarity_structure`.
- Fig. 7 right: mean attention distance per head and layer, "the distance in image space across
  which information is integrated, based on the attention weights" -> `mean_attention_distance`;
  "the attention distance increases with network depth" as a test that can fail -> `depth_trend`.
- Section 4.5's observations as claims a run supports or not, each with its evidence -> `section45_claims`.
- Fig. 6: attention from the output token to the input, by attention rollout (Abnar & Zuidema,
  2020, Appendix D.8 of the paper) -> `attention_rollout`, `rollout_map`.

The functions take plain tensors (attention weights as returned by
`VisionTransformer(x, return_attention=True)`, a position embedding, a patch-embedding
weight), so they work for any ViT vitlib can load: its own, the shipped model, an
official or timm checkpoint converted by `vitlib.interop`. Devices: a model and tensors on any
device; tensor results stay on the input's device (`attention_maps`: the model's), and the functions
that return numbers or use numpy (`depth_trend`, `section45_claims`, `position_similarity_structure`)
bring their small inputs to the CPU themselves (tests/test_analysis.py, "devices").

Deviations from the paper: the paper does not say how the class token enters the mean
attention distance; here it is left out as query and as key, and each query's weights over
the N image patches are renormalised to sum to 1 (see `mean_attention_distance`).
Shapes: L layers, B images, k heads, T = N + 1 tokens (N patches + the class token; T = N
for a model without class token), grid (gh, gw) with gh * gw = N, P the patch size in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

from .utils import eval_mode

__all__ = [
    "attention_maps",
    "attention_rollout",
    "MIN_RISE",
    "depth_trend",
    "embedding_filters_pca",
    "filter_roughness",
    "grid_distances",
    "mean_attention_distance",
    "position_embedding_grid",
    "position_embedding_similarity",
    "position_similarity_structure",
    "query_attention",
    "rollout_map",
    "section45_claims",
]

Grid = int | tuple[int, int]
MIN_RISE = 0.1  # depth_trend: the least rise over the depth, in uniform attention's distance, that counts as growth


def _grid(grid: Grid) -> tuple[int, int]:
    return (grid, grid) if isinstance(grid, int) else (int(grid[0]), int(grid[1]))


def _stack(attentions: Sequence[Tensor] | Tensor) -> Tensor:
    """A list of L tensors (B, k, T, T) (as the model returns them) -> one tensor (L, B, k, T, T)."""
    A = attentions if isinstance(attentions, Tensor) else torch.stack(list(attentions))
    if A.ndim != 5 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"expected attention weights of shape (L, B, k, T, T) or a list of L (B, k, T, T), "
                         f"got {tuple(A.shape)}; get them with model(x, return_attention=True)")
    return A.float()


def _host(values: Tensor | Sequence) -> Tensor:
    """`values` (a tensor on any device, or nested lists) as a float64 CPU tensor, detached: for numbers and numpy."""
    return torch.as_tensor(values, dtype=torch.float64).detach().cpu()


def _num_prefix(T: int, grid: tuple[int, int]) -> int:
    """Tokens before the patches (the class token): T - N, 0 or 1 in vitlib."""
    n = grid[0] * grid[1]
    if not 0 <= T - n <= 1:
        raise ValueError(f"{T} tokens do not fit a {grid[0]}x{grid[1]} patch grid (N={n}, expected T=N or N+1 "
                         "with the class token); pass the grid the model used: model.grid")
    return T - n


@torch.no_grad()
def attention_maps(model: nn.Module, images: Tensor, batch_size: int = 64) -> list[Tensor]:
    """Run `model` (eval mode, no grad) on images (B, C, H, W), each batch moved to the model's device; return its
    L attention maps (B, k, T, T), on the model's device.

    Works for any vitlib `VisionTransformer` (its explicit attention path, Eq. 6).
    """
    device = next(model.parameters()).device
    with eval_mode(model):
        chunks = [model(x.to(device), return_attention=True)[1] for x in images.split(batch_size)]
    return [torch.cat([c[layer] for c in chunks]) for layer in range(len(chunks[0]))]


def grid_distances(grid: Grid, patch_size: float = 1.0, device: str | torch.device | None = None) -> Tensor:
    """Euclidean distance between the centres of every pair of patches, in pixels: (N, N) float64 on `device`.

    Patches are numbered row by row, as `PatchEmbedding` flattens them.
    """
    gh, gw = _grid(grid)
    rows, cols = torch.meshgrid(torch.arange(gh, device=device), torch.arange(gw, device=device), indexing="ij")
    xy = torch.stack([rows.flatten(), cols.flatten()], dim=1).double()  # (N, 2)
    return torch.cdist(xy, xy) * patch_size


def mean_attention_distance(attentions: Sequence[Tensor] | Tensor, grid: Grid, patch_size: float) -> Tensor:
    """Fig. 7 right: mean attention distance in pixels for every layer and head, shape (L, k).

    For a query patch i the distance is sum_j A_ij * d(i, j), d the Euclidean distance between
    patch centres on the grid times P (the authors' definition); it is averaged over the
    query patches and over the images.

    The class token: the paper does not say. Here it is left out both as a query (it has no
    position in the image) and as a key, and each query's weights over the N patches are
    renormalised to sum to 1, so the number measures where a head looks *within the image*,
    whatever share of attention goes to the class token. A model without class token (T = N)
    needs no renormalisation and gives the same numbers.

    attentions: list of L tensors (B, k, T, T) or a tensor (L, B, k, T, T), rows summing to 1.
    grid: the patch grid (gh, gw) (or gh for a square one); patch_size: P in pixels.
    """
    # NOTE: the class-token treatment is our choice (the paper is silent); tests/test_analysis.py
    # checks that a model with and without class token gives the same distance when the patch
    # weights agree.
    g = _grid(grid)
    A = _stack(attentions)
    p = _num_prefix(A.shape[-1], g)
    A = A[..., p:, p:].double()  # (L, B, k, N, N): patches only
    A = A / A.sum(-1, keepdim=True).clamp_min(1e-12)
    d = grid_distances(g, patch_size, A.device)  # (N, N)
    per_query = (A * d).sum(-1)  # (L, B, k, N)
    return per_query.mean(dim=(1, 3)).float()  # (L, k)


def _percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap samples, NaNs (undefined resamples) left out; (nan, nan) if all."""
    finite = samples[np.isfinite(samples)]
    return (float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))) if finite.size else (
        float("nan"), float("nan"))


def depth_trend(distance: Tensor | Sequence[Sequence[float]], uniform: float, n_boot: int = 2000, seed: int = 0,
                min_rise: float = MIN_RISE) -> dict[str, Any]:
    """Fig. 7 right, "the attention distance increases with network depth", as a test that can fail.

    distance: (L, k) mean attention distance per layer and head (`mean_attention_distance`); uniform: the
    distance of uniform attention on the same grid (`grid_distances(grid, P).mean()`). Distances are
    divided by `uniform`, so models on different grids compare. Over the L * k heads:
    - `spearman`: Spearman's rank correlation of depth (1..L) with distance;
    - `rise`: the least-squares line of relative distance on depth, from layer 1 to layer L (0.25: the
      deepest layer's heads attend a quarter of the uniform distance farther than the first layer's);
    each with a 95% percentile bootstrap interval (`n_boot` resamples of the heads with replacement, numpy
    generator `seed`). `answer`: "grows" when both intervals lie above 0 and the rise is at least
    `min_rise`; "shrinks" when both lie below 0 and the fall is at least `min_rise`; "a trend too small to
    matter" when the correlation's interval excludes 0 but the rise does not reach `min_rise`; else "no trend
    shown". The paper's Fig. 7 (ViT-L/16 on JFT) would read "grows": its heads go from a few pixels in the
    lowest layers to most of the image in the deepest.

    >>> t = depth_trend([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], uniform=10.0, n_boot=200)
    >>> round(t["spearman"], 3), round(t["rise"], 2), t["answer"]
    (0.956, 0.4, 'grows')
    """
    d = _host(distance).numpy() / uniform  # (L, k) relative to uniform attention
    L, k = d.shape
    depth = np.repeat(np.arange(1, L + 1, dtype=np.float64), k)  # (L * k,)
    y = d.reshape(-1)
    idx = np.random.default_rng(seed).integers(0, L * k, size=(n_boot, L * k))
    xs, ys = np.vstack([depth, depth[idx]]), np.vstack([y, y[idx]])  # row 0: the heads themselves
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample with one depth only has no trend: NaN
        rx, ry = rankdata(xs, axis=1), rankdata(ys, axis=1)
        rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
        rho = (rx * ry).sum(1) / np.sqrt((rx**2).sum(1) * (ry**2).sum(1))
        cx = xs - xs.mean(1, keepdims=True)
        rise = (cx * (ys - ys.mean(1, keepdims=True))).sum(1) / (cx**2).sum(1) * (L - 1)
    rho_ci, rise_ci = (_percentile_interval(v[1:]) for v in (rho, rise))
    if rho_ci[0] > 0 and rise_ci[0] > 0 and rise[0] >= min_rise:
        answer = "grows"
    elif rho_ci[1] < 0 and rise_ci[1] < 0 and rise[0] <= -min_rise:
        answer = "shrinks"
    elif rho_ci[0] > 0 or rho_ci[1] < 0:
        answer = "a trend too small to matter"
    else:
        answer = "no trend shown"
    return dict(spearman=float(rho[0]), spearman_ci95=rho_ci, rise=float(rise[0]), rise_ci95=rise_ci,
                answer=answer, heads=L * k, layers=L, min_rise=min_rise, n_boot=n_boot, seed=seed)


def attention_rollout(attentions: Sequence[Tensor] | Tensor) -> Tensor:
    """Fig. 6, attention rollout (Abnar & Zuidema, 2020) as the paper uses it: (B, T, T).

    Per layer l: average the attention weights over the k heads, add the identity for the
    residual connection, renormalise the rows: Ã_l = (mean_h A_l + I) / 2. Then multiply
    through the layers, R = Ã_L ... Ã_2 Ã_1, so that row i of R says how much of each input
    token reaches output token i. `rollout_map` turns the output token's row into an image map.
    """
    A = _stack(attentions)  # (L, B, k, T, T)
    A = A.mean(dim=2)  # (L, B, T, T): average over heads
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    A = A + eye
    A = A / A.sum(-1, keepdim=True)
    R = A[0]
    for layer in A[1:]:
        R = layer @ R  # the later layer mixes the tokens the earlier layers produced
    return R


def rollout_map(attentions: Sequence[Tensor] | Tensor, grid: Grid) -> Tensor:
    """Fig. 6: the rollout from the output token to every image patch, as a map (B, gh, gw).

    The output token is the class token (row 0 of the rollout, class-token column dropped);
    for a model without class token (pool="gap") it is the mean of all tokens, so its row is
    the mean of the rows. The map is not rescaled: divide by its max to display it.
    """
    g = _grid(grid)
    R = attention_rollout(attentions)
    p = _num_prefix(R.shape[-1], g)
    row = R[:, 0, p:] if p else R.mean(dim=1)
    return row.reshape(-1, *g)


def query_attention(attentions: Sequence[Tensor] | Tensor, grid: Grid, layer: int, head: int | None,
                    image: int, query: int | None) -> Tensor:
    """Attention of one query token over the image patches, as a map (gh, gw), for the explorer.

    query: a patch index 0..N-1 (row by row), or None for the class token.
    head: a head index, or None for the mean over heads.
    """
    g = _grid(grid)
    A = attentions[layer]  # (B, k, T, T)
    p = _num_prefix(A.shape[-1], g)
    if query is None and not p:
        raise ValueError("this model has no class token: pick a patch as query")
    A = A[image].float()  # (k, T, T)
    A = A.mean(0) if head is None else A[head]
    row = A[0] if query is None else A[p + query]
    return row[p:].reshape(g)


def _pos_table(pos_embed: Tensor | None) -> Tensor:
    """pos_embed as (T, D), or a ValueError when the model has no absolute table (model.pos_embed is None)."""
    if pos_embed is None:
        raise ValueError("no position-embedding table: model.pos_embed is None for pos_embed='learned_2d', "
                         "'relative' and 'none' (Appendix D.4); for 'learned_2d' pass model.position_embeddings(), "
                         "its (1, N, D) table of concatenated X and Y embeddings; 'relative' and 'none' add none")
    return pos_embed.detach().reshape(-1, pos_embed.shape[-1])  # (T, D)


def position_embedding_similarity(pos_embed: Tensor, grid: Grid) -> Tensor:
    """Fig. 7 center: cosine similarity of each patch's position embedding with every other one.

    pos_embed: (1, T, D) or (T, D), T = N or N + 1 (a class-token entry is dropped): `model.pos_embed`, or
    `model.position_embeddings()` for any kind that has a table ("learned", "learned_2d").
    Returns (gh, gw, gh, gw): [r, c] is the similarity map of patch (r, c) with all patches.
    """
    g = _grid(grid)
    E = _pos_table(pos_embed).float()  # (T, D)
    E = E[_num_prefix(E.shape[0], g):]  # (N, D)
    E = E / E.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (E @ E.T).reshape(*g, *g)


def position_embedding_grid(pos_embed: Tensor, grid: Grid) -> Tensor:
    """E_pos of the patches laid out on their grid: (gh, gw, D), a class-token entry dropped
    (pos_embed (1, T, D) or (T, D)); the 2D picture that Section 3.2's interpolation resamples."""
    g = _grid(grid)
    E = _pos_table(pos_embed)  # (T, D)
    return E[_num_prefix(E.shape[0], g):].reshape(*g, -1)


def embedding_filters_pca(patch_embed_weight: Tensor, k: int = 28) -> tuple[Tensor, Tensor]:
    """Fig. 7 left: the first k principal components of the patch-embedding filters E, as images.

    patch_embed_weight: the Conv2d weight of Eq. 1's projection, (D, C, P, P): D filters, each a
    P x P x C image (a column of E in R^{(P^2 C) x D}). The D filters are the samples, centred
    by their mean (as `sklearn.decomposition.PCA`); the components are directions in the
    P^2 C-dimensional pixel space. Each component's sign is fixed so that its largest entry
    is positive (PCA leaves it arbitrary).

    Returns (components (k, C, P, P), explained variance ratio (k,)).
    """
    W = patch_embed_weight.detach().double()
    if W.ndim != 4:
        raise ValueError(f"expected the patch projection's Conv2d weight (D, C, P, P), got {tuple(W.shape)}; "
                         "pass model.patch_embed.proj.weight")
    D, C, P, _ = W.shape
    X = W.reshape(D, C * P * P)
    if not 1 <= k <= min(D, C * P * P):
        raise ValueError(f"k={k} components requested, but {D} filters of {C * P * P} pixels give at most "
                         f"{min(D, C * P * P)}")
    X = X - X.mean(dim=0, keepdim=True)
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    comps = Vh[:k]
    sign = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * sign
    var = S**2
    return comps.reshape(k, C, P, P).float(), (var[:k] / var.sum()).float()


def filter_roughness(components: Tensor) -> Tensor:
    """How far each filter image (k, C, P, P) is from smooth: the mean squared difference between
    horizontally and vertically adjacent pixels (same channel), divided by twice the mean square value.

    1 for white noise (in expectation), 0 for a constant image, 2 for a +-1 checkerboard; the smooth,
    low-frequency "basis functions" of Fig. 7 left are well below 1. Returns (k,).
    """
    c = components.detach().double()
    dx, dy = c.diff(dim=-1).flatten(1) ** 2, c.diff(dim=-2).flatten(1) ** 2
    mean_diff2 = torch.cat([dx, dy], dim=1).mean(1)
    return (mean_diff2 / (2 * (c.flatten(1) ** 2).mean(1)).clamp_min(1e-24)).float()


def position_similarity_structure(similarity: Tensor) -> tuple[float, float]:
    """Fig. 7 center in two numbers, from `position_embedding_similarity`'s (gh, gw, gh, gw):

    - the correlation (Pearson, over all pairs of distinct patches) between the similarity of two
      patches' embeddings and their distance on the grid: negative when "closer patches tend to have
      more similar position embeddings";
    - the row-column gap: how much more similar pairs in the same row or column are than the other
      pairs once distance is accounted for: similarity is fitted linearly on distance over all pairs
      (least squares), and the gap is the mean residual of same-row/column pairs minus that of the
      others. Positive when "the row-column structure appears". Distance must be controlled because
      same-line pairs are closer on average; a linear fit (not matching pairs at exactly equal
      distance) keeps the measure defined on small grids such as 4 x 4, where no two pairs, one on a
      line and one off it, are at the same distance.
    """
    gh, gw = similarity.shape[:2]
    S, d = _host(similarity).reshape(gh * gw, gh * gw), grid_distances((gh, gw))
    r, c = (t.flatten() for t in torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij"))
    off = ~torch.eye(gh * gw, dtype=torch.bool)
    x, y = d[off], S[off]
    corr = torch.corrcoef(torch.stack([x, y]))[0, 1].item()
    line = ((r[:, None] == r[None]) | (c[:, None] == c[None]))[off]
    if line.all() or not line.any():  # a 1 x n grid: every pair is on one line
        return corr, float("nan")
    X = torch.stack([torch.ones_like(x), x], dim=1)
    residual = y - X @ torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    return corr, (residual[line].mean() - residual[~line].mean()).item()


def section45_claims(corr_similarity_distance: float, row_column_gap: float, distance: Tensor | Sequence,
                     uniform: float, filters: tuple[float, float] | None = None,
                     filters_untrained: tuple[float, float] | None = None, rollout: tuple[float, float] | None = None,
                     rollout_untrained: float | None = None) -> dict[str, dict[str, Any]]:
    """Section 4.5's observations as claims one model's measurements support or not: {claim: {"supported": bool
    or None (not measured), "evidence": the numbers}}. The thresholds are fixed here, before any run:

    - Fig. 7 left, "plausible basis functions": the first 4 filter components explain 5 points more variance than
      at initialisation and are 20% smoother (`filters` and `filters_untrained`: (share of the first 4,
      roughness of the first 8), from `embedding_filters_pca` and `filter_roughness`);
    - Fig. 7 center, "closer patches tend to have more similar position embeddings": correlation of similarity
      and grid distance below -0.3; "the row-column structure appears": a row-column gap above 0.02
      (`position_similarity_structure`);
    - Fig. 7 right, "some heads attend to most of the image already in the lowest layers [...] other attention
      heads have consistently small attention distances": in layer 1 a head at >= 80% of uniform attention's
      distance and another at <= 50%; "the attention distance increases with network depth": `depth_trend`
      answers "grows" (`distance`: (L, k) in pixels, `uniform` the same grid's uniform attention);
    - Fig. 6, "attends to image regions that are semantically relevant": the rollout's share on the object's
      patches 5 points above the object's share of the patches and above the untrained model's (`rollout`:
      (share on the object, object's share of patches); `rollout_untrained`: the untrained model's share).
    """
    d = _host(distance) / uniform
    t = depth_trend(d, 1.0)
    out: dict[str, dict[str, Any]] = {}
    if filters is not None and filters_untrained is not None:
        (share, rough), (share_u, rough_u) = filters, filters_untrained
        out["Fig. 7 left: filter components concentrated and smooth"] = dict(
            supported=bool(share > share_u + 0.05 and rough < 0.8 * rough_u),
            evidence=f"first 4 explain {share:.1%} (untrained {share_u:.1%}); roughness {rough:.2f} "
                     f"(untrained {rough_u:.2f})")
    else:
        out["Fig. 7 left: filter components concentrated and smooth"] = dict(supported=None,
                                                                            evidence="components not measured")
    out["Fig. 7 center: closer patches, more similar E_pos"] = dict(
        supported=bool(corr_similarity_distance < -0.3),
        evidence=f"correlation of similarity and distance {corr_similarity_distance:+.2f}")
    out["Fig. 7 center: rows and columns show"] = dict(
        supported=bool(row_column_gap > 0.02), evidence=f"row-column gap {row_column_gap:+.3f}")
    out["Fig. 7 right: global and local heads in layer 1"] = dict(
        supported=bool(d[0].max() >= 0.8 and d[0].min() <= 0.5),
        evidence=f"layer 1 heads from {d[0].min():.0%} to {d[0].max():.0%} of uniform attention's distance")
    rho, rise = t["spearman_ci95"], t["rise_ci95"]
    out["Fig. 7 right: attention distance grows with depth"] = dict(
        supported=t["answer"] == "grows",
        evidence=f"{t['answer']}: Spearman {t['spearman']:+.2f} [{rho[0]:+.2f}, {rho[1]:+.2f}], rise "
                 f"{t['rise']:+.1%} [{rise[0]:+.1%}, {rise[1]:+.1%}] of uniform over the depth")
    if rollout is not None and rollout_untrained is not None:
        on, share = rollout
        out["Fig. 6: rollout on the object"] = dict(
            supported=bool(on > share + 0.05 and on > rollout_untrained),
            evidence=f"{on:.1%} of the rollout on the object's patches, {share:.1%} of the patches (untrained "
                     f"{rollout_untrained:.1%})")
    else:
        out["Fig. 6: rollout on the object"] = dict(supported=None, evidence="rollout not measured")
    return out

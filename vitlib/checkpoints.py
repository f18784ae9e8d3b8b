"""Weights in and out: converters from timm and torchvision state dicts, and the official JAX .npz files.

vitlib's attribute names are timm's, so timm weights load almost by name;
torchvision keeps q, k, v in one `in_proj` of `nn.MultiheadAttention` with
other names. timm's ResNetV2 (BiT, and the hybrids' stem) nests units one level
deeper (`stages.i.blocks.j`) and has a 1x1-conv head. Each converter returns a state dict for `VisionTransformer`;
tests/test_checkpoints.py shows the logits then equal the reference's.
`load_npz` / `model_from_npz` / `save_npz` read and write the checkpoints of
google-research/vision_transformer (tests/test_npz.py: timm's own npz loader
and a NumPy transcription of the official forward pass give the same logits).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .config import VARIANTS, ViTConfig, backbone_stride
from .model import resample_pos_embed

__all__ = ["from_timm", "from_torchvision", "from_timm_resnet", "load_into"]

StateDict = dict[str, Tensor]


def from_timm(state_dict: StateDict) -> StateDict:
    """timm `VisionTransformer` state dict -> vitlib state dict (class-token models).

    >>> import timm; m = timm.create_model("vit_tiny_patch16_224")  # doctest: +SKIP
    >>> vit.load_state_dict(from_timm(m.state_dict()))  # doctest: +SKIP
    """
    out = {}
    for k, v in state_dict.items():
        if k.startswith(("fc_norm.", "norm_pre.")):
            raise ValueError(f"timm key {k!r}: only plain class-token ViTs (global_pool='token', no pre-norm) convert")
        if k.startswith("patch_embed.backbone."):  # a hybrid (vit_base_r50_s16_384, ...): timm's ResNetV2 names
            k = "patch_embed.backbone." + _timm_resnet_key(k.removeprefix("patch_embed.backbone."), stem_only=True)
        out[k] = v
    return out


_TV_RULES = [
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^class_token$", "cls_token"),
    (r"^encoder\.pos_embedding$", "pos_embed"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.", r"blocks.\1.norm1."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.", r"blocks.\1.norm2."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_", r"blocks.\1.attn.qkv."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:0|linear_1)\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:3|linear_2)\.", r"blocks.\1.mlp.fc2."),
    (r"^encoder\.ln\.", "norm."),
    (r"^heads\.head\.", "head."),
    (r"^heads\.pre_logits\.", "pre_logits.fc."),
]


def from_torchvision(state_dict: StateDict) -> StateDict:
    """torchvision `VisionTransformer` (vit_b_16, ...) state dict -> vitlib state dict.

    `in_proj_weight` (3D, D) stacks U_q, U_k, U_v in the same order as vitlib's `attn.qkv`.
    """
    out = {}
    for k, v in state_dict.items():
        new = k
        for pattern, repl in _TV_RULES:
            new, n = re.subn(pattern, repl, new)
            if n:
                break
        else:
            raise ValueError(f"unexpected torchvision key {k!r}: is this a torchvision VisionTransformer?")
        out[new] = v
    return out


# --- Official JAX checkpoints (google-research/vision_transformer .npz), and timm weight files ------------------
# The official code saves its Flax parameter tree flattened with "/" into an .npz. Its layouts (models_vit.py):
#   embedding/kernel (P, P, C, D)  a Conv in HWIO            -> patch_embed.proj.weight (D, C, P, P)
#   MultiHeadDotProductAttention_1/{query,key,value}/kernel (D, k, D_h), bias (k, D_h)   -> rows of attn.qkv
#   MultiHeadDotProductAttention_1/out/kernel (k, D_h, D)                                 -> attn.proj.weight (D, D)
#   every Dense kernel is (in, out)                                                       -> Linear weight (out, in)
# The official MLP uses tanh-approximated GELU (flax nn.gelu); model_from_npz sets gelu="tanh" for that reason.

__all__ += ["load_npz", "model_from_npz", "npz_config", "save_npz", "timm_config", "model_from_timm"]

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
    # ones by about 1e-5 relative; tests/test_npz.py::test_hybrid_npz_matches_timm checks the layout with timm.
    arrays = _read_npz(path)
    state = _npz_to_state(arrays)
    n_blocks = len(model.blocks)
    if _num_layers(arrays) != n_blocks:
        raise ValueError(f"{path!r} has L={_num_layers(arrays)} encoder blocks, the model has {n_blocks}: "
                         "build the model with model_from_npz(path) or the matching variant")
    if "pos_embed" in state and model.pos_embed is not None:
        n_prefix = model.cfg.num_prefix_tokens
        old = math.isqrt(state["pos_embed"].shape[1] - n_prefix)
        state["pos_embed"] = resample_pos_embed(state["pos_embed"], model.grid, n_prefix, old_grid=(old, old))
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
    from .model import VisionTransformer

    ckpt = npz_config(path)
    cfg = npz_config(path, **overrides)
    load_head = (cfg.num_classes, cfg.representation_size) == (ckpt.num_classes, ckpt.representation_size)
    return load_npz(path, VisionTransformer(cfg), load_head=load_head)


def save_npz(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Write a vitlib `VisionTransformer` as an official-layout .npz (readable by the official code and timm)."""
    cfg, state = model.cfg, model.state_dict()
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
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)  # atomic: a crash never leaves half a checkpoint
    return path



def _read_state(path: str | os.PathLike) -> StateDict:
    """A state dict from .safetensors, or from a torch file read with weights_only=True (no pickled code runs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {str(path)!r}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):  # training scripts often nest the weights
        state = state.get(key, state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def timm_config(state_dict: StateDict, **overrides) -> ViTConfig:
    """The ViTConfig of a timm ViT state dict, read from its shapes (P, C, D, L, D_mlp, K, grid, pre-logits).

    k (heads) is not in the shapes: it is taken from the variant table for the same D (D_h = 64 otherwise);
    pass num_heads= to override. GELU is exact, as timm's.
    """
    sd = from_timm(state_dict)
    D, C, P, _ = sd["patch_embed.proj.weight"].shape
    known = {v["hidden_size"]: v["num_heads"] for v in VARIANTS.values()}
    prefix = 1 if "cls_token" in sd else 0
    side = math.isqrt(sd["pos_embed"].shape[1] - prefix) if "pos_embed" in sd else None
    cfg = dict(patch_size=P, in_chans=C, hidden_size=D, num_heads=known.get(D, max(D // 64, 1)),
               num_layers=len({k.split(".")[1] for k in sd if k.startswith("blocks.")}),
               mlp_size=sd["blocks.0.mlp.fc1.weight"].shape[0], qkv_bias="blocks.0.attn.qkv.bias" in sd,
               pool="token" if prefix else "gap", pos_embed="learned" if side else "none",
               representation_size=sd["pre_logits.fc.weight"].shape[0] if "pre_logits.fc.weight" in sd else None,
               num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0, gelu="exact")
    if side:
        cfg["img_size"] = side * P
    return ViTConfig(**{**cfg, **overrides})


def model_from_timm(path: str | os.PathLike, **overrides) -> torch.nn.Module:
    """Build a `VisionTransformer` from a timm ViT weights file (.safetensors, .pth, .bin) and load it.

    Overrides are ViTConfig fields (see `timm_config`); another img_size resamples E_pos
    (`resample_pos_embed`, the official method: note that timm's own resize is bicubic).
    """
    from .model import VisionTransformer

    sd = from_timm(_read_state(path))
    cfg = timm_config(sd, **overrides)
    model = VisionTransformer(cfg)
    if "pos_embed" in sd:
        n_prefix = cfg.num_prefix_tokens
        old = math.isqrt(sd["pos_embed"].shape[1] - n_prefix)
        sd["pos_embed"] = resample_pos_embed(sd["pos_embed"], model.grid, n_prefix, old_grid=(old, old))
    return load_into(model, sd)

def load_into(model: torch.nn.Module, state_dict: StateDict) -> torch.nn.Module:
    """Load a converted state dict strictly, with an error that names missing and unexpected keys."""
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise ValueError(f"weights do not fit this model (another variant, patch size or class count?): {e}") from e
    if missing or unexpected:
        raise ValueError(f"weights do not fit this model: missing {missing[:8]}, unexpected {unexpected[:8]}; "
                         "build the model with the config the weights were trained with")
    return model


def _timm_resnet_key(k: str, stem_only: bool = False) -> str:
    """timm ResNetV2 key -> vitlib ResNet key: `stages.i.blocks.j.` -> `stages.i.j.`; a stem-only backbone's
    `conv.`/`norm.` (timm's vit_tiny_r_s16_p8) -> `stem.conv.`/`stem.norm.`."""
    k = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2.", k)
    return re.sub(r"^(conv|norm)\.", r"stem.\1.", k) if stem_only else k


def from_timm_resnet(state_dict: StateDict) -> StateDict:
    """timm `ResNetV2` (resnetv2_50x1_bit, ...) state dict -> vitlib `ResNet` state dict.

    >>> import timm; m = timm.create_model("resnetv2_50x1_bit")  # doctest: +SKIP
    >>> load_into(vitlib.create_model("BiT-R50x1"), from_timm_resnet(m.state_dict()))  # doctest: +SKIP
    """
    out = {}
    for k, v in state_dict.items():
        if not k.startswith(("stem.", "stages.", "norm.", "head.fc.")):
            raise ValueError(f"unexpected timm key {k!r}: is this a timm ResNetV2 (resnetv2_50x1_bit, ...)?")
        if k.startswith("head.fc."):  # a 1x1 conv (K, C, 1, 1) on the pooled features = a Linear (K, C)
            k, v = "head." + k.removeprefix("head.fc."), v.flatten(1) if v.ndim == 4 else v
        out[_timm_resnet_key(k)] = v
    return out


# ---------------------------------------------------------------------------------------------------------------
# vitlib's own checkpoints (design.md "Safety"): safetensors + JSON, atomic writes, exact resume.
#
# A checkpoint NAME is up to three files:
#   NAME.safetensors        the model's state dict (timm attribute names), nothing else
#   NAME.json               {"format", "arch", "config", "train_config", "step", "files": {sha256, bytes},
#                            "optimizer": param_groups and non-tensor state, "rng": numpy/python states, ...}
#   NAME.state.safetensors  training state tensors: optimizer moments ("optim.<i>.<name>") and the torch,
#                           CUDA and trainer-generator RNG states ("rng.*"); absent for weights-only files.
# NOTE: optimizer state goes to safetensors + JSON rather than torch.save so that nothing is ever unpickled
# (torch.load is not used at all); the scheduler is the pure function `lr_at(step, cfg)`, so its whole state
# is the step. Files are written to a temporary name then os.replace'd; the JSON, written last, holds the
# sha256 of the others, so a torn or truncated set is detected on load
# (tests/test_checkpoints_train.py::test_corrupt_or_truncated_file_is_a_clear_error).
# ---------------------------------------------------------------------------------------------------------------

import dataclasses as _dc  # noqa: E402
import hashlib as _hashlib  # noqa: E402
import json as _json  # noqa: E402
import os as _os  # noqa: E402
import random as _random  # noqa: E402
from collections.abc import Callable as _Callable  # noqa: E402
from pathlib import Path as _Path  # noqa: E402
from typing import Any as _Any  # noqa: E402

import numpy as _np  # noqa: E402

from .config import ViTConfig as _ViTConfig  # noqa: E402
from .resnet import ResNetConfig as _ResNetConfig  # noqa: E402

__all__ += ["ARCHS", "save_checkpoint", "load_checkpoint", "load_model", "latest_checkpoint", "prune_checkpoints",
            "capture_rng", "restore_rng", "CheckpointError"]

FORMAT = "vitlib-checkpoint-1"


def _build_vit(cfg: _ViTConfig) -> torch.nn.Module:
    from .model import VisionTransformer

    return VisionTransformer(cfg)


def _build_resnet(cfg: _ResNetConfig) -> torch.nn.Module:
    from .resnet import ResNet

    return ResNet(cfg)


# arch name -> (config dataclass, builder(config) -> model). A model is saved under the first arch whose config
# class matches `model.cfg`; add a row here for another architecture (e.g. the BiT ResNet).
ARCHS: dict[str, tuple[type, _Callable[[_Any], torch.nn.Module]]] = {
    "ViT": (_ViTConfig, _build_vit),
    "ResNet": (_ResNetConfig, _build_resnet),
}


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or for another model."""


def _stem(path: str | _os.PathLike) -> _Path:
    p = _Path(path)
    for suffix in (".state.safetensors", ".safetensors", ".json"):
        if p.name.endswith(suffix):
            return p.with_name(p.name[: -len(suffix)])
    return p


def _sha256(path: _Path) -> str:
    h = _hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic(path: _Path, write: _Callable[[str], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{_os.getpid()}")
    try:
        write(str(tmp))
        _os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _arch_of(model: torch.nn.Module) -> tuple[str, dict]:
    cfg = getattr(model, "cfg", None)
    for name, (cfg_cls, _) in ARCHS.items():
        if isinstance(cfg, cfg_cls):
            return name, _dc.asdict(cfg)
    raise CheckpointError(f"cannot save a {type(model).__name__}: it has no `.cfg` of a known config class "
                          f"({', '.join(c.__name__ for c, _ in ARCHS.values())}); add a row to "
                          "vitlib.checkpoints.ARCHS for its architecture")


def _from_json(cfg_cls: type, d: dict) -> _Any:
    return cfg_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def capture_rng(generator: torch.Generator | None = None) -> dict[str, _Any]:
    """torch (CPU and CUDA), numpy, python and trainer-generator (mixup) RNG states, for an exact resume."""
    rng: dict[str, _Any] = {"torch": torch.get_rng_state(), "numpy": _np.random.get_state(),
                            "python": _random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        rng["generator"] = generator.get_state()
    return rng


def restore_rng(rng: dict[str, _Any], generator: torch.Generator | None = None) -> None:
    """Inverse of `capture_rng` (as returned by `load_checkpoint(...)["rng"]`)."""
    torch.set_rng_state(rng["torch"])
    _np.random.set_state(rng["numpy"])
    _random.setstate(rng["python"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    if generator is not None and "generator" in rng:
        generator.set_state(rng["generator"])


def _split_optimizer(sd: dict) -> tuple[dict[str, Tensor], dict]:
    tensors, state = {}, {}
    for idx, entries in sd["state"].items():
        state[str(idx)] = {}
        for name, v in entries.items():
            if isinstance(v, Tensor):
                tensors[f"optim.{idx}.{name}"] = v.detach().cpu().contiguous()
            else:
                state[str(idx)][name] = v
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def _join_optimizer(meta: dict, tensors: dict[str, Tensor]) -> dict:
    state: dict[int, dict] = {int(i): dict(v) for i, v in meta["state"].items()}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(path: str | _os.PathLike, model: torch.nn.Module, *, train_config: _Any = None, step: int = 0,
                    optimizer: torch.optim.Optimizer | None = None, rng: dict | None = None,
                    extra: dict | None = None) -> _Path:
    """Write NAME.safetensors + NAME.json (+ NAME.state.safetensors with an optimizer or RNG state) atomically.

    `extra` (JSON-ready) is stored as is, e.g. provenance. Returns the path of the weights file.
    """
    from safetensors.torch import save_file

    from .train import config_dict

    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    arch, config = _arch_of(model)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    files = {"weights": stem.with_name(stem.name + ".safetensors")}
    _atomic(files["weights"], lambda tmp: save_file(weights, tmp, metadata={"format": FORMAT, "arch": arch}))
    meta: dict[str, _Any] = {"format": FORMAT, "arch": arch, "config": config, "step": step,
                             "train_config": config_dict(train_config) if train_config is not None else None}
    if optimizer is not None or rng is not None:
        tensors: dict[str, Tensor] = {}
        if optimizer is not None:
            tensors, meta["optimizer"] = _split_optimizer(optimizer.state_dict())
        if rng is not None:
            tensors["rng.torch"] = rng["torch"]
            tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(rng.get("cuda", []))})
            if "generator" in rng:
                tensors["rng.generator"] = rng["generator"]
            kind, keys, pos, has_gauss, gauss = rng["numpy"]
            meta["rng"] = {"numpy": [kind, keys.tolist(), pos, has_gauss, gauss], "python": rng["python"]}
        files["state"] = stem.with_name(stem.name + ".state.safetensors")
        _atomic(files["state"], lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT}))
    meta["files"] = {k: {"name": p.name, "sha256": _sha256(p), "bytes": p.stat().st_size} for k, p in files.items()}
    meta["extra"] = extra or {}
    json_path = stem.with_name(stem.name + ".json")
    _atomic(json_path, lambda tmp: _Path(tmp).write_text(_json.dumps(meta, indent=1, default=float)))
    return files["weights"]


def _read_meta(stem: _Path) -> dict:
    json_path = stem.with_name(stem.name + ".json")
    if not json_path.exists():
        raise FileNotFoundError(f"no vitlib checkpoint at {stem}: {json_path.name} is missing in "
                                f"{json_path.parent}; check the path (a checkpoint is NAME.safetensors + NAME.json, "
                                "written by vitlib.checkpoints.save_checkpoint or `python -m vitlib pretrain`)")
    try:
        meta = _json.loads(json_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{json_path} is corrupt or truncated ({e}); delete this checkpoint and resume "
                              "from an earlier one, or re-create it") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not a vitlib checkpoint (format {meta.get('format')!r}, expected "
                              f"{FORMAT!r}); for timm/torchvision weights use from_timm / from_torchvision")
    return meta


def _read_tensors(stem: _Path, meta: dict, key: str) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    info = meta["files"][key]
    path = stem.parent / info["name"]
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file {path} is missing (its JSON {stem.name}.json names it); "
                                "copy it next to the JSON or use another checkpoint")
    if path.stat().st_size != info["bytes"] or _sha256(path) != info["sha256"]:
        raise CheckpointError(f"checkpoint file {path} is corrupt or truncated ({path.stat().st_size} bytes, "
                              f"expected {info['bytes']} with sha256 {info['sha256'][:12]}...); delete this "
                              "checkpoint and resume from an earlier one, or copy the file again")
    return load_file(str(path))


def load_model(path: str | _os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model a vitlib checkpoint was saved from (architecture and config from its JSON), with its
    weights, in eval mode. `path` is NAME, NAME.safetensors or NAME.json."""
    stem = _stem(path)
    meta = _read_meta(stem)
    if meta["arch"] not in ARCHS:
        raise CheckpointError(f"{stem}.json is a {meta['arch']!r} checkpoint and this vitlib knows only "
                              f"{sorted(ARCHS)}; update vitlib or add the architecture to vitlib.checkpoints.ARCHS")
    cfg_cls, build = ARCHS[meta["arch"]]
    model = build(_from_json(cfg_cls, meta["config"]))
    load_into(model, _read_tensors(stem, meta, "weights"))
    return model.to(device).eval()


def load_checkpoint(path: str | _os.PathLike, model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, expect_train_config: _Any = None) -> dict:
    """Load a checkpoint into `model` (and `optimizer`) in place; return its metadata:
    {"arch", "config", "train_config" (TrainConfig or None), "step", "rng" (for restore_rng), "extra", ...}.

    The model must have the architecture and config the checkpoint was saved from (else a CheckpointError
    says what differs); `expect_train_config` must equal the saved TrainConfig up to logging fields.
    """
    from .train import config_from_dict

    stem = _stem(path)
    meta = _read_meta(stem)
    if meta.get("train_config") is not None:
        meta["train_config"] = config_from_dict(meta["train_config"])
    if model is not None:
        arch, config = _arch_of(model)
        if arch != meta["arch"] or config != meta["config"]:
            diff = {k: (meta["config"].get(k), v) for k, v in config.items() if meta["config"].get(k) != v}
            raise CheckpointError(f"{stem.name} holds a {meta['arch']} and the model is a {arch} that differs in "
                                  f"(saved, model): {diff or 'architecture'}; rebuild the model with "
                                  "vitlib.checkpoints.load_model(path), or use vitlib.finetune for a new head or "
                                  "resolution")
        load_into(model, _read_tensors(stem, meta, "weights"))
    if expect_train_config is not None and meta["train_config"] is not None:
        _check_same_run(meta["train_config"], expect_train_config, stem)
    if optimizer is not None or "rng" in meta:
        if "state" not in meta["files"]:
            raise CheckpointError(f"{stem.name} holds weights only (no optimizer or RNG state): it cannot resume a "
                                  "run; start a new run from its weights with load_model instead")
        tensors = _read_tensors(stem, meta, "state")
        if optimizer is not None:
            optimizer.load_state_dict(_join_optimizer(meta["optimizer"], tensors))
        if "rng" in meta:
            kind, keys, pos, has_gauss, gauss = meta["rng"]["numpy"]
            py_version, py_state, py_gauss = meta["rng"]["python"]
            meta["rng"] = {"torch": tensors["rng.torch"], "numpy": (kind, _np.array(keys, dtype=_np.uint32), pos,
                                                                   has_gauss, gauss),
                           "python": (py_version, tuple(py_state), py_gauss),
                           "cuda": [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]}
            if "rng.generator" in tensors:
                meta["rng"]["generator"] = tensors["rng.generator"]
            if not meta["rng"]["cuda"]:
                del meta["rng"]["cuda"]
    return meta


# TrainConfig fields that may change between a run and its resumption without changing its result.
_RESUMABLE_CHANGES = {"progress", "num_workers", "eval_every", "eval_batch_size", "log_every", "checkpoint_every",
                      "keep_checkpoints", "device"}


def _check_same_run(saved: _Any, now: _Any, stem: _Path) -> None:
    diff = {f.name: (getattr(saved, f.name), getattr(now, f.name)) for f in _dc.fields(saved)
            if f.name not in _RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(now, f.name)}
    if diff:
        raise CheckpointError(f"cannot resume from {stem.name}: the TrainConfig differs in (saved, now) {diff}; "
                              "resume with the saved config, or start a new run in another out_dir")


def latest_checkpoint(out_dir: str | _os.PathLike) -> _Path | None:
    """The newest checkpoint (highest step) written by `train` in out_dir, or None."""
    found = sorted(_Path(out_dir).glob("step_*.json")) if _Path(out_dir).is_dir() else []
    return _stem(found[-1]) if found else None


def prune_checkpoints(out_dir: str | _os.PathLike, keep: int) -> None:
    """Delete all but the `keep` newest step_* checkpoints in out_dir (JSON first, so no half-set looks valid)."""
    for json_path in sorted(_Path(out_dir).glob("step_*.json"))[: -keep or None] if keep > 0 else []:
        stem = _stem(json_path)
        for p in (json_path, stem.with_name(stem.name + ".safetensors"),
                  stem.with_name(stem.name + ".state.safetensors")):
            p.unlink(missing_ok=True)

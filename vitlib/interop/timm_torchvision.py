"""timm and torchvision weights: state dicts in vitlib's names, and timm ViT weight files built into models.

Source: timm's `VisionTransformer` and `ResNetV2` (huggingface/pytorch-image-models) and torchvision's
`VisionTransformer`. vitlib's attribute names are timm's, so timm weights load almost by name; torchvision keeps
q, k, v in one `in_proj` of `nn.MultiheadAttention` with other names. timm's ResNetV2 (BiT, and the hybrids'
stem) nests units one level deeper (`stages.i.blocks.j`) and has a 1x1-conv head. Each converter returns a state
dict for `VisionTransformer` (or `ResNet`); tests/test_interop.py shows the logits then equal the reference's.

    from_timm, from_timm_resnet, from_torchvision   state dict -> vitlib state dict
    timm_config, model_from_timm                    a timm ViT weights file -> its ViTConfig, the loaded model
    resample_to_model                               a loaded E_pos resampled to the model's grid (Section 3.2)

Deviations from the paper: none (these are the same models). Loading at another image size resamples E_pos the
official way (bilinear, corners aligned), not timm's (bicubic).
"""

from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..checkpoints import StateDict, load_into
from ..config import VARIANTS, ViTConfig
from ..model import VisionTransformer, resample_pos_embed

__all__ = ["from_timm", "from_timm_resnet", "from_torchvision", "timm_config", "model_from_timm",
           "resample_to_model"]


def _is_timm_resnet(state_dict: StateDict) -> bool:
    """A timm ResNetV2 (BiT) state dict: stages and a stem, no transformer blocks."""
    return any(k.startswith("stages.") for k in state_dict) and not any(k.startswith("blocks.") for k in state_dict)


def from_timm(state_dict: StateDict) -> StateDict:
    """timm state dict -> vitlib state dict, for every timm model vitlib has: a class-token `VisionTransformer`,
    a hybrid (`vit_base_r50_s16_384`, ...) and a `ResNetV2` (`resnetv2_50x1_bit`, ..., via `from_timm_resnet`).

    >>> import timm; m = timm.create_model("vit_tiny_patch16_224")  # doctest: +SKIP
    >>> vit.load_state_dict(from_timm(m.state_dict()))  # doctest: +SKIP
    """
    if _is_timm_resnet(state_dict):
        return from_timm_resnet(state_dict)
    out = {}
    for k, v in state_dict.items():
        if k.startswith(("fc_norm.", "norm_pre.")):
            raise ValueError(f"timm key {k!r}: only plain class-token ViTs (global_pool='token', no pre-norm) convert")
        if k.startswith("patch_embed.backbone."):  # a hybrid (vit_base_r50_s16_384, ...): timm's ResNetV2 names
            k = "patch_embed.backbone." + _timm_resnet_key(k.removeprefix("patch_embed.backbone."), stem_only=True)
        out[k] = v
    return out


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


def _read_state(path: str | os.PathLike) -> StateDict:
    """A state dict from .safetensors, or from a torch file read with weights_only=True (no pickled code runs).
    A file that is not a readable state dict (corrupt, truncated, pickled objects other than tensors) is a
    ValueError that names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {str(path)!r}")
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, SafetensorError) as e:
        # not `from e`: torch's message advises weights_only=False, which would run the file's code
        raise ValueError(f"{str(path)!r} is not a readable weights file ({type(e).__name__}): it is corrupt or "
                         "truncated, or holds objects other than tensors; download it again, or save the weights "
                         "as .safetensors or with torch.save(model.state_dict(), path)") from None
    for key in ("state_dict", "model"):  # training scripts often nest the weights
        state = state.get(key, state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors")
    return state


def timm_config(state_dict: StateDict, **overrides) -> ViTConfig:
    """The ViTConfig of a timm ViT state dict, read from its shapes (P, C, D, L, D_mlp, K, grid, pre-logits).

    k (heads) is not in the shapes: it is taken from the variant table for the same D (D_h = 64 otherwise);
    pass num_heads= to override. GELU is exact, as timm's. LayerScale gammas (`blocks.i.ls1.gamma`, timm's
    `init_values`; not in the paper) give layer_scale=1e-5, an initial value that the loaded gammas replace.
    """
    if _is_timm_resnet(state_dict):
        raise ValueError("a timm ResNetV2 state dict, not a ViT: build the ResNet (e.g. vitlib.create_model("
                         "'BiT-R50x1')) and load it with load_into(model, from_timm(state_dict))")
    sd = from_timm(state_dict)
    missing = [k for k in ("patch_embed.proj.weight", "blocks.0.mlp.fc1.weight") if k not in sd]
    if missing:
        raise ValueError(f"not a timm ViT state dict: no {missing[0]!r} (its keys start "
                         f"{sorted({k.split('.')[0] for k in sd})[:6]}); vitlib reads timm VisionTransformer, hybrid "
                         "and ResNetV2 weights")
    D, C, P, _ = sd["patch_embed.proj.weight"].shape
    known = {v["hidden_size"]: v["num_heads"] for v in VARIANTS.values()}
    prefix = 1 if "cls_token" in sd else 0
    side = math.isqrt(sd["pos_embed"].shape[1] - prefix) if "pos_embed" in sd else None
    cfg = dict(patch_size=P, in_chans=C, hidden_size=D, num_heads=known.get(D, max(D // 64, 1)),
               num_layers=len({k.split(".")[1] for k in sd if k.startswith("blocks.")}),
               mlp_size=sd["blocks.0.mlp.fc1.weight"].shape[0], qkv_bias="blocks.0.attn.qkv.bias" in sd,
               pool="token" if prefix else "gap", pos_embed="learned" if side else "none",
               representation_size=sd["pre_logits.fc.weight"].shape[0] if "pre_logits.fc.weight" in sd else None,
               num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0, gelu="exact",
               layer_scale=1e-5 if "blocks.0.ls1.gamma" in sd else None)
    if side:
        cfg["img_size"] = side * P
    return ViTConfig(**{**cfg, **overrides})


def resample_to_model(state: StateDict, model: VisionTransformer) -> None:
    """Resample a loaded square `pos_embed` (if any) in place to the model's patch grid (Section 3.2)."""
    if "pos_embed" in state:
        n_prefix = model.cfg.num_prefix_tokens
        old = math.isqrt(state["pos_embed"].shape[1] - n_prefix)
        state["pos_embed"] = resample_pos_embed(state["pos_embed"], model.grid, n_prefix, old_grid=(old, old))


def model_from_timm(path: str | os.PathLike, **overrides) -> torch.nn.Module:
    """Build a `VisionTransformer` from a timm ViT weights file (.safetensors, .pth, .bin) and load it.

    Overrides are ViTConfig fields (see `timm_config`); another img_size resamples E_pos
    (`resample_pos_embed`, the official method: note that timm's own resize is bicubic).
    """
    sd = from_timm(_read_state(path))
    cfg = timm_config(sd, **overrides)
    model = VisionTransformer(cfg)
    resample_to_model(sd, model)
    return load_into(model, sd)

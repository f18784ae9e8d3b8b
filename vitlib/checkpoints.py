"""Weights in and out: converters from timm and torchvision state dicts.

vitlib's attribute names are timm's, so timm weights load almost by name;
torchvision keeps q, k, v in one `in_proj` of `nn.MultiheadAttention` with
other names. timm's ResNetV2 (BiT, and the hybrids' stem) nests units one level
deeper (`stages.i.blocks.j`) and has a 1x1-conv head. Each converter returns a state dict for `VisionTransformer`;
tests/test_checkpoints.py shows the logits then equal the reference's.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

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

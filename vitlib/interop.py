"""Other people's weights: timm and torchvision state dicts, the official JAX .npz files, and the shipped model.

Paper: Section 3.2 (fine-tuning starts from pre-trained weights; their position embeddings are
2D-interpolated to the new grid). The released checkpoints are google-research/vision_transformer's.

vitlib's attribute names are timm's, so timm weights load almost by name;
torchvision keeps q, k, v in one `in_proj` of `nn.MultiheadAttention` with
other names. timm's ResNetV2 (BiT, and the hybrids' stem) nests units one level
deeper (`stages.i.blocks.j`) and has a 1x1-conv head. Each converter returns a state dict for `VisionTransformer`;
tests/test_interop.py shows the logits then equal the reference's.
`load_npz` / `model_from_npz` / `save_npz` read and write the checkpoints of
google-research/vision_transformer (tests/test_interop.py: timm's own npz loader
and a NumPy transcription of the official forward pass give the same logits).
`load_pretrained` builds a model from any of these files, from a vitlib checkpoint, or the model
shipped with vitlib (`SHIPPED`).

Deviations from the paper: none (see the NOTE in `load_npz` on a hybrid's epsilons).
"""

from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from .checkpoints import load_into, load_model
from .config import VARIANTS, ViTConfig, backbone_stride
from .model import VisionTransformer, resample_pos_embed
from .utils import atomic_write

__all__ = ["from_timm", "from_torchvision", "from_timm_resnet", "load_into", "load_npz", "model_from_npz",
           "npz_config", "save_npz", "timm_config", "model_from_timm", "load_pretrained", "SHIPPED"]

# The model shipped with vitlib: ViT-Ti/4 (L=6) pre-trained on procedural fractals at 32 px (`vitlib.pretrain` "full").
SHIPPED = Path(__file__).resolve().parent / "weights" / "vit_ti4_fractal32.safetensors"

StateDict = dict[str, Tensor]


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


def _resample_to_model(state: StateDict, model: VisionTransformer) -> None:
    """Resample a loaded square `pos_embed` (if any) in place to the model's patch grid (Section 3.2)."""
    if "pos_embed" in state:
        n_prefix = model.cfg.num_prefix_tokens
        old = math.isqrt(state["pos_embed"].shape[1] - n_prefix)
        state["pos_embed"] = resample_pos_embed(state["pos_embed"], model.grid, n_prefix, old_grid=(old, old))


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
        _resample_to_model(state, model)
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


def model_from_timm(path: str | os.PathLike, **overrides) -> torch.nn.Module:
    """Build a `VisionTransformer` from a timm ViT weights file (.safetensors, .pth, .bin) and load it.

    Overrides are ViTConfig fields (see `timm_config`); another img_size resamples E_pos
    (`resample_pos_embed`, the official method: note that timm's own resize is bicubic).
    """
    sd = from_timm(_read_state(path))
    cfg = timm_config(sd, **overrides)
    model = VisionTransformer(cfg)
    _resample_to_model(sd, model)
    return load_into(model, sd)

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


def load_pretrained(checkpoint: str | Path = "", **overrides) -> VisionTransformer:
    """A pre-trained model from any source: "" (the shipped model), a vitlib checkpoint (NAME.safetensors with
    NAME.json), an official JAX .npz (`model_from_npz`, overrides are ViTConfig fields) or a timm weights file
    (.pth, .bin, or .safetensors without a vitlib JSON; `model_from_timm`)."""
    path = Path(checkpoint) if checkpoint else SHIPPED
    if not checkpoint and not path.exists():
        raise FileNotFoundError(f"the shipped pre-trained model {path} is not in this checkout; pass the path "
                                "of a checkpoint (vitlib, official .npz or timm) instead")
    if path.suffix == ".npz":
        return model_from_npz(path, **overrides)
    if path.with_suffix(".json").exists() and path.suffix in (".safetensors", ".json", ""):
        if overrides:
            raise TypeError(f"a vitlib checkpoint carries its config; got overrides {sorted(overrides)}: "
                            "use new_head / new_resolution on the loaded model instead")
        return load_model(path)
    return model_from_timm(path, **overrides)

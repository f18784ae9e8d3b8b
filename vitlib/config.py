"""Configuration: one frozen dataclass per thing that can be built or run.

`ViTConfig` for every variant of Table 1 (and the hybrids), `ResNetConfig` for the BiT
baselines, `TrainConfig` for a training run; `config_to_dict` / `config_from_dict` turn any
of them into JSON-ready values and back (checkpoints store them that way). A value out of its
range raises `ConfigError`, which names the fields to change (the command line spells them
as its flags).

Paper: Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021),
Table 1 (Base, Large, Huge) and Section 3.1 (naming: "ViT-L/16" is ViT-Large
with 16x16 input patches). Tiny and Small come from later work (DeiT; Steiner
et al., "How to train your ViT") and are supported because they fit on a CPU.

A config never changes: make variants with `dataclasses.replace` or with
`vit_config(name, **overrides)` / `resnet_config(name, **overrides)`.

Deviations from the paper: none by default. Defaults follow the official implementation
(LayerNorm eps 1e-6, qkv bias, class-token pooling, exact GELU as timm and
torchvision; `gelu="tanh"` reproduces the official JAX code's logits). Two options are not in the
paper and are off by default: `drop_path` (stochastic depth) and `layer_scale` (LayerScale, for
reading models trained with it, such as DINOv2's; vitlib.interop.from_onnx_dinov2).
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

__all__ = ["ViTConfig", "POS_EMBEDS", "VARIANTS", "vit_config", "parse_name", "example_names", "known_names",
           "RESNET_DEPTHS", "hybrid_backbone", "backbone_stride", "split_hybrid_name", "ResNetConfig", "resnet_config",
           "parse_resnet_name", "resnet_example_names", "resnet_known_names", "TrainConfig", "config_to_dict",
           "config_from_dict", "ConfigError"]

Config = TypeVar("Config")

# The kinds of position information of Appendix D.4 (Table 8); "learned" (1D) is the paper's default.
POS_EMBEDS = ("learned", "learned_2d", "relative", "none")


class _FieldTemplate(string.Template):
    """`$name`: a field's name; `$name=`: the field with its value."""

    idpattern = r"(?a:[_a-z][_a-z0-9]*=?)"


class ConfigError(ValueError):
    """A config value out of its range. The message is a template that names fields: `$name` a field, `$name=` a
    field with its value; `field` is the one to change (by default the first named). `str(error)` spells them as
    Python (`steps`, `steps=50`), `spelled` any other way (vitlib.cli: as the command's flags, `--steps 50`).

    >>> e = ConfigError.of(TrainConfig(steps=50), "$warmup_steps= must lie in [0, $steps=]")
    >>> e.field, e.fields, str(e)
    ('warmup_steps', {'warmup_steps': 0, 'steps': 50}, 'warmup_steps=0 must lie in [0, steps=50]')
    >>> e.spelled(lambda name, value, valued: f"--steps {value}" if name == "steps" else None)
    'warmup_steps=0 must lie in [0, --steps 50]'
    """

    def __init__(self, template: str, fields: dict[str, Any], field: str | None = None):
        self.template, self.fields, self.field = template, fields, field or next(iter(fields))
        super().__init__(self.spelled(lambda name, value, valued: None))

    @classmethod
    def of(cls, cfg: Any, template: str, field: str | None = None) -> ConfigError:
        """The error about `cfg` whose message is `template` (its `$name`s are fields of `cfg`)."""
        names = [m["named"] or m["braced"] for m in _FieldTemplate.pattern.finditer(template)]
        return cls(template, {name.rstrip("="): getattr(cfg, name.rstrip("=")) for name in names if name}, field)

    def spelled(self, spell: Callable[[str, Any, bool], str | None]) -> str:
        """The message with each field spelled by `spell(name, value, valued)` (`valued`: `$name=`, the field with
        its value); where it returns None, as Python: `name`, `name=value`."""
        words = {}
        for name, value in self.fields.items():
            words[name] = spell(name, value, False) or name
            words[name + "="] = spell(name, value, True) or f"{name}={value!r}"
        return _FieldTemplate(self.template).safe_substitute(words)

    def __reduce__(self):
        return type(self), (self.template, self.fields, self.field)


class _ImageSize:
    """For configs with an `img_size` field: one side, or (H, W)."""

    @property
    def image_hw(self) -> tuple[int, int]:
        """(H, W) of the input image."""
        s = self.img_size
        return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))


def _with_overrides(cls: type[Config], base: dict[str, Any], overrides: dict[str, Any]) -> Config:
    """cls(**base, **overrides), with a TypeError that lists the valid fields for an unknown override."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"unknown {cls.__name__} field(s) {sorted(unknown)}; valid fields: {sorted(fields)}")
    return cls(**{**base, **overrides})


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as JSON-ready plain values."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type[Config], d: dict[str, Any]) -> Config:
    """Inverse of `config_to_dict` for the config class `cls` (JSON lists back to tuples)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class ViTConfig(_ImageSize):
    """Everything that defines a Vision Transformer (Eq. 1-4, Appendix A)."""

    img_size: int | tuple[int, int] = 224  # H = W of the input image, or (H, W)
    patch_size: int = 16  # P: patches are P x P pixels; N = HW / P^2
    in_chans: int = 3  # C: input channels
    num_classes: int = 1000  # K: outputs of the head; 0 means no head (features)
    hidden_size: int = 768  # D: width of every token (Table 1 "Hidden size D")
    num_layers: int = 12  # L: encoder blocks (Table 1 "Layers")
    num_heads: int = 12  # k: attention heads; D_h = D / k (Table 1 "Heads")
    mlp_size: int = 3072  # D_mlp: hidden width of each MLP (Table 1 "MLP size")
    qkv_bias: bool = True  # U_qkv has a bias, as in the official code and timm
    pool: Literal["token", "gap"] = "token"  # Eq. 4 reads z_L^0 ("token") or the mean of all tokens ("gap")
    # E_pos of Eq. 1 ("learned", 1D, the paper's default) or the other rows of Appendix D.4's ablation (Table 8):
    # "none", "learned_2d" (an X and a Y table of D/2 each, concatenated), "relative" (1D relative attention)
    pos_embed: Literal["learned", "learned_2d", "relative", "none"] = "learned"
    representation_size: int | None = None  # pre-training head: tanh hidden layer of this size; None: linear
    dropout: float = 0.0  # after the embedding, in the MLP, after MSA (Appendix B.1: 0.1 in some runs)
    attn_dropout: float = 0.0  # dropout on the attention weights A
    drop_path: float = 0.0  # stochastic depth rate of the last block (linearly increasing from 0); not in the paper
    gelu: Literal["exact", "tanh"] = "exact"  # "tanh": the official JAX code's approximation
    layer_norm_eps: float = 1e-6  # as the official code, timm and torchvision
    # Not in the paper. LayerScale (Touvron et al., 2021, CaiT), as DINOv2 uses it: each residual branch of
    # Eq. 2-3 is multiplied by a learned per-channel vector gamma in R^D initialised to this value. None: off,
    # the paper's block (and no parameters added).
    layer_scale: float | None = None
    # Hybrid (Section 3.1): units per stage of the ResNet whose feature map replaces the raw patches, e.g.
    # (3, 4, 9) for R50+ViT-B/16; () is the ResNet root alone (map /4). P stays in input pixels: the CNN's
    # stride times the patch size on its map. None: a plain ViT.
    backbone: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        h, w = self.image_hw
        p = self.patch_size
        if self.hidden_size % self.num_heads:
            raise ConfigError.of(self, f"$hidden_size D={self.hidden_size} must be divisible by $num_heads "
                                       f"k={self.num_heads} (D_h = D / k)")
        if h % p or w % p:
            raise ConfigError.of(self, f"$img_size {h}x{w} is not divisible by $patch_size P={p}; use a multiple of "
                                       f"{p} (e.g. {h - h % p or p})")
        if self.pool not in ("token", "gap"):
            raise ConfigError.of(self, f"$pool must be 'token' or 'gap', got {self.pool!r}")
        if self.pos_embed not in POS_EMBEDS:
            raise ConfigError.of(self, f"$pos_embed must be one of {POS_EMBEDS} (Appendix D.4), got {self.pos_embed!r}")
        if self.pos_embed == "learned_2d" and self.hidden_size % 2:
            raise ConfigError.of(self, f"$pos_embed= concatenates an X and a Y embedding of D/2 each: $hidden_size "
                                       f"D={self.hidden_size} must be even")
        if self.gelu not in ("exact", "tanh"):
            raise ConfigError.of(self, f"$gelu must be 'exact' or 'tanh', got {self.gelu!r}")
        if self.layer_scale is not None and (isinstance(self.layer_scale, bool)
                                             or not isinstance(self.layer_scale, (int, float))
                                             or not math.isfinite(self.layer_scale) or self.layer_scale <= 0):
            raise ConfigError.of(self, "$layer_scale must be None (off, the paper's block) or a finite number > 0, "
                                       "LayerScale's initial gamma (DINOv2 and CaiT use 1e-5), got "
                                       f"{self.layer_scale!r}")
        if self.backbone is not None:
            object.__setattr__(self, "backbone", tuple(int(d) for d in self.backbone))  # a JSON list -> tuple
        if self.backbone is not None and p % backbone_stride(self.backbone):
            raise ConfigError.of(self, f"$patch_size P={p} must be a multiple of the backbone's stride "
                                       f"{backbone_stride(self.backbone)} (ResNet stages {self.backbone})")

    @property
    def grid_size(self) -> tuple[int, int]:
        """(H / P, W / P): the patch grid."""
        h, w = self.image_hw
        return h // self.patch_size, w // self.patch_size

    @property
    def num_patches(self) -> int:
        """N = HW / P^2."""
        gh, gw = self.grid_size
        return gh * gw

    @property
    def head_dim(self) -> int:
        """D_h = D / k (Appendix A)."""
        return self.hidden_size // self.num_heads

    @property
    def num_prefix_tokens(self) -> int:
        """1 for the class token of Eq. 1, 0 with global average pooling."""
        return 1 if self.pool == "token" else 0


# Table 1 (plus Ti and S from DeiT). Exact parameter counts at 224 px with 1000
# classes, linear head, P=16 unless said: the official tests, timm and torchvision agree.
VARIANTS: dict[str, dict[str, int]] = {
    "Ti": dict(hidden_size=192, num_layers=12, mlp_size=768, num_heads=3),  # ViT-Ti/16: 5,717,416
    "S": dict(hidden_size=384, num_layers=12, mlp_size=1536, num_heads=6),  # ViT-S/16: 22,050,664
    "B": dict(hidden_size=768, num_layers=12, mlp_size=3072, num_heads=12),  # ViT-B/16: 86,567,656; B/32: 88,224,232
    "L": dict(hidden_size=1024, num_layers=24, mlp_size=4096, num_heads=16),  # ViT-L/16: 304,326,632; L/32: 306,535,400
    "H": dict(hidden_size=1280, num_layers=32, mlp_size=5120, num_heads=16),  # ViT-H/14: 632,045,800
}
_LONG = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H"}

_NAME = re.compile(r"^vit[-_]?(?P<size>ti|tiny|s|small|b|base|l|large|h|huge)(?:[/_]|_patch|/patch)?(?P<patch>\d+)$")


def example_names() -> list[str]:
    """Examples of the names `vit_config` accepts (any patch size works)."""
    return ["ViT-Ti/16", "ViT-S/16", "ViT-B/16", "ViT-B/32", "ViT-L/16", "ViT-L/32", "ViT-H/14", "vit_b16", "vit_ti4",
            "R50+ViT-B/16", "R50+ViT-L/32", "R26+ViT-S/32", "R26+ViT-Ti/8", "R+ViT-Ti/32"]


known_names = example_names  # an alias: both return examples, not every accepted name


def parse_name(name: str) -> tuple[str, int]:
    """'ViT-L/16' or 'vit_l16' -> ('L', 16). Raises ValueError for unknown names."""
    m = _NAME.match(name.strip().lower())
    if not m:
        raise ValueError(
            f"unknown model name {name!r}; known: {', '.join(example_names())} "
            "(size Ti, S, B, L or H, any patch size: 'ViT-<size>/<P>' or 'vit_<size><P>'; hybrids "
            "'R<26|50|101|152>+ViT-<size>/<P>')"
        )
    size = m["size"]
    size = _LONG.get(size, size.capitalize() if size != "ti" else "Ti")
    return size, int(m["patch"])


def vit_config(name: str, **overrides) -> ViTConfig:
    """Config of a named variant ('ViT-B/16', 'vit_b16', ...) with field overrides.

    >>> vit_config("ViT-Ti/4", img_size=32, num_classes=10).num_patches
    64
    """
    depth, vit_name = split_hybrid_name(name)
    size, patch = parse_name(vit_name)
    hybrid = {"backbone": hybrid_backbone(depth, patch)} if vit_name != name else {}
    return _with_overrides(ViTConfig, {**VARIANTS[size], "patch_size": patch, **hybrid}, overrides)


# Hybrid names (Section 3.1 "Hybrid Architecture"): "R50+ViT-B/16" is ViT-B on the feature map of a ResNet-50
# cut to stride 16. Units per stage of the bottleneck ResNets (He et al., 2016) that BiT and the hybrids use:
RESNET_DEPTHS: dict[int, tuple[int, ...]] = {
    26: (2, 2, 2, 2),  # R26: 3 * 8 + 2 layers
    50: (3, 4, 6, 3),  # R50
    101: (3, 4, 23, 3),  # R101
    152: (3, 8, 36, 3),  # R152
}
_HYBRID = re.compile(r"^r(?P<depth>\d*)\+(?P<vit>.+)$")


def split_hybrid_name(name: str) -> tuple[int | None, str]:
    """'R50+ViT-B/16' -> (50, 'ViT-B/16'); 'R+ViT-Ti/32' -> (None, 'ViT-Ti/32'); 'ViT-B/16' -> (None, 'ViT-B/16')."""
    m = _HYBRID.match(name.strip().lower())
    if not m:
        return None, name
    return (int(m["depth"]) if m["depth"] else None), name.strip()[name.index("+") + 1:]


def backbone_stride(depths: tuple[int, ...]) -> int:
    """Input pixels per cell of a hybrid's feature map: 4 after the ResNet root, x2 per stage after the first."""
    return 4 * 2 ** max(len(depths) - 1, 0)


def hybrid_backbone(depth: int | None, patch_size: int) -> tuple[int, ...]:
    """Units per ResNet stage of 'R<depth>+ViT-<size>/<P>' (P: the effective patch size in input pixels).

    The stages whose stride divides P are kept (at most all 4) and the last kept one takes the units of the
    removed ones, so that the layer count stays (Section 3.1: R50+ViT-B/16 is (3, 4, 6 + 3) = (3, 4, 9), a map
    at 1/16 with 1x1 patches; R50+ViT-L/32 the whole (3, 4, 6, 3); R26+ViT-Ti/8 is (2, 6), a map at 1/8).
    When P exceeds the backbone's stride, the patches on the map are P / stride wide (R50+ViT-B/64: 2x2 on
    the /32 map). Without a depth ('R+ViT-Ti/32') it is the ResNet root alone: a map at 1/4, 8x8 patches.
    """
    # NOTE: the official code calls the root-only model with 8x8 patches on the /4 map "R+ViT-Ti_16"; here
    # names give P in input pixels (4 x 8 = 32) as everywhere else. tests/test_hybrid.py checks the names.
    if patch_size % 4:
        raise ValueError(f"a hybrid's patch size P={patch_size} must be a multiple of 4, the stride of the ResNet root")
    if depth is None:
        return ()
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"no standard ResNet-{depth} for a hybrid: use R26, R50, R101 or R152 "
                         f"(depths {RESNET_DEPTHS}), or pass backbone=(...) for other stage depths")
    full = RESNET_DEPTHS[depth]
    n = 1
    while n < len(full) and patch_size % backbone_stride(full[: n + 1]) == 0:
        n += 1
    return full[: n - 1] + (sum(full[n - 1:]),)


# --- The BiT ResNet (Section 4.1 "Model Variants"; vitlib.resnet builds it) ---------------------------------------
GN_GROUPS = 32  # BiT: 32 groups in every GroupNorm


@dataclass(frozen=True)
class ResNetConfig(_ImageSize):
    """Everything that defines a BiT ResNet (Section 4.1; Kolesnikov et al., 2020)."""

    depths: tuple[int, ...] = (3, 4, 6, 3)  # units per stage: R50; R26 (2,2,2,2), R101 (3,4,23,3), R152 (3,8,36,3)
    width: int = 1  # BiT width multiplier ("x1" ... "x4"): every channel count times this
    base_width: int = 64  # root-conv channels at x1; stage s has 3x3 convs of base * 2^s and outputs 4x that
    img_size: int | tuple[int, int] = 224  # the input size the model is meant for (any size runs: global pooling)
    in_chans: int = 3  # C: input channels
    num_classes: int = 1000  # K: outputs of the head; 0 means no head (the feature map's pooled vector)
    stem: Literal["bit", "cifar"] = "bit"  # "bit": 7x7/2 conv + 3x3/2 max-pool (map /4); "cifar": 3x3/1 conv only
    preact: bool = True  # BiT's pre-activation units; False: post-activation units of the official ViT hybrid
    same_padding: bool = False  # TensorFlow "SAME" padding as the official JAX code; False: BiT's PyTorch padding

    def __post_init__(self) -> None:
        if self.stem not in ("bit", "cifar"):
            raise ConfigError.of(self, f"$stem must be 'bit' (7x7/2 conv + max-pool) or 'cifar' (3x3/1 conv), got "
                                       f"{self.stem!r}")
        if any(d < 1 for d in self.depths):
            raise ConfigError.of(self, "every stage needs at least one unit, got $depths=")
        if (self.base_width * self.width) % GN_GROUPS:
            raise ConfigError.of(self, f"$base_width * $width = {self.base_width * self.width} channels do not split "
                                       f"into {GN_GROUPS} GroupNorm groups; use a multiple of {GN_GROUPS} (e.g. "
                                       "base_width=32)")

    @property
    def stride(self) -> int:
        """Input pixels per feature-map cell: 4 after the "bit" stem (1 after "cifar"), x2 per stage after the first."""
        return (4 if self.stem == "bit" else 1) * 2 ** max(len(self.depths) - 1, 0)

    @property
    def num_features(self) -> int:
        """Channels of the final feature map."""
        w = self.base_width * self.width
        return 4 * w * 2 ** (len(self.depths) - 1) if self.depths else w

    @property
    def depth(self) -> int:
        """The "50" of R50: 3 convolutions per unit, plus the root conv and the head."""
        return 3 * sum(self.depths) + 2


_RESNET_NAME = re.compile(r"^(?:bit[-_]?)?r(?P<depth>\d+)x(?P<width>\d+)$")


def resnet_example_names() -> list[str]:
    """Examples of the names `resnet_config` accepts (any width x1, x2, x3, x4 ...)."""
    return ["BiT-R50x1", "BiT-R50x3", "BiT-R101x3", "BiT-R152x4", "BiT-R26x1", "bit_r50x1"]


resnet_known_names = resnet_example_names  # an alias: both return examples, not every accepted name


def parse_resnet_name(name: str) -> tuple[int, int] | None:
    """'BiT-R50x1' -> (50, 1); None if the name is not a ResNet name."""
    m = _RESNET_NAME.match(name.strip().lower())
    return (int(m["depth"]), int(m["width"])) if m else None


def resnet_config(name: str, **overrides) -> ResNetConfig:
    """Config of a named BiT ResNet ('BiT-R50x1', 'BiT-R152x4', 'BiT-R26x1') with field overrides.

    A CPU-sized one for 32x32 images: `resnet_config("BiT-R26x1", img_size=32, stem="cifar", base_width=32)`.

    >>> resnet_config("BiT-R50x1").depths
    (3, 4, 6, 3)
    """
    parsed = parse_resnet_name(name)
    if parsed is None:
        raise ValueError(f"unknown ResNet name {name!r}; known: {', '.join(resnet_example_names())}")
    depth, width = parsed
    if depth not in RESNET_DEPTHS and "depths" not in overrides:
        raise ValueError(f"no standard bottleneck ResNet of depth {depth}: use R26, R50, R101 or R152 "
                         "(e.g. 'BiT-R50x1'), or pass depths=(...) for other stage depths")
    return _with_overrides(ResNetConfig, {"depths": RESNET_DEPTHS.get(depth), "width": width}, overrides)


# --- Training (Section 4.1 "Training & Fine-tuning", Appendix B.1; vitlib.train runs it) ------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run except the model and the data. Never mutated:
    make variants with `dataclasses.replace` or the recipes' overrides."""

    steps: int = 1000  # optimizer updates in the whole run (with budget_s: at most, and the schedule's scale)
    # seconds of training (evaluations and checkpoints excluded) when the run has a wall-clock budget: the schedule
    # (warm-up and decay) then follows the training time instead of the step count, and the run ends when the time
    # is spent (or at `steps`, whichever comes first). None: the schedule follows the steps (reproducible)
    budget_s: float | None = None
    batch_size: int = 128  # global batch: split evenly across DDP ranks
    optimizer: Literal["adamw", "sgd"] = "adamw"  # "adamw": Adam with decoupled weight decay; "sgd": with momentum
    lr: float = 1e-3  # base (peak) learning rate, reached at the end of the warm-up
    betas: tuple[float, float] = (0.9, 0.999)  # Adam beta1, beta2 (Appendix B.1)
    momentum: float = 0.9  # SGD momentum (Appendix B.1.1)
    weight_decay: float = 0.0  # decoupled, multiplied by the LR as in flax.optim.Adam and torch AdamW
    warmup_steps: int = 0  # linear warm-up from 0 to lr over this many steps
    # decay after the warm-up; "rsqrt": lr * sqrt(warmup / step), which does not depend on `steps`, so one run's
    # checkpoints are the runs of every shorter length (Zhai et al. 2021, "Scaling Vision Transformers")
    schedule: Literal["linear", "cosine", "constant", "rsqrt"] = "linear"
    end_lr: float = 0.0  # LR at the last step of a linear decay
    grad_clip: float | None = None  # clip the global gradient norm to this value; None: no clipping
    label_smoothing: float = 0.0  # not in the paper; 0 disables
    mixup_alpha: float = 0.0  # mixup lambda ~ Beta(alpha, alpha); not in the paper; 0 disables
    cutmix_alpha: float = 0.0  # CutMix (Yun et al. 2019) box of area 1 - lambda, lambda ~ Beta; not in the paper
    # "bf16": autocast forward in bfloat16, weights stay fp32; "auto": bf16 where the hardware multiplies bf16
    # natively (a CUDA GPU with bf16, a CPU with AMX or AVX512-BF16), fp32 elsewhere (vitlib.train.resolve_precision)
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    compile: bool = False  # wrap the model in torch.compile
    # AdamW's and SGD's fused kernel (one pass over all parameters per step, on a CPU or CUDA) instead of a loop
    # over the parameters: the same update, faster (benchmarks/train_speed.py measures it)
    fused_optimizer: bool = True
    # "auto": cuda when available, else cpu; "cuda" without an index is the local rank's GPU under torchrun
    device: str = "auto"
    # seeds the data order (the same on every rank) and, as seed + rank, each rank's augmentations, worker seeds,
    # mixup, CutMix and dropout (the initial weights are rank 0's)
    seed: int = 0
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)
    # True: upload the training images to the device once and batch and augment them there (vitlib.batches; the
    # same batches as the DataLoader's, bitwise on a CPU); for a GPU that outruns the CPU's augmentation
    data_on_device: bool = False
    eval_every: int = 0  # evaluate on val_set every this many steps (0: only at the end)
    eval_steps: tuple[int, ...] = ()  # evaluate also after these steps (log-spaced learning curves)
    eval_batch_size: int = 256  # batch size for evaluation
    log_every: int = 10  # write a train record (mean loss/accuracy since the last one) every this many steps
    checkpoint_every: int = 0  # write a checkpoint every this many steps (0: only at the end)
    keep_checkpoints: int = 2  # how many of the newest checkpoints to keep in out_dir
    progress: bool = True  # show a tqdm progress bar (rank 0)

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError.of(self, f"$optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.schedule not in ("linear", "cosine", "constant", "rsqrt"):
            raise ConfigError.of(self, f"$schedule must be 'linear', 'cosine', 'constant' or 'rsqrt', got "
                                       f"{self.schedule!r}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ConfigError.of(self, f"$precision must be 'fp32', 'bf16' or 'auto', got {self.precision!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError.of(self, f"$steps and $batch_size must be >= 1, got steps={self.steps}, "
                                       f"batch={self.batch_size}", field="steps" if self.steps < 1 else "batch_size")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ConfigError.of(self, "$warmup_steps= must lie in [0, $steps=]")
        checks = (  # (holds, the error otherwise: `$name` names a field) for the remaining numbers
            (math.isfinite(self.lr) and self.lr >= 0, f"$lr must be a finite number >= 0, got {self.lr}"),
            (math.isfinite(self.end_lr) and self.end_lr >= 0, f"$end_lr must be finite and >= 0, got {self.end_lr}"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             f"$betas must be two numbers in [0, 1), got {self.betas}"),
            (0 <= self.momentum < 1, f"$momentum must lie in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"$weight_decay must be >= 0, got {self.weight_decay}"),
            (self.grad_clip is None or self.grad_clip > 0,
             f"$grad_clip must be > 0, or None for no clipping, got {self.grad_clip}"),
            (0 <= self.label_smoothing < 1, f"$label_smoothing must lie in [0, 1), got {self.label_smoothing}"),
            (self.mixup_alpha >= 0, f"$mixup_alpha must be >= 0 (0: off), got {self.mixup_alpha}"),
            (self.cutmix_alpha >= 0, f"$cutmix_alpha must be >= 0 (0: off), got {self.cutmix_alpha}"),
            (not (self.data_on_device and self.num_workers), f"$data_on_device batches on the device, without "
             f"DataLoader workers: set num_workers=0 (got {self.num_workers})"),
            (self.mixup_alpha == 0 or self.cutmix_alpha == 0,
             f"$mixup_alpha and cutmix_alpha are both on ({self.mixup_alpha}, {self.cutmix_alpha}): pick one"),
            (self.log_every >= 1, f"$log_every must be >= 1, got {self.log_every}"),
            (self.eval_batch_size >= 1, f"$eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (all(s >= 1 for s in self.eval_steps), f"$eval_steps must be steps >= 1, got {self.eval_steps}"),
            (self.budget_s is None or self.budget_s > 0, f"$budget_s must be > 0 seconds, or None, got "
                                                          f"{self.budget_s}"),
        )
        for holds, template in checks:
            if not holds:
                raise ConfigError.of(self, template)
        counts = ("eval_every", "checkpoint_every", "keep_checkpoints", "num_workers")
        negative = [name for name in counts if getattr(self, name) < 0]
        if negative:
            raise ConfigError.of(self, "$eval_every, $checkpoint_every, $keep_checkpoints and $num_workers must be "
                                       ">= 0 (0: off or all)", field=negative[0])

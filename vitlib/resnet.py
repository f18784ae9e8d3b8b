"""BiT ResNet: ResNet v2 with Group Normalization and Weight Standardization.

Paper: Dosovitskiy et al. (ICLR 2021), Section 4.1 "Model Variants": "For the
baseline CNNs we use ResNet (He et al., 2016), but replace the Batch
Normalization layers with Group Normalization (Wu & He, 2018), and used
standardized convolutions (Qiao et al., 2019). These modifications improve
transfer (Kolesnikov et al., 2020)", i.e. the BiT ResNets of Table 2 and
Fig. 3-5. The same network, cut after stage 3, is the stem of the hybrid
(Section 3.1, vitlib.hybrid).

Glossary (besides the paper's): a *unit* is one bottleneck block
(1x1 -> 3x3 -> 1x1 convolutions and a shortcut); a *stage* is a run of units
at one resolution; `depths` gives the units per stage: R50 = (3, 4, 6, 3) and
the depth is 3 * sum(depths) + 2. `width` is BiT's multiplier ("R152x4": every
channel count times 4).

Two kinds of unit, as in the reference code:
- `preact=True` (BiT, the CNN baseline): pre-activation units of ResNet v2,
  GN + ReLU before each convolution, a final GN + ReLU before the head; the
  layout of BiT's code and timm's `resnetv2_50x1_bit`;
- `preact=False` (the hybrid's stem): post-activation units, GN after each
  convolution, ReLU after the sum; the layout of the official ViT code
  (vit_jax/models_resnet.py) and of timm's `vit_base_r50_s16_384`.

Deviations: none in the architecture; epsilons below follow timm (see NOTEs).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import RESNET_DEPTHS

__all__ = ["ResNetConfig", "ResNet", "StdConv2d", "standardize", "resnet_config", "parse_resnet_name",
           "resnet_known_names"]

# NOTE: the official JAX code standardizes with (w - mean) / (std + 1e-5) and uses flax's GroupNorm
# eps 1e-6; timm (and so the weights most people load) uses (w - mean) / sqrt(var + 1e-8) and GN eps
# 1e-5. We take timm's so that tests/test_resnet.py::test_timm_parity_* hold at 1e-4; the two differ by
# about 1e-5 / std(w) relative (test_ws_eps_close_to_official checks the size of that difference).
WS_EPS = 1e-8
GN_EPS = 1e-5
GN_GROUPS = 32  # BiT: 32 groups in every GroupNorm


def check_image_batch(x: Tensor, in_chans: int) -> None:
    """Raise a ValueError naming the problem and the fix unless x is a (B, in_chans, H, W) tensor."""
    if not isinstance(x, Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected a 4D image batch (B, C, H, W), got {shape}; add a batch dim with x[None]")
    C = in_chans
    if x.shape[1] != C:
        raise ValueError(f"expected {C} input channels (B, {C}, H, W), got {x.shape[1]} in shape {tuple(x.shape)}; "
                         f"build the model with in_chans={x.shape[1]} or convert the images")


@dataclass(frozen=True)
class ResNetConfig:
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
            raise ValueError(f"stem must be 'bit' (7x7/2 conv + max-pool) or 'cifar' (3x3/1 conv), got {self.stem!r}")
        if any(d < 1 for d in self.depths):
            raise ValueError(f"every stage needs at least one unit, got depths={self.depths}")
        if (self.base_width * self.width) % GN_GROUPS:
            raise ValueError(f"base_width * width = {self.base_width * self.width} channels do not split into "
                             f"{GN_GROUPS} GroupNorm groups; use a multiple of {GN_GROUPS} (e.g. base_width=32)")

    @property
    def image_hw(self) -> tuple[int, int]:
        """(H, W) of the input image."""
        s = self.img_size
        return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))

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


def standardize(w: Tensor, eps: float = WS_EPS) -> Tensor:
    """Weight Standardization (Qiao et al., 2019): each output filter to zero mean and unit variance."""
    # Each filter is one "channel" of a (1, O, I*k*k) batch: batch_norm in training mode without running
    # statistics normalizes it by its own mean and (biased) variance, in one fused kernel (forward and backward).
    return F.batch_norm(w.reshape(1, w.shape[0], -1), None, None, training=True, eps=eps).reshape_as(w)


def same_pad(x: Tensor, kernel_size: int, stride: int, value: float = 0.0) -> Tensor:
    """TensorFlow "SAME" padding: output = ceil(input / stride), the extra pixel goes after (right, bottom)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad wants (left, right, top, bottom)
        total = max((math.ceil(n / stride) - 1) * stride + kernel_size - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class StdConv2d(nn.Conv2d):
    """Conv2d with Weight Standardization, no bias (every one is followed or preceded by a GroupNorm)."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int, stride: int = 1,
                 same_padding: bool = False) -> None:
        # Odd kernels at stride 1 pad symmetrically in both conventions; "SAME" differs only when strided.
        self.pad_same = same_padding and stride > 1
        padding = 0 if self.pad_same else kernel_size // 2
        super().__init__(in_chans, out_chans, kernel_size, stride=stride, padding=padding, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.pad_same:
            x = same_pad(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, standardize(self.weight), None, self.stride, self.padding)


def group_norm(channels: int) -> nn.GroupNorm:
    """BiT's normalization: GroupNorm with 32 groups."""
    return nn.GroupNorm(GN_GROUPS, channels, eps=GN_EPS)


class Downsample(nn.Module):
    """The projection shortcut of a unit that changes width or resolution: 1x1 conv (+ GN when post-activation)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int, preact: bool, same_padding: bool) -> None:
        super().__init__()
        self.conv = StdConv2d(in_chans, out_chans, 1, stride, same_padding)
        self.norm = None if preact else group_norm(out_chans)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return x if self.norm is None else self.norm(x)


class Bottleneck(nn.Module):
    """One unit: 1x1 (mid) -> 3x3 (mid, carries the stride) -> 1x1 (4 mid), plus the shortcut.

    preact=True:  y = conv3(relu(gn3(conv2(relu(gn2(conv1(a))))))) + shortcut,  a = relu(gn1(x))
    preact=False: y = relu(gn3(conv3(relu(gn2(conv2(relu(gn1(conv1(x))))))) + shortcut)
    """

    def __init__(self, in_chans: int, mid: int, stride: int, preact: bool, same_padding: bool) -> None:
        super().__init__()
        out = 4 * mid
        self.preact = preact
        self.downsample = (Downsample(in_chans, out, stride, preact, same_padding)
                           if in_chans != out or stride != 1 else None)
        self.norm1 = group_norm(in_chans if preact else mid)
        self.conv1 = StdConv2d(in_chans, mid, 1)
        self.norm2 = group_norm(mid)
        self.conv2 = StdConv2d(mid, mid, 3, stride, same_padding)
        self.norm3 = group_norm(mid if preact else out)
        self.conv3 = StdConv2d(mid, out, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.preact:
            a = F.relu(self.norm1(x), inplace=True)
            shortcut = x if self.downsample is None else self.downsample(a)
            y = self.conv1(a)
            y = self.conv2(F.relu(self.norm2(y), inplace=True))
            y = self.conv3(F.relu(self.norm3(y), inplace=True))
            return y + shortcut
        shortcut = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.norm1(self.conv1(x)), inplace=True)
        y = F.relu(self.norm2(self.conv2(y)), inplace=True)
        y = self.norm3(self.conv3(y))
        return F.relu(y + shortcut, inplace=True)


class Stem(nn.Module):
    """The root: 7x7/2 conv and 3x3/2 max-pool ("bit", map /4) or one 3x3/1 conv ("cifar", map /1)."""

    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        width = cfg.base_width * cfg.width
        k, s = (7, 2) if cfg.stem == "bit" else (3, 1)
        self.pool = cfg.stem == "bit"
        self.same_padding = cfg.same_padding
        self.conv = StdConv2d(cfg.in_chans, width, k, s, cfg.same_padding)
        self.norm = None if cfg.preact else group_norm(width)  # pre-activation: the first unit normalizes

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = F.relu(self.norm(x), inplace=True)
        if self.pool:
            # NOTE: BiT pads with one row/column of zeros on every side then pools without padding (its
            # PyTorch code and timm 'fixed' stem); the official ViT code pools with "SAME" (-inf) padding.
            # tests/test_resnet.py checks both against timm.
            x = same_pad(x, 3, 2, value=-math.inf) if self.same_padding else F.pad(x, (1, 1, 1, 1))
            x = F.max_pool2d(x, kernel_size=3, stride=2)
        return x


class ResNet(nn.Module):
    """BiT ResNet. `model(x)` returns logits (B, K); `model.forward_features(x)` the feature map (B, C', H/s, W/s)."""

    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = Stem(cfg)
        chans, stages = cfg.base_width * cfg.width, []
        for s, n_units in enumerate(cfg.depths):
            mid = cfg.base_width * cfg.width * 2**s
            units = []
            for u in range(n_units):
                stride = 2 if s > 0 and u == 0 else 1  # the first unit of stages 2, 3, 4 halves the map
                units.append(Bottleneck(chans, mid, stride, cfg.preact, cfg.same_padding))
                chans = 4 * mid
            stages.append(nn.Sequential(*units))
        self.stages = nn.Sequential(*stages)
        self.norm = group_norm(chans) if cfg.preact else None  # ResNet v2 ends with GN + ReLU
        self.head = nn.Linear(chans, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.init_weights()

    @property
    def stride(self) -> int:
        """Input pixels per feature-map cell (16 for R50 cut after stage 3, 32 for the full R50)."""
        return self.cfg.stride

    @torch.no_grad()
    def init_weights(self) -> None:
        """He-normal convolutions (their scale does not matter under Weight Standardization), GN to identity,
        zero head (BiT's and the paper's fine-tuning head); post-activation units start with gn3 = 0 as in
        the official ViT code, so each unit starts as its shortcut."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight), nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck) and not m.preact:
                nn.init.zeros_(m.norm3.weight)
        if isinstance(self.head, nn.Linear):
            nn.init.zeros_(self.head.weight), nn.init.zeros_(self.head.bias)

    def _check_input(self, x: Tensor) -> None:
        check_image_batch(x, self.cfg.in_chans)

    def forward_features(self, x: Tensor) -> Tensor:
        """The feature map after the last stage (and the final GN + ReLU of ResNet v2): (B, C', H/s, W/s)."""
        self._check_input(x)
        x = self.stages(self.stem(x))
        return x if self.norm is None else F.relu(self.norm(x), inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x).mean(dim=(2, 3)))  # global average pooling, (B, K)


_NAME = re.compile(r"^(?:bit[-_]?)?r(?P<depth>\d+)x(?P<width>\d+)$")


def resnet_known_names() -> list[str]:
    """Examples of the names `resnet_config` accepts (any width x1, x2, x3, x4 ...)."""
    return ["BiT-R50x1", "BiT-R50x3", "BiT-R101x3", "BiT-R152x4", "BiT-R26x1", "bit_r50x1"]


def parse_resnet_name(name: str) -> tuple[int, int] | None:
    """'BiT-R50x1' -> (50, 1); None if the name is not a ResNet name."""
    m = _NAME.match(name.strip().lower())
    return (int(m["depth"]), int(m["width"])) if m else None


def resnet_config(name: str, **overrides) -> ResNetConfig:
    """Config of a named BiT ResNet ('BiT-R50x1', 'BiT-R152x4', 'BiT-R26x1') with field overrides.

    A CPU-sized one for 32x32 images: `resnet_config("BiT-R26x1", img_size=32, stem="cifar", base_width=32)`.

    >>> resnet_config("BiT-R50x1").depths
    (3, 4, 6, 3)
    """
    parsed = parse_resnet_name(name)
    if parsed is None:
        raise ValueError(f"unknown ResNet name {name!r}; known: {', '.join(resnet_known_names())}")
    depth, width = parsed
    fields = {f.name for f in dataclasses.fields(ResNetConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"unknown ResNetConfig field(s) {sorted(unknown)}; valid fields: {sorted(fields)}")
    if depth not in RESNET_DEPTHS and "depths" not in overrides:
        raise ValueError(f"no standard bottleneck ResNet of depth {depth}: use R26, R50, R101 or R152 "
                         "(e.g. 'BiT-R50x1'), or pass depths=(...) for other stage depths")
    return ResNetConfig(**{"depths": RESNET_DEPTHS.get(depth), "width": width, **overrides})

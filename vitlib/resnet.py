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

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import (
    GN_GROUPS,
    ResNetConfig,
    parse_resnet_name,
    resnet_config,
    resnet_example_names,
    resnet_known_names,
)
from .utils import check_image_batch

__all__ = ["ResNetConfig", "ResNet", "StdConv2d", "standardize", "resnet_config", "parse_resnet_name",
           "resnet_example_names", "resnet_known_names"]

# NOTE: the official JAX code standardizes with (w - mean) / (std + 1e-5) and uses flax's GroupNorm
# eps 1e-6; timm (and so the weights most people load) uses (w - mean) / sqrt(var + 1e-8) and GN eps
# 1e-5. We take timm's so that tests/test_resnet.py::test_timm_parity_* hold at 1e-4; the two differ by
# about 1e-5 / std(w) relative (test_ws_eps_close_to_official checks the size of that difference).
WS_EPS = 1e-8
GN_EPS = 1e-5


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

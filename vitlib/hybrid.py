"""The hybrid architecture (Section 3.1): Eq. 1's patches taken from a CNN feature map.

Paper: "As an alternative to raw image patches, the input sequence can be formed
from feature maps of a CNN (LeCun et al., 1989). In this hybrid model, the
patch embedding projection E (Eq. 1) is applied to patches extracted from a CNN
feature map. As a special case, the patches can have spatial size 1x1, which
means that the input sequence is obtained by simply flattening the spatial
dimensions of the feature map and projecting to the Transformer dimension."
And Section 4.1: "For the hybrids, we feed the intermediate feature maps into
ViT with patch size of one 'pixel'. ... we either (i) take the output of
stage 4 of a regular ResNet50 or (ii) remove stage 4, place the same number of
layers in stage 3 (keeping the total number of layers), and take the output
of this extended stage 3. Option (ii) results in a 4x longer sequence length,
and a more expensive ViT model."

`HybridEmbedding` is only the embedding: the class token, E_pos and the
encoder are the same `VisionTransformer` (model.py), which builds this module
when `ViTConfig.backbone` is set. P is the effective patch size in input
pixels: the ResNet's stride s times the patch size P / s on its map, so
N = HW / P^2 as for a plain ViT.

Deviations from the paper: none. The ResNet is the official code's hybrid
stem: post-activation units and TensorFlow "SAME" padding (vitlib.resnet).
"""

from __future__ import annotations

from torch import Tensor, nn

from .config import ResNetConfig, backbone_stride
from .resnet import ResNet

__all__ = ["HybridEmbedding"]


class HybridEmbedding(nn.Module):
    """Eq. 1 with x_p^i cut from a ResNet feature map: image -> ResNet root + stages -> (P/s x P/s) conv E -> tokens.

    Same interface as `PatchEmbedding`: `.patch_size` (P, in input pixels), `.in_chans`,
    `.grid_size(h, w)` and `forward(x) -> (B, N, D)`.
    """

    def __init__(self, depths: tuple[int, ...], patch_size: int, in_chans: int, hidden_size: int) -> None:
        super().__init__()
        stride = backbone_stride(depths)
        if patch_size % stride:
            raise ValueError(f"patch_size P={patch_size} must be a multiple of the ResNet's stride {stride} "
                             f"(stages {depths})")
        # NOTE: post-activation units with "SAME" padding, as the official ViT code's hybrid (models_resnet.py)
        # and timm's vit_base_r50_s16_384, not BiT's pre-activation ones; tests/test_hybrid.py checks the logits.
        self.backbone = ResNet(ResNetConfig(depths=tuple(depths), in_chans=in_chans, num_classes=0, preact=False,
                                            same_padding=True))
        self.patch_size = patch_size  # P, in input pixels
        self.in_chans = in_chans
        p = patch_size // stride  # patch size on the feature map: 1 for "R50+ViT-B/16"
        self.proj = nn.Conv2d(self.backbone.cfg.num_features, hidden_size, kernel_size=p, stride=p)  # E (init: the ViT)

    def grid_size(self, h: int, w: int) -> tuple[int, int]:
        """Patch grid (H / P, W / P) of an H x W image."""
        return h // self.patch_size, w // self.patch_size

    def feature_map(self, x: Tensor) -> Tensor:
        """The CNN's feature map that replaces the image: (B, C', H/s, W/s)."""
        return self.backbone.forward_features(x)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(self.feature_map(x))  # (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2)  # (B, N, D)

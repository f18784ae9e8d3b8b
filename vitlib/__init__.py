"""vitlib: a notebook-first reproduction of "An Image is Worth 16x16 Words" (Dosovitskiy et al., ICLR 2021)."""

from __future__ import annotations

from torch import nn

from .config import VARIANTS, ViTConfig, known_names, vit_config
from .model import VisionTransformer, resample_pos_embed

__version__ = "0.1.0"
__all__ = ["ViTConfig", "VARIANTS", "VisionTransformer", "create_model", "known_names", "resample_pos_embed",
           "vit_config"]


def create_model(name: str, **overrides) -> nn.Module:
    """Build a model by the paper's name: 'ViT-B/16', 'ViT-L/32', 'ViT-Ti/4', or 'vit_b16'.

    Overrides are `ViTConfig` fields, e.g. `img_size=32, num_classes=10, in_chans=1`.
    An unknown name raises a ValueError that lists the known ones.

    >>> create_model("ViT-Ti/4", img_size=32, num_classes=10).cfg.num_patches
    64
    """
    return VisionTransformer(vit_config(name, **overrides))

"""vitlib: a notebook-first reproduction of "An Image is Worth 16x16 Words" (Dosovitskiy et al., ICLR 2021)."""

from __future__ import annotations

from torch import nn

from .config import VARIANTS, ViTConfig, known_names, vit_config
from .model import VisionTransformer, resample_pos_embed
from .resnet import ResNet, ResNetConfig, parse_resnet_name, resnet_config, resnet_known_names

__version__ = "0.1.0"
__all__ = ["ViTConfig", "VARIANTS", "VisionTransformer", "create_model", "known_names", "resample_pos_embed",
           "vit_config", "ResNet", "ResNetConfig", "resnet_config"]


def create_model(name: str, **overrides) -> nn.Module:
    """Build a model by the paper's name: 'ViT-B/16', 'ViT-L/32', 'ViT-Ti/4', 'vit_b16', a hybrid
    'R50+ViT-B/16' (Section 3.1), or a BiT ResNet baseline 'BiT-R50x1', 'BiT-R152x4' (Section 4.1).

    Overrides are `ViTConfig` fields (`ResNetConfig` fields for a ResNet), e.g. `img_size=32, num_classes=10,
    in_chans=1`. An unknown name raises a ValueError that lists the known ones.

    >>> create_model("ViT-Ti/4", img_size=32, num_classes=10).cfg.num_patches
    64
    >>> create_model("BiT-R26x1", img_size=32, num_classes=10, stem="cifar", base_width=32).cfg.depth
    26
    """
    if parse_resnet_name(name) is not None:
        return ResNet(resnet_config(name, **overrides))
    try:
        cfg = vit_config(name, **overrides)
    except ValueError as e:
        if str(e).startswith("unknown model name"):
            raise ValueError(f"{e}; BiT ResNets: {', '.join(resnet_known_names())} "
                             "('BiT-R<26|50|101|152>x<width>')") from None
        raise
    return VisionTransformer(cfg)

"""vitlib: a notebook-first reproduction of "An Image is Worth 16x16 Words" (Dosovitskiy et al., ICLR 2021)."""

from __future__ import annotations

from .config import VARIANTS, ResNetConfig, TrainConfig, ViTConfig, example_names, known_names, vit_config
from .model import VisionTransformer, create_model, resample_pos_embed
from .resnet import ResNet, resnet_config

__version__ = "0.1.0"
__all__ = ["ViTConfig", "VARIANTS", "VisionTransformer", "create_model", "example_names", "known_names",
           "resample_pos_embed", "vit_config", "ResNet", "ResNetConfig", "resnet_config", "TrainConfig"]

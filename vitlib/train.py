"""Training: one loop for every model that returns logits (ViT, ResNet, hybrid).

Paper: Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021),
Section 4.1 "Training & Fine-tuning" and Appendix B.1:
- pre-training: Adam, beta1 0.9, beta2 0.999, weight decay 0.1, batch 4096,
  linear warm-up (10k steps) then linear decay (`pretrain_recipe`);
- fine-tuning: SGD, momentum 0.9, global-norm gradient clipping at 1, cosine
  decay with a short warm-up, no weight decay, base LR 0.03 with 500 warm-up
  steps in the official code (`finetune_recipe`).
Beyond the paper: `small_data_recipe`, for small ViTs trained on small datasets on a CPU (from scratch or from
the shipped model); benchmarks/time_to_accuracy.py measures it, element by element.
The trainer knows nothing of ViT: it takes an `nn.Module` mapping images
(B, C, H, W) to logits (B, K) and a Dataset of (image, label). Another
pre-training task plugs into the same loop as an `objective` (Section 4.6's
masked patch prediction: vitlib.masked_patches).

Deviations from the paper (each is an option whose default is the paper's, except TF32):
label smoothing and mixup (off by default; the paper uses neither), bf16
autocast and `torch.compile` (speed only), cosine decay for pre-training; on CUDA, fp32 matrix products
run in TF32 (speed only, `_tf32`).

Many devices: under `torchrun` the same `train` runs with
DistributedDataParallel; the global batch `cfg.batch_size` is split evenly
across the ranks (tests/test_train.py::test_ddp_two_processes_match_one). What every rank can rely on
(tests/test_distributed.py): each process uses its local rank's GPU (a bare "cuda" included) and the
process-group backend of its device (NCCL for CUDA, gloo for the CPU); each rank draws its own random numbers
(seed + rank: augmentation, dropout, mixup; the model's initial weights are rank 0's, as DDP broadcasts them);
validation is split across the ranks and summed, so `on_eval` gets the same numbers on every rank and the run
stops on every rank when it returns True on any; a non-finite loss, gradient or weights stops every rank with
the same NonFiniteLossError; rank 0 writes the metrics and the checkpoints, which hold every rank's random
state, so a resumed run equals the uninterrupted one. Pass the same out_dir on every rank to resume.

    model = vitlib.create_model("ViT-Ti/4", img_size=32, num_classes=10)
    history = train(model, train_set, pretrain_recipe(steps=500, batch_size=128, warmup_steps=50),
                    val_set=val_set, out_dir="runs/vit_ti4")
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset
from tqdm.auto import tqdm

from . import checkpoints
from .batches import DeviceBatches, batch_indices
from .config import TrainConfig
from .utils import eval_mode

__all__ = ["TrainConfig", "pretrain_recipe", "finetune_recipe", "small_data_recipe", "RECIPE_AUGMENTATION", "lr_at",
           "evaluate", "train", "make_loader", "build_optimizer", "resolve_device", "resolve_precision", "native_bf16",
           "read_metrics", "NonFiniteLossError", "Objective"]

METRICS_FILE = "metrics.jsonl"
SMALL_DATA_WARMUP = 0.05  # small_data_recipe's warm-up, as a share of the steps
# Each recipe's training augmentation, a vitlib.data.AUGMENTATIONS name (`vitlib finetune --recipe` picks it unless
# --augment is given): the paper's recipes crop and flip; the small-data recipe flips only (small_data_recipe says why).
RECIPE_AUGMENTATION = {"finetune": "crop-flip", "small-data": "flip"}

# A training objective other than classification: (net, images, labels) -> (loss, correct, count), the mean loss
# of the batch and how many of its `count` predictions were right (`train`'s `objective`).
Objective = Callable[[nn.Module, Tensor, Tensor], tuple[Tensor, Tensor | int, int]]


class NonFiniteLossError(ValueError):
    """`train` met a NaN or infinite loss or gradient norm and stopped before that update touched the weights
    (or an update overflowed the weights, and it stopped before a checkpoint held them).

    Attributes: `step` (0-based update, as `lr_at`), `loss` and `grad_norm` there, and `last_finite_loss`
    (None when the first step of the run failed); the last checkpoint in out_dir holds finite weights.
    """

    def __init__(self, message: str, *, step: int, loss: float, grad_norm: float, last_finite_loss: float | None):
        super().__init__(message)
        self.step, self.loss, self.grad_norm, self.last_finite_loss = step, loss, grad_norm, last_finite_loss


def pretrain_recipe(**overrides: Any) -> TrainConfig:
    """Appendix B.1 pre-training: Adam (0.9, 0.999), weight decay 0.1, batch 4096, 10k warm-up steps, linear decay.

    Every field can be overridden, e.g. `pretrain_recipe(steps=2000, batch_size=128, warmup_steps=200)`;
    `schedule="cosine", grad_clip=1.0` is Table 3's ImageNet-1k variant. Unless `warmup_steps` is given (None
    counts as not given), the warm-up is the paper's capped at a tenth of `steps` (`_recipe`). Precision is
    "auto": bf16 autocast where the hardware multiplies bf16 natively, fp32 elsewhere (`resolve_precision`).
    """
    # steps: 7 epochs of JFT-300M at batch 4096 (Table 3) is ~518k; set it for your data.
    paper = dict(optimizer="adamw", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.1, batch_size=4096,
                 warmup_steps=10_000, steps=518_000, schedule="linear", grad_clip=None,
                 precision="auto")  # bf16 where native (figures/precision_accuracy.json: accuracy kept)
    return _recipe(paper, overrides)


def finetune_recipe(**overrides: Any) -> TrainConfig:
    """Appendix B.1.1 fine-tuning: SGD momentum 0.9, clip global norm at 1, cosine with 500 warm-up steps,
    no weight decay, base LR 0.03, batch 512 (the official code's defaults). Unless `warmup_steps` is given, the
    warm-up is the paper's capped at a tenth of `steps`, so a short run keeps a short warm-up:

    >>> finetune_recipe().warmup_steps, finetune_recipe(steps=50).warmup_steps
    (500, 5)
    """
    paper = dict(optimizer="sgd", lr=0.03, momentum=0.9, weight_decay=0.0, grad_clip=1.0, schedule="cosine",
                 warmup_steps=500, batch_size=512, steps=10_000)  # steps: Table 4's CIFAR-10 length
    return _recipe(paper, overrides)


def small_data_recipe(**overrides: Any) -> TrainConfig:
    """Beyond the paper: a recipe for small ViTs on small datasets on a CPU, from scratch or from the shipped model.

    The paper pre-trains on 14M-300M images and fine-tunes; trained from scratch on tens of thousands of images, a
    ViT lags a ResNet unless augmentation and regularization stand in for the data (Steiner et al. 2021, "How to
    train your ViT?", AugReg). This recipe takes its elements from that literature:
    - AdamW, lr 1e-3, betas (0.9, 0.999), decoupled weight decay 0.05 (AugReg's Adam with weight decay; Beyer
      et al. 2022, "Better plain ViT baselines for ImageNet-1k", kept it);
    - batch 128: Beyer et al. went from 4096 to 1024 and lost nothing; on two cores a smaller batch gives more
      updates per second of wall time while keeping the cores busy (benchmarks/train_speed.py measures it);
    - cosine decay after a linear warm-up of 5% of `steps` (Beyer et al.: cosine, a short warm-up);
    - label smoothing 0.1 (Szegedy et al. 2016, as in DeiT and AugReg);
    - gradient clipping at global norm 1 (Beyer et al.; the paper's fine-tuning recipe); the `no-grad-clip` arm of
      benchmarks/time_to_accuracy.py did not tell it apart at 3 seeds a side (on an AMD EPYC), so it keeps its place,
      not shown to matter at this budget;
    - precision "auto": bf16 autocast where the CPU or GPU multiplies bf16 natively, for speed
      (benchmarks/precision_accuracy.py: accuracy kept; the `fp32` arm of benchmarks/time_to_accuracy.py: the same
      minutes see about a third of the images and end lower, over seeds);
    - no mixup or CutMix (`mixup_alpha`, `cutmix_alpha` 0), and on the model no dropout or stochastic depth
      (ViTConfig's defaults): Beyer et al. dropped dropout, and AugReg found that short schedules want less
      regularization than long ones. Adding mixup or CutMix is an arm of the benchmark.
    Augmentation belongs to the data, not the trainer: the recipe's is horizontal flips only
    (`RECIPE_AUGMENTATION["small-data"]`, `get_dataset(..., **vitlib.data.AUGMENTATIONS["flip"])`). The random
    resized crop of the paper's recipes (35-100% of the area) was in it at first and was dropped: at 28 px and
    30 minutes, the `crop-flip` arm of benchmarks/time_to_accuracy.py (the recipe with the crop added back) ended
    lower than the recipe in every seed (RESULTS.md's time-to-accuracy section: the numbers and the test over
    seeds). The model-side options of the same papers are ViTConfig fields: `pool="gap"`
    (global average pooling); fixed 2-D sin-cos position embeddings are not one of vitlib's.

    Every element must earn its place in an ablation row of benchmarks/time_to_accuracy.py: the recipe with that
    element removed, over seeds, at the same wall-clock budget; RESULTS.md's time-to-accuracy section says what
    each one bought and what `vitlib.results.ELEMENT_RULE` (Welch's t, else an equivalence margin, else more
    seeds) does with it. `steps` is a placeholder: set it for your budget (the benchmark sizes it from a measured
    throughput). Unless `warmup_steps` is given (None counts as not given), the warm-up is 5% of `steps`:

    >>> r = small_data_recipe(steps=2000)
    >>> r.optimizer, r.lr, r.weight_decay, r.batch_size, r.schedule, r.warmup_steps
    ('adamw', 0.001, 0.05, 128, 'cosine', 100)
    >>> r.label_smoothing, r.grad_clip, r.precision, r.mixup_alpha, small_data_recipe(warmup_steps=0).warmup_steps
    (0.1, 1.0, 'auto', 0.0, 0)
    """
    recipe = dict(optimizer="adamw", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05, batch_size=128, steps=2000,
                  schedule="cosine", grad_clip=1.0, label_smoothing=0.1, precision="auto")
    kw = {**recipe, **overrides}
    if overrides.get("warmup_steps") is None:
        kw["warmup_steps"] = round(SMALL_DATA_WARMUP * kw["steps"])
    return TrainConfig(**kw)


def _recipe(paper: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """The paper's fields with `overrides`; warmup_steps not given (or None): the paper's, at most steps // 10."""
    # NOTE: at the paper's lengths the cap changes nothing (10k of 518k, 500 of 10k steps: both under a tenth);
    # it keeps `steps=50` from failing on a 500-step warm-up (tests/test_cli.py::test_short_runs_get_a_short_warmup).
    kw = {**paper, **overrides}
    if overrides.get("warmup_steps") is None:
        kw["warmup_steps"] = min(paper["warmup_steps"], kw["steps"] // 10)
    return TrainConfig(**kw)


def lr_at(step: float, cfg: TrainConfig) -> float:
    """Learning rate of update `step` (0-based), as the official code's `create_learning_rate_schedule`:
    lr * min(1, step / warmup) * decay(progress), progress = (step - warmup) / (steps - warmup) in [0, 1];
    "rsqrt" (big_vision's, not the paper's) decays as sqrt(warmup / step) after the warm-up, whatever `steps`.
    A run with a wall-clock budget (`cfg.budget_s`) asks for the step its training time stands for, a fraction.

    >>> cfg = TrainConfig(steps=110, lr=1.0, warmup_steps=10)
    >>> lr_at(0, cfg), lr_at(5, cfg), lr_at(10, cfg), lr_at(60, cfg)
    (0.0, 0.5, 1.0, 0.5)
    >>> rsqrt = TrainConfig(steps=110, lr=1.0, warmup_steps=10, schedule="rsqrt")
    >>> lr_at(5, rsqrt), lr_at(10, rsqrt), lr_at(40, rsqrt)
    (0.5, 1.0, 0.5)
    """
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    progress = min(max(progress, 0.0), 1.0)
    if cfg.schedule == "linear":
        lr = cfg.end_lr + (cfg.lr - cfg.end_lr) * (1.0 - progress)
    elif cfg.schedule == "cosine":
        lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    elif cfg.schedule == "rsqrt":
        lr = cfg.lr * math.sqrt(max(cfg.warmup_steps, 1) / max(step, cfg.warmup_steps, 1))
    else:
        lr = cfg.lr
    if cfg.warmup_steps:
        lr *= min(1.0, step / cfg.warmup_steps)
    return lr


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> "cuda" when CUDA is available, else the CPU; "cuda" without an index -> the local rank's GPU
    (LOCAL_RANK, which torchrun sets; 0 without it), so that the processes of a torchrun job use one GPU each.

    >>> resolve_device("cpu"), resolve_device("cuda:1")
    (device(type='cpu'), device(type='cuda', index=1))
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def _select_device(name: str) -> torch.device:
    """`resolve_device(name)`, made the current CUDA device when it is a GPU: NCCL and every tensor created
    without a device index then use this process's GPU, not GPU 0."""
    device = resolve_device(name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


@contextlib.contextmanager
def _tf32(device: torch.device) -> Iterator[None]:
    """On CUDA, fp32 matrix products and convolutions in TF32 for the `with` block; the settings are restored."""
    # NOTE: speed only: TF32 keeps fp32's range with a 10-bit mantissa in the products, which run on the tensor
    # cores of Ampere and later GPUs (JAX on the paper's TPUs also multiplies fp32 at reduced precision by
    # default). tests/test_train.py::test_tf32_only_on_cuda_and_restored.
    if device.type != "cuda":
        yield
        return
    matmul, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(matmul)
        torch.backends.cudnn.allow_tf32 = cudnn


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam(W) or SGD over all parameters (as the official code: weight decay on every parameter), with PyTorch's
    fused kernel where `cfg.fused_optimizer` and every parameter is on a CPU or CUDA device."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = cfg.fused_optimizer and all(p.device.type in ("cpu", "cuda") for p in params)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=fused)


def _seed_worker(worker_id: int) -> None:
    """DataLoader worker seeding: numpy and random from the worker's torch seed (itself from the loader generator)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class _BatchOrder(Sampler[list[int]]):
    """`vitlib.batches.batch_indices(n, **order)` as a DataLoader's batch sampler: iterable again, with a length."""

    def __init__(self, n: int, **order: Any) -> None:
        self.n, self.order = n, order

    def __iter__(self) -> Iterator[list[int]]:
        return batch_indices(self.n, **self.order)

    def __len__(self) -> int:
        o = self.order
        per_rank = len(DistributedSampler(range(self.n), num_replicas=o["world_size"], rank=o["rank"],
                                          drop_last=o["drop_last"]))
        per_epoch = per_rank // o["batch_size"] if o["drop_last"] else -(-per_rank // o["batch_size"])
        return max(per_epoch * o["epochs"] - o["skip_batches"], 0)


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                skip_batches: int = 0, num_workers: int = 0, rank: int = 0, world_size: int = 1,
                generator: torch.Generator | None = None, drop_last: bool = True, epochs: int = 1,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader over `epochs` consecutive epochs from `epoch` (one epoch by default). Each epoch's order
    depends only on (seed, epoch): `DistributedSampler`'s permutation, rank r taking every world_size-th index,
    so the union of the ranks' batches at each step is the batch a single process would see; with `drop_last`
    each epoch drops its own last partial batch. `skip_batches` starts mid-epoch (resume) without loading the
    skipped images. Worker seeds come from `generator`, by default one seeded by (seed, epoch, rank), so the
    ranks' workers draw different augmentations. `pin_memory`: page-locked batches, for a copy to a GPU that
    overlaps computation (`non_blocking=True`)."""
    # A DataLoader draws its workers' base seed from its generator each time it is iterated (even with
    # num_workers=0), so the generator is the loader's own, not the trainer's: a resumed run then draws the same
    # numbers (tests/test_train.py::test_resume_is_bitwise_identical). `train` iterates one loader over the whole
    # run, so its workers start once; with num_workers > 0 and random augmentation, a resumed run's workers start
    # from another seed, so only num_workers=0 is bitwise exact.
    if generator is None:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch + rank * 1_000_003)
    batches = _BatchOrder(len(dataset), batch_size=batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                          skip_batches=skip_batches, rank=rank, world_size=world_size, drop_last=drop_last,
                          epochs=epochs)
    return DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, worker_init_fn=_seed_worker,
                      generator=generator, pin_memory=pin_memory)


@functools.cache  # called by every training step's autocast: the hardware does not change
def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 natively: a CUDA GPU with bf16 support, or a CPU with AMX tiles or
    AVX512-BF16. Elsewhere bf16 is emulated and slower than fp32 (figures/train_speed.json)."""
    if device.type == "cuda":  # emulated bf16 (V100, T4) is slower than fp32
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return any(getattr(torch.cpu, f"_is_{name}_supported", lambda: False)() for name in ("amx_tile", "avx512_bf16"))
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> "bf16" where `native_bf16(device)`, else "fp32"; "fp32" and "bf16" stay as they are.

    >>> resolve_precision("fp32", torch.device("cpu")), resolve_precision("bf16", torch.device("cpu"))
    ('fp32', 'bf16')
    """
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_precision(precision, device) == "bf16")


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset | Iterable, batch_size: int = 256,
             device: str | torch.device | None = None, precision: str = "fp32") -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy of `model` on a Dataset or a loader of (images, labels).

    The model's train/eval mode is restored afterwards; nothing else changes.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loss_sum, correct, n = _eval_sums(model, data, batch_size, device, precision)
    if n == 0:
        raise ValueError("evaluate got an empty dataset or loader: pass at least one (image, label) pair")
    return dict(loss=loss_sum / n, accuracy=correct / n, n=n)


def _eval_sums(model: nn.Module, data: Dataset | Iterable, batch_size: int, device: torch.device,
               precision: str) -> tuple[float, int, int]:
    """(summed cross-entropy, correct, count) of `model` on `data`, in eval mode; (0, 0, 0) for no data."""
    # its own generator: evaluating never draws from the global RNG, so it cannot change a training run
    loader = (DataLoader(data, batch_size=batch_size, shuffle=False, generator=torch.Generator().manual_seed(0),
                         pin_memory=device.type == "cuda") if isinstance(data, Dataset) else data)
    loss_sum, correct, n = 0.0, 0, 0
    with eval_mode(model):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True)
            with _autocast(device, precision):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
            n += y.numel()
    return loss_sum, correct, n


@torch.no_grad()
def _validate(model: nn.Module, val_set: Dataset, cfg: TrainConfig, device: torch.device, rank: int,
              world: int) -> dict[str, float]:
    """`evaluate` split across the ranks: rank r takes every world-th image and the sums are added up, so every
    rank gets the same numbers (one process: `evaluate` itself)."""
    shard = val_set if world == 1 else Subset(val_set, range(rank, len(val_set), world))
    sums = _eval_sums(model, shard, cfg.eval_batch_size, device, cfg.precision)
    if world > 1:
        total = torch.tensor(sums, dtype=torch.float64, device=device)
        dist.all_reduce(total)
        sums = tuple(total.tolist())
    loss_sum, correct, n = sums
    return dict(loss=loss_sum / n, accuracy=correct / n, n=int(n))


def _loss(logits: Tensor, y: Tensor, y2: Tensor | None, lam: float, label_smoothing: float) -> Tensor:
    loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    if y2 is not None:  # mixup: the same mixture of the two targets' losses
        loss = lam * loss + (1 - lam) * F.cross_entropy(logits.float(), y2, label_smoothing=label_smoothing)
    return loss


def _mixup(x: Tensor, y: Tensor, alpha: float, generator: torch.Generator) -> tuple[Tensor, Tensor | None, float]:
    """Mixup (Zhang et al. 2018; not in the paper): x = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha)."""
    if alpha <= 0:
        return x, None, 1.0
    lam = float(torch.distributions.Beta(alpha, alpha).sample())  # global CPU RNG (saved in checkpoints)
    perm = torch.randperm(x.shape[0], generator=generator, device=x.device)  # generator: on x's device
    return lam * x + (1 - lam) * x[perm], y[perm], lam


def _cutmix(x: Tensor, y: Tensor, alpha: float, generator: torch.Generator) -> tuple[Tensor, Tensor | None, float]:
    """CutMix (Yun et al. 2019; not in the paper): a box of about 1 - lam of the image, lam ~ Beta(alpha, alpha),
    pasted from x[perm]; lam becomes the share of pixels kept. The box is drawn on the CPU (no host sync)."""
    if alpha <= 0:
        return x, None, 1.0
    lam = float(torch.distributions.Beta(alpha, alpha).sample())  # global CPU RNG (saved in checkpoints)
    H, W = x.shape[-2:]
    h, w = round(H * math.sqrt(1 - lam)), round(W * math.sqrt(1 - lam))
    top, left = (int(torch.randint(n - m + 1, ())) for n, m in ((H, h), (W, w)))
    perm = torch.randperm(x.shape[0], generator=generator, device=x.device)
    mixed = x.clone()
    mixed[..., top:top + h, left:left + w] = x[perm][..., top:top + h, left:left + w]
    return mixed, y[perm], 1 - h * w / (H * W)


def _dist_info(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world_size, we_initialised): joins the process group that torchrun's environment describes, with
    the backend of the device the tensors are on (NCCL for CUDA, gloo for the CPU)."""
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), dist.get_world_size(), True
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "nccl" and device.type != "cuda":
            raise ValueError(f"the process group uses NCCL, which reduces CUDA tensors only, and the device is "
                             f"{device}: initialise it with the gloo backend, or train on cuda")
        return dist.get_rank(), dist.get_world_size(), False
    return 0, 1, False


def _on_any_rank(flag: bool, device: torch.device, world: int) -> bool:
    """True on every rank when `flag` is True on at least one (a collective: every rank calls it)."""
    if world == 1:
        return flag
    t = torch.tensor(float(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(out_dir: str | os.PathLike) -> dict[str, list[dict]]:
    """The metrics a run appended to out_dir/metrics.jsonl, as {"train": [...], "val": [...]}."""
    history: dict[str, list[dict]] = {"train": [], "val": []}
    path = Path(out_dir) / METRICS_FILE
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            history[rec.pop("split")].append(rec)
    return history


def _truncate_metrics(out_dir: Path, step: int) -> None:
    """On resume, drop the records written after the checkpoint we restart from."""
    path = out_dir / METRICS_FILE
    if path.exists():
        keep = [ln for ln in path.read_text().splitlines() if json.loads(ln)["step"] <= step]
        path.write_text("".join(ln + "\n" for ln in keep))


def _non_finite(step: int, lr: float, loss: Tensor, grad_norm: Tensor, last_loss: tuple[int, Tensor] | None,
                cfg: TrainConfig, out: Path | None, what: str | None = None) -> NonFiniteLossError:
    """The error `train` raises at a non-finite loss, gradient norm or weights: where, the last finite loss, what
    to try. Under DDP `loss` is the mean over the ranks, so every rank raises the same error."""
    loss_v, norm_v = loss.item(), grad_norm.item()
    what = what or ("loss" if not math.isfinite(loss_v) else "gradient norm")
    last = (f"the last finite loss was {last_loss[1].item():.4g} at step {last_loss[0]}" if last_loss is not None
            else "no step of this run had a finite loss yet")
    kept = checkpoints.latest_checkpoint(out) if out is not None else None
    where = (f"the last checkpoint, {kept}, holds finite weights: with the same TrainConfig, resume=True continues "
             "from it; with another (lr, precision, grad_clip), start a new out_dir from its weights "
             "(vitlib.checkpoints.load_checkpoint(path, model))" if kept is not None else "no checkpoint was written")
    tips = [f"a lower learning rate (lr={cfg.lr:g}; {lr:.3g} at this step)"]
    bf16_on = resolve_precision(cfg.precision, loss.device) == "bf16"
    if bf16_on:
        tips.append(f"precision='fp32' (bf16 autocast is on{' by auto' if cfg.precision == 'auto' else ''})")
    tips += [f"a smaller grad_clip than {cfg.grad_clip:g}" if cfg.grad_clip else "gradient clipping (grad_clip=1.0)"]
    stopped = "before checkpointing them" if what.startswith("weights") else "before this update"
    msg = (f"non-finite {what} at step {step} (loss {loss_v}, gradient norm {norm_v}): training stopped {stopped}; "
           f"{last}; {where}. Check the inputs for NaN/inf values, then try {', '.join(tips[:-1])} or {tips[-1]}.")
    return NonFiniteLossError(msg, step=step, loss=loss_v, grad_norm=norm_v,
                              last_finite_loss=None if last_loss is None else last_loss[1].item())


def _loss_and_norm(loss: Tensor, grad_norm: Tensor, world: int) -> Tensor:
    """(loss, gradient norm) as one tensor, the loss averaged over the ranks (a collective under DDP): a NaN on
    one rank reaches every rank, so that all of them stop at the same step."""
    check = torch.stack([loss.detach().float(), grad_norm.float()])
    if world > 1:
        dist.all_reduce(check)
        check /= world
    return check


def _weights_finite(model: nn.Module, device: torch.device, world: int) -> bool:
    """Whether every weight is finite on every rank (a collective under DDP: all ranks get the same answer)."""
    finite = torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all()
    return not _on_any_rank(not bool(finite.item()), device, world)


def _rng_states(generator: torch.Generator, world: int) -> list[dict] | None:
    """Every rank's RNG state (`checkpoints.capture_rng`) in rank order on rank 0, None on the others (a
    collective under DDP)."""
    state = checkpoints.capture_rng(generator)
    if world == 1:
        return [state]
    states = [None] * world if dist.get_rank() == 0 else None
    dist.gather_object(state, states, dst=0)
    return states


def _resume(out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
            generator: torch.Generator, rank: int, world: int) -> tuple[int, float, float, bool]:
    """Load the newest checkpoint in `out` (weights, optimizer, this rank's RNG state); its step, the run's
    wall seconds so far, its training seconds so far (evaluations and checkpoints excluded) and whether `on_eval`
    had stopped the run there; (0, 0.0, 0.0, False) without one."""
    last = checkpoints.latest_checkpoint(out)
    if last is None:
        return 0, 0.0, 0.0, False
    state = checkpoints.load_checkpoint(last, model, optimizer, expect_train_config=cfg)
    rngs = state.get("rng", [])
    if len(rngs) == world:
        checkpoints.restore_rng(rngs[rank], generator)
    else:
        warnings.warn(f"{last.name} holds the random state of {len(rngs)} process(es) and this run has {world}: "
                      f"each rank draws from seed + rank again, so the run goes on but is not the uninterrupted one; "
                      f"resume with {len(rngs)} process(es) for an exact continuation", stacklevel=3)
    extra = state.get("extra", {})
    return (state["step"], float(extra.get("seconds", 0.0)), float(extra.get("train_seconds", 0.0)),
            bool(extra.get("stopped", False)))


def _prepare_out(out: Path | None, step: int, rank: int, world: int) -> dict[str, list[dict]]:
    """Rank 0 creates out_dir and drops the metrics after `step` (none at step 0); then every rank reads them."""
    if out is not None and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if step == 0:
            (out / METRICS_FILE).unlink(missing_ok=True)
        else:
            _truncate_metrics(out, step)
    if world > 1:
        dist.barrier()  # no rank reads the metrics before rank 0 has rewritten them
    return read_metrics(out) if (out is not None and step > 0) else {"train": [], "val": []}


def _check_inputs(train_set: Dataset, val_set: Dataset | None, cfg: TrainConfig, objective: Objective | None,
                  world: int) -> None:
    """ValueErrors for what cannot train, found before any work."""
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({world})")
    if (len(train_set) // world) // (cfg.batch_size // world) == 0:
        raise ValueError(f"the training set ({len(train_set)} images) is smaller than one global batch "
                         f"({cfg.batch_size}): lower batch_size or use more data")
    if objective is not None and (val_set is not None or cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0
                                  or cfg.label_smoothing > 0):
        raise ValueError("a custom objective trains without val_set, mixup_alpha, cutmix_alpha or label_smoothing "
                         "(they are classification's): evaluate with the objective's own function after training")
    if val_set is not None and len(val_set) == 0:  # found now, not after the whole run
        raise ValueError("val_set is empty: pass at least one (image, label) pair, or val_set=None")
    if cfg.budget_s is not None and world > 1:
        raise ValueError("budget_s (a wall-clock budget) is for one process: under torchrun each rank has its own "
                         "clock and they would stop at different steps; size the run in steps instead")


def train(model: nn.Module, train_set: Dataset, cfg: TrainConfig, val_set: Dataset | None = None,
          out_dir: str | os.PathLike | None = None, resume: bool = False,
          on_eval: Callable[[int, dict[str, float]], bool | None] | None = None,
          objective: Objective | None = None) -> dict[str, list[dict]]:
    """Train `model` (any module returning logits) on `train_set` for `cfg.steps` updates.

    Returns the history {"train": [{step, lr, loss, accuracy, images_per_s, seconds}], "val": [{step, loss,
    accuracy}]}, also appended to out_dir/metrics.jsonl; "seconds" is the run's wall time so far, evaluations
    included and carried across a resume (the checkpoints record it). With `out_dir`, checkpoints are written there
    (every `cfg.checkpoint_every` steps and at the end); `resume=True` restarts from the newest one and ends
    with the same weights as an uninterrupted run (no checkpoint yet: starts from scratch).
    Under torchrun the model is wrapped in DistributedDataParallel and each rank takes batch_size / world; every
    rank returns the same history (the module docstring says what else the ranks share).
    A NaN or infinite loss or gradient norm raises NonFiniteLossError before that update is applied.
    `on_eval(step, {"loss", "accuracy", "n"})` is called after each validation, with the model in its state at
    that step, on every rank with the same numbers: a caller keeps the best validation state this way
    (vitlib.experiments.scaling); when it returns True (on any rank) the run stops there on every rank (early
    stopping: a learning curve that has flattened); resumed from the checkpoint of that step, it trains nothing.
    With `cfg.budget_s` the run has a wall-clock budget: the learning rate at each step is `lr_at` of the step its
    training time so far stands for (time / budget_s of `cfg.steps`), so the warm-up and decay end with the budget
    whatever the machine's speed, and the run stops when the time is spent; evaluations and checkpoints do not
    count, and the training time is carried across a resume. Such a run is not reproducible bit for bit (its
    steps and learning rates depend on the clock).
    `objective(net, images, labels) -> (loss, correct, count)` replaces the classification loss (Eq. 4's head,
    cross-entropy) for another pre-training task, e.g. Section 4.6's masked patch prediction
    (vitlib.masked_patches.mpp_objective); it runs under the same autocast, and "accuracy" in the history is correct /
    count. With an objective there is no val_set, mixup or label smoothing (they belong to classification).
    """
    device = _select_device(cfg.device)
    rank, world, own_group = _dist_info(device)
    _check_inputs(train_set, val_set, cfg, objective, world)
    local_batch = cfg.batch_size // world
    steps_per_epoch = (len(train_set) // world) // local_batch
    # each rank its own random numbers (augmentation, dropout, mixup); the weights are rank 0's (DDP broadcasts them)
    torch.manual_seed(cfg.seed + rank)
    raw = model.to(device)
    optimizer = build_optimizer(raw, cfg)
    gen = torch.Generator(device).manual_seed(cfg.seed + rank)  # the trainer's own draws (mixup permutations)
    out = Path(out_dir) if out_dir is not None else None
    step, seconds0, trained0, stop = (_resume(out, raw, optimizer, cfg, gen, rank, world)
                                      if out is not None and resume else (0, 0.0, 0.0, False))
    # stop: on_eval asked to stop (early stopping)
    t_start = time.perf_counter() - seconds0  # the run's wall clock, carried across a resume
    t_train = time.perf_counter() - trained0  # the same without evaluations and checkpoints (they shift it)
    budget = cfg.budget_s if cfg.budget_s is not None else math.inf
    trained = trained0
    spent = trained >= budget  # the wall-clock budget is spent
    history = _prepare_out(out, step, rank, world)
    net: nn.Module = raw
    if world > 1:
        net = nn.parallel.DistributedDataParallel(raw, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)

    def log(split: str, record: dict) -> None:
        history[split].append(record)
        if out is not None and rank == 0:
            _append_jsonl(out / METRICS_FILE, {"split": split, **record})

    def run_eval() -> bool:
        """Validate at `step` (every rank, the same numbers); True on every rank when `on_eval` asks to stop."""
        if val_set is None or (history["val"] and history["val"][-1]["step"] == step):
            return False
        res = _validate(raw, val_set, cfg, device, rank, world)
        log("val", dict(step=step, loss=res["loss"], accuracy=res["accuracy"]))
        if cfg.progress and rank == 0:
            bar.write(f"step {step}: val loss {res['loss']:.4f}, val accuracy {res['accuracy']:.4f}")
        return _on_any_rank(bool(on_eval(step, res)) if on_eval is not None else False, device, world)

    timed = cfg.budget_s is not None  # the bar counts seconds of the budget, else steps
    bar = tqdm(total=round(budget) if timed else cfg.steps, initial=round(trained0) if timed else step,
               disable=not cfg.progress or rank != 0, desc="train", unit="s" if timed else "step")
    net.train()
    loss_sum, correct_sum = torch.zeros((), device=device), torch.zeros((), device=device)  # since the last log
    counts = [0, 0]  # predictions and images since the last log, known on the host
    t_log = time.perf_counter()
    last_loss: tuple[int, Tensor] | None = None  # (step, loss) of the last finite step, for NonFiniteLossError
    epoch, skip = divmod(step, steps_per_epoch)
    order = dict(shuffle=True, seed=cfg.seed, epoch=epoch, skip_batches=skip, rank=rank, world_size=world,
                 epochs=-(-(cfg.steps - step + skip) // steps_per_epoch))
    loader = (DeviceBatches(train_set, device).loader(local_batch, **order) if cfg.data_on_device else
              make_loader(train_set, local_batch, num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                          **order))
    with _tf32(device):
        for x, y in loader if step < cfg.steps and not stop and not spent else ():  # resumed at the end: none
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            lr = lr_at(step if not timed else cfg.steps * min((time.perf_counter() - t_train) / budget, 1.0), cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if objective is None:  # classification: Eq. 4's head, cross-entropy (with mixup or CutMix when asked)
                xm, y2, lam = (_cutmix(x, y, cfg.cutmix_alpha, gen) if cfg.cutmix_alpha > 0
                               else _mixup(x, y, cfg.mixup_alpha, gen))
                with _autocast(device, cfg.precision):
                    logits = net(xm)
                loss = _loss(logits, y, y2, lam, cfg.label_smoothing)
                correct, count = (logits.argmax(-1) == y).sum(), y.numel()
            else:
                with _autocast(device, cfg.precision):
                    loss, correct, count = objective(net, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                grad_norm = torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
            else:
                grad_norm = torch.nn.utils.get_total_norm([p.grad for p in raw.parameters() if p.grad is not None])
            check = _loss_and_norm(loss, grad_norm, world)
            # the one host sync per step: a non-finite update never reaches the weights or a checkpoint
            # (tests/test_reliability.py::test_nan_pixel_stops_training_and_keeps_the_last_checkpoint)
            if not torch.isfinite(check).all().item():
                bar.close()
                raise _non_finite(step, lr, check[0], check[1], last_loss, cfg, out)
            last_loss = (step, check[0])
            optimizer.step()
            step += 1
            loss_sum.add_(loss.detach().float() * count)  # on the device: no sync
            correct_sum.add_(correct)
            counts[0] += count
            counts[1] += y.numel()
            trained = time.perf_counter() - t_train
            spent = trained >= budget
            end = step == cfg.steps or spent
            if step % cfg.log_every == 0 or end:
                totals = torch.cat([torch.stack([loss_sum, correct_sum]), torch.tensor(counts).float().to(device)])
                if world > 1:
                    dist.all_reduce(totals)
                dt = time.perf_counter() - t_log
                s = totals.tolist()
                rec = dict(step=step, lr=lr, loss=s[0] / s[2], accuracy=s[1] / s[2], images_per_s=s[3] / dt,
                           seconds=round(time.perf_counter() - t_start, 2))
                log("train", rec)
                bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['accuracy']:.3f}",
                                img_s=f"{rec['images_per_s']:.0f}")
                loss_sum.zero_(), correct_sum.zero_()
                counts = [0, 0]
                t_log = time.perf_counter()
            bar.update(min(round(trained), bar.total) - bar.n if timed else 1)
            t_pause = time.perf_counter()  # evaluation and checkpoints count neither in images/s nor in training time
            if not end and ((cfg.eval_every and step % cfg.eval_every == 0) or step in cfg.eval_steps):
                stop = run_eval()
            if (out is not None or world > 1) and (end or stop or (cfg.checkpoint_every and
                                                                   step % cfg.checkpoint_every == 0)):
                # a finite update can still overflow the weights (an absurd lr): never checkpoint them
                if not _weights_finite(raw, device, world):
                    bar.close()
                    raise _non_finite(step - 1, lr, check[0], check[1], last_loss, cfg, out,
                                      what="weights after the update")
                rngs = _rng_states(gen, world)  # every rank's, so that a resumed DDP run draws what this one would
                if out is not None and rank == 0:
                    checkpoints.save_checkpoint(out / f"step_{step:07d}", raw, train_config=cfg, step=step,
                                                optimizer=optimizer, rng=rngs,
                                                extra=dict(seconds=round(time.perf_counter() - t_start, 2),
                                                           train_seconds=round(trained, 3), stopped=stop))
                    checkpoints.prune_checkpoints(out, cfg.keep_checkpoints)
            paused = time.perf_counter() - t_pause
            t_log += paused
            t_train += paused
            if end or stop:
                break
        run_eval()
    bar.close()
    if timed and step >= cfg.steps and not spent and not stop and rank == 0:
        warnings.warn(f"the run reached steps={cfg.steps} after {trained:.0f} s of its "
                      f"budget_s={cfg.budget_s:g}: its schedule stopped before its end; size steps above the steps "
                      "the budget holds", stacklevel=2)
    if world > 1:
        dist.barrier()
    if own_group:
        dist.destroy_process_group()
    return history

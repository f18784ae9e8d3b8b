"""Training: one loop for every model that returns logits (ViT, ResNet, hybrid).

Paper: Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021),
Section 4.1 "Training & Fine-tuning" and Appendix B.1:
- pre-training: Adam, beta1 0.9, beta2 0.999, weight decay 0.1, batch 4096,
  linear warm-up (10k steps) then linear decay (`pretrain_recipe`);
- fine-tuning: SGD, momentum 0.9, global-norm gradient clipping at 1, cosine
  decay with a short warm-up, no weight decay, base LR 0.03 with 500 warm-up
  steps in the official code (`finetune_recipe`).
The trainer knows nothing of ViT: it takes an `nn.Module` mapping images
(B, C, H, W) to logits (B, K) and a Dataset of (image, label). Another
pre-training task plugs into the same loop as an `objective` (Section 4.6's
masked patch prediction: vitlib.mpp).

Deviations from the paper (each is an option whose default is the paper's):
label smoothing and mixup (off by default; the paper uses neither), bf16
autocast and `torch.compile` (speed only), cosine decay for pre-training.

Many devices: under `torchrun` the same `train` runs with
DistributedDataParallel; the global batch `cfg.batch_size` is split evenly
across the ranks, rank 0 logs and writes checkpoints
(tests/test_train.py::test_ddp_two_processes_match_one).

    model = vitlib.create_model("ViT-Ti/4", img_size=32, num_classes=10)
    history = train(model, train_set, pretrain_recipe(steps=500, batch_size=128, warmup_steps=50),
                    val_set=val_set, out_dir="runs/vit_ti4")
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from . import checkpoints
from .config import TrainConfig
from .utils import eval_mode

__all__ = ["TrainConfig", "pretrain_recipe", "finetune_recipe", "lr_at", "evaluate", "train", "make_loader",
           "build_optimizer", "resolve_device", "resolve_precision", "native_bf16", "read_metrics",
           "NonFiniteLossError", "Objective"]

METRICS_FILE = "metrics.jsonl"

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


def _recipe(paper: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    """The paper's fields with `overrides`; warmup_steps not given (or None): the paper's, at most steps // 10."""
    # NOTE: at the paper's lengths the cap changes nothing (10k of 518k, 500 of 10k steps: both under a tenth);
    # it keeps `steps=50` from failing on a 500-step warm-up (tests/test_cli.py::test_short_runs_get_a_short_warmup).
    kw = {**paper, **overrides}
    if overrides.get("warmup_steps") is None:
        kw["warmup_steps"] = min(paper["warmup_steps"], kw["steps"] // 10)
    return TrainConfig(**kw)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of update `step` (0-based), as the official code's `create_learning_rate_schedule`:
    lr * min(1, step / warmup) * decay(progress), progress = (step - warmup) / (steps - warmup) in [0, 1];
    "rsqrt" (big_vision's, not the paper's) decays as sqrt(warmup / step) after the warm-up, whatever `steps`.

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
    """'auto' -> the local rank's GPU when CUDA is available, else the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam(W) or SGD over all parameters (as the official code: weight decay on every parameter)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _seed_worker(worker_id: int) -> None:
    """DataLoader worker seeding: numpy and random from the worker's torch seed (itself from the loader generator)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0,
                skip_batches: int = 0, num_workers: int = 0, rank: int = 0, world_size: int = 1,
                generator: torch.Generator | None = None, drop_last: bool = True) -> DataLoader:
    """One epoch's DataLoader. The order depends only on (seed, epoch): `DistributedSampler`'s permutation,
    rank r taking every world_size-th index, so the union of the ranks' batches at each step is the batch a
    single process would see. `skip_batches` starts mid-epoch (resume) without loading the skipped images.
    Worker seeds come from `generator`, by default one seeded by (seed, epoch)."""
    # A DataLoader draws its workers' base seed from its generator each time it is iterated (even with
    # num_workers=0), so the generator is per epoch, not the trainer's: a resumed run then draws the same
    # numbers (tests/test_train.py::test_resume_is_bitwise_identical). With num_workers > 0 and random
    # augmentation, a resume mid-epoch gives the workers other batches, so only num_workers=0 is bitwise exact.
    if generator is None:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=drop_last)
    sampler.set_epoch(epoch)
    indices = list(sampler)[skip_batches * batch_size:]
    return DataLoader(dataset, batch_size=batch_size, sampler=indices, drop_last=drop_last,
                      num_workers=num_workers, worker_init_fn=_seed_worker, generator=generator,
                      persistent_workers=False, pin_memory=False)


@functools.cache  # called by every training step's autocast: the hardware does not change
def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 natively: a CUDA GPU with bf16 support, or a CPU with AMX tiles or
    AVX512-BF16. Elsewhere bf16 is emulated and slower than fp32 (figures/train_speed.json)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
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
    # its own generator: evaluating never draws from the global RNG, so it cannot change a training run
    loader = (DataLoader(data, batch_size=batch_size, shuffle=False, generator=torch.Generator().manual_seed(0))
              if isinstance(data, Dataset) else data)
    loss_sum, correct, n = 0.0, 0, 0
    with eval_mode(model):
        for x, y in loader:
            x, y = x.to(device), torch.as_tensor(y).to(device)
            with _autocast(device, precision):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
            n += y.numel()
    if n == 0:
        raise ValueError("evaluate got an empty dataset or loader: pass at least one (image, label) pair")
    return dict(loss=loss_sum / n, accuracy=correct / n, n=n)


def _loss(logits: Tensor, y: Tensor, y2: Tensor | None, lam: float, label_smoothing: float) -> Tensor:
    loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    if y2 is not None:  # mixup: the same mixture of the two targets' losses
        loss = lam * loss + (1 - lam) * F.cross_entropy(logits.float(), y2, label_smoothing=label_smoothing)
    return loss


def _mixup(x: Tensor, y: Tensor, alpha: float, generator: torch.Generator) -> tuple[Tensor, Tensor | None, float]:
    """Mixup (Zhang et al. 2018; not in the paper): x = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha)."""
    if alpha <= 0:
        return x, None, 1.0
    lam = float(torch.distributions.Beta(alpha, alpha).sample())  # global torch RNG (saved in checkpoints)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], y[perm], lam


def _dist_info() -> tuple[int, int, bool]:
    """(rank, world_size, we_initialised): joins the process group that torchrun's environment describes."""
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size(), True
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    return 0, 1, False


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
                cfg: TrainConfig, out: Path | None, rank: int, what: str | None = None) -> NonFiniteLossError:
    """The error `train` raises at a non-finite loss, gradient norm or weights: where, the last finite loss, what
    to try."""
    loss_v, norm_v = loss.item(), grad_norm.item()
    what = what or ("loss" if not math.isfinite(loss_v) else "gradient norm")
    last = (f"the last finite loss was {last_loss[1].item():.4g} at step {last_loss[0]}" if last_loss is not None
            else "no step of this run had a finite loss yet")
    kept = checkpoints.latest_checkpoint(out) if out is not None and rank == 0 else None
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


def train(model: nn.Module, train_set: Dataset, cfg: TrainConfig, val_set: Dataset | None = None,
          out_dir: str | os.PathLike | None = None, resume: bool = False,
          on_eval: Callable[[int, dict[str, float]], bool | None] | None = None,
          objective: Objective | None = None) -> dict[str, list[dict]]:
    """Train `model` (any module returning logits) on `train_set` for `cfg.steps` updates.

    Returns the history {"train": [{step, lr, loss, accuracy, images_per_s, seconds}], "val": [{step, loss,
    accuracy}]}, also appended to out_dir/metrics.jsonl. With `out_dir`, checkpoints are written there
    (every `cfg.checkpoint_every` steps and at the end); `resume=True` restarts from the newest one and ends
    with the same weights as an uninterrupted run (no checkpoint yet: starts from scratch).
    Under torchrun the model is wrapped in DistributedDataParallel and each rank takes batch_size / world.
    A NaN or infinite loss or gradient norm raises NonFiniteLossError before that update is applied.
    `on_eval(step, {"loss", "accuracy", "n"})` is called (rank 0) after each validation, with the model in its
    state at that step: a caller keeps the best validation state this way (vitlib.experiments.scaling); when it
    returns True the run stops there (early stopping: a learning curve that has flattened).
    `objective(net, images, labels) -> (loss, correct, count)` replaces the classification loss (Eq. 4's head,
    cross-entropy) for another pre-training task, e.g. Section 4.6's masked patch prediction
    (vitlib.mpp.mpp_objective); it runs under the same autocast, and "accuracy" in the history is correct /
    count. With an objective there is no val_set, mixup or label smoothing (they belong to classification).
    """
    rank, world, own_group = _dist_info()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of processes ({world})")
    local_batch = cfg.batch_size // world
    steps_per_epoch = (len(train_set) // world) // local_batch
    if steps_per_epoch == 0:
        raise ValueError(f"the training set ({len(train_set)} images) is smaller than one global batch "
                         f"({cfg.batch_size}): lower batch_size or use more data")
    if objective is not None and (val_set is not None or cfg.mixup_alpha > 0 or cfg.label_smoothing > 0):
        raise ValueError("a custom objective trains without val_set, mixup_alpha or label_smoothing (they are "
                         "classification's): evaluate with the objective's own function after training")
    if val_set is not None and len(val_set) == 0:  # found now, not after the whole run
        raise ValueError("val_set is empty: pass at least one (image, label) pair, or val_set=None")
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    raw = model.to(device)
    optimizer = build_optimizer(raw, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)  # the trainer's own draws (mixup permutations)
    out = Path(out_dir) if out_dir is not None else None
    step = 0
    if out is not None and resume:
        last = checkpoints.latest_checkpoint(out)
        if last is not None:
            state = checkpoints.load_checkpoint(last, raw, optimizer, expect_train_config=cfg)
            step = state["step"]
            checkpoints.restore_rng(state["rng"], gen)
            if rank == 0:
                _truncate_metrics(out, step)
    if out is not None and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if step == 0:
            (out / METRICS_FILE).unlink(missing_ok=True)
    net: nn.Module = raw
    if world > 1:
        net = nn.parallel.DistributedDataParallel(raw, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)
    history = read_metrics(out) if (out is not None and step > 0) else {"train": [], "val": []}

    def log(split: str, record: dict) -> None:
        history[split].append(record)
        if out is not None and rank == 0:
            _append_jsonl(out / METRICS_FILE, {"split": split, **record})

    def run_eval() -> bool:
        """Validate at `step` (rank 0); True when `on_eval` asks to stop."""
        if val_set is None or rank != 0 or (history["val"] and history["val"][-1]["step"] == step):
            return False
        res = evaluate(raw, val_set, cfg.eval_batch_size, device, cfg.precision)
        log("val", dict(step=step, loss=res["loss"], accuracy=res["accuracy"]))
        if cfg.progress:
            bar.write(f"step {step}: val loss {res['loss']:.4f}, val accuracy {res['accuracy']:.4f}")
        return bool(on_eval(step, res)) if on_eval is not None else False

    bar = tqdm(total=cfg.steps, initial=step, disable=not cfg.progress or rank != 0, desc="train", unit="step")
    net.train()
    sums = torch.zeros(4, device=device)  # loss * count, correct, count (predictions), images since the last log
    t_log = time.perf_counter()
    last_loss: tuple[int, Tensor] | None = None  # (step, loss) of the last finite step, for NonFiniteLossError
    stop = False  # on_eval asked to stop (early stopping)
    while step < cfg.steps and not stop:
        epoch, skip = divmod(step, steps_per_epoch)
        loader = make_loader(train_set, local_batch, shuffle=True, seed=cfg.seed, epoch=epoch, skip_batches=skip,
                             num_workers=cfg.num_workers, rank=rank, world_size=world)
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if objective is None:  # classification: Eq. 4's head, cross-entropy (with mixup when asked)
                xm, y2, lam = _mixup(x, y, cfg.mixup_alpha, gen)
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
            # the one host sync per step: a non-finite update never reaches the weights or a checkpoint
            # (tests/test_reliability.py::test_nan_pixel_stops_training_and_keeps_the_last_checkpoint)
            if not torch.isfinite(torch.stack([loss.detach().float(), grad_norm.float()])).all().item():
                bar.close()
                raise _non_finite(step, lr, loss, grad_norm, last_loss, cfg, out, rank)
            last_loss = (step, loss.detach())
            optimizer.step()
            step += 1
            counts = torch.tensor([float(count), float(y.numel())], device=device)  # predictions, images
            sums += torch.cat([torch.stack([loss.detach().float() * count,
                                            torch.as_tensor(correct, device=device).float()]), counts])
            if step % cfg.log_every == 0 or step == cfg.steps:
                if world > 1:
                    dist.all_reduce(sums)
                dt = time.perf_counter() - t_log
                s = sums.tolist()
                rec = dict(step=step, lr=lr, loss=s[0] / s[2], accuracy=s[1] / s[2], images_per_s=s[3] / dt)
                log("train", rec)
                bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['accuracy']:.3f}",
                                img_s=f"{rec['images_per_s']:.0f}")
                sums.zero_()
                t_log = time.perf_counter()
            bar.update(1)
            t_pause = time.perf_counter()  # evaluation and checkpoints do not count in images/s
            if step < cfg.steps and ((cfg.eval_every and step % cfg.eval_every == 0) or step in cfg.eval_steps):
                stop = run_eval()
            if out is not None and rank == 0 and (step == cfg.steps or stop or (cfg.checkpoint_every and
                                                                        step % cfg.checkpoint_every == 0)):
                # a finite update can still overflow the weights (an absurd lr): never checkpoint them
                if not torch.stack([torch.isfinite(p).all() for p in raw.parameters()]).all().item():
                    bar.close()
                    raise _non_finite(step - 1, lr, loss, grad_norm, last_loss, cfg, out, rank,
                                      what="weights after the update")
                checkpoints.save_checkpoint(out / f"step_{step:07d}", raw, train_config=cfg, step=step,
                                            optimizer=optimizer, rng=checkpoints.capture_rng(gen))
                checkpoints.prune_checkpoints(out, cfg.keep_checkpoints)
            t_log += time.perf_counter() - t_pause
            if step >= cfg.steps or stop:
                break
    run_eval()
    bar.close()
    if world > 1:
        dist.barrier()
    if own_group:
        dist.destroy_process_group()
    return history

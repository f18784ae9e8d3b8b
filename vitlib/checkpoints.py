"""vitlib's own checkpoints (design.md "Safety"): safetensors + JSON, atomic writes, exact resume.

A checkpoint NAME is up to three files:
  NAME.safetensors        the model's state dict (timm attribute names), nothing else
  NAME.json               {"format", "arch", "config", "train_config", "step", "files": {sha256, bytes},
                           "optimizer": param_groups and non-tensor state, "rng": one {numpy, python} state
                           per rank, ...}
  NAME.state.safetensors  training state tensors: optimizer moments ("optim.<i>.<name>") and each rank's torch,
                          CUDA (the rank's own GPU) and trainer-generator RNG states ("rng.<rank>.*"); absent for
                          weights-only files.
Optimizer state goes to safetensors + JSON rather than torch.save so that nothing is ever unpickled
(torch.load is not used at all); the scheduler is the pure function `lr_at(step, cfg)`, so its whole state
is the step. Files are written with `atomic_write`; the JSON, written last, holds the sha256 of the others,
so a torn or truncated set is detected on load
(tests/test_checkpoints.py::test_corrupt_or_truncated_file_is_a_clear_error).
`checkpoint_meta` reads a checkpoint's JSON alone; `latest_checkpoint` and `prune_checkpoints` manage the
step_* checkpoints a training run writes.
Weights from timm, torchvision and the official JAX code: vitlib.interop.

Deviations from the paper: none (the paper does not describe a checkpoint format).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from .config import ResNetConfig, TrainConfig, ViTConfig, config_from_dict, config_to_dict
from .model import VisionTransformer
from .resnet import ResNet
from .utils import atomic_write, sha256_file

__all__ = ["ARCHS", "save_checkpoint", "load_checkpoint", "load_model", "load_into", "latest_checkpoint",
           "prune_checkpoints", "capture_rng", "restore_rng", "CheckpointError"]

StateDict = dict[str, Tensor]

FORMAT = "vitlib-checkpoint-1"


# arch name -> (config dataclass, builder(config) -> model). A model is saved under the first arch whose config
# class matches `model.cfg`; add a row here for another architecture.
ARCHS: dict[str, tuple[type, Callable[[Any], torch.nn.Module]]] = {
    "ViT": (ViTConfig, VisionTransformer),
    "ResNet": (ResNetConfig, ResNet),
}


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or for another model."""


def _stem(path: str | os.PathLike) -> Path:
    p = Path(path)
    for suffix in (".state.safetensors", ".safetensors", ".json"):
        if p.name.endswith(suffix):
            return p.with_name(p.name[: -len(suffix)])
    return p



def _arch_of(model: torch.nn.Module) -> tuple[str, dict]:
    cfg = getattr(model, "cfg", None)
    for name, (cfg_cls, _) in ARCHS.items():
        if isinstance(cfg, cfg_cls):
            return name, dataclasses.asdict(cfg)
    raise CheckpointError(f"cannot save a {type(model).__name__}: it has no `.cfg` of a known config class "
                          f"({', '.join(c.__name__ for c, _ in ARCHS.values())}); add a row to "
                          "vitlib.checkpoints.ARCHS for its architecture")


def capture_rng(generator: torch.Generator | None = None) -> dict[str, Any]:
    """This process's RNG states, for an exact resume: torch's CPU generator, the current GPU's (when this process
    has used CUDA; one GPU per process, so that a machine with fewer GPUs can resume), numpy, python and the
    trainer's generator (mixup)."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                            "python": random.getstate()}
    if torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state()  # the current device's
    if generator is not None:
        rng["generator"] = generator.get_state()
    return rng


def restore_rng(rng: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Inverse of `capture_rng` (one rank's entry of `load_checkpoint(...)["rng"]`). The CUDA state goes to the
    current GPU, and is skipped without CUDA; a generator state saved on another kind of device (a run resumed
    on a GPU from a CPU checkpoint) is skipped with a warning: the run goes on, not bit for bit."""
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    cuda = rng.get("cuda")
    if isinstance(cuda, list):  # written by an older vitlib: every GPU's state, this process's is the current one's
        cuda = cuda[torch.cuda.current_device()] if torch.cuda.is_available() and \
            torch.cuda.current_device() < len(cuda) else None
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda)
    if generator is not None and "generator" in rng:
        try:
            generator.set_state(rng["generator"])
        except RuntimeError as e:
            warnings.warn(f"the trainer's generator state was saved on another kind of device ({e}); it starts "
                          "from its seed instead: the run goes on, not bit for bit", stacklevel=2)


def load_into(model: torch.nn.Module, state_dict: StateDict) -> torch.nn.Module:
    """Load a converted state dict strictly, with an error that names missing and unexpected keys."""
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise ValueError(f"weights do not fit this model (another variant, patch size or class count?): {e}") from e
    if missing or unexpected:
        raise ValueError(f"weights do not fit this model: missing {missing[:8]}, unexpected {unexpected[:8]}; "
                         "build the model with the config the weights were trained with")
    return model


def _split_optimizer(sd: dict) -> tuple[dict[str, Tensor], dict]:
    tensors, state = {}, {}
    for idx, entries in sd["state"].items():
        state[str(idx)] = {}
        for name, v in entries.items():
            if isinstance(v, Tensor):
                tensors[f"optim.{idx}.{name}"] = v.detach().cpu().contiguous()
            else:
                state[str(idx)][name] = v
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def _join_optimizer(meta: dict, tensors: dict[str, Tensor]) -> dict:
    state: dict[int, dict] = {int(i): dict(v) for i, v in meta["state"].items()}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def _split_rng(ranks: list[dict], tensors: dict[str, Tensor]) -> list[dict]:
    """Each rank's RNG tensors into `tensors` ("rng.<rank>.torch", ".cuda", ".generator"); the JSON-ready rest."""
    saved = []
    for r, state in enumerate(ranks):
        tensors.update({f"rng.{r}.{k}": state[k] for k in ("torch", "cuda", "generator") if k in state})
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        saved.append({"numpy": [kind, keys.tolist(), pos, has_gauss, gauss], "python": state["python"]})
    return saved


def _join_rng(saved: list | dict, tensors: dict[str, Tensor]) -> list[dict]:
    """Inverse of `_split_rng`: one `restore_rng` state per rank. A dict is an older vitlib's single state (tensors
    "rng.torch", "rng.generator" and every GPU's "rng.cuda.<i>")."""
    older = isinstance(saved, dict)
    states = []
    for r, entry in enumerate([saved] if older else saved):
        prefix = "rng." if older else f"rng.{r}."
        kind, keys, pos, has_gauss, gauss = entry["numpy"]
        py_version, py_state, py_gauss = entry["python"]
        state = {"torch": tensors[prefix + "torch"], "numpy": (kind, np.array(keys, dtype=np.uint32), pos,
                                                               has_gauss, gauss),
                 "python": (py_version, tuple(py_state), py_gauss)}
        for k in ("cuda", "generator"):
            if prefix + k in tensors:
                state[k] = tensors[prefix + k]
        gpus = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
        if older and gpus:
            state["cuda"] = [tensors[k] for k in gpus]
        states.append(state)
    return states


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, *, train_config: Any = None, step: int = 0,
                    optimizer: torch.optim.Optimizer | None = None, rng: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write NAME.safetensors + NAME.json (+ NAME.state.safetensors with an optimizer or RNG state) atomically.

    `rng`: `capture_rng()`'s state, or a list of them, one per rank (rank r's at r). `extra` (JSON-ready) is
    stored as is, e.g. provenance. Returns the path of the weights file.
    """
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    arch, config = _arch_of(model)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    files = {"weights": stem.with_name(stem.name + ".safetensors")}
    atomic_write(files["weights"], lambda tmp: save_file(weights, tmp, metadata={"format": FORMAT, "arch": arch}))
    meta: dict[str, Any] = {"format": FORMAT, "arch": arch, "config": config, "step": step,
                             "train_config": config_to_dict(train_config) if train_config is not None else None}
    if optimizer is not None or rng is not None:
        tensors: dict[str, Tensor] = {}
        if optimizer is not None:
            tensors, meta["optimizer"] = _split_optimizer(optimizer.state_dict())
        if rng is not None:
            meta["rng"] = _split_rng([rng] if isinstance(rng, dict) else list(rng), tensors)
        files["state"] = stem.with_name(stem.name + ".state.safetensors")
        atomic_write(files["state"], lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT}))
    meta["files"] = {k: {"name": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for k, p in files.items()}
    meta["extra"] = extra or {}
    json_path = stem.with_name(stem.name + ".json")
    atomic_write(json_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=1, default=float)))
    return files["weights"]


def _loadable(path: str | os.PathLike) -> Path:
    """The stem to load: `path` itself (NAME, NAME.safetensors or NAME.json), or, for a run's folder (a training
    run's out_dir), its newest step_* checkpoint."""
    if Path(path).is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(f"no vitlib checkpoint in the folder {path}: it holds no step_*.json (the "
                                    "checkpoints `vitlib pretrain` and `vitlib finetune` write); pass a checkpoint "
                                    "NAME or the --out-dir of a run")
        return found
    return _stem(path)


def _read_meta(stem: Path) -> dict:
    json_path = stem.with_name(stem.name + ".json")
    if not json_path.exists():
        raise FileNotFoundError(f"no vitlib checkpoint at {stem}: {json_path.name} is missing in "
                                f"{json_path.parent}; check the path (a checkpoint is NAME.safetensors + NAME.json, "
                                "written by vitlib.checkpoints.save_checkpoint or `python -m vitlib pretrain`)")
    try:
        meta = json.loads(json_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{json_path} is corrupt or truncated ({e}); delete this checkpoint and resume "
                              "from an earlier one, or re-create it") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not a vitlib checkpoint (format {meta.get('format')!r}, expected "
                              f"{FORMAT!r}); for timm/torchvision weights use vitlib.interop (from_timm, ...)")
    return meta


def checkpoint_meta(path: str | os.PathLike) -> dict:
    """A checkpoint's JSON ({"arch", "config", "train_config" as saved, "step", "extra", ...}) without reading
    its tensors; `path` as for load_model."""
    return _read_meta(_loadable(path))


def _read_tensors(stem: Path, meta: dict, key: str) -> dict[str, Tensor]:
    info = meta["files"][key]
    path = stem.parent / info["name"]
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file {path} is missing (its JSON {stem.name}.json names it); "
                                "copy it next to the JSON or use another checkpoint")
    if path.stat().st_size != info["bytes"] or sha256_file(path) != info["sha256"]:
        raise CheckpointError(f"checkpoint file {path} is corrupt or truncated ({path.stat().st_size} bytes, "
                              f"expected {info['bytes']} with sha256 {info['sha256'][:12]}...); delete this "
                              "checkpoint and resume from an earlier one, or copy the file again")
    return load_file(str(path))


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model a vitlib checkpoint was saved from (architecture and config from its JSON), with its
    weights, in eval mode. `path` is NAME, NAME.safetensors, NAME.json or a run's folder (its newest checkpoint)."""
    stem = _loadable(path)
    meta = _read_meta(stem)
    if meta["arch"] not in ARCHS:
        raise CheckpointError(f"{stem}.json is a {meta['arch']!r} checkpoint and this vitlib knows only "
                              f"{sorted(ARCHS)}; update vitlib or add the architecture to vitlib.checkpoints.ARCHS")
    cfg_cls, build = ARCHS[meta["arch"]]
    model = build(config_from_dict(cfg_cls, meta["config"]))
    load_into(model, _read_tensors(stem, meta, "weights"))
    return model.to(device).eval()


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, expect_train_config: Any = None) -> dict:
    """Load a checkpoint into `model` (and `optimizer`) in place; return its metadata:
    {"arch", "config", "train_config" (TrainConfig or None), "step", "rng" (a list, one state per rank that
    saved it: `restore_rng(meta["rng"][rank])`), "extra", ...}.

    The model must have the architecture and config the checkpoint was saved from (else a CheckpointError
    says what differs); `expect_train_config` must equal the saved TrainConfig up to logging fields.
    """
    stem = _stem(path)
    meta = _read_meta(stem)
    if meta.get("train_config") is not None:
        meta["train_config"] = config_from_dict(TrainConfig, meta["train_config"])
    if model is not None:
        arch, config = _arch_of(model)
        config = json.loads(json.dumps(config))  # as saved: JSON lists where the config has tuples (ResNet depths)
        if arch != meta["arch"] or config != meta["config"]:
            diff = {k: (meta["config"].get(k), v) for k, v in config.items() if meta["config"].get(k) != v}
            raise CheckpointError(f"{stem.name} holds a {meta['arch']} and the model is a {arch} that differs in "
                                  f"(saved, model): {diff or 'architecture'}; rebuild the model with "
                                  "vitlib.checkpoints.load_model(path), or use vitlib.finetune for a new head or "
                                  "resolution")
        load_into(model, _read_tensors(stem, meta, "weights"))
    if expect_train_config is not None and meta["train_config"] is not None:
        _check_same_run(meta["train_config"], expect_train_config, stem)
    if optimizer is not None or "rng" in meta:
        if "state" not in meta["files"]:
            raise CheckpointError(f"{stem.name} holds weights only (no optimizer or RNG state): it cannot resume a "
                                  "run; start a new run from its weights with load_model instead")
        tensors = _read_tensors(stem, meta, "state")
        if optimizer is not None:
            optimizer.load_state_dict(_join_optimizer(meta["optimizer"], tensors))
        if "rng" in meta:
            meta["rng"] = _join_rng(meta["rng"], tensors)
    return meta


# TrainConfig fields that may change between a run and its resumption without changing its result.
_RESUMABLE_CHANGES = {"progress", "num_workers", "eval_every", "eval_batch_size", "log_every", "checkpoint_every",
                      "keep_checkpoints", "device"}


def _check_same_run(saved: Any, now: Any, stem: Path) -> None:
    diff = {f.name: (getattr(saved, f.name), getattr(now, f.name)) for f in dataclasses.fields(saved)
            if f.name not in _RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(now, f.name)}
    if diff:
        raise CheckpointError(f"cannot resume from {stem.name}: the TrainConfig differs in (saved, now) {diff}; "
                              "resume with the saved config, or start a new run in another out_dir")


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint (highest step) written by `train` in out_dir, or None."""
    found = sorted(Path(out_dir).glob("step_*.json")) if Path(out_dir).is_dir() else []
    return _stem(found[-1]) if found else None


def prune_checkpoints(out_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the `keep` newest step_* checkpoints in out_dir (JSON first, so no half-set looks valid)."""
    for json_path in sorted(Path(out_dir).glob("step_*.json"))[: -keep or None] if keep > 0 else []:
        stem = _stem(json_path)
        for p in (json_path, stem.with_name(stem.name + ".safetensors"),
                  stem.with_name(stem.name + ".state.safetensors")):
            p.unlink(missing_ok=True)

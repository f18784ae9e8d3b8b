"""Small helpers shared by the tests (pytest puts tests/ on sys.path: `from helpers import ...`)."""

import torch
from torch import nn


def randomise(model: nn.Module) -> nn.Module:
    """Add N(0, 0.02) noise to every parameter and switch to eval mode.

    Reference models start with zero heads and unit norm scales; random values everywhere make a
    parity test non-trivial (a weight copied to the wrong place changes the logits).
    """
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()

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


def assert_every_attention_path_agrees(ref: nn.Module, x: torch.Tensor, grads_of, precision: str) -> list:
    """Logits and the gradients `grads_of(model)` of every attention path (vitlib.model.ATTENTION_PATHS) equal the
    fp32 explicit path's (Eq. 6-7 written out): to 1e-5 in fp32, to bf16 rounding under bf16 autocast.
    Returns the reference gradients."""
    import copy

    from vitlib.model import ATTENTION_PATHS, set_attention_path

    set_attention_path(ref, "explicit")
    ref_out = ref(x)
    ref_out.square().sum().backward()
    ref_grads = [g.clone() for g in grads_of(ref)]
    tol = 1e-5 if precision == "fp32" else 3e-2
    for path in ATTENTION_PATHS:
        m = copy.deepcopy(ref)
        m.zero_grad()
        set_attention_path(m, path)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = m(x)
        out.float().square().sum().backward()
        assert (out.float() - ref_out).abs().max() <= tol * ref_out.abs().max(), path
        for g, r in zip(grads_of(m), ref_grads):
            assert (g - r).abs().max() <= tol * 10 * r.abs().max(), path
    return ref_grads

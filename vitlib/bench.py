"""Speed benchmark: vitlib against timm on the same config, in the same process.

For each row, the two models get the same batch; forward and forward+backward
are timed alternately so that drifts in the machine's speed hit both, with the
order flipped every pair (vitlib, timm, timm, vitlib, vitlib, timm, ...) so that
running first favours neither; the table reports the median images/s of each and
the ratio vitlib / timm (>= 1.0 means vitlib is no slower) as the median of
the ratios of adjacent pairs: on a shared machine whose speed swings from one
second to the next (a shared or throttled CPU), a pair run back
to back sees the same speed, where two medians taken over minutes may not.

    python -m vitlib bench                 # CPU (and GPU when present)
    python -m vitlib bench --repeats 20 --batch-size 8
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import vitlib

__all__ = ["BenchRow", "ROWS", "run_bench", "format_table"]


@dataclass(frozen=True)
class BenchRow:
    """One comparison: a vitlib model and the timm model that computes the same function."""

    name: str
    ours: Callable[[], nn.Module]
    timm: Callable[[], nn.Module]
    img_size: int = 224


def _timm(name: str, **kw) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm  # reference only: a dev dependency

        return timm.create_model(name, pretrained=False, **kw)

    return build


ROWS: list[BenchRow] = [
    BenchRow("ViT-Ti/16", lambda: vitlib.create_model("ViT-Ti/16"), _timm("vit_tiny_patch16_224")),
    BenchRow("ViT-S/16", lambda: vitlib.create_model("ViT-S/16"), _timm("vit_small_patch16_224")),
    # The CNN baseline and the hybrid (Section 3.1), at 224 px: timm's hybrid is built for 224 too.
    BenchRow("BiT-R50x1", lambda: vitlib.create_model("BiT-R50x1"), _timm("resnetv2_50x1_bit")),
    BenchRow("R50+ViT-B/16", lambda: vitlib.create_model("R50+ViT-B/16"), _timm("vit_base_r50_s16_384", img_size=224)),
]


def _time_once(model: nn.Module, x: torch.Tensor, backward: bool) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    if backward:
        model(x).float().sum().backward()
    else:
        with torch.inference_mode():
            model(x)
    sync()
    return time.perf_counter() - t0


def run_bench(rows: list[BenchRow] | None = None, batch_size: int = 8, repeats: int = 10, warmup: int = 2,
              device: str = "cpu") -> list[dict]:
    """Median images/s of vitlib and timm for forward and forward+backward, alternating, one process."""
    results = []
    for row in rows or ROWS:
        torch.manual_seed(0)
        models = {"vitlib": row.ours().to(device), "timm": row.timm().to(device)}
        x = torch.randn(batch_size, 3, row.img_size, row.img_size, device=device)
        for mode, backward in (("forward", False), ("fwd+bwd", True)):
            for m in models.values():
                m.train(backward)
                for _ in range(warmup):
                    _time_once(m, x, backward)
            times: dict[str, list[float]] = {k: [] for k in models}
            for i in range(repeats):
                for k in (("vitlib", "timm") if i % 2 == 0 else ("timm", "vitlib")):  # ABBA: no order bias
                    times[k].append(_time_once(models[k], x, backward))
                    models[k].zero_grad(set_to_none=True)
            ips = {k: batch_size / statistics.median(v) for k, v in times.items()}
            ratio = statistics.median(t / o for o, t in zip(times["vitlib"], times["timm"]))
            results.append(dict(model=row.name, mode=mode, device=device, batch=batch_size, img=row.img_size,
                                vitlib=ips["vitlib"], timm=ips["timm"], ratio=ratio))
    return results


def format_table(results: list[dict]) -> str:
    """A Markdown table of `run_bench` results."""
    lines = ["| model | pass | device | batch | vitlib img/s | timm img/s | ratio (paired) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['model']} | {r['mode']} | {r['device']} | {r['batch']} | {r['vitlib']:.1f} | "
                     f"{r['timm']:.1f} | {r['ratio']:.2f} |")
    return "\n".join(lines)

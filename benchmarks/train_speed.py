"""Training throughput by mode: precision x attention path (x torch.compile, x the optimizer's fused kernel against
its loop over parameters), at 17, 65 and 197 tokens.

Each shape runs the real `vitlib.train.train` loop on random images, in every mode in turn, `--repeat`
rounds (mode order flipped every round), because a shared machine's speed drifts within minutes. A mode's
ratio is the median over rounds of its images/s divided by the reference's (fp32, fused attention) in the
same round. Also printed: model FLOP/s (forward FLOPs x 3 for forward + backward, counted by
`vitlib.flops.forward_flops`) as a share of the matmul ceiling, a square matmul timed in the same process in fp32
and bf16 on the device the training runs on (2048 x 2048 on a CPU, 8192 x 8192 on a GPU). The loss after the
run shows whether a mode keeps the numbers (same data and init: it should match the reference's to about 1e-2).

    python benchmarks/train_speed.py                      # all shapes, the default modes, 2 rounds
    python benchmarks/train_speed.py --shapes 65 --modes "fp32 fused" "fp32 explicit" --repeat 3
    python benchmarks/train_speed.py --out figures/train_speed.json   # the results file the README renders

Shapes: 17 tokens = ViT-Ti/8 at 32x32 (L=12, batch 64); 65 = ViT-Ti/4 at 32x32 with L=6 (batch 128);
197 = ViT-Ti/4 at 56x56 with L=6 (batch 32).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import vitlib
from vitlib.flops import forward_flops
from vitlib.model import set_attention_path
from vitlib.records import cpu_model, save_results
from vitlib.train import TrainConfig, resolve_device, train

SHAPES = {  # tokens: (model name, img_size, overrides, batch size)
    17: ("ViT-Ti/8", 32, {}, 64),
    65: ("ViT-Ti/4", 32, dict(num_layers=6), 128),
    197: ("ViT-Ti/4", 56, dict(num_layers=6), 32),
}
MODES = {  # name: (precision, attention path, compile, the optimizer's fused kernel)
    "fp32 fused": ("fp32", "fused", False, True),
    "fp32 explicit": ("fp32", "explicit", False, True),
    "bf16 fused": ("bf16", "fused", False, True),
    "bf16 explicit": ("bf16", "explicit", False, True),
    "bf16 explicit, bf16 softmax": ("bf16", "explicit_lowp", False, True),
    "fp32 fused, AdamW loop": ("fp32", "fused", False, False),  # TrainConfig.fused_optimizer=False
    "bf16 fused, AdamW loop": ("bf16", "fused", False, False),
    "fp32 explicit compiled": ("fp32", "explicit", True, True),
    "bf16 explicit compiled": ("bf16", "explicit", True, True),
}
DEFAULT_MODES = [m for m in MODES if not MODES[m][2]]  # compiling costs minutes per run: ask for it by name
REFERENCE = "fp32 fused"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def cpu_features() -> dict[str, bool | str]:
    """What decides whether bf16 pays on a CPU: native bf16 dot products (AMX tiles or AVX512-BF16)."""
    flags = {"capability": torch.backends.cpu.get_cpu_capability()}
    for name in ("amx_tile", "avx512_bf16", "avx512"):
        fn = getattr(torch.cpu, f"_is_{name}_supported", None)
        flags[name] = bool(fn()) if fn else False
    flags["model"] = cpu_model().rsplit(", ", 1)[0]
    return flags


def matmul_ceiling(dtype: torch.dtype, device: str | torch.device = "cpu", n: int | None = None,
                   repeats: int = 10) -> float:
    """FLOP/s of an n x n matmul in `dtype` on `device` (best of `repeats`; main() takes the best of a measurement
    before and one after the runs, so that a busy moment does not lower the ceiling). n defaults to 2048 on a CPU
    and 8192 on a GPU, where a smaller product is too short to keep the tensor cores busy."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def run(tokens: int, mode: str, warm: int, timed: int) -> dict:
    """One training run of shape `tokens` in `mode`: images/s of the timed window, final loss, wall seconds."""
    name, img, overrides, batch = SHAPES[tokens]
    precision, path, compiled, fused_optimizer = MODES[mode]
    g = torch.Generator().manual_seed(0)
    n = batch * (warm + timed)
    data = TensorDataset(torch.rand(n, 3, img, img, generator=g) * 2 - 1, torch.randint(0, 100, (n,), generator=g))
    torch.manual_seed(0)
    model = set_attention_path(vitlib.create_model(name, img_size=img, num_classes=100, **overrides), path)
    cfg = TrainConfig(steps=warm + timed, batch_size=batch, lr=1e-3, warmup_steps=1, log_every=warm,
                      precision=precision, compile=compiled, fused_optimizer=fused_optimizer, progress=False)
    t0 = time.perf_counter()
    hist = train(model, data, cfg)
    windows = [r["images_per_s"] for r in hist["train"][1:]]  # a record every `warm` steps; the first: warm-up
    rate = statistics.harmonic_mean(windows)  # equal images per window: the timed window's images/s
    return dict(images_per_s=rate, loss=hist["train"][-1]["loss"], seconds=time.perf_counter() - t0)


def summarise(results: dict[int, dict[str, list[dict]]], flops: dict[int, int], ceilings: dict[str, float]
              ) -> list[dict]:
    """One row per (shape, mode): median images/s, paired median ratio vs the reference, share of the ceiling."""
    rows = []
    for tokens, by_mode in results.items():
        ref = [r["images_per_s"] for r in by_mode[REFERENCE]]
        for mode, rs in by_mode.items():
            rate = statistics.median(r["images_per_s"] for r in rs)
            ceiling = ceilings[MODES[mode][0]]
            flop_per_s = rate * 3 * flops[tokens]  # forward + backward ~ 3 forwards
            rows.append(dict(tokens=tokens, model=SHAPES[tokens][0], mode=mode, images_per_s=rate,
                             ratio=statistics.median(r["images_per_s"] / f for r, f in zip(rs, ref)),
                             ratios=[r["images_per_s"] / f for r, f in zip(rs, ref)],
                             share_of_ceiling=flop_per_s / ceiling,
                             share_of_best_ceiling=flop_per_s / max(ceilings.values()), loss=rs[-1]["loss"],
                             seconds=statistics.median(r["seconds"] for r in rs)))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", type=int, nargs="*", default=list(SHAPES), choices=list(SHAPES),
                    help="sequence lengths T = N + 1 to run (default: all)")
    ap.add_argument("--modes", nargs="*", default=DEFAULT_MODES, choices=list(MODES),
                    help=f"modes besides the reference {REFERENCE!r} (default: all but the compiled ones)")
    ap.add_argument("--warm", type=int, default=2, help="untimed steps per run, compilation included (default 2)")
    ap.add_argument("--timed", type=int, default=6, help="timed steps per run, a multiple of --warm (default 6)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds over all modes (default 2)")
    ap.add_argument("--out", type=Path, default=None, help="write the rows and provenance to this JSON file")
    args = ap.parse_args(argv)
    if args.timed % args.warm:
        ap.error("--timed must be a multiple of --warm (the loop records every --warm steps)")
    modes = [REFERENCE] + [m for m in args.modes if m != REFERENCE]
    t_start = time.perf_counter()
    device = resolve_device("auto")  # where `train` runs (TrainConfig.device "auto"): the ceiling is measured there
    # only the precisions of the modes asked for: a bf16 matmul without native bf16 can take minutes
    ceilings = {k: matmul_ceiling(DTYPES[k], device) for k in dict.fromkeys(MODES[m][0] for m in modes)}
    cpu = cpu_features()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "the CPU"
    print(f"# torch {torch.__version__}, {cpu['model']} ({torch.get_num_threads()} threads, amx {cpu['amx_tile']}, "
          f"avx512_bf16 {cpu['avx512_bf16']}); training on {where}, its matmul: "
          + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in ceilings.items()) + " GFLOP/s", flush=True)
    flops = {}
    for tokens in args.shapes:
        name, img, overrides, _ = SHAPES[tokens]
        with torch.device("meta"):
            flops[tokens] = forward_flops(vitlib.create_model(name, img_size=img, num_classes=100, **overrides), img)
    results: dict[int, dict[str, list[dict]]] = {t: {m: [] for m in modes} for t in args.shapes}
    for i in range(args.repeat):
        for tokens in args.shapes:
            for mode in (modes if i % 2 == 0 else modes[::-1]):
                r = run(tokens, mode, args.warm, args.timed)
                results[tokens][mode].append(r)
                print(f"  round {i + 1}, {tokens} tokens, {mode}: {r['images_per_s']:.1f} img/s", file=sys.stderr,
                      flush=True)
    ceilings = {k: max(v, matmul_ceiling(DTYPES[k], device)) for k, v in ceilings.items()}
    rows = summarise(results, flops, ceilings)
    print(f"| tokens | mode | images/s (median) | ratio vs {REFERENCE} (paired median) | share of the mode's matmul "
          "ceiling | share of the best ceiling | loss after run |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tokens']} | {r['mode']} | {r['images_per_s']:.1f} | {r['ratio']:.2f} | "
              f"{100 * r['share_of_ceiling']:.0f}% | {100 * r['share_of_best_ceiling']:.0f}% | {r['loss']:.4f} |",
              flush=True)
    if args.out is not None:
        command = " ".join(["python benchmarks/train_speed.py", *(sys.argv[1:] if argv is None else argv)])
        path = save_results(args.out, dict(rows=rows, ceilings_flop_per_s=ceilings, ceiling_device=where,
                                           forward_flops=flops, cpu=cpu),
                            command, time.perf_counter() - t_start, repeat=args.repeat, warm=args.warm,
                            timed=args.timed)
        print(f"wrote {path}")

if __name__ == "__main__":
    main()

"""GPU acceptance: one command, under ten minutes on a CUDA machine, that checks vitlib there and records the answers.

    python benchmarks/gpu_acceptance.py                         # writes figures/gpu_acceptance.json
    python benchmarks/gpu_acceptance.py --budget 300 --out /tmp/gpu_acceptance.json

Each check prints one line: ok, FAILED or skipped, its numbers and its seconds.
    parity         ViT-B/16's logits equal timm's on the GPU (fp32, TF32 off: max |diff| <= 1e-4, as on the CPU in
                   tests/test_interop.py) and the CPU's (<= 1e-3)
    bf16 PATH      one training step (loss and gradients) in bf16 autocast against fp32, for each attention path of
                   vitlib.model (fused, explicit): loss within 1%, gradients within 5% (relative L2)
    compile        ViT-Ti/4 at 32 px trained by vitlib.train.train with torch.compile on and off: the same losses
                   (within 2%); images/s of both
    speed MODEL    images/s of vitlib.train.train (bf16) on ViT-Ti/4 at 32 px and ViT-B/16 at 224 px, and the model
                   FLOP utilisation: 3 x forward FLOPs x images/s over the GPU's dense bf16 peak (BF16_PEAKS by
                   device name, else a measured 8192^2 bf16 matmul)
    data           images/s of the device data path (vitlib.batches) and of the DataLoader path on FractalDB at
                   32 px, against ViT-Ti/4's training images/s; the device path's images against the CPU's
    torchrun       2 processes x 1 GPU train under DistributedDataParallel (when two GPUs are visible)
    study NAME     `python -m vitlib experiment NAME --profile gpu --limit 1` in a temporary folder, for each study
                   of vitlib.experiments.STUDIES with a gpu profile, stopped at a time limit that keeps the whole
                   run within --budget (a row that does not finish in time is reported skipped, not failed)

The training timings feed vitlib.train.train from the device data path (`TrainConfig(data_on_device=True)`,
vitlib.batches): a DataLoader of CPU batches would time the CPU, not the GPU. Exit status: 0 when no check failed,
1 when one did, 2 when no CUDA device is visible (one line says so, and nothing is written).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from device_data import device_rate, loader_rate
from train_speed import matmul_ceiling

import vitlib
from vitlib import train as train_module
from vitlib.batches import DeviceBatches
from vitlib.data import ImageDataset, Transform, get_dataset
from vitlib.experiments import STUDIES
from vitlib.flops import forward_flops
from vitlib.model import set_attention_path
from vitlib.records import FIGURES_DIR, ROOT, save_results
from vitlib.train import TrainConfig, make_loader

OK, FAILED, SKIPPED = "ok", "FAILED", "skipped"
# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, by a pattern of torch.cuda.get_device_name;
# the first match counts, so the more specific patterns come first.
BF16_PEAKS = [(r"H200", 989e12), (r"H100.*NVL", 835e12), (r"H100.*PCIe", 756e12), (r"H100", 989e12),
              (r"A100", 312e12), (r"L40S", 362e12), (r"\bL4\b", 121e12)]
SPEED = {  # name: (model, img_size, batch, overrides, warm-up steps, timed steps (a multiple of the warm-up))
    "ViT-Ti/4": ("ViT-Ti/4", 32, 1024, {}, 10, 30),
    "ViT-B/16": ("ViT-B/16", 224, 128, {}, 4, 12),
}
FRACTALDB = dict(num_classes=100, images_per_class=100, progress=False)


def known_peak(name: str) -> float | None:
    """The data-sheet dense bf16 peak (FLOP/s) of a GPU by its name, or None (BF16_PEAKS)."""
    return next((peak for pattern, peak in BF16_PEAKS if re.search(pattern, name)), None)


def bf16_peak(device: torch.device) -> tuple[float, str]:
    """(FLOP/s, where it comes from): the data-sheet peak of a known GPU, else a measured bf16 matmul."""
    peak = known_peak(torch.cuda.get_device_name(device))
    if peak is not None:
        return peak, "data sheet"
    return matmul_ceiling(torch.bfloat16, device), "measured 8192^2 bf16 matmul"


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """N(0, 0.02) noise on every parameter (zero heads and unit norms would hide a misplaced weight)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def check_parity(device: torch.device) -> tuple[str, str, dict]:
    """ViT-B/16 logits: vitlib against timm on the GPU, and vitlib on the GPU against the CPU, in full fp32."""
    import timm

    from vitlib.interop import from_timm, load_into

    torch.manual_seed(0)
    ref = _randomised(timm.create_model("vit_base_patch16_224", pretrained=False)).eval()
    ours = load_into(vitlib.create_model("ViT-B/16"), from_timm(ref.state_dict())).eval()
    x = torch.randn(2, 3, 224, 224)
    cudnn_tf32, precision = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.no_grad():
            cpu = ours(x)
            ours_gpu, ref_gpu = ours.to(device)(x.to(device)).cpu(), ref.to(device)(x.to(device)).cpu()
    finally:
        torch.backends.cudnn.allow_tf32 = cudnn_tf32
        torch.set_float32_matmul_precision(precision)
    timm_diff, cpu_diff = (ours_gpu - ref_gpu).abs().max().item(), (ours_gpu - cpu).abs().max().item()
    status = OK if timm_diff <= 1e-4 and cpu_diff <= 1e-3 else FAILED
    return status, f"max |logits diff| vs timm {timm_diff:.1e} (<= 1e-4), vs the CPU {cpu_diff:.1e} (<= 1e-3)", \
        dict(timm_diff=timm_diff, cpu_diff=cpu_diff)


def _step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> tuple[float, torch.Tensor]:
    """Loss and flattened gradients of one training step (forward in bf16 autocast when `bf16`)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(x).float(), y)
    loss.backward()
    return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()])


def check_bf16_path(device: torch.device, path: str) -> tuple[str, str, dict]:
    """A bf16 step on attention path `path`: its loss and gradients against the fp32 explicit path's (Eq. 6-7)."""
    torch.manual_seed(0)
    model = _randomised(vitlib.create_model("ViT-Ti/4", img_size=32, num_classes=100)).to(device)
    x, y = torch.rand(64, 3, 32, 32, device=device) * 2 - 1, torch.randint(0, 100, (64,), device=device)
    ref_loss, ref_grad = _step(set_attention_path(copy.deepcopy(model), "explicit"), x, y, bf16=False)
    loss, grad = _step(set_attention_path(model, path), x, y, bf16=True)
    loss_err = abs(loss - ref_loss) / ref_loss
    grad_err = ((grad - ref_grad).norm() / ref_grad.norm()).item()
    status = OK if loss_err <= 0.01 and grad_err <= 0.05 else FAILED
    return status, f"against fp32: loss {loss_err:.1e} (<= 1e-2), gradients {grad_err:.1e} (<= 5e-2, relative L2)", \
        dict(loss_err=loss_err, grad_err=grad_err)


def _random_corpus(n: int, img_size: int, classes: int = 100) -> ImageDataset:
    """n random uint8 images (3, img_size, img_size) with random labels, augmented as a training set."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, img_size, img_size), dtype=torch.uint8, generator=g)
    targets = torch.randint(0, classes, (n,), generator=g).numpy()
    return ImageDataset("random", "train", Transform(img_size, 3, augment=True), targets,
                        [str(c) for c in range(classes)], torch.arange(n).numpy(), images=images)


def _train_on_device(name: str, device: torch.device, precision: str = "bf16", compile: bool = False) -> dict:
    """vitlib.train.train on SPEED[name], fed by the device data path: images/s of the timed steps, the losses."""
    model_name, img, batch, overrides, warm, timed = SPEED[name]
    data = _random_corpus(min(batch * (warm + timed), 8192), img)
    torch.manual_seed(0)
    model = vitlib.create_model(model_name, img_size=img, num_classes=100, **overrides)
    cfg = TrainConfig(steps=warm + timed, batch_size=batch, lr=1e-4, warmup_steps=1, log_every=warm,
                      precision=precision, compile=compile, progress=False, device=str(device), data_on_device=True)
    hist = train_module.train(model, data, cfg)
    windows = [r["images_per_s"] for r in hist["train"][1:]]  # the first window holds warm-up and compilation
    return dict(images_per_s=statistics.harmonic_mean(windows), losses=[r["loss"] for r in hist["train"]])


def check_compile(device: torch.device) -> tuple[str, str, dict]:
    """ViT-Ti/4 with torch.compile on and off: the same losses, and the speed of each."""
    eager, compiled = (_train_on_device("ViT-Ti/4", device, compile=c) for c in (False, True))
    err = max(abs(a - b) / abs(b) for a, b in zip(compiled["losses"], eager["losses"]))
    status = OK if err <= 0.02 else FAILED
    return status, (f"ViT-Ti/4 bf16: compiled {compiled['images_per_s']:,.0f} img/s, eager "
                    f"{eager['images_per_s']:,.0f} ({compiled['images_per_s'] / eager['images_per_s']:.2f}x); "
                    f"losses within {err:.1e} (<= 2e-2)"), \
        dict(compiled=compiled["images_per_s"], eager=eager["images_per_s"], loss_err=err)


def check_speed(name: str, device: torch.device, peak: float) -> tuple[str, str, dict]:
    """Training images/s and model FLOP utilisation of SPEED[name] (bf16, eager, fused attention)."""
    model_name, img, batch, overrides, _, _ = SPEED[name]
    with torch.device("meta"):
        flops = forward_flops(vitlib.create_model(model_name, img_size=img, num_classes=100, **overrides), img)
    run = _train_on_device(name, device)
    mfu = 3 * flops * run["images_per_s"] / peak
    ok = all(math.isfinite(v) for v in run["losses"])
    return (OK if ok else FAILED), (f"{img} px, batch {batch}: {run['images_per_s']:,.0f} img/s, "
                                    f"{100 * mfu:.0f}% of the bf16 peak" + ("" if ok else "; non-finite loss")), \
        dict(images_per_s=run["images_per_s"], mfu=mfu, forward_flops=flops, batch=batch, img_size=img)


def check_data(device: torch.device, train_rate: float | None) -> tuple[str, str, dict]:
    """Images/s of both data paths against ViT-Ti/4's training; the device path's images against the CPU's."""
    data = get_dataset("fractaldb", "train", 32, workers=os.cpu_count(), **FRACTALDB)
    batch = SPEED["ViT-Ti/4"][2]
    count = len(data) // batch - 1
    on_device = device_rate(DeviceBatches(data, device), batch, count)
    loader = loader_rate(data, device, batch, count)
    diff = _device_against_cpu(data, device)
    fast = train_rate is None or on_device >= train_rate
    status = OK if fast and diff <= 1e-5 else FAILED
    versus = "" if train_rate is None else f" (ViT-Ti/4 trains at {train_rate:,.0f})"
    return status, (f"FractalDB 32 px, batch {batch}: device path {on_device:,.0f} img/s, DataLoader {loader:,.0f}"
                    f"{versus}; device images vs the CPU's: max |diff| {diff:.1e} (<= 1e-5)"), \
        dict(device_path=on_device, dataloader=loader, train=train_rate, max_diff=diff)


def _device_against_cpu(data: ImageDataset, device: torch.device) -> float:
    """Max |difference| of the first augmented batches of the device path (TF32 on, as in training) and of
    make_loader on the CPU, both from torch seed 0."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        torch.manual_seed(0)
        x, _ = next(iter(DeviceBatches(data, device).loader(256, shuffle=True)))
        torch.manual_seed(0)
        ref, _ = next(iter(make_loader(data, 256, shuffle=True)))
    finally:
        torch.set_float32_matmul_precision(precision)
    return (x.cpu() - ref).abs().max().item()


def ddp_smoke(out_dir: str) -> None:
    """The torchrun worker: a small ViT trained for 8 steps under DDP (every rank renders or reads FractalDB)."""
    data = get_dataset("fractaldb", "train", 32, num_classes=10, images_per_class=64, progress=False)
    model = vitlib.create_model("ViT-Ti/4", img_size=32, num_classes=10, num_layers=2)
    train_module.train(model, data, TrainConfig(steps=8, batch_size=64, lr=1e-3, log_every=4, precision="bf16",
                                                progress=False), out_dir=out_dir)


def check_torchrun(timeout: float) -> tuple[str, str, dict]:
    """2 processes x 1 GPU under torchrun: the run ends, writes its metrics (finite losses) and a checkpoint."""
    if torch.cuda.device_count() < 2:
        return SKIPPED, f"{torch.cuda.device_count()} GPU visible, 2 needed", {}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(Path(__file__).resolve()), "--ddp-smoke", out]
        rc, seconds, tail = _run_limited(cmd, timeout)
        if rc is None:
            return FAILED, f"did not finish in {timeout:.0f} s", {}
        lines = (Path(out) / "metrics.jsonl").read_text().splitlines() if rc == 0 else []
        losses = [json.loads(ln)["loss"] for ln in lines if '"train"' in ln]
        saved = any(Path(out).glob("step_0000008*"))
    ok = rc == 0 and losses and all(math.isfinite(v) for v in losses) and saved
    return (OK if ok else FAILED), (f"2 ranks, 8 steps in {seconds:.0f} s, losses {[round(v, 3) for v in losses]}, "
                                    f"checkpoint {'written' if saved else 'missing'}" if rc == 0
                                    else f"exit {rc}: {tail}"), dict(losses=losses)


def _run_limited(cmd: list[str], timeout: float) -> tuple[int | None, float, str]:
    """Run cmd in its own process group from the repository root; (exit code or None at the time limit, seconds,
    its last error line, else its last line). At the limit the whole group is ended."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        rc = None
    lines = [ln for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r"Error\b|error:", ln)]  # a traceback's last line, torchrun's summary
    return rc, time.perf_counter() - t0, (errors or lines or [""])[-1][-300:]


def check_study(name: str, limit: float) -> tuple[str, str, dict]:
    """One row of a study's gpu profile, in a temporary folder, within `limit` seconds."""
    if "gpu" not in STUDIES[name].PROFILES:
        return SKIPPED, f"no gpu profile (profiles: {', '.join(STUDIES[name].PROFILES)})", {}
    if limit < 10:
        return SKIPPED, "no time left in the budget", {}
    with tempfile.TemporaryDirectory() as folder:
        cmd = [sys.executable, "-m", "vitlib", "experiment", name, "--profile", "gpu", "--limit", "1",
               "--folder", folder]
        rc, seconds, tail = _run_limited(cmd, limit)
    if rc is None:
        return SKIPPED, f"its first row did not finish within {limit:.0f} s (no error until then)", \
            dict(limit_s=limit)
    if rc != 0:
        return FAILED, f"exit {rc}: {tail}", dict(limit_s=limit)
    return OK, f"one row in {seconds:.0f} s", dict(seconds=seconds, limit_s=limit)


def _attempt(rows: list[dict], check: str, fn, *args) -> dict:
    """Run one check; an exception is a failure with its first line. Returns the row."""
    t0 = time.perf_counter()
    try:
        status, message, numbers = fn(*args)
    except Exception as e:  # noqa: BLE001 - any error fails this check, and the others still run
        status, message, numbers = FAILED, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}", {}
    seconds = time.perf_counter() - t0
    rows.append(dict(check=check, status=status, message=message, seconds=round(seconds, 1), **numbers))
    print(f"{status:<7} {check}: {message} ({seconds:.0f} s)", flush=True)
    torch.cuda.empty_cache()
    return rows[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=540, help="seconds for the whole run (default 540)")
    ap.add_argument("--out", type=Path, default=FIGURES_DIR / "gpu_acceptance.json", help="the results file")
    ap.add_argument("--ddp-smoke", metavar="DIR", help=argparse.SUPPRESS)  # the torchrun check's worker
    args = ap.parse_args(argv)
    if args.ddp_smoke:
        ddp_smoke(args.ddp_smoke)
        return 0
    if not torch.cuda.is_available():
        print(f"gpu_acceptance: FAILED, no CUDA device visible (torch {torch.__version__}, CUDA build "
              f"{torch.version.cuda}): run it on a machine with an NVIDIA GPU; nothing was written", flush=True)
        return 2
    t_start = time.perf_counter()
    device = torch.device("cuda", 0)
    peak, source = bf16_peak(device)
    name = torch.cuda.get_device_name(device)
    print(f"# {name}, torch {torch.__version__}, bf16 peak {peak / 1e12:.0f} TFLOP/s ({source}), "
          f"budget {args.budget:.0f} s", flush=True)
    rows: list[dict] = []
    _attempt(rows, "parity", check_parity, device)
    for path in ("fused", "explicit"):
        _attempt(rows, f"bf16 {path}", check_bf16_path, device, path)
    _attempt(rows, "compile", check_compile, device)
    speeds = {m: _attempt(rows, f"speed {m}", check_speed, m, device, peak) for m in SPEED}
    _attempt(rows, "data", check_data, device, speeds["ViT-Ti/4"].get("images_per_s"))
    _attempt(rows, "torchrun", check_torchrun, 180.0)
    names = sorted(STUDIES, key=lambda n: "gpu" in STUDIES[n].PROFILES)  # those without one first: they take no time
    for i, study in enumerate(names):
        left = args.budget - (time.perf_counter() - t_start) - 15  # 15 s to write the results
        _attempt(rows, f"study {study}", check_study, study, left / (len(names) - i))
    failed = [r["check"] for r in rows if r["status"] == FAILED]
    seconds = time.perf_counter() - t_start
    command = " ".join(["python benchmarks/gpu_acceptance.py", *(sys.argv[1:] if argv is None else argv)])
    path = save_results(args.out, dict(device=name, bf16_peak_flop_per_s=peak, bf16_peak_source=source,
                                       failed=failed, rows=rows), command, seconds, budget_s=args.budget)
    print(f"{'FAILED: ' + ', '.join(failed) if failed else 'all checks ok or skipped'} in {seconds:.0f} s; "
          f"wrote {path}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

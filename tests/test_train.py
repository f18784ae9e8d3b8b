"""vitlib.train: the schedule, evaluation, overfitting one batch, exact resume, DDP on CPU (gloo, 2 processes)."""

import collections
import json
import math
import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import TensorDataset

import vitlib
from vitlib import train as train_module
from vitlib.train import (
    TrainConfig,
    evaluate,
    finetune_recipe,
    lr_at,
    make_loader,
    native_bf16,
    pretrain_recipe,
    resolve_device,
    resolve_precision,
    train,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # The test machine is shared: one intra-op thread avoids OpenMP spin-waiting on busy cores.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_vit(num_classes=4, **kw):
    return vitlib.create_model("ViT-Ti/4", img_size=8, num_classes=num_classes, hidden_size=16, num_layers=2,
                               num_heads=2, mlp_size=32, **kw)


def toy_data(n=32, num_classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, num_classes, (n,), generator=g))


def test_lr_schedule_known_values():
    cfg = TrainConfig(steps=110, lr=2.0, warmup_steps=10, schedule="linear")
    assert [lr_at(s, cfg) for s in (0, 1, 10, 35, 60, 110)] == pytest.approx([0.0, 0.2, 2.0, 1.5, 1.0, 0.0])
    cos = TrainConfig(steps=110, lr=2.0, warmup_steps=10, schedule="cosine")
    assert lr_at(60, cos) == pytest.approx(1.0)  # half-way: cos(pi/2) = 0
    assert lr_at(35, cos) == pytest.approx(1.0 + math.cos(math.pi / 4))
    assert lr_at(5, cos) == pytest.approx(1.0)  # warm-up multiplies the decayed value
    assert lr_at(50, TrainConfig(steps=100, lr=0.5, schedule="constant")) == 0.5
    end = TrainConfig(steps=10, lr=1.0, end_lr=0.1)
    assert lr_at(10, end) == pytest.approx(0.1) and lr_at(0, end) == pytest.approx(1.0)


def test_recipes_follow_the_paper():
    pre = pretrain_recipe()
    assert (pre.optimizer, pre.betas, pre.weight_decay, pre.batch_size, pre.warmup_steps, pre.schedule) == \
        ("adamw", (0.9, 0.999), 0.1, 4096, 10_000, "linear")
    ft = finetune_recipe()
    assert (ft.optimizer, ft.momentum, ft.grad_clip, ft.weight_decay, ft.lr, ft.schedule, ft.warmup_steps) == \
        ("sgd", 0.9, 1.0, 0.0, 0.03, "cosine", 500)
    assert pretrain_recipe(batch_size=64, steps=20, warmup_steps=2).batch_size == 64
    with pytest.raises(TypeError):
        pretrain_recipe(learning_rate=1.0)  # unknown field: no silent ignore
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lamb")


def test_evaluate_matches_hand_computation():
    model = tiny_vit().eval()
    ds = toy_data(10)
    x, y = ds.tensors
    with torch.no_grad():
        logits = model(x)
    res = evaluate(model.train(), ds, batch_size=3)
    assert res["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert res["accuracy"] == pytest.approx((logits.argmax(-1) == y).float().mean().item())
    assert model.training  # mode restored


def test_loader_shards_are_the_single_process_batches():
    ds = toy_data(20)
    one = [b[1] for b in make_loader(ds, 4, shuffle=True, seed=3, epoch=1)]
    two = [[b[1] for b in make_loader(ds, 2, shuffle=True, seed=3, epoch=1, rank=r, world_size=2)] for r in (0, 1)]
    for step, batch in enumerate(one):
        assert sorted(batch.tolist()) == sorted(torch.cat([two[0][step], two[1][step]]).tolist())
    skipped = [b[1] for b in make_loader(ds, 4, shuffle=True, seed=3, epoch=1, skip_batches=2)]
    assert all(torch.equal(a, b) for a, b in zip(skipped, one[2:])) and len(skipped) == len(one) - 2


def test_overfits_one_batch():
    ds = toy_data(8)
    model = tiny_vit()
    cfg = TrainConfig(steps=30, batch_size=8, lr=1e-2, warmup_steps=3, progress=False, log_every=30)
    hist = train(model, ds, cfg, val_set=ds)
    assert hist["val"][-1]["accuracy"] == 1.0
    assert hist["val"][-1]["loss"] < 0.5  # from ln 4 = 1.39 at the zero-initialised head


class Interrupt(Exception):
    pass


class StopAfter(torch.utils.data.Dataset):
    """Raises after `n` reads: a crash in the middle of a run."""

    def __init__(self, ds, n):
        self.ds, self.n = ds, n

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        self.n -= 1
        if self.n < 0:
            raise Interrupt
        return self.ds[i]


def test_resume_is_bitwise_identical(tmp_path):
    # dropout, mixup and label smoothing make every RNG matter; 7 steps of 4 per epoch cross an epoch boundary.
    ds = toy_data(18)
    cfg = pretrain_recipe(steps=7, batch_size=4, warmup_steps=2, checkpoint_every=3, mixup_alpha=0.4,
                          label_smoothing=0.1, progress=False, log_every=1)
    torch.manual_seed(1)
    ref = tiny_vit(dropout=0.1)
    ref_hist = train(ref, ds, cfg, out_dir=tmp_path / "ref")

    torch.manual_seed(1)
    with pytest.raises(Interrupt):
        train(tiny_vit(dropout=0.1), StopAfter(ds, 5 * 4 + 2), cfg, out_dir=tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").glob("*.json")) == ["step_0000003.json"]
    saved = vitlib.checkpoints.load_checkpoint(tmp_path / "run" / "step_0000003")["extra"]["seconds"]
    torch.manual_seed(123)  # another init: everything must come from the checkpoint
    resumed = tiny_vit(dropout=0.1)
    hist = train(resumed, ds, cfg, out_dir=tmp_path / "run", resume=True)
    for (k, a), b in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert [r["loss"] for r in hist["train"]] == [r["loss"] for r in ref_hist["train"]]
    seconds = [r["seconds"] for r in hist["train"]]  # the run's clock goes on from the checkpoint's
    assert seconds == sorted(seconds) and seconds[3] >= saved >= 0
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == list(range(1, 8))  # records after step 3 rewritten once


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_the_fused_optimizer_makes_the_for_loops_update(optimizer):
    # TrainConfig.fused_optimizer (the default): PyTorch's fused kernel, the same update as the loop over parameters
    models = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = tiny_vit()
        opt = train_module.build_optimizer(model, TrainConfig(optimizer=optimizer, lr=0.1, weight_decay=0.05,
                                                              fused_optimizer=fused))
        assert bool(opt.defaults["fused"]) is fused
        for step in range(3):
            torch.manual_seed(step)
            for p in model.parameters():
                p.grad = torch.randn_like(p)
            opt.step()
        models.append(model)
    for (k, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), k


def test_a_run_stopped_by_on_eval_and_resumed_trains_nothing(tmp_path):
    # early stopping at step 4 of 8 saves that step; resumed, the run is over: same weights, history and records
    ds, val = toy_data(16), toy_data(8)
    cfg = pretrain_recipe(steps=8, batch_size=4, warmup_steps=1, eval_steps=(2, 4, 6), checkpoint_every=100,
                          progress=False, log_every=1)
    calls = []

    def on_eval(step, res):
        calls.append(step)
        return step == 4

    torch.manual_seed(0)
    model = tiny_vit()
    hist = train(model, ds, cfg, val_set=val, out_dir=tmp_path, on_eval=on_eval)
    assert calls == [2, 4] and hist["train"][-1]["step"] == 4
    meta = vitlib.checkpoints.checkpoint_meta(tmp_path)
    assert meta["step"] == 4 and meta["extra"]["stopped"] is True
    records = (tmp_path / "metrics.jsonl").read_text()
    torch.manual_seed(1)
    resumed = tiny_vit()
    again = train(resumed, ds, cfg, val_set=val, out_dir=tmp_path, resume=True, on_eval=on_eval)
    assert calls == [2, 4] and again == hist  # no training step, no evaluation
    assert (tmp_path / "metrics.jsonl").read_text() == records
    assert sorted(p.name for p in tmp_path.glob("step_*.json")) == ["step_0000004.json"]
    for (k, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    # fp32: "auto" is bf16 on a GPU or a CPU with AVX512-BF16, whose rounding differs with the batch split
    cfg = pretrain_recipe(steps=6, batch_size=8, warmup_steps=1, progress=False, log_every=1, precision="fp32")
    hist = train(tiny_vit(), toy_data(32), cfg, out_dir=out if rank == 0 else None)
    if rank == 0:
        with open(os.path.join(out, "hist.json"), "w") as f:
            json.dump(hist, f)
    torch.distributed.destroy_process_group()


class Slow(torch.utils.data.Dataset):
    """Each image takes `seconds` to read: a step of batch 4 lasts at least 4 x `seconds`."""

    def __init__(self, ds, seconds):
        self.ds, self.seconds = ds, seconds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        time.sleep(self.seconds)
        return self.ds[i]


def test_a_wall_clock_budget_ends_the_schedule_and_the_run_with_the_training_time(tmp_path):
    # budget_s: 1 s of training (steps of >= 40 ms) with a cap of 1000 steps; three evaluations of 0.4 s each
    # take longer than the budget, so a run that counted them would stop by step 3
    cfg = pretrain_recipe(steps=1000, batch_size=4, warmup_steps=0, schedule="cosine", lr=1e-3, budget_s=1.0,
                          eval_steps=(1, 2, 3), checkpoint_every=0, progress=False, log_every=1)

    def on_eval(step, res):
        time.sleep(0.4)

    torch.manual_seed(0)
    hist = train(tiny_vit(), Slow(toy_data(64), 0.01), cfg, val_set=toy_data(4), out_dir=tmp_path, on_eval=on_eval)
    steps, lrs = [r["step"] for r in hist["train"]], [r["lr"] for r in hist["train"]]
    assert 5 <= steps[-1] < 1000, steps
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > 0.9e-3 and lrs[-1] < 0.2e-3, lrs  # decayed with the time
    meta = vitlib.checkpoints.checkpoint_meta(tmp_path)
    assert meta["step"] == steps[-1] and 1.0 <= meta["extra"]["train_seconds"] < meta["extra"]["seconds"]
    again = train(tiny_vit(), toy_data(64), cfg, val_set=toy_data(4), out_dir=tmp_path, resume=True)
    assert again == hist  # the budget is spent: resumed, the run trains nothing


def test_a_budget_that_outlasts_the_steps_warns_that_the_schedule_stopped_early():
    cfg = pretrain_recipe(steps=3, batch_size=4, warmup_steps=0, budget_s=600.0, progress=False)
    with pytest.warns(UserWarning, match="reached steps=3 after"):
        train(tiny_vit(), toy_data(16), cfg)
    with pytest.raises(vitlib.config.ConfigError, match="budget_s must be > 0"):
        pretrain_recipe(budget_s=0.0)


def test_ddp_two_processes_match_one(tmp_path):
    torch.manual_seed(0)
    model = tiny_vit()
    # fp32: "auto" is bf16 on a GPU or a CPU with AVX512-BF16, whose rounding differs with the batch split
    cfg = pretrain_recipe(steps=6, batch_size=8, warmup_steps=1, progress=False, log_every=1, precision="fp32")
    one = train(model, toy_data(32), cfg)
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    two = json.loads((tmp_path / "hist.json").read_text())
    assert [r["loss"] for r in two["train"]] == pytest.approx([r["loss"] for r in one["train"]], abs=1e-5)
    assert [r["accuracy"] for r in two["train"]] == [r["accuracy"] for r in one["train"]]
    ddp_weights = vitlib.checkpoints.load_model(tmp_path / "step_0000006")
    for (k, a), b in zip(model.state_dict().items(), ddp_weights.state_dict().values()):
        if k.endswith("qkv.bias"):
            # the key bias gets no gradient in exact arithmetic (q . (k + b) shifts a query's logits by a constant,
            # which softmax ignores): its gradient is rounding noise, which Adam scales up to whole steps, and
            # the rounding differs with the batch split. Compare the query and value biases.
            d = a.numel() // 3
            a, b = torch.cat([a[:d], a[2 * d:]]), torch.cat([b[:d], b[2 * d:]])
        assert torch.allclose(a, b, atol=1e-5), k


@pytest.mark.parametrize("command, flags", [
    ("pretrain", ["--profile", "--model", "--dataset", "--img-size", "--steps", "--batch-size", "--lr", "--out-dir",
                  "--resume", "--bf16", "--compile", "--threads"]),
    ("finetune", ["--checkpoint", "--dataset", "--img-size", "--steps", "--out-dir", "--resume"]),
    ("evaluate", ["--checkpoint", "--dataset", "--split", "--batch-size"]),
])
def test_cli_help_documents_flags(command, flags, capsys):
    from vitlib.__main__ import main

    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and all(f in out for f in flags), out


def test_cli_pretrain_exports_weights_with_provenance(tmp_path, capsys):
    from vitlib.__main__ import main

    dest = tmp_path / "weights" / "tiny"
    main(["pretrain", "--profile", "smoke", "--steps", "2", "--out-dir", str(tmp_path / "run"),
          "--export", str(dest)])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    meta = json.loads(dest.with_suffix(".json").read_text())
    assert printed["exported"].startswith(str(dest)) and meta["step"] == 2
    # seconds are rounded to 0.1 s: two smoke steps on a fast machine record 0.0, so only ">= 0" holds everywhere
    assert "--export" in meta["extra"]["provenance"]["command"] and meta["extra"]["provenance"]["seconds"] >= 0
    assert "optimizer" not in meta  # weights only: nothing to resume from
    trained = vitlib.checkpoints.load_model(tmp_path / "run" / "step_0000002")
    shipped = vitlib.checkpoints.load_model(dest)
    for (k, a), b in zip(trained.state_dict().items(), shipped.state_dict().values()):
        assert torch.equal(a, b), k


def test_auto_precision_is_bf16_only_where_the_hardware_multiplies_bf16(monkeypatch):
    cpu = torch.device("cpu")
    for amx, avx in ((False, False), (True, False), (False, True)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda a=amx: a)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda a=avx: a)
        native_bf16.cache_clear()
        assert resolve_precision("auto", cpu) == ("bf16" if amx or avx else "fp32")
        assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    native_bf16.cache_clear()  # the next caller sees the real CPU again
    with pytest.raises(ValueError, match="'auto'"):
        TrainConfig(precision="fp16")


# --- devices, processes and host syncs ------------------------------------------------------------------------------
def test_the_suite_runs_on_the_cpu_whatever_the_machine():
    """tests/conftest.py hides CUDA (from this process and the subprocesses it starts): the comparisons with CPU
    references at fp32 tolerances hold on a GPU machine too."""
    if os.environ.get("VITLIB_TEST_CUDA") == "1":
        pytest.skip("GPUs asked for with VITLIB_TEST_CUDA=1")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "" and resolve_device("auto") == torch.device("cpu")


def test_a_bare_cuda_is_the_local_ranks_gpu_and_becomes_the_current_device(monkeypatch):
    """Under torchrun every process gets its own GPU: otherwise all ranks land on GPU 0 and NCCL fails."""
    monkeypatch.setenv("LOCAL_RANK", "1")
    made_current = []
    monkeypatch.setattr(torch.cuda, "set_device", made_current.append)
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)  # an explicit index stays
    assert train_module._select_device("cuda") == torch.device("cuda", 1) and made_current == [torch.device("cuda", 1)]
    assert train_module._select_device("cpu") == torch.device("cpu") and len(made_current) == 1


@pytest.mark.parametrize("device, backend", [("cpu", "gloo"), ("cuda:0", "nccl")])
def test_the_process_group_backend_follows_the_device_not_the_machine(monkeypatch, device, backend):
    class Joined(Exception):
        pass

    def init_process_group(name):
        raise Joined(name)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, even for --device cpu
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(train_module.dist, "init_process_group", init_process_group)
    with pytest.raises(Joined, match=f"^{backend}$"):
        train_module._dist_info(torch.device(device))


def test_a_process_group_on_nccl_with_cpu_tensors_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(train_module.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(train_module.dist, "get_backend", lambda: "nccl")
    with pytest.raises(ValueError, match="NCCL, which reduces CUDA tensors only.*gloo"):
        train_module._dist_info(torch.device("cpu"))


def test_auto_precision_is_fp32_on_a_gpu_that_only_emulates_bf16(monkeypatch):
    """V100 and T4: torch.cuda.is_bf16_supported() says True by default (emulation), and bf16 is slower there."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    native_bf16.cache_clear()
    try:
        assert resolve_precision("auto", torch.device("cuda", 0)) == "fp32"
    finally:
        native_bf16.cache_clear()


def test_tf32_only_on_cuda_and_restored():
    before = torch.get_float32_matmul_precision()
    with train_module._tf32(torch.device("cpu")):
        assert torch.get_float32_matmul_precision() == before
    with train_module._tf32(torch.device("cuda", 0)):
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32
    assert torch.get_float32_matmul_precision() == before


class Noise(torch.utils.data.Dataset):
    """An 'augmentation' only: each item is a fresh draw from the global torch generator (a worker's, in a worker)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.rand(()), 0


def test_the_ranks_loader_workers_draw_different_augmentations():
    draws = [torch.cat([x for x, _ in make_loader(Noise(), 2, shuffle=False, num_workers=1, rank=r, world_size=2)])
             for r in (0, 1)]
    assert not torch.equal(draws[0], draws[1])
    again = torch.cat([x for x, _ in make_loader(Noise(), 2, shuffle=False, num_workers=1, rank=0, world_size=2)])
    assert torch.equal(draws[0], again)  # still a function of (seed, epoch, rank)


def test_one_loader_serves_the_whole_run_and_pins_memory_only_for_a_gpu(monkeypatch):
    """Its workers start once, not at every epoch; each epoch's batches are still make_loader's (the resume test)."""
    calls = []
    real = train_module.make_loader
    monkeypatch.setattr(train_module, "make_loader", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    train(tiny_vit(), toy_data(18), TrainConfig(steps=7, batch_size=4, progress=False, device="cpu"))  # 2 epochs
    assert len(calls) == 1 and calls[0]["epochs"] == 2 and calls[0]["pin_memory"] is False


class _OpCounts(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def test_a_training_step_syncs_with_the_host_once_and_builds_no_tensor_from_host_values():
    """On a GPU, .item() waits for the device and a tensor built from Python numbers is a blocking copy; a step
    has one .item() (the non-finite check) and no such tensor. Counted as the ops of 4 steps less those of 2."""
    def ops(steps):
        cfg = TrainConfig(steps=steps, batch_size=4, optimizer="sgd", progress=False, log_every=100, device="cpu")
        with _OpCounts() as record:
            train(tiny_vit(), toy_data(64), cfg)
        return record.counts

    two, four = ops(2), ops(4)
    per_step = {op: (four[op] - two[op]) / 2 for op in ("_local_scalar_dense", "lift_fresh", "_to_copy", "nonzero")}
    assert per_step == {"_local_scalar_dense": 1, "lift_fresh": 0, "_to_copy": 0, "nonzero": 0}


def test_cutmix_pastes_one_box_and_lambda_is_the_share_kept():
    """Each image keeps all but one box, which comes from its partner x[perm]; lam is the kept share of pixels,
    and the targets are the partners'."""
    from vitlib.train import _cutmix
    torch.manual_seed(3)
    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 3, 16, 16).contiguous()  # image i is all i
    y = torch.arange(8)
    for _ in range(5):
        mixed, y2, lam = _cutmix(x, y, 1.0, torch.Generator().manual_seed(0))
        kept = (mixed == x).all(1).float().mean((1, 2))  # per image: pixels still its own
        moved = mixed != x
        assert torch.allclose(kept[y2 != y], torch.full_like(kept[y2 != y], lam))
        for i in range(8):  # what changed is the partner's, inside one rectangle
            assert (mixed[i][moved[i]] == y2[i].float()).all()
            rows, cols = moved[i].any(0).any(1), moved[i].any(0).any(0)
            assert moved[i].any(0).sum() == rows.sum() * cols.sum()
    assert _cutmix(x, y, 0.0, torch.Generator())[1] is None

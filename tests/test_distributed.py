"""vitlib.train under DistributedDataParallel, two CPU processes (gloo): what the ranks share and what they do not.

Starting two processes costs seconds, so one pair runs every scenario (`_worker`) and writes what each rank saw;
each test reads its scenario. The process group times out after a minute, so a rank left waiting fails a test
instead of hanging it.
"""

import datetime
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import Dataset, TensorDataset

import vitlib
from vitlib.batches import batch_indices
from vitlib.train import NonFiniteLossError, TrainConfig, evaluate, pretrain_recipe, train

WORLD = 2


def tiny_vit(**kw):
    return vitlib.create_model("ViT-Ti/4", img_size=8, num_classes=4, hidden_size=16, num_layers=2, num_heads=2,
                               mlp_size=32, **kw)


def toy_data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g))


class Jitter(Dataset):
    """Random noise added to each image from the global torch generator, an augmentation; `draws` keeps each
    noise's sum. Raises Interrupt after `stop_after` reads (a crash in the middle of a run)."""

    def __init__(self, ds, stop_after=None):
        self.ds, self.stop_after, self.draws = ds, stop_after, []

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        if self.stop_after is not None and len(self.draws) == self.stop_after:
            raise Interrupt
        x, y = self.ds[i]
        noise = 0.1 * torch.randn_like(x)
        self.draws.append(noise.sum().item())
        return x + noise, y


class Interrupt(Exception):
    pass


def _resume(rank, out):
    """Uninterrupted, then interrupted at step 5 and resumed from step 3's checkpoint: dropout, mixup, label
    smoothing and augmentation make every random stream matter; 7 steps of 4 per epoch cross an epoch."""
    cfg = pretrain_recipe(steps=7, batch_size=2 * WORLD, warmup_steps=2, checkpoint_every=3, mixup_alpha=0.4,
                          label_smoothing=0.1, progress=False, log_every=1, precision="fp32")
    data = toy_data(18)
    torch.manual_seed(1)
    ref, jitter = tiny_vit(dropout=0.1), Jitter(data)
    ref_hist = train(ref, jitter, cfg, out_dir=os.path.join(out, "ref"))
    torch.manual_seed(1)
    try:
        train(tiny_vit(dropout=0.1), Jitter(data, stop_after=5 * 2 + 1), cfg, out_dir=os.path.join(out, "run"))
    except Interrupt:
        pass
    torch.manual_seed(123)  # another init: everything must come from the checkpoint
    resumed = tiny_vit(dropout=0.1)
    hist = train(resumed, Jitter(data), cfg, out_dir=os.path.join(out, "run"), resume=True)
    same = all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(), resumed.state_dict().values()))
    losses = [[(r["step"], r["loss"]) for r in h["train"]] for h in (hist, ref_hist)]
    return dict(first_draws=jitter.draws[:4], weights_equal=same, losses_equal=losses[0] == losses[1])


def _non_finite_loss(rank):
    """A NaN pixel in the image that rank 1 (only) takes at step 2."""
    cfg = TrainConfig(steps=6, batch_size=2 * WORLD, progress=False, precision="fp32")
    data = toy_data(16)
    poisoned = list(batch_indices(len(data), 2, shuffle=True, seed=cfg.seed, rank=1, world_size=WORLD))[2][0]
    images = data.tensors[0].clone()
    images[poisoned, 0, 1, 2] = float("nan")
    torch.manual_seed(0)
    try:
        train(tiny_vit(), TensorDataset(images, data.tensors[1]), cfg)
    except NonFiniteLossError as e:
        return dict(error=str(e).split(":")[0], step=e.step)
    return dict(error=None)


def _weights_overflow(rank, out):
    """A finite loss and gradient, an update that overflows the weights: found before the first checkpoint."""
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    x, y = toy_data(16).tensors
    cfg = TrainConfig(steps=4, batch_size=2 * WORLD, lr=3e38, optimizer="sgd", checkpoint_every=1, progress=False)
    try:
        train(linear, TensorDataset(x * 1000, y), cfg, out_dir=os.path.join(out, "overflow"))
    except NonFiniteLossError as e:
        return dict(error=str(e).split(":")[0])
    return dict(error=None)


def _early_stop(rank):
    """Validation every 2 steps; on_eval asks to stop at step 4 on rank 1 only."""
    cfg = TrainConfig(steps=10, batch_size=2 * WORLD, lr=1e-2, eval_every=2, progress=False, log_every=1,
                      precision="fp32")
    seen = []

    def on_eval(step, res):
        seen.append([step, res])
        return rank == 1 and step == 4

    torch.manual_seed(0)
    model, val = tiny_vit(), toy_data(11, seed=1)  # 6 and 5 validation images
    hist = train(model, toy_data(32), cfg, val_set=val, on_eval=on_eval)
    return dict(seen=seen, last_step=hist["train"][-1]["step"], val=hist["val"], evaluate=evaluate(model, val))


def _worker(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD,
                                         timeout=datetime.timedelta(seconds=60))
    found = dict(resume=_resume(rank, out), non_finite_loss=_non_finite_loss(rank),
                 weights_overflow=_weights_overflow(rank, out), early_stop=_early_stop(rank))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(found, f)
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the two ranks saw in every scenario: [rank 0's, rank 1's]."""
    out = tmp_path_factory.mktemp("ddp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(port, str(out)), nprocs=WORLD, join=True)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]


def test_the_ranks_draw_different_augmentations(ranks):
    zero, one = (r["resume"]["first_draws"] for r in ranks)
    assert len(zero) == len(one) == 4 and zero != one


def test_resumed_ddp_run_equals_the_uninterrupted_one(ranks):
    """Every rank's random state is in the checkpoint and comes back to its rank."""
    for r in ranks:
        assert r["resume"]["weights_equal"] and r["resume"]["losses_equal"]


def test_a_non_finite_loss_on_one_rank_stops_every_rank_with_the_error(ranks):
    assert [r["non_finite_loss"] for r in ranks] == [dict(error="non-finite loss at step 2 (loss nan, gradient norm "
                                                                "nan)", step=2)] * WORLD


def test_weights_that_overflow_stop_every_rank_before_the_checkpoint(ranks):
    errors = [r["weights_overflow"]["error"] for r in ranks]
    assert errors[0].startswith("non-finite weights after the update at step 0") and errors[1] == errors[0]


def test_every_rank_validates_with_the_same_numbers_and_stops_together(ranks):
    """on_eval sees the same numbers on both ranks (the whole validation set, split and summed, equal to one
    process's evaluate); it asks to stop on rank 1 only, and both ranks stop at that step."""
    zero, one = (r["early_stop"] for r in ranks)
    assert zero["seen"] == one["seen"] and [s for s, _ in zero["seen"]] == [2, 4]
    assert zero["last_step"] == one["last_step"] == 4 and zero["val"] == one["val"]
    last = zero["seen"][-1][1]
    assert last["n"] == 11 and last["accuracy"] == zero["evaluate"]["accuracy"]
    assert last["loss"] == pytest.approx(zero["evaluate"]["loss"], rel=1e-6)

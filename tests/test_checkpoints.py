"""vitlib's own checkpoints: round trip, load_model by path, clear errors (wrong model, corrupt, missing)."""

import json

import pytest
import torch

import vitlib
from vitlib.checkpoints import (
    CheckpointError,
    capture_rng,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    restore_rng,
    save_checkpoint,
)
from vitlib.config import TrainConfig
from vitlib.train import build_optimizer


def tiny(**kw):
    return vitlib.create_model("ViT-Ti/4", **{**dict(img_size=8, num_classes=3, hidden_size=16, num_layers=1,
                                                     num_heads=2, mlp_size=32), **kw})


def trained_pair(tmp_path):
    model = tiny()
    opt = build_optimizer(model, TrainConfig(lr=0.1))
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ck", model, train_config=TrainConfig(steps=7), step=5, optimizer=opt,
                    extra={"note": "x"})
    return model, opt


def test_round_trip_rebuilds_model_and_optimizer(tmp_path):
    model, opt = trained_pair(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.safetensors", "ck.state.safetensors"]
    rebuilt = load_model(tmp_path / "ck.safetensors")  # any of the three names works
    assert rebuilt.cfg == model.cfg
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(rebuilt(x), model.eval()(x))
    fresh = tiny()
    opt2 = build_optimizer(fresh, TrainConfig(lr=0.1))
    meta = load_checkpoint(tmp_path / "ck", fresh, opt2)
    assert meta["step"] == 5 and meta["train_config"] == TrainConfig(steps=7) and meta["extra"] == {"note": "x"}
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        for k in a["state"][i]:
            assert torch.equal(a["state"][i][k], b["state"][i][k]), (i, k)


def test_resnet_round_trip(tmp_path):
    model = vitlib.create_model("BiT-R26x1", img_size=32, num_classes=4, stem="cifar", base_width=32).eval()
    save_checkpoint(tmp_path / "rn", model, optimizer=build_optimizer(model, TrainConfig()))
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(load_model(tmp_path / "rn")(x), model(x))
    # into a model of the same config, as a resumed run loads it (its depths a tuple, saved as a JSON list)
    same = vitlib.create_model("BiT-R26x1", img_size=32, num_classes=4, stem="cifar", base_width=32).eval()
    load_checkpoint(tmp_path / "rn", same, build_optimizer(same, TrainConfig()))
    assert torch.equal(same(x), model(x))
    other = vitlib.create_model("BiT-R26x1", img_size=32, num_classes=4, stem="cifar", base_width=32,
                                depths=(1, 1, 1, 1))
    with pytest.raises(CheckpointError, match=r"'depths': \(\[2, 2, 2, 2\], \[1, 1, 1, 1\]\)"):
        load_checkpoint(tmp_path / "rn", other)


def test_other_architecture_is_a_clear_error(tmp_path):
    trained_pair(tmp_path)
    with pytest.raises(CheckpointError, match=r"differs in.*hidden_size.*load_model"):
        load_checkpoint(tmp_path / "ck", tiny(hidden_size=32))
    with pytest.raises(CheckpointError, match="ViT and the model is a ResNet"):
        load_checkpoint(tmp_path / "ck", vitlib.create_model("BiT-R26x1", img_size=32, num_classes=3))


@pytest.mark.parametrize("damage", ["truncate", "flip", "json"])
def test_corrupt_or_truncated_file_is_a_clear_error(tmp_path, damage):
    trained_pair(tmp_path)
    if damage == "json":
        path = tmp_path / "ck.json"
        path.write_text(path.read_text()[:50])
    else:
        path = tmp_path / "ck.safetensors"
        data = bytearray(path.read_bytes())
        data = data[: len(data) // 2] if damage == "truncate" else data[:-1] + bytes([data[-1] ^ 1])
        path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or truncated.*(delete this checkpoint|re-create)"):
        load_model(tmp_path / "ck")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no vitlib checkpoint.*check the path"):
        load_model(tmp_path / "nothing")
    trained_pair(tmp_path)
    (tmp_path / "ck.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="ck.safetensors is missing"):
        load_model(tmp_path / "ck")


def test_weights_only_checkpoint_cannot_resume(tmp_path):
    save_checkpoint(tmp_path / "w", tiny())
    assert json.loads((tmp_path / "w.json").read_text())["files"].keys() == {"weights"}
    with pytest.raises(CheckpointError, match="weights only"):
        load_checkpoint(tmp_path / "w", tiny(), build_optimizer(tiny(), TrainConfig()))


def test_resume_with_another_config_is_refused(tmp_path):
    trained_pair(tmp_path)
    with pytest.raises(CheckpointError, match="differs in.*'lr'"):
        load_checkpoint(tmp_path / "ck", expect_train_config=TrainConfig(steps=7, lr=0.5))
    load_checkpoint(tmp_path / "ck", expect_train_config=TrainConfig(steps=7, log_every=3))  # logging may change


def test_latest_checkpoint_picks_highest_step(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for step in (3, 12, 7):
        save_checkpoint(tmp_path / f"step_{step:07d}", tiny(), step=step)
    assert latest_checkpoint(tmp_path).name == "step_0000012"


def test_every_ranks_rng_state_round_trips(tmp_path):
    """A DDP run saves one state per rank (each rank draws its own numbers); each comes back for its rank."""
    states, draws = [], []
    for rank in (0, 1):
        torch.manual_seed(rank)
        gen = torch.Generator().manual_seed(10 + rank)
        states.append(capture_rng(gen))
        draws.append((torch.rand(3), torch.rand(3, generator=gen)))
    save_checkpoint(tmp_path / "ck", tiny(), rng=states)
    saved = load_checkpoint(tmp_path / "ck")["rng"]
    assert len(saved) == 2
    for rank in (0, 1):
        gen = torch.Generator()
        restore_rng(saved[rank], gen)
        assert torch.equal(torch.rand(3), draws[rank][0]) and torch.equal(torch.rand(3, generator=gen), draws[rank][1])


def test_only_the_current_gpus_rng_state_is_saved_and_restored(monkeypatch):
    """A process uses one GPU: a resume on a machine with fewer GPUs than the saving one must not need the others."""
    set_states = []

    def set_rng_state(state, device="cuda"):
        if torch.device(device).index not in (None, 0):  # this machine has one GPU
            raise RuntimeError("CUDA error: invalid device ordinal")
        set_states.append(state)

    def every_gpu(*args):
        raise AssertionError("the states of every GPU were asked for")

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": torch.arange(16, dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", every_gpu)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: [set_rng_state(s, i) for i, s in
                                                                         enumerate(states)])
    state = capture_rng()
    assert torch.equal(state["cuda"], torch.arange(16, dtype=torch.uint8))
    restore_rng(state)
    older = {**state, "cuda": [torch.full((16,), 10 + i, dtype=torch.uint8) for i in range(8)]}  # a machine of 8 GPUs
    restore_rng(older)  # this process's GPU (the current one) gets its state; the other seven are not needed
    assert [s[0].item() for s in set_states] == [0, 10]

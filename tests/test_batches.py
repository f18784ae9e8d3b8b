"""vitlib.batches: the device-side data path gives make_loader's batches, in its order, bitwise on the CPU."""

import numpy as np
import pytest
import torch

import vitlib
from vitlib import train as train_module
from vitlib.batches import DeviceBatches, batch_indices
from vitlib.data import ImageDataset, Transform, get_dataset, subset
from vitlib.train import TrainConfig, make_loader


@pytest.fixture(scope="module")
def fractal_kw(tmp_path_factory):
    return dict(num_classes=10, images_per_class=8, progress=False,
                cache_dir=str(tmp_path_factory.getbasetemp() / "vitlib_cache"))


@pytest.mark.parametrize("seed, epoch, skip, rank, world, drop_last", [(0, 0, 0, 0, 1, True), (3, 2, 1, 1, 2, True),
                                                                   (1, 5, 2, 2, 3, False)])
def test_batch_indices_are_make_loaders(seed, epoch, skip, rank, world, drop_last):
    data = torch.utils.data.TensorDataset(torch.arange(50))
    kw = dict(shuffle=True, seed=seed, epoch=epoch, skip_batches=skip, rank=rank, world_size=world,
              drop_last=drop_last)
    loader = make_loader(data, 4, **kw)
    ours = list(batch_indices(50, 4, **kw))
    assert ours == [list(b) for b in loader.batch_sampler] and len(ours) == len(loader)
    source = DeviceBatches(subset(get_dataset("digits", "test", 8), 50), "cpu")
    assert len(source.loader(4, **kw)) == len(ours)


def _both_paths(data, batch_size, **kw):
    """Every batch of make_loader (num_workers=0) and of DeviceBatches on the CPU, each from torch seed 5, and the
    global generator's state after each path."""
    out = []
    for path in ("loader", "device"):
        torch.manual_seed(5)
        if path == "loader":
            batches = list(make_loader(data, batch_size, shuffle=True, **kw))
        else:
            batches = list(DeviceBatches(data, "cpu").loader(batch_size, shuffle=True, **kw))
        out.append((batches, torch.get_rng_state()))
    return out


@pytest.mark.parametrize("name, in_chans", [("fractaldb", 3), ("fractaldb", 1), ("digits", 3)])
def test_augmented_batches_are_bitwise_the_dataloaders(name, in_chans, fractal_kw):
    """Random crops, flips, channel handling: the same images, labels and order, and the generator left in the
    same state (so dropout, mixup and checkpoints see the same numbers)."""
    kw = fractal_kw if name == "fractaldb" else {}
    full = get_dataset(name, "train", 16, in_chans=in_chans, **kw)
    assert full.transform.augment
    data = subset(full, 60, seed=1)  # the studies train on subsets: their indices compose
    (ref, ref_state), (ours, our_state) = _both_paths(data, 8, seed=2, epoch=3, skip_batches=1, rank=1, world_size=2)
    assert len(ours) == len(ref) == 30 // 8 - 1
    for (x, y), (xr, yr) in zip(ours, ref):
        assert x.shape == (8, in_chans, 16, 16) and y.dtype == torch.int64
        assert torch.equal(x, xr) and torch.equal(y, yr)
    assert torch.equal(our_state, ref_state)
    assert not torch.equal(ours[0][0], ours[1][0])


def test_without_augmentation_batches_are_the_items_in_order(fractal_kw):
    val = get_dataset("fractaldb", "val", 24, **fractal_kw)
    batches = DeviceBatches(val, "cpu").loader(3, shuffle=False, drop_last=False)
    assert len(batches) == 4 and len(val) == 10
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert torch.equal(x, torch.stack([val[i][0] for i in range(len(val))]))
    assert y.tolist() == val.targets
    assert torch.equal(torch.cat([b[0] for b in batches]), x)  # iterating again: the same (no randomness)
    assert x.min() >= -1 and x.max() <= 1


def test_the_trainer_on_device_batches_ends_with_the_same_weights(fractal_kw):
    """TrainConfig(data_on_device=True): DeviceBatches where the trainer called make_loader. Across epochs, with
    mixup and CutMix: the same weights as the DataLoader path, bitwise."""
    data = get_dataset("fractaldb", "train", 16, **fractal_kw)  # 70 images: 4 steps of 16 per epoch

    def run(**kw):
        torch.manual_seed(0)
        model = vitlib.create_model("ViT-Ti/4", img_size=16, num_classes=10, hidden_size=32, num_layers=1,
                                    num_heads=2, mlp_size=64)
        train_module.train(model, data, TrainConfig(steps=6, batch_size=16, lr=1e-3, progress=False, device="cpu",
                                                    **kw))
        return model.state_dict()

    for mix in (dict(mixup_alpha=0.4), dict(cutmix_alpha=1.0)):
        ref, ours = run(**mix), run(data_on_device=True, **mix)
        assert all(torch.equal(ours[k], ref[k]) for k in ref)
    with pytest.raises(ValueError, match="data_on_device.*num_workers=0"):
        TrainConfig(data_on_device=True, num_workers=2)


def test_lazy_and_foreign_datasets_are_refused_with_the_fix():
    with pytest.raises(TypeError, match="make_loader"):
        DeviceBatches(torch.utils.data.TensorDataset(torch.zeros(4, 3, 8, 8)), "cpu")
    photos = ImageDataset("pets", "train", Transform(8), np.zeros(2), ["cat"], np.arange(2), source=[None, None])
    with pytest.raises(ValueError, match="decoded lazily.*num_workers"):
        DeviceBatches(photos, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_batches_are_the_cpus_to_float_rounding_even_under_tf32(fractal_kw):
    data = get_dataset("fractaldb", "train", 16, **fractal_kw)
    out, precision = [], torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # TF32, as the trainer sets it on CUDA
    try:
        for device in ("cpu", "cuda"):
            torch.manual_seed(5)
            out.append([(x.cpu(), y.cpu()) for x, y in DeviceBatches(data, device).loader(16, shuffle=True, seed=1)])
    finally:
        torch.set_float32_matmul_precision(precision)
    for (x, y), (xr, yr) in zip(out[1], out[0]):
        assert torch.equal(y, yr) and (x - xr).abs().max() <= 1e-5

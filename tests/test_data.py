"""vitlib.data: names, splits, sizes, value range, channels, transforms against torch, errors, ImageFolder."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vitlib import data
from vitlib.data import DatasetNotFoundError, get_dataset

FRACTAL = dict(num_classes=10, images_per_class=8, progress=False)


@pytest.fixture
def fractal_kw(tmp_path_factory):
    return dict(FRACTAL, cache_dir=str(tmp_path_factory.getbasetemp() / "vitlib_cache"))


def test_unknown_name_and_bad_arguments():
    with pytest.raises(ValueError, match="fashion_mnist.*imagefolder"):
        get_dataset("jft300m", "train", 32)
    with pytest.raises(ValueError, match="'train', 'val' or 'test'"):
        get_dataset("digits", "validation", 32)
    with pytest.raises(ValueError, match="in_chans"):
        get_dataset("digits", "train", 32, in_chans=2)
    with pytest.raises(TypeError, match="unexpected options"):
        get_dataset("digits", "train", 32, num_classes=3)
    with pytest.raises(TypeError, match="unexpected fractaldb options"):
        get_dataset("fractaldb", "train", 32, colour="red")


def test_fashion_mnist_sizes_and_disjoint_val():
    train, val, test = (get_dataset("fashion_mnist", s, 32) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (54000, 6000, 10000)
    assert train.num_classes == 10 and train.classes[9] == "Ankle boot"
    assert not set(train.index) & set(val.index) and len(set(train.index) | set(val.index)) == 60000
    assert np.bincount(val.targets).tolist() == [600] * 10  # stratified
    assert np.bincount(test.targets).tolist() == [1000] * 10
    x, y = test[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # grey repeated to 3 channels
    other = get_dataset("fashion_mnist", "val", 32, seed=1)
    assert set(other.index) != set(val.index)


def test_eval_transform_is_torch_bilinear_and_range_is_minus1_1():
    """Eval = resize (no crop on square images): equals F.interpolate bilinear, up- and down-sampling,
    then x / 127.5 - 1, so 0 -> -1 and 255 -> 1."""
    test = get_dataset("fashion_mnist", "test", 32, in_chans=1)
    raw = test.images[:8].float()
    batch = torch.stack([test[i][0] for i in range(8)])
    ref = F.interpolate(raw, size=32, mode="bilinear", align_corners=False) / 127.5 - 1
    torch.testing.assert_close(batch, ref, atol=1e-4, rtol=0)
    small = get_dataset("fashion_mnist", "test", 16, in_chans=1)
    ref = F.interpolate(raw, size=16, mode="bilinear", align_corners=False, antialias=True) / 127.5 - 1
    torch.testing.assert_close(torch.stack([small[i][0] for i in range(8)]), ref, atol=1e-4, rtol=0)
    same = get_dataset("fashion_mnist", "test", 28, in_chans=1)
    torch.testing.assert_close(same[0][0], raw[0] / 127.5 - 1, atol=1e-5, rtol=0)  # same size: identity
    assert same[0][0].min() == -1.0 and (same[0][0].max() <= 1.0)


def test_crop_box_and_flip_match_slicing():
    img = torch.randint(0, 256, (2, 3, 20, 24), dtype=torch.uint8)
    boxes = torch.tensor([[2.0, 4.0, 10.0, 12.0], [0.0, 0.0, 20.0, 24.0]])
    out = data.resized_crop(img, boxes, 10, flip=torch.tensor([False, True]))
    ref0 = F.interpolate(img[:1, :, 2:12, 4:16].float(), size=10, mode="bilinear", antialias=True)
    ref1 = F.interpolate(img[1:].float(), size=10, mode="bilinear", antialias=True).flip(-1)
    torch.testing.assert_close(out, torch.cat([ref0, ref1]), atol=1e-3, rtol=0)


def test_random_boxes_follow_scale_and_ratio():
    torch.manual_seed(0)
    b = data.random_boxes(2000, 28, 28, (0.35, 1.0), (3 / 4, 4 / 3))
    area = b[:, 2] * b[:, 3] / 28**2
    assert area.min() >= 0.35 - 1e-5 and area.max() <= 1 + 1e-5
    assert (b[:, 0] >= 0).all() and (b[:, 0] + b[:, 2] <= 28 + 1e-4).all()
    assert (b[:, 1] >= 0).all() and (b[:, 1] + b[:, 3] <= 28 + 1e-4).all()
    ratio = b[:, 3] / b[:, 2]
    assert ratio.min() >= 3 / 4 - 1e-4 and ratio.max() <= 4 / 3 + 1e-4


def test_augment_defaults_and_loader_batches(fractal_kw):
    train = get_dataset("fractaldb", "train", 32, **fractal_kw)
    val = get_dataset("fractaldb", "val", 32, **fractal_kw)
    test = get_dataset("fractaldb", "test", 32, **fractal_kw)
    assert train.transform.augment and not val.transform.augment and not test.transform.augment
    assert (len(train), len(val), len(test)) == (70, 10, 10) and not set(train.index) & set(val.index)
    assert train.num_classes == 10 and sorted(set(test.targets)) == list(range(10))
    torch.manual_seed(0)
    a = train[5][0]
    torch.manual_seed(1)
    assert not torch.equal(a, train[5][0])  # random crops
    loader = torch.utils.data.DataLoader(test, batch_size=4)  # calls __getitems__: one vectorised batch
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 32, 32) and y.tolist() == test.targets[:4]
    torch.testing.assert_close(x, torch.stack([test[i][0] for i in range(4)]))
    xt, _ = next(iter(torch.utils.data.DataLoader(train, batch_size=16, shuffle=True)))
    assert xt.shape == (16, 3, 32, 32) and xt.min() >= -1 and xt.max() <= 1


def test_colour_to_one_channel_is_luma(fractal_kw):
    rgb = get_dataset("fractaldb", "test", 32, **fractal_kw)[0][0]
    grey = get_dataset("fractaldb", "test", 32, in_chans=1, **fractal_kw)[0][0]
    luma = ((rgb + 1) * 127.5 * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0) / 127.5 - 1
    assert grey.shape == (1, 32, 32)
    torch.testing.assert_close(grey[0], luma, atol=1e-4, rtol=0)


def test_digit_sets_carve_a_fixed_test_split():
    train, val, test = (get_dataset("digits", s, 8, seed=3) for s in ("train", "val", "test"))
    assert len(train) + len(val) + len(test) == 1797 and len(test) == 359
    assert not train.transform.hflip  # a mirrored digit is another symbol
    assert get_dataset("digits", "test", 8, seed=7).targets == test.targets  # does not depend on seed
    x = test[0][0]
    assert x.shape == (3, 8, 8) and x.min() == -1.0
    m = get_dataset("mnist5k", "test", 28, in_chans=1)
    assert len(m) == 1000 and np.bincount(m.targets).min() > 60 and m[0][0].shape == (1, 28, 28)


def test_missing_files_say_where_and_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match=f"{tmp_path}.*download=True.*fashion_mnist"):
        get_dataset("cifar10", "train", 32, data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="ILSVRC-2012 layout"):
        get_dataset("imagefolder", "train", 32, data_dir=tmp_path)
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    data._fashion_mnist.cache_clear()
    try:
        with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
            get_dataset("fashion_mnist", "train", 32, data_dir=tmp_path)
    finally:
        data._fashion_mnist.cache_clear()


def test_imagefolder_on_a_written_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                arr = (np.array(colour) * rng.uniform(0.5, 1, (30, 40, 1))).astype(np.uint8)  # 30 x 40, not square
                Image.fromarray(arr).save(tmp_path / split / cls / f"{i}.png")
    train = get_dataset("imagefolder", "train", 16, data_dir=tmp_path, val_fraction=0.2)
    val = get_dataset("imagefolder", "val", 16, data_dir=tmp_path, val_fraction=0.2)
    test = get_dataset("imagefolder", "test", 16, in_chans=1, data_dir=tmp_path)
    assert train.classes == ["cat", "dog"] and (len(train), len(val), len(test)) == (10, 2, 4)  # 1 val per class
    assert train.transform.crop_scale == (0.08, 1.0)
    x, y = test[0]
    assert x.shape == (1, 16, 16) and y == 0
    xr, yr = val[0]
    assert xr.shape == (3, 16, 16) and xr[0].mean() > xr[2].mean()  # a red cat
    batch, labels = next(iter(torch.utils.data.DataLoader(train, batch_size=8)))
    assert batch.shape == (8, 3, 16, 16) and labels.tolist() == train.targets[:8]


def test_subset_is_a_seeded_prefix():
    ds = torch.utils.data.TensorDataset(torch.arange(50))
    a, b = data.subset(ds, 10, seed=3), data.subset(ds, 20, seed=3)
    assert len(a) == 10 and a.indices == b.indices[:10] and a.indices != data.subset(ds, 10, seed=4).indices


def test_sample_per_class_counts_and_prefix():
    targets = np.repeat(np.arange(3), [4, 6, 5])
    two = data.sample_per_class(targets, 2, seed=1)
    assert list(two) == [0, 1, 2] and all(len(v) == 2 and (targets[v] == c).all() for c, v in two.items())
    four = data.sample_per_class(targets, lambda n: n - 1, seed=1)
    assert [len(v) for v in four.values()] == [3, 5, 4] and all((four[c][:2] == two[c]).all() for c in two)

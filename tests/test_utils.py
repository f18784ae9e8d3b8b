"""vitlib.utils: the input check, eval_mode, atomic_write."""

import pytest
import torch
from torch import nn

from vitlib.utils import atomic_write, check_image_batch, eval_mode


def test_check_image_batch_names_the_problem():
    check_image_batch(torch.zeros(2, 3, 8, 8), 3)
    with pytest.raises(ValueError, match="add a batch dim"):
        check_image_batch(torch.zeros(3, 8, 8), 3)
    with pytest.raises(ValueError, match="in_chans=1"):
        check_image_batch(torch.zeros(2, 1, 8, 8), 3)


@pytest.mark.parametrize("mode", [True, False])
def test_eval_mode_restores_the_mode_even_after_an_error(mode):
    model = nn.Sequential(nn.Dropout()).train(mode)
    with eval_mode(model):
        assert not model.training and not model[0].training
    assert model.training is mode and model[0].training is mode
    with pytest.raises(RuntimeError), eval_mode(model):
        raise RuntimeError
    assert model.training is mode


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    path = atomic_write(tmp_path / "sub" / "a.txt", lambda tmp: tmp.write_text("one"))
    assert path.read_text() == "one"

    def crash(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, crash)
    assert path.read_text() == "one" and sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]
    atomic_write(path, lambda tmp: tmp.write_text("two"))  # a file is replaced
    assert path.read_text() == "two"


def test_atomic_write_of_a_folder_keeps_the_first_one(tmp_path):
    def folder(text):
        def write(tmp):
            tmp.mkdir()
            (tmp / "x").write_text(text)
        return write

    atomic_write(tmp_path / "cache", folder("first"))
    atomic_write(tmp_path / "cache", folder("second"))  # another writer finished first: its copy is kept
    assert (tmp_path / "cache" / "x").read_text() == "first" and len(list(tmp_path.iterdir())) == 1

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may wait on a hub

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

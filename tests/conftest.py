"""Set-up for tests/: no hub, a fixed torch seed, and the CPU as the only device.

The suite compares runs with CPU references at fp32 tolerances, so it runs on the CPU on every machine: CUDA
devices are hidden from the tests and the subprocesses they start (CUDA_VISIBLE_DEVICES="", which torch reads when
CUDA initialises, not at import). Tests that need a GPU (skipped without one) run with VITLIB_TEST_CUDA=1, e.g.
`VITLIB_TEST_CUDA=1 pytest tests/test_batches.py -k gpu`.
"""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may wait on a hub
if os.environ.get("VITLIB_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)

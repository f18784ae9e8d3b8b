"""Loaded by pytest for tests/, the notebooks under --nbval and the doctests alike: every run gets a fresh
VITLIB_CACHE (fractal renders, mnist5k, datasets), so tests never read or write the user's ~/.cache/vitlib
and never pass because of something a previous run left there. Notebook kernels inherit the variable."""

import os
import shutil
import tempfile

_CACHE = tempfile.mkdtemp(prefix="vitlib-test-cache-")
os.environ["VITLIB_CACHE"] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)

"""Each notebook's Jupytext pair is in sync: notebooks/NN_topic.py (the source) and NN_topic.ipynb (what
JupyterLab, papermill and nbval open) hold the same cells, with the same types, sources and tags.
After editing the .py: `jupytext --sync notebooks/NN_topic.py` (then re-execute the .ipynb)."""

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="the notebooks extra (pip install -e '.[notebooks]')")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
STEMS = sorted({p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*") if p.suffix in (".py", ".ipynb")})


def cells(path: Path) -> list[tuple[str, str, list[str]]]:
    nb = jupytext.read(path)
    return [(c.cell_type, c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_there_are_notebooks():
    assert len(STEMS) >= 6, STEMS


@pytest.mark.parametrize("stem", STEMS)
def test_py_and_ipynb_hold_the_same_cells(stem):
    py, ipynb = NOTEBOOKS / f"{stem}.py", NOTEBOOKS / f"{stem}.ipynb"
    assert py.exists() and ipynb.exists(), f"{stem}: both {py.name} and {ipynb.name} must exist (a Jupytext pair)"
    assert "py:percent" in jupytext.read(ipynb).metadata.get("jupytext", {}).get("formats", ""), \
        f"{ipynb.name} is not paired with a percent .py: jupytext --set-formats ipynb,py:percent {ipynb}"
    a, b = cells(py), cells(ipynb)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"{stem}: cell {i} differs between .py and .ipynb: jupytext --sync {py}\n{x}\n{y}"
    assert len(a) == len(b), f"{stem}: {len(a)} cells in .py, {len(b)} in .ipynb: jupytext --sync {py}"

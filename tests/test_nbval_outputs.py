"""nbval compares notebook outputs without the bytes that depend on library versions (conftest.py at the
repository's root): plotly's template and base64 arrays, Pillow-encoded images and pandas' HTML, while the
numbers are still compared."""

import base64
import copy
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("vitlib_root_conftest", ROOT / "conftest.py")
root_conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(root_conftest)  # no side effects: the cache is set in pytest_configure
canonical_output = root_conftest.canonical_output

go = pytest.importorskip("plotly.graph_objects", reason="the notebooks extra")
pio = pytest.importorskip("plotly.io")


def bundle(fig) -> dict:
    """What a notebook stores for a figure: the plotly renderer's JSON (numpy arrays as base64 `bdata`)."""
    return pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())["application/vnd.plotly.v1+json"]


def as_older_release(fig_json: dict) -> dict:
    """The same figure as another plotly release might store it: other template, arrays as plain lists."""
    old = copy.deepcopy(fig_json)
    old["layout"]["template"] = {"layout": {"font": {"family": "another release's default"}}}
    for trace in old["data"]:
        for key, v in list(trace.items()):
            if isinstance(v, dict) and "bdata" in v:
                trace[key] = np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"]).tolist()
    return old


def figure(y=(0.5, 1.5, 2.25)):
    return go.Figure(go.Scatter(x=np.arange(3), y=np.array(y)), layout=dict(template="plotly_white", width=300))


def test_plotly_template_and_array_encoding_do_not_matter():
    new = bundle(figure())
    assert "bdata" in json.dumps(new["data"]) and new["layout"]["template"]  # what this plotly stores
    assert canonical_output(as_older_release(new)) == canonical_output(new)
    assert new != as_older_release(new)  # compared raw, they differ


def test_plotly_numbers_are_still_compared():
    assert canonical_output(bundle(figure((0.5, 1.5, 2.26)))) != canonical_output(bundle(figure()))
    assert canonical_output(bundle(figure((0.5, 1.5, 2.25 + 1e-12)))) == canonical_output(bundle(figure()))
    assert "300" in canonical_output(bundle(figure()))  # the layout beyond the template too


def test_embedded_images_compare_by_pixels_not_encoder_bytes():
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)

    def uri(fmt, img=pixels, **kw):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt, **kw)
        return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()

    def fig(source):
        return {"data": [{"type": "image", "source": source}], "layout": {}}

    # PNG: another compression level (another encoder) gives other bytes, the same pixels
    assert uri("PNG", compress_level=1) != uri("PNG", compress_level=9)
    assert canonical_output(fig(uri("PNG", compress_level=1))) == canonical_output(fig(uri("PNG", compress_level=9)))
    other = pixels.copy()
    other[0, 0, 0] ^= 1
    assert canonical_output(fig(uri("PNG", img=other))) != canonical_output(fig(uri("PNG")))
    # JPEG is lossy and encoder-dependent: compared by mode and size
    assert canonical_output(fig(uri("JPEG", quality=70))) == canonical_output(fig(uri("JPEG", quality=95)))
    assert "image/jpeg RGB 5x6" in canonical_output(fig(uri("JPEG")))


def test_pandas_html_is_left_to_its_text_plain():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"params": [5717416, 22050664]}, index=["ViT-Ti/16", "ViT-S/16"])
    assert canonical_output(frame._repr_html_()) == canonical_output('<div><table class="dataframe"></table></div>')
    assert canonical_output(frame.to_string()) == frame.to_string()  # text: unchanged


def test_nbval_passes_a_notebook_stored_by_another_plotly_release(tmp_path):
    """End to end: a one-figure notebook whose stored output is what another plotly release would write passes
    `pytest --nbval` with the repository's conftest.py and fails without it; a changed number still fails."""
    nbformat = pytest.importorskip("nbformat")
    source = ("import numpy as np, plotly.graph_objects as go\n"
              "go.Figure(go.Scatter(x=np.arange(3), y=np.array([0.5, 1.5, 2.25])),\n"
              "          layout=dict(template='plotly_white', width=300))")
    stored = as_older_release(bundle(figure()))  # this process's plotly is the kernel's: only the release differs
    for name, y2 in (("older.ipynb", 2.25), ("changed.ipynb", 2.5)):
        fig = copy.deepcopy(stored)
        fig["data"][0]["y"][2] = y2
        cell = nbformat.v4.new_code_cell(source, execution_count=1, outputs=[nbformat.v4.new_output(
            "execute_result", data={"application/vnd.plotly.v1+json": fig}, execution_count=1)])
        nb = nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, tmp_path / name)
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")  # the repository's nbval set-up

    def nbval(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--nbval",
                               *args], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    both = nbval("older.ipynb", "changed.ipynb")
    assert "PASSED older.ipynb::Cell 0" in both.stdout and "FAILED changed.ipynb::Cell 0" in both.stdout, \
        both.stdout[-3000:]
    raw = nbval("older.ipynb", "--noconftest")
    assert "FAILED older.ipynb::Cell 0" in raw.stdout, raw.stdout[-3000:]  # compared raw, the release shows

"""pytest set-up shared by tests/, the doctests and the notebooks under --nbval (this file sits above them all).

1. A fresh VITLIB_CACHE for every pytest session (fractal renders, mnist5k, datasets): tests never read or
   write the user's ~/.cache/vitlib, and never pass because of something a previous run left there.
   Notebook kernels and subprocesses inherit the variable.
2. Under --nbval, stored and new outputs are compared in a canonical form that keeps the numbers and drops
   the bytes that depend on library versions (tests/test_nbval_outputs.py):
   - plotly figures (application/vnd.plotly.v1+json): the layout's `template` (plotly's styling, which
     changes between releases) is dropped; base64 typed arrays ({"bdata", "dtype", "shape"}) become plain
     numbers, and every float is compared to 6 significant digits;
   - images inside a figure (data:image/... URIs, which Pillow encodes): PNG by their decoded pixels, JPEG
     (lossy: the encoder's output changes with the Pillow/libjpeg release) by mode and size only;
   - pandas' HTML tables: left out; the same numbers are compared in the text/plain output beside them.
   nbval itself already skips image/png outputs and widget model ids.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import tempfile

PLOTLY_MIME_KEYS = ("data", "layout")


def pytest_configure(config):
    cache = tempfile.mkdtemp(prefix="vitlib-test-cache-")
    os.environ["VITLIB_CACHE"] = cache
    config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
    if getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False):
        from nbval.plugin import IPyNbCell

        regex_sanitize = IPyNbCell.sanitize
        IPyNbCell.sanitize = lambda self, s: regex_sanitize(self, canonical_output(s))


def canonical_output(value):
    """The version-independent form of one output value (a MIME bundle entry) that nbval compares."""
    if isinstance(value, dict) and set(value) >= set(PLOTLY_MIME_KEYS):
        layout = {k: v for k, v in value["layout"].items() if k != "template"}
        return json.dumps(_numbers({"data": value["data"], "layout": layout}), sort_keys=True)
    if isinstance(value, str) and 'class="dataframe"' in value and value.lstrip().startswith("<"):
        return "<pandas HTML table: its numbers are compared in text/plain>"
    return value


def _numbers(x):
    """Decode plotly's base64 arrays, round floats to 6 significant digits, reduce image URIs to their content."""
    if isinstance(x, dict):
        if "bdata" in x and "dtype" in x:
            import numpy as np

            a = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"])
            if "shape" in x:
                a = a.reshape([int(n) for n in str(x["shape"]).split(",")])
            return _numbers(a.tolist())
        return {k: _numbers(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_numbers(v) for v in x]
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, str) and x.startswith("data:image/") and ";base64," in x:
        return _image(x)
    return x


def _image(uri: str) -> str:
    import numpy as np
    from PIL import Image

    header, data = uri.split(",", 1)
    img = Image.open(io.BytesIO(base64.b64decode(data)))
    out = f"{header.split(';')[0]} {img.mode} {img.size[0]}x{img.size[1]}"
    if img.format == "PNG":  # lossless: the pixels are the numbers
        out += " pixels " + hashlib.sha256(np.asarray(img).tobytes()).hexdigest()[:16]
    return out

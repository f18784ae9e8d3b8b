"""`make site` (vitlib.site.build_site): every page opened from disk in Debian's chromium (Playwright with
`executable_path`: no browser download) loads without a console error or a failed request and asks for nothing
outside the site (a request to any other URL than file:// or inline data fails the test: the site works offline);
every plotly figure of a notebook is drawn; MathJax typesets the equations of notebooks 01 and 02, leaving no `$$`
behind; every link between pages leads to a page of the site.

Needs chromium and playwright like tests/test_jupyterlab.py (missing either is a failure that says so, not a skip).
Screenshots of the index and of notebook 01 go to $VITLIB_SCREENSHOTS when set (else a temporary folder).
"""

import os
import re
from pathlib import Path

import nbformat
import pytest
from test_jupyterlab import CHROMIUM, CHROMIUM_ARGS, _playwright

from vitlib.site import PLOTLY_MIME, build_site

ROOT = Path(__file__).resolve().parent.parent
WITH_EQUATIONS = ("01_patch_embedding.html", "02_transformer_encoder.html")
INLINE = ("file://", "data:", "blob:", "about:")  # everything else is the network

# Per page: plotly divs, those drawn (an SVG inside), MathJax elements, the text left with `$$`, the local links.
PAGE_STATE_JS = """() => ({
  divs: document.querySelectorAll('.plotly-graph-div').length,
  drawn: [...document.querySelectorAll('.plotly-graph-div')].filter(d => d.querySelector('.main-svg')).length,
  math: document.querySelectorAll('.MathJax, .MathJax_Display, mjx-container').length,
  math_errors: document.querySelectorAll('.MathJax_Error, merror').length,
  dollars: [...document.querySelectorAll('.jp-RenderedMarkdown')].filter(e => e.innerText.includes('$$')).length,
  links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))
           .filter(h => !h.startsWith('#') && !/^[a-z]+:/.test(h)),
})"""
MATHJAX_DONE_JS = "() => new Promise(done => window.MathJax.Hub.Queue(() => done(true)))"


def figures_in(notebook: Path) -> int:
    """The plotly outputs a committed notebook holds."""
    nb = nbformat.read(notebook, as_version=4)
    return sum(PLOTLY_MIME in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def watch(page) -> list[str]:
    """The list that `page`'s console errors, uncaught errors, failed requests and requests to the network go to."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})"))
    page.on("request", lambda r: None if r.url.startswith(INLINE) else
            problems.append(f"request outside the site: {r.url}"))
    return problems


def test_the_site_works_offline_with_figures_equations_and_links(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium (Debian; setup.sh does it as root), "
                    "or set VITLIB_CHROMIUM to a Chromium binary")
    playwright = _playwright()
    shots = Path(os.environ.get("VITLIB_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    site = tmp_path / "site"
    pages = build_site(site)
    names = [p.name for p in pages]
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert names == ["index.html", *(f"{nb.stem}.html" for nb in notebooks), "results.html"]
    expected = {f"{nb.stem}.html": figures_in(nb) for nb in notebooks}

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route(re.compile(r"^(https?|wss?|ftp)://"), lambda route: route.abort())  # never wait on it
            for path in pages:
                page = context.new_page()
                problems = watch(page)
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_function(MATHJAX_DONE_JS, timeout=30_000)
                figures = expected.get(path.name, 0)
                page.wait_for_function(f"() => ({PAGE_STATE_JS})().drawn === {figures}", timeout=30_000)
                state = page.evaluate(PAGE_STATE_JS)
                assert problems == [], f"{path.name}: {problems}"
                assert state["divs"] == state["drawn"] == figures, f"{path.name}: {state}"
                assert state["math_errors"] == 0 and state["dollars"] == 0, f"{path.name}: MathJax left {state}"
                if path.name in WITH_EQUATIONS:
                    assert state["math"] > 0, f"{path.name}: MathJax typeset nothing"
                for link in state["links"]:
                    assert (site / link.split("#")[0]).is_file(), f"{path.name} links to {link}, not in the site"
                if path.name == "index.html":
                    assert set(names) - {"index.html"} <= set(state["links"]), f"index links {state['links']}"
                    page.screenshot(path=shots / "site_index.png")
                elif path.name == WITH_EQUATIONS[0]:
                    page.locator(".MathJax_Display").first.scroll_into_view_if_needed()  # an equation, a figure
                    page.screenshot(path=shots / "site_01_patch_embedding.png")
                page.close()
        finally:
            browser.close()

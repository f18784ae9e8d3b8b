"""The notebooks the way users open them: JupyterLab started headless on a free local port, Debian's chromium driven
by Playwright (no browser download: `executable_path`). Notebook 06 (smoke profile): all cells run, no error
output, the attention explorer rendered, and a click on a patch of its weight map moves the query there. Notebooks
04, 05 and 08 opened as committed (nothing run): the figures the page shows carry the titles that the committed results
files give (their profile and run count), so a reader sees the full results, not a smoke run.

Needs Debian's chromium (`apt-get install -y chromium`; setup.sh does it as root; VITLIB_CHROMIUM names another
binary) and playwright (the dev extra). Missing either is a failure that says so, not a silent skip.
Screenshots go to $VITLIB_SCREENSHOTS when set (else a temporary folder), for a person to look at.
"""

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vitlib.checkpoints import load_model
from vitlib.finetune import SHIPPED
from vitlib.records import FIGURES_DIR, load_results
from vitlib.results import TIME_TO_ACCURACY_GOAL

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("VITLIB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RUN_TIMEOUT_S = 600  # all of notebook 06, smoke profile (under a minute on a quiet 2-core CPU)

# State of the open notebook, read from JupyterLab's own models (window.jupyterapp: expose_app_in_browser).
NOTEBOOK_STATE_JS = """() => {
  if (!window.jupyterapp) return null;
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  cells.forEach((c, i) => c.model.outputs.toJSON().forEach(o => {
    if (o.output_type === 'error') errors.push(`code cell ${i}: ${o.ename}: ${o.evalue}`);
  }));
  return {kernel: kernel ? kernel.status : null, code_cells: cells.length, errors: errors,
          done: cells.filter(c => c.model.executionCount !== null).length,
          running: cells.filter(c => c.promptNode && c.promptNode.textContent.includes('*')).length};
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0  # JupyterLab refuses root without --allow-root


@contextlib.contextmanager
def jupyterlab(work: Path, tmp: Path):
    """A JupyterLab server on a free port serving `work`; its config, settings, workspaces and runtime files
    live in `tmp`. Yields {"url", "token"}."""
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no news or update checks: the browser stays offline
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                          "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}
    log_path = tmp / "jupyterlab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
             "--LabApp.expose_app_in_browser=True", *(["--allow-root"] if _root() else [])],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"JupyterLab did not start: {log_path.read_text()[-3000:]}")
                    time.sleep(0.5)
            yield dict(url=url, token=token)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving copies of notebooks 04, 05, 08 (as committed) and 06 (set to its smoke profile, a minute less
    than as committed); the repository's files are never saved over."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium (Debian; setup.sh does it as root), "
                    "or set VITLIB_CHROMIUM to a Chromium binary")
    work = tmp_path / "lab"
    work.mkdir()
    for name in ("04_finetune.ipynb", "05_scaling.ipynb", "08_ablations.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, work)
    nb = json.loads((ROOT / "notebooks" / "06_inspect.ipynb").read_text())  # run here in its smoke profile
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    assert 'profile = "full"' in source, "06's parameters cell changed: update this test"
    cell["source"] = source.replace('profile = "full"', 'profile = "smoke"')
    (work / "06_inspect.ipynb").write_text(json.dumps(nb))
    with jupyterlab(work, tmp_path) as server:
        yield server


def expected_titles() -> dict[str, list[str]]:
    """Per notebook, the figure titles (or the part of them) that only the committed results files give: the
    headline's file (its profile and run count; the pilot until the full file exists), the first sweep's full
    profile, 08's long profile, and 04's time-to-accuracy runs (their count)."""
    curves = FIGURES_DIR / "scaling_curves.json"
    record = load_results((curves if curves.exists() else FIGURES_DIR / "scaling_curves_pilot.json").stem)
    label = f"({record['results']['profile']} profile, {len(record['results']['rows'])} runs)"
    tta = load_results("time_to_accuracy")["results"]["rows"]
    return {"04_finetune.ipynb": [f"Fashion-MNIST test accuracy against minutes of training ({len(tta)} runs; dashed: "
                                  f"the goal's {TIME_TO_ACCURACY_GOAL[1] // 60} minutes)"],
            "05_scaling.ipynb": [f"05 · the headline's runs {label}",
                                 f"05 · attention distance per layer along training {label}",
                                 f"05 · Fig. 3/4 and 5 from the headline's runs {label}",
                                 "05 · Fig. 3/4: transfer vs pre-training set size (full; dotted: untrained)",
                                 "05 · Fig. 5: transfer vs pre-training compute (full; dotted: untrained)"],
            "08_ablations.ipynb": ["08 · Table 8: position embeddings (long)",
                                   "08 · Section 4.6: masked patch prediction (long)"]}


def test_notebooks_04_05_and_08_show_the_committed_results_in_jupyterlab(lab, tmp_path):
    """Opened as committed, without running anything: every figure renders, with the full or long profile's
    titles, and no cell holds an error."""
    shots = Path(os.environ.get("VITLIB_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    playwright = _playwright()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for notebook, titles in expected_titles().items():
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{lab['url']}/lab/tree/{notebook}?reset&token={lab['token']}")  # reset: only this one
                page.wait_for_function(f"() => {{ const s = ({NOTEBOOK_STATE_JS})(); return s && s.code_cells > 0 "
                                       f"&& window.jupyterapp.shell.currentWidget.context.path === '{notebook}' "
                                       f"&& ({PLOT_CELLS_JS})().length > 0; }}", timeout=120_000)  # outputs loaded
                assert page.evaluate(NOTEBOOK_STATE_JS)["errors"] == [], f"{notebook} is committed with errors"
                shown = []
                for i in page.evaluate(PLOT_CELLS_JS):  # JupyterLab renders only the cells near the viewport
                    page.evaluate(SCROLL_TO_CELL_JS, i)
                    plot = page.locator(f"[data-vitlib-cell='{i}'] .js-plotly-plot")
                    playwright.expect(plot.locator(".main-svg").first).to_be_visible(timeout=60_000)
                    drawn = plot.locator(".gtitle").all_text_contents()
                    shown += drawn
                    for k in [k for k, title in enumerate(titles) if title in drawn]:  # one per expected figure
                        page.screenshot(path=shots / f"{notebook.removesuffix('.ipynb')}_as_committed_{k}.png")
                for title in titles:
                    assert title in shown, f"{notebook}: no figure titled {title!r}; the page shows {shown}"
                page.close()
        finally:
            browser.close()


# The indices of the cells with a plotly output, and bringing one into view.
PLOT_CELLS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map((c, i) =>
  c.model.type === 'code' && c.model.outputs.toJSON().some(o => o.data && o.data['application/vnd.plotly.v1+json'])
  ? i : -1).filter(i => i >= 0)"""
SCROLL_TO_CELL_JS = """async (i) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = i;
  nb.widgets[i].node.setAttribute('data-vitlib-cell', String(i));
  await nb.scrollToCell(nb.widgets[i], 'start');
}"""


def _playwright():
    """playwright's sync API (sync_playwright, expect), or a failure that says how to install it."""
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[dev]' (the library only: never `playwright install`, "
                    f"the test drives {CHROMIUM})")
    return sync_api


def test_notebook_06_runs_in_jupyterlab_and_its_explorer_answers_clicks(lab, tmp_path):
    shots = Path(os.environ.get("VITLIB_SCREENSHOTS") or tmp_path / "screenshots")
    run_all_and_click_explorer(lab["url"], lab["token"], "06_inspect.ipynb", shots)


def run_all_and_click_explorer(url: str, token: str, notebook: str, shots: Path) -> None:
    """Open `notebook` in JupyterLab, run all cells, check for errors, find the attention explorer (on the shipped
    model's patch grid) and click its top-left patch. Screenshots go to `shots`."""
    gh, gw = load_model(SHIPPED).grid  # the explorer starts at the grid's centre
    playwright = _playwright()
    expect, sync_playwright = playwright.expect, playwright.sync_playwright
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{notebook}?token={token}")
            page.wait_for_function(f"() => {{ const s = ({NOTEBOOK_STATE_JS})(); return s && s.kernel === 'idle'; }}",
                                   timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:
                state = page.evaluate(NOTEBOOK_STATE_JS)
                if state["errors"]:
                    page.screenshot(path=shots / "06_error.png")
                    pytest.fail(f"{notebook} raised in JupyterLab: {state['errors']} (screenshot in {shots})")
                if state["done"] == state["code_cells"] and not state["running"] and state["kernel"] == "idle":
                    break
                if time.monotonic() > deadline:
                    page.screenshot(path=shots / "06_timeout.png")
                    pytest.fail(f"{notebook} did not finish in {RUN_TIMEOUT_S} s: {state}")
                time.sleep(1)

            # the explorer's cell: bring it into view (JupyterLab renders only the cells near the viewport)
            page.evaluate("""async () => {
              const nb = window.jupyterapp.shell.currentWidget.content;
              const i = nb.widgets.findIndex(c => c.model.sharedModel.getSource().includes('attention_explorer('));
              nb.activeCellIndex = i;
              await nb.scrollToCell(nb.widgets[i], 'start');
            }""")
            explorer = page.locator(".jp-OutputArea-output .widget-vbox").filter(has=page.locator(".js-plotly-plot"))
            expect(explorer).to_have_count(1, timeout=60_000)
            explorer.scroll_into_view_if_needed()
            title = explorer.locator(".gtitle")
            expect(title).to_contain_text(f"query: patch (row {gh // 2}, col {gw // 2})", timeout=60_000)
            for label in ("image", "layer", "head", "query row", "query col", "class token as query"):
                expect(explorer.get_by_text(label, exact=True).first).to_be_visible()
            page.screenshot(path=shots / "06_explorer_before_click.png")

            # a click on the top-left patch of the weight map (right panel; its y axis is reversed: row 0 on top)
            weights = explorer.locator(".nsewdrag[data-subplot='x2y2']")
            box = weights.bounding_box()
            x, y = box["x"] + 0.5 / gw * box["width"], box["y"] + 0.5 / gh * box["height"]  # the first cell's centre
            page.mouse.move(x, y)
            page.mouse.move(x + 1, y + 1)  # plotly picks the clicked point from the hover
            page.mouse.click(x + 1, y + 1)
            expect(title).to_contain_text("query: patch (row 0, col 0)", timeout=60_000)
            page.screenshot(path=shots / "06_explorer_after_click.png")
        finally:
            browser.close()

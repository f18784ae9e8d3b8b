"""A static HTML site of the committed notebooks and RESULTS.md that works offline: `python -m vitlib site`
(`make site`), then open site/index.html.

One page per notebook as committed (nothing is executed), one for RESULTS.md and an index page (the README's
notebooks table and claims table), all rendered by nbconvert's lab template with a few blocks replaced (TEMPLATE
below); Markdown pages go through the same exporter as one-cell notebooks. Plotly figures are drawn by the
plotly.js of the installed plotly package, equations by the MathJax 2 that jupyter-server-mathjax ships; both are
copied into the site, so no page loads anything from the network.

Deviations from the paper: none (nothing here is in the paper).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import jupyter_server_mathjax
import nbformat
import plotly
import plotly.io as pio
from jinja2 import DictLoader
from nbconvert import HTMLExporter

from .records import ROOT

__all__ = ["build_site", "SITE_DIR"]

SITE_DIR = ROOT / "site"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"  # the config jupyter-server-mathjax has

# nbconvert's lab template without its CDN scripts (require.js, the widget manager, mermaid): plotly.js from the
# site instead; MathJax set to the only fonts jupyter-server-mathjax ships (STIX-Web), without the two things that
# would ask for others (the hidden MathML copy, whose styles name the TeX fonts, and the blank font of its font test,
# at about:blank); a navigation bar at the top and bottom of each page; a note where a notebook shows a widget.
TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{% block html_head_js_requirejs %}<script src="plotly.min.js"></script>{% endblock %}
{% block jupyter_widgets %}{% endblock %}
{% block html_head_js_mermaidjs %}{% endblock %}
{% block html_head_js_mathjax %}<script type="text/x-mathjax-config">
MathJax.Hub.Config({menuSettings: {assistiveMML: false}, "HTML-CSS": {availableFonts: [], webFont: "STIX-Web",
  imageFont: null, preferredFont: null, styles: {"@font-face": {src: "local('MathJax_Blank')"}}}});
</script>{{ super() }}{% endblock %}
{% block extra_css %}<style>
nav.site { display: flex; gap: 1.5em; padding: 0.6em 1em; margin: 0 0 1em; background: var(--jp-layout-color2);
           font-family: var(--jp-ui-font-family); font-size: 14px; }
nav.site .next { margin-left: auto; }
main { max-width: 1100px; margin: auto; }
</style>{% endblock %}
{% block body_header %}{{ super() }}{{ resources.nav }}{% endblock %}
{% block body_footer %}{{ resources.nav }}{{ super() }}{% endblock %}
{% block data_widget_view %}<div class="jp-RenderedHTMLCommon jp-OutputArea-output">
<p><em>An interactive widget: open the notebook in JupyterLab to use it.</em></p></div>{% endblock %}
{% block footer %}</html>{% endblock %}
"""


def _plotly_as_html(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Each plotly output (JSON, which nbconvert does not draw) replaced by a div and its `Plotly.newPlot` call."""
    n = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).pop(PLOTLY_MIME, None)
            if figure is not None:
                n += 1
                output["data"]["text/html"] = pio.to_html(figure, include_plotlyjs=False, full_html=False,
                                                          div_id=f"figure-{n}", default_height="450px",
                                                          validate=False)
    return nb


def _local_links(text: str, pages: dict[str, str]) -> str:
    """Markdown links to the repository's files made links to the site's pages (`pages`: notebook stem -> file)."""
    text = re.sub(r"\]\((\d\d_\w+)\.ipynb\)", r"](\1.html)", text)
    text = text.replace("[RESULTS.md](RESULTS.md)", "RESULTS.md")
    text = re.sub(r"(?<![\[`])RESULTS\.md(?![`\]])", "[RESULTS.md](results.html)", text)
    for stem, page in pages.items():
        text = text.replace(f"| `{stem}` |", f"| [{stem}]({page}) |")
        text = re.sub(rf"\bnotebook {stem[:2]}\b", f"[notebook {stem[:2]}]({page})", text)
    return text


def _index_markdown(readme: str, pages: dict[str, str]) -> str:
    """The README's opening and its sections Notebooks and Results (the headline figures and the claims table)."""
    intro, *sections = readme.split("\n## ")
    named = {s.split("\n", 1)[0]: s for s in sections}
    return _local_links("\n## ".join([intro, named["Notebooks"], named["Results"]]), pages)


def _nav(pages: list[tuple[str, str]], i: int | None) -> str:
    """The navigation bar of page `i` of `pages` ((file, title), in order; None: the index)."""
    links = ['<a href="index.html">vitlib: index</a>']
    if i is not None and i > 0:
        links.append('<a class="prev" href="{}">&larr; {}</a>'.format(*pages[i - 1]))
    following = 0 if i is None else i + 1
    if following < len(pages):
        links.append('<a class="next" href="{}">{} &rarr;</a>'.format(*pages[following]))
    return f'<nav class="site">{"".join(links)}</nav>'


def _markdown_page(text: str, title: str) -> nbformat.NotebookNode:
    """Markdown as a one-cell notebook, so that it gets the notebooks' template, styles and MathJax."""
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)], metadata={"title": title})


def build_site(out: Path = SITE_DIR, root: Path = ROOT) -> list[Path]:
    """Write the site into `out` from `root`'s notebooks/NN_*.ipynb, RESULTS.md and README.md; return the pages
    written (index first). Nothing is executed: the notebooks' committed outputs are shown."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    stems = {nb.stem: f"{nb.stem}.html" for nb in notebooks}
    order = [(page, stem) for stem, page in stems.items()] + [("results.html", "RESULTS")]
    sources = [nbformat.read(nb, as_version=4) for nb in notebooks]
    sources.append(_markdown_page(_local_links((root / "RESULTS.md").read_text(), stems), "vitlib: results"))
    for nb, stem in zip(sources, stems):
        nb.metadata["title"] = f"vitlib: {stem}"
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _local_links(cell.source, stems)
        _plotly_as_html(nb)
    readme = (root / "README.md").read_text()
    pages = [("index.html", _markdown_page(_index_markdown(readme, stems), "vitlib"), None)]
    pages += [(page, nb, i) for i, ((page, _), nb) in enumerate(zip(order, sources))]

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"site.html.j2": TEMPLATE})],
                            template_file="site.html.j2", mathjax_url=MATHJAX_URL)
    written = []
    for page, nb, i in pages:
        html, _ = exporter.from_notebook_node(nb, resources={"nav": _nav(order, i)})
        (out / page).write_text(html)
        written.append(out / page)

    shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", out / "plotly.min.js")
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", out / "mathjax", dirs_exist_ok=True)
    markdown = readme + (root / "RESULTS.md").read_text()
    for figure in sorted(set(re.findall(r"\]\((figures/[^)\s]+)\)", markdown))):
        if (root / figure).exists():
            (out / figure).parent.mkdir(exist_ok=True)
            shutil.copy2(root / figure, out / figure)
    return written

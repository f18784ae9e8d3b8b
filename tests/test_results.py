"""vitlib.results: results files with provenance, the figures folder, and RESULTS.md rendered from figures/."""

import json

import plotly.graph_objects as go

from vitlib import results


def test_save_figure_writes_html_and_json_with_provenance(tmp_path):
    written = results.save_figure(go.Figure(go.Bar(y=[1, 2])), tmp_path / "f", {"a": 1.5}, command="cmd",
                                  seconds=2.04, png=False, note="n")
    record = json.loads(written["json"].read_text())
    assert record["results"] == {"a": 1.5} and written["html"].exists()
    p = record["provenance"]
    assert p["command"] == "cmd" and p["seconds"] == 2.0 and p["note"] == "n" and {"git_commit", "date"} <= set(p)
    assert results.load_results("f", tmp_path) == record


def test_figures_dir_is_the_repository_folder_only_for_full_runs():
    assert results.figures_dir("full") == results.FIGURES_DIR
    smoke = results.figures_dir("smoke")
    assert smoke != results.FIGURES_DIR and smoke.is_dir() and not any(smoke.iterdir())


def test_results_md_renders_every_results_file(tmp_path):
    text = results.render_results_md()  # the repository's figures/*.json
    for path in sorted(results.FIGURES_DIR.glob("*.json")):
        title = results.RENDERERS.get(path.stem, (path.stem.replace("_", " "),))[0]
        assert f"## {title}" in text
    shipped = json.loads((results.FIGURES_DIR / "finetune_results.json").read_text())["results"]
    acc = shipped["fine_tune"]["pre-trained@32"]["test_accuracy"]
    assert f"{100 * acc:.1f}%" in text  # numbers come from the JSON, not from prose


def test_unknown_results_file_gets_a_generic_section(tmp_path):
    results.save_results(tmp_path / "new_study", {"speedup": 1.25, "rows": [1, 2]}, command="python new.py")
    text = results.render_results_md(tmp_path)
    assert "## new study" in text and "speedup = 1.25" in text and "`python new.py`" in text
    out = results.write_results_md(tmp_path / "RESULTS.md", tmp_path)
    assert out.read_text() == text


def test_results_md_is_up_to_date():
    """RESULTS.md is rendered, never edited: after a new results file, run `python -m vitlib results`."""
    assert (results.ROOT / "RESULTS.md").read_text() == results.render_results_md()

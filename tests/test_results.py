"""vitlib.records and vitlib.results: results files with provenance, the figures folder, and RESULTS.md and the
README's block rendered from figures/."""

import dataclasses
import json
import shutil

import plotly.graph_objects as go

from vitlib import records, results
from vitlib.analysis import depth_trend
from vitlib.experiments import transfer
from vitlib.markdown import made_by


def test_save_figure_writes_html_and_json_with_provenance(tmp_path):
    written = records.save_figure(go.Figure(go.Bar(y=[1, 2])), tmp_path / "f", {"a": 1.5}, command="cmd",
                                  seconds=2.04, png=False, note="n")
    record = json.loads(written["json"].read_text())
    assert record["results"] == {"a": 1.5} and written["html"].exists()
    p = record["provenance"]
    assert p["command"] == "cmd" and p["seconds"] == 2.0 and p["note"] == "n" and {"git_commit", "date"} <= set(p)
    assert records.load_results("f", tmp_path) == record
    assert p["cpu"].endswith("native bf16") and f"({p['cpus']} CPUs: {p['cpu']})" in made_by(p)  # the CPU's kind
    assert "(2 CPUs);" in made_by(dict(cpus=2))  # a file from before the CPU was recorded


def test_figures_dir_is_the_repository_folder_only_for_full_runs():
    assert records.figures_dir("full") == records.FIGURES_DIR
    smoke = records.figures_dir("smoke")
    assert smoke != records.FIGURES_DIR and smoke.is_dir() and not any(smoke.iterdir())


def test_results_md_renders_every_results_file(tmp_path):
    text = results.render_results_md()  # the repository's figures/*.json
    for path in sorted(records.FIGURES_DIR.glob("*.json")):
        title = results.RENDERERS.get(path.stem, (path.stem.replace("_", " "),))[0]
        assert f"## {title}" in text
    shipped = json.loads((records.FIGURES_DIR / "finetune_results.json").read_text())["results"]
    acc = shipped["fine_tune"]["pre-trained@32"]["test_accuracy"]
    assert f"{100 * acc:.1f}%" in text  # numbers come from the JSON, not from prose


def test_unknown_results_file_gets_a_generic_section(tmp_path):
    records.save_results(tmp_path / "new_study", {"speedup": 1.25, "rows": [1, 2]}, command="python new.py")
    text = results.render_results_md(tmp_path)
    assert "## new study" in text and "speedup = 1.25" in text and "`python new.py`" in text
    out = results.write_results_md(tmp_path / "RESULTS.md", tmp_path)
    assert out.read_text() == text


def test_results_md_is_up_to_date():
    """RESULTS.md is rendered, never edited: after a new results file, run `python -m vitlib results`."""
    assert (records.ROOT / "RESULTS.md").read_text() == results.render_results_md()


def test_readme_results_block_is_up_to_date():
    """The README's results block is rendered, never edited: after a new results file, run `python -m vitlib
    results` (it writes RESULTS.md and this block)."""
    text = (records.ROOT / "README.md").read_text()
    block = text.split(results.README_BEGIN, 1)[1].split(results.README_END, 1)[0]
    assert block == f"\n{results.render_readme_results()}\n"


def test_pretraining_section_names_the_shipped_model_only_for_the_run_it_ends():
    """figures/pretrain_fractal_vit.json is the run the shipped weights end; a smoke run of notebook 03 is not."""
    r = json.loads((records.FIGURES_DIR / "pretrain_fractal_vit.json").read_text())["results"]
    assert "The shipped model" in results.RENDERERS["pretrain_fractal_vit"][1](r, {})
    name = next(iter(r["histories"]))
    smoke = dict(histories={name: {"train": r["histories"][name]["train"], "val": []}}, specs=r["specs"])
    assert "The shipped model" not in results.RENDERERS["pretrain_fractal_vit"][1](smoke, {})


def test_budget_comparison_puts_the_first_model_beside_the_shipped_one_from_the_files():
    v1 = json.loads((records.FIGURES_DIR / "shipped_model_v1_too_small_budget.json").read_text())["results"]
    now = json.loads((records.FIGURES_DIR / "finetune_results.json").read_text())["results"]
    text = results.budget_comparison()
    assert "first shipped" in text and "shipped now" in text
    assert f"{v1['data']['images_seen']:,}" in text  # pre-training budgets, from the model records
    assert f"{json.loads(results.SHIPPED_JSON.read_text())['extra']['data']['images_seen']:,}" in text
    for ft in (v1["runs"]["finetune_results"]["results"], now):  # the same protocol, each model's own run
        assert f"{100 * ft['fine_tune']['pre-trained@32']['test_accuracy']:.1f}%" in text
    d = v1["runs"]["fig7_inside_vit"]["results"]  # Fig. 7 of the first model, kept from its run
    t = depth_trend(d["mean_attention_distance_px"], d["uniform_attention_px"])
    assert f"{t['answer']}: Spearman {t['spearman']:+.2f}" in text


def test_budget_comparison_names_every_difference_and_decides_nothing_from_one_run():
    """More than the budget changed between the two models: the text names each design row that differs, read from
    the files, and every accuracy comparison (one run an arm) is undecided."""
    v1 = json.loads((records.FIGURES_DIR / "shipped_model_v1_too_small_budget.json").read_text())["results"]
    now = json.loads(results.SHIPPED_JSON.read_text())["config"]
    text = results.budget_comparison()
    assert v1["config"]["patch_size"] != now["patch_size"] and v1["config"]["num_layers"] != now["num_layers"]
    assert ("the models differ in pre-training images seen, patch size P, depth L, fractal categories and "
            "pre-training corpus (images)") in text
    assert f"| patch size P | {v1['config']['patch_size']} | {now['patch_size']} |" in text
    cells = [line for line in text.splitlines() if "pre-trained vs" in line]
    assert len(cells) == 2 and all(line.count("one run each: undecided") == 2 for line in cells)
    assert "variable that changed" not in results.render_section("shipped_model_v1_too_small_budget")


def test_the_studies_results_files_are_named_once():
    assert records.results_stem("scaling", "full") == records.results_stem("scaling", "smoke") == "scaling"
    assert records.results_stem("scaling", "long") == "scaling_long"  # what notebooks and the runner both use
    assert "## " + results.RENDERERS["transfer"][0] in results.render_section("transfer")


def test_readme_block_and_transfer_section_say_what_has_not_run(tmp_path):
    for stem in ("shipped_model_v1_too_small_budget", "finetune_results"):
        shutil.copy(records.FIGURES_DIR / f"{stem}.json", tmp_path)
    rows = [dict(key=f"fewshot/{arm}/a/s{seed}", kind="fewshot", arm=arm, dataset="a", size=10, seed=seed,
                 n_train=10, resolution=None, img_size=32, load=dict(quiet=True),
                 metrics={"1shot": acc + 0.01 * seed, "test_n": 1000})
            for seed in (0, 1) for arm, acc in (("pre-trained", 0.6), ("random", 0.3))]
    config = dataclasses.asdict(transfer.Config(datasets=("a",), sizes=(10,), seeds=(0, 1), shots=(1,),
                                                ablation_dataset="a", ablation_size=10))
    records.save_results(tmp_path / "transfer", dict(study="transfer", profile="full", config=config, rows=rows,
                                                     todo=4))
    block = results.render_readme_results(tmp_path)
    assert "| pre-trained ahead over seeds in 1 of 1 | reproduced |" in block  # few-shot: its one comparison
    assert "| planned: 1, none run yet | not yet run |" in block  # fine-tuning
    lines = results.budget_comparison(tmp_path).splitlines()  # the first model's Fig. 7, not the shipped one's: "-"
    assert any(line.startswith("| E_pos similarity") and line.endswith(" | - |") for line in lines)
    section = results.render_section("transfer", tmp_path, figure=False)
    assert "Does pre-training pay here? yes so far" in section and "4 runs (4 on a quiet machine); 4 still" in section
    assert "fine-tuned, pre-trained against scratch (Section 3.2): **not yet run**" in section
    assert "**reproduced**" in section and "| `a` | pre-trained | 60.5%" in section


def test_readme_claims_take_the_headline_study_once_its_file_exists(tmp_path):
    """Fig. 3-5's rows come from scaling_curves.json when it exists, else from the first sweep (scaling.json)."""
    shutil.copy(records.FIGURES_DIR / "scaling.json", tmp_path)
    assert "`scaling`" in results.claims_table(tmp_path) and "`scaling_curves`" not in results.claims_table(tmp_path)
    shutil.copy(records.FIGURES_DIR / "scaling_curves_pilot.json", tmp_path / "scaling_curves.json")
    table = results.claims_table(tmp_path)
    assert "`scaling_curves`" in table and "(`scaling`)" not in table and "every run to its plateau" in table

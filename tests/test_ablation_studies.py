"""The ablation studies of notebook 08: position embeddings (Appendix D.4, Table 8) and masked patch prediction
(Section 4.6), their designs, their smoke runs, and the verdicts their renderers compute from the rows."""

import json
import shutil

import pytest
import torch

from vitlib import experiments
from vitlib.__main__ import main
from vitlib.experiments import mpp, pos_embed, protocol
from vitlib.experiments.mpp import mpp_verdict
from vitlib.experiments.pos_embed import position_verdict
from vitlib.paper import SECTION_4_6, TABLE8
from vitlib.plots import ablation_figure
from vitlib.records import FIGURES_DIR, save_results
from vitlib.results import RENDERERS, render_readme_results, render_section
from vitlib.stats import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    PARTLY,
    REPRODUCED,
    UNDECIDED,
    arm_means,
    seed_order,
    separation_chance,
)


def _quiet(line):
    pass


def test_full_profiles_meet_the_issues_design():
    p = pos_embed.PROFILES["full"]
    assert p.embeddings == ("none", "learned", "learned_2d", "relative") and len(p.seeds) >= 2
    assert p.model == "ViT-Ti/4 L=4" and p.fractal_size == 30000 and p.fractal_classes == 100 and 5 in p.shots
    m = mpp.PROFILES["full"]
    assert set(m.arms) == {"scratch", "mpp", "supervised"} and len(m.seeds) >= 2 and m.corrupt_fraction == 0.5
    shared = ("model", "fractal_size", "fractal_classes", "images_per_run", "batch_size", "probe_dataset",
              "finetune_size", "finetune_images", "finetune_batch", "n_test", "probe_test", "img_size")
    assert all(getattr(p, f) == getattr(m, f) for f in shared)  # one protocol: mpp's supervised arm = "learned"
    assert experiments.images_seen("pos_embed", "full") == 8 * (32768 + 12800)
    assert experiments.images_seen("mpp", "full") == 2 * (2 * (32768 + 12800) + 12800)
    with pytest.raises(ValueError, match="unknown position embedding"):
        experiments.config("pos_embed", "full", embeddings=("sinusoidal",))
    with pytest.raises(ValueError, match="unknown arm"):
        experiments.config("mpp", "full", arms=("contrastive",))


def test_the_long_profiles_change_the_pre_training_budget_and_nothing_else():
    import dataclasses

    for study in (pos_embed, mpp):
        full, long = (dataclasses.asdict(study.PROFILES[k]) for k in ("full", "long"))
        changed = {k for k in full if full[k] != long[k]} - {"seeds"}
        assert changed == {"fractal_size", "images_per_run", "batch_size"}, study.NAME
        assert long["images_per_run"] // long["batch_size"] == 16 * (full["images_per_run"] // full["batch_size"])
        assert long["seeds"][:len(full["seeds"])] == full["seeds"]  # more seeds at most, the first ones the same
    assert experiments.images_seen("pos_embed", "long") == 16 * (131072 + 12800)  # 4 seeds: see the docstring
    assert experiments.runner.study_path("mpp", "long").name == "mpp_long"  # the full rows stay apart
    assert experiments.runner.study_path("mpp", "full").name == "mpp" and "mpp_long" in RENDERERS


def test_the_kinds_start_from_the_same_encoder_weights_only_the_position_parameters_differ():
    cfg = pos_embed.PROFILES["full"]
    states = {}
    for kind in pos_embed.EMBEDDINGS:
        torch.manual_seed(0)
        states[kind] = protocol.build_vit(cfg, 100, pos_embed=kind).state_dict()
    position = ("pos_embed", "rel_pos", "pre_logits")  # the pre-logits layer is drawn after E_pos (and dropped
    # at fine-tuning), so it differs with the kind too
    shared = [k for k in states["none"] if not any(p in k for p in position)]
    assert len(shared) > 40
    for kind, state in states.items():
        assert set(k for k in state if not any(p in k for p in position)) == set(shared), kind
        assert all(torch.equal(state[k], states["none"][k]) for k in shared), kind


def test_the_full_plan_from_the_command_line(capsys, tmp_path):
    main(["experiment", "pos_embed", "--profile", "full", "--plan", "--folder", str(tmp_path)])
    out = capsys.readouterr().out
    assert "to run relative/s1" in out and "8 runs (0 done), 364,544 training images seen in all" in out
    main(["experiment", "mpp", "--profile", "full", "--plan", "--folder", str(tmp_path)])
    assert "6 runs (0 done), 207,872 training images seen in all" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


def test_smoke_runs_of_both_studies_and_the_supervised_arm_repeats_the_learned_one(tmp_path):
    pe = experiments.run("pos_embed", "smoke", folder=tmp_path, log=_quiet)["rows"]
    cfg = pos_embed.PROFILES["smoke"]
    assert [r["arm"] for r in pe] == list(pos_embed.EMBEDDINGS)
    for row in pe:
        m = row["metrics"]
        assert row["images_seen"] == pos_embed.planned_images(cfg, row) == row["pretrain_images"] + 32
        assert {"val_accuracy", "5shot", "5shot_ci95", "finetune_accuracy", "finetune_ci95"} <= set(m)
        assert m["finetune_ci95"][0] <= m["finetune_accuracy"] <= m["finetune_ci95"][1]
        assert row["train_flops"] > 0 and row["pos_embed"] == row["arm"]
    sections = render_section("pos_embed", tmp_path, figure=False)
    assert "| No Pos. Emb. | 61.4% |" in sections and "Table 8's claim" in sections
    rows = {r["arm"]: r for r in experiments.run("mpp", "smoke", folder=tmp_path, log=_quiet)["rows"]}
    assert list(rows) == list(mpp.ARMS)
    assert rows["scratch"]["pretrain_images"] == 0 and rows["scratch"]["n_train"] == 0
    assert 0 <= rows["mpp"]["metrics"]["mpp_accuracy"] <= 1 and 0 < rows["mpp"]["metrics"]["mpp_majority"] <= 1
    assert "val_accuracy" not in rows["mpp"]["metrics"]  # the self-supervised arm never saw a label
    learned = next(r for r in pe if r["arm"] == "learned")
    assert rows["supervised"]["metrics"] == learned["metrics"]  # the same protocol, run twice, the same numbers
    text = render_section("mpp", tmp_path, figure=False)
    assert "| masked patch prediction | 79.9% |" in text and "Section 4.6's order" in text


def _row(arm, seed, **metrics):
    return dict(key=f"{arm}/s{seed}", arm=arm, seed=seed, load=dict(quiet=True), metrics=metrics)


# seed-to-seed spreads of the synthetic rows: TIGHT tells 10 points apart and fits 1 point of margin at 4 seeds;
# WIDE (a standard deviation of about 7 points) tells nothing apart
TIGHT, WIDE = (-0.003, 0.001, 0.003, -0.001), (-0.08, 0.05, 0.08, -0.05)


def _kind_rows(means, held_out=0.30):
    """Rows of 4 seeds a kind or arm: {arm: mean or (mean, spread)}, the same value on the 5-shot probe and
    fine-tuning, and the pre-training task's held-out accuracy (the supervised arm's alone in the mpp study)."""
    rows = []
    for arm, m in means.items():
        mean, spread = m if isinstance(m, tuple) else (m, TIGHT)
        held = dict(val_accuracy=held_out, val_n=1000) if arm not in ("scratch", "mpp") else {}
        rows += [_row(arm, s, **{"5shot": mean + d, "probe_n": 10000, "finetune_accuracy": mean + d,
                                 "finetune_n": 10000}, **held) for s, d in enumerate(spread)]
    return rows


KINDS = list(TABLE8)


@pytest.mark.parametrize("means, helps", [
    (dict(none=0.50, learned=0.60, learned_2d=0.60, relative=0.60), REPRODUCED),
    (dict(none=0.50, learned=0.60, learned_2d=(0.53, WIDE), relative=(0.53, WIDE)), PARTLY),
    (dict(none=0.50, learned=0.60, learned_2d=0.60, relative=0.45), NOT_REPRODUCED),  # one kind behind
    (dict(none=0.50, learned=0.60, learned_2d=0.60, relative=0.502), NOT_REPRODUCED),  # one level within 1 point
    (dict(none=0.50, learned=(0.53, WIDE), learned_2d=(0.53, WIDE), relative=(0.53, WIDE)), UNDECIDED),
])
def test_any_position_embedding_helps_reaches_every_outcome(means, helps):
    rows = _kind_rows(means)
    assert position_verdict(rows, "5shot", KINDS)[0] == helps
    assert position_verdict(rows, "finetune_accuracy", KINDS)[0] == helps  # fine-tuned: the same rule


@pytest.mark.parametrize("means, alike", [
    (dict(none=0.50, learned=0.60, learned_2d=0.60, relative=0.605), REPRODUCED),  # 0.5 points: within the margin
    (dict(none=0.50, learned=0.60, learned_2d=0.60, relative=0.65), NOT_REPRODUCED),  # 5 points apart
    (dict(none=0.50, learned=0.60, learned_2d=0.60, relative=(0.60, WIDE)), UNDECIDED),  # too variable to tell
])
def test_which_kind_barely_matters_reaches_every_outcome(means, alike):
    assert position_verdict(_kind_rows(means), "5shot", KINDS)[1] == alike


def test_table_8_is_not_testable_when_the_pre_training_task_was_not_learned():
    means = dict(none=0.50, learned=0.60, learned_2d=0.60, relative=0.60)
    assert position_verdict(_kind_rows(means, held_out=0.099), "5shot", KINDS) == (NOT_TESTABLE, NOT_TESTABLE)
    assert position_verdict(_kind_rows(means, held_out=0.10), "5shot", KINDS) == (REPRODUCED, REPRODUCED)
    assert position_verdict(_kind_rows(means)[:4], "5shot", KINDS) == ("not yet run", "not yet run")
    one_seed = [r for r in _kind_rows(means) if r["seed"] == 0]  # no seed variance to test against
    assert position_verdict(one_seed, "5shot", KINDS) == (UNDECIDED, UNDECIDED)
    text = pos_embed.answer(dict(config=_CONFIG, rows=_kind_rows(means, held_out=0.05)))
    assert text.startswith("Table 8's claim: **not testable at this budget** (held-out 5.0%, the mean of 16 runs, "
                           "below 10%: the pre-training task was not learned)")
    assert "**reproduced**" not in text


@pytest.mark.parametrize("means, order", [
    (dict(scratch=0.50, mpp=0.55, supervised=0.60), REPRODUCED),
    (dict(scratch=0.50, mpp=0.55, supervised=(0.57, WIDE)), PARTLY),  # supervised not told apart from mpp
    (dict(scratch=(0.50, WIDE), mpp=0.55, supervised=0.60), PARTLY),  # mpp not told apart from scratch
    (dict(scratch=0.60, mpp=0.55, supervised=0.65), NOT_REPRODUCED),  # mpp behind scratch
    (dict(scratch=0.50, mpp=0.60, supervised=0.55), NOT_REPRODUCED),  # supervised behind mpp
    (dict(scratch=0.50, mpp=(0.52, WIDE), supervised=(0.54, WIDE)), UNDECIDED),
])
def test_section_4_6_order_reaches_every_outcome(means, order):
    assert mpp_verdict(_kind_rows(means)) == order


def test_section_4_6_not_testable_one_seed_and_not_yet_run():
    means = dict(scratch=0.50, mpp=0.55, supervised=0.60)
    assert mpp_verdict(_kind_rows(means, held_out=0.05)) == NOT_TESTABLE  # the supervised arm's task not learned
    assert mpp_verdict([r for r in _kind_rows(means) if r["seed"] == 0]) == UNDECIDED  # one seed an arm
    assert mpp_verdict(_kind_rows(dict(scratch=0.5, mpp=0.6))) == "not yet run"
    m = dict(config=dict(arms=list(SECTION_4_6), images_per_run=8), rows=_kind_rows(means, held_out=0.05), todo=0)
    assert mpp.answer(m).startswith("Section 4.6's order (fine-tuned: supervised > masked patch prediction > "
                                    "scratch): **not testable at this budget** (the supervised arm's held-out 5.0%, "
                                    "the mean of 4 runs, below 10%: the pre-training task was not learned;")
    assert mpp.claims(m, "mpp")[0][3].startswith("not testable at this budget (the supervised arm's held-out 5.0%")


def _pos_embed_rows():
    """2 seeds a kind, 0.2 points apart: "none" 10 points below the others, which are alike within 1 point."""
    return [_row(k, s, **{"5shot": v + 0.002 * s, "probe_n": 10000, "finetune_accuracy": v + 0.002 * s,
                          "finetune_n": 10000}) for s in (0, 1)
            for k, v in (("none", 0.5), ("learned", 0.6), ("learned_2d", 0.6), ("relative", 0.6))]


_CONFIG = dict(model="m", fractal_size=10, fractal_classes=2, images_per_run=8, batch_size=4, finetune_size=3,
               probe_dataset="d", shots=[5], embeddings=list(TABLE8))


def test_the_renderers_and_the_figure_read_seed_means():
    rows, config = _pos_embed_rows(), _CONFIG
    text = RENDERERS["pos_embed"][1](dict(config=config, rows=rows), {})
    assert text.count("**reproduced**") == 4 and "8 runs" in text and "seeds 50.0-50.2" in text
    half = RENDERERS["pos_embed"][1](dict(config=config, rows=rows[:3], todo=5), {})
    assert "**not yet run**" in half and "5 still to run" in half
    stats = arm_means(rows, "5shot", "probe_n")
    assert stats["none"]["seeds"] == 2 and stats["none"]["mean"] == pytest.approx(0.501)
    fig = ablation_figure({"paper": TABLE8, "ours": stats})
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 8 and sum(t.showlegend for t in fig.data) == 5  # 4 arms and the seed range, once each
    assert bars[0].error_y.array is None and bars[4].error_y.array is not None
    spread = [t for t in fig.data if t.type == "scatter"]  # only the seed means have seeds to spread
    assert len(spread) == 4 and list(spread[0].y) == [pytest.approx(0.50), pytest.approx(0.502)]


def test_the_long_profiles_answers_and_the_readme_claims_once_they_have_rows(tmp_path):
    for stem in ("shipped_model_v1_too_small_budget", "finetune_results"):
        shutil.copy(FIGURES_DIR / f"{stem}.json", tmp_path)
    assert "Table 8" not in render_readme_results(tmp_path)  # no results file, nothing claimed
    r = dict(config=_CONFIG, rows=_pos_embed_rows(), todo=0)
    save_results(tmp_path / "pos_embed_long", r)
    block = render_readme_results(tmp_path)
    assert "| Any position embedding helps, which kind barely matters (Table 8) |" in block
    assert ("| 5-shot: helps reproduced, kind reproduced; fine-tuned: helps reproduced, kind reproduced |"
            in block)
    text = pos_embed.answer(r)
    assert text.count("**reproduced**") == 4  # both halves on the 5-shot probe and on fine-tuning
    assert "1-D Pos. Emb. minus 2-D Pos. Emb. +0.0 points (p 1.00), 90% interval [-0.4, +0.4]" in text
    names = ", ".join(f"{k} > No Pos. Emb." for k in ("1-D Pos. Emb.", "2-D Pos. Emb.", "Rel. Pos. Emb."))
    assert text.endswith(f"probability 0.33 at 2 seeds each): 5-shot {names}; fine-tuned {names}")  # description
    ft = [_row(a, 0, finetune_accuracy=v, finetune_n=10000) for a, v in (("scratch", 0.5), ("mpp", 0.6))]
    m = dict(config=dict(arms=list(SECTION_4_6), images_per_run=8), rows=ft, todo=1)
    assert mpp.answer(m).startswith("Section 4.6's order (fine-tuned: supervised > masked patch prediction > "
                                    "scratch): **not yet run**.")
    save_results(tmp_path / "mpp_long", m)
    assert "| Masked patch prediction beats scratch, trails supervised pre-training (Section 4.6) |" in \
        render_readme_results(tmp_path)
    m["rows"] = ft + [_row("supervised", 0, finetune_accuracy=0.55, finetune_n=10000)]
    assert ("**undecided** (Welch's t over seeds: the means order them masked patch prediction > supervised > from "
            "scratch; masked patch prediction minus scratch +10.0 points (one seed: undecided), the paper +2; "
            "supervised minus masked patch prediction -5.0 points (one seed: undecided), the paper +4).") == \
        mpp.answer(m).split("scratch): ", 1)[1]  # one seed each: no seed variance, no seed line
    save_results(tmp_path / "mpp_long", m)
    assert "| masked patch prediction +10.0 points over scratch, supervised -5.0 over it (1 seed) | undecided |" in \
        render_readme_results(tmp_path)
    m["rows"] = [_row(a, s, finetune_accuracy=v + 0.01 * s, finetune_n=10000) for s in (0, 1)
                 for a, v in (("scratch", 0.5), ("mpp", 0.6), ("supervised", 0.55))]
    text = mpp.answer(m)
    assert "**not reproduced**" in text and "supervised minus masked patch prediction -5.0 points [95% interval" in text
    assert text.endswith("at 2 seeds each): fine-tuned masked patch prediction > from scratch, supervised > from "
                         "scratch, masked patch prediction > supervised.")


def test_the_long_mpp_profile_has_seeds_0_to_3_and_keeps_the_rows_run(capsys, tmp_path):
    shutil.copy(FIGURES_DIR / "mpp_long.json", tmp_path)
    done = {r["key"] for r in json.loads((tmp_path / "mpp_long.json").read_text())["results"]["rows"]}
    assert {f"{a}/s{s}" for a in mpp.ARMS for s in (0, 1)} <= done  # the rows run before seeds 2-3 were added
    main(["experiment", "mpp", "--profile", "long", "--plan", "--folder", str(tmp_path)])
    out = capsys.readouterr().out
    assert all(f"{'done  ' if f'{a}/s{s}' in done else 'to run '}{a}/s{s}" in out for a in mpp.ARMS for s in range(4))
    assert f"12 runs ({len(done)} done), 1,202,176 training images seen in all" in out


def test_seed_order_separates_arms_only_when_no_seed_interleaves():
    rows = [_row("a", 0, acc=0.60), _row("a", 1, acc=0.70), _row("b", 0, acc=0.50), _row("b", 1, acc=0.65)]
    assert seed_order(rows, "acc", "a", "b") == 0  # 0.65 sits between a's seeds
    rows[3] = _row("b", 1, acc=0.55)
    assert seed_order(rows, "acc", "a", "b") == 1 and seed_order(rows, "acc", "b", "a") == -1
    assert seed_order(rows, "acc", "a", "missing") == 0 and seed_order(rows, "other", "a", "b") == 0
    assert separation_chance(1, 1) == 1.0 and separation_chance(4, 4) == pytest.approx(2 / 70)

"""vitlib.experiments: configs as code, a runner that never runs a finished row twice, the CLI generated from them."""

import dataclasses
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from vitlib import experiments
from vitlib.cli import build_parser, main
from vitlib.experiments import runner, scaling, transfer
from vitlib.experiments.protocol import MODELS
from vitlib.finetune import load_pretrained
from vitlib.flops import forward_flops
from vitlib.model import VisionTransformer
from vitlib.results import render_section
from vitlib.stats import group, wilson_interval


# --- the runner, on a study that trains nothing ---------------------------------------------------------------------
@dataclass(frozen=True)
class _FakeConfig:
    seeds: tuple[int, ...] = runner.param((0, 1, 2), "seeds")
    images_per_run: int = runner.param(10, "images per run")


def _fake_study(fail_at: int | None = None):
    calls = []

    def run_row(cfg, spec, cache):
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt  # the user pressing Ctrl-C in the middle of a run
        calls.append(spec["key"])
        return dict(model="m", parameters=1, images_seen=cfg.images_per_run, train_flops=3 * cfg.images_per_run,
                    metrics=dict(accuracy=0.5))

    study = SimpleNamespace(NAME="fake", Config=_FakeConfig, PROFILES={"smoke": _FakeConfig()},
                            expand=lambda cfg: [dict(key=f"run/s{s}", seed=s) for s in cfg.seeds],
                            run_row=run_row, planned_images=lambda cfg, spec: cfg.images_per_run)
    return study, calls


def _quiet(line):
    pass


def test_runner_skips_finished_rows_run_twice_the_second_does_nothing(tmp_path):
    study, calls = _fake_study()
    first = runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=_quiet)
    text = (tmp_path / "fake.json").read_text()
    assert calls == ["run/s0", "run/s1", "run/s2"] and first["todo"] == 0
    second = runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=_quiet)
    assert calls == ["run/s0", "run/s1", "run/s2"]  # nothing ran again
    assert second["rows"] == first["rows"] and (tmp_path / "fake.json").read_text() == text


def test_an_interrupted_study_resumes_where_it_stopped(tmp_path):
    study, calls = _fake_study(fail_at=1)
    with pytest.raises(KeyboardInterrupt):
        runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=_quiet)
    saved = runner.load_rows(tmp_path / "fake")
    assert [r["key"] for r in saved] == ["run/s0"]  # the finished row was written before the interruption
    study2, calls2 = _fake_study()
    out = runner.run_study(study2, _FakeConfig(), "smoke", tmp_path / "fake", log=_quiet)
    assert calls2 == ["run/s1", "run/s2"]
    assert [r["key"] for r in out["rows"]] == ["run/s0", "run/s1", "run/s2"] and out["rows"][0] == saved[0]


def test_limit_runs_part_of_a_study_and_rows_of_an_earlier_design_stay(tmp_path):
    study, calls = _fake_study()
    out = runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=_quiet, limit=2)
    assert calls == ["run/s0", "run/s1"] and out["todo"] == 1
    out = runner.run_study(study, _FakeConfig(seeds=(5,)), "smoke", tmp_path / "fake", log=_quiet)
    assert [r["key"] for r in out["rows"]] == ["run/s0", "run/s1", "run/s5"]  # nothing is ever dropped


def test_a_negative_limit_runs_every_missing_row_and_zero_none(tmp_path):
    study, calls = _fake_study()
    assert runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=_quiet, limit=0)["todo"] == 3
    out = runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=_quiet, limit=-1)
    assert calls == ["run/s0", "run/s1", "run/s2"] and out["todo"] == 0


def test_only_runs_the_missing_rows_a_pattern_matches_and_counts_the_rest_as_todo(tmp_path):
    study, calls = _fake_study()
    lines = []
    out = runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=lines.append, only="*/s[12]",
                           limit=1)
    assert calls == ["run/s1"] and out["todo"] == 2  # s2 left by the limit, s0 by the pattern
    assert "2 to run matching '*/s[12]' (1 others left for later) (this part: 1)" in lines[0]
    out = runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=lines.append)
    assert calls == ["run/s1", "run/s0", "run/s2"] and out["todo"] == 0  # the rest, in the plan's order
    assert [r["key"] for r in out["rows"]] == ["run/s1", "run/s0", "run/s2"]
    with pytest.raises(ValueError, match="no run's key matches --only 'BiT\\*'"):
        runner.run_study(study, _FakeConfig(), "smoke", tmp_path / "fake", log=_quiet, only="BiT*")


def test_rows_carry_wall_time_load_and_provenance(tmp_path):
    study, _ = _fake_study()
    runner.run_study(study, _FakeConfig(seeds=(0,)), "smoke", tmp_path / "fake", command="cmd", log=_quiet)
    record = json.loads((tmp_path / "fake.json").read_text())
    row = record["results"]["rows"][0]
    assert {"images_seen", "train_flops", "wall_s", "date", "git_commit", "cpu"} <= set(row)  # cpu: its kind
    assert isinstance(row["load"]["quiet"], bool) and row["load"]["cpus"] >= 1
    assert record["provenance"]["command"] == "cmd" and record["results"]["config"] == {"seeds": [0],
                                                                                          "images_per_run": 10}


def test_duplicate_keys_are_refused(tmp_path):
    study, _ = _fake_study()
    with pytest.raises(ValueError, match="share a key"):
        runner.run_study(study, _FakeConfig(seeds=(1, 1)), "smoke", tmp_path / "fake", log=_quiet)


# --- configs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(experiments.STUDIES))
def test_every_study_has_a_frozen_config_per_profile_with_a_documented_budget(name):
    study = experiments.STUDIES[name]
    assert set(experiments.PROFILE_NAMES) <= set(study.PROFILES)  # every study has these; a study may add its own
    assert all(f"--profile {p}" in study.__doc__ for p in set(study.PROFILES) - set(experiments.PROFILE_NAMES))
    for cfg in study.PROFILES.values():
        assert isinstance(cfg, study.Config)
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.seeds = (9,)
        keys = [s["key"] for s in study.expand(cfg)]
        assert len(keys) == len(set(keys)) > 0
    doc = study.__doc__
    assert "Budget in images seen" in doc and f"python -m vitlib experiment {name} --profile full" in doc
    assert all(f.metadata.get("help") for f in dataclasses.fields(study.Config))  # every flag has a help text


def test_config_overrides_and_one_line_errors():
    assert experiments.config("transfer", "full", seeds=(7,)).seeds == (7,)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['bogus'\] of study 'transfer'; known: precision, "
                                         "checkpoint"):
        experiments.config("transfer", "full", bogus=1)
    with pytest.raises(ValueError, match="unknown study 'nope'; known: transfer, scaling"):
        experiments.config("nope")
    with pytest.raises(ValueError, match="unknown profile"):
        experiments.config("scaling", "huge")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        experiments.config("scaling", "full", batch_size=0)


def test_full_profiles_meet_the_issues_design():
    t = transfer.PROFILES["full"]
    assert t.sizes == (500, 2000, 10000) and len(t.seeds) == 3 and t.shots == (1, 5, 10, 25)
    assert set(t.datasets) == {"fashion_mnist", "mnist5k"} and t.ablation_resolution == 48
    s = scaling.PROFILES["full"]
    specs = scaling.expand(s)
    for corpus, sizes in (("fractaldb", s.fractal_sizes), ("fashion_mnist", s.fashion_sizes)):
        assert len(sizes) >= 5 and max(sizes) / min(sizes) >= 100
        for n in sorted(sizes)[:2]:  # >= 3 seeds at the two smallest sizes, for every model
            for m in s.models:
                assert len({r["seed"] for r in specs if (r["corpus"], r["size"], r["model"]) == (corpus, n, m)}) >= 3
    families = [MODELS[m].family for m in s.models]
    assert {"vit", "resnet", "hybrid"} <= set(families) and families.count("vit") >= 2
    assert experiments.images_seen("transfer", "full") == 42 * 12800 + 3 * 4 * 12800  # + the convergence check


def test_wilson_interval():
    lo, hi = wilson_interval(80, 100)
    assert round(lo, 3) == 0.711 and round(hi, 3) == 0.867
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


# --- the command line -----------------------------------------------------------------------------------------------
def _subparser(*names):
    parser = build_parser()
    for name in names:
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("name", list(experiments.STUDIES))
def test_cli_flags_are_the_config_fields(name):
    p = _subparser("experiment", name)
    group = next(g for g in p._action_groups if g.title.startswith("study fields"))
    flags = {a.dest for a in group._group_actions}
    assert flags == {f.name for f in dataclasses.fields(experiments.STUDIES[name].Config)}
    first = next(f for f in dataclasses.fields(experiments.STUDIES[name].Config) if f.name == "seeds")
    args = build_parser().parse_args(["experiment", name, "--seeds", "3", "4", "--images-per-run", "5"])
    shown = " ".join(p.format_help().split()).replace("- ", "-")  # argparse wraps lines, also after hyphens
    assert args.seeds == [3, 4] and args.images_per_run == 5 and first.metadata["help"] in shown


def _error_line(capsys, argv, prog):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"{prog}: error: "), err
    return err


def test_cli_unknown_study_field_or_value_is_one_line(capsys):
    assert "invalid choice: 'nope'" in _error_line(capsys, ["experiment", "nope"], "vitlib experiment")
    assert "--bogus" in _error_line(capsys, ["experiment", "transfer", "--bogus", "1"], "vitlib")
    assert "--batch-size" in _error_line(capsys, ["experiment", "transfer", "--batch-size", "0"],
                                         "vitlib experiment transfer")
    assert "--list" in _error_line(capsys, ["experiment"], "vitlib experiment")
    assert "unknown model(s) ['foo']" in _error_line(capsys, ["experiment", "scaling", "--models", "foo"],
                                                     "vitlib experiment scaling")
    assert "--only 'nothing*' matches no run" in _error_line(capsys, ["experiment", "scaling", "--only", "nothing*"],
                                                             "vitlib experiment scaling")


def test_cli_list_and_plan(capsys, tmp_path):
    main(["experiment", "--list"])
    out = capsys.readouterr().out
    assert "transfer:" in out and "scaling:" in out and "--profile full: 57 runs, 691,200 training images" in out
    main(["experiment", "transfer", "--profile", "full", "--plan", "--folder", str(tmp_path)])
    out = capsys.readouterr().out
    assert "to run finetune/scratch/mnist5k/n10000/rpre/s2" in out and "57 runs (0 done)" in out
    assert not list(tmp_path.iterdir())  # --plan runs nothing and writes nothing


# --- the smoke profiles, for real -----------------------------------------------------------------------------------
def test_transfer_smoke_runs_resumes_and_renders(tmp_path, capsys):
    main(["experiment", "transfer", "--folder", str(tmp_path)])
    record = json.loads((tmp_path / "transfer.json").read_text())
    rows = record["results"]["rows"]
    assert len(rows) == len(transfer.expand(transfer.PROFILES["smoke"]))
    cfg = transfer.PROFILES["smoke"]
    for row in rows:
        if row["kind"] == "finetune":
            assert row["images_seen"] == cfg.images_per_run // cfg.batch_size * cfg.batch_size
            lo, hi = row["metrics"]["ci95"]
            assert lo <= row["metrics"]["test_accuracy"] <= hi
    ft = next(r for r in rows if r["kind"] == "finetune" and r["resolution"] is None and r["img_size"] == 32)
    model = VisionTransformer(dataclasses.replace(load_pretrained("").cfg, num_classes=10,
                                                  representation_size=None))
    assert ft["train_flops"] == 3 * forward_flops(model, 32) * ft["images_seen"]  # Table 6's convention
    assert next(r for r in rows if r["dataset"] == "mnist5k" and r["kind"] == "finetune")["n_train"] <= 48
    capsys.readouterr()
    main(["experiment", "transfer", "--folder", str(tmp_path)])  # again: every row is done, nothing runs
    assert "0 to run" in capsys.readouterr().err
    assert json.loads((tmp_path / "transfer.json").read_text())["results"]["rows"] == rows
    text = render_section("transfer", tmp_path, figure=False)
    assert "| `mnist5k` | 48 |" in text and "1-shot" in text


def test_scaling_smoke_keeps_the_best_validation_state(tmp_path):
    out = experiments.run("scaling", "smoke", folder=tmp_path, log=_quiet)
    rows, base = [[r for r in out["rows"] if r["kind"] == k] for k in ("pretrain", "untrained")]
    assert len(rows) == 4 and {r["model"] for r in rows} == set(scaling.PROFILES["smoke"].models)
    assert {r["model"] for r in base} == {r["model"] for r in rows}  # each model's level before pre-training
    assert all(r["images_seen"] == r["train_flops"] == 0 and 0 <= r["metrics"]["5shot"] <= 1 for r in base)
    assert set(scaling.untrained(out["rows"])["fashion_mnist"]) == {r["model"] for r in rows}
    for row in rows:
        m = row["metrics"]
        assert m["val_accuracy"] >= m["final_val_accuracy"] and m["best_step"] >= 1
        assert row["train_flops"] > 0 and row["images_seen"] == 64 and 0 <= m["5shot"] <= 1
    assert "5-shot linear accuracy on `mnist5k`" in render_section("scaling", tmp_path, figure=False)


def _scaling_row(model, size, seed, acc, flops=10, kind="pretrain"):
    return dict(key=f"{model}/c/n{size}/s{seed}", kind=kind, corpus="c", model=model, size=size, seed=seed, probe="p",
                train_flops=flops, images_seen=64, load=dict(quiet=True),
                metrics={"5shot": acc, "probe_n": 1000, "val_accuracy": acc, "val_n": 100})


def test_curves_average_seeds_and_the_figures_draw_them():
    from vitlib.plots import scaling_figure
    from vitlib.results import RENDERERS
    from vitlib.stats import compare, seed_mean

    vit, bit = "ViT-Ti/4 L=4", "BiT-R26x1 w32"  # the verdicts read each model's family from the MODELS table
    rows = [_scaling_row(vit, 10, s, a) for s, a in ((0, 0.2), (1, 0.4))] + [
        _scaling_row(vit, 100, 0, 0.9), _scaling_row(bit, 10, 0, 0.6), _scaling_row(bit, 100, 0, 0.7, flops=20),
        _scaling_row(bit, 0, 0, 0.45, 0, "untrained")]
    c = scaling.curves(rows)  # the untrained row is no point of a curve, but a level of its own
    assert scaling.untrained(rows)["c"][bit]["mean"] == 0.45 and bit in c["c"]
    points = c["c"][vit]
    assert [p["size"] for p in points] == [10, 100] and points[0]["seeds"] == 2 and abs(points[0]["mean"] - 0.3) < 1e-12
    assert points[0]["lo"] < 0.3 < points[0]["hi"]
    assert compare(seed_mean(rows[3:4], "5shot", "probe_n"), seed_mean(rows[:2], "5shot", "probe_n")) == 0  # 1 seed
    by_size, by_flops = scaling_figure(c, "size"), scaling_figure(c, "flops", untrained=scaling.untrained(rows))
    assert [len(t.x) for t in by_size.data] == [2, 2] and [len(t.x) for t in by_flops.data] == [1, 1, 2, 1]
    assert by_flops.data[2].y == (0.45, 0.45) and by_flops.data[2].x == (10, 20)  # across the panel
    with pytest.raises(ValueError, match="'size'"):
        scaling_figure(c, "epochs")
    text = RENDERERS["scaling"][1](dict(rows=rows, config=dict(shots=[5])), {})
    assert "Fig. 3/4's claim" in text and "**undecided** on `c`" in text  # one ResNet seed a size: nothing decided
    assert "Fig. 5's claim (ViT the better deal per unit of compute): **undecided**" in text
    assert f"| {bit} | 45.0% [" in text and f"| {vit} | - |" in text  # the untrained column
    assert f"(the same seeds), at 100 images: {bit} +25.0 points (one seed: undecided)." in text


def test_scaling_probes_each_model_untrained_with_every_seed_and_compares_over_seeds():
    cfg = scaling.PROFILES["full"]
    specs = scaling.expand(cfg)
    for seed in cfg.seeds:  # the same seeds as the trained runs, each seed's reference right after its grid
        base = [s for s in specs if s["kind"] == "untrained" and s["seed"] == seed]
        assert {(s["model"], s["corpus"]) for s in base} == {(m, c) for m in cfg.models for c in cfg.corpora}
    vit, bit = "ViT-Ti/4 L=4", "BiT-R26x1 w32"
    rows = [_scaling_row(m, 10, s, a) for m, s, a in ((vit, 0, 0.30), (vit, 1, 0.32), (bit, 0, 0.60), (bit, 1, 0.62))]
    rows += [_scaling_row(vit, 100, 0, 0.35), _scaling_row(bit, 100, 0, 0.65)]
    rows += [_scaling_row(m, 0, s, a, 0, "untrained") for m, s, a in ((vit, 0, 0.40), (vit, 1, 0.41), (bit, 0, 0.50),
                                                                        (bit, 1, 0.52))]
    text = scaling.render(dict(rows=rows, config=dict(shots=[5])), {})
    assert f"at 10 images: {vit} -9.5 points [95% interval" in text  # two seeds a side: Welch's t
    assert f"at 100 images: {vit} -5.5 points (one seed: undecided)" in text


def test_the_scaling_pilot_says_which_run_learned_its_task():
    text = render_section("scaling_pilot", figure=False)  # figures/scaling_pilot.json
    assert "One run per line (seed 0): the rows describe, they decide no claim." in text
    assert "| 32 px, 128 steps of 128, 100 categories | ViT-Ti/4 L=4 | 2.5% [1.7, 3.7] | no (from 10.0%) |" in text
    assert "| 28 px, 512 steps of 32, 10 categories | ViT-Ti/4 L=4 | 36.0% [27.3, 45.8] | yes (from 20.0%) |" in text


HYBRID = "R+ViT-Ti/4 L=4"  # the hybrid of the same depth as ViT-Ti/4 L=4 (its twin in MODELS)


def _sweep(acc, val=0.5, seeds=(0, 1, 2), noise=0.005):
    """Scaling rows of a ViT (FLOPs 10), the ResNet (FLOPs 20) and the hybrid at sizes 10 and 100, each seed's
    5-shot accuracy acc(model, size) spread by `noise`; the ViT's held-out pre-training accuracy `val`."""
    vit, bit = "ViT-Ti/4 L=4", "BiT-R26x1 w32"
    rows = []
    for seed in seeds:
        for m, flops in ((vit, 10), (bit, 20), (HYBRID, 10)):
            for size in (10, 100):
                row = _scaling_row(m, size, seed, acc(m, size) + (seed - 1) * noise, flops)
                row["metrics"]["val_accuracy"] = val if m == vit else 0.5
                rows.append(row)
    return rows


def _scaling_verdicts(rows):
    g = group(rows, "model", "size")
    return {v["claim"]: v for v in scaling.verdicts("c", g, list(dict.fromkeys(k[0] for k in g)), [10, 100], "5shot")}


def test_scaling_fig3_4_reaches_every_verdict():
    """The ResNet ahead on the smallest set, ViT ahead or level (equivalence, 2 points) on the largest."""
    def fig34(small, large, **kw):  # (ResNet, ViT) at the smallest and the largest size
        return _scaling_verdicts(_sweep(lambda m, n: dict(zip(("BiT-R26x1 w32", "ViT-Ti/4 L=4"),
                                                              small if n == 10 else large)).get(m, 0.1), **kw))
    assert fig34((0.6, 0.3), (0.6, 0.8))["Fig. 3/4"]["verdict"] == "reproduced"  # overtakes
    level = fig34((0.6, 0.3), (0.6, 0.601), noise=0.001)["Fig. 3/4"]  # catches up: level within 2 points
    assert level["verdict"] == "reproduced" and "level within 2 points" in level["text"]
    assert fig34((0.6, 0.3), (0.6, 0.62), noise=0.1)["Fig. 3/4"]["verdict"] == "partly reproduced"  # large: spread
    ahead = fig34((0.6, 0.3), (0.9, 0.5))["Fig. 3/4"]  # the ResNet still ahead on the largest set
    assert ahead["verdict"] == "not reproduced"
    assert ahead["here"] == "ResNet ahead by +30.0 points at 10 images, +40.0 at 100"
    assert fig34((0.3, 0.6), (0.6, 0.8))["Fig. 3/4"]["verdict"] == "not reproduced"  # ViT ahead on the smallest
    assert fig34((0.5, 0.501), (0.6, 0.601), noise=0.001)["Fig. 3/4"]["verdict"] == "not reproduced"  # level at 10
    assert fig34((0.52, 0.5), (0.5, 0.52), noise=0.1)["Fig. 3/4"]["verdict"] == "undecided"
    assert fig34((0.6, 0.3), (0.6, 0.8), seeds=(0,))["Fig. 3/4"]["verdict"] == "undecided"  # one seed
    low = fig34((0.6, 0.3), (0.6, 0.8), val=0.05)["Fig. 3/4"]  # the ViT never learned the pre-training task
    assert low["verdict"] == "not testable at this budget" and "the task was not learned" in low["why"]
    assert "below the 10.0% a learned task needs (chance 1.0%): the pre-training task was not learned" in low["text"]


def test_scaling_fig5_reaches_every_verdict_and_the_hybrid_is_not_testable_by_design():
    def fig5(vit, resnet, **kw):  # on the largest set; the ViT has half the ResNet's FLOPs
        return _scaling_verdicts(_sweep(lambda m, n: {"ViT-Ti/4 L=4": vit, "BiT-R26x1 w32": resnet}.get(m, 0.3)
                                        if n == 100 else 0.4, **kw))
    reads = {name: fig5(*accs, **kw)["Fig. 5"]["verdict"] for name, accs, kw in (
        ("ahead", (0.7, 0.5), {}), ("level", (0.5, 0.501), dict(noise=0.001)), ("behind", (0.4, 0.6), {}),
        ("spread", (0.52, 0.5), dict(noise=0.1)), ("not learned", (0.7, 0.5), dict(val=0.05)))}
    assert reads == {"ahead": "reproduced", "level": "partly reproduced", "behind": "not reproduced",
                     "spread": "undecided", "not learned": "not testable at this budget"}
    hybrid = fig5(0.7, 0.5)["hybrid"]  # every run has the same schedule: no small compute budget to read
    assert hybrid["verdict"] == "not testable at this budget" and "the same schedule (64 images seen)" in hybrid["text"]


def test_scaling_threshold_of_a_learned_task_follows_the_categories():
    assert scaling.learned_threshold(100) == 0.1 and scaling.learned_threshold(10) == 0.2
    rows = _sweep(lambda m, n: 0.6 if m == "BiT-R26x1 w32" else 0.3, val=0.15)
    config = dict(shots=[5], fractal_classes=100)
    fractals = scaling.claims(dict(rows=rows, config=config), "scaling")
    assert fractals[0][3] == "not reproduced"  # 15% on 100 categories: learned; the ResNet ahead at both ends
    fashion = scaling.claims(dict(rows=[{**r, "corpus": "fashion_mnist"} for r in rows], config=config), "scaling")
    assert fashion[0][3] == ("not testable at this budget: the task was not learned (ViTs 15.0% held-out, 10 "
                             "categories)")  # 15% on 10 categories: below twice chance
    assert [row[0].split(" (Fig.")[1] for row in fashion] == [" 3/4): `fashion_mnist`", " 5): `fashion_mnist`"]


# --- what the transfer rows say: summary and verdict, on rows made by hand ------------------------------------------
def _transfer_rows(cfg, acc):
    """Rows with the study's keys for every run of `cfg`; acc(spec, metric) gives each accuracy."""
    rows = []
    for spec in transfer.expand(cfg):
        if spec["kind"] != "fewshot":  # fine-tuning, 1x or the convergence check
            metrics = dict(test_accuracy=acc(spec, "test_accuracy"), test_n=1000)
            measured = dict(n_train=min(spec["size"], 3600), img_size=spec["resolution"] or 32)
        else:
            metrics = {f"{k}shot": acc(spec, f"{k}shot") for k in cfg.shots} | dict(test_n=1000)
            measured = dict(n_train=cfg.fewshot_pool, img_size=32)
        rows.append({**spec, **measured, "metrics": metrics, "load": dict(quiet=True)})
    return rows


def _spread(seed, sd):
    """A seed's offset from its arm's mean: seeds 0, 1, 2 at -sd, 0, +sd (seed 0 and 1 alone: -sd, 0)."""
    return (seed - 1) * sd


def test_transfer_verdict_reads_seeds_and_says_what_has_not_run():
    cfg = transfer.Config(datasets=("a", "b"), sizes=(100, 1000), seeds=(0, 1), shots=(1, 5), ablation_dataset="a",
                          ablation_size=100)

    def pays(spec, metric):  # pre-training pays everywhere; 48 px helps the pre-trained model ("a": not upsampled)
        base = (0.7 if spec["resolution"] else 0.6) if spec["arm"] == "pre-trained" else 0.4
        return base + _spread(spec["seed"], 0.01)

    rows = _transfer_rows(cfg, pays)
    s = transfer.summary(rows)
    assert [p["n_train"] for p in s["finetune"]["a"]["pre-trained"]] == [100, 1000]
    scratch = s["finetune"]["a"]["scratch"][0]
    assert scratch["seeds"] == 2 and abs(scratch["mean"] - 0.395) < 1e-9 and scratch["seed_ids"] == [0, 1]
    assert [p["resolution"] for p in s["ablation"]["a/n100"]["pre-trained"]] == [32, 48]
    assert json.loads(json.dumps(s)).keys() == s.keys()  # JSON-ready: the figure's results file holds it
    assert [p["shots"] for p in s["fewshot"]["b"]["random"]] == [1, 5]
    v = transfer.verdict(s, cfg)
    assert v["fine-tuning"]["verdict"] == "reproduced" and v["fine-tuning"]["ran"] == 4
    assert v["few-shot"]["verdict"] == "reproduced" and v["higher resolution"]["verdict"] == "reproduced"
    assert v["answer"]["verdict"] == "yes" and v["answer"]["planned"] == 4 + 4
    assert "One pre-training run underlies every comparison" in v["answer"]["text"]
    assert "b 1,000 (of 1,000 asked)" not in v["fine-tuning"]["text"]  # the images used equal those asked

    # a partial file: the fine-tuning rows of dataset b and the second seed missing
    partial = [r for r in rows if not (r["kind"] == "finetune" and (r["dataset"] == "b" or r["seed"] == 1))]
    v = transfer.verdict(transfer.summary(partial), cfg)
    assert v["fine-tuning"]["verdict"] == "undecided so far"  # one seed a side: no seed variance to test against
    text = v["fine-tuning"]["text"]
    assert "2 of 4 comparisons not yet run" in text and "2 with fewer than 2 seeds" in text
    assert "(one seed: undecided)" in text
    assert v["answer"]["verdict"] == "partly so far"  # the few-shot comparisons, all ahead, and two undecided
    v = transfer.verdict(transfer.summary([r for r in rows if r["kind"] == "fewshot"]), cfg)
    assert v["fine-tuning"]["verdict"] == "not yet run" and v["higher resolution"]["verdict"] == "not yet run"
    v = transfer.verdict(transfer.summary([]), cfg)
    assert v["answer"]["verdict"] == "not yet run"


def _transfer_verdicts(cfg, pre, other, noise=0.01):
    """transfer.verdict on rows whose pre-trained arm scores pre(spec) and the other arm other(spec), each seed
    spread by `noise` (`_spread`)."""
    def acc(spec, metric):
        return (pre if spec["arm"] == "pre-trained" else other)(spec) + _spread(spec["seed"], noise)
    return transfer.verdict(transfer.summary(_transfer_rows(cfg, acc)), cfg)


def test_transfer_pretraining_claims_reach_every_verdict():
    """Fine-tuning and few-shot, each comparison over seeds: every outcome of the rule, "not reproduced" included."""
    cfg = transfer.Config(datasets=("a", "b"), sizes=(100, 1000), seeds=(0, 1, 2), shots=(1, 5), ablation_dataset="a",
                          ablation_size=100, scratch_long_factor=0)
    ahead = _transfer_verdicts(cfg, lambda spec: 0.6, lambda spec: 0.4)
    assert ahead["fine-tuning"]["verdict"] == ahead["few-shot"]["verdict"] == "reproduced"
    assert ahead["answer"]["verdict"] == "yes"
    hurts = _transfer_verdicts(cfg, lambda spec: 0.3, lambda spec: 0.5)
    assert hurts["fine-tuning"]["verdict"] == "not reproduced" and hurts["answer"]["verdict"] == "no"
    assert "behind" in hurts["fine-tuning"]["text"]
    level = _transfer_verdicts(cfg, lambda spec: 0.5, lambda spec: 0.501, noise=0.001)  # equivalent within 2 points
    assert level["fine-tuning"]["verdict"] == "not reproduced" and level["fine-tuning"]["level"] == 4
    assert "level within 2 points" in level["fine-tuning"]["text"] and level["answer"]["verdict"] == "no"
    spread = _transfer_verdicts(cfg, lambda spec: 0.52, lambda spec: 0.5, noise=0.1)  # seeds too spread to tell
    assert spread["fine-tuning"]["verdict"] == "undecided" and spread["answer"]["verdict"] == "undecided"
    assert "not told apart over seeds" in spread["fine-tuning"]["text"]
    mixed = _transfer_verdicts(cfg, lambda spec: 0.7 if spec["dataset"] == "a" else 0.52,
                               lambda spec: 0.3 if spec["dataset"] == "a" else 0.5,
                               noise=0.1)  # "a" far ahead, "b" within the seeds' spread
    assert mixed["fine-tuning"]["verdict"] == "partly reproduced" and mixed["answer"]["verdict"] == "partly"
    one = _transfer_verdicts(dataclasses.replace(cfg, seeds=(0,)), lambda spec: 0.6, lambda spec: 0.4)
    assert one["fine-tuning"]["verdict"] == "undecided" and "one seed: undecided" in one["fine-tuning"]["text"]


def test_transfer_resolution_ablation_on_upsampled_images_is_not_testable():
    """Section 3.2's gain comes from seeing more of the image: 28 px images upsampled to 48 px hold no more."""
    cfg = transfer.Config(datasets=("fashion_mnist",), sizes=(100,), seeds=(0, 1, 2), shots=(),
                          ablation_dataset="fashion_mnist", ablation_size=100, scratch_long_factor=0)
    v = _transfer_verdicts(cfg, lambda spec: 0.7 if spec["resolution"] else 0.6, lambda spec: 0.4)
    part = v["higher resolution"]
    assert part["verdict"] == "not testable at this budget"
    assert part["text"].startswith("the images are upsampled from 28 px: no more detail at 48 px")
    claims = transfer.claims(dict(rows=_transfer_rows(cfg, lambda spec, m: 0.5), config=dataclasses.asdict(cfg)),
                             "transfer")
    assert claims[2][2:4] == ["the images are upsampled from 28 px: no more detail at 48 px",
                              "not testable at this budget"]
    # a dataset whose own images are large enough: the rule reads the rows
    cfg = dataclasses.replace(cfg, datasets=("a",), ablation_dataset="a")
    reads = {name: _transfer_verdicts(cfg, high, lambda spec: 0.4, noise)["higher resolution"]["verdict"]
             for name, high, noise in (("helps", lambda spec: 0.7 if spec["resolution"] else 0.6, 0.01),
                                       ("level", lambda spec: 0.6, 0.001),
                                       ("hurts", lambda spec: 0.5 if spec["resolution"] else 0.6, 0.01),
                                       ("spread", lambda spec: 0.62 if spec["resolution"] else 0.6, 0.1))}
    assert reads == dict(helps="reproduced", level="not reproduced", hurts="not reproduced", spread="undecided")


def test_transfer_gap_shrinking_with_size_reaches_every_verdict():
    """The design's expectation, read seed by seed: the gap at the largest size against the smallest."""
    cfg = transfer.Config(datasets=("a", "b"), sizes=(100, 1000), seeds=(0, 1, 2), shots=(), ablation_resolution=0,
                          scratch_long_factor=0)

    def gap(cfg, at_small, at_large, noise=0.01):  # scratch at 0.4; the pre-trained arm, and so the gap, spread
        rows = _transfer_rows(cfg, lambda spec, m: 0.4 + (at_small if spec["size"] == 100 else at_large)(spec)
                              + _spread(spec["seed"], noise) if spec["arm"] == "pre-trained" else 0.4)
        return transfer.gap_verdict(transfer.summary(rows), cfg)

    shrinks = gap(cfg, lambda spec: 0.2, lambda spec: 0.05)
    assert shrinks["verdict"] == "reproduced" and "smaller" in shrinks["text"]
    assert gap(cfg, lambda spec: 0.05, lambda spec: 0.2)["verdict"] == "not reproduced"  # it grows
    assert gap(cfg, lambda spec: 0.15, lambda spec: 0.15, noise=0.001)["verdict"] == "not reproduced"  # level
    spread = gap(cfg, lambda spec: 0.15, lambda spec: 0.14, noise=0.08)
    assert spread["verdict"] == "undecided" and "not told apart over seeds" in spread["text"]
    partly = gap(cfg, lambda spec: 0.2, lambda spec: 0.05 if spec["dataset"] == "a" else 0.19,
                 noise=0.05)  # "a" shrinks; "b" within the seeds' spread
    assert partly["verdict"] == "partly reproduced"
    assert gap(dataclasses.replace(cfg, seeds=(0,)), lambda spec: 0.2, lambda spec: 0.05)["verdict"] == "undecided"
    assert gap(dataclasses.replace(cfg, sizes=(100,)), lambda spec: 0.2,
               lambda spec: 0.2)["verdict"] == "not in this profile's design"
    big = dataclasses.replace(cfg, sizes=(100, 10000))  # the rows of size 10,000 used 3,600 images (_transfer_rows)
    capped = transfer.answer(dict(rows=_transfer_rows(big, lambda spec, m: 0.5), config=dataclasses.asdict(big)))
    assert "a 3,600 (of 10,000 asked)" in capped and "at 3,600;" in capped and "a 10,000:" not in capped


def test_transfer_verdict_of_a_profile_without_the_ablation_baseline():
    smoke = transfer.PROFILES["smoke"]  # its ablation dataset has no rows at the pre-training resolution
    v = transfer.verdict(transfer.summary([]), smoke)
    assert v["higher resolution"]["verdict"] == "not in this profile's design"
    assert transfer.config_from_results(json.loads(json.dumps(dataclasses.asdict(smoke)))) == smoke


def test_transfer_convergence_check_rows_and_verdict():
    """The scratch arm trained longer at the smallest size: its rows, their budget, and the verdict part that
    compares them with the pre-trained model at 1x (and says whether the longer schedule moved scratch)."""
    from vitlib.experiments import transfer

    cfg = experiments.config("transfer", "full")
    long = [s for s in transfer.expand(cfg) if s["kind"] == "finetune-long"]
    assert [s["key"] for s in long] == [f"finetune-long/scratch/fashion_mnist/n500/x4/s{k}" for k in (0, 1, 2)]
    assert transfer.planned_images(cfg, long[0]) == 4 * transfer.planned_images(
        cfg, next(s for s in transfer.expand(cfg) if s["kind"] == "finetune"))

    def row(kind, arm, acc, seed, **extra):
        return dict(key=f"{kind}/{arm}/fashion_mnist/n500/" + ("x4" if kind == "finetune-long" else "rpre")
                    + f"/s{seed}", kind=kind, arm=arm, dataset="fashion_mnist", size=500, seed=seed, resolution=None,
                    img_size=32, n_train=500,
                    metrics=dict(test_accuracy=acc, test_n=2000, test_correct=round(acc * 2000)), **extra)

    rows = [row("finetune", "pre-trained", 0.61 + _spread(s, 0.005), s) for s in (0, 1, 2)]
    rows += [row("finetune", "scratch", 0.46 + _spread(s, 0.005), s) for s in (0, 1, 2)]
    v = transfer.verdict(transfer.summary(rows), cfg)["scratch, longer"]
    assert v["verdict"] == "not yet run"

    def longer(acc, noise=0.005):
        v = transfer.verdict(transfer.summary(rows + [row("finetune-long", "scratch", acc + _spread(s, noise), s,
                                                          budget_factor=4) for s in (0, 1, 2)]), cfg)
        return v["scratch, longer"], v["answer"]["verdict"]

    v, _ = longer(0.66)  # scratch trained 4x as long overtakes
    assert v["verdict"] == "not reproduced" and "46.0% at 1x, 66.0% at 4x, ahead, +20.0 points" in v["text"]
    v, said = longer(0.612)  # it catches up: level within 2 points
    assert v["verdict"] == "not reproduced" and said.endswith("level within 2 points with scratch trained 4x as long "
                                                              "at 500 images")
    v, said = longer(0.50)  # pre-training still ahead against 4x the compute
    assert v["verdict"] == "reproduced" and said.endswith("; ahead of scratch trained 4x as long at 500 images")
    v, said = longer(0.60, noise=0.05)  # seeds too spread to tell: not "level"
    assert v["verdict"] == "undecided" and "not told apart from scratch trained 4x" in said


def test_under_torchrun_only_rank_0_writes_the_results_file(tmp_path, monkeypatch):
    """Every rank trains each row (DDP); a second writer would race rank 0 for the same file."""
    monkeypatch.setenv("RANK", "1")
    cfg = experiments.config("scaling_curves", "smoke", models=("ViT-tiny/8 L=1",))
    out = experiments.run_study(experiments.STUDIES["scaling_curves"], cfg, "smoke", tmp_path / "rows", log=print)
    assert len(out["rows"]) == 1 and not (tmp_path / "rows.json").exists()


class _Killed(Exception):
    """Stands for the process being killed (the end of a session, a reboot)."""


@pytest.mark.parametrize("model", ["ViT-tiny/8 L=1", "BiT-R w32 tiny"])
def test_an_interrupted_headline_row_resumes_from_its_saved_state(tmp_path, monkeypatch, model):
    """A run of the headline study takes hours on a CPU: killed mid-run, it keeps its state in the runner's parts
    folder, and run again it continues from the newest saved state to the uninterrupted run's checkpoints."""
    from vitlib.experiments import scaling_curves

    study = experiments.STUDIES["scaling_curves"]
    cfg = experiments.config("scaling_curves", "smoke", models=(model,), plateau_gain=-1.0)  # no stop
    ref = experiments.run_study(study, cfg, "smoke", tmp_path / "ref", log=_quiet)["rows"][0]
    probe, calls = scaling_curves.probe_metrics, []

    def killed_at_the_third_checkpoint(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise _Killed
        return probe(*args, **kwargs)

    monkeypatch.setattr(scaling_curves, "probe_metrics", killed_at_the_third_checkpoint)
    with pytest.raises(_Killed):
        experiments.run_study(study, cfg, "smoke", tmp_path / "run", log=_quiet)
    parts = runner.parts_dir(tmp_path / "run", ref["key"])
    saved = sorted(p.name for p in parts.glob("step_*.json"))
    assert saved == ["step_0000004.json"] and not (tmp_path / "run.json").exists()  # 64 images, 2 checkpoints
    row = experiments.run_study(study, cfg, "smoke", tmp_path / "run", log=_quiet)["rows"][0]
    assert len(calls) == 3 + 2  # only the checkpoints after the saved state were evaluated again
    timeless = [{k: v for k, v in p.items() if k != "seconds"} for p in row["points"]]
    assert timeless == [{k: v for k, v in p.items() if k != "seconds"} for p in ref["points"]]
    assert row["metrics"] == ref["metrics"] and [p["images_seen"] for p in row["points"]] == [32, 64, 128, 256]
    assert [p["loss"] for p in row["train_curve"]] == [p["loss"] for p in ref["train_curve"]]
    assert [p["from_images"] for p in row["parts"]] == [0, 64] and "parts" not in ref
    assert not parts.exists()  # the row is in the file: its saved state is gone

"""The small-data recipe (beyond the paper) and benchmarks/time_to_accuracy.py: the recipe's values, the benchmark's
smoke run end to end and resumed, its RESULTS.md section (a ViT that reached the goal and one that did not), and
`vitlib finetune --recipe`."""

import json
from pathlib import Path

import pytest

import vitlib.cli.training
from vitlib.cli import main as cli_main
from vitlib.config import TrainConfig
from vitlib.data import AUGMENTATIONS
from vitlib.model import VisionTransformer
from vitlib.plots import time_to_accuracy_figure
from vitlib.records import cpu_model, save_results
from vitlib.resnet import ResNet
from vitlib.results import TIME_TO_ACCURACY_GOAL, render_section, render_time_to_accuracy
from vitlib.train import finetune_recipe, lr_at, small_data_recipe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tta(monkeypatch):
    """benchmarks/time_to_accuracy.py as a module."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import time_to_accuracy

    return time_to_accuracy


def test_small_data_recipe_is_adamw_cosine_label_smoothing_with_a_five_percent_warmup():
    r = small_data_recipe(steps=1000)
    assert isinstance(r, TrainConfig)
    assert (r.optimizer, r.lr, r.weight_decay, r.batch_size, r.schedule) == ("adamw", 1e-3, 0.05, 128, "cosine")
    assert (r.label_smoothing, r.grad_clip, r.precision, r.mixup_alpha, r.cutmix_alpha) == (0.1, 1.0, "auto", 0, 0)
    assert r.warmup_steps == 50 and lr_at(50, r) == pytest.approx(1e-3) and lr_at(999, r) < 1e-7
    assert small_data_recipe(steps=1000, warmup_steps=None).warmup_steps == 50  # None counts as not given
    assert small_data_recipe(steps=1000, warmup_steps=0).warmup_steps == 0  # given: kept
    assert small_data_recipe(label_smoothing=0.0, seed=3).label_smoothing == 0.0
    with pytest.raises(ValueError, match="label_smoothing"):
        small_data_recipe(label_smoothing=1.5)


def test_eval_steps_are_log_spaced_then_even_and_the_budget_sizes_the_schedule(tta):
    assert tta.eval_steps(1200, 6) == (25, 50, 100, 200, 400, 600, 800, 1000)
    assert tta.eval_steps(2, 10) == (1,)  # never the last step (the run evaluates there itself), never step 0
    assert tta.planned_steps(1800, 128.0, 128) == 1800 and tta.planned_steps(0.1, 1.0, 128) == 1
    points = [dict(train_seconds=s, test_accuracy=a) for s, a in ((10, 0.5), (20, 0.86), (30, 0.84), (40, 0.91))]
    assert tta.reached(points, 0.85) == 20 and tta.reached(points, 0.90) == 40 and tta.reached(points, 0.95) is None


def test_smoke_run_end_to_end_then_resumed_runs_nothing(tta, tmp_path, capsys, monkeypatch):
    out = tmp_path / "tta.json"
    argv = ["--smoke", "--arms", "vit-scratch", "no-label-smoothing", "--seeds", "0", "1", "--out", str(out)]
    rows = tta.main(argv)
    record = json.loads(out.read_text())
    res, prov = record["results"], record["provenance"]
    assert prov["command"].startswith("python benchmarks/time_to_accuracy.py --smoke") and "git_commit" in prov
    cpu = cpu_model()  # a run's key: arm, seed and kind of CPU (times compare on one kind only)
    assert [r["key"] for r in res["rows"]] == [f"{k}/{cpu}" for k in ("vit-scratch/seed0", "no-label-smoothing/seed0",
                                                                      "vit-scratch/seed1", "no-label-smoothing/seed1")]
    steps = tta.SMOKE["images"] // tta.SMOKE["batch_size"]
    for r in rows:
        pts = r["points"]
        assert [p["step"] for p in pts] == [*tta.eval_steps(steps, tta.SMOKE["evals"]), steps]
        assert all(p["images_seen"] == p["step"] * tta.SMOKE["batch_size"] for p in pts)
        assert all(a["train_seconds"] <= b["train_seconds"] for a, b in zip(pts, pts[1:]))
        assert all(p["eval_seconds"] >= 0 and p["test_n"] == tta.SMOKE["n_test"] for p in pts)
        assert r["final_test_accuracy"] == pts[-1]["test_accuracy"] and r["images_seen"] == steps * 16
        assert r["eval_seconds"] == pytest.approx(sum(p["eval_seconds"] for p in pts), abs=0.05)
        assert set(r["reached_s"]) == {"0.85", "0.9"} and set(r["load"]) == {"before", "after", "quiet"}
        assert r["recipe"]["label_smoothing"] == (0.0 if r["arm"] == "no-label-smoothing" else 0.1)
        assert r["recipe"]["optimizer"] == "adamw" and r["family"] == "vit" and not r["stopped_by_guard"]
        assert r["augmentation"] == "flip" and r["data_options"] == json.loads(json.dumps(AUGMENTATIONS["flip"]))
    assert rows[1]["ablation"] == dict(of="vit-scratch", element="label smoothing 0.1", removes=True)
    arm = res["arms"][cpu]["vit-scratch"]
    assert arm["seeds"] == [0, 1] and len(arm["reached_s"]["0.9"]) == 2
    assert len(capsys.readouterr().out.strip().splitlines()) == 4  # one line per finished run
    before = out.read_text()
    assert tta.main(argv) == rows  # resumed: every (arm, seed) is in the file
    captured = capsys.readouterr()
    assert captured.out == "" and "0 runs to do, 4 already" in captured.err and out.read_text() == before
    with pytest.raises(SystemExit, match="another set-up"):
        tta.main(argv + ["--img-size", "32"])
    # another kind of CPU: its own runs
    monkeypatch.setattr(vitlib.records, "cpu_model", lambda: "another CPU, no native bf16")
    again = tta.main(["--smoke", "--arms", "vit-scratch", "--seeds", "0", "--out", str(out)])
    assert [r["key"] for r in again[4:]] == ["vit-scratch/seed0/another CPU, no native bf16"] and again[:4] == rows


def test_a_budget_run_trains_on_the_clock_and_measures_its_speed_for_the_evaluations(tta, tmp_path):
    args = tta.parse_args(["--smoke", "--arms", "resnet", "--out", str(tmp_path / "t")])
    args.images, args.budget_s = None, 0.5  # the budget, not a fixed schedule
    row = tta.run("resnet", 0, args, tta.load_data(args, args.arms))
    assert row["images_per_s_measured"] > 0 and row["family"] == "resnet" and row["sized_by"] == "clock"
    assert row["planned_steps"] == tta.planned_steps(0.5, row["images_per_s_measured"], tta.SMOKE["batch_size"])
    assert row["recipe"]["budget_s"] == 0.5 and row["recipe"]["steps"] == tta.CLOCK_STEPS * row["planned_steps"]
    assert row["train_seconds"] >= 0.5 and not row["stopped_by_guard"]  # the clock ends it, not the guard


def test_arms_build_the_vit_the_shipped_model_and_the_scaling_studys_resnet(tta, tmp_path):
    args = tta.parse_args(["--out", str(tmp_path / "t")])
    vit, name, family = tta.build(tta.ARMS["vit-scratch"], args, 10)
    shipped, shipped_name, _ = tta.build(tta.ARMS["vit-shipped"], args, 10)
    resnet, resnet_name, resnet_family = tta.build(tta.ARMS["resnet"], args, 10)
    assert isinstance(vit, VisionTransformer) and isinstance(shipped, VisionTransformer) and isinstance(resnet, ResNet)
    assert (name, family, resnet_name, resnet_family) == ("ViT-Ti/4 L=6", "vit", "BiT-R26x1 w32", "resnet")
    assert shipped.cfg == vit.cfg and shipped_name.startswith("ViT-Ti/4 L=6 (shipped")  # only the weights differ
    assert vit.cfg.img_size == 28 and tta.build(tta.ARMS["gap"], args, 10)[0].cfg.pool == "gap"
    coarse, coarse_name, _ = tta.build(tta.ARMS["patch-7"], args, 10)
    assert coarse.cfg.patch_size == 7 and coarse.cfg.num_layers == 6 and coarse_name == "ViT-Ti/7 L=6"
    assert tta.recipe(tta.ARMS["vit-shipped-paper-recipe"], steps=100) == finetune_recipe(steps=100)
    assert tta.recipe(tta.ARMS["no-warmup"], steps=100).warmup_steps == 0
    removed = [a for a in tta.DEFAULT_ARMS if tta.ARMS[a].element]
    assert all(tta.ARMS[a].start == "scratch" and tta.ARMS[a].removes for a in removed) and len(removed) == 7
    # the recipe's augmentation is flips only; the ResNet keeps BiT's crops and flips; the paper's recipe crops too
    augment = {a: tta.ARMS[a].augmentation for a in ("vit-scratch", "vit-shipped", "no-label-smoothing", "resnet",
                                                      "crop-flip", "no-augmentation", "vit-shipped-paper-recipe")}
    assert augment == {"vit-scratch": "flip", "vit-shipped": "flip", "no-label-smoothing": "flip",
                       "resnet": "crop-flip", "crop-flip": "crop-flip", "no-augmentation": "none",
                       "vit-shipped-paper-recipe": "crop-flip"}
    data = tta.load_data(tta.parse_args(["--smoke", "--out", str(tmp_path / "t")]), ["vit-scratch", "resnet", "gap"])
    flips, crops = data["train"]["flip"].dataset.transform, data["train"]["crop-flip"].dataset.transform
    assert set(data["train"]) == {"flip", "crop-flip"} and len(data["test"]) == tta.SMOKE["n_test"]
    assert flips.crop_scale == (1.0, 1.0) and crops.crop_scale == (0.35, 1.0) and flips.hflip and crops.hflip


# --- RESULTS.md ------------------------------------------------------------------------------------------------------

def _row(arm: str, seed: int, curve: list[tuple[float, float]], family: str = "vit", start: str = "scratch",
         ablation: dict | None = None, cpu: str = "CPU A, native bf16", augmentation: str = "flip") -> dict:
    """A synthetic row: `curve` is [(train seconds, test accuracy)]."""
    points = [dict(step=i + 1, images_seen=128 * (i + 1), train_seconds=s, eval_seconds=20.0, test_accuracy=a,
                   test_n=10000) for i, (s, a) in enumerate(curve)]
    first = {f"{t:g}": next((s for s, a in curve if a >= t), None) for t in (0.85, 0.9)}
    return dict(key=f"{arm}/seed{seed}", arm=arm, seed=seed, start=start, family=family, model=f"{arm} model",
                params=2_690_698, points=points, reached_s=first, final_test_accuracy=curve[-1][1],
                best_test_accuracy=max(a for _, a in curve), images_seen=points[-1]["images_seen"],
                train_seconds=curve[-1][0], ablation=ablation, load=dict(quiet=True), cpu=cpu,
                augmentation=augmentation)


def _results(top: float) -> dict:
    ab = dict(of="vit-scratch", element="label smoothing 0.1", removes=True)
    rows = [_row("vit-scratch", 0, [(600, 0.80), (1200, 0.87), (1750, top)]),
            _row("vit-scratch", 1, [(600, 0.81), (1200, 0.86), (1760, top - 0.002)]),
            _row("no-label-smoothing", 0, [(600, 0.79), (1200, 0.84), (1750, 0.85)], ablation=ab),
            _row("no-label-smoothing", 1, [(600, 0.78), (1200, 0.84), (1750, 0.852)], ablation=ab),
            _row("resnet", 0, [(600, 0.88), (1200, 0.90), (1790, 0.92)], family="resnet", start="resnet",
                 augmentation="crop-flip")]
    return dict(setup=dict(img_size=28, budget_s=1800.0, images=None), targets=[0.85, 0.9], baseline="vit-scratch",
                n_train=60000, n_test=10000, rows=rows)


def test_renderer_says_whether_a_vit_reached_the_goal():
    goal = f"{100 * TIME_TO_ACCURACY_GOAL[0]:.1f}% Fashion-MNIST test accuracy within {TIME_TO_ACCURACY_GOAL[1]:,} s"
    yes = render_time_to_accuracy(_results(0.91), {})
    assert f"**A ViT reached {goal} of training**: `vit-scratch` seed 0 after 29.2 min, `vit-scratch` seed 1 " \
           "after 29.3 min." in yes
    no = render_time_to_accuracy(_results(0.88), {})
    assert f"**No ViT reached {goal} of training**: the highest by then, from scratch 88.0% (`vit-scratch` seed 0, " \
           "after 29.2 min)." in no
    assert "The ResNet at the same time: 92.0% (1 seed); ResNet minus `vit-scratch` at the end: +4.1 points (not " \
           "tested: fewer than 2 seeds a side)." in no
    # the minutes to each target per seed, and what label smoothing bought over two seeds a side (Welch)
    assert "| `vit-scratch` | vit-scratch model (2.69M) | flip | 0, 1 | 87.9% [87.8%, 88.0%] |" in no
    assert "| 20.0, 20.0 | never, never |" in no and "| `resnet` | resnet model (2.69M) | crop-flip | 0 | 92.0% |" in no
    assert "| `vit-scratch` | - | 80.5% | 80.5% | 86.5% | 86.5% | 87.9% |" in no  # the curve, by fifths of the budget
    line = next(ln for ln in no.splitlines() if ln.startswith("| label smoothing 0.1"))
    assert "| yes | 87.9% [87.8%, 88.0%] | 85.1% [85.0%, 85.2%] | +2.8 points [" in line
    assert line.endswith("| helped | stays | 1.00 |")
    # the images each side saw in the same minutes: an arm that ran on a slower machine says so beside its verdict
    slow = _results(0.88)
    for x in slow["rows"]:
        if x["arm"] == "no-label-smoothing":
            x["images_seen"] = 96
    line = next(ln for ln in render_time_to_accuracy(slow, {}).splitlines() if ln.startswith("| label smoothing"))
    assert line.endswith("| helped | stays | 0.25 |")
    one_seed = _results(0.88)
    one_seed["rows"] = [x for x in one_seed["rows"] if x["seed"] == 0]
    assert "fewer than 2 seeds a side: undecided" in render_time_to_accuracy(one_seed, {})
    # a run on the clock ends when its budget is spent: its last point counts at the budget, a step's overshoot on
    clocked = _results(0.88)
    clocked["rows"] = [_row("vit-scratch", 0, [(600, 0.80), (1200, 0.87), (1801.7, 0.91)])]
    assert "**No ViT reached" in render_time_to_accuracy(clocked, {})
    clocked["rows"][0]["recipe"] = dict(budget_s=1800.0)
    assert "`vit-scratch` seed 0 after 30.0 min." in render_time_to_accuracy(clocked, {})
    # an arm that reached the goal in one seed of two says how far the other got
    clocked["rows"].append(_row("vit-scratch", 1, [(600, 0.80), (1200, 0.893), (1801.2, 0.899)]))
    clocked["rows"][1]["recipe"] = dict(budget_s=1800.0)
    assert ("`vit-scratch` seed 0 after 30.0 min. `vit-scratch`'s other seeds by then: 89.9% (seed 1)."
            in render_time_to_accuracy(clocked, {}))
    # a run made before the schedule followed the clock is said apart, with the minutes it trained
    assert "5 runs trained for 30 minutes on the clock" in no and "made before" not in no
    one_seed["rows"][0]["sized_by"] = "measurement"
    assert ("2 runs trained for 30 minutes on the clock (the warm-up and cosine decay follow the training time and "
            "end with it: `TrainConfig.budget_s`); 1 run made before the schedule followed the clock had its steps "
            "sized to fill 30 minutes at the speed of a few timed steps, and ended after 29.2 (`vit-scratch` seed 0, "
            "CPU A, native bf16) minutes of training") in render_time_to_accuracy(one_seed, {})


@pytest.mark.parametrize("with_, without, removes, verdict, says", [
    ([0.90, 0.902], [0.88, 0.881], True, "helped", "stays"),
    ([0.90, 0.902], [0.88, 0.881], False, "helped", "joins the recipe"),
    ([0.85, 0.86, 0.855], [0.90, 0.899], False, "hurt", "stays out"),
    ([0.88, 0.881], [0.90, 0.902], True, "hurt", "leaves the recipe"),
    # within the margin of +-0.5 points over 3 seeds a side: the element buys nothing
    ([0.900, 0.901, 0.902], [0.901, 0.900, 0.902], True, "no difference (within ±0.5 points)", "leaves the recipe"),
    ([0.902, 0.899], [0.897, 0.890], True, "not told apart over seeds", "more seeds (3 a side)"),
    ([0.902, 0.899, 0.905], [0.897, 0.890, 0.908], True, "not told apart over seeds", "stays: not shown to matter"),
    ([0.902, 0.899, 0.905], [0.897, 0.890, 0.908], False, "not told apart over seeds",
     "stays out: not shown to matter"),
])
def test_the_rule_keeps_or_drops_an_element_from_its_ablation_over_seeds(with_, without, removes, verdict, says):
    ab = dict(of="vit-scratch", element="the element", removes=removes)
    on, off = (with_, without) if removes else (without, with_)
    r = _results(0.9)
    r["rows"] = ([_row("vit-scratch", s, [(600, 0.8), (1790, a)]) for s, a in enumerate(on)]
                 + [_row("the-arm", s, [(600, 0.8), (1790, a)], ablation=ab) for s, a in enumerate(off)])
    line = next(ln for ln in render_time_to_accuracy(r, {}).splitlines() if ln.startswith("| the element"))
    assert line.endswith(f"| {verdict} | {says} | 1.00 |")


def test_the_resnet_is_tested_against_the_recipes_vit_over_seeds():
    """With 2 seeds a side the ResNet's lead (or deficit) at the budget gets Welch's t; a lead inside the seeds'
    spread is "not told apart", not a tie."""
    def sentence(resnet_accuracies: list[float]) -> str:
        r = _results(0.88)
        r["rows"] = [x for x in r["rows"] if x["family"] == "vit"] + [
            _row("resnet", s, [(600, 0.85), (1790, a)], family="resnet", start="resnet", augmentation="crop-flip")
            for s, a in enumerate(resnet_accuracies)]
        text = render_time_to_accuracy(r, {})
        return text[text.index("The ResNet at the same time"):].split("\n")[0]

    ahead = sentence([0.915, 0.917])  # the ViT's seeds: 88.0%, 87.8%
    assert ahead.startswith("The ResNet at the same time: 91.6% [91.5%, 91.7%] (2 seeds); ResNet minus "
                            "`vit-scratch` at the end: +3.7 points [")
    assert ahead.endswith("(Welch's t: ahead).")
    assert float(ahead.split("p = ")[1].split(" ")[0]) < 0.05
    level = sentence([0.870, 0.893])
    assert "+0.2 points [" in level and level.endswith("(Welch's t: not told apart over seeds).")
    assert float(level.split("p = ")[1].split(" ")[0]) >= 0.05
    r = _results(0.88)  # identical seeds on both sides: no variance to test against
    for x in r["rows"]:
        x["final_test_accuracy"] = 0.88
    r["rows"].append(dict(r["rows"][-1], seed=1))
    assert "(not tested: no spread)." in render_time_to_accuracy(r, {})


def test_an_arm_of_another_precision_owns_its_images_seen():
    """The images-seen column warns that a slower machine may explain a difference; for the precision arm the
    speed is the element itself, and the text says so for that arm alone."""
    r = _results(0.88)
    assert "images are the element's own doing" not in render_time_to_accuracy(r, {})
    for x in r["rows"]:
        x["precision_used"] = "fp32" if x["arm"] == "no-label-smoothing" else "bf16"
    assert ("For `no-label-smoothing` the images are the element's own doing: its precision (fp32, against bf16) "
            "sets the speed.") in render_time_to_accuracy(r, {})


def test_runs_on_another_kind_of_cpu_are_rendered_apart_and_never_compared_across():
    r = _results(0.88)
    slow = [_row("vit-scratch", s, [(600, 0.70), (1200, 0.75), (1750, 0.78)], cpu="CPU B, no native bf16")
            for s in (0, 1)]
    r["rows"] += slow
    text = render_time_to_accuracy(r, {})
    a, b = text.split("**On CPU A, native bf16** (5 runs; only these compare with each other):")[1].split(
        "**On CPU B, no native bf16** (2 runs; only these compare with each other):")
    assert "| 87.9% [87.8%, 88.0%] | 85.1% [85.0%, 85.2%] | +2.8 points [" in a  # CPU A's baseline, as alone
    assert "| `vit-scratch` | vit-scratch model (2.69M) | flip | 0, 1 | 78.0% [78.0%, 78.0%] |" in b
    assert "label smoothing" not in b  # no ablation on CPU B: CPU A's is not compared with CPU B's baseline
    assert "**No ViT reached" in a and "The ResNet at the same time" in a and "The ResNet" not in b
    fig = time_to_accuracy_figure(r["rows"])
    dash = {t.name: t.line.dash for t in fig.data}
    assert dash["vit-scratch · CPU A, native bf16"] == "solid" and dash["vit-scratch · CPU B, no native bf16"] == "dash"


def test_figure_draws_every_seed_the_ablations_beside_the_recipe_and_the_goal():
    rows = _results(0.91)["rows"]
    fig = time_to_accuracy_figure(rows, goal=TIME_TO_ACCURACY_GOAL, targets=(0.85, 0.9))
    left = [t for t in fig.data if t.xaxis == "x"]
    right = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.name for t in left] == ["vit-scratch", "vit-scratch", "resnet"]  # the arms, one line a seed
    assert [t.name for t in right] == ["vit-scratch (the recipe)"] * 2 + ["no-label-smoothing"] * 2
    assert right[0].line.color == "black" and left[0].line.color != "black"
    assert left[2].x == (10.0, 20.0, 29.833333333333332) and left[2].y == (0.88, 0.90, 0.92)  # minutes, accuracy
    assert [t.showlegend for t in left + right] == [True, False, True, True, False, True, False]
    lines = [(sh.type, sh.x0, sh.y0) for sh in fig.layout.shapes]
    assert ("line", 30.0, 0) in lines and sum(y == 0.9 for _, _, y in lines) == 2  # the budget; 90% in each panel
    only_arms = time_to_accuracy_figure(rows[:2])
    assert {t.xaxis for t in only_arms.data} == {"x"} and not only_arms.layout.shapes


def test_renderer_is_results_mds_section_for_the_file(tmp_path):
    save_results(tmp_path / "time_to_accuracy", _results(0.91), "python benchmarks/time_to_accuracy.py")
    text = render_section("time_to_accuracy", tmp_path)
    assert text.startswith("## A ViT on a CPU: time to accuracy on Fashion-MNIST")
    assert "**A ViT reached" in text and "Made by `python benchmarks/time_to_accuracy.py`" in text


def test_finetune_recipe_flag_picks_the_small_data_recipe(monkeypatch):
    seen = []
    monkeypatch.setattr(vitlib.cli.training, "train", lambda model, data, cfg, **kw: seen.append(cfg) or {"val": []})
    base = ["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--steps", "50", "--no-estimate"]
    cli_main(base)
    cli_main(base + ["--recipe", "small-data"])
    cli_main(base + ["--recipe", "small-data", "--batch-size", "64", "--label-smoothing", "0"])
    assert seen[0] == finetune_recipe(steps=50, batch_size=vitlib.cli.training.CPU_FINETUNE_BATCH)  # the default
    assert seen[1] == small_data_recipe(steps=50)
    assert seen[2] == small_data_recipe(steps=50, batch_size=64, label_smoothing=0.0)
    with pytest.raises(SystemExit):
        cli_main(base + ["--recipe", "paper"])


def test_finetune_minutes_puts_the_schedule_on_the_clock(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(vitlib.cli.training, "train", lambda model, data, cfg, **kw: seen.append(cfg) or {"val": []})
    monkeypatch.setattr(vitlib.cli.training, "measure", lambda model, data, cfg: (64.0, 128))  # images/s, batch
    base = ["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--recipe", "small-data"]
    cli_main(base + ["--minutes", "2"])
    # 120 s of training; 120 s x 64 images/s / 128 = 60 steps expected, a cap of 3 x 60 (the warm-up: 5% of it)
    assert seen[0] == small_data_recipe(steps=vitlib.cli.training.CLOCK_STEPS * 60, budget_s=120.0)
    err = capsys.readouterr().err
    assert "2 min of training, on the clock" in err and "about 7,680 images" in err
    assert err.count("timing a few steps") == 1  # measured once
    with pytest.raises(SystemExit):
        cli_main(base + ["--minutes", "2", "--steps", "10"])
    assert "--minutes and --steps both set the run's length" in capsys.readouterr().err
    # --resume keeps the saved run's cap (else the checkpoint's TrainConfig would differ) and says the time left
    monkeypatch.setattr(vitlib.cli.training, "latest_checkpoint", lambda out: Path(out) / "step_0000010")
    monkeypatch.setattr(vitlib.cli.training, "checkpoint_meta", lambda path: dict(
        train_config=dict(steps=999, budget_s=120.0), extra=dict(train_seconds=60.0)))
    cli_main(base + ["--minutes", "2", "--resume"])
    assert seen[-1] == small_data_recipe(steps=999, budget_s=120.0)
    assert "60 s of training left of 2 min, on the clock" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit):
        cli_main(base + ["--minutes", "2"])
    assert "--minutes follows one process's clock" in capsys.readouterr().err


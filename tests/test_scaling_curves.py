"""The headline study's verdicts (vitlib.experiments.scaling_curves): each rule driven to each of its outcomes by
synthetic rows, and the renderer on the pilot's real rows."""

import json

import numpy as np
import pytest

from vitlib.config import config_to_dict
from vitlib.experiments import scaling_curves as sc
from vitlib.records import FIGURES_DIR
from vitlib.stats import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, UNDECIDED, mean_interval, power_law

VIT, RESNET = "ViT-Ti/4 L=4", "BiT-R26x1 w32"
CFG = dict(img_size=28)
FLOPS = [2.0 ** k * 1e9 for k in range(10, 21)]  # the checkpoints' training FLOPs


def _row(model, size, seed, acc, val=0.5, curve=None, distance=None, cutmix=False):
    """A run at its best checkpoint (10-shot `acc`) with checkpoints along `curve` (10-shot accuracy at FLOPS)."""
    curve = curve if curve is not None else np.linspace(0.3, acc, len(FLOPS))
    points = [dict(images_seen=2 ** (10 + i), train_flops=f, val_accuracy=val, **{"10shot": float(a)},
                   attention_distance=None if distance is None else distance(i))
              for i, (f, a) in enumerate(zip(FLOPS, curve))]
    return dict(key=f"{model}{'+CutMix' if cutmix else ''}/fractaldb/n{size}/s{seed}", model=model, size=size,
                seed=seed, cutmix=cutmix, points=points,
                metrics={"10shot": acc, "5shot": acc, "val_accuracy": val, "probe_n": 2000, "val_n": 2000,
                         "plateau": True, "best_images": 2 ** 20})


def _lead_rows(leads_by_size, vit=0.5, val=0.5):
    """Rows whose ResNet leads the ViT by leads_by_size[size][seed]."""
    rows = []
    for size, leads in leads_by_size.items():
        for seed, lead in enumerate(leads):
            acc = vit + 0.001 * seed
            rows += [_row(VIT, size, seed, acc, val), _row(RESNET, size, seed, acc + lead)]
    return rows


def test_lead_shrinking_over_seeds_is_reproduced_with_a_crossover():
    v = sc.lead_verdict(_lead_rows({1000: [0.30, 0.31, 0.29], 10000: [0.20, 0.22, 0.21],
                                    100000: [0.11, 0.10, 0.12]}))
    assert v["verdict"] == REPRODUCED and v["slope"] < 0 and v["ci95"][1] < 0
    assert 1e6 < v["crossover"] < 1e8  # 10 points less per decade from +10 at 10^5: zero near 10^6


def test_lead_flat_within_the_margin_or_growing_is_not_reproduced():
    flat = sc.lead_verdict(_lead_rows({1000: [0.200, 0.203, 0.198], 10000: [0.201, 0.199, 0.202],
                                       100000: [0.199, 0.202, 0.200]}))
    assert flat["verdict"] == NOT_REPRODUCED and "does not shrink" in flat["why"]
    grows = sc.lead_verdict(_lead_rows({1000: [0.10, 0.11, 0.12], 100000: [0.30, 0.31, 0.29]}))
    assert grows["verdict"] == NOT_REPRODUCED and "grows" in grows["why"]


def test_lead_with_one_seed_or_spread_seeds_is_undecided():
    assert sc.lead_verdict(_lead_rows({1000: [0.3], 100000: [0.1]}))["verdict"] == UNDECIDED
    spread = sc.lead_verdict(_lead_rows({1000: [0.05, 0.40, 0.20], 100000: [0.35, 0.0, 0.15]}))
    assert spread["verdict"] == UNDECIDED


def test_a_vit_that_never_learned_the_task_makes_every_verdict_not_testable():
    rows = _lead_rows({1000: [0.30, 0.31], 100000: [0.10, 0.11]}, val=0.04)
    for verdict in (sc.lead_verdict(rows), sc.compute_verdict(rows)):
        assert verdict["verdict"] == NOT_TESTABLE and "not learned" in verdict["why"]
    flat = [_row(VIT, 100000, s, 0.3, curve=[0.3] * len(FLOPS)) for s in (0, 1)]  # probes as untrained
    assert "nothing transferable" in sc.why_not_testable(flat)


def _compute_rows(vit_b, resnet_b, seeds=(0, 1, 2)):
    """Runs on the largest set whose error falls as a power law of FLOPs with slope b (a steeper slope reaches
    a given accuracy with fewer FLOPs)."""
    rows = []
    for seed in seeds:
        for model, b in ((VIT, vit_b), (RESNET, resnet_b)):
            err = 0.2 + 3.0 * (np.array(FLOPS) / 1e9) ** -b + 0.002 * seed
            rows.append(_row(model, 100000, seed, float(1 - err[-1]), curve=1 - err))
    return rows


def test_compute_verdict_reads_which_model_needs_fewer_flops():
    assert sc.compute_verdict(_compute_rows(0.5, 0.3))["verdict"] == REPRODUCED
    ahead = sc.compute_verdict(_compute_rows(0.3, 0.5))
    assert ahead["verdict"] == NOT_REPRODUCED and ahead["ratio"] < 1
    assert sc.compute_verdict(_compute_rows(0.5, 0.3, seeds=(0,)))["verdict"] == UNDECIDED


def _distance_rows(first_layer, last_layer, sizes=(1000, 100000), seeds=(0, 1, 2), cutmix=None):
    """ViT runs whose last checkpoint has the given distances (pixels) in layer 1 and the last layer (4 heads)."""
    rows = []
    for size in sizes:
        for seed in seeds:
            d = [[first_layer(size, seed)] * 4, [10.0] * 4, [last_layer(size, seed)] * 4]
            rows.append(_row(VIT, size, seed, 0.5, distance=lambda i, d=d: d))
    if cutmix is not None:
        d = [[cutmix] * 4, [10.0] * 4, [13.0] * 4]
        rows.append(_row(VIT, max(sizes), 0, 0.5, distance=lambda i: d, cutmix=True))
    return rows


def test_locality_verdicts_reach_each_outcome():
    uniform = sc.locality([_row(VIT, 1000, 0, 0.5, distance=lambda i: [[1.0]])], CFG)["uniform"]
    local = uniform / 4
    yes = sc.locality_verdict(_distance_rows(lambda n, s: local + 0.01 * s if n == 100000 else uniform,
                                             lambda n, s: 13.0 + s, cutmix=uniform), CFG)["verdicts"]
    assert yes == {"lower layers get local heads with enough data": REPRODUCED, "distance grows with depth": REPRODUCED,
                   "CutMix changes layer 1's distance": REPRODUCED}
    no = sc.locality_verdict(_distance_rows(lambda n, s: uniform - 0.01 * s, lambda n, s: 5.0 + s, cutmix=uniform),
                             CFG)
    assert set(no["verdicts"].values()) == {NOT_REPRODUCED}
    one = sc.locality_verdict(_distance_rows(lambda n, s: local, lambda n, s: 13.0, seeds=(0,)), CFG)["verdicts"]
    assert one["distance grows with depth"] == UNDECIDED


def test_the_pilot_renders_with_its_one_seed_undecided():
    r = json.loads((FIGURES_DIR / "scaling_curves_pilot.json").read_text())["results"]
    text = sc.render(r, {})
    assert "| ViT-Ti/4 L=4 | 100,000 | 1 |" in text and f"**{UNDECIDED}**" in text
    assert sc.leads(r["rows"])[1000][0] > sc.leads(r["rows"])[100000][0] > 0  # the trend the design asks about


def test_verdicts_wait_until_every_run_of_the_design_is_in():
    """A file with part of its design reads 'in progress', never a verdict from whichever sizes have run."""
    record = json.loads((FIGURES_DIR / "scaling_curves_pilot.json").read_text())["results"]
    assert sc.in_progress(record) is None  # the pilot is complete
    part = dict(record, rows=record["rows"][:2])
    assert sc.in_progress(part) == f"2 of {len(record['rows'])} runs of the design so far"
    text = sc.render(part, {})
    assert f"**{sc.IN_PROGRESS}** (2 of" in text and "Fig. 5, ViT the better deal" not in text
    assert all(row[3].startswith(sc.IN_PROGRESS) for row in sc.claims(part, "scaling_curves"))
    assert not any(row[3].startswith(sc.IN_PROGRESS) for row in sc.claims(record, "scaling_curves_pilot"))


LAW = dict(a=40.0, b=0.5, c=0.1, d=1000.0)  # E = a (images + d)^(-b) + c
IMAGES = [2 ** (10 + i) for i in range(len(FLOPS))]  # the checkpoints' images seen: FLOPS / 1e9


def _law_rows(offsets, noise=0.0, model=VIT, size=100000):
    """One run per seed whose 10-shot error follows LAW against images seen, shifted by the seed's offset, with
    Gaussian noise of sd `noise` at each checkpoint."""
    rng, rows = np.random.default_rng(0), []
    for seed, offset in enumerate(offsets):
        error = power_law(IMAGES, **LAW) + offset + noise * rng.standard_normal(len(IMAGES))
        rows.append(_row(model, size, seed, float(1 - error[-1]), curve=1 - error))
    return rows


def _truth(axis):
    """LAW on an axis: against FLOPs (1e9 an image) a is scaled by 1e9^b and d by 1e9."""
    scale = 1.0 if axis == "images seen" else 1e9
    return dict(LAW, a=LAW["a"] * scale ** LAW["b"], d=LAW["d"] * scale)


def test_power_law_fit_recovers_a_known_law_against_images_and_flops():
    fitted = sc.fits(_law_rows([0.0, 0.0]))
    assert [(f["model"], f["axis"]) for f in fitted] == [(VIT, "images seen"), (VIT, "training FLOPs")]
    for f in fitted:
        fit, truth = f["fit"], _truth(f["axis"])
        assert fit["b"] == pytest.approx(truth["b"], abs=0.01) and fit["c"] == pytest.approx(truth["c"], abs=0.005)
        assert fit["a"] == pytest.approx(truth["a"], rel=0.05) and fit["d"] == pytest.approx(truth["d"], rel=0.1)
        assert f["rms"] < 1e-4 and f["bounds"] == [] and f["note"] is None


def test_the_bootstrap_interval_over_noisy_seeds_contains_the_truth():
    fitted = sc.fits(_law_rows([-0.01, -0.004, 0.004, 0.01], noise=0.003))
    for f in fitted:
        truth = _truth(f["axis"])
        for k in "abc":
            low, high = f["ci95"][k]
            assert low < truth[k] < high, (f["axis"], k, low, high)
    c_images, c_flops = (f["ci95"]["c"] for f in fitted)
    assert c_images == pytest.approx(c_flops, abs=1e-6)  # FLOPs are images times a constant: the same floor


def test_one_seed_gives_no_interval_and_the_pilot_renders_its_fits():
    r = json.loads((FIGURES_DIR / "scaling_curves_pilot.json").read_text())["results"]
    fitted = sc.fits(r["rows"])
    assert {f["model"] for f in fitted} == {VIT, RESNET} and {f["size"] for f in fitted} == {100000}
    assert all(f["ci95"] is None and f["note"] == "one seed: no interval" for f in fitted)
    text = sc.render(r, {})
    assert "| ViT-Ti/4 L=4 | training FLOPs | 1 | 7 |" in text and "one seed: no interval" in text
    assert "crossover not read (one seed: no interval for the slope)" in text


def test_a_fit_that_fails_is_a_message_in_the_table_never_a_crash(monkeypatch):
    short = [dict(row, points=row["points"][:3]) for row in _law_rows([0.0])]
    assert sc.fits(short)[0]["note"].startswith("no fit: a saturating power law has 4 parameters")

    def no_convergence(x, error):
        raise RuntimeError("Optimal parameters not found: the maximum number of function evaluations is exceeded.")

    monkeypatch.setattr(sc, "fit_power_law", no_convergence)
    fitted = sc.fits(_law_rows([0.0, 0.01]))
    assert all(f["fit"] is None and f["note"].startswith("did not converge: Optimal") for f in fitted)
    r = json.loads((FIGURES_DIR / "scaling_curves_pilot.json").read_text())["results"]
    assert "| - | - | - | - | - | did not converge: Optimal parameters not found" in sc.render(r, {})


def _full_record(lead=(0.30, 0.20, 0.10)):
    """Every run of the full design: the ResNet leads by lead[i] (+0.5 point a seed) on the i-th size, and every
    run's error falls along LAW to its final accuracy."""
    cfg = sc.PROFILES["full"]
    rows = []
    for spec in sc.expand(cfg):
        seed = spec["seed"]
        acc = 0.5 + 0.01 * seed + (0 if spec["model"] == VIT else lead[sorted(cfg.sizes).index(spec["size"])]
                                   + 0.005 * seed)
        error = power_law(IMAGES, **dict(LAW, c=0.0)) + (1 - acc - power_law(IMAGES[-1], **dict(LAW, c=0.0)))
        distance = [[8.0 + 0.1 * seed] * 4, [10.0] * 4, [13.0 + seed] * 4]  # pixels: layer 1, 2, 3 of 4 heads
        rows.append(_row(spec["model"], spec["size"], seed, acc, curve=1 - error, cutmix=spec["cutmix"],
                         distance=(lambda i, d=distance: d) if spec["model"] == VIT else None))
    return dict(config=config_to_dict(cfg), profile="full", rows=rows)


def test_a_complete_design_renders_the_lead_with_intervals_the_fits_and_the_crossover():
    r = _full_record()
    assert sc.in_progress(r) is None
    text = sc.render(r, {})
    by_seed = sc.leads(r["rows"])[1000]
    low, high = mean_interval(list(by_seed.values()))
    assert (f"| 1,000 | 2 | seed 0 {100 * by_seed[0]:+.1f}, seed 1 {100 * by_seed[1]:+.1f} | "
            f"{100 * np.mean(list(by_seed.values())):+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] |") in text
    assert "| 10,000 | 1 | seed 0 " in text and "(one seed: no interval)" in text  # the middle size, amended
    assert "so far" not in text
    assert f"shrinks as the data grow: **{REPRODUCED}**" in text and "reaches 0 at about" in text
    assert "[95% interval" in text.split("reaches 0 at about")[1].split(")")[0]
    fitted = sc.fits(r["rows"])
    assert len(fitted) == 4 and all(f["ci95"] is not None and f["size"] == 100000 for f in fitted)
    # the numbers behind each verdict are printed beside it
    lv, cv, loc = sc.lead_verdict(r["rows"]), sc.compute_verdict(r["rows"]), sc.locality_verdict(r["rows"], CFG)
    assert f"Welch's t, 100,000 against 1,000 fractals, one-sided p = {lv['test']['p']:.2g}" in text
    assert f"FLOP ratio ResNet / ViT {cv['ratio']:.2g} [{cv['ci95'][0]:.2g}, {cv['ci95'][1]:.2g}]" in text
    assert f"last layer minus first at 100,000 fractals {loc['rise']['diff']:+.1f} px" in text
    assert "local heads in layer 1, a seed: 100,000 fractals " in text and "layer 1 with CutMix 8.0 px" in text
    lead_row, compute_row, locality_row = sc.claims(r, "scaling_curves")
    assert lead_row[3] == REPRODUCED and compute_row[3] == cv["verdict"]
    assert locality_row[3] == (f"local heads {loc['verdicts']['lower layers get local heads with enough data']}; "
                               f"distance grows with depth {loc['verdicts']['distance grows with depth']}")


def test_runs_stopped_by_the_cap_are_named_beside_the_verdicts():
    r = _full_record()
    assert "Stopped by the cap" not in sc.render(r, {})  # every run at its plateau
    for row in r["rows"]:
        if row["model"] == VIT and row["size"] == 100000 and (row["seed"] == 0 or row["cutmix"]):
            row["metrics"]["plateau"] = False
    text = sc.render(r, {})
    assert f"Stopped by the cap of {2 ** 20:,} images" in text and f"{VIT} on 100,000 fractals (1 of 2)" in text
    assert f"{RESNET} on" not in text.split("Stopped by the cap")[1]  # the CutMix arm is not a plain run
    assert "only the ViT is capped, and only on the larger sets" in text
    next(row for row in r["rows"] if row["model"] == VIT and row["size"] == 1000)["metrics"]["plateau"] = False
    # capped on the smallest set too: there the cap could make a shrink
    assert "only the ViT is capped" not in sc.render(r, {})


def test_the_headline_figure_draws_the_verdicts_numbers():
    """figure_data: Fig. 3/4's points are the runs' best checkpoints with t intervals, the lead's line is the
    verdict's and runs on to its crossover, Fig. 5's laws are the fits; the figure draws each of them."""
    from vitlib.plots import headline_figure

    r = _full_record()
    data, verdict = sc.figure_data(r["rows"]), sc.lead_verdict(r["rows"])
    vit = {p["size"]: p for p in data["transfer"][VIT]}
    assert list(vit) == [1000, 10000, 100000] and vit[1000]["values"] == [0.5, 0.51]
    assert vit[1000]["ci95"] == mean_interval([0.5, 0.51]) and vit[10000]["ci95"] is None  # one seed
    assert len(vit[100000]["values"]) == 2  # the two plain seeds: the CutMix run is not a point of Fig. 3/4
    sizes, line = data["line_sizes"], data["line"]
    assert sizes[0] == 1000 and sizes[-1] == pytest.approx(verdict["crossover"]) and abs(line[-1]) < 1e-9
    slope = (line[-1] - line[0]) / np.log10(sizes[-1] / sizes[0])
    assert slope == pytest.approx(verdict["slope"])
    law = {f["model"]: f["fit"] for f in sc.fits(r["rows"]) if f["axis"] == "training FLOPs"}
    for model, c in data["compute"].items():
        assert len(c["runs"]) == 2  # the plain seeds on 10^5, CutMix left out
        x = np.array(c["law"]["flops"])
        assert np.allclose(c["law"]["accuracy"], 1 - power_law(x, **law[model]))
    fig = headline_figure(data)
    drawn = [t for t in fig.data if t.name == f"{VIT}, fitted law"]
    assert len(drawn) == 1 and list(drawn[0].y) == pytest.approx([100 * a for a in data["compute"][VIT]["law"]
                                                                  ["accuracy"]])
    assert {t.line.dash for t in fig.data if t.name == "fitted lead"} == {"solid", "dot"}  # on to the crossover
    flat = sc.figure_data(_lead_rows({1000: [0.1, 0.12], 100000: [0.11, 0.1]}))
    assert flat["crossover"] is None and flat["line_sizes"][-1] == pytest.approx(100000)
    assert {t.line.dash for t in headline_figure(flat).data if t.name == "fitted lead"} == {"solid"}


def test_an_unfinished_design_labels_its_tables_so_far_and_no_crossover_is_implied_by_a_flat_lead():
    r = _full_record()
    part = dict(r, rows=r["rows"][:8])
    text = sc.render(part, {})
    assert text.count("so far (8 of 11 runs)") == 3 and f"**{sc.IN_PROGRESS}** (8 of 11" in text
    waiting = f"{sc.IN_PROGRESS}: 8 of 10 runs of the design (the CutMix arm aside) so far"
    assert sc.claims(part, "scaling_curves")[0][3] == waiting
    flat = sc.render(_full_record(lead=(0.20, 0.20, 0.20)), {})
    assert "no crossover implied (the slope's interval reaches 0)" in flat


def test_the_cutmix_arm_runs_last_and_the_other_verdicts_do_not_wait_for_it():
    r = _full_record()
    assert [x["cutmix"] for x in r["rows"]] == [False] * 10 + [True]
    plain = dict(r, rows=r["rows"][:10])
    assert sc.in_progress(plain) == "10 of 11 runs of the design so far" and sc.in_progress(plain, plain=True) is None
    text = sc.render(plain, {})
    assert f"shrinks as the data grow: **{REPRODUCED}**" in text and "Fig. 5, ViT the better deal" in text
    assert f"CutMix changes layer 1's distance **{sc.IN_PROGRESS}** (10 of 11" in text
    assert not any(row[3].startswith(sc.IN_PROGRESS) for row in sc.claims(plain, "scaling_curves"))


def test_the_amended_design_runs_the_middle_size_with_one_seed():
    keys = [s["key"] for s in sc.expand(sc.PROFILES["full"])]
    assert [k for k in keys if "/n10000/" in k] == [f"{VIT}/fractaldb/n10000/s0", f"{RESNET}/fractaldb/n10000/s0"]
    assert sum(k.endswith("/s1") for k in keys) == 4 and not any(k.endswith("/s2") for k in keys)
    with pytest.raises(ValueError, match=r"one_seed_sizes \[500\] are not among the sizes"):
        sc.expand(sc.Config(sizes=(1000, 100000), one_seed_sizes=(500,)))


def test_a_middle_size_with_one_seed_has_no_leverage_on_the_slope_and_its_interval():
    """Two seeds at the end sizes and one at the middle (log10 sizes 3, 3, 4, 5, 5): the slope and its interval
    do not depend on the middle size's value; the crossover does."""
    ends = {1000: [0.30, 0.31], 100000: [0.10, 0.12]}
    verdicts = [sc.lead_verdict(_lead_rows({**ends, 10000: [middle]})) for middle in (0.15, 0.25)]
    for v in verdicts:
        assert v["verdict"] == REPRODUCED and v["ci95"] is not None
        assert v["slope"] == pytest.approx(verdicts[0]["slope"]) and v["ci95"] == pytest.approx(verdicts[0]["ci95"])
    assert v["slope"] == pytest.approx((0.11 - 0.305) / 2)
    assert verdicts[0]["crossover"] < verdicts[1]["crossover"]  # a higher middle lead lifts the line


def test_cutmix_against_two_plain_seeds_must_leave_their_prediction_interval():
    """With two plain seeds one CutMix run decides only far outside their spread (t with 1 degree of freedom)."""
    uniform = sc.locality([_row(VIT, 1000, 0, 0.5, distance=lambda i: [[1.0]])], CFG)["uniform"]
    plain = lambda n, s: 6.0 + 0.2 * s  # layer 1 at 6.0 and 6.2 pixels
    near = sc.locality_verdict(_distance_rows(plain, lambda n, s: 13.0, seeds=(0, 1), cutmix=7.0), CFG)
    low, high = near["plain_band"]
    assert low < 6.1 - 2 < 6.1 + 2 < high  # 12.7 x 0.14 x 1.22: about +-2.2 pixels
    assert near["verdicts"]["CutMix changes layer 1's distance"] == NOT_REPRODUCED  # outside the range, not the band
    far = sc.locality_verdict(_distance_rows(plain, lambda n, s: 13.0, seeds=(0, 1), cutmix=uniform), CFG)
    assert far["verdicts"]["CutMix changes layer 1's distance"] == REPRODUCED
    one = sc.locality_verdict(_distance_rows(plain, lambda n, s: 13.0, seeds=(0,), cutmix=uniform), CFG)
    assert one["verdicts"]["CutMix changes layer 1's distance"] == UNDECIDED
    spread = sc.locality_verdict(_distance_rows(lambda n, s: 6.0 + 2 * s, lambda n, s: 13.0, seeds=(0, 1),
                                                cutmix=7.0), CFG)  # seeds 6 and 8 px: a band of about +-22 px
    assert (spread["plain_band"][1] - spread["plain_band"][0]) / 2 > sc.LOCALITY_MARGIN * uniform
    assert spread["verdicts"]["CutMix changes layer 1's distance"] == UNDECIDED  # inside, but no margin to say "same"


def test_rows_reused_from_the_pilot_are_its_runs_and_the_full_design_would_repeat_them():
    """A pilot run that stopped at its plateau before the pilot's cap is the full design's run: the profiles differ
    in sizes, seeds, cap and the CutMix arm, none of which changes a run that stops before either cap (the two
    runs both profiles made whole, at 10^3, agree at every checkpoint in every number but the seconds). A run made
    in parts on other CPU kinds (its `parts`) repeats the design, not the numbers: the kinds' floating-point kernels
    differ in the last bits and training amplifies that (the ViT on 10^5 fractals, seed 0, begun on a kind without
    native bf16, differs from the pilot's from 2,048 images on), so it must match in checkpoints and FLOPs only."""
    pilot, full = (json.loads((FIGURES_DIR / f"{stem}.json").read_text())["results"]
                   for stem in ("scaling_curves_pilot", "scaling_curves"))
    differ = {k for k, v in full["config"].items() if pilot["config"].get(k) != v}
    assert differ <= {"sizes", "seeds", "one_seed_sizes", "images_per_run", "cutmix_seeds", "cutmix_alpha"}
    by_key = {r["key"]: r for r in pilot["rows"]}
    reused = [r for r in full["rows"] if r.get("reused_from") == "scaling_curves_pilot"]
    assert reused  # the ResNet on 10^5 fractals, seed 0
    for row in reused:
        made = by_key[row["key"]]
        assert row["points"] == made["points"] and row["metrics"] == made["metrics"] and row["date"] == made["date"]
        assert row["metrics"]["plateau"] and row["images_seen"] < pilot["config"]["images_per_run"]

    def measured(row):  # every checkpoint's numbers but its wall-clock seconds
        return [{k: v for k, v in p.items() if k != "seconds"} for p in row["points"]]

    def design(row):  # what the design fixes at each checkpoint, whatever the machine
        return [(p["images_seen"], p["train_flops"]) for p in row["points"]]

    both = [r for r in full["rows"] if r["key"] in by_key and not r.get("reused_from")]
    whole = [r for r in both if not r.get("parts")]
    assert whole and all(measured(r) == measured(by_key[r["key"]]) for r in whole)
    for row in both:
        made = by_key[row["key"]]
        assert design(row)[:len(made["points"])] == design(made)

"""The headline study's verdicts (vitlib.experiments.scaling_curves): each rule driven to each of its outcomes by
synthetic rows, and the renderer on the pilot's real rows."""

import json

import numpy as np

from vitlib.experiments import scaling_curves as sc
from vitlib.records import FIGURES_DIR
from vitlib.stats import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, UNDECIDED

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
    yes = sc.locality_verdict(_distance_rows(lambda n, s: local if n == 100000 else uniform,
                                             lambda n, s: 13.0 + s, cutmix=uniform), CFG)["verdicts"]
    assert yes == {"lower layers get local heads with enough data": REPRODUCED, "distance grows with depth": REPRODUCED,
                   "CutMix changes layer 1's distance": REPRODUCED}
    no = sc.locality_verdict(_distance_rows(lambda n, s: uniform, lambda n, s: 5.0 + s, cutmix=uniform), CFG)
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

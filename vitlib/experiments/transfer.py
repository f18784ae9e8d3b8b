"""Study `transfer`: fine-tuning the shipped model against training from scratch (Section 3.2, Section 4.1).

Reproduces, in miniature: "we pre-train ViT on large datasets, and fine-tune to (smaller) downstream tasks"
(Section 3.2) against the same architecture trained from scratch with the same budget; the resolution
ablation of Section 3.2 (fine-tuning at a higher resolution than pre-training, E_pos 2D-interpolated);
and the closed-form linear few-shot accuracy of frozen features (Section 4.1, Fig. 4's metric) of the
pre-trained model against a randomly initialised one.

Design (full profile):
- models: the shipped ViT-Ti/4 (L=6, pre-trained on 320,000 images of 100 FractalDB-style categories at 32 px;
  vitlib.finetune.load_pretrained("")) with a new zero head (Section 3.2), against the same architecture
  freshly initialised ("scratch"), both fine-tuned with Appendix B.1.1's recipe (SGD 0.9, clip 1, cosine,
  no weight decay; vitlib.train.finetune_recipe) at the pre-training resolution, 32 px;
- data: fashion_mnist and mnist5k, training subsets of 500, 2,000 and 10,000 images (mnist5k has 3,600
  training images after its validation split: the 10,000 row is capped, and the row records the size used),
  a fixed test subset of 2,000 images (mnist5k: its 1,000), evaluated once at the end;
- budget: 12,800 images seen per run (200 steps of 64), the same for both arms and every size. Why: at
  500 images that is 25 epochs, enough for the scratch arm to converge on these 10-class sets (a
  from-scratch ViT-Ti/4 reached ~47% on Fashion-MNIST in 27,500 images with augmentation and 75% in
  38,300 without, so shorter schedules would compare a converged fine-tune with an unconverged scratch
  arm only at the small sizes); at 10,000 images it is 1.3 epochs, where pre-training should matter most;
  batch 64 keeps 200 updates at that budget;
- seeds 0, 1, 2: each seed draws its own training subset, data order and (scratch) initialisation;
- resolution ablation: fashion_mnist, 2,000 images, fine-tuned at 48 px (E_pos interpolated from 8x8 to
  12x12, Section 3.2), both arms, the same seeds; compare with the 32 px rows;
- few-shot probe: 1, 5, 10 and 25 shots per class from a pool of 10,000 training images (stratified), the
  test subset above, l2 = 2^10 (big_vision), pre-trained vs random init, 3 sampling seeds.
Convergence check (added on 2026-11-30, after the first full run was seen): the design above assumed 12,800
images (25 epochs at 500 images) let the scratch arm converge at the smallest size. The first run does not
bear that out: scratch reached about the same accuracy at 500, 2,000 and 10,000 images, with its training
loss still near 1.1 at 500 images, so that arm is limited by the budget, not by the data. The first run's rows
stay as they are; added: the scratch arm at the smallest size trained `scratch_long_factor` = 4 x as long
(51,200 images, 100 epochs of 500) on fashion_mnist, 3 seeds, compared with the pre-trained model at 1x.
If pre-training still wins, it pays against a scratch arm given 4x the compute; if scratch catches up, the
1x comparison measured speed of learning, not the end point.
Accuracies carry a 95% Wilson interval (vitlib.stats.wilson_interval) on the pooled test predictions.
`summary(rows)` averages the seeds (what vitlib.plots.transfer_figure draws and RESULTS.md tabulates) and
`verdict(summary, cfg)` answers "does pre-training pay here?" part by part, from the intervals, saying which
parts have not run yet.

Budget in images seen: full 537,600 fine-tuning images (42 runs of 12,800) + 153,600 for the convergence
check (3 runs of 51,200) plus feature extraction
(estimated, not measured: about two hours on a quiet 2-core CPU in fp32); smoke a few hundred (under a
minute); gpu 5 seeds, 51,200 images per run.

Expected: pre-training helps most at the small sizes and on fashion_mnist; the gap shrinks with size.

Command: `python -m vitlib experiment transfer --profile full` (continues from figures/transfer.json;
`--limit N` runs N more rows and stops). RESULTS.md renders the table (`render`).

Deviations from the paper: the scale (thousands of images, batch 64 instead of 512, 200 steps), the data
(fractals, not JFT; grey 28x28 images resized to 32 and 48 px).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch

from ..data import get_dataset, sample_per_class, subset
from ..fewshot import extract_features, few_shot_accuracy
from ..finetune import load_pretrained, prepare_finetune
from ..flops import count_parameters
from ..markdown import VERSUS, acc_ci, runs_line, table
from ..model import VisionTransformer
from ..stats import compare, seed_mean, wilson_interval
from ..train import resolve_device
from .protocol import finetune_run, fixed_test_set, vit_name
from .runner import StudyConfig, param, profile_sections, scheduled_images

__all__ = ["NAME", "Config", "PROFILES", "Row", "expand", "run_row", "planned_images", "summary", "verdict",
           "config_from_results", "answer", "render", "claims", "RESULTS"]

NAME = "transfer"


@dataclass(frozen=True)
class Config(StudyConfig):
    """The transfer study's knobs (one instance per profile in PROFILES; the CLI's flags)."""

    checkpoint: str = param("", "the pre-trained model: '' for the shipped one, or a vitlib/.npz/timm checkpoint")
    datasets: tuple[str, ...] = param(("fashion_mnist", "mnist5k"), "downstream datasets (vitlib.data names)")
    sizes: tuple[int, ...] = param((500, 2000, 10000), "training-set sizes (capped at the split's size)")
    seeds: tuple[int, ...] = param((0, 1, 2), "seeds: training subset, data order, scratch init, few-shot sample")
    images_per_run: int = param(12800, "fine-tuning budget of every run, in images seen")
    batch_size: int = param(64, "fine-tuning batch size")
    n_test: int = param(2000, "test images (a fixed subset, the same for every run; capped at the split)")
    ablation_resolution: int = param(48, "the Section 3.2 ablation's fine-tuning resolution (0: no ablation)")
    ablation_dataset: str = param("fashion_mnist", "the ablation's dataset")
    ablation_size: int = param(2000, "the ablation's training-set size")
    shots: tuple[int, ...] = param((1, 5, 10, 25), "few-shot probe: images per class (empty: no probe)",
                                  may_be_empty=True)
    fewshot_pool: int = param(10000, "few-shot probe: training images the shots are drawn from (stratified)")
    scratch_long: tuple[str, ...] = param(("fashion_mnist",), "convergence check: datasets where the scratch arm "
                                          "at the smallest size also trains scratch_long_factor x the budget")
    scratch_long_factor: int = param(4, "convergence check: how many times the budget (0: no check)")


PROFILES: dict[str, Config] = {
    "smoke": Config(datasets=("mnist5k",), sizes=(48,), seeds=(0,), images_per_run=16, batch_size=8, n_test=32,
                    ablation_size=48, shots=(1, 2), fewshot_pool=60, scratch_long=("mnist5k",)),
    "full": Config(),
    "gpu": Config(sizes=(500, 2000, 10000, 50000), seeds=(0, 1, 2, 3, 4), images_per_run=51200, batch_size=256,
                  n_test=10000, fewshot_pool=50000, precision="bf16"),
}


class Row(TypedDict, total=False):
    """What a row of figures/transfer*.json holds: the run's spec, then what it measured."""

    key: str  # unique: "finetune/ARM/DATASET/nSIZE/rRES/sSEED", "fewshot/ARM/DATASET/sSEED", "finetune-long/..."
    kind: str  # "finetune", "fewshot" or "finetune-long" (the convergence check)
    arm: str  # "pre-trained" or "scratch" (fine-tuning); "pre-trained" or "random" (few-shot)
    dataset: str  # the downstream dataset (vitlib.data name)
    size: int  # training images asked (n_train: used, capped at the split)
    seed: int
    resolution: int | None  # the fine-tuning resolution of Section 3.2's ablation; None: the pre-training one
    budget_factor: int  # finetune-long: the budget's multiple
    img_size: int  # measured: the resolution the run fine-tuned at
    model: str
    parameters: int
    n_train: int
    images_seen: int
    train_flops: int
    metrics: dict[str, Any]


def expand(cfg: Config) -> list[dict[str, Any]]:
    """The runs: few-shot rows (cheap) first, then the fine-tuning rows seed by seed, so that a study cut short
    still has every comparison at its first seed."""
    rows = [dict(key=f"fewshot/{init}/{ds}/s{seed}", kind="fewshot", arm=init, dataset=ds, size=cfg.fewshot_pool,
                 seed=seed, resolution=None)
            for seed in cfg.seeds for ds in cfg.datasets for init in ("pre-trained", "random")] if cfg.shots else []
    for seed in cfg.seeds:
        grid = [(ds, n, None) for ds in cfg.datasets for n in cfg.sizes]
        if cfg.ablation_resolution:
            grid.append((cfg.ablation_dataset, cfg.ablation_size, cfg.ablation_resolution))
        for ds, n, res in grid:
            for arm in ("pre-trained", "scratch"):
                tag = f"r{res}" if res else "rpre"
                rows.append(dict(key=f"finetune/{arm}/{ds}/n{n}/{tag}/s{seed}", kind="finetune", arm=arm, dataset=ds,
                                 size=n, seed=seed, resolution=res))
    if cfg.scratch_long_factor:  # added after the first full run: see the module docstring, "Convergence check"
        n, f = min(cfg.sizes), cfg.scratch_long_factor
        rows += [dict(key=f"finetune-long/scratch/{ds}/n{n}/x{f}/s{seed}", kind="finetune-long", arm="scratch",
                      dataset=ds, size=n, seed=seed, resolution=None, budget_factor=f)
                 for seed in cfg.seeds for ds in cfg.scratch_long]
    return rows


def planned_images(cfg: Config, spec: dict[str, Any]) -> int:
    """Training images a row will see (few-shot rows train nothing)."""
    budget = scheduled_images(cfg.images_per_run, cfg.batch_size)
    return {"finetune": budget, "finetune-long": budget * spec.get("budget_factor", 1)}.get(spec["kind"], 0)


def _pretrained(cfg: Config, cache: dict) -> VisionTransformer:
    if ("pretrained", cfg.checkpoint) not in cache:
        cache[("pretrained", cfg.checkpoint)] = load_pretrained(cfg.checkpoint)
    return cache[("pretrained", cfg.checkpoint)]


def _finetune_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    pretrained = _pretrained(cfg, cache)
    res = spec["resolution"] or pretrained.cfg.image_hw[0]
    C, seed = pretrained.cfg.in_chans, spec["seed"]
    train_full = get_dataset(spec["dataset"], "train", res, in_chans=C)
    n_train = min(spec["size"], len(train_full))
    train_set = subset(train_full, n_train, seed=seed)
    test_set = fixed_test_set(spec["dataset"], res, C, cfg.n_test)
    K = train_full.num_classes
    torch.manual_seed(seed)
    if spec["arm"] == "pre-trained":
        model = prepare_finetune(pretrained, num_classes=K, img_size=res)  # zero head, E_pos interpolated
    else:
        model = VisionTransformer(dataclasses.replace(pretrained.cfg, img_size=res, num_classes=K,
                                                      representation_size=None))
    run = finetune_run(model, train_set, test_set, images_per_run=cfg.images_per_run * spec.get("budget_factor", 1),
                       batch_size=cfg.batch_size, seed=seed, precision=cfg.precision)
    return dict(model=vit_name(model), parameters=count_parameters(model), n_train=n_train, img_size=res, **run)


def _features(model, ds: str, res: int, C: int, pool: int, n_test: int, seed: int):
    train = get_dataset(ds, "train", res, in_chans=C, augment=False)
    per_class = max(pool // train.num_classes, 1)
    idx = np.concatenate(list(sample_per_class(train.targets, per_class, seed).values()))
    ftr, ltr = extract_features(model, torch.utils.data.Subset(train, idx.tolist()))
    fte, lte = extract_features(model, fixed_test_set(ds, res, C, n_test))
    return ftr, ltr, fte, lte


def _fewshot_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    pretrained = _pretrained(cfg, cache)
    res, C, seed, ds = pretrained.cfg.image_hw[0], pretrained.cfg.in_chans, spec["seed"], spec["dataset"]
    K = get_dataset(ds, "test", res, in_chans=C).num_classes
    if spec["arm"] == "pre-trained":
        model = prepare_finetune(pretrained, num_classes=K).to(resolve_device("auto"))
        key = ("features", cfg.checkpoint, ds)  # the pre-trained features do not depend on the seed: the pool is 0's
        if key not in cache:
            cache[key] = _features(model, ds, res, C, cfg.fewshot_pool, cfg.n_test, 0)
        feats = cache[key]
    else:
        torch.manual_seed(seed)
        model = VisionTransformer(dataclasses.replace(pretrained.cfg, num_classes=K, representation_size=None))
        feats = _features(model.to(resolve_device("auto")), ds, res, C, cfg.fewshot_pool, cfg.n_test, 0)
    ftr, ltr, fte, lte = feats
    n_test = len(lte)
    metrics: dict[str, Any] = dict(test_n=n_test, pool=len(ltr))
    for s in cfg.shots:
        acc = few_shot_accuracy(ftr, ltr, fte, lte, shots=s, seed=seed, num_classes=K)
        correct = int(round(acc * n_test))
        metrics[f"{s}shot"] = acc
        metrics[f"{s}shot_ci95"] = list(wilson_interval(correct, n_test))
    return dict(model=vit_name(model), parameters=count_parameters(model), n_train=len(ltr), img_size=res,
                images_seen=0, train_flops=0, metrics=metrics)


def run_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    """One run of the study: a fine-tuning arm or a few-shot probe."""
    return _fewshot_row(cfg, spec, cache) if spec["kind"] == "fewshot" else _finetune_row(cfg, spec, cache)


# --- what the rows say --------------------------------------------------------------------------------------------


def _point(runs: list[dict[str, Any]], metric: str, **where: Any) -> dict[str, Any]:
    s = seed_mean(runs, metric, "test_n")
    return dict(where, mean=s["mean"], lo=s["ci95"][0], hi=s["ci95"][1], low=s["low"], high=s["high"],
                seeds=s["seeds"], n=s["n"], ci95=s["ci95"], values=s["values"])


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows of this study averaged over seeds (vitlib.stats.seed_mean: the mean, its 95% Wilson interval
    at the test-set size, the lowest and highest seed), in the shape vitlib.plots.transfer_figure draws:

        "finetune": {dataset: {arm: [{"size": asked, "n_train": used, "mean", "lo", "hi", ...} by size]}}
                    at the pre-training resolution; arm "pre-trained" or "scratch"
        "ablation": {"DATASET/nSIZE": {arm: [{"dataset", "size", "resolution", "mean", "lo", "hi", ...} by
                    resolution]}}: Section 3.2's ablation rows and the rows at the pre-training resolution they
                    compare with
        "fewshot":  {dataset: {arm: [{"shots", "mean", "lo", "hi", ...} by shots]}}; arm "pre-trained" or "random"
        "long":     {"DATASET/nSIZE": {"dataset", "size", "factor", "scratch_long", "scratch", "pre_trained"}}: the
                    convergence check (scratch at factor x the budget) beside both arms at 1x

    A part with no rows is empty. The summary is JSON-ready (string keys)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("kind") == "finetune":
            tag = "rpre" if r["resolution"] is None else f"r{r['resolution']}"
            groups.setdefault(("finetune", r["dataset"], r["size"], tag, r["arm"]), []).append(r)
        elif r.get("kind") == "fewshot":
            groups.setdefault(("fewshot", r["dataset"], r["arm"]), []).append(r)
        elif r.get("kind") == "finetune-long":
            groups.setdefault(("long", r["dataset"], r["size"], r["budget_factor"]), []).append(r)
    out: dict[str, Any] = {"finetune": {}, "ablation": {}, "fewshot": {}, "long": {}}
    for key in sorted((k for k in groups if k[0] == "finetune" and k[3] == "rpre"), key=lambda k: k[2]):
        _, dataset, size, _, arm = key  # by size, at the pre-training resolution
        runs = groups[key]
        out["finetune"].setdefault(dataset, {}).setdefault(arm, []).append(
            _point(runs, "test_accuracy", size=size, n_train=runs[0]["n_train"], resolution=runs[0]["img_size"]))
    for key, runs in groups.items():  # the ablation: its rows, and the rows at the pre-training resolution
        if key[0] == "finetune" and key[3] != "rpre":
            _, dataset, size, _, arm = key
            base = groups.get(("finetune", dataset, size, "rpre", arm))
            arms = out["ablation"].setdefault(f"{dataset}/n{size}", {})
            arms[arm] = [_point(g, "test_accuracy", dataset=dataset, size=size, resolution=g[0]["img_size"])
                         for g in ([base] if base else []) + [runs]]
    for key in sorted(k for k in groups if k[0] == "fewshot"):
        _, dataset, arm = key
        runs = groups[key]
        shots = sorted(int(m[:-4]) for m in runs[0]["metrics"] if m.endswith("shot"))
        out["fewshot"].setdefault(dataset, {})[arm] = [_point(runs, f"{s}shot", shots=s) for s in shots]
    for key in (k for k in groups if k[0] == "long"):  # the convergence check: scratch at factor x the budget,
        _, dataset, size, factor = key  # beside both arms at 1x
        base = {arm: groups.get(("finetune", dataset, size, "rpre", arm)) for arm in ("pre-trained", "scratch")}
        out["long"][f"{dataset}/n{size}"] = dict(
            dataset=dataset, size=size, factor=factor, scratch_long=_point(groups[key], "test_accuracy"),
            **{arm.replace("-", "_"): _point(g, "test_accuracy") if g else None for arm, g in base.items()})
    return out


def config_from_results(config: dict[str, Any]) -> Config:
    """The Config a results file was made with (its "config": lists back to tuples)."""
    known = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in known})


def _judge(cells: list[tuple[str, dict | None, dict | None]], planned: int, seeds: int, what: str) -> dict[str, Any]:
    """The verdict on comparisons (label, a, b): is a above b beyond the 95% intervals (vitlib.stats.compare)?
    `planned`: the comparisons the design makes; `seeds`: the seeds each point should average. Missing
    comparisons and points with fewer seeds make the verdict one "so far"."""
    ran = [(label, compare(a, b), a, b) for label, a, b in cells if a is not None and b is not None]
    ahead = sum(c == 1 for _, c, _, _ in ran)
    behind = sum(c == -1 for _, c, _, _ in ran)
    short = sum(min(a["seeds"], b["seeds"]) < seeds for _, _, a, b in ran)
    complete = len(ran) == planned and not short
    if not ran:
        word = "not yet run"
    elif ahead == len(ran):
        word = "reproduced"
    elif ahead:
        word = "partly reproduced"
    elif behind:
        word = "not reproduced"
    else:
        word = "not shown (every difference within the intervals)"
    word += "" if complete or not ran else " so far"
    missing = [f"{planned - len(ran)} of {planned} comparisons not yet run"] if len(ran) < planned else []
    missing += [f"{short} with fewer than {seeds} seeds"] if short else []
    detail = "; ".join(f"{label}: {100 * a['mean']:.1f}% vs {100 * b['mean']:.1f}%, {VERSUS[c]}"
                       for label, c, a, b in ran)
    text = (f"{what} ahead in {ahead} of {len(ran)} comparisons" + (f" ({', '.join(missing)})" if missing else "")
            + (f": {detail}" if detail else "")) if ran else f"planned: {planned}, none run yet"
    return dict(verdict=word, ahead=ahead, behind=behind, ran=len(ran), planned=planned, complete=complete, text=text)


def _long_verdict(s: dict[str, Any], cfg: Config, n_seeds: int) -> dict[str, Any]:
    f = cfg.scratch_long_factor
    if not f or not cfg.scratch_long:
        return dict(verdict="not in this profile's design", text="no convergence check (scratch_long_factor 0)")
    n = min(cfg.sizes)
    checks = [s["long"].get(f"{ds}/n{n}") for ds in cfg.scratch_long]
    part = _judge([(f"{ds} {n:,}, pre-trained (1x) against scratch ({f}x)", c and c["pre_trained"],
                    c and c["scratch_long"]) for ds, c in zip(cfg.scratch_long, checks)], len(checks), n_seeds,
                  "pre-trained at 1x")
    moved = [f"{c['dataset']}: scratch {100 * c['scratch']['mean']:.1f}% at 1x, {100 * c['scratch_long']['mean']:.1f}% "
             f"at {f}x, {VERSUS[compare(c['scratch_long'], c['scratch'])]}" for c in checks
             if c is not None and c["scratch"] is not None]
    part["text"] += ("; the longer schedule against 1x: " + "; ".join(moved)) if moved else ""
    return part


def verdict(s: dict[str, Any], cfg: Config) -> dict[str, dict[str, Any]]:
    """"Does pre-training pay here?", part by part, from `summary(rows)` and the study's design `cfg`:

        "fine-tuning"       pre-trained above scratch beyond the 95% intervals, at each dataset and size
        "higher resolution" Section 3.2: the pre-trained model fine-tuned at cfg.ablation_resolution (E_pos
                            interpolated) above itself at the pre-training resolution
        "few-shot"          pre-trained features above random-init features, at each dataset and shot count
        "scratch, longer"   the convergence check: the pre-trained model (1x the budget) above scratch trained
                            cfg.scratch_long_factor x as long at the smallest size; its text also says whether
                            the longer schedule moved the scratch arm beyond the intervals (if not, 1x had
                            converged)
        "answer"            fine-tuning and few-shot together

    Each part: {"verdict": "reproduced" | "partly reproduced" | "not reproduced" | "not shown (...)" |
    "not yet run" | "not in this profile's design", "text": the comparisons with their numbers, ...}. A comparison
    whose rows are missing counts as not yet run, so a partial results file gives a partial answer."""
    ft = s["finetune"]

    def at(arms: dict, arm: str, field: str, value: Any) -> dict | None:
        return next((p for p in arms.get(arm, []) if p[field] == value), None)

    cells = [(f"{dataset} {n:,}", at(ft.get(dataset, {}), "pre-trained", "size", n),
              at(ft.get(dataset, {}), "scratch", "size", n)) for dataset in cfg.datasets for n in cfg.sizes]
    n_seeds = len(cfg.seeds)
    out = {"fine-tuning": _judge(cells, len(cells), n_seeds, "pre-trained")}
    few = s["fewshot"]
    cells = [(f"{dataset} {k}-shot", at(few.get(dataset, {}), "pre-trained", "shots", k),
              at(few.get(dataset, {}), "random", "shots", k)) for dataset in cfg.datasets for k in cfg.shots]
    out["few-shot"] = _judge(cells, len(cells), n_seeds, "pre-trained features") if cells else dict(
        verdict="not in this profile's design", text="no few-shot probe (shots is empty)")
    res, ds, size = cfg.ablation_resolution, cfg.ablation_dataset, cfg.ablation_size
    if not res or ds not in cfg.datasets or size not in cfg.sizes:
        out["higher resolution"] = dict(verdict="not in this profile's design", text=(
            "no ablation" if not res else f"no rows at the pre-training resolution for {ds} at {size:,} "
            "images to compare with"))
    else:
        arms = s["ablation"].get(f"{ds}/n{size}", {})
        pre = arms.get("pre-trained", [])
        high = next((p for p in pre if p["resolution"] == res), None)
        low = next((p for p in pre if p["resolution"] != res), None)
        part = _judge([(f"{ds} {size:,}, {res} px against the pre-training resolution", high, low)], 1, n_seeds,
                      f"pre-trained at {res} px")
        scratch = at(arms, "scratch", "resolution", res)
        if high is not None and scratch is not None:
            part["text"] += (f"; at {res} px against scratch: {100 * high['mean']:.1f}% vs "
                             f"{100 * scratch['mean']:.1f}%, {VERSUS[compare(high, scratch)]}")
        out["higher resolution"] = part
    out["scratch, longer"] = _long_verdict(s, cfg, n_seeds)
    both = [out["fine-tuning"], out["few-shot"]] if out["few-shot"].get("ran") is not None else [out["fine-tuning"]]
    ran, ahead, behind = (sum(p[k] for p in both) for k in ("ran", "ahead", "behind"))
    planned, complete = sum(p["planned"] for p in both), all(p["complete"] for p in both)
    answer = ("not yet run" if not ran else "yes" if ahead == ran else "partly" if ahead else
              "no: pre-training hurts" if behind else "not shown (every difference within the intervals)")
    answer += "" if complete or not ran else " so far"
    long = out["scratch, longer"]
    caveat = ""
    if ran and long.get("ran") and long["ahead"] < long["ran"]:  # scratch given more compute catches up somewhere
        answer += (f" at an equal fine-tuning budget; {'behind' if long['behind'] else 'level with'} scratch trained "
                   f"{cfg.scratch_long_factor}x as long at {min(cfg.sizes):,} images")
        caveat = (f" (the convergence check: pre-trained ahead of the longer scratch in {long['ahead']} of "
                  f"{long['ran']})")
    out["answer"] = dict(verdict=answer, ran=ran, planned=planned, ahead=ahead, behind=behind, complete=complete,
                         text=f"pre-trained ahead beyond the 95% intervals in {ahead} of {ran} comparisons run, "
                              f"of {planned} planned (fine-tuning and few-shot){caveat}")
    return out

# --- how it renders -------------------------------------------------------------------------------------------------


def _at(points: list[dict], field: str, value: Any) -> dict | None:
    """The point of a summary curve whose `field` is `value` (None when that run is missing)."""
    return next((q for q in points if q[field] == value), None)


def answer(r: dict) -> str:
    """"Does pre-training pay here?" from a transfer results file's results (vitlib.experiments.transfer.verdict):
    the answer, then one line per part with its comparisons; parts whose rows are missing say "not yet run"."""
    v = verdict(summary(r["rows"]), config_from_results(r["config"]))
    parts = {"fine-tuning": "fine-tuned, pre-trained against scratch (Section 3.2)",
             "few-shot": "linear few-shot, pre-trained against random-init features (Section 4.1)",
             "higher resolution": "fine-tuned at a higher resolution, E_pos interpolated (Section 3.2)",
             "scratch, longer": "convergence check: the pre-trained model against scratch trained longer"}
    return (f"**Does pre-training pay here? {v['answer']['verdict']}**: {v['answer']['text']}.\n\n"
            + "\n".join(f"- {label}: **{v[k]['verdict']}**; {v[k]['text']}." for k, label in parts.items()))


def render(r: dict, p: dict) -> str:
    """figures/transfer.json (vitlib.experiments.transfer): pre-trained vs scratch with intervals and a verdict."""
    c, rows = r["config"], r["rows"]
    s = summary(rows)
    words = {1: "pre-training helps", -1: "pre-training hurts", 0: "not told apart over seeds"}
    rows_ft = []
    for dataset, arms in s["finetune"].items():
        for size in sorted({q["size"] for points in arms.values() for q in points}):
            pre, scr = (_at(arms.get(a, []), "size", size) for a in ("pre-trained", "scratch"))
            n_train = (pre or scr)["n_train"]
            used = f"{n_train:,}" + (f" (of {size:,} asked: the split's size)" if n_train < size else "")
            rows_ft.append([f"`{dataset}`", used, acc_ci(pre), acc_ci(scr), words[compare(pre, scr)]])
    budget = scheduled_images(c["images_per_run"], c["batch_size"])
    text = (answer(r) + "\n\n"
            f"Fine-tuned test accuracy, the shipped model against the same architecture from scratch, "
            f"{budget:,} images seen per run (batch {c['batch_size']}), at the pre-training resolution. Mean over "
            "seeds, its 95% Wilson interval at the test-set size, and the lowest and highest seed.\n\n"
            + table(["dataset", "training images", "pre-trained", "from scratch", "verdict"], rows_ft))
    lines = []
    for arms in s["ablation"].values():
        dataset, size = next(iter(arms.values()))[0]["dataset"], next(iter(arms.values()))[0]["size"]
        for res in sorted({q["resolution"] for points in arms.values() for q in points}):
            pre, scr = (_at(arms.get(a, []), "resolution", res) for a in ("pre-trained", "scratch"))
            lines.append([f"`{dataset}`, {size:,}", f"{res} px" + ("" if res == c["ablation_resolution"] else
                                                                   " (pre-training)"),
                          acc_ci(pre), acc_ci(scr), words[compare(pre, scr)]])
    if lines:
        text += ("\n\nSection 3.2's resolution ablation (E_pos 2D-interpolated to the larger grid):\n\n"
                 + table(["dataset, images", "fine-tuned at", "pre-trained", "from scratch", "verdict"], lines))
    if s["fewshot"]:
        shots = sorted({q["shots"] for arms in s["fewshot"].values() for points in arms.values() for q in points})
        lines = [[f"`{dataset}`", arm] + [acc_ci(_at(points, "shots", k)) for k in shots]
                 for dataset, arms in s["fewshot"].items() for arm, points in arms.items()]
        text += ("\n\nLinear few-shot accuracy of the frozen features (Section 4.1's closed-form probe):\n\n"
                 + table(["dataset", "features"] + [f"{k}-shot" for k in shots], lines))
    return text + "\n\n" + runs_line(rows, r)


def claims(r: dict, stem: str) -> list[list[str]]:
    """The README's rows (claim, the paper, here, verdict, where to read more) from figures/STEM.json."""
    v = verdict(summary(r["rows"]), config_from_results(r["config"]))
    more = f"notebook 04, RESULTS.md (`{stem}`)"
    parts = (("fine-tuning", "Pre-trained and fine-tuned beats the same ViT from scratch (Section 3.2)",
              "ViT-B/16 from ImageNet-21k or JFT, far ahead"),
             ("few-shot", "Pre-trained features beat random ones in the linear few-shot probe (Section 4.1)",
              "Fig. 4's metric"),
             ("higher resolution", "Fine-tuning above the pre-training resolution helps (Section 3.2)",
              "384-512 px after 224 px"))
    return [[claim, paper, f"pre-trained ahead in {v[k]['ahead']} of {v[k]['ran']}" if v[k].get("ran")
             else v[k]["text"], v[k]["verdict"], more] for k, claim, paper in parts]


# results file -> (RESULTS.md section title, renderer; None: its scalars)
RESULTS = {
    "transfer": ("Does pre-training pay? Fine-tuning and few-shot transfer with intervals "
                 "(`python -m vitlib experiment transfer --profile full`)", render),
    "transfer_curves": ("The transfer study's figure: accuracy against size, shots and resolution (notebook 04)",
                        None),
    **profile_sections(NAME, "Does pre-training pay? Transfer", render, ("gpu",)),
    "transfer_curves_gpu": ("The transfer study's figure, the gpu profile (notebook 04)", None),
}

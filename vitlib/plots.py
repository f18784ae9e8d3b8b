"""Every figure of vitlib (plotly): these functions only draw; the numbers come from the other modules.

    patch_grid_figure, image_row_figure, heatmap_row_figure   notebooks 01-02: images as patches (Eq. 1)
    learning_curves                                           notebook 03: pre-training runs
    pos_embed_figure, transfer_figure                         notebook 04: fine-tuning (Section 3.2)
    plot_fig6, plot_fig7, plot_attention_distance,
    rollout_overlay, attention_explorer                       notebook 06: Section 4.5 (Fig. 6, Fig. 7)
    scaling_figure                                            notebook 05: Fig. 3/4 (data) and Fig. 5 (compute)
    run_curves_figure, locality_figure, headline_figure       notebook 05: the headline's runs, Fig. 7 right,
                                                              Fig. 3/4 and 5 with the lead and the fitted laws
    ablation_figure                                           notebook 08: Table 8 and Section 4.6 as bar charts
    time_to_accuracy_figure                                   notebook 04: a ViT on a CPU (beyond the paper)

Figures are saved with their results and provenance by `vitlib.records.save_figure`.
Figure text is plain (no LaTeX: MathJax would need the web).

Deviations from the paper: none (the layouts follow Fig. 6 and Fig. 7).
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots

from .analysis import grid_distances, query_attention
from .patches import mosaic, to_uint8

__all__ = ["patch_grid_figure", "image_row_figure", "heatmap_row_figure", "learning_curves", "pos_embed_figure",
           "transfer_figure", "attention_explorer", "plot_attention_distance", "plot_fig6",
           "plot_fig7", "rollout_overlay", "scaling_figure", "run_curves_figure", "locality_figure", "headline_figure",
           "ablation_figure", "time_to_accuracy_figure"]


# --- Notebooks 01-02 (Eq. 1: images as patches) -------------------------------------------------------------------


def patch_grid_figure(image, P: int, title: str | None = None):
    """An image (H, W, 3) uint8 with the lines of its P x P patch grid drawn over it (plotly Figure)."""
    H, W = image.shape[:2]
    fig = px.imshow(image, title=title or f"P = {P}: N = HW / P^2 = {H * W // P**2} patches", binary_format="jpg")
    line = dict(color="white", width=1)
    for x in range(0, W + 1, P):
        fig.add_shape(type="line", x0=x - 0.5, x1=x - 0.5, y0=-0.5, y1=H - 0.5, line=line)
    for y in range(0, H + 1, P):
        fig.add_shape(type="line", x0=-0.5, x1=W - 0.5, y0=y - 0.5, y1=y - 0.5, line=line)
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    return fig.update_layout(width=420, height=440, margin=dict(l=10, r=10, t=40, b=10))


def image_row_figure(images: dict, height: int = 320):
    """Images (H, W, 3) uint8 of one size side by side, titled by their keys (plotly Figure, JPEG-encoded)."""
    fig = px.imshow(np.stack(list(images.values())), facet_col=0, binary_string=True, binary_format="jpg")
    for annotation, name in zip(fig.layout.annotations, images):
        annotation.text = name
    fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    return fig.update_layout(height=height, width=300 * len(images) + 40, margin=dict(l=10, r=10, t=40, b=10))


def heatmap_row_figure(maps: dict, title: str | None = None, height: int = 320):
    """2D arrays side by side as heatmaps on one shared colour scale, titled by their keys (plotly Figure)."""
    lim = max(float(np.abs(np.asarray(m)).max()) for m in maps.values())
    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=list(maps))
    for i, m in enumerate(maps.values(), start=1):
        fig.add_trace(go.Heatmap(z=np.asarray(m), zmin=-lim, zmax=lim, colorscale="RdBu", showscale=i == len(maps)),
                      row=1, col=i)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_layout(title=title, height=height, width=300 * len(maps) + 80)
    return fig.update_layout(margin=dict(l=10, r=10, t=60, b=10))


# --- Notebook 03: pre-training ------------------------------------------------------------------------------------


def learning_curves(histories: dict[str, dict[str, list[dict]]]):
    """Plotly figure: training loss and accuracy (lines) and validation (markers) against step, one colour per
    run (e.g. {"ViT-Ti/4": history, "BiT-R26x1": history})."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for i, (name, h) in enumerate(histories.items()):
        c = colours[i % len(colours)]
        for col, key in ((1, "loss"), (2, "accuracy")):
            fig.add_scatter(x=[r["step"] for r in h["train"]], y=[r[key] for r in h["train"]], mode="lines",
                            line=dict(color=c), name=f"{name} train", legendgroup=name, showlegend=col == 1,
                            row=1, col=col)
            fig.add_scatter(x=[r["step"] for r in h["val"]], y=[r[key] for r in h["val"]], mode="markers",
                            marker=dict(color=c, size=10, symbol="diamond"), name=f"{name} val", legendgroup=name,
                            showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text="step")
    fig.update_layout(width=900, height=380, template="plotly_white", title="Pre-training on FractalDB (32x32)")
    return fig


# --- Notebook 04: fine-tuning (Section 3.2) -----------------------------------------------------------------------


def pos_embed_figure(grids: dict, channels: tuple[int, ...] = (0, 1, 2, 3), title: str = ""):
    """Channels of position embeddings on their patch grids, one row per grid (e.g. {"before": (gh, gw, D),
    "after": (gh', gw', D)} from `analysis.position_embedding_grid`), on one shared colour axis."""
    fig = make_subplots(rows=len(grids), cols=len(channels), vertical_spacing=0.08,
                        subplot_titles=[f"{name}: d={c}, {g.shape[0]}x{g.shape[1]}" for name, g in grids.items()
                                        for c in channels])
    for row, g in enumerate(grids.values(), start=1):
        for col, c in enumerate(channels, start=1):
            fig.add_trace(go.Heatmap(z=g[:, :, c].detach().cpu().numpy(), coloraxis="coloraxis"), row=row, col=col)
    fig.update_yaxes(autorange="reversed")
    return fig.update_layout(title=title, height=225 * len(grids), coloraxis_colorscale="RdBu")


ARM_COLOURS = {"pre-trained": "#1f77b4", "scratch": "#d62728", "random": "#d62728"}  # pre-trained vs not, in 04


def _error_bars(points: list[dict]) -> dict:
    return dict(type="data", symmetric=False, array=[p["hi"] - p["mean"] for p in points],
                arrayminus=[p["mean"] - p["lo"] for p in points])


def transfer_figure(summary: dict, title: str = "", datasets: tuple[str, ...] | list[str] | None = None):
    """The transfer study (vitlib.experiments.transfer.summary): one panel per dataset with fine-tuned test
    accuracy against training-set size (log axis), pre-trained vs scratch; the linear few-shot accuracy against
    shots per class (log axis), pre-trained vs random-init features, one dash per dataset; Section 3.2's
    resolution ablation, accuracy per fine-tuning resolution for both arms. Error bars: 95% intervals of the
    mean over seeds. `datasets`: the study's (a panel each, also before their rows exist; default: those with
    rows). A part without rows is an empty panel that says so. The convergence check (summary["long"]: scratch
    trained longer at one size) is an open diamond in its dataset's panel."""
    ft, few, abl = summary["finetune"], summary["fewshot"], summary["ablation"]
    panels = list(datasets or ft) or ["fine-tuning"]
    titles = [f"fine-tuned on {c}" + ("" if c in ft else ": not yet run") for c in panels]
    titles += ["linear few-shot" if few else "few-shot: not yet run",
               "resolution ablation" if abl else "resolution ablation: not yet run"]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.06)
    shown = set()

    def add(points, x, name, arm, col, dash="solid", text=None):
        fig.add_trace(go.Scatter(x=x, y=[p["mean"] for p in points], error_y=_error_bars(points), name=name,
                                 legendgroup=name, showlegend=name not in shown, mode="lines+markers",
                                 line=dict(color=ARM_COLOURS.get(arm, "#2ca02c"), dash=dash), marker=dict(size=8),
                                 text=text, hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>"), row=1, col=col)
        shown.add(name)

    for col, dataset in enumerate(panels, start=1):
        for arm, points in ft.get(dataset, {}).items():
            add(points, [p["n_train"] for p in points], f"fine-tuned: {arm}", arm, col)
        for check in summary.get("long", {}).values():  # the convergence check: scratch trained longer
            if check["dataset"] == dataset and ft.get(dataset, {}).get("scratch"):
                n = next((p["n_train"] for p in ft[dataset]["scratch"] if p.get("size") == check["size"]),
                         check["size"])
                add([check["scratch_long"]], [n], f"scratch, {check['factor']}x the budget", "scratch", col, "dot")
                fig.data[-1].update(mode="markers", marker=dict(symbol="diamond-open", size=11))
        fig.update_xaxes(type="log", title_text="training images", row=1, col=col)
    col = len(panels) + 1
    dashes = ["solid", "dash", "dot", "dashdot"]
    for i, (dataset, arms) in enumerate(few.items()):
        for arm, points in arms.items():
            add(points, [p["shots"] for p in points], f"few-shot {dataset}: {arm}", arm, col, dashes[i % len(dashes)])
    fig.update_xaxes(type="log", title_text="shots per class", row=1, col=col)
    col += 1
    for arms in abl.values():
        for arm, points in arms.items():
            add(points, [f"{p['resolution']} px" for p in points], f"fine-tuned: {arm}", arm, col)
            label = f"resolution ({points[0]['dataset']}, {points[0]['size']:,} images)"
        fig.update_xaxes(type="category", title_text=label, row=1, col=col)
    fig.update_yaxes(title_text="test accuracy", tickformat=".0%", row=1, col=1)
    for c in range(2, len(titles) + 1):
        fig.update_yaxes(tickformat=".0%", row=1, col=c)
    return fig.update_layout(title=title, height=430, width=330 * len(titles) + 120, template="plotly_white")


# --- Notebook 05: Fig. 3, 4 and 5 (numbers from vitlib.experiments.scaling.curves) ------------------------------


def scaling_figure(curves: dict, x: str = "size", metric_name: str = "5-shot linear accuracy", title: str = "",
                   untrained: dict | None = None):
    """Transfer accuracy per model, one panel per pre-training corpus. `curves`: {corpus: {model: [{"size",
    "flops", "mean", "lo", "hi"}, ...] sorted by size}} (vitlib.experiments.scaling.curves).
    x="size": against pre-training set size (Fig. 3/4); x="flops": against total pre-training FLOPs at each
    model's largest set (Fig. 5). Error bars: the 95% intervals; both axes of x logarithmic. `untrained`:
    {corpus: {model: {"mean", ...}}} (vitlib.experiments.scaling.untrained), each model's level before
    pre-training, drawn as a thin dotted line of its colour across the panel."""
    if x not in ("size", "flops"):
        raise ValueError(f"x must be 'size' (Fig. 3/4) or 'flops' (Fig. 5), got {x!r}")
    corpora = list(curves)
    fig = make_subplots(rows=1, cols=max(len(corpora), 1), subplot_titles=[f"pre-trained on {c}" for c in corpora])
    models = list(dict.fromkeys(m for c in corpora for m in curves[c]))
    colours = {m: px.colors.qualitative.Plotly[i % 10] for i, m in enumerate(models)}
    for col, corpus in enumerate(corpora, start=1):
        for model, points in curves[corpus].items():
            pts = points if x == "size" else points[-1:]
            dash = "dash" if model.startswith("BiT") else "dashdot" if "+" in model else "solid"  # ResNet, hybrid, ViT
            fig.add_trace(go.Scatter(
                x=[p[x] for p in pts], y=[p["mean"] for p in pts], name=model, legendgroup=model,
                showlegend=col == 1, mode="lines+markers", marker=dict(color=colours[model], size=9),
                line=dict(color=colours[model], dash=dash),
                error_y=dict(type="data", symmetric=False, array=[p["hi"] - p["mean"] for p in pts],
                             arrayminus=[p["mean"] - p["lo"] for p in pts])), row=1, col=col)
        xs = [p[x] for points in curves[corpus].values() for p in (points if x == "size" else points[-1:])]
        for model, level in ((untrained or {}).get(corpus, {}).items() if xs else ()):
            fig.add_trace(go.Scatter(
                x=[min(xs), max(xs)], y=[level["mean"]] * 2, name=f"{model}, untrained", legendgroup=model,
                showlegend=False, mode="lines", line=dict(color=colours.get(model, "grey"), dash="dot", width=1),
                hovertemplate=f"{model}, untrained: %{{y:.3f}}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(type="log", title_text="pre-training images" if x == "size" else "pre-training FLOPs",
                         row=1, col=col)
    if any((untrained or {}).get(c) for c in corpora):  # one legend entry for the dotted lines
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="untrained (dotted, model's colour)",
                                 line=dict(color="grey", dash="dot", width=1)), row=1, col=1)
    fig.update_yaxes(title_text=metric_name, row=1, col=1)
    return fig.update_layout(title=title, height=520, legend=dict(orientation="h", y=-0.22))


# --- Notebook 08: the ablations (numbers from vitlib.stats.arm_means) ---------------------------------------------


_DASHES = ("dot", "dash", "solid", "longdash")


def run_curves_figure(rows: list[dict], metric: str = "10shot", title: str = ""):
    """Plotly figure: held-out pre-training accuracy and `metric` against images seen (log axis) at every
    checkpoint of each run (rows of vitlib.experiments.scaling_curves), one colour per model, one dash per
    corpus size, the seeds as separate lines."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("held-out pre-training accuracy", f"{metric} probe"))
    models = sorted({r["model"] + ("+CutMix" if r.get("cutmix") else "") for r in rows})
    sizes, first_seed = sorted({r["size"] for r in rows}), min(r["seed"] for r in rows)
    for r in rows:
        model = r["model"] + ("+CutMix" if r.get("cutmix") else "")
        colour = px.colors.qualitative.D3[models.index(model) % 10]
        name = f"{model}, {r['size']:,} fractals"
        x = [p["images_seen"] for p in r["points"]]
        for col, key in ((1, "val_accuracy"), (2, metric)):
            fig.add_scatter(x=x, y=[p[key] for p in r["points"]], mode="lines+markers", name=name, legendgroup=name,
                            line=dict(color=colour, dash=_DASHES[sizes.index(r["size"]) % len(_DASHES)]),
                            showlegend=col == 1 and r["seed"] == first_seed, row=1, col=col)
    fig.update_xaxes(type="log", title_text="images seen")
    fig.update_layout(width=950, height=400, template="plotly_white", title=title)
    return fig


def headline_figure(data: dict, title: str = ""):
    """Plotly figure of the headline's verdicts in three panels, numbers from
    vitlib.experiments.scaling_curves.figure_data: Fig. 3/4, each model's few-shot accuracy at its runs' best
    checkpoints against the corpus size (a seed a small dot; the mean with its 95% interval over seeds); the
    ResNet's lead over the ViT by size (a seed a dot) with its fitted line, dotted where it is carried on to the
    extrapolated crossover; Fig. 5, the accuracy at every checkpoint of the runs on the largest set against training
    FLOPs (a run a line) with each model's fitted power law, dashed."""
    shots = data["metric"].removesuffix("shot") + "-shot"
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        f"Fig. 3/4: {shots}, best checkpoint", "ResNet minus ViT (points)",
        f"Fig. 5: {shots}, {data['size']:,} fractals"), horizontal_spacing=0.08)
    colours = {m: px.colors.qualitative.D3[i % 10] for i, m in enumerate(sorted(data["transfer"]))}
    for model, points in data["transfer"].items():
        sizes = [p["size"] for p in points]
        seeds = [(p["size"], 100 * v) for p in points for v in p["values"]]
        fig.add_scatter(x=[x for x, _ in seeds], y=[y for _, y in seeds], mode="markers", showlegend=False,
                        marker=dict(color=colours[model], size=5, opacity=0.5), name=f"{model}, a seed",
                        legendgroup=model, row=1, col=1)
        high = [0 if p["ci95"] is None else 100 * (p["ci95"][1] - p["mean"]) for p in points]
        fig.add_scatter(x=sizes, y=[100 * p["mean"] for p in points], mode="lines+markers", name=model,
                        legendgroup=model, line=dict(color=colours[model]), marker=dict(size=9),
                        error_y=dict(type="data", array=high), row=1, col=1)
    for size, values in data["lead"].items():
        fig.add_scatter(x=[size] * len(values), y=[100 * v for v in values], mode="markers", showlegend=False,
                        marker=dict(color="black", size=7), name=f"lead at {size:,}", row=1, col=2)
    if data["line"] is not None:
        n = sum(x <= max(data["lead"]) * (1 + 1e-9) for x in data["line_sizes"])  # within the measured sizes
        for part, dash in ((slice(0, n), "solid"), (slice(n - 1, None), "dot")):
            if len(data["line_sizes"][part]) > 1:
                fig.add_scatter(x=data["line_sizes"][part], y=[100 * v for v in data["line"][part]], mode="lines",
                                line=dict(color="black", dash=dash), showlegend=False, name="fitted lead",
                                row=1, col=2)
        fig.add_hline(y=0, line=dict(color="grey", width=1), row=1, col=2)
    for model, c in data["compute"].items():
        for run in c["runs"]:
            fig.add_scatter(x=run["flops"], y=[100 * a for a in run["accuracy"]], mode="lines+markers",
                            line=dict(color=colours[model], width=1), marker=dict(size=4),
                            name=f"{model}, seed {run['seed']}", legendgroup=model, showlegend=False, row=1, col=3)
        if c["law"] is not None:
            fig.add_scatter(x=c["law"]["flops"], y=[100 * a for a in c["law"]["accuracy"]], mode="lines",
                            line=dict(color=colours[model], dash="dash", width=3),
                            name=f"{model}, fitted law", legendgroup=model, row=1, col=3)
    for col, x_title in enumerate(("distinct fractals", "distinct fractals", "training FLOPs"), start=1):
        fig.update_xaxes(type="log", title_text=x_title, col=col)
        fig.update_yaxes(title_text=None if col == 2 else f"{shots} accuracy (%)", col=col)  # 2: panel title
    fig.update_annotations(font_size=13)  # the panels' titles
    fig.update_layout(width=950, height=440, template="plotly_white", title=title,
                      legend=dict(orientation="h", y=-0.25))
    return fig


def locality_figure(rows: list[dict], title: str = "", uniform: float | None = None):
    """Plotly figure (Fig. 7 right along training): each layer's mean attention distance, averaged over its
    heads, against images seen for the ViT runs (rows whose checkpoints carry `attention_distance`, (layers,
    heads)); one colour per layer, one panel per corpus size, CutMix runs dashed. `uniform`: the distance of
    uniform attention on the grid (pixels), drawn as a dotted line (an untrained ViT sits near it)."""
    vits = [r for r in rows if r["points"] and r["points"][0].get("attention_distance") is not None]
    sizes, first_seed = sorted({r["size"] for r in vits}), min((r["seed"] for r in vits), default=0)
    fig = make_subplots(rows=1, cols=max(len(sizes), 1), shared_yaxes=True,
                        subplot_titles=[f"{n:,} fractals" for n in sizes])
    for r in vits:
        d = np.array([p["attention_distance"] for p in r["points"]])  # (checkpoints, layers, heads)
        x = [p["images_seen"] for p in r["points"]]
        for layer in range(d.shape[1]):
            name = f"layer {layer + 1}" + (" + CutMix" if r.get("cutmix") else "")
            fig.add_scatter(x=x, y=d[:, layer].mean(-1), mode="lines", name=name, legendgroup=name,
                            line=dict(color=px.colors.sequential.Viridis[layer * 9 // max(d.shape[1] - 1, 1)],
                                      dash="dash" if r.get("cutmix") else "solid"),
                            showlegend=r["size"] == sizes[0] and r["seed"] == first_seed
                            or bool(r.get("cutmix")), row=1, col=sizes.index(r["size"]) + 1)
    if uniform is not None:
        fig.add_hline(y=uniform, line=dict(color="grey", dash="dot"), annotation_text="uniform attention",
                      annotation_position="top left", row="all", col="all")
    fig.update_xaxes(type="log", title_text="images seen")
    fig.update_yaxes(title_text="mean attention distance (pixels)", col=1)
    fig.update_layout(width=950, height=380, template="plotly_white", title=title)
    return fig


def ablation_figure(panels: dict, names: dict | None = None, title: str = "", y_title: str = "accuracy"):
    """Bar charts side by side, one panel per metric: `panels` {panel title: {arm: value}}, a value either a
    number (e.g. the paper's, drawn without an error bar) or a seed mean {"mean", "ci95", ...}
    (vitlib.stats.seed_mean: the bar, its 95% interval as the error bar and, with more than one seed, the
    lowest and highest seed as two diamonds on a dotted line: the seed-to-seed spread, which the interval at one
    run's test-set size leaves out). `names` renames the arms (e.g. vitlib.paper.TABLE8_NAMES); an arm keeps
    its colour in every panel."""
    names = names or {}
    arms = list(dict.fromkeys(a for bars in panels.values() for a in bars))
    colours = {a: px.colors.qualitative.Plotly[i % 10] for i, a in enumerate(arms)}
    fig = make_subplots(rows=1, cols=max(len(panels), 1), subplot_titles=list(panels), shared_yaxes=True)
    shown: set[str] = set()  # one legend entry per arm
    for col, bars in enumerate(panels.values(), start=1):
        for arm, v in bars.items():
            mean = v["mean"] if isinstance(v, dict) else float(v)
            error = (dict(type="data", symmetric=False, array=[v["ci95"][1] - mean], arrayminus=[mean - v["ci95"][0]])
                     if isinstance(v, dict) else None)
            fig.add_trace(go.Bar(x=[names.get(arm, arm)], y=[mean], name=names.get(arm, arm), legendgroup=arm,
                                 showlegend=arm not in shown, marker_color=colours[arm], error_y=error),
                          row=1, col=col)
            shown.add(arm)
            if isinstance(v, dict) and v.get("seeds", 1) > 1:
                fig.add_trace(go.Scatter(x=[names.get(arm, arm)] * 2, y=[v["low"], v["high"]], mode="lines+markers",
                                         marker=dict(symbol="diamond", size=7, color="black"),
                                         line=dict(color="black", width=1, dash="dot"), name="lowest and highest seed",
                                         legendgroup="seeds", showlegend="seeds" not in shown), row=1, col=col)
                shown.add("seeds")
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    return fig.update_layout(title=title, height=480, width=max(300 * len(panels), 500), bargap=0.25,
                             legend=dict(orientation="h", y=-0.3))  # below the panels: fits a notebook's width


def time_to_accuracy_figure(rows: list[dict], goal: tuple[float, float] | None = None,
                            targets: tuple[float, ...] = (), title: str = ""):
    """Plotly figure of benchmarks/time_to_accuracy.py's rows: test accuracy against minutes of training (the
    evaluations timed apart), one colour per arm, each seed its own line. Left, the arms that start from a model
    (rows without `ablation`); right, when there are any, the ablations beside the arm they change (its
    `ablation["of"]`, in black). Dotted lines at each target accuracy; `goal` (accuracy, seconds) marks its
    budget with a dashed vertical line. Runs on several kinds of CPU (their `cpu`) differ in line style, the kind
    in the legend: times compare on one kind only."""
    ablations = [r for r in rows if r.get("ablation")]
    panels = [[r for r in rows if not r.get("ablation")]]
    titles = ["ViT from scratch, from the shipped model, ResNet"]
    if ablations:
        baseline = {r["ablation"]["of"] for r in ablations}
        panels.append([r for r in rows if r["arm"] in baseline] + ablations)
        titles.append("the recipe's ablations (black: the recipe)")
    fig = make_subplots(rows=1, cols=len(panels), shared_yaxes=True, subplot_titles=titles)
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    cpus = list(dict.fromkeys(r.get("cpu", "") for r in rows))
    shown: set[str] = set()  # one legend entry per name
    for col, panel in enumerate(panels, start=1):
        for r in sorted(panel, key=lambda r: (arms.index(r["arm"]), r["seed"])):
            black = col == 2 and not r.get("ablation")  # the recipe itself, beside its ablations
            kind = cpus.index(r.get("cpu", ""))
            name = (f"{r['arm']} (the recipe)" if black else r["arm"]) + (f" · {cpus[kind]}" if len(cpus) > 1 else "")
            colour = "black" if black else px.colors.qualitative.D3[arms.index(r["arm"]) % 10]
            fig.add_scatter(x=[q["train_seconds"] / 60 for q in r["points"]],
                            y=[q["test_accuracy"] for q in r["points"]], mode="lines+markers", name=name,
                            legendgroup=name, marker=dict(size=4), showlegend=name not in shown,
                            line=dict(color=colour, width=1.5, dash=("solid", "dash", "dot", "dashdot")[kind % 4]),
                            hovertemplate=f"{r['arm']} seed {r['seed']}: %{{y:.1%}} after %{{x:.1f}} min"
                                          "<extra></extra>", row=1, col=col)
            shown.add(name)
        for t in targets:
            fig.add_hline(y=t, line=dict(color="grey", dash="dot", width=1), row=1, col=col)
        if goal is not None:
            fig.add_vline(x=goal[1] / 60, line=dict(color="grey", dash="dash", width=1), row=1, col=col)
    fig.update_xaxes(title_text="minutes of training")
    fig.update_yaxes(title_text="test accuracy", tickformat=".0%", col=1)
    # the legend below the x-axis titles, its rows (2-3 names a row) added to the height, the plots kept 300 px
    plot_px, axis_px, legend_px = 300, 70, 24 * -(-len(shown) // 2) + 10
    return fig.update_layout(width=1000 if len(panels) > 1 else 760, height=80 + plot_px + axis_px + legend_px,
                             margin=dict(t=80, b=axis_px + legend_px), template="plotly_white",
                             title=dict(text=title, font=dict(size=14)),
                             legend=dict(orientation="h", y=-axis_px / plot_px, yanchor="top"))


# --- Notebook 06: Section 4.5, "Inspecting the Vision Transformer" (numbers from vitlib.analysis) ----------------


def _filter_tiles(components):
    """PCA components (k, C, P, P) -> (k, P, P, 3) uint8, each stretched to its own min..max (as Fig. 7 left)."""
    tiles = []
    for c in components.detach().float().cpu():
        lo, hi = c.min().item(), c.max().item()
        tiles.append(to_uint8(c, (lo, max(hi, lo + 1e-12)), rgb=True))
    return np.stack(tiles)


def plot_fig7(components, pos_similarity, mean_distance, grid: tuple[int, int], patch_size: int,
              title: str = "", filter_cols: int = 7):
    """Fig. 7 in the paper's layout: embedding-filter principal components (left), position-embedding
    similarity (center), mean attention distance per head against depth (right).

    components: (k, C, P, P) from `analysis.embedding_filters_pca`; pos_similarity: (gh, gw, gh, gw)
    from `analysis.position_embedding_similarity` (None for a model without E_pos); mean_distance:
    (L, k) from `analysis.mean_attention_distance`; grid (gh, gw) and patch_size P of the model.
    A dashed line marks what uniform attention over
    the grid would give (the largest mean distance a head can have, on average, is about this).
    """
    n = components.shape[0]
    fig = make_subplots(1, 3, column_widths=[0.3, 0.34, 0.36], horizontal_spacing=0.1, subplot_titles=[
        f"Embedding filters (first {n} principal components)", "Position embedding similarity",
        "Mean attention distance per head"])
    fig.add_trace(go.Image(z=mosaic(_filter_tiles(components), filter_cols, fill=255), hoverinfo="skip"), 1, 1)
    fig.update_xaxes(visible=False, row=1, col=1)
    fig.update_yaxes(visible=False, scaleanchor="x", row=1, col=1)
    if pos_similarity is not None:
        gh, gw = pos_similarity.shape[:2]
        tiles = pos_similarity.detach().float().cpu().reshape(gh * gw, gh, gw).numpy()
        fig.add_trace(go.Heatmap(z=mosaic(tiles, gw, fill=np.nan), zmin=-1, zmax=1, colorscale="Viridis",
                                 colorbar=dict(title="Cosine<br>similarity", x=0.615, len=0.9, thickness=12),
                                 hovertemplate="%{z:.2f}<extra></extra>"), 1, 2)
        ticks = [(gw + 1) * c + (gw - 1) / 2 for c in range(gw)]
        fig.update_xaxes(title="Input patch column", tickvals=ticks, ticktext=[str(c + 1) for c in range(gw)],
                         showgrid=False, zeroline=False, row=1, col=2)
        ticks = [(gh + 1) * r + (gh - 1) / 2 for r in range(gh)]
        fig.update_yaxes(title="Input patch row", tickvals=ticks, ticktext=[str(r + 1) for r in range(gh)],
                         autorange="reversed", scaleanchor="x2", showgrid=False, zeroline=False, row=1, col=2)
    else:
        fig.add_annotation(text="no position embedding", showarrow=False, xref="x2 domain", yref="y2 domain",
                           x=0.5, y=0.5)
        fig.update_xaxes(visible=False, row=1, col=2)
        fig.update_yaxes(visible=False, row=1, col=2)
    d = mean_distance.detach().float().cpu()
    L, k = d.shape
    for h in range(k):
        fig.add_trace(go.Scatter(x=np.arange(1, L + 1) + (h - (k - 1) / 2) * 0.04, y=d[:, h].numpy(),
                                 mode="markers", name=f"Head {h + 1}", marker=dict(size=7, opacity=0.8),
                                 hovertemplate=f"layer %{{x:.0f}}, head {h + 1}: %{{y:.1f}} px<extra></extra>"),
                      1, 3)
    uniform = grid_distances(grid, patch_size).mean().item()
    fig.add_hline(y=uniform, line_dash="dash", line_color="gray", row=1, col=3,
                  annotation_text="uniform attention", annotation_position="bottom right")
    fig.update_xaxes(title="Network depth (layer)", dtick=1, row=1, col=3)
    fig.update_yaxes(title="Mean attention distance (pixels)", rangemode="tozero", row=1, col=3)
    fig.update_layout(title=title, width=1350, height=470, template="plotly_white",
                      legend=dict(x=1.01, y=1, font=dict(size=10)), margin=dict(t=80, l=40, r=20))
    return fig


def rollout_overlay(image, rollout, value_range: tuple[float, float] = (-1.0, 1.0)):
    """Fig. 6's look: the image (C, H, W) times its rollout map (gh, gw), the map scaled to max 1 and
    resized bilinearly to H x W (as Abnar & Zuidema's code does). Returns (H, W, 3) uint8."""
    m = rollout.detach().float().cpu()
    m = m / m.max().clamp_min(1e-12)
    m = F.interpolate(m[None, None], size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    return (to_uint8(image, value_range, rgb=True) * m.clamp(0, 1).numpy()[..., None]).round().astype(np.uint8)


def plot_fig6(images, maps, labels: list[str] | None = None, value_range: tuple[float, float] = (-1.0, 1.0),
              title: str = ""):
    """Fig. 6: each image (top row) and the image weighted by its attention-rollout map (bottom row).

    images: (B, C, H, W) with values in value_range; maps: (B, gh, gw) from `analysis.rollout_map`.
    """
    B = images.shape[0]
    labels = labels or [f"image {i + 1}" for i in range(B)]
    fig = make_subplots(2, B, horizontal_spacing=0.01, vertical_spacing=0.06, subplot_titles=labels)
    for i in range(B):
        fig.add_trace(go.Image(z=to_uint8(images[i], value_range, rgb=True), hoverinfo="skip"), 1, i + 1)
        fig.add_trace(go.Image(z=rollout_overlay(images[i], maps[i], value_range), hoverinfo="skip"), 2, i + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_yaxes(visible=True, showticklabels=False, showgrid=False, zeroline=False, title="Input", row=1, col=1)
    fig.update_yaxes(visible=True, showticklabels=False, showgrid=False, zeroline=False, title="Attention",
                     row=2, col=1)
    fig.update_layout(title=title, width=max(170 * B, 500), height=420, template="plotly_white",
                      margin=dict(t=80, l=40, r=10, b=10))
    return fig


def plot_attention_distance(results: dict, grid: tuple[int, int] | None, patch_size: int | None, title: str = "",
                            relative: bool = False):
    """Fig. 7 right for several models on one axis: {name: (L, k) mean attention distance}, one colour per model,
    one dot per head, at each layer's depth. A dashed line marks uniform attention.

    relative=False: distances in pixels, all models on one grid (grid, patch_size) whose uniform attention the
    line marks. relative=True: each model's distances already divided by its own grid's uniform attention
    (models on different grids, or with different depths, compare); the line is at 1; grid and patch_size are
    not used."""
    fig = go.Figure()
    unit = "x uniform" if relative else "px"
    for m, (name, d) in enumerate(results.items()):
        d = torch.as_tensor(d).detach().float().cpu()
        L, k = d.shape
        x = np.repeat(np.arange(1, L + 1), k) + (m - (len(results) - 1) / 2) * 0.15
        fig.add_trace(go.Scatter(x=x, y=d.flatten().numpy(), mode="markers", name=name,
                                 marker=dict(size=7, opacity=0.75),
                                 text=[f"layer {layer + 1}, head {h + 1}" for layer in range(L) for h in range(k)],
                                 hovertemplate="%{text}: %{y:.2f} " + unit + "<extra>" + name + "</extra>"))
    fig.add_hline(y=1.0 if relative else grid_distances(grid, patch_size).mean().item(), line_dash="dash",
                  line_color="gray", annotation_text="uniform attention", annotation_position="bottom right")
    fig.update_layout(title=title, xaxis_title="Network depth (layer)", xaxis_dtick=1,
                      yaxis_title="Mean attention distance / uniform attention's" if relative else
                      "Mean attention distance (pixels)", yaxis_rangemode="tozero",
                      template="plotly_white", width=700, height=430)
    return fig


def attention_explorer(images, attentions, grid: tuple[int, int], patch_size: int,
                       labels: list[str] | None = None, value_range: tuple[float, float] = (-1.0, 1.0)):
    """An ipywidgets explorer: pick an image, a layer, a head (or their mean) and a query (a patch, by
    sliders or by clicking on either panel, or the class token); see that query's attention over the
    image (left: on the image; right: the raw weights on the patch grid).

    images: (B, C, H, W); attentions: the L maps (B, k, T, T) of those images. Returns an ipywidgets
    VBox; `.figure` is its plotly FigureWidget, `.controls` its widgets by name, `.update()` redraws
    from the controls (each control calls it on change), `.on_click(trace, points, state)` is the
    click handler attached to both panels.
    """
    gh, gw = grid
    P = patch_size
    L, k = len(attentions), attentions[0].shape[1]
    has_cls = attentions[0].shape[-1] == gh * gw + 1
    labels = labels or [f"image {i + 1}" for i in range(images.shape[0])]
    controls = dict(
        image=W.Dropdown(options=[(name, i) for i, name in enumerate(labels)], value=0, description="image"),
        layer=W.IntSlider(value=1, min=1, max=L, description="layer"),
        head=W.Dropdown(options=[("mean of heads", -1)] + [(str(h + 1), h) for h in range(k)], value=0,
                        description="head"),
        row=W.IntSlider(value=gh // 2, min=0, max=gh - 1, description="query row"),
        col=W.IntSlider(value=gw // 2, min=0, max=gw - 1, description="query col"),
        cls=W.Checkbox(value=False, description="class token as query", disabled=not has_cls),
    )
    fig = go.FigureWidget(make_subplots(1, 2, subplot_titles=["attention on the image", "attention weights"]))
    half = (P - 1) / 2
    fig.add_trace(go.Image(z=to_uint8(images[0], value_range, rgb=True), hoverinfo="skip"), 1, 1)
    fig.add_trace(go.Heatmap(z=[[0.0]], x0=half, dx=P, y0=half, dy=P, opacity=0.55, colorscale="Inferno",
                             showscale=False, hovertemplate="%{z:.3f}<extra></extra>"), 1, 1)
    fig.add_trace(go.Heatmap(z=[[0.0]], colorscale="Inferno", colorbar=dict(title="weight"),
                             hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>"), 1, 2)
    fig.update_yaxes(autorange="reversed", scaleanchor="x2", row=1, col=2)
    fig.update_layout(width=820, height=430, margin=dict(t=60, l=10, r=10, b=10), template="plotly_white")

    def update(*_):
        c = {name: w.value for name, w in controls.items()}
        query = None if c["cls"] else c["row"] * gw + c["col"]
        head = None if c["head"] < 0 else c["head"]
        amap = query_attention(attentions, grid, c["layer"] - 1, head, c["image"], query).cpu().numpy()
        square = [] if query is None else [
            dict(type="rect", xref=x, yref=y, x0=x0 - 0.5, x1=x0 + s - 0.5, y0=y0 - 0.5, y1=y0 + s - 0.5,
                 line=dict(color="cyan", width=2))
            for x, y, x0, y0, s in [("x", "y", c["col"] * P, c["row"] * P, P), ("x2", "y2", c["col"], c["row"], 1)]]
        who = "class token" if query is None else f"patch (row {c['row']}, col {c['col']})"
        with fig.batch_update():
            fig.data[0].z = to_uint8(images[c["image"]], value_range, rgb=True)
            fig.data[1].z = amap
            fig.data[2].z = amap
            fig.layout.shapes = square
            fig.layout.title = f"layer {c['layer']}, head {'mean' if head is None else head + 1}, query: {who}"

    def on_click(trace, points, state):
        if not points.point_inds:
            return
        x, y = points.xs[0], points.ys[0]
        if trace is fig.data[1]:  # the image panel: pixel coordinates
            x, y = x / P, y / P
        controls["cls"].value = False
        controls["row"].value, controls["col"].value = int(round(y)), int(round(x))

    for w in controls.values():
        w.observe(update, names="value")
    fig.data[1].on_click(on_click)
    fig.data[2].on_click(on_click)
    update()
    box = W.VBox([W.HBox([controls["image"], controls["layer"], controls["head"]]),
                  W.HBox([controls["row"], controls["col"], controls["cls"]]), fig])
    box.figure, box.controls, box.update, box.on_click = fig, controls, update, on_click
    return box

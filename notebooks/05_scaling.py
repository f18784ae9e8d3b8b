# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Pre-training data and compute: Fig. 3, 4 and 5 in miniature
#
# **What this page shows.** With its defaults (`profile="full"`, `limit=0`) everything below is drawn, without
# training, from committed results files: first the headline study, `vitlib.experiments.scaling_curves`
# (`figures/scaling_curves.json`: every run trained to its plateau; until its rows exist, its pilot,
# `figures/scaling_curves_pilot.json`, labelled as such), then the compute-starved first sweep,
# `vitlib.experiments.scaling` (`figures/scaling.json`). To run a part: `papermill notebooks/05_scaling.ipynb
# out.ipynb -p limit 1` (one more row of each study, if any is missing), `-p limit -1` (every missing row;
# the headline is about 19 hours of CPU, see below), or `-p profile smoke -p limit -1` (the quick version, a
# minute, in a temporary folder).
#
# Reproduces, in miniature, the paper's central claim (Section 4.2-4.4, Fig. 3, 4 and 5): with little
# pre-training data the ResNet's inductive bias wins; as the data grow ViT catches up and overtakes it; per
# unit of pre-training compute ViT is the better deal. The paper puts the crossover between about 30M and 90M
# images, far beyond one CPU; what a miniature can test is the trend that produces it: **the ResNet's lead
# shrinks as the pre-training data grow, once every model is trained to its plateau at every size**.
#
# - Command: the same studies from the shell: `python -m vitlib experiment scaling_curves --profile full
#   --limit 1` (one run per call, resumable) and `python -m vitlib experiment scaling --profile full`.

# %%
import dataclasses

import pandas as pd
import torch
from IPython.display import Markdown

from vitlib import experiments
from vitlib.experiments import scaling, scaling_curves
from vitlib.experiments.protocol import MODELS, build_model
from vitlib.flops import count_parameters, forward_flops
from vitlib.plots import headline_figure, locality_figure, run_curves_figure, scaling_figure
from vitlib.records import FIGURES_DIR, load_results, results_stem, save_figure, shown_path
from vitlib.results import render_section

# %% tags=["parameters"]
profile = "full"  # "full" (figures/scaling_curves.json, figures/scaling.json), "smoke" (tiny, seconds, CI) or "gpu"
limit = 0  # rows to run per study before drawing: 0 draws the committed results files only (seconds),
# -1 runs every missing row, N at most N more

# %%
_ = torch.manual_seed(0)

# %% [markdown]
# ## The headline: every run trained to its plateau
#
# One run per (model, corpus size, seed), evaluated at checkpoints 2^k images apart: the held-out accuracy on
# the fractal task, the few-shot probe on Fashion-MNIST (Fig. 4's metric), the training FLOPs and every
# head's attention distance. A run's best checkpoint is its point of Fig. 3/4; the checkpoints of the runs on
# the largest set trace Fig. 5. The design, its verdict rules and its budget were written down before the
# first long run, from a pilot's learning curves; they are the study's docstring:

# %%
Markdown(scaling_curves.__doc__.split("The design (written", 1)[1].split("Budget in images seen", 1)[0]
         .join(["The design (written", ""]))

# %%
# NBVAL_IGNORE_OUTPUT
curves_path = experiments.study_path("scaling_curves", profile).with_suffix(".json")
if limit != 0:  # smoke: a new temporary folder
    curves_path = experiments.run("scaling_curves", profile, limit=limit, log=print)["path"]
headline = curves_path if curves_path.exists() else FIGURES_DIR / "scaling_curves_pilot.json"
print(f"drawn from {headline.name}" + ("" if headline == curves_path else
                                       f" ({curves_path.name} has no rows yet: the pilot, labelled as such)"))

# %%
record = load_results(headline.stem, headline.parent)
curve_rows = record["results"]["rows"]
label = f"{record['results']['profile']} profile, {len(curve_rows)} runs"
fig_curves = run_curves_figure(curve_rows, title=f"05 · the headline's runs ({label})")
fig_curves

# %% [markdown]
# Each layer's mean attention distance along training (Fig. 7 right, read along the runs): the paper finds that
# with enough data some heads of the lowest layers attend locally while others stay global, and that the
# distance grows with depth.

# %%
locality_figure(curve_rows, title=f"05 · attention distance per layer along training ({label})",
                uniform=scaling_curves.locality(curve_rows, record["results"]["config"])["uniform"])

# %% [markdown]
# The verdicts' numbers drawn: Fig. 3/4 (each model's 10-shot accuracy at its runs' best checkpoints against the
# number of distinct fractals; error bars: 95% intervals over seeds), the ResNet's lead by size with the fitted
# line the verdict reads (dotted on to the crossover it extrapolates, when it implies one), and Fig. 5 (the
# checkpoints of the runs on the largest set against training FLOPs, with each model's fitted power law, dashed).

# %%
headline_data = scaling_curves.figure_data(curve_rows)
fig_headline = headline_figure(headline_data, title=f"05 · Fig. 3/4 and 5 from the headline's runs ({label})")
if limit != 0:  # drawing the committed rows leaves figures/ as it is
    save_figure(fig_headline, curves_path.parent / results_stem("fig345_headline", profile), headline_data,
                png=profile != "smoke",
                command=f"papermill notebooks/05_scaling.ipynb out.ipynb -p profile {profile} -p limit {limit}")
fig_headline

# %% [markdown]
# The table, the ResNet's lead by size, and the verdicts (the same text as RESULTS.md, computed from the rows by
# the rules above; "in progress" while runs of the design are missing):

# %%
Markdown(render_section(headline.stem, headline.parent, figure=False))

# %% [markdown]
# ## The compute-starved first sweep (16,384 images a run)
#
# The study below came first: four models, two corpora, five sizes each, all at one short schedule. It built
# every piece the headline uses, but at its budget the ViTs never learned the fractal task, so its verdict on
# Fig. 3-5 is "not testable at this budget" (rendered at the end of this section from its rows). Its design,
# as written before its run:

# %% [markdown]
# ### The design, fixed before the full run
#
# The study's configuration is code (`vitlib.experiments.scaling.PROFILES[profile]`, a frozen dataclass);
# its docstring gives the reasons. In short:
#
# - **Models** at 28x28 (the real datasets' own resolution), each with a 7x7 grid of tokens (or of feature
#   cells for the ResNet), within a factor of two of each other in forward FLOPs (table below), so that the
#   comparison is about inductive bias, not size: two ViT depths, a BiT ResNet (GroupNorm + Weight
#   Standardization, Section 4.1) and the hybrid of Section 3.1 (the ResNet root, then ViT on its feature
#   map with 1x1 patches).
# - **Data**: two corpora, each at five sizes spanning two orders of magnitude; one schedule in images
#   seen for every size (16,384 images in 512 steps of 32), so that small sets are repeated many times (the
#   overfitting Section 4.3 discusses) and the largest are seen about once (at this budget they measure
#   compute, not data).
# - **Checkpoint**: the best validation state (a held-out split that does not change with the size).
# - **Transfer**: Fig. 4's protocol, the closed-form linear few-shot probe on frozen features of a
#   *different*, real dataset (Fashion-MNIST test after fractal pre-training, MNIST-5k after Fashion-MNIST).
# - **Seeds**: three at the two smallest sizes of each corpus, one elsewhere; 95% Wilson intervals.
# - **The untrained level**: each model is also probed before any pre-training (seconds per model): a
#   pre-trained model below its own untrained line learned features that transfer worse than random ones.
#
# **What counts as reproducing the claim** was first judged by intervals at one run's test-set size; the
# verdicts now read seed variance and say "not testable at this budget" where the ViTs never learned the
# pre-training task (`vitlib.experiments.scaling`'s docstring has both rules and why they changed).

# %% [markdown]
# ### Why the design changed before the full run: the pilot
# The first design pre-trained at 32x32 in 128 steps of 128 images. A pilot on 10,000 fractals (seed 0,
# before any full-profile row) showed that at that step count neither model learned the pre-training task
# (held-out accuracy at a few times chance), so the study would have compared barely trained models. The
# same 16,384 images in 512 steps of 32 take about the same time and the ResNet learns far more, so the full
# profile uses batch 32; 28x28 is the real datasets' own resolution and makes the ViTs faster. Ten
# fractal categories instead of 100 made the task learnable for the ViT but did not help transfer, so the
# corpus stays the project's 100 categories. The pilot's rows, as run:

# %%
Markdown(render_section("scaling_pilot", figure=False))

# %%
cfg = experiments.config("scaling", profile)
plan = scaling.expand(cfg)
print(f"{profile}: {len(plan)} runs, {experiments.images_seen('scaling', profile):,} pre-training images seen "
      f"({cfg.images_per_run // cfg.batch_size} steps of {cfg.batch_size} per run)")
pd.Series({k: v for k, v in dataclasses.asdict(cfg).items()}, name=profile).to_frame()

# %%
models = {}
for name in cfg.models:
    with torch.device("meta"):  # shapes only: counting costs no memory
        model = build_model(name, cfg.img_size, num_classes=100)
    models[name] = dict(architecture=MODELS[name].create, parameters=count_parameters(model),
                        gflops_per_image=forward_flops(model, cfg.img_size) / 1e9)
models = pd.DataFrame(models).T
models

# %%
flops = models["gflops_per_image"].astype(float)
assert len(plan) == len({r["key"] for r in plan})
if profile != "smoke":
    assert flops.max() / flops.min() <= 2.1, flops  # comparable compute per image
    assert sum(n.startswith("ViT") for n in cfg.models) >= 2 and any(n.startswith("BiT") for n in cfg.models)

# %% [markdown]
# ### The runs
# `experiments.run` runs the rows missing from the results file (smoke: a temporary folder; full:
# `figures/scaling.json`) and appends each as it finishes; a row already there is never run again. With
# `-p limit N` it runs at most N of the missing rows (`-p limit 0`, the default: none, the rows are only read).

# %%
# NBVAL_IGNORE_OUTPUT
out = experiments.run("scaling", profile, limit=limit, log=print)
rows = [r for r in out["rows"] if r["key"] in {s["key"] for s in plan}]
print(f"{len(rows)} of {len(plan)} runs in {shown_path(out['path'])}; {out['todo']} still to run")

# %%
assert len(rows) + out["todo"] == len(plan) and (out["todo"] == 0 or limit is not None and limit >= 0)
if out["todo"]:
    print(f"A part of the study: {out['todo']} runs still to run; everything below shows the rows run so far.")
for r in rows:
    assert 0 <= r["metrics"][f"{cfg.shots[0]}shot"] <= 1
    if r["kind"] == "untrained":  # probed before any pre-training
        assert r["train_flops"] == r["images_seen"] == 0
        continue
    assert r["train_flops"] > 0 and r["images_seen"] == cfg.images_per_run // cfg.batch_size * cfg.batch_size
    assert r["metrics"]["val_accuracy"] >= r["metrics"]["final_val_accuracy"]  # the best state was kept

# %% [markdown]
# ### Fig. 3/4: transfer against pre-training set size
# > "ResNets perform better with smaller pre-training datasets but plateau sooner than ViT, which performs
# > better with larger pre-training." (Section 4.3, on Fig. 4)
#
# Few-shot linear accuracy (frozen features, the best validation state) against the number of distinct
# pre-training images; error bars: 95% intervals of the mean over seeds.

# %%
shot = f"{5 if 5 in cfg.shots else cfg.shots[0]}shot"
data_curves, levels = scaling.curves(rows, shot), scaling.untrained(rows, shot)
fig4 = scaling_figure(data_curves, "size", f"{shot[:-4]}-shot linear accuracy", untrained=levels,
                      title=f"05 · Fig. 3/4: transfer vs pre-training set size ({profile}; dotted: untrained)")
folder = out["path"].parent  # where the study's results file is
if limit != 0:  # drawing the committed rows leaves figures/ as it is
    save_figure(fig4, folder / results_stem("fig4_scaling_data", profile), data_curves, png=profile != "smoke",
                command=f"papermill notebooks/05_scaling.ipynb out.ipynb -p profile {profile}")
fig4

# %% [markdown]
# ### Fig. 5: transfer against pre-training compute
# > "Vision Transformers dominate ResNets on the performance/compute trade-off. ViT uses approximately
# > 2-4x less compute to attain the same performance. [...] hybrids slightly outperform ViT at small
# > computational budgets." (Section 4.4)
#
# Each model at its largest pre-training set, against its total training FLOPs (3 x forward FLOPs x images
# seen, counted by `torch.utils.flop_counter`).

# %%
fig5 = scaling_figure(data_curves, "flops", f"{shot[:-4]}-shot linear accuracy", untrained=levels,
                      title=f"05 · Fig. 5: transfer vs pre-training compute ({profile}; dotted: untrained)")
if limit != 0:  # drawing the committed rows leaves figures/ as it is
    save_figure(fig5, folder / results_stem("fig5_scaling_compute", profile), data_curves, png=profile != "smoke",
                command=f"papermill notebooks/05_scaling.ipynb out.ipynb -p profile {profile}")
fig5

# %% [markdown]
# ### The table
# Mean over seeds per model and pre-training size: few-shot accuracy, the same model's untrained level, and
# the accuracy on the pre-training task's own held-out split.

# %%
val_curves = scaling.curves(rows, "val_accuracy")
table = pd.DataFrame([dict(corpus=c, model=m, size=p["size"], seeds=p["seeds"], **{shot: p["mean"]},
                           untrained=levels.get(c, {}).get(m, {}).get("mean"), pretrain_val=v["mean"],
                           train_gflops=p["flops"] / 1e9)
                      for c, per_model in data_curves.items() for m, pts in per_model.items()
                      for p, v in zip(pts, val_curves[c][m])])
table.round(4)

# %% [markdown]
# ### Against the paper
# The renderer of RESULTS.md reads the results file and states the verdict (Fig. 3/4's ordering at the
# smallest and the largest size, beyond the intervals). Below: this profile's results file; the full
# profile's is `figures/scaling.json`. The paper's effect comes from 1.3M to 300M natural images and models
# up to 632M parameters; this miniature spans 10^3 to 10^5 images and models of a few million parameters,
# at a schedule fixed in images seen, so a "not shown" here says what this scale can resolve, not that the
# paper is wrong.

# %%
Markdown(render_section(out["path"].stem, folder, figure=False))

# %% [markdown]
# ### Why this sweep cannot answer the question
#
# The last column of the table above, each model's accuracy on its pre-training task's own held-out split,
# says why: at this schedule the ViTs stay near chance on the fractals whatever the set size, so more distinct
# images cannot help them yet, and a flat ViT curve says "compute-limited", not "data do not help ViT". The
# dotted untrained lines say the same from the other side: where a pre-trained point lies below its own
# untrained line, a few hundred steps narrowed the features onto the pre-training classes before making them
# general. The headline above trains every run until its held-out curve flattens instead.

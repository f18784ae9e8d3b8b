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
# Reproduces, in miniature, the paper's central claim (Section 4.2-4.3, Fig. 3, 4 and 5): with little
# pre-training data the ResNet's inductive bias wins; as the data grows ViT catches up and overtakes it;
# per unit of pre-training compute ViT is the better deal, and hybrids help at small budgets. The study is
# `vitlib.experiments.scaling`: two ViT sizes, a BiT ResNet of comparable FLOPs and a hybrid, each
# pre-trained on FractalDB-style fractals and on Fashion-MNIST at five sizes spanning two orders of
# magnitude with one schedule in images seen, then probed by Fig. 4's linear few-shot evaluation on frozen
# features of a held-out real dataset.
#
# - Run time: `smoke` under a minute (a 2x2 grid of tiny models); `full` about 2.5 hours of quiet 2-core CPU
#   (the study's budget in images seen is printed below), run in parts: the runner keeps every finished row
#   in `figures/scaling.json` and runs only the missing ones, so the notebook redraws the figures in seconds
#   once the study has run.
# - Expected: the answer, whatever it is, with 95% intervals: is the ResNet ahead at the smallest sizes, does
#   ViT close the gap as the data grows, and where do the models sit against compute.
# - Command: `papermill notebooks/05_scaling.ipynb out.ipynb -p profile full` (the same study from the shell:
#   `python -m vitlib experiment scaling --profile full`; `--limit N` runs N more rows and stops).

# %%
import dataclasses

import pandas as pd
import torch
from IPython.display import Markdown

from vitlib import experiments
from vitlib.experiments import scaling
from vitlib.experiments.protocol import MODELS, build_model
from vitlib.flops import count_parameters, forward_flops
from vitlib.plots import scaling_figure
from vitlib.records import results_stem, save_figure
from vitlib.results import render_section

# %% tags=["parameters"]
profile = "smoke"  # "smoke" (a 2x2 grid in seconds, CI), "full" (figures/scaling.json) or "gpu"
limit = None  # run at most this many of the missing rows (None: all; 0: draw the rows already run, in seconds)

# %%
_ = torch.manual_seed(0)

# %% [markdown]
# ## The design, fixed before the full run
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
# **What counts as reproducing the claim**: at the smallest sizes the ResNet's few-shot accuracy above both
# ViTs' beyond the intervals, and the ViTs rising faster with size so that at the largest size a ViT matches
# or beats it (Fig. 3/4); against FLOPs, ViT on or above the ResNet and the hybrid above ViT at the smallest
# budgets (Fig. 5). **Partly**: the ordering at one end only. **Not**: the ResNet ahead at every size, or
# no trend with size.

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
# NBVAL_IGNORE_OUTPUT
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
# ## The runs
# `experiments.run` runs the rows missing from the results file (smoke: a temporary folder; full:
# `figures/scaling.json`) and appends each as it finishes; a row already there is never run again. With
# `-p limit N` it runs at most N of the missing rows (`-p limit 0`: none, the figures of the rows so far).

# %%
# NBVAL_IGNORE_OUTPUT
out = experiments.run("scaling", profile, limit=limit, log=print)
rows = [r for r in out["rows"] if r["key"] in {s["key"] for s in plan}]
print(f"{len(rows)} of {len(plan)} runs in {out['path']}; {out['todo']} still to run")

# %%
assert len(rows) + out["todo"] == len(plan) and (out["todo"] == 0 or limit is not None)
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
# ## Fig. 3/4: transfer against pre-training set size
# > "ResNets perform better with smaller pre-training datasets but plateau sooner than ViT, which performs
# > better with larger pre-training." (Section 4.3, on Fig. 4)
#
# Few-shot linear accuracy (frozen features, the best validation state) against the number of distinct
# pre-training images; error bars: 95% intervals of the mean over seeds.

# %%
# NBVAL_IGNORE_OUTPUT
shot = f"{5 if 5 in cfg.shots else cfg.shots[0]}shot"
data_curves, levels = scaling.curves(rows, shot), scaling.untrained(rows, shot)
fig4 = scaling_figure(data_curves, "size", f"{shot[:-4]}-shot linear accuracy", untrained=levels,
                      title=f"05 · Fig. 3/4: transfer vs pre-training set size ({profile}; dotted: untrained)")
folder = out["path"].parent  # where the study's results file is
save_figure(fig4, folder / results_stem("fig4_scaling_data", profile), data_curves, png=profile != "smoke",
            command=f"papermill notebooks/05_scaling.ipynb out.ipynb -p profile {profile}")
fig4

# %% [markdown]
# ## Fig. 5: transfer against pre-training compute
# > "Vision Transformers dominate ResNets on the performance/compute trade-off. ViT uses approximately
# > 2-4x less compute to attain the same performance. [...] hybrids slightly outperform ViT at small
# > computational budgets." (Section 4.4)
#
# Each model at its largest pre-training set, against its total training FLOPs (3 x forward FLOPs x images
# seen, counted by `torch.utils.flop_counter`).

# %%
# NBVAL_IGNORE_OUTPUT
fig5 = scaling_figure(data_curves, "flops", f"{shot[:-4]}-shot linear accuracy", untrained=levels,
                      title=f"05 · Fig. 5: transfer vs pre-training compute ({profile}; dotted: untrained)")
save_figure(fig5, folder / results_stem("fig5_scaling_compute", profile), data_curves, png=profile != "smoke",
            command=f"papermill notebooks/05_scaling.ipynb out.ipynb -p profile {profile}")
fig5

# %% [markdown]
# ## The table
# Mean over seeds per model and pre-training size: few-shot accuracy, the same model's untrained level, and
# the accuracy on the pre-training task's own held-out split.

# %%
# NBVAL_IGNORE_OUTPUT
val_curves = scaling.curves(rows, "val_accuracy")
table = pd.DataFrame([dict(corpus=c, model=m, size=p["size"], seeds=p["seeds"], **{shot: p["mean"]},
                           untrained=levels.get(c, {}).get(m, {}).get("mean"), pretrain_val=v["mean"],
                           train_gflops=p["flops"] / 1e9)
                      for c, per_model in data_curves.items() for m, pts in per_model.items()
                      for p, v in zip(pts, val_curves[c][m])])
table.round(4)

# %% [markdown]
# ## Against the paper
# The renderer of RESULTS.md reads the results file and states the verdict (Fig. 3/4's ordering at the
# smallest and the largest size, beyond the intervals). Below: this profile's results file; the full
# profile's is `figures/scaling.json`. The paper's effect comes from 1.3M to 300M natural images and models
# up to 632M parameters; this miniature spans 10^3 to 10^5 images and models of a few million parameters,
# at a schedule fixed in images seen, so a "not shown" here says what this scale can resolve, not that the
# paper is wrong.

# %%
# NBVAL_IGNORE_OUTPUT
Markdown(render_section(out["path"].stem, folder, figure=False))

# %% [markdown]
# ## Reading the result (written after seed 0's grid and the untrained probes; checked against all 80 rows, 2026-11-30)
#
# The verdicts above come from the rows by the rule written before the run. The tables say *why*:
#
# 1. **Nobody is data-limited at this budget.** The pre-training task's own held-out accuracy hardly moves
#    from the smallest set (seen sixteen to thirty times) to the largest (seen once or less), for every model.
#    Section 4.3's mechanism (a ViT overfits a small set more than a ResNet does, then overtakes it when the
#    data grow) needs models that fit their training sets; at 16,384 images seen the ViTs are still in their
#    first steps (a few times chance on the fractals, under half right on Fashion-MNIST), so more distinct
#    images cannot help them yet. A flat ViT curve here says "compute-limited", not "data do not help ViT".
# 2. **Per step, the convolutional bias wins.** The ResNet learns both pre-training tasks much faster and its
#    frozen features transfer far better, at every size: the small-data end of Fig. 3/4, and nothing of the
#    crossover. The hybrid (the ResNet root under the ViT) learns its pre-training task faster than the plain
#    ViT and transfers better from the fractals, the direction of Fig. 5's "hybrids help at small budgets".
# 3. **The untrained line is the sharpest reading.** Probed before any pre-training, the ViTs and the hybrid
#    give features that transfer *better* than after these 16,384 images: after fractal pre-training every
#    ViT and hybrid point lies below its own dotted line beyond the intervals; after Fashion-MNIST the
#    hybrid's points lie below it and the ViTs' below or level, never above. Only the ResNet's pre-training
#    lifts it above its untrained level (at every size on the Fashion-MNIST to MNIST pair, at one size on the
#    fractals). A likely reading, not tested here: a few hundred steps of supervised training narrow a
#    ViT's representation onto its pre-training classes before they make it general. Notebook 04's transfer
#    study, with the shipped model pre-trained on far more images (notebook 03), found its few-shot features
#    well above random ones: the budget, not only the architecture, decides which side of the line a ViT
#    lands on.
# 4. **What would answer the question**: schedules long enough that the ViTs fit the smallest sets before
#    the largest can help them: the gpu profile (262,144 images per run), or on this CPU a longer schedule
#    for fewer models. Until then this miniature reproduces the small-data end of Fig. 3/4 and says nothing
#    about where (or whether) ViT overtakes the ResNet.

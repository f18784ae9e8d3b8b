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
# # 04 · Fine-tuning a pre-trained ViT: Section 3.2
#
# **What this page shows.** With its defaults (`profile="full"`, `limit=0`) the study's figure, table and verdicts
# are drawn, without training, from the committed results of the full `transfer` study, `figures/transfer.json`;
# the earlier one-seed protocol and the first shipped model from `figures/finetune_results.json` and
# `figures/shipped_model_v1_too_small_budget.json`; the command-line fine-tune from `figures/cli_finetune.json`;
# a ViT trained on a CPU against the clock (beyond the paper) from `figures/time_to_accuracy.json`.
# Only the surgery below runs (no training); the page executes in seconds. To run a part again:
# `papermill notebooks/04_finetune.ipynb out.ipynb -p limit 1` (one more row of the study, if any is missing),
# `-p limit -1` (every missing row), or `-p profile smoke -p limit -1` (the quick version, a minute, in a
# temporary folder).
#
# Reproduces, in miniature, the transfer recipe of Section 3.2 and Appendix B.1.1 and asks the question the paper
# answers at scale: **does pre-training pay?** The surgery first: remove the pre-training head, attach a
# zero-initialised D x K head, and fine-tune at a *higher resolution* than pre-training with the position
# embeddings 2D-interpolated. Then the `transfer` study (`vitlib.experiments.transfer`): vitlib's shipped ViT
# (pre-trained on procedural fractals, notebook 03) fine-tuned on Fashion-MNIST and MNIST-5k at three
# training-set sizes and three seeds, against the same architecture from scratch with the same budget; Section
# 3.2's resolution ablation; and the linear few-shot probe of Section 4.1 at 1, 5, 10 and 25 shots. Every
# accuracy carries a 95% interval, and the answer is computed from the rows.
#
# - Run time: `smoke` under a minute (the study's smoke profile, a handful of tiny runs); `full` is the study's
#   budget in images seen (printed below; each row's measured wall time is in `figures/transfer.json`). The study
#   is resumable: with `limit` other than 0 the notebook runs only the rows missing from the file; with
#   `limit=0` (the default) it draws the rows already in the file without running any.
# - Expected: the surgery leaves a zero head (uniform predictions, loss = ln K) and an unchanged embedding at the
#   old resolution. Whether pre-training pays, at which sizes, and whether the higher resolution helps, is what
#   the rows say: the answer is stated with its intervals, whatever it is, and parts not yet run say so.
# - Command: `papermill notebooks/04_finetune.ipynb out.ipynb -p limit -1` (the same study from the shell:
#   `python -m vitlib experiment transfer --profile full`; `--limit N` runs N more rows and stops).

# %%
import dataclasses
import math

import pandas as pd
import torch
from IPython.display import Markdown

from vitlib import experiments
from vitlib.analysis import position_embedding_grid
from vitlib.data import get_dataset
from vitlib.experiments import transfer
from vitlib.experiments.protocol import vit_name
from vitlib.experiments.runner import load_rows, study_path
from vitlib.finetune import load_pretrained, prepare_finetune
from vitlib.plots import pos_embed_figure, time_to_accuracy_figure, transfer_figure
from vitlib.records import FIGURES_DIR, load_results, results_stem, save_figure, shown_path
from vitlib.results import TIME_TO_ACCURACY_GOAL, render_section

# %% tags=["parameters"]
profile = "full"  # "smoke" (seconds, CI), "full" (draws figures/transfer.json) or "gpu" (figures/transfer_gpu.json)
limit = 0  # study rows to run before drawing: 0 draws the committed results file only (seconds),
           # -1 runs every missing row, N at most N more
checkpoint = ""  # empty: the shipped model; else a vitlib checkpoint, an official .npz or a timm weights file
folder = ""  # where the study's results file goes; empty: the profile's (figures/ for full and gpu, a temp folder)

# %%
_ = torch.manual_seed(0)
assert not checkpoint or folder, "another checkpoint's rows need their own results file: pass -p folder DIR too"
overrides = {"checkpoint": checkpoint} if checkpoint else {}
cfg = experiments.config("transfer", profile, **overrides)
pretrained = load_pretrained(cfg.checkpoint)
pre_res = pretrained.cfg.image_hw[0]
img_size = cfg.ablation_resolution or 2 * pre_res  # the higher resolution of the ablation
print(f"pre-trained model: {checkpoint or 'shipped'}, {vit_name(pretrained)} at {pre_res} px")

# %% [markdown]
# ## The surgery
# > "For fine-tuning, we remove the pre-trained prediction head and attach a zero-initialized
# > $D \times K$ feedforward layer, where $K$ is the number of downstream classes." (Section 3.2)
#
# $$W_{\text{head}} = 0 \in \mathbb{R}^{D \times K} \quad\Rightarrow\quad p(y \mid x) = 1/K,\ \ \mathcal{L} = \ln K$$

# %%
test = get_dataset(cfg.datasets[0], "test", img_size, in_chans=pretrained.cfg.in_chans)
K = test.num_classes
ft = prepare_finetune(pretrained, num_classes=K, img_size=img_size)
x0, y0 = next(iter(torch.utils.data.DataLoader(test, batch_size=8)))
loss0 = torch.nn.functional.cross_entropy(ft(x0), torch.as_tensor(y0)).item()
print(f"{cfg.datasets[0]}: K = {K} | head {tuple(ft.head.weight.shape)} | grid {pretrained.grid} -> {ft.grid} | "
      f"initial loss {loss0:.4f} (ln K = {math.log(K):.4f})")

# %%
assert ft.head.weight.abs().sum() == 0 and ft.head.bias.abs().sum() == 0
assert abs(loss0 - math.log(K)) < 1e-5
assert ft.cfg.img_size == img_size and ft.grid == (img_size // ft.cfg.patch_size,) * 2

# %% [markdown]
# ## Higher resolution: E_pos interpolated in 2D
# > "When feeding images of higher resolution, we keep the patch size the same, which results in a
# > larger effective sequence length. [...] We therefore perform 2D interpolation of the pre-trained
# > position embeddings, according to their location in the original image." (Section 3.2)
#
# $$N = \frac{HW}{P^2}:\quad \text{the grid grows from } \frac{H}{P} \times \frac{W}{P} \text{ at the pre-training
# resolution to } \frac{H'}{P} \times \frac{W'}{P} \text{ at the new one}$$
#
# Below: four channels of $E_{pos}$ (class token left out) as images on the patch grid, before
# (top) and after (bottom) the interpolation.

# %%
before = position_embedding_grid(pretrained.pos_embed, pretrained.grid)
after = position_embedding_grid(ft.pos_embed, ft.grid)
pos_embed_figure({"before": before, "after": after}, title="04 · Position embeddings before / after 2D interpolation")

# %%
same = prepare_finetune(pretrained, num_classes=K, img_size=pre_res)
assert torch.equal(same.pos_embed, pretrained.pos_embed)  # at the old resolution: unchanged
assert torch.equal(ft.pos_embed[:, :1], pretrained.pos_embed[:, :1])  # the class token's embedding is kept
corners = after[:: after.shape[0] - 1, :: after.shape[1] - 1]
assert torch.allclose(corners, before[:: before.shape[0] - 1, :: before.shape[1] - 1], atol=1e-6)

# %% [markdown]
# ## The study's design, fixed before the full run
# > "We fine-tune all ViT models using SGD with a momentum of 0.9. [...] cosine decay with warm-up, gradient
# > clipping at global norm 1, no weight decay." (Appendix B.1.1)
#
# The configuration is code (`vitlib.experiments.transfer.PROFILES[profile]`, a frozen dataclass); its
# docstring gives the reasons. In short:
#
# - **Arms**: the pre-trained model with a new zero head against the same architecture freshly initialised
#   (the official initialisation), both fine-tuned with Appendix B.1.1's recipe and the same budget in images
#   seen, at every training-set size;
# - **Seeds**: each seed draws its own training subset, data order and scratch initialisation; the test subset
#   is fixed and evaluated once, at the end;
# - **Resolution ablation**: one dataset and size fine-tuned at a higher resolution, E_pos interpolated;
# - **Few-shot probe**: frozen features, the closed-form least squares of Section 4.1, pre-trained against
#   random-init features.
#
# **What counts as "pre-training pays"**: the rules are written once, in the docstring of
# `vitlib.experiments.transfer`, and the verdicts below apply them; rendered from there (`transfer.rules()`),
# with why they were revised after the first results. A part whose rows are missing is "not yet run", and a part
# with some rows missing gets a verdict "so far".

# %%
Markdown(transfer.rules())

# %%
plan = transfer.expand(cfg)
steps = max(cfg.images_per_run // cfg.batch_size, 1)
print(f"{profile}: {len(plan)} runs, {experiments.images_seen('transfer', profile, **overrides):,} fine-tuning "
      f"images seen ({steps * cfg.batch_size:,} per fine-tuning run: {steps} steps of {cfg.batch_size}), "
      f"{sum(s['kind'] == 'fewshot' for s in plan)} few-shot probes, "
      f"{sum(s['kind'] == 'finetune-long' for s in plan)} convergence-check runs ({cfg.scratch_long_factor}x the budget)")
pd.Series({k: v for k, v in dataclasses.asdict(cfg).items()}, name=profile).to_frame()

# %%
assert len(plan) == len({s["key"] for s in plan})
assert {s["arm"] for s in plan if s["kind"] == "finetune"} == {"pre-trained", "scratch"}

# %% [markdown]
# ## The runs
# The study's results file (smoke: a temporary folder; full: `figures/transfer.json`) holds one row per run.
# With `limit` other than 0, `experiments.run` first runs the rows missing from it, at most `limit` of them, and
# appends each as it finishes; a row already there is never run again. With `limit=0` the rows are only read.

# %%
# NBVAL_IGNORE_OUTPUT
path = study_path("transfer", profile, folder or None).with_suffix(".json")
if limit != 0:
    experiments.run("transfer", profile, folder=path.parent, limit=None if limit < 0 else limit, log=print,
                    **overrides)

# %%
planned = {s["key"] for s in plan}
rows = [r for r in load_rows(path) if r["key"] in planned]
todo = len(planned - {r["key"] for r in rows})
make = f"`python -m vitlib experiment transfer --profile {profile}` (or this notebook with `-p limit -1`)"
print(f"{len(rows)} of {len(plan)} runs in {shown_path(path)}; {todo} still to run; "
      f"{sum(r['wall_s'] for r in rows) / 60:.0f} min of measured run time" if path.exists() else
      f"no results file {shown_path(path)} for the {profile} profile: {make} makes it")

# %%
assert len(rows) + todo == len(plan)
if limit < 0:
    assert todo == 0
pairs = {}
for r in rows:
    m = r["metrics"]
    if r["kind"] in ("finetune", "finetune-long"):  # the budget (batch capped at the set), 1x or the check's
        assert r["images_seen"] == steps * r.get("budget_factor", 1) * min(cfg.batch_size, r["n_train"])
        assert 0 <= m["test_accuracy"] <= 1 and m["ci95"][0] <= m["test_accuracy"] <= m["ci95"][1]
        assert math.isfinite(m["train_loss_first"]) and math.isfinite(m["train_loss_last"])
        if r["kind"] == "finetune":
            pairs.setdefault(r["key"].replace(r["arm"], "*", 1), []).append(r)
    else:
        assert all(0 <= m[f"{k}shot"] <= 1 for k in cfg.shots)
for arms in pairs.values():  # both arms of a comparison: the same images, the same budget
    assert len({(r["n_train"], r["images_seen"], r["img_size"]) for r in arms}) == 1
if profile != "smoke" and todo == 0:
    for r in rows:
        if r["kind"] != "fewshot":  # every arm learns
            assert r["metrics"]["train_loss_last"] < r["metrics"]["train_loss_first"], r["key"]

# %% [markdown]
# ## The figure
# Fine-tuned test accuracy against training-set size for each dataset (pre-trained against scratch), the linear
# few-shot accuracy against shots per class (pre-trained against random-init features), and the resolution
# ablation. Points: the mean over seeds; error bars: its 95% interval. A part not yet run is an empty panel
# that says so.

# %%
summary = transfer.summary(rows)
fig = transfer_figure(summary, title=f"04 · Does pre-training pay? The transfer study ({profile}, {len(rows)} of "
                                     f"{len(plan)} runs)", datasets=cfg.datasets)
if limit != 0:  # rows may have been added: the figure's files follow (limit 0 leaves the committed ones alone)
    save_figure(fig, path.parent / results_stem("transfer_curves", profile), summary, png=profile != "smoke",
                command=f"papermill notebooks/04_finetune.ipynb out.ipynb -p profile {profile} -p limit -1")
fig

# %% [markdown]
# ## The table
# Every comparison of the study: the mean over seeds, its 95% interval, the lowest and highest seed.

# %%
table = pd.DataFrame(
    [dict(part="fine-tuning", dataset=c, arm=a, x=f"{p['n_train']:,} images", **p) for c, arms in
     summary["finetune"].items() for a, pts in arms.items() for p in pts]
    + [dict(part="resolution ablation", arm=a, x=f"{p['resolution']} px", **p)
       for arms in summary["ablation"].values() for a, pts in arms.items() for p in pts]
    + [dict(part="few-shot", dataset=c, arm=a, x=f"{p['shots']}-shot", **p) for c, arms in
       summary["fewshot"].items() for a, pts in arms.items() for p in pts],
    columns=["part", "dataset", "arm", "x", "mean", "lo", "hi", "low", "high", "seeds"])
table.round(4)

# %% [markdown]
# ## Does pre-training pay here?
# Computed from the rows (`vitlib.experiments.transfer.verdict`) by the rules rendered above: each comparison is
# the pre-trained arm against the other over seeds. The same text is in RESULTS.md and the README.

# %%
verdict = transfer.verdict(summary, cfg)
for part, v in verdict.items():
    print(f"{part}: {v['verdict']}. {v['text']}")

# %%
assert set(verdict) == {"fine-tuning", "few-shot", "higher resolution", "scratch, longer", "answer"}
if todo == 0 and profile != "smoke":  # a complete study gives a complete answer, whatever it is
    assert not any(v["verdict"].endswith("so far") or v["verdict"] == "not yet run" for v in verdict.values())

# %%
Markdown(transfer.answer({"rows": rows, "config": dataclasses.asdict(cfg)}))

# %% [markdown]
# ## Where the project started: the first shipped model and the earlier protocol
# An earlier version of this notebook fine-tuned once per arm (one seed, one training-set size, tens of steps);
# the study above replaced it. Its last full run on the shipped model stays in `figures/finetune_results.json`,
# and the same protocol's run on the first shipped model in `figures/shipped_model_v1_too_small_budget.json`.
# The two models differ in more than one way; `vitlib.results.budget_comparison` sets them side by side and
# names every difference. Both rendered from those files, as in RESULTS.md:

# %%
Markdown(render_section("shipped_model_v1_too_small_budget", figure=False))

# %%
Markdown(render_section("finetune_results", figure=False))

# %% [markdown]
# ## The same recipe from the shell
# Outside the study, `python -m vitlib finetune` fine-tunes the shipped model with Appendix B.1.1's recipe
# (`vitlib.train.finetune_recipe`, with a CPU batch) and `python -m vitlib evaluate` scores the result once on the
# test split. The README's example and its committed result (the commands are in the provenance line):

# %%
Markdown(render_section("cli_finetune", figure=False))

# %% [markdown]
# ## A ViT on your CPU: time to accuracy (beyond the paper)
# The paper's recipes pre-train on millions of images and fine-tune briefly; trained from scratch on a small dataset
# with them, a ViT lags a ResNet badly (the scratch arms above). `vitlib.train.small_data_recipe` is a recipe for that
# case, taken from the literature on training small ViTs (AugReg, "Better plain ViT baselines": AdamW with weight
# decay, a cosine schedule after a short warm-up, label smoothing, horizontal flips, bf16 where the CPU multiplies it
# natively), not from the paper; the random resized crops of the paper's recipes were in it at first and were dropped
# after the `crop-flip` arm below (the recipe with them) ended lower in every seed. `benchmarks/time_to_accuracy.py`
# measures what it buys: it trains, through the library's own loop, the ViT from scratch, the shipped model with a new
# head, and the scaling study's ResNet on all 60,000 Fashion-MNIST training images for the same wall-clock budget,
# each schedule on the clock (its warm-up and decay follow the training time: `TrainConfig.budget_s`, as `vitlib
# finetune --minutes`), and the recipe with one element removed or added (its ablations), testing on the 10,000 test
# images along the way (nothing is chosen on them: the curve is read). The goal is 90% within 30 minutes of a quiet
# 2-core CPU. Drawn from `figures/time_to_accuracy.json`, where the runs so far are (each with its seed, CPU and
# whether the machine was quiet):

# %%
tta = load_results("time_to_accuracy") if (FIGURES_DIR / "time_to_accuracy.json").exists() else None
if tta:
    tta_rows = tta["results"]["rows"]
    time_to_accuracy_figure(tta_rows, goal=TIME_TO_ACCURACY_GOAL, targets=tuple(tta["results"]["targets"]),
                            title=f"Fashion-MNIST test accuracy against minutes of training ({len(tta_rows)} runs; "
                                  f"dashed: the goal's {TIME_TO_ACCURACY_GOAL[1] // 60} minutes)").show()

# %%
Markdown(render_section("time_to_accuracy", figure=False) if tta else
         "Not yet run: `python benchmarks/time_to_accuracy.py` makes `figures/time_to_accuracy.json`.")

# %% [markdown]
# The same training from the shell, on your CPU (the README's example; 30 minutes, then
# `python -m vitlib evaluate --checkpoint runs/ft --dataset fashion_mnist --split test`):
#
# ```bash
# python -m vitlib finetune --dataset fashion_mnist --img-size 28 --recipe small-data --from-scratch --minutes 30 \
#     --val-fraction 0 --out-dir runs/ft
# ```
#
# `--from-scratch` trains the shipped model's architecture (ViT-Ti/4, 6 layers) from a random initialisation;
# without it, the shipped weights are fine-tuned (the `vit-shipped` arm). `--augment` changes the training images'
# augmentation (`vitlib.data.AUGMENTATIONS`; the small-data recipe's is `flip`): `none` is the `no-augmentation`
# arm, `crop-flip` the `crop-flip` arm. On a CPU that multiplies bf16 natively (`lscpu` lists `avx512_bf16` or
# `amx_bf16`) the tables above are the ones to expect; without it, bf16 is emulated, `precision="auto"` trains in
# fp32, and the same 30 minutes see far fewer images.

# %% [markdown]
# ## Against the paper
# The paper's transfer results come from pre-training on 14M-300M natural images and fine-tuning models up to
# 632M parameters; this miniature pre-trains a few million parameters on fractals and fine-tunes on grey 28 x 28
# images, so an answer here is about what this scale can show. Below: this profile's results file, rendered as
# in RESULTS.md (the full profile's is `figures/transfer.json`).

# %%
Markdown(render_section(path.stem, path.parent, figure=False) if path.exists() else
         f"No results file `{path.parent.name}/{path.name}` for the {profile} profile: {make} makes it.")

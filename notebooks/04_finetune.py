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
# # Fine-tuning a pre-trained ViT (Section 3.2)
#
# Reproduces, in miniature, the transfer recipe of Section 3.2 and Appendix B.1.1: remove the
# pre-training head, attach a zero-initialised D x K head, fine-tune with SGD (momentum 0.9, gradient
# clipping at 1, cosine decay with warm-up, no weight decay), at a *higher resolution* than pre-training
# with the position embeddings 2D-interpolated. The pre-trained model is vitlib's shipped ViT-Ti/8
# (pre-trained on procedural fractals at 32 px) or any checkpoint you pass (vitlib, official `.npz`, timm).
# It is compared with the same architecture trained from scratch with the same budget, and with the
# linear few-shot accuracy of its frozen features (Section 4.1).
#
# - Run time: `smoke` under a minute; `full` 18 minutes on the project's (throttled) 2-core CPU.
# - Expected: the surgery leaves a zero head (uniform predictions, loss = ln K) and an unchanged
#   embedding at the old resolution; the fine-tuned model trains. Whether fractal pre-training helps on
#   Fashion-MNIST at this budget is what the full profile measures (see figures/finetune_results.*):
#   **it did not** (the last cell gives the numbers).
# - Command: `papermill notebooks/04_finetune.ipynb out.ipynb -p profile full`
#   (CIFAR-10, if you have it: `-p dataset cifar10`).

# %%
import dataclasses
import math
import tempfile
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

import vitlib
from vitlib import fewshot
from vitlib.data import get_dataset
from vitlib.finetune import finetune_and_evaluate, load_pretrained, predict, prepare_finetune
from vitlib.plots import save_figure
from vitlib.train import finetune_recipe

# %% tags=["parameters"]
checkpoint = ""  # empty: the shipped model; else a vitlib checkpoint, an official .npz or a timm weights file
dataset = "fashion_mnist"  # any vitlib.data name: fashion_mnist, mnist5k, digits, cifar10 (if you have it)
img_size = 48  # fine-tuning resolution; pre-training was at the checkpoint's (32 for the shipped model)
steps = 0  # optimizer updates per run; 0: the profile's default
profile = "smoke"  # "smoke" (seconds, CI) or "full" (the figures)

# %%
torch.manual_seed(0)
np.random.seed(0)

# %%
SIZES = {  # full: 18 min on the project's 2-core CPU (4 runs of 60 steps); smoke: every path in seconds
    "smoke": dict(steps=3, batch_size=16, warmup_steps=1, n_train=64, n_test=32, shots=(1, 2)),
    "full": dict(steps=60, batch_size=32, warmup_steps=6, n_train=2000, n_test=1000, shots=(1, 5, 10, 25)),
}[profile]
STEPS = steps or SIZES["steps"]
recipe = finetune_recipe(steps=STEPS, batch_size=SIZES["batch_size"], warmup_steps=SIZES["warmup_steps"],
                         log_every=max(STEPS // 10, 1), eval_batch_size=128)
try:
    pretrained = load_pretrained(checkpoint)
    pre_note = f"pre-trained model: {checkpoint or 'shipped'} ({pretrained.cfg.img_size} px)"
except FileNotFoundError as e:  # a fresh clone before the shipped weights exist: the pre-trained arm is skipped
    pretrained, pre_note = None, f"SKIPPING the pre-trained arm: {e}"
base_cfg = pretrained.cfg if pretrained is not None else vitlib.vit_config("ViT-Ti/8", img_size=32, in_chans=1)
pre_res = base_cfg.image_hw[0]
resolutions = [img_size] if profile == "smoke" else sorted({pre_res, img_size})
print(pre_note, "| recipe:", recipe.optimizer, recipe.lr, recipe.schedule, "steps", STEPS, "| resolutions", resolutions)


# %%
def subset(data, n, seed=0):
    """The first n of a seeded permutation (the same images at every resolution)."""
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.utils.data.Subset(data, idx.tolist())


def splits(res):
    kw = dict(in_chans=base_cfg.in_chans)
    return (subset(get_dataset(dataset, "train", res, **kw), SIZES["n_train"]),
            subset(get_dataset(dataset, "test", res, **kw), SIZES["n_test"]))


data = {res: splits(res) for res in resolutions}
K = data[resolutions[0]][0].dataset.num_classes
classes = data[resolutions[0]][0].dataset.classes
print(dataset, "K =", K, {res: (len(tr), len(te)) for res, (tr, te) in data.items()})

# %% [markdown]
# ## The surgery
# > "For fine-tuning, we remove the pre-trained prediction head and attach a zero-initialized
# > $D \times K$ feedforward layer, where $K$ is the number of downstream classes." (Section 3.2)
#
# $$W_{\text{head}} = 0 \in \mathbb{R}^{D \times K} \quad\Rightarrow\quad p(y \mid x) = 1/K,\ \ \mathcal{L} = \ln K$$

# %%
source = pretrained if pretrained is not None else vitlib.VisionTransformer(base_cfg)
ft = prepare_finetune(source, num_classes=K, img_size=img_size)
x0, y0 = next(iter(torch.utils.data.DataLoader(data[img_size][0], batch_size=8)))
loss0 = torch.nn.functional.cross_entropy(ft(x0), torch.as_tensor(y0)).item()
print("head", tuple(ft.head.weight.shape), "| grid", source.grid, "->", ft.grid, "| initial loss", round(loss0, 4))

# %%
assert ft.head.weight.abs().sum() == 0 and ft.head.bias.abs().sum() == 0
assert abs(loss0 - math.log(K)) < 1e-5
assert ft.cfg.img_size == img_size and ft.grid == (img_size // ft.cfg.patch_size,) * 2

# %% [markdown]
# > "When feeding images of higher resolution, we keep the patch size the same, which results in a
# > larger effective sequence length. [...] We therefore perform 2D interpolation of the pre-trained
# > position embeddings, according to their location in the original image." (Section 3.2)
#
# $$N = \frac{HW}{P^2}:\quad \left(\frac{32}{8}\right)^2 = 16 \;\rightarrow\; \left(\frac{48}{8}\right)^2 = 36 \quad\text{(the shipped ViT-Ti/8, 32 to 48 px)}$$
#
# Below: four channels of $E_{pos}$ (class token left out) as images on the patch grid, before
# (top) and after (bottom) the interpolation.

# %%
def pos_grid(model):
    gh, gw = model.grid
    return model.pos_embed[0, model.cfg.num_prefix_tokens:].detach().reshape(gh, gw, -1)


channels = [0, 1, 2, 3]
before, after = pos_grid(source), pos_grid(ft)
fig = make_subplots(rows=2, cols=len(channels), vertical_spacing=0.08,
                    subplot_titles=[f"d={c}, {g.shape[0]}x{g.shape[1]}" for g in (before, after) for c in channels])
for row, g in enumerate((before, after), start=1):
    for col, c in enumerate(channels, start=1):
        fig.add_trace(go.Heatmap(z=g[:, :, c].numpy(), coloraxis="coloraxis"), row=row, col=col)
fig.update_yaxes(autorange="reversed")
fig.update_layout(title="Position embeddings before / after 2D interpolation", height=450, coloraxis_colorscale="RdBu")
fig.show()

# %%
same = prepare_finetune(source, num_classes=K, img_size=pre_res)
assert torch.equal(same.pos_embed, source.pos_embed)  # at the old resolution: unchanged
assert torch.equal(ft.pos_embed[:, :1], source.pos_embed[:, :1])  # the class token's embedding is kept
corners = after[:: after.shape[0] - 1, :: after.shape[1] - 1]
assert torch.allclose(corners, before[:: before.shape[0] - 1, :: before.shape[1] - 1], atol=1e-6)

# %% [markdown]
# ## Fine-tuning against training from scratch
# > "We fine-tune all ViT models using SGD with a momentum of 0.9. [...] we use batch size 512 for all
# > models [...] cosine decay with warm-up, gradient clipping at global norm 1, no weight decay."
# > (Appendix B.1.1)
#
# The scratch arm is the same architecture at the same resolution, freshly initialised (the official
# initialisation), trained with the same recipe and the same number of steps and images.

# %%
# NBVAL_IGNORE_OUTPUT
runs = {}
for res in resolutions:
    train_set, test_set = data[res]
    arms = {"scratch": vitlib.VisionTransformer(dataclasses.replace(base_cfg, img_size=res, num_classes=K,
                                                                    representation_size=None))}
    if pretrained is not None:
        arms["pre-trained"] = prepare_finetune(pretrained, num_classes=K, img_size=res)
    for arm, model in arms.items():
        torch.manual_seed(0)
        runs[(arm, res)] = finetune_and_evaluate(model, train_set, test_set, recipe)
        runs[(arm, res)]["model"] = model
        print(f"{arm:12s} {res:3d} px: test accuracy {runs[(arm, res)]['test_accuracy']:.4f} "
              f"({runs[(arm, res)]['seconds']:.0f} s)")

# %%
for (arm, res), r in runs.items():
    losses = [h["loss"] for h in r["history"]["train"]]
    assert all(math.isfinite(v) for v in losses) and 0 <= r["test_accuracy"] <= 1
    if profile == "full":
        assert losses[-1] < losses[0], (arm, res, losses)  # every arm learns
        assert r["test_accuracy"] > 1.5 / K  # and beats chance

# %% [markdown]
# ## Linear few-shot accuracy of the frozen features
# > "Few-shot accuracies are obtained by solving a regularized least-squares regression problem that
# > maps the (frozen) representation of a subset of training images to $\{-1, 1\}^K$ target vectors."
# > (Section 4.1)
#
# $$W = (X^\top X + \lambda I)^{-1} X^\top Y$$

# %%
# NBVAL_IGNORE_OUTPUT
train_set, test_set = data[pre_res] if pre_res in data else data[img_size]
res_fs = pre_res if pre_res in data else img_size
backbones = {"random init": prepare_finetune(vitlib.VisionTransformer(base_cfg), K, img_size=res_fs)}
if pretrained is not None:
    backbones["pre-trained"] = prepare_finetune(pretrained, K, img_size=res_fs)
few = {}
for name, model in backbones.items():
    ftr, ltr = fewshot.extract_features(model, train_set)
    fte, lte = fewshot.extract_features(model, test_set)
    few[name] = {s: fewshot.few_shot_accuracy(ftr, ltr, fte, lte, shots=s, num_classes=K) for s in SIZES["shots"]}
    print(name, {s: round(a, 4) for s, a in few[name].items()})

# %%
assert all(0 <= a <= 1 for accs in few.values() for a in accs.values())

# %% [markdown]
# ## What the fine-tuned model gets wrong
# Confusion matrix on the test images (rows: true class, columns: predicted).

# %%
best_key = max(runs, key=lambda k: runs[k]["test_accuracy"])
pred, true = predict(runs[best_key]["model"], data[best_key[1]][1])
cm = np.zeros((K, K), dtype=int)
np.add.at(cm, (true.numpy(), pred.numpy()), 1)
fig = go.Figure(go.Heatmap(z=cm, x=classes, y=classes, colorscale="Blues", text=cm, texttemplate="%{text}"))
fig.update_layout(title=f"Confusion matrix: {best_key[0]} at {best_key[1]} px", xaxis_title="predicted",
                  yaxis_title="true", yaxis_autorange="reversed", height=500)
fig.show()

# %%
assert cm.sum() == len(data[best_key[1]][1]) and np.trace(cm) / cm.sum() == runs[best_key]["test_accuracy"]

# %% [markdown]
# ## Results

# %%
# NBVAL_IGNORE_OUTPUT
results = dict(
    dataset=dataset, checkpoint=checkpoint or "shipped", profile=profile, steps=STEPS,
    batch_size=recipe.batch_size, n_train=SIZES["n_train"], n_test=SIZES["n_test"], pretrain_resolution=pre_res,
    pretrained_available=pretrained is not None,
    fine_tune={f"{arm}@{res}": dict(test_accuracy=r["test_accuracy"], seconds=round(r["seconds"], 1))
               for (arm, res), r in runs.items()},
    few_shot={name: {str(s): a for s, a in accs.items()} for name, accs in few.items()},
)
fig = make_subplots(rows=1, cols=2, subplot_titles=["Fine-tuned test accuracy", "Linear few-shot accuracy"])
for arm in ("pre-trained", "scratch"):
    xs = [res for (a, res) in runs if a == arm]
    fig.add_trace(go.Bar(name=f"fine-tune: {arm}", x=[f"{r} px" for r in xs],
                         y=[runs[(arm, r)]["test_accuracy"] for r in xs]), row=1, col=1)
for name, accs in few.items():
    fig.add_trace(go.Scatter(name=f"few-shot: {name}", x=list(accs), y=list(accs.values()), mode="lines+markers"),
                  row=1, col=2)
fig.update_xaxes(title_text="shots per class", type="log", row=1, col=2)
fig.update_layout(title=f"{dataset}: pre-trained vs scratch ({STEPS} steps x {recipe.batch_size} images)",
                  height=450)
out = Path("figures") if profile == "full" else Path(tempfile.mkdtemp())
save_figure(fig, out / "finetune_results", results, png=profile == "full",  # PNG export: ~30 s, full only
            command=f"papermill notebooks/04_finetune.ipynb out.ipynb -p profile {profile}")
fig.show()
print(results["fine_tune"])

# %% [markdown]
# **What the full profile showed** (2026-11-25, `figures/finetune_results.*`, one seed, 1,000 test
# images, chance 10%): fine-tuned from the shipped model 19.0% at 32 px and 20.0% at 48 px, from scratch
# 38.0% and 36.0%; linear few-shot (1/5/10/25 shots) 16.5/13.5/17.4/22.2% for the shipped model's
# features against 17.4/25.8/25.7/26.4% for a random initialisation's. Pre-training on 14,400 fractal
# images hurt transfer to clothing, and the higher resolution changed nothing beyond noise (+-3 points).
# The paper's result needs 14M-300M natural images; this miniature does not reproduce it.

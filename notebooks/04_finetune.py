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
# Reproduces, in miniature, the transfer recipe of Section 3.2 and Appendix B.1.1: remove the
# pre-training head, attach a zero-initialised D x K head, fine-tune with SGD (momentum 0.9, gradient
# clipping at 1, cosine decay with warm-up, no weight decay), at a *higher resolution* than pre-training
# with the position embeddings 2D-interpolated. The pre-trained model is vitlib's shipped ViT-Ti/8
# (pre-trained on procedural fractals at 32 px) or any checkpoint you pass (vitlib, official `.npz`, timm).
# It is compared with the same architecture trained from scratch with the same budget, and with the
# linear few-shot accuracy of its frozen features (Section 4.1).
#
# - Run time: `smoke` under a minute; `full` tens of minutes on a 2-core CPU (four fine-tuning runs; the
#   measured seconds of each are in `figures/finetune_results.json` and RESULTS.md).
# - Expected: the surgery leaves a zero head (uniform predictions, loss = ln K) and an unchanged
#   embedding at the old resolution; the fine-tuned model trains. Whether fractal pre-training helps on
#   Fashion-MNIST at this budget is what the full profile measures; the last cell shows its last run.
# - Command: `papermill notebooks/04_finetune.ipynb out.ipynb -p profile full`
#   (CIFAR-10, if you have it: `-p dataset cifar10`).

# %%
import dataclasses
import math

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown

import vitlib
from vitlib import fewshot, finetune
from vitlib.analysis import position_embedding_grid
from vitlib.finetune import confusion_matrix, finetune_and_evaluate, load_pretrained, predict, prepare_finetune
from vitlib.plots import confusion_figure, pos_embed_figure, transfer_figure
from vitlib.results import figures_dir, render_section, save_figure

# %% tags=["parameters"]
checkpoint = ""  # empty: the shipped model; else a vitlib checkpoint, an official .npz or a timm weights file
dataset = "fashion_mnist"  # any vitlib.data name: fashion_mnist, mnist5k, digits, cifar10 (if you have it)
img_size = 48  # fine-tuning resolution; pre-training was at the checkpoint's (32 for the shipped model)
steps = 0  # optimizer updates per run; 0: the profile's default
profile = "smoke"  # "smoke" (seconds, CI) or "full" (the figures)

# %%
torch.manual_seed(0)
np.random.seed(0)

# %% [markdown]
# The sizes of both profiles (`vitlib.finetune.PROFILES`), the recipe at this profile's size, the
# pre-trained model, and the same training and test images at every resolution.

# %%
pd.DataFrame(finetune.PROFILES)

# %%
sizes = finetune.PROFILES[profile]
recipe = finetune.recipe(profile, steps)
try:
    pretrained = load_pretrained(checkpoint)
    pre_note = f"pre-trained model: {checkpoint or 'shipped'} ({pretrained.cfg.img_size} px)"
except FileNotFoundError as e:  # a fresh clone before the shipped weights exist: the pre-trained arm is skipped
    pretrained, pre_note = None, f"SKIPPING the pre-trained arm: {e}"
base_cfg = pretrained.cfg if pretrained is not None else vitlib.vit_config("ViT-Ti/8", img_size=32, in_chans=1)
pre_res = base_cfg.image_hw[0]
resolutions = [img_size] if profile == "smoke" else sorted({pre_res, img_size})
data = finetune.transfer_data(dataset, resolutions, sizes["n_train"], sizes["n_test"], in_chans=base_cfg.in_chans)
K = data[resolutions[0]][0].dataset.num_classes
classes = data[resolutions[0]][0].dataset.classes
print(pre_note, "| recipe:", recipe.optimizer, recipe.lr, recipe.schedule, "steps", recipe.steps,
      "| resolutions", resolutions)
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
# ## Higher resolution: E_pos interpolated in 2D
# > "When feeding images of higher resolution, we keep the patch size the same, which results in a
# > larger effective sequence length. [...] We therefore perform 2D interpolation of the pre-trained
# > position embeddings, according to their location in the original image." (Section 3.2)
#
# $$N = \frac{HW}{P^2}:\quad \left(\frac{32}{8}\right)^2 = 16 \;\rightarrow\; \left(\frac{48}{8}\right)^2 = 36 \quad\text{(the shipped ViT-Ti/8, 32 to 48 px)}$$
#
# Below: four channels of $E_{pos}$ (class token left out) as images on the patch grid, before
# (top) and after (bottom) the interpolation.

# %%
before = position_embedding_grid(source.pos_embed, source.grid)
after = position_embedding_grid(ft.pos_embed, ft.grid)
pos_embed_figure({"before": before, "after": after}, title="04 · Position embeddings before / after 2D interpolation")

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
res_fs = pre_res if pre_res in data else img_size
train_set, test_set = data[res_fs]
backbones = {"random init": prepare_finetune(vitlib.VisionTransformer(base_cfg), K, img_size=res_fs)}
if pretrained is not None:
    backbones["pre-trained"] = prepare_finetune(pretrained, K, img_size=res_fs)
few = {}
for name, model in backbones.items():
    ftr, ltr = fewshot.extract_features(model, train_set)
    fte, lte = fewshot.extract_features(model, test_set)
    few[name] = {s: fewshot.few_shot_accuracy(ftr, ltr, fte, lte, shots=s, num_classes=K) for s in sizes["shots"]}
    print(name, {s: round(a, 4) for s, a in few[name].items()})

# %%
assert all(0 <= a <= 1 for accs in few.values() for a in accs.values())

# %% [markdown]
# ## What the fine-tuned model gets wrong
# Confusion matrix on the test images (rows: true class, columns: predicted).

# %%
best_key = max(runs, key=lambda k: runs[k]["test_accuracy"])
cm = confusion_matrix(*predict(runs[best_key]["model"], data[best_key[1]][1]), K)
confusion_figure(cm.numpy(), classes, title=f"04 · Confusion matrix: {best_key[0]} at {best_key[1]} px")

# %%
assert cm.sum() == len(data[best_key[1]][1])
assert cm.trace().item() / cm.sum().item() == runs[best_key]["test_accuracy"]

# %% [markdown]
# ## Results
# The full profile writes `figures/finetune_results.*` (HTML, PNG, and the JSON with these numbers and the
# run's provenance); the smoke profile writes to a temporary folder.

# %%
# NBVAL_IGNORE_OUTPUT
results = dict(
    dataset=dataset, checkpoint=checkpoint or "shipped", profile=profile, steps=recipe.steps,
    batch_size=recipe.batch_size, n_train=sizes["n_train"], n_test=sizes["n_test"], pretrain_resolution=pre_res,
    pretrained_available=pretrained is not None,
    fine_tune={f"{arm}@{res}": dict(test_accuracy=r["test_accuracy"], seconds=round(r["seconds"], 1))
               for (arm, res), r in runs.items()},
    few_shot={name: {str(s): a for s, a in accs.items()} for name, accs in few.items()},
)
fig = transfer_figure({k: r["test_accuracy"] for k, r in runs.items()}, few,
                      title=f"04 · Fine-tuning on {dataset}: pre-trained vs scratch "
                            f"({recipe.steps} steps x {recipe.batch_size} images)")
save_figure(fig, figures_dir(profile) / "finetune_results", results, png=profile == "full",
            command=f"papermill notebooks/04_finetune.ipynb out.ipynb -p profile {profile}")
fig

# %% [markdown]
# **The last full run**, rendered from `figures/finetune_results.json` (the same text as in RESULTS.md).
# Chance is 1/K; one seed. The paper's transfer result comes from pre-training on 14M-300M natural
# images; this miniature pre-trains on a few thousand fractals.

# %%
# NBVAL_IGNORE_OUTPUT
Markdown(render_section("finetune_results", figure=False))

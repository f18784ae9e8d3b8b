"""Study `pos_embed`: which position embedding? Appendix D.4's ablation (Table 8) in miniature.

The claim (paper.md, Appendix D.4, Table 8: ViT-B/16 pre-trained on ImageNet, 5-shot linear accuracy: no
position embedding 0.614, 1-D 0.642, 2-D 0.640, relative 0.640): any position embedding helps, which kind
barely matters. The paper's words: "while there is a large gap between the performances of the model with no
positional embedding and models with positional embedding, there is little to no difference between different
ways of encoding positional information", and its reason: on a grid of patches (14 x 14, not 224 x 224 pixels)
"learning to represent the spatial relations in this resolution is equally easy for these different positional
encoding strategies". The four kinds are `ViTConfig.pos_embed` = "none", "learned" (1-D, Eq. 1), "learned_2d"
and "relative" (vitlib.model's docstring describes each); notebook 02's patch-shuffle experiment shows why
"none" sees a bag of patches.

Design (full profile), fixed before the full run:
- model: ViT-Ti/4 with L=4 at 32 px (`protocol.MODELS["ViT-Ti/4 L=4"]`, the scaling study's smallest ViT: an
  8 x 8 grid and a class token, 65 tokens; 1.86M parameters), once per kind and nothing else changed. With
  the same seed the patch embedding and the encoder start identical for every kind (init_weights draws the
  position tables after them; only the pre-logits layer, drawn after those, differs too;
  tests/test_ablation_studies.py checks it), and the images come in the same order;
- pre-training: `fractaldb`, 100 categories x 300 images (30,000; the scaling study's 30,000 size, so the
  same rendering and cache), colourised IFS fractals whose class depends on the shape, so where a patch sits
  matters; 32,768 images seen (256 steps of 128, about 1.1 epochs) with the scaling study's recipe
  (vitlib.train.pretrain_recipe: Adam, weight decay 0.1, warm-up then linear decay, clipping at 1); the
  final state is kept: at about one epoch there is no overfitting to select against, and the masked patch
  prediction study (vitlib.experiments.mpp), which shares this protocol, has no labelled validation for its
  self-supervised arm;
- evaluation on a held-out real dataset, Fashion-MNIST: Table 8's metric, the closed-form linear few-shot
  probe (5 and 10 shots, l2 = 2^10; pool of 2,000 training images; the whole test split, 10,000 images),
  on the representation the pre-trained model gives its head (`protocol.probe_features`, as Fig. 4); and
  fine-tuning on 2,000 training images with the transfer study's protocol (`protocol.finetune_run`: Appendix
  B.1.1's SGD recipe, 12,800 images seen in steps of 64), tested once on the 10,000 test images; plus the
  pre-training task's own accuracy on held-out fractals (10 per category);
- seeds 0 and 1 (each sets the initialisation, the data order and the few-shot draw); a third seed is one
  flag away (`--seeds 0 1 2` keeps the rows already run). Accuracies carry 95% Wilson intervals; the mean
  over seeds uses the interval at one run's test-set size, and the table shows the lowest and highest seed.
What would count as reproducing the claim (`verdict` reads it from the rows): on the 5-shot
probe every kind with position information above "none" beyond the intervals, and the three kinds within
each other's intervals. Partly: one half of that. Not: no kind above "none".

Budget in images seen: full 364,544 (8 runs of 32,768 pre-training + 12,800 fine-tuning images); estimated,
not measured: about 30 minutes on a quiet 2-core CPU in fp32 (~250 images/s for this model, plus feature
extraction and tests); smoke 4 tiny runs (seconds); gpu 262,144 pre-training and 51,200 fine-tuning images
per run, 100,000 fractals, 5 seeds.

The long profile, written after the full run and before its own (figures/pos_embed_long.json; the full
profile's rows stay as they were run): the full run's pre-training task stayed a few times above chance on
held-out fractals (figures/pos_embed.json, mpp.json), so its verdict says little about Table 8. Two
measurements say why and what to change: the scaling study's pilot (figures/scaling_pilot.json) showed that
at a fixed number of images, 512 steps of 32 teach these models far more than 128 steps of 128, and the
shipped model's learning curve (figures/pretrain_fractal_vit.json, steps of 128) took off only after some
tens of thousands of images and kept rising to its end. So the long profile changes the budget and nothing
else: 131,072 images in 4,096 steps of 32 (16x the full profile's steps, 4x its images), on 100,000 fractals
(the shipped model's corpus, about 1.3 epochs, so no image is repeated much). Everything that is evaluated
stays the same. Budget: 1,150,976 images seen (8 runs of 131,072 + 12,800); estimated from the pilot's
speed (about 200 images/s for this model at batch 32 on a quiet 2-core CPU): about 100 minutes, in parts.
What would count is unchanged; if the pre-training task is still below 10% held-out, the answer stays
"budget too small" whatever the probe says.
Seeds 2 and 3 of the long profile, written after its seeds 0 and 1 had run and before these two: with two
seeds the rule's first half held (seed by seed too) and its second could not be read: the gaps between the
kinds were about as large as the spread between two seeds of one kind (the "seeds" ranges in
figures/pos_embed_long.json), which the intervals, taken at one run's test-set size, leave out; and two seeds
against two separate completely by chance one time in three (vitlib.stats.separation_chance). So the long
profile runs 4 seeds (8 more runs, nothing else changed), and the answer is read seed by seed beside the rule
above, which stays as it was: two kinds differ when every seed of one lies above every seed of the other
(vitlib.stats.seed_order; by chance 2 in 70 at 4 seeds each) on both the 5-shot probe and fine-tuning; the
kinds are alike when no two kinds with position information separate on either; anything between is
undecided. Budget with 4 seeds: 2,301,952 images seen (16 runs of 131,072 + 12,800).

Command: `python -m vitlib experiment pos_embed --profile full` (resumable; `--limit N` runs N more rows);
`--profile long` for the longer pre-training.
Notebook 08 draws the figure; RESULTS.md renders the table beside Table 8 (`render`).

Deviations from the paper: the scale (ViT-Ti/4 L=4 on 30,000 fractals at 32 px, not ViT-B/16 on ImageNet at
224 px; a grid of 8 x 8 patches, not 14 x 14); the probe's dataset (Fashion-MNIST, not ImageNet); fine-tuning
accuracy added beside the paper's few-shot metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..flops import count_parameters
from ..markdown import acc_ci, pct, runs_line, seed_by_seed, shot_metric, table
from ..paper import TABLE8, TABLE8_NAMES
from ..stats import arm_means, compare, fewest_seeds, seed_order
from . import protocol
from .protocol import Protocol, planned_images
from .runner import param, profile_sections, scheduled_images

__all__ = ["NAME", "EMBEDDINGS", "Config", "PROFILES", "expand", "run_row", "planned_images", "position_verdict",
           "position_seed_verdict", "answer", "render", "claims", "RESULTS"]

NAME = "pos_embed"
EMBEDDINGS = ("none", "learned", "learned_2d", "relative")  # Table 8's rows, in its order (ViTConfig.pos_embed)


@dataclass(frozen=True)
class Config(Protocol):
    """The pos_embed study's knobs (one instance per profile in PROFILES; the CLI's flags): the shared Protocol
    (vitlib.experiments.protocol) and the position embeddings compared."""

    embeddings: tuple[str, ...] = param(EMBEDDINGS, "position embeddings (ViTConfig.pos_embed: none, learned, "
                                        "learned_2d, relative)")

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.embeddings) - set(EMBEDDINGS))
        if unknown:
            raise ValueError(f"unknown position embedding(s) {unknown}; known: {', '.join(EMBEDDINGS)}")


# the ablations' protocol in each profile (long: why, in the docstring)
PROFILES: dict[str, Config] = {name: Config(**protocol.shared_fields(p))
                              for name, p in protocol.PROTOCOL_PROFILES.items()}


def expand(cfg: Config) -> list[dict[str, Any]]:
    """The runs, seed by seed (seed 0's four embeddings first, so that a study cut short compares every one); a
    row's arm is its position embedding."""
    return [dict(key=f"{emb}/s{seed}", kind="pretrain", arm=emb, corpus="fractaldb", size=cfg.fractal_size,
                 seed=seed, probe=cfg.probe_dataset) for seed in cfg.seeds for emb in cfg.embeddings]


def run_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    """Pre-train the model with one position embedding, then probe and fine-tune it."""
    seed = spec["seed"]
    train_set, val_set = protocol.pretraining_corpus(cfg, seed)
    torch.manual_seed(seed)
    model = protocol.build_vit(cfg, train_set.num_classes, pos_embed=spec["arm"])
    pre = protocol.pretrain(model, train_set, cfg, seed)
    metrics = dict(protocol.held_out_accuracy(model, val_set), pretrain_loss_first=pre["loss_first"],
                   pretrain_loss_last=pre["loss_last"])
    after = protocol.transfer_metrics(model, cfg, seed, cache)
    return dict(model=protocol.vit_name(model), pos_embed=spec["arm"], parameters=count_parameters(model),
                n_train=len(train_set), pretrain_images=pre["images_seen"], finetune_images=after["images_seen"],
                images_seen=pre["images_seen"] + after["images_seen"],
                epochs=round(pre["images_seen"] / len(train_set), 3),
                train_flops=pre["train_flops"] + after["train_flops"], metrics={**metrics, **after["metrics"]})


# --- what the rows say ----------------------------------------------------------------------------------------------


def _stats(r: dict) -> tuple[list[dict], list[str], list[str], dict[str, dict[str, dict[str, Any]]]]:
    """figures/pos_embed*.json's rows of Table 8's kinds, the kinds (Table 8's order), probe metrics and
    {metric: {kind: seed_mean}}."""
    c = r["config"]
    rows = [x for x in r["rows"] if x["arm"] in TABLE8]
    kinds = [k for k in TABLE8 if k in c["embeddings"]]
    shots = [f"{s}shot" for s in c["shots"]]
    stats = {m: arm_means(rows, m, "probe_n") for m in shots}
    stats.update(finetune_accuracy=arm_means(rows, "finetune_accuracy", "finetune_n"),
                 val_accuracy=arm_means(rows, "val_accuracy", "val_n"))
    return rows, kinds, shots, stats


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


def _reason(stats: dict[str, dict[str, Any]], kinds: list[str]) -> str:
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


def position_seed_verdict(rows: list[dict], metrics: list[str], kinds: list[str]) -> tuple[str, str]:
    """Table 8's claim read seed by seed, the rule written before the long profile's seeds 2 and 3
    (the docstring): two kinds differ when every seed of one lies above every seed of the other
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


# --- how it renders -------------------------------------------------------------------------------------------------


def answer(r: dict) -> str:
    """Table 8's claim judged on a pos_embed study's rows (`position_verdict`, with its reasons), on the few-shot
    probe (Table 8's metric) and on fine-tuned accuracy; then seed by seed (`seed_order`), the pairs of kinds whose
    seeds do not interleave and the chance of that with no difference (`separation_chance`)."""
    rows, kinds, _, stats = _stats(r)
    shot, ft = shot_metric(r["config"]["shots"]), stats["finetune_accuracy"]
    return (f"Table 8's claim, \"any position embedding helps, which kind barely matters\", on the "
            f"{shot[:-4]}-shot probe (Table 8's metric): **{position_verdict(stats[shot], kinds)}** "
            f"({_reason(stats[shot], kinds)}). The same rule on fine-tuned accuracy: "
            f"**{position_verdict(ft, kinds)}** ({_reason(ft, kinds)})."
            + seed_by_seed(rows, {f"{shot[:-4]}-shot": shot, "fine-tuned": "finetune_accuracy"}, kinds, TABLE8_NAMES)
            + _seed_reading(rows, [shot, "finetune_accuracy"], kinds))


def _seed_reading(rows: list[dict], metrics: list[str], kinds: list[str]) -> str:
    if "none" not in kinds or fewest_seeds(rows, kinds) < 2:
        return ""
    helps, which = position_seed_verdict(rows, metrics, kinds)
    return (f" Read seed by seed on both metrics (`position_seed_verdict`): \"any position embedding helps\" "
            f"**{helps}**; \"which kind barely matters\" **{which}**.")


def render(r: dict, p: dict) -> str:
    """figures/pos_embed.json (vitlib.experiments.pos_embed): the table beside Table 8 and the claim's verdict."""
    c = r["config"]
    rows, kinds, shots, stats = _stats(r)
    cells = [[TABLE8_NAMES[k], pct(TABLE8[k])] + [acc_ci(stats[m].get(k)) for m in shots]
             + [acc_ci(stats["finetune_accuracy"].get(k)), acc_ci(stats["val_accuracy"].get(k))] for k in kinds]
    images = scheduled_images(c["images_per_run"], c["batch_size"])
    text = (f"`{c['model']}` pre-trained on {c['fractal_size']:,} fractals ({c['fractal_classes']} categories, "
            f"{images:,} images seen), once per position embedding; then the linear few-shot probe of its frozen "
            f"features and fine-tuning on {c['finetune_size']:,} images, both on `{c['probe_dataset']}`. Mean over "
            "seeds, its 95% Wilson interval at one run's test-set size, and the lowest and highest seed. The "
            "paper's column: ViT-B/16 on ImageNet, 5-shot (Table 8).\n\n"
            + table(["position embedding", "Table 8 (paper)"] + [f"{m[:-4]}-shot" for m in shots]
                   + ["fine-tuned", "pre-training task (held-out fractals)"], cells))
    return text + "\n\n" + answer(r) + "\n\n" + runs_line(rows, r)


def claims(r: dict, stem: str) -> list[list[str]]:
    """The README's row (claim, the paper, here, verdict, where to read more) from figures/STEM.json."""
    rows, kinds, _, stats = _stats(r)
    shot = shot_metric(r["config"]["shots"])
    s = stats[shot]
    if any(k not in s for k in kinds) or "none" not in kinds:
        return []
    others = [s[k]["mean"] for k in kinds if k != "none"]
    here = (f"{shot[:-4]}-shot: none {pct(s['none']['mean'])}, the others {pct(min(others))}-{pct(max(others))} "
            f"({len({x['seed'] for x in rows})} seeds)")
    helps, which = (position_seed_verdict(rows, [shot, "finetune_accuracy"], kinds)
                    if fewest_seeds(rows, kinds) >= 2 else ("-", "-"))
    return [["Any position embedding helps, which kind barely matters (Table 8)",
             f"5-shot: none {pct(TABLE8['none'])}, the others {pct(min(TABLE8[k] for k in TABLE8 if k != 'none'))}-"
             f"{pct(max(TABLE8.values()))}",
             here, f"{position_verdict(s, kinds)}; seed by seed: helps {helps}, kind {which}",
             f"notebook 08, RESULTS.md (`{stem}`)"]]


# results file -> (RESULTS.md section title, renderer; None: its scalars)
RESULTS = {
    "pos_embed": ("Appendix D.4, Table 8 in miniature: which position embedding? "
                  "(`python -m vitlib experiment pos_embed --profile full`)", render),
    "table8_pos_embed": ("Table 8 beside the miniature: position embeddings (notebook 08)", None),
    **profile_sections(NAME, "Table 8", render, ("gpu", "long"),
                       {"long": "4x the images, 16x the steps of pre-training"}),
    "table8_pos_embed_long": ("Table 8 beside the miniature, the long profile (notebook 08)", None),
}

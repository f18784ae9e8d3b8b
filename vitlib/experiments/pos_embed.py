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
What would count as reproducing the claim (`position_verdict` reads it from the rows; the rules as they stand were
written after the first results, see below), each half on the 5-shot probe (Table 8's metric) and, the same rule,
on fine-tuned accuracy beside it:
- "any position embedding helps": each kind with position information against "none" by Welch's t over seeds
  (vitlib.stats.compare: two-sided, p < 0.05; it takes each seed's accuracy as an independent, roughly normal draw
  and needs 2 seeds a kind). Reproduced: all three ahead. Partly reproduced: some ahead, none behind or level.
  Not reproduced: a kind behind, or equivalent to "none" within the margin below. Undecided: otherwise;
- "which kind barely matters": two one-sided tests (vitlib.stats.equivalent) for every pair of kinds with position
  information, margin MARGIN = 1.0 point: the pair is alike when the 90% interval of its difference over seeds lies
  within 1 point either way. Why 1 point: in Table 8 the kinds span 0.2 points while "none" is 2.6-2.8 points below
  them; 1 point is about a third of the effect the claim contrasts them with. Reproduced: every pair alike. Not
  reproduced: a pair told apart (Welch's t, p < 0.05) and not alike. Undecided: otherwise, e.g. seeds too few or
  too variable for the interval to fit inside the margin. A pair both alike and told apart (a real difference
  smaller than the margin) counts as alike, and a kind so placed against "none" counts as level: the margin says
  what is small enough to ignore;
- not testable at this budget, both halves: the pre-training task's held-out accuracy, the mean over the results
  file's runs, below 10% (protocol.LEARNED; 100 categories, chance 1%): the design's "below 10% held-out: budget
  too small" (the long profile's paragraph), now read by the verdict itself (protocol.why_not_testable).
Why the rules changed after the first results: the first compared 95% Wilson intervals of a seed mean at one
run's test-set size, which leave out the seed-to-seed variance (initialisation, data order, few-shot draw), so
"above" and "apart" were read where Welch's t over seeds gives p 0.15-0.39; and the seed-by-seed reading added
before the long profile's seeds 2 and 3 (below) said "which kind barely matters: holds" whenever no two kinds
separated completely on both metrics, a rule that could barely fail: with 4 seeds a side complete separation
happens about 14% of the time at a true difference of one seed standard deviation (49% at two), and needing it on
both metrics makes "does not hold" rarer still. A claim of no difference needs an equivalence test with a stated
margin. `seed_order` and `separation_chance` stay as description (`answer`); they no longer decide. The first
rules' verdicts stay in the history of RESULTS.md.

Budget in images seen: full 364,544 (8 runs of 32,768 pre-training + 12,800 fine-tuning images); estimated,
not measured: about 30 minutes on a quiet 2-core CPU in fp32 (~250 images/s for this model, plus feature
extraction and tests); smoke 4 tiny runs (seconds); gpu 262,144 pre-training and 51,200 fine-tuning images
per run, 100,000 fractals, 5 seeds: 20 runs, 6.3M images, estimated (not measured) at about 30,000 images/s
on one current data-centre GPU with the data on the device plus rendering the fractals and about 10 s a run
for start-up and features: about 10 minutes.

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
"budget too small" whatever the probe says (the verdict "not testable at this budget").
Seeds 2 and 3 of the long profile, written after its seeds 0 and 1 had run and before these two: with two
seeds the rule's first half held (seed by seed too) and its second could not be read: the gaps between the
kinds were about as large as the spread between two seeds of one kind (the "seeds" ranges in
figures/pos_embed_long.json), which the intervals, taken at one run's test-set size, leave out; and two seeds
against two separate completely by chance one time in three (vitlib.stats.separation_chance). So the long
profile runs 4 seeds (8 more runs, nothing else changed), and the answer is read seed by seed beside the rule
above, which stays as it was: two kinds differ when every seed of one lies above every seed of the other
(vitlib.stats.seed_order; by chance 2 in 70 at 4 seeds each) on both the 5-shot probe and fine-tuning; the
kinds are alike when no two kinds with position information separate on either; anything between is
undecided. Budget with 4 seeds: 2,301,952 images seen (16 runs of 131,072 + 12,800). (That seed-by-seed rule was
replaced after the results, with the intervals' rule: What would count, above.)

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
from ..markdown import acc_ci, difference, pct, runs_line, seed_by_seed, shot_metric, table
from ..paper import TABLE8, TABLE8_NAMES
from ..stats import NOT_TESTABLE, ahead_verdict, alike_verdict, arm_means, equivalent, side
from . import protocol
from .protocol import Protocol, planned_images
from .runner import param, profile_sections, scheduled_images

__all__ = ["NAME", "EMBEDDINGS", "Config", "PROFILES", "expand", "run_row", "planned_images", "MARGIN",
           "position_verdict", "answer", "render", "claims", "RESULTS"]

NAME = "pos_embed"
EMBEDDINGS = ("none", "learned", "learned_2d", "relative")  # Table 8's rows, in its order (ViTConfig.pos_embed)
MARGIN = 0.01  # "which kind barely matters": two kinds within 1 point are alike (the docstring says why)
N_KEYS = {"finetune_accuracy": "finetune_n", "val_accuracy": "val_n"}  # a metric's test-set size (probes: probe_n)


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


def _pairs(kinds: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(kinds) for b in kinds[i + 1:]]


def position_verdict(rows: list[dict], metric: str, kinds: list[str]) -> tuple[str, str]:
    """Table 8's two halves on `metric` of the rows (the docstring's rules): ("any position embedding helps", "which
    kind barely matters"), each a verdict of vitlib.stats.VERDICTS: not testable at this budget when the
    pre-training task was not learned (`protocol.why_not_testable`), or "not yet run" while a kind has no rows."""
    stats = arm_means(rows, metric, N_KEYS.get(metric, "probe_n"))
    others = [k for k in kinds if k != "none"]
    if "none" not in kinds or not others or any(k not in stats for k in kinds):
        return "not yet run", "not yet run"
    if protocol.why_not_testable(rows):
        return NOT_TESTABLE, NOT_TESTABLE
    seeds = {k: stats[k]["values"] for k in kinds}
    return (ahead_verdict([side(seeds[k], seeds["none"], MARGIN) for k in others]),
            alike_verdict([side(seeds[a], seeds[b], MARGIN) for a, b in _pairs(others)]))


def _reasons(stats: dict[str, dict[str, Any]], kinds: list[str]) -> tuple[str, str]:
    """The numbers behind each half of `position_verdict`: each kind against "none" (Welch's t); each pair of kinds
    with position information, its 90% interval against the margin (two one-sided tests)."""
    name, seeds = TABLE8_NAMES.get, {k: stats[k]["values"] for k in kinds}
    others = [k for k in kinds if k != "none"]
    helps = "against no position embedding: " + ", ".join(
        f"{name(k, k)} {difference(seeds[k], seeds['none'], interval=False)}" for k in others)
    pairs = []
    for a, b in _pairs(others):
        ci = equivalent(seeds[a], seeds[b], MARGIN)["ci90"]
        inside = f"90% interval [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "no interval"
        pairs.append(f"{name(a, a)} minus {name(b, b)} {difference(seeds[a], seeds[b], interval=False)}, {inside}")
    return helps, (f"alike needs the 90% interval inside {100 * MARGIN:.0f} point either way: " + "; ".join(pairs))


# --- how it renders -------------------------------------------------------------------------------------------------


def answer(r: dict) -> str:
    """Table 8's claim judged on a pos_embed study's rows (`position_verdict`), on the few-shot probe (Table 8's
    metric) and on fine-tuned accuracy, with the numbers behind each half; then, as description only, the pairs of
    kinds whose seeds do not interleave and the chance of that with no difference (vitlib.markdown.seed_by_seed)."""
    rows, kinds, _, stats = _stats(r)
    shot = shot_metric(r["config"]["shots"])
    metrics = {f"the {shot[:-4]}-shot probe (Table 8's metric)": shot, "fine-tuned accuracy": "finetune_accuracy"}
    verdicts = {label: position_verdict(rows, m, kinds) for label, m in metrics.items()}
    first = verdicts[next(iter(metrics))][0]
    if first == NOT_TESTABLE:
        text = (f"Table 8's claim: **{NOT_TESTABLE}** ({protocol.why_not_testable(rows)}), both halves on both "
                "metrics. What the rows show all the same.")
    else:
        text = (f"Table 8's claim, judged over seeds (Welch's t; \"barely matters\": two one-sided tests, margin "
                f"{100 * MARGIN:.0f} point): " + "; ".join(
                    f"on {label}, \"any position embedding helps\" **{h}**, \"which kind barely matters\" **{w}**"
                    for label, (h, w) in verdicts.items()) + ".")
    if first != "not yet run":
        text += " " + " ".join(f"{label[0].upper() + label[1:]}: {'; '.join(_reasons(stats[m], kinds))}."
                               for label, m in metrics.items())
    return text + seed_by_seed(rows, {f"{shot[:-4]}-shot": shot, "fine-tuned": "finetune_accuracy"}, kinds,
                               TABLE8_NAMES)


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
    why = protocol.why_not_testable(rows)
    readings = {f"{shot[:-4]}-shot": shot, "fine-tuned": "finetune_accuracy"}
    verdict = f"{NOT_TESTABLE} ({why})" if why else "; ".join(
        "{}: helps {}, kind {}".format(label, *position_verdict(rows, m, kinds)) for label, m in readings.items())
    return [["Any position embedding helps, which kind barely matters (Table 8)",
             f"5-shot: none {pct(TABLE8['none'])}, the others {pct(min(TABLE8[k] for k in TABLE8 if k != 'none'))}-"
             f"{pct(max(TABLE8.values()))}", here, verdict, f"notebook 08, RESULTS.md (`{stem}`)"]]


# results file -> (RESULTS.md section title, renderer; None: its scalars)
RESULTS = {
    "pos_embed": ("Appendix D.4, Table 8 in miniature: which position embedding? "
                  "(`python -m vitlib experiment pos_embed --profile full`)", render),
    "table8_pos_embed": ("Table 8 beside the miniature: position embeddings (notebook 08)", None),
    **profile_sections(NAME, "Table 8", render, ("gpu", "long"),
                       {"long": "4x the images, 16x the steps of pre-training"}),
    "table8_pos_embed_long": ("Table 8 beside the miniature, the long profile (notebook 08)", None),
}

"""Study `scaling`: transfer against pre-training data and compute, ViT vs ResNet vs hybrid (Fig. 3, 4, 5).

The paper's headline in miniature (notebook 05). The claim (paper.md, Fig. 3-5, Section 4.2-4.3): with
little pre-training data the ResNet's inductive bias wins; as the data grows ViT catches up and overtakes
it; per unit of pre-training compute ViT is the better deal, and hybrids beat ViT at small budgets.

Design (full profile):
- models at 28x28 (the native resolution of Fashion-MNIST and MNIST), each with a 7x7 grid of tokens or
  feature cells and within 2x of each other in FLOPs (`MODELS`): ViT-Ti/4 with L=4 and L=8 (two ViT sizes),
  a BiT-R26x1 with the CIFAR stem and base width 32 (GroupNorm + Weight Standardization) and the hybrid
  R+ViT-Ti/4 with L=4 (the ResNet root, then ViT on its /4 map with 1x1 patches);
- pre-training corpora at 5 sizes spanning 2 orders of magnitude: `fractaldb` (100 categories, 1,000 to
  100,000 images) and random subsets of Fashion-MNIST train (540 to all 54,000);
- one schedule for every size: 16,384 images seen (512 steps of 32, Adam, wd 0.1, warm-up then linear
  decay: Appendix B.1's recipe, vitlib.train.pretrain_recipe), so a 1,000-image set is seen 16 times and
  overfits (Section 4.3), while the largest sets are seen about once: at this budget the largest sizes
  measure the compute limit, not the data limit (the gpu profile's 262,144 images lift it);
- the best validation checkpoint is kept (validation every 64 steps on a held-out split that never
  changes with the size: the fractal test split of 10 images per category, 1,000 Fashion-MNIST validation
  images), as the paper selects its checkpoints;
- transfer is Fig. 4's protocol: the closed-form linear few-shot probe (5 and 10 shots, l2 = 2^10) on
  frozen features of a held-out real dataset: Fashion-MNIST test after fractal pre-training, MNIST-5k
  after Fashion-MNIST pre-training (the pool: 200 training images per class; 2,000 test images); plus the
  best accuracy on the pre-training task's own held-out split;
- seeds 0, 1, 2 at the two smallest sizes of each corpus, seed 0 elsewhere (a seed sets the initialisation
  and the data order, and for Fashion-MNIST the subset; the fractal corpus of a size is one rendering);
  every accuracy carries a 95% Wilson interval;
- fp32: on this project's CPUs (no native bf16) bf16 autocast trains several times slower than fp32
  (figures/train_speed.json), so it buys nothing here; the gpu profile uses bf16. torch.compile, measured
  only after the sweep had run (figures/train_speed_compiled.json), trains no faster than eager on this CPU,
  so the sweep's mode was the fastest one measured.
Changed before the full run, after a pilot (its rows and numbers: figures/scaling_pilot.json, rendered in
RESULTS.md and notebook 05; seed 0, 10,000 fractals of 100 categories, 16,384 images): the first design used
32x32 and 128 steps of 128. At that batch neither model got far above chance on the held-out fractals; the
same images in 512 steps of 32, in about the same time, taught the ResNet several times more: 128
optimizer steps were too few, so the study would have compared barely trained models. Hence batch 32. And
28x28: the real datasets' own resolution (32 only upsampled them), faster for the ViTs (the pilot's times),
which buys the whole grid in one schedule. The pilot also tried 10 fractal categories at 28x28: the ViT
learns that task well above chance but its Fashion-MNIST few-shot accuracy hardly moved, and the ResNet
solved it while its few-shot accuracy fell, so the corpus stays at 100 categories, the one the rest of the
project uses. The schedule stays at 16,384 images (a budget
of about 2-3 quiet CPU-hours for the grid): the study is compute-limited by design, said next to its
figures. Added at the same time: each model probed once untrained (8 rows of seconds), the level its
pre-trained features have to beat.
What would count as reproducing the claim: at the smallest sizes the ResNet's few-shot accuracy above both
ViTs' beyond the intervals, and the ViTs' curves rising faster with size so that at the largest size a ViT
matches or beats it (Fig. 3/4); against training FLOPs, ViT on or above the ResNet's curve and the hybrid
above ViT at the smallest budgets (Fig. 5). Partly: the orderings at one end only. Not: ResNet ahead at
every size, or no trend with size.

Budget in images seen: full 1,179,648 (72 runs of 16,384: 4 models x 2 corpora x (3 + 3 + 1 + 1 + 1) seeds
and sizes, plus 8 untrained probes; about 2.5 hours of quiet 2-core CPU in fp32, in parts; each row's
measured time is in its provenance in figures/scaling.json);
smoke 2 tiny models x 2 sizes of Fashion-MNIST (under a minute); gpu 262,144 images per run, 5 seeds at the
two smallest sizes.

Command: `python -m vitlib experiment scaling --profile full` (resumable; `--limit N` runs N more rows).
Figures: vitlib.plots.scaling_figure (Fig. 3/4: few-shot accuracy vs pre-training set size per model;
Fig. 5: vs total training FLOPs); RESULTS.md renders the table.

Deviations from the paper: the data (fractals and Fashion-MNIST instead of ImageNet/I21k/JFT; 10^5 images
at most, not 3 x 10^8), the models (Ti-sized, 28 px), the schedule (16,384 images, batch 32).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from ..flops import count_parameters
from ..markdown import VERSUS, acc_ci, runs_line, shot_metric, table
from ..stats import compare, group, seed_mean, wilson_interval
from ..train import pretrain_recipe, train
from .protocol import MODELS, build_model, pretraining_data, probe_features, probe_metrics
from .runner import StudyConfig, param, profile_sections, scheduled_images, training_flops

__all__ = ["NAME", "PROBE", "Config", "PROFILES", "expand", "run_row", "planned_images", "curves", "untrained",
           "verdicts", "answer", "render", "render_pilot", "claims", "RESULTS"]

NAME = "scaling"

# Pre-training corpus -> the held-out real dataset of the few-shot probe (Fig. 4's protocol).
PROBE = {"fractaldb": "fashion_mnist", "fashion_mnist": "mnist5k"}


@dataclass(frozen=True)
class Config(StudyConfig):
    """The scaling study's knobs (one instance per profile in PROFILES; the CLI's flags)."""

    models: tuple[str, ...] = param(("ViT-Ti/4 L=4", "ViT-Ti/4 L=8", "BiT-R26x1 w32", "R+ViT-Ti/4 L=4"),
                                    "models (names of vitlib.experiments.protocol.MODELS)")
    corpora: tuple[str, ...] = param(("fractaldb", "fashion_mnist"), "pre-training corpora (fractaldb, "
                                     "fashion_mnist)")
    fractal_sizes: tuple[int, ...] = param((1000, 3000, 10000, 30000, 100000),
                                           "fractaldb sizes in images (fractal_classes categories)")
    fashion_sizes: tuple[int, ...] = param((540, 1700, 5400, 17000, 54000), "Fashion-MNIST train subset sizes")
    fractal_classes: int = param(100, "fractaldb categories")
    seeds: tuple[int, ...] = param((0, 1, 2), "seeds of the smallest sizes (the others: the first seed)")
    seeded_sizes: int = param(2, "how many of the smallest sizes of each corpus get every seed")
    images_per_run: int = param(16384, "pre-training schedule of every run, in images seen")
    batch_size: int = param(32, "pre-training batch size")
    eval_every: int = param(64, "validate every N steps; the best validation state is kept")
    n_val: int = param(1000, "held-out images of the pre-training task (fractaldb: 10 per category)")
    shots: tuple[int, ...] = param((5, 10), "few-shot probe: images per class")
    probe_pool: int = param(2000, "few-shot probe: training images the shots are drawn from (stratified)")
    probe_test: int = param(2000, "few-shot probe: test images")
    img_size: int = param(28, "resolution H = W")


PROFILES: dict[str, Config] = {
    "smoke": Config(models=("ViT-tiny/8 L=1", "BiT-R w32 tiny"), corpora=("fashion_mnist",),
                    fashion_sizes=(100, 300), seeds=(0,), images_per_run=64, batch_size=16, eval_every=2,
                    n_val=32, shots=(1, 5), probe_pool=50, probe_test=50, img_size=32),
    "full": Config(),
    "gpu": Config(fractal_sizes=(1000, 10000, 100000, 300000, 1000000), seeds=(0, 1, 2, 3, 4),
                  images_per_run=262_144, batch_size=512, eval_every=256, probe_test=10000,
                  probe_pool=10000, precision="bf16"),
}


def _sizes(cfg: Config, corpus: str) -> tuple[int, ...]:
    if corpus not in PROBE:
        raise ValueError(f"unknown corpus {corpus!r}; known: {', '.join(PROBE)}")
    return cfg.fractal_sizes if corpus == "fractaldb" else cfg.fashion_sizes


def expand(cfg: Config) -> list[dict[str, Any]]:
    """The runs, seed by seed: seed 0's whole grid first, then each model probed untrained (seconds each), then
    the other seeds, so that a study cut short has every model and size and its reference line."""
    unknown = sorted(set(cfg.models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(MODELS)}")
    rows = []
    for i, seed in enumerate(cfg.seeds):
        for corpus in cfg.corpora:
            sizes = sorted(_sizes(cfg, corpus))
            for size in sizes if i == 0 else sizes[:cfg.seeded_sizes]:
                for model in cfg.models:
                    rows.append(dict(key=f"{model}/{corpus}/n{size}/s{seed}", kind="pretrain", model=model,
                                     corpus=corpus, size=size, seed=seed, probe=PROBE[corpus]))
        if i == 0:  # the reference line: each model's probe before any pre-training
            rows += [dict(key=f"{model}/{corpus}/untrained/s{seed}", kind="untrained", model=model, corpus=corpus,
                          size=0, seed=seed, probe=PROBE[corpus]) for corpus in cfg.corpora for model in cfg.models]
    return rows


def planned_images(cfg: Config, spec: dict[str, Any]) -> int:
    return 0 if spec["kind"] == "untrained" else scheduled_images(cfg.images_per_run, cfg.batch_size)


def run_row(cfg: Config, spec: dict[str, Any], cache: dict) -> dict[str, Any]:
    """Pre-train one model on one corpus size (best validation state kept), then probe its frozen features; an
    "untrained" row probes the freshly initialised model (the level pre-training has to beat)."""
    seed = spec["seed"]
    if spec["kind"] == "untrained":
        torch.manual_seed(seed)
        model = build_model(spec["model"], cfg.img_size, cfg.fractal_classes)
        metrics = probe_metrics(probe_features(model, spec["probe"], cfg.img_size, cfg.probe_pool, cfg.probe_test),
                                cfg.shots, seed)
        return dict(parameters=count_parameters(model), n_train=0, images_seen=0, epochs=0.0, train_flops=0,
                    metrics=metrics)
    train_set, val_set = pretraining_data(spec["corpus"], spec["size"], seed, classes=cfg.fractal_classes,
                                          img_size=cfg.img_size, n_val=cfg.n_val)
    K = train_set.num_classes
    torch.manual_seed(seed)
    model = build_model(spec["model"], cfg.img_size, K)
    batch = min(cfg.batch_size, len(train_set))
    steps = scheduled_images(cfg.images_per_run, cfg.batch_size) // cfg.batch_size
    recipe = pretrain_recipe(steps=steps, batch_size=batch, warmup_steps=None, grad_clip=1.0, seed=seed,
                             eval_every=cfg.eval_every, precision=cfg.precision, progress=False,
                             log_every=max(steps // 10, 1), data_on_device=torch.cuda.is_available())
    flops = training_flops(model, cfg.img_size, steps * batch)
    best: dict[str, Any] = dict(accuracy=-1.0)

    def keep_best(step: int, res: dict) -> None:  # Section 4: the best validation checkpoint, kept in memory
        if res["accuracy"] > best["accuracy"]:
            best.update(accuracy=res["accuracy"], loss=res["loss"], step=step,
                        state=copy.deepcopy(model.state_dict()))

    history = train(model, train_set, recipe, val_set=val_set, on_eval=keep_best)
    model.load_state_dict(best.pop("state"))
    features = probe_features(model, spec["probe"], cfg.img_size, cfg.probe_pool, cfg.probe_test)
    n_val = len(val_set)
    metrics: dict[str, Any] = dict(val_accuracy=best["accuracy"], val_n=n_val, best_step=best["step"],
                                   val_ci95=list(wilson_interval(round(best["accuracy"] * n_val), n_val)),
                                   final_val_accuracy=history["val"][-1]["accuracy"])
    metrics.update(probe_metrics(features, cfg.shots, seed))
    return dict(parameters=count_parameters(model), n_train=len(train_set),
                images_seen=steps * batch, epochs=round(steps * batch / len(train_set), 3), train_flops=flops,
                metrics=metrics)


# --- what the rows say ----------------------------------------------------------------------------------------------


def untrained(rows: list[dict[str, Any]], metric: str = "5shot") -> dict[str, dict[str, dict[str, Any]]]:
    """{corpus: {model: {"mean", "lo", "hi", "seeds"}}}: the probe of each model before pre-training (the
    "untrained" rows), the level pre-training has to beat; vitlib.plots.scaling_figure draws it as a line."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("kind") == "untrained":
            groups.setdefault((row["corpus"], row["model"]), []).append(row)
    for (corpus, model), runs in groups.items():
        s = seed_mean(runs, metric, "probe_n")
        out.setdefault(corpus, {})[model] = dict(mean=s["mean"], lo=s["ci95"][0], hi=s["ci95"][1], seeds=s["seeds"])
    return out


def curves(rows: list[dict[str, Any]], metric: str = "5shot") -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{corpus: {model: [{"size", "flops", "mean", "lo", "hi", "seeds"}, ...] by size}}: the results rows of this
    study summarised over seeds (vitlib.stats.seed_mean: the mean and its 95% interval), what
    vitlib.plots.scaling_figure draws. metric: "5shot", "10shot" (probe) or "val_accuracy" (pre-training task)."""
    n_key = "val_n" if metric == "val_accuracy" else "probe_n"
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("kind", "pretrain") != "pretrain":
            continue
        groups.setdefault((row["corpus"], row["model"], row["size"]), []).append(row)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (corpus, model, size), runs in sorted(groups.items(), key=lambda kv: kv[0][2]):
        s = seed_mean(runs, metric, n_key)
        out.setdefault(corpus, {}).setdefault(model, []).append(
            dict(size=size, flops=runs[0]["train_flops"], mean=s["mean"], lo=s["ci95"][0], hi=s["ci95"][1],
                 seeds=s["seeds"]))
    return out


def _best(groups: dict[tuple, list[dict]], models: list[str], size: int, metric: str) -> dict[str, Any] | None:
    """The seed_mean of the best of `models` at `size` (None when none ran there)."""
    stats = [seed_mean(groups[(m, size)], metric, "probe_n") for m in models if (m, size) in groups]
    return max(stats, key=lambda s: s["mean"]) if stats else None


def _corpora(rows: list[dict]):
    """Per pre-training corpus of a scaling results file: (corpus, its pre-training rows, those grouped by (model,
    size), its untrained rows grouped by model, the models in order, the sizes sorted)."""
    trained = [x for x in rows if x.get("kind", "pretrain") == "pretrain"]
    for (corpus,), corpus_rows in group(trained, "corpus").items():
        g = group(corpus_rows, "model", "size")
        base = group([x for x in rows if x.get("kind") == "untrained" and x["corpus"] == corpus], "model")
        yield corpus, corpus_rows, g, base, list(dict.fromkeys(k[0] for k in g)), sorted({k[1] for k in g})


def verdicts(corpus: str, g: dict[tuple, list[dict]], models: list[str], sizes: list[int],
                      shot: str) -> list[str]:
    """Fig. 3/4 (ResNet ahead on the smallest set, ViT level or ahead on the largest), Fig. 5 (at the largest set,
    the best ViT of no more training FLOPs than the ResNet: ahead, reproduced; level, partly: one compute point
    per model cannot show the paper's 2-4x) and the hybrid (against the ViT of its depth on the smallest set),
    each judged beyond the 95% intervals."""
    resnets = [m for m in models if MODELS[m].family == "resnet"]
    vits = [m for m in models if MODELS[m].family == "vit"]
    if not (resnets and vits and len(sizes) >= 2):
        return []
    word = VERSUS
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
    for h in (m for m in models if MODELS[m].family == "hybrid"):
        twin = MODELS[h].twin
        if twin in vits and (h, sizes[0]) in g and (twin, sizes[0]) in g:
            cmph = compare(seed_mean(g[(h, sizes[0])], shot, "probe_n"), seed_mean(g[(twin, sizes[0])], shot,
                                                                                     "probe_n"))
            out.append(f"Hybrids at small budgets (Fig. 5: ahead of ViT): {h} is **{word[cmph]}** of {twin} "
                       f"on `{corpus}` at {sizes[0]:,} images.")
    return out


# --- how it renders -------------------------------------------------------------------------------------------------


def answer(r: dict) -> str:
    """What reproduced of Fig. 3-5, from a scaling results file's results: per pre-training corpus, the verdicts
    (`_scaling_verdicts`) and where each model's few-shot accuracy at the largest set sits against its own
    untrained level. The README's paragraph."""
    shot = shot_metric(r["config"]["shots"])
    lines = []
    for corpus, corpus_rows, g, base, models, sizes in _corpora(r["rows"]):
        vs = {1: [], 0: [], -1: []}
        for m in models:
            if (m,) in base and (m, sizes[-1]) in g:
                vs[compare(seed_mean(g[(m, sizes[-1])], shot, "probe_n"), seed_mean(base[(m,)], shot,
                                                                                      "probe_n"))].append(m)
        against = "; ".join(f"{w}: {', '.join(ms)}" for w, ms in (("above", vs[1]), ("level", vs[0]),
                                                                   ("below", vs[-1])) if ms)
        lines += [f"- `{corpus}` ({len(corpus_rows)} runs, {shot[:-4]}-shot on `{corpus_rows[0]['probe']}`): "
                  + " ".join(verdicts(corpus, g, models, sizes, shot))
                  + (f" Against each model's untrained features at {sizes[-1]:,} images: {against}." if against
                     else "")]
    return "\n".join(lines)


def render(r: dict, p: dict) -> str:
    """figures/scaling.json (vitlib.experiments.scaling): few-shot transfer per model and pre-training size, the
    untrained level, the pre-training task's own accuracy, and the verdicts on Fig. 3/4's and Fig. 5's claims."""
    rows, c = r["rows"], r["config"]
    shot = shot_metric(c["shots"])
    out = []
    for corpus, corpus_rows, g, base, models, sizes in _corpora(rows):
        cells = [[m, acc_ci(seed_mean(base[(m,)], shot, "probe_n")) if (m,) in base else "-"]
                 + [acc_ci(seed_mean(g[(m, n)], shot, "probe_n")) if (m, n) in g else "-" for n in sizes]
                 for m in models]
        probe = corpus_rows[0]["probe"]
        out.append(f"Pre-trained on `{corpus}`, {shot[:-4]}-shot linear accuracy on `{probe}` (frozen features, "
                   f"best validation state), {corpus_rows[0]['images_seen']:,} images seen per run; \"untrained\": "
                   f"the same model before pre-training:\n\n"
                   + table(["model", "untrained"] + [f"{n:,} images" for n in sizes], cells))
        val = [[m] + [acc_ci(seed_mean(g[(m, n)], "val_accuracy", "val_n")) if (m, n) in g else "-"
                      for n in sizes] for m in models]
        out.append(f"The pre-training task itself: accuracy on `{corpus}`'s held-out split (the best validation "
                   f"state):\n\n" + table(["model"] + [f"{n:,} images" for n in sizes], val))
        out += verdicts(corpus, g, models, sizes, shot)
    out.append(runs_line(rows, r))
    return "\n\n".join(out)


def render_pilot(r: dict, p: dict) -> str:
    """figures/scaling_pilot.json: the scaling study's pilot, one line per run with its design."""
    lines = [[f"{x['design']['img_size']} px, {x['design']['images_per_run'] // x['design']['batch_size']} steps "
              f"of {x['design']['batch_size']}, {x['design']['fractal_classes']} categories", x["model"],
              acc_ci(seed_mean([x], "val_accuracy", "val_n")), acc_ci(seed_mean([x], "5shot", "probe_n")),
              f"{x['wall_s']:.0f} s" + ("" if x["load"]["quiet"] else " (not quiet)")] for x in r["rows"]]
    return (r.get("note", "") + "\n\n"
            + table(["design", "model", "held-out fractals", "5-shot `fashion_mnist`", "time"], lines)
            + "\n\n" + runs_line(r["rows"], r))


def claims(r: dict, stem: str) -> list[list[str]]:
    """The README's rows (claim, the paper, here, verdict, where to read more) from figures/STEM.json: Fig. 3/4
    and Fig. 5, per pre-training corpus."""
    shot = shot_metric(r["config"]["shots"])
    rows = []
    for corpus, _, g, _, models, sizes in _corpora(r["rows"]):
        resnets = [m for m in models if MODELS[m].family == "resnet"]
        vits = [m for m in models if MODELS[m].family == "vit"]
        if not (resnets and vits and len(sizes) >= 2):
            continue
        lead = [_best(g, resnets, n, shot)["mean"] - _best(g, vits, n, shot)["mean"] for n in (sizes[0], sizes[-1])]
        said = verdicts(corpus, g, models, sizes, shot)
        words = [line.split("**")[1] for line in said[:2]]
        more = f"notebook 05, RESULTS.md (`{stem}`)"
        rows += [[f"The ResNet's lead shrinks, then ViT overtakes, as pre-training data grow (Fig. 3/4): `{corpus}`",
                  "crossover at 30M-90M images", f"ResNet ahead by {100 * lead[0]:+.1f} points at {sizes[0]:,} "
                  f"images, {100 * lead[1]:+.1f} at {sizes[-1]:,}", words[0], more]]
        if len(words) > 1:
            here = said[1].split(f"on `{corpus}` (", 1)[1].rstrip(").")
            rows.append([f"ViT is the better deal per unit of compute (Fig. 5): `{corpus}`", "2-4x less compute",
                         here, words[1], more])
    return rows


# results file -> (RESULTS.md section title, renderer)
RESULTS = {
    "scaling": ("Fig. 3-5 in miniature: pre-training data and compute, ViT vs ResNet vs hybrid "
                "(`python -m vitlib experiment scaling --profile full`)", render),
    "scaling_pilot": ("The scaling study's pilot: is the pre-training task learned within the schedule? "
                      "(10,000 fractals, seed 0; run before the full profile)", render_pilot),
    **profile_sections(NAME, "Fig. 3-5", render, ("gpu",)),
    "fig4_scaling_data": ("Fig. 3/4: transfer against pre-training set size (notebook 05)", None),
    "fig5_scaling_compute": ("Fig. 5: transfer against pre-training compute (notebook 05)", None),
}

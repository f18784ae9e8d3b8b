"""Markdown building blocks of RESULTS.md and the README: percentages, tables, accuracies with their intervals,
the words of a comparison and of a verdict, the difference of two arms over seeds, the provenance line, and the
seed-by-seed sentence of the ablations. The decisions they put in words are vitlib.stats's.

Deviations from the paper: none (nothing here is in the paper).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .stats import (
    NOT_REPRODUCED,
    PARTLY,
    REPRODUCED,
    UNDECIDED,
    fewest_seeds,
    seed_order,
    separation_chance,
    side,
    welch,
)

__all__ = ["pct", "table", "made_by", "acc_ci", "VERSUS", "ANSWERS", "difference", "reading", "compared",
           "count", "runs_line", "cpu_kinds", "shot_metric", "seed_by_seed"]

# compare()'s answer in words, a against b (Welch's t over seeds, vitlib.stats.compare); "not told apart" is not
# "the same" (that is vitlib.stats.equivalent's question)
VERSUS = {1: "ahead", -1: "behind", 0: "not told apart over seeds"}
# a claim's verdict (vitlib.stats.VERDICTS) as the answer to a question ("does pre-training pay here?")
ANSWERS = {REPRODUCED: "yes", PARTLY: "partly", NOT_REPRODUCED: "no", UNDECIDED: "undecided"}


def pct(x: float) -> str:
    """0.1234 -> '12.3%'."""
    return f"{100 * x:.1f}%"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def made_by(p: dict[str, Any]) -> str:
    """One line of provenance: command, date, machine, time taken, commit."""
    bits = [f"`{p.get('command', '?')}`", p.get("date", "date unknown")]
    bits.append(f"{p.get('device', 'cpu')} on {p.get('machine', '?')} ({p.get('cpus', '?')} CPUs"
                + (f": {p['cpu']})" if p.get("cpu") else ")"))
    if p.get("seconds") is not None:
        bits.append(f"{p['seconds']:.0f} s")
    bits.append(f"torch {p.get('torch', '?')}, commit {p.get('git_commit', '?')}")
    text = "Made by " + "; ".join(bits) + "."
    return text + (f" Note: {p['note']}" if p.get("note") else "")


def acc_ci(s: dict[str, Any] | None) -> str:
    """A seed mean (vitlib.stats.seed_mean) as 'mean% [lo, hi; seeds low-high]', '-' when missing."""
    if s is None:
        return "-"
    spread = f"; seeds {100 * s['low']:.1f}-{100 * s['high']:.1f}" if s["seeds"] > 1 else ""
    return f"{100 * s['mean']:.1f}% [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}{spread}]"


def difference(a: list[float], b: list[float], interval: bool = True) -> str:
    """The mean of seeds a minus the mean of seeds b, its 95% interval (unless `interval` is False) and p (Welch's t,
    vitlib.stats.welch), in points; without seed variance (an arm with one seed, or no spread) it says so.

    >>> difference([0.60, 0.62, 0.61], [0.50, 0.52, 0.51])
    '+10.0 points [95% interval +7.7, +12.3; p < 0.01]'
    >>> difference([0.60, 0.65, 0.61], [0.60, 0.62, 0.59], interval=False)
    '+1.7 points (p 0.41)'
    >>> difference([0.60], [0.50, 0.52])
    '+9.0 points (one seed: undecided)'
    """
    w = welch(a, b)
    if w["p"] is None:
        return f"{100 * w['diff']:+.1f} points ({'one seed' if min(len(a), len(b)) < 2 else 'no spread'}: undecided)"
    p = "p < 0.01" if w["p"] < 0.01 else f"p {w['p']:.2f}"
    if not interval:
        return f"{100 * w['diff']:+.1f} points ({p})"
    return f"{100 * w['diff']:+.1f} points [95% interval {100 * w['ci95'][0]:+.1f}, {100 * w['ci95'][1]:+.1f}; {p}]"


def reading(sd: int | None, seeds: int, margin: float) -> str:
    """A comparison's vitlib.stats.side `sd` in words (+1, -1, 0 level, None), `seeds` the fewer of the two arms'
    seeds.

    >>> reading(1, 3, 0.02), reading(0, 3, 0.02), reading(None, 3, 0.02), reading(None, 1, 0.02)
    ('ahead', 'level within 2 points', 'not told apart over seeds', 'one seed: undecided')
    """
    if sd is None:
        return "one seed: undecided" if seeds < 2 else VERSUS[0]
    return {1: "ahead", -1: "behind", 0: f"level within {100 * margin:.0f} points"}[sd]


def compared(a: list[float], b: list[float], margin: float) -> str:
    """'ahead, +10.0 points [95% interval ...; p ...]': seeds a against seeds b, the `reading` of their
    vitlib.stats.side and their `difference` (the difference alone when it says "one seed: undecided").

    >>> compared([0.60, 0.62, 0.61], [0.50, 0.52, 0.51], 0.02)
    'ahead, +10.0 points [95% interval +7.7, +12.3; p < 0.01]'
    >>> compared([0.60], [0.50, 0.52], 0.02)
    '+9.0 points (one seed: undecided)'
    """
    diff = difference(a, b)
    if diff.endswith(": undecided)"):
        return diff
    return f"{reading(side(a, b, margin), min(len(a), len(b)), margin)}, {diff}"


def count(n: int, noun: str) -> str:
    """'1 run', '2 runs', '0 runs': n and the noun, plural unless n is 1.

    >>> count(1, "seed"), count(3, "seed"), count(0, "run")
    ('1 seed', '3 seeds', '0 runs')
    """
    return f"{n} {noun}{'s' * (n != 1)}"


def runs_line(rows: list[dict], r: dict) -> str:
    """'N runs (Q on a quiet machine); T still to run.' of a study's results, then the kinds of CPU the runs that
    record one ran on (times are only comparable on the same kind).

    >>> runs_line([dict(load=dict(quiet=True), cpu="A, native bf16"), dict(load=dict(quiet=False))], dict(todo=1))
    '2 runs (1 on a quiet machine); 1 still to run. CPUs: A, native bf16 (1 run).'
    """
    quiet = sum(bool(x.get("load", {}).get("quiet")) for x in rows)
    return (f"{count(len(rows), 'run')} ({quiet} on a quiet machine); {r.get('todo', 0)} still to "
            "run." + cpu_kinds(rows))


def cpu_kinds(rows: list[dict]) -> str:
    """' CPUs: KIND (N runs); ...' over the rows that record their CPU ("" if none does)."""
    kinds = Counter(x["cpu"] for x in rows if x.get("cpu"))
    return " CPUs: " + "; ".join(f"{k} ({count(n, 'run')})" for k, n in kinds.items()) + "." if kinds else ""


def shot_metric(shots: list[int] | tuple[int, ...]) -> str:
    """The probe's shot count nearest 5 (Table 8's), as a metric name."""
    return f"{min(shots, key=lambda s: abs(s - 5))}shot"


def seed_by_seed(rows: list[dict], metrics: dict[str, str], arms: list[str], names: dict[str, str]) -> str:
    """" Seed by seed (...): ..." for {label: metric}: the pairs of arms whose seeds do not interleave
    (`seed_order`) and the chance of that with no difference (`separation_chance`); "" with fewer than 2 seeds."""
    seeds = fewest_seeds(rows, arms)
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

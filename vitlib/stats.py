"""Statistics of the studies: intervals, seed means, comparisons, seed order and its chance.

Every verdict of vitlib.experiments reads its numbers through these functions, so that a rule is written once:
- `wilson_interval`: the 95% interval of one run's accuracy on n test images (Wilson, 1927);
- `seed_mean`, `arm_means`: runs that differ only by seed, summarised (mean, interval, lowest and highest seed);
- `compare`: are two intervals apart?
- `seed_order`, `separation_chance`: does every seed of one arm lie above every seed of another, and how often
  would two arms that do not differ show that by chance?

Deviations from the paper: none (the paper reports single runs without intervals).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["wilson_interval", "seed_mean", "compare", "group", "arm_means", "seed_order", "separation_chance",
           "fewest_seeds"]


def wilson_interval(correct: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% (z = 1.96) Wilson score interval of an accuracy of `correct` right answers out of `n`
    (Wilson, 1927): unlike the normal approximation it stays inside [0, 1] and is honest at 0 or n.

    >>> [round(v, 3) for v in wilson_interval(80, 100)]
    [0.711, 0.867]
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def seed_mean(rows: list[dict], metric: str, n_key: str) -> dict[str, Any]:
    """Accuracy `metric` of runs that differ only by seed: the mean, its 95% Wilson interval at the test-set size
    of one run (the test images are the same for every seed), the lowest and highest seed, and the seed count."""
    accs = [r["metrics"][metric] for r in rows]
    n = min(r["metrics"][n_key] for r in rows)
    mean = sum(accs) / len(accs)
    return dict(mean=mean, ci95=wilson_interval(mean * n, n), low=min(accs), high=max(accs), seeds=len(accs), n=n)


def compare(a: dict[str, Any] | None, b: dict[str, Any] | None) -> int:
    """+1 when a's interval lies above b's, -1 below, 0 when they overlap (or one is missing)."""
    if a is None or b is None:
        return 0
    return 1 if a["ci95"][0] > b["ci95"][1] else -1 if a["ci95"][1] < b["ci95"][0] else 0


def group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    """{(row[k] for k in keys): [rows]}, groups in the order they first appear."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def arm_means(rows: list[dict], metric: str, n_key: str) -> dict[str, dict[str, Any]]:
    """{arm: seed_mean} of the rows that measured `metric`, arms in the order they first appear."""
    groups = group([r for r in rows if metric in r["metrics"]], "arm")
    return {arm: seed_mean(g, metric, n_key) for (arm,), g in groups.items()}


def seed_order(rows: list[dict], metric: str, a: str, b: str) -> int:
    """+1 when every seed of arm `a` scored above every seed of arm `b` on `metric`, -1 the reverse, 0 when their
    seeds interleave or an arm has no rows: the seed-to-seed spread that the intervals (at one run's test-set
    size) leave out. Two arms that do not differ separate so by chance with probability `separation_chance`."""
    x, y = ([q["metrics"][metric] for q in rows if q["arm"] == arm and metric in q["metrics"]] for arm in (a, b))
    if not x or not y:
        return 0
    return 1 if min(x) > max(y) else -1 if max(x) < min(y) else 0


def separation_chance(m: int, n: int) -> float:
    """The chance that m seeds of one arm and n of another, drawn from the same distribution, separate completely
    (all of one above all of the other, either way): 2 / C(m + n, m), an exact rank test.

    >>> round(separation_chance(2, 2), 2), round(separation_chance(4, 4), 3)
    (0.33, 0.029)
    """
    return min(1.0, 2 / math.comb(m + n, m))


def fewest_seeds(rows: list[dict], arms: list[str]) -> int:
    """The number of rows of the arm with the fewest (0 when an arm has none)."""
    return min((sum(x["arm"] == a for x in rows) for a in arms), default=0)

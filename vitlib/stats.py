"""Statistics of the studies: intervals, seed means, comparisons, seed order and its chance.

Every verdict of vitlib.experiments reads its numbers through these functions, so that a rule is written once:
- `wilson_interval`: the 95% interval of one run's accuracy on n test images (Wilson, 1927);
- `seed_mean`, `arm_means`: runs that differ only by seed, summarised (mean, interval, lowest and highest seed,
  the seeds' values); `group`: rows by the values of some keys; `fewest_seeds`: the rows of the thinnest arm;
- `mean_interval`: the 95% t interval of the mean of a quantity measured once per seed (a lead paired by seed);
  `prediction_interval`: where one more run would fall (a single run of another arm against these seeds);
- `welch`: the difference of two arms over their seeds, Welch's t (unequal variances): the difference, its 95%
  interval and p. Assumes the seeds of an arm are independent draws whose mean is roughly normal; it needs at
  least 2 seeds a side (fewer: "undecided"). `compare` turns it into ahead / behind / not told apart;
- `equivalent`: two one-sided tests (TOST) against a margin stated before the run, for "no difference" claims;
- `side`: two arms over their seeds in one word: level (`equivalent` within a margin), else ahead / behind
  (`compare`), else undecided;
- `claim_verdict`: a claim's verdict from its comparisons, each going the paper's way, against it or undecided;
  `ahead_verdict` for a claim "a ahead of b" (level counts against it) and `alike_verdict` for a claim of no
  difference, both from `side`s;
- `seed_order`, `separation_chance`: does every seed of one arm lie above every seed of another, and how often
  would two arms that do not differ show that by chance?
- `bootstrap`: a percentile interval of any statistic of seed groups, resampling seeds within each group;
- `power_law`, `fit_power_law`: the saturating power law E = a (x + d)^(-b) + c (Zhai et al. 2021);
- VERDICTS: the one vocabulary of every study's verdict.

Deviations from the paper: none (the paper reports single runs without intervals).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

__all__ = ["VERDICTS", "ALPHA", "wilson_interval", "seed_mean", "mean_interval", "prediction_interval",
           "welch", "compare", "equivalent", "side", "claim_verdict", "ahead_verdict", "alike_verdict", "group",
           "arm_means", "seed_order", "separation_chance", "fewest_seeds", "bootstrap", "power_law", "fit_power_law"]

# the verdict of a claim, in every study: the design reached the claim's regime and the rows say...
REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NOT_TESTABLE = (
    "reproduced", "partly reproduced", "not reproduced", "undecided", "not testable at this budget")
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NOT_TESTABLE)
ALPHA = 0.05  # the level of every test (two-sided unless a rule says one-sided)


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
    return dict(mean=mean, ci95=wilson_interval(mean * n, n), low=min(accs), high=max(accs), seeds=len(accs), n=n,
                values=accs)


def mean_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The 95% interval of the mean of values measured once per seed (Student's t, n - 1 degrees of freedom), e.g.
    one arm's lead over another paired by seed; None with fewer than 2 values or no spread (no estimate of seed
    variance).

    >>> [round(v, 3) for v in mean_interval([0.30, 0.31, 0.29])]
    [0.275, 0.325]
    >>> mean_interval([0.3]) is None, mean_interval([0.3, 0.3]) is None
    (True, True)
    """
    x = np.asarray(values, float)
    if len(x) < 2 or x.std() == 0:
        return None
    half = float(scipy_stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return float(x.mean()) - half, float(x.mean()) + half


def prediction_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The 95% prediction interval of one more run, from values measured once per seed: mean +- t(n - 1) s
    sqrt(1 + 1/n) (a single run of another arm differs from these seeds when it lies outside); None with fewer
    than 2 values or no spread.

    >>> [round(v, 2) for v in prediction_interval([0.30, 0.31, 0.29])]
    [0.25, 0.35]
    >>> prediction_interval([0.3]) is None
    True
    """
    x = np.asarray(values, float)
    if len(x) < 2 or x.std() == 0:
        return None
    half = float(scipy_stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) * math.sqrt(1 + 1 / len(x)))
    return float(x.mean()) - half, float(x.mean()) + half


def welch(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided") -> dict[str, Any]:
    """Mean of a minus mean of b over seeds, Welch's t: dict(diff, ci95, p, df). With fewer than 2 values a side,
    or no spread at all, there is no estimate of seed variance: ci95 and p are None.

    >>> r = welch([0.50, 0.52, 0.51, 0.53], [0.40, 0.41, 0.43, 0.42])
    >>> round(r["diff"], 3), r["p"] < 0.001, [round(v, 3) for v in r["ci95"]]
    (0.1, True, [0.078, 0.122])
    >>> welch([0.5], [0.4, 0.41])["p"] is None
    True
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
    if len(a) < 2 or len(b) < 2:
        return dict(diff=diff, ci95=None, p=None, df=None)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return dict(diff=diff, ci95=None, p=None, df=None)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    t = diff / se
    p = {"two-sided": 2 * scipy_stats.t.sf(abs(t), df), "greater": scipy_stats.t.sf(t, df),
         "less": scipy_stats.t.cdf(t, df)}[alternative]
    half = float(scipy_stats.t.ppf(0.975, df) * se)
    return dict(diff=diff, ci95=(diff - half, diff + half), p=float(p), df=float(df))


def compare(a: dict[str, Any] | None, b: dict[str, Any] | None) -> int:
    """+1 when arm a (a `seed_mean`) is ahead of arm b over their seeds (Welch's t, two-sided p < ALPHA), -1 behind,
    0 when they are not told apart, when an arm has fewer than 2 seeds (no seed variance to test against) or is
    missing. 0 is not "the same": that needs `equivalent`.

    >>> compare(dict(values=[0.60, 0.62, 0.61]), dict(values=[0.50, 0.52, 0.51]))
    1
    >>> compare(dict(values=[0.60]), dict(values=[0.50]))  # one seed: undecided
    0
    """
    if a is None or b is None:
        return 0
    r = welch(a["values"], b["values"])
    return 0 if r["p"] is None or r["p"] >= ALPHA else 1 if r["diff"] > 0 else -1


def equivalent(a: Sequence[float], b: Sequence[float], margin: float) -> dict[str, Any]:
    """Two one-sided tests (Schuirmann 1987) over seeds: is |mean(a) - mean(b)| < margin? dict(diff, ci90, p,
    equivalent): equivalent when both one-sided Welch tests reject at ALPHA, i.e. the 90% interval of the
    difference lies inside (-margin, margin). Fewer than 2 seeds a side: p None, not equivalent.

    >>> equivalent([0.50, 0.51, 0.50, 0.51], [0.505, 0.50, 0.51, 0.505], margin=0.02)["equivalent"]
    True
    >>> equivalent([0.50, 0.53, 0.47, 0.52], [0.45, 0.49, 0.51, 0.44], margin=0.02)["equivalent"]
    False
    """
    r = welch(a, b)
    if r["p"] is None:
        return dict(diff=r["diff"], ci90=None, p=None, equivalent=False)
    lower, upper = welch(np.asarray(a) + margin, b, "greater"), welch(np.asarray(a) - margin, b, "less")
    p = float(max(lower["p"], upper["p"]))
    half = float((r["ci95"][1] - r["diff"]) / scipy_stats.t.ppf(0.975, r["df"]) * scipy_stats.t.ppf(0.95, r["df"]))
    return dict(diff=r["diff"], ci90=(r["diff"] - half, r["diff"] + half), p=p, equivalent=p < ALPHA)


def side(a: Sequence[float], b: Sequence[float], margin: float) -> int | None:
    """Arm a against arm b, each a list of its seeds' accuracies: 0 when they are level (`equivalent` within
    `margin`; a real difference smaller than the margin counts as none), else +1 ahead / -1 behind (`compare`:
    Welch's t, two-sided p < ALPHA), None when not told apart or an arm has fewer than 2 seeds (undecided).

    >>> side([0.60, 0.62, 0.61], [0.50, 0.52, 0.51], 0.02), side([0.50, 0.51, 0.50], [0.505, 0.50, 0.51], 0.02)
    (1, 0)
    >>> side([0.50, 0.52, 0.51], [0.60, 0.62, 0.61], 0.02)
    -1
    >>> side([0.60], [0.50], 0.02) is None, side([0.60, 0.45, 0.52], [0.50, 0.58, 0.47], 0.02) is None
    (True, True)
    """
    if equivalent(a, b, margin)["equivalent"]:
        return 0
    return compare(dict(values=a), dict(values=b)) or None


def claim_verdict(findings: Sequence[int | None]) -> str:
    """A claim's verdict (VERDICTS) from its comparisons, each +1 (goes the paper's way at p < ALPHA), -1 (goes
    against it: significantly, or level where the paper claims a difference) or None (undecided; 0, `compare`'s
    "not told apart", counts the same): reproduced (every one +1), not reproduced (any -1), partly reproduced (some
    +1), else undecided. "Not testable at this budget" is the design's to say, before any comparison.

    >>> claim_verdict([1, 1]), claim_verdict([1, None]), claim_verdict([1, -1]), claim_verdict([None, 0])
    ('reproduced', 'partly reproduced', 'not reproduced', 'undecided')
    """
    if -1 in findings:
        return NOT_REPRODUCED
    if findings and all(f == 1 for f in findings):
        return REPRODUCED
    return PARTLY if 1 in findings else UNDECIDED


def ahead_verdict(sides: Sequence[int | None]) -> str:
    """The verdict of a claim "a ahead of b" from its comparisons' `side`s: `claim_verdict` with level (0) counted
    against the claim, which is of a difference: reproduced (every one ahead), partly reproduced (some ahead, none
    behind or level), not reproduced (one behind or level), else undecided.

    >>> ahead_verdict([1, 1]), ahead_verdict([1, None]), ahead_verdict([1, 0]), ahead_verdict([1, -1])
    ('reproduced', 'partly reproduced', 'not reproduced', 'not reproduced')
    >>> ahead_verdict([None, None])
    'undecided'
    """
    return claim_verdict([-1 if s == 0 else s for s in sides])


def alike_verdict(sides: Sequence[int | None]) -> str:
    """The verdict of a claim of no difference from the `side` of every pair it compares: reproduced (every pair
    level within the margin), not reproduced (a pair told apart, either way), else undecided. No "partly": a claim
    that some pairs are alike is not the claim.

    >>> alike_verdict([0, 0, 0]), alike_verdict([0, -1, None]), alike_verdict([0, 1]), alike_verdict([0, None, 0])
    ('reproduced', 'not reproduced', 'not reproduced', 'undecided')
    """
    if all(s == 0 for s in sides):
        return REPRODUCED
    return NOT_REPRODUCED if any(s in (1, -1) for s in sides) else UNDECIDED


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


def bootstrap(groups: dict[Any, Sequence[Any]], statistic: Callable[[dict[Any, list[Any]]], float],
              draws: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """The 95% percentile interval of `statistic(groups)` when each group's seeds are resampled with replacement
    (a statistic that fails on a resample, e.g. a fit that does not converge, is left out); None with fewer than
    2 seeds in a group or fewer than half the draws usable.

    >>> lo, hi = bootstrap({"a": [1.0, 2.0, 3.0, 4.0]}, lambda g: sum(g["a"]) / len(g["a"]))
    >>> 1.0 <= lo < 2.5 < hi <= 4.0
    True
    """
    if any(len(v) < 2 for v in groups.values()):
        return None
    rng, values = random.Random(seed), []
    for _ in range(draws):
        sample = {k: [rng.choice(v) for _ in v] for k, v in groups.items()}
        try:
            value = statistic(sample)
        except (RuntimeError, ValueError, ZeroDivisionError, FloatingPointError):
            continue
        if value is not None and math.isfinite(value):
            values.append(value)
    if len(values) < draws // 2:
        return None
    values.sort()
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]


def power_law(x: Any, a: float, b: float, c: float, d: float) -> Any:
    """The saturating power law of Zhai et al. (2021), E = a (x + d)^(-b) + c: c is the error it tends to, b the
    slope in log-log, d how late the power law starts."""
    return a * np.power(np.asarray(x, float) + d, -b) + c


def fit_power_law(x: Sequence[float], error: Sequence[float]) -> dict[str, float]:
    """Least-squares fit of `power_law` to errors at x (images seen or FLOPs), with a >= 0, b in [0, 3], c in
    [0, 1], d >= 0; x is rescaled by its largest value for the fit, and the parameters refer to the original x.

    >>> x = [2.0 ** k for k in range(10, 21)]
    >>> e = power_law(x, 40.0, 0.5, 0.1, 1000.0)
    >>> fit = fit_power_law(x, e)
    >>> round(fit["b"], 2), round(fit["c"], 3)
    (0.5, 0.1)
    """
    x, error = np.asarray(x, float), np.asarray(error, float)
    if len(x) < 4:
        raise ValueError(f"a saturating power law has 4 parameters: fit it to at least 4 points, got {len(x)}")
    scale = x.max()
    start = (max(error[0] - error[-1], 1e-3), 0.5, max(error.min() * 0.9, 0.0), 0.01)
    (a, b, c, d), _ = optimize.curve_fit(power_law, x / scale, error, p0=start, maxfev=20000,
                                         bounds=([0, 0, 0, 0], [np.inf, 3, 1, np.inf]))
    return dict(a=float(a * scale ** b), b=float(b), c=float(c), d=float(d * scale))

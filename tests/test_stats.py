"""vitlib.stats: the comparisons and verdict rules every study reads, each driven to every outcome it can give."""

import pytest

from vitlib.stats import (
    NOT_REPRODUCED,
    PARTLY,
    REPRODUCED,
    UNDECIDED,
    ahead_verdict,
    alike_verdict,
    claim_verdict,
    side,
)

HIGH, LOW = [0.60, 0.62, 0.61, 0.63], [0.50, 0.52, 0.51, 0.53]  # 10 points apart, tight seeds
SPREAD = [0.60, 0.45, 0.52, 0.40]  # seeds too spread to tell from either


@pytest.mark.parametrize("a, b, expected", [
    (HIGH, LOW, 1),  # Welch's t, p < 0.05
    (LOW, HIGH, -1),
    ([0.500, 0.505, 0.500, 0.505], [0.505, 0.500, 0.505, 0.500], 0),  # equivalent within the 2-point margin
    ([0.60, 0.61, 0.60, 0.61], [0.605, 0.60, 0.61, 0.605], 0),
    (SPREAD, LOW, None),  # neither ahead nor level: not told apart
    ([0.60], LOW, None),  # one seed: no seed variance to test against
])
def test_side_is_ahead_behind_level_or_undecided(a, b, expected):
    assert side(a, b, 0.02) == expected


def test_side_level_needs_the_margin_a_real_but_small_difference_counts_as_level():
    a, b = [0.510, 0.511, 0.510, 0.511], [0.500, 0.501, 0.500, 0.501]  # 1 point apart, p far below 0.05
    assert side(a, b, 0.02) == 0  # inside a 2-point margin: level
    assert side(a, b, 0.005) == 1  # outside a half-point margin: ahead


@pytest.mark.parametrize("findings, verdict", [
    ([1, 1, 1], REPRODUCED),
    ([1, None, 1], PARTLY),
    ([1, 1, -1], NOT_REPRODUCED),
    ([None, -1], NOT_REPRODUCED),
    ([None, None], UNDECIDED),
    ([0, 0], UNDECIDED),  # compare's "not told apart" counts as undecided
    ([], UNDECIDED),  # no comparison: nothing reproduced
])
def test_claim_verdict_reaches_every_outcome(findings, verdict):
    assert claim_verdict(findings) == verdict


@pytest.mark.parametrize("sides, verdict", [
    ([1, 1], REPRODUCED),
    ([1, None], PARTLY),
    ([1, -1], NOT_REPRODUCED),
    ([1, 0], NOT_REPRODUCED),  # level counts against a claim of a difference
    ([None, None], UNDECIDED),
])
def test_ahead_verdict_counts_level_against_the_claim(sides, verdict):
    assert ahead_verdict(sides) == verdict


@pytest.mark.parametrize("sides, verdict", [
    ([0, 0, 0], REPRODUCED),
    ([0, 1, 0], NOT_REPRODUCED),
    ([0, -1, None], NOT_REPRODUCED),
    ([0, None, 0], UNDECIDED),  # no "partly": some pairs alike is not the claim
    ([None, None], UNDECIDED),
])
def test_alike_verdict_needs_every_pair_level(sides, verdict):
    assert alike_verdict(sides) == verdict


def test_the_rules_read_sides_of_real_seeds():
    tight = [0.600, 0.602, 0.601, 0.603]
    none, kinds = LOW, [tight, [x + 0.001 for x in tight], [x + 0.002 for x in tight]]  # 10 points up, alike
    assert ahead_verdict([side(k, none, 0.01) for k in kinds]) == REPRODUCED
    assert alike_verdict([side(a, b, 0.01) for i, a in enumerate(kinds) for b in kinds[i + 1:]]) == REPRODUCED
    assert ahead_verdict([side(SPREAD, none, 0.01)]) == UNDECIDED
    assert alike_verdict([side(HIGH, LOW, 0.01)]) == NOT_REPRODUCED

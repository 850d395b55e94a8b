"""The Oct-2025 episode and the calm day (docs/model.md section 8), on the same paths.

Bands and their reasons are stated once in :data:`analysis.episode.OCT2025_BANDS`.
512 paths, seed 0, float32: each median is far from its band's edge compared with its
Monte Carlo error (checked below), so the test is not a coin toss.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.episode import CALM_LIMIT_USD, OCT2025_BANDS, check_episode


@pytest.fixture(scope="module")
def episode():
    return check_episode(n_paths=512)


def test_oct2025_medians_inside_every_band(episode):
    """Liquidations, long share and the btc, alt and equity falls each have their median
    inside the band of the public figure."""
    for name, band in OCT2025_BANDS.items():
        assert band.low <= episode.medians[name] <= band.high, (name, episode.medians[name])


def test_oct2025_most_paths_inside_all_bands_at_once(episode):
    """Not one figure at a time: >= 80 % of paths sit inside all five bands together."""
    assert episode.inside_all >= 0.8, (episode.inside_all, episode.inside)


def test_calm_day_liquidates_little(episode):
    """The Oct-2025 state with no trigger liquidates a median under $1.5 bn (ordinary days:
    $0.3-1 bn), under a tenth of the episode."""
    assert episode.calm_median_usd < CALM_LIMIT_USD, episode.calm_median_usd
    assert episode.calm_median_usd < 0.1 * episode.medians["liquidations"]


def test_the_episode_needs_leverage_and_the_trigger(episode):
    """At leverage 0 nothing is liquidated, the altcoins fall far less than in the episode
    (the trigger alone explains a third of it) and btc a third less: the cascade, not the
    trigger, makes the episode."""
    flat = check_episode(n_paths=512, overrides={"leverage": 0.0})
    assert flat.medians["liquidations"] == 0.0
    assert flat.medians["drawdown_alt"] < OCT2025_BANDS["drawdown_alt"].low
    assert flat.medians["drawdown_btc"] < 0.75 * episode.medians["drawdown_btc"]
    assert np.isfinite(episode.inside_all)
